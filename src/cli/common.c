/* Shared command-line plumbing: global options, errors, the AWS client. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/str.h"
#include "cost/prices.h"
#include "health/health.h"

/* Whether this run has printed its JSON document already: --output json
 * prints exactly one, a failure's only when nothing else was printed. */
static bool json_printed;

bool gm_cli_print_json(json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    bool ok = text && printf("%s\n", text) >= 0;
    free(text);
    json_printed |= ok;
    return ok;
}

/* With --output json, a failure is a document too: {"error": {...},
 * "exit_code": N} on stdout (unless the command printed its own). */
static void print_json_error(gm_cli *cli, const char *msg, gm_status st, const gm_error *err,
                             int code)
{
    if (cli->output != GM_OUTPUT_JSON || json_printed)
        return;
    json_t *e = json_pack("{s:s, s:s}", "message", msg, "kind", gm_status_name(st));
    if (e && err && *err->aws_code)
        json_object_set_new(e, "aws_code", json_string(err->aws_code));
    if (e && err && *err->request_id)
        json_object_set_new(e, "request_id", json_string(err->request_id));
    gm_cli_print_json(json_pack("{s:o, s:i}", "error", e, "exit_code", code));
}

static void print_error_line(gm_cli *cli, const char *msg)
{
    char tag[64];
    fprintf(stderr, "%s %s\n", gm_term_style(&cli->term, "1;31", "error:", tag, sizeof tag), msg);
}

int gm_cli_usage_error(gm_cli *cli, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_error_line(cli, msg);
    print_json_error(cli, msg, GM_ERR_INVALID, NULL, GM_EXIT_USAGE);
    return GM_EXIT_USAGE;
}

static int exit_code_of(gm_status st)
{
    switch (st) {
    case GM_OK: return GM_EXIT_OK;
    case GM_ERR_INVALID: return GM_EXIT_USAGE;
    case GM_ERR_INTERRUPTED: return gm_cli_interrupt_exit_code();
    case GM_ERR_LOCKED: return GM_EXIT_LOCKED;
    case GM_ERR_AUTH: return GM_EXIT_AUTH;
    default: return GM_EXIT_FAILED;
    }
}

int gm_cli_fail(gm_cli *cli, gm_status st, const gm_error *err)
{
    const char *msg = err && *err->message ? err->message : gm_status_name(st);
    print_error_line(cli, msg);
    if (err && *err->request_id)
        fprintf(stderr, "  request id: %s\n", err->request_id);
    if (err && err->attempts > 1)
        fprintf(stderr, "  attempts: %d\n", err->attempts);
    if (st == GM_ERR_AUTH && err && *err->aws_code)
        fprintf(stderr, "hint: AWS rejected the credentials from this run's credential "
                        "source; check them with 'geusemaker whoami'\n");
    int code = exit_code_of(st);
    if (code != GM_EXIT_OK)
        print_json_error(cli, msg, st, err, code);
    return code;
}

static void observe_call(void *ctx, const gm_aws_call_info *info)
{
    (void)ctx;
    json_t *f =
        json_pack("{s:s, s:s, s:i, s:I, s:I}", "service", info->service, "action", info->action,
                  "attempt", info->attempt, "duration_ms", (json_int_t)info->duration_ms,
                  "http_status", (json_int_t)info->http_status);
    if (!f)
        return;
    if (info->request_id)
        json_object_set_new(f, "request_id", json_string(info->request_id));
    if (info->error_code) {
        json_object_set_new(f, "result", json_string("error"));
        json_object_set_new(f, "error_code", json_string(info->error_code));
        if (info->error_message)
            json_object_set_new(f, "error_message", json_string(info->error_message));
        json_object_set_new(f, "will_retry", json_boolean(info->will_retry));
        if (info->will_retry)
            json_object_set_new(f, "backoff_ms", json_integer(info->backoff_ms));
    } else {
        json_object_set_new(f, "result", json_string("ok"));
    }
    gm_log_event(info->error_code ? GM_LOG_WARN : GM_LOG_DEBUG, "api_call", f);
}

static gm_aws_client_options client_options(gm_cli *cli)
{
    gm_aws_client_options opts = {
        .region = gm_cli_region_flag(cli),
        .profile = cli->profile,
        .observer = observe_call,
    };
    return opts;
}

gm_status gm_cli_aws_client(gm_cli *cli, gm_aws_client **out, gm_error *err)
{
    gm_aws_client_options opts = client_options(cli);
    return gm_aws_client_new(&opts, out, err);
}

gm_status gm_cli_aws_client_quick(gm_cli *cli, const char *region, gm_aws_client **out,
                                  gm_error *err)
{
    gm_aws_client_options opts = client_options(cli);
    opts.region = region;
    opts.max_attempts = 1;
    opts.connect_timeout_ms = GM_CLI_QUICK_CONNECT_MS;
    opts.total_timeout_ms = GM_CLI_QUICK_TOTAL_MS;
    return gm_aws_client_new(&opts, out, err);
}

gm_aws_client *gm_cli_pricing_client(gm_cli *cli)
{
    gm_aws_client_options opts = client_options(cli);
    return gm_cost_pricing_client_new(&opts);
}

/* A positive whole number of milliseconds (at most a day) from an
 * environment variable (unset or empty: 0). */
static GM_MUST_CHECK gm_status env_ms(const char *name, int64_t *out, gm_error *err)
{
    const char *v = getenv(name);
    *out = 0;
    if (v && *v && !gm_str_to_int64(v, 1, 24LL * 3600 * 1000, out))
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid %s '%.64s': expected a whole number of milliseconds from 1 "
                            "to 86400000 (or unset it)",
                            name, v);
    return GM_OK;
}

/* An http(s) url from an environment variable (unset or empty: NULL). */
static GM_MUST_CHECK gm_status env_url(const char *name, const char **out, gm_error *err)
{
    const char *v = getenv(name);
    *out = v && *v ? v : NULL;
    return *out ? gm_url_check_http(*out, name, err) : GM_OK;
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

gm_status gm_cli_engine_settings(gm_engine_settings *s, gm_error *err)
{
    memset(s, 0, sizeof *s);
    gm_status st = env_ms("GEUSEMAKER_POLL_MS", &s->poll_ms, err);
    if (st == GM_OK)
        st = env_ms("GEUSEMAKER_DESTROY_TIMEOUT_MS", &s->destroy_timeout_ms, err);
    if (st == GM_OK)
        st = env_ms("GEUSEMAKER_HEALTH_POLL_MS", &s->health_poll_ms, err);
    if (st == GM_OK)
        st = env_url(GM_HEALTH_ENDPOINT_ENV, &s->health_endpoint, err);
    if (st == GM_OK)
        st = env_url("GEUSEMAKER_IP_ENDPOINT", &s->ip_endpoint, err);
    s->ami_parameter = env_nonempty("GEUSEMAKER_AMI_PARAMETER");
    return st;
}

int gm_cli_check_environment(gm_cli *cli)
{
    gm_error err = {0};
    gm_engine_settings s;
    gm_status st = gm_aws_check_environment(&err);
    if (st == GM_OK)
        st = gm_cli_engine_settings(&s, &err);
    return st == GM_OK ? -1 : gm_cli_fail(cli, st, &err);
}
