/* EFS node kinds: the encrypted file system and one mount target per subnet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "engine/internal.h"
#include "engine/nodes.h"

#define EFS_API "/2015-02-01"

static json_t *standard_tags(gm_engine *e, const char *node)
{
    char name[160];
    snprintf(name, sizeof name, "%s-%s", e->dep->name, node);
    return json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "Key", "Name", "Value", name,
                     "Key", "geusemaker:deployment", "Value", e->dep->name, "Key",
                     "geusemaker:node", "Value", node, "Key", "ManagedBy", "Value", "geusemaker");
}

static bool has_tag(json_t *tags, const char *key, const char *value)
{
    size_t i;
    json_t *t;
    json_array_foreach (tags, i, t) {
        if (gm_str_eq(json_string_value(json_object_get(t, "Key")), key) &&
            gm_str_eq(json_string_value(json_object_get(t, "Value")), value))
            return true;
    }
    return false;
}

/* An EFS call in which the error gone_code (may be NULL) counts as success
 * with no answer (*out NULL): "not found" on a delete or a look. The REST
 * twin of gm_e_query's ok codes. */
static gm_status efs_call(gm_engine *e, const char *action, const char *method, const char *path,
                          json_t **out, const char *gone_code, gm_error *err)
{
    gm_error cerr = {0};
    gm_status st = gm_aws_rest_json(e->aws, &gm_svc_efs, action, method, path, NULL, out, &cerr);
    if (st != GM_OK && gone_code && strcmp(cerr.aws_code, gone_code) == 0)
        return GM_OK;
    if (st != GM_OK)
        *err = cerr;
    return st;
}

static gm_status describe_fs(gm_engine *e, const char *query, json_t **out, gm_error *err)
{
    char path[512];
    snprintf(path, sizeof path, EFS_API "/file-systems%s", query);
    return efs_call(e, "DescribeFileSystems", "GET", path, out, "FileSystemNotFound", err);
}

static gm_status efs_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    *out_id = NULL;
    gm_node_state *s = gm_deployment_node(e->dep, n->def->name);
    char query[256] = "";
    if (s && *s->token) {
        gm_buf q;
        gm_buf_init(&q, 200);
        gm_uri_encode(&q, s->token, strlen(s->token), false);
        snprintf(query, sizeof query, "?CreationToken=%s", gm_buf_cstr(&q));
        gm_buf_release(&q);
    }
    json_t *out = NULL;
    gm_status st = describe_fs(e, query, &out, err);
    if (st != GM_OK)
        return st;
    size_t i;
    json_t *fs;
    json_array_foreach (json_object_get(out, "FileSystems"), i, fs) {
        json_t *tags = json_object_get(fs, "Tags");
        if (*query || (has_tag(tags, "geusemaker:deployment", e->dep->name) &&
                       has_tag(tags, "geusemaker:node", n->def->name))) {
            const char *id = json_string_value(json_object_get(fs, "FileSystemId"));
            if (id) {
                *out_id = strdup(id);
                break;
            }
        }
    }
    json_decref(out);
    return GM_OK;
}

static gm_status wait_fs_available(gm_engine *e, const char *id, gm_error *err)
{
    char query[128];
    snprintf(query, sizeof query, "?FileSystemId=%s", id);
    for (;;) {
        json_t *out = NULL;
        gm_status st = describe_fs(e, query, &out, err);
        if (st != GM_OK)
            return st;
        json_t *fs = json_array_get(json_object_get(out, "FileSystems"), 0);
        const char *state = json_string_value(json_object_get(fs, "LifeCycleState"));
        bool ready = state && strcmp(state, "available") == 0;
        bool bad = !state || strcmp(state, "error") == 0 || strcmp(state, "deleted") == 0 ||
                   strcmp(state, "deleting") == 0;
        char st_copy[32];
        snprintf(st_copy, sizeof st_copy, "%s", state ? state : "missing");
        json_decref(out);
        if (ready)
            return GM_OK;
        if (bad)
            return gm_error_set(err, GM_ERR_AWS, "file system '%s' is %s", id, st_copy);
        st = gm_e_wait(e, e->poll_ms, "waiting for the file system to become available", err);
        if (st != GM_OK)
            return st;
    }
}

static gm_status efs_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *id = NULL;
    char token[96];
    gm_status st = gm_n_adopt_or_intent(e, n, &gm_ops_efs, &id, token, sizeof token, err);
    if (st == GM_OK && !id) {
        json_t *body = json_pack("{s:s, s:b, s:s, s:s, s:o}", "CreationToken", token, "Encrypted",
                                 1, "PerformanceMode", "generalPurpose", "ThroughputMode",
                                 "bursting", "Tags", standard_tags(e, n->def->name));
        json_t *out = NULL;
        gm_error cerr = {0};
        st = gm_aws_rest_json(e->aws, &gm_svc_efs, "CreateFileSystem", "POST",
                              EFS_API "/file-systems", body, &out, &cerr);
        json_decref(body);
        if (st != GM_OK && strcmp(cerr.aws_code, "FileSystemAlreadyExists") == 0)
            st = efs_find(e, n, &id, err); /* the same token: ours from an earlier try */
        else if (st != GM_OK)
            *err = cerr;
        else if (json_string_value(json_object_get(out, "FileSystemId"))) {
            id = strdup(json_string_value(json_object_get(out, "FileSystemId")));
            gm_e_set_output(e, n, "state",
                            json_string_value(json_object_get(out, "LifeCycleState")));
        }
        json_decref(out);
        if (st == GM_OK && !id)
            st = gm_error_set(err, GM_ERR_PARSE, "CreateFileSystem returned no FileSystemId");
        if (st == GM_OK)
            st = gm_e_journal_id(e, n, id, err);
    }
    free(id);
    return st;
}

static gm_status efs_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    char path[256];
    snprintf(path, sizeof path, EFS_API "/file-systems/%s", id);
    return efs_call(e, "DeleteFileSystem", "DELETE", path, NULL, "FileSystemNotFound", err);
}

static gm_status efs_inspect(gm_engine *e, gm_node_run *n, const char *id, json_t *live,
                             gm_error *err)
{
    char query[128];
    snprintf(query, sizeof query, "?FileSystemId=%s", id);
    json_t *out = NULL;
    gm_status st = describe_fs(e, query, &out, err);
    if (st != GM_OK)
        return st;
    json_t *fs = json_array_get(json_object_get(out, "FileSystems"), 0);
    json_object_set_new(live, "exists", json_boolean(fs != NULL));
    if (fs) {
        json_object_set(live, "state", json_object_get(fs, "LifeCycleState"));
        if (!json_is_true(json_object_get(fs, "Encrypted")))
            json_array_append_new(json_object_get(live, "drift"), json_string("not encrypted"));
    } else {
        json_array_append_new(json_object_get(live, "drift"), json_string("missing"));
    }
    json_decref(out);
    return GM_OK;
}

const gm_node_ops gm_ops_efs = {
    "efs",      "creating the encrypted file system", true, efs_create, efs_find, efs_destroy,
    efs_inspect};

/* ---- mount targets --------------------------------------------------------- */

static const char *subnet_node(gm_node_run *n)
{
    return n->def->slot ? "subnet_b" : "subnet_a";
}

static gm_status mt_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    *out_id = NULL;
    char *fs = gm_e_id(e, "efs");
    char *subnet = gm_e_id(e, subnet_node(n));
    if (!fs || !subnet) {
        free(fs);
        free(subnet);
        return GM_OK;
    }
    char path[256];
    snprintf(path, sizeof path, EFS_API "/mount-targets?FileSystemId=%s", fs);
    json_t *out = NULL;
    gm_status st =
        efs_call(e, "DescribeMountTargets", "GET", path, &out, "FileSystemNotFound", err);
    size_t i;
    json_t *mt;
    json_array_foreach (json_object_get(out, "MountTargets"), i, mt) {
        if (gm_str_eq(json_string_value(json_object_get(mt, "SubnetId")), subnet)) {
            *out_id = gm_strdup(json_string_value(json_object_get(mt, "MountTargetId")));
            break;
        }
    }
    json_decref(out);
    free(fs);
    free(subnet);
    return st;
}

static gm_status mt_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *id = NULL;
    gm_status st = GM_OK;
    /* Look for an existing one only when it can exist: a reused file system,
     * or an earlier run that journalled this node. */
    pthread_mutex_lock(&e->lock);
    gm_node_state *ns = gm_deployment_node(e->dep, n->def->name);
    bool look = (ns && ns->status != GM_NODE_PENDING) ||
                gm_deployment_node(e->dep, "efs") == NULL ||
                gm_deployment_node(e->dep, "efs")->provenance == GM_PROV_REUSED;
    pthread_mutex_unlock(&e->lock);
    if (look)
        st = mt_find(e, n, &id, err);
    if (st == GM_OK && id) {
        /* A mount target of a reused file system is the owner's, not ours. */
        if (gm_e_provenance(e, "efs") == GM_PROV_REUSED) {
            pthread_mutex_lock(&e->lock);
            gm_node_state *s = gm_deployment_ensure_node(e->dep, n->def->name, n->def->kind);
            s->provenance = GM_PROV_REUSED;
            gm_node_set_id(s, id);
            pthread_mutex_unlock(&e->lock);
            free(id);
            return GM_OK;
        }
        st = gm_e_journal_id(e, n, id, err);
        free(id);
        return st;
    }
    if (st != GM_OK)
        return st;
    /* Mount targets can be created only once the file system is available;
     * the instance needs only its id, so the wait happens here. */
    char *fs = gm_e_id(e, "efs");
    char *state = gm_e_output(e, "efs", "state");
    if (!fs)
        st = gm_error_set(err, GM_ERR_INTERNAL, "no file system id");
    else if (!gm_str_eq(state, "available"))
        st = wait_fs_available(e, fs, err);
    free(state);
    if (st == GM_OK)
        st = gm_e_journal_intent(e, n, NULL, 0, err);
    if (st != GM_OK) {
        free(fs);
        return st;
    }
    char *subnet = gm_e_id(e, subnet_node(n));
    char *sg = gm_e_id(e, "sg");
    json_t *body = json_pack("{s:s?, s:s?, s:[s?]}", "FileSystemId", fs, "SubnetId", subnet,
                             "SecurityGroups", sg);
    json_t *out = NULL;
    st = gm_aws_rest_json(e->aws, &gm_svc_efs, "CreateMountTarget", "POST",
                          EFS_API "/mount-targets", body, &out, err);
    json_decref(body);
    if (st == GM_OK) {
        const char *mid = json_string_value(json_object_get(out, "MountTargetId"));
        st = mid ? gm_e_journal_id(e, n, mid, err)
                 : gm_error_set(err, GM_ERR_PARSE, "CreateMountTarget returned no MountTargetId");
    }
    json_decref(out);
    free(fs);
    free(subnet);
    free(sg);
    return st;
}

static gm_status mt_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    char path[256];
    snprintf(path, sizeof path, EFS_API "/mount-targets/%s", id);
    gm_status st =
        efs_call(e, "DeleteMountTarget", "DELETE", path, NULL, "MountTargetNotFound", err);
    if (st != GM_OK)
        return st;
    /* Deleting takes a while; the file system cannot go before it is gone. */
    snprintf(path, sizeof path, EFS_API "/mount-targets?MountTargetId=%s", id);
    for (;;) {
        json_t *out = NULL;
        st = efs_call(e, "DescribeMountTargets", "GET", path, &out, "MountTargetNotFound", err);
        size_t left = json_array_size(json_object_get(out, "MountTargets"));
        json_decref(out);
        if (st != GM_OK)
            return st;
        if (left == 0)
            return GM_OK;
        st = gm_e_wait(e, e->poll_ms, "waiting for a mount target to be deleted", err);
        if (st != GM_OK)
            return st;
    }
}

static gm_status mt_inspect(gm_engine *e, gm_node_run *n, const char *id, json_t *live,
                            gm_error *err)
{
    char path[256];
    snprintf(path, sizeof path, EFS_API "/mount-targets?MountTargetId=%s", id);
    json_t *out = NULL;
    gm_status st =
        efs_call(e, "DescribeMountTargets", "GET", path, &out, "MountTargetNotFound", err);
    if (st != GM_OK)
        return st;
    json_t *mt = json_array_get(json_object_get(out, "MountTargets"), 0);
    json_object_set_new(live, "exists", json_boolean(mt != NULL));
    if (mt)
        json_object_set(live, "state", json_object_get(mt, "LifeCycleState"));
    else
        json_array_append_new(json_object_get(live, "drift"), json_string("missing"));
    json_decref(out);
    return GM_OK;
}

const gm_node_ops gm_ops_mount_target = {
    "mount_target", "creating an EFS mount target", true, mt_create, mt_find, mt_destroy,
    mt_inspect};
