#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void gm_error_clear(gm_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

void gm_error_vset(gm_error *err, gm_status status, const char *fmt, va_list ap)
{
    if (!err || err->status != GM_OK)
        return;
    err->status = status;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
}

void gm_error_prefix(gm_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[GM_ERROR_MESSAGE_MAX];
    memcpy(old, err->message, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof err->message - 3)
        n = sizeof err->message - 3;
    memcpy(err->message, prefix, n);
    memcpy(err->message + n, ": ", 2);
    size_t room = sizeof err->message - n - 3;
    size_t olen = strnlen(old, room);
    memcpy(err->message + n + 2, old, olen);
    err->message[n + 2 + olen] = '\0';
}

const char *gm_status_name(gm_status status)
{
    switch (status) {
    case GM_OK: return "ok";
    case GM_ERR_INVALID: return "invalid input";
    case GM_ERR_NOMEM: return "out of memory";
    case GM_ERR_IO: return "i/o error";
    case GM_ERR_PARSE: return "parse error";
    case GM_ERR_LIMIT: return "size limit exceeded";
    case GM_ERR_NETWORK: return "network error";
    case GM_ERR_TIMEOUT: return "timed out";
    case GM_ERR_AWS: return "aws error";
    case GM_ERR_AUTH: return "authentication error";
    case GM_ERR_NOT_FOUND: return "not found";
    case GM_ERR_LOCKED: return "locked";
    case GM_ERR_CONFLICT: return "conflict";
    case GM_ERR_INTERRUPTED: return "interrupted";
    case GM_ERR_INTERNAL: return "internal error";
    }
    return "unknown error";
}
