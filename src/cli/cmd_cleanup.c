/* geusemaker cleanup: find and delete what geusemaker made and no local
 * record knows (a lost state folder, a deploy killed before its record was
 * saved, another machine's leftovers). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/partition.h"
#include "cli/deployment.h"
#include "core/log.h"

static int cmd_cleanup(gm_cli *cli, const gm_args *args);

enum { OPT_ALL_REGIONS = 1, OPT_NAME, OPT_DRY_RUN, OPT_YES };

static const gm_opt cleanup_opts[] = {
    {.name = "all-regions",
     .help = "look in every region of the partition (default: --region or the default region)",
     .id = OPT_ALL_REGIONS},
    {.name = "name",
     .arg = "NAME",
     .help = "only deployments of this name, recorded here or not",
     .id = OPT_NAME},
    {.name = "dry-run", .help = "list what would be deleted and delete nothing", .id = OPT_DRY_RUN},
    {.name = "yes",
     .short_name = 'y',
     .help = "do not ask for confirmation (required without a terminal)",
     .id = OPT_YES},
};

static const gm_optgroup cleanup_group = GM_OPTGROUP(NULL, cleanup_opts);

const gm_command gm_command_cleanup = {
    .name = "cleanup",
    .summary = "find and delete resources geusemaker made that no local record knows",
    .synopsis = "cleanup [--region R | --all-regions] [--name N] [--dry-run] [--yes] "
                "[--output text|json]",
    .groups = {&cleanup_group},
    .pos_what = "no arguments",
    .notes = "Lists every resource tagged by geusemaker (the Resource Groups Tagging API,\n"
             "and IAM roles and instance profiles by their path and tags), grouped by\n"
             "deployment, skipping deployments that have a record in this state folder\n"
             "(with --name, those of that name are included). Each is checked before it\n"
             "is shown. After confirmation each deployment is deleted like destroy does:\n"
             "in dependency order, only what carries its deployment id, until nothing\n"
             "tagged is left. To keep managing one instead, use 'geusemaker adopt'.",
    .run = cmd_cleanup,
};

typedef struct cleanup_run {
    gm_cli *cli;
    const char *only; /* --name */
    bool dry_run, yes;
    gm_store *store;
    json_t *recorded; /* name -> deployment id of this folder's records */
    json_t *found;    /* surveys (gm_engine_survey) with "recorded" */
    json_t *skipped;  /* [{"region", "error"}] */
    gm_engine_settings settings;
    gm_error err;
} cleanup_run;

/* The deployment ids of this state folder's records, by name. */
static GM_MUST_CHECK gm_status load_recorded(cleanup_run *r)
{
    char **names = NULL;
    size_t n = 0;
    gm_status st = gm_store_list(r->store, &names, &n, &r->err);
    r->recorded = json_object();
    for (size_t i = 0; st == GM_OK && i < n; i++) {
        gm_deployment *d = NULL;
        gm_error lerr = {0};
        if (gm_store_load(r->store, names[i], &d, &lerr) == GM_OK)
            json_object_set_new(r->recorded, names[i], json_string(d->deployment_id));
        else /* unreadable: never treat its resources as orphans */
            json_object_set_new(r->recorded, names[i], json_string("*"));
        gm_deployment_free(d);
    }
    gm_store_list_free(names, n);
    return st;
}

/* Whether (name, id) has a record in this folder. */
static bool is_recorded(const cleanup_run *r, const char *name, const char *id)
{
    const char *rec = json_string_value(json_object_get(r->recorded, name));
    return rec && (strcmp(rec, id) == 0 || strcmp(rec, "*") == 0);
}

static GM_MUST_CHECK gm_status region_client(cleanup_run *r, const char *region,
                                             gm_aws_client **out)
{
    const char *flag = r->cli->region; /* restored: --region, if any */
    r->cli->region = region;
    gm_status st = gm_cli_aws_client(r->cli, out, &r->err);
    r->cli->region = flag;
    return st;
}

/* A region that is not enabled for the account refuses every call: nothing
 * of ours can be there. */
static bool region_not_enabled(const gm_error *e)
{
    static const char *const codes[] = {"UnrecognizedClientException", "InvalidClientTokenId",
                                        "AuthFailure", "OptInRequired", NULL};
    for (int i = 0; codes[i]; i++)
        if (strcmp(e->aws_code, codes[i]) == 0)
            return true;
    return false;
}

/* Surveys every deployment of one region that the listing shows. */
static GM_MUST_CHECK gm_status scan_region(cleanup_run *r, const char *region)
{
    gm_aws_client *aws = NULL;
    gm_status st = region_client(r, region, &aws);
    if (st != GM_OK)
        return st;
    gm_aws_client_set_read_only(aws, true);
    json_t *groups = NULL;
    st = gm_engine_discover(aws, r->only, true, &groups, &r->err);
    gm_engine_options eo = {.aws = aws, .settings = r->settings};
    size_t i;
    json_t *g;
    json_array_foreach (groups, i, g) {
        const char *name = json_string_value(json_object_get(g, "name"));
        const char *id = json_string_value(json_object_get(g, "deployment_id"));
        bool recorded = is_recorded(r, name, id);
        if (st != GM_OK || (recorded && !r->only))
            continue;
        json_t *survey = NULL;
        st = gm_engine_survey(&eo, name, id, &survey, &r->err);
        if (st == GM_OK && json_array_size(json_object_get(survey, "resources"))) {
            json_object_set_new(survey, "recorded", json_boolean(recorded));
            json_array_append(r->found, survey);
        }
        json_decref(survey);
    }
    json_decref(groups);
    gm_aws_client_free(aws);
    if (st != GM_OK && r->err.status != GM_ERR_AUTH && region_not_enabled(&r->err)) {
        json_array_append_new(r->skipped,
                              json_pack("{s:s, s:s}", "region", region, "error", r->err.message));
        gm_error_clear(&r->err);
        return GM_OK;
    }
    return st;
}

static void print_plan(const cleanup_run *r)
{
    size_t i, k;
    json_t *d, *res;
    double hourly = 0;
    json_array_foreach (r->found, i, d)
        hourly += json_number_value(json_object_get(d, "hourly_usd"));
    printf("%zu deployment(s)%s, about $%.4f/hour (running instances at on-demand rates):\n",
           json_array_size(r->found), r->only ? "" : " with no record here", hourly);
    json_array_foreach (r->found, i, d) {
        const char *id = json_string_value(json_object_get(d, "deployment_id"));
        printf("\n  %s  id %s  %s  %zu resource(s)  $%.4f/h%s\n",
               json_string_value(json_object_get(d, "name")), *id ? id : "(none)",
               json_string_value(json_object_get(d, "region")),
               json_array_size(json_object_get(d, "resources")),
               json_number_value(json_object_get(d, "hourly_usd")),
               json_is_true(json_object_get(d, "recorded")) ? "  (recorded here)" : "");
        json_array_foreach (json_object_get(d, "resources"), k, res)
            printf("    %-18s %s\n", json_string_value(json_object_get(res, "kind")),
                   json_string_value(json_object_get(res, "id")));
    }
    json_array_foreach (r->skipped, i, d)
        printf("skipped %s: %s\n", json_string_value(json_object_get(d, "region")),
               json_string_value(json_object_get(d, "error")));
}

static bool confirm(const cleanup_run *r)
{
    if (r->yes)
        return true;
    fprintf(stderr, "\nThis deletes every resource listed above, file systems and their data "
                    "included. Type 'delete' to confirm: ");
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return false;
    line[strcspn(line, "\r\n")] = '\0';
    return strcmp(line, "delete") == 0;
}

/* Deletes one deployment's resources, under its name's lock here. */
static GM_MUST_CHECK gm_status delete_one(cleanup_run *r, json_t *d, gm_error *err)
{
    const char *name = json_string_value(json_object_get(d, "name"));
    const char *id = json_string_value(json_object_get(d, "deployment_id"));
    const char *region = json_string_value(json_object_get(d, "region"));
    gm_lock *lock = NULL;
    gm_aws_client *aws = NULL;
    gm_status st = gm_store_lock(r->store, name, &lock, err);
    if (st == GM_OK && (st = region_client(r, region, &aws)) != GM_OK)
        *err = r->err;
    char title[160];
    snprintf(title, sizeof title, "Cleaning up \"%s\" (id %s) in %s", name, *id ? id : "none",
             region);
    gm_progress *progress = NULL;
    if (st == GM_OK) {
        progress = gm_progress_new(&r->cli->term, gm_cli_show_progress(r->cli), title);
        gm_engine_options eo = {.aws = aws,
                                .observer = gm_cli_progress_observer,
                                .observer_ctx = progress,
                                .interrupt = &gm_cli_interrupted,
                                .settings = r->settings};
        st = gm_engine_cleanup(&eo, name, id, err);
    }
    gm_progress_free(progress);
    char *archived = NULL;
    if (st == GM_OK && json_is_true(json_object_get(d, "recorded")) &&
        gm_store_archive(r->store, name, &archived, err) != GM_OK)
        fprintf(stderr, "warning: the record of '%s' could not be archived: %s\n", name,
                err->message);
    free(archived);
    gm_aws_client_free(aws);
    gm_lock_release(lock);
    return st;
}

static int delete_all(cleanup_run *r)
{
    gm_cli_install_interrupt_handlers();
    size_t i, failed = 0;
    json_t *d;
    json_array_foreach (r->found, i, d) {
        gm_error derr = {0};
        gm_status st = gm_cli_interrupted ? GM_ERR_INTERRUPTED : delete_one(r, d, &derr);
        json_object_set_new(d, "deleted", json_boolean(st == GM_OK));
        if (st != GM_OK) {
            failed++;
            if (st == GM_ERR_INTERRUPTED && !*derr.message)
                gm_ignore(gm_error_set(&derr, st, "interrupted"));
            json_object_set_new(d, "error", json_string(derr.message));
            fprintf(stderr, "error: cleaning up '%s' failed: %s\n",
                    json_string_value(json_object_get(d, "name")), derr.message);
        } else if (r->cli->output != GM_OUTPUT_JSON) {
            printf("deleted every resource of '%s' (id %s)\n",
                   json_string_value(json_object_get(d, "name")),
                   json_string_value(json_object_get(d, "deployment_id")));
        }
    }
    gm_log_event(failed ? GM_LOG_ERROR : GM_LOG_INFO, "cleanup_end",
                 json_pack("{s:I, s:I}", "deployments", (json_int_t)json_array_size(r->found),
                           "failed", (json_int_t)failed));
    return failed ? GM_EXIT_FAILED : GM_EXIT_OK;
}

/* The regions to look in: --region or the default one, or with
 * --all-regions every region of its partition. */
static GM_MUST_CHECK gm_status regions_of(cleanup_run *r, bool all, const char *const **out,
                                          size_t *out_n, const char **one)
{
    char *region = NULL;
    gm_status st =
        gm_aws_resolve_region(gm_cli_region_flag(r->cli), r->cli->profile, &region, &r->err);
    if (st != GM_OK)
        return st;
    const gm_partition *p = gm_partition_of(region);
    if (!p) {
        st = gm_region_check(region, "the region", &r->err);
        free(region);
        return st != GM_OK ? st : gm_error_set(&r->err, GM_ERR_INVALID, "unknown region");
    }
    if (all) {
        *out = p->regions;
        *out_n = p->n_regions;
    } else {
        for (size_t i = 0; i < p->n_regions; i++)
            if (strcmp(p->regions[i], region) == 0)
                *one = p->regions[i];
        *out = one;
        *out_n = 1;
    }
    free(region);
    return GM_OK;
}

static int finish(cleanup_run *r, int rc)
{
    if (r->cli->output == GM_OUTPUT_JSON && r->found)
        gm_cli_print_json(json_pack("{s:b, s:O, s:O}", "dry_run", r->dry_run, "deployments",
                                    r->found, "skipped_regions", r->skipped));
    json_decref(r->recorded);
    json_decref(r->found);
    json_decref(r->skipped);
    gm_store_free(r->store);
    return rc;
}

static int cmd_cleanup(gm_cli *cli, const gm_args *args)
{
    cleanup_run r = {.cli = cli,
                     .only = gm_args_value(args, OPT_NAME),
                     .dry_run = gm_args_has(args, OPT_DRY_RUN),
                     .yes = gm_args_has(args, OPT_YES)};
    bool all = gm_args_has(args, OPT_ALL_REGIONS);
    if (all && cli->region)
        return gm_cli_usage_error(cli, "--all-regions and --region exclude each other");
    if (!r.dry_run && !r.yes && !isatty(STDIN_FILENO))
        return gm_cli_usage_error(
            cli, "cleanup needs --yes (or --dry-run) when there is no terminal to confirm on");
    gm_status st = r.only ? gm_engine_check_name(r.only, &r.err) : GM_OK;
    if (st == GM_OK)
        st = gm_cli_engine_settings(&r.settings, &r.err);
    const char *const *regions = NULL;
    const char *one = NULL;
    size_t n_regions = 0;
    if (st == GM_OK)
        st = regions_of(&r, all, &regions, &n_regions, &one);
    if (st == GM_OK)
        st = gm_store_open(NULL, &r.store, &r.err);
    if (st == GM_OK)
        st = load_recorded(&r);
    r.found = json_array();
    r.skipped = json_array();
    for (size_t i = 0; st == GM_OK && i < n_regions; i++)
        st = scan_region(&r, regions[i]);
    if (st != GM_OK) {
        json_decref(r.found);
        r.found = NULL;
        return finish(&r, gm_cli_fail(cli, st, &r.err));
    }
    if (cli->output != GM_OUTPUT_JSON && json_array_size(r.found) == 0)
        printf("nothing to clean up: no resource tagged by geusemaker%s in %s%s\n",
               r.only ? " under that name" : " without a record here", all ? "any region of " : "",
               all || !n_regions ? "the partition" : regions[0]);
    else if (cli->output != GM_OUTPUT_JSON)
        print_plan(&r);
    if (r.dry_run || json_array_size(r.found) == 0)
        return finish(&r, GM_EXIT_OK);
    if (!confirm(&r)) {
        fprintf(stderr, "not confirmed: nothing was deleted\n");
        return finish(&r, GM_EXIT_USAGE);
    }
    return finish(&r, delete_all(&r));
}
