/* What runs on what, decided before any AWS call (stack/validate.c): the
 * architecture of an instance type, the machine image (an SSM public
 * parameter) for an operating system, tier and architecture, and the GPU
 * families the NVIDIA driver of that image supports.
 *
 * The images:
 *   al2023, CPU   /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{x86_64,arm64}
 *   al2023, GPU   /aws/service/deeplearning/ami/{x86_64,arm64}/
 *                 base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id
 *   ubuntu, CPU   /aws/service/canonical/ubuntu/server/{22.04,24.04}/stable/current/
 *                 {amd64,arm64}/hvm/ebs-gp3/ami-id
 *   ubuntu, GPU   /aws/service/deeplearning/ami/{x86_64,arm64}/
 *                 base-oss-nvidia-driver-gpu-ubuntu-{22.04,24.04}/latest/ami-id
 * The Deep Learning Base OSS AMIs (open NVIDIA kernel modules, driver 595)
 * support, on x86_64: G4dn, G5, G6, Gr6, Gr6f, G6e, G6f, G7, G7e, P4d, P4de,
 * P5, P5e, P5en, P6-B200, P6-B300; on arm64: G5g, P6e-GB200, P6e-GB300 (AWS
 * DLAMI release notes, 2026-09). G3, G3s, P2, P3 and P3dn GPUs are older than
 * that driver supports; P6e-GB200/GB300 are sold only as UltraServers through
 * EC2 Capacity Blocks for ML, which geusemaker does not reserve: all refused.
 */
#ifndef GM_STACK_VALIDATE_H
#define GM_STACK_VALIDATE_H

#include <stddef.h>

#include "core/error.h"
#include "core/tier.h"
#include "stack/stack.h"

typedef enum gm_arch { GM_ARCH_X86_64, GM_ARCH_ARM64 } gm_arch;

/* The CPU architecture of an instance type: arm64 for Graviton families (a
 * 'g' right after the generation digits: t4g, m7g, c7gn, g5g, x2gd), a1 and
 * the Grace families (p6e-gb200, p6e-gb300); x86_64 for every other. */
gm_arch gm_instance_type_arch(const char *type);
/* "x86_64" / "arm64": the names DescribeImages gives an image's architecture. */
const char *gm_arch_name(gm_arch arch);

/* The --os spelling: "al2023", "ubuntu-22.04", "ubuntu-24.04". gm_os_parse
 * accepts these as well as gm_os_name's. */
const char *gm_os_option_name(gm_os os);

/* The SSM public parameter naming the image for os, tier and arch (see
 * above) into out; false when it does not fit. */
bool gm_stack_ami_parameter(gm_os os, gm_tier tier, gm_arch arch, char *out, size_t size);

/* The GPU families the image of tier gpu supports on arch, for messages. */
const char *gm_stack_gpu_families_supported(gm_arch arch);

/* Whether tier gpu can run on type with the Deep Learning AMI of os:
 * GM_ERR_INVALID naming why and the supported families otherwise (also for a
 * type that is no GPU type). */
GM_MUST_CHECK gm_status gm_stack_check_gpu_type(const char *type, gm_os os, gm_error *err);

#endif
