/* Shared command-line plumbing: global options, errors, the AWS client. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"

int gm_cli_global_option(gm_cli *cli, int code, const char *arg)
{
    switch (code) {
    case GM_OPT_REGION: cli->region = arg; return 0;
    case GM_OPT_PROFILE: cli->profile = arg; return 0;
    case GM_OPT_OUTPUT:
        if (strcmp(arg, "json") == 0)
            cli->output = GM_OUTPUT_JSON;
        else if (strcmp(arg, "text") == 0)
            cli->output = GM_OUTPUT_TEXT;
        else
            return gm_cli_usage_error(cli, "invalid --output '%s': expected 'text' or 'json'", arg);
        return 0;
    case GM_OPT_VERBOSE:
        cli->verbose = true;
        gm_log_set_verbose(true);
        return 0;
    case GM_OPT_NO_COLOR:
        cli->no_color = true;
        gm_term_init(&cli->term, stderr, true);
        return 0;
    case GM_OPT_HELP: return -2;
    default: return -1;
    }
}

void gm_cli_print_command_help(const gm_command *cmd, FILE *out)
{
    fprintf(out, "usage: geusemaker %s\n\n%s\n", cmd->usage, cmd->summary);
    fprintf(out, "\noptions for every command: --region R, --profile P, --output text|json,\n"
                 "--verbose, --no-color, --help. Exit codes: 0 ok, 1 failed, 2 bad input,\n"
                 "3 locked, 4 credentials rejected or missing.\n");
}

int gm_cli_common_option(gm_cli *cli, const gm_command *cmd, int code, const char *arg)
{
    if (code == '?') {
        extern int optopt;
        if (optopt)
            return gm_cli_usage_error(cli, "option '-%c' of '%s' is unknown or lacks its value",
                                      optopt, cmd->name);
        return gm_cli_usage_error(cli, "unknown option '%s' for '%s' (see 'geusemaker %s --help')",
                                  optind > 0 && cli->cmd_argv ? cli->cmd_argv[optind - 1] : "?",
                                  cmd->name, cmd->name);
    }
    if (code == ':')
        return gm_cli_usage_error(cli, "option '%s' of '%s' needs a value",
                                  optind > 0 && cli->cmd_argv ? cli->cmd_argv[optind - 1] : "?",
                                  cmd->name);
    int rc = gm_cli_global_option(cli, code, arg);
    if (rc == -2) {
        gm_cli_print_command_help(cmd, stdout);
        return GM_EXIT_OK;
    }
    if (rc == -1)
        return gm_cli_usage_error(cli, "unhandled option for '%s'", cmd->name);
    return rc == 0 ? -1 : rc;
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
    return GM_EXIT_USAGE;
}

int gm_cli_fail(gm_cli *cli, gm_status st, const gm_error *err)
{
    const char *msg = err && *err->message ? err->message : gm_status_name(st);
    print_error_line(cli, msg);
    if (err && *err->request_id)
        fprintf(stderr, "  request id: %s\n", err->request_id);
    if (err && err->attempts > 1)
        fprintf(stderr, "  attempts: %d\n", err->attempts);
    switch (st) {
    case GM_OK: return GM_EXIT_OK;
    case GM_ERR_INVALID: return GM_EXIT_USAGE;
    case GM_ERR_LOCKED: return GM_EXIT_LOCKED;
    case GM_ERR_AUTH:
        if (err && *err->aws_code)
            fprintf(stderr, "hint: AWS rejected the credentials from this run's credential "
                            "source; check them with 'geusemaker whoami'\n");
        return GM_EXIT_AUTH;
    default: return GM_EXIT_FAILED;
    }
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

gm_status gm_cli_aws_client(gm_cli *cli, gm_aws_client **out, gm_error *err)
{
    gm_aws_client_options opts = {
        .region = cli->region,
        .profile = cli->profile,
        .observer = observe_call,
    };
    return gm_aws_client_new(&opts, out, err);
}

gm_aws_client *gm_cli_pricing_client(gm_cli *cli)
{
    /* The Price List API lives in us-east-1. Without it the shipped table is
     * used, and every figure says so. */
    gm_aws_client_options opts = {
        .region = "us-east-1",
        .profile = cli->profile,
        .observer = observe_call,
        .max_attempts = 1,
        .total_timeout_ms = 5000,
    };
    gm_aws_client *c = NULL;
    gm_error err = {0};
    if (gm_aws_client_new(&opts, &c, &err) != GM_OK)
        return NULL;
    return c;
}
