/* The node API: everything a resource kind (engine/nodes_*.c) may use.
 *
 * A node kind is a gm_node_ops table. The executor calls its functions with a
 * gm_node, the handle of one node in one run; through it a kind reads its
 * inputs (the deploy config, other nodes' ids and outputs), writes the journal
 * (intent before a create call, id after), shares run-wide values with other
 * nodes (with a release hook), waits under the run's deadline and interrupt,
 * and reports what it does. Node code never sees the executor's state or its
 * locks: every function here may be called from any node's thread.
 */
#ifndef GM_ENGINE_NODE_H
#define GM_ENGINE_NODE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "aws/client.h"
#include "core/error.h"
#include "core/tier.h"
#include "engine/engine.h"
#include "state/deployment.h"

typedef struct gm_node gm_node;

/* A list of resource ids (a look-up by tag may find more than one). */
typedef struct gm_ids {
    char **v;
    size_t n;
} gm_ids;

void gm_ids_init(gm_ids *ids);
void gm_ids_release(gm_ids *ids); /* safe after init */
GM_MUST_CHECK gm_status gm_ids_add(gm_ids *ids, const char *id, gm_error *err);
bool gm_ids_has(const gm_ids *ids, const char *id);

typedef enum gm_owner {
    GM_OWNER_OURS,  /* tagged with this deployment's id */
    GM_OWNER_GONE,  /* no such resource (any more) */
    GM_OWNER_OTHER, /* exists, and is not this deployment's: never deleted */
} gm_owner;

typedef struct gm_node_ops {
    const char *kind;         /* recorded kind: "vpc", "subnet", ... */
    const char *label;        /* progress while creating: "creating the VPC" */
    const char *delete_label; /* progress while deleting: "deleting the VPC"; NULL: nothing
                                 to delete */
    bool owns_resource;       /* false: lookups and settings, nothing to delete */
    bool listed_by_tags;      /* the Resource Groups Tagging API lists this kind (destroy's
                                 sweep finds it); else destroy always looks it up too */
    bool swept_by_find;       /* the sweep looks it up with find: IAM (global) by its name,
                                 kinds the tagging API may not list by their tags */
    /* Ensures the resource exists (find-or-create, then idempotent settings).
     * Calls gm_node_intent before its create call and gm_node_created right
     * after. */
    gm_status (*create)(gm_node *n, gm_error *err);
    /* Finds every resource of this node by tag, token or name (none: out
     * stays empty). NULL when the kind cannot be found that way. */
    gm_status (*find)(gm_node *n, gm_ids *out, gm_error *err);
    /* Deletes it; a resource that is already gone counts as deleted. */
    gm_status (*destroy)(gm_node *n, const char *id, gm_error *err);
    /* Whose is the resource id (read from AWS, never from the record): this
     * deployment's, gone, or another's (why says whose or why not). Called
     * before every delete of an id the record names; NULL for kinds that own
     * nothing. A malformed id is an error. */
    gm_status (*owner)(gm_node *n, const char *id, gm_owner *out, char *why, size_t why_size,
                       gm_error *err);
    /* Live look: fills out with "exists" (bool), "state" and "drift" (array). */
    gm_status (*inspect)(gm_node *n, const char *id, json_t *out, gm_error *err);
    /* adopt: records the outputs create would have recorded, from the live
     * resource id (NULL for a kind that owns nothing: from the outputs of the
     * nodes after it, which are read back first). Reads only. NULL: none. */
    gm_status (*read_back)(gm_node *n, const char *id, gm_error *err);
} gm_node_ops;

#define GM_MAX_DEPS 10

/* A load balancer failure removes only its group and keeps the core. */
typedef enum gm_node_group { GM_GROUP_CORE, GM_GROUP_ALB } gm_node_group;

typedef struct gm_node_def {
    const char *name; /* unique in its graph: "vpc", "subnet_a", ... */
    const gm_node_ops *ops;
    const char *deps[GM_MAX_DEPS]; /* nodes earlier in the graph */
    int slot;                      /* which of a pair (subnet a/b, mount target a/b) */
    gm_node_group group;
} gm_node_def;

struct gm_engine_graph {
    const gm_node_def *defs;
    size_t n;
};

/* ---- who and where ------------------------------------------------------ */

const char *gm_node_name(const gm_node *n);
const char *gm_node_kind(const gm_node *n);
int gm_node_slot(const gm_node *n);
const char *gm_node_deployment(const gm_node *n);    /* the deployment's name */
const char *gm_node_deployment_id(const gm_node *n); /* its id; "" for a record made before ids */
gm_tier gm_node_tier(const gm_node *n);
gm_aws_client *gm_node_aws(const gm_node *n);
gm_aws_client *gm_node_pricing(const gm_node *n); /* may be NULL */
const gm_deploy_config *gm_node_config(const gm_node *n);
const gm_engine_settings *gm_node_settings(const gm_node *n);
int64_t gm_node_poll_ms(const gm_node *n);
int64_t gm_node_deadline_ms(const gm_node *n); /* monotonic */
bool gm_node_interrupted(const gm_node *n);

/* "geusemaker-NAME-<suffix>": names of the deployment's regional resources. */
void gm_node_resource_name(const gm_node *n, const char *suffix, char *out, size_t size);
/* "geusemaker-NAME-ID-<suffix>": names that are global to the account (IAM),
 * so two deployments of one name in two regions never share one. */
void gm_node_global_name(const gm_node *n, const char *suffix, char *out, size_t size);

/* ---- the journal ----------------------------------------------------------- */

/* Records this node as `creating` with its idempotency token (kept across
 * runs) and saves the record before returning: call it before the create
 * request. out_token (may be NULL) receives the token. */
GM_MUST_CHECK gm_status gm_node_intent(gm_node *n, char *out_token, size_t size, gm_error *err);
/* Records the node's id and saves the record: call it right after the create
 * request answered. */
GM_MUST_CHECK gm_status gm_node_created(gm_node *n, const char *id, gm_error *err);
/* Records a resource the user gave (never deleted) as this node's. */
GM_MUST_CHECK gm_status gm_node_reused(gm_node *n, const char *id, gm_error *err);
/* True when an earlier run journalled this node (it may have left something
 * behind): only then is a look-up worth its round trip. */
bool gm_node_journalled(gm_node *n);
/* Looks for this node's resources with its kind's find (out stays empty when
 * none, or when the kind cannot be found that way). out is initialised here. */
GM_MUST_CHECK gm_status gm_node_find(gm_node *n, gm_ids *out, gm_error *err);
/* Deletes a second resource of this node (a duplicate a look-up found) with
 * the kind's destroy, and notes it in the record. */
GM_MUST_CHECK gm_status gm_node_destroy_extra(gm_node *n, const char *id, gm_error *err);
/* The node's saved idempotency token into out ("" when none). */
void gm_node_token(gm_node *n, char *out, size_t size);

/* ---- other nodes ----------------------------------------------------------- */

/* A copy of another node's id (free it), or NULL when it has none. */
char *gm_node_id_of(gm_node *n, const char *node);
/* A copy of another node's output (free it), or NULL. */
char *gm_node_output_of(gm_node *n, const char *node, const char *key);
/* Whether another node was reused (given by the user) or created. */
gm_provenance gm_node_provenance_of(gm_node *n, const char *node);
/* Sets one of this node's outputs (saved with the next journal write);
 * value NULL stores null. */
GM_MUST_CHECK gm_status gm_node_set_output(gm_node *n, const char *key, const char *value,
                                           gm_error *err);
/* What a lost record can be rebuilt from (adopt): {"name", "deployment_id",
 * "tier", "region", "config"}; NULL when memory is exhausted. */
json_t *gm_node_record_summary(gm_node *n);
/* Replaces the deployment's cost estimate (takes the reference). */
void gm_node_set_cost(gm_node *n, json_t *estimate);

/* ---- values shared by the nodes of one run -------------------------------- */

/* Stores value under key (a static string) for the rest of the run, releasing
 * a value stored before under that key. release (may be NULL) is called once
 * when the value is replaced or the run ends. */
GM_MUST_CHECK gm_status gm_node_share(gm_node *n, const char *key, void *value,
                                      void (*release)(void *), gm_error *err);
/* The value stored under key, or NULL. */
void *gm_node_shared(gm_node *n, const char *key);

/* ---- waiting and reporting ------------------------------------------------- */

/* Sleeps interval_ms unless the run's deadline passes (GM_ERR_TIMEOUT) or an
 * interrupt arrives (GM_ERR_INTERRUPTED); what names the wait in the error. */
GM_MUST_CHECK gm_status gm_node_wait(gm_node *n, int64_t interval_ms, const char *what,
                                     gm_error *err);
/* A note for the user and the record ("attempt 2: ..."). */
void gm_node_note(gm_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The detail shown beside the running step (a resource id, a state). */
void gm_node_detail(gm_node *n, const char *text);

#endif
