/* geusemaker logs: the readers of SendCommand's and GetCommandInvocation's
 * answers and of the log scripts' output, and the log's lines as JSON (see
 * logs.h). Pure: no AWS call, no I/O; unit-tested and fuzzed. */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "engine/logs.h"

#define SSM_ERROR_MAX 8000 /* GetCommandInvocation's StandardErrorContent */

/* ---- reading the answers ----------------------------------------------------------- */

static const char *const status_names[] = {
    [GM_SSM_CMD_PENDING] = "Pending",     [GM_SSM_CMD_IN_PROGRESS] = "InProgress",
    [GM_SSM_CMD_DELAYED] = "Delayed",     [GM_SSM_CMD_SUCCESS] = "Success",
    [GM_SSM_CMD_CANCELLED] = "Cancelled", [GM_SSM_CMD_TIMED_OUT] = "TimedOut",
    [GM_SSM_CMD_FAILED] = "Failed",       [GM_SSM_CMD_CANCELLING] = "Cancelling",
};

const char *gm_ssm_command_status_name(gm_ssm_command_status s)
{
    return s >= 0 && s <= GM_SSM_CMD_CANCELLING ? status_names[s] : "?";
}

bool gm_ssm_command_final(gm_ssm_command_status s)
{
    return s == GM_SSM_CMD_SUCCESS || s == GM_SSM_CMD_CANCELLED || s == GM_SSM_CMD_TIMED_OUT ||
           s == GM_SSM_CMD_FAILED;
}

/* A string member of at most max_chars characters (absent: ""), copied. */
static GM_MUST_CHECK gm_status take_text(const json_t *o, const char *key, size_t max_chars,
                                         char **out, size_t *out_len, gm_error *err)
{
    const json_t *v = json_object_get(o, key);
    if (v && !json_is_string(v))
        return gm_error_set(err, GM_ERR_PARSE, "GetCommandInvocation: %s is not a string", key);
    const char *s = v ? json_string_value(v) : "";
    size_t len = v ? json_string_length(v) : 0, chars = 0;
    for (size_t i = 0; i < len; i++)
        chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    if (chars > max_chars)
        return gm_error_set(err, GM_ERR_PARSE,
                            "GetCommandInvocation: %s holds %zu characters, more than the %zu "
                            "the API returns",
                            key, chars, max_chars);
    *out = malloc(len + 1);
    if (!*out)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    memcpy(*out, s, len);
    (*out)[len] = '\0';
    *out_len = len;
    return GM_OK;
}

gm_status gm_ssm_read_invocation(const json_t *answer, gm_ssm_invocation *out, gm_error *err)
{
    memset(out, 0, sizeof *out);
    out->response_code = -1;
    if (!json_is_object(answer))
        return gm_error_set(err, GM_ERR_PARSE, "GetCommandInvocation: the answer is not an object");
    const char *status = json_string_value(json_object_get(answer, "Status"));
    int found = -1;
    for (int i = 0; status && i <= GM_SSM_CMD_CANCELLING; i++)
        if (strcmp(status, status_names[i]) == 0)
            found = i;
    if (found < 0)
        return gm_error_set(err, GM_ERR_PARSE, "GetCommandInvocation: unknown Status '%.40s'",
                            status ? status : "(none)");
    out->status = (gm_ssm_command_status)found;
    const json_t *details = json_object_get(answer, "StatusDetails");
    if (details && !json_is_string(details))
        return gm_error_set(err, GM_ERR_PARSE,
                            "GetCommandInvocation: StatusDetails is not a string");
    snprintf(out->status_details, sizeof out->status_details, "%s",
             details ? json_string_value(details) : "");
    const json_t *code = json_object_get(answer, "ResponseCode");
    if (code && (!json_is_integer(code) || json_integer_value(code) < INT32_MIN ||
                 json_integer_value(code) > INT32_MAX))
        return gm_error_set(err, GM_ERR_PARSE, "GetCommandInvocation: malformed ResponseCode");
    if (code)
        out->response_code = (int64_t)json_integer_value(code);
    gm_status st = take_text(answer, "StandardOutputContent", GM_SSM_OUTPUT_MAX, &out->out,
                             &out->out_len, err);
    if (st == GM_OK)
        st = take_text(answer, "StandardErrorContent", SSM_ERROR_MAX, &out->err_text, &out->err_len,
                       err);
    if (st != GM_OK)
        gm_ssm_invocation_release(out);
    return st;
}

void gm_ssm_invocation_release(gm_ssm_invocation *inv)
{
    if (!inv)
        return;
    free(inv->out);
    free(inv->err_text);
    inv->out = inv->err_text = NULL;
    inv->out_len = inv->err_len = 0;
}

gm_status gm_ssm_read_sent(const json_t *answer, char out[40], gm_error *err)
{
    out[0] = '\0';
    const char *id =
        json_string_value(json_object_get(json_object_get(answer, "Command"), "CommandId"));
    size_t n = id ? strlen(id) : 0;
    bool ok = n == 36;
    for (size_t i = 0; ok && i < n; i++)
        ok = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f') ||
             (id[i] >= 'A' && id[i] <= 'F') || id[i] == '-';
    if (!ok)
        return gm_error_set(err, GM_ERR_PARSE,
                            "SendCommand: no valid Command.CommandId in the "
                            "answer");
    memcpy(out, id, n + 1);
    return GM_OK;
}

/* ---- the scripts' answers ---------------------------------------------------------- */

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Canonical base64 (no whitespace, '=' only as the last one or two
 * characters) into a new buffer of at most GM_LOGS_PAGE_BYTES bytes. */
static GM_MUST_CHECK gm_status b64_decode(const char *s, size_t n, unsigned char **out,
                                          size_t *out_len, gm_error *err)
{
    size_t pad = n >= 1 && s[n - 1] == '=' ? (n >= 2 && s[n - 2] == '=' ? 2 : 1) : 0;
    if (n % 4 != 0 || n / 4 * 3 - pad > GM_LOGS_PAGE_BYTES)
        return gm_error_set(err, GM_ERR_PARSE,
                            "the log page is not canonical base64 of at most "
                            "%d bytes (%zu characters)",
                            GM_LOGS_PAGE_BYTES, n);
    for (size_t i = 0; i < n - pad; i++)
        if (!b64_char(s[i]))
            return gm_error_set(err, GM_ERR_PARSE,
                                "the log page holds a character that is not "
                                "base64 at %zu",
                                i);
    *out = malloc(n / 4 * 3 + 1);
    if (!*out)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    int got = n ? EVP_DecodeBlock(*out, (const unsigned char *)s, (int)n) : 0;
    if (got < 0 || (size_t)got != n / 4 * 3) {
        free(*out);
        *out = NULL;
        return gm_error_set(err, GM_ERR_PARSE, "the log page is not valid base64");
    }
    *out_len = (size_t)got - pad;
    return GM_OK;
}

static bool number(const char *s, int64_t *out)
{
    return gm_str_to_int64(s, 0, INT64_MAX / 4, out);
}

/* "I:S,I:S" (or "") into the cursor's files. */
static bool parse_files(char *s, gm_logs_cursor *c)
{
    c->n_files = 0;
    char *save = NULL;
    if (!*s)
        return true;
    if (s[strlen(s) - 1] == ',')
        return false;
    for (char *f = strtok_r(s, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(f, ':');
        if (!colon || c->n_files >= GM_LOGS_MAX_FILES)
            return false;
        *colon = '\0';
        if (!number(f, &c->ino[c->n_files]) || !number(colon + 1, &c->size[c->n_files]))
            return false;
        c->n_files++;
    }
    return true;
}

/* One "key=value" of the collect script's header. */
static bool head_field(gm_logs_page *p, char *tok, unsigned *seen)
{
    char *eq = strchr(tok, '=');
    if (!eq)
        return false;
    *eq = '\0';
    const char *v = eq + 1;
    static const char *const keys[] = {"dir", "enc", "size", "full", "now", "files"};
    int k = -1;
    for (int i = 0; i < 6; i++)
        if (strcmp(tok, keys[i]) == 0)
            k = i;
    if (k < 0 || (*seen & (1u << k)))
        return false;
    *seen |= 1u << k;
    switch (k) {
    case 0: snprintf(p->dir, sizeof p->dir, "%s", v); return gm_logs_dir_valid(v);
    case 1: p->gzip = strcmp(v, "gzip") == 0; return p->gzip || strcmp(v, "raw") == 0;
    case 2: return number(v, &p->size);
    case 3: return number(v, &p->full);
    case 4: return number(v, &p->cursor.now);
    default: return parse_files(eq + 1, &p->cursor);
    }
}

/* The header line's words after "GMLOGS 1". */
static GM_MUST_CHECK gm_status parse_header(char *line, gm_logs_page *p, gm_error *err)
{
    char *save = NULL;
    char *w0 = strtok_r(line, " ", &save), *w1 = strtok_r(NULL, " ", &save);
    char *w = strtok_r(NULL, " ", &save);
    if (!w0 || strcmp(w0, "GMLOGS") != 0 || !w1 || strcmp(w1, "1") != 0 || !w)
        return gm_error_set(err, GM_ERR_PARSE, "the instance's answer has no GMLOGS 1 header");
    if (strcmp(w, "gone") == 0) {
        p->gone = true;
        w = strtok_r(NULL, " ", &save);
        return w ? gm_error_set(err, GM_ERR_PARSE, "malformed GMLOGS header") : GM_OK;
    }
    if (strcmp(w, "page") == 0) {
        w = strtok_r(NULL, " ", &save);
        bool ok = w && strncmp(w, "off=", 4) == 0 && number(w + 4, &p->offset) &&
                  !strtok_r(NULL, " ", &save);
        return ok ? GM_OK : gm_error_set(err, GM_ERR_PARSE, "malformed GMLOGS page header");
    }
    p->is_head = true;
    unsigned seen = 0;
    for (; w; w = strtok_r(NULL, " ", &save))
        if (!head_field(p, w, &seen))
            return gm_error_set(err, GM_ERR_PARSE, "malformed GMLOGS header field '%.40s'", w);
    if (seen != 0x3f)
        return gm_error_set(err, GM_ERR_PARSE, "the GMLOGS header misses a field");
    return GM_OK;
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\n' && s[i] != '\r' && s[i] != ' ' && s[i] != '\t')
            return false;
    return true;
}

gm_status gm_logs_parse_page(const char *text, size_t len, gm_logs_page *out, gm_error *err)
{
    memset(out, 0, sizeof *out);
    if (!text || memchr(text, '\0', len))
        return gm_error_set(err, GM_ERR_PARSE, "the instance's answer holds a NUL byte");
    const char *nl = memchr(text, '\n', len);
    size_t hl = nl ? (size_t)(nl - text) : len;
    if (hl >= 512)
        return gm_error_set(err, GM_ERR_PARSE, "the instance's answer has no GMLOGS 1 header");
    char line[512];
    memcpy(line, text, hl);
    line[hl] = '\0';
    if (hl && line[hl - 1] == '\r')
        line[hl - 1] = '\0';
    gm_status st = parse_header(line, out, err);
    const char *body = nl ? nl + 1 : text + len;
    size_t rest = (size_t)(text + len - body);
    if (st != GM_OK || out->gone) {
        if (st == GM_OK && !blank(body, rest))
            st = gm_error_set(err, GM_ERR_PARSE, "text after GMLOGS gone");
        return st;
    }
    const char *end = memchr(body, '\n', rest);
    size_t bl = end ? (size_t)(end - body) : rest;
    if (bl && body[bl - 1] == '\r')
        bl--;
    if (!blank(body + bl, rest - bl))
        return gm_error_set(err, GM_ERR_PARSE, "text after the log page");
    st = b64_decode(body, bl, &out->data, &out->len, err);
    int64_t want = out->size < GM_LOGS_PAGE_BYTES ? out->size : GM_LOGS_PAGE_BYTES;
    if (st == GM_OK && out->is_head && (int64_t)out->len != want)
        st = gm_error_set(err, GM_ERR_PARSE,
                          "the first log page holds %zu bytes, the header says %lld: the answer "
                          "was cut short",
                          out->len, (long long)want);
    if (st != GM_OK)
        gm_logs_page_release(out);
    return st;
}

void gm_logs_page_release(gm_logs_page *p)
{
    if (!p)
        return;
    free(p->data);
    p->data = NULL;
    p->len = 0;
}

/* ---- the log's lines as JSON ------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s (0: not one). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xC2 && s[0] <= 0xDF   ? 2
                 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
                 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4
                                                : 0;
    if (!len || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F) ||
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] > 0x8F))
        return 0; /* overlong, a surrogate, or past U+10FFFF */
    return len;
}

static json_t *clean_line(const char *s, size_t n, gm_buf *tmp)
{
    gm_buf_reset(tmp);
    gm_status st = GM_OK;
    for (size_t i = 0; st == GM_OK && i < n;) {
        size_t k = utf8_seq((const unsigned char *)s + i, n - i);
        st = k ? gm_buf_append(tmp, s + i, k) : gm_buf_appends(tmp, "\xEF\xBF\xBD");
        i += k ? k : 1;
    }
    return st == GM_OK ? json_stringn(tmp->data ? tmp->data : "", tmp->len) : NULL;
}

json_t *gm_logs_lines_json(const char *data, size_t len)
{
    json_t *lines = json_array();
    gm_buf tmp;
    gm_buf_init(&tmp, 3 * (len + 1) + 16);
    for (size_t i = 0; lines && i < len;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - data - i) : len - i;
        json_t *line = clean_line(data + i, n, &tmp);
        if (!line || json_array_append_new(lines, line) != 0) {
            json_decref(lines);
            lines = NULL;
        }
        i += n + 1;
    }
    gm_buf_release(&tmp);
    return lines;
}
