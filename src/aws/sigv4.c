/* AWS Signature Version 4, header signing (see sigv4.h for the contract).
 *
 * Everything is built into local buffers first; the request is changed only
 * once the signature is known, so a failure leaves it as it was (except when
 * memory runs out while the headers are being added at the very end).
 */
#include "aws/sigv4.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/crypto.h"
#include "core/str.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

/* The canonical request holds the method, path, query and headers (never the
 * body); anything larger than this is not a request we mean to send. */
#define GM_LIMIT_CANONICAL_REQUEST (1u * 1024u * 1024u)

/* One header as it enters the canonical form. */
typedef struct sig_header {
    char *name;   /* lowercase */
    char *value;  /* trimmed, runs of blanks collapsed */
    size_t order; /* position in the request: duplicates keep their order */
} sig_header;

typedef struct sig_headers {
    sig_header *items;
    size_t count;
    size_t cap;
} sig_headers;

/* One query parameter, both parts already in canonical (encoded) form. */
typedef struct sig_param {
    char *name;
    char *value;
} sig_param;

typedef struct sig_params {
    sig_param *items;
    size_t count;
    size_t cap;
} sig_params;

/* ---- small helpers ----------------------------------------------------- */

static bool is_tchar(unsigned char c)
{
    /* RFC 9110 token characters. */
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(const char *s)
{
    if (!s || !*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (!is_tchar(*p))
            return false;
    return true;
}

/* A credential-scope part (region, service) or an access key id: printable
 * ASCII without '/', ',', '=' or blanks, so it cannot break the scope or the
 * Authorization header apart. */
static bool is_scope_part(const char *s)
{
    if (!s || !*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '/' || *p == ',' || *p == '=')
            return false;
    return true;
}

static bool has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void wipe_free(char *p, size_t len)
{
    if (p) {
        explicit_bzero(p, len);
        free(p);
    }
}

/* A caller-supplied string made fit for an error message: printable ASCII
 * only, at most 64 characters, and withheld entirely when it holds the
 * secret key or the session token (an error message must never carry them,
 * whatever a caller put where). */
static bool holds_credential(const char *s, const gm_credentials *c)
{
    return (c->secret_access_key && *c->secret_access_key && strstr(s, c->secret_access_key)) ||
           (c->session_token && *c->session_token && strstr(s, c->session_token));
}

static const char *echo(char out[80], const char *s, const gm_credentials *c)
{
    if (!s)
        return "(null)";
    if (holds_credential(s, c))
        return "(withheld)";
    size_t n = 0;
    for (; s[n] && n < 64; n++)
        out[n] = (s[n] > 0x20 && s[n] < 0x7f) || s[n] == ' ' ? s[n] : '?';
    if (s[n])
        memcpy(out + n, "...", 3), n += 3;
    out[n] = '\0';
    return out;
}

/* Maps a buffer failure to an error context entry. */
static GM_MUST_CHECK gm_status buf_failed(gm_status st, gm_error *err)
{
    if (st == GM_ERR_LIMIT)
        return gm_error_set(err, GM_ERR_LIMIT, "canonical request too large to sign");
    return gm_error_set(err, GM_ERR_NOMEM, "out of memory signing a request");
}

/* ---- headers ----------------------------------------------------------- */

static void sig_headers_release(sig_headers *h)
{
    for (size_t i = 0; i < h->count; i++) {
        free(h->items[i].name);
        free(h->items[i].value);
    }
    free(h->items);
    h->items = NULL;
    h->count = h->cap = 0;
}

/* Copies value with leading/trailing blanks removed and inner runs of blanks
 * turned into one space. */
static char *trim_collapse(const char *value)
{
    size_t len = strlen(value);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    bool pending_space = false;
    for (const char *p = value; *p; p++) {
        if (is_blank(*p)) {
            pending_space = n > 0;
            continue;
        }
        if (pending_space)
            out[n++] = ' ';
        pending_space = false;
        out[n++] = *p;
    }
    out[n] = '\0';
    return out;
}

static GM_MUST_CHECK gm_status sig_headers_add(sig_headers *h, const char *name, const char *value)
{
    if (h->count == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        sig_header *n = realloc(h->items, cap * sizeof *n);
        if (!n)
            return GM_ERR_NOMEM;
        h->items = n;
        h->cap = cap;
    }
    char *lname = strdup(name);
    char *cval = trim_collapse(value ? value : "");
    if (!lname || !cval) {
        free(lname);
        free(cval);
        return GM_ERR_NOMEM;
    }
    for (char *p = lname; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    h->items[h->count].name = lname;
    h->items[h->count].value = cval;
    h->items[h->count].order = h->count;
    h->count++;
    return GM_OK;
}

static int sig_header_cmp(const void *a, const void *b)
{
    const sig_header *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* ---- canonical URI ----------------------------------------------------- */

typedef struct seg {
    const char *p;
    size_t len;
} seg;

/* Removes "." and ".." segments and empty segments (duplicate slashes). A
 * trailing slash stays, as does one left by a final "." or ".." (RFC 3986
 * 5.2.4); an empty result is "/". */
static GM_MUST_CHECK gm_status normalize_path(gm_buf *out, const char *path)
{
    size_t n = strlen(path);
    size_t max = 1;
    for (size_t i = 0; i < n; i++)
        max += path[i] == '/';
    seg *stack = malloc(max * sizeof *stack);
    if (!stack)
        return GM_ERR_NOMEM;
    size_t depth = 0;
    bool last_dot = false;
    const char *p = path, *end = path + n;
    while (p < end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *stop = slash ? slash : end;
        size_t len = (size_t)(stop - p);
        if (len == 1 && p[0] == '.') {
            last_dot = true;
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (depth)
                depth--;
            last_dot = true;
        } else if (len > 0) {
            stack[depth].p = p;
            stack[depth].len = len;
            depth++;
            last_dot = false;
        }
        p = slash ? slash + 1 : end;
    }
    bool trailing = depth > 0 && ((n > 0 && path[n - 1] == '/') || last_dot);
    gm_status st = GM_OK;
    if (depth == 0)
        st = gm_buf_appendc(out, '/');
    for (size_t i = 0; i < depth && st == GM_OK; i++) {
        st = gm_buf_appendc(out, '/');
        if (st == GM_OK)
            st = gm_buf_append(out, stack[i].p, stack[i].len);
    }
    if (st == GM_OK && trailing)
        st = gm_buf_appendc(out, '/');
    free(stack);
    return st;
}

static GM_MUST_CHECK gm_status canonical_uri(gm_buf *out, const char *path, bool normalize)
{
    if (!normalize)
        return gm_uri_encode(out, path, strlen(path), true);
    gm_buf norm;
    gm_buf_init(&norm, GM_LIMIT_CANONICAL_REQUEST);
    gm_status st = normalize_path(&norm, path);
    if (st == GM_OK)
        st = gm_uri_encode(out, norm.data ? norm.data : "", norm.len, true);
    gm_buf_release(&norm);
    return st;
}

/* ---- canonical query --------------------------------------------------- */

static void sig_params_release(sig_params *q)
{
    for (size_t i = 0; i < q->count; i++) {
        free(q->items[i].name);
        free(q->items[i].value);
    }
    free(q->items);
    q->items = NULL;
    q->count = q->cap = 0;
}

/* Decodes s[0..len) and encodes it again into a new string. */
static GM_MUST_CHECK gm_status reencode(const char *s, size_t len, char **out)
{
    gm_buf dec, enc;
    gm_buf_init(&dec, GM_LIMIT_CANONICAL_REQUEST);
    gm_buf_init(&enc, GM_LIMIT_CANONICAL_REQUEST);
    gm_status st = gm_uri_decode(&dec, s, len, false);
    if (st == GM_OK)
        st = gm_uri_encode(&enc, dec.data ? dec.data : "", dec.len, false);
    if (st == GM_OK) {
        *out = gm_buf_detach(&enc);
        if (!*out)
            st = GM_ERR_NOMEM;
    }
    gm_buf_release(&dec);
    gm_buf_release(&enc);
    return st;
}

static GM_MUST_CHECK gm_status sig_params_add(sig_params *q, const char *piece, size_t len)
{
    if (q->count == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        sig_param *n = realloc(q->items, cap * sizeof *n);
        if (!n)
            return GM_ERR_NOMEM;
        q->items = n;
        q->cap = cap;
    }
    const char *eq = memchr(piece, '=', len);
    size_t nlen = eq ? (size_t)(eq - piece) : len;
    char *name = NULL, *value = NULL;
    gm_status st = reencode(piece, nlen, &name);
    if (st == GM_OK)
        st = eq ? reencode(eq + 1, len - nlen - 1, &value) : reencode("", 0, &value);
    if (st != GM_OK) {
        free(name);
        free(value);
        return st;
    }
    q->items[q->count].name = name;
    q->items[q->count].value = value;
    q->count++;
    return GM_OK;
}

static int sig_param_cmp(const void *a, const void *b)
{
    const sig_param *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static GM_MUST_CHECK gm_status canonical_query(gm_buf *out, const char *query)
{
    sig_params q = {0};
    gm_status st = GM_OK;
    const char *p = query, *end = query + strlen(query);
    while (p < end && st == GM_OK) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (stop > p) /* "a&&b": an empty piece is no parameter */
            st = sig_params_add(&q, p, (size_t)(stop - p));
        p = amp ? amp + 1 : end;
    }
    if (st == GM_OK && q.count > 1)
        qsort(q.items, q.count, sizeof *q.items, sig_param_cmp);
    for (size_t i = 0; i < q.count && st == GM_OK; i++) {
        if (i)
            st = gm_buf_appendc(out, '&');
        if (st == GM_OK)
            st = gm_buf_appends(out, q.items[i].name);
        if (st == GM_OK)
            st = gm_buf_appendc(out, '=');
        if (st == GM_OK)
            st = gm_buf_appends(out, q.items[i].value);
    }
    sig_params_release(&q);
    return st;
}

/* ---- signing key ------------------------------------------------------- */

static GM_MUST_CHECK gm_status signing_key(const char *secret, const char *date, const char *region,
                                           const char *service, unsigned char out[GM_SHA256_LEN])
{
    size_t slen = strlen(secret);
    size_t klen = 4 + slen;
    char *k0 = malloc(klen);
    if (!k0)
        return GM_ERR_NOMEM;
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret, slen);
    unsigned char a[GM_SHA256_LEN], b[GM_SHA256_LEN];
    gm_hmac_sha256(k0, klen, date, strlen(date), a);
    wipe_free(k0, klen);
    gm_hmac_sha256(a, sizeof a, region, strlen(region), b);
    gm_hmac_sha256(b, sizeof b, service, strlen(service), a);
    gm_hmac_sha256(a, sizeof a, "aws4_request", strlen("aws4_request"), out);
    explicit_bzero(a, sizeof a);
    explicit_bzero(b, sizeof b);
    return GM_OK;
}

/* ---- the signer -------------------------------------------------------- */

static GM_MUST_CHECK gm_status check_inputs(const gm_http_request *req,
                                            const gm_sigv4_params *params, gm_error *err)
{
    if (!req || !params)
        return gm_error_set(err, GM_ERR_INVALID, "missing request or parameters to sign");
    const gm_credentials *c = params->credentials;
    char e[80];
    if (!c)
        return gm_error_set(err, GM_ERR_INVALID, "missing credentials for signing");
    if (!c->access_key_id || !*c->access_key_id)
        return gm_error_set(err, GM_ERR_INVALID, "missing access key id for signing");
    if (!is_scope_part(c->access_key_id))
        return gm_error_set(err, GM_ERR_INVALID, "invalid access key id: unexpected characters");
    if (!c->secret_access_key || !*c->secret_access_key)
        return gm_error_set(err, GM_ERR_INVALID, "missing secret access key for signing");
    if (c->session_token && has_crlf(c->session_token))
        return gm_error_set(err, GM_ERR_INVALID, "invalid session token: line break");
    if (!params->region || !*params->region)
        return gm_error_set(err, GM_ERR_INVALID, "missing region for signing");
    if (!is_scope_part(params->region))
        return gm_error_set(err, GM_ERR_INVALID, "invalid signing region '%s'",
                            echo(e, params->region, c));
    if (!params->service || !*params->service)
        return gm_error_set(err, GM_ERR_INVALID, "missing service name for signing");
    if (!is_scope_part(params->service))
        return gm_error_set(err, GM_ERR_INVALID, "invalid signing service '%s'",
                            echo(e, params->service, c));
    if (params->payload_hash && (!*params->payload_hash || has_crlf(params->payload_hash)))
        return gm_error_set(err, GM_ERR_INVALID, "invalid payload hash for signing");
    if (!is_token(req->method))
        return gm_error_set(err, GM_ERR_INVALID, "invalid http method '%s'",
                            echo(e, req->method, c));
    if (!req->url)
        return gm_error_set(err, GM_ERR_INVALID, "missing url to sign");
    for (size_t i = 0; i < req->headers.count; i++) {
        const gm_header *h = &req->headers.items[i];
        if (!is_token(h->name))
            return gm_error_set(err, GM_ERR_INVALID, "invalid header name '%s'",
                                echo(e, h->name, c));
        if (h->value && has_crlf(h->value))
            return gm_error_set(err, GM_ERR_INVALID, "invalid value for header '%s': line break",
                                echo(e, h->name, c));
    }
    return GM_OK;
}

/* Headers the AWS SDKs never sign (botocore's SIGNED_HEADERS_BLACKLIST, the
 * list the AWS signing tools share): ones a proxy or the HTTP stack may add,
 * drop or rewrite on the way (User-Agent, the X-Ray trace id, Expect, the
 * hop-by-hop headers). Signing one would break the signature whenever a hop
 * changes it, and a verifier that rebuilds the canonical request the SDK way
 * leaves it out, so it would never match. They are sent, just not signed. */
static const char *const unsigned_headers[] = {
    "connection", "expect",  "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer",    "upgrade", "user-agent", "transfer-encoding",  "x-amzn-trace-id",
};

bool gm_sigv4_header_unsigned(const char *name)
{
    for (size_t i = 0; i < sizeof unsigned_headers / sizeof *unsigned_headers; i++)
        if (strcasecmp(name, unsigned_headers[i]) == 0)
            return true;
    return false;
}

/* Request headers that do not enter the signature as they are: the old
 * Authorization, the ones the SDKs never sign (above), and the headers the
 * signer owns and replaces. */
static bool skip_header(const char *name, bool sign_body)
{
    return strcasecmp(name, "authorization") == 0 || gm_sigv4_header_unsigned(name) ||
           strcasecmp(name, "x-amz-date") == 0 || strcasecmp(name, "x-amz-security-token") == 0 ||
           (sign_body && strcasecmp(name, "x-amz-content-sha256") == 0);
}

/* One signing: the request's parts and what is built from them. */
typedef struct sign_ctx {
    char *host, *path, *query;
    char amzdate[32], date[16];
    char body_hash[GM_SHA256_HEX_LEN];
    const char *payload_hash;
    bool have_host, has_token;
    sig_headers sh;
    gm_buf creq, sts, auth, signed_headers;
    char signature[2 * GM_SHA256_LEN + 1];
} sign_ctx;

static void sign_ctx_release(sign_ctx *c)
{
    sig_headers_release(&c->sh);
    gm_buf_release(&c->creq);
    gm_buf_release(&c->sts);
    gm_buf_release(&c->auth);
    gm_buf_release(&c->signed_headers);
    free(c->host);
    free(c->path);
    free(c->query);
}

/* The signing time and the payload hash. */
static GM_MUST_CHECK gm_status sign_time_and_payload(sign_ctx *c, const gm_http_request *req,
                                                     const gm_sigv4_params *params, gm_error *err)
{
    struct tm tm;
    time_t t = params->timestamp;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        return gm_error_set(err, GM_ERR_INVALID, "signing time out of range");
    strftime(c->amzdate, sizeof c->amzdate, "%Y%m%dT%H%M%SZ", &tm);
    strftime(c->date, sizeof c->date, "%Y%m%d", &tm);
    c->payload_hash = params->payload_hash;
    if (!c->payload_hash) {
        gm_sha256_hex(req->body.data ? req->body.data : "", req->body.len, c->body_hash);
        c->payload_hash = c->body_hash;
    }
    return GM_OK;
}

/* The headers that take part, sorted. */
static GM_MUST_CHECK gm_status collect_headers(sign_ctx *c, const gm_http_request *req,
                                               const gm_sigv4_params *params)
{
    gm_status st = GM_OK;
    c->have_host = gm_headers_get(&req->headers, "host") != NULL;
    for (size_t i = 0; i < req->headers.count && st == GM_OK; i++) {
        const gm_header *h = &req->headers.items[i];
        if (!skip_header(h->name, params->sign_body))
            st = sig_headers_add(&c->sh, h->name, h->value);
    }
    if (st == GM_OK && !c->have_host)
        st = sig_headers_add(&c->sh, "host", c->host);
    if (st == GM_OK)
        st = sig_headers_add(&c->sh, "x-amz-date", c->amzdate);
    if (st == GM_OK && c->has_token && !params->omit_session_token)
        st = sig_headers_add(&c->sh, "x-amz-security-token", params->credentials->session_token);
    if (st == GM_OK && params->sign_body)
        st = sig_headers_add(&c->sh, "x-amz-content-sha256", c->payload_hash);
    if (st == GM_OK)
        qsort(c->sh.items, c->sh.count, sizeof *c->sh.items, sig_header_cmp);
    return st;
}

/* "name:value[,value]\n" per header (duplicates folded), then the list of
 * signed header names. */
static GM_MUST_CHECK gm_status canonical_headers(sign_ctx *c)
{
    gm_status st = GM_OK;
    const sig_headers *sh = &c->sh;
    for (size_t i = 0; i < sh->count && st == GM_OK; i++) {
        bool first = i == 0 || strcmp(sh->items[i].name, sh->items[i - 1].name) != 0;
        bool last = i + 1 == sh->count || strcmp(sh->items[i].name, sh->items[i + 1].name) != 0;
        if (first) {
            st = gm_buf_appends(&c->creq, sh->items[i].name);
            if (st == GM_OK)
                st = gm_buf_appendc(&c->creq, ':');
        } else {
            st = gm_buf_appendc(&c->creq, ',');
        }
        if (st == GM_OK)
            st = gm_buf_appends(&c->creq, sh->items[i].value);
        if (st == GM_OK && last)
            st = gm_buf_appendc(&c->creq, '\n');
        if (st == GM_OK && first) {
            if (c->signed_headers.len)
                st = gm_buf_appendc(&c->signed_headers, ';');
            if (st == GM_OK)
                st = gm_buf_appends(&c->signed_headers, sh->items[i].name);
        }
    }
    return st;
}

static GM_MUST_CHECK gm_status canonical_request(sign_ctx *c, const gm_http_request *req,
                                                 const gm_sigv4_params *params)
{
    gm_status st = gm_buf_appends(&c->creq, req->method);
    if (st == GM_OK)
        st = gm_buf_appendc(&c->creq, '\n');
    if (st == GM_OK)
        st = canonical_uri(&c->creq, c->path, params->normalize_path);
    if (st == GM_OK)
        st = gm_buf_appendc(&c->creq, '\n');
    if (st == GM_OK)
        st = canonical_query(&c->creq, c->query);
    if (st == GM_OK)
        st = gm_buf_appendc(&c->creq, '\n');
    if (st == GM_OK)
        st = canonical_headers(c);
    if (st == GM_OK)
        st = gm_buf_appendc(&c->creq, '\n');
    if (st == GM_OK)
        st = gm_buf_append(&c->creq, gm_buf_cstr(&c->signed_headers), c->signed_headers.len);
    if (st == GM_OK)
        st = gm_buf_appendc(&c->creq, '\n');
    if (st == GM_OK)
        st = gm_buf_appends(&c->creq, c->payload_hash);
    return st;
}

/* The string to sign, the signature and the Authorization value. */
static GM_MUST_CHECK gm_status signature(sign_ctx *c, const gm_sigv4_params *params)
{
    char creq_hash[GM_SHA256_HEX_LEN];
    gm_sha256_hex(gm_buf_cstr(&c->creq), c->creq.len, creq_hash);
    gm_status st = gm_buf_printf(&c->sts, SIGV4_ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s",
                                 c->amzdate, c->date, params->region, params->service, creq_hash);
    unsigned char key[GM_SHA256_LEN], mac[GM_SHA256_LEN];
    const gm_credentials *cred = params->credentials;
    if (st == GM_OK)
        st = signing_key(cred->secret_access_key, c->date, params->region, params->service, key);
    if (st != GM_OK)
        return st;
    gm_hmac_sha256(key, sizeof key, gm_buf_cstr(&c->sts), c->sts.len, mac);
    explicit_bzero(key, sizeof key);
    gm_hex_encode(mac, sizeof mac, c->signature);
    return gm_buf_printf(&c->auth,
                         SIGV4_ALGORITHM " Credential=%s/%s/%s/%s/aws4_request, "
                                         "SignedHeaders=%s, Signature=%s",
                         cred->access_key_id, c->date, params->region, params->service,
                         gm_buf_cstr(&c->signed_headers), c->signature);
}

static GM_MUST_CHECK gm_status fill_debug(const sign_ctx *c, gm_sigv4_debug *debug)
{
    gm_buf_reset(&debug->canonical_request);
    gm_buf_reset(&debug->string_to_sign);
    gm_status st = gm_buf_append(&debug->canonical_request, gm_buf_cstr(&c->creq), c->creq.len);
    if (st == GM_OK)
        st = gm_buf_append(&debug->string_to_sign, gm_buf_cstr(&c->sts), c->sts.len);
    if (st == GM_OK)
        memcpy(debug->signature, c->signature, sizeof debug->signature);
    return st;
}

/* Only once everything is built does the request change. */
static GM_MUST_CHECK gm_status apply_headers(const sign_ctx *c, gm_http_request *req,
                                             const gm_sigv4_params *params)
{
    const char *token = params->credentials->session_token;
    gm_status st = GM_OK;
    gm_headers_remove(&req->headers, "authorization");
    gm_headers_remove(&req->headers, "x-amz-security-token");
    if (!c->have_host)
        st = gm_headers_add(&req->headers, "Host", c->host);
    if (st == GM_OK)
        st = gm_headers_set(&req->headers, "X-Amz-Date", c->amzdate);
    if (st == GM_OK && c->has_token && !params->omit_session_token)
        st = gm_headers_add(&req->headers, "X-Amz-Security-Token", token);
    if (st == GM_OK && params->sign_body)
        st = gm_headers_set(&req->headers, "x-amz-content-sha256", c->payload_hash);
    if (st == GM_OK)
        st = gm_headers_add(&req->headers, "Authorization", gm_buf_cstr(&c->auth));
    if (st == GM_OK && c->has_token && params->omit_session_token)
        st = gm_headers_add(&req->headers, "X-Amz-Security-Token", token);
    return st;
}

static GM_MUST_CHECK gm_status split_url(sign_ctx *c, const gm_http_request *req,
                                         const gm_credentials *cred, gm_error *err)
{
    gm_error uerr = {0};
    gm_status st = gm_url_split(req->url, NULL, &c->host, &c->path, &c->query, &uerr);
    if (st != GM_OK) {
        if (holds_credential(req->url, cred)) /* then the url itself must not be shown */
            return gm_error_set(err, st, "malformed url (withheld: it holds a credential)");
        return gm_error_set(err, st, "%s", uerr.message);
    }
    for (const unsigned char *p = (const unsigned char *)c->host; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return gm_error_set(err, GM_ERR_INVALID, "malformed url: bad character in host");
    return GM_OK;
}

gm_status gm_sigv4_sign(gm_http_request *req, const gm_sigv4_params *params, gm_sigv4_debug *debug,
                        gm_error *err)
{
    gm_status st = check_inputs(req, params, err);
    if (st != GM_OK)
        return st;
    sign_ctx c;
    memset(&c, 0, sizeof c);
    gm_buf_init(&c.creq, GM_LIMIT_CANONICAL_REQUEST);
    gm_buf_init(&c.sts, GM_LIMIT_SMALL);
    gm_buf_init(&c.auth, GM_LIMIT_SMALL);
    gm_buf_init(&c.signed_headers, GM_LIMIT_CANONICAL_REQUEST);
    c.has_token = params->credentials->session_token && *params->credentials->session_token;
    st = split_url(&c, req, params->credentials, err);
    if (st == GM_OK)
        st = sign_time_and_payload(&c, req, params, err);
    if (st == GM_OK) {
        st = collect_headers(&c, req, params);
        if (st == GM_OK)
            st = canonical_request(&c, req, params);
        if (st == GM_OK)
            st = signature(&c, params);
        if (st == GM_OK && debug)
            st = fill_debug(&c, debug);
        if (st == GM_OK)
            st = apply_headers(&c, req, params);
        if (st != GM_OK)
            st = buf_failed(st, err);
    }
    sign_ctx_release(&c);
    return st;
}
