/* geusemaker plan: what a deploy would create, where it would launch and what
 * it would cost, without changing anything in AWS (read-only calls only:
 * DescribeInstanceTypeOfferings, DescribeInstanceTypes,
 * DescribeSpotPriceHistory, pricing GetProducts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/str.h"
#include "cost/estimate.h"
#include "cost/market.h"
#include "engine/engine.h"
#include "stack/stack.h"

static int cmd_plan(gm_cli *cli, int argc, char **argv);

const gm_command gm_command_plan = {
    .name = "plan",
    .summary = "show what deploy would create, where it would launch and the cost (no change)",
    .usage =
        "plan --name NAME [--tier dev|automation|gpu]\n"
        "                [--instance-type T | --instance-types A,B,...] [--azs Z1,Z2,...]\n"
        "                [--spot-only | --on-demand] [--max-spot-price USD] [--min-saving PCT]\n"
        "                [--budget USD] [--allow-cidr CIDR]...\n"
        "                [--assume-efs-gb GB] [--assume-transfer-gb GB] [--output text|json]\n"
        "\n"
        "  --name NAME             deployment name (as for deploy)\n"
        "  --tier TIER             dev (default), automation or gpu\n"
        "  --instance-type T       consider only this type\n"
        "  --instance-types LIST   candidate types, in preference order (ties go to the\n"
        "                          earlier); default per tier: dev t3.xlarge, t3a.xlarge,\n"
        "                          m6i.xlarge, m5.xlarge, m7i.xlarge; gpu g5.xlarge,\n"
        "                          g4dn.xlarge, g6.xlarge\n"
        "  --azs LIST              consider only these zones (default: every zone offering\n"
        "                          a candidate)\n"
        "  --spot-only             spot only, whatever the saving\n"
        "  --on-demand             on-demand only\n"
        "  --max-spot-price USD    skip spot offers above this hourly price\n"
        "  --min-saving PCT        spot must save this much over on-demand (default 20)\n"
        "  --budget USD            monthly budget: refuse a plan over it; fallbacks over it\n"
        "                          are dropped\n"
        "  --allow-cidr CIDR       ingress ranges (default at deploy: your address/32)\n"
        "  --assume-efs-gb GB      EFS storage assumed for the estimate (default 10)\n"
        "  --assume-transfer-gb GB data out per month assumed (default 10)\n"
        "\n"
        "Prices: spot from the EC2 spot price history, on-demand from the AWS Price List\n"
        "API when reachable, else from a price table shipped with geusemaker (us-east-1,\n"
        "2025-06). Every figure names its source. Exit status 2 when over --budget, 1\n"
        "when no candidate is usable.",
    .run = cmd_plan,
};

enum {
    OPT_NAME = 1,
    OPT_TIER,
    OPT_TYPE,
    OPT_TYPES,
    OPT_AZS,
    OPT_SPOT_ONLY,
    OPT_ON_DEMAND,
    OPT_MAX_SPOT,
    OPT_MIN_SAVING,
    OPT_BUDGET,
    OPT_CIDR,
    OPT_EFS_GB,
    OPT_TRANSFER_GB,
};

#define TEXT_FAILOVER_MAX 9
#define TEXT_REJECTED_MAX 12

/* Splits a comma list in place into out (max n items); empty items are
 * skipped. Returns the count, or -1 when there are more than max. */
static int split_list(char *list, const char **out, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = gm_str_trim(tok);
        if (!*tok)
            continue;
        if (n == max)
            return -1;
        out[n++] = tok;
    }
    return n;
}

typedef struct plan_opts {
    gm_deploy_config cfg;
    const char *types[GM_COST_MAX_TYPES];
    int n_types;
    bool user_types;
    const char *azs[GM_COST_MAX_AZS];
    int n_azs;
    gm_cost_strategy strategy;
    double budget; /* 0: none */
    gm_cost_assumptions assume;
} plan_opts;

typedef struct plan_result {
    gm_cost_market market;
    gm_cost_ranking ranking;
    gm_status rank_status;
    gm_error rank_err;
    json_t *estimate;
    gm_status budget_status;
    gm_error budget_err;
    size_t over_budget_fallbacks;
    size_t ud_raw, ud_sent;
    bool ud_gzip;
    const char *ud_type;
    gm_error ud_err;
    gm_status ud_status;
} plan_result;

static void userdata_size(const plan_opts *o, const char *region, plan_result *r)
{
    gm_tier tier = GM_TIER_DEV;
    gm_tier_parse(o->cfg.tier, &tier);
    size_t n_models = 0;
    const char *const *models = gm_stack_default_models(tier, &n_models);
    r->ud_type = r->ranking.n_viable ? r->ranking.viable[0].type : o->types[0];
    gm_stack_params sp = {
        .name = o->cfg.name,
        .tier = o->cfg.tier,
        .region = region,
        .instance_type = r->ud_type,
        .os = GM_OS_AL2023,
        .efs_id = NULL,
        .models = models,
        .n_models = n_models,
    };
    gm_buf script;
    gm_buf_init(&script, GM_LIMIT_USERDATA_SCRIPT);
    char *b64 = NULL;
    r->ud_status = gm_userdata_render(&sp, &script, &r->ud_err);
    if (r->ud_status == GM_OK)
        r->ud_status = gm_userdata_encode(&script, &b64, &r->ud_sent, &r->ud_gzip, &r->ud_err);
    r->ud_raw = script.len;
    free(b64);
    gm_buf_release(&script);
}

static json_t *plan_json(const plan_opts *o, const plan_result *r, json_t *graph)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(o->cfg.name));
    json_object_set_new(j, "tier", json_string(o->cfg.tier));
    json_object_set_new(j, "region", json_string(r->market.region));
    json_object_set_new(j, "changes", json_string("none: plan makes read-only calls only"));
    json_object_set(j, "resources", graph);
    json_t *cidrs = json_array();
    for (int i = 0; i < o->cfg.n_cidrs; i++)
        json_array_append_new(cidrs, json_string(o->cfg.cidrs[i]));
    json_object_set_new(
        j, "ingress",
        json_pack("{s:o, s:s?}", "cidrs", cidrs, "note",
                  o->cfg.n_cidrs ? NULL : "your public address/32, detected at deploy"));

    json_t *inst = gm_cost_ranking_json(&r->ranking);
    json_object_set_new(inst, "strategy", gm_cost_strategy_json(&o->strategy));
    json_t *cands = json_array();
    for (size_t i = 0; i < r->market.n_types; i++) {
        const gm_cost_type *t = &r->market.types[i];
        json_array_append_new(
            cands,
            json_pack("{s:s, s:o, s:o, s:o, s:s?, s:o, s:s?}", "type", t->type, "vcpus",
                      t->vcpus > 0 ? json_integer(t->vcpus) : json_null(), "memory_mib",
                      t->memory_mib > 0 ? json_integer(t->memory_mib) : json_null(), "nvidia_gpus",
                      t->nvidia_gpus >= 0 ? json_integer(t->nvidia_gpus) : json_null(),
                      "specs_source", *t->specs_source ? t->specs_source : NULL, "on_demand_hourly",
                      t->on_demand >= 0 ? json_real(t->on_demand) : json_null(), "on_demand_source",
                      *t->on_demand_source ? t->on_demand_source : NULL));
    }
    json_object_set_new(inst, "candidates", cands);
    json_t *zones = json_array();
    for (size_t i = 0; i < r->market.n_azs; i++)
        json_array_append_new(zones, json_string(r->market.azs[i]));
    json_object_set_new(inst, "zones", zones);
    json_object_set_new(inst, "spot_source",
                        r->market.spot_known ? json_string(r->market.spot_source) : json_null());
    if (*r->market.spot_error)
        json_object_set_new(inst, "spot_error", json_string(r->market.spot_error));
    json_object_set_new(j, "instance", inst);

    json_object_set(j, "estimate", r->estimate ? r->estimate : json_null());
    if (o->budget > 0)
        json_object_set_new(j, "budget",
                            json_pack("{s:f, s:b, s:s?, s:i}", "monthly", o->budget, "within",
                                      r->budget_status == GM_OK && r->estimate, "message",
                                      r->budget_status == GM_OK ? NULL : r->budget_err.message,
                                      "fallbacks_over_budget", (int)r->over_budget_fallbacks));
    else
        json_object_set_new(j, "budget", json_null());
    if (r->ud_status == GM_OK)
        json_object_set_new(j, "userdata",
                            json_pack("{s:s, s:I, s:I, s:b, s:i}", "instance_type", r->ud_type,
                                      "raw_size", (json_int_t)r->ud_raw, "sent_size",
                                      (json_int_t)r->ud_sent, "gzipped", r->ud_gzip, "limit",
                                      GM_LIMIT_USERDATA_RAW));
    else
        json_object_set_new(
            j, "userdata",
            json_pack("{s:s, s:s}", "instance_type", r->ud_type, "error", r->ud_err.message));
    json_t *notes = json_array();
    for (size_t i = 0; i < r->market.n_notes; i++)
        json_array_append_new(notes, json_string(r->market.notes[i]));
    json_object_set_new(j, "notes", notes);
    if (r->rank_status != GM_OK)
        json_object_set_new(j, "error", json_string(r->rank_err.message));
    return j;
}

static const char *money(double v, char *buf, size_t size)
{
    snprintf(buf, size, v >= 0.001 || v <= 0 ? "%.4f" : "%.6f", v);
    return buf;
}

static void print_candidate_line(const gm_cost_candidate *c)
{
    char p[32];
    printf("    %2d. %-13s %-12s %-9s $%s/h  %s%s%s\n", c->rank, c->type, c->az,
           gm_market_name(c->market), money(c->hourly, p, sizeof p), c->reason,
           *c->warning ? "; warning: " : "", c->warning);
}

static void print_estimate(const json_t *e, const char *indent)
{
    const char *k;
    json_t *v;
    json_object_foreach (json_object_get(e, "breakdown"), k, v) {
        const char *basis = json_string_value(json_object_get(v, "basis"));
        printf("%s%-18s $%9.2f/month  %s [%s]\n", indent, k,
               json_number_value(json_object_get(v, "monthly")), basis ? basis : "",
               json_string_value(json_object_get(v, "source")));
    }
    const json_t *s = json_object_get(e, "saving_vs_on_demand");
    if (json_is_object(s))
        printf("%ssaving vs on-demand: $%.2f/month (%.1f%%)\n", indent,
               json_number_value(json_object_get(s, "monthly")),
               json_number_value(json_object_get(s, "percent")));
    else if (json_is_number(json_object_get(e, "saving_vs_on_demand_monthly")))
        printf("%ssaving vs on-demand: $%.2f/month\n", indent,
               json_number_value(json_object_get(e, "saving_vs_on_demand_monthly")));
    const char *note = json_string_value(json_object_get(e, "note"));
    if (note)
        printf("%snote: %s\n", indent, note);
}

static void plan_text(const plan_opts *o, const plan_result *r, json_t *graph)
{
    char p[32], q[32];
    printf("Plan for \"%s\": tier %s in %s (nothing is created: read-only calls only)\n\n",
           o->cfg.name, o->cfg.tier, r->market.region);
    printf("Resources, in dependency order:\n");
    size_t i;
    json_t *n;
    json_array_foreach (graph, i, n) {
        char deps[256] = "";
        size_t k, used = 0;
        json_t *d;
        json_array_foreach (json_object_get(n, "deps"), k, d) {
            int w = snprintf(deps + used, sizeof deps - used, "%s%s", used ? ", " : "after ",
                             json_string_value(d));
            if (w < 0 || (size_t)w >= sizeof deps - used)
                break;
            used += (size_t)w;
        }
        printf("  %2zu. %-17s %-17s %s\n", i + 1, json_string_value(json_object_get(n, "node")),
               json_string_value(json_object_get(n, "kind")), deps);
    }

    printf("\nInstance:\n");
    const gm_cost_ranking *rk = &r->ranking;
    if (rk->n_viable) {
        const gm_cost_candidate *c = &rk->viable[0];
        printf("  choice: %s in %s, %s at $%s/h (%s)\n", c->type, c->az, gm_market_name(c->market),
               money(c->hourly, p, sizeof p), c->source);
        printf("    why: %s\n", c->reason);
        if (*c->warning)
            printf("    warning: %s\n", c->warning);
        if (rk->n_viable > 1) {
            printf("  failover order (deploy tries these next):\n");
            for (size_t k = 1; k < rk->n_viable && k <= TEXT_FAILOVER_MAX; k++)
                print_candidate_line(&rk->viable[k]);
            if (rk->n_viable > TEXT_FAILOVER_MAX + 1)
                printf("    ... %zu more (--output json lists them all)\n",
                       rk->n_viable - TEXT_FAILOVER_MAX - 1);
        }
    } else {
        printf("  no usable candidate\n");
    }
    if (rk->n_rejected) {
        printf("  not used:\n");
        for (size_t k = 0; k < rk->n_rejected && k < TEXT_REJECTED_MAX; k++) {
            const gm_cost_candidate *c = &rk->rejected[k];
            printf("    %-13s %-12s %-9s %s\n", c->type, *c->az ? c->az : "-",
                   gm_market_name(c->market), c->reason);
        }
        if (rk->n_rejected > TEXT_REJECTED_MAX)
            printf("    ... %zu more (--output json lists them all)\n",
                   rk->n_rejected - TEXT_REJECTED_MAX);
    }

    if (r->estimate) {
        const json_t *e = r->estimate;
        printf("\nEstimate (USD): $%s/hour, $%.2f/day, $%.2f/month\n",
               money(json_number_value(json_object_get(e, "hourly")), q, sizeof q),
               json_number_value(json_object_get(e, "daily")),
               json_number_value(json_object_get(e, "monthly")));
        print_estimate(e, "  ");
        printf("  assumptions: EFS %g GB (--assume-efs-gb), data out %g GB/month "
               "(--assume-transfer-gb), %.0f hours/month\n",
               o->assume.efs_gb, o->assume.transfer_gb, GM_COST_HOURS_PER_MONTH);
    }
    if (o->budget > 0) {
        if (r->budget_status == GM_OK && r->estimate)
            printf("\nBudget: $%.2f/month: within (estimate $%.2f/month)%s\n", o->budget,
                   json_number_value(json_object_get(r->estimate, "monthly")),
                   r->over_budget_fallbacks ? "; fallbacks over it were dropped" : "");
        else if (r->estimate)
            printf("\nBudget: $%.2f/month: OVER (estimate $%.2f/month)\n", o->budget,
                   json_number_value(json_object_get(r->estimate, "monthly")));
    }
    if (r->ud_status == GM_OK)
        printf("\nUserData (%s): %zu bytes raw, %zu bytes sent%s (EC2 limit %u)\n", r->ud_type,
               r->ud_raw, r->ud_sent, r->ud_gzip ? " gzip-compressed" : "", GM_LIMIT_USERDATA_RAW);
    else
        printf("\nUserData (%s): %s\n", r->ud_type, r->ud_err.message);
    printf("Ingress (80, 443): ");
    if (o->cfg.n_cidrs == 0)
        printf("your public address/32, detected at deploy\n");
    for (int k = 0; k < o->cfg.n_cidrs; k++)
        printf("%s%s", o->cfg.cidrs[k], k + 1 < o->cfg.n_cidrs ? ", " : "\n");
    if (r->market.n_notes) {
        printf("Notes:\n");
        for (size_t k = 0; k < r->market.n_notes; k++)
            printf("  - %s\n", r->market.notes[k]);
    }
}

static int parse_args(gm_cli *cli, int argc, char **argv, plan_opts *o, char **bufs)
{
    static const struct option longopts[] = {
        GM_CLI_GLOBAL_OPTIONS,
        {"name", required_argument, NULL, OPT_NAME},
        {"tier", required_argument, NULL, OPT_TIER},
        {"instance-type", required_argument, NULL, OPT_TYPE},
        {"instance-types", required_argument, NULL, OPT_TYPES},
        {"azs", required_argument, NULL, OPT_AZS},
        {"spot-only", no_argument, NULL, OPT_SPOT_ONLY},
        {"on-demand", no_argument, NULL, OPT_ON_DEMAND},
        {"max-spot-price", required_argument, NULL, OPT_MAX_SPOT},
        {"min-saving", required_argument, NULL, OPT_MIN_SAVING},
        {"budget", required_argument, NULL, OPT_BUDGET},
        {"allow-cidr", required_argument, NULL, OPT_CIDR},
        {"assume-efs-gb", required_argument, NULL, OPT_EFS_GB},
        {"assume-transfer-gb", required_argument, NULL, OPT_TRANSFER_GB},
        {0, 0, 0, 0},
    };
    const char *type = NULL, *types = NULL, *azs = NULL, *max_spot = NULL, *min_saving = NULL;
    const char *budget = NULL, *efs_gb = NULL, *transfer_gb = NULL;
    bool spot_only = false, on_demand = false;
    o->cfg.tier = "dev";
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_NAME: o->cfg.name = optarg; break;
        case OPT_TIER: o->cfg.tier = optarg; break;
        case OPT_TYPE: type = optarg; break;
        case OPT_TYPES: types = optarg; break;
        case OPT_AZS: azs = optarg; break;
        case OPT_SPOT_ONLY: spot_only = true; break;
        case OPT_ON_DEMAND: on_demand = true; break;
        case OPT_MAX_SPOT: max_spot = optarg; break;
        case OPT_MIN_SAVING: min_saving = optarg; break;
        case OPT_BUDGET: budget = optarg; break;
        case OPT_CIDR:
            if (o->cfg.n_cidrs == GM_MAX_CIDRS)
                return gm_cli_usage_error(cli, "at most %d --allow-cidr ranges", GM_MAX_CIDRS);
            o->cfg.cidrs[o->cfg.n_cidrs++] = optarg;
            break;
        case OPT_EFS_GB: efs_gb = optarg; break;
        case OPT_TRANSFER_GB: transfer_gb = optarg; break;
        default: {
            int rc = gm_cli_common_option(cli, &gm_command_plan, c, optarg);
            if (rc >= 0)
                return rc;
        }
        }
    }
    if (optind < argc)
        return gm_cli_usage_error(cli, "unexpected argument '%s' for 'plan'", argv[optind]);
    if (!o->cfg.name)
        return gm_cli_usage_error(cli, "missing --name for 'plan'");
    if (type && types)
        return gm_cli_usage_error(cli, "--instance-type and --instance-types exclude each other");
    if (spot_only && on_demand)
        return gm_cli_usage_error(cli, "--spot-only and --on-demand exclude each other");
    gm_tier tier;
    if (!gm_tier_parse(o->cfg.tier, &tier))
        return gm_cli_usage_error(cli, "unknown --tier '%s': expected dev, automation or gpu",
                                  o->cfg.tier);
    if (type || types) {
        bufs[0] = gm_strdup(type ? type : types);
        if (!bufs[0])
            return gm_cli_usage_error(cli, "out of memory");
        o->n_types = split_list(bufs[0], o->types, GM_COST_MAX_TYPES);
        if (o->n_types < 0)
            return gm_cli_usage_error(cli, "at most %d instance types", GM_COST_MAX_TYPES);
        if (o->n_types == 0)
            return gm_cli_usage_error(cli, "--instance-types names no type");
        o->user_types = true;
    } else {
        size_t n = 0;
        const char *const *def = gm_cost_default_types(o->cfg.tier, &n);
        for (size_t i = 0; i < n && i < GM_COST_MAX_TYPES; i++)
            o->types[o->n_types++] = def[i];
    }
    if (azs) {
        bufs[1] = gm_strdup(azs);
        if (!bufs[1])
            return gm_cli_usage_error(cli, "out of memory");
        o->n_azs = split_list(bufs[1], o->azs, GM_COST_MAX_AZS);
        if (o->n_azs <= 0)
            return gm_cli_usage_error(cli,
                                      "invalid --azs '%s': expected zone names, "
                                      "'us-east-1a,us-east-1b'",
                                      azs);
    }
    gm_cost_strategy_init(&o->strategy, o->cfg.tier);
    o->strategy.mode = spot_only   ? GM_COST_MODE_SPOT_ONLY
                       : on_demand ? GM_COST_MODE_ON_DEMAND_ONLY
                                   : GM_COST_MODE_CHEAPEST;
    o->strategy.soft_needs = o->user_types;
    gm_cost_default_assumptions(&o->assume);
    gm_error err = {0};
    double v;
    if (max_spot) {
        if (gm_cost_parse_usd(max_spot, "--max-spot-price", &v, &err) != GM_OK)
            return gm_cli_fail(cli, GM_ERR_INVALID, &err);
        o->strategy.max_spot_price = v;
    }
    if (min_saving) {
        if (gm_cost_parse_amount(min_saving, "--min-saving", 99, &v, &err) != GM_OK)
            return gm_cli_fail(cli, GM_ERR_INVALID, &err);
        o->strategy.min_saving = v / 100.0;
    }
    if (budget && gm_cost_parse_usd(budget, "--budget", &o->budget, &err) != GM_OK)
        return gm_cli_fail(cli, GM_ERR_INVALID, &err);
    if (efs_gb &&
        gm_cost_parse_amount(efs_gb, "--assume-efs-gb", 1e6, &o->assume.efs_gb, &err) != GM_OK)
        return gm_cli_fail(cli, GM_ERR_INVALID, &err);
    if (transfer_gb && gm_cost_parse_amount(transfer_gb, "--assume-transfer-gb", 1e7,
                                            &o->assume.transfer_gb, &err) != GM_OK)
        return gm_cli_fail(cli, GM_ERR_INVALID, &err);
    /* Everything deploy would check before calling AWS, for each candidate. */
    for (int i = 0; i < o->n_types; i++) {
        o->cfg.instance_type = o->types[i];
        gm_status st = gm_engine_check_config(&o->cfg, &err);
        if (st != GM_OK)
            return gm_cli_fail(cli, st, &err);
    }
    o->cfg.instance_type = o->types[0];
    o->cfg.spot = o->strategy.mode != GM_COST_MODE_ON_DEMAND_ONLY;
    return -1;
}

static int cmd_plan(gm_cli *cli, int argc, char **argv)
{
    plan_opts o;
    memset(&o, 0, sizeof o);
    char *bufs[2] = {NULL, NULL};
    int rc = parse_args(cli, argc, argv, &o, bufs);
    if (rc >= 0) {
        free(bufs[0]);
        free(bufs[1]);
        return rc;
    }
    plan_result r;
    memset(&r, 0, sizeof r);
    gm_cost_market_init(&r.market, NULL);
    gm_cost_ranking_init(&r.ranking);
    gm_aws_client *aws = NULL, *pricing = NULL;
    json_t *graph = NULL;
    gm_error err = {0};
    gm_status st = gm_cli_aws_client(cli, &aws, &err);
    if (st != GM_OK)
        goto done;
    gm_cost_market_init(&r.market, gm_aws_client_region(aws));
    for (int i = 0; i < o.n_types && st == GM_OK; i++)
        st = gm_cost_market_add_type(&r.market, o.types[i], &err);
    if (st != GM_OK)
        goto done;
    pricing = gm_cli_pricing_client(cli); /* us-east-1: the Price List API's region */
    if (!pricing)
        gm_cost_market_note(&r.market,
                            "on-demand prices from the %s: no client for the price "
                            "list api",
                            GM_COST_TABLE_SOURCE);
    gm_cost_gather_options go = {
        .aws = aws,
        .pricing = pricing,
        .azs = o.azs,
        .n_azs = (size_t)o.n_azs,
        .skip_spot = o.strategy.mode == GM_COST_MODE_ON_DEMAND_ONLY,
    };
    st = gm_cost_market_gather(&go, &r.market, &err);
    if (st != GM_OK)
        goto done;
    r.rank_status = gm_cost_rank(&r.market, &o.strategy, &r.ranking, &r.rank_err);
    if (r.rank_status != GM_OK && r.rank_status != GM_ERR_NOT_FOUND) {
        st = r.rank_status;
        err = r.rank_err;
        goto done;
    }
    bool with_alb = strcmp(o.cfg.tier, "automation") == 0;
    if (r.ranking.n_viable) {
        r.estimate = gm_cost_estimate_candidate(&r.ranking.viable[0], with_alb, &o.assume);
        if (!r.estimate) {
            st = gm_error_set(&err, GM_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (o.budget > 0) {
            r.budget_status = gm_cost_budget_check(r.estimate, o.budget, &r.budget_err);
            if (r.budget_status == GM_OK)
                r.over_budget_fallbacks =
                    gm_cost_budget_filter(&r.ranking, o.budget, &o.assume, with_alb);
        }
    }
    userdata_size(&o, r.market.region, &r);
    o.cfg.instance_type = r.ud_type;
    graph = gm_engine_graph_json(o.cfg.tier, &o.cfg);
    if (!graph) {
        st = gm_error_set(&err, GM_ERR_NOMEM, "out of memory");
        goto done;
    }
    gm_log_event(GM_LOG_INFO, "plan",
                 json_pack("{s:s, s:s, s:s?, s:s?, s:i}", "name", o.cfg.name, "tier", o.cfg.tier,
                           "choice", r.ranking.n_viable ? r.ranking.viable[0].type : NULL, "market",
                           r.ranking.n_viable ? gm_market_name(r.ranking.viable[0].market) : NULL,
                           "viable", (int)r.ranking.n_viable));
    if (cli->output == GM_OUTPUT_JSON) {
        json_t *j = plan_json(&o, &r, graph);
        char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(j);
    } else {
        plan_text(&o, &r, graph);
    }
    fflush(stdout);
    if (r.rank_status != GM_OK) {
        st = r.rank_status;
        err = r.rank_err;
    } else if (o.budget > 0 && r.budget_status != GM_OK) {
        st = r.budget_status;
        err = r.budget_err;
    }
done:
    rc = st == GM_OK ? GM_EXIT_OK : gm_cli_fail(cli, st, &err);
    json_decref(graph);
    json_decref(r.estimate);
    gm_cost_ranking_release(&r.ranking);
    gm_cost_market_release(&r.market);
    gm_aws_client_free(pricing);
    gm_aws_client_free(aws);
    free(bufs[0]);
    free(bufs[1]);
    return rc;
}
