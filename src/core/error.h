/* Status codes and the caller-owned error context.
 *
 * Functions that can fail return a gm_status by value. The detail goes into a
 * gm_error owned by the caller, filled once where the failure happens (the
 * first gm_error_set wins; later calls on an already-set context keep the
 * original detail). Messages are lowercase, problem first, subject in quotes.
 */
#ifndef GM_CORE_ERROR_H
#define GM_CORE_ERROR_H

#include <stdarg.h>
#include <stdbool.h>

/* On every function that returns a gm_status: a result dropped by the caller
 * is a compile error (-Werror). Where a failure really does not matter, say
 * so with gm_ignore(). */
#define GM_MUST_CHECK __attribute__((warn_unused_result))

typedef enum gm_status {
    GM_OK = 0,
    GM_ERR_INVALID,     /* bad input from the user or a caller */
    GM_ERR_NOMEM,       /* allocation failed */
    GM_ERR_IO,          /* local file or process I/O */
    GM_ERR_PARSE,       /* malformed document */
    GM_ERR_LIMIT,       /* a named size limit was exceeded */
    GM_ERR_NETWORK,     /* transport failure: connect, reset, TLS */
    GM_ERR_TIMEOUT,     /* a deadline passed */
    GM_ERR_AWS,         /* the service answered with an error; see aws_code */
    GM_ERR_AUTH,        /* credentials missing, rejected or not authorized */
    GM_ERR_NOT_FOUND,   /* the thing asked for does not exist */
    GM_ERR_LOCKED,      /* another process holds the lock */
    GM_ERR_CONFLICT,    /* state disagrees with what was asked */
    GM_ERR_INTERRUPTED, /* stopped by SIGINT/SIGTERM at a safe point */
    GM_ERR_INTERNAL,    /* a bug */
} gm_status;

#define GM_ERROR_MESSAGE_MAX 1024

typedef struct gm_error {
    gm_status status;
    char message[GM_ERROR_MESSAGE_MAX];
    char aws_code[128];   /* e.g. "InsufficientInstanceCapacity" */
    char request_id[128]; /* x-amzn-RequestId or RequestID element */
    char service[48];     /* e.g. "ec2" */
    char action[64];      /* e.g. "RunInstances" */
    long http_status;     /* 0 when no HTTP response was received */
    int attempts;         /* how many attempts the request core made */
    bool retryable;
} gm_error;

/* Resets the context to "no error". Safe on NULL. */
void gm_error_clear(gm_error *err);

/* Fills err (if non-NULL and not already holding an error) with status and a
 * message (vprintf-formatted). */
void gm_error_vset(gm_error *err, gm_status status, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* gm_error_vset with printf arguments, returning status so callers can
 * `return gm_error_set(...)`. It cannot fail, so the result may be dropped
 * (the one status-returning function without GM_MUST_CHECK); it is inline so
 * that the static analyser sees it returns its status argument. */
static inline gm_status gm_error_set(gm_error *err, gm_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline gm_status gm_error_set(gm_error *err, gm_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gm_error_vset(err, status, fmt, ap);
    va_end(ap);
    return status;
}

/* Prefixes the existing message with more context: "ctx: old message". */
void gm_error_prefix(gm_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drops a status on purpose (a best-effort step whose failure changes
 * nothing); the call site says why in a comment. */
static inline void gm_ignore(gm_status st)
{
    (void)st;
}

/* A short lowercase name for a status ("network error", ...). */
const char *gm_status_name(gm_status status);

#endif
