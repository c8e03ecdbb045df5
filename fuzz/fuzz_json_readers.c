/* Fuzzes the EFS, SSM and tagging response readers (aws/read.h) over one JSON
 * document: every reader runs on it, and each row must hold. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"

typedef gm_status (*reader)(const json_t *, gm_read_rows *, gm_error *);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)data, size, 0, &jerr);
    if (!j)
        return 0;
    static const reader readers[] = {gm_efs_read_file_systems,  gm_efs_read_created_fs,
                                     gm_efs_read_mount_targets, gm_ssm_read_parameters,
                                     gm_ssm_read_invalid,       gm_ssm_read_described,
                                     gm_tagging_read_resources};
    for (size_t r = 0; r < sizeof readers / sizeof *readers; r++) {
        gm_read_rows rows;
        gm_error err = {0};
        if (readers[r](j, &rows, &err) != GM_OK) {
            if (rows.n != 0 || !*err.message)
                abort();
            continue;
        }
        for (size_t i = 0; i < rows.n; i++)
            for (int f = 0; f < GM_READ_MAX_FIELDS; f++)
                if (strlen(gm_read_get(&rows, i, f)) > GM_READ_FIELD_MAX)
                    abort();
        gm_read_rows_release(&rows);
    }
    static const char *const token_keys[] = {"NextToken", "PaginationToken", "Marker"};
    for (size_t k = 0; k < 3; k++)
        free(gm_read_next_token(j, token_keys[k]));
    json_decref(j);
    return 0;
}
