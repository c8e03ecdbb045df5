/* Fuzzes the AWS shared config / credentials file parser and its lookups. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/ini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gm_error err = {0};
    gm_ini *doc = NULL;
    gm_status st = gm_ini_parse((const char *)data, size, "fuzz", &doc, &err);
    if (st != GM_OK) {
        if (doc || err.status != st || !memchr(err.message, '\0', sizeof err.message))
            abort();
        return 0;
    }
    size_t n = gm_ini_section_count(doc);
    for (size_t i = 0; i < n; i++) {
        const char *name = gm_ini_section_name(doc, i);
        if (!name || !gm_ini_has_section(doc, name))
            abort();
        gm_ini_get(doc, name, "aws_access_key_id");
        gm_ini_get(doc, name, "region");
    }
    if (gm_ini_section_name(doc, n) != NULL)
        abort();
    gm_ini_get(doc, "default", "aws_secret_access_key");
    gm_ini_get(doc, "profile default", "credential_process");
    gm_ini_free(doc);
    return 0;
}
