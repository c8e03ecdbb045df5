/* geusemaker plan: what a deploy would create, where it would launch and what
 * it would cost, without changing anything in AWS (read-only calls only:
 * DescribeInstanceTypeOfferings, DescribeInstanceTypes,
 * DescribeSpotPriceHistory, pricing GetProducts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/deploy_options.h"
#include "core/log.h"
#include "core/str.h"
#include "cost/estimate.h"
#include "cost/market.h"
#include "engine/plan.h"
#include "stack/stack.h"
#include "stack/validate.h"

static int cmd_plan(gm_cli *cli, const gm_args *args);

const gm_command gm_command_plan = {
    .name = "plan",
    .summary = "show what deploy would create, where it would launch and the cost (no change)",
    .synopsis = "plan --name NAME [deployment options] [--output text|json]",
    .notes = "Takes every deployment option deploy takes. Prices: spot from the EC2 spot price\n"
             "history, on-demand from the AWS Price List API when reachable, else from a price\n"
             "table shipped with geusemaker (us-east-1, 2025-06). Every figure names its\n"
             "source. Exit status 2 when over --budget (unless --force), 1 when no candidate\n"
             "is usable.",
    .groups = {&gm_cli_deploy_group, &gm_cli_alb_group},
    .run = cmd_plan,
};

#define TEXT_FAILOVER_MAX 9
#define TEXT_REJECTED_MAX 12

/* The image deploy would look up, and the volumes it would ask for. */
static json_t *machine_image_json(const gm_deploy_config *cfg)
{
    gm_arch arch = gm_instance_type_arch(cfg->instance_type);
    char param[256] = "";
    if (!gm_stack_ami_parameter(cfg->os, cfg->tier, arch, param, sizeof param))
        param[0] = '\0';
    return json_pack("{s:s, s:s, s:s?, s:s, s:i, s:i, s:s}", "os", gm_os_option_name(cfg->os),
                     "architecture", gm_arch_name(arch), "ami", cfg->ami, "ssm_parameter",
                     cfg->ami ? "" : param, "root_volume_gb_min", gm_engine_root_need_gb(cfg->tier),
                     "data_volume_gb", gm_engine_data_volume_gb(cfg), "note",
                     "deploy reads the image (DescribeImages): the root volume is the larger of "
                     "this and its root snapshot, on its root device; GEUSEMAKER_AMI_PARAMETER "
                     "names another parameter");
}

static void print_machine_image(const gm_deploy_config *cfg)
{
    json_t *m = machine_image_json(cfg);
    if (cfg->ami)
        printf("Machine image: %s, baked (%s %s, this catalogue)\n", cfg->ami,
               json_string_value(json_object_get(m, "os")),
               json_string_value(json_object_get(m, "architecture")));
    else
        printf("Machine image: %s %s from SSM parameter %s\n",
               json_string_value(json_object_get(m, "os")),
               json_string_value(json_object_get(m, "architecture")),
               json_string_value(json_object_get(m, "ssm_parameter")));
    printf("Volumes: root %d GiB gp3 or the image's root snapshot if larger; data %d GiB gp3 "
           "(--data-volume-gb), both encrypted\n",
           (int)json_integer_value(json_object_get(m, "root_volume_gb_min")),
           (int)json_integer_value(json_object_get(m, "data_volume_gb")));
    json_decref(m);
}

static json_t *plan_json(const gm_deploy_config *cfg, const gm_engine_plan *r)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(cfg->name));
    json_object_set_new(j, "tier", json_string(gm_tier_name(cfg->tier)));
    json_object_set_new(j, "region", json_string(r->market.region));
    json_object_set_new(j, "changes", json_string("none: plan makes read-only calls only"));
    json_object_set(j, "resources", r->graph);
    json_object_set_new(j, "machine_image", machine_image_json(cfg));
    json_t *cidrs = json_array();
    for (int i = 0; i < cfg->n_cidrs; i++)
        json_array_append_new(cidrs, json_string(cfg->cidrs[i]));
    json_object_set_new(
        j, "ingress",
        json_pack("{s:o, s:s?}", "cidrs", cidrs, "note",
                  cfg->n_cidrs ? NULL : "your public address/32, detected at deploy"));

    json_t *inst = gm_cost_ranking_json(&r->ranking);
    json_object_set_new(inst, "strategy", gm_cost_strategy_json(&r->strategy));
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
    if (cfg->budget_monthly > 0)
        json_object_set_new(j, "budget",
                            json_pack("{s:f, s:b, s:s?, s:i}", "monthly", cfg->budget_monthly,
                                      "within", r->budget_status == GM_OK && r->estimate, "message",
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

static void plan_text(const gm_deploy_config *cfg, const gm_engine_plan *r)
{
    char p[32], q[32];
    printf("Plan for \"%s\": tier %s in %s (nothing is created: read-only calls only)\n\n",
           cfg->name, gm_tier_name(cfg->tier), r->market.region);
    printf("Resources, in dependency order:\n");
    size_t i;
    json_t *n;
    json_array_foreach (r->graph, i, n) {
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
               r->assume.efs_gb, r->assume.transfer_gb, GM_COST_HOURS_PER_MONTH);
    }
    if (cfg->budget_monthly > 0) {
        if (r->budget_status == GM_OK && r->estimate)
            printf("\nBudget: $%.2f/month: within (estimate $%.2f/month)%s\n", cfg->budget_monthly,
                   json_number_value(json_object_get(r->estimate, "monthly")),
                   r->over_budget_fallbacks ? "; fallbacks over it were dropped" : "");
        else if (r->estimate)
            printf("\nBudget: $%.2f/month: OVER (estimate $%.2f/month)\n", cfg->budget_monthly,
                   json_number_value(json_object_get(r->estimate, "monthly")));
    }
    if (r->ud_status == GM_OK)
        printf("\nUserData (%s): %zu bytes raw, %zu bytes sent%s (EC2 limit %u)\n", r->ud_type,
               r->ud_raw, r->ud_sent, r->ud_gzip ? " gzip-compressed" : "", GM_LIMIT_USERDATA_RAW);
    else
        printf("\nUserData (%s): %s\n", r->ud_type, r->ud_err.message);
    print_machine_image(cfg);
    printf("Ingress (80, 443): ");
    if (cfg->n_cidrs == 0)
        printf("your public address/32, detected at deploy\n");
    for (int k = 0; k < cfg->n_cidrs; k++)
        printf("%s%s", cfg->cidrs[k], k + 1 < cfg->n_cidrs ? ", " : "\n");
    if (r->market.n_notes) {
        printf("Notes:\n");
        for (size_t k = 0; k < r->market.n_notes; k++)
            printf("  - %s\n", r->market.notes[k]);
    }
}

static int cmd_plan(gm_cli *cli, const gm_args *args)
{
    gm_cli_deploy d;
    int rc = gm_cli_deploy_from_args(cli, args, &d);
    if (rc < 0 && !d.cfg.name)
        rc = gm_cli_usage_error(cli, "missing --name for 'plan'");
    if (rc < 0)
        rc = gm_cli_deploy_check(cli, &d);
    if (rc < 0)
        rc = gm_cli_deploy_check_ingress(cli, &d.cfg, false, false);
    if (rc < 0)
        gm_cli_deploy_warn_plain_http(&d.cfg);
    if (rc >= 0) {
        gm_cli_deploy_release(&d);
        return rc;
    }
    const gm_deploy_config *cfg = &d.cfg;
    gm_engine_plan plan;
    memset(&plan, 0, sizeof plan);
    gm_aws_client *aws = NULL, *pricing = NULL;
    gm_error err = {0};
    gm_status st = gm_cli_aws_client(cli, &aws, &err);
    if (st == GM_OK)
        st = gm_engine_check_config_region(cfg, gm_aws_client_region(aws), &err);
    if (st == GM_OK)
        st = gm_cli_deploy_resolve_image(aws, &d, &err);
    if (st == GM_OK) {
        pricing = gm_cli_pricing_client(cli);
        st = gm_engine_plan_make(aws, pricing, cfg, &plan, &err);
    }
    if (st == GM_OK) {
        const gm_cost_ranking *rk = &plan.ranking;
        gm_log_event(GM_LOG_INFO, "plan",
                     json_pack("{s:s, s:s, s:s?, s:s?, s:i}", "name", cfg->name, "tier",
                               gm_tier_name(cfg->tier), "choice",
                               rk->n_viable ? rk->viable[0].type : NULL, "market",
                               rk->n_viable ? gm_market_name(rk->viable[0].market) : NULL, "viable",
                               (int)rk->n_viable));
        if (cli->output == GM_OUTPUT_JSON)
            gm_cli_print_json(plan_json(cfg, &plan));
        else
            plan_text(cfg, &plan);
        fflush(stdout);
        if (plan.rank_status != GM_OK) {
            st = plan.rank_status;
            err = plan.rank_err;
        } else if (cfg->budget_monthly > 0 && plan.budget_status != GM_OK && !cfg->force) {
            st = plan.budget_status;
            err = plan.budget_err;
        }
    }
    rc = st == GM_OK ? GM_EXIT_OK : gm_cli_fail(cli, st, &err);
    gm_engine_plan_release(&plan);
    gm_aws_client_free(pricing);
    gm_aws_client_free(aws);
    gm_cli_deploy_release(&d);
    return rc;
}
