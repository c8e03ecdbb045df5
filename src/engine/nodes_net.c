/* Network node kinds: availability zones, AMI lookup, VPC, internet gateway,
 * subnets, public routing, security group and its rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "core/str.h"
#include "engine/nodes.h"
#include "stack/validate.h"

static const char *const NOT_FOUND_VPC[] = {"InvalidVpcID.NotFound", NULL};
/* A repeated CreateSubnet / CreateSecurityGroup whose first try was made. */
static const char *const SUBNET_TAKEN[] = {"InvalidSubnet.Conflict", NULL};
static const char *const SG_TAKEN[] = {"InvalidGroup.Duplicate", NULL};

/* Reads the one id a create call answered with. */
static GM_MUST_CHECK gm_status created_id(xmlDocPtr doc, const gm_read_spec *spec,
                                          const char *action, char **out_id, gm_error *err)
{
    gm_read_rows rows;
    gm_status st = gm_read_xml(doc, spec, &rows, err);
    if (st == GM_OK) {
        *out_id = gm_read_dup(&rows, 0, GM_EC2_ID);
        if (!*out_id)
            st = gm_error_set(err, GM_ERR_PARSE, "%s returned no id", action);
    }
    gm_read_rows_release(&rows);
    return st;
}

/* An EC2 create without a token: its action, parameters and answer. */
typedef struct ec2_create_req {
    const char *action;
    gm_params *params;
    const gm_read_spec *spec;
} ec2_create_req;

static GM_MUST_CHECK gm_status send_ec2_create(gm_node *n, void *ctx, char **out_id, gm_error *err)
{
    ec2_create_req *r = ctx;
    r->params->once = true;
    xmlDocPtr doc = NULL;
    gm_status st = gm_n_ec2(n, r->action, r->params, &doc, NULL, err);
    if (st == GM_OK)
        st = created_id(doc, r->spec, r->action, out_id, err);
    xmlFreeDoc(doc);
    return st;
}

/* Sends an EC2 create (found by tag if its answer is lost, never made twice)
 * and journals the id. */
static GM_MUST_CHECK gm_status ec2_create(gm_node *n, const char *action, gm_params *p,
                                          const gm_read_spec *spec,
                                          const char *const *duplicate_codes, char **out_id,
                                          gm_error *err)
{
    ec2_create_req r = {action, p, spec};
    gm_status st = gm_n_create_once(n, send_ec2_create, &r, duplicate_codes, out_id, err);
    if (st == GM_OK)
        st = gm_node_created(n, *out_id, err);
    return st;
}

/* ---- availability zones --------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool zone_allowed(const gm_deploy_config *cfg, const char *az)
{
    for (int i = 0; i < cfg->n_azs; i++)
        if (strcmp(cfg->azs[i], az) == 0)
            return true;
    return cfg->n_azs == 0;
}

/* One call: the zones that offer the instance type (sorted; the first two,
 * among --azs when given). */
static GM_MUST_CHECK gm_status azs_create(gm_node *n, gm_error *err)
{
    const gm_deploy_config *cfg = gm_node_config(n);
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "LocationType", "availability-zone");
    gm_params_add(&p, "Filter.1.Name", "instance-type");
    gm_params_add(&p, "Filter.1.Value.1", cfg->instance_type);
    xmlDocPtr doc = NULL;
    gm_status st = gm_n_ec2(n, "DescribeInstanceTypeOfferings", &p, &doc, NULL, err);
    gm_params_release(&p);
    gm_read_rows rows;
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_offerings, &rows, err);
    xmlFreeDoc(doc);
    if (st != GM_OK)
        return st;
    const char **zones = calloc(rows.n ? rows.n : 1, sizeof *zones);
    if (!zones) {
        gm_read_rows_release(&rows);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    size_t nz = 0;
    for (size_t i = 0; i < rows.n; i++)
        if (*gm_read_get(&rows, i, 0) && zone_allowed(cfg, gm_read_get(&rows, i, 0)))
            zones[nz++] = gm_read_get(&rows, i, 0);
    if (nz < 2)
        st = gm_error_set(err, GM_ERR_INVALID,
                          "instance type '%s' is offered in %zu availability zone(s) of region "
                          "'%s'%s: two are needed",
                          cfg->instance_type, nz, gm_aws_client_region(gm_node_aws(n)),
                          cfg->n_azs ? " among --azs" : "");
    if (st == GM_OK) {
        qsort(zones, nz, sizeof *zones, cmp_str);
        char id[128];
        snprintf(id, sizeof id, "%s,%s", zones[0], zones[1]);
        st = gm_node_set_output(n, "az_a", zones[0], err);
        if (st == GM_OK)
            st = gm_node_set_output(n, "az_b", zones[1], err);
        if (st == GM_OK)
            st = gm_node_created(n, id, err);
    }
    free(zones);
    gm_read_rows_release(&rows);
    return st;
}

/* adopt: the zones are those of the subnets made in them. */
static GM_MUST_CHECK gm_status azs_read_back(gm_node *n, const char *id, gm_error *err)
{
    char *a = gm_node_output_of(n, "subnet_a", "az");
    char *b = gm_node_output_of(n, "subnet_b", "az");
    gm_status st = GM_OK;
    if (a && b && *a && *b) {
        char zones[128];
        snprintf(zones, sizeof zones, "%s,%s", a, b);
        st = gm_node_set_output(n, "az_a", a, err);
        if (st == GM_OK)
            st = gm_node_set_output(n, "az_b", b, err);
        if (st == GM_OK)
            st = gm_node_created(n, zones, err);
    }
    free(a);
    free(b);
    return st;
}

const gm_node_ops gm_ops_azs = {
    .kind = "azs",
    .label = "choosing availability zones",
    .create = azs_create,
    .read_back = azs_read_back,
};

/* ---- AMI lookup ----------------------------------------------------------- */

/* The SSM parameter naming the image: GEUSEMAKER_AMI_PARAMETER, else the one
 * of the deployment's system, tier and architecture (stack/validate.h). */
static GM_MUST_CHECK gm_status ami_parameter(gm_node *n, char *out, size_t size, gm_error *err)
{
    const char *override = gm_node_settings(n)->ami_parameter;
    const gm_deploy_config *cfg = gm_node_config(n);
    if (override && *override) {
        snprintf(out, size, "%s", override);
        return GM_OK;
    }
    if (!gm_stack_ami_parameter(cfg->os, gm_node_tier(n), gm_instance_type_arch(cfg->instance_type),
                                out, size))
        return gm_error_set(err, GM_ERR_INTERNAL, "no image parameter for this deployment");
    return GM_OK;
}

/* GetParameter: the image id the parameter names. */
static GM_MUST_CHECK gm_status read_ami_id(gm_node *n, const char *param, char *out, size_t size,
                                           gm_error *err)
{
    json_t *body = json_pack("{s:s}", "Name", param);
    json_t *answer = NULL;
    gm_status st =
        body ? gm_aws_json(gm_node_aws(n), &gm_svc_ssm, "GetParameter", body, &answer, err)
             : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    json_decref(body);
    gm_read_rows rows;
    if (st == GM_OK)
        st = gm_ssm_read_parameters(answer, &rows, err);
    json_decref(answer);
    if (st != GM_OK)
        return st;
    const char *ami = gm_read_get(&rows, 0, GM_SSM_VALUE);
    if (strncmp(ami, "ami-", 4) != 0 || strlen(ami) >= size)
        st = gm_error_set(err, GM_ERR_PARSE, "ssm parameter '%s' does not hold an ami id", param);
    else
        snprintf(out, size, "%s", ami);
    gm_read_rows_release(&rows);
    return st;
}

/* The size (GiB) of the image's root volume snapshot: its mapping of the
 * root device; 0 when the image maps none. */
static long root_snapshot_gb(const gm_read_rows *devices, const char *root_device)
{
    for (size_t i = 0; i < devices->n; i++)
        if (strcmp(gm_read_get(devices, i, GM_EC2_BDM_DEVICE), root_device) == 0)
            return strtol(gm_read_get(devices, i, GM_EC2_BDM_SIZE), NULL, 10);
    return 0;
}

/* What the launch needs of the image, checked and recorded: its
 * architecture (that of the instance types), its root device (an EBS one)
 * and the size of that device's snapshot. */
static GM_MUST_CHECK gm_status record_image(gm_node *n, const char *ami, const char *param,
                                            const gm_read_rows *img, const gm_read_rows *devices,
                                            gm_error *err)
{
    const char *type = gm_node_config(n)->instance_type;
    const char *want = gm_arch_name(gm_instance_type_arch(type));
    const char *arch = gm_read_get(img, 0, GM_EC2_IMG_ARCH);
    const char *root = gm_read_get(img, 0, GM_EC2_IMG_ROOT_DEVICE);
    const char *state = gm_read_get(img, 0, GM_EC2_IMG_STATE);
    if (img->n == 0)
        return gm_error_set(err, GM_ERR_NOT_FOUND,
                            "image '%s' named by ssm parameter '%s' is not visible to this account "
                            "(DescribeImages found nothing)",
                            ami, param);
    if (strcmp(arch, want) != 0)
        return gm_error_set(err, GM_ERR_INVALID,
                            "image '%s' (ssm parameter '%s') is for %s, but instance type '%s' "
                            "is %s",
                            ami, param, *arch ? arch : "an unknown architecture", type, want);
    /* EBS-backed: so its type says, or its root device maps an EBS snapshot
     * (moto reports an image made by CreateImage as "standard"). */
    bool ebs = strcmp(gm_read_get(img, 0, GM_EC2_IMG_ROOT_DEVICE_TYPE), "ebs") == 0 ||
               root_snapshot_gb(devices, root) > 0;
    if (!ebs || !*root)
        return gm_error_set(err, GM_ERR_INVALID,
                            "image '%s' (ssm parameter '%s') has no EBS root device", ami, param);
    if (*state && strcmp(state, "available") != 0)
        return gm_error_set(err, GM_ERR_INVALID, "image '%s' (ssm parameter '%s') is %s", ami,
                            param, state);
    char gb[32];
    snprintf(gb, sizeof gb, "%ld", root_snapshot_gb(devices, root));
    const char *outs[][2] = {{"parameter", param},
                             {"architecture", arch},
                             {"root_device", root},
                             {"root_snapshot_gb", gb},
                             {"image_name", gm_read_get(img, 0, GM_EC2_IMG_NAME)},
                             {"os", gm_os_option_name(gm_node_config(n)->os)}};
    gm_status st = GM_OK;
    for (size_t i = 0; st == GM_OK && i < sizeof outs / sizeof *outs; i++)
        st = gm_node_set_output(n, outs[i][0], outs[i][1], err);
    return st;
}

/* DescribeImages of the one image, then record_image. */
static GM_MUST_CHECK gm_status describe_image(gm_node *n, const char *ami, const char *param,
                                              gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "ImageId.1", ami);
    xmlDocPtr doc = NULL;
    gm_status st = gm_n_ec2(n, "DescribeImages", &p, &doc, NULL, err);
    gm_params_release(&p);
    gm_read_rows img, devices;
    gm_read_rows_init(&img);
    gm_read_rows_init(&devices);
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_images, &img, err);
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_image_devices, &devices, err);
    xmlFreeDoc(doc);
    if (st == GM_OK)
        st = record_image(n, ami, param, &img, &devices, err);
    gm_read_rows_release(&img);
    gm_read_rows_release(&devices);
    return st;
}

/* The image: its id from the SSM parameter, its facts from DescribeImages
 * (the root device and its snapshot's size size the root volume; an image of
 * another architecture than the instance types is refused here, before
 * anything is launched). */
static GM_MUST_CHECK gm_status ami_create(gm_node *n, gm_error *err)
{
    char param[256], ami[64];
    const char *chosen = gm_node_config(n)->ami; /* --image baked|ami-ID, checked before */
    if (chosen)
        snprintf(param, sizeof param, "--image"), snprintf(ami, sizeof ami, "%s", chosen);
    gm_status st = chosen ? GM_OK : ami_parameter(n, param, sizeof param, err);
    if (st == GM_OK && !chosen)
        st = read_ami_id(n, param, ami, sizeof ami, err);
    if (st == GM_OK)
        st = describe_image(n, ami, param, err);
    if (st == GM_OK)
        st = gm_node_created(n, ami, err);
    return st;
}

const gm_node_ops gm_ops_ami = {
    .kind = "ami",
    .label = "finding the machine image",
    .create = ami_create,
};

/* ---- VPC ------------------------------------------------------------------ */

static GM_MUST_CHECK gm_status vpc_find(gm_node *n, gm_ids *out, gm_error *err)
{
    return gm_n_ec2_find_tagged(n, "DescribeVpcs", &gm_ec2_vpcs, NULL, NULL, out, err);
}

static GM_MUST_CHECK gm_status vpc_create(gm_node *n, gm_error *err)
{
    char *id = NULL;
    gm_status st = gm_n_adopt_or_intent(n, &id, NULL, 0, err);
    if (st == GM_OK && !id) {
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "CidrBlock", "10.0.0.0/16");
        gm_n_tag_spec(n, &p, 1, "vpc");
        st = ec2_create(n, "CreateVpc", &p, &gm_ec2_created_vpc, NULL, &id, err);
        gm_params_release(&p);
    }
    free(id);
    return st;
}

static GM_MUST_CHECK gm_status ec2_delete(gm_node *n, const char *action, const char *id_param,
                                          const char *id, const char *const *gone, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, id_param, id);
    gm_status st = gm_n_ec2(n, action, &p, NULL, gone, err);
    gm_params_release(&p);
    return st;
}

static GM_MUST_CHECK gm_status vpc_destroy(gm_node *n, const char *id, gm_error *err)
{
    return ec2_delete(n, "DeleteVpc", "VpcId", id, NOT_FOUND_VPC, err);
}

static GM_MUST_CHECK gm_status vpc_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                         size_t why_size, gm_error *err)
{
    return gm_n_owner_ec2(n, id, "DescribeVpcs", "VpcId.1", "vpcSet/item", out, why, why_size, err);
}

static GM_MUST_CHECK gm_status vpc_inspect(gm_node *n, const char *id, json_t *out, gm_error *err)
{
    return gm_n_inspect_ec2(n, "DescribeVpcs", "VpcId.1", id, &gm_ec2_vpcs, GM_EC2_STATE, out, err);
}

const gm_node_ops gm_ops_vpc = {
    .kind = "vpc",
    .label = "creating the VPC",
    .delete_label = "deleting the VPC",
    .owns_resource = true,
    .listed_by_tags = true,
    .create = vpc_create,
    .find = vpc_find,
    .destroy = vpc_destroy,
    .owner = vpc_owner,
    .inspect = vpc_inspect,
};

static GM_MUST_CHECK gm_status vpc_dns_create(gm_node *n, gm_error *err)
{
    char *vpc = gm_node_id_of(n, "vpc");
    if (!vpc)
        return gm_error_set(err, GM_ERR_INTERNAL, "no vpc id for the dns settings");
    const char *attrs[] = {"EnableDnsSupport.Value", "EnableDnsHostnames.Value"};
    gm_n_call calls[2];
    memset(calls, 0, sizeof calls);
    for (int i = 0; i < 2; i++) {
        calls[i].action = "ModifyVpcAttribute";
        gm_params_init(&calls[i].params);
        gm_params_add(&calls[i].params, "VpcId", vpc);
        gm_params_add(&calls[i].params, attrs[i], "true");
    }
    gm_status st = gm_n_parallel(n, calls, 2, err);
    if (st == GM_OK)
        st = gm_node_created(n, vpc, err);
    free(vpc);
    return st;
}

const gm_node_ops gm_ops_vpc_dns = {
    .kind = "vpc_dns",
    .label = "turning on VPC DNS hostnames",
    .create = vpc_dns_create,
};

/* ---- internet gateway ------------------------------------------------------ */

static GM_MUST_CHECK gm_status igw_find(gm_node *n, gm_ids *out, gm_error *err)
{
    return gm_n_ec2_find_tagged(n, "DescribeInternetGateways", &gm_ec2_igws, NULL, NULL, out, err);
}

static GM_MUST_CHECK gm_status igw_create(gm_node *n, gm_error *err)
{
    char *id = NULL;
    gm_status st = gm_n_adopt_or_intent(n, &id, NULL, 0, err);
    if (st == GM_OK && !id) {
        gm_params p;
        gm_params_init(&p);
        gm_n_tag_spec(n, &p, 1, "internet-gateway");
        st = ec2_create(n, "CreateInternetGateway", &p, &gm_ec2_created_igw, NULL, &id, err);
        gm_params_release(&p);
    }
    if (st == GM_OK) {
        char *vpc = gm_node_id_of(n, "vpc");
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "InternetGatewayId", id);
        gm_params_add(&p, "VpcId", vpc);
        static const char *const ok[] = {"Resource.AlreadyAssociated", NULL};
        st = gm_n_ec2(n, "AttachInternetGateway", &p, NULL, ok, err);
        gm_params_release(&p);
        free(vpc);
    }
    free(id);
    return st;
}

static const char *const IGW_NOT_ATTACHED[] = {"Gateway.NotAttached",
                                               "InvalidInternetGatewayID.NotFound", NULL};

/* Detached from the deployment's VPC (the record names it) without a look
 * first, then deleted: two round trips. *unsure when it was not attached
 * there (then its attachments are read). */
static GM_MUST_CHECK gm_status igw_destroy_known(gm_node *n, const char *id, const char *vpc,
                                                 bool *unsure, gm_error *err)
{
    static const char *const gone[] = {"InvalidInternetGatewayID.NotFound", NULL};
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InternetGatewayId", id);
    gm_params_add(&p, "VpcId", vpc);
    gm_status st = gm_n_ec2(n, "DetachInternetGateway", &p, NULL, gone, err);
    gm_params_release(&p);
    *unsure = st != GM_OK && strcmp(err->aws_code, "Gateway.NotAttached") == 0;
    if (*unsure) {
        gm_error_clear(err);
        return GM_OK;
    }
    if (st != GM_OK)
        return st;
    return ec2_delete(n, "DeleteInternetGateway", "InternetGatewayId", id, gone, err);
}

/* A gateway the record does not tie to a VPC (found by its tags): its
 * attachments are read first. */
static GM_MUST_CHECK gm_status igw_destroy(gm_node *n, const char *id, gm_error *err)
{
    static const char *const gone[] = {"InvalidInternetGatewayID.NotFound", NULL};
    char *recorded = gm_node_id_of(n, gm_node_name(n));
    char *vpc = recorded && strcmp(recorded, id) == 0 ? gm_node_id_of(n, "vpc") : NULL;
    free(recorded);
    if (vpc) {
        bool unsure = false;
        gm_status st = igw_destroy_known(n, id, vpc, &unsure, err);
        free(vpc);
        if (st != GM_OK || !unsure)
            return st;
    }
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InternetGatewayId.1", id);
    xmlDocPtr doc = NULL;
    gm_status st = gm_n_ec2(n, "DescribeInternetGateways", &p, &doc, gone, err);
    gm_params_release(&p);
    gm_read_rows igws, atts;
    gm_read_rows_init(&atts);
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_igws, &igws, err);
    if (st == GM_OK) {
        st = gm_read_xml(doc, &gm_ec2_igw_attachments, &atts, err);
        if (igws.n == 0) { /* already gone */
            gm_read_rows_release(&igws);
            gm_read_rows_release(&atts);
            xmlFreeDoc(doc);
            return st;
        }
        gm_read_rows_release(&igws);
    }
    xmlFreeDoc(doc);
    for (size_t i = 0; st == GM_OK && i < atts.n; i++) {
        gm_params_init(&p);
        gm_params_add(&p, "InternetGatewayId", id);
        gm_params_add(&p, "VpcId", gm_read_get(&atts, i, 0));
        st = gm_n_ec2(n, "DetachInternetGateway", &p, NULL, IGW_NOT_ATTACHED, err);
        gm_params_release(&p);
    }
    gm_read_rows_release(&atts);
    if (st != GM_OK)
        return st;
    return ec2_delete(n, "DeleteInternetGateway", "InternetGatewayId", id, gone, err);
}

static GM_MUST_CHECK gm_status igw_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                         size_t why_size, gm_error *err)
{
    return gm_n_owner_ec2(n, id, "DescribeInternetGateways", "InternetGatewayId.1",
                          "internetGatewaySet/item", out, why, why_size, err);
}

static GM_MUST_CHECK gm_status igw_inspect(gm_node *n, const char *id, json_t *out, gm_error *err)
{
    return gm_n_inspect_ec2(n, "DescribeInternetGateways", "InternetGatewayId.1", id, &gm_ec2_igws,
                            -1, out, err);
}

const gm_node_ops gm_ops_igw = {
    .kind = "igw",
    .label = "creating the internet gateway",
    .delete_label = "deleting the internet gateway",
    .owns_resource = true,
    .listed_by_tags = true,
    .create = igw_create,
    .find = igw_find,
    .destroy = igw_destroy,
    .owner = igw_owner,
    .inspect = igw_inspect,
};

/* ---- subnets ---------------------------------------------------------------- */

static GM_MUST_CHECK gm_status subnet_find(gm_node *n, gm_ids *out, gm_error *err)
{
    return gm_n_ec2_find_tagged(n, "DescribeSubnets", &gm_ec2_subnets, NULL, NULL, out, err);
}

static GM_MUST_CHECK gm_status subnet_create(gm_node *n, gm_error *err)
{
    char *id = NULL;
    gm_status st = gm_n_adopt_or_intent(n, &id, NULL, 0, err);
    if (st != GM_OK || id) {
        free(id);
        return st;
    }
    bool b = gm_node_slot(n) == 1;
    char *vpc = gm_node_id_of(n, "vpc");
    char *az = gm_node_output_of(n, "azs", b ? "az_b" : "az_a");
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "VpcId", vpc);
    gm_params_add(&p, "CidrBlock", b ? "10.0.16.0/20" : "10.0.0.0/20");
    gm_params_add(&p, "AvailabilityZone", az);
    gm_n_tag_spec(n, &p, 1, "subnet");
    st = gm_node_set_output(n, "az", az, err);
    if (st == GM_OK)
        st = ec2_create(n, "CreateSubnet", &p, &gm_ec2_created_subnet, SUBNET_TAKEN, &id, err);
    gm_params_release(&p);
    free(id);
    free(vpc);
    free(az);
    return st;
}

static GM_MUST_CHECK gm_status subnet_destroy(gm_node *n, const char *id, gm_error *err)
{
    static const char *const gone[] = {"InvalidSubnetID.NotFound", NULL};
    return ec2_delete(n, "DeleteSubnet", "SubnetId", id, gone, err);
}

static GM_MUST_CHECK gm_status subnet_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                            size_t why_size, gm_error *err)
{
    return gm_n_owner_ec2(n, id, "DescribeSubnets", "SubnetId.1", "subnetSet/item", out, why,
                          why_size, err);
}

static GM_MUST_CHECK gm_status subnet_inspect(gm_node *n, const char *id, json_t *out,
                                              gm_error *err)
{
    return gm_n_inspect_ec2(n, "DescribeSubnets", "SubnetId.1", id, &gm_ec2_subnets,
                            GM_EC2_SUBNET_STATE, out, err);
}

/* adopt: the subnet's zone. */
static GM_MUST_CHECK gm_status subnet_read_back(gm_node *n, const char *id, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "SubnetId.1", id);
    xmlDocPtr doc = NULL;
    gm_status st = gm_n_ec2(n, "DescribeSubnets", &p, &doc, NULL, err);
    gm_params_release(&p);
    gm_read_rows rows;
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_subnets, &rows, err);
    xmlFreeDoc(doc);
    if (st == GM_OK) {
        st = gm_node_set_output(n, "az", gm_read_get(&rows, 0, GM_EC2_SUBNET_AZ), err);
        gm_read_rows_release(&rows);
    }
    return st;
}

const gm_node_ops gm_ops_subnet = {
    .kind = "subnet",
    .label = "creating a subnet",
    .delete_label = "deleting a subnet",
    .owns_resource = true,
    .listed_by_tags = true,
    .create = subnet_create,
    .find = subnet_find,
    .destroy = subnet_destroy,
    .owner = subnet_owner,
    .inspect = subnet_inspect,
    .read_back = subnet_read_back,
};

/* ---- public routing: route table, default route, associations ------------ */

static GM_MUST_CHECK gm_status rt_find(gm_node *n, gm_ids *out, gm_error *err)
{
    return gm_n_ec2_find_tagged(n, "DescribeRouteTables", &gm_ec2_route_tables, NULL, NULL, out,
                                err);
}

/* The default route, both associations and public addressing on both
 * subnets are independent: one round trip for all. */
static GM_MUST_CHECK gm_status rt_settings(gm_node *n, const char *id, gm_error *err)
{
    static const char *const route_ok[] = {"RouteAlreadyExists", NULL};
    static const char *const assoc_ok[] = {"Resource.AlreadyAssociated", NULL};
    char *igw = gm_node_id_of(n, "igw");
    char *subnets[2] = {gm_node_id_of(n, "subnet_a"), gm_node_id_of(n, "subnet_b")};
    gm_n_call calls[5];
    memset(calls, 0, sizeof calls);
    calls[0].action = "CreateRoute";
    calls[0].ok_codes = route_ok;
    gm_params_init(&calls[0].params);
    gm_params_add(&calls[0].params, "RouteTableId", id);
    gm_params_add(&calls[0].params, "DestinationCidrBlock", "0.0.0.0/0");
    gm_params_add(&calls[0].params, "GatewayId", igw);
    for (int i = 0; i < 2; i++) {
        gm_n_call *as = &calls[1 + i], *pub = &calls[3 + i];
        as->action = "AssociateRouteTable";
        as->ok_codes = assoc_ok;
        gm_params_init(&as->params);
        gm_params_add(&as->params, "RouteTableId", id);
        gm_params_add(&as->params, "SubnetId", subnets[i]);
        pub->action = "ModifySubnetAttribute";
        gm_params_init(&pub->params);
        gm_params_add(&pub->params, "SubnetId", subnets[i]);
        gm_params_add(&pub->params, "MapPublicIpOnLaunch.Value", "true");
    }
    gm_status st = gm_n_parallel(n, calls, 5, err);
    free(igw);
    free(subnets[0]);
    free(subnets[1]);
    return st;
}

static GM_MUST_CHECK gm_status rt_create(gm_node *n, gm_error *err)
{
    char *id = NULL;
    char token[96];
    gm_status st = gm_n_adopt_or_intent(n, &id, token, sizeof token, err);
    if (st == GM_OK && !id) {
        char *vpc = gm_node_id_of(n, "vpc");
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "VpcId", vpc);
        gm_params_add(&p, "ClientToken", token); /* its API has one: AWS makes it once */
        gm_n_tag_spec(n, &p, 1, "route-table");
        st = ec2_create(n, "CreateRouteTable", &p, &gm_ec2_created_rt, NULL, &id, err);
        gm_params_release(&p);
        free(vpc);
    }
    if (st == GM_OK)
        st = rt_settings(n, id, err);
    free(id);
    return st;
}

static GM_MUST_CHECK gm_status rt_destroy(gm_node *n, const char *id, gm_error *err)
{
    static const char *const gone[] = {"InvalidRouteTableID.NotFound", NULL};
    static const char *const assoc_gone[] = {"InvalidAssociationID.NotFound", NULL};
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "RouteTableId.1", id);
    xmlDocPtr doc = NULL;
    gm_status st = gm_n_ec2(n, "DescribeRouteTables", &p, &doc, gone, err);
    gm_params_release(&p);
    gm_read_rows tables, assocs;
    gm_read_rows_init(&tables);
    gm_read_rows_init(&assocs);
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_route_tables, &tables, err);
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_rt_associations, &assocs, err);
    xmlFreeDoc(doc);
    bool exists = tables.n > 0;
    gm_read_rows_release(&tables);
    /* every association at once: one round trip */
    gm_n_call *calls = st == GM_OK && assocs.n ? calloc(assocs.n, sizeof *calls) : NULL;
    int n_calls = 0;
    if (st == GM_OK && assocs.n && !calls)
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == GM_OK && calls && i < assocs.n; i++) {
        const char *aid = gm_read_get(&assocs, i, GM_EC2_ID);
        if (!*aid || strcmp(gm_read_get(&assocs, i, GM_EC2_ASSOC_MAIN), "true") == 0)
            continue;
        gm_n_call *c = &calls[n_calls++];
        c->action = "DisassociateRouteTable";
        c->ok_codes = assoc_gone;
        gm_params_init(&c->params);
        gm_params_add(&c->params, "AssociationId", aid);
    }
    if (st == GM_OK && n_calls)
        st = gm_n_parallel(n, calls, n_calls, err);
    free(calls);
    gm_read_rows_release(&assocs);
    if (st != GM_OK || !exists)
        return st;
    return ec2_delete(n, "DeleteRouteTable", "RouteTableId", id, gone, err);
}

static GM_MUST_CHECK gm_status rt_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                        size_t why_size, gm_error *err)
{
    return gm_n_owner_ec2(n, id, "DescribeRouteTables", "RouteTableId.1", "routeTableSet/item", out,
                          why, why_size, err);
}

static GM_MUST_CHECK gm_status rt_inspect(gm_node *n, const char *id, json_t *out, gm_error *err)
{
    return gm_n_inspect_ec2(n, "DescribeRouteTables", "RouteTableId.1", id, &gm_ec2_route_tables,
                            -1, out, err);
}

const gm_node_ops gm_ops_route_table = {
    .kind = "route_table",
    .label = "routing the subnets to the internet",
    .delete_label = "deleting the route table",
    .owns_resource = true,
    .listed_by_tags = true,
    .create = rt_create,
    .find = rt_find,
    .destroy = rt_destroy,
    .owner = rt_owner,
    .inspect = rt_inspect,
};

/* ---- security group ---------------------------------------------------------- */

gm_status gm_n_sg_create(gm_node *n, const char *suffix, const char *description, char **out_id,
                         gm_error *err)
{
    *out_id = NULL;
    char *id = NULL;
    gm_status st = gm_n_adopt_or_intent(n, &id, NULL, 0, err);
    if (st == GM_OK && !id) {
        char *vpc = gm_node_id_of(n, "vpc");
        char name[128];
        gm_node_resource_name(n, suffix, name, sizeof name);
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "GroupName", name);
        gm_params_add(&p, "GroupDescription", description);
        gm_params_add(&p, "VpcId", vpc);
        gm_n_tag_spec(n, &p, 1, "security-group");
        st = ec2_create(n, "CreateSecurityGroup", &p, &gm_ec2_created_sg, SG_TAKEN, &id, err);
        gm_params_release(&p);
        free(vpc);
    }
    *out_id = id;
    return st;
}

static GM_MUST_CHECK gm_status sg_create(gm_node *n, gm_error *err)
{
    char *id = NULL;
    gm_status st = gm_n_sg_create(n, "sg", "GeuseMaker AI stack instance and EFS", &id, err);
    free(id);
    return st;
}

gm_status gm_n_sg_find(gm_node *n, gm_ids *out, gm_error *err)
{
    return gm_n_ec2_find_tagged(n, "DescribeSecurityGroups", &gm_ec2_security_groups, NULL, NULL,
                                out, err);
}

gm_status gm_n_sg_destroy(gm_node *n, const char *id, gm_error *err)
{
    static const char *const gone[] = {"InvalidGroup.NotFound", "InvalidGroupId.Malformed", NULL};
    return ec2_delete(n, "DeleteSecurityGroup", "GroupId", id, gone, err);
}

gm_status gm_n_sg_owner(gm_node *n, const char *id, gm_owner *out, char *why, size_t why_size,
                        gm_error *err)
{
    return gm_n_owner_ec2(n, id, "DescribeSecurityGroups", "GroupId.1", "securityGroupInfo/item",
                          out, why, why_size, err);
}

gm_status gm_n_sg_inspect(gm_node *n, const char *id, json_t *out, gm_error *err)
{
    return gm_n_inspect_ec2(n, "DescribeSecurityGroups", "GroupId.1", id, &gm_ec2_security_groups,
                            -1, out, err);
}

const gm_node_ops gm_ops_sg = {
    .kind = "security_group",
    .label = "creating the security group",
    .delete_label = "deleting the security group",
    .owns_resource = true,
    .listed_by_tags = true,
    .create = sg_create,
    .find = gm_n_sg_find,
    .destroy = gm_n_sg_destroy,
    .owner = gm_n_sg_owner,
    .inspect = gm_n_sg_inspect,
};

/* Ports reachable from the allowed ranges: nginx only (HTTP redirect, HTTPS);
 * SSH only with a key pair; NFS from the group itself. */
static GM_MUST_CHECK gm_status sg_rules_create(gm_node *n, gm_error *err)
{
    const gm_deploy_config *cfg = gm_node_config(n);
    char *sg = gm_node_id_of(n, "sg");
    if (!sg)
        return gm_error_set(err, GM_ERR_INTERNAL, "no security group id for its rules");
    const char *ports[3] = {"80", "443", "22"};
    int n_ports = cfg->key_name && *cfg->key_name ? 3 : 2;
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "GroupId", sg);
    int perm = 1;
    for (int i = 0; i < n_ports; i++, perm++) {
        gm_params_addf(&p, "tcp", "IpPermissions.%d.IpProtocol", perm);
        gm_params_addf(&p, ports[i], "IpPermissions.%d.FromPort", perm);
        gm_params_addf(&p, ports[i], "IpPermissions.%d.ToPort", perm);
        for (int c = 0; c < cfg->n_cidrs; c++) {
            gm_params_addf(&p, cfg->cidrs[c], "IpPermissions.%d.IpRanges.%d.CidrIp", perm, c + 1);
            gm_params_addf(&p, "geusemaker allowed range",
                           "IpPermissions.%d.IpRanges.%d.Description", perm, c + 1);
        }
    }
    gm_params_addf(&p, "tcp", "IpPermissions.%d.IpProtocol", perm);
    gm_params_addf(&p, "2049", "IpPermissions.%d.FromPort", perm);
    gm_params_addf(&p, "2049", "IpPermissions.%d.ToPort", perm);
    gm_params_addf(&p, sg, "IpPermissions.%d.Groups.1.GroupId", perm);
    static const char *const ok[] = {"InvalidPermission.Duplicate", NULL};
    gm_status st = gm_n_ec2(n, "AuthorizeSecurityGroupIngress", &p, NULL, ok, err);
    gm_params_release(&p);
    if (st == GM_OK)
        st = gm_node_created(n, sg, err);
    free(sg);
    return st;
}

const gm_node_ops gm_ops_sg_rules = {
    .kind = "sg_rules",
    .label = "opening the stack's ports to allowed ranges",
    .create = sg_rules_create,
};
