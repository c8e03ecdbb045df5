/* geusemaker logs: the services and their sources, the scripts, and the SSM Run
 * Command conversation (see logs.h); the readers are in logs_read.c. */
#include "engine/logs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "aws/read.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "engine/engine.h"
#include "engine/liveness.h"
#include "stack/catalogue.h"
#include "stack/stack.h"

#define NL "\n"
#define DIR_PREFIX "/tmp/geusemaker-logs."
#define DIR_RANDOM 10 /* mktemp's X's */
/* The log the late start writes (stack/userdata_scripts.c) and the files
 * of the host's nginx (stack/userdata_conf.c: nginx.conf); test_logs.c
 * checks the generators still write there. */
#define LATE_START_LOG "/var/log/geusemaker/late-start.log"
#define NGINX_ERROR_LOG "/var/log/nginx/error.log"
#define NGINX_ACCESS_LOG "/var/log/nginx/access.log"
#define CLOUD_INIT_LOG "/var/log/cloud-init-output.log"
/* Compose names every container "geusemaker-<service>" (stack/compose.c). */
#define CONTAINER_PREFIX "geusemaker-"
/* Every source's output goes through this on its way to the folder (GNU tail
 * keeps only that much in memory), so a huge log never fills /tmp, which is
 * a RAM disk on Amazon Linux 2023: one byte more than a fetch keeps, so the
 * cut shows. */
#define CAP_PIPE " | tail -c 1048577"
_Static_assert(GM_LOGS_MAX_BYTES == 1048576, "CAP_PIPE is GM_LOGS_MAX_BYTES + 1");

/* ---- the services and their sources ------------------------------------------------ */

typedef enum { SRC_DOCKER, SRC_JOURNAL, SRC_FILE } src_kind;

typedef struct logs_source {
    src_kind kind;
    const char *what; /* the catalogue's service, the journal's units (space-separated),
                         or the file */
} logs_source;

#define MAX_SOURCES 4

static const struct {
    const char *name;
    logs_source src[MAX_SOURCES];
} services[GM_LOGS_N_SERVICES] = {
    [GM_LOGS_USERDATA] = {"userdata",
                          {{SRC_FILE, CLOUD_INIT_LOG},
                           {SRC_FILE, GM_USERDATA_LOG},
                           {SRC_FILE, LATE_START_LOG},
                           {SRC_JOURNAL, "geusemaker-stack.service geusemaker-late.service"}}},
    [GM_LOGS_N8N] = {"n8n", {{SRC_DOCKER, "n8n"}}},
    [GM_LOGS_OLLAMA] = {"ollama", {{SRC_DOCKER, "ollama"}}},
    [GM_LOGS_QDRANT] = {"qdrant", {{SRC_DOCKER, "qdrant"}}},
    [GM_LOGS_CRAWL4AI] = {"crawl4ai", {{SRC_DOCKER, "crawl4ai"}}},
    [GM_LOGS_POSTGRES] = {"postgres", {{SRC_DOCKER, "postgres"}}},
    [GM_LOGS_NGINX] = {"nginx",
                       {{SRC_JOURNAL, "nginx.service"},
                        {SRC_FILE, NGINX_ERROR_LOG},
                        {SRC_FILE, NGINX_ACCESS_LOG}}},
};

static size_t n_sources(gm_logs_service s)
{
    size_t n = 0;
    while (n < MAX_SOURCES && services[s].src[n].what)
        n++;
    return n;
}

static int n_files(gm_logs_service s)
{
    int n = 0;
    for (size_t i = 0; i < n_sources(s); i++)
        n += services[s].src[i].kind == SRC_FILE;
    return n;
}

const char *gm_logs_service_name(gm_logs_service s)
{
    return s >= 0 && s < GM_LOGS_N_SERVICES ? services[s].name : "?";
}

gm_status gm_logs_service_parse(const char *name, gm_logs_service *out, gm_error *err)
{
    for (int i = 0; name && i < GM_LOGS_N_SERVICES; i++)
        if (strcmp(name, services[i].name) == 0) {
            *out = (gm_logs_service)i;
            return GM_OK;
        }
    return gm_error_set(err, GM_ERR_INVALID, "unknown --service '%s': expected one of %s",
                        name ? name : "", GM_LOGS_SERVICE_NAMES);
}

/* "3m", "1m30s", "45s", "2h", "1d" */
static void fmt_duration(int64_t s, char out[32])
{
    if (s > 0 && s % 86400 == 0)
        snprintf(out, 32, "%lldd", (long long)(s / 86400));
    else if (s >= 3600 && s % 3600 == 0)
        snprintf(out, 32, "%lldh", (long long)(s / 3600));
    else if (s >= 60 && s % 60 == 0)
        snprintf(out, 32, "%lldm", (long long)(s / 60));
    else if (s > 60)
        snprintf(out, 32, "%lldm%llds", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(out, 32, "%llds", (long long)s);
}

gm_status gm_logs_parse_duration(const char *option, const char *text, int64_t min_s, int64_t max_s,
                                 int64_t *out_s, gm_error *err)
{
    size_t n = text ? strlen(text) : 0;
    int64_t unit = 0;
    if (n >= 2)
        switch (text[n - 1]) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: break;
        }
    char digits[24];
    int64_t v = 0;
    if (!unit || n - 1 >= sizeof digits)
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid %s '%s': expected a duration such as 30s, 10m, 2h or 1d "
                            "(a whole number and a unit s, m, h or d)",
                            option, text ? text : "");
    memcpy(digits, text, n - 1);
    digits[n - 1] = '\0';
    char lo[32], hi[32];
    fmt_duration(min_s, lo);
    fmt_duration(max_s, hi);
    if (!gm_str_to_int64(digits, 0, max_s, &v) || v * unit < min_s || v * unit > max_s)
        return gm_error_set(err, GM_ERR_INVALID, "invalid %s '%s': expected %s to %s", option, text,
                            lo, hi);
    *out_s = v * unit;
    return GM_OK;
}

gm_status gm_logs_parse_tail(const char *text, int64_t *out, gm_error *err)
{
    if (text && strcmp(text, "all") == 0) {
        *out = GM_LOGS_TAIL_ALL;
        return GM_OK;
    }
    if (text && gm_str_to_int64(text, 0, GM_LOGS_TAIL_MAX, out))
        return GM_OK;
    return gm_error_set(err, GM_ERR_INVALID,
                        "invalid --tail '%s': expected a number of lines, 0 to %d, or 'all'",
                        text ? text : "", GM_LOGS_TAIL_MAX);
}

/* "i-" and 8 or 17 characters of [0-9a-z] (the API's pattern). */
static bool instance_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if ((n != 10 && n != 19) || strncmp(id, "i-", 2) != 0)
        return false;
    for (size_t i = 2; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z')))
            return false;
    return true;
}

gm_status gm_logs_instance_of(gm_aws_client *aws, const gm_deployment *dep, char *out, size_t size,
                              gm_error *err)
{
    char id[64];
    gm_status st = gm_engine_current_instance(aws, dep, id, sizeof id, err);
    if (st != GM_OK)
        return st;
    if (!*id && dep->status == GM_DEP_STOPPED)
        return gm_error_set(err, GM_ERR_NOT_FOUND,
                            "deployment '%s' is stopped: it has no instance and no logs to read; "
                            "'geusemaker start %s' starts it",
                            dep->name, dep->name);
    if (!*id)
        return gm_error_set(err, GM_ERR_NOT_FOUND,
                            "deployment '%s' has no instance (status %s): there are no logs to "
                            "read; 'geusemaker deploy --resume %s' launches it",
                            dep->name, gm_dep_status_name(dep->status), dep->name);
    if (!instance_id_valid(id))
        return gm_error_set(err, GM_ERR_PARSE, "the record of '%s' names a malformed instance '%s'",
                            dep->name, id);
    if ((size_t)snprintf(out, size, "%s", id) >= size)
        return gm_error_set(err, GM_ERR_LIMIT, "instance id too long");
    return GM_OK;
}

/* ---- the scripts ------------------------------------------------------------------- */

bool gm_logs_dir_valid(const char *dir)
{
    size_t pl = strlen(DIR_PREFIX);
    if (!dir || strncmp(dir, DIR_PREFIX, pl) != 0 || strlen(dir) != pl + DIR_RANDOM)
        return false;
    for (const char *c = dir + pl; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')))
            return false;
    return true;
}

/* Lines whose start holds a timestamp decide whether they and the lines after
 * them are at or after the cut: ISO 8601 (the UserData's logs: UTC with a Z;
 * without one, local time), nginx's error log ("2026/11/30 12:00:00", local)
 * and its access log ("[30/Nov/2026:12:00:00 +0000]", local). us and ls are
 * the cut in UTC and local time, "YYYY-MM-DD HH:MM:SS". */
static const char since_awk[] =
    "BEGIN { n = split(\"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec\", m, \" \");"
    " for (i = 1; i <= n; i++) mon[m[i]] = sprintf(\"%02d\", i) }"
    " { t = \"\"; c = ls;"
    " if ($0 ~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][T ][0-9][0-9]:[0-9][0-9]:[0-9][0-9]/)"
    " { t = substr($0, 1, 10) \" \" substr($0, 12, 8); if (substr($0, 20, 1) == \"Z\") c = us }"
    " else if ($0 ~ /^[0-9][0-9][0-9][0-9]\\/[0-9][0-9]\\/[0-9][0-9] [0-9][0-9]:[0-9][0-9]:/)"
    " { t = substr($0, 1, 4) \"-\" substr($0, 6, 2) \"-\" substr($0, 9, 2) \" \" substr($0, 12, 8) "
    "}"
    " else if (match($0, /\\[[0-9][0-9]\\/[A-Z][a-z][a-z]\\/[0-9][0-9][0-9][0-9]:[0-9][0-9]:"
    "[0-9][0-9]:[0-9][0-9] /)) { s = substr($0, RSTART + 1, 20);"
    " t = substr(s, 8, 4) \"-\" mon[substr(s, 4, 3)] \"-\" substr(s, 1, 2) \" \" substr(s, 13, 8) }"
    " if (t != \"\") keep = (t >= c); if (keep) print }";

static const char collect_prologue[] =
    "export LC_ALL=C" NL "umask 077" NL
    "find /tmp/ -maxdepth 1 -name 'geusemaker-logs.*' -mmin +60 -exec rm -rf {} + 2>/dev/null" NL
    "d=$(mktemp -d " DIR_PREFIX "XXXXXXXXXX) || exit 1" NL "now=$(date +%s)" NL;

/* A source's output is in "$d/s"; put appends it to "$d/r" under a header
 * (always on the first fetch, when there is something on later ones). */
static const char put_fn[] =
    "put() {" NL "  if [ -s \"$d/s\" ] || [ \"$2\" = 1 ]; then printf '==> %s <==\\n' \"$1\"; "
    "cat \"$d/s\"; fi >>\"$d/r\"" NL "}" NL;

/* The stat of the file in $p as "$1 $2 $3" (inode, size, mtime), 0 0 0
 * when it does not exist; its position appended to the cursor. */
static const char file_stat[] =
    "set -- 0 0 0" NL "# shellcheck disable=SC2046 # split on purpose" NL
    "[ -f \"$p\" ] && set -- $(stat -Lc '%i %s %Y' \"$p\" 2>/dev/null)" NL
    "cur=\"${cur:+$cur,}${1:-0}:${2:-0}\"" NL;

static void render_tail(gm_emit *e, const gm_logs_query *q, const char *flag)
{
    if (!q->after && q->tail != GM_LOGS_TAIL_ALL)
        gm_emit_putf(e, " %s %lld", flag, (long long)q->tail);
}

static void render_docker(gm_emit *e, const gm_logs_query *q, const logs_source *s, bool since)
{
    gm_emit_put(e, "docker logs");
    render_tail(e, q, "--tail");
    if (since)
        gm_emit_put(e, " --since \"$since\"");
    if (q->follow)
        gm_emit_put(e, " --until \"$now\"");
    gm_emit_putf(e, " " CONTAINER_PREFIX "%s 2>&1" CAP_PIPE " >\"$d/s\"" NL, s->what);
}

static void render_journal(gm_emit *e, const gm_logs_query *q, const logs_source *s, bool since)
{
    gm_emit_put(e, "journalctl -q --no-pager -o short-iso");
    render_tail(e, q, "-n");
    if (since)
        gm_emit_put(e, " --since \"@$since\"");
    if (q->follow)
        gm_emit_put(e, " --until \"@$now\"");
    char units[128];
    snprintf(units, sizeof units, "%s", s->what);
    char *save = NULL;
    for (char *u = strtok_r(units, " ", &save); u; u = strtok_r(NULL, " ", &save))
        gm_emit_putf(e, " -u %s", u);
    gm_emit_put(e, " 2>&1" CAP_PIPE " >\"$d/s\"" NL);
}

static void render_file(gm_emit *e, const gm_logs_query *q, const logs_source *s, int file,
                        bool since)
{
    gm_emit_putf(e, "p='%s'" NL, s->what);
    gm_emit_put(e, file_stat);
    if (q->after) {
        long long ino = q->after->ino[file], size = q->after->size[file];
        gm_emit_putf(
            e, "o=0" NL "if [ \"${1:-0}\" = %lld ] && [ \"$2\" -ge %lld ]; then o=%lld; fi" NL, ino,
            size, size);
        gm_emit_put(e,
                    "if [ \"${1:-0}\" = 0 ]; then : >\"$d/s\"; else tail -c +$((o + 1)) \"$p\" | "
                    "head -c $(($2 - o))" CAP_PIPE " >\"$d/s\"; fi" NL);
        return;
    }
    gm_emit_put(e, "if [ \"${1:-0}\" = 0 ]; then echo '(no such file)' >\"$d/s\"" NL);
    if (since)
        gm_emit_put(e, "elif [ \"$3\" -lt \"$since\" ]; then : >\"$d/s\"" NL);
    /* Without --follow no offset is kept: tail reads from the end of the file. */
    bool seek = !since && !q->follow && q->tail != GM_LOGS_TAIL_ALL;
    if (seek)
        gm_emit_putf(e, "else tail -n %lld \"$p\"", (long long)q->tail);
    else
        gm_emit_put(e, "else head -c \"$2\" \"$p\"");
    if (since)
        gm_emit_put(e, " | awk -v us=\"$cu\" -v ls=\"$cl\" \"$aw\"");
    if (!seek && q->tail != GM_LOGS_TAIL_ALL)
        gm_emit_putf(e, " | tail -n %lld", (long long)q->tail);
    gm_emit_put(e, CAP_PIPE " >\"$d/s\"; fi" NL);
}

/* The header line, then the first page: the folder goes at once when that
 * was all of it. */
static void render_epilogue(gm_emit *e)
{
    gm_emit_putf(e,
                 "full=$(($(wc -c <\"$d/r\")))" NL
                 "if [ \"$full\" -gt %d ]; then tail -c %d \"$d/r\" | "
                 "sed 1d >\"$d/t\"; mv -f \"$d/t\" \"$d/r\"; fi" NL,
                 GM_LOGS_MAX_BYTES, GM_LOGS_MAX_BYTES);
    gm_emit_put(e, "if gzip -c \"$d/r\" >\"$d/out\" 2>/dev/null; then enc=gzip; else cp \"$d/r\" "
                   "\"$d/out\"; enc=raw; fi" NL "rm -f \"$d/r\" \"$d/s\"" NL
                   "size=$(($(wc -c <\"$d/out\")))" NL
                   "printf 'GMLOGS 1 dir=%s enc=%s size=%s full=%s now=%s files=%s\\n' \"$d\" "
                   "\"$enc\" \"$size\" \"$full\" \"$now\" \"$cur\"" NL);
    gm_emit_putf(e,
                 "head -c %d \"$d/out\" | base64 -w 0" NL "echo" NL
                 "if [ \"$size\" -le %d ]; then rm -rf \"$d\"; fi" NL,
                 GM_LOGS_PAGE_BYTES, GM_LOGS_PAGE_BYTES);
}

static GM_MUST_CHECK gm_status check_query(const gm_logs_query *q, gm_error *err)
{
    if (!q || q->service < 0 || q->service >= GM_LOGS_N_SERVICES)
        return gm_error_set(err, GM_ERR_INTERNAL, "no such log service");
    if (q->tail != GM_LOGS_TAIL_ALL && (q->tail < 0 || q->tail > GM_LOGS_TAIL_MAX))
        return gm_error_set(err, GM_ERR_INVALID, "--tail out of range");
    if (q->since_s < 0 || q->since_s > GM_LOGS_SINCE_MAX_S)
        return gm_error_set(err, GM_ERR_INVALID, "--since out of range");
    if (q->after && (q->after->n_files != n_files(q->service) || q->after->now < 0))
        return gm_error_set(err, GM_ERR_INTERNAL, "the follow cursor does not fit the service");
    for (int i = 0; q->after && i < q->after->n_files; i++)
        if (q->after->ino[i] < 0 || q->after->size[i] < 0)
            return gm_error_set(err, GM_ERR_INTERNAL, "negative position in the follow cursor");
    for (size_t i = 0; i < n_sources(q->service); i++) {
        const logs_source *s = &services[q->service].src[i];
        if (s->kind == SRC_DOCKER && !gm_stack_service(s->what))
            return gm_error_set(err, GM_ERR_INTERNAL, "'%s' is not in the stack's catalogue",
                                s->what);
    }
    return GM_OK;
}

gm_status gm_logs_render_collect(const gm_logs_query *q, gm_buf *out, gm_error *err)
{
    gm_status st = check_query(q, err);
    if (st != GM_OK)
        return st;
    gm_logs_service sv = q->service;
    size_t ns = n_sources(sv);
    bool since = q->after || q->since_s > 0;
    gm_emit e = {out, GM_OK};
    gm_emit_putf(&e, "# geusemaker logs --service %s: %s" NL, services[sv].name,
                 q->after ? "what is new since the last fetch" : "collect");
    gm_emit_put(&e, collect_prologue);
    if (q->after)
        gm_emit_putf(&e, "since=%lld" NL, (long long)q->after->now);
    else if (since)
        gm_emit_putf(&e, "since=$((now - %lld))" NL, (long long)q->since_s);
    if (since && !q->after && n_files(sv) > 0) {
        gm_emit_put(&e, "cu=$(date -u -d \"@$since\" '+%Y-%m-%d %H:%M:%S')" NL
                        "cl=$(date -d \"@$since\" '+%Y-%m-%d %H:%M:%S')" NL
                        "# shellcheck disable=SC2016 # awk's own $" NL "aw='");
        gm_emit_put(&e, since_awk);
        gm_emit_put(&e, "'" NL);
    }
    gm_emit_put(&e, "cur=" NL ": >\"$d/r\"" NL);
    if (ns > 1)
        gm_emit_put(&e, put_fn);
    int file = 0;
    for (size_t i = 0; i < ns; i++) {
        const logs_source *s = &services[sv].src[i];
        switch (s->kind) {
        case SRC_DOCKER: render_docker(&e, q, s, since); break;
        case SRC_JOURNAL: render_journal(&e, q, s, since); break;
        case SRC_FILE: render_file(&e, q, s, file++, since); break;
        }
        if (ns == 1)
            gm_emit_put(&e, "cat \"$d/s\" >>\"$d/r\"" NL);
        else if (s->kind == SRC_JOURNAL)
            gm_emit_putf(&e, "put 'journal: %s' %d" NL, s->what, q->after ? 0 : 1);
        else
            gm_emit_putf(&e, "put '%s' %d" NL, s->what, q->after ? 0 : 1);
    }
    render_epilogue(&e);
    if (e.st != GM_OK)
        return gm_error_set(err, e.st, "cannot render the log script: %s", gm_status_name(e.st));
    return GM_OK;
}

gm_status gm_logs_render_page(const char *dir, int64_t offset, bool last, gm_buf *out,
                              gm_error *err)
{
    if (!gm_logs_dir_valid(dir) || offset < 0)
        return gm_error_set(err, GM_ERR_INTERNAL, "refusing the folder '%s'", dir ? dir : "");
    gm_emit e = {out, GM_OK};
    gm_emit_putf(&e,
                 "# geusemaker logs: the page at byte %lld" NL "export LC_ALL=C" NL "d='%s'" NL
                 "if [ ! -f \"$d/out\" ]; then echo 'GMLOGS 1 gone'; exit 0; fi" NL
                 "echo 'GMLOGS 1 page off=%lld'" NL
                 "tail -c +%lld \"$d/out\" | head -c %d | base64 -w 0" NL "echo" NL,
                 (long long)offset, dir, (long long)offset, (long long)offset + 1,
                 GM_LOGS_PAGE_BYTES);
    if (last)
        gm_emit_put(&e, "rm -rf \"$d\"" NL);
    if (e.st != GM_OK)
        return gm_error_set(err, e.st, "cannot render the log script: %s", gm_status_name(e.st));
    return GM_OK;
}

gm_status gm_logs_render_cleanup(const char *dir, gm_buf *out, gm_error *err)
{
    if (!gm_logs_dir_valid(dir))
        return gm_error_set(err, GM_ERR_INTERNAL, "refusing the folder '%s'", dir ? dir : "");
    gm_emit e = {out, GM_OK};
    gm_emit_putf(&e, "# geusemaker logs: clean-up after an interruption" NL "rm -rf '%s'" NL, dir);
    if (e.st != GM_OK)
        return gm_error_set(err, e.st, "cannot render the log script: %s", gm_status_name(e.st));
    return GM_OK;
}

/* ---- the log's bytes: gunzipped as the pages arrive -------------------------------- */

typedef struct logs_sink {
    const gm_logs_request *req;
    gm_logs_result *res;
    bool gzip;
    bool started; /* z is initialised */
    bool ended;   /* the gzip stream's end was seen */
    z_stream z;
    size_t delivered; /* bytes of this fetch */
} logs_sink;

static GM_MUST_CHECK gm_status deliver(logs_sink *s, const unsigned char *data, size_t len,
                                       gm_error *err)
{
    if (!len)
        return GM_OK;
    if (s->delivered + len > GM_LOGS_MAX_BYTES)
        return gm_error_set(err, GM_ERR_LIMIT,
                            "the instance sent more than %d bytes of log for one fetch",
                            GM_LOGS_MAX_BYTES);
    s->delivered += len;
    s->res->bytes += len;
    return s->req->output(s->req->ctx, (const char *)data, len, err);
}

static GM_MUST_CHECK gm_status sink_begin(logs_sink *s, bool gzip, gm_error *err)
{
    s->gzip = gzip;
    if (!gzip)
        return GM_OK;
    memset(&s->z, 0, sizeof s->z);
    if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK)
        return gm_error_set(err, GM_ERR_NOMEM, "cannot start gunzip");
    s->started = true;
    return GM_OK;
}

static GM_MUST_CHECK gm_status sink_feed(logs_sink *s, const unsigned char *data, size_t len,
                                         gm_error *err)
{
    if (!s->gzip)
        return deliver(s, data, len, err);
    if (s->ended && len)
        return gm_error_set(err, GM_ERR_PARSE, "the log's gzip stream has data after its end");
    unsigned char buf[16384];
    s->z.next_in = (unsigned char *)data;
    s->z.avail_in = (uInt)len;
    gm_status st = GM_OK;
    while (st == GM_OK && !s->ended && (s->z.avail_in > 0 || s->z.avail_out == 0)) {
        s->z.next_out = buf;
        s->z.avail_out = sizeof buf;
        int rc = inflate(&s->z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            return gm_error_set(err, GM_ERR_PARSE, "the log's gzip stream is corrupt (%s)",
                                s->z.msg ? s->z.msg : "zlib error");
        st = deliver(s, buf, sizeof buf - s->z.avail_out, err);
        s->ended = rc == Z_STREAM_END;
        if (rc == Z_BUF_ERROR)
            break;
    }
    if (st == GM_OK && s->ended && s->z.avail_in > 0)
        st = gm_error_set(err, GM_ERR_PARSE, "the log's gzip stream has data after its end");
    return st;
}

static GM_MUST_CHECK gm_status sink_end(logs_sink *s, bool complete, gm_error *err)
{
    gm_status st = GM_OK;
    if (s->started) {
        if (complete && !s->ended)
            st = gm_error_set(err, GM_ERR_PARSE, "the log's gzip stream ends early");
        inflateEnd(&s->z);
        s->started = false;
    }
    return st;
}

/* ---- the conversation -------------------------------------------------------------- */

#define NOTE_EVERY_MS 15000

typedef struct logs_run {
    gm_aws_client *aws;
    const gm_logs_request *req;
    gm_logs_result *res;
} logs_run;

static bool interrupted(const logs_run *r)
{
    return r->req->interrupt && *r->req->interrupt;
}

/* Sleeps ms; false when interrupted first. */
static bool nap(const logs_run *r, int64_t ms)
{
    int64_t end = gm_now_ms() + ms;
    for (;;) {
        if (interrupted(r))
            return false;
        int64_t left = end - gm_now_ms();
        if (left <= 0)
            return true;
        gm_sleep_ms(left < 100 ? left : 100);
    }
}

__attribute__((format(printf, 2, 3))) static void note(const logs_run *r, const char *fmt, ...)
{
    if (!r->req->note)
        return;
    char text[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    r->req->note(r->req->ctx, text);
}

/* A failure's detail from a context of our own into err (the first wins). */
static GM_MUST_CHECK gm_status pass(gm_error *err, const gm_error *e, gm_status st)
{
    if (st != GM_OK && err && err->status == GM_OK)
        *err = *e;
    return st;
}

static json_t *commands_of(const char *script)
{
    json_t *a = json_array();
    for (const char *s = script; a && *s;) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        if (n && json_array_append_new(a, json_stringn(s, n)) != 0) {
            json_decref(a);
            a = NULL;
        }
        s += n + (nl ? 1 : 0);
    }
    return a;
}

/* SendCommand of AWS-RunShellScript with script to the instance. */
static GM_MUST_CHECK gm_status send_script(logs_run *r, const char *script, char id[40],
                                           gm_error *err)
{
    char comment[101], exec_timeout[16];
    snprintf(comment, sizeof comment, "%s", r->req->comment ? r->req->comment : "geusemaker logs");
    snprintf(exec_timeout, sizeof exec_timeout, "%d", GM_LOGS_EXECUTION_TIMEOUT_S);
    json_t *cmds = commands_of(script);
    json_t *body = cmds
                       ? json_pack("{s:s, s:[s], s:{s:o, s:[s]}, s:i, s:s}", "DocumentName",
                                   "AWS-RunShellScript", "InstanceIds", r->req->instance_id,
                                   "Parameters", "commands", cmds, "executionTimeout", exec_timeout,
                                   "TimeoutSeconds", GM_LOGS_DELIVERY_TIMEOUT_S, "Comment", comment)
                       : NULL;
    json_t *answer = NULL;
    gm_status st = body ? gm_aws_json(r->aws, &gm_svc_ssm, "SendCommand", body, &answer, err)
                        : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    json_decref(body);
    if (st == GM_OK)
        st = gm_ssm_read_sent(answer, id, err);
    json_decref(answer);
    if (st == GM_OK)
        r->res->commands++;
    return st;
}

/* Why SendCommand says InvalidInstanceId: an instance that is not running
 * (or gone) never registers, so waiting would be pointless. */
static GM_MUST_CHECK gm_status check_running(logs_run *r, gm_error *err)
{
    const char *id = r->req->instance_id;
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InstanceId.1", id);
    xmlDocPtr doc = NULL;
    gm_error e = {0};
    gm_status st = gm_aws_query(r->aws, &gm_svc_ec2, "DescribeInstances", &p, &doc, &e);
    gm_params_release(&p);
    if (st != GM_OK && strncmp(e.aws_code, "InvalidInstanceID", 17) == 0)
        return gm_error_set(err, GM_ERR_CONFLICT,
                            "instance '%s' does not exist any more: there are no logs to read "
                            "('geusemaker status' shows what is left)",
                            id);
    if (st != GM_OK)
        return pass(err, &e, st);
    gm_read_rows rows;
    st = gm_read_xml(doc, &gm_ec2_instances, &rows, err);
    xmlFreeDoc(doc);
    if (st != GM_OK)
        return st;
    char state[32];
    snprintf(state, sizeof state, "%s", rows.n ? gm_read_get(&rows, 0, GM_EC2_I_STATE) : "gone");
    gm_read_rows_release(&rows);
    if (strcmp(state, "running") == 0 || strcmp(state, "pending") == 0)
        return GM_OK;
    return gm_error_set(err, GM_ERR_CONFLICT,
                        "instance '%s' is %s: its SSM agent answers only while it runs, so its "
                        "logs cannot be read now",
                        id, state);
}

static GM_MUST_CHECK gm_status offline(const logs_run *r, gm_error *err)
{
    char w[32];
    fmt_duration(r->req->wait_ms / 1000, w);
    return gm_error_set(err, GM_ERR_TIMEOUT,
                        "the SSM agent on instance '%s' is offline: it has not registered with "
                        "Systems Manager %s%s (SendCommand: InvalidInstanceId). A new instance "
                        "registers a minute or two after it boots; otherwise check that the "
                        "instance role has AmazonSSMManagedInstanceCore and that the instance "
                        "reaches the SSM endpoints. --wait waits longer",
                        r->req->instance_id, r->req->wait_ms > 0 ? "within " : "",
                        r->req->wait_ms > 0 ? w : "yet");
}

/* send_script, repeated while the instance's agent is not registered, up to
 * the request's wait. */
static GM_MUST_CHECK gm_status send_when_registered(logs_run *r, const char *script, char id[40],
                                                    gm_error *err)
{
    int64_t start = gm_now_ms(), noted = -1;
    int64_t retry = r->req->retry_ms > 0 ? r->req->retry_ms : 5000;
    bool checked = false;
    for (;;) {
        gm_error e = {0};
        gm_status st = send_script(r, script, id, &e);
        if (st == GM_OK)
            return GM_OK;
        if (strcmp(e.aws_code, "InvalidInstanceId") != 0)
            return pass(err, &e, st);
        if (!checked && (st = check_running(r, err)) != GM_OK)
            return st;
        checked = true;
        int64_t now = gm_now_ms(), waited = now - start;
        if (waited >= r->req->wait_ms)
            return offline(r, err);
        if (noted < 0 || now - noted >= NOTE_EVERY_MS) {
            char a[32], b[32];
            fmt_duration(waited / 1000, a);
            fmt_duration(r->req->wait_ms / 1000, b);
            note(r,
                 "waiting for the SSM agent on %s to register with Systems Manager (%s of "
                 "%s)",
                 r->req->instance_id, a, b);
            noted = now;
        }
        int64_t left = r->req->wait_ms - waited;
        if (!nap(r, retry < left ? retry : left))
            return gm_error_set(err, GM_ERR_INTERRUPTED, "interrupted");
    }
}

/* GetCommandInvocation until the command is over (Run Command's own
 * deadlines plus a margin). InvocationDoesNotExist right after SendCommand is
 * AWS being eventually consistent: asked again. */
static GM_MUST_CHECK gm_status wait_invocation(logs_run *r, const char *id, gm_ssm_invocation *inv,
                                               gm_error *err)
{
    int64_t poll = r->req->poll_ms > 0 ? r->req->poll_ms : 1000;
    int64_t deadline =
        gm_now_ms() + (GM_LOGS_DELIVERY_TIMEOUT_S + GM_LOGS_EXECUTION_TIMEOUT_S + 30) * 1000LL;
    json_t *body = json_pack("{s:s, s:s}", "CommandId", id, "InstanceId", r->req->instance_id);
    gm_status st = body ? GM_OK : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    memset(inv, 0, sizeof *inv);
    while (st == GM_OK) {
        if (!nap(r, poll)) {
            st = gm_error_set(err, GM_ERR_INTERRUPTED, "interrupted");
            break;
        }
        gm_error e = {0};
        json_t *answer = NULL;
        st = gm_aws_json(r->aws, &gm_svc_ssm, "GetCommandInvocation", body, &answer, &e);
        if (st == GM_OK) {
            st = gm_ssm_read_invocation(answer, inv, err);
            json_decref(answer);
            if (st != GM_OK || gm_ssm_command_final(inv->status))
                break;
            gm_ssm_invocation_release(inv);
        } else if (strcmp(e.aws_code, "InvocationDoesNotExist") == 0) {
            st = GM_OK;
        } else {
            st = pass(err, &e, st);
            break;
        }
        if (gm_now_ms() >= deadline)
            st = gm_error_set(err, GM_ERR_TIMEOUT,
                              "command %s on instance '%s' did not finish in time (status %s)", id,
                              r->req->instance_id, gm_ssm_command_status_name(inv->status));
    }
    json_decref(body);
    return st;
}

/* The first line of s, at most size - 1 bytes. */
static void first_line(const char *s, char *out, size_t size)
{
    size_t n = s ? strcspn(s, "\n") : 0;
    if (n >= size)
        n = size - 1;
    memcpy(out, s ? s : "", n);
    out[n] = '\0';
}

/* What a final status other than Success means. */
static GM_MUST_CHECK gm_status outcome(const logs_run *r, const gm_ssm_invocation *inv,
                                       gm_error *err)
{
    const char *id = r->req->instance_id;
    const char *d = inv->status_details;
    char why[320];
    first_line(inv->err_text, why, sizeof why);
    if (inv->status == GM_SSM_CMD_SUCCESS)
        return GM_OK;
    if (strstr(d, "Undeliverable") || strstr(d, "Delivery") || strstr(d, "Terminated"))
        return gm_error_set(err, GM_ERR_TIMEOUT,
                            "the SSM agent on instance '%s' did not take the command within %d s "
                            "(%s): it is registered but offline",
                            id, GM_LOGS_DELIVERY_TIMEOUT_S, d);
    if (inv->status == GM_SSM_CMD_TIMED_OUT)
        return gm_error_set(err, GM_ERR_TIMEOUT,
                            "the log command ran out of its %d s on instance '%s'",
                            GM_LOGS_EXECUTION_TIMEOUT_S, id);
    if (inv->status == GM_SSM_CMD_CANCELLED)
        return gm_error_set(err, GM_ERR_AWS, "the log command was cancelled on instance '%s'", id);
    return gm_error_set(err, GM_ERR_AWS,
                        "the log command failed on instance '%s' (exit code %lld)%s%s", id,
                        (long long)inv->response_code, *why ? ": " : "", why);
}

/* Sends script (waiting for the agent to register when asked) and reads its
 * result; *out is the parsed answer of a successful run. */
static GM_MUST_CHECK gm_status run_script(logs_run *r, const gm_buf *script, bool first,
                                          gm_logs_page *out, gm_error *err)
{
    char id[40];
    memset(out, 0, sizeof *out);
    gm_status st = first ? send_when_registered(r, gm_buf_cstr(script), id, err)
                         : send_script(r, gm_buf_cstr(script), id, err);
    gm_ssm_invocation inv;
    memset(&inv, 0, sizeof inv);
    if (st == GM_OK)
        st = wait_invocation(r, id, &inv, err);
    if (st == GM_OK)
        st = outcome(r, &inv, err);
    if (st == GM_OK) {
        st = gm_logs_parse_page(inv.out, inv.out_len, out, err);
        if (st != GM_OK && inv.err_len) {
            char why[320];
            first_line(inv.err_text, why, sizeof why);
            gm_error_prefix(err, "the instance's answer to command %s (its error output: %s)", id,
                            why);
        }
    }
    gm_ssm_invocation_release(&inv);
    return st;
}

/* Removes the temporary folder after a fetch stopped half-way: sent, not
 * waited for (a clean-up must not hold up Ctrl-C); the next collect removes
 * what is an hour old anyway. */
static void cleanup(logs_run *r, const char *dir)
{
    gm_buf script;
    gm_buf_init(&script, GM_LIMIT_SMALL);
    gm_error e = {0};
    char id[40];
    if (gm_logs_render_cleanup(dir, &script, &e) == GM_OK)
        gm_ignore(send_script(r, gm_buf_cstr(&script), id, &e)); /* best effort, see above */
    gm_buf_release(&script);
}

/* The pages after the first, each checked to start where the last ended and
 * to hold all it should. */
static GM_MUST_CHECK gm_status read_pages(logs_run *r, const gm_logs_page *head, logs_sink *sink,
                                          gm_error *err)
{
    gm_buf script;
    gm_buf_init(&script, GM_LIMIT_SMALL);
    gm_status st = GM_OK;
    for (int64_t off = (int64_t)head->len; st == GM_OK && off < head->size;) {
        int64_t want =
            head->size - off < GM_LOGS_PAGE_BYTES ? head->size - off : GM_LOGS_PAGE_BYTES;
        gm_buf_reset(&script);
        gm_logs_page page;
        st = gm_logs_render_page(head->dir, off, off + want >= head->size, &script, err);
        if (st == GM_OK)
            st = run_script(r, &script, false, &page, err);
        if (st == GM_OK && (page.gone || page.is_head))
            st = gm_error_set(err, GM_ERR_CONFLICT,
                              "the log's temporary folder %s on instance '%s' was removed before "
                              "it was read",
                              head->dir, r->req->instance_id);
        else if (st == GM_OK && (page.offset != off || (int64_t)page.len != want))
            st = gm_error_set(err, GM_ERR_PARSE,
                              "the log page at byte %lld came back with %zu bytes at %lld, not "
                              "%lld: the answer was cut short",
                              (long long)off, page.len, (long long)page.offset, (long long)want);
        if (st == GM_OK)
            st = sink_feed(sink, page.data, page.len, err);
        off += want;
        gm_logs_page_release(&page);
    }
    gm_buf_release(&script);
    return st;
}

/* One fetch: the collect script, then its pages. *next: where a follow
 * fetch goes on. */
static GM_MUST_CHECK gm_status fetch(logs_run *r, const gm_logs_cursor *after, gm_logs_cursor *next,
                                     gm_error *err)
{
    const gm_logs_request *q = r->req;
    gm_logs_query query = {.service = q->service,
                           .tail = q->tail,
                           .since_s = q->since_s,
                           .follow = q->follow,
                           .after = after};
    gm_buf script;
    gm_buf_init(&script, GM_LIMIT_SMALL);
    gm_logs_page head;
    memset(&head, 0, sizeof head);
    gm_status st = gm_logs_render_collect(&query, &script, err);
    if (st == GM_OK)
        st = run_script(r, &script, true, &head, err);
    gm_buf_release(&script);
    if (st == GM_OK && (!head.is_head || head.cursor.n_files != n_files(q->service)))
        st = gm_error_set(err, GM_ERR_PARSE, "the instance's answer is not the log's first page");
    logs_sink sink = {.req = q, .res = r->res};
    if (st == GM_OK)
        st = sink_begin(&sink, head.gzip, err);
    if (st == GM_OK && head.full > (int64_t)GM_LOGS_MAX_BYTES) {
        r->res->truncated = true;
        note(r,
             "the log is longer than %d bytes: only its last %d are shown (--tail and --since "
             "narrow it)",
             GM_LOGS_MAX_BYTES, GM_LOGS_MAX_BYTES);
    }
    if (st == GM_OK && head.full > r->res->full_bytes)
        r->res->full_bytes = head.full;
    if (st == GM_OK)
        st = sink_feed(&sink, head.data, head.len, err);
    if (st == GM_OK)
        st = read_pages(r, &head, &sink, err);
    gm_status end = sink_end(&sink, st == GM_OK, err);
    st = st == GM_OK ? end : st;
    if (st != GM_OK && head.is_head && head.size > GM_LOGS_PAGE_BYTES)
        cleanup(r, head.dir);
    if (st == GM_OK) {
        *next = head.cursor;
        r->res->fetches++;
    }
    gm_logs_page_release(&head);
    return st;
}

gm_status gm_engine_logs(gm_aws_client *aws, const gm_logs_request *req, gm_logs_result *out,
                         gm_error *err)
{
    gm_logs_result local;
    gm_logs_result *res = out ? out : &local;
    memset(res, 0, sizeof *res);
    if (!req || !req->output || !instance_id_valid(req->instance_id) || req->service < 0 ||
        req->service >= GM_LOGS_N_SERVICES)
        return gm_error_set(err, GM_ERR_INTERNAL, "incomplete log request");
    logs_run r = {.aws = aws, .req = req, .res = res};
    int64_t interval =
        req->interval_ms > 0 ? req->interval_ms : GM_LOGS_INTERVAL_DEFAULT_S * 1000LL;
    gm_logs_cursor cur, next;
    gm_status st = fetch(&r, NULL, &cur, err);
    while (st == GM_OK && req->follow) {
        if (!nap(&r, interval))
            return gm_error_set(err, GM_ERR_INTERRUPTED, "interrupted");
        st = fetch(&r, &cur, &next, err);
        if (st == GM_OK)
            cur = next;
    }
    return st;
}
