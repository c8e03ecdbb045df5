/* Small string helpers. Allocating functions return NULL only when memory is
 * exhausted; the caller frees the result. */
#ifndef GM_CORE_STR_H
#define GM_CORE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

char *gm_strdup(const char *s); /* NULL in, NULL out */
char *gm_strndup(const char *s, size_t n);
char *gm_strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool gm_str_eq(const char *a, const char *b); /* NULL-safe */
bool gm_str_ieq(const char *a, const char *b);
bool gm_str_startswith(const char *s, const char *prefix);
bool gm_str_endswith(const char *s, const char *suffix);

/* Trims ASCII whitespace at both ends, in place; returns s. */
char *gm_str_trim(char *s);

/* Replaces *dst with a copy of src (frees the old value). */
GM_MUST_CHECK gm_status gm_str_set(char **dst, const char *src);

/* RFC 3986 percent-encoding as AWS defines it: unreserved characters
 * (A-Z a-z 0-9 - _ . ~) stay, everything else becomes %XX (uppercase). With
 * keep_slash, '/' stays too (for paths). */
GM_MUST_CHECK gm_status gm_uri_encode(gm_buf *out, const char *s, size_t len, bool keep_slash);

/* Decodes %XX sequences (and '+' as space when plus_is_space). */
GM_MUST_CHECK gm_status gm_uri_decode(gm_buf *out, const char *s, size_t len, bool plus_is_space);

/* Lowercase hex of len bytes. out must hold 2*len+1. */
void gm_hex_encode(const unsigned char *in, size_t len, char *out);

/* A whole number written strictly: ASCII digits only (no sign, space, '+',
 * hex or trailing text), from min to max. False on anything else, *out
 * untouched. */
bool gm_str_to_int64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Levenshtein distance between two short strings (each at most 64 bytes;
 * longer ones are "infinitely" far: SIZE_MAX), for "did you mean". */
size_t gm_str_edit_distance(const char *a, const char *b);

#endif
