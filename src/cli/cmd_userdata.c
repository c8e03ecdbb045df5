/* geusemaker userdata: prints the UserData script (or the Compose file) that a
 * deployment would get, for review. No AWS call, no secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "stack/stack.h"

static int gm_cmd_userdata(gm_cli *cli, int argc, char **argv);

const gm_command gm_command_userdata = {
    .name = "userdata",
    .summary = "print the UserData script (or Compose file) a deployment would get, for review",
    .usage = "userdata --name N [--tier dev|automation|gpu] [--instance-type T]\n"
             "                  [--models M1,M2,...] [--compose] [--output text|json]\n"
             "\n"
             "  --name N           deployment name (the secrets' SSM prefix is /geusemaker/N/)\n"
             "  --tier T           dev (default), automation or gpu; gpu needs a GPU\n"
             "                     instance type\n"
             "  --instance-type T  default: t3.xlarge (dev), m6i.xlarge (automation),\n"
             "                     g4dn.xlarge (gpu)\n"
             "  --models LIST      Ollama models pulled in the background (comma separated;\n"
             "                     '' for none); default depends on the tier\n"
             "  --compose          print the Docker Compose file instead of the script\n"
             "  --output json      sizes (raw, sent, base64), gzip flag and the text as JSON\n"
             "\n"
             "The script holds no secret: the instance reads them from SSM at boot. Its size\n"
             "(raw, and gzip-compressed when over 16 KB) goes to stderr.",
    .run = gm_cmd_userdata,
};

enum {
    OPT_NAME = 1,
    OPT_TIER,
    OPT_TYPE,
    OPT_MODELS,
    OPT_COMPOSE,
    OPT_OS,     /* hidden: al2023 | ubuntu2204 | ubuntu2404 (tests, review) */
    OPT_EFS_ID, /* hidden: a real EFS id instead of the review placeholder */
};

#define MAX_MODELS_PARSED (GM_STACK_MAX_MODELS + 1)

/* Splits a comma list in place; empty items are skipped. */
static size_t split_models(char *list, const char **out, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (*tok)
            out[n++] = tok;
    }
    return n;
}

static int print_json(const gm_stack_params *p, const char *kind, const gm_buf *text, size_t sent,
                      bool gzipped, size_t b64)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(p->name));
    json_object_set_new(o, "tier", json_string(p->tier));
    json_object_set_new(o, "instance_type", json_string(p->instance_type));
    json_object_set_new(o, "os", json_string(gm_os_name(p->os)));
    if (strcmp(kind, "script") == 0) {
        json_object_set_new(o, "raw_size", json_integer((json_int_t)text->len));
        json_object_set_new(o, "sent_size", json_integer((json_int_t)sent));
        json_object_set_new(o, "gzipped", json_boolean(gzipped));
        json_object_set_new(o, "base64_size", json_integer((json_int_t)b64));
        json_object_set_new(o, "limit", json_integer(GM_LIMIT_USERDATA_RAW));
    }
    json_object_set_new(o, kind, json_stringn(gm_buf_cstr(text), text->len));
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        return GM_EXIT_FAILED;
    printf("%s\n", s);
    free(s);
    return GM_EXIT_OK;
}

static int gm_cmd_userdata(gm_cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"name", required_argument, NULL, OPT_NAME},
        {"tier", required_argument, NULL, OPT_TIER},
        {"instance-type", required_argument, NULL, OPT_TYPE},
        {"models", required_argument, NULL, OPT_MODELS},
        {"compose", no_argument, NULL, OPT_COMPOSE},
        {"os", required_argument, NULL, OPT_OS},
        {"efs-id", required_argument, NULL, OPT_EFS_ID},
        GM_CLI_GLOBAL_OPTIONS,
        {0, 0, 0, 0},
    };
    const char *name = NULL, *tier_s = "dev", *type = NULL, *models_s = NULL, *efs = NULL;
    const char *os_s = "al2023";
    bool compose = false;
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_NAME: name = optarg; break;
        case OPT_TIER: tier_s = optarg; break;
        case OPT_TYPE: type = optarg; break;
        case OPT_MODELS: models_s = optarg; break;
        case OPT_COMPOSE: compose = true; break;
        case OPT_OS: os_s = optarg; break;
        case OPT_EFS_ID: efs = optarg; break;
        default: {
            int rc = gm_cli_common_option(cli, &gm_command_userdata, c, optarg);
            if (rc >= 0)
                return rc;
        }
        }
    }
    if (optind < argc)
        return gm_cli_usage_error(cli, "unexpected argument '%s' for 'userdata'", argv[optind]);
    if (!name)
        return gm_cli_usage_error(cli, "missing --name for 'userdata'");
    gm_tier tier;
    if (!gm_tier_parse(tier_s, &tier))
        return gm_cli_usage_error(cli, "unknown tier '%s': expected 'dev', 'automation' or 'gpu'",
                                  tier_s);
    gm_os os;
    if (!gm_os_parse(os_s, &os))
        return gm_cli_usage_error(
            cli, "unknown --os '%s': expected 'al2023', 'ubuntu2204' or 'ubuntu2404'", os_s);

    const char *region = cli->region;
    if (!region || !*region)
        region = getenv("AWS_REGION");
    if (!region || !*region)
        region = getenv("AWS_DEFAULT_REGION");
    if (!region || !*region)
        region = "us-east-1";

    const char *models[MAX_MODELS_PARSED];
    size_t n_models = 0;
    char *models_copy = NULL;
    if (models_s) {
        models_copy = strdup(models_s);
        if (!models_copy)
            return gm_cli_usage_error(cli, "out of memory");
        n_models = split_models(models_copy, models, MAX_MODELS_PARSED);
    } else {
        const char *const *def = gm_stack_default_models(tier, &n_models);
        for (size_t i = 0; i < n_models; i++)
            models[i] = def[i];
    }

    gm_stack_params p = {
        .name = name,
        .tier = tier_s,
        .region = region,
        .instance_type = type ? type : gm_stack_default_instance_type(tier),
        .os = os,
        .efs_id = efs,
        .models = models,
        .n_models = n_models,
    };
    gm_error err = {0};
    gm_buf text;
    gm_buf_init(&text, compose ? GM_LIMIT_COMPOSE_FILE : GM_LIMIT_USERDATA_SCRIPT);
    gm_status st =
        compose ? gm_compose_render(&p, &text, &err) : gm_userdata_render(&p, &text, &err);
    if (st != GM_OK) {
        free(models_copy);
        gm_buf_release(&text);
        return gm_cli_fail(cli, st, &err);
    }
    int rc = GM_EXIT_OK;
    if (compose) {
        if (cli->output == GM_OUTPUT_JSON)
            rc = print_json(&p, "compose", &text, 0, false, 0);
        else
            fwrite(text.data, 1, text.len, stdout);
    } else {
        char *b64 = NULL;
        size_t sent = 0;
        bool gz = false;
        st = gm_userdata_encode(&text, &b64, &sent, &gz, &err);
        if (st != GM_OK) {
            free(models_copy);
            gm_buf_release(&text);
            return gm_cli_fail(cli, st, &err);
        }
        size_t b64_len = strlen(b64);
        free(b64);
        if (cli->output == GM_OUTPUT_JSON) {
            rc = print_json(&p, "script", &text, sent, gz, b64_len);
        } else {
            fwrite(text.data, 1, text.len, stdout);
            fprintf(stderr,
                    "userdata: %zu bytes raw; %zu bytes sent%s (EC2 limit %u); %zu bytes base64\n",
                    text.len, sent, gz ? " gzip-compressed" : "", GM_LIMIT_USERDATA_RAW, b64_len);
        }
    }
    if (fflush(stdout) != 0)
        rc = GM_EXIT_FAILED;
    free(models_copy);
    gm_buf_release(&text);
    return rc;
}
