#include "aws/retry.h"

#include <stdlib.h>
#include <string.h>

static const char *const throttle_codes[] = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
};

static const char *const transient_codes[] = {
    "RequestTimeout",        "RequestTimeoutException", "InternalError",      "InternalFailure",
    "InternalServiceError",  "InternalServerError",     "ServiceUnavailable", "Unavailable",
    "IDPCommunicationError",
};

/* Capacity answers come back as HTTP 500 from EC2, but retrying the same call in
 * the same zone does not help: the caller fails over instead. */
static const char *const capacity_codes[] = {
    "InsufficientInstanceCapacity",
    "InsufficientHostCapacity",
    "InsufficientCapacity",
    "UnfulfillableCapacity",
    "InsufficientReservedInstanceCapacity",
};

static bool in_list(const char *code, const char *const *list, size_t n)
{
    if (!code || !*code)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(code, list[i]) == 0)
            return true;
    return false;
}

bool gm_retry_is_throttle_code(const char *aws_code)
{
    return in_list(aws_code, throttle_codes, sizeof throttle_codes / sizeof *throttle_codes);
}

gm_retry_kind gm_retry_classify(gm_status st, long http_status, const char *aws_code)
{
    if (st == GM_OK)
        return GM_RETRY_NONE;
    if (st == GM_ERR_TIMEOUT)
        return GM_RETRY_TIMEOUT;
    if (st == GM_ERR_NETWORK)
        return GM_RETRY_TRANSIENT;
    if (gm_retry_is_throttle_code(aws_code))
        return GM_RETRY_THROTTLE;
    if (in_list(aws_code, capacity_codes, sizeof capacity_codes / sizeof *capacity_codes))
        return GM_RETRY_NONE;
    if (in_list(aws_code, transient_codes, sizeof transient_codes / sizeof *transient_codes))
        return GM_RETRY_TRANSIENT;
    if (http_status == 429)
        return GM_RETRY_THROTTLE;
    if (http_status == 500 || http_status == 502 || http_status == 503 || http_status == 504)
        return GM_RETRY_TRANSIENT;
    return GM_RETRY_NONE;
}

void gm_retry_policy_init(gm_retry_policy *p, int max_attempts, int64_t base_ms)
{
    p->max_attempts = max_attempts > 0 ? max_attempts : 3;
    p->base_ms = base_ms > 0 ? base_ms : 1000;
    p->cap_ms = GM_RETRY_CAP_MS;
    p->tokens = GM_RETRY_BUCKET_MAX;
    pthread_mutex_init(&p->lock, NULL);
}

void gm_retry_policy_release(gm_retry_policy *p)
{
    if (p)
        pthread_mutex_destroy(&p->lock);
}

bool gm_retry_acquire(gm_retry_policy *p, gm_retry_kind kind, int *out_cost)
{
    int cost = kind == GM_RETRY_TIMEOUT ? GM_RETRY_TIMEOUT_COST : GM_RETRY_COST;
    bool ok = false;
    pthread_mutex_lock(&p->lock);
    if (p->tokens >= cost) {
        p->tokens -= cost;
        ok = true;
    }
    pthread_mutex_unlock(&p->lock);
    if (ok && out_cost)
        *out_cost += cost;
    return ok;
}

void gm_retry_success(gm_retry_policy *p, int cost)
{
    pthread_mutex_lock(&p->lock);
    p->tokens += cost > 0 ? cost : 1;
    if (p->tokens > GM_RETRY_BUCKET_MAX)
        p->tokens = GM_RETRY_BUCKET_MAX;
    pthread_mutex_unlock(&p->lock);
}

int64_t gm_retry_backoff_ms(const gm_retry_policy *p, int retry, double unit)
{
    if (retry < 1)
        retry = 1;
    int64_t ceiling = p->base_ms;
    for (int i = 1; i < retry && ceiling < p->cap_ms; i++)
        ceiling *= 2;
    if (ceiling > p->cap_ms)
        ceiling = p->cap_ms;
    if (unit < 0)
        unit = 0;
    if (unit >= 1)
        unit = 0.999999;
    return (int64_t)(unit * (double)ceiling);
}
