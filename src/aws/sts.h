/* STS: the caller's identity. */
#ifndef GM_AWS_STS_H
#define GM_AWS_STS_H

#include "aws/client.h"

typedef struct gm_caller_identity {
    char account[32];
    char arn[512];
    char user_id[256];
} gm_caller_identity;

GM_MUST_CHECK gm_status gm_sts_get_caller_identity(gm_aws_client *c, gm_caller_identity *out,
                                                   gm_error *err);

#endif
