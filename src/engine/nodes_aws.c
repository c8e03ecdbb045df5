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
static int standard_tags_as(gm_node *n, const char *node, bool global, char *name_tag, size_t size,
                            const char *tags[GM_N_MAX_TAGS][2])
{
    snprintf(name_tag, size, "%s-%s", gm_node_deployment(n), node);
    int k = 0;
    tags[k][0] = "Name", tags[k++][1] = name_tag;
    tags[k][0] = GM_TAG_DEPLOYMENT, tags[k++][1] = gm_node_deployment(n);
    if (*gm_node_deployment_id(n))
        tags[k][0] = GM_TAG_DEPLOYMENT_ID, tags[k++][1] = gm_node_deployment_id(n);
    tags[k][0] = GM_TAG_NODE, tags[k++][1] = node;
    tags[k][0] = GM_TAG_MANAGED_BY, tags[k++][1] = "geusemaker";
    if (global)
        tags[k][0] = GM_TAG_REGION, tags[k++][1] = gm_aws_client_region(gm_node_aws(n));
    return k;
}

static int standard_tags(gm_node *n, bool global, char *name_tag, size_t size,
                         const char *tags[GM_N_MAX_TAGS][2])
{
    return standard_tags_as(n, gm_node_name(n), global, name_tag, size, tags);
}

void gm_n_tag_spec_as(gm_node *n, gm_params *p, const char *prefix, int idx,
                      const char *resource_type, const char *node)
{
    const char *tags[GM_N_MAX_TAGS][2];
    char name[160];
    int k = standard_tags_as(n, node, false, name, sizeof name, tags);
    gm_params_addf(p, resource_type, "%sTagSpecification.%d.ResourceType", prefix, idx);
    for (int i = 0; i < k; i++) {
        gm_params_addf(p, tags[i][0], "%sTagSpecification.%d.Tag.%d.Key", prefix, idx, i + 1);
        gm_params_addf(p, tags[i][1], "%sTagSpecification.%d.Tag.%d.Value", prefix, idx, i + 1);
    }
}

void gm_n_tag_spec_with(gm_node *n, gm_params *p, int idx, const char *resource_type,
                        const char *const extra[][2], int n_extra)
{
    const char *tags[GM_N_MAX_TAGS][2];
    char name[160];
    int k = standard_tags(n, false, name, sizeof name, tags);
    gm_params_addf(p, resource_type, "TagSpecification.%d.ResourceType", idx);
    for (int i = 0; i < k + n_extra; i++) {
        const char *key = i < k ? tags[i][0] : extra[i - k][0];
        const char *value = i < k ? tags[i][1] : extra[i - k][1];
        gm_params_addf(p, key, "TagSpecification.%d.Tag.%d.Key", idx, i + 1);
        gm_params_addf(p, value, "TagSpecification.%d.Tag.%d.Value", idx, i + 1);
    }
}

void gm_n_tags_with(gm_node *n, gm_params *p, const char *const extra[][2], int n_extra)
{
    const char *tags[GM_N_MAX_TAGS][2];
    char name[160];
    int k = standard_tags(n, false, name, sizeof name, tags);
    for (int i = 0; i < k + n_extra; i++) {
        gm_params_addf(p, i < k ? tags[i][0] : extra[i - k][0], "Tag.%d.Key", i + 1);
        gm_params_addf(p, i < k ? tags[i][1] : extra[i - k][1], "Tag.%d.Value", i + 1);
    }
}

void gm_n_tag_spec(gm_node *n, gm_params *p, int idx, const char *resource_type)
{
    gm_n_tag_spec_as(n, p, "", idx, resource_type, gm_node_name(n));
}

void gm_n_asg_tags(gm_node *n, gm_params *p, const char *group)
{
    const char *tags[GM_N_MAX_TAGS][2];
    char name[160];
    int k = standard_tags(n, false, name, sizeof name, tags);
    for (int i = 0; i < k; i++) {
        gm_params_addf(p, tags[i][0], "Tags.member.%d.Key", i + 1);
        gm_params_addf(p, tags[i][1], "Tags.member.%d.Value", i + 1);
        gm_params_addf(p, "true", "Tags.member.%d.PropagateAtLaunch", i + 1);
        gm_params_addf(p, group, "Tags.member.%d.ResourceId", i + 1);
        gm_params_addf(p, "auto-scaling-group", "Tags.member.%d.ResourceType", i + 1);
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
    return gm_n_query_with(gm_node_aws(n), svc, action, p, out_doc, ok_codes, err);
}

gm_status gm_n_query_with(gm_aws_client *aws, const gm_aws_service *svc, const char *action,
                          const gm_params *p, xmlDocPtr *out_doc, const char *const *ok_codes,
                          gm_error *err)
{
    xmlDocPtr doc = NULL;
    gm_error cerr = {0};
    gm_status st = gm_aws_query(aws, svc, action, p, &doc, &cerr);
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
                               const char *extra_filter_name, const char *const *extra_values,
                               gm_ids *out, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_n_owner_filters(n, &p);
    if (extra_filter_name) {
        gm_params_add(&p, "Filter.3.Name", extra_filter_name);
        for (int i = 0; extra_values[i]; i++)
            gm_params_addf(&p, extra_values[i], "Filter.3.Value.%d", i + 1);
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
    for (size_t i = 0; i < rows.n && st == GM_OK; i++)
        st = gm_ids_add(out, gm_read_get(&rows, i, 0), err);
    gm_read_rows_release(&rows);
    return st;
}

bool gm_n_is_dependency_error(const gm_error *err)
{
    static const char *const codes[] = {
        "DependencyViolation",
        "ResourceInUse",
        "FileSystemInUse",
        "DeleteConflict",
        "InvalidGroup.InUse",
        "MountTargetConflict",
        "IncorrectState",
        /* an Auto Scaling group still launching or terminating; an address
         * an instance still holds */
        "ScalingActivityInProgress",
        "InvalidIPAddress.InUse",
        NULL,
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

void gm_n_beside_start(gm_n_beside *b, void *(*fn)(void *), void *arg)
{
    b->threaded = pthread_create(&b->thread, NULL, fn, arg) == 0;
    if (!b->threaded)
        fn(arg);
}

void gm_n_beside_join(gm_n_beside *b)
{
    if (b->threaded)
        pthread_join(b->thread, NULL);
    b->threaded = false;
}

/* A look-up that found more than one resource of one node (a create that
 * was repeated after its answer was lost): the first is kept, the others go. */
static GM_MUST_CHECK gm_status drop_extras(gm_node *n, const gm_ids *ids, gm_error *err)
{
    gm_status st = GM_OK;
    for (size_t i = 1; i < ids->n && st == GM_OK; i++) {
        gm_node_note(n, "found a second %s %s (a repeated create): deleting it, keeping %s",
                     gm_node_kind(n), ids->v[i], ids->v[0]);
        st = gm_node_destroy_extra(n, ids->v[i], err);
    }
    return st;
}

gm_status gm_n_adopt(gm_node *n, char **out_id, gm_error *err)
{
    *out_id = NULL;
    gm_ids ids;
    gm_status st = gm_node_find(n, &ids, err);
    if (st == GM_OK && ids.n)
        st = drop_extras(n, &ids, err);
    if (st == GM_OK && ids.n && !(*out_id = strdup(ids.v[0])))
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_ids_release(&ids);
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
        gm_status st = gm_n_adopt(n, out_id, err);
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

/* How long to look for what a lost create may have made before sending it
 * again: AWS lists a new resource within seconds. */
#define LOOKUPS_AFTER_LOSS 3

gm_status gm_n_create_once(gm_node *n, gm_n_send_fn send, void *ctx,
                           const char *const *duplicate_codes, char **out_id, gm_error *err)
{
    *out_id = NULL;
    for (int attempt = 1;; attempt++) {
        gm_error serr = {0};
        gm_status st = send(n, ctx, out_id, &serr);
        if (st == GM_OK)
            return GM_OK;
        bool lost = gm_aws_error_ambiguous(&serr);
        bool duplicate = *serr.aws_code && code_in(serr.aws_code, duplicate_codes);
        const char *why = *serr.aws_code ? serr.aws_code : gm_status_name(serr.status);
        if (!lost && !duplicate) {
            *err = serr;
            return st;
        }
        /* It may exist: look for it (by this deployment's tags) before any
         * second try, and again after a moment, for AWS lists new things late. */
        for (int look = 0; look < LOOKUPS_AFTER_LOSS; look++) {
            gm_status lst =
                look ? gm_node_wait(n, gm_node_poll_ms(n), "looking for it", err) : GM_OK;
            if (lst == GM_OK)
                lst = gm_n_adopt(n, out_id, err);
            if (lst != GM_OK)
                return lst;
            if (*out_id) {
                gm_node_note(n, "%s answered %s, but it was made: adopting %s %s", serr.action, why,
                             gm_node_kind(n), *out_id);
                return GM_OK;
            }
            if (duplicate)
                break;
        }
        if (duplicate) {
            *err = serr;
            gm_error_prefix(err, "%s already exists and is not this deployment's", gm_node_kind(n));
            return st;
        }
        if (attempt == 3) {
            *err = serr;
            gm_error_prefix(err, "no answer after %d attempts", attempt);
            return st;
        }
        gm_node_note(n,
                     "%s got no answer (%s) and nothing it could have made exists: sending it "
                     "again",
                     serr.action, why);
    }
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

/* ---- ownership ------------------------------------------------------------ */

void gm_n_owner_of(gm_node *n, const char *name, const char *id, gm_owner *out, char *why,
                   size_t why_size)
{
    const char *value;
    bool by_id = strcmp(gm_n_owner_tag(n, &value), GM_TAG_DEPLOYMENT_ID) == 0;
    const char *mine = by_id ? id : name;
    if (mine && *mine && strcmp(mine, value) == 0) {
        *out = GM_OWNER_OURS;
        return;
    }
    *out = GM_OWNER_OTHER;
    if ((name && *name) || (id && *id))
        snprintf(why, why_size, "it belongs to deployment '%s' (id %s)", name && *name ? name : "?",
                 id && *id ? id : "none");
    else
        snprintf(why, why_size, "it carries no geusemaker deployment tag");
}

void gm_n_owner_from_tags(gm_node *n, const gm_read_rows *tags, gm_owner *out, char *why,
                          size_t why_size)
{
    const char *name = NULL, *id = NULL;
    for (size_t i = 0; i < tags->n; i++) {
        const char *k = gm_read_get(tags, i, 0), *v = gm_read_get(tags, i, 1);
        if (strcmp(k, GM_TAG_DEPLOYMENT) == 0)
            name = v;
        if (strcmp(k, GM_TAG_DEPLOYMENT_ID) == 0)
            id = v;
    }
    gm_n_owner_of(n, name, id, out, why, why_size);
}

bool gm_n_ec2_id_ok(const char *id)
{
    size_t prefix = strspn(id, "abcdefghijklmnopqrstuvwxyz");
    if (prefix == 0 || id[prefix] != '-')
        return false;
    const char *hex = id + prefix + 1;
    size_t len = strlen(hex);
    return len >= 8 && len <= 17 && strspn(hex, "0123456789abcdef") == len;
}

gm_status gm_n_owner_ec2(gm_node *n, const char *id, const char *action, const char *id_param,
                         const char *item_path, gm_owner *out, char *why, size_t why_size,
                         gm_error *err)
{
    if (!gm_n_ec2_id_ok(id))
        return gm_error_set(err, GM_ERR_CONFLICT, "the record names a malformed %s id '%s'",
                            gm_node_kind(n), id);
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, id_param, id);
    xmlDocPtr doc = NULL;
    gm_error cerr = {0};
    gm_status st = gm_aws_query(gm_node_aws(n), &gm_svc_ec2, action, &p, &doc, &cerr);
    gm_params_release(&p);
    if (st != GM_OK && strstr(cerr.aws_code, "NotFound")) {
        *out = GM_OWNER_GONE;
        return GM_OK;
    }
    if (st != GM_OK) {
        *err = cerr;
        if (strstr(cerr.aws_code, "Malformed"))
            gm_error_prefix(err, "the record names a malformed %s id '%s'", gm_node_kind(n), id);
        return st;
    }
    char list[160], tag_list[192];
    snprintf(list, sizeof list, "%s", item_path);
    snprintf(tag_list, sizeof tag_list, "%s/tagSet/item", item_path);
    gm_read_spec items = {"ec2 items", list, {NULL}};
    gm_read_spec tags = {"ec2 tags", tag_list, {"key", "value"}};
    gm_read_rows item_rows, tag_rows;
    gm_read_rows_init(&tag_rows);
    st = gm_read_xml(doc, &items, &item_rows, err);
    if (st == GM_OK)
        st = gm_read_xml(doc, &tags, &tag_rows, err);
    xmlFreeDoc(doc);
    if (st == GM_OK && item_rows.n == 0)
        *out = GM_OWNER_GONE;
    else if (st == GM_OK)
        gm_n_owner_from_tags(n, &tag_rows, out, why, why_size);
    gm_read_rows_release(&item_rows);
    gm_read_rows_release(&tag_rows);
    return st;
}

gm_status gm_n_ssm_put(gm_node *n, const char *name, const char *value, const char *type,
                       const char *description, bool overwrite, gm_error *err)
{
    json_t *tags = overwrite ? json_array() : gm_n_json_tags(n);
    json_t *body =
        tags ? json_pack("{s:s, s:s, s:s, s:s, s:b, s:o}", "Name", name, "Value", value, "Type",
                         type, "Description", description, "Overwrite", overwrite, "Tags", tags)
             : NULL;
    if (body && overwrite)
        json_object_del(body, "Tags");
    json_t *out = NULL;
    gm_status st = body ? gm_aws_json(gm_node_aws(n), &gm_svc_ssm, "PutParameter", body, &out, err)
                        : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    json_decref(out);
    json_decref(body);
    return st;
}

gm_status gm_n_ssm_put_string(gm_node *n, const char *name, const char *value,
                              const char *description, gm_error *err)
{
    gm_error perr = {0};
    gm_status st = gm_n_ssm_put(n, name, value, "String", description, false, &perr);
    if (st != GM_OK && strcmp(perr.aws_code, "ParameterAlreadyExists") == 0)
        return gm_n_ssm_put(n, name, value, "String", description, true, err);
    if (st != GM_OK)
        *err = perr;
    return st;
}
