/* Cost estimates of a deployment, budgets, and the cost so far.
 *
 * An estimate prices one placement (a ranked candidate, cost/rank.h) plus
 * everything else a deployment pays for: the EBS root volume (60 GB gp3), the
 * EBS data volume for the databases (gp3, when assumed), EFS
 * storage at an assumed size, the instance's public IPv4 address, the
 * Application Load Balancer of the automation tier (with its two public
 * addresses and one LCU), and data transfer out at an assumed volume. The
 * rates of those items come from the shipped table (GM_COST_TABLE_SOURCE);
 * the EC2 price from wherever the candidate's did. All figures are USD.
 *
 * Estimate JSON (stored as the deployment record's "cost"):
 *   {"instance_type", "market", "az"|null, "currency": "USD",
 *    "hourly", "daily", "monthly",
 *    "breakdown": {ITEM: {"hourly", "monthly", "basis", "source"}},  ITEM in
 *        ec2, ebs_root, ebs_data, efs_storage, public_ipv4, load_balancer,
 *        data_transfer_out (ebs_data only with a data volume)
 *    "on_demand_monthly", "saving_vs_on_demand": {"monthly", "percent"},
 *    "saving_vs_on_demand_monthly", "assumptions": {...}, "source", "note"?}
 * hourly = monthly / GM_COST_HOURS_PER_MONTH; daily = hourly * 24.
 */
#ifndef GM_COST_ESTIMATE_H
#define GM_COST_ESTIMATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "cost/rank.h"

/* Rates of the shipped table (us-east-1, 2025-06). */
#define GM_COST_RATE_GP3_GB_MONTH 0.08 /* EBS gp3 storage (baseline IOPS/throughput free) */
#define GM_COST_RATE_EFS_GB_MONTH 0.30 /* EFS Standard storage */
#define GM_COST_RATE_IPV4_HOUR 0.005   /* one public IPv4 address */
#define GM_COST_RATE_ALB_HOUR 0.0225   /* Application Load Balancer hour */
#define GM_COST_RATE_LCU_HOUR 0.008    /* one ALB capacity unit hour */
#define GM_COST_RATE_TRANSFER_GB 0.09  /* data out to the internet (first 10 TB tier) */

typedef struct gm_cost_assumptions {
    double ebs_gb;      /* root volume, gp3: 60 */
    double data_gb;     /* data volume, gp3: 0 (none) unless the caller says */
    double efs_gb;      /* EFS Standard storage: 10 (--assume-efs-gb) */
    double transfer_gb; /* data out to the internet per month: 10 (--assume-transfer-gb) */
    double spot_share;  /* gm_cost_estimate only: spot as a share of on-demand, 0.35 */
} gm_cost_assumptions;

void gm_cost_default_assumptions(gm_cost_assumptions *a);

/* Monthly USD of everything but EC2 (a NULL: defaults). */
double gm_cost_fixed_monthly(const gm_cost_assumptions *a, bool with_alb);

/* The estimate of a deployment placed on candidate c (its type, zone, market
 * and hourly price; hourly < 0 leaves EC2 out with a note). with_alb for the
 * automation tier; a NULL: defaults. New reference; NULL only when memory is
 * exhausted. */
json_t *gm_cost_estimate_candidate(const gm_cost_candidate *c, bool with_alb,
                                   const gm_cost_assumptions *a);

/* Shipped-table shortcuts, for callers without a ranking: the on-demand price
 * of a type (negative when unknown), and an estimate where spot is assumed at
 * a->spot_share of on-demand (the source says it is an assumption). */
double gm_cost_on_demand_hourly(const char *instance_type);

/* What a stopped deployment still costs per month, from its estimate
 * (gm_cost_estimate_candidate's): the file system, the load balancer and the
 * public addresses that stay (keeps_address: the Elastic IP stays allocated;
 * else the instance's address goes with it). The volumes go with the
 * instance. -1 when estimate has no breakdown. */
double gm_cost_stopped_monthly(const json_t *estimate, bool keeps_address);
json_t *gm_cost_estimate(const char *instance_type, bool spot, bool with_alb,
                         const gm_cost_assumptions *a);

/* ---- budget ------------------------------------------------------------------ */

/* Moves every viable candidate whose estimate (EC2 + gm_cost_fixed_monthly)
 * exceeds budget_monthly to r->rejected, with the reason, and renumbers the
 * ranks; the failover order of the rest is unchanged. Returns how many moved.
 * The engine uses it so that no fallback breaks the budget. */
size_t gm_cost_budget_filter(gm_cost_ranking *r, double budget_monthly,
                             const gm_cost_assumptions *a, bool with_alb);

/* GM_OK when the estimate's monthly figure is within budget_monthly; else
 * GM_ERR_INVALID "estimated cost $X/month (EC2 ... , other items ...) is over
 * the budget of $B/month: ..." (nothing was done: the caller refuses, or
 * proceeds when the user said --force). GM_ERR_INVALID too for an estimate
 * without a monthly figure. */
GM_MUST_CHECK gm_status gm_cost_budget_check(const json_t *estimate, double budget_monthly,
                                             gm_error *err);

/* Parses a USD amount from a flag ("25", "25.50", "$0.05"): finite, > 0 and
 * < 10,000,000. GM_ERR_INVALID "invalid FLAG 'S': expected ..." naming flag. */
GM_MUST_CHECK gm_status gm_cost_parse_usd(const char *s, const char *flag, double *out,
                                          gm_error *err);
/* Parses a non-negative amount (GB, per cent) the same way; max is inclusive. */
GM_MUST_CHECK gm_status gm_cost_parse_amount(const char *s, const char *flag, double max,
                                             double *out, gm_error *err);

/* ---- cost so far ----------------------------------------------------------------- */

/* How long a deployment has run and what it cost: {"started_at", "until"
 * ("now" or an ISO time), "hours", "hourly", "cost_so_far", "basis"}.
 * start_ms/end_ms are epoch milliseconds (end_ms < start_ms counts as 0 h);
 * running says whether end is "now". The hourly figure is the estimate's.
 * NULL when the estimate has no hourly figure. */
json_t *gm_cost_so_far(const json_t *estimate, int64_t start_ms, int64_t end_ms, bool running);

#endif
