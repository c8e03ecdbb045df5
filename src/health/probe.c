/* The health probe: fetch the document once, wait until healthy, and choose
 * what to probe (the loopback rule). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/str.h"
#include "core/timeutil.h"
#include "health/health.h"

#ifndef GM_VERSION
#define GM_VERSION "dev"
#endif

/* RFC 7231 IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"; -1 when malformed. */
static time_t parse_http_date(const char *s)
{
    if (!s)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    return timegm(&tm);
}

gm_status gm_health_fetch(gm_transport *t, const char *url, long timeout_ms, gm_health_doc *out,
                          gm_error *err)
{
    if (!t || !url || !out)
        return gm_error_set(err, GM_ERR_INVALID, "missing health probe argument");
    if (timeout_ms <= 0)
        return gm_error_set(err, GM_ERR_TIMEOUT, "no time left to probe '%s'", url);
    gm_http_request req;
    gm_http_response resp;
    gm_http_request_init(&req);
    gm_http_response_init(&resp);
    resp.body.max = GM_HEALTH_DOC_MAX;
    gm_error terr = {0};
    gm_status st = gm_http_request_setup(&req, "GET", url);
    if (st == GM_OK)
        st = gm_headers_set(&req.headers, "Accept", "application/json");
    if (st == GM_OK)
        st = gm_headers_set(&req.headers, "User-Agent", "geusemaker/" GM_VERSION " health");
    if (st != GM_OK) {
        gm_http_request_release(&req);
        gm_http_response_release(&resp);
        return gm_error_set(err, st, "cannot build the health request for '%s'", url);
    }
    req.total_timeout_ms = timeout_ms;
    req.connect_timeout_ms = timeout_ms < 5000 ? timeout_ms : 5000;
    int64_t started = gm_now_ms();
    st = gm_transport_send(t, &req, &resp, &terr);
    if (st != GM_OK) {
        switch (st) {
        case GM_ERR_TIMEOUT:
            gm_error_set(err, st, "health endpoint '%s' did not answer within %ld ms", url,
                         timeout_ms);
            break;
        case GM_ERR_LIMIT:
            gm_error_set(err, st, "health document from '%s' exceeds %u bytes", url,
                         GM_HEALTH_DOC_MAX);
            break;
        default:
            gm_error_set(err, st, "cannot reach health endpoint '%s': %s", url,
                         *terr.message ? terr.message : gm_status_name(st));
            break;
        }
    } else if (resp.status == 404) {
        st = gm_error_set(err, GM_ERR_NOT_FOUND,
                          "no health document at '%s' (HTTP 404): the instance has not "
                          "published it yet",
                          url);
        if (err)
            err->http_status = resp.status;
    } else if (resp.status != 200) {
        st = gm_error_set(err, GM_ERR_NETWORK, "health endpoint '%s' answered HTTP %ld", url,
                          resp.status);
        if (err)
            err->http_status = resp.status;
    } else {
        gm_health_doc doc;
        gm_error perr = {0};
        st = gm_health_parse(resp.body.data, resp.body.len, &doc, &perr);
        if (st != GM_OK) {
            gm_error_set(err, st, "malformed health document from '%s': %s", url, perr.message);
        } else {
            time_t server_now = parse_http_date(gm_headers_get(&resp.headers, "Date"));
            if (server_now > 0)
                gm_health_apply_age(&doc, server_now, GM_HEALTH_STALE_S);
            *out = doc;
        }
    }
    /* A transport that ignores timeouts still may not hand back a late answer as fresh. */
    if (st == GM_OK && gm_now_ms() - started > timeout_ms + 1000)
        st = gm_error_set(err, GM_ERR_TIMEOUT, "health endpoint '%s' did not answer within %ld ms",
                          url, timeout_ms);
    gm_http_request_release(&req);
    gm_http_response_release(&resp);
    return st;
}

gm_status gm_health_wait(gm_transport *t, const char *url, int64_t deadline_ms,
                         long poll_interval_ms, gm_health_progress_fn progress, void *ctx,
                         gm_health_doc *out, gm_error *err)
{
    if (!out)
        return gm_error_set(err, GM_ERR_INVALID, "missing health document");
    memset(out, 0, sizeof *out);
    out->age_s = -1;
    if (poll_interval_ms <= 0)
        poll_interval_ms = GM_HEALTH_POLL_MS;
    const int64_t start = gm_now_ms();
    bool have_doc = false;
    gm_error last = {0};
    int attempt = 0;
    for (;;) {
        int64_t remaining = deadline_ms - gm_now_ms();
        if (remaining <= 0)
            break;
        long timeout = remaining < GM_HEALTH_REQUEST_TIMEOUT_MS ? (long)remaining
                                                                : GM_HEALTH_REQUEST_TIMEOUT_MS;
        gm_health_doc doc;
        gm_error e = {0};
        gm_status st = gm_health_fetch(t, url, timeout, &doc, &e);
        attempt++;
        if (st == GM_OK) {
            *out = doc;
            have_doc = true;
        } else {
            last = e;
        }
        if (progress) {
            int64_t now = gm_now_ms();
            gm_health_progress p = {
                .attempt = attempt,
                .elapsed_ms = now - start,
                .remaining_ms = deadline_ms > now ? deadline_ms - now : 0,
                .status = st,
                .error = st == GM_OK ? NULL : e.message,
                .doc = st == GM_OK ? out : NULL,
            };
            if (!progress(ctx, &p)) {
                if (st == GM_OK)
                    return GM_OK;
                if (err && !err->status)
                    *err = e;
                return st;
            }
        }
        if (st == GM_OK && out->verdict == GM_HEALTH_HEALTHY)
            return GM_OK;
        remaining = deadline_ms - gm_now_ms();
        if (remaining <= 0)
            break;
        gm_sleep_ms(remaining < poll_interval_ms ? remaining : poll_interval_ms);
    }
    long waited_s = (long)((gm_now_ms() - start + 500) / 1000);
    if (have_doc)
        return gm_error_set(err, GM_ERR_TIMEOUT, "the stack was not healthy after %ld s (%s): %s",
                            waited_s, gm_health_state_name(out->verdict),
                            *out->reason ? out->reason : "no reason given");
    if (attempt == 0)
        return gm_error_set(err, GM_ERR_TIMEOUT,
                            "no time left to probe '%s': the deadline had passed", url);
    return gm_error_set(err, GM_ERR_TIMEOUT,
                        "no health document from '%s' after %ld s and %d attempts: %s", url,
                        waited_s, attempt, *last.message ? last.message : "no answer");
}

static bool is_http_url(const char *u)
{
    return gm_str_startswith(u, "http://") || gm_str_startswith(u, "https://");
}

gm_status gm_health_target(const char *aws_endpoint, const char *instance_host,
                           const char *override, gm_health_target_kind *out_kind, char **out_url,
                           gm_error *err)
{
    *out_url = NULL;
    *out_kind = GM_HEALTH_TARGET_SKIP;
    if (override && *override) {
        if (!is_http_url(override))
            return gm_error_set(err, GM_ERR_INVALID,
                                "invalid " GM_HEALTH_ENDPOINT_ENV " '%s': expected an http:// or "
                                "https:// URL",
                                override);
        const char *after = strstr(override, "://") + 3;
        const char *slash = strchr(after, '/');
        bool has_path = slash && slash[1] != '\0';
        char *url;
        if (has_path)
            url = gm_strdup(override);
        else
            url = gm_strfmt("%.*s%s", (int)(slash ? (size_t)(slash - override) : strlen(override)),
                            override, GM_HEALTH_DOC_PATH);
        if (!url)
            return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        *out_url = url;
        *out_kind = GM_HEALTH_TARGET_OVERRIDE;
        return GM_OK;
    }
    if (aws_endpoint && *aws_endpoint && gm_url_is_loopback(aws_endpoint))
        return GM_OK; /* an emulator's instance addresses are not real: never probe them */
    if (!instance_host || !*instance_host)
        return GM_OK;
    for (const char *c = instance_host; *c; c++)
        if (*c == '/' || *c == '@' || *c == '?' || *c == '#' || *c == ' ')
            return gm_error_set(err, GM_ERR_INVALID, "invalid instance address '%s'",
                                instance_host);
    bool v6 = strchr(instance_host, ':') != NULL && instance_host[0] != '[';
    char *url = gm_strfmt(v6 ? "http://[%s]%s" : "http://%s%s", instance_host, GM_HEALTH_DOC_PATH);
    if (!url)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    *out_url = url;
    *out_kind = GM_HEALTH_TARGET_INSTANCE;
    return GM_OK;
}
