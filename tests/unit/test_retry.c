/* Retry classification, backoff bounds and the retry budget. */
#include <stdlib.h>

#include "aws/retry.h"
#include "gm_test.h"

static void test_classify(void)
{
    CHECK_INT(gm_retry_classify(GM_OK, 200, NULL), GM_RETRY_NONE);
    CHECK_INT(gm_retry_classify(GM_ERR_NETWORK, 0, NULL), GM_RETRY_TRANSIENT);
    CHECK_INT(gm_retry_classify(GM_ERR_TIMEOUT, 0, NULL), GM_RETRY_TIMEOUT);
    long transient[] = {500, 502, 503, 504};
    for (int i = 0; i < 4; i++)
        CHECK_INT(gm_retry_classify(GM_ERR_AWS, transient[i], "HTTP5xx"), GM_RETRY_TRANSIENT);
    CHECK_INT(gm_retry_classify(GM_ERR_AWS, 501, "NotImplemented"), GM_RETRY_NONE);
    CHECK_INT(gm_retry_classify(GM_ERR_AWS, 400, "RequestLimitExceeded"), GM_RETRY_THROTTLE);
    CHECK_INT(gm_retry_classify(GM_ERR_AWS, 400, "Throttling"), GM_RETRY_THROTTLE);
    CHECK_INT(gm_retry_classify(GM_ERR_AWS, 400, "ThrottlingException"), GM_RETRY_THROTTLE);
    CHECK_INT(gm_retry_classify(GM_ERR_AWS, 429, "TooManyRequestsException"), GM_RETRY_THROTTLE);
    CHECK_INT(gm_retry_classify(GM_ERR_AWS, 429, ""), GM_RETRY_THROTTLE);
    CHECK_INT(gm_retry_classify(GM_ERR_AWS, 400, "RequestTimeout"), GM_RETRY_TRANSIENT);
    CHECK_INT(gm_retry_classify(GM_ERR_AUTH, 401, "AuthFailure"), GM_RETRY_NONE);
    CHECK_INT(gm_retry_classify(GM_ERR_AUTH, 403, "UnauthorizedOperation"), GM_RETRY_NONE);
    CHECK_INT(gm_retry_classify(GM_ERR_AWS, 400, "InvalidParameterValue"), GM_RETRY_NONE);
    CHECK_INT(gm_retry_classify(GM_ERR_AWS, 500, "InsufficientInstanceCapacity"), GM_RETRY_NONE);
    CHECK_INT(gm_retry_classify(GM_ERR_AWS, 400, "VcpuLimitExceeded"), GM_RETRY_NONE);
    CHECK_INT(gm_retry_classify(GM_ERR_PARSE, 200, NULL), GM_RETRY_NONE);
}

static void test_backoff_bounds(void)
{
    gm_retry_policy p;
    gm_retry_policy_init(&p, 3, 1000);
    CHECK_INT(gm_retry_backoff_ms(&p, 1, 0.0), 0);
    CHECK(gm_retry_backoff_ms(&p, 1, 0.999) <= 1000);
    CHECK(gm_retry_backoff_ms(&p, 2, 0.999) <= 2000);
    CHECK(gm_retry_backoff_ms(&p, 2, 0.999) > 1000);
    /* Capped at 20 s however many retries. */
    CHECK(gm_retry_backoff_ms(&p, 30, 0.999) <= GM_RETRY_CAP_MS);
    CHECK(gm_retry_backoff_ms(&p, 30, 0.999) > GM_RETRY_CAP_MS - 100);
    CHECK_INT(gm_retry_backoff_ms(&p, 5, 0.5), 8000);
    gm_retry_policy_release(&p);
}

static void test_budget(void)
{
    gm_retry_policy p;
    gm_retry_policy_init(&p, 3, 1000);
    int cost = 0, granted = 0;
    while (gm_retry_acquire(&p, GM_RETRY_TRANSIENT, &cost))
        granted++;
    CHECK_INT(granted, GM_RETRY_BUCKET_MAX / GM_RETRY_COST);
    CHECK_INT(cost, GM_RETRY_BUCKET_MAX);
    CHECK(!gm_retry_acquire(&p, GM_RETRY_TIMEOUT, &cost));
    /* A success after retries refunds their cost. */
    gm_retry_success(&p, 10);
    CHECK(gm_retry_acquire(&p, GM_RETRY_TIMEOUT, NULL));
    CHECK(!gm_retry_acquire(&p, GM_RETRY_TRANSIENT, NULL));
    /* A success without retries adds one token; never above the maximum. */
    for (int i = 0; i < 1000; i++)
        gm_retry_success(&p, 0);
    CHECK_INT(p.tokens, GM_RETRY_BUCKET_MAX);
    gm_retry_policy_release(&p);
}

static void test_max_attempts_defaults(void)
{
    /* The policy never reads the environment: the client checks
     * AWS_MAX_ATTEMPTS strictly and passes it (test_client.c). */
    setenv("AWS_MAX_ATTEMPTS", "5", 1);
    gm_retry_policy p;
    gm_retry_policy_init(&p, 0, 0);
    CHECK_INT(p.max_attempts, 3);
    CHECK_INT(p.base_ms, 1000);
    gm_retry_policy_release(&p);
    gm_retry_policy_init(&p, 7, 20);
    CHECK_INT(p.max_attempts, 7);
    CHECK_INT(p.base_ms, 20);
    gm_retry_policy_release(&p);
    unsetenv("AWS_MAX_ATTEMPTS");
}

int main(void)
{
    GM_RUN(test_classify);
    GM_RUN(test_backoff_bounds);
    GM_RUN(test_budget);
    GM_RUN(test_max_attempts_defaults);
    GM_TEST_END();
}
