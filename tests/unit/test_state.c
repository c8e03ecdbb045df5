/* state/: the deployment record (JSON round trip, validation, migration) and
 * the store (atomic save, backups, modes, corrupt files, locks, list, archive). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/str.h"
#include "gm_test.h"
#include "state/deployment.h"
#include "state/store.h"

/* ---- helpers -------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *temp_root(void)
{
    char tmpl[] = "/tmp/gm-test-state-XXXXXX";
    char *dir = mkdtemp(tmpl);
    return dir ? strdup(dir) : NULL;
}

static char *slurp(const char *path, size_t *len)
{
    gm_buf b;
    gm_buf_init(&b, 16u * 1024u * 1024u);
    gm_error err = {0};
    if (gm_buf_read_file(&b, path, &err) != GM_OK) {
        gm_buf_release(&b);
        return NULL;
    }
    if (len)
        *len = b.len;
    return gm_buf_detach(&b);
}

static bool spit(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static int mode_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int)(sb.st_mode & 07777) : -1;
}

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static bool contains(const char *hay, const char *needle)
{
    return hay && needle && strstr(hay, needle) != NULL;
}

/* Names in dir starting with '.', joined by spaces ("" when none). */
static char *hidden_entries(const char *dir)
{
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_SMALL);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] != '.' || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        CHECK_INT(gm_buf_printf(&b, "%s%s", b.len ? " " : "", e->d_name), GM_OK);
    }
    if (d)
        closedir(d);
    return gm_buf_detach(&b);
}

static gm_deployment *sample(const char *name)
{
    gm_deployment *d = gm_deployment_new(name, "automation", "eu-west-1");
    if (!d)
        return NULL;
    d->status = GM_DEP_PARTIAL;
    CHECK_INT(gm_str_set(&d->status_reason, "load balancer 'alb' failed: capacity"), GM_OK);
    d->created_at = 1700000000000;
    json_object_set_new(d->config, "instance_type", json_string("g4dn.xlarge"));
    json_object_set_new(d->config, "spot", json_true());
    json_object_set_new(d->config, "allow_cidr", json_pack("[s]", "203.0.113.7/32"));
    json_object_set_new(d->cost, "hourly_usd", json_real(0.1578));

    gm_node_state *n = gm_deployment_ensure_node(d, "vpc", "vpc");
    CHECK_INT(gm_node_state_set_id(n, "vpc-0123456789abcdef0"), GM_OK);
    n->status = GM_NODE_CREATED;
    n->provenance = GM_PROV_REUSED;
    snprintf(n->token, sizeof n->token, "%s", "gm-demo-vpc-tok");
    n->created_at = 1700000001000;
    json_object_set_new(n->outputs, "cidr", json_string("10.0.0.0/16"));

    n = gm_deployment_ensure_node(d, "subnet_a", "subnet");
    n->status = GM_NODE_CREATING;
    snprintf(n->token, sizeof n->token, "%s", "tok-subnet-a");

    n = gm_deployment_ensure_node(d, "alb", "load_balancer");
    n->status = GM_NODE_FAILED;
    CHECK_INT(gm_node_state_set_error(n, "TooManyLoadBalancers: limit reached"), GM_OK);

    gm_deployment_add_event(d, "node_created", "vpc", "created %s", "vpc-0123456789abcdef0");
    gm_deployment_add_event(d, "deploy_failed", NULL, "load balancer failed after %d tries", 3);
    return d;
}

/* A valid v1 document with three nodes, for the validation cases to break. */
static json_t *valid_doc(void)
{
    return json_pack("{s:i, s:s, s:s, s:s, s:s, s:n, s:I, s:I, s:{}, s:{}, s:[{s:s, s:s, s:s, "
                     "s:s, s:s, s:s, s:I, s:I, s:{}, s:n}, {s:s, s:s, s:n, s:s, s:s, s:{}}, "
                     "{s:s, s:s, s:s, s:s, s:{}}], s:[{s:I, s:s, s:s, s:s}]}",
                     "schema_version", 1, "name", "demo", "tier", "dev", "region", "us-east-1",
                     "status", "running", "status_reason", "created_at", (json_int_t)1,
                     "updated_at", (json_int_t)2, "config", "cost", "nodes",
                     /* nodes[0] */ "name", "vpc", "kind", "vpc", "id", "vpc-1", "provenance",
                     "created", "status", "created", "token", "t", "created_at", (json_int_t)1,
                     "updated_at", (json_int_t)2, "outputs", "error",
                     /* nodes[1] */ "name", "sg", "kind", "security_group", "id", "provenance",
                     "reused", "status", "pending", "outputs",
                     /* nodes[2] */ "name", "efs", "kind", "efs", "provenance", "created", "status",
                     "deleted", "outputs",
                     /* events */ "events", "ts", (json_int_t)5, "type", "x", "node", "vpc",
                     "message", "m");
}

static json_t *node_of(json_t *doc, size_t i)
{
    return json_array_get(json_object_get(doc, "nodes"), i);
}

/* from_json must fail with GM_ERR_PARSE and exactly this message. */
static void expect_invalid(json_t *doc, const char *message, int line)
{
    gm_deployment *d = (gm_deployment *)1;
    gm_error err = {0};
    gm_status st = gm_deployment_from_json(doc, &d, &err);
    if (st != GM_ERR_PARSE || d != NULL || strcmp(err.message, message) != 0) {
        fprintf(stderr, "test_state.c:%d: expected parse error \"%s\", got %d \"%s\"\n", line,
                message, (int)st, err.message);
        gm_test_checks_failed++;
    }
    if (st == GM_OK)
        gm_deployment_free(d);
    json_decref(doc);
}
#define EXPECT_INVALID(doc, msg) expect_invalid((doc), (msg), __LINE__)

/* ---- the record ----------------------------------------------------------- */

static void test_enums(void)
{
    const char *deps[] = {"creating",   "running",   "failed", "rolling_back",
                          "destroying", "destroyed", "partial"};
    for (int i = 0; i < 7; i++) {
        gm_dep_status s;
        CHECK_STR(gm_dep_status_name((gm_dep_status)i), deps[i]);
        CHECK_INT(gm_dep_status_parse(deps[i], &s), GM_OK);
        CHECK_INT(s, i);
    }
    const char *nodes[] = {"pending", "creating", "created", "failed", "deleting", "deleted"};
    for (int i = 0; i < 6; i++) {
        gm_node_status s;
        CHECK_STR(gm_node_status_name((gm_node_status)i), nodes[i]);
        CHECK_INT(gm_node_status_parse(nodes[i], &s), GM_OK);
        CHECK_INT(s, i);
    }
    gm_dep_status ds;
    gm_node_status ns;
    CHECK(gm_dep_status_parse("Running", &ds) != GM_OK);
    CHECK(gm_dep_status_parse(NULL, &ds) != GM_OK);
    CHECK(gm_node_status_parse("bogus", &ns) != GM_OK);
}

static void test_record_api(void)
{
    CHECK(gm_deployment_new("", "dev", "us-east-1") == NULL);
    CHECK(gm_deployment_new(NULL, "dev", "us-east-1") == NULL);
    CHECK(gm_deployment_new("x", "much-too-long-tier", "us-east-1") == NULL);
    char long_name[GM_NAME_MAX + 1];
    memset(long_name, 'a', GM_NAME_MAX);
    long_name[GM_NAME_MAX] = '\0';
    CHECK(gm_deployment_new(long_name, "dev", "us-east-1") == NULL);
    gm_deployment_free(NULL);

    gm_deployment *d = gm_deployment_new("demo", "dev", "us-east-1");
    CHECK(d != NULL);
    if (!d)
        return;
    CHECK_INT(d->schema_version, GM_STATE_SCHEMA_VERSION);
    CHECK_INT(d->status, GM_DEP_CREATING);
    CHECK(d->created_at > 0 && d->created_at == d->updated_at);
    CHECK(json_is_object(d->config) && json_is_object(d->cost) && json_is_array(d->events));
    CHECK(gm_deployment_node(d, "vpc") == NULL);
    gm_node_state *n = gm_deployment_ensure_node(d, "vpc", "vpc");
    CHECK(n != NULL && n->status == GM_NODE_PENDING && n->provenance == GM_PROV_CREATED);
    CHECK(n && json_is_object(n->outputs) && n->id == NULL && n->error == NULL);
    gm_deployment_ensure_node(d, "igw", "internet_gateway");
    CHECK_INT(d->n_nodes, 2);
    n = gm_deployment_ensure_node(d, "vpc", "ignored");
    CHECK(n == &d->nodes[0]);
    CHECK_STR(n->kind, "vpc");
    CHECK_INT(d->n_nodes, 2);
    CHECK(gm_deployment_ensure_node(d, long_name, "x") == NULL);
    CHECK(gm_deployment_ensure_node(d, "", "x") == NULL);
    CHECK_INT(gm_node_state_set_id(n, "vpc-1"), GM_OK);
    CHECK_STR(n->id, "vpc-1");
    CHECK_INT(gm_node_state_set_error(n, "boom"), GM_OK);
    CHECK_STR(n->error, "boom");
    CHECK_INT(gm_node_state_set_error(n, NULL), GM_OK);
    CHECK(n->error == NULL);
    CHECK(gm_deployment_node(d, "igw") == &d->nodes[1]);

    /* Bytes that are not UTF-8 still serialise. */
    CHECK_INT(gm_node_state_set_error(n, "bad \xff\xfe bytes \xe2\x82"), GM_OK);
    json_t *j = gm_deployment_to_json(d);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(node_of(j, 0), "error")), "bad ?? bytes ??");
    json_decref(j);
    gm_deployment_free(d);
}

static void test_round_trip(void)
{
    gm_deployment *d = sample("demo");
    CHECK(d != NULL);
    if (!d)
        return;
    json_t *j = gm_deployment_to_json(d);
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    CHECK(
        gm_str_startswith(text, "{\n  \"schema_version\": 2,\n  \"name\": \"demo\",\n  \"tier\""));
    /* Node keys in the documented order. */
    CHECK(contains(text, "\"name\": \"vpc\",\n      \"kind\": \"vpc\",\n      \"id\": "
                         "\"vpc-0123456789abcdef0\",\n      \"provenance\": \"reused\",\n      "
                         "\"status\": \"created\",\n      \"token\""));

    json_error_t jerr;
    json_t *back = json_loads(text, 0, &jerr);
    gm_deployment *e = NULL;
    gm_error err = {0};
    CHECK_INT(gm_deployment_from_json(back, &e, &err), GM_OK);
    CHECK_STR(err.message, "");
    if (e) {
        CHECK_STR(e->name, "demo");
        CHECK_STR(e->tier, "automation");
        CHECK_STR(e->region, "eu-west-1");
        CHECK_INT(e->status, GM_DEP_PARTIAL);
        CHECK_STR(e->status_reason, "load balancer 'alb' failed: capacity");
        CHECK_INT(e->created_at, 1700000000000);
        CHECK_INT(e->updated_at, d->updated_at);
        CHECK(json_equal(e->config, d->config));
        CHECK(json_equal(e->cost, d->cost));
        CHECK_INT(e->n_nodes, 3);
        CHECK_STR(e->nodes[0].name, "vpc");
        CHECK_STR(e->nodes[1].name, "subnet_a");
        CHECK_STR(e->nodes[2].name, "alb");
        CHECK_STR(e->nodes[0].id, "vpc-0123456789abcdef0");
        CHECK_INT(e->nodes[0].provenance, GM_PROV_REUSED);
        CHECK_INT(e->nodes[0].status, GM_NODE_CREATED);
        CHECK_STR(e->nodes[0].token, "gm-demo-vpc-tok");
        CHECK_INT(e->nodes[0].created_at, 1700000001000);
        CHECK_STR(json_string_value(json_object_get(e->nodes[0].outputs, "cidr")), "10.0.0.0/16");
        CHECK(e->nodes[1].id == NULL);
        CHECK_INT(e->nodes[1].status, GM_NODE_CREATING);
        CHECK_INT(e->nodes[1].provenance, GM_PROV_CREATED);
        CHECK_STR(e->nodes[2].error, "TooManyLoadBalancers: limit reached");
        CHECK_STR(e->nodes[2].kind, "load_balancer");
        CHECK_INT(json_array_size(e->events), 2);
        json_t *ev = json_array_get(e->events, 0);
        CHECK_STR(json_string_value(json_object_get(ev, "type")), "node_created");
        CHECK_STR(json_string_value(json_object_get(ev, "node")), "vpc");
        CHECK_STR(json_string_value(json_object_get(ev, "message")),
                  "created vpc-0123456789abcdef0");
        CHECK(json_is_integer(json_object_get(ev, "ts")));
        CHECK(json_object_get(json_array_get(e->events, 1), "node") == NULL);
        json_t *again = gm_deployment_to_json(e);
        CHECK(json_equal(again, j));
        json_decref(again);
    }
    /* The caller's document is not taken or changed. */
    CHECK(json_equal(back, j));
    gm_deployment_free(e);
    json_decref(back);
    free(text);
    json_decref(j);
    gm_deployment_free(d);
}

static void test_validation(void)
{
    json_t *doc;
    gm_deployment *d = NULL;
    gm_error err = {0};
    doc = valid_doc();
    CHECK_INT(gm_deployment_from_json(doc, &d, &err), GM_OK);
    CHECK_STR(err.message, "");
    CHECK(d && d->n_nodes == 3 && d->nodes[1].provenance == GM_PROV_REUSED);
    gm_deployment_free(d);
    json_decref(doc);

    EXPECT_INVALID(json_pack("[]"), "state is not a JSON object");
    EXPECT_INVALID(json_string("x"), "state is not a JSON object");

    doc = valid_doc();
    json_object_del(doc, "name");
    EXPECT_INVALID(doc, "state field 'name' is missing");
    doc = valid_doc();
    json_object_set_new(doc, "name", json_integer(3));
    EXPECT_INVALID(doc, "state field 'name' must be a string");
    doc = valid_doc();
    json_object_set_new(doc, "name", json_string(""));
    EXPECT_INVALID(doc, "state field 'name' is empty");
    doc = valid_doc();
    json_object_set_new(doc, "name",
                        json_string("a12345678901234567890123456789012"
                                    "345678901234567890123456789012345"));
    EXPECT_INVALID(doc, "state field 'name' is too long (at most 63 bytes)");
    doc = valid_doc();
    json_object_set_new(doc, "tier", json_string("automation-plus!"));
    EXPECT_INVALID(doc, "state field 'tier' is too long (at most 15 bytes)");
    doc = valid_doc();
    json_object_set_new(doc, "region", json_null());
    EXPECT_INVALID(doc, "state field 'region' must be a string");
    doc = valid_doc();
    json_object_del(doc, "status");
    EXPECT_INVALID(doc, "state field 'status' is missing");
    doc = valid_doc();
    json_object_set_new(doc, "status", json_string("bogus"));
    EXPECT_INVALID(doc, "state field 'status' has unknown value 'bogus'");
    doc = valid_doc();
    json_object_set_new(doc, "status", json_true());
    EXPECT_INVALID(doc, "state field 'status' must be a string");
    doc = valid_doc();
    json_object_set_new(doc, "status_reason", json_integer(1));
    EXPECT_INVALID(doc, "state field 'status_reason' must be a string or null");
    doc = valid_doc();
    json_object_set_new(doc, "created_at", json_string("yesterday"));
    EXPECT_INVALID(doc, "state field 'created_at' must be an integer");
    doc = valid_doc();
    json_object_set_new(doc, "updated_at", json_real(1.5));
    EXPECT_INVALID(doc, "state field 'updated_at' must be an integer");
    doc = valid_doc();
    json_object_set_new(doc, "created_at", json_integer(-1));
    EXPECT_INVALID(doc, "state field 'created_at' must not be negative");
    doc = valid_doc();
    json_object_set_new(doc, "config", json_array());
    EXPECT_INVALID(doc, "state field 'config' must be an object");
    doc = valid_doc();
    json_object_set_new(doc, "cost", json_integer(0));
    EXPECT_INVALID(doc, "state field 'cost' must be an object");
    doc = valid_doc();
    json_object_set_new(doc, "nodes", json_object());
    EXPECT_INVALID(doc, "state field 'nodes' must be an array");
    doc = valid_doc();
    json_object_set_new(doc, "schema_version", json_string("1"));
    EXPECT_INVALID(doc, "state field 'schema_version' must be an integer");
    doc = valid_doc();
    json_object_set_new(doc, "schema_version", json_integer(-2));
    EXPECT_INVALID(doc, "state field 'schema_version' must not be negative");
    doc = valid_doc();
    json_object_set_new(doc, "extra", json_true());
    EXPECT_INVALID(doc, "state has unknown field 'extra'");

    /* Nodes. */
    doc = valid_doc();
    json_object_set_new(node_of(doc, 2), "status", json_string("bogus"));
    EXPECT_INVALID(doc, "state field 'nodes[2].status' has unknown value 'bogus'");
    doc = valid_doc();
    json_object_set_new(node_of(doc, 0), "provenance", json_string("borrowed"));
    EXPECT_INVALID(doc, "state field 'nodes[0].provenance' has unknown value 'borrowed'");
    doc = valid_doc();
    json_object_del(node_of(doc, 0), "provenance");
    EXPECT_INVALID(doc, "state field 'nodes[0].provenance' is missing");
    doc = valid_doc();
    json_object_set_new(node_of(doc, 1), "provenence", json_string("reused"));
    EXPECT_INVALID(doc, "state field 'nodes[1]' has unknown key 'provenence'");
    doc = valid_doc();
    json_array_set_new(json_object_get(doc, "nodes"), 1, json_string("sg"));
    EXPECT_INVALID(doc, "state field 'nodes[1]' must be an object");
    doc = valid_doc();
    json_object_del(node_of(doc, 2), "name");
    EXPECT_INVALID(doc, "state field 'nodes[2].name' is missing");
    doc = valid_doc();
    json_object_set_new(node_of(doc, 2), "name", json_string(""));
    EXPECT_INVALID(doc, "state field 'nodes[2].name' is empty");
    doc = valid_doc();
    json_object_set_new(node_of(doc, 0), "id", json_integer(5));
    EXPECT_INVALID(doc, "state field 'nodes[0].id' must be a string or null");
    doc = valid_doc();
    json_object_set_new(node_of(doc, 0), "kind", json_string("an-extremely-long-kind-of-resource"));
    EXPECT_INVALID(doc, "state field 'nodes[0].kind' is too long (at most 31 bytes)");
    doc = valid_doc();
    json_object_set_new(node_of(doc, 0), "token", json_null());
    EXPECT_INVALID(doc, "state field 'nodes[0].token' must be a string");
    doc = valid_doc();
    json_object_set_new(node_of(doc, 0), "created_at", json_string("1"));
    EXPECT_INVALID(doc, "state field 'nodes[0].created_at' must be an integer");
    doc = valid_doc();
    json_object_set_new(node_of(doc, 1), "outputs", json_array());
    EXPECT_INVALID(doc, "state field 'nodes[1].outputs' must be an object");
    doc = valid_doc();
    json_object_del(node_of(doc, 1), "outputs");
    EXPECT_INVALID(doc, "state field 'nodes[1].outputs' is missing");
    doc = valid_doc();
    json_object_set_new(node_of(doc, 0), "error", json_false());
    EXPECT_INVALID(doc, "state field 'nodes[0].error' must be a string or null");
    doc = valid_doc();
    json_object_set_new(node_of(doc, 2), "name", json_string("vpc"));
    EXPECT_INVALID(doc, "state field 'nodes[2].name' repeats node name 'vpc'");
    doc = valid_doc();
    json_object_set_new(node_of(doc, 0), "name", json_stringn("v\0pc", 4));
    EXPECT_INVALID(doc, "state field 'nodes[0].name' contains a NUL byte");

    /* Events. */
    doc = valid_doc();
    json_object_set_new(doc, "events", json_object());
    EXPECT_INVALID(doc, "state field 'events' must be an array");
    doc = valid_doc();
    json_array_append_new(json_object_get(doc, "events"), json_integer(1));
    EXPECT_INVALID(doc, "state field 'events[1]' must be an object");
    doc = valid_doc();
    json_object_set_new(json_array_get(json_object_get(doc, "events"), 0), "ts", json_string("0"));
    EXPECT_INVALID(doc, "state field 'events[0].ts' must be an integer");
    doc = valid_doc();
    json_object_del(json_array_get(json_object_get(doc, "events"), 0), "message");
    EXPECT_INVALID(doc, "state field 'events[0].message' is missing");
    doc = valid_doc();
    json_object_set_new(json_array_get(json_object_get(doc, "events"), 0), "node", json_integer(1));
    EXPECT_INVALID(doc, "state field 'events[0].node' must be a string");

    /* Optional fields may be absent. */
    doc = valid_doc();
    json_object_del(doc, "status_reason");
    json_object_del(doc, "config");
    json_object_del(doc, "cost");
    json_object_del(doc, "events");
    json_object_del(node_of(doc, 0), "token");
    json_object_del(node_of(doc, 0), "id");
    d = NULL;
    CHECK_INT(gm_deployment_from_json(doc, &d, &err), GM_OK);
    CHECK(d && json_is_object(d->config) && json_is_object(d->cost) && json_is_array(d->events));
    CHECK(d && d->nodes[0].token[0] == '\0' && d->nodes[0].id == NULL);
    gm_deployment_free(d);
    json_decref(doc);
}

static void test_migration(void)
{
    const char *v0 = "{\"name\":\"old\",\"tier\":\"dev\",\"region\":\"us-east-2\","
                     "\"status\":\"running\",\"status_reason\":null,\"created_at\":10,"
                     "\"updated_at\":20,\"config\":{\"spot\":true},\"cost\":{},"
                     "\"nodes\":[{\"name\":\"vpc\",\"kind\":\"vpc\",\"id\":\"vpc-9\","
                     "\"status\":\"created\",\"token\":\"t1\",\"created_at\":11,\"updated_at\":12,"
                     "\"error\":null},"
                     "{\"name\":\"sg\",\"kind\":\"security_group\",\"id\":\"sg-1\","
                     "\"provenance\":\"reused\",\"status\":\"created\","
                     "\"outputs\":{\"port\":22}}],\"events\":[]}";
    json_t *doc = json_loads(v0, 0, NULL);
    char *before = json_dumps(doc, JSON_SORT_KEYS);
    gm_deployment *d = NULL;
    gm_error err = {0};
    CHECK_INT(gm_deployment_from_json(doc, &d, &err), GM_OK);
    CHECK_STR(err.message, "");
    if (d) {
        CHECK_INT(d->schema_version, GM_STATE_SCHEMA_VERSION);
        CHECK_STR(d->deployment_id, ""); /* older than identities */
        CHECK_INT(d->n_nodes, 2);
        CHECK_INT(d->nodes[0].provenance, GM_PROV_CREATED);
        CHECK(json_is_object(d->nodes[0].outputs) && json_object_size(d->nodes[0].outputs) == 0);
        CHECK_INT(d->nodes[1].provenance, GM_PROV_REUSED);
        CHECK_INT(json_integer_value(json_object_get(d->nodes[1].outputs, "port")), 22);
        json_t *j = gm_deployment_to_json(d);
        CHECK_INT(json_integer_value(json_object_get(j, "schema_version")),
                  GM_STATE_SCHEMA_VERSION);
        CHECK(json_is_null(json_object_get(j, "deployment_id")));
        json_decref(j);
    }
    gm_deployment_free(d);
    /* The caller's document is untouched by the migration. */
    char *after = json_dumps(doc, JSON_SORT_KEYS);
    CHECK_STR(after, before);
    free(before);
    free(after);

    /* An explicit version 0 migrates the same way. */
    json_object_set_new(doc, "schema_version", json_integer(0));
    d = NULL;
    CHECK_INT(gm_deployment_from_json(doc, &d, &err), GM_OK);
    CHECK(d && d->nodes[0].provenance == GM_PROV_CREATED);
    gm_deployment_free(d);

    /* Migration does not hide errors: they are named after it. */
    json_object_set_new(node_of(doc, 1), "status", json_string("zombie"));
    EXPECT_INVALID(doc, "state field 'nodes[1].status' has unknown value 'zombie'");

    /* But a v1 document must carry what v0 could omit. */
    doc = json_loads(v0, 0, NULL);
    json_object_set_new(doc, "schema_version", json_integer(1));
    EXPECT_INVALID(doc, "state field 'nodes[0].provenance' is missing");
}

static void test_newer_schema(void)
{
    json_t *doc = valid_doc();
    json_object_set_new(doc, "schema_version", json_integer(3));
    json_object_set_new(doc, "future_field", json_true());
    gm_deployment *d = (gm_deployment *)1;
    gm_error err = {0};
    CHECK_INT(gm_deployment_from_json(doc, &d, &err), GM_ERR_CONFLICT);
    CHECK(d == NULL);
    CHECK_STR(err.message, "state of 'demo' has schema version 3, newer than this geusemaker "
                           "supports (2); upgrade geusemaker");
    json_decref(doc);
}

static void test_events_cap(void)
{
    gm_deployment *d = gm_deployment_new("demo", "dev", "us-east-1");
    CHECK(d != NULL);
    if (!d)
        return;
    for (int i = 0; i < 1005; i++)
        gm_deployment_add_event(d, "tick", i % 2 ? "vpc" : NULL, "event %d", i);
    CHECK_INT(json_array_size(d->events), 1000);
    CHECK_STR(json_string_value(json_object_get(json_array_get(d->events, 0), "message")),
              "event 5");
    CHECK_STR(json_string_value(json_object_get(json_array_get(d->events, 999), "message")),
              "event 1004");

    /* A hand-made file with more is cut to the newest 1000 on load. */
    json_t *j = gm_deployment_to_json(d);
    json_t *events = json_object_get(j, "events");
    for (int i = 0; i < 200; i++)
        json_array_append_new(events, json_pack("{s:I, s:s, s:s}", "ts", (json_int_t)i, "type",
                                                "more", "message", "extra"));
    CHECK_INT(json_array_size(events), 1200);
    gm_deployment *e = NULL;
    gm_error err = {0};
    CHECK_INT(gm_deployment_from_json(j, &e, &err), GM_OK);
    CHECK(e && json_array_size(e->events) == 1000);
    if (e)
        CHECK_STR(json_string_value(json_object_get(json_array_get(e->events, 0), "message")),
                  "event 205");
    gm_deployment_free(e);
    json_decref(j);

    /* Long messages are truncated, not lost. */
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    gm_deployment_add_event(d, "big", NULL, "%s", big);
    const char *m = json_string_value(json_object_get(json_array_get(d->events, 999), "message"));
    CHECK(m && strlen(m) > 1000 && strlen(m) < 5000);
    gm_deployment_free(d);
}

/* ---- the store ------------------------------------------------------------ */

static void test_names(void)
{
    CHECK(gm_store_valid_name("a"));
    CHECK(gm_store_valid_name("demo-1"));
    CHECK(gm_store_valid_name("0abc"));
    CHECK(gm_store_valid_name("x-"));
    char n63[64], n64[65];
    memset(n63, 'a', 63);
    n63[63] = '\0';
    memset(n64, 'a', 64);
    n64[64] = '\0';
    CHECK(gm_store_valid_name(n63));
    const char *bad[] = {NULL,  "",    "../x", "UPPER",       "Demo", "-lead", "a_b",
                         "a.b", "a/b", "a b",  "caf\xc3\xa9", n64,    ".",     ".."};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (gm_store_valid_name(bad[i])) {
            fprintf(stderr, "name %zu should be invalid\n", i);
            gm_test_checks_failed++;
        }
    }
    gm_error err = {0};
    CHECK_INT(gm_store_check_name("../x", &err), GM_ERR_INVALID);
    CHECK_STR(err.message, "invalid deployment name '../x': use 1 to 63 lowercase letters, digits "
                           "and '-', not starting with '-'");
    gm_error_clear(&err);
    CHECK_INT(gm_store_check_name("a\nb", &err), GM_ERR_INVALID);
    CHECK(contains(err.message, "'a?b'"));

    char *root = temp_root();
    gm_store *s = NULL;
    CHECK_INT(gm_store_open(root, &s, &err), GM_OK);
    if (s) {
        gm_deployment *d = NULL;
        gm_lock *l = NULL;
        char **names = NULL;
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            gm_error_clear(&err);
            CHECK_INT(gm_store_load(s, bad[i], &d, &err), GM_ERR_INVALID);
            CHECK(d == NULL);
            gm_error_clear(&err);
            CHECK_INT(gm_store_lock(s, bad[i], &l, &err), GM_ERR_INVALID);
            CHECK(l == NULL);
            CHECK(!gm_store_exists(s, bad[i]));
            gm_error_clear(&err);
            CHECK_INT(gm_store_archive(s, bad[i], NULL, &err), GM_ERR_INVALID);
            CHECK(gm_store_log_path(s, bad[i]) == NULL);
        }
        /* A record whose name the store refuses is not saved anywhere. */
        gm_deployment *up = gm_deployment_new("Bad..Name", "dev", "us-east-1");
        gm_error_clear(&err);
        CHECK_INT(gm_store_save(s, up, &err), GM_ERR_INVALID);
        CHECK(contains(err.message, "'Bad..Name'"));
        gm_deployment_free(up);
        size_t n = 99;
        gm_error_clear(&err);
        CHECK_INT(gm_store_list(s, &names, &n, &err), GM_OK);
        CHECK_INT(n, 0);
        CHECK(names == NULL);
        char *lp = gm_store_log_path(s, "demo");
        char *want = gm_strfmt("%s/logs/demo.log", root);
        CHECK_STR(lp, want);
        free(lp);
        free(want);
    }
    gm_store_free(s);
    rm_rf(root);
    free(root);
}

static void test_open_modes(void)
{
    char *root = temp_root();
    char *home = gm_strfmt("%s/a/b/home", root);
    mode_t old = umask(0777); /* the store must not depend on the umask */
    gm_store *s = NULL;
    gm_error err = {0};
    CHECK_INT(gm_store_open(home, &s, &err), GM_OK);
    CHECK_STR(err.message, "");
    if (s) {
        CHECK_STR(gm_store_home(s), home);
        CHECK(!exists(home)); /* opening creates nothing; the first save does */
        gm_deployment *d = sample("modes");
        CHECK_INT(gm_store_save(s, d, &err), GM_OK);
        const char *sub[] = {"", "/deployments", "/archive", "/logs"};
        for (int i = 0; i < 4; i++) {
            char *p = gm_strfmt("%s%s", home, sub[i]);
            CHECK_INT(mode_of(p), 0700);
            free(p);
        }
        CHECK_INT(gm_store_save(s, d, &err), GM_OK);
        char *p = gm_strfmt("%s/deployments/modes.json", home);
        CHECK_INT(mode_of(p), 0600);
        free(p);
        p = gm_strfmt("%s/deployments/modes.json.bak", home);
        CHECK_INT(mode_of(p), 0600);
        free(p);
        gm_lock *l = NULL;
        CHECK_INT(gm_store_lock(s, "modes", &l, &err), GM_OK);
        p = gm_strfmt("%s/deployments/modes.lock", home);
        CHECK_INT(mode_of(p), 0600);
        CHECK_STR(gm_lock_path(l), p);
        free(p);
        gm_lock_release(l);
        char *arch = NULL;
        CHECK_INT(gm_store_archive(s, "modes", &arch, &err), GM_OK);
        CHECK_INT(mode_of(arch), 0600);
        free(arch);
        gm_deployment_free(d);
    }
    umask(old);
    gm_store_free(s);

    /* Reopening an existing home works; a file in the way does not. */
    s = NULL;
    CHECK_INT(gm_store_open(home, &s, &err), GM_OK);
    gm_store_free(s);
    char *file = gm_strfmt("%s/file", root);
    spit(file, "x", 1);
    s = (gm_store *)1;
    CHECK_INT(gm_store_open(file, &s, &err), GM_ERR_INVALID);
    CHECK(s == NULL);
    char *want = gm_strfmt("refusing '%s': it is not a directory; fix: move it out of the way: "
                           "mv '%s' '%s.old'",
                           file, file, file);
    CHECK_STR(err.message, want);
    free(want);
    gm_error_clear(&err);
    CHECK_INT(gm_store_open("", &s, &err), GM_ERR_INVALID);

    /* NULL home: $GEUSEMAKER_HOME, then $HOME/.geusemaker. */
    char *saved_gm = gm_strdup(getenv("GEUSEMAKER_HOME"));
    char *saved_home = gm_strdup(getenv("HOME"));
    char *env_home = gm_strfmt("%s/envhome", root);
    setenv("GEUSEMAKER_HOME", env_home, 1);
    gm_error_clear(&err);
    CHECK_INT(gm_store_open(NULL, &s, &err), GM_OK);
    if (s)
        CHECK_STR(gm_store_home(s), env_home);
    gm_store_free(s);
    unsetenv("GEUSEMAKER_HOME");
    setenv("HOME", root, 1);
    CHECK_INT(gm_store_open(NULL, &s, &err), GM_OK);
    char *dot = gm_strfmt("%s/.geusemaker", root);
    if (s) {
        CHECK_STR(gm_store_home(s), dot);
        CHECK(!exists(dot));
        CHECK_INT(gm_store_make_dirs(s, &err), GM_OK);
    }
    CHECK_INT(mode_of(dot), 0700);
    gm_store_free(s);
    if (saved_gm)
        setenv("GEUSEMAKER_HOME", saved_gm, 1);
    if (saved_home)
        setenv("HOME", saved_home, 1);
    else
        unsetenv("HOME");
    free(saved_gm);
    free(saved_home);
    free(env_home);
    free(dot);
    free(file);
    rm_rf(root);
    free(root);
    free(home);
}

static void test_save_load(void)
{
    char *root = temp_root();
    gm_store *s = NULL;
    gm_error err = {0};
    CHECK_INT(gm_store_open(root, &s, &err), GM_OK);
    if (!s)
        return;
    CHECK(!gm_store_exists(s, "demo"));
    gm_deployment *d = NULL;
    CHECK_INT(gm_store_load(s, "demo", &d, &err), GM_ERR_NOT_FOUND);
    char *path = gm_strfmt("%s/deployments/demo.json", root);
    char *bak = gm_strfmt("%s/deployments/demo.json.bak", root);
    char *want = gm_strfmt("no deployment named 'demo' (looked in '%s')", path);
    CHECK_STR(err.message, want);
    free(want);

    d = sample("demo");
    d->updated_at = 5;
    gm_error_clear(&err);
    CHECK_INT(gm_store_save(s, d, &err), GM_OK);
    CHECK_STR(err.message, "");
    CHECK(d->updated_at > 5);
    CHECK(gm_store_exists(s, "demo"));
    CHECK(!exists(bak)); /* nothing to back up on the first save */
    size_t len1 = 0;
    char *first = slurp(path, &len1);
    CHECK(first && first[len1 - 1] == '\n');

    d->status = GM_DEP_RUNNING;
    gm_node_state *n = gm_deployment_ensure_node(d, "ec2", "instance");
    CHECK_INT(gm_node_state_set_id(n, "i-0abc"), GM_OK);
    n->status = GM_NODE_CREATED;
    CHECK_INT(gm_store_save(s, d, &err), GM_OK);
    size_t lenb = 0;
    char *backup = slurp(bak, &lenb);
    CHECK(backup && lenb == len1 && memcmp(backup, first, len1) == 0);
    char *second = slurp(path, NULL);

    /* A third save moves the backup forward. */
    d->status = GM_DEP_DESTROYING;
    CHECK_INT(gm_store_save(s, d, &err), GM_OK);
    char *backup2 = slurp(bak, NULL);
    CHECK_STR(backup2, second);

    gm_deployment *e = NULL;
    CHECK_INT(gm_store_load(s, "demo", &e, &err), GM_OK);
    if (e) {
        CHECK_INT(e->status, GM_DEP_DESTROYING);
        CHECK_INT(e->n_nodes, 4);
        CHECK_STR(gm_deployment_node(e, "ec2")->id, "i-0abc");
        CHECK_INT(e->updated_at, d->updated_at);
    }
    gm_deployment_free(e);

    /* No tmp files are left behind. */
    char *dir = gm_strfmt("%s/deployments", root);
    char *hidden = hidden_entries(dir);
    CHECK_STR(hidden, "");
    free(hidden);

    /* A stale tmp file of a dead process with our pid does not block saves. */
    char *tmp = gm_strfmt("%s/.demo.json.tmp.%ld", dir, (long)getpid());
    spit(tmp, "junk", 4);
    CHECK_INT(gm_store_save(s, d, &err), GM_OK);
    CHECK(!exists(tmp));
    free(tmp);

    free(dir);
    free(first);
    free(second);
    free(backup);
    free(backup2);
    free(path);
    free(bak);
    gm_deployment_free(d);
    gm_store_free(s);
    rm_rf(root);
    free(root);
}

/* Saves that fail leave the old file exactly as it was. */
static void test_save_failure(void)
{
    char *root = temp_root();
    gm_store *s = NULL;
    gm_error err = {0};
    CHECK_INT(gm_store_open(root, &s, &err), GM_OK);
    if (!s)
        return;
    char *dir = gm_strfmt("%s/deployments", root);
    char *path = gm_strfmt("%s/demo.json", dir);
    char *bak = gm_strfmt("%s/demo.json.bak", dir);
    gm_deployment *d = sample("demo");
    CHECK_INT(gm_store_save(s, d, &err), GM_OK);
    CHECK_INT(gm_store_save(s, d, &err), GM_OK);
    size_t len0 = 0, bak_len0 = 0;
    char *orig = slurp(path, &len0);
    char *orig_bak = slurp(bak, &bak_len0);
    int64_t updated = d->updated_at;

    /* The tmp path is taken by a directory: creating the tmp file fails. */
    char *tmp = gm_strfmt("%s/.demo.json.tmp.%ld", dir, (long)getpid());
    CHECK(mkdir(tmp, 0700) == 0);
    d->status = GM_DEP_FAILED;
    CHECK_INT(gm_store_save(s, d, &err), GM_ERR_IO);
    CHECK(contains(err.message, tmp));
    CHECK_INT(d->updated_at, updated);
    size_t len = 0;
    char *now = slurp(path, &len);
    CHECK(now && len == len0 && memcmp(now, orig, len0) == 0);
    free(now);
    now = slurp(bak, &len);
    CHECK(now && len == bak_len0 && memcmp(now, orig_bak, len) == 0);
    free(now);
    rmdir(tmp);

    /* Too big to save: refused before anything is written. */
    char *huge = malloc(GM_LIMIT_STATE_FILE + 10);
    memset(huge, 'x', GM_LIMIT_STATE_FILE + 9);
    huge[GM_LIMIT_STATE_FILE + 9] = '\0';
    json_object_set_new(d->config, "huge", json_string(huge));
    free(huge);
    gm_error_clear(&err);
    CHECK_INT(gm_store_save(s, d, &err), GM_ERR_LIMIT);
    CHECK_STR(err.message, "state of 'demo' is larger than 4194304 bytes; it was not saved");
    now = slurp(path, &len);
    CHECK(now && len == len0 && memcmp(now, orig, len0) == 0);
    free(now);
    char *hidden = hidden_entries(dir);
    CHECK_STR(hidden, "");
    free(hidden);
    json_object_del(d->config, "huge");

    /* A read-only directory: needs a non-root user, since root ignores modes. */
    if (geteuid() != 0) {
        CHECK(chmod(dir, 0500) == 0);
        gm_error_clear(&err);
        CHECK_INT(gm_store_save(s, d, &err), GM_ERR_IO);
        chmod(dir, 0700);
        now = slurp(path, &len);
        CHECK(now && len == len0 && memcmp(now, orig, len0) == 0);
        free(now);
    } else {
        /* As root, try it as an unprivileged user in a child. */
        char *sub = temp_root();
        int fds[2];
        CHECK(pipe(fds) == 0);
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            char r = 's'; /* skipped */
            if (chown(sub, 65534, 65534) == 0 && setgroups(0, NULL) == 0 && setgid(65534) == 0 &&
                setuid(65534) == 0) {
                gm_store *cs = NULL;
                gm_error ce = {0};
                r = 'f';
                char *cdir = gm_strfmt("%s/deployments", sub);
                char *cpath = gm_strfmt("%s/demo.json", cdir);
                if (gm_store_open(sub, &cs, &ce) == GM_OK && gm_store_save(cs, d, &ce) == GM_OK) {
                    size_t l0 = 0, l1 = 0;
                    char *before = slurp(cpath, &l0);
                    d->status = GM_DEP_RUNNING;
                    if (chmod(cdir, 0500) == 0 && gm_store_save(cs, d, &ce) == GM_ERR_IO) {
                        char *after = slurp(cpath, &l1);
                        if (before && after && l0 == l1 && memcmp(before, after, l0) == 0)
                            r = 'p';
                        free(after);
                    }
                    chmod(cdir, 0700);
                    free(before);
                }
                gm_store_free(cs);
                free(cdir);
                free(cpath);
            }
            if (write(fds[1], &r, 1) != 1)
                _exit(2);
            _exit(0);
        }
        close(fds[1]);
        char r = 0;
        CHECK(read(fds[0], &r, 1) == 1);
        close(fds[0]);
        waitpid(pid, NULL, 0);
        CHECK(r == 'p' || r == 's');
        if (r == 's')
            fprintf(stderr, "note: read-only directory check skipped (cannot drop root)\n");
        rm_rf(sub);
        free(sub);
    }

    /* A file that does not load is never replaced by a save. */
    const char *garbage = "{\"name\": \"demo\", oops";
    spit(path, garbage, strlen(garbage));
    gm_error_clear(&err);
    CHECK_INT(gm_store_save(s, d, &err), GM_ERR_CONFLICT);
    CHECK(contains(err.message, "refusing to replace state file"));
    char *kept = slurp(path, NULL);
    CHECK_STR(kept, garbage);
    free(kept);

    free(tmp);
    free(orig);
    free(orig_bak);
    free(path);
    free(bak);
    free(dir);
    gm_deployment_free(d);
    gm_store_free(s);
    rm_rf(root);
    free(root);
}

static void test_corrupt_load(void)
{
    char *root = temp_root();
    gm_store *s = NULL;
    gm_error err = {0};
    CHECK_INT(gm_store_open(root, &s, &err), GM_OK);
    if (!s)
        return;
    CHECK_INT(gm_store_make_dirs(s, &err), GM_OK); /* the test writes files itself */
    char *dir = gm_strfmt("%s/deployments", root);
    char *path = gm_strfmt("%s/demo.json", dir);

    const char *corrupt = "{\n  \"schema_version\": 1,\n  \"name\": \"demo\"\n  \"tier\": \"dev\"";
    spit(path, corrupt, strlen(corrupt));
    gm_deployment *d = (gm_deployment *)1;
    CHECK_INT(gm_store_load(s, "demo", &d, &err), GM_ERR_PARSE);
    CHECK(d == NULL);
    char *prefix = gm_strfmt("state file '%s' is corrupt: ", path);
    CHECK(gm_str_startswith(err.message, prefix));
    CHECK(contains(err.message, "at line 4 column"));
    CHECK(gm_str_endswith(err.message, "; it was left as it is"));
    free(prefix);
    size_t len = 0;
    char *after = slurp(path, &len);
    CHECK(after && len == strlen(corrupt) && memcmp(after, corrupt, len) == 0);
    free(after);
    char *hidden = hidden_entries(dir);
    CHECK_STR(hidden, "");
    free(hidden);
    char *bak = gm_strfmt("%s.bak", path);
    CHECK(!exists(bak));
    free(bak);

    /* Binary junk, and duplicate keys, are corrupt too. */
    spit(path, "\x00\xff\x01", 3);
    gm_error_clear(&err);
    CHECK_INT(gm_store_load(s, "demo", &d, &err), GM_ERR_PARSE);
    const char *dup = "{\"name\":\"demo\",\"name\":\"demo\"}";
    spit(path, dup, strlen(dup));
    gm_error_clear(&err);
    CHECK_INT(gm_store_load(s, "demo", &d, &err), GM_ERR_PARSE);
    CHECK(contains(err.message, "is corrupt"));

    /* Valid JSON with an invalid field. */
    json_t *doc = valid_doc();
    json_object_set_new(node_of(doc, 2), "status", json_string("bogus"));
    char *text = json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    spit(path, text, strlen(text));
    gm_error_clear(&err);
    CHECK_INT(gm_store_load(s, "demo", &d, &err), GM_ERR_PARSE);
    char *want = gm_strfmt("state file '%s' is invalid: state field 'nodes[2].status' has unknown "
                           "value 'bogus'; it was left as it is",
                           path);
    CHECK_STR(err.message, want);
    free(want);
    after = slurp(path, NULL);
    CHECK_STR(after, text);
    free(after);
    free(text);

    /* A newer schema: refused on load, and a save does not overwrite it. */
    doc = valid_doc();
    json_object_set_new(doc, "schema_version", json_integer(7));
    text = json_dumps(doc, 0);
    json_decref(doc);
    spit(path, text, strlen(text));
    gm_error_clear(&err);
    CHECK_INT(gm_store_load(s, "demo", &d, &err), GM_ERR_CONFLICT);
    CHECK_STR(err.message, "state of 'demo' has schema version 7, newer than this geusemaker "
                           "supports (2); upgrade geusemaker");
    gm_deployment *fresh = gm_deployment_new("demo", "dev", "us-east-1");
    gm_error_clear(&err);
    CHECK_INT(gm_store_save(s, fresh, &err), GM_ERR_CONFLICT);
    CHECK(contains(err.message, "newer than this geusemaker"));
    after = slurp(path, NULL);
    CHECK_STR(after, text);
    free(after);
    free(text);
    gm_deployment_free(fresh);

    /* A file holding another deployment. */
    doc = valid_doc();
    json_object_set_new(doc, "name", json_string("other"));
    text = json_dumps(doc, 0);
    json_decref(doc);
    spit(path, text, strlen(text));
    free(text);
    gm_error_clear(&err);
    CHECK_INT(gm_store_load(s, "demo", &d, &err), GM_ERR_CONFLICT);
    CHECK(contains(err.message, "holds deployment 'other', not 'demo'"));

    /* Larger than the limit. */
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs("{\"name\":\"", f);
        for (unsigned i = 0; i < GM_LIMIT_STATE_FILE / 1024 + 1; i++) {
            char block[1024];
            memset(block, 'a', sizeof block);
            fwrite(block, 1, sizeof block, f);
        }
        fputs("\"}", f);
        fclose(f);
    }
    gm_error_clear(&err);
    CHECK_INT(gm_store_load(s, "demo", &d, &err), GM_ERR_LIMIT);
    CHECK(contains(err.message, "is larger than 4194304 bytes"));
    CHECK(d == NULL);

    free(path);
    free(dir);
    gm_store_free(s);
    rm_rf(root);
    free(root);
}

/* Runs gm_store_lock(name) in a child process; returns its status and message. */
static gm_status lock_in_child(const char *home, const char *name, char *msg, size_t cap)
{
    int fds[2];
    if (pipe(fds) != 0)
        return GM_ERR_INTERNAL;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        gm_store *s = NULL;
        gm_error err = {0};
        gm_lock *l = NULL;
        gm_status st = gm_store_open(home, &s, &err);
        if (st == GM_OK)
            st = gm_store_lock(s, name, &l, &err);
        char out[1 + GM_ERROR_MESSAGE_MAX];
        out[0] = (char)st;
        memcpy(out + 1, err.message, sizeof err.message);
        ssize_t w = write(fds[1], out, sizeof out);
        gm_lock_release(l);
        gm_store_free(s);
        _exit(w == (ssize_t)sizeof out ? 0 : 1);
    }
    close(fds[1]);
    char in[1 + GM_ERROR_MESSAGE_MAX];
    size_t got = 0;
    while (got < sizeof in) {
        ssize_t r = read(fds[0], in + got, sizeof in - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fds[0]);
    waitpid(pid, NULL, 0);
    if (got != sizeof in)
        return GM_ERR_INTERNAL;
    snprintf(msg, cap, "%s", in + 1);
    return (gm_status)in[0];
}

static void test_lock(void)
{
    char *root = temp_root();
    gm_store *s = NULL;
    gm_error err = {0};
    CHECK_INT(gm_store_open(root, &s, &err), GM_OK);
    if (!s)
        return;
    gm_lock *l = NULL;
    CHECK_INT(gm_store_lock(s, "demo", &l, &err), GM_OK);
    char *lock_path = gm_strfmt("%s/deployments/demo.lock", root);
    char *content = slurp(lock_path, NULL);
    char *pid_line = gm_strfmt("%ld\n", (long)getpid());
    CHECK(gm_str_startswith(content, pid_line));
    CHECK(content && strlen(content) > strlen(pid_line)); /* and the command */
    free(content);

    char msg[GM_ERROR_MESSAGE_MAX];
    CHECK_INT(lock_in_child(root, "demo", msg, sizeof msg), GM_ERR_LOCKED);
    char *want = gm_strfmt("deployment 'demo' is locked by another geusemaker process (pid %ld) "
                           "holding '%s'",
                           (long)getpid(), lock_path);
    CHECK_STR(msg, want);
    free(want);
    /* Other names are independent. */
    CHECK_INT(lock_in_child(root, "other", msg, sizeof msg), GM_OK);
    /* A second lock in the same process is refused too. */
    gm_lock *l2 = (gm_lock *)1;
    gm_error_clear(&err);
    CHECK_INT(gm_store_lock(s, "demo", &l2, &err), GM_ERR_LOCKED);
    CHECK(l2 == NULL);
    /* ...and the refused attempt did not disturb the holder's note. */
    content = slurp(lock_path, NULL);
    CHECK(gm_str_startswith(content, pid_line));
    free(content);

    gm_lock_release(l);
    CHECK_INT(lock_in_child(root, "demo", msg, sizeof msg), GM_OK);
    CHECK_STR(msg, "");
    CHECK(exists(lock_path)); /* the file stays; only the flock matters */
    gm_lock_release(NULL);

    free(pid_line);
    free(lock_path);
    gm_store_free(s);
    rm_rf(root);
    free(root);
}

static void test_lock_killed_holder(void)
{
    char *root = temp_root();
    gm_store *s = NULL;
    gm_error err = {0};
    CHECK_INT(gm_store_open(root, &s, &err), GM_OK);
    if (!s)
        return;
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        gm_lock *l = NULL;
        gm_error ce = {0};
        char r = gm_store_lock(s, "demo", &l, &ce) == GM_OK ? 'y' : 'n';
        if (write(fds[1], &r, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    char r = 0;
    CHECK(read(fds[0], &r, 1) == 1);
    CHECK(r == 'y');
    close(fds[0]);

    gm_lock *l = NULL;
    CHECK_INT(gm_store_lock(s, "demo", &l, &err), GM_ERR_LOCKED);
    char *pid_txt = gm_strfmt("(pid %ld)", (long)pid);
    CHECK(contains(err.message, pid_txt));
    free(pid_txt);

    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* The dead holder's note is still in the file, but it does not block. */
    gm_error_clear(&err);
    CHECK_INT(gm_store_lock(s, "demo", &l, &err), GM_OK);
    CHECK_STR(err.message, "");
    gm_lock_release(l);

    gm_store_free(s);
    rm_rf(root);
    free(root);
}

static void test_list(void)
{
    char *root = temp_root();
    gm_store *s = NULL;
    gm_error err = {0};
    CHECK_INT(gm_store_open(root, &s, &err), GM_OK);
    if (!s)
        return;
    const char *names[] = {"gamma-2", "alpha", "beta", "0zero"};
    for (int i = 0; i < 4; i++) {
        gm_deployment *d = gm_deployment_new(names[i], "dev", "us-east-1");
        CHECK_INT(gm_store_save(s, d, &err), GM_OK);
        CHECK_INT(gm_store_save(s, d, &err), GM_OK); /* makes a .bak */
        gm_deployment_free(d);
    }
    gm_lock *l = NULL;
    CHECK_INT(gm_store_lock(s, "delta", &l, &err), GM_OK); /* lock only: not a deployment */
    const char *noise[] = {".alpha.json.tmp.123", ".hidden.json", "UPPER.json", "notes.txt",
                           "bad_name.json",       ".json",        "x.json.bak"};
    for (int i = 0; i < 7; i++) {
        char *p = gm_strfmt("%s/deployments/%s", root, noise[i]);
        spit(p, "{}", 2);
        free(p);
    }
    char **out = NULL;
    size_t n = 0;
    CHECK_INT(gm_store_list(s, &out, &n, &err), GM_OK);
    CHECK_INT(n, 4);
    if (n == 4) {
        CHECK_STR(out[0], "0zero");
        CHECK_STR(out[1], "alpha");
        CHECK_STR(out[2], "beta");
        CHECK_STR(out[3], "gamma-2");
    }
    gm_store_list_free(out, n);
    gm_store_list_free(NULL, 0);
    gm_lock_release(l);
    gm_store_free(s);
    rm_rf(root);
    free(root);
}

static bool archive_name_ok(const char *path, const char *dir, const char *name)
{
    /* DIR/NAME-YYYYMMDDTHHMMSSZ[-k].json */
    size_t dl = strlen(dir), nl = strlen(name);
    if (strncmp(path, dir, dl) != 0 || path[dl] != '/')
        return false;
    const char *p = path + dl + 1;
    if (strncmp(p, name, nl) != 0 || p[nl] != '-')
        return false;
    p += nl + 1;
    for (int i = 0; i < 16; i++) {
        char c = p[i];
        bool ok = (i == 8) ? c == 'T' : (i == 15) ? c == 'Z' : (c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return gm_str_endswith(p, ".json");
}

static void test_archive(void)
{
    char *root = temp_root();
    gm_store *s = NULL;
    gm_error err = {0};
    CHECK_INT(gm_store_open(root, &s, &err), GM_OK);
    if (!s)
        return;
    char *adir = gm_strfmt("%s/archive", root);
    char *path = gm_strfmt("%s/deployments/old.json", root);
    char *bak = gm_strfmt("%s.bak", path);
    gm_deployment *d = gm_deployment_new("old", "dev", "us-east-1");
    d->status = GM_DEP_DESTROYED;
    CHECK_INT(gm_store_save(s, d, &err), GM_OK);
    CHECK_INT(gm_store_save(s, d, &err), GM_OK);
    char *content = slurp(path, NULL);
    CHECK(exists(bak));

    char *a1 = NULL;
    CHECK_INT(gm_store_archive(s, "old", &a1, &err), GM_OK);
    CHECK_STR(err.message, "");
    CHECK(a1 && archive_name_ok(a1, adir, "old"));
    CHECK(!exists(path));
    CHECK(!exists(bak));
    CHECK(!gm_store_exists(s, "old"));
    char *moved = a1 ? slurp(a1, NULL) : NULL;
    CHECK_STR(moved, content);
    free(moved);

    /* Nothing left to archive. */
    char *a2 = (char *)1;
    CHECK_INT(gm_store_archive(s, "old", &a2, &err), GM_ERR_NOT_FOUND);
    CHECK(a2 == NULL);
    CHECK(contains(err.message, "no deployment named 'old'"));

    /* The same name again (same second, likely): a second archive, never an overwrite. */
    CHECK(gm_store_save(s, d, NULL) == GM_OK);
    CHECK(gm_store_archive(s, "old", &a2, NULL) == GM_OK);
    CHECK(a2 && a1 && strcmp(a1, a2) != 0);
    CHECK(a2 && archive_name_ok(a2, adir, "old"));
    CHECK(a1 && exists(a1));
    /* The name is free for a new deployment. */
    gm_deployment *e = NULL;
    gm_error_clear(&err);
    CHECK_INT(gm_store_load(s, "old", &e, &err), GM_ERR_NOT_FOUND);
    char **names = NULL;
    size_t n = 9;
    gm_error_clear(&err);
    CHECK_INT(gm_store_list(s, &names, &n, &err), GM_OK);
    CHECK_INT(n, 0);
    gm_store_list_free(names, n);

    free(a1);
    free(a2);
    free(content);
    free(adir);
    free(path);
    free(bak);
    gm_deployment_free(d);
    gm_store_free(s);
    rm_rf(root);
    free(root);
}

/* ---- folder safety --------------------------------------------------------- */

static struct stat fake_stat(mode_t mode, uid_t uid)
{
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_mode = mode;
    st.st_uid = uid;
    return st;
}

/* The rule itself, with any owner: no root needed. */
static void test_check_stat(void)
{
    gm_error err = {0};
    struct stat st = fake_stat(S_IFDIR | 0700, 1000);
    CHECK_INT(gm_store_check_stat("/h/.gm", &st, NULL, 1000, true, &err), GM_OK);
    st = fake_stat(S_IFDIR | 0755, 1000); /* readable by others is fine */
    CHECK_INT(gm_store_check_stat("/h/.gm", &st, NULL, 1000, true, &err), GM_OK);
    st = fake_stat(S_IFREG | 0600, 1000);
    CHECK_INT(gm_store_check_stat("/h/.gm/deployments/a.json", &st, NULL, 1000, false, &err),
              GM_OK);
    CHECK_STR(err.message, "");

    const mode_t writable[] = {0770, 0720, 0702, 0777, 01777, 0622};
    for (size_t i = 0; i < sizeof writable / sizeof *writable; i++) {
        gm_error_clear(&err);
        st = fake_stat(S_IFDIR | writable[i], 1000);
        CHECK_INT(gm_store_check_stat("/h/.gm/deployments", &st, NULL, 1000, true, &err),
                  GM_ERR_INVALID);
        CHECK_STR(err.message, "refusing '/h/.gm/deployments': it is writable by group/others; "
                               "fix: chmod go-w '/h/.gm/deployments'");
    }
    gm_error_clear(&err);
    st = fake_stat(S_IFREG | 0666, 1000);
    CHECK_INT(gm_store_check_stat("/h/.gm/deployments/a.json", &st, NULL, 1000, false, &err),
              GM_ERR_INVALID);
    CHECK_STR(err.message, "refusing '/h/.gm/deployments/a.json': it is writable by "
                           "group/others; fix: chmod go-w '/h/.gm/deployments/a.json'");

    /* Another owner: the chown to run (-R for a folder); as root, another way too. */
    gm_error_clear(&err);
    st = fake_stat(S_IFDIR | 0700, 0);
    CHECK_INT(gm_store_check_stat("/h/.gm", &st, NULL, 1000, true, &err), GM_ERR_INVALID);
    CHECK_STR(err.message, "refusing '/h/.gm': it is owned by uid 0, not by uid 1000 that runs "
                           "geusemaker; fix: sudo chown -R 1000 '/h/.gm'");
    gm_error_clear(&err);
    st = fake_stat(S_IFREG | 0600, 2000);
    CHECK_INT(gm_store_check_stat("/h/.gm/deployments/a.json", &st, NULL, 1000, false, &err),
              GM_ERR_INVALID);
    CHECK_STR(err.message, "refusing '/h/.gm/deployments/a.json': it is owned by uid 2000, not by "
                           "uid 1000 that runs geusemaker; fix: sudo chown 1000 "
                           "'/h/.gm/deployments/a.json'");
    gm_error_clear(&err);
    st = fake_stat(S_IFDIR | 0700, 1000);
    CHECK_INT(gm_store_check_stat("/h/.gm", &st, NULL, 0, true, &err), GM_ERR_INVALID);
    CHECK_STR(err.message, "refusing '/h/.gm': it is owned by uid 1000, not by uid 0 that runs "
                           "geusemaker; fix: run geusemaker as uid 1000, or chown -R 0 '/h/.gm'");
    /* The owner is judged before the mode: the chown comes first. */
    gm_error_clear(&err);
    st = fake_stat(S_IFDIR | 0777, 3000);
    CHECK_INT(gm_store_check_stat("/h/.gm", &st, NULL, 1000, true, &err), GM_ERR_INVALID);
    CHECK(contains(err.message, "owned by uid 3000"));

    /* Symlinks, whatever they point at and whoever owns them. */
    gm_error_clear(&err);
    st = fake_stat(S_IFLNK | 0777, 1000);
    CHECK_INT(gm_store_check_stat("/h/.gm", &st, "/data/gm", 1000, true, &err), GM_ERR_INVALID);
    CHECK_STR(err.message,
              "refusing '/h/.gm': it is a symlink (to '/data/gm'), and geusemaker does "
              "not follow symlinks in its state folder; fix: replace it with a real "
              "directory: rm '/h/.gm' && mv '/data/gm' '/h/.gm'");
    gm_error_clear(&err);
    CHECK_INT(
        gm_store_check_stat("/h/.gm/deployments/a.json", &st, "/tmp/x's.json", 1000, false, &err),
        GM_ERR_INVALID);
    CHECK_STR(err.message, "refusing '/h/.gm/deployments/a.json': it is a symlink (to "
                           "'/tmp/x's.json'), and geusemaker does not follow symlinks in its "
                           "state folder; fix: replace it with a real file: cp "
                           "--remove-destination '/tmp/x'\\''s.json' '/h/.gm/deployments/a.json' "
                           "&& chmod 600 '/h/.gm/deployments/a.json'");
    gm_error_clear(&err);
    CHECK_INT(gm_store_check_stat("/h/.gm", &st, NULL, 1000, true, &err), GM_ERR_INVALID);
    CHECK_STR(err.message, "refusing '/h/.gm': it is a symlink, and geusemaker does not follow "
                           "symlinks in its state folder; fix: replace it with a real directory");

    /* The wrong kind of thing. */
    gm_error_clear(&err);
    st = fake_stat(S_IFIFO | 0600, 1000);
    CHECK_INT(gm_store_check_stat("/h/.gm/deployments/a.json", &st, NULL, 1000, false, &err),
              GM_ERR_INVALID);
    CHECK(contains(err.message, "it is not a regular file; fix: move it out of the way: mv"));
    gm_error_clear(&err);
    st = fake_stat(S_IFREG | 0600, 1000);
    CHECK_INT(gm_store_check_stat("/h/.gm", &st, NULL, 1000, true, &err), GM_ERR_INVALID);
    CHECK(contains(err.message, "it is not a directory"));
}

/* A store on a fresh home with one saved record "demo"; NULL on failure. */
static gm_store *store_with_demo(const char *home)
{
    gm_store *s = NULL;
    gm_error err = {0};
    CHECK_INT(gm_store_open(home, &s, &err), GM_OK);
    gm_deployment *d = gm_deployment_new("demo", "dev", "us-east-1");
    if (s && d)
        CHECK_INT(gm_store_save(s, d, &err), GM_OK);
    gm_deployment_free(d);
    return s;
}

/* Opens home and expects it refused with exactly want. */
static void expect_open_refused(const char *home, const char *want, int line)
{
    gm_store *s = (gm_store *)1;
    gm_error err = {0};
    gm_status st = gm_store_open(home, &s, &err);
    if (st != GM_ERR_INVALID || s != NULL || !want || strcmp(err.message, want) != 0) {
        fprintf(stderr, "test_state.c:%d: expected open refused \"%s\", got %d \"%s\"\n", line,
                want ? want : "(null)", (int)st, err.message);
        gm_test_checks_failed++;
    }
    if (st == GM_OK)
        gm_store_free(s);
}
#define EXPECT_OPEN_REFUSED(home, want) expect_open_refused((home), (want), __LINE__)

static void test_unsafe_folders(void)
{
    char *root = temp_root();
    char *home = gm_strfmt("%s/home", root);
    char *dep = gm_strfmt("%s/deployments", home);
    char *arch = gm_strfmt("%s/archive", home);
    gm_store_free(store_with_demo(home));

    CHECK(chmod(home, 0777) == 0);
    char *want = gm_strfmt("refusing '%s': it is writable by group/others; fix: chmod go-w '%s'",
                           home, home);
    EXPECT_OPEN_REFUSED(home, want);
    free(want);
    CHECK(chmod(home, 0700) == 0);

    CHECK(chmod(dep, 0770) == 0);
    want =
        gm_strfmt("refusing '%s': it is writable by group/others; fix: chmod go-w '%s'", dep, dep);
    EXPECT_OPEN_REFUSED(home, want);
    free(want);
    CHECK(chmod(dep, 0700) == 0);

    /* A symlinked folder, relative target made absolute in the fix. */
    char *real = gm_strfmt("%s/archive-real", home);
    CHECK(rename(arch, real) == 0);
    CHECK(symlink("archive-real", arch) == 0);
    want = gm_strfmt("refusing '%s': it is a symlink (to '%s'), and geusemaker does not follow "
                     "symlinks in its state folder; fix: replace it with a real directory: rm "
                     "'%s' && mv '%s' '%s'",
                     arch, real, arch, real, arch);
    EXPECT_OPEN_REFUSED(home, want);
    free(want);
    CHECK(unlink(arch) == 0);
    CHECK(rename(real, arch) == 0);

    /* The home itself symlinked. */
    char *link = gm_strfmt("%s/linked", root);
    CHECK(symlink(home, link) == 0);
    gm_store *s = (gm_store *)1;
    gm_error err = {0};
    CHECK_INT(gm_store_open(link, &s, &err), GM_ERR_INVALID);
    want = gm_strfmt("refusing '%s': it is a symlink (to '%s')", link, home);
    CHECK(gm_str_startswith(err.message, want));
    free(want);

    /* A folder owned by someone else (only root can make one). */
    if (geteuid() == 0) {
        CHECK(chown(dep, 65534, 65534) == 0);
        want = gm_strfmt("refusing '%s': it is owned by uid 65534, not by uid 0 that runs "
                         "geusemaker; fix: run geusemaker as uid 65534, or chown -R 0 '%s'",
                         dep, dep);
        EXPECT_OPEN_REFUSED(home, want);
        free(want);
        CHECK(chown(dep, 0, 0) == 0);
    }

    /* All fixed: it opens again. */
    s = NULL;
    CHECK_INT(gm_store_open(home, &s, &err), GM_OK);
    gm_store_free(s);
    free(link);
    free(real);
    free(dep);
    free(arch);
    free(home);
    rm_rf(root);
    free(root);
}

/* Every operation on an unsafe record (or lock) refuses it with the fix. */
static void expect_record_refused(gm_store *s, const char *want, int line)
{
    gm_deployment *d = NULL;
    gm_error err = {0};
    int before = gm_test_checks_failed;
    CHECK_INT(gm_store_load(s, "demo", &d, &err), GM_ERR_INVALID);
    CHECK(d == NULL);
    CHECK(gm_str_startswith(err.message, want));
    gm_error_clear(&err);
    gm_deployment *fresh = gm_deployment_new("demo", "dev", "us-east-1");
    CHECK_INT(gm_store_save(s, fresh, &err), GM_ERR_INVALID);
    CHECK(gm_str_startswith(err.message, want));
    gm_deployment_free(fresh);
    char **names = NULL;
    size_t n = 0;
    gm_error_clear(&err);
    CHECK_INT(gm_store_list(s, &names, &n, &err), GM_ERR_INVALID);
    CHECK(gm_str_startswith(err.message, want));
    CHECK(names == NULL);
    gm_error_clear(&err);
    CHECK_INT(gm_store_archive(s, "demo", NULL, &err), GM_ERR_INVALID);
    gm_error_clear(&err);
    CHECK_INT(gm_store_forget(s, "demo", NULL, &err), GM_ERR_INVALID);
    CHECK(gm_store_exists(s, "demo")); /* it is there: deploy must not start afresh */
    if (gm_test_checks_failed != before)
        fprintf(stderr, "test_state.c:%d: the record checks above failed\n", line);
}
#define EXPECT_RECORD_REFUSED(s, want) expect_record_refused((s), (want), __LINE__)

static void test_unsafe_record(void)
{
    char *root = temp_root();
    gm_store *s = store_with_demo(root);
    if (!s)
        return;
    char *path = gm_strfmt("%s/deployments/demo.json", root);
    char *elsewhere = gm_strfmt("%s/elsewhere.json", root);
    char *content = slurp(path, NULL);

    CHECK(chmod(path, 0666) == 0);
    char *want = gm_strfmt("refusing '%s': it is writable by group/others; fix: chmod go-w '%s'",
                           path, path);
    EXPECT_RECORD_REFUSED(s, want);
    free(want);
    CHECK(chmod(path, 0620) == 0);
    want = gm_strfmt("refusing '%s': it is writable by group/others", path);
    EXPECT_RECORD_REFUSED(s, want);
    free(want);
    CHECK(chmod(path, 0600) == 0);

    /* A symlink to a perfectly good record is refused all the same. */
    CHECK(rename(path, elsewhere) == 0);
    CHECK(symlink(elsewhere, path) == 0);
    want = gm_strfmt("refusing '%s': it is a symlink (to '%s'), and geusemaker does not follow "
                     "symlinks in its state folder; fix: replace it with a real file: cp "
                     "--remove-destination '%s' '%s' && chmod 600 '%s'",
                     path, elsewhere, elsewhere, path, path);
    EXPECT_RECORD_REFUSED(s, want);
    free(want);
    char *still = slurp(elsewhere, NULL); /* the target was never written */
    CHECK_STR(still, content);
    free(still);
    CHECK(unlink(path) == 0);
    CHECK(rename(elsewhere, path) == 0);

    if (geteuid() == 0) {
        CHECK(chown(path, 65534, 65534) == 0);
        want = gm_strfmt("refusing '%s': it is owned by uid 65534, not by uid 0 that runs "
                         "geusemaker; fix: run geusemaker as uid 65534, or chown 0 '%s'",
                         path, path);
        EXPECT_RECORD_REFUSED(s, want);
        free(want);
        CHECK(chown(path, 0, 0) == 0);
    }

    /* A symlinked lock file. */
    char *lock = gm_strfmt("%s/deployments/demo.lock", root);
    CHECK(symlink(elsewhere, lock) == 0);
    gm_lock *l = (gm_lock *)1;
    gm_error err = {0};
    CHECK_INT(gm_store_lock(s, "demo", &l, &err), GM_ERR_INVALID);
    CHECK(l == NULL);
    want = gm_strfmt("refusing '%s': it is a symlink (to '%s')", lock, elsewhere);
    CHECK(gm_str_startswith(err.message, want));
    free(want);
    CHECK(!exists(elsewhere)); /* not created through the link */
    CHECK(unlink(lock) == 0);

    /* Fixed: everything works again. */
    gm_deployment *d = NULL;
    gm_error_clear(&err);
    CHECK_INT(gm_store_load(s, "demo", &d, &err), GM_OK);
    gm_deployment_free(d);
    free(lock);
    free(content);
    free(path);
    free(elsewhere);
    gm_store_free(s);
    rm_rf(root);
    free(root);
}

/* Reading never creates the state home. */
static void test_reading_creates_nothing(void)
{
    char *root = temp_root();
    char *home = gm_strfmt("%s/not-yet", root);
    gm_store *s = NULL;
    gm_error err = {0};
    CHECK_INT(gm_store_open(home, &s, &err), GM_OK);
    if (s) {
        char **names = (char **)1;
        size_t n = 9;
        CHECK_INT(gm_store_list(s, &names, &n, &err), GM_OK);
        CHECK(names == NULL && n == 0);
        gm_deployment *d = NULL;
        CHECK_INT(gm_store_load(s, "demo", &d, &err), GM_ERR_NOT_FOUND);
        char *want =
            gm_strfmt("no deployment named 'demo' (looked in '%s/deployments/demo.json')", home);
        CHECK_STR(err.message, want);
        free(want);
        CHECK(!gm_store_exists(s, "demo"));
        CHECK(!exists(home));
        /* Another process creates the folders and a record: this store sees them. */
        gm_store *other = store_with_demo(home);
        gm_store_free(other);
        gm_error_clear(&err);
        CHECK_INT(gm_store_load(s, "demo", &d, &err), GM_OK);
        gm_deployment_free(d);
        /* A lock makes every folder. */
        gm_lock *l = NULL;
        CHECK_INT(gm_store_lock(s, "demo", &l, &err), GM_OK);
        gm_lock_release(l);
        char *logs = gm_strfmt("%s/logs", home);
        CHECK_INT(mode_of(logs), 0700);
        free(logs);
    }
    gm_store_free(s);
    free(home);
    rm_rf(root);
    free(root);
}

/* Holds name's lock in a child, without writing a pid (as a tidying reader
 * does), for hold_ms; returns the child's pid once it holds it. */
static pid_t hold_lock_in_child(const char *home, const char *name, int hold_ms)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        char *p = gm_strfmt("%s/deployments/%s.lock", home, name);
        int fd = p ? open(p, O_RDWR | O_CREAT, 0600) : -1;
        char r = fd >= 0 && ftruncate(fd, 0) == 0 && flock(fd, LOCK_EX) == 0 ? 'y' : 'n';
        if (write(fds[1], &r, 1) != 1)
            _exit(1);
        struct timespec ts = {hold_ms / 1000, (long)(hold_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        _exit(0);
    }
    close(fds[1]);
    char r = 0;
    bool ok = read(fds[0], &r, 1) == 1 && r == 'y';
    close(fds[0]);
    return ok ? pid : -1;
}

static void test_tidy_temps(void)
{
    char *root = temp_root();
    gm_store *s = store_with_demo(root);
    if (!s)
        return;
    char *dir = gm_strfmt("%s/deployments", root);
    const char *junk[] = {".demo.json.tmp.4242", ".demo.json.bak.tmp.77"};
    const char *kept[] = {".demo.json.tmp.x1", ".demo.json.tmpx.1", ".demo.json.tmp.", "notes.txt",
                          ".demox.json.tmp.5"};
    for (size_t i = 0; i < 2; i++) {
        char *p = gm_strfmt("%s/%s", dir, junk[i]);
        spit(p, "half a record", 13);
        free(p);
    }
    for (size_t i = 0; i < 5; i++) {
        char *p = gm_strfmt("%s/%s", dir, kept[i]);
        spit(p, "x", 1);
        free(p);
    }
    /* A load of demo removes demo's leftovers, nothing else. */
    gm_deployment *d = NULL;
    gm_error err = {0};
    CHECK_INT(gm_store_load(s, "demo", &d, &err), GM_OK);
    gm_deployment_free(d);
    for (size_t i = 0; i < 2; i++) {
        char *p = gm_strfmt("%s/%s", dir, junk[i]);
        CHECK(!exists(p));
        free(p);
    }
    for (size_t i = 0; i < 5; i++) {
        char *p = gm_strfmt("%s/%s", dir, kept[i]);
        CHECK(exists(p));
        free(p);
    }

    /* A live writer holds the lock: its tmp file is left alone by readers. */
    char *live = gm_strfmt("%s/.demox.json.tmp.5", dir);
    pid_t holder = hold_lock_in_child(root, "demox", 1000);
    CHECK(holder > 0);
    char **names = NULL;
    size_t n = 0;
    CHECK_INT(gm_store_list(s, &names, &n, &err), GM_OK);
    gm_store_list_free(names, n);
    CHECK(exists(live));
    /* ...and a writer taking the lock while a reader holds it for a moment
     * (no pid in the file) waits that moment instead of failing. */
    gm_lock *l = NULL;
    CHECK_INT(gm_store_lock(s, "demox", &l, &err), GM_ERR_LOCKED);
    CHECK(contains(err.message, "pid unknown"));
    waitpid(holder, NULL, 0);
    holder = hold_lock_in_child(root, "demox", 60);
    gm_error_clear(&err);
    CHECK_INT(gm_store_lock(s, "demox", &l, &err), GM_OK);
    CHECK(!exists(live)); /* taking the lock removed it */
    gm_lock_release(l);
    waitpid(holder, NULL, 0);

    /* list removes what it can lock. */
    char *again = gm_strfmt("%s/.demox.json.bak.tmp.9", dir);
    spit(again, "x", 1);
    CHECK_INT(gm_store_list(s, &names, &n, &err), GM_OK);
    gm_store_list_free(names, n);
    CHECK(!exists(again));
    free(again);
    free(live);
    free(dir);
    gm_store_free(s);
    rm_rf(root);
    free(root);
}

static void test_forget(void)
{
    char *root = temp_root();
    gm_store *s = store_with_demo(root);
    if (!s)
        return;
    gm_deployment *d = gm_deployment_new("demo", "dev", "us-east-1");
    gm_error err = {0};
    CHECK_INT(gm_store_save(s, d, &err), GM_OK); /* makes a .bak */
    char *path = gm_strfmt("%s/deployments/demo.json", root);
    char *content = slurp(path, NULL);
    char *out = NULL;
    CHECK_INT(gm_store_forget(s, "demo", &out, &err), GM_OK);
    char *adir = gm_strfmt("%s/archive", root);
    CHECK(out && gm_str_startswith(out, adir) && gm_str_endswith(out, ".forgotten.json"));
    CHECK(out && archive_name_ok(out, adir, "demo"));
    char *moved = out ? slurp(out, NULL) : NULL;
    CHECK_STR(moved, content);
    CHECK_INT(out ? mode_of(out) : -1, 0600);
    CHECK(!gm_store_exists(s, "demo"));
    char *bak = gm_strfmt("%s.bak", path);
    CHECK(!exists(bak));
    /* Twice in the same second: never an overwrite. */
    CHECK_INT(gm_store_save(s, d, &err), GM_OK);
    char *out2 = NULL;
    CHECK_INT(gm_store_forget(s, "demo", &out2, &err), GM_OK);
    CHECK(out && out2 && strcmp(out, out2) != 0 && gm_str_endswith(out2, ".forgotten.json"));
    char *out3 = (char *)1;
    CHECK_INT(gm_store_forget(s, "demo", &out3, &err), GM_ERR_NOT_FOUND);
    CHECK(out3 == NULL);
    CHECK(contains(err.message, "no deployment named 'demo'"));
    gm_error_clear(&err);
    CHECK_INT(gm_store_forget(s, "../x", NULL, &err), GM_ERR_INVALID);
    free(out);
    free(out2);
    free(moved);
    free(bak);
    free(adir);
    free(content);
    free(path);
    gm_deployment_free(d);
    gm_store_free(s);
    rm_rf(root);
    free(root);
}

int main(void)
{
    GM_RUN(test_enums);
    GM_RUN(test_record_api);
    GM_RUN(test_round_trip);
    GM_RUN(test_validation);
    GM_RUN(test_migration);
    GM_RUN(test_newer_schema);
    GM_RUN(test_events_cap);
    GM_RUN(test_names);
    GM_RUN(test_open_modes);
    GM_RUN(test_save_load);
    GM_RUN(test_save_failure);
    GM_RUN(test_corrupt_load);
    GM_RUN(test_lock);
    GM_RUN(test_lock_killed_holder);
    GM_RUN(test_list);
    GM_RUN(test_archive);
    GM_RUN(test_check_stat);
    GM_RUN(test_unsafe_folders);
    GM_RUN(test_unsafe_record);
    GM_RUN(test_reading_creates_nothing);
    GM_RUN(test_tidy_temps);
    GM_RUN(test_forget);
    GM_TEST_END();
}
