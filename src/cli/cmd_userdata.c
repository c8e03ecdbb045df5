/* geusemaker userdata: prints the UserData script (or the Compose file) that a
 * deployment would get, for review. No AWS call, no secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/partition.h"
#include "cli/cli.h"
#include "stack/stack.h"

static int cmd_userdata(gm_cli *cli, const gm_args *args);

enum {
    OPT_NAME = 1,
    OPT_TIER,
    OPT_TYPE,
    OPT_MODELS,
    OPT_COMPOSE,
    OPT_BAKE,
    OPT_OS,        /* hidden: al2023 | ubuntu2204 | ubuntu2404 (tests, review) */
    OPT_EFS_ID,    /* hidden: a real EFS id instead of the review placeholder */
    OPT_ALB_HTTPS, /* hidden: tier automation with an HTTPS listener (--certificate-arn) */
    OPT_EIP,       /* hidden: the Elastic IP the instance associates with itself */
};

static const gm_opt userdata_opts[] = {
    {.name = "name",
     .arg = "N",
     .help = "deployment name (the secrets' SSM prefix is /geusemaker/N/)",
     .id = OPT_NAME},
    {.name = "tier",
     .arg = "T",
     .help = "dev, automation or gpu; gpu needs a GPU instance type",
     .dflt = "dev",
     .id = OPT_TIER},
    {.name = "instance-type",
     .arg = "T",
     .help = "the tier's default: t3.xlarge, m6i.xlarge, g4dn.xlarge",
     .id = OPT_TYPE},
    {.name = "models",
     .arg = "LIST",
     .help = "Ollama models pulled in the background (comma separated; '' for none)",
     .dflt = "the tier's",
     .id = OPT_MODELS},
    {.name = "compose",
     .help = "print the Docker Compose file instead of the script",
     .id = OPT_COMPOSE},
    {.name = "os",
     .arg = "OS",
     .help = "al2023, ubuntu2204 or ubuntu2404",
     .id = OPT_OS,
     .flags = GM_OPT_HIDDEN},
    {.name = "efs-id",
     .arg = "ID",
     .help = "a real file system id",
     .id = OPT_EFS_ID,
     .flags = GM_OPT_HIDDEN},
    {.name = "alb-https",
     .help = "tier automation: the load balancer has a certificate (HTTPS)",
     .id = OPT_ALB_HTTPS,
     .flags = GM_OPT_HIDDEN},
    {.name = "bake",
     .help = "the script of an image build's builder instance (geusemaker image build)",
     .id = OPT_BAKE,
     .flags = GM_OPT_HIDDEN},
    {.name = "eip-allocation-id",
     .arg = "ID",
     .help = "the Elastic IP (eipalloc-...) the instance associates with itself at boot",
     .id = OPT_EIP,
     .flags = GM_OPT_HIDDEN},
};

static const gm_optgroup userdata_group = GM_OPTGROUP(NULL, userdata_opts);

const gm_command gm_command_userdata = {
    .name = "userdata",
    .summary = "print the UserData script (or Compose file) a deployment would get, for review",
    .synopsis = "userdata --name N [--tier dev|automation|gpu] [--instance-type T]\n"
                "                  [--models M1,M2,...] [--compose] [--output text|json]",
    .notes = "With --output json: the sizes (raw, sent, base64), the gzip flag and the text.\n"
             "The script holds no secret: the instance reads them from SSM at boot. Its size\n"
             "(raw, and gzip-compressed when over 16 KB) goes to stderr.",
    .groups = {&userdata_group},
    .local = true,
    .run = cmd_userdata,
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
    json_object_set_new(o, "tier", json_string(gm_tier_name(p->tier)));
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
    return gm_cli_print_json(o) ? GM_EXIT_OK : GM_EXIT_FAILED;
}

/* The script or Compose file as text, and its sizes when it is the script. */
static int render(gm_cli *cli, const gm_stack_params *p, bool compose, bool bake)
{
    gm_error err = {0};
    gm_buf text;
    gm_buf_init(&text, compose ? GM_LIMIT_COMPOSE_FILE : GM_LIMIT_USERDATA_SCRIPT);
    gm_status st = compose ? gm_compose_render(p, &text, &err)
                   : bake  ? gm_userdata_render_bake(p, &text, &err)
                           : gm_userdata_render(p, &text, &err);
    char *b64 = NULL;
    size_t sent = 0;
    bool gz = false;
    if (st == GM_OK && !compose)
        st = gm_userdata_encode(&text, &b64, &sent, &gz, &err);
    if (st != GM_OK) {
        gm_buf_release(&text);
        return gm_cli_fail(cli, st, &err);
    }
    size_t b64_len = b64 ? strlen(b64) : 0;
    free(b64);
    int rc = GM_EXIT_OK;
    if (cli->output == GM_OUTPUT_JSON)
        rc = print_json(p, compose ? "compose" : "script", &text, sent, gz, b64_len);
    else
        fwrite(text.data, 1, text.len, stdout);
    if (!compose && cli->output != GM_OUTPUT_JSON)
        fprintf(stderr,
                "userdata: %zu bytes raw; %zu bytes sent%s (EC2 limit %u); %zu bytes base64\n",
                text.len, sent, gz ? " gzip-compressed" : "", GM_LIMIT_USERDATA_RAW, b64_len);
    if (fflush(stdout) != 0)
        rc = GM_EXIT_FAILED;
    gm_buf_release(&text);
    return rc;
}

static int cmd_userdata(gm_cli *cli, const gm_args *args)
{
    const char *name = gm_args_value(args, OPT_NAME);
    const char *tier_s = gm_args_value(args, OPT_TIER);
    const char *type = gm_args_value(args, OPT_TYPE);
    const char *models_s = gm_args_value(args, OPT_MODELS);
    const char *efs = gm_args_value(args, OPT_EFS_ID);
    const char *os_s = gm_args_value(args, OPT_OS);
    bool compose = gm_args_has(args, OPT_COMPOSE);
    if (!name)
        return gm_cli_usage_error(cli, "missing --name for 'userdata'");
    gm_tier tier = GM_TIER_DEV;
    if (tier_s && !gm_tier_parse(tier_s, &tier))
        return gm_cli_usage_error(cli, "unknown tier '%s': expected 'dev', 'automation' or 'gpu'",
                                  tier_s);
    gm_os os = GM_OS_AL2023;
    if (os_s && !gm_os_parse(os_s, &os))
        return gm_cli_usage_error(
            cli, "unknown --os '%s': expected 'al2023', 'ubuntu2204' or 'ubuntu2404'", os_s);

    const char *flag = gm_cli_region_flag(cli);
    const char *region = flag, *source = cli->region ? "--region" : "the configured region";
    if (!region && (region = getenv("AWS_REGION")) && *region)
        source = "AWS_REGION";
    else if (!flag && (region = getenv("AWS_DEFAULT_REGION")) && *region)
        source = "AWS_DEFAULT_REGION";
    else if (!flag)
        region = "us-east-1";
    gm_error rerr = {0};
    if (gm_region_check(region, source, &rerr) != GM_OK)
        return gm_cli_usage_error(cli, "%s", rerr.message);

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
        .tier = tier,
        .region = region,
        .instance_type = type ? type : gm_stack_default_instance_type(tier),
        .os = os,
        .efs_id = efs,
        .eip_allocation_id = gm_args_value(args, OPT_EIP),
        .models = models,
        .n_models = n_models,
        .alb_https = gm_args_has(args, OPT_ALB_HTTPS),
    };
    const char *warning = gm_stack_plain_http_warning(&p);
    if (warning)
        fprintf(stderr, "%s\n", warning);
    int rc = render(cli, &p, compose, gm_args_has(args, OPT_BAKE));
    free(models_copy);
    return rc;
}
