/* Shared by the Query (XML) reader fuzz targets: every reader of a service
 * runs over one parsed document, and each row it returns must hold. */
#ifndef GM_FUZZ_XML_COMMON_H
#define GM_FUZZ_XML_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "aws/xml.h"

static void check_rows(const gm_read_spec *spec, const gm_read_rows *rows)
{
    if (rows->n > GM_READ_MAX_ROWS)
        abort();
    for (size_t i = 0; i < rows->n; i++)
        for (int f = 0; f < GM_READ_MAX_FIELDS && spec->fields[f]; f++) {
            const char *v = gm_read_get(rows, i, f);
            if (!v || strlen(v) > GM_READ_FIELD_MAX)
                abort();
        }
    if (*gm_read_get(rows, rows->n, 0)) /* past the end reads as "" */
        abort();
}

static int fuzz_specs(const uint8_t *data, size_t size, const gm_read_spec *const *specs)
{
    xmlDocPtr doc = NULL;
    gm_error err = {0};
    if (gm_xml_parse((const char *)data, size, &doc, &err) != GM_OK)
        return 0;
    for (size_t s = 0; specs[s]; s++) {
        gm_read_rows rows;
        gm_error rerr = {0};
        if (gm_read_xml(doc, specs[s], &rows, &rerr) == GM_OK)
            check_rows(specs[s], &rows);
        else if (rows.n != 0 || !*rerr.message)
            abort(); /* a failed read leaves no rows and says why */
        gm_read_rows_release(&rows);
    }
    xmlFreeDoc(doc);
    return 0;
}

#endif
