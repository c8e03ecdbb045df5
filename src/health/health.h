/* The stack's health: the document each instance publishes, its parser and
 * verdict, and the probe that fetches it (once, or until healthy).
 *
 * The document. The instance's geusemaker-health.timer writes it every 30 s
 * from the real stack (each container's Compose healthcheck status, and
 * pg_isready for PostgreSQL), and nginx serves it without a token, on port 80
 * over plain HTTP (and on 443), at GM_HEALTH_DOC_PATH. It holds no secret:
 *
 *   {"schema":1, "deployment":"demo", "tier":"dev",
 *    "overall":"healthy|starting|degraded|unhealthy",
 *    "checked_at":"2025-06-01T12:00:00Z",
 *    "services":{"n8n":{"state":"healthy|starting|unhealthy",
 *                       "detail":"healthcheck passing", "critical":true}, ...},
 *    "boot":{"started":"...Z", "ready":"...Z"|null, "finished":"...Z"|null,
 *            "models_ready":"...Z"|null, "baked":false,
 *            "steps":[{"name":"packages","seconds":84,"skipped":false}, ...]}}
 *
 * "boot" (optional; null or absent on instances made before it) is the
 * instance's own measured budget: when the UserData started, when the
 * critical services were first healthy, when the UserData finished, when the
 * late unit had pulled the models, whether the image was baked ('geusemaker
 * image build'), and each finished step's duration (skipped: the step found
 * its work done). See docs/BOOT.md.
 *
 * overall is: unhealthy when a critical service (PostgreSQL, n8n) is
 * unhealthy; else degraded when another one is; else starting when any is
 * starting (large images and models are pulled behind the rest); else healthy.
 * GM_HEALTH_READY_URL_PATH answers 200 only while every critical service is
 * healthy (503 otherwise): the ALB target group checks it.
 *
 * Loopback rule (the network rule of the tests, applied by the engine through
 * gm_health_target): when the AWS endpoint in use is a loopback emulator, the
 * tool never probes instance addresses (the emulator hands out fake public
 * IPs); it probes GEUSEMAKER_HEALTH_ENDPOINT when that is set, and otherwise
 * skips the probe with a notice. GEUSEMAKER_HEALTH_ENDPOINT, when set, is used
 * against real AWS too (e.g. through an SSH tunnel).
 */
#ifndef GM_HEALTH_HEALTH_H
#define GM_HEALTH_HEALTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aws/http.h"
#include "core/error.h"

/* Same paths as the stack layer's GM_HEALTH_PATH / GM_HEALTH_READY_PATH
 * (a unit test checks they agree). */
#define GM_HEALTH_DOC_PATH "/geusemaker/health.json"
#define GM_HEALTH_READY_URL_PATH "/geusemaker/ready"
#define GM_HEALTH_ENDPOINT_ENV "GEUSEMAKER_HEALTH_ENDPOINT"

#define GM_HEALTH_MAX_SERVICES 16
#define GM_HEALTH_MAX_BOOT_STEPS 24        /* the stack's GM_HEALTH_BOOT_STEPS_MAX */
#define GM_HEALTH_MAX_STEP_S (7 * 86400L)  /* a step's seconds above this: not a boot */
#define GM_HEALTH_DOC_MAX (64u * 1024u)    /* named limit of the document's body */
#define GM_HEALTH_STALE_S 180              /* older than this: the timer has stopped */
#define GM_HEALTH_REQUEST_TIMEOUT_MS 10000 /* one probe inside gm_health_wait */
#define GM_HEALTH_POLL_MS 5000             /* default poll interval */

/* Ordered from best to worst: a verdict is the worst of its inputs. */
typedef enum gm_health_state {
    GM_HEALTH_UNKNOWN = 0, /* not known (no document yet) */
    GM_HEALTH_HEALTHY,
    GM_HEALTH_STARTING,
    GM_HEALTH_DEGRADED,
    GM_HEALTH_UNHEALTHY,
} gm_health_state;

const char *gm_health_state_name(gm_health_state s); /* "healthy", ...; "unknown" */
bool gm_health_state_parse(const char *s, gm_health_state *out);

typedef struct gm_health_service {
    char name[32];
    gm_health_state state;
    bool critical;
    char detail[256]; /* truncated when longer */
} gm_health_service;

typedef struct gm_health_boot_step {
    char name[32]; /* [a-z0-9_-]{1,31} */
    long seconds;  /* 0 .. GM_HEALTH_MAX_STEP_S */
    bool skipped;  /* the step found its work done (a baked image) */
} gm_health_boot_step;

/* The "boot" object. present false: absent or null, or malformed (then error
 * says why: the rest of the document stands). Times as published; the
 * epochs are 0 when a time is null. */
typedef struct gm_health_boot {
    bool present;
    char error[128];
    bool baked;
    char started[40], ready[40], finished[40], models_ready[40];
    time_t started_epoch, ready_epoch, finished_epoch, models_ready_epoch;
    gm_health_boot_step steps[GM_HEALTH_MAX_BOOT_STEPS];
    size_t n_steps;
} gm_health_boot;

/* Seconds from the boot's start to epoch (ready_epoch, ...); -1 when either
 * is unknown. */
long gm_health_boot_after(const gm_health_boot *b, time_t epoch);

typedef struct gm_health_doc {
    gm_health_state overall; /* as the instance published it */
    /* What callers act on: the worst of the published overall, the overall
     * recomputed from the services by the rule above, and staleness. */
    gm_health_state verdict;
    char reason[512];    /* why the verdict is not healthy; "" when it is */
    char checked_at[40]; /* as published */
    time_t checked_at_epoch;
    char deployment[64]; /* "" when absent */
    char tier[16];       /* "" when absent */
    bool stale;          /* set by gm_health_apply_age */
    long age_s;          /* -1 when unknown */
    gm_health_service services[GM_HEALTH_MAX_SERVICES];
    size_t n_services;
    gm_health_boot boot;
} gm_health_doc;

/* Parses a health document (len bytes, need not be NUL-terminated) and
 * computes the verdict. GM_ERR_PARSE with a message naming the problem when
 * the text is not a health document (not JSON, missing or mistyped overall,
 * checked_at or services, an unknown state, more than GM_HEALTH_MAX_SERVICES
 * services, a service name over 31 characters); GM_ERR_LIMIT over
 * GM_HEALTH_DOC_MAX bytes. out is fully written on success, zeroed on failure. */
GM_MUST_CHECK gm_status gm_health_parse(const char *text, size_t len, gm_health_doc *out,
                                        gm_error *err);

/* Marks the document stale when checked_at is more than max_age_s before now
 * (verdict becomes unhealthy, reason says so); sets age_s. Use the server's
 * clock for now (the HTTP Date header) to be immune to local clock skew. */
void gm_health_apply_age(gm_health_doc *doc, time_t now, long max_age_s);

/* True when every critical service is healthy and the document is not stale
 * (the same test as GM_HEALTH_READY_URL_PATH). */
bool gm_health_doc_ready(const gm_health_doc *doc);

/* The first service of that name, or NULL. */
const gm_health_service *gm_health_doc_service(const gm_health_doc *doc, const char *name);

/* The document as JSON for --output json (new reference; NULL on no memory):
 * {"verdict","reason","overall","checked_at","stale","age_s","services":{...},
 *  "boot":{"started","ready","finished","models_ready" (null when unknown),
 *          "baked","seconds","ready_seconds" (from the start; null when
 *          unknown),"steps":[{"name","seconds","skipped"}]} or null}, and
 * "boot_error" when the document's boot object was malformed. */
json_t *gm_health_doc_to_json(const gm_health_doc *doc);

/* Fetches and parses the document at url (GET, no redirects) within
 * timeout_ms (connect and total). Staleness is judged against the response's
 * Date header when present. Errors, each with the URL in the message:
 *   GM_ERR_TIMEOUT    no answer within timeout_ms
 *   GM_ERR_NETWORK    connection refused/reset, TLS failure; or an HTTP status
 *                     other than 200 (err->http_status holds it)
 *   GM_ERR_NOT_FOUND  HTTP 404: nginx answers but has no document (yet)
 *   GM_ERR_PARSE      the body is not a health document
 *   GM_ERR_LIMIT      the body is over GM_HEALTH_DOC_MAX
 * out is written only on success. */
GM_MUST_CHECK gm_status gm_health_fetch(gm_transport *t, const char *url, long timeout_ms,
                                        gm_health_doc *out, gm_error *err);

typedef struct gm_health_progress {
    int attempt;              /* 1, 2, ... */
    int64_t elapsed_ms;       /* since gm_health_wait started */
    int64_t remaining_ms;     /* until the deadline */
    gm_status status;         /* of this attempt */
    const char *error;        /* this attempt's error message when status != GM_OK */
    const gm_health_doc *doc; /* this attempt's document when status == GM_OK */
} gm_health_progress;

/* Called after every attempt. Return false to stop waiting early (e.g. once
 * gm_health_doc_ready is enough for the caller). */
typedef bool (*gm_health_progress_fn)(void *ctx, const gm_health_progress *p);

/* Polls url every poll_interval_ms (<= 0: GM_HEALTH_POLL_MS) until the verdict
 * is healthy or the deadline passes. deadline_ms is an absolute time on the
 * gm_now_ms() clock, so the caller's overall deadline can be passed through;
 * it is enforced during each request (its timeout never runs past it) and
 * during each sleep, not only between polls. Every failure before the
 * deadline (connection refused while the instance boots, 404 before nginx is
 * configured, a document saying "starting") is retried.
 * Returns GM_OK when healthy, or when progress returned false after a
 * successful attempt (the caller reads out->verdict); GM_ERR_TIMEOUT at the
 * deadline, the message naming the services that are not healthy (or the last
 * error when no document was ever fetched); when progress returned false after
 * a failed attempt, that attempt's error. out holds the last document fetched,
 * and is zeroed (verdict unknown) when there was none. */
GM_MUST_CHECK gm_status gm_health_wait(gm_transport *t, const char *url, int64_t deadline_ms,
                                       long poll_interval_ms, gm_health_progress_fn progress,
                                       void *ctx, gm_health_doc *out, gm_error *err);

typedef enum gm_health_target_kind {
    GM_HEALTH_TARGET_INSTANCE, /* probe the instance: http://HOST/geusemaker/health.json */
    GM_HEALTH_TARGET_OVERRIDE, /* probe GEUSEMAKER_HEALTH_ENDPOINT */
    GM_HEALTH_TARGET_SKIP,     /* do not probe: loopback emulator and no override, or no address */
} gm_health_target_kind;

/* Applies the loopback rule. aws_endpoint: the EC2 endpoint in use (NULL or
 * "" for real AWS); instance_host: the instance's public IP or DNS name (may
 * be NULL); override: the value of GEUSEMAKER_HEALTH_ENDPOINT (NULL or "" when
 * unset), a base URL ("http://127.0.0.1:8080", GM_HEALTH_DOC_PATH is appended)
 * or a full URL with a path. On GM_OK, *out_url is malloc'd (NULL for SKIP).
 * GM_ERR_INVALID when override is not an http(s) URL. */
GM_MUST_CHECK gm_status gm_health_target(const char *aws_endpoint, const char *instance_host,
                                         const char *override, gm_health_target_kind *out_kind,
                                         char **out_url, gm_error *err);

#endif
