/* Helpers shared by the node kinds. */
#ifndef GM_ENGINE_NODES_H
#define GM_ENGINE_NODES_H

#include "engine/internal.h"

/* Finds the node's resource from an earlier run (adopting it: *out_id set and
 * journalled) or journals the intent to create it (*out_id NULL). */
gm_status gm_n_adopt_or_intent(gm_engine *e, gm_node_run *n, const gm_node_ops *ops, char **out_id,
                               char *token, size_t token_size, gm_error *err);

/* Describes one EC2 resource by id for status: "exists", "state", drift. */
gm_status gm_n_inspect_ec2(gm_engine *e, const char *action, const char *id_param, const char *id,
                           const char *set_name, const char *state_elem, json_t *out,
                           gm_error *err);

bool gm_instance_type_is_arm(const char *type);

/* A security group of this deployment named geusemaker-NAME-<suffix> in its
 * VPC (find-or-create, journalled). *out_id is malloc'd. */
gm_status gm_n_sg_create(gm_engine *e, gm_node_run *n, const gm_node_ops *ops, const char *suffix,
                         const char *description, char **out_id, gm_error *err);
gm_status gm_n_sg_find(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err);
gm_status gm_n_sg_destroy(gm_engine *e, gm_node_run *n, const char *id, gm_error *err);
gm_status gm_n_sg_inspect(gm_engine *e, gm_node_run *n, const char *id, json_t *out, gm_error *err);

/* The failover order for the instance in the two zones azs (ranked from the
 * market the placement node gathered; gathered again after a resume). */
struct gm_cost_ranking;
gm_status gm_n_launch_plan(gm_engine *e, const char *const azs[2], struct gm_cost_ranking *out,
                           gm_error *err);

#endif
