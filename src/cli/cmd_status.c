/* geusemaker status: the record plus a live look at every resource. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/deployment.h"

static int cmd_status(gm_cli *cli, const gm_args *args);

const gm_command gm_command_status = {
    .name = "status",
    .summary = "show a deployment: its record, a live look at each resource, and drift",
    .synopsis = "status NAME [--output text|json]",
    .min_pos = 1,
    .max_pos = 1,
    .pos_what = "one deployment name",
    .run = cmd_status,
};

static int cmd_status(gm_cli *cli, const gm_args *args)
{
    const char *name = args->pos[0];
    gm_error err = {0};
    gm_store *store = NULL;
    gm_deployment *dep = NULL;
    gm_aws_client *aws = NULL;
    json_t *live = NULL;
    gm_status st = gm_cli_open_deployment(cli, name, &store, &dep, &aws, &err);
    if (st == GM_OK) {
        gm_engine_options eo = {.aws = aws, .store = store};
        st = gm_engine_inspect(&eo, dep, &live, &err);
    }
    int rc = GM_EXIT_OK;
    if (st == GM_OK)
        gm_cli_print_deployment(cli, dep, live, -1);
    else
        rc = gm_cli_fail(cli, st, &err);
    json_decref(live);
    gm_deployment_free(dep);
    gm_aws_client_free(aws);
    gm_store_free(store);
    return rc;
}
