/* Candidate ranking and the failover order. Pure: see rank.h. */
#include "cost/rank.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "cost/internal.h"

#define PRICE_EPS 1e-9

const char *gm_market_name(gm_market m)
{
    switch (m) {
    case GM_MARKET_SPOT: return "spot";
    case GM_MARKET_ON_DEMAND: return "on-demand";
    default: return "any";
    }
}

void gm_cost_tier_needs(gm_tier tier, gm_cost_needs *out)
{
    *out = (gm_cost_needs){.min_vcpus = 4, .min_memory_mib = 16384, .nvidia_gpu = false};
    if (tier == GM_TIER_GPU)
        out->nvidia_gpu = true;
}

void gm_cost_strategy_init(gm_cost_strategy *s, gm_tier tier)
{
    memset(s, 0, sizeof *s);
    s->mode = GM_COST_MODE_CHEAPEST;
    s->min_saving = GM_COST_DEFAULT_MIN_SAVING;
    s->max_spot_price = 0;
    gm_cost_tier_needs(tier, &s->needs);
}

static const char *const dev_types[] = {"t3.xlarge", "t3a.xlarge", "m6i.xlarge", "m5.xlarge",
                                        "m7i.xlarge"};
static const char *const automation_types[] = {"m6i.xlarge", "m5.xlarge", "m7i.xlarge", "t3.xlarge",
                                               "t3a.xlarge"};
static const char *const gpu_types[] = {"g5.xlarge", "g4dn.xlarge", "g6.xlarge"};

const char *const *gm_cost_default_types(gm_tier tier, size_t *out_n)
{
    if (tier == GM_TIER_GPU) {
        *out_n = sizeof gpu_types / sizeof *gpu_types;
        return gpu_types;
    }
    if (tier == GM_TIER_AUTOMATION) {
        *out_n = sizeof automation_types / sizeof *automation_types;
        return automation_types;
    }
    *out_n = sizeof dev_types / sizeof *dev_types;
    return dev_types;
}

void gm_cost_ranking_init(gm_cost_ranking *r)
{
    memset(r, 0, sizeof *r);
}

void gm_cost_ranking_release(gm_cost_ranking *r)
{
    if (!r)
        return;
    free(r->viable);
    free(r->rejected);
    memset(r, 0, sizeof *r);
}

static double gib(int mib)
{
    return (double)mib / 1024.0;
}

typedef struct ranker {
    const gm_cost_market *m;
    const gm_cost_strategy *s;
    gm_cost_ranking *out;
    size_t cap;
} ranker;

static gm_cost_candidate *push(ranker *k, bool viable, const gm_cost_type *t, const char *az,
                               gm_market market)
{
    gm_cost_candidate **arr = viable ? &k->out->viable : &k->out->rejected;
    size_t *n = viable ? &k->out->n_viable : &k->out->n_rejected;
    if (*n >= k->cap)
        return NULL; /* cannot happen: cap counts every combination */
    gm_cost_candidate *c = &(*arr)[(*n)++];
    memset(c, 0, sizeof *c);
    snprintf(c->type, sizeof c->type, "%s", t->type);
    snprintf(c->az, sizeof c->az, "%s", az ? az : "");
    c->market = market;
    c->hourly = -1;
    c->on_demand = t->on_demand;
    snprintf(c->on_demand_source, sizeof c->on_demand_source, "%s", t->on_demand_source);
    return c;
}

static void setf(char *dst, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void setf(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, size, fmt, ap);
    va_end(ap);
}

/* Type-level checks. Returns false (and records a rejection) when the type
 * cannot be used at all; warning receives soft problems. */
static bool type_usable(ranker *k, const gm_cost_type *t, char *warning, size_t wsize)
{
    const gm_cost_needs *nd = &k->s->needs;
    warning[0] = '\0';
    gm_cost_candidate *c;
    if (nd->nvidia_gpu && t->nvidia_gpus == 0) {
        if ((c = push(k, false, t, NULL, GM_MARKET_ANY)))
            setf(c->reason, sizeof c->reason, "has no NVIDIA GPU: the gpu tier needs one");
        return false;
    }
    if (t->vcpus <= 0 || t->memory_mib <= 0 || (nd->nvidia_gpu && t->nvidia_gpus < 0)) {
        setf(warning, wsize, "specs unknown: cannot check the tier's needs (%d vCPUs, %.0f GiB%s)",
             nd->min_vcpus, gib(nd->min_memory_mib), nd->nvidia_gpu ? ", an NVIDIA GPU" : "");
    } else if (t->vcpus < nd->min_vcpus || t->memory_mib < nd->min_memory_mib) {
        char what[200];
        setf(what, sizeof what,
             "%d vCPUs and %.0f GiB are below the tier's needs (%d vCPUs, "
             "%.0f GiB)",
             t->vcpus, gib(t->memory_mib), nd->min_vcpus, gib(nd->min_memory_mib));
        if (!k->s->soft_needs) {
            if ((c = push(k, false, t, NULL, GM_MARKET_ANY)))
                setf(c->reason, sizeof c->reason, "%s", what);
            return false;
        }
        setf(warning, wsize, "%s", what);
    }
    if (k->m->offerings_known) {
        bool any = false;
        for (size_t a = 0; a < k->m->n_azs; a++)
            any = any || t->offered[a];
        if (!any) {
            if ((c = push(k, false, t, NULL, GM_MARKET_ANY)))
                setf(c->reason, sizeof c->reason, "not offered in %s%s",
                     k->m->n_azs ? "the zones considered" : "any zone of ",
                     k->m->n_azs ? "" : (*k->m->region ? k->m->region : "the region"));
            return false;
        }
    }
    if (k->m->n_azs == 0) {
        if ((c = push(k, false, t, NULL, GM_MARKET_ANY)))
            setf(c->reason, sizeof c->reason, "no availability zone to place it in");
        return false;
    }
    return true;
}

static void rank_spot(ranker *k, const gm_cost_type *t, const char *az, const char *warning)
{
    const gm_cost_strategy *s = k->s;
    const gm_cost_market *m = k->m;
    char a[32], b[32];
    gm_cost_candidate *c;
    if (!m->spot_known) {
        if ((c = push(k, false, t, az, GM_MARKET_SPOT)))
            setf(c->reason, sizeof c->reason, "%s",
                 *m->spot_error ? m->spot_error : "spot prices unknown");
        return;
    }
    const gm_spot_price *sp = gm_spot_prices_get(&m->spot, t->type, az);
    if (!sp) {
        if ((c = push(k, false, t, az, GM_MARKET_SPOT)))
            setf(c->reason, sizeof c->reason, "no spot price for %s in the spot price history", az);
        return;
    }
    if (s->max_spot_price > 0 && sp->price > s->max_spot_price + PRICE_EPS) {
        if ((c = push(k, false, t, az, GM_MARKET_SPOT))) {
            c->hourly = sp->price;
            snprintf(c->source, sizeof c->source, "%s", m->spot_source);
            setf(c->reason, sizeof c->reason, "spot $%s/h is above --max-spot-price $%s/h",
                 gm_cost_usd(sp->price, a, sizeof a), gm_cost_usd(s->max_spot_price, b, sizeof b));
        }
        return;
    }
    if (s->mode != GM_COST_MODE_SPOT_ONLY) {
        const char *why = NULL;
        char buf[320];
        if (t->on_demand <= 0) {
            setf(buf, sizeof buf,
                 "on-demand price unknown: cannot check that spot saves at "
                 "least %.0f%%",
                 s->min_saving * 100);
            why = buf;
        } else {
            double saving = (t->on_demand - sp->price) / t->on_demand;
            if (saving + PRICE_EPS < s->min_saving) {
                setf(buf, sizeof buf,
                     "spot $%s/h saves only %.1f%% over on-demand $%s/h "
                     "(at least %.0f%% wanted)",
                     gm_cost_usd(sp->price, a, sizeof a), saving * 100,
                     gm_cost_usd(t->on_demand, b, sizeof b), s->min_saving * 100);
                why = buf;
            }
        }
        if (why) {
            if ((c = push(k, false, t, az, GM_MARKET_SPOT))) {
                c->hourly = sp->price;
                snprintf(c->source, sizeof c->source, "%s", m->spot_source);
                setf(c->reason, sizeof c->reason, "%s", why);
            }
            return;
        }
    }
    if ((c = push(k, true, t, az, GM_MARKET_SPOT))) {
        c->hourly = sp->price;
        snprintf(c->source, sizeof c->source, "%s", m->spot_source);
        snprintf(c->warning, sizeof c->warning, "%s", warning);
    }
}

static void rank_on_demand(ranker *k, const gm_cost_type *t, const char *az, const char *warning)
{
    gm_cost_candidate *c;
    if (t->on_demand <= 0) {
        if ((c = push(k, false, t, az, GM_MARKET_ON_DEMAND)))
            setf(c->reason, sizeof c->reason, "no on-demand price known (price list api or %s)",
                 GM_COST_TABLE_SOURCE);
        return;
    }
    if ((c = push(k, true, t, az, GM_MARKET_ON_DEMAND))) {
        c->hourly = t->on_demand;
        snprintf(c->source, sizeof c->source, "%s", t->on_demand_source);
        snprintf(c->warning, sizeof c->warning, "%s", warning);
    }
}

static int type_pos(const gm_cost_market *m, const char *type)
{
    for (size_t i = 0; i < m->n_types; i++)
        if (strcmp(m->types[i].type, type) == 0)
            return (int)i;
    return (int)m->n_types;
}

/* Price, then the type's place in the candidate list, then zone name, then
 * on-demand before spot. */
static int cmp_candidates(const gm_cost_market *m, const gm_cost_candidate *a,
                          const gm_cost_candidate *b)
{
    if (gm_cost_abs(a->hourly - b->hourly) > PRICE_EPS)
        return a->hourly < b->hourly ? -1 : 1;
    int ta = type_pos(m, a->type), tb = type_pos(m, b->type);
    if (ta != tb)
        return ta < tb ? -1 : 1;
    int z = strcmp(a->az, b->az);
    if (z)
        return z < 0 ? -1 : 1;
    if (a->market != b->market)
        return a->market == GM_MARKET_ON_DEMAND ? -1 : 1;
    return 0;
}

/* Insertion sort over indices (qsort has no context argument in C11; the
 * lists are short: types x zones x 2), then one permutation. Stable. */
static GM_MUST_CHECK gm_status sort_viable(const gm_cost_market *m, gm_cost_candidate *v, size_t n)
{
    if (n < 2)
        return GM_OK;
    size_t *idx = malloc(n * sizeof *idx);
    gm_cost_candidate *copy = malloc(n * sizeof *copy);
    if (!idx || !copy) {
        free(idx);
        free(copy);
        return GM_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
        size_t j = i;
        while (j > 0 && cmp_candidates(m, &v[idx[j - 1]], &v[i]) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    memcpy(copy, v, n * sizeof *copy);
    for (size_t i = 0; i < n; i++)
        v[i] = copy[idx[i]];
    free(idx);
    free(copy);
    return GM_OK;
}

static void explain_viable(const gm_cost_market *m, const gm_cost_strategy *s, gm_cost_ranking *r)
{
    char a[32], b[32];
    for (size_t i = 0; i < r->n_viable; i++) {
        gm_cost_candidate *c = &r->viable[i];
        const gm_cost_candidate *first = &r->viable[0];
        c->rank = (int)i + 1;
        char market[200];
        if (c->market == GM_MARKET_SPOT && c->on_demand > 0)
            setf(market, sizeof market, "spot saves %.0f%% over on-demand $%s/h",
                 (c->on_demand - c->hourly) / c->on_demand * 100,
                 gm_cost_usd(c->on_demand, a, sizeof a));
        else if (c->market == GM_MARKET_SPOT)
            setf(market, sizeof market, "spot (forced by --spot-only)");
        else if (s->mode == GM_COST_MODE_ON_DEMAND_ONLY)
            setf(market, sizeof market, "on-demand (forced by --on-demand)");
        else
            setf(market, sizeof market, "on-demand: no interruptions");
        if (i == 0) {
            setf(c->reason, sizeof c->reason, "cheapest viable; %s", market);
            continue;
        }
        double diff = c->hourly - first->hourly;
        if (diff > PRICE_EPS) {
            setf(c->reason, sizeof c->reason, "$%s/h more than the choice; %s",
                 gm_cost_usd(diff, b, sizeof b), market);
            continue;
        }
        const char *why;
        if (strcmp(c->type, first->type) != 0)
            why = type_pos(m, c->type) > type_pos(m, first->type) ? "later in the candidate list"
                                                                  : "same type order";
        else if (strcmp(c->az, first->az) != 0)
            why = "later zone name";
        else
            why = "spot after on-demand at the same price";
        setf(c->reason, sizeof c->reason, "same price as the choice, %s; %s", why, market);
    }
}

static void summarize_none(const gm_cost_market *m, const gm_cost_ranking *r, gm_error *err)
{
    char summary[700] = "";
    size_t used = 0;
    for (size_t i = 0; i < r->n_rejected && used < sizeof summary - 1; i++) {
        const gm_cost_candidate *c = &r->rejected[i];
        /* One mention per distinct reason is enough to act on. */
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(r->rejected[j].reason, c->reason) == 0;
        if (seen)
            continue;
        int w = snprintf(summary + used, sizeof summary - used, "%s%s%s%s%s: %s", used ? "; " : "",
                         c->type, *c->az ? " in " : "", c->az,
                         c->market == GM_MARKET_ANY    ? ""
                         : c->market == GM_MARKET_SPOT ? " (spot)"
                                                       : " (on-demand)",
                         c->reason);
        if (w < 0)
            break;
        used += (size_t)w;
        if (used >= sizeof summary)
            used = sizeof summary - 1;
    }
    gm_error_set(err, GM_ERR_NOT_FOUND,
                 "no instance type of the %zu candidate(s) is usable in %s: %s", m->n_types,
                 *m->region ? m->region : "the region", *summary ? summary : "no candidates");
}

gm_status gm_cost_rank(const gm_cost_market *m, const gm_cost_strategy *s, gm_cost_ranking *out,
                       gm_error *err)
{
    gm_cost_ranking_release(out);
    if (!isfinite(s->min_saving) || s->min_saving < 0 || s->min_saving >= 1)
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid minimum spot saving %g: expected 0 to 99 per cent",
                            s->min_saving * 100);
    if (!isfinite(s->max_spot_price))
        return gm_error_set(err, GM_ERR_INVALID, "invalid maximum spot price");
    size_t cap = m->n_types * (2 * m->n_azs + 1) + 1;
    ranker k = {.m = m, .s = s, .out = out, .cap = cap};
    out->cap = cap;
    out->viable = calloc(cap, sizeof *out->viable);
    out->rejected = calloc(cap, sizeof *out->rejected);
    if (!out->viable || !out->rejected) {
        gm_cost_ranking_release(out);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    for (size_t ti = 0; ti < m->n_types; ti++) {
        const gm_cost_type *t = &m->types[ti];
        char warning[200];
        if (!type_usable(&k, t, warning, sizeof warning))
            continue;
        for (size_t ai = 0; ai < m->n_azs; ai++) {
            const char *az = m->azs[ai];
            if (m->offerings_known && !t->offered[ai]) {
                gm_cost_candidate *c = push(&k, false, t, az, GM_MARKET_ANY);
                if (c)
                    setf(c->reason, sizeof c->reason, "not offered in %s", az);
                continue;
            }
            if (s->mode != GM_COST_MODE_ON_DEMAND_ONLY)
                rank_spot(&k, t, az, warning);
            if (s->mode != GM_COST_MODE_SPOT_ONLY)
                rank_on_demand(&k, t, az, warning);
        }
    }
    if (sort_viable(m, out->viable, out->n_viable) != GM_OK) {
        gm_cost_ranking_release(out);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    explain_viable(m, s, out);
    if (out->n_viable == 0) {
        summarize_none(m, out, err);
        return GM_ERR_NOT_FOUND;
    }
    return GM_OK;
}

/* ---- JSON ------------------------------------------------------------------------- */

static json_t *money(double v)
{
    return v < 0 ? json_null() : json_real(gm_cost_round(v, 1e6));
}

json_t *gm_cost_candidate_json(const gm_cost_candidate *c)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (c->rank > 0)
        json_object_set_new(o, "rank", json_integer(c->rank));
    json_object_set_new(o, "type", json_string(c->type));
    json_object_set_new(o, "az", *c->az ? json_string(c->az) : json_null());
    json_object_set_new(o, "market", json_string(gm_market_name(c->market)));
    json_object_set_new(o, "hourly", money(c->hourly));
    json_object_set_new(o, "ec2_monthly",
                        money(c->hourly < 0 ? -1 : c->hourly * GM_COST_HOURS_PER_MONTH));
    json_object_set_new(o, "on_demand_hourly", money(c->on_demand));
    if (c->market == GM_MARKET_SPOT && c->hourly >= 0 && c->on_demand > 0)
        json_object_set_new(
            o, "saving_percent",
            json_real(gm_cost_round((c->on_demand - c->hourly) / c->on_demand * 100, 10)));
    json_object_set_new(o, "source", *c->source ? json_string(c->source) : json_null());
    json_object_set_new(o, "on_demand_source",
                        *c->on_demand_source ? json_string(c->on_demand_source) : json_null());
    json_object_set_new(o, "reason", json_string(c->reason));
    if (*c->warning)
        json_object_set_new(o, "warning", json_string(c->warning));
    return o;
}

json_t *gm_cost_ranking_json(const gm_cost_ranking *r)
{
    json_t *failover = json_array(), *rejected = json_array();
    for (size_t i = 0; i < r->n_viable; i++)
        json_array_append_new(failover, gm_cost_candidate_json(&r->viable[i]));
    for (size_t i = 0; i < r->n_rejected; i++)
        json_array_append_new(rejected, gm_cost_candidate_json(&r->rejected[i]));
    return json_pack("{s:o, s:o, s:o}", "choice",
                     r->n_viable ? gm_cost_candidate_json(&r->viable[0]) : json_null(), "failover",
                     failover, "rejected", rejected);
}

json_t *gm_cost_strategy_json(const gm_cost_strategy *s)
{
    const char *mode = s->mode == GM_COST_MODE_SPOT_ONLY        ? "spot-only"
                       : s->mode == GM_COST_MODE_ON_DEMAND_ONLY ? "on-demand"
                                                                : "cheapest";
    return json_pack("{s:s, s:f, s:o, s:{s:i, s:f, s:b}, s:b}", "mode", mode, "min_saving_percent",
                     s->min_saving * 100, "max_spot_price",
                     s->max_spot_price > 0 ? json_real(s->max_spot_price) : json_null(), "needs",
                     "vcpus", s->needs.min_vcpus, "memory_gib", gib(s->needs.min_memory_mib),
                     "nvidia_gpu", s->needs.nvidia_gpu, "needs_are_warnings", s->soft_needs);
}

/* ---- failover --------------------------------------------------------------------- */

static bool code_in(const char *code, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(code, *list) == 0)
            return true;
    return false;
}

gm_launch_error_class gm_cost_launch_error_class(const char *code)
{
    static const char *const capacity[] = {"InsufficientInstanceCapacity",
                                           "InsufficientHostCapacity",
                                           "Unsupported",
                                           "UnfulfillableCapacity",
                                           "InsufficientCapacity",
                                           "InsufficientReservedInstanceCapacity",
                                           NULL};
    static const char *const quota[] = {"VcpuLimitExceeded", "InstanceLimitExceeded",
                                        "MaxSpotInstanceCountExceeded", NULL};
    static const char *const price[] = {"SpotMaxPriceTooLow", NULL};
    static const char *const throttling[] = {"RequestLimitExceeded", "Throttling",
                                             "ThrottlingException", NULL};
    static const char *const auth[] = {"AuthFailure", "UnauthorizedOperation", NULL};
    if (!code || !*code)
        return GM_LAUNCH_ERR_OTHER;
    if (code_in(code, capacity))
        return GM_LAUNCH_ERR_ZONE_CAPACITY;
    if (code_in(code, quota))
        return GM_LAUNCH_ERR_ACCOUNT_QUOTA;
    if (code_in(code, price))
        return GM_LAUNCH_ERR_PRICE;
    if (code_in(code, throttling))
        return GM_LAUNCH_ERR_THROTTLING;
    if (code_in(code, auth))
        return GM_LAUNCH_ERR_AUTH;
    return GM_LAUNCH_ERR_OTHER;
}

const char *gm_launch_error_class_name(gm_launch_error_class c)
{
    switch (c) {
    case GM_LAUNCH_ERR_ZONE_CAPACITY: return "zone capacity";
    case GM_LAUNCH_ERR_ACCOUNT_QUOTA: return "account quota";
    case GM_LAUNCH_ERR_PRICE: return "price";
    case GM_LAUNCH_ERR_THROTTLING: return "throttling";
    case GM_LAUNCH_ERR_AUTH: return "auth";
    default: return "other";
    }
}

/* The vCPU quota class of a type's family: AWS counts on-demand (and spot)
 * vCPUs per class: standard (A, C, D, H, I, M, R, T, Z), G and VT, P, F, X,
 * Inf, Trn, DL. */
static const char *quota_class(const char *type)
{
    char fam[16];
    size_t n = 0;
    while (type[n] && type[n] >= 'a' && type[n] <= 'z' && n < sizeof fam - 1) {
        fam[n] = type[n];
        n++;
    }
    fam[n] = '\0';
    if (strcmp(fam, "g") == 0 || strcmp(fam, "gr") == 0 || strcmp(fam, "vt") == 0)
        return "g";
    static const char *const own[] = {"p", "f", "x", "inf", "trn", "dl", NULL};
    for (size_t i = 0; own[i]; i++)
        if (strcmp(fam, own[i]) == 0)
            return own[i];
    return "standard";
}

size_t gm_cost_failover_next(const gm_cost_ranking *r, size_t failed, const char *aws_code)
{
    if (!r || failed >= r->n_viable)
        return r ? r->n_viable : 0;
    const gm_cost_candidate *f = &r->viable[failed];
    switch (gm_cost_launch_error_class(aws_code)) {
    case GM_LAUNCH_ERR_ZONE_CAPACITY:
    case GM_LAUNCH_ERR_PRICE: return failed + 1;
    case GM_LAUNCH_ERR_ACCOUNT_QUOTA: {
        bool all_spot = gm_str_eq(aws_code, "MaxSpotInstanceCountExceeded");
        const char *cls = quota_class(f->type);
        for (size_t i = failed + 1; i < r->n_viable; i++) {
            const gm_cost_candidate *c = &r->viable[i];
            if (c->market != f->market)
                return i;
            if (!all_spot && strcmp(quota_class(c->type), cls) != 0)
                return i;
        }
        return r->n_viable;
    }
    default: return r->n_viable;
    }
}

/* ---- Auto Scaling activities ------------------------------------------------------ */

/* The first launch error code of the known classes that the message names as
 * a word. */
static void named_code(const char *msg, char *out, size_t size)
{
    static const char *const known[] = {"InsufficientInstanceCapacity",
                                        "InsufficientHostCapacity",
                                        "UnfulfillableCapacity",
                                        "InsufficientReservedInstanceCapacity",
                                        "InsufficientCapacity",
                                        "MaxSpotInstanceCountExceeded",
                                        "VcpuLimitExceeded",
                                        "InstanceLimitExceeded",
                                        "SpotMaxPriceTooLow",
                                        "Unsupported",
                                        NULL};
    out[0] = '\0';
    for (const char *const *k = known; *k; k++) {
        size_t len = strlen(*k);
        for (const char *p = strstr(msg, *k); p; p = strstr(p + 1, *k)) {
            bool start = p == msg || !isalnum((unsigned char)p[-1]);
            bool end = !isalnum((unsigned char)p[len]);
            if (start && end) {
                snprintf(out, size, "%s", *k);
                return;
            }
        }
    }
}

/* The code a message means when it names none: AWS's own texts. */
static const char *code_of_text(const char *msg)
{
    static const struct {
        const char *text, *code;
    } texts[] = {
        {"no Spot capacity available", "InsufficientInstanceCapacity"},
        {"do not have sufficient", "InsufficientInstanceCapacity"},
        {"vCPU limit", "VcpuLimitExceeded"},
        {"Max spot instance count exceeded", "MaxSpotInstanceCountExceeded"},
        {"instance limit", "InstanceLimitExceeded"},
        {"lower than the minimum required Spot request fulfillment price", "SpotMaxPriceTooLow"},
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        if (strstr(msg, texts[i].text))
            return texts[i].code;
    return "";
}

/* The word after marker up to stop (exclusive) into out, when it is a plain
 * token; "" otherwise. */
static void token_after(const char *msg, const char *marker, const char *stop, char *out,
                        size_t size)
{
    out[0] = '\0';
    const char *p = strstr(msg, marker);
    if (!p)
        return;
    p += strlen(marker);
    const char *e = strstr(p, stop);
    size_t len = e ? (size_t)(e - p) : 0;
    if (len == 0 || len >= size)
        return;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)p[i]) && p[i] != '.' && p[i] != '-')
            return;
    snprintf(out, size, "%.*s", (int)len, p);
}

void gm_cost_read_activity(const char *message, gm_cost_activity *out)
{
    const char *msg = message ? message : "";
    memset(out, 0, sizeof *out);
    named_code(msg, out->code, sizeof out->code);
    if (!out->code[0])
        snprintf(out->code, sizeof out->code, "%s", code_of_text(msg));
    out->cls = gm_cost_launch_error_class(out->code);
    out->every_pool = strstr(msg, "no Spot capacity available that matches your request") ||
                      strcmp(out->code, "UnfulfillableCapacity") == 0;
    token_after(msg, "sufficient ", " capacity", out->type, sizeof out->type);
    token_after(msg, "Availability Zone you requested (", ")", out->az, sizeof out->az);
}
