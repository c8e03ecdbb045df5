/* Runs the AWS Signature Version 4 test suite against gm_sigv4_sign.
 *
 *   sigv4_vectors DIR
 *
 * DIR is laid out as awslabs/aws-c-auth tests/aws-signing-test-suite/v4: every
 * folder (at any depth) holding context.json and request.txt is a case. For
 * each case the request is signed with the Authorization header and compared
 * with header-canonical-request.txt, header-string-to-sign.txt,
 * header-signature.txt (exactly, a trailing newline aside) and with the
 * Authorization line of header-signed-request.txt.
 *
 * The query-* files (query-string presigning) are skipped on purpose: the
 * tool never presigns URLs, so the signer has no such mode.
 *
 * Prints one line per failing case and ends with "N passed, M failed"; exits
 * non-zero on any failure or when DIR holds no case.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "aws/sigv4.h"
#include "core/buf.h"
#include "core/str.h"
#include "core/timeutil.h"

#define MAX_CASE_FILE (1u * 1024u * 1024u)
#define HINT_MAX 160

typedef struct case_list {
    char **paths;
    size_t count;
    size_t cap;
} case_list;

static int add_case(case_list *l, const char *path)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **n = realloc(l->paths, cap * sizeof *n);
        if (!n)
            return -1;
        l->paths = n;
        l->cap = cap;
    }
    if (!(l->paths[l->count] = strdup(path)))
        return -1;
    l->count++;
    return 0;
}

static int file_exists(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Collects case folders under dir (depth-first; nested layouts such as the
 * older normalize-path/get-relative work too). */
static int collect(case_list *l, const char *dir, int depth)
{
    if (depth > 8)
        return 0;
    if (file_exists(dir, "context.json") && file_exists(dir, "request.txt"))
        return add_case(l, dir);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rc = collect(l, p, depth + 1);
    }
    closedir(d);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads dir/name into b; 0 on success. */
static int read_case_file(gm_buf *b, const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    gm_buf_init(b, MAX_CASE_FILE);
    return gm_buf_read_file(b, p, NULL) == GM_OK ? 0 : -1;
}

/* Length without trailing CR/LF. */
static size_t trimmed_len(const char *s, size_t len)
{
    while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    return len;
}

/* Copies s[0..len) into out (at most HINT_MAX chars), escaping line breaks
 * and other control bytes so the hint stays on one line. */
static void escape(char *out, size_t outsz, const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 5 < outsz && n < HINT_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            n += (size_t)snprintf(out + n, outsz - n, "\\x%02x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
}

/* Compares expected and actual (trailing newlines ignored). On a difference
 * fills hint with the first differing line of both. */
static int same_text(const char *exp, size_t elen, const char *got, size_t glen, char *hint,
                     size_t hintsz)
{
    elen = trimmed_len(exp, elen);
    glen = trimmed_len(got, glen);
    if (elen == glen && memcmp(exp, got, elen) == 0)
        return 1;
    size_t i = 0, line = 1, start = 0;
    while (i < elen && i < glen && exp[i] == got[i]) {
        if (exp[i] == '\n') {
            line++;
            start = i + 1;
        }
        i++;
    }
    const char *ee = memchr(exp + start, '\n', elen - start);
    const char *ge = memchr(got + start, '\n', glen - start);
    size_t el = ee ? (size_t)(ee - exp) - start : elen - start;
    size_t gl = ge ? (size_t)(ge - got) - start : glen - start;
    /* Show the lines from a little before the first differing column. */
    size_t col = i - start, from = col > 40 ? col - 40 : 0;
    char e[HINT_MAX * 4 + 8], g[HINT_MAX * 4 + 8];
    escape(e, sizeof e, exp + start + from, el - from);
    escape(g, sizeof g, got + start + (from < gl ? from : gl), gl - (from < gl ? from : gl));
    int n = snprintf(hint, hintsz, "line %zu, column %zu: expected \"%s%s\", got \"%s%s\"", line,
                     col + 1, from ? "..." : "", e, from ? "..." : "", g);
    if (n < 0)
        hint[0] = '\0'; /* a long hint is cut: it is only a hint */
    return 0;
}

/* ---- request.txt ------------------------------------------------------- */

typedef struct raw_request {
    char *method;
    char *target;
    gm_headers headers;
    gm_buf body;
} raw_request;

static void raw_request_release(raw_request *r)
{
    free(r->method);
    free(r->target);
    gm_headers_release(&r->headers);
    gm_buf_release(&r->body);
}

/* Parses the raw HTTP request: request line, "Name:value" headers (a line
 * starting with a blank continues the previous value, joined with one space
 * as RFC 7230 unfolding does), a blank line, the body. Lines may end in LF or
 * CRLF. Returns 0 or -1 with why filled. */
static int parse_request(raw_request *r, const char *text, size_t len, const char **why)
{
    memset(r, 0, sizeof *r);
    gm_headers_init(&r->headers);
    gm_buf_init(&r->body, MAX_CASE_FILE);
    const char *p = text, *end = text + len;
    int lineno = 0;
    int last = -1; /* index of the last header, for continuation lines */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        size_t ll = (size_t)(le - p);
        if (ll && p[ll - 1] == '\r')
            ll--;
        if (lineno == 0) {
            /* METHOD SP target SP version; the target may hold spaces. */
            const char *sp1 = memchr(p, ' ', ll);
            const char *sp2 = NULL;
            for (const char *q = p + ll; q > p; q--)
                if (q[-1] == ' ') {
                    sp2 = q - 1;
                    break;
                }
            if (!sp1 || sp2 == sp1) {
                *why = "malformed request line";
                return -1;
            }
            r->method = gm_strndup(p, (size_t)(sp1 - p));
            r->target = gm_strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
            if (!r->method || !r->target) {
                *why = "out of memory";
                return -1;
            }
        } else if (ll == 0) {
            /* End of headers; the rest is the body, byte for byte. */
            if (gm_buf_append(&r->body, next, (size_t)(end - next)) != GM_OK) {
                *why = "body too large";
                return -1;
            }
            return 0;
        } else if (p[0] == ' ' || p[0] == '\t') {
            if (last < 0) {
                *why = "continuation line before any header";
                return -1;
            }
            char *cont = gm_strndup(p, ll);
            gm_header *h = &r->headers.items[last];
            char *joined = cont ? gm_strfmt("%s %s", h->value, gm_str_trim(cont)) : NULL;
            free(cont);
            if (!joined) {
                *why = "out of memory";
                return -1;
            }
            free(h->value);
            h->value = joined;
        } else {
            const char *colon = memchr(p, ':', ll);
            if (!colon) {
                *why = "header line without ':'";
                return -1;
            }
            char *name = gm_strndup(p, (size_t)(colon - p));
            char *value = gm_strndup(colon + 1, ll - (size_t)(colon - p) - 1);
            int ok = name && value && gm_headers_add(&r->headers, name, value) == GM_OK;
            free(name);
            free(value);
            if (!ok) {
                *why = "out of memory";
                return -1;
            }
            last = (int)r->headers.count - 1;
        }
        lineno++;
        p = next;
    }
    if (lineno == 0) {
        *why = "empty request";
        return -1;
    }
    return 0;
}

/* ---- one case ---------------------------------------------------------- */

static const char *json_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int json_flag(json_t *obj, const char *key, int def)
{
    json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

/* Finds "Name:value" in a raw request text; the value (trimmed) is written to
 * out. Returns 1 when found. Only header lines (before the blank line). */
static int find_header_line(const char *text, size_t len, const char *name, char *out, size_t outsz)
{
    size_t nlen = strlen(name);
    const char *p = text, *end = text + len;
    int first = 1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t ll = (size_t)(le - p);
        if (ll && p[ll - 1] == '\r')
            ll--;
        if (!first && ll == 0)
            break;
        if (!first && ll > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            size_t vl = ll - nlen - 1;
            while (vl && (*v == ' ' || *v == '\t')) {
                v++;
                vl--;
            }
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            snprintf(out, outsz, "%.*s", (int)vl, v);
            return 1;
        }
        first = 0;
        p = nl ? nl + 1 : end;
    }
    return 0;
}

/* Runs one case; returns 1 when it passes. On failure fills msg. */
static int run_case(const char *dir, char *msg, size_t msgsz)
{
    int pass = 0;
    json_t *ctx = NULL;
    json_error_t jerr;
    char path[4096];
    raw_request r;
    gm_buf text;
    gm_http_request req;
    gm_sigv4_debug dbg;
    gm_credentials cred = {0};
    gm_buf_init(&text, MAX_CASE_FILE);
    gm_http_request_init(&req);
    gm_buf_init(&dbg.canonical_request, MAX_CASE_FILE);
    gm_buf_init(&dbg.string_to_sign, MAX_CASE_FILE);
    dbg.signature[0] = '\0';
    memset(&r, 0, sizeof r);
    gm_headers_init(&r.headers);
    gm_buf_init(&r.body, MAX_CASE_FILE);

    snprintf(path, sizeof path, "%s/context.json", dir);
    ctx = json_load_file(path, 0, &jerr);
    if (!ctx) {
        snprintf(msg, msgsz, "context.json: %s (line %d)", jerr.text, jerr.line);
        goto out;
    }
    json_t *jc = json_object_get(ctx, "credentials");
    const char *region = json_str(ctx, "region"), *service = json_str(ctx, "service");
    const char *ts = json_str(ctx, "timestamp");
    time_t when = ts ? gm_time_parse_iso8601(ts) : -1;
    if (!json_is_object(jc) || !region || !service || when == -1) {
        snprintf(msg, msgsz, "context.json: missing credentials, region, service or timestamp");
        goto out;
    }
    cred.access_key_id = (char *)json_str(jc, "access_key_id");
    cred.secret_access_key = (char *)json_str(jc, "secret_access_key");
    cred.session_token = (char *)json_str(jc, "token");

    if (read_case_file(&text, dir, "request.txt") != 0) {
        snprintf(msg, msgsz, "cannot read request.txt");
        goto out;
    }
    const char *why = NULL;
    if (parse_request(&r, gm_buf_cstr(&text), text.len, &why) != 0) {
        snprintf(msg, msgsz, "request.txt: %s", why);
        goto out;
    }
    const char *host = gm_headers_get(&r.headers, "host");
    if (!host) {
        snprintf(msg, msgsz, "request.txt: no Host header");
        goto out;
    }
    char *hostv = gm_strdup(host);
    char *url = hostv ? gm_strfmt("https://%s%s", gm_str_trim(hostv), r.target) : NULL;
    free(hostv);
    if (!url || gm_http_request_setup(&req, r.method, url) != GM_OK) {
        free(url);
        snprintf(msg, msgsz, "out of memory");
        goto out;
    }
    free(url);
    for (size_t i = 0; i < r.headers.count; i++)
        if (gm_headers_add(&req.headers, r.headers.items[i].name, r.headers.items[i].value) !=
            GM_OK) {
            snprintf(msg, msgsz, "out of memory");
            goto out;
        }
    if (r.body.len && gm_buf_append(&req.body, r.body.data, r.body.len) != GM_OK) {
        snprintf(msg, msgsz, "body too large");
        goto out;
    }

    gm_sigv4_params params = {
        .region = region,
        .service = service,
        .timestamp = when,
        .credentials = &cred,
        .normalize_path = json_flag(ctx, "normalize", 1),
        .sign_body = json_flag(ctx, "sign_body", 0),
        .omit_session_token = json_flag(ctx, "omit_session_token", 0),
        .payload_hash = json_str(ctx, "signed_body_value"),
    };
    gm_error err = {0};
    if (gm_sigv4_sign(&req, &params, &dbg, &err) != GM_OK) {
        snprintf(msg, msgsz, "signing failed: %s", err.message);
        goto out;
    }

    static const struct {
        const char *file;
        const char *what;
    } checks[] = {
        {"header-canonical-request.txt", "canonical request"},
        {"header-string-to-sign.txt", "string to sign"},
        {"header-signature.txt", "signature"},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        gm_buf exp;
        if (read_case_file(&exp, dir, checks[i].file) != 0) {
            gm_buf_release(&exp);
            snprintf(msg, msgsz, "cannot read %s", checks[i].file);
            goto out;
        }
        const gm_buf *got = i == 0 ? &dbg.canonical_request : i == 1 ? &dbg.string_to_sign : NULL;
        const char *gs = got ? gm_buf_cstr(got) : dbg.signature;
        size_t gl = got ? got->len : strlen(dbg.signature);
        char hint[1024];
        int same = same_text(gm_buf_cstr(&exp), exp.len, gs, gl, hint, sizeof hint);
        gm_buf_release(&exp);
        if (!same) {
            snprintf(msg, msgsz, "%s differs at %s", checks[i].what, hint);
            goto out;
        }
    }

    gm_buf signed_req;
    if (read_case_file(&signed_req, dir, "header-signed-request.txt") != 0) {
        gm_buf_release(&signed_req);
        snprintf(msg, msgsz, "cannot read header-signed-request.txt");
        goto out;
    }
    char want[4096], tok[8192];
    int have_auth = find_header_line(gm_buf_cstr(&signed_req), signed_req.len, "Authorization",
                                     want, sizeof want);
    int have_tok = find_header_line(gm_buf_cstr(&signed_req), signed_req.len,
                                    "X-Amz-Security-Token", tok, sizeof tok);
    gm_buf_release(&signed_req);
    const char *got_auth = gm_headers_get(&req.headers, "authorization");
    if (!have_auth) {
        snprintf(msg, msgsz, "header-signed-request.txt has no Authorization line");
        goto out;
    }
    if (!got_auth || strcmp(want, got_auth) != 0) {
        char hint[1024];
        same_text(want, strlen(want), got_auth ? got_auth : "", got_auth ? strlen(got_auth) : 0,
                  hint, sizeof hint);
        snprintf(msg, msgsz, "signed request's Authorization differs at %s", hint);
        goto out;
    }
    const char *got_tok = gm_headers_get(&req.headers, "x-amz-security-token");
    if (have_tok && !gm_str_eq(tok, got_tok)) {
        snprintf(msg, msgsz, "signed request's X-Amz-Security-Token differs");
        goto out;
    }
    pass = 1;

out:
    json_decref(ctx);
    raw_request_release(&r);
    gm_buf_release(&text);
    gm_http_request_release(&req);
    gm_buf_release(&dbg.canonical_request);
    gm_buf_release(&dbg.string_to_sign);
    return pass;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    char root[4096];
    snprintf(root, sizeof root, "%s", argv[1]);
    for (size_t n = strlen(root); n > 1 && root[n - 1] == '/'; n--)
        root[n - 1] = '\0';
    case_list l = {0};
    if (collect(&l, root, 0) != 0) {
        fprintf(stderr, "error: out of memory listing '%s'\n", root);
        return 2;
    }
    if (l.count == 0) {
        fprintf(stderr, "error: no sigv4 cases under '%s'\n", root);
        printf("0 passed, 0 failed\n");
        return 1;
    }
    qsort(l.paths, l.count, sizeof *l.paths, cmp_str);
    size_t rootlen = strlen(root);
    int passed = 0, failed = 0;
    for (size_t i = 0; i < l.count; i++) {
        char msg[4096] = "";
        const char *name = l.paths[i];
        if (strncmp(name, root, rootlen) == 0 && name[rootlen] == '/')
            name += rootlen + 1;
        if (run_case(l.paths[i], msg, sizeof msg)) {
            passed++;
        } else {
            failed++;
            printf("FAIL %s: %s\n", name, msg);
        }
        free(l.paths[i]);
    }
    free(l.paths);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
