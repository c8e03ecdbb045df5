/* The health layer: the document parser and verdict, the probe (canned
 * responses, then the real libcurl transport against local HTTP servers on
 * 127.0.0.1 that serve healthy, degraded and broken documents, or never
 * answer), the wait loop's deadline, and the loopback rule.
 *
 * Also a small driver for the integration tests:
 *   test_health --probe URL [--timeout-ms N]
 *   test_health --wait URL --deadline-ms N [--interval-ms N]
 * prints one JSON object (status, error, http_status, elapsed_ms, attempts,
 * doc) and exits 0. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/timeutil.h"
#include "gm_test.h"
#include "health/health.h"
#include "mock_transport.h"
#include "stack/stack.h"

static const char *HEALTHY =
    "{\"schema\":1,\"deployment\":\"demo\",\"tier\":\"dev\",\"overall\":\"healthy\","
    "\"checked_at\":\"2025-06-01T12:00:00Z\",\"services\":{"
    "\"postgres\":{\"state\":\"healthy\",\"detail\":\"healthcheck passing\",\"critical\":true},"
    "\"n8n\":{\"state\":\"healthy\",\"detail\":\"healthcheck passing\",\"critical\":true},"
    "\"qdrant\":{\"state\":\"healthy\",\"detail\":\"healthcheck passing\",\"critical\":false},"
    "\"ollama\":{\"state\":\"healthy\",\"detail\":\"healthcheck passing\",\"critical\":false},"
    "\"crawl4ai\":{\"state\":\"healthy\",\"detail\":\"healthcheck passing\",\"critical\":false}}}";

static const char *DEGRADED =
    "{\"overall\":\"degraded\",\"checked_at\":\"2025-06-01T12:00:00Z\",\"services\":{"
    "\"postgres\":{\"state\":\"healthy\",\"critical\":true},"
    "\"n8n\":{\"state\":\"healthy\",\"critical\":true},"
    "\"qdrant\":{\"state\":\"unhealthy\",\"detail\":\"healthcheck failing\"},"
    "\"ollama\":{\"state\":\"healthy\"},\"crawl4ai\":{\"state\":\"healthy\"}}}";

static const char *STARTING =
    "{\"overall\":\"starting\",\"checked_at\":\"2025-06-01T12:00:00Z\",\"services\":{"
    "\"postgres\":{\"state\":\"healthy\",\"critical\":true},"
    "\"n8n\":{\"state\":\"healthy\",\"critical\":true},"
    "\"ollama\":{\"state\":\"starting\",\"detail\":\"pulling model llama3.1:8b\"},"
    "\"crawl4ai\":{\"state\":\"starting\",\"detail\":\"waiting for its image\"}}}";

/* Claims healthy over an unhealthy critical service. */
static const char *LYING =
    "{\"overall\":\"healthy\",\"checked_at\":\"2025-06-01T12:00:00Z\",\"services\":{"
    "\"postgres\":{\"state\":\"healthy\",\"critical\":true},"
    "\"n8n\":{\"state\":\"unhealthy\",\"detail\":\"healthcheck failing\",\"critical\":true},"
    "\"ollama\":{\"state\":\"starting\"}}}";

static gm_status parse(const char *s, gm_health_doc *d, gm_error *err)
{
    return gm_health_parse(s, strlen(s), d, err);
}

/* ---- parser -------------------------------------------------------------- */

static void test_paths_agree(void)
{
    CHECK_STR(GM_HEALTH_DOC_PATH, GM_HEALTH_PATH);
    CHECK_STR(GM_HEALTH_READY_URL_PATH, GM_HEALTH_READY_PATH);
    CHECK_INT(GM_HEALTH_MAX_BOOT_STEPS, GM_HEALTH_BOOT_STEPS_MAX);
}

static void test_parse_healthy(void)
{
    gm_health_doc d;
    gm_error err = {0};
    CHECK_INT(parse(HEALTHY, &d, &err), GM_OK);
    CHECK_INT(d.overall, GM_HEALTH_HEALTHY);
    CHECK_INT(d.verdict, GM_HEALTH_HEALTHY);
    CHECK_STR(d.reason, "");
    CHECK_INT(d.n_services, 5);
    CHECK_STR(d.deployment, "demo");
    CHECK_STR(d.tier, "dev");
    CHECK_STR(d.checked_at, "2025-06-01T12:00:00Z");
    CHECK_INT(d.checked_at_epoch, 1748779200);
    const gm_health_service *n8n = gm_health_doc_service(&d, "n8n");
    CHECK(n8n && n8n->critical && n8n->state == GM_HEALTH_HEALTHY);
    CHECK(!gm_health_doc_service(&d, "qdrant")->critical);
    CHECK(gm_health_doc_service(&d, "nope") == NULL);
    CHECK(gm_health_doc_ready(&d));
    CHECK_INT(d.age_s, -1);
}

static void test_parse_verdicts(void)
{
    gm_health_doc d;
    gm_error err = {0};
    CHECK_INT(parse(DEGRADED, &d, &err), GM_OK);
    CHECK_INT(d.verdict, GM_HEALTH_DEGRADED);
    CHECK_STR(d.reason, "qdrant is unhealthy (healthcheck failing)");
    CHECK(gm_health_doc_ready(&d)); /* n8n usable: the ALB keeps the target */

    CHECK_INT(parse(STARTING, &d, &err), GM_OK);
    CHECK_INT(d.verdict, GM_HEALTH_STARTING);
    CHECK_STR(d.reason, "ollama is starting (pulling model llama3.1:8b); crawl4ai is starting "
                        "(waiting for its image)");
    CHECK(gm_health_doc_ready(&d));

    /* The verdict is recomputed: "healthy" over an unhealthy n8n is unhealthy,
     * critical services named first. */
    CHECK_INT(parse(LYING, &d, &err), GM_OK);
    CHECK_INT(d.overall, GM_HEALTH_HEALTHY);
    CHECK_INT(d.verdict, GM_HEALTH_UNHEALTHY);
    CHECK(strncmp(d.reason, "n8n is unhealthy", 16) == 0);
    CHECK(strstr(d.reason, "ollama is starting") != NULL);
    CHECK(!gm_health_doc_ready(&d));

    /* Published overall worse than the services: the worse one wins. */
    const char *worse = "{\"overall\":\"unhealthy\",\"checked_at\":\"2025-06-01T12:00:00Z\","
                        "\"services\":{\"n8n\":{\"state\":\"healthy\",\"critical\":true}}}";
    CHECK_INT(parse(worse, &d, &err), GM_OK);
    CHECK_INT(d.verdict, GM_HEALTH_UNHEALTHY);
    CHECK_STR(d.reason, "the instance reports 'unhealthy'");

    const char *empty = "{\"overall\":\"healthy\",\"checked_at\":\"2025-06-01T12:00:00Z\","
                        "\"services\":{}}";
    CHECK_INT(parse(empty, &d, &err), GM_OK);
    CHECK_INT(d.verdict, GM_HEALTH_UNHEALTHY);
    CHECK(!gm_health_doc_ready(&d));

    /* Detail: control characters replaced, long text truncated. */
    char big[1200];
    char longdetail[700];
    memset(longdetail, 'x', sizeof longdetail - 1);
    longdetail[sizeof longdetail - 1] = '\0';
    snprintf(big, sizeof big,
             "{\"overall\":\"starting\",\"checked_at\":\"2025-06-01T12:00:00+02:00\","
             "\"services\":{\"a\":{\"state\":\"starting\",\"detail\":\"bad\\u001b[31m\"},"
             "\"b\":{\"state\":\"starting\",\"detail\":\"%s\"}}}",
             longdetail);
    CHECK_INT(parse(big, &d, &err), GM_OK);
    CHECK_STR(d.services[0].detail, "bad?[31m");
    CHECK_INT(strlen(d.services[1].detail), sizeof d.services[1].detail - 1);
    CHECK_INT(d.checked_at_epoch, 1748772000);
}

static void expect_parse_error(const char *doc, gm_status want, const char *fragment)
{
    gm_health_doc d;
    memset(&d, 0x5a, sizeof d);
    gm_error err = {0};
    gm_status st = gm_health_parse(doc, strlen(doc), &d, &err);
    CHECK_INT(st, want);
    if (!strstr(err.message, fragment)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.message, fragment);
        CHECK(0);
    }
    CHECK_INT(d.verdict, GM_HEALTH_UNKNOWN);
    CHECK_INT(d.n_services, 0);
}

static void test_parse_errors(void)
{
    expect_parse_error("", GM_ERR_PARSE, "empty");
    expect_parse_error("<html>502 Bad Gateway</html>", GM_ERR_PARSE, "not JSON");
    expect_parse_error("{\"overall\":\"healthy\"", GM_ERR_PARSE, "not JSON");
    expect_parse_error("[1,2]", GM_ERR_PARSE, "not a JSON object");
    expect_parse_error("{\"checked_at\":\"2025-06-01T12:00:00Z\",\"services\":{}}", GM_ERR_PARSE,
                       "'overall'");
    expect_parse_error("{\"overall\":\"fine\",\"checked_at\":\"2025-06-01T12:00:00Z\","
                       "\"services\":{}}",
                       GM_ERR_PARSE, "'overall'");
    expect_parse_error("{\"overall\":\"healthy\",\"checked_at\":\"yesterday\",\"services\":{}}",
                       GM_ERR_PARSE, "'checked_at'");
    expect_parse_error("{\"overall\":\"healthy\",\"checked_at\":\"2025-06-01T12:00:00Z\","
                       "\"services\":[]}",
                       GM_ERR_PARSE, "'services'");
    expect_parse_error("{\"overall\":\"healthy\",\"checked_at\":\"2025-06-01T12:00:00Z\","
                       "\"services\":{\"n8n\":{\"detail\":\"x\"}}}",
                       GM_ERR_PARSE, "service 'n8n' of the health document has no valid 'state'");
    expect_parse_error("{\"overall\":\"healthy\",\"checked_at\":\"2025-06-01T12:00:00Z\","
                       "\"services\":{\"n8n\":\"healthy\"}}",
                       GM_ERR_PARSE, "not an object");
    expect_parse_error("{\"overall\":\"healthy\",\"checked_at\":\"2025-06-01T12:00:00Z\","
                       "\"services\":{\"n8n\":{\"state\":\"ok\"}}}",
                       GM_ERR_PARSE, "no valid 'state'");
    expect_parse_error("{\"overall\":\"healthy\",\"overall\":\"unhealthy\","
                       "\"checked_at\":\"2025-06-01T12:00:00Z\",\"services\":{}}",
                       GM_ERR_PARSE, "duplicate");
    expect_parse_error("{\"overall\":\"healthy\",\"checked_at\":\"2025-06-01T12:00:00Z\","
                       "\"services\":{\"a-very-long-service-name-over-31-characters\":"
                       "{\"state\":\"healthy\"}}}",
                       GM_ERR_PARSE, "service name");
    char many[4096];
    size_t n = (size_t)snprintf(many, sizeof many,
                                "{\"overall\":\"healthy\",\"checked_at\":\"2025-06-01T12:00:00Z\","
                                "\"services\":{");
    for (int i = 0; i <= GM_HEALTH_MAX_SERVICES; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%s\"s%d\":{\"state\":\"healthy\"}",
                              i ? "," : "", i);
    snprintf(many + n, sizeof many - n, "}}");
    expect_parse_error(many, GM_ERR_PARSE, "more than 16 services");

    char *huge = malloc(GM_HEALTH_DOC_MAX + 2);
    memset(huge, ' ', GM_HEALTH_DOC_MAX + 1);
    huge[GM_HEALTH_DOC_MAX + 1] = '\0';
    expect_parse_error(huge, GM_ERR_LIMIT, "exceeds");
    free(huge);
}

static void test_staleness_and_json(void)
{
    gm_health_doc d;
    gm_error err = {0};
    CHECK_INT(parse(HEALTHY, &d, &err), GM_OK);
    gm_health_apply_age(&d, d.checked_at_epoch + 100, GM_HEALTH_STALE_S);
    CHECK(!d.stale);
    CHECK_INT(d.age_s, 100);
    CHECK_INT(d.verdict, GM_HEALTH_HEALTHY);
    gm_health_apply_age(&d, d.checked_at_epoch + 600, GM_HEALTH_STALE_S);
    CHECK(d.stale);
    CHECK_INT(d.verdict, GM_HEALTH_UNHEALTHY);
    CHECK(strstr(d.reason, "stale: checked 600 s ago") != NULL);
    CHECK(!gm_health_doc_ready(&d));

    json_t *j = gm_health_doc_to_json(&d);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "verdict")), "unhealthy");
    CHECK(json_is_true(json_object_get(j, "stale")));
    CHECK_INT(json_integer_value(json_object_get(j, "age_s")), 600);
    json_t *svc = json_object_get(json_object_get(j, "services"), "n8n");
    CHECK_STR(json_string_value(json_object_get(svc, "state")), "healthy");
    CHECK(json_is_true(json_object_get(svc, "critical")));
    json_decref(j);
    CHECK_STR(gm_health_state_name(GM_HEALTH_DEGRADED), "degraded");
    CHECK_STR(gm_health_state_name((gm_health_state)42), "unknown");
}

/* ---- the boot object ---------------------------------------------------- */

/* A document whose "boot" is the given JSON text. */
static char *with_boot(const char *boot)
{
    static const char head[] =
        "{\"overall\":\"healthy\",\"checked_at\":\"2025-06-01T12:00:00Z\",\"services\":{"
        "\"n8n\":{\"state\":\"healthy\",\"critical\":true}},\"boot\":";
    size_t n = strlen(head) + strlen(boot) + 2;
    char *s = malloc(n);
    CHECK(s != NULL);
    if (s)
        snprintf(s, n, "%s%s}", head, boot);
    return s;
}

static const char *BOOT =
    "{\"started\":\"2025-06-01T11:50:00Z\",\"ready\":\"2025-06-01T11:52:05Z\","
    "\"finished\":\"2025-06-01T11:52:30Z\",\"models_ready\":null,\"baked\":true,\"steps\":["
    "{\"name\":\"packages\",\"seconds\":0,\"skipped\":true},"
    "{\"name\":\"data\",\"seconds\":3,\"skipped\":false},"
    "{\"name\":\"images\",\"seconds\":1,\"skipped\":true},"
    "{\"name\":\"stack\",\"seconds\":97}]}";

static void test_boot(void)
{
    gm_health_doc d;
    gm_error err = {0};
    char *s = with_boot(BOOT);
    CHECK_INT(parse(s, &d, &err), GM_OK);
    free(s);
    const gm_health_boot *b = &d.boot;
    CHECK(b->present && b->baked);
    CHECK_STR(b->error, "");
    CHECK_STR(b->started, "2025-06-01T11:50:00Z");
    CHECK_STR(b->models_ready, "");
    CHECK_INT(b->models_ready_epoch, 0);
    CHECK_INT(gm_health_boot_after(b, b->ready_epoch), 125);
    CHECK_INT(gm_health_boot_after(b, b->finished_epoch), 150);
    CHECK_INT(gm_health_boot_after(b, b->models_ready_epoch), -1);
    CHECK_INT(b->n_steps, 4);
    CHECK_STR(b->steps[0].name, "packages");
    CHECK(b->steps[0].skipped && !b->steps[1].skipped && !b->steps[3].skipped);
    CHECK_INT(b->steps[3].seconds, 97);

    json_t *j = gm_health_doc_to_json(&d);
    json_t *jb = json_object_get(j, "boot");
    CHECK(json_is_object(jb));
    CHECK_STR(json_string_value(json_object_get(jb, "finished")), "2025-06-01T11:52:30Z");
    CHECK(json_is_null(json_object_get(jb, "models_ready")));
    CHECK(json_is_true(json_object_get(jb, "baked")));
    CHECK_INT(json_integer_value(json_object_get(jb, "seconds")), 150);
    CHECK_INT(json_integer_value(json_object_get(jb, "ready_seconds")), 125);
    json_t *st = json_array_get(json_object_get(jb, "steps"), 2);
    CHECK_STR(json_string_value(json_object_get(st, "name")), "images");
    CHECK(json_is_true(json_object_get(st, "skipped")));
    CHECK(json_object_get(j, "boot_error") == NULL);
    json_decref(j);

    /* Absent or null: no boot, no error (instances made before it). */
    CHECK_INT(parse(HEALTHY, &d, &err), GM_OK);
    CHECK(!d.boot.present && d.boot.error[0] == '\0');
    j = gm_health_doc_to_json(&d);
    CHECK(json_is_null(json_object_get(j, "boot")));
    json_decref(j);
    s = with_boot("null");
    CHECK_INT(parse(s, &d, &err), GM_OK);
    CHECK(!d.boot.present && d.boot.error[0] == '\0');
    free(s);
    /* Still running: no finish time, no step yet. */
    s = with_boot("{\"started\":\"2025-06-01T11:50:00Z\",\"finished\":null,\"steps\":[]}");
    CHECK_INT(parse(s, &d, &err), GM_OK);
    CHECK(d.boot.present && !d.boot.baked && d.boot.n_steps == 0);
    CHECK_INT(gm_health_boot_after(&d.boot, d.boot.finished_epoch), -1);
    free(s);
}

/* A malformed boot object is left out, with the reason; the document and its
 * verdict stand. */
static void test_boot_malformed(void)
{
    static const struct {
        const char *boot, *why;
    } cases[] = {
        {"[]", "not an object"},
        {"{\"steps\":[]}", "'started'"},
        {"{\"started\":\"yesterday\",\"steps\":[]}", "'started'"},
        {"{\"started\":\"2025-06-01T11:50:00Z\",\"ready\":5,\"steps\":[]}", "neither"},
        {"{\"started\":\"2025-06-01T11:50:00Z\",\"baked\":\"yes\",\"steps\":[]}", "'baked'"},
        {"{\"started\":\"2025-06-01T11:50:00Z\"}", "'steps'"},
        {"{\"started\":\"2025-06-01T11:50:00Z\",\"steps\":[{\"name\":\"Bad Name\","
         "\"seconds\":1}]}",
         "'name'"},
        {"{\"started\":\"2025-06-01T11:50:00Z\",\"steps\":[{\"name\":\"\",\"seconds\":1}]}",
         "'name'"},
        {"{\"started\":\"2025-06-01T11:50:00Z\",\"steps\":[{\"name\":"
         "\"a234567890123456789012345678901x\",\"seconds\":1}]}",
         "'name'"},
        {"{\"started\":\"2025-06-01T11:50:00Z\",\"steps\":[{\"name\":\"x\",\"seconds\":-1}]}",
         "'seconds'"},
        {"{\"started\":\"2025-06-01T11:50:00Z\",\"steps\":[{\"name\":\"x\",\"seconds\":1.5}]}",
         "'seconds'"},
        {"{\"started\":\"2025-06-01T11:50:00Z\",\"steps\":[{\"name\":\"x\",\"seconds\":"
         "99999999}]}",
         "'seconds'"},
        {"{\"started\":\"2025-06-01T11:50:00Z\",\"steps\":[{\"name\":\"x\",\"seconds\":1,"
         "\"skipped\":1}]}",
         "'skipped'"},
        {"{\"started\":\"2025-06-01T11:50:00Z\",\"steps\":[7]}", "not an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        gm_health_doc d;
        gm_error err = {0};
        char *s = with_boot(cases[i].boot);
        CHECK_INT(parse(s, &d, &err), GM_OK);
        free(s);
        CHECK(!d.boot.present);
        CHECK(strstr(d.boot.error, cases[i].why) != NULL);
        CHECK_INT(d.boot.n_steps, 0);
        CHECK_INT(d.verdict, GM_HEALTH_HEALTHY);
        json_t *j = gm_health_doc_to_json(&d);
        CHECK(json_is_null(json_object_get(j, "boot")));
        CHECK(strstr(json_string_value(json_object_get(j, "boot_error")), cases[i].why) != NULL);
        json_decref(j);
    }
    /* At most GM_HEALTH_MAX_BOOT_STEPS steps: one more is refused. */
    char boot[4096] = "{\"started\":\"2025-06-01T11:50:00Z\",\"steps\":[";
    for (int i = 0; i <= GM_HEALTH_MAX_BOOT_STEPS; i++)
        snprintf(boot + strlen(boot), sizeof boot - strlen(boot),
                 "%s{\"name\":\"s%d\",\"seconds\":%d}", i ? "," : "", i, i);
    strcat(boot, "]}");
    gm_health_doc d;
    gm_error err = {0};
    char *s = with_boot(boot);
    CHECK_INT(parse(s, &d, &err), GM_OK);
    free(s);
    CHECK(!d.boot.present && strstr(d.boot.error, "more than 24 steps"));
    /* Exactly the maximum is fine. */
    char *cut = strstr(boot, ",{\"name\":\"s24\"");
    CHECK(cut != NULL);
    if (cut)
        strcpy(cut, "]}");
    s = with_boot(boot);
    CHECK_INT(parse(s, &d, &err), GM_OK);
    free(s);
    CHECK(d.boot.present);
    CHECK_INT(d.boot.n_steps, GM_HEALTH_MAX_BOOT_STEPS);
    CHECK_INT(d.boot.steps[23].seconds, 23);
}

/* ---- probe against canned responses ------------------------------------- */

static void test_fetch_mock(void)
{
    mock_transport *m = mock_new();
    mock_push(m, (mock_reply){.status = 200,
                              .body = HEALTHY,
                              .headers = {"Date: Sun, 01 Jun 2025 12:01:00 GMT"}});
    mock_push(m, (mock_reply){.status = 200,
                              .body = HEALTHY,
                              .headers = {"Date: Sun, 01 Jun 2025 13:00:00 GMT"}});
    mock_push(m, (mock_reply){.status = 404, .body = "<html>not found</html>"});
    mock_push(m, (mock_reply){.status = 502, .body = "bad gateway"});
    mock_push(m, (mock_reply){.fail = GM_ERR_TIMEOUT});
    mock_push(m, (mock_reply){.fail = GM_ERR_NETWORK});
    mock_push(m, (mock_reply){.status = 200, .body = "{\"overall\":"});
    const char *url = "http://203.0.113.9/geusemaker/health.json";
    gm_health_doc d;
    gm_error err = {0};

    CHECK_INT(gm_health_fetch(&m->base, url, 2000, &d, &err), GM_OK);
    CHECK_INT(d.verdict, GM_HEALTH_HEALTHY);
    CHECK_INT(d.age_s, 60);
    CHECK_STR(m->methods[0], "GET");
    CHECK_STR(m->urls[0], url);
    CHECK_STR(gm_headers_get(&m->headers[0], "Accept"), "application/json");

    CHECK_INT(gm_health_fetch(&m->base, url, 2000, &d, &err), GM_OK);
    CHECK(d.stale);
    CHECK_INT(d.verdict, GM_HEALTH_UNHEALTHY);

    err = (gm_error){0};
    CHECK_INT(gm_health_fetch(&m->base, url, 2000, &d, &err), GM_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "HTTP 404") && strstr(err.message, url));
    CHECK_INT(err.http_status, 404);

    err = (gm_error){0};
    CHECK_INT(gm_health_fetch(&m->base, url, 2000, &d, &err), GM_ERR_NETWORK);
    CHECK(strstr(err.message, "answered HTTP 502") != NULL);
    CHECK_INT(err.http_status, 502);

    err = (gm_error){0};
    CHECK_INT(gm_health_fetch(&m->base, url, 1500, &d, &err), GM_ERR_TIMEOUT);
    CHECK(strstr(err.message, "did not answer within 1500 ms") && strstr(err.message, url));

    err = (gm_error){0};
    CHECK_INT(gm_health_fetch(&m->base, url, 1500, &d, &err), GM_ERR_NETWORK);
    CHECK(strstr(err.message, "cannot reach health endpoint") != NULL);

    err = (gm_error){0};
    CHECK_INT(gm_health_fetch(&m->base, url, 1500, &d, &err), GM_ERR_PARSE);
    CHECK(strstr(err.message, "malformed health document from") != NULL);

    err = (gm_error){0};
    CHECK_INT(gm_health_fetch(&m->base, url, 0, &d, &err), GM_ERR_TIMEOUT);
    gm_transport_free(&m->base);
}

static void test_fetch_body_limit(void)
{
    mock_transport *m = mock_new();
    char *big = malloc(GM_HEALTH_DOC_MAX + 10);
    memset(big, 'x', GM_HEALTH_DOC_MAX + 9);
    big[GM_HEALTH_DOC_MAX + 9] = '\0';
    mock_push(m, (mock_reply){.status = 200, .body = big});
    gm_health_doc d;
    gm_error err = {0};
    CHECK_INT(gm_health_fetch(&m->base, "http://h/x", 1000, &d, &err), GM_ERR_LIMIT);
    CHECK(strstr(err.message, "exceeds 65536 bytes") != NULL);
    gm_transport_free(&m->base);
    free(big);
}

typedef struct progress_log {
    int calls;
    int last_attempt;
    gm_status statuses[MOCK_MAX];
    bool stop_when_ready;
} progress_log;

static bool on_progress(void *ctx, const gm_health_progress *p)
{
    progress_log *l = ctx;
    if (l->calls < MOCK_MAX)
        l->statuses[l->calls] = p->status;
    l->calls++;
    l->last_attempt = p->attempt;
    if (p->status != GM_OK)
        CHECK(p->error && *p->error);
    else
        CHECK(p->doc != NULL);
    return !(l->stop_when_ready && p->doc && gm_health_doc_ready(p->doc));
}

static void test_wait_mock(void)
{
    mock_transport *m = mock_new();
    mock_push(m, (mock_reply){.fail = GM_ERR_NETWORK});
    mock_push(m, (mock_reply){.status = 404});
    mock_push(m, (mock_reply){.status = 200, .body = STARTING});
    mock_push(m, (mock_reply){.status = 200, .body = HEALTHY});
    progress_log l = {0};
    gm_health_doc d;
    gm_error err = {0};
    int64_t t0 = gm_now_ms();
    CHECK_INT(gm_health_wait(&m->base, "http://h/x", t0 + 5000, 1, on_progress, &l, &d, &err),
              GM_OK);
    CHECK_INT(d.verdict, GM_HEALTH_HEALTHY);
    CHECK_INT(l.calls, 4);
    CHECK_INT(l.statuses[0], GM_ERR_NETWORK);
    CHECK_INT(l.statuses[1], GM_ERR_NOT_FOUND);
    CHECK_INT(l.statuses[2], GM_OK);
    CHECK_INT(m->n_requests, 4);
    gm_transport_free(&m->base);

    /* The caller may stop once the critical services are ready. */
    m = mock_new();
    mock_push(m, (mock_reply){.status = 200, .body = LYING});
    mock_push(m, (mock_reply){.status = 200, .body = STARTING});
    progress_log l2 = {.stop_when_ready = true};
    CHECK_INT(
        gm_health_wait(&m->base, "http://h/x", gm_now_ms() + 5000, 1, on_progress, &l2, &d, &err),
        GM_OK);
    CHECK_INT(d.verdict, GM_HEALTH_STARTING);
    CHECK_INT(l2.calls, 2);
    gm_transport_free(&m->base);
}

static void test_wait_deadline_mock(void)
{
    mock_transport *m = mock_new();
    for (int i = 0; i < MOCK_MAX; i++)
        mock_push(m, (mock_reply){.status = 200, .body = STARTING});
    gm_health_doc d;
    gm_error err = {0};
    int64_t t0 = gm_now_ms();
    CHECK_INT(gm_health_wait(&m->base, "http://h/x", t0 + 300, 40, NULL, NULL, &d, &err),
              GM_ERR_TIMEOUT);
    int64_t took = gm_now_ms() - t0;
    CHECK(took >= 290 && took < 600);
    CHECK(strstr(err.message, "not healthy after") != NULL);
    CHECK(strstr(err.message, "ollama is starting (pulling model llama3.1:8b)") != NULL);
    CHECK_INT(d.verdict, GM_HEALTH_STARTING);
    CHECK(m->n_requests >= 5 && m->n_requests <= 10);
    gm_transport_free(&m->base);

    /* Never a document: the last error is reported. */
    m = mock_new();
    for (int i = 0; i < MOCK_MAX; i++)
        mock_push(m, (mock_reply){.status = 503, .body = "x"});
    err = (gm_error){0};
    CHECK_INT(gm_health_wait(&m->base, "http://h/x", gm_now_ms() + 100, 30, NULL, NULL, &d, &err),
              GM_ERR_TIMEOUT);
    CHECK(strstr(err.message, "no health document from 'http://h/x'") != NULL);
    CHECK(strstr(err.message, "answered HTTP 503") != NULL);
    CHECK_INT(d.verdict, GM_HEALTH_UNKNOWN);
    gm_transport_free(&m->base);

    /* A deadline already past: no request at all. */
    m = mock_new();
    err = (gm_error){0};
    CHECK_INT(gm_health_wait(&m->base, "http://h/x", gm_now_ms() - 1, 30, NULL, NULL, &d, &err),
              GM_ERR_TIMEOUT);
    CHECK_INT(m->n_requests, 0);
    gm_transport_free(&m->base);
}

/* ---- the loopback rule --------------------------------------------------- */

static void test_target(void)
{
    gm_health_target_kind k;
    char *url = NULL;
    gm_error err = {0};
    /* Emulator on loopback, no override: never probe the (fake) instance address. */
    CHECK_INT(gm_health_target("http://127.0.0.1:5000", "54.1.2.3", NULL, &k, &url, &err), GM_OK);
    CHECK_INT(k, GM_HEALTH_TARGET_SKIP);
    CHECK(url == NULL);
    CHECK_INT(gm_health_target("http://localhost:5000", "54.1.2.3", "", &k, &url, &err), GM_OK);
    CHECK_INT(k, GM_HEALTH_TARGET_SKIP);
    /* Emulator with an override: the override. */
    CHECK_INT(gm_health_target("http://127.0.0.1:5000", "54.1.2.3", "http://127.0.0.1:8080", &k,
                               &url, &err),
              GM_OK);
    CHECK_INT(k, GM_HEALTH_TARGET_OVERRIDE);
    CHECK_STR(url, "http://127.0.0.1:8080/geusemaker/health.json");
    free(url);
    CHECK_INT(gm_health_target(NULL, NULL, "http://127.0.0.1:8080/", &k, &url, &err), GM_OK);
    CHECK_STR(url, "http://127.0.0.1:8080/geusemaker/health.json");
    free(url);
    CHECK_INT(
        gm_health_target(NULL, "54.1.2.3", "http://127.0.0.1:8080/custom/doc.json", &k, &url, &err),
        GM_OK);
    CHECK_INT(k, GM_HEALTH_TARGET_OVERRIDE);
    CHECK_STR(url, "http://127.0.0.1:8080/custom/doc.json");
    free(url);
    /* Real AWS: the instance. */
    CHECK_INT(gm_health_target(NULL, "54.1.2.3", NULL, &k, &url, &err), GM_OK);
    CHECK_INT(k, GM_HEALTH_TARGET_INSTANCE);
    CHECK_STR(url, "http://54.1.2.3/geusemaker/health.json");
    free(url);
    CHECK_INT(gm_health_target("https://ec2.eu-west-1.amazonaws.com", "2001:db8::1", NULL, &k, &url,
                               &err),
              GM_OK);
    CHECK_STR(url, "http://[2001:db8::1]/geusemaker/health.json");
    free(url);
    CHECK_INT(gm_health_target(NULL, NULL, NULL, &k, &url, &err), GM_OK);
    CHECK_INT(k, GM_HEALTH_TARGET_SKIP);
    CHECK_INT(gm_health_target(NULL, "1.2.3.4/evil", NULL, &k, &url, &err), GM_ERR_INVALID);
    err = (gm_error){0};
    CHECK_INT(gm_health_target(NULL, NULL, "ftp://x", &k, &url, &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, GM_HEALTH_ENDPOINT_ENV) != NULL);
}

/* ---- real transport against local servers (127.0.0.1 only) -------------- */

typedef enum { SRV_HEALTHY, SRV_DEGRADED, SRV_BROKEN, SRV_SILENT, SRV_ERROR } srv_mode;

typedef struct server {
    int fd;
    int port;
    srv_mode mode;
    atomic_bool stop;
    atomic_int served;
    pthread_t thread;
} server;

static void serve_one(server *s, int c)
{
    char req[4096];
    size_t got = 0;
    while (got < sizeof req - 1) {
        struct pollfd p = {.fd = c, .events = POLLIN};
        if (poll(&p, 1, 1000) <= 0)
            break;
        ssize_t n = read(c, req + got, sizeof req - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    if (s->mode == SRV_SILENT) {
        /* Accept, read, never answer: only the client's timeout ends this. */
        while (!atomic_load(&s->stop))
            usleep(10000);
        return;
    }
    const char *body = s->mode == SRV_HEALTHY    ? HEALTHY
                       : s->mode == SRV_DEGRADED ? DEGRADED
                       : s->mode == SRV_BROKEN   ? "{\"overall\": \"healthy\", \"servi"
                                                 : "internal error";
    int status = s->mode == SRV_ERROR ? 500 : 200;
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      status, strlen(body));
    if (write(c, head, (size_t)hl) < 0 || write(c, body, strlen(body)) < 0)
        return;
}

static void *server_main(void *arg)
{
    server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        atomic_fetch_add(&s->served, 1);
        serve_one(s, c);
        close(c);
    }
    return NULL;
}

static bool server_start(server *s, srv_mode mode)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->fd, 8) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &al) != 0)
        return false;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->thread, NULL, server_main, s) == 0;
}

static void server_stop(server *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static void no_proxies(void)
{
    /* 127.0.0.1 only: never through a proxy from the environment. */
    const char *vars[] = {"http_proxy", "https_proxy", "all_proxy",
                          "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
}

static void test_real_transport(void)
{
    no_proxies();
    gm_error err = {0};
    gm_transport *t = gm_transport_curl_new(NULL, &err);
    CHECK(t != NULL);
    if (!t)
        return;
    const struct {
        srv_mode mode;
        gm_status want;
        gm_health_state verdict;
    } cases[] = {
        {SRV_HEALTHY, GM_OK, GM_HEALTH_HEALTHY},
        {SRV_DEGRADED, GM_OK, GM_HEALTH_DEGRADED},
        {SRV_BROKEN, GM_ERR_PARSE, GM_HEALTH_UNKNOWN},
        {SRV_ERROR, GM_ERR_NETWORK, GM_HEALTH_UNKNOWN},
        {SRV_SILENT, GM_ERR_TIMEOUT, GM_HEALTH_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        server s;
        CHECK(server_start(&s, cases[i].mode));
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%d" GM_HEALTH_DOC_PATH, s.port);
        gm_health_doc d;
        memset(&d, 0, sizeof d);
        err = (gm_error){0};
        int64_t t0 = gm_now_ms();
        gm_status st = gm_health_fetch(t, url, 400, &d, &err);
        int64_t took = gm_now_ms() - t0;
        CHECK_INT(st, cases[i].want);
        CHECK_INT(d.verdict, cases[i].verdict);
        if (st != GM_OK)
            CHECK(strstr(err.message, url) != NULL);
        if (cases[i].mode == SRV_SILENT)
            CHECK(took >= 350 && took < 1500);
        if (cases[i].mode == SRV_ERROR)
            CHECK_INT(err.http_status, 500);
        server_stop(&s);
    }

    /* Nothing listening: a clear network error. */
    server s;
    CHECK(server_start(&s, SRV_HEALTHY));
    int port = s.port;
    server_stop(&s);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", port);
    gm_health_doc d;
    err = (gm_error){0};
    CHECK_INT(gm_health_fetch(t, url, 1000, &d, &err), GM_ERR_NETWORK);
    CHECK(strstr(err.message, "cannot reach health endpoint") != NULL);

    /* A server that never answers: the wait's deadline cuts the request short. */
    CHECK(server_start(&s, SRV_SILENT));
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", s.port);
    err = (gm_error){0};
    int64_t t0 = gm_now_ms();
    CHECK_INT(gm_health_wait(t, url, t0 + 700, 100, NULL, NULL, &d, &err), GM_ERR_TIMEOUT);
    int64_t took = gm_now_ms() - t0;
    CHECK(took >= 650 && took < 1700);
    CHECK(strstr(err.message, "did not answer") != NULL);
    server_stop(&s);
    gm_transport_free(t);
}

/* ---- driver for tests/integration/test_health_probe.py ------------------ */

static int probe_main(int argc, char **argv)
{
    const char *url = NULL;
    bool wait = false;
    long timeout_ms = 2000, deadline_ms = 5000, interval_ms = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--probe") == 0)
            url = argv[i + 1];
        else if (strcmp(argv[i], "--wait") == 0) {
            url = argv[i + 1];
            wait = true;
        } else if (strcmp(argv[i], "--timeout-ms") == 0)
            timeout_ms = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--deadline-ms") == 0)
            deadline_ms = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--interval-ms") == 0)
            interval_ms = atol(argv[i + 1]);
    }
    if (!url) {
        fprintf(stderr, "usage: test_health --probe URL [--timeout-ms N] | --wait URL "
                        "--deadline-ms N [--interval-ms N]\n");
        return 2;
    }
    no_proxies();
    gm_error err = {0};
    gm_transport *t = gm_transport_curl_new(NULL, &err);
    if (!t) {
        fprintf(stderr, "error: %s\n", err.message);
        return 1;
    }
    gm_health_doc d;
    memset(&d, 0, sizeof d);
    progress_log l = {0};
    int64_t t0 = gm_now_ms();
    gm_status st =
        wait ? gm_health_wait(t, url, t0 + deadline_ms, interval_ms, on_progress, &l, &d, &err)
             : gm_health_fetch(t, url, timeout_ms, &d, &err);
    json_t *o = json_pack(
        "{s:s, s:s, s:I, s:I, s:i}", "status", st == GM_OK ? "ok" : gm_status_name(st), "error",
        st == GM_OK ? "" : err.message, "http_status", (json_int_t)err.http_status, "elapsed_ms",
        (json_int_t)(gm_now_ms() - t0), "attempts", l.calls);
    if (d.n_services || d.verdict)
        json_object_set_new(o, "doc", gm_health_doc_to_json(&d));
    char *s = json_dumps(o, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
    json_decref(o);
    gm_transport_free(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return probe_main(argc, argv);
    GM_RUN(test_paths_agree);
    GM_RUN(test_parse_healthy);
    GM_RUN(test_parse_verdicts);
    GM_RUN(test_parse_errors);
    GM_RUN(test_staleness_and_json);
    GM_RUN(test_boot);
    GM_RUN(test_boot_malformed);
    GM_RUN(test_fetch_mock);
    GM_RUN(test_fetch_body_limit);
    GM_RUN(test_wait_mock);
    GM_RUN(test_wait_deadline_mock);
    GM_RUN(test_target);
    GM_RUN(test_real_transport);
    GM_TEST_END();
}
