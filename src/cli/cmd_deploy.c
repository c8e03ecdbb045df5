/* geusemaker deploy: create (or resume) a deployment. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/deployment.h"
#include "core/log.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "cost/estimate.h"
#include "cost/rank.h"
#include "stack/stack.h"

static int cmd_deploy(gm_cli *cli, int argc, char **argv);

const gm_command gm_command_deploy = {
    .name = "deploy",
    .summary = "deploy the AI stack (n8n, Ollama, Qdrant, Crawl4AI, PostgreSQL) on AWS",
    .usage =
        "deploy --name NAME [--tier dev] [--instance-type T] [--spot | --on-demand]\n"
        "                  [--allow-cidr CIDR]... [--key-name K]\n"
        "                  [--vpc-id V --subnet-ids A,B] [--security-group-id S] [--efs-id F]\n"
        "                  [--no-rollback] [--no-wait] [--timeout S] [--health-timeout S] [--yes]\n"
        "       geusemaker deploy --resume NAME\n"
        "\n"
        "  --name NAME            deployment name: lowercase letters, digits, '-'\n"
        "  --tier TIER            dev (default), automation (adds a load balancer), gpu\n"
        "  --instance-type T      EC2 instance type (default per tier)\n"
        "  --instance-types A,B   candidate types, in preference order (default: the tier's)\n"
        "  --spot | --on-demand   market (default: spot when it saves 20 %, else on-demand)\n"
        "  --spot-only            never on-demand; --max-spot-price USD caps the spot price\n"
        "  --budget USD           refuse a plan estimated over USD a month (--force overrides)\n"
        "  --allow-cidr CIDR      who may reach the stack (repeatable); default: your\n"
        "                         public address/32 (GEUSEMAKER_IP_ENDPOINT overrides the\n"
        "                         address service)\n"
        "  --key-name K           EC2 key pair; opens SSH (22) to the allowed ranges\n"
        "  --vpc-id, --subnet-ids reuse a VPC and two of its subnets in different zones\n"
        "  --security-group-id S  reuse a security group of that VPC\n"
        "  --efs-id F             reuse an EFS file system\n"
        "  --no-rollback          on failure keep what was created (destroy removes it)\n"
        "  --no-wait              do not wait for the instance to run or the stack to be healthy\n"
        "  --health-timeout S     how long to wait for every service to be healthy (900)\n"
        "  --timeout S            the whole deploy's deadline (1800)\n"
        "  --resume NAME          continue an interrupted or failed deploy\n"
        "tier automation:\n"
        "  --certificate-arn ARN  HTTPS:443 on the load balancer, HTTP:80 redirecting to it\n"
        "  --alb-timeout S        wait for healthy targets (300)\n"
        "  --health-check-interval S, --health-check-timeout S (30, 5)\n"
        "  --healthy-threshold N, --unhealthy-threshold N (2, 3)\n"
        "Reused resources are checked first and never deleted.",
    .run = cmd_deploy,
};

enum {
    OPT_NAME = 1,
    OPT_TIER,
    OPT_TYPE,
    OPT_SPOT,
    OPT_ON_DEMAND,
    OPT_CIDR,
    OPT_KEY,
    OPT_VPC,
    OPT_SUBNETS,
    OPT_SG,
    OPT_EFS,
    OPT_NO_ROLLBACK,
    OPT_NO_WAIT,
    OPT_YES,
    OPT_RESUME,
    OPT_TIMEOUT,
    OPT_HEALTH_TIMEOUT,
    OPT_CERT,
    OPT_ALB_TIMEOUT,
    OPT_HC_INTERVAL,
    OPT_HC_TIMEOUT,
    OPT_HEALTHY,
    OPT_UNHEALTHY,
    OPT_TYPES,
    OPT_SPOT_ONLY,
    OPT_MAX_SPOT,
    OPT_BUDGET,
    OPT_FORCE,
};

/* Every candidate type passes the same checks as the first. */
static gm_status check_type_like_first(const gm_deploy_config *cfg, int i, gm_error *err)
{
    gm_deploy_config one = *cfg;
    one.instance_type = cfg->instance_types[i];
    return gm_engine_check_config(&one, err);
}

static void mark_reused(gm_deployment *dep, const char *node, const char *kind, const char *id)
{
    gm_node_state *n = gm_deployment_ensure_node(dep, node, kind);
    n->provenance = GM_PROV_REUSED;
    n->status = GM_NODE_CREATED;
    gm_node_set_id(n, id);
}

static json_t *config_json(const gm_deploy_config *cfg)
{
    json_t *cidrs = json_array();
    for (int i = 0; i < cfg->n_cidrs; i++)
        json_array_append_new(cidrs, json_string(cfg->cidrs[i]));
    json_t *types = json_array();
    for (int i = 0; i < cfg->n_types; i++)
        json_array_append_new(types, json_string(cfg->instance_types[i]));
    json_t *market =
        json_pack("{s:o, s:b, s:f, s:f, s:f}", "instance_types", types, "spot_only", cfg->spot_only,
                  "max_spot_price", cfg->max_spot_price, "min_spot_saving", cfg->min_spot_saving,
                  "budget_monthly", cfg->budget_monthly);
    json_t *alb =
        json_pack("{s:s?, s:I, s:i, s:i, s:i, s:i}", "certificate_arn", cfg->certificate_arn,
                  "alb_timeout_ms", (json_int_t)cfg->alb_timeout_ms, "hc_interval_s",
                  cfg->hc_interval_s, "hc_timeout_s", cfg->hc_timeout_s, "healthy_threshold",
                  cfg->healthy_threshold, "unhealthy_threshold", cfg->unhealthy_threshold);
    return json_pack(
        "{s:s, s:s, s:b, s:o, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:b, s:b, s:I, s:I, s:o, s:o}",
        "tier", cfg->tier, "instance_type", cfg->instance_type, "spot", cfg->spot, "allow_cidrs",
        cidrs, "key_name", cfg->key_name, "vpc_id", cfg->vpc_id, "subnet_a", cfg->subnet_ids[0],
        "subnet_b", cfg->subnet_ids[1], "security_group_id", cfg->security_group_id, "efs_id",
        cfg->efs_id, "no_rollback", cfg->no_rollback, "no_wait", cfg->no_wait, "timeout_ms",
        (json_int_t)cfg->timeout_ms, "health_timeout_ms", (json_int_t)cfg->health_timeout_ms,
        "load_balancer", alb, "market", market);
}

/* Fills cfg from a saved record (strings point into dep->config). */
static gm_status config_from_state(const gm_deployment *dep, gm_deploy_config *cfg, gm_error *err)
{
    json_t *c = dep->config;
    const char *type = json_string_value(json_object_get(c, "instance_type"));
    if (!type)
        return gm_error_set(err, GM_ERR_PARSE, "state of '%s' has no instance_type in its config",
                            dep->name);
    cfg->name = dep->name;
    cfg->tier = dep->tier;
    cfg->instance_type = type;
    cfg->spot = json_is_true(json_object_get(c, "spot"));
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(c, "allow_cidrs"), i, v) {
        if (cfg->n_cidrs < GM_MAX_CIDRS && json_string_value(v))
            cfg->cidrs[cfg->n_cidrs++] = json_string_value(v);
    }
    cfg->key_name = json_string_value(json_object_get(c, "key_name"));
    cfg->no_rollback = json_is_true(json_object_get(c, "no_rollback"));
    cfg->timeout_ms = json_integer_value(json_object_get(c, "timeout_ms"));
    cfg->health_timeout_ms = json_integer_value(json_object_get(c, "health_timeout_ms"));
    json_t *mk = json_object_get(c, "market");
    json_array_foreach (json_object_get(mk, "instance_types"), i, v) {
        if (cfg->n_types < 16 && json_string_value(v))
            cfg->instance_types[cfg->n_types++] = json_string_value(v);
    }
    cfg->spot_only = json_is_true(json_object_get(mk, "spot_only"));
    cfg->max_spot_price = json_number_value(json_object_get(mk, "max_spot_price"));
    cfg->min_spot_saving = json_number_value(json_object_get(mk, "min_spot_saving"));
    cfg->budget_monthly = json_number_value(json_object_get(mk, "budget_monthly"));
    json_t *alb = json_object_get(c, "load_balancer");
    cfg->certificate_arn = json_string_value(json_object_get(alb, "certificate_arn"));
    cfg->alb_timeout_ms = json_integer_value(json_object_get(alb, "alb_timeout_ms"));
    cfg->hc_interval_s = (int)json_integer_value(json_object_get(alb, "hc_interval_s"));
    cfg->hc_timeout_s = (int)json_integer_value(json_object_get(alb, "hc_timeout_s"));
    cfg->healthy_threshold = (int)json_integer_value(json_object_get(alb, "healthy_threshold"));
    cfg->unhealthy_threshold = (int)json_integer_value(json_object_get(alb, "unhealthy_threshold"));
    return GM_OK;
}

static int cmd_deploy(gm_cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        GM_CLI_GLOBAL_OPTIONS,
        {"name", required_argument, NULL, OPT_NAME},
        {"tier", required_argument, NULL, OPT_TIER},
        {"instance-type", required_argument, NULL, OPT_TYPE},
        {"spot", no_argument, NULL, OPT_SPOT},
        {"on-demand", no_argument, NULL, OPT_ON_DEMAND},
        {"allow-cidr", required_argument, NULL, OPT_CIDR},
        {"key-name", required_argument, NULL, OPT_KEY},
        {"vpc-id", required_argument, NULL, OPT_VPC},
        {"subnet-ids", required_argument, NULL, OPT_SUBNETS},
        {"security-group-id", required_argument, NULL, OPT_SG},
        {"efs-id", required_argument, NULL, OPT_EFS},
        {"no-rollback", no_argument, NULL, OPT_NO_ROLLBACK},
        {"no-wait", no_argument, NULL, OPT_NO_WAIT},
        {"yes", no_argument, NULL, OPT_YES},
        {"resume", required_argument, NULL, OPT_RESUME},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"health-timeout", required_argument, NULL, OPT_HEALTH_TIMEOUT},
        {"certificate-arn", required_argument, NULL, OPT_CERT},
        {"alb-timeout", required_argument, NULL, OPT_ALB_TIMEOUT},
        {"health-check-interval", required_argument, NULL, OPT_HC_INTERVAL},
        {"health-check-timeout", required_argument, NULL, OPT_HC_TIMEOUT},
        {"healthy-threshold", required_argument, NULL, OPT_HEALTHY},
        {"unhealthy-threshold", required_argument, NULL, OPT_UNHEALTHY},
        {"instance-types", required_argument, NULL, OPT_TYPES},
        {"spot-only", no_argument, NULL, OPT_SPOT_ONLY},
        {"max-spot-price", required_argument, NULL, OPT_MAX_SPOT},
        {"budget", required_argument, NULL, OPT_BUDGET},
        {"force", no_argument, NULL, OPT_FORCE},
        {0, 0, 0, 0},
    };
    gm_deploy_config cfg = {.tier = "dev", .spot = true};
    const char *resume = NULL;
    bool saw_spot = false, saw_od = false, saw_config = false;
    char subnets_buf[256] = "";
    char types_buf[512] = "";
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_NAME: cfg.name = optarg; break;
        case OPT_TIER:
            cfg.tier = optarg;
            saw_config = true;
            break;
        case OPT_TYPE:
            cfg.instance_type = optarg;
            saw_config = true;
            break;
        case OPT_SPOT:
            saw_spot = true;
            cfg.spot = true;
            break;
        case OPT_ON_DEMAND:
            saw_od = true;
            cfg.spot = false;
            break;
        case OPT_CIDR:
            if (cfg.n_cidrs == GM_MAX_CIDRS)
                return gm_cli_usage_error(cli, "at most %d --allow-cidr ranges", GM_MAX_CIDRS);
            cfg.cidrs[cfg.n_cidrs++] = optarg;
            saw_config = true;
            break;
        case OPT_KEY:
            cfg.key_name = optarg;
            saw_config = true;
            break;
        case OPT_VPC:
            cfg.vpc_id = optarg;
            saw_config = true;
            break;
        case OPT_SUBNETS: {
            snprintf(subnets_buf, sizeof subnets_buf, "%s", optarg);
            char *comma = strchr(subnets_buf, ',');
            cfg.subnet_ids[0] = subnets_buf;
            if (comma) {
                *comma = '\0';
                cfg.subnet_ids[1] = comma + 1;
            }
            saw_config = true;
            break;
        }
        case OPT_SG:
            cfg.security_group_id = optarg;
            saw_config = true;
            break;
        case OPT_EFS:
            cfg.efs_id = optarg;
            saw_config = true;
            break;
        case OPT_CERT:
            cfg.certificate_arn = optarg;
            saw_config = true;
            break;
        case OPT_ALB_TIMEOUT:
        case OPT_HC_INTERVAL:
        case OPT_HC_TIMEOUT:
        case OPT_HEALTHY:
        case OPT_UNHEALTHY: {
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (!end || *end || v <= 0 || v > 3600)
                return gm_cli_usage_error(cli,
                                          "invalid value '%s' for an option of 'deploy': "
                                          "expected a positive number",
                                          optarg);
            if (c == OPT_ALB_TIMEOUT)
                cfg.alb_timeout_ms = v * 1000;
            else if (c == OPT_HC_INTERVAL)
                cfg.hc_interval_s = (int)v;
            else if (c == OPT_HC_TIMEOUT)
                cfg.hc_timeout_s = (int)v;
            else if (c == OPT_HEALTHY)
                cfg.healthy_threshold = (int)v;
            else
                cfg.unhealthy_threshold = (int)v;
            saw_config = true;
            break;
        }
        case OPT_TYPES: {
            snprintf(types_buf, sizeof types_buf, "%s", optarg);
            for (char *save = NULL, *t = strtok_r(types_buf, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                if (cfg.n_types == 16)
                    return gm_cli_usage_error(cli, "at most 16 --instance-types");
                cfg.instance_types[cfg.n_types++] = t;
            }
            if (cfg.n_types == 0)
                return gm_cli_usage_error(cli, "--instance-types needs at least one type");
            saw_config = true;
            break;
        }
        case OPT_SPOT_ONLY:
            cfg.spot_only = true;
            saw_spot = true;
            saw_config = true;
            break;
        case OPT_MAX_SPOT:
        case OPT_BUDGET: {
            gm_error perr = {0};
            double v = 0;
            if (gm_cost_parse_usd(optarg, c == OPT_MAX_SPOT ? "--max-spot-price" : "--budget", &v,
                                  &perr) != GM_OK)
                return gm_cli_usage_error(cli, "%s", perr.message);
            if (c == OPT_MAX_SPOT)
                cfg.max_spot_price = v;
            else
                cfg.budget_monthly = v;
            saw_config = true;
            break;
        }
        case OPT_FORCE: cfg.force = true; break;
        case OPT_NO_ROLLBACK: cfg.no_rollback = true; break;
        case OPT_NO_WAIT: cfg.no_wait = true; break;
        case OPT_YES: break;
        case OPT_RESUME: resume = optarg; break;
        case OPT_TIMEOUT:
        case OPT_HEALTH_TIMEOUT: {
            char *end = NULL;
            long s = strtol(optarg, &end, 10);
            if (!end || *end || s <= 0 || s > 24 * 3600)
                return gm_cli_usage_error(cli, "invalid --%s '%s': expected seconds",
                                          c == OPT_TIMEOUT ? "timeout" : "health-timeout", optarg);
            if (c == OPT_TIMEOUT)
                cfg.timeout_ms = (int64_t)s * 1000;
            else
                cfg.health_timeout_ms = (int64_t)s * 1000;
            break;
        }
        default: {
            int rc = gm_cli_common_option(cli, &gm_command_deploy, c, optarg);
            if (rc >= 0)
                return rc;
        }
        }
    }
    if (optind < argc)
        return gm_cli_usage_error(cli, "unexpected argument '%s' for 'deploy'", argv[optind]);
    if (saw_spot && saw_od)
        return gm_cli_usage_error(cli, "--spot and --on-demand exclude each other");
    if (resume && (cfg.name && strcmp(cfg.name, resume) != 0))
        return gm_cli_usage_error(cli, "--resume NAME and --name disagree");
    if (resume && saw_config)
        return gm_cli_usage_error(cli, "--resume continues with the saved configuration: "
                                       "give no other deployment options");
    gm_error err = {0};
    gm_status st;
    if (resume) {
        cfg.name = resume;
        if ((st = gm_engine_check_name(resume, &err)) != GM_OK)
            return gm_cli_fail(cli, st, &err);
    } else {
        if (cfg.instance_type && cfg.n_types)
            return gm_cli_usage_error(cli,
                                      "--instance-type and --instance-types exclude each other");
        if (!cfg.instance_type && !cfg.n_types) {
            /* No type named: the tier's candidate list, cheapest first. */
            size_t n = 0;
            const char *const *dflt = gm_cost_default_types(cfg.tier, &n);
            for (size_t i = 0; i < n && i < 16; i++)
                cfg.instance_types[cfg.n_types++] = dflt[i];
        }
        if (cfg.n_types)
            cfg.instance_type = cfg.instance_types[0];
        if (cfg.spot_only && saw_od)
            return gm_cli_usage_error(cli, "--spot-only and --on-demand exclude each other");
        for (int i = 1; i < cfg.n_types; i++) {
            if ((st = check_type_like_first(&cfg, i, &err)) != GM_OK)
                return gm_cli_fail(cli, st, &err);
        }
        if ((st = gm_engine_check_config(&cfg, &err)) != GM_OK)
            return gm_cli_fail(cli, st, &err);
    }

    int64_t t0 = gm_now_ms();
    gm_store *store = NULL;
    gm_lock *lock = NULL;
    gm_aws_client *aws = NULL, *pricing = NULL;
    gm_deployment *dep = NULL;
    gm_progress *progress = NULL;
    char detected[64];
    int rc = GM_EXIT_FAILED;
    st = gm_cli_open_locked(cli, cfg.name, &store, &lock, &err);
    if (st != GM_OK)
        goto done;
    if (resume) {
        st = gm_store_load(store, cfg.name, &dep, &err);
        if (st != GM_OK)
            goto done;
        if (dep->status == GM_DEP_DESTROYED) {
            st = gm_error_set(&err, GM_ERR_CONFLICT,
                              "deployment '%s' was destroyed: deploy it anew", cfg.name);
            goto done;
        }
        bool no_wait = cfg.no_wait, no_rb = cfg.no_rollback;
        st = config_from_state(dep, &cfg, &err);
        cfg.no_wait = no_wait;
        cfg.no_rollback = cfg.no_rollback || no_rb;
        if (st != GM_OK)
            goto done;
        if (!cli->region)
            cli->region = dep->region;
    } else if (gm_store_exists(store, cfg.name)) {
        gm_deployment *old = NULL;
        gm_error lerr = {0};
        st = gm_store_load(store, cfg.name, &old, &lerr);
        if (st != GM_OK) {
            err = lerr;
            goto done;
        }
        st = gm_error_set(&err, GM_ERR_CONFLICT,
                          "deployment '%s' already exists (status %s): use 'geusemaker deploy "
                          "--resume %s' to continue it or 'geusemaker destroy %s' to remove it",
                          cfg.name, gm_dep_status_name(old->status), cfg.name, cfg.name);
        gm_deployment_free(old);
        goto done;
    }
    st = gm_cli_aws_client(cli, &aws, &err);
    if (st != GM_OK)
        goto done;
    pricing = gm_cli_pricing_client(cli);
    if (!resume) {
        if (cfg.n_cidrs == 0) {
            st = gm_engine_detect_cidr(aws, detected, sizeof detected, &err);
            if (st != GM_OK)
                goto done;
            cfg.cidrs[cfg.n_cidrs++] = detected;
        }
        for (int i = 0; i < cfg.n_cidrs; i++)
            if (strcmp(cfg.cidrs[i], "0.0.0.0/0") == 0)
                fprintf(stderr,
                        "warning: --allow-cidr 0.0.0.0/0 opens the stack to the whole internet\n");
        char reused_azs[2][64] = {"", ""};
        st = gm_engine_check_reused(aws, &cfg, reused_azs, &err);
        if (st != GM_OK)
            goto done;
        if (cfg.budget_monthly > 0) {
            json_t *est = NULL;
            st = gm_engine_budget_check(aws, pricing, &cfg, cfg.tier, &est, &err);
            json_decref(est);
            if (st != GM_OK) {
                if (st == GM_ERR_INVALID)
                    fprintf(stderr, "nothing was created; --force deploys anyway\n");
                goto done;
            }
        }
        dep = gm_deployment_new(cfg.name, cfg.tier, gm_aws_client_region(aws));
        if (!dep) {
            st = gm_error_set(&err, GM_ERR_NOMEM, "out of memory");
            goto done;
        }
        json_decref(dep->config);
        dep->config = config_json(&cfg);
        json_decref(dep->cost);
        dep->cost = gm_cost_estimate(cfg.instance_type, cfg.spot,
                                     strcmp(cfg.tier, "automation") == 0, NULL);
        if (cfg.vpc_id) {
            mark_reused(dep, "vpc", "vpc", cfg.vpc_id);
            mark_reused(dep, "subnet_a", "subnet", cfg.subnet_ids[0]);
            mark_reused(dep, "subnet_b", "subnet", cfg.subnet_ids[1]);
            for (int i = 0; i < 2; i++)
                json_object_set_new(gm_deployment_node(dep, i ? "subnet_b" : "subnet_a")->outputs,
                                    "az", json_string(reused_azs[i]));
            /* A reused VPC brings its own routing. */
            mark_reused(dep, "vpc_dns", "vpc_dns", cfg.vpc_id);
            mark_reused(dep, "igw", "igw", "-");
            mark_reused(dep, "route_table", "route_table", "-");
            mark_reused(dep, "azs", "azs", "-");
        }
        if (cfg.security_group_id) {
            mark_reused(dep, "sg", "security_group", cfg.security_group_id);
            mark_reused(dep, "sg_rules", "sg_rules", cfg.security_group_id);
        }
        if (cfg.efs_id)
            mark_reused(dep, "efs", "efs", cfg.efs_id);
        gm_deployment_add_event(dep, "deploy", NULL, "deploy started");
        st = gm_store_save(store, dep, &err);
        if (st != GM_OK)
            goto done;
    }
    gm_log_event(GM_LOG_INFO, "deploy_start",
                 json_pack("{s:s, s:b, s:s, s:s}", "name", cfg.name, "resume", resume != NULL,
                           "tier", cfg.tier, "instance_type", cfg.instance_type));
    gm_cli_install_interrupt_handlers();
    char title[128];
    snprintf(title, sizeof title, "%s \"%s\" in %s", resume ? "Resuming" : "Deploying", cfg.name,
             gm_aws_client_region(aws));
    progress = gm_progress_new(&cli->term, cli->output != GM_OUTPUT_JSON && !cli->verbose, title);
    gm_engine_options eo = {.aws = aws,
                            .pricing = pricing,
                            .store = store,
                            .progress = progress,
                            .interrupt = &gm_cli_interrupted};
    st = gm_engine_deploy(&eo, &cfg, dep, resume != NULL, &err);
    gm_progress_free(progress);
    progress = NULL;
    if (st == GM_OK) {
        gm_cli_print_deployment(cli, dep, NULL, gm_now_ms() - t0);
        rc = GM_EXIT_OK;
    } else if (dep->status == GM_DEP_DESTROYED) {
        /* Rolled back completely: nothing remains, so the record goes to the
         * archive. */
        char *archived = NULL;
        gm_error aerr = {0};
        dep->status = GM_DEP_FAILED;
        gm_store_save(store, dep, &aerr);
        gm_store_archive(store, cfg.name, &archived, &aerr);
        fprintf(stderr, "rolled back: nothing of '%s' remains (record: %s)\n", cfg.name,
                archived ? archived : "kept");
        free(archived);
    } else if (dep->status == GM_DEP_PARTIAL) {
        gm_cli_print_deployment(cli, dep, NULL, gm_now_ms() - t0);
        fprintf(stderr,
                "the EC2 side of '%s' is up and recorded as partially deployed; only the "
                "load balancer's resources were removed. Retry the load balancer with "
                "'geusemaker deploy --resume %s'\n",
                cfg.name, cfg.name);
    } else {
        fprintf(stderr,
                "the deployment is recorded as '%s'; continue with 'geusemaker deploy "
                "--resume %s' or remove it with 'geusemaker destroy %s'\n",
                gm_dep_status_name(dep->status), cfg.name, cfg.name);
    }
    gm_log_event(st == GM_OK ? GM_LOG_INFO : GM_LOG_ERROR, "deploy_end",
                 json_pack("{s:s, s:I, s:s?}", "status", gm_dep_status_name(dep->status),
                           "duration_ms", (json_int_t)(gm_now_ms() - t0), "error",
                           st == GM_OK ? NULL : err.message));
done:
    if (st != GM_OK)
        rc = gm_cli_fail(cli, st, &err);
    gm_progress_free(progress);
    gm_deployment_free(dep);
    gm_aws_client_free(aws);
    gm_aws_client_free(pricing);
    gm_lock_release(lock);
    gm_store_free(store);
    gm_log_close();
    return rc;
}
