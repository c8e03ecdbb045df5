/* The health document: parser, verdict, JSON view. */
#include "health/health.h"

#include <stdio.h>
#include <string.h>

#include "core/timeutil.h"

#define GM_HEALTH_STR_(x) #x
#define GM_HEALTH_STR(x) GM_HEALTH_STR_(x)

static const char *const state_names[] = {"unknown", "healthy", "starting", "degraded",
                                          "unhealthy"};

const char *gm_health_state_name(gm_health_state s)
{
    return (unsigned)s <= GM_HEALTH_UNHEALTHY ? state_names[s] : "unknown";
}

bool gm_health_state_parse(const char *s, gm_health_state *out)
{
    for (int i = GM_HEALTH_HEALTHY; s && i <= GM_HEALTH_UNHEALTHY; i++)
        if (strcmp(s, state_names[i]) == 0) {
            *out = (gm_health_state)i;
            return true;
        }
    return false;
}

static gm_health_state worst(gm_health_state a, gm_health_state b)
{
    return a > b ? a : b;
}

/* Copies src into a fixed field, truncated, keeping printable ASCII only
 * (the detail reaches terminals). */
static void copy_clean(char *dst, size_t size, const char *src)
{
    size_t j = 0;
    for (size_t i = 0; src[i] && j + 1 < size; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[j] = '\0';
}

static void append_reason(gm_health_doc *d, const char *part)
{
    size_t used = strlen(d->reason);
    if (used + 3 >= sizeof d->reason)
        return;
    snprintf(d->reason + used, sizeof d->reason - used, "%s%s", used ? "; " : "", part);
}

/* The rule of the instance's health script, recomputed here so a document
 * cannot claim "healthy" over unhealthy services. */
static void compute_verdict(gm_health_doc *d)
{
    bool crit_bad = false, other_bad = false, starting = false;
    d->reason[0] = '\0';
    for (int pass = 0; pass < 2; pass++) { /* critical services named first */
        for (size_t i = 0; i < d->n_services; i++) {
            const gm_health_service *s = &d->services[i];
            if (s->critical != (pass == 0))
                continue;
            if (s->state == GM_HEALTH_HEALTHY)
                continue;
            if (s->state == GM_HEALTH_UNHEALTHY || s->state == GM_HEALTH_DEGRADED) {
                if (s->critical)
                    crit_bad = true;
                else
                    other_bad = true;
            } else {
                starting = true;
            }
            char part[320];
            if (*s->detail)
                snprintf(part, sizeof part, "%s is %s (%s)", s->name,
                         gm_health_state_name(s->state), s->detail);
            else
                snprintf(part, sizeof part, "%s is %s", s->name, gm_health_state_name(s->state));
            append_reason(d, part);
        }
    }
    gm_health_state computed = crit_bad    ? GM_HEALTH_UNHEALTHY
                               : other_bad ? GM_HEALTH_DEGRADED
                               : starting  ? GM_HEALTH_STARTING
                                           : GM_HEALTH_HEALTHY;
    if (d->n_services == 0) {
        computed = GM_HEALTH_UNHEALTHY;
        append_reason(d, "the health document lists no services");
    }
    d->verdict = worst(computed, d->overall);
    if (d->verdict != GM_HEALTH_HEALTHY && d->reason[0] == '\0') {
        char part[64];
        snprintf(part, sizeof part, "the instance reports '%s'", gm_health_state_name(d->overall));
        append_reason(d, part);
    }
}

/* A time of the boot object: an ISO 8601 string, or null / absent (""). */
static bool boot_time(json_t *b, const char *key, char *out, size_t size, time_t *out_epoch)
{
    json_t *v = json_object_get(b, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v) || (*out_epoch = gm_time_parse_iso8601(json_string_value(v))) <= 0)
        return false;
    copy_clean(out, size, json_string_value(v));
    return true;
}

static bool step_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof((gm_health_boot_step *)0)->name)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return false;
    return true;
}

/* One step of the boot object; NULL when valid, else what is wrong. */
static const char *parse_step(json_t *o, gm_health_boot_step *out)
{
    if (!json_is_object(o))
        return "a step is not an object";
    json_t *name = json_object_get(o, "name");
    json_t *secs = json_object_get(o, "seconds");
    json_t *skipped = json_object_get(o, "skipped");
    if (!json_is_string(name) || !step_name_ok(json_string_value(name)))
        return "a step has no valid 'name' ([a-z0-9_-], at most 31)";
    if (!json_is_integer(secs) || json_integer_value(secs) < 0 ||
        json_integer_value(secs) > GM_HEALTH_MAX_STEP_S)
        return "a step has no valid 'seconds'";
    if (skipped && !json_is_boolean(skipped))
        return "a step's 'skipped' is not a boolean";
    snprintf(out->name, sizeof out->name, "%s", json_string_value(name));
    out->seconds = (long)json_integer_value(secs);
    out->skipped = json_is_true(skipped);
    return NULL;
}

static const char *parse_boot_fields(json_t *b, gm_health_boot *out)
{
    if (!json_is_object(b))
        return "not an object";
    json_t *started = json_object_get(b, "started");
    if (!json_is_string(started) ||
        !boot_time(b, "started", out->started, sizeof out->started, &out->started_epoch))
        return "no valid 'started' (ISO 8601 time)";
    if (!boot_time(b, "ready", out->ready, sizeof out->ready, &out->ready_epoch) ||
        !boot_time(b, "finished", out->finished, sizeof out->finished, &out->finished_epoch) ||
        !boot_time(b, "models_ready", out->models_ready, sizeof out->models_ready,
                   &out->models_ready_epoch))
        return "a time that is neither ISO 8601 nor null";
    json_t *baked = json_object_get(b, "baked");
    if (baked && !json_is_boolean(baked))
        return "'baked' is not a boolean";
    out->baked = json_is_true(baked);
    json_t *steps = json_object_get(b, "steps");
    if (!json_is_array(steps))
        return "no 'steps' array";
    if (json_array_size(steps) > GM_HEALTH_MAX_BOOT_STEPS)
        return "more than " GM_HEALTH_STR(GM_HEALTH_MAX_BOOT_STEPS) " steps";
    size_t i;
    json_t *o;
    json_array_foreach (steps, i, o) {
        const char *why = parse_step(o, &out->steps[i]);
        if (why)
            return why;
        out->n_steps = i + 1;
    }
    return NULL;
}

/* The optional boot object. A malformed one is left out with the reason in
 * out->error: the services' health does not depend on it. */
static void parse_boot(json_t *b, gm_health_boot *out)
{
    memset(out, 0, sizeof *out);
    if (!b || json_is_null(b))
        return;
    const char *why = parse_boot_fields(b, out);
    if (why) {
        memset(out, 0, sizeof *out);
        snprintf(out->error, sizeof out->error, "the boot object: %s", why);
        return;
    }
    out->present = true;
}

long gm_health_boot_after(const gm_health_boot *b, time_t epoch)
{
    if (!b || !b->present || b->started_epoch <= 0 || epoch <= 0)
        return -1;
    return epoch >= b->started_epoch ? (long)(epoch - b->started_epoch) : 0;
}

static GM_MUST_CHECK gm_status bad(gm_health_doc *out, gm_error *err, const char *msg)
{
    memset(out, 0, sizeof *out);
    return gm_error_set(err, GM_ERR_PARSE, "%s", msg);
}

gm_status gm_health_parse(const char *text, size_t len, gm_health_doc *out, gm_error *err)
{
    memset(out, 0, sizeof *out);
    out->age_s = -1;
    if (len > GM_HEALTH_DOC_MAX)
        return gm_error_set(err, GM_ERR_LIMIT, "health document of %zu bytes exceeds %u bytes", len,
                            GM_HEALTH_DOC_MAX);
    if (!text || len == 0)
        return bad(out, err, "empty health document");
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char msg[256];
        snprintf(msg, sizeof msg, "health document is not JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        return bad(out, err, msg);
    }
    gm_status st = GM_OK;
    const char *what = NULL;
    json_t *overall = json_object_get(root, "overall");
    json_t *checked = json_object_get(root, "checked_at");
    json_t *services = json_object_get(root, "services");
    if (!json_is_object(root))
        what = "health document is not a JSON object";
    else if (!json_is_string(overall) ||
             !gm_health_state_parse(json_string_value(overall), &out->overall))
        what = "health document has no valid 'overall' (healthy, starting, degraded or unhealthy)";
    else if (!json_is_string(checked) ||
             (out->checked_at_epoch = gm_time_parse_iso8601(json_string_value(checked))) == -1)
        what = "health document has no valid 'checked_at' (ISO 8601 time)";
    else if (!json_is_object(services))
        what = "health document has no 'services' object";
    if (what) {
        json_decref(root);
        return bad(out, err, what);
    }
    copy_clean(out->checked_at, sizeof out->checked_at, json_string_value(checked));
    json_t *v = json_object_get(root, "deployment");
    if (json_is_string(v))
        copy_clean(out->deployment, sizeof out->deployment, json_string_value(v));
    v = json_object_get(root, "tier");
    if (json_is_string(v))
        copy_clean(out->tier, sizeof out->tier, json_string_value(v));

    const char *key;
    json_t *svc;
    json_object_foreach (services, key, svc) {
        char msg[160];
        if (out->n_services >= GM_HEALTH_MAX_SERVICES) {
            snprintf(msg, sizeof msg, "health document lists more than %d services",
                     GM_HEALTH_MAX_SERVICES);
            st = GM_ERR_PARSE;
        } else if (strlen(key) == 0 || strlen(key) >= sizeof out->services[0].name) {
            snprintf(msg, sizeof msg, "health document has a service name of %zu characters",
                     strlen(key));
            st = GM_ERR_PARSE;
        } else if (!json_is_object(svc)) {
            snprintf(msg, sizeof msg, "service '%.31s' of the health document is not an object",
                     key);
            st = GM_ERR_PARSE;
        }
        gm_health_service *s = &out->services[out->n_services];
        json_t *state = st == GM_OK ? json_object_get(svc, "state") : NULL;
        if (st == GM_OK && (!json_is_string(state) ||
                            !gm_health_state_parse(json_string_value(state), &s->state))) {
            snprintf(msg, sizeof msg, "service '%.31s' of the health document has no valid 'state'",
                     key);
            st = GM_ERR_PARSE;
        }
        if (st != GM_OK) {
            json_decref(root);
            return bad(out, err, msg);
        }
        copy_clean(s->name, sizeof s->name, key);
        json_t *detail = json_object_get(svc, "detail");
        if (json_is_string(detail))
            copy_clean(s->detail, sizeof s->detail, json_string_value(detail));
        s->critical = json_is_true(json_object_get(svc, "critical"));
        out->n_services++;
    }
    parse_boot(json_object_get(root, "boot"), &out->boot);
    json_decref(root);
    compute_verdict(out);
    return GM_OK;
}

void gm_health_apply_age(gm_health_doc *doc, time_t now, long max_age_s)
{
    if (!doc || doc->checked_at_epoch <= 0 || now <= 0)
        return;
    long age = (long)(now - doc->checked_at_epoch);
    doc->age_s = age < 0 ? 0 : age;
    if (age > max_age_s) {
        doc->stale = true;
        doc->verdict = GM_HEALTH_UNHEALTHY;
        char old[sizeof doc->reason];
        memcpy(old, doc->reason, sizeof old);
        /* Truncation of the older reason is fine. */
        if (snprintf(doc->reason, sizeof doc->reason,
                     "the health document is stale: checked %ld s ago (the instance's health "
                     "timer may have stopped)%s%s",
                     age, *old ? "; " : "", old) < 0)
            doc->reason[0] = '\0';
    }
}

bool gm_health_doc_ready(const gm_health_doc *doc)
{
    if (!doc || doc->stale || doc->n_services == 0)
        return false;
    bool any_critical = false;
    for (size_t i = 0; i < doc->n_services; i++) {
        if (!doc->services[i].critical)
            continue;
        any_critical = true;
        if (doc->services[i].state != GM_HEALTH_HEALTHY)
            return false;
    }
    /* A document naming no critical service: ready only when all is healthy. */
    return any_critical || doc->verdict == GM_HEALTH_HEALTHY;
}

const gm_health_service *gm_health_doc_service(const gm_health_doc *doc, const char *name)
{
    for (size_t i = 0; doc && name && i < doc->n_services; i++)
        if (strcmp(doc->services[i].name, name) == 0)
            return &doc->services[i];
    return NULL;
}

static json_t *time_or_null(const char *s)
{
    return *s ? json_string(s) : json_null();
}

static json_t *seconds_or_null(long s)
{
    return s >= 0 ? json_integer(s) : json_null();
}

static json_t *boot_to_json(const gm_health_boot *b)
{
    if (!b->present)
        return json_null();
    json_t *steps = json_array();
    for (size_t i = 0; steps && i < b->n_steps; i++)
        json_array_append_new(steps, json_pack("{s:s, s:I, s:b}", "name", b->steps[i].name,
                                               "seconds", (json_int_t)b->steps[i].seconds,
                                               "skipped", b->steps[i].skipped));
    return json_pack("{s:o, s:o, s:o, s:o, s:b, s:o, s:o, s:o*}", "started",
                     time_or_null(b->started), "ready", time_or_null(b->ready), "finished",
                     time_or_null(b->finished), "models_ready", time_or_null(b->models_ready),
                     "baked", b->baked, "seconds",
                     seconds_or_null(gm_health_boot_after(b, b->finished_epoch)), "ready_seconds",
                     seconds_or_null(gm_health_boot_after(b, b->ready_epoch)), "steps", steps);
}

json_t *gm_health_doc_to_json(const gm_health_doc *doc)
{
    json_t *services = json_object();
    json_t *o = json_object();
    if (!services || !o) {
        json_decref(services);
        json_decref(o);
        return NULL;
    }
    for (size_t i = 0; i < doc->n_services; i++) {
        const gm_health_service *s = &doc->services[i];
        json_object_set_new(services, s->name,
                            json_pack("{s:s, s:s, s:b}", "state", gm_health_state_name(s->state),
                                      "detail", s->detail, "critical", s->critical));
    }
    json_object_set_new(o, "verdict", json_string(gm_health_state_name(doc->verdict)));
    json_object_set_new(o, "ready", json_boolean(gm_health_doc_ready(doc)));
    json_object_set_new(o, "reason", json_string(doc->reason));
    json_object_set_new(o, "overall", json_string(gm_health_state_name(doc->overall)));
    json_object_set_new(o, "checked_at", json_string(doc->checked_at));
    json_object_set_new(o, "stale", json_boolean(doc->stale));
    json_object_set_new(o, "age_s", doc->age_s >= 0 ? json_integer(doc->age_s) : json_null());
    json_object_set_new(o, "services", services);
    json_object_set_new(o, "boot", boot_to_json(&doc->boot));
    if (*doc->boot.error)
        json_object_set_new(o, "boot_error", json_string(doc->boot.error));
    return o;
}
