/* SigV4 unit tests beyond the signing suite (tests/unit/sigv4_vectors.c).
 *
 * The expected signatures below were computed once, independently, with
 * botocore's SigV4Auth (botocore 1.43) from the same inputs and a clock fixed
 * at 2024-05-01T10:20:30Z; e.g.
 *   creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
 *   req = AWSRequest("POST", "https://sts.amazonaws.com/", data=BODY,
 *                    headers={"Content-Type": CONTENT_TYPE})
 *   SigV4Auth(creds, "sts", "us-east-1").add_auth(req)  # clock patched
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sigv4.h"
#include "core/crypto.h"
#include "core/str.h"
#include "gm_test.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN "FwoGZXIvYXdzEXAMPLETOKEN//+abc=="
#define WHEN ((time_t)1714558830) /* 2024-05-01T10:20:30Z */
#define BODY "Action=GetCallerIdentity&Version=2011-06-15"
#define CONTENT_TYPE "application/x-www-form-urlencoded; charset=utf-8"

static gm_credentials creds(const char *token)
{
    gm_credentials c = {0};
    c.access_key_id = (char *)AKID;
    c.secret_access_key = (char *)SECRET;
    c.session_token = (char *)token;
    return c;
}

static gm_sigv4_params sts_params(const gm_credentials *c)
{
    gm_sigv4_params p = {
        .region = "us-east-1",
        .service = "sts",
        .timestamp = WHEN,
        .credentials = c,
        .normalize_path = true,
    };
    return p;
}

/* A Query-protocol POST as the request core builds it. */
static void query_post(gm_http_request *req, const char *url)
{
    gm_http_request_init(req);
    CHECK_INT(gm_http_request_setup(req, "POST", url), GM_OK);
    CHECK_INT(gm_headers_add(&req->headers, "Content-Type", CONTENT_TYPE), GM_OK);
    CHECK_INT(gm_buf_appends(&req->body, BODY), GM_OK);
}

static size_t count_headers(const gm_http_request *req, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < req->headers.count; i++)
        n += gm_str_ieq(req->headers.items[i].name, name);
    return n;
}

static void test_sts_query_post(void)
{
    gm_credentials c = creds(NULL);
    gm_sigv4_params p = sts_params(&c);
    gm_http_request req;
    query_post(&req, "https://sts.amazonaws.com/");
    gm_sigv4_debug dbg;
    gm_buf_init(&dbg.canonical_request, GM_LIMIT_SMALL);
    gm_buf_init(&dbg.string_to_sign, GM_LIMIT_SMALL);
    gm_error err = {0};
    CHECK_INT(gm_sigv4_sign(&req, &p, &dbg, &err), GM_OK);
    CHECK_STR(gm_buf_cstr(&dbg.canonical_request),
              "POST\n/\n\n"
              "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
              "host:sts.amazonaws.com\n"
              "x-amz-date:20240501T102030Z\n\n"
              "content-type;host;x-amz-date\n"
              "ab821ae955788b0e33ebd34c208442ccfc2d406e2edc5e7a39bd6458fbb4f843");
    CHECK(gm_str_startswith(gm_buf_cstr(&dbg.string_to_sign),
                            "AWS4-HMAC-SHA256\n20240501T102030Z\n"
                            "20240501/us-east-1/sts/aws4_request\n"));
    CHECK_STR(dbg.signature, "aaaf75dcfd4f93ef18ebc854ac83ad2622aa3e68688a07742607a6f96fe627dc");
    CHECK_STR(gm_headers_get(&req.headers, "Authorization"),
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/sts/aws4_request, "
              "SignedHeaders=content-type;host;x-amz-date, "
              "Signature=aaaf75dcfd4f93ef18ebc854ac83ad2622aa3e68688a07742607a6f96fe627dc");
    CHECK_STR(gm_headers_get(&req.headers, "X-Amz-Date"), "20240501T102030Z");
    CHECK_STR(gm_headers_get(&req.headers, "Host"), "sts.amazonaws.com");
    CHECK(gm_headers_get(&req.headers, "X-Amz-Security-Token") == NULL);
    CHECK(gm_headers_get(&req.headers, "x-amz-content-sha256") == NULL);
    CHECK_STR(gm_buf_cstr(&req.body), BODY); /* body untouched */
    gm_buf_release(&dbg.canonical_request);
    gm_buf_release(&dbg.string_to_sign);
    gm_http_request_release(&req);
}

/* The headers the AWS SDKs leave out of the signature (User-Agent, the trace
 * id, Expect, the hop-by-hop ones) are sent but not signed: the signature is
 * botocore's for the same request (amz-sdk-request is signed, as botocore
 * signs it), and the request without them signs exactly as before. */
static void test_unsigned_headers(void)
{
    static const char *const skipped[][2] = {
        {"User-Agent", "geusemaker/1.0 (test)"},
        {"X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793"},
        {"Expect", "100-continue"},
        {"Connection", "keep-alive"},
        {"Transfer-Encoding", "identity"},
        {"Keep-Alive", "timeout=5"},
        {"TE", "trailers"},
        {"Trailer", "x"},
        {"Upgrade", "h2c"},
        {"Proxy-Authorization", "Basic eA=="},
        {"Proxy-Authenticate", "Basic"},
    };
    gm_credentials c = creds(NULL);
    gm_sigv4_params p = sts_params(&c);
    gm_http_request req;
    query_post(&req, "https://sts.amazonaws.com/");
    CHECK_INT(gm_headers_add(&req.headers, "amz-sdk-request", "attempt=1; max=3"), GM_OK);
    for (size_t i = 0; i < sizeof skipped / sizeof *skipped; i++)
        CHECK_INT(gm_headers_add(&req.headers, skipped[i][0], skipped[i][1]), GM_OK);
    gm_sigv4_debug dbg;
    gm_buf_init(&dbg.canonical_request, GM_LIMIT_SMALL);
    gm_buf_init(&dbg.string_to_sign, GM_LIMIT_SMALL);
    gm_error err = {0};
    CHECK_INT(gm_sigv4_sign(&req, &p, &dbg, &err), GM_OK);
    CHECK_STR(gm_headers_get(&req.headers, "Authorization"),
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/sts/aws4_request, "
              "SignedHeaders=amz-sdk-request;content-type;host;x-amz-date, "
              "Signature=81e252016dcd6dfbf5701b7678ad4b8632c30c0164b812a8490956a503f35b8c");
    CHECK(!strstr(gm_buf_cstr(&dbg.canonical_request), "user-agent"));
    CHECK(!strstr(gm_buf_cstr(&dbg.canonical_request), "geusemaker/"));
    for (size_t i = 0; i < sizeof skipped / sizeof *skipped; i++) {
        CHECK(gm_sigv4_header_unsigned(skipped[i][0]));
        CHECK_STR(gm_headers_get(&req.headers, skipped[i][0]), skipped[i][1]); /* still sent */
    }
    CHECK(!gm_sigv4_header_unsigned("amz-sdk-request"));
    CHECK(!gm_sigv4_header_unsigned("content-type"));
    CHECK(!gm_sigv4_header_unsigned("user-agentx"));
    gm_http_request_release(&req);

    /* Only User-Agent added: the signature is the one without it. */
    query_post(&req, "https://sts.amazonaws.com/");
    CHECK_INT(gm_headers_add(&req.headers, "user-agent", "anything/2"), GM_OK);
    CHECK_INT(gm_sigv4_sign(&req, &p, NULL, &err), GM_OK);
    CHECK_STR(gm_headers_get(&req.headers, "Authorization"),
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/sts/aws4_request, "
              "SignedHeaders=content-type;host;x-amz-date, "
              "Signature=aaaf75dcfd4f93ef18ebc854ac83ad2622aa3e68688a07742607a6f96fe627dc");
    gm_buf_release(&dbg.canonical_request);
    gm_buf_release(&dbg.string_to_sign);
    gm_http_request_release(&req);
}

static void test_session_token(void)
{
    gm_credentials c = creds(TOKEN);
    gm_sigv4_params p = sts_params(&c);
    gm_http_request req;
    query_post(&req, "https://sts.amazonaws.com/");
    gm_error err = {0};
    CHECK_INT(gm_sigv4_sign(&req, &p, NULL, &err), GM_OK);
    CHECK_STR(gm_headers_get(&req.headers, "X-Amz-Security-Token"), TOKEN);
    CHECK_STR(gm_headers_get(&req.headers, "Authorization"),
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/sts/aws4_request, "
              "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
              "Signature=9e120297946119b7d3edeb7ad70eda139b24d0b3df8ada999a5da0c77a0a1c0f");
    gm_http_request_release(&req);

    /* omit_session_token: sent, but not signed (the signature is the one
     * without a token). */
    p.omit_session_token = true;
    query_post(&req, "https://sts.amazonaws.com/");
    CHECK_INT(gm_sigv4_sign(&req, &p, NULL, &err), GM_OK);
    CHECK_STR(gm_headers_get(&req.headers, "X-Amz-Security-Token"), TOKEN);
    CHECK_STR(gm_headers_get(&req.headers, "Authorization"),
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/sts/aws4_request, "
              "SignedHeaders=content-type;host;x-amz-date, "
              "Signature=aaaf75dcfd4f93ef18ebc854ac83ad2622aa3e68688a07742607a6f96fe627dc");
    gm_http_request_release(&req);

    /* An empty token counts as none. */
    gm_credentials e = creds("");
    p = sts_params(&e);
    query_post(&req, "https://sts.amazonaws.com/");
    CHECK_INT(gm_sigv4_sign(&req, &p, NULL, &err), GM_OK);
    CHECK(gm_headers_get(&req.headers, "X-Amz-Security-Token") == NULL);
    gm_http_request_release(&req);
}

static void expect_invalid(gm_http_request *req, const gm_sigv4_params *p, const char *needle)
{
    gm_error err = {0};
    size_t before = req->headers.count;
    CHECK_INT(gm_sigv4_sign(req, p, NULL, &err), GM_ERR_INVALID);
    CHECK_INT(err.status, GM_ERR_INVALID);
    if (!strstr(err.message, needle)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.message, needle);
        CHECK(strstr(err.message, needle) != NULL);
    }
    CHECK(strstr(err.message, SECRET) == NULL);
    CHECK(strstr(err.message, "wJalrXUtnFEMI") == NULL);
    CHECK(strstr(err.message, TOKEN) == NULL);
    CHECK_INT(req->headers.count, before); /* request unchanged */
}

static void test_missing_credentials(void)
{
    gm_http_request req;
    query_post(&req, "https://sts.amazonaws.com/");
    gm_sigv4_params p = sts_params(NULL);
    expect_invalid(&req, &p, "missing credentials");

    gm_credentials c = creds(NULL);
    c.access_key_id = NULL;
    p = sts_params(&c);
    expect_invalid(&req, &p, "missing access key id");

    c = creds(NULL);
    c.secret_access_key = (char *)"";
    p = sts_params(&c);
    expect_invalid(&req, &p, "missing secret access key");

    c = creds(NULL);
    p = sts_params(&c);
    p.region = NULL;
    expect_invalid(&req, &p, "missing region");

    p = sts_params(&c);
    p.service = "";
    expect_invalid(&req, &p, "missing service");

    p = sts_params(&c);
    p.region = "us-east-1/evil";
    expect_invalid(&req, &p, "invalid signing region");

    gm_error err = {0};
    CHECK_INT(gm_sigv4_sign(NULL, &p, NULL, &err), GM_ERR_INVALID);
    gm_http_request_release(&req);
}

static void test_port_in_host(void)
{
    gm_credentials c = creds(NULL);
    gm_sigv4_params p = sts_params(&c);
    gm_http_request req;
    query_post(&req, "http://127.0.0.1:4566/?b=2&a=1");
    gm_error err = {0};
    CHECK_INT(gm_sigv4_sign(&req, &p, NULL, &err), GM_OK);
    CHECK_STR(gm_headers_get(&req.headers, "Host"), "127.0.0.1:4566");
    CHECK_STR(gm_headers_get(&req.headers, "Authorization"),
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/sts/aws4_request, "
              "SignedHeaders=content-type;host;x-amz-date, "
              "Signature=70276c68d4842cbfbe5df1bd0af17558bafed266933be749d418542ce206c0dd");
    gm_http_request_release(&req);

    /* A default port is not part of Host. */
    query_post(&req, "https://sts.amazonaws.com:443/");
    CHECK_INT(gm_sigv4_sign(&req, &p, NULL, &err), GM_OK);
    CHECK_STR(gm_headers_get(&req.headers, "Host"), "sts.amazonaws.com");
    CHECK(gm_str_endswith(gm_headers_get(&req.headers, "Authorization"),
                          "aaaf75dcfd4f93ef18ebc854ac83ad2622aa3e68688a07742607a6f96fe627dc"));
    gm_http_request_release(&req);

    /* A Host header the caller set wins over the url. */
    query_post(&req, "http://127.0.0.1:4566/");
    CHECK_INT(gm_headers_add(&req.headers, "host", "sts.amazonaws.com"), GM_OK);
    CHECK_INT(gm_sigv4_sign(&req, &p, NULL, &err), GM_OK);
    CHECK_INT(count_headers(&req, "host"), 1);
    CHECK(gm_str_endswith(gm_headers_get(&req.headers, "Authorization"),
                          "aaaf75dcfd4f93ef18ebc854ac83ad2622aa3e68688a07742607a6f96fe627dc"));
    gm_http_request_release(&req);
}

static void test_errors_never_hold_the_secret(void)
{
    gm_credentials c = creds(TOKEN);
    gm_sigv4_params p = sts_params(&c);
    gm_http_request req;

    query_post(&req, "sts.amazonaws.com/no-scheme");
    expect_invalid(&req, &p, "malformed url");
    gm_http_request_release(&req);

    query_post(&req, "https:///no-host");
    expect_invalid(&req, &p, "malformed url");
    gm_http_request_release(&req);

    query_post(&req, "https://sts.amazonaws.com/");
    free(req.method);
    req.method = gm_strdup("PO ST");
    expect_invalid(&req, &p, "invalid http method");
    gm_http_request_release(&req);

    query_post(&req, "https://sts.amazonaws.com/");
    CHECK_INT(gm_headers_add(&req.headers, "Bad Name", "x"), GM_OK);
    expect_invalid(&req, &p, "invalid header name");
    gm_http_request_release(&req);

    query_post(&req, "https://sts.amazonaws.com/");
    CHECK_INT(gm_headers_add(&req.headers, "X-Inject", "a\r\nX-Evil: 1"), GM_OK);
    expect_invalid(&req, &p, "invalid value for header 'X-Inject'");
    gm_http_request_release(&req);

    /* Even where a caller misplaced the secret or the token, it is withheld. */
    query_post(&req, "https://sts.amazonaws.com/");
    CHECK_INT(gm_headers_add(&req.headers, SECRET, "x"), GM_OK);
    expect_invalid(&req, &p, "invalid header name '(withheld)'");
    gm_http_request_release(&req);

    query_post(&req, "https://sts.amazonaws.com/");
    free(req.method);
    req.method = gm_strdup(TOKEN);
    expect_invalid(&req, &p, "invalid http method '(withheld)'");
    gm_http_request_release(&req);

    query_post(&req, "sts.amazonaws.com/?k=" SECRET);
    expect_invalid(&req, &p, "malformed url (withheld");
    gm_http_request_release(&req);

    /* A secret that looks like a format string or holds odd bytes changes
     * nothing either. */
    gm_credentials odd = creds(NULL);
    odd.secret_access_key = (char *)"%s%n%x" SECRET;
    p = sts_params(&odd);
    p.service = "s t s";
    query_post(&req, "https://sts.amazonaws.com/");
    expect_invalid(&req, &p, "invalid signing service");
    gm_http_request_release(&req);
}

static void test_resign_replaces(void)
{
    gm_credentials c = creds(TOKEN);
    gm_sigv4_params p = sts_params(&c);
    gm_http_request req;
    query_post(&req, "https://sts.amazonaws.com/");
    CHECK_INT(gm_headers_add(&req.headers, "Authorization", "stale"), GM_OK);
    CHECK_INT(gm_headers_add(&req.headers, "X-Amz-Date", "19990101T000000Z"), GM_OK);
    CHECK_INT(gm_headers_add(&req.headers, "X-Amzn-Trace-Id", "Root=1-abc"), GM_OK);
    gm_error err = {0};
    CHECK_INT(gm_sigv4_sign(&req, &p, NULL, &err), GM_OK);
    char *first = gm_strdup(gm_headers_get(&req.headers, "Authorization"));
    CHECK_INT(gm_sigv4_sign(&req, &p, NULL, &err), GM_OK); /* a retry signs again */
    CHECK_STR(gm_headers_get(&req.headers, "Authorization"), first);
    CHECK_STR(first, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/sts/aws4_request, "
                     "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
                     "Signature=9e120297946119b7d3edeb7ad70eda139b24d0b3df8ada999a5da0c77a0a1c0f");
    CHECK_INT(count_headers(&req, "Authorization"), 1);
    CHECK_INT(count_headers(&req, "X-Amz-Date"), 1);
    CHECK_INT(count_headers(&req, "X-Amz-Security-Token"), 1);
    CHECK_INT(count_headers(&req, "Host"), 1);
    CHECK_STR(gm_headers_get(&req.headers, "X-Amzn-Trace-Id"), "Root=1-abc"); /* kept, unsigned */
    free(first);
    gm_http_request_release(&req);
}

static void test_double_encoded_path(void)
{
    /* botocore: GET .../2015-02-01/a%20b/./c// for elasticfilesystem. */
    gm_credentials c = creds(NULL);
    gm_sigv4_params p = {
        .region = "eu-west-1",
        .service = "elasticfilesystem",
        .timestamp = WHEN,
        .credentials = &c,
        .normalize_path = true,
    };
    gm_http_request req;
    gm_http_request_init(&req);
    const char *url = "https://elasticfilesystem.eu-west-1.amazonaws.com/2015-02-01/a%20b/./c//";
    CHECK_INT(gm_http_request_setup(&req, "GET", url), GM_OK);
    gm_sigv4_debug dbg;
    gm_buf_init(&dbg.canonical_request, GM_LIMIT_SMALL);
    gm_buf_init(&dbg.string_to_sign, GM_LIMIT_SMALL);
    gm_error err = {0};
    CHECK_INT(gm_sigv4_sign(&req, &p, &dbg, &err), GM_OK);
    CHECK(
        gm_str_startswith(gm_buf_cstr(&dbg.canonical_request), "GET\n/2015-02-01/a%2520b/c/\n\n"));
    CHECK_STR(dbg.signature, "e4f2cfb6da8c19bdfb31c1eb7d09f854224c02d994937a8593dbd7f967bc9e72");
    gm_buf_release(&dbg.canonical_request);
    gm_buf_release(&dbg.string_to_sign);
    gm_http_request_release(&req);
}

static void test_canonical_query(void)
{
    gm_credentials c = creds(NULL);
    gm_sigv4_params p = sts_params(&c);
    gm_http_request req;
    gm_http_request_init(&req);
    const char *url = "https://x.amazonaws.com/?b=%7e&a=x%2fy&&flag&a=%41&c=a b#frag";
    CHECK_INT(gm_http_request_setup(&req, "GET", url), GM_OK);
    gm_sigv4_debug dbg;
    gm_buf_init(&dbg.canonical_request, GM_LIMIT_SMALL);
    gm_buf_init(&dbg.string_to_sign, GM_LIMIT_SMALL);
    gm_error err = {0};
    CHECK_INT(gm_sigv4_sign(&req, &p, &dbg, &err), GM_OK);
    CHECK(gm_str_startswith(gm_buf_cstr(&dbg.canonical_request),
                            "GET\n/\na=A&a=x%2Fy&b=~&c=a%20b&flag=\nhost:x.amazonaws.com\n"));
    gm_buf_release(&dbg.canonical_request);
    gm_buf_release(&dbg.string_to_sign);
    gm_http_request_release(&req);
}

static void test_sign_body_and_payload_hash(void)
{
    gm_credentials c = creds(NULL);
    gm_sigv4_params p = sts_params(&c);
    p.sign_body = true;
    gm_http_request req;
    query_post(&req, "https://sts.amazonaws.com/");
    CHECK_INT(gm_headers_add(&req.headers, "X-Amz-Content-SHA256", "stale"), GM_OK);
    gm_error err = {0};
    CHECK_INT(gm_sigv4_sign(&req, &p, NULL, &err), GM_OK);
    char want[GM_SHA256_HEX_LEN];
    gm_sha256_hex(BODY, strlen(BODY), want);
    CHECK_STR(gm_headers_get(&req.headers, "x-amz-content-sha256"), want);
    CHECK_INT(count_headers(&req, "x-amz-content-sha256"), 1);
    CHECK(strstr(gm_headers_get(&req.headers, "Authorization"),
                 "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date,") != NULL);
    gm_http_request_release(&req);

    p.payload_hash = "UNSIGNED-PAYLOAD";
    query_post(&req, "https://sts.amazonaws.com/");
    CHECK_INT(gm_sigv4_sign(&req, &p, NULL, &err), GM_OK);
    CHECK_STR(gm_headers_get(&req.headers, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
    gm_http_request_release(&req);
}

static void test_time_range(void)
{
    gm_credentials c = creds(NULL);
    gm_sigv4_params p = sts_params(&c);
    p.timestamp = (time_t)400000000000LL; /* year > 9999 */
    gm_http_request req;
    query_post(&req, "https://sts.amazonaws.com/");
    expect_invalid(&req, &p, "signing time");
    gm_http_request_release(&req);
}

#define THREADS 8
#define ROUNDS 200

static void *sign_many(void *arg)
{
    int *bad = arg;
    gm_credentials c = creds(TOKEN);
    gm_sigv4_params p = sts_params(&c);
    for (int i = 0; i < ROUNDS; i++) {
        gm_http_request req;
        gm_http_request_init(&req);
        gm_error err = {0};
        if (gm_http_request_setup(&req, "POST", "https://sts.amazonaws.com/") != GM_OK ||
            gm_headers_add(&req.headers, "Content-Type", CONTENT_TYPE) != GM_OK ||
            gm_buf_appends(&req.body, BODY) != GM_OK ||
            gm_sigv4_sign(&req, &p, NULL, &err) != GM_OK ||
            !gm_str_endswith(gm_headers_get(&req.headers, "Authorization"),
                             "9e120297946119b7d3edeb7ad70eda139b24d0b3df8ada999a5da0c77a0a1c0f"))
            (*bad)++;
        gm_http_request_release(&req);
    }
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[THREADS];
    int bad[THREADS] = {0};
    for (int i = 0; i < THREADS; i++)
        CHECK_INT(pthread_create(&t[i], NULL, sign_many, &bad[i]), 0);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(bad[i], 0);
    }
}

int main(void)
{
    GM_RUN(test_sts_query_post);
    GM_RUN(test_unsigned_headers);
    GM_RUN(test_session_token);
    GM_RUN(test_missing_credentials);
    GM_RUN(test_port_in_host);
    GM_RUN(test_errors_never_hold_the_secret);
    GM_RUN(test_resign_replaces);
    GM_RUN(test_double_encoded_path);
    GM_RUN(test_canonical_query);
    GM_RUN(test_sign_body_and_payload_hash);
    GM_RUN(test_time_range);
    GM_RUN(test_threads);
    GM_TEST_END();
}
