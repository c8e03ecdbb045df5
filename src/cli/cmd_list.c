/* geusemaker list: every deployment of this machine's state home, with its
 * instance's live state (one DescribeInstances per region: engine/liveness.h)
 * unless --offline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/deployment.h"
#include "core/timeutil.h"
#include "engine/liveness.h"

static int cmd_list(gm_cli *cli, const gm_args *args);

enum { OPT_OFFLINE = 1 };

static const gm_opt list_opts[] = {
    {.name = "offline",
     .help = "the records only: no AWS call, the live state not checked",
     .id = OPT_OFFLINE},
};

static const gm_optgroup list_group = GM_OPTGROUP(NULL, list_opts);

const gm_command gm_command_list = {
    .name = "list",
    .summary = "list deployments: tier, region, status, live state, type, age and cost per hour",
    .synopsis = "list [--region R] [--offline] [--output text|json]",
    .notes = "With --region, only the deployments in that region. The live state of each\n"
             "instance is read with one DescribeInstances per region (a short timeout, one\n"
             "attempt): a deployment whose instance is not running is 'degraded'. When AWS\n"
             "cannot be reached or the credentials are missing, the records are listed with\n"
             "the live state unknown (a note on stderr; \"health\": \"unknown\" in JSON).\n"
             "--offline reads the records only. It lists the records of this state folder:\n"
             "'geusemaker cleanup --dry-run' shows what the cloud holds that no record here\n"
             "knows.",
    .groups = {&list_group},
    .local = true, /* the environment is checked only for the live look */
    .run = cmd_list,
};

static void format_age(int64_t ms, char *out, size_t size)
{
    int64_t s = ms / 1000;
    if (s < 3600)
        snprintf(out, size, "%lldm", (long long)(s / 60));
    else if (s < 86400)
        snprintf(out, size, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else
        snprintf(out, size, "%lldd%02lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

/* The records of the state folder (in --region): deps[i] NULL for one that
 * could not be read, its row in bad[i]. */
typedef struct records {
    gm_deployment **deps;
    json_t **bad;
    size_t n;
} records;

static void records_release(records *r)
{
    for (size_t i = 0; i < r->n; i++) {
        gm_deployment_free(r->deps[i]);
        json_decref(r->bad[i]);
    }
    free(r->deps);
    free(r->bad);
}

/* The records through the store's list index: each reduced to what list
 * needs (gm_engine_list_record), parsed in full only when it changed. */
static GM_MUST_CHECK gm_status load_records(const gm_cli *cli, records *r, gm_error *err)
{
    memset(r, 0, sizeof *r);
    gm_store *store = NULL;
    gm_store_view *views = NULL;
    size_t n = 0;
    gm_status st = gm_store_open(NULL, &store, err);
    if (st == GM_OK)
        st = gm_store_list_views(store, GM_ENGINE_LIST_VERSION, gm_engine_list_record, &views, &n,
                                 err);
    gm_deployment **deps = st == GM_OK ? calloc(n ? n : 1, sizeof *deps) : NULL;
    json_t **bad = st == GM_OK ? calloc(n ? n : 1, sizeof *bad) : NULL;
    if (st == GM_OK && (!deps || !bad))
        st = GM_ERR_NOMEM;
    for (size_t i = 0; deps && bad && st == GM_OK && i < n; i++) {
        gm_deployment *d = views[i].dep;
        if (!d)
            bad[r->n++] =
                json_pack("{s:s, s:s, s:s}", "name", views[i].name, "status", "unreadable", "error",
                          views[i].error ? views[i].error : "unreadable");
        else if (!cli->region || strcmp(cli->region, d->region) == 0) {
            deps[r->n++] = d;
            views[i].dep = NULL;
        }
    }
    r->deps = deps;
    r->bad = bad;
    gm_store_views_free(views, n);
    gm_store_free(store);
    return st == GM_ERR_NOMEM ? gm_error_set(err, st, "out of memory") : st;
}

/* The live check's client: quick, in the deployment's region. */
static gm_status make_client(void *ctx, const char *region, gm_aws_client **out, gm_error *err)
{
    return gm_cli_aws_client_quick(ctx, region, out, err);
}

/* One record and its verdict as a JSON row. */
static json_t *row_of(const gm_deployment *d, const gm_live_verdict *v)
{
    gm_engine_summary sum;
    gm_engine_summary_of(d, &sum);
    json_t *row = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:I, s:O?}", "name", d->name,
        "tier", d->tier, "region", d->region, "status", gm_dep_status_name(d->status), "health",
        gm_live_health_name(v->health), "health_reason", *v->reason ? v->reason : NULL,
        "instance_id", *v->instance_id ? v->instance_id : sum.instance_id, "live_state",
        *v->instance_state ? v->instance_state : NULL, "instance_type", sum.instance_type, "market",
        sum.market, "age_s", (json_int_t)((gm_wall_ms() - d->created_at) / 1000), "cost_per_hour",
        json_object_get(d->cost, "hourly"));
    return row;
}

/* One note per region whose live state is unknown (not for --offline). */
static void print_unknown_notes(const records *r, const gm_live_verdict *v)
{
    for (size_t i = 0; i < r->n; i++) {
        if (!r->deps[i] || v[i].health != GM_LIVE_UNKNOWN)
            continue;
        bool said = false;
        for (size_t j = 0; j < i && !said; j++)
            said = r->deps[j] && v[j].health == GM_LIVE_UNKNOWN &&
                   strcmp(r->deps[j]->region, r->deps[i]->region) == 0;
        if (!said)
            fprintf(stderr, "note: %s: %s; showing what the records say\n", r->deps[i]->region,
                    v[i].reason);
    }
}

static const char *status_colour(int column, const char *cell)
{
    return column == 3 || column == 4 ? gm_term_state_sgr(cell) : NULL;
}

#define COLUMNS 9

/* The STATUS cell: degraded when the cloud says so, else the record's. */
static const char *status_cell(const json_t *o)
{
    const char *health = json_string_value(json_object_get(o, "health"));
    if (health && strcmp(health, "degraded") == 0)
        return health;
    return json_string_value(json_object_get(o, "status"));
}

/* The LIVE cell: the instance's state, "unknown" when the look failed, "-"
 * when none was made. */
static const char *live_cell(const json_t *o, bool offline)
{
    const char *live = json_string_value(json_object_get(o, "live_state"));
    const char *health = json_string_value(json_object_get(o, "health"));
    if (live)
        return live;
    return !offline && health && strcmp(health, "unknown") == 0 ? "unknown" : "-";
}

static void print_table(const gm_cli *cli, json_t *arr, bool offline)
{
    static const char *const header[COLUMNS] = {"NAME", "TIER",   "REGION", "STATUS", "LIVE",
                                                "TYPE", "MARKET", "AGE",    "COST/H"};
    size_t rows = json_array_size(arr);
    char(*text)[2][32] = calloc(rows ? rows : 1, sizeof *text);
    const char **cells = calloc(rows * COLUMNS + 1, sizeof *cells);
    if (!text || !cells) {
        free(text);
        free(cells);
        return;
    }
    size_t i;
    json_t *o;
    json_array_foreach (arr, i, o) {
        snprintf(text[i][0], sizeof text[i][0], "-");
        snprintf(text[i][1], sizeof text[i][1], "-");
        if (json_object_get(o, "age_s"))
            format_age(json_integer_value(json_object_get(o, "age_s")) * 1000, text[i][0],
                       sizeof text[i][0]);
        if (json_object_get(o, "cost_per_hour"))
            snprintf(text[i][1], sizeof text[i][1], "$%.4f",
                     json_number_value(json_object_get(o, "cost_per_hour")));
        static const char *const keys[] = {"name", "tier",          "region", NULL,
                                           NULL,   "instance_type", "market"};
        for (int c = 0; c < 7; c++) {
            const char *v = keys[c] ? json_string_value(json_object_get(o, keys[c])) : NULL;
            cells[i * COLUMNS + (size_t)c] = v ? v : "-";
        }
        const char *status = status_cell(o);
        cells[i * COLUMNS + 3] = status ? status : "-";
        cells[i * COLUMNS + 4] = live_cell(o, offline);
        cells[i * COLUMNS + 7] = text[i][0];
        cells[i * COLUMNS + 8] = text[i][1];
    }
    gm_term out;
    gm_term_init(&out, stdout, cli->no_color);
    gm_table_print(&out, header, COLUMNS, cells, (int)rows, status_colour);
    free(cells);
    free(text);
}

/* The verdicts of the records (v: one per record): live, or from the records
 * alone. */
static GM_MUST_CHECK gm_status judge(gm_cli *cli, const records *r, bool offline,
                                     gm_live_verdict *v, gm_error *err)
{
    size_t n = 0;
    const gm_deployment **deps = calloc(r->n ? r->n : 1, sizeof *deps);
    gm_live_verdict *dv = calloc(r->n ? r->n : 1, sizeof *dv);
    if (!deps || !dv) {
        free(deps);
        free(dv);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < r->n; i++)
        if (r->deps[i])
            deps[n++] = r->deps[i];
    gm_status st = GM_OK;
    if (offline)
        for (size_t i = 0; i < n; i++)
            gm_engine_verdict_instance(deps[i], NULL, "not checked (--offline)", &dv[i]);
    else
        st = gm_engine_check_live(deps, n, make_client, cli, dv, err);
    for (size_t i = 0, k = 0; st == GM_OK && i < r->n; i++)
        if (r->deps[i])
            v[i] = dv[k++];
    free(dv);
    free(deps);
    return st;
}

/* The rows of the records with their verdicts (NULL when memory runs out). */
static json_t *rows_of(const records *r, const gm_live_verdict *v)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < r->n; i++)
        json_array_append_new(arr, r->deps[i] ? row_of(r->deps[i], &v[i]) : json_incref(r->bad[i]));
    return arr;
}

static int cmd_list(gm_cli *cli, const gm_args *args)
{
    bool offline = gm_args_has(args, OPT_OFFLINE);
    int rc = offline ? -1 : gm_cli_check_environment(cli);
    if (rc >= 0)
        return rc;
    gm_error err = {0};
    records r;
    gm_status st = load_records(cli, &r, &err);
    gm_live_verdict *v = calloc(r.n ? r.n : 1, sizeof *v);
    json_t *arr = NULL;
    if (st == GM_OK && !v)
        st = gm_error_set(&err, GM_ERR_NOMEM, "out of memory");
    if (st == GM_OK && v)
        st = judge(cli, &r, offline, v, &err);
    if (st == GM_OK && v) {
        arr = rows_of(&r, v);
        if (!offline)
            print_unknown_notes(&r, v);
    }
    records_release(&r);
    free(v);
    if (st != GM_OK || !arr) {
        json_decref(arr);
        return gm_cli_fail(cli, st != GM_OK ? st : GM_ERR_NOMEM, &err);
    }
    if (cli->output == GM_OUTPUT_JSON)
        gm_cli_print_json(json_incref(arr));
    else if (json_array_size(arr) == 0)
        printf("no deployments%s%s\n", cli->region ? " in " : "", cli->region ? cli->region : "");
    else
        print_table(cli, arr, offline);
    json_decref(arr);
    return GM_EXIT_OK;
}
