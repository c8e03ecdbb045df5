/* Placement: where and how the instance runs.
 *
 * The placement node gathers the market (zones offering each candidate type,
 * their specs, current spot prices; on-demand prices from the Price List API
 * when a pricing client is given, else the shipped table) beside the network
 * nodes, so it costs the instance no extra round trip, and shares it with the
 * run. The instance node then ranks the candidates in the deployment's two
 * zones and launches down the failover order (gm_n_launch_plan). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cost/estimate.h"
#include "cost/market.h"
#include "cost/rank.h"
#include "engine/nodes.h"
#include "engine/placement.h"
#include "engine/plan.h"

#define MARKET_KEY "market"

size_t gm_engine_candidate_types(const gm_deploy_config *cfg, const char **out, size_t max)
{
    size_t n = 0;
    if (cfg->n_types > 0) {
        for (int i = 0; i < cfg->n_types && n < max; i++)
            out[n++] = cfg->instance_types[i];
    } else if (cfg->instance_type) {
        out[n++] = cfg->instance_type;
    }
    return n;
}

gm_status gm_engine_gather_market(gm_aws_client *aws, gm_aws_client *pricing,
                                  const gm_deploy_config *cfg, gm_cost_market **out, gm_error *err)
{
    const char *types[GM_MAX_TYPES];
    size_t n = gm_engine_candidate_types(cfg, types, GM_MAX_TYPES);
    gm_cost_gather_options o = {.aws = aws, .pricing = pricing, .skip_spot = !cfg->spot};
    return gm_cost_market_for(&o, types, n, out, err);
}

void gm_engine_strategy(const gm_deploy_config *cfg, gm_tier tier, bool soft_needs,
                        gm_cost_strategy *s)
{
    gm_cost_strategy_init(s, tier);
    s->mode = !cfg->spot       ? GM_COST_MODE_ON_DEMAND_ONLY
              : cfg->spot_only ? GM_COST_MODE_SPOT_ONLY
                               : GM_COST_MODE_CHEAPEST;
    if (cfg->max_spot_price > 0)
        s->max_spot_price = cfg->max_spot_price;
    if (cfg->min_spot_saving > 0)
        s->min_saving = cfg->min_spot_saving;
    s->soft_needs = soft_needs;
}

static void market_release(void *m)
{
    gm_cost_market_free(m);
}

static GM_MUST_CHECK gm_status placement_create(gm_node *n, gm_error *err)
{
    gm_cost_market *m = NULL;
    gm_status st =
        gm_engine_gather_market(gm_node_aws(n), gm_node_pricing(n), gm_node_config(n), &m, err);
    if (st != GM_OK)
        return st;
    for (size_t i = 0; i < m->n_notes; i++)
        gm_node_note(n, "%s", m->notes[i]);
    char id[64];
    snprintf(id, sizeof id, "%zu type(s), %zu zone(s)", m->n_types, m->n_azs);
    st = gm_node_set_output(n, "spot_prices", m->spot_known ? m->spot_source : m->spot_error, err);
    if (st != GM_OK) {
        gm_cost_market_free(m);
        return st;
    }
    st = gm_node_share(n, MARKET_KEY, m, market_release, err);
    if (st == GM_OK)
        st = gm_node_created(n, id, err);
    return st;
}

const gm_node_ops gm_ops_placement = {
    .kind = "placement",
    .label = "reading prices and capacity offers",
    .create = placement_create,
};

gm_status gm_n_launch_plan(gm_node *n, const char *const azs[2], gm_cost_ranking *out,
                           gm_error *err)
{
    const gm_deploy_config *cfg = gm_node_config(n);
    gm_cost_market *m = gm_node_shared(n, MARKET_KEY);
    if (!m) { /* a resumed deploy: the market is not kept across runs */
        gm_status st = gm_engine_gather_market(gm_node_aws(n), gm_node_pricing(n), cfg, &m, err);
        if (st == GM_OK)
            st = gm_node_share(n, MARKET_KEY, m, market_release, err);
        if (st != GM_OK)
            return st;
    }
    gm_cost_strategy s;
    /* A type the user named is taken as meeting the needs (warned, not refused). */
    gm_engine_strategy(cfg, gm_node_tier(n), cfg->types_named, &s);
    gm_cost_ranking_init(out);
    gm_status st = gm_cost_rank(m, &s, out, err);
    if (st != GM_OK) {
        gm_cost_ranking_release(out);
        return st;
    }
    if (cfg->budget_monthly > 0 && !cfg->force) {
        gm_cost_assumptions a;
        gm_engine_assumptions(cfg, &a);
        gm_cost_budget_filter(out, cfg->budget_monthly, &a, gm_tier_has_alb(gm_node_tier(n)));
    }
    /* Keep the candidates in the deployment's two zones, in order. */
    size_t k = 0;
    for (size_t i = 0; i < out->n_viable; i++) {
        if (strcmp(out->viable[i].az, azs[0]) == 0 || strcmp(out->viable[i].az, azs[1]) == 0) {
            out->viable[k] = out->viable[i];
            out->viable[k].rank = (int)k + 1;
            k++;
        }
    }
    out->n_viable = k;
    if (k == 0) {
        st = gm_error_set(err, GM_ERR_INVALID, "no instance candidate can run in %s or %s%s%s",
                          azs[0], azs[1], out->n_rejected ? ": " : "",
                          out->n_rejected ? out->rejected[0].reason : "");
        gm_cost_ranking_release(out);
    }
    return st;
}
