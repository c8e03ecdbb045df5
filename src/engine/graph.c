/* Resource graphs per tier, and the executor that runs them forwards (deploy)
 * and backwards (rollback, destroy). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/log.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "engine/internal.h"
#include "stack/stack.h"

/* Tier 1. Lookups (azs, ami) run beside the first creates. The instance waits
 * only for what RunInstances needs; settings that nothing at launch needs
 * (VPC DNS attributes, public routing, ingress rules, role policies) run
 * beside it. The longest chain of calls to a running instance is CreateVpc ->
 * CreateSubnet -> RunInstances -> DescribeInstances. */
static const gm_node_def dev_graph[] = {
    {"azs", "azs", {NULL}, 0, GM_GROUP_CORE},
    {"ami", "ami", {NULL}, 0, GM_GROUP_CORE},
    {"vpc", "vpc", {NULL}, 0, GM_GROUP_CORE},
    {"vpc_dns", "vpc_dns", {"vpc"}, 0, GM_GROUP_CORE},
    {"igw", "igw", {"vpc"}, 0, GM_GROUP_CORE},
    {"subnet_a", "subnet", {"vpc", "azs"}, 0, GM_GROUP_CORE},
    {"subnet_b", "subnet", {"vpc", "azs"}, 1, GM_GROUP_CORE},
    {"route_table", "route_table", {"vpc", "igw", "subnet_a", "subnet_b"}, 0, GM_GROUP_CORE},
    {"sg", "security_group", {"vpc"}, 0, GM_GROUP_CORE},
    {"sg_rules", "sg_rules", {"sg"}, 0, GM_GROUP_CORE},
    {"efs", "efs", {NULL}, 0, GM_GROUP_CORE},
    {"mount_target_a", "mount_target", {"efs", "subnet_a", "sg"}, 0, GM_GROUP_CORE},
    {"mount_target_b", "mount_target", {"efs", "subnet_b", "sg"}, 1, GM_GROUP_CORE},
    {"role", "iam_role", {NULL}, 0, GM_GROUP_CORE},
    {"role_policy", "role_policy", {"role"}, 0, GM_GROUP_CORE},
    {"instance_profile", "instance_profile", {NULL}, 0, GM_GROUP_CORE},
    {"profile_role", "profile_role", {"role", "instance_profile"}, 0, GM_GROUP_CORE},
    {"secrets", "secrets", {NULL}, 0, GM_GROUP_CORE},
    {"placement", "placement", {NULL}, 0, GM_GROUP_CORE},
    {"instance",
     "instance",
     {"ami", "subnet_a", "subnet_b", "sg", "profile_role", "efs", "secrets", "placement"},
     0,
     GM_GROUP_CORE},
    {"health",
     "health",
     {"instance", "route_table", "sg_rules", "mount_target_a", "role_policy"},
     0,
     GM_GROUP_CORE},
    /* Tier 2 (automation): the load balancer in front. Its nodes form their own
     * group: a failure there removes only them and keeps the EC2 side. */
    {"alb_sg", "alb_sg", {"vpc"}, 0, GM_GROUP_ALB},
    {"alb_ingress", "alb_ingress", {"sg", "alb_sg"}, 0, GM_GROUP_ALB},
    {"alb", "alb", {"subnet_a", "subnet_b", "alb_sg", "igw"}, 0, GM_GROUP_ALB},
    {"target_group", "target_group", {"vpc"}, 0, GM_GROUP_ALB},
    {"listener", "listener", {"alb", "target_group"}, 0, GM_GROUP_ALB},
    {"targets", "targets", {"target_group", "instance"}, 0, GM_GROUP_ALB},
    {"alb_healthy",
     "alb_healthy",
     {"targets", "listener", "alb_ingress", "route_table"},
     0,
     GM_GROUP_ALB},
};

/* Tiers dev and gpu run the entries before the load balancer group;
 * automation runs them all. */
const gm_node_def *gm_engine_graph(const char *tier, size_t *out_n)
{
    size_t n = sizeof dev_graph / sizeof *dev_graph;
    if (!(tier && strcmp(tier, "automation") == 0)) {
        size_t core = 0;
        while (core < n && dev_graph[core].group == GM_GROUP_CORE)
            core++;
        n = core;
    }
    *out_n = n;
    return dev_graph;
}

const gm_node_ops *gm_engine_ops_for(const char *kind)
{
    static const gm_node_ops *const all[] = {
        &gm_ops_azs,         &gm_ops_ami,         &gm_ops_vpc,          &gm_ops_vpc_dns,
        &gm_ops_igw,         &gm_ops_subnet,      &gm_ops_route_table,  &gm_ops_sg,
        &gm_ops_sg_rules,    &gm_ops_efs,         &gm_ops_mount_target, &gm_ops_role,
        &gm_ops_role_policy, &gm_ops_profile,     &gm_ops_profile_role, &gm_ops_secrets,
        &gm_ops_instance,    &gm_ops_health,      &gm_ops_placement,    &gm_ops_alb_sg,
        &gm_ops_alb_ingress, &gm_ops_alb,         &gm_ops_target_group, &gm_ops_listener,
        &gm_ops_targets,     &gm_ops_alb_healthy,
    };
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (strcmp(all[i]->kind, kind) == 0)
            return all[i];
    return NULL;
}

json_t *gm_engine_graph_json(const char *tier, const gm_deploy_config *cfg)
{
    size_t n;
    const gm_node_def *g = gm_engine_graph(tier, &n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *deps = json_array();
        for (int k = 0; k < GM_MAX_DEPS && g[i].deps[k]; k++)
            json_array_append_new(deps, json_string(g[i].deps[k]));
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:o}", "node", g[i].name, "kind", g[i].kind, "deps", deps));
    }
    (void)cfg;
    return arr;
}

gm_status gm_engine_check_name(const char *name, gm_error *err)
{
    if (!name || !*name)
        return gm_error_set(err, GM_ERR_INVALID, "a deployment name is required (--name NAME)");
    return gm_stack_validate_name(name, err);
}

/* ---- journal and state access ------------------------------------------ */

static gm_node_state *state_of(gm_engine *e, gm_node_run *n)
{
    return gm_deployment_ensure_node(e->dep, n->def->name, n->def->kind);
}

/* Makes every change made so far durable (group commit). Called without
 * e->lock. Each change bumps e->version under e->lock; the thread that gets
 * the I/O lock writes a snapshot of the latest state, so saves that pile up
 * behind a slow fsync collapse into one write. Returns only when a version at
 * least as new as the caller's change is on disk. */
static gm_status commit(gm_engine *e, gm_error *err)
{
    pthread_mutex_lock(&e->lock);
    uint64_t mine = ++e->version;
    pthread_mutex_unlock(&e->lock);
    gm_status st = GM_OK;
    pthread_mutex_lock(&e->io_lock);
    if (e->written < mine) {
        pthread_mutex_lock(&e->lock);
        uint64_t current = e->version;
        json_t *j = gm_deployment_to_json(e->dep);
        pthread_mutex_unlock(&e->lock);
        gm_deployment *snap = NULL;
        st = j ? gm_deployment_from_json(j, &snap, err)
               : gm_error_set(err, GM_ERR_NOMEM, "out of memory saving state");
        json_decref(j);
        if (st == GM_OK)
            st = gm_store_save(e->store, snap, err);
        if (st == GM_OK) {
            e->written = current;
            e->dep->updated_at = snap->updated_at;
        }
        gm_deployment_free(snap);
    }
    pthread_mutex_unlock(&e->io_lock);
    return st;
}

gm_status gm_e_journal_intent(gm_engine *e, gm_node_run *n, char *out_token, size_t size,
                              gm_error *err)
{
    pthread_mutex_lock(&e->lock);
    gm_node_state *s = state_of(e, n);
    if (!*s->token) {
        char rnd[13];
        gm_random_token(rnd, 12, NULL);
        snprintf(s->token, sizeof s->token, "gm-%s-%s-%s", e->dep->name, n->def->name, rnd);
    }
    s->status = GM_NODE_CREATING;
    s->provenance = GM_PROV_CREATED;
    if (!s->created_at)
        s->created_at = gm_wall_ms();
    s->updated_at = gm_wall_ms();
    if (out_token)
        snprintf(out_token, size, "%s", s->token);
    pthread_mutex_unlock(&e->lock);
    return commit(e, err);
}

gm_status gm_e_journal_id(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    pthread_mutex_lock(&e->lock);
    gm_node_state *s = state_of(e, n);
    gm_status st = gm_node_set_id(s, id);
    s->updated_at = gm_wall_ms();
    gm_deployment_add_event(e->dep, "created", n->def->name, "%s %s", n->def->kind, id);
    pthread_mutex_unlock(&e->lock);
    if (st == GM_OK)
        st = commit(e, err);
    else
        gm_error_set(err, st, "out of memory");
    if (e->progress)
        gm_progress_detail(e->progress, n->def->name, id);
    return st;
}

char *gm_e_id(gm_engine *e, const char *node_name)
{
    pthread_mutex_lock(&e->lock);
    gm_node_state *s = gm_deployment_node(e->dep, node_name);
    char *id = s && s->id ? strdup(s->id) : NULL;
    pthread_mutex_unlock(&e->lock);
    return id;
}

char *gm_e_output(gm_engine *e, const char *node_name, const char *key)
{
    pthread_mutex_lock(&e->lock);
    gm_node_state *s = gm_deployment_node(e->dep, node_name);
    const char *v = s ? json_string_value(json_object_get(s->outputs, key)) : NULL;
    char *out = v ? strdup(v) : NULL;
    pthread_mutex_unlock(&e->lock);
    return out;
}

void gm_e_set_output(gm_engine *e, gm_node_run *n, const char *key, const char *value)
{
    pthread_mutex_lock(&e->lock);
    gm_node_state *s = state_of(e, n);
    json_object_set_new(s->outputs, key, value ? json_string(value) : json_null());
    pthread_mutex_unlock(&e->lock);
}

gm_provenance gm_e_provenance(gm_engine *e, const char *node_name)
{
    pthread_mutex_lock(&e->lock);
    gm_node_state *s = gm_deployment_node(e->dep, node_name);
    gm_provenance p = s ? s->provenance : GM_PROV_CREATED;
    pthread_mutex_unlock(&e->lock);
    return p;
}

void gm_e_event(gm_engine *e, gm_node_run *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&e->lock);
    gm_deployment_add_event(e->dep, "note", n ? n->def->name : NULL, "%s", msg);
    pthread_mutex_unlock(&e->lock);
    gm_log_event(GM_LOG_INFO, "note",
                 json_pack("{s:s, s:s}", "node", n ? n->def->name : "", "message", msg));
    if (e->progress)
        gm_progress_note(e->progress, "%s", msg);
}

gm_status gm_e_wait(gm_engine *e, int64_t interval_ms, const char *what, gm_error *err)
{
    int64_t end = gm_now_ms() + interval_ms;
    for (;;) {
        if (e->interrupt && *e->interrupt)
            return gm_error_set(err, GM_ERR_CONFLICT, "interrupted while %s", what);
        int64_t now = gm_now_ms();
        if (now >= e->deadline_ms)
            return gm_error_set(err, GM_ERR_TIMEOUT, "timed out while %s", what);
        if (now >= end)
            return GM_OK;
        int64_t step = end - now;
        if (step > 100)
            step = 100;
        if (e->deadline_ms - now < step)
            step = e->deadline_ms - now;
        gm_sleep_ms(step);
    }
}

void gm_e_resource_name(gm_engine *e, const char *suffix, char *out, size_t size)
{
    snprintf(out, size, "geusemaker-%s-%s", e->dep->name, suffix);
}

/* ---- the executor ------------------------------------------------------- */

static bool interrupted(gm_engine *e)
{
    return e->interrupt && *e->interrupt;
}

static int find_run(gm_engine *e, const char *name)
{
    for (size_t i = 0; i < e->n_runs; i++)
        if (strcmp(e->runs[i].def->name, name) == 0)
            return (int)i;
    return -1;
}

static gm_status engine_init(gm_engine *e, const gm_engine_options *o, const gm_deploy_config *cfg,
                             gm_deployment *dep, int64_t timeout_ms, gm_error *err)
{
    memset(e, 0, sizeof *e);
    e->aws = o->aws;
    e->pricing = o->pricing;
    e->store = o->store;
    e->progress = o->progress;
    e->interrupt = o->interrupt;
    e->cfg = cfg;
    e->dep = dep;
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->io_lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    const char *poll = getenv("GEUSEMAKER_POLL_MS");
    e->poll_ms = poll && atoi(poll) > 0 ? atoi(poll) : 2000;
    e->deadline_ms = gm_now_ms() + timeout_ms;
    e->only_group = -1;
    size_t n;
    const gm_node_def *g = gm_engine_graph(dep->tier, &n);
    e->runs = calloc(n, sizeof *e->runs);
    if (!e->runs)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    e->n_runs = n;
    for (size_t i = 0; i < n; i++) {
        gm_node_run *r = &e->runs[i];
        r->def = &g[i];
        r->ops = gm_engine_ops_for(g[i].kind);
        r->engine = e;
        if (!r->ops)
            return gm_error_set(err, GM_ERR_INTERNAL, "no implementation for node kind '%s'",
                                g[i].kind);
        for (int k = 0; k < GM_MAX_DEPS && g[i].deps[k]; k++) {
            int d = find_run(e, g[i].deps[k]);
            if (d < 0 || (size_t)d >= i)
                return gm_error_set(err, GM_ERR_INTERNAL,
                                    "graph node '%s' depends on '%s', which is not before it",
                                    g[i].name, g[i].deps[k]);
            r->deps[r->n_deps++] = d;
        }
    }
    return GM_OK;
}

static void engine_release(gm_engine *e)
{
    gm_e_market_free(e);
    free(e->runs);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->io_lock);
    pthread_mutex_destroy(&e->lock);
}

static void record_failure(gm_engine *e, gm_node_run *r, const gm_error *nerr)
{
    if (r->def->group == GM_GROUP_ALB && !e->reversing) {
        if (!e->alb_failed) {
            e->alb_failed = true;
            e->alb_error = *nerr;
            gm_error_prefix(&e->alb_error, "%s", r->def->name);
        }
        return;
    }
    if (!e->failed) {
        e->failed = true;
        e->first_error = *nerr;
        gm_error_prefix(&e->first_error, "%s", r->def->name);
    }
}

static void log_step(const char *event, gm_node_run *r, const gm_error *nerr, int64_t ms)
{
    json_t *f = json_pack("{s:s, s:s}", "node", r->def->name, "kind", r->def->kind);
    if (ms >= 0)
        json_object_set_new(f, "duration_ms", json_integer(ms));
    if (nerr && nerr->status != GM_OK) {
        json_object_set_new(f, "error", json_string(nerr->message));
        if (*nerr->aws_code)
            json_object_set_new(f, "aws_code", json_string(nerr->aws_code));
    }
    gm_log_event(nerr && nerr->status != GM_OK ? GM_LOG_ERROR : GM_LOG_INFO, event, f);
}

static void *create_worker(void *arg)
{
    gm_node_run *r = arg;
    gm_engine *e = r->engine;
    gm_error nerr = {0};
    gm_status st = r->ops->create(e, r, &nerr);
    int64_t ms = gm_now_ms() - r->started_ms;
    pthread_mutex_lock(&e->lock);
    gm_node_state *s = state_of(e, r);
    s->updated_at = gm_wall_ms();
    if (st == GM_OK) {
        s->status = GM_NODE_CREATED;
        gm_node_set_error(s, NULL);
        r->run = RUN_DONE;
    } else {
        /* A node that never got past its intent may still have created
         * something: failed keeps it on the list for find-by-tag. */
        s->status = GM_NODE_FAILED;
        gm_node_set_error(s, nerr.message);
        gm_deployment_add_event(e->dep, "failed", r->def->name, "%s", nerr.message);
        r->run = RUN_FAILED;
        record_failure(e, r, &nerr);
    }
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    gm_error serr = {0};
    if (commit(e, &serr) != GM_OK) {
        pthread_mutex_lock(&e->lock);
        record_failure(e, r, &serr);
        pthread_cond_broadcast(&e->cond);
        pthread_mutex_unlock(&e->lock);
    }
    log_step(st == GM_OK ? "step_done" : "step_failed", r, &nerr, ms);
    if (e->progress) {
        char *id = gm_e_id(e, r->def->name);
        if (st == GM_OK)
            gm_progress_done(e->progress, r->def->name, id ? id : "");
        else
            gm_progress_fail(e->progress, r->def->name, nerr.message);
        free(id);
    }
    return NULL;
}

static bool deps_done(gm_engine *e, gm_node_run *r)
{
    for (int k = 0; k < r->n_deps; k++)
        if (e->runs[r->deps[k]].run != RUN_DONE)
            return false;
    return true;
}

/* Runs the create side of the graph. Returns GM_OK when every node is done. */
static gm_status run_forward(gm_engine *e, gm_error *err)
{
    pthread_mutex_lock(&e->lock);
    for (;;) {
        bool stop = e->failed || interrupted(e) || gm_now_ms() >= e->deadline_ms;
        size_t active = 0, waiting = 0;
        for (size_t i = 0; i < e->n_runs; i++) {
            gm_node_run *r = &e->runs[i];
            bool group_stopped = r->def->group == GM_GROUP_ALB && e->alb_failed;
            if (r->run == RUN_WAIT && !stop && !group_stopped && deps_done(e, r)) {
                r->run = RUN_ACTIVE;
                r->started_ms = gm_now_ms();
                gm_node_state *s = state_of(e, r);
                (void)s;
                if (e->progress)
                    gm_progress_start(e->progress, r->def->name, r->ops->label);
                gm_log_event(GM_LOG_INFO, "step_start",
                             json_pack("{s:s, s:s}", "node", r->def->name, "kind", r->def->kind));
                if (pthread_create(&r->thread, NULL, create_worker, r) != 0) {
                    r->run = RUN_FAILED;
                    gm_error terr = {0};
                    gm_error_set(&terr, GM_ERR_INTERNAL, "cannot start a thread");
                    record_failure(e, r, &terr);
                    continue;
                }
                r->joinable = true;
            }
            if (r->run == RUN_ACTIVE)
                active++;
            if (r->run == RUN_WAIT)
                waiting++;
        }
        if (active == 0)
            break;
        pthread_cond_wait(&e->cond, &e->lock);
    }
    bool failed = e->failed;
    pthread_mutex_unlock(&e->lock);
    for (size_t i = 0; i < e->n_runs; i++)
        if (e->runs[i].joinable) {
            pthread_join(e->runs[i].thread, NULL);
            e->runs[i].joinable = false;
        }
    if (failed) {
        *err = e->first_error;
        return err->status ? err->status : GM_ERR_INTERNAL;
    }
    if (interrupted(e))
        return gm_error_set(err, GM_ERR_CONFLICT, "interrupted");
    for (size_t i = 0; i < e->n_runs; i++)
        if (e->runs[i].run != RUN_DONE && !(e->alb_failed && e->runs[i].def->group == GM_GROUP_ALB))
            return gm_error_set(err, GM_ERR_TIMEOUT, "deploy timed out before '%s' started",
                                e->runs[i].def->name);
    if (e->alb_failed) {
        *err = e->alb_error;
        return err->status ? err->status : GM_ERR_INTERNAL;
    }
    return GM_OK;
}

/* ---- reverse: rollback and destroy --------------------------------------- */

static bool needs_delete(gm_engine *e, gm_node_run *r)
{
    gm_node_state *s = gm_deployment_node(e->dep, r->def->name);
    if (!s || s->provenance == GM_PROV_REUSED || !r->ops->owns_resource)
        return false;
    if (e->only_group >= 0 && r->def->group != e->only_group)
        return false;
    if (e->keep_efs &&
        (strcmp(r->def->kind, "efs") == 0 || strcmp(r->def->kind, "mount_target") == 0))
        return false;
    return s->status == GM_NODE_CREATING || s->status == GM_NODE_CREATED ||
           s->status == GM_NODE_FAILED || s->status == GM_NODE_DELETING;
}

static void *destroy_worker(void *arg)
{
    gm_node_run *r = arg;
    gm_engine *e = r->engine;
    gm_error nerr = {0};
    char *id = gm_e_id(e, r->def->name);
    gm_status st = GM_OK;
    if (!id && r->ops->find)
        st = r->ops->find(e, r, &id, &nerr);
    if (st == GM_OK && id) {
        pthread_mutex_lock(&e->lock);
        gm_node_state *s = state_of(e, r);
        gm_node_set_id(s, id);
        s->status = GM_NODE_DELETING;
        pthread_mutex_unlock(&e->lock);
        gm_error serr = {0};
        commit(e, &serr);
        if (e->progress)
            gm_progress_detail(e->progress, r->def->name, id);
        for (;;) {
            gm_error_clear(&nerr);
            st = r->ops->destroy(e, r, id, &nerr);
            if (st == GM_OK || !gm_e_is_dependency_error(&nerr))
                break;
            gm_error werr = {0};
            char what[128];
            snprintf(what, sizeof what, "waiting for dependencies of %s %s to go", r->def->kind,
                     id);
            if (gm_e_wait(e, e->poll_ms, what, &werr) != GM_OK) {
                gm_error_prefix(&nerr, "%s", werr.message);
                break;
            }
        }
    }
    int64_t ms = gm_now_ms() - r->started_ms;
    pthread_mutex_lock(&e->lock);
    gm_node_state *s = state_of(e, r);
    s->updated_at = gm_wall_ms();
    if (st == GM_OK) {
        s->status = GM_NODE_DELETED;
        gm_node_set_error(s, NULL);
        if (id)
            gm_deployment_add_event(e->dep, "deleted", r->def->name, "%s %s", r->def->kind, id);
        r->run = RUN_DONE;
    } else {
        gm_node_set_error(s, nerr.message);
        gm_deployment_add_event(e->dep, "delete_failed", r->def->name, "%s", nerr.message);
        r->run = RUN_FAILED;
        record_failure(e, r, &nerr);
    }
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    gm_error serr = {0};
    commit(e, &serr);
    log_step(st == GM_OK ? "delete_done" : "delete_failed", r, &nerr, ms);
    if (e->progress) {
        if (st == GM_OK)
            gm_progress_done(e->progress, r->def->name, id ? id : "nothing to delete");
        else
            gm_progress_fail(e->progress, r->def->name, nerr.message);
    }
    free(id);
    return NULL;
}

/* A node can go once every node that depends on it is gone. */
static bool dependents_done(gm_engine *e, size_t idx)
{
    for (size_t i = 0; i < e->n_runs; i++) {
        gm_node_run *r = &e->runs[i];
        for (int k = 0; k < r->n_deps; k++)
            if ((size_t)r->deps[k] == idx && r->run != RUN_DONE)
                return false;
    }
    return true;
}

static gm_status run_reverse(gm_engine *e, gm_error *err)
{
    pthread_mutex_lock(&e->lock);
    e->failed = false;
    e->reversing = true;
    gm_error_clear(&e->first_error);
    for (size_t i = 0; i < e->n_runs; i++) {
        gm_node_run *r = &e->runs[i];
        r->joinable = false;
        r->run = needs_delete(e, r) ? RUN_WAIT : RUN_DONE;
    }
    for (;;) {
        size_t active = 0;
        for (size_t i = 0; i < e->n_runs; i++) {
            gm_node_run *r = &e->runs[i];
            if (r->run == RUN_WAIT && dependents_done(e, i) && gm_now_ms() < e->deadline_ms) {
                r->run = RUN_ACTIVE;
                r->started_ms = gm_now_ms();
                if (e->progress) {
                    char label[96];
                    snprintf(label, sizeof label, "deleting %s", r->def->kind);
                    gm_progress_start(e->progress, r->def->name, label);
                }
                if (pthread_create(&r->thread, NULL, destroy_worker, r) != 0) {
                    r->run = RUN_FAILED;
                    continue;
                }
                r->joinable = true;
            }
            if (r->run == RUN_ACTIVE)
                active++;
        }
        if (active == 0)
            break;
        pthread_cond_wait(&e->cond, &e->lock);
    }
    pthread_mutex_unlock(&e->lock);
    for (size_t i = 0; i < e->n_runs; i++)
        if (e->runs[i].joinable) {
            pthread_join(e->runs[i].thread, NULL);
            e->runs[i].joinable = false;
        }
    size_t left = 0;
    const char *first_left = NULL;
    for (size_t i = 0; i < e->n_runs; i++)
        if (e->runs[i].run != RUN_DONE) {
            left++;
            if (!first_left)
                first_left = e->runs[i].def->name;
        }
    if (left == 0)
        return GM_OK;
    if (e->failed) {
        *err = e->first_error;
        gm_error_prefix(err, "%zu resource(s) remain", left);
        return err->status ? err->status : GM_ERR_INTERNAL;
    }
    return gm_error_set(err, GM_ERR_TIMEOUT,
                        "%zu resource(s) remain (first: '%s'): deadline passed", left, first_left);
}

/* ---- public entry points ------------------------------------------------- */

static void set_status(gm_engine *e, gm_dep_status st, const char *reason)
{
    pthread_mutex_lock(&e->lock);
    e->dep->status = st;
    free(e->dep->status_reason);
    e->dep->status_reason = reason ? strdup(reason) : NULL;
    gm_deployment_add_event(e->dep, "status", NULL, "%s%s%s", gm_dep_status_name(st),
                            reason ? ": " : "", reason ? reason : "");
    pthread_mutex_unlock(&e->lock);
    gm_error serr = {0};
    commit(e, &serr);
    gm_log_event(GM_LOG_INFO, "status",
                 json_pack("{s:s, s:s?}", "status", gm_dep_status_name(st), "reason", reason));
}

static int64_t env_ms(const char *name, int64_t dflt)
{
    const char *v = getenv(name);
    long long n = v ? atoll(v) : 0;
    return n > 0 ? (int64_t)n : dflt;
}

gm_status gm_engine_deploy(const gm_engine_options *o, const gm_deploy_config *cfg,
                           gm_deployment *dep, bool resume, gm_error *err)
{
    gm_engine e;
    int64_t timeout = cfg->timeout_ms ? cfg->timeout_ms : 30 * 60 * 1000;
    gm_status st = engine_init(&e, o, cfg, dep, timeout, err);
    if (st != GM_OK) {
        engine_release(&e);
        return st;
    }
    /* Nodes already created (resume) or reused stay done; the rest run. */
    for (size_t i = 0; i < e.n_runs; i++) {
        gm_node_state *s = gm_deployment_node(dep, e.runs[i].def->name);
        bool done =
            s && (s->provenance == GM_PROV_REUSED || (s->status == GM_NODE_CREATED && s->id));
        e.runs[i].run = done ? RUN_DONE : RUN_WAIT;
        if (done && o->progress)
            gm_progress_skip(o->progress, e.runs[i].def->name,
                             s->provenance == GM_PROV_REUSED ? "reused" : "already created");
    }
    set_status(&e, GM_DEP_CREATING, resume ? "resuming" : NULL);
    st = run_forward(&e, err);
    if (st == GM_OK) {
        set_status(&e, GM_DEP_RUNNING, NULL);
        engine_release(&e);
        return GM_OK;
    }
    char reason[GM_ERROR_MESSAGE_MAX];
    snprintf(reason, sizeof reason, "%s", err->message);
    if (e.alb_failed && !e.failed && !interrupted(&e)) {
        /* Only the load balancer part failed: remove just its resources and
         * keep the EC2 side; deploy --resume creates the part again. */
        if (o->progress)
            gm_progress_note(o->progress, "load balancer failed: removing only its resources");
        e.only_group = GM_GROUP_ALB;
        e.deadline_ms = gm_now_ms() + env_ms("GEUSEMAKER_DESTROY_TIMEOUT_MS", 20 * 60 * 1000);
        gm_error rerr = {0};
        gm_status rst = run_reverse(&e, &rerr);
        char msg[2 * GM_ERROR_MESSAGE_MAX + 64];
        if (rst == GM_OK)
            snprintf(msg, sizeof msg, "load balancer failed and was removed: %s", reason);
        else
            snprintf(msg, sizeof msg, "load balancer failed: %s; removing it failed too: %s",
                     reason, rerr.message);
        set_status(&e, GM_DEP_PARTIAL, msg);
        engine_release(&e);
        return st;
    }
    if (cfg->no_rollback || interrupted(&e)) {
        set_status(&e, GM_DEP_FAILED, reason);
        engine_release(&e);
        return st;
    }
    set_status(&e, GM_DEP_ROLLING_BACK, reason);
    if (o->progress)
        gm_progress_note(o->progress, "deploy failed: rolling back what it created");
    /* Rollback gets its own deadline: the deploy's may have run out. */
    e.deadline_ms = gm_now_ms() + env_ms("GEUSEMAKER_DESTROY_TIMEOUT_MS", 20 * 60 * 1000);
    gm_error rerr = {0};
    if (run_reverse(&e, &rerr) == GM_OK) {
        char msg[GM_ERROR_MESSAGE_MAX + 32];
        snprintf(msg, sizeof msg, "%s (rolled back)", reason);
        set_status(&e, GM_DEP_FAILED, msg);
        dep->status = GM_DEP_DESTROYED; /* tells the caller nothing remains */
    } else {
        char msg[2 * GM_ERROR_MESSAGE_MAX + 32];
        snprintf(msg, sizeof msg, "%s; rollback incomplete: %s", reason, rerr.message);
        set_status(&e, GM_DEP_FAILED, msg);
    }
    engine_release(&e);
    return st;
}

gm_status gm_engine_destroy(const gm_engine_options *o, gm_deployment *dep, bool keep_efs,
                            gm_error *err)
{
    gm_engine e;
    gm_deploy_config none = {.name = dep->name, .tier = dep->tier};
    gm_status st = engine_init(&e, o, &none, dep,
                               env_ms("GEUSEMAKER_DESTROY_TIMEOUT_MS", 20 * 60 * 1000), err);
    if (st != GM_OK) {
        engine_release(&e);
        return st;
    }
    e.keep_efs = keep_efs;
    set_status(&e, GM_DEP_DESTROYING, NULL);
    st = run_reverse(&e, err);
    if (st == GM_OK)
        set_status(&e, GM_DEP_DESTROYED, NULL);
    else
        set_status(&e, GM_DEP_FAILED, err->message);
    engine_release(&e);
    return st;
}

gm_status gm_engine_inspect(const gm_engine_options *o, gm_deployment *dep, json_t **out,
                            gm_error *err)
{
    gm_engine e;
    gm_deploy_config none = {.name = dep->name, .tier = dep->tier};
    gm_status st = engine_init(&e, o, &none, dep, 5 * 60 * 1000, err);
    json_t *res = json_object();
    for (size_t i = 0; st == GM_OK && i < e.n_runs; i++) {
        gm_node_run *r = &e.runs[i];
        gm_node_state *s = gm_deployment_node(dep, r->def->name);
        if (!s || !s->id || !r->ops->inspect || s->status == GM_NODE_DELETED)
            continue;
        json_t *live = json_object();
        json_object_set_new(live, "id", json_string(s->id));
        json_object_set_new(live, "drift", json_array());
        gm_error nerr = {0};
        if (r->ops->inspect(&e, r, s->id, live, &nerr) != GM_OK) {
            json_object_set_new(live, "error", json_string(nerr.message));
            if (nerr.status == GM_ERR_AUTH) {
                *err = nerr;
                st = nerr.status;
            }
        }
        json_object_set_new(res, r->def->name, live);
    }
    engine_release(&e);
    if (st != GM_OK) {
        json_decref(res);
        return st;
    }
    *out = res;
    return GM_OK;
}
