/* The stack's secrets: generated locally with the OpenSSL RNG, stored by the
 * deploy engine as SSM SecureString parameters under the deployment's prefix
 * ("/geusemaker/NAME/postgres_password", ...), read at boot by the instance
 * role. They never appear in UserData, the Compose file, local state, logs or
 * command lines.
 *
 * Contract for the deploy engine: PutParameter every secret (Type
 * SecureString, Overwrite false) before RunInstances; when a parameter already
 * exists (a redeploy, a replacement instance) keep the stored value: above all
 * n8n_encryption_key must never change for the life of the n8n data on EFS. */
#ifndef GM_STACK_SECRETS_H
#define GM_STACK_SECRETS_H

#include <stddef.h>

#include "core/error.h"

typedef enum gm_secret_id {
    GM_SECRET_POSTGRES_PASSWORD,
    GM_SECRET_N8N_ENCRYPTION_KEY,
    GM_SECRET_QDRANT_API_KEY,
    GM_SECRET_CRAWL4AI_TOKEN,
    GM_SECRET_OLLAMA_TOKEN,
    GM_SECRET_COUNT
} gm_secret_id;

typedef struct gm_secret_def {
    gm_secret_id id;
    const char *key;         /* SSM parameter leaf: "postgres_password" */
    const char *env;         /* env-file variable on the instance: "GM_POSTGRES_PASSWORD" */
    size_t length;           /* characters of [A-Za-z0-9] */
    const char *description; /* for the SSM parameter's Description */
} gm_secret_def;

#define GM_SECRET_VALUE_MAX 64

/* The leaf of the String parameter stored beside the secrets that holds the
 * deployment's record summary (name, id, tier, region, config; never a
 * secret): what `adopt` rebuilds a lost local record from. */
#define GM_CONFIG_PARAMETER "config"

/* Holds generated values; embed it, call gm_secret_values_release when done
 * (it wipes the memory). */
typedef struct gm_secret_values {
    char value[GM_SECRET_COUNT][GM_SECRET_VALUE_MAX + 1];
} gm_secret_values;

/* The table (GM_SECRET_COUNT entries, indexed by gm_secret_id). */
const gm_secret_def *gm_secrets_table(void);
const gm_secret_def *gm_secret_def_get(gm_secret_id id);

/* Fills every value from the OpenSSL RNG (gm_random_token). On failure the
 * values are wiped. */
GM_MUST_CHECK gm_status gm_secrets_generate(gm_secret_values *out, gm_error *err);

/* Wipes every value (OPENSSL_cleanse). Safe on NULL. */
void gm_secret_values_release(gm_secret_values *v);

/* "<ssm_prefix><key>", e.g. "/geusemaker/demo/postgres_password". ssm_prefix
 * must end with '/'. malloc'd; NULL on a bad id or prefix, or no memory. */
char *gm_secret_parameter_name(const char *ssm_prefix, gm_secret_id id);

#endif
