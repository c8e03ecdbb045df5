/* The node kinds (engine/nodes_*.c) and the helpers they share, all over the
 * node API (engine/node.h). */
#ifndef GM_ENGINE_NODES_H
#define GM_ENGINE_NODES_H

#include <libxml/tree.h>
#include <pthread.h>

#include "cost/rank.h"
#include "engine/node.h"

struct gm_read_spec;
struct gm_read_rows;

/* Node kinds. */
extern const gm_node_ops gm_ops_azs, gm_ops_ami, gm_ops_vpc, gm_ops_vpc_dns, gm_ops_igw,
    gm_ops_subnet, gm_ops_route_table, gm_ops_sg, gm_ops_sg_rules, gm_ops_efs, gm_ops_mount_target,
    gm_ops_role, gm_ops_role_policy, gm_ops_profile, gm_ops_profile_role, gm_ops_secrets,
    gm_ops_instance, gm_ops_health, gm_ops_placement, gm_ops_alb_sg, gm_ops_alb_ingress, gm_ops_alb,
    gm_ops_target_group, gm_ops_listener, gm_ops_targets, gm_ops_alb_healthy, gm_ops_efs_policy,
    gm_ops_launch_template, gm_ops_asg, gm_ops_eip, gm_ops_bake_policy, gm_ops_builder,
    gm_ops_image;

/* The graph node of the Auto Scaling group: the instances it launches carry
 * its name in their node tag (the group's tags propagate at launch, and the
 * launch template tags them the same way). */
#define GM_NODE_ASG "asg"

/* ---- tags and look-ups (nodes_aws.c) -------------------------------------- */

/* The tags every resource carries. The deployment id is what ownership rests
 * on: nothing is deleted without it, and destroy, adopt and cleanup find a
 * deployment's resources by it. */
#define GM_TAG_DEPLOYMENT "geusemaker:deployment"       /* its name */
#define GM_TAG_DEPLOYMENT_ID "geusemaker:deployment-id" /* its random id */
#define GM_TAG_NODE "geusemaker:node"                   /* the graph node that made it */
#define GM_TAG_REGION "geusemaker:region"               /* global resources (IAM) only */
#define GM_TAG_MANAGED_BY "ManagedBy"                   /* "geusemaker" */
#define GM_N_MAX_TAGS 8
/* What a baked image is (nodes_bake.c): on the image and its snapshots. */
#define GM_TAG_CATALOGUE "geusemaker:catalogue" /* gm_catalogue_version() */
#define GM_TAG_OS "geusemaker:os"               /* "al2023", ... */
#define GM_TAG_TIER "geusemaker:tier"           /* "dev", "automation", "gpu" */
#define GM_TAG_ARCH "geusemaker:arch"           /* "x86_64", "arm64" */
#define GM_TAG_BUILD "geusemaker:build"         /* the build's name: bake-<id> */

/* Adds TagSpecification.<idx> for resource_type with the standard tags of
 * this node (errors are kept in p and reported when it is sent). */
void gm_n_tag_spec(gm_node *n, gm_params *p, int idx, const char *resource_type);
/* The same plus n_extra more tags (key, value). */
void gm_n_tag_spec_with(gm_node *n, gm_params *p, int idx, const char *resource_type,
                        const char *const extra[][2], int n_extra);
/* The standard tags plus extra ones as Tag.N.Key/Value (CreateTags). */
void gm_n_tags_with(gm_node *n, gm_params *p, const char *const extra[][2], int n_extra);
/* The same inside a structure: prefix + TagSpecification.<idx> (e.g.
 * "LaunchTemplateData." for the instances a launch template makes), tagged
 * as graph node `node`. */
void gm_n_tag_spec_as(gm_node *n, gm_params *p, const char *prefix, int idx,
                      const char *resource_type, const char *node);
/* The standard tags of an Auto Scaling group named group, propagated to the
 * instances it launches (Tags.member.N with PropagateAtLaunch). */
void gm_n_asg_tags(gm_node *n, gm_params *p, const char *group);
/* The standard tags as Tags.member.N.Key/Value (IAM, ELBv2); global adds
 * the region (IAM). */
void gm_n_member_tags(gm_node *n, gm_params *p, bool global);
/* The standard tags as a JSON array of {"Key","Value"} (EFS, SSM); NULL when
 * memory is exhausted. */
json_t *gm_n_json_tags(gm_node *n);

/* One SSM PutParameter of this deployment: tagged when it is made
 * (overwrite false), or replacing the value of an existing one (overwrite
 * true: AWS refuses Tags with Overwrite, the first put's tags stay). */
GM_MUST_CHECK gm_status gm_n_ssm_put(gm_node *n, const char *name, const char *value,
                                     const char *type, const char *description, bool overwrite,
                                     gm_error *err);
/* Puts a String parameter whose value follows the deployment (made tagged,
 * replaced later): the config, the public URL. */
GM_MUST_CHECK gm_status gm_n_ssm_put_string(gm_node *n, const char *name, const char *value,
                                            const char *description, gm_error *err);
/* The tag that says a resource is this deployment's, and its value: the
 * deployment id, or the name for a record made before ids. */
const char *gm_n_owner_tag(const gm_node *n, const char **out_value);
/* EC2 filters 1 and 2: this deployment's resources of this node. */
void gm_n_owner_filters(gm_node *n, gm_params *p);

/* Finds every EC2 resource of this node by the deployment and node tags into
 * out. describe_action e.g. "DescribeVpcs" with the reader of its answer (the
 * id is field 0); extra_filter_name (may be NULL) with its NULL-terminated
 * values narrows it. */
GM_MUST_CHECK gm_status gm_n_ec2_find_tagged(gm_node *n, const char *describe_action,
                                             const struct gm_read_spec *spec,
                                             const char *extra_filter_name,
                                             const char *const *extra_values, gm_ids *out,
                                             gm_error *err);

/* A Query call whose error codes listed in ok_codes (NULL-terminated) count as
 * success; *out_doc may be NULL when the answer is not needed (and is NULL
 * after an ok code). */
GM_MUST_CHECK gm_status gm_n_query(gm_node *n, const gm_aws_service *svc, const char *action,
                                   const gm_params *p, xmlDocPtr *out_doc,
                                   const char *const *ok_codes, gm_error *err);
/* The same with a client instead of a node (image delete, outside a run). */
GM_MUST_CHECK gm_status gm_n_query_with(gm_aws_client *aws, const gm_aws_service *svc,
                                        const char *action, const gm_params *p, xmlDocPtr *out_doc,
                                        const char *const *ok_codes, gm_error *err);
/* The same for EC2. */
GM_MUST_CHECK gm_status gm_n_ec2(gm_node *n, const char *action, const gm_params *p,
                                 xmlDocPtr *out_doc, const char *const *ok_codes, gm_error *err);

/* Independent Query calls issued concurrently (one round trip for all). The
 * caller fills svc (NULL: EC2), action, params and ok_codes; the helper
 * releases every params list and returns the first failure. */
typedef struct gm_n_call {
    const gm_aws_service *svc;
    const char *action;
    gm_params params;
    const char *const *ok_codes;
    /* filled by the helper */
    gm_aws_client *aws;
    gm_status st;
    gm_error err;
    pthread_t thread;
} gm_n_call;
GM_MUST_CHECK gm_status gm_n_parallel(gm_node *n, gm_n_call *calls, int count, gm_error *err);

/* A look beside the caller's own call (both in one round trip): fn(arg) on
 * a thread of its own, or at once on the caller's when no thread can be
 * had; gm_n_beside_join returns once fn has run, either way. */
typedef struct gm_n_beside {
    pthread_t thread;
    bool threaded;
} gm_n_beside;
void gm_n_beside_start(gm_n_beside *b, void *(*fn)(void *), void *arg);
void gm_n_beside_join(gm_n_beside *b);

/* True for the codes that mean "something still depends on it": a delete is
 * retried while it fails with one, until the deadline. */
bool gm_n_is_dependency_error(const gm_error *err);

/* Looks for the node's resources (gm_node_find): the first is returned
 * (*out_id, malloc'd; NULL when none), any others are deleted and noted. */
GM_MUST_CHECK gm_status gm_n_adopt(gm_node *n, char **out_id, gm_error *err);

/* Finds the node's resource from an earlier run (adopting it: *out_id set and
 * journalled) or journals the intent to create it (*out_id NULL). */
GM_MUST_CHECK gm_status gm_n_adopt_or_intent(gm_node *n, char **out_id, char *token,
                                             size_t token_size, gm_error *err);

/* Sends a create that has no idempotency token (its params with .once set)
 * and returns the new id in *out_id. */
typedef gm_status (*gm_n_send_fn)(gm_node *n, void *ctx, char **out_id, gm_error *err);

/* Runs a create that must not be repeated blindly: when its answer may have
 * been lost (gm_aws_error_ambiguous), or AWS answers with one of
 * duplicate_codes (NULL-terminated; may be NULL), the node's resources are
 * looked up by tag (a few times, for AWS lists new resources late) and what
 * is found is adopted; only when nothing is found after a lost answer is the
 * request sent again (three attempts in all). A duplicate that is not this
 * deployment's is an error. The caller journals *out_id. */
GM_MUST_CHECK gm_status gm_n_create_once(gm_node *n, gm_n_send_fn send, void *ctx,
                                         const char *const *duplicate_codes, char **out_id,
                                         gm_error *err);

/* Describes one EC2 resource by id for status: "exists", "state" (field
 * state_field of the reader's row; -1: none), drift. */
GM_MUST_CHECK gm_status gm_n_inspect_ec2(gm_node *n, const char *action, const char *id_param,
                                         const char *id, const struct gm_read_spec *spec,
                                         int state_field, json_t *out, gm_error *err);

/* Whose a resource is, from its name and id tags (NULL or "" when absent):
 * this deployment's when its id tag (the name tag for a record made before
 * ids) matches; why says otherwise whose it is. */
void gm_n_owner_of(gm_node *n, const char *name, const char *id, gm_owner *out, char *why,
                   size_t why_size);
/* The same from its tags (rows of key, value). */
void gm_n_owner_from_tags(gm_node *n, const struct gm_read_rows *tags, gm_owner *out, char *why,
                          size_t why_size);
/* True for an EC2 id: "vpc-", "sg-", "i-", ... and 8 to 17 hex digits. */
bool gm_n_ec2_id_ok(const char *id);
/* Whose the EC2 resource id is: described by id (action, id_param, the path
 * of its item, e.g. "vpcSet/item"), then its tags. NotFound: gone; a
 * malformed id is an error. */
GM_MUST_CHECK gm_status gm_n_owner_ec2(gm_node *n, const char *id, const char *action,
                                       const char *id_param, const char *item_path, gm_owner *out,
                                       char *why, size_t why_size, gm_error *err);

/* Appends a drift note to a live look. */
void gm_n_drift(json_t *live, const char *what);

/* ---- security groups (nodes_net.c) ------------------------------------------ */

/* A security group of this deployment named geusemaker-NAME-<suffix> in its
 * VPC (find-or-create, journalled). *out_id is malloc'd. */
GM_MUST_CHECK gm_status gm_n_sg_create(gm_node *n, const char *suffix, const char *description,
                                       char **out_id, gm_error *err);
GM_MUST_CHECK gm_status gm_n_sg_find(gm_node *n, gm_ids *out, gm_error *err);
GM_MUST_CHECK gm_status gm_n_sg_destroy(gm_node *n, const char *id, gm_error *err);
GM_MUST_CHECK gm_status gm_n_sg_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                      size_t why_size, gm_error *err);
GM_MUST_CHECK gm_status gm_n_sg_inspect(gm_node *n, const char *id, json_t *out, gm_error *err);

/* ---- placement (nodes_placement.c) -------------------------------------------- */

/* The failover order for the instance in the two zones azs (ranked from the
 * market the placement node gathered; gathered again after a resume). */
struct gm_cost_ranking;
GM_MUST_CHECK gm_status gm_n_launch_plan(gm_node *n, const char *const azs[2],
                                         struct gm_cost_ranking *out, gm_error *err);

/* ---- the Auto Scaling group (nodes_asg.c, nodes_asg_wait.c) ------------------- */

/* The group's mixed instances policy: the candidate types in the ranking's
 * order (the overrides) and the market (OnDemandPercentageAboveBaseCapacity
 * 0 for spot, 100 for on-demand). */
typedef struct gm_n_asg_policy {
    char types[GM_MAX_TYPES][GM_COST_TYPE_MAX];
    size_t n_types;
    bool spot;
    char max_price[32]; /* SpotMaxPrice; "" for none (the on-demand price) */
} gm_n_asg_policy;

/* What a create knows when it starts waiting (nothing after a resume: the
 * wait reads the group and ranks again when it needs to). */
typedef struct gm_n_asg_launch {
    gm_cost_ranking plan;
    bool have_plan;
    gm_n_asg_policy pol;
} gm_n_asg_launch;

/* The ranking of the candidates in the deployment's two zones. */
GM_MUST_CHECK gm_status gm_n_asg_plan(gm_node *n, gm_cost_ranking *out, gm_error *err);
/* The policy for one market from a ranking: the types of that market's
 * candidates in order (every type when none is of that market). */
void gm_n_asg_policy_from(const gm_node *n, const gm_cost_ranking *plan, bool spot,
                          gm_n_asg_policy *pol);
/* MixedInstancesPolicy.* parameters of CreateAutoScalingGroup and
 * UpdateAutoScalingGroup, with launch template lt at version (NULL or "":
 * $Latest; update pins one, recorded as the group's output
 * template_version). */
void gm_n_asg_policy_params(const gm_n_asg_policy *pol, const char *lt, const char *version,
                            gm_params *p);
/* DescribeAutoScalingGroups of one group; read with the gm_asg_* readers
 * (no rows: the group does not exist). */
GM_MUST_CHECK gm_status gm_n_asg_describe(gm_node *n, const char *group, xmlDocPtr *out_doc,
                                          gm_error *err);
GM_MUST_CHECK gm_status gm_n_asg_read(gm_node *n, const char *group,
                                      const struct gm_read_spec *spec, struct gm_read_rows *rows,
                                      gm_error *err);
/* The row of the first instance in service (and not unhealthy) of rows read
 * with gm_asg_instances; GM_ERR_NOT_FOUND when none. */
GM_MUST_CHECK gm_status gm_n_asg_in_service(const struct gm_read_rows *instances, size_t *out_row);
/* The instance the deployment's group (node "asg") has in service now;
 * *out_id NULL when none (or no group). */
GM_MUST_CHECK gm_status gm_n_asg_current_instance(gm_node *n, char **out_id, gm_error *err);
/* Records instance's outputs (instance_id, public_ip, private_ip, az,
 * instance_type, market: its lifecycle, else group_market); *out_seen false
 * (and nothing recorded) while EC2 does not know the instance yet. */
GM_MUST_CHECK gm_status gm_n_asg_record_instance(gm_node *n, const char *instance,
                                                 const char *group_market, bool *out_seen,
                                                 gm_error *err);
/* The policy's override types, comma separated, in the node's "overrides"
 * output (deploy, and update pinning a version). */
GM_MUST_CHECK gm_status gm_n_asg_record_overrides(gm_node *n, const gm_n_asg_policy *pol,
                                                  gm_error *err);
/* Records the outputs above from row of a DescribeInstances answer
 * (gm_ec2_instances). */
GM_MUST_CHECK gm_status gm_n_asg_record_row(gm_node *n, const struct gm_read_rows *rows, size_t row,
                                            const char *group_market, gm_error *err);
/* The group's pending and running instances by the tag AWS gives every
 * instance a group launches (aws:autoscaling:groupName): read beside the
 * group in one round trip. */
GM_MUST_CHECK gm_status gm_n_asg_group_instances(gm_node *n, const char *group,
                                                 struct gm_read_rows *rows, gm_error *err);
/* SpotMaxPrice for --max-spot-price (USD per hour, no trailing zeros); ""
 * without a cap. */
void gm_n_asg_max_price(const gm_node *n, char *out, size_t size);
/* Waits for the group's instance in service (--launch-timeout), reading its
 * scaling activities: every refusal is recorded (output launch_attempts) and
 * noted; when spot is refused in every pool (capacity, quota, price) the
 * group moves to on-demand, or with --spot-only the wait stops. */
GM_MUST_CHECK gm_status gm_n_asg_wait(gm_node *n, const char *group, gm_n_asg_launch *launch,
                                      gm_error *err);
/* update: a new version of launch template lt from the node's config (the
 * run's: the record's with update's changes), sent with token (the same
 * token after a lost answer gives the same version); *out_version its
 * number. */
GM_MUST_CHECK gm_status gm_n_lt_new_version(gm_node *n, const char *lt, const char *token,
                                            const char *description, char *out_version, size_t size,
                                            gm_error *err);

/* ---- the group's lifecycle (nodes_asg_life.c) ---- */
/* stop and start: min = desired = capacity (0 or 1), max 1. */
GM_MUST_CHECK gm_status gm_n_asg_set_capacity(gm_node *n, const char *group, int capacity,
                                              gm_error *err);
/* stop: capacity 0, then waits until the group has no instance and every
 * one it had is terminated. */
GM_MUST_CHECK gm_status gm_n_asg_stop(gm_node *n, const char *group, gm_error *err);
/* Terminates instance through the group, which launches its replacement
 * (the desired capacity stays). */
GM_MUST_CHECK gm_status gm_n_asg_replace(gm_node *n, const char *instance, gm_error *err);
/* Points the group at launch template lt's version (NULL: $Latest) with
 * pol's types and market. */
GM_MUST_CHECK gm_status gm_n_asg_set_policy(gm_node *n, const char *group,
                                            const gm_n_asg_policy *pol, const char *lt,
                                            const char *version, gm_error *err);
/* Waits until every instance of ids is terminated (EC2 no longer knowing one
 * counts as terminated). */
GM_MUST_CHECK gm_status gm_n_wait_terminated(gm_node *n, const gm_ids *ids, gm_error *err);
/* Terminates an instance still alive (an instance of the group that outlived
 * it, an image build's builder) and waits until it is terminated. */
GM_MUST_CHECK gm_status gm_n_terminate_instance(gm_node *n, const char *id, gm_error *err);
/* An instance's owner from its tags; a terminated one counts as gone (EC2
 * lists it for an hour). */
GM_MUST_CHECK gm_status gm_n_instance_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                            size_t why_size, gm_error *err);

/* DescribeInstances with params; rows of gm_ec2_instances. */
GM_MUST_CHECK gm_status gm_n_describe_instances(gm_node *n, const gm_params *p,
                                                const char *const *ok_codes,
                                                struct gm_read_rows *rows, gm_error *err);

/* ---- the instance role's documents (nodes_iam.c) ------------------------------ */

/* For the partition of region (aws/partition.h: arn:aws, arn:aws-cn,
 * arn:aws-us-gov; amazonaws.com or amazonaws.com.cn), malloc'd; NULL when
 * the region is in no partition or memory runs out.
 * The managed policy the role gets (arn:P:iam::aws:policy/AmazonSSMManagedInstanceCore): */
char *gm_n_iam_ssm_core_policy_arn(const char *region);
/* The role's inline policy: reading and decrypting (kms:ViaService
 * ssm.REGION.SUFFIX) only the deployment's parameters, mounting (and root
 * access, writing) only the file system fs; fs NULL: the file systems tagged
 * with the deployment's name. */
char *gm_n_iam_stack_policy_for(const char *region, const char *name, const char *fs);
char *gm_n_iam_stack_policy(const char *region, const char *name); /* fs NULL */
/* The Elastic IP the instance may associate with itself (AssociateAddress on
 * that address and on instances tagged tag_key = tag_value). */
typedef struct gm_n_address_grant {
    const char *allocation_id; /* "eipalloc-..." */
    const char *tag_key;       /* the owner tag: geusemaker:deployment-id */
    const char *tag_value;
} gm_n_address_grant;
/* The same plus the address statement (address NULL: none). */
char *gm_n_iam_stack_policy_full(const char *region, const char *name, const char *fs,
                                 const gm_n_address_grant *address);

/* ---- image builds (nodes_bake.c) ------------------------------------------------ */

/* The builder's inline policy: ec2:CreateTags of GM_BAKE_TAG on the calling
 * instance only (malloc'd; NULL for a region of no partition). */
char *gm_n_iam_bake_policy(const char *region);
/* DeregisterImage, then DeleteSnapshot of each of its EBS snapshots
 * (*out_snapshots, may be NULL: how many); an image or snapshot already gone
 * counts as deleted. No ownership check: callers check. */
GM_MUST_CHECK gm_status gm_n_image_delete(gm_aws_client *aws, const char *ami,
                                          size_t *out_snapshots, gm_error *err);
/* Deletes the account's images made of snap (gm_n_image_delete), then snap. */
GM_MUST_CHECK gm_status gm_n_snapshot_delete(gm_aws_client *aws, const char *snap, gm_error *err);

/* ---- the file system's policy (nodes_efs.c) ----------------------------------- */

/* The EFS file system policy of fs for the instance role role_arn
 * ("arn:PARTITION:iam::ACCOUNT:role/..."): every request without TLS
 * (aws:SecureTransport false) denied, and mounting, writing and root access
 * allowed only to that role and only through a mount target
 * (elasticfilesystem:AccessedViaMountTarget). The file system's ARN takes the
 * role's partition and account. malloc'd; NULL for a malformed role ARN. */
char *gm_n_efs_policy(const char *region, const char *fs, const char *role_arn);

#endif
