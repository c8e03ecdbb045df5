/* The node kinds of an image build (geusemaker image build): the builder's
 * role policy (SSM core, and tagging itself only), the builder instance
 * (RunInstances with a ClientToken and IMDSv2 required; waits for its
 * completion tag, then stops it) and the image (CreateImage, tagged with its
 * snapshots; waits until it is available).
 *
 * The image carries the build's deployment tags while the build runs, so a
 * crash leaves nothing destroy, cleanup or the sweep cannot find; a
 * successful build takes them off (gm_engine_bake) and the image stays as
 * its output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/partition.h"
#include "aws/read.h"
#include "core/str.h"
#include "engine/nodes.h"
#include "engine/plan.h"
#include "stack/catalogue.h"

static const char *const INSTANCE_GONE[] = {"InvalidInstanceID.NotFound", NULL};
static const char *const IMAGE_GONE[] = {"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", NULL};
static const char *const SNAPSHOT_GONE[] = {"InvalidSnapshot.NotFound", NULL};
static const char *const IMAGE_TAKEN[] = {"InvalidAMIName.Duplicate", NULL};

/* ---- the builder's role policy ------------------------------------------ */

/* Tagging the instance itself only, with the completion tag only. */
char *gm_n_iam_bake_policy(const char *region)
{
    const gm_partition *p = gm_partition_of(region);
    if (!p)
        return NULL;
    return gm_strfmt(
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"TagItself\",\"Effect\":\"Allow\","
        "\"Action\":\"ec2:CreateTags\",\"Resource\":\"arn:%s:ec2:%s:*:instance/*\","
        "\"Condition\":{\"StringEquals\":{\"aws:ARN\":\"${ec2:SourceInstanceARN}\"},"
        "\"ForAllValues:StringEquals\":{\"aws:TagKeys\":[\"" GM_BAKE_TAG "\"]}}}]}",
        p->id, region);
}

static GM_MUST_CHECK gm_status bake_policy_create(gm_node *n, gm_error *err)
{
    const char *region = gm_aws_client_region(gm_node_aws(n));
    char *role = gm_node_id_of(n, "role");
    char *doc = gm_n_iam_bake_policy(region);
    char *managed = gm_n_iam_ssm_core_policy_arn(region);
    gm_status st = GM_OK;
    if (!role || !doc || !managed)
        st = gm_error_set(err, role ? GM_ERR_NOMEM : GM_ERR_INTERNAL,
                          role ? "out of memory" : "no role for its policies");
    gm_n_call calls[2];
    memset(calls, 0, sizeof calls);
    if (st == GM_OK) {
        calls[0].svc = &gm_svc_iam;
        calls[0].action = "AttachRolePolicy";
        gm_params_init(&calls[0].params);
        gm_params_add(&calls[0].params, "RoleName", role);
        gm_params_add(&calls[0].params, "PolicyArn", managed);
        calls[1].svc = &gm_svc_iam;
        calls[1].action = "PutRolePolicy";
        gm_params_init(&calls[1].params);
        gm_params_add(&calls[1].params, "RoleName", role);
        gm_params_add(&calls[1].params, "PolicyName", "geusemaker-bake");
        gm_params_add(&calls[1].params, "PolicyDocument", doc);
        st = gm_n_parallel(n, calls, 2, err);
    }
    if (st == GM_OK)
        st = gm_node_created(n, role, err);
    free(role);
    free(doc);
    free(managed);
    return st;
}

const gm_node_ops gm_ops_bake_policy = {
    .kind = "bake_policy",
    .label = "granting the builder's role its permissions",
    .create = bake_policy_create,
};

/* ---- the builder instance ----------------------------------------------- */

static GM_MUST_CHECK gm_status builder_find(gm_node *n, gm_ids *out, gm_error *err)
{
    static const char *const alive[] = {"pending", "running",       "stopping",
                                        "stopped", "shutting-down", NULL};
    return gm_n_ec2_find_tagged(n, "DescribeInstances", &gm_ec2_instances, "instance-state-name",
                                alive, out, err);
}

/* The builder's script, encoded for RunInstances. */
static GM_MUST_CHECK gm_status builder_userdata(gm_node *n, char **out_b64, gm_error *err)
{
    const gm_deploy_config *cfg = gm_node_config(n);
    gm_stack_params sp = {.name = gm_node_deployment(n),
                          .tier = gm_node_tier(n),
                          .region = gm_aws_client_region(gm_node_aws(n)),
                          .instance_type = cfg->instance_type,
                          .os = cfg->os};
    gm_buf script;
    gm_buf_init(&script, GM_LIMIT_USERDATA_SCRIPT);
    size_t size = 0;
    bool gz = false;
    gm_status st = gm_userdata_render_bake(&sp, &script, err);
    if (st == GM_OK)
        st = gm_userdata_encode(&script, out_b64, &size, &gz, err);
    gm_buf_release(&script);
    return st;
}

/* RunInstances' parameters: the base image, the first subnet, the group
 * without ingress, the profile, IMDSv2 only, an encrypted root volume. */
static GM_MUST_CHECK gm_status builder_params(gm_node *n, const char *token, const char *b64,
                                              gm_params *p, gm_error *err)
{
    char *ami = gm_node_id_of(n, "ami"), *subnet = gm_node_id_of(n, "subnet_a");
    char *sg = gm_node_id_of(n, "sg"), *profile = gm_node_id_of(n, "instance_profile");
    char *root = gm_node_output_of(n, "ami", "root_device");
    char *snap = gm_node_output_of(n, "ami", "root_snapshot_gb");
    gm_status st = GM_OK;
    if (!ami || !subnet || !sg || !profile || !root)
        st = gm_error_set(err, GM_ERR_INTERNAL,
                          "the builder's image, network or profile is missing");
    if (st == GM_OK) {
        char gb[16];
        snprintf(gb, sizeof gb, "%d",
                 gm_engine_root_volume_gb(gm_node_tier(n), snap ? strtol(snap, NULL, 10) : 0));
        gm_params_add(p, "ImageId", ami);
        gm_params_add(p, "InstanceType", gm_node_config(n)->instance_type);
        gm_params_add(p, "MinCount", "1");
        gm_params_add(p, "MaxCount", "1");
        gm_params_add(p, "ClientToken", token);
        gm_params_add(p, "SubnetId", subnet);
        gm_params_add(p, "SecurityGroupId.1", sg);
        gm_params_add(p, "IamInstanceProfile.Name", profile);
        gm_params_add(p, "MetadataOptions.HttpTokens", "required");
        gm_params_add(p, "MetadataOptions.HttpEndpoint", "enabled");
        gm_params_add(p, "UserData", b64);
        gm_params_add(p, "BlockDeviceMapping.1.DeviceName", root);
        gm_params_add(p, "BlockDeviceMapping.1.Ebs.VolumeSize", gb);
        gm_params_add(p, "BlockDeviceMapping.1.Ebs.VolumeType", "gp3");
        gm_params_add(p, "BlockDeviceMapping.1.Ebs.Encrypted", "true");
        gm_params_add(p, "BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true");
        gm_n_tag_spec(n, p, 1, "instance");
        gm_n_tag_spec(n, p, 2, "volume");
    }
    free(ami), free(subnet), free(sg), free(profile), free(root), free(snap);
    return st;
}

/* A new instance profile can be refused for a few seconds (IAM propagates). */
static bool profile_not_ready(const gm_error *e)
{
    return strcmp(e->aws_code, "InvalidParameterValue") == 0 && strstr(e->message, "rofile");
}

/* RunInstances with the node's token: a repeat (a lost answer, a resume)
 * returns the same instance. */
static GM_MUST_CHECK gm_status builder_launch(gm_node *n, const char *token, char **out_id,
                                              gm_error *err)
{
    char *b64 = NULL;
    gm_status st = builder_userdata(n, &b64, err);
    gm_params p;
    gm_params_init(&p);
    if (st == GM_OK)
        st = builder_params(n, token, b64, &p, err);
    for (int attempt = 0; st == GM_OK; attempt++) {
        xmlDocPtr doc = NULL;
        gm_error rerr = {0};
        st = gm_n_ec2(n, "RunInstances", &p, &doc, NULL, &rerr);
        gm_read_rows rows;
        gm_read_rows_init(&rows);
        if (st == GM_OK)
            st = gm_read_xml(doc, &gm_ec2_run_instances, &rows, err);
        xmlFreeDoc(doc);
        if (st == GM_OK && !(*out_id = gm_read_dup(&rows, 0, GM_EC2_ID)))
            st = gm_error_set(err, GM_ERR_PARSE, "RunInstances returned no instance");
        gm_read_rows_release(&rows);
        if (st == GM_OK || !*rerr.aws_code)
            break;
        if (!profile_not_ready(&rerr) || attempt >= 10) {
            *err = rerr;
            break;
        }
        st = gm_node_wait(n, gm_node_poll_ms(n) * 2, "waiting for the instance profile", err);
    }
    gm_params_release(&p);
    free(b64);
    return st;
}

/* The builder's state and completion tag. */
static GM_MUST_CHECK gm_status builder_read(gm_node *n, const char *id, char *state,
                                            size_t state_size, char *tag, size_t tag_size,
                                            gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InstanceId.1", id);
    xmlDocPtr doc = NULL;
    gm_status st = gm_n_ec2(n, "DescribeInstances", &p, &doc, INSTANCE_GONE, err);
    gm_params_release(&p);
    gm_read_rows rows;
    gm_read_rows_init(&rows);
    if (st == GM_OK && doc)
        st = gm_read_xml(doc, &gm_ec2_bake_instances, &rows, err);
    xmlFreeDoc(doc);
    snprintf(state, state_size, "%s", rows.n ? gm_read_get(&rows, 0, 1) : "");
    snprintf(tag, tag_size, "%s", rows.n ? gm_read_get(&rows, 0, 2) : "");
    gm_read_rows_release(&rows);
    return st;
}

/* Waits until the builder's script tags it done (its role may tag only the
 * instance itself); failed, or an instance that stops or goes, ends the wait. */
static GM_MUST_CHECK gm_status builder_wait_done(gm_node *n, const char *id, gm_error *err)
{
    char state[32], tag[32], seen[64] = "";
    for (;;) {
        gm_status st = builder_read(n, id, state, sizeof state, tag, sizeof tag, err);
        if (st != GM_OK)
            return st;
        if (strcmp(tag, "done") == 0)
            return GM_OK;
        if (strcmp(tag, "failed") == 0)
            return gm_error_set(err, GM_ERR_CONFLICT,
                                "the builder's script failed: its log is in the console output "
                                "(aws ec2 get-console-output --instance-id %s)",
                                id);
        if (*state && strcmp(state, "pending") != 0 && strcmp(state, "running") != 0)
            return gm_error_set(err, GM_ERR_CONFLICT, "the builder %s is %s before it finished", id,
                                state);
        char now[64];
        snprintf(now, sizeof now, "%s: installing and pulling", *state ? state : "launching");
        if (strcmp(now, seen) != 0)
            gm_node_detail(n, now), snprintf(seen, sizeof seen, "%s", now);
        st = gm_node_wait(n, gm_node_poll_ms(n), "waiting for the builder's completion tag", err);
        if (st != GM_OK)
            return st;
    }
}

/* StopInstances, then the wait for stopped: the image is made of a stopped
 * instance, so its file systems are consistent. */
static GM_MUST_CHECK gm_status builder_stop(gm_node *n, const char *id, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InstanceId.1", id);
    gm_node_detail(n, "stopping");
    gm_status st = gm_n_ec2(n, "StopInstances", &p, NULL, NULL, err);
    gm_params_release(&p);
    char state[32], tag[32];
    while (st == GM_OK) {
        st = builder_read(n, id, state, sizeof state, tag, sizeof tag, err);
        if (st != GM_OK || strcmp(state, "stopped") == 0)
            break;
        if (strcmp(state, "stopping") != 0 && strcmp(state, "running") != 0)
            return gm_error_set(err, GM_ERR_CONFLICT, "the builder %s is %s, not stopped", id,
                                *state ? state : "gone");
        st = gm_node_wait(n, gm_node_poll_ms(n), "waiting for the builder to stop", err);
    }
    return st;
}

static GM_MUST_CHECK gm_status builder_create(gm_node *n, gm_error *err)
{
    char *id = NULL;
    char token[80] = "";
    gm_status st = gm_n_adopt_or_intent(n, &id, token, sizeof token, err);
    if (st == GM_OK && !id) {
        st = builder_launch(n, token, &id, err);
        if (st == GM_OK)
            st = gm_node_created(n, id, err);
    }
    if (st == GM_OK)
        st = gm_node_set_output(n, "instance_id", id, err);
    if (st == GM_OK)
        st = builder_wait_done(n, id, err);
    if (st == GM_OK)
        st = builder_stop(n, id, err);
    free(id);
    return st;
}

static GM_MUST_CHECK gm_status builder_destroy(gm_node *n, const char *id, gm_error *err)
{
    return gm_n_terminate_instance(n, id, err);
}

static GM_MUST_CHECK gm_status builder_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                             size_t why_size, gm_error *err)
{
    return gm_n_instance_owner(n, id, out, why, why_size, err);
}

const gm_node_ops gm_ops_builder = {
    .kind = "builder",
    .label = "baking: installing and pulling on the builder",
    .delete_label = "terminating the builder",
    .owns_resource = true,
    .listed_by_tags = true,
    .swept_by_find = true,
    .create = builder_create,
    .find = builder_find,
    .destroy = builder_destroy,
    .owner = builder_owner,
};

/* ---- the image ------------------------------------------------------------ */

static GM_MUST_CHECK gm_status image_find(gm_node *n, gm_ids *out, gm_error *err)
{
    return gm_n_ec2_find_tagged(n, "DescribeImages", &gm_ec2_images, NULL, NULL, out, err);
}

/* The image's name: the build's name (bake-<id>) and the catalogue. */
static void image_name(gm_node *n, char *out, size_t size)
{
    char version[GM_CATALOGUE_VERSION_LEN];
    gm_catalogue_version(version);
    snprintf(out, size, "geusemaker-%s-%s", gm_node_deployment(n), version);
}

static GM_MUST_CHECK gm_status send_create_image(gm_node *n, void *ctx, char **out_id,
                                                 gm_error *err)
{
    gm_params *p = ctx;
    p->once = true;
    xmlDocPtr doc = NULL;
    gm_status st = gm_n_ec2(n, "CreateImage", p, &doc, NULL, err);
    gm_read_rows rows;
    gm_read_rows_init(&rows);
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_created_image, &rows, err);
    xmlFreeDoc(doc);
    if (st == GM_OK && !(*out_id = gm_read_dup(&rows, 0, GM_EC2_ID)))
        st = gm_error_set(err, GM_ERR_PARSE, "CreateImage returned no image id");
    gm_read_rows_release(&rows);
    return st;
}

/* What the image is for: on the image and on its snapshots. */
typedef struct image_tags {
    char version[GM_CATALOGUE_VERSION_LEN];
    char *arch;
    const char *v[5][2];
} image_tags;

static void image_tags_init(gm_node *n, image_tags *t)
{
    gm_catalogue_version(t->version);
    t->arch = gm_node_output_of(n, "ami", "architecture");
    const char *v[5][2] = {{GM_TAG_CATALOGUE, t->version},
                           {GM_TAG_OS, gm_os_name(gm_node_config(n)->os)},
                           {GM_TAG_TIER, gm_tier_name(gm_node_tier(n))},
                           {GM_TAG_ARCH, t->arch ? t->arch : ""},
                           {GM_TAG_BUILD, gm_node_deployment(n)}};
    memcpy(t->v, v, sizeof v);
}

/* CreateImage of the stopped builder; the image and its snapshots tagged at
 * creation with the standard tags and what the image is for (the policy
 * allows tags at creation only: docs/iam-policy.json). */
static GM_MUST_CHECK gm_status image_send(gm_node *n, char **out_id, gm_error *err)
{
    char *builder = gm_node_id_of(n, "builder");
    if (!builder)
        return gm_error_set(err, GM_ERR_INTERNAL, "no builder instance to make the image of");
    char name[128];
    image_name(n, name, sizeof name);
    image_tags t;
    image_tags_init(n, &t);
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InstanceId", builder);
    gm_params_add(&p, "Name", name);
    gm_params_add(&p, "Description", "GeuseMaker baked image: the stack's packages and images");
    gm_n_tag_spec_with(n, &p, 1, "image", t.v, 5);
    gm_n_tag_spec_with(n, &p, 2, "snapshot", t.v, 5);
    gm_status st = gm_n_create_once(n, send_create_image, &p, IMAGE_TAKEN, out_id, err);
    gm_params_release(&p);
    free(builder);
    free(t.arch);
    return st;
}

/* Waits until the image is available (a failed image ends the wait). */
static GM_MUST_CHECK gm_status image_wait(gm_node *n, const char *id, gm_error *err)
{
    for (;;) {
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "ImageId.1", id);
        xmlDocPtr doc = NULL;
        gm_status st = gm_n_ec2(n, "DescribeImages", &p, &doc, NULL, err);
        gm_params_release(&p);
        gm_read_rows rows;
        gm_read_rows_init(&rows);
        if (st == GM_OK)
            st = gm_read_xml(doc, &gm_ec2_images, &rows, err);
        xmlFreeDoc(doc);
        char state[32];
        snprintf(state, sizeof state, "%s", rows.n ? gm_read_get(&rows, 0, GM_EC2_IMG_STATE) : "");
        gm_read_rows_release(&rows);
        if (st != GM_OK || strcmp(state, "available") == 0)
            return st;
        if (strcmp(state, "failed") == 0 || strcmp(state, "error") == 0 ||
            strcmp(state, "invalid") == 0 || strcmp(state, "deregistered") == 0)
            return gm_error_set(err, GM_ERR_CONFLICT, "image %s is %s", id, state);
        gm_node_detail(n, *state ? state : "registering");
        st = gm_node_wait(n, gm_node_poll_ms(n), "waiting for the image to be available", err);
        if (st != GM_OK)
            return st;
    }
}

static GM_MUST_CHECK gm_status image_create(gm_node *n, gm_error *err)
{
    char *id = NULL;
    gm_status st = gm_n_adopt_or_intent(n, &id, NULL, 0, err);
    if (st == GM_OK && !id) {
        st = image_send(n, &id, err);
        if (st == GM_OK)
            st = gm_node_created(n, id, err);
    }
    if (st == GM_OK)
        st = image_wait(n, id, err);
    if (st == GM_OK)
        st = gm_node_set_output(n, "image_id", id, err);
    free(id);
    return st;
}

/* Deletes an image of ours and its snapshots, or a snapshot of ours (after
 * the images made of it: a snapshot in use cannot go). */
static GM_MUST_CHECK gm_status image_destroy(gm_node *n, const char *id, gm_error *err)
{
    if (strncmp(id, "snap-", 5) == 0)
        return gm_n_snapshot_delete(gm_node_aws(n), id, err);
    return gm_n_image_delete(gm_node_aws(n), id, NULL, err);
}

/* Whose the image or snapshot is. An image this build made and released
 * (its deployment tags taken off: the build's output) is no longer the
 * build's: gone, for this run. */
static GM_MUST_CHECK gm_status image_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                           size_t why_size, gm_error *err)
{
    bool snap = strncmp(id, "snap-", 5) == 0;
    gm_status st = snap ? gm_n_owner_ec2(n, id, "DescribeSnapshots", "SnapshotId.1",
                                         "snapshotSet/item", out, why, why_size, err)
                        : gm_n_owner_ec2(n, id, "DescribeImages", "ImageId.1", "imagesSet/item",
                                         out, why, why_size, err);
    if (st == GM_OK && *out == GM_OWNER_OTHER &&
        strstr(why, "carries no geusemaker deployment tag"))
        *out = GM_OWNER_GONE;
    return st;
}

const gm_node_ops gm_ops_image = {
    .kind = "image",
    .label = "making the image of the builder",
    .delete_label = "deregistering the image and deleting its snapshots",
    .owns_resource = true,
    .listed_by_tags = false,
    .swept_by_find = true,
    .create = image_create,
    .find = image_find,
    .destroy = image_destroy,
    .owner = image_owner,
};

/* ---- deleting images and snapshots (also geusemaker image delete) --------- */

/* An EC2 call whose codes in ok count as success. */
static GM_MUST_CHECK gm_status ec2_call(gm_aws_client *aws, const char *action, const gm_params *p,
                                        xmlDocPtr *out_doc, const char *const *ok, gm_error *err)
{
    return gm_n_query_with(aws, &gm_svc_ec2, action, p, out_doc, ok, err);
}

static GM_MUST_CHECK gm_status delete_snapshot(gm_aws_client *aws, const char *snap, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "SnapshotId", snap);
    gm_status st = ec2_call(aws, "DeleteSnapshot", &p, NULL, SNAPSHOT_GONE, err);
    gm_params_release(&p);
    return st;
}

gm_status gm_n_snapshot_delete(gm_aws_client *aws, const char *snap, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "Owner.1", "self");
    gm_params_add(&p, "Filter.1.Name", "block-device-mapping.snapshot-id");
    gm_params_add(&p, "Filter.1.Value.1", snap);
    xmlDocPtr doc = NULL;
    gm_status st = ec2_call(aws, "DescribeImages", &p, &doc, NULL, err);
    gm_params_release(&p);
    gm_read_rows images;
    gm_read_rows_init(&images);
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_images, &images, err);
    xmlFreeDoc(doc);
    for (size_t i = 0; st == GM_OK && i < images.n; i++)
        st = gm_n_image_delete(aws, gm_read_get(&images, i, GM_EC2_IMG_ID), NULL, err);
    gm_read_rows_release(&images);
    return st == GM_OK ? delete_snapshot(aws, snap, err) : st;
}

gm_status gm_n_image_delete(gm_aws_client *aws, const char *ami, size_t *out_snapshots,
                            gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "ImageId.1", ami);
    xmlDocPtr doc = NULL;
    gm_status st = ec2_call(aws, "DescribeImages", &p, &doc, IMAGE_GONE, err);
    gm_params_release(&p);
    gm_read_rows devices;
    gm_read_rows_init(&devices);
    if (st == GM_OK && doc)
        st = gm_read_xml(doc, &gm_ec2_image_devices, &devices, err);
    xmlFreeDoc(doc);
    if (st == GM_OK) {
        gm_params_init(&p);
        gm_params_add(&p, "ImageId", ami);
        st = ec2_call(aws, "DeregisterImage", &p, NULL, IMAGE_GONE, err);
        gm_params_release(&p);
    }
    size_t n = 0;
    for (size_t i = 0; st == GM_OK && i < devices.n; i++) {
        const char *snap = gm_read_get(&devices, i, GM_EC2_BDM_SNAPSHOT);
        if (*snap && (st = delete_snapshot(aws, snap, err)) == GM_OK)
            n++;
    }
    if (out_snapshots)
        *out_snapshots = n;
    gm_read_rows_release(&devices);
    return st;
}
