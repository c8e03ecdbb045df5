/* The deployment record as the engine writes and reads it: the saved config,
 * a new record with its reused resources, and what the record says about the
 * running stack (summary, endpoints, health URL). Only the engine knows the
 * graph's node names and the layout of the saved config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "core/crypto.h"
#include "cost/estimate.h"
#include "engine/engine.h"
#include "engine/nodes.h"
#include "engine/plan.h"
#include "health/health.h"
#include "stack/secrets.h"
#include "stack/stack.h"
#include "stack/validate.h"

/* ---- the saved config --------------------------------------------------------- */

static json_t *string_array(const char *const *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            a = NULL;
        }
    return a;
}

static json_t *market_json(const gm_deploy_config *cfg)
{
    json_t *m = json_pack("{s:o, s:b, s:f, s:f, s:f}", "instance_types",
                          string_array(cfg->instance_types, cfg->n_types), "spot_only",
                          cfg->spot_only, "max_spot_price", cfg->max_spot_price, "min_spot_saving",
                          cfg->min_spot_saving, "budget_monthly", cfg->budget_monthly);
    if (m && cfg->n_azs && json_object_set_new(m, "azs", string_array(cfg->azs, cfg->n_azs)) != 0)
        json_decref(m), m = NULL;
    if (m && cfg->types_named && json_object_set_new(m, "types_named", json_true()) != 0)
        json_decref(m), m = NULL;
    if (m && cfg->assume_efs_gb > 0 &&
        json_object_set_new(m, "assume_efs_gb", json_real(cfg->assume_efs_gb)) != 0)
        json_decref(m), m = NULL;
    if (m && cfg->assume_transfer_gb > 0 &&
        json_object_set_new(m, "assume_transfer_gb", json_real(cfg->assume_transfer_gb)) != 0)
        json_decref(m), m = NULL;
    return m;
}

/* The image overrides: {"n8n": "n8nio/n8n:2.42.0"}. NULL without memory. */
static json_t *images_json(const gm_deploy_config *cfg)
{
    json_t *o = json_object();
    for (int i = 0; o && i < cfg->n_images && i < GM_MAX_IMAGES; i++)
        if (json_object_set_new(o, cfg->image_services[i], json_string(cfg->image_refs[i])) != 0)
            json_decref(o), o = NULL;
    return o;
}

/* The settings of the instance itself: its system, its data volume, its
 * models and images. */
static json_t *with_instance_settings(json_t *c, const gm_deploy_config *cfg)
{
    int data_gb = cfg->data_volume_gb ? cfg->data_volume_gb : GM_DATA_VOLUME_GB_DEFAULT;
    if (c && (json_object_set_new(c, "os", json_string(gm_os_option_name(cfg->os))) != 0 ||
              json_object_set_new(c, "data_volume_gb", json_integer(data_gb)) != 0))
        json_decref(c), c = NULL;
    if (c && cfg->models_set &&
        json_object_set_new(c, "models", string_array(cfg->models, cfg->n_models)) != 0)
        json_decref(c), c = NULL;
    if (c && cfg->n_images > 0 && json_object_set_new(c, "images", images_json(cfg)) != 0)
        json_decref(c), c = NULL;
    if (c && cfg->ami && json_object_set_new(c, "ami", json_string(cfg->ami)) != 0)
        json_decref(c), c = NULL;
    return c;
}

/* The waits of the deploy itself. */
static json_t *with_waits(json_t *c, const gm_deploy_config *cfg)
{
    if (c && cfg->launch_timeout_ms > 0 &&
        json_object_set_new(c, "launch_timeout_ms", json_integer(cfg->launch_timeout_ms)) != 0)
        json_decref(c), c = NULL;
    return c;
}

static json_t *config_json(const gm_deploy_config *cfg)
{
    json_t *alb =
        json_pack("{s:s?, s:I, s:i, s:i, s:i, s:i}", "certificate_arn", cfg->certificate_arn,
                  "alb_timeout_ms", (json_int_t)cfg->alb_timeout_ms, "hc_interval_s",
                  cfg->hc_interval_s, "hc_timeout_s", cfg->hc_timeout_s, "healthy_threshold",
                  cfg->healthy_threshold, "unhealthy_threshold", cfg->unhealthy_threshold);
    return with_waits(
        with_instance_settings(
            json_pack(
                "{s:s, s:s, s:b, s:o, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:b, s:b, s:I, s:I, "
                "s:o, s:o}",
                "tier", gm_tier_name(cfg->tier), "instance_type", cfg->instance_type, "spot",
                cfg->spot, "allow_cidrs", string_array(cfg->cidrs, cfg->n_cidrs), "key_name",
                cfg->key_name, "vpc_id", cfg->vpc_id, "subnet_a", cfg->subnet_ids[0], "subnet_b",
                cfg->subnet_ids[1], "security_group_id", cfg->security_group_id, "efs_id",
                cfg->efs_id, "no_rollback", cfg->no_rollback, "no_wait", cfg->no_wait, "timeout_ms",
                (json_int_t)cfg->timeout_ms, "health_timeout_ms",
                (json_int_t)cfg->health_timeout_ms, "load_balancer", alb, "market",
                market_json(cfg)),
            cfg),
        cfg);
}

/* The image overrides of a saved config (strings into it); a record made
 * before --image has none. */
static int images_from(const json_t *o, const char **services, const char **refs)
{
    int n = 0;
    const char *key;
    const json_t *v;
    json_object_foreach ((json_t *)o, key, v) {
        if (n < GM_MAX_IMAGES && json_string_value(v)) {
            services[n] = key;
            refs[n++] = json_string_value(v);
        }
    }
    return n;
}

/* Copies the strings of a JSON array into out (at most max). */
static int strings_from(const json_t *a, const char **out, int max)
{
    int n = 0;
    size_t i;
    const json_t *v;
    json_array_foreach (a, i, v) {
        if (n < max && json_string_value(v))
            out[n++] = json_string_value(v);
    }
    return n;
}

gm_status gm_engine_config_from_record(const gm_deployment *dep, gm_deploy_config *cfg,
                                       gm_error *err)
{
    const json_t *c = dep->config;
    const char *type = json_string_value(json_object_get(c, "instance_type"));
    if (!type)
        return gm_error_set(err, GM_ERR_PARSE, "state of '%s' has no instance_type in its config",
                            dep->name);
    if (!gm_tier_parse(dep->tier, &cfg->tier))
        return gm_error_set(err, GM_ERR_PARSE, "state of '%s' has an unknown tier '%s'", dep->name,
                            dep->tier);
    const char *os = json_string_value(json_object_get(c, "os"));
    if (os && !gm_os_parse(os, &cfg->os))
        return gm_error_set(err, GM_ERR_PARSE, "state of '%s' has an unknown os '%s'", dep->name,
                            os);
    if (!os)
        cfg->os = GM_OS_AL2023; /* a record made before --os */
    json_int_t data_gb = json_integer_value(json_object_get(c, "data_volume_gb"));
    cfg->data_volume_gb =
        data_gb > 0 && data_gb <= GM_DATA_VOLUME_GB_MAX ? (int)data_gb : GM_DATA_VOLUME_GB_DEFAULT;
    const json_t *models = json_object_get(c, "models");
    cfg->models_set = json_is_array(models);
    cfg->n_models = strings_from(models, cfg->models, GM_MAX_MODELS);
    cfg->n_images = images_from(json_object_get(c, "images"), cfg->image_services, cfg->image_refs);
    cfg->ami = json_string_value(json_object_get(c, "ami"));
    cfg->name = dep->name;
    cfg->instance_type = type;
    cfg->spot = json_is_true(json_object_get(c, "spot"));
    cfg->n_cidrs = strings_from(json_object_get(c, "allow_cidrs"), cfg->cidrs, GM_MAX_CIDRS);
    cfg->key_name = json_string_value(json_object_get(c, "key_name"));
    cfg->no_rollback = json_is_true(json_object_get(c, "no_rollback"));
    cfg->timeout_ms = json_integer_value(json_object_get(c, "timeout_ms"));
    cfg->health_timeout_ms = json_integer_value(json_object_get(c, "health_timeout_ms"));
    cfg->launch_timeout_ms = json_integer_value(json_object_get(c, "launch_timeout_ms"));
    const json_t *mk = json_object_get(c, "market");
    cfg->n_types =
        strings_from(json_object_get(mk, "instance_types"), cfg->instance_types, GM_MAX_TYPES);
    cfg->n_azs = strings_from(json_object_get(mk, "azs"), cfg->azs, GM_MAX_AZS);
    cfg->spot_only = json_is_true(json_object_get(mk, "spot_only"));
    cfg->max_spot_price = json_number_value(json_object_get(mk, "max_spot_price"));
    cfg->min_spot_saving = json_number_value(json_object_get(mk, "min_spot_saving"));
    cfg->budget_monthly = json_number_value(json_object_get(mk, "budget_monthly"));
    cfg->types_named = json_is_true(json_object_get(mk, "types_named"));
    cfg->assume_efs_gb = json_number_value(json_object_get(mk, "assume_efs_gb"));
    cfg->assume_transfer_gb = json_number_value(json_object_get(mk, "assume_transfer_gb"));
    const json_t *alb = json_object_get(c, "load_balancer");
    cfg->certificate_arn = json_string_value(json_object_get(alb, "certificate_arn"));
    cfg->alb_timeout_ms = json_integer_value(json_object_get(alb, "alb_timeout_ms"));
    cfg->hc_interval_s = (int)json_integer_value(json_object_get(alb, "hc_interval_s"));
    cfg->hc_timeout_s = (int)json_integer_value(json_object_get(alb, "hc_timeout_s"));
    cfg->healthy_threshold = (int)json_integer_value(json_object_get(alb, "healthy_threshold"));
    cfg->unhealthy_threshold = (int)json_integer_value(json_object_get(alb, "unhealthy_threshold"));
    return GM_OK;
}

/* ---- a new record --------------------------------------------------------------- */

static GM_MUST_CHECK gm_status mark_reused(gm_deployment *dep, const char *node, const char *kind,
                                           const char *id)
{
    gm_node_state *n = gm_deployment_ensure_node(dep, node, kind);
    if (!n || gm_node_state_set_id(n, id) != GM_OK)
        return GM_ERR_NOMEM;
    n->provenance = GM_PROV_REUSED;
    n->status = GM_NODE_CREATED;
    return GM_OK;
}

/* A reused VPC brings its subnets (with their zones) and its own routing. */
static GM_MUST_CHECK gm_status mark_reused_vpc(gm_deployment *dep, const gm_deploy_config *cfg,
                                               const char azs[2][64])
{
    gm_status st = mark_reused(dep, "vpc", "vpc", cfg->vpc_id);
    for (int i = 0; st == GM_OK && i < 2; i++) {
        const char *node = i ? "subnet_b" : "subnet_a";
        st = mark_reused(dep, node, "subnet", cfg->subnet_ids[i]);
        if (st == GM_OK && json_object_set_new(gm_deployment_node(dep, node)->outputs, "az",
                                               json_string(azs ? azs[i] : "")) != 0)
            st = GM_ERR_NOMEM;
    }
    if (st == GM_OK)
        st = mark_reused(dep, "vpc_dns", "vpc_dns", cfg->vpc_id);
    if (st == GM_OK)
        st = mark_reused(dep, "igw", "igw", "-");
    if (st == GM_OK)
        st = mark_reused(dep, "route_table", "route_table", "-");
    if (st == GM_OK)
        st = mark_reused(dep, "azs", "azs", "-");
    return st;
}

static GM_MUST_CHECK gm_status fill_record(gm_deployment *dep, const gm_deploy_config *cfg,
                                           const char azs[2][64])
{
    json_decref(dep->config);
    dep->config = config_json(cfg);
    json_decref(dep->cost);
    gm_cost_assumptions a;
    gm_engine_assumptions(cfg, &a);
    dep->cost = gm_cost_estimate(cfg->instance_type, cfg->spot, gm_tier_has_alb(cfg->tier), &a);
    if (!dep->config || !dep->cost)
        return GM_ERR_NOMEM;
    gm_status st = GM_OK;
    if (cfg->vpc_id)
        st = mark_reused_vpc(dep, cfg, azs);
    if (st == GM_OK && cfg->security_group_id) {
        st = mark_reused(dep, "sg", "security_group", cfg->security_group_id);
        if (st == GM_OK)
            st = mark_reused(dep, "sg_rules", "sg_rules", cfg->security_group_id);
    }
    if (st == GM_OK && cfg->efs_id)
        st = mark_reused(dep, "efs", "efs", cfg->efs_id);
    if (st == GM_OK)
        gm_deployment_add_event(dep, "deploy", NULL, "deploy started");
    return st;
}

gm_status gm_engine_record_new(const gm_deploy_config *cfg, const char *region,
                               const char reused_azs[2][64], gm_deployment **out, gm_error *err)
{
    *out = NULL;
    gm_deployment *dep = gm_deployment_new(cfg->name, gm_tier_name(cfg->tier), region);
    if (!dep || fill_record(dep, cfg, reused_azs) != GM_OK) {
        gm_deployment_free(dep);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    /* The deployment's identity: every resource will carry it. */
    gm_status st = gm_random_id(dep->deployment_id, GM_DEPLOYMENT_ID_LEN, err);
    if (st != GM_OK) {
        gm_deployment_free(dep);
        return st;
    }
    *out = dep;
    return GM_OK;
}

/* ---- what the record says ------------------------------------------------------- */

static const gm_node_state *node_of(const gm_deployment *dep, const char *name)
{
    for (size_t i = 0; i < dep->n_nodes; i++)
        if (strcmp(dep->nodes[i].name, name) == 0)
            return &dep->nodes[i];
    return NULL;
}

static const char *output_of(const gm_deployment *dep, const char *node, const char *key)
{
    const gm_node_state *n = node_of(dep, node);
    const char *v = n ? json_string_value(json_object_get(n->outputs, key)) : NULL;
    return v && *v ? v : NULL;
}

/* How many launches the group reported refused, and the last one's code. */
static void launch_attempts(const char *text, gm_engine_summary *s)
{
    json_t *a = text ? json_loads(text, 0, NULL) : NULL;
    size_t i;
    json_t *v;
    json_array_foreach (a, i, v) {
        const char *result = json_string_value(json_object_get(v, "result"));
        if (!result || strcmp(result, "launched") == 0)
            continue;
        s->refused++;
        snprintf(s->last_refusal, sizeof s->last_refusal, "%s", result);
    }
    json_decref(a);
}

void gm_engine_summary_of(const gm_deployment *dep, gm_engine_summary *s)
{
    memset(s, 0, sizeof *s);
    /* The group's current instance (a record of an older version: its
     * "instance" node). */
    const gm_node_state *group = node_of(dep, GM_NODE_ASG);
    const char *node = group ? GM_NODE_ASG : "instance";
    const gm_node_state *inst = node_of(dep, node);
    bool alive = inst && inst->status != GM_NODE_DELETED;
    s->instance_id = !alive ? NULL : group ? output_of(dep, node, "instance_id") : inst->id;
    if (s->instance_id && !*s->instance_id) /* stopped: none */
        s->instance_id = NULL;
    s->instance_type = output_of(dep, node, "instance_type");
    if (!s->instance_type)
        s->instance_type = json_string_value(json_object_get(dep->config, "instance_type"));
    s->market = output_of(dep, node, "market");
    if (!s->market)
        s->market = json_is_true(json_object_get(dep->config, "spot")) ? "spot" : "on-demand";
    /* The Elastic IP stays when the group replaces the instance. */
    const gm_node_state *eip = node_of(dep, "eip");
    s->elastic_ip = eip && eip->status == GM_NODE_CREATED;
    s->public_ip = s->elastic_ip ? output_of(dep, "eip", "public_ip") : NULL;
    if (!s->public_ip)
        s->public_ip = output_of(dep, node, "public_ip");
    const gm_node_state *alb = node_of(dep, "alb");
    if (alb && alb->status == GM_NODE_CREATED)
        s->alb_dns = output_of(dep, "alb", "dns");
    s->https_alb = json_string_value(json_object_get(json_object_get(dep->config, "load_balancer"),
                                                     "certificate_arn")) != NULL;
    s->az = output_of(dep, node, "az");
    s->group = group && group->status != GM_NODE_DELETED ? group->id : NULL;
    s->market_switch = output_of(dep, node, "market_switch");
    launch_attempts(output_of(dep, node, "launch_attempts"), s);
}

/* The nodes gm_engine_summary_of reads. */
static bool is_list_node(const char *name)
{
    static const char *const kept[] = {"instance", GM_NODE_ASG, "eip", "alb"};
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++)
        if (strcmp(name, kept[i]) == 0)
            return true;
    return false;
}

json_t *gm_engine_list_record(const gm_deployment *dep)
{
    json_t *j = gm_deployment_to_json(dep);
    json_t *nodes = json_array();
    json_t *cost = json_object();
    size_t i;
    json_t *n;
    json_array_foreach (json_object_get(j, "nodes"), i, n) {
        const char *name = json_string_value(json_object_get(n, "name"));
        if (nodes && name && is_list_node(name) && json_array_append(nodes, n) != 0)
            json_decref(nodes), nodes = NULL;
    }
    /* Of the config, what gm_engine_summary_of reads. */
    const json_t *lb = json_object_get(dep->config, "load_balancer");
    json_t *config = json_pack("{s:O?, s:O?, s:{s:O?}}", "instance_type",
                               json_object_get(dep->config, "instance_type"), "spot",
                               json_object_get(dep->config, "spot"), "load_balancer",
                               "certificate_arn", json_object_get(lb, "certificate_arn"));
    if (!config || json_object_set_new(j, "config", config) != 0)
        json_decref(nodes), nodes = NULL;
    json_t *hourly = json_object_get(dep->cost, "hourly");
    if (cost && hourly && json_object_set(cost, "hourly", hourly) != 0)
        json_decref(cost), cost = NULL;
    if (!j || !nodes || !cost) {
        json_decref(j);
        json_decref(nodes);
        json_decref(cost);
        return NULL;
    }
    /* Each set takes its value, also when it fails. */
    int bad = json_object_set_new(j, "nodes", nodes);
    bad |= json_object_set_new(j, "cost", cost);
    bad |= json_object_set_new(j, "events", json_array());
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

json_t *gm_engine_endpoints(const gm_deployment *dep)
{
    gm_engine_summary s;
    gm_engine_summary_of(dep, &s);
    json_t *ep = json_object();
    char base[300] = "";
    if (s.alb_dns) {
        snprintf(base, sizeof base, "%s://%s", s.https_alb ? "https" : "http", s.alb_dns);
        json_object_set_new(ep, "load_balancer", json_string(s.alb_dns));
    } else if (s.public_ip) {
        snprintf(base, sizeof base, "https://%s", s.public_ip);
    }
    if (ep && *base) {
        /* Every service goes through nginx; the APIs need their own key or
         * token (geusemaker secrets NAME). */
        json_object_set_new(ep, "n8n", json_sprintf("%s/", base));
        json_object_set_new(ep, "qdrant", json_sprintf("%s/qdrant/ (api-key header)", base));
        json_object_set_new(ep, "crawl4ai", json_sprintf("%s/crawl4ai/ (bearer token)", base));
        json_object_set_new(ep, "ollama", json_sprintf("%s/ollama/ (bearer token)", base));
        json_object_set_new(ep, "health", json_sprintf("%s%s", base, GM_HEALTH_PATH));
    }
    return ep;
}

gm_status gm_engine_health_url(gm_aws_client *aws, const gm_deployment *dep,
                               const char *health_endpoint, bool *out_skip, char **out_url,
                               gm_error *err)
{
    gm_engine_summary s;
    gm_engine_summary_of(dep, &s);
    char *endpoint = gm_aws_endpoint(aws, &gm_svc_ec2);
    gm_health_target_kind kind = GM_HEALTH_TARGET_SKIP;
    gm_status st = gm_health_target(endpoint, s.public_ip, health_endpoint, &kind, out_url, err);
    free(endpoint);
    *out_skip = st == GM_OK && kind == GM_HEALTH_TARGET_SKIP;
    return st;
}

gm_status gm_engine_secrets_read(gm_aws_client *aws, const char *name, json_t **out, gm_error *err)
{
    *out = NULL;
    char *prefix = gm_stack_default_ssm_prefix(name);
    json_t *names = json_array();
    for (int i = 0; prefix && names && i < GM_SECRET_COUNT; i++) {
        char *pn = gm_secret_parameter_name(prefix, (gm_secret_id)i);
        if (!pn || json_array_append_new(names, json_string(pn)) != 0)
            json_decref(names), names = NULL;
        free(pn);
    }
    json_t *body = names ? json_pack("{s:o, s:b}", "Names", names, "WithDecryption", 1) : NULL;
    json_t *answer = NULL;
    gm_status st = body ? gm_aws_json(aws, &gm_svc_ssm, "GetParameters", body, &answer, err)
                        : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    json_decref(body);
    gm_read_rows rows;
    if (st == GM_OK)
        st = gm_ssm_read_parameters(answer, &rows, err);
    json_decref(answer);
    json_t *result = st == GM_OK ? json_object() : NULL;
    for (size_t i = 0; result && i < rows.n; i++) {
        const char *pn = gm_read_get(&rows, i, GM_SSM_NAME);
        size_t pl = strlen(prefix);
        const char *key = strncmp(pn, prefix, pl) == 0 ? pn + pl : pn;
        json_object_set_new(result, key, json_string(gm_read_get(&rows, i, GM_SSM_VALUE)));
    }
    if (st == GM_OK) {
        gm_read_rows_release(&rows);
        if (!result)
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    free(prefix);
    *out = result;
    return st;
}

json_t *gm_engine_doomed(const gm_deployment *dep, bool keep_efs)
{
    json_t *out = json_array();
    for (size_t i = 0; out && i < dep->n_nodes; i++) {
        const gm_node_state *n = &dep->nodes[i];
        bool efs = strcmp(n->kind, gm_ops_efs.kind) == 0;
        bool fs_part = efs || strcmp(n->kind, gm_ops_mount_target.kind) == 0;
        if (!n->id || strcmp(n->id, "-") == 0 || n->provenance == GM_PROV_REUSED ||
            n->status == GM_NODE_DELETED || (keep_efs && fs_part))
            continue;
        json_array_append_new(
            out, json_pack("{s:s, s:s, s:b}", "kind", n->kind, "id", n->id, "data", efs));
    }
    return out;
}

json_t *gm_engine_config_to_json(const gm_deploy_config *cfg)
{
    return config_json(cfg);
}
