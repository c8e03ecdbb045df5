/* The five services of the stack. Versions are pinned; upgrading one is a
 * one-line change here (and the tests re-validate the Compose file). */
#include "stack/catalogue.h"

#include <string.h>

static const gm_service services[] = {
    {
        .name = "postgres",
        .image = "postgres:16.9-alpine",
        .port = 5432,
        .publish = false, /* internal only: n8n reaches it on the Compose network */
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
        .test = {"CMD", "pg_isready", "-U", "n8n", "-d", "n8n", NULL},
        .interval = "10s",
        .timeout = "5s",
        .start_period = "120s", /* a first initdb on EFS takes a while */
        .retries = 6,
        .mem_reservation = "256m",
        .critical = true,
    },
    {
        .name = "n8n",
        .image = "n8nio/n8n:1.97.1",
        .port = 5678,
        .publish = true,
        .data_dir = "/home/node/.n8n",
        .data_owner = "1000:1000", /* the image runs as node (1000) */
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
                {"N8N_PROTOCOL", "https"},
                {"N8N_PROXY_HOPS", "1"},
                {"N8N_DIAGNOSTICS_ENABLED", "false"},
                {"N8N_RUNNERS_ENABLED", "true"},
                {"N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS", "true"},
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
        .image = "qdrant/qdrant:v1.15.1",
        .port = 6333,
        .publish = true,
        .data_dir = "/qdrant/storage",
        .env =
            {
                {"QDRANT__SERVICE__API_KEY",
                 "${GM_QDRANT_API_KEY:?qdrant api key missing from the env file}"},
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
        .image = "ollama/ollama:0.9.6",
        .port = 11434,
        .publish = true, /* 127.0.0.1 only: Ollama has no authentication; nginx asks a token */
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
        .image = "unclecode/crawl4ai:0.7.6",
        .port = 11235,
        .publish = true, /* 127.0.0.1 only; nginx asks the token */
        .env =
            {
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
