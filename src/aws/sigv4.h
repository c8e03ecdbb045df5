/* AWS Signature Version 4 (header signing), on OpenSSL libcrypto.
 *
 * Proven on the AWS signing test suite (tests/unit/sigv4_vectors.c runs any
 * directory in its layout).
 */
#ifndef GM_AWS_SIGV4_H
#define GM_AWS_SIGV4_H

#include <stdbool.h>
#include <time.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "core/buf.h"

typedef struct gm_sigv4_params {
    const char *region;  /* "us-east-1" */
    const char *service; /* signing name: "ec2", "sts", "elasticfilesystem", ... */
    time_t timestamp;    /* signing time (UTC seconds) */
    const gm_credentials *credentials;
    bool normalize_path;     /* remove dot segments and duplicate slashes (true except S3) */
    bool sign_body;          /* add x-amz-content-sha256 with the payload hash */
    bool omit_session_token; /* add X-Amz-Security-Token after signing, unsigned */
    /* The payload hash to sign (and to send in x-amz-content-sha256 with
     * sign_body) instead of the hex SHA-256 of req->body, e.g.
     * "UNSIGNED-PAYLOAD". NULL: hash the body. */
    const char *payload_hash;
} gm_sigv4_params;

/* Optional outputs for tests and debugging. Caller initialises the buffers
 * (gm_buf_init) and releases them. */
typedef struct gm_sigv4_debug {
    gm_buf canonical_request;
    gm_buf string_to_sign;
    char signature[65];
} gm_sigv4_debug;

/* Signs req in place: adds X-Amz-Date, X-Amz-Security-Token (when the
 * credentials have one), x-amz-content-sha256 (with sign_body), and
 * Authorization. A Host header is added from req->url when absent. The path
 * and query are taken from req->url as they appear on the request line.
 * debug may be NULL.
 *
 * Canonical form (as the AWS signing test suite expects it):
 * - URI: the request-line path, with normalize_path reduced (no "." or ".."
 *   segments, no empty segments, trailing slash kept, "/" when empty), then
 *   percent-encoded once more with '/' kept. This is the "double encoding" of
 *   every service but S3; S3's single encoding is not supported.
 * - Query: split on '&' and the first '='; names and values are
 *   percent-decoded and re-encoded (so raw and already-encoded input give the
 *   same result), then sorted by name, then value.
 * - Headers: every header of the request except Authorization (an old one is
 *   removed) and those the AWS SDKs never sign (gm_sigv4_header_unsigned:
 *   User-Agent, X-Amzn-Trace-Id, Expect and the hop-by-hop headers), which
 *   stay on the request unsigned; names lowercased, values trimmed with runs
 *   of spaces and tabs collapsed, duplicates joined with ',' in request order.
 *   X-Amz-Date, X-Amz-Security-Token and (with sign_body)
 *   x-amz-content-sha256 are owned by the signer: existing ones are dropped
 *   and set anew (the token only when the credentials carry one), so signing
 *   the same request again, e.g. for a retry, is safe.
 *
 * Fails with GM_ERR_INVALID (request unchanged) for missing credentials,
 * region or service, a malformed url, a method that is not an HTTP token, a
 * header name that is not one, or a header value with CR or LF. Messages
 * never contain the secret key or the session token. Thread-safe: no shared
 * mutable state. */
/* True for a header the AWS SDKs leave out of the signature (botocore's
 * list): connection, expect, keep-alive, proxy-authenticate,
 * proxy-authorization, te, trailer, transfer-encoding, upgrade, user-agent,
 * x-amzn-trace-id; any case. */
bool gm_sigv4_header_unsigned(const char *name);

GM_MUST_CHECK gm_status gm_sigv4_sign(gm_http_request *req, const gm_sigv4_params *params,
                                      gm_sigv4_debug *debug, gm_error *err);

#endif
