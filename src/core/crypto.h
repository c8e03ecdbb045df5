/* Hashing, HMAC and randomness on OpenSSL libcrypto. */
#ifndef GM_CORE_CRYPTO_H
#define GM_CORE_CRYPTO_H

#include <stddef.h>

#include "core/error.h"

#define GM_SHA256_LEN 32
#define GM_SHA256_HEX_LEN 65 /* 64 hex digits + NUL */

void gm_sha256(const void *data, size_t len, unsigned char out[GM_SHA256_LEN]);
void gm_sha256_hex(const void *data, size_t len, char out[GM_SHA256_HEX_LEN]);
void gm_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    unsigned char out[GM_SHA256_LEN]);

/* Cryptographically strong random bytes (RAND_bytes). */
GM_MUST_CHECK gm_status gm_random_bytes(void *out, size_t len, gm_error *err);

/* A random string of n characters from [A-Za-z0-9] (n+1 bytes in out). */
GM_MUST_CHECK gm_status gm_random_token(char *out, size_t n, gm_error *err);

/* A random string of n characters from [a-z0-9] (n+1 bytes in out): names
 * that must be lowercase (deployment ids). */
GM_MUST_CHECK gm_status gm_random_id(char *out, size_t n, gm_error *err);

/* A random double in [0, 1) for jitter. Not for secrets. */
double gm_random_unit(void);

#endif
