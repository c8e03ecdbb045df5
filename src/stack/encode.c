/* UserData encoding: gzip when the script is over the EC2 limit, then base64. */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "stack/stack.h"

/* gzip (RFC 1952) of in into a malloc'd buffer. zlib writes a fixed header
 * (mtime 0), so the output is deterministic. */
static GM_MUST_CHECK gm_status gzip_bytes(const void *in, size_t len, unsigned char **out,
                                          size_t *out_len, gm_error *err)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: gzip wrapper instead of zlib's. */
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return gm_error_set(err, GM_ERR_INTERNAL, "cannot initialise gzip compression");
    uLong bound = deflateBound(&z, (uLong)len);
    unsigned char *buf = malloc(bound);
    if (!buf) {
        deflateEnd(&z);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory compressing the UserData");
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    size_t produced = (size_t)z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(buf);
        return gm_error_set(err, GM_ERR_INTERNAL, "gzip compression of the UserData failed (%d)",
                            rc);
    }
    *out = buf;
    *out_len = produced;
    return GM_OK;
}

gm_status gm_userdata_encode(const gm_buf *script, char **out_base64, size_t *out_size,
                             bool *out_gzipped, gm_error *err)
{
    if (!script || !out_base64)
        return gm_error_set(err, GM_ERR_INVALID, "missing UserData script");
    if (script->len > (size_t)INT32_MAX / 2)
        return gm_error_set(err, GM_ERR_LIMIT,
                            "UserData script of %zu bytes is far over the "
                            "EC2 limit of %u bytes",
                            script->len, GM_LIMIT_USERDATA_RAW);
    const unsigned char *payload = (const unsigned char *)gm_buf_cstr(script);
    size_t size = script->len;
    unsigned char *gz = NULL;
    bool gzipped = false;
    if (size > GM_LIMIT_USERDATA_RAW) {
        size_t gz_len = 0;
        gm_status st = gzip_bytes(payload, size, &gz, &gz_len, err);
        if (st != GM_OK)
            return st;
        if (gz_len > GM_LIMIT_USERDATA_RAW) {
            free(gz);
            return gm_error_set(err, GM_ERR_LIMIT,
                                "UserData too large: the script is %zu bytes and still %zu bytes "
                                "gzip-compressed, over the EC2 limit of %u bytes",
                                size, gz_len, GM_LIMIT_USERDATA_RAW);
        }
        payload = gz;
        size = gz_len;
        gzipped = true;
    }
    size_t b64_len = 4 * ((size + 2) / 3);
    char *b64 = malloc(b64_len + 1);
    if (!b64) {
        free(gz);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory encoding the UserData");
    }
    int n = EVP_EncodeBlock((unsigned char *)b64, payload, (int)size);
    free(gz);
    if (n < 0 || (size_t)n != b64_len) {
        free(b64);
        return gm_error_set(err, GM_ERR_INTERNAL, "base64 encoding of the UserData failed");
    }
    b64[n] = '\0';
    *out_base64 = b64;
    if (out_size)
        *out_size = size;
    if (out_gzipped)
        *out_gzipped = gzipped;
    return GM_OK;
}
