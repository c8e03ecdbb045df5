/* A deployment's live condition (liveness.h): the verdict of status and list,
 * and list's one look per region at the instances of the records. */
#include "engine/liveness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "engine/engine.h"
#include "engine/nodes.h"

/* Instance ids per DescribeInstances filter: EC2 takes up to 200 values. */
#define IDS_PER_CALL 200

const char *gm_live_health_name(gm_live_health h)
{
    switch (h) {
    case GM_LIVE_HEALTHY: return "healthy";
    case GM_LIVE_DEGRADED: return "degraded";
    case GM_LIVE_FAILED: return "failed";
    case GM_LIVE_IN_PROGRESS: return "in_progress";
    case GM_LIVE_DESTROYED: return "destroyed";
    case GM_LIVE_STOPPED: return "stopped";
    case GM_LIVE_UNKNOWN: return "unknown";
    }
    return "unknown";
}

static void verdict_init(const gm_deployment *dep, gm_live_verdict *out)
{
    memset(out, 0, sizeof *out);
    gm_engine_summary s;
    gm_engine_summary_of(dep, &s);
    snprintf(out->instance_id, sizeof out->instance_id, "%s", s.instance_id ? s.instance_id : "");
}

static void set(gm_live_verdict *out, gm_live_health h, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set(gm_live_verdict *out, gm_live_health h, const char *fmt, ...)
{
    out->health = h;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
}

/* The verdict that the record alone decides (not running, not partial).
 * Returns false when the live look decides. */
static bool from_record(const gm_deployment *dep, gm_live_verdict *out)
{
    const char *why = dep->status_reason;
    switch (dep->status) {
    case GM_DEP_RUNNING:
    case GM_DEP_PARTIAL: return false;
    case GM_DEP_FAILED:
        set(out, GM_LIVE_FAILED, "the last run failed%s%s", why ? ": " : "", why ? why : "");
        return true;
    case GM_DEP_CREATING:
    case GM_DEP_ROLLING_BACK:
    case GM_DEP_DESTROYING:
        set(out, GM_LIVE_IN_PROGRESS,
            "the record says %s: a run is at work, or was stopped before it ended "
            "('geusemaker deploy --resume %s' or 'geusemaker destroy %s')",
            gm_dep_status_name(dep->status), dep->name, dep->name);
        return true;
    case GM_DEP_DESTROYED: set(out, GM_LIVE_DESTROYED, "destroyed"); return true;
    case GM_DEP_STOPPED:
        set(out, GM_LIVE_STOPPED, "stopped: no instance runs ('geusemaker start %s')", dep->name);
        return true;
    }
    return false;
}

/* Judges the instance from its live state: true when that makes the
 * deployment degraded. */
static bool instance_degraded(gm_live_verdict *out)
{
    if (!*out->instance_id) {
        set(out, GM_LIVE_DEGRADED, "the record names no instance");
        return true;
    }
    if (strcmp(out->instance_state, GM_LIVE_MISSING) == 0) {
        set(out, GM_LIVE_DEGRADED, "instance %s no longer exists", out->instance_id);
        return true;
    }
    if (*out->instance_state && strcmp(out->instance_state, "running") != 0) {
        set(out, GM_LIVE_DEGRADED, "instance %s is %s", out->instance_id, out->instance_state);
        return true;
    }
    return false;
}

/* Running and nothing else known to be wrong: healthy, or degraded when only
 * part of it was deployed. */
static void running_or_partial(const gm_deployment *dep, gm_live_verdict *out)
{
    if (dep->status == GM_DEP_PARTIAL)
        set(out, GM_LIVE_DEGRADED, "only part of it was deployed%s%s",
            dep->status_reason ? ": " : "", dep->status_reason ? dep->status_reason : "");
    else
        set(out, GM_LIVE_HEALTHY, "%s", "");
}

void gm_engine_verdict_instance(const gm_deployment *dep, const char *instance_state,
                                const char *not_checked, gm_live_verdict *out)
{
    verdict_init(dep, out);
    if (from_record(dep, out))
        return;
    snprintf(out->instance_state, sizeof out->instance_state, "%s",
             instance_state ? instance_state : "");
    if (instance_degraded(out))
        return;
    if (!instance_state) {
        set(out, GM_LIVE_UNKNOWN, "live state unknown: %s",
            not_checked ? not_checked : "not checked");
        return;
    }
    running_or_partial(dep, out);
}

/* Judges the Auto Scaling group's live look: true when it makes the
 * deployment degraded (the group gone, or no instance in service); the
 * instance it runs is judged as any other. */
static bool group_degraded(const gm_deployment *dep, const json_t *group, gm_live_verdict *out)
{
    gm_engine_summary s;
    gm_engine_summary_of(dep, &s);
    const char *name = s.group ? s.group : "of the deployment";
    if (json_is_false(json_object_get(group, "exists"))) {
        set(out, GM_LIVE_DEGRADED, "Auto Scaling group %s no longer exists", name);
        return true;
    }
    if (!json_object_get(group, "instance_id")) {
        const char *state = json_string_value(json_object_get(group, "state"));
        set(out, GM_LIVE_DEGRADED,
            "Auto Scaling group %s has no instance in service (%s): it is replacing one, or "
            "cannot launch (geusemaker status %s shows its activities)",
            name, state ? state : "state not read", dep->name);
        return true;
    }
    return false;
}

/* Appends "what" to a "; "-separated list in buf. */
static void append(char *buf, size_t size, const char *what)
{
    size_t used = strlen(buf);
    const char *sep = used ? "; " : "";
    for (const char *p = sep; *p && used + 1 < size; p++)
        buf[used++] = *p;
    for (const char *p = what; *p && used + 1 < size; p++)
        buf[used++] = *p;
    if (used < size)
        buf[used] = '\0';
}

/* The drift and the failed looks of every resource but the instance. */
static void other_resources(const json_t *live, char *drift, size_t drift_size, char *failed,
                            size_t failed_size)
{
    const char *node;
    const json_t *l;
    json_object_foreach ((json_t *)live, node, l) {
        if (strcmp(node, "instance") == 0 || strcmp(node, GM_NODE_ASG) == 0)
            continue;
        char what[256];
        const char *e = json_string_value(json_object_get(l, "error"));
        if (e) {
            snprintf(what, sizeof what, "the look at %s failed (%s)", node, e);
            append(failed, failed_size, what);
        }
        size_t i;
        const json_t *d;
        json_array_foreach (json_object_get(l, "drift"), i, d) {
            snprintf(what, sizeof what, "%s %s", node, json_string_value(d));
            append(drift, drift_size, what);
        }
    }
}

void gm_engine_verdict_of(const gm_deployment *dep, const json_t *live, const char *not_checked,
                          gm_live_verdict *out)
{
    if (!live) {
        gm_engine_verdict_instance(dep, NULL, not_checked, out);
        return;
    }
    verdict_init(dep, out);
    if (from_record(dep, out))
        return;
    const json_t *group = json_object_get(live, GM_NODE_ASG);
    const json_t *inst = group ? group : json_object_get(live, "instance");
    const char *inst_error = json_string_value(json_object_get(inst, "error"));
    if (group && !inst_error && group_degraded(dep, group, out))
        return;
    const char *state =
        json_string_value(json_object_get(inst, group ? "instance_state" : "state"));
    if (inst && json_is_false(json_object_get(inst, "exists")))
        state = GM_LIVE_MISSING;
    snprintf(out->instance_state, sizeof out->instance_state, "%s",
             state && !inst_error ? state : "");
    if (instance_degraded(out))
        return;
    char drift[200] = "", failed[200] = "";
    other_resources(live, drift, sizeof drift, failed, sizeof failed);
    if (*drift)
        set(out, GM_LIVE_DEGRADED, "drift: %s", drift);
    else if (inst_error)
        set(out, GM_LIVE_UNKNOWN, "the look at the instance failed (%s)", inst_error);
    else if (!*out->instance_state)
        set(out, GM_LIVE_UNKNOWN, "the instance's state was not read");
    else if (*failed)
        set(out, GM_LIVE_UNKNOWN, "%s", failed);
    else
        running_or_partial(dep, out);
}

/* ---- list: one look per region ------------------------------------------------ */

static GM_MUST_CHECK gm_status describe_some(gm_aws_client *aws, const char *const *ids, size_t n,
                                             json_t *out, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "Filter.1.Name", "instance-id");
    for (size_t i = 0; i < n; i++)
        gm_params_addf(&p, ids[i], "Filter.1.Value.%zu", i + 1);
    gm_params_add(&p, "Filter.2.Name", "tag:" GM_TAG_MANAGED_BY);
    gm_params_add(&p, "Filter.2.Value.1", "geusemaker");
    xmlDocPtr doc = NULL;
    gm_status st = gm_aws_query(aws, &gm_svc_ec2, "DescribeInstances", &p, &doc, err);
    gm_params_release(&p);
    gm_read_rows rows;
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_instances, &rows, err);
    xmlFreeDoc(doc);
    if (st != GM_OK)
        return st;
    for (size_t i = 0; st == GM_OK && i < rows.n; i++)
        if (json_object_set_new(out, gm_read_get(&rows, i, GM_EC2_I_ID),
                                json_string(gm_read_get(&rows, i, GM_EC2_I_STATE))) != 0)
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_read_rows_release(&rows);
    return st;
}

/* The better of two instances of a group for list: the running one, or
 * else the newest (the later launch time). */
static bool better(const char *state, const char *launched, const json_t *have)
{
    if (!have)
        return true;
    const char *hs = json_string_value(json_object_get(have, "state"));
    if (strcmp(state, "running") == 0 || strcmp(hs, "running") == 0)
        return strcmp(hs, "running") != 0;
    return strcmp(launched, json_string_value(json_object_get(have, "launched"))) > 0;
}

static GM_MUST_CHECK gm_status describe_groups(gm_aws_client *aws, const char *const *dids,
                                               size_t n, json_t *out, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "Filter.1.Name", "tag:" GM_TAG_DEPLOYMENT_ID);
    for (size_t i = 0; i < n; i++)
        gm_params_addf(&p, dids[i], "Filter.1.Value.%zu", i + 1);
    gm_params_add(&p, "Filter.2.Name", "tag:" GM_TAG_NODE);
    gm_params_add(&p, "Filter.2.Value.1", GM_NODE_ASG);
    gm_params_add(&p, "Filter.3.Name", "instance-state-name");
    static const char *const alive[] = {"pending", "running", "stopping", "stopped",
                                        "shutting-down"};
    for (size_t i = 0; i < sizeof alive / sizeof *alive; i++)
        gm_params_addf(&p, alive[i], "Filter.3.Value.%zu", i + 1);
    xmlDocPtr doc = NULL;
    gm_status st = gm_aws_query(aws, &gm_svc_ec2, "DescribeInstances", &p, &doc, err);
    gm_params_release(&p);
    gm_read_rows rows;
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_deployment_instances, &rows, err);
    xmlFreeDoc(doc);
    if (st != GM_OK)
        return st;
    for (size_t i = 0; st == GM_OK && i < rows.n; i++) {
        const char *did = gm_read_get(&rows, i, GM_EC2_DI_DEPLOYMENT_ID);
        const char *state = gm_read_get(&rows, i, GM_EC2_DI_STATE);
        const char *launched = gm_read_get(&rows, i, GM_EC2_DI_LAUNCHED);
        if (!*did || !better(state, launched, json_object_get(out, did)))
            continue;
        json_t *v = json_pack("{s:s, s:s, s:s}", "instance_id", gm_read_get(&rows, i, GM_EC2_DI_ID),
                              "state", state, "launched", launched);
        if (!v || json_object_set_new(out, did, v) != 0)
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    gm_read_rows_release(&rows);
    return st;
}

gm_status gm_engine_group_instances(gm_aws_client *aws, const char *const *dids, size_t n,
                                    json_t **out, gm_error *err)
{
    *out = json_object();
    if (!*out)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_status st = GM_OK;
    for (size_t i = 0; st == GM_OK && i < n; i += IDS_PER_CALL)
        st = describe_groups(aws, dids + i, n - i < IDS_PER_CALL ? n - i : IDS_PER_CALL, *out, err);
    if (st != GM_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return st;
}

gm_status gm_engine_current_instance(gm_aws_client *aws, const gm_deployment *dep, char *out,
                                     size_t size, gm_error *err)
{
    gm_engine_summary s;
    gm_engine_summary_of(dep, &s);
    const char *id = s.instance_id && strcmp(s.instance_id, "-") != 0 ? s.instance_id : "";
    json_t *states = NULL;
    gm_status st = GM_OK;
    if (s.group && *dep->deployment_id) {
        const char *did = dep->deployment_id;
        st = gm_engine_group_instances(aws, &did, 1, &states, err);
        const json_t *now = st == GM_OK ? json_object_get(states, did) : NULL;
        const char *state = json_string_value(json_object_get(now, "state"));
        if (state && strcmp(state, "running") == 0)
            id = json_string_value(json_object_get(now, "instance_id"));
    }
    if (st == GM_OK && (size_t)snprintf(out, size, "%s", id ? id : "") >= size)
        st = gm_error_set(err, GM_ERR_LIMIT, "instance id too long");
    json_decref(states);
    return st;
}

gm_status gm_engine_instance_states(gm_aws_client *aws, const char *const *ids, size_t n,
                                    json_t **out, gm_error *err)
{
    *out = json_object();
    if (!*out)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_status st = GM_OK;
    for (size_t i = 0; st == GM_OK && i < n; i += IDS_PER_CALL)
        st = describe_some(aws, ids + i, n - i < IDS_PER_CALL ? n - i : IDS_PER_CALL, *out, err);
    if (st != GM_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return st;
}

/* What list asks of region: the instances of the records of before the
 * group (ids) and the deployments of groups (dids), of the deployments whose
 * record decides nothing on its own. The arrays are malloc'd, their strings
 * point into the records. */
typedef struct region_ask {
    const char **ids, **dids;
    size_t n_ids, n_dids;
} region_ask;

static GM_MUST_CHECK gm_status ask_of_region(const gm_deployment *const *deps, size_t n,
                                             const char *region, region_ask *ask)
{
    memset(ask, 0, sizeof *ask);
    ask->ids = calloc(n ? n : 1, sizeof *ask->ids);
    ask->dids = calloc(n ? n : 1, sizeof *ask->dids);
    if (!ask->ids || !ask->dids)
        return GM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        gm_engine_summary s;
        gm_engine_summary_of(deps[i], &s);
        bool judged_live = deps[i]->status == GM_DEP_RUNNING || deps[i]->status == GM_DEP_PARTIAL;
        if (!judged_live || strcmp(deps[i]->region, region) != 0)
            continue;
        if (s.group && *deps[i]->deployment_id)
            ask->dids[ask->n_dids++] = deps[i]->deployment_id;
        else if (s.instance_id)
            ask->ids[ask->n_ids++] = s.instance_id;
    }
    return GM_OK;
}

static void ask_release(region_ask *ask)
{
    free(ask->ids);
    free(ask->dids);
}

/* list's verdict of a deployment with a group, from its instance's look g
 * ({"instance_id", "state"}; NULL: it has none). */
static void verdict_group(const gm_deployment *dep, const json_t *g, gm_live_verdict *out)
{
    verdict_init(dep, out);
    if (from_record(dep, out))
        return;
    if (!g) {
        gm_engine_summary s;
        gm_engine_summary_of(dep, &s);
        snprintf(out->instance_state, sizeof out->instance_state, "none");
        set(out, GM_LIVE_DEGRADED, "Auto Scaling group %s has no instance",
            s.group ? s.group : "of the deployment");
        return;
    }
    snprintf(out->instance_id, sizeof out->instance_id, "%s",
             json_string_value(json_object_get(g, "instance_id")));
    snprintf(out->instance_state, sizeof out->instance_state, "%s",
             json_string_value(json_object_get(g, "state")));
    if (!instance_degraded(out))
        running_or_partial(dep, out);
}

/* The verdicts of region's deployments from states ({id: state} and
 * {deployment id: {...}}; NULL: not known, why in failure). */
static void judge_region(const gm_deployment *const *deps, size_t n, const char *region,
                         const json_t *states, const char *failure, gm_live_verdict *out)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(deps[i]->region, region) != 0)
            continue;
        gm_engine_summary s;
        gm_engine_summary_of(deps[i], &s);
        if (states && s.group && *deps[i]->deployment_id) {
            verdict_group(deps[i], json_object_get(states, deps[i]->deployment_id), &out[i]);
            continue;
        }
        const char *state = NULL;
        if (states && s.instance_id) {
            state = json_string_value(json_object_get(states, s.instance_id));
            if (!state)
                state = GM_LIVE_MISSING;
        }
        gm_engine_verdict_instance(deps[i], state, failure, &out[i]);
    }
}

/* Merges from into into (both {key: value}); consumes from. */
static GM_MUST_CHECK gm_status merge_into(json_t *into, json_t *from)
{
    int rc = from ? json_object_update(into, from) : 0;
    json_decref(from);
    return rc == 0 ? GM_OK : GM_ERR_NOMEM;
}

/* The two looks of one region into *out_states. */
static GM_MUST_CHECK gm_status look_both(gm_aws_client *aws, const region_ask *ask,
                                         json_t **out_states, gm_error *look)
{
    json_t *states = json_object();
    if (!states)
        return gm_error_set(look, GM_ERR_NOMEM, "out of memory");
    json_t *part = NULL;
    gm_status st = GM_OK;
    if (ask->n_ids) {
        st = gm_engine_instance_states(aws, ask->ids, ask->n_ids, &part, look);
        if (st == GM_OK && merge_into(states, part) != GM_OK)
            st = gm_error_set(look, GM_ERR_NOMEM, "out of memory");
    }
    if (st == GM_OK && ask->n_dids) {
        st = gm_engine_group_instances(aws, ask->dids, ask->n_dids, &part, look);
        if (st == GM_OK && merge_into(states, part) != GM_OK)
            st = gm_error_set(look, GM_ERR_NOMEM, "out of memory");
    }
    if (st != GM_OK)
        json_decref(states), states = NULL;
    *out_states = states;
    return st;
}

/* One region's look: *out_states or the failure in *look (a region with
 * nothing to look at makes no call and no client). Returns only what stops
 * the whole check: bad input from make, memory. */
static GM_MUST_CHECK gm_status look_region(const gm_deployment *const *deps, size_t n,
                                           const char *region, gm_engine_client_fn make, void *ctx,
                                           json_t **out_states, gm_error *look, gm_error *err)
{
    *out_states = NULL;
    region_ask ask;
    if (ask_of_region(deps, n, region, &ask) != GM_OK) {
        ask_release(&ask);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    gm_status st = GM_OK;
    gm_aws_client *aws = NULL;
    if (ask.n_ids || ask.n_dids) {
        st = make(ctx, region, &aws, look);
        if (st == GM_ERR_INVALID || st == GM_ERR_NOMEM)
            *err = *look;
        else if (st == GM_OK && look_both(aws, &ask, out_states, look) == GM_ERR_NOMEM)
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        else
            st = GM_OK;
    }
    gm_aws_client_free(aws);
    ask_release(&ask);
    return st;
}

/* Whether region is the region of an earlier deployment than deps[k]. */
static bool seen_before(const gm_deployment *const *deps, size_t k)
{
    for (size_t j = 0; j < k; j++)
        if (strcmp(deps[j]->region, deps[k]->region) == 0)
            return true;
    return false;
}

gm_status gm_engine_check_live(const gm_deployment *const *deps, size_t n, gm_engine_client_fn make,
                               void *ctx, gm_live_verdict *out, gm_error *err)
{
    gm_error auth = {0}; /* credentials missing or refused: the same in every region */
    for (size_t k = 0; k < n; k++) {
        if (seen_before(deps, k))
            continue;
        const char *region = deps[k]->region;
        json_t *states = NULL;
        gm_error look = {0};
        if (!auth.status) {
            gm_status st = look_region(deps, n, region, make, ctx, &states, &look, err);
            if (st != GM_OK)
                return st;
            if (look.status == GM_ERR_AUTH)
                auth = look;
        }
        const char *failure = auth.status ? auth.message : look.status ? look.message : NULL;
        judge_region(deps, n, region, states, failure, out);
        json_decref(states);
    }
    return GM_OK;
}
