/* The deployment options, declared once and shared by plan and deploy: what
 * plan accepts, deploy accepts. */
#ifndef GM_CLI_DEPLOY_OPTIONS_H
#define GM_CLI_DEPLOY_OPTIONS_H

#include "cli/cli.h"

/* The option groups: the deployment's settings, and the load balancer's. */
extern const gm_optgroup gm_cli_deploy_group, gm_cli_alb_group;

typedef struct gm_cli_deploy {
    gm_deploy_config cfg;
    bool saw_config;             /* an option saved in the record was given */
    char *lists[8];              /* storage the split lists point into */
    char *images[GM_MAX_IMAGES]; /* copies of the --image values, split at '=': the
                                    overrides of cfg point into them */
    const char *ami_request;     /* --ami / --image without '=': "baked" or "ami-..." */
    char ami[64];                /* the image it resolved to (cfg.ami points here) */
} gm_cli_deploy;

/* Resolves --ami (gm_engine_resolve_image): cfg.ami names the image, or
 * GM_ERR_INVALID (exit 2) with the way out. Read-only; nothing without
 * --ami. */
GM_MUST_CHECK gm_status gm_cli_deploy_resolve_image(gm_aws_client *aws, gm_cli_deploy *d,
                                                    gm_error *err);

/* Fills d from every deployment option in args and checks the result
 * without AWS (defaults for the tier, conflicting options,
 * gm_engine_check_config) unless name_only (deploy --resume: the saved
 * configuration is used). Returns -1 when d is ready, otherwise the exit code
 * after the message. Release d with gm_cli_deploy_release either way. */
int gm_cli_deploy_from_args(gm_cli *cli, const gm_args *args, gm_cli_deploy *d);
int gm_cli_deploy_check(gm_cli *cli, gm_cli_deploy *d);
/* The ingress ranges of cfg (already checked by gm_cli_deploy_check): a
 * warning on stderr for each range wider than a /16; a /0 (the whole
 * internet) needs yes when deploying (exit 2 without), and is only warned
 * about otherwise (plan). Returns -1 to go on, or the exit code. */
int gm_cli_deploy_check_ingress(gm_cli *cli, const gm_deploy_config *cfg, bool deploying, bool yes);
void gm_cli_deploy_release(gm_cli_deploy *d);
/* Says on stderr when cfg serves n8n over plain HTTP (tier automation without
 * --certificate-arn). */
void gm_cli_deploy_warn_plain_http(const gm_deploy_config *cfg);

#endif
