#include "aws/http.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/str.h"

void gm_headers_init(gm_headers *h)
{
    h->items = NULL;
    h->count = 0;
    h->cap = 0;
}

void gm_headers_release(gm_headers *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->count; i++) {
        free(h->items[i].name);
        free(h->items[i].value);
    }
    free(h->items);
    gm_headers_init(h);
}

gm_status gm_headers_add(gm_headers *h, const char *name, const char *value)
{
    if (h->count == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        gm_header *n = realloc(h->items, cap * sizeof *n);
        if (!n)
            return GM_ERR_NOMEM;
        h->items = n;
        h->cap = cap;
    }
    char *nm = strdup(name), *val = strdup(value ? value : "");
    if (!nm || !val) {
        free(nm);
        free(val);
        return GM_ERR_NOMEM;
    }
    h->items[h->count].name = nm;
    h->items[h->count].value = val;
    h->count++;
    return GM_OK;
}

void gm_headers_remove(gm_headers *h, const char *name)
{
    size_t j = 0;
    for (size_t i = 0; i < h->count; i++) {
        if (strcasecmp(h->items[i].name, name) == 0) {
            free(h->items[i].name);
            free(h->items[i].value);
        } else {
            h->items[j++] = h->items[i];
        }
    }
    h->count = j;
}

gm_status gm_headers_set(gm_headers *h, const char *name, const char *value)
{
    gm_headers_remove(h, name);
    return gm_headers_add(h, name, value);
}

const char *gm_headers_get(const gm_headers *h, const char *name)
{
    for (size_t i = 0; i < h->count; i++)
        if (strcasecmp(h->items[i].name, name) == 0)
            return h->items[i].value;
    return NULL;
}

void gm_http_request_init(gm_http_request *req)
{
    memset(req, 0, sizeof *req);
    gm_headers_init(&req->headers);
    gm_buf_init(&req->body, GM_LIMIT_REQUEST_BODY);
}

void gm_http_request_release(gm_http_request *req)
{
    if (!req)
        return;
    free(req->method);
    free(req->url);
    req->method = req->url = NULL;
    gm_headers_release(&req->headers);
    gm_buf_release(&req->body);
}

gm_status gm_http_request_setup(gm_http_request *req, const char *method, const char *url)
{
    if (gm_str_set(&req->method, method) != GM_OK || gm_str_set(&req->url, url) != GM_OK)
        return GM_ERR_NOMEM;
    return GM_OK;
}

void gm_http_response_init(gm_http_response *resp)
{
    resp->status = 0;
    gm_headers_init(&resp->headers);
    gm_buf_init(&resp->body, GM_LIMIT_RESPONSE_BODY);
}

void gm_http_response_release(gm_http_response *resp)
{
    if (!resp)
        return;
    gm_headers_release(&resp->headers);
    gm_buf_release(&resp->body);
    resp->status = 0;
}

void gm_http_response_reset(gm_http_response *resp)
{
    gm_headers_release(&resp->headers);
    gm_buf_reset(&resp->body);
    resp->status = 0;
}

gm_status gm_url_split(const char *url, char **out_scheme, char **out_host_header, char **out_path,
                       char **out_query, gm_error *err)
{
    const char *sep = url ? strstr(url, "://") : NULL;
    if (!sep || sep == url)
        return gm_error_set(err, GM_ERR_INVALID, "malformed url '%s': no scheme",
                            url ? url : "(null)");
    const char *host = sep + 3;
    size_t hlen = strcspn(host, "/?#");
    if (hlen == 0)
        return gm_error_set(err, GM_ERR_INVALID, "malformed url '%s': no host", url);
    if (memchr(host, '@', hlen))
        return gm_error_set(err, GM_ERR_INVALID,
                            "malformed url '%s': credentials in urls are not supported", url);
    char *scheme = strndup(url, (size_t)(sep - url));
    char *hosthdr = strndup(host, hlen);
    const char *rest = host + hlen;
    size_t plen = strcspn(rest, "?#");
    char *path = plen ? strndup(rest, plen) : strdup("/");
    const char *q = rest + plen;
    char *query = *q == '?' ? strndup(q + 1, strcspn(q + 1, "#")) : strdup("");
    if (!scheme || !hosthdr || !path || !query) {
        free(scheme);
        free(hosthdr);
        free(path);
        free(query);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    for (char *p = scheme; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    /* Drop a default port from the Host header. */
    size_t n = strlen(hosthdr);
    if ((strcmp(scheme, "https") == 0 && gm_str_endswith(hosthdr, ":443")) ||
        (strcmp(scheme, "http") == 0 && gm_str_endswith(hosthdr, ":80"))) {
        char *colon = strrchr(hosthdr, ':');
        if (colon && hosthdr[n - 1] != ']')
            *colon = '\0';
    }
#define GM_HANDOUT(out, v) \
    do {                   \
        if (out)           \
            *(out) = (v);  \
        else               \
            free(v);       \
    } while (0)
    GM_HANDOUT(out_scheme, scheme);
    GM_HANDOUT(out_host_header, hosthdr);
    GM_HANDOUT(out_path, path);
    GM_HANDOUT(out_query, query);
#undef GM_HANDOUT
    return GM_OK;
}

gm_status gm_url_check_http(const char *url, const char *what, gm_error *err)
{
    const char *rest = NULL;
    if (url && strncasecmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (url && strncasecmp(url, "https://", 8) == 0)
        rest = url + 8;
    if (!rest)
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid %s '%.200s': expected an http:// or https:// url such as "
                            "'https://ec2.us-east-1.amazonaws.com' or 'http://127.0.0.1:5000'",
                            what, url ? url : "");
    size_t host = strcspn(rest, "/?#");
    if (host == 0 || rest[0] == ':' || memchr(rest, '@', host) || memchr(rest, ' ', host))
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid %s '%.200s': the url has no usable host (expected "
                            "'http://HOST[:PORT]')",
                            what, url);
    return GM_OK;
}

bool gm_url_is_loopback(const char *url)
{
    char *hosthdr = NULL;
    if (gm_url_split(url, NULL, &hosthdr, NULL, NULL, NULL) != GM_OK || !hosthdr)
        return false;
    char *host = hosthdr;
    if (*host == '[') {
        host++;
        char *end = strchr(host, ']');
        if (end)
            *end = '\0';
    } else {
        char *colon = strrchr(host, ':');
        if (colon)
            *colon = '\0';
    }
    bool loop = false;
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0 || gm_str_endswith(host, ".localhost"))
        loop = true;
    else if (inet_pton(AF_INET, host, &a4) == 1)
        loop = (ntohl(a4.s_addr) >> 24) == 127;
    else if (inet_pton(AF_INET6, host, &a6) == 1)
        loop = IN6_IS_ADDR_LOOPBACK(&a6);
    free(hosthdr);
    return loop;
}
