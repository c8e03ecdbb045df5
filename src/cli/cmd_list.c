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
    .synopsis = "list [--output text|json]",
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
        gm_deployment *d = NULL;
        gm_error lerr = {0};
        if (gm_store_load(store, names[i], &d, &lerr) != GM_OK) {
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "name", names[i], "status",
                                                 "unreadable", "error", lerr.message));
            continue;
        }
        gm_engine_summary sum;
        gm_engine_summary_of(d, &sum);
        const char *type = sum.instance_type, *market = sum.market;
        json_t *hourly = json_object_get(d->cost, "hourly");
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:I, s:O?}", "name",
                                             d->name, "tier", d->tier, "region", d->region,
                                             "status", gm_dep_status_name(d->status),
                                             "instance_type", type, "market", market, "age_s",
                                             (json_int_t)((gm_wall_ms() - d->created_at) / 1000),
                                             "cost_per_hour", hourly));
        gm_deployment_free(d);
    }
    gm_store_list_free(names, n);
    gm_store_free(store);
    if (cli->output == GM_OUTPUT_JSON) {
        char *text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "[]");
        free(text);
    } else if (json_array_size(arr) == 0) {
        printf("no deployments\n");
    } else {
        printf("%-22s %-10s %-14s %-12s %-13s %-9s %-7s %s\n", "NAME", "TIER", "REGION", "STATUS",
               "TYPE", "MARKET", "AGE", "COST/H");
        size_t i;
        json_t *o;
        json_array_foreach (arr, i, o) {
            char age[32] = "-", cost[32] = "-";
            if (json_object_get(o, "age_s"))
                format_age(json_integer_value(json_object_get(o, "age_s")) * 1000, age, sizeof age);
            if (json_object_get(o, "cost_per_hour"))
                snprintf(cost, sizeof cost, "$%.4f",
                         json_number_value(json_object_get(o, "cost_per_hour")));
#define S(k) \
    (json_string_value(json_object_get(o, k)) ? json_string_value(json_object_get(o, k)) : "-")
            printf("%-22s %-10s %-14s %-12s %-13s %-9s %-7s %s\n", S("name"), S("tier"),
                   S("region"), S("status"), S("instance_type"), S("market"), age, cost);
#undef S
        }
    }
    json_decref(arr);
    return GM_EXIT_OK;
}
