/* geusemaker logs: a service's logs, read on the instance through SSM Run
 * Command (engine/logs.h); never SSH. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/deployment.h"
#include "core/buf.h"
#include "engine/logs.h"

static int cmd_logs(gm_cli *cli, const gm_args *args);

enum { OPT_SERVICE = 1, OPT_TAIL, OPT_SINCE, OPT_FOLLOW, OPT_INTERVAL, OPT_WAIT };

static const gm_opt logs_opts[] = {
    {.name = "service",
     .arg = "NAME",
     .help = "userdata (the boot), n8n, ollama, qdrant, crawl4ai, postgres or nginx",
     .dflt = "userdata",
     .id = OPT_SERVICE},
    {.name = "tail",
     .arg = "N",
     .help = "the last N lines of each source, or 'all'",
     .dflt = "200",
     .id = OPT_TAIL},
    {.name = "since",
     .arg = "DURATION",
     .help = "only what is newer: 30s, 10m, 2h, 1d",
     .id = OPT_SINCE},
    {.name = "follow",
     .short_name = 'f',
     .help = "keep reading what is new until Ctrl-C",
     .id = OPT_FOLLOW},
    {.name = "interval",
     .arg = "DURATION",
     .help = "with --follow: how often to look",
     .dflt = "5s",
     .id = OPT_INTERVAL},
    {.name = "wait",
     .arg = "DURATION",
     .help = "how long to wait for the instance's SSM agent to register",
     .dflt = "3m",
     .id = OPT_WAIT},
};

static const gm_optgroup logs_group = GM_OPTGROUP(NULL, logs_opts);

const gm_command gm_command_logs = {
    .name = "logs",
    .summary = "show a service's logs from the instance (through SSM Run Command, not SSH)",
    .synopsis = "logs NAME [--service S] [--tail N] [--since DURATION] [--follow] "
                "[--output text|json]",
    .notes = "Runs a shell script on the instance with SSM Run Command (AWS-RunShellScript)\n"
             "that changes nothing there but a temporary folder it removes. It reads docker\n"
             "logs of the service's container; for nginx its journal, error.log and\n"
             "access.log; for userdata cloud-init's output, the UserData's own log, the late\n"
             "start's log and the journal of the stack's units.\n"
             "A new instance's SSM agent registers a minute or two after boot: until then\n"
             "the command waits (--wait), then says the agent is offline. Large logs come\n"
             "back in pages; one fetch reads at most the last 1 MiB. --follow looks again\n"
             "every --interval and stops on Ctrl-C (exit 130); it prints text only.\n"
             "Needs ssm:SendCommand and ssm:GetCommandInvocation (docs/iam-policy.json).",
    .groups = {&logs_group},
    .min_pos = 1,
    .max_pos = 1,
    .pos_what = "one deployment name",
    .run = cmd_logs,
};

/* What the options ask for: checked before anything else happens. */
static int parse_request(gm_cli *cli, const gm_args *args, gm_logs_request *req)
{
    gm_error err = {0};
    const char *v = gm_args_value(args, OPT_SERVICE);
    gm_status st = gm_logs_service_parse(v ? v : "userdata", &req->service, &err);
    v = gm_args_value(args, OPT_TAIL);
    req->tail = GM_LOGS_TAIL_DEFAULT;
    if (st == GM_OK && v)
        st = gm_logs_parse_tail(v, &req->tail, &err);
    v = gm_args_value(args, OPT_SINCE);
    if (st == GM_OK && v)
        st = gm_logs_parse_duration("--since", v, 1, GM_LOGS_SINCE_MAX_S, &req->since_s, &err);
    int64_t s = GM_LOGS_INTERVAL_DEFAULT_S;
    v = gm_args_value(args, OPT_INTERVAL);
    if (st == GM_OK && v)
        st = gm_logs_parse_duration("--interval", v, 1, GM_LOGS_INTERVAL_MAX_S, &s, &err);
    req->interval_ms = s * 1000;
    s = GM_LOGS_WAIT_DEFAULT_S;
    v = gm_args_value(args, OPT_WAIT);
    if (st == GM_OK && v)
        st = gm_logs_parse_duration("--wait", v, 0, GM_LOGS_WAIT_MAX_S, &s, &err);
    req->wait_ms = s * 1000;
    req->follow = gm_args_has(args, OPT_FOLLOW);
    if (st != GM_OK)
        return gm_cli_fail(cli, st, &err);
    if (req->follow && cli->output == GM_OUTPUT_JSON)
        return gm_cli_usage_error(cli, "--follow prints text as it comes: it cannot be combined "
                                       "with --output json");
    if (!req->follow && gm_args_has(args, OPT_INTERVAL))
        return gm_cli_usage_error(cli, "--interval goes with --follow");
    return -1;
}

typedef struct logs_out {
    gm_cli *cli;
    gm_buf json; /* --output json: the whole log */
} logs_out;

static GM_MUST_CHECK gm_status write_out(void *ctx, const char *data, size_t len, gm_error *err)
{
    logs_out *o = ctx;
    if (o->cli->output == GM_OUTPUT_JSON) {
        gm_status st = gm_buf_append(&o->json, data, len);
        return st == GM_OK ? GM_OK : gm_error_set(err, st, "the log is too large to hold");
    }
    if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)
        return gm_error_set(err, GM_ERR_IO, "cannot write the log to stdout");
    return GM_OK;
}

static void note_out(void *ctx, const char *text)
{
    logs_out *o = ctx;
    if (o->cli->output != GM_OUTPUT_JSON || o->cli->term.tty)
        fprintf(stderr, "%s\n", text);
}

static void print_json(const char *name, const gm_logs_request *req, const gm_logs_result *res,
                       const gm_buf *log)
{
    json_t *doc = json_pack("{s:s, s:s, s:s}", "name", name, "instance_id", req->instance_id,
                            "service", gm_logs_service_name(req->service));
    if (!doc)
        return;
    json_object_set_new(doc, "tail",
                        req->tail == GM_LOGS_TAIL_ALL ? json_string("all")
                                                      : json_integer((json_int_t)req->tail));
    json_object_set_new(doc, "since_s",
                        req->since_s ? json_integer((json_int_t)req->since_s) : json_null());
    json_object_set_new(doc, "lines", gm_logs_lines_json(gm_buf_cstr(log), log->len));
    json_object_set_new(doc, "bytes", json_integer((json_int_t)res->bytes));
    json_object_set_new(doc, "truncated", json_boolean(res->truncated));
    json_object_set_new(doc, "commands", json_integer(res->commands));
    gm_cli_print_json(doc);
}

/* Reads the logs; returns the exit code. */
static int read_logs(gm_cli *cli, gm_aws_client *aws, const char *name, gm_logs_request *req)
{
    gm_error err = {0};
    gm_engine_settings settings;
    gm_status st = gm_cli_engine_settings(&settings, &err);
    if (st != GM_OK)
        return gm_cli_fail(cli, st, &err);
    /* GEUSEMAKER_POLL_MS (tests) shortens both waits. */
    req->poll_ms = settings.poll_ms;
    req->retry_ms = settings.poll_ms;
    char comment[96];
    snprintf(comment, sizeof comment, "geusemaker logs %s --service %s", name,
             gm_logs_service_name(req->service));
    req->comment = comment;
    logs_out out = {.cli = cli};
    gm_buf_init(&out.json, 2 * GM_LOGS_MAX_BYTES);
    req->output = write_out;
    req->note = note_out;
    req->ctx = &out;
    req->interrupt = &gm_cli_interrupted;
    gm_cli_install_interrupt_handlers();
    gm_logs_result res;
    st = gm_engine_logs(aws, req, &res, &err);
    int rc = GM_EXIT_OK;
    if (st == GM_OK && cli->output == GM_OUTPUT_JSON)
        print_json(name, req, &res, &out.json);
    else if (st == GM_ERR_INTERRUPTED && req->follow)
        rc = gm_cli_interrupt_exit_code(); /* Ctrl-C is how --follow ends */
    else if (st != GM_OK)
        rc = gm_cli_fail(cli, st, &err);
    gm_buf_release(&out.json);
    return rc;
}

static int cmd_logs(gm_cli *cli, const gm_args *args)
{
    gm_logs_request req = {0};
    int rc = parse_request(cli, args, &req);
    if (rc >= 0)
        return rc;
    const char *name = args->pos[0];
    gm_error err = {0};
    gm_store *store = NULL;
    gm_deployment *dep = NULL;
    gm_aws_client *aws = NULL;
    char instance[32];
    gm_status st = gm_cli_open_deployment(cli, name, &store, &dep, &aws, &err);
    if (st == GM_OK)
        st = gm_logs_instance_of(aws, dep, instance, sizeof instance, &err);
    if (st == GM_OK) {
        req.instance_id = instance;
        rc = read_logs(cli, aws, name, &req);
    } else {
        rc = gm_cli_fail(cli, st, &err);
    }
    gm_deployment_free(dep);
    gm_aws_client_free(aws);
    gm_store_free(store);
    return rc;
}
