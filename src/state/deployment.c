/* The deployment record and its JSON form.
 *
 * JSON layout, schema version 2 (keys written in this order; stable):
 *
 *   {
 *     "schema_version": 2,
 *     "name":          str, 1..63 bytes
 *     "tier":          str, 1..15 bytes ("dev", "automation", "gpu")
 *     "region":        str, 1..31 bytes
 *     "deployment_id": str, GM_DEPLOYMENT_ID_LEN of [a-z0-9] | null (made before ids)
 *     "status":        "creating" | "running" | "failed" | "rolling_back" |
 *                      "destroying" | "destroyed" | "partial"
 *                      | "stopped"
 *     "status_reason": str | null
 *     "created_at":    int, epoch ms, >= 0
 *     "updated_at":    int, epoch ms, >= 0
 *     "config":        {}   (deploy options, never secrets)
 *     "cost":          {}   (cost snapshot)
 *     "nodes": [            (graph order; preserved)
 *       {
 *         "name":       str, 1..63 bytes, unique among nodes
 *         "kind":       str, 1..31 bytes
 *         "id":         str | null
 *         "provenance": "created" | "reused"
 *         "status":     "pending" | "creating" | "created" | "failed" |
 *                       "deleting" | "deleted"
 *         "token":      str, 0..95 bytes
 *         "created_at": int, "updated_at": int (epoch ms, >= 0; 0 unknown)
 *         "outputs":    {}
 *         "error":      str | null
 *       }, ...
 *     ],
 *     "events": [ {"ts": int, "type": str, "node": str (optional), "message": str}, ... ]
 *   }
 *
 * Reading is strict: a wrong type, an unknown enum value, an unknown key, a
 * missing required key or an over-long string is refused with GM_ERR_PARSE and
 * a message naming the field ("state field 'nodes[2].status' has unknown value
 * 'bogus'"). Unknown keys are refused rather than dropped because a mistyped
 * "provenance" silently ignored would let destroy delete a reused resource.
 * Optional on read: status_reason, config, cost, events (top level) and id,
 * token, created_at, updated_at, error (nodes).
 *
 * Versions: schema version 0 is the same layout without "schema_version",
 * where a node may lack "provenance" (meaning "created") and "outputs"
 * (meaning {}); version 1 lacks "deployment_id" (its resources carry no id
 * tag: they are known by the name tag alone). Older documents are brought up to date by the
 * functions of migrations[] (entry N turns version N into N+1), applied in order to a copy of the
 * JSON before it is parsed. A newer version than GM_STATE_SCHEMA_VERSION is refused with
 * GM_ERR_CONFLICT.
 */
#include "state/deployment.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/str.h"
#include "core/timeutil.h"

#define EVENTS_MAX 1000
#define EVENT_MESSAGE_MAX 2048 /* longer event messages are truncated */
#define FIELD_MAX 96           /* "nodes[123456].created_at" */

/* ---- enums ---------------------------------------------------------------- */

static const char *const dep_status_names[] = {
    [GM_DEP_CREATING] = "creating",     [GM_DEP_RUNNING] = "running",
    [GM_DEP_FAILED] = "failed",         [GM_DEP_ROLLING_BACK] = "rolling_back",
    [GM_DEP_DESTROYING] = "destroying", [GM_DEP_DESTROYED] = "destroyed",
    [GM_DEP_PARTIAL] = "partial",       [GM_DEP_STOPPED] = "stopped",
};

static const char *const node_status_names[] = {
    [GM_NODE_PENDING] = "pending", [GM_NODE_CREATING] = "creating", [GM_NODE_CREATED] = "created",
    [GM_NODE_FAILED] = "failed",   [GM_NODE_DELETING] = "deleting", [GM_NODE_DELETED] = "deleted",
};

static const char *const provenance_names[] = {
    [GM_PROV_CREATED] = "created",
    [GM_PROV_REUSED] = "reused",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int enum_parse(const char *const *names, size_t n, const char *s)
{
    if (!s)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (names[i] && strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

const char *gm_dep_status_name(gm_dep_status s)
{
    if ((size_t)s < COUNT(dep_status_names) && dep_status_names[s])
        return dep_status_names[s];
    return "unknown";
}

gm_status gm_dep_status_parse(const char *s, gm_dep_status *out)
{
    int v = enum_parse(dep_status_names, COUNT(dep_status_names), s);
    if (v < 0)
        return GM_ERR_INVALID;
    *out = (gm_dep_status)v;
    return GM_OK;
}

const char *gm_node_status_name(gm_node_status s)
{
    if ((size_t)s < COUNT(node_status_names) && node_status_names[s])
        return node_status_names[s];
    return "unknown";
}

gm_status gm_node_status_parse(const char *s, gm_node_status *out)
{
    int v = enum_parse(node_status_names, COUNT(node_status_names), s);
    if (v < 0)
        return GM_ERR_INVALID;
    *out = (gm_node_status)v;
    return GM_OK;
}

static const char *provenance_name(gm_provenance p)
{
    if ((size_t)p < COUNT(provenance_names))
        return provenance_names[p];
    return "unknown";
}

/* ---- helpers -------------------------------------------------------------- */

/* Copies s into a fixed array of size cap; false when it does not fit. */
static bool copy_fixed(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap)
        return false;
    memcpy(dst, s, n + 1);
    return true;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is invalid. */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    unsigned cp = c & (0x3fu >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A JSON string for s (null for NULL). Bytes that are not valid UTF-8 become
 * '?', so an AWS message with odd bytes can still be saved. */
static json_t *jstr(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    unsigned char *p = (unsigned char *)copy;
    while (*p) {
        size_t n = utf8_seq(p);
        if (n == 0) {
            *p++ = '?';
        } else {
            p += n;
        }
    }
    j = json_string(copy);
    free(copy);
    return j;
}

/* Sets key to value (taken); false when value is NULL or the set fails. */
static bool put(json_t *o, const char *key, json_t *value)
{
    return value && json_object_set_new(o, key, value) == 0;
}

static json_t *copy_or_empty_object(const json_t *j)
{
    return json_is_object(j) ? json_deep_copy(j) : json_object();
}

/* ---- record --------------------------------------------------------------- */

gm_deployment *gm_deployment_new(const char *name, const char *tier, const char *region)
{
    if (!name || !*name || !tier || !*tier || !region || !*region)
        return NULL;
    gm_deployment *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->schema_version = GM_STATE_SCHEMA_VERSION;
    if (!copy_fixed(d->name, sizeof d->name, name) || !copy_fixed(d->tier, sizeof d->tier, tier) ||
        !copy_fixed(d->region, sizeof d->region, region))
        goto error;
    d->status = GM_DEP_CREATING;
    d->created_at = d->updated_at = gm_wall_ms();
    d->config = json_object();
    d->cost = json_object();
    d->events = json_array();
    if (!d->config || !d->cost || !d->events)
        goto error;
    return d;
error:
    gm_deployment_free(d);
    return NULL;
}

static void node_release(gm_node_state *n)
{
    free(n->id);
    free(n->error);
    json_decref(n->outputs);
    n->id = NULL;
    n->error = NULL;
    n->outputs = NULL;
}

void gm_deployment_free(gm_deployment *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_nodes; i++)
        node_release(&d->nodes[i]);
    free(d->nodes);
    free(d->status_reason);
    json_decref(d->config);
    json_decref(d->cost);
    json_decref(d->events);
    free(d);
}

gm_node_state *gm_deployment_node(gm_deployment *d, const char *name)
{
    if (!d || !name)
        return NULL;
    for (size_t i = 0; i < d->n_nodes; i++)
        if (strcmp(d->nodes[i].name, name) == 0)
            return &d->nodes[i];
    return NULL;
}

gm_node_state *gm_deployment_ensure_node(gm_deployment *d, const char *name, const char *kind)
{
    if (!d || !name || !*name || !kind || !*kind)
        return NULL;
    gm_node_state *found = gm_deployment_node(d, name);
    if (found)
        return found;
    gm_node_state n = {0};
    if (!copy_fixed(n.name, sizeof n.name, name) || !copy_fixed(n.kind, sizeof n.kind, kind))
        return NULL;
    n.provenance = GM_PROV_CREATED;
    n.status = GM_NODE_PENDING;
    n.updated_at = gm_wall_ms();
    n.outputs = json_object();
    if (!n.outputs)
        return NULL;
    gm_node_state *nodes = realloc(d->nodes, (d->n_nodes + 1) * sizeof *nodes);
    if (!nodes) {
        json_decref(n.outputs);
        return NULL;
    }
    d->nodes = nodes;
    d->nodes[d->n_nodes] = n;
    return &d->nodes[d->n_nodes++];
}

gm_status gm_node_state_set_id(gm_node_state *n, const char *id)
{
    if (!n)
        return GM_ERR_INVALID;
    gm_status st = gm_str_set(&n->id, id);
    if (st == GM_OK)
        n->updated_at = gm_wall_ms();
    return st;
}

gm_status gm_node_state_set_error(gm_node_state *n, const char *message)
{
    if (!n)
        return GM_ERR_INVALID;
    gm_status st = gm_str_set(&n->error, message);
    if (st == GM_OK)
        n->updated_at = gm_wall_ms();
    return st;
}

/* Drops the oldest events until at most keep remain. */
static void events_trim(json_t *events, size_t keep)
{
    size_t n = json_array_size(events);
    if (n <= keep)
        return;
    /* Rebuilding is linear; removing from the front one by one is not. */
    json_t *kept = json_array();
    if (!kept) {
        while (json_array_size(events) > keep)
            json_array_remove(events, 0);
        return;
    }
    for (size_t i = n - keep; i < n; i++)
        json_array_append(kept, json_array_get(events, i));
    json_array_clear(events);
    json_array_extend(events, kept);
    json_decref(kept);
}

void gm_deployment_add_event(gm_deployment *d, const char *type, const char *node, const char *fmt,
                             ...)
{
    if (!d || !type || !fmt)
        return;
    if (!json_is_array(d->events)) {
        json_decref(d->events);
        d->events = json_array();
        if (!d->events)
            return;
    }
    char message[EVENT_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (n < 0)
        message[0] = '\0';

    json_t *e = json_object();
    if (!e)
        return;
    bool ok = put(e, "ts", json_integer(gm_wall_ms())) && put(e, "type", jstr(type)) &&
              (!node || put(e, "node", jstr(node))) && put(e, "message", jstr(message));
    if (!ok) {
        json_decref(e);
        return;
    }
    events_trim(d->events, EVENTS_MAX - 1);
    json_array_append_new(d->events, e);
}

/* ---- to JSON -------------------------------------------------------------- */

static json_t *node_to_json(const gm_node_state *n)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    bool ok =
        put(o, "name", jstr(n->name)) && put(o, "kind", jstr(n->kind)) &&
        put(o, "id", jstr(n->id)) &&
        put(o, "provenance", json_string(provenance_name(n->provenance))) &&
        put(o, "status", json_string(gm_node_status_name(n->status))) &&
        put(o, "token", jstr(n->token)) && put(o, "created_at", json_integer(n->created_at)) &&
        put(o, "updated_at", json_integer(n->updated_at)) &&
        put(o, "outputs", copy_or_empty_object(n->outputs)) && put(o, "error", jstr(n->error));
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

bool gm_deployment_id_valid(const char *id)
{
    if (!id || strlen(id) != GM_DEPLOYMENT_ID_LEN)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

json_t *gm_deployment_to_json(const gm_deployment *d)
{
    if (!d)
        return NULL;
    json_t *o = json_object();
    json_t *nodes = json_array();
    if (!o || !nodes || (d->n_nodes && !d->nodes))
        goto error;
    for (size_t i = 0; i < d->n_nodes; i++)
        if (json_array_append_new(nodes, node_to_json(&d->nodes[i])) != 0)
            goto error;
    bool ok =
        put(o, "schema_version", json_integer(GM_STATE_SCHEMA_VERSION)) &&
        put(o, "name", jstr(d->name)) && put(o, "tier", jstr(d->tier)) &&
        put(o, "region", jstr(d->region)) &&
        put(o, "deployment_id", *d->deployment_id ? json_string(d->deployment_id) : json_null()) &&
        put(o, "status", json_string(gm_dep_status_name(d->status))) &&
        put(o, "status_reason", jstr(d->status_reason)) &&
        put(o, "created_at", json_integer(d->created_at)) &&
        put(o, "updated_at", json_integer(d->updated_at)) &&
        put(o, "config", copy_or_empty_object(d->config)) &&
        put(o, "cost", copy_or_empty_object(d->cost));
    if (!ok)
        goto error;
    ok = put(o, "nodes", nodes);
    nodes = NULL; /* taken, even on failure */
    if (!ok)
        goto error;
    if (!put(o, "events", json_is_array(d->events) ? json_deep_copy(d->events) : json_array()))
        goto error;
    return o;
error:
    json_decref(nodes);
    json_decref(o);
    return NULL;
}

/* ---- migrations ----------------------------------------------------------- */

/* Migrates a document of version N (its index here) to N+1, in place. It may
 * assume nothing about types: anything odd is left for the parser to name. */
typedef gm_status (*migrate_fn)(json_t *doc, gm_error *err);

static GM_MUST_CHECK gm_status migrate_v0_to_v1(json_t *doc, gm_error *err)
{
    json_t *nodes = json_object_get(doc, "nodes");
    size_t i;
    json_t *n;
    json_array_foreach (nodes, i, n) {
        if (!json_is_object(n))
            continue;
        if (!json_object_get(n, "provenance") &&
            json_object_set_new(n, "provenance", json_string("created")) != 0)
            return gm_error_set(err, GM_ERR_NOMEM, "out of memory migrating state");
        if (!json_object_get(n, "outputs") && json_object_set_new(n, "outputs", json_object()) != 0)
            return gm_error_set(err, GM_ERR_NOMEM, "out of memory migrating state");
    }
    return GM_OK;
}

/* Version 1 had no deployment id. */
static GM_MUST_CHECK gm_status migrate_v1_to_v2(json_t *doc, gm_error *err)
{
    if (!json_object_get(doc, "deployment_id") &&
        json_object_set_new(doc, "deployment_id", json_null()) != 0)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory migrating state");
    return GM_OK;
}

static const migrate_fn migrations[] = {
    migrate_v0_to_v1,
    migrate_v1_to_v2,
};

_Static_assert(COUNT(migrations) == GM_STATE_SCHEMA_VERSION,
               "one migration per schema version step");

/* ---- from JSON ------------------------------------------------------------ */

typedef struct field_spec {
    const char *key;
    bool required;
} field_spec;

static const field_spec top_fields[] = {
    {"schema_version", false}, {"name", true},    {"tier", true},           {"region", true},
    {"deployment_id", false},  {"status", true},  {"status_reason", false}, {"created_at", true},
    {"updated_at", true},      {"config", false}, {"cost", false},          {"nodes", true},
    {"events", false},
};

static const field_spec node_fields[] = {
    {"name", true},    {"kind", true},   {"id", false},         {"provenance", true},
    {"status", true},  {"token", false}, {"created_at", false}, {"updated_at", false},
    {"outputs", true}, {"error", false},
};

static GM_MUST_CHECK gm_status bad(gm_error *err, const char *field, const char *problem)
{
    return gm_error_set(err, GM_ERR_PARSE, "state field '%s' %s", field, problem);
}

static void field_name(char out[FIELD_MAX], const char *prefix, const char *key)
{
    /* A field path longer than FIELD_MAX is cut: it only names a field in a
     * message. */
    int n = prefix ? snprintf(out, FIELD_MAX, "%s.%s", prefix, key)
                   : snprintf(out, FIELD_MAX, "%s", key);
    if (n < 0)
        out[0] = '\0';
}

/* Refuses keys that are not in the spec and required keys that are missing. */
static GM_MUST_CHECK gm_status check_keys(json_t *o, const char *prefix, const field_spec *spec,
                                          size_t n, gm_error *err)
{
    char field[FIELD_MAX];
    const char *key;
    json_t *v;
    json_object_foreach (o, key, v) {
        size_t i = 0;
        while (i < n && strcmp(spec[i].key, key) != 0)
            i++;
        if (i == n) {
            if (prefix)
                return gm_error_set(err, GM_ERR_PARSE, "state field '%s' has unknown key '%.64s'",
                                    prefix, key);
            return gm_error_set(err, GM_ERR_PARSE, "state has unknown field '%.64s'", key);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (spec[i].required && !json_object_get(o, spec[i].key)) {
            field_name(field, prefix, spec[i].key);
            return bad(err, field, "is missing");
        }
    }
    return GM_OK;
}

/* A string field; *out is NULL when absent (or null with allow_null). */
static GM_MUST_CHECK gm_status get_str(json_t *o, const char *prefix, const char *key,
                                       bool allow_null, const char **out, gm_error *err)
{
    char field[FIELD_MAX];
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || (allow_null && json_is_null(v)))
        return GM_OK;
    field_name(field, prefix, key);
    if (!json_is_string(v))
        return bad(err, field, allow_null ? "must be a string or null" : "must be a string");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return bad(err, field, "contains a NUL byte");
    *out = json_string_value(v);
    return GM_OK;
}

/* A required-or-defaulted string copied into a fixed array. */
static GM_MUST_CHECK gm_status get_fixed(json_t *o, const char *prefix, const char *key,
                                         bool nonempty, char *dst, size_t cap, gm_error *err)
{
    const char *s;
    gm_status st = get_str(o, prefix, key, false, &s, err);
    if (st != GM_OK || !s)
        return st;
    char field[FIELD_MAX];
    field_name(field, prefix, key);
    if (nonempty && !*s)
        return bad(err, field, "is empty");
    if (!copy_fixed(dst, cap, s))
        return gm_error_set(err, GM_ERR_PARSE, "state field '%s' is too long (at most %zu bytes)",
                            field, cap - 1);
    return GM_OK;
}

static GM_MUST_CHECK gm_status get_dup(json_t *o, const char *prefix, const char *key, char **dst,
                                       gm_error *err)
{
    const char *s;
    gm_status st = get_str(o, prefix, key, true, &s, err);
    if (st != GM_OK || !s)
        return st;
    *dst = strdup(s);
    if (!*dst)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory reading state");
    return GM_OK;
}

static GM_MUST_CHECK gm_status get_time(json_t *o, const char *prefix, const char *key,
                                        int64_t *out, gm_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return GM_OK;
    char field[FIELD_MAX];
    field_name(field, prefix, key);
    if (!json_is_integer(v))
        return bad(err, field, "must be an integer");
    if (json_integer_value(v) < 0)
        return bad(err, field, "must not be negative");
    *out = (int64_t)json_integer_value(v);
    return GM_OK;
}

static GM_MUST_CHECK gm_status get_enum(json_t *o, const char *prefix, const char *key,
                                        const char *const *names, size_t n, int *out, gm_error *err)
{
    const char *s;
    gm_status st = get_str(o, prefix, key, false, &s, err);
    if (st != GM_OK || !s)
        return st;
    int v = enum_parse(names, n, s);
    if (v < 0) {
        char field[FIELD_MAX];
        field_name(field, prefix, key);
        return gm_error_set(err, GM_ERR_PARSE, "state field '%s' has unknown value '%.64s'", field,
                            s);
    }
    *out = v;
    return GM_OK;
}

/* An object field, deep-copied into *dst; {} when absent. */
static GM_MUST_CHECK gm_status get_object(json_t *o, const char *prefix, const char *key,
                                          json_t **dst, gm_error *err)
{
    json_t *v = json_object_get(o, key);
    if (v && !json_is_object(v)) {
        char field[FIELD_MAX];
        field_name(field, prefix, key);
        return bad(err, field, "must be an object");
    }
    *dst = v ? json_deep_copy(v) : json_object();
    if (!*dst)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory reading state");
    return GM_OK;
}

static GM_MUST_CHECK gm_status parse_node(json_t *j, size_t index, gm_node_state *n, gm_error *err)
{
    char prefix[FIELD_MAX];
    snprintf(prefix, sizeof prefix, "nodes[%zu]", index);
    if (!json_is_object(j))
        return bad(err, prefix, "must be an object");
    gm_status st = check_keys(j, prefix, node_fields, COUNT(node_fields), err);
    int prov = GM_PROV_CREATED, status = GM_NODE_PENDING;
    if (st == GM_OK)
        st = get_fixed(j, prefix, "name", true, n->name, sizeof n->name, err);
    if (st == GM_OK)
        st = get_fixed(j, prefix, "kind", true, n->kind, sizeof n->kind, err);
    if (st == GM_OK)
        st = get_dup(j, prefix, "id", &n->id, err);
    if (st == GM_OK)
        st = get_enum(j, prefix, "provenance", provenance_names, COUNT(provenance_names), &prov,
                      err);
    if (st == GM_OK)
        st = get_enum(j, prefix, "status", node_status_names, COUNT(node_status_names), &status,
                      err);
    if (st == GM_OK)
        st = get_fixed(j, prefix, "token", false, n->token, sizeof n->token, err);
    if (st == GM_OK)
        st = get_time(j, prefix, "created_at", &n->created_at, err);
    if (st == GM_OK)
        st = get_time(j, prefix, "updated_at", &n->updated_at, err);
    if (st == GM_OK)
        st = get_object(j, prefix, "outputs", &n->outputs, err);
    if (st == GM_OK)
        st = get_dup(j, prefix, "error", &n->error, err);
    n->provenance = (gm_provenance)prov;
    n->status = (gm_node_status)status;
    return st;
}

static int cmp_node_index(const void *a, const void *b, void *ctx)
{
    const gm_node_state *nodes = ctx;
    return strcmp(nodes[*(const size_t *)a].name, nodes[*(const size_t *)b].name);
}

/* Node names must be unique (lookups return the first); n log n for big files. */
static GM_MUST_CHECK gm_status check_unique_nodes(const gm_deployment *d, gm_error *err)
{
    if (d->n_nodes < 2)
        return GM_OK;
    size_t *idx = malloc(d->n_nodes * sizeof *idx);
    if (!idx)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory reading state");
    for (size_t i = 0; i < d->n_nodes; i++)
        idx[i] = i;
    qsort_r(idx, d->n_nodes, sizeof *idx, cmp_node_index, d->nodes);
    gm_status st = GM_OK;
    for (size_t i = 1; i < d->n_nodes; i++) {
        if (strcmp(d->nodes[idx[i - 1]].name, d->nodes[idx[i]].name) == 0) {
            size_t later = idx[i] > idx[i - 1] ? idx[i] : idx[i - 1];
            char field[FIELD_MAX];
            snprintf(field, sizeof field, "nodes[%zu].name", later);
            st = gm_error_set(err, GM_ERR_PARSE, "state field '%s' repeats node name '%s'", field,
                              d->nodes[later].name);
            break;
        }
    }
    free(idx);
    return st;
}

static GM_MUST_CHECK gm_status parse_events(json_t *events, json_t **dst, gm_error *err)
{
    char field[FIELD_MAX];
    if (!events) {
        *dst = json_array();
        return *dst ? GM_OK : gm_error_set(err, GM_ERR_NOMEM, "out of memory reading state");
    }
    if (!json_is_array(events))
        return bad(err, "events", "must be an array");
    size_t i;
    json_t *e;
    json_array_foreach (events, i, e) {
        snprintf(field, sizeof field, "events[%zu]", i);
        if (!json_is_object(e))
            return bad(err, field, "must be an object");
        const char *s;
        int64_t ts = 0;
        gm_status st = GM_OK;
        if (!json_object_get(e, "ts") || !json_object_get(e, "type") ||
            !json_object_get(e, "message")) {
            const char *key = !json_object_get(e, "ts")     ? "ts"
                              : !json_object_get(e, "type") ? "type"
                                                            : "message";
            char f2[FIELD_MAX];
            field_name(f2, field, key);
            return bad(err, f2, "is missing");
        }
        st = get_time(e, field, "ts", &ts, err);
        if (st == GM_OK)
            st = get_str(e, field, "type", false, &s, err);
        if (st == GM_OK)
            st = get_str(e, field, "node", false, &s, err);
        if (st == GM_OK)
            st = get_str(e, field, "message", false, &s, err);
        if (st != GM_OK)
            return st;
    }
    *dst = json_deep_copy(events);
    if (!*dst)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory reading state");
    events_trim(*dst, EVENTS_MAX);
    return GM_OK;
}

static GM_MUST_CHECK gm_status parse_current(json_t *j, gm_deployment **out, gm_error *err)
{
    gm_status st = check_keys(j, NULL, top_fields, COUNT(top_fields), err);
    if (st != GM_OK)
        return st;
    gm_deployment *d = calloc(1, sizeof *d);
    if (!d)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory reading state");
    d->schema_version = GM_STATE_SCHEMA_VERSION;
    int status = GM_DEP_CREATING;
    st = get_fixed(j, NULL, "name", true, d->name, sizeof d->name, err);
    if (st == GM_OK)
        st = get_fixed(j, NULL, "tier", true, d->tier, sizeof d->tier, err);
    if (st == GM_OK)
        st = get_fixed(j, NULL, "region", true, d->region, sizeof d->region, err);
    const char *id = NULL;
    if (st == GM_OK)
        st = get_str(j, NULL, "deployment_id", true, &id, err);
    if (st == GM_OK && id && !gm_deployment_id_valid(id))
        st = bad(err, "deployment_id", "is not a deployment id");
    if (st == GM_OK && id)
        snprintf(d->deployment_id, sizeof d->deployment_id, "%s", id);
    if (st == GM_OK)
        st = get_enum(j, NULL, "status", dep_status_names, COUNT(dep_status_names), &status, err);
    d->status = (gm_dep_status)status;
    if (st == GM_OK)
        st = get_dup(j, NULL, "status_reason", &d->status_reason, err);
    if (st == GM_OK)
        st = get_time(j, NULL, "created_at", &d->created_at, err);
    if (st == GM_OK)
        st = get_time(j, NULL, "updated_at", &d->updated_at, err);
    if (st == GM_OK)
        st = get_object(j, NULL, "config", &d->config, err);
    if (st == GM_OK)
        st = get_object(j, NULL, "cost", &d->cost, err);
    if (st != GM_OK)
        goto error;

    json_t *nodes = json_object_get(j, "nodes");
    if (!json_is_array(nodes)) {
        st = bad(err, "nodes", "must be an array");
        goto error;
    }
    size_t count = json_array_size(nodes);
    if (count) {
        d->nodes = calloc(count, sizeof *d->nodes);
        if (!d->nodes) {
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory reading state");
            goto error;
        }
    }
    for (size_t i = 0; i < count; i++) {
        d->n_nodes = i + 1; /* so free releases the half-read node too */
        st = parse_node(json_array_get(nodes, i), i, &d->nodes[i], err);
        if (st != GM_OK)
            goto error;
    }
    st = check_unique_nodes(d, err);
    if (st == GM_OK)
        st = parse_events(json_object_get(j, "events"), &d->events, err);
    if (st != GM_OK)
        goto error;
    *out = d;
    return GM_OK;
error:
    gm_deployment_free(d);
    return st;
}

gm_status gm_deployment_from_json(json_t *j, gm_deployment **out, gm_error *err)
{
    *out = NULL;
    if (!json_is_object(j))
        return gm_error_set(err, GM_ERR_PARSE, "state is not a JSON object");

    json_int_t version = 0;
    json_t *v = json_object_get(j, "schema_version");
    if (v) {
        if (!json_is_integer(v))
            return bad(err, "schema_version", "must be an integer");
        version = json_integer_value(v);
        if (version < 0)
            return bad(err, "schema_version", "must not be negative");
    }
    if (version > GM_STATE_SCHEMA_VERSION) {
        const char *name = json_string_value(json_object_get(j, "name"));
        return gm_error_set(err, GM_ERR_CONFLICT,
                            "state of '%.64s' has schema version %" PRId64
                            ", newer than this geusemaker supports (%d); upgrade geusemaker",
                            name ? name : "?", (int64_t)version, GM_STATE_SCHEMA_VERSION);
    }
    if (version == GM_STATE_SCHEMA_VERSION)
        return parse_current(j, out, err);

    /* Older: migrate a copy step by step, never the caller's document. */
    json_t *doc = json_deep_copy(j);
    if (!doc)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory reading state");
    gm_status st = GM_OK;
    for (json_int_t from = version; from < GM_STATE_SCHEMA_VERSION && st == GM_OK; from++) {
        st = migrations[from](doc, err);
        if (st == GM_OK && json_object_set_new(doc, "schema_version", json_integer(from + 1)) != 0)
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory migrating state");
    }
    if (st == GM_OK)
        st = parse_current(doc, out, err);
    json_decref(doc);
    return st;
}
