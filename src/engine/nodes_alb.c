/* Tier 2 node kinds: the Application Load Balancer in front of the instance —
 * its security group, the instance group's rule admitting it, the load
 * balancer, the target group (health-checking the stack's readiness path),
 * the listener(s), the registered instance, and the wait for healthy targets.
 * Names are derived deterministically and fit ELBv2's 32 characters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "engine/nodes.h"
#include "stack/stack.h"

static GM_MUST_CHECK gm_status elb_call(gm_node *n, const char *action, const gm_params *p,
                                        xmlDocPtr *out, const char *const *ok_codes, gm_error *err)
{
    return gm_n_query(n, &gm_svc_elbv2, action, p, out, ok_codes, err);
}

/* An ELBv2 call whose answer is read with spec (no rows after an ok code). */
static GM_MUST_CHECK gm_status elb_read(gm_node *n, const char *action, const gm_params *p,
                                        const char *const *ok_codes, const gm_read_spec *spec,
                                        gm_read_rows *rows, gm_error *err)
{
    xmlDocPtr doc = NULL;
    gm_read_rows_init(rows);
    gm_status st = elb_call(n, action, p, &doc, ok_codes, err);
    if (st == GM_OK && doc)
        st = gm_read_xml(doc, spec, rows, err);
    xmlFreeDoc(doc);
    return st;
}

/* Whose the load balancer or target group arn is, from its tags. */
static GM_MUST_CHECK gm_status elb_owner(gm_node *n, const char *arn, gm_owner *out, char *why,
                                         size_t why_size, gm_error *err)
{
    if (!arn) {
        *out = GM_OWNER_GONE;
        return GM_OK;
    }
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "ResourceArns.member.1", arn);
    static const char *const gone[] = {"LoadBalancerNotFound", "TargetGroupNotFound",
                                       "ListenerNotFound", NULL};
    xmlDocPtr doc = NULL;
    gm_status st = elb_call(n, "DescribeTags", &p, &doc, gone, err);
    gm_params_release(&p);
    gm_read_rows tags;
    gm_read_rows_init(&tags);
    if (st == GM_OK && doc)
        st = gm_read_xml(doc, &gm_elb_tags, &tags, err);
    if (st == GM_OK && !doc)
        *out = GM_OWNER_GONE;
    else if (st == GM_OK)
        gm_n_owner_from_tags(n, &tags, out, why, why_size);
    xmlFreeDoc(doc);
    gm_read_rows_release(&tags);
    return st;
}

static GM_MUST_CHECK gm_status elb_owner_of(gm_node *n, const char *id, gm_owner *out, char *why,
                                            size_t why_size, gm_error *err)
{
    return elb_owner(n, id, out, why, why_size, err);
}

/* Adds arn (found by its name) to out when it is this deployment's: a load
 * balancer of the same name may be another's. */
static GM_MUST_CHECK gm_status add_if_ours(gm_node *n, const char *arn, gm_ids *out, gm_error *err)
{
    gm_owner who = GM_OWNER_GONE;
    char why[256];
    gm_status st = elb_owner(n, arn, &who, why, sizeof why, err);
    if (st == GM_OK && who == GM_OWNER_OURS)
        st = gm_ids_add(out, arn, err);
    else if (st == GM_OK && who == GM_OWNER_OTHER)
        gm_node_note(n, "%s %s has this deployment's name but is not its: %s", gm_node_kind(n), arn,
                     why);
    return st;
}

/* A relationship node is ours when the resource it is made on (node) is. */
static GM_MUST_CHECK gm_status owner_through_elb(gm_node *n, const char *node, gm_owner *out,
                                                 char *why, size_t why_size, gm_error *err)
{
    char *arn = gm_node_id_of(n, node);
    gm_status st = elb_owner(n, arn, out, why, why_size, err);
    free(arn);
    return st;
}

static GM_MUST_CHECK gm_status listener_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                              size_t why_size, gm_error *err)
{
    return owner_through_elb(n, "alb", out, why, why_size, err);
}

static GM_MUST_CHECK gm_status targets_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                             size_t why_size, gm_error *err)
{
    return owner_through_elb(n, "target_group", out, why, why_size, err);
}

/* "<name>-alb", "<name>-tg": the name check keeps names at most 28 long. */
static void elb_name(const gm_node *n, const char *suffix, char *out, size_t size)
{
    if (snprintf(out, size, "%s-%s", gm_node_deployment(n), suffix) >= (int)size)
        out[size - 1] = '\0'; /* cannot happen for a checked name; cut if it did */
}

/* ---- the load balancer's security group ----------------------------------- */

static GM_MUST_CHECK gm_status alb_sg_create(gm_node *n, gm_error *err)
{
    char *id = NULL;
    gm_status st = gm_n_sg_create(
        n, "alb", "GeuseMaker load balancer: HTTP and HTTPS from allowed ranges", &id, err);
    if (st == GM_OK) {
        const gm_deploy_config *cfg = gm_node_config(n);
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "GroupId", id);
        const char *ports[] = {"80", "443"};
        for (int i = 0; i < 2; i++) {
            gm_params_addf(&p, "tcp", "IpPermissions.%d.IpProtocol", i + 1);
            gm_params_addf(&p, ports[i], "IpPermissions.%d.FromPort", i + 1);
            gm_params_addf(&p, ports[i], "IpPermissions.%d.ToPort", i + 1);
            for (int c = 0; c < cfg->n_cidrs; c++)
                gm_params_addf(&p, cfg->cidrs[c], "IpPermissions.%d.IpRanges.%d.CidrIp", i + 1,
                               c + 1);
        }
        static const char *const ok[] = {"InvalidPermission.Duplicate", NULL};
        st = gm_n_ec2(n, "AuthorizeSecurityGroupIngress", &p, NULL, ok, err);
        gm_params_release(&p);
    }
    free(id);
    return st;
}

const gm_node_ops gm_ops_alb_sg = {
    .kind = "alb_sg",
    .label = "creating the load balancer's security group",
    .delete_label = "deleting the load balancer's security group",
    .owns_resource = true,
    .listed_by_tags = true,
    .create = alb_sg_create,
    .find = gm_n_sg_find,
    .destroy = gm_n_sg_destroy,
    .owner = gm_n_sg_owner,
    .inspect = gm_n_sg_inspect,
};

/* ---- the instance group admits the load balancer group on nginx's ports ---- */

static void alb_ingress_params(gm_params *p, const char *sg, const char *alb_sg)
{
    gm_params_add(p, "GroupId", sg);
    const char *ports[] = {"443", "80"};
    for (int i = 0; i < 2; i++) {
        gm_params_addf(p, "tcp", "IpPermissions.%d.IpProtocol", i + 1);
        gm_params_addf(p, ports[i], "IpPermissions.%d.FromPort", i + 1);
        gm_params_addf(p, ports[i], "IpPermissions.%d.ToPort", i + 1);
        gm_params_addf(p, alb_sg, "IpPermissions.%d.Groups.1.GroupId", i + 1);
    }
}

static GM_MUST_CHECK gm_status alb_ingress_create(gm_node *n, gm_error *err)
{
    char *sg = gm_node_id_of(n, "sg");
    char *alb_sg = gm_node_id_of(n, "alb_sg");
    gm_status st = gm_node_intent(n, NULL, 0, err);
    if (st == GM_OK) {
        gm_params p;
        gm_params_init(&p);
        alb_ingress_params(&p, sg ? sg : "", alb_sg ? alb_sg : "");
        static const char *const ok[] = {"InvalidPermission.Duplicate", NULL};
        st = gm_n_ec2(n, "AuthorizeSecurityGroupIngress", &p, NULL, ok, err);
        gm_params_release(&p);
    }
    if (st == GM_OK)
        st = gm_node_created(n, sg ? sg : "", err);
    free(sg);
    free(alb_sg);
    return st;
}

/* A relationship node is found through the resource it is made on. */
static GM_MUST_CHECK gm_status find_through(gm_node *n, const char *node, gm_ids *out,
                                            gm_error *err)
{
    char *id = gm_node_id_of(n, node);
    gm_status st = id ? gm_ids_add(out, id, err) : GM_OK;
    free(id);
    return st;
}

static GM_MUST_CHECK gm_status alb_ingress_find(gm_node *n, gm_ids *out, gm_error *err)
{
    return find_through(n, "sg", out, err);
}

/* The rule references the load balancer's group, which cannot be deleted
 * while it is referenced: revoke it first. */
static GM_MUST_CHECK gm_status alb_ingress_destroy(gm_node *n, const char *id, gm_error *err)
{
    char *alb_sg = gm_node_id_of(n, "alb_sg");
    if (!alb_sg)
        return GM_OK;
    gm_params p;
    gm_params_init(&p);
    alb_ingress_params(&p, id, alb_sg);
    static const char *const ok[] = {"InvalidPermission.NotFound", "InvalidGroup.NotFound", NULL};
    gm_status st = gm_n_ec2(n, "RevokeSecurityGroupIngress", &p, NULL, ok, err);
    gm_params_release(&p);
    free(alb_sg);
    return st;
}

const gm_node_ops gm_ops_alb_ingress = {
    .kind = "alb_ingress",
    .label = "admitting the load balancer to the instance",
    .delete_label = "revoking the load balancer's access to the instance",
    .owns_resource = true,
    .create = alb_ingress_create,
    .find = alb_ingress_find,
    .destroy = alb_ingress_destroy,
    .owner = gm_n_sg_owner, /* the rule is on the instance's group */
};

/* ---- the load balancer ------------------------------------------------------ */

/* DescribeLoadBalancers by one name or arn: rows of gm_elb_load_balancers
 * (none when it does not exist). */
static GM_MUST_CHECK gm_status alb_describe(gm_node *n, const char *param, const char *value,
                                            gm_read_rows *rows, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, param, value);
    static const char *const gone[] = {"LoadBalancerNotFound", NULL};
    gm_status st =
        elb_read(n, "DescribeLoadBalancers", &p, gone, &gm_elb_load_balancers, rows, err);
    gm_params_release(&p);
    return st;
}

static GM_MUST_CHECK gm_status alb_find(gm_node *n, gm_ids *out, gm_error *err)
{
    char name[64];
    elb_name(n, "alb", name, sizeof name);
    gm_read_rows rows;
    gm_status st = alb_describe(n, "Names.member.1", name, &rows, err);
    if (st == GM_OK && rows.n)
        st = add_if_ours(n, gm_read_get(&rows, 0, GM_ELB_ARN), out, err);
    gm_read_rows_release(&rows);
    return st;
}

/* An ELBv2 create: its action, parameters and the reader of its answer. */
typedef struct elb_create_req {
    const char *action;
    gm_params *params;
    const gm_read_spec *spec;
} elb_create_req;

static GM_MUST_CHECK gm_status send_elb_create(gm_node *n, void *ctx, char **out_arn, gm_error *err)
{
    elb_create_req *r = ctx;
    r->params->once = true;
    gm_read_rows rows;
    gm_status st = elb_read(n, r->action, r->params, NULL, r->spec, &rows, err);
    if (st == GM_OK) {
        *out_arn = gm_read_dup(&rows, 0, GM_ELB_ARN);
        if (!*out_arn)
            st = gm_error_set(err, GM_ERR_PARSE, "%s returned no arn", r->action);
    }
    gm_read_rows_release(&rows);
    return st;
}

/* Creates a load balancer or target group by name: a name taken by an
 * earlier try of this deployment (its answer lost) is found and adopted; one
 * taken by anything else is an error. */
static GM_MUST_CHECK gm_status elb_create(gm_node *n, const char *action, gm_params *p,
                                          const gm_read_spec *spec, const char *duplicate_code,
                                          char **out_arn, gm_error *err)
{
    const char *const dup[] = {duplicate_code, NULL};
    elb_create_req r = {action, p, spec};
    gm_status st = gm_n_create_once(n, send_elb_create, &r, dup, out_arn, err);
    if (st == GM_OK)
        st = gm_node_created(n, *out_arn, err);
    return st;
}

static GM_MUST_CHECK gm_status alb_request(gm_node *n, char **out_arn, gm_error *err)
{
    char name[64];
    elb_name(n, "alb", name, sizeof name);
    char *a = gm_node_id_of(n, "subnet_a"), *b = gm_node_id_of(n, "subnet_b");
    char *sg = gm_node_id_of(n, "alb_sg");
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "Name", name);
    gm_params_add(&p, "Subnets.member.1", a);
    gm_params_add(&p, "Subnets.member.2", b);
    gm_params_add(&p, "SecurityGroups.member.1", sg);
    gm_params_add(&p, "Scheme", "internet-facing");
    gm_params_add(&p, "Type", "application");
    gm_params_add(&p, "IpAddressType", "ipv4");
    gm_n_member_tags(n, &p, false);
    gm_status st = elb_create(n, "CreateLoadBalancer", &p, &gm_elb_load_balancers,
                              "DuplicateLoadBalancerName", out_arn, err);
    gm_params_release(&p);
    free(a);
    free(b);
    free(sg);
    return st;
}

/* Waits until the load balancer is active, recording its DNS name. */
static GM_MUST_CHECK gm_status alb_wait_active(gm_node *n, const char *arn, gm_error *err)
{
    gm_status st = GM_OK;
    while (st == GM_OK) {
        gm_read_rows rows;
        st = alb_describe(n, "LoadBalancerArns.member.1", arn, &rows, err);
        char state[32], dns[256];
        snprintf(state, sizeof state, "%s", gm_read_get(&rows, 0, GM_ELB_LB_STATE));
        snprintf(dns, sizeof dns, "%s", gm_read_get(&rows, 0, GM_ELB_LB_DNS));
        gm_read_rows_release(&rows);
        if (st != GM_OK)
            break;
        if (*dns) {
            st = gm_node_set_output(n, "dns", dns, err);
            gm_node_detail(n, dns);
        }
        if (st != GM_OK || strcmp(state, "active") == 0)
            break;
        if (strcmp(state, "failed") == 0 || !*state) {
            st = gm_error_set(err, GM_ERR_AWS, "load balancer is %s", *state ? state : "gone");
            break;
        }
        st = gm_node_wait(n, gm_node_poll_ms(n), "waiting for the load balancer to be active", err);
    }
    return st;
}

/* The SSM parameter the instance reads its public URL from (n8n's links). */
static char *public_url_parameter(gm_node *n)
{
    char *prefix = gm_stack_default_ssm_prefix(gm_node_deployment(n));
    char *name = prefix ? gm_strfmt("%s%s", prefix, GM_STACK_PUBLIC_URL_PARAMETER) : NULL;
    free(prefix);
    return name;
}

/* Publishes the stack's public URL as soon as the load balancer has a DNS
 * name (long before it is active): the instance's boot waits for it. */
static GM_MUST_CHECK gm_status publish_url(gm_node *n, const char *arn, gm_error *err)
{
    gm_read_rows rows;
    gm_status st = alb_describe(n, "LoadBalancerArns.member.1", arn, &rows, err);
    const char *dns = st == GM_OK ? gm_read_get(&rows, 0, GM_ELB_LB_DNS) : "";
    bool https = gm_node_config(n)->certificate_arn && *gm_node_config(n)->certificate_arn;
    char *url = *dns ? gm_strfmt("%s://%s", https ? "https" : "http", dns) : NULL;
    char *name = url ? public_url_parameter(n) : NULL;
    if (st == GM_OK && url && name)
        st = gm_n_ssm_put_string(n, name, url,
                                 "GeuseMaker: the stack's public URL (the load balancer)", err);
    else if (st == GM_OK && *dns)
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_read_rows_release(&rows);
    free(url);
    free(name);
    return st;
}

static GM_MUST_CHECK gm_status alb_create(gm_node *n, gm_error *err)
{
    char *arn = NULL;
    gm_status st = gm_n_adopt_or_intent(n, &arn, NULL, 0, err);
    if (st == GM_OK && !arn)
        st = alb_request(n, &arn, err);
    if (st == GM_OK)
        st = publish_url(n, arn, err);
    if (st == GM_OK)
        st = alb_wait_active(n, arn, err);
    free(arn);
    return st;
}

/* The public URL goes with the load balancer. */
static GM_MUST_CHECK gm_status unpublish_url(gm_node *n, gm_error *err)
{
    char *name = public_url_parameter(n);
    json_t *body = name ? json_pack("{s:[s]}", "Names", name) : NULL;
    free(name);
    json_t *out = NULL;
    gm_status st =
        body ? gm_aws_json(gm_node_aws(n), &gm_svc_ssm, "DeleteParameters", body, &out, err)
             : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    json_decref(body);
    json_decref(out);
    return st;
}

static GM_MUST_CHECK gm_status alb_destroy(gm_node *n, const char *id, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "LoadBalancerArn", id);
    static const char *const gone[] = {"LoadBalancerNotFound", NULL};
    gm_status st = elb_call(n, "DeleteLoadBalancer", &p, NULL, gone, err);
    gm_params_release(&p);
    /* Its network interfaces hold the security group until it is gone. */
    while (st == GM_OK) {
        gm_read_rows rows;
        st = alb_describe(n, "LoadBalancerArns.member.1", id, &rows, err);
        bool gone_now = rows.n == 0;
        gm_read_rows_release(&rows);
        if (st != GM_OK || gone_now)
            break;
        st =
            gm_node_wait(n, gm_node_poll_ms(n), "waiting for the load balancer to be deleted", err);
    }
    return st == GM_OK ? unpublish_url(n, err) : st;
}

static GM_MUST_CHECK gm_status alb_inspect(gm_node *n, const char *id, json_t *live, gm_error *err)
{
    gm_read_rows rows;
    gm_status st = alb_describe(n, "LoadBalancerArns.member.1", id, &rows, err);
    if (st != GM_OK)
        return st;
    json_object_set_new(live, "exists", json_boolean(rows.n > 0));
    if (rows.n) {
        const char *state = gm_read_get(&rows, 0, GM_ELB_LB_STATE);
        json_object_set_new(live, "state", json_string(state));
        if (strcmp(state, "active") != 0) {
            char what[64];
            snprintf(what, sizeof what, "load balancer is %s", state);
            gm_n_drift(live, what);
        }
    } else {
        gm_n_drift(live, "missing");
    }
    gm_read_rows_release(&rows);
    return GM_OK;
}

/* adopt: the load balancer's DNS name. */
static GM_MUST_CHECK gm_status alb_read_back(gm_node *n, const char *id, gm_error *err)
{
    gm_read_rows rows;
    gm_status st = alb_describe(n, "LoadBalancerArns.member.1", id, &rows, err);
    if (st == GM_OK && *gm_read_get(&rows, 0, GM_ELB_LB_DNS))
        st = gm_node_set_output(n, "dns", gm_read_get(&rows, 0, GM_ELB_LB_DNS), err);
    gm_read_rows_release(&rows);
    return st;
}

const gm_node_ops gm_ops_alb = {
    .kind = "alb",
    .label = "creating the load balancer",
    .delete_label = "deleting the load balancer",
    .owns_resource = true,
    .listed_by_tags = true,
    .create = alb_create,
    .find = alb_find,
    .destroy = alb_destroy,
    .owner = elb_owner_of,
    .inspect = alb_inspect,
    .read_back = alb_read_back,
};

/* ---- target group ------------------------------------------------------------ */

static GM_MUST_CHECK gm_status tg_find(gm_node *n, gm_ids *out, gm_error *err)
{
    char name[64];
    elb_name(n, "tg", name, sizeof name);
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "Names.member.1", name);
    static const char *const gone[] = {"TargetGroupNotFound", NULL};
    gm_read_rows rows;
    gm_status st = elb_read(n, "DescribeTargetGroups", &p, gone, &gm_elb_target_groups, &rows, err);
    gm_params_release(&p);
    if (st == GM_OK && rows.n)
        st = add_if_ours(n, gm_read_get(&rows, 0, GM_ELB_ARN), out, err);
    gm_read_rows_release(&rows);
    return st;
}

static void tg_params(gm_node *n, gm_params *p)
{
    const gm_deploy_config *c = gm_node_config(n);
    char name[64], num[4][16];
    elb_name(n, "tg", name, sizeof name);
    snprintf(num[0], sizeof num[0], "%d", c->hc_interval_s ? c->hc_interval_s : 30);
    snprintf(num[1], sizeof num[1], "%d", c->hc_timeout_s ? c->hc_timeout_s : 5);
    snprintf(num[2], sizeof num[2], "%d", c->healthy_threshold ? c->healthy_threshold : 2);
    snprintf(num[3], sizeof num[3], "%d", c->unhealthy_threshold ? c->unhealthy_threshold : 3);
    char *vpc = gm_node_id_of(n, "vpc");
    gm_params_add(p, "Name", name);
    gm_params_add(p, "Protocol", "HTTPS");
    gm_params_add(p, "Port", "443");
    gm_params_add(p, "VpcId", vpc);
    gm_params_add(p, "TargetType", "instance");
    /* "Healthy" means the stack works: nginx answers 200 on the readiness
     * path only while PostgreSQL and n8n are healthy. */
    gm_params_add(p, "HealthCheckProtocol", "HTTPS");
    gm_params_add(p, "HealthCheckPath", GM_HEALTH_READY_PATH);
    gm_params_add(p, "HealthCheckIntervalSeconds", num[0]);
    gm_params_add(p, "HealthCheckTimeoutSeconds", num[1]);
    gm_params_add(p, "HealthyThresholdCount", num[2]);
    gm_params_add(p, "UnhealthyThresholdCount", num[3]);
    gm_params_add(p, "Matcher.HttpCode", "200");
    gm_n_member_tags(n, p, false);
    free(vpc);
}

static GM_MUST_CHECK gm_status tg_create(gm_node *n, gm_error *err)
{
    char *arn = NULL;
    gm_status st = gm_n_adopt_or_intent(n, &arn, NULL, 0, err);
    if (st == GM_OK && !arn) {
        gm_params p;
        gm_params_init(&p);
        tg_params(n, &p);
        st = elb_create(n, "CreateTargetGroup", &p, &gm_elb_target_groups,
                        "DuplicateTargetGroupName", &arn, err);
        gm_params_release(&p);
    }
    free(arn);
    return st;
}

static GM_MUST_CHECK gm_status tg_destroy(gm_node *n, const char *id, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "TargetGroupArn", id);
    static const char *const gone[] = {"TargetGroupNotFound", NULL};
    gm_status st = elb_call(n, "DeleteTargetGroup", &p, NULL, gone, err);
    gm_params_release(&p);
    return st;
}

const gm_node_ops gm_ops_target_group = {
    .kind = "target_group",
    .label = "creating target groups",
    .delete_label = "deleting the target group",
    .owns_resource = true,
    .listed_by_tags = true,
    .create = tg_create,
    .find = tg_find,
    .destroy = tg_destroy,
    .owner = elb_owner_of,
};

/* ---- listeners ---------------------------------------------------------------- */

/* One listener: HTTPS:443 forwarding (https), HTTP:80 redirecting to it
 * (redirect), or HTTP:80 forwarding. */
static void listener_params(gm_node *n, gm_params *p, const char *lb, const char *tg, bool https,
                            bool redirect)
{
    const char *cert = gm_node_config(n)->certificate_arn;
    gm_params_add(p, "LoadBalancerArn", lb);
    gm_params_add(p, "Protocol", https ? "HTTPS" : "HTTP");
    gm_params_add(p, "Port", https ? "443" : "80");
    if (https) {
        gm_params_add(p, "Certificates.member.1.CertificateArn", cert);
        gm_params_add(p, "SslPolicy", "ELBSecurityPolicy-TLS13-1-2-2021-06");
    }
    if (redirect) {
        gm_params_add(p, "DefaultActions.member.1.Type", "redirect");
        gm_params_add(p, "DefaultActions.member.1.RedirectConfig.Protocol", "HTTPS");
        gm_params_add(p, "DefaultActions.member.1.RedirectConfig.Port", "443");
        gm_params_add(p, "DefaultActions.member.1.RedirectConfig.StatusCode", "HTTP_301");
    } else {
        gm_params_add(p, "DefaultActions.member.1.Type", "forward");
        gm_params_add(p, "DefaultActions.member.1.TargetGroupArn", tg);
    }
    gm_n_member_tags(n, p, false);
}

/* The arn of the load balancer's listener on port, or NULL. */
static GM_MUST_CHECK gm_status listener_on(gm_node *n, const char *lb, const char *port,
                                           char **out_arn, gm_error *err)
{
    *out_arn = NULL;
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "LoadBalancerArn", lb);
    gm_read_rows rows;
    gm_status st = elb_read(n, "DescribeListeners", &p, NULL, &gm_elb_listeners, &rows, err);
    gm_params_release(&p);
    for (size_t i = 0; st == GM_OK && i < rows.n && !*out_arn; i++)
        if (strcmp(gm_read_get(&rows, i, GM_ELB_LISTENER_PORT), port) == 0)
            *out_arn = gm_read_dup(&rows, i, GM_ELB_ARN);
    gm_read_rows_release(&rows);
    return st;
}

/* One listener: sent once; after a lost answer, or when the port already has
 * one (made by the first try), the listener on the port is taken. */
static GM_MUST_CHECK gm_status one_listener(gm_node *n, const char *lb, const char *tg, bool https,
                                            bool redirect, char **out_arn, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    listener_params(n, &p, lb, tg, https, redirect);
    p.once = true;
    gm_read_rows rows;
    gm_error cerr = {0};
    gm_status st = elb_read(n, "CreateListener", &p, NULL, &gm_elb_listeners, &rows, &cerr);
    gm_params_release(&p);
    *out_arn = st == GM_OK ? gm_read_dup(&rows, 0, GM_ELB_ARN) : NULL;
    gm_read_rows_release(&rows);
    if (st == GM_OK)
        return *out_arn ? GM_OK : gm_error_set(err, GM_ERR_PARSE, "CreateListener returned no arn");
    if (!gm_aws_error_ambiguous(&cerr) && strcmp(cerr.aws_code, "DuplicateListener") != 0) {
        *err = cerr;
        return st;
    }
    st = listener_on(n, lb, https ? "443" : "80", out_arn, err);
    if (st == GM_OK && !*out_arn) {
        *err = cerr;
        return GM_ERR_AWS;
    }
    return st;
}

static GM_MUST_CHECK gm_status listener_create(gm_node *n, gm_error *err)
{
    char *lb = gm_node_id_of(n, "alb");
    char *tg = gm_node_id_of(n, "target_group");
    gm_status st = gm_node_intent(n, NULL, 0, err);
    bool cert = gm_node_config(n)->certificate_arn != NULL;
    char *first = NULL;
    /* With a certificate: HTTPS:443 forwards, HTTP:80 redirects to it.
     * Without: HTTP:80 forwards. */
    for (int i = 0; st == GM_OK && i < (cert ? 2 : 1); i++) {
        char *arn = NULL;
        st = one_listener(n, lb ? lb : "", tg ? tg : "", cert && i == 0, cert && i == 1, &arn, err);
        if (!first)
            first = arn;
        else
            free(arn);
    }
    if (st == GM_OK)
        st = gm_node_created(n, first, err);
    free(first);
    free(lb);
    free(tg);
    return st;
}

static GM_MUST_CHECK gm_status listener_find(gm_node *n, gm_ids *out, gm_error *err)
{
    return find_through(n, "alb", out, err); /* listeners go with their load balancer */
}

static GM_MUST_CHECK gm_status listener_destroy(gm_node *n, const char *id, gm_error *err)
{
    char *lb = gm_node_id_of(n, "alb");
    if (!lb)
        return GM_OK;
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "LoadBalancerArn", lb);
    static const char *const gone[] = {"LoadBalancerNotFound", "ListenerNotFound", NULL};
    gm_read_rows rows;
    gm_status st = elb_read(n, "DescribeListeners", &p, gone, &gm_elb_listeners, &rows, err);
    gm_params_release(&p);
    for (size_t i = 0; st == GM_OK && i < rows.n; i++) {
        gm_params_init(&p);
        gm_params_add(&p, "ListenerArn", gm_read_get(&rows, i, GM_ELB_ARN));
        st = elb_call(n, "DeleteListener", &p, NULL, gone, err);
        gm_params_release(&p);
    }
    gm_read_rows_release(&rows);
    free(lb);
    return st;
}

const gm_node_ops gm_ops_listener = {
    .kind = "listener",
    .label = "creating listeners",
    .delete_label = "deleting the listeners",
    .owns_resource = true,
    .create = listener_create,
    .find = listener_find,
    .destroy = listener_destroy,
    .owner = listener_owner,
};

/* ---- targets: the target group attached to the Auto Scaling group ------------ */

/* Whether the group has the target group attached (false when the group is
 * gone). */
static GM_MUST_CHECK gm_status attached(gm_node *n, const char *group, const char *tg, bool *out,
                                        gm_error *err)
{
    gm_read_rows rows;
    gm_status st = gm_n_asg_read(n, group, &gm_asg_target_groups, &rows, err);
    *out = false;
    for (size_t i = 0; st == GM_OK && i < rows.n; i++)
        *out |= strcmp(gm_read_get(&rows, i, 0), tg) == 0;
    gm_read_rows_release(&rows);
    return st;
}

/* AttachLoadBalancerTargetGroups / DetachLoadBalancerTargetGroups. */
static GM_MUST_CHECK gm_status attach_call(gm_node *n, const char *action, const char *group,
                                           const char *tg, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "AutoScalingGroupName", group);
    gm_params_add(&p, "TargetGroupARNs.member.1", tg);
    gm_status st = gm_n_query(n, &gm_svc_autoscaling, action, &p, NULL, NULL, err);
    gm_params_release(&p);
    return st;
}

/* The group registers every instance it launches, replacements included;
 * the node's id is the target group it attached. */
static GM_MUST_CHECK gm_status targets_create(gm_node *n, gm_error *err)
{
    char *tg = gm_node_id_of(n, "target_group");
    char *group = gm_node_id_of(n, GM_NODE_ASG);
    gm_status st = tg && group ? gm_node_intent(n, NULL, 0, err)
                               : gm_error_set(err, GM_ERR_INTERNAL, "no target group or no group");
    if (st == GM_OK) /* attaching an attached group changes nothing */
        st = attach_call(n, "AttachLoadBalancerTargetGroups", group, tg, err);
    if (st == GM_OK)
        st = gm_node_created(n, tg, err);
    free(tg);
    free(group);
    return st;
}

static GM_MUST_CHECK gm_status targets_find(gm_node *n, gm_ids *out, gm_error *err)
{
    char *tg = gm_node_id_of(n, "target_group");
    char *group = gm_node_id_of(n, GM_NODE_ASG);
    bool on = false;
    gm_status st = tg && group ? attached(n, group, tg, &on, err) : GM_OK;
    if (st == GM_OK && on)
        st = gm_ids_add(out, tg, err);
    free(tg);
    free(group);
    return st;
}

/* Detached before the target group goes (a record of an older version
 * names the instance it registered: the target group takes it along). */
static GM_MUST_CHECK gm_status targets_destroy(gm_node *n, const char *id, gm_error *err)
{
    char *group = gm_node_id_of(n, GM_NODE_ASG);
    bool on = false;
    gm_status st = group && strncmp(id, "arn:", 4) == 0 ? attached(n, group, id, &on, err) : GM_OK;
    if (st == GM_OK && on)
        st = attach_call(n, "DetachLoadBalancerTargetGroups", group, id, err);
    /* What counts is that it is detached (an emulator can detach and still
     * fail on deregistering an instance it replaced). */
    gm_error lerr = {0};
    if (st != GM_OK && attached(n, group, id, &on, &lerr) == GM_OK && !on) {
        gm_node_note(n, "the target group is detached despite: %s", err->message);
        gm_error_clear(err);
        st = GM_OK;
    }
    free(group);
    return st;
}

const gm_node_ops gm_ops_targets = {
    .kind = "targets",
    .label = "attaching the target group to the instance group",
    .delete_label = "detaching the target group",
    .owns_resource = true,
    .create = targets_create,
    .find = targets_find,
    .destroy = targets_destroy,
    .owner = targets_owner,
};

/* ---- healthy targets -------------------------------------------------------------- */

/* One look at the targets: *out_healthy when every one is healthy, else why
 * in why ("no registered targets" when none). */
static GM_MUST_CHECK gm_status targets_health(gm_node *n, const char *tg, bool *out_healthy,
                                              char *why, size_t why_size, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "TargetGroupArn", tg);
    gm_read_rows rows;
    gm_status st = elb_read(n, "DescribeTargetHealth", &p, NULL, &gm_elb_target_health, &rows, err);
    gm_params_release(&p);
    size_t healthy = 0;
    *why = '\0';
    for (size_t i = 0; i < rows.n; i++) {
        const char *state = gm_read_get(&rows, i, GM_ELB_TH_STATE);
        const char *reason = gm_read_get(&rows, i, GM_ELB_TH_REASON);
        const char *desc = gm_read_get(&rows, i, GM_ELB_TH_DESCRIPTION);
        if (strcmp(state, "healthy") == 0)
            healthy++;
        else if (!*why)
            snprintf(why, why_size, "target %.64s is %.32s%s%.96s%s%.256s",
                     gm_read_get(&rows, i, GM_ELB_TH_ID), state, *reason ? " (" : "", reason,
                     *desc ? ": " : "", desc);
    }
    *out_healthy = rows.n > 0 && healthy == rows.n;
    if (!*why)
        snprintf(why, why_size, "no registered targets");
    gm_read_rows_release(&rows);
    return st;
}

static GM_MUST_CHECK gm_status alb_healthy_create(gm_node *n, gm_error *err)
{
    const gm_deploy_config *cfg = gm_node_config(n);
    if (cfg->no_wait)
        return gm_node_created(n, "not checked", err);
    char *tg = gm_node_id_of(n, "target_group");
    int64_t limit = cfg->alb_timeout_ms ? cfg->alb_timeout_ms : 300 * 1000;
    int64_t until = gm_now_ms() + limit;
    gm_status st = GM_OK;
    char last[512] = "";
    for (;;) {
        bool healthy = false;
        char why[512];
        st = targets_health(n, tg ? tg : "", &healthy, why, sizeof why, err);
        if (st != GM_OK || healthy)
            break;
        if (strcmp(why, last) != 0) {
            snprintf(last, sizeof last, "%s", why);
            gm_node_detail(n, why);
        }
        if (gm_now_ms() >= until) {
            st = gm_error_set(err, GM_ERR_TIMEOUT, "targets not healthy after %llds: %s",
                              (long long)(limit / 1000), why);
            break;
        }
        st = gm_node_wait(n, gm_node_poll_ms(n), "waiting for healthy targets", err);
        if (st != GM_OK)
            break;
    }
    if (st == GM_OK)
        st = gm_node_created(n, "healthy", err);
    free(tg);
    return st;
}

const gm_node_ops gm_ops_alb_healthy = {
    .kind = "alb_healthy",
    .label = "waiting for healthy targets",
    .create = alb_healthy_create,
};
