/* AWS credentials and the default provider chain.
 *
 * Order (as the AWS SDKs): environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN) → shared credentials file / config file for the profile
 * (static keys) → credential_process of the profile → IMDSv2 (token first;
 * AWS_EC2_METADATA_SERVICE_ENDPOINT overrides the address,
 * AWS_EC2_METADATA_DISABLED=true skips it). Assume-role (role_arn/source_profile)
 * and web identity have reserved slots in the chain (see credentials.c).
 *
 * Secret values are never printed or logged; gm_credentials_release wipes them.
 */
#ifndef GM_AWS_CREDENTIALS_H
#define GM_AWS_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "aws/http.h"
#include "core/error.h"

typedef struct gm_credentials {
    char *access_key_id;
    char *secret_access_key;
    char *session_token; /* NULL when none */
    time_t expiration;   /* 0 when they do not expire */
    /* Where they came from: "environment", "shared-credentials-file",
     * "config-file", "credential-process", "imds". Static string. */
    const char *source;
} gm_credentials;

typedef struct gm_credentials_options {
    const char *profile;     /* NULL: AWS_PROFILE, else "default" */
    gm_transport *transport; /* for IMDS; NULL skips IMDS */
    long imds_timeout_ms;    /* default 1000 */
    long process_timeout_ms; /* credential_process deadline; default 60000 */
} gm_credentials_options;

/* Resolves credentials through the chain into out (caller releases). When
 * nothing is found: GM_ERR_AUTH with a message listing every source tried.
 * opts may be NULL (all defaults, no IMDS).
 *
 * Details of the chain (see credentials.c for the order):
 *  - An explicit opts->profile skips the environment keys, as the AWS CLI's
 *    --profile does; AWS_PROFILE does not.
 *  - A profile named by opts->profile or AWS_PROFILE that is in neither file:
 *    GM_ERR_INVALID ("profile 'x' not found in ..."), as the CLI refuses it.
 *  - One of a key pair without the other (environment or file): GM_ERR_AUTH.
 *  - A profile using role_arn, web identity or SSO: GM_ERR_AUTH "... not
 *    supported yet" (never a silent fall-through to another source).
 *  - credential_process: GM_ERR_AUTH on a non-zero exit (the status, never the
 *    output), GM_ERR_TIMEOUT, GM_ERR_LIMIT (stdout over
 *    GM_LIMIT_PROCESS_OUTPUT), GM_ERR_PARSE on bad JSON, GM_ERR_IO when it
 *    cannot be started. It runs in a process group of its own (the terminal's
 *    foreground group while it runs, when this process had the terminal, so
 *    that it can prompt); on a timeout or an overflow the whole group is
 *    killed (SIGKILL), whatever it started in the background.
 *  (gm_aws_client_new reports every failure of the chain but a missing
 *  profile and exhausted memory as GM_ERR_AUTH: a credential problem.)
 *  - IMDS: no answer to the token request, or no instance role, counts as
 *    "not found"; a failure after that is an error.
 * Malformed config files are GM_ERR_PARSE / GM_ERR_LIMIT. No message ever
 * holds a secret value. */
GM_MUST_CHECK gm_status gm_credentials_resolve(const gm_credentials_options *opts,
                                               gm_credentials *out, gm_error *err);

/* Deep copy. */
GM_MUST_CHECK gm_status gm_credentials_copy(gm_credentials *dst, const gm_credentials *src);

/* Frees and wipes the secret fields. Safe on NULL and zeroed structs. */
void gm_credentials_release(gm_credentials *c);

/* The profile in effect: opts_profile, else AWS_PROFILE, else "default". */
const char *gm_profile_name(const char *opts_profile);

/* Looks up a key of the profile in the config file (AWS_CONFIG_FILE, default
 * ~/.aws/config; "[profile NAME]" sections, "[default]"). *out is NULL when
 * absent. Used for `region`. */
GM_MUST_CHECK gm_status gm_config_profile_get(const char *profile, const char *key, char **out,
                                              gm_error *err);

/* Parses credential_process output: {"Version": 1, "AccessKeyId",
 * "SecretAccessKey", "SessionToken"?, "Expiration"?} into out (zeroed first;
 * left zeroed on failure), source "credential-process". Does not check the
 * expiration against the clock. GM_ERR_PARSE on anything else; the message
 * never quotes the input. Pure: the fuzz target calls it. */
GM_MUST_CHECK gm_status gm_credential_process_parse(const char *json, size_t len,
                                                    gm_credentials *out, gm_error *err);

/* Parses the IMDS security-credentials document ({"Code": "Success",
 * "AccessKeyId", "SecretAccessKey", "Token", "Expiration", ...}) the same way,
 * source "imds". */
GM_MUST_CHECK gm_status gm_imds_credentials_parse(const char *json, size_t len, gm_credentials *out,
                                                  gm_error *err);

#endif
