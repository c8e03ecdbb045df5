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
#include "engine/sweep.h"
#include "stack/stack.h"

#define DEFAULT_POLL_MS 2000
#define DEFAULT_DESTROY_TIMEOUT_MS (20 * 60 * 1000)
#define DEFAULT_DEPLOY_TIMEOUT_MS (30 * 60 * 1000)
#define INSPECT_TIMEOUT_MS (5 * 60 * 1000)

static bool interrupted(const gm_run *r)
{
    return r->interrupt && *r->interrupt;
}

int gm_run_find_node(const gm_run *r, const char *name)
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
            int d = gm_run_find_node(r, n->def->deps[k]);
            if (d < 0 || (size_t)d >= i)
                return gm_error_set(err, GM_ERR_INTERNAL,
                                    "graph node '%s' depends on '%s', which is not before it",
                                    n->def->name, n->def->deps[k]);
            n->deps[n->n_deps++] = d;
        }
        const char *const *after = gm_engine_delete_after(n->def->name);
        n->ordered = after != NULL;
        for (int k = 0; after && k < GM_MAX_DEPS && after[k]; k++) {
            int d = *after[k] ? gm_run_find_node(r, after[k]) : -1;
            if (d >= 0)
                n->after[n->n_after++] = d;
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

gm_status gm_run_init(gm_run *r, const gm_engine_options *o, const gm_deploy_config *cfg,
                      gm_deployment *dep, int64_t timeout_ms, gm_error *err)
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
    const gm_engine_graph *g = o->graph                 ? o->graph
                               : gm_engine_is_bake(dep) ? gm_engine_bake_graph()
                                                        : gm_engine_tier_graph(r->tier);
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

void gm_run_release(gm_run *r)
{
    gm_run_release_shared(r);
    for (size_t i = 0; r->nodes && i < r->n_nodes; i++)
        gm_ids_release(&r->nodes[i].found);
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
        if (st == GM_OK && n->refused) {
            s->status = done_status;
            /* the note says which id; a message lost to memory changes nothing */
            gm_ignore(gm_node_state_set_error(s, "the record names a resource that is not this "
                                                 "deployment's: it was kept"));
        } else if (st == GM_OK) {
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

/* Whether this run deletes what node n made at all (the load balancer group
 * alone, the file system kept, reused resources never). */
static bool deletes(gm_run *r, const gm_node *n)
{
    const gm_node_state *s = gm_deployment_node(r->dep, n->def->name);
    const gm_node_ops *ops = n->def->ops;
    if ((s && s->provenance == GM_PROV_REUSED) || !ops->owns_resource || !ops->destroy)
        return false;
    if (r->only_group >= 0 && (int)n->def->group != r->only_group)
        return false;
    return !(r->keep_efs && (ops == &gm_ops_efs || ops == &gm_ops_mount_target));
}

static bool needs_delete(gm_run *r, gm_node *n)
{
    gm_node_state *s = gm_deployment_node(r->dep, n->def->name);
    if (!deletes(r, n))
        return false;
    if (n->found.n)
        return true; /* a sweep found some of it by tag */
    return s && (s->status == GM_NODE_CREATING || s->status == GM_NODE_CREATED ||
                 s->status == GM_NODE_FAILED || s->status == GM_NODE_DELETING);
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

/* How often a node the journal says was being created is looked for before
 * it counts as never made: a create still in flight can land after the first
 * look, and AWS lists new resources late. */
#define CREATING_LOOKS 3

/* The ids to delete: the recorded one, what the sweep found, and, when the
 * record names none, what a look-up by tag finds. */
static GM_MUST_CHECK gm_status ids_to_delete(gm_node *n, const char *recorded, gm_ids *out,
                                             gm_error *err)
{
    gm_ids_init(out);
    gm_status st = recorded ? gm_ids_add(out, recorded, err) : GM_OK;
    for (size_t i = 0; st == GM_OK && i < n->found.n; i++)
        st = gm_ids_add(out, n->found.v[i], err);
    bool creating = false, settled = false;
    pthread_mutex_lock(&n->run->lock);
    gm_node_state *s = gm_deployment_node(n->run->dep, n->def->name);
    creating = s && (s->status == GM_NODE_CREATING || s->status == GM_NODE_FAILED);
    settled = s && s->status == GM_NODE_CREATED;
    pthread_mutex_unlock(&n->run->lock);
    /* A kind the sweep cannot list (IAM) is looked up by name as well: the
     * record may name something else. Not when the sweep looked it up
     * already, nor when the record says its create ended with the id it
     * names. */
    bool look_anyway = !n->def->ops->listed_by_tags && n->def->ops->find &&
                       !(n->run->swept && n->def->ops->swept_by_find) && !(recorded && settled);
    for (int look = 0; st == GM_OK && (!recorded || look_anyway) && look < CREATING_LOOKS; look++) {
        if (look)
            st = gm_node_wait(n, n->run->settings.poll_ms, "looking for what was being created",
                              err);
        gm_ids more;
        if (st == GM_OK)
            st = gm_node_find(n, &more, err);
        for (size_t i = 0; st == GM_OK && i < more.n; i++)
            st = gm_ids_add(out, more.v[i], err);
        if (st == GM_OK)
            gm_ids_release(&more);
        if (out->n || !creating || look_anyway)
            break;
    }
    return st;
}

/* Deletes one id after checking it is this deployment's (when it came from
 * the record: what a look-up by tag found is ours by construction). */
static GM_MUST_CHECK gm_status delete_one(gm_node *n, const char *id, bool check_owner,
                                          gm_error *err)
{
    gm_run *r = n->run;
    if (check_owner && n->def->ops->owner) {
        gm_owner who = GM_OWNER_OTHER;
        char why[256] = "";
        gm_status st = GM_OK;
        if (n->owner_known) { /* the sweep asked already */
            who = n->owner;
            snprintf(why, sizeof why, "%s", n->owner_why);
        } else {
            st = n->def->ops->owner(n, id, &who, why, sizeof why, err);
        }
        if (st != GM_OK)
            return st;
        if (who == GM_OWNER_GONE)
            return GM_OK;
        if (who == GM_OWNER_OTHER) {
            gm_node_note(n, "not deleting %s %s: %s", n->def->ops->kind, id, why);
            pthread_mutex_lock(&r->lock);
            n->refused = true;
            r->refusals++;
            pthread_mutex_unlock(&r->lock);
            return GM_OK;
        }
    }
    gm_status st = journal_deleting(r, n, id, err);
    if (st == GM_OK) {
        gm_run_emit(r, GM_EVENT_STEP_DETAIL, n->def->name, id);
        st = delete_with_retries(n, id, err);
    }
    if (st == GM_OK) {
        pthread_mutex_lock(&r->lock);
        gm_deployment_add_event(r->dep, "deleted", n->def->name, "%s %s", n->def->ops->kind, id);
        pthread_mutex_unlock(&r->lock);
    }
    return st;
}

static void *destroy_worker(void *arg)
{
    gm_node *n = arg;
    gm_run *r = n->run;
    gm_error nerr = {0};
    char *recorded = gm_node_id_of(n, n->def->name);
    gm_ids ids;
    gm_status st = ids_to_delete(n, recorded, &ids, &nerr);
    for (size_t i = 0; st == GM_OK && i < ids.n; i++)
        st = delete_one(n, ids.v[i], recorded && strcmp(ids.v[i], recorded) == 0, &nerr);
    int64_t ms = gm_now_ms() - n->started_ms;
    finish_node(r, n, st, &nerr, n->refused ? GM_NODE_FAILED : GM_NODE_DELETED, "delete_failed");
    log_step(st == GM_OK ? "delete_done" : "delete_failed", n, &nerr, ms);
    if (st != GM_OK)
        gm_run_emit(r, GM_EVENT_STEP_FAILED, n->def->name, nerr.message);
    else if (n->refused)
        gm_run_emit(r, GM_EVENT_STEP_FAILED, n->def->name, "not this deployment's: kept");
    else
        gm_run_emit(r, GM_EVENT_STEP_DONE, n->def->name,
                    ids.n ? ids.v[ids.n - 1] : "nothing to delete");
    gm_ids_release(&ids);
    free(recorded);
    return NULL;
}

/* A node can go once what must go before it is gone: its delete order
 * (tiers.c), else every node that depends on it. */
static bool dependents_done(const gm_run *r, size_t idx)
{
    const gm_node *self = &r->nodes[idx];
    if (self->ordered) {
        for (int k = 0; k < self->n_after; k++)
            if (r->nodes[self->after[k]].state != RUN_DONE)
                return false;
        return true;
    }
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
    if (r->refusals && !r->failed)
        return gm_error_set(err, GM_ERR_CONFLICT,
                            "%zu resource(s) named in the record are not this deployment's "
                            "(see the notes): they were not deleted, and the record is kept",
                            r->refusals);
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

/* ---- the sweep: what the tags say exists ----------------------------------- */

/* One request of a sweep, on its own thread: the tag listing, a node's
 * look-up by name (what the tagging API cannot list: IAM is global, by name),
 * or a resource's owner (a tagged resource checked against AWS: the tagging
 * API lists a resource for a while after it is gone, and terminated instances
 * for an hour; the record's ids before a destroy). */
typedef enum { JOB_LIST, JOB_FIND, JOB_OWNER } sweep_kind;

typedef struct sweep_job {
    sweep_kind kind;
    gm_run *run;
    gm_node *node;
    const char *id;
    bool recorded; /* JOB_OWNER of the node's recorded id */
    gm_tagged_list list;
    gm_ids ids;
    gm_owner who;
    char why[256];
    gm_status st;
    gm_error err;
    pthread_t thread;
} sweep_job;

static void *sweep_job_run(void *arg)
{
    sweep_job *j = arg;
    gm_run *r = j->run;
    bool by_id = *r->dep->deployment_id;
    switch (j->kind) {
    case JOB_LIST:
        j->st =
            gm_engine_list_tagged(r->aws, by_id ? GM_TAG_DEPLOYMENT_ID : GM_TAG_DEPLOYMENT,
                                  by_id ? r->dep->deployment_id : r->dep->name, &j->list, &j->err);
        if (j->st != GM_OK)
            gm_error_prefix(&j->err, "cannot list the resources tagged as this deployment's");
        break;
    case JOB_FIND: j->st = gm_node_find(j->node, &j->ids, &j->err); break;
    case JOB_OWNER:
        j->who = GM_OWNER_OURS;
        if (j->node->def->ops->owner)
            j->st =
                j->node->def->ops->owner(j->node, j->id, &j->who, j->why, sizeof j->why, &j->err);
        break;
    }
    return NULL;
}

/* Runs every job at once (one round trip); the first failure is returned. */
static GM_MUST_CHECK gm_status run_jobs(sweep_job *jobs, size_t n, gm_error *err)
{
    bool *started = calloc(n ? n : 1, sizeof *started);
    for (size_t i = 0; i < n; i++)
        if (!started || pthread_create(&jobs[i].thread, NULL, sweep_job_run, &jobs[i]) != 0)
            sweep_job_run(&jobs[i]); /* no thread to be had: here */
        else
            started[i] = true;
    gm_status st = GM_OK;
    for (size_t i = 0; i < n; i++) {
        if (started && started[i])
            pthread_join(jobs[i].thread, NULL);
        if (jobs[i].st != GM_OK && st == GM_OK) {
            st = jobs[i].st;
            *err = jobs[i].err;
        }
    }
    free(started);
    return st;
}

/* The first round: the listing, the look-ups by name and (prefetch) the
 * owner of every id the record names for a node this run deletes. */
static size_t plan_first(gm_run *r, bool prefetch, sweep_job *jobs)
{
    size_t n = 0;
    jobs[n++] = (sweep_job){.kind = JOB_LIST, .run = r};
    for (size_t k = 0; k < r->n_nodes; k++) {
        gm_node *node = &r->nodes[k];
        node->owner_known = false;
        if (!deletes(r, node))
            continue;
        if (node->def->ops->swept_by_find && node->def->ops->find)
            jobs[n++] = (sweep_job){.kind = JOB_FIND, .run = r, .node = node};
        const gm_node_state *s = gm_deployment_node(r->dep, node->def->name);
        if (prefetch && s && s->id && *s->id && s->status != GM_NODE_DELETED &&
            node->def->ops->owner)
            jobs[n++] = (sweep_job){
                .kind = JOB_OWNER, .run = r, .node = node, .id = s->id, .recorded = true};
    }
    return n;
}

/* The owner job already run for (node, id), or NULL. */
static const sweep_job *owner_known(const sweep_job *jobs, size_t n, const gm_node *node,
                                    const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (jobs[i].kind == JOB_OWNER && jobs[i].node == node && strcmp(jobs[i].id, id) == 0)
            return &jobs[i];
    return NULL;
}

/* An instance the group's node will see to: the group's deletion waits for
 * every instance of this deployment's group to be terminated. */
static bool covered_by_group(const sweep_job *jobs, size_t n, const gm_node *node, const char *id)
{
    if (node->def->ops != &gm_ops_asg || strncmp(id, "i-", 2) != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (jobs[i].kind == JOB_OWNER && jobs[i].node == node && jobs[i].recorded)
            return jobs[i].who == GM_OWNER_OURS;
    return false;
}

/* Adds the second round's owner check of (node, id) unless the first round
 * answered it or the group covers it. */
static void plan_check(sweep_job *jobs, size_t n_first, size_t *n, gm_run *r, gm_node *node,
                       const char *id)
{
    if (owner_known(jobs, n_first, node, id) || covered_by_group(jobs, n_first, node, id) ||
        owner_known(jobs + n_first, *n - n_first, node, id))
        return;
    jobs[(*n)++] = (sweep_job){.kind = JOB_OWNER, .run = r, .node = node, .id = id};
}

/* The checks for the listed resources and those found by name; *out_left
 * counts what no node of this graph can delete. */
static size_t plan_checks(gm_run *r, sweep_job *jobs, size_t n_first, const char *prefix,
                          size_t *out_left)
{
    size_t n = n_first;
    const gm_tagged_list *list = &jobs[0].list;
    for (size_t i = 0; i < list->n; i++) {
        const gm_tagged *t = &list->v[i];
        bool param = strcmp(t->service, "ssm") == 0;
        /* An instance launched by hand (records made before the Auto Scaling
         * group called its node "instance") goes with the group's node,
         * which terminates strays. */
        const char *node = param                              ? "secrets"
                           : strcmp(t->node, "instance") == 0 ? GM_NODE_ASG
                                                              : t->node;
        int k = gm_tagged_goes_with_another(t) ? -2 : gm_run_find_node(r, node);
        if (k >= 0 && !deletes(r, &r->nodes[k]))
            continue; /* kept on purpose (--keep-efs, the load balancer group alone) */
        if (k == -1) {
            (*out_left)++; /* left for the user: no node of this graph can delete it */
            gm_log_event(GM_LOG_WARN, "sweep_unmatched",
                         json_pack("{s:s, s:s}", "arn", t->arn, "node", t->node));
        } else if (k >= 0) {
            plan_check(jobs, n_first, &n, r, &r->nodes[k], param ? prefix : t->id);
        }
    }
    for (size_t j = 1; j < n_first; j++)
        for (size_t i = 0; jobs[j].kind == JOB_FIND && i < jobs[j].ids.n; i++)
            plan_check(jobs, n_first, &n, r, jobs[j].node, jobs[j].ids.v[i]);
    return n;
}

/* Keeps what the checks say is ours: the record's own ids in the node's
 * owner cache (delete_one does not ask again), anything else in its found
 * ids; *out_n counts what is still there, *out_extra what the record does
 * not name. */
static GM_MUST_CHECK gm_status assign_found(gm_run *r, sweep_job *jobs, size_t n, size_t *out_n,
                                            size_t *out_extra, gm_error *err)
{
    gm_status st = GM_OK;
    for (size_t i = 0; st == GM_OK && i < n; i++) {
        sweep_job *j = &jobs[i];
        if (j->kind != JOB_OWNER)
            continue;
        if (j->recorded) {
            j->node->owner_known = true;
            j->node->owner = j->who;
            snprintf(j->node->owner_why, sizeof j->node->owner_why, "%s", j->why);
            *out_n += j->who == GM_OWNER_OURS;
            continue;
        }
        if (j->who != GM_OWNER_OURS || gm_ids_has(&j->node->found, j->id))
            continue;
        (*out_n)++;
        (*out_extra)++;
        st = gm_ids_add(&j->node->found, j->id, err);
    }
    return st;
}

static void release_jobs(sweep_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        gm_tagged_list_release(&jobs[i].list);
        gm_ids_release(&jobs[i].ids);
    }
}

/* A sweep: lists this deployment's resources by tag (and by name, and, with
 * prefetch, checks the record's ids) in one round trip, then checks what the
 * first round found that it has not answered yet in a second; hands each
 * that still exists and is ours to the node that made it. */
static GM_MUST_CHECK gm_status sweep(gm_run *r, bool prefetch, size_t *out_n, size_t *out_extra,
                                     gm_error *err)
{
    *out_n = *out_extra = 0;
    for (size_t i = 0; i < r->n_nodes; i++)
        gm_ids_release(&r->nodes[i].found);
    char *prefix = gm_stack_default_ssm_prefix(r->dep->name);
    sweep_job *jobs = calloc(2 * r->n_nodes + 1, sizeof *jobs);
    if (!jobs || !prefix) {
        free(jobs);
        free(prefix);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    size_t n_first = plan_first(r, prefetch, jobs), n = n_first;
    r->swept = true;
    gm_status st = run_jobs(jobs, n_first, err);
    sweep_job *all = NULL;
    if (st == GM_OK) {
        size_t cap = n_first + jobs[0].list.n;
        for (size_t j = 1; j < n_first; j++)
            cap += jobs[j].ids.n;
        if (!(all = calloc(cap, sizeof *all)))
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    if (st == GM_OK && all) {
        memcpy(all, jobs, n_first * sizeof *all);
        n = plan_checks(r, all, n_first, prefix, out_n);
        st = run_jobs(all + n_first, n - n_first, err);
    }
    if (st == GM_OK && all)
        st = assign_found(r, all, n, out_n, out_extra, err);
    release_jobs(jobs, n_first);
    free(all);
    free(jobs);
    free(prefix);
    return st;
}

gm_status gm_run_sweep(gm_run *r, size_t *out_n, gm_error *err)
{
    size_t extra = 0;
    return sweep(r, false, out_n, &extra, err);
}

#define SWEEP_ROUNDS 3

/* Whether the record says a create or a delete may have been cut short (a
 * crash, a lost answer): then a create still in flight can land after the
 * first look, and the sweep looks again after the deletes. */
static bool record_unsettled(gm_run *r)
{
    for (size_t i = 0; i < r->n_nodes; i++) {
        const gm_node_state *s = gm_deployment_node(r->dep, r->nodes[i].def->name);
        if (s && (s->status == GM_NODE_CREATING || s->status == GM_NODE_FAILED ||
                  s->status == GM_NODE_DELETING))
            return true;
    }
    return false;
}

static void forget_owners(gm_run *r)
{
    for (size_t i = 0; i < r->n_nodes; i++)
        r->nodes[i].owner_known = false;
}

/* Deletes what the record names and what the tags say exists. When the
 * record was unsettled or the tags named more than the record, it looks
 * again (up to SWEEP_ROUNDS times): GM_OK only when a last look finds
 * nothing. A settled record whose every resource the first look accounted
 * for needs no second look: each delete ended with AWS saying it is gone. */
static GM_MUST_CHECK gm_status reverse_with_sweep(gm_run *r, gm_error *err)
{
    size_t found = 0, extra = 0;
    bool again = record_unsettled(r);
    gm_status st = sweep(r, true, &found, &extra, err);
    if (st == GM_OK)
        st = run_reverse(r, err);
    forget_owners(r);
    if (!again && extra == 0)
        return st;
    for (int round = 0; st == GM_OK && round < SWEEP_ROUNDS; round++) {
        st = sweep(r, false, &found, &extra, err);
        if (st != GM_OK || found == 0)
            break;
        char note[128];
        snprintf(note, sizeof note,
                 "%zu resource(s) tagged as this deployment's are left: "
                 "deleting them",
                 found);
        gm_run_emit(r, GM_EVENT_NOTE, NULL, note);
        st = run_reverse(r, err);
    }
    if (st == GM_OK && found)
        st = gm_error_set(err, GM_ERR_CONFLICT,
                          "%zu resource(s) tagged as this deployment's are still there after %d "
                          "passes",
                          found, SWEEP_ROUNDS + 1);
    return st;
}

/* ---- public entry points ------------------------------------------------- */

gm_status gm_run_set_status(gm_run *r, gm_dep_status st, const char *reason, gm_error *err)
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
    gm_status rst = reverse_with_sweep(r, &rerr);
    char msg[2 * GM_ERROR_MESSAGE_MAX + 64];
    if (rst == GM_OK)
        snprintf(msg, sizeof msg, "load balancer failed and was removed: %s", reason);
    else
        snprintf(msg, sizeof msg, "load balancer failed: %s; removing it failed too: %s", reason,
                 rerr.message);
    return gm_run_set_status(r, GM_DEP_PARTIAL, msg, err);
}

/* Rolls back what this deployment created; out->rolled_back when nothing
 * remains. */
static GM_MUST_CHECK gm_status roll_back(gm_run *r, const char *reason, gm_deploy_outcome *out,
                                         gm_error *err)
{
    gm_status st = gm_run_set_status(r, GM_DEP_ROLLING_BACK, reason, err);
    if (st != GM_OK)
        return st;
    gm_run_emit(r, GM_EVENT_NOTE, NULL, "deploy failed: rolling back what it created");
    /* Rollback gets its own deadline: the deploy's may have run out. */
    r->deadline_ms = gm_now_ms() + r->settings.destroy_timeout_ms;
    gm_error rerr = {0};
    char msg[2 * GM_ERROR_MESSAGE_MAX + 32];
    if (reverse_with_sweep(r, &rerr) == GM_OK) {
        snprintf(msg, sizeof msg, "%s (rolled back)", reason);
        out->rolled_back = true;
    } else {
        snprintf(msg, sizeof msg, "%s; rollback incomplete: %s", reason, rerr.message);
    }
    return gm_run_set_status(r, GM_DEP_FAILED, msg, err);
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
    gm_status st = gm_run_init(&r, o, cfg, dep, timeout, err);
    if (st == GM_OK) {
        mark_done_nodes(&r);
        st = gm_run_set_status(&r, GM_DEP_CREATING, resume ? "resuming" : NULL, err);
    }
    if (st != GM_OK) { /* nothing ran */
        gm_run_release(&r);
        return st;
    }
    st = run_forward(&r, err);
    if (st == GM_OK) {
        st = gm_run_set_status(&r, GM_DEP_RUNNING, NULL, err);
        gm_run_release(&r);
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
        sst = gm_run_set_status(&r, GM_DEP_FAILED, reason, &serr);
    } else {
        sst = roll_back(&r, reason, out, &serr);
    }
    if (sst != GM_OK) /* the record could not be saved: say so beside the failure */
        gm_error_prefix(err, "saving the record failed too (%s)", serr.message);
    gm_run_release(&r);
    return st;
}

gm_status gm_engine_destroy(const gm_engine_options *o, gm_deployment *dep, bool keep_efs,
                            gm_error *err)
{
    gm_run r;
    gm_deploy_config none = {.name = dep->name};
    gm_engine_settings s = o->settings;
    settings_defaults(&s);
    gm_status st = gm_run_init(&r, o, &none, dep, s.destroy_timeout_ms, err);
    r.keep_efs = keep_efs;
    if (st == GM_OK)
        st = gm_run_set_status(&r, GM_DEP_DESTROYING, NULL, err);
    if (st == GM_OK) {
        st = reverse_with_sweep(&r, err);
        gm_error serr = {0};
        gm_status sst = st == GM_OK ? gm_run_set_status(&r, GM_DEP_DESTROYED, NULL, err)
                                    : gm_run_set_status(&r, GM_DEP_FAILED, err->message, &serr);
        if (st == GM_OK)
            st = sst;
    }
    gm_run_release(&r);
    return st;
}

gm_status gm_engine_inspect(const gm_engine_options *o, gm_deployment *dep, json_t **out,
                            gm_error *err)
{
    gm_run r;
    gm_deploy_config none = {.name = dep->name};
    gm_status st = gm_run_init(&r, o, &none, dep, INSPECT_TIMEOUT_MS, err);
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
    gm_run_release(&r);
    if (st != GM_OK) {
        json_decref(res);
        return st;
    }
    *out = res;
    return GM_OK;
}
