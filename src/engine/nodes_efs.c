/* EFS node kinds: the encrypted file system and one mount target per subnet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "core/str.h"
#include "engine/nodes.h"

#define EFS_API "/2015-02-01"

/* An EFS call in which the error gone_code (may be NULL) counts as success
 * with no answer (*out NULL): "not found" on a delete or a look. The REST
 * twin of gm_n_query's ok codes. body may be NULL. */
static GM_MUST_CHECK gm_status efs_call(gm_node *n, const char *action, const char *method,
                                        const char *path, json_t *body, json_t **out,
                                        const char *gone_code, gm_error *err)
{
    gm_error cerr = {0};
    gm_status st =
        gm_aws_rest_json(gm_node_aws(n), &gm_svc_efs, action, method, path, body, out, &cerr);
    if (st != GM_OK && gone_code && strcmp(cerr.aws_code, gone_code) == 0)
        return GM_OK;
    if (st != GM_OK)
        *err = cerr;
    return st;
}

/* DescribeFileSystems with query ("?FileSystemId=..." or "") as rows. */
static GM_MUST_CHECK gm_status describe_fs(gm_node *n, const char *query, gm_read_rows *rows,
                                           gm_error *err)
{
    char path[512];
    snprintf(path, sizeof path, EFS_API "/file-systems%s", query);
    json_t *out = NULL;
    gm_read_rows_init(rows);
    gm_status st =
        efs_call(n, "DescribeFileSystems", "GET", path, NULL, &out, "FileSystemNotFound", err);
    if (st == GM_OK)
        st = gm_efs_read_file_systems(out, rows, err);
    json_decref(out);
    return st;
}

static GM_MUST_CHECK gm_status efs_find(gm_node *n, gm_ids *out, gm_error *err)
{
    char token[96];
    gm_node_token(n, token, sizeof token);
    char query[256] = "";
    if (*token) {
        gm_buf q;
        gm_buf_init(&q, 200);
        gm_status est = gm_uri_encode(&q, token, strlen(token), false);
        snprintf(query, sizeof query, "?CreationToken=%s", gm_buf_cstr(&q));
        gm_buf_release(&q);
        if (est != GM_OK)
            return gm_error_set(err, est, "cannot encode the creation token");
    }
    gm_read_rows rows;
    gm_status st = describe_fs(n, query, &rows, err);
    const char *value;
    bool by_id = strcmp(gm_n_owner_tag(n, &value), GM_TAG_DEPLOYMENT_ID) == 0;
    int owner_field = by_id ? GM_EFS_FS_TAG_DEPLOYMENT_ID : GM_EFS_FS_TAG_DEPLOYMENT;
    for (size_t i = 0; st == GM_OK && i < rows.n; i++) {
        bool ours = strcmp(gm_read_get(&rows, i, owner_field), value) == 0 &&
                    strcmp(gm_read_get(&rows, i, GM_EFS_FS_TAG_NODE), gm_node_name(n)) == 0;
        if (ours)
            st = gm_ids_add(out, gm_read_get(&rows, i, GM_EFS_FS_ID), err);
    }
    gm_read_rows_release(&rows);
    return st;
}

static GM_MUST_CHECK gm_status wait_fs_available(gm_node *n, const char *id, gm_error *err)
{
    char query[128];
    snprintf(query, sizeof query, "?FileSystemId=%s", id);
    for (;;) {
        gm_read_rows rows;
        gm_status st = describe_fs(n, query, &rows, err);
        if (st != GM_OK)
            return st;
        char state[32];
        snprintf(state, sizeof state, "%s",
                 rows.n ? gm_read_get(&rows, 0, GM_EFS_FS_STATE) : "missing");
        gm_read_rows_release(&rows);
        if (strcmp(state, "available") == 0)
            return GM_OK;
        if (!*state || strcmp(state, "error") == 0 || strcmp(state, "deleted") == 0 ||
            strcmp(state, "deleting") == 0 || strcmp(state, "missing") == 0)
            return gm_error_set(err, GM_ERR_AWS, "file system '%s' is %s", id,
                                *state ? state : "missing");
        st = gm_node_wait(n, gm_node_poll_ms(n), "waiting for the file system to become available",
                          err);
        if (st != GM_OK)
            return st;
    }
}

/* CreateFileSystem with the node's token; a repeat of the same token (an
 * earlier try of ours) answers FileSystemAlreadyExists and is adopted. */
static GM_MUST_CHECK gm_status create_fs(gm_node *n, const char *token, char **out_id,
                                         gm_error *err)
{
    json_t *tags = gm_n_json_tags(n);
    json_t *body = tags ? json_pack("{s:s, s:b, s:s, s:s, s:o}", "CreationToken", token,
                                    "Encrypted", 1, "PerformanceMode", "generalPurpose",
                                    "ThroughputMode", "bursting", "Tags", tags)
                        : NULL;
    if (!body)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    json_t *out = NULL;
    gm_error cerr = {0};
    gm_status st = gm_aws_rest_json(gm_node_aws(n), &gm_svc_efs, "CreateFileSystem", "POST",
                                    EFS_API "/file-systems", body, &out, &cerr);
    json_decref(body);
    if (st != GM_OK && strcmp(cerr.aws_code, "FileSystemAlreadyExists") == 0) {
        st = gm_n_adopt(n, out_id, err); /* the same token: ours from an earlier try */
    } else if (st != GM_OK) {
        *err = cerr;
    } else {
        gm_read_rows rows;
        st = gm_efs_read_created_fs(out, &rows, err);
        if (st == GM_OK) {
            *out_id = gm_read_dup(&rows, 0, 0);
            st = gm_node_set_output(n, "state", gm_read_get(&rows, 0, 1), err);
        }
        gm_read_rows_release(&rows);
    }
    json_decref(out);
    if (st == GM_OK && !*out_id)
        st = gm_error_set(err, GM_ERR_PARSE, "CreateFileSystem returned no FileSystemId");
    return st;
}

static GM_MUST_CHECK gm_status efs_create(gm_node *n, gm_error *err)
{
    char *id = NULL;
    char token[96];
    gm_status st = gm_n_adopt_or_intent(n, &id, token, sizeof token, err);
    if (st == GM_OK && !id) {
        st = create_fs(n, token, &id, err);
        if (st == GM_OK)
            st = gm_node_created(n, id, err);
    }
    free(id);
    return st;
}

static GM_MUST_CHECK gm_status efs_destroy(gm_node *n, const char *id, gm_error *err)
{
    char path[256];
    snprintf(path, sizeof path, EFS_API "/file-systems/%s", id);
    return efs_call(n, "DeleteFileSystem", "DELETE", path, NULL, NULL, "FileSystemNotFound", err);
}

static GM_MUST_CHECK gm_status efs_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                         size_t why_size, gm_error *err)
{
    if (strncmp(id, "fs-", 3) != 0 || strspn(id + 3, "0123456789abcdef") != strlen(id + 3))
        return gm_error_set(err, GM_ERR_CONFLICT,
                            "the record names a malformed file system id '%s'", id);
    char query[128];
    snprintf(query, sizeof query, "?FileSystemId=%s", id);
    gm_read_rows rows;
    gm_status st = describe_fs(n, query, &rows, err);
    if (st == GM_OK && rows.n == 0) {
        *out = GM_OWNER_GONE;
    } else if (st == GM_OK) {
        gm_n_owner_of(n, gm_read_get(&rows, 0, GM_EFS_FS_TAG_DEPLOYMENT),
                      gm_read_get(&rows, 0, GM_EFS_FS_TAG_DEPLOYMENT_ID), out, why, why_size);
    }
    gm_read_rows_release(&rows);
    return st;
}

static GM_MUST_CHECK gm_status efs_inspect(gm_node *n, const char *id, json_t *live, gm_error *err)
{
    char query[128];
    snprintf(query, sizeof query, "?FileSystemId=%s", id);
    gm_read_rows rows;
    gm_status st = describe_fs(n, query, &rows, err);
    if (st != GM_OK)
        return st;
    json_object_set_new(live, "exists", json_boolean(rows.n > 0));
    if (rows.n) {
        json_object_set_new(live, "state", json_string(gm_read_get(&rows, 0, GM_EFS_FS_STATE)));
        if (strcmp(gm_read_get(&rows, 0, GM_EFS_FS_ENCRYPTED), "true") != 0)
            gm_n_drift(live, "not encrypted");
    } else {
        gm_n_drift(live, "missing");
    }
    gm_read_rows_release(&rows);
    return GM_OK;
}

const gm_node_ops gm_ops_efs = {
    .kind = "efs",
    .label = "creating the encrypted file system",
    .delete_label = "deleting the file system and its data",
    .owns_resource = true,
    .listed_by_tags = true,
    .create = efs_create,
    .find = efs_find,
    .destroy = efs_destroy,
    .owner = efs_owner,
    .inspect = efs_inspect,
};

/* ---- the file system's policy ---------------------------------------------- */

char *gm_n_efs_policy(const char *region, const char *fs, const char *role_arn)
{
    char part[32], account[16];
    int end = 0;
    if (!region || !fs || !role_arn || strpbrk(role_arn, "\"\\") || strpbrk(region, "\"\\") ||
        strncmp(fs, "fs-", 3) != 0 || strspn(fs + 3, "0123456789abcdef") != strlen(fs + 3) ||
        sscanf(role_arn, "arn:%31[a-z-]:iam::%15[0-9]:role/%n", part, account, &end) != 2 ||
        end == 0 || !role_arn[end] || strlen(account) != 12)
        return NULL;
    char *fs_arn =
        gm_strfmt("arn:%s:elasticfilesystem:%s:%s:file-system/%s", part, region, account, fs);
    char *doc =
        fs_arn ? gm_strfmt("{\"Version\":\"2012-10-17\",\"Statement\":["
                           "{\"Sid\":\"DenyWithoutTls\",\"Effect\":\"Deny\","
                           "\"Principal\":{\"AWS\":\"*\"},\"Action\":\"*\",\"Resource\":\"%s\","
                           "\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"false\"}}},"
                           "{\"Sid\":\"MountOnlyFromTheStackRole\",\"Effect\":\"Allow\","
                           "\"Principal\":{\"AWS\":\"%s\"},"
                           "\"Action\":[\"elasticfilesystem:ClientMount\","
                           "\"elasticfilesystem:ClientWrite\","
                           "\"elasticfilesystem:ClientRootAccess\"],\"Resource\":\"%s\","
                           "\"Condition\":{\"Bool\":"
                           "{\"elasticfilesystem:AccessedViaMountTarget\":\"true\"}}}]}",
                           fs_arn, role_arn, fs_arn)
               : NULL;
    free(fs_arn);
    return doc;
}

/* The instance role's ARN (GetRole): the principal of the file system's
 * policy. A role IAM does not show yet (NoSuchEntity) is waited for. */
static GM_MUST_CHECK gm_status role_arn(gm_node *n, char **out, gm_error *err)
{
    char *role = gm_node_id_of(n, "role");
    if (!role)
        return gm_error_set(err, GM_ERR_INTERNAL, "no instance role for the file system policy");
    gm_status st = GM_OK;
    for (int attempt = 1;; attempt++) {
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "RoleName", role);
        xmlDocPtr doc = NULL;
        gm_error cerr = {0};
        st = gm_n_query(n, &gm_svc_iam, "GetRole", &p, &doc, NULL, &cerr);
        gm_params_release(&p);
        if (st != GM_OK)
            *err = cerr;
        gm_read_rows rows;
        if (st == GM_OK && (st = gm_read_xml(doc, &gm_iam_role_arn, &rows, err)) == GM_OK) {
            *out = gm_read_dup(&rows, 0, 0);
            gm_read_rows_release(&rows);
            if (!*out)
                st = gm_error_set(err, GM_ERR_PARSE, "GetRole of '%s' returned no Arn", role);
        }
        xmlFreeDoc(doc);
        if (st == GM_OK || strcmp(cerr.aws_code, "NoSuchEntity") != 0 || attempt == 5)
            break;
        st = gm_node_wait(n, 1000LL * attempt, "waiting for IAM to show the instance role", err);
        if (st != GM_OK)
            break;
    }
    free(role);
    return st;
}

/* EFS checks a policy's principals against IAM, which is eventually
 * consistent: a role made seconds ago is refused as an invalid principal. */
static bool principal_not_ready(const gm_error *e)
{
    return strcmp(e->aws_code, "InvalidPolicyException") == 0 && strstr(e->message, "rincipal");
}

/* PutFileSystemPolicy (idempotent: it replaces the policy), retried while
 * EFS does not see the role yet. */
static GM_MUST_CHECK gm_status put_policy(gm_node *n, const char *fs, const char *doc,
                                          gm_error *err)
{
    char path[256];
    snprintf(path, sizeof path, EFS_API "/file-systems/%s/policy", fs);
    int64_t backoff = 1000;
    for (;;) {
        json_t *body = json_pack("{s:s}", "Policy", doc);
        json_t *out = NULL;
        gm_error cerr = {0};
        gm_status st = body ? gm_aws_rest_json(gm_node_aws(n), &gm_svc_efs, "PutFileSystemPolicy",
                                               "PUT", path, body, &out, &cerr)
                            : gm_error_set(&cerr, GM_ERR_NOMEM, "out of memory");
        json_decref(body);
        json_decref(out);
        if (st == GM_OK)
            return GM_OK;
        if (!principal_not_ready(&cerr)) {
            *err = cerr;
            return st;
        }
        gm_node_note(n, "EFS does not see the new instance role yet; retrying in %lldms",
                     (long long)backoff);
        st = gm_node_wait(n, backoff, "waiting for the instance role to reach EFS", err);
        if (st != GM_OK)
            return st;
        if (backoff < 8000)
            backoff *= 2;
    }
}

/* A reused file system that geusemaker did not make (no deployment tag) is
 * its owner's: its policy is left alone. One that geusemaker made (kept by
 * destroy --keep-efs) gets this deployment's policy, for the old one names a
 * role that is gone. */
static GM_MUST_CHECK gm_status leave_policy_alone(gm_node *n, const char *fs, bool *out,
                                                  gm_error *err)
{
    *out = false;
    if (gm_node_provenance_of(n, "efs") != GM_PROV_REUSED)
        return GM_OK;
    char query[128];
    snprintf(query, sizeof query, "?FileSystemId=%s", fs);
    gm_read_rows rows;
    gm_status st = describe_fs(n, query, &rows, err);
    *out = st == GM_OK && !*gm_read_get(&rows, 0, GM_EFS_FS_TAG_DEPLOYMENT);
    gm_read_rows_release(&rows);
    return st;
}

/* Once the file system is available and the role exists: TLS only, and only
 * the deployment's role may mount. Journalled; nothing to delete (the policy
 * goes with its file system). */
static GM_MUST_CHECK gm_status efs_policy_create(gm_node *n, gm_error *err)
{
    char *fs = gm_node_id_of(n, "efs");
    if (!fs)
        return gm_error_set(err, GM_ERR_INTERNAL, "no file system id");
    bool leave = false;
    gm_status st = leave_policy_alone(n, fs, &leave, err);
    if (st == GM_OK && leave)
        gm_node_note(n, "file system %s was not made by geusemaker: its policy is left as it is",
                     fs);
    if (st == GM_OK && !leave) {
        st = gm_node_intent(n, NULL, 0, err);
        char *state = gm_node_output_of(n, "efs", "state");
        if (st == GM_OK && !gm_str_eq(state, "available"))
            st = wait_fs_available(n, fs, err);
        free(state);
        char *arn = NULL;
        if (st == GM_OK)
            st = role_arn(n, &arn, err);
        char *doc =
            st == GM_OK ? gm_n_efs_policy(gm_aws_client_region(gm_node_aws(n)), fs, arn) : NULL;
        if (st == GM_OK && !doc)
            st = gm_error_set(err, GM_ERR_PARSE, "cannot make a file system policy for role '%s'",
                              arn);
        if (st == GM_OK)
            st = put_policy(n, fs, doc, err);
        if (st == GM_OK)
            st = gm_node_set_output(n, "principal", arn, err);
        free(doc);
        free(arn);
    }
    if (st == GM_OK)
        st =
            gm_node_set_output(n, "policy", leave ? "left to its owner" : "tls and role only", err);
    if (st == GM_OK)
        st = gm_node_created(n, fs, err);
    free(fs);
    return st;
}

const gm_node_ops gm_ops_efs_policy = {
    .kind = "efs_policy",
    .label = "restricting the file system to TLS and the instance role",
    .create = efs_policy_create,
};

/* ---- mount targets --------------------------------------------------------- */

static const char *subnet_node(const gm_node *n)
{
    return gm_node_slot(n) ? "subnet_b" : "subnet_a";
}

static GM_MUST_CHECK gm_status describe_mts(gm_node *n, const char *query, gm_read_rows *rows,
                                            gm_error *err)
{
    char path[256];
    snprintf(path, sizeof path, EFS_API "/mount-targets?%s", query);
    json_t *out = NULL;
    gm_read_rows_init(rows);
    gm_status st = efs_call(n, "DescribeMountTargets", "GET", path, NULL, &out,
                            strncmp(query, "FileSystemId", 12) == 0 ? "FileSystemNotFound"
                                                                    : "MountTargetNotFound",
                            err);
    if (st == GM_OK && out) /* no answer: the file system or mount target is gone */
        st = gm_efs_read_mount_targets(out, rows, err);
    json_decref(out);
    return st;
}

static GM_MUST_CHECK gm_status mt_find(gm_node *n, gm_ids *out, gm_error *err)
{
    char *fs = gm_node_id_of(n, "efs");
    char *subnet = gm_node_id_of(n, subnet_node(n));
    gm_status st = GM_OK;
    if (fs && subnet) {
        char query[128];
        snprintf(query, sizeof query, "FileSystemId=%s", fs);
        gm_read_rows rows;
        st = describe_mts(n, query, &rows, err);
        for (size_t i = 0; st == GM_OK && i < rows.n; i++)
            if (strcmp(gm_read_get(&rows, i, GM_EFS_MT_SUBNET), subnet) == 0)
                st = gm_ids_add(out, gm_read_get(&rows, i, GM_EFS_MT_ID), err);
        gm_read_rows_release(&rows);
    }
    free(fs);
    free(subnet);
    return st;
}

/* CreateMountTarget has no token: sent once (gm_n_create_once). */
static GM_MUST_CHECK gm_status send_mt(gm_node *n, void *ctx, char **out_id, gm_error *err)
{
    const char *fs = ctx;
    char *subnet = gm_node_id_of(n, subnet_node(n));
    char *sg = gm_node_id_of(n, "sg");
    json_t *body = json_pack("{s:s, s:s?, s:[s?]}", "FileSystemId", fs, "SubnetId", subnet,
                             "SecurityGroups", sg);
    json_t *out = NULL;
    gm_status st = body ? gm_aws_rest_json_once(gm_node_aws(n), &gm_svc_efs, "CreateMountTarget",
                                                "POST", EFS_API "/mount-targets", body, &out, err)
                        : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    json_decref(body);
    gm_read_rows rows;
    if (st == GM_OK)
        st = gm_efs_read_mount_targets(out, &rows, err);
    json_decref(out);
    if (st == GM_OK) {
        *out_id = gm_read_dup(&rows, 0, GM_EFS_MT_ID);
        if (!*out_id)
            st = gm_error_set(err, GM_ERR_PARSE, "CreateMountTarget returned no MountTargetId");
        gm_read_rows_release(&rows);
    }
    free(subnet);
    free(sg);
    return st;
}

/* A second CreateMountTarget in the same zone answers with a conflict. */
static const char *const MT_TAKEN[] = {"MountTargetConflict", NULL};

static GM_MUST_CHECK gm_status mt_request(gm_node *n, const char *fs, gm_error *err)
{
    char *id = NULL;
    gm_status st = gm_n_create_once(n, send_mt, (void *)fs, MT_TAKEN, &id, err);
    if (st == GM_OK)
        st = gm_node_created(n, id, err);
    free(id);
    return st;
}

static GM_MUST_CHECK gm_status mt_create(gm_node *n, gm_error *err)
{
    /* Look for an existing one only when it can exist: a reused file system,
     * or an earlier run that journalled this node. */
    bool reused_fs = gm_node_provenance_of(n, "efs") == GM_PROV_REUSED;
    char *id = NULL;
    gm_status st = GM_OK;
    if (reused_fs) {
        /* A mount target of a reused file system is the owner's: used, never
         * deleted (a zone holds one mount target of a file system at most). */
        gm_ids ids;
        st = gm_node_find(n, &ids, err);
        if (st == GM_OK && ids.n)
            st = gm_node_reused(n, ids.v[0], err);
        bool found = ids.n > 0;
        gm_ids_release(&ids);
        if (st != GM_OK || found)
            return st;
    } else if (gm_node_journalled(n)) {
        st = gm_n_adopt(n, &id, err);
        if (st == GM_OK && id)
            st = gm_node_created(n, id, err);
        bool found = id != NULL;
        free(id);
        if (st != GM_OK || found)
            return st;
    }
    /* Mount targets can be created only once the file system is available;
     * the instance needs only its id, so the wait happens here. */
    char *fs = gm_node_id_of(n, "efs");
    char *state = gm_node_output_of(n, "efs", "state");
    if (!fs)
        st = gm_error_set(err, GM_ERR_INTERNAL, "no file system id");
    else if (!gm_str_eq(state, "available"))
        st = wait_fs_available(n, fs, err);
    free(state);
    if (st == GM_OK)
        st = gm_node_intent(n, NULL, 0, err);
    if (st == GM_OK)
        st = mt_request(n, fs, err);
    free(fs);
    return st;
}

static GM_MUST_CHECK gm_status mt_destroy(gm_node *n, const char *id, gm_error *err)
{
    char path[256];
    snprintf(path, sizeof path, EFS_API "/mount-targets/%s", id);
    gm_status st =
        efs_call(n, "DeleteMountTarget", "DELETE", path, NULL, NULL, "MountTargetNotFound", err);
    /* Deleting takes a while; the file system cannot go before it is gone. */
    char query[128];
    snprintf(query, sizeof query, "MountTargetId=%s", id);
    while (st == GM_OK) {
        gm_read_rows rows;
        st = describe_mts(n, query, &rows, err);
        size_t left = rows.n;
        gm_read_rows_release(&rows);
        if (st != GM_OK || left == 0)
            break;
        st = gm_node_wait(n, gm_node_poll_ms(n), "waiting for a mount target to be deleted", err);
    }
    return st;
}

/* The file system's owner, on its own thread beside the mount target's look. */
typedef struct fs_look {
    gm_node *n;
    const char *fs;
    gm_owner who;
    char why[256];
    gm_status st;
    gm_error err;
} fs_look;

static void *look_fs(void *arg)
{
    fs_look *l = arg;
    l->who = GM_OWNER_OTHER;
    l->st = efs_owner(l->n, l->fs, &l->who, l->why, sizeof l->why, &l->err);
    return NULL;
}

/* A mount target is ours when its file system is: the mount target and the
 * recorded file system are read at once (one round trip). */
static GM_MUST_CHECK gm_status mt_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                        size_t why_size, gm_error *err)
{
    char *our_fs = gm_node_id_of(n, "efs");
    bool reused = gm_node_provenance_of(n, "efs") == GM_PROV_REUSED;
    fs_look fsl = {.n = n, .fs = our_fs};
    gm_n_beside beside = {0};
    if (our_fs && !reused)
        gm_n_beside_start(&beside, look_fs, &fsl);
    char query[128];
    snprintf(query, sizeof query, "MountTargetId=%s", id);
    gm_read_rows rows;
    gm_status st = describe_mts(n, query, &rows, err);
    gm_n_beside_join(&beside);
    char *fs = st == GM_OK ? gm_read_dup(&rows, 0, GM_EFS_MT_FS) : NULL;
    char *our_subnet = gm_node_id_of(n, subnet_node(n));
    bool mine = fs && our_fs && strcmp(fs, our_fs) == 0 && our_subnet &&
                strcmp(gm_read_get(&rows, 0, GM_EFS_MT_SUBNET), our_subnet) == 0;
    *out = GM_OWNER_OTHER;
    snprintf(why, why_size, "it is not in this deployment's file system and subnet");
    if (st == GM_OK && rows.n == 0) {
        *out = GM_OWNER_GONE;
    } else if (st == GM_OK && mine && reused) {
        *out = GM_OWNER_OURS; /* made by this deployment in a file system it was given */
    } else if (st == GM_OK && mine && (st = fsl.st) != GM_OK) {
        *err = fsl.err;
    } else if (st == GM_OK && mine) {
        *out = fsl.who; /* as its file system */
        snprintf(why, why_size, "%s", fsl.why);
    }
    free(fs);
    free(our_fs);
    free(our_subnet);
    gm_read_rows_release(&rows);
    return st;
}

static GM_MUST_CHECK gm_status mt_inspect(gm_node *n, const char *id, json_t *live, gm_error *err)
{
    char query[128];
    snprintf(query, sizeof query, "MountTargetId=%s", id);
    gm_read_rows rows;
    gm_status st = describe_mts(n, query, &rows, err);
    if (st != GM_OK)
        return st;
    json_object_set_new(live, "exists", json_boolean(rows.n > 0));
    if (rows.n)
        json_object_set_new(live, "state", json_string(gm_read_get(&rows, 0, GM_EFS_MT_STATE)));
    else
        gm_n_drift(live, "missing");
    gm_read_rows_release(&rows);
    return GM_OK;
}

const gm_node_ops gm_ops_mount_target = {
    .kind = "mount_target",
    .label = "creating an EFS mount target",
    .delete_label = "deleting an EFS mount target",
    .owns_resource = true,
    .create = mt_create,
    .find = mt_find,
    .destroy = mt_destroy,
    .owner = mt_owner,
    .inspect = mt_inspect,
};
