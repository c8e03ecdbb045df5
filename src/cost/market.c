/* The market: candidate types, zones, offerings, specs and prices. */
#include "cost/market.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/xml.h"
#include "core/str.h"
#include "core/timeutil.h"

void gm_cost_market_init(gm_cost_market *m, const char *region)
{
    memset(m, 0, sizeof *m);
    snprintf(m->region, sizeof m->region, "%s", region ? region : "");
    gm_spot_prices_init(&m->spot);
}

void gm_cost_market_release(gm_cost_market *m)
{
    if (!m)
        return;
    gm_spot_prices_release(&m->spot);
}

/* Notes may come from the gathering threads at once. */
static pthread_mutex_t notes_lock = PTHREAD_MUTEX_INITIALIZER;

void gm_cost_market_note(gm_cost_market *m, const char *fmt, ...)
{
    pthread_mutex_lock(&notes_lock);
    if (m->n_notes < GM_COST_MAX_NOTES) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->notes[m->n_notes++], GM_COST_NOTE_MAX, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&notes_lock);
}

static bool type_name_ok(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    if (n < 3 || n >= GM_COST_TYPE_MAX || !strchr(t, '.') || t[0] == '.' || t[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') || t[i] == '.' ||
              t[i] == '-'))
            return false;
    return true;
}

gm_cost_type *gm_cost_market_type(gm_cost_market *m, const char *type)
{
    for (size_t i = 0; type && i < m->n_types; i++)
        if (strcmp(m->types[i].type, type) == 0)
            return &m->types[i];
    return NULL;
}

gm_status gm_cost_market_add_type(gm_cost_market *m, const char *type, gm_error *err)
{
    if (!type_name_ok(type))
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid instance type '%s': expected a name like 't3.xlarge'",
                            type ? type : "");
    if (gm_cost_market_type(m, type))
        return GM_OK;
    if (m->n_types == GM_COST_MAX_TYPES)
        return gm_error_set(err, GM_ERR_LIMIT, "at most %d candidate instance types",
                            GM_COST_MAX_TYPES);
    gm_cost_type *t = &m->types[m->n_types++];
    memset(t, 0, sizeof *t);
    snprintf(t->type, sizeof t->type, "%s", type);
    const gm_instance_info *row = gm_cost_table_lookup(type);
    if (row) {
        t->vcpus = row->vcpus;
        t->memory_mib = row->memory_mib;
        t->nvidia_gpus = row->nvidia_gpus;
        snprintf(t->specs_source, sizeof t->specs_source, "%s", GM_COST_TABLE_SOURCE);
        t->on_demand = row->on_demand;
        snprintf(t->on_demand_source, sizeof t->on_demand_source, "%s", GM_COST_TABLE_SOURCE);
    } else {
        t->nvidia_gpus = -1;
        t->on_demand = -1;
    }
    return GM_OK;
}

int gm_cost_market_az_index(const gm_cost_market *m, const char *az)
{
    for (size_t i = 0; az && i < m->n_azs; i++)
        if (strcmp(m->azs[i], az) == 0)
            return (int)i;
    return -1;
}

gm_status gm_cost_market_add_az(gm_cost_market *m, const char *az, size_t *out_index, gm_error *err)
{
    if (!az || !*az || strlen(az) >= GM_COST_AZ_MAX)
        return gm_error_set(err, GM_ERR_INVALID, "invalid availability zone '%s'", az ? az : "");
    int have = gm_cost_market_az_index(m, az);
    if (have >= 0) {
        if (out_index)
            *out_index = (size_t)have;
        return GM_OK;
    }
    if (m->n_azs == GM_COST_MAX_AZS)
        return gm_error_set(err, GM_ERR_LIMIT, "more than %d availability zones", GM_COST_MAX_AZS);
    size_t pos = 0;
    while (pos < m->n_azs && strcmp(m->azs[pos], az) < 0)
        pos++;
    memmove(m->azs[pos + 1], m->azs[pos], (m->n_azs - pos) * sizeof m->azs[0]);
    snprintf(m->azs[pos], sizeof m->azs[pos], "%s", az);
    for (size_t t = 0; t < m->n_types; t++) {
        bool *o = m->types[t].offered;
        memmove(o + pos + 1, o + pos, (m->n_azs - pos) * sizeof *o);
        o[pos] = false;
    }
    m->n_azs++;
    if (out_index)
        *out_index = pos;
    return GM_OK;
}

gm_status gm_cost_market_set_offered(gm_cost_market *m, const char *type, const char *az,
                                     bool add_zone, gm_error *err)
{
    gm_cost_type *t = gm_cost_market_type(m, type);
    m->offerings_known = true;
    if (!t)
        return GM_OK;
    int idx = gm_cost_market_az_index(m, az);
    if (idx < 0 && add_zone) {
        size_t pos;
        gm_status st = gm_cost_market_add_az(m, az, &pos, err);
        if (st != GM_OK)
            return st;
        idx = (int)pos;
    }
    if (idx >= 0)
        t->offered[idx] = true;
    return GM_OK;
}

/* ---- parsers --------------------------------------------------------------------- */

static char *next_token(xmlNodePtr root)
{
    char *t = gm_xml_child(root, "nextToken") ? gm_xml_text(root, "nextToken") : NULL;
    if (t && *gm_str_trim(t))
        return t;
    free(t);
    return NULL;
}

gm_status gm_cost_parse_offerings(xmlDocPtr doc, gm_cost_market *m, bool add_zones,
                                  char **out_next_token, gm_error *err)
{
    if (out_next_token)
        *out_next_token = NULL;
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNodePtr set = root ? gm_xml_find(root, "instanceTypeOfferingSet") : NULL;
    if (!set)
        return gm_error_set(err, GM_ERR_PARSE,
                            "instance type offerings answer has no instanceTypeOfferingSet");
    m->offerings_known = true;
    GM_XML_FOREACH (item, set, "item") {
        char type[GM_COST_TYPE_MAX], loc[GM_COST_AZ_MAX];
        gm_xml_text_to(item, "instanceType", type, sizeof type);
        gm_xml_text_to(item, "location", loc, sizeof loc);
        gm_str_trim(type);
        gm_str_trim(loc);
        if (!*type || !*loc)
            continue;
        gm_error lerr = {0};
        gm_status st = gm_cost_market_set_offered(m, type, loc, add_zones, &lerr);
        if (st == GM_ERR_LIMIT) {
            if (!gm_str_startswith(m->notes[m->n_notes ? m->n_notes - 1 : 0], "more than"))
                gm_cost_market_note(m,
                                    "more than %d zones offer the candidates: the rest are "
                                    "not considered",
                                    GM_COST_MAX_AZS);
            continue;
        }
        if (st != GM_OK)
            return gm_error_set(err, st, "%s", lerr.message);
    }
    if (out_next_token)
        *out_next_token = next_token(root);
    return GM_OK;
}

gm_status gm_cost_parse_instance_types(xmlDocPtr doc, gm_cost_market *m, gm_error *err)
{
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNodePtr set = root ? gm_xml_find(root, "instanceTypeSet") : NULL;
    if (!set)
        return gm_error_set(err, GM_ERR_PARSE, "instance types answer has no instanceTypeSet");
    GM_XML_FOREACH (item, set, "item") {
        char type[GM_COST_TYPE_MAX], vcpus[16], mem[24];
        gm_xml_text_to(item, "instanceType", type, sizeof type);
        gm_xml_text_to(item, "vCpuInfo/defaultVCpus", vcpus, sizeof vcpus);
        gm_xml_text_to(item, "memoryInfo/sizeInMiB", mem, sizeof mem);
        gm_cost_type *t = gm_cost_market_type(m, gm_str_trim(type));
        long v = strtol(vcpus, NULL, 10), mib = strtol(mem, NULL, 10);
        if (!t || v <= 0 || v > 100000 || mib <= 0 || mib > 100000000)
            continue;
        int gpus = 0;
        xmlNodePtr list = gm_xml_path(item, "gpuInfo/gpus");
        GM_XML_FOREACH (g, list, "item") {
            char maker[32], count[16];
            gm_xml_text_to(g, "manufacturer", maker, sizeof maker);
            gm_xml_text_to(g, "count", count, sizeof count);
            long c = strtol(count, NULL, 10);
            if (strcmp(gm_str_trim(maker), "NVIDIA") == 0 && c > 0 && c < 1000)
                gpus += (int)c;
        }
        t->vcpus = (int)v;
        t->memory_mib = (int)mib;
        t->nvidia_gpus = gpus;
        snprintf(t->specs_source, sizeof t->specs_source, "describe instance types");
    }
    return GM_OK;
}

/* ---- gathering ----------------------------------------------------------------- */

static void add_list(gm_params *p, const char *fmt_prefix, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gm_params_addf(p, v[i], "%s%zu", fmt_prefix, i + 1);
}

static GM_MUST_CHECK gm_status gather_offerings(const gm_cost_gather_options *o, gm_cost_market *m,
                                                const char *const *types, gm_error *err)
{
    char *token = NULL;
    gm_status st = GM_OK;
    for (int page = 0; page < GM_COST_MAX_PAGES; page++) {
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "LocationType", "availability-zone");
        gm_params_add(&p, "Filter.1.Name", "instance-type");
        add_list(&p, "Filter.1.Value.", types, m->n_types);
        if (o->n_azs) {
            gm_params_add(&p, "Filter.2.Name", "location");
            add_list(&p, "Filter.2.Value.", o->azs, o->n_azs);
        }
        if (token)
            gm_params_add(&p, "NextToken", token);
        xmlDocPtr doc = NULL;
        st = gm_aws_query(o->aws, &gm_svc_ec2, "DescribeInstanceTypeOfferings", &p, &doc, err);
        gm_params_release(&p);
        if (st != GM_OK)
            break;
        char *next = NULL;
        st = gm_cost_parse_offerings(doc, m, o->n_azs == 0, &next, err);
        xmlFreeDoc(doc);
        bool repeat = next && token && strcmp(next, token) == 0;
        free(token);
        token = next;
        if (st != GM_OK || !token || repeat)
            break;
    }
    free(token);
    return st;
}

/* The candidates offered in at least one zone considered (all of them when
 * the offerings are unknown): AWS refuses a whole call naming a type that the
 * region does not have. */
static size_t offered_types(const gm_cost_market *m, const char **out)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_types; i++) {
        bool offered = !m->offerings_known;
        for (size_t a = 0; a < m->n_azs && !offered; a++)
            offered = m->types[i].offered[a];
        if (offered)
            out[n++] = m->types[i].type;
    }
    return n;
}

static void gather_specs(const gm_cost_gather_options *o, gm_cost_market *m,
                         const char *const *types, size_t n)
{
    if (n == 0)
        return;
    gm_params p;
    gm_params_init(&p);
    gm_error err = {0};
    add_list(&p, "InstanceType.", types, n);
    xmlDocPtr doc = NULL;
    gm_status st = gm_aws_query(o->aws, &gm_svc_ec2, "DescribeInstanceTypes", &p, &doc, &err);
    gm_params_release(&p);
    if (st == GM_OK)
        st = gm_cost_parse_instance_types(doc, m, &err);
    xmlFreeDoc(doc);
    if (st != GM_OK)
        gm_cost_market_note(m, "instance specs from the %s: %s", GM_COST_TABLE_SOURCE, err.message);
}

static void gather_spot(const gm_cost_gather_options *o, gm_cost_market *m,
                        const char *const *types, size_t n)
{
    gm_error err = {0};
    char now[32];
    gm_time_iso8601(time(NULL), now);
    gm_status st = gm_cost_fetch_spot_prices(o->aws, types, n, o->azs, o->n_azs, &m->spot, &err);
    if (st == GM_OK) {
        m->spot_known = true;
        snprintf(m->spot_source, sizeof m->spot_source, "spot price history %s", now);
    } else {
        gm_spot_prices_release(&m->spot);
        gm_spot_prices_init(&m->spot);
        snprintf(m->spot_error, sizeof m->spot_error, "spot prices unavailable: %.280s",
                 err.message);
    }
}

static void gather_on_demand(const gm_cost_gather_options *o, gm_cost_market *m)
{
    bool table_used = false;
    if (o->pricing) {
        char today[32];
        gm_time_iso8601(time(NULL), today);
        today[10] = '\0';
        const char *offered[GM_COST_MAX_TYPES];
        size_t n_offered = offered_types(m, offered);
        for (size_t i = 0; i < n_offered; i++) {
            gm_cost_type *t = gm_cost_market_type(m, offered[i]);
            gm_error err = {0};
            double v = -1;
            gm_status st = gm_cost_fetch_on_demand(o->pricing, m->region, t->type, &v, &err);
            if (st == GM_OK) {
                t->on_demand = v;
                snprintf(t->on_demand_source, sizeof t->on_demand_source, "price list api %s",
                         today);
                continue;
            }
            if (st == GM_ERR_NOT_FOUND) {
                gm_cost_market_note(m, "the price list api has no on-demand price for '%s'%s",
                                    t->type, t->on_demand >= 0 ? ": using the shipped table" : "");
                continue;
            }
            gm_cost_market_note(m, "on-demand prices from the %s: price list api: %s",
                                GM_COST_TABLE_SOURCE, err.message);
            break;
        }
    }
    for (size_t i = 0; i < m->n_types; i++)
        if (m->types[i].on_demand >= 0 &&
            gm_str_startswith(m->types[i].on_demand_source, "shipped"))
            table_used = true;
    if (table_used && strcmp(m->region, "us-east-1") != 0)
        gm_cost_market_note(m, "the shipped table holds us-east-1 prices: prices in %s may differ",
                            m->region);
}

typedef enum { GATHER_SPECS, GATHER_SPOT, GATHER_ON_DEMAND } gather_kind;

typedef struct gather_job {
    const gm_cost_gather_options *o;
    gm_cost_market *m;
    gather_kind kind;
} gather_job;

static void *gather_one(void *arg)
{
    gather_job *j = arg;
    const char *offered[GM_COST_MAX_TYPES];
    size_t n_offered = offered_types(j->m, offered);
    switch (j->kind) {
    case GATHER_SPECS: gather_specs(j->o, j->m, offered, n_offered); break;
    case GATHER_SPOT:
        if (j->o->skip_spot)
            snprintf(j->m->spot_error, sizeof j->m->spot_error,
                     "spot not considered (on-demand only)");
        else if (n_offered)
            gather_spot(j->o, j->m, offered, n_offered);
        break;
    case GATHER_ON_DEMAND: gather_on_demand(j->o, j->m); break;
    }
    return NULL;
}

gm_status gm_cost_market_gather(const gm_cost_gather_options *o, gm_cost_market *m, gm_error *err)
{
    if (!o || !o->aws || m->n_types == 0)
        return gm_error_set(err, GM_ERR_INVALID, "no candidate instance types to price");
    const char *types[GM_COST_MAX_TYPES];
    for (size_t i = 0; i < m->n_types; i++)
        types[i] = m->types[i].type;
    for (size_t i = 0; i < o->n_azs; i++) {
        gm_status st = gm_cost_market_add_az(m, o->azs[i], NULL, err);
        if (st != GM_OK)
            return st;
    }
    gm_status st = gather_offerings(o, m, types, err);
    if (st != GM_OK) {
        gm_error_prefix(err, "cannot list the zones offering the candidate instance types");
        return st;
    }
    /* Specs, spot prices and on-demand prices are independent (each writes
     * its own fields; notes are locked): one round trip for the three. */
    gather_job jobs[3] = {{o, m, GATHER_SPECS}, {o, m, GATHER_SPOT}, {o, m, GATHER_ON_DEMAND}};
    pthread_t threads[3];
    bool started[3] = {false, false, false};
    for (int i = 0; i < 3 && !o->sequential; i++)
        started[i] = pthread_create(&threads[i], NULL, gather_one, &jobs[i]) == 0;
    for (int i = 0; i < 3; i++) {
        if (started[i])
            pthread_join(threads[i], NULL);
        else
            gather_one(&jobs[i]); /* no thread to be had: in this one */
    }
    return GM_OK;
}

gm_status gm_cost_market_for(const gm_cost_gather_options *o, const char *const *types,
                             size_t n_types, gm_cost_market **out, gm_error *err)
{
    *out = NULL;
    gm_cost_market *m = calloc(1, sizeof *m);
    if (!m)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_cost_market_init(m, gm_aws_client_region(o->aws));
    gm_status st = GM_OK;
    for (size_t i = 0; i < n_types && st == GM_OK; i++)
        st = gm_cost_market_add_type(m, types[i], err);
    if (st == GM_OK)
        st = gm_cost_market_gather(o, m, err);
    if (st != GM_OK) {
        gm_cost_market_free(m);
        return st;
    }
    *out = m;
    return GM_OK;
}

void gm_cost_market_free(gm_cost_market *m)
{
    if (!m)
        return;
    gm_cost_market_release(m);
    free(m);
}
