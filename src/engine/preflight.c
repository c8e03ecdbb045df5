/* Checks before any resource is created: input validation (no AWS call),
 * the caller's public address, and the resources a deploy reuses. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/partition.h"
#include "aws/read.h"
#include "core/str.h"
#include "cost/estimate.h"
#include "engine/placement.h"
#include "engine/plan.h"
#include "stack/stack.h"
#include "stack/validate.h"

/* One decimal number of at most 3 digits without a leading zero, up to max,
 * at *p; advances *p past it. */
static bool strict_number(const char **p, long max, long *out)
{
    const char *s = *p;
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    if (v > max)
        return false;
    *out = v;
    *p = s + n;
    return true;
}

/* Says what is wrong with the address part of a CIDR (up to the '/'). */
static GM_MUST_CHECK gm_status bad_address(const char *cidr, gm_error *err)
{
    const char *p = cidr;
    for (int i = 0; i < 4; i++) {
        size_t n = strspn(p, "0123456789");
        if (n > 1 && p[0] == '0')
            return gm_error_set(err, GM_ERR_INVALID,
                                "invalid --allow-cidr '%s': the octet '%.*s' has a leading zero "
                                "(write it without: '%ld')",
                                cidr, (int)n, p, strtol(p, NULL, 10));
        if (n > 0 && n <= 3 && strtol(p, NULL, 10) > 255)
            return gm_error_set(err, GM_ERR_INVALID,
                                "invalid --allow-cidr '%s': the octet '%.*s' is over 255", cidr,
                                (int)n, p);
        if (n == 0 || n > 3 || (i < 3 && p[n] != '.'))
            break;
        p += n + 1;
    }
    return gm_error_set(err, GM_ERR_INVALID,
                        "invalid --allow-cidr '%s': expected an IPv4 range of four numbers 0-255 "
                        "and a prefix length, like '203.0.113.0/24'",
                        cidr);
}

gm_status gm_engine_parse_cidr(const char *cidr, int *out_prefix, gm_error *err)
{
    if (!cidr || !*cidr)
        return gm_error_set(err, GM_ERR_INVALID,
                            "empty --allow-cidr: expected an IPv4 range like '203.0.113.0/24'");
    if (strchr(cidr, ':'))
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid --allow-cidr '%s': only IPv4 ranges are supported (IPv6 is "
                            "not), like '203.0.113.0/24'",
                            cidr);
    const char *p = cidr;
    uint32_t addr = 0;
    long octet = 0, bits = 0;
    for (int i = 0; i < 4; i++) {
        if ((i > 0 && *p++ != '.') || !strict_number(&p, 255, &octet))
            return bad_address(cidr, err);
        addr = addr << 8 | (uint32_t)octet;
    }
    if (*p == '\0')
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid --allow-cidr '%s': no prefix length; for this one address "
                            "write '%s/32'",
                            cidr, cidr);
    if (*p != '/')
        return bad_address(cidr, err);
    p++;
    if (!strict_number(&p, 32, &bits) || *p)
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid --allow-cidr '%s': the prefix length after '/' must be a "
                            "number from 0 to 32 without a leading zero",
                            cidr);
    uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    if (addr & ~mask) {
        uint32_t net = addr & mask;
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid --allow-cidr '%s': host bits are set; did you mean "
                            "'%u.%u.%u.%u/%ld'?",
                            cidr, net >> 24, (net >> 16) & 255, (net >> 8) & 255, net & 255, bits);
    }
    if (out_prefix)
        *out_prefix = (int)bits;
    return GM_OK;
}

static GM_MUST_CHECK gm_status check_instance_type(const char *t, gm_error *err)
{
    size_t n = strlen(t);
    const char *dot = strchr(t, '.');
    bool ok = n >= 4 && n <= 32 && dot && dot != t && dot[1] && islower((unsigned char)t[0]) &&
              !strchr(dot + 1, '.');
    for (size_t i = 0; ok && i < n; i++)
        ok = islower((unsigned char)t[i]) || isdigit((unsigned char)t[i]) || t[i] == '.' ||
             t[i] == '-';
    if (!ok)
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid --instance-type '%s': expected an EC2 type like 't3.xlarge'",
                            t);
    return GM_OK;
}

static bool aws_id_ok(const char *id, const char *prefix)
{
    if (!gm_str_startswith(id, prefix) || strlen(id) < strlen(prefix) + 8 || strlen(id) > 40)
        return false;
    for (const char *p = id + strlen(prefix); *p; p++)
        if (!isxdigit((unsigned char)*p))
            return false;
    return true;
}

/* "arn:PARTITION:acm:REGION:ACCOUNT:certificate/ID" with a known partition,
 * a region of it and a 12-digit account: the partition and region (copied
 * into out_partition / out_region, 32 bytes each, when not NULL). */
static bool certificate_arn_split(const char *arn, char *out_partition, char *out_region)
{
    char part[32], region[32], account[16];
    int end = 0;
    if (strlen(arn) > 2048 ||
        sscanf(arn, "arn:%31[a-z-]:acm:%31[a-z0-9-]:%15[0-9]:certificate/%n", part, region, account,
               &end) != 3 ||
        end == 0 || !arn[end] || strlen(account) != 12)
        return false;
    for (const char *c = arn + end; *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '-'))
            return false;
    const gm_partition *p = gm_partition_by_id(part);
    if (!p || gm_partition_of(region) != p)
        return false;
    if (out_partition)
        snprintf(out_partition, 32, "%s", part);
    if (out_region)
        snprintf(out_region, 32, "%s", region);
    return true;
}

/* The load balancer options: only on tier automation, within ELBv2's ranges. */
static GM_MUST_CHECK gm_status check_alb_options(const gm_deploy_config *cfg, gm_error *err)
{
    if (!gm_tier_has_alb(cfg->tier) &&
        (cfg->certificate_arn || cfg->alb_timeout_ms || cfg->hc_interval_s || cfg->hc_timeout_s ||
         cfg->healthy_threshold || cfg->unhealthy_threshold))
        return gm_error_set(err, GM_ERR_INVALID,
                            "load balancer options need --tier automation (tier '%s' has none)",
                            gm_tier_name(cfg->tier));
    if (cfg->certificate_arn && !certificate_arn_split(cfg->certificate_arn, NULL, NULL))
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid --certificate-arn '%s': expected an ACM certificate arn "
                            "(arn:PARTITION:acm:REGION:ACCOUNT:certificate/ID, PARTITION aws, "
                            "aws-cn or aws-us-gov)",
                            cfg->certificate_arn);
    int interval = cfg->hc_interval_s ? cfg->hc_interval_s : 30;
    int timeout = cfg->hc_timeout_s ? cfg->hc_timeout_s : 5;
    if (interval < 5 || interval > 300)
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid --health-check-interval %d: must be 5 to 300 seconds",
                            interval);
    if (timeout < 2 || timeout > 120 || timeout >= interval)
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid --health-check-timeout %d: must be 2 to 120 seconds and "
                            "shorter than the interval (%d s)",
                            timeout, interval);
    if (cfg->healthy_threshold && (cfg->healthy_threshold < 2 || cfg->healthy_threshold > 10))
        return gm_error_set(err, GM_ERR_INVALID, "invalid --healthy-threshold %d: must be 2 to 10",
                            cfg->healthy_threshold);
    if (cfg->unhealthy_threshold && (cfg->unhealthy_threshold < 2 || cfg->unhealthy_threshold > 10))
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid --unhealthy-threshold %d: must be 2 to 10",
                            cfg->unhealthy_threshold);
    if (gm_tier_has_alb(cfg->tier) && cfg->vpc_id && cfg->subnet_ids[0] && cfg->subnet_ids[1] &&
        strcmp(cfg->subnet_ids[0], cfg->subnet_ids[1]) == 0)
        return gm_error_set(err, GM_ERR_INVALID,
                            "the load balancer needs two subnets in two availability zones");
    return GM_OK;
}

/* One candidate type: its syntax, and what the stack needs of it (a GPU for
 * tier gpu). */
static GM_MUST_CHECK gm_status check_type(const gm_deploy_config *cfg, const char *type,
                                          gm_error *err)
{
    gm_status st = check_instance_type(type, err);
    if (st != GM_OK)
        return st;
    gm_stack_params sp = {.name = cfg->name,
                          .tier = cfg->tier,
                          .region = "us-east-1",
                          .instance_type = type,
                          .os = cfg->os};
    return gm_stack_validate(&sp, err);
}

/* One image serves every candidate: their architectures must agree. */
static GM_MUST_CHECK gm_status check_one_architecture(const gm_deploy_config *cfg, gm_error *err)
{
    gm_arch first = gm_instance_type_arch(cfg->instance_type);
    for (int i = 0; i < cfg->n_types; i++)
        if (gm_instance_type_arch(cfg->instance_types[i]) != first)
            return gm_error_set(err, GM_ERR_INVALID,
                                "the instance types mix architectures: '%s' is %s and '%s' is %s; "
                                "one machine image serves every candidate, so name types of one "
                                "architecture",
                                cfg->instance_type, gm_arch_name(first), cfg->instance_types[i],
                                gm_arch_name(gm_instance_type_arch(cfg->instance_types[i])));
    return GM_OK;
}

/* An availability zone name: region-like letters and digits, then a letter
 * ("us-east-1a", "use1-az1" ids are not accepted). */
static bool zone_ok(const char *z)
{
    size_t n = strlen(z);
    if (n < 4 || n > 32 || !islower((unsigned char)z[n - 1]) || !isdigit((unsigned char)z[n - 2]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)z[i]) || isdigit((unsigned char)z[i]) || z[i] == '-'))
            return false;
    return true;
}

/* Ids of resources to reuse: their syntax and the combinations that go
 * together. */
static GM_MUST_CHECK gm_status check_reuse_ids(const gm_deploy_config *cfg, gm_error *err)
{
    if (cfg->vpc_id && !aws_id_ok(cfg->vpc_id, "vpc-"))
        return gm_error_set(err, GM_ERR_INVALID, "invalid --vpc-id '%s': expected vpc-xxxxxxxx",
                            cfg->vpc_id);
    if ((cfg->vpc_id != NULL) != (cfg->subnet_ids[0] != NULL))
        return gm_error_set(err, GM_ERR_INVALID,
                            "--vpc-id and --subnet-ids go together: give both or neither");
    for (int i = 0; i < 2 && cfg->subnet_ids[0]; i++)
        if (!cfg->subnet_ids[i] || !aws_id_ok(cfg->subnet_ids[i], "subnet-"))
            return gm_error_set(
                err, GM_ERR_INVALID,
                "invalid --subnet-ids: expected two subnet ids, 'subnet-a,subnet-b'");
    if (cfg->subnet_ids[0] && strcmp(cfg->subnet_ids[0], cfg->subnet_ids[1]) == 0)
        return gm_error_set(err, GM_ERR_INVALID, "--subnet-ids names the same subnet twice");
    if (cfg->security_group_id && !aws_id_ok(cfg->security_group_id, "sg-"))
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid --security-group-id '%s': expected sg-xxxxxxxx",
                            cfg->security_group_id);
    if (cfg->security_group_id && !cfg->vpc_id)
        return gm_error_set(err, GM_ERR_INVALID,
                            "--security-group-id needs --vpc-id and --subnet-ids (its VPC)");
    if (cfg->efs_id && !aws_id_ok(cfg->efs_id, "fs-"))
        return gm_error_set(err, GM_ERR_INVALID, "invalid --efs-id '%s': expected fs-xxxxxxxx",
                            cfg->efs_id);
    return GM_OK;
}

gm_status gm_engine_check_config(const gm_deploy_config *cfg, gm_error *err)
{
    gm_status st = gm_engine_check_name(cfg->name, err);
    if (st == GM_OK && (unsigned)cfg->tier >= GM_TIER_COUNT)
        st = gm_error_set(err, GM_ERR_INVALID, "unknown tier %d", (int)cfg->tier);
    if (st == GM_OK)
        st = check_alb_options(cfg, err);
    if (st == GM_OK)
        st = check_type(cfg, cfg->instance_type, err);
    for (int i = 0; st == GM_OK && i < cfg->n_types; i++)
        st = check_type(cfg, cfg->instance_types[i], err);
    if (st == GM_OK)
        st = check_one_architecture(cfg, err);
    if (st == GM_OK && (cfg->data_volume_gb < 0 || cfg->data_volume_gb > GM_DATA_VOLUME_GB_MAX))
        st = gm_error_set(err, GM_ERR_INVALID, "invalid --data-volume-gb %d: expected 1 to %d GiB",
                          cfg->data_volume_gb, GM_DATA_VOLUME_GB_MAX);
    for (int i = 0; st == GM_OK && i < cfg->n_cidrs; i++)
        st = gm_engine_parse_cidr(cfg->cidrs[i], NULL, err);
    for (int i = 0; st == GM_OK && i < cfg->n_azs; i++)
        if (!zone_ok(cfg->azs[i]))
            st = gm_error_set(err, GM_ERR_INVALID,
                              "invalid --azs zone '%s': expected a zone name like 'us-east-1a'",
                              cfg->azs[i]);
    if (st == GM_OK && cfg->n_azs == 1)
        st = gm_error_set(err, GM_ERR_INVALID,
                          "--azs needs at least two zones: the deployment spans two");
    if (st == GM_OK)
        st = check_reuse_ids(cfg, err);
    if (st == GM_OK && cfg->key_name && (!*cfg->key_name || strlen(cfg->key_name) > 255))
        st = gm_error_set(err, GM_ERR_INVALID, "invalid --key-name");
    if (st == GM_OK && cfg->models_set)
        st = gm_stack_validate_models(cfg->models, (size_t)cfg->n_models, err);
    if (st == GM_OK && (cfg->n_images < 0 || cfg->n_images > GM_MAX_IMAGES))
        st = gm_error_set(err, GM_ERR_INVALID, "%d --image overrides: at most %d", cfg->n_images,
                          GM_MAX_IMAGES);
    if (st == GM_OK)
        st = gm_stack_validate_images(cfg->tier, cfg->image_services, cfg->image_refs,
                                      (size_t)cfg->n_images, err);
    return st;
}

const char *const *gm_engine_models(const gm_deploy_config *cfg, size_t *out_n)
{
    if (!cfg->models_set)
        return gm_stack_default_models(cfg->tier, out_n);
    *out_n = (size_t)cfg->n_models;
    return cfg->models;
}

gm_status gm_engine_check_config_region(const gm_deploy_config *cfg, const char *region,
                                        gm_error *err)
{
    const gm_partition *p = gm_partition_of(region);
    if (!p)
        return gm_region_check(region, "the deployment", err);
    char part[32], cert_region[32];
    if (cfg->certificate_arn && certificate_arn_split(cfg->certificate_arn, part, cert_region) &&
        (strcmp(part, p->id) != 0 || strcmp(cert_region, region) != 0))
        return gm_error_set(err, GM_ERR_INVALID,
                            "--certificate-arn '%s' is a certificate of region '%s' (partition "
                            "%s), but the deployment is in '%s' (partition %s): a load balancer "
                            "takes a certificate of its own region",
                            cfg->certificate_arn, cert_region, part, region, p->id);
    size_t n = strlen(region);
    for (int i = 0; i < cfg->n_azs; i++)
        if (strncmp(cfg->azs[i], region, n) != 0 ||
            !(islower((unsigned char)cfg->azs[i][n]) || cfg->azs[i][n] == '-'))
            return gm_error_set(err, GM_ERR_INVALID,
                                "--azs zone '%s' is not in region '%s' (its zones are '%sa', "
                                "'%sb', ...)",
                                cfg->azs[i], region, region, region);
    return GM_OK;
}

/* The caller's public address, for the default ingress range. */
gm_status gm_engine_detect_cidr(gm_aws_client *aws, const char *endpoint, char *out, size_t size,
                                gm_error *err)
{
    if (!endpoint || !*endpoint) {
        if (gm_aws_endpoint_is_loopback(aws, &gm_svc_ec2))
            return gm_error_set(err, GM_ERR_INVALID,
                                "cannot detect your public address while AWS is a local emulator: "
                                "pass --allow-cidr CIDR (or set GEUSEMAKER_IP_ENDPOINT)");
        endpoint = "https://checkip.amazonaws.com/";
    }
    gm_http_request req;
    gm_http_response resp;
    gm_http_request_init(&req);
    gm_http_response_init(&resp);
    resp.body.max = 256;
    gm_status st = gm_http_request_setup(&req, "GET", endpoint);
    req.total_timeout_ms = 5000;
    req.connect_timeout_ms = 3000;
    gm_error terr = {0};
    if (st == GM_OK)
        st = gm_transport_send(gm_aws_client_transport(aws), &req, &resp, &terr);
    char ip[64] = "";
    if (st == GM_OK && resp.status == 200)
        snprintf(ip, sizeof ip, "%s", gm_buf_cstr(&resp.body));
    gm_str_trim(ip);
    struct in_addr a;
    if (st != GM_OK || resp.status != 200 || inet_pton(AF_INET, ip, &a) != 1) {
        gm_error_set(err, GM_ERR_INVALID,
                     "cannot detect your public address from '%s'%s%s: pass --allow-cidr CIDR",
                     endpoint, *terr.message ? ": " : "", terr.message);
        st = GM_ERR_INVALID;
    } else {
        snprintf(out, size, "%s/32", ip);
    }
    gm_http_request_release(&req);
    gm_http_response_release(&resp);
    return st;
}

/* The zones of the two reused subnets (in the order given), after checking
 * they are in the VPC and in two zones. */
static GM_MUST_CHECK gm_status check_reused_subnets(gm_aws_client *aws, const gm_deploy_config *cfg,
                                                    char az[2][64], gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "SubnetId.1", cfg->subnet_ids[0]);
    gm_params_add(&p, "SubnetId.2", cfg->subnet_ids[1]);
    xmlDocPtr doc = NULL;
    gm_status st = gm_aws_query(aws, &gm_svc_ec2, "DescribeSubnets", &p, &doc, err);
    gm_params_release(&p);
    gm_read_rows rows;
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_subnets, &rows, err);
    xmlFreeDoc(doc);
    if (st != GM_OK)
        return st;
    for (size_t i = 0; st == GM_OK && i < rows.n; i++) {
        const char *vpc = gm_read_get(&rows, i, GM_EC2_SUBNET_VPC);
        if (strcmp(vpc, cfg->vpc_id) != 0) {
            st = gm_error_set(err, GM_ERR_INVALID, "subnet is in '%s', not in --vpc-id '%s'", vpc,
                              cfg->vpc_id);
            break;
        }
        /* Zones in the order the subnets were given, whatever the answer's order. */
        int k = strcmp(gm_read_get(&rows, i, GM_EC2_ID), cfg->subnet_ids[0]) == 0 ? 0 : 1;
        snprintf(az[k], 64, "%s", gm_read_get(&rows, i, GM_EC2_SUBNET_AZ));
    }
    size_t found = rows.n;
    gm_read_rows_release(&rows);
    if (st == GM_OK && (found != 2 || !*az[0] || !*az[1] || strcmp(az[0], az[1]) == 0))
        st = gm_error_set(err, GM_ERR_INVALID,
                          "--subnet-ids must name two existing subnets in two different "
                          "availability zones");
    return st;
}

static GM_MUST_CHECK gm_status check_reused_sg(gm_aws_client *aws, const gm_deploy_config *cfg,
                                               gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "GroupId.1", cfg->security_group_id);
    xmlDocPtr doc = NULL;
    gm_status st = gm_aws_query(aws, &gm_svc_ec2, "DescribeSecurityGroups", &p, &doc, err);
    gm_params_release(&p);
    gm_read_rows rows;
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_security_groups, &rows, err);
    xmlFreeDoc(doc);
    if (st != GM_OK)
        return st;
    if (!cfg->vpc_id || strcmp(gm_read_get(&rows, 0, GM_EC2_SG_VPC), cfg->vpc_id) != 0)
        st = gm_error_set(err, GM_ERR_INVALID, "--security-group-id '%s' is not in --vpc-id '%s'",
                          cfg->security_group_id, cfg->vpc_id);
    gm_read_rows_release(&rows);
    return st;
}

gm_status gm_engine_check_reused(gm_aws_client *aws, const gm_deploy_config *cfg,
                                 char out_azs[2][64], gm_error *err)
{
    char az[2][64] = {"", ""};
    gm_status st = GM_OK;
    if (cfg->vpc_id)
        st = check_reused_subnets(aws, cfg, az, err);
    if (st == GM_OK && cfg->vpc_id && out_azs) {
        memcpy(out_azs[0], az[0], sizeof az[0]);
        memcpy(out_azs[1], az[1], sizeof az[1]);
    }
    if (st == GM_OK && cfg->security_group_id)
        st = check_reused_sg(aws, cfg, err);
    if (st == GM_OK && cfg->efs_id) {
        char path[128];
        snprintf(path, sizeof path, "/2015-02-01/file-systems?FileSystemId=%s", cfg->efs_id);
        json_t *out = NULL;
        st =
            gm_aws_rest_json(aws, &gm_svc_efs, "DescribeFileSystems", "GET", path, NULL, &out, err);
        json_decref(out);
    }
    return st;
}

gm_status gm_engine_check_name(const char *name, gm_error *err)
{
    if (!name || !*name)
        return gm_error_set(err, GM_ERR_INVALID, "a deployment name is required (--name NAME)");
    return gm_stack_validate_name(name, err);
}

gm_status gm_engine_budget_check(gm_aws_client *aws, gm_aws_client *pricing,
                                 const gm_deploy_config *cfg, json_t **out_estimate, gm_error *err)
{
    if (out_estimate)
        *out_estimate = NULL;
    gm_cost_market *m = NULL;
    gm_status st = gm_engine_gather_market(aws, pricing, cfg, &m, err);
    if (st != GM_OK)
        return st;
    gm_cost_strategy s;
    gm_engine_strategy(cfg, cfg->tier, true, &s);
    gm_cost_assumptions a;
    gm_engine_assumptions(cfg, &a);
    gm_cost_ranking r;
    gm_cost_ranking_init(&r);
    st = gm_cost_rank(m, &s, &r, err);
    json_t *est = NULL;
    if (st == GM_OK && r.n_viable == 0)
        st = gm_error_set(err, GM_ERR_INVALID, "no instance candidate is available%s%s",
                          r.n_rejected ? ": " : "", r.n_rejected ? r.rejected[0].reason : "");
    if (st == GM_OK) {
        est = gm_cost_estimate_candidate(&r.viable[0], gm_tier_has_alb(cfg->tier), &a);
        if (!est)
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        else if (cfg->budget_monthly > 0 && !cfg->force)
            st = gm_cost_budget_check(est, cfg->budget_monthly, err);
    }
    gm_cost_ranking_release(&r);
    gm_cost_market_free(m);
    if (st == GM_OK && out_estimate)
        *out_estimate = est;
    else
        json_decref(est);
    return st;
}
