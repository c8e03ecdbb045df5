/* Fuzzes the readers of geusemaker logs (engine/logs.h): SendCommand's and
 * GetCommandInvocation's answers, the log scripts' output carried in
 * StandardOutputContent, and the log's lines as JSON. The input is tried as a
 * JSON answer and, as it is, as a script's output. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/logs.h"

/* A parsed page keeps its promises: a valid folder, bounded sizes, a cursor
 * within its limits, a head's data exactly its first page. */
static void check_page(const char *text, size_t len)
{
    gm_logs_page p;
    gm_error err = {0};
    if (gm_logs_parse_page(text, len, &p, &err) != GM_OK) {
        if (p.data || p.len || !*err.message)
            abort();
        return;
    }
    if (p.len > GM_LOGS_PAGE_BYTES || (p.len && !p.data))
        abort();
    if (p.is_head) {
        int64_t want = p.size < GM_LOGS_PAGE_BYTES ? p.size : GM_LOGS_PAGE_BYTES;
        if (!gm_logs_dir_valid(p.dir) || p.size < 0 || p.full < 0 || (int64_t)p.len != want ||
            p.cursor.n_files < 0 || p.cursor.n_files > GM_LOGS_MAX_FILES)
            abort();
        gm_buf script;
        gm_buf_init(&script, GM_LIMIT_SMALL);
        if (gm_logs_render_page(p.dir, p.size / 2, true, &script, NULL) != GM_OK ||
            gm_logs_render_cleanup(p.dir, &script, NULL) != GM_OK)
            abort();
        gm_buf_release(&script);
    } else if (p.gone && (p.len || p.is_head)) {
        abort();
    } else if (!p.gone && p.offset < 0) {
        abort();
    }
    json_t *lines = gm_logs_lines_json((const char *)p.data, p.len);
    char *dump = lines ? json_dumps(lines, JSON_COMPACT) : NULL;
    if (lines && !dump)
        abort(); /* every line is valid UTF-8 once cleaned */
    free(dump);
    json_decref(lines);
    gm_logs_page_release(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_page((const char *)data, size);
    json_t *lines = gm_logs_lines_json((const char *)data, size);
    json_decref(lines);

    json_error_t jerr;
    json_t *j = json_loadb((const char *)data, size, JSON_ALLOW_NUL, &jerr);
    if (!j)
        return 0;
    char id[40];
    gm_error err = {0};
    if (gm_ssm_read_sent(j, id, &err) == GM_OK && strlen(id) != 36)
        abort();
    gm_ssm_invocation inv;
    memset(&err, 0, sizeof err);
    if (gm_ssm_read_invocation(j, &inv, &err) == GM_OK) {
        if (!inv.out || !inv.err_text || inv.out_len > 4 * GM_SSM_OUTPUT_MAX ||
            inv.status > GM_SSM_CMD_CANCELLING ||
            strlen(gm_ssm_command_status_name(inv.status)) < 6)
            abort();
        check_page(inv.out, inv.out_len);
        gm_ssm_invocation_release(&inv);
    } else if (inv.out || inv.err_text || !*err.message) {
        abort();
    }
    json_decref(j);
    return 0;
}
