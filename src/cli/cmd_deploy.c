/* geusemaker deploy: create (or resume) a deployment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/deploy_options.h"
#include "cli/deploy_prompt.h"
#include "cli/deployment.h"
#include "core/log.h"
#include "core/str.h"
#include "core/timeutil.h"

static int cmd_deploy(gm_cli *cli, const gm_args *args);

enum { OPT_RESUME = 1, OPT_NO_ROLLBACK, OPT_NO_WAIT, OPT_TIMEOUT, OPT_HEALTH_TIMEOUT, OPT_YES };

static const gm_opt run_opts[] = {
    {.name = "resume",
     .arg = "NAME",
     .help = "continue an interrupted or failed deploy",
     .id = OPT_RESUME},
    {.name = "no-rollback",
     .help = "on failure keep what was created (destroy removes it)",
     .id = OPT_NO_ROLLBACK},
    {.name = "no-wait",
     .help = "do not wait for the instance to run or the stack to be healthy",
     .id = OPT_NO_WAIT},
    {.name = "timeout",
     .arg = "S",
     .help = "the whole deploy's deadline in seconds",
     .dflt = "1800",
     .id = OPT_TIMEOUT},
    {.name = "health-timeout",
     .arg = "S",
     .help = "how long to wait for every service to be healthy",
     .dflt = "900",
     .id = OPT_HEALTH_TIMEOUT},
    {.name = "yes",
     .short_name = 'y',
     .help = "do not ask for confirmation: needed without a terminal, and for --allow-cidr "
             "0.0.0.0/0",
     .id = OPT_YES},
};

static const gm_optgroup run_group = GM_OPTGROUP("how to run", run_opts);

const gm_command gm_command_deploy = {
    .name = "deploy",
    .summary = "deploy the AI stack (n8n, Ollama, Qdrant, Crawl4AI, PostgreSQL) on AWS",
    .synopsis = "deploy --name NAME [deployment options] [--no-rollback] [--no-wait] [--yes]\n"
                "       geusemaker deploy --resume NAME",
    .notes = "On a terminal, deploy shows what it will create and what it costs and asks\n"
             "before creating anything (--yes skips the question; without a terminal --yes\n"
             "is required). Without --name on a terminal it asks a few questions first.\n"
             "Reused resources are checked first and never deleted. Everything is journalled\n"
             "before it is created: after a crash, 'deploy --resume NAME' continues (what was\n"
             "confirmed: it does not ask again) and 'destroy NAME' removes what exists.",
    .groups = {&gm_cli_deploy_group, &gm_cli_alb_group, &run_group},
    .run = cmd_deploy,
};

/* Everything one deploy holds; released by finish(). */
typedef struct deploy_run {
    gm_cli *cli;
    gm_cli_deploy d;
    const char *resume;
    gm_engine_settings settings;
    int64_t t0;
    gm_store *store;
    gm_lock *lock;
    gm_aws_client *aws, *pricing;
    gm_deployment *dep;
    char detected[64];
    bool yes;             /* --yes: do not ask */
    gm_cli_wizard wizard; /* the interactive setup's answers (the config points here) */
    gm_error err;
} deploy_run;

static int seconds_option(gm_cli *cli, const gm_args *args, int id, const char *name,
                          int64_t *out_ms)
{
    const char *v = gm_args_value(args, id);
    if (!v)
        return -1;
    int64_t s = 0;
    if (!gm_str_to_int64(v, 1, 24 * 3600, &s))
        return gm_cli_usage_error(
            cli, "invalid --%s '%s': expected a whole number of seconds from 1 to 86400", name, v);
    *out_ms = s * 1000;
    return -1;
}

/* Parses and checks everything that needs no AWS call. */
static int parse(deploy_run *r, const gm_args *args)
{
    gm_cli *cli = r->cli;
    int rc = gm_cli_deploy_from_args(cli, args, &r->d);
    gm_deploy_config *cfg = &r->d.cfg;
    r->resume = gm_args_value(args, OPT_RESUME);
    r->yes = gm_args_has(args, OPT_YES);
    if (rc < 0 && !r->resume && !cfg->name && cli->output == GM_OUTPUT_TEXT && gm_cli_can_ask())
        rc = gm_cli_deploy_wizard(cli, &r->d, &r->settings, &r->wizard);
    cfg->no_rollback = gm_args_has(args, OPT_NO_ROLLBACK);
    cfg->no_wait = gm_args_has(args, OPT_NO_WAIT);
    if (rc < 0)
        rc = seconds_option(cli, args, OPT_TIMEOUT, "timeout", &cfg->timeout_ms);
    if (rc < 0)
        rc = seconds_option(cli, args, OPT_HEALTH_TIMEOUT, "health-timeout",
                            &cfg->health_timeout_ms);
    if (rc < 0 && !r->resume)
        rc = gm_cli_deploy_check(cli, &r->d);
    if (rc < 0 && !r->resume)
        rc = gm_cli_deploy_check_ingress(cli, cfg, true, r->yes);
    if (rc < 0 && !r->resume)
        gm_cli_deploy_warn_plain_http(cfg);
    if (rc < 0 && !r->resume && !r->yes && !gm_cli_can_ask())
        rc = gm_cli_usage_error(cli, "deploy creates resources that cost money: pass --yes to "
                                     "confirm (there is no terminal to ask on; 'geusemaker plan' "
                                     "shows what it would create)");
    if (rc >= 0 || !r->resume)
        return rc;
    const gm_arg *name = gm_args_find(args, "name");
    if (cfg->name && name && !name->from && strcmp(cfg->name, r->resume) != 0)
        return gm_cli_usage_error(cli, "--resume NAME and --name disagree");
    if (r->d.saw_config)
        return gm_cli_usage_error(cli, "--resume continues with the saved configuration: "
                                       "give no other deployment options");
    cfg->name = r->resume;
    gm_error err = {0};
    gm_status st = gm_engine_check_name(r->resume, &err);
    return st == GM_OK ? -1 : gm_cli_fail(cli, st, &err);
}

/* Loads the record to resume, with its saved configuration. */
static GM_MUST_CHECK gm_status load_resume(deploy_run *r)
{
    gm_deploy_config *cfg = &r->d.cfg;
    gm_status st = gm_cli_load_record(r->store, cfg->name, &r->dep, &r->err);
    if (st == GM_OK && r->dep->status == GM_DEP_DESTROYED)
        st = gm_error_set(&r->err, GM_ERR_CONFLICT, "deployment '%s' was destroyed: deploy it anew",
                          cfg->name);
    if (st != GM_OK)
        return st;
    bool no_wait = cfg->no_wait, no_rb = cfg->no_rollback;
    int64_t timeout = cfg->timeout_ms, health = cfg->health_timeout_ms;
    st = gm_engine_config_from_record(r->dep, cfg, &r->err);
    cfg->no_wait = no_wait;
    cfg->no_rollback = cfg->no_rollback || no_rb;
    if (timeout)
        cfg->timeout_ms = timeout;
    if (health)
        cfg->health_timeout_ms = health;
    if (st == GM_OK && !r->cli->region)
        r->cli->region = r->dep->region;
    return st;
}

static GM_MUST_CHECK gm_status refuse_existing(deploy_run *r)
{
    const char *name = r->d.cfg.name;
    gm_deployment *old = NULL;
    gm_status st = gm_store_load(r->store, name, &old, &r->err);
    if (st == GM_OK)
        st = gm_error_set(&r->err, GM_ERR_CONFLICT,
                          "deployment '%s' already exists (status %s): use 'geusemaker deploy "
                          "--resume %s' to continue it or 'geusemaker destroy %s' to remove it",
                          name, gm_dep_status_name(old->status), name, name);
    gm_deployment_free(old);
    return st;
}

/* One name per account and region: resources of another deployment of this
 * name (another state folder, a lost record) refuse the deploy before
 * anything is made. */
static GM_MUST_CHECK gm_status check_name_free(deploy_run *r)
{
    gm_engine_options eo = {.aws = r->aws, .pricing = r->pricing, .settings = r->settings};
    return gm_engine_check_name_free(&eo, r->d.cfg.name, r->dep->deployment_id, &r->err);
}

/* The checks of a new deployment that need AWS, then its first record. */
static GM_MUST_CHECK gm_status prepare_new(deploy_run *r)
{
    gm_deploy_config *cfg = &r->d.cfg;
    gm_status st = GM_OK;
    if (cfg->n_cidrs == 0) {
        st = gm_engine_detect_cidr(r->aws, r->settings.ip_endpoint, r->detected, sizeof r->detected,
                                   &r->err);
        if (st != GM_OK)
            return st;
        cfg->cidrs[cfg->n_cidrs++] = r->detected;
    }
    char reused_azs[2][64] = {"", ""};
    st = gm_cli_deploy_resolve_image(r->aws, &r->d, &r->err);
    if (st == GM_OK)
        st = gm_engine_check_reused(r->aws, cfg, reused_azs, &r->err);
    if (st == GM_OK && cfg->budget_monthly > 0) {
        json_t *est = NULL;
        st = gm_engine_budget_check(r->aws, r->pricing, cfg, &est, &r->err);
        json_decref(est);
        if (st == GM_ERR_INVALID)
            fprintf(stderr, "nothing was created; --force deploys anyway\n");
    }
    if (st == GM_OK && !r->yes) /* on a terminal: what it costs, then the question */
        st = gm_cli_deploy_confirm(r->aws, r->pricing, cfg, &r->err);
    if (st == GM_OK)
        st = gm_engine_record_new(cfg, gm_aws_client_region(r->aws), reused_azs, &r->dep, &r->err);
    if (st == GM_OK)
        st = check_name_free(r);
    if (st == GM_OK)
        st = gm_store_save(r->store, r->dep, &r->err);
    return st;
}

/* Says how the deploy ended; archives a record that was rolled back. */
static int report(deploy_run *r, gm_status st, const gm_deploy_outcome *outcome)
{
    const char *name = r->d.cfg.name;
    if (st == GM_OK) {
        gm_cli_print_deployment(r->cli, r->dep, NULL, gm_now_ms() - r->t0);
        return GM_EXIT_OK;
    }
    if (outcome->rolled_back) {
        /* Rolled back completely: nothing remains, so the record goes to the
         * archive. */
        char *archived = NULL;
        gm_error aerr = {0};
        if (gm_store_archive(r->store, name, &archived, &aerr) != GM_OK)
            fprintf(stderr, "warning: the record could not be archived: %s\n", aerr.message);
        fprintf(stderr, "rolled back: nothing of '%s' remains (record: %s)\n", name,
                archived ? archived : "kept");
        free(archived);
    } else if (outcome->partial) {
        gm_cli_print_deployment(r->cli, r->dep, NULL, gm_now_ms() - r->t0);
        fprintf(stderr,
                "the EC2 side of '%s' is up and recorded as partially deployed; only the "
                "load balancer's resources were removed. Retry the load balancer with "
                "'geusemaker deploy --resume %s'\n",
                name, name);
    } else {
        fprintf(stderr,
                "the deployment is recorded as '%s'; continue with 'geusemaker deploy "
                "--resume %s' or remove it with 'geusemaker destroy %s'\n",
                gm_dep_status_name(r->dep->status), name, name);
    }
    int rc = gm_cli_fail(r->cli, st, &r->err);
    /* Stopped by a signal: the exit code says which, whatever error the
     * stop surfaced as. */
    return outcome->interrupted ? gm_cli_interrupt_exit_code() : rc;
}

/* Runs the engine over the saved record, with the progress display. */
static int run_engine(deploy_run *r)
{
    const gm_deploy_config *cfg = &r->d.cfg;
    gm_log_event(GM_LOG_INFO, "deploy_start",
                 json_pack("{s:s, s:b, s:s, s:s}", "name", cfg->name, "resume", r->resume != NULL,
                           "tier", gm_tier_name(cfg->tier), "instance_type", cfg->instance_type));
    char title[128];
    snprintf(title, sizeof title, "%s \"%s\" in %s", r->resume ? "Resuming" : "Deploying",
             cfg->name, gm_aws_client_region(r->aws));
    gm_progress *progress = gm_progress_new(&r->cli->term, gm_cli_show_progress(r->cli), title);
    gm_engine_options eo = {.aws = r->aws,
                            .pricing = r->pricing,
                            .store = r->store,
                            .observer = gm_cli_progress_observer,
                            .observer_ctx = progress,
                            .interrupt = &gm_cli_interrupted,
                            .settings = r->settings};
    gm_deploy_outcome outcome;
    gm_status st = gm_engine_deploy(&eo, cfg, r->dep, r->resume != NULL, &outcome, &r->err);
    gm_progress_free(progress);
    int rc = report(r, st, &outcome);
    gm_log_event(st == GM_OK ? GM_LOG_INFO : GM_LOG_ERROR, "deploy_end",
                 json_pack("{s:s, s:I, s:s?}", "status", gm_dep_status_name(r->dep->status),
                           "duration_ms", (json_int_t)(gm_now_ms() - r->t0), "error",
                           st == GM_OK ? NULL : r->err.message));
    return rc;
}

static int finish(deploy_run *r, int rc)
{
    gm_deployment_free(r->dep);
    gm_aws_client_free(r->aws);
    gm_aws_client_free(r->pricing);
    gm_lock_release(r->lock);
    gm_store_free(r->store);
    gm_log_close();
    gm_cli_deploy_release(&r->d);
    return rc;
}

static int cmd_deploy(gm_cli *cli, const gm_args *args)
{
    deploy_run r = {.cli = cli};
    gm_status st = gm_cli_engine_settings(&r.settings, &r.err);
    if (st != GM_OK)
        return gm_cli_fail(cli, st, &r.err);
    int rc = parse(&r, args);
    if (rc >= 0) {
        gm_cli_deploy_release(&r.d);
        return rc;
    }
    r.t0 = gm_now_ms();
    /* From here on a signal stops the deploy at a safe point (the engine
     * checks the flag), with the record saved. */
    gm_cli_install_interrupt_handlers();
    st = gm_cli_open_locked(cli, r.d.cfg.name, &r.store, &r.lock, &r.err);
    if (st == GM_OK && r.resume)
        st = load_resume(&r);
    else if (st == GM_OK && gm_store_exists(r.store, r.d.cfg.name))
        st = refuse_existing(&r);
    if (st == GM_OK)
        st = gm_cli_aws_client(cli, &r.aws, &r.err);
    if (st == GM_OK && !r.resume)
        st = gm_engine_check_config_region(&r.d.cfg, gm_aws_client_region(r.aws), &r.err);
    if (st == GM_OK && gm_cli_interrupted)
        st = gm_error_set(&r.err, GM_ERR_INTERRUPTED, "interrupted: nothing was created");
    if (st == GM_OK) {
        r.pricing = gm_cli_pricing_client(cli);
        st = r.resume ? check_name_free(&r) : prepare_new(&r);
    }
    if (st != GM_OK)
        return finish(&r, gm_cli_fail(cli, st, &r.err));
    return finish(&r, run_engine(&r));
}
