/* The questions deploy asks on a terminal (cli/deploy_prompt.h). */
#include "cli/deploy_prompt.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/partition.h"
#include "cli/config.h"
#include "core/str.h"
#include "engine/plan.h"

#define WIZARD_TRIES 5
#define WIZARD_CHOICES 6

bool gm_cli_can_ask(void)
{
    return isatty(STDIN_FILENO) && isatty(STDERR_FILENO);
}

/* One answer (trimmed) after prompt; false at the end of input. */
static bool ask(const char *prompt, char *out, size_t size)
{
    fprintf(stderr, "%s", prompt);
    fflush(stderr);
    if (!fgets(out, (int)size, stdin))
        return false;
    char *t = gm_str_trim(out);
    memmove(out, t, strlen(t) + 1);
    return true;
}

static bool yes_answer(const char *a)
{
    return strcmp(a, "y") == 0 || strcmp(a, "Y") == 0 || strcmp(a, "yes") == 0;
}

/* ---- the confirmation ---------------------------------------------------------- */

/* "VPC, 2 subnets, ...": the steps that create something, by label. */
static void print_creates(const json_t *graph)
{
    size_t i;
    const json_t *n;
    fprintf(stderr, "  creates:\n");
    json_array_foreach (graph, i, n) {
        if (json_is_true(json_object_get(n, "creates")))
            fprintf(stderr, "    - %s\n", json_string_value(json_object_get(n, "step")));
    }
}

static void print_summary(const gm_deploy_config *cfg, const gm_engine_plan *p)
{
    fprintf(stderr, "\nDeploy \"%s\" in %s (tier %s):\n", cfg->name, p->market.region,
            gm_tier_name(cfg->tier));
    print_creates(p->graph);
    const gm_cost_ranking *rk = &p->ranking;
    if (rk->n_viable) {
        const gm_cost_candidate *c = &rk->viable[0];
        fprintf(stderr, "  instance: %s, %s in %s at $%.4f/hour", c->type,
                gm_market_name(c->market), c->az, c->hourly);
        if (rk->n_viable > 1)
            fprintf(stderr, " (then %zu fallbacks if capacity runs out)", rk->n_viable - 1);
        fprintf(stderr, "\n");
    }
    fprintf(stderr, "  open to:  ");
    for (int k = 0; k < cfg->n_cidrs; k++)
        fprintf(stderr, "%s%s", cfg->cidrs[k], k + 1 < cfg->n_cidrs ? ", " : "");
    fprintf(stderr, " on ports 80 and 443\n");
    if (p->estimate)
        fprintf(stderr, "  cost:     about $%.4f/hour, $%.2f/month while it runs (estimate)\n",
                json_number_value(json_object_get(p->estimate, "hourly")),
                json_number_value(json_object_get(p->estimate, "monthly")));
}

gm_status gm_cli_deploy_confirm(gm_aws_client *aws, gm_aws_client *pricing,
                                const gm_deploy_config *cfg, gm_error *err)
{
    gm_engine_plan plan;
    memset(&plan, 0, sizeof plan);
    gm_status st = gm_engine_plan_make(aws, pricing, cfg, &plan, err);
    if (st != GM_OK) {
        gm_engine_plan_release(&plan);
        return st;
    }
    print_summary(cfg, &plan);
    bool viable = plan.ranking.n_viable > 0;
    gm_engine_plan_release(&plan);
    if (!viable)
        fprintf(stderr, "  (no usable instance candidate: the deploy will fail and roll back)\n");
    char answer[16] = "";
    if (!ask("\nCreate these resources? Only 'y' goes on [y/N]: ", answer, sizeof answer) ||
        !yes_answer(answer))
        return gm_error_set(err, GM_ERR_INVALID, "not confirmed: nothing was created");
    return GM_OK;
}

/* ---- the interactive setup -------------------------------------------------------- */

/* Asks until check accepts the answer (or dflt on an empty one). */
static bool ask_checked(const char *prompt, const char *dflt, char *out, size_t size,
                        gm_status (*check)(const char *, gm_error *))
{
    for (int i = 0; i < WIZARD_TRIES; i++) {
        char line[256], full[320];
        snprintf(full, sizeof full, dflt && *dflt ? "%s [%s]: " : "%s: ", prompt, dflt);
        if (!ask(full, line, sizeof line))
            return false;
        const char *v = *line ? line : dflt ? dflt : "";
        gm_error err = {0};
        size_t len = strlen(v);
        if (len >= size)
            snprintf(err.message, sizeof err.message, "too long: at most %zu characters", size - 1);
        else if (*v && (!check || check(v, &err) == GM_OK)) {
            memcpy(out, v, len + 1);
            return true;
        }
        fprintf(stderr, "  %s\n", *v ? err.message : "an answer is needed");
    }
    return false;
}

static gm_status check_region(const char *r, gm_error *err)
{
    return gm_region_check(r, "the answer", err);
}

static gm_status check_cidr(const char *c, gm_error *err)
{
    return gm_engine_parse_cidr(c, NULL, err);
}

static bool ask_tier(gm_deploy_config *cfg)
{
    for (int i = 0; i < WIZARD_TRIES; i++) {
        char a[32];
        if (!ask("Tier: 1) dev  2) automation (adds a load balancer)  3) gpu [1]: ", a, sizeof a))
            return false;
        if (!*a || strcmp(a, "1") == 0 || gm_tier_parse(a, &cfg->tier)) {
            cfg->tier = *a && strcmp(a, "1") != 0 ? cfg->tier : GM_TIER_DEV;
            return true;
        }
        if (strcmp(a, "2") == 0 || strcmp(a, "3") == 0) {
            cfg->tier = a[0] == '2' ? GM_TIER_AUTOMATION : GM_TIER_GPU;
            return true;
        }
        fprintf(stderr, "  answer 1, 2 or 3\n");
    }
    return false;
}

/* The tier's candidates with live prices; the answer is a number or a type. */
static bool ask_type(gm_cli *cli, gm_cli_deploy *d, gm_aws_client *aws, gm_aws_client *pricing,
                     gm_cli_wizard *w)
{
    gm_engine_plan plan;
    memset(&plan, 0, sizeof plan);
    gm_error err = {0};
    size_t n = 0;
    if (gm_cli_deploy_check(cli, d) < 0 &&
        gm_engine_plan_make(aws, pricing, &d->cfg, &plan, &err) == GM_OK) {
        fprintf(stderr, "Instance types for tier %s (live prices):\n", gm_tier_name(d->cfg.tier));
        for (; n < plan.ranking.n_viable && n < WIZARD_CHOICES; n++) {
            const gm_cost_candidate *c = &plan.ranking.viable[n];
            fprintf(stderr, "  %zu) %-14s %-9s %-12s $%.4f/hour\n", n + 1, c->type,
                    gm_market_name(c->market), c->az, c->hourly);
        }
    } else {
        fprintf(stderr, "  (prices unavailable: %s)\n", *err.message ? err.message : "no plan");
    }
    char a[64] = "";
    bool ok = ask(n ? "Instance type: a number above or a type name [1]: "
                    : "Instance type [the tier's default]: ",
                  a, sizeof a);
    int pick = ok && !*a && n ? 1 : atoi(a);
    if (ok && pick >= 1 && (size_t)pick <= n)
        snprintf(w->type, sizeof w->type, "%s", plan.ranking.viable[pick - 1].type);
    else if (ok && *a)
        snprintf(w->type, sizeof w->type, "%s", a);
    gm_engine_plan_release(&plan);
    d->cfg.instance_type = NULL; /* the check fills the tier's list again */
    d->cfg.n_types = 0;
    if (*w->type) {
        d->cfg.instance_type = w->type;
        d->cfg.n_types = 0;
        d->cfg.types_named = true;
    }
    return ok;
}

/* Offers to save the answers as ./geusemaker.yaml (never over a file). */
static void offer_save(const gm_deploy_config *cfg, const gm_cli_wizard *w)
{
    char a[16];
    if (!ask("Save these answers as ./geusemaker.yaml? [y/N]: ", a, sizeof a) || !yes_answer(a))
        return;
    int fd = open(gm_cli_project_config_path(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "  not saved: %s exists or cannot be written\n",
                gm_cli_project_config_path());
        return;
    }
    fprintf(f, "# written by 'geusemaker deploy' (see 'geusemaker config')\nname: %s\n", w->name);
    fprintf(f, "region: %s\ntier: %s\n", w->region, gm_tier_name(cfg->tier));
    if (*w->type)
        fprintf(f, "instance-type: %s\n", w->type);
    fprintf(f, "allow-cidr: [%s]\n", w->cidr);
    fprintf(stderr, fclose(f) == 0 ? "  saved %s\n" : "  could not write %s\n",
            gm_cli_project_config_path());
}

static int wizard_with_clients(gm_cli *cli, gm_cli_deploy *d, const gm_engine_settings *s,
                               gm_cli_wizard *w, gm_aws_client *aws)
{
    gm_aws_client *pricing = gm_cli_pricing_client(cli);
    int rc = ask_tier(&d->cfg) && ask_type(cli, d, aws, pricing, w) ? -1 : GM_EXIT_USAGE;
    gm_aws_client_free(pricing);
    char detected[64] = "";
    gm_error err = {0};
    if (rc < 0 &&
        gm_engine_detect_cidr(aws, s->ip_endpoint, detected, sizeof detected, &err) != GM_OK)
        fprintf(stderr, "  (your address could not be detected: %s)\n", err.message);
    if (rc < 0 && !ask_checked("Allow access from (an IPv4 range)", detected, w->cidr,
                               sizeof w->cidr, check_cidr))
        rc = GM_EXIT_USAGE;
    if (rc < 0) {
        d->cfg.cidrs[0] = w->cidr;
        d->cfg.n_cidrs = 1;
        offer_save(&d->cfg, w);
    }
    return rc;
}

int gm_cli_deploy_wizard(gm_cli *cli, gm_cli_deploy *d, const gm_engine_settings *s,
                         gm_cli_wizard *w)
{
    memset(w, 0, sizeof *w);
    fprintf(stderr, "No --name given: a few questions set up the deployment (Ctrl-D stops).\n");
    char *region = NULL;
    gm_error err = {0};
    if (gm_aws_resolve_region(gm_cli_region_flag(cli), cli->profile, &region, &err) != GM_OK)
        region = NULL;
    bool ok = ask_checked("Name (lowercase letters, digits, '-')", "demo", w->name, sizeof w->name,
                          gm_engine_check_name) &&
              ask_checked("Region", region, w->region, sizeof w->region, check_region);
    free(region);
    if (!ok) {
        fprintf(stderr, "setup stopped: nothing was created\n");
        return GM_EXIT_USAGE;
    }
    d->cfg.name = w->name;
    cli->region = w->region;
    gm_aws_client *aws = NULL;
    gm_status st = gm_cli_aws_client(cli, &aws, &err);
    if (st != GM_OK)
        return gm_cli_fail(cli, st, &err);
    int rc = wizard_with_clients(cli, d, s, w, aws);
    gm_aws_client_free(aws);
    if (rc >= 0)
        fprintf(stderr, "setup stopped: nothing was created\n");
    return rc;
}
