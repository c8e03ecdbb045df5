/* The resource graph of each tier, as data: node, kind, dependencies. */
#include <string.h>

#include "engine/nodes.h"
#include "engine/run.h"

/* Tier dev (and gpu). Lookups (azs, ami) run beside the first creates. The
 * launch template waits only for what the instance needs; settings that
 * nothing at launch needs (VPC DNS attributes, public routing, ingress rules,
 * role policies) run beside it. The instance is the Auto Scaling group's: the
 * group waits for the template, the subnets and the ranking (placement). The
 * Elastic IP keeps the address across replacements: the template's UserData
 * associates it, and the role's policy allows exactly that address. The
 * longest chain of calls to a running instance is CreateVpc -> CreateSubnet
 * -> CreateAutoScalingGroup -> DescribeAutoScalingGroups.
 *
 * Tier automation has no Elastic IP (the load balancer is the address) and
 * appends the load balancer group: a failure there removes only its nodes and
 * keeps the EC2 side. Its target group is attached to the Auto Scaling group,
 * which registers every instance it launches. */
/* The node lists the graphs share, one node a line. */
/* clang-format off */
#define NETWORK_NODES                                                                      \
    {.name = "azs", .ops = &gm_ops_azs},                                                   \
    {.name = "ami", .ops = &gm_ops_ami},                                                   \
    {.name = "vpc", .ops = &gm_ops_vpc},                                                   \
    {.name = "vpc_dns", .ops = &gm_ops_vpc_dns, .deps = {"vpc"}},                          \
    {.name = "igw", .ops = &gm_ops_igw, .deps = {"vpc"}},                                  \
    {.name = "subnet_a", .ops = &gm_ops_subnet, .deps = {"vpc", "azs"}, .slot = 0},        \
    {.name = "subnet_b", .ops = &gm_ops_subnet, .deps = {"vpc", "azs"}, .slot = 1},        \
    {.name = "route_table", .ops = &gm_ops_route_table,                                    \
     .deps = {"vpc", "igw", "subnet_a", "subnet_b"}},                                      \
    {.name = "sg", .ops = &gm_ops_sg, .deps = {"vpc"}},                                    \
    {.name = "sg_rules", .ops = &gm_ops_sg_rules, .deps = {"sg"}},                         \
    {.name = "efs", .ops = &gm_ops_efs},                                                   \
    {.name = "mount_target_a", .ops = &gm_ops_mount_target,                                \
     .deps = {"efs", "subnet_a", "sg"}, .slot = 0},                                        \
    {.name = "mount_target_b", .ops = &gm_ops_mount_target,                                \
     .deps = {"efs", "subnet_b", "sg"}, .slot = 1},                                        \
    {.name = "role", .ops = &gm_ops_role}

#define IDENTITY_NODES                                                                     \
    {.name = "instance_profile", .ops = &gm_ops_profile},                                  \
    {.name = "profile_role", .ops = &gm_ops_profile_role,                                  \
     .deps = {"role", "instance_profile"}},                                                \
    {.name = "efs_policy", .ops = &gm_ops_efs_policy, .deps = {"efs", "role"}},            \
    {.name = "secrets", .ops = &gm_ops_secrets},                                           \
    {.name = "placement", .ops = &gm_ops_placement}

#define TEMPLATE_DEPS "ami", "sg", "profile_role", "efs", "secrets"

#define INSTANCE_NODES                                                                     \
    {.name = GM_NODE_ASG, .ops = &gm_ops_asg,                                              \
     .deps = {"launch_template", "subnet_a", "subnet_b", "placement"}},                    \
    {.name = "health", .ops = &gm_ops_health,                                              \
     .deps = {GM_NODE_ASG, "route_table", "sg_rules", "mount_target_a", "role_policy",     \
              "efs_policy"}}
/* clang-format on */

static const gm_node_def dev_nodes[] = {
    NETWORK_NODES,
    {.name = "eip", .ops = &gm_ops_eip},
    {.name = "role_policy", .ops = &gm_ops_role_policy, .deps = {"role", "efs", "eip"}},
    IDENTITY_NODES,
    {.name = "launch_template", .ops = &gm_ops_launch_template, .deps = {TEMPLATE_DEPS, "eip"}},
    INSTANCE_NODES,
};

static const gm_node_def alb_nodes[] = {
    NETWORK_NODES,
    {.name = "role_policy", .ops = &gm_ops_role_policy, .deps = {"role", "efs"}},
    IDENTITY_NODES,
    {.name = "launch_template", .ops = &gm_ops_launch_template, .deps = {TEMPLATE_DEPS}},
    INSTANCE_NODES,
    /* the load balancer group */
    {.name = "alb_sg", .ops = &gm_ops_alb_sg, .deps = {"vpc"}, .group = GM_GROUP_ALB},
    {.name = "alb_ingress",
     .ops = &gm_ops_alb_ingress,
     .deps = {"sg", "alb_sg"},
     .group = GM_GROUP_ALB},
    {.name = "alb",
     .ops = &gm_ops_alb,
     .deps = {"subnet_a", "subnet_b", "alb_sg", "igw"},
     .group = GM_GROUP_ALB},
    {.name = "target_group", .ops = &gm_ops_target_group, .deps = {"vpc"}, .group = GM_GROUP_ALB},
    {.name = "listener",
     .ops = &gm_ops_listener,
     .deps = {"alb", "target_group"},
     .group = GM_GROUP_ALB},
    {.name = "targets",
     .ops = &gm_ops_targets,
     .deps = {"target_group", GM_NODE_ASG},
     .group = GM_GROUP_ALB},
    {.name = "alb_healthy",
     .ops = &gm_ops_alb_healthy,
     .deps = {"targets", "listener", "alb_ingress", "route_table"},
     .group = GM_GROUP_ALB},
};

/* An image build (geusemaker image build): a network with egress and no
 * ingress (the group has no rule), a role that may tag only the instance
 * itself, the builder, and the image made of it once it stopped. */
static const gm_node_def bake_nodes[] = {
    {.name = "azs", .ops = &gm_ops_azs},
    {.name = "ami", .ops = &gm_ops_ami},
    {.name = "vpc", .ops = &gm_ops_vpc},
    {.name = "igw", .ops = &gm_ops_igw, .deps = {"vpc"}},
    {.name = "subnet_a", .ops = &gm_ops_subnet, .deps = {"vpc", "azs"}, .slot = 0},
    {.name = "subnet_b", .ops = &gm_ops_subnet, .deps = {"vpc", "azs"}, .slot = 1},
    {.name = "route_table",
     .ops = &gm_ops_route_table,
     .deps = {"vpc", "igw", "subnet_a", "subnet_b"}},
    {.name = "sg", .ops = &gm_ops_sg, .deps = {"vpc"}},
    {.name = "role", .ops = &gm_ops_role},
    {.name = "bake_policy", .ops = &gm_ops_bake_policy, .deps = {"role"}},
    {.name = "instance_profile", .ops = &gm_ops_profile},
    {.name = "profile_role", .ops = &gm_ops_profile_role, .deps = {"role", "instance_profile"}},
    {.name = "builder",
     .ops = &gm_ops_builder,
     .deps = {"ami", "subnet_a", "sg", "profile_role", "bake_policy", "route_table"}},
    {.name = "image", .ops = &gm_ops_image, .deps = {"builder"}},
};

/* Every kind of every tier: cleanup and the survey look for anything a
 * deployment of any tier may have left. */
static const gm_node_def every_node[] = {
    NETWORK_NODES,
    {.name = "eip", .ops = &gm_ops_eip},
    {.name = "role_policy", .ops = &gm_ops_role_policy, .deps = {"role", "efs", "eip"}},
    IDENTITY_NODES,
    {.name = "launch_template", .ops = &gm_ops_launch_template, .deps = {TEMPLATE_DEPS, "eip"}},
    INSTANCE_NODES,
    {.name = "alb_sg", .ops = &gm_ops_alb_sg, .deps = {"vpc"}, .group = GM_GROUP_ALB},
    {.name = "alb_ingress",
     .ops = &gm_ops_alb_ingress,
     .deps = {"sg", "alb_sg"},
     .group = GM_GROUP_ALB},
    {.name = "alb",
     .ops = &gm_ops_alb,
     .deps = {"subnet_a", "subnet_b", "alb_sg", "igw"},
     .group = GM_GROUP_ALB},
    {.name = "target_group", .ops = &gm_ops_target_group, .deps = {"vpc"}, .group = GM_GROUP_ALB},
    {.name = "listener",
     .ops = &gm_ops_listener,
     .deps = {"alb", "target_group"},
     .group = GM_GROUP_ALB},
    {.name = "targets",
     .ops = &gm_ops_targets,
     .deps = {"target_group", GM_NODE_ASG},
     .group = GM_GROUP_ALB},
    /* what an image build leaves when it is stopped */
    {.name = "bake_policy", .ops = &gm_ops_bake_policy, .deps = {"role"}},
    {.name = "builder",
     .ops = &gm_ops_builder,
     .deps = {"ami", "subnet_a", "sg", "profile_role", "bake_policy", "route_table"}},
    {.name = "image", .ops = &gm_ops_image, .deps = {"builder"}},
};

/* The order of deletion: what AWS requires gone before a node's resource can
 * be deleted, which is much less than the reverse of the creation order. An
 * instance (the group's) holds network interfaces in the subnets and the
 * security group, public addresses that keep the gateway attached and the
 * Elastic IP associated; mount targets hold interfaces in the subnets and the
 * group; a profile cannot go with a role in it; the file system waits for
 * its mount targets; the load balancer for its listeners, the target group
 * for the listener and the group's attachment. Everything else (route table,
 * ingress rules, role policies, secrets) goes at once, beside the instance's
 * termination, so a destroy is the group's deletion and its wait, then the
 * network in two steps. An image build's builder instance holds the network
 * as the group's instances do. A node missing from a graph is skipped; a node not in
 * this table (a test's graph) waits for every node that depends on it. */
/* clang-format off */
static const struct {
    const char *node;
    const char *after[GM_MAX_DEPS];
} delete_order[] = {
    {GM_NODE_ASG, {"targets"}},
    {"launch_template", {GM_NODE_ASG}},
    {"eip", {GM_NODE_ASG}},
    {"igw", {GM_NODE_ASG, "alb", "builder"}},
    {"sg", {GM_NODE_ASG, "mount_target_a", "mount_target_b", "sg_rules", "alb_ingress", "builder"}},
    {"subnet_a", {GM_NODE_ASG, "mount_target_a", "mount_target_b", "alb", "builder"}},
    {"subnet_b", {GM_NODE_ASG, "mount_target_a", "mount_target_b", "alb", "builder"}},
    {"efs", {"mount_target_a", "mount_target_b", "efs_policy"}},
    {"instance_profile", {"profile_role"}},
    {"role", {"role_policy", "profile_role", "efs_policy", "bake_policy"}},
    {"alb_sg", {"alb", "alb_ingress", "sg"}},
    {"alb", {"listener"}},
    {"target_group", {"listener", "targets"}},
    {"vpc", {"subnet_a", "subnet_b", "sg", "igw", "route_table", "alb_sg", "alb",
             "target_group", "vpc_dns"}},
    {"route_table", {""}},
    {"sg_rules", {""}},
    {"mount_target_a", {""}},
    {"mount_target_b", {""}},
    {"role_policy", {""}},
    {"profile_role", {""}},
    {"efs_policy", {""}},
    {"secrets", {""}},
    {"vpc_dns", {""}},
    {"alb_ingress", {""}},
    {"listener", {""}},
    {"targets", {""}},
};
/* clang-format on */

const char *const *gm_engine_delete_after(const char *node)
{
    for (size_t i = 0; i < sizeof delete_order / sizeof *delete_order; i++)
        if (strcmp(delete_order[i].node, node) == 0)
            return delete_order[i].after;
    return NULL;
}

static const gm_engine_graph dev_graph = {dev_nodes, sizeof dev_nodes / sizeof *dev_nodes};
static const gm_engine_graph alb_graph = {alb_nodes, sizeof alb_nodes / sizeof *alb_nodes};

static const gm_engine_graph bake_graph = {bake_nodes, sizeof bake_nodes / sizeof *bake_nodes};
static const gm_engine_graph every_graph = {every_node, sizeof every_node / sizeof *every_node};

const gm_engine_graph *gm_engine_every_graph(void)
{
    return &every_graph;
}

const gm_engine_graph *gm_engine_bake_graph(void)
{
    return &bake_graph;
}

const gm_engine_graph *gm_engine_tier_graph(gm_tier tier)
{
    return gm_tier_has_alb(tier) ? &alb_graph : &dev_graph;
}

json_t *gm_engine_graph_json(gm_tier tier)
{
    const gm_engine_graph *g = gm_engine_tier_graph(tier);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < g->n; i++) {
        json_t *deps = json_array();
        for (int k = 0; deps && k < GM_MAX_DEPS && g->defs[i].deps[k]; k++)
            if (json_array_append_new(deps, json_string(g->defs[i].deps[k])) != 0)
                json_decref(deps), deps = NULL;
        const gm_node_ops *ops = g->defs[i].ops;
        json_t *node = deps ? json_pack("{s:s, s:s, s:o, s:b, s:s}", "node", g->defs[i].name,
                                        "kind", ops->kind, "deps", deps, "creates",
                                        ops->owns_resource, "step", ops->label)
                            : NULL;
        if (!node || json_array_append_new(arr, node) != 0)
            json_decref(arr), arr = NULL;
    }
    return arr;
}
