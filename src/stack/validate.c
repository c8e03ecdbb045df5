/* Parameter validation: everything is checked here, before any AWS call, and
 * every value that reaches the generated script is restricted to a character
 * set that needs no shell quoting beyond single quotes. */
#include <stdio.h>
#include <string.h>

#include "core/str.h"
#include "stack/stack.h"
#include "stack/validate.h"

static const char *const os_names[] = {"al2023", "ubuntu2204", "ubuntu2404"};
static const char *const os_option_names[] = {"al2023", "ubuntu-22.04", "ubuntu-24.04"};

/* NVIDIA GPU families. Keep in step with the EC2 accelerated-computing list. */
static const char *const gpu_families[] = {
    "g3",   "g3s",  "g4dn", "g5",   "g5g",     "g6",      "g6e",       "g6f",
    "gr6",  "gr6f", "g7",   "g7e",  "p2",      "p3",      "p3dn",      "p4d",
    "p4de", "p5",   "p5e",  "p5en", "p6-b200", "p6-b300", "p6e-gb200", "p6e-gb300",
};
#define N_GPU (sizeof gpu_families / sizeof *gpu_families)

/* The families the Deep Learning Base OSS AMIs' driver supports (see
 * stack/validate.h). */
static const char *const dlami_x86_families[] = {
    "g4dn", "g5",  "g6",   "gr6", "gr6f", "g6e",  "g6f",     "g7",
    "g7e",  "p4d", "p4de", "p5",  "p5e",  "p5en", "p6-b200", "p6-b300",
};
static const char *const dlami_arm_families[] = {"g5g"};

bool gm_os_parse(const char *s, gm_os *out)
{
    for (size_t i = 0; s && i < 3; i++)
        if (strcmp(s, os_names[i]) == 0 || strcmp(s, os_option_names[i]) == 0) {
            *out = (gm_os)i;
            return true;
        }
    return false;
}

const char *gm_os_option_name(gm_os os)
{
    return (unsigned)os < 3 ? os_option_names[os] : "unknown";
}

const char *gm_os_name(gm_os os)
{
    return (unsigned)os < 3 ? os_names[os] : "unknown";
}

static bool family_of(const char *type, char *out, size_t outsz)
{
    const char *dot = type ? strchr(type, '.') : NULL;
    if (!dot || dot == type || (size_t)(dot - type) >= outsz)
        return false;
    memcpy(out, type, (size_t)(dot - type));
    out[dot - type] = '\0';
    return true;
}

bool gm_instance_type_is_gpu(const char *type)
{
    char fam[32];
    if (!family_of(type, fam, sizeof fam))
        return false;
    for (size_t i = 0; i < N_GPU; i++)
        if (strcmp(fam, gpu_families[i]) == 0)
            return true;
    return false;
}

const char *gm_gpu_families(void)
{
    return "g3, g3s, g4dn, g5, g5g, g6, g6e, g6f, gr6, gr6f, g7, g7e, p2, p3, p3dn, p4d, p4de, "
           "p5, p5e, p5en, p6-b200, p6-b300, p6e-gb200, p6e-gb300";
}

static bool in_list(const char *fam, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(fam, list[i]) == 0)
            return true;
    return false;
}

gm_arch gm_instance_type_arch(const char *type)
{
    char fam[32];
    if (!family_of(type, fam, sizeof fam))
        return GM_ARCH_X86_64;
    static const char *const arm_named[] = {"a1", "p6e-gb200", "p6e-gb300"};
    if (in_list(fam, arm_named, sizeof arm_named / sizeof *arm_named))
        return GM_ARCH_ARM64;
    /* Graviton: letters, the generation digits, then 'g' (t4g, c7gn, x2gd;
     * not g5 or gr6). */
    size_t i = 0;
    while (fam[i] >= 'a' && fam[i] <= 'z')
        i++;
    if (i == 0 || !(fam[i] >= '0' && fam[i] <= '9'))
        return GM_ARCH_X86_64;
    while (fam[i] >= '0' && fam[i] <= '9')
        i++;
    return fam[i] == 'g' ? GM_ARCH_ARM64 : GM_ARCH_X86_64;
}

const char *gm_arch_name(gm_arch arch)
{
    return arch == GM_ARCH_ARM64 ? "arm64" : "x86_64";
}

bool gm_stack_ami_parameter(gm_os os, gm_tier tier, gm_arch arch, char *out, size_t size)
{
    const char *a = gm_arch_name(arch);
    const char *release = os == GM_OS_UBUNTU2204 ? "22.04" : "24.04";
    int n;
    if (tier == GM_TIER_GPU && os == GM_OS_AL2023)
        n = snprintf(out, size,
                     "/aws/service/deeplearning/ami/%s/"
                     "base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id",
                     a);
    else if (tier == GM_TIER_GPU)
        n = snprintf(out, size,
                     "/aws/service/deeplearning/ami/%s/base-oss-nvidia-driver-gpu-ubuntu-%s/"
                     "latest/ami-id",
                     a, release);
    else if (os == GM_OS_AL2023)
        n = snprintf(out, size, "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-%s",
                     a);
    else
        n = snprintf(out, size,
                     "/aws/service/canonical/ubuntu/server/%s/stable/current/%s/hvm/ebs-gp3/ami-id",
                     release, arch == GM_ARCH_ARM64 ? "arm64" : "amd64");
    return n > 0 && (size_t)n < size;
}

const char *gm_stack_gpu_families_supported(gm_arch arch)
{
    return arch == GM_ARCH_ARM64 ? "g5g"
                                 : "g4dn, g5, g6, gr6, gr6f, g6e, g6f, g7, g7e, p4d, p4de, p5, "
                                   "p5e, p5en, p6-b200, p6-b300";
}

gm_status gm_stack_check_gpu_type(const char *type, gm_os os, gm_error *err)
{
    char fam[32];
    if (!gm_instance_type_is_gpu(type) || !family_of(type, fam, sizeof fam))
        return gm_error_set(err, GM_ERR_INVALID,
                            "tier 'gpu' needs a GPU instance type, and '%s' has no GPU (GPU "
                            "families: %s)",
                            type ? type : "", gm_stack_gpu_families_supported(GM_ARCH_X86_64));
    gm_arch arch = gm_instance_type_arch(type);
    bool ok = arch == GM_ARCH_ARM64
                  ? in_list(fam, dlami_arm_families, 1)
                  : in_list(fam, dlami_x86_families,
                            sizeof dlami_x86_families / sizeof *dlami_x86_families);
    if (ok)
        return GM_OK;
    const char *why =
        gm_str_startswith(fam, "p6e-")
            ? "is sold only as UltraServers through EC2 Capacity Blocks for ML, which geusemaker "
              "does not reserve"
            : "has a GPU older than the NVIDIA driver of the current Deep Learning AMI supports";
    return gm_error_set(err, GM_ERR_INVALID,
                        "instance type '%s' cannot run tier 'gpu': family %s %s (the %s Deep "
                        "Learning AMI supports %s on x86_64, and %s on arm64)",
                        type, fam, why, gm_os_option_name(os),
                        gm_stack_gpu_families_supported(GM_ARCH_X86_64),
                        gm_stack_gpu_families_supported(GM_ARCH_ARM64));
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool all_in(const char *s, const char *extra)
{
    for (; *s; s++) {
        char c = *s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            continue;
        if (!strchr(extra, c))
            return false;
    }
    return true;
}

gm_status gm_stack_validate_name(const char *name, gm_error *err)
{
    if (!name || !*name)
        return gm_error_set(err, GM_ERR_INVALID, "missing deployment name");
    size_t n = strlen(name);
    if (n > GM_STACK_NAME_MAX)
        return gm_error_set(err, GM_ERR_INVALID,
                            "deployment name '%.40s%s' is %zu characters: at most %d (so "
                            "'<name>-alb' fits the 32-character ALB limit)",
                            name, n > 40 ? "..." : "", n, GM_STACK_NAME_MAX);
    if (!(name[0] >= 'a' && name[0] <= 'z'))
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid deployment name '%s': must start with a lowercase letter",
                            name);
    for (size_t i = 0; i < n; i++) {
        if (!is_lower_alnum(name[i]) && name[i] != '-')
            return gm_error_set(err, GM_ERR_INVALID,
                                "invalid deployment name '%s': only lowercase letters, digits "
                                "and '-' are allowed",
                                name);
        if (name[i] == '-' && name[i + 1] == '-')
            return gm_error_set(err, GM_ERR_INVALID,
                                "invalid deployment name '%s': '--' is not allowed", name);
    }
    if (name[n - 1] == '-')
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid deployment name '%s': must not end with '-'", name);
    return GM_OK;
}

static bool valid_instance_type(const char *t)
{
    char fam[32];
    if (!t || strlen(t) > 32 || !family_of(t, fam, sizeof fam))
        return false;
    const char *dot = strchr(t, '.');
    if (!dot[1] || strchr(dot + 1, '.'))
        return false;
    if (!(t[0] >= 'a' && t[0] <= 'z'))
        return false;
    for (const char *c = t; *c; c++)
        if (!is_lower_alnum(*c) && *c != '.' && *c != '-')
            return false;
    return true;
}

static bool valid_region(const char *r)
{
    /* "us-east-1", "ap-southeast-2", "us-gov-west-1", "eu-central-2" */
    size_t n = r ? strlen(r) : 0;
    if (n < 6 || n > 32 || !(r[n - 1] >= '0' && r[n - 1] <= '9') || r[n - 2] != '-')
        return false;
    int dashes = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i] == '-') {
            if (i == 0 || r[i - 1] == '-')
                return false;
            dashes++;
        } else if (!is_lower_alnum(r[i])) {
            return false;
        }
    }
    return dashes >= 2;
}

static bool valid_efs_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n < 11 || n > 40 || !gm_str_startswith(id, "fs-"))
        return false;
    for (size_t i = 3; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

static bool valid_allocation_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n < 17 || n > 26 || !gm_str_startswith(id, "eipalloc-"))
        return false;
    for (size_t i = 9; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

gm_status gm_stack_validate_models(const char *const *models, size_t n, gm_error *err)
{
    if (n > GM_STACK_MAX_MODELS)
        return gm_error_set(err, GM_ERR_INVALID, "%zu Ollama models requested: at most %d", n,
                            GM_STACK_MAX_MODELS);
    if (n && !models)
        return gm_error_set(err, GM_ERR_INVALID, "missing Ollama model list");
    for (size_t i = 0; i < n; i++) {
        const char *m = models[i];
        if (!m || !*m || strlen(m) > GM_STACK_MODEL_NAME_MAX || !all_in(m, "._:/-") ||
            m[0] == '-' || m[0] == '.' || m[0] == '/')
            return gm_error_set(err, GM_ERR_INVALID,
                                "invalid Ollama model name '%s': expected a name such as "
                                "'llama3.2:3b'",
                                m ? m : "");
    }
    return GM_OK;
}

gm_status gm_stack_validate(const gm_stack_params *p, gm_error *err)
{
    if (!p)
        return gm_error_set(err, GM_ERR_INVALID, "missing stack parameters");
    gm_status st = gm_stack_validate_name(p->name, err);
    if (st != GM_OK)
        return st;
    gm_tier tier = p->tier;
    if ((unsigned)tier >= GM_TIER_COUNT)
        return gm_error_set(err, GM_ERR_INVALID, "unknown tier %d", (int)tier);
    if (!valid_instance_type(p->instance_type))
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid instance type '%s': expected FAMILY.SIZE such as 't3.large'",
                            p->instance_type ? p->instance_type : "");
    if ((unsigned)p->os > GM_OS_UBUNTU2404)
        return gm_error_set(err, GM_ERR_INVALID, "unknown operating system %d", (int)p->os);
    if (tier == GM_TIER_GPU && gm_str_startswith(p->instance_type, "g4ad."))
        return gm_error_set(err, GM_ERR_INVALID,
                            "tier 'gpu' needs an NVIDIA GPU instance type: '%s' has AMD GPUs, "
                            "which the NVIDIA container runtime cannot use (GPU families: %s)",
                            p->instance_type, gm_stack_gpu_families_supported(GM_ARCH_X86_64));
    if (tier == GM_TIER_GPU) {
        st = gm_stack_check_gpu_type(p->instance_type, p->os, err);
        if (st != GM_OK)
            return st;
    }
    if (p->os == GM_OS_AL2023 && gm_str_startswith(p->instance_type, "a1."))
        return gm_error_set(err, GM_ERR_INVALID,
                            "instance type '%s' cannot run al2023: Amazon Linux 2023 does not "
                            "support A1 instances (use a Graviton2 or later type such as "
                            "'t4g.xlarge', or --os ubuntu-24.04)",
                            p->instance_type);
    if (!valid_region(p->region))
        return gm_error_set(err, GM_ERR_INVALID, "invalid region '%s'", p->region ? p->region : "");
    if (p->efs_id && !valid_efs_id(p->efs_id))
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid EFS file system id '%s': expected 'fs-' and hex digits",
                            p->efs_id);
    if (p->eip_allocation_id && !valid_allocation_id(p->eip_allocation_id))
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid Elastic IP allocation id '%s': expected 'eipalloc-' and 8 "
                            "to 17 hex digits",
                            p->eip_allocation_id);
    st = gm_stack_validate_models(p->models, p->n_models, err);
    if (st == GM_OK)
        st = gm_stack_validate_images(tier, p->image_services, p->image_refs, p->n_images, err);
    if (st != GM_OK)
        return st;
    if (p->ssm_prefix) {
        size_t n = strlen(p->ssm_prefix);
        if (n < 2 || n > 512 || p->ssm_prefix[0] != '/' || p->ssm_prefix[n - 1] != '/' ||
            !all_in(p->ssm_prefix, "/_.-") || strstr(p->ssm_prefix, "//"))
            return gm_error_set(err, GM_ERR_INVALID,
                                "invalid SSM prefix '%s': expected a path such as "
                                "'/geusemaker/NAME/'",
                                p->ssm_prefix);
    }
    return GM_OK;
}

const char *gm_stack_default_instance_type(gm_tier tier)
{
    switch (tier) {
    case GM_TIER_GPU: return "g4dn.xlarge";
    case GM_TIER_AUTOMATION: return "m6i.xlarge";
    case GM_TIER_DEV:
    default: return "t3.xlarge";
    }
}

const char *const *gm_stack_default_models(gm_tier tier, size_t *out_n)
{
    static const char *const small[] = {"llama3.2:1b"};
    static const char *const medium[] = {"llama3.2:3b", "nomic-embed-text"};
    static const char *const large[] = {"llama3.1:8b", "nomic-embed-text"};
    switch (tier) {
    case GM_TIER_GPU: *out_n = 2; return large;
    case GM_TIER_AUTOMATION: *out_n = 2; return medium;
    case GM_TIER_DEV:
    default: *out_n = 1; return small;
    }
}

char *gm_stack_default_ssm_prefix(const char *name)
{
    return gm_strfmt("/geusemaker/%s/", name ? name : "");
}
