/* geusemaker forget: drop a deployment's local record, touching nothing in AWS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/deployment.h"
#include "core/log.h"

static int cmd_forget(gm_cli *cli, const gm_args *args);

enum { OPT_YES = 1 };

static const gm_opt forget_opts[] = {
    {.name = "yes",
     .short_name = 'y',
     .help = "do not ask for confirmation (required without a terminal)",
     .id = OPT_YES},
};

static const gm_optgroup forget_group = GM_OPTGROUP(NULL, forget_opts);

const gm_command gm_command_forget = {
    .name = "forget",
    .summary = "drop a deployment's local record without touching its AWS resources",
    .synopsis = "forget NAME [--yes] [--output text|json]",
    .groups = {&forget_group},
    .min_pos = 1,
    .max_pos = 1,
    .pos_what = "one deployment name",
    .notes = "For a record that is no use any more: a deploy that failed before it made\n"
             "anything (a mistyped region, say), or a deployment managed elsewhere now.\n"
             "First a read-only look at the record's resources: any that still exist are\n"
             "listed with a warning, since they keep billing; if the look fails (no\n"
             "credentials, an unknown or unreachable region) that is said and forget goes\n"
             "on. The record is moved to the archive folder\n"
             "($GEUSEMAKER_HOME/archive/NAME-<time>.forgotten.json), the log stays.\n"
             "To delete the resources instead: 'geusemaker destroy NAME'; after forget:\n"
             "'geusemaker adopt NAME' (rebuilds the record from their tags), then destroy,\n"
             "or 'geusemaker cleanup --name NAME'.",
    .local = true, /* its look at AWS only informs: a broken AWS setup must not stop it */
    .run = cmd_forget,
};

/* What the live look found, for the warning and the JSON result. */
typedef struct forget_look {
    bool looked;                    /* the look ran (some nodes may still have failed) */
    char why[GM_ERROR_MESSAGE_MAX]; /* why it could not run */
    json_t *existing;               /* ["node id (state)"]: still there */
    json_t *unknown;                /* ["node id"]: not known either way */
} forget_look;

/* Whether the record says node n is a resource this deployment made that
 * may still exist (reused resources were never its own). */
static bool may_exist(const gm_node_state *n)
{
    if (n->provenance == GM_PROV_REUSED || n->status == GM_NODE_DELETED)
        return false;
    return n->id || n->status == GM_NODE_CREATING || n->status == GM_NODE_FAILED ||
           n->status == GM_NODE_DELETING;
}

/* Sorts each resource of the record into existing or unknown from live (NULL
 * when the look did not run). Sub-resources without a look of their own
 * (rules, associations) go with their parent and are left out. */
static void sort_resources(forget_look *lk, const gm_deployment *dep, json_t *live)
{
    for (size_t i = 0; i < dep->n_nodes; i++) {
        const gm_node_state *n = &dep->nodes[i];
        if (!may_exist(n))
            continue;
        json_t *l = live ? json_object_get(live, n->name) : NULL;
        char line[256];
        if (!n->id) {
            snprintf(line, sizeof line, "%s (its id was never saved; find it by its tags)",
                     n->name);
            json_array_append_new(lk->unknown, json_string(line));
        } else if (!live || (l && json_object_get(l, "error"))) {
            snprintf(line, sizeof line, "%s %s", n->name, n->id);
            json_array_append_new(lk->unknown, json_string(line));
        } else if (json_is_true(json_object_get(l, "exists"))) {
            const char *state = json_string_value(json_object_get(l, "state"));
            snprintf(line, sizeof line, "%s %s%s%s%s", n->name, n->id, state ? " (" : "",
                     state ? state : "", state ? ")" : "");
            json_array_append_new(lk->existing, json_string(line));
        }
    }
}

/* The read-only look at the record's resources (gm_engine_inspect, as status
 * does). Never fails: what went wrong goes into lk->why. */
static void look(gm_cli *cli, gm_store *store, gm_deployment *dep, forget_look *lk)
{
    bool any = false;
    for (size_t i = 0; i < dep->n_nodes && !any; i++)
        any = may_exist(&dep->nodes[i]) && dep->nodes[i].id;
    json_t *live = NULL;
    gm_aws_client *aws = NULL;
    gm_error err = {0};
    gm_status st = GM_OK;
    if (any) {
        if (!cli->region)
            cli->region = dep->region;
        st = gm_cli_aws_client(cli, &aws, &err);
        if (st == GM_OK) {
            gm_engine_options eo = {.aws = aws, .store = store};
            st = gm_engine_inspect(&eo, dep, &live, &err);
        }
        if (st != GM_OK)
            snprintf(lk->why, sizeof lk->why, "%s", *err.message ? err.message : "unknown error");
        lk->looked = st == GM_OK;
    }
    sort_resources(lk, dep, st == GM_OK ? live : NULL);
    json_decref(live);
    gm_aws_client_free(aws);
}

static void warn_resources(gm_cli *cli, const gm_deployment *dep, const forget_look *lk)
{
    size_t ne = json_array_size(lk->existing), nu = json_array_size(lk->unknown);
    const char *where = cli->region ? cli->region : dep->region; /* where the look was */
    char tag[64];
    const char *w = gm_term_style(&cli->term, "1;33", "warning:", tag, sizeof tag);
    if (*lk->why)
        fprintf(stderr, "%s could not look at the resources of '%s' in %s: %s\n", w, dep->name,
                where, lk->why);
    if (ne)
        fprintf(stderr,
                "%s %zu resource(s) of '%s' still exist in %s and keep billing after its record "
                "is gone:\n",
                w, ne, dep->name, where);
    size_t i;
    json_t *v;
    json_array_foreach (lk->existing, i, v)
        fprintf(stderr, "  %s\n", json_string_value(v));
    if (nu)
        fprintf(stderr,
                "%s %zu recorded resource(s) of '%s' could not be checked; if they exist "
                "they keep billing:\n",
                w, nu, dep->name);
    json_array_foreach (lk->unknown, i, v)
        fprintf(stderr, "  %s\n", json_string_value(v));
    if (!ne && !nu)
        return;
    fprintf(stderr,
            "To delete them: 'geusemaker destroy %s' now instead of forget; or, after forget,\n"
            "'geusemaker adopt %s --region %s' (rebuilds the record from their tags) and then\n"
            "'geusemaker destroy %s', or 'geusemaker cleanup --region %s --name %s'.\n",
            dep->name, dep->name, where, dep->name, where, dep->name);
}

static bool confirm(const char *name)
{
    if (!isatty(STDIN_FILENO))
        return false;
    fprintf(stderr,
            "This drops the local record of '%s'; nothing in AWS is changed. Type its name to "
            "confirm: ",
            name);
    char line[128];
    if (!fgets(line, sizeof line, stdin))
        return false;
    line[strcspn(line, "\r\n")] = '\0';
    return strcmp(line, name) == 0;
}

static void print_forgotten(gm_cli *cli, const char *name, const char *archived, const char *log,
                            const forget_look *lk)
{
    if (cli->output == GM_OUTPUT_JSON) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:{s:b, s:s?, s:O, s:O}}", "name", name,
                              "status", "forgotten", "archived_record", archived, "log", log,
                              "resources", "looked", lk->looked, "error", *lk->why ? lk->why : NULL,
                              "still_existing", lk->existing, "unchecked", lk->unknown);
        gm_cli_print_json(o);
        return;
    }
    printf("Forgot '%s': its record was moved to %s. Nothing in AWS was changed.\n", name,
           archived);
    if (log)
        printf("Its log stays at %s.\n", log);
}

/* Refuses a name with no record before anything is locked or created (exit
 * 2, the store's message). */
static GM_MUST_CHECK gm_status check_recorded(const char *name, gm_error *err)
{
    gm_store *s = NULL;
    gm_status st = gm_store_open(NULL, &s, err);
    if (st == GM_OK && !gm_store_exists(s, name)) {
        gm_deployment *d = NULL;
        st = gm_cli_load_record(s, name, &d, err);
        gm_deployment_free(d);
    }
    gm_store_free(s);
    return st;
}

/* Loads the record; a corrupt or unreadable one can still be forgotten (it
 * is archived as it is), without a look. */
static GM_MUST_CHECK gm_status load_for_forget(gm_cli *cli, gm_store *store, const char *name,
                                               gm_deployment **out, gm_error *err)
{
    gm_error lerr = {0};
    gm_status st = gm_cli_load_record(store, name, out, &lerr);
    if (st == GM_ERR_PARSE || st == GM_ERR_CONFLICT || st == GM_ERR_LIMIT) {
        char tag[64];
        fprintf(stderr,
                "%s %s\nIts resources cannot be looked at; if it made any, find them with "
                "'geusemaker cleanup --name %s'.\n",
                gm_term_style(&cli->term, "1;33", "warning:", tag, sizeof tag), lerr.message, name);
        return GM_OK;
    }
    if (st != GM_OK)
        *err = lerr;
    return st;
}

static int cmd_forget(gm_cli *cli, const gm_args *args)
{
    bool yes = gm_args_has(args, OPT_YES);
    const char *name = args->pos[0];
    gm_error err = {0};
    gm_status st = gm_store_check_name(name, &err);
    if (st == GM_OK)
        st = check_recorded(name, &err);
    if (st != GM_OK)
        return gm_cli_fail(cli, st, &err);
    if (!yes && !isatty(STDIN_FILENO))
        return gm_cli_usage_error(cli,
                                  "forget needs --yes when there is no terminal to confirm on");
    gm_store *store = NULL;
    gm_lock *lock = NULL;
    gm_deployment *dep = NULL;
    forget_look lk = {.existing = json_array(), .unknown = json_array()};
    char *archived = NULL, *log = NULL;
    int rc = GM_EXIT_FAILED;
    st = gm_cli_open_locked(cli, name, &store, &lock, &err);
    if (st == GM_OK)
        st = load_for_forget(cli, store, name, &dep, &err);
    if (st != GM_OK)
        goto done;
    if (dep) {
        look(cli, store, dep, &lk);
        warn_resources(cli, dep, &lk);
    }
    if (!yes && !confirm(name)) {
        fprintf(stderr, "not confirmed: the record was kept\n");
        rc = GM_EXIT_USAGE;
        goto done;
    }
    st = gm_store_forget(store, name, &archived, &err);
    gm_log_event(st == GM_OK ? GM_LOG_INFO : GM_LOG_ERROR, "forget",
                 json_pack("{s:s, s:s?, s:I, s:s?}", "name", name, "archived_record", archived,
                           "still_existing", (json_int_t)json_array_size(lk.existing), "error",
                           st == GM_OK ? NULL : err.message));
    if (st != GM_OK)
        goto done;
    log = gm_store_log_path(store, name);
    print_forgotten(cli, name, archived, log, &lk);
    rc = GM_EXIT_OK;
done:
    if (st != GM_OK)
        rc = gm_cli_fail(cli, st, &err);
    free(archived);
    free(log);
    json_decref(lk.existing);
    json_decref(lk.unknown);
    gm_deployment_free(dep);
    gm_lock_release(lock);
    gm_store_free(store);
    gm_log_close();
    return rc;
}
