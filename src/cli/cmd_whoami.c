/* geusemaker whoami: who the credentials belong to, and where they came from. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "aws/sts.h"
#include "cli/cli.h"

static int cmd_whoami(gm_cli *cli, const gm_args *args);

const gm_command gm_command_whoami = {
    .name = "whoami",
    .summary = "show the AWS account, identity and region in use, and the credential source",
    .synopsis = "whoami [--region R] [--profile P] [--output text|json]",
    .run = cmd_whoami,
};

static int cmd_whoami(gm_cli *cli, const gm_args *args)
{
    (void)args;
    gm_error err = {0};
    gm_aws_client *aws = NULL;
    gm_status st = gm_cli_aws_client(cli, &aws, &err);
    if (st != GM_OK)
        return gm_cli_fail(cli, st, &err);
    gm_caller_identity id;
    st = gm_sts_get_caller_identity(aws, &id, &err);
    if (st != GM_OK) {
        gm_aws_client_free(aws);
        return gm_cli_fail(cli, st, &err);
    }
    const gm_credentials *creds = gm_aws_client_credentials(aws);
    /* The profile matters only when the keys came from the config files or
     * what the profile runs: not for the environment or the instance's role. */
    bool from_profile =
        strcmp(creds->source, "environment") != 0 && strcmp(creds->source, "imds") != 0;
    const char *profile = from_profile ? gm_profile_name(cli->profile) : NULL;
    if (cli->output == GM_OUTPUT_JSON) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?}", "account", id.account, "arn",
                              id.arn, "user_id", id.user_id, "region", gm_aws_client_region(aws),
                              "credential_source", creds->source, "profile", profile);
        gm_cli_print_json(o);
    } else {
        printf("Account:            %s\n", id.account);
        printf("ARN:                %s\n", id.arn);
        printf("User ID:            %s\n", id.user_id);
        printf("Region:             %s\n", gm_aws_client_region(aws));
        printf("Credential source:  %s\n", creds->source);
        printf("Profile:            %s\n",
               profile ? profile : "(none: the keys come from the environment or the instance)");
    }
    gm_aws_client_free(aws);
    return GM_EXIT_OK;
}
