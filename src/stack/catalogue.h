/* The stack catalogue: one table describing the five services. The Compose
 * generator, the UserData (which images start first, which data directories
 * exist on EFS or on the local data volume) and the health script are all
 * derived from it. How a pin is chosen and updated: catalogue.c and
 * docs/services.md. */
#ifndef GM_STACK_CATALOGUE_H
#define GM_STACK_CATALOGUE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/tier.h"

#define GM_SERVICE_MAX_ENV 16
#define GM_SERVICE_MAX_TEST 10
#define GM_SERVICE_MAX_TIER_ENV 4

typedef struct gm_service_env {
    const char *name;
    const char *value; /* literal, or a Compose interpolation "${GM_...:?...}" */
} gm_service_env;

/* Where a service keeps its data. */
typedef enum gm_storage {
    GM_STORAGE_NONE,  /* stateless */
    GM_STORAGE_EFS,   /* GM_STACK_EFS_MOUNT/<name>: survives the instance as it is */
    GM_STORAGE_LOCAL, /* GM_STACK_DATA_MOUNT/<name> on the encrypted EBS data volume, for
                         software its vendor says must not run on NFS; copied to EFS by
                         snapshots and restored on a new volume (see stack.h) */
} gm_storage;

typedef struct gm_service {
    const char *name;   /* Compose service name: "postgres", "n8n", ... */
    const char *image;  /* pinned: repository:release (never a moving tag) */
    const char *digest; /* "sha256:<64 hex>": the tag's multi-platform index digest, or
                           NULL while no reliable source confirms it (pinned by tag only) */
    int port;           /* container port; 0 = none */
    bool publish;       /* published on 127.0.0.1:port (for nginx); never 0.0.0.0 */
    gm_storage storage;
    const char *data_dir; /* container path of its data (bind-mounted from the storage's
                             <mount>/<name>); NULL = stateless */
    const char
        *data_owner;      /* "uid:gid" the data directory must belong to; NULL = image handles it */
    const char *env_file; /* a host file of variables the UserData derives at boot (no
                             secret); NULL = none */
    gm_service_env env[GM_SERVICE_MAX_ENV]; /* NULL-terminated */
    /* Container healthcheck: exec form, NULL-terminated; only tools the image
     * really has (no curl/wget in Ollama or Qdrant). */
    const char *test[GM_SERVICE_MAX_TEST];
    const char *interval, *timeout, *start_period;
    int retries;
    const char *mem_reservation; /* memory hint */
    const char *shm_size;        /* NULL = default */
    const char *depends_on;      /* a service that must be healthy first; NULL = none */
    bool critical;               /* the stack is unusable without it (overall "unhealthy") */
    bool late;                   /* large image: pulled and started in the background */
    bool gpu;                    /* gets the NVIDIA device reservation on the gpu tier */
} gm_service;

/* The table, in start order. */
const gm_service *gm_stack_services(size_t *out_n);
/* The service of that name, or NULL. */
const gm_service *gm_stack_service(const char *name);

/* The variables of a service that depend on the deployment, after its
 * catalogue env: for n8n the number of proxies in front of it (nginx, plus
 * the load balancer in tier automation) and whether its session cookie is
 * Secure (not when the load balancer serves plain HTTP: alb_https false in
 * tier automation). Fills out (static strings) and returns the count. */
size_t gm_stack_tier_env(const gm_service *s, gm_tier tier, bool alb_https,
                         gm_service_env out[GM_SERVICE_MAX_TIER_ENV]);

/* Pinned versions of tools the UserData installs. */
#define GM_COMPOSE_PLUGIN_VERSION "v2.32.4"
#define GM_EFS_UTILS_TAG "v1.36.0"
/* What a baked image holds besides the pins: bump it when the bake's script
 * installs something else (userdata_bake.c), so older images stop matching. */
#define GM_BAKE_FORMAT "1"

/* The catalogue version: "c" + the first 12 hex digits of SHA-256 over every
 * pinned image reference (repository:tag@digest), the Compose plugin
 * version, the efs-utils tag and GM_BAKE_FORMAT. Any change of what a baked
 * image holds changes it; a baked image is used only by the geusemaker of
 * its version. */
#define GM_CATALOGUE_VERSION_LEN 14 /* with the NUL */
void gm_catalogue_version(char out[GM_CATALOGUE_VERSION_LEN]);
/* The same over the given inputs (tests). */
void gm_catalogue_version_of(const gm_service *svc, size_t n, const char *compose_version,
                             const char *efs_utils_tag, const char *bake_format,
                             char out[GM_CATALOGUE_VERSION_LEN]);

#endif
