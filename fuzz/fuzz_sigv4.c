/* Fuzzes gm_sigv4_sign with arbitrary method, url, header and body bytes.
 *
 * Input layout: byte 0 holds flags; the rest is split on '\n':
 *   line 1: the method
 *   line 2: the url tail appended to "https://example.amazonaws.com" (path,
 *           query), or with flag 0x10 the whole url
 *   then "name:value" header lines up to an empty line; the remainder is the
 *   body.
 * Flags: 0x01 normalize_path, 0x02 sign_body, 0x04 session token,
 * 0x08 omit_session_token, 0x20 payload hash override, 0x40 sign twice.
 *
 * Checks: no crash or leak (sanitizers), exactly one Authorization after a
 * successful signing, a filled error context after a failed one, and never
 * the secret key in an error message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sigv4.h"
#include "core/str.h"

#define FUZZ_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define FUZZ_MAX_INPUT (64u * 1024u)

static const char *next_line(const char **p, const char *end, size_t *len)
{
    if (*p >= end)
        return NULL;
    const char *s = *p;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    *len = nl ? (size_t)(nl - s) : (size_t)(end - s);
    *p = nl ? nl + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_MAX_INPUT)
        return 0;
    unsigned flags = data[0];
    const char *p = (const char *)data + 1, *end = (const char *)data + size;

    gm_http_request req;
    gm_http_request_init(&req);
    size_t len = 0;
    const char *line = next_line(&p, end, &len);
    char *method = line ? gm_strndup(line, len) : gm_strdup("GET");
    line = next_line(&p, end, &len);
    char *tail = line ? gm_strndup(line, len) : gm_strdup("/");
    char *url = NULL;
    if (tail)
        url = (flags & 0x10) ? gm_strdup(tail) : gm_strfmt("https://example.amazonaws.com%s", tail);
    free(tail);
    if (!method || !url || gm_http_request_setup(&req, method, url) != GM_OK)
        goto out;

    while ((line = next_line(&p, end, &len)) != NULL && len > 0) {
        const char *colon = memchr(line, ':', len);
        size_t nlen = colon ? (size_t)(colon - line) : len;
        char *name = gm_strndup(line, nlen);
        char *value = colon ? gm_strndup(colon + 1, len - nlen - 1) : gm_strdup("");
        gm_status st = (name && value) ? gm_headers_add(&req.headers, name, value) : GM_ERR_NOMEM;
        free(name);
        free(value);
        if (st != GM_OK)
            goto out;
    }
    if (p < end && gm_buf_append(&req.body, p, (size_t)(end - p)) != GM_OK)
        goto out;

    gm_credentials cred = {0};
    cred.access_key_id = (char *)"AKIDEXAMPLE";
    cred.secret_access_key = (char *)FUZZ_SECRET;
    cred.session_token = (flags & 0x04) ? (char *)"FUZZTOKEN//+==" : NULL;
    gm_sigv4_params params = {
        .region = "us-east-1",
        .service = "service",
        .timestamp = 1440938160,
        .credentials = &cred,
        .normalize_path = flags & 0x01,
        .sign_body = flags & 0x02,
        .omit_session_token = flags & 0x08,
        .payload_hash = (flags & 0x20) ? "UNSIGNED-PAYLOAD" : NULL,
    };
    gm_sigv4_debug dbg;
    gm_buf_init(&dbg.canonical_request, GM_LIMIT_REQUEST_BODY);
    gm_buf_init(&dbg.string_to_sign, GM_LIMIT_SMALL);
    int rounds = (flags & 0x40) ? 2 : 1;
    for (int i = 0; i < rounds; i++) {
        gm_error err = {0};
        gm_status st = gm_sigv4_sign(&req, &params, &dbg, &err);
        if (st == GM_OK) {
            size_t n = 0;
            for (size_t k = 0; k < req.headers.count; k++)
                n += gm_str_ieq(req.headers.items[k].name, "authorization");
            if (n != 1 || strlen(dbg.signature) != 64)
                abort();
        } else {
            if (err.status != st || !err.message[0] || strstr(err.message, FUZZ_SECRET))
                abort();
            break;
        }
    }
    gm_buf_release(&dbg.canonical_request);
    gm_buf_release(&dbg.string_to_sign);

out:
    free(method);
    free(url);
    gm_http_request_release(&req);
    return 0;
}
