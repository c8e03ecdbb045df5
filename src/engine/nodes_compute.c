/* Compute node kinds: the stack's secrets in SSM, and the EC2 instance. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "core/timeutil.h"
#include "engine/internal.h"
#include "engine/nodes.h"
#include "cost/estimate.h"
#include "cost/rank.h"
#include "stack/secrets.h"
#include "stack/stack.h"

/* ---- secrets ------------------------------------------------------------------ */

static char *ssm_prefix(gm_engine *e)
{
    return gm_stack_default_ssm_prefix(e->dep->name);
}

typedef struct put_job {
    gm_engine *e;
    const char *node;
    char *name;
    const char *value;
    const char *description;
    gm_status st;
    bool kept;
    gm_error err;
    pthread_t thread;
} put_job;

static void *put_parameter(void *arg)
{
    put_job *j = arg;
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:b, s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}", "Name",
                             j->name, "Value", j->value, "Type", "SecureString", "Description",
                             j->description, "Overwrite", 0, "Tags", "Key", "geusemaker:deployment",
                             "Value", j->e->dep->name, "Key", "geusemaker:node", "Value", j->node,
                             "Key", "ManagedBy", "Value", "geusemaker");
    json_t *out = NULL;
    gm_error cerr = {0};
    j->st = body ? gm_aws_json(j->e->aws, &gm_svc_ssm, "PutParameter", body, &out, &cerr)
                 : gm_error_set(&cerr, GM_ERR_NOMEM, "out of memory");
    /* A stored value survives redeploys and replacement instances: above all
     * the n8n encryption key must never change. */
    if (j->st != GM_OK && strcmp(cerr.aws_code, "ParameterAlreadyExists") == 0) {
        j->st = GM_OK;
        j->kept = true;
    } else if (j->st != GM_OK) {
        j->err = cerr;
    }
    json_decref(out);
    json_decref(body);
    return NULL;
}

/* The parameters are independent: they are written concurrently, one round
 * trip for all. */
static gm_status secrets_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *prefix = ssm_prefix(e);
    if (!prefix)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_status st = gm_e_journal_intent(e, n, NULL, 0, err);
    gm_secret_values values;
    memset(&values, 0, sizeof values);
    if (st == GM_OK)
        st = gm_secrets_generate(&values, err);
    put_job jobs[GM_SECRET_COUNT];
    memset(jobs, 0, sizeof jobs);
    int started = 0, kept = 0;
    for (int i = 0; st == GM_OK && i < GM_SECRET_COUNT; i++) {
        put_job *j = &jobs[i];
        j->e = e;
        j->node = n->def->name;
        j->name = gm_secret_parameter_name(prefix, (gm_secret_id)i);
        j->value = values.value[i];
        j->description = gm_secret_def_get((gm_secret_id)i)->description;
        if (!j->name) {
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
            break;
        }
        if (pthread_create(&j->thread, NULL, put_parameter, j) != 0) {
            put_parameter(j); /* no thread to be had: do it here */
            j->thread = 0;
            continue;
        }
        started |= 1 << i;
    }
    for (int i = 0; i < GM_SECRET_COUNT; i++) {
        if (started & (1 << i))
            pthread_join(jobs[i].thread, NULL);
        if (jobs[i].name && jobs[i].st != GM_OK && st == GM_OK) {
            *err = jobs[i].err;
            st = jobs[i].st;
        }
        kept += jobs[i].kept;
        free(jobs[i].name);
    }
    gm_secret_values_release(&values);
    if (st == GM_OK && kept)
        gm_e_event(e, n, "kept %d secret(s) already stored under %s", kept, prefix);
    if (st == GM_OK)
        st = gm_e_journal_id(e, n, prefix, err);
    free(prefix);
    return st;
}

static gm_status secrets_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    *out_id = ssm_prefix(e);
    return *out_id ? GM_OK : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
}

static json_t *secret_names(const char *prefix)
{
    json_t *names = json_array();
    for (int i = 0; i < GM_SECRET_COUNT; i++) {
        char *name = gm_secret_parameter_name(prefix, (gm_secret_id)i);
        if (name)
            json_array_append_new(names, json_string(name));
        free(name);
    }
    return names;
}

static gm_status secrets_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    json_t *body = json_pack("{s:o}", "Names", secret_names(id));
    json_t *out = NULL;
    gm_status st = gm_aws_json(e->aws, &gm_svc_ssm, "DeleteParameters", body, &out, err);
    json_decref(body);
    json_decref(out);
    return st;
}

static gm_status secrets_inspect(gm_engine *e, gm_node_run *n, const char *id, json_t *live,
                                 gm_error *err)
{
    json_t *body = json_pack("{s:o, s:b}", "Names", secret_names(id), "WithDecryption", 0);
    json_t *out = NULL;
    gm_status st = gm_aws_json(e->aws, &gm_svc_ssm, "GetParameters", body, &out, err);
    json_decref(body);
    if (st != GM_OK)
        return st;
    size_t found = json_array_size(json_object_get(out, "Parameters"));
    json_object_set_new(live, "exists", json_boolean(found > 0));
    json_object_set_new(live, "state",
                        json_sprintf("%zu of %d parameters", found, GM_SECRET_COUNT));
    size_t i;
    json_t *missing;
    json_array_foreach (json_object_get(out, "InvalidParameters"), i, missing)
        json_array_append_new(json_object_get(live, "drift"),
                              json_sprintf("missing %s", json_string_value(missing)));
    json_decref(out);
    return GM_OK;
}

const gm_node_ops gm_ops_secrets = {"secrets",      "storing the stack's secrets in SSM",
                                    true,           secrets_create,
                                    secrets_find,   secrets_destroy,
                                    secrets_inspect};

/* ---- instance ------------------------------------------------------------------ */

static gm_status instance_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "Filter.1.Name", "tag:geusemaker:deployment");
    gm_params_add(&p, "Filter.1.Value.1", e->dep->name);
    gm_params_add(&p, "Filter.2.Name", "tag:geusemaker:node");
    gm_params_add(&p, "Filter.2.Value.1", n->def->name);
    gm_params_add(&p, "Filter.3.Name", "instance-state-name");
    const char *live[] = {"pending", "running", "stopping", "stopped"};
    for (int i = 0; i < 4; i++)
        gm_params_addf(&p, live[i], "Filter.3.Value.%d", i + 1);
    xmlDocPtr doc = NULL;
    *out_id = NULL;
    gm_status st = gm_aws_query(e->aws, &gm_svc_ec2, "DescribeInstances", &p, &doc, err);
    gm_params_release(&p);
    if (st != GM_OK)
        return st;
    xmlNodePtr inst = gm_xml_find(xmlDocGetRootElement(doc), "instancesSet");
    inst = gm_xml_child(inst, "item");
    if (inst)
        *out_id = gm_xml_text(inst, "instanceId");
    xmlFreeDoc(doc);
    return GM_OK;
}

static bool is_profile_not_ready(const gm_error *err)
{
    return strcmp(err->aws_code, "InvalidParameterValue") == 0 &&
           (strstr(err->message, "nstance profile") || strstr(err->message, "iamInstanceProfile"));
}

static gm_status build_userdata(gm_engine *e, const char *efs, char **out_b64, size_t *out_size,
                                gm_error *err)
{
    gm_tier tier = GM_TIER_DEV;
    gm_tier_parse(e->dep->tier, &tier);
    size_t n_models = 0;
    const char *const *models = gm_stack_default_models(tier, &n_models);
    gm_stack_params sp = {
        .name = e->dep->name,
        .tier = e->dep->tier,
        .region = gm_aws_client_region(e->aws),
        .instance_type = e->cfg->instance_type,
        .os = GM_OS_AL2023,
        .efs_id = efs,
        .models = models,
        .n_models = n_models,
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

static gm_status run_instance(gm_engine *e, gm_node_run *n, const char *token, const char *type,
                              const char *subnet_node, const char *az, bool spot,
                              const char *userdata, char **out_id, gm_error *err)
{
    char *ami = gm_e_id(e, "ami");
    char *subnet = gm_e_id(e, subnet_node);
    char *sg = gm_e_id(e, "sg");
    char *profile = gm_e_id(e, "instance_profile");
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "ImageId", ami ? ami : "");
    gm_params_add(&p, "InstanceType", type);
    if (az && *az)
        gm_params_add(&p, "Placement.AvailabilityZone", az);
    gm_params_add(&p, "MinCount", "1");
    gm_params_add(&p, "MaxCount", "1");
    gm_params_add(&p, "ClientToken", token);
    gm_params_add(&p, "UserData", userdata);
    gm_params_add(&p, "IamInstanceProfile.Name", profile ? profile : "");
    gm_params_add(&p, "MetadataOptions.HttpTokens", "required");
    gm_params_add(&p, "MetadataOptions.HttpEndpoint", "enabled");
    gm_params_add(&p, "MetadataOptions.HttpPutResponseHopLimit", "2");
    gm_params_add(&p, "BlockDeviceMapping.1.DeviceName", "/dev/xvda");
    gm_params_add(&p, "BlockDeviceMapping.1.Ebs.VolumeSize", "60");
    gm_params_add(&p, "BlockDeviceMapping.1.Ebs.VolumeType", "gp3");
    gm_params_add(&p, "BlockDeviceMapping.1.Ebs.Encrypted", "true");
    gm_params_add(&p, "BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true");
    gm_params_add(&p, "NetworkInterface.1.DeviceIndex", "0");
    gm_params_add(&p, "NetworkInterface.1.SubnetId", subnet ? subnet : "");
    gm_params_add(&p, "NetworkInterface.1.SecurityGroupId.1", sg ? sg : "");
    gm_params_add(&p, "NetworkInterface.1.AssociatePublicIpAddress", "true");
    gm_params_add(&p, "NetworkInterface.1.DeleteOnTermination", "true");
    if (e->cfg->key_name && *e->cfg->key_name)
        gm_params_add(&p, "KeyName", e->cfg->key_name);
    if (spot) {
        gm_params_add(&p, "InstanceMarketOptions.MarketType", "spot");
        gm_params_add(&p, "InstanceMarketOptions.SpotOptions.SpotInstanceType", "one-time");
        gm_params_add(&p, "InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior",
                      "terminate");
    }
    gm_e_tag_spec(e, &p, 1, "instance", n->def->name);
    gm_e_tag_spec(e, &p, 2, "volume", n->def->name);
    gm_status st;
    int64_t backoff = 1000;
    for (;;) {
        xmlDocPtr doc = NULL;
        gm_error cerr = {0};
        st = gm_aws_query(e->aws, &gm_svc_ec2, "RunInstances", &p, &doc, &cerr);
        if (st == GM_OK) {
            xmlNodePtr item =
                gm_xml_child(gm_xml_find(xmlDocGetRootElement(doc), "instancesSet"), "item");
            *out_id = item ? gm_xml_text(item, "instanceId") : NULL;
            xmlFreeDoc(doc);
            if (!*out_id)
                st = gm_error_set(err, GM_ERR_PARSE, "RunInstances returned no instanceId");
            break;
        }
        /* IAM is eventually consistent: a new profile can be refused for a
         * few seconds. */
        if (!is_profile_not_ready(&cerr)) {
            *err = cerr;
            break;
        }
        gm_e_event(e, n, "instance profile not visible to EC2 yet; retrying in %lldms",
                   (long long)backoff);
        st = gm_e_wait(e, backoff, "waiting for the instance profile to propagate", err);
        if (st != GM_OK)
            break;
        if (backoff < 8000)
            backoff *= 2;
    }
    gm_params_release(&p);
    free(ami);
    free(subnet);
    free(sg);
    free(profile);
    return st;
}

static gm_status wait_running(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InstanceId.1", id);
    gm_status st;
    for (;;) {
        xmlDocPtr doc = NULL;
        gm_error cerr = {0};
        st = gm_aws_query(e->aws, &gm_svc_ec2, "DescribeInstances", &p, &doc, &cerr);
        if (st != GM_OK && strcmp(cerr.aws_code, "InvalidInstanceID.NotFound") != 0) {
            *err = cerr;
            break;
        }
        char state[32] = "";
        if (st == GM_OK) {
            xmlNodePtr item =
                gm_xml_child(gm_xml_find(xmlDocGetRootElement(doc), "instancesSet"), "item");
            gm_xml_text_to(item, "instanceState/name", state, sizeof state);
            if (strcmp(state, "running") == 0) {
                char buf[128];
                gm_e_set_output(e, n, "public_ip",
                                gm_xml_text_to(item, "ipAddress", buf, sizeof buf));
                gm_e_set_output(e, n, "private_ip",
                                gm_xml_text_to(item, "privateIpAddress", buf, sizeof buf));
                gm_e_set_output(
                    e, n, "az",
                    gm_xml_text_to(item, "placement/availabilityZone", buf, sizeof buf));
                gm_e_set_output(e, n, "instance_type",
                                gm_xml_text_to(item, "instanceType", buf, sizeof buf));
                gm_xml_text_to(item, "instanceLifecycle", buf, sizeof buf);
                gm_e_set_output(e, n, "market", *buf ? buf : "on-demand");
                xmlFreeDoc(doc);
                break;
            }
        }
        xmlFreeDoc(doc);
        if (strcmp(state, "terminated") == 0 || strcmp(state, "shutting-down") == 0) {
            st = gm_error_set(err, GM_ERR_AWS, "instance '%s' is %s before it ran", id, state);
            break;
        }
        /* NotFound right after RunInstances is normal: EC2 is eventually consistent. */
        st = gm_e_wait(e, e->poll_ms, "waiting for the instance to run", err);
        if (st != GM_OK)
            break;
    }
    gm_params_release(&p);
    return st;
}

static const char *subnet_for_az(gm_engine *e, const char *az, char *const azs[2])
{
    (void)e;
    return azs[1] && strcmp(az, azs[1]) == 0 ? "subnet_b" : "subnet_a";
}

static char *subnet_az(gm_engine *e, const char *subnet_node, const char *azs_key)
{
    char *az = gm_e_output(e, subnet_node, "az");
    if (!az)
        az = gm_e_output(e, "azs", azs_key);
    return az;
}

/* Launches down the failover order: RunInstances errors are classified by
 * scope (zone capacity -> next zone, then next type; spot price -> next
 * candidate; account quota -> another market or stop; throttling -> the
 * request core already retried; auth and the rest -> stop). Every attempt is
 * noted; the choice and why are recorded in the node's outputs. A failed
 * RunInstances creates nothing, so failed attempts leave nothing behind. */
static gm_status launch_with_failover(gm_engine *e, gm_node_run *n, const char *token,
                                      const char *userdata, char **out_id, gm_error *err)
{
    char *azs[2] = {subnet_az(e, "subnet_a", "az_a"), subnet_az(e, "subnet_b", "az_b")};
    const char *zones[2] = {azs[0] ? azs[0] : "", azs[1] ? azs[1] : ""};
    gm_cost_ranking plan;
    gm_status st = gm_n_launch_plan(e, zones, &plan, err);
    if (st != GM_OK) {
        free(azs[0]);
        free(azs[1]);
        return st;
    }
    json_t *attempts = json_array();
    size_t i = 0;
    while (i < plan.n_viable) {
        const gm_cost_candidate *c = &plan.viable[i];
        bool spot = c->market == GM_MARKET_SPOT;
        char attempt_token[128];
        /* A distinct token per attempt: the same token with other parameters
         * would be refused as a mismatch. */
        snprintf(attempt_token, sizeof attempt_token, "%.60s-%zu", token, i + 1);
        gm_error lerr = {0};
        st = run_instance(e, n, attempt_token, c->type, subnet_for_az(e, c->az, azs), c->az, spot,
                          userdata, out_id, &lerr);
        json_array_append_new(attempts,
                              json_pack("{s:s, s:s, s:s, s:s}", "type", c->type, "az", c->az,
                                        "market", gm_market_name(c->market), "result",
                                        st == GM_OK ? "launched" : lerr.aws_code));
        if (st == GM_OK) {
            char price[64];
            snprintf(price, sizeof price, "%.4f", c->hourly);
            gm_e_set_output(e, n, "chosen_type", c->type);
            gm_e_set_output(e, n, "chosen_az", c->az);
            gm_e_set_output(e, n, "chosen_market", gm_market_name(c->market));
            gm_e_set_output(e, n, "chosen_hourly_usd", price);
            gm_e_set_output(e, n, "price_source", c->source);
            gm_e_set_output(e, n, "choice_reason", c->reason);
            json_t *est =
                gm_cost_estimate_candidate(c, strcmp(e->dep->tier, "automation") == 0, NULL);
            if (est) {
                pthread_mutex_lock(&e->lock);
                json_decref(e->dep->cost);
                e->dep->cost = est;
                pthread_mutex_unlock(&e->lock);
            }
            if (i > 0)
                gm_e_event(e, n, "launched %s %s in %s after %zu failed attempt(s)", c->type,
                           gm_market_name(c->market), c->az, i);
            break;
        }
        size_t next = gm_cost_failover_next(&plan, i, lerr.aws_code);
        gm_launch_error_class cls = gm_cost_launch_error_class(lerr.aws_code);
        if (next >= plan.n_viable) {
            *err = lerr;
            if (cls == GM_LAUNCH_ERR_ACCOUNT_QUOTA && e->cfg->spot_only)
                gm_error_prefix(err, "spot quota reached and --spot-only forbids on-demand");
            else if (i > 0)
                gm_error_prefix(err, "no launch candidate left after %zu attempt(s)", i + 1);
            break;
        }
        gm_e_event(e, n, "attempt %zu: %s %s in %s refused (%s, %s): trying %s %s in %s", i + 1,
                   c->type, gm_market_name(c->market), c->az, lerr.aws_code,
                   gm_launch_error_class_name(cls), plan.viable[next].type,
                   gm_market_name(plan.viable[next].market), plan.viable[next].az);
        i = next;
    }
    char *text = json_dumps(attempts, JSON_COMPACT);
    gm_e_set_output(e, n, "launch_attempts", text);
    free(text);
    json_decref(attempts);
    gm_cost_ranking_release(&plan);
    free(azs[0]);
    free(azs[1]);
    return st;
}

static gm_status instance_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *id = NULL;
    char token[96];
    gm_status st = gm_n_adopt_or_intent(e, n, &gm_ops_instance, &id, token, sizeof token, err);
    if (st == GM_OK && !id) {
        char *efs = gm_e_id(e, "efs");
        char *userdata = NULL;
        size_t size = 0;
        st = build_userdata(e, efs, &userdata, &size, err);
        free(efs);
        if (st == GM_OK) {
            char sz[32];
            snprintf(sz, sizeof sz, "%zu", size);
            gm_e_set_output(e, n, "userdata_bytes", sz);
            st = launch_with_failover(e, n, token, userdata, &id, err);
        }
        free(userdata);
        if (st == GM_OK)
            st = gm_e_journal_id(e, n, id, err);
    }
    if (st == GM_OK && !(e->cfg->no_wait))
        st = wait_running(e, n, id, err);
    free(id);
    return st;
}

static gm_status instance_state(gm_engine *e, gm_params *p, char *state, size_t size, gm_error *err)
{
    static const char *const gone[] = {"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed",
                                       NULL};
    xmlDocPtr doc = NULL;
    *state = '\0';
    gm_status st = gm_e_ec2_call(e, "DescribeInstances", p, &doc, gone, err);
    if (st == GM_OK) {
        xmlNodePtr item =
            gm_xml_child(gm_xml_find(xmlDocGetRootElement(doc), "instancesSet"), "item");
        gm_xml_text_to(item, "instanceState/name", state, size);
        if (!item)
            snprintf(state, size, "terminated");
    }
    xmlFreeDoc(doc);
    return st;
}

static gm_status instance_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    static const char *const gone[] = {"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed",
                                       NULL};
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InstanceId.1", id);
    char state[32];
    gm_status st = instance_state(e, &p, state, sizeof state, err);
    if (st == GM_OK && strcmp(state, "terminated") != 0)
        st = gm_e_ec2_call(e, "TerminateInstances", &p, NULL, gone, err);
    /* Its network interface holds the security group and subnet until it is
     * terminated: wait for that. */
    while (st == GM_OK && strcmp(state, "terminated") != 0) {
        st = instance_state(e, &p, state, sizeof state, err);
        if (st == GM_OK && strcmp(state, "terminated") != 0)
            st = gm_e_wait(e, e->poll_ms, "waiting for the instance to terminate", err);
    }
    gm_params_release(&p);
    return st;
}

static gm_status instance_inspect(gm_engine *e, gm_node_run *n, const char *id, json_t *live,
                                  gm_error *err)
{
    gm_status st = gm_n_inspect_ec2(e, "DescribeInstances", "InstanceId.1", id, "instancesSet",
                                    "instanceState/name", live, err);
    const char *state = json_string_value(json_object_get(live, "state"));
    if (st == GM_OK && state && strcmp(state, "running") != 0)
        json_array_append_new(json_object_get(live, "drift"),
                              json_sprintf("instance is %s", state));
    return st;
}

const gm_node_ops gm_ops_instance = {
    "instance",       "launching the instance", true, instance_create, instance_find,
    instance_destroy, instance_inspect};
