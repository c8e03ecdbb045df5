/* The libcurl transport: the only file that talks to libcurl.
 *
 * Easy handles are pooled (mutex-protected) so that connections are reused
 * across requests and threads; each handle is used by one thread at a time. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "aws/http.h"
#include "core/str.h"

#define POOL_MAX 16

typedef struct curl_transport {
    gm_transport base;
    gm_transport_options opts;
    char *ca_bundle;
    pthread_mutex_t lock;
    CURL *pool[POOL_MAX];
    int pooled;
} curl_transport;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct sink {
    gm_http_response *resp;
    bool over_limit;
    bool nomem;
} sink;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    sink *s = userdata;
    size_t n = size * nmemb;
    gm_status st = gm_buf_append(&s->resp->body, ptr, n);
    if (st == GM_ERR_LIMIT) {
        s->over_limit = true;
        return 0;
    }
    if (st != GM_OK) {
        s->nomem = true;
        return 0;
    }
    return n;
}

static size_t on_header(char *buffer, size_t size, size_t nitems, void *userdata)
{
    sink *s = userdata;
    size_t n = size * nitems;
    /* A new status line (after a 100 Continue or redirect) starts a new set. */
    if (n >= 5 && memcmp(buffer, "HTTP/", 5) == 0) {
        gm_headers_release(&s->resp->headers);
        return n;
    }
    const char *colon = memchr(buffer, ':', n);
    if (!colon)
        return n;
    char *name = strndup(buffer, (size_t)(colon - buffer));
    char *value = strndup(colon + 1, n - (size_t)(colon + 1 - buffer));
    if (!name || !value) {
        free(name);
        free(value);
        s->nomem = true;
        return 0;
    }
    gm_str_trim(name);
    gm_str_trim(value);
    gm_status st = gm_headers_add(&s->resp->headers, name, value);
    free(name);
    free(value);
    if (st != GM_OK) {
        s->nomem = true;
        return 0;
    }
    return n;
}

static CURL *acquire(curl_transport *t)
{
    CURL *h = NULL;
    pthread_mutex_lock(&t->lock);
    if (t->pooled > 0)
        h = t->pool[--t->pooled];
    pthread_mutex_unlock(&t->lock);
    if (h)
        curl_easy_reset(h);
    else
        h = curl_easy_init();
    return h;
}

static void give_back(curl_transport *t, CURL *h)
{
    pthread_mutex_lock(&t->lock);
    if (t->pooled < POOL_MAX) {
        t->pool[t->pooled++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&t->lock);
    if (h)
        curl_easy_cleanup(h);
}

static GM_MUST_CHECK gm_status curl_send(gm_transport *base, const gm_http_request *req,
                                         gm_http_response *resp, gm_error *err)
{
    curl_transport *t = (curl_transport *)base;
    CURL *h = acquire(t);
    if (!h)
        return gm_error_set(err, GM_ERR_NOMEM, "cannot create an http handle");

    struct curl_slist *hdrs = NULL;
    gm_status st = GM_OK;
    for (size_t i = 0; i < req->headers.count && st == GM_OK; i++) {
        char *line = gm_strfmt("%s: %s", req->headers.items[i].name, req->headers.items[i].value);
        struct curl_slist *n = line ? curl_slist_append(hdrs, line) : NULL;
        free(line);
        if (!n)
            st = GM_ERR_NOMEM;
        else
            hdrs = n;
    }
    /* No "Expect: 100-continue" round trip for larger bodies. */
    struct curl_slist *n = st == GM_OK ? curl_slist_append(hdrs, "Expect:") : NULL;
    if (!n) {
        curl_slist_free_all(hdrs);
        give_back(t, h);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory building request headers");
    }
    hdrs = n;

    sink s = {.resp = resp};
    gm_http_response_reset(resp);
    long connect_ms =
        req->connect_timeout_ms ? req->connect_timeout_ms : t->opts.connect_timeout_ms;
    long total_ms = req->total_timeout_ms ? req->total_timeout_ms : t->opts.total_timeout_ms;

    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    if (strcmp(req->method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (req->body.len > 0 || strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, gm_buf_cstr(&req->body));
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body.len);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &s);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    /* libcurl sends a request again, unasked, when a reused connection dies
     * before the answer: a create that must go out once takes a new one. */
    curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, req->fresh_connection ? 1L : 0L);
    if (t->ca_bundle)
        curl_easy_setopt(h, CURLOPT_CAINFO, t->ca_bundle);

    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        give_back(t, h);
        return GM_OK;
    }
    /* A failed handle may hold a broken connection: do not pool it. */
    curl_easy_cleanup(h);
    if (s.over_limit)
        return gm_error_set(err, GM_ERR_LIMIT, "response body from '%s' exceeds %zu bytes",
                            req->url, resp->body.max);
    if (s.nomem)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory reading the response");
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return gm_error_set(err, GM_ERR_TIMEOUT, "request to '%s' timed out: %s", req->url,
                            curl_easy_strerror(rc));
    return gm_error_set(err, GM_ERR_NETWORK, "request to '%s' failed: %s", req->url,
                        curl_easy_strerror(rc));
}

static void curl_transport_free(gm_transport *base)
{
    curl_transport *t = (curl_transport *)base;
    if (!t)
        return;
    for (int i = 0; i < t->pooled; i++)
        curl_easy_cleanup(t->pool[i]);
    pthread_mutex_destroy(&t->lock);
    free(t->ca_bundle);
    free(t);
}

static const gm_transport_vtable curl_vtable = {.send = curl_send, .free = curl_transport_free};

gm_transport *gm_transport_curl_new(const gm_transport_options *opts, gm_error *err)
{
    pthread_once(&global_once, global_init);
    curl_transport *t = calloc(1, sizeof *t);
    if (!t) {
        gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    t->base.vt = &curl_vtable;
    if (opts)
        t->opts = *opts;
    if (!t->opts.connect_timeout_ms)
        t->opts.connect_timeout_ms = 5000;
    if (!t->opts.total_timeout_ms)
        t->opts.total_timeout_ms = 60000;
    if (opts && opts->ca_bundle && !(t->ca_bundle = strdup(opts->ca_bundle))) {
        free(t);
        gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    t->opts.ca_bundle = t->ca_bundle;
    pthread_mutex_init(&t->lock, NULL);
    return &t->base;
}
