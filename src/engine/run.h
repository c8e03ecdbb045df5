/* The executor's private state: one run of a graph (deploy, rollback, destroy
 * or inspect). Only the executor (executor.c) and the node API behind
 * engine/node.h (journal.c) include this header; node kinds never do
 * (scripts/check_layers.sh enforces it). */
#ifndef GM_ENGINE_RUN_H
#define GM_ENGINE_RUN_H

#include <pthread.h>

#include "engine/node.h"

typedef enum { RUN_WAIT, RUN_ACTIVE, RUN_DONE, RUN_FAILED } gm_run_state;

typedef struct gm_run gm_run;

struct gm_node {
    const gm_node_def *def;
    gm_ids found; /* this node's resources a sweep found by tag (destroy) */
    bool refused; /* an id the record named was not this deployment's */
    int deps[GM_MAX_DEPS];
    int n_deps;
    int after[GM_MAX_DEPS]; /* deleted before this one (gm_engine_delete_after) */
    int n_after;
    bool ordered; /* after[] replaces "every node that depends on it" */
    /* The owner of the recorded id, checked by the first sweep of a reverse
     * run beside its listing (delete_one does not ask again). */
    bool owner_known;
    gm_owner owner;
    char owner_why[256];
    gm_run_state state;
    int64_t started_ms;
    gm_run *run;
    pthread_t thread;
    bool joinable;
};

typedef struct gm_shared {
    const char *key;
    void *value;
    void (*release)(void *);
} gm_shared;

#define GM_MAX_SHARED 8

struct gm_run {
    gm_aws_client *aws;
    gm_aws_client *pricing;
    gm_store *store;
    gm_engine_observer observer;
    void *observer_ctx;
    volatile sig_atomic_t *interrupt;
    gm_engine_settings settings; /* defaults filled in */
    const gm_deploy_config *cfg;
    gm_tier tier;
    gm_deployment *dep;
    pthread_mutex_t lock; /* guards dep, nodes' states, failures, shared */
    pthread_cond_t cond;
    gm_node *nodes;
    size_t n_nodes;
    int64_t deadline_ms; /* monotonic */
    bool failed;
    gm_error first_error;
    bool keep_efs;
    bool alb_failed; /* a node of the load balancer group failed */
    gm_error alb_error;
    int only_group;          /* reverse runs: -1 all, else only that group */
    bool reversing;          /* rollback or destroy: every failure counts */
    pthread_mutex_t io_lock; /* serialises state writes (group commit) */
    uint64_t version;        /* bumped by every change that must be saved */
    uint64_t written;        /* the newest version on disk */
    gm_shared shared[GM_MAX_SHARED];
    size_t n_shared;
    size_t refusals; /* ids not deleted because they are not this deployment's */
    bool swept;      /* a sweep ran the look-ups by name (swept_by_find) */
};

/* journal.c: the record and its saves, for the executor. */

/* The node's record entry (added when absent). Call with run->lock held. */
gm_node_state *gm_run_state_of(gm_run *r, gm_node *n);
/* Makes every change made so far durable (group commit). Call without
 * run->lock. */
GM_MUST_CHECK gm_status gm_run_commit(gm_run *r, gm_error *err);
/* Reports an event to the observer (no lock needed). */
void gm_run_emit(gm_run *r, gm_engine_event_kind kind, const char *step, const char *text);
/* Releases every shared value. */
void gm_run_release_shared(gm_run *r);

/* executor.c: a run of dep's graph (o->graph, else the tier's) with cfg,
 * for the entry points in executor.c and adopt.c. A run without a store keeps
 * the record in memory only (adopt, cleanup): the caller saves it or not. */
GM_MUST_CHECK gm_status gm_run_init(gm_run *r, const gm_engine_options *o,
                                    const gm_deploy_config *cfg, gm_deployment *dep,
                                    int64_t timeout_ms, gm_error *err);
void gm_run_release(gm_run *r);
/* Sets the record's status (and reason, an event) and commits it. */
GM_MUST_CHECK gm_status gm_run_set_status(gm_run *r, gm_dep_status st, const char *reason,
                                          gm_error *err);
/* The index of the graph node called name, or -1. */
int gm_run_find_node(const gm_run *r, const char *name);
/* Lists the deployment's resources by its tags (IAM by its names) and hands
 * each that still exists to the node that made it (its found ids), for the
 * nodes this run deletes; *out_n counts them, with those no node of the
 * graph can delete. */
GM_MUST_CHECK gm_status gm_run_sweep(gm_run *r, size_t *out_n, gm_error *err);

/* adopt.c: looks up every resource node of the run's graph that the record
 * does not hold yet, in graph order (a child's look-up may need its parent's
 * id), and records what is this deployment's as created; rep counts what was
 * found and lists what was not. */
GM_MUST_CHECK gm_status gm_run_find_all(gm_run *r, gm_engine_adoption *rep, gm_error *err);

/* tiers.c */
const gm_engine_graph *gm_engine_tier_graph(gm_tier tier);
/* An image build's graph (bake.c); the run of a record
 * gm_engine_is_bake says is a build takes it. */
const gm_engine_graph *gm_engine_bake_graph(void);
/* Every node kind of every tier (cleanup and the survey of a deployment
 * without a record). */
const gm_engine_graph *gm_engine_every_graph(void);
/* What must be deleted before node (names; "" entries and names missing
 * from the graph are skipped), or NULL: every node that depends on it. */
const char *const *gm_engine_delete_after(const char *node);

#endif
