/* The health node: after the instance runs, wait until the stack's health
 * document says every service is healthy.
 *
 * Loopback rule: while the AWS endpoint is a loopback emulator, instance
 * addresses (fake public IPs) are never probed; the configured health endpoint
 * is probed when set, otherwise the check is skipped with a notice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "engine/nodes.h"
#include "health/health.h"

#define DEFAULT_HEALTH_TIMEOUT_MS (15 * 60 * 1000)

typedef struct wait_ctx {
    gm_node *n;
    char last[768];
} wait_ctx;

static bool on_progress(void *arg, const gm_health_progress *p)
{
    wait_ctx *w = arg;
    if (gm_node_interrupted(w->n))
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
        gm_node_detail(w->n, detail);
    }
    return true;
}

/* Records a verdict that needs no probe. */
static GM_MUST_CHECK gm_status health_done(gm_node *n, const char *verdict, gm_error *err)
{
    gm_status st = gm_node_set_output(n, "verdict", verdict, err);
    return st == GM_OK ? gm_node_created(n, verdict, err) : st;
}

static GM_MUST_CHECK gm_status health_create(gm_node *n, gm_error *err)
{
    if (gm_node_config(n)->no_wait) {
        gm_node_note(n, "not waiting for the stack to become healthy (--no-wait)");
        return gm_node_created(n, "not checked", err);
    }
    bool skip = false;
    char *url = NULL;
    /* The Elastic IP when the tier has one (the instance takes it at boot). */
    char *ip = gm_node_output_of(n, "eip", "public_ip");
    if (!ip || !*ip) {
        free(ip);
        ip = gm_node_output_of(n, GM_NODE_ASG, "public_ip");
    }
    char *endpoint = gm_aws_endpoint(gm_node_aws(n), &gm_svc_ec2);
    gm_health_target_kind kind = GM_HEALTH_TARGET_SKIP;
    gm_status st =
        gm_health_target(endpoint, ip, gm_node_settings(n)->health_endpoint, &kind, &url, err);
    skip = st == GM_OK && kind == GM_HEALTH_TARGET_SKIP;
    free(endpoint);
    free(ip);
    if (st == GM_OK && skip) {
        gm_node_note(n, "health check skipped: AWS is a local emulator and "
                        "GEUSEMAKER_HEALTH_ENDPOINT is not set");
        st = health_done(n, "skipped", err);
    }
    if (st != GM_OK || skip) {
        free(url);
        return st;
    }
    int64_t limit = gm_node_config(n)->health_timeout_ms;
    int64_t deadline = gm_now_ms() + (limit ? limit : DEFAULT_HEALTH_TIMEOUT_MS);
    if (deadline > gm_node_deadline_ms(n))
        deadline = gm_node_deadline_ms(n);
    wait_ctx w = {.n = n};
    gm_health_doc doc;
    memset(&doc, 0, sizeof doc);
    st = gm_node_set_output(n, "url", url, err);
    if (st == GM_OK)
        st = gm_health_wait(gm_aws_client_transport(gm_node_aws(n)), url, deadline,
                            (long)gm_node_settings(n)->health_poll_ms, on_progress, &w, &doc, err);
    free(url);
    if (st == GM_OK && gm_node_interrupted(n))
        st = gm_error_set(err, GM_ERR_INTERRUPTED, "interrupted while waiting for the stack");
    return st == GM_OK ? health_done(n, gm_health_state_name(doc.verdict), err) : st;
}

const gm_node_ops gm_ops_health = {
    .kind = "health",
    .label = "waiting for the stack to be healthy",
    .create = health_create,
};
