/* What a deploy would do, without doing it: the candidates ranked into a
 * failover order, the estimate, the budget's verdict, the UserData's size and
 * the resource graph. Read-only calls only (DescribeInstanceTypeOfferings,
 * DescribeInstanceTypes, DescribeSpotPriceHistory, pricing GetProducts). */
#ifndef GM_ENGINE_PLAN_H
#define GM_ENGINE_PLAN_H

#include "cost/estimate.h"
#include "cost/market.h"
#include "cost/rank.h"
#include "engine/engine.h"

typedef struct gm_engine_plan {
    gm_cost_strategy strategy;
    gm_cost_assumptions assume;
    gm_cost_market market;
    gm_cost_ranking ranking;
    gm_status rank_status; /* GM_ERR_NOT_FOUND: no usable candidate (rank_err says why) */
    gm_error rank_err;
    json_t *estimate;        /* of the first candidate, or NULL */
    gm_status budget_status; /* with a budget: GM_OK within, else why in budget_err */
    gm_error budget_err;
    size_t over_budget_fallbacks; /* fallbacks dropped for the budget */
    const char *ud_type;          /* the type the UserData was sized for */
    size_t ud_raw, ud_sent;
    bool ud_gzip;
    gm_status ud_status;
    gm_error ud_err;
    json_t *graph; /* gm_engine_graph_json of the tier */
} gm_engine_plan;

/* Plans cfg (a checked config: see gm_engine_check_config). The only errors
 * returned are those that leave no plan to show (credentials, the offerings
 * call, memory); the ranking's and the budget's verdicts are in *out.
 * Release *out with gm_engine_plan_release, whatever the result. */
GM_MUST_CHECK gm_status gm_engine_plan_make(gm_aws_client *aws, gm_aws_client *pricing,
                                            const gm_deploy_config *cfg, gm_engine_plan *out,
                                            gm_error *err);
void gm_engine_plan_release(gm_engine_plan *p);

/* The assumptions of cfg's estimates (its --assume-* values, else defaults;
 * the root volume the tier needs, the data volume of --data-volume-gb). */
void gm_engine_assumptions(const gm_deploy_config *cfg, gm_cost_assumptions *out);

/* The root volume (GiB) a tier needs: 60, 100 for gpu (CUDA images). */
int gm_engine_root_need_gb(gm_tier tier);
/* The root volume to ask for: the tier's need, or the image's root snapshot
 * when that is larger (EC2 refuses a volume smaller than its snapshot with
 * InvalidBlockDeviceMapping; the Deep Learning AMI's is 75 GiB). */
int gm_engine_root_volume_gb(gm_tier tier, long snapshot_gb);
/* The data volume of cfg (GiB): --data-volume-gb, else the default. */
int gm_engine_data_volume_gb(const gm_deploy_config *cfg);

#endif
