/* The journal and the node API (engine/node.h): every read and write of the
 * record by node code goes through here, under the run's lock, and every
 * journal write is saved (group commit) before it returns. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/log.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "engine/run.h"

gm_node_state *gm_run_state_of(gm_run *r, gm_node *n)
{
    return gm_deployment_ensure_node(r->dep, n->def->name, n->def->ops->kind);
}

/* Each change bumps r->version under r->lock; the thread that gets the I/O
 * lock writes a snapshot of the latest state, so saves that pile up behind a
 * slow fsync collapse into one write. Returns only when a version at least as
 * new as the caller's change is on disk. */
gm_status gm_run_commit(gm_run *r, gm_error *err)
{
    if (!r->store)
        return GM_OK; /* an in-memory run: the caller saves the record */
    pthread_mutex_lock(&r->lock);
    uint64_t mine = ++r->version;
    pthread_mutex_unlock(&r->lock);
    gm_status st = GM_OK;
    pthread_mutex_lock(&r->io_lock);
    if (r->written < mine) {
        pthread_mutex_lock(&r->lock);
        uint64_t current = r->version;
        json_t *j = gm_deployment_to_json(r->dep);
        pthread_mutex_unlock(&r->lock);
        gm_deployment *snap = NULL;
        st = j ? gm_deployment_from_json(j, &snap, err)
               : gm_error_set(err, GM_ERR_NOMEM, "out of memory saving state");
        json_decref(j);
        if (st == GM_OK)
            st = gm_store_save(r->store, snap, err);
        if (st == GM_OK) {
            r->written = current;
            pthread_mutex_lock(&r->lock);
            r->dep->updated_at = snap->updated_at;
            pthread_mutex_unlock(&r->lock);
        }
        gm_deployment_free(snap);
    }
    pthread_mutex_unlock(&r->io_lock);
    return st;
}

void gm_run_emit(gm_run *r, gm_engine_event_kind kind, const char *step, const char *text)
{
    if (!r->observer)
        return;
    gm_engine_event ev = {.kind = kind, .step = step, .text = text ? text : ""};
    r->observer(r->observer_ctx, &ev);
}

void gm_run_release_shared(gm_run *r)
{
    for (size_t i = 0; i < r->n_shared; i++)
        if (r->shared[i].release)
            r->shared[i].release(r->shared[i].value);
    r->n_shared = 0;
}

/* ---- who and where ------------------------------------------------------ */

const char *gm_node_name(const gm_node *n)
{
    return n->def->name;
}

const char *gm_node_kind(const gm_node *n)
{
    return n->def->ops->kind;
}

int gm_node_slot(const gm_node *n)
{
    return n->def->slot;
}

const char *gm_node_deployment(const gm_node *n)
{
    return n->run->dep->name; /* fixed for the run: no lock needed */
}

const char *gm_node_deployment_id(const gm_node *n)
{
    return n->run->dep->deployment_id;
}

gm_tier gm_node_tier(const gm_node *n)
{
    return n->run->tier;
}

gm_aws_client *gm_node_aws(const gm_node *n)
{
    return n->run->aws;
}

gm_aws_client *gm_node_pricing(const gm_node *n)
{
    return n->run->pricing;
}

const gm_deploy_config *gm_node_config(const gm_node *n)
{
    return n->run->cfg;
}

const gm_engine_settings *gm_node_settings(const gm_node *n)
{
    return &n->run->settings;
}

int64_t gm_node_poll_ms(const gm_node *n)
{
    return n->run->settings.poll_ms;
}

int64_t gm_node_deadline_ms(const gm_node *n)
{
    return n->run->deadline_ms;
}

bool gm_node_interrupted(const gm_node *n)
{
    return n->run->interrupt && *n->run->interrupt;
}

void gm_node_resource_name(const gm_node *n, const char *suffix, char *out, size_t size)
{
    snprintf(out, size, "geusemaker-%s-%s", gm_node_deployment(n), suffix);
}

void gm_node_global_name(const gm_node *n, const char *suffix, char *out, size_t size)
{
    const char *id = gm_node_deployment_id(n);
    if (*id)
        snprintf(out, size, "geusemaker-%s-%s-%s", gm_node_deployment(n), id, suffix);
    else /* a record made before ids kept the names it was given */
        gm_node_resource_name(n, suffix, out, size);
}

/* ---- the journal ----------------------------------------------------------- */

gm_status gm_node_intent(gm_node *n, char *out_token, size_t size, gm_error *err)
{
    gm_run *r = n->run;
    char rnd[13];
    gm_status st = gm_random_token(rnd, 12, err);
    if (st != GM_OK)
        return st;
    pthread_mutex_lock(&r->lock);
    gm_node_state *s = gm_run_state_of(r, n);
    if (!s) {
        pthread_mutex_unlock(&r->lock);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    if (!*s->token)
        snprintf(s->token, sizeof s->token, "gm-%s-%s-%s", r->dep->name, n->def->name, rnd);
    s->status = GM_NODE_CREATING;
    s->provenance = GM_PROV_CREATED;
    if (!s->created_at)
        s->created_at = gm_wall_ms();
    s->updated_at = gm_wall_ms();
    if (out_token)
        snprintf(out_token, size, "%s", s->token);
    pthread_mutex_unlock(&r->lock);
    return gm_run_commit(r, err);
}

/* Records id as the node's (reused: given by the user) and saves. */
static GM_MUST_CHECK gm_status record_id(gm_node *n, const char *id, bool reused, gm_error *err)
{
    gm_run *r = n->run;
    pthread_mutex_lock(&r->lock);
    gm_node_state *s = gm_run_state_of(r, n);
    gm_status st = s ? gm_node_state_set_id(s, id) : GM_ERR_NOMEM;
    if (st == GM_OK) {
        s->updated_at = gm_wall_ms();
        if (reused)
            s->provenance = GM_PROV_REUSED;
        else
            gm_deployment_add_event(r->dep, "created", n->def->name, "%s %s", n->def->ops->kind,
                                    id);
    }
    pthread_mutex_unlock(&r->lock);
    if (st != GM_OK)
        return gm_error_set(err, st, "out of memory");
    st = gm_run_commit(r, err);
    gm_run_emit(r, GM_EVENT_STEP_DETAIL, n->def->name, id);
    return st;
}

gm_status gm_node_created(gm_node *n, const char *id, gm_error *err)
{
    return record_id(n, id, false, err);
}

gm_status gm_node_reused(gm_node *n, const char *id, gm_error *err)
{
    return record_id(n, id, true, err);
}

bool gm_node_journalled(gm_node *n)
{
    pthread_mutex_lock(&n->run->lock);
    gm_node_state *s = gm_deployment_node(n->run->dep, n->def->name);
    bool earlier = s && (s->status == GM_NODE_CREATING || s->status == GM_NODE_FAILED ||
                         s->status == GM_NODE_DELETING || *s->token);
    pthread_mutex_unlock(&n->run->lock);
    return earlier;
}

void gm_ids_init(gm_ids *ids)
{
    ids->v = NULL;
    ids->n = 0;
}

void gm_ids_release(gm_ids *ids)
{
    for (size_t i = 0; i < ids->n; i++)
        free(ids->v[i]);
    free(ids->v);
    gm_ids_init(ids);
}

bool gm_ids_has(const gm_ids *ids, const char *id)
{
    for (size_t i = 0; i < ids->n; i++)
        if (strcmp(ids->v[i], id) == 0)
            return true;
    return false;
}

gm_status gm_ids_add(gm_ids *ids, const char *id, gm_error *err)
{
    if (!id || !*id || gm_ids_has(ids, id))
        return GM_OK;
    char **v = realloc(ids->v, (ids->n + 1) * sizeof *v);
    char *copy = v ? strdup(id) : NULL;
    if (v)
        ids->v = v;
    if (!copy)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    ids->v[ids->n++] = copy;
    return GM_OK;
}

gm_status gm_node_destroy_extra(gm_node *n, const char *id, gm_error *err)
{
    if (!n->def->ops->destroy)
        return GM_OK;
    gm_status st = n->def->ops->destroy(n, id, err);
    if (st == GM_OK) {
        pthread_mutex_lock(&n->run->lock);
        gm_deployment_add_event(n->run->dep, "deleted", n->def->name, "duplicate %s %s",
                                n->def->ops->kind, id);
        pthread_mutex_unlock(&n->run->lock);
    }
    return st;
}

gm_status gm_node_find(gm_node *n, gm_ids *out, gm_error *err)
{
    gm_ids_init(out);
    return n->def->ops->find ? n->def->ops->find(n, out, err) : GM_OK;
}

void gm_node_token(gm_node *n, char *out, size_t size)
{
    pthread_mutex_lock(&n->run->lock);
    gm_node_state *s = gm_deployment_node(n->run->dep, n->def->name);
    snprintf(out, size, "%s", s ? s->token : "");
    pthread_mutex_unlock(&n->run->lock);
}

/* ---- other nodes ----------------------------------------------------------- */

char *gm_node_id_of(gm_node *n, const char *node)
{
    pthread_mutex_lock(&n->run->lock);
    gm_node_state *s = gm_deployment_node(n->run->dep, node);
    char *id = s && s->id ? strdup(s->id) : NULL;
    pthread_mutex_unlock(&n->run->lock);
    return id;
}

char *gm_node_output_of(gm_node *n, const char *node, const char *key)
{
    pthread_mutex_lock(&n->run->lock);
    gm_node_state *s = gm_deployment_node(n->run->dep, node);
    const char *v = s ? json_string_value(json_object_get(s->outputs, key)) : NULL;
    char *out = v ? strdup(v) : NULL;
    pthread_mutex_unlock(&n->run->lock);
    return out;
}

gm_provenance gm_node_provenance_of(gm_node *n, const char *node)
{
    pthread_mutex_lock(&n->run->lock);
    gm_node_state *s = gm_deployment_node(n->run->dep, node);
    gm_provenance p = s ? s->provenance : GM_PROV_CREATED;
    pthread_mutex_unlock(&n->run->lock);
    return p;
}

gm_status gm_node_set_output(gm_node *n, const char *key, const char *value, gm_error *err)
{
    json_t *v = value ? json_string(value) : json_null();
    if (!v)
        return gm_error_set(err, GM_ERR_INVALID, "output '%s' of '%s' is not valid utf-8", key,
                            n->def->name);
    pthread_mutex_lock(&n->run->lock);
    gm_node_state *s = gm_run_state_of(n->run, n);
    int rc = s ? json_object_set_new(s->outputs, key, v) : (json_decref(v), -1);
    pthread_mutex_unlock(&n->run->lock);
    return rc == 0 ? GM_OK : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
}

json_t *gm_node_record_summary(gm_node *n)
{
    pthread_mutex_lock(&n->run->lock);
    const gm_deployment *d = n->run->dep;
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:O}", "name", d->name, "deployment_id", d->deployment_id,
                  "tier", d->tier, "region", d->region, "config", d->config);
    pthread_mutex_unlock(&n->run->lock);
    return j;
}

void gm_node_set_cost(gm_node *n, json_t *estimate)
{
    if (!estimate)
        return;
    pthread_mutex_lock(&n->run->lock);
    json_decref(n->run->dep->cost);
    n->run->dep->cost = estimate;
    pthread_mutex_unlock(&n->run->lock);
}

/* ---- shared values --------------------------------------------------------- */

gm_status gm_node_share(gm_node *n, const char *key, void *value, void (*release)(void *),
                        gm_error *err)
{
    gm_run *r = n->run;
    gm_shared old = {0};
    gm_status st = GM_OK;
    pthread_mutex_lock(&r->lock);
    size_t i = 0;
    while (i < r->n_shared && strcmp(r->shared[i].key, key) != 0)
        i++;
    if (i < r->n_shared)
        old = r->shared[i];
    else if (r->n_shared < GM_MAX_SHARED)
        r->n_shared++;
    else
        st = GM_ERR_LIMIT;
    if (st == GM_OK)
        r->shared[i] = (gm_shared){.key = key, .value = value, .release = release};
    pthread_mutex_unlock(&r->lock);
    if (old.release)
        old.release(old.value);
    if (st != GM_OK) {
        if (release)
            release(value);
        return gm_error_set(err, st, "too many shared values in one run (at most %d)",
                            GM_MAX_SHARED);
    }
    return GM_OK;
}

void *gm_node_shared(gm_node *n, const char *key)
{
    void *v = NULL;
    pthread_mutex_lock(&n->run->lock);
    for (size_t i = 0; i < n->run->n_shared; i++)
        if (strcmp(n->run->shared[i].key, key) == 0)
            v = n->run->shared[i].value;
    pthread_mutex_unlock(&n->run->lock);
    return v;
}

/* ---- waiting and reporting ------------------------------------------------- */

gm_status gm_node_wait(gm_node *n, int64_t interval_ms, const char *what, gm_error *err)
{
    gm_run *r = n->run;
    int64_t end = gm_now_ms() + interval_ms;
    for (;;) {
        if (gm_node_interrupted(n))
            return gm_error_set(err, GM_ERR_INTERRUPTED, "interrupted while %s", what);
        int64_t now = gm_now_ms();
        if (now >= r->deadline_ms)
            return gm_error_set(err, GM_ERR_TIMEOUT, "timed out while %s", what);
        if (now >= end)
            return GM_OK;
        int64_t step = end - now;
        if (step > 100)
            step = 100;
        if (r->deadline_ms - now < step)
            step = r->deadline_ms - now;
        gm_sleep_ms(step);
    }
}

void gm_node_note(gm_node *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *name = n->def->name;
    pthread_mutex_lock(&n->run->lock);
    gm_deployment_add_event(n->run->dep, "note", name, "%s", msg);
    pthread_mutex_unlock(&n->run->lock);
    gm_log_event(GM_LOG_INFO, "note", json_pack("{s:s, s:s}", "node", name, "message", msg));
    gm_run_emit(n->run, GM_EVENT_NOTE, name, msg);
}

void gm_node_detail(gm_node *n, const char *text)
{
    gm_run_emit(n->run, GM_EVENT_STEP_DETAIL, n->def->name, text);
}
