#include "aws/client.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aws/partition.h"
#include "aws/sigv4.h"
#include "aws/xml.h"
#include "core/crypto.h"
#include "core/str.h"
#include "core/timeutil.h"

const gm_aws_service gm_svc_ec2 = {"ec2", "ec2", "EC2", "2016-11-15", NULL, GM_PROTO_QUERY, false};
const gm_aws_service gm_svc_sts = {"sts", "sts", "STS", "2011-06-15", NULL, GM_PROTO_QUERY, false};
const gm_aws_service gm_svc_iam = {"iam", "iam", "IAM", "2010-05-08", NULL, GM_PROTO_QUERY, true};
const gm_aws_service gm_svc_elbv2 = {"elasticloadbalancing",
                                     "elasticloadbalancing",
                                     "ELASTIC_LOAD_BALANCING_V2",
                                     "2015-12-01",
                                     NULL,
                                     GM_PROTO_QUERY,
                                     false};
const gm_aws_service gm_svc_autoscaling = {
    "autoscaling", "autoscaling", "AUTO_SCALING", "2011-01-01", NULL, GM_PROTO_QUERY, false};
const gm_aws_service gm_svc_ssm = {"ssm", "ssm", "SSM", NULL, "AmazonSSM", GM_PROTO_JSON, false};
const gm_aws_service gm_svc_efs = {
    "elasticfilesystem", "elasticfilesystem", "EFS", NULL, NULL, GM_PROTO_REST_JSON, false};
const gm_aws_service gm_svc_tagging = {"tagging",
                                       "tagging",
                                       "RESOURCE_GROUPS_TAGGING_API",
                                       NULL,
                                       "ResourceGroupsTaggingAPI_20170126",
                                       GM_PROTO_JSON,
                                       false};
const gm_aws_service gm_svc_pricing = {
    "pricing", "api.pricing", "PRICING", NULL, "AWSPriceListService", GM_PROTO_JSON, false};

struct gm_aws_client {
    char *region;
    char *profile;
    gm_transport *transport;
    gm_retry_policy retry;
    pthread_mutex_t cred_lock;
    gm_credentials creds;
    gm_aws_call_observer observer;
    void *observer_ctx;
    long total_timeout_ms;
    long process_timeout_ms;       /* credential_process deadline; 0: the chain's */
    const gm_partition *partition; /* of region; never NULL once made */
    bool read_only;                /* refuse every action but Describe*, Get*, List* */
};

void gm_params_init(gm_params *p)
{
    gm_headers_init(&p->list);
    p->status = GM_OK;
    p->once = false;
}

void gm_params_release(gm_params *p)
{
    gm_headers_release(&p->list);
    p->status = GM_OK;
}

void gm_params_add(gm_params *p, const char *name, const char *value)
{
    if (p->status == GM_OK)
        p->status = gm_headers_add(&p->list, name, value);
}

void gm_params_addf(gm_params *p, const char *value, const char *name_fmt, ...)
{
    va_list ap;
    va_start(ap, name_fmt);
    char *name = NULL;
    int n = vasprintf(&name, name_fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (p->status == GM_OK)
            p->status = GM_ERR_NOMEM;
        return;
    }
    gm_params_add(p, name, value);
    free(name);
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

gm_status gm_aws_resolve_region(const char *flag, const char *profile, char **out, gm_error *err)
{
    *out = NULL;
    const char *src = "--region";
    const char *r = flag;
    if (!r && (r = env_nonempty("AWS_REGION")))
        src = "AWS_REGION";
    if (!r && (r = env_nonempty("AWS_DEFAULT_REGION")))
        src = "AWS_DEFAULT_REGION";
    char *from_profile = NULL;
    char where[300] = "";
    if (!r) {
        gm_error perr = {0};
        if (gm_config_profile_get(profile, "region", &from_profile, &perr) == GM_OK && from_profile)
            r = from_profile;
        snprintf(where, sizeof where, "the region of profile '%s' in the aws config file",
                 gm_profile_name(profile));
        src = where;
    }
    if (!r)
        return gm_error_set(err, GM_ERR_INVALID,
                            "no aws region configured (tried --region, AWS_REGION, "
                            "AWS_DEFAULT_REGION and the region of profile '%s'): pass --region "
                            "REGION or set AWS_REGION",
                            gm_profile_name(profile));
    gm_status st = gm_region_check(r, src, err);
    if (st != GM_OK) {
        free(from_profile);
        return st;
    }
    *out = from_profile ? from_profile : strdup(r);
    return *out ? GM_OK : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
}

/* A whole-number environment variable within [min, max]; unset or empty
 * leaves *out alone. Anything else is refused by name: never a silent
 * default. */
static GM_MUST_CHECK gm_status env_number(const char *name, int64_t min, int64_t max, int64_t *out,
                                          gm_error *err)
{
    const char *v = env_nonempty(name);
    if (v && !gm_str_to_int64(v, min, max, out))
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid %s '%.64s': expected a whole number from %lld to %lld (or "
                            "unset it)",
                            name, v, (long long)min, (long long)max);
    return GM_OK;
}

/* The services whose endpoint can be overridden (AWS_ENDPOINT_URL_<ID>). */
static const gm_aws_service *const overridable[] = {
    &gm_svc_ec2, &gm_svc_sts,     &gm_svc_iam,     &gm_svc_elbv2,       &gm_svc_ssm,
    &gm_svc_efs, &gm_svc_pricing, &gm_svc_tagging, &gm_svc_autoscaling,
};

static bool endpoints_ignored(void)
{
    const char *ignore = getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    return ignore && strcasecmp(ignore, "true") == 0;
}

/* The numbers the client takes from the environment. */
typedef struct env_numbers {
    int64_t max_attempts, retry_base_ms, process_timeout_ms;
} env_numbers;

static GM_MUST_CHECK gm_status read_env_numbers(env_numbers *n, gm_error *err)
{
    n->max_attempts = 3;
    n->retry_base_ms = 1000;
    n->process_timeout_ms = 0;
    gm_status st =
        env_number("AWS_MAX_ATTEMPTS", 1, GM_AWS_MAX_ATTEMPTS_MAX, &n->max_attempts, err);
    if (st == GM_OK)
        st = env_number("GEUSEMAKER_RETRY_BASE_MS", 1, 60000, &n->retry_base_ms, err);
    if (st == GM_OK)
        st = env_number("GEUSEMAKER_CREDENTIAL_PROCESS_TIMEOUT_MS", 1, 3600000,
                        &n->process_timeout_ms, err);
    return st;
}

gm_status gm_aws_check_environment(gm_error *err)
{
    env_numbers n;
    gm_status st = read_env_numbers(&n, err);
    if (st != GM_OK || endpoints_ignored())
        return st;
    const char *url = env_nonempty("AWS_ENDPOINT_URL");
    if (url)
        st = gm_url_check_http(url, "AWS_ENDPOINT_URL", err);
    for (size_t i = 0; st == GM_OK && i < sizeof overridable / sizeof *overridable; i++) {
        char name[96];
        snprintf(name, sizeof name, "AWS_ENDPOINT_URL_%s", overridable[i]->env_id);
        if ((url = env_nonempty(name)))
            st = gm_url_check_http(url, name, err);
    }
    return st;
}

/* Whatever goes wrong in the credential chain (nothing found, a
 * credential_process that fails, times out, writes too much or the wrong
 * document, a malformed credentials file) is a credential problem:
 * GM_ERR_AUTH, exit 4. A profile that does not exist stays bad input. */
static gm_status credential_failure(gm_status st, gm_error *err)
{
    if (st == GM_OK || st == GM_ERR_NOMEM || st == GM_ERR_INVALID || st == GM_ERR_AUTH)
        return st;
    if (err && err->status == st)
        err->status = GM_ERR_AUTH;
    return GM_ERR_AUTH;
}

/* Everything from the environment, checked before anything else; the
 * options win over it. */
static GM_MUST_CHECK gm_status client_settings(const gm_aws_client_options *opts, gm_aws_client *c,
                                               int *out_attempts, int64_t *out_base_ms,
                                               gm_error *err)
{
    env_numbers n;
    gm_status st = gm_aws_check_environment(err);
    if (st == GM_OK)
        st = read_env_numbers(&n, err);
    if (st != GM_OK)
        return st;
    *out_attempts = opts->max_attempts > 0 ? opts->max_attempts : (int)n.max_attempts;
    *out_base_ms = opts->retry_base_ms > 0 ? opts->retry_base_ms : n.retry_base_ms;
    c->process_timeout_ms =
        opts->process_timeout_ms > 0 ? opts->process_timeout_ms : (long)n.process_timeout_ms;
    return GM_OK;
}

gm_status gm_aws_client_new(const gm_aws_client_options *opts, gm_aws_client **out, gm_error *err)
{
    *out = NULL;
    gm_aws_client_options none = {0};
    if (!opts)
        opts = &none;
    gm_aws_client *c = calloc(1, sizeof *c);
    if (!c) {
        gm_transport_free(opts->transport);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&c->cred_lock, NULL);
    c->observer = opts->observer;
    c->observer_ctx = opts->observer_ctx;
    c->total_timeout_ms = opts->total_timeout_ms;
    c->transport = opts->transport;
    int attempts = 0;
    int64_t base_ms = 0;
    gm_status st = client_settings(opts, c, &attempts, &base_ms, err);
    gm_retry_policy_init(&c->retry, attempts, base_ms);
    if (st != GM_OK)
        goto error;
    if (opts->profile && !(c->profile = strdup(opts->profile))) {
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        goto error;
    }
    /* The region first: a bad one is refused before the credential chain
     * runs anything (credential_process, IMDS). */
    st = gm_aws_resolve_region(opts->region, opts->profile, &c->region, err);
    if (st != GM_OK)
        goto error;
    c->partition = gm_partition_of(c->region);
    if (!c->transport) {
        gm_transport_options topts = {
            .connect_timeout_ms = opts->connect_timeout_ms,
            .total_timeout_ms = opts->total_timeout_ms,
            .ca_bundle = env_nonempty("AWS_CA_BUNDLE"),
        };
        c->transport = gm_transport_curl_new(&topts, err);
        if (!c->transport) {
            st = GM_ERR_NOMEM;
            goto error;
        }
    }
    gm_credentials_options copts = {.profile = opts->profile,
                                    .transport = c->transport,
                                    .process_timeout_ms = c->process_timeout_ms};
    st = credential_failure(gm_credentials_resolve(&copts, &c->creds, err), err);
    if (st != GM_OK)
        goto error;
    *out = c;
    return GM_OK;
error:
    gm_aws_client_free(c);
    return st;
}

void gm_aws_client_free(gm_aws_client *c)
{
    if (!c)
        return;
    gm_credentials_release(&c->creds);
    gm_transport_free(c->transport);
    gm_retry_policy_release(&c->retry);
    pthread_mutex_destroy(&c->cred_lock);
    free(c->region);
    free(c->profile);
    free(c);
}

const char *gm_aws_client_region(const gm_aws_client *c)
{
    return c->region;
}

const gm_credentials *gm_aws_client_credentials(const gm_aws_client *c)
{
    return &c->creds;
}

gm_transport *gm_aws_client_transport(gm_aws_client *c)
{
    return c->transport;
}

char *gm_aws_endpoint(const gm_aws_client *c, const gm_aws_service *svc)
{
    if (!endpoints_ignored()) {
        char name[96];
        snprintf(name, sizeof name, "AWS_ENDPOINT_URL_%s", svc->env_id);
        const char *url = env_nonempty(name);
        if (!url)
            url = env_nonempty("AWS_ENDPOINT_URL");
        if (url) {
            char *copy = strdup(url);
            size_t n = copy ? strlen(copy) : 0;
            while (n > 0 && copy[n - 1] == '/')
                copy[--n] = '\0';
            return copy;
        }
    }
    const gm_partition *p = c->partition;
    if (svc->global && svc == &gm_svc_iam)
        return gm_strfmt("https://%s", p->iam_host);
    if (svc->global)
        return gm_strfmt("https://%s.%s", svc->endpoint_prefix, p->dns_suffix);
    return gm_strfmt("https://%s.%s.%s", svc->endpoint_prefix, c->region, p->dns_suffix);
}

const gm_partition *gm_aws_client_partition(const gm_aws_client *c)
{
    return c->partition;
}

bool gm_aws_endpoint_is_loopback(const gm_aws_client *c, const gm_aws_service *svc)
{
    char *url = gm_aws_endpoint(c, svc);
    bool loop = url && gm_url_is_loopback(url);
    free(url);
    return loop;
}

bool gm_aws_is_auth_code(const char *code)
{
    static const char *const codes[] = {
        "AuthFailure",
        "UnauthorizedOperation",
        "AccessDenied",
        "AccessDeniedException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "MissingAuthenticationToken",
        "IncompleteSignature",
        "UnauthorizedAccess",
        "OptInRequired",
    };
    if (!code)
        return false;
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

bool gm_aws_is_denied_code(const char *code)
{
    static const char *const codes[] = {"AccessDenied", "AccessDeniedException",
                                        "UnauthorizedOperation", "UnauthorizedAccess"};
    for (size_t i = 0; code && i < sizeof codes / sizeof *codes; i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return false;
}

static void copy_field(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* "com.amazon.coral.service#ThrottlingException" or "Code:http://..." -> the code. */
static void clean_code(char *code)
{
    char *hash = strrchr(code, '#');
    if (hash)
        memmove(code, hash + 1, strlen(hash + 1) + 1);
    code[strcspn(code, ":")] = '\0';
    gm_str_trim(code);
}

/* The error fields of an XML error body (Query protocols: <Error><Code>,
 * <Message>, and a RequestId anywhere). */
static void xml_error_fields(const char *body, size_t len, char code[128], char message[512],
                             char request_id[128])
{
    xmlDocPtr doc = NULL;
    if (!len || gm_xml_parse(body, len, &doc, NULL) != GM_OK)
        return;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    xmlNodePtr e = gm_xml_find(root, "Error");
    if (e) {
        gm_xml_text_to(e, "Code", code, 128);
        gm_xml_text_to(e, "Message", message, 512);
    }
    xmlNodePtr rid = gm_xml_find(root, "RequestId");
    if (!rid)
        rid = gm_xml_find(root, "RequestID");
    if (rid && !*request_id)
        gm_xml_text_to(rid, "", request_id, 128);
    xmlFreeDoc(doc);
}

/* The error fields of a JSON error body (JSON and REST-JSON protocols). */
static void json_error_fields(const char *body, size_t len, char code[128], char message[512])
{
    json_error_t jerr;
    json_t *j = len ? json_loadb(body, len, 0, &jerr) : NULL;
    if (json_is_object(j)) {
        const char *keys_code[] = {"__type", "code", "Code", "ErrorCode"};
        for (size_t i = 0; i < 4 && !*code; i++)
            copy_field(code, 128, json_string_value(json_object_get(j, keys_code[i])));
        const char *keys_msg[] = {"message", "Message", "errorMessage"};
        for (size_t i = 0; i < 3 && !*message; i++)
            copy_field(message, 512, json_string_value(json_object_get(j, keys_msg[i])));
    }
    json_decref(j);
}

/* Where an XML body starts after leading blanks, or len when it is none. */
static size_t xml_start(const char *body, size_t len)
{
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    return i < len && body[i] == '<' ? i : len;
}

gm_status gm_aws_parse_error(gm_protocol proto, long http_status, const gm_headers *headers,
                             const char *body, size_t len, gm_error *err)
{
    char code[128] = "", message[512] = "", request_id[128] = "";
    const char *hdr_id = headers ? gm_headers_get(headers, "x-amzn-RequestId") : NULL;
    if (!hdr_id && headers)
        hdr_id = gm_headers_get(headers, "x-amz-request-id");
    copy_field(request_id, sizeof request_id, hdr_id);

    if (proto == GM_PROTO_QUERY) {
        xml_error_fields(body, len, code, message, request_id);
    } else {
        const char *hdr_type = headers ? gm_headers_get(headers, "x-amzn-ErrorType") : NULL;
        copy_field(code, sizeof code, hdr_type);
        json_error_fields(body, len, code, message);
        /* A gateway or an emulator may answer a JSON service in XML (moto's
         * authorization errors do): read it rather than lose the code. */
        size_t at = xml_start(body, len);
        if (!*code && !*message && at < len)
            xml_error_fields(body + at, len - at, code, message, request_id);
    }
    clean_code(code);
    if (!*code)
        snprintf(code, sizeof code, "HTTP%ld", http_status);
    if (!*message) {
        if (http_status >= 500)
            snprintf(message, sizeof message, "the service answered http %ld", http_status);
        else
            snprintf(message, sizeof message, "http %ld with no error message", http_status);
    }
    if (err && err->status == GM_OK) {
        copy_field(err->aws_code, sizeof err->aws_code, code);
        copy_field(err->request_id, sizeof err->request_id, request_id);
        err->http_status = http_status;
    }
    if (gm_aws_is_denied_code(code))
        return gm_error_set(err, GM_ERR_AUTH,
                            "%s: %s (the credentials were accepted; their IAM policy does not "
                            "allow this call: docs/iam-policy.json lists what geusemaker needs)",
                            code, message);
    return gm_error_set(err, gm_aws_is_auth_code(code) ? GM_ERR_AUTH : GM_ERR_AWS, "%s: %s", code,
                        message);
}

/* Everything needed to (re)build one request for each attempt. */
typedef struct call {
    const gm_aws_service *svc;
    const char *action;
    const char *method;
    char *url;
    const char *content_type;
    char *target;
    gm_buf body;
    bool once; /* not repeated after an answer that may have been lost */
} call;

static GM_MUST_CHECK gm_status refresh_credentials(gm_aws_client *c, gm_credentials *out,
                                                   gm_error *err)
{
    gm_status st = GM_OK;
    pthread_mutex_lock(&c->cred_lock);
    if (c->creds.expiration && c->creds.expiration - time(NULL) < 300) {
        gm_credentials fresh = {0};
        gm_credentials_options copts = {.profile = c->profile,
                                        .transport = c->transport,
                                        .process_timeout_ms = c->process_timeout_ms};
        st = credential_failure(gm_credentials_resolve(&copts, &fresh, err), err);
        if (st == GM_OK) {
            gm_credentials_release(&c->creds);
            c->creds = fresh;
        }
    }
    if (st == GM_OK && gm_credentials_copy(out, &c->creds) != GM_OK)
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    pthread_mutex_unlock(&c->cred_lock);
    return st;
}

static GM_MUST_CHECK gm_status attempt_once(gm_aws_client *c, const call *k, int attempt,
                                            int max_attempts, gm_http_response *resp, gm_error *err)
{
    gm_http_request req;
    gm_http_request_init(&req);
    gm_credentials creds = {0};
    gm_status st = gm_http_request_setup(&req, k->method, k->url);
    if (st == GM_OK && k->body.len)
        st = gm_buf_append(&req.body, k->body.data, k->body.len);
    char sdk_request[64];
    snprintf(sdk_request, sizeof sdk_request, "attempt=%d; max=%d", attempt, max_attempts);
    if (st == GM_OK)
        st = gm_headers_add(&req.headers, "User-Agent", "geusemaker/" GM_VERSION);
    if (st == GM_OK)
        st = gm_headers_add(&req.headers, "amz-sdk-request", sdk_request);
    if (st == GM_OK && k->content_type)
        st = gm_headers_add(&req.headers, "Content-Type", k->content_type);
    if (st == GM_OK && k->target)
        st = gm_headers_add(&req.headers, "X-Amz-Target", k->target);
    if (st != GM_OK) {
        gm_http_request_release(&req);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory building a request");
    }
    req.total_timeout_ms = c->total_timeout_ms;
    req.fresh_connection = k->once;
    st = refresh_credentials(c, &creds, err);
    if (st == GM_OK) {
        gm_sigv4_params sp = {
            .region = k->svc->global ? c->partition->global_region : c->region,
            .service = k->svc->signing_name,
            .timestamp = time(NULL),
            .credentials = &creds,
            .normalize_path = true,
        };
        st = gm_sigv4_sign(&req, &sp, NULL, err);
    }
    if (st == GM_OK)
        st = gm_transport_send(c->transport, &req, resp, err);
    gm_credentials_release(&creds);
    gm_http_request_release(&req);
    return st;
}

static GM_MUST_CHECK gm_status perform(gm_aws_client *c, const call *k, gm_http_response *resp,
                                       gm_error *err)
{
    int max = c->retry.max_attempts;
    int cost = 0;
    for (int attempt = 1;; attempt++) {
        gm_error aerr = {0};
        int64_t t0 = gm_now_ms();
        gm_http_response_reset(resp);
        gm_status st = attempt_once(c, k, attempt, max, resp, &aerr);
        if (st == GM_OK && (resp->status < 200 || resp->status > 299))
            st = gm_aws_parse_error(k->svc->protocol, resp->status, &resp->headers,
                                    gm_buf_cstr(&resp->body), resp->body.len, &aerr);
        int64_t dt = gm_now_ms() - t0;
        const char *rid = resp->status ? gm_headers_get(&resp->headers, "x-amzn-RequestId") : NULL;
        if (st == GM_OK) {
            gm_retry_success(&c->retry, cost);
            if (c->observer) {
                gm_aws_call_info info = {k->svc->signing_name,
                                         k->action,
                                         attempt,
                                         dt,
                                         resp->status,
                                         rid,
                                         NULL,
                                         NULL,
                                         false,
                                         0};
                c->observer(c->observer_ctx, &info);
            }
            return GM_OK;
        }
        gm_retry_kind kind = gm_retry_classify(st, resp->status, aerr.aws_code);
        /* A request sent once is repeated only when AWS said it was not
         * carried out (throttling): anything else may have created something. */
        bool allowed = !k->once || kind == GM_RETRY_THROTTLE;
        bool retry = allowed && kind != GM_RETRY_NONE && attempt < max && st != GM_ERR_LIMIT &&
                     gm_retry_acquire(&c->retry, kind, &cost);
        int64_t backoff = retry ? gm_retry_backoff_ms(&c->retry, attempt, gm_random_unit()) : 0;
        if (c->observer) {
            gm_aws_call_info info = {k->svc->signing_name,
                                     k->action,
                                     attempt,
                                     dt,
                                     resp->status,
                                     *aerr.request_id ? aerr.request_id : rid,
                                     *aerr.aws_code ? aerr.aws_code : gm_status_name(st),
                                     aerr.message,
                                     retry,
                                     backoff};
            c->observer(c->observer_ctx, &info);
        }
        if (!retry) {
            if (err && err->status == GM_OK) {
                *err = aerr;
                copy_field(err->service, sizeof err->service, k->svc->signing_name);
                copy_field(err->action, sizeof err->action, k->action);
                err->attempts = attempt;
                err->retryable = kind != GM_RETRY_NONE;
                gm_error_prefix(err, "%s %s failed%s", k->svc->signing_name, k->action,
                                attempt > 1 ? " after retries" : "");
            }
            return st;
        }
        gm_sleep_ms(backoff);
    }
}

bool gm_aws_action_reads(const char *action)
{
    return gm_str_startswith(action, "Describe") || gm_str_startswith(action, "Get") ||
           gm_str_startswith(action, "List");
}

void gm_aws_client_set_read_only(gm_aws_client *c, bool on)
{
    c->read_only = on;
}

static void call_release(call *k)
{
    free(k->url);
    free(k->target);
    gm_buf_release(&k->body);
}

static GM_MUST_CHECK gm_status call_init(gm_aws_client *c, call *k, const gm_aws_service *svc,
                                         const char *action, const char *method, const char *path,
                                         gm_error *err)
{
    memset(k, 0, sizeof *k);
    k->svc = svc;
    k->action = action;
    k->method = method;
    gm_buf_init(&k->body, GM_LIMIT_REQUEST_BODY);
    if (c->read_only && !gm_aws_action_reads(action))
        return gm_error_set(err, GM_ERR_INTERNAL, "%s %s refused: this command only reads",
                            svc->signing_name, action);
    char *base = gm_aws_endpoint(c, svc);
    k->url = base ? gm_strfmt("%s%s", base, path) : NULL;
    free(base);
    if (!k->url)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    return GM_OK;
}

static GM_MUST_CHECK gm_status body_error(gm_error *err, gm_status st, const call *k)
{
    if (st == GM_ERR_LIMIT)
        return gm_error_set(err, st, "request body for %s %s exceeds %u bytes",
                            k->svc->signing_name, k->action, GM_LIMIT_REQUEST_BODY);
    return gm_error_set(err, GM_ERR_NOMEM, "out of memory building the request for %s %s",
                        k->svc->signing_name, k->action);
}

static void set_call_context(gm_error *err, const call *k)
{
    if (!err)
        return;
    copy_field(err->service, sizeof err->service, k->svc->signing_name);
    copy_field(err->action, sizeof err->action, k->action);
}

/* One name or value of a Query body, encoded as the SDKs encode a form
 * (botocore's urlencode): unreserved bytes as they are, a space as '+', every
 * other byte as %XX. A verifier that rebuilds the body from the parsed form
 * before it checks the signature (moto) arrives at exactly these bytes; with
 * "%20" for a space it would hash another body. */
static GM_MUST_CHECK gm_status form_encode(gm_buf *out, const char *s)
{
    size_t n = strlen(s);
    gm_status st = GM_OK;
    for (size_t i = 0; st == GM_OK && i < n;) {
        const char *space = memchr(s + i, ' ', n - i);
        size_t run = space ? (size_t)(space - (s + i)) : n - i;
        st = gm_uri_encode(out, s + i, run, false);
        i += run;
        if (st == GM_OK && space) {
            st = gm_buf_appendc(out, '+');
            i++;
        }
    }
    return st;
}

gm_status gm_aws_query(gm_aws_client *c, const gm_aws_service *svc, const char *action,
                       const gm_params *params, xmlDocPtr *out_doc, gm_error *err)
{
    *out_doc = NULL;
    call k;
    gm_status st = call_init(c, &k, svc, action, "POST", "/", err);
    if (st != GM_OK) {
        call_release(&k);
        return st;
    }
    k.content_type = "application/x-www-form-urlencoded; charset=utf-8";
    k.once = params && params->once;
    st = gm_buf_appends(&k.body, "Action=");
    if (st == GM_OK)
        st = form_encode(&k.body, action);
    if (st == GM_OK)
        st = gm_buf_appends(&k.body, "&Version=");
    if (st == GM_OK)
        st = form_encode(&k.body, svc->api_version);
    if (st == GM_OK && params && params->status != GM_OK)
        st = params->status;
    for (size_t i = 0; params && st == GM_OK && i < params->list.count; i++) {
        const gm_header *p = &params->list.items[i];
        st = gm_buf_appendc(&k.body, '&');
        if (st == GM_OK)
            st = form_encode(&k.body, p->name);
        if (st == GM_OK)
            st = gm_buf_appendc(&k.body, '=');
        if (st == GM_OK)
            st = form_encode(&k.body, p->value);
    }
    if (st != GM_OK) {
        st = body_error(err, st, &k);
        call_release(&k);
        return st;
    }
    gm_http_response resp;
    gm_http_response_init(&resp);
    st = perform(c, &k, &resp, err);
    if (st == GM_OK) {
        st = gm_xml_parse(gm_buf_cstr(&resp.body), resp.body.len, out_doc, err);
        if (st != GM_OK) {
            set_call_context(err, &k);
            gm_error_prefix(err, "malformed response from %s %s", svc->signing_name, action);
        }
    }
    gm_http_response_release(&resp);
    call_release(&k);
    return st;
}

static GM_MUST_CHECK gm_status json_result(const call *k, const gm_http_response *resp,
                                           json_t **out, bool allow_empty, gm_error *err)
{
    *out = NULL;
    if (resp->body.len == 0 && allow_empty)
        return GM_OK;
    json_error_t jerr;
    json_t *j = json_loadb(gm_buf_cstr(&resp->body), resp->body.len, 0, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        set_call_context(err, k);
        return gm_error_set(err, GM_ERR_PARSE, "malformed response from %s %s: %s",
                            k->svc->signing_name, k->action, j ? "not a json object" : jerr.text);
    }
    *out = j;
    return GM_OK;
}

/* Sends a prepared call whose body is the JSON text of body ("{}" when body
 * is NULL and empty_body is "{}", nothing when it is NULL) and reads the JSON
 * answer into *out (may be NULL: the answer is dropped). */
static GM_MUST_CHECK gm_status json_call(gm_aws_client *c, call *k, const char *content_type,
                                         json_t *body, const char *empty_body, json_t **out,
                                         bool allow_empty, gm_error *err)
{
    gm_status st = GM_OK;
    if (body || empty_body) {
        k->content_type = content_type;
        char *text = body ? json_dumps(body, JSON_COMPACT) : strdup(empty_body);
        st = text ? gm_buf_appends(&k->body, text) : GM_ERR_NOMEM;
        free(text);
        if (st != GM_OK)
            return body_error(err, st, k);
    }
    gm_http_response resp;
    gm_http_response_init(&resp);
    st = perform(c, k, &resp, err);
    if (st == GM_OK && out)
        st = json_result(k, &resp, out, allow_empty, err);
    gm_http_response_release(&resp);
    return st;
}

gm_status gm_aws_json(gm_aws_client *c, const gm_aws_service *svc, const char *action, json_t *body,
                      json_t **out, gm_error *err)
{
    *out = NULL;
    call k;
    gm_status st = call_init(c, &k, svc, action, "POST", "/", err);
    if (st == GM_OK && !(k.target = gm_strfmt("%s.%s", svc->target_prefix, action)))
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    if (st == GM_OK)
        st = json_call(c, &k, "application/x-amz-json-1.1", body, "{}", out, false, err);
    call_release(&k);
    return st;
}

static GM_MUST_CHECK gm_status rest_json(gm_aws_client *c, const gm_aws_service *svc,
                                         const char *action, const char *method, const char *path,
                                         json_t *body, json_t **out, bool once, gm_error *err)
{
    if (out)
        *out = NULL;
    call k;
    gm_status st = call_init(c, &k, svc, action, method, path, err);
    k.once = once;
    if (st == GM_OK)
        st = json_call(c, &k, "application/json", body, NULL, out, true, err);
    call_release(&k);
    return st;
}

gm_status gm_aws_rest_json(gm_aws_client *c, const gm_aws_service *svc, const char *action,
                           const char *method, const char *path, json_t *body, json_t **out,
                           gm_error *err)
{
    return rest_json(c, svc, action, method, path, body, out, false, err);
}

gm_status gm_aws_rest_json_once(gm_aws_client *c, const gm_aws_service *svc, const char *action,
                                const char *method, const char *path, json_t *body, json_t **out,
                                gm_error *err)
{
    return rest_json(c, svc, action, method, path, body, out, true, err);
}

bool gm_aws_error_ambiguous(const gm_error *err)
{
    if (err->status == GM_ERR_NETWORK || err->status == GM_ERR_TIMEOUT)
        return true; /* the answer was lost */
    if (err->http_status < 500 || gm_retry_is_throttle_code(err->aws_code))
        return false; /* refused before it was carried out */
    /* A 5xx with a specific code (InsufficientInstanceCapacity, ...) is an
     * answer; one without, or a generic failure of the service, is not. */
    static const char *const generic[] = {"InternalError",       "InternalFailure",
                                          "InternalServerError", "ServiceUnavailable",
                                          "Unavailable",         "ServerError"};
    if (!*err->aws_code || strncmp(err->aws_code, "HTTP", 4) == 0)
        return true;
    for (size_t i = 0; i < sizeof generic / sizeof *generic; i++)
        if (strcmp(err->aws_code, generic[i]) == 0)
            return true;
    return false;
}
