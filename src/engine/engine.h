/* The deployment engine: a resource graph per tier (data, not code paths), an
 * executor that runs every node whose inputs exist concurrently, a journal
 * (intent before each create, id after), rollback and destroy in reverse
 * dependency order, and resume.
 *
 * Crash safety: before any create call the node is saved as `creating` with its
 * idempotency token; right after the call its id is saved. A resource created
 * by a process that died between the two is found again by its tags (or token
 * or deterministic name) by destroy and by deploy --resume.
 *
 * The engine prints nothing: it reports what it does through the observer in
 * its options (cli/ draws the progress display from it) and through the log.
 */
#ifndef GM_ENGINE_ENGINE_H
#define GM_ENGINE_ENGINE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "aws/client.h"
#include "core/tier.h"
#include "stack/stack.h"
#include "state/deployment.h"
#include "state/store.h"

#define GM_MAX_CIDRS 16
#define GM_MAX_TYPES 16
#define GM_MAX_AZS 8
#define GM_MAX_MODELS GM_STACK_MAX_MODELS
#define GM_MAX_IMAGES GM_STACK_MAX_IMAGES /* image overrides: one per service at most */
/* The local encrypted gp3 volume for the databases (/dev/sdf), GiB. */
#define GM_DATA_VOLUME_GB_DEFAULT 20
#define GM_DATA_VOLUME_GB_MAX 16384      /* gp3's largest */
#define GM_DATA_VOLUME_DEVICE "/dev/sdf" /* its name in the launch template's block devices */

typedef struct gm_deploy_config {
    const char *name;
    gm_tier tier;
    gm_os os;                          /* the instance's operating system (--os) */
    int data_volume_gb;                /* --data-volume-gb; 0: the default */
    const char *models[GM_MAX_MODELS]; /* Ollama models pulled after boot (--models) */
    int n_models;
    bool models_set;                          /* --models given (n_models 0: none); else the
                                                 tier's models */
    const char *instance_type;                /* the first candidate (default: the tier's) */
    const char *instance_types[GM_MAX_TYPES]; /* candidates in preference order */
    int n_types;                              /* 0: just instance_type */
    bool types_named; /* the user named the types: a vCPU or memory shortfall only warns */
    const char *azs[GM_MAX_AZS]; /* zones to choose from (--azs); 0: any */
    int n_azs;
    bool spot;                 /* default true: spot when it saves enough */
    bool spot_only;            /* never on-demand */
    double max_spot_price;     /* USD/hour cap for spot; 0: none */
    double min_spot_saving;    /* share spot must save over on-demand; 0: 20 % */
    double budget_monthly;     /* USD; 0: none. Candidates over it are not launched */
    bool force;                /* deploy even when the estimate is over the budget */
    double assume_efs_gb;      /* estimates: EFS storage; 0: the default (10 GB) */
    double assume_transfer_gb; /* estimates: data out per month; 0: the default (10 GB) */
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
    int64_t launch_timeout_ms; /* wait for the group's instance in service; default 10 min */
    /* tier automation: the load balancer */
    const char *certificate_arn; /* HTTPS:443 forwarding, HTTP:80 redirecting to it */
    int64_t alb_timeout_ms;      /* wait for healthy targets; default 300 s */
    int hc_interval_s;           /* target group health check: default 30 */
    int hc_timeout_s;            /* default 5 */
    int healthy_threshold;       /* default 2 */
    int unhealthy_threshold;     /* default 3 */
    /* Image overrides (--image SERVICE=REF): service image_services[i] runs
     * image_refs[i] instead of the catalogue's pin (gm_stack_params). Checked
     * by gm_engine_check_config (gm_stack_validate_images: known services, a
     * tag or digest, never "latest", no service twice). The record keeps them
     * as "images": {"n8n": "n8nio/n8n:2.42.0"} (absent when none). */
    /* The image the instance launches (deploy --image baked|ami-ID, --ami):
     * an image id resolved and checked by gm_engine_resolve_image before
     * anything is created; NULL: the SSM public parameter's base image. The
     * record keeps it as "ami". */
    const char *ami;
    const char *image_services[GM_MAX_IMAGES];
    const char *image_refs[GM_MAX_IMAGES];
    int n_images;
} gm_deploy_config;

/* What the engine reports while it runs (on any of its threads). */
typedef enum gm_engine_event_kind {
    GM_EVENT_STEP_START,   /* text: what the step does ("creating the VPC") */
    GM_EVENT_STEP_DETAIL,  /* text: a resource id or a state while waiting */
    GM_EVENT_STEP_DONE,    /* text: the resource id, or "" */
    GM_EVENT_STEP_FAILED,  /* text: the error message */
    GM_EVENT_STEP_SKIPPED, /* text: why ("reused", "already created") */
    GM_EVENT_NOTE,         /* step may be NULL; text: a line for the user */
} gm_engine_event_kind;

typedef struct gm_engine_event {
    gm_engine_event_kind kind;
    const char *step; /* the graph node, e.g. "subnet_a" */
    const char *text;
} gm_engine_event;

typedef void (*gm_engine_observer)(void *ctx, const gm_engine_event *ev);

/* Every outside input of the engine, filled by the caller (cli/ reads the
 * environment); zero means the default. */
typedef struct gm_engine_settings {
    int64_t poll_ms;             /* between describes while waiting; default 2000 */
    int64_t destroy_timeout_ms;  /* rollback and destroy deadline; default 20 min */
    const char *ami_parameter;   /* SSM parameter naming the AMI; NULL: the tier's */
    const char *health_endpoint; /* the stack's health URL to probe instead of the
                                    instance (GEUSEMAKER_HEALTH_ENDPOINT) */
    int64_t health_poll_ms;      /* between health probes; 0: the health layer's */
    const char *ip_endpoint;     /* public address detection (GEUSEMAKER_IP_ENDPOINT) */
} gm_engine_settings;

typedef struct gm_engine_graph gm_engine_graph;

typedef struct gm_engine_options {
    gm_aws_client *aws;
    gm_aws_client *pricing; /* us-east-1 client for the Price List API; may be NULL */
    gm_store *store;
    gm_engine_observer observer; /* may be NULL */
    void *observer_ctx;
    volatile sig_atomic_t *interrupt; /* set by SIGINT/SIGTERM; may be NULL */
    gm_engine_settings settings;
    const gm_engine_graph *graph; /* NULL: the tier's graph (tests give their own) */
} gm_engine_options;

/* How a deploy ended, beyond its status. */
typedef struct gm_deploy_outcome {
    bool rolled_back; /* failed, and the rollback removed everything it created */
    bool partial;     /* the load balancer part failed and was removed; the rest runs */
    bool interrupted; /* stopped by SIGINT/SIGTERM; the journal is saved */
} gm_deploy_outcome;

/* Checks a deployment name (see gm_stack_validate_name: lowercase letters,
 * digits and '-', starting with a letter, short enough that every derived AWS
 * name fits its limit). */
GM_MUST_CHECK gm_status gm_engine_check_name(const char *name, gm_error *err);

/* Validates every input that can be checked without AWS (name, tier, types,
 * zones, CIDRs, conflicting flags). */
GM_MUST_CHECK gm_status gm_engine_check_config(const gm_deploy_config *cfg, gm_error *err);
/* The Ollama models of cfg: --models when given, else the tier's. */
const char *const *gm_engine_models(const gm_deploy_config *cfg, size_t *out_n);

/* The checks that need the region but no AWS call: --certificate-arn of the
 * region's partition and of the region itself, --azs zones of the region.
 * GM_ERR_INVALID naming the option. */
GM_MUST_CHECK gm_status gm_engine_check_config_region(const gm_deploy_config *cfg,
                                                      const char *region, gm_error *err);

/* Parses an ingress range strictly: four decimal octets 0-255 without
 * leading zeros, '/', a prefix length 0-32 without a leading zero, no host
 * bits set (the message suggests the network), IPv4 only. *out_prefix (may
 * be NULL) receives the prefix length. GM_ERR_INVALID naming --allow-cidr
 * and the value. */
GM_MUST_CHECK gm_status gm_engine_parse_cidr(const char *cidr, int *out_prefix, gm_error *err);

/* The caller's public IPv4 address as "a.b.c.d/32", from endpoint (NULL:
 * https://checkip.amazonaws.com). Never calls out while the AWS endpoint is a
 * loopback emulator unless an endpoint is given. */
GM_MUST_CHECK gm_status gm_engine_detect_cidr(gm_aws_client *aws, const char *endpoint, char *out,
                                              size_t size, gm_error *err);

/* Checks the resources a deploy is told to reuse: subnets in the VPC and in two
 * zones, the security group in the VPC, the file system exists. out_azs (may
 * be NULL) receives the zones of the two subnets, in the order given. */
GM_MUST_CHECK gm_status gm_engine_check_reused(gm_aws_client *aws, const gm_deploy_config *cfg,
                                               char out_azs[2][64], gm_error *err);

/* With cfg->budget_monthly: estimates the plan (read-only calls: offers and
 * prices) and refuses it with GM_ERR_INVALID when over budget, unless
 * cfg->force. Fills *out_estimate (may be NULL) with the best candidate's
 * estimate. */
GM_MUST_CHECK gm_status gm_engine_budget_check(gm_aws_client *aws, gm_aws_client *pricing,
                                               const gm_deploy_config *cfg, json_t **out_estimate,
                                               gm_error *err);

/* A new record for cfg in region: status creating, the config, a first cost
 * estimate, and the reused resources marked as such (reused_azs: the zones of
 * reused subnets, from gm_engine_check_reused). Not saved. */
GM_MUST_CHECK gm_status gm_engine_record_new(const gm_deploy_config *cfg, const char *region,
                                             const char reused_azs[2][64], gm_deployment **out,
                                             gm_error *err);

/* Fills cfg from a saved record (strings point into dep->config, which must
 * outlive cfg). */
GM_MUST_CHECK gm_status gm_engine_config_from_record(const gm_deployment *dep,
                                                     gm_deploy_config *cfg, gm_error *err);

/* Runs a deploy for a new deployment (dep already saved by the caller with
 * the lock held) or continues one (resume). On failure, unless cfg->no_rollback,
 * rolls back what this deployment created. dep stays owned by the caller and
 * holds the final record; *out (may be NULL) says how it ended. */
GM_MUST_CHECK gm_status gm_engine_deploy(const gm_engine_options *o, const gm_deploy_config *cfg,
                                         gm_deployment *dep, bool resume, gm_deploy_outcome *out,
                                         gm_error *err);

/* Deletes everything the deployment created (and what the journal says was
 * being created, found by tags), in reverse dependency order; keep_efs keeps the
 * file system and its mount targets. GM_OK only when nothing remains. */
GM_MUST_CHECK gm_status gm_engine_destroy(const gm_engine_options *o, gm_deployment *dep,
                                          bool keep_efs, gm_error *err);

/* ---- day 2 (lifecycle.c): the Auto Scaling group's capacity ------------------ */

/* stop: the group's desired capacity to 0, waiting until its instance is
 * terminated; the record says stopped. The file system, the address and the
 * load balancer stay (and cost: gm_cost_stopped_monthly). A record that says
 * stopped is stopped again (harmless); one that is neither running, partial
 * nor stopped is refused (GM_ERR_INVALID), as is one without a group. */
GM_MUST_CHECK gm_status gm_engine_stop(const gm_engine_options *o, gm_deployment *dep,
                                       gm_error *err);

/* start: desired capacity 1, waiting for the instance in service (moving to
 * on-demand when spot is refused everywhere, as deploy does) and for the
 * stack's health; the record says running (with the reason when the wait
 * failed: the group keeps trying). */
GM_MUST_CHECK gm_status gm_engine_start(const gm_engine_options *o, gm_deployment *dep,
                                        gm_error *err);

/* A live look at every resource: returns an object {node: {"id", "exists",
 * "state", "drift": [..]}}. */
GM_MUST_CHECK gm_status gm_engine_inspect(const gm_engine_options *o, gm_deployment *dep,
                                          json_t **out, gm_error *err);

/* ---- the cloud's view: what exists whatever the records say ---------------- */

/* The deployments tagged in the client's region (name NULL: of every name,
 * else of that name): a JSON array of {"name", "deployment_id" ("" for one
 * made before ids), "tagged": resources listed}. with_iam adds the IAM roles
 * and instance profiles (global) whose tags name this region. Every listing
 * follows its pages. Listed is not checked: see gm_engine_survey. */
GM_MUST_CHECK gm_status gm_engine_discover(gm_aws_client *aws, const char *name, bool with_iam,
                                           json_t **out, gm_error *err);

/* What of deployment (name, id) still exists, resource by resource, found by
 * its tags (IAM by its names) and checked: {"name", "deployment_id",
 * "region", "resources": [{"node", "kind", "id"}], "hourly_usd": running
 * instances at the shipped on-demand rate plus the load balancer's hour}.
 * Read-only; o->store is not used. */
GM_MUST_CHECK gm_status gm_engine_survey(const gm_engine_options *o, const char *name,
                                         const char *deployment_id, json_t **out, gm_error *err);

/* One name per account and region: GM_ERR_INVALID, naming what it found and
 * how to resolve it, when resources of another deployment of this name
 * (another id) exist in the region. */
GM_MUST_CHECK gm_status gm_engine_check_name_free(const gm_engine_options *o, const char *name,
                                                  const char *deployment_id, gm_error *err);

/* Deletes what exists of deployment (name, id), which has no record: destroy
 * (ownership checks, dependency order, sweeps until nothing tagged is left)
 * on a record made for it and never saved. */
GM_MUST_CHECK gm_status gm_engine_cleanup(const gm_engine_options *o, const char *name,
                                          const char *deployment_id, gm_error *err);

/* What adopt found. */
typedef struct gm_engine_adoption {
    size_t found;           /* resources found and recorded */
    size_t missing;         /* resource nodes of the tier's graph with nothing found */
    bool config_found;      /* the stored config was read (else defaults were used) */
    char missing_list[256]; /* "efs, instance" */
} gm_engine_adoption;

/* Rebuilds the lost record of deployment name in the client's region from
 * what carries its tags and from its stored config (the String parameter
 * beside its secrets). deployment_id NULL: the only deployment of that name
 * there (GM_ERR_INVALID listing them when there are several, or when nothing
 * of it exists). Strictly read-only towards AWS (the client is
 * made read-only for the call). *out is new and not saved: status running
 * when every resource of the tier's graph exists and the instance runs, else
 * failed with what is missing (deploy --resume makes it, destroy deletes the
 * rest). */
GM_MUST_CHECK gm_status gm_engine_adopt(const gm_engine_options *o, const char *name,
                                        const char *deployment_id, gm_deployment **out,
                                        gm_engine_adoption *report, gm_error *err);

/* ---- baked images (bake.c) ---------------------------------------------------- */

/* A new image build's name: "bake-" and 8 random characters of [a-z0-9]. */
GM_MUST_CHECK gm_status gm_engine_bake_name(char *out, size_t size, gm_error *err);
/* True for the record of an image build (its runs take the bake graph). */
bool gm_engine_is_bake(const gm_deployment *dep);
/* The record of a new build of cfg (name from gm_engine_bake_name, tier, os,
 * instance_type, timeout_ms): gm_engine_record_new's, marked as a build with
 * the catalogue version. Not saved. */
GM_MUST_CHECK gm_status gm_engine_bake_record_new(const gm_deploy_config *cfg, const char *region,
                                                  gm_deployment **out, gm_error *err);
/* Runs the build (dep saved by the caller with the lock held): the network,
 * the role, the builder (RunInstances, then the wait for its completion tag,
 * then stopped), CreateImage and the wait for it to be available; then the
 * image's build tags are taken off, the record keeps it as its output
 * (config "image_id") and everything else is destroyed (dep says destroyed).
 * A failure rolls back as a deploy does (*out). out_ami receives the image id
 * as soon as it exists (it may be set on a failure of the clean-up). */
GM_MUST_CHECK gm_status gm_engine_bake(const gm_engine_options *o, const gm_deploy_config *cfg,
                                       gm_deployment *dep, bool resume, char *out_ami, size_t size,
                                       gm_deploy_outcome *out, gm_error *err);
/* This account's baked images in the client's region, newest first: [{"id",
 * "name", "created", "state", "architecture", "os", "tier", "catalogue",
 * "current": baked for this geusemaker's catalogue}]. */
GM_MUST_CHECK gm_status gm_engine_images(gm_aws_client *aws, json_t **out, gm_error *err);
/* Deletes a baked image: GM_ERR_INVALID for an image not tagged as one
 * (nothing deleted); DeregisterImage, then DeleteSnapshot of each of its
 * snapshots (*out_snapshots). *out_gone when there was no such image. */
GM_MUST_CHECK gm_status gm_engine_image_delete(gm_aws_client *aws, const char *ami, bool *out_gone,
                                               size_t *out_snapshots, gm_error *err);
/* The image a deploy of cfg launches for request "baked" (the newest
 * available image tagged ours with this catalogue version, cfg's OS, the
 * GPU runtime exactly when the tier is gpu, and the instance types'
 * architecture) or "ami-..." (that image, checked the same way). Read-only;
 * GM_ERR_INVALID with the way out when none fits. */
GM_MUST_CHECK gm_status gm_engine_resolve_image(gm_aws_client *aws, const gm_deploy_config *cfg,
                                                const char *request, char *out, size_t size,
                                                gm_error *err);

/* The graph of a tier for plan: a JSON array of {"node", "kind", "deps":
 * [..], "creates": whether the step makes a resource, "step": its label
 * ("creating the VPC")} in dependency order (NULL when memory is exhausted). */
json_t *gm_engine_graph_json(gm_tier tier);

/* What a record says about the running stack, for the commands that show it. */
typedef struct gm_engine_summary {
    const char *instance_id;   /* NULL until launched */
    const char *instance_type; /* launched type, else the configured one */
    const char *market;        /* "spot" / "on-demand" */
    const char *public_ip;     /* NULL when unknown */
    const char *alb_dns;       /* NULL without a load balancer */
    bool https_alb;            /* the load balancer listens on HTTPS */
    const char *az;            /* the instance's zone; NULL when unknown */
    const char *group;         /* the Auto Scaling group; NULL for records before it */
    bool elastic_ip;           /* the address is an Elastic IP (it stays when stopped) */
    const char *market_switch; /* why the group went on-demand; NULL when it did not */
    size_t refused;            /* launches the group reported refused */
    char last_refusal[64];     /* the last one's error code; "" when none */
} gm_engine_summary;

/* What destroy deletes according to the record (keep_efs: the file system
 * and its mount targets stay): [{"kind", "id", "data": true for the file
 * system, whose data goes with it}]; reused resources are never in it. */
json_t *gm_engine_doomed(const gm_deployment *dep, bool keep_efs);

/* Fills s from dep (strings point into dep). */
void gm_engine_summary_of(const gm_deployment *dep, gm_engine_summary *s);

/* What `list` needs of a record, as a record JSON (gm_store_list_views'
 * reduction): everything but the nodes other than the instance (or the
 * Auto Scaling group), the Elastic IP and the load balancer, the events,
 * and the cost other than its hourly figure.
 * gm_engine_summary_of and the live verdict read the same from it as from
 * the whole record. GM_ENGINE_LIST_VERSION names this reduction. */
#define GM_ENGINE_LIST_VERSION "list-2"
json_t *gm_engine_list_record(const gm_deployment *dep);

/* The stack's URLs: {"n8n", "qdrant", "crawl4ai", "ollama", "health",
 * "load_balancer"?}; empty when the stack has no address yet. */
json_t *gm_engine_endpoints(const gm_deployment *dep);

/* Where the stack's health document is read: see gm_health_target (the
 * loopback rule). *out_url is malloc'd or NULL when skipped. */
GM_MUST_CHECK gm_status gm_engine_health_url(gm_aws_client *aws, const gm_deployment *dep,
                                             const char *health_endpoint, bool *out_skip,
                                             char **out_url, gm_error *err);

/* Reads the deployment's secrets from SSM (decrypted): an object {key: value}
 * with the keys of stack/secrets.h. */
GM_MUST_CHECK gm_status gm_engine_secrets_read(gm_aws_client *aws, const char *name, json_t **out,
                                               gm_error *err);

#endif
