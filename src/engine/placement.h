/* Placement helpers shared by the placement node and the checks before a
 * deploy (engine-internal). */
#ifndef GM_ENGINE_PLACEMENT_H
#define GM_ENGINE_PLACEMENT_H

#include "cost/market.h"
#include "cost/rank.h"
#include "engine/engine.h"

/* The candidate types of cfg in preference order (at most max). */
size_t gm_engine_candidate_types(const gm_deploy_config *cfg, const char **out, size_t max);

/* The market of cfg's candidates (see gm_cost_market_for). */
GM_MUST_CHECK gm_status gm_engine_gather_market(gm_aws_client *aws, gm_aws_client *pricing,
                                                const gm_deploy_config *cfg, gm_cost_market **out,
                                                gm_error *err);

/* The ranking strategy of cfg for tier; soft_needs: the user named the types. */
void gm_engine_strategy(const gm_deploy_config *cfg, gm_tier tier, bool soft_needs,
                        gm_cost_strategy *s);

#endif
