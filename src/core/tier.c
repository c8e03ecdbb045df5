#include "core/tier.h"

#include <string.h>

static const char *const tier_names[GM_TIER_COUNT] = {"dev", "automation", "gpu"};

bool gm_tier_parse(const char *s, gm_tier *out)
{
    for (int i = 0; s && i < GM_TIER_COUNT; i++)
        if (strcmp(s, tier_names[i]) == 0) {
            *out = (gm_tier)i;
            return true;
        }
    return false;
}

const char *gm_tier_name(gm_tier t)
{
    return (unsigned)t < GM_TIER_COUNT ? tier_names[t] : "unknown";
}

bool gm_tier_has_alb(gm_tier t)
{
    return t == GM_TIER_AUTOMATION;
}
