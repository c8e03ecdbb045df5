/* geusemaker: entry point and command table. */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/deployment.h"

static const gm_command *const commands[] = {
    &gm_command_plan,     &gm_command_deploy, &gm_command_destroy, &gm_command_list,
    &gm_command_cost,     &gm_command_status, &gm_command_health,  &gm_command_secrets,
    &gm_command_userdata, &gm_command_whoami,
};
#define N_COMMANDS (sizeof commands / sizeof *commands)

static void print_help(FILE *out)
{
    fprintf(out, "usage: geusemaker [--version] [--help] <command> [options]\n"
                 "\n"
                 "Deploys a private AI stack (n8n, Ollama, Qdrant, Crawl4AI, PostgreSQL) on AWS\n"
                 "and manages it: status, logs, cost, destroy.\n"
                 "\n"
                 "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out,
            "\n"
            "options for every command:\n"
            "  --region R       AWS region (else AWS_REGION, AWS_DEFAULT_REGION, profile region)\n"
            "  --profile P      profile of the shared config files (else AWS_PROFILE, 'default')\n"
            "  --output FMT     text (default) or json\n"
            "  --verbose        mirror every operation and API call to stderr\n"
            "  --no-color       no colour (NO_COLOR is honoured too)\n"
            "  --help           help for the command\n"
            "\n"
            "environment:\n"
            "  AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>  endpoint overrides (EC2, STS, IAM,\n"
            "                   SSM, EFS, ELASTIC_LOAD_BALANCING_V2)\n"
            "  AWS_CA_BUNDLE    CA certificates for TLS verification\n"
            "  AWS_MAX_ATTEMPTS attempts per request in all (default 3)\n"
            "  GEUSEMAKER_HOME  state directory (default ~/.geusemaker)\n"
            "\n"
            "exit codes:\n"
            "  0  success\n"
            "  1  the operation failed\n"
            "  2  bad input: nothing was done\n"
            "  3  the deployment is locked by another geusemaker process\n"
            "  4  no credentials, or AWS rejected them\n"
            "\n"
            "'geusemaker <command> --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "C");
    gm_cli cli = {.prog = "geusemaker", .output = GM_OUTPUT_TEXT};
    int i = 1;
    /* Global options may come before the command. */
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            printf("geusemaker %s\n", GM_VERSION);
            return GM_EXIT_OK;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help(stdout);
            return GM_EXIT_OK;
        }
        int code = -1;
        const char *val = NULL;
        if (strcmp(a, "--verbose") == 0)
            code = GM_OPT_VERBOSE;
        else if (strcmp(a, "--no-color") == 0)
            code = GM_OPT_NO_COLOR;
        else {
            static const struct {
                const char *name;
                int code;
            } withval[] = {{"--region", GM_OPT_REGION},
                           {"--profile", GM_OPT_PROFILE},
                           {"--output", GM_OPT_OUTPUT}};
            for (size_t k = 0; k < 3; k++) {
                size_t n = strlen(withval[k].name);
                if (strncmp(a, withval[k].name, n) == 0 && a[n] == '=') {
                    code = withval[k].code;
                    val = a + n + 1;
                } else if (strcmp(a, withval[k].name) == 0 && i + 1 < argc) {
                    code = withval[k].code;
                    val = argv[++i];
                }
            }
        }
        gm_term_init(&cli.term, stderr, cli.no_color);
        if (code < 0)
            return gm_cli_usage_error(&cli, "unknown option '%s' (see 'geusemaker --help')", a);
        int rc = gm_cli_global_option(&cli, code, val);
        if (rc > 0)
            return rc;
    }
    gm_term_init(&cli.term, stderr, cli.no_color);
    if (i >= argc) {
        print_help(stderr);
        return GM_EXIT_USAGE;
    }
    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        if (i + 1 < argc) {
            for (size_t k = 0; k < N_COMMANDS; k++)
                if (strcmp(commands[k]->name, argv[i + 1]) == 0) {
                    gm_cli_print_command_help(commands[k], stdout);
                    return GM_EXIT_OK;
                }
        }
        print_help(stdout);
        return GM_EXIT_OK;
    }
    for (size_t k = 0; k < N_COMMANDS; k++) {
        if (strcmp(commands[k]->name, name) == 0) {
            optind = 1;
            opterr = 0;
            cli.cmd_argv = argv + i;
            return commands[k]->run(&cli, argc - i, argv + i);
        }
    }
    return gm_cli_usage_error(&cli, "unknown command '%s' (see 'geusemaker --help')", name);
}
