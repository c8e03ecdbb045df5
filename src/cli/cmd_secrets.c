/* geusemaker secrets: show the stack's generated secrets (read from SSM). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/deployment.h"
#include "stack/secrets.h"
#include "stack/stack.h"

static int cmd_secrets(gm_cli *cli, const gm_args *args);

enum { OPT_YES = 1 };

static const gm_opt secrets_opts[] = {
    {.name = "yes",
     .short_name = 'y',
     .help = "print without asking (required without a terminal)",
     .id = OPT_YES},
};

static const gm_optgroup secrets_group = GM_OPTGROUP(NULL, secrets_opts);

const gm_command gm_command_secrets = {
    .name = "secrets",
    .summary = "show a deployment's secrets (PostgreSQL password, n8n key, API tokens)",
    .synopsis = "secrets NAME [--yes] [--output text|json]",
    .notes = "Reads the SecureString parameters under /geusemaker/NAME/ and prints them on\n"
             "stdout after confirmation (--yes for scripts).",
    .groups = {&secrets_group},
    .min_pos = 1,
    .max_pos = 1,
    .pos_what = "one deployment name",
    .run = cmd_secrets,
};

static int cmd_secrets(gm_cli *cli, const gm_args *args)
{
    bool yes = gm_args_has(args, OPT_YES);
    const char *name = args->pos[0];
    gm_error err = {0};
    gm_status st = gm_engine_check_name(name, &err);
    if (st != GM_OK)
        return gm_cli_fail(cli, st, &err);
    if (!yes) {
        if (!isatty(STDIN_FILENO))
            return gm_cli_usage_error(cli, "secrets prints credentials: confirm with --yes when "
                                           "there is no terminal");
        fprintf(stderr, "This prints the secrets of '%s' on the terminal. Continue? [y/N] ", name);
        char line[16];
        if (!fgets(line, sizeof line, stdin) || (line[0] != 'y' && line[0] != 'Y')) {
            fprintf(stderr, "not confirmed\n");
            return GM_EXIT_USAGE;
        }
    }
    gm_store *store = NULL;
    gm_deployment *dep = NULL;
    gm_aws_client *aws = NULL;
    st = gm_cli_open_deployment(cli, name, &store, &dep, &aws, &err);
    json_t *result = NULL;
    if (st == GM_OK)
        st = gm_engine_secrets_read(aws, name, &result, &err);
    int rc = GM_EXIT_FAILED;
    if (st == GM_OK) {
        if (cli->output == GM_OUTPUT_JSON) {
            gm_cli_print_json(json_incref(result));
        } else {
            const char *k;
            json_t *v;
            json_object_foreach (result, k, v)
                printf("%-20s %s\n", k, json_string_value(v));
        }
        rc = json_object_size(result) == GM_SECRET_COUNT ? GM_EXIT_OK : GM_EXIT_FAILED;
        if (rc != GM_EXIT_OK)
            fprintf(stderr, "error: %zu of %d secrets found under /geusemaker/%s/\n",
                    json_object_size(result), GM_SECRET_COUNT, name);
    } else {
        rc = gm_cli_fail(cli, st, &err);
    }
    json_decref(result);
    gm_deployment_free(dep);
    gm_aws_client_free(aws);
    gm_store_free(store);
    return rc;
}
