/* Candidate ranking: where (instance type, availability zone, market) to
 * launch, and in which order to fall back.
 *
 * gm_cost_rank is a pure function of a market (cost/market.h) and a strategy:
 * no AWS call, no clock, no randomness, so the same inputs always give the
 * same order. The rules:
 *   - a type must meet the tier's needs (vCPUs, memory, an NVIDIA GPU for the
 *     gpu tier); with soft_needs (types the user named) a vCPU or memory
 *     shortfall is a warning instead, a missing GPU is always a rejection;
 *   - a (type, zone) pair must be offered (when the offerings are known);
 *   - spot needs a price for that zone in the spot history, at most
 *     max_spot_price when a cap is set, and (unless the market is forced to
 *     spot) a saving of at least min_saving over the type's on-demand price:
 *     with no on-demand price the saving cannot be checked, so spot is skipped;
 *   - on-demand needs a price (price list api, else the shipped table);
 *   - spot_only / on_demand_only consider that market alone;
 *   - order: hourly price ascending; ties by the type's position in the
 *     candidate list, then zone name, then on-demand before spot.
 * The result lists every viable (type, zone, market) in that order (the
 * engine tries them in turn; viable[0] is the choice) and every rejected
 * combination with its reason.
 */
#ifndef GM_COST_RANK_H
#define GM_COST_RANK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "core/tier.h"
#include "cost/market.h"

typedef enum gm_market {
    GM_MARKET_SPOT,
    GM_MARKET_ON_DEMAND,
    GM_MARKET_ANY, /* rejections that concern both markets */
} gm_market;

const char *gm_market_name(gm_market m); /* "spot", "on-demand", "any" */

typedef enum gm_cost_mode {
    GM_COST_MODE_CHEAPEST,       /* spot when it saves enough, else on-demand */
    GM_COST_MODE_SPOT_ONLY,      /* --spot-only */
    GM_COST_MODE_ON_DEMAND_ONLY, /* --on-demand */
} gm_cost_mode;

typedef struct gm_cost_needs {
    int min_vcpus;
    int min_memory_mib;
    bool nvidia_gpu;
} gm_cost_needs;

#define GM_COST_DEFAULT_MIN_SAVING 0.20

typedef struct gm_cost_strategy {
    gm_cost_mode mode;
    double min_saving;     /* share of on-demand that spot must save (0.20 = 20 %) */
    double max_spot_price; /* USD per hour; <= 0: no cap */
    gm_cost_needs needs;
    bool soft_needs; /* vCPU/memory shortfalls warn instead of reject */
} gm_cost_strategy;

/* The needs of a tier: dev and automation 4 vCPUs and 16 GiB (n8n, PostgreSQL,
 * Qdrant, Crawl4AI and a small Ollama model side by side); gpu the same plus
 * an NVIDIA GPU. */
void gm_cost_tier_needs(gm_tier tier, gm_cost_needs *out);

/* Cheapest mode, min_saving GM_COST_DEFAULT_MIN_SAVING, no cap, the tier's
 * needs, hard needs. */
void gm_cost_strategy_init(gm_cost_strategy *s, gm_tier tier);

/* The default candidate types of a tier, in preference order (static;
 * *out_n set).
 *   dev:        t3.xlarge t3a.xlarge m6i.xlarge m5.xlarge m7i.xlarge
 *   automation: m6i.xlarge m5.xlarge m7i.xlarge t3.xlarge t3a.xlarge
 *   gpu:        g5.xlarge g4dn.xlarge g6.xlarge */
const char *const *gm_cost_default_types(gm_tier tier, size_t *out_n);

typedef struct gm_cost_candidate {
    char type[GM_COST_TYPE_MAX];
    char az[GM_COST_AZ_MAX]; /* "" when a rejection concerns every zone */
    gm_market market;
    int rank;                                  /* 1-based failover position; 0 for rejections */
    double hourly;                             /* USD per hour at that market; < 0 unknown */
    double on_demand;                          /* the type's on-demand USD per hour; < 0 unknown */
    char source[GM_COST_SOURCE_MAX];           /* where hourly came from */
    char on_demand_source[GM_COST_SOURCE_MAX]; /* where on_demand came from */
    char reason[320];  /* viable: why at this place; rejected: why not usable */
    char warning[200]; /* e.g. below the tier's needs (soft), specs unknown; or "" */
} gm_cost_candidate;

typedef struct gm_cost_ranking {
    gm_cost_candidate *viable; /* failover order; viable[0] is the choice */
    size_t n_viable;
    gm_cost_candidate *rejected; /* in candidate-type, zone, market order */
    size_t n_rejected;
    size_t cap; /* room in each array */
} gm_cost_ranking;

void gm_cost_ranking_init(gm_cost_ranking *r);
void gm_cost_ranking_release(gm_cost_ranking *r); /* safe on NULL and zeroed */

/* Ranks (see the top of this header). out is (re)filled. GM_ERR_INVALID for a
 * bad strategy (min_saving outside [0, 1), NaN cap); GM_ERR_NOT_FOUND "no
 * instance type meets ..." with a summary of the reasons when nothing is
 * viable (out->rejected still says why for each); GM_ERR_NOMEM. */
GM_MUST_CHECK gm_status gm_cost_rank(const gm_cost_market *m, const gm_cost_strategy *s,
                                     gm_cost_ranking *out, gm_error *err);

/* JSON views (new references). A candidate: {rank?, type, az|null, market,
 * hourly, ec2_monthly, on_demand_hourly, saving_percent?, source,
 * on_demand_source, reason, warning?}. A ranking: {choice|null, failover:
 * [...], rejected: [...]}. */
json_t *gm_cost_candidate_json(const gm_cost_candidate *c);
json_t *gm_cost_ranking_json(const gm_cost_ranking *r);
json_t *gm_cost_strategy_json(const gm_cost_strategy *s);

/* ---- failover ---------------------------------------------------------------- */

/* What a launch error means for the next attempt (STACK.md's classes). */
typedef enum gm_launch_error_class {
    GM_LAUNCH_ERR_OTHER,         /* not a placement problem (bad parameter, ...): stop */
    GM_LAUNCH_ERR_ZONE_CAPACITY, /* InsufficientInstanceCapacity, InsufficientHostCapacity,
                                    Unsupported, UnfulfillableCapacity, InsufficientCapacity:
                                    next zone / type */
    GM_LAUNCH_ERR_ACCOUNT_QUOTA, /* VcpuLimitExceeded, InstanceLimitExceeded,
                                    MaxSpotInstanceCountExceeded: other zones won't help */
    GM_LAUNCH_ERR_PRICE,         /* SpotMaxPriceTooLow: next candidate */
    GM_LAUNCH_ERR_THROTTLING,    /* RequestLimitExceeded, Throttling: the same call again */
    GM_LAUNCH_ERR_AUTH,          /* AuthFailure, UnauthorizedOperation: stop */
} gm_launch_error_class;

gm_launch_error_class gm_cost_launch_error_class(const char *aws_code);
const char *gm_launch_error_class_name(gm_launch_error_class c); /* "zone capacity", ... */

/* The index in r->viable of the candidate to try after viable[failed] failed
 * with aws_code, or r->n_viable when nothing left can help:
 *   zone capacity, price: the next one (failed + 1);
 *   account quota: the next one of another market, or of the same market but
 *     another vCPU quota class (standard, G/VT, P, F, X, Inf, Trn, DL) --
 *     for MaxSpotInstanceCountExceeded every spot candidate is skipped;
 *   throttling, auth, other: r->n_viable (the request core already retried
 *     throttling; the others need a person). */
size_t gm_cost_failover_next(const gm_cost_ranking *r, size_t failed, const char *aws_code);

/* ---- Auto Scaling activities ------------------------------------------------------ */

/* What a failed scaling activity of an Auto Scaling group says about a launch,
 * read from its StatusMessage: AWS writes the EC2 error code into it ("Could
 * not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot
 * capacity available that matches your request. ...") or only its text ("We
 * currently do not have sufficient t3.large capacity in the Availability Zone
 * you requested (us-east-1a). ...", "You have requested more vCPU capacity
 * than your current vCPU limit ..."). */
typedef struct gm_cost_activity {
    char code[64]; /* the launch error code named or recognised; "" when none */
    gm_launch_error_class cls;
    bool every_pool; /* the message says no pool of the request can serve it ("There is no
                        Spot capacity available that matches your request", an
                        UnfulfillableCapacity fleet) */
    char type[GM_COST_TYPE_MAX]; /* the pool the message names; "" when none */
    char az[GM_COST_AZ_MAX];
} gm_cost_activity;

/* Reads a failed activity's StatusMessage (NULL reads as ""). Pure. */
void gm_cost_read_activity(const char *message, gm_cost_activity *out);

#endif
