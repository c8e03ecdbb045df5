/* Fuzzes the health document parser (the boot object too), its verdict and
 * JSON view, and the staleness rule. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "health/health.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gm_health_doc d;
    gm_error err = {0};
    if (gm_health_parse((const char *)data, size, &d, &err) != GM_OK)
        return 0;
    /* Invariants of a parsed document. */
    if (d.n_services > GM_HEALTH_MAX_SERVICES || d.verdict < d.overall ||
        d.verdict == GM_HEALTH_UNKNOWN)
        abort();
    /* The boot object: bounded, and either whole or left out with a reason. */
    const gm_health_boot *b = &d.boot;
    if (b->n_steps > GM_HEALTH_MAX_BOOT_STEPS || (b->present && *b->error) ||
        (b->present && b->started_epoch <= 0) || (!b->present && b->n_steps))
        abort();
    for (size_t i = 0; i < b->n_steps; i++)
        if (!b->steps[i].name[0] || b->steps[i].seconds < 0 ||
            b->steps[i].seconds > GM_HEALTH_MAX_STEP_S)
            abort();
    if (gm_health_boot_after(b, b->finished_epoch) < -1)
        abort();
    (void)gm_health_doc_ready(&d);
    json_t *j = gm_health_doc_to_json(&d);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    free(s);
    json_decref(j);
    gm_health_apply_age(&d, d.checked_at_epoch + GM_HEALTH_STALE_S + 1, GM_HEALTH_STALE_S);
    if (!d.stale && d.checked_at_epoch > 0)
        abort();
    return 0;
}
