/* update: change a running (or stopped) deployment's instance types, images
 * or models through a new launch template version, replacing the instance
 * through its Auto Scaling group, and rolling back to the previous version
 * when the replacement does not serve in time (lifecycle.c). */
#ifndef GM_ENGINE_LIFECYCLE_H
#define GM_ENGINE_LIFECYCLE_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

typedef struct gm_update_request {
    const char *const *instance_types; /* the new candidates in order; n_types 0: unchanged */
    int n_types;
    const char *const *models; /* the new Ollama models; models_set false: unchanged */
    int n_models;
    bool models_set;
    const char *const *image_services; /* SERVICE=REF overrides added (or replaced) */
    const char *const *image_refs;
    int n_images;
    bool dry_run;       /* only the difference: nothing is sent */
    int64_t timeout_ms; /* the replacement in service and healthy; 0: 15 min */
} gm_update_request;

/* How an update ended. */
typedef struct gm_update_outcome {
    bool changed;     /* something differed */
    bool replaced;    /* a new instance serves the new version */
    bool rolled_back; /* it did not serve in time: the previous version serves again */
    char from_version[16], to_version[16];
} gm_update_outcome;

/* The difference req makes to dep's config, without a call: {"instance_types":
 * {"from": [...], "to": [...]}, "models": {...}, "images": {SERVICE: {"from",
 * "to"}}} ({} when nothing changes); NULL with err on bad input (a type of
 * another architecture than the deployment's image, an unknown service, ...).
 * *cfg (may be NULL) receives the new config (its strings point into dep's
 * config and req). */
json_t *gm_engine_update_diff(const gm_deployment *dep, const gm_update_request *req,
                              gm_deploy_config *cfg, gm_error *err);

/* Runs the update (dry_run: gm_engine_update_diff only): a new launch
 * template version from the new config, the group pointed at it and at the
 * new types; when the deployment runs, the instance is replaced through the
 * group and the new one must be in service and healthy within the timeout,
 * else the group goes back to the previous version and types and replaces
 * the instance again (out->rolled_back; the status is GM_ERR_FAILED). The
 * record keeps every version (launch_template output "versions") and the
 * config the serving version was made from. */
GM_MUST_CHECK gm_status gm_engine_update(const gm_engine_options *o, gm_deployment *dep,
                                         const gm_update_request *req, gm_update_outcome *out,
                                         gm_error *err);

/* The record's config JSON for cfg (record.c). */
json_t *gm_engine_config_to_json(const gm_deploy_config *cfg);
#endif
