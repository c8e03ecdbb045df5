/* The stack's secrets in SSM (the instance is the Auto Scaling group's: nodes_asg.c). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "cost/estimate.h"
#include "cost/rank.h"
#include "engine/nodes.h"
#include "engine/plan.h"
#include "stack/secrets.h"
#include "stack/stack.h"

/* ---- secrets ------------------------------------------------------------------ */

typedef struct put_job {
    gm_node *n;
    char *name;
    const char *value;
    const char *type; /* "SecureString", or "String" for the config */
    bool overwrite;   /* replace a stored value (the config) rather than keep it */
    const char *description;
    gm_status st;
    bool kept;
    gm_error err;
    pthread_t thread;
} put_job;

/* One PutParameter; overwrite replaces the value of an existing parameter
 * (AWS refuses Tags together with Overwrite, so the tags stay those of the
 * first put). */
static GM_MUST_CHECK gm_status put_once(put_job *j, bool overwrite, gm_error *err)
{
    return gm_n_ssm_put(j->n, j->name, j->value, j->type, j->description, overwrite, err);
}

static void *put_parameter(void *arg)
{
    put_job *j = arg;
    gm_error cerr = {0};
    j->st = put_once(j, false, &cerr);
    bool exists = j->st != GM_OK && strcmp(cerr.aws_code, "ParameterAlreadyExists") == 0;
    if (exists && j->overwrite) {
        /* the config follows the record */
        cerr = (gm_error){0};
        j->st = put_once(j, true, &cerr);
    } else if (exists) {
        /* A stored value survives redeploys and replacement instances: above
         * all the n8n encryption key must never change. */
        j->st = GM_OK;
        j->kept = true;
    }
    if (j->st != GM_OK)
        j->err = cerr;
    return NULL;
}

#define N_PUTS (GM_SECRET_COUNT + 1) /* the secrets and the config */

/* The jobs: every secret (kept when already stored), and the deployment's
 * config (what adopt rebuilds a lost record from). */
static GM_MUST_CHECK gm_status put_jobs(gm_node *n, const char *prefix,
                                        const gm_secret_values *values, const char *config,
                                        put_job *jobs, gm_error *err)
{
    for (int i = 0; i < N_PUTS; i++) {
        put_job *j = &jobs[i];
        j->n = n;
        bool secret = i < GM_SECRET_COUNT;
        j->name = secret ? gm_secret_parameter_name(prefix, (gm_secret_id)i)
                         : gm_strfmt("%s%s", prefix, GM_CONFIG_PARAMETER);
        j->value = secret ? values->value[i] : config;
        j->type = secret ? "SecureString" : "String";
        j->overwrite = !secret;
        j->description = secret ? gm_secret_def_get((gm_secret_id)i)->description
                                : "GeuseMaker deployment record summary (no secrets)";
        if (!j->name)
            return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    return GM_OK;
}

/* Writes every parameter concurrently (one round trip); returns the first
 * failure and how many secrets were already stored. */
static GM_MUST_CHECK gm_status put_all(gm_node *n, const char *prefix,
                                       const gm_secret_values *values, const char *config,
                                       int *out_kept, gm_error *err)
{
    put_job jobs[N_PUTS];
    memset(jobs, 0, sizeof jobs);
    bool started[N_PUTS] = {false};
    gm_status st = put_jobs(n, prefix, values, config, jobs, err);
    for (int i = 0; st == GM_OK && i < N_PUTS; i++) {
        if (pthread_create(&jobs[i].thread, NULL, put_parameter, &jobs[i]) == 0)
            started[i] = true;
        else
            put_parameter(&jobs[i]); /* no thread to be had: do it here */
    }
    *out_kept = 0;
    for (int i = 0; i < N_PUTS; i++) {
        if (started[i])
            pthread_join(jobs[i].thread, NULL);
        if (jobs[i].name && jobs[i].st != GM_OK && st == GM_OK) {
            *err = jobs[i].err;
            st = jobs[i].st;
        }
        *out_kept += jobs[i].kept;
        free(jobs[i].name);
    }
    return st;
}

static GM_MUST_CHECK gm_status secrets_create(gm_node *n, gm_error *err)
{
    char *prefix = gm_stack_default_ssm_prefix(gm_node_deployment(n));
    if (!prefix)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_status st = gm_node_intent(n, NULL, 0, err);
    gm_secret_values values;
    memset(&values, 0, sizeof values);
    if (st == GM_OK)
        st = gm_secrets_generate(&values, err);
    int kept = 0;
    json_t *summary = gm_node_record_summary(n);
    char *config = summary ? json_dumps(summary, JSON_COMPACT) : NULL;
    json_decref(summary);
    if (st == GM_OK && !config)
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    if (st == GM_OK)
        st = put_all(n, prefix, &values, config, &kept, err);
    free(config);
    gm_secret_values_release(&values);
    if (st == GM_OK && kept)
        gm_node_note(n, "kept %d secret(s) already stored under %s", kept, prefix);
    if (st == GM_OK)
        st = gm_node_created(n, prefix, err);
    free(prefix);
    return st;
}

static GM_MUST_CHECK gm_status secrets_find(gm_node *n, gm_ids *out, gm_error *err)
{
    char *prefix = gm_stack_default_ssm_prefix(gm_node_deployment(n));
    gm_status st =
        prefix ? gm_ids_add(out, prefix, err) : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    free(prefix);
    return st;
}

static json_t *secret_names(const char *prefix)
{
    json_t *names = json_array();
    for (int i = 0; names && i < GM_SECRET_COUNT; i++) {
        char *name = gm_secret_parameter_name(prefix, (gm_secret_id)i);
        if (!name || json_array_append_new(names, json_string(name)) != 0) {
            json_decref(names);
            names = NULL;
        }
        free(name);
    }
    return names;
}

/* The names of this deployment's parameters under prefix: tagged with its
 * id (its name for a record made before ids), every page. */
static GM_MUST_CHECK gm_status list_parameters(gm_node *n, const char *prefix, gm_ids *out,
                                               gm_error *err)
{
    char path[256], tag[64];
    snprintf(path, sizeof path, "%s", prefix);
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        path[--len] = '\0';
    const char *value;
    snprintf(tag, sizeof tag, "tag:%s", gm_n_owner_tag(n, &value));
    gm_ids_init(out);
    char *token = NULL;
    gm_status st = GM_OK;
    for (int page = 0; st == GM_OK && page < 100; page++) {
        json_t *body = json_pack("{s:[{s:s, s:s, s:[s]}, {s:s, s:[s]}], s:i}", "ParameterFilters",
                                 "Key", "Path", "Option", "Recursive", "Values", path, "Key", tag,
                                 "Values", value, "MaxResults", 50);
        if (body && token && json_object_set_new(body, "NextToken", json_string(token)) != 0)
            json_decref(body), body = NULL;
        json_t *answer = NULL;
        st = body ? gm_aws_json(gm_node_aws(n), &gm_svc_ssm, "DescribeParameters", body, &answer,
                                err)
                  : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        json_decref(body);
        gm_read_rows rows;
        if (st == GM_OK)
            st = gm_ssm_read_described(answer, &rows, err);
        for (size_t i = 0; st == GM_OK && i < rows.n; i++)
            st = gm_ids_add(out, gm_read_get(&rows, i, 0), err);
        if (st == GM_OK)
            gm_read_rows_release(&rows);
        free(token);
        token = st == GM_OK ? gm_read_next_token(answer, "NextToken") : NULL;
        json_decref(answer);
        if (!token)
            break;
    }
    free(token);
    return st;
}

/* Deletes the parameters under id (the path) that are this deployment's,
 * ten names a call (the API's limit). */
static GM_MUST_CHECK gm_status secrets_destroy(gm_node *n, const char *id, gm_error *err)
{
    gm_ids names;
    gm_status st = list_parameters(n, id, &names, err);
    for (size_t i = 0; st == GM_OK && i < names.n; i += 10) {
        json_t *batch = json_array();
        for (size_t k = i; batch && k < names.n && k < i + 10; k++)
            if (json_array_append_new(batch, json_string(names.v[k])) != 0)
                json_decref(batch), batch = NULL;
        json_t *body = batch ? json_pack("{s:o}", "Names", batch) : NULL;
        json_t *out = NULL;
        st = body ? gm_aws_json(gm_node_aws(n), &gm_svc_ssm, "DeleteParameters", body, &out, err)
                  : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        json_decref(body);
        json_decref(out);
    }
    gm_ids_release(&names);
    return st;
}

/* The secrets node's id is its parameter path: this deployment's path only,
 * gone when no parameter of this deployment is left under it. */
static GM_MUST_CHECK gm_status secrets_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                             size_t why_size, gm_error *err)
{
    char *prefix = gm_stack_default_ssm_prefix(gm_node_deployment(n));
    if (!prefix)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    *out = strcmp(id, prefix) == 0 ? GM_OWNER_OURS : GM_OWNER_OTHER;
    snprintf(why, why_size, "it is not this deployment's parameter path %s", prefix);
    free(prefix);
    gm_ids names;
    gm_status st = *out == GM_OWNER_OURS ? list_parameters(n, id, &names, err) : GM_OK;
    if (st == GM_OK && *out == GM_OWNER_OURS) {
        if (names.n == 0)
            *out = GM_OWNER_GONE;
        gm_ids_release(&names);
    }
    return st;
}

static GM_MUST_CHECK gm_status secrets_inspect(gm_node *n, const char *id, json_t *live,
                                               gm_error *err)
{
    json_t *names = secret_names(id);
    json_t *body = names ? json_pack("{s:o, s:b}", "Names", names, "WithDecryption", 0) : NULL;
    json_t *out = NULL;
    gm_status st = body ? gm_aws_json(gm_node_aws(n), &gm_svc_ssm, "GetParameters", body, &out, err)
                        : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    json_decref(body);
    gm_read_rows found, missing;
    gm_read_rows_init(&missing);
    if (st == GM_OK)
        st = gm_ssm_read_parameters(out, &found, err);
    if (st == GM_OK) {
        st = gm_ssm_read_invalid(out, &missing, err);
        json_object_set_new(live, "exists", json_boolean(found.n > 0));
        json_object_set_new(live, "state",
                            json_sprintf("%zu of %d parameters", found.n, GM_SECRET_COUNT));
        gm_read_rows_release(&found);
    }
    for (size_t i = 0; st == GM_OK && i < missing.n; i++) {
        char what[512];
        snprintf(what, sizeof what, "missing %s", gm_read_get(&missing, i, GM_SSM_NAME));
        gm_n_drift(live, what);
    }
    gm_read_rows_release(&missing);
    json_decref(out);
    return st;
}

const gm_node_ops gm_ops_secrets = {
    .kind = "secrets",
    .label = "storing the stack's secrets in SSM",
    .delete_label = "deleting the stack's secrets",
    .owns_resource = true,
    .listed_by_tags = true,
    .create = secrets_create,
    .find = secrets_find,
    .destroy = secrets_destroy,
    .owner = secrets_owner,
    .inspect = secrets_inspect,
};
