/* Waiting for the Auto Scaling group's instance, and the one decision the
 * engine still takes about placement: AWS's group tries the spot pools
 * (every override type in both subnets' zones) by itself and reports each
 * refusal as a failed scaling activity; when every pool has refused spot for
 * capacity, quota or price, the group is moved to on-demand (or, with
 * --spot-only, the deploy stops and says why). Every refusal and the launch
 * are recorded in the node's launch_attempts output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "core/timeutil.h"
#include "cost/estimate.h"
#include "cost/rank.h"
#include "engine/nodes.h"
#include "engine/plan.h"

#define DEFAULT_LAUNCH_TIMEOUT_MS (10 * 60 * 1000)
#define ACTIVITIES_PER_LOOK "20"

typedef struct watch {
    gm_node *n;
    const char *group;
    gm_n_asg_launch *launch;
    json_t *attempts; /* [{type, az, market, result, reason?}] */
    json_t *seen;     /* activity ids already read: {id: true} */
    gm_ids refused;   /* spot pools ("type az") refused since the market was chosen */
    size_t unnamed;   /* spot refusals that name no pool */
    bool every_pool;  /* a refusal said no pool can serve the group */
    char last[640];   /* the last refusal, for the messages */
} watch;

/* ---- the policy in force --------------------------------------------------- */

static GM_MUST_CHECK gm_status ensure_plan(watch *w, gm_error *err)
{
    if (w->launch->have_plan)
        return GM_OK;
    gm_status st = gm_n_asg_plan(w->n, &w->launch->plan, err);
    w->launch->have_plan = st == GM_OK;
    return st;
}

/* The policy the group was made with: known after a create, else read back
 * from the node's outputs (a resume), else ranked again. */
static GM_MUST_CHECK gm_status ensure_policy(watch *w, gm_error *err)
{
    gm_n_asg_policy *pol = &w->launch->pol;
    if (pol->n_types)
        return GM_OK;
    char *list = gm_node_output_of(w->n, gm_node_name(w->n), "overrides");
    char *market = gm_node_output_of(w->n, gm_node_name(w->n), "group_market");
    gm_status st = GM_OK;
    if (list && *list) {
        memset(pol, 0, sizeof *pol);
        pol->spot = market && strcmp(market, "spot") == 0;
        char *save = NULL;
        for (char *t = strtok_r(list, ",", &save); t && pol->n_types < GM_MAX_TYPES;
             t = strtok_r(NULL, ",", &save))
            snprintf(pol->types[pol->n_types++], sizeof pol->types[0], "%s", t);
        gm_n_asg_max_price(w->n, pol->max_price, sizeof pol->max_price);
    } else {
        st = ensure_plan(w, err);
        if (st == GM_OK)
            gm_n_asg_policy_from(w->n, &w->launch->plan,
                                 w->launch->plan.viable[0].market == GM_MARKET_SPOT, pol);
    }
    free(list);
    free(market);
    return st;
}

/* ---- the record ------------------------------------------------------------------ */

static void save_attempts(watch *w)
{
    char *text = json_dumps(w->attempts, JSON_COMPACT);
    gm_error oerr = {0};
    /* the attempts are a record for the user; losing them fails nothing */
    gm_ignore(gm_node_set_output(w->n, "launch_attempts", text ? text : "[]", &oerr));
    free(text);
}

/* The candidate of the ranking that launched (type, zone and market; else
 * the type and market; else the first), its estimate and why it was chosen. */
static GM_MUST_CHECK gm_status record_choice(watch *w, const char *type, const char *az,
                                             gm_market market, gm_error *err)
{
    gm_status st = ensure_plan(w, err);
    if (st != GM_OK)
        return st;
    const gm_cost_ranking *r = &w->launch->plan;
    const gm_cost_candidate *c = &r->viable[0];
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = r->n_viable; i-- > 0;)
            if (strcmp(r->viable[i].type, type) == 0 && r->viable[i].market == market &&
                (pass == 1 || strcmp(r->viable[i].az, az) == 0))
                c = &r->viable[i];
    char price[64];
    snprintf(price, sizeof price, "%.4f", c->hourly);
    const char *outs[][2] = {
        {"chosen_type", type},
        {"chosen_az", az},
        {"chosen_market", gm_market_name(market)},
        {"chosen_hourly_usd", price},
        {"price_source", c->source},
        {"choice_reason", c->reason},
    };
    for (size_t i = 0; st == GM_OK && i < sizeof outs / sizeof *outs; i++)
        st = gm_node_set_output(w->n, outs[i][0], outs[i][1], err);
    gm_cost_assumptions a;
    gm_engine_assumptions(gm_node_config(w->n), &a);
    char *root_gb = gm_node_output_of(w->n, "launch_template", "root_volume_gb");
    if (root_gb && strtol(root_gb, NULL, 10) > 0) /* the size asked for, not the tier's need */
        a.ebs_gb = (double)strtol(root_gb, NULL, 10);
    free(root_gb);
    gm_node_set_cost(w->n, gm_cost_estimate_candidate(c, gm_tier_has_alb(gm_node_tier(w->n)), &a));
    return st;
}

/* The instance in service: where it runs, what was chosen, the attempt;
 * *out_done false while EC2 does not know the instance yet. */
static GM_MUST_CHECK gm_status launched(watch *w, const gm_read_rows *instances, size_t row,
                                        const gm_read_rows *ec2, bool *out_done, gm_error *err)
{
    const gm_n_asg_policy *pol = &w->launch->pol;
    const char *market = pol->spot ? "spot" : "on-demand";
    const char *id = gm_read_get(instances, row, GM_ASG_I_ID);
    size_t at = 0;
    while (ec2 && at < ec2->n && strcmp(gm_read_get(ec2, at, GM_EC2_I_ID), id) != 0)
        at++;
    gm_status st;
    if (ec2 && at < ec2->n) { /* read beside the group */
        *out_done = true;
        st = gm_n_asg_record_row(w->n, ec2, at, market, err);
    } else {
        st = gm_n_asg_record_instance(w->n, id, market, out_done, err);
    }
    if (st != GM_OK || !*out_done)
        return st;
    char *type = gm_node_output_of(w->n, gm_node_name(w->n), "instance_type");
    char *az = gm_node_output_of(w->n, gm_node_name(w->n), "az");
    const char *t = type && *type ? type : gm_read_get(instances, row, GM_ASG_I_TYPE);
    const char *z = az && *az ? az : gm_read_get(instances, row, GM_ASG_I_AZ);
    json_array_append_new(w->attempts, json_pack("{s:s, s:s, s:s, s:s}", "type", t, "az", z,
                                                 "market", market, "result", "launched"));
    save_attempts(w);
    if (st == GM_OK)
        st = record_choice(w, t, z, pol->spot ? GM_MARKET_SPOT : GM_MARKET_ON_DEMAND, err);
    if (st == GM_OK && json_array_size(w->attempts) > 1)
        gm_node_note(w->n, "launched %s %s in %s after %zu refused attempt(s)", t, market, z,
                     json_array_size(w->attempts) - 1);
    free(type);
    free(az);
    return st;
}

/* ---- reading the activities ----------------------------------------------------- */

/* Counts one refusal of the group's spot request. */
static GM_MUST_CHECK gm_status count_spot_refusal(watch *w, const gm_cost_activity *a,
                                                  gm_error *err)
{
    if (a->cls == GM_LAUNCH_ERR_ACCOUNT_QUOTA || a->every_pool) {
        w->every_pool = true; /* a quota is the account's: other pools won't help */
        return GM_OK;
    }
    if (!*a->type) {
        w->unnamed++;
        return GM_OK;
    }
    char pool[96];
    snprintf(pool, sizeof pool, "%s %s", a->type, a->az);
    return gm_ids_has(&w->refused, pool) ? GM_OK : gm_ids_add(&w->refused, pool, err);
}

/* One failed activity not seen before: recorded, noted, counted. */
static GM_MUST_CHECK gm_status one_failure(watch *w, const char *message, gm_error *err)
{
    gm_cost_activity a;
    gm_cost_read_activity(message, &a);
    bool spot = w->launch->pol.spot;
    json_t *attempt = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", a.type, "az", a.az, "market",
                                spot ? "spot" : "on-demand", "result", *a.code ? a.code : "Failed",
                                "reason", message);
    json_array_append_new(w->attempts, attempt);
    save_attempts(w);
    snprintf(w->last, sizeof w->last, "%s", message);
    gm_node_note(w->n, "the group's %s launch was refused (%s): %.400s",
                 spot ? "spot" : "on-demand", gm_launch_error_class_name(a.cls), message);
    bool placement = a.cls == GM_LAUNCH_ERR_ZONE_CAPACITY || a.cls == GM_LAUNCH_ERR_ACCOUNT_QUOTA ||
                     a.cls == GM_LAUNCH_ERR_PRICE;
    return spot && placement ? count_spot_refusal(w, &a, err) : GM_OK;
}

static GM_MUST_CHECK gm_status read_activities(watch *w, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "AutoScalingGroupName", w->group);
    gm_params_add(&p, "MaxRecords", ACTIVITIES_PER_LOOK);
    xmlDocPtr doc = NULL;
    gm_status st =
        gm_n_query(w->n, &gm_svc_autoscaling, "DescribeScalingActivities", &p, &doc, NULL, err);
    gm_params_release(&p);
    gm_read_rows rows;
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_asg_activities, &rows, err);
    xmlFreeDoc(doc);
    if (st != GM_OK)
        return st;
    /* newest first: read them oldest first */
    for (size_t i = rows.n; st == GM_OK && i-- > 0;) {
        const char *id = gm_read_get(&rows, i, GM_ASG_A_ID);
        if (strcmp(gm_read_get(&rows, i, GM_ASG_A_STATUS), "Failed") != 0 || !*id ||
            json_object_get(w->seen, id))
            continue;
        json_object_set_new(w->seen, id, json_true());
        const char *msg = gm_read_get(&rows, i, GM_ASG_A_MESSAGE);
        st = one_failure(w, *msg ? msg : gm_read_get(&rows, i, GM_ASG_A_DESCRIPTION), err);
    }
    gm_read_rows_release(&rows);
    return st;
}

/* ---- moving to on-demand ---------------------------------------------------------- */

static bool spot_refused_everywhere(const watch *w)
{
    size_t pools = w->launch->pol.n_types * 2; /* every type in both zones */
    return w->launch->pol.spot && (w->every_pool || w->refused.n + w->unnamed >= pools);
}

static GM_MUST_CHECK gm_status switch_to_on_demand(watch *w, gm_error *err)
{
    gm_n_asg_launch *l = w->launch;
    gm_n_asg_policy od = l->pol;
    if (l->have_plan)
        gm_n_asg_policy_from(w->n, &l->plan, false, &od);
    od.spot = false;
    char *lt = gm_node_id_of(w->n, "launch_template");
    /* the version update pinned (none: $Latest) */
    char *version = gm_node_output_of(w->n, GM_NODE_ASG, "template_version");
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "AutoScalingGroupName", w->group);
    gm_n_asg_policy_params(&od, lt ? lt : "", version, &p);
    free(version);
    gm_status st =
        gm_n_query(w->n, &gm_svc_autoscaling, "UpdateAutoScalingGroup", &p, NULL, NULL, err);
    gm_params_release(&p);
    free(lt);
    if (st != GM_OK)
        return st;
    gm_node_note(w->n,
                 "spot was refused in every pool (%zu refusal(s); last: %.300s): the group now "
                 "launches on-demand",
                 json_array_size(w->attempts), w->last);
    l->pol = od;
    w->every_pool = false;
    w->unnamed = 0;
    gm_ids_release(&w->refused);
    st = gm_node_set_output(w->n, "group_market", "on-demand", err);
    if (st == GM_OK)
        st =
            gm_node_set_output(w->n, "market_switch", "spot refused in every pool: on-demand", err);
    return st;
}

/* ---- the wait ------------------------------------------------------------------------ */

/* EC2's side of a look, on its own thread. */
typedef struct ec2_look {
    gm_node *n;
    const char *group;
    gm_read_rows rows;
    gm_status st;
    gm_error err;
} ec2_look;

static void *look_ec2(void *arg)
{
    ec2_look *l = arg;
    l->st = gm_n_asg_group_instances(l->n, l->group, &l->rows, &l->err);
    return NULL;
}

/* One look, one round trip: the group and EC2's view of its instances at
 * once. *out_done when an instance is in service (and recorded). */
static GM_MUST_CHECK gm_status look(watch *w, bool *out_done, gm_error *err)
{
    ec2_look l = {.n = w->n, .group = w->group};
    gm_read_rows_init(&l.rows);
    gm_n_beside beside;
    gm_n_beside_start(&beside, look_ec2, &l);
    gm_read_rows instances;
    gm_status st = gm_n_asg_read(w->n, w->group, &gm_asg_instances, &instances, err);
    gm_n_beside_join(&beside);
    size_t row = 0;
    *out_done = false;
    bool serving = st == GM_OK && gm_n_asg_in_service(&instances, &row) == GM_OK;
    if (serving)
        st = launched(w, &instances, row, l.st == GM_OK ? &l.rows : NULL, out_done, err);
    else if (st == GM_OK)
        gm_node_detail(w->n, instances.n ? gm_read_get(&instances, 0, GM_ASG_I_LIFECYCLE)
                                         : "waiting for the group to launch");
    if (l.st == GM_OK)
        gm_read_rows_release(&l.rows);
    gm_read_rows_release(&instances);
    if (st != GM_OK || serving)
        return st; /* launched, or in service before EC2 lists it: look again */
    st = read_activities(w, err);
    if (st != GM_OK || !spot_refused_everywhere(w))
        return st;
    if (gm_node_config(w->n)->spot_only)
        return gm_error_set(err, GM_ERR_AWS,
                            "spot was refused in every pool of the group (%zu attempt(s); last: "
                            "%.300s) and --spot-only forbids on-demand",
                            json_array_size(w->attempts), w->last);
    return switch_to_on_demand(w, err);
}

gm_status gm_n_asg_wait(gm_node *n, const char *group, gm_n_asg_launch *launch, gm_error *err)
{
    watch w = {.n = n, .group = group, .launch = launch};
    w.attempts = json_array();
    w.seen = json_object();
    gm_ids_init(&w.refused);
    int64_t limit = gm_node_config(n)->launch_timeout_ms;
    if (limit <= 0)
        limit = DEFAULT_LAUNCH_TIMEOUT_MS;
    int64_t until = gm_now_ms() + limit;
    gm_status st = w.attempts && w.seen ? ensure_policy(&w, err)
                                        : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    bool done = false;
    while (st == GM_OK && !done) {
        st = look(&w, &done, err);
        if (st != GM_OK || done)
            break;
        if (gm_now_ms() >= until) {
            st = gm_error_set(err, GM_ERR_TIMEOUT,
                              "no instance of the Auto Scaling group %s in service after %llds%s%s",
                              group, (long long)(limit / 1000), *w.last ? "; last refusal: " : "",
                              w.last);
            break;
        }
        st = gm_node_wait(n, gm_node_poll_ms(n), "waiting for the group's instance", err);
    }
    json_decref(w.attempts);
    json_decref(w.seen);
    gm_ids_release(&w.refused);
    return st;
}
