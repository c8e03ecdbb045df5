/* geusemaker connect: a port forward or a shell on the deployment's instance
 * through SSM Session Manager, carried by the AWS CLI and its
 * session-manager-plugin (engine/connect.h makes the plan). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/deployment.h"
#include "core/str.h"
#include "engine/connect.h"

static int cmd_connect(gm_cli *cli, const gm_args *args);

enum { OPT_SERVICE = 1, OPT_LOCAL_PORT, OPT_SHELL };

static const gm_opt connect_opts[] = {
    {.name = "service",
     .arg = "SERVICE",
     .help = "forward the port of n8n, ollama, qdrant or crawl4ai (postgres publishes none: "
             "use --shell)",
     .dflt = "n8n",
     .id = OPT_SERVICE},
    {.name = "local-port",
     .arg = "PORT",
     .help = "the port on this machine, 1 to 65535",
     .dflt = "the service's port",
     .id = OPT_LOCAL_PORT},
    {.name = "shell",
     .help = "open a shell on the instance instead of a port forward",
     .id = OPT_SHELL},
};

static const gm_optgroup connect_group = GM_OPTGROUP(NULL, connect_opts);

const gm_command gm_command_connect = {
    .name = "connect",
    .summary = "forward a service's port, or open a shell, through SSM Session Manager",
    .synopsis = "connect NAME [--service n8n|ollama|qdrant|crawl4ai] [--local-port P] | --shell",
    .notes = "Runs 'aws ssm start-session' (the AWS CLI and its session-manager-plugin,\n"
             "found on PATH) for the instance: no SSH key and no open port needed.\n"
             "--service forwards localhost:PORT to the port the service publishes on the\n"
             "instance's 127.0.0.1 (n8n 5678, qdrant 6333, ollama 11434, crawl4ai 11235);\n"
             "PostgreSQL publishes none (use --shell, then docker exec). The exit code is\n"
             "then the session's. Without the AWS CLI or the plugin it prints the command\n"
             "and how to install them: exit 1. An instance that is not running: exit 1.\n"
             "With --output json it prints the plan (target, argv, \"ran\": false) and runs\n"
             "nothing. The caller needs ssm:StartSession (docs/iam-policy.json).",
    .groups = {&connect_group},
    .min_pos = 1,
    .max_pos = 1,
    .pos_what = "one deployment name",
    .run = cmd_connect,
};

#define AWS_CLI "aws"
#define PLUGIN "session-manager-plugin"
#define INSTALL_CLI "https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
#define INSTALL_PLUGIN                                                      \
    "https://docs.aws.amazon.com/systems-manager/latest/userguide/session-" \
    "manager-working-with-install-plugin.html"

/* The first executable regular file called prog in $PATH (an empty entry is
 * the current directory), malloc'd, or NULL. */
static char *find_on_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    for (const char *p = path;; p++) {
        size_t len = strcspn(p, ":");
        char *file = gm_strfmt("%.*s/%s", (int)(len ? len : 1), len ? p : ".", prog);
        struct stat sb;
        if (file && stat(file, &sb) == 0 && S_ISREG(sb.st_mode) && access(file, X_OK) == 0)
            return file;
        free(file);
        p += len;
        if (!*p)
            return NULL;
    }
}

/* argv as one shell command line: words with anything but safe characters
 * in single quotes. */
static void print_command(FILE *out, char *const *argv)
{
    for (size_t i = 0; argv[i]; i++) {
        const char *w = argv[i];
        bool plain = *w && strspn(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789_./:=,@%+-") == strlen(w);
        fputs(i ? " " : "", out);
        if (plain) {
            fputs(w, out);
            continue;
        }
        fputc('\'', out);
        for (; *w; w++)
            fputs(*w == '\'' ? "'\\''" : (char[]){*w, 0}, out);
        fputc('\'', out);
    }
    fputc('\n', out);
}

/* What to open once the forward runs, per service. */
static void print_what_to_open(const gm_connect_plan *p, const char *name)
{
    static const struct {
        const char *service, *what;
    } hints[] = {
        {"n8n", "n8n: http://localhost:%d/"},
        {"qdrant", "the Qdrant dashboard: http://localhost:%d/dashboard (its API key: "
                   "geusemaker secrets %s --yes)"},
        {"ollama", "the Ollama API: http://localhost:%d/ (straight to Ollama: no token)"},
        {"crawl4ai", "the Crawl4AI playground: http://localhost:%d/playground (its token: "
                     "geusemaker secrets %s --yes)"},
    };
    for (size_t i = 0; i < sizeof hints / sizeof *hints; i++)
        if (strcmp(hints[i].service, p->service) == 0) {
            fprintf(stderr, "Open ");
            fprintf(stderr, hints[i].what, p->local_port, name);
            fprintf(stderr, "\n");
        }
}

static json_t *plan_json(const gm_deployment *dep, const gm_connect_plan *p, const char *state,
                         const char *aws, const char *plugin)
{
    json_t *argv = json_array();
    for (size_t i = 0; argv && i < p->argc; i++)
        json_array_append_new(argv, json_string(p->argv[i]));
    json_t *actions = json_array();
    for (size_t i = 0; actions && gm_connect_ssm_actions[i]; i++)
        json_array_append_new(actions, json_sprintf("ssm:%s", gm_connect_ssm_actions[i]));
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s?}", "name", dep->name, "target", p->target,
                          "region", dep->region, "instance_state", state, "service", p->service);
    if (o && p->service)
        json_object_update_new(
            o, json_pack("{s:i, s:i}", "remote_port", p->remote_port, "local_port", p->local_port));
    if (o)
        json_object_update_new(o, json_pack("{s:o, s:{s:s?, s:s?}, s:o, s:b}", "argv", argv,
                                            "tools", AWS_CLI, aws, PLUGIN, plugin, "ssm_actions",
                                            actions, "ran", 0));
    return o;
}

/* The AWS CLI or its plugin is missing: the command to run once they are
 * installed, and where to get them. */
static int print_missing(gm_cli *cli, const gm_connect_plan *p, const char *aws, const char *plugin)
{
    char tag[64];
    fprintf(stderr,
            "%s connect runs the AWS CLI and its Session Manager plugin, and %s%s%s %s "
            "not on PATH\n",
            gm_term_style(&cli->term, "1;31", "error:", tag, sizeof tag), aws ? "" : AWS_CLI,
            !aws && !plugin ? " and " : "", plugin ? "" : PLUGIN, !aws && !plugin ? "are" : "is");
    fprintf(stderr, "Once installed, this is the command (it is printed on stdout):\n");
    print_command(stdout, p->argv);
    if (!aws)
        fprintf(stderr, "hint: install the AWS CLI: %s\n", INSTALL_CLI);
    fprintf(stderr, "hint: install the Session Manager plugin for the AWS CLI: %s\n",
            INSTALL_PLUGIN);
    return GM_EXIT_FAILED;
}

/* Runs the plan in place of this process; returns only when it cannot. */
static int run_plan(gm_cli *cli, const gm_deployment *dep, const gm_connect_plan *p,
                    const char *aws)
{
    if (p->service) {
        fprintf(stderr,
                "Forwarding localhost:%d to %s (127.0.0.1:%d on %s) through SSM Session Manager; "
                "Ctrl-C ends it.\n",
                p->local_port, p->service, p->remote_port, p->target);
        print_what_to_open(p, dep->name);
    } else {
        fprintf(stderr, "Opening a shell on %s through SSM Session Manager ('exit' ends it).\n",
                p->target);
    }
    if (cli->verbose) {
        fprintf(stderr, "running: ");
        print_command(stderr, p->argv);
    }
    fflush(stdout);
    fflush(stderr);
    execv(aws, p->argv);
    gm_error err = {0};
    return gm_cli_fail(
        cli, gm_error_set(&err, GM_ERR_IO, "cannot run '%s': %s", aws, strerror(errno)), &err);
}

/* The options, checked before anything else: exit 2 on bad input. */
static int read_request(gm_cli *cli, const gm_args *args, gm_connect_request *req)
{
    memset(req, 0, sizeof *req);
    bool shell = gm_args_has(args, OPT_SHELL);
    const char *service = gm_args_value(args, OPT_SERVICE);
    const char *lp = gm_args_value(args, OPT_LOCAL_PORT);
    if (shell && service)
        return gm_cli_usage_error(cli, "--service and --shell are exclusive: a port forward "
                                       "or a shell, not both");
    if (shell && lp)
        return gm_cli_usage_error(cli, "--local-port applies to a port forward, not to --shell");
    int64_t port = 0;
    if (lp && !gm_str_to_int64(lp, 1, 65535, &port))
        return gm_cli_usage_error(cli,
                                  "invalid --local-port '%.32s': expected a port number from 1 "
                                  "to 65535",
                                  lp);
    req->service = shell ? NULL : service ? service : "n8n";
    req->local_port = (int)port;
    const char *env_profile = getenv("AWS_PROFILE");
    req->profile = cli->profile ? cli->profile : env_profile && *env_profile ? env_profile : NULL;
    gm_error err = {0};
    int remote = 0;
    gm_status st = gm_engine_check_name(args->pos[0], &err);
    if (st == GM_OK && req->service)
        st = gm_engine_connect_port(args->pos[0], req->service, &remote, &err);
    return st == GM_OK ? -1 : gm_cli_fail(cli, st, &err);
}

static int cmd_connect(gm_cli *cli, const gm_args *args)
{
    gm_connect_request req;
    int rc = read_request(cli, args, &req);
    if (rc >= 0)
        return rc;
    gm_error err = {0};
    gm_store *store = NULL;
    gm_deployment *dep = NULL;
    gm_aws_client *aws = NULL;
    gm_connect_plan plan;
    memset(&plan, 0, sizeof plan);
    char state[32] = "";
    gm_status st = gm_cli_open_deployment(cli, args->pos[0], &store, &dep, &aws, &err);
    if (st == GM_OK)
        st = gm_engine_connect_plan(aws, dep, &req, &plan, &err);
    if (st == GM_OK)
        st = gm_engine_connect_check_instance(aws, dep, &plan, state, sizeof state, &err);
    char *aws_path = st == GM_OK ? find_on_path(AWS_CLI) : NULL;
    char *plugin_path = st == GM_OK ? find_on_path(PLUGIN) : NULL;
    if (st != GM_OK)
        rc = gm_cli_fail(cli, st, &err);
    else if (cli->output == GM_OUTPUT_JSON)
        rc = gm_cli_print_json(plan_json(dep, &plan, state, aws_path, plugin_path))
                 ? GM_EXIT_OK
                 : GM_EXIT_FAILED;
    else if (!aws_path || !plugin_path)
        rc = print_missing(cli, &plan, aws_path, plugin_path);
    else
        rc = run_plan(cli, dep, &plan, aws_path);
    free(aws_path);
    free(plugin_path);
    gm_connect_plan_release(&plan);
    gm_deployment_free(dep);
    gm_aws_client_free(aws);
    gm_store_free(store);
    return rc;
}
