/* Compute node kinds: the stack's secrets in SSM, and the EC2 instance. */
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

/* ---- instance ------------------------------------------------------------------ */

/* DescribeInstances with params; rows of gm_ec2_instances. */
static GM_MUST_CHECK gm_status describe_instances(gm_node *n, const gm_params *p,
                                                  const char *const *ok_codes, gm_read_rows *rows,
                                                  gm_error *err)
{
    xmlDocPtr doc = NULL;
    gm_read_rows_init(rows);
    gm_status st = gm_n_ec2(n, "DescribeInstances", p, &doc, ok_codes, err);
    if (st == GM_OK && doc)
        st = gm_read_xml(doc, &gm_ec2_instances, rows, err);
    xmlFreeDoc(doc);
    return st;
}

static GM_MUST_CHECK gm_status instance_find(gm_node *n, gm_ids *out, gm_error *err)
{
    static const char *const live[] = {"pending", "running", "stopping", "stopped", NULL};
    return gm_n_ec2_find_tagged(n, "DescribeInstances", &gm_ec2_instances, "instance-state-name",
                                live, out, err);
}

static bool is_profile_not_ready(const gm_error *err)
{
    return strcmp(err->aws_code, "InvalidParameterValue") == 0 &&
           (strstr(err->message, "nstance profile") || strstr(err->message, "iamInstanceProfile"));
}

static GM_MUST_CHECK gm_status build_userdata(gm_node *n, const char *efs, char **out_b64,
                                              size_t *out_size, gm_error *err)
{
    gm_tier tier = gm_node_tier(n);
    size_t n_models = 0;
    const char *const *models = gm_engine_models(gm_node_config(n), &n_models);
    gm_stack_params sp = {
        .name = gm_node_deployment(n),
        .tier = tier,
        .region = gm_aws_client_region(gm_node_aws(n)),
        .instance_type = gm_node_config(n)->instance_type,
        .os = gm_node_config(n)->os,
        .efs_id = efs,
        .models = models,
        .n_models = n_models,
        .alb_https = gm_node_config(n)->certificate_arn && *gm_node_config(n)->certificate_arn,
    };
    gm_buf script;
    gm_buf_init(&script, GM_LIMIT_USERDATA_SCRIPT);
    gm_status st = gm_userdata_render(&sp, &script, err);
    bool gz = false;
    if (st == GM_OK)
        st = gm_userdata_encode(&script, out_b64, out_size, &gz, err);
    gm_buf_release(&script);
    return st;
}

/* What every launch candidate shares: the volumes and the spot price cap. */
typedef struct launch_common {
    const char *userdata;
    char root_device[64]; /* the image's root device name */
    int root_gb;          /* max(the image's root snapshot, the tier's need) */
    int data_gb;          /* the databases' volume (/dev/sdf) */
    char max_price[32];   /* InstanceMarketOptions.SpotOptions.MaxPrice; "" for none */
} launch_common;

/* One launch candidate of the failover order. */
typedef struct launch_try {
    const char *token;
    const char *type;
    const char *subnet_node;
    const char *az;
    bool spot;
    const launch_common *common;
} launch_try;

/* The root volume (sized for the image and the tier, on the image's own root
 * device) and the local data volume for the databases: gp3, encrypted,
 * deleted with the instance. */
static void volume_params(const launch_common *c, gm_params *p)
{
    char size[16];
    for (int i = 1; i <= 2; i++) {
        snprintf(size, sizeof size, "%d", i == 1 ? c->root_gb : c->data_gb);
        gm_params_addf(p, i == 1 ? c->root_device : GM_DATA_VOLUME_DEVICE,
                       "BlockDeviceMapping.%d.DeviceName", i);
        gm_params_addf(p, size, "BlockDeviceMapping.%d.Ebs.VolumeSize", i);
        gm_params_addf(p, "gp3", "BlockDeviceMapping.%d.Ebs.VolumeType", i);
        gm_params_addf(p, "true", "BlockDeviceMapping.%d.Ebs.Encrypted", i);
        gm_params_addf(p, "true", "BlockDeviceMapping.%d.Ebs.DeleteOnTermination", i);
    }
}

static void run_params(gm_node *n, const launch_try *t, gm_params *p)
{
    const gm_deploy_config *cfg = gm_node_config(n);
    char *ami = gm_node_id_of(n, "ami");
    char *subnet = gm_node_id_of(n, t->subnet_node);
    char *sg = gm_node_id_of(n, "sg");
    char *profile = gm_node_id_of(n, "instance_profile");
    gm_params_add(p, "ImageId", ami);
    gm_params_add(p, "InstanceType", t->type);
    if (t->az && *t->az)
        gm_params_add(p, "Placement.AvailabilityZone", t->az);
    gm_params_add(p, "MinCount", "1");
    gm_params_add(p, "MaxCount", "1");
    gm_params_add(p, "ClientToken", t->token);
    gm_params_add(p, "UserData", t->common->userdata);
    gm_params_add(p, "IamInstanceProfile.Name", profile);
    /* IMDSv2 only, and one hop: a container behind Docker's bridge cannot
     * reach the instance role's credentials. */
    gm_params_add(p, "MetadataOptions.HttpTokens", "required");
    gm_params_add(p, "MetadataOptions.HttpEndpoint", "enabled");
    gm_params_add(p, "MetadataOptions.HttpPutResponseHopLimit", "1");
    volume_params(t->common, p);
    gm_params_add(p, "NetworkInterface.1.DeviceIndex", "0");
    gm_params_add(p, "NetworkInterface.1.SubnetId", subnet);
    gm_params_add(p, "NetworkInterface.1.SecurityGroupId.1", sg);
    gm_params_add(p, "NetworkInterface.1.AssociatePublicIpAddress", "true");
    gm_params_add(p, "NetworkInterface.1.DeleteOnTermination", "true");
    if (cfg->key_name && *cfg->key_name)
        gm_params_add(p, "KeyName", cfg->key_name);
    if (t->spot) {
        gm_params_add(p, "InstanceMarketOptions.MarketType", "spot");
        gm_params_add(p, "InstanceMarketOptions.SpotOptions.SpotInstanceType", "one-time");
        gm_params_add(p, "InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior",
                      "terminate");
        if (*t->common->max_price)
            gm_params_add(p, "InstanceMarketOptions.SpotOptions.MaxPrice", t->common->max_price);
    }
    gm_n_tag_spec(n, p, 1, "instance");
    gm_n_tag_spec(n, p, 2, "volume");
    free(ami);
    free(subnet);
    free(sg);
    free(profile);
}

/* One candidate's RunInstances: the try and how many times its token had to
 * change. */
typedef struct run_ctx {
    const launch_try *t;
    int renewals;
} run_ctx;

/* Reads the launched instance; false (and *out_id NULL) when the token
 * answered with an instance that is already gone. */
static GM_MUST_CHECK gm_status read_launched(xmlDocPtr doc, char **out_id, bool *out_gone,
                                             gm_error *err)
{
    gm_read_rows rows;
    gm_status st = gm_read_xml(doc, &gm_ec2_run_instances, &rows, err);
    const char *state = gm_read_get(&rows, 0, 1);
    *out_gone = strcmp(state, "terminated") == 0 || strcmp(state, "shutting-down") == 0;
    *out_id = st == GM_OK && !*out_gone ? gm_read_dup(&rows, 0, GM_EC2_ID) : NULL;
    if (st == GM_OK && !*out_gone && !*out_id)
        st = gm_error_set(err, GM_ERR_PARSE, "RunInstances returned no instanceId");
    gm_read_rows_release(&rows);
    return st;
}

/* RunInstances, sent once per token. A token AWS bound to other parameters
 * (IdempotentParameterMismatch: a resume after the config changed) or to an
 * instance that is gone gets a new suffix; a new instance profile that EC2
 * does not see yet is waited for. */
static GM_MUST_CHECK gm_status send_run(gm_node *n, void *ctx, char **out_id, gm_error *err)
{
    run_ctx *c = ctx;
    int64_t backoff = 1000;
    for (;;) {
        char token[128];
        snprintf(token, sizeof token, "%.60s%s%.0d", c->t->token, c->renewals ? "-r" : "",
                 c->renewals);
        launch_try t = *c->t;
        t.token = token;
        gm_params p;
        gm_params_init(&p);
        run_params(n, &t, &p);
        p.once = true;
        xmlDocPtr doc = NULL;
        gm_error cerr = {0};
        gm_status st = gm_aws_query(gm_node_aws(n), &gm_svc_ec2, "RunInstances", &p, &doc, &cerr);
        gm_params_release(&p);
        bool gone = false;
        if (st == GM_OK)
            st = read_launched(doc, out_id, &gone, err);
        xmlFreeDoc(doc);
        if (st == GM_OK && !gone)
            return GM_OK;
        bool mismatch = strcmp(cerr.aws_code, "IdempotentParameterMismatch") == 0;
        if ((gone || mismatch) && c->renewals < 3) {
            gm_node_note(n, "launch token %s %s: using a new one", token,
                         gone ? "answered with an instance that is gone"
                              : "was bound to other parameters");
            c->renewals++;
            continue;
        }
        if (st == GM_OK) /* gone, and out of renewals */
            return gm_error_set(err, GM_ERR_AWS,
                                "RunInstances keeps answering with a gone "
                                "instance");
        /* IAM is eventually consistent: a new profile can be refused for a
         * few seconds. */
        if (!is_profile_not_ready(&cerr)) {
            *err = cerr;
            return st;
        }
        gm_node_note(n, "instance profile not visible to EC2 yet; retrying in %lldms",
                     (long long)backoff);
        st = gm_node_wait(n, backoff, "waiting for the instance profile to propagate", err);
        if (st != GM_OK)
            return st;
        if (backoff < 8000)
            backoff *= 2;
    }
}

static GM_MUST_CHECK gm_status run_instance(gm_node *n, const launch_try *t, char **out_id,
                                            gm_error *err)
{
    run_ctx c = {.t = t};
    return gm_n_create_once(n, send_run, &c, NULL, out_id, err);
}

/* Records where the running instance is. */
static GM_MUST_CHECK gm_status record_running(gm_node *n, const gm_read_rows *rows, gm_error *err)
{
    static const struct {
        const char *key;
        int field;
    } outs[] = {{"public_ip", GM_EC2_I_PUBLIC_IP},
                {"private_ip", GM_EC2_I_PRIVATE_IP},
                {"az", GM_EC2_I_AZ},
                {"instance_type", GM_EC2_I_TYPE}};
    gm_status st = GM_OK;
    for (size_t i = 0; st == GM_OK && i < sizeof outs / sizeof *outs; i++)
        st = gm_node_set_output(n, outs[i].key, gm_read_get(rows, 0, outs[i].field), err);
    const char *market = gm_read_get(rows, 0, GM_EC2_I_LIFECYCLE);
    if (st == GM_OK)
        st = gm_node_set_output(n, "market", *market ? market : "on-demand", err);
    return st;
}

static GM_MUST_CHECK gm_status wait_running(gm_node *n, const char *id, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InstanceId.1", id);
    /* NotFound right after RunInstances is normal: EC2 is eventually consistent. */
    static const char *const not_yet[] = {"InvalidInstanceID.NotFound", NULL};
    gm_status st;
    for (;;) {
        gm_read_rows rows;
        st = describe_instances(n, &p, not_yet, &rows, err);
        if (st != GM_OK)
            break;
        char state[32];
        snprintf(state, sizeof state, "%s", gm_read_get(&rows, 0, GM_EC2_I_STATE));
        if (strcmp(state, "running") == 0)
            st = record_running(n, &rows, err);
        gm_read_rows_release(&rows);
        if (st != GM_OK || strcmp(state, "running") == 0)
            break;
        if (strcmp(state, "terminated") == 0 || strcmp(state, "shutting-down") == 0) {
            st = gm_error_set(err, GM_ERR_AWS, "instance '%s' is %s before it ran", id, state);
            break;
        }
        st = gm_node_wait(n, gm_node_poll_ms(n), "waiting for the instance to run", err);
        if (st != GM_OK)
            break;
    }
    gm_params_release(&p);
    return st;
}

/* Records the launched candidate and its estimate. */
static GM_MUST_CHECK gm_status record_choice(gm_node *n, const gm_cost_candidate *c, gm_error *err)
{
    char price[64];
    snprintf(price, sizeof price, "%.4f", c->hourly);
    const char *outs[][2] = {
        {"chosen_type", c->type},
        {"chosen_az", c->az},
        {"chosen_market", gm_market_name(c->market)},
        {"chosen_hourly_usd", price},
        {"price_source", c->source},
        {"choice_reason", c->reason},
    };
    gm_status st = GM_OK;
    for (size_t i = 0; st == GM_OK && i < sizeof outs / sizeof *outs; i++)
        st = gm_node_set_output(n, outs[i][0], outs[i][1], err);
    gm_cost_assumptions a;
    gm_engine_assumptions(gm_node_config(n), &a);
    char *root_gb = gm_node_output_of(n, gm_node_name(n), "root_volume_gb");
    if (root_gb && strtol(root_gb, NULL, 10) > 0) /* the size asked for, not the tier's need */
        a.ebs_gb = (double)strtol(root_gb, NULL, 10);
    free(root_gb);
    gm_node_set_cost(n, gm_cost_estimate_candidate(c, gm_tier_has_alb(gm_node_tier(n)), &a));
    return st;
}

typedef struct launch_state {
    char *azs[2]; /* the subnets' zones */
    gm_cost_ranking plan;
    json_t *attempts;
    launch_common common;
} launch_state;

static char *subnet_az(gm_node *n, const char *subnet_node, const char *azs_key)
{
    char *az = gm_node_output_of(n, subnet_node, "az");
    return az ? az : gm_node_output_of(n, "azs", azs_key);
}

/* One attempt of the failover order; *out_next is the index to try after a
 * failure (past the end: none left). */
static GM_MUST_CHECK gm_status launch_attempt(gm_node *n, launch_state *ls, size_t i,
                                              const char *token, char **out_id, size_t *out_next,
                                              gm_error *lerr)
{
    const gm_cost_candidate *c = &ls->plan.viable[i];
    char attempt_token[128];
    /* A distinct token per attempt: the same token with other parameters
     * would be refused as a mismatch. */
    snprintf(attempt_token, sizeof attempt_token, "%.60s-%zu", token, i + 1);
    launch_try t = {
        .token = attempt_token,
        .type = c->type,
        .subnet_node = ls->azs[1] && strcmp(c->az, ls->azs[1]) == 0 ? "subnet_b" : "subnet_a",
        .az = c->az,
        .spot = c->market == GM_MARKET_SPOT,
        .common = &ls->common,
    };
    gm_status st = run_instance(n, &t, out_id, lerr);
    json_array_append_new(ls->attempts,
                          json_pack("{s:s, s:s, s:s, s:s}", "type", c->type, "az", c->az, "market",
                                    gm_market_name(c->market), "result",
                                    st == GM_OK ? "launched" : lerr->aws_code));
    *out_next = st == GM_OK ? i : gm_cost_failover_next(&ls->plan, i, lerr->aws_code);
    return st;
}

/* Launches down the failover order: RunInstances errors are classified by
 * scope (zone capacity -> next zone, then next type; spot price -> next
 * candidate; account quota -> another market or stop; throttling -> the
 * request core already retried; auth and the rest -> stop). Every attempt is
 * noted; the choice and why are recorded in the node's outputs. A failed
 * RunInstances creates nothing, so failed attempts leave nothing behind. */
static GM_MUST_CHECK gm_status launch_with_failover(gm_node *n, launch_state *ls, const char *token,
                                                    char **out_id, gm_error *err)
{
    gm_status st = GM_ERR_INTERNAL;
    size_t i = 0;
    while (i < ls->plan.n_viable) {
        const gm_cost_candidate *c = &ls->plan.viable[i];
        gm_error lerr = {0};
        size_t next = 0;
        st = launch_attempt(n, ls, i, token, out_id, &next, &lerr);
        if (st == GM_OK) {
            if (i > 0)
                gm_node_note(n, "launched %s %s in %s after %zu failed attempt(s)", c->type,
                             gm_market_name(c->market), c->az, i);
            return record_choice(n, c, err);
        }
        gm_launch_error_class cls = gm_cost_launch_error_class(lerr.aws_code);
        if (next >= ls->plan.n_viable) {
            *err = lerr;
            if (cls == GM_LAUNCH_ERR_ACCOUNT_QUOTA && gm_node_config(n)->spot_only)
                gm_error_prefix(err, "spot quota reached and --spot-only forbids on-demand");
            else if (i > 0)
                gm_error_prefix(err, "no launch candidate left after %zu attempt(s)", i + 1);
            return st;
        }
        const gm_cost_candidate *nx = &ls->plan.viable[next];
        gm_node_note(n, "attempt %zu: %s %s in %s refused (%s, %s): trying %s %s in %s", i + 1,
                     c->type, gm_market_name(c->market), c->az, lerr.aws_code,
                     gm_launch_error_class_name(cls), nx->type, gm_market_name(nx->market), nx->az);
        i = next;
    }
    return st;
}

/* A price for SpotOptions.MaxPrice: USD per hour, without trailing zeros. */
static void format_price(double usd, char *out, size_t size)
{
    snprintf(out, size, "%.6f", usd);
    size_t len = strlen(out);
    while (len > 1 && out[len - 1] == '0' && out[len - 2] != '.')
        out[--len] = '\0';
}

/* What every candidate's launch shares, from the image's facts (the ami node)
 * and the config; recorded in the node's outputs. */
static GM_MUST_CHECK gm_status launch_common_init(gm_node *n, const char *userdata,
                                                  launch_common *c, gm_error *err)
{
    const gm_deploy_config *cfg = gm_node_config(n);
    char *root = gm_node_output_of(n, "ami", "root_device");
    char *snap = gm_node_output_of(n, "ami", "root_snapshot_gb");
    /* A record from before the image was described assumed /dev/xvda. */
    snprintf(c->root_device, sizeof c->root_device, "%s", root && *root ? root : "/dev/xvda");
    c->root_gb = gm_engine_root_volume_gb(gm_node_tier(n), snap ? strtol(snap, NULL, 10) : 0);
    c->data_gb = gm_engine_data_volume_gb(cfg);
    c->userdata = userdata;
    c->max_price[0] = '\0';
    if (cfg->max_spot_price > 0)
        format_price(cfg->max_spot_price, c->max_price, sizeof c->max_price);
    free(root);
    free(snap);
    char root_gb[16], data_gb[16];
    snprintf(root_gb, sizeof root_gb, "%d", c->root_gb);
    snprintf(data_gb, sizeof data_gb, "%d", c->data_gb);
    gm_status st = gm_node_set_output(n, "root_device", c->root_device, err);
    if (st == GM_OK)
        st = gm_node_set_output(n, "root_volume_gb", root_gb, err);
    if (st == GM_OK)
        st = gm_node_set_output(n, "data_volume_gb", data_gb, err);
    if (st == GM_OK && c->root_gb > gm_engine_root_need_gb(gm_node_tier(n)))
        gm_node_note(n,
                     "root volume %d GiB: the image's root snapshot is larger than the %d GiB "
                     "the tier needs",
                     c->root_gb, gm_engine_root_need_gb(gm_node_tier(n)));
    return st;
}

static GM_MUST_CHECK gm_status launch(gm_node *n, const char *token, const char *userdata,
                                      char **out_id, gm_error *err)
{
    launch_state ls = {
        .azs = {subnet_az(n, "subnet_a", "az_a"), subnet_az(n, "subnet_b", "az_b")},
        .attempts = json_array(),
    };
    const char *zones[2] = {ls.azs[0] ? ls.azs[0] : "", ls.azs[1] ? ls.azs[1] : ""};
    gm_status st = ls.attempts ? launch_common_init(n, userdata, &ls.common, err)
                               : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    if (st == GM_OK)
        st = gm_n_launch_plan(n, zones, &ls.plan, err);
    if (st == GM_OK) {
        st = launch_with_failover(n, &ls, token, out_id, err);
        char *text = json_dumps(ls.attempts, JSON_COMPACT);
        gm_error oerr = {0};
        /* the attempts are a record for the user; losing them fails nothing */
        gm_ignore(gm_node_set_output(n, "launch_attempts", text, &oerr));
        free(text);
        gm_cost_ranking_release(&ls.plan);
    }
    json_decref(ls.attempts);
    free(ls.azs[0]);
    free(ls.azs[1]);
    return st;
}

static GM_MUST_CHECK gm_status instance_create(gm_node *n, gm_error *err)
{
    char *id = NULL;
    char token[96];
    gm_status st = gm_n_adopt_or_intent(n, &id, token, sizeof token, err);
    if (st == GM_OK && !id) {
        char *efs = gm_node_id_of(n, "efs");
        char *userdata = NULL;
        size_t size = 0;
        st = build_userdata(n, efs, &userdata, &size, err);
        free(efs);
        char sz[32];
        snprintf(sz, sizeof sz, "%zu", size);
        if (st == GM_OK)
            st = gm_node_set_output(n, "userdata_bytes", sz, err);
        if (st == GM_OK)
            st = launch(n, token, userdata, &id, err);
        free(userdata);
        if (st == GM_OK)
            st = gm_node_created(n, id, err);
    }
    if (st == GM_OK && !gm_node_config(n)->no_wait)
        st = wait_running(n, id, err);
    free(id);
    return st;
}

/* The instance's state ("terminated" when EC2 no longer knows it). */
static GM_MUST_CHECK gm_status instance_state(gm_node *n, const gm_params *p, char *state,
                                              size_t size, gm_error *err)
{
    static const char *const gone[] = {"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed",
                                       NULL};
    gm_read_rows rows;
    gm_status st = describe_instances(n, p, gone, &rows, err);
    snprintf(state, size, "%s", rows.n ? gm_read_get(&rows, 0, GM_EC2_I_STATE) : "terminated");
    gm_read_rows_release(&rows);
    return st;
}

static GM_MUST_CHECK gm_status instance_destroy(gm_node *n, const char *id, gm_error *err)
{
    static const char *const gone[] = {"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed",
                                       NULL};
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InstanceId.1", id);
    char state[32];
    gm_status st = instance_state(n, &p, state, sizeof state, err);
    if (st == GM_OK && strcmp(state, "terminated") != 0)
        st = gm_n_ec2(n, "TerminateInstances", &p, NULL, gone, err);
    /* Its network interface holds the security group and subnet until it is
     * terminated: wait for that. */
    while (st == GM_OK && strcmp(state, "terminated") != 0) {
        st = instance_state(n, &p, state, sizeof state, err);
        if (st == GM_OK && strcmp(state, "terminated") != 0)
            st = gm_node_wait(n, gm_node_poll_ms(n), "waiting for the instance to terminate", err);
    }
    gm_params_release(&p);
    return st;
}

/* A terminated instance counts as gone (EC2 lists it for an hour). */
static GM_MUST_CHECK gm_status instance_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                              size_t why_size, gm_error *err)
{
    gm_status st = gm_n_owner_ec2(n, id, "DescribeInstances", "InstanceId.1",
                                  "reservationSet/item/instancesSet/item", out, why, why_size, err);
    if (st != GM_OK || *out == GM_OWNER_GONE)
        return st;
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InstanceId.1", id);
    char state[32];
    st = instance_state(n, &p, state, sizeof state, err);
    gm_params_release(&p);
    if (st == GM_OK && strcmp(state, "terminated") == 0)
        *out = GM_OWNER_GONE;
    return st;
}

static GM_MUST_CHECK gm_status instance_inspect(gm_node *n, const char *id, json_t *live,
                                                gm_error *err)
{
    gm_status st = gm_n_inspect_ec2(n, "DescribeInstances", "InstanceId.1", id, &gm_ec2_instances,
                                    GM_EC2_I_STATE, live, err);
    const char *state = json_string_value(json_object_get(live, "state"));
    if (st == GM_OK && state && strcmp(state, "running") != 0) {
        char what[64];
        snprintf(what, sizeof what, "instance is %s", state);
        gm_n_drift(live, what);
    }
    return st;
}

/* adopt: where the instance runs (nothing while it does not). */
static GM_MUST_CHECK gm_status instance_read_back(gm_node *n, const char *id, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InstanceId.1", id);
    gm_read_rows rows;
    gm_status st = describe_instances(n, &p, NULL, &rows, err);
    gm_params_release(&p);
    if (st != GM_OK)
        return st;
    if (strcmp(gm_read_get(&rows, 0, GM_EC2_I_STATE), "running") == 0)
        st = record_running(n, &rows, err);
    gm_read_rows_release(&rows);
    return st;
}

const gm_node_ops gm_ops_instance = {
    .kind = "instance",
    .label = "launching the instance",
    .delete_label = "terminating the instance",
    .owns_resource = true,
    .listed_by_tags = true,
    .create = instance_create,
    .find = instance_find,
    .destroy = instance_destroy,
    .owner = instance_owner,
    .inspect = instance_inspect,
    .read_back = instance_read_back,
};
