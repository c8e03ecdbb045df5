/* The launch template: what every instance the Auto Scaling group launches is
 * made from (image, UserData, instance role, IMDSv2 with one hop, the
 * encrypted root and data volumes, the security group with a public address,
 * the tags of the instance and its volumes). The group's mixed instances
 * policy overrides the instance type; the market is the group's too (a
 * template used with a mixed instances policy must not ask for spot). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "engine/nodes.h"
#include "engine/plan.h"
#include "stack/stack.h"

#define LT "LaunchTemplateData."

static GM_MUST_CHECK gm_status build_userdata(gm_node *n, const char *efs, const char *eip,
                                              char **out_b64, size_t *out_size, gm_error *err)
{
    const gm_deploy_config *cfg = gm_node_config(n);
    size_t n_models = 0;
    const char *const *models = gm_engine_models(cfg, &n_models);
    gm_stack_params sp = {
        .name = gm_node_deployment(n),
        .tier = gm_node_tier(n),
        .region = gm_aws_client_region(gm_node_aws(n)),
        .instance_type = cfg->instance_type,
        .os = cfg->os,
        .efs_id = efs,
        .eip_allocation_id = eip,
        .models = models,
        .n_models = n_models,
        .alb_https = cfg->certificate_arn && *cfg->certificate_arn,
        .image_services = cfg->image_services,
        .image_refs = cfg->image_refs,
        .n_images = cfg->n_images > 0 ? (size_t)cfg->n_images : 0,
    };
    gm_buf script;
    gm_buf_init(&script, GM_LIMIT_USERDATA_SCRIPT);
    gm_status st = gm_userdata_render(&sp, &script, err);
    bool gz = false;
    if (st == GM_OK)
        st = gm_userdata_encode(&script, out_b64, out_size, &gz, err);
    gm_buf_release(&script);
    return st;
}

/* What the template holds besides the ids of other nodes. */
typedef struct lt_spec {
    char *userdata;       /* base64 */
    char root_device[64]; /* the image's root device name */
    int root_gb;          /* max(the image's root snapshot, the tier's need) */
    int data_gb;          /* the databases' volume (/dev/sdf) */
} lt_spec;

/* The volumes from the image's facts (the ami node) and the config; recorded
 * in the node's outputs. */
static GM_MUST_CHECK gm_status volumes_init(gm_node *n, lt_spec *s, gm_error *err)
{
    char *root = gm_node_output_of(n, "ami", "root_device");
    char *snap = gm_node_output_of(n, "ami", "root_snapshot_gb");
    /* A record from before the image was described assumed /dev/xvda. */
    snprintf(s->root_device, sizeof s->root_device, "%s", root && *root ? root : "/dev/xvda");
    s->root_gb = gm_engine_root_volume_gb(gm_node_tier(n), snap ? strtol(snap, NULL, 10) : 0);
    s->data_gb = gm_engine_data_volume_gb(gm_node_config(n));
    free(root);
    free(snap);
    char root_gb[16], data_gb[16];
    snprintf(root_gb, sizeof root_gb, "%d", s->root_gb);
    snprintf(data_gb, sizeof data_gb, "%d", s->data_gb);
    gm_status st = gm_node_set_output(n, "root_device", s->root_device, err);
    if (st == GM_OK)
        st = gm_node_set_output(n, "root_volume_gb", root_gb, err);
    if (st == GM_OK)
        st = gm_node_set_output(n, "data_volume_gb", data_gb, err);
    if (st == GM_OK && s->root_gb > gm_engine_root_need_gb(gm_node_tier(n)))
        gm_node_note(n,
                     "root volume %d GiB: the image's root snapshot is larger than the %d GiB "
                     "the tier needs",
                     s->root_gb, gm_engine_root_need_gb(gm_node_tier(n)));
    return st;
}

/* The root volume (on the image's own root device) and the local data
 * volume for the databases: gp3, encrypted, deleted with the instance. */
static void volume_params(const lt_spec *s, gm_params *p)
{
    char size[16];
    for (int i = 1; i <= 2; i++) {
        snprintf(size, sizeof size, "%d", i == 1 ? s->root_gb : s->data_gb);
        gm_params_addf(p, i == 1 ? s->root_device : GM_DATA_VOLUME_DEVICE,
                       LT "BlockDeviceMapping.%d.DeviceName", i);
        gm_params_addf(p, size, LT "BlockDeviceMapping.%d.Ebs.VolumeSize", i);
        gm_params_addf(p, "gp3", LT "BlockDeviceMapping.%d.Ebs.VolumeType", i);
        gm_params_addf(p, "true", LT "BlockDeviceMapping.%d.Ebs.Encrypted", i);
        gm_params_addf(p, "true", LT "BlockDeviceMapping.%d.Ebs.DeleteOnTermination", i);
    }
}

/* The template's data (LaunchTemplateData.*): of its first version and of
 * every version update makes. */
static void lt_data_params(gm_node *n, const lt_spec *s, gm_params *p)
{
    const gm_deploy_config *cfg = gm_node_config(n);
    char *ami = gm_node_id_of(n, "ami");
    char *sg = gm_node_id_of(n, "sg");
    char *profile = gm_node_id_of(n, "instance_profile");
    gm_params_add(p, LT "ImageId", ami);
    /* The group's overrides choose the type; this one is the first choice. */
    gm_params_add(p, LT "InstanceType", cfg->instance_type);
    gm_params_add(p, LT "UserData", s->userdata);
    gm_params_add(p, LT "IamInstanceProfile.Name", profile);
    /* IMDSv2 only, and one hop: a container behind Docker's bridge cannot
     * reach the instance role's credentials. */
    gm_params_add(p, LT "MetadataOptions.HttpTokens", "required");
    gm_params_add(p, LT "MetadataOptions.HttpEndpoint", "enabled");
    gm_params_add(p, LT "MetadataOptions.HttpPutResponseHopLimit", "1");
    volume_params(s, p);
    /* A public address whatever the subnet's default (a reused subnet may
     * not map one); the group gives the subnet. */
    gm_params_add(p, LT "NetworkInterface.1.DeviceIndex", "0");
    gm_params_add(p, LT "NetworkInterface.1.AssociatePublicIpAddress", "true");
    gm_params_add(p, LT "NetworkInterface.1.SecurityGroupId.1", sg);
    gm_params_add(p, LT "NetworkInterface.1.DeleteOnTermination", "true");
    if (cfg->key_name && *cfg->key_name)
        gm_params_add(p, LT "KeyName", cfg->key_name);
    /* The instance, its volumes and its network interface carry the group's
     * node name: the group made them, and its tags (PropagateAtLaunch) say
     * the same. The interface's tags let the instance role's AssociateAddress
     * statement hold for it too. */
    gm_n_tag_spec_as(n, p, LT, 1, "instance", GM_NODE_ASG);
    gm_n_tag_spec_as(n, p, LT, 2, "volume", GM_NODE_ASG);
    gm_n_tag_spec_as(n, p, LT, 3, "network-interface", GM_NODE_ASG);
    free(ami);
    free(sg);
    free(profile);
}

static void lt_params(gm_node *n, const lt_spec *s, const char *token, gm_params *p)
{
    char name[160];
    gm_node_global_name(n, "lt", name, sizeof name);
    gm_params_add(p, "LaunchTemplateName", name);
    gm_params_add(p, "ClientToken", token);
    gm_params_add(p, "VersionDescription", "geusemaker: the stack's instance");
    lt_data_params(n, s, p);
    gm_n_tag_spec(n, p, 1, "launch-template");
}

typedef struct lt_ctx {
    const lt_spec *spec;
    const char *token;
} lt_ctx;

static GM_MUST_CHECK gm_status send_lt(gm_node *n, void *ctx, char **out_id, gm_error *err)
{
    lt_ctx *c = ctx;
    gm_params p;
    gm_params_init(&p);
    lt_params(n, c->spec, c->token, &p);
    xmlDocPtr doc = NULL;
    gm_status st = gm_aws_query(gm_node_aws(n), &gm_svc_ec2, "CreateLaunchTemplate", &p, &doc, err);
    gm_params_release(&p);
    gm_read_rows rows;
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_created_launch_template, &rows, err);
    xmlFreeDoc(doc);
    if (st != GM_OK)
        return st;
    *out_id = gm_read_dup(&rows, 0, GM_EC2_ID);
    gm_read_rows_release(&rows);
    return *out_id ? GM_OK : gm_error_set(err, GM_ERR_PARSE, "CreateLaunchTemplate returned no id");
}

/* The template's name is unique in the region and AWS keeps its token: a
 * repeat after a lost answer (or a resume with other settings) finds the one
 * the first try made, by its tags. */
/* The template's data for the node's config: the volumes and the UserData
 * (its size recorded). */
static GM_MUST_CHECK gm_status spec_init(gm_node *n, lt_spec *s, gm_error *err)
{
    char *efs = gm_node_id_of(n, "efs");
    char *eip = gm_node_id_of(n, "eip");
    size_t size = 0;
    gm_status st = volumes_init(n, s, err);
    if (st == GM_OK)
        st = build_userdata(n, efs, eip, &s->userdata, &size, err);
    free(efs);
    free(eip);
    char sz[32];
    snprintf(sz, sizeof sz, "%zu", size);
    if (st == GM_OK)
        st = gm_node_set_output(n, "userdata_bytes", sz, err);
    return st;
}

static GM_MUST_CHECK gm_status make_template(gm_node *n, const char *token, char **out_id,
                                             gm_error *err)
{
    lt_spec s = {0};
    gm_status st = spec_init(n, &s, err);
    static const char *const dup[] = {"InvalidLaunchTemplateName.AlreadyExistsException",
                                      "IdempotentParameterMismatch", NULL};
    lt_ctx c = {.spec = &s, .token = token};
    if (st == GM_OK)
        st = gm_n_create_once(n, send_lt, &c, dup, out_id, err);
    free(s.userdata);
    return st;
}

static GM_MUST_CHECK gm_status lt_create(gm_node *n, gm_error *err)
{
    char *id = NULL;
    char token[96];
    gm_status st = gm_n_adopt_or_intent(n, &id, token, sizeof token, err);
    if (st == GM_OK && !id) {
        st = make_template(n, token, &id, err);
        if (st == GM_OK)
            st = gm_node_created(n, id, err);
    }
    free(id);
    return st;
}

static GM_MUST_CHECK gm_status lt_find(gm_node *n, gm_ids *out, gm_error *err)
{
    return gm_n_ec2_find_tagged(n, "DescribeLaunchTemplates", &gm_ec2_launch_templates, NULL, NULL,
                                out, err);
}

static GM_MUST_CHECK gm_status lt_destroy(gm_node *n, const char *id, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "LaunchTemplateId", id);
    static const char *const gone[] = {"InvalidLaunchTemplateId.NotFound",
                                       "InvalidLaunchTemplateId.Malformed", NULL};
    gm_status st = gm_n_ec2(n, "DeleteLaunchTemplate", &p, NULL, gone, err);
    gm_params_release(&p);
    return st;
}

static GM_MUST_CHECK gm_status lt_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                        size_t why_size, gm_error *err)
{
    return gm_n_owner_ec2(n, id, "DescribeLaunchTemplates", "LaunchTemplateId.1",
                          "launchTemplates/item", out, why, why_size, err);
}

static GM_MUST_CHECK gm_status lt_inspect(gm_node *n, const char *id, json_t *live, gm_error *err)
{
    return gm_n_inspect_ec2(n, "DescribeLaunchTemplates", "LaunchTemplateId.1", id,
                            &gm_ec2_launch_templates, -1, live, err);
}

gm_status gm_n_lt_new_version(gm_node *n, const char *lt, const char *token,
                              const char *description, char *out_version, size_t size,
                              gm_error *err)
{
    lt_spec s = {0};
    gm_status st = spec_init(n, &s, err);
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "LaunchTemplateId", lt);
    gm_params_add(&p, "ClientToken", token);
    gm_params_add(&p, "VersionDescription", description);
    lt_data_params(n, &s, &p);
    xmlDocPtr doc = NULL;
    if (st == GM_OK)
        st = gm_n_ec2(n, "CreateLaunchTemplateVersion", &p, &doc, NULL, err);
    gm_params_release(&p);
    free(s.userdata);
    gm_read_rows rows;
    gm_read_rows_init(&rows);
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_created_launch_template_version, &rows, err);
    xmlFreeDoc(doc);
    const char *v = st == GM_OK && rows.n ? gm_read_get(&rows, 0, 0) : "";
    if (st == GM_OK && !*v)
        st = gm_error_set(err, GM_ERR_PARSE, "CreateLaunchTemplateVersion returned no version");
    if (st == GM_OK && (size_t)snprintf(out_version, size, "%s", v) >= size)
        st = gm_error_set(err, GM_ERR_LIMIT, "launch template version '%s' too long", v);
    gm_read_rows_release(&rows);
    return st;
}

const gm_node_ops gm_ops_launch_template = {
    .kind = "launch_template",
    .label = "creating the launch template",
    .delete_label = "deleting the launch template",
    .owns_resource = true,
    .swept_by_find = true,
    .create = lt_create,
    .find = lt_find,
    .destroy = lt_destroy,
    .owner = lt_owner,
    .inspect = lt_inspect,
};
