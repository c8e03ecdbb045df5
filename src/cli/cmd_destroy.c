/* geusemaker destroy: delete everything a deployment created. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/deployment.h"
#include "core/log.h"
#include "core/timeutil.h"

static int cmd_destroy(gm_cli *cli, const gm_args *args);

enum { OPT_YES = 1, OPT_KEEP_EFS };

static const gm_opt destroy_opts[] = {
    {.name = "yes",
     .short_name = 'y',
     .help = "do not ask for confirmation (required without a terminal)",
     .id = OPT_YES},
    {.name = "keep-efs", .help = "keep the file system and its data", .id = OPT_KEEP_EFS},
};

static const gm_optgroup destroy_group = GM_OPTGROUP(NULL, destroy_opts);

const gm_command gm_command_destroy = {
    .name = "destroy",
    .summary = "delete every resource a deployment created (reused ones are kept)",
    .synopsis = "destroy NAME [--yes] [--keep-efs]",
    .groups = {&destroy_group},
    .min_pos = 1,
    .max_pos = 1,
    .pos_what = "one deployment name",
    .notes = "Resources that were being created when geusemaker was stopped are found by\n"
             "their tags. The record is archived only when nothing remains; run destroy\n"
             "again to finish what an earlier run could not.",
    .run = cmd_destroy,
};

/* Lists what goes (the data included), then asks for the name. */
static bool confirm(const gm_deployment *dep, bool keep_efs)
{
    const char *name = dep->name;
    if (!isatty(STDIN_FILENO))
        return false;
    fprintf(stderr, "Destroying '%s' (%s) deletes:\n", name, dep->region);
    json_t *doomed = gm_engine_doomed(dep, keep_efs);
    size_t i;
    json_t *d;
    json_array_foreach (doomed, i, d)
        fprintf(stderr, "  %-17s %s%s\n", json_string_value(json_object_get(d, "kind")),
                json_string_value(json_object_get(d, "id")),
                json_is_true(json_object_get(d, "data"))
                    ? "  WITH ALL ITS DATA (n8n workflows and credentials, the databases' files)"
                    : "");
    json_decref(doomed);
    fprintf(stderr, "  and anything else tagged as this deployment's. Reused resources stay%s.\n",
            keep_efs ? "; the file system and its data stay (--keep-efs)" : "");
    fprintf(stderr, "Type the deployment's name to confirm: ");
    char line[128];
    if (!fgets(line, sizeof line, stdin))
        return false;
    line[strcspn(line, "\r\n")] = '\0';
    return strcmp(line, name) == 0;
}

/* Archives the record (unless the file system stays) and says what was done. */
static GM_MUST_CHECK gm_status report(gm_cli_session *s, bool keep_efs)
{
    char *archived = NULL;
    if (!keep_efs) {
        gm_status st = gm_store_archive(s->store, s->name, &archived, &s->err);
        if (st != GM_OK)
            return st;
    }
    double secs = (double)(gm_now_ms() - s->t0) / 1000.0;
    if (s->cli->output == GM_OUTPUT_JSON) {
        gm_cli_print_json(json_pack("{s:s, s:s, s:s?, s:b, s:f}", "name", s->name, "status",
                                    "destroyed", "archived_record", archived, "kept_efs", keep_efs,
                                    "duration_s", secs));
    } else {
        printf("Destroyed '%s' in %.1fs.%s%s\n", s->name, secs,
               archived ? " Record archived at " : " The file system was kept; its record stays.",
               archived ? archived : "");
    }
    free(archived);
    return GM_OK;
}

static int cmd_destroy(gm_cli *cli, const gm_args *args)
{
    bool yes = gm_args_has(args, OPT_YES), keep_efs = gm_args_has(args, OPT_KEEP_EFS);
    const char *name = args->pos[0];
    gm_error err = {0};
    gm_status st = gm_engine_check_name(name, &err);
    if (st != GM_OK)
        return gm_cli_fail(cli, st, &err);
    if (!yes && !isatty(STDIN_FILENO))
        return gm_cli_usage_error(cli,
                                  "destroy needs --yes when there is no terminal to confirm on");
    gm_cli_session s = {0};
    st = gm_cli_session_open(cli, name, &s);
    if (st == GM_OK && !yes && !confirm(s.dep, keep_efs)) {
        fprintf(stderr, "not confirmed: nothing was deleted\n");
        return gm_cli_session_close(&s, GM_OK, GM_EXIT_USAGE);
    }
    if (st == GM_OK)
        st = gm_cli_session_connect(&s);
    if (st != GM_OK)
        return gm_cli_session_close(&s, st, GM_EXIT_FAILED);
    gm_log_event(GM_LOG_INFO, "destroy_start",
                 json_pack("{s:s, s:b}", "name", name, "keep_efs", keep_efs));
    char title[128];
    snprintf(title, sizeof title, "Destroying \"%s\" in %s", name, s.dep->region);
    gm_engine_options eo = gm_cli_session_engine(&s, title);
    st = gm_engine_destroy(&eo, s.dep, keep_efs, &s.err);
    gm_cli_session_done(&s);
    gm_log_event(st == GM_OK ? GM_LOG_INFO : GM_LOG_ERROR, "destroy_end",
                 json_pack("{s:s, s:I, s:s?}", "status", gm_dep_status_name(s.dep->status),
                           "duration_ms", (json_int_t)(gm_now_ms() - s.t0), "error",
                           st == GM_OK ? NULL : s.err.message));
    if (st != GM_OK)
        fprintf(stderr,
                "the record of '%s' is kept with what remains; run 'geusemaker destroy %s' "
                "again to finish\n",
                name, name);
    if (st == GM_OK)
        st = report(&s, keep_efs);
    return gm_cli_session_close(&s, st, GM_EXIT_OK);
}
