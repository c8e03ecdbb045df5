/* The deployment tiers. Every layer speaks of a tier by this enum; the name is
 * its spelling on the command line and in saved records. */
#ifndef GM_CORE_TIER_H
#define GM_CORE_TIER_H

#include <stdbool.h>

typedef enum gm_tier {
    GM_TIER_DEV,        /* VPC, security group, EFS, IAM role, one instance */
    GM_TIER_AUTOMATION, /* dev plus an Application Load Balancer */
    GM_TIER_GPU,        /* dev on a GPU instance with the Deep Learning AMI */
} gm_tier;

#define GM_TIER_COUNT 3

/* "dev" / "automation" / "gpu" -> tier; false (and *out untouched) when s is
 * NULL or unknown. */
bool gm_tier_parse(const char *s, gm_tier *out);
/* The tier's name; "unknown" for a value out of range. */
const char *gm_tier_name(gm_tier t);
/* True for the tier with a load balancer. */
bool gm_tier_has_alb(gm_tier t);

#endif
