/* The stack catalogue: one table describing the five services. The Compose
 * generator, the UserData (which images start first, which data directories
 * exist on EFS) and the health script are all derived from it. */
#ifndef GM_STACK_CATALOGUE_H
#define GM_STACK_CATALOGUE_H

#include <stdbool.h>
#include <stddef.h>

#define GM_SERVICE_MAX_ENV 16
#define GM_SERVICE_MAX_TEST 8

typedef struct gm_service_env {
    const char *name;
    const char *value; /* literal, or a Compose interpolation "${GM_...:?...}" */
} gm_service_env;

typedef struct gm_service {
    const char *name;     /* Compose service name: "postgres", "n8n", ... */
    const char *image;    /* pinned: repository:version */
    int port;             /* container port; 0 = none */
    bool publish;         /* published on 127.0.0.1:port (for nginx); never 0.0.0.0 */
    const char *data_dir; /* container path of its data, bind-mounted from
                             /mnt/efs/<name>; NULL = stateless */
    const char
        *data_owner; /* "uid:gid" the data directory must belong to; NULL = image handles it */
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

/* Pinned versions of tools the UserData installs. */
#define GM_COMPOSE_PLUGIN_VERSION "v2.32.4"
#define GM_EFS_UTILS_TAG "v1.36.0"

#endif
