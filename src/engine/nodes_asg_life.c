/* The group after deploy: stop and start set its capacity (min = desired =
 * 0 or 1, max 1); update points it at a new launch template version (and
 * candidate types) and has it replace its instance. Waiting for the new
 * instance is nodes_asg_wait.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "engine/nodes.h"

gm_status gm_n_asg_set_capacity(gm_node *n, const char *group, int capacity, gm_error *err)
{
    char c[8];
    snprintf(c, sizeof c, "%d", capacity);
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "AutoScalingGroupName", group);
    gm_params_add(&p, "MinSize", c);
    gm_params_add(&p, "MaxSize", "1");
    gm_params_add(&p, "DesiredCapacity", c);
    xmlDocPtr doc = NULL;
    gm_status st =
        gm_n_query(n, &gm_svc_autoscaling, "UpdateAutoScalingGroup", &p, &doc, NULL, err);
    xmlFreeDoc(doc);
    gm_params_release(&p);
    return st;
}

/* Adds the group's instances to seen; *out_n: how many it has. */
static GM_MUST_CHECK gm_status note_instances(gm_node *n, const char *group, gm_ids *seen,
                                              size_t *out_n, gm_error *err)
{
    gm_read_rows rows;
    gm_status st = gm_n_asg_read(n, group, &gm_asg_instances, &rows, err);
    for (size_t i = 0; st == GM_OK && i < rows.n; i++)
        if (!gm_ids_has(seen, gm_read_get(&rows, i, GM_ASG_I_ID)))
            st = gm_ids_add(seen, gm_read_get(&rows, i, GM_ASG_I_ID), err);
    *out_n = st == GM_OK ? rows.n : 0;
    gm_read_rows_release(&rows);
    return st;
}

gm_status gm_n_asg_stop(gm_node *n, const char *group, gm_error *err)
{
    /* The instances it has now: the group may let go of one before EC2
     * has terminated it. */
    gm_ids seen;
    gm_ids_init(&seen);
    size_t left = 0;
    gm_status st = note_instances(n, group, &seen, &left, err);
    if (st == GM_OK)
        st = gm_n_asg_set_capacity(n, group, 0, err);
    while (st == GM_OK) {
        st = note_instances(n, group, &seen, &left, err);
        if (st != GM_OK || left == 0)
            break;
        st = gm_node_wait(n, gm_node_poll_ms(n), "waiting for the group to let its instance go",
                          err);
    }
    if (st == GM_OK)
        st = gm_n_wait_terminated(n, &seen, err);
    gm_ids_release(&seen);
    return st;
}

gm_status gm_n_asg_replace(gm_node *n, const char *instance, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "InstanceId", instance);
    gm_params_add(&p, "ShouldDecrementDesiredCapacity", "false");
    xmlDocPtr doc = NULL;
    gm_status st = gm_n_query(n, &gm_svc_autoscaling, "TerminateInstanceInAutoScalingGroup", &p,
                              &doc, NULL, err);
    xmlFreeDoc(doc);
    gm_params_release(&p);
    return st;
}

gm_status gm_n_asg_set_policy(gm_node *n, const char *group, const gm_n_asg_policy *pol,
                              const char *lt, const char *version, gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "AutoScalingGroupName", group);
    gm_n_asg_policy_params(pol, lt, version, &p);
    xmlDocPtr doc = NULL;
    gm_status st =
        gm_n_query(n, &gm_svc_autoscaling, "UpdateAutoScalingGroup", &p, &doc, NULL, err);
    xmlFreeDoc(doc);
    gm_params_release(&p);
    return st;
}
