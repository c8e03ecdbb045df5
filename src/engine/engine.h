/* The deployment engine: a resource graph per tier (data, not code paths), an
 * executor that runs every node whose inputs exist concurrently, a journal
 * (intent before each create, id after), rollback and destroy in reverse
 * dependency order, and resume.
 *
 * Crash safety: before any create call the node is saved as `creating` with its
 * idempotency token; right after the call its id is saved. A resource created
 * by a process that died between the two is found again by its tags (or token
 * or deterministic name) by destroy and by deploy --resume.
 */
#ifndef GM_ENGINE_ENGINE_H
#define GM_ENGINE_ENGINE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "aws/client.h"
#include "state/deployment.h"
#include "state/store.h"
#include "ui/progress.h"

#define GM_MAX_CIDRS 16

typedef struct gm_deploy_config {
    const char *name;
    const char *tier;               /* dev (default), automation, gpu */
    const char *instance_type;      /* the first candidate (default: the tier's list) */
    const char *instance_types[16]; /* candidates in preference order (--instance-types) */
    int n_types;                    /* 0: just instance_type */
    bool spot;                      /* default true: spot when it saves enough */
    bool spot_only;                 /* never on-demand */
    double max_spot_price;          /* USD/hour cap for spot; 0: none */
    double min_spot_saving;         /* share spot must save over on-demand; 0: 20 % */
    double budget_monthly;          /* USD; 0: none. Candidates over it are not launched */
    bool force;                     /* deploy even when the estimate is over the budget */
    const char *cidrs[GM_MAX_CIDRS];
    int n_cidrs; /* 0: detect the caller's public /32 */
    const char *key_name;
    const char *vpc_id;            /* reuse */
    const char *subnet_ids[2];     /* reuse, with vpc_id */
    const char *security_group_id; /* reuse */
    const char *efs_id;            /* reuse */
    bool no_rollback;
    bool no_wait;
    int64_t timeout_ms;        /* whole deploy; default 30 min */
    int64_t health_timeout_ms; /* default 15 min */
    /* tier automation: the load balancer */
    const char *certificate_arn; /* HTTPS:443 forwarding, HTTP:80 redirecting to it */
    int64_t alb_timeout_ms;      /* wait for healthy targets; default 300 s */
    int hc_interval_s;           /* target group health check: default 30 */
    int hc_timeout_s;            /* default 5 */
    int healthy_threshold;       /* default 2 */
    int unhealthy_threshold;     /* default 3 */
} gm_deploy_config;

typedef struct gm_engine_options {
    gm_aws_client *aws;
    gm_aws_client *pricing; /* us-east-1 client for the Price List API; may be NULL */
    gm_store *store;
    gm_progress *progress;            /* may be NULL */
    volatile sig_atomic_t *interrupt; /* set by SIGINT/SIGTERM; may be NULL */
} gm_engine_options;

/* Checks a deployment name (see gm_stack_validate_name: lowercase letters,
 * digits and '-', starting with a letter, short enough that every derived AWS
 * name fits its limit). */
gm_status gm_engine_check_name(const char *name, gm_error *err);

/* Validates every input that can be checked without AWS (name, tier, type,
 * CIDRs, conflicting flags). */
gm_status gm_engine_check_config(const gm_deploy_config *cfg, gm_error *err);

/* The caller's public IPv4 address as "a.b.c.d/32", from GEUSEMAKER_IP_ENDPOINT
 * or https://checkip.amazonaws.com. Never called out while the AWS endpoint is
 * a loopback emulator unless GEUSEMAKER_IP_ENDPOINT is set. */
gm_status gm_engine_detect_cidr(gm_aws_client *aws, char *out, size_t size, gm_error *err);

/* Checks the resources a deploy is told to reuse: subnets in the VPC and in two
 * zones, the security group in the VPC, the file system exists. out_azs (may
 * be NULL) receives the zones of the two subnets, in the order given. */
gm_status gm_engine_check_reused(gm_aws_client *aws, const gm_deploy_config *cfg,
                                 char out_azs[2][64], gm_error *err);

/* With cfg->budget_monthly: estimates the plan (read-only calls: offers and
 * prices) and refuses it with GM_ERR_INVALID when over budget, unless
 * cfg->force. Fills *out_estimate (may be NULL) with the best candidate's
 * estimate. */
gm_status gm_engine_budget_check(gm_aws_client *aws, gm_aws_client *pricing,
                                 const gm_deploy_config *cfg, const char *tier,
                                 json_t **out_estimate, gm_error *err);

/* Runs a deploy for a new deployment (dep already saved by the caller with
 * the lock held) or continues one (resume). On failure, unless cfg->no_rollback,
 * rolls back what this deployment created. *out_dep stays owned by the
 * caller. */
gm_status gm_engine_deploy(const gm_engine_options *o, const gm_deploy_config *cfg,
                           gm_deployment *dep, bool resume, gm_error *err);

/* Deletes everything the deployment created (and what the journal says was
 * being created, found by tags), in reverse dependency order; keep_efs keeps the
 * file system and its mount targets. GM_OK only when nothing remains. */
gm_status gm_engine_destroy(const gm_engine_options *o, gm_deployment *dep, bool keep_efs,
                            gm_error *err);

/* A live look at every resource: returns an object {node: {"id", "exists",
 * "state", "drift": [..]}}. */
gm_status gm_engine_inspect(const gm_engine_options *o, gm_deployment *dep, json_t **out,
                            gm_error *err);

/* The graph of a tier as (node, kind, deps) for plan/docs: prints nothing;
 * returns a JSON array of {"node","kind","deps":[..]} in dependency order. */
json_t *gm_engine_graph_json(const char *tier, const gm_deploy_config *cfg);

#endif
