/* Fuzzes the credential_process output parser and the IMDS credentials
 * document parser (both JSON into gm_credentials). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/credentials.h"

static void check(gm_status st, const gm_credentials *c, const gm_error *err)
{
    if (st == GM_OK) {
        if (!c->access_key_id || !*c->access_key_id || !c->secret_access_key ||
            !*c->secret_access_key || !c->source)
            abort();
    } else if (c->access_key_id || c->secret_access_key || c->session_token || err->status != st) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gm_credentials c;
    gm_error err = {0};
    gm_status st = gm_credential_process_parse((const char *)data, size, &c, &err);
    check(st, &c, &err);
    gm_credentials_release(&c);

    gm_error_clear(&err);
    st = gm_imds_credentials_parse((const char *)data, size, &c, &err);
    check(st, &c, &err);
    gm_credentials_release(&c);
    return 0;
}
