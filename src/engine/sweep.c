#include "engine/sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "core/str.h"

#define TAGGING_MAX_PAGES 1000 /* 100 a page: 100,000 resources */

void gm_tagged_list_init(gm_tagged_list *l)
{
    l->v = NULL;
    l->n = 0;
}

void gm_tagged_list_release(gm_tagged_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].arn);
        free(l->v[i].id);
    }
    free(l->v);
    gm_tagged_list_init(l);
}

bool gm_tagged_goes_with_another(const gm_tagged *t)
{
    return strcmp(t->service, "ec2") == 0 &&
           (strcmp(t->type, "volume") == 0 || strcmp(t->type, "network-interface") == 0);
}

/* Splits "arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE" into the service,
 * the resource's type and the id the node kinds use. */
static GM_MUST_CHECK gm_status parse_arn(gm_tagged *t, gm_error *err)
{
    const char *p = t->arn;
    for (int field = 0; field < 2 && p; field++)
        p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL;
    const char *service = p;
    for (int field = 0; field < 3 && p; field++)
        p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL;
    if (!service || !p || strncmp(t->arn, "arn:", 4) != 0)
        return gm_error_set(err, GM_ERR_PARSE, "malformed arn '%s'", t->arn);
    size_t sl = strcspn(service, ":");
    snprintf(t->service, sizeof t->service, "%.*s", (int)sl, service);
    size_t tl = strcspn(p, "/:");
    snprintf(t->type, sizeof t->type, "%.*s", (int)tl, p);
    const char *rest = p[tl] ? p + tl + 1 : p + tl;
    const char *group = strstr(rest, "autoScalingGroupName/");
    if (strcmp(t->service, "elasticloadbalancing") == 0)
        t->id = strdup(t->arn); /* load balancers and target groups go by arn */
    else if (strcmp(t->service, "autoscaling") == 0) /* "autoScalingGroup:UUID:...Name/N" */
        t->id = strdup(group ? group + strlen("autoScalingGroupName/") : rest);
    else if (strcmp(t->service, "ssm") == 0) /* "parameter/a/b" names "/a/b" */
        t->id = gm_strfmt("%s%s", rest[0] == '/' ? "" : "/", rest);
    else
        t->id = strdup(rest);
    return t->id ? GM_OK : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
}

static GM_MUST_CHECK gm_status add_rows(gm_tagged_list *out, const gm_read_rows *rows,
                                        gm_error *err)
{
    for (size_t i = 0; i < rows->n; i++) {
        gm_tagged *v = realloc(out->v, (out->n + 1) * sizeof *v);
        if (!v)
            return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        out->v = v;
        gm_tagged *t = &v[out->n];
        memset(t, 0, sizeof *t);
        t->arn = strdup(gm_read_get(rows, i, GM_TAGGED_ARN));
        if (!t->arn)
            return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        out->n++;
        snprintf(t->name, sizeof t->name, "%s", gm_read_get(rows, i, GM_TAGGED_NAME));
        snprintf(t->deployment_id, sizeof t->deployment_id, "%s",
                 gm_read_get(rows, i, GM_TAGGED_ID));
        snprintf(t->node, sizeof t->node, "%s", gm_read_get(rows, i, GM_TAGGED_NODE));
        gm_status st = parse_arn(t, err);
        if (st != GM_OK)
            return st;
    }
    return GM_OK;
}

static json_t *request_body(const char *key, const char *value, const char *token)
{
    json_t *filter = value ? json_pack("{s:s, s:[s]}", "Key", key, "Values", value)
                           : json_pack("{s:s}", "Key", key);
    json_t *body =
        filter ? json_pack("{s:[o], s:i}", "TagFilters", filter, "ResourcesPerPage", 100) : NULL;
    if (body && token && json_object_set_new(body, "PaginationToken", json_string(token)) != 0) {
        json_decref(body);
        body = NULL;
    }
    return body;
}

gm_status gm_engine_list_tagged(gm_aws_client *aws, const char *key, const char *value,
                                gm_tagged_list *out, gm_error *err)
{
    gm_tagged_list_init(out);
    char *token = NULL;
    gm_status st = GM_OK;
    for (int page = 0; st == GM_OK; page++) {
        if (page == TAGGING_MAX_PAGES) {
            st = gm_error_set(err, GM_ERR_LIMIT, "more than %d pages of tagged resources",
                              TAGGING_MAX_PAGES);
            break;
        }
        json_t *body = request_body(key, value, token);
        json_t *answer = NULL;
        st = body ? gm_aws_json(aws, &gm_svc_tagging, "GetResources", body, &answer, err)
                  : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        json_decref(body);
        gm_read_rows rows;
        if (st == GM_OK)
            st = gm_tagging_read_resources(answer, &rows, err);
        if (st == GM_OK) {
            st = add_rows(out, &rows, err);
            gm_read_rows_release(&rows);
        }
        char *next = st == GM_OK ? gm_read_next_token(answer, "PaginationToken") : NULL;
        json_decref(answer);
        bool repeat = next && token && strcmp(next, token) == 0;
        free(token);
        token = next;
        if (!token || repeat)
            break;
    }
    free(token);
    if (st != GM_OK)
        gm_tagged_list_release(out);
    return st;
}
