/* geusemaker logs (engine/logs.h): the option parsers, the readers of
 * SendCommand's and GetCommandInvocation's answers and of the scripts'
 * output, the scripts themselves (POSIX sh, what they read matches what the
 * stack writes), and the conversation over a mock transport: registration
 * wait, InvocationDoesNotExist, pages, gzip, failures, interruption. */
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "engine/logs.h"
#include "gm_test.h"
#include "mock_transport.h"
#include "stack/stack.h"
#include "state/deployment.h"

#define DIR "/tmp/geusemaker-logs.AbCdEf0123"
#define INSTANCE "i-0123456789abcdef0"
#define CMD_ID "0f3c6d2a-1b2c-4d5e-8f90-123456789abc"

/* ---- helpers ----------------------------------------------------------------------- */

static char *b64(const unsigned char *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    out[n] = '\0';
    return out;
}

static unsigned char *gzip_of(const unsigned char *data, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    size_t cap = deflateBound(&z, (uLong)len);
    unsigned char *out = malloc(cap);
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

/* The standard output of a collect script: header + first page. */
static char *head_text(const unsigned char *out, size_t size, bool gzip, long long full)
{
    size_t first = size < GM_LOGS_PAGE_BYTES ? size : GM_LOGS_PAGE_BYTES;
    char *enc = b64(out, first);
    char *text = malloc(strlen(enc) + 256);
    sprintf(text, "GMLOGS 1 dir=%s enc=%s size=%zu full=%lld now=1700000000 files=\n%s\n", DIR,
            gzip ? "gzip" : "raw", size, full, enc);
    free(enc);
    return text;
}

static char *page_text(const unsigned char *out, size_t size, size_t off, size_t len)
{
    if (off + len > size)
        len = size - off;
    char *enc = b64(out + off, len);
    char *text = malloc(strlen(enc) + 64);
    sprintf(text, "GMLOGS 1 page off=%zu\n%s\n", off, enc);
    free(enc);
    return text;
}

/* A GetCommandInvocation answer (JSON) with that output. */
static char *invocation_with(const char *status, const char *details, int code, const char *out,
                             const char *errout)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "CommandId", CMD_ID, "InstanceId",
                          INSTANCE, "Status", status, "StatusDetails", details, "ResponseCode",
                          code, "StandardOutputContent", out ? out : "", "StandardErrorContent",
                          errout ? errout : "");
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static char *invocation(const char *status, int code, const char *out, const char *errout)
{
    return invocation_with(status, status, code, out, errout);
}

static json_t *parse(const char *text)
{
    return json_loads(text, 0, NULL);
}

/* ---- option values ----------------------------------------------------------------- */

static void test_services(void)
{
    static const char *const names[] = {"userdata", "n8n",      "ollama", "qdrant",
                                        "crawl4ai", "postgres", "nginx"};
    for (int i = 0; i < 7; i++) {
        gm_logs_service s = GM_LOGS_N_SERVICES;
        CHECK(gm_logs_service_parse(names[i], &s, NULL) == GM_OK);
        CHECK_STR(gm_logs_service_name(s), names[i]);
    }
    gm_error err = {0};
    gm_logs_service s;
    CHECK(gm_logs_service_parse("mysql", &s, &err) == GM_ERR_INVALID);
    CHECK(strstr(err.message, "'mysql'") && strstr(err.message, "crawl4ai"));
    CHECK(gm_logs_service_parse(NULL, &s, NULL) == GM_ERR_INVALID);
    CHECK(gm_logs_service_parse("N8N", &s, NULL) == GM_ERR_INVALID);
}

static void test_durations(void)
{
    static const struct {
        const char *text;
        int64_t s;
    } good[] = {{"30s", 30}, {"10m", 600}, {"2h", 7200}, {"1d", 86400}, {"366d", 366 * 86400}};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        int64_t v = -1;
        CHECK(gm_logs_parse_duration("--since", good[i].text, 1, GM_LOGS_SINCE_MAX_S, &v, NULL) ==
              GM_OK);
        CHECK_INT(v, good[i].s);
    }
    static const char *const bad[] = {
        "",   "10", "10x", "m",    "-5m",  "+5m", "5 m",
        "5M", "0s", "1w",  "367d", "1.5h", "5mm", "99999999999999999999s"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gm_error err = {0};
        int64_t v = 42;
        CHECK(gm_logs_parse_duration("--since", bad[i], 1, GM_LOGS_SINCE_MAX_S, &v, &err) ==
              GM_ERR_INVALID);
        CHECK(v == 42 && strstr(err.message, "invalid --since"));
    }
    int64_t v = -1;
    CHECK(gm_logs_parse_duration("--wait", "0s", 0, GM_LOGS_WAIT_MAX_S, &v, NULL) == GM_OK &&
          v == 0);
    gm_error err = {0};
    CHECK(gm_logs_parse_duration("--wait", "2h", 0, GM_LOGS_WAIT_MAX_S, &v, &err) ==
          GM_ERR_INVALID);
    CHECK(strstr(err.message, "0s to 1h") != NULL);
}

static void test_tail(void)
{
    int64_t v = 0;
    CHECK(gm_logs_parse_tail("all", &v, NULL) == GM_OK && v == GM_LOGS_TAIL_ALL);
    CHECK(gm_logs_parse_tail("0", &v, NULL) == GM_OK && v == 0);
    CHECK(gm_logs_parse_tail("1000000", &v, NULL) == GM_OK && v == 1000000);
    static const char *const bad[] = {"-1", "1000001", "ten", "", " 5", "5 ", "ALL", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gm_error err = {0};
        CHECK(gm_logs_parse_tail(bad[i], &v, &err) == GM_ERR_INVALID);
        CHECK(strstr(err.message, "invalid --tail") != NULL);
    }
}

static void test_instance_of(void)
{
    gm_deployment *d = gm_deployment_new("demo", "dev", "us-east-1");
    char id[32];
    gm_error err = {0};
    CHECK(gm_logs_instance_of(NULL, d, id, sizeof id, &err) == GM_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "has no instance") && strstr(err.message, "deploy --resume demo"));
    gm_node_state *n = gm_deployment_ensure_node(d, "instance", "instance");
    CHECK(gm_node_state_set_id(n, INSTANCE) == GM_OK);
    n->status = GM_NODE_CREATED;
    CHECK(gm_logs_instance_of(NULL, d, id, sizeof id, NULL) == GM_OK);
    CHECK_STR(id, INSTANCE);
    CHECK(gm_node_state_set_id(n, "i-0123;reboot") == GM_OK);
    CHECK(gm_logs_instance_of(NULL, d, id, sizeof id, NULL) == GM_ERR_PARSE);
    n->status = GM_NODE_DELETED;
    CHECK(gm_logs_instance_of(NULL, d, id, sizeof id, NULL) == GM_ERR_NOT_FOUND);
    gm_deployment_free(d);
}

/* ---- the readers ------------------------------------------------------------------- */

static void test_read_invocation(void)
{
    gm_ssm_invocation inv;
    json_t *j = parse("{\"CommandId\":\"" CMD_ID "\",\"InstanceId\":\"" INSTANCE "\","
                      "\"Status\":\"Success\",\"StatusDetails\":\"Success\",\"ResponseCode\":0,"
                      "\"StandardOutputContent\":\"GMLOGS 1 gone\\n\",\"StandardOutputUrl\":\"\","
                      "\"StandardErrorContent\":\"\",\"PluginName\":\"aws:runShellScript\"}");
    CHECK(gm_ssm_read_invocation(j, &inv, NULL) == GM_OK);
    CHECK(inv.status == GM_SSM_CMD_SUCCESS && gm_ssm_command_final(inv.status));
    CHECK_STR(inv.out, "GMLOGS 1 gone\n");
    CHECK(inv.out_len == 14 && inv.response_code == 0 && inv.err_len == 0);
    gm_ssm_invocation_release(&inv);
    json_decref(j);

    j = parse("{\"Status\":\"InProgress\"}");
    CHECK(gm_ssm_read_invocation(j, &inv, NULL) == GM_OK);
    CHECK(inv.status == GM_SSM_CMD_IN_PROGRESS && !gm_ssm_command_final(inv.status));
    CHECK(inv.response_code == -1 && inv.out_len == 0 && *inv.status_details == '\0');
    gm_ssm_invocation_release(&inv);
    json_decref(j);

    j = parse("{\"Status\":\"Failed\",\"StatusDetails\":\"Failed\",\"ResponseCode\":2,"
              "\"StandardErrorContent\":\"mktemp: cannot\\nmore\"}");
    CHECK(gm_ssm_read_invocation(j, &inv, NULL) == GM_OK);
    CHECK(inv.status == GM_SSM_CMD_FAILED && inv.response_code == 2);
    CHECK_STR(inv.err_text, "mktemp: cannot\nmore");
    gm_ssm_invocation_release(&inv);
    json_decref(j);

    static const char *const bad[] = {
        "[]",
        "{}",
        "{\"Status\":\"Done\"}",
        "{\"Status\":3}",
        "{\"Status\":\"Success\",\"StandardOutputContent\":7}",
        "{\"Status\":\"Success\",\"StandardErrorContent\":[]}",
        "{\"Status\":\"Success\",\"ResponseCode\":\"0\"}",
        "{\"Status\":\"Success\",\"ResponseCode\":1.5}",
        "{\"Status\":\"Success\",\"ResponseCode\":99999999999}",
        "{\"Status\":\"Success\",\"StatusDetails\":{}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gm_error err = {0};
        j = parse(bad[i]);
        CHECK(gm_ssm_read_invocation(j, &inv, &err) == GM_ERR_PARSE);
        CHECK(*err.message && inv.out == NULL && inv.err_text == NULL);
        json_decref(j);
    }
    /* 24,000 characters (here two bytes each) is the most the API returns. */
    size_t n = GM_SSM_OUTPUT_MAX;
    char *big = malloc(2 * n + 2);
    for (size_t i = 0; i < n; i++)
        memcpy(big + 2 * i, "\xc3\xa9", 2);
    big[2 * n] = '\0';
    j = json_pack("{s:s, s:s}", "Status", "Success", "StandardOutputContent", big);
    CHECK(gm_ssm_read_invocation(j, &inv, NULL) == GM_OK && inv.out_len == 2 * n);
    gm_ssm_invocation_release(&inv);
    json_decref(j);
    big[2 * n] = 'x';
    big[2 * n + 1] = '\0';
    j = json_pack("{s:s, s:s}", "Status", "Success", "StandardOutputContent", big);
    CHECK(gm_ssm_read_invocation(j, &inv, NULL) == GM_ERR_PARSE);
    json_decref(j);
    free(big);
}

static void test_read_sent(void)
{
    char id[40];
    json_t *j = parse("{\"Command\":{\"CommandId\":\"" CMD_ID "\",\"Status\":\"Pending\"}}");
    CHECK(gm_ssm_read_sent(j, id, NULL) == GM_OK);
    CHECK_STR(id, CMD_ID);
    json_decref(j);
    static const char *const bad[] = {
        "{}",
        "{\"Command\":{}}",
        "{\"CommandId\":\"" CMD_ID "\"}",
        "{\"Command\":{\"CommandId\":\"0f3c6d2a\"}}",
        "{\"Command\":{\"CommandId\":\"0f3c6d2a-1b2c-4d5e-8f90-12345678'abc\"}}",
        "{\"Command\":{\"CommandId\":\"0f3c6d2a-1b2c-4d5e-8f90-123456789abcd\"}}",
        "{\"Command\":{\"CommandId\":36}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gm_error err = {0};
        j = parse(bad[i]);
        CHECK(gm_ssm_read_sent(j, id, &err) == GM_ERR_PARSE && *err.message && id[0] == '\0');
        json_decref(j);
    }
}

static void test_parse_page(void)
{
    gm_logs_page p;
    const char *ok = "GMLOGS 1 dir=" DIR " enc=raw size=5 full=5 now=1700000000 "
                     "files=12:300,0:0\naGVsbG8=\n";
    CHECK(gm_logs_parse_page(ok, strlen(ok), &p, NULL) == GM_OK);
    CHECK(p.is_head && !p.gone && !p.gzip && p.size == 5 && p.full == 5);
    CHECK_STR(p.dir, DIR);
    CHECK(p.cursor.now == 1700000000 && p.cursor.n_files == 2);
    CHECK(p.cursor.ino[0] == 12 && p.cursor.size[0] == 300 && p.cursor.ino[1] == 0);
    CHECK(p.len == 5 && memcmp(p.data, "hello", 5) == 0);
    gm_logs_page_release(&p);

    const char *crlf = "GMLOGS 1 page off=17400\r\naGk=\r\n";
    CHECK(gm_logs_parse_page(crlf, strlen(crlf), &p, NULL) == GM_OK);
    CHECK(!p.is_head && p.offset == 17400 && p.len == 2 && memcmp(p.data, "hi", 2) == 0);
    gm_logs_page_release(&p);
    CHECK(gm_logs_parse_page("GMLOGS 1 gone\n", 14, &p, NULL) == GM_OK && p.gone);
    const char *empty = "GMLOGS 1 dir=" DIR " enc=gzip size=0 full=0 now=1 files=\n\n";
    CHECK(gm_logs_parse_page(empty, strlen(empty), &p, NULL) == GM_OK && p.len == 0 && p.gzip);
    gm_logs_page_release(&p);

    static const char *const bad[] = {
        "",
        "hello\n",
        "GMLOGS 2 gone\n",
        "GMLOGS 1\n",
        "GMLOGS 1 gone now\n",
        "GMLOGS 1 gone\nmore\n",
        "GMLOGS 1 page\naGk=\n",
        "GMLOGS 1 page off=-1\naGk=\n",
        "GMLOGS 1 page off=1 off=2\naGk=\n",
        "GMLOGS 1 page off=0\naGk\n",
        "GMLOGS 1 page off=0\naG k=\n",
        "GMLOGS 1 page off=0\na=Gk\n",
        "GMLOGS 1 page off=0\naGk===\n",
        "GMLOGS 1 page off=0\naGk=\nextra\n",
        "GMLOGS 1 dir=" DIR " enc=raw size=2 full=2 now=1\naGk=\n",
        "GMLOGS 1 dir=" DIR " enc=raw size=2 full=2 now=1 files= files=\naGk=\n",
        "GMLOGS 1 dir=" DIR " enc=raw size=2 full=2 now=1 files= mode=x\naGk=\n",
        "GMLOGS 1 dir=" DIR " enc=zip size=2 full=2 now=1 files=\naGk=\n",
        "GMLOGS 1 dir=/tmp/x enc=raw size=2 full=2 now=1 files=\naGk=\n",
        "GMLOGS 1 dir=/tmp/geusemaker-logs.AbC;rm${IFS}-rf enc=raw size=2 full=2 now=1 "
        "files=\naGk=\n",
        "GMLOGS 1 dir=" DIR " enc=raw size=3 full=3 now=1 files=\naGk=\n",
        "GMLOGS 1 dir=" DIR " enc=raw size=2 full=2 now=1 files=1:2,\naGk=\n",
        "GMLOGS 1 dir=" DIR " enc=raw size=2 full=2 now=1 files=1\naGk=\n",
        "GMLOGS 1 dir=" DIR " enc=raw size=2 full=2 now=1 files=1:2,1:2,1:2,1:2,1:2\naGk=\n",
        "GMLOGS 1 dir=" DIR " enc=raw size=2 full=2 now=x files=\naGk=\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gm_error err = {0};
        gm_status st = gm_logs_parse_page(bad[i], strlen(bad[i]), &p, &err);
        if (st != GM_ERR_PARSE)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        CHECK(st == GM_ERR_PARSE && *err.message && p.data == NULL);
    }
    CHECK(gm_logs_parse_page("GMLOGS 1 gone\0\n", 15, &p, NULL) == GM_ERR_PARSE);
    /* A page over the page size is refused. */
    size_t n = GM_LOGS_PAGE_BYTES + 3;
    unsigned char *data = calloc(1, n);
    char *enc = b64(data, n);
    char *text = malloc(strlen(enc) + 64);
    sprintf(text, "GMLOGS 1 page off=0\n%s\n", enc);
    CHECK(gm_logs_parse_page(text, strlen(text), &p, NULL) == GM_ERR_PARSE);
    free(text);
    free(enc);
    free(data);
}

static void test_lines_json(void)
{
    static const char raw[] = "a\n\nb\xff\xc3\xa9\xed\xa0\x80\n";
    json_t *l = gm_logs_lines_json(raw, sizeof raw - 1);
    CHECK(json_array_size(l) == 3);
    CHECK_STR(json_string_value(json_array_get(l, 0)), "a");
    CHECK_STR(json_string_value(json_array_get(l, 1)), "");
    CHECK_STR(json_string_value(json_array_get(l, 2)),
              "b\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(l);
    l = gm_logs_lines_json("no newline", 10);
    CHECK(json_array_size(l) == 1);
    json_decref(l);
    l = gm_logs_lines_json("", 0);
    CHECK(l && json_array_size(l) == 0);
    json_decref(l);
}

/* ---- the scripts ------------------------------------------------------------------- */

/* sh -n (dash here) and bash -n accept the script. */
static bool parses(const char *script)
{
    char path[] = "/tmp/gm_test_logs_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return false;
    bool ok = write(fd, script, strlen(script)) == (ssize_t)strlen(script);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "sh -n %s", path);
    ok = ok && system(cmd) == 0;
    snprintf(cmd, sizeof cmd, "command -v bash >/dev/null || exit 0; bash -n %s", path);
    ok = ok && system(cmd) == 0;
    unlink(path);
    return ok;
}

static char *collect(const gm_logs_query *q)
{
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_SMALL);
    gm_error err = {0};
    if (gm_logs_render_collect(q, &b, &err) != GM_OK) {
        fprintf(stderr, "render: %s\n", err.message);
        gm_buf_release(&b);
        return NULL;
    }
    return gm_buf_detach(&b);
}

static void test_collect_scripts(void)
{
    gm_logs_query q = {.service = GM_LOGS_N8N, .tail = 200};
    char *s = collect(&q);
    CHECK(s && strstr(s, "docker logs --tail 200 geusemaker-n8n 2>&1 | tail -c 1048577 "
                         ">\"$d/s\"\n"));
    CHECK(s && strstr(s, "d=$(mktemp -d /tmp/geusemaker-logs.XXXXXXXXXX) || exit 1\n"));
    CHECK(s && strstr(s, "-mmin +60") && strstr(s, "base64 -w 0") && strstr(s, "gzip -c"));
    CHECK(s && !strstr(s, "--since") && !strstr(s, "--until") && !strstr(s, "put()"));
    CHECK(s && parses(s));
    free(s);

    q = (gm_logs_query){
        .service = GM_LOGS_POSTGRES, .tail = GM_LOGS_TAIL_ALL, .since_s = 600, .follow = true};
    s = collect(&q);
    CHECK(s && strstr(s, "since=$((now - 600))\n"));
    CHECK(s && strstr(s, "docker logs --since \"$since\" --until \"$now\" geusemaker-postgres"));
    CHECK(s && parses(s));
    free(s);

    q = (gm_logs_query){.service = GM_LOGS_NGINX, .tail = 50, .since_s = 3600};
    s = collect(&q);
    CHECK(s && strstr(s, "journalctl -q --no-pager -o short-iso -n 50 --since \"@$since\" -u "
                         "nginx.service"));
    CHECK(s && strstr(s, "p='/var/log/nginx/error.log'") &&
          strstr(s, "p='/var/log/nginx/access.log'"));
    CHECK(s && strstr(s, "awk -v us=\"$cu\" -v ls=\"$cl\" \"$aw\" | tail -n 50"));
    CHECK(s && strstr(s, "put 'journal: nginx.service' 1"));
    free(s);
    q.since_s = 0; /* no offset kept: tail seeks from the end */
    s = collect(&q);
    CHECK(s && strstr(s, "else tail -n 50 \"$p\" | tail -c 1048577 >\"$d/s\"; fi\n"));
    CHECK(s && !strstr(s, "awk"));
    CHECK(s && parses(s));
    free(s);

    gm_logs_cursor c = {.now = 1700000000, .n_files = 3, .ino = {5, 0, 7}, .size = {10, 0, 70}};
    q = (gm_logs_query){.service = GM_LOGS_USERDATA, .tail = 200, .follow = true, .after = &c};
    s = collect(&q);
    CHECK(s && strstr(s, "since=1700000000\n") && !strstr(s, "tail -n") && !strstr(s, " -n 200"));
    CHECK(s && strstr(s, "if [ \"${1:-0}\" = 7 ] && [ \"$2\" -ge 70 ]; then o=70; fi"));
    CHECK(s && strstr(s, "--since \"@$since\" --until \"@$now\" -u geusemaker-stack.service -u "
                         "geusemaker-late.service"));
    CHECK(s && strstr(s, "put '/var/log/cloud-init-output.log' 0"));
    CHECK(s && parses(s));
    free(s);

    /* Every service renders and parses, first and later fetches. */
    for (int sv = 0; sv < GM_LOGS_N_SERVICES; sv++) {
        int files = sv == GM_LOGS_USERDATA ? 3 : sv == GM_LOGS_NGINX ? 2 : 0;
        gm_logs_cursor cc = {.now = 1, .n_files = files};
        for (int later = 0; later < 2; later++) {
            q = (gm_logs_query){.service = (gm_logs_service)sv,
                                .tail = 10,
                                .since_s = 60,
                                .follow = true,
                                .after = later ? &cc : NULL};
            s = collect(&q);
            CHECK(s && parses(s) && !strstr(s, "\n\n"));
            free(s);
        }
    }

    /* Refused: a cursor of another service, out-of-range values. */
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_SMALL);
    q = (gm_logs_query){.service = GM_LOGS_NGINX, .tail = 1, .after = &c};
    CHECK(gm_logs_render_collect(&q, &b, NULL) == GM_ERR_INTERNAL);
    q = (gm_logs_query){.service = GM_LOGS_N8N, .tail = -7};
    CHECK(gm_logs_render_collect(&q, &b, NULL) == GM_ERR_INVALID);
    q = (gm_logs_query){.service = GM_LOGS_N_SERVICES};
    CHECK(gm_logs_render_collect(&q, &b, NULL) == GM_ERR_INTERNAL);
    gm_buf_release(&b);
}

static void test_page_scripts(void)
{
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_SMALL);
    CHECK(gm_logs_render_page(DIR, 17400, false, &b, NULL) == GM_OK);
    CHECK(strstr(gm_buf_cstr(&b), "d='" DIR "'\n"));
    CHECK(strstr(gm_buf_cstr(&b), "tail -c +17401 \"$d/out\" | head -c 17400 | base64 -w 0"));
    CHECK(strstr(gm_buf_cstr(&b), "echo 'GMLOGS 1 page off=17400'"));
    CHECK(!strstr(gm_buf_cstr(&b), "rm -rf"));
    CHECK(parses(gm_buf_cstr(&b)));
    gm_buf_reset(&b);
    CHECK(gm_logs_render_page(DIR, 0, true, &b, NULL) == GM_OK);
    CHECK(strstr(gm_buf_cstr(&b), "rm -rf \"$d\"\n") && parses(gm_buf_cstr(&b)));
    gm_buf_reset(&b);
    CHECK(gm_logs_render_cleanup(DIR, &b, NULL) == GM_OK);
    CHECK(strstr(gm_buf_cstr(&b), "rm -rf '" DIR "'\n") && parses(gm_buf_cstr(&b)));
    static const char *const bad[] = {
        "/tmp/geusemaker-logs.AbC'; reboot", "/tmp",
        "/tmp/geusemaker-logs.AbCdEf012",    "/tmp/geusemaker-logs.AbCdEf01234",
        "/tmp/geusemaker-logs.AbCdEf01.3",   NULL};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(!gm_logs_dir_valid(bad[i]));
        CHECK(gm_logs_render_page(bad[i], 0, true, &b, NULL) == GM_ERR_INTERNAL);
        CHECK(gm_logs_render_cleanup(bad[i], &b, NULL) == GM_ERR_INTERNAL);
    }
    CHECK(gm_logs_render_page(DIR, -1, true, &b, NULL) == GM_ERR_INTERNAL);
    gm_buf_release(&b);
}

/* What the scripts read is what the stack writes: the UserData's logs and
 * units, the containers' names, nginx's log files. */
static void test_sources_match_the_stack(void)
{
    static const char *const MODELS[] = {"llama3.2:3b"};
    gm_stack_params p = {.name = "demo",
                         .tier = GM_TIER_DEV,
                         .region = "eu-west-1",
                         .instance_type = "t3.large",
                         .os = GM_OS_UBUNTU2404,
                         .efs_id = "fs-0123456789abcdef0",
                         .models = MODELS,
                         .n_models = 1,
                         .ssm_prefix = "/geusemaker/demo/"};
    gm_buf ud, compose;
    gm_buf_init(&ud, 1024 * 1024);
    gm_buf_init(&compose, 1024 * 1024);
    gm_error err = {0};
    CHECK(gm_userdata_render(&p, &ud, &err) == GM_OK);
    CHECK(gm_compose_render(&p, &compose, &err) == GM_OK);
    const char *u = gm_buf_cstr(&ud), *c = gm_buf_cstr(&compose);
    CHECK(strstr(u, "/var/log/geusemaker\"") && strstr(u, "$LOGDIR/userdata.log"));
    CHECK(strcmp(GM_USERDATA_LOG, "/var/log/geusemaker/userdata.log") == 0);
    CHECK(strstr(u, "/var/log/geusemaker/late-start.log") != NULL);
    CHECK(strstr(u, "geusemaker-stack.service") && strstr(u, "geusemaker-late.service"));
    CHECK(strstr(u, "error_log /var/log/nginx/error.log;") &&
          strstr(u, "access_log /var/log/nginx/access.log;"));
    CHECK(strstr(u, "systemctl restart nginx") != NULL); /* nginx runs on the host */
    static const char *const containers[] = {"n8n", "ollama", "qdrant", "crawl4ai", "postgres"};
    for (size_t i = 0; i < 5; i++) {
        char want[64];
        snprintf(want, sizeof want, "container_name: \"geusemaker-%s\"", containers[i]);
        CHECK(strstr(c, want) != NULL);
    }
    CHECK(!strstr(c, "container_name: \"geusemaker-nginx\""));
    gm_buf_release(&ud);
    gm_buf_release(&compose);
}

/* ---- the conversation over a mock transport ---------------------------------------- */

typedef struct capture {
    gm_buf out;
    char notes[2048];
} capture;

static gm_status capture_out(void *ctx, const char *data, size_t len, gm_error *err)
{
    capture *c = ctx;
    gm_status st = gm_buf_append(&c->out, data, len);
    return st == GM_OK ? GM_OK : gm_error_set(err, st, "capture full");
}

static void capture_note(void *ctx, const char *text)
{
    capture *c = ctx;
    size_t n = strlen(c->notes);
    snprintf(c->notes + n, sizeof c->notes - n, "%s\n", text);
}

static const char *const JSON_CT = "Content-Type: application/x-amz-json-1.1";
static const char SENT[] = "{\"Command\":{\"CommandId\":\"" CMD_ID "\",\"Status\":\"Pending\"}}";

static mock_reply json_reply(long status, const char *body)
{
    mock_reply r = {.status = status, .body = body, .headers = {JSON_CT}};
    return r;
}

static mock_reply error_reply(const char *code)
{
    static char bodies[8][160];
    static int k;
    char *b = bodies[k++ % 8];
    snprintf(b, 160, "{\"__type\":\"%s\",\"message\":\"injected\"}", code);
    return json_reply(400, b);
}

static mock_reply instances_reply(const char *state)
{
    static char body[512];
    snprintf(body, sizeof body,
             "<DescribeInstancesResponse><reservationSet><item><instancesSet><item>"
             "<instanceId>" INSTANCE "</instanceId><instanceState><code>16</code><name>%s</name>"
             "</instanceState></item></instancesSet></item></reservationSet>"
             "</DescribeInstancesResponse>",
             state);
    mock_reply r = {.status = 200, .body = body, .headers = {"Content-Type: text/xml"}};
    return r;
}

typedef struct convo {
    mock_transport *m;
    gm_aws_client *aws;
    capture cap;
    gm_logs_request req;
    gm_logs_result res;
    gm_error err;
} convo;

static void convo_init(convo *c, gm_logs_service service)
{
    memset(c, 0, sizeof *c);
    c->m = mock_new();
    c->aws = mock_client(c->m, "us-east-1", 1);
    gm_buf_init(&c->cap.out, 4 * 1024 * 1024);
    c->req = (gm_logs_request){.instance_id = INSTANCE,
                               .service = service,
                               .tail = 200,
                               .wait_ms = 60000,
                               .poll_ms = 1,
                               .retry_ms = 1,
                               .comment = "geusemaker logs demo",
                               .note = capture_note,
                               .output = capture_out,
                               .ctx = &c->cap};
}

static gm_status convo_run(convo *c)
{
    return gm_engine_logs(c->aws, &c->req, &c->res, &c->err);
}

static void convo_release(convo *c)
{
    gm_aws_client_free(c->aws);
    gm_buf_release(&c->cap.out);
}

static const char *request(const convo *c, int i)
{
    return i < c->m->n_requests ? c->m->bodies[i] : "";
}

static void test_wait_then_pages_of_gzip(void)
{
    /* ~60 KB of log that hardly compresses: three pages. */
    size_t n = 60000;
    unsigned char *log = malloc(n);
    unsigned x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        log[i] = (i % 61 == 60) ? '\n' : (unsigned char)(33 + (x >> 16) % 90);
    }
    size_t gz_len;
    unsigned char *gz = gzip_of(log, n, &gz_len);
    CHECK(gz_len > 2 * GM_LOGS_PAGE_BYTES);
    char *h = head_text(gz, gz_len, true, (long long)n);
    char *p1 = page_text(gz, gz_len, GM_LOGS_PAGE_BYTES, GM_LOGS_PAGE_BYTES);
    char *p2 = page_text(gz, gz_len, 2 * GM_LOGS_PAGE_BYTES, GM_LOGS_PAGE_BYTES);
    char *inv[3] = {invocation("Success", 0, h, NULL), invocation("Success", 0, p1, NULL),
                    invocation("Success", 0, p2, NULL)};
    char *progress = invocation("InProgress", -1, NULL, NULL);

    convo c;
    convo_init(&c, GM_LOGS_OLLAMA);
    mock_push(c.m, error_reply("InvalidInstanceId")); /* not registered yet */
    mock_push(c.m, instances_reply("running"));       /* so it is worth waiting */
    mock_push(c.m, error_reply("InvalidInstanceId"));
    mock_push(c.m, json_reply(200, SENT));
    mock_push(c.m, error_reply("InvocationDoesNotExist")); /* not there yet */
    mock_push(c.m, json_reply(200, progress));
    mock_push(c.m, json_reply(200, inv[0]));
    for (int i = 1; i < 3; i++) {
        mock_push(c.m, json_reply(200, SENT));
        mock_push(c.m, json_reply(200, inv[i]));
    }
    CHECK(convo_run(&c) == GM_OK);
    if (*c.err.message)
        fprintf(stderr, "logs: %s\n", c.err.message);
    CHECK(c.cap.out.len == n && memcmp(c.cap.out.data, log, n) == 0);
    CHECK(c.res.bytes == n && c.res.fetches == 1 && c.res.commands == 3 && !c.res.truncated);
    CHECK(strstr(c.cap.notes, "waiting for the SSM agent on " INSTANCE " to register") != NULL);
    CHECK(c.m->n_requests == 11 && c.m->next == 11);
    json_t *send = parse(request(&c, 3));
    CHECK_STR(json_string_value(json_object_get(send, "DocumentName")), "AWS-RunShellScript");
    CHECK_STR(json_string_value(json_array_get(json_object_get(send, "InstanceIds"), 0)), INSTANCE);
    CHECK_STR(json_string_value(json_object_get(send, "Comment")), "geusemaker logs demo");
    CHECK(json_integer_value(json_object_get(send, "TimeoutSeconds")) == 60);
    json_t *params = json_object_get(send, "Parameters");
    CHECK_STR(json_string_value(json_array_get(json_object_get(params, "executionTimeout"), 0)),
              "120");
    CHECK(json_array_size(json_object_get(params, "commands")) > 10);
    json_decref(send);
    CHECK(strstr(request(&c, 1), "Action=DescribeInstances") &&
          strstr(request(&c, 1), "InstanceId.1=" INSTANCE));
    CHECK(strstr(request(&c, 4), "\"CommandId\": \"" CMD_ID "\"") ||
          strstr(request(&c, 4), "\"CommandId\":\"" CMD_ID "\""));
    CHECK(strstr(request(&c, 7), "tail -c +17401") && !strstr(request(&c, 7), "rm -rf"));
    CHECK(strstr(request(&c, 9), "tail -c +34801") && strstr(request(&c, 9), "rm -rf"));
    convo_release(&c);

    /* The last page comes back short: an error, and the folder is removed. */
    char *p2short = page_text(gz, gz_len - 10, 2 * GM_LOGS_PAGE_BYTES, GM_LOGS_PAGE_BYTES);
    char *inv2 = invocation("Success", 0, p2short, NULL);
    convo_init(&c, GM_LOGS_OLLAMA);
    mock_push(c.m, json_reply(200, SENT));
    mock_push(c.m, json_reply(200, inv[0]));
    mock_push(c.m, json_reply(200, SENT));
    mock_push(c.m, json_reply(200, inv[1]));
    mock_push(c.m, json_reply(200, SENT));
    mock_push(c.m, json_reply(200, inv2));
    mock_push(c.m, json_reply(200, SENT)); /* the clean-up */
    CHECK(convo_run(&c) == GM_ERR_PARSE);
    CHECK(strstr(c.err.message, "cut short") != NULL);
    CHECK(c.m->n_requests == 7 && strstr(request(&c, 6), "rm -rf '" DIR "'"));
    convo_release(&c);

    /* A corrupt gzip stream is an error, not garbage. */
    gz[100] ^= 0x55;
    char *hbad = head_text(gz, GM_LOGS_PAGE_BYTES, true, (long long)n);
    char *invbad = invocation("Success", 0, hbad, NULL);
    convo_init(&c, GM_LOGS_OLLAMA);
    mock_push(c.m, json_reply(200, SENT));
    mock_push(c.m, json_reply(200, invbad));
    CHECK(convo_run(&c) == GM_ERR_PARSE);
    convo_release(&c);

    free(hbad);
    free(invbad);
    free(p2short);
    free(inv2);
    for (int i = 0; i < 3; i++)
        free(inv[i]);
    free(progress);
    free(h);
    free(p1);
    free(p2);
    free(gz);
    free(log);
}

static void test_small_raw_and_truncation_note(void)
{
    const unsigned char text[] = "one\ntwo\n";
    char *h = head_text(text, 8, false, 5000000);
    char *inv = invocation("Success", 0, h, NULL);
    convo c;
    convo_init(&c, GM_LOGS_N8N);
    mock_push(c.m, json_reply(200, SENT));
    mock_push(c.m, json_reply(200, inv));
    CHECK(convo_run(&c) == GM_OK);
    CHECK(c.cap.out.len == 8 && memcmp(c.cap.out.data, "one\ntwo\n", 8) == 0);
    CHECK(c.res.truncated && c.res.full_bytes == 5000000 && c.res.commands == 1);
    CHECK(strstr(c.cap.notes, "only its last 1048576 are shown") != NULL);
    convo_release(&c);
    free(inv);
    free(h);
}

static void test_failures(void)
{
    convo c;
    /* Never registers, no wait. */
    convo_init(&c, GM_LOGS_N8N);
    c.req.wait_ms = 0;
    mock_push(c.m, error_reply("InvalidInstanceId"));
    mock_push(c.m, instances_reply("pending"));
    CHECK(convo_run(&c) == GM_ERR_TIMEOUT);
    CHECK(strstr(c.err.message, "offline") && strstr(c.err.message, INSTANCE));
    convo_release(&c);

    /* A stopped instance: no wait. */
    convo_init(&c, GM_LOGS_N8N);
    mock_push(c.m, error_reply("InvalidInstanceId"));
    mock_push(c.m, instances_reply("stopped"));
    CHECK(convo_run(&c) == GM_ERR_CONFLICT);
    CHECK(strstr(c.err.message, "is stopped") != NULL && c.m->n_requests == 2);
    convo_release(&c);

    /* The instance is gone. */
    convo_init(&c, GM_LOGS_N8N);
    mock_push(c.m, error_reply("InvalidInstanceId"));
    mock_reply gone = {.status = 400,
                       .body = "<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>"
                               "<Message>no</Message></Error></Errors></Response>",
                       .headers = {"Content-Type: text/xml"}};
    mock_push(c.m, gone);
    CHECK(convo_run(&c) == GM_ERR_CONFLICT);
    CHECK(strstr(c.err.message, "does not exist any more") != NULL);
    convo_release(&c);

    /* The script fails on the instance. */
    char *failed = invocation("Failed", 1, "", "mktemp: No space left on device\nmore");
    convo_init(&c, GM_LOGS_N8N);
    mock_push(c.m, json_reply(200, SENT));
    mock_push(c.m, json_reply(200, failed));
    CHECK(convo_run(&c) == GM_ERR_AWS);
    CHECK(strstr(c.err.message, "(exit code 1): mktemp: No space left on device") &&
          !strstr(c.err.message, "more"));
    convo_release(&c);
    free(failed);

    /* Registered, but the agent never takes the command. */
    char *inv = invocation_with("TimedOut", "DeliveryTimedOut", -1, "", "");
    convo_init(&c, GM_LOGS_N8N);
    mock_push(c.m, json_reply(200, SENT));
    mock_push(c.m, json_reply(200, inv));
    CHECK(convo_run(&c) == GM_ERR_TIMEOUT);
    CHECK(strstr(c.err.message, "registered but offline") != NULL);
    convo_release(&c);
    free(inv);

    /* Any other AWS error is passed on as it is. */
    convo_init(&c, GM_LOGS_N8N);
    mock_push(c.m, error_reply("AccessDeniedException"));
    CHECK(convo_run(&c) != GM_OK);
    CHECK(strcmp(c.err.aws_code, "AccessDeniedException") == 0 && c.m->n_requests == 1);
    convo_release(&c);

    /* The output is not ours. */
    char *junk = invocation("Success", 0, "hello", "");
    convo_init(&c, GM_LOGS_N8N);
    mock_push(c.m, json_reply(200, SENT));
    mock_push(c.m, json_reply(200, junk));
    CHECK(convo_run(&c) == GM_ERR_PARSE);
    convo_release(&c);
    free(junk);
}

static void test_interrupt(void)
{
    volatile sig_atomic_t flag = SIGINT;
    convo c;
    convo_init(&c, GM_LOGS_N8N);
    c.req.interrupt = &flag;
    mock_push(c.m, json_reply(200, SENT));
    CHECK(convo_run(&c) == GM_ERR_INTERRUPTED);
    CHECK(c.m->n_requests == 1); /* sent, never polled */
    convo_release(&c);

    convo_init(&c, GM_LOGS_N8N);
    c.req.interrupt = &flag;
    c.req.wait_ms = 60000;
    mock_push(c.m, error_reply("InvalidInstanceId"));
    mock_push(c.m, instances_reply("running"));
    CHECK(convo_run(&c) == GM_ERR_INTERRUPTED);
    convo_release(&c);

    convo_init(&c, GM_LOGS_N8N);
    c.req.output = NULL;
    CHECK(convo_run(&c) == GM_ERR_INTERNAL);
    convo_release(&c);
}

int main(void)
{
    setenv("AWS_ACCESS_KEY_ID", "test", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "test", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    unsetenv("AWS_ENDPOINT_URL");
    GM_RUN(test_services);
    GM_RUN(test_durations);
    GM_RUN(test_tail);
    GM_RUN(test_instance_of);
    GM_RUN(test_read_invocation);
    GM_RUN(test_read_sent);
    GM_RUN(test_parse_page);
    GM_RUN(test_lines_json);
    GM_RUN(test_collect_scripts);
    GM_RUN(test_page_scripts);
    GM_RUN(test_sources_match_the_stack);
    GM_RUN(test_wait_then_pages_of_gzip);
    GM_RUN(test_small_raw_and_truncation_note);
    GM_RUN(test_failures);
    GM_RUN(test_interrupt);
    GM_TEST_END();
}
