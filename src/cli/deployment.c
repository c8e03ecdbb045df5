#include "cli/deployment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/timeutil.h"

volatile sig_atomic_t gm_cli_interrupted;

static void on_interrupt(int sig)
{
    if (gm_cli_interrupted) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    gm_cli_interrupted = sig;
    static const char msg[] = "\ninterrupted: stopping at the next safe point "
                              "(press again to quit at once)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
}

int gm_cli_interrupt_exit_code(void)
{
    return gm_cli_interrupted == SIGTERM ? GM_EXIT_SIGTERM : GM_EXIT_SIGINT;
}

void gm_cli_install_interrupt_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool gm_cli_show_progress(const gm_cli *cli)
{
    return !cli->verbose && (cli->output != GM_OUTPUT_JSON || cli->term.tty);
}

void gm_cli_progress_observer(void *ctx, const gm_engine_event *ev)
{
    gm_progress *p = ctx;
    switch (ev->kind) {
    case GM_EVENT_STEP_START: gm_progress_start(p, ev->step, ev->text); break;
    case GM_EVENT_STEP_DETAIL: gm_progress_detail(p, ev->step, ev->text); break;
    case GM_EVENT_STEP_DONE: gm_progress_done(p, ev->step, ev->text); break;
    case GM_EVENT_STEP_FAILED: gm_progress_fail(p, ev->step, ev->text); break;
    case GM_EVENT_STEP_SKIPPED: gm_progress_skip(p, ev->step, ev->text); break;
    case GM_EVENT_NOTE: gm_progress_note(p, "%s", ev->text); break;
    }
}

gm_status gm_cli_open_locked(gm_cli *cli, const char *name, gm_store **out_store,
                             gm_lock **out_lock, gm_error *err)
{
    *out_store = NULL;
    *out_lock = NULL;
    gm_status st = gm_store_open(NULL, out_store, err);
    if (st != GM_OK)
        return st;
    st = gm_store_lock(*out_store, name, out_lock, err);
    if (st != GM_OK) {
        gm_store_free(*out_store);
        *out_store = NULL;
        return st;
    }
    char *log = gm_store_log_path(*out_store, name);
    if (log) {
        gm_error lerr = {0};
        if (gm_log_open(log, &lerr) != GM_OK)
            fprintf(stderr, "warning: %s\n", lerr.message);
        gm_log_set_deployment(name);
    }
    free(log);
    (void)cli;
    return GM_OK;
}

gm_status gm_cli_session_open(gm_cli *cli, const char *name, gm_cli_session *s)
{
    s->cli = cli;
    s->name = name;
    s->t0 = gm_now_ms();
    gm_status st = gm_engine_check_name(name, &s->err);
    if (st == GM_OK)
        st = gm_cli_engine_settings(&s->settings, &s->err);
    if (st == GM_OK)
        st = gm_cli_open_locked(cli, name, &s->store, &s->lock, &s->err);
    if (st == GM_OK)
        st = gm_cli_load_record(s->store, name, &s->dep, &s->err);
    return st;
}

gm_status gm_cli_session_connect(gm_cli_session *s)
{
    if (!s->cli->region)
        s->cli->region = s->dep->region;
    return gm_cli_aws_client(s->cli, &s->aws, &s->err);
}

gm_engine_options gm_cli_session_engine(gm_cli_session *s, const char *title)
{
    gm_cli_install_interrupt_handlers();
    s->progress = gm_progress_new(&s->cli->term, gm_cli_show_progress(s->cli), title);
    return (gm_engine_options){.aws = s->aws,
                               .store = s->store,
                               .observer = gm_cli_progress_observer,
                               .observer_ctx = s->progress,
                               .interrupt = &gm_cli_interrupted,
                               .settings = s->settings};
}

void gm_cli_session_done(gm_cli_session *s)
{
    gm_progress_free(s->progress);
    s->progress = NULL;
}

int gm_cli_session_close(gm_cli_session *s, gm_status st, int rc)
{
    if (st != GM_OK)
        rc = gm_cli_fail(s->cli, st, &s->err);
    if (st != GM_OK && gm_cli_interrupted) /* stopped by a signal: say which */
        rc = gm_cli_interrupt_exit_code();
    gm_cli_session_done(s);
    gm_deployment_free(s->dep);
    gm_aws_client_free(s->aws);
    gm_lock_release(s->lock);
    gm_store_free(s->store);
    gm_log_close();
    return rc;
}

json_t *gm_cli_deployment_json(const gm_deployment *dep)
{
    json_t *resources = json_object();
    for (size_t i = 0; i < dep->n_nodes; i++) {
        const gm_node_state *n = &dep->nodes[i];
        json_t *r = json_pack("{s:s, s:s?, s:s, s:s}", "kind", n->kind, "id", n->id, "status",
                              gm_node_status_name(n->status), "provenance",
                              n->provenance == GM_PROV_REUSED ? "reused" : "created");
        if (json_object_size(n->outputs))
            json_object_set(r, "outputs", n->outputs);
        if (n->error)
            json_object_set_new(r, "error", json_string(n->error));
        json_object_set_new(resources, n->name, r);
    }
    char created[32];
    gm_time_iso8601((time_t)(dep->created_at / 1000), created);
    return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:o, s:o, s:O}", "name", dep->name, "tier",
                     dep->tier, "region", dep->region, "status", gm_dep_status_name(dep->status),
                     "status_reason", dep->status_reason, "created_at", created, "resources",
                     resources, "endpoints", gm_engine_endpoints(dep), "cost", dep->cost);
}

/* What to do after a deploy: where the stack is, the login, the
 * certificate, the internal services, and how to stop paying. */
static void print_next_steps(const gm_deployment *dep, const json_t *ep)
{
    const char *n8n = json_string_value(json_object_get(ep, "n8n"));
    const char *lb = json_string_value(json_object_get(ep, "load_balancer"));
    printf("\nNext steps:\n");
    if (n8n)
        printf("  1. Open n8n at %s and create the owner account on the first visit.\n", n8n);
    else
        printf("  1. The instance has no address yet: 'geusemaker status %s' shows it when it "
               "has one.\n",
               dep->name);
    if (!lb || strncmp(lb, "https://", 8) != 0)
        printf("     The certificate is self-signed (made on the instance): the browser warns "
               "once;\n     check the address is yours, then accept it.\n");
    printf("  2. Passwords and API tokens of the services (Qdrant, Crawl4AI, Ollama, PostgreSQL):\n"
           "     geusemaker secrets %s --yes\n",
           dep->name);
    printf("  3. Health of each service: geusemaker health %s; cost so far: geusemaker cost %s\n",
           dep->name, dep->name);
    printf("  4. Stop paying: geusemaker destroy %s (deletes everything, the EFS data too;\n"
           "     --keep-efs keeps the file system and its data)\n",
           dep->name);
}

/* The group's last activities from the live look (launches, terminations and
 * their causes: how the instance got replaced). */
static void print_activities(const json_t *group_live)
{
    const json_t *acts = json_object_get(group_live, "activities");
    if (!json_array_size(acts))
        return;
    printf("Activity:    (newest first; Auto Scaling's own account)\n");
    size_t i;
    const json_t *a;
    json_array_foreach (acts, i, a) {
        const char *msg = json_string_value(json_object_get(a, "message"));
        printf("  %-20.20s %-11s %s%s%s\n", json_string_value(json_object_get(a, "start")),
               json_string_value(json_object_get(a, "status")),
               json_string_value(json_object_get(a, "description")), msg ? ": " : "",
               msg ? msg : "");
        const char *cause = json_string_value(json_object_get(a, "cause"));
        if (cause && *cause)
            printf("  %-20s %-11s cause: %s\n", "", "", cause);
    }
}

/* The instance the Auto Scaling group runs and how it got there (with the
 * group's live look: since when, and its last activities). */
static void print_instance(const gm_deployment *dep, const json_t *live)
{
    gm_engine_summary sum;
    gm_engine_summary_of(dep, &sum);
    if (!sum.instance_id && !sum.group)
        return;
    printf("Instance:    %s (%s, %s%s%s)", sum.instance_id ? sum.instance_id : "none in service",
           sum.instance_type ? sum.instance_type : "?", sum.market ? sum.market : "?",
           sum.az ? " in " : "", sum.az ? sum.az : "");
    if (sum.group)
        printf(" of Auto Scaling group %s", sum.group);
    const json_t *group_live = json_object_get(live, "asg");
    const char *since = json_string_value(json_object_get(group_live, "since"));
    if (since)
        printf(", since %s", since);
    printf("\n");
    print_activities(group_live);
    if (sum.refused)
        printf("Launches:    %zu refused (last: %s)%s%s\n", sum.refused, sum.last_refusal,
               sum.market_switch ? "; " : "", sum.market_switch ? sum.market_switch : "");
}

/* The Status line: the record's status, or with a verdict (status) the
 * deployment's health, why, and what the record says when that differs. */
static void print_status_line(const gm_term *out, const gm_deployment *dep,
                              const gm_live_verdict *v)
{
    char styled[96];
    const char *status = gm_dep_status_name(dep->status);
    const char *word = v ? gm_live_health_name(v->health) : status;
    const char *sgr = gm_term_state_sgr(word);
    printf("Status:      %s", sgr ? gm_term_style(out, sgr, word, styled, sizeof styled) : word);
    if (!v) {
        printf("%s%s\n", dep->status_reason ? ": " : "",
               dep->status_reason ? dep->status_reason : "");
        return;
    }
    if (v->health == GM_LIVE_HEALTHY)
        printf(" (%s: every resource is there, the instance is running)\n", status);
    else if (v->health == GM_LIVE_DEGRADED || v->health == GM_LIVE_UNKNOWN)
        printf(": %s (the record says %s)\n", v->reason, status);
    else
        printf(": %s\n", v->reason);
}

/* The record (and with live, the live look and the verdict) as text or as
 * one JSON document. */
static void print_deployment(gm_cli *cli, const gm_deployment *dep, json_t *live,
                             const gm_live_verdict *verdict, int64_t duration_ms)
{
    json_t *o = gm_cli_deployment_json(dep);
    if (verdict) {
        json_object_set_new(o, "health", json_string(gm_live_health_name(verdict->health)));
        json_object_set_new(o, "health_reason",
                            *verdict->reason ? json_string(verdict->reason) : json_null());
    }
    if (live)
        json_object_set(o, "live", live);
    if (duration_ms >= 0)
        json_object_set_new(o, "duration_s", json_real((double)duration_ms / 1000.0));
    if (cli->output == GM_OUTPUT_JSON) {
        gm_cli_print_json(o);
        return;
    }
    printf("Deployment:  %s (tier %s, region %s)\n", dep->name, dep->tier, dep->region);
    gm_term out;
    gm_term_init(&out, stdout, cli->no_color);
    char styled[96], styled2[320];
    print_status_line(&out, dep, verdict);
    if (duration_ms >= 0)
        printf("Duration:    %.1fs\n", (double)duration_ms / 1000.0);
    print_instance(dep, live);
    printf("Resources:\n");
    for (size_t i = 0; i < dep->n_nodes; i++) {
        const gm_node_state *n = &dep->nodes[i];
        json_t *l = live ? json_object_get(live, n->name) : NULL;
        char drift[256] = "";
        size_t k;
        json_t *d;
        json_array_foreach (json_object_get(l, "drift"), k, d) {
            size_t used = strlen(drift);
            snprintf(drift + used, sizeof drift - used, "%s%s",
                     used ? ", " : "  DRIFT: ", json_string_value(d));
        }
        const char *state = json_string_value(json_object_get(l, "state"));
        if (!state && l)
            state = json_is_true(json_object_get(l, "exists")) ? "exists" : "missing";
        const char *live_sgr = *drift ? "31" : gm_term_state_sgr(state);
        printf("  %-17s %-24s %-8s %s%s%s%s\n", n->name, n->id ? n->id : "-",
               gm_node_status_name(n->status), n->provenance == GM_PROV_REUSED ? "(reused) " : "",
               state ? "live: " : "",
               state && live_sgr ? gm_term_style(&out, live_sgr, state, styled, sizeof styled)
               : state           ? state
                                 : "",
               *drift ? gm_term_style(&out, "1;31", drift, styled2, sizeof styled2) : "");
    }
    json_t *ep = json_object_get(o, "endpoints");
    if (json_object_size(ep)) {
        printf("Endpoints:\n");
        const char *k;
        json_t *v;
        json_object_foreach (ep, k, v)
            printf("  %-8s %s\n", k, json_string_value(v));
        printf("  (tunnels through SSM: geusemaker connect %s --service "
               "n8n|ollama|qdrant|crawl4ai)\n",
               dep->name);
    }
    json_t *cost = dep->cost;
    if (json_object_size(cost))
        printf("Cost:        $%.4f/hour, $%.2f/day, $%.2f/month (estimate; %s)\n",
               json_number_value(json_object_get(cost, "hourly")),
               json_number_value(json_object_get(cost, "daily")),
               json_number_value(json_object_get(cost, "monthly")),
               json_string_value(json_object_get(cost, "source")));
    if (duration_ms >= 0 && (dep->status == GM_DEP_RUNNING || dep->status == GM_DEP_PARTIAL))
        print_next_steps(dep, ep);
    json_decref(o);
}

void gm_cli_print_deployment(gm_cli *cli, const gm_deployment *dep, json_t *live,
                             int64_t duration_ms)
{
    print_deployment(cli, dep, live, NULL, duration_ms);
}

void gm_cli_print_status(gm_cli *cli, const gm_deployment *dep, json_t *live,
                         const gm_live_verdict *verdict)
{
    print_deployment(cli, dep, live, verdict, -1);
}

gm_status gm_cli_load_record(gm_store *store, const char *name, gm_deployment **out, gm_error *err)
{
    gm_status st = gm_store_load(store, name, out, err);
    if (st != GM_ERR_NOT_FOUND)
        return st;
    /* A name with no record is bad input: nothing was done. */
    if (err && err->status == GM_ERR_NOT_FOUND) {
        err->status = GM_ERR_INVALID;
        size_t n = strlen(err->message);
        snprintf(err->message + n, sizeof err->message - n,
                 "; 'geusemaker list' shows the deployments here");
    }
    return GM_ERR_INVALID;
}

gm_status gm_cli_open_deployment(gm_cli *cli, const char *name, gm_store **out_store,
                                 gm_deployment **out_dep, gm_aws_client **out_aws, gm_error *err)
{
    gm_status st = gm_engine_check_name(name, err);
    if (st == GM_OK)
        st = gm_store_open(NULL, out_store, err);
    if (st == GM_OK)
        st = gm_cli_load_record(*out_store, name, out_dep, err);
    if (st == GM_OK && !cli->region)
        cli->region = (*out_dep)->region;
    if (st == GM_OK && out_aws)
        st = gm_cli_aws_client(cli, out_aws, err);
    return st;
}
