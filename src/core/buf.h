/* A growable byte buffer with a maximum size (in the manner of curl's dynbuf).
 *
 * Every buffer that holds outside input carries a named limit; appending past
 * it fails with GM_ERR_LIMIT and leaves the buffer as it was. The content is
 * always NUL-terminated (the terminator is not counted in len).
 */
#ifndef GM_CORE_BUF_H
#define GM_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "core/error.h"

/* Named limits. */
#define GM_LIMIT_RESPONSE_BODY (8u * 1024u * 1024u) /* one AWS response body */
#define GM_LIMIT_STATE_FILE (4u * 1024u * 1024u)    /* one deployment state file */
#define GM_LIMIT_CONFIG_FILE (1u * 1024u * 1024u)   /* an AWS config/credentials file */
#define GM_LIMIT_PROCESS_OUTPUT (64u * 1024u)       /* credential_process stdout */
#define GM_LIMIT_USERDATA_RAW (16u * 1024u)         /* EC2 UserData, before base64 */
#define GM_LIMIT_REQUEST_BODY (1u * 1024u * 1024u)  /* one request body we build */
#define GM_LIMIT_SMALL (64u * 1024u)                /* short strings: headers, paths */

typedef struct gm_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
} gm_buf;

void gm_buf_init(gm_buf *b, size_t max);
void gm_buf_release(gm_buf *b); /* frees; the buffer may be reused after init */
void gm_buf_reset(gm_buf *b);   /* len = 0, keeps memory */

GM_MUST_CHECK gm_status gm_buf_append(gm_buf *b, const void *data, size_t len);
GM_MUST_CHECK gm_status gm_buf_appends(gm_buf *b, const char *s);
GM_MUST_CHECK gm_status gm_buf_appendc(gm_buf *b, char c);
GM_MUST_CHECK gm_status gm_buf_printf(gm_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
GM_MUST_CHECK gm_status gm_buf_vprintf(gm_buf *b, const char *fmt, va_list ap);

/* The content as a C string; "" when empty. Valid until the next change. */
const char *gm_buf_cstr(const gm_buf *b) __attribute__((returns_nonnull));

/* Hands the allocation to the caller (free() it); the buffer becomes empty.
 * Never returns NULL for an initialised buffer unless allocation fails. */
char *gm_buf_detach(gm_buf *b);

/* Reads a whole file into b (bounded by b->max). */
GM_MUST_CHECK gm_status gm_buf_read_file(gm_buf *b, const char *path, gm_error *err);

/* An emitter: appends to a buffer and keeps the first failure, so generators
 * can write text without checking after every line. */
typedef struct gm_emit {
    gm_buf *b;
    gm_status st;
} gm_emit;

static inline void gm_emit_put(gm_emit *e, const char *s)
{
    if (e->st == GM_OK)
        e->st = gm_buf_appends(e->b, s);
}

__attribute__((format(printf, 2, 3))) static inline void gm_emit_putf(gm_emit *e, const char *fmt,
                                                                      ...)
{
    if (e->st != GM_OK)
        return;
    va_list ap;
    va_start(ap, fmt);
    e->st = gm_buf_vprintf(e->b, fmt, ap);
    va_end(ap);
}

#endif
