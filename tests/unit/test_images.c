/* Image overrides (--image SERVICE=REF): the validator (services, the
 * reference grammar, pins required, nothing for a shell or YAML), the Compose
 * file and the UserData with an override, the engine's config check and the
 * record round trip. */
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "gm_test.h"
#include "stack/catalogue.h"
#include "stack/stack.h"

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void expect_image(const char *service, const char *ref, bool ok, const char *message)
{
    gm_error err = {0};
    gm_status st = gm_stack_validate_image(GM_TIER_DEV, service, ref, &err);
    if ((st == GM_OK) != ok || (!ok && st != GM_ERR_INVALID) ||
        (message && !strstr(err.message, message)))
        fprintf(stderr, "  %s=%s: got %d '%s', expected %s '%s'\n", service, ref ? ref : "(null)",
                (int)st, err.message, ok ? "ok" : "refused", message ? message : "");
    CHECK((st == GM_OK) == ok);
    if (!ok)
        CHECK_INT(st, GM_ERR_INVALID);
    if (message)
        CHECK(strstr(err.message, message) != NULL);
}

static void test_good_references(void)
{
    const char *good[] = {
        "n8nio/n8n:2.42.0",
        "n8nio/n8n@" DIGEST,
        "n8nio/n8n:2.42.0@" DIGEST,
        "postgres:16.16-alpine",
        "docker.io/library/postgres:16.16",
        "ghcr.io/owner/repo/sub:v1.0.0-rc.1",
        "localhost:5000/mine:1",
        "localhost/mine:1",
        "registry.example.com:8443/team/n8n:2.42.0_custom",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/n8n:2.42.0",
        "my-registry.local/a.b/c_d/e__f/g---h:TAG_Upper.9",
        "a:_",
        "n8nio/n8n:Latest", /* another tag than "latest": Docker tags are case-sensitive */
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        expect_image("n8n", good[i], true, NULL);
    /* Every service of the catalogue takes one. */
    size_t n = 0;
    const gm_service *svc = gm_stack_services(&n);
    for (size_t i = 0; i < n; i++)
        expect_image(svc[i].name, "example/image:1.0", true, NULL);
    /* The longest reference allowed, and one over. */
    char ref[GM_STACK_IMAGE_REF_MAX + 2];
    memset(ref, 'a', sizeof ref);
    memcpy(ref + GM_STACK_IMAGE_REF_MAX - 2, ":1", 3);
    expect_image("n8n", ref, true, NULL);
    memset(ref, 'a', sizeof ref);
    memcpy(ref + GM_STACK_IMAGE_REF_MAX - 1, ":1", 3);
    expect_image("n8n", ref, false, "characters, at most 255");
}

static void test_bad_references(void)
{
    struct {
        const char *ref, *message;
    } bad[] = {
        {"n8nio/n8n", "names no tag and no digest, so Docker would pull 'latest'"},
        {"n8nio/n8n:latest", "the tag 'latest' moves"},
        {"n8nio/n8n:latest@" DIGEST, "the tag 'latest' moves"},
        {"", "no image reference"},
        {"n8nio/n8n:2.42.0;reboot", "the character ';' cannot appear"},
        {"n8nio/n8n:$(id)", "the character '$' cannot appear"},
        {"n8nio/n8n:${GM_POSTGRES_PASSWORD}", "the character '$' cannot appear"},
        {"n8nio/n8n:1 2", "the character ' ' cannot appear"},
        {"n8nio/n8n:1\"", "the character '\"' cannot appear"},
        {"n8nio/n8n:1'", "the character ''' cannot appear"},
        {"n8nio/n8n:1`x`", "the character '`' cannot appear"},
        {"n8nio/n8n:1\nimage: evil", "the byte 0x0a cannot appear"},
        {"n8nio/n8n:1\\", "the character '\\' cannot appear"},
        {"N8nio/n8n:1", "has capitals (repository names are lowercase)"},
        {"n8nio//n8n:1", "the repository part '' is malformed"},
        {"/n8n:1", "is malformed"},
        {"n8nio/n8n/:1", "is malformed"},
        {":1", "is malformed"},
        {"a..b:1", "the repository part 'a..b' is malformed"},
        {"a._b:1", "is malformed"},
        {"a___b:1", "is malformed"},
        {"-ab:1", "is malformed"},
        {"ab-:1", "is malformed"},
        {"n8nio/n8n:", "the tag '' is not"},
        {"n8nio/n8n:-1", "the tag '-1' is not"},
        {"n8nio/n8n:.1", "the tag '.1' is not"},
        {"n8nio/n8n:1:2", "is malformed"}, /* "n8n:1" as a path component */
        {"n8nio/n8n@sha256:abc", "the digest 'sha256:abc' is not"},
        {"n8nio/n8n@sha512:" DIGEST, "the digest"},
        {"n8nio/n8n@" DIGEST "@" DIGEST, "the digest"},
        {"n8nio/n8n@SHA256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
         "the digest"},
        {"n8nio/n8n@", "the digest '' is not"},
        {"reg.example.com:99999/a:1", "is not a registry HOST[:PORT]"},
        {"reg.example.com:0/a:1", "is not a registry HOST[:PORT]"},
        {"reg.example.com:/a:1", "is not a registry HOST[:PORT]"},
        {"reg..example.com/a:1", "is not a registry HOST[:PORT]"},
        {"-reg.example.com/a:1", "is not a registry HOST[:PORT]"},
        {"reg.example.com:5000/a", "names no tag and no digest"},
        {"[::1]:5000/a:1", "the character '[' cannot appear"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_image("n8n", bad[i].ref, false, bad[i].message);
    char tag[200] = "n8nio/n8n:";
    memset(tag + strlen(tag), '1', 129);
    expect_image("n8nio", tag, false, NULL);
    expect_image("n8n", tag, false, "the tag '111");
    /* The message says what the value was, and names the option. */
    expect_image("n8n", "n8nio/n8n", false, "invalid --image 'n8n=n8nio/n8n': ");
    expect_image("n8n", NULL, false, "no image reference");
}

static void test_unknown_services(void)
{
    expect_image("n8m", "n8nio/n8n:2.42.0", false,
                 "no service 'n8m' in tier dev (did you mean 'n8n'?); expected one of postgres, "
                 "n8n, qdrant, ollama, crawl4ai");
    expect_image("N8N", "n8nio/n8n:2.42.0", false, "did you mean 'n8n'?");
    expect_image("postgress", "postgres:16.16", false, "did you mean 'postgres'?");
    expect_image("nginx", "nginx:1.27", false, "no service 'nginx' in tier dev; expected one of");
    expect_image("", "nginx:1.27", false, "no service ''");
    expect_image(NULL, "nginx:1.27", false, "no service ''");
    gm_error err = {0};
    CHECK_INT(gm_stack_validate_image(GM_TIER_GPU, "ollama", "ollama/ollama:0.41.0", &err), GM_OK);
    CHECK_INT(gm_stack_validate_image(GM_TIER_GPU, "vllm", "vllm/vllm:0.9", &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "in tier gpu") != NULL);
}

static void test_override_lists(void)
{
    const char *svc[] = {"n8n", "qdrant", "n8n"};
    const char *refs[] = {"n8nio/n8n:2.42.0", "qdrant/qdrant:v1.20.0", "n8nio/n8n:2.43.0"};
    gm_error err = {0};
    CHECK_INT(gm_stack_validate_images(GM_TIER_DEV, svc, refs, 2, &err), GM_OK);
    CHECK_INT(gm_stack_validate_images(GM_TIER_DEV, NULL, NULL, 0, &err), GM_OK);
    CHECK_INT(gm_stack_validate_images(GM_TIER_DEV, svc, refs, 3, &err), GM_ERR_INVALID);
    CHECK_STR(err.message, "--image names service 'n8n' twice ('n8nio/n8n:2.42.0' and "
                           "'n8nio/n8n:2.43.0'): give one image per service");
    err = (gm_error){0};
    CHECK_INT(gm_stack_validate_images(GM_TIER_DEV, svc, refs, GM_STACK_MAX_IMAGES + 1, &err),
              GM_ERR_INVALID);
    CHECK(strstr(err.message, "at most 8") != NULL);
    err = (gm_error){0};
    CHECK_INT(gm_stack_validate_images(GM_TIER_DEV, NULL, refs, 1, &err), GM_ERR_INVALID);
    /* The lookup the renderer uses. */
    gm_stack_params p = {.image_services = svc, .image_refs = refs, .n_images = 2};
    CHECK_STR(gm_stack_image_override(&p, "n8n"), "n8nio/n8n:2.42.0");
    CHECK_STR(gm_stack_image_override(&p, "qdrant"), "qdrant/qdrant:v1.20.0");
    CHECK(gm_stack_image_override(&p, "ollama") == NULL);
    CHECK(gm_stack_image_override(NULL, "n8n") == NULL);
    gm_stack_params none = {0};
    CHECK(gm_stack_image_override(&none, "n8n") == NULL);
}

static gm_stack_params params(const char *const *svc, const char *const *refs, size_t n)
{
    static const char *const models[] = {"llama3.2:1b"};
    gm_stack_params p = {
        .name = "demo",
        .tier = GM_TIER_DEV,
        .region = "eu-west-1",
        .instance_type = "t3.xlarge",
        .os = GM_OS_AL2023,
        .efs_id = "fs-0123456789abcdef0",
        .models = models,
        .n_models = 1,
        .image_services = svc,
        .image_refs = refs,
        .n_images = n,
    };
    return p;
}

/* The image line of a service in a Compose file, into out. */
static bool image_line(const char *compose, const char *service, char *out, size_t size)
{
    char head[64];
    snprintf(head, sizeof head, "\n  %s:\n", service);
    const char *s = strstr(compose, head);
    const char *img = s ? strstr(s, "\n    image: ") : NULL;
    const char *end = img ? strchr(img + 1, '\n') : NULL;
    if (!end || (size_t)(end - img) >= size)
        return false;
    snprintf(out, size, "%.*s", (int)(end - img - 1), img + 1);
    return true;
}

static void test_compose_with_an_override(void)
{
    const char *svc[] = {"n8n"};
    const char *refs[] = {"n8nio/n8n:2.42.0"};
    gm_stack_params p = params(svc, refs, 1);
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_COMPOSE_FILE);
    gm_error err = {0};
    CHECK_INT(gm_compose_render(&p, &b, &err), GM_OK);
    const char *s = gm_buf_cstr(&b);
    char line[512];
    CHECK(image_line(s, "n8n", line, sizeof line));
    CHECK_STR(line, "    image: \"n8nio/n8n:2.42.0\"");
    /* The pin it replaces is named in a comment, without its digest. */
    CHECK(strstr(s, "    # image override (--image); the catalogue pins n8nio/n8n:2.41.6\n"
                    "    image: \"n8nio/n8n:2.42.0\"\n") != NULL);
    /* The others keep their pins, digest and all. */
    size_t n = 0;
    const gm_service *all = gm_stack_services(&n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(all[i].name, "n8n") == 0)
            continue;
        char want[512];
        snprintf(want, sizeof want, "    image: \"%s@%s\"", all[i].image, all[i].digest);
        CHECK(image_line(s, all[i].name, line, sizeof line));
        CHECK_STR(line, want);
    }
    CHECK_INT(count(s, "@sha256:"), (int)n - 1);
    CHECK_INT(count(s, "image override"), 1);
    gm_buf_release(&b);

    /* With a digest: written as given. Two services at once. */
    const char *svc2[] = {"qdrant", "ollama"};
    const char *refs2[] = {"qdrant/qdrant:v1.20.0@" DIGEST, "registry.example.com:5000/ollama:1"};
    p = params(svc2, refs2, 2);
    gm_buf_init(&b, GM_LIMIT_COMPOSE_FILE);
    CHECK_INT(gm_compose_render(&p, &b, &err), GM_OK);
    s = gm_buf_cstr(&b);
    CHECK(image_line(s, "qdrant", line, sizeof line));
    CHECK_STR(line, "    image: \"qdrant/qdrant:v1.20.0@" DIGEST "\"");
    CHECK(image_line(s, "ollama", line, sizeof line));
    CHECK_STR(line, "    image: \"registry.example.com:5000/ollama:1\"");
    CHECK(image_line(s, "n8n", line, sizeof line));
    CHECK(strstr(line, "n8nio/n8n:2.41.6@sha256:") != NULL);
    CHECK_INT(count(s, "image override"), 2);
    gm_buf_release(&b);
}

static void test_renderers_refuse_bad_overrides(void)
{
    const char *svc[] = {"n8n"};
    const char *bad[] = {"n8nio/n8n:latest"};
    gm_stack_params p = params(svc, bad, 1);
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_COMPOSE_FILE);
    gm_error err = {0};
    CHECK_INT(gm_compose_render(&p, &b, &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "the tag 'latest' moves") != NULL);
    CHECK_INT(b.len, 0);
    gm_buf_release(&b);
    const char *inject[] = {"x:1\"\n    privileged: true\n    image: \"x:1"};
    p = params(svc, inject, 1);
    gm_buf_init(&b, GM_LIMIT_USERDATA_SCRIPT);
    err = (gm_error){0};
    CHECK_INT(gm_userdata_render(&p, &b, &err), GM_ERR_INVALID);
    CHECK_INT(gm_stack_validate(&p, &err), GM_ERR_INVALID);
    gm_buf_release(&b);
}

/* The UserData carries the Compose file: the override reaches the instance. */
static void test_userdata_with_an_override(void)
{
    const char *svc[] = {"crawl4ai"};
    const char *refs[] = {"unclecode/crawl4ai:0.9.5"};
    gm_stack_params p = params(svc, refs, 1);
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_USERDATA_SCRIPT);
    gm_error err = {0};
    CHECK_INT(gm_userdata_render(&p, &b, &err), GM_OK);
    const char *s = gm_buf_cstr(&b);
    const char *start = strstr(s, "<<'GM_COMPOSE_EOF'\n");
    const char *end = start ? strstr(start, "\nGM_COMPOSE_EOF\n") : NULL;
    CHECK(start && end);
    const char *img = strstr(s, "    image: \"unclecode/crawl4ai:0.9.5\"\n");
    CHECK(img && img > start && img < end);
    CHECK(strstr(s, "unclecode/crawl4ai:0.9.4@sha256:") == NULL);
    gm_buf_release(&b);
}

/* The engine checks overrides with the rest of the config, before AWS. */
static void test_engine_checks_overrides(void)
{
    gm_deploy_config cfg = {.name = "demo", .tier = GM_TIER_DEV, .instance_type = "t3.xlarge"};
    gm_error err = {0};
    CHECK_INT(gm_engine_check_config(&cfg, &err), GM_OK);
    cfg.image_services[0] = "n8n";
    cfg.image_refs[0] = "n8nio/n8n:2.42.0";
    cfg.n_images = 1;
    CHECK_INT(gm_engine_check_config(&cfg, &err), GM_OK);
    cfg.image_services[1] = "n8n";
    cfg.image_refs[1] = "n8nio/n8n:2.43.0";
    cfg.n_images = 2;
    CHECK_INT(gm_engine_check_config(&cfg, &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "names service 'n8n' twice") != NULL);
    err = (gm_error){0};
    cfg.image_services[1] = "qdrant";
    cfg.image_refs[1] = "qdrant/qdrant";
    CHECK_INT(gm_engine_check_config(&cfg, &err), GM_ERR_INVALID);
    CHECK(strstr(err.message, "names no tag and no digest") != NULL);
    err = (gm_error){0};
    cfg.n_images = GM_MAX_IMAGES + 1;
    CHECK_INT(gm_engine_check_config(&cfg, &err), GM_ERR_INVALID);
    err = (gm_error){0};
    cfg.n_images = -1;
    CHECK_INT(gm_engine_check_config(&cfg, &err), GM_ERR_INVALID);
}

/* Saved as "images": {...} in the record's config, read back pointing into
 * it; absent when none, and a record without it loads with none. */
static void test_overrides_in_the_record(void)
{
    gm_deploy_config cfg = {.name = "demo", .tier = GM_TIER_DEV, .instance_type = "t3.xlarge"};
    cfg.image_services[0] = "n8n";
    cfg.image_refs[0] = "n8nio/n8n:2.42.0";
    cfg.image_services[1] = "qdrant";
    cfg.image_refs[1] = "qdrant/qdrant:v1.20.0@" DIGEST;
    cfg.n_images = 2;
    gm_deployment *dep = NULL;
    gm_error err = {0};
    CHECK(gm_engine_record_new(&cfg, "us-east-1", NULL, &dep, &err) == GM_OK);
    if (!dep)
        return;
    const json_t *images = json_object_get(dep->config, "images");
    CHECK(json_is_object(images) && json_object_size(images) == 2);
    CHECK_STR(json_string_value(json_object_get(images, "n8n")), "n8nio/n8n:2.42.0");
    CHECK_STR(json_string_value(json_object_get(images, "qdrant")),
              "qdrant/qdrant:v1.20.0@" DIGEST);
    gm_deploy_config back;
    memset(&back, 0, sizeof back);
    CHECK(gm_engine_config_from_record(dep, &back, &err) == GM_OK);
    CHECK_INT(back.n_images, 2);
    CHECK_STR(back.image_services[0], "n8n");
    CHECK_STR(back.image_refs[0], "n8nio/n8n:2.42.0");
    CHECK_STR(back.image_services[1], "qdrant");
    CHECK_STR(back.image_refs[1], "qdrant/qdrant:v1.20.0@" DIGEST);
    /* Into the record's JSON, not copies. */
    CHECK(back.image_refs[0] == json_string_value(json_object_get(images, "n8n")));
    CHECK_INT(gm_engine_check_config(&back, &err), GM_OK);
    /* A record made before --image: none. */
    json_object_del(dep->config, "images");
    back.n_images = 7;
    CHECK(gm_engine_config_from_record(dep, &back, &err) == GM_OK);
    CHECK_INT(back.n_images, 0);
    /* A value that is no string is skipped. */
    json_object_set_new(dep->config, "images", json_pack("{s:i, s:s}", "n8n", 3, "ollama", "o:1"));
    CHECK(gm_engine_config_from_record(dep, &back, &err) == GM_OK);
    CHECK_INT(back.n_images, 1);
    CHECK_STR(back.image_services[0], "ollama");
    gm_deployment_free(dep);
    /* No overrides: no key. */
    cfg.n_images = 0;
    CHECK(gm_engine_record_new(&cfg, "us-east-1", NULL, &dep, &err) == GM_OK);
    CHECK(dep && json_object_get(dep->config, "images") == NULL);
    gm_deployment_free(dep);
}

int main(void)
{
    GM_RUN(test_good_references);
    GM_RUN(test_bad_references);
    GM_RUN(test_unknown_services);
    GM_RUN(test_override_lists);
    GM_RUN(test_compose_with_an_override);
    GM_RUN(test_renderers_refuse_bad_overrides);
    GM_RUN(test_userdata_with_an_override);
    GM_RUN(test_engine_checks_overrides);
    GM_RUN(test_overrides_in_the_record);
    GM_TEST_END();
}
