/* geusemaker secrets: show the stack's generated secrets (read from SSM). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/deployment.h"
#include "stack/secrets.h"
#include "stack/stack.h"

static int cmd_secrets(gm_cli *cli, int argc, char **argv);

const gm_command gm_command_secrets = {
    .name = "secrets",
    .summary = "show a deployment's secrets (PostgreSQL password, n8n key, API tokens)",
    .usage = "secrets NAME [--yes] [--output text|json]\n"
             "\n"
             "Reads the SecureString parameters under /geusemaker/NAME/ and prints them on\n"
             "stdout after confirmation (--yes for scripts).",
    .run = cmd_secrets,
};

enum { OPT_YES = 1 };

static int cmd_secrets(gm_cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        GM_CLI_GLOBAL_OPTIONS, {"yes", no_argument, NULL, OPT_YES}, {0, 0, 0, 0}};
    bool yes = false;
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (c == OPT_YES) {
            yes = true;
            continue;
        }
        int rc = gm_cli_common_option(cli, &gm_command_secrets, c, optarg);
        if (rc >= 0)
            return rc;
    }
    if (optind + 1 != argc)
        return gm_cli_usage_error(cli, "secrets takes exactly one deployment name");
    const char *name = argv[optind];
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
    json_t *out = NULL;
    st = gm_cli_open_deployment(cli, name, &store, &dep, &aws, &err);
    char *prefix = gm_stack_default_ssm_prefix(name);
    json_t *names = json_array();
    for (int i = 0; prefix && i < GM_SECRET_COUNT; i++) {
        char *pn = gm_secret_parameter_name(prefix, (gm_secret_id)i);
        if (pn)
            json_array_append_new(names, json_string(pn));
        free(pn);
    }
    if (st == GM_OK) {
        json_t *body = json_pack("{s:O, s:b}", "Names", names, "WithDecryption", 1);
        st = gm_aws_json(aws, &gm_svc_ssm, "GetParameters", body, &out, &err);
        json_decref(body);
    }
    int rc = GM_EXIT_FAILED;
    if (st == GM_OK) {
        json_t *result = json_object();
        size_t i;
        json_t *p;
        json_array_foreach (json_object_get(out, "Parameters"), i, p) {
            const char *pn = json_string_value(json_object_get(p, "Name"));
            const char *key = pn && prefix ? pn + strlen(prefix) : pn;
            if (key)
                json_object_set(result, key, json_object_get(p, "Value"));
        }
        if (cli->output == GM_OUTPUT_JSON) {
            char *text = json_dumps(result, JSON_INDENT(2) | JSON_SORT_KEYS);
            printf("%s\n", text ? text : "{}");
            free(text);
        } else {
            const char *k;
            json_t *v;
            json_object_foreach (result, k, v)
                printf("%-20s %s\n", k, json_string_value(v));
        }
        rc = json_object_size(result) == GM_SECRET_COUNT ? GM_EXIT_OK : GM_EXIT_FAILED;
        if (rc != GM_EXIT_OK)
            fprintf(stderr, "error: %zu of %d secrets found under %s\n", json_object_size(result),
                    GM_SECRET_COUNT, prefix ? prefix : "?");
        json_decref(result);
    } else {
        rc = gm_cli_fail(cli, st, &err);
    }
    json_decref(out);
    json_decref(names);
    free(prefix);
    gm_deployment_free(dep);
    gm_aws_client_free(aws);
    gm_store_free(store);
    return rc;
}
