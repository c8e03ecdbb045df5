/* The partition table (see partition.h). Sources: botocore 1.43
 * data/partitions.json (regions, DNS suffixes) and data/endpoints.json (IAM's
 * global endpoint and credential scope per partition). */
#include "aws/partition.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/str.h"

static const char *const aws_regions[] = {
    "us-east-1",      "us-east-2",      "us-west-1",      "us-west-2",      "af-south-1",
    "ap-east-1",      "ap-east-2",      "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-south-1",     "ap-south-2",     "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
    "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-central-1",
    "ca-west-1",      "eu-central-1",   "eu-central-2",   "eu-north-1",     "eu-south-1",
    "eu-south-2",     "eu-west-1",      "eu-west-2",      "eu-west-3",      "il-central-1",
    "me-central-1",   "me-south-1",     "mx-central-1",   "sa-east-1",
};
static const char *const cn_regions[] = {"cn-north-1", "cn-northwest-1"};
static const char *const gov_regions[] = {"us-gov-east-1", "us-gov-west-1"};

#define N(a) (sizeof(a) / sizeof *(a))

static const gm_partition partitions[] = {
    {"aws", "AWS", "amazonaws.com", "us-east-1", "iam.amazonaws.com", aws_regions, N(aws_regions)},
    {"aws-cn", "AWS China", "amazonaws.com.cn", "cn-north-1", "iam.cn-north-1.amazonaws.com.cn",
     cn_regions, N(cn_regions)},
    {"aws-us-gov", "AWS GovCloud (US)", "amazonaws.com", "us-gov-west-1",
     "iam.us-gov.amazonaws.com", gov_regions, N(gov_regions)},
};

const gm_partition *gm_partitions(size_t *out_n)
{
    *out_n = N(partitions);
    return partitions;
}

const gm_partition *gm_partition_of(const char *region)
{
    for (size_t p = 0; region && p < N(partitions); p++)
        for (size_t i = 0; i < partitions[p].n_regions; i++)
            if (strcmp(region, partitions[p].regions[i]) == 0)
                return &partitions[p];
    return NULL;
}

const gm_partition *gm_partition_by_id(const char *id)
{
    for (size_t p = 0; id && p < N(partitions); p++)
        if (strcmp(id, partitions[p].id) == 0)
            return &partitions[p];
    return NULL;
}

/* Lowercase letters and digits only: "US_East 1" and "useast1" both become
 * "useast1", so a different spelling of a real name is distance 0. */
static void squash(const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (; *in && n + 1 < size; in++) {
        char c = *in;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            out[n++] = c;
    }
    out[n] = '\0';
}

static size_t region_distance(const char *name, const char *region)
{
    char a[65], b[65];
    squash(name, a, sizeof a);
    squash(region, b, sizeof b);
    size_t d = gm_str_edit_distance(name, region);
    size_t e = gm_str_edit_distance(a, b);
    return e < d ? e : d;
}

size_t gm_region_suggest(const char *name, const char **out, size_t max)
{
    if (!name || strlen(name) > 64 || max == 0)
        return 0;
    size_t best = SIZE_MAX;
    for (size_t p = 0; p < N(partitions); p++)
        for (size_t i = 0; i < partitions[p].n_regions; i++) {
            size_t d = region_distance(name, partitions[p].regions[i]);
            if (d < best)
                best = d;
        }
    /* Close enough to be a typo: two edits, or a third of the name. */
    if (best == SIZE_MAX || (best > 2 && best * 3 > strlen(name)))
        return 0;
    size_t n = 0;
    for (size_t p = 0; p < N(partitions); p++)
        for (size_t i = 0; i < partitions[p].n_regions && n < max; i++)
            if (region_distance(name, partitions[p].regions[i]) == best)
                out[n++] = partitions[p].regions[i];
    return n;
}

gm_status gm_region_check(const char *region, const char *source, gm_error *err)
{
    if (!source)
        source = "the configuration";
    if (!region || !*region)
        return gm_error_set(err, GM_ERR_INVALID,
                            "empty region from %s: name a region such as 'us-east-1'", source);
    if (gm_partition_of(region))
        return GM_OK;
    const char *near[3];
    size_t n = gm_region_suggest(region, near, 3);
    if (n == 0)
        return gm_error_set(err, GM_ERR_INVALID,
                            "unknown region '%.64s' (from %s): expected an AWS region such as "
                            "'us-east-1', 'eu-west-1', 'cn-north-1' or 'us-gov-west-1'",
                            region, source);
    char list[128];
    if (n == 1)
        snprintf(list, sizeof list, "'%s'", near[0]);
    else if (n == 2)
        snprintf(list, sizeof list, "'%s' or '%s'", near[0], near[1]);
    else
        snprintf(list, sizeof list, "'%s', '%s' or '%s'", near[0], near[1], near[2]);
    return gm_error_set(err, GM_ERR_INVALID, "unknown region '%.64s' (from %s): did you mean %s?",
                        region, source, list);
}
