/* geusemaker update: new instance types, images or models for a deployment,
 * through a new launch template version and a replacement of its instance
 * (rolled back when the replacement does not serve in time). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/deployment.h"
#include "core/log.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "engine/lifecycle.h"

static int cmd_update(gm_cli *cli, const gm_args *args);

enum { U_TYPES = 1, U_IMAGE, U_MODELS, U_DRY_RUN, U_YES, U_TIMEOUT };

#define MAX_UPDATE_IMAGES 16
#define UPDATE_TIMEOUT_MAX_S (3 * 3600)

static const gm_opt update_opts[] = {
    {.name = "instance-types",
     .arg = "A,B,...",
     .help = "new candidate types in preference order (of the deployment's architecture)",
     .id = U_TYPES},
    {.name = "image",
     .arg = "SERVICE=REPO:TAG",
     .help = "run this image for a service instead of the pinned one (repeatable)",
     .id = U_IMAGE,
     .flags = GM_OPT_REPEAT},
    {.name = "models",
     .arg = "M,...",
     .help = "the Ollama models pulled after boot ('' for none)",
     .id = U_MODELS},
    {.name = "dry-run", .help = "print the difference and change nothing", .id = U_DRY_RUN},
    {.name = "yes",
     .short_name = 'y',
     .help = "do not ask for confirmation (required without a terminal)",
     .id = U_YES},
    {.name = "timeout",
     .arg = "S",
     .help = "wait this long for the replacement to serve before rolling back",
     .dflt = "900",
     .id = U_TIMEOUT},
};

static const gm_optgroup update_group = GM_OPTGROUP(NULL, update_opts);

const gm_command gm_command_update = {
    .name = "update",
    .summary = "change a deployment's instance types, images or models (a new launch template "
               "version, the instance replaced, rolled back if it does not serve)",
    .synopsis = "update NAME [--instance-types T,...] [--image SERVICE=REPO:TAG]... "
                "[--models M,...] [--dry-run] [--yes] [--timeout S]",
    .groups = {&update_group},
    .min_pos = 1,
    .max_pos = 1,
    .pos_what = "one deployment name",
    .notes = "Writes a new version of the deployment's launch template, points its Auto\n"
             "Scaling group at it (and at the new types), and replaces the instance through\n"
             "the group: the stack is down for a few minutes; EFS keeps PostgreSQL and n8n,\n"
             "Qdrant restores its last snapshot. When the replacement is not in service and\n"
             "healthy within --timeout, the group goes back to the previous version and\n"
             "replaces the instance again; update then exits 1. A stopped deployment gets the\n"
             "new version without a replacement (start runs it). The record keeps every\n"
             "version (status shows them). --dry-run prints the difference only.",
    .run = cmd_update,
};

/* The parsed command line; the strings point into args or into lists. */
typedef struct update_args {
    gm_update_request req;
    const char *types[GM_MAX_TYPES + 1];
    const char *models[GM_MAX_MODELS + 1];
    const char *services[MAX_UPDATE_IMAGES], *refs[MAX_UPDATE_IMAGES];
    char *lists[2 + MAX_UPDATE_IMAGES]; /* copies split in place */
    size_t n_lists;
    bool yes;
} update_args;

static void update_args_release(update_args *u)
{
    for (size_t i = 0; i < u->n_lists; i++)
        free(u->lists[i]);
}

/* A copy of s kept in u (NULL when memory is out). */
static char *keep(update_args *u, const char *s)
{
    char *c = u->n_lists < sizeof u->lists / sizeof *u->lists ? strdup(s) : NULL;
    if (c)
        u->lists[u->n_lists++] = c;
    return c;
}

/* Splits a comma list into out (at most max); -1 when too many. */
static int split(update_args *u, const char *list, const char **out, int max)
{
    char *copy = keep(u, list);
    if (!copy)
        return -2;
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        t = gm_str_trim(t);
        if (!*t)
            continue;
        if (n == max)
            return -1;
        out[n++] = t;
    }
    return n;
}

static int one_image(gm_cli *cli, update_args *u, const char *value)
{
    gm_update_request *r = &u->req;
    if (r->n_images == MAX_UPDATE_IMAGES)
        return gm_cli_usage_error(cli, "at most %d --image", MAX_UPDATE_IMAGES);
    char *copy = keep(u, value);
    char *eq = copy ? strchr(copy, '=') : NULL;
    if (!eq || eq == copy || !eq[1])
        return gm_cli_usage_error(cli,
                                  "invalid --image '%s': expected SERVICE=REPO:TAG, for "
                                  "example n8n=n8nio/n8n:2.42.0",
                                  value);
    *eq = '\0';
    u->services[r->n_images] = copy;
    u->refs[r->n_images] = eq + 1;
    r->n_images++;
    return -1;
}

/* Fills u from args; returns -1 when fine, else the exit code. */
static int parse(gm_cli *cli, const gm_args *args, update_args *u)
{
    gm_update_request *r = &u->req;
    r->instance_types = u->types;
    r->models = u->models;
    r->image_services = u->services;
    r->image_refs = u->refs;
    for (size_t i = 0; i < args->n_opts; i++) {
        const gm_arg *a = &args->opts[i];
        int n, rc = -1;
        int64_t secs = 0;
        switch (a->opt->id) {
        case U_TYPES:
            n = split(u, a->value, u->types, GM_MAX_TYPES);
            if (n <= 0)
                return gm_cli_usage_error(cli, "--instance-types needs 1 to %d types",
                                          GM_MAX_TYPES);
            r->n_types = n;
            break;
        case U_MODELS:
            n = split(u, a->value, u->models, GM_MAX_MODELS);
            if (n < 0)
                return gm_cli_usage_error(cli, "at most %d --models", GM_MAX_MODELS);
            r->n_models = n;
            r->models_set = true;
            break;
        case U_IMAGE: rc = one_image(cli, u, a->value); break;
        case U_DRY_RUN: r->dry_run = true; break;
        case U_YES: u->yes = true; break;
        case U_TIMEOUT:
            if (!gm_str_to_int64(a->value, 1, UPDATE_TIMEOUT_MAX_S, &secs))
                return gm_cli_usage_error(cli,
                                          "invalid --timeout '%s': expected seconds from 1 to %d",
                                          a->value, UPDATE_TIMEOUT_MAX_S);
            r->timeout_ms = secs * 1000;
            break;
        default: break;
        }
        if (rc != -1)
            return rc;
    }
    if (!r->n_types && !r->models_set && !r->n_images)
        return gm_cli_usage_error(cli, "update needs --instance-types, --image or --models: "
                                       "what should change?");
    return -1;
}

/* "a,b,c" of a JSON array of strings, or "(the pinned one)" for null. */
static void join(const json_t *v, char *out, size_t size)
{
    out[0] = '\0';
    if (json_is_string(v)) {
        snprintf(out, size, "%s", json_string_value(v));
        return;
    }
    if (!json_is_array(v)) {
        snprintf(out, size, "(the pinned one)");
        return;
    }
    size_t i, len = 0;
    const json_t *s;
    json_array_foreach (v, i, s)
        if (len < size)
            len +=
                (size_t)snprintf(out + len, size - len, "%s%s", i ? "," : "", json_string_value(s));
    if (json_array_size(v) == 0)
        snprintf(out, size, "(none)");
}

static void print_change(const char *what, const json_t *c)
{
    char from[512], to[512];
    join(json_object_get(c, "from"), from, sizeof from);
    join(json_object_get(c, "to"), to, sizeof to);
    printf("  %-16s %s -> %s\n", what, from, to);
}

static void print_diff(const json_t *diff)
{
    const json_t *c = json_object_get(diff, "instance_types");
    if (c)
        print_change("instance types", c);
    if ((c = json_object_get(diff, "models")))
        print_change("models", c);
    const char *svc;
    const json_t *img;
    json_object_foreach ((json_t *)json_object_get(diff, "images"), svc, img) {
        char what[64];
        snprintf(what, sizeof what, "image %s", svc);
        print_change(what, img);
    }
}

/* Asks on a terminal; false without one. */
static bool confirm(const gm_deployment *dep)
{
    if (!isatty(STDIN_FILENO))
        return false;
    fprintf(stderr,
            "The instance of '%s' is replaced: the stack is down for a few minutes. Go on? "
            "[y/N] ",
            dep->name);
    char line[16];
    return fgets(line, sizeof line, stdin) && (line[0] == 'y' || line[0] == 'Y');
}

static void print_result(gm_cli *cli, const gm_deployment *dep, const json_t *diff,
                         const gm_update_outcome *o, bool dry_run, int64_t t0)
{
    if (cli->output == GM_OUTPUT_JSON) {
        json_t *j = json_pack("{s:s, s:b, s:O, s:b, s:b, s:b, s:f}", "name", dep->name, "dry_run",
                              dry_run, "changes", diff, "changed", json_object_size(diff) > 0,
                              "replaced", o->replaced, "rolled_back", o->rolled_back, "duration_s",
                              (double)(gm_now_ms() - t0) / 1000.0);
        if (j && *o->to_version)
            json_object_set_new(
                j, "template_version",
                json_pack("{s:s, s:s}", "from", o->from_version, "to", o->to_version));
        gm_cli_print_json(j);
        return;
    }
    if (!json_object_size(diff)) {
        printf("Nothing to change: '%s' already runs with these settings.\n", dep->name);
        return;
    }
    if (dry_run) {
        printf("Update of '%s' (dry run: nothing was changed):\n", dep->name);
        print_diff(diff);
        printf("%s\n", dep->status == GM_DEP_STOPPED
                           ? "It is stopped: the new version would run at the next start."
                           : "The instance would be replaced: the stack is down for a few "
                             "minutes.");
        return;
    }
    printf("Updated '%s' in %.1fs: launch template version %s -> %s%s.\n", dep->name,
           (double)(gm_now_ms() - t0) / 1000.0, o->from_version, o->to_version,
           o->replaced ? ", the new instance serves" : " (stopped: it runs at the next start)");
    print_diff(diff);
}

/* Whether the update may go on: yes, a stopped deployment (nothing is
 * replaced), or the user's answer on a terminal. -1: go on; else the exit. */
static int approved(gm_cli *cli, const update_args *u, const gm_deployment *dep, json_t *diff)
{
    if (u->yes || dep->status == GM_DEP_STOPPED)
        return -1;
    if (!isatty(STDIN_FILENO))
        return gm_cli_usage_error(cli, "update replaces the instance: it needs --yes when there "
                                       "is no terminal to confirm on");
    printf("Update of '%s':\n", dep->name);
    print_diff(diff);
    fflush(stdout);
    if (confirm(dep))
        return -1;
    fprintf(stderr, "not confirmed: nothing was changed\n");
    return GM_EXIT_USAGE;
}

static int run_update(gm_cli_session *s, update_args *u, json_t *diff)
{
    gm_update_outcome out;
    memset(&out, 0, sizeof out);
    gm_status st = gm_cli_session_connect(s);
    if (st != GM_OK)
        return gm_cli_session_close(s, st, GM_EXIT_FAILED);
    gm_log_event(GM_LOG_INFO, "update_start",
                 json_pack("{s:s, s:O}", "name", s->name, "changes", diff));
    char title[128];
    snprintf(title, sizeof title, "Updating \"%s\" in %s", s->name, s->dep->region);
    gm_engine_options eo = gm_cli_session_engine(s, title);
    st = gm_engine_update(&eo, s->dep, &u->req, &out, &s->err);
    gm_cli_session_done(s);
    gm_log_event(st == GM_OK ? GM_LOG_INFO : GM_LOG_ERROR, "update_end",
                 json_pack("{s:s, s:b, s:s?}", "to_version", out.to_version, "rolled_back",
                           out.rolled_back, "error", st == GM_OK ? NULL : s->err.message));
    if (st == GM_OK)
        print_result(s->cli, s->dep, diff, &out, false, s->t0);
    return gm_cli_session_close(s, st, GM_EXIT_OK);
}

static int cmd_update(gm_cli *cli, const gm_args *args)
{
    const char *name = args->pos[0];
    update_args u;
    memset(&u, 0, sizeof u);
    gm_error err = {0};
    gm_status st = gm_engine_check_name(name, &err);
    if (st != GM_OK)
        return gm_cli_fail(cli, st, &err);
    int rc = parse(cli, args, &u);
    if (rc != -1) {
        update_args_release(&u);
        return rc;
    }
    gm_cli_session s = {0};
    json_t *diff = NULL;
    st = gm_cli_session_open(cli, name, &s);
    if (st == GM_OK && !(diff = gm_engine_update_diff(s.dep, &u.req, NULL, &s.err)))
        st = s.err.status ? s.err.status : GM_ERR_INVALID;
    if (st != GM_OK) {
        rc = gm_cli_session_close(&s, st, GM_EXIT_FAILED);
    } else if (u.req.dry_run || !json_object_size(diff)) {
        gm_update_outcome none;
        memset(&none, 0, sizeof none);
        print_result(cli, s.dep, diff, &none, u.req.dry_run, s.t0);
        rc = gm_cli_session_close(&s, GM_OK, GM_EXIT_OK);
    } else if ((rc = approved(cli, &u, s.dep, diff)) != -1) {
        rc = gm_cli_session_close(&s, GM_OK, rc);
    } else {
        rc = run_update(&s, &u, diff);
    }
    json_decref(diff);
    update_args_release(&u);
    return rc;
}
