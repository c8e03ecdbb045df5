/* geusemaker list: every deployment of this machine's state home. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/deployment.h"
#include "core/timeutil.h"

static int cmd_list(gm_cli *cli, const gm_args *args);

const gm_command gm_command_list = {
    .name = "list",
    .summary = "list deployments with tier, region, status, instance, age and cost per hour",
    .synopsis = "list [--region R] [--output text|json]",
    .notes = "With --region, only the deployments in that region. Reads only the records\n"
             "of this state folder: 'geusemaker cleanup --dry-run' shows what the cloud\n"
             "holds that no record here knows.",
    .local = true,
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

/* One record as a JSON row (NULL when filtered out by --region). */
static json_t *row_of(const gm_cli *cli, gm_store *store, const char *name)
{
    gm_deployment *d = NULL;
    gm_error lerr = {0};
    if (gm_store_load(store, name, &d, &lerr) != GM_OK)
        return json_pack("{s:s, s:s, s:s}", "name", name, "status", "unreadable", "error",
                         lerr.message);
    json_t *row = NULL;
    if (!cli->region || strcmp(cli->region, d->region) == 0) {
        gm_engine_summary sum;
        gm_engine_summary_of(d, &sum);
        row = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:I, s:O?}", "name", d->name, "tier",
                        d->tier, "region", d->region, "status", gm_dep_status_name(d->status),
                        "instance_type", sum.instance_type, "market", sum.market, "age_s",
                        (json_int_t)((gm_wall_ms() - d->created_at) / 1000), "cost_per_hour",
                        json_object_get(d->cost, "hourly"));
    }
    gm_deployment_free(d);
    return row;
}

static const char *status_colour(int column, const char *cell)
{
    return column == 3 ? gm_term_state_sgr(cell) : NULL;
}

#define COLUMNS 8

static void print_table(const gm_cli *cli, json_t *arr)
{
    static const char *const header[COLUMNS] = {"NAME", "TIER",   "REGION", "STATUS",
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
        static const char *const keys[] = {"name",   "tier",          "region",
                                           "status", "instance_type", "market"};
        for (int c = 0; c < 6; c++) {
            const char *v = json_string_value(json_object_get(o, keys[c]));
            cells[i * COLUMNS + (size_t)c] = v ? v : "-";
        }
        cells[i * COLUMNS + 6] = text[i][0];
        cells[i * COLUMNS + 7] = text[i][1];
    }
    gm_term out;
    gm_term_init(&out, stdout, cli->no_color);
    gm_table_print(&out, header, COLUMNS, cells, (int)rows, status_colour);
    free(cells);
    free(text);
}

static int cmd_list(gm_cli *cli, const gm_args *args)
{
    (void)args;
    gm_error err = {0};
    gm_store *store = NULL;
    char **names = NULL;
    size_t n = 0;
    gm_status st = gm_store_open(NULL, &store, &err);
    if (st == GM_OK)
        st = gm_store_list(store, &names, &n, &err);
    if (st != GM_OK) {
        gm_store_free(store);
        return gm_cli_fail(cli, st, &err);
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *row = row_of(cli, store, names[i]);
        if (row)
            json_array_append_new(arr, row);
    }
    gm_store_list_free(names, n);
    gm_store_free(store);
    if (cli->output == GM_OUTPUT_JSON)
        gm_cli_print_json(json_incref(arr));
    else if (json_array_size(arr) == 0)
        printf("no deployments%s%s\n", cli->region ? " in " : "", cli->region ? cli->region : "");
    else
        print_table(cli, arr);
    json_decref(arr);
    return GM_EXIT_OK;
}
