/* geusemaker adopt: rebuild a lost record from what the cloud holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/deployment.h"
#include "core/log.h"

static int cmd_adopt(gm_cli *cli, const gm_args *args);

enum { OPT_ID = 1 };

static const gm_opt adopt_opts[] = {
    {.name = "id",
     .arg = "ID",
     .help = "the deployment id to adopt when several deployments of NAME exist in the "
             "region (cleanup --dry-run lists them)",
     .id = OPT_ID},
};

static const gm_optgroup adopt_group = GM_OPTGROUP(NULL, adopt_opts);

const gm_command gm_command_adopt = {
    .name = "adopt",
    .summary = "rebuild a lost local record from the deployment's tags (reads only)",
    .synopsis = "adopt NAME [--region R] [--id ID] [--output text|json]",
    .groups = {&adopt_group},
    .min_pos = 1,
    .max_pos = 1,
    .pos_what = "one deployment name",
    .notes = "For a deployment made on another machine, or whose state folder was lost.\n"
             "Every resource tagged with the deployment's name and id in the region\n"
             "(--region, else the default region) is looked up and checked, the config is\n"
             "read from the parameter stored beside its secrets, and the record is saved\n"
             "here. Nothing in AWS is changed. Afterwards status, destroy and\n"
             "deploy --resume work as if the record had never been lost.",
    .run = cmd_adopt,
};

static void print_adopted(gm_cli *cli, gm_deployment *dep, const gm_engine_adoption *rep)
{
    if (cli->output == GM_OUTPUT_JSON) {
        json_t *o = gm_cli_deployment_json(dep);
        json_object_set_new(o, "adopted",
                            json_pack("{s:s, s:I, s:I, s:b}", "deployment_id", dep->deployment_id,
                                      "found", (json_int_t)rep->found, "missing",
                                      (json_int_t)rep->missing, "config_found", rep->config_found));
        gm_cli_print_json(o);
        return;
    }
    printf("Adopted \"%s\" (id %s) in %s: %zu resource(s) found.\n", dep->name, dep->deployment_id,
           dep->region, rep->found);
    if (!rep->config_found)
        printf("Its stored config was not found (the deploy stopped before it was saved): the\n"
               "tier's defaults were recorded.\n");
    gm_cli_print_deployment(cli, dep, NULL, -1);
}

static int cmd_adopt(gm_cli *cli, const gm_args *args)
{
    const char *name = args->pos[0];
    gm_error err = {0};
    gm_status st = gm_engine_check_name(name, &err);
    gm_engine_settings settings;
    if (st == GM_OK)
        st = gm_cli_engine_settings(&settings, &err);
    if (st != GM_OK)
        return gm_cli_fail(cli, st, &err);
    gm_store *store = NULL;
    gm_lock *lock = NULL;
    gm_aws_client *aws = NULL;
    gm_deployment *dep = NULL;
    st = gm_cli_open_locked(cli, name, &store, &lock, &err);
    if (st == GM_OK && gm_store_exists(store, name))
        st = gm_error_set(&err, GM_ERR_INVALID,
                          "a record of '%s' exists in this state folder: adopt only rebuilds a "
                          "missing one (see 'geusemaker status %s'; 'geusemaker forget %s' "
                          "drops the record)",
                          name, name, name);
    if (st == GM_OK)
        st = gm_cli_aws_client(cli, &aws, &err);
    gm_engine_adoption rep;
    if (st == GM_OK) {
        gm_engine_options eo = {.aws = aws, .store = store, .settings = settings};
        st = gm_engine_adopt(&eo, name, gm_args_value(args, OPT_ID), &dep, &rep, &err);
    }
    if (st == GM_OK)
        st = gm_store_save(store, dep, &err);
    int rc = GM_EXIT_OK;
    if (st == GM_OK) {
        gm_log_event(GM_LOG_INFO, "adopt",
                     json_pack("{s:s, s:I, s:I}", "deployment_id", dep->deployment_id, "found",
                               (json_int_t)rep.found, "missing", (json_int_t)rep.missing));
        print_adopted(cli, dep, &rep);
    } else {
        rc = gm_cli_fail(cli, st, &err);
    }
    gm_deployment_free(dep);
    gm_aws_client_free(aws);
    gm_lock_release(lock);
    gm_store_free(store);
    gm_log_close();
    return rc;
}
