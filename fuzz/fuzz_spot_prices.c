/* Fuzzes the DescribeSpotPriceHistory parser and the price set it fills:
 * whatever the input, every kept price is a finite non-negative number under
 * a type and zone name that fit, (type, zone) pairs are unique, and the
 * ranking over them stays within its bounds. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cost/market.h"
#include "cost/prices.h"
#include "cost/rank.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gm_spot_prices p;
    gm_spot_prices_init(&p);
    char *next = NULL;
    gm_error err = {0};
    gm_status st = gm_cost_parse_spot_history((const char *)data, size, &p, &next, &err);
    if (st != GM_OK && next)
        abort(); /* no token on failure */
    if (next && !*next)
        abort();
    free(next);
    for (size_t i = 0; i < p.n; i++) {
        const gm_spot_price *s = &p.items[i];
        if (!isfinite(s->price) || s->price < 0 || !*s->type || !*s->az ||
            strlen(s->type) >= GM_COST_TYPE_MAX || strlen(s->az) >= GM_COST_AZ_MAX)
            abort();
        if (gm_spot_prices_get(&p, s->type, s->az) != s)
            abort(); /* duplicates */
    }
    /* Rank whatever came out: the first few types and zones as a market. */
    gm_cost_market m;
    gm_cost_market_init(&m, "us-east-1");
    for (size_t i = 0; i < p.n && i < 8; i++) {
        gm_ignore(gm_cost_market_add_type(&m, p.items[i].type, NULL));
        gm_ignore(gm_cost_market_add_az(&m, p.items[i].az, NULL, NULL));
    }
    m.spot_known = true;
    for (size_t i = 0; i < p.n; i++)
        gm_ignore(gm_spot_prices_put(&m.spot, p.items[i].type, p.items[i].az, p.items[i].price,
                                     p.items[i].timestamp, NULL));
    gm_cost_strategy s;
    gm_cost_strategy_init(&s, GM_TIER_DEV);
    s.soft_needs = true;
    gm_cost_ranking r;
    gm_cost_ranking_init(&r);
    gm_ignore(gm_cost_rank(&m, &s, &r, NULL));
    if (r.n_viable + r.n_rejected > m.n_types * (2 * m.n_azs + 1))
        abort();
    for (size_t i = 1; i < r.n_viable; i++)
        if (r.viable[i].hourly + 1e-9 < r.viable[i - 1].hourly)
            abort(); /* not in price order */
    gm_cost_ranking_release(&r);
    gm_cost_market_release(&m);
    gm_spot_prices_release(&p);
    return 0;
}
