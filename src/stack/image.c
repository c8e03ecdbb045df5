/* Image overrides (--image SERVICE=REF): which service, and whether REF is a
 * Docker image reference with an explicit version. The grammar is Docker's
 * (github.com/distribution/reference), minus what a deployment does not need:
 * no IPv6 registry, sha256 digests only, and a version required.
 *
 * Safety: a reference ends up in the Compose file (a double-quoted YAML
 * scalar, inside a quoted heredoc of the UserData). Only [A-Za-z0-9._/:@-]
 * gets through, so neither the shell, YAML nor Compose's ${} interpolation
 * has anything to interpret. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/str.h"
#include "stack/catalogue.h"
#include "stack/stack.h"

#define DIGEST_PREFIX "sha256:"
#define DIGEST_HEX 64
#define TAG_MAX 128

/* The services of tier's stack: every tier runs the whole catalogue. */
static bool tier_runs(gm_tier tier, const gm_service *s)
{
    (void)tier;
    return s != NULL;
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* One path component, s[0..n): [a-z0-9]+ joined by '.', '_', "__" or dashes. */
static bool path_component_ok(const char *s, size_t n)
{
    if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n;) {
        if (is_lower_alnum(s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && !is_lower_alnum(s[j]))
            j++;
        size_t len = j - i;
        bool dashes = strspn(s + i, "-") >= len;
        bool ok = (len == 1 && (s[i] == '.' || s[i] == '_')) ||
                  (len == 2 && s[i] == '_' && s[i + 1] == '_') || dashes;
        if (!ok)
            return false;
        i = j;
    }
    return true;
}

/* A registry: dot-separated labels [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?,
 * then an optional :PORT (1-65535). */
static bool host_ok(const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    size_t hn = colon ? (size_t)(colon - s) : n;
    if (colon) {
        size_t pn = n - hn - 1;
        long port = 0;
        for (size_t i = 0; i < pn; i++) {
            if (!isdigit((unsigned char)colon[1 + i]))
                return false;
            port = port * 10 + (colon[1 + i] - '0');
            if (port > 65535)
                return false;
        }
        if (pn == 0 || port == 0 || colon[1] == '0')
            return false;
    }
    size_t start = 0;
    for (size_t i = 0; i <= hn; i++) {
        if (i < hn && s[i] != '.') {
            if (!is_alnum(s[i]) && s[i] != '-')
                return false;
            continue;
        }
        if (i == start || s[start] == '-' || s[i - 1] == '-')
            return false; /* an empty label, or one starting or ending with '-' */
        start = i + 1;
    }
    return true;
}

/* A registry host is the first component when there are more and it has a
 * '.' or a ':' or is "localhost" (Docker's rule). */
static bool is_host(const char *s, size_t n, bool more)
{
    return more &&
           (memchr(s, '.', n) || memchr(s, ':', n) || (n == 9 && !memcmp(s, "localhost", 9)));
}

/* The repository: [HOST/]PATH. Writes why it is not one into why. */
static bool name_ok(const char *s, size_t n, char *why, size_t size)
{
    const char *slash = memchr(s, '/', n);
    size_t first = slash ? (size_t)(slash - s) : n;
    size_t i = 0;
    if (is_host(s, first, slash != NULL)) {
        if (!host_ok(s, first)) {
            snprintf(why, size,
                     "'%.*s' is not a registry HOST[:PORT] (dot-separated letters, digits and "
                     "'-'; a port from 1 to 65535)",
                     (int)first, s);
            return false;
        }
        i = first + 1;
    }
    while (i <= n) {
        const char *end = memchr(s + i, '/', n - i);
        size_t len = end ? (size_t)(end - (s + i)) : n - i;
        if (!path_component_ok(s + i, len)) {
            bool upper = false;
            for (size_t k = 0; k < len; k++)
                upper |= s[i + k] >= 'A' && s[i + k] <= 'Z';
            snprintf(why, size,
                     "the repository part '%.*s' %s: expected lowercase letters and digits "
                     "joined by '.', '_', '__' or '-'",
                     (int)len, s + i,
                     upper ? "has capitals (repository names are lowercase)" : "is malformed");
            return false;
        }
        i += len + 1;
    }
    return true;
}

static bool tag_ok(const char *t, size_t n)
{
    if (n == 0 || n > TAG_MAX || !(is_alnum(t[0]) || t[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_alnum(t[i]) && !strchr("_.-", t[i]))
            return false;
    return true;
}

static bool digest_ok(const char *d)
{
    if (!gm_str_startswith(d, DIGEST_PREFIX) || strlen(d) != strlen(DIGEST_PREFIX) + DIGEST_HEX)
        return false;
    for (const char *c = d + strlen(DIGEST_PREFIX); *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

/* The first character a reference may not hold, or NULL. */
static const char *bad_char(const char *ref)
{
    for (const char *c = ref; *c; c++)
        if (!is_alnum(*c) && !strchr("._/:@-", *c))
            return c;
    return NULL;
}

/* Why ref is no pinned image reference (into why), or true. */
static bool ref_ok(const char *ref, char *why, size_t size)
{
    const char *c = bad_char(ref);
    if (c && isprint((unsigned char)*c))
        snprintf(why, size,
                 "the character '%c' cannot appear in an image reference (allowed: letters, "
                 "digits and . _ - / : @)",
                 *c);
    else if (c)
        snprintf(why, size, "the byte 0x%02x cannot appear in an image reference",
                 (unsigned char)*c);
    if (c)
        return false;
    const char *at = strchr(ref, '@');
    if (at && !digest_ok(at + 1)) {
        snprintf(why, size, "the digest '%s' is not 'sha256:' and 64 lowercase hex digits", at + 1);
        return false;
    }
    size_t n = at ? (size_t)(at - ref) : strlen(ref);
    const char *colon = NULL, *slash = NULL;
    for (size_t i = 0; i < n; i++)
        if (ref[i] == ':')
            colon = ref + i;
        else if (ref[i] == '/')
            slash = ref + i;
    if (colon && slash && colon < slash)
        colon = NULL; /* a registry port, no tag */
    size_t name_n = colon ? (size_t)(colon - ref) : n;
    if (colon && !tag_ok(colon + 1, n - name_n - 1)) {
        snprintf(why, size, "the tag '%.*s' is not [A-Za-z0-9_] then up to 127 of [A-Za-z0-9_.-]",
                 (int)(n - name_n - 1), colon + 1);
        return false;
    }
    if (!name_ok(ref, name_n, why, size))
        return false;
    if (!colon && !at) {
        snprintf(why, size,
                 "it names no tag and no digest, so Docker would pull 'latest', whatever that "
                 "is on the day: give a release tag ('%.*s:1.2.3') and/or a digest "
                 "('@sha256:...') so every replacement instance runs the same image",
                 (int)name_n, ref);
        return false;
    }
    if (colon && n - name_n - 1 == 6 && !memcmp(colon + 1, "latest", 6)) {
        snprintf(why, size,
                 "the tag 'latest' moves: a replacement instance would pull whatever it points "
                 "at that day. Give a release tag ('%.*s:1.2.3', with '@sha256:...' if you "
                 "like) or a digest alone ('%.*s@sha256:...')",
                 (int)name_n, ref, (int)name_n, ref);
        return false;
    }
    return true;
}

/* "postgres, n8n, ..." and the nearest name to service (edit distance at
 * most 2, NULL when none). */
static const char *services_of(gm_tier tier, const char *service, char *list, size_t size)
{
    size_t n = 0;
    const gm_service *svc = gm_stack_services(&n);
    const char *near = NULL;
    size_t best = 3;
    char lower[64];
    size_t k = 0;
    for (; service[k] && k + 1 < sizeof lower; k++)
        lower[k] = (char)tolower((unsigned char)service[k]);
    lower[k] = '\0';
    list[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!tier_runs(tier, &svc[i]))
            continue;
        size_t used = strlen(list);
        snprintf(list + used, size - used, "%s%s", used ? ", " : "", svc[i].name);
        size_t d = gm_str_edit_distance(lower, svc[i].name);
        if (d < best)
            best = d, near = svc[i].name;
    }
    return near;
}

gm_status gm_stack_validate_image(gm_tier tier, const char *service, const char *ref, gm_error *err)
{
    service = service ? service : "";
    ref = ref ? ref : "";
    const gm_service *s = gm_stack_service(service);
    if (!s || !tier_runs(tier, s)) {
        char list[160], hint[96] = "";
        const char *near = services_of(tier, service, list, sizeof list);
        if (near)
            snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid --image '%.64s=%.64s': no service '%.64s' in tier %s%s; "
                            "expected one of %s",
                            service, ref, service, gm_tier_name(tier), hint, list);
    }
    if (!*ref)
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid --image '%s=': no image reference; expected SERVICE=REF "
                            "such as 'n8n=n8nio/n8n:2.42.0'",
                            service);
    size_t len = strlen(ref);
    if (len > GM_STACK_IMAGE_REF_MAX)
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid --image '%s=%.40s...': the reference is %zu characters, at "
                            "most %d",
                            service, ref, len, GM_STACK_IMAGE_REF_MAX);
    char why[512];
    if (!ref_ok(ref, why, sizeof why))
        return gm_error_set(err, GM_ERR_INVALID, "invalid --image '%s=%s': %s", service, ref, why);
    return GM_OK;
}

gm_status gm_stack_validate_images(gm_tier tier, const char *const *services,
                                   const char *const *refs, size_t n, gm_error *err)
{
    if (n > GM_STACK_MAX_IMAGES)
        return gm_error_set(err, GM_ERR_INVALID,
                            "%zu --image overrides: at most %d, one per service", n,
                            GM_STACK_MAX_IMAGES);
    if (n && (!services || !refs))
        return gm_error_set(err, GM_ERR_INVALID, "missing image override list");
    for (size_t i = 0; i < n; i++) {
        gm_status st = gm_stack_validate_image(tier, services[i], refs[i], err);
        if (st != GM_OK)
            return st;
        for (size_t j = 0; j < i; j++)
            if (strcmp(services[i], services[j]) == 0)
                return gm_error_set(err, GM_ERR_INVALID,
                                    "--image names service '%s' twice ('%s' and '%s'): give "
                                    "one image per service",
                                    services[i], refs[j], refs[i]);
    }
    return GM_OK;
}

const char *gm_stack_image_override(const gm_stack_params *p, const char *service)
{
    const char *found = NULL;
    for (size_t i = 0; p && p->image_services && p->image_refs && i < p->n_images; i++)
        if (p->image_services[i] && strcmp(p->image_services[i], service) == 0)
            found = p->image_refs[i];
    return found;
}
