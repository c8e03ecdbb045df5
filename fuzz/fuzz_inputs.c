/* Fuzzes the parsers of user input that are checked before any AWS call:
 * CIDRs, regions (and their suggestions), deployment names and ids, USD
 * amounts. The input is one NUL-free string. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/partition.h"
#include "cost/estimate.h"
#include "engine/engine.h"
#include "state/deployment.h"

static void check_error(gm_status st, const gm_error *err)
{
    if (st != GM_OK && (err->status != st || !memchr(err->message, '\0', sizeof err->message)))
        abort();
}

static void fuzz_cidr(const char *s)
{
    gm_error err = {0};
    int prefix = -1;
    gm_status st = gm_engine_parse_cidr(s, &prefix, &err);
    check_error(st, &err);
    if (st == GM_OK && (prefix < 0 || prefix > 32 || !strchr(s, '/')))
        abort();
}

static void fuzz_region(const char *s)
{
    gm_error err = {0};
    gm_status st = gm_region_check(s, "--region", &err);
    check_error(st, &err);
    if ((st == GM_OK) != (gm_partition_of(s) != NULL))
        abort();
    const char *near[3];
    size_t n = gm_region_suggest(s, near, 3);
    for (size_t i = 0; i < n && i < 3; i++)
        if (!gm_partition_of(near[i]))
            abort();
}

static void fuzz_names(const char *s)
{
    gm_error err = {0};
    check_error(gm_engine_check_name(s, &err), &err);
    if (gm_deployment_id_valid(s) && strlen(s) != GM_DEPLOYMENT_ID_LEN)
        abort();
    double usd = 0;
    gm_error uerr = {0};
    gm_status st = gm_cost_parse_usd(s, "--budget", &usd, &uerr);
    check_error(st, &uerr);
    if (st == GM_OK && !(usd > 0 && usd < 10000000))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char s[257];
    memcpy(s, data, size);
    s[size] = '\0';
    if (strlen(s) != size)
        return 0; /* command-line arguments hold no NUL */
    fuzz_cidr(s);
    fuzz_region(s);
    fuzz_names(s);
    return 0;
}
