/* The partition table and what follows from it: region checks with
 * suggestions, endpoints and the signing region of IAM per partition, the
 * instance role's ARNs and policy for a China and a GovCloud region; and
 * the strict input checks (CIDRs, numbers, endpoint urls, the client's
 * environment). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "aws/client.h"
#include "aws/partition.h"
#include "core/str.h"
#include "engine/engine.h"
#include "engine/nodes.h"
#include "gm_test.h"
#include "mock_transport.h"

static void clean_env(void)
{
    const char *vars[] = {"AWS_ENDPOINT_URL",
                          "AWS_ENDPOINT_URL_STS",
                          "AWS_ENDPOINT_URL_EC2",
                          "AWS_ENDPOINT_URL_IAM",
                          "AWS_REGION",
                          "AWS_DEFAULT_REGION",
                          "AWS_PROFILE",
                          "AWS_SESSION_TOKEN",
                          "AWS_MAX_ATTEMPTS",
                          "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                          "GEUSEMAKER_RETRY_BASE_MS",
                          "GEUSEMAKER_CREDENTIAL_PROCESS_TIMEOUT_MS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret-test-key", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/geusemaker-test/config", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/geusemaker-test/credentials", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static void test_table(void)
{
    size_t n = 0;
    const gm_partition *all = gm_partitions(&n);
    CHECK_INT(n, 3);
    CHECK_STR(all[0].id, "aws");
    /* Every region is in exactly one partition, and looks like a region. */
    size_t regions = 0;
    for (size_t p = 0; p < n; p++)
        for (size_t i = 0; i < all[p].n_regions; i++) {
            regions++;
            CHECK(gm_partition_of(all[p].regions[i]) == &all[p]);
            CHECK(strlen(all[p].regions[i]) >= 9);
        }
    CHECK(regions >= 38);
    const char *commercial[] = {
        "us-east-1",      "ap-southeast-5", "ap-southeast-7", "mx-central-1", "ca-west-1",
        "il-central-1",   "me-central-1",   "eu-south-2",     "eu-central-2", "ap-south-2",
        "ap-southeast-4", "af-south-1",     "ap-east-1",      "ap-east-2",    "ap-southeast-6",
        "ap-northeast-3", "sa-east-1"};
    for (size_t i = 0; i < sizeof commercial / sizeof *commercial; i++)
        CHECK_STR(gm_partition_of(commercial[i])->id, "aws");
    CHECK_STR(gm_partition_of("cn-north-1")->id, "aws-cn");
    CHECK_STR(gm_partition_of("cn-northwest-1")->dns_suffix, "amazonaws.com.cn");
    CHECK_STR(gm_partition_of("us-gov-west-1")->id, "aws-us-gov");
    CHECK_STR(gm_partition_of("us-gov-east-1")->dns_suffix, "amazonaws.com");
    CHECK(gm_partition_of("us-east-7") == NULL);
    CHECK(gm_partition_of("") == NULL);
    CHECK(gm_partition_of(NULL) == NULL);
    CHECK(gm_partition_by_id("aws-cn") == gm_partition_of("cn-north-1"));
    CHECK(gm_partition_by_id("aws-iso") == NULL);
}

static void test_region_check_and_suggestions(void)
{
    gm_error err = {0};
    CHECK_INT(gm_region_check("eu-west-1", "--region", &err), GM_OK);
    CHECK_INT(gm_region_check("useast1", "--region", &err), GM_ERR_INVALID);
    CHECK_STR(err.message, "unknown region 'useast1' (from --region): did you mean 'us-east-1'?");
    gm_error_clear(&err);
    CHECK_INT(gm_region_check("US-EAST-1", "AWS_REGION", &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "(from AWS_REGION): did you mean 'us-east-1'?") != NULL);
    gm_error_clear(&err);
    CHECK_INT(gm_region_check("us-east-3", "--region", &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "did you mean 'us-east-1' or 'us-east-2'?") != NULL);
    gm_error_clear(&err);
    CHECK_INT(gm_region_check("cn-north-2", "--region", &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "'cn-north-1'") != NULL);
    gm_error_clear(&err);
    CHECK_INT(gm_region_check("moon", "--region", &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "unknown region 'moon' (from --region): expected an AWS region") !=
          NULL);
    gm_error_clear(&err);
    CHECK_INT(gm_region_check("", "AWS_REGION", &err), GM_ERR_INVALID);
    CHECK_STR(err.message, "empty region from AWS_REGION: name a region such as 'us-east-1'");
    const char *near[3];
    CHECK_INT(gm_region_suggest("ap-southeast-9", near, 3), 3);
    CHECK_INT(gm_region_suggest("x", near, 3), 0);
}

/* The endpoint and signing region of each service for a client in region. */
static void check_endpoints(const char *region, const char *ec2, const char *iam,
                            const char *iam_scope)
{
    clean_env();
    mock_transport *m = mock_new();
    mock_push(m, (mock_reply){.status = 200, .body = "<GetRoleResponse/>"});
    gm_aws_client *c = mock_client(m, region, 0);
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_STR(gm_aws_client_partition(c)->id, gm_partition_of(region)->id);
    char *u = gm_aws_endpoint(c, &gm_svc_ec2);
    CHECK_STR(u, ec2);
    free(u);
    u = gm_aws_endpoint(c, &gm_svc_iam);
    CHECK_STR(u, iam);
    free(u);
    xmlDocPtr doc = NULL;
    gm_error err = {0};
    CHECK_INT(gm_aws_query(c, &gm_svc_iam, "GetRole", NULL, &doc, &err), GM_OK);
    const char *auth = gm_headers_get(&m->headers[0], "Authorization");
    char scope[64];
    snprintf(scope, sizeof scope, "/%s/iam/aws4_request", iam_scope);
    CHECK(auth && strstr(auth, scope));
    char url[128];
    snprintf(url, sizeof url, "%s/", iam);
    CHECK_STR(m->urls[0], url);
    xmlFreeDoc(doc);
    gm_aws_client_free(c);
}

static void test_endpoints_follow_the_partition(void)
{
    check_endpoints("eu-central-2", "https://ec2.eu-central-2.amazonaws.com",
                    "https://iam.amazonaws.com", "us-east-1");
    check_endpoints("cn-northwest-1", "https://ec2.cn-northwest-1.amazonaws.com.cn",
                    "https://iam.cn-north-1.amazonaws.com.cn", "cn-north-1");
    check_endpoints("us-gov-east-1", "https://ec2.us-gov-east-1.amazonaws.com",
                    "https://iam.us-gov.amazonaws.com", "us-gov-west-1");
}

/* The inline policy parses as JSON and carries the partition's ARNs. */
static void check_policy(const char *region, const char *arn_prefix, const char *via)
{
    char *doc = gm_n_iam_stack_policy(region, "demo");
    CHECK(doc != NULL);
    json_error_t jerr;
    json_t *j = doc ? json_loads(doc, 0, &jerr) : NULL;
    CHECK(j != NULL);
    json_t *st = json_object_get(j, "Statement");
    CHECK_INT(json_array_size(st), 3);
    char want[256];
    snprintf(want, sizeof want, "%s:ssm:%s:*:parameter/geusemaker/demo/*", arn_prefix, region);
    CHECK_STR(json_string_value(json_object_get(json_array_get(st, 0), "Resource")), want);
    json_t *cond = json_object_get(json_array_get(st, 1), "Condition");
    CHECK_STR(
        json_string_value(json_object_get(json_object_get(cond, "StringEquals"), "kms:ViaService")),
        via);
    snprintf(want, sizeof want, "%s:elasticfilesystem:%s:*:file-system/*", arn_prefix, region);
    CHECK_STR(json_string_value(json_object_get(json_array_get(st, 2), "Resource")), want);
    json_decref(j);
    free(doc);
    char *arn = gm_n_iam_ssm_core_policy_arn(region);
    snprintf(want, sizeof want, "%s:iam::aws:policy/AmazonSSMManagedInstanceCore", arn_prefix);
    CHECK_STR(arn, want);
    free(arn);
}

static void test_policy_per_partition(void)
{
    check_policy("us-east-1", "arn:aws", "ssm.us-east-1.amazonaws.com");
    check_policy("cn-north-1", "arn:aws-cn", "ssm.cn-north-1.amazonaws.com.cn");
    check_policy("us-gov-west-1", "arn:aws-us-gov", "ssm.us-gov-west-1.amazonaws.com");
    CHECK(gm_n_iam_stack_policy("xx-nowhere-1", "demo") == NULL);
    CHECK(gm_n_iam_ssm_core_policy_arn("xx-nowhere-1") == NULL);
}

static void test_certificate_follows_the_partition(void)
{
    gm_deploy_config cfg = {
        .name = "demo", .tier = GM_TIER_AUTOMATION, .instance_type = "m6i.xlarge"};
    gm_error err = {0};
    cfg.certificate_arn = "arn:aws-cn:acm:cn-north-1:123456789012:certificate/abc-123";
    CHECK_INT(gm_engine_check_config_region(&cfg, "cn-north-1", &err), GM_OK);
    CHECK_INT(gm_engine_check_config_region(&cfg, "us-east-1", &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "partition aws-cn") != NULL);
    gm_error_clear(&err);
    cfg.certificate_arn = "arn:aws-us-gov:acm:us-gov-west-1:123456789012:certificate/abc";
    CHECK_INT(gm_engine_check_config_region(&cfg, "us-gov-west-1", &err), GM_OK);
    CHECK_INT(gm_engine_check_config_region(&cfg, "us-gov-east-1", &err), GM_ERR_INVALID);
    gm_error_clear(&err);
    /* The syntax check alone (no region) accepts every partition's ARN, and
     * refuses a partition that does not exist or a region of another one. */
    CHECK_INT(gm_engine_check_config(&cfg, &err), GM_OK);
    cfg.certificate_arn = "arn:aws-cn:acm:us-east-1:123456789012:certificate/abc";
    CHECK_INT(gm_engine_check_config(&cfg, &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "invalid --certificate-arn") != NULL);
    gm_error_clear(&err);
    cfg.certificate_arn = "arn:aws-xx:acm:us-east-1:123456789012:certificate/abc";
    CHECK_INT(gm_engine_check_config(&cfg, &err), GM_ERR_INVALID);
    gm_error_clear(&err);
    cfg.certificate_arn = NULL;
    const char *azs[] = {"eu-west-1a", "eu-west-1b"};
    cfg.azs[0] = azs[0];
    cfg.azs[1] = azs[1];
    cfg.n_azs = 2;
    CHECK_INT(gm_engine_check_config_region(&cfg, "eu-west-1", &err), GM_OK);
    CHECK_INT(gm_engine_check_config_region(&cfg, "us-east-1", &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "--azs zone 'eu-west-1a' is not in region 'us-east-1'") != NULL);
}

/* ---- strict input ------------------------------------------------------------ */

static void cidr(const char *s, gm_status want, int want_prefix, const char *msg)
{
    gm_error err = {0};
    int prefix = -1;
    gm_status st = gm_engine_parse_cidr(s, &prefix, &err);
    CHECK_INT(st, want);
    if (st != want)
        fprintf(stderr, "  for '%s': %s\n", s ? s : "(null)", err.message);
    if (want == GM_OK)
        CHECK_INT(prefix, want_prefix);
    if (msg && !strstr(err.message, msg)) {
        fprintf(stderr, "  for '%s': message '%s' lacks '%s'\n", s, err.message, msg);
        CHECK(false);
    }
}

static void test_cidrs(void)
{
    cidr("203.0.113.0/24", GM_OK, 24, NULL);
    cidr("203.0.113.7/32", GM_OK, 32, NULL);
    cidr("0.0.0.0/0", GM_OK, 0, NULL);
    cidr("10.0.0.0/8", GM_OK, 8, NULL);
    cidr("255.255.255.255/32", GM_OK, 32, NULL);
    cidr("010.0.0.1/32", GM_ERR_INVALID, 0, "the octet '010' has a leading zero");
    cidr("10.0.0.0/08", GM_ERR_INVALID, 0, "without a leading zero");
    cidr("10.0.0.256/32", GM_ERR_INVALID, 0, "the octet '256' is over 255");
    cidr("10.0.0.1/33", GM_ERR_INVALID, 0, "a number from 0 to 32");
    cidr("10.0.0.5/24", GM_ERR_INVALID, 0, "host bits are set; did you mean '10.0.0.0/24'?");
    cidr("1.2.3.4/0", GM_ERR_INVALID, 0, "did you mean '0.0.0.0/0'?");
    cidr("2001:db8::/32", GM_ERR_INVALID, 0, "only IPv4 ranges are supported");
    cidr("::/0", GM_ERR_INVALID, 0, "IPv6 is not");
    cidr("10.0.0.1", GM_ERR_INVALID, 0, "write '10.0.0.1/32'");
    cidr("10.0.0/24", GM_ERR_INVALID, 0, "four numbers");
    cidr("10.0.0.0.0/24", GM_ERR_INVALID, 0, "four numbers");
    cidr(" 10.0.0.0/24", GM_ERR_INVALID, 0, NULL);
    cidr("10.0.0.0/24 ", GM_ERR_INVALID, 0, NULL);
    cidr("10.0.0.0/+8", GM_ERR_INVALID, 0, NULL);
    cidr("10.0.0.0/", GM_ERR_INVALID, 0, NULL);
    cidr("0x0a.0.0.0/8", GM_ERR_INVALID, 0, NULL);
    cidr("", GM_ERR_INVALID, 0, "empty --allow-cidr");
}

static void test_numbers_and_urls(void)
{
    int64_t v = 0;
    CHECK(gm_str_to_int64("5", 1, 20, &v) && v == 5);
    CHECK(!gm_str_to_int64("0", 1, 20, &v));
    CHECK(!gm_str_to_int64("21", 1, 20, &v));
    CHECK(!gm_str_to_int64(" 5", 1, 20, &v));
    CHECK(!gm_str_to_int64("+5", 1, 20, &v));
    CHECK(!gm_str_to_int64("5x", 1, 20, &v));
    CHECK(!gm_str_to_int64("-1", -5, 20, &v));
    CHECK(!gm_str_to_int64("", 0, 20, &v));
    CHECK(!gm_str_to_int64("99999999999999999999", 0, INT64_MAX, &v));
    CHECK(gm_str_to_int64("9223372036854775807", 0, INT64_MAX, &v) && v == INT64_MAX);
    gm_error err = {0};
    CHECK_INT(gm_url_check_http("http://127.0.0.1:5000", "X", &err), GM_OK);
    CHECK_INT(gm_url_check_http("HTTPS://ec2.us-east-1.amazonaws.com/", "X", &err), GM_OK);
    CHECK_INT(gm_url_check_http("ftp://127.0.0.1", "AWS_ENDPOINT_URL", &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "invalid AWS_ENDPOINT_URL 'ftp://127.0.0.1': expected an http://") !=
          NULL);
    gm_error_clear(&err);
    CHECK_INT(gm_url_check_http("127.0.0.1:5000", "X", &err), GM_ERR_INVALID);
    gm_error_clear(&err);
    CHECK_INT(gm_url_check_http("http://", "X", &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "no usable host") != NULL);
}

/* The client refuses a malformed environment by name before anything else. */
static void env_refused(const char *name, const char *value, const char *msg)
{
    clean_env();
    setenv(name, value, 1);
    gm_aws_client *c = NULL;
    gm_error err = {0};
    gm_aws_client_options o = {.region = "us-east-1", .transport = &mock_new()->base};
    CHECK_INT(gm_aws_client_new(&o, &c, &err), GM_ERR_INVALID);
    CHECK(c == NULL);
    if (!strstr(err.message, msg)) {
        fprintf(stderr, "  %s=%s: '%s' lacks '%s'\n", name, value, err.message, msg);
        CHECK(false);
    }
    clean_env();
}

static void test_client_environment(void)
{
    env_refused("AWS_MAX_ATTEMPTS", "many", "invalid AWS_MAX_ATTEMPTS 'many'");
    env_refused("AWS_MAX_ATTEMPTS", "0", "from 1 to 20");
    env_refused("AWS_MAX_ATTEMPTS", "21", "from 1 to 20");
    env_refused("GEUSEMAKER_RETRY_BASE_MS", "10ms", "invalid GEUSEMAKER_RETRY_BASE_MS '10ms'");
    env_refused("GEUSEMAKER_CREDENTIAL_PROCESS_TIMEOUT_MS", "-1",
                "GEUSEMAKER_CREDENTIAL_PROCESS_TIMEOUT_MS");
    env_refused("AWS_ENDPOINT_URL", "localhost:5000", "invalid AWS_ENDPOINT_URL");
    env_refused("AWS_ENDPOINT_URL_EC2", "file:///etc", "invalid AWS_ENDPOINT_URL_EC2");
    /* Ignored endpoints are not checked. */
    clean_env();
    setenv("AWS_ENDPOINT_URL", "nonsense", 1);
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    gm_error err = {0};
    CHECK_INT(gm_aws_check_environment(&err), GM_OK);
    /* A good value is taken: five attempts in all. */
    clean_env();
    setenv("AWS_MAX_ATTEMPTS", "5", 1);
    mock_transport *m = mock_new();
    for (int i = 0; i < 6; i++)
        mock_push(m, (mock_reply){.status = 503, .body = "busy"});
    gm_aws_client *c = mock_client(m, "us-east-1", 0);
    xmlDocPtr doc = NULL;
    CHECK_INT(gm_aws_query(c, &gm_svc_ec2, "DescribeVpcs", NULL, &doc, &err), GM_ERR_AWS);
    CHECK_INT(m->n_requests, 5);
    gm_aws_client_free(c);
    clean_env();
}

int main(void)
{
    GM_RUN(test_table);
    GM_RUN(test_region_check_and_suggestions);
    GM_RUN(test_endpoints_follow_the_partition);
    GM_RUN(test_policy_per_partition);
    GM_RUN(test_certificate_follows_the_partition);
    GM_RUN(test_cidrs);
    GM_RUN(test_numbers_and_urls);
    GM_RUN(test_client_environment);
    GM_TEST_END();
}
