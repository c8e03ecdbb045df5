/* geusemaker status: the record plus a live look at every resource. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/deployment.h"

static int cmd_status(gm_cli *cli, int argc, char **argv);

const gm_command gm_command_status = {
    .name = "status",
    .summary = "show a deployment: its record, a live look at each resource, and drift",
    .usage = "status NAME [--output text|json]",
    .run = cmd_status,
};

static int cmd_status(gm_cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {GM_CLI_GLOBAL_OPTIONS, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        int rc = gm_cli_common_option(cli, &gm_command_status, c, optarg);
        if (rc >= 0)
            return rc;
    }
    if (optind + 1 != argc)
        return gm_cli_usage_error(cli, "status takes exactly one deployment name");
    const char *name = argv[optind];
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
