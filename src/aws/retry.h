/* Retry policy: AWS SDK "standard" mode.
 *
 * - at most max_attempts attempts in all (default 3; the client reads
 *   AWS_MAX_ATTEMPTS);
 * - exponential backoff with full jitter: random(0, min(cap, base * 2^n));
 * - a retry budget shared by all requests of a client: a token bucket of 500,
 *   5 tokens per retry (10 after a timeout), 1 back on a success that needed no
 *   retry, the cost back on a success that did;
 * - retryable: HTTP 500/502/503/504, connection errors and timeouts, and the
 *   throttling and transient error codes below.
 */
#ifndef GM_AWS_RETRY_H
#define GM_AWS_RETRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

typedef enum gm_retry_kind {
    GM_RETRY_NONE,      /* do not retry */
    GM_RETRY_TRANSIENT, /* 5xx, connection error, transient code */
    GM_RETRY_THROTTLE,  /* throttling code */
    GM_RETRY_TIMEOUT,   /* the attempt timed out */
} gm_retry_kind;

/* Classifies one failed attempt: st is the transport or service status,
 * http_status the response status (0 if none), aws_code the error code ("" or
 * NULL if none). */
gm_retry_kind gm_retry_classify(gm_status st, long http_status, const char *aws_code);

bool gm_retry_is_throttle_code(const char *aws_code);

#define GM_RETRY_BUCKET_MAX 500
#define GM_RETRY_COST 5
#define GM_RETRY_TIMEOUT_COST 10
#define GM_RETRY_CAP_MS 20000

typedef struct gm_retry_policy {
    int max_attempts;     /* attempts in all, >= 1 */
    int64_t base_ms;      /* backoff base (1000 in the SDKs) */
    int64_t cap_ms;       /* backoff cap (20 s) */
    pthread_mutex_t lock; /* guards tokens */
    int tokens;
} gm_retry_policy;

/* max_attempts <= 0 and base_ms <= 0 take the defaults (3, 1000 ms). */
void gm_retry_policy_init(gm_retry_policy *p, int max_attempts, int64_t base_ms);
void gm_retry_policy_release(gm_retry_policy *p);

/* Takes the cost of a retry from the budget; false when the budget is empty. */
bool gm_retry_acquire(gm_retry_policy *p, gm_retry_kind kind, int *out_cost);
/* Records a success: refunds cost (0 when the request needed no retry: +1). */
void gm_retry_success(gm_retry_policy *p, int cost);

/* Backoff before retry number `retry` (1 for the first retry), with jitter
 * drawn from unit in [0,1). */
int64_t gm_retry_backoff_ms(const gm_retry_policy *p, int retry, double unit);

#endif
