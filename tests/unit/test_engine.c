/* The executor through the node API, with fake node kinds: order and
 * concurrency, failure and rollback order, dependency errors on delete,
 * interrupts, the load balancer group, resume, the journal on disk, and a
 * malformed graph. No AWS: the fake kinds make no call. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/timeutil.h"
#include "engine/engine.h"
#include "engine/node.h"
#include "engine/nodes.h"
#include "engine/plan.h"
#include "gm_test.h"
#include "stack/validate.h"
#include "mock_transport.h"
#include "state/store.h"

/* ---- a recording of what the fake kinds did ------------------------------ */

#define MAX_EVENTS 64

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static char events[MAX_EVENTS][48];
static int n_events;
static int active, max_active;

static void record(const char *what, const gm_node *n)
{
    pthread_mutex_lock(&rec_lock);
    if (n_events < MAX_EVENTS)
        snprintf(events[n_events++], sizeof events[0], "%s %s", what, gm_node_name(n));
    pthread_mutex_unlock(&rec_lock);
}

static int index_of(const char *event)
{
    for (int i = 0; i < n_events; i++)
        if (strcmp(events[i], event) == 0)
            return i;
    return -1;
}

static void reset_recording(void)
{
    n_events = 0;
    active = max_active = 0;
}

/* ---- the fake kinds ------------------------------------------------------------ */

static gm_store *g_store; /* the store of the running test, for journal checks */
static int dependency_errors_left;

/* Creates "id-NAME" after journalling the intent; slow nodes sleep 50 ms so
 * that independent ones overlap. */
static gm_status fake_create(gm_node *n, gm_error *err)
{
    record("create", n);
    pthread_mutex_lock(&rec_lock);
    if (++active > max_active)
        max_active = active;
    pthread_mutex_unlock(&rec_lock);
    gm_status st = gm_node_intent(n, NULL, 0, err);
    if (st == GM_OK)
        st = gm_node_wait(n, 50, "pretending to create", err);
    char id[64];
    snprintf(id, sizeof id, "id-%s", gm_node_name(n));
    if (st == GM_OK)
        st = gm_node_created(n, id, err);
    pthread_mutex_lock(&rec_lock);
    active--;
    pthread_mutex_unlock(&rec_lock);
    return st;
}

static gm_status fake_fail(gm_node *n, gm_error *err)
{
    record("create", n);
    gm_status st = gm_node_intent(n, NULL, 0, err);
    return st == GM_OK ? gm_error_set(err, GM_ERR_AWS, "no capacity for %s", gm_node_name(n)) : st;
}

/* Waits until the run's deadline or an interrupt. */
static gm_status fake_slow(gm_node *n, gm_error *err)
{
    record("create", n);
    gm_status st = gm_node_intent(n, NULL, 0, err);
    while (st == GM_OK)
        st = gm_node_wait(n, 20, "pretending to wait", err);
    return st;
}

/* Checks the journal on disk: the intent is saved before the "request",
 * the id right after it. */
static gm_status fake_journal_check(gm_node *n, gm_error *err)
{
    record("create", n);
    gm_status st = gm_node_intent(n, NULL, 0, err);
    gm_deployment *d = NULL;
    gm_error lerr = {0};
    CHECK_INT(gm_store_load(g_store, gm_node_deployment(n), &d, &lerr), GM_OK);
    gm_node_state *s = d ? gm_deployment_node(d, gm_node_name(n)) : NULL;
    CHECK(s && s->status == GM_NODE_CREATING && *s->token && !s->id);
    gm_deployment_free(d);
    if (st == GM_OK)
        st = gm_node_created(n, "id-journal", err);
    CHECK_INT(gm_store_load(g_store, gm_node_deployment(n), &d, &lerr), GM_OK);
    s = d ? gm_deployment_node(d, gm_node_name(n)) : NULL;
    CHECK(s && s->id && strcmp(s->id, "id-journal") == 0);
    gm_deployment_free(d);
    return st;
}

static gm_status fake_find(gm_node *n, gm_ids *out, gm_error *err)
{
    record("find", n);
    char id[64];
    snprintf(id, sizeof id, "found-%s", gm_node_name(n));
    return gm_ids_add(out, id, err);
}

static gm_status fake_destroy(gm_node *n, const char *id, gm_error *err)
{
    pthread_mutex_lock(&rec_lock);
    bool busy = strcmp(gm_node_name(n), "a") == 0 && dependency_errors_left > 0;
    if (busy)
        dependency_errors_left--;
    pthread_mutex_unlock(&rec_lock);
    if (busy) {
        gm_status st = gm_error_set(err, GM_ERR_AWS, "DependencyViolation: still in use");
        snprintf(err->aws_code, sizeof err->aws_code, "DependencyViolation");
        return st;
    }
    record("destroy", n);
    return GM_OK;
}

static const gm_node_ops ok_ops = {.kind = "fake",
                                   .label = "making a fake",
                                   .delete_label = "deleting a fake",
                                   .owns_resource = true,
                                   .create = fake_create,
                                   .find = fake_find,
                                   .destroy = fake_destroy};
static const gm_node_ops fail_ops = {.kind = "fake",
                                     .label = "failing",
                                     .delete_label = "deleting a fake",
                                     .owns_resource = true,
                                     .create = fake_fail,
                                     .find = fake_find,
                                     .destroy = fake_destroy};
static const gm_node_ops slow_ops = {.kind = "fake",
                                     .label = "waiting",
                                     .delete_label = "deleting a fake",
                                     .owns_resource = true,
                                     .create = fake_slow,
                                     .find = fake_find,
                                     .destroy = fake_destroy};
static const gm_node_ops journal_ops = {.kind = "fake",
                                        .label = "checking the journal",
                                        .owns_resource = true,
                                        .create = fake_journal_check,
                                        .destroy = fake_destroy};

/* ---- a run ----------------------------------------------------------------------- */

typedef struct fixture {
    char home[64];
    gm_store *store;
    gm_aws_client *aws;
    gm_deployment *dep;
    gm_engine_options o;
    gm_deploy_config cfg;
    volatile sig_atomic_t interrupt;
} fixture;

static void setup(fixture *f, const gm_engine_graph *g, const char *name)
{
    memset(f, 0, sizeof *f);
    reset_recording();
    snprintf(f->home, sizeof f->home, "/tmp/gm-engine-test-XXXXXX");
    CHECK(mkdtemp(f->home) != NULL);
    gm_error err = {0};
    CHECK_INT(gm_store_open(f->home, &f->store, &err), GM_OK);
    g_store = f->store;
    /* The sweep's look-ups by tag find nothing. */
    static const mock_reply nothing_tagged = {.status = 200,
                                              .body = "{\"ResourceTagMappingList\": []}"};
    mock_transport *m = mock_new();
    m->fallback = &nothing_tagged;
    f->aws = mock_client(m, "us-east-1", 1);
    CHECK(f->aws != NULL);
    f->dep = gm_deployment_new(name, "dev", "us-east-1");
    CHECK_INT(gm_store_save(f->store, f->dep, &err), GM_OK);
    f->cfg = (gm_deploy_config){.name = name, .tier = GM_TIER_DEV, .instance_type = "t3.large"};
    f->o = (gm_engine_options){.aws = f->aws,
                               .store = f->store,
                               .interrupt = &f->interrupt,
                               .settings = {.poll_ms = 5, .destroy_timeout_ms = 5000},
                               .graph = g};
}

static void teardown(fixture *f)
{
    gm_deployment_free(f->dep);
    gm_aws_client_free(f->aws);
    gm_store_free(f->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->home);
    CHECK_INT(system(cmd), 0);
}

static gm_node_status status_of(fixture *f, const char *node)
{
    gm_node_state *s = gm_deployment_node(f->dep, node);
    return s ? s->status : GM_NODE_PENDING;
}

/* ---- the cases ------------------------------------------------------------------ */

/*   a -> b, a -> c, (b, c) -> d */
static const gm_node_def diamond[] = {
    {.name = "a", .ops = &ok_ops},
    {.name = "b", .ops = &ok_ops, .deps = {"a"}},
    {.name = "c", .ops = &ok_ops, .deps = {"a"}},
    {.name = "d", .ops = &ok_ops, .deps = {"b", "c"}},
};
static const gm_engine_graph diamond_graph = {diamond, 4};

static void test_forward_order_and_concurrency(void)
{
    fixture f;
    setup(&f, &diamond_graph, "diamond");
    gm_error err = {0};
    gm_deploy_outcome out;
    CHECK_INT(gm_engine_deploy(&f.o, &f.cfg, f.dep, false, &out, &err), GM_OK);
    CHECK_INT(f.dep->status, GM_DEP_RUNNING);
    CHECK_INT(n_events, 4);
    CHECK_INT(index_of("create a"), 0);
    CHECK_INT(index_of("create d"), 3);
    CHECK(max_active >= 2); /* b and c ran at the same time */
    for (const char *const *n = (const char *const[]){"a", "b", "c", "d", NULL}; *n; n++)
        CHECK_INT(status_of(&f, *n), GM_NODE_CREATED);
    CHECK(!out.rolled_back && !out.partial && !out.interrupted);
    teardown(&f);
}

/*   a -> b -> c(fails); x independent */
static const gm_node_def chain_fail[] = {
    {.name = "a", .ops = &ok_ops},
    {.name = "b", .ops = &ok_ops, .deps = {"a"}},
    {.name = "x", .ops = &ok_ops},
    {.name = "c", .ops = &fail_ops, .deps = {"b"}},
};
static const gm_engine_graph chain_fail_graph = {chain_fail, 4};

static void test_failure_rolls_back_in_reverse_order(void)
{
    fixture f;
    setup(&f, &chain_fail_graph, "rollback");
    dependency_errors_left = 2; /* a is "in use" twice before it can go */
    gm_error err = {0};
    gm_deploy_outcome out;
    CHECK_INT(gm_engine_deploy(&f.o, &f.cfg, f.dep, false, &out, &err), GM_ERR_AWS);
    CHECK(strstr(err.message, "no capacity for c") != NULL);
    CHECK(out.rolled_back);
    CHECK_INT(f.dep->status, GM_DEP_FAILED);
    /* c failed after its intent: it is looked up by tag and deleted too. */
    CHECK(index_of("find c") >= 0);
    int dc = index_of("destroy c"), db = index_of("destroy b"), da = index_of("destroy a");
    CHECK(dc >= 0 && db > dc && da > db);
    CHECK(index_of("destroy x") >= 0);
    CHECK_INT(dependency_errors_left, 0);
    CHECK_INT(status_of(&f, "a"), GM_NODE_DELETED);
    teardown(&f);
}

static void test_no_rollback_keeps_everything(void)
{
    fixture f;
    setup(&f, &chain_fail_graph, "keep");
    f.cfg.no_rollback = true;
    gm_error err = {0};
    gm_deploy_outcome out;
    CHECK_INT(gm_engine_deploy(&f.o, &f.cfg, f.dep, false, &out, &err), GM_ERR_AWS);
    CHECK(!out.rolled_back);
    CHECK_INT(index_of("destroy a"), -1);
    CHECK_INT(f.dep->status, GM_DEP_FAILED);
    CHECK_INT(status_of(&f, "b"), GM_NODE_CREATED);
    CHECK_INT(status_of(&f, "c"), GM_NODE_FAILED);
    /* Resume: what was created stays, the failed node runs again. */
    reset_recording();
    CHECK_INT(gm_engine_deploy(&f.o, &f.cfg, f.dep, true, &out, &err), GM_ERR_AWS);
    CHECK_INT(index_of("create a"), -1);
    CHECK(index_of("create c") >= 0);
    teardown(&f);
}

static const gm_node_def slow[] = {
    {.name = "a", .ops = &ok_ops},
    {.name = "s", .ops = &slow_ops, .deps = {"a"}},
    {.name = "after", .ops = &ok_ops, .deps = {"s"}},
};
static const gm_engine_graph slow_graph = {slow, 3};

static void *interrupt_later(void *arg)
{
    fixture *f = arg;
    gm_sleep_ms(200);
    f->interrupt = 1;
    return NULL;
}

static void test_interrupt_stops_and_keeps_the_journal(void)
{
    fixture f;
    setup(&f, &slow_graph, "interrupt");
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, interrupt_later, &f), 0);
    gm_error err = {0};
    gm_deploy_outcome out;
    int64_t t0 = gm_now_ms();
    CHECK_INT(gm_engine_deploy(&f.o, &f.cfg, f.dep, false, &out, &err), GM_ERR_INTERRUPTED);
    pthread_join(t, NULL);
    CHECK(gm_now_ms() - t0 < 5000);
    CHECK(out.interrupted && !out.rolled_back);
    CHECK_INT(index_of("create after"), -1);
    CHECK_INT(index_of("destroy a"), -1);
    CHECK_INT(f.dep->status, GM_DEP_FAILED);
    /* On disk as in memory. */
    gm_deployment *d = NULL;
    CHECK_INT(gm_store_load(f.store, "interrupt", &d, &err), GM_OK);
    CHECK(d && d->status == GM_DEP_FAILED);
    CHECK(d && gm_deployment_node(d, "a") && gm_deployment_node(d, "a")->id);
    gm_deployment_free(d);
    teardown(&f);
}

static void test_deadline_stops_a_wait(void)
{
    fixture f;
    setup(&f, &slow_graph, "deadline");
    f.cfg.timeout_ms = 300;
    f.cfg.no_rollback = true;
    gm_error err = {0};
    CHECK_INT(gm_engine_deploy(&f.o, &f.cfg, f.dep, false, NULL, &err), GM_ERR_TIMEOUT);
    CHECK(strstr(err.message, "timed out") != NULL);
    teardown(&f);
}

/* The load balancer group: a failure there removes only its nodes. */
static const gm_node_def grouped[] = {
    {.name = "core", .ops = &ok_ops},
    {.name = "core2", .ops = &ok_ops, .deps = {"core"}},
    {.name = "lb", .ops = &ok_ops, .deps = {"core"}, .group = GM_GROUP_ALB},
    {.name = "lb_bad", .ops = &fail_ops, .deps = {"lb"}, .group = GM_GROUP_ALB},
};
static const gm_engine_graph grouped_graph = {grouped, 4};

static void test_group_failure_removes_only_the_group(void)
{
    fixture f;
    setup(&f, &grouped_graph, "grouped");
    gm_error err = {0};
    gm_deploy_outcome out;
    CHECK_INT(gm_engine_deploy(&f.o, &f.cfg, f.dep, false, &out, &err), GM_ERR_AWS);
    CHECK(out.partial && !out.rolled_back);
    CHECK_INT(f.dep->status, GM_DEP_PARTIAL);
    CHECK(index_of("destroy lb") >= 0 && index_of("destroy lb_bad") >= 0);
    CHECK_INT(index_of("destroy core"), -1);
    CHECK_INT(status_of(&f, "core2"), GM_NODE_CREATED);
    /* destroy then removes the rest, in reverse order */
    reset_recording();
    CHECK_INT(gm_engine_destroy(&f.o, f.dep, false, &err), GM_OK);
    CHECK(index_of("destroy core2") >= 0 && index_of("destroy core") > index_of("destroy core2"));
    CHECK_INT(f.dep->status, GM_DEP_DESTROYED);
    teardown(&f);
}

static const gm_node_def journal[] = {{.name = "j", .ops = &journal_ops}};
static const gm_engine_graph journal_graph = {journal, 1};

static void test_journal_is_on_disk_before_and_after_the_request(void)
{
    fixture f;
    setup(&f, &journal_graph, "journal");
    gm_error err = {0};
    CHECK_INT(gm_engine_deploy(&f.o, &f.cfg, f.dep, false, NULL, &err), GM_OK);
    CHECK_INT(index_of("create j"), 0);
    teardown(&f);
}

/* A dependency listed after its node is a bug in the graph: reported, not a
 * crash. */
static const gm_node_def backwards[] = {
    {.name = "first", .ops = &ok_ops, .deps = {"second"}},
    {.name = "second", .ops = &ok_ops},
};
static const gm_engine_graph backwards_graph = {backwards, 2};

static void test_malformed_graph_is_an_error(void)
{
    fixture f;
    setup(&f, &backwards_graph, "backwards");
    gm_error err = {0};
    CHECK_INT(gm_engine_deploy(&f.o, &f.cfg, f.dep, false, NULL, &err), GM_ERR_INTERNAL);
    CHECK(strstr(err.message, "'first' depends on 'second'") != NULL);
    CHECK_INT(n_events, 0);
    teardown(&f);
}

/* The observer hears every step in order. */
static int starts, dones;
static void observer(void *ctx, const gm_engine_event *ev)
{
    (void)ctx;
    if (ev->kind == GM_EVENT_STEP_START)
        __atomic_add_fetch(&starts, 1, __ATOMIC_SEQ_CST);
    if (ev->kind == GM_EVENT_STEP_DONE)
        __atomic_add_fetch(&dones, 1, __ATOMIC_SEQ_CST);
}

static void test_events_reach_the_observer(void)
{
    fixture f;
    setup(&f, &diamond_graph, "events");
    f.o.observer = observer;
    starts = dones = 0;
    gm_error err = {0};
    CHECK_INT(gm_engine_deploy(&f.o, &f.cfg, f.dep, false, NULL, &err), GM_OK);
    CHECK_INT(starts, 4);
    CHECK_INT(dones, 4);
    teardown(&f);
}

/* The position of node name in a graph's JSON, or -1. */
static int graph_index(const json_t *g, const char *name)
{
    size_t i;
    json_t *n;
    json_array_foreach (g, i, n) {
        if (strcmp(json_string_value(json_object_get(n, "node")), name) == 0)
            return (int)i;
    }
    return -1;
}

/* The tier graphs are well formed: every dependency comes first, the load
 * balancer group only in tier automation, the Elastic IP only without it;
 * the instance is the Auto Scaling group's, from the launch template. */
static void test_tier_graphs_are_well_formed(void)
{
    const gm_tier tiers[] = {GM_TIER_DEV, GM_TIER_AUTOMATION, GM_TIER_GPU};
    for (int t = 0; t < 3; t++) {
        json_t *g = gm_engine_graph_json(tiers[t]);
        CHECK(g != NULL);
        size_t i;
        json_t *n;
        bool alb = false, automation = tiers[t] == GM_TIER_AUTOMATION;
        json_array_foreach (g, i, n) {
            const char *name = json_string_value(json_object_get(n, "node"));
            if (name && strncmp(name, "alb", 3) == 0)
                alb = true;
            size_t k;
            json_t *d;
            json_array_foreach (json_object_get(n, "deps"), k, d) {
                int at = graph_index(g, json_string_value(d));
                CHECK(at >= 0 && (size_t)at < i);
            }
        }
        CHECK(alb == automation);
        CHECK((graph_index(g, "eip") >= 0) == !automation);
        CHECK(graph_index(g, "instance") < 0);
        CHECK(graph_index(g, "launch_template") < graph_index(g, "asg"));
        CHECK(graph_index(g, "asg") < graph_index(g, "health"));
        CHECK(!automation || graph_index(g, "asg") < graph_index(g, "targets"));
        json_decref(g);
    }
}

/* ---- what real AWS refuses that the emulator takes (issue 11) ------------ */

/* Every candidate type's architecture decides the image. */
static void test_instance_type_architecture(void)
{
    const char *arm[] = {"t4g.xlarge", "m7g.large",          "c7gn.large",
                         "g5g.xlarge", "x2gd.xlarge",        "r6gd.large",
                         "a1.large",   "p6e-gb200.36xlarge", "hpc7g.16xlarge"};
    for (size_t i = 0; i < sizeof arm / sizeof *arm; i++)
        CHECK_STR(gm_arch_name(gm_instance_type_arch(arm[i])), "arm64");
    const char *x86[] = {"t3.xlarge",
                         "m6i.xlarge",
                         "g5.xlarge",
                         "g4dn.xlarge",
                         "gr6.4xlarge",
                         "p6-b200.48xlarge",
                         "g6f.large",
                         "hpc6a.48xlarge",
                         "p3.2xlarge",
                         "bogus",
                         ""};
    for (size_t i = 0; i < sizeof x86 / sizeof *x86; i++)
        CHECK_STR(gm_arch_name(gm_instance_type_arch(x86[i])), "x86_64");
}

static void check_param(gm_os os, gm_tier tier, gm_arch arch, const char *want)
{
    char buf[256];
    CHECK(gm_stack_ami_parameter(os, tier, arch, buf, sizeof buf));
    CHECK_STR(buf, want);
}

/* The SSM public parameters of each system, tier and architecture. */
static void test_image_parameters(void)
{
    check_param(GM_OS_AL2023, GM_TIER_DEV, GM_ARCH_X86_64,
                "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64");
    check_param(GM_OS_AL2023, GM_TIER_AUTOMATION, GM_ARCH_ARM64,
                "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64");
    check_param(GM_OS_AL2023, GM_TIER_GPU, GM_ARCH_X86_64,
                "/aws/service/deeplearning/ami/x86_64/"
                "base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id");
    check_param(GM_OS_AL2023, GM_TIER_GPU, GM_ARCH_ARM64,
                "/aws/service/deeplearning/ami/arm64/"
                "base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id");
    check_param(GM_OS_UBUNTU2404, GM_TIER_DEV, GM_ARCH_X86_64,
                "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/"
                "ami-id");
    check_param(GM_OS_UBUNTU2204, GM_TIER_DEV, GM_ARCH_ARM64,
                "/aws/service/canonical/ubuntu/server/22.04/stable/current/arm64/hvm/ebs-gp3/"
                "ami-id");
    check_param(GM_OS_UBUNTU2204, GM_TIER_GPU, GM_ARCH_X86_64,
                "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/"
                "latest/ami-id");
    check_param(GM_OS_UBUNTU2404, GM_TIER_GPU, GM_ARCH_ARM64,
                "/aws/service/deeplearning/ami/arm64/base-oss-nvidia-driver-gpu-ubuntu-24.04/"
                "latest/ami-id");
    char tiny[8];
    CHECK(!gm_stack_ami_parameter(GM_OS_AL2023, GM_TIER_DEV, GM_ARCH_X86_64, tiny, sizeof tiny));
    gm_os os = GM_OS_AL2023;
    CHECK(gm_os_parse("ubuntu-24.04", &os) && os == GM_OS_UBUNTU2404);
    CHECK(gm_os_parse("ubuntu-22.04", &os) && os == GM_OS_UBUNTU2204);
    CHECK(gm_os_parse("al2023", &os) && os == GM_OS_AL2023);
    CHECK(!gm_os_parse("ubuntu-20.04", &os) && !gm_os_parse("Ubuntu-24.04", &os));
    CHECK_STR(gm_os_option_name(GM_OS_UBUNTU2204), "ubuntu-22.04");
}

static void expect_gpu(const char *type, bool ok, const char *fragment)
{
    gm_error err = {0};
    gm_status st = gm_stack_check_gpu_type(type, GM_OS_AL2023, &err);
    if ((st == GM_OK) != ok)
        fprintf(stderr, "  %s: %s\n", type, err.message);
    CHECK((st == GM_OK) == ok);
    if (!ok) {
        CHECK_INT(st, GM_ERR_INVALID);
        CHECK(strstr(err.message, fragment) != NULL);
        CHECK(strstr(err.message, "g4dn") != NULL); /* names what is supported */
    }
}

/* Only the families the Deep Learning AMI's driver supports, on their own
 * architecture's image. */
static void test_gpu_families_of_the_image(void)
{
    const char *ok[] = {"g4dn.xlarge", "g5.xlarge",   "g6.xlarge",       "g6e.xlarge",
                        "gr6.4xlarge", "g6f.large",   "p4d.24xlarge",    "p5.48xlarge",
                        "g5g.xlarge",  "g7e.2xlarge", "p6-b200.48xlarge"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        expect_gpu(ok[i], true, "");
    const char *old[] = {"g3.4xlarge", "g3s.xlarge", "p2.xlarge", "p3.2xlarge", "p3dn.24xlarge"};
    for (size_t i = 0; i < sizeof old / sizeof *old; i++)
        expect_gpu(old[i], false, "older than the NVIDIA driver");
    expect_gpu("p6e-gb200.36xlarge", false, "Capacity Blocks");
    expect_gpu("t3.large", false, "has no GPU");
    expect_gpu("g4ad.xlarge", false, "has no GPU");
}

static gm_status check_cfg(const char *type, const char *types, gm_tier tier, gm_os os,
                           gm_error *err)
{
    gm_deploy_config cfg = {.name = "demo", .tier = tier, .os = os, .instance_type = type};
    *err = (gm_error){0};
    char list[128];
    snprintf(list, sizeof list, "%s", types ? types : "");
    char *save = NULL;
    for (char *t = types ? strtok_r(list, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
        cfg.instance_types[cfg.n_types++] = t;
    return gm_engine_check_config(&cfg, err);
}

/* Checked before any AWS call: one architecture, a family the image runs,
 * a system that runs on the type. */
static void test_config_checks_before_aws(void)
{
    gm_error err = {0};
    CHECK(check_cfg("g5.xlarge", "g5.xlarge,g4dn.xlarge", GM_TIER_GPU, GM_OS_AL2023, &err) ==
          GM_OK);
    CHECK(check_cfg("t4g.xlarge", "t4g.xlarge,m7g.xlarge", GM_TIER_DEV, GM_OS_UBUNTU2404, &err) ==
          GM_OK);
    CHECK(check_cfg("g5g.xlarge", NULL, GM_TIER_GPU, GM_OS_UBUNTU2204, &err) == GM_OK);
    CHECK(check_cfg("t4g.xlarge", "t4g.xlarge,t3.xlarge", GM_TIER_DEV, GM_OS_AL2023, &err) ==
          GM_ERR_INVALID);
    CHECK(strstr(err.message, "mix architectures") && strstr(err.message, "arm64"));
    CHECK(check_cfg("p3.2xlarge", NULL, GM_TIER_GPU, GM_OS_AL2023, &err) == GM_ERR_INVALID);
    CHECK(strstr(err.message, "p3") && strstr(err.message, "g5g"));
    CHECK(check_cfg("g5.xlarge", "g5.xlarge,g3s.xlarge", GM_TIER_GPU, GM_OS_AL2023, &err) ==
          GM_ERR_INVALID);
    CHECK(check_cfg("a1.large", NULL, GM_TIER_DEV, GM_OS_AL2023, &err) == GM_ERR_INVALID);
    CHECK(strstr(err.message, "A1") != NULL);
    CHECK(check_cfg("a1.large", NULL, GM_TIER_DEV, GM_OS_UBUNTU2404, &err) == GM_OK);
}

/* The root volume is never smaller than the image's root snapshot. */
static void test_root_volume_size(void)
{
    CHECK_INT(gm_engine_root_volume_gb(GM_TIER_DEV, 8), 60);
    CHECK_INT(gm_engine_root_volume_gb(GM_TIER_DEV, 0), 60);
    CHECK_INT(gm_engine_root_volume_gb(GM_TIER_DEV, 75), 75);
    CHECK_INT(gm_engine_root_volume_gb(GM_TIER_AUTOMATION, 61), 61);
    CHECK_INT(gm_engine_root_volume_gb(GM_TIER_GPU, 75), 100);
    CHECK_INT(gm_engine_root_volume_gb(GM_TIER_GPU, 150), 150);
    gm_deploy_config cfg = {.name = "demo"};
    CHECK_INT(gm_engine_data_volume_gb(&cfg), GM_DATA_VOLUME_GB_DEFAULT);
    cfg.data_volume_gb = 50;
    CHECK_INT(gm_engine_data_volume_gb(&cfg), 50);
    gm_cost_assumptions a;
    gm_engine_assumptions(&cfg, &a);
    CHECK(a.data_gb == 50 && a.ebs_gb == 60);
    cfg.tier = GM_TIER_GPU;
    gm_engine_assumptions(&cfg, &a);
    CHECK(a.ebs_gb == 100);
}

static const json_t *statement(const json_t *doc, size_t i)
{
    return json_array_get(json_object_get(doc, "Statement"), i);
}

/* The file system policy: TLS for everyone, mounting for the role only. */
static void test_file_system_policy(void)
{
    const char *role = "arn:aws:iam::123456789012:role/geusemaker/geusemaker-demo-abc-role";
    char *text = gm_n_efs_policy("eu-west-1", "fs-0123456789abcdef0", role);
    json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
    CHECK(doc != NULL);
    const char *arn = "arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/"
                      "fs-0123456789abcdef0";
    const json_t *deny = statement(doc, 0), *allow = statement(doc, 1);
    CHECK_STR(json_string_value(json_object_get(deny, "Effect")), "Deny");
    CHECK_STR(json_string_value(json_object_get(json_object_get(deny, "Principal"), "AWS")), "*");
    CHECK_STR(json_string_value(json_object_get(deny, "Resource")), arn);
    CHECK_STR(
        json_string_value(json_object_get(
            json_object_get(json_object_get(deny, "Condition"), "Bool"), "aws:SecureTransport")),
        "false");
    CHECK_STR(json_string_value(json_object_get(allow, "Effect")), "Allow");
    CHECK_STR(json_string_value(json_object_get(json_object_get(allow, "Principal"), "AWS")), role);
    CHECK_INT(json_array_size(json_object_get(allow, "Action")), 3);
    CHECK_STR(json_string_value(json_array_get(json_object_get(allow, "Action"), 2)),
              "elasticfilesystem:ClientRootAccess");
    CHECK_STR(json_string_value(
                  json_object_get(json_object_get(json_object_get(allow, "Condition"), "Bool"),
                                  "elasticfilesystem:AccessedViaMountTarget")),
              "true");
    json_decref(doc);
    free(text);
    text = gm_n_efs_policy("cn-north-1", "fs-0123abcd",
                           "arn:aws-cn:iam::123456789012:role/geusemaker/x-role");
    CHECK(text && strstr(text, "arn:aws-cn:elasticfilesystem:cn-north-1:123456789012:"));
    free(text);
    CHECK(gm_n_efs_policy("eu-west-1", "fs-0123abcd", "not-an-arn") == NULL);
    CHECK(gm_n_efs_policy("eu-west-1", "fs-0123abcd", "arn:aws:iam::1234:role/x") == NULL);
    CHECK(gm_n_efs_policy("eu-west-1", "fs-\"x", role) == NULL);
    CHECK(gm_n_efs_policy("eu-west-1", "fs-0123abcd", "arn:aws:iam::123456789012:role/\"") == NULL);
    /* The role's own policy names that file system, root access included. */
    text = gm_n_iam_stack_policy_for("eu-west-1", "demo", "fs-0123abcd");
    doc = text ? json_loads(text, 0, NULL) : NULL;
    CHECK_STR(json_string_value(json_object_get(statement(doc, 2), "Resource")),
              "arn:aws:elasticfilesystem:eu-west-1:*:file-system/fs-0123abcd");
    CHECK(text && strstr(text, "elasticfilesystem:ClientRootAccess"));
    json_decref(doc);
    free(text);
    /* With an Elastic IP: the instance may associate that address only, with
     * itself only (the deployment's tag), in the region's partition. */
    gm_n_address_grant g = {"eipalloc-0123456789abcdef0", "geusemaker:deployment-id",
                            "ab12cd34ef56"};
    text = gm_n_iam_stack_policy_full("cn-north-1", "demo", "fs-0123abcd", &g);
    doc = text ? json_loads(text, 0, NULL) : NULL;
    const json_t *assoc = statement(doc, 3);
    CHECK_STR(json_string_value(json_object_get(assoc, "Sid")), "AssociateOwnAddress");
    CHECK_STR(json_string_value(json_object_get(assoc, "Action")), "ec2:AssociateAddress");
    const json_t *res = json_object_get(assoc, "Resource");
    CHECK_STR(json_string_value(json_array_get(res, 0)),
              "arn:aws-cn:ec2:cn-north-1:*:elastic-ip/eipalloc-0123456789abcdef0");
    CHECK_STR(json_string_value(json_array_get(res, 1)), "arn:aws-cn:ec2:cn-north-1:*:instance/*");
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(json_object_get(assoc, "Condition"), "StringEquals"),
                  "aws:ResourceTag/geusemaker:deployment-id")),
              "ab12cd34ef56");
    json_decref(doc);
    free(text);
    /* Without one: no such statement. */
    text = gm_n_iam_stack_policy_full("eu-west-1", "demo", "fs-0123abcd", NULL);
    CHECK(text && !strstr(text, "AssociateAddress"));
    free(text);
}

/* --os and --data-volume-gb are saved in the record and read back. */
static void test_instance_settings_in_the_record(void)
{
    gm_deploy_config cfg = {.name = "demo",
                            .tier = GM_TIER_DEV,
                            .os = GM_OS_UBUNTU2204,
                            .data_volume_gb = 50,
                            .instance_type = "t3.xlarge"};
    gm_deployment *dep = NULL;
    gm_error err = {0};
    CHECK(gm_engine_record_new(&cfg, "us-east-1", NULL, &dep, &err) == GM_OK);
    CHECK_STR(json_string_value(json_object_get(dep->config, "os")), "ubuntu-22.04");
    CHECK_INT(json_integer_value(json_object_get(dep->config, "data_volume_gb")), 50);
    gm_deploy_config back;
    memset(&back, 0, sizeof back);
    CHECK(gm_engine_config_from_record(dep, &back, &err) == GM_OK);
    CHECK(back.os == GM_OS_UBUNTU2204 && back.data_volume_gb == 50);
    /* A record made before --os: al2023 and the default volume. */
    json_object_del(dep->config, "os");
    json_object_del(dep->config, "data_volume_gb");
    CHECK(gm_engine_config_from_record(dep, &back, &err) == GM_OK);
    CHECK(back.os == GM_OS_AL2023 && back.data_volume_gb == GM_DATA_VOLUME_GB_DEFAULT);
    json_object_set_new(dep->config, "os", json_string("windows"));
    CHECK(gm_engine_config_from_record(dep, &back, &err) == GM_ERR_PARSE);
    gm_deployment_free(dep);
}

int main(void)
{
    /* Credentials for the (unused) client; nothing leaves the process. */
    setenv("AWS_ACCESS_KEY_ID", "test", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "test", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    GM_RUN(test_forward_order_and_concurrency);
    GM_RUN(test_failure_rolls_back_in_reverse_order);
    GM_RUN(test_no_rollback_keeps_everything);
    GM_RUN(test_interrupt_stops_and_keeps_the_journal);
    GM_RUN(test_deadline_stops_a_wait);
    GM_RUN(test_group_failure_removes_only_the_group);
    GM_RUN(test_journal_is_on_disk_before_and_after_the_request);
    GM_RUN(test_malformed_graph_is_an_error);
    GM_RUN(test_events_reach_the_observer);
    GM_RUN(test_tier_graphs_are_well_formed);
    GM_RUN(test_instance_type_architecture);
    GM_RUN(test_image_parameters);
    GM_RUN(test_gpu_families_of_the_image);
    GM_RUN(test_config_checks_before_aws);
    GM_RUN(test_root_volume_size);
    GM_RUN(test_file_system_policy);
    GM_RUN(test_instance_settings_in_the_record);
    GM_TEST_END();
}
