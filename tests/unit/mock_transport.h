/* A test transport: serves queued canned responses and records the requests
 * it was sent. For unit tests only. */
#ifndef GM_MOCK_TRANSPORT_H
#define GM_MOCK_TRANSPORT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "aws/http.h"

#define MOCK_MAX 32

typedef struct mock_reply {
    gm_status fail; /* GM_OK: answer with status/body; else this transport error */
    long status;
    const char *body;
    const char *headers[4]; /* "Name: value" */
} mock_reply;

typedef struct mock_transport {
    gm_transport base;
    mock_reply replies[MOCK_MAX];
    int n_replies;
    int next;
    /* recorded requests */
    char *methods[MOCK_MAX];
    char *urls[MOCK_MAX];
    char *bodies[MOCK_MAX];
    gm_headers headers[MOCK_MAX];
    int n_requests;
    const mock_reply *fallback; /* answers when the queue is empty (NULL: an error) */
} mock_transport;

static gm_status mock_send(gm_transport *t, const gm_http_request *req, gm_http_response *resp,
                           gm_error *err)
{
    mock_transport *m = (mock_transport *)t;
    if (m->n_requests < MOCK_MAX) {
        int i = m->n_requests++;
        m->methods[i] = strdup(req->method);
        m->urls[i] = strdup(req->url);
        m->bodies[i] = strdup(gm_buf_cstr(&req->body));
        gm_headers_init(&m->headers[i]);
        for (size_t k = 0; k < req->headers.count; k++)
            gm_ignore(gm_headers_add(&m->headers[i], req->headers.items[k].name,
                                     req->headers.items[k].value));
    }
    if (m->next >= m->n_replies && !m->fallback)
        return gm_error_set(err, GM_ERR_NETWORK, "mock transport: no reply queued");
    const mock_reply *r = m->next < m->n_replies ? &m->replies[m->next++] : m->fallback;
    if (r->fail != GM_OK)
        return gm_error_set(err, r->fail, "mock transport failure");
    resp->status = r->status;
    for (int k = 0; k < 4 && r->headers[k]; k++) {
        char name[128];
        const char *colon = strchr(r->headers[k], ':');
        size_t n = (size_t)(colon - r->headers[k]);
        memcpy(name, r->headers[k], n);
        name[n] = '\0';
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        gm_ignore(gm_headers_add(&resp->headers, name, v));
    }
    if (r->body && gm_buf_appends(&resp->body, r->body) != GM_OK)
        return gm_error_set(err, GM_ERR_LIMIT, "response body exceeds %zu bytes", resp->body.max);
    return GM_OK;
}

static void mock_free(gm_transport *t)
{
    mock_transport *m = (mock_transport *)t;
    for (int i = 0; i < m->n_requests; i++) {
        free(m->methods[i]);
        free(m->urls[i]);
        free(m->bodies[i]);
        gm_headers_release(&m->headers[i]);
    }
    free(m);
}

static const gm_transport_vtable mock_vtable = {.send = mock_send, .free = mock_free};

static mock_transport *mock_new(void)
{
    mock_transport *m = calloc(1, sizeof *m);
    m->base.vt = &mock_vtable;
    return m;
}

static inline void mock_push(mock_transport *m, mock_reply r)
{
    m->replies[m->n_replies++] = r;
}

/* An AWS client over the mock (taken by the client), with 1 ms backoff and
 * max_attempts attempts (0: the default). NULL, with the reason on stderr,
 * when it cannot be made. */
static inline gm_aws_client *mock_client(mock_transport *m, const char *region, int max_attempts)
{
    gm_aws_client_options o = {
        .region = region, .transport = &m->base, .retry_base_ms = 1, .max_attempts = max_attempts};
    gm_aws_client *c = NULL;
    gm_error err = {0};
    if (gm_aws_client_new(&o, &c, &err) != GM_OK)
        fprintf(stderr, "client: %s\n", err.message);
    return c;
}

#endif
