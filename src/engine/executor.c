/* The executor: runs a graph forwards (deploy: a thread per node whose
 * dependencies are done) and backwards (rollback, destroy: a node goes once
 * every node depending on it is gone), and the engine's entry points. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "engine/nodes.h"
#include "engine/run.h"

#define DEFAULT_POLL_MS 2000
#define DEFAULT_DESTROY_TIMEOUT_MS (20 * 60 * 1000)
#define DEFAULT_DEPLOY_TIMEOUT_MS (30 * 60 * 1000)
#define INSPECT_TIMEOUT_MS (5 * 60 * 1000)

static bool interrupted(const gm_run *r)
{
    return r->interrupt && *r->interrupt;
}

static int find_node(const gm_run *r, const char *name)
{
    for (size_t i = 0; i < r->n_nodes; i++)
        if (strcmp(r->nodes[i].def->name, name) == 0)
            return (int)i;
    return -1;
}

/* Links every node to its dependencies; a dependency must come earlier in
 * the graph (so forward order is a topological order). */
static GM_MUST_CHECK gm_status link_graph(gm_run *r, gm_error *err)
{
    for (size_t i = 0; i < r->n_nodes; i++) {
        gm_node *n = &r->nodes[i];
        if (!n->def->ops || !n->def->ops->create)
            return gm_error_set(err, GM_ERR_INTERNAL, "graph node '%s' has no implementation",
                                n->def->name);
        for (int k = 0; k < GM_MAX_DEPS && n->def->deps[k]; k++) {
            int d = find_node(r, n->def->deps[k]);
            if (d < 0 || (size_t)d >= i)
                return gm_error_set(err, GM_ERR_INTERNAL,
                                    "graph node '%s' depends on '%s', which is not before it",
                                    n->def->name, n->def->deps[k]);
            n->deps[n->n_deps++] = d;
        }
    }
    return GM_OK;
}

static void settings_defaults(gm_engine_settings *s)
{
    if (s->poll_ms <= 0)
        s->poll_ms = DEFAULT_POLL_MS;
    if (s->destroy_timeout_ms <= 0)
        s->destroy_timeout_ms = DEFAULT_DESTROY_TIMEOUT_MS;
}

static GM_MUST_CHECK gm_status run_init(gm_run *r, const gm_engine_options *o,
                                        const gm_deploy_config *cfg, gm_deployment *dep,
                                        int64_t timeout_ms, gm_error *err)
{
    memset(r, 0, sizeof *r);
    r->aws = o->aws;
    r->pricing = o->pricing;
    r->store = o->store;
    r->observer = o->observer;
    r->observer_ctx = o->observer_ctx;
    r->interrupt = o->interrupt;
    r->settings = o->settings;
    settings_defaults(&r->settings);
    r->cfg = cfg;
    r->dep = dep;
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->io_lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->deadline_ms = gm_now_ms() + timeout_ms;
    r->only_group = -1;
    if (!gm_tier_parse(dep->tier, &r->tier))
        return gm_error_set(err, GM_ERR_PARSE, "deployment '%s' has an unknown tier '%s'",
                            dep->name, dep->tier);
    const gm_engine_graph *g = o->graph ? o->graph : gm_engine_tier_graph(r->tier);
    r->nodes = calloc(g->n ? g->n : 1, sizeof *r->nodes);
    if (!r->nodes)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    r->n_nodes = g->n;
    for (size_t i = 0; i < g->n; i++) {
        r->nodes[i].def = &g->defs[i];
        r->nodes[i].run = r;
    }
    return link_graph(r, err);
}

static void run_release(gm_run *r)
{
    gm_run_release_shared(r);
    free(r->nodes);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->io_lock);
    pthread_mutex_destroy(&r->lock);
}

/* Called with r->lock held. */
static void record_failure(gm_run *r, gm_node *n, const gm_error *nerr)
{
    if (n->def->group == GM_GROUP_ALB && !r->reversing) {
        if (!r->alb_failed) {
            r->alb_failed = true;
            r->alb_error = *nerr;
            gm_error_prefix(&r->alb_error, "%s", n->def->name);
        }
        return;
    }
    if (!r->failed) {
        r->failed = true;
        r->first_error = *nerr;
        gm_error_prefix(&r->first_error, "%s", n->def->name);
    }
}

static void log_step(const char *event, gm_node *n, const gm_error *nerr, int64_t ms)
{
    json_t *f = json_pack("{s:s, s:s}", "node", n->def->name, "kind", n->def->ops->kind);
    if (f && ms >= 0)
        json_object_set_new(f, "duration_ms", json_integer(ms));
    if (f && nerr && nerr->status != GM_OK) {
        json_object_set_new(f, "error", json_string(nerr->message));
        if (*nerr->aws_code)
            json_object_set_new(f, "aws_code", json_string(nerr->aws_code));
    }
    gm_log_event(nerr && nerr->status != GM_OK ? GM_LOG_ERROR : GM_LOG_INFO, event, f);
}

/* Ends a node's run: records the outcome, saves it, wakes the scheduler. */
static void finish_node(gm_run *r, gm_node *n, gm_status st, const gm_error *nerr,
                        gm_node_status done_status, const char *event_type)
{
    pthread_mutex_lock(&r->lock);
    gm_node_state *s = gm_run_state_of(r, n);
    if (s) {
        s->updated_at = gm_wall_ms();
        if (st == GM_OK) {
            s->status = done_status;
            gm_ignore(gm_node_state_set_error(s, NULL)); /* clearing cannot fail */
        } else {
            if (!r->reversing)
                s->status = GM_NODE_FAILED; /* may still have made something: found by tag */
            /* an error text lost to memory exhaustion still leaves the status */
            gm_ignore(gm_node_state_set_error(s, nerr->message));
            gm_deployment_add_event(r->dep, event_type, n->def->name, "%s", nerr->message);
        }
    }
    n->state = st == GM_OK ? RUN_DONE : RUN_FAILED;
    if (st != GM_OK)
        record_failure(r, n, nerr);
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    /* Dependents may start before this save lands: their own intent saves a
     * snapshot that includes this node's outcome. */
    gm_error serr = {0};
    if (gm_run_commit(r, &serr) != GM_OK) {
        pthread_mutex_lock(&r->lock);
        n->state = RUN_FAILED;
        record_failure(r, n, &serr);
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
    }
}

static void *create_worker(void *arg)
{
    gm_node *n = arg;
    gm_run *r = n->run;
    gm_error nerr = {0};
    gm_status st = n->def->ops->create(n, &nerr);
    int64_t ms = gm_now_ms() - n->started_ms;
    finish_node(r, n, st, &nerr, GM_NODE_CREATED, "failed");
    log_step(st == GM_OK ? "step_done" : "step_failed", n, &nerr, ms);
    if (st == GM_OK) {
        char *id = gm_node_id_of(n, n->def->name);
        gm_run_emit(r, GM_EVENT_STEP_DONE, n->def->name, id);
        free(id);
    } else {
        gm_run_emit(r, GM_EVENT_STEP_FAILED, n->def->name, nerr.message);
    }
    return NULL;
}

static bool deps_done(const gm_run *r, const gm_node *n)
{
    for (int k = 0; k < n->n_deps; k++)
        if (r->nodes[n->deps[k]].state != RUN_DONE)
            return false;
    return true;
}

/* Starts a node's thread. Called with r->lock held. */
static void start_node(gm_run *r, gm_node *n, void *(*worker)(void *), const char *label)
{
    n->state = RUN_ACTIVE;
    n->started_ms = gm_now_ms();
    gm_run_emit(r, GM_EVENT_STEP_START, n->def->name, label);
    gm_log_event(GM_LOG_INFO, r->reversing ? "delete_start" : "step_start",
                 json_pack("{s:s, s:s}", "node", n->def->name, "kind", n->def->ops->kind));
    if (pthread_create(&n->thread, NULL, worker, n) != 0) {
        n->state = RUN_FAILED;
        gm_error terr = {0};
        gm_ignore(gm_error_set(&terr, GM_ERR_INTERNAL, "cannot start a thread"));
        record_failure(r, n, &terr);
        return;
    }
    n->joinable = true;
}

static void join_all(gm_run *r)
{
    for (size_t i = 0; i < r->n_nodes; i++)
        if (r->nodes[i].joinable) {
            pthread_join(r->nodes[i].thread, NULL);
            r->nodes[i].joinable = false;
        }
}

/* The forward result once every thread has ended. */
static GM_MUST_CHECK gm_status forward_result(gm_run *r, gm_error *err)
{
    if (r->failed) {
        *err = r->first_error;
        return err->status ? err->status : GM_ERR_INTERNAL;
    }
    if (interrupted(r))
        return gm_error_set(err, GM_ERR_INTERRUPTED, "interrupted");
    for (size_t i = 0; i < r->n_nodes; i++)
        if (r->nodes[i].state != RUN_DONE &&
            !(r->alb_failed && r->nodes[i].def->group == GM_GROUP_ALB))
            return gm_error_set(err, GM_ERR_TIMEOUT, "deploy timed out before '%s' started",
                                r->nodes[i].def->name);
    if (r->alb_failed) {
        *err = r->alb_error;
        return err->status ? err->status : GM_ERR_INTERNAL;
    }
    return GM_OK;
}

/* Starts every node that ready() allows, waits for one to end, and so on
 * until none runs. Called with r->lock held; returns with it released and
 * every thread joined. */
static void schedule(gm_run *r, bool (*ready)(gm_run *, size_t), void *(*worker)(void *),
                     bool deleting)
{
    for (;;) {
        size_t active = 0;
        for (size_t i = 0; i < r->n_nodes; i++) {
            gm_node *n = &r->nodes[i];
            if (n->state == RUN_WAIT && ready(r, i))
                start_node(r, n, worker, deleting ? n->def->ops->delete_label : n->def->ops->label);
            if (n->state == RUN_ACTIVE)
                active++;
        }
        if (active == 0)
            break;
        pthread_cond_wait(&r->cond, &r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    join_all(r);
}

/* Forwards: its dependencies are done, and nothing stopped the run (or its
 * group). */
static bool ready_to_create(gm_run *r, size_t i)
{
    const gm_node *n = &r->nodes[i];
    if (r->failed || interrupted(r) || gm_now_ms() >= r->deadline_ms)
        return false;
    if (n->def->group == GM_GROUP_ALB && r->alb_failed)
        return false;
    return deps_done(r, n);
}

/* Runs the create side of the graph. GM_OK when every node is done. */
static GM_MUST_CHECK gm_status run_forward(gm_run *r, gm_error *err)
{
    pthread_mutex_lock(&r->lock);
    schedule(r, ready_to_create, create_worker, false);
    return forward_result(r, err);
}

/* ---- reverse: rollback and destroy --------------------------------------- */

static bool needs_delete(gm_run *r, gm_node *n)
{
    gm_node_state *s = gm_deployment_node(r->dep, n->def->name);
    const gm_node_ops *ops = n->def->ops;
    if (!s || s->provenance == GM_PROV_REUSED || !ops->owns_resource || !ops->destroy)
        return false;
    if (r->only_group >= 0 && (int)n->def->group != r->only_group)
        return false;
    if (r->keep_efs && (ops == &gm_ops_efs || ops == &gm_ops_mount_target))
        return false;
    return s->status == GM_NODE_CREATING || s->status == GM_NODE_CREATED ||
           s->status == GM_NODE_FAILED || s->status == GM_NODE_DELETING;
}

/* Deletes id, retrying while something still depends on it. */
static GM_MUST_CHECK gm_status delete_with_retries(gm_node *n, const char *id, gm_error *nerr)
{
    for (;;) {
        gm_error_clear(nerr);
        gm_status st = n->def->ops->destroy(n, id, nerr);
        if (st == GM_OK || !gm_n_is_dependency_error(nerr))
            return st;
        gm_error werr = {0};
        char what[160];
        snprintf(what, sizeof what, "waiting for dependencies of %s %s to go", n->def->ops->kind,
                 id);
        if (gm_node_wait(n, n->run->settings.poll_ms, what, &werr) != GM_OK) {
            gm_error_prefix(nerr, "%s", werr.message);
            return st;
        }
    }
}

/* Journals that id is being deleted (saved before the delete request). */
static GM_MUST_CHECK gm_status journal_deleting(gm_run *r, gm_node *n, const char *id,
                                                gm_error *err)
{
    pthread_mutex_lock(&r->lock);
    gm_node_state *s = gm_run_state_of(r, n);
    gm_status st = s ? gm_node_state_set_id(s, id) : GM_ERR_NOMEM;
    if (st == GM_OK)
        s->status = GM_NODE_DELETING;
    pthread_mutex_unlock(&r->lock);
    if (st != GM_OK)
        return gm_error_set(err, st, "out of memory");
    return gm_run_commit(r, err);
}

static void *destroy_worker(void *arg)
{
    gm_node *n = arg;
    gm_run *r = n->run;
    gm_error nerr = {0};
    char *id = gm_node_id_of(n, n->def->name);
    gm_status st = GM_OK;
    if (!id && n->def->ops->find)
        st = n->def->ops->find(n, &id, &nerr);
    if (st == GM_OK && id)
        st = journal_deleting(r, n, id, &nerr);
    if (st == GM_OK && id) {
        gm_run_emit(r, GM_EVENT_STEP_DETAIL, n->def->name, id);
        st = delete_with_retries(n, id, &nerr);
    }
    int64_t ms = gm_now_ms() - n->started_ms;
    if (st == GM_OK && id) {
        pthread_mutex_lock(&r->lock);
        gm_deployment_add_event(r->dep, "deleted", n->def->name, "%s %s", n->def->ops->kind, id);
        pthread_mutex_unlock(&r->lock);
    }
    finish_node(r, n, st, &nerr, GM_NODE_DELETED, "delete_failed");
    log_step(st == GM_OK ? "delete_done" : "delete_failed", n, &nerr, ms);
    if (st == GM_OK)
        gm_run_emit(r, GM_EVENT_STEP_DONE, n->def->name, id ? id : "nothing to delete");
    else
        gm_run_emit(r, GM_EVENT_STEP_FAILED, n->def->name, nerr.message);
    free(id);
    return NULL;
}

/* A node can go once every node that depends on it is gone. */
static bool dependents_done(const gm_run *r, size_t idx)
{
    for (size_t i = 0; i < r->n_nodes; i++) {
        const gm_node *n = &r->nodes[i];
        for (int k = 0; k < n->n_deps; k++)
            if ((size_t)n->deps[k] == idx && n->state != RUN_DONE)
                return false;
    }
    return true;
}

static GM_MUST_CHECK gm_status reverse_result(gm_run *r, gm_error *err)
{
    size_t left = 0;
    const char *first_left = NULL;
    for (size_t i = 0; i < r->n_nodes; i++)
        if (r->nodes[i].state != RUN_DONE) {
            left++;
            if (!first_left)
                first_left = r->nodes[i].def->name;
        }
    if (left == 0)
        return GM_OK;
    if (r->failed) {
        *err = r->first_error;
        gm_error_prefix(err, "%zu resource(s) remain", left);
        return err->status ? err->status : GM_ERR_INTERNAL;
    }
    return gm_error_set(err, GM_ERR_TIMEOUT,
                        "%zu resource(s) remain (first: '%s'): deadline passed", left, first_left);
}

/* Backwards: every node depending on it is gone, and the deadline holds. */
static bool ready_to_delete(gm_run *r, size_t i)
{
    return dependents_done(r, i) && gm_now_ms() < r->deadline_ms;
}

static GM_MUST_CHECK gm_status run_reverse(gm_run *r, gm_error *err)
{
    pthread_mutex_lock(&r->lock);
    r->failed = false;
    r->reversing = true;
    gm_error_clear(&r->first_error);
    for (size_t i = 0; i < r->n_nodes; i++) {
        gm_node *n = &r->nodes[i];
        n->joinable = false;
        n->state = needs_delete(r, n) ? RUN_WAIT : RUN_DONE;
    }
    schedule(r, ready_to_delete, destroy_worker, true);
    return reverse_result(r, err);
}

/* ---- public entry points ------------------------------------------------- */

static GM_MUST_CHECK gm_status set_status(gm_run *r, gm_dep_status st, const char *reason,
                                          gm_error *err)
{
    pthread_mutex_lock(&r->lock);
    r->dep->status = st;
    free(r->dep->status_reason);
    r->dep->status_reason = reason ? strdup(reason) : NULL;
    gm_deployment_add_event(r->dep, "status", NULL, "%s%s%s", gm_dep_status_name(st),
                            reason ? ": " : "", reason ? reason : "");
    pthread_mutex_unlock(&r->lock);
    gm_log_event(GM_LOG_INFO, "status",
                 json_pack("{s:s, s:s?}", "status", gm_dep_status_name(st), "reason", reason));
    return gm_run_commit(r, err);
}

/* Marks the nodes that need not run: reused, or created by an earlier run. */
static void mark_done_nodes(gm_run *r)
{
    for (size_t i = 0; i < r->n_nodes; i++) {
        gm_node_state *s = gm_deployment_node(r->dep, r->nodes[i].def->name);
        bool reused = s && s->provenance == GM_PROV_REUSED;
        bool done = reused || (s && s->status == GM_NODE_CREATED && s->id);
        r->nodes[i].state = done ? RUN_DONE : RUN_WAIT;
        if (done)
            gm_run_emit(r, GM_EVENT_STEP_SKIPPED, r->nodes[i].def->name,
                        reused ? "reused" : "already created");
    }
}

/* Only the load balancer part failed: remove just its resources and keep the
 * EC2 side; deploy --resume creates the part again. */
static GM_MUST_CHECK gm_status remove_alb_group(gm_run *r, const char *reason, gm_error *err)
{
    gm_run_emit(r, GM_EVENT_NOTE, NULL, "load balancer failed: removing only its resources");
    r->only_group = GM_GROUP_ALB;
    r->deadline_ms = gm_now_ms() + r->settings.destroy_timeout_ms;
    gm_error rerr = {0};
    gm_status rst = run_reverse(r, &rerr);
    char msg[2 * GM_ERROR_MESSAGE_MAX + 64];
    if (rst == GM_OK)
        snprintf(msg, sizeof msg, "load balancer failed and was removed: %s", reason);
    else
        snprintf(msg, sizeof msg, "load balancer failed: %s; removing it failed too: %s", reason,
                 rerr.message);
    return set_status(r, GM_DEP_PARTIAL, msg, err);
}

/* Rolls back what this deployment created; out->rolled_back when nothing
 * remains. */
static GM_MUST_CHECK gm_status roll_back(gm_run *r, const char *reason, gm_deploy_outcome *out,
                                         gm_error *err)
{
    gm_status st = set_status(r, GM_DEP_ROLLING_BACK, reason, err);
    if (st != GM_OK)
        return st;
    gm_run_emit(r, GM_EVENT_NOTE, NULL, "deploy failed: rolling back what it created");
    /* Rollback gets its own deadline: the deploy's may have run out. */
    r->deadline_ms = gm_now_ms() + r->settings.destroy_timeout_ms;
    gm_error rerr = {0};
    char msg[2 * GM_ERROR_MESSAGE_MAX + 32];
    if (run_reverse(r, &rerr) == GM_OK) {
        snprintf(msg, sizeof msg, "%s (rolled back)", reason);
        out->rolled_back = true;
    } else {
        snprintf(msg, sizeof msg, "%s; rollback incomplete: %s", reason, rerr.message);
    }
    return set_status(r, GM_DEP_FAILED, msg, err);
}

gm_status gm_engine_deploy(const gm_engine_options *o, const gm_deploy_config *cfg,
                           gm_deployment *dep, bool resume, gm_deploy_outcome *out, gm_error *err)
{
    gm_deploy_outcome none;
    if (!out)
        out = &none;
    memset(out, 0, sizeof *out);
    gm_run r;
    int64_t timeout = cfg->timeout_ms ? cfg->timeout_ms : DEFAULT_DEPLOY_TIMEOUT_MS;
    gm_status st = run_init(&r, o, cfg, dep, timeout, err);
    if (st == GM_OK) {
        mark_done_nodes(&r);
        st = set_status(&r, GM_DEP_CREATING, resume ? "resuming" : NULL, err);
    }
    if (st != GM_OK) { /* nothing ran */
        run_release(&r);
        return st;
    }
    st = run_forward(&r, err);
    if (st == GM_OK) {
        st = set_status(&r, GM_DEP_RUNNING, NULL, err);
        run_release(&r);
        return st;
    }
    char reason[GM_ERROR_MESSAGE_MAX];
    snprintf(reason, sizeof reason, "%s", err->message);
    gm_error serr = {0};
    gm_status sst;
    out->interrupted = interrupted(&r);
    if (r.alb_failed && !r.failed && !out->interrupted) {
        out->partial = true;
        sst = remove_alb_group(&r, reason, &serr);
    } else if (cfg->no_rollback || out->interrupted) {
        sst = set_status(&r, GM_DEP_FAILED, reason, &serr);
    } else {
        sst = roll_back(&r, reason, out, &serr);
    }
    if (sst != GM_OK) /* the record could not be saved: say so beside the failure */
        gm_error_prefix(err, "saving the record failed too (%s)", serr.message);
    run_release(&r);
    return st;
}

gm_status gm_engine_destroy(const gm_engine_options *o, gm_deployment *dep, bool keep_efs,
                            gm_error *err)
{
    gm_run r;
    gm_deploy_config none = {.name = dep->name};
    gm_engine_settings s = o->settings;
    settings_defaults(&s);
    gm_status st = run_init(&r, o, &none, dep, s.destroy_timeout_ms, err);
    r.keep_efs = keep_efs;
    if (st == GM_OK)
        st = set_status(&r, GM_DEP_DESTROYING, NULL, err);
    if (st == GM_OK) {
        st = run_reverse(&r, err);
        gm_error serr = {0};
        gm_status sst = st == GM_OK ? set_status(&r, GM_DEP_DESTROYED, NULL, err)
                                    : set_status(&r, GM_DEP_FAILED, err->message, &serr);
        if (st == GM_OK)
            st = sst;
    }
    run_release(&r);
    return st;
}

gm_status gm_engine_inspect(const gm_engine_options *o, gm_deployment *dep, json_t **out,
                            gm_error *err)
{
    gm_run r;
    gm_deploy_config none = {.name = dep->name};
    gm_status st = run_init(&r, o, &none, dep, INSPECT_TIMEOUT_MS, err);
    json_t *res = json_object();
    if (!res && st == GM_OK)
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == GM_OK && i < r.n_nodes; i++) {
        gm_node *n = &r.nodes[i];
        gm_node_state *s = gm_deployment_node(dep, n->def->name);
        if (!s || !s->id || !n->def->ops->inspect || s->status == GM_NODE_DELETED)
            continue;
        json_t *live = json_pack("{s:s, s:[]}", "id", s->id, "drift");
        if (!live) {
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
            break;
        }
        gm_error nerr = {0};
        if (n->def->ops->inspect(n, s->id, live, &nerr) != GM_OK) {
            json_object_set_new(live, "error", json_string(nerr.message));
            if (nerr.status == GM_ERR_AUTH) {
                *err = nerr;
                st = nerr.status;
            }
        }
        json_object_set_new(res, n->def->name, live);
    }
    run_release(&r);
    if (st != GM_OK) {
        json_decref(res);
        return st;
    }
    *out = res;
    return GM_OK;
}
