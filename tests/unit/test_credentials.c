/* The credential provider chain: each source, their precedence, the
 * credential_process runner, IMDSv2 through a mock transport, and that no
 * secret ever reaches an error message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aws/credentials.h"
#include "core/timeutil.h"
#include "gm_test.h"

/* Every secret used below contains this marker; no error message may. */
#define SECRET_MARK "s3cr3t"

static char g_dir[256];
static char g_config[300];
static char g_creds[300];

/* ---------------------------------------------------------------------- */
/* Environment and files                                                  */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
}

static void write_config(const char *text)
{
    write_file(g_config, text);
}

static void write_creds(const char *text)
{
    write_file(g_creds, text);
}

/* A clean slate: no AWS variables, files absent, IMDS disabled. */
static void reset_env(void)
{
    static const char *vars[] = {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_CONFIG_FILE", g_config, 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", g_creds, 1);
    setenv("HOME", g_dir, 1);
    unlink(g_config);
    unlink(g_creds);
}

static void check_no_secret(const gm_error *err)
{
    if (strstr(err->message, SECRET_MARK)) {
        fprintf(stderr, "  secret in message: %s\n", err->message);
        CHECK(!"an error message holds a secret");
    }
}

/* Resolves with opts; checks the status; returns it. */
static gm_status resolve(const gm_credentials_options *opts, gm_credentials *out, gm_error *err)
{
    gm_error_clear(err);
    gm_status st = gm_credentials_resolve(opts, out, err);
    if (st != GM_OK) {
        CHECK_INT(err->status, st);
        CHECK(out->access_key_id == NULL && out->secret_access_key == NULL);
        CHECK(out->source == NULL);
    }
    check_no_secret(err);
    return st;
}

/* ---------------------------------------------------------------------- */
/* A mock transport for IMDS: routes by method and URL suffix, records     */

#define MOCK_ROUTES 16
#define MOCK_REQS 16

typedef struct route {
    const char *method;
    const char *suffix; /* the URL must end with this */
    gm_status fail;     /* GM_OK: answer status/body */
    long status;
    const char *body;
    int max_uses; /* 0: unlimited */
    int uses;
} route;

typedef struct recorded {
    char method[8];
    char url[256];
    char token[128]; /* X-aws-ec2-metadata-token, "" if absent */
    char ttl[16];    /* X-aws-ec2-metadata-token-ttl-seconds, "" if absent */
    long total_timeout_ms;
} recorded;

typedef struct mock {
    gm_transport base;
    route routes[MOCK_ROUTES];
    int nroutes;
    recorded reqs[MOCK_REQS];
    int nreqs;
} mock;

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

static gm_status mock_send(gm_transport *t, const gm_http_request *req, gm_http_response *resp,
                           gm_error *err)
{
    mock *m = (mock *)t;
    if (m->nreqs < MOCK_REQS) {
        recorded *r = &m->reqs[m->nreqs++];
        copy_str(r->method, sizeof r->method, req->method);
        copy_str(r->url, sizeof r->url, req->url);
        copy_str(r->token, sizeof r->token,
                 gm_headers_get(&req->headers, "X-aws-ec2-metadata-token"));
        copy_str(r->ttl, sizeof r->ttl,
                 gm_headers_get(&req->headers, "X-aws-ec2-metadata-token-ttl-seconds"));
        r->total_timeout_ms = req->total_timeout_ms;
    }
    for (int i = 0; i < m->nroutes; i++) {
        route *rt = &m->routes[i];
        if (strcmp(rt->method, req->method) != 0)
            continue;
        size_t ul = strlen(req->url), sl = strlen(rt->suffix);
        if (ul < sl || strcmp(req->url + ul - sl, rt->suffix) != 0)
            continue;
        if (rt->max_uses && rt->uses >= rt->max_uses)
            continue;
        rt->uses++;
        if (rt->fail != GM_OK)
            return gm_error_set(err, rt->fail, "mock transport failure");
        resp->status = rt->status;
        if (rt->body && gm_buf_appends(&resp->body, rt->body) != GM_OK)
            return gm_error_set(err, GM_ERR_LIMIT, "mock body over the limit");
        return GM_OK;
    }
    resp->status = 404;
    return GM_OK;
}

static void mock_free(gm_transport *t)
{
    (void)t;
}

static const gm_transport_vtable mock_vt = {.send = mock_send, .free = mock_free};

static void mock_init(mock *m)
{
    memset(m, 0, sizeof *m);
    m->base.vt = &mock_vt;
}

static void mock_route(mock *m, const char *method, const char *suffix, long status,
                       const char *body, int max_uses)
{
    m->routes[m->nroutes++] = (route){method, suffix, GM_OK, status, body, max_uses, 0};
}

static void mock_fail(mock *m, const char *method, const char *suffix, gm_status fail)
{
    m->routes[m->nroutes++] = (route){method, suffix, fail, 0, NULL, 0, 0};
}

#define IMDS_CREDS_JSON                                                             \
    "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2024-01-01T00:00:00Z\",\n" \
    "  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAIMDS\",\n"               \
    "  \"SecretAccessKey\" : \"imds-" SECRET_MARK "\",\n"                           \
    "  \"Token\" : \"imds-token-" SECRET_MARK "\",\n"                               \
    "  \"Expiration\" : \"2999-01-01T00:00:00Z\"\n}"

/* A healthy IMDS with role "my-role". */
static void mock_imds_ok(mock *m)
{
    mock_route(m, "PUT", "/latest/api/token", 200, "TOKEN-" SECRET_MARK, 0);
    mock_route(m, "GET", "/latest/meta-data/iam/security-credentials/", 200, "my-role\n", 0);
    mock_route(m, "GET", "/latest/meta-data/iam/security-credentials/my-role", 200, IMDS_CREDS_JSON,
               0);
}

/* ---------------------------------------------------------------------- */
/* Environment                                                            */

static void test_environment(void)
{
    reset_env();
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-" SECRET_MARK, 1);
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(NULL, &c, &err), GM_OK);
    CHECK_STR(c.source, "environment");
    CHECK_STR(c.access_key_id, "AKIDENV");
    CHECK_STR(c.secret_access_key, "env-" SECRET_MARK);
    CHECK(c.session_token == NULL);
    CHECK_INT(c.expiration, 0);
    gm_credentials_release(&c);

    setenv("AWS_SESSION_TOKEN", "envtok-" SECRET_MARK, 1);
    CHECK_INT(resolve(NULL, &c, &err), GM_OK);
    CHECK_STR(c.session_token, "envtok-" SECRET_MARK);
    gm_credentials_release(&c);

    /* An empty session token is no token. */
    setenv("AWS_SESSION_TOKEN", "", 1);
    CHECK_INT(resolve(NULL, &c, &err), GM_OK);
    CHECK(c.session_token == NULL);
    gm_credentials_release(&c);
}

static void test_environment_partial(void)
{
    reset_env();
    gm_credentials c;
    gm_error err;
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    CHECK_INT(resolve(NULL, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "AWS_SECRET_ACCESS_KEY") != NULL);

    unsetenv("AWS_ACCESS_KEY_ID");
    setenv("AWS_SECRET_ACCESS_KEY", "env-" SECRET_MARK, 1);
    CHECK_INT(resolve(NULL, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "AWS_ACCESS_KEY_ID") != NULL);

    /* A key with a newline (header injection) is refused, without quoting it. */
    setenv("AWS_ACCESS_KEY_ID", "AKID\nX-Evil: 1", 1);
    CHECK_INT(resolve(NULL, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "Evil") == NULL);
}

/* ---------------------------------------------------------------------- */
/* Shared files                                                           */

static void test_shared_credentials_file(void)
{
    reset_env();
    write_creds("[default]\n"
                "aws_access_key_id = AKIDCREDS\n"
                "aws_secret_access_key = creds-" SECRET_MARK "\n"
                "aws_session_token = credstok-" SECRET_MARK "\n"
                "[other]\n"
                "aws_access_key_id = AKIDOTHER\n"
                "aws_secret_access_key = other-" SECRET_MARK "\n");
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(NULL, &c, &err), GM_OK);
    CHECK_STR(c.source, "shared-credentials-file");
    CHECK_STR(c.access_key_id, "AKIDCREDS");
    CHECK_STR(c.secret_access_key, "creds-" SECRET_MARK);
    CHECK_STR(c.session_token, "credstok-" SECRET_MARK);
    gm_credentials_release(&c);

    /* AWS_PROFILE selects a section. */
    setenv("AWS_PROFILE", "other", 1);
    CHECK_INT(resolve(NULL, &c, &err), GM_OK);
    CHECK_STR(c.access_key_id, "AKIDOTHER");
    CHECK(c.session_token == NULL);
    gm_credentials_release(&c);

    /* opts->profile beats AWS_PROFILE. */
    gm_credentials_options o = {.profile = "default"};
    CHECK_INT(resolve(&o, &c, &err), GM_OK);
    CHECK_STR(c.access_key_id, "AKIDCREDS");
    gm_credentials_release(&c);
}

static void test_default_home_paths(void)
{
    reset_env();
    unsetenv("AWS_CONFIG_FILE");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    char awsdir[300], path[320];
    snprintf(awsdir, sizeof awsdir, "%s/.aws", g_dir);
    mkdir(awsdir, 0700);
    snprintf(path, sizeof path, "%s/credentials", awsdir);
    write_file(path,
               "[default]\naws_access_key_id = AKIDHOME\naws_secret_access_key = h-" SECRET_MARK
               "\n");
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(NULL, &c, &err), GM_OK);
    CHECK_STR(c.access_key_id, "AKIDHOME");
    CHECK_STR(c.source, "shared-credentials-file");
    gm_credentials_release(&c);
    unlink(path);

    /* "~/" in AWS_SHARED_CREDENTIALS_FILE expands to HOME. */
    snprintf(path, sizeof path, "%s/tilde-creds", g_dir);
    write_file(path,
               "[default]\naws_access_key_id = AKIDTILDE\naws_secret_access_key = t-" SECRET_MARK
               "\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "~/tilde-creds", 1);
    CHECK_INT(resolve(NULL, &c, &err), GM_OK);
    CHECK_STR(c.access_key_id, "AKIDTILDE");
    gm_credentials_release(&c);
    unlink(path);
    rmdir(awsdir);
    reset_env();
}

static void test_config_file(void)
{
    reset_env();
    write_config("[default]\n"
                 "region = us-east-1\n"
                 "aws_access_key_id = AKIDCFGDEFAULT\n"
                 "aws_secret_access_key = cfg-" SECRET_MARK "\n"
                 "[profile dev]\n"
                 "region = eu-west-1\n"
                 "aws_access_key_id = AKIDCFGDEV\n"
                 "aws_secret_access_key = dev-" SECRET_MARK "\n"
                 "[plain]\n"
                 "aws_access_key_id = AKIDNOPREFIX\n"
                 "aws_secret_access_key = np-" SECRET_MARK "\n");
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(NULL, &c, &err), GM_OK);
    CHECK_STR(c.source, "config-file");
    CHECK_STR(c.access_key_id, "AKIDCFGDEFAULT");
    gm_credentials_release(&c);

    gm_credentials_options o = {.profile = "dev"};
    CHECK_INT(resolve(&o, &c, &err), GM_OK);
    CHECK_STR(c.source, "config-file");
    CHECK_STR(c.access_key_id, "AKIDCFGDEV");
    gm_credentials_release(&c);

    /* In the config file a named profile needs the "profile " prefix. */
    o.profile = "plain";
    CHECK_INT(resolve(&o, &c, &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "profile 'plain' not found") != NULL);

    /* [profile default] wins over [default]. */
    write_config("[default]\naws_access_key_id = AKIDPLAIN\naws_secret_access_key = a-" SECRET_MARK
                 "\n"
                 "[profile default]\naws_access_key_id = AKIDPREFIXED\n"
                 "aws_secret_access_key = b-" SECRET_MARK "\n");
    CHECK_INT(resolve(NULL, &c, &err), GM_OK);
    CHECK_STR(c.access_key_id, "AKIDPREFIXED");
    gm_credentials_release(&c);
}

static void test_partial_file_keys(void)
{
    reset_env();
    write_creds("[default]\naws_access_key_id = AKIDONLY\n");
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(NULL, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "aws_secret_access_key") != NULL);
    CHECK(strstr(err.message, g_creds) != NULL);

    write_creds("[default]\naws_secret_access_key = only-" SECRET_MARK "\n");
    CHECK_INT(resolve(NULL, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "aws_access_key_id") != NULL);
}

static void test_malformed_file(void)
{
    reset_env();
    write_creds("[default]\naws_secret_access_key " SECRET_MARK "\n");
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(NULL, &c, &err), GM_ERR_PARSE);
    char want[400];
    snprintf(want, sizeof want, "%s:2", g_creds);
    CHECK(strstr(err.message, want) != NULL);
}

static void test_profile_not_found(void)
{
    reset_env();
    write_creds("[default]\naws_access_key_id = AKID\naws_secret_access_key = x-" SECRET_MARK "\n");
    gm_credentials c;
    gm_error err;
    gm_credentials_options o = {.profile = "nope"};
    CHECK_INT(resolve(&o, &c, &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "profile 'nope' not found") != NULL);
    CHECK(strstr(err.message, g_creds) != NULL);
    CHECK(strstr(err.message, g_config) != NULL);

    /* The same through AWS_PROFILE, even with no files at all. */
    unlink(g_creds);
    setenv("AWS_PROFILE", "nope2", 1);
    CHECK_INT(resolve(NULL, &c, &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "profile 'nope2' not found") != NULL);

    /* AWS_PROFILE naming a missing profile does not stop environment keys. */
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-" SECRET_MARK, 1);
    CHECK_INT(resolve(NULL, &c, &err), GM_OK);
    CHECK_STR(c.source, "environment");
    gm_credentials_release(&c);
}

/* ---------------------------------------------------------------------- */
/* Precedence                                                             */

static void test_precedence(void)
{
    reset_env();
    write_creds(
        "[default]\naws_access_key_id = AKIDCREDS\naws_secret_access_key = c-" SECRET_MARK "\n"
        "[p]\naws_access_key_id = AKIDCREDSP\naws_secret_access_key = cp-" SECRET_MARK "\n");
    write_config(
        "[default]\naws_access_key_id = AKIDCFG\naws_secret_access_key = g-" SECRET_MARK "\n"
        "credential_process = /bin/false\n"
        "[profile p]\naws_access_key_id = AKIDCFGP\naws_secret_access_key = gp-" SECRET_MARK "\n");
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-" SECRET_MARK, 1);
    gm_credentials c;
    gm_error err;

    /* env > credentials file > config file */
    CHECK_INT(resolve(NULL, &c, &err), GM_OK);
    CHECK_STR(c.source, "environment");
    gm_credentials_release(&c);

    /* AWS_PROFILE does not beat the environment keys. */
    setenv("AWS_PROFILE", "p", 1);
    CHECK_INT(resolve(NULL, &c, &err), GM_OK);
    CHECK_STR(c.source, "environment");
    gm_credentials_release(&c);

    /* An explicit profile does (as the CLI's --profile). */
    gm_credentials_options o = {.profile = "p"};
    CHECK_INT(resolve(&o, &c, &err), GM_OK);
    CHECK_STR(c.source, "shared-credentials-file");
    CHECK_STR(c.access_key_id, "AKIDCREDSP");
    gm_credentials_release(&c);

    unsetenv("AWS_PROFILE");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    CHECK_INT(resolve(NULL, &c, &err), GM_OK);
    CHECK_STR(c.source, "shared-credentials-file");
    CHECK_STR(c.access_key_id, "AKIDCREDS");
    gm_credentials_release(&c);

    /* Without the credentials file: config static keys beat credential_process
     * (which would fail: /bin/false). */
    unlink(g_creds);
    CHECK_INT(resolve(NULL, &c, &err), GM_OK);
    CHECK_STR(c.source, "config-file");
    CHECK_STR(c.access_key_id, "AKIDCFG");
    gm_credentials_release(&c);
}

static void test_files_beat_imds(void)
{
    reset_env();
    unsetenv("AWS_EC2_METADATA_DISABLED");
    write_creds("[default]\naws_access_key_id = AKIDCREDS\naws_secret_access_key = c-" SECRET_MARK
                "\n");
    mock m;
    mock_init(&m);
    mock_imds_ok(&m);
    gm_credentials_options o = {.transport = &m.base};
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(&o, &c, &err), GM_OK);
    CHECK_STR(c.source, "shared-credentials-file");
    CHECK_INT(m.nreqs, 0);
    gm_credentials_release(&c);
}

/* ---------------------------------------------------------------------- */
/* credential_process                                                     */

static gm_status resolve_process(const char *command, long timeout_ms, gm_credentials *c,
                                 gm_error *err)
{
    reset_env();
    char text[2048];
    snprintf(text, sizeof text, "[default]\nregion = us-east-1\ncredential_process = %s\n",
             command);
    write_config(text);
    gm_credentials_options o = {.process_timeout_ms = timeout_ms};
    return resolve(&o, c, err);
}

static void test_process_success(void)
{
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve_process("printf '%s' '{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\", "
                              "\"SecretAccessKey\": \"proc-" SECRET_MARK "\", "
                              "\"SessionToken\": \"proctok-" SECRET_MARK "\", "
                              "\"Expiration\": \"2999-12-31T23:59:59Z\"}'",
                              0, &c, &err),
              GM_OK);
    CHECK_STR(c.source, "credential-process");
    CHECK_STR(c.access_key_id, "AKIDPROC");
    CHECK_STR(c.secret_access_key, "proc-" SECRET_MARK);
    CHECK_STR(c.session_token, "proctok-" SECRET_MARK);
    CHECK(c.expiration == gm_time_parse_iso8601("2999-12-31T23:59:59Z"));
    gm_credentials_release(&c);

    /* No SessionToken, no Expiration; stderr output is allowed. */
    CHECK_INT(resolve_process("echo 'note for the user' >&2; echo '{\"Version\":1,"
                              "\"AccessKeyId\":\"AKIDP2\",\"SecretAccessKey\":\"p2-" SECRET_MARK
                              "\"}'",
                              0, &c, &err),
              GM_OK);
    CHECK_STR(c.access_key_id, "AKIDP2");
    CHECK(c.session_token == NULL);
    CHECK_INT(c.expiration, 0);
    gm_credentials_release(&c);
}

static void test_process_in_credentials_file(void)
{
    reset_env();
    write_creds("[default]\ncredential_process = echo '{\"Version\":1,\"AccessKeyId\":\"AKIDPC\","
                "\"SecretAccessKey\":\"pc-" SECRET_MARK "\"}'\n");
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(NULL, &c, &err), GM_OK);
    CHECK_STR(c.source, "credential-process");
    CHECK_STR(c.access_key_id, "AKIDPC");
    gm_credentials_release(&c);
}

static void test_process_failures(void)
{
    gm_credentials c;
    gm_error err;

    /* Non-zero exit: the status is named, the output is not. */
    CHECK_INT(resolve_process("echo '{\"SecretAccessKey\": \"leak-" SECRET_MARK "\"}'; exit 3", 0,
                              &c, &err),
              GM_ERR_AUTH);
    CHECK(strstr(err.message, "status 3") != NULL);
    CHECK(strstr(err.message, "credential_process") != NULL);

    CHECK_INT(resolve_process("kill -9 $$", 0, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "signal 9") != NULL);

    /* Bad JSON: the message gives a position, not the text. */
    CHECK_INT(resolve_process("echo 'not json " SECRET_MARK "'", 0, &c, &err), GM_ERR_PARSE);
    CHECK(strstr(err.message, "not valid json") != NULL);

    CHECK_INT(resolve_process("echo '{\"Version\": 2, \"AccessKeyId\": \"A\", "
                              "\"SecretAccessKey\": \"v-" SECRET_MARK "\"}'",
                              0, &c, &err),
              GM_ERR_PARSE);
    CHECK(strstr(err.message, "Version") != NULL);

    CHECK_INT(resolve_process("echo '{\"Version\": 1, \"AccessKeyId\": \"A\"}'", 0, &c, &err),
              GM_ERR_PARSE);
    CHECK(strstr(err.message, "SecretAccessKey") != NULL);

    /* Expired credentials. */
    CHECK_INT(resolve_process("echo '{\"Version\": 1, \"AccessKeyId\": \"A\", \"SecretAccessKey\": "
                              "\"e-" SECRET_MARK "\", \"Expiration\": \"2001-01-01T00:00:00Z\"}'",
                              0, &c, &err),
              GM_ERR_AUTH);
    CHECK(strstr(err.message, "expired") != NULL);

    /* Oversize output. */
    CHECK_INT(resolve_process("head -c 100000 /dev/zero | tr '\\0' a", 0, &c, &err), GM_ERR_LIMIT);

    /* A command that does not exist: the shell exits 127. */
    CHECK_INT(resolve_process("/nonexistent/gm-cred-helper", 0, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "status 127") != NULL);
}

static void test_process_timeout(void)
{
    gm_credentials c;
    gm_error err;
    int64_t t0 = gm_now_ms();
    CHECK_INT(resolve_process("exec sleep 10", 300, &c, &err), GM_ERR_TIMEOUT);
    int64_t took = gm_now_ms() - t0;
    CHECK(took >= 250 && took < 5000);
    CHECK(strstr(err.message, "timed out") != NULL);

    /* Output, then a hang: still bounded. */
    t0 = gm_now_ms();
    CHECK_INT(resolve_process("echo '{\"Version\": 1}'; exec sleep 10", 300, &c, &err),
              GM_ERR_TIMEOUT);
    CHECK(gm_now_ms() - t0 < 5000);

    /* Closing stdout early but not exiting is bounded too. */
    t0 = gm_now_ms();
    CHECK_INT(resolve_process("exec >&-; exec sleep 10", 300, &c, &err), GM_ERR_TIMEOUT);
    CHECK(gm_now_ms() - t0 < 5000);
}

static void test_process_parse_direct(void)
{
    gm_credentials c;
    gm_error err;
    static const struct {
        const char *json;
        gm_status want;
    } cases[] = {
        {"{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}", GM_OK},
        {"{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"SessionToken\":null}",
         GM_OK},
        {"{\"Version\":\"1\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}", GM_ERR_PARSE},
        {"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}", GM_ERR_PARSE},
        {"{\"Version\":1.0,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\"}", GM_ERR_PARSE},
        {"{\"Version\":1,\"AccessKeyId\":\"\",\"SecretAccessKey\":\"S\"}", GM_ERR_PARSE},
        {"{\"Version\":1,\"AccessKeyId\":5,\"SecretAccessKey\":\"S\"}", GM_ERR_PARSE},
        {"{\"Version\":1,\"AccessKeyId\":\"A B\",\"SecretAccessKey\":\"S\"}", GM_ERR_PARSE},
        {"{\"Version\":1,\"AccessKeyId\":\"A\\u0000B\",\"SecretAccessKey\":\"S\"}", GM_ERR_PARSE},
        {"{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"S\",\"Expiration\":\"soon\"}",
         GM_ERR_PARSE},
        {"[1]", GM_ERR_PARSE},
        {"", GM_ERR_PARSE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gm_error_clear(&err);
        gm_status st = gm_credential_process_parse(cases[i].json, strlen(cases[i].json), &c, &err);
        if (st != cases[i].want)
            fprintf(stderr, "  case %zu: %s\n", i, err.message);
        CHECK_INT(st, cases[i].want);
        if (st == GM_OK) {
            CHECK_STR(c.source, "credential-process");
            CHECK(c.session_token == NULL);
        } else {
            CHECK(c.access_key_id == NULL);
        }
        gm_credentials_release(&c);
    }
    CHECK_INT(gm_credential_process_parse(NULL, 0, &c, &err), GM_ERR_PARSE);

    /* IMDS documents. */
    gm_error_clear(&err);
    CHECK_INT(gm_imds_credentials_parse(IMDS_CREDS_JSON, strlen(IMDS_CREDS_JSON), &c, &err), GM_OK);
    CHECK_STR(c.source, "imds");
    CHECK_STR(c.session_token, "imds-token-" SECRET_MARK);
    gm_credentials_release(&c);
    const char *failed = "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"AccessKeyId\":\"A\","
                         "\"SecretAccessKey\":\"S\"}";
    CHECK_INT(gm_imds_credentials_parse(failed, strlen(failed), &c, &err), GM_ERR_PARSE);
}

/* ---------------------------------------------------------------------- */
/* Reserved slots                                                         */

static void test_unsupported_slots(void)
{
    gm_credentials c;
    gm_error err;
    reset_env();
    write_config(
        "[profile ar]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = default\n"
        "[default]\naws_access_key_id = AKID\naws_secret_access_key = d-" SECRET_MARK "\n");
    gm_credentials_options o = {.profile = "ar"};
    CHECK_INT(resolve(&o, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "assume-role profiles are not supported yet") != NULL);
    CHECK(strstr(err.message, "'ar'") != NULL);

    /* role_arn in the credentials file counts too. */
    write_creds("[ar2]\nrole_arn = arn:aws:iam::123456789012:role/r\n");
    o.profile = "ar2";
    CHECK_INT(resolve(&o, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "not supported yet") != NULL);

    /* Web identity from the environment (default profile has keys in config:
     * the SDKs try web identity first). */
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/tmp/token", 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
    CHECK_INT(resolve(NULL, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "web identity") != NULL);
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    unsetenv("AWS_ROLE_ARN");

    write_config("[profile sso]\nsso_session = corp\nsso_account_id = 1\n");
    o.profile = "sso";
    CHECK_INT(resolve(&o, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "sso") != NULL);
}

/* ---------------------------------------------------------------------- */
/* IMDS                                                                   */

static void test_imds_success(void)
{
    reset_env();
    unsetenv("AWS_EC2_METADATA_DISABLED");
    mock m;
    mock_init(&m);
    mock_imds_ok(&m);
    gm_credentials_options o = {.transport = &m.base};
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(&o, &c, &err), GM_OK);
    CHECK_STR(c.source, "imds");
    CHECK_STR(c.access_key_id, "ASIAIMDS");
    CHECK_STR(c.secret_access_key, "imds-" SECRET_MARK);
    CHECK_STR(c.session_token, "imds-token-" SECRET_MARK);
    CHECK(c.expiration == gm_time_parse_iso8601("2999-01-01T00:00:00Z"));
    gm_credentials_release(&c);

    CHECK_INT(m.nreqs, 3);
    /* The token PUT comes first, with the TTL header and no token. */
    CHECK_STR(m.reqs[0].method, "PUT");
    CHECK_STR(m.reqs[0].url, "http://169.254.169.254/latest/api/token");
    CHECK_STR(m.reqs[0].ttl, "21600");
    CHECK_STR(m.reqs[0].token, "");
    CHECK_INT(m.reqs[0].total_timeout_ms, 1000);
    /* Then the role list and the role, each with the token. */
    CHECK_STR(m.reqs[1].method, "GET");
    CHECK_STR(m.reqs[1].url, "http://169.254.169.254/latest/meta-data/iam/security-credentials/");
    CHECK_STR(m.reqs[1].token, "TOKEN-" SECRET_MARK);
    CHECK_STR(m.reqs[2].method, "GET");
    CHECK_STR(m.reqs[2].url,
              "http://169.254.169.254/latest/meta-data/iam/security-credentials/my-role");
    CHECK_STR(m.reqs[2].token, "TOKEN-" SECRET_MARK);
    CHECK_INT(m.reqs[2].total_timeout_ms, 1000);
}

static void test_imds_endpoint_and_timeout(void)
{
    reset_env();
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_DISABLED", "false", 1);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9999/", 1);
    mock m;
    mock_init(&m);
    mock_imds_ok(&m);
    gm_credentials_options o = {.transport = &m.base, .imds_timeout_ms = 250};
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(&o, &c, &err), GM_OK);
    gm_credentials_release(&c);
    CHECK_INT(m.nreqs, 3);
    CHECK_STR(m.reqs[0].url, "http://127.0.0.1:9999/latest/api/token");
    CHECK_INT(m.reqs[0].total_timeout_ms, 250);

    /* IPv6 endpoint mode. */
    unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6", 1);
    mock_init(&m);
    mock_imds_ok(&m);
    CHECK_INT(resolve(&o, &c, &err), GM_OK);
    gm_credentials_release(&c);
    CHECK_STR(m.reqs[0].url, "http://[fd00:ec2::254]/latest/api/token");
}

static void test_imds_disabled(void)
{
    reset_env();
    setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
    mock m;
    mock_init(&m);
    mock_imds_ok(&m);
    gm_credentials_options o = {.transport = &m.base};
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(&o, &c, &err), GM_ERR_AUTH);
    CHECK_INT(m.nreqs, 0);
    CHECK(strstr(err.message, "instance metadata (disabled)") != NULL);

    /* No transport: skipped too. */
    unsetenv("AWS_EC2_METADATA_DISABLED");
    CHECK_INT(resolve(NULL, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "instance metadata (no transport)") != NULL);
}

static void test_imds_unreachable(void)
{
    reset_env();
    unsetenv("AWS_EC2_METADATA_DISABLED");
    mock m;
    mock_init(&m);
    mock_fail(&m, "PUT", "/latest/api/token", GM_ERR_TIMEOUT);
    gm_credentials_options o = {.transport = &m.base};
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(&o, &c, &err), GM_ERR_AUTH);
    CHECK_INT(m.nreqs, 1); /* no retry when nothing answers */
    CHECK(strstr(err.message, "no aws credentials found") != NULL);
    CHECK(strstr(err.message, "instance metadata (no response from 'http://169.254.169.254')") !=
          NULL);

    /* The token refused (IMDS turned off on the instance). */
    mock_init(&m);
    mock_route(&m, "PUT", "/latest/api/token", 403, "Forbidden", 0);
    CHECK_INT(resolve(&o, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "http 403") != NULL);
}

static void test_imds_no_role(void)
{
    reset_env();
    unsetenv("AWS_EC2_METADATA_DISABLED");
    mock m;
    mock_init(&m);
    mock_route(&m, "PUT", "/latest/api/token", 200, "TOKEN", 0);
    mock_route(&m, "GET", "/security-credentials/", 404, "Not Found", 0);
    gm_credentials_options o = {.transport = &m.base};
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(&o, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "no instance role") != NULL);
    CHECK_INT(m.nreqs, 2);
}

static void test_imds_retry_once(void)
{
    reset_env();
    unsetenv("AWS_EC2_METADATA_DISABLED");
    mock m;
    mock_init(&m);
    mock_route(&m, "PUT", "/latest/api/token", 200, "TOKEN", 0);
    mock_route(&m, "GET", "/security-credentials/", 503, "busy", 1);
    mock_route(&m, "GET", "/security-credentials/", 200, "my-role", 0);
    mock_fail(&m, "GET", "/security-credentials/my-role", GM_ERR_NETWORK);
    m.routes[m.nroutes - 1].max_uses = 1;
    mock_route(&m, "GET", "/security-credentials/my-role", 200, IMDS_CREDS_JSON, 0);
    gm_credentials_options o = {.transport = &m.base};
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(&o, &c, &err), GM_OK);
    CHECK_STR(c.source, "imds");
    gm_credentials_release(&c);
    CHECK_INT(m.nreqs, 5);

    /* Two failures in a row: an error, not a third attempt. */
    mock_init(&m);
    mock_route(&m, "PUT", "/latest/api/token", 200, "TOKEN", 0);
    mock_route(&m, "GET", "/security-credentials/", 200, "my-role", 0);
    mock_route(&m, "GET", "/security-credentials/my-role", 500, "oops", 0);
    CHECK_INT(resolve(&o, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "http 500") != NULL);
    CHECK(strstr(err.message, "my-role") != NULL);
    CHECK_INT(m.nreqs, 4);
}

static void test_imds_bad_document(void)
{
    reset_env();
    unsetenv("AWS_EC2_METADATA_DISABLED");
    mock m;
    mock_init(&m);
    mock_route(&m, "PUT", "/latest/api/token", 200, "TOKEN", 0);
    mock_route(&m, "GET", "/security-credentials/", 200, "my-role", 0);
    mock_route(&m, "GET", "/security-credentials/my-role", 200,
               "{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"bad " SECRET_MARK "\"", 0);
    gm_credentials_options o = {.transport = &m.base};
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(&o, &c, &err), GM_ERR_PARSE);
    CHECK(strstr(err.message, "my-role") != NULL);
}

static void test_env_beats_imds(void)
{
    reset_env();
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-" SECRET_MARK, 1);
    mock m;
    mock_init(&m);
    mock_imds_ok(&m);
    gm_credentials_options o = {.transport = &m.base};
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(&o, &c, &err), GM_OK);
    CHECK_STR(c.source, "environment");
    CHECK_INT(m.nreqs, 0);
    gm_credentials_release(&c);

    /* credential_process beats IMDS. */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    write_config("[default]\ncredential_process = echo '{\"Version\":1,\"AccessKeyId\":\"AKIDP\","
                 "\"SecretAccessKey\":\"p-" SECRET_MARK "\"}'\n");
    CHECK_INT(resolve(&o, &c, &err), GM_OK);
    CHECK_STR(c.source, "credential-process");
    CHECK_INT(m.nreqs, 0);
    gm_credentials_release(&c);
}

/* ---------------------------------------------------------------------- */
/* Nothing found                                                          */

static void test_nothing_found(void)
{
    reset_env();
    gm_credentials c;
    gm_error err;
    CHECK_INT(resolve(NULL, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "no aws credentials found (tried: ") == err.message);
    CHECK(strstr(err.message, "environment variables") != NULL);
    CHECK(strstr(err.message, "shared credentials file") != NULL);
    CHECK(strstr(err.message, g_creds) != NULL);
    CHECK(strstr(err.message, "config file") != NULL);
    CHECK(strstr(err.message, g_config) != NULL);
    CHECK(strstr(err.message, "credential_process") != NULL);
    CHECK(strstr(err.message, "instance metadata (disabled)") != NULL);

    /* With files present (default profile without keys). */
    write_creds("[other]\naws_access_key_id = A\naws_secret_access_key = o-" SECRET_MARK "\n");
    write_config("[default]\nregion = us-east-1\n");
    CHECK_INT(resolve(NULL, &c, &err), GM_ERR_AUTH);
    CHECK(strstr(err.message, "profile 'default'") != NULL);
}

/* ---------------------------------------------------------------------- */
/* Small public functions                                                 */

static void test_copy_release(void)
{
    gm_credentials a = {0}, b;
    gm_credentials_release(NULL);
    gm_credentials_release(&a);
    a.access_key_id = strdup("AKID");
    a.secret_access_key = strdup("x-" SECRET_MARK);
    a.session_token = NULL;
    a.expiration = 42;
    a.source = "environment";
    CHECK_INT(gm_credentials_copy(&b, &a), GM_OK);
    CHECK_STR(b.access_key_id, "AKID");
    CHECK_STR(b.secret_access_key, "x-" SECRET_MARK);
    CHECK(b.secret_access_key != a.secret_access_key);
    CHECK(b.session_token == NULL);
    CHECK_INT(b.expiration, 42);
    CHECK_STR(b.source, "environment");
    gm_credentials_release(&a);
    CHECK(a.access_key_id == NULL && a.secret_access_key == NULL && a.source == NULL);
    gm_credentials_release(&b);
    gm_credentials_release(&b); /* twice is fine */
}

static void test_profile_name(void)
{
    unsetenv("AWS_PROFILE");
    CHECK_STR(gm_profile_name(NULL), "default");
    CHECK_STR(gm_profile_name(""), "default");
    CHECK_STR(gm_profile_name("x"), "x");
    setenv("AWS_PROFILE", "envp", 1);
    CHECK_STR(gm_profile_name(NULL), "envp");
    CHECK_STR(gm_profile_name("x"), "x");
    setenv("AWS_PROFILE", "", 1);
    CHECK_STR(gm_profile_name(NULL), "default");
    unsetenv("AWS_PROFILE");
}

static void test_config_profile_get(void)
{
    reset_env();
    char *v = (char *)1;
    gm_error err;
    gm_error_clear(&err);
    CHECK_INT(gm_config_profile_get(NULL, "region", &v, &err), GM_OK); /* no file */
    CHECK(v == NULL);

    write_config("[default]\nregion = us-east-1\n[profile dev]\nREGION = eu-west-1\n");
    CHECK_INT(gm_config_profile_get(NULL, "region", &v, &err), GM_OK);
    CHECK_STR(v, "us-east-1");
    free(v);
    CHECK_INT(gm_config_profile_get("dev", "region", &v, &err), GM_OK);
    CHECK_STR(v, "eu-west-1");
    free(v);
    setenv("AWS_PROFILE", "dev", 1);
    CHECK_INT(gm_config_profile_get(NULL, "region", &v, &err), GM_OK);
    CHECK_STR(v, "eu-west-1");
    free(v);
    CHECK_INT(gm_config_profile_get("missing", "region", &v, &err), GM_OK);
    CHECK(v == NULL);
    CHECK_INT(gm_config_profile_get("dev", "output", &v, &err), GM_OK);
    CHECK(v == NULL);

    write_config("[default]\nbroken line\n");
    CHECK_INT(gm_config_profile_get(NULL, "region", &v, &err), GM_ERR_PARSE);
    CHECK(v == NULL);
    CHECK(strstr(err.message, ":2") != NULL);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/gm_test_creds_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(g_config, sizeof g_config, "%s/config", g_dir);
    snprintf(g_creds, sizeof g_creds, "%s/credentials", g_dir);

    GM_RUN(test_environment);
    GM_RUN(test_environment_partial);
    GM_RUN(test_shared_credentials_file);
    GM_RUN(test_default_home_paths);
    GM_RUN(test_config_file);
    GM_RUN(test_partial_file_keys);
    GM_RUN(test_malformed_file);
    GM_RUN(test_profile_not_found);
    GM_RUN(test_precedence);
    GM_RUN(test_files_beat_imds);
    GM_RUN(test_process_success);
    GM_RUN(test_process_in_credentials_file);
    GM_RUN(test_process_failures);
    GM_RUN(test_process_timeout);
    GM_RUN(test_process_parse_direct);
    GM_RUN(test_unsupported_slots);
    GM_RUN(test_imds_success);
    GM_RUN(test_imds_endpoint_and_timeout);
    GM_RUN(test_imds_disabled);
    GM_RUN(test_imds_unreachable);
    GM_RUN(test_imds_no_role);
    GM_RUN(test_imds_retry_once);
    GM_RUN(test_imds_bad_document);
    GM_RUN(test_env_beats_imds);
    GM_RUN(test_nothing_found);
    GM_RUN(test_copy_release);
    GM_RUN(test_profile_name);
    GM_RUN(test_config_profile_get);

    reset_env();
    rmdir(g_dir);
    GM_TEST_END();
}
