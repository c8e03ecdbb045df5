/* The cost layer: ranking strategies over canned markets, failover order,
 * estimates and budgets, and the parsers of DescribeSpotPriceHistory,
 * DescribeInstanceTypeOfferings, DescribeInstanceTypes and the Price List
 * API, with canned responses through the mock transport. */
#include <stdlib.h>
#include <unistd.h>

#include "aws/client.h"
#include "aws/xml.h"
#include "core/timeutil.h"
#include "cost/estimate.h"
#include "cost/market.h"
#include "cost/prices.h"
#include "cost/rank.h"
#include "gm_test.h"
#include "mock_transport.h"

#define NEAR(a, b) (((a) - (b)) < 1e-6 && ((b) - (a)) < 1e-6)

/* ---- canned markets -------------------------------------------------------------- */

static const char *const AZS3[] = {"us-east-1a", "us-east-1b", "us-east-1c"};

/* A market of the given types (table specs and prices) in the given zones,
 * every type offered everywhere, spot history read but empty. */
static void market(gm_cost_market *m, const char *const *types, size_t nt, const char *const *azs,
                   size_t na)
{
    gm_cost_market_init(m, "us-east-1");
    for (size_t i = 0; i < nt; i++)
        CHECK_INT(gm_cost_market_add_type(m, types[i], NULL), GM_OK);
    /* Added in reverse to prove the zones end up sorted. */
    for (size_t i = na; i > 0; i--)
        CHECK_INT(gm_cost_market_add_az(m, azs[i - 1], NULL, NULL), GM_OK);
    for (size_t i = 0; i < nt; i++)
        for (size_t a = 0; a < na; a++)
            CHECK_INT(gm_cost_market_set_offered(m, types[i], azs[a], false, NULL), GM_OK);
    m->spot_known = true;
    snprintf(m->spot_source, sizeof m->spot_source, "spot price history 2026-11-23T10:00:00Z");
}

static void spot(gm_cost_market *m, const char *type, const char *az, double price)
{
    CHECK_INT(gm_spot_prices_put(&m->spot, type, az, price, 1700000000, NULL), GM_OK);
}

static void expect(const gm_cost_candidate *c, const char *type, const char *az, gm_market mk,
                   double hourly)
{
    CHECK_STR(c->type, type);
    CHECK_STR(c->az, az);
    CHECK_STR(gm_market_name(c->market), gm_market_name(mk));
    if (!NEAR(c->hourly, hourly)) {
        fprintf(stderr, "  %s %s %s: hourly %.6f, expected %.6f\n", c->type, c->az,
                gm_market_name(c->market), c->hourly, hourly);
        CHECK(NEAR(c->hourly, hourly));
    }
}

static const gm_cost_candidate *find_rejected(const gm_cost_ranking *r, const char *type,
                                              const char *az, gm_market mk)
{
    for (size_t i = 0; i < r->n_rejected; i++)
        if (strcmp(r->rejected[i].type, type) == 0 && strcmp(r->rejected[i].az, az) == 0 &&
            r->rejected[i].market == mk)
            return &r->rejected[i];
    return NULL;
}

static bool has(const char *s, const char *needle)
{
    bool ok = s && strstr(s, needle);
    if (!ok)
        fprintf(stderr, "  \"%s\" lacks \"%s\"\n", s ? s : "(null)", needle);
    return ok;
}

/* ---- ranking ------------------------------------------------------------------------ */

static void test_rank_cheapest_spot_over_types_and_zones(void)
{
    const char *types[] = {"t3.xlarge", "m6i.xlarge"};
    gm_cost_market m;
    market(&m, types, 2, AZS3, 3);
    spot(&m, "t3.xlarge", "us-east-1a", 0.06);
    spot(&m, "t3.xlarge", "us-east-1b", 0.05);
    spot(&m, "m6i.xlarge", "us-east-1a", 0.04);
    spot(&m, "m6i.xlarge", "us-east-1c", 0.09);
    gm_cost_strategy s;
    gm_cost_strategy_init(&s, GM_TIER_DEV);
    gm_cost_ranking r;
    gm_cost_ranking_init(&r);
    gm_error err = {0};
    CHECK_INT(gm_cost_rank(&m, &s, &r, &err), GM_OK);
    CHECK_INT(r.n_viable, 10); /* 4 spot + 6 on-demand */
    if (r.n_viable == 10) {
        expect(&r.viable[0], "m6i.xlarge", "us-east-1a", GM_MARKET_SPOT, 0.04);
        expect(&r.viable[1], "t3.xlarge", "us-east-1b", GM_MARKET_SPOT, 0.05);
        expect(&r.viable[2], "t3.xlarge", "us-east-1a", GM_MARKET_SPOT, 0.06);
        expect(&r.viable[3], "m6i.xlarge", "us-east-1c", GM_MARKET_SPOT, 0.09);
        expect(&r.viable[4], "t3.xlarge", "us-east-1a", GM_MARKET_ON_DEMAND, 0.1664);
        expect(&r.viable[6], "t3.xlarge", "us-east-1c", GM_MARKET_ON_DEMAND, 0.1664);
        expect(&r.viable[7], "m6i.xlarge", "us-east-1a", GM_MARKET_ON_DEMAND, 0.192);
        expect(&r.viable[9], "m6i.xlarge", "us-east-1c", GM_MARKET_ON_DEMAND, 0.192);
        for (size_t i = 0; i < r.n_viable; i++)
            CHECK_INT(r.viable[i].rank, (int)i + 1);
        CHECK(has(r.viable[0].reason, "cheapest viable"));
        CHECK(has(r.viable[0].reason, "79%")); /* (0.192 - 0.04) / 0.192 */
        CHECK(has(r.viable[1].reason, "$0.0100/h more than the choice"));
        CHECK(has(r.viable[0].source, "spot price history 2026-11-23"));
        CHECK(has(r.viable[4].source, "shipped table 2025-06"));
    }
    /* Missing spot prices: those zones' spot candidates are skipped, with why. */
    const gm_cost_candidate *c = find_rejected(&r, "t3.xlarge", "us-east-1c", GM_MARKET_SPOT);
    CHECK(c && has(c->reason, "no spot price for us-east-1c"));
    CHECK(find_rejected(&r, "m6i.xlarge", "us-east-1b", GM_MARKET_SPOT) != NULL);
    CHECK_INT(r.n_rejected, 2);
    gm_cost_ranking_release(&r);
    gm_cost_market_release(&m);
}

static void test_rank_ties_follow_type_order_then_zone(void)
{
    /* m6i listed first: at equal prices it wins over t3 although t3 sorts
     * first by name; within a type the zone name decides. */
    const char *types[] = {"m6i.xlarge", "t3.xlarge"};
    gm_cost_market m;
    market(&m, types, 2, AZS3, 3);
    spot(&m, "t3.xlarge", "us-east-1a", 0.05);
    spot(&m, "m6i.xlarge", "us-east-1c", 0.05);
    spot(&m, "m6i.xlarge", "us-east-1b", 0.05);
    gm_cost_strategy s;
    gm_cost_strategy_init(&s, GM_TIER_DEV);
    gm_cost_ranking r;
    gm_cost_ranking_init(&r);
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    CHECK(r.n_viable >= 3);
    expect(&r.viable[0], "m6i.xlarge", "us-east-1b", GM_MARKET_SPOT, 0.05);
    expect(&r.viable[1], "m6i.xlarge", "us-east-1c", GM_MARKET_SPOT, 0.05);
    expect(&r.viable[2], "t3.xlarge", "us-east-1a", GM_MARKET_SPOT, 0.05);
    CHECK(has(r.viable[1].reason, "same price as the choice, later zone name"));
    CHECK(has(r.viable[2].reason, "later in the candidate list"));
    /* The same inputs always give the same order. */
    gm_cost_ranking r2;
    gm_cost_ranking_init(&r2);
    CHECK_INT(gm_cost_rank(&m, &s, &r2, NULL), GM_OK);
    CHECK_INT(r2.n_viable, r.n_viable);
    for (size_t i = 0; i < r.n_viable && i < r2.n_viable; i++) {
        CHECK_STR(r2.viable[i].type, r.viable[i].type);
        CHECK_STR(r2.viable[i].az, r.viable[i].az);
        CHECK_INT(r2.viable[i].market, r.viable[i].market);
    }
    gm_cost_ranking_release(&r2);
    gm_cost_ranking_release(&r);
    gm_cost_market_release(&m);
}

static void test_rank_saving_threshold(void)
{
    const char *types[] = {"t3.xlarge"};
    gm_cost_market m;
    market(&m, types, 1, AZS3, 2);
    /* on-demand 0.1664: a 20 % saving is 0.13312 exactly. */
    spot(&m, "t3.xlarge", "us-east-1a", 0.15);    /* 9.9 %: too little */
    spot(&m, "t3.xlarge", "us-east-1b", 0.13312); /* exactly 20 %: enough */
    gm_cost_strategy s;
    gm_cost_strategy_init(&s, GM_TIER_DEV);
    gm_cost_ranking r;
    gm_cost_ranking_init(&r);
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    CHECK_INT(r.n_viable, 3);
    expect(&r.viable[0], "t3.xlarge", "us-east-1b", GM_MARKET_SPOT, 0.13312);
    expect(&r.viable[1], "t3.xlarge", "us-east-1a", GM_MARKET_ON_DEMAND, 0.1664);
    expect(&r.viable[2], "t3.xlarge", "us-east-1b", GM_MARKET_ON_DEMAND, 0.1664);
    const gm_cost_candidate *c = find_rejected(&r, "t3.xlarge", "us-east-1a", GM_MARKET_SPOT);
    CHECK(c && has(c->reason, "saves only 9.9%") && has(c->reason, "at least 20%"));
    CHECK(c && NEAR(c->hourly, 0.15));
    /* A stricter threshold turns the 20 % offer down too. */
    s.min_saving = 0.25;
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    CHECK_INT(r.n_viable, 2);
    CHECK_INT(r.viable[0].market, GM_MARKET_ON_DEMAND);
    CHECK(has(r.viable[0].reason, "on-demand: no interruptions"));
    /* No threshold: spot wins whenever it is cheaper. */
    s.min_saving = 0;
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    CHECK_INT(r.n_viable, 4);
    /* Out-of-range thresholds are refused. */
    s.min_saving = 1.0;
    gm_error err = {0};
    CHECK_INT(gm_cost_rank(&m, &s, &r, &err), GM_ERR_INVALID);
    gm_cost_ranking_release(&r);
    gm_cost_market_release(&m);
}

static void test_rank_max_spot_price_cap(void)
{
    const char *types[] = {"t3.xlarge", "t3a.xlarge"};
    gm_cost_market m;
    market(&m, types, 2, AZS3, 2);
    spot(&m, "t3.xlarge", "us-east-1a", 0.07);
    spot(&m, "t3.xlarge", "us-east-1b", 0.05);
    spot(&m, "t3a.xlarge", "us-east-1a", 0.045);
    gm_cost_strategy s;
    gm_cost_strategy_init(&s, GM_TIER_DEV);
    s.max_spot_price = 0.05; /* inclusive */
    gm_cost_ranking r;
    gm_cost_ranking_init(&r);
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    expect(&r.viable[0], "t3a.xlarge", "us-east-1a", GM_MARKET_SPOT, 0.045);
    expect(&r.viable[1], "t3.xlarge", "us-east-1b", GM_MARKET_SPOT, 0.05);
    expect(&r.viable[2], "t3a.xlarge", "us-east-1a", GM_MARKET_ON_DEMAND, 0.1504);
    const gm_cost_candidate *c = find_rejected(&r, "t3.xlarge", "us-east-1a", GM_MARKET_SPOT);
    CHECK(c && has(c->reason, "spot $0.0700/h is above --max-spot-price $0.0500/h"));
    /* Every spot price above the cap: on-demand is the choice. */
    s.max_spot_price = 0.01;
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    CHECK_INT(r.viable[0].market, GM_MARKET_ON_DEMAND);
    CHECK_STR(r.viable[0].type, "t3a.xlarge");
    gm_cost_ranking_release(&r);
    gm_cost_market_release(&m);
}

static void test_rank_spot_only(void)
{
    const char *types[] = {"t3.xlarge"};
    gm_cost_market m;
    market(&m, types, 1, AZS3, 3);
    spot(&m, "t3.xlarge", "us-east-1a", 0.16); /* saves under 4 %: fine when forced */
    spot(&m, "t3.xlarge", "us-east-1c", 0.12);
    gm_cost_strategy s;
    gm_cost_strategy_init(&s, GM_TIER_DEV);
    s.mode = GM_COST_MODE_SPOT_ONLY;
    gm_cost_ranking r;
    gm_cost_ranking_init(&r);
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    CHECK_INT(r.n_viable, 2);
    expect(&r.viable[0], "t3.xlarge", "us-east-1c", GM_MARKET_SPOT, 0.12);
    expect(&r.viable[1], "t3.xlarge", "us-east-1a", GM_MARKET_SPOT, 0.16);
    for (size_t i = 0; i < r.n_rejected; i++)
        CHECK(r.rejected[i].market != GM_MARKET_ON_DEMAND);
    /* With a cap below every price nothing is left: not found, with why. */
    s.max_spot_price = 0.1;
    gm_error err = {0};
    CHECK_INT(gm_cost_rank(&m, &s, &r, &err), GM_ERR_NOT_FOUND);
    CHECK_INT(r.n_viable, 0);
    CHECK(has(err.message, "no instance type of the 1 candidate(s) is usable in us-east-1"));
    CHECK(has(err.message, "above --max-spot-price"));
    CHECK(has(err.message, "no spot price for us-east-1b"));
    gm_cost_ranking_release(&r);
    gm_cost_market_release(&m);
}

static void test_rank_on_demand_only(void)
{
    const char *types[] = {"m6i.xlarge", "t3a.xlarge"};
    gm_cost_market m;
    market(&m, types, 2, AZS3, 2);
    spot(&m, "m6i.xlarge", "us-east-1a", 0.01);
    gm_cost_strategy s;
    gm_cost_strategy_init(&s, GM_TIER_DEV);
    s.mode = GM_COST_MODE_ON_DEMAND_ONLY;
    gm_cost_ranking r;
    gm_cost_ranking_init(&r);
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    CHECK_INT(r.n_viable, 4);
    expect(&r.viable[0], "t3a.xlarge", "us-east-1a", GM_MARKET_ON_DEMAND, 0.1504);
    expect(&r.viable[3], "m6i.xlarge", "us-east-1b", GM_MARKET_ON_DEMAND, 0.192);
    CHECK(has(r.viable[0].reason, "forced by --on-demand"));
    CHECK_INT(r.n_rejected, 0);
    gm_cost_ranking_release(&r);
    gm_cost_market_release(&m);
}

static void test_rank_unknown_prices(void)
{
    /* x9.large: not in the table, no price list price. */
    const char *types[] = {"x9.large", "t3.xlarge"};
    gm_cost_market m;
    market(&m, types, 2, AZS3, 1);
    spot(&m, "x9.large", "us-east-1a", 0.02);
    spot(&m, "t3.xlarge", "us-east-1a", 0.05);
    gm_cost_strategy s;
    gm_cost_strategy_init(&s, GM_TIER_DEV);
    s.soft_needs = true; /* specs unknown: a warning, not a rejection */
    gm_cost_ranking r;
    gm_cost_ranking_init(&r);
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    CHECK_INT(r.n_viable, 2);
    expect(&r.viable[0], "t3.xlarge", "us-east-1a", GM_MARKET_SPOT, 0.05);
    const gm_cost_candidate *c = find_rejected(&r, "x9.large", "us-east-1a", GM_MARKET_SPOT);
    CHECK(c && has(c->reason, "on-demand price unknown"));
    c = find_rejected(&r, "x9.large", "us-east-1a", GM_MARKET_ON_DEMAND);
    CHECK(c && has(c->reason, "no on-demand price known"));
    /* Forced to spot, the unknown saving does not matter. */
    s.mode = GM_COST_MODE_SPOT_ONLY;
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    expect(&r.viable[0], "x9.large", "us-east-1a", GM_MARKET_SPOT, 0.02);
    CHECK(has(r.viable[0].warning, "specs unknown"));
    CHECK(has(r.viable[0].reason, "forced by --spot-only"));
    /* A price list price replaces the table's, with its source. */
    gm_cost_type *t = gm_cost_market_type(&m, "t3.xlarge");
    t->on_demand = 0.04;
    snprintf(t->on_demand_source, sizeof t->on_demand_source, "price list api 2026-11-23");
    s.mode = GM_COST_MODE_CHEAPEST;
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    expect(&r.viable[0], "t3.xlarge", "us-east-1a", GM_MARKET_ON_DEMAND, 0.04);
    CHECK_STR(r.viable[0].source, "price list api 2026-11-23");
    gm_cost_ranking_release(&r);
    gm_cost_market_release(&m);
}

static void test_rank_spot_history_unavailable(void)
{
    const char *types[] = {"t3.xlarge"};
    gm_cost_market m;
    market(&m, types, 1, AZS3, 2);
    m.spot_known = false;
    snprintf(m.spot_error, sizeof m.spot_error, "spot prices unavailable: throttled");
    gm_cost_strategy s;
    gm_cost_strategy_init(&s, GM_TIER_DEV);
    gm_cost_ranking r;
    gm_cost_ranking_init(&r);
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    CHECK_INT(r.n_viable, 2);
    CHECK_INT(r.viable[0].market, GM_MARKET_ON_DEMAND);
    const gm_cost_candidate *c = find_rejected(&r, "t3.xlarge", "us-east-1a", GM_MARKET_SPOT);
    CHECK(c && has(c->reason, "throttled"));
    gm_cost_ranking_release(&r);
    gm_cost_market_release(&m);
}

static void test_rank_tier_needs_and_offerings(void)
{
    const char *types[] = {"t3.xlarge", "g4dn.xlarge", "t3.large"};
    gm_cost_market m;
    gm_cost_market_init(&m, "us-east-1");
    for (int i = 0; i < 3; i++)
        CHECK_INT(gm_cost_market_add_type(&m, types[i], NULL), GM_OK);
    CHECK_INT(gm_cost_market_add_az(&m, "us-east-1b", NULL, NULL), GM_OK);
    /* Discovered zones join in sorted order and keep offered[] aligned. */
    CHECK_INT(gm_cost_market_set_offered(&m, "g4dn.xlarge", "us-east-1b", true, NULL), GM_OK);
    CHECK_INT(gm_cost_market_set_offered(&m, "t3.xlarge", "us-east-1a", true, NULL), GM_OK);
    CHECK_INT(gm_cost_market_set_offered(&m, "t3.large", "us-east-1a", true, NULL), GM_OK);
    CHECK_INT(m.n_azs, 2);
    CHECK_STR(m.azs[0], "us-east-1a");
    CHECK(gm_cost_market_type(&m, "g4dn.xlarge")->offered[1]);
    CHECK(!gm_cost_market_type(&m, "g4dn.xlarge")->offered[0]);
    m.spot_known = true;
    spot(&m, "g4dn.xlarge", "us-east-1b", 0.2);
    spot(&m, "t3.xlarge", "us-east-1a", 0.05);
    spot(&m, "t3.large", "us-east-1a", 0.02);

    gm_cost_strategy s;
    gm_cost_strategy_init(&s, GM_TIER_GPU);
    gm_cost_ranking r;
    gm_cost_ranking_init(&r);
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    expect(&r.viable[0], "g4dn.xlarge", "us-east-1b", GM_MARKET_SPOT, 0.2);
    CHECK_INT(r.n_viable, 2);
    const gm_cost_candidate *c = find_rejected(&r, "t3.xlarge", "", GM_MARKET_ANY);
    CHECK(c && has(c->reason, "no NVIDIA GPU"));
    c = find_rejected(&r, "g4dn.xlarge", "us-east-1a", GM_MARKET_ANY);
    CHECK(c && has(c->reason, "not offered in us-east-1a"));

    /* dev, hard needs: t3.large (2 vCPUs, 8 GiB) is out. */
    gm_cost_strategy_init(&s, GM_TIER_DEV);
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    expect(&r.viable[0], "t3.xlarge", "us-east-1a", GM_MARKET_SPOT, 0.05);
    c = find_rejected(&r, "t3.large", "", GM_MARKET_ANY);
    CHECK(c && has(c->reason, "2 vCPUs and 8 GiB are below the tier's needs (4 vCPUs, 16 GiB)"));
    /* Named by the user (soft needs): kept, with a warning, and cheapest. */
    s.soft_needs = true;
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    expect(&r.viable[0], "t3.large", "us-east-1a", GM_MARKET_SPOT, 0.02);
    CHECK(has(r.viable[0].warning, "below the tier's needs"));
    gm_cost_ranking_release(&r);
    gm_cost_market_release(&m);
}

static void test_rank_json(void)
{
    const char *types[] = {"t3.xlarge"};
    gm_cost_market m;
    market(&m, types, 1, AZS3, 2);
    spot(&m, "t3.xlarge", "us-east-1a", 0.0499);
    gm_cost_strategy s;
    gm_cost_strategy_init(&s, GM_TIER_DEV);
    gm_cost_ranking r;
    gm_cost_ranking_init(&r);
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    json_t *j = gm_cost_ranking_json(&r);
    json_t *choice = json_object_get(j, "choice");
    CHECK_STR(json_string_value(json_object_get(choice, "market")), "spot");
    CHECK_STR(json_string_value(json_object_get(choice, "az")), "us-east-1a");
    CHECK(NEAR(json_number_value(json_object_get(choice, "saving_percent")), 70.0));
    CHECK(NEAR(json_number_value(json_object_get(choice, "ec2_monthly")), 36.427));
    CHECK_INT(json_array_size(json_object_get(j, "failover")), 3);
    CHECK_INT(json_array_size(json_object_get(j, "rejected")), 1);
    json_decref(j);
    j = gm_cost_strategy_json(&s);
    CHECK_STR(json_string_value(json_object_get(j, "mode")), "cheapest");
    CHECK(NEAR(json_number_value(json_object_get(j, "min_saving_percent")), 20));
    json_decref(j);
    gm_cost_ranking_release(&r);
    gm_cost_market_release(&m);
}

static void test_default_types_and_needs(void)
{
    size_t n = 0;
    const char *const *t = gm_cost_default_types(GM_TIER_DEV, &n);
    CHECK_INT(n, 5);
    CHECK_STR(t[0], "t3.xlarge");
    t = gm_cost_default_types(GM_TIER_GPU, &n);
    CHECK_INT(n, 3);
    CHECK_STR(t[0], "g5.xlarge");
    for (size_t i = 0; i < n; i++)
        CHECK(gm_cost_table_lookup(t[i]) && gm_cost_table_lookup(t[i])->nvidia_gpus == 1);
    gm_cost_needs nd;
    gm_cost_tier_needs(GM_TIER_GPU, &nd);
    CHECK(nd.nvidia_gpu && nd.min_vcpus == 4);
    gm_cost_tier_needs(GM_TIER_DEV, &nd);
    CHECK(!nd.nvidia_gpu);
    /* Every default type meets its tier's needs in the shipped table. */
    const gm_tier tiers[] = {GM_TIER_DEV, GM_TIER_AUTOMATION, GM_TIER_GPU};
    for (int k = 0; k < 3; k++) {
        t = gm_cost_default_types(tiers[k], &n);
        gm_cost_tier_needs(tiers[k], &nd);
        for (size_t i = 0; i < n; i++) {
            const gm_instance_info *row = gm_cost_table_lookup(t[i]);
            CHECK(row && row->vcpus >= nd.min_vcpus && row->memory_mib >= nd.min_memory_mib);
        }
    }
}

/* ---- failover ----------------------------------------------------------------------- */

static void test_failover_next(void)
{
    const char *types[] = {"t3.xlarge", "g4dn.xlarge"};
    gm_cost_market m;
    market(&m, types, 2, AZS3, 2);
    spot(&m, "t3.xlarge", "us-east-1a", 0.05);
    spot(&m, "t3.xlarge", "us-east-1b", 0.06);
    spot(&m, "g4dn.xlarge", "us-east-1a", 0.07);
    gm_cost_strategy s;
    gm_cost_strategy_init(&s, GM_TIER_DEV);
    gm_cost_ranking r;
    gm_cost_ranking_init(&r);
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    /* 0 t3 a spot, 1 t3 b spot, 2 g4dn a spot, 3 t3 a od, 4 t3 b od, 5 g4dn a od, 6 g4dn b od */
    CHECK_INT(r.n_viable, 7);
    expect(&r.viable[2], "g4dn.xlarge", "us-east-1a", GM_MARKET_SPOT, 0.07);
    expect(&r.viable[3], "t3.xlarge", "us-east-1a", GM_MARKET_ON_DEMAND, 0.1664);
    CHECK_INT(gm_cost_failover_next(&r, 0, "InsufficientInstanceCapacity"), 1);
    CHECK_INT(gm_cost_failover_next(&r, 1, "SpotMaxPriceTooLow"), 2);
    /* Spot count quota: every spot candidate is skipped. */
    CHECK_INT(gm_cost_failover_next(&r, 0, "MaxSpotInstanceCountExceeded"), 3);
    /* vCPU quota of the standard class: the G-class spot offer may still work. */
    CHECK_INT(gm_cost_failover_next(&r, 0, "VcpuLimitExceeded"), 2);
    CHECK_INT(gm_cost_failover_next(&r, 3, "VcpuLimitExceeded"), 5);
    CHECK_INT(gm_cost_failover_next(&r, 5, "VcpuLimitExceeded"), 7);
    /* Not placement problems: stop. */
    CHECK_INT(gm_cost_failover_next(&r, 0, "UnauthorizedOperation"), 7);
    CHECK_INT(gm_cost_failover_next(&r, 0, "RequestLimitExceeded"), 7);
    CHECK_INT(gm_cost_failover_next(&r, 0, "InvalidParameterValue"), 7);
    CHECK_INT(gm_cost_failover_next(&r, 0, NULL), 7);
    CHECK_INT(gm_cost_failover_next(&r, 6, "InsufficientInstanceCapacity"), 7);
    CHECK_INT(gm_cost_failover_next(&r, 99, "InsufficientInstanceCapacity"), 7);
    CHECK_INT(gm_cost_launch_error_class("Unsupported"), GM_LAUNCH_ERR_ZONE_CAPACITY);
    CHECK_INT(gm_cost_launch_error_class("InstanceLimitExceeded"), GM_LAUNCH_ERR_ACCOUNT_QUOTA);
    CHECK_INT(gm_cost_launch_error_class("Throttling"), GM_LAUNCH_ERR_THROTTLING);
    CHECK_INT(gm_cost_launch_error_class("AuthFailure"), GM_LAUNCH_ERR_AUTH);
    CHECK_STR(gm_launch_error_class_name(GM_LAUNCH_ERR_ACCOUNT_QUOTA), "account quota");
    gm_cost_ranking_release(&r);
    gm_cost_market_release(&m);
}

/* What a failed scaling activity of an Auto Scaling group says (AWS's own
 * messages). */
static void test_read_activity(void)
{
    gm_cost_activity a;
    gm_cost_read_activity("Could not launch Spot Instances. InsufficientInstanceCapacity - We "
                          "currently do not have sufficient t3.large capacity in the "
                          "Availability Zone you requested (us-east-1a). Our system will be "
                          "working on provisioning additional capacity. Launching EC2 instance "
                          "failed.",
                          &a);
    CHECK_STR(a.code, "InsufficientInstanceCapacity");
    CHECK_INT(a.cls, GM_LAUNCH_ERR_ZONE_CAPACITY);
    CHECK_STR(a.type, "t3.large");
    CHECK_STR(a.az, "us-east-1a");
    CHECK(!a.every_pool);
    gm_cost_read_activity("Could not launch Spot Instances. InsufficientInstanceCapacity - There "
                          "is no Spot capacity available that matches your request. Launching "
                          "EC2 instance failed.",
                          &a);
    CHECK(a.every_pool);
    CHECK_STR(a.type, "");
    gm_cost_read_activity("Could not launch Spot Instances. MaxSpotInstanceCountExceeded - Max "
                          "spot instance count exceeded. Launching EC2 instance failed.",
                          &a);
    CHECK_INT(a.cls, GM_LAUNCH_ERR_ACCOUNT_QUOTA);
    CHECK_STR(a.code, "MaxSpotInstanceCountExceeded");
    /* The text alone, without a code. */
    gm_cost_read_activity("You have requested more vCPU capacity than your current vCPU limit "
                          "of 32 allows for the instance bucket that the specified instance "
                          "type belongs to.",
                          &a);
    CHECK_STR(a.code, "VcpuLimitExceeded");
    gm_cost_read_activity("We currently do not have sufficient m5.large capacity in the "
                          "Availability Zone you requested (eu-west-1b).",
                          &a);
    CHECK_STR(a.code, "InsufficientInstanceCapacity");
    CHECK_STR(a.type, "m5.large");
    CHECK_STR(a.az, "eu-west-1b");
    gm_cost_read_activity("Could not launch Spot Instances. UnfulfillableCapacity - Unable to "
                          "fulfill capacity due to your request configuration.",
                          &a);
    CHECK(a.every_pool);
    gm_cost_read_activity("Could not launch Spot Instances. SpotMaxPriceTooLow - Your Spot "
                          "request price of 0.01 is lower than the minimum required Spot "
                          "request fulfillment price of 0.0288.",
                          &a);
    CHECK_INT(a.cls, GM_LAUNCH_ERR_PRICE);
    /* Not placement problems; a code inside another word is not that code. */
    gm_cost_read_activity("The image id '[ami-0123]' does not exist. Launching EC2 instance "
                          "failed.",
                          &a);
    CHECK_STR(a.code, "");
    CHECK_INT(a.cls, GM_LAUNCH_ERR_OTHER);
    gm_cost_read_activity("NotUnsupportedAtAll", &a);
    CHECK_STR(a.code, "");
    gm_cost_read_activity(NULL, &a);
    CHECK_INT(a.cls, GM_LAUNCH_ERR_OTHER);
    /* A pool name that is not a plain token is not taken. */
    gm_cost_read_activity("We currently do not have sufficient t3 large; rm capacity in the "
                          "Availability Zone you requested (us-east-1a)",
                          &a);
    CHECK_STR(a.type, "");
}

/* ---- estimates and budgets ------------------------------------------------------------ */

static double num(const json_t *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *cur = o;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        cur = json_object_get(cur, k);
    return json_number_value(cur);
}

static gm_cost_candidate candidate(const char *type, gm_market mk, double hourly, double od)
{
    gm_cost_candidate c;
    memset(&c, 0, sizeof c);
    snprintf(c.type, sizeof c.type, "%s", type);
    snprintf(c.az, sizeof c.az, "us-east-1a");
    c.market = mk;
    c.hourly = hourly;
    c.on_demand = od;
    snprintf(c.source, sizeof c.source, "%s",
             mk == GM_MARKET_SPOT ? "spot price history T" : GM_COST_TABLE_SOURCE);
    return c;
}

static void test_estimate_maths(void)
{
    gm_cost_assumptions a;
    gm_cost_default_assumptions(&a);
    /* Fixed: 60 GB x 0.08 + 10 GB x 0.30 + 730 h x 0.005 + 10 GB x 0.09 = 12.35 */
    CHECK(NEAR(gm_cost_fixed_monthly(&a, false), 12.35));
    gm_cost_candidate od = candidate("t3.xlarge", GM_MARKET_ON_DEMAND, 0.1664, 0.1664);
    json_t *e = gm_cost_estimate_candidate(&od, false, &a);
    CHECK(NEAR(num(e, "monthly"), 133.822)); /* 0.1664 x 730 = 121.472 */
    CHECK(NEAR(num(e, "hourly"), 0.183318));
    CHECK(NEAR(num(e, "daily"), 4.3996));
    CHECK(NEAR(num(e, "breakdown.ec2.monthly"), 121.472));
    CHECK(NEAR(num(e, "breakdown.ebs_root.monthly"), 4.8));
    CHECK(NEAR(num(e, "breakdown.efs_storage.monthly"), 3.0));
    CHECK(NEAR(num(e, "breakdown.public_ipv4.monthly"), 3.65));
    CHECK(NEAR(num(e, "breakdown.data_transfer_out.monthly"), 0.9));
    CHECK(json_object_get(json_object_get(e, "breakdown"), "load_balancer") == NULL);
    CHECK(NEAR(num(e, "saving_vs_on_demand.monthly"), 0));
    CHECK_STR(json_string_value(json_object_get(e, "market")), "on-demand");
    CHECK(has(json_string_value(json_object_get(
                  json_object_get(json_object_get(e, "breakdown"), "efs_storage"), "basis")),
              "--assume-efs-gb"));
    json_decref(e);

    /* Spot at 0.05, automation tier (ALB + its two addresses), bigger assumptions. */
    a.efs_gb = 100;
    a.transfer_gb = 50;
    gm_cost_candidate sp = candidate("t3.xlarge", GM_MARKET_SPOT, 0.05, 0.1664);
    e = gm_cost_estimate_candidate(&sp, true, &a);
    /* 36.5 + 4.8 + 30 + 3 x 3.65 + 4.5 + 0.0305 x 730 */
    double expected = 36.5 + 4.8 + 30 + 10.95 + 4.5 + 22.265;
    CHECK(NEAR(num(e, "monthly"), expected));
    CHECK(NEAR(num(e, "breakdown.load_balancer.monthly"), 22.265));
    CHECK(NEAR(num(e, "saving_vs_on_demand.monthly"), 121.472 - 36.5));
    CHECK(NEAR(num(e, "saving_vs_on_demand_monthly"), 121.472 - 36.5));
    CHECK(NEAR(num(e, "assumptions.efs_gb"), 100));
    CHECK(has(json_string_value(json_object_get(e, "source")), "ec2: spot price history T"));
    json_decref(e);

    /* Unknown EC2 price: left out, with a note. */
    gm_cost_candidate unk = candidate("x9.large", GM_MARKET_ON_DEMAND, -1, -1);
    e = gm_cost_estimate_candidate(&unk, false, NULL);
    CHECK(NEAR(num(e, "monthly"), 12.35));
    CHECK(has(json_string_value(json_object_get(e, "note")), "no price known for 'x9.large'"));
    json_decref(e);

    /* The shipped-table shortcut keeps the keys older records and callers use. */
    e = gm_cost_estimate("t3.xlarge", true, false, NULL);
    CHECK(NEAR(num(e, "breakdown.ec2.monthly"), 0.1664 * 0.35 * 730));
    CHECK(json_is_number(json_object_get(e, "hourly")) &&
          json_is_number(json_object_get(e, "daily")));
    CHECK(has(json_string_value(json_object_get(e, "source")), "assumed 35%"));
    json_decref(e);
    CHECK(NEAR(gm_cost_on_demand_hourly("g5.xlarge"), 1.006));
    CHECK(gm_cost_on_demand_hourly("nope.large") < 0);
}

static void test_budget(void)
{
    const char *types[] = {"t3.xlarge", "m6i.xlarge"};
    gm_cost_market m;
    market(&m, types, 2, AZS3, 1);
    spot(&m, "t3.xlarge", "us-east-1a", 0.05);
    gm_cost_strategy s;
    gm_cost_strategy_init(&s, GM_TIER_DEV);
    gm_cost_ranking r;
    gm_cost_ranking_init(&r);
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    CHECK_INT(r.n_viable, 3); /* spot t3 48.85, od t3 133.822, od m6i 152.51 */
    size_t rejected_before = r.n_rejected;
    CHECK_INT(gm_cost_budget_filter(&r, 140, NULL, false), 1);
    CHECK_INT(r.n_viable, 2);
    CHECK_INT(r.viable[1].rank, 2);
    CHECK_INT(r.n_rejected, rejected_before + 1);
    CHECK(has(r.rejected[r.n_rejected - 1].reason, "over the budget: $152.51/month"));

    gm_cost_candidate od = candidate("t3.xlarge", GM_MARKET_ON_DEMAND, 0.1664, 0.1664);
    json_t *e = gm_cost_estimate_candidate(&od, false, NULL);
    gm_error err = {0};
    CHECK_INT(gm_cost_budget_check(e, 200, &err), GM_OK);
    CHECK_INT(gm_cost_budget_check(e, 133.822, &err), GM_OK); /* inclusive */
    CHECK_INT(gm_cost_budget_check(e, 100, &err), GM_ERR_INVALID);
    CHECK(has(err.message, "estimated cost $133.82/month (EC2 on-demand t3.xlarge $121.47, "
                           "other items $12.35) is over the budget of $100.00/month"));
    CHECK(has(err.message, "--force"));
    json_decref(e);
    gm_error_clear(&err);
    json_t *none = json_object();
    CHECK_INT(gm_cost_budget_check(none, 1, &err), GM_ERR_INVALID);
    json_decref(none);
    gm_cost_ranking_release(&r);
    gm_cost_market_release(&m);
}

static void test_parse_amounts(void)
{
    double v = 0;
    gm_error err = {0};
    CHECK_INT(gm_cost_parse_usd("25", "--budget", &v, &err), GM_OK);
    CHECK(NEAR(v, 25));
    CHECK_INT(gm_cost_parse_usd("$0.05", "--max-spot-price", &v, &err), GM_OK);
    CHECK(NEAR(v, 0.05));
    const char *bad[] = {"", "0", "-1", "abc", "1e3", "1.2.3", ".", "nan", "inf", "12,5", NULL};
    for (int i = 0; bad[i]; i++) {
        gm_error_clear(&err);
        CHECK_INT(gm_cost_parse_usd(bad[i], "--budget", &v, &err), GM_ERR_INVALID);
    }
    CHECK(has(err.message, "invalid --budget '12,5'"));
    CHECK_INT(gm_cost_parse_amount("0", "--assume-efs-gb", 100, &v, NULL), GM_OK);
    CHECK_INT(gm_cost_parse_amount("100.5", "--min-saving", 99, &v, NULL), GM_ERR_INVALID);
}

static void test_cost_so_far(void)
{
    json_t *e = json_pack("{s:f}", "hourly", 0.2);
    int64_t start = 1700000000000LL;
    json_t *u = gm_cost_so_far(e, start, start + 9000000, true); /* 2.5 h */
    CHECK(NEAR(num(u, "hours"), 2.5));
    CHECK(NEAR(num(u, "cost_so_far"), 0.5));
    CHECK_STR(json_string_value(json_object_get(u, "until")), "now");
    CHECK_STR(json_string_value(json_object_get(u, "started_at")), "2023-11-14T22:13:20Z");
    json_decref(u);
    u = gm_cost_so_far(e, start, start + 3600000, false);
    CHECK_STR(json_string_value(json_object_get(u, "until")), "2023-11-14T23:13:20Z");
    CHECK(json_is_false(json_object_get(u, "running")));
    json_decref(u);
    u = gm_cost_so_far(e, start, start - 5, true); /* clock skew: zero, not negative */
    CHECK(NEAR(num(u, "cost_so_far"), 0));
    json_decref(u);
    json_decref(e);
    CHECK(gm_cost_so_far(NULL, 0, 1, true) == NULL);
}

/* ---- spot price history parser ----------------------------------------------------------- */

#define SPH_HEAD                                                                            \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                                          \
    "<DescribeSpotPriceHistoryResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">" \
    "<requestId>r-1</requestId><spotPriceHistorySet>"
#define SPH_ITEM(type, az, pd, price, ts)                                 \
    "<item><instanceType>" type "</instanceType><productDescription>" pd  \
    "</productDescription><spotPrice>" price "</spotPrice><timestamp>" ts \
    "</timestamp><availabilityZone>" az "</availabilityZone></item>"
#define SPH_TAIL(next)                                      \
    "</spotPriceHistorySet><nextToken>" next "</nextToken>" \
    "</DescribeSpotPriceHistoryResponse>"

static const char *SPH_PAGE1 = SPH_HEAD SPH_ITEM("t3.xlarge", "us-east-1a", "Linux/UNIX",
                                                 "0.050100", "2026-11-23T09:00:00.000Z")
    SPH_ITEM("t3.xlarge", "us-east-1a", "Linux/UNIX", "0.049000", "2026-11-22T09:00:00.000Z")
        SPH_ITEM("t3.xlarge", "us-east-1a", "Windows", "0.120000", "2026-11-23T09:30:00.000Z")
            SPH_ITEM("t3.xlarge", "us-east-1b", "Linux/UNIX (Amazon VPC)", "0.0523",
                     "2026-11-23T08:00:00Z") SPH_TAIL("page-2");

static const char *SPH_PAGE2 = SPH_HEAD SPH_ITEM("m6i.xlarge", "us-east-1a", "Linux/UNIX", "0.0612",
                                                 "2026-11-23T07:00:00.000Z")
    /* Older than what page 1 said: ignored. */
    SPH_ITEM("t3.xlarge", "us-east-1a", "Linux/UNIX", "0.0400", "2026-11-20T09:00:00.000Z")
        SPH_TAIL("");

static void test_spot_history_parse(void)
{
    gm_spot_prices p;
    gm_spot_prices_init(&p);
    char *next = NULL;
    gm_error err = {0};
    CHECK_INT(gm_cost_parse_spot_history(SPH_PAGE1, strlen(SPH_PAGE1), &p, &next, &err), GM_OK);
    CHECK_STR(next, "page-2");
    free(next);
    CHECK_INT(p.n, 2);
    CHECK_INT(p.skipped, 1);
    const gm_spot_price *sp = gm_spot_prices_get(&p, "t3.xlarge", "us-east-1a");
    CHECK(sp && NEAR(sp->price, 0.0501)); /* the latest of the two */
    CHECK(sp && sp->timestamp == gm_time_parse_iso8601("2026-11-23T09:00:00Z"));
    CHECK_INT(gm_cost_parse_spot_history(SPH_PAGE2, strlen(SPH_PAGE2), &p, &next, &err), GM_OK);
    CHECK(next == NULL);
    CHECK_INT(p.n, 3);
    sp = gm_spot_prices_get(&p, "t3.xlarge", "us-east-1a");
    CHECK(sp && NEAR(sp->price, 0.0501));
    CHECK(gm_spot_prices_get(&p, "m6i.xlarge", "us-east-1b") == NULL);
    gm_spot_prices_release(&p);
    gm_spot_prices_release(&p); /* twice is fine */

    /* An empty set is a valid answer (no prices for those types). */
    const char *empty = SPH_HEAD "</spotPriceHistorySet></DescribeSpotPriceHistoryResponse>";
    CHECK_INT(gm_cost_parse_spot_history(empty, strlen(empty), &p, NULL, &err), GM_OK);
    CHECK_INT(p.n, 0);
    gm_spot_prices_release(&p);
}

static void test_spot_history_malformed(void)
{
    const char *cases[][2] = {
        {"not xml at all", "xml"},
        {"<DescribeSpotPriceHistoryResponse><requestId>x</requestId>"
         "</DescribeSpotPriceHistoryResponse>",
         "no spotPriceHistorySet"},
        {SPH_HEAD SPH_ITEM("t3.xlarge", "us-east-1a", "Linux/UNIX", "abc", "2026-11-23T09:00:00Z")
             SPH_TAIL(""),
         "invalid spotPrice 'abc'"},
        {SPH_HEAD SPH_ITEM("t3.xlarge", "us-east-1a", "Linux/UNIX", "-0.5", "2026-11-23T09:00:00Z")
             SPH_TAIL(""),
         "invalid spotPrice '-0.5'"},
        {SPH_HEAD SPH_ITEM("t3.xlarge", "us-east-1a", "Linux/UNIX", "1e9", "2026-11-23T09:00:00Z")
             SPH_TAIL(""),
         "invalid spotPrice"},
        {SPH_HEAD SPH_ITEM("t3.xlarge", "us-east-1a", "Linux/UNIX", "", "2026-11-23T09:00:00Z")
             SPH_TAIL(""),
         "invalid spotPrice"},
        {SPH_HEAD SPH_ITEM("", "us-east-1a", "Linux/UNIX", "0.1", "2026-11-23T09:00:00Z")
             SPH_TAIL(""),
         "item 1 has no valid instanceType"},
        {SPH_HEAD
         "<item><instanceType>t3.xlarge</instanceType><spotPrice>0.1</spotPrice></item>" SPH_TAIL(
             ""),
         "availabilityZone"},
        {SPH_HEAD SPH_ITEM("t3.xlarge", "us-east-1a", "Linux/UNIX", "0.1", "2026") SPH_TAIL(""),
         NULL}, /* a bad timestamp is only "unknown" */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        gm_spot_prices p;
        gm_spot_prices_init(&p);
        gm_error err = {0};
        char *next = (char *)"untouched";
        gm_status st =
            gm_cost_parse_spot_history(cases[i][0], strlen(cases[i][0]), &p, &next, &err);
        if (cases[i][1]) {
            CHECK_INT(st, GM_ERR_PARSE);
            CHECK(has(err.message, cases[i][1]));
            CHECK(next == NULL);
        } else {
            CHECK_INT(st, GM_OK);
            CHECK(p.n == 1 && p.items[0].timestamp == 0);
            free(next);
        }
        gm_spot_prices_release(&p);
    }
    /* Put refuses nonsense directly too. */
    gm_spot_prices p;
    gm_spot_prices_init(&p);
    CHECK_INT(gm_spot_prices_put(&p, "", "a", 1, 0, NULL), GM_ERR_INVALID);
    CHECK_INT(gm_spot_prices_put(&p, "t3.xlarge", "us-east-1a", -1, 0, NULL), GM_ERR_INVALID);
    CHECK_INT(gm_spot_prices_put(&p, "t3.xlarge", "us-east-1a", 0.0 / 0.0, 0, NULL),
              GM_ERR_INVALID);
    gm_spot_prices_release(&p);
}

/* ---- through the request core ---------------------------------------------------------- */

static void clean_env(void)
{
    const char *vars[] = {
        "AWS_ENDPOINT_URL",  "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_PRICING",
        "AWS_REGION",        "AWS_DEFAULT_REGION",   "AWS_PROFILE",
        "AWS_SESSION_TOKEN", "AWS_MAX_ATTEMPTS",     "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret-test-key", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/geusemaker-test/config", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/geusemaker-test/credentials", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static void test_fetch_spot_prices_paginates(void)
{
    clean_env();
    mock_transport *m = mock_new();
    mock_push(m, (mock_reply){.status = 200, .body = SPH_PAGE1});
    mock_push(m, (mock_reply){.status = 200, .body = SPH_PAGE2});
    gm_aws_client *c = mock_client(m, "us-east-1", 1);
    gm_spot_prices p;
    gm_spot_prices_init(&p);
    const char *types[] = {"t3.xlarge", "m6i.xlarge"};
    const char *azs[] = {"us-east-1a", "us-east-1b"};
    gm_error err = {0};
    CHECK_INT(gm_cost_fetch_spot_prices(c, types, 2, azs, 2, &p, &err), GM_OK);
    CHECK_INT(m->n_requests, 2);
    CHECK_INT(p.n, 3);
    const char *b0 = m->bodies[0];
    CHECK(has(b0, "Action=DescribeSpotPriceHistory&Version=2016-11-15"));
    CHECK(has(b0, "ProductDescription.1=Linux%2FUNIX"));
    CHECK(has(b0, "&StartTime=20"));
    CHECK(has(b0, "InstanceType.1=t3.xlarge&InstanceType.2=m6i.xlarge"));
    CHECK(has(b0, "Filter.1.Name=availability-zone&Filter.1.Value.1=us-east-1a"
                  "&Filter.1.Value.2=us-east-1b"));
    CHECK(!strstr(b0, "NextToken"));
    CHECK(has(m->bodies[1], "&NextToken=page-2"));
    gm_spot_prices_release(&p);
    gm_aws_client_free(c);

    /* A service repeating its token is stopped, not followed forever. */
    m = mock_new();
    mock_push(m, (mock_reply){.status = 200, .body = SPH_PAGE1});
    mock_push(m, (mock_reply){.status = 200, .body = SPH_PAGE1});
    c = mock_client(m, "us-east-1", 1);
    gm_spot_prices_init(&p);
    gm_error_clear(&err);
    CHECK_INT(gm_cost_fetch_spot_prices(c, types, 1, NULL, 0, &p, &err), GM_ERR_PARSE);
    CHECK(has(err.message, "repeated its pagination token"));
    CHECK(!strstr(m->bodies[0], "availability-zone"));
    gm_spot_prices_release(&p);
    gm_aws_client_free(c);

    /* AWS errors come through with their code. */
    m = mock_new();
    mock_push(
        m,
        (mock_reply){
            .status = 400,
            .body =
                "<Response><Errors><Error><Code>InvalidParameterValue</Code><Message>bad</Message>"
                "</Error></Errors><RequestID>rid</RequestID></Response>"});
    c = mock_client(m, "us-east-1", 1);
    gm_spot_prices_init(&p);
    gm_error_clear(&err);
    CHECK_INT(gm_cost_fetch_spot_prices(c, types, 1, NULL, 0, &p, &err), GM_ERR_AWS);
    CHECK_STR(err.aws_code, "InvalidParameterValue");
    gm_spot_prices_release(&p);
    gm_aws_client_free(c);
}

/* One product of the aws_v1 price list, as the JSON string GetProducts wraps. */
static json_t *product(const char *type, const char *os, const char *cap, const char *usd)
{
    json_t *p = json_pack(
        "{s:{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s}}, s:{s:{s:{s:{s:{s:s, s:{s:s}}}}}}}", "product",
        "sku", "SKU1", "attributes", "instanceType", type, "operatingSystem", os, "tenancy",
        "Shared", "preInstalledSw", "NA", "capacitystatus", cap, "regionCode", "us-east-1", "terms",
        "OnDemand", "SKU1.JRTCKXETXF", "priceDimensions", "SKU1.JRTCKXETXF.6YS6EN2CT7", "unit",
        "Hrs", "pricePerUnit", "USD", usd);
    char *s = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    json_t *str = json_string(s);
    free(s);
    return str;
}

static void test_price_list_parse(void)
{
    json_t *resp =
        json_pack("{s:s, s:[o, o, o]}", "FormatVersion", "aws_v1", "PriceList",
                  product("t3.xlarge", "Windows", "Used", "0.3000000000"),
                  product("t3.xlarge", "Linux", "UnusedCapacityReservation", "0.1664000000"),
                  product("t3.xlarge", "Linux", "Used", "0.1664000000"));
    double v = 0;
    gm_error err = {0};
    CHECK_INT(gm_cost_parse_price_list(resp, "t3.xlarge", &v, &err), GM_OK);
    CHECK(NEAR(v, 0.1664));
    CHECK_INT(gm_cost_parse_price_list(resp, "m5.xlarge", &v, &err), GM_ERR_NOT_FOUND);
    json_decref(resp);
    /* A zero price (the reservation rows) never counts. */
    resp = json_pack("{s:[o]}", "PriceList", product("t3.xlarge", "Linux", "Used", "0.0000000000"));
    CHECK_INT(gm_cost_parse_price_list(resp, "t3.xlarge", &v, NULL), GM_ERR_NOT_FOUND);
    json_decref(resp);
    resp = json_pack("{s:[s]}", "PriceList", "{not json");
    gm_error_clear(&err);
    CHECK_INT(gm_cost_parse_price_list(resp, "t3.xlarge", &v, &err), GM_ERR_PARSE);
    CHECK(has(err.message, "entry 1"));
    json_decref(resp);
    resp = json_pack("{s:s}", "PriceList", "nope");
    CHECK_INT(gm_cost_parse_price_list(resp, "t3.xlarge", &v, NULL), GM_ERR_PARSE);
    json_decref(resp);
}

static char *dumps(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static void test_fetch_on_demand(void)
{
    clean_env();
    char *page1 = dumps(json_pack("{s:[], s:s}", "PriceList", "NextToken", "tok-2"));
    char *page2 = dumps(
        json_pack("{s:[o]}", "PriceList", product("m6i.xlarge", "Linux", "Used", "0.1920000000")));
    mock_transport *m = mock_new();
    mock_push(m, (mock_reply){.status = 200, .body = page1});
    mock_push(m, (mock_reply){.status = 200, .body = page2});
    gm_aws_client *c = mock_client(m, "us-east-1", 1);
    double v = 0;
    gm_error err = {0};
    CHECK_INT(gm_cost_fetch_on_demand(c, "eu-west-1", "m6i.xlarge", &v, &err), GM_OK);
    CHECK(NEAR(v, 0.192));
    CHECK_INT(m->n_requests, 2);
    CHECK_STR(m->urls[0], "https://api.pricing.us-east-1.amazonaws.com/");
    CHECK_STR(gm_headers_get(&m->headers[0], "X-Amz-Target"), "AWSPriceListService.GetProducts");
    const char *auth = gm_headers_get(&m->headers[0], "Authorization");
    CHECK(auth && strstr(auth, "/us-east-1/pricing/aws4_request"));
    json_t *body = json_loads(m->bodies[0], 0, NULL);
    CHECK_STR(json_string_value(json_object_get(body, "ServiceCode")), "AmazonEC2");
    CHECK(has(m->bodies[0], "\"regionCode\""));
    CHECK(has(m->bodies[0], "\"eu-west-1\""));
    CHECK(json_object_get(body, "NextToken") == NULL);
    json_decref(body);
    CHECK(has(m->bodies[1], "\"NextToken\":\"tok-2\""));
    gm_aws_client_free(c);
    free(page1);
    free(page2);
}

static const char *OFFERINGS_XML =
    "<DescribeInstanceTypeOfferingsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
    "<instanceTypeOfferingSet>"
    "<item><instanceType>t3.xlarge</instanceType><locationType>availability-zone</locationType>"
    "<location>us-east-1b</location></item>"
    "<item><instanceType>t3.xlarge</instanceType><locationType>availability-zone</locationType>"
    "<location>us-east-1a</location></item>"
    "<item><instanceType>m6i.xlarge</instanceType><locationType>availability-zone</locationType>"
    "<location>us-east-1b</location></item>"
    "</instanceTypeOfferingSet></DescribeInstanceTypeOfferingsResponse>";

static const char *TYPES_XML =
    "<DescribeInstanceTypesResponse><instanceTypeSet>"
    "<item><instanceType>t3.xlarge</instanceType><vCpuInfo><defaultVCpus>4</defaultVCpus>"
    "</vCpuInfo><memoryInfo><sizeInMiB>16384</sizeInMiB></memoryInfo></item>"
    "<item><instanceType>m6i.xlarge</instanceType><vCpuInfo><defaultVCpus>4</defaultVCpus>"
    "</vCpuInfo><memoryInfo><sizeInMiB>16384</sizeInMiB></memoryInfo>"
    "<gpuInfo><gpus><item><count>2</count><manufacturer>NVIDIA</manufacturer></item>"
    "<item><count>1</count><manufacturer>AMD</manufacturer></item></gpus></gpuInfo></item>"
    "</instanceTypeSet></DescribeInstanceTypesResponse>";

static void test_gather(void)
{
    clean_env();
    const char *spot_xml =
        SPH_HEAD SPH_ITEM("t3.xlarge", "us-east-1a", "Linux/UNIX", "0.05", "2026-11-23T09:00:00Z")
            SPH_ITEM("m6i.xlarge", "us-east-1b", "Linux/UNIX", "0.07", "2026-11-23T09:00:00Z")
                SPH_TAIL("");
    mock_transport *ec2 = mock_new();
    mock_push(ec2, (mock_reply){.status = 200, .body = OFFERINGS_XML});
    mock_push(ec2, (mock_reply){.status = 200, .body = TYPES_XML});
    mock_push(ec2, (mock_reply){.status = 200, .body = spot_xml});
    mock_transport *pm = mock_new();
    mock_push(pm, (mock_reply){.status = 400,
                               .headers = {"x-amzn-RequestId: p-1"},
                               .body = "{\"__type\":\"AccessDeniedException\","
                                       "\"message\":\"not allowed\"}"});
    gm_aws_client *aws = mock_client(ec2, "us-east-1", 1);
    gm_aws_client *pricing = mock_client(pm, "us-east-1", 1);
    gm_cost_market m;
    gm_cost_market_init(&m, "us-east-1");
    CHECK_INT(gm_cost_market_add_type(&m, "t3.xlarge", NULL), GM_OK);
    CHECK_INT(gm_cost_market_add_type(&m, "m6i.xlarge", NULL), GM_OK);
    CHECK_INT(gm_cost_market_add_type(&m, "t3.xlarge", NULL), GM_OK); /* duplicate: ignored */
    CHECK_INT(gm_cost_market_add_type(&m, "NOT A TYPE", NULL), GM_ERR_INVALID);
    CHECK_INT(m.n_types, 2);
    gm_cost_gather_options o = {.aws = aws, .pricing = pricing, .sequential = true};
    gm_error err = {0};
    CHECK_INT(gm_cost_market_gather(&o, &m, &err), GM_OK);
    CHECK_INT(ec2->n_requests, 3);
    CHECK(has(ec2->bodies[0], "Action=DescribeInstanceTypeOfferings"));
    CHECK(has(ec2->bodies[0], "LocationType=availability-zone"));
    CHECK(has(ec2->bodies[1], "Action=DescribeInstanceTypes"));
    CHECK(has(ec2->bodies[2], "Action=DescribeSpotPriceHistory"));
    CHECK_INT(pm->n_requests, 1); /* after the first failure the table is used */
    CHECK_INT(m.n_azs, 2);
    CHECK_STR(m.azs[0], "us-east-1a");
    gm_cost_type *t3 = gm_cost_market_type(&m, "t3.xlarge"),
                 *m6 = gm_cost_market_type(&m, "m6i.xlarge");
    CHECK(t3->offered[0] && t3->offered[1]);
    CHECK(!m6->offered[0] && m6->offered[1]);
    CHECK_INT(m6->nvidia_gpus, 2);
    CHECK_STR(m6->specs_source, "describe instance types");
    CHECK(m.spot_known && has(m.spot_source, "spot price history 20"));
    CHECK(NEAR(t3->on_demand, 0.1664));
    CHECK(has(t3->on_demand_source, "shipped table 2025-06"));
    CHECK_INT(m.n_notes, 1);
    CHECK(has(m.notes[0], "on-demand prices from the shipped table"));
    CHECK(has(m.notes[0], "not allowed"));

    gm_cost_strategy s;
    gm_cost_strategy_init(&s, GM_TIER_DEV);
    gm_cost_ranking r;
    gm_cost_ranking_init(&r);
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    expect(&r.viable[0], "t3.xlarge", "us-east-1a", GM_MARKET_SPOT, 0.05);
    expect(&r.viable[1], "m6i.xlarge", "us-east-1b", GM_MARKET_SPOT, 0.07);
    CHECK(find_rejected(&r, "m6i.xlarge", "us-east-1a", GM_MARKET_ANY) != NULL);
    gm_cost_ranking_release(&r);
    gm_cost_market_release(&m);
    gm_aws_client_free(aws);
    gm_aws_client_free(pricing);

    /* The engine's zones: only those are considered; a failing spot history
     * leaves spot unknown with the reason; a failing offerings call fails. */
    ec2 = mock_new();
    mock_push(ec2, (mock_reply){.status = 200, .body = OFFERINGS_XML});
    mock_push(ec2, (mock_reply){.status = 200, .body = TYPES_XML});
    mock_push(ec2, (mock_reply){
                       .status = 400,
                       .body = "<Response><Errors><Error><Code>UnauthorizedOperation</"
                               "Code><Message>no spot for you"
                               "</Message></Error></Errors><RequestID>rid</RequestID></Response>"});
    aws = mock_client(ec2, "us-east-1", 1);
    gm_cost_market_init(&m, "us-east-1");
    CHECK_INT(gm_cost_market_add_type(&m, "t3.xlarge", NULL), GM_OK);
    const char *zones[] = {"us-east-1b", "us-east-1c"};
    o = (gm_cost_gather_options){.aws = aws, .azs = zones, .n_azs = 2, .sequential = true};
    CHECK_INT(gm_cost_market_gather(&o, &m, &err), GM_OK);
    CHECK(has(ec2->bodies[0], "Filter.2.Name=location&Filter.2.Value.1=us-east-1b"));
    CHECK_INT(m.n_azs, 2); /* us-east-1a was offered but not asked for */
    CHECK_STR(m.azs[0], "us-east-1b");
    CHECK(!m.spot_known && has(m.spot_error, "no spot for you"));
    gm_cost_ranking_init(&r);
    CHECK_INT(gm_cost_rank(&m, &s, &r, NULL), GM_OK);
    CHECK_INT(r.n_viable, 1);
    expect(&r.viable[0], "t3.xlarge", "us-east-1b", GM_MARKET_ON_DEMAND, 0.1664);
    gm_cost_ranking_release(&r);
    gm_cost_market_release(&m);
    gm_aws_client_free(aws);

    ec2 = mock_new();
    mock_push(ec2, (mock_reply){.status = 200, .body = "<Nope/>"});
    aws = mock_client(ec2, "us-east-1", 1);
    gm_cost_market_init(&m, "us-east-1");
    CHECK_INT(gm_cost_market_add_type(&m, "t3.xlarge", NULL), GM_OK);
    o = (gm_cost_gather_options){.aws = aws, .sequential = true};
    gm_error_clear(&err);
    CHECK_INT(gm_cost_market_gather(&o, &m, &err), GM_ERR_PARSE);
    CHECK(has(err.message, "cannot list the zones offering the candidate instance types"));
    gm_cost_market_release(&m);
    gm_aws_client_free(aws);
}

int main(void)
{
    GM_RUN(test_rank_cheapest_spot_over_types_and_zones);
    GM_RUN(test_rank_ties_follow_type_order_then_zone);
    GM_RUN(test_rank_saving_threshold);
    GM_RUN(test_rank_max_spot_price_cap);
    GM_RUN(test_rank_spot_only);
    GM_RUN(test_rank_on_demand_only);
    GM_RUN(test_rank_unknown_prices);
    GM_RUN(test_rank_spot_history_unavailable);
    GM_RUN(test_rank_tier_needs_and_offerings);
    GM_RUN(test_rank_json);
    GM_RUN(test_default_types_and_needs);
    GM_RUN(test_failover_next);
    GM_RUN(test_read_activity);
    GM_RUN(test_estimate_maths);
    GM_RUN(test_budget);
    GM_RUN(test_parse_amounts);
    GM_RUN(test_cost_so_far);
    GM_RUN(test_spot_history_parse);
    GM_RUN(test_spot_history_malformed);
    GM_RUN(test_fetch_spot_prices_paginates);
    GM_RUN(test_price_list_parse);
    GM_RUN(test_fetch_on_demand);
    GM_RUN(test_gather);
    GM_TEST_END();
}
