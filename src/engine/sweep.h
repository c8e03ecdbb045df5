/* Finding resources by their tags, whatever the record says: destroy's sweep,
 * the one-name-per-region check, adopt and cleanup (engine-internal). */
#ifndef GM_ENGINE_SWEEP_H
#define GM_ENGINE_SWEEP_H

#include "aws/client.h"
#include "core/error.h"

/* One tagged resource of a region. */
typedef struct gm_tagged {
    char *arn;
    char service[32];       /* "ec2", "elasticfilesystem", "elasticloadbalancing", "ssm" */
    char type[48];          /* "vpc", "file-system", "loadbalancer", "parameter", ... */
    char *id;               /* the id the node kinds use: "vpc-1", "fs-1", the arn, the name */
    char name[64];          /* geusemaker:deployment */
    char deployment_id[32]; /* geusemaker:deployment-id ("" when absent) */
    char node[64];          /* geusemaker:node */
} gm_tagged;

typedef struct gm_tagged_list {
    gm_tagged *v;
    size_t n;
} gm_tagged_list;

void gm_tagged_list_init(gm_tagged_list *l);
void gm_tagged_list_release(gm_tagged_list *l);

/* Every resource of the client's region tagged key=value (value NULL: with
 * the key, whatever its value), following every page of the Resource Groups
 * Tagging API. */
GM_MUST_CHECK gm_status gm_engine_list_tagged(gm_aws_client *aws, const char *key,
                                              const char *value, gm_tagged_list *out,
                                              gm_error *err);

/* True for resources that go with another and are never deleted on their own
 * (an instance's volumes and network interface go with the instance). */
bool gm_tagged_goes_with_another(const gm_tagged *t);

#endif
