/* The stack layer: validation, the catalogue, the secrets, and the UserData
 * and Compose generators (structure, not substrings alone: heredocs balanced,
 * embedded scripts intact, sizes within the EC2 limit). */
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/crypto.h"
#include "gm_test.h"
#include "stack/catalogue.h"
#include "stack/secrets.h"
#include "stack/stack.h"

static const char *const MODELS[] = {"llama3.2:3b", "nomic-embed-text"};

static gm_stack_params params(const char *tier_name, const char *type, gm_os os)
{
    gm_tier tier = (gm_tier)GM_TIER_COUNT; /* out of range unless the name is known */
    gm_tier_parse(tier_name, &tier);
    gm_stack_params p = {
        .name = "demo",
        .tier = tier,
        .region = "eu-west-1",
        .instance_type = type,
        .os = os,
        .efs_id = "fs-0123456789abcdef0",
        .models = MODELS,
        .n_models = 2,
        .ssm_prefix = "/geusemaker/demo/",
    };
    return p;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ---- validation -------------------------------------------------------- */

static void test_tier_and_os_names(void)
{
    gm_tier t;
    CHECK(gm_tier_parse("dev", &t) && t == GM_TIER_DEV);
    CHECK(gm_tier_parse("automation", &t) && t == GM_TIER_AUTOMATION);
    CHECK(gm_tier_parse("gpu", &t) && t == GM_TIER_GPU);
    CHECK(!gm_tier_parse("GPU", &t));
    CHECK(!gm_tier_parse(NULL, &t));
    CHECK_STR(gm_tier_name(GM_TIER_AUTOMATION), "automation");
    gm_os os;
    CHECK(gm_os_parse("ubuntu2404", &os) && os == GM_OS_UBUNTU2404);
    CHECK(!gm_os_parse("ubuntu", &os));
    CHECK_STR(gm_os_name(GM_OS_AL2023), "al2023");
}

static void test_gpu_types(void)
{
    const char *gpu[] = {"g4dn.xlarge",  "g5.2xlarge",    "g5g.xlarge",       "g6.xlarge",
                         "g6e.12xlarge", "gr6.4xlarge",   "p3.2xlarge",       "p4d.24xlarge",
                         "p5.48xlarge",  "p3dn.24xlarge", "p6-b200.48xlarge", "g6f.large"};
    for (size_t i = 0; i < sizeof gpu / sizeof *gpu; i++) {
        if (!gm_instance_type_is_gpu(gpu[i]))
            fprintf(stderr, "  not GPU: %s\n", gpu[i]);
        CHECK(gm_instance_type_is_gpu(gpu[i]));
    }
    const char *cpu[] = {"t3.large",    "m6i.xlarge",   "c7g.large",  "g4ad.xlarge",
                         "inf2.xlarge", "trn1.2xlarge", "g5",         "",
                         ".xlarge",     "g5x.large",    "gg5.xlarge", "r5.large"};
    for (size_t i = 0; i < sizeof cpu / sizeof *cpu; i++) {
        if (gm_instance_type_is_gpu(cpu[i]))
            fprintf(stderr, "  wrongly GPU: %s\n", cpu[i]);
        CHECK(!gm_instance_type_is_gpu(cpu[i]));
    }
    CHECK(!gm_instance_type_is_gpu(NULL));
}

static void expect_invalid(gm_stack_params p, const char *fragment)
{
    gm_error err = {0};
    gm_status st = gm_stack_validate(&p, &err);
    CHECK_INT(st, GM_ERR_INVALID);
    if (!strstr(err.message, fragment)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.message, fragment);
        CHECK(0);
    }
}

static void test_validate(void)
{
    gm_error err = {0};
    gm_stack_params ok = params("dev", "t3.large", GM_OS_AL2023);
    CHECK_INT(gm_stack_validate(&ok, &err), GM_OK);
    gm_stack_params g = params("gpu", "g5.xlarge", GM_OS_UBUNTU2204);
    CHECK_INT(gm_stack_validate(&g, &err), GM_OK);
    g.efs_id = NULL;
    g.ssm_prefix = NULL;
    g.models = NULL;
    g.n_models = 0;
    CHECK_INT(gm_stack_validate(&g, &err), GM_OK);

    /* GPU tier on a CPU type: refused, the message lists the GPU families. */
    expect_invalid(params("gpu", "t3.large", GM_OS_AL2023), "'t3.large' has no GPU");
    expect_invalid(params("gpu", "t3.large", GM_OS_AL2023), "g4dn");
    expect_invalid(params("gpu", "g4ad.xlarge", GM_OS_AL2023), "AMD");
    expect_invalid(params("gold", "t3.large", GM_OS_AL2023), "unknown tier 3");
    expect_invalid(params(NULL, "t3.large", GM_OS_AL2023), "unknown tier");
    expect_invalid(params("dev", "t3", GM_OS_AL2023), "invalid instance type 't3'");
    expect_invalid(params("dev", "t3.large'", GM_OS_AL2023), "invalid instance type");

    gm_stack_params p = params("dev", "t3.large", GM_OS_AL2023);
    const char *bad_names[] = {
        "",       "Demo",  "1demo",   "demo-",
        "de--mo", "de_mo", "demo;rm", "abcdefghijklmnopqrstuvwxyz123" /* 29 */};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        p.name = bad_names[i];
        expect_invalid(p, "deployment name");
    }
    p.name = NULL;
    expect_invalid(p, "missing deployment name");
    p.name = "abcdefghijklmnopqrstuvwxyz12"; /* 28: the limit */
    CHECK_INT(gm_stack_validate(&p, &err), GM_OK);

    p = params("dev", "t3.large", GM_OS_AL2023);
    p.region = "us-east";
    expect_invalid(p, "invalid region");
    p.region = "eu-west-1'";
    expect_invalid(p, "invalid region");
    p = params("dev", "t3.large", GM_OS_AL2023);
    p.efs_id = "fs-12345'";
    expect_invalid(p, "invalid EFS");
    p.efs_id = "vol-0123456789";
    expect_invalid(p, "invalid EFS");
    p = params("dev", "t3.large", GM_OS_AL2023);
    const char *bad_model[] = {"llama3'", "a b", "$(reboot)", "-rf", ""};
    for (size_t i = 0; i < sizeof bad_model / sizeof *bad_model; i++) {
        p.models = &bad_model[i];
        p.n_models = 1;
        expect_invalid(p, "invalid Ollama model");
    }
    const char *many[GM_STACK_MAX_MODELS + 1];
    for (size_t i = 0; i < GM_STACK_MAX_MODELS + 1; i++)
        many[i] = "llama3.2:1b";
    p.models = many;
    p.n_models = GM_STACK_MAX_MODELS + 1;
    expect_invalid(p, "at most");
    p = params("dev", "t3.large", GM_OS_AL2023);
    p.ssm_prefix = "/geusemaker/demo";
    expect_invalid(p, "invalid SSM prefix");
    p.ssm_prefix = "/geusemaker/$(x)/";
    expect_invalid(p, "invalid SSM prefix");
    p = params("dev", "t3.large", GM_OS_AL2023);
    p.os = (gm_os)7;
    expect_invalid(p, "operating system");
    CHECK_INT(gm_stack_validate(NULL, &err), GM_ERR_INVALID);
}

static void test_defaults(void)
{
    CHECK(gm_instance_type_is_gpu(gm_stack_default_instance_type(GM_TIER_GPU)));
    CHECK(!gm_instance_type_is_gpu(gm_stack_default_instance_type(GM_TIER_DEV)));
    size_t n = 0;
    const char *const *m = gm_stack_default_models(GM_TIER_DEV, &n);
    CHECK(n >= 1 && m[0] != NULL);
    char *prefix = gm_stack_default_ssm_prefix("demo");
    CHECK_STR(prefix, "/geusemaker/demo/");
    free(prefix);
}

/* ---- catalogue and secrets -------------------------------------------- */

static void test_catalogue(void)
{
    size_t n;
    const gm_service *s = gm_stack_services(&n);
    CHECK_INT(n, 5);
    const char *names[] = {"postgres", "n8n", "qdrant", "ollama", "crawl4ai"};
    for (size_t i = 0; i < 5; i++) {
        const gm_service *x = gm_stack_service(names[i]);
        CHECK(x != NULL);
        if (!x)
            continue;
        /* Pinned: a tag, never "latest". */
        const char *colon = strrchr(x->image, ':');
        CHECK(colon && colon[1] && strcmp(colon + 1, "latest") != 0);
        CHECK(x->test[0] && strcmp(x->test[0], "CMD") == 0 && x->test[1]);
        /* Ollama and Qdrant images have no curl or wget. */
        if (strcmp(x->name, "ollama") == 0 || strcmp(x->name, "qdrant") == 0)
            for (size_t k = 0; x->test[k]; k++)
                CHECK(!strstr(x->test[k], "curl") && !strstr(x->test[k], "wget"));
        /* No '$' in a healthcheck: Compose would interpolate it. */
        for (size_t k = 0; x->test[k]; k++)
            CHECK(!strchr(x->test[k], '$'));
        CHECK(x->mem_reservation != NULL);
        /* Pinned by digest too: the tag's index digest, 64 hex digits. */
        CHECK(x->digest != NULL);
        if (x->digest) {
            CHECK(strncmp(x->digest, "sha256:", 7) == 0 && strlen(x->digest) == 7 + 64);
            CHECK(strspn(x->digest + 7, "0123456789abcdef") == 64);
        }
        /* Data on EFS or the local volume, never both unset with a data dir. */
        CHECK((x->data_dir != NULL) == (x->storage != GM_STORAGE_NONE));
    }
    /* Qdrant does not work on NFS; PostgreSQL supports it mounted hard. */
    CHECK(gm_stack_service("qdrant")->storage == GM_STORAGE_LOCAL);
    CHECK(gm_stack_service("postgres")->storage == GM_STORAGE_EFS);
    /* pg_isready over TCP (-h 127.0.0.1): the init-only server listens on a socket. */
    const gm_service *pg = gm_stack_service("postgres");
    CHECK(pg->test[2] && strcmp(pg->test[2], "-h") == 0 && strcmp(pg->test[3], "127.0.0.1") == 0);
    CHECK(gm_stack_service("postgres")->critical && gm_stack_service("n8n")->critical);
    CHECK(!gm_stack_service("postgres")->publish);
    CHECK(gm_stack_service("ollama")->gpu && gm_stack_service("ollama")->late);
    CHECK(gm_stack_service("crawl4ai")->shm_size != NULL);
    CHECK(gm_stack_service("nope") == NULL);
    (void)s;
}

static const char *tier_env(gm_tier tier, bool https, const char *name)
{
    gm_service_env env[GM_SERVICE_MAX_TIER_ENV];
    size_t n = gm_stack_tier_env(gm_stack_service("n8n"), tier, https, env);
    for (size_t i = 0; i < n; i++)
        if (strcmp(env[i].name, name) == 0)
            return env[i].value;
    return "";
}

static void test_proxies_and_cookies(void)
{
    /* dev and gpu: nginx alone, HTTPS. automation: the load balancer too. */
    CHECK_STR(tier_env(GM_TIER_DEV, false, "N8N_PROXY_HOPS"), "1");
    CHECK_STR(tier_env(GM_TIER_GPU, false, "N8N_SECURE_COOKIE"), "true");
    CHECK_STR(tier_env(GM_TIER_AUTOMATION, false, "N8N_PROXY_HOPS"), "2");
    CHECK_STR(tier_env(GM_TIER_AUTOMATION, false, "N8N_SECURE_COOKIE"), "false");
    CHECK_STR(tier_env(GM_TIER_AUTOMATION, true, "N8N_SECURE_COOKIE"), "true");
    gm_service_env env[GM_SERVICE_MAX_TIER_ENV];
    CHECK_INT(gm_stack_tier_env(gm_stack_service("qdrant"), GM_TIER_AUTOMATION, false, env), 0);

    gm_stack_params p = params("automation", "m6i.xlarge", GM_OS_AL2023);
    CHECK(gm_stack_plain_http_warning(&p) != NULL);
    CHECK(strstr(gm_stack_plain_http_warning(&p), "--certificate-arn") != NULL);
    p.alb_https = true;
    CHECK(gm_stack_plain_http_warning(&p) == NULL);
    p = params("dev", "t3.large", GM_OS_AL2023);
    CHECK(gm_stack_plain_http_warning(&p) == NULL);
    CHECK(gm_stack_plain_http_warning(NULL) == NULL);
}

static bool alnum(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

static void test_secrets(void)
{
    gm_secret_values a, b;
    gm_error err = {0};
    CHECK_INT(gm_secrets_generate(&a, &err), GM_OK);
    CHECK_INT(gm_secrets_generate(&b, &err), GM_OK);
    const gm_secret_def *t = gm_secrets_table();
    for (int i = 0; i < GM_SECRET_COUNT; i++) {
        CHECK_INT(t[i].id, i);
        CHECK_INT(strlen(a.value[i]), t[i].length);
        CHECK(t[i].length >= 32 && t[i].length <= GM_SECRET_VALUE_MAX);
        CHECK(alnum(a.value[i]));
        CHECK(strcmp(a.value[i], b.value[i]) != 0);
        for (int j = 0; j < i; j++)
            CHECK(strcmp(a.value[i], a.value[j]) != 0);
    }
    char *name = gm_secret_parameter_name("/geusemaker/demo/", GM_SECRET_POSTGRES_PASSWORD);
    CHECK_STR(name, "/geusemaker/demo/postgres_password");
    free(name);
    name = gm_secret_parameter_name("/geusemaker/demo/", GM_SECRET_N8N_ENCRYPTION_KEY);
    CHECK_STR(name, "/geusemaker/demo/n8n_encryption_key");
    free(name);
    CHECK(gm_secret_parameter_name("/geusemaker/demo", GM_SECRET_OLLAMA_TOKEN) == NULL);
    CHECK(gm_secret_parameter_name("/geusemaker/demo/", GM_SECRET_COUNT) == NULL);
    CHECK_STR(gm_secret_def_get(GM_SECRET_QDRANT_API_KEY)->key, "qdrant_api_key");
    CHECK_STR(gm_secret_def_get(GM_SECRET_CRAWL4AI_TOKEN)->key, "crawl4ai_token");
    CHECK_STR(gm_secret_def_get(GM_SECRET_OLLAMA_TOKEN)->key, "ollama_token");
    gm_secret_values_release(&a);
    static const gm_secret_values zero;
    CHECK(memcmp(&a, &zero, sizeof a) == 0);
    gm_secret_values_release(&b);
    gm_secret_values_release(NULL);
}

/* ---- generators -------------------------------------------------------- */

/* Every "<<'DELIM'" has its DELIM line later, in order; returns the number
 * of heredocs, -1 when one is unterminated. */
static int heredocs_balanced(const char *s)
{
    int n = 0;
    const char *p = s;
    while ((p = strstr(p, "<<'"))) {
        p += 3;
        const char *q = strchr(p, '\'');
        if (!q)
            return -1;
        char delim[64];
        size_t dl = (size_t)(q - p);
        if (dl == 0 || dl >= sizeof delim)
            return -1;
        memcpy(delim, p, dl);
        delim[dl] = '\0';
        char line[80];
        snprintf(line, sizeof line, "\n%s\n", delim);
        const char *end = strstr(q, line);
        if (!end)
            return -1;
        p = end + strlen(line);
        n++;
    }
    return n;
}

static void test_userdata_variants(void)
{
    const struct {
        const char *tier, *type;
        gm_os os;
    } v[] = {
        {"dev", "t3.xlarge", GM_OS_AL2023},
        {"dev", "t3.xlarge", GM_OS_UBUNTU2204},
        {"dev", "t3.xlarge", GM_OS_UBUNTU2404},
        {"automation", "m6i.xlarge", GM_OS_AL2023},
        {"automation", "m6i.xlarge", GM_OS_UBUNTU2404},
        {"gpu", "g4dn.xlarge", GM_OS_AL2023},
        {"gpu", "g5.xlarge", GM_OS_UBUNTU2204},
        {"gpu", "g6.xlarge", GM_OS_UBUNTU2404},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        gm_stack_params p = params(v[i].tier, v[i].type, v[i].os);
        gm_buf b;
        gm_buf_init(&b, GM_LIMIT_USERDATA_SCRIPT);
        gm_error err = {0};
        CHECK_INT(gm_userdata_render(&p, &b, &err), GM_OK);
        const char *s = gm_buf_cstr(&b);
        CHECK(strncmp(s, "#!/bin/bash\n", 12) == 0);
        CHECK(strstr(s, "\nset -euo pipefail\n") != NULL);
        CHECK(strstr(s, "R=\"${GM_ROOT:-}\"") != NULL);
        /* Heredocs: compose, 7 helper scripts (gm-lease the newest), 8 units
         * (geusemaker-lease.service), drop-in, nginx.conf. */
        CHECK_INT(heredocs_balanced(s), 18);
        /* The embedded scripts keep their shebang (LESSONS 4). */
        CHECK_INT(count(s, "#!/bin/bash\n"), 8);
        CHECK(strstr(s, "GM_EFS_ID='fs-0123456789abcdef0'") != NULL);
        CHECK(strstr(s, "GM_SSM_PREFIX='/geusemaker/demo/'") != NULL);
        CHECK(strstr(s, "aws ssm get-parameters") && strstr(s, "--with-decryption"));
        CHECK(strstr(s, "imds_get placement/region") && strstr(s, "$IMDS/meta-data/$1"));
        CHECK(strstr(s, "X-aws-ec2-metadata-token") != NULL);
        /* EFS with TLS and the instance role's authorisation. */
        CHECK(strstr(s, "mount -t efs -o tls,iam \"$GM_EFS_ID:/\"") != NULL);
        CHECK(strstr(s, "_netdev,noresvport,tls,iam 0 0") != NULL);
        /* The data volume: found by its attachment name, formatted only when empty. */
        CHECK(strstr(s, "nvme id-ctrl --raw-binary") != NULL);
        CHECK(strstr(s, "blkid -p -o value -s TYPE") != NULL);
        CHECK(strstr(s, "mkfs.ext4 -q -L " GM_STACK_DATA_LABEL) != NULL);
        CHECK(strstr(s, "RequiresMountsFor=" GM_STACK_EFS_MOUNT " " GM_STACK_DATA_MOUNT) != NULL);
        /* Containers kept from IMDS, on every start of Docker. */
        CHECK(strstr(s, "iptables -w -I DOCKER-USER 1") != NULL);
        CHECK(strstr(s, "ExecStartPost=" GM_STACK_APP_DIR "/bin/gm-imds-block") != NULL);
        /* Qdrant: restored after the core starts, backed up on a timer. */
        CHECK(strstr(s, "\"$APP/bin/gm-qdrant-backup\" restore") != NULL);
        CHECK(strstr(s, "geusemaker-qdrant-backup.timer") != NULL);
        /* n8n's URLs from the public_url parameter or the instance's address. */
        CHECK(strstr(s, "PARAM='/geusemaker/demo/" GM_STACK_PUBLIC_URL_PARAMETER "'") != NULL);
        CHECK(strstr(s, "WEBHOOK_URL=") != NULL && strstr(s, "N8N_EDITOR_BASE_URL=") != NULL);
        CHECK(strstr(s, "-addext \"subjectAltName=$san\"") != NULL);
        CHECK(strstr(s, "try_files $gm_ready =503;") != NULL);
        CHECK(strstr(s, "'llama3.2:3b' 'nomic-embed-text'") != NULL);
        CHECK(strstr(s, "spot/instance-action") != NULL);
        CHECK(strstr(s, "geusemaker-health.timer") != NULL);
        CHECK(strstr(s, "pg_isready -q -h 127.0.0.1") != NULL);
        CHECK(strstr(s, "chmod 600 \"$ENV_FILE.tmp\"") != NULL);
        bool alb = strcmp(v[i].tier, "automation") == 0;
        CHECK((strstr(s, "map $http_x_forwarded_proto $gm_proto") != NULL) == alb);
        CHECK((strstr(s, "WARNING: PLAIN HTTP") != NULL) == alb);
        bool gpu = strcmp(v[i].tier, "gpu") == 0;
        CHECK((strstr(s, "nvidia-ctk") != NULL) == gpu);
        CHECK((strstr(s, "driver: \"nvidia\"") != NULL) == gpu);
        bool al = v[i].os == GM_OS_AL2023;
        CHECK((strstr(s, "dnf install") != NULL) == al);
        CHECK((strstr(s, "apt_get install") != NULL) == !al);
        CHECK(strstr(s, al ? "user nginx;" : "user www-data;") != NULL);
        /* Nothing but nginx listens publicly. */
        CHECK(strstr(s, "\"0.0.0.0:") == NULL || strstr(s, "OLLAMA_HOST: \"0.0.0.0:11434\""));
        CHECK(count(s, "- \"127.0.0.1:") == 4);

        char *b64 = NULL;
        size_t sent = 0;
        bool gz = false;
        CHECK_INT(gm_userdata_encode(&b, &b64, &sent, &gz, &err), GM_OK);
        CHECK(sent <= GM_LIMIT_USERDATA_RAW);
        CHECK(gz == (b.len > GM_LIMIT_USERDATA_RAW));
        printf("userdata %-10s %-12s %-11s raw %6zu  sent %6zu%s  base64 %6zu\n", v[i].tier,
               v[i].type, gm_os_name(v[i].os), b.len, sent, gz ? " (gzip)" : "       ",
               b64 ? strlen(b64) : 0);
        free(b64);
        gm_buf_release(&b);
    }
}

static void test_userdata_placeholder_and_prefix(void)
{
    gm_stack_params p = params("dev", "t3.large", GM_OS_AL2023);
    p.efs_id = NULL;
    p.ssm_prefix = NULL;
    p.models = NULL;
    p.n_models = 0;
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_USERDATA_SCRIPT);
    gm_error err = {0};
    CHECK_INT(gm_userdata_render(&p, &b, &err), GM_OK);
    const char *s = gm_buf_cstr(&b);
    CHECK(strstr(s, "GM_EFS_ID='" GM_STACK_EFS_PLACEHOLDER "'") != NULL);
    CHECK(strstr(s, "rendered for review only") != NULL);
    CHECK(strstr(s, "GM_SSM_PREFIX='/geusemaker/demo/'") != NULL);
    CHECK(strstr(s, "printf '%s\\n' '' >\"$CONF/models\"") != NULL);
    gm_buf_release(&b);
}

static void test_userdata_errors(void)
{
    gm_stack_params p = params("gpu", "t3.large", GM_OS_AL2023);
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_USERDATA_SCRIPT);
    gm_error err = {0};
    CHECK_INT(gm_userdata_render(&p, &b, &err), GM_ERR_INVALID);
    CHECK_INT(b.len, 0);
    gm_buf_release(&b);

    /* A buffer too small: a clear limit error, the buffer left as it was. */
    p = params("dev", "t3.large", GM_OS_AL2023);
    gm_buf_init(&b, 1000);
    CHECK_INT(gm_buf_appends(&b, "keep"), GM_OK);
    gm_error err2 = {0};
    CHECK_INT(gm_userdata_render(&p, &b, &err2), GM_ERR_LIMIT);
    CHECK_STR(gm_buf_cstr(&b), "keep");
    CHECK(strstr(err2.message, "1000 bytes") != NULL);
    gm_buf_release(&b);
}

static void test_userdata_deterministic(void)
{
    gm_stack_params p = params("automation", "m6i.xlarge", GM_OS_UBUNTU2404);
    gm_buf a, b;
    gm_buf_init(&a, GM_LIMIT_USERDATA_SCRIPT);
    gm_buf_init(&b, GM_LIMIT_USERDATA_SCRIPT);
    gm_error err = {0};
    CHECK_INT(gm_userdata_render(&p, &a, &err), GM_OK);
    CHECK_INT(gm_userdata_render(&p, &b, &err), GM_OK);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    gm_buf_release(&a);
    gm_buf_release(&b);
}

static void test_compose(void)
{
    gm_stack_params p = params("dev", "t3.large", GM_OS_AL2023);
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_COMPOSE_FILE);
    gm_error err = {0};
    CHECK_INT(gm_compose_render(&p, &b, &err), GM_OK);
    const char *s = gm_buf_cstr(&b);
    CHECK(strstr(s, "\nservices:\n  postgres:\n") != NULL);
    CHECK(strstr(s, "\"127.0.0.1:5678:5678\"") != NULL);
    CHECK(strstr(s, "\"127.0.0.1:5432") == NULL); /* PostgreSQL: internal only */
    CHECK(strstr(s, "source: \"/mnt/efs/postgres\"") != NULL);
    CHECK(strstr(s, "source: \"/mnt/data/qdrant\"") != NULL);
    CHECK(strstr(s, "image: \"qdrant/qdrant:v") != NULL && strstr(s, "@sha256:") != NULL);
    CHECK(count(s, "@sha256:") == 5);
    CHECK(strstr(s, "create_host_path: false") != NULL);
    CHECK(strstr(s, "nvidia") == NULL);
    /* Every secret appears only as an interpolation from the env file. */
    const gm_secret_def *t = gm_secrets_table();
    for (int i = 0; i < GM_SECRET_COUNT; i++) {
        char ref[80];
        snprintf(ref, sizeof ref, "${%s:?", t[i].env);
        int refs = count(s, ref), mentions = count(s, t[i].env);
        if (i != GM_SECRET_OLLAMA_TOKEN) /* checked by nginx only */
            CHECK(refs >= 1);
        CHECK_INT(refs, mentions);
    }
    gm_buf_release(&b);

    p = params("gpu", "g5.xlarge", GM_OS_AL2023);
    gm_buf_init(&b, GM_LIMIT_COMPOSE_FILE);
    CHECK_INT(gm_compose_render(&p, &b, &err), GM_OK);
    s = gm_buf_cstr(&b);
    CHECK_INT(count(s, "driver: \"nvidia\""), 1);
    CHECK(strstr(s, "capabilities: [\"gpu\"]") != NULL);
    /* The reservation sits under ollama, the only GPU service. */
    const char *oll = strstr(s, "\n  ollama:\n"), *c4 = strstr(s, "\n  crawl4ai:\n");
    const char *nv = strstr(s, "driver: \"nvidia\"");
    CHECK(oll && c4 && nv && oll < nv && nv < c4);
    gm_buf_release(&b);

    p = params("gpu", "m5.large", GM_OS_AL2023);
    gm_buf_init(&b, GM_LIMIT_COMPOSE_FILE);
    CHECK_INT(gm_compose_render(&p, &b, &err), GM_ERR_INVALID);
    gm_buf_release(&b);
}

static unsigned char *b64_decode(const char *in, size_t *out_len)
{
    size_t n = strlen(in);
    unsigned char *out = malloc(n);
    int got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (got < 0) {
        free(out);
        return NULL;
    }
    size_t pad = (n && in[n - 1] == '=') + (n > 1 && in[n - 2] == '=');
    *out_len = (size_t)got - pad;
    return out;
}

static void test_encode(void)
{
    gm_error err = {0};
    /* Small: sent as is. */
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_USERDATA_SCRIPT);
    CHECK_INT(gm_buf_appends(&b, "#!/bin/bash\necho hi\n"), GM_OK);
    char *b64 = NULL;
    size_t sent = 0;
    bool gz = true;
    CHECK_INT(gm_userdata_encode(&b, &b64, &sent, &gz, &err), GM_OK);
    CHECK(!gz);
    CHECK_INT(sent, b.len);
    CHECK_STR(b64, "IyEvYmluL2Jhc2gKZWNobyBoaQo=");
    free(b64);

    /* Exactly the limit: not compressed; one byte more: gzip, which inflates back. */
    gm_buf_reset(&b);
    while (b.len < GM_LIMIT_USERDATA_RAW)
        CHECK_INT(gm_buf_appendc(&b, (char)('a' + b.len % 23)), GM_OK);
    CHECK_INT(gm_userdata_encode(&b, &b64, &sent, &gz, &err), GM_OK);
    CHECK(!gz);
    CHECK_INT(sent, GM_LIMIT_USERDATA_RAW);
    free(b64);
    CHECK_INT(gm_buf_appendc(&b, '\n'), GM_OK);
    CHECK_INT(gm_userdata_encode(&b, &b64, &sent, &gz, &err), GM_OK);
    CHECK(gz);
    CHECK(sent < 2000);
    size_t raw_len = 0;
    unsigned char *raw = b64_decode(b64, &raw_len);
    CHECK(raw && raw_len == sent && raw[0] == 0x1f && raw[1] == 0x8b); /* gzip magic */
    unsigned char *back = malloc(b.len + 16);
    z_stream z;
    memset(&z, 0, sizeof z);
    CHECK_INT(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = raw;
    z.avail_in = (uInt)raw_len;
    z.next_out = back;
    z.avail_out = (uInt)(b.len + 16);
    CHECK_INT(inflate(&z, Z_FINISH), Z_STREAM_END);
    CHECK_INT(z.total_out, b.len);
    CHECK(memcmp(back, b.data, b.len) == 0);
    inflateEnd(&z);
    free(back);
    free(raw);
    free(b64);

    /* Incompressible and too large: a clear limit error, outputs untouched. */
    gm_buf_reset(&b);
    unsigned char rnd[24000];
    CHECK_INT(gm_random_bytes(rnd, sizeof rnd, &err), GM_OK);
    CHECK_INT(gm_buf_append(&b, rnd, sizeof rnd), GM_OK);
    b64 = (char *)"untouched";
    gm_error err2 = {0};
    CHECK_INT(gm_userdata_encode(&b, &b64, &sent, &gz, &err2), GM_ERR_LIMIT);
    CHECK_STR(b64, "untouched");
    CHECK(strstr(err2.message, "16384") != NULL);
    CHECK(strstr(err2.message, "24000") != NULL);
    CHECK(strstr(err2.message, "gzip") != NULL);
    gm_buf_release(&b);
}

/* The catalogue version: stable, of the documented form, and changed by any
 * pin, the Compose plugin, the efs-utils tag or the bake format. */
static void test_catalogue_version(void)
{
    char a[GM_CATALOGUE_VERSION_LEN], b[GM_CATALOGUE_VERSION_LEN];
    gm_catalogue_version(a);
    gm_catalogue_version(b);
    CHECK_STR(a, b);
    CHECK_INT(strlen(a), 13);
    CHECK(a[0] == 'c');
    CHECK(strspn(a + 1, "0123456789abcdef") == 12);
    size_t n;
    const gm_service *svc = gm_stack_services(&n);
    gm_service copy[16];
    CHECK(n <= 16);
    memcpy(copy, svc, n * sizeof *svc);
    gm_catalogue_version_of(copy, n, GM_COMPOSE_PLUGIN_VERSION, GM_EFS_UTILS_TAG, GM_BAKE_FORMAT,
                            b);
    CHECK_STR(a, b);
    copy[1].image = "n8nio/n8n:0.0.1";
    gm_catalogue_version_of(copy, n, GM_COMPOSE_PLUGIN_VERSION, GM_EFS_UTILS_TAG, GM_BAKE_FORMAT,
                            b);
    CHECK(strcmp(a, b) != 0);
    memcpy(copy, svc, n * sizeof *svc);
    copy[0].digest = NULL;
    gm_catalogue_version_of(copy, n, GM_COMPOSE_PLUGIN_VERSION, GM_EFS_UTILS_TAG, GM_BAKE_FORMAT,
                            b);
    CHECK(strcmp(a, b) != 0);
    gm_catalogue_version_of(svc, n, "v0.0.1", GM_EFS_UTILS_TAG, GM_BAKE_FORMAT, b);
    CHECK(strcmp(a, b) != 0);
    gm_catalogue_version_of(svc, n, GM_COMPOSE_PLUGIN_VERSION, "v0.0.1", GM_BAKE_FORMAT, b);
    CHECK(strcmp(a, b) != 0);
    gm_catalogue_version_of(svc, n, GM_COMPOSE_PLUGIN_VERSION, GM_EFS_UTILS_TAG, "0", b);
    CHECK(strcmp(a, b) != 0);
    gm_catalogue_version_of(svc, n - 1, GM_COMPOSE_PLUGIN_VERSION, GM_EFS_UTILS_TAG, GM_BAKE_FORMAT,
                            b);
    CHECK(strcmp(a, b) != 0);
}

/* The builder's script: the install part, every pinned image pulled, the
 * marker with the catalogue version, the completion tag; no secret, no EFS
 * mount, and within EC2's limit. */
static void test_userdata_bake(void)
{
    char version[GM_CATALOGUE_VERSION_LEN], marker[128];
    gm_catalogue_version(version);
    const char *tiers[] = {"dev", "gpu"};
    for (int t = 0; t < 2; t++) {
        gm_stack_params p = params(tiers[t], t ? "g5.xlarge" : "t3.large", GM_OS_UBUNTU2404);
        p.name = "bake-0a1b2c3d";
        p.efs_id = NULL;
        gm_buf out;
        gm_buf_init(&out, GM_LIMIT_USERDATA_SCRIPT);
        gm_error err = {0};
        CHECK_INT(gm_userdata_render_bake(&p, &out, &err), GM_OK);
        const char *s = gm_buf_cstr(&out);
        CHECK(strncmp(s, "#!/bin/bash\n", 12) == 0);
        size_t n;
        const gm_service *svc = gm_stack_services(&n);
        for (size_t i = 0; i < n; i++) {
            char pull[512];
            snprintf(pull, sizeof pull, "docker pull '%s@%s'", svc[i].image, svc[i].digest);
            CHECK(count(s, pull) == 1);
        }
        snprintf(marker, sizeof marker, "'%s' 'ubuntu2404' '%s' >\"$STATE/baked.tmp\"", version,
                 tiers[t]);
        CHECK(strstr(s, marker) != NULL);
        CHECK(strstr(s, "Key=geusemaker:bake,Value=$1") != NULL);
        CHECK(strstr(s, "bake_tag 'done'") != NULL);
        CHECK(strstr(s, "bake_tag failed") != NULL);
        CHECK((strstr(s, "nvidia-ctk") != NULL) == (t == 1));
        CHECK(strstr(s, "mount -t efs") == NULL);
        CHECK(strstr(s, "get-parameters") == NULL);
        CHECK(strstr(s, "compose up") == NULL && strstr(s, "dc up") == NULL);
        char *b64 = NULL;
        size_t sent = 0;
        bool gz = false;
        CHECK_INT(gm_userdata_encode(&out, &b64, &sent, &gz, &err), GM_OK);
        CHECK(sent <= GM_LIMIT_USERDATA_RAW);
        free(b64);
        gm_buf_release(&out);
    }
    gm_stack_params bad = params("dev", "t3.large", GM_OS_AL2023);
    bad.name = "Bad Name";
    gm_buf out;
    gm_buf_init(&out, GM_LIMIT_USERDATA_SCRIPT);
    gm_error err = {0};
    CHECK_INT(gm_userdata_render_bake(&bad, &out, &err), GM_ERR_INVALID);
    CHECK_INT(out.len, 0);
    gm_buf_release(&out);
}

int main(void)
{
    GM_RUN(test_tier_and_os_names);
    GM_RUN(test_gpu_types);
    GM_RUN(test_validate);
    GM_RUN(test_defaults);
    GM_RUN(test_catalogue);
    GM_RUN(test_proxies_and_cookies);
    GM_RUN(test_secrets);
    GM_RUN(test_userdata_variants);
    GM_RUN(test_userdata_placeholder_and_prefix);
    GM_RUN(test_userdata_errors);
    GM_RUN(test_userdata_deterministic);
    GM_RUN(test_compose);
    GM_RUN(test_encode);
    GM_RUN(test_catalogue_version);
    GM_RUN(test_userdata_bake);
    GM_TEST_END();
}
