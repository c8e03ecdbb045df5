/* The five services of the stack.
 *
 * How a pin is chosen: the newest release of the image's stable line that
 * carries every fix of the vendor's published advisories (n8n: GitHub
 * security advisories of n8n-io/n8n; crawl4ai: unclecode/crawl4ai advisories;
 * Qdrant, Ollama, PostgreSQL: their release notes), never a moving tag
 * ("latest", "16-alpine"). PostgreSQL stays on its major version (16): a new
 * major needs pg_upgrade of the data on EFS, so it is a migration, not a pin.
 * The digest is the tag's multi-platform index digest (what `docker
 * buildx imagetools inspect REPO:TAG` prints as Digest, and Docker Hub shows
 * as "Index digest"): Compose pulls "REPO:TAG@DIGEST", so a re-pushed tag
 * cannot change what runs. A digest goes in only when a reliable source
 * confirms it; until then .digest stays NULL and the pin is by tag.
 *
 * How a pin is updated: change .image and .digest together here (one line
 * each), read the release notes between the two versions for renamed or
 * removed variables, run the tests (they re-validate the Compose file), and
 * note the change in docs/services.md. */
#include "stack/catalogue.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/crypto.h"
#include "stack/stack.h"

static const gm_service services[] = {
    {
        .name = "postgres",
        .image = "postgres:16.15-alpine",
        .digest = "sha256:cf78e76683b9ca8c5733cbbdce6c9262b45b6767934dd0a95e671f9a0fc20685",
        .port = 5432,
        .publish = false, /* internal only: n8n reaches it on the Compose network */
        /* On EFS: PostgreSQL supports NFS mounted "hard" (what the EFS mount
         * helper does); docs/services.md says why and what it costs. */
        .storage = GM_STORAGE_EFS,
        .data_dir = "/var/lib/postgresql/data",
        .env =
            {
                {"POSTGRES_USER", "n8n"},
                {"POSTGRES_DB", "n8n"},
                {"POSTGRES_PASSWORD",
                 "${GM_POSTGRES_PASSWORD:?postgres password missing from the env file}"},
                /* A subdirectory: the EFS root of the service may hold other entries. */
                {"PGDATA", "/var/lib/postgresql/data/pgdata"},
                {NULL, NULL},
            },
        /* -h 127.0.0.1: over TCP. The first start's init server listens on the
         * Unix socket only; without -h it would pass the check, n8n would start
         * and find the port closed. */
        .test = {"CMD", "pg_isready", "-h", "127.0.0.1", "-U", "n8n", "-d", "n8n", NULL},
        .interval = "10s",
        .timeout = "5s",
        .start_period = "120s", /* a first initdb on EFS takes a while */
        .retries = 6,
        .mem_reservation = "256m",
        .critical = true,
    },
    {
        .name = "n8n",
        .image = "n8nio/n8n:2.41.6",
        .digest = "sha256:87e0bab2c93192e8dd885ff7b0697c22a1bd97489568a8c67cc140fd7dbb342d",
        .port = 5678,
        .publish = true,
        .storage = GM_STORAGE_EFS,
        .data_dir = "/home/node/.n8n",
        .data_owner = "1000:1000", /* the image runs as node (1000) */
        /* N8N_HOST, N8N_PROTOCOL, N8N_EDITOR_BASE_URL, WEBHOOK_URL and
         * N8N_WEBHOOK_URL: the public address, derived at boot by gm-public-url. */
        .env_file = "/opt/geusemaker/n8n.env",
        .env =
            {
                {"DB_TYPE", "postgresdb"},
                {"DB_POSTGRESDB_HOST", "postgres"},
                {"DB_POSTGRESDB_PORT", "5432"},
                {"DB_POSTGRESDB_DATABASE", "n8n"},
                {"DB_POSTGRESDB_USER", "n8n"},
                {"DB_POSTGRESDB_PASSWORD",
                 "${GM_POSTGRES_PASSWORD:?postgres password missing from the env file}"},
                /* From SSM: the same key for the life of the data, on every instance. */
                {"N8N_ENCRYPTION_KEY",
                 "${GM_N8N_ENCRYPTION_KEY:?n8n encryption key missing from the env file}"},
                {"N8N_DIAGNOSTICS_ENABLED", "false"},
                {"N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS", "true"},
                {"N8N_BLOCK_ENV_ACCESS_IN_NODE", "true"},
                {"GENERIC_TIMEZONE", "UTC"},
                {NULL, NULL},
            },
        /* node is the one tool the image is sure to have; readiness = DB connected and migrated. */
        .test = {"CMD", "node", "-e",
                 "require('http').get('http://127.0.0.1:5678/healthz/readiness',"
                 "r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))",
                 NULL},
        .interval = "15s",
        .timeout = "5s",
        .start_period = "120s",
        .retries = 8,
        .mem_reservation = "512m",
        .depends_on = "postgres",
        .critical = true,
    },
    {
        .name = "qdrant",
        .image = "qdrant/qdrant:v1.19.2",
        .digest = "sha256:b7b0444c4c351c970b98e90a6f89c2ee4287c65b44e52b4cb503fa5b2aa927ad",
        .port = 6333,
        .publish = true,
        /* Qdrant does not work on NFS (its installation requirements): the
         * local volume, with snapshots to EFS (gm-qdrant-backup). */
        .storage = GM_STORAGE_LOCAL,
        .data_dir = "/qdrant/data",
        .env =
            {
                {"QDRANT__SERVICE__API_KEY",
                 "${GM_QDRANT_API_KEY:?qdrant api key missing from the env file}"},
                {"QDRANT__STORAGE__STORAGE_PATH", "/qdrant/data/storage"},
                {"QDRANT__STORAGE__SNAPSHOTS_PATH", "/qdrant/data/snapshots"},
                {"QDRANT__TELEMETRY_DISABLED", "true"},
                {NULL, NULL},
            },
        /* No curl/wget in the image: bash's /dev/tcp against /readyz (no key needed). */
        .test = {"CMD", "bash", "-c",
                 "exec 3<>/dev/tcp/127.0.0.1/6333 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3"
                 " && head -n 1 <&3 | grep -q ' 200'",
                 NULL},
        .interval = "15s",
        .timeout = "5s",
        .start_period = "30s",
        .retries = 5,
        .mem_reservation = "512m",
    },
    {
        .name = "ollama",
        .image = "ollama/ollama:0.40.2",
        .digest = "sha256:b86366bb528bbf7f1424435d165028497a5b69bf6ddb4fa5a87102e2b79f44fb",
        .port = 11434,
        .publish = true, /* 127.0.0.1 only: Ollama has no authentication; nginx asks a token */
        .storage = GM_STORAGE_EFS, /* models: large, re-downloadable, read-mostly */
        .data_dir = "/root/.ollama",
        .env =
            {
                {"OLLAMA_HOST", "0.0.0.0:11434"},
                {"OLLAMA_KEEP_ALIVE", "30m"},
                {NULL, NULL},
            },
        /* No curl/wget in the image: the ollama client itself. */
        .test = {"CMD", "ollama", "list", NULL},
        .interval = "20s",
        .timeout = "10s",
        .start_period = "60s",
        .retries = 5,
        .mem_reservation = "2g",
        .late = true,
        .gpu = true,
    },
    {
        .name = "crawl4ai",
        .image = "unclecode/crawl4ai:0.9.4",
        .digest = "sha256:9021b3cb5c6f12570bbcd5395638495e0a06969b3148e377b953d174af2ebc9b",
        .port = 11235,
        .publish = true, /* 127.0.0.1 only; nginx asks the token too */
        .env =
            {
                /* From 0.9.0 the server requires "Authorization: Bearer <token>" on
                 * every request but GET /health, and binds 0.0.0.0 only when a
                 * token is set (without one: 127.0.0.1 inside the container). */
                {"CRAWL4AI_API_TOKEN",
                 "${GM_CRAWL4AI_TOKEN:?crawl4ai token missing from the env file}"},
                {NULL, NULL},
            },
        /* Replaces the image's own check, which fails on hosts under 2 GB. */
        .test = {"CMD", "python3", "-c",
                 "import urllib.request; urllib.request.urlopen('http://127.0.0.1:11235/health', "
                 "timeout=5)",
                 NULL},
        .interval = "20s",
        .timeout = "10s",
        .start_period = "90s",
        .retries = 5,
        .mem_reservation = "1g",
        .shm_size = "1gb",
        .late = true,
    },
};

/* Image overrides (gm_stack_params) hold at most one per service. */
_Static_assert(sizeof services / sizeof *services <= GM_STACK_MAX_IMAGES,
               "GM_STACK_MAX_IMAGES is below the number of services");

const gm_service *gm_stack_services(size_t *out_n)
{
    *out_n = sizeof services / sizeof *services;
    return services;
}

const gm_service *gm_stack_service(const char *name)
{
    for (size_t i = 0; name && i < sizeof services / sizeof *services; i++)
        if (strcmp(services[i].name, name) == 0)
            return &services[i];
    return NULL;
}

size_t gm_stack_tier_env(const gm_service *s, gm_tier tier, bool alb_https,
                         gm_service_env out[GM_SERVICE_MAX_TIER_ENV])
{
    if (!s || strcmp(s->name, "n8n") != 0)
        return 0;
    bool alb = gm_tier_has_alb(tier);
    /* Express's "trust proxy": the load balancer and nginx, or nginx alone. */
    out[0] = (gm_service_env){"N8N_PROXY_HOPS", alb ? "2" : "1"};
    /* A Secure cookie is dropped by the browser over plain HTTP: login fails. */
    out[1] = (gm_service_env){"N8N_SECURE_COOKIE", alb && !alb_https ? "false" : "true"};
    return 2;
}

void gm_catalogue_version_of(const gm_service *svc, size_t n, const char *compose_version,
                             const char *efs_utils_tag, const char *bake_format,
                             char out[GM_CATALOGUE_VERSION_LEN])
{
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_SMALL);
    gm_emit e = {&b, GM_OK};
    for (size_t i = 0; i < n; i++)
        gm_emit_putf(&e, "image %s=%s@%s\n", svc[i].name, svc[i].image,
                     svc[i].digest ? svc[i].digest : "");
    gm_emit_putf(&e, "compose=%s\nefs-utils=%s\nbake=%s\n", compose_version, efs_utils_tag,
                 bake_format);
    char hex[GM_SHA256_HEX_LEN];
    /* The catalogue is a few hundred bytes: 64 KB always holds it. */
    gm_sha256_hex(b.data ? b.data : "", b.len, hex);
    snprintf(out, GM_CATALOGUE_VERSION_LEN, "c%.12s", hex);
    gm_buf_release(&b);
}

void gm_catalogue_version(char out[GM_CATALOGUE_VERSION_LEN])
{
    gm_catalogue_version_of(services, sizeof services / sizeof *services, GM_COMPOSE_PLUGIN_VERSION,
                            GM_EFS_UTILS_TAG, GM_BAKE_FORMAT, out);
}
