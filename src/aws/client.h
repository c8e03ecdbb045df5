/* The AWS request core: one client per run, shared by every service.
 *
 * It resolves the region and each service's endpoint, holds the credentials,
 * signs every request (SigV4), speaks the Query, JSON 1.1 and REST-JSON
 * protocols, maps AWS error bodies to code/message/request id, and retries in
 * the SDK standard mode. It is safe to use from several threads at once.
 */
#ifndef GM_AWS_CLIENT_H
#define GM_AWS_CLIENT_H

#include <jansson.h>
#include <libxml/tree.h>
#include <stdbool.h>
#include <stdint.h>

#include "aws/credentials.h"
#include "aws/http.h"
#include "aws/partition.h"
#include "aws/retry.h"
#include "core/error.h"

typedef enum gm_protocol {
    GM_PROTO_QUERY,     /* form POST, XML response: EC2, IAM, STS, ELBv2, Auto Scaling */
    GM_PROTO_JSON,      /* JSON 1.1 with X-Amz-Target: SSM, Pricing */
    GM_PROTO_REST_JSON, /* REST paths with JSON bodies: EFS */
} gm_protocol;

typedef struct gm_aws_service {
    const char *signing_name;    /* "ec2", "elasticfilesystem", ... */
    const char *endpoint_prefix; /* host prefix: "ec2", "elasticfilesystem", ... */
    const char *env_id;          /* AWS_ENDPOINT_URL_<env_id> */
    const char *api_version;     /* Query: the Version parameter */
    const char *target_prefix;   /* JSON 1.1: "AmazonSSM" */
    gm_protocol protocol;
    bool global; /* one endpoint for all regions (IAM) */
} gm_aws_service;

extern const gm_aws_service gm_svc_ec2;
extern const gm_aws_service gm_svc_sts;
extern const gm_aws_service gm_svc_iam;
extern const gm_aws_service gm_svc_elbv2;
extern const gm_aws_service gm_svc_autoscaling; /* EC2 Auto Scaling */
extern const gm_aws_service gm_svc_ssm;
extern const gm_aws_service gm_svc_efs;
extern const gm_aws_service gm_svc_pricing;
extern const gm_aws_service gm_svc_tagging; /* Resource Groups Tagging API */

/* Query parameters: an ordered list of names and values. Adding keeps the
 * first failure (memory) in the list, like a sticky error: gm_aws_query
 * refuses a list that lost a parameter, so a request is never sent without
 * one of its parameters (a lost tag would hide a resource from the look-ups
 * that crash recovery depends on). */
typedef struct gm_params {
    gm_headers list;
    gm_status status; /* GM_OK, or the first failure of an add */
    /* A create without an idempotency token: sent once, and repeated only
     * when AWS refused it unprocessed (throttling). After an answer that may
     * have been lost (gm_aws_error_ambiguous) the caller looks for what the
     * request may have made before it tries again. */
    bool once;
} gm_params;

void gm_params_init(gm_params *p);
void gm_params_release(gm_params *p);
/* Appends name=value (value NULL: ""). */
void gm_params_add(gm_params *p, const char *name, const char *value);
/* Appends a parameter whose name is printf-formatted. */
void gm_params_addf(gm_params *p, const char *value, const char *name_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What the client reports after every attempt (for logs and progress). */
typedef struct gm_aws_call_info {
    const char *service;
    const char *action;
    int attempt; /* 1-based */
    int64_t duration_ms;
    long http_status; /* 0: no response */
    const char *request_id;
    const char *error_code; /* NULL on success */
    const char *error_message;
    bool will_retry;
    int64_t backoff_ms;
} gm_aws_call_info;

typedef void (*gm_aws_call_observer)(void *ctx, const gm_aws_call_info *info);

typedef struct gm_aws_client_options {
    const char *region;      /* NULL: AWS_REGION, AWS_DEFAULT_REGION, profile region */
    const char *profile;     /* NULL: AWS_PROFILE or "default" */
    int max_attempts;        /* 0: AWS_MAX_ATTEMPTS or 3 */
    int64_t retry_base_ms;   /* 0: GEUSEMAKER_RETRY_BASE_MS or 1000 */
    long connect_timeout_ms; /* 0: 5000 */
    long total_timeout_ms;   /* 0: 60000 per attempt */
    long process_timeout_ms; /* credential_process deadline; 0: the chain's (60 s) */
    gm_transport *transport; /* NULL: libcurl; otherwise taken (freed with the client) */
    gm_aws_call_observer observer;
    void *observer_ctx;
} gm_aws_client_options;

typedef struct gm_aws_client gm_aws_client;

/* The largest AWS_MAX_ATTEMPTS accepted. */
#define GM_AWS_MAX_ATTEMPTS_MAX 20

/* Checks the environment the client reads, before any request: the
 * numbers (AWS_MAX_ATTEMPTS 1..20, GEUSEMAKER_RETRY_BASE_MS 1..60000) and
 * the endpoint overrides (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>: an
 * http:// or https:// url with a host, unless
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true). GM_ERR_INVALID naming the
 * variable and its value. */
GM_MUST_CHECK gm_status gm_aws_check_environment(gm_error *err);

/* Checks the environment (gm_aws_check_environment), resolves the region
 * (which must be in the partition table, aws/partition.h) and then the
 * credentials. Errors: GM_ERR_INVALID for the environment, "no aws region
 * configured ..." or an unknown region (with the nearest names); GM_ERR_AUTH
 * for anything that goes wrong in the credential chain (missing, a failing
 * or slow credential_process, a malformed document or credentials file);
 * GM_ERR_INVALID for a profile that does not exist. */
GM_MUST_CHECK gm_status gm_aws_client_new(const gm_aws_client_options *opts, gm_aws_client **out,
                                          gm_error *err);
void gm_aws_client_free(gm_aws_client *c);

const char *gm_aws_client_region(const gm_aws_client *c);
/* The partition of the client's region (never NULL). */
const gm_partition *gm_aws_client_partition(const gm_aws_client *c);
/* A read-only client refuses (GM_ERR_INTERNAL, before anything is sent)
 * every action that is not a read: the guarantee behind adopt, cleanup
 * --dry-run and the commands that only look. Set before the client is shared
 * between threads. */
void gm_aws_client_set_read_only(gm_aws_client *c, bool on);
/* True for the actions that only read: Describe*, Get*, List*. */
bool gm_aws_action_reads(const char *action);
const gm_credentials *gm_aws_client_credentials(const gm_aws_client *c);
gm_transport *gm_aws_client_transport(gm_aws_client *c);

/* The endpoint URL for a service (no trailing slash), malloc'd. */
char *gm_aws_endpoint(const gm_aws_client *c, const gm_aws_service *svc);
/* True when the service's endpoint is a loopback address (an emulator). */
bool gm_aws_endpoint_is_loopback(const gm_aws_client *c, const gm_aws_service *svc);

/* Region resolution on its own: flag > AWS_REGION > AWS_DEFAULT_REGION >
 * profile region (an empty variable counts as unset; an empty flag is
 * refused). The region must be a known one (gm_region_check): GM_ERR_INVALID
 * naming where it came from and the nearest known names. *out is malloc'd. */
GM_MUST_CHECK gm_status gm_aws_resolve_region(const char *flag, const char *profile, char **out,
                                              gm_error *err);

/* Query protocol: Action + Version + params as a form POST; *out_doc is the
 * parsed XML response (xmlFreeDoc). On an AWS error: GM_ERR_AWS (or GM_ERR_AUTH
 * for auth codes) with err->aws_code, message and request id filled. */
GM_MUST_CHECK gm_status gm_aws_query(gm_aws_client *c, const gm_aws_service *svc,
                                     const char *action, const gm_params *params,
                                     xmlDocPtr *out_doc, gm_error *err);

/* JSON 1.1 protocol: body is borrowed (NULL sends {}); *out is the response
 * object (json_decref). */
GM_MUST_CHECK gm_status gm_aws_json(gm_aws_client *c, const gm_aws_service *svc, const char *action,
                                    json_t *body, json_t **out, gm_error *err);

/* REST-JSON protocol: method and path (with query) under the endpoint; body may
 * be NULL; action names the operation for logs and errors; *out may be NULL
 * for an empty response body. */
GM_MUST_CHECK gm_status gm_aws_rest_json(gm_aws_client *c, const gm_aws_service *svc,
                                         const char *action, const char *method, const char *path,
                                         json_t *body, json_t **out, gm_error *err);

/* gm_aws_rest_json for a create without an idempotency token: sent once
 * (see gm_params.once). */
GM_MUST_CHECK gm_status gm_aws_rest_json_once(gm_aws_client *c, const gm_aws_service *svc,
                                              const char *action, const char *method,
                                              const char *path, json_t *body, json_t **out,
                                              gm_error *err);

/* True when a failed request may still have been carried out: the answer was
 * lost (connection reset, timeout) or the service failed (5xx) after it
 * arrived. A throttled request was not carried out. */
bool gm_aws_error_ambiguous(const gm_error *err);

/* Parses an AWS error response of the given protocol into err (code, message,
 * request id). Exposed for unit and fuzz tests. Always sets err. */
GM_MUST_CHECK gm_status gm_aws_parse_error(gm_protocol proto, long http_status,
                                           const gm_headers *headers, const char *body, size_t len,
                                           gm_error *err);

/* True for codes that mean "credentials rejected or not allowed". */
bool gm_aws_is_auth_code(const char *code);

/* True for the subset that means "the credentials are valid, but their IAM
 * policy does not allow the call" (AccessDenied, AccessDeniedException,
 * UnauthorizedOperation, UnauthorizedAccess): an authorization failure, not
 * an authentication one. Its message says so. */
bool gm_aws_is_denied_code(const char *code);

#endif
