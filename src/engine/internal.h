/* Engine internals shared by the executor and the node kinds. */
#ifndef GM_ENGINE_INTERNAL_H
#define GM_ENGINE_INTERNAL_H

#include <pthread.h>

#include "aws/xml.h"
#include "engine/engine.h"

#define GM_MAX_DEPS 10

typedef struct gm_node_def {
    const char *name;
    const char *kind;
    const char *deps[GM_MAX_DEPS];
    int slot;  /* which of a pair (subnet a/b, mount target a/b) */
    int group; /* GM_GROUP_CORE or GM_GROUP_ALB: an ALB failure removes only its group */
} gm_node_def;

enum { GM_GROUP_CORE = 0, GM_GROUP_ALB = 1 };

typedef struct gm_engine gm_engine;
typedef struct gm_node_run gm_node_run;

typedef struct gm_node_ops {
    const char *kind;
    const char *label;  /* progress label, e.g. "VPC" */
    bool owns_resource; /* false: lookups and settings, nothing to delete */
    /* Ensures the resource exists (find-or-create, then idempotent settings).
     * Calls gm_e_journal_intent before its create call and gm_e_journal_id
     * right after. */
    gm_status (*create)(gm_engine *e, gm_node_run *n, gm_error *err);
    /* Finds a resource of this node by tag, token or name (*out_id NULL when
     * none). NULL when the kind cannot be found that way. */
    gm_status (*find)(gm_engine *e, gm_node_run *n, char **out_id, gm_error *err);
    /* Deletes it; a resource that is already gone counts as deleted. */
    gm_status (*destroy)(gm_engine *e, gm_node_run *n, const char *id, gm_error *err);
    /* Live look: fills out with "exists" (bool), "state" and "drift" (array). */
    gm_status (*inspect)(gm_engine *e, gm_node_run *n, const char *id, json_t *out, gm_error *err);
} gm_node_ops;

typedef enum { RUN_WAIT, RUN_ACTIVE, RUN_DONE, RUN_FAILED } gm_run_state;

struct gm_node_run {
    const gm_node_def *def;
    const gm_node_ops *ops;
    int deps[GM_MAX_DEPS];
    int n_deps;
    gm_run_state run;
    int64_t started_ms;
    gm_engine *engine;
    pthread_t thread;
    bool joinable;
};

struct gm_engine {
    gm_aws_client *aws;
    gm_store *store;
    gm_progress *progress;
    volatile sig_atomic_t *interrupt;
    const gm_deploy_config *cfg;
    gm_deployment *dep;
    pthread_mutex_t lock; /* guards dep, runs, failure */
    pthread_cond_t cond;
    gm_node_run *runs;
    size_t n_runs;
    int64_t deadline_ms; /* monotonic */
    int64_t poll_ms;
    bool failed;
    gm_error first_error;
    bool keep_efs;
    gm_aws_client *pricing;
    struct gm_cost_market *market; /* gathered by the placement node (memory only) */
    bool alb_failed;               /* a node of the load balancer group failed */
    gm_error alb_error;
    int only_group;          /* reverse runs: -1 all, else only that group */
    bool reversing;          /* rollback or destroy: every failure counts */
    pthread_mutex_t io_lock; /* serialises state writes (group commit) */
    uint64_t version;        /* bumped by every change that must be saved */
    uint64_t written;        /* the newest version on disk */
};

/* Node kinds (engine/nodes_*.c). */
extern const gm_node_ops gm_ops_azs, gm_ops_ami, gm_ops_vpc, gm_ops_vpc_dns, gm_ops_igw,
    gm_ops_subnet, gm_ops_route_table, gm_ops_sg, gm_ops_sg_rules, gm_ops_efs, gm_ops_mount_target,
    gm_ops_role, gm_ops_role_policy, gm_ops_profile, gm_ops_profile_role, gm_ops_secrets,
    gm_ops_instance, gm_ops_health, gm_ops_placement, gm_ops_alb_sg, gm_ops_alb_ingress, gm_ops_alb,
    gm_ops_target_group, gm_ops_listener, gm_ops_targets, gm_ops_alb_healthy;

const gm_node_ops *gm_engine_ops_for(const char *kind);
const gm_node_def *gm_engine_graph(const char *tier, size_t *out_n);

/* Journal and state access for node code (all take the engine lock). */
gm_status gm_e_journal_intent(gm_engine *e, gm_node_run *n, char *out_token, size_t size,
                              gm_error *err);
gm_status gm_e_journal_id(gm_engine *e, gm_node_run *n, const char *id, gm_error *err);
char *gm_e_id(gm_engine *e, const char *node_name); /* copy of a node's id, or NULL */
char *gm_e_output(gm_engine *e, const char *node_name, const char *key); /* copy or NULL */
void gm_e_set_output(gm_engine *e, gm_node_run *n, const char *key, const char *value);
void gm_e_event(gm_engine *e, gm_node_run *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
gm_provenance gm_e_provenance(gm_engine *e, const char *node_name);

/* Sleeps interval_ms unless the deadline passed or an interrupt arrived:
 * GM_ERR_TIMEOUT / GM_ERR_CONFLICT("interrupted") then. */
gm_status gm_e_wait(gm_engine *e, int64_t interval_ms, const char *what, gm_error *err);

/* Frees the gathered market (placement). */
void gm_e_market_free(gm_engine *e);

/* Deterministic names. */
void gm_e_resource_name(gm_engine *e, const char *suffix, char *out, size_t size);

/* Adds TagSpecification.<idx> for resource_type with the standard tags. */
gm_status gm_e_tag_spec(gm_engine *e, gm_params *p, int idx, const char *resource_type,
                        const char *node_name);
/* The standard tags as Tags.member.N.Key/Value (IAM, ELBv2). */
gm_status gm_e_member_tags(gm_engine *e, gm_params *p, const char *node_name);
/* Finds EC2 resources by the deployment and node tags; *out_id NULL if none.
 * describe_action e.g. "DescribeVpcs", set/item paths e.g. "vpcSet", id_elem "vpcId". */
gm_status gm_e_ec2_find_tagged(gm_engine *e, const char *describe_action, const char *set_name,
                               const char *id_elem, const char *node_name,
                               const char *extra_filter_name, const char *extra_filter_value,
                               char **out_id, gm_error *err);
/* A Query call whose error codes listed in ok_codes (NULL-terminated) count as
 * success; *out_doc may be NULL when the answer is not needed. */
gm_status gm_e_query(gm_engine *e, const gm_aws_service *svc, const char *action, gm_params *p,
                     xmlDocPtr *out_doc, const char *const *ok_codes, gm_error *err);
/* An EC2 call whose error codes listed in ok_codes (NULL-terminated) count as
 * success (e.g. "InvalidVpcID.NotFound" on delete). */
gm_status gm_e_ec2_call(gm_engine *e, const char *action, gm_params *p, xmlDocPtr *out_doc,
                        const char *const *ok_codes, gm_error *err);
/* Independent Query calls issued concurrently (one round trip for all). The
 * caller fills svc (NULL: EC2), action, params and ok_codes; the helper
 * releases every params list and returns the first failure. */
typedef struct gm_e_call {
    const gm_aws_service *svc;
    const char *action;
    gm_params params;
    const char *const *ok_codes;
    /* filled by the helper */
    gm_engine *engine;
    gm_status st;
    gm_error err;
    pthread_t thread;
} gm_e_call;
gm_status gm_e_parallel(gm_engine *e, gm_e_call *calls, int n, gm_error *err);

/* Retries a delete while it fails with a dependency error, until the deadline. */
bool gm_e_is_dependency_error(const gm_error *err);

#endif
