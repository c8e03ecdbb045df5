#include "cli/deploy_options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "cost/estimate.h"
#include "cost/rank.h"
#include "stack/stack.h"
#include "stack/validate.h"

enum {
    D_NAME = 100,
    D_TIER,
    D_TYPE,
    D_TYPES,
    D_AZS,
    D_SPOT,
    D_ON_DEMAND,
    D_SPOT_ONLY,
    D_MAX_SPOT,
    D_MIN_SAVING,
    D_BUDGET,
    D_FORCE,
    D_CIDR,
    D_KEY,
    D_VPC,
    D_SUBNETS,
    D_SG,
    D_EFS,
    D_EFS_GB,
    D_TRANSFER_GB,
    D_CERT,
    D_ALB_TIMEOUT,
    D_HC_INTERVAL,
    D_HC_TIMEOUT,
    D_HEALTHY,
    D_UNHEALTHY,
    D_OS,
    D_DATA_GB,
    D_MODELS,
    D_LAUNCH_TIMEOUT,
    D_IMAGE,
    D_AMI,
};

#define C GM_OPT_CONFIG

static const gm_opt deploy_opts[] = {
    {.name = "name",
     .arg = "NAME",
     .help = "deployment name: lowercase letters, digits, '-'",
     .id = D_NAME},
    {.name = "tier",
     .arg = "TIER",
     .help = "dev, automation (adds a load balancer) or gpu",
     .dflt = "dev",
     .id = D_TIER,
     .flags = C},
    {.name = "os",
     .arg = "OS",
     .help = "the instance's system: al2023, ubuntu-22.04 or ubuntu-24.04 (tier gpu: the Deep "
             "Learning AMI of that system)",
     .dflt = "al2023",
     .id = D_OS,
     .flags = C},
    {.name = "instance-type",
     .arg = "T",
     .help = "consider only this EC2 instance type",
     .id = D_TYPE,
     .flags = C},
    {.name = "instance-types",
     .arg = "A,B,...",
     .help = "candidate types in preference order (ties go to the earlier)",
     .dflt = "the tier's list",
     .id = D_TYPES,
     .flags = C},
    {.name = "azs",
     .arg = "Z1,Z2,...",
     .help = "consider only these availability zones",
     .dflt = "every zone offering a candidate",
     .id = D_AZS,
     .flags = C},
    {.name = "spot",
     .help = "spot when it saves enough over on-demand",
     .dflt = "on",
     .id = D_SPOT,
     .flags = C},
    {.name = "on-demand", .help = "on-demand only", .id = D_ON_DEMAND, .flags = C},
    {.name = "spot-only",
     .help = "spot only, whatever the saving; never on-demand",
     .id = D_SPOT_ONLY,
     .flags = C},
    {.name = "max-spot-price",
     .arg = "USD",
     .help = "cap spot at this hourly price: sent as the spot MaxPrice, dearer offers skipped",
     .id = D_MAX_SPOT,
     .flags = C},
    {.name = "min-saving",
     .arg = "PCT",
     .help = "spot must save this much over on-demand",
     .dflt = "20",
     .id = D_MIN_SAVING,
     .flags = C},
    {.name = "budget",
     .arg = "USD",
     .help = "refuse a plan estimated over USD a month; drop fallbacks over it",
     .id = D_BUDGET,
     .flags = C},
    {.name = "force", .help = "go on when the estimate is over --budget", .id = D_FORCE},
    {.name = "allow-cidr",
     .arg = "CIDR",
     .help = "who may reach the stack: an IPv4 range; wider than /16 is warned about, "
             "0.0.0.0/0 needs --yes (GEUSEMAKER_IP_ENDPOINT overrides the address service)",
     .dflt = "your public address/32",
     .id = D_CIDR,
     .flags = C | GM_OPT_REPEAT},
    {.name = "key-name",
     .arg = "K",
     .help = "EC2 key pair; opens SSH (22) to the allowed ranges",
     .id = D_KEY,
     .flags = C},
    {.name = "vpc-id",
     .arg = "V",
     .help = "reuse a VPC (with --subnet-ids)",
     .id = D_VPC,
     .flags = C},
    {.name = "subnet-ids",
     .arg = "A,B",
     .help = "reuse two subnets of that VPC in two zones",
     .id = D_SUBNETS,
     .flags = C},
    {.name = "security-group-id",
     .arg = "S",
     .help = "reuse a security group of that VPC",
     .id = D_SG,
     .flags = C},
    {.name = "efs-id", .arg = "F", .help = "reuse an EFS file system", .id = D_EFS, .flags = C},
    {.name = "data-volume-gb",
     .arg = "GB",
     .help = "the encrypted gp3 volume for the databases (PostgreSQL, Qdrant): 1 to 16384",
     .dflt = "20",
     .id = D_DATA_GB,
     .flags = C},
    {.name = "models",
     .arg = "M1,M2,...",
     .help = "Ollama models pulled in the background after boot (comma separated; '' for none)",
     .dflt = "the tier's models",
     .id = D_MODELS,
     .flags = C},
    {.name = "image",
     .arg = "SERVICE=REF",
     .help = "run this image for a service instead of the pinned one, e.g. "
             "n8n=n8nio/n8n:2.42.0; REF needs a tag (not 'latest') and/or @sha256:DIGEST. "
             "Without '=': the machine image, as --ami",
     .dflt = "the catalogue's pins",
     .id = D_IMAGE,
     .flags = C | GM_OPT_REPEAT},
    {.name = "ami",
     .arg = "baked|ami-ID",
     .help = "launch a baked image (geusemaker image build): 'baked' for the newest one of "
             "this geusemaker's catalogue, or its id",
     .dflt = "the OS's public image",
     .id = D_AMI,
     .flags = C},
    {.name = "launch-timeout",
     .arg = "S",
     .help = "wait this long for the Auto Scaling group's instance to be in service",
     .dflt = "600",
     .id = D_LAUNCH_TIMEOUT,
     .flags = C},
    {.name = "assume-efs-gb",
     .arg = "GB",
     .help = "EFS storage assumed for the estimate",
     .dflt = "10",
     .id = D_EFS_GB,
     .flags = C},
    {.name = "assume-transfer-gb",
     .arg = "GB",
     .help = "data out per month assumed",
     .dflt = "10",
     .id = D_TRANSFER_GB,
     .flags = C},
};

static const gm_opt alb_opts[] = {
    {.name = "certificate-arn",
     .arg = "ARN",
     .help = "HTTPS:443 on the load balancer, HTTP:80 redirecting to it",
     .id = D_CERT,
     .flags = C},
    {.name = "alb-timeout",
     .arg = "S",
     .help = "wait this long for healthy targets",
     .dflt = "300",
     .id = D_ALB_TIMEOUT,
     .flags = C},
    {.name = "health-check-interval",
     .arg = "S",
     .help = "target group health check interval",
     .dflt = "30",
     .id = D_HC_INTERVAL,
     .flags = C},
    {.name = "health-check-timeout",
     .arg = "S",
     .help = "target group health check timeout",
     .dflt = "5",
     .id = D_HC_TIMEOUT,
     .flags = C},
    {.name = "healthy-threshold",
     .arg = "N",
     .help = "checks in a row to count as healthy",
     .dflt = "2",
     .id = D_HEALTHY,
     .flags = C},
    {.name = "unhealthy-threshold",
     .arg = "N",
     .help = "checks in a row to count as unhealthy",
     .dflt = "3",
     .id = D_UNHEALTHY,
     .flags = C},
};

#undef C

const gm_optgroup gm_cli_deploy_group = GM_OPTGROUP("deployment options", deploy_opts);
const gm_optgroup gm_cli_alb_group = GM_OPTGROUP("tier automation (load balancer)", alb_opts);

/* Splits a comma list into out (at most max; empty items skipped) in a copy
 * kept in d. Returns the count, -1 past max, -2 without memory. */
static int split_list(gm_cli_deploy *d, const char *list, const char **out, int max)
{
    size_t slot = 0;
    size_t slots = sizeof d->lists / sizeof d->lists[0];
    while (slot < slots && d->lists[slot])
        slot++;
    char *copy = slot < slots ? strdup(list) : NULL;
    if (!copy)
        return -2;
    d->lists[slot] = copy;
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = gm_str_trim(tok);
        if (!*tok)
            continue;
        if (n == max)
            return -1;
        out[n++] = tok;
    }
    return n;
}

/* A whole number (1..limit, digits only) into *out. */
static int seconds(gm_cli *cli, const gm_arg *a, long limit, long *out)
{
    int64_t v = 0;
    if (!gm_str_to_int64(a->value, 1, limit, &v))
        return gm_cli_usage_error(cli, "invalid --%s '%s': expected a whole number from 1 to %ld",
                                  a->opt->name, a->value, limit);
    *out = (long)v;
    return -1;
}

/* A whole number of GiB, 1..GM_DATA_VOLUME_GB_MAX, digits only, no leading
 * zero. */
static int volume_gb(gm_cli *cli, const gm_arg *a, int *out)
{
    int64_t v = 0;
    if (a->value[0] == '0' || !gm_str_to_int64(a->value, 1, GM_DATA_VOLUME_GB_MAX, &v))
        return gm_cli_usage_error(cli,
                                  "invalid --%s '%s': expected a whole number of GiB from 1 to "
                                  "%d, without a leading zero",
                                  a->opt->name, a->value, GM_DATA_VOLUME_GB_MAX);
    *out = (int)v;
    return -1;
}

static int money(gm_cli *cli, const gm_arg *a, double max_amount, bool usd, double *out)
{
    gm_error err = {0};
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", a->opt->name);
    gm_status st = usd ? gm_cost_parse_usd(a->value, flag, out, &err)
                       : gm_cost_parse_amount(a->value, flag, max_amount, out, &err);
    return st == GM_OK ? -1 : gm_cli_usage_error(cli, "%s", err.message);
}

static int list_option(gm_cli *cli, gm_cli_deploy *d, const gm_arg *a)
{
    gm_deploy_config *cfg = &d->cfg;
    int n;
    switch (a->opt->id) {
    case D_TYPES:
        n = split_list(d, a->value, cfg->instance_types, GM_MAX_TYPES);
        if (n == -1)
            return gm_cli_usage_error(cli, "at most %d --instance-types", GM_MAX_TYPES);
        if (n == 0)
            return gm_cli_usage_error(cli, "--instance-types needs at least one type");
        cfg->n_types = n;
        break;
    case D_AZS:
        n = split_list(d, a->value, cfg->azs, GM_MAX_AZS);
        if (n <= 0)
            return gm_cli_usage_error(cli,
                                      "invalid --azs '%s': expected zone names, "
                                      "'us-east-1a,us-east-1b'",
                                      a->value);
        cfg->n_azs = n;
        break;
    case D_MODELS:
        n = split_list(d, a->value, cfg->models, GM_MAX_MODELS);
        if (n == -1)
            return gm_cli_usage_error(cli, "at most %d --models", GM_MAX_MODELS);
        cfg->n_models = n < 0 ? 0 : n;
        cfg->models_set = true;
        break;
    default: /* D_SUBNETS */
        n = split_list(d, a->value, cfg->subnet_ids, 2);
        if (n != 2)
            return gm_cli_usage_error(
                cli, "invalid --subnet-ids: expected two subnet ids, 'subnet-a,subnet-b'");
        break;
    }
    return n == -2 ? gm_cli_usage_error(cli, "out of memory") : -1;
}

static int number_option(gm_cli *cli, gm_deploy_config *cfg, const gm_arg *a)
{
    long v = 0;
    int rc = -1;
    switch (a->opt->id) {
    case D_MAX_SPOT: return money(cli, a, 0, true, &cfg->max_spot_price);
    case D_BUDGET: return money(cli, a, 0, true, &cfg->budget_monthly);
    case D_EFS_GB: return money(cli, a, 1e6, false, &cfg->assume_efs_gb);
    case D_TRANSFER_GB: return money(cli, a, 1e7, false, &cfg->assume_transfer_gb);
    case D_MIN_SAVING:
        rc = money(cli, a, 99, false, &cfg->min_spot_saving);
        cfg->min_spot_saving /= 100.0;
        return rc;
    case D_ALB_TIMEOUT:
        rc = seconds(cli, a, 3600, &v);
        cfg->alb_timeout_ms = (int64_t)v * 1000;
        return rc;
    case D_LAUNCH_TIMEOUT:
        rc = seconds(cli, a, 86400, &v);
        cfg->launch_timeout_ms = (int64_t)v * 1000;
        return rc;
    case D_HC_INTERVAL:
        rc = seconds(cli, a, 3600, &v);
        cfg->hc_interval_s = (int)v;
        return rc;
    case D_HC_TIMEOUT:
        rc = seconds(cli, a, 3600, &v);
        cfg->hc_timeout_s = (int)v;
        return rc;
    case D_HEALTHY:
        rc = seconds(cli, a, 3600, &v);
        cfg->healthy_threshold = (int)v;
        return rc;
    default:
        rc = seconds(cli, a, 3600, &v);
        cfg->unhealthy_threshold = (int)v;
        return rc;
    }
}

/* --ami baked|ami-ID (or --image without '='): resolved with AWS before
 * anything is created (gm_cli_deploy_resolve_image). */
static int ami_option(gm_cli *cli, gm_cli_deploy *d, const char *value, bool as_image)
{
    if (d->ami_request && strcmp(d->ami_request, value) != 0)
        return gm_cli_usage_error(cli, "two machine images given ('%s' and '%s'): give one --ami",
                                  d->ami_request, value);
    if (strcmp(value, "baked") != 0 && strncmp(value, "ami-", 4) != 0 && as_image)
        return gm_cli_usage_error(cli,
                                  "invalid --image '%s': expected SERVICE=REF such as "
                                  "'n8n=n8nio/n8n:2.42.0', or a machine image: 'baked' or ami-...",
                                  value);
    if (strcmp(value, "baked") != 0 && strncmp(value, "ami-", 4) != 0)
        return gm_cli_usage_error(
            cli, "invalid --ami '%s': expected 'baked' or an image id (ami-...)", value);
    d->ami_request = value;
    return -1;
}

gm_status gm_cli_deploy_resolve_image(gm_aws_client *aws, gm_cli_deploy *d, gm_error *err)
{
    if (!d->ami_request)
        return GM_OK;
    gm_status st =
        gm_engine_resolve_image(aws, &d->cfg, d->ami_request, d->ami, sizeof d->ami, err);
    if (st == GM_OK)
        d->cfg.ami = d->ami;
    return st;
}

/* --image SERVICE=REF: a copy split at the first '='; the service and the
 * reference are checked with the rest of the config (gm_engine_check_config). */
static int image_option(gm_cli *cli, gm_cli_deploy *d, const gm_arg *a)
{
    gm_deploy_config *cfg = &d->cfg;
    const char *eq = strchr(a->value, '=');
    if (!eq && *a->value) /* --image baked|ami-ID: the machine image */
        return ami_option(cli, d, a->value, true);
    if (!eq || eq == a->value)
        return gm_cli_usage_error(cli,
                                  "invalid --image '%s': expected SERVICE=REF such as "
                                  "'n8n=n8nio/n8n:2.42.0'",
                                  a->value);
    if (cfg->n_images == GM_MAX_IMAGES)
        return gm_cli_usage_error(cli, "at most %d --image overrides, one per service",
                                  GM_MAX_IMAGES);
    char *copy = strdup(a->value);
    if (!copy)
        return gm_cli_usage_error(cli, "out of memory");
    d->images[cfg->n_images] = copy;
    copy[eq - a->value] = '\0';
    cfg->image_services[cfg->n_images] = copy;
    cfg->image_refs[cfg->n_images++] = copy + (eq - a->value) + 1;
    return -1;
}

/* One deployment option; -1 to go on, or an exit code. Options of other
 * groups are left alone. */
static int apply(gm_cli *cli, gm_cli_deploy *d, const gm_arg *a)
{
    gm_deploy_config *cfg = &d->cfg;
    switch (a->opt->id) {
    case D_NAME: cfg->name = a->value; return -1;
    case D_TIER:
        if (!gm_tier_parse(a->value, &cfg->tier))
            return gm_cli_usage_error(cli, "unknown --tier '%s': expected dev, automation or gpu",
                                      a->value);
        return -1;
    case D_OS:
        if (!gm_os_parse(a->value, &cfg->os))
            return gm_cli_usage_error(
                cli, "unknown --os '%s': expected al2023, ubuntu-22.04 or ubuntu-24.04", a->value);
        return -1;
    case D_DATA_GB: return volume_gb(cli, a, &cfg->data_volume_gb);
    case D_TYPE: cfg->instance_type = a->value; return -1;
    case D_TYPES:
    case D_AZS:
    case D_MODELS:
    case D_SUBNETS: return list_option(cli, d, a);
    case D_SPOT: cfg->spot = true; return -1;
    case D_ON_DEMAND: cfg->spot = false; return -1;
    case D_SPOT_ONLY: cfg->spot_only = true; return -1;
    case D_FORCE: cfg->force = true; return -1;
    case D_CIDR:
        if (cfg->n_cidrs == GM_MAX_CIDRS)
            return gm_cli_usage_error(cli, "at most %d --allow-cidr ranges", GM_MAX_CIDRS);
        cfg->cidrs[cfg->n_cidrs++] = a->value;
        return -1;
    case D_IMAGE: return image_option(cli, d, a);
    case D_AMI: return ami_option(cli, d, a->value, false);
    case D_KEY: cfg->key_name = a->value; return -1;
    case D_VPC: cfg->vpc_id = a->value; return -1;
    case D_SG: cfg->security_group_id = a->value; return -1;
    case D_EFS: cfg->efs_id = a->value; return -1;
    case D_CERT: cfg->certificate_arn = a->value; return -1;
    case D_MAX_SPOT:
    case D_MIN_SAVING:
    case D_BUDGET:
    case D_EFS_GB:
    case D_TRANSFER_GB:
    case D_ALB_TIMEOUT:
    case D_LAUNCH_TIMEOUT:
    case D_HC_INTERVAL:
    case D_HC_TIMEOUT:
    case D_HEALTHY:
    case D_UNHEALTHY: return number_option(cli, cfg, a);
    default: return -1;
    }
}

int gm_cli_deploy_from_args(gm_cli *cli, const gm_args *args, gm_cli_deploy *d)
{
    memset(d, 0, sizeof *d);
    d->cfg.tier = GM_TIER_DEV;
    d->cfg.spot = true;
    for (size_t i = 0; i < args->n_opts; i++) {
        int rc = apply(cli, d, &args->opts[i]);
        if (rc >= 0)
            return rc;
        if ((args->opts[i].opt->flags & GM_OPT_CONFIG) && !args->opts[i].from)
            d->saw_config = true; /* on the command line, not from the settings */
    }
    if (gm_args_has(args, D_SPOT) && gm_args_has(args, D_ON_DEMAND))
        return gm_cli_usage_error(cli, "--spot and --on-demand exclude each other");
    if (gm_args_has(args, D_SPOT_ONLY) && gm_args_has(args, D_ON_DEMAND))
        return gm_cli_usage_error(cli, "--spot-only and --on-demand exclude each other");
    if (d->cfg.instance_type && d->cfg.n_types)
        return gm_cli_usage_error(cli, "--instance-type and --instance-types exclude each other");
    return -1;
}

int gm_cli_deploy_check(gm_cli *cli, gm_cli_deploy *d)
{
    gm_deploy_config *cfg = &d->cfg;
    cfg->types_named = cfg->instance_type || cfg->n_types;
    if (!cfg->data_volume_gb)
        cfg->data_volume_gb = GM_DATA_VOLUME_GB_DEFAULT;
    if (!cfg->instance_type && !cfg->n_types) {
        /* No type named: the tier's candidate list, cheapest first. */
        size_t n = 0;
        const char *const *dflt = gm_cost_default_types(cfg->tier, &n);
        for (size_t i = 0; i < n && i < GM_MAX_TYPES; i++)
            cfg->instance_types[cfg->n_types++] = dflt[i];
    }
    if (cfg->n_types)
        cfg->instance_type = cfg->instance_types[0];
    gm_error err = {0};
    gm_status st = gm_engine_check_config(cfg, &err);
    return st == GM_OK ? -1 : gm_cli_fail(cli, st, &err);
}

int gm_cli_deploy_check_ingress(gm_cli *cli, const gm_deploy_config *cfg, bool deploying, bool yes)
{
    for (int i = 0; i < cfg->n_cidrs; i++) {
        int prefix = 32;
        gm_error err = {0};
        gm_status st = gm_engine_parse_cidr(cfg->cidrs[i], &prefix, &err);
        if (st != GM_OK)
            return gm_cli_fail(cli, st, &err);
        if (prefix == 0 && deploying && !yes)
            return gm_cli_usage_error(cli,
                                      "--allow-cidr '%s' opens the stack to the whole internet "
                                      "(every IPv4 address): pass --yes to confirm, or name a "
                                      "narrower range",
                                      cfg->cidrs[i]);
        if (prefix == 0)
            fprintf(stderr, "warning: --allow-cidr '%s' opens the stack to the whole internet%s\n",
                    cfg->cidrs[i], deploying ? "" : " (deploy needs --yes for it)");
        else if (prefix < 16)
            fprintf(stderr,
                    "warning: --allow-cidr '%s' is wider than a /16: %llu addresses may reach "
                    "the stack\n",
                    cfg->cidrs[i], 1ULL << (32 - prefix));
    }
    return -1;
}

void gm_cli_deploy_release(gm_cli_deploy *d)
{
    for (size_t i = 0; i < sizeof d->lists / sizeof d->lists[0]; i++)
        free(d->lists[i]);
    memset(d->lists, 0, sizeof d->lists);
    for (size_t i = 0; i < sizeof d->images / sizeof d->images[0]; i++)
        free(d->images[i]);
    memset(d->images, 0, sizeof d->images);
}

void gm_cli_deploy_warn_plain_http(const gm_deploy_config *cfg)
{
    gm_stack_params sp = {.tier = cfg->tier,
                          .alb_https = cfg->certificate_arn && *cfg->certificate_arn};
    const char *warning = gm_stack_plain_http_warning(&sp);
    if (warning)
        fprintf(stderr, "%s\n", warning);
}
