/* Cost estimates, budgets and the cost so far. */
#include "cost/estimate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/str.h"
#include "cost/internal.h"
#include "core/timeutil.h"

#define ALB_PUBLIC_IPS 2 /* an internet-facing ALB holds one address per zone */
#define ALB_LCUS 1.0     /* a small stack's load stays within one LCU */

void gm_cost_default_assumptions(gm_cost_assumptions *a)
{
    a->ebs_gb = 60;
    a->data_gb = 0;
    a->efs_gb = 10;
    a->transfer_gb = 10;
    a->spot_share = 0.35;
}

static const gm_cost_assumptions *or_defaults(const gm_cost_assumptions *a,
                                              gm_cost_assumptions *buf)
{
    if (a)
        return a;
    gm_cost_default_assumptions(buf);
    return buf;
}

static double r4(double v)
{
    return gm_cost_round(v, 1e4);
}

static double r6(double v)
{
    return gm_cost_round(v, 1e6);
}

static int public_ips(bool with_alb)
{
    return 1 + (with_alb ? ALB_PUBLIC_IPS : 0);
}

static double alb_hourly(void)
{
    return GM_COST_RATE_ALB_HOUR + ALB_LCUS * GM_COST_RATE_LCU_HOUR;
}

double gm_cost_fixed_monthly(const gm_cost_assumptions *a, bool with_alb)
{
    gm_cost_assumptions buf;
    a = or_defaults(a, &buf);
    double m = (a->ebs_gb + a->data_gb) * GM_COST_RATE_GP3_GB_MONTH +
               a->efs_gb * GM_COST_RATE_EFS_GB_MONTH +
               public_ips(with_alb) * GM_COST_RATE_IPV4_HOUR * GM_COST_HOURS_PER_MONTH +
               a->transfer_gb * GM_COST_RATE_TRANSFER_GB;
    if (with_alb)
        m += alb_hourly() * GM_COST_HOURS_PER_MONTH;
    return m;
}

static void item(json_t *breakdown, const char *name, double monthly, const char *basis,
                 const char *source)
{
    json_object_set_new(breakdown, name,
                        json_pack("{s:f, s:f, s:s, s:s}", "hourly",
                                  r6(monthly / GM_COST_HOURS_PER_MONTH), "monthly", r4(monthly),
                                  "basis", basis, "source", source));
}

json_t *gm_cost_estimate_candidate(const gm_cost_candidate *c, bool with_alb,
                                   const gm_cost_assumptions *a)
{
    gm_cost_assumptions buf;
    a = or_defaults(a, &buf);
    json_t *breakdown = json_object();
    if (!breakdown)
        return NULL;
    char basis[256], p[32];
    double monthly = 0, od_monthly = 0;
    bool ec2_known = c->hourly >= 0;
    if (ec2_known) {
        double ec2 = c->hourly * GM_COST_HOURS_PER_MONTH;
        snprintf(basis, sizeof basis, "%s %s%s%s at $%s/h", gm_market_name(c->market), c->type,
                 *c->az ? " in " : "", c->az, gm_cost_usd(c->hourly, p, sizeof p));
        item(breakdown, "ec2", ec2, basis, *c->source ? c->source : "unknown");
        monthly += ec2;
        od_monthly += (c->on_demand > 0 ? c->on_demand : c->hourly) * GM_COST_HOURS_PER_MONTH;
    }
    snprintf(basis, sizeof basis, "%.0f GB gp3 root volume at $%.2f/GB-month", a->ebs_gb,
             GM_COST_RATE_GP3_GB_MONTH);
    item(breakdown, "ebs_root", a->ebs_gb * GM_COST_RATE_GP3_GB_MONTH, basis, GM_COST_TABLE_SOURCE);
    if (a->data_gb > 0) {
        snprintf(basis, sizeof basis,
                 "%.0f GB gp3 data volume (--data-volume-gb) at $%.2f/GB-month", a->data_gb,
                 GM_COST_RATE_GP3_GB_MONTH);
        item(breakdown, "ebs_data", a->data_gb * GM_COST_RATE_GP3_GB_MONTH, basis,
             GM_COST_TABLE_SOURCE);
    }
    snprintf(basis, sizeof basis,
             "%g GB assumed (--assume-efs-gb), EFS Standard at "
             "$%.2f/GB-month",
             a->efs_gb, GM_COST_RATE_EFS_GB_MONTH);
    item(breakdown, "efs_storage", a->efs_gb * GM_COST_RATE_EFS_GB_MONTH, basis,
         GM_COST_TABLE_SOURCE);
    snprintf(basis, sizeof basis, "%d public IPv4 address%s at $%.3f/h", public_ips(with_alb),
             public_ips(with_alb) > 1 ? "es (instance, load balancer)" : " (instance)",
             GM_COST_RATE_IPV4_HOUR);
    item(breakdown, "public_ipv4",
         public_ips(with_alb) * GM_COST_RATE_IPV4_HOUR * GM_COST_HOURS_PER_MONTH, basis,
         GM_COST_TABLE_SOURCE);
    if (with_alb) {
        snprintf(basis, sizeof basis,
                 "application load balancer at $%.4f/h plus %.0f LCU at "
                 "$%.3f/h",
                 GM_COST_RATE_ALB_HOUR, ALB_LCUS, GM_COST_RATE_LCU_HOUR);
        item(breakdown, "load_balancer", alb_hourly() * GM_COST_HOURS_PER_MONTH, basis,
             GM_COST_TABLE_SOURCE);
    }
    snprintf(basis, sizeof basis,
             "%g GB/month out assumed (--assume-transfer-gb) at $%.2f/GB "
             "(free tier not counted)",
             a->transfer_gb, GM_COST_RATE_TRANSFER_GB);
    item(breakdown, "data_transfer_out", a->transfer_gb * GM_COST_RATE_TRANSFER_GB, basis,
         GM_COST_TABLE_SOURCE);
    double fixed = gm_cost_fixed_monthly(a, with_alb);
    monthly += fixed;
    od_monthly += fixed;
    double hourly = monthly / GM_COST_HOURS_PER_MONTH;
    double saving = od_monthly - monthly;
    char source[320];
    snprintf(source, sizeof source, "ec2: %s; other items: %s",
             ec2_known && *c->source ? c->source : "unknown", GM_COST_TABLE_SOURCE);
    json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:f, s:f, s:f, s:o, s:f, s:{s:f, s:f}, s:f}",
                          "instance_type", c->type, "market", gm_market_name(c->market), "az",
                          *c->az ? json_string(c->az) : json_null(), "currency", "USD", "hourly",
                          r6(hourly), "daily", r4(hourly * 24), "monthly", r4(monthly), "breakdown",
                          breakdown, "on_demand_monthly", r4(od_monthly), "saving_vs_on_demand",
                          "monthly", r4(saving), "percent",
                          od_monthly > 0 ? gm_cost_round(saving / od_monthly * 100, 10) : 0.0,
                          "saving_vs_on_demand_monthly", r4(saving));
    if (!o)
        return NULL;
    json_object_set_new(o, "assumptions",
                        json_pack("{s:f, s:f, s:f, s:f, s:f, s:i, s:b}", "ebs_gb", a->ebs_gb,
                                  "data_gb", a->data_gb, "efs_gb", a->efs_gb,
                                  "transfer_gb_per_month", a->transfer_gb, "hours_per_month",
                                  GM_COST_HOURS_PER_MONTH, "public_ipv4_addresses",
                                  public_ips(with_alb), "load_balancer", with_alb));
    json_object_set_new(o, "source", json_string(source));
    if (!ec2_known)
        json_object_set_new(o, "note",
                            json_sprintf("no price known for '%s': EC2 is not "
                                         "included",
                                         c->type));
    return o;
}

double gm_cost_on_demand_hourly(const char *instance_type)
{
    const gm_instance_info *row = gm_cost_table_lookup(instance_type);
    return row ? row->on_demand : -1;
}

json_t *gm_cost_estimate(const char *instance_type, bool spot, bool with_alb,
                         const gm_cost_assumptions *a)
{
    gm_cost_assumptions buf;
    a = or_defaults(a, &buf);
    gm_cost_candidate c;
    memset(&c, 0, sizeof c);
    snprintf(c.type, sizeof c.type, "%s", instance_type ? instance_type : "");
    c.market = spot ? GM_MARKET_SPOT : GM_MARKET_ON_DEMAND;
    c.on_demand = gm_cost_on_demand_hourly(instance_type);
    c.hourly = c.on_demand < 0 ? -1 : spot ? c.on_demand * a->spot_share : c.on_demand;
    if (spot)
        snprintf(c.source, sizeof c.source, "assumed %.0f%% of the on-demand price (%s)",
                 a->spot_share * 100, GM_COST_TABLE_SOURCE);
    else
        snprintf(c.source, sizeof c.source, "%s", GM_COST_TABLE_SOURCE);
    return gm_cost_estimate_candidate(&c, with_alb, a);
}

/* ---- budget ---------------------------------------------------------------------- */

size_t gm_cost_budget_filter(gm_cost_ranking *r, double budget_monthly,
                             const gm_cost_assumptions *a, bool with_alb)
{
    double fixed = gm_cost_fixed_monthly(a, with_alb);
    size_t kept = 0, moved = 0;
    for (size_t i = 0; i < r->n_viable; i++) {
        gm_cost_candidate c = r->viable[i];
        double total = c.hourly * GM_COST_HOURS_PER_MONTH + fixed;
        if (total <= budget_monthly + 1e-9) {
            c.rank = (int)kept + 1;
            r->viable[kept++] = c;
            continue;
        }
        c.rank = 0;
        snprintf(c.reason, sizeof c.reason,
                 "over the budget: $%.2f/month with it (EC2 $%.2f + other items $%.2f) > "
                 "$%.2f/month",
                 total, c.hourly * GM_COST_HOURS_PER_MONTH, fixed, budget_monthly);
        if (r->rejected && r->n_rejected < r->cap)
            r->rejected[r->n_rejected++] = c;
        moved++;
    }
    r->n_viable = kept;
    return moved;
}

gm_status gm_cost_budget_check(const json_t *estimate, double budget_monthly, gm_error *err)
{
    const json_t *m = json_object_get(estimate, "monthly");
    if (!json_is_number(m))
        return gm_error_set(err, GM_ERR_INVALID, "the cost estimate has no monthly figure");
    double monthly = json_number_value(m);
    if (monthly <= budget_monthly + 1e-9)
        return GM_OK;
    const json_t *b = json_object_get(estimate, "breakdown");
    double ec2 = json_number_value(json_object_get(json_object_get(b, "ec2"), "monthly"));
    const char *type = json_string_value(json_object_get(estimate, "instance_type"));
    const char *market = json_string_value(json_object_get(estimate, "market"));
    return gm_error_set(err, GM_ERR_INVALID,
                        "estimated cost $%.2f/month (EC2 %s %s $%.2f, other items $%.2f) is over "
                        "the budget of $%.2f/month: raise --budget, choose cheaper "
                        "--instance-types, or deploy with --force to ignore the budget",
                        monthly, market ? market : "?", type ? type : "?", ec2, monthly - ec2,
                        budget_monthly);
}

gm_status gm_cost_parse_amount(const char *s, const char *flag, double max, double *out,
                               gm_error *err)
{
    const char *p = s ? s : "";
    if (*p == '$')
        p++;
    bool ok = *p != '\0' && strlen(p) <= 24;
    int dots = 0;
    for (const char *q = p; ok && *q; q++) {
        if (*q == '.')
            dots++;
        else if (*q < '0' || *q > '9')
            ok = false;
    }
    double v = 0;
    if (ok && dots <= 1 && strcmp(p, ".") != 0) {
        errno = 0;
        char *end = NULL;
        v = strtod(p, &end);
        ok = !errno && end && !*end && isfinite(v) && v >= 0 && v <= max;
    } else {
        ok = false;
    }
    if (!ok)
        return gm_error_set(err, GM_ERR_INVALID, "invalid %s '%s': expected a number from 0 to %g",
                            flag, s ? s : "", max);
    *out = v;
    return GM_OK;
}

gm_status gm_cost_parse_usd(const char *s, const char *flag, double *out, gm_error *err)
{
    double v = 0;
    gm_error lerr = {0};
    if (gm_cost_parse_amount(s, flag, 9999999.99, &v, &lerr) != GM_OK || v <= 0)
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid %s '%s': expected an amount in USD greater than 0, "
                            "like 25 or 0.05",
                            flag, s ? s : "");
    *out = v;
    return GM_OK;
}

/* ---- cost so far ------------------------------------------------------------------ */

json_t *gm_cost_so_far(const json_t *estimate, int64_t start_ms, int64_t end_ms, bool running)
{
    const json_t *h = json_object_get(estimate, "hourly");
    if (!json_is_number(h))
        return NULL;
    double hourly = json_number_value(h);
    double hours = end_ms > start_ms ? (double)(end_ms - start_ms) / 3600000.0 : 0;
    char started[32], until[32];
    gm_time_iso8601((time_t)(start_ms / 1000), started);
    gm_time_iso8601((time_t)(end_ms / 1000), until);
    char basis[200];
    snprintf(basis, sizeof basis, "%.2f h x $%s/h (the estimate's hourly figure)", hours,
             gm_cost_usd(hourly, (char[32]){0}, 32));
    return json_pack("{s:s, s:s, s:s, s:b, s:f, s:f, s:f, s:s}", "started_at", started, "until",
                     running ? "now" : until, "until_time", until, "running", running, "hours",
                     gm_cost_round(hours, 1000), "hourly", hourly, "cost_so_far",
                     r4(hourly * hours), "basis", basis);
}

static double item_monthly(const json_t *breakdown, const char *name)
{
    return json_number_value(json_object_get(json_object_get(breakdown, name), "monthly"));
}

double gm_cost_stopped_monthly(const json_t *estimate, bool keeps_address)
{
    const json_t *b = json_object_get(estimate, "breakdown");
    if (!json_is_object(b))
        return -1;
    double ipv4 = item_monthly(b, "public_ipv4");
    json_int_t addresses = json_integer_value(
        json_object_get(json_object_get(estimate, "assumptions"), "public_ipv4_addresses"));
    if (!keeps_address && addresses > 0)
        ipv4 -= ipv4 / (double)addresses; /* the instance's */
    return r4(item_monthly(b, "efs_storage") + item_monthly(b, "load_balancer") + ipv4);
}
