/* The deployment after deploy: stop and start (the group's capacity), and
 * update (a new launch template version, a replacement, a rollback when the
 * replacement is not healthy). Each is a run of the tier's graph that calls
 * the group's and the health node's operations directly, saving the record
 * as it goes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/nodes.h"
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

/* A run of dep's graph for a lifecycle command, with the config the record
 * keeps (cfg filled). */
static GM_MUST_CHECK gm_status open_run(gm_run *r, const gm_engine_options *o,
                                        gm_deploy_config *cfg, gm_deployment *dep, gm_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    gm_status st = gm_engine_config_from_record(dep, cfg, err);
    if (st != GM_OK) {
        memset(r, 0, sizeof *r);
        return st;
    }
    return gm_run_init(r, o, cfg, dep, LIFECYCLE_TIMEOUT_MS, err);
}

gm_status gm_engine_stop(const gm_engine_options *o, gm_deployment *dep, gm_error *err)
{
    const char *group = NULL;
    gm_status st = check_status(dep, "stop", true, err);
    if (st == GM_OK)
        st = group_of(dep, "stop", &group, err);
    if (st != GM_OK)
        return st;
    gm_deploy_config cfg;
    gm_run r;
    st = open_run(&r, o, &cfg, dep, err);
    gm_node *n = st == GM_OK ? node_named(&r, GM_NODE_ASG) : NULL;
    if (st == GM_OK && !n)
        st = gm_error_set(err, GM_ERR_INTERNAL, "the tier's graph has no group node");
    char *name = group ? strdup(group) : NULL; /* the record may change under us */
    if (st == GM_OK && !name)
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    if (st == GM_OK) {
        gm_run_emit(&r, GM_EVENT_STEP_START, GM_NODE_ASG,
                    "stopping: the group's desired capacity to 0");
        st = gm_n_asg_stop(n, name, err);
    }
    if (st == GM_OK)
        st = gm_node_set_output(n, "instance_id", "", err);
    if (st == GM_OK) {
        gm_run_emit(&r, GM_EVENT_STEP_DONE, GM_NODE_ASG, "no instance");
        st = gm_run_set_status(&r, GM_DEP_STOPPED, "stopped by geusemaker stop", err);
    } else if (n) {
        gm_run_emit(&r, GM_EVENT_STEP_FAILED, GM_NODE_ASG, err->message);
    }
    free(name);
    gm_run_release(&r);
    return st;
}

/* Waits for the group's instance in service (moving to on-demand as deploy
 * does), then for the stack's health (the health node's check). */
static GM_MUST_CHECK gm_status wait_serving(gm_run *r, gm_node *n, const char *group, gm_error *err)
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
    gm_node *h = node_named(r, "health");
    if (!h || !h->def->ops->create)
        return GM_OK;
    gm_run_emit(r, GM_EVENT_STEP_START, "health", h->def->ops->label);
    st = h->def->ops->create(h, err);
    gm_run_emit(r, st == GM_OK ? GM_EVENT_STEP_DONE : GM_EVENT_STEP_FAILED, "health",
                st == GM_OK ? "" : err->message);
    return st;
}

gm_status gm_engine_start(const gm_engine_options *o, gm_deployment *dep, gm_error *err)
{
    const char *group = NULL;
    gm_status st = check_status(dep, "start", true, err);
    if (st == GM_OK)
        st = group_of(dep, "start", &group, err);
    if (st != GM_OK)
        return st;
    gm_deploy_config cfg;
    gm_run r;
    st = open_run(&r, o, &cfg, dep, err);
    gm_node *n = st == GM_OK ? node_named(&r, GM_NODE_ASG) : NULL;
    if (st == GM_OK && !n)
        st = gm_error_set(err, GM_ERR_INTERNAL, "the tier's graph has no group node");
    char *name = group ? strdup(group) : NULL;
    if (st == GM_OK && !name)
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    if (st == GM_OK) {
        gm_run_emit(&r, GM_EVENT_STEP_START, GM_NODE_ASG,
                    "starting: the group's desired capacity to 1");
        st = gm_n_asg_set_capacity(n, name, 1, err);
    }
    /* The record says stopped until the instance serves: a crash before
     * leaves a deployment that start starts again. */
    if (st == GM_OK)
        st = wait_serving(&r, n, name, err);
    gm_error serr = {0};
    char reason[GM_ERROR_MESSAGE_MAX + 64];
    snprintf(reason, sizeof reason, "started, but: %s", err->message);
    if (st == GM_OK)
        st = gm_run_set_status(&r, GM_DEP_RUNNING, NULL, err);
    else if (n && gm_run_set_status(&r, GM_DEP_RUNNING, reason, &serr) != GM_OK)
        gm_error_prefix(err, "saving the record failed too (%s)", serr.message);
    free(name);
    gm_run_release(&r);
    return st;
}
