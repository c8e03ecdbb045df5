/* adopt: a lost record rebuilt from what the cloud holds. The deployment's
 * id is chosen from its tags, its config read from the String parameter
 * beside its secrets, and every node looked up the way deploy --resume looks
 * for what an earlier run made (by tag, token or name), with the ownership
 * check; the client refuses anything but reads for the whole call. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "core/str.h"
#include "cost/rank.h"
#include "engine/nodes.h"
#include "engine/run.h"
#include "engine/sweep.h"
#include "stack/secrets.h"
#include "stack/stack.h"

#define ADOPT_TIMEOUT_MS (10 * 60 * 1000)

/* The id to adopt: want (checked), or the only deployment of name whose
 * resources still exist. */
static GM_MUST_CHECK gm_status choose_id(const gm_engine_options *o, const char *name,
                                         const char *want, char *out, gm_error *err)
{
    json_t *groups = NULL;
    gm_status st = gm_engine_discover(o->aws, name, true, &groups, err);
    json_t *alive = json_array();
    size_t i;
    json_t *g;
    json_array_foreach (groups, i, g) {
        const char *id = json_string_value(json_object_get(g, "deployment_id"));
        if (st != GM_OK || (want && strcmp(want, id) != 0))
            continue;
        json_t *survey = NULL;
        st = gm_engine_survey(o, name, id, &survey, err);
        if (st == GM_OK && json_array_size(json_object_get(survey, "resources")))
            json_array_append(alive, survey);
        json_decref(survey);
    }
    json_decref(groups);
    if (st == GM_OK && json_array_size(alive) == 0)
        st = gm_error_set(err, GM_ERR_INVALID,
                          "nothing tagged as deployment '%s'%s%s exists in %s: there is "
                          "nothing to adopt",
                          name, want ? " with id " : "", want ? want : "",
                          gm_aws_client_region(o->aws));
    if (st == GM_OK && json_array_size(alive) > 1) {
        char ids[256] = "";
        size_t len = 0;
        json_array_foreach (alive, i, g)
            len += (size_t)snprintf(ids + len, len < sizeof ids ? sizeof ids - len : 0,
                                    "%s%s (%zu resources)", i ? ", " : "",
                                    json_string_value(json_object_get(g, "deployment_id")),
                                    json_array_size(json_object_get(g, "resources")));
        st = gm_error_set(err, GM_ERR_INVALID,
                          "%zu deployments named '%s' exist in %s: %s; choose one with --id",
                          json_array_size(alive), name, gm_aws_client_region(o->aws), ids);
    }
    if (st == GM_OK)
        snprintf(out, GM_DEPLOYMENT_ID_LEN + 1, "%s",
                 json_string_value(json_object_get(json_array_get(alive, 0), "deployment_id")));
    json_decref(alive);
    return st;
}

/* The stored record summary of (name, id), or NULL when there is none (a
 * deploy stopped before its secrets were stored) or it is another's. */
static GM_MUST_CHECK gm_status read_summary(gm_aws_client *aws, const char *name, const char *id,
                                            json_t **out, gm_error *err)
{
    *out = NULL;
    char *prefix = gm_stack_default_ssm_prefix(name);
    char *param = prefix ? gm_strfmt("%s%s", prefix, GM_CONFIG_PARAMETER) : NULL;
    free(prefix);
    json_t *body = param ? json_pack("{s:s}", "Name", param) : NULL;
    free(param);
    json_t *answer = NULL;
    gm_status st = body ? gm_aws_json(aws, &gm_svc_ssm, "GetParameter", body, &answer, err)
                        : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    json_decref(body);
    if (st != GM_OK && strcmp(err->aws_code, "ParameterNotFound") == 0) {
        gm_error_clear(err);
        return GM_OK;
    }
    gm_read_rows rows;
    if (st == GM_OK)
        st = gm_ssm_read_parameters(answer, &rows, err);
    json_decref(answer);
    if (st != GM_OK)
        return st;
    json_t *summary = json_loads(gm_read_get(&rows, 0, GM_SSM_VALUE), 0, NULL);
    gm_read_rows_release(&rows);
    const char *sid = json_string_value(json_object_get(summary, "deployment_id"));
    if (!json_is_object(json_object_get(summary, "config")) || !sid || strcmp(sid, id) != 0 ||
        !json_string_value(json_object_get(summary, "tier"))) {
        json_decref(summary); /* unreadable, or another deployment's: defaults */
        return GM_OK;
    }
    *out = summary;
    return GM_OK;
}

/* The record to fill: from the stored config when there is one, else the
 * tier's defaults (the tier guessed from what carries the tags). */
static GM_MUST_CHECK gm_status new_record(const gm_engine_options *o, const char *name,
                                          const char *id, json_t *summary, bool has_alb,
                                          gm_deployment **out, gm_error *err)
{
    gm_deployment *stored =
        gm_deployment_new(name,
                          summary ? json_string_value(json_object_get(summary, "tier"))
                                  : gm_tier_name(has_alb ? GM_TIER_AUTOMATION : GM_TIER_DEV),
                          gm_aws_client_region(o->aws));
    if (!stored)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_deploy_config cfg = {.name = name};
    gm_status st = GM_OK;
    if (summary) {
        json_decref(stored->config);
        stored->config = json_incref(json_object_get(summary, "config"));
        st = gm_engine_config_from_record(stored, &cfg, err);
    } else if (!gm_tier_parse(stored->tier, &cfg.tier)) {
        st = gm_error_set(err, GM_ERR_INTERNAL, "unknown tier '%s'", stored->tier);
    } else {
        size_t n = 0;
        cfg.instance_type = gm_cost_default_types(cfg.tier, &n)[0];
        cfg.spot = true;
    }
    char azs[2][64] = {"", ""};
    if (st == GM_OK && cfg.vpc_id) /* the zones of reused subnets (reads only) */
        st = gm_engine_check_reused(o->aws, &cfg, azs, err);
    if (st == GM_OK)
        st = gm_engine_record_new(&cfg, gm_aws_client_region(o->aws), azs, out, err);
    gm_deployment_free(stored);
    if (st != GM_OK)
        return st;
    snprintf((*out)->deployment_id, sizeof(*out)->deployment_id, "%s", id);
    return GM_OK;
}

/* The ids of node n that exist and are this deployment's. */
static GM_MUST_CHECK gm_status find_ours(gm_node *n, gm_ids *out, gm_error *err)
{
    gm_ids ids;
    gm_status st = gm_node_find(n, &ids, err);
    gm_ids_init(out);
    for (size_t i = 0; st == GM_OK && i < ids.n; i++) {
        gm_owner who = GM_OWNER_OURS;
        char why[256];
        if (n->def->ops->owner)
            st = n->def->ops->owner(n, ids.v[i], &who, why, sizeof why, err);
        if (st == GM_OK && who == GM_OWNER_OURS)
            st = gm_ids_add(out, ids.v[i], err);
    }
    gm_ids_release(&ids);
    return st;
}

/* Marks node n created once its id is recorded (what the executor does
 * when a create returns). */
static void mark_created(gm_run *r, gm_node *n)
{
    pthread_mutex_lock(&r->lock);
    gm_node_state *s = gm_deployment_node(r->dep, n->def->name);
    if (s && s->id)
        s->status = GM_NODE_CREATED;
    pthread_mutex_unlock(&r->lock);
}

/* Looks up every resource node in graph order (a child's look-up may need
 * its parent's id) and records what it finds as created. */
gm_status gm_run_find_all(gm_run *r, gm_engine_adoption *rep, gm_error *err)
{
    gm_status st = GM_OK;
    for (size_t k = 0; st == GM_OK && k < r->n_nodes; k++) {
        gm_node *n = &r->nodes[k];
        gm_node_state *s = gm_deployment_node(r->dep, n->def->name);
        if (!n->def->ops->owns_resource || !n->def->ops->find ||
            (s && s->status != GM_NODE_PENDING))
            continue; /* nothing to find, or reused */
        gm_ids ids;
        st = find_ours(n, &ids, err);
        if (st == GM_OK && ids.n) {
            rep->found += ids.n;
            st = gm_node_created(n, ids.v[0], err);
            mark_created(r, n);
            if (st == GM_OK && ids.n > 1)
                gm_node_note(n, "%zu more %s found: destroy deletes them", ids.n - 1,
                             n->def->ops->kind);
        } else if (st == GM_OK) {
            size_t len = strlen(rep->missing_list);
            snprintf(rep->missing_list + len, sizeof rep->missing_list - len, "%s%s",
                     rep->missing ? ", " : "", n->def->name);
            rep->missing++;
        }
        if (st == GM_OK)
            gm_ids_release(&ids);
    }
    return st;
}

/* Reads back the outputs of what was found, children first: a look-up node
 * (the zones) takes its values from the resources made with them. */
static GM_MUST_CHECK gm_status read_back_all(gm_run *r, gm_error *err)
{
    gm_status st = GM_OK;
    for (size_t k = r->n_nodes; st == GM_OK && k-- > 0;) {
        gm_node *n = &r->nodes[k];
        gm_node_state *s = gm_deployment_node(r->dep, n->def->name);
        bool created = s && s->status == GM_NODE_CREATED && s->id;
        if (!n->def->ops->read_back || (n->def->ops->owns_resource && !created) ||
            (s && s->provenance == GM_PROV_REUSED))
            continue;
        st = n->def->ops->read_back(n, created ? s->id : NULL, err);
        mark_created(r, n);
    }
    return st;
}

/* The status a live look gives the adopted record. */
static GM_MUST_CHECK gm_status settle(gm_run *r, const gm_engine_adoption *rep, gm_error *err)
{
    gm_deployment *dep = r->dep;
    gm_node_state *inst = gm_deployment_node(dep, GM_NODE_ASG);
    bool running = inst && json_string_value(json_object_get(inst->outputs, "private_ip"));
    bool core_missing = false;
    for (size_t k = 0; k < r->n_nodes; k++) {
        gm_node_state *s = gm_deployment_node(dep, r->nodes[k].def->name);
        if (r->nodes[k].def->ops->owns_resource && r->nodes[k].def->group == GM_GROUP_CORE &&
            (!s || s->status != GM_NODE_CREATED))
            core_missing = true;
    }
    dep->status =
        !core_missing && running ? (rep->missing ? GM_DEP_PARTIAL : GM_DEP_RUNNING) : GM_DEP_FAILED;
    free(dep->status_reason);
    dep->status_reason =
        rep->missing ? gm_strfmt("adopted: nothing found for %s ('deploy --resume' makes it, "
                                 "'destroy' deletes the rest)",
                                 rep->missing_list)
        : !running   ? strdup("adopted: the group has no instance in service")
                     : NULL;
    if ((rep->missing || !running) && !dep->status_reason)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_deployment_add_event(dep, "adopt", NULL, "record rebuilt from the cloud: %zu resources%s",
                            rep->found, rep->config_found ? "" : ", config defaults");
    return GM_OK;
}

static bool any_alb(gm_aws_client *aws, const char *name, const char *id)
{
    gm_tagged_list list;
    gm_error err = {0};
    bool found = false;
    if (gm_engine_list_tagged(aws, GM_TAG_DEPLOYMENT_ID, id, &list, &err) != GM_OK)
        return false;
    for (size_t i = 0; i < list.n; i++)
        found |= strcmp(list.v[i].service, "elasticloadbalancing") == 0 &&
                 strcmp(list.v[i].name, name) == 0;
    gm_tagged_list_release(&list);
    return found;
}

static GM_MUST_CHECK gm_status adopt_into(const gm_engine_options *o, const char *name,
                                          const char *id, gm_deployment **out,
                                          gm_engine_adoption *rep, gm_error *err)
{
    json_t *summary = NULL;
    gm_status st = read_summary(o->aws, name, id, &summary, err);
    rep->config_found = summary != NULL;
    if (st == GM_OK)
        st = new_record(o, name, id, summary, !summary && any_alb(o->aws, name, id), out, err);
    json_decref(summary);
    if (st != GM_OK)
        return st;
    gm_engine_options ro = *o;
    ro.store = NULL; /* the caller saves the record */
    ro.graph = NULL;
    gm_deploy_config cfg;
    memset(&cfg, 0, sizeof cfg);
    gm_run r;
    memset(&r, 0, sizeof r);
    st = gm_engine_config_from_record(*out, &cfg, err);
    if (st == GM_OK) {
        st = gm_run_init(&r, &ro, &cfg, *out, ADOPT_TIMEOUT_MS, err);
        if (st == GM_OK)
            st = gm_run_find_all(&r, rep, err);
        if (st == GM_OK)
            st = read_back_all(&r, err);
        if (st == GM_OK)
            st = settle(&r, rep, err);
        gm_run_release(&r);
    }
    if (st != GM_OK) {
        gm_deployment_free(*out);
        *out = NULL;
    }
    return st;
}

gm_status gm_engine_adopt(const gm_engine_options *o, const char *name, const char *want,
                          gm_deployment **out, gm_engine_adoption *rep, gm_error *err)
{
    *out = NULL;
    memset(rep, 0, sizeof *rep);
    if (want && !*want)
        want = NULL;
    if (want && !gm_deployment_id_valid(want))
        return gm_error_set(err, GM_ERR_INVALID, "'%s' is not a deployment id (%d of a-z and 0-9)",
                            want, GM_DEPLOYMENT_ID_LEN);
    gm_aws_client_set_read_only(o->aws, true);
    char id[GM_DEPLOYMENT_ID_LEN + 1] = "";
    gm_status st = choose_id(o, name, want, id, err);
    if (st == GM_OK)
        st = adopt_into(o, name, id, out, rep, err);
    gm_aws_client_set_read_only(o->aws, false);
    return st;
}
