/* The health node: after the instance runs, wait until the stack's health
 * document says every service is healthy.
 *
 * Loopback rule: while the AWS endpoint is a loopback emulator, instance
 * addresses (fake public IPs) are never probed; GEUSEMAKER_HEALTH_ENDPOINT is
 * probed when set, otherwise the check is skipped with a notice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "engine/internal.h"
#include "health/health.h"

typedef struct wait_ctx {
    gm_engine *e;
    gm_node_run *n;
    char last[768];
} wait_ctx;

static bool on_progress(void *arg, const gm_health_progress *p)
{
    wait_ctx *w = arg;
    if (w->e->interrupt && *w->e->interrupt)
        return false;
    char detail[sizeof w->last];
    if (p->status == GM_OK && p->doc)
        snprintf(detail, sizeof detail, "%s%s%.512s", gm_health_state_name(p->doc->verdict),
                 *p->doc->reason ? ": " : "", p->doc->reason);
    else
        snprintf(detail, sizeof detail, "not answering yet (%.600s)",
                 p->error ? p->error : "no answer");
    if (strcmp(detail, w->last) != 0) {
        snprintf(w->last, sizeof w->last, "%s", detail);
        if (w->e->progress)
            gm_progress_detail(w->e->progress, w->n->def->name, detail);
    }
    return true;
}

static gm_status health_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    if (e->cfg->no_wait) {
        gm_e_event(e, n, "not waiting for the stack to become healthy (--no-wait)");
        return gm_e_journal_id(e, n, "not checked", err);
    }
    char *endpoint = gm_aws_endpoint(e->aws, &gm_svc_ec2);
    char *ip = gm_e_output(e, "instance", "public_ip");
    gm_health_target_kind kind;
    char *url = NULL;
    gm_status st = gm_health_target(endpoint, ip, getenv(GM_HEALTH_ENDPOINT_ENV), &kind, &url, err);
    free(endpoint);
    free(ip);
    if (st != GM_OK)
        return st;
    if (kind == GM_HEALTH_TARGET_SKIP) {
        free(url);
        gm_e_event(e, n,
                   "health check skipped: AWS is a local emulator and "
                   "GEUSEMAKER_HEALTH_ENDPOINT is not set");
        gm_e_set_output(e, n, "verdict", "skipped");
        return gm_e_journal_id(e, n, "skipped", err);
    }
    int64_t limit = e->cfg->health_timeout_ms ? e->cfg->health_timeout_ms : 15 * 60 * 1000;
    int64_t deadline = gm_now_ms() + limit;
    if (deadline > e->deadline_ms)
        deadline = e->deadline_ms;
    const char *poll_env = getenv("GEUSEMAKER_HEALTH_POLL_MS");
    long poll = poll_env && atol(poll_env) > 0 ? atol(poll_env) : 0;
    wait_ctx w = {.e = e, .n = n};
    gm_health_doc doc;
    memset(&doc, 0, sizeof doc);
    gm_e_set_output(e, n, "url", url);
    st = gm_health_wait(gm_aws_client_transport(e->aws), url, deadline, poll, on_progress, &w, &doc,
                        err);
    free(url);
    if (st == GM_OK && e->interrupt && *e->interrupt)
        st = gm_error_set(err, GM_ERR_CONFLICT, "interrupted while waiting for the stack");
    if (st != GM_OK)
        return st;
    gm_e_set_output(e, n, "verdict", gm_health_state_name(doc.verdict));
    return gm_e_journal_id(e, n, gm_health_state_name(doc.verdict), err);
}

const gm_node_ops gm_ops_health = {
    "health", "waiting for the stack to be healthy", false, health_create, NULL, NULL, NULL};
