#include "core/crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdint.h>

#include "core/str.h"

void gm_sha256(const void *data, size_t len, unsigned char out[GM_SHA256_LEN])
{
    unsigned int n = GM_SHA256_LEN;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

void gm_sha256_hex(const void *data, size_t len, char out[GM_SHA256_HEX_LEN])
{
    unsigned char md[GM_SHA256_LEN];
    gm_sha256(data, len, md);
    gm_hex_encode(md, sizeof md, out);
}

void gm_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    unsigned char out[GM_SHA256_LEN])
{
    unsigned int n = GM_SHA256_LEN;
    HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n);
}

gm_status gm_random_bytes(void *out, size_t len, gm_error *err)
{
    if (RAND_bytes(out, (int)len) != 1)
        return gm_error_set(err, GM_ERR_INTERNAL, "random number generator failed");
    return GM_OK;
}

/* n characters drawn uniformly from alphabet (of len characters, len <= 256). */
static GM_MUST_CHECK gm_status random_from(const char *alphabet, unsigned len, char *out, size_t n,
                                           gm_error *err)
{
    unsigned limit = 256 - 256 % len; /* reject the tail to keep the distribution uniform */
    size_t i = 0;
    while (i < n) {
        unsigned char raw[64];
        gm_status st = gm_random_bytes(raw, sizeof raw, err);
        if (st != GM_OK)
            return st;
        for (size_t j = 0; j < sizeof raw && i < n; j++)
            if (raw[j] < limit)
                out[i++] = alphabet[raw[j] % len];
    }
    out[n] = '\0';
    return GM_OK;
}

gm_status gm_random_token(char *out, size_t n, gm_error *err)
{
    return random_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 62, out, n,
                       err);
}

gm_status gm_random_id(char *out, size_t n, gm_error *err)
{
    return random_from("abcdefghijklmnopqrstuvwxyz0123456789", 36, out, n, err);
}

double gm_random_unit(void)
{
    uint64_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        return 0.5;
    return (double)(r >> 11) / (double)(UINT64_C(1) << 53);
}
