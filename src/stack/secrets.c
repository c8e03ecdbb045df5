#include "stack/secrets.h"

#include <openssl/crypto.h>
#include <string.h>

#include "core/crypto.h"
#include "core/str.h"

static const gm_secret_def table[GM_SECRET_COUNT] = {
    {GM_SECRET_POSTGRES_PASSWORD, "postgres_password", "GM_POSTGRES_PASSWORD", 32,
     "GeuseMaker: PostgreSQL password of the n8n database"},
    {GM_SECRET_N8N_ENCRYPTION_KEY, "n8n_encryption_key", "GM_N8N_ENCRYPTION_KEY", 48,
     "GeuseMaker: n8n credentials encryption key (never change it while the data lives)"},
    {GM_SECRET_QDRANT_API_KEY, "qdrant_api_key", "GM_QDRANT_API_KEY", 40,
     "GeuseMaker: Qdrant API key (header api-key)"},
    {GM_SECRET_CRAWL4AI_TOKEN, "crawl4ai_token", "GM_CRAWL4AI_TOKEN", 40,
     "GeuseMaker: Crawl4AI bearer token (checked by nginx)"},
    {GM_SECRET_OLLAMA_TOKEN, "ollama_token", "GM_OLLAMA_TOKEN", 40,
     "GeuseMaker: Ollama bearer token (checked by nginx)"},
};

const gm_secret_def *gm_secrets_table(void)
{
    return table;
}

const gm_secret_def *gm_secret_def_get(gm_secret_id id)
{
    if ((int)id < 0 || id >= GM_SECRET_COUNT)
        return NULL;
    return &table[id];
}

gm_status gm_secrets_generate(gm_secret_values *out, gm_error *err)
{
    for (int i = 0; i < GM_SECRET_COUNT; i++) {
        gm_status st = gm_random_token(out->value[i], table[i].length, err);
        if (st != GM_OK) {
            gm_secret_values_release(out);
            gm_error_prefix(err, "cannot generate secret '%s'", table[i].key);
            return st;
        }
    }
    return GM_OK;
}

void gm_secret_values_release(gm_secret_values *v)
{
    if (v)
        OPENSSL_cleanse(v, sizeof *v);
}

char *gm_secret_parameter_name(const char *ssm_prefix, gm_secret_id id)
{
    const gm_secret_def *d = gm_secret_def_get(id);
    if (!d || !ssm_prefix || !gm_str_startswith(ssm_prefix, "/") ||
        !gm_str_endswith(ssm_prefix, "/"))
        return NULL;
    return gm_strfmt("%s%s", ssm_prefix, d->key);
}
