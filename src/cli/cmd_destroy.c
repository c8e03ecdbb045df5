/* geusemaker destroy: delete everything a deployment created. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/deployment.h"
#include "core/log.h"
#include "core/timeutil.h"

static int cmd_destroy(gm_cli *cli, int argc, char **argv);

const gm_command gm_command_destroy = {
    .name = "destroy",
    .summary = "delete every resource a deployment created (reused ones are kept)",
    .usage = "destroy NAME [--yes] [--keep-efs]\n"
             "\n"
             "  --yes        do not ask for confirmation (required without a terminal)\n"
             "  --keep-efs   keep the file system and its data\n"
             "Resources that were being created when geusemaker was stopped are found by\n"
             "their tags. The record is archived only when nothing remains; run destroy\n"
             "again to finish what an earlier run could not.",
    .run = cmd_destroy,
};

enum { OPT_YES = 1, OPT_KEEP_EFS };

static bool confirm(const char *name)
{
    if (!isatty(STDIN_FILENO))
        return false;
    fprintf(stderr,
            "This deletes every resource of deployment '%s'. Type its name to confirm: ", name);
    char line[128];
    if (!fgets(line, sizeof line, stdin))
        return false;
    line[strcspn(line, "\r\n")] = '\0';
    return strcmp(line, name) == 0;
}

static int cmd_destroy(gm_cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {GM_CLI_GLOBAL_OPTIONS,
                                             {"yes", no_argument, NULL, OPT_YES},
                                             {"keep-efs", no_argument, NULL, OPT_KEEP_EFS},
                                             {0, 0, 0, 0}};
    bool yes = false, keep_efs = false;
    int c;
    while ((c = getopt_long(argc, argv, ":y", longopts, NULL)) != -1) {
        if (c == OPT_YES || c == 'y') {
            yes = true;
            continue;
        }
        if (c == OPT_KEEP_EFS) {
            keep_efs = true;
            continue;
        }
        int rc = gm_cli_common_option(cli, &gm_command_destroy, c, optarg);
        if (rc >= 0)
            return rc;
    }
    if (optind + 1 != argc)
        return gm_cli_usage_error(cli, "destroy takes exactly one deployment name");
    const char *name = argv[optind];
    gm_error err = {0};
    gm_status st = gm_engine_check_name(name, &err);
    if (st != GM_OK)
        return gm_cli_fail(cli, st, &err);
    if (!yes && !isatty(STDIN_FILENO))
        return gm_cli_usage_error(cli,
                                  "destroy needs --yes when there is no terminal to confirm on");

    int64_t t0 = gm_now_ms();
    gm_store *store = NULL;
    gm_lock *lock = NULL;
    gm_aws_client *aws = NULL;
    gm_deployment *dep = NULL;
    gm_progress *progress = NULL;
    int rc = GM_EXIT_FAILED;
    st = gm_cli_open_locked(cli, name, &store, &lock, &err);
    if (st == GM_OK)
        st = gm_store_load(store, name, &dep, &err);
    if (st != GM_OK)
        goto done;
    if (!yes && !confirm(name)) {
        fprintf(stderr, "not confirmed: nothing was deleted\n");
        rc = GM_EXIT_USAGE;
        goto done;
    }
    if (!cli->region)
        cli->region = dep->region;
    st = gm_cli_aws_client(cli, &aws, &err);
    if (st != GM_OK)
        goto done;
    gm_log_event(GM_LOG_INFO, "destroy_start",
                 json_pack("{s:s, s:b}", "name", name, "keep_efs", keep_efs));
    gm_cli_install_interrupt_handlers();
    char title[128];
    snprintf(title, sizeof title, "Destroying \"%s\" in %s", name, dep->region);
    progress = gm_progress_new(&cli->term, cli->output != GM_OUTPUT_JSON && !cli->verbose, title);
    gm_engine_options eo = {
        .aws = aws, .store = store, .progress = progress, .interrupt = &gm_cli_interrupted};
    st = gm_engine_destroy(&eo, dep, keep_efs, &err);
    gm_progress_free(progress);
    progress = NULL;
    gm_log_event(st == GM_OK ? GM_LOG_INFO : GM_LOG_ERROR, "destroy_end",
                 json_pack("{s:s, s:I, s:s?}", "status", gm_dep_status_name(dep->status),
                           "duration_ms", (json_int_t)(gm_now_ms() - t0), "error",
                           st == GM_OK ? NULL : err.message));
    if (st != GM_OK) {
        fprintf(stderr,
                "the record of '%s' is kept with what remains; run 'geusemaker destroy %s' "
                "again to finish\n",
                name, name);
        goto done;
    }
    char *archived = NULL;
    if (!keep_efs) {
        st = gm_store_archive(store, name, &archived, &err);
        if (st != GM_OK)
            goto done;
    }
    if (cli->output == GM_OUTPUT_JSON) {
        json_t *o = json_pack("{s:s, s:s, s:s?, s:b, s:f}", "name", name, "status", "destroyed",
                              "archived_record", archived, "kept_efs", keep_efs, "duration_s",
                              (double)(gm_now_ms() - t0) / 1000.0);
        char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(o);
    } else {
        printf("Destroyed '%s' in %.1fs.%s%s\n", name, (double)(gm_now_ms() - t0) / 1000.0,
               archived ? " Record archived at " : " The file system was kept; its record stays.",
               archived ? archived : "");
    }
    free(archived);
    rc = GM_EXIT_OK;
done:
    if (st != GM_OK)
        rc = gm_cli_fail(cli, st, &err);
    gm_progress_free(progress);
    gm_deployment_free(dep);
    gm_aws_client_free(aws);
    gm_lock_release(lock);
    gm_store_free(store);
    gm_log_close();
    return rc;
}
