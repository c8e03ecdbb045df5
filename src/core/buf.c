#include "core/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gm_buf_init(gm_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void gm_buf_release(gm_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void gm_buf_reset(gm_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static GM_MUST_CHECK gm_status grow(gm_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return GM_ERR_LIMIT;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return GM_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *n = realloc(b->data, cap);
    if (!n)
        return GM_ERR_NOMEM;
    b->data = n;
    b->cap = cap;
    return GM_OK;
}

gm_status gm_buf_append(gm_buf *b, const void *data, size_t len)
{
    gm_status st = grow(b, len);
    if (st != GM_OK)
        return st;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return GM_OK;
}

gm_status gm_buf_appends(gm_buf *b, const char *s)
{
    return gm_buf_append(b, s, strlen(s));
}

gm_status gm_buf_appendc(gm_buf *b, char c)
{
    return gm_buf_append(b, &c, 1);
}

gm_status gm_buf_vprintf(gm_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return GM_ERR_INTERNAL;
    gm_status st = grow(b, (size_t)n);
    if (st != GM_OK)
        return st;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return GM_OK;
}

gm_status gm_buf_printf(gm_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gm_status st = gm_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return st;
}

const char *gm_buf_cstr(const gm_buf *b)
{
    return b->data ? b->data : "";
}

char *gm_buf_detach(gm_buf *b)
{
    char *p = b->data;
    if (!p)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

gm_status gm_buf_read_file(gm_buf *b, const char *path, gm_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return gm_error_set(err, errno == ENOENT ? GM_ERR_NOT_FOUND : GM_ERR_IO,
                            "cannot open '%s': %s", path, strerror(errno));
    char chunk[8192];
    size_t n;
    gm_status st = GM_OK;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        st = gm_buf_append(b, chunk, n);
        if (st != GM_OK) {
            fclose(f);
            if (st == GM_ERR_LIMIT)
                return gm_error_set(err, st, "file '%s' is larger than %zu bytes", path, b->max);
            return gm_error_set(err, st, "out of memory reading '%s'", path);
        }
    }
    if (ferror(f))
        st = gm_error_set(err, GM_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    fclose(f);
    return st;
}
