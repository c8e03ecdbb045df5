/* Helpers the node kinds share: standard tags, find-by-tag, tolerant calls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "engine/internal.h"

/* The standard tags of a resource, written as name and value parameters whose
 * names are built from key_fmt / value_fmt with (idx, tag number). */
static gm_status standard_tags(gm_engine *e, gm_params *p, const char *node_name,
                               const char *key_fmt, const char *value_fmt, int idx)
{
    char name_tag[160];
    snprintf(name_tag, sizeof name_tag, "%s-%s", e->dep->name, node_name);
    const char *tags[][2] = {
        {"Name", name_tag},
        {"geusemaker:deployment", e->dep->name},
        {"geusemaker:node", node_name},
        {"ManagedBy", "geusemaker"},
    };
    char key[96], value[96];
    gm_status st = GM_OK;
    for (int i = 0; st == GM_OK && i < 4; i++) {
        if (idx > 0) {
            snprintf(key, sizeof key, key_fmt, idx, i + 1);
            snprintf(value, sizeof value, value_fmt, idx, i + 1);
        } else {
            snprintf(key, sizeof key, key_fmt, i + 1);
            snprintf(value, sizeof value, value_fmt, i + 1);
        }
        st = gm_params_add(p, key, tags[i][0]);
        if (st == GM_OK)
            st = gm_params_add(p, value, tags[i][1]);
    }
    return st;
}

gm_status gm_e_tag_spec(gm_engine *e, gm_params *p, int idx, const char *resource_type,
                        const char *node_name)
{
    gm_status st = gm_params_addf(p, resource_type, "TagSpecification.%d.ResourceType", idx);
    if (st == GM_OK)
        st = standard_tags(e, p, node_name, "TagSpecification.%d.Tag.%d.Key",
                           "TagSpecification.%d.Tag.%d.Value", idx);
    return st;
}

gm_status gm_e_member_tags(gm_engine *e, gm_params *p, const char *node_name)
{
    return standard_tags(e, p, node_name, "Tags.member.%d.Key", "Tags.member.%d.Value", 0);
}

static bool code_in(const char *code, const char *const *codes)
{
    for (int i = 0; codes && codes[i]; i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

gm_status gm_e_query(gm_engine *e, const gm_aws_service *svc, const char *action, gm_params *p,
                     xmlDocPtr *out_doc, const char *const *ok_codes, gm_error *err)
{
    xmlDocPtr doc = NULL;
    gm_error cerr = {0};
    gm_status st = gm_aws_query(e->aws, svc, action, p, &doc, &cerr);
    if (st != GM_OK && *cerr.aws_code && code_in(cerr.aws_code, ok_codes))
        st = GM_OK;
    else if (st != GM_OK)
        *err = cerr;
    if (out_doc)
        *out_doc = doc;
    else if (doc)
        xmlFreeDoc(doc);
    return st;
}

gm_status gm_e_ec2_call(gm_engine *e, const char *action, gm_params *p, xmlDocPtr *out_doc,
                        const char *const *ok_codes, gm_error *err)
{
    return gm_e_query(e, &gm_svc_ec2, action, p, out_doc, ok_codes, err);
}

gm_status gm_e_ec2_find_tagged(gm_engine *e, const char *describe_action, const char *set_name,
                               const char *id_elem, const char *node_name,
                               const char *extra_filter_name, const char *extra_filter_value,
                               char **out_id, gm_error *err)
{
    *out_id = NULL;
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "Filter.1.Name", "tag:geusemaker:deployment");
    gm_params_add(&p, "Filter.1.Value.1", e->dep->name);
    gm_params_add(&p, "Filter.2.Name", "tag:geusemaker:node");
    gm_params_add(&p, "Filter.2.Value.1", node_name);
    if (extra_filter_name) {
        gm_params_add(&p, "Filter.3.Name", extra_filter_name);
        gm_params_add(&p, "Filter.3.Value.1", extra_filter_value);
    }
    xmlDocPtr doc = NULL;
    gm_status st = gm_aws_query(e->aws, &gm_svc_ec2, describe_action, &p, &doc, err);
    gm_params_release(&p);
    if (st != GM_OK)
        return st;
    xmlNodePtr set = gm_xml_find(xmlDocGetRootElement(doc), set_name);
    GM_XML_FOREACH (item, set, "item") {
        char *id = gm_xml_text(item, id_elem);
        if (id && *id) {
            *out_id = id;
            break;
        }
        free(id);
    }
    xmlFreeDoc(doc);
    return GM_OK;
}

bool gm_e_is_dependency_error(const gm_error *err)
{
    static const char *const codes[] = {
        "DependencyViolation", "ResourceInUse",       "FileSystemInUse", "DeleteConflict",
        "InvalidGroup.InUse",  "MountTargetConflict", "IncorrectState",  NULL,
    };
    return err && *err->aws_code && code_in(err->aws_code, codes);
}

static void *parallel_call(void *arg)
{
    gm_e_call *c = arg;
    xmlDocPtr doc = NULL;
    c->st = gm_aws_query(c->engine->aws, c->svc ? c->svc : &gm_svc_ec2, c->action, &c->params, &doc,
                         &c->err);
    if (c->st != GM_OK && *c->err.aws_code && code_in(c->err.aws_code, c->ok_codes)) {
        c->st = GM_OK;
        gm_error_clear(&c->err);
    }
    xmlFreeDoc(doc);
    return NULL;
}

gm_status gm_e_parallel(gm_engine *e, gm_e_call *calls, int n, gm_error *err)
{
    bool *started = calloc((size_t)n, sizeof *started);
    for (int i = 0; i < n; i++) {
        calls[i].engine = e;
        gm_error_clear(&calls[i].err);
        if (started && pthread_create(&calls[i].thread, NULL, parallel_call, &calls[i]) == 0)
            started[i] = true;
        else
            parallel_call(&calls[i]); /* no thread to be had: run it here */
    }
    gm_status st = GM_OK;
    for (int i = 0; i < n; i++) {
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
