/* The Auto Scaling group that keeps the stack's one instance alive: min = max
 * = desired = 1 across the deployment's two subnets, from the launch
 * template, with the ranked candidate types as a mixed instances policy
 * (prioritised overrides, capacity-optimized-prioritized spot, capacity
 * rebalancing). AWS replaces a reclaimed or failed instance by itself; the
 * node's outputs name the current instance. Waiting for the first instance
 * (and moving to on-demand when spot is refused everywhere) is in
 * nodes_asg_wait.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "core/str.h"
#include "cost/rank.h"
#include "engine/nodes.h"

/* ---- the group's instances (EC2) ------------------------------------------- */

gm_status gm_n_describe_instances(gm_node *n, const gm_params *p, const char *const *ok_codes,
                                  gm_read_rows *rows, gm_error *err)
{
    xmlDocPtr doc = NULL;
    gm_read_rows_init(rows);
    gm_status st = gm_n_ec2(n, "DescribeInstances", p, &doc, ok_codes, err);
    if (st == GM_OK && doc)
        st = gm_read_xml(doc, &gm_ec2_instances, rows, err);
    xmlFreeDoc(doc);
    return st;
}

static const char *const INSTANCE_GONE[] = {"InvalidInstanceID.NotFound",
                                            "InvalidInstanceID.Malformed", NULL};

/* How many of ids are not terminated yet (EC2 no longer knowing one counts
 * as terminated). */
static GM_MUST_CHECK gm_status count_alive(gm_node *n, const gm_ids *ids, size_t *out,
                                           gm_error *err)
{
    *out = 0;
    if (ids->n == 0)
        return GM_OK;
    gm_params p;
    gm_params_init(&p);
    for (size_t i = 0; i < ids->n; i++)
        gm_params_addf(&p, ids->v[i], "InstanceId.%zu", i + 1);
    gm_read_rows rows;
    gm_status st = gm_n_describe_instances(n, &p, INSTANCE_GONE, &rows, err);
    gm_params_release(&p);
    for (size_t i = 0; st == GM_OK && i < rows.n; i++)
        if (strcmp(gm_read_get(&rows, i, GM_EC2_I_STATE), "terminated") != 0)
            (*out)++;
    gm_read_rows_release(&rows);
    return st;
}

/* Waits until every instance of ids is terminated: their network interfaces
 * hold the security group and the subnets until then. */
gm_status gm_n_wait_terminated(gm_node *n, const gm_ids *ids, gm_error *err)
{
    for (;;) {
        size_t alive = 0;
        gm_status st = count_alive(n, ids, &alive, err);
        if (st != GM_OK || alive == 0)
            return st;
        st = gm_node_wait(n, gm_node_poll_ms(n), "waiting for the instances to terminate", err);
        if (st != GM_OK)
            return st;
    }
}

gm_status gm_n_terminate_instance(gm_node *n, const char *id, gm_error *err)
{
    gm_ids ids = {0};
    gm_status st = gm_ids_add(&ids, id, err);
    size_t alive = 0;
    if (st == GM_OK)
        st = count_alive(n, &ids, &alive, err);
    if (st == GM_OK && alive) {
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "InstanceId.1", id);
        st = gm_n_ec2(n, "TerminateInstances", &p, NULL, INSTANCE_GONE, err);
        gm_params_release(&p);
    }
    if (st == GM_OK)
        st = gm_n_wait_terminated(n, &ids, err);
    gm_ids_release(&ids);
    return st;
}

gm_status gm_n_instance_owner(gm_node *n, const char *id, gm_owner *out, char *why, size_t why_size,
                              gm_error *err)
{
    gm_status st = gm_n_owner_ec2(n, id, "DescribeInstances", "InstanceId.1",
                                  "reservationSet/item/instancesSet/item", out, why, why_size, err);
    if (st != GM_OK || *out == GM_OWNER_GONE)
        return st;
    gm_ids ids = {0};
    size_t alive = 0;
    st = gm_ids_add(&ids, id, err);
    if (st == GM_OK)
        st = count_alive(n, &ids, &alive, err);
    if (st == GM_OK && !alive)
        *out = GM_OWNER_GONE;
    gm_ids_release(&ids);
    return st;
}

static bool is_instance_id(const char *id)
{
    return gm_str_startswith(id, "i-");
}

/* ---- describing the group ---------------------------------------------------- */

gm_status gm_n_asg_describe(gm_node *n, const char *group, xmlDocPtr *out_doc, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "AutoScalingGroupNames.member.1", group);
    gm_status st =
        gm_n_query(n, &gm_svc_autoscaling, "DescribeAutoScalingGroups", &p, out_doc, NULL, err);
    gm_params_release(&p);
    return st;
}

gm_status gm_n_asg_read(gm_node *n, const char *group, const gm_read_spec *spec, gm_read_rows *rows,
                        gm_error *err)
{
    xmlDocPtr doc = NULL;
    gm_status st = gm_n_asg_describe(n, group, &doc, err);
    if (st == GM_OK)
        st = gm_read_xml(doc, spec, rows, err);
    else
        gm_read_rows_init(rows);
    xmlFreeDoc(doc);
    return st;
}

gm_status gm_n_asg_in_service(const gm_read_rows *instances, size_t *out_row)
{
    for (size_t i = 0; i < instances->n; i++)
        if (strcmp(gm_read_get(instances, i, GM_ASG_I_LIFECYCLE), "InService") == 0 &&
            strcmp(gm_read_get(instances, i, GM_ASG_I_HEALTH), "Unhealthy") != 0) {
            *out_row = i;
            return GM_OK;
        }
    return GM_ERR_NOT_FOUND;
}

gm_status gm_n_asg_current_instance(gm_node *n, char **out_id, gm_error *err)
{
    *out_id = NULL;
    char *group = gm_node_id_of(n, GM_NODE_ASG);
    if (!group)
        return GM_OK;
    gm_read_rows rows;
    gm_status st = gm_n_asg_read(n, group, &gm_asg_instances, &rows, err);
    size_t row = 0;
    if (st == GM_OK && gm_n_asg_in_service(&rows, &row) == GM_OK)
        *out_id = gm_read_dup(&rows, row, GM_ASG_I_ID);
    gm_read_rows_release(&rows);
    free(group);
    return st;
}

gm_status gm_n_asg_record_row(gm_node *n, const gm_read_rows *rows, size_t row,
                              const char *group_market, gm_error *err)
{
    static const struct {
        const char *key;
        int field;
    } outs[] = {{"instance_id", GM_EC2_I_ID},
                {"public_ip", GM_EC2_I_PUBLIC_IP},
                {"private_ip", GM_EC2_I_PRIVATE_IP},
                {"az", GM_EC2_I_AZ},
                {"instance_type", GM_EC2_I_TYPE}};
    gm_status st = GM_OK;
    for (size_t i = 0; st == GM_OK && i < sizeof outs / sizeof *outs; i++)
        st = gm_node_set_output(n, outs[i].key, gm_read_get(rows, row, outs[i].field), err);
    /* With OnDemandBaseCapacity 0 every instance has the group's market. */
    const char *lifecycle = gm_read_get(rows, row, GM_EC2_I_LIFECYCLE);
    if (st == GM_OK)
        st = gm_node_set_output(n, "market", *lifecycle ? lifecycle : group_market, err);
    return st;
}

/* Where the instance runs: its addresses, zone and type (DescribeInstances:
 * the group does not say), and the market it was launched in. */
gm_status gm_n_asg_record_instance(gm_node *n, const char *instance, const char *group_market,
                                   bool *out_seen, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InstanceId.1", instance);
    gm_read_rows rows;
    /* EC2 is eventually consistent: the group can name an instance that
     * DescribeInstances does not know yet. */
    static const char *const not_yet[] = {"InvalidInstanceID.NotFound", NULL};
    gm_status st = gm_n_describe_instances(n, &p, not_yet, &rows, err);
    *out_seen = st == GM_OK && rows.n > 0;
    gm_params_release(&p);
    if (st == GM_OK && rows.n)
        st = gm_n_asg_record_row(n, &rows, 0, group_market, err);
    gm_read_rows_release(&rows);
    return st;
}

gm_status gm_n_asg_group_instances(gm_node *n, const char *group, gm_read_rows *rows, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "Filter.1.Name", "tag:aws:autoscaling:groupName");
    gm_params_add(&p, "Filter.1.Value.1", group);
    gm_params_add(&p, "Filter.2.Name", "instance-state-name");
    gm_params_add(&p, "Filter.2.Value.1", "pending");
    gm_params_add(&p, "Filter.2.Value.2", "running");
    gm_status st = gm_n_describe_instances(n, &p, NULL, rows, err);
    gm_params_release(&p);
    return st;
}

/* ---- the mixed instances policy ---------------------------------------------- */

void gm_n_asg_policy_params(const gm_n_asg_policy *pol, const char *lt, const char *version,
                            gm_params *p)
{
    gm_params_add(p,
                  "MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification."
                  "LaunchTemplateId",
                  lt);
    gm_params_add(p, "MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification.Version",
                  version && *version ? version : "$Latest");
    for (size_t i = 0; i < pol->n_types; i++)
        gm_params_addf(p, pol->types[i],
                       "MixedInstancesPolicy.LaunchTemplate.Overrides.member.%zu.InstanceType",
                       i + 1);
#define DIST "MixedInstancesPolicy.InstancesDistribution."
    /* The overrides' order is the ranking's: on-demand takes them in order,
     * spot too where capacity allows. */
    gm_params_add(p, DIST "OnDemandAllocationStrategy", "prioritized");
    gm_params_add(p, DIST "OnDemandBaseCapacity", "0");
    gm_params_add(p, DIST "OnDemandPercentageAboveBaseCapacity", pol->spot ? "0" : "100");
    gm_params_add(p, DIST "SpotAllocationStrategy", "capacity-optimized-prioritized");
    if (pol->spot && *pol->max_price)
        gm_params_add(p, DIST "SpotMaxPrice", pol->max_price);
#undef DIST
}

/* A price for SpotMaxPrice: USD per hour, without trailing zeros. */
static void format_price(double usd, char *out, size_t size)
{
    snprintf(out, size, "%.6f", usd);
    size_t len = strlen(out);
    while (len > 1 && out[len - 1] == '0' && out[len - 2] != '.')
        out[--len] = '\0';
}

/* Adds type to the policy's overrides unless it is there. */
static void add_type(gm_n_asg_policy *pol, const char *type)
{
    for (size_t i = 0; i < pol->n_types; i++)
        if (strcmp(pol->types[i], type) == 0)
            return;
    if (pol->n_types < GM_MAX_TYPES)
        snprintf(pol->types[pol->n_types++], sizeof pol->types[0], "%s", type);
}

void gm_n_asg_max_price(const gm_node *n, char *out, size_t size)
{
    out[0] = '\0';
    if (gm_node_config(n)->max_spot_price > 0)
        format_price(gm_node_config(n)->max_spot_price, out, size);
}

void gm_n_asg_policy_from(const gm_node *n, const gm_cost_ranking *plan, bool spot,
                          gm_n_asg_policy *pol)
{
    memset(pol, 0, sizeof *pol);
    pol->spot = spot;
    for (size_t i = 0; i < plan->n_viable; i++)
        if ((plan->viable[i].market == GM_MARKET_SPOT) == spot)
            add_type(pol, plan->viable[i].type);
    for (size_t i = 0; pol->n_types == 0 && i < plan->n_viable; i++)
        add_type(pol, plan->viable[i].type); /* no candidate of that market: the types */
    gm_n_asg_max_price(n, pol->max_price, sizeof pol->max_price);
}

/* ---- the group ----------------------------------------------------------------- */

static void group_name(const gm_node *n, char *out, size_t size)
{
    gm_node_global_name(n, "asg", out, size);
}

typedef struct group_ctx {
    const gm_n_asg_policy *pol;
    const char *lt;
    const char *subnets; /* "subnet-a,subnet-b" */
} group_ctx;

static void group_params(gm_node *n, const group_ctx *c, gm_params *p)
{
    char name[160];
    group_name(n, name, sizeof name);
    gm_params_add(p, "AutoScalingGroupName", name);
    gm_params_add(p, "MinSize", "1");
    gm_params_add(p, "MaxSize", "1");
    gm_params_add(p, "DesiredCapacity", "1");
    gm_params_add(p, "VPCZoneIdentifier", c->subnets);
    /* A spot instance at elevated risk of interruption is replaced before
     * it is reclaimed. */
    gm_params_add(p, "CapacityRebalance", "true");
    gm_n_asg_policy_params(c->pol, c->lt, NULL, p);
    gm_n_asg_tags(n, p, name);
}

/* IAM is eventually consistent: the group can refuse the template's new
 * instance profile for a few seconds. */
static bool is_profile_not_ready(const gm_error *err)
{
    return strcmp(err->aws_code, "ValidationError") == 0 &&
           (strstr(err->message, "nstance profile") || strstr(err->message, "nstance Profile") ||
            strstr(err->message, "iamInstanceProfile"));
}

/* CreateAutoScalingGroup has no token: sent once, looked up by its tags
 * after a lost answer or AlreadyExists (gm_n_create_once). */
static GM_MUST_CHECK gm_status send_group(gm_node *n, void *ctx, char **out_id, gm_error *err)
{
    group_ctx *c = ctx;
    int64_t backoff = 1000;
    for (;;) {
        gm_params p;
        gm_params_init(&p);
        group_params(n, c, &p);
        p.once = true;
        gm_error cerr = {0};
        xmlDocPtr doc = NULL;
        gm_status st = gm_aws_query(gm_node_aws(n), &gm_svc_autoscaling, "CreateAutoScalingGroup",
                                    &p, &doc, &cerr);
        xmlFreeDoc(doc);
        gm_params_release(&p);
        if (st == GM_OK) {
            char name[160];
            group_name(n, name, sizeof name);
            *out_id = strdup(name);
            return *out_id ? GM_OK : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        }
        if (!is_profile_not_ready(&cerr)) {
            *err = cerr;
            return st;
        }
        gm_node_note(n, "instance profile not visible to Auto Scaling yet; retrying in %lldms",
                     (long long)backoff);
        st = gm_node_wait(n, backoff, "waiting for the instance profile to propagate", err);
        if (st != GM_OK)
            return st;
        if (backoff < 8000)
            backoff *= 2;
    }
}

/* The subnets' zones, for the ranking. */
static char *subnet_az(gm_node *n, const char *subnet_node, const char *azs_key)
{
    char *az = gm_node_output_of(n, subnet_node, "az");
    return az ? az : gm_node_output_of(n, "azs", azs_key);
}

gm_status gm_n_asg_plan(gm_node *n, gm_cost_ranking *out, gm_error *err)
{
    char *a = subnet_az(n, "subnet_a", "az_a"), *b = subnet_az(n, "subnet_b", "az_b");
    const char *zones[2] = {a ? a : "", b ? b : ""};
    gm_status st = gm_n_launch_plan(n, zones, out, err);
    free(a);
    free(b);
    return st;
}

/* Records the policy the group was made with (a resume reads it back). */
gm_status gm_n_asg_record_overrides(gm_node *n, const gm_n_asg_policy *pol, gm_error *err)
{
    char list[GM_MAX_TYPES * GM_COST_TYPE_MAX] = "";
    size_t len = 0;
    for (size_t i = 0; i < pol->n_types && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? "," : "", pol->types[i]);
    return gm_node_set_output(n, "overrides", list, err);
}

static GM_MUST_CHECK gm_status record_policy(gm_node *n, const gm_n_asg_policy *pol, gm_error *err)
{
    gm_status st = gm_n_asg_record_overrides(n, pol, err);
    if (st == GM_OK)
        st = gm_node_set_output(n, "group_market", pol->spot ? "spot" : "on-demand", err);
    return st;
}

static GM_MUST_CHECK gm_status make_group(gm_node *n, gm_n_asg_launch *launch, char **out_id,
                                          gm_error *err)
{
    gm_status st = gm_n_asg_plan(n, &launch->plan, err);
    if (st != GM_OK)
        return st;
    launch->have_plan = true;
    bool spot = launch->plan.viable[0].market == GM_MARKET_SPOT;
    gm_n_asg_policy_from(n, &launch->plan, spot, &launch->pol);
    st = record_policy(n, &launch->pol, err);
    char *lt = gm_node_id_of(n, "launch_template");
    char *a = gm_node_id_of(n, "subnet_a"), *b = gm_node_id_of(n, "subnet_b");
    char *subnets = gm_strfmt("%s,%s", a ? a : "", b ? b : "");
    group_ctx c = {.pol = &launch->pol, .lt = lt ? lt : "", .subnets = subnets};
    static const char *const dup[] = {"AlreadyExists", NULL};
    if (st == GM_OK && !subnets)
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    if (st == GM_OK)
        st = gm_n_create_once(n, send_group, &c, dup, out_id, err);
    free(lt);
    free(a);
    free(b);
    free(subnets);
    return st;
}

static GM_MUST_CHECK gm_status asg_create(gm_node *n, gm_error *err)
{
    char *id = NULL;
    gm_n_asg_launch launch;
    memset(&launch, 0, sizeof launch);
    gm_cost_ranking_init(&launch.plan);
    gm_status st = gm_n_adopt_or_intent(n, &id, NULL, 0, err);
    if (st == GM_OK && !id) {
        st = make_group(n, &launch, &id, err);
        if (st == GM_OK)
            st = gm_node_created(n, id, err);
    }
    if (st == GM_OK && !gm_node_config(n)->no_wait)
        st = gm_n_asg_wait(n, id, &launch, err);
    gm_cost_ranking_release(&launch.plan);
    free(id);
    return st;
}

/* This deployment's groups, by their tags (every page). */
static GM_MUST_CHECK gm_status asg_find(gm_node *n, gm_ids *out, gm_error *err)
{
    const char *value;
    char tag[64];
    snprintf(tag, sizeof tag, "tag:%s", gm_n_owner_tag(n, &value));
    char *token = NULL;
    gm_status st = GM_OK;
    for (int page = 0; st == GM_OK && page < 100; page++) {
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "Filters.member.1.Name", tag);
        gm_params_add(&p, "Filters.member.1.Values.member.1", value);
        gm_params_add(&p, "Filters.member.2.Name", "tag:" GM_TAG_NODE);
        gm_params_add(&p, "Filters.member.2.Values.member.1", gm_node_name(n));
        if (token)
            gm_params_add(&p, "NextToken", token);
        xmlDocPtr doc = NULL;
        st = gm_n_query(n, &gm_svc_autoscaling, "DescribeAutoScalingGroups", &p, &doc, NULL, err);
        gm_params_release(&p);
        gm_read_rows rows, next;
        gm_read_rows_init(&next);
        if (st == GM_OK)
            st = gm_read_xml(doc, &gm_asg_groups, &rows, err);
        for (size_t i = 0; st == GM_OK && i < rows.n; i++)
            st = gm_ids_add(out, gm_read_get(&rows, i, GM_ASG_G_NAME), err);
        if (st == GM_OK) {
            gm_read_rows_release(&rows);
            st = gm_read_xml(doc, &gm_asg_next_token, &next, err);
        }
        xmlFreeDoc(doc);
        free(token);
        token = st == GM_OK ? gm_read_dup(&next, 0, 0) : NULL;
        gm_read_rows_release(&next);
        if (!token)
            break;
    }
    free(token);
    return st;
}

/* A group name AWS would take (1 to 255 characters, no control character);
 * anything else in the record is refused, never "gone". */
static bool group_name_ok(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
            return false;
    return true;
}

static GM_MUST_CHECK gm_status asg_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                         size_t why_size, gm_error *err)
{
    if (is_instance_id(id))
        return gm_n_instance_owner(n, id, out, why, why_size, err);
    if (!group_name_ok(id))
        return gm_error_set(err, GM_ERR_CONFLICT,
                            "the record names a malformed Auto Scaling group '%.64s'", id);
    xmlDocPtr doc = NULL;
    gm_status st = gm_n_asg_describe(n, id, &doc, err);
    gm_read_rows groups, tags;
    gm_read_rows_init(&groups);
    gm_read_rows_init(&tags);
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_asg_groups, &groups, err);
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_asg_tags, &tags, err);
    xmlFreeDoc(doc);
    if (st == GM_OK && groups.n == 0)
        *out = GM_OWNER_GONE;
    else if (st == GM_OK)
        gm_n_owner_from_tags(n, &tags, out, why, why_size);
    gm_read_rows_release(&groups);
    gm_read_rows_release(&tags);
    return st;
}

/* True when AWS says the group does not exist (ValidationError "not found"). */
static bool group_gone(const gm_error *err)
{
    return strcmp(err->aws_code, "ValidationError") == 0 && strstr(err->message, "not found");
}

/* The group's side of a poll, on its own thread: is it still there? */
typedef struct group_look {
    gm_node *n;
    const char *group;
    size_t left;
    gm_status st;
    gm_error err;
} group_look;

static void *look_group(void *arg)
{
    group_look *g = arg;
    gm_read_rows groups;
    g->st = gm_n_asg_read(g->n, g->group, &gm_asg_groups, &groups, &g->err);
    if (g->st == GM_OK) {
        g->left = groups.n;
        gm_read_rows_release(&groups);
    }
    return NULL;
}

/* This deployment's instances of the group's node that are not terminated
 * (by their tags: the group may have let go of one already); those still
 * running or stopped are put in *strays (they outlived the group's
 * termination or were never its: terminated by the caller). */
static GM_MUST_CHECK gm_status alive_by_tag(gm_node *n, size_t *out, gm_ids *strays, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_n_owner_filters(n, &p);
    gm_params_add(&p, "Filter.3.Name", "instance-state-name");
    static const char *const alive[] = {"pending", "running", "stopping", "stopped",
                                        "shutting-down"};
    for (size_t i = 0; i < sizeof alive / sizeof *alive; i++)
        gm_params_addf(&p, alive[i], "Filter.3.Value.%zu", i + 1);
    gm_read_rows rows;
    gm_status st = gm_n_describe_instances(n, &p, NULL, &rows, err);
    gm_params_release(&p);
    *out = 0;
    for (size_t i = 0; st == GM_OK && i < rows.n; i++) {
        const char *state = gm_read_get(&rows, i, GM_EC2_I_STATE);
        if (strcmp(state, "terminated") == 0)
            continue;
        (*out)++;
        if (strcmp(state, "shutting-down") != 0)
            st = gm_ids_add(strays, gm_read_get(&rows, i, GM_EC2_I_ID), err);
    }
    gm_read_rows_release(&rows);
    return st;
}

/* One poll after the delete: the group and the instances at once (one round
 * trip). *done when the group is gone and no instance of it is left. */
static GM_MUST_CHECK gm_status poll_deleted(gm_node *n, const char *id, bool *done, gm_ids *strays,
                                            gm_error *err)
{
    group_look g = {.n = n, .group = id};
    gm_n_beside beside;
    gm_n_beside_start(&beside, look_group, &g);
    size_t alive = 0;
    gm_status st = alive_by_tag(n, &alive, strays, err);
    gm_n_beside_join(&beside);
    if (st == GM_OK && g.st != GM_OK) {
        st = g.st;
        *err = g.err;
    }
    *done = st == GM_OK && g.left == 0 && alive == 0;
    return st;
}

/* ForceDelete terminates the group's instances with it; AWS keeps the group
 * ("Delete in progress") until they are gone. Each poll reads the group and
 * this deployment's instances of it by tag at once; an instance still running
 * once the group is gone (one it let go of, one launched by hand) is
 * terminated. Their network interfaces hold the subnets and the security
 * group until then. */
static GM_MUST_CHECK gm_status asg_destroy(gm_node *n, const char *id, gm_error *err)
{
    if (is_instance_id(id))
        return gm_n_terminate_instance(n, id, err);
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "AutoScalingGroupName", id);
    gm_params_add(&p, "ForceDelete", "true");
    gm_error derr = {0};
    xmlDocPtr doc = NULL;
    gm_status st = gm_aws_query(gm_node_aws(n), &gm_svc_autoscaling, "DeleteAutoScalingGroup", &p,
                                &doc, &derr);
    xmlFreeDoc(doc);
    gm_params_release(&p);
    if (st != GM_OK && group_gone(&derr))
        st = GM_OK;
    else if (st != GM_OK)
        *err = derr;
    for (int poll = 0; st == GM_OK; poll++) {
        bool done = false;
        gm_ids strays = {0};
        st = poll_deleted(n, id, &done, &strays, err);
        if (st == GM_OK && done) {
            gm_ids_release(&strays);
            break;
        }
        if (st == GM_OK && strays.n && poll > 0) {
            gm_params_init(&p);
            for (size_t i = 0; i < strays.n; i++)
                gm_params_addf(&p, strays.v[i], "InstanceId.%zu", i + 1);
            st = gm_n_ec2(n, "TerminateInstances", &p, NULL, INSTANCE_GONE, err);
            gm_params_release(&p);
        }
        gm_ids_release(&strays);
        if (st == GM_OK)
            st = gm_node_wait(n, gm_node_poll_ms(n),
                              "waiting for the group and its instances to go", err);
    }
    return st;
}

/* What EC2 says of the group's instance in live's "instance_state" (the
 * group may call an instance stopped behind its back InService until its
 * next health check). */
static GM_MUST_CHECK gm_status instance_state(gm_node *n, const char *instance, json_t *live,
                                              gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InstanceId.1", instance);
    xmlDocPtr doc = NULL;
    gm_status st = gm_n_ec2(n, "DescribeInstances", &p, &doc, INSTANCE_GONE, err);
    gm_params_release(&p);
    gm_read_rows rows;
    gm_read_rows_init(&rows);
    if (st == GM_OK && doc)
        st = gm_read_xml(doc, &gm_ec2_deployment_instances, &rows, err);
    xmlFreeDoc(doc);
    if (st == GM_OK) {
        json_object_set_new(
            live, "instance_state",
            json_string(rows.n ? gm_read_get(&rows, 0, GM_EC2_DI_STATE) : "missing"));
        if (rows.n)
            json_object_set_new(live, "since",
                                json_string(gm_read_get(&rows, 0, GM_EC2_DI_LAUNCHED)));
    }
    gm_read_rows_release(&rows);
    return st;
}

/* The group's last scaling activities (launches and terminations, newest
 * first, with their causes) in live's "activities". */
#define ACTIVITIES_SHOWN "5"
static GM_MUST_CHECK gm_status recent_activities(gm_node *n, const char *group, json_t *live,
                                                 gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "AutoScalingGroupName", group);
    gm_params_add(&p, "MaxRecords", ACTIVITIES_SHOWN);
    xmlDocPtr doc = NULL;
    gm_status st =
        gm_n_query(n, &gm_svc_autoscaling, "DescribeScalingActivities", &p, &doc, NULL, err);
    gm_params_release(&p);
    gm_read_rows rows;
    gm_read_rows_init(&rows);
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_asg_activities, &rows, err);
    xmlFreeDoc(doc);
    json_t *list = json_array();
    for (size_t i = 0; st == GM_OK && list && i < rows.n; i++) {
        const char *msg = gm_read_get(&rows, i, GM_ASG_A_MESSAGE);
        json_t *a =
            json_pack("{s:s, s:s, s:s, s:s, s:s?}", "start", gm_read_get(&rows, i, GM_ASG_A_START),
                      "status", gm_read_get(&rows, i, GM_ASG_A_STATUS), "description",
                      gm_read_get(&rows, i, GM_ASG_A_DESCRIPTION), "cause",
                      gm_read_get(&rows, i, GM_ASG_A_CAUSE), "message", *msg ? msg : NULL);
        if (!a || json_array_append_new(list, a) != 0)
            json_decref(list), list = NULL;
    }
    gm_read_rows_release(&rows);
    if (st == GM_OK && (!list || json_object_set_new(live, "activities", list) != 0))
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    if (st != GM_OK)
        json_decref(list);
    return st;
}

/* The live look refreshes the current instance (the group may have replaced
 * it): shown by status, not saved by it. */
static GM_MUST_CHECK gm_status asg_inspect(gm_node *n, const char *id, json_t *live, gm_error *err)
{
    xmlDocPtr doc = NULL;
    gm_status st = gm_n_asg_describe(n, id, &doc, err);
    gm_read_rows groups, instances;
    gm_read_rows_init(&groups);
    gm_read_rows_init(&instances);
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_asg_groups, &groups, err);
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_asg_instances, &instances, err);
    xmlFreeDoc(doc);
    size_t row = 0;
    bool serving = st == GM_OK && gm_n_asg_in_service(&instances, &row) == GM_OK;
    if (st == GM_OK) {
        json_object_set_new(live, "exists", json_boolean(groups.n > 0));
        const char *status = gm_read_get(&groups, 0, GM_ASG_G_STATUS);
        json_object_set_new(live, "state",
                            groups.n == 0 ? json_string("missing")
                            : *status     ? json_string(status)
                            : serving     ? json_string("in service")
                                          : json_string("no instance in service"));
        if (groups.n == 0)
            gm_n_drift(live, "missing");
        else if (!serving)
            gm_n_drift(live, "no instance in service");
    }
    if (serving) {
        const char *current = gm_read_get(&instances, row, GM_ASG_I_ID);
        json_object_set_new(live, "instance_id", json_string(current));
        st = gm_node_set_output(n, "instance_id", current, err);
        if (st == GM_OK)
            st = instance_state(n, current, live, err);
    }
    if (st == GM_OK && groups.n > 0)
        st = recent_activities(n, id, live, err);
    gm_read_rows_release(&groups);
    gm_read_rows_release(&instances);
    return st;
}

/* adopt: the current instance and where it runs. */
static GM_MUST_CHECK gm_status asg_read_back(gm_node *n, const char *id, gm_error *err)
{
    gm_read_rows instances, dist;
    gm_read_rows_init(&dist);
    gm_status st = gm_n_asg_read(n, id, &gm_asg_instances, &instances, err);
    if (st == GM_OK)
        st = gm_n_asg_read(n, id, &gm_asg_distribution, &dist, err);
    const char *market =
        strcmp(gm_read_get(&dist, 0, GM_ASG_D_ON_DEMAND_PERCENT), "0") == 0 ? "spot" : "on-demand";
    if (st == GM_OK)
        st = gm_node_set_output(n, "group_market", market, err);
    size_t row = 0;
    bool seen = false;
    if (st == GM_OK && gm_n_asg_in_service(&instances, &row) == GM_OK)
        st = gm_n_asg_record_instance(n, gm_read_get(&instances, row, GM_ASG_I_ID), market, &seen,
                                      err);
    gm_read_rows_release(&instances);
    gm_read_rows_release(&dist);
    return st;
}

const gm_node_ops gm_ops_asg = {
    .kind = "asg",
    .label = "launching the instance (Auto Scaling group)",
    .delete_label = "deleting the Auto Scaling group and its instance",
    .owns_resource = true,
    .swept_by_find = true,
    .create = asg_create,
    .find = asg_find,
    .destroy = asg_destroy,
    .owner = asg_owner,
    .inspect = asg_inspect,
    .read_back = asg_read_back,
};
