/* Cost estimates from a price table shipped with the tool.
 *
 * Figures are estimates: on-demand Linux prices of us-east-1 (AWS public price
 * list, taken 2025-06), spot assumed at a fixed share of on-demand until live
 * spot prices are read. Every figure carries its source. */
#ifndef GM_COST_ESTIMATE_H
#define GM_COST_ESTIMATE_H

#include <jansson.h>
#include <stdbool.h>

typedef struct gm_cost_assumptions {
    double ebs_gb;        /* root volume, gp3 */
    double efs_gb;        /* EFS standard storage */
    double transfer_gb;   /* data out per month */
    double spot_share;    /* spot price as a share of on-demand when unknown */
} gm_cost_assumptions;

void gm_cost_default_assumptions(gm_cost_assumptions *a);

/* On-demand hourly price of a type in USD, or a negative value when the table
 * does not know it. */
double gm_cost_on_demand_hourly(const char *instance_type);

/* The estimate as a JSON object: hourly, daily, monthly, breakdown (per item:
 * monthly and source), saving_vs_on_demand, assumptions, source. */
json_t *gm_cost_estimate(const char *instance_type, bool spot, bool with_alb,
                         const gm_cost_assumptions *a);

#endif
