#include "aws/read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/xml.h"
#include "core/str.h"

void gm_read_rows_init(gm_read_rows *r)
{
    r->rows = NULL;
    r->n = 0;
}

void gm_read_rows_release(gm_read_rows *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        for (int f = 0; f < GM_READ_MAX_FIELDS; f++)
            free(r->rows[i].f[f]);
    free(r->rows);
    gm_read_rows_init(r);
}

const char *gm_read_get(const gm_read_rows *r, size_t i, int f)
{
    if (!r || i >= r->n || f < 0 || f >= GM_READ_MAX_FIELDS || !r->rows[i].f[f])
        return "";
    return r->rows[i].f[f];
}

char *gm_read_dup(const gm_read_rows *r, size_t i, int f)
{
    const char *v = gm_read_get(r, i, f);
    return *v ? strdup(v) : NULL;
}

/* Appends an empty row; NULL when the limit or memory runs out. */
static gm_read_row *add_row(gm_read_rows *r, gm_status *st)
{
    if (r->n >= GM_READ_MAX_ROWS) {
        *st = GM_ERR_LIMIT;
        return NULL;
    }
    gm_read_row *rows = realloc(r->rows, (r->n + 1) * sizeof *rows);
    if (!rows) {
        *st = GM_ERR_NOMEM;
        return NULL;
    }
    r->rows = rows;
    memset(&rows[r->n], 0, sizeof rows[r->n]);
    return &rows[r->n++];
}

static GM_MUST_CHECK gm_status set_field(gm_read_row *row, int f, const char *text)
{
    if (strlen(text) > GM_READ_FIELD_MAX)
        return GM_ERR_PARSE;
    row->f[f] = strdup(text);
    return row->f[f] ? GM_OK : GM_ERR_NOMEM;
}

/* The text of a field: a path below the item, or "LIST{KEY=VALUE}/PATH": the
 * PATH of the first element of LIST whose KEY child reads VALUE (a tag's
 * value by its key: "tagSet/item{key=Name}/value"). NULL when absent. */
static char *field_text(xmlNodePtr item, const char *field)
{
    const char *open = strchr(field, '{');
    if (!open)
        return gm_xml_text(item, field);
    const char *eq = strchr(open, '=');
    const char *close = eq ? strchr(eq, '}') : NULL;
    char list[128], key[64], want[128];
    if (!close || close[1] != '/' || (size_t)(open - field) >= sizeof list ||
        (size_t)(eq - open - 1) >= sizeof key || (size_t)(close - eq - 1) >= sizeof want)
        return NULL;
    snprintf(list, sizeof list, "%.*s", (int)(open - field), field);
    snprintf(key, sizeof key, "%.*s", (int)(eq - open - 1), open + 1);
    snprintf(want, sizeof want, "%.*s", (int)(close - eq - 1), eq + 1);
    char *slash = strrchr(list, '/');
    xmlNodePtr parent = item;
    const char *name = list;
    if (slash) {
        *slash = '\0';
        parent = gm_xml_path(item, list);
        name = slash + 1;
    }
    if (!parent)
        return NULL;
    GM_XML_FOREACH (e, parent, name) {
        char got[128];
        if (strcmp(gm_str_trim((char *)gm_xml_text_to(e, key, got, sizeof got)), want) == 0)
            return gm_xml_text(e, close + 2);
    }
    return NULL;
}

static GM_MUST_CHECK gm_status read_item(xmlNodePtr item, const gm_read_spec *spec,
                                         gm_read_rows *out)
{
    gm_status st = GM_OK;
    gm_read_row *row = add_row(out, &st);
    for (int f = 0; row && st == GM_OK && f < GM_READ_MAX_FIELDS && spec->fields[f]; f++) {
        char *t = field_text(item, spec->fields[f]);
        st = set_field(row, f, t ? gm_str_trim(t) : "");
        free(t);
    }
    return st;
}

/* Walks the remaining steps of a list path from node, reading every item. */
static GM_MUST_CHECK gm_status walk(xmlNodePtr node, const char *path, const gm_read_spec *spec,
                                    gm_read_rows *out)
{
    if (!*path)
        return read_item(node, spec, out);
    char step[128];
    size_t len = strcspn(path, "/");
    if (len == 0 || len >= sizeof step)
        return GM_ERR_INTERNAL;
    memcpy(step, path, len);
    step[len] = '\0';
    const char *rest = path[len] == '/' ? path + len + 1 : path + len;
    gm_status st = GM_OK;
    GM_XML_FOREACH (child, node, step) {
        st = walk(child, rest, spec, out);
        if (st != GM_OK)
            break;
    }
    return st;
}

gm_status gm_read_xml(xmlDocPtr doc, const gm_read_spec *spec, gm_read_rows *out, gm_error *err)
{
    gm_read_rows_init(out);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root)
        return GM_OK;
    gm_status st;
    if (!spec->list || !*spec->list) {
        st = read_item(root, spec, out);
    } else {
        char first[128];
        size_t len = strcspn(spec->list, "/");
        if (len == 0 || len >= sizeof first)
            return gm_error_set(err, GM_ERR_INTERNAL, "bad reader path '%s'", spec->list);
        memcpy(first, spec->list, len);
        first[len] = '\0';
        const char *rest = spec->list[len] == '/' ? spec->list + len + 1 : spec->list + len;
        xmlNodePtr start =
            strcmp((const char *)root->name, first) == 0 ? root : gm_xml_find(root, first);
        st = start ? walk(start, rest, spec, out) : GM_OK;
    }
    if (st == GM_OK)
        return GM_OK;
    gm_read_rows_release(out);
    switch (st) {
    case GM_ERR_LIMIT:
        return gm_error_set(err, st, "%s: more than %d items in one answer", spec->name,
                            GM_READ_MAX_ROWS);
    case GM_ERR_PARSE:
        return gm_error_set(err, st, "%s: a field is longer than %d bytes", spec->name,
                            GM_READ_FIELD_MAX);
    default: return gm_error_set(err, st, "%s: %s", spec->name, gm_status_name(st));
    }
}

/* ---- EC2 ---------------------------------------------------------------------- */

const gm_read_spec gm_ec2_vpcs = {"ec2 vpcs", "vpcSet/item", {"vpcId", "state"}};
const gm_read_spec gm_ec2_subnets = {
    "ec2 subnets", "subnetSet/item", {"subnetId", "vpcId", "availabilityZone", "state"}};
const gm_read_spec gm_ec2_igws = {
    "ec2 internet gateways", "internetGatewaySet/item", {"internetGatewayId"}};
const gm_read_spec gm_ec2_igw_attachments = {
    "ec2 internet gateway attachments", "internetGatewaySet/item/attachmentSet/item", {"vpcId"}};
const gm_read_spec gm_ec2_route_tables = {
    "ec2 route tables", "routeTableSet/item", {"routeTableId"}};
const gm_read_spec gm_ec2_rt_associations = {"ec2 route table associations",
                                             "routeTableSet/item/associationSet/item",
                                             {"routeTableAssociationId", "main"}};
const gm_read_spec gm_ec2_security_groups = {
    "ec2 security groups", "securityGroupInfo/item", {"groupId", "vpcId"}};
const gm_read_spec gm_ec2_instances = {"ec2 instances",
                                       "reservationSet/item/instancesSet/item",
                                       {"instanceId", "instanceState/name", "ipAddress",
                                        "privateIpAddress", "placement/availabilityZone",
                                        "instanceType", "instanceLifecycle"}};
const gm_read_spec gm_ec2_deployment_instances = {
    "ec2 instances of deployments",
    "reservationSet/item/instancesSet/item",
    {"instanceId", "instanceState/name", "launchTime",
     "tagSet/item{key=geusemaker:deployment-id}/value"}};
const gm_read_spec gm_ec2_run_instances = {
    "ec2 launched instances", "instancesSet/item", {"instanceId", "instanceState/name"}};
const gm_read_spec gm_ec2_offerings = {
    "ec2 instance type offerings", "instanceTypeOfferingSet/item", {"location"}};
const gm_read_spec gm_ec2_created_vpc = {"ec2 new vpc", "vpc", {"vpcId"}};
const gm_read_spec gm_ec2_created_igw = {
    "ec2 new internet gateway", "internetGateway", {"internetGatewayId"}};
const gm_read_spec gm_ec2_created_subnet = {"ec2 new subnet", "subnet", {"subnetId"}};
const gm_read_spec gm_ec2_created_rt = {"ec2 new route table", "routeTable", {"routeTableId"}};
const gm_read_spec gm_ec2_created_sg = {"ec2 new security group", "", {"groupId"}};
const gm_read_spec gm_ec2_images = {
    "ec2 images",
    "imagesSet/item",
    {"imageId", "architecture", "rootDeviceName", "rootDeviceType", "imageState", "name"}};
const gm_read_spec gm_ec2_image_devices = {"ec2 image block devices",
                                           "imagesSet/item/blockDeviceMapping/item",
                                           {"deviceName", "ebs/volumeSize", "ebs/snapshotId"}};

const gm_read_spec gm_ec2_launch_templates = {
    "ec2 launch templates", "launchTemplates/item", {"launchTemplateId", "launchTemplateName"}};
const gm_read_spec gm_ec2_created_launch_template = {
    "ec2 new launch template", "launchTemplate", {"launchTemplateId", "launchTemplateName"}};
const gm_read_spec gm_ec2_created_launch_template_version = {
    "ec2 new launch template version", "launchTemplateVersion", {"versionNumber"}};
const gm_read_spec gm_ec2_addresses = {"ec2 addresses",
                                       "addressesSet/item",
                                       {"allocationId", "publicIp", "associationId", "instanceId"}};
const gm_read_spec gm_ec2_next_token = {"ec2 next token", "nextToken", {""}};
#define EC2_TAG(k) "tagSet/item{key=" k "}/value"
const gm_read_spec gm_ec2_tagged_launch_templates = {
    "ec2 launch templates by tag",
    "launchTemplates/item",
    {"launchTemplateId", EC2_TAG("geusemaker:deployment"), EC2_TAG("geusemaker:deployment-id"),
     EC2_TAG("geusemaker:node")}};
const gm_read_spec gm_ec2_tagged_addresses = {"ec2 addresses by tag",
                                              "addressesSet/item",
                                              {"allocationId", EC2_TAG("geusemaker:deployment"),
                                               EC2_TAG("geusemaker:deployment-id"),
                                               EC2_TAG("geusemaker:node")}};
const gm_read_spec gm_ec2_created_image = {"ec2 new image", "", {"imageId"}};
const gm_read_spec gm_ec2_bake_instances = {
    "ec2 builder instances",
    "reservationSet/item/instancesSet/item",
    {"instanceId", "instanceState/name", EC2_TAG("geusemaker:bake")}};
const gm_read_spec gm_ec2_baked_images = {"ec2 baked images",
                                          "imagesSet/item",
                                          {"imageId", "name", "creationDate", "imageState",
                                           "architecture", EC2_TAG("geusemaker:catalogue"),
                                           EC2_TAG("geusemaker:os"), EC2_TAG("geusemaker:tier")}};
const gm_read_spec gm_ec2_image_tags = {
    "ec2 image tags", "imagesSet/item/tagSet/item", {"key", "value"}};
#undef EC2_TAG
const gm_read_spec gm_ec2_allocated_address = {"ec2 new address", "", {"allocationId", "publicIp"}};

const gm_read_spec *const gm_read_ec2_specs[] = {
    &gm_ec2_vpcs,
    &gm_ec2_subnets,
    &gm_ec2_igws,
    &gm_ec2_igw_attachments,
    &gm_ec2_route_tables,
    &gm_ec2_rt_associations,
    &gm_ec2_security_groups,
    &gm_ec2_instances,
    &gm_ec2_deployment_instances,
    &gm_ec2_run_instances,
    &gm_ec2_offerings,
    &gm_ec2_created_vpc,
    &gm_ec2_created_igw,
    &gm_ec2_created_subnet,
    &gm_ec2_created_rt,
    &gm_ec2_created_sg,
    &gm_ec2_images,
    &gm_ec2_image_devices,
    &gm_ec2_created_image,
    &gm_ec2_bake_instances,
    &gm_ec2_baked_images,
    &gm_ec2_image_tags,
    &gm_ec2_launch_templates,
    &gm_ec2_created_launch_template,
    &gm_ec2_created_launch_template_version,
    &gm_ec2_addresses,
    &gm_ec2_allocated_address,
    &gm_ec2_tagged_launch_templates,
    &gm_ec2_tagged_addresses,
    &gm_ec2_next_token,
    NULL,
};

/* ---- ELBv2 ---------------------------------------------------------------------- */

const gm_read_spec gm_elb_load_balancers = {
    "elbv2 load balancers", "LoadBalancers/member", {"LoadBalancerArn", "State/Code", "DNSName"}};
const gm_read_spec gm_elb_target_groups = {
    "elbv2 target groups", "TargetGroups/member", {"TargetGroupArn"}};
const gm_read_spec gm_elb_listeners = {
    "elbv2 listeners", "Listeners/member", {"ListenerArn", "Port"}};
const gm_read_spec gm_elb_target_health = {
    "elbv2 target health",
    "TargetHealthDescriptions/member",
    {"Target/Id", "TargetHealth/State", "TargetHealth/Reason", "TargetHealth/Description"}};

const gm_read_spec gm_elb_tags = {
    "elbv2 tags", "TagDescriptions/member/Tags/member", {"Key", "Value"}};

const gm_read_spec *const gm_read_elb_specs[] = {
    &gm_elb_load_balancers, &gm_elb_target_groups, &gm_elb_listeners,
    &gm_elb_target_health,  &gm_elb_tags,          NULL,
};

/* ---- EC2 Auto Scaling ------------------------------------------------------------ */

const gm_read_spec gm_asg_groups = {"autoscaling groups",
                                    "AutoScalingGroups/member",
                                    {"AutoScalingGroupName", "Status", "DesiredCapacity"}};
const gm_read_spec gm_asg_instances = {
    "autoscaling group instances",
    "AutoScalingGroups/member/Instances/member",
    {"InstanceId", "LifecycleState", "HealthStatus", "AvailabilityZone", "InstanceType"}};
const gm_read_spec gm_asg_tags = {
    "autoscaling group tags", "AutoScalingGroups/member/Tags/member", {"Key", "Value"}};
const gm_read_spec gm_asg_distribution = {
    "autoscaling instances distribution",
    "AutoScalingGroups/member/MixedInstancesPolicy/InstancesDistribution",
    {"OnDemandPercentageAboveBaseCapacity", "OnDemandBaseCapacity", "SpotAllocationStrategy",
     "SpotMaxPrice"}};
const gm_read_spec gm_asg_target_groups = {
    "autoscaling group target groups", "AutoScalingGroups/member/TargetGroupARNs/member", {""}};
const gm_read_spec gm_asg_activities = {
    "autoscaling activities",
    "Activities/member",
    {"ActivityId", "StatusCode", "StatusMessage", "Description", "Cause", "StartTime"}};
const gm_read_spec gm_asg_next_token = {"autoscaling next token", "NextToken", {""}};
#define ASG_TAG(k) "Tags/member{Key=" k "}/Value"
const gm_read_spec gm_asg_tagged_groups = {
    "autoscaling groups by tag",
    "AutoScalingGroups/member",
    {"AutoScalingGroupName", ASG_TAG("geusemaker:deployment"), ASG_TAG("geusemaker:deployment-id"),
     ASG_TAG("geusemaker:node")}};
#undef ASG_TAG

const gm_read_spec *const gm_read_asg_specs[] = {
    &gm_asg_groups,       &gm_asg_instances,     &gm_asg_tags,
    &gm_asg_distribution, &gm_asg_target_groups, &gm_asg_activities,
    &gm_asg_next_token,   &gm_asg_tagged_groups, NULL,
};

/* ---- IAM -------------------------------------------------------------------------- */

const gm_read_spec gm_iam_role_tags = {"iam role tags", "Role/Tags/member", {"Key", "Value"}};
const gm_read_spec gm_iam_profile_tags = {
    "iam instance profile tags", "InstanceProfile/Tags/member", {"Key", "Value"}};
const gm_read_spec gm_iam_profile_roles = {
    "iam instance profile roles", "InstanceProfile/Roles/member", {"RoleName"}};
const gm_read_spec gm_iam_attached_policies = {
    "iam attached policies", "AttachedPolicies/member", {"PolicyArn"}};
const gm_read_spec gm_iam_policy_names = {"iam policy names", "PolicyNames/member", {""}};
const gm_read_spec gm_iam_roles = {"iam roles", "Roles/member", {"RoleName"}};
const gm_read_spec gm_iam_profiles = {
    "iam instance profiles", "InstanceProfiles/member", {"InstanceProfileName"}};
const gm_read_spec gm_iam_truncated = {"iam list truncated", "IsTruncated", {""}};
const gm_read_spec gm_iam_marker = {"iam list marker", "Marker", {""}};
const gm_read_spec gm_iam_role_arn = {"iam role arn", "Role", {"Arn"}};

const gm_read_spec *const gm_read_iam_specs[] = {
    &gm_iam_role_tags,
    &gm_iam_profile_tags,
    &gm_iam_profile_roles,
    &gm_iam_attached_policies,
    &gm_iam_policy_names,
    &gm_iam_roles,
    &gm_iam_profiles,
    &gm_iam_truncated,
    &gm_iam_marker,
    &gm_iam_role_arn,
    NULL,
};

/* ---- JSON ----------------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static const char *tag_value(const json_t *tags, const char *key)
{
    size_t i;
    const json_t *t;
    json_array_foreach (tags, i, t) {
        if (strcmp(jstr(t, "Key"), key) == 0)
            return jstr(t, "Value");
    }
    return "";
}

/* Adds a row of the given texts (count of them). */
static GM_MUST_CHECK gm_status add_texts(gm_read_rows *out, const char *const *texts, int count)
{
    gm_status st = GM_OK;
    gm_read_row *row = add_row(out, &st);
    for (int f = 0; row && st == GM_OK && f < count; f++)
        st = set_field(row, f, texts[f]);
    return st;
}

static GM_MUST_CHECK gm_status json_done(gm_status st, const char *what, gm_read_rows *out,
                                         gm_error *err)
{
    if (st == GM_OK)
        return GM_OK;
    gm_read_rows_release(out);
    return gm_error_set(err, st, "%s: %s", what,
                        st == GM_ERR_PARSE ? "a field is too long" : gm_status_name(st));
}

gm_status gm_efs_read_file_systems(const json_t *answer, gm_read_rows *out, gm_error *err)
{
    gm_read_rows_init(out);
    gm_status st = GM_OK;
    size_t i;
    const json_t *fs;
    json_array_foreach (json_object_get(answer, "FileSystems"), i, fs) {
        if (!json_is_object(fs) || !*jstr(fs, "FileSystemId"))
            continue;
        const json_t *tags = json_object_get(fs, "Tags");
        const char *texts[] = {jstr(fs, "FileSystemId"),
                               jstr(fs, "CreationToken"),
                               jstr(fs, "LifeCycleState"),
                               json_is_true(json_object_get(fs, "Encrypted")) ? "true" : "false",
                               tag_value(tags, "geusemaker:deployment"),
                               tag_value(tags, "geusemaker:node"),
                               tag_value(tags, "geusemaker:deployment-id")};
        st = add_texts(out, texts, 7);
        if (st != GM_OK)
            break;
    }
    return json_done(st, "efs file systems", out, err);
}

gm_status gm_efs_read_created_fs(const json_t *answer, gm_read_rows *out, gm_error *err)
{
    gm_read_rows_init(out);
    gm_status st = GM_OK;
    if (json_is_object(answer) && *jstr(answer, "FileSystemId")) {
        const char *texts[] = {jstr(answer, "FileSystemId"), jstr(answer, "LifeCycleState")};
        st = add_texts(out, texts, 2);
    }
    return json_done(st, "efs new file system", out, err);
}

static GM_MUST_CHECK gm_status add_mount_target(gm_read_rows *out, const json_t *mt)
{
    if (!json_is_object(mt) || !*jstr(mt, "MountTargetId"))
        return GM_OK;
    const char *texts[] = {jstr(mt, "MountTargetId"), jstr(mt, "SubnetId"),
                           jstr(mt, "LifeCycleState"), jstr(mt, "FileSystemId")};
    return add_texts(out, texts, 4);
}

gm_status gm_efs_read_mount_targets(const json_t *answer, gm_read_rows *out, gm_error *err)
{
    gm_read_rows_init(out);
    gm_status st = GM_OK;
    const json_t *list = json_object_get(answer, "MountTargets");
    if (!list) {
        st = add_mount_target(out, answer);
    } else {
        size_t i;
        const json_t *mt;
        json_array_foreach (list, i, mt) {
            st = add_mount_target(out, mt);
            if (st != GM_OK)
                break;
        }
    }
    return json_done(st, "efs mount targets", out, err);
}

static GM_MUST_CHECK gm_status add_parameter(gm_read_rows *out, const json_t *p)
{
    if (!json_is_object(p) || !*jstr(p, "Name"))
        return GM_OK;
    const char *texts[] = {jstr(p, "Name"), jstr(p, "Value")};
    return add_texts(out, texts, 2);
}

gm_status gm_ssm_read_parameters(const json_t *answer, gm_read_rows *out, gm_error *err)
{
    gm_read_rows_init(out);
    gm_status st = add_parameter(out, json_object_get(answer, "Parameter"));
    size_t i;
    const json_t *p;
    json_array_foreach (json_object_get(answer, "Parameters"), i, p) {
        if (st != GM_OK)
            break;
        st = add_parameter(out, p);
    }
    return json_done(st, "ssm parameters", out, err);
}

gm_status gm_ssm_read_invalid(const json_t *answer, gm_read_rows *out, gm_error *err)
{
    gm_read_rows_init(out);
    gm_status st = GM_OK;
    size_t i;
    const json_t *p;
    json_array_foreach (json_object_get(answer, "InvalidParameters"), i, p) {
        const char *name = json_string_value(p);
        if (!name)
            continue;
        st = add_texts(out, &name, 1);
        if (st != GM_OK)
            break;
    }
    return json_done(st, "ssm invalid parameters", out, err);
}

gm_status gm_tagging_read_resources(const json_t *answer, gm_read_rows *out, gm_error *err)
{
    gm_read_rows_init(out);
    gm_status st = GM_OK;
    size_t i;
    const json_t *r;
    json_array_foreach (json_object_get(answer, "ResourceTagMappingList"), i, r) {
        if (!json_is_object(r) || !*jstr(r, "ResourceARN"))
            continue;
        const json_t *tags = json_object_get(r, "Tags");
        const char *texts[] = {jstr(r, "ResourceARN"), tag_value(tags, "geusemaker:deployment"),
                               tag_value(tags, "geusemaker:deployment-id"),
                               tag_value(tags, "geusemaker:node")};
        st = add_texts(out, texts, 4);
        if (st != GM_OK)
            break;
    }
    return json_done(st, "tagged resources", out, err);
}

gm_status gm_ssm_read_described(const json_t *answer, gm_read_rows *out, gm_error *err)
{
    gm_read_rows_init(out);
    gm_status st = GM_OK;
    size_t i;
    const json_t *p;
    json_array_foreach (json_object_get(answer, "Parameters"), i, p) {
        const char *name = jstr(p, "Name");
        if (!*name)
            continue;
        st = add_texts(out, &name, 1);
        if (st != GM_OK)
            break;
    }
    return json_done(st, "ssm parameters", out, err);
}

char *gm_read_next_token(const json_t *answer, const char *key)
{
    const char *t = json_string_value(json_object_get(answer, key));
    return t && *t && strlen(t) <= GM_READ_FIELD_MAX ? strdup(t) : NULL;
}
