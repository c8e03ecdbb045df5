/* geusemaker health: the stack's health document, read live. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/deployment.h"
#include "health/health.h"

static int cmd_health(gm_cli *cli, const gm_args *args);

const gm_command gm_command_health = {
    .name = "health",
    .summary = "read a deployment's health document: each service's state and the verdict",
    .synopsis = "health NAME [--output text|json]",
    .min_pos = 1,
    .max_pos = 1,
    .pos_what = "one deployment name",
    .notes = "Probes http://<instance>/geusemaker/health.json. While AWS is a local emulator the\n"
             "instance is never probed: GEUSEMAKER_HEALTH_ENDPOINT is, when set.\n"
             "The instance's boot budget (each UserData step's seconds, skipped steps on a\n"
             "baked image) follows the services; see docs/BOOT.md.\n"
             "Exit code 0 when healthy, 1 otherwise.",
    .run = cmd_health,
};

/* The instance's own boot budget: its milestones, then one line per step. */
static void print_boot(const gm_health_boot *b)
{
    if (!b->present) {
        if (*b->error)
            printf("Boot:        not shown (%s)\n", b->error);
        return;
    }
    printf("Boot:        started %s%s\n", b->started,
           b->baked ? " on a baked image" : " on a stock image");
    long ready = gm_health_boot_after(b, b->ready_epoch);
    long done = gm_health_boot_after(b, b->finished_epoch);
    long models = gm_health_boot_after(b, b->models_ready_epoch);
    if (ready >= 0)
        printf("  PostgreSQL and n8n first healthy after %ld s\n", ready);
    if (done >= 0)
        printf("  UserData finished after %ld s\n", done);
    else
        printf("  UserData still running (or stopped: see userdata.log)\n");
    if (models >= 0)
        printf("  models ready after %ld s\n", models);
    long total = 0;
    for (size_t i = 0; i < b->n_steps; i++) {
        const gm_health_boot_step *s = &b->steps[i];
        total += s->seconds;
        printf("  %-10s %6ld s%s\n", s->name, s->seconds,
               s->skipped ? "  skipped: already there" : "");
    }
    if (b->n_steps)
        printf("  %-10s %6ld s\n", "steps", total);
}

static int cmd_health(gm_cli *cli, const gm_args *args)
{
    const char *name = args->pos[0];
    gm_error err = {0};
    gm_store *store = NULL;
    gm_deployment *dep = NULL;
    gm_aws_client *aws = NULL;
    char *url = NULL;
    int rc = GM_EXIT_FAILED;
    gm_status st = gm_cli_open_deployment(cli, name, &store, &dep, &aws, &err);
    bool skip = false;
    gm_engine_settings settings;
    if (st == GM_OK)
        st = gm_cli_engine_settings(&settings, &err);
    if (st == GM_OK)
        st = gm_engine_health_url(aws, dep, settings.health_endpoint, &skip, &url, &err);
    if (st == GM_OK && skip) {
        fprintf(stderr,
                "not probed: AWS is a local emulator (its instance addresses are not "
                "real); set %s to probe a health endpoint\n",
                GM_HEALTH_ENDPOINT_ENV);
        if (cli->output == GM_OUTPUT_JSON)
            printf("{\"name\": \"%s\", \"verdict\": \"skipped\"}\n", name);
        rc = GM_EXIT_OK;
        goto done;
    }
    gm_health_doc doc;
    memset(&doc, 0, sizeof doc);
    if (st == GM_OK)
        st = gm_health_fetch(gm_aws_client_transport(aws), url, GM_HEALTH_REQUEST_TIMEOUT_MS, &doc,
                             &err);
    if (st != GM_OK)
        goto done;
    gm_health_apply_age(&doc, time(NULL), GM_HEALTH_STALE_S);
    if (cli->output == GM_OUTPUT_JSON) {
        json_t *o = gm_health_doc_to_json(&doc);
        json_object_set_new(o, "url", json_string(url));
        gm_cli_print_json(o);
    } else {
        printf("Deployment:  %s\n", name);
        printf("Verdict:     %s", gm_health_state_name(doc.verdict));
        if (*doc.reason)
            printf(" (%s)", doc.reason);
        printf("\n");
        printf("Checked at:  %s%s\n", doc.checked_at, doc.stale ? " (stale)" : "");
        for (size_t i = 0; i < doc.n_services; i++)
            printf("  %-10s %-10s %s%s\n", doc.services[i].name,
                   gm_health_state_name(doc.services[i].state), doc.services[i].detail,
                   doc.services[i].critical ? "" : " (optional)");
        print_boot(&doc.boot);
    }
    rc = doc.verdict == GM_HEALTH_HEALTHY ? GM_EXIT_OK : GM_EXIT_FAILED;
done:
    if (st != GM_OK)
        rc = gm_cli_fail(cli, st, &err);
    free(url);
    gm_deployment_free(dep);
    gm_aws_client_free(aws);
    gm_store_free(store);
    return rc;
}
