/* Placement: where and how the instance runs.
 *
 * The placement node gathers the market (zones offering each candidate type,
 * their specs, current spot prices; on-demand prices from the Price List API
 * when a pricing client is given, else the shipped table) beside the network
 * nodes, so it costs the instance no extra round trip. The instance node then
 * ranks the candidates in the deployment's two zones and launches down the
 * failover order (gm_n_launch_plan). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cost/estimate.h"
#include "cost/market.h"
#include "cost/rank.h"
#include "engine/internal.h"
#include "engine/nodes.h"

void gm_e_market_free(gm_engine *e)
{
    if (e->market) {
        gm_cost_market_release(e->market);
        free(e->market);
        e->market = NULL;
    }
}

static size_t candidate_types(gm_engine *e, const char **out, size_t max)
{
    size_t n = 0;
    if (e->cfg->n_types > 0) {
        for (int i = 0; i < e->cfg->n_types && n < max; i++)
            out[n++] = e->cfg->instance_types[i];
    } else if (e->cfg->instance_type) {
        out[n++] = e->cfg->instance_type;
    }
    return n;
}

static gm_status gather(gm_engine *e, gm_cost_market **out, gm_error *err)
{
    gm_cost_market *m = calloc(1, sizeof *m);
    if (!m)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_cost_market_init(m, gm_aws_client_region(e->aws));
    const char *types[16];
    size_t n = candidate_types(e, types, 16);
    gm_status st = GM_OK;
    for (size_t i = 0; i < n && st == GM_OK; i++)
        st = gm_cost_market_add_type(m, types[i], err);
    if (st == GM_OK) {
        gm_cost_gather_options o = {
            .aws = e->aws,
            .pricing = e->pricing,
            .skip_spot = !e->cfg->spot,
        };
        st = gm_cost_market_gather(&o, m, err);
    }
    if (st != GM_OK) {
        gm_cost_market_release(m);
        free(m);
        return st;
    }
    *out = m;
    return GM_OK;
}

static gm_status placement_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    gm_cost_market *m = NULL;
    gm_status st = gather(e, &m, err);
    if (st != GM_OK)
        return st;
    for (size_t i = 0; i < m->n_notes; i++)
        gm_e_event(e, n, "%s", m->notes[i]);
    gm_e_set_output(e, n, "spot_prices", m->spot_known ? m->spot_source : m->spot_error);
    pthread_mutex_lock(&e->lock);
    gm_e_market_free(e);
    e->market = m;
    pthread_mutex_unlock(&e->lock);
    char id[64];
    snprintf(id, sizeof id, "%zu type(s), %zu zone(s)", m->n_types, m->n_azs);
    return gm_e_journal_id(e, n, id, err);
}

const gm_node_ops gm_ops_placement = {
    "placement", "reading prices and capacity offers", false, placement_create, NULL, NULL, NULL};

gm_status gm_n_launch_plan(gm_engine *e, const char *const azs[2], gm_cost_ranking *out,
                           gm_error *err)
{
    pthread_mutex_lock(&e->lock);
    gm_cost_market *m = e->market;
    pthread_mutex_unlock(&e->lock);
    gm_status st = GM_OK;
    if (!m) { /* a resumed deploy: the market is not kept across runs */
        st = gather(e, &m, err);
        if (st != GM_OK)
            return st;
        pthread_mutex_lock(&e->lock);
        e->market = m;
        pthread_mutex_unlock(&e->lock);
    }
    gm_cost_strategy s;
    gm_cost_strategy_init(&s, e->dep->tier);
    s.mode = !e->cfg->spot       ? GM_COST_MODE_ON_DEMAND_ONLY
             : e->cfg->spot_only ? GM_COST_MODE_SPOT_ONLY
                                 : GM_COST_MODE_CHEAPEST;
    if (e->cfg->max_spot_price > 0)
        s.max_spot_price = e->cfg->max_spot_price;
    if (e->cfg->min_spot_saving > 0)
        s.min_saving = e->cfg->min_spot_saving;
    /* A type the user named is taken as meeting the needs (warned, not refused). */
    s.soft_needs = e->cfg->n_types > 0 || e->cfg->instance_type != NULL;
    gm_cost_ranking_init(out);
    st = gm_cost_rank(m, &s, out, err);
    if (st != GM_OK) {
        gm_cost_ranking_release(out);
        return st;
    }
    if (e->cfg->budget_monthly > 0 && !e->cfg->force)
        gm_cost_budget_filter(out, e->cfg->budget_monthly, NULL,
                              strcmp(e->dep->tier, "automation") == 0);
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
        gm_status rs = gm_error_set(
            err, GM_ERR_INVALID, "no instance candidate can run in %s or %s%s%s", azs[0], azs[1],
            out->n_rejected ? ": " : "", out->n_rejected ? out->rejected[0].reason : "");
        gm_cost_ranking_release(out);
        return rs;
    }
    return GM_OK;
}

gm_status gm_engine_budget_check(gm_aws_client *aws, gm_aws_client *pricing,
                                 const gm_deploy_config *cfg, const char *tier,
                                 json_t **out_estimate, gm_error *err)
{
    if (out_estimate)
        *out_estimate = NULL;
    gm_engine e;
    memset(&e, 0, sizeof e);
    e.aws = aws;
    e.pricing = pricing;
    e.cfg = cfg;
    gm_cost_market *m = NULL;
    gm_status st = gather(&e, &m, err);
    if (st != GM_OK)
        return st;
    gm_cost_strategy s;
    gm_cost_strategy_init(&s, tier);
    s.mode = !cfg->spot       ? GM_COST_MODE_ON_DEMAND_ONLY
             : cfg->spot_only ? GM_COST_MODE_SPOT_ONLY
                              : GM_COST_MODE_CHEAPEST;
    if (cfg->max_spot_price > 0)
        s.max_spot_price = cfg->max_spot_price;
    if (cfg->min_spot_saving > 0)
        s.min_saving = cfg->min_spot_saving;
    s.soft_needs = true;
    gm_cost_ranking r;
    gm_cost_ranking_init(&r);
    st = gm_cost_rank(m, &s, &r, err);
    bool alb = strcmp(tier, "automation") == 0;
    json_t *est = NULL;
    if (st == GM_OK && r.n_viable == 0)
        st = gm_error_set(err, GM_ERR_INVALID, "no instance candidate is available%s%s",
                          r.n_rejected ? ": " : "", r.n_rejected ? r.rejected[0].reason : "");
    if (st == GM_OK) {
        est = gm_cost_estimate_candidate(&r.viable[0], alb, NULL);
        if (cfg->budget_monthly > 0 && !cfg->force)
            st = gm_cost_budget_check(est, cfg->budget_monthly, err);
    }
    gm_cost_ranking_release(&r);
    gm_cost_market_release(m);
    free(m);
    if (st == GM_OK && out_estimate)
        *out_estimate = est;
    else
        json_decref(est);
    return st;
}
