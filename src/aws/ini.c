/* The AWS shared config / credentials file parser. See ini.h for the dialect.
 *
 * The document keeps one private copy of the text; section names, keys and
 * values are NUL-terminated slices of it, cut in place. Sections are
 * deduplicated through a small open-addressing hash so a large file parses in
 * linear time (the fuzzer feeds it thousands of headers).
 */
#include "aws/ini.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"

typedef struct ini_entry {
    size_t section; /* index into sections */
    const char *key;
    const char *value;
} ini_entry;

struct gm_ini {
    char *text;
    size_t text_len;

    const char **sections; /* unique names, order of first appearance */
    size_t nsections, sections_cap;

    size_t *slots; /* hash of sections: index + 1, 0 = empty */
    size_t nslots;

    ini_entry *entries; /* in file order; later duplicates win */
    size_t nentries, entries_cap;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static size_t find_section(const gm_ini *doc, const char *name)
{
    if (!doc || !doc->nslots)
        return SIZE_MAX;
    size_t mask = doc->nslots - 1;
    for (size_t i = (size_t)hash_str(name) & mask;; i = (i + 1) & mask) {
        size_t s = doc->slots[i];
        if (s == 0)
            return SIZE_MAX;
        if (strcmp(doc->sections[s - 1], name) == 0)
            return s - 1;
    }
}

static GM_MUST_CHECK gm_status rehash(gm_ini *doc, size_t nslots)
{
    size_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return GM_ERR_NOMEM;
    for (size_t s = 0; s < doc->nsections; s++) {
        size_t i = (size_t)hash_str(doc->sections[s]) & (nslots - 1);
        while (slots[i])
            i = (i + 1) & (nslots - 1);
        slots[i] = s + 1;
    }
    free(doc->slots);
    doc->slots = slots;
    doc->nslots = nslots;
    return GM_OK;
}

/* Index of the section named name, adding it when new. */
static GM_MUST_CHECK gm_status intern_section(gm_ini *doc, const char *name, size_t *out_index)
{
    size_t found = find_section(doc, name);
    if (found != SIZE_MAX) {
        *out_index = found;
        return GM_OK;
    }
    if (doc->nsections == doc->sections_cap) {
        size_t cap = doc->sections_cap ? doc->sections_cap * 2 : 8;
        const char **n = realloc(doc->sections, cap * sizeof *n);
        if (!n)
            return GM_ERR_NOMEM;
        doc->sections = n;
        doc->sections_cap = cap;
    }
    doc->sections[doc->nsections++] = name;
    /* Keep the load factor at or under one half. */
    if (doc->nsections * 2 > doc->nslots) {
        gm_status st = rehash(doc, doc->nslots ? doc->nslots * 2 : 16);
        if (st != GM_OK) {
            doc->nsections--;
            return st;
        }
    } else {
        size_t mask = doc->nslots - 1;
        size_t i = (size_t)hash_str(name) & mask;
        while (doc->slots[i])
            i = (i + 1) & mask;
        doc->slots[i] = doc->nsections;
    }
    *out_index = doc->nsections - 1;
    return GM_OK;
}

static GM_MUST_CHECK gm_status add_entry(gm_ini *doc, size_t section, const char *key,
                                         const char *value)
{
    if (doc->nentries == doc->entries_cap) {
        size_t cap = doc->entries_cap ? doc->entries_cap * 2 : 16;
        ini_entry *n = realloc(doc->entries, cap * sizeof *n);
        if (!n)
            return GM_ERR_NOMEM;
        doc->entries = n;
        doc->entries_cap = cap;
    }
    doc->entries[doc->nentries++] = (ini_entry){section, key, value};
    return GM_OK;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Trims [*b, *e) in place of the pointers. */
static void trim_range(char **b, char **e)
{
    while (*b < *e && is_blank(**b))
        (*b)++;
    while (*e > *b && is_blank((*e)[-1]))
        (*e)--;
}

/* Collapses inner runs of blanks to one space; returns the new end. */
static char *collapse_blanks(char *b, char *e)
{
    char *w = b;
    bool in_blank = false;
    for (char *r = b; r < e; r++) {
        if (is_blank(*r)) {
            if (!in_blank)
                *w++ = ' ';
            in_blank = true;
        } else {
            *w++ = *r;
            in_blank = false;
        }
    }
    return w;
}

static GM_MUST_CHECK gm_status syntax_error(gm_error *err, const char *name, size_t line,
                                            const char *what)
{
    return gm_error_set(err, GM_ERR_PARSE, "malformed line '%s:%zu': %s", name, line, what);
}

/* Where the parser is: the current section and the key line that may be
 * continued by more indented lines. */
typedef struct ini_state {
    gm_ini *doc;
    const char *name;
    size_t lineno;
    size_t section;       /* SIZE_MAX before the first section */
    bool have_key;        /* a key line opened a possible continuation */
    bool key_value_empty; /* ... with an empty value: nested sub-section */
    size_t key_indent;
} ini_state;

/* "[name]" between b and e. GM_ERR_NOMEM is reported by the caller. */
static GM_MUST_CHECK gm_status section_line(ini_state *s, char *b, char *e, gm_error *err)
{
    char *close = memchr(b, ']', (size_t)(e - b));
    if (!close)
        return syntax_error(err, s->name, s->lineno, "section header without ']'");
    char *after = close + 1;
    while (after < e && is_blank(*after))
        after++;
    if (after < e && *after != '#' && *after != ';')
        return syntax_error(err, s->name, s->lineno, "unexpected text after section header");
    char *nb = b + 1, *ne = close;
    trim_range(&nb, &ne);
    if (nb == ne)
        return syntax_error(err, s->name, s->lineno, "empty section name");
    ne = collapse_blanks(nb, ne);
    *ne = '\0';
    return intern_section(s->doc, nb, &s->section);
}

/* "key = value" between b and e. */
static GM_MUST_CHECK gm_status key_line(ini_state *s, char *b, char *e, size_t indent,
                                        gm_error *err)
{
    char *eq = memchr(b, '=', (size_t)(e - b));
    if (!eq)
        return syntax_error(err, s->name, s->lineno, "expected '[section]' or 'key = value'");
    if (s->section == SIZE_MAX)
        return syntax_error(err, s->name, s->lineno, "key outside of any section");
    char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;
    trim_range(&kb, &ke);
    trim_range(&vb, &ve);
    if (kb == ke)
        return syntax_error(err, s->name, s->lineno, "empty key");
    for (char *k = kb; k < ke; k++)
        *k = (char)tolower((unsigned char)*k);
    *ke = '\0';
    *ve = '\0';
    gm_status st = add_entry(s->doc, s->section, kb, vb);
    s->have_key = true;
    s->key_value_empty = vb == ve;
    s->key_indent = indent;
    return st;
}

/* A line more indented than the key before it continues that key; under a
 * key with an empty value it must be "key = value" (a nested section). */
static GM_MUST_CHECK gm_status continuation_line(ini_state *s, char *b, char *e, gm_error *err)
{
    if (!s->key_value_empty)
        return GM_OK;
    char *eq = memchr(b, '=', (size_t)(e - b));
    char *kb = b, *ke = eq;
    if (eq)
        trim_range(&kb, &ke);
    if (!eq || kb == ke)
        return syntax_error(err, s->name, s->lineno, "expected 'key = value' in a nested section");
    return GM_OK;
}

static GM_MUST_CHECK gm_status parse_lines(ini_state *s, char *p, char *end, gm_error *err)
{
    gm_status st = GM_OK;
    while (p < end && st == GM_OK) {
        s->lineno++;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *eol = nl ? nl : end;
        char *next = nl ? nl + 1 : end;
        if (memchr(p, '\0', (size_t)(eol - p)))
            return syntax_error(err, s->name, s->lineno, "contains a NUL byte");
        size_t indent = 0;
        while (p + indent < eol && is_blank(p[indent]) && p[indent] != '\r')
            indent++;
        char *b = p, *e = eol;
        trim_range(&b, &e);
        p = next;
        if (b == e || *b == '#' || *b == ';')
            continue; /* blank and comment lines keep any continuation open */
        if (s->have_key && indent > s->key_indent) {
            st = continuation_line(s, b, e, err);
            continue;
        }
        s->have_key = false;
        st = *b == '[' ? section_line(s, b, e, err) : key_line(s, b, e, indent, err);
    }
    if (st == GM_ERR_NOMEM)
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory parsing '%s'", s->name);
    return st;
}

gm_status gm_ini_parse(const char *text, size_t len, const char *name, gm_ini **out_doc,
                       gm_error *err)
{
    *out_doc = NULL;
    if (!name)
        name = "<input>";
    if (len > GM_LIMIT_CONFIG_FILE)
        return gm_error_set(err, GM_ERR_LIMIT, "config file '%s' is larger than %u bytes", name,
                            (unsigned)GM_LIMIT_CONFIG_FILE);
    if (len && !text)
        return gm_error_set(err, GM_ERR_INVALID, "no text given for '%s'", name);
    gm_ini *doc = calloc(1, sizeof *doc);
    if (doc)
        doc->text = malloc(len + 1);
    if (!doc || !doc->text) {
        gm_ini_free(doc);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory parsing '%s'", name);
    }
    if (len)
        memcpy(doc->text, text, len);
    doc->text[len] = '\0';
    doc->text_len = len;
    char *p = doc->text, *end = doc->text + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    ini_state s = {.doc = doc, .name = name, .section = SIZE_MAX};
    gm_status st = parse_lines(&s, p, end, err);
    if (st != GM_OK) {
        gm_ini_free(doc);
        return st;
    }
    *out_doc = doc;
    return GM_OK;
}

gm_status gm_ini_load_file(const char *path, gm_ini **out_doc, gm_error *err)
{
    *out_doc = NULL;
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_CONFIG_FILE);
    gm_status st = gm_buf_read_file(&b, path, err);
    if (st == GM_OK)
        st = gm_ini_parse(b.data, b.len, path, out_doc, err);
    if (b.data)
        explicit_bzero(b.data, b.cap);
    gm_buf_release(&b);
    return st;
}

const char *gm_ini_get(const gm_ini *doc, const char *section, const char *key)
{
    if (!doc || !section || !key)
        return NULL;
    size_t s = find_section(doc, section);
    if (s == SIZE_MAX)
        return NULL;
    for (size_t i = doc->nentries; i-- > 0;) {
        const ini_entry *e = &doc->entries[i];
        if (e->section == s && strcasecmp(e->key, key) == 0)
            return e->value;
    }
    return NULL;
}

bool gm_ini_has_section(const gm_ini *doc, const char *section)
{
    return section && find_section(doc, section) != SIZE_MAX;
}

size_t gm_ini_section_count(const gm_ini *doc)
{
    return doc ? doc->nsections : 0;
}

const char *gm_ini_section_name(const gm_ini *doc, size_t index)
{
    return doc && index < doc->nsections ? doc->sections[index] : NULL;
}

void gm_ini_free(gm_ini *doc)
{
    if (!doc)
        return;
    if (doc->text) {
        explicit_bzero(doc->text, doc->text_len + 1);
        free(doc->text);
    }
    free(doc->sections);
    free(doc->slots);
    free(doc->entries);
    free(doc);
}
