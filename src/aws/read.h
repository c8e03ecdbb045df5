/* Response readers: the only code that knows where a field sits in an AWS
 * answer. Each reader turns one response into rows of strings (one row per
 * resource, fields in a fixed order), so callers never walk XML or JSON and
 * every reader can be fuzzed (fuzz/fuzz_*_xml.c, fuzz/fuzz_*_json.c).
 *
 * Query (XML) readers are data: a gm_read_spec names the list and the fields.
 * The list path's first step is searched anywhere below the root (AWS and the
 * emulators agree on element names, less on wrappers); each later step takes
 * every matching child, so "reservationSet/item/instancesSet/item" yields the
 * instances of every reservation. Field paths are relative to an item; ""
 * means the item's own text; "LIST{KEY=VALUE}/PATH" reads PATH of the first
 * element of LIST whose KEY reads VALUE (a tag by its key:
 * "tagSet/item{key=Name}/value"). A missing field reads as "". Texts are
 * trimmed.
 */
#ifndef GM_AWS_READ_H
#define GM_AWS_READ_H

#include <jansson.h>
#include <libxml/tree.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

#define GM_READ_MAX_FIELDS 8
#define GM_READ_MAX_ROWS 10000 /* per response: AWS pages far below this */
#define GM_READ_FIELD_MAX 4096 /* longer texts are refused as malformed */

typedef struct gm_read_spec {
    const char *name; /* "ec2 instances": for messages and the fuzz targets */
    const char *list; /* path of the items; "" or NULL: the root itself is the one item */
    const char *fields[GM_READ_MAX_FIELDS]; /* NULL-terminated */
} gm_read_spec;

typedef struct gm_read_row {
    char *f[GM_READ_MAX_FIELDS];
} gm_read_row;

typedef struct gm_read_rows {
    gm_read_row *rows;
    size_t n;
} gm_read_rows;

void gm_read_rows_init(gm_read_rows *r);
void gm_read_rows_release(gm_read_rows *r); /* safe on NULL and after init */
/* Field f of row i; "" when either is out of range. */
const char *gm_read_get(const gm_read_rows *r, size_t i, int f);
/* Field f of row i, malloc'd (NULL when out of range, empty or out of memory). */
char *gm_read_dup(const gm_read_rows *r, size_t i, int f);

/* Reads the items of spec from doc (NULL doc: no rows). *out is initialised
 * here. GM_ERR_LIMIT past GM_READ_MAX_ROWS; GM_ERR_PARSE for a field longer
 * than GM_READ_FIELD_MAX; GM_ERR_NOMEM. */
GM_MUST_CHECK gm_status gm_read_xml(xmlDocPtr doc, const gm_read_spec *spec, gm_read_rows *out,
                                    gm_error *err);

/* ---- EC2 ---------------------------------------------------------------------- */

extern const gm_read_spec gm_ec2_vpcs;            /* vpcId, state */
extern const gm_read_spec gm_ec2_subnets;         /* subnetId, vpcId, availabilityZone, state */
extern const gm_read_spec gm_ec2_igws;            /* internetGatewayId */
extern const gm_read_spec gm_ec2_igw_attachments; /* vpcId */
extern const gm_read_spec gm_ec2_route_tables;    /* routeTableId */
extern const gm_read_spec gm_ec2_rt_associations; /* routeTableAssociationId, main */
extern const gm_read_spec gm_ec2_security_groups; /* groupId, vpcId */
extern const gm_read_spec gm_ec2_instances;       /* see GM_EC2_I_* */
extern const gm_read_spec gm_ec2_deployment_instances; /* see GM_EC2_DI_* */
extern const gm_read_spec gm_ec2_run_instances;        /* instanceId, instanceState/name */
extern const gm_read_spec gm_ec2_offerings;            /* location */
extern const gm_read_spec gm_ec2_created_vpc;          /* vpcId */
extern const gm_read_spec gm_ec2_created_igw;          /* internetGatewayId */
extern const gm_read_spec gm_ec2_created_subnet;       /* subnetId */
extern const gm_read_spec gm_ec2_created_rt;           /* routeTableId */
extern const gm_read_spec gm_ec2_created_sg;           /* groupId */
extern const gm_read_spec gm_ec2_images;               /* see GM_EC2_IMG_* (DescribeImages) */
extern const gm_read_spec gm_ec2_created_image;        /* imageId (CreateImage) */
extern const gm_read_spec gm_ec2_bake_instances;   /* instanceId, state, the geusemaker:bake tag */
extern const gm_read_spec gm_ec2_baked_images;     /* see GM_EC2_BAKED_* (DescribeImages) */
extern const gm_read_spec gm_ec2_image_tags;       /* key, value of every tag of the images */
extern const gm_read_spec gm_ec2_image_devices;    /* see GM_EC2_BDM_*: every image's mappings */
extern const gm_read_spec gm_ec2_launch_templates; /* launchTemplateId, launchTemplateName */
extern const gm_read_spec gm_ec2_created_launch_template; /* launchTemplateId, launchTemplateName */
extern const gm_read_spec gm_ec2_created_launch_template_version; /* versionNumber */
extern const gm_read_spec gm_ec2_addresses;         /* see GM_EC2_ADDR_* (DescribeAddresses) */
extern const gm_read_spec gm_ec2_allocated_address; /* allocationId, publicIp (AllocateAddress) */
extern const gm_read_spec gm_ec2_next_token;        /* nextToken of a Describe page */
/* The id and the geusemaker tags (GM_TAGGED_* order) of each item. */
extern const gm_read_spec gm_ec2_tagged_launch_templates;
extern const gm_read_spec gm_ec2_tagged_addresses;

enum { GM_EC2_ID = 0 };    /* every list: the id first */
enum { GM_EC2_STATE = 1 }; /* vpcs */
enum { GM_EC2_SUBNET_VPC = 1, GM_EC2_SUBNET_AZ, GM_EC2_SUBNET_STATE };
enum { GM_EC2_ASSOC_MAIN = 1 }; /* route table associations */
enum { GM_EC2_SG_VPC = 1 };     /* security groups */
enum {
    GM_EC2_IMG_ID,
    GM_EC2_IMG_ARCH,             /* "x86_64", "arm64", ... */
    GM_EC2_IMG_ROOT_DEVICE,      /* "/dev/xvda", "/dev/sda1" */
    GM_EC2_IMG_ROOT_DEVICE_TYPE, /* "ebs" or "instance-store" */
    GM_EC2_IMG_STATE,            /* "available", ... */
    GM_EC2_IMG_NAME,
};
enum {
    GM_EC2_BAKED_ID,
    GM_EC2_BAKED_NAME,
    GM_EC2_BAKED_CREATED, /* creationDate: ISO 8601, sorts as text */
    GM_EC2_BAKED_STATE,
    GM_EC2_BAKED_ARCH,
    GM_EC2_BAKED_CATALOGUE, /* the tags geusemaker:catalogue, :os, :tier ("" when absent) */
    GM_EC2_BAKED_OS,
    GM_EC2_BAKED_TIER,
};
enum { GM_EC2_BDM_DEVICE, GM_EC2_BDM_SIZE, GM_EC2_BDM_SNAPSHOT }; /* size in GiB */
enum { GM_EC2_LT_NAME = 1 };                                      /* launch templates */
enum {
    GM_EC2_ADDR_ALLOCATION,
    GM_EC2_ADDR_PUBLIC_IP,
    GM_EC2_ADDR_ASSOCIATION, /* "" when not associated */
    GM_EC2_ADDR_INSTANCE,    /* "" when not associated with an instance */
};
enum {
    GM_EC2_I_ID,
    GM_EC2_I_STATE,
    GM_EC2_I_PUBLIC_IP,
    GM_EC2_I_PRIVATE_IP,
    GM_EC2_I_AZ,
    GM_EC2_I_TYPE,
    GM_EC2_I_LIFECYCLE, /* "spot", or "" for on-demand */
};
/* gm_ec2_deployment_instances: an instance and its deployment-id tag. */
enum {
    GM_EC2_DI_ID,
    GM_EC2_DI_STATE,
    GM_EC2_DI_LAUNCHED, /* launchTime, ISO 8601 */
    GM_EC2_DI_DEPLOYMENT_ID,
};

/* ---- ELBv2 ---------------------------------------------------------------------- */

extern const gm_read_spec gm_elb_load_balancers; /* LoadBalancerArn, State/Code, DNSName */
extern const gm_read_spec gm_elb_target_groups;  /* TargetGroupArn */
extern const gm_read_spec gm_elb_listeners;      /* ListenerArn, Port */
extern const gm_read_spec gm_elb_target_health;  /* see GM_ELB_TH_* */
extern const gm_read_spec gm_elb_tags;           /* Key, Value (DescribeTags of one arn) */

enum { GM_ELB_ARN = 0, GM_ELB_LB_STATE = 1, GM_ELB_LB_DNS = 2, GM_ELB_LISTENER_PORT = 1 };
enum { GM_ELB_TH_ID, GM_ELB_TH_STATE, GM_ELB_TH_REASON, GM_ELB_TH_DESCRIPTION };

/* ---- EC2 Auto Scaling ------------------------------------------------------------ */

extern const gm_read_spec gm_asg_groups;        /* see GM_ASG_G_* (DescribeAutoScalingGroups) */
extern const gm_read_spec gm_asg_instances;     /* see GM_ASG_I_*: the instances of every group */
extern const gm_read_spec gm_asg_tags;          /* Key, Value: the tags of every group */
extern const gm_read_spec gm_asg_distribution;  /* see GM_ASG_D_*: MixedInstancesPolicy */
extern const gm_read_spec gm_asg_target_groups; /* the arn: TargetGroupARNs of every group */
extern const gm_read_spec gm_asg_activities;    /* see GM_ASG_A_* (DescribeScalingActivities) */
extern const gm_read_spec gm_asg_next_token;    /* NextToken of a page */
/* The name and the geusemaker tags (GM_TAGGED_* order) of each group. */
extern const gm_read_spec gm_asg_tagged_groups;

enum { GM_ASG_G_NAME, GM_ASG_G_STATUS, GM_ASG_G_DESIRED }; /* STATUS: "" or "Delete in progress" */
enum {
    GM_ASG_I_ID,
    GM_ASG_I_LIFECYCLE, /* "Pending", "InService", "Terminating", ... */
    GM_ASG_I_HEALTH,    /* "Healthy" / "Unhealthy" */
    GM_ASG_I_AZ,
    GM_ASG_I_TYPE,
};
enum {
    GM_ASG_D_ON_DEMAND_PERCENT, /* OnDemandPercentageAboveBaseCapacity */
    GM_ASG_D_ON_DEMAND_BASE,
    GM_ASG_D_SPOT_STRATEGY,
    GM_ASG_D_SPOT_MAX_PRICE,
};
enum {
    GM_ASG_A_ID,
    GM_ASG_A_STATUS,  /* "Successful", "Failed", "InProgress", "Cancelled", ... */
    GM_ASG_A_MESSAGE, /* StatusMessage: why it failed */
    GM_ASG_A_DESCRIPTION,
    GM_ASG_A_CAUSE,
    GM_ASG_A_START,
};

/* ---- IAM -------------------------------------------------------------------------- */

extern const gm_read_spec gm_iam_role_tags;         /* Key, Value */
extern const gm_read_spec gm_iam_profile_tags;      /* Key, Value */
extern const gm_read_spec gm_iam_profile_roles;     /* RoleName */
extern const gm_read_spec gm_iam_attached_policies; /* PolicyArn */
extern const gm_read_spec gm_iam_policy_names;      /* the name */
extern const gm_read_spec gm_iam_roles;             /* RoleName (ListRoles) */
extern const gm_read_spec gm_iam_profiles;          /* InstanceProfileName */
extern const gm_read_spec gm_iam_truncated;         /* IsTruncated of a List* page */
extern const gm_read_spec gm_iam_marker;            /* Marker of a List* page */
extern const gm_read_spec gm_iam_role_arn;          /* Arn (GetRole) */

enum { GM_IAM_TAG_KEY = 0, GM_IAM_TAG_VALUE = 1 };

/* Every XML reader above, for the fuzz targets (NULL-terminated). */
extern const gm_read_spec *const gm_read_ec2_specs[];
extern const gm_read_spec *const gm_read_elb_specs[];
extern const gm_read_spec *const gm_read_iam_specs[];
extern const gm_read_spec *const gm_read_asg_specs[];

/* ---- EFS and SSM (JSON) ------------------------------------------------------------ */

/* DescribeFileSystems: FileSystems[] as rows of GM_EFS_FS_*. Items that are
 * not objects, or lack a string FileSystemId, are skipped. */
enum {
    GM_EFS_FS_ID,
    GM_EFS_FS_TOKEN,
    GM_EFS_FS_STATE,
    GM_EFS_FS_ENCRYPTED, /* "true" / "false" */
    GM_EFS_FS_TAG_DEPLOYMENT,
    GM_EFS_FS_TAG_NODE,
    GM_EFS_FS_TAG_DEPLOYMENT_ID,
};
GM_MUST_CHECK gm_status gm_efs_read_file_systems(const json_t *answer, gm_read_rows *out,
                                                 gm_error *err);
/* CreateFileSystem's answer: FileSystemId, LifeCycleState (one row, or none
 * without an id). */
GM_MUST_CHECK gm_status gm_efs_read_created_fs(const json_t *answer, gm_read_rows *out,
                                               gm_error *err);
/* DescribeMountTargets / CreateMountTarget: MountTargets[] (or the answer
 * itself when it is one mount target) as rows of GM_EFS_MT_*. */
enum { GM_EFS_MT_ID, GM_EFS_MT_SUBNET, GM_EFS_MT_STATE, GM_EFS_MT_FS };
GM_MUST_CHECK gm_status gm_efs_read_mount_targets(const json_t *answer, gm_read_rows *out,
                                                  gm_error *err);

/* Resource Groups Tagging API GetResources: ResourceTagMappingList[] as rows
 * of GM_TAGGED_*: the ARN and the geusemaker tags. */
enum {
    GM_TAGGED_ARN,
    GM_TAGGED_NAME, /* geusemaker:deployment */
    GM_TAGGED_ID,   /* geusemaker:deployment-id */
    GM_TAGGED_NODE, /* geusemaker:node */
};
GM_MUST_CHECK gm_status gm_tagging_read_resources(const json_t *answer, gm_read_rows *out,
                                                  gm_error *err);
/* DescribeParameters: Parameters[] as rows (Name). */
GM_MUST_CHECK gm_status gm_ssm_read_described(const json_t *answer, gm_read_rows *out,
                                              gm_error *err);
/* The next page's token of a JSON answer (key "NextToken", "PaginationToken",
 * ...), malloc'd; NULL when there is no next page (or it is empty). */
char *gm_read_next_token(const json_t *answer, const char *key);

/* GetParameter / GetParameters: Parameter or Parameters[] as rows (Name,
 * Value); InvalidParameters[] as rows (Name). */
enum { GM_SSM_NAME, GM_SSM_VALUE };
GM_MUST_CHECK gm_status gm_ssm_read_parameters(const json_t *answer, gm_read_rows *out,
                                               gm_error *err);
GM_MUST_CHECK gm_status gm_ssm_read_invalid(const json_t *answer, gm_read_rows *out, gm_error *err);

#endif
