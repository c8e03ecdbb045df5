/* Fuzzes the state reader: arbitrary bytes through json_loadb and
 * gm_deployment_from_json (validation and migration). Whatever it accepts
 * must survive a round trip unchanged: to_json -> from_json -> to_json. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/deployment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return 0;
    gm_error err = {0};
    gm_deployment *d = NULL;
    gm_status st = gm_deployment_from_json(j, &d, &err);
    json_decref(j);
    if (st != GM_OK) {
        if (d || err.status != st || !err.message[0] ||
            !memchr(err.message, '\0', sizeof err.message))
            abort();
        return 0;
    }
    if (!d || d->schema_version != GM_STATE_SCHEMA_VERSION || !d->name[0] ||
        json_array_size(d->events) > 1000)
        abort();
    for (size_t i = 0; i < d->n_nodes; i++) {
        if (!json_is_object(d->nodes[i].outputs) || !d->nodes[i].name[0])
            abort();
        if (gm_deployment_node(d, d->nodes[i].name) != &d->nodes[i])
            abort(); /* names are unique */
    }

    json_t *once = gm_deployment_to_json(d);
    gm_deployment *e = NULL;
    gm_error err2 = {0};
    if (!once || gm_deployment_from_json(once, &e, &err2) != GM_OK)
        abort();
    json_t *twice = gm_deployment_to_json(e);
    if (!twice || !json_equal(once, twice) || e->n_nodes != d->n_nodes)
        abort();
    char *text = json_dumps(twice, JSON_COMPACT);
    if (!text)
        abort();
    free(text);
    json_decref(once);
    json_decref(twice);
    gm_deployment_free(e);
    gm_deployment_free(d);
    return 0;
}
