/* Shared between the stack generators; not part of the layer's interface. */
#ifndef GM_STACK_INTERNAL_H
#define GM_STACK_INTERNAL_H

#include <stdarg.h>

#include "core/buf.h"
#include "stack/stack.h"

/* Appends the Compose file for validated parameters (no validation, no error
 * context; GM_ERR_LIMIT/GM_ERR_NOMEM from the buffer). */
GM_MUST_CHECK gm_status gm_stack_compose_append(const gm_stack_params *p, gm_tier tier,
                                                gm_buf *out);

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
