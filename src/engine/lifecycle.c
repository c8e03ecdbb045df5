/* The deployment after deploy: stop and start (the group's capacity), and
 * update (a new launch template version, a replacement, a rollback when the
 * replacement is not healthy). Each is a run of the tier's graph that calls
 * the group's and the health node's operations directly, saving the record
 * as it goes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/str.h"
#include "core/timeutil.h"
#include "stack/secrets.h"
#include "stack/stack.h"
#include "stack/validate.h"

#include "engine/engine.h"
#include "engine/nodes.h"
#include "engine/lifecycle.h"
#include "engine/run.h"

#define LIFECYCLE_TIMEOUT_MS (30 * 60 * 1000)

/* The run's node called name, or NULL. */
static gm_node *node_named(gm_run *r, const char *name)
{
    int i = gm_run_find_node(r, name);
    return i < 0 ? NULL : &r->nodes[i];
}

/* The deployment's group, or why there is none to act on. */
static GM_MUST_CHECK gm_status group_of(const gm_deployment *dep, const char *verb,
                                        const char **out, gm_error *err)
{
    gm_engine_summary s;
    gm_engine_summary_of(dep, &s);
    *out = s.group;
    if (s.group)
        return GM_OK;
    if (gm_deployment_node((gm_deployment *)dep, "instance"))
        return gm_error_set(err, GM_ERR_INVALID,
                            "deployment '%s' was made before its instance ran in an Auto Scaling "
                            "group: %s needs the group (destroy and deploy it again)",
                            dep->name, verb);
    return gm_error_set(err, GM_ERR_INVALID,
                        "deployment '%s' has no Auto Scaling group to %s ('geusemaker deploy "
                        "--resume %s' makes it)",
                        dep->name, verb, dep->name);
}

/* Whether the record's status lets verb run. */
static GM_MUST_CHECK gm_status check_status(const gm_deployment *dep, const char *verb,
                                            bool stopped_ok, gm_error *err)
{
    switch (dep->status) {
    case GM_DEP_RUNNING:
    case GM_DEP_PARTIAL: return GM_OK;
    case GM_DEP_STOPPED:
        if (stopped_ok)
            return GM_OK;
        break;
    default: break;
    }
    return gm_error_set(err, GM_ERR_INVALID, "cannot %s '%s': the record says %s%s", verb,
                        dep->name, gm_dep_status_name(dep->status),
                        dep->status == GM_DEP_STOPPED ? " ('geusemaker start' first)"
                        : dep->status == GM_DEP_FAILED || dep->status == GM_DEP_CREATING
                            ? " (finish it with 'geusemaker deploy --resume')"
                            : "");
}

/* What stop and start act on: a run of dep's graph with the config the
 * record keeps, the group's node and the group's name. */
typedef struct group_run {
    gm_deploy_config cfg;
    gm_run r;
    bool inited; /* gm_run_release is due */
    gm_node *n;
    char *group; /* a copy: the record may change under us */
} group_run;

static GM_MUST_CHECK gm_status group_run_open(group_run *g, const gm_engine_options *o,
                                              gm_deployment *dep, const char *verb, gm_error *err)
{
    memset(g, 0, sizeof *g);
    const char *group = NULL;
    gm_status st = check_status(dep, verb, true, err);
    if (st == GM_OK)
        st = group_of(dep, verb, &group, err);
    if (st == GM_OK)
        st = gm_engine_config_from_record(dep, &g->cfg, err);
    if (st != GM_OK)
        return st;
    g->inited = true;
    st = gm_run_init(&g->r, o, &g->cfg, dep, LIFECYCLE_TIMEOUT_MS, err);
    g->n = st == GM_OK ? node_named(&g->r, GM_NODE_ASG) : NULL;
    if (st == GM_OK && !g->n)
        st = gm_error_set(err, GM_ERR_INTERNAL, "the tier's graph has no group node");
    g->group = st == GM_OK ? strdup(group) : NULL;
    if (st == GM_OK && !g->group)
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    return st;
}

static void group_run_close(group_run *g)
{
    free(g->group);
    if (g->inited)
        gm_run_release(&g->r);
}

gm_status gm_engine_stop(const gm_engine_options *o, gm_deployment *dep, gm_error *err)
{
    group_run g;
    gm_status st = group_run_open(&g, o, dep, "stop", err);
    if (st == GM_OK) {
        gm_run_emit(&g.r, GM_EVENT_STEP_START, GM_NODE_ASG,
                    "stopping: the group's desired capacity to 0");
        st = gm_n_asg_stop(g.n, g.group, err);
    }
    if (st == GM_OK)
        st = gm_node_set_output(g.n, "instance_id", "", err);
    if (st == GM_OK) {
        gm_run_emit(&g.r, GM_EVENT_STEP_DONE, GM_NODE_ASG, "no instance");
        st = gm_run_set_status(&g.r, GM_DEP_STOPPED, "stopped by geusemaker stop", err);
    } else if (g.n) {
        gm_run_emit(&g.r, GM_EVENT_STEP_FAILED, GM_NODE_ASG, err->message);
    }
    group_run_close(&g);
    return st;
}

/* Waits for the group's instance in service (moving to on-demand as deploy
 * does). */
static GM_MUST_CHECK gm_status wait_group(gm_run *r, gm_node *n, const char *group, gm_error *err)
{
    gm_n_asg_launch launch;
    memset(&launch, 0, sizeof launch);
    gm_cost_ranking_init(&launch.plan);
    gm_run_emit(r, GM_EVENT_STEP_START, GM_NODE_ASG, "waiting for the group's instance in service");
    gm_status st = gm_n_asg_wait(n, group, &launch, err);
    gm_cost_ranking_release(&launch.plan);
    if (st != GM_OK) {
        gm_run_emit(r, GM_EVENT_STEP_FAILED, GM_NODE_ASG, err->message);
        return st;
    }
    char *id = gm_node_output_of(n, GM_NODE_ASG, "instance_id");
    gm_run_emit(r, GM_EVENT_STEP_DONE, GM_NODE_ASG, id ? id : "");
    free(id);
    return GM_OK;
}

/* Waits for the stack's health (the health node's check). */
static GM_MUST_CHECK gm_status wait_health(gm_run *r, gm_error *err)
{
    gm_node *h = node_named(r, "health");
    if (!h || !h->def->ops->create)
        return GM_OK;
    gm_run_emit(r, GM_EVENT_STEP_START, "health", h->def->ops->label);
    gm_status st = h->def->ops->create(h, err);
    gm_run_emit(r, st == GM_OK ? GM_EVENT_STEP_DONE : GM_EVENT_STEP_FAILED, "health",
                st == GM_OK ? "" : err->message);
    return st;
}

static GM_MUST_CHECK gm_status wait_serving(gm_run *r, gm_node *n, const char *group, gm_error *err)
{
    gm_status st = wait_group(r, n, group, err);
    return st == GM_OK ? wait_health(r, err) : st;
}

gm_status gm_engine_start(const gm_engine_options *o, gm_deployment *dep, gm_error *err)
{
    group_run g;
    gm_status st = group_run_open(&g, o, dep, "start", err);
    if (st == GM_OK) {
        gm_run_emit(&g.r, GM_EVENT_STEP_START, GM_NODE_ASG,
                    "starting: the group's desired capacity to 1");
        st = gm_n_asg_set_capacity(g.n, g.group, 1, err);
    }
    /* The record says stopped until the instance serves: a crash before
     * leaves a deployment that start starts again. */
    if (st == GM_OK)
        st = wait_serving(&g.r, g.n, g.group, err);
    gm_error serr = {0};
    char reason[GM_ERROR_MESSAGE_MAX + 64];
    snprintf(reason, sizeof reason, "started, but: %s", err->message);
    if (st == GM_OK)
        st = gm_run_set_status(&g.r, GM_DEP_RUNNING, NULL, err);
    else if (g.n && gm_run_set_status(&g.r, GM_DEP_RUNNING, reason, &serr) != GM_OK)
        gm_error_prefix(err, "saving the record failed too (%s)", serr.message);
    group_run_close(&g);
    return st;
}

/* ---- update ------------------------------------------------------------------- */

#define UPDATE_TIMEOUT_MS (15 * 60 * 1000)

static json_t *strings_json(const char *const *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(v[i])) != 0)
            json_decref(a), a = NULL;
    return a;
}

static bool same_strings(const char *const *a, int na, const char *const *b, int nb)
{
    if (na != nb)
        return false;
    for (int i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

/* Adds {"from": from, "to": to} under key of diff (consumes both). */
static void add_change(json_t *diff, const char *key, json_t *from, json_t *to)
{
    json_object_set_new(
        diff, key,
        json_pack("{s:o, s:o}", "from", from ? from : json_null(), "to", to ? to : json_null()));
}

/* The image override of service in cfg, or NULL (the catalogue's pin). */
static const char *image_of(const gm_deploy_config *cfg, const char *service)
{
    for (int i = 0; i < cfg->n_images; i++)
        if (strcmp(cfg->image_services[i], service) == 0)
            return cfg->image_refs[i];
    return NULL;
}

/* Applies req's image overrides to cfg (replacing one of the same service),
 * noting each change in diff. */
static GM_MUST_CHECK gm_status apply_images(gm_deploy_config *cfg, const gm_update_request *req,
                                            json_t *diff, gm_error *err)
{
    json_t *images = json_object();
    for (int i = 0; i < req->n_images; i++) {
        const char *svc = req->image_services[i], *ref = req->image_refs[i];
        const char *before = image_of(cfg, svc);
        if (before && strcmp(before, ref) == 0)
            continue;
        int k = 0;
        while (k < cfg->n_images && strcmp(cfg->image_services[k], svc) != 0)
            k++;
        if (k == cfg->n_images) {
            if (cfg->n_images == GM_MAX_IMAGES) {
                json_decref(images);
                return gm_error_set(err, GM_ERR_INVALID, "at most %d image overrides",
                                    GM_MAX_IMAGES);
            }
            cfg->image_services[cfg->n_images++] = svc;
        }
        cfg->image_refs[k] = ref;
        add_change(images, svc, before ? json_string(before) : NULL, json_string(ref));
    }
    if (json_object_size(images))
        json_object_set(diff, "images", images);
    json_decref(images);
    return GM_OK;
}

json_t *gm_engine_update_diff(const gm_deployment *dep, const gm_update_request *req,
                              gm_deploy_config *out_cfg, gm_error *err)
{
    gm_deploy_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (gm_engine_config_from_record(dep, &cfg, err) != GM_OK)
        return NULL;
    const char *old_first = cfg.instance_type;
    json_t *diff = json_object();
    if (!diff) {
        gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (req->n_types > 0 &&
        !same_strings(req->instance_types, req->n_types, cfg.instance_types, cfg.n_types)) {
        add_change(diff, "instance_types", strings_json(cfg.instance_types, cfg.n_types),
                   strings_json(req->instance_types, req->n_types));
        cfg.n_types = req->n_types > GM_MAX_TYPES ? GM_MAX_TYPES : req->n_types;
        for (int i = 0; i < cfg.n_types; i++)
            cfg.instance_types[i] = req->instance_types[i];
        cfg.instance_type = cfg.instance_types[0];
        cfg.types_named = true;
    }
    if (req->models_set &&
        (!cfg.models_set || !same_strings(req->models, req->n_models, cfg.models, cfg.n_models))) {
        size_t n_old = 0;
        const char *const *old = gm_engine_models(&cfg, &n_old);
        add_change(diff, "models", strings_json(old, (int)n_old),
                   strings_json(req->models, req->n_models));
        cfg.n_models = req->n_models > GM_MAX_MODELS ? GM_MAX_MODELS : req->n_models;
        for (int i = 0; i < cfg.n_models; i++)
            cfg.models[i] = req->models[i];
        cfg.models_set = true;
    }
    gm_status st = apply_images(&cfg, req, diff, err);
    if (st == GM_OK)
        st = gm_engine_check_config(&cfg, err);
    if (st == GM_OK && gm_instance_type_arch(cfg.instance_type) != gm_instance_type_arch(old_first))
        st = gm_error_set(err, GM_ERR_INVALID,
                          "'%s' is %s but the deployment's machine image is for %s: update keeps "
                          "the image, so name types of its architecture (or deploy anew)",
                          cfg.instance_type, gm_arch_name(gm_instance_type_arch(cfg.instance_type)),
                          gm_arch_name(gm_instance_type_arch(old_first)));
    if (st != GM_OK) {
        json_decref(diff);
        return NULL;
    }
    if (out_cfg)
        *out_cfg = cfg;
    return diff;
}

/* The policy the group has now, from the record (types and market). */
static void policy_now(gm_node *n, gm_n_asg_policy *pol)
{
    memset(pol, 0, sizeof *pol);
    char *types = gm_node_output_of(n, GM_NODE_ASG, "overrides");
    char *market = gm_node_output_of(n, GM_NODE_ASG, "group_market");
    pol->spot = !market || strcmp(market, "spot") == 0;
    for (char *save = NULL, *t = types ? strtok_r(types, ",", &save) : NULL;
         t && pol->n_types < GM_MAX_TYPES; t = strtok_r(NULL, ",", &save))
        snprintf(pol->types[pol->n_types++], sizeof pol->types[0], "%s", t);
    gm_n_asg_max_price(n, pol->max_price, sizeof pol->max_price);
    free(types);
    free(market);
}

/* The new policy: the record's when the types do not change, else the
 * ranking of the new candidates in the group's market. */
static GM_MUST_CHECK gm_status policy_new(gm_node *n, bool types_change, const gm_n_asg_policy *now,
                                          gm_n_asg_policy *pol, gm_error *err)
{
    *pol = *now;
    if (!types_change)
        return GM_OK;
    gm_cost_ranking plan;
    gm_cost_ranking_init(&plan);
    gm_status st = gm_n_asg_plan(n, &plan, err);
    if (st == GM_OK && plan.n_viable == 0)
        st = gm_error_set(err, GM_ERR_INVALID,
                          "none of the new instance types is offered in the "
                          "deployment's zones");
    if (st == GM_OK)
        gm_n_asg_policy_from(n, &plan, now->spot, pol);
    gm_cost_ranking_release(&plan);
    return st;
}

/* Points the group at version with pol, and records both. */
static GM_MUST_CHECK gm_status pin(gm_node *n, const char *group, const char *lt,
                                   const gm_n_asg_policy *pol, const char *version, gm_error *err)
{
    gm_status st = gm_n_asg_set_policy(n, group, pol, lt, version, err);
    if (st == GM_OK)
        st = gm_n_asg_record_overrides(n, pol, err);
    if (st == GM_OK)
        st = gm_node_set_output(n, "template_version", version, err);
    return st;
}

/* Replaces the group's instance and waits for a new one in service and
 * healthy. */
static GM_MUST_CHECK gm_status replace_and_wait(gm_run *r, gm_node *n, const char *group,
                                                gm_error *err)
{
    char *old = NULL;
    gm_status st = gm_n_asg_current_instance(n, &old, err);
    if (st == GM_OK && old) {
        gm_run_emit(r, GM_EVENT_STEP_START, GM_NODE_ASG, "replacing the instance");
        st = gm_n_asg_replace(n, old, err);
    }
    while (st == GM_OK) {
        st = wait_group(r, n, group, err);
        char *now = st == GM_OK ? gm_node_output_of(n, GM_NODE_ASG, "instance_id") : NULL;
        bool fresh = st == GM_OK && (!old || (now && strcmp(now, old) != 0));
        free(now);
        if (st != GM_OK || fresh)
            break;
        st = gm_node_wait(n, gm_node_poll_ms(n), "waiting for the replacement", err);
    }
    free(old);
    if (st == GM_OK)
        st = gm_run_commit(r, err);
    return st == GM_OK ? wait_health(r, err) : st;
}

/* Appends {version, at, changes, result} to the template node's "versions"
 * (a JSON array kept as a string output), or sets the result of the last
 * entry when it is that version's. */
static GM_MUST_CHECK gm_status note_version(gm_node *lt, const char *version, const json_t *diff,
                                            const char *result, gm_error *err)
{
    char *was = gm_node_output_of(lt, "launch_template", "versions");
    json_t *list = was ? json_loads(was, 0, NULL) : NULL;
    free(was);
    if (!json_is_array(list)) {
        json_decref(list);
        list = json_pack("[{s:s, s:s}]", "version", "1", "result", "deployed");
    }
    char at[32];
    gm_time_iso8601((time_t)(gm_wall_ms() / 1000), at);
    json_t *last = json_array_get(list, json_array_size(list) - 1);
    const char *last_version = json_string_value(json_object_get(last, "version"));
    char *text = NULL;
    if (last_version && strcmp(last_version, version) == 0) { /* its outcome */
        if (json_object_set_new(last, "result", json_string(result)) == 0)
            text = json_dumps(list, JSON_COMPACT);
    } else {
        json_t *v = json_pack("{s:s, s:s, s:O, s:s}", "version", version, "at", at, "changes", diff,
                              "result", result);
        if (list && v && json_array_append_new(list, v) == 0)
            text = json_dumps(list, JSON_COMPACT);
        else
            json_decref(v);
    }
    json_decref(list);
    gm_status st = text ? gm_node_set_output(lt, "versions", text, err)
                        : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    free(text);
    return st;
}

/* The count of versions the record keeps (1 before any update). */
static size_t versions_kept(gm_node *lt)
{
    char *was = gm_node_output_of(lt, "launch_template", "versions");
    json_t *list = was ? json_loads(was, 0, NULL) : NULL;
    free(was);
    size_t n = json_is_array(list) ? json_array_size(list) : 1;
    json_decref(list);
    return n ? n : 1;
}

typedef struct update_ctx {
    gm_run *r;
    gm_node *lt, *asg;
    const char *group, *lt_id;
    char old_version[16];
    gm_n_asg_policy old_pol, new_pol;
    const json_t *diff;
    bool serving; /* the deployment runs: the instance is replaced */
} update_ctx;

/* Back to the previous version and types, and a replacement from it. */
static void roll_back(update_ctx *u, gm_update_outcome *out, gm_error *err)
{
    gm_run_emit(u->r, GM_EVENT_NOTE, NULL,
                "the replacement did not serve: back to the previous "
                "version");
    gm_error rerr = {0};
    gm_status st = pin(u->asg, u->group, u->lt_id, &u->old_pol, u->old_version, &rerr);
    if (st == GM_OK)
        st = replace_and_wait(u->r, u->asg, u->group, &rerr);
    if (st == GM_OK) {
        out->rolled_back = true;
        gm_error_prefix(err, "version %s did not serve and the deployment is back on version %s",
                        out->to_version, u->old_version);
    } else {
        gm_error_prefix(err, "version %s did not serve; going back to version %s failed too (%s)",
                        out->to_version, u->old_version, rerr.message);
    }
}

static GM_MUST_CHECK gm_status run_update(update_ctx *u, gm_update_outcome *out, gm_error *err)
{
    gm_deployment *dep = u->r->dep;
    char token[96];
    snprintf(token, sizeof token, "gm-%s-v%zu", dep->deployment_id, versions_kept(u->lt) + 1);
    gm_run_emit(u->r, GM_EVENT_STEP_START, "launch_template", "writing a new template version");
    gm_status st = gm_n_lt_new_version(u->lt, u->lt_id, token, "geusemaker update", out->to_version,
                                       sizeof out->to_version, err);
    if (st == GM_OK)
        st =
            note_version(u->lt, out->to_version, u->diff, u->serving ? "replacing" : "pinned", err);
    if (st == GM_OK)
        st = gm_run_commit(u->r, err);
    gm_run_emit(u->r, st == GM_OK ? GM_EVENT_STEP_DONE : GM_EVENT_STEP_FAILED, "launch_template",
                st == GM_OK ? out->to_version : err->message);
    if (st == GM_OK)
        st = pin(u->asg, u->group, u->lt_id, &u->new_pol, out->to_version, err);
    if (st == GM_OK)
        st = gm_run_commit(u->r, err);
    if (st != GM_OK || !u->serving)
        return st;
    st = replace_and_wait(u->r, u->asg, u->group, err);
    gm_error nerr = {0};
    if (st == GM_OK) {
        out->replaced = true;
        return note_version(u->lt, out->to_version, u->diff, "serving", err) == GM_OK
                   ? gm_run_commit(u->r, err)
                   : err->status;
    }
    if (st == GM_ERR_INTERRUPTED || st == GM_ERR_AUTH)
        return st;
    roll_back(u, out, err);
    if (note_version(u->lt, out->to_version, u->diff, "rolled back", &nerr) != GM_OK ||
        gm_run_commit(u->r, &nerr) != GM_OK)
        gm_error_prefix(err, "saving the record failed too (%s)", nerr.message);
    return st;
}

/* The config stored beside the secrets follows the record's (adopt rebuilds
 * a lost record from it); a failure is only noted: the update is done. */
static void store_summary(update_ctx *u)
{
    json_t *summary = gm_node_record_summary(u->asg);
    char *text = summary ? json_dumps(summary, JSON_COMPACT) : NULL;
    json_decref(summary);
    char *prefix = gm_stack_default_ssm_prefix(u->r->dep->name);
    char *name = prefix ? gm_strfmt("%s%s", prefix, GM_CONFIG_PARAMETER) : NULL;
    gm_error perr = {0};
    if (!text || !name)
        gm_error_set(&perr, GM_ERR_NOMEM, "out of memory");
    else if (gm_n_ssm_put_string(u->asg, name, text,
                                 "GeuseMaker deployment record summary (no secrets)",
                                 &perr) == GM_OK)
        perr.status = GM_OK;
    if (perr.status)
        gm_run_emit(u->r, GM_EVENT_NOTE, NULL, perr.message);
    free(text);
    free(prefix);
    free(name);
}

gm_status gm_engine_update(const gm_engine_options *o, gm_deployment *dep,
                           const gm_update_request *req, gm_update_outcome *out, gm_error *err)
{
    memset(out, 0, sizeof *out);
    const char *group = NULL;
    gm_status st = check_status(dep, "update", true, err);
    if (st == GM_OK)
        st = group_of(dep, "update", &group, err);
    if (st != GM_OK)
        return st;
    gm_deploy_config cfg;
    json_t *diff = gm_engine_update_diff(dep, req, &cfg, err);
    if (!diff)
        return err->status ? err->status : GM_ERR_INVALID;
    out->changed = json_object_size(diff) > 0;
    if (req->dry_run || !out->changed) {
        json_decref(diff);
        return GM_OK;
    }
    int64_t wait = req->timeout_ms > 0 ? req->timeout_ms : UPDATE_TIMEOUT_MS;
    cfg.launch_timeout_ms = wait;
    cfg.health_timeout_ms = wait;
    /* cfg's strings point into the record's config: it outlives the run. */
    json_t *old_config = json_incref(dep->config);
    char *name = strdup(group);
    gm_run r;
    memset(&r, 0, sizeof r);
    bool inited = name != NULL;
    st = name ? gm_run_init(&r, o, &cfg, dep, LIFECYCLE_TIMEOUT_MS, err)
              : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    update_ctx u = {.r = &r, .group = name, .diff = diff, .serving = dep->status != GM_DEP_STOPPED};
    if (st == GM_OK) {
        u.lt = node_named(&r, "launch_template");
        u.asg = node_named(&r, GM_NODE_ASG);
        u.lt_id = gm_deployment_node(dep, "launch_template")
                      ? gm_deployment_node(dep, "launch_template")->id
                      : NULL;
        if (!u.lt || !u.asg || !u.lt_id)
            st = gm_error_set(err, GM_ERR_INVALID, "deployment '%s' has no launch template",
                              dep->name);
    }
    if (st == GM_OK) {
        char *v = gm_node_output_of(u.asg, GM_NODE_ASG, "template_version");
        snprintf(u.old_version, sizeof u.old_version, "%s", v ? v : "1");
        snprintf(out->from_version, sizeof out->from_version, "%s", u.old_version);
        free(v);
        policy_now(u.asg, &u.old_pol);
        st = policy_new(u.asg, json_object_get(diff, "instance_types") != NULL, &u.old_pol,
                        &u.new_pol, err);
    }
    if (st == GM_OK)
        st = run_update(&u, out, err);
    if (st == GM_OK) { /* the record's config: what the serving version was made from */
        json_t *c = gm_engine_config_to_json(&cfg);
        if (c) {
            pthread_mutex_lock(&r.lock);
            dep->config = c;
            pthread_mutex_unlock(&r.lock);
            st = gm_run_commit(&r, err);
        } else {
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        }
        if (st == GM_OK)
            store_summary(&u);
    }
    if (inited)
        gm_run_release(&r);
    if (dep->config != old_config)
        json_decref(old_config); /* the reference the record held */
    json_decref(old_config);     /* ours */
    free(name);
    json_decref(diff);
    return st;
}
