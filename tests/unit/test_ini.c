/* The AWS shared config / credentials file parser. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/ini.h"
#include "core/buf.h"
#include "gm_test.h"

static gm_ini *parse_ok(const char *text)
{
    gm_error err;
    gm_error_clear(&err);
    gm_ini *doc = NULL;
    gm_status st = gm_ini_parse(text, strlen(text), "cfg", &doc, &err);
    if (st != GM_OK)
        fprintf(stderr, "  unexpected parse error: %s\n", err.message);
    CHECK_INT(st, GM_OK);
    return doc;
}

/* Parses text expecting failure; returns the status, copies the message. */
static gm_status parse_fail(const char *text, char *msg, size_t msg_size)
{
    gm_error err;
    gm_error_clear(&err);
    gm_ini *doc = (gm_ini *)1;
    gm_status st = gm_ini_parse(text, strlen(text), "/x/config", &doc, &err);
    CHECK(doc == NULL);
    CHECK(st != GM_OK);
    CHECK_INT(err.status, st);
    snprintf(msg, msg_size, "%s", err.message);
    gm_ini_free(doc);
    return st;
}

static void test_sections_and_keys(void)
{
    gm_ini *doc = parse_ok("[default]\n"
                           "aws_access_key_id = AKIDDEFAULT\n"
                           "region=us-east-1\n"
                           "\n"
                           "[profile dev]\n"
                           "region = eu-west-1\n"
                           "output = json\n"
                           "[empty]\n");
    CHECK_STR(gm_ini_get(doc, "default", "aws_access_key_id"), "AKIDDEFAULT");
    CHECK_STR(gm_ini_get(doc, "default", "region"), "us-east-1");
    CHECK_STR(gm_ini_get(doc, "profile dev", "region"), "eu-west-1");
    CHECK_STR(gm_ini_get(doc, "profile dev", "output"), "json");
    CHECK(gm_ini_get(doc, "profile dev", "aws_access_key_id") == NULL);
    CHECK(gm_ini_get(doc, "dev", "region") == NULL);
    CHECK(gm_ini_get(doc, "nosuch", "region") == NULL);
    CHECK(gm_ini_has_section(doc, "empty"));
    CHECK(!gm_ini_has_section(doc, "nosuch"));
    CHECK_INT(gm_ini_section_count(doc), 3);
    CHECK_STR(gm_ini_section_name(doc, 0), "default");
    CHECK_STR(gm_ini_section_name(doc, 1), "profile dev");
    CHECK_STR(gm_ini_section_name(doc, 2), "empty");
    CHECK(gm_ini_section_name(doc, 3) == NULL);
    gm_ini_free(doc);
}

static void test_profile_prefix_whitespace(void)
{
    /* Whitespace inside the brackets is trimmed and runs collapse to one space. */
    gm_ini *doc = parse_ok("[  profile   dev\t]\nregion = a\n[ default ]\nregion = b\n");
    CHECK_STR(gm_ini_get(doc, "profile dev", "region"), "a");
    CHECK_STR(gm_ini_get(doc, "default", "region"), "b");
    gm_ini_free(doc);
}

static void test_comments(void)
{
    gm_ini *doc = parse_ok("# leading comment\n"
                           "; another\n"
                           "[default] # trailing comment on a header\n"
                           "  # indented comment\n"
                           "region = us-east-1\n"
                           ";region = eu-west-1\n"
                           "#region = eu-west-2\n"
                           "[profile x] ; semicolon too\n"
                           "k = v # not a comment: the CLI keeps it\n"
                           "u = http://h/#frag\n");
    CHECK_STR(gm_ini_get(doc, "default", "region"), "us-east-1");
    CHECK_STR(gm_ini_get(doc, "profile x", "k"), "v # not a comment: the CLI keeps it");
    CHECK_STR(gm_ini_get(doc, "profile x", "u"), "http://h/#frag");
    gm_ini_free(doc);
}

static void test_whitespace(void)
{
    gm_ini *doc = parse_ok("\t[default]   \n"
                           "  region   =   us-west-2   \n"
                           "key_no_spaces=value=with=equals\n"
                           "empty =\n"
                           "spaced = a b  c\n"
                           "cp = /bin/echo '{\"Version\": 1}'\n");
    CHECK_STR(gm_ini_get(doc, "default", "region"), "us-west-2");
    CHECK_STR(gm_ini_get(doc, "default", "key_no_spaces"), "value=with=equals");
    CHECK_STR(gm_ini_get(doc, "default", "empty"), "");
    CHECK_STR(gm_ini_get(doc, "default", "spaced"), "a b  c");
    CHECK_STR(gm_ini_get(doc, "default", "cp"), "/bin/echo '{\"Version\": 1}'");
    gm_ini_free(doc);
}

static void test_key_case(void)
{
    /* Keys compare case-insensitively (the CLI folds them); sections do not. */
    gm_ini *doc = parse_ok("[Default]\nAWS_Access_Key_ID = A\n[default]\nregion = r\n");
    CHECK_STR(gm_ini_get(doc, "Default", "aws_access_key_id"), "A");
    CHECK_STR(gm_ini_get(doc, "Default", "AWS_ACCESS_KEY_ID"), "A");
    CHECK(gm_ini_get(doc, "default", "aws_access_key_id") == NULL);
    CHECK_STR(gm_ini_get(doc, "default", "region"), "r");
    gm_ini_free(doc);
}

static void test_sub_sections(void)
{
    gm_ini *doc = parse_ok("[default]\n"
                           "region = us-east-1\n"
                           "s3 =\n"
                           "  max_concurrent_requests = 20\n"
                           "\n"
                           "  # a comment inside\n"
                           "  addressing_style = path\n"
                           "output = json\n"
                           "multi = first\n"
                           "  second line of a continued value\n"
                           "[profile b]\n"
                           "  region = indented-but-first\n");
    CHECK_STR(gm_ini_get(doc, "default", "region"), "us-east-1");
    CHECK_STR(gm_ini_get(doc, "default", "s3"), "");
    CHECK(gm_ini_get(doc, "default", "max_concurrent_requests") == NULL);
    CHECK(gm_ini_get(doc, "default", "addressing_style") == NULL);
    CHECK_STR(gm_ini_get(doc, "default", "output"), "json");
    CHECK_STR(gm_ini_get(doc, "default", "multi"), "first");
    CHECK_STR(gm_ini_get(doc, "profile b", "region"), "indented-but-first");
    gm_ini_free(doc);

    /* A nested line without '=' is malformed (as in the CLI). */
    char msg[GM_ERROR_MESSAGE_MAX];
    CHECK_INT(parse_fail("[default]\ns3 =\n  nonsense\n", msg, sizeof msg), GM_ERR_PARSE);
    CHECK(strstr(msg, "/x/config:3") != NULL);
}

static void test_malformed_lines(void)
{
    char msg[GM_ERROR_MESSAGE_MAX];
    CHECK_INT(parse_fail("[default]\nregion = x\njust some words\n", msg, sizeof msg),
              GM_ERR_PARSE);
    CHECK(strstr(msg, "'/x/config:3'") != NULL);

    CHECK_INT(parse_fail("region = x\n[default]\n", msg, sizeof msg), GM_ERR_PARSE);
    CHECK(strstr(msg, "/x/config:1") != NULL);
    CHECK(strstr(msg, "outside") != NULL);

    CHECK_INT(parse_fail("# c\n\n[default\n", msg, sizeof msg), GM_ERR_PARSE);
    CHECK(strstr(msg, "/x/config:3") != NULL);

    CHECK_INT(parse_fail("[]\n", msg, sizeof msg), GM_ERR_PARSE);
    CHECK(strstr(msg, "/x/config:1") != NULL);

    CHECK_INT(parse_fail("[default] junk\n", msg, sizeof msg), GM_ERR_PARSE);
    CHECK_INT(parse_fail("[default]\n = value\n", msg, sizeof msg), GM_ERR_PARSE);
    CHECK(strstr(msg, "/x/config:2") != NULL);

    /* CRLF files count lines the same way. */
    CHECK_INT(parse_fail("[default]\r\na = b\r\n\r\nbad line\r\n", msg, sizeof msg), GM_ERR_PARSE);
    CHECK(strstr(msg, "/x/config:4") != NULL);

    /* The offending text (maybe a secret) is never quoted. */
    CHECK_INT(parse_fail("[default]\naws_secret_access_key SECRETVALUE123\n", msg, sizeof msg),
              GM_ERR_PARSE);
    CHECK(strstr(msg, "SECRETVALUE123") == NULL);

    /* A NUL byte inside the text. */
    gm_error err;
    gm_error_clear(&err);
    gm_ini *doc = NULL;
    static const char with_nul[] = "[default]\na = b\0c\n";
    CHECK_INT(gm_ini_parse(with_nul, sizeof with_nul - 1, "f", &doc, &err), GM_ERR_PARSE);
    CHECK(doc == NULL);
    CHECK(strstr(err.message, "f:2") != NULL);
}

static void test_duplicates(void)
{
    gm_ini *doc = parse_ok("[default]\n"
                           "region = first\n"
                           "region = second\n"
                           "[other]\n"
                           "a = 1\n"
                           "[default]\n"
                           "output = json\n"
                           "REGION = third\n");
    CHECK_STR(gm_ini_get(doc, "default", "region"), "third");
    CHECK_STR(gm_ini_get(doc, "default", "output"), "json");
    CHECK_STR(gm_ini_get(doc, "other", "a"), "1");
    CHECK_INT(gm_ini_section_count(doc), 2);
    gm_ini_free(doc);
}

static void test_empty(void)
{
    gm_error err;
    gm_error_clear(&err);
    gm_ini *doc = NULL;
    CHECK_INT(gm_ini_parse("", 0, "empty", &doc, &err), GM_OK);
    CHECK(doc != NULL);
    CHECK_INT(gm_ini_section_count(doc), 0);
    CHECK(gm_ini_get(doc, "default", "region") == NULL);
    gm_ini_free(doc);

    doc = NULL;
    CHECK_INT(gm_ini_parse(NULL, 0, NULL, &doc, &err), GM_OK);
    gm_ini_free(doc);

    doc = parse_ok("\n\n   \n# only comments\n");
    CHECK_INT(gm_ini_section_count(doc), 0);
    gm_ini_free(doc);

    /* NULL document lookups are safe; free is safe on NULL. */
    CHECK(gm_ini_get(NULL, "default", "region") == NULL);
    CHECK(!gm_ini_has_section(NULL, "default"));
    gm_ini_free(NULL);
}

static void test_crlf_and_bom(void)
{
    gm_ini *doc = parse_ok("\xEF\xBB\xBF[default]\r\n"
                           "aws_access_key_id = AKID\r\n"
                           "s3 =\r\n"
                           "  x = y\r\n"
                           "region = r\r\n"
                           "[profile p]\r\n"
                           "no_newline_at_end = v");
    CHECK_STR(gm_ini_get(doc, "default", "aws_access_key_id"), "AKID");
    CHECK_STR(gm_ini_get(doc, "default", "region"), "r");
    CHECK_STR(gm_ini_get(doc, "profile p", "no_newline_at_end"), "v");
    gm_ini_free(doc);
}

static void test_unterminated_input(void)
{
    /* The parser reads exactly len bytes: no terminator needed. */
    const char text[] = "[default]\nregion = abcdef";
    gm_error err;
    gm_error_clear(&err);
    gm_ini *doc = NULL;
    CHECK_INT(gm_ini_parse(text, sizeof text - 4, "t", &doc, &err), GM_OK);
    CHECK_STR(gm_ini_get(doc, "default", "region"), "abc");
    gm_ini_free(doc);
}

static void test_oversize(void)
{
    size_t len = GM_LIMIT_CONFIG_FILE + 1;
    char *big = malloc(len);
    CHECK(big != NULL);
    if (!big)
        return;
    memset(big, '#', len);
    gm_error err;
    gm_error_clear(&err);
    gm_ini *doc = NULL;
    CHECK_INT(gm_ini_parse(big, len, "big", &doc, &err), GM_ERR_LIMIT);
    CHECK(doc == NULL);
    CHECK(strstr(err.message, "'big'") != NULL);
    /* Exactly at the limit is fine. */
    gm_error_clear(&err);
    CHECK_INT(gm_ini_parse(big, len - 1, "big", &doc, &err), GM_OK);
    gm_ini_free(doc);
    free(big);
}

static void test_many_sections(void)
{
    /* Many distinct sections (exercises the section hash growth). */
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_CONFIG_FILE);
    for (int i = 0; i < 3000; i++)
        CHECK_INT(gm_buf_printf(&b, "[s%d]\nk = %d\n", i, i), GM_OK);
    gm_ini *doc = parse_ok(gm_buf_cstr(&b));
    CHECK_INT(gm_ini_section_count(doc), 3000);
    CHECK_STR(gm_ini_get(doc, "s0", "k"), "0");
    CHECK_STR(gm_ini_get(doc, "s2999", "k"), "2999");
    CHECK_STR(gm_ini_section_name(doc, 1234), "s1234");
    gm_ini_free(doc);
    gm_buf_release(&b);
}

static void test_load_file(void)
{
    char path[] = "/tmp/gm_test_ini_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    const char *text = "[default]\nregion = from-file\n";
    CHECK_INT(write(fd, text, strlen(text)), (long long)strlen(text));
    close(fd);

    gm_error err;
    gm_error_clear(&err);
    gm_ini *doc = NULL;
    CHECK_INT(gm_ini_load_file(path, &doc, &err), GM_OK);
    CHECK_STR(gm_ini_get(doc, "default", "region"), "from-file");
    gm_ini_free(doc);

    /* Errors name the path. */
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("[default]\nbroken\n", f);
        fclose(f);
    }
    gm_error_clear(&err);
    CHECK_INT(gm_ini_load_file(path, &doc, &err), GM_ERR_PARSE);
    char want[64];
    snprintf(want, sizeof want, "%s:2", path);
    CHECK(strstr(err.message, want) != NULL);
    unlink(path);

    gm_error_clear(&err);
    CHECK_INT(gm_ini_load_file(path, &doc, &err), GM_ERR_NOT_FOUND);
    CHECK(doc == NULL);
    CHECK(strstr(err.message, path) != NULL);
}

int main(void)
{
    GM_RUN(test_sections_and_keys);
    GM_RUN(test_profile_prefix_whitespace);
    GM_RUN(test_comments);
    GM_RUN(test_whitespace);
    GM_RUN(test_key_case);
    GM_RUN(test_sub_sections);
    GM_RUN(test_malformed_lines);
    GM_RUN(test_duplicates);
    GM_RUN(test_empty);
    GM_RUN(test_crlf_and_bom);
    GM_RUN(test_unterminated_input);
    GM_RUN(test_oversize);
    GM_RUN(test_many_sections);
    GM_RUN(test_load_file);
    GM_TEST_END();
}
