/* AWS partitions and their regions: the one table every layer asks.
 *
 * A region belongs to exactly one partition (aws, aws-cn, aws-us-gov); the
 * partition decides the DNS suffix of endpoints, the ARN prefix
 * ("arn:aws-cn:..."), where the global services (IAM) live and which region
 * signs for them. The region lists follow botocore's partitions.json
 * (1.43); a region missing here is refused before any AWS call, so a new
 * AWS region needs a line in partition.c.
 */
#ifndef GM_AWS_PARTITION_H
#define GM_AWS_PARTITION_H

#include <stddef.h>

#include "core/error.h"

typedef struct gm_partition {
    const char *id;            /* "aws", "aws-cn", "aws-us-gov": the ARN's second field */
    const char *title;         /* "AWS China" */
    const char *dns_suffix;    /* "amazonaws.com", "amazonaws.com.cn" */
    const char *global_region; /* the region that signs for global services (IAM) */
    const char *iam_host;      /* "iam.amazonaws.com", "iam.cn-north-1.amazonaws.com.cn" */
    const char *const *regions;
    size_t n_regions;
} gm_partition;

/* The partitions, in table order (aws first). */
const gm_partition *gm_partitions(size_t *out_n);

/* The partition a region belongs to, or NULL for a name in no list. */
const gm_partition *gm_partition_of(const char *region);

/* The partition with that id ("aws-cn"), or NULL. */
const gm_partition *gm_partition_by_id(const char *id);

/* Checks that region is a known region. GM_ERR_INVALID otherwise, with a
 * message naming source ("--region", "AWS_REGION", ...) and up to three of
 * the nearest known names: "unknown region 'useast1' (from --region): did
 * you mean 'us-east-1'? ..." An empty or NULL region is refused too. */
GM_MUST_CHECK gm_status gm_region_check(const char *region, const char *source, gm_error *err);

/* Fills out with up to max known regions nearest to name (edit distance,
 * ties in table order, only reasonably close ones); returns how many. */
size_t gm_region_suggest(const char *name, const char **out, size_t max);

#endif
