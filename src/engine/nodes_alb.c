/* Tier 2 node kinds: the Application Load Balancer in front of the instance —
 * its security group, the instance group's rule admitting it, the load
 * balancer, the target group (health-checking the stack's readiness path),
 * the listener(s), the registered instance, and the wait for healthy targets.
 * Names are derived deterministically and fit ELBv2's 32 characters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "core/timeutil.h"
#include "engine/internal.h"
#include "engine/nodes.h"
#include "stack/stack.h"

static gm_status elb_call(gm_engine *e, const char *action, gm_params *p, xmlDocPtr *out,
                          const char *const *ok_codes, gm_error *err)
{
    return gm_e_query(e, &gm_svc_elbv2, action, p, out, ok_codes, err);
}

/* "<name>-alb", "<name>-tg": the name check keeps names at most 28 long. */
static void elb_name(gm_engine *e, const char *suffix, char *out, size_t size)
{
    if (snprintf(out, size, "%s-%s", e->dep->name, suffix) >= (int)size)
        out[size - 1] = '\0'; /* cannot happen for a checked name; cut if it did */
}

/* ---- the load balancer's security group ----------------------------------- */

static gm_status alb_sg_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *id = NULL;
    gm_status st =
        gm_n_sg_create(e, n, &gm_ops_alb_sg, "alb",
                       "GeuseMaker load balancer: HTTP and HTTPS from allowed ranges", &id, err);
    if (st == GM_OK) {
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "GroupId", id);
        const char *ports[] = {"80", "443"};
        for (int i = 0; i < 2; i++) {
            gm_params_addf(&p, "tcp", "IpPermissions.%d.IpProtocol", i + 1);
            gm_params_addf(&p, ports[i], "IpPermissions.%d.FromPort", i + 1);
            gm_params_addf(&p, ports[i], "IpPermissions.%d.ToPort", i + 1);
            for (int c = 0; c < e->cfg->n_cidrs; c++)
                gm_params_addf(&p, e->cfg->cidrs[c], "IpPermissions.%d.IpRanges.%d.CidrIp", i + 1,
                               c + 1);
        }
        static const char *const ok[] = {"InvalidPermission.Duplicate", NULL};
        st = gm_e_ec2_call(e, "AuthorizeSecurityGroupIngress", &p, NULL, ok, err);
        gm_params_release(&p);
    }
    free(id);
    return st;
}

const gm_node_ops gm_ops_alb_sg = {"alb_sg",       "creating the load balancer's security group",
                                   true,           alb_sg_create,
                                   gm_n_sg_find,   gm_n_sg_destroy,
                                   gm_n_sg_inspect};

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

static gm_status alb_ingress_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *sg = gm_e_id(e, "sg");
    char *alb_sg = gm_e_id(e, "alb_sg");
    gm_status st = gm_e_journal_intent(e, n, NULL, 0, err);
    if (st == GM_OK) {
        gm_params p;
        gm_params_init(&p);
        alb_ingress_params(&p, sg ? sg : "", alb_sg ? alb_sg : "");
        static const char *const ok[] = {"InvalidPermission.Duplicate", NULL};
        st = gm_e_ec2_call(e, "AuthorizeSecurityGroupIngress", &p, NULL, ok, err);
        gm_params_release(&p);
    }
    if (st == GM_OK)
        st = gm_e_journal_id(e, n, sg ? sg : "", err);
    free(sg);
    free(alb_sg);
    return st;
}

static gm_status alb_ingress_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    *out_id = gm_e_id(e, "sg");
    return GM_OK;
}

/* The rule references the load balancer's group, which cannot be deleted
 * while it is referenced: revoke it first. */
static gm_status alb_ingress_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    char *alb_sg = gm_e_id(e, "alb_sg");
    if (!alb_sg)
        return GM_OK;
    gm_params p;
    gm_params_init(&p);
    alb_ingress_params(&p, id, alb_sg);
    static const char *const ok[] = {"InvalidPermission.NotFound", "InvalidGroup.NotFound", NULL};
    gm_status st = gm_e_ec2_call(e, "RevokeSecurityGroupIngress", &p, NULL, ok, err);
    gm_params_release(&p);
    free(alb_sg);
    return st;
}

const gm_node_ops gm_ops_alb_ingress = {"alb_ingress",
                                        "admitting the load balancer to the instance",
                                        true,
                                        alb_ingress_create,
                                        alb_ingress_find,
                                        alb_ingress_destroy,
                                        NULL};

/* ---- the load balancer ------------------------------------------------------ */

static gm_status alb_describe(gm_engine *e, const char *param, const char *value, char **out_arn,
                              char *state, size_t state_size, char *dns, size_t dns_size,
                              gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, param, value);
    xmlDocPtr doc = NULL;
    static const char *const gone[] = {"LoadBalancerNotFound", NULL};
    gm_status st = elb_call(e, "DescribeLoadBalancers", &p, &doc, gone, err);
    gm_params_release(&p);
    if (out_arn)
        *out_arn = NULL;
    if (state)
        *state = '\0';
    if (st == GM_OK && doc) {
        xmlNodePtr lb =
            gm_xml_child(gm_xml_find(xmlDocGetRootElement(doc), "LoadBalancers"), "member");
        if (lb && out_arn)
            *out_arn = gm_xml_text(lb, "LoadBalancerArn");
        if (lb && state)
            gm_xml_text_to(lb, "State/Code", state, state_size);
        if (lb && dns)
            gm_xml_text_to(lb, "DNSName", dns, dns_size);
    }
    xmlFreeDoc(doc);
    return st;
}

static gm_status alb_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    char name[64];
    elb_name(e, "alb", name, sizeof name);
    return alb_describe(e, "Names.member.1", name, out_id, NULL, 0, NULL, 0, err);
}

static gm_status alb_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *arn = NULL;
    char token[96];
    gm_status st = gm_n_adopt_or_intent(e, n, &gm_ops_alb, &arn, token, sizeof token, err);
    if (st == GM_OK && !arn) {
        char name[64];
        elb_name(e, "alb", name, sizeof name);
        char *a = gm_e_id(e, "subnet_a"), *b = gm_e_id(e, "subnet_b"), *sg = gm_e_id(e, "alb_sg");
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "Name", name);
        gm_params_add(&p, "Subnets.member.1", a ? a : "");
        gm_params_add(&p, "Subnets.member.2", b ? b : "");
        gm_params_add(&p, "SecurityGroups.member.1", sg ? sg : "");
        gm_params_add(&p, "Scheme", "internet-facing");
        gm_params_add(&p, "Type", "application");
        gm_params_add(&p, "IpAddressType", "ipv4");
        gm_e_member_tags(e, &p, n->def->name);
        xmlDocPtr doc = NULL;
        /* The same name and settings again answers with the existing one. */
        st = elb_call(e, "CreateLoadBalancer", &p, &doc, NULL, err);
        gm_params_release(&p);
        if (st == GM_OK) {
            xmlNodePtr lb =
                gm_xml_child(gm_xml_find(xmlDocGetRootElement(doc), "LoadBalancers"), "member");
            arn = lb ? gm_xml_text(lb, "LoadBalancerArn") : NULL;
            st = arn ? gm_e_journal_id(e, n, arn, err)
                     : gm_error_set(err, GM_ERR_PARSE, "CreateLoadBalancer returned no arn");
        }
        xmlFreeDoc(doc);
        free(a);
        free(b);
        free(sg);
    }
    /* Wait until it is active. */
    while (st == GM_OK) {
        char state[32], dns[256];
        char *found = NULL;
        st = alb_describe(e, "LoadBalancerArns.member.1", arn, &found, state, sizeof state, dns,
                          sizeof dns, err);
        free(found);
        if (st != GM_OK)
            break;
        if (*dns) {
            gm_e_set_output(e, n, "dns", dns);
            if (e->progress)
                gm_progress_detail(e->progress, n->def->name, dns);
        }
        if (strcmp(state, "active") == 0)
            break;
        if (strcmp(state, "failed") == 0 || !*state) {
            st = gm_error_set(err, GM_ERR_AWS, "load balancer is %s", *state ? state : "gone");
            break;
        }
        st = gm_e_wait(e, e->poll_ms, "waiting for the load balancer to be active", err);
    }
    free(arn);
    return st;
}

static gm_status alb_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "LoadBalancerArn", id);
    static const char *const gone[] = {"LoadBalancerNotFound", NULL};
    gm_status st = elb_call(e, "DeleteLoadBalancer", &p, NULL, gone, err);
    gm_params_release(&p);
    /* Its network interfaces hold the security group until it is gone. */
    while (st == GM_OK) {
        char *found = NULL;
        st = alb_describe(e, "LoadBalancerArns.member.1", id, &found, NULL, 0, NULL, 0, err);
        bool gone_now = found == NULL;
        free(found);
        if (st != GM_OK || gone_now)
            break;
        st = gm_e_wait(e, e->poll_ms, "waiting for the load balancer to be deleted", err);
    }
    return st;
}

static gm_status alb_inspect(gm_engine *e, gm_node_run *n, const char *id, json_t *live,
                             gm_error *err)
{
    char *found = NULL;
    char state[32], dns[256] = "";
    gm_status st = alb_describe(e, "LoadBalancerArns.member.1", id, &found, state, sizeof state,
                                dns, sizeof dns, err);
    if (st != GM_OK)
        return st;
    json_object_set_new(live, "exists", json_boolean(found != NULL));
    if (found) {
        json_object_set_new(live, "state", json_string(state));
        if (strcmp(state, "active") != 0)
            json_array_append_new(json_object_get(live, "drift"),
                                  json_sprintf("load balancer is %s", state));
    } else {
        json_array_append_new(json_object_get(live, "drift"), json_string("missing"));
    }
    free(found);
    return GM_OK;
}

const gm_node_ops gm_ops_alb = {
    "alb", "creating the load balancer", true, alb_create, alb_find, alb_destroy, alb_inspect};

/* ---- target group ------------------------------------------------------------ */

static gm_status tg_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    char name[64];
    elb_name(e, "tg", name, sizeof name);
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "Names.member.1", name);
    xmlDocPtr doc = NULL;
    static const char *const gone[] = {"TargetGroupNotFound", NULL};
    gm_status st = elb_call(e, "DescribeTargetGroups", &p, &doc, gone, err);
    gm_params_release(&p);
    *out_id = NULL;
    if (st == GM_OK && doc) {
        xmlNodePtr tg =
            gm_xml_child(gm_xml_find(xmlDocGetRootElement(doc), "TargetGroups"), "member");
        if (tg)
            *out_id = gm_xml_text(tg, "TargetGroupArn");
    }
    xmlFreeDoc(doc);
    return st;
}

static gm_status tg_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *arn = NULL;
    char token[96];
    gm_status st = gm_n_adopt_or_intent(e, n, &gm_ops_target_group, &arn, token, sizeof token, err);
    if (st == GM_OK && !arn) {
        char name[64], num[4][16];
        elb_name(e, "tg", name, sizeof name);
        const gm_deploy_config *c = e->cfg;
        snprintf(num[0], sizeof num[0], "%d", c->hc_interval_s ? c->hc_interval_s : 30);
        snprintf(num[1], sizeof num[1], "%d", c->hc_timeout_s ? c->hc_timeout_s : 5);
        snprintf(num[2], sizeof num[2], "%d", c->healthy_threshold ? c->healthy_threshold : 2);
        snprintf(num[3], sizeof num[3], "%d", c->unhealthy_threshold ? c->unhealthy_threshold : 3);
        char *vpc = gm_e_id(e, "vpc");
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "Name", name);
        gm_params_add(&p, "Protocol", "HTTPS");
        gm_params_add(&p, "Port", "443");
        gm_params_add(&p, "VpcId", vpc ? vpc : "");
        gm_params_add(&p, "TargetType", "instance");
        /* "Healthy" means the stack works: nginx answers 200 on the readiness
         * path only while PostgreSQL and n8n are healthy. */
        gm_params_add(&p, "HealthCheckProtocol", "HTTPS");
        gm_params_add(&p, "HealthCheckPath", GM_HEALTH_READY_PATH);
        gm_params_add(&p, "HealthCheckIntervalSeconds", num[0]);
        gm_params_add(&p, "HealthCheckTimeoutSeconds", num[1]);
        gm_params_add(&p, "HealthyThresholdCount", num[2]);
        gm_params_add(&p, "UnhealthyThresholdCount", num[3]);
        gm_params_add(&p, "Matcher.HttpCode", "200");
        gm_e_member_tags(e, &p, n->def->name);
        xmlDocPtr doc = NULL;
        st = elb_call(e, "CreateTargetGroup", &p, &doc, NULL, err);
        gm_params_release(&p);
        if (st == GM_OK) {
            xmlNodePtr tg =
                gm_xml_child(gm_xml_find(xmlDocGetRootElement(doc), "TargetGroups"), "member");
            arn = tg ? gm_xml_text(tg, "TargetGroupArn") : NULL;
            st = arn ? gm_e_journal_id(e, n, arn, err)
                     : gm_error_set(err, GM_ERR_PARSE, "CreateTargetGroup returned no arn");
        }
        xmlFreeDoc(doc);
        free(vpc);
    }
    free(arn);
    return st;
}

static gm_status tg_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "TargetGroupArn", id);
    static const char *const gone[] = {"TargetGroupNotFound", NULL};
    gm_status st = elb_call(e, "DeleteTargetGroup", &p, NULL, gone, err);
    gm_params_release(&p);
    return st;
}

const gm_node_ops gm_ops_target_group = {
    "target_group", "creating target groups", true, tg_create, tg_find, tg_destroy, NULL};

/* ---- listeners ---------------------------------------------------------------- */

static gm_status listener_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *lb = gm_e_id(e, "alb");
    char *tg = gm_e_id(e, "target_group");
    gm_status st = gm_e_journal_intent(e, n, NULL, 0, err);
    const char *cert = e->cfg->certificate_arn;
    char *first = NULL;
    /* With a certificate: HTTPS:443 forwards, HTTP:80 redirects to it.
     * Without: HTTP:80 forwards. */
    for (int i = 0; st == GM_OK && i < (cert ? 2 : 1); i++) {
        bool https = cert && i == 0;
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "LoadBalancerArn", lb ? lb : "");
        gm_params_add(&p, "Protocol", https ? "HTTPS" : "HTTP");
        gm_params_add(&p, "Port", https ? "443" : "80");
        if (https) {
            gm_params_add(&p, "Certificates.member.1.CertificateArn", cert);
            gm_params_add(&p, "SslPolicy", "ELBSecurityPolicy-TLS13-1-2-2021-06");
        }
        if (cert && !https) {
            gm_params_add(&p, "DefaultActions.member.1.Type", "redirect");
            gm_params_add(&p, "DefaultActions.member.1.RedirectConfig.Protocol", "HTTPS");
            gm_params_add(&p, "DefaultActions.member.1.RedirectConfig.Port", "443");
            gm_params_add(&p, "DefaultActions.member.1.RedirectConfig.StatusCode", "HTTP_301");
        } else {
            gm_params_add(&p, "DefaultActions.member.1.Type", "forward");
            gm_params_add(&p, "DefaultActions.member.1.TargetGroupArn", tg ? tg : "");
        }
        gm_e_member_tags(e, &p, n->def->name);
        xmlDocPtr doc = NULL;
        /* An identical listener on the port is answered as created. */
        st = elb_call(e, "CreateListener", &p, &doc, NULL, err);
        gm_params_release(&p);
        if (st == GM_OK && !first) {
            xmlNodePtr l =
                gm_xml_child(gm_xml_find(xmlDocGetRootElement(doc), "Listeners"), "member");
            first = l ? gm_xml_text(l, "ListenerArn") : NULL;
        }
        xmlFreeDoc(doc);
    }
    if (st == GM_OK)
        st = first ? gm_e_journal_id(e, n, first, err)
                   : gm_error_set(err, GM_ERR_PARSE, "CreateListener returned no arn");
    free(first);
    free(lb);
    free(tg);
    return st;
}

static gm_status listener_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    *out_id = gm_e_id(e, "alb"); /* listeners are found through their load balancer */
    return GM_OK;
}

static gm_status listener_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    char *lb = gm_e_id(e, "alb");
    if (!lb)
        return GM_OK;
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "LoadBalancerArn", lb);
    xmlDocPtr doc = NULL;
    static const char *const gone[] = {"LoadBalancerNotFound", "ListenerNotFound", NULL};
    gm_status st = elb_call(e, "DescribeListeners", &p, &doc, gone, err);
    gm_params_release(&p);
    GM_XML_FOREACH (l, gm_xml_find(doc ? xmlDocGetRootElement(doc) : NULL, "Listeners"), "member") {
        char *arn = gm_xml_text(l, "ListenerArn");
        gm_params_init(&p);
        gm_params_add(&p, "ListenerArn", arn ? arn : "");
        st = elb_call(e, "DeleteListener", &p, NULL, gone, err);
        gm_params_release(&p);
        free(arn);
        if (st != GM_OK)
            break;
    }
    xmlFreeDoc(doc);
    free(lb);
    return st;
}

const gm_node_ops gm_ops_listener = {"listener",    "creating listeners", true, listener_create,
                                     listener_find, listener_destroy,     NULL};

/* ---- targets ------------------------------------------------------------------- */

static void target_params(gm_params *p, const char *tg, const char *instance)
{
    gm_params_add(p, "TargetGroupArn", tg);
    gm_params_add(p, "Targets.member.1.Id", instance);
    gm_params_add(p, "Targets.member.1.Port", "443");
}

static gm_status targets_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *tg = gm_e_id(e, "target_group");
    char *inst = gm_e_id(e, "instance");
    gm_status st = gm_e_journal_intent(e, n, NULL, 0, err);
    if (st == GM_OK) {
        gm_params p;
        gm_params_init(&p);
        target_params(&p, tg ? tg : "", inst ? inst : "");
        st = elb_call(e, "RegisterTargets", &p, NULL, NULL, err);
        gm_params_release(&p);
    }
    if (st == GM_OK)
        st = gm_e_journal_id(e, n, inst ? inst : "", err);
    free(tg);
    free(inst);
    return st;
}

static gm_status targets_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    *out_id = gm_e_id(e, "instance");
    return GM_OK;
}

static gm_status targets_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    char *tg = gm_e_id(e, "target_group");
    if (!tg)
        return GM_OK;
    gm_params p;
    gm_params_init(&p);
    target_params(&p, tg, id);
    static const char *const gone[] = {"TargetGroupNotFound", "InvalidTarget", NULL};
    gm_status st = elb_call(e, "DeregisterTargets", &p, NULL, gone, err);
    gm_params_release(&p);
    free(tg);
    return st;
}

const gm_node_ops gm_ops_targets = {"targets",    "registering instances", true, targets_create,
                                    targets_find, targets_destroy,         NULL};

/* ---- healthy targets -------------------------------------------------------------- */

static gm_status alb_healthy_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    if (e->cfg->no_wait)
        return gm_e_journal_id(e, n, "not checked", err);
    char *tg = gm_e_id(e, "target_group");
    int64_t limit = e->cfg->alb_timeout_ms ? e->cfg->alb_timeout_ms : 300 * 1000;
    int64_t until = gm_now_ms() + limit;
    gm_status st = GM_OK;
    char last[512] = "";
    for (;;) {
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "TargetGroupArn", tg ? tg : "");
        xmlDocPtr doc = NULL;
        st = elb_call(e, "DescribeTargetHealth", &p, &doc, NULL, err);
        gm_params_release(&p);
        if (st != GM_OK)
            break;
        int total = 0, healthy = 0;
        char why[512] = "";
        GM_XML_FOREACH (d, gm_xml_find(xmlDocGetRootElement(doc), "TargetHealthDescriptions"),
                        "member") {
            char state[32], reason[96], desc[256], id[64];
            gm_xml_text_to(d, "TargetHealth/State", state, sizeof state);
            gm_xml_text_to(d, "TargetHealth/Reason", reason, sizeof reason);
            gm_xml_text_to(d, "TargetHealth/Description", desc, sizeof desc);
            gm_xml_text_to(d, "Target/Id", id, sizeof id);
            total++;
            if (strcmp(state, "healthy") == 0)
                healthy++;
            else if (!*why)
                snprintf(why, sizeof why, "target %s is %s%s%s%s%s", id, state, *reason ? " (" : "",
                         reason, *desc ? ": " : "", *desc ? desc : "");
        }
        xmlFreeDoc(doc);
        if (total > 0 && healthy == total)
            break;
        if (!*why)
            snprintf(why, sizeof why, "no registered targets");
        if (strcmp(why, last) != 0) {
            snprintf(last, sizeof last, "%s", why);
            if (e->progress)
                gm_progress_detail(e->progress, n->def->name, why);
        }
        if (gm_now_ms() >= until) {
            st = gm_error_set(err, GM_ERR_TIMEOUT, "targets not healthy after %llds: %s",
                              (long long)(limit / 1000), why);
            break;
        }
        st = gm_e_wait(e, e->poll_ms, "waiting for healthy targets", err);
        if (st != GM_OK)
            break;
    }
    if (st == GM_OK)
        st = gm_e_journal_id(e, n, "healthy", err);
    free(tg);
    return st;
}

const gm_node_ops gm_ops_alb_healthy = {
    "alb_healthy", "waiting for healthy targets", false, alb_healthy_create, NULL, NULL, NULL};
