/* The AWS shared config / credentials file format (an INI dialect).
 *
 * What is accepted (the AWS CLI's reading of these files):
 *   - "[name]" section headers; the name is trimmed and inner runs of
 *     whitespace become one space, so "[profile   dev]" is "profile dev".
 *     Nothing but whitespace or a comment may follow the ']'.
 *   - "key = value" lines; key and value are trimmed; the value may be empty
 *     and may contain '=' and spaces. Keys compare case-insensitively (the
 *     CLI's parser folds them to lower case); section names are
 *     case-sensitive. There are no inline comments: "a = b # c" has the value
 *     "b # c", as in the CLI.
 *   - Comment lines whose first non-blank character is '#' or ';', and blank
 *     lines, anywhere.
 *   - Lines indented deeper than the key line above them are that key's
 *     continuation. Under an empty value ("s3 =") they form a nested
 *     sub-section ("  max_concurrent_requests = 20"): each must still be
 *     "key = value", but they are not stored (no lookups need them). Under a
 *     non-empty value they are skipped.
 *   - LF or CRLF line endings; a UTF-8 byte order mark at the start.
 *   - A key repeated in a section: the last one wins. A section repeated:
 *     its keys merge (later keys win).
 * Errors: GM_ERR_PARSE naming "<name>:<line>" for a key outside any section,
 * a line that is neither a header nor "key = value", an empty key or section
 * name, a NUL byte; GM_ERR_LIMIT for input over GM_LIMIT_CONFIG_FILE. Error
 * messages never quote the offending line (it may hold a secret).
 */
#ifndef GM_AWS_INI_H
#define GM_AWS_INI_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

typedef struct gm_ini gm_ini;

/* Parses len bytes of text (need not be NUL-terminated). name labels error
 * messages (usually the file path; NULL: "<input>"). On success *out_doc is a
 * new document (gm_ini_free it); on failure *out_doc is NULL. */
GM_MUST_CHECK gm_status gm_ini_parse(const char *text, size_t len, const char *name,
                                     gm_ini **out_doc, gm_error *err);

/* Reads and parses the file at path, bounded by GM_LIMIT_CONFIG_FILE. A
 * missing file is GM_ERR_NOT_FOUND (err says which path). The read buffer is
 * wiped before it is freed. */
GM_MUST_CHECK gm_status gm_ini_load_file(const char *path, gm_ini **out_doc, gm_error *err);

/* The value of key in section, or NULL when absent. Valid until
 * gm_ini_free. NULL doc: NULL. */
const char *gm_ini_get(const gm_ini *doc, const char *section, const char *key);

/* True when a "[section]" header appears (even with no keys under it). */
bool gm_ini_has_section(const gm_ini *doc, const char *section);

/* Sections in order of first appearance, each name once. */
size_t gm_ini_section_count(const gm_ini *doc);
const char *gm_ini_section_name(const gm_ini *doc, size_t index);

/* Frees the document, wiping its text first (it may hold secrets). Safe on
 * NULL. */
void gm_ini_free(gm_ini *doc);

#endif
