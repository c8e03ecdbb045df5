/* The cloud's view of deployments, whatever the local records say: which
 * deployments are tagged in a region (discover), what of one still exists
 * (survey), the one-name-per-region check, and deleting a deployment that
 * has no record (cleanup). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "core/str.h"
#include "cost/estimate.h"
#include "engine/nodes.h"
#include "engine/run.h"
#include "engine/sweep.h"

#define IAM_MAX_PAGES 100
#define IAM_PATH "/geusemaker/"

/* ---- discover --------------------------------------------------------------- */

/* Adds one resource to the group (name, id) of groups, making it if new. */
static GM_MUST_CHECK gm_status count_in(json_t *groups, const char *name, const char *id,
                                        gm_error *err)
{
    size_t i;
    json_t *g;
    json_array_foreach (groups, i, g) {
        if (strcmp(json_string_value(json_object_get(g, "name")), name) == 0 &&
            strcmp(json_string_value(json_object_get(g, "deployment_id")), id) == 0) {
            json_int_t n = json_integer_value(json_object_get(g, "tagged"));
            json_object_set_new(g, "tagged", json_integer(n + 1));
            return GM_OK;
        }
    }
    g = json_pack("{s:s, s:s, s:i}", "name", name, "deployment_id", id, "tagged", 1);
    if (!g || json_array_append_new(groups, g) != 0)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    return GM_OK;
}

/* "geusemaker-NAME-ID-role" / "-profile" into name and id; false for any
 * other name (a record made before ids, or not ours). */
static bool parse_global_name(const char *s, char *name, size_t name_size, char *id)
{
    static const char prefix[] = "geusemaker-";
    size_t len = strlen(s);
    size_t cut = gm_str_endswith(s, "-role") ? 5 : gm_str_endswith(s, "-profile") ? 8 : 0;
    if (!cut || !gm_str_startswith(s, prefix) || len < sizeof prefix + cut + GM_DEPLOYMENT_ID_LEN)
        return false;
    size_t end = len - cut; /* "geusemaker-NAME-ID" */
    size_t id_at = end - GM_DEPLOYMENT_ID_LEN;
    if (s[id_at - 1] != '-' || id_at - 1 <= sizeof prefix - 1)
        return false;
    snprintf(id, GM_DEPLOYMENT_ID_LEN + 1, "%.*s", GM_DEPLOYMENT_ID_LEN, s + id_at);
    size_t name_len = id_at - 1 - (sizeof prefix - 1);
    if (!gm_deployment_id_valid(id) || name_len >= name_size)
        return false;
    snprintf(name, name_size, "%.*s", (int)name_len, s + sizeof prefix - 1);
    return true;
}

/* The value of tag key in rows of (Key, Value); "" when absent. */
static const char *tag_value(const gm_read_rows *tags, const char *key)
{
    for (size_t i = 0; i < tags->n; i++)
        if (strcmp(gm_read_get(tags, i, GM_IAM_TAG_KEY), key) == 0)
            return gm_read_get(tags, i, GM_IAM_TAG_VALUE);
    return "";
}

/* Counts one IAM role or profile into groups when its tags say it is the
 * deployment (name, id)'s and belongs to this region. */
static GM_MUST_CHECK gm_status count_iam(gm_aws_client *aws, bool role, const char *iam_name,
                                         const char *name, const char *id, json_t *groups,
                                         gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, role ? "RoleName" : "InstanceProfileName", iam_name);
    xmlDocPtr doc = NULL;
    gm_status st =
        gm_aws_query(aws, &gm_svc_iam, role ? "GetRole" : "GetInstanceProfile", &p, &doc, err);
    gm_params_release(&p);
    if (st != GM_OK && strcmp(err->aws_code, "NoSuchEntity") == 0) {
        gm_error_clear(err); /* deleted since it was listed */
        return GM_OK;
    }
    gm_read_rows tags;
    if (st == GM_OK)
        st = gm_read_xml(doc, role ? &gm_iam_role_tags : &gm_iam_profile_tags, &tags, err);
    xmlFreeDoc(doc);
    if (st != GM_OK)
        return st;
    if (strcmp(tag_value(&tags, GM_TAG_DEPLOYMENT_ID), id) == 0 &&
        strcmp(tag_value(&tags, GM_TAG_DEPLOYMENT), name) == 0 &&
        strcmp(tag_value(&tags, GM_TAG_REGION), gm_aws_client_region(aws)) == 0)
        st = count_in(groups, name, id, err);
    gm_read_rows_release(&tags);
    return st;
}

/* One page of ListRoles / ListInstanceProfiles under the tool's path. */
static GM_MUST_CHECK gm_status iam_page(gm_aws_client *aws, bool role, const char *marker,
                                        gm_read_rows *names, char **out_marker, gm_error *err)
{
    *out_marker = NULL;
    gm_read_rows_init(names);
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "PathPrefix", IAM_PATH);
    gm_params_add(&p, "MaxItems", "1000");
    if (marker)
        gm_params_add(&p, "Marker", marker);
    xmlDocPtr doc = NULL;
    gm_status st =
        gm_aws_query(aws, &gm_svc_iam, role ? "ListRoles" : "ListInstanceProfiles", &p, &doc, err);
    gm_params_release(&p);
    gm_read_rows more, next;
    gm_read_rows_init(&more);
    gm_read_rows_init(&next);
    if (st == GM_OK)
        st = gm_read_xml(doc, role ? &gm_iam_roles : &gm_iam_profiles, names, err);
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_iam_truncated, &more, err);
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_iam_marker, &next, err);
    if (st == GM_OK && strcmp(gm_read_get(&more, 0, 0), "true") == 0)
        *out_marker = gm_read_dup(&next, 0, 0);
    gm_read_rows_release(&more);
    gm_read_rows_release(&next);
    xmlFreeDoc(doc);
    return st;
}

/* IAM is global and not in the tagging API: the roles and instance
 * profiles under the tool's path, by their names and tags. */
static GM_MUST_CHECK gm_status discover_iam(gm_aws_client *aws, const char *only, bool role,
                                            json_t *groups, gm_error *err)
{
    char *marker = NULL;
    gm_status st = GM_OK;
    for (int page = 0; st == GM_OK && page < IAM_MAX_PAGES; page++) {
        gm_read_rows names;
        char *next = NULL;
        st = iam_page(aws, role, marker, &names, &next, err);
        for (size_t i = 0; st == GM_OK && i < names.n; i++) {
            char name[64], id[GM_DEPLOYMENT_ID_LEN + 1];
            const char *iam_name = gm_read_get(&names, i, 0);
            if (parse_global_name(iam_name, name, sizeof name, id) &&
                (!only || strcmp(only, name) == 0))
                st = count_iam(aws, role, iam_name, name, id, groups, err);
        }
        gm_read_rows_release(&names);
        free(marker);
        marker = next;
        if (!marker)
            break;
    }
    free(marker);
    return st;
}

/* The kinds the tagging API may not list (moto lists none of them) are
 * described by their tags instead: counted from here only. */
static bool described_kind(const gm_tagged *t)
{
    return strcmp(t->service, "autoscaling") == 0 ||
           (strcmp(t->service, "ec2") == 0 &&
            (strcmp(t->type, "launch-template") == 0 || strcmp(t->type, "elastic-ip") == 0));
}

/* One describe of those kinds, filtered by the name tag (or by the tag's key
 * for every deployment), into job->found (a private group list); every
 * page. Run on a thread of its own. */
typedef struct described_job {
    gm_aws_client *aws;
    const gm_aws_service *svc;
    const char *action;
    const gm_read_spec *spec;
    const char *name;
    json_t *found;
    gm_status st;
    gm_error err;
    pthread_t thread;
} described_job;

static GM_MUST_CHECK gm_status describe_page(described_job *j, const char *token, char **out_next,
                                             gm_error *err)
{
    bool asg = j->svc == &gm_svc_autoscaling;
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, asg ? "Filters.member.1.Name" : "Filter.1.Name",
                  j->name ? "tag:" GM_TAG_DEPLOYMENT : "tag-key");
    gm_params_add(&p, asg ? "Filters.member.1.Values.member.1" : "Filter.1.Value.1",
                  j->name ? j->name : GM_TAG_DEPLOYMENT);
    if (token)
        gm_params_add(&p, "NextToken", token);
    xmlDocPtr doc = NULL;
    gm_status st = gm_aws_query(j->aws, j->svc, j->action, &p, &doc, err);
    gm_params_release(&p);
    gm_read_rows rows, next;
    gm_read_rows_init(&next);
    if (st == GM_OK)
        st = gm_read_xml(doc, j->spec, &rows, err);
    for (size_t i = 0; st == GM_OK && i < rows.n; i++)
        if (*gm_read_get(&rows, i, GM_TAGGED_NAME))
            st = count_in(j->found, gm_read_get(&rows, i, GM_TAGGED_NAME),
                          gm_read_get(&rows, i, GM_TAGGED_ID), err);
    if (st == GM_OK) {
        gm_read_rows_release(&rows);
        st = gm_read_xml(doc, asg ? &gm_asg_next_token : &gm_ec2_next_token, &next, err);
    }
    xmlFreeDoc(doc);
    *out_next = st == GM_OK ? gm_read_dup(&next, 0, 0) : NULL;
    gm_read_rows_release(&next);
    return st;
}

/* What the tagging API lists, but the kinds the describes count. */
static GM_MUST_CHECK gm_status count_tagged(described_job *j, gm_error *err)
{
    gm_tagged_list list;
    gm_status st = gm_engine_list_tagged(j->aws, GM_TAG_DEPLOYMENT, j->name, &list, err);
    for (size_t i = 0; st == GM_OK && i < list.n; i++)
        if (!gm_tagged_goes_with_another(&list.v[i]) && !described_kind(&list.v[i]) &&
            *list.v[i].name)
            st = count_in(j->found, list.v[i].name, list.v[i].deployment_id, err);
    if (st == GM_OK)
        gm_tagged_list_release(&list);
    return st;
}

static void *describe_all(void *arg)
{
    described_job *j = arg;
    if (!j->svc) { /* the tagging API's list */
        j->st = count_tagged(j, &j->err);
        return NULL;
    }
    char *token = NULL;
    j->st = GM_OK;
    for (int page = 0; j->st == GM_OK && page < 100; page++) {
        char *next = NULL;
        j->st = describe_page(j, token, &next, &j->err);
        free(token);
        token = next;
        if (!token)
            break;
    }
    free(token);
    return NULL;
}

/* Adds the groups of from to groups (their counts summed). */
static GM_MUST_CHECK gm_status merge_counts(json_t *groups, const json_t *from, gm_error *err)
{
    size_t i;
    const json_t *g;
    gm_status st = GM_OK;
    json_array_foreach (from, i, g) {
        json_int_t n = json_integer_value(json_object_get(g, "tagged"));
        for (json_int_t k = 0; st == GM_OK && k < n; k++)
            st = count_in(groups, json_string_value(json_object_get(g, "name")),
                          json_string_value(json_object_get(g, "deployment_id")), err);
    }
    return st;
}

/* What the tagging API lists, and the groups, templates and addresses by
 * their tags, at once (one round trip). */
static GM_MUST_CHECK gm_status discover_tagged(gm_aws_client *aws, const char *name, json_t *groups,
                                               gm_error *err)
{
    described_job jobs[] = {
        {.svc = NULL, .action = "GetResources"},
        {.svc = &gm_svc_autoscaling,
         .action = "DescribeAutoScalingGroups",
         .spec = &gm_asg_tagged_groups},
        {.svc = &gm_svc_ec2,
         .action = "DescribeLaunchTemplates",
         .spec = &gm_ec2_tagged_launch_templates},
        {.svc = &gm_svc_ec2, .action = "DescribeAddresses", .spec = &gm_ec2_tagged_addresses},
    };
    enum { N = sizeof jobs / sizeof *jobs };
    bool started[N] = {false};
    for (size_t i = 0; i < N; i++) {
        jobs[i].aws = aws;
        jobs[i].name = name;
        jobs[i].found = json_array();
        if (!jobs[i].found)
            jobs[i].st = gm_error_set(&jobs[i].err, GM_ERR_NOMEM, "out of memory");
        else if (pthread_create(&jobs[i].thread, NULL, describe_all, &jobs[i]) == 0)
            started[i] = true;
        else
            describe_all(&jobs[i]); /* no thread to be had: here */
    }
    gm_status st = GM_OK;
    for (size_t i = 0; i < N; i++) {
        if (started[i])
            pthread_join(jobs[i].thread, NULL);
        if (st == GM_OK && jobs[i].st != GM_OK) {
            st = jobs[i].st;
            *err = jobs[i].err;
        }
        if (st == GM_OK)
            st = merge_counts(groups, jobs[i].found, err);
        json_decref(jobs[i].found);
    }
    return st;
}

gm_status gm_engine_discover(gm_aws_client *aws, const char *name, bool with_iam, json_t **out,
                             gm_error *err)
{
    *out = NULL;
    json_t *groups = json_array();
    if (!groups)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_status st = discover_tagged(aws, name, groups, err);
    for (int role = 1; with_iam && st == GM_OK && role >= 0; role--)
        st = discover_iam(aws, name, role, groups, err);
    if (st != GM_OK) {
        json_decref(groups);
        gm_error_prefix(err, "cannot list the resources tagged by geusemaker in %s",
                        gm_aws_client_region(aws));
        return st;
    }
    *out = groups;
    return GM_OK;
}

/* ---- survey ------------------------------------------------------------------ */

/* A record for what exists of deployment (name, id) without its record:
 * the largest graph, so every kind can be found and deleted. */
static GM_MUST_CHECK gm_status synthetic(gm_aws_client *aws, const char *name, const char *id,
                                         gm_deployment **out, gm_error *err)
{
    if (*id && !gm_deployment_id_valid(id))
        return gm_error_set(err, GM_ERR_INVALID, "'%s' is not a deployment id", id);
    *out = gm_deployment_new(name, gm_tier_name(GM_TIER_AUTOMATION), gm_aws_client_region(aws));
    if (!*out)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    snprintf((*out)->deployment_id, sizeof(*out)->deployment_id, "%s", id);
    return GM_OK;
}

/* The instances that run for what was found: those of the groups, and any
 * instance the sweep found on its own (the tagging API lists the group's
 * instance too: each once). */
static GM_MUST_CHECK gm_status found_instances(gm_run *r, gm_ids *out, gm_error *err)
{
    int k = gm_run_find_node(r, GM_NODE_ASG);
    gm_ids *ids = k >= 0 ? &r->nodes[k].found : NULL;
    gm_status st = GM_OK;
    for (size_t i = 0; ids && st == GM_OK && i < ids->n; i++) {
        if (strncmp(ids->v[i], "i-", 2) == 0) {
            st = gm_ids_has(out, ids->v[i]) ? GM_OK : gm_ids_add(out, ids->v[i], err);
            continue;
        }
        gm_read_rows rows;
        st = gm_n_asg_read(&r->nodes[k], ids->v[i], &gm_asg_instances, &rows, err);
        for (size_t j = 0; st == GM_OK && j < rows.n; j++) {
            const char *id = gm_read_get(&rows, j, GM_ASG_I_ID);
            st = gm_ids_has(out, id) ? GM_OK : gm_ids_add(out, id, err);
        }
        gm_read_rows_release(&rows);
    }
    return st;
}

/* The hourly cost of what was found: running instances at the shipped
 * on-demand rate (spot costs less), and the load balancer's hour. */
static GM_MUST_CHECK gm_status hourly_of(gm_run *r, double *out, gm_error *err)
{
    *out = 0;
    gm_params p;
    gm_params_init(&p);
    gm_ids ids;
    gm_ids_init(&ids);
    gm_status st = found_instances(r, &ids, err);
    for (size_t i = 0; st == GM_OK && i < ids.n; i++)
        gm_params_addf(&p, ids.v[i], "InstanceId.%zu", i + 1);
    size_t n = ids.n;
    gm_ids_release(&ids);
    if (st == GM_OK && n) {
        xmlDocPtr doc = NULL;
        st = gm_aws_query(r->aws, &gm_svc_ec2, "DescribeInstances", &p, &doc, err);
        gm_read_rows rows;
        if (st == GM_OK)
            st = gm_read_xml(doc, &gm_ec2_instances, &rows, err);
        for (size_t i = 0; st == GM_OK && i < rows.n; i++) {
            const char *state = gm_read_get(&rows, i, GM_EC2_I_STATE);
            double h = gm_cost_on_demand_hourly(gm_read_get(&rows, i, GM_EC2_I_TYPE));
            if ((strcmp(state, "running") == 0 || strcmp(state, "pending") == 0) && h > 0)
                *out += h;
        }
        if (st == GM_OK)
            gm_read_rows_release(&rows);
        xmlFreeDoc(doc);
    }
    gm_params_release(&p);
    int k = gm_run_find_node(r, "alb");
    if (k >= 0 && r->nodes[k].found.n)
        *out += GM_COST_RATE_ALB_HOUR * (double)r->nodes[k].found.n;
    return st;
}

/* What the look-ups recorded and the sweep found besides, as [{"node",
 * "kind", "id"}]. */
static json_t *found_json(const gm_run *r)
{
    json_t *a = json_array();
    for (size_t k = 0; a && k < r->n_nodes; k++) {
        const gm_node *n = &r->nodes[k];
        const gm_node_state *s = gm_deployment_node(r->dep, n->def->name);
        const char *recorded = s && s->status == GM_NODE_CREATED ? s->id : NULL;
        for (size_t i = 0; i <= n->found.n; i++) {
            const char *id = i < n->found.n ? n->found.v[i] : recorded;
            if (!id || !n->def->ops->owns_resource ||
                (i < n->found.n && recorded && strcmp(id, recorded) == 0))
                continue;
            if (json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "node", n->def->name, "kind",
                                                   n->def->ops->kind, "id", id)) != 0) {
                json_decref(a);
                return NULL;
            }
        }
    }
    return a;
}

/* A run over a record made for (name, id), its resources looked up and
 * recorded (nothing saved, nothing reported). */
static GM_MUST_CHECK gm_status found_run(const gm_engine_options *o, gm_deploy_config *cfg,
                                         gm_deployment *dep, gm_run *r, gm_error *err)
{
    gm_engine_options ro = {.aws = o->aws,
                            .interrupt = o->interrupt,
                            .settings = o->settings,
                            .graph = gm_engine_every_graph()};
    *cfg = (gm_deploy_config){.name = dep->name, .tier = GM_TIER_AUTOMATION};
    gm_engine_adoption rep;
    memset(&rep, 0, sizeof rep);
    gm_status st = gm_run_init(r, &ro, cfg, dep, 10 * 60 * 1000, err);
    if (st == GM_OK)
        st = gm_run_find_all(r, &rep, err);
    return st;
}

gm_status gm_engine_survey(const gm_engine_options *o, const char *name, const char *id,
                           json_t **out, gm_error *err)
{
    *out = NULL;
    gm_deployment *dep = NULL;
    gm_status st = synthetic(o->aws, name, id, &dep, err);
    if (st != GM_OK)
        return st;
    gm_deploy_config cfg;
    gm_run r;
    memset(&r, 0, sizeof r);
    st = found_run(o, &cfg, dep, &r, err);
    size_t n = 0;
    double hourly = 0;
    if (st == GM_OK)
        st = gm_run_sweep(&r, &n, err);
    if (st == GM_OK)
        st = hourly_of(&r, &hourly, err);
    json_t *resources = st == GM_OK ? found_json(&r) : NULL;
    if (st == GM_OK &&
        !(*out = json_pack("{s:s, s:s, s:s, s:o, s:f}", "name", name, "deployment_id", id, "region",
                           gm_aws_client_region(o->aws), "resources", resources, "hourly_usd",
                           hourly)))
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_run_release(&r);
    gm_deployment_free(dep);
    return st;
}

/* ---- one name per region ------------------------------------------------------ */

/* "vpc vpc-1, subnet subnet-2, ..." (the first few) of a survey. */
static void describe_found(const json_t *survey, char *out, size_t size)
{
    const json_t *res = json_object_get(survey, "resources");
    size_t i, len = 0;
    const json_t *r;
    out[0] = '\0';
    json_array_foreach (res, i, r) {
        if (i == 4) {
            snprintf(out + len, size - len, ", and %zu more", json_array_size(res) - i);
            return;
        }
        int w = snprintf(out + len, size - len, "%s%s %s", i ? ", " : "",
                         json_string_value(json_object_get(r, "kind")),
                         json_string_value(json_object_get(r, "id")));
        if (w < 0 || (size_t)w >= size - len)
            return;
        len += (size_t)w;
    }
}

gm_status gm_engine_check_name_free(const gm_engine_options *o, const char *name, const char *id,
                                    gm_error *err)
{
    json_t *groups = NULL;
    gm_status st = gm_engine_discover(o->aws, name, false, &groups, err);
    size_t i;
    json_t *g;
    json_array_foreach (groups, i, g) {
        const char *other = json_string_value(json_object_get(g, "deployment_id"));
        if (st != GM_OK || strcmp(other, id) == 0)
            continue;
        json_t *survey = NULL;
        st = gm_engine_survey(o, name, other, &survey, err);
        size_t n = json_array_size(json_object_get(survey, "resources"));
        if (st == GM_OK && n) {
            char what[512];
            describe_found(survey, what, sizeof what);
            st = gm_error_set(
                err, GM_ERR_INVALID,
                "the name '%s' is taken in %s by another deployment (id %s, %zu resource(s): "
                "%s); it has no record in this state folder. Manage it from here with "
                "'geusemaker adopt %s%s%s', delete it with 'geusemaker cleanup --name %s', "
                "or choose another name",
                name, gm_aws_client_region(o->aws), *other ? other : "none, made before ids", n,
                what, name, *other ? " --id " : "", other, name);
        }
        json_decref(survey);
    }
    json_decref(groups);
    return st;
}

/* ---- cleanup ------------------------------------------------------------------- */

gm_status gm_engine_cleanup(const gm_engine_options *o, const char *name, const char *id,
                            gm_error *err)
{
    gm_deployment *dep = NULL;
    gm_status st = synthetic(o->aws, name, id, &dep, err);
    if (st != GM_OK)
        return st;
    /* Looked up first, so what the tagging API cannot list (mount targets,
     * listeners) is found through its parent. */
    gm_deploy_config cfg;
    gm_run r;
    memset(&r, 0, sizeof r);
    st = found_run(o, &cfg, dep, &r, err);
    gm_run_release(&r);
    gm_engine_options ro = *o;
    ro.store = NULL; /* there is no record to keep */
    ro.graph = gm_engine_every_graph();
    if (st == GM_OK)
        st = gm_engine_destroy(&ro, dep, false, err);
    gm_deployment_free(dep);
    return st;
}
