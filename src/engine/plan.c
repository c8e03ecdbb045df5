#include "engine/plan.h"

#include <stdlib.h>
#include <string.h>

#include "engine/placement.h"
#include "stack/stack.h"

int gm_engine_root_need_gb(gm_tier tier)
{
    return tier == GM_TIER_GPU ? 100 : 60;
}

int gm_engine_root_volume_gb(gm_tier tier, long snapshot_gb)
{
    int need = gm_engine_root_need_gb(tier);
    return snapshot_gb > need && snapshot_gb <= GM_DATA_VOLUME_GB_MAX ? (int)snapshot_gb : need;
}

int gm_engine_data_volume_gb(const gm_deploy_config *cfg)
{
    return cfg->data_volume_gb > 0 ? cfg->data_volume_gb : GM_DATA_VOLUME_GB_DEFAULT;
}

void gm_engine_assumptions(const gm_deploy_config *cfg, gm_cost_assumptions *out)
{
    gm_cost_default_assumptions(out);
    out->ebs_gb = gm_engine_root_need_gb(cfg->tier);
    out->data_gb = gm_engine_data_volume_gb(cfg);
    if (cfg->assume_efs_gb > 0)
        out->efs_gb = cfg->assume_efs_gb;
    if (cfg->assume_transfer_gb > 0)
        out->transfer_gb = cfg->assume_transfer_gb;
}

/* Sizes the UserData of the plan's first candidate. */
static void size_userdata(const gm_deploy_config *cfg, const char *region, gm_engine_plan *p)
{
    size_t n_models = 0;
    const char *const *models = gm_engine_models(cfg, &n_models);
    p->ud_type = p->ranking.n_viable ? p->ranking.viable[0].type : cfg->instance_type;
    gm_stack_params sp = {
        .name = cfg->name,
        .tier = cfg->tier,
        .region = region,
        .instance_type = p->ud_type,
        .os = cfg->os,
        .models = models,
        .n_models = n_models,
        .alb_https = cfg->certificate_arn && *cfg->certificate_arn,
        /* the Elastic IP's step, sized with an id of the longest form */
        .eip_allocation_id = gm_tier_has_alb(cfg->tier) ? NULL : "eipalloc-00000000000000000",
    };
    gm_buf script;
    gm_buf_init(&script, GM_LIMIT_USERDATA_SCRIPT);
    char *b64 = NULL;
    p->ud_status = gm_userdata_render(&sp, &script, &p->ud_err);
    if (p->ud_status == GM_OK)
        p->ud_status = gm_userdata_encode(&script, &b64, &p->ud_sent, &p->ud_gzip, &p->ud_err);
    p->ud_raw = script.len;
    free(b64);
    gm_buf_release(&script);
}

/* The estimate of the first candidate and the budget's verdict. */
static GM_MUST_CHECK gm_status estimate(const gm_deploy_config *cfg, gm_engine_plan *p,
                                        gm_error *err)
{
    if (!p->ranking.n_viable)
        return GM_OK;
    bool alb = gm_tier_has_alb(cfg->tier);
    p->estimate = gm_cost_estimate_candidate(&p->ranking.viable[0], alb, &p->assume);
    if (!p->estimate)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    if (cfg->budget_monthly > 0) {
        p->budget_status = gm_cost_budget_check(p->estimate, cfg->budget_monthly, &p->budget_err);
        if (p->budget_status == GM_OK)
            p->over_budget_fallbacks =
                gm_cost_budget_filter(&p->ranking, cfg->budget_monthly, &p->assume, alb);
    }
    return GM_OK;
}

gm_status gm_engine_plan_make(gm_aws_client *aws, gm_aws_client *pricing,
                              const gm_deploy_config *cfg, gm_engine_plan *out, gm_error *err)
{
    memset(out, 0, sizeof *out);
    gm_cost_market_init(&out->market, gm_aws_client_region(aws));
    gm_cost_ranking_init(&out->ranking);
    gm_engine_assumptions(cfg, &out->assume);
    gm_engine_strategy(cfg, cfg->tier, cfg->types_named, &out->strategy);
    const char *types[GM_MAX_TYPES];
    size_t n = gm_engine_candidate_types(cfg, types, GM_MAX_TYPES);
    gm_status st = GM_OK;
    for (size_t i = 0; i < n && st == GM_OK; i++)
        st = gm_cost_market_add_type(&out->market, types[i], err);
    if (st != GM_OK)
        return st;
    if (!pricing)
        gm_cost_market_note(&out->market,
                            "on-demand prices from the %s: no client for the price list api",
                            GM_COST_TABLE_SOURCE);
    gm_cost_gather_options go = {
        .aws = aws,
        .pricing = pricing,
        .azs = cfg->azs,
        .n_azs = (size_t)cfg->n_azs,
        .skip_spot = out->strategy.mode == GM_COST_MODE_ON_DEMAND_ONLY,
    };
    st = gm_cost_market_gather(&go, &out->market, err);
    if (st != GM_OK)
        return st;
    out->rank_status = gm_cost_rank(&out->market, &out->strategy, &out->ranking, &out->rank_err);
    if (out->rank_status != GM_OK && out->rank_status != GM_ERR_NOT_FOUND) {
        *err = out->rank_err;
        return out->rank_status;
    }
    st = estimate(cfg, out, err);
    if (st != GM_OK)
        return st;
    size_userdata(cfg, out->market.region, out);
    out->graph = gm_engine_graph_json(cfg->tier);
    return out->graph ? GM_OK : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
}

void gm_engine_plan_release(gm_engine_plan *p)
{
    json_decref(p->estimate);
    json_decref(p->graph);
    gm_cost_ranking_release(&p->ranking);
    gm_cost_market_release(&p->market);
    memset(p, 0, sizeof *p);
}
