/* IAM node kinds: the instance role, its policies, the instance profile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "engine/internal.h"
#include "engine/nodes.h"

static const char ASSUME_ROLE_POLICY[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
    "\"Principal\":{\"Service\":\"ec2.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}";

static const char *const MANAGED_POLICIES[] = {
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
};

static gm_status iam_call(gm_engine *e, const char *action, gm_params *p, xmlDocPtr *out,
                          const char *const *ok_codes, gm_error *err)
{
    return gm_e_query(e, &gm_svc_iam, action, p, out, ok_codes, err);
}

/* Finds a role or profile by its deterministic name; one that exists without
 * this deployment's tag is not ours and is a conflict. */
static gm_status find_named(gm_engine *e, const char *action, const char *param, const char *name,
                            const char *elem, char **out_id, gm_error *err)
{
    *out_id = NULL;
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, param, name);
    xmlDocPtr doc = NULL;
    static const char *const gone[] = {"NoSuchEntity", NULL};
    gm_status st = iam_call(e, action, &p, &doc, gone, err);
    gm_params_release(&p);
    if (st != GM_OK || !doc)
        return st;
    xmlNodePtr obj = gm_xml_find(xmlDocGetRootElement(doc), elem);
    if (obj) {
        bool ours = false;
        GM_XML_FOREACH (t, gm_xml_child(obj, "Tags"), "member") {
            char *k = gm_xml_text(t, "Key"), *v = gm_xml_text(t, "Value");
            if (gm_str_eq(k, "geusemaker:deployment") && gm_str_eq(v, e->dep->name))
                ours = true;
            free(k);
            free(v);
        }
        if (!ours)
            st = gm_error_set(err, GM_ERR_CONFLICT,
                              "iam %s '%s' exists but is not tagged as part of deployment '%s'; "
                              "remove it or choose another name",
                              strcmp(elem, "Role") == 0 ? "role" : "instance profile", name,
                              e->dep->name);
        else
            *out_id = strdup(name);
    }
    xmlFreeDoc(doc);
    return st;
}

/* ---- role ------------------------------------------------------------------- */

static gm_status role_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    char name[128];
    gm_e_resource_name(e, "role", name, sizeof name);
    return find_named(e, "GetRole", "RoleName", name, "Role", out_id, err);
}

static gm_status role_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *id = NULL;
    char token[96];
    gm_status st = gm_n_adopt_or_intent(e, n, &gm_ops_role, &id, token, sizeof token, err);
    if (st != GM_OK || id) {
        free(id);
        return st;
    }
    char name[128];
    gm_e_resource_name(e, "role", name, sizeof name);
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "RoleName", name);
    gm_params_add(&p, "Path", "/geusemaker/");
    gm_params_add(&p, "AssumeRolePolicyDocument", ASSUME_ROLE_POLICY);
    gm_params_add(&p, "Description", "GeuseMaker AI stack instance role");
    gm_e_member_tags(e, &p, n->def->name);
    gm_error cerr = {0};
    st = iam_call(e, "CreateRole", &p, NULL, NULL, &cerr);
    gm_params_release(&p);
    if (st != GM_OK && strcmp(cerr.aws_code, "EntityAlreadyExists") == 0) {
        /* Left by an earlier run of this deployment (tagged), or a conflict. */
        st = role_find(e, n, &id, err);
        free(id);
    } else if (st != GM_OK) {
        *err = cerr;
    }
    if (st == GM_OK)
        st = gm_e_journal_id(e, n, name, err);
    return st;
}

static gm_status role_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    static const char *const gone[] = {"NoSuchEntity", NULL};
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "RoleName", id);
    xmlDocPtr doc = NULL;
    gm_status st = iam_call(e, "ListAttachedRolePolicies", &p, &doc, gone, err);
    gm_params_release(&p);
    if (st != GM_OK)
        return st;
    GM_XML_FOREACH (m, gm_xml_find(xmlDocGetRootElement(doc), "AttachedPolicies"), "member") {
        char *arn = gm_xml_text(m, "PolicyArn");
        gm_params_init(&p);
        gm_params_add(&p, "RoleName", id);
        gm_params_add(&p, "PolicyArn", arn ? arn : "");
        st = iam_call(e, "DetachRolePolicy", &p, NULL, gone, err);
        gm_params_release(&p);
        free(arn);
        if (st != GM_OK)
            break;
    }
    xmlFreeDoc(doc);
    doc = NULL;
    if (st == GM_OK) {
        gm_params_init(&p);
        gm_params_add(&p, "RoleName", id);
        st = iam_call(e, "ListRolePolicies", &p, &doc, gone, err);
        gm_params_release(&p);
    }
    if (st == GM_OK && doc) {
        GM_XML_FOREACH (m, gm_xml_find(xmlDocGetRootElement(doc), "PolicyNames"), "member") {
            char *pn = gm_xml_text(m, "");
            gm_params_init(&p);
            gm_params_add(&p, "RoleName", id);
            gm_params_add(&p, "PolicyName", pn ? pn : "");
            st = iam_call(e, "DeleteRolePolicy", &p, NULL, gone, err);
            gm_params_release(&p);
            free(pn);
            if (st != GM_OK)
                break;
        }
    }
    xmlFreeDoc(doc);
    if (st != GM_OK)
        return st;
    gm_params_init(&p);
    gm_params_add(&p, "RoleName", id);
    st = iam_call(e, "DeleteRole", &p, NULL, gone, err);
    gm_params_release(&p);
    return st;
}

static gm_status role_inspect(gm_engine *e, gm_node_run *n, const char *id, json_t *live,
                              gm_error *err)
{
    char *found = NULL;
    gm_status st = find_named(e, "GetRole", "RoleName", id, "Role", &found, err);
    json_object_set_new(live, "exists", json_boolean(found != NULL));
    if (st == GM_OK && !found)
        json_array_append_new(json_object_get(live, "drift"), json_string("missing"));
    free(found);
    return st;
}

const gm_node_ops gm_ops_role = {
    "iam_role",  "creating the instance role", true, role_create, role_find, role_destroy,
    role_inspect};

/* Least privilege: SSM agent core, mounting only this deployment's file
 * systems, reading only this deployment's parameters. */
static gm_status role_policy_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *role = gm_e_id(e, "role");
    if (!role)
        return gm_error_set(err, GM_ERR_INTERNAL, "no role for its policies");
    const char *region = gm_aws_client_region(e->aws);
    char *doc = gm_strfmt(
        "{\"Version\":\"2012-10-17\",\"Statement\":["
        "{\"Sid\":\"ReadOwnParameters\",\"Effect\":\"Allow\","
        "\"Action\":[\"ssm:GetParameter\",\"ssm:GetParameters\",\"ssm:GetParametersByPath\"],"
        "\"Resource\":\"arn:aws:ssm:%s:*:parameter/geusemaker/%s/*\"},"
        "{\"Sid\":\"DecryptOwnParameters\",\"Effect\":\"Allow\",\"Action\":\"kms:Decrypt\","
        "\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{\"kms:ViaService\":\"ssm.%s.amazonaws."
        "com\"}}},"
        "{\"Sid\":\"MountOwnFileSystem\",\"Effect\":\"Allow\","
        "\"Action\":[\"elasticfilesystem:ClientMount\",\"elasticfilesystem:ClientWrite\","
        "\"elasticfilesystem:DescribeMountTargets\"],"
        "\"Resource\":\"arn:aws:elasticfilesystem:%s:*:file-system/*\","
        "\"Condition\":{\"StringEquals\":{\"aws:ResourceTag/geusemaker:deployment\":\"%s\"}}}]}",
        region, e->dep->name, region, region, e->dep->name);
    /* The managed policies and the inline one at once. */
    enum { N_MANAGED = sizeof MANAGED_POLICIES / sizeof *MANAGED_POLICIES };
    gm_e_call calls[N_MANAGED + 1];
    memset(calls, 0, sizeof calls);
    for (int i = 0; i < N_MANAGED; i++) {
        calls[i].svc = &gm_svc_iam;
        calls[i].action = "AttachRolePolicy";
        gm_params_init(&calls[i].params);
        gm_params_add(&calls[i].params, "RoleName", role);
        gm_params_add(&calls[i].params, "PolicyArn", MANAGED_POLICIES[i]);
    }
    gm_e_call *put = &calls[N_MANAGED];
    put->svc = &gm_svc_iam;
    put->action = "PutRolePolicy";
    gm_params_init(&put->params);
    gm_params_add(&put->params, "RoleName", role);
    gm_params_add(&put->params, "PolicyName", "geusemaker-stack");
    gm_params_add(&put->params, "PolicyDocument", doc ? doc : "");
    gm_status st = gm_e_parallel(e, calls, N_MANAGED + 1, err);
    free(doc);
    if (st == GM_OK)
        st = gm_e_journal_id(e, n, role, err);
    free(role);
    return st;
}

const gm_node_ops gm_ops_role_policy = {
    "role_policy", "granting the role its permissions", false, role_policy_create, NULL, NULL,
    NULL};

/* ---- instance profile -------------------------------------------------------- */

static gm_status profile_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    char name[128];
    gm_e_resource_name(e, "profile", name, sizeof name);
    return find_named(e, "GetInstanceProfile", "InstanceProfileName", name, "InstanceProfile",
                      out_id, err);
}

static gm_status profile_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *id = NULL;
    char token[96];
    gm_status st = gm_n_adopt_or_intent(e, n, &gm_ops_profile, &id, token, sizeof token, err);
    if (st != GM_OK || id) {
        free(id);
        return st;
    }
    char name[128];
    gm_e_resource_name(e, "profile", name, sizeof name);
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InstanceProfileName", name);
    gm_params_add(&p, "Path", "/geusemaker/");
    gm_e_member_tags(e, &p, n->def->name);
    gm_error cerr = {0};
    st = iam_call(e, "CreateInstanceProfile", &p, NULL, NULL, &cerr);
    gm_params_release(&p);
    if (st != GM_OK && strcmp(cerr.aws_code, "EntityAlreadyExists") == 0) {
        st = profile_find(e, n, &id, err);
        free(id);
    } else if (st != GM_OK) {
        *err = cerr;
    }
    if (st == GM_OK)
        st = gm_e_journal_id(e, n, name, err);
    return st;
}

static gm_status profile_remove_roles(gm_engine *e, const char *profile, gm_error *err)
{
    static const char *const gone[] = {"NoSuchEntity", NULL};
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InstanceProfileName", profile);
    xmlDocPtr doc = NULL;
    gm_status st = iam_call(e, "GetInstanceProfile", &p, &doc, gone, err);
    gm_params_release(&p);
    if (st != GM_OK || !doc)
        return st;
    GM_XML_FOREACH (m, gm_xml_find(xmlDocGetRootElement(doc), "Roles"), "member") {
        char *role = gm_xml_text(m, "RoleName");
        gm_params_init(&p);
        gm_params_add(&p, "InstanceProfileName", profile);
        gm_params_add(&p, "RoleName", role ? role : "");
        st = iam_call(e, "RemoveRoleFromInstanceProfile", &p, NULL, gone, err);
        gm_params_release(&p);
        free(role);
        if (st != GM_OK)
            break;
    }
    xmlFreeDoc(doc);
    return st;
}

static gm_status profile_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    static const char *const gone[] = {"NoSuchEntity", NULL};
    gm_status st = profile_remove_roles(e, id, err);
    if (st != GM_OK)
        return st;
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InstanceProfileName", id);
    st = iam_call(e, "DeleteInstanceProfile", &p, NULL, gone, err);
    gm_params_release(&p);
    return st;
}

static gm_status profile_inspect(gm_engine *e, gm_node_run *n, const char *id, json_t *live,
                                 gm_error *err)
{
    char *found = NULL;
    gm_status st = find_named(e, "GetInstanceProfile", "InstanceProfileName", id, "InstanceProfile",
                              &found, err);
    json_object_set_new(live, "exists", json_boolean(found != NULL));
    if (st == GM_OK && !found)
        json_array_append_new(json_object_get(live, "drift"), json_string("missing"));
    free(found);
    return st;
}

const gm_node_ops gm_ops_profile = {"instance_profile",
                                    "creating the instance profile",
                                    true,
                                    profile_create,
                                    profile_find,
                                    profile_destroy,
                                    profile_inspect};

static gm_status profile_role_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *role = gm_e_id(e, "role");
    char *profile = gm_e_id(e, "instance_profile");
    gm_status st = gm_e_journal_intent(e, n, NULL, 0, err);
    if (st == GM_OK) {
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "InstanceProfileName", profile ? profile : "");
        gm_params_add(&p, "RoleName", role ? role : "");
        /* A profile holds one role: LimitExceeded means ours is already in. */
        static const char *const ok[] = {"LimitExceeded", NULL};
        st = iam_call(e, "AddRoleToInstanceProfile", &p, NULL, ok, err);
        gm_params_release(&p);
    }
    if (st == GM_OK)
        st = gm_e_journal_id(e, n, profile ? profile : "", err);
    free(role);
    free(profile);
    return st;
}

static gm_status profile_role_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    return profile_find(e, n, out_id, err);
}

static gm_status profile_role_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    return profile_remove_roles(e, id, err);
}

const gm_node_ops gm_ops_profile_role = {"profile_role",
                                         "putting the role in the profile",
                                         true,
                                         profile_role_create,
                                         profile_role_find,
                                         profile_role_destroy,
                                         NULL};
