/* geusemaker logs: a deployment's logs, read on its instance through SSM Run
 * Command (AWS-RunShellScript: SendCommand, then GetCommandInvocation), never
 * SSH.
 *
 * The conversation. Each fetch sends one "collect" script: it writes the
 * service's log (the containers' json-file logs through `docker logs`, the
 * journal of the host units, the host's log files) into a private temporary
 * folder on the instance (mktemp -d under /tmp, 0700), keeps at most its last
 * GM_LOGS_MAX_BYTES, gzips it, and answers with a header line and the first
 * GM_LOGS_PAGE_BYTES of the result in base64. GetCommandInvocation returns at
 * most 24,000 characters of output, so a larger result is read back in byte
 * ranges by "page" scripts, the last of which removes the folder (the collect
 * script also removes folders older than an hour that an interrupted run left
 * behind). base64 keeps the bytes exact whatever the agent does to text that
 * is not UTF-8, and a page that comes back short is an error, never a gap.
 *
 * The instance's agent registers with Systems Manager a while after boot;
 * until it does SendCommand answers InvalidInstanceId (on AWS and in the
 * emulator alike), so the first send is repeated until the request's wait
 * runs out ("offline"). An instance that is not running fails at once.
 *
 * --follow repeats the fetch every interval: containers and the journal are
 * read in windows of the instance's own clock (--since the previous fetch's
 * "now", --until this one's), files from the byte offset the previous fetch
 * reached (a file that shrank or changed inode is read from its start). Each
 * line arrives once.
 *
 * The answers are read by pure functions (logs_read.c: gm_ssm_read_*,
 * gm_logs_parse_page), unit-tested (tests/unit/test_logs.c) and fuzzed
 * (fuzz/fuzz_ssm_invocation.c).
 */
#ifndef GM_ENGINE_LOGS_H
#define GM_ENGINE_LOGS_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/client.h"
#include "core/buf.h"
#include "core/error.h"
#include "state/deployment.h"

/* What can be read. */
typedef enum gm_logs_service {
    GM_LOGS_USERDATA, /* the boot: cloud-init's output, the UserData log, the late start,
                         the journal of geusemaker-stack.service and geusemaker-late.service */
    GM_LOGS_N8N,      /* the containers (docker logs geusemaker-NAME) */
    GM_LOGS_OLLAMA,
    GM_LOGS_QDRANT,
    GM_LOGS_CRAWL4AI,
    GM_LOGS_POSTGRES,
    GM_LOGS_NGINX, /* on the host: its journal, error.log, access.log */
    GM_LOGS_N_SERVICES,
} gm_logs_service;

#define GM_LOGS_SERVICE_NAMES "userdata, n8n, ollama, qdrant, crawl4ai, postgres, nginx"

#define GM_LOGS_TAIL_ALL (-1)
#define GM_LOGS_TAIL_DEFAULT 200
#define GM_LOGS_TAIL_MAX 1000000
#define GM_LOGS_SINCE_MAX_S (366 * 86400)
#define GM_LOGS_WAIT_DEFAULT_S 180
#define GM_LOGS_WAIT_MAX_S 3600
#define GM_LOGS_INTERVAL_DEFAULT_S 5
#define GM_LOGS_INTERVAL_MAX_S 3600

/* GetCommandInvocation's StandardOutputContent holds at most this many
 * characters; a page (base64, 4 characters per 3 bytes) plus its header line
 * stays below it. */
#define GM_SSM_OUTPUT_MAX 24000
#define GM_LOGS_PAGE_BYTES 17400
/* One fetch reads at most the last this many bytes of log (a line cut in two
 * at the front is dropped). */
#define GM_LOGS_MAX_BYTES (1024 * 1024)
/* Files read per service (their offsets travel between follow fetches). */
#define GM_LOGS_MAX_FILES 4
/* Run Command's limits for one script: its delivery (the agent must take it
 * within this many seconds) and its run on the instance. */
#define GM_LOGS_DELIVERY_TIMEOUT_S 60
#define GM_LOGS_EXECUTION_TIMEOUT_S 120

/* The service called name: GM_ERR_INVALID listing the names otherwise. */
GM_MUST_CHECK gm_status gm_logs_service_parse(const char *name, gm_logs_service *out,
                                              gm_error *err);
const char *gm_logs_service_name(gm_logs_service s);

/* A duration: a whole number and one unit, s, m, h or d ("30s", "10m", "2h",
 * "1d"), from min_s to max_s seconds. GM_ERR_INVALID naming option
 * ("--since") and the value. */
GM_MUST_CHECK gm_status gm_logs_parse_duration(const char *option, const char *text, int64_t min_s,
                                               int64_t max_s, int64_t *out_s, gm_error *err);
/* --tail: a whole number 0..GM_LOGS_TAIL_MAX or "all" (GM_LOGS_TAIL_ALL). */
GM_MUST_CHECK gm_status gm_logs_parse_tail(const char *text, int64_t *out, gm_error *err);

/* The instance whose logs are read, from the record (later: from its Auto
 * Scaling group, hence the client). GM_ERR_NOT_FOUND with a message saying
 * why when the deployment has none. */
GM_MUST_CHECK gm_status gm_logs_instance_of(gm_aws_client *aws, const gm_deployment *dep, char *out,
                                            size_t size, gm_error *err);

/* ---- the run ----------------------------------------------------------------------- */

typedef void (*gm_logs_note_fn)(void *ctx, const char *text);
/* Receives the log's bytes in order; a failure stops the run. */
typedef gm_status (*gm_logs_output_fn)(void *ctx, const char *data, size_t len, gm_error *err);

typedef struct gm_logs_request {
    const char *instance_id;
    gm_logs_service service;
    int64_t tail;                     /* lines per source, or GM_LOGS_TAIL_ALL */
    int64_t since_s;                  /* only what is newer than this many seconds; 0: everything */
    bool follow;                      /* then fetch again every interval until *interrupt */
    int64_t interval_ms;              /* 0: GM_LOGS_INTERVAL_DEFAULT_S */
    int64_t wait_ms;                  /* how long to wait for the agent to register; 0: no wait */
    int64_t poll_ms;                  /* between GetCommandInvocation polls; 0: 1000 */
    int64_t retry_ms;                 /* between sends while the agent is not registered; 0: 5000 */
    const char *comment;              /* SendCommand's Comment (cut at 100 characters), or NULL */
    volatile sig_atomic_t *interrupt; /* may be NULL */
    gm_logs_note_fn note;             /* progress and notes for the user; may be NULL */
    gm_logs_output_fn output;         /* required */
    void *ctx;
} gm_logs_request;

typedef struct gm_logs_result {
    size_t bytes;       /* log bytes delivered to output */
    int fetches;        /* collect scripts that ran */
    int commands;       /* SendCommand calls accepted (collects, pages, clean-ups) */
    bool truncated;     /* a fetch was over GM_LOGS_MAX_BYTES: only its end was read */
    int64_t full_bytes; /* the largest fetch's size before that cut (see gm_logs_page.full) */
} gm_logs_result;

/* Reads the logs as the request says: one fetch, or with follow fetches until
 * *interrupt (then GM_ERR_INTERRUPTED). The agent not registered within
 * wait_ms: GM_ERR_TIMEOUT saying the agent is offline; an instance that is
 * not running or gone: GM_ERR_CONFLICT; the script failing on the instance:
 * GM_ERR_AWS with its exit code and error output. *out (may be NULL) is
 * filled on success and failure. */
GM_MUST_CHECK gm_status gm_engine_logs(gm_aws_client *aws, const gm_logs_request *req,
                                       gm_logs_result *out, gm_error *err);

/* The log's lines as a JSON array of strings (split at '\n', a last empty
 * line dropped; bytes that are not UTF-8 become U+FFFD). NULL when memory
 * is exhausted. */
json_t *gm_logs_lines_json(const char *data, size_t len);

/* ---- the scripts (exposed for the tests) -------------------------------------------- */

/* Where a follow fetch starts: the instance's clock at the previous fetch and
 * how far each file was read (inode 0: the file did not exist). */
typedef struct gm_logs_cursor {
    int64_t now; /* Unix seconds */
    int n_files;
    int64_t ino[GM_LOGS_MAX_FILES];
    int64_t size[GM_LOGS_MAX_FILES];
} gm_logs_cursor;

typedef struct gm_logs_query {
    gm_logs_service service;
    int64_t tail;                /* the first fetch: lines per source, or GM_LOGS_TAIL_ALL */
    int64_t since_s;             /* the first fetch: seconds back; 0: no limit */
    bool follow;                 /* end the window at the instance's now (the next starts there) */
    const gm_logs_cursor *after; /* NULL: the first fetch; else what is new since */
} gm_logs_query;

/* The collect script (POSIX sh: /bin/sh is dash on Ubuntu) into out. */
GM_MUST_CHECK gm_status gm_logs_render_collect(const gm_logs_query *q, gm_buf *out, gm_error *err);
/* The script reading the page at offset of the folder dir's output; last:
 * remove the folder after it. */
GM_MUST_CHECK gm_status gm_logs_render_page(const char *dir, int64_t offset, bool last, gm_buf *out,
                                            gm_error *err);
/* The script removing dir (after an interrupted paging). */
GM_MUST_CHECK gm_status gm_logs_render_cleanup(const char *dir, gm_buf *out, gm_error *err);
/* Whether dir is a folder the collect script makes: "/tmp/geusemaker-logs."
 * and ten characters of [A-Za-z0-9]. Nothing else is put into a script. */
bool gm_logs_dir_valid(const char *dir);

/* ---- the answers (pure: unit-tested and fuzzed) ----------------------------------- */

typedef enum gm_ssm_command_status {
    GM_SSM_CMD_PENDING,
    GM_SSM_CMD_IN_PROGRESS,
    GM_SSM_CMD_DELAYED,
    GM_SSM_CMD_SUCCESS,
    GM_SSM_CMD_CANCELLED,
    GM_SSM_CMD_TIMED_OUT,
    GM_SSM_CMD_FAILED,
    GM_SSM_CMD_CANCELLING,
} gm_ssm_command_status;

/* True for the statuses that do not change any more (Success, Cancelled,
 * TimedOut, Failed). */
bool gm_ssm_command_final(gm_ssm_command_status s);
const char *gm_ssm_command_status_name(gm_ssm_command_status s);

/* GetCommandInvocation's answer. */
typedef struct gm_ssm_invocation {
    gm_ssm_command_status status;
    char status_details[128]; /* "Success", "DeliveryTimedOut", "Undeliverable", ... */
    int64_t response_code;    /* the script's exit code; -1 when it did not run */
    char *out;                /* StandardOutputContent, NUL-terminated (may hold NULs) */
    size_t out_len;
    char *err_text; /* StandardErrorContent */
    size_t err_len;
} gm_ssm_invocation;

/* Reads GetCommandInvocation's answer: Status (required, one of the API's
 * values), StatusDetails, ResponseCode, StandardOutputContent (at most
 * GM_SSM_OUTPUT_MAX characters) and StandardErrorContent. GM_ERR_PARSE
 * naming what is wrong. *out is initialised here; release it either way. */
GM_MUST_CHECK gm_status gm_ssm_read_invocation(const json_t *answer, gm_ssm_invocation *out,
                                               gm_error *err);
void gm_ssm_invocation_release(gm_ssm_invocation *inv);

/* SendCommand's answer: Command.CommandId (36 characters of [0-9a-f-]). */
GM_MUST_CHECK gm_status gm_ssm_read_sent(const json_t *answer, char out[40], gm_error *err);

/* One answer of the scripts above: a header line and a line of base64. */
typedef struct gm_logs_page {
    bool gone;             /* a page script found the folder removed */
    bool is_head;          /* the collect script's answer (else a page) */
    char dir[64];          /* head: the temporary folder on the instance */
    bool gzip;             /* head: the output is gzip (else as it is) */
    int64_t size;          /* head: bytes of output in all */
    int64_t full;          /* head: bytes of log before the GM_LOGS_MAX_BYTES cut (each
                              source counted up to one byte more than that) */
    int64_t offset;        /* page: where it starts */
    gm_logs_cursor cursor; /* head: where a follow fetch goes on */
    unsigned char *data;   /* the page's bytes, decoded */
    size_t len;
} gm_logs_page;

/* Parses a script's standard output strictly (known keys, whole numbers, a
 * valid folder, canonical base64 of at most GM_LOGS_PAGE_BYTES). GM_ERR_PARSE
 * otherwise. *out is initialised here; release it either way. */
GM_MUST_CHECK gm_status gm_logs_parse_page(const char *text, size_t len, gm_logs_page *out,
                                           gm_error *err);
void gm_logs_page_release(gm_logs_page *p);

#endif
