/* The request core against canned responses: protocols, endpoints, error
 * mapping and retries. */
#include <stdlib.h>
#include <unistd.h>

#include "aws/client.h"
#include "aws/sts.h"
#include "aws/xml.h"
#include "core/str.h"
#include "gm_test.h"
#include "mock_transport.h"

static const char *IDENTITY_XML =
    "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
    "<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/alice</Arn>"
    "<UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult>"
    "<ResponseMetadata><RequestId>rid-1</RequestId></ResponseMetadata>"
    "</GetCallerIdentityResponse>";

static const char *EC2_ERROR_XML =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error>"
    "<Code>%s</Code><Message>capacity message</Message></Error></Errors>"
    "<RequestID>ec2-rid-9</RequestID></Response>";

static const char *QUERY_ERROR_XML =
    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
    "<Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
    "<RequestId>sts-rid-2</RequestId></ErrorResponse>";

static void clean_env(void)
{
    const char *vars[] = {"AWS_ENDPOINT_URL",     "AWS_ENDPOINT_URL_STS",
                          "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_IAM",
                          "AWS_REGION",           "AWS_DEFAULT_REGION",
                          "AWS_PROFILE",          "AWS_SESSION_TOKEN",
                          "AWS_MAX_ATTEMPTS",     "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret-test-key", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/geusemaker-test/config", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/geusemaker-test/credentials", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static void test_query_success_and_request_shape(void)
{
    clean_env();
    mock_transport *m = mock_new();
    mock_push(m, (mock_reply){.status = 200, .body = IDENTITY_XML});
    gm_aws_client *c = mock_client(m, "eu-west-1", 0);
    CHECK(c != NULL);
    if (!c)
        return;
    gm_caller_identity id;
    gm_error err = {0};
    CHECK_INT(gm_sts_get_caller_identity(c, &id, &err), GM_OK);
    CHECK_STR(id.account, "123456789012");
    CHECK_STR(id.arn, "arn:aws:iam::123456789012:user/alice");
    CHECK_STR(id.user_id, "AIDAEXAMPLE");
    CHECK_INT(m->n_requests, 1);
    CHECK_STR(m->methods[0], "POST");
    CHECK_STR(m->urls[0], "https://sts.eu-west-1.amazonaws.com/");
    CHECK_STR(m->bodies[0], "Action=GetCallerIdentity&Version=2011-06-15");
    CHECK_STR(gm_headers_get(&m->headers[0], "Content-Type"),
              "application/x-www-form-urlencoded; charset=utf-8");
    const char *auth = gm_headers_get(&m->headers[0], "Authorization");
    CHECK(auth && strstr(auth, "Credential=AKIDTEST/") &&
          strstr(auth, "/eu-west-1/sts/aws4_request"));
    CHECK(gm_headers_get(&m->headers[0], "X-Amz-Date") != NULL);
    CHECK(auth && !strstr(auth, "secret-test-key"));
    /* Signed as the SDKs sign: the User-Agent is sent, never signed. */
    const char *ua = gm_headers_get(&m->headers[0], "User-Agent");
    CHECK(ua && gm_str_startswith(ua, "geusemaker/"));
    CHECK(auth && strstr(auth, "SignedHeaders=amz-sdk-request;content-type;host;x-amz-date, "));
    CHECK(auth && !strstr(auth, "user-agent"));
    gm_aws_client_free(c);
}

static void test_query_params_are_encoded(void)
{
    clean_env();
    mock_transport *m = mock_new();
    mock_push(m, (mock_reply){.status = 200, .body = "<R/>"});
    gm_aws_client *c = mock_client(m, "us-east-1", 0);
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "Filter.1.Name", "tag:geusemaker deployment");
    gm_params_add(&p, "Description", " a+b  c ~*'");
    gm_params_addf(&p, "a&b=c/d", "TagSpecification.%d.Tag.%d.Value", 1, 2);
    xmlDocPtr doc = NULL;
    gm_error err = {0};
    CHECK_INT(gm_aws_query(c, &gm_svc_ec2, "DescribeVpcs", &p, &doc, &err), GM_OK);
    CHECK_STR(m->bodies[0], "Action=DescribeVpcs&Version=2016-11-15"
                            "&Filter.1.Name=tag%3Ageusemaker+deployment"
                            "&Description=+a%2Bb++c+~%2A%27"
                            "&TagSpecification.1.Tag.2.Value=a%26b%3Dc%2Fd");
    xmlFreeDoc(doc);
    gm_params_release(&p);
    gm_aws_client_free(c);
}

static void test_endpoint_overrides(void)
{
    clean_env();
    mock_transport *m = mock_new();
    gm_aws_client *c = mock_client(m, "us-west-2", 0);
    char *u = gm_aws_endpoint(c, &gm_svc_ec2);
    CHECK_STR(u, "https://ec2.us-west-2.amazonaws.com");
    free(u);
    u = gm_aws_endpoint(c, &gm_svc_iam);
    CHECK_STR(u, "https://iam.amazonaws.com");
    free(u);
    u = gm_aws_endpoint(c, &gm_svc_efs);
    CHECK_STR(u, "https://elasticfilesystem.us-west-2.amazonaws.com");
    free(u);
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/", 1);
    setenv("AWS_ENDPOINT_URL_EC2", "http://127.0.0.2:6000", 1);
    u = gm_aws_endpoint(c, &gm_svc_ec2);
    CHECK_STR(u, "http://127.0.0.2:6000");
    free(u);
    u = gm_aws_endpoint(c, &gm_svc_sts);
    CHECK_STR(u, "http://127.0.0.1:5000");
    free(u);
    CHECK(gm_aws_endpoint_is_loopback(c, &gm_svc_sts));
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    u = gm_aws_endpoint(c, &gm_svc_sts);
    CHECK_STR(u, "https://sts.us-west-2.amazonaws.com");
    free(u);
    CHECK(!gm_aws_endpoint_is_loopback(c, &gm_svc_sts));
    gm_aws_client_free(c);
    clean_env();
}

static void test_iam_signs_for_us_east_1(void)
{
    clean_env();
    mock_transport *m = mock_new();
    mock_push(m, (mock_reply){.status = 200, .body = "<GetRoleResponse/>"});
    gm_aws_client *c = mock_client(m, "ap-southeast-2", 0);
    xmlDocPtr doc = NULL;
    gm_error err = {0};
    CHECK_INT(gm_aws_query(c, &gm_svc_iam, "GetRole", NULL, &doc, &err), GM_OK);
    const char *auth = gm_headers_get(&m->headers[0], "Authorization");
    CHECK(auth && strstr(auth, "/us-east-1/iam/aws4_request"));
    xmlFreeDoc(doc);
    gm_aws_client_free(c);
}

static void test_retry_503_then_success(void)
{
    clean_env();
    mock_transport *m = mock_new();
    mock_push(m, (mock_reply){.status = 503, .body = "Service Unavailable"});
    mock_push(m, (mock_reply){.fail = GM_ERR_NETWORK});
    mock_push(m, (mock_reply){.status = 200, .body = IDENTITY_XML});
    gm_aws_client *c = mock_client(m, "us-east-1", 0);
    gm_caller_identity id;
    gm_error err = {0};
    CHECK_INT(gm_sts_get_caller_identity(c, &id, &err), GM_OK);
    CHECK_INT(m->n_requests, 3);
    CHECK(strstr(gm_headers_get(&m->headers[2], "amz-sdk-request"), "attempt=3") != NULL);
    gm_aws_client_free(c);
}

static void test_throttling_exhausts_attempts(void)
{
    clean_env();
    mock_transport *m = mock_new();
    for (int i = 0; i < 5; i++)
        mock_push(m, (mock_reply){.status = 400, .body = QUERY_ERROR_XML});
    gm_aws_client *c = mock_client(m, "us-east-1", 0);
    gm_caller_identity id;
    gm_error err = {0};
    CHECK_INT(gm_sts_get_caller_identity(c, &id, &err), GM_ERR_AWS);
    CHECK_INT(m->n_requests, 3);
    CHECK_STR(err.aws_code, "Throttling");
    CHECK_STR(err.request_id, "sts-rid-2");
    CHECK_INT(err.attempts, 3);
    CHECK(err.retryable);
    CHECK(strstr(err.message,
                 "sts GetCallerIdentity failed after retries: Throttling: Rate exceeded") != NULL);
    gm_aws_client_free(c);
}

static void test_auth_failure_is_not_retried(void)
{
    clean_env();
    mock_transport *m = mock_new();
    char body[512];
    snprintf(body, sizeof body, EC2_ERROR_XML, "AuthFailure");
    mock_push(m, (mock_reply){.status = 401, .body = body});
    mock_push(m, (mock_reply){.status = 200, .body = "<ok/>"});
    gm_aws_client *c = mock_client(m, "us-east-1", 0);
    xmlDocPtr doc = NULL;
    gm_error err = {0};
    CHECK_INT(gm_aws_query(c, &gm_svc_ec2, "DescribeVpcs", NULL, &doc, &err), GM_ERR_AUTH);
    CHECK_INT(m->n_requests, 1);
    CHECK_STR(err.aws_code, "AuthFailure");
    CHECK_STR(err.request_id, "ec2-rid-9");
    CHECK_STR(err.service, "ec2");
    CHECK_STR(err.action, "DescribeVpcs");
    CHECK(doc == NULL);
    gm_aws_client_free(c);
}

static void test_capacity_error_not_retried_by_core(void)
{
    clean_env();
    mock_transport *m = mock_new();
    char body[512];
    snprintf(body, sizeof body, EC2_ERROR_XML, "InsufficientInstanceCapacity");
    mock_push(m, (mock_reply){.status = 500, .body = body});
    gm_aws_client *c = mock_client(m, "us-east-1", 0);
    xmlDocPtr doc = NULL;
    gm_error err = {0};
    /* A 500 with a capacity code: the code decides, and it is not transient. */
    gm_status st = gm_aws_query(c, &gm_svc_ec2, "RunInstances", NULL, &doc, &err);
    CHECK_INT(st, GM_ERR_AWS);
    CHECK_STR(err.aws_code, "InsufficientInstanceCapacity");
    gm_aws_client_free(c);
}

static void test_malformed_and_oversize_responses(void)
{
    clean_env();
    mock_transport *m = mock_new();
    mock_push(m, (mock_reply){.status = 200, .body = "<unclosed><a>"});
    mock_push(m, (mock_reply){.fail = GM_ERR_LIMIT});
    mock_push(m, (mock_reply){.status = 200, .body = "<GetCallerIdentityResponse/>"});
    gm_aws_client *c = mock_client(m, "us-east-1", 0);
    xmlDocPtr doc = NULL;
    gm_error err = {0};
    CHECK_INT(gm_aws_query(c, &gm_svc_sts, "GetCallerIdentity", NULL, &doc, &err), GM_ERR_PARSE);
    CHECK(strstr(err.message, "malformed response from sts GetCallerIdentity") != NULL);
    gm_error_clear(&err);
    CHECK_INT(gm_aws_query(c, &gm_svc_sts, "GetCallerIdentity", NULL, &doc, &err), GM_ERR_LIMIT);
    CHECK_INT(m->n_requests, 2); /* an oversize body is not retried */
    gm_error_clear(&err);
    gm_caller_identity id;
    CHECK_INT(gm_sts_get_caller_identity(c, &id, &err), GM_ERR_PARSE);
    gm_aws_client_free(c);
}

static void test_json_protocol(void)
{
    clean_env();
    mock_transport *m = mock_new();
    mock_push(m, (mock_reply){.status = 200, .body = "{\"Parameter\":{\"Name\":\"/x\"}}"});
    mock_push(m, (mock_reply){.status = 400,
                              .body = "{\"__type\":\"com.amazonaws.ssm#ParameterNotFound\","
                                      "\"message\":\"not there\"}",
                              .headers = {"x-amzn-RequestId: ssm-rid"}});
    gm_aws_client *c = mock_client(m, "us-east-1", 0);
    json_t *body = json_pack("{s:s, s:b}", "Name", "/x", "WithDecryption", 1);
    json_t *out = NULL;
    gm_error err = {0};
    CHECK_INT(gm_aws_json(c, &gm_svc_ssm, "GetParameter", body, &out, &err), GM_OK);
    CHECK_STR(json_string_value(json_object_get(json_object_get(out, "Parameter"), "Name")), "/x");
    CHECK_STR(gm_headers_get(&m->headers[0], "X-Amz-Target"), "AmazonSSM.GetParameter");
    CHECK_STR(gm_headers_get(&m->headers[0], "Content-Type"), "application/x-amz-json-1.1");
    CHECK_STR(m->bodies[0], "{\"Name\":\"/x\",\"WithDecryption\":true}");
    json_decref(out);
    CHECK_INT(gm_aws_json(c, &gm_svc_ssm, "GetParameter", body, &out, &err), GM_ERR_AWS);
    CHECK_STR(err.aws_code, "ParameterNotFound");
    CHECK_STR(err.request_id, "ssm-rid");
    json_decref(body);
    gm_aws_client_free(c);
}

static void test_rest_json_protocol(void)
{
    clean_env();
    mock_transport *m = mock_new();
    mock_push(m, (mock_reply){.status = 200, .body = "{\"FileSystems\":[]}"});
    mock_push(m,
              (mock_reply){.status = 404,
                           .body = "{\"ErrorCode\":\"FileSystemNotFound\",\"Message\":\"gone\"}",
                           .headers = {"x-amzn-ErrorType: FileSystemNotFound:http://internal/"}});
    mock_push(m, (mock_reply){.status = 204});
    gm_aws_client *c = mock_client(m, "us-east-1", 0);
    json_t *out = NULL;
    gm_error err = {0};
    CHECK_INT(gm_aws_rest_json(c, &gm_svc_efs, "DescribeFileSystems", "GET",
                               "/2015-02-01/file-systems?CreationToken=abc", NULL, &out, &err),
              GM_OK);
    CHECK(json_is_array(json_object_get(out, "FileSystems")));
    CHECK_STR(m->methods[0], "GET");
    CHECK_STR(m->urls[0], "https://elasticfilesystem.us-east-1.amazonaws.com/2015-02-01/"
                          "file-systems?CreationToken=abc");
    json_decref(out);
    CHECK_INT(gm_aws_rest_json(c, &gm_svc_efs, "DeleteFileSystem", "DELETE",
                               "/2015-02-01/file-systems/fs-1", NULL, &out, &err),
              GM_ERR_AWS);
    CHECK_STR(err.aws_code, "FileSystemNotFound");
    gm_error_clear(&err);
    CHECK_INT(gm_aws_rest_json(c, &gm_svc_efs, "DeleteFileSystem", "DELETE",
                               "/2015-02-01/file-systems/fs-1", NULL, &out, &err),
              GM_OK);
    CHECK(out == NULL);
    gm_aws_client_free(c);
}

static void test_region_resolution(void)
{
    clean_env();
    char dir[] = "/tmp/gm-test-region-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/config", dir);
    FILE *f = fopen(path, "w");
    fputs("[default]\nregion = eu-central-1\n[profile work]\nregion=ap-south-1\n", f);
    fclose(f);
    setenv("AWS_CONFIG_FILE", path, 1);
    char *r = NULL;
    gm_error err = {0};
    CHECK_INT(gm_aws_resolve_region(NULL, NULL, &r, &err), GM_OK);
    CHECK_STR(r, "eu-central-1");
    free(r);
    CHECK_INT(gm_aws_resolve_region(NULL, "work", &r, &err), GM_OK);
    CHECK_STR(r, "ap-south-1");
    free(r);
    setenv("AWS_DEFAULT_REGION", "us-west-1", 1);
    CHECK_INT(gm_aws_resolve_region(NULL, NULL, &r, &err), GM_OK);
    CHECK_STR(r, "us-west-1");
    free(r);
    setenv("AWS_REGION", "us-east-2", 1);
    CHECK_INT(gm_aws_resolve_region(NULL, NULL, &r, &err), GM_OK);
    CHECK_STR(r, "us-east-2");
    free(r);
    CHECK_INT(gm_aws_resolve_region("sa-east-1", NULL, &r, &err), GM_OK);
    CHECK_STR(r, "sa-east-1");
    free(r);
    CHECK_INT(gm_aws_resolve_region("Bad Region!", NULL, &r, &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "unknown region 'Bad Region!' (from --region)") != NULL);
    /* A typo gets the nearest names; an empty flag is refused. */
    gm_error_clear(&err);
    CHECK_INT(gm_aws_resolve_region("useast1", NULL, &r, &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "did you mean 'us-east-1'?") != NULL);
    gm_error_clear(&err);
    CHECK_INT(gm_aws_resolve_region("", NULL, &r, &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "empty region from --region") != NULL);
    /* The environment and the profile are named as the source. */
    gm_error_clear(&err);
    setenv("AWS_REGION", "eu-west-9", 1);
    CHECK_INT(gm_aws_resolve_region(NULL, NULL, &r, &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "unknown region 'eu-west-9' (from AWS_REGION): did you mean "
                              "'eu-west-1', 'eu-west-2' or 'eu-west-3'?") != NULL);
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    f = fopen(path, "w");
    fputs("[default]\nregion = mars-north-1\n", f);
    fclose(f);
    gm_error_clear(&err);
    CHECK_INT(gm_aws_resolve_region(NULL, NULL, &r, &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "unknown region 'mars-north-1' (from the region of profile "
                              "'default' in the aws config file)") != NULL);
    unlink(path);
    rmdir(dir);
    clean_env();
    gm_error_clear(&err);
    CHECK_INT(gm_aws_resolve_region(NULL, NULL, &r, &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "no aws region configured") != NULL);
}

static void test_parse_error_shapes(void)
{
    gm_error err = {0};
    gm_headers h;
    gm_headers_init(&h);
    const char *b = "<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message></Error>"
                    "<RequestId>r1</RequestId></ErrorResponse>";
    CHECK_INT(gm_aws_parse_error(GM_PROTO_QUERY, 403, &h, b, strlen(b), &err), GM_ERR_AUTH);
    CHECK_STR(err.aws_code, "AccessDenied");
    CHECK_STR(err.request_id, "r1");
    gm_error_clear(&err);
    CHECK_INT(gm_aws_parse_error(GM_PROTO_QUERY, 502, &h, "<html>bad gateway", 17, &err),
              GM_ERR_AWS);
    CHECK_STR(err.aws_code, "HTTP502");
    gm_error_clear(&err);
    CHECK_INT(gm_aws_parse_error(GM_PROTO_JSON, 400, &h, "not json", 8, &err), GM_ERR_AWS);
    CHECK_STR(err.aws_code, "HTTP400");
    gm_error_clear(&err);
    /* A JSON service answered in XML (moto's authorization errors): read. */
    const char *x = "\n<?xml version=\"1.0\"?><ErrorResponse><Errors><Error><Code>AccessDenied"
                    "</Code><Message>User: arn:aws:iam::1:user/u is not authorized</Message>"
                    "</Error></Errors></ErrorResponse>";
    CHECK_INT(gm_aws_parse_error(GM_PROTO_REST_JSON, 403, &h, x, strlen(x), &err), GM_ERR_AUTH);
    CHECK_STR(err.aws_code, "AccessDenied");
    CHECK(strstr(err.message, "is not authorized") != NULL);
    CHECK(strstr(err.message, "their IAM policy does not allow this call") != NULL);
    CHECK(gm_aws_is_denied_code("UnauthorizedOperation") && gm_aws_is_auth_code("AccessDenied"));
    CHECK(!gm_aws_is_denied_code("SignatureDoesNotMatch") && !gm_aws_is_denied_code(NULL));
    gm_error_clear(&err);
    CHECK_INT(gm_aws_parse_error(GM_PROTO_JSON, 403, &h, "<html>", 6, &err), GM_ERR_AWS);
    CHECK_STR(err.aws_code, "HTTP403");
    gm_headers_release(&h);
}

int main(void)
{
    GM_RUN(test_query_success_and_request_shape);
    GM_RUN(test_query_params_are_encoded);
    GM_RUN(test_endpoint_overrides);
    GM_RUN(test_iam_signs_for_us_east_1);
    GM_RUN(test_retry_503_then_success);
    GM_RUN(test_throttling_exhausts_attempts);
    GM_RUN(test_auth_failure_is_not_retried);
    GM_RUN(test_capacity_error_not_retried_by_core);
    GM_RUN(test_malformed_and_oversize_responses);
    GM_RUN(test_json_protocol);
    GM_RUN(test_rest_json_protocol);
    GM_RUN(test_region_resolution);
    GM_RUN(test_parse_error_shapes);
    GM_TEST_END();
}
