/* geusemaker connect's plan (connect.h): which port of the instance, which
 * instance, and the `aws ssm start-session` command line that opens it. */
#include "engine/connect.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "engine/engine.h"
#include "engine/liveness.h"
#include "stack/catalogue.h"

/* The SSM actions of a session: StartSession opens it; the plugin ends it
 * (TerminateSession) and picks up a dropped connection (ResumeSession). */
const char *const gm_connect_ssm_actions[] = {"StartSession", "TerminateSession", "ResumeSession",
                                              NULL};

/* The value of a service's catalogue variable, or dflt. */
static const char *env_of(const gm_service *s, const char *var, const char *dflt)
{
    for (size_t i = 0; i < GM_SERVICE_MAX_ENV && s->env[i].name; i++)
        if (strcmp(s->env[i].name, var) == 0)
            return s->env[i].value;
    return dflt;
}

gm_status gm_engine_connect_port(const char *name, const char *service, int *out_port,
                                 gm_error *err)
{
    *out_port = 0;
    const gm_service *s = gm_stack_service(service);
    if (!s) {
        size_t n = 0;
        const gm_service *all = gm_stack_services(&n);
        char names[128] = "";
        for (size_t i = 0; i < n; i++) {
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", all[i].name);
        }
        return gm_error_set(err, GM_ERR_INVALID,
                            "unknown service '%.64s' for --service: expected one of %s", service,
                            names);
    }
    if (!s->publish || s->port <= 0)
        return gm_error_set(
            err, GM_ERR_INVALID,
            "service '%s' publishes no port on the instance (it listens only on the stack's "
            "Compose network), so there is nothing to forward: open a shell with 'geusemaker "
            "connect %s --shell' and run 'sudo docker exec -it geusemaker-%s psql -U %s %s'",
            s->name, name, s->name, env_of(s, "POSTGRES_USER", "postgres"),
            env_of(s, "POSTGRES_DB", "postgres"));
    *out_port = s->port;
    return GM_OK;
}

static void add(gm_connect_plan *p, char *arg, bool *ok)
{
    if (!arg || p->argc >= GM_CONNECT_MAX_ARGS) {
        free(arg);
        *ok = false;
        return;
    }
    p->argv[p->argc++] = arg;
}

/* --endpoint-url when the SSM endpoint is not the region's own. */
static void add_endpoint(gm_connect_plan *p, gm_aws_client *aws, bool *ok)
{
    char *url = gm_aws_endpoint(aws, &gm_svc_ssm);
    char *own = gm_strfmt("https://%s.%s.%s", gm_svc_ssm.endpoint_prefix, gm_aws_client_region(aws),
                          gm_aws_client_partition(aws)->dns_suffix);
    if (!url || !own)
        *ok = false;
    else if (strcmp(url, own) != 0) {
        add(p, strdup("--endpoint-url"), ok);
        add(p, url, ok);
        url = NULL;
    }
    free(url);
    free(own);
}

gm_status gm_engine_connect_plan(gm_aws_client *aws, const gm_deployment *dep,
                                 const gm_connect_request *req, gm_connect_plan *out, gm_error *err)
{
    memset(out, 0, sizeof *out);
    if (req->service) {
        gm_status st = gm_engine_connect_port(dep->name, req->service, &out->remote_port, err);
        if (st != GM_OK)
            return st;
        out->service = req->service;
        out->local_port = req->local_port ? req->local_port : out->remote_port;
    }
    gm_status st = gm_engine_current_instance(aws, dep, out->target_id, sizeof out->target_id, err);
    if (st != GM_OK)
        return st;
    if (!*out->target_id && dep->status == GM_DEP_STOPPED)
        return gm_error_set(err, GM_ERR_CONFLICT,
                            "deployment '%s' is stopped: nothing to connect to; 'geusemaker "
                            "start %s' starts it",
                            dep->name, dep->name);
    if (!*out->target_id)
        return gm_error_set(err, GM_ERR_CONFLICT,
                            "deployment '%s' has no instance (status %s): nothing to connect to; "
                            "'geusemaker deploy --resume %s' launches it",
                            dep->name, gm_dep_status_name(dep->status), dep->name);
    out->target = out->target_id;
    bool ok = true;
    static const char *const head[] = {"aws", "ssm", "start-session", "--target"};
    for (size_t i = 0; i < sizeof head / sizeof *head; i++)
        add(out, strdup(head[i]), &ok);
    add(out, strdup(out->target), &ok);
    if (out->service) {
        add(out, strdup("--document-name"), &ok);
        add(out, strdup(GM_CONNECT_PORT_DOCUMENT), &ok);
        add(out, strdup("--parameters"), &ok);
        add(out, gm_strfmt("portNumber=%d,localPortNumber=%d", out->remote_port, out->local_port),
            &ok);
    }
    add(out, strdup("--region"), &ok);
    add(out, strdup(gm_aws_client_region(aws)), &ok);
    if (req->profile) {
        add(out, strdup("--profile"), &ok);
        add(out, strdup(req->profile), &ok);
    }
    add_endpoint(out, aws, &ok);
    return ok ? GM_OK : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
}

void gm_connect_plan_release(gm_connect_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->argc; i++)
        free(p->argv[i]);
    memset(p, 0, sizeof *p);
}

gm_status gm_engine_connect_check_instance(gm_aws_client *aws, const gm_deployment *dep,
                                           const gm_connect_plan *plan, char *state, size_t size,
                                           gm_error *err)
{
    json_t *states = NULL;
    const char *id = plan->target;
    gm_status st = gm_engine_instance_states(aws, &id, 1, &states, err);
    if (st != GM_OK)
        return st;
    const char *found = json_string_value(json_object_get(states, id));
    bool exists = found != NULL;
    snprintf(state, size, "%s", exists ? found : GM_LIVE_MISSING);
    json_decref(states);
    const char *live = state;
    if (!exists)
        return gm_error_set(err, GM_ERR_CONFLICT,
                            "instance %s of '%s' no longer exists: nothing to connect to "
                            "('geusemaker status %s' says more)",
                            id, dep->name, dep->name);
    if (strcmp(live, "running") != 0)
        return gm_error_set(err, GM_ERR_CONFLICT,
                            "instance %s of '%s' is %s, not running: nothing to connect to "
                            "('geusemaker status %s' says more)",
                            id, dep->name, live, dep->name);
    return GM_OK;
}
