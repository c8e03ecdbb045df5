/* core/ and http helpers: bounded buffers, strings, urls, time. */
#include "aws/http.h"
#include "core/buf.h"
#include "core/crypto.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "gm_test.h"

static void test_buf_limit(void)
{
    gm_buf b;
    gm_buf_init(&b, 8);
    CHECK_INT(gm_buf_appends(&b, "12345678"), GM_OK);
    CHECK_INT(gm_buf_appends(&b, "9"), GM_ERR_LIMIT);
    CHECK_STR(gm_buf_cstr(&b), "12345678");
    CHECK_INT(b.len, 8);
    gm_buf_reset(&b);
    CHECK_INT(gm_buf_printf(&b, "%d-%s", 42, "abc"), GM_OK);
    CHECK_STR(gm_buf_cstr(&b), "42-abc");
    CHECK_INT(gm_buf_printf(&b, "%s", "toolong"), GM_ERR_LIMIT);
    char *d = gm_buf_detach(&b);
    CHECK_STR(d, "42-abc");
    free(d);
    CHECK_INT(b.len, 0);
    gm_buf_release(&b);
}

static void test_uri_encode(void)
{
    gm_buf b;
    gm_buf_init(&b, 1024);
    const char *s = "a b/c~d_e.f-g+h=i&\xe1\x88\xb4";
    CHECK_INT(gm_uri_encode(&b, s, strlen(s), false), GM_OK);
    CHECK_STR(gm_buf_cstr(&b), "a%20b%2Fc~d_e.f-g%2Bh%3Di%26%E1%88%B4");
    gm_buf_reset(&b);
    CHECK_INT(gm_uri_encode(&b, "/x y/", 5, true), GM_OK);
    CHECK_STR(gm_buf_cstr(&b), "/x%20y/");
    gm_buf_reset(&b);
    CHECK_INT(gm_uri_decode(&b, "a%20b+c%zz%4", 12, true), GM_OK);
    CHECK_STR(gm_buf_cstr(&b), "a b c%zz%4");
    gm_buf_release(&b);
}

static void test_url_split(void)
{
    char *scheme = NULL, *host = NULL, *path = NULL, *query = NULL;
    gm_error err = {0};
    CHECK_INT(gm_url_split("HTTPS://ec2.us-east-1.amazonaws.com:443/a/b?x=1#frag", &scheme, &host,
                           &path, &query, &err),
              GM_OK);
    CHECK_STR(scheme, "https");
    CHECK_STR(host, "ec2.us-east-1.amazonaws.com");
    CHECK_STR(path, "/a/b");
    CHECK_STR(query, "x=1");
    free(scheme);
    free(host);
    free(path);
    free(query);
    CHECK_INT(gm_url_split("http://127.0.0.1:5000", NULL, &host, &path, &query, &err), GM_OK);
    CHECK_STR(host, "127.0.0.1:5000");
    CHECK_STR(path, "/");
    CHECK_STR(query, "");
    free(host);
    free(path);
    free(query);
    CHECK_INT(gm_url_split("no-scheme", NULL, NULL, NULL, NULL, &err), GM_ERR_INVALID);
    gm_error_clear(&err);
    CHECK_INT(gm_url_split("http:///path", NULL, NULL, NULL, NULL, &err), GM_ERR_INVALID);
}

static void test_loopback(void)
{
    CHECK(gm_url_is_loopback("http://127.0.0.1:5000"));
    CHECK(gm_url_is_loopback("http://127.1.2.3/"));
    CHECK(gm_url_is_loopback("http://localhost:80/x"));
    CHECK(gm_url_is_loopback("http://[::1]:8080/"));
    CHECK(!gm_url_is_loopback("https://ec2.us-east-1.amazonaws.com"));
    CHECK(!gm_url_is_loopback("http://10.0.0.1/"));
    CHECK(!gm_url_is_loopback("http://128.0.0.1/"));
    CHECK(!gm_url_is_loopback("garbage"));
}

static void test_headers(void)
{
    gm_headers h;
    gm_headers_init(&h);
    CHECK_INT(gm_headers_add(&h, "X-A", "1"), GM_OK);
    CHECK_INT(gm_headers_add(&h, "x-a", "2"), GM_OK);
    CHECK_INT(gm_headers_add(&h, "B", "3"), GM_OK);
    CHECK_STR(gm_headers_get(&h, "X-a"), "1");
    CHECK_INT(gm_headers_set(&h, "x-A", "9"), GM_OK);
    CHECK_INT(h.count, 2);
    CHECK_STR(gm_headers_get(&h, "x-a"), "9");
    gm_headers_remove(&h, "b");
    CHECK(gm_headers_get(&h, "B") == NULL);
    gm_headers_release(&h);
}

static void test_time(void)
{
    char out[32];
    gm_time_iso8601(1440938160, out);
    CHECK_STR(out, "2015-08-30T12:36:00Z");
    CHECK_INT(gm_time_parse_iso8601("2015-08-30T12:36:00Z"), 1440938160);
    CHECK_INT(gm_time_parse_iso8601("2015-08-30T12:36:00.123Z"), 1440938160);
    CHECK_INT(gm_time_parse_iso8601("2015-08-30T14:36:00+02:00"), 1440938160);
    CHECK_INT(gm_time_parse_iso8601("2015-08-30"), -1);
    CHECK_INT(gm_time_parse_iso8601("2015-13-30T12:36:00Z"), -1);
    CHECK_INT(gm_time_parse_iso8601("2015-08-30T12:36:00Zjunk"), -1);
}

static void test_crypto(void)
{
    char hex[GM_SHA256_HEX_LEN];
    gm_sha256_hex("", 0, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    char tok[33];
    gm_error err = {0};
    CHECK_INT(gm_random_token(tok, 32, &err), GM_OK);
    CHECK_INT(strlen(tok), 32);
    char tok2[33];
    CHECK_INT(gm_random_token(tok2, 32, &err), GM_OK);
    CHECK(strcmp(tok, tok2) != 0);
    for (int i = 0; i < 32; i++)
        CHECK((tok[i] >= 'a' && tok[i] <= 'z') || (tok[i] >= 'A' && tok[i] <= 'Z') ||
              (tok[i] >= '0' && tok[i] <= '9'));
    double u = gm_random_unit();
    CHECK(u >= 0.0 && u < 1.0);
}

static void test_error_context(void)
{
    gm_error err = {0};
    CHECK_INT(gm_error_set(&err, GM_ERR_IO, "cannot open '%s'", "x"), GM_ERR_IO);
    /* The first error wins. */
    gm_error_set(&err, GM_ERR_PARSE, "second");
    CHECK_INT(err.status, GM_ERR_IO);
    gm_error_prefix(&err, "loading state");
    CHECK_STR(err.message, "loading state: cannot open 'x'");
    CHECK_INT(gm_error_set(NULL, GM_ERR_NOMEM, "ignored"), GM_ERR_NOMEM);
}

int main(void)
{
    GM_RUN(test_buf_limit);
    GM_RUN(test_uri_encode);
    GM_RUN(test_url_split);
    GM_RUN(test_loopback);
    GM_RUN(test_headers);
    GM_RUN(test_time);
    GM_RUN(test_crypto);
    GM_RUN(test_error_context);
    GM_TEST_END();
}
