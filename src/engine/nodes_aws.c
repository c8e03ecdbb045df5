/* Helpers the node kinds share: standard tags, find-by-tag, tolerant and
 * concurrent calls, the adopt-or-intent step of a create. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "aws/xml.h"
#include "core/str.h"
#include "engine/nodes.h"

/* The standard tags of this node's resources into tags (key, value pairs);
 * returns how many. Global resources (IAM) also name their region. */
static int standard_tags(gm_node *n, bool global, char *name_tag, size_t size,
                         const char *tags[GM_N_MAX_TAGS][2])
{
    snprintf(name_tag, size, "%s-%s", gm_node_deployment(n), gm_node_name(n));
    int k = 0;
    tags[k][0] = "Name", tags[k++][1] = name_tag;
    tags[k][0] = GM_TAG_DEPLOYMENT, tags[k++][1] = gm_node_deployment(n);
    if (*gm_node_deployment_id(n))
        tags[k][0] = GM_TAG_DEPLOYMENT_ID, tags[k++][1] = gm_node_deployment_id(n);
    tags[k][0] = GM_TAG_NODE, tags[k++][1] = gm_node_name(n);
    tags[k][0] = GM_TAG_MANAGED_BY, tags[k++][1] = "geusemaker";
    if (global)
        tags[k][0] = GM_TAG_REGION, tags[k++][1] = gm_aws_client_region(gm_node_aws(n));
    return k;
}

void gm_n_tag_spec(gm_node *n, gm_params *p, int idx, const char *resource_type)
{
    const char *tags[GM_N_MAX_TAGS][2];
    char name[160];
    int k = standard_tags(n, false, name, sizeof name, tags);
    gm_params_addf(p, resource_type, "TagSpecification.%d.ResourceType", idx);
    for (int i = 0; i < k; i++) {
        gm_params_addf(p, tags[i][0], "TagSpecification.%d.Tag.%d.Key", idx, i + 1);
        gm_params_addf(p, tags[i][1], "TagSpecification.%d.Tag.%d.Value", idx, i + 1);
    }
}

void gm_n_member_tags(gm_node *n, gm_params *p, bool global)
{
    const char *tags[GM_N_MAX_TAGS][2];
    char name[160];
    int k = standard_tags(n, global, name, sizeof name, tags);
    for (int i = 0; i < k; i++) {
        gm_params_addf(p, tags[i][0], "Tags.member.%d.Key", i + 1);
        gm_params_addf(p, tags[i][1], "Tags.member.%d.Value", i + 1);
    }
}

json_t *gm_n_json_tags(gm_node *n)
{
    const char *tags[GM_N_MAX_TAGS][2];
    char name[160];
    int k = standard_tags(n, false, name, sizeof name, tags);
    json_t *a = json_array();
    for (int i = 0; a && i < k; i++)
        if (json_array_append_new(
                a, json_pack("{s:s, s:s}", "Key", tags[i][0], "Value", tags[i][1])) != 0)
            json_decref(a), a = NULL;
    return a;
}

const char *gm_n_owner_tag(const gm_node *n, const char **out_value)
{
    bool legacy = !*gm_node_deployment_id(n);
    *out_value = legacy ? gm_node_deployment(n) : gm_node_deployment_id(n);
    return legacy ? GM_TAG_DEPLOYMENT : GM_TAG_DEPLOYMENT_ID;
}

static bool code_in(const char *code, const char *const *codes)
{
    for (int i = 0; codes && codes[i]; i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

gm_status gm_n_query(gm_node *n, const gm_aws_service *svc, const char *action, const gm_params *p,
                     xmlDocPtr *out_doc, const char *const *ok_codes, gm_error *err)
{
    xmlDocPtr doc = NULL;
    gm_error cerr = {0};
    gm_status st = gm_aws_query(gm_node_aws(n), svc, action, p, &doc, &cerr);
    if (st != GM_OK && *cerr.aws_code && code_in(cerr.aws_code, ok_codes))
        st = GM_OK;
    else if (st != GM_OK)
        *err = cerr;
    if (out_doc)
        *out_doc = doc;
    else
        xmlFreeDoc(doc);
    return st;
}

gm_status gm_n_ec2(gm_node *n, const char *action, const gm_params *p, xmlDocPtr *out_doc,
                   const char *const *ok_codes, gm_error *err)
{
    return gm_n_query(n, &gm_svc_ec2, action, p, out_doc, ok_codes, err);
}

void gm_n_owner_filters(gm_node *n, gm_params *p)
{
    const char *value;
    char filter[64];
    snprintf(filter, sizeof filter, "tag:%s", gm_n_owner_tag(n, &value));
    gm_params_add(p, "Filter.1.Name", filter);
    gm_params_add(p, "Filter.1.Value.1", value);
    gm_params_add(p, "Filter.2.Name", "tag:" GM_TAG_NODE);
    gm_params_add(p, "Filter.2.Value.1", gm_node_name(n));
}

gm_status gm_n_ec2_find_tagged(gm_node *n, const char *describe_action, const gm_read_spec *spec,
                               const char *extra_filter_name, const char *extra_filter_value,
                               char **out_id, gm_error *err)
{
    *out_id = NULL;
    gm_params p;
    gm_params_init(&p);
    gm_n_owner_filters(n, &p);
    if (extra_filter_name) {
        gm_params_add(&p, "Filter.3.Name", extra_filter_name);
        gm_params_add(&p, "Filter.3.Value.1", extra_filter_value);
    }
    xmlDocPtr doc = NULL;
    gm_status st = gm_n_ec2(n, describe_action, &p, &doc, NULL, err);
    gm_params_release(&p);
    gm_read_rows rows;
    if (st == GM_OK)
        st = gm_read_xml(doc, spec, &rows, err);
    xmlFreeDoc(doc);
    if (st != GM_OK)
        return st;
    for (size_t i = 0; i < rows.n && !*out_id; i++)
        *out_id = gm_read_dup(&rows, i, 0);
    gm_read_rows_release(&rows);
    return GM_OK;
}

bool gm_n_is_dependency_error(const gm_error *err)
{
    static const char *const codes[] = {
        "DependencyViolation", "ResourceInUse",       "FileSystemInUse", "DeleteConflict",
        "InvalidGroup.InUse",  "MountTargetConflict", "IncorrectState",  NULL,
    };
    return err && *err->aws_code && code_in(err->aws_code, codes);
}

static void *parallel_call(void *arg)
{
    gm_n_call *c = arg;
    xmlDocPtr doc = NULL;
    c->st =
        gm_aws_query(c->aws, c->svc ? c->svc : &gm_svc_ec2, c->action, &c->params, &doc, &c->err);
    if (c->st != GM_OK && *c->err.aws_code && code_in(c->err.aws_code, c->ok_codes)) {
        c->st = GM_OK;
        gm_error_clear(&c->err);
    }
    xmlFreeDoc(doc);
    return NULL;
}

gm_status gm_n_parallel(gm_node *n, gm_n_call *calls, int count, gm_error *err)
{
    bool *started = calloc((size_t)count, sizeof *started);
    for (int i = 0; i < count; i++) {
        calls[i].aws = gm_node_aws(n);
        gm_error_clear(&calls[i].err);
        if (started && pthread_create(&calls[i].thread, NULL, parallel_call, &calls[i]) == 0)
            started[i] = true;
        else
            parallel_call(&calls[i]); /* no thread to be had: run it here */
    }
    gm_status st = GM_OK;
    for (int i = 0; i < count; i++) {
        if (started && started[i])
            pthread_join(calls[i].thread, NULL);
        if (calls[i].st != GM_OK && st == GM_OK) {
            st = calls[i].st;
            *err = calls[i].err;
        }
        gm_params_release(&calls[i].params);
    }
    free(started);
    return st;
}

gm_status gm_n_adopt_or_intent(gm_node *n, char **out_id, char *token, size_t token_size,
                               gm_error *err)
{
    *out_id = NULL;
    /* Only a node journalled by an earlier run can have left something behind:
     * the intent is saved before every create call. A fresh node skips the
     * look-up (one round trip less on the critical path). */
    if (gm_node_journalled(n)) {
        gm_status st = gm_node_find(n, out_id, err);
        if (st != GM_OK)
            return st;
        if (*out_id) {
            gm_node_note(n, "found %s %s from an earlier run: adopting it", gm_node_kind(n),
                         *out_id);
            return gm_node_created(n, *out_id, err);
        }
    }
    return gm_node_intent(n, token, token_size, err);
}

void gm_n_drift(json_t *live, const char *what)
{
    json_array_append_new(json_object_get(live, "drift"), json_string(what));
}

gm_status gm_n_inspect_ec2(gm_node *n, const char *action, const char *id_param, const char *id,
                           const gm_read_spec *spec, int state_field, json_t *out, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, id_param, id);
    xmlDocPtr doc = NULL;
    gm_error cerr = {0};
    gm_status st = gm_aws_query(gm_node_aws(n), &gm_svc_ec2, action, &p, &doc, &cerr);
    gm_params_release(&p);
    if (st != GM_OK && (strstr(cerr.aws_code, "NotFound") || strstr(cerr.aws_code, "Malformed"))) {
        json_object_set_new(out, "exists", json_false());
        gm_n_drift(out, "missing");
        return GM_OK;
    }
    if (st != GM_OK) {
        *err = cerr;
        return st;
    }
    gm_read_rows rows;
    st = gm_read_xml(doc, spec, &rows, err);
    xmlFreeDoc(doc);
    if (st != GM_OK)
        return st;
    json_object_set_new(out, "exists", json_boolean(rows.n > 0));
    if (rows.n == 0)
        gm_n_drift(out, "missing");
    else if (state_field >= 0 && *gm_read_get(&rows, 0, state_field))
        json_object_set_new(out, "state", json_string(gm_read_get(&rows, 0, state_field)));
    gm_read_rows_release(&rows);
    return GM_OK;
}
