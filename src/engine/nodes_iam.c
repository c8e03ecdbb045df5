/* IAM node kinds: the instance role, its policies, the instance profile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/partition.h"
#include "aws/read.h"
#include "core/str.h"
#include "engine/nodes.h"

static const char ASSUME_ROLE_POLICY[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
    "\"Principal\":{\"Service\":\"ec2.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}";

/* The EC2 service principal is the same in every partition (IAM accepts
 * ec2.amazonaws.com in aws-cn too). */

static const char *const NO_SUCH_ENTITY[] = {"NoSuchEntity", NULL};

static GM_MUST_CHECK gm_status iam_call(gm_node *n, const char *action, const gm_params *p,
                                        xmlDocPtr *out, const char *const *ok_codes, gm_error *err)
{
    return gm_n_query(n, &gm_svc_iam, action, p, out, ok_codes, err);
}

/* One IAM call with a single name=value parameter. */
static GM_MUST_CHECK gm_status iam_call1(gm_node *n, const char *action, const char *param,
                                         const char *value, xmlDocPtr *out,
                                         const char *const *ok_codes, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, param, value);
    gm_status st = iam_call(n, action, &p, out, ok_codes, err);
    gm_params_release(&p);
    return st;
}

/* The rows of one IAM look-up (none when the entity does not exist). */
static GM_MUST_CHECK gm_status iam_read(gm_node *n, const char *action, const char *param,
                                        const char *value, const gm_read_spec *spec,
                                        bool *out_exists, gm_read_rows *rows, gm_error *err)
{
    xmlDocPtr doc = NULL;
    gm_read_rows_init(rows);
    gm_status st = iam_call1(n, action, param, value, &doc, NO_SUCH_ENTITY, err);
    if (out_exists)
        *out_exists = doc != NULL;
    if (st == GM_OK && doc)
        st = gm_read_xml(doc, spec, rows, err);
    xmlFreeDoc(doc);
    return st;
}

/* Finds a role or profile by its deterministic name; one that exists without
 * this deployment's tag is not ours and is a conflict. */
static GM_MUST_CHECK gm_status find_named(gm_node *n, bool role, const char *name, char **out_id,
                                          gm_error *err)
{
    *out_id = NULL;
    bool exists = false;
    gm_read_rows tags;
    gm_status st = iam_read(n, role ? "GetRole" : "GetInstanceProfile",
                            role ? "RoleName" : "InstanceProfileName", name,
                            role ? &gm_iam_role_tags : &gm_iam_profile_tags, &exists, &tags, err);
    bool ours = false;
    const char *value;
    const char *key = gm_n_owner_tag(n, &value);
    for (size_t i = 0; i < tags.n; i++)
        if (strcmp(gm_read_get(&tags, i, GM_IAM_TAG_KEY), key) == 0 &&
            strcmp(gm_read_get(&tags, i, GM_IAM_TAG_VALUE), value) == 0)
            ours = true;
    gm_read_rows_release(&tags);
    if (st != GM_OK || !exists)
        return st;
    if (!ours)
        return gm_error_set(err, GM_ERR_CONFLICT,
                            "iam %s '%s' exists but is not tagged as part of deployment '%s'; "
                            "it was not deleted or changed",
                            role ? "role" : "instance profile", name, gm_node_deployment(n));
    *out_id = strdup(name);
    return *out_id ? GM_OK : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
}

/* Creates a role or profile by name; an existing one is adopted when it is
 * ours (tagged), else a conflict. */
static GM_MUST_CHECK gm_status create_named(gm_node *n, bool role, const gm_params *p,
                                            const char *name, gm_error *err)
{
    gm_error cerr = {0};
    gm_status st = iam_call(n, role ? "CreateRole" : "CreateInstanceProfile", p, NULL, NULL, &cerr);
    if (st != GM_OK && strcmp(cerr.aws_code, "EntityAlreadyExists") == 0) {
        /* Left by an earlier run of this deployment (tagged), or a conflict. */
        char *id = NULL;
        st = find_named(n, role, name, &id, err);
        free(id);
    } else if (st != GM_OK) {
        *err = cerr;
    }
    if (st == GM_OK)
        st = gm_node_created(n, name, err);
    return st;
}

/* ---- role ------------------------------------------------------------------- */

/* The role or profile of this deployment, by its name, into out. */
static GM_MUST_CHECK gm_status named_find(gm_node *n, bool role, gm_ids *out, gm_error *err)
{
    char name[128];
    gm_node_global_name(n, role ? "role" : "profile", name, sizeof name);
    char *id = NULL;
    gm_status st = find_named(n, role, name, &id, err);
    if (st == GM_OK && id)
        st = gm_ids_add(out, id, err);
    free(id);
    return st;
}

static GM_MUST_CHECK gm_status role_find(gm_node *n, gm_ids *out, gm_error *err)
{
    return named_find(n, true, out, err);
}

/* The role or the profile: adopted from an earlier run, or created under
 * its deterministic name with the standard tags. */
static GM_MUST_CHECK gm_status named_create(gm_node *n, bool role, gm_error *err)
{
    char *id = NULL;
    gm_status st = gm_n_adopt_or_intent(n, &id, NULL, 0, err);
    if (st != GM_OK || id) {
        free(id);
        return st;
    }
    char name[128];
    gm_node_global_name(n, role ? "role" : "profile", name, sizeof name);
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, role ? "RoleName" : "InstanceProfileName", name);
    gm_params_add(&p, "Path", "/geusemaker/");
    if (role) {
        gm_params_add(&p, "AssumeRolePolicyDocument", ASSUME_ROLE_POLICY);
        gm_params_add(&p, "Description", "GeuseMaker AI stack instance role");
    }
    gm_n_member_tags(n, &p, true);
    st = create_named(n, role, &p, name, err);
    gm_params_release(&p);
    return st;
}

static GM_MUST_CHECK gm_status role_create(gm_node *n, gm_error *err)
{
    return named_create(n, true, err);
}

/* One of the role's two lists, on its own thread. */
typedef struct role_list {
    gm_node *n;
    const char *role;
    bool attached; /* ListAttachedRolePolicies, else ListRolePolicies */
    gm_read_rows rows;
    gm_status st;
    gm_error err;
} role_list;

static void *read_role_list(void *arg)
{
    role_list *l = arg;
    l->st = l->attached ? iam_read(l->n, "ListAttachedRolePolicies", "RoleName", l->role,
                                   &gm_iam_attached_policies, NULL, &l->rows, &l->err)
                        : iam_read(l->n, "ListRolePolicies", "RoleName", l->role,
                                   &gm_iam_policy_names, NULL, &l->rows, &l->err);
    return NULL;
}

/* Both lists at once, then every detach and delete at once, then the role:
 * three round trips. */
static GM_MUST_CHECK gm_status role_destroy(gm_node *n, const char *id, gm_error *err)
{
    role_list lists[2] = {{.n = n, .role = id, .attached = true}, {.n = n, .role = id}};
    gm_n_beside beside;
    gm_n_beside_start(&beside, read_role_list, &lists[0]);
    read_role_list(&lists[1]);
    gm_n_beside_join(&beside);
    gm_status st = GM_OK;
    for (int i = 0; i < 2 && st == GM_OK; i++)
        if ((st = lists[i].st) != GM_OK)
            *err = lists[i].err;
    size_t total = st == GM_OK ? lists[0].rows.n + lists[1].rows.n : 0;
    gm_n_call *calls = total ? calloc(total, sizeof *calls) : NULL;
    if (total && !calls)
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    for (size_t k = 0; st == GM_OK && calls && k < total; k++) {
        bool attached = k < lists[0].rows.n;
        const gm_read_rows *rows = attached ? &lists[0].rows : &lists[1].rows;
        size_t row = attached ? k : k - lists[0].rows.n;
        calls[k].svc = &gm_svc_iam;
        calls[k].action = attached ? "DetachRolePolicy" : "DeleteRolePolicy";
        calls[k].ok_codes = NO_SUCH_ENTITY;
        gm_params_init(&calls[k].params);
        gm_params_add(&calls[k].params, "RoleName", id);
        gm_params_add(&calls[k].params, attached ? "PolicyArn" : "PolicyName",
                      gm_read_get(rows, row, 0));
    }
    if (st == GM_OK && total)
        st = gm_n_parallel(n, calls, (int)total, err);
    free(calls);
    for (int i = 0; i < 2; i++)
        if (lists[i].st == GM_OK)
            gm_read_rows_release(&lists[i].rows);
    if (st == GM_OK)
        st = iam_call1(n, "DeleteRole", "RoleName", id, NULL, NO_SUCH_ENTITY, err);
    return st;
}

/* Whose the role or profile of that name is, from its tags. */
static GM_MUST_CHECK gm_status named_owner(gm_node *n, bool role, const char *id, gm_owner *out,
                                           char *why, size_t why_size, gm_error *err)
{
    bool exists = false;
    gm_read_rows tags;
    gm_status st = iam_read(n, role ? "GetRole" : "GetInstanceProfile",
                            role ? "RoleName" : "InstanceProfileName", id,
                            role ? &gm_iam_role_tags : &gm_iam_profile_tags, &exists, &tags, err);
    if (st == GM_OK && !exists)
        *out = GM_OWNER_GONE;
    else if (st == GM_OK)
        gm_n_owner_from_tags(n, &tags, out, why, why_size);
    gm_read_rows_release(&tags);
    return st;
}

static GM_MUST_CHECK gm_status role_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                          size_t why_size, gm_error *err)
{
    return named_owner(n, true, id, out, why, why_size, err);
}

static GM_MUST_CHECK gm_status profile_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                             size_t why_size, gm_error *err)
{
    return named_owner(n, false, id, out, why, why_size, err);
}

static GM_MUST_CHECK gm_status named_inspect(gm_node *n, bool role, const char *id, json_t *live,
                                             gm_error *err)
{
    char *found = NULL;
    gm_status st = find_named(n, role, id, &found, err);
    json_object_set_new(live, "exists", json_boolean(found != NULL));
    if (st == GM_OK && !found)
        gm_n_drift(live, "missing");
    free(found);
    return st;
}

static GM_MUST_CHECK gm_status role_inspect(gm_node *n, const char *id, json_t *live, gm_error *err)
{
    return named_inspect(n, true, id, live, err);
}

const gm_node_ops gm_ops_role = {
    .kind = "iam_role",
    .label = "creating the instance role",
    .delete_label = "deleting the instance role",
    .owns_resource = true,
    .swept_by_find = true,
    .create = role_create,
    .find = role_find,
    .destroy = role_destroy,
    .owner = role_owner,
    .inspect = role_inspect,
};

char *gm_n_iam_ssm_core_policy_arn(const char *region)
{
    const gm_partition *p = gm_partition_of(region);
    return p ? gm_strfmt("arn:%s:iam::aws:policy/AmazonSSMManagedInstanceCore", p->id) : NULL;
}

/* The statement that lets the role mount the file system fs (NULL: the
 * deployment's file systems, by their tag). Root access: the boot script
 * creates and hands over the stack's directories as root. */
static char *mount_statement(const gm_partition *p, const char *region, const char *name,
                             const char *fs)
{
    const char *actions =
        "\"Action\":[\"elasticfilesystem:ClientMount\",\"elasticfilesystem:ClientWrite\","
        "\"elasticfilesystem:ClientRootAccess\",\"elasticfilesystem:DescribeMountTargets\"]";
    if (fs)
        return gm_strfmt("{\"Sid\":\"MountOwnFileSystem\",\"Effect\":\"Allow\",%s,"
                         "\"Resource\":\"arn:%s:elasticfilesystem:%s:*:file-system/%s\"}",
                         actions, p->id, region, fs);
    return gm_strfmt(
        "{\"Sid\":\"MountOwnFileSystem\",\"Effect\":\"Allow\",%s,"
        "\"Resource\":\"arn:%s:elasticfilesystem:%s:*:file-system/*\","
        "\"Condition\":{\"StringEquals\":{\"aws:ResourceTag/geusemaker:deployment\":\"%s\"}}}",
        actions, p->id, region, name);
}

/* The statement that lets an instance associate the deployment's Elastic IP
 * with itself: that address only, and only with an instance (and its network
 * interface) that carries the deployment's owner tag (the address carries it
 * too). */
static char *address_statement(const gm_partition *p, const char *region,
                               const gm_n_address_grant *g)
{
    return gm_strfmt("{\"Sid\":\"AssociateOwnAddress\",\"Effect\":\"Allow\","
                     "\"Action\":\"ec2:AssociateAddress\",\"Resource\":["
                     "\"arn:%s:ec2:%s:*:elastic-ip/%s\",\"arn:%s:ec2:%s:*:instance/*\","
                     "\"arn:%s:ec2:%s:*:network-interface/*\"],"
                     "\"Condition\":{\"StringEquals\":{\"aws:ResourceTag/%s\":\"%s\"}}}",
                     p->id, region, g->allocation_id, p->id, region, p->id, region, g->tag_key,
                     g->tag_value);
}

char *gm_n_iam_stack_policy_full(const char *region, const char *name, const char *fs,
                                 const gm_n_address_grant *address)
{
    const gm_partition *p = gm_partition_of(region);
    if (!p || !name)
        return NULL;
    char *mount = mount_statement(p, region, name, fs);
    char *assoc = address ? address_statement(p, region, address) : strdup("");
    char *doc =
        mount && assoc
            ? gm_strfmt("{\"Version\":\"2012-10-17\",\"Statement\":["
                        "{\"Sid\":\"ReadOwnParameters\",\"Effect\":\"Allow\","
                        "\"Action\":[\"ssm:GetParameter\",\"ssm:GetParameters\","
                        "\"ssm:GetParametersByPath\"],"
                        "\"Resource\":\"arn:%s:ssm:%s:*:parameter/geusemaker/%s/*\"},"
                        "{\"Sid\":\"DecryptOwnParameters\",\"Effect\":\"Allow\","
                        "\"Action\":\"kms:Decrypt\",\"Resource\":\"*\",\"Condition\":"
                        "{\"StringEquals\":{\"kms:ViaService\":\"ssm.%s.%s\"}}},%s%s%s]}",
                        p->id, region, name, region, p->dns_suffix, mount, *assoc ? "," : "", assoc)
            : NULL;
    free(mount);
    free(assoc);
    return doc;
}

/* Least privilege: SSM agent core, mounting only this deployment's file
 * system, reading only this deployment's parameters. */
char *gm_n_iam_stack_policy_for(const char *region, const char *name, const char *fs)
{
    return gm_n_iam_stack_policy_full(region, name, fs, NULL);
}

char *gm_n_iam_stack_policy(const char *region, const char *name)
{
    return gm_n_iam_stack_policy_for(region, name, NULL);
}

/* The role's inline policy for this deployment: its file system, and its
 * Elastic IP when the tier has one. */
static char *stack_policy_of(gm_node *n, const char *region)
{
    char *fs = gm_node_id_of(n, "efs");
    char *eip = gm_node_id_of(n, "eip");
    gm_n_address_grant g = {.allocation_id = eip};
    g.tag_key = gm_n_owner_tag(n, &g.tag_value);
    char *doc = gm_n_iam_stack_policy_full(region, gm_node_deployment(n), fs, eip ? &g : NULL);
    free(fs);
    free(eip);
    return doc;
}

static GM_MUST_CHECK gm_status role_policy_create(gm_node *n, gm_error *err)
{
    const char *region = gm_aws_client_region(gm_node_aws(n));
    char *role = gm_node_id_of(n, "role");
    char *doc = stack_policy_of(n, region);
    char *managed = gm_n_iam_ssm_core_policy_arn(region);
    if (!role || !doc || !managed) {
        free(role);
        free(doc);
        free(managed);
        return gm_error_set(err, role ? GM_ERR_NOMEM : GM_ERR_INTERNAL,
                            role ? "out of memory" : "no role for its policies");
    }
    /* The managed policy and the inline one at once. */
    gm_n_call calls[2];
    memset(calls, 0, sizeof calls);
    calls[0].svc = &gm_svc_iam;
    calls[0].action = "AttachRolePolicy";
    gm_params_init(&calls[0].params);
    gm_params_add(&calls[0].params, "RoleName", role);
    gm_params_add(&calls[0].params, "PolicyArn", managed);
    gm_n_call *put = &calls[1];
    put->svc = &gm_svc_iam;
    put->action = "PutRolePolicy";
    gm_params_init(&put->params);
    gm_params_add(&put->params, "RoleName", role);
    gm_params_add(&put->params, "PolicyName", "geusemaker-stack");
    gm_params_add(&put->params, "PolicyDocument", doc);
    gm_status st = gm_n_parallel(n, calls, 2, err);
    free(doc);
    free(managed);
    if (st == GM_OK)
        st = gm_node_created(n, role, err);
    free(role);
    return st;
}

const gm_node_ops gm_ops_role_policy = {
    .kind = "role_policy",
    .label = "granting the role its permissions",
    .create = role_policy_create,
};

/* ---- instance profile -------------------------------------------------------- */

static GM_MUST_CHECK gm_status profile_find(gm_node *n, gm_ids *out, gm_error *err)
{
    return named_find(n, false, out, err);
}

static GM_MUST_CHECK gm_status profile_create(gm_node *n, gm_error *err)
{
    return named_create(n, false, err);
}

static GM_MUST_CHECK gm_status profile_remove_roles(gm_node *n, const char *profile, gm_error *err)
{
    gm_read_rows roles;
    gm_status st = iam_read(n, "GetInstanceProfile", "InstanceProfileName", profile,
                            &gm_iam_profile_roles, NULL, &roles, err);
    for (size_t i = 0; st == GM_OK && i < roles.n; i++) {
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "InstanceProfileName", profile);
        gm_params_add(&p, "RoleName", gm_read_get(&roles, i, 0));
        st = iam_call(n, "RemoveRoleFromInstanceProfile", &p, NULL, NO_SUCH_ENTITY, err);
        gm_params_release(&p);
    }
    gm_read_rows_release(&roles);
    return st;
}

static GM_MUST_CHECK gm_status profile_destroy(gm_node *n, const char *id, gm_error *err)
{
    gm_status st = profile_remove_roles(n, id, err);
    if (st == GM_OK)
        st = iam_call1(n, "DeleteInstanceProfile", "InstanceProfileName", id, NULL, NO_SUCH_ENTITY,
                       err);
    return st;
}

static GM_MUST_CHECK gm_status profile_inspect(gm_node *n, const char *id, json_t *live,
                                               gm_error *err)
{
    return named_inspect(n, false, id, live, err);
}

const gm_node_ops gm_ops_profile = {
    .kind = "instance_profile",
    .label = "creating the instance profile",
    .delete_label = "deleting the instance profile",
    .owns_resource = true,
    .swept_by_find = true,
    .create = profile_create,
    .find = profile_find,
    .destroy = profile_destroy,
    .owner = profile_owner,
    .inspect = profile_inspect,
};

static GM_MUST_CHECK gm_status profile_role_create(gm_node *n, gm_error *err)
{
    char *role = gm_node_id_of(n, "role");
    char *profile = gm_node_id_of(n, "instance_profile");
    gm_status st = gm_node_intent(n, NULL, 0, err);
    if (st == GM_OK) {
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "InstanceProfileName", profile);
        gm_params_add(&p, "RoleName", role);
        /* A profile holds one role: LimitExceeded means ours is already in. */
        static const char *const ok[] = {"LimitExceeded", NULL};
        st = iam_call(n, "AddRoleToInstanceProfile", &p, NULL, ok, err);
        gm_params_release(&p);
    }
    if (st == GM_OK)
        st = gm_node_created(n, profile ? profile : "", err);
    free(role);
    free(profile);
    return st;
}

static GM_MUST_CHECK gm_status profile_role_destroy(gm_node *n, const char *id, gm_error *err)
{
    return profile_remove_roles(n, id, err);
}

const gm_node_ops gm_ops_profile_role = {
    .kind = "profile_role",
    .label = "putting the role in the profile",
    .delete_label = "taking the role out of the profile",
    .owns_resource = true,
    .create = profile_role_create,
    .find = profile_find,
    .destroy = profile_role_destroy,
    .owner = profile_owner,
};
