/* Network node kinds: availability zones, AMI lookup, VPC, internet gateway,
 * subnets, public routing, security group and its rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "engine/internal.h"
#include "engine/nodes.h"

/* ---- shared -------------------------------------------------------------- */

gm_status gm_n_adopt_or_intent(gm_engine *e, gm_node_run *n, const gm_node_ops *ops, char **out_id,
                               char *token, size_t token_size, gm_error *err)
{
    *out_id = NULL;
    /* Only a node journalled by an earlier run can have left something behind:
     * the intent is saved before every create call. A fresh node skips the
     * look-up (one round trip less on the critical path). */
    pthread_mutex_lock(&e->lock);
    gm_node_state *s = gm_deployment_node(e->dep, n->def->name);
    bool earlier = s && (s->status == GM_NODE_CREATING || s->status == GM_NODE_FAILED ||
                         s->status == GM_NODE_DELETING || *s->token);
    pthread_mutex_unlock(&e->lock);
    if (ops->find && earlier) {
        gm_status st = ops->find(e, n, out_id, err);
        if (st != GM_OK)
            return st;
        if (*out_id) {
            gm_e_event(e, n, "found %s %s from an earlier run: adopting it", n->def->kind, *out_id);
            return gm_e_journal_id(e, n, *out_id, err);
        }
    }
    return gm_e_journal_intent(e, n, token, token_size, err);
}

gm_status gm_n_inspect_ec2(gm_engine *e, const char *action, const char *id_param, const char *id,
                           const char *set_name, const char *state_elem, json_t *out, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, id_param, id);
    xmlDocPtr doc = NULL;
    gm_error cerr = {0};
    gm_status st = gm_aws_query(e->aws, &gm_svc_ec2, action, &p, &doc, &cerr);
    gm_params_release(&p);
    if (st != GM_OK && (strstr(cerr.aws_code, "NotFound") || strstr(cerr.aws_code, "Malformed"))) {
        json_object_set_new(out, "exists", json_false());
        json_array_append_new(json_object_get(out, "drift"), json_string("missing"));
        return GM_OK;
    }
    if (st != GM_OK) {
        *err = cerr;
        return st;
    }
    xmlNodePtr item = gm_xml_child(gm_xml_find(xmlDocGetRootElement(doc), set_name), "item");
    json_object_set_new(out, "exists", json_boolean(item != NULL));
    if (!item)
        json_array_append_new(json_object_get(out, "drift"), json_string("missing"));
    if (item && state_elem) {
        char *state = gm_xml_text(item, state_elem);
        if (state)
            json_object_set_new(out, "state", json_string(gm_str_trim(state)));
        free(state);
    }
    xmlFreeDoc(doc);
    return GM_OK;
}

static const char *const NOT_FOUND_VPC[] = {"InvalidVpcID.NotFound", NULL};

/* ---- availability zones --------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One call: the zones that offer the instance type (sorted; the first two). */
static gm_status azs_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "LocationType", "availability-zone");
    gm_params_add(&p, "Filter.1.Name", "instance-type");
    gm_params_add(&p, "Filter.1.Value.1", e->cfg->instance_type);
    xmlDocPtr doc = NULL;
    gm_status st =
        gm_aws_query(e->aws, &gm_svc_ec2, "DescribeInstanceTypeOfferings", &p, &doc, err);
    gm_params_release(&p);
    if (st != GM_OK)
        return st;
    char *offered[64];
    size_t no = 0;
    GM_XML_FOREACH (item, gm_xml_find(xmlDocGetRootElement(doc), "instanceTypeOfferingSet"),
                    "item") {
        char *loc = gm_xml_text(item, "location");
        if (loc && no < 64)
            offered[no++] = loc;
        else
            free(loc);
    }
    xmlFreeDoc(doc);
    qsort(offered, no, sizeof *offered, cmp_str);
    if (no < 2) {
        for (size_t i = 0; i < no; i++)
            free(offered[i]);
        return gm_error_set(err, GM_ERR_INVALID,
                            "instance type '%s' is offered in %zu availability zone(s) of "
                            "region '%s': two are needed",
                            e->cfg->instance_type, no, gm_aws_client_region(e->aws));
    }
    gm_e_set_output(e, n, "az_a", offered[0]);
    gm_e_set_output(e, n, "az_b", offered[1]);
    char id[128];
    snprintf(id, sizeof id, "%s,%s", offered[0], offered[1]);
    for (size_t i = 0; i < no; i++)
        free(offered[i]);
    return gm_e_journal_id(e, n, id, err);
}

const gm_node_ops gm_ops_azs = {"azs", "choosing availability zones", false, azs_create, NULL, NULL,
                                NULL};

/* ---- AMI lookup ----------------------------------------------------------- */

bool gm_instance_type_is_arm(const char *type)
{
    /* Graviton families have a 'g' right after the generation digit: t4g, m7g,
     * c7gn, r6gd (but not g5, which is a GPU family). */
    if (!type)
        return false;
    size_t i = 0;
    while (type[i] && type[i] >= 'a' && type[i] <= 'z')
        i++;
    if (i == 0 || !(type[i] >= '0' && type[i] <= '9'))
        return false;
    while (type[i] >= '0' && type[i] <= '9')
        i++;
    return type[i] == 'g';
}

static gm_status ami_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    const char *override = getenv("GEUSEMAKER_AMI_PARAMETER");
    char param[256];
    if (override && *override)
        snprintf(param, sizeof param, "%s", override);
    else if (strcmp(e->dep->tier, "gpu") == 0)
        snprintf(param, sizeof param, "%s",
                 "/aws/service/deeplearning/ami/x86_64/"
                 "base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id");
    else
        snprintf(param, sizeof param,
                 "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-%s",
                 gm_instance_type_is_arm(e->cfg->instance_type) ? "arm64" : "x86_64");
    json_t *body = json_pack("{s:s}", "Name", param);
    json_t *out = NULL;
    gm_status st = gm_aws_json(e->aws, &gm_svc_ssm, "GetParameter", body, &out, err);
    json_decref(body);
    if (st != GM_OK)
        return st;
    const char *ami =
        json_string_value(json_object_get(json_object_get(out, "Parameter"), "Value"));
    if (!ami || strncmp(ami, "ami-", 4) != 0) {
        json_decref(out);
        return gm_error_set(err, GM_ERR_PARSE, "ssm parameter '%s' does not hold an ami id", param);
    }
    gm_e_set_output(e, n, "parameter", param);
    st = gm_e_journal_id(e, n, ami, err);
    json_decref(out);
    return st;
}

const gm_node_ops gm_ops_ami = {"ami", "finding the machine image", false, ami_create, NULL, NULL,
                                NULL};

/* ---- VPC ------------------------------------------------------------------ */

static gm_status vpc_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    return gm_e_ec2_find_tagged(e, "DescribeVpcs", "vpcSet", "vpcId", n->def->name, NULL, NULL,
                                out_id, err);
}

static gm_status vpc_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *id = NULL;
    char token[96];
    gm_status st = gm_n_adopt_or_intent(e, n, &gm_ops_vpc, &id, token, sizeof token, err);
    if (st != GM_OK || id) {
        free(id);
        return st;
    }
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "CidrBlock", "10.0.0.0/16");
    gm_e_tag_spec(e, &p, 1, "vpc", n->def->name);
    xmlDocPtr doc = NULL;
    st = gm_e_ec2_call(e, "CreateVpc", &p, &doc, NULL, err);
    gm_params_release(&p);
    if (st == GM_OK) {
        id = gm_xml_text(gm_xml_find(xmlDocGetRootElement(doc), "vpc"), "vpcId");
        st = id ? gm_e_journal_id(e, n, id, err)
                : gm_error_set(err, GM_ERR_PARSE, "CreateVpc returned no vpcId");
    }
    xmlFreeDoc(doc);
    free(id);
    return st;
}

static gm_status vpc_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "VpcId", id);
    gm_status st = gm_e_ec2_call(e, "DeleteVpc", &p, NULL, NOT_FOUND_VPC, err);
    gm_params_release(&p);
    return st;
}

static gm_status vpc_inspect(gm_engine *e, gm_node_run *n, const char *id, json_t *out,
                             gm_error *err)
{
    return gm_n_inspect_ec2(e, "DescribeVpcs", "VpcId.1", id, "vpcSet", "state", out, err);
}

const gm_node_ops gm_ops_vpc = {"vpc",    "creating the VPC", true,       vpc_create,
                                vpc_find, vpc_destroy,        vpc_inspect};

static gm_status vpc_dns_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *vpc = gm_e_id(e, "vpc");
    if (!vpc)
        return gm_error_set(err, GM_ERR_INTERNAL, "no vpc id for the dns settings");
    const char *attrs[] = {"EnableDnsSupport.Value", "EnableDnsHostnames.Value"};
    gm_e_call calls[2];
    memset(calls, 0, sizeof calls);
    for (int i = 0; i < 2; i++) {
        calls[i].action = "ModifyVpcAttribute";
        gm_params_init(&calls[i].params);
        gm_params_add(&calls[i].params, "VpcId", vpc);
        gm_params_add(&calls[i].params, attrs[i], "true");
    }
    gm_status st = gm_e_parallel(e, calls, 2, err);
    if (st == GM_OK)
        st = gm_e_journal_id(e, n, vpc, err);
    free(vpc);
    return st;
}

const gm_node_ops gm_ops_vpc_dns = {
    "vpc_dns", "turning on VPC DNS hostnames", false, vpc_dns_create, NULL, NULL, NULL};

/* ---- internet gateway ------------------------------------------------------ */

static gm_status igw_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    return gm_e_ec2_find_tagged(e, "DescribeInternetGateways", "internetGatewaySet",
                                "internetGatewayId", n->def->name, NULL, NULL, out_id, err);
}

static gm_status igw_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *id = NULL;
    char token[96];
    gm_status st = gm_n_adopt_or_intent(e, n, &gm_ops_igw, &id, token, sizeof token, err);
    if (st == GM_OK && !id) {
        gm_params p;
        gm_params_init(&p);
        gm_e_tag_spec(e, &p, 1, "internet-gateway", n->def->name);
        xmlDocPtr doc = NULL;
        st = gm_e_ec2_call(e, "CreateInternetGateway", &p, &doc, NULL, err);
        gm_params_release(&p);
        if (st == GM_OK) {
            id = gm_xml_text(gm_xml_find(xmlDocGetRootElement(doc), "internetGateway"),
                             "internetGatewayId");
            st = id ? gm_e_journal_id(e, n, id, err)
                    : gm_error_set(err, GM_ERR_PARSE, "CreateInternetGateway returned no id");
        }
        xmlFreeDoc(doc);
    }
    if (st == GM_OK) {
        char *vpc = gm_e_id(e, "vpc");
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "InternetGatewayId", id);
        gm_params_add(&p, "VpcId", vpc ? vpc : "");
        static const char *const ok[] = {"Resource.AlreadyAssociated", NULL};
        st = gm_e_ec2_call(e, "AttachInternetGateway", &p, NULL, ok, err);
        gm_params_release(&p);
        free(vpc);
    }
    free(id);
    return st;
}

static gm_status igw_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    static const char *const gone[] = {"InvalidInternetGatewayID.NotFound", NULL};
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InternetGatewayId.1", id);
    xmlDocPtr doc = NULL;
    gm_status st = gm_e_ec2_call(e, "DescribeInternetGateways", &p, &doc, gone, err);
    gm_params_release(&p);
    if (st != GM_OK)
        return st;
    xmlNodePtr item =
        gm_xml_child(gm_xml_find(xmlDocGetRootElement(doc), "internetGatewaySet"), "item");
    if (!item) {
        xmlFreeDoc(doc);
        return GM_OK;
    }
    static const char *const not_attached[] = {"Gateway.NotAttached",
                                               "InvalidInternetGatewayID.NotFound", NULL};
    GM_XML_FOREACH (att, gm_xml_child(item, "attachmentSet"), "item") {
        char *vpc = gm_xml_text(att, "vpcId");
        gm_params_init(&p);
        gm_params_add(&p, "InternetGatewayId", id);
        gm_params_add(&p, "VpcId", vpc ? vpc : "");
        st = gm_e_ec2_call(e, "DetachInternetGateway", &p, NULL, not_attached, err);
        gm_params_release(&p);
        free(vpc);
        if (st != GM_OK)
            break;
    }
    xmlFreeDoc(doc);
    if (st != GM_OK)
        return st;
    gm_params_init(&p);
    gm_params_add(&p, "InternetGatewayId", id);
    st = gm_e_ec2_call(e, "DeleteInternetGateway", &p, NULL, gone, err);
    gm_params_release(&p);
    return st;
}

static gm_status igw_inspect(gm_engine *e, gm_node_run *n, const char *id, json_t *out,
                             gm_error *err)
{
    return gm_n_inspect_ec2(e, "DescribeInternetGateways", "InternetGatewayId.1", id,
                            "internetGatewaySet", NULL, out, err);
}

const gm_node_ops gm_ops_igw = {
    "igw", "creating the internet gateway", true, igw_create, igw_find, igw_destroy, igw_inspect};

/* ---- subnets ---------------------------------------------------------------- */

static gm_status subnet_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    return gm_e_ec2_find_tagged(e, "DescribeSubnets", "subnetSet", "subnetId", n->def->name, NULL,
                                NULL, out_id, err);
}

static gm_status subnet_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *id = NULL;
    char token[96];
    gm_status st = gm_n_adopt_or_intent(e, n, &gm_ops_subnet, &id, token, sizeof token, err);
    if (st != GM_OK || id) {
        free(id);
        return st;
    }
    char *vpc = gm_e_id(e, "vpc");
    char *az = gm_e_output(e, "azs", n->def->slot ? "az_b" : "az_a");
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "VpcId", vpc ? vpc : "");
    gm_params_add(&p, "CidrBlock", n->def->slot ? "10.0.16.0/20" : "10.0.0.0/20");
    gm_params_add(&p, "AvailabilityZone", az ? az : "");
    gm_e_tag_spec(e, &p, 1, "subnet", n->def->name);
    xmlDocPtr doc = NULL;
    st = gm_e_ec2_call(e, "CreateSubnet", &p, &doc, NULL, err);
    gm_params_release(&p);
    if (st == GM_OK) {
        id = gm_xml_text(gm_xml_find(xmlDocGetRootElement(doc), "subnet"), "subnetId");
        st = id ? gm_e_journal_id(e, n, id, err)
                : gm_error_set(err, GM_ERR_PARSE, "CreateSubnet returned no subnetId");
        gm_e_set_output(e, n, "az", az);
    }
    xmlFreeDoc(doc);
    free(id);
    free(vpc);
    free(az);
    return st;
}

static gm_status subnet_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    static const char *const gone[] = {"InvalidSubnetID.NotFound", NULL};
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "SubnetId", id);
    gm_status st = gm_e_ec2_call(e, "DeleteSubnet", &p, NULL, gone, err);
    gm_params_release(&p);
    return st;
}

static gm_status subnet_inspect(gm_engine *e, gm_node_run *n, const char *id, json_t *out,
                                gm_error *err)
{
    return gm_n_inspect_ec2(e, "DescribeSubnets", "SubnetId.1", id, "subnetSet", "state", out, err);
}

const gm_node_ops gm_ops_subnet = {"subnet",    "creating a subnet", true,          subnet_create,
                                   subnet_find, subnet_destroy,      subnet_inspect};

/* ---- public routing: route table, default route, associations ------------ */

static gm_status rt_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    return gm_e_ec2_find_tagged(e, "DescribeRouteTables", "routeTableSet", "routeTableId",
                                n->def->name, NULL, NULL, out_id, err);
}

static gm_status rt_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *id = NULL;
    char token[96];
    gm_status st = gm_n_adopt_or_intent(e, n, &gm_ops_route_table, &id, token, sizeof token, err);
    char *vpc = gm_e_id(e, "vpc");
    char *igw = gm_e_id(e, "igw");
    char *subnets[2] = {gm_e_id(e, "subnet_a"), gm_e_id(e, "subnet_b")};
    gm_params p;
    if (st == GM_OK && !id) {
        gm_params_init(&p);
        gm_params_add(&p, "VpcId", vpc ? vpc : "");
        gm_e_tag_spec(e, &p, 1, "route-table", n->def->name);
        xmlDocPtr doc = NULL;
        st = gm_e_ec2_call(e, "CreateRouteTable", &p, &doc, NULL, err);
        gm_params_release(&p);
        if (st == GM_OK) {
            id = gm_xml_text(gm_xml_find(xmlDocGetRootElement(doc), "routeTable"), "routeTableId");
            st = id ? gm_e_journal_id(e, n, id, err)
                    : gm_error_set(err, GM_ERR_PARSE, "CreateRouteTable returned no id");
        }
        xmlFreeDoc(doc);
    }
    if (st == GM_OK) {
        /* The default route, both associations and public addressing on both
         * subnets are independent: one round trip for all. */
        static const char *const route_ok[] = {"RouteAlreadyExists", NULL};
        static const char *const assoc_ok[] = {"Resource.AlreadyAssociated", NULL};
        gm_e_call calls[5];
        memset(calls, 0, sizeof calls);
        calls[0].action = "CreateRoute";
        calls[0].ok_codes = route_ok;
        gm_params_init(&calls[0].params);
        gm_params_add(&calls[0].params, "RouteTableId", id);
        gm_params_add(&calls[0].params, "DestinationCidrBlock", "0.0.0.0/0");
        gm_params_add(&calls[0].params, "GatewayId", igw ? igw : "");
        for (int i = 0; i < 2; i++) {
            gm_e_call *as = &calls[1 + i], *pub = &calls[3 + i];
            as->action = "AssociateRouteTable";
            as->ok_codes = assoc_ok;
            gm_params_init(&as->params);
            gm_params_add(&as->params, "RouteTableId", id);
            gm_params_add(&as->params, "SubnetId", subnets[i] ? subnets[i] : "");
            pub->action = "ModifySubnetAttribute";
            gm_params_init(&pub->params);
            gm_params_add(&pub->params, "SubnetId", subnets[i] ? subnets[i] : "");
            gm_params_add(&pub->params, "MapPublicIpOnLaunch.Value", "true");
        }
        st = gm_e_parallel(e, calls, 5, err);
    }
    free(id);
    free(vpc);
    free(igw);
    free(subnets[0]);
    free(subnets[1]);
    return st;
}

static gm_status rt_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    static const char *const gone[] = {"InvalidRouteTableID.NotFound", NULL};
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "RouteTableId.1", id);
    xmlDocPtr doc = NULL;
    gm_status st = gm_e_ec2_call(e, "DescribeRouteTables", &p, &doc, gone, err);
    gm_params_release(&p);
    if (st != GM_OK)
        return st;
    xmlNodePtr item = gm_xml_child(gm_xml_find(xmlDocGetRootElement(doc), "routeTableSet"), "item");
    static const char *const assoc_gone[] = {"InvalidAssociationID.NotFound", NULL};
    GM_XML_FOREACH (assoc, gm_xml_child(item, "associationSet"), "item") {
        char *aid = gm_xml_text(assoc, "routeTableAssociationId");
        char *main_flag = gm_xml_text(assoc, "main");
        if (aid && !(main_flag && strcmp(main_flag, "true") == 0)) {
            gm_params_init(&p);
            gm_params_add(&p, "AssociationId", aid);
            st = gm_e_ec2_call(e, "DisassociateRouteTable", &p, NULL, assoc_gone, err);
            gm_params_release(&p);
        }
        free(aid);
        free(main_flag);
        if (st != GM_OK)
            break;
    }
    bool exists = item != NULL;
    xmlFreeDoc(doc);
    if (st != GM_OK || !exists)
        return st;
    gm_params_init(&p);
    gm_params_add(&p, "RouteTableId", id);
    st = gm_e_ec2_call(e, "DeleteRouteTable", &p, NULL, gone, err);
    gm_params_release(&p);
    return st;
}

static gm_status rt_inspect(gm_engine *e, gm_node_run *n, const char *id, json_t *out,
                            gm_error *err)
{
    return gm_n_inspect_ec2(e, "DescribeRouteTables", "RouteTableId.1", id, "routeTableSet", NULL,
                            out, err);
}

const gm_node_ops gm_ops_route_table = {
    "route_table", "routing the subnets to the internet", true, rt_create, rt_find, rt_destroy,
    rt_inspect};

/* ---- security group ---------------------------------------------------------- */

gm_status gm_n_sg_create(gm_engine *e, gm_node_run *n, const gm_node_ops *ops, const char *suffix,
                         const char *description, char **out_id, gm_error *err)
{
    char *id = NULL;
    char token[96];
    *out_id = NULL;
    gm_status st = gm_n_adopt_or_intent(e, n, ops, &id, token, sizeof token, err);
    if (st != GM_OK || id) {
        *out_id = id;
        return st;
    }
    char *vpc = gm_e_id(e, "vpc");
    char name[128];
    gm_e_resource_name(e, suffix, name, sizeof name);
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "GroupName", name);
    gm_params_add(&p, "GroupDescription", description);
    gm_params_add(&p, "VpcId", vpc ? vpc : "");
    gm_e_tag_spec(e, &p, 1, "security-group", n->def->name);
    xmlDocPtr doc = NULL;
    st = gm_e_ec2_call(e, "CreateSecurityGroup", &p, &doc, NULL, err);
    gm_params_release(&p);
    if (st == GM_OK) {
        id = gm_xml_text(xmlDocGetRootElement(doc), "groupId");
        st = id ? gm_e_journal_id(e, n, id, err)
                : gm_error_set(err, GM_ERR_PARSE, "CreateSecurityGroup returned no groupId");
    }
    xmlFreeDoc(doc);
    free(vpc);
    *out_id = id;
    return st;
}

static gm_status sg_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *id = NULL;
    gm_status st =
        gm_n_sg_create(e, n, &gm_ops_sg, "sg", "GeuseMaker AI stack instance and EFS", &id, err);
    free(id);
    return st;
}

gm_status gm_n_sg_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err)
{
    return gm_e_ec2_find_tagged(e, "DescribeSecurityGroups", "securityGroupInfo", "groupId",
                                n->def->name, NULL, NULL, out_id, err);
}

gm_status gm_n_sg_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err)
{
    static const char *const gone[] = {"InvalidGroup.NotFound", "InvalidGroupId.Malformed", NULL};
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "GroupId", id);
    gm_status st = gm_e_ec2_call(e, "DeleteSecurityGroup", &p, NULL, gone, err);
    gm_params_release(&p);
    return st;
}

gm_status gm_n_sg_inspect(gm_engine *e, gm_node_run *n, const char *id, json_t *out, gm_error *err)
{
    return gm_n_inspect_ec2(e, "DescribeSecurityGroups", "GroupId.1", id, "securityGroupInfo", NULL,
                            out, err);
}

const gm_node_ops gm_ops_sg = {
    "security_group", "creating the security group", true, sg_create, gm_n_sg_find, gm_n_sg_destroy,
    gm_n_sg_inspect};

/* Ports reachable from the allowed ranges: nginx only (HTTP redirect, HTTPS);
 * SSH only with a key pair; NFS from the group itself. */
static gm_status sg_rules_create(gm_engine *e, gm_node_run *n, gm_error *err)
{
    char *sg = gm_e_id(e, "sg");
    if (!sg)
        return gm_error_set(err, GM_ERR_INTERNAL, "no security group id for its rules");
    int ports[3] = {80, 443, 22};
    int n_ports = e->cfg->key_name && *e->cfg->key_name ? 3 : 2;
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "GroupId", sg);
    int perm = 1;
    for (int i = 0; i < n_ports; i++, perm++) {
        char port[16];
        snprintf(port, sizeof port, "%d", ports[i]);
        gm_params_addf(&p, "tcp", "IpPermissions.%d.IpProtocol", perm);
        gm_params_addf(&p, port, "IpPermissions.%d.FromPort", perm);
        gm_params_addf(&p, port, "IpPermissions.%d.ToPort", perm);
        for (int c = 0; c < e->cfg->n_cidrs; c++) {
            gm_params_addf(&p, e->cfg->cidrs[c], "IpPermissions.%d.IpRanges.%d.CidrIp", perm,
                           c + 1);
            gm_params_addf(&p, "geusemaker allowed range",
                           "IpPermissions.%d.IpRanges.%d.Description", perm, c + 1);
        }
    }
    gm_params_addf(&p, "tcp", "IpPermissions.%d.IpProtocol", perm);
    gm_params_addf(&p, "2049", "IpPermissions.%d.FromPort", perm);
    gm_params_addf(&p, "2049", "IpPermissions.%d.ToPort", perm);
    gm_params_addf(&p, sg, "IpPermissions.%d.Groups.1.GroupId", perm);
    static const char *const ok[] = {"InvalidPermission.Duplicate", NULL};
    gm_status st = gm_e_ec2_call(e, "AuthorizeSecurityGroupIngress", &p, NULL, ok, err);
    gm_params_release(&p);
    if (st == GM_OK)
        st = gm_e_journal_id(e, n, sg, err);
    free(sg);
    return st;
}

const gm_node_ops gm_ops_sg_rules = {
    "sg_rules", "opening the stack's ports to allowed ranges", false, sg_rules_create, NULL, NULL,
    NULL};
