/* The deployment record: what a deploy intends, what exists, what happened.
 *
 * Saved as JSON, one file per deployment ($GEUSEMAKER_HOME/deployments/NAME.json),
 * by state/store.h. Never holds secret values.
 */
#ifndef GM_STATE_DEPLOYMENT_H
#define GM_STATE_DEPLOYMENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define GM_STATE_SCHEMA_VERSION 2
#define GM_DEPLOYMENT_ID_LEN 12 /* [a-z0-9], random, made when the record is */
#define GM_NAME_MAX 64

typedef enum gm_dep_status {
    GM_DEP_CREATING,
    GM_DEP_RUNNING,
    GM_DEP_FAILED,
    GM_DEP_ROLLING_BACK,
    GM_DEP_DESTROYING,
    GM_DEP_DESTROYED,
    GM_DEP_PARTIAL, /* tier 2: EC2 side up, load balancer part failed */
    GM_DEP_STOPPED, /* geusemaker stop: no instance (the group's desired capacity 0), the
                       rest kept */
} gm_dep_status;

typedef enum gm_node_status {
    GM_NODE_PENDING,  /* not started */
    GM_NODE_CREATING, /* journalled before the create call; id may be unknown */
    GM_NODE_CREATED,  /* exists; id known */
    GM_NODE_FAILED,   /* create failed; may or may not exist (find by tag) */
    GM_NODE_DELETING, /* delete started */
    GM_NODE_DELETED,  /* gone (or never existed) */
} gm_node_status;

typedef enum gm_provenance {
    GM_PROV_CREATED, /* made by this deployment: destroy deletes it */
    GM_PROV_REUSED,  /* given by the user: never deleted */
} gm_provenance;

typedef struct gm_node_state {
    char name[GM_NAME_MAX]; /* graph node: "vpc", "subnet_a", ... */
    char kind[32];          /* resource kind: "vpc", "subnet", ... */
    char *id;               /* AWS id or name; NULL until known */
    gm_provenance provenance;
    gm_node_status status;
    char token[96];     /* idempotency token (ClientToken, CreationToken, ...) */
    int64_t created_at; /* epoch ms; 0 unknown */
    int64_t updated_at; /* epoch ms */
    json_t *outputs;    /* object; never NULL after load/add */
    char *error;        /* last error message, or NULL */
} gm_node_state;

typedef struct gm_deployment {
    int schema_version;
    char name[GM_NAME_MAX];
    char tier[16]; /* "dev", "automation", "gpu" */
    char region[32];
    /* The deployment's identity in AWS: every resource carries it as the tag
     * geusemaker:deployment-id. "" for a record made before identities
     * (schema 1): its resources are known by name only. */
    char deployment_id[GM_DEPLOYMENT_ID_LEN + 4];
    gm_dep_status status;
    char *status_reason; /* why failed/partial, or NULL */
    int64_t created_at;
    int64_t updated_at;
    json_t *config; /* object: the deploy options (no secrets) */
    json_t *cost;   /* object: cost snapshot, may be empty */
    gm_node_state *nodes;
    size_t n_nodes;
    json_t *events; /* array of {"ts": ms, "type": str, "node": str?, "message": str} */
} gm_deployment;

const char *gm_dep_status_name(gm_dep_status s); /* "creating", ... "partial" */
GM_MUST_CHECK gm_status gm_dep_status_parse(const char *s, gm_dep_status *out);
const char *gm_node_status_name(gm_node_status s); /* "pending", ... "deleted" */
GM_MUST_CHECK gm_status gm_node_status_parse(const char *s, gm_node_status *out);

/* A new record (status creating, timestamps now, empty config/cost/events,
 * no deployment id: the engine gives it one). */
gm_deployment *gm_deployment_new(const char *name, const char *tier, const char *region);
void gm_deployment_free(gm_deployment *d); /* safe on NULL and half-built */

/* True when id is a deployment id: GM_DEPLOYMENT_ID_LEN of [a-z0-9]. */
bool gm_deployment_id_valid(const char *id);

/* The node of that name, or NULL. */
gm_node_state *gm_deployment_node(gm_deployment *d, const char *name);
/* Returns the node of that name, adding a pending one of that kind if absent.
 * Pointers into d->nodes are invalidated by later adds. */
gm_node_state *gm_deployment_ensure_node(gm_deployment *d, const char *name, const char *kind);
GM_MUST_CHECK gm_status gm_node_state_set_id(gm_node_state *n, const char *id);
GM_MUST_CHECK gm_status gm_node_state_set_error(gm_node_state *n,
                                                const char *message); /* NULL clears */

/* Appends an event (ts now). node may be NULL. Keeps at most 1000 events. */
void gm_deployment_add_event(gm_deployment *d, const char *type, const char *node, const char *fmt,
                             ...) __attribute__((format(printf, 4, 5)));

/* JSON round trip. to_json returns a new reference. from_json validates every
 * field (GM_ERR_PARSE naming the field), refuses schema_version newer than
 * GM_STATE_SCHEMA_VERSION (GM_ERR_CONFLICT: "written by a newer geusemaker"),
 * and migrates older versions in memory. */
json_t *gm_deployment_to_json(const gm_deployment *d);
GM_MUST_CHECK gm_status gm_deployment_from_json(json_t *j, gm_deployment **out, gm_error *err);

#endif
