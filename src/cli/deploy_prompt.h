/* The questions deploy asks on a terminal: the confirmation before anything
 * that costs money is created, and the interactive setup when no name is
 * given. Never asked without a terminal (deploy then needs --yes). */
#ifndef GM_CLI_DEPLOY_PROMPT_H
#define GM_CLI_DEPLOY_PROMPT_H

#include "cli/deploy_options.h"

/* True when a question can be asked: stdin and stderr are terminals. */
bool gm_cli_can_ask(void);

/* Shows what the deploy of cfg creates, where, and what it costs (a
 * read-only plan), then asks. GM_OK to go on; GM_ERR_INVALID "not
 * confirmed: nothing was created" otherwise (or the plan's error). */
GM_MUST_CHECK gm_status gm_cli_deploy_confirm(gm_aws_client *aws, gm_aws_client *pricing,
                                              const gm_deploy_config *cfg, gm_error *err);

/* Answers of the interactive setup (the config points into it). */
typedef struct gm_cli_wizard {
    char name[64];
    char region[32];
    char type[64];
    char cidr[64];
} gm_cli_wizard;

/* Asks for name, region, tier, instance type (with live prices) and the
 * range allowed in (the detected address offered), fills d->cfg (and
 * cli->region), and offers to save the answers as ./geusemaker.yaml.
 * Returns -1 to go on, else the exit code. */
int gm_cli_deploy_wizard(gm_cli *cli, gm_cli_deploy *d, const gm_engine_settings *settings,
                         gm_cli_wizard *w);

#endif
