/* A deployment's live condition: what `status` and `list` say about it.
 *
 * The record says what the last run left (running, partial, failed, ...);
 * the cloud says what is there now. A deployment whose record says running
 * is healthy only while its instance runs and every resource is there: an
 * instance terminated, stopped or gone behind the tool's back makes it
 * degraded, and so is one whose Auto Scaling group has no instance in
 * service. `status` judges from gm_engine_inspect's full look; `list` from
 * one DescribeInstances per region (gm_engine_check_live) by instance id
 * (records of before the group) and one by deployment-id tag (the group's
 * instance, whichever it is now). */
#ifndef GM_ENGINE_LIVENESS_H
#define GM_ENGINE_LIVENESS_H

#include <jansson.h>
#include <stddef.h>

#include "aws/client.h"
#include "core/error.h"
#include "state/deployment.h"

typedef enum gm_live_health {
    GM_LIVE_HEALTHY,     /* running, the instance running, nothing missing or drifted */
    GM_LIVE_DEGRADED,    /* meant to run, but the instance is not running (terminated,
                            stopped, gone, ...), a resource is missing or drifted, or only
                            part of it was deployed (partial) */
    GM_LIVE_FAILED,      /* the record says failed: a deploy or destroy did not finish */
    GM_LIVE_IN_PROGRESS, /* creating, rolling back or destroying: a run is at work, or
                            was stopped before it ended */
    GM_LIVE_DESTROYED,   /* the record says destroyed */
    GM_LIVE_STOPPED,     /* the record says stopped (geusemaker stop): no instance, plainly */
    GM_LIVE_UNKNOWN,     /* meant to run, but the live look failed or was not made */
} gm_live_health;

/* "healthy", "degraded", "failed", "in_progress", "destroyed", "unknown". */
const char *gm_live_health_name(gm_live_health h);

/* The instance's state when it is not found at all. */
#define GM_LIVE_MISSING "missing"

typedef struct gm_live_verdict {
    gm_live_health health;
    char instance_id[32];    /* the instance (the record's, or the one the group runs now);
                                "" when none is known */
    char instance_state[32]; /* live: "running", "terminated", ..., GM_LIVE_MISSING; "" when
                                not known */
    char reason[GM_ERROR_MESSAGE_MAX + 64]; /* why it is not healthy ("" when healthy) */
} gm_live_verdict;

/* status: the verdict from the record and gm_engine_inspect's answer (live
 * NULL: not looked at, the reason given in not_checked). */
void gm_engine_verdict_of(const gm_deployment *dep, const json_t *live, const char *not_checked,
                          gm_live_verdict *out);

/* list: the verdict from the record and its instance's live state (NULL:
 * unknown, why in not_checked; GM_LIVE_MISSING: not found). */
void gm_engine_verdict_instance(const gm_deployment *dep, const char *instance_state,
                                const char *not_checked, gm_live_verdict *out);

/* The live states of instances ids[0..n) in the client's region: one
 * DescribeInstances (for every 200 ids) filtered by instance id and the tag
 * ManagedBy=geusemaker. *out is {id: state}; an id not in it does not exist
 * (or is not geusemaker's). Read-only. */
GM_MUST_CHECK gm_status gm_engine_instance_states(gm_aws_client *aws, const char *const *ids,
                                                  size_t n, json_t **out, gm_error *err);

/* The instance logs and connect talk to: for a deployment with an Auto
 * Scaling group, the group's instance as EC2 sees it now (by the
 * deployment-id tag: a replacement no command has recorded yet is found),
 * when one runs; else the record's (the caller says what became of it).
 * out receives "" when the record names none either.
 * One DescribeInstances for a group; no call for a record before groups. */
GM_MUST_CHECK gm_status gm_engine_current_instance(gm_aws_client *aws, const gm_deployment *dep,
                                                   char *out, size_t size, gm_error *err);

/* The instances of deployments dids[0..n) (by their deployment-id tag, the
 * Auto Scaling group's) in the client's region: one DescribeInstances (for
 * every 200 ids). *out is {deployment id: {"instance_id", "state"}}, the one
 * that runs (or else the newest not terminated); a deployment not in it has
 * no instance. Read-only. */
GM_MUST_CHECK gm_status gm_engine_group_instances(gm_aws_client *aws, const char *const *dids,
                                                  size_t n, json_t **out, gm_error *err);

/* Makes the client for one region (cli/ gives a quick one: short timeouts,
 * one attempt). */
typedef gm_status (*gm_engine_client_fn)(void *ctx, const char *region, gm_aws_client **out,
                                         gm_error *err);

/* list's live check: out[i] is the verdict of deps[i] from its instance's
 * live state, looked up with one gm_engine_instance_states per region that
 * has instances (deployments without one are judged from the record alone).
 * A region whose client cannot be made or whose look fails gives its
 * deployments GM_LIVE_UNKNOWN, the failure in the reason; once credentials
 * are missing or refused, the other regions are not tried. Returns
 * GM_ERR_INVALID (bad input: a profile that does not exist) from make, and
 * GM_ERR_NOMEM; GM_OK otherwise. */
GM_MUST_CHECK gm_status gm_engine_check_live(const gm_deployment *const *deps, size_t n,
                                             gm_engine_client_fn make, void *ctx,
                                             gm_live_verdict *out, gm_error *err);

#endif
