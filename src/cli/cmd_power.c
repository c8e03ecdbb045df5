/* geusemaker stop / start: no instance while nobody uses the stack (the
 * compute cost stops, the data and the address stay), and back again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/deployment.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "cost/estimate.h"

static int cmd_stop(gm_cli *cli, const gm_args *args);
static int cmd_start(gm_cli *cli, const gm_args *args);

const gm_command gm_command_stop = {
    .name = "stop",
    .summary = "stop the stack's instance (its Auto Scaling group to 0): compute cost stops, the "
               "data and the address stay",
    .synopsis = "stop NAME",
    .min_pos = 1,
    .max_pos = 1,
    .pos_what = "one deployment name",
    .notes = "Sets the group's desired capacity to 0 and waits until the instance is\n"
             "terminated. The file system (PostgreSQL, n8n, Qdrant's snapshots), the\n"
             "Elastic IP and the load balancer stay; stop prints what they still cost.\n"
             "Qdrant snapshots to the file system on shutdown. 'geusemaker start NAME'\n"
             "brings the stack back. status exits 0 for a stopped deployment.",
    .run = cmd_stop,
};

const gm_command gm_command_start = {
    .name = "start",
    .summary = "start a stopped stack again (its Auto Scaling group to 1) and wait until it serves",
    .synopsis = "start NAME",
    .min_pos = 1,
    .max_pos = 1,
    .pos_what = "one deployment name",
    .notes = "Sets the group's desired capacity to 1 and waits for the instance in service\n"
             "(--launch-timeout of the deploy; spot refused in every pool moves the group\n"
             "to on-demand, as deploy does) and for the stack's health.",
    .run = cmd_start,
};

typedef gm_status (*power_fn)(const gm_engine_options *o, gm_deployment *dep, gm_error *err);

/* What the stopped deployment still costs, as text or JSON. */
static void print_outcome(gm_cli *cli, const gm_deployment *dep, bool stop, int64_t t0)
{
    gm_engine_summary sum;
    gm_engine_summary_of(dep, &sum);
    double still = stop ? gm_cost_stopped_monthly(dep->cost, sum.elastic_ip) : -1;
    double secs = (double)(gm_now_ms() - t0) / 1000.0;
    if (cli->output == GM_OUTPUT_JSON) {
        json_t *o = json_pack("{s:s, s:s, s:s?, s:f}", "name", dep->name, "status",
                              gm_dep_status_name(dep->status), "instance_id", sum.instance_id,
                              "duration_s", secs);
        if (stop && still >= 0)
            json_object_set_new(o, "stopped_cost_monthly", json_real(still));
        gm_cli_print_json(o);
        return;
    }
    if (!stop) {
        printf("Started '%s' in %.1fs: instance %s (%s, %s).\n", dep->name, secs,
               sum.instance_id ? sum.instance_id : "?", sum.instance_type ? sum.instance_type : "?",
               sum.market ? sum.market : "?");
        return;
    }
    printf("Stopped '%s' in %.1fs: no instance runs; the file system%s%s stay.\n", dep->name, secs,
           sum.elastic_ip ? ", the Elastic IP" : "", sum.alb_dns ? " and the load balancer" : "");
    if (still >= 0)
        printf("While stopped it still costs about $%.2f/month (file system%s%s; estimate).\n",
               still, sum.elastic_ip ? ", idle address" : "", sum.alb_dns ? ", load balancer" : "");
    printf("Start it again: geusemaker start %s\n", dep->name);
}

static int run_power(gm_cli *cli, const gm_args *args, bool stop)
{
    const char *name = args->pos[0];
    gm_cli_session s = {0};
    gm_status st = gm_cli_session_open(cli, name, &s);
    if (st == GM_OK)
        st = gm_cli_session_connect(&s);
    if (st != GM_OK)
        return gm_cli_session_close(&s, st, GM_EXIT_FAILED);
    gm_log_event(GM_LOG_INFO, stop ? "stop_start" : "start_start",
                 json_pack("{s:s}", "name", name));
    char title[128];
    snprintf(title, sizeof title, "%s \"%s\" in %s", stop ? "Stopping" : "Starting", name,
             s.dep->region);
    gm_engine_options eo = gm_cli_session_engine(&s, title);
    power_fn fn = stop ? gm_engine_stop : gm_engine_start;
    st = fn(&eo, s.dep, &s.err);
    gm_cli_session_done(&s);
    gm_log_event(st == GM_OK ? GM_LOG_INFO : GM_LOG_ERROR, stop ? "stop_end" : "start_end",
                 json_pack("{s:s, s:I, s:s?}", "status", gm_dep_status_name(s.dep->status),
                           "duration_ms", (json_int_t)(gm_now_ms() - s.t0), "error",
                           st == GM_OK ? NULL : s.err.message));
    if (st != GM_OK)
        gm_error_prefix(&s.err, "%s '%s'", stop ? "stop" : "start", name);
    else
        print_outcome(cli, s.dep, stop, s.t0);
    return gm_cli_session_close(&s, st, GM_EXIT_OK);
}

static int cmd_stop(gm_cli *cli, const gm_args *args)
{
    return run_power(cli, args, true);
}

static int cmd_start(gm_cli *cli, const gm_args *args)
{
    return run_power(cli, args, false);
}
