/* geusemaker: entry point and command table. */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/config.h"
#include "cli/deployment.h"

static const gm_command *const commands[] = {
    &gm_command_plan,    &gm_command_deploy,     &gm_command_destroy, &gm_command_adopt,
    &gm_command_cleanup, &gm_command_list,       &gm_command_cost,    &gm_command_status,
    &gm_command_health,  &gm_command_stop,       &gm_command_start,   &gm_command_update,
    &gm_command_logs,    &gm_command_connect,    &gm_command_secrets, &gm_command_userdata,
    &gm_command_whoami,  &gm_command_forget,     &gm_command_config,  &gm_command_init,
    &gm_command_image,   &gm_command_completion, &gm_command_manpage,
};
#define N_COMMANDS (sizeof commands / sizeof *commands)

const gm_command *const *gm_cli_commands(size_t *out_n)
{
    *out_n = N_COMMANDS;
    return commands;
}

static void print_help(FILE *out)
{
    fprintf(out, "usage: geusemaker [--version] [--help] <command> [options]\n"
                 "\n"
                 "Deploys a private AI stack (n8n, Ollama, Qdrant, Crawl4AI, PostgreSQL) on AWS\n"
                 "and manages it: status, health, cost, destroy.\n"
                 "\n"
                 "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!commands[i]->hidden)
            fprintf(out, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "\n%s:\n", gm_cli_global_group.title);
    for (size_t i = 0; i < gm_cli_global_group.n; i++) {
        const gm_opt *o = &gm_cli_global_group.opts[i];
        char head[32];
        snprintf(head, sizeof head, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(out, "  %-16s %s\n", head, o->help);
    }
    fprintf(out,
            "\n"
            "environment:\n"
            "  AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>  endpoint overrides, http:// or\n"
            "                   https:// (EC2, STS, IAM, SSM, EFS, ELASTIC_LOAD_BALANCING_V2)\n"
            "  AWS_CA_BUNDLE    CA certificates for TLS verification\n"
            "  AWS_MAX_ATTEMPTS attempts per request in all, 1 to 20 (default 3)\n"
            "  GEUSEMAKER_HOME  state directory (default ~/.geusemaker)\n"
            "  A malformed number or url in these or the GEUSEMAKER_* variables: exit 2.\n"
            "\n"
            "exit codes:\n"
            "  0    success\n"
            "  1    the operation failed (AWS or runtime failure)\n"
            "  2    bad input (option, variable, region, unknown name): nothing was done\n"
            "  3    the deployment is locked by another geusemaker process\n"
            "  4    credentials missing, broken or rejected\n"
            "  5    status: the deployment is not healthy (degraded, failed or unfinished)\n"
            "  130  interrupted by SIGINT (Ctrl-C), 143 by SIGTERM: stopped at a safe point,\n"
            "       the record saved for 'deploy --resume' or 'destroy'\n"
            "\n"
            "'geusemaker <command> --help' describes a command.\n");
}

static const gm_command *find_command(const char *name)
{
    for (size_t k = 0; k < N_COMMANDS; k++)
        if (strcmp(commands[k]->name, name) == 0)
            return commands[k];
    return NULL;
}

static int unknown_command(gm_cli *cli, const char *name)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t k = 0; k < N_COMMANDS; k++) {
        size_t d = gm_edit_distance(name, commands[k]->name);
        if (d < best_d) {
            best_d = d;
            best = commands[k]->name;
        }
    }
    if (best && best_d <= 2 && best_d * 3 <= strlen(name) + 2)
        return gm_cli_usage_error(cli,
                                  "unknown command '%s' (did you mean '%s'? see 'geusemaker "
                                  "--help')",
                                  name, best);
    return gm_cli_usage_error(cli, "unknown command '%s' (see 'geusemaker --help')", name);
}

/* Global options given before the command ("--region R", "--output=json").
 * Returns -1 to go on with argv[*i] as the command, or an exit code. */
static int leading_options(gm_cli *cli, int argc, char **argv, int *i)
{
    for (; *i < argc && argv[*i][0] == '-'; (*i)++) {
        const char *a = argv[*i];
        if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            printf("geusemaker %s\n", GM_VERSION);
            return GM_EXIT_OK;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help(stdout);
            return GM_EXIT_OK;
        }
        char name[32] = "";
        const char *value = NULL;
        const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
        size_t n = eq ? (size_t)(eq - a - 2) : strlen(a) - (a[1] == '-' ? 2 : 1);
        if (a[1] == '-' && n < sizeof name) {
            memcpy(name, a + 2, n);
            name[n] = '\0';
        }
        const gm_opt *o = NULL;
        for (size_t k = 0; *name && k < gm_cli_global_group.n; k++)
            if (strcmp(gm_cli_global_group.opts[k].name, name) == 0)
                o = &gm_cli_global_group.opts[k];
        if (!o || strcmp(name, "help") == 0)
            return gm_cli_usage_error(cli, "unknown option '%s' (see 'geusemaker --help')", a);
        if (o->arg) {
            value = eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
            if (!value)
                return gm_cli_usage_error(cli, "option '--%s' needs a value (%s)", o->name, o->arg);
        }
        if (gm_cli_global_option(cli, o->name, value ? value : "") == GM_EXIT_USAGE)
            return GM_EXIT_USAGE;
    }
    return -1;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "C");
    gm_cli cli = {.prog = "geusemaker", .output = GM_OUTPUT_TEXT};
    gm_term_init(&cli.term, stderr, false);
    int i = 1;
    int rc = leading_options(&cli, argc, argv, &i);
    if (rc >= 0)
        return rc;
    gm_term_init(&cli.term, stderr, cli.no_color);
    if (i >= argc) {
        print_help(stderr);
        return GM_EXIT_USAGE;
    }
    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        const gm_command *c = i + 1 < argc ? find_command(argv[i + 1]) : NULL;
        if (c)
            gm_cli_print_command_help(c, stdout);
        else
            print_help(stdout);
        return GM_EXIT_OK;
    }
    const gm_command *cmd = find_command(name);
    if (!cmd)
        return unknown_command(&cli, name);
    gm_args args;
    rc = gm_cli_parse(&cli, cmd, argc - i, argv + i, &args);
    if (rc >= 0)
        return rc;
    /* The environment every AWS command reads is checked before it does
     * anything: a bad value is exit 2, never a default. */
    rc = cmd->local ? -1 : gm_cli_check_environment(&cli);
    if (rc < 0)
        rc = cmd->run(&cli, &args);
    gm_args_release(&args);
    return rc;
}
