/* geusemaker status: the record, a live look at every resource, drift, and
 * the verdict (engine/liveness.h): exit 0 only when the deployment is
 * healthy (or plainly destroyed). */
#include <stdio.h>
#include <stdlib.h>

#include "cli/deployment.h"
#include "engine/liveness.h"

static int cmd_status(gm_cli *cli, const gm_args *args);

const gm_command gm_command_status = {
    .name = "status",
    .summary = "show a deployment: its record, a live look at each resource, drift and health",
    .synopsis = "status NAME [--output text|json]",
    .notes = "Health: healthy (running, the instance running, every resource there), degraded\n"
             "(the instance terminated, stopped or gone, a resource missing or drifted, or\n"
             "only part deployed), failed, in_progress (creating, rolling back, destroying),\n"
             "destroyed, or unknown (the live look failed). Exit code 0 when healthy or\n"
             "destroyed, 5 when degraded, failed or in progress, 1 when unknown.",
    .min_pos = 1,
    .max_pos = 1,
    .pos_what = "one deployment name",
    .run = cmd_status,
};

static int exit_code_of(gm_live_health h)
{
    switch (h) {
    case GM_LIVE_HEALTHY:
    case GM_LIVE_DESTROYED:
    case GM_LIVE_STOPPED: return GM_EXIT_OK;
    case GM_LIVE_DEGRADED:
    case GM_LIVE_FAILED:
    case GM_LIVE_IN_PROGRESS: return GM_EXIT_DEGRADED;
    case GM_LIVE_UNKNOWN: return GM_EXIT_FAILED;
    }
    return GM_EXIT_FAILED;
}

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
    int rc;
    if (st == GM_OK) {
        gm_live_verdict v;
        gm_engine_verdict_of(dep, live, NULL, &v);
        gm_cli_print_status(cli, dep, live, &v);
        rc = exit_code_of(v.health);
    } else {
        rc = gm_cli_fail(cli, st, &err);
    }
    json_decref(live);
    gm_deployment_free(dep);
    gm_aws_client_free(aws);
    gm_store_free(store);
    return rc;
}
