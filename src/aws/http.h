/* HTTP request and response values, and the transport interface.
 *
 * The transport is the only place that talks to the network (libcurl lives in
 * transport_curl.c alone). Tests swap in their own transport to serve canned
 * responses.
 */
#ifndef GM_AWS_HTTP_H
#define GM_AWS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"

typedef struct gm_header {
    char *name;
    char *value;
} gm_header;

/* An ordered list of headers; names compare case-insensitively. */
typedef struct gm_headers {
    gm_header *items;
    size_t count;
    size_t cap;
} gm_headers;

void gm_headers_init(gm_headers *h);
void gm_headers_release(gm_headers *h);
/* Appends (duplicates allowed: the signer folds them). */
GM_MUST_CHECK gm_status gm_headers_add(gm_headers *h, const char *name, const char *value);
/* Replaces every header of that name with one value. */
GM_MUST_CHECK gm_status gm_headers_set(gm_headers *h, const char *name, const char *value);
/* First value of that name, or NULL. */
const char *gm_headers_get(const gm_headers *h, const char *name);
void gm_headers_remove(gm_headers *h, const char *name);

typedef struct gm_http_request {
    char *method;            /* "GET", "POST", ... */
    char *url;               /* scheme://host[:port]/path[?query], path already percent-encoded */
    gm_headers headers;      /* Host is derived from url by the signer when absent */
    gm_buf body;             /* bounded by GM_LIMIT_REQUEST_BODY */
    long connect_timeout_ms; /* 0: transport default */
    long total_timeout_ms;   /* 0: transport default */
    bool fresh_connection;   /* never on a reused connection (a transport may resend a
                                request whose reused connection died: not this one) */
} gm_http_request;

typedef struct gm_http_response {
    long status;        /* HTTP status code */
    gm_headers headers; /* names as received */
    gm_buf body;        /* bounded by GM_LIMIT_RESPONSE_BODY unless set otherwise */
} gm_http_response;

void gm_http_request_init(gm_http_request *req);
void gm_http_request_release(gm_http_request *req);
GM_MUST_CHECK gm_status gm_http_request_setup(gm_http_request *req, const char *method,
                                              const char *url);
void gm_http_response_init(gm_http_response *resp);
void gm_http_response_release(gm_http_response *resp);
void gm_http_response_reset(gm_http_response *resp);

/* Splits a URL into its parts. Each out_ is malloc'd (caller frees) and may be
 * NULL when not wanted. path is "/" when the URL has none; query excludes '?'
 * and is "" when absent; host_header is host[:port] as the Host header wants
 * it (default ports dropped). */
GM_MUST_CHECK gm_status gm_url_split(const char *url, char **out_scheme, char **out_host_header,
                                     char **out_path, char **out_query, gm_error *err);

/* Checks a configured endpoint: an http:// or https:// url (scheme in any
 * case) with a host. GM_ERR_INVALID "invalid WHAT 'URL': ..." otherwise. */
GM_MUST_CHECK gm_status gm_url_check_http(const char *url, const char *what, gm_error *err);

/* True when the URL's host is in 127.0.0.0/8, "localhost" or [::1]. */
bool gm_url_is_loopback(const char *url);

typedef struct gm_transport gm_transport;

typedef struct gm_transport_vtable {
    /* Sends req and fills resp. A response with any HTTP status is GM_OK; only
     * failures to get a response are errors: GM_ERR_NETWORK (connect, reset,
     * TLS), GM_ERR_TIMEOUT, GM_ERR_LIMIT (body over resp->body.max). Must be
     * safe to call from several threads at once. */
    gm_status (*send)(gm_transport *t, const gm_http_request *req, gm_http_response *resp,
                      gm_error *err);
    void (*free)(gm_transport *t);
} gm_transport_vtable;

struct gm_transport {
    const gm_transport_vtable *vt;
};

static inline gm_status gm_transport_send(gm_transport *t, const gm_http_request *req,
                                          gm_http_response *resp, gm_error *err)
{
    return t->vt->send(t, req, resp, err);
}

static inline void gm_transport_free(gm_transport *t)
{
    if (t)
        t->vt->free(t);
}

typedef struct gm_transport_options {
    long connect_timeout_ms; /* default 5000 */
    long total_timeout_ms;   /* default 60000 */
    const char *ca_bundle;   /* AWS_CA_BUNDLE; NULL: system store */
} gm_transport_options;

/* The libcurl transport: TLS verification on, connection reuse through a
 * per-thread handle cache. */
gm_transport *gm_transport_curl_new(const gm_transport_options *opts, gm_error *err);

#endif
