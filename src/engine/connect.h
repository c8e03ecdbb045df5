/* geusemaker connect: a port forward or a shell on the deployment's instance
 * through AWS Systems Manager Session Manager. The AWS CLI and its
 * session-manager-plugin carry the session; the engine makes the plan (the
 * instance, the service's port on the instance, the `aws ssm start-session`
 * command line) and cli/ runs it or prints it. No port is opened in the
 * security group and no SSH key is needed: the instance role carries
 * AmazonSSMManagedInstanceCore. */
#ifndef GM_ENGINE_CONNECT_H
#define GM_ENGINE_CONNECT_H

#include <stddef.h>

#include "aws/client.h"
#include "core/error.h"
#include "state/deployment.h"

#define GM_CONNECT_MAX_ARGS 24
/* The session documents (AWS-owned, in every region). */
#define GM_CONNECT_PORT_DOCUMENT "AWS-StartPortForwardingSession"
#define GM_CONNECT_SHELL_DOCUMENT "SSM-SessionManagerRunShell" /* start-session's default */

/* The SSM actions a session needs the caller's policy to allow
 * (docs/iam-policy.json: ssm:<action>): what `aws ssm start-session` and the
 * plugin call. NULL-terminated. */
extern const char *const gm_connect_ssm_actions[];

typedef struct gm_connect_request {
    const char *service; /* NULL: a shell */
    int local_port;      /* 0: the service's port */
    const char *profile; /* the profile in use (--profile, AWS_PROFILE), or NULL */
} gm_connect_request;

typedef struct gm_connect_plan {
    const char *target;  /* the instance id (target_id) */
    char target_id[32];  /* the group's current instance (gm_engine_current_instance) */
    const char *service; /* NULL for a shell */
    int remote_port;     /* the port the service listens on at the instance's 127.0.0.1;
                            0 for a shell */
    int local_port;      /* 0 for a shell */
    char *argv[GM_CONNECT_MAX_ARGS + 1]; /* "aws", "ssm", "start-session", ...: malloc'd,
                                            NULL-terminated */
    size_t argc;
} gm_connect_plan;

/* The port service publishes on the instance (on 127.0.0.1, behind nginx),
 * from the stack catalogue. GM_ERR_INVALID for a name that is no service of
 * the stack, and for one that publishes no port (postgres: only on the
 * Compose network), saying how to reach it instead (name: the deployment,
 * for that message). Needs no AWS call. */
GM_MUST_CHECK gm_status gm_engine_connect_port(const char *name, const char *service, int *out_port,
                                               gm_error *err);

/* The plan for dep. The region is the client's; --endpoint-url is added when
 * the client's SSM endpoint is overridden (AWS_ENDPOINT_URL_SSM,
 * AWS_ENDPOINT_URL). GM_ERR_CONFLICT when the record names no instance;
 * GM_ERR_INVALID for a bad service (gm_engine_connect_port). Release *out
 * on success or not. */
GM_MUST_CHECK gm_status gm_engine_connect_plan(gm_aws_client *aws, const gm_deployment *dep,
                                               const gm_connect_request *req, gm_connect_plan *out,
                                               gm_error *err);
void gm_connect_plan_release(gm_connect_plan *p);

/* Reads the instance's state (one DescribeInstances) into state (size
 * bytes): GM_ERR_CONFLICT, saying so, when it is not running or no longer
 * exists. */
GM_MUST_CHECK gm_status gm_engine_connect_check_instance(gm_aws_client *aws,
                                                         const gm_deployment *dep,
                                                         const gm_connect_plan *plan, char *state,
                                                         size_t size, gm_error *err);

#endif
