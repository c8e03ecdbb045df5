/* geusemaker cost: the cost estimate recorded for a deployment, how long it
 * has run and what it has cost so far. Local only: no AWS call. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "cost/estimate.h"
#include "state/store.h"

static int cmd_cost(gm_cli *cli, const gm_args *args);

const gm_command gm_command_cost = {
    .name = "cost",
    .summary = "show a deployment's cost estimate, how long it has run and its cost so far",
    .synopsis = "cost NAME [--output text|json]",
    .min_pos = 1,
    .max_pos = 1,
    .pos_what = "one deployment name",
    .notes = "Reads the deployment record (no AWS call): the estimate made at deploy time\n"
             "(hourly, daily, monthly, each item with its source and assumptions), the time\n"
             "since the deployment was created (until now, or until it was destroyed) and\n"
             "the cost so far: that time multiplied by the estimate's hourly figure.\n"
             "Destroyed deployments are found in the archive.",
    .local = true,
    .run = cmd_cost,
};

/* "NAME-YYYYMMDDTHHMMSSZ.json" or "NAME-YYYYMMDDTHHMMSSZ-N.json": returns the
 * stamp's position and N (0 without), or false. */
static bool archive_match(const char *file, const char *name, const char **out_stamp, long *out_n)
{
    size_t nl = strlen(name);
    if (strncmp(file, name, nl) != 0 || file[nl] != '-')
        return false;
    const char *s = file + nl + 1;
    for (int i = 0; i < 16; i++) {
        bool ok = i == 8 ? s[i] == 'T' : i == 15 ? s[i] == 'Z' : (s[i] >= '0' && s[i] <= '9');
        if (!ok)
            return false;
    }
    const char *rest = s + 16;
    long n = 0;
    if (*rest == '-') {
        char *end = NULL;
        n = strtol(rest + 1, &end, 10);
        if (!end || end == rest + 1 || n <= 0)
            return false;
        rest = end;
    }
    if (strcmp(rest, ".json") != 0)
        return false;
    *out_stamp = s;
    *out_n = n;
    return true;
}

/* Loads the newest archived record of name (a destroyed deployment). */
static GM_MUST_CHECK gm_status load_archived(gm_store *store, const char *name, gm_deployment **out,
                                             gm_error *err)
{
    char *dir = gm_strfmt("%s/archive", gm_store_home(store));
    DIR *d = dir ? opendir(dir) : NULL;
    char best[512] = "";
    char best_stamp[17] = "";
    long best_n = -1;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *stamp;
        long n;
        if (!archive_match(e->d_name, name, &stamp, &n) || strlen(e->d_name) >= sizeof best)
            continue;
        int c = strncmp(stamp, best_stamp, 16);
        if (!*best || c > 0 || (c == 0 && n > best_n)) {
            snprintf(best, sizeof best, "%s", e->d_name);
            memcpy(best_stamp, stamp, 16);
            best_stamp[16] = '\0';
            best_n = n;
        }
    }
    if (d)
        closedir(d);
    if (!*best) {
        free(dir);
        return GM_ERR_NOT_FOUND;
    }
    char *path = gm_strfmt("%s/%s", dir, best);
    free(dir);
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_STATE_FILE);
    gm_status st =
        path ? gm_buf_read_file(&b, path, err) : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    json_t *j = NULL;
    if (st == GM_OK) {
        json_error_t jerr;
        j = json_loadb(gm_buf_cstr(&b), b.len, 0, &jerr);
        if (!j)
            st = gm_error_set(err, GM_ERR_PARSE, "archived record '%s' is corrupt: %s", path,
                              jerr.text);
    }
    if (st == GM_OK)
        st = gm_deployment_from_json(j, out, err);
    json_decref(j);
    gm_buf_release(&b);
    free(path);
    return st;
}

static void print_text(const gm_deployment *dep, bool archived, const json_t *e,
                       const json_t *usage)
{
    printf("Deployment:  %s (tier %s, region %s, status %s%s)\n", dep->name, dep->tier, dep->region,
           gm_dep_status_name(dep->status), archived ? ", archived" : "");
    const char *type = json_string_value(json_object_get(e, "instance_type"));
    const char *market = json_string_value(json_object_get(e, "market"));
    const char *az = json_string_value(json_object_get(e, "az"));
    printf("Estimate:    $%.4f/hour, $%.2f/day, $%.2f/month (USD, estimate",
           json_number_value(json_object_get(e, "hourly")),
           json_number_value(json_object_get(e, "daily")),
           json_number_value(json_object_get(e, "monthly")));
    if (type)
        printf("; %s%s%s%s%s", type, market ? " " : "", market ? market : "", az ? " in " : "",
               az ? az : "");
    printf(")\n");
    const char *k;
    json_t *v;
    json_object_foreach (json_object_get(e, "breakdown"), k, v) {
        const char *basis = json_string_value(json_object_get(v, "basis"));
        const char *src = json_string_value(json_object_get(v, "source"));
        printf("  %-18s $%9.2f/month  %s%s%s%s%s\n", k,
               json_number_value(json_object_get(v, "monthly")), basis ? basis : "",
               basis && src ? " " : "", src ? "[" : "", src ? src : "", src ? "]" : "");
    }
    const json_t *sv = json_object_get(e, "saving_vs_on_demand");
    if (json_is_object(sv))
        printf("  saving vs on-demand: $%.2f/month (%.1f%%)\n",
               json_number_value(json_object_get(sv, "monthly")),
               json_number_value(json_object_get(sv, "percent")));
    else if (json_is_number(json_object_get(e, "saving_vs_on_demand_monthly")))
        printf("  saving vs on-demand: $%.2f/month\n",
               json_number_value(json_object_get(e, "saving_vs_on_demand_monthly")));
    const json_t *a = json_object_get(e, "assumptions");
    if (json_is_object(a)) {
        printf("  assumptions:");
        const char *ak;
        json_t *av;
        bool first = true;
        json_object_foreach ((json_t *)a, ak, av) {
            if (json_is_number(av))
                printf("%s %s %g", first ? "" : ",", ak, json_number_value(av));
            else if (json_is_boolean(av))
                printf("%s %s %s", first ? "" : ",", ak, json_is_true(av) ? "yes" : "no");
            else
                continue;
            first = false;
        }
        printf("\n");
    }
    const char *note = json_string_value(json_object_get(e, "note"));
    if (note)
        printf("  note: %s\n", note);
    const char *src = json_string_value(json_object_get(e, "source"));
    if (src)
        printf("  source: %s\n", src);
    bool running = json_is_true(json_object_get(usage, "running"));
    printf("Running:     %s since %s (%.2f hours%s)\n", running ? "up" : "ran",
           json_string_value(json_object_get(usage, "started_at")),
           json_number_value(json_object_get(usage, "hours")), running ? ", until now" : "");
    if (!running)
        printf("Ended:       %s\n", json_string_value(json_object_get(usage, "until_time")));
    printf("Cost so far: $%.2f (%s)\n", json_number_value(json_object_get(usage, "cost_so_far")),
           json_string_value(json_object_get(usage, "basis")));
}

static int cmd_cost(gm_cli *cli, const gm_args *args)
{
    const char *name = args->pos[0];
    gm_error err = {0};
    gm_store *store = NULL;
    gm_deployment *dep = NULL;
    json_t *usage = NULL;
    bool archived = false;
    gm_status st = gm_store_check_name(name, &err);
    if (st == GM_OK)
        st = gm_store_open(NULL, &store, &err);
    if (st == GM_OK) {
        st = gm_store_load(store, name, &dep, &err);
        if (st == GM_ERR_NOT_FOUND) {
            gm_error aerr = {0};
            gm_status ast = load_archived(store, name, &dep, &aerr);
            if (ast == GM_OK) {
                archived = true;
                st = GM_OK;
            } else if (ast != GM_ERR_NOT_FOUND) {
                st = ast;
                err = aerr;
            }
        }
    }
    if (st == GM_ERR_NOT_FOUND) {
        /* No record and none archived: bad input, nothing was done. */
        err.status = GM_ERR_INVALID;
        st = GM_ERR_INVALID;
    }
    if (st == GM_OK && !json_is_number(json_object_get(dep->cost, "hourly")))
        st = gm_error_set(&err, GM_ERR_NOT_FOUND,
                          "deployment '%s' has no cost estimate in its record", name);
    if (st == GM_OK) {
        /* A destroyed (or archived) deployment stopped costing at its last
         * update; anything else may still run. */
        bool running = !archived && dep->status != GM_DEP_DESTROYED;
        int64_t end = running ? gm_wall_ms() : dep->updated_at;
        usage = gm_cost_so_far(dep->cost, dep->created_at, end, running);
        if (!usage)
            st = gm_error_set(&err, GM_ERR_NOMEM, "out of memory");
    }
    int rc = GM_EXIT_OK;
    if (st != GM_OK) {
        rc = gm_cli_fail(cli, st, &err);
    } else if (cli->output == GM_OUTPUT_JSON) {
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:s, s:b, s:O, s:O}", "name", dep->name, "tier", dep->tier,
                      "region", dep->region, "status", gm_dep_status_name(dep->status), "archived",
                      archived, "estimate", dep->cost, "usage", usage);
        if (!gm_cli_print_json(o))
            rc = gm_cli_fail(cli, GM_ERR_NOMEM, NULL);
    } else {
        print_text(dep, archived, dep->cost, usage);
    }
    json_decref(usage);
    gm_deployment_free(dep);
    gm_store_free(store);
    return rc;
}
