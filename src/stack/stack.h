/* The AI stack: deployment parameters, their validation, and the generators of
 * the instance's UserData (a bash script) and Docker Compose file.
 *
 * Everything here is pure: no AWS call, no file, no network. The deploy engine
 * validates the parameters first (gm_stack_validate, before any AWS call),
 * renders and encodes the UserData for RunInstances, and stores the secrets in
 * SSM (see stack/secrets.h) before launching the instance.
 *
 * What the UserData does on the instance (all state under a root prefix
 * GM_ROOT, "" on a real instance, so tests can run it in a sandbox):
 *   - logs to /var/log/geusemaker/userdata.log; writes
 *     /var/lib/geusemaker/userdata.done on success, userdata.failed (step,
 *     line, exit code) on failure; safe to run twice (every step checks before
 *     acting; a lock stops two concurrent runs);
 *   - installs Docker, the Compose plugin, nginx, openssl, jq, nvme-cli,
 *     amazon-efs-utils (built from a pinned tag on Ubuntu) and, for the gpu
 *     tier, configures the NVIDIA container runtime (GPU_TYPES only: see
 *     gm_instance_type_is_gpu);
 *   - times every step (/var/lib/geusemaker/boot-steps: "NAME START END
 *     SKIPPED"; the health document's "boot" object, docs/BOOT.md) and skips
 *     what the image already has (a baked image, 'geusemaker image build',
 *     leaves /var/lib/geusemaker/baked, but each skip is decided by looking):
 *     the package installs when every command is present, the NVIDIA setup
 *     when Docker's daemon.json names the runtime, and every image pull
 *     whose pinned reference docker image inspect finds;
 *   - finds the local data volume (the EBS volume the engine attaches as
 *     GM_STACK_DATA_DEVICE: /dev/sdf or /dev/xvdf, else the NVMe disk whose
 *     controller names that device in its vendor data), makes an ext4 file
 *     system on it only when it has none (never over an existing file system
 *     or partition table), and mounts it by UUID at GM_STACK_DATA_MOUNT
 *     (fstab). Services whose vendor says they must not run on NFS (Qdrant)
 *     keep their data there;
 *   - mounts the EFS file system with TLS and IAM authorisation (tls,iam: the
 *     instance role) at /mnt/efs, retrying while the mount targets are not
 *     yet reachable, and adds it to /etc/fstab; docker.service gets
 *     RequiresMountsFor both mounts so containers never start on a bare mount
 *     point after a reboot;
 *   - keeps containers away from the instance metadata service: an iptables
 *     rule in DOCKER-USER (re-applied by docker.service's drop-in on every
 *     start of Docker) drops their packets to 169.254.169.254; the host's own
 *     IMDS calls do not cross DOCKER-USER (FORWARD) and keep working;
 *   - with an Elastic IP (eip_allocation_id): associates it with the instance
 *     itself (IMDSv2 instance id, `aws ec2 associate-address
 *     --allow-reassociation`, the instance role allows only that address and
 *     this deployment's instances), so the address stays when the Auto
 *     Scaling group replaces the instance;
 *   - reads the secrets from SSM Parameter Store (GetParameters with
 *     decryption, through the instance role; region from IMDSv2) into
 *     /opt/geusemaker/.env (0600) and the nginx token maps (0600);
 *   - derives the public URL at boot (gm-public-url, again before every start
 *     of the stack): the SSM String parameter GM_STACK_PUBLIC_URL_PARAMETER
 *     under the deployment's prefix when it exists (tier automation: the load
 *     balancer's URL, written by the engine; waited for), else the instance's
 *     public IPv4 from IMDSv2. It writes n8n's URL variables (env_file of the
 *     n8n service) and a self-signed certificate whose subjectAltName is that
 *     host;
 *   - writes the Compose file (gm_compose_render), pulls and starts PostgreSQL,
 *     n8n and Qdrant, restores Qdrant's latest snapshots from EFS when the
 *     local volume is new, then starts Ollama and Crawl4AI and pulls the
 *     Ollama models in a background unit (geusemaker-late.service);
 *   - geusemaker-qdrant-backup.timer copies Qdrant snapshots (its snapshot
 *     API, with its API key) to EFS every GM_QDRANT_BACKUP_INTERVAL_MIN
 *     minutes; the spot watcher and the stack's stop do the same before the
 *     stack stops;
 *   - nginx in front: 443 with TLS, n8n at "/", Qdrant at "/qdrant/" (its own
 *     API key, header "api-key"), Crawl4AI at "/crawl4ai/" and Ollama at
 *     "/ollama/" (both "Authorization: Bearer <token>"); port 80 redirects to
 *     443 except the two health paths below. Containers publish on 127.0.0.1
 *     only; PostgreSQL publishes nothing. Tier automation: X-Forwarded-Proto
 *     is the load balancer's, n8n counts two proxies, and without a
 *     certificate (alb_https false) the session cookie is not Secure (plain
 *     HTTP: see gm_stack_plain_http_warning);
 *   - the health document (see health/health.h) at GM_HEALTH_PATH, refreshed
 *     every GM_HEALTH_REFRESH_S by geusemaker-health.timer from the containers'
 *     Compose health status and pg_isready; GM_HEALTH_READY_PATH answers 200
 *     while the critical services (PostgreSQL, n8n) are healthy and the last
 *     refresh is at most GM_HEALTH_READY_TTL_MIN minutes old, else 503: the
 *     ALB target group (automation tier) should check that path;
 *   - geusemaker-spot-watch.service polls the spot interruption notice every
 *     5 s, backs Qdrant up to EFS and stops the stack cleanly when it appears.
 * No secret value is ever part of the script or the Compose file.
 */
#ifndef GM_STACK_STACK_H
#define GM_STACK_STACK_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/tier.h"

typedef enum gm_os { GM_OS_AL2023, GM_OS_UBUNTU2204, GM_OS_UBUNTU2404 } gm_os;

typedef struct gm_stack_params {
    const char *name; /* deployment name: see gm_stack_validate_name */
    gm_tier tier;
    const char *region;        /* fallback only: the instance asks IMDSv2 */
    const char *instance_type; /* "t3.large", "g5.xlarge", ... */
    gm_os os;
    const char *efs_id; /* NULL: a placeholder (review only; the script refuses to run) */
    const char *eip_allocation_id; /* the deployment's Elastic IP ("eipalloc-..."), which the
                                      instance associates with itself at boot (a replacement
                                      takes it over); NULL: none (tier automation: the load
                                      balancer's address) */
    const char *const *models;     /* Ollama models to pull in the background; may be NULL */
    size_t n_models;
    const char *ssm_prefix; /* "/geusemaker/NAME/"; NULL: derived from name */
    bool alb_https;         /* tier automation: the load balancer has an HTTPS listener
                               (--certificate-arn). false: it serves plain HTTP on 80 */
    /* Image overrides (--image SERVICE=REF): the Compose file runs
     * image_refs[i] for service image_services[i] instead of the catalogue's
     * pinned "repository:release@digest" (an override carries a digest only
     * when the user gave one). At most one per service: see
     * gm_stack_validate_images. May be NULL with n_images 0. */
    const char *const *image_services;
    const char *const *image_refs;
    size_t n_images;
} gm_stack_params;

/* Paths on the instance (without the GM_ROOT prefix). */
#define GM_HEALTH_PATH "/geusemaker/health.json"
#define GM_HEALTH_READY_PATH "/geusemaker/ready"
#define GM_HEALTH_REFRESH_S 30
#define GM_HEALTH_READY_TTL_MIN 3 /* a ready answer outlives its last refresh by 2-3 min */
/* The health document's "boot" lists at most this many steps (health.h's
 * GM_HEALTH_MAX_BOOT_STEPS; a unit test checks they agree). */
#define GM_HEALTH_BOOT_STEPS_MAX 24
#define GM_STACK_EFS_MOUNT "/mnt/efs"
/* The stack's lease (gm-lease): GM_STACK_EFS_MOUNT/GM_STACK_LEASE_DIR/stack.lease
 * locked by the instance that runs the stack, its name in holder. */
#define GM_STACK_LEASE_DIR ".geusemaker"
/* The local data volume: the engine attaches an encrypted gp3 EBS volume
 * under this device name (DeleteOnTermination true); the UserData finds it
 * (on Nitro it is an NVMe disk), formats it once and mounts it here. */
#define GM_STACK_DATA_DEVICE "/dev/sdf"
#define GM_STACK_DATA_MOUNT "/mnt/data"
#define GM_STACK_DATA_LABEL "gm-data"
/* Where the Qdrant snapshots go on EFS, and how often. */
#define GM_STACK_QDRANT_BACKUP_DIR GM_STACK_EFS_MOUNT "/backup/qdrant"
#define GM_QDRANT_BACKUP_INTERVAL_MIN 15
/* The String parameter (under the SSM prefix) holding the URL users reach the
 * stack at, when it is not the instance's own address: in tier automation the
 * engine puts "http://<load balancer DNS name>" (or https:// with a
 * certificate) there. The instance reads it at boot with its role. */
#define GM_STACK_PUBLIC_URL_PARAMETER "public_url"
#define GM_STACK_APP_DIR "/opt/geusemaker"
#define GM_USERDATA_LOG "/var/log/geusemaker/userdata.log"
#define GM_USERDATA_DONE_MARKER "/var/lib/geusemaker/userdata.done"
#define GM_USERDATA_FAILED_MARKER "/var/lib/geusemaker/userdata.failed"
/* The EFS id written when efs_id is NULL. */
#define GM_STACK_EFS_PLACEHOLDER "fs-REVIEW-ONLY"

/* Size limits. EC2 takes at most 16,384 bytes of UserData before base64
 * (GM_LIMIT_USERDATA_RAW); the script itself may be larger before gzip. */
#define GM_LIMIT_USERDATA_SCRIPT (128u * 1024u) /* buffer for the rendered script */
#define GM_LIMIT_COMPOSE_FILE (64u * 1024u)     /* buffer for the Compose file */
#define GM_STACK_NAME_MAX 28                    /* "<name>-alb" must fit 32 */
#define GM_STACK_MAX_MODELS 16
#define GM_STACK_MODEL_NAME_MAX 128
#define GM_STACK_MAX_IMAGES 8      /* image overrides: one per catalogue service at most */
#define GM_STACK_IMAGE_REF_MAX 255 /* an image reference, registry to digest */

/* "al2023"/"ubuntu2204"/"ubuntu2404" → os; false when unknown. */
bool gm_os_parse(const char *s, gm_os *out);
const char *gm_os_name(gm_os os);

/* True when the instance type belongs to an NVIDIA GPU family (g4dn, g5, g5g,
 * g6, g6e, g6f, gr6, p3, p4d, p5, ...). The family is the part before the dot.
 * g4ad (AMD GPUs) is not: the NVIDIA runtime cannot use it. */
bool gm_instance_type_is_gpu(const char *type);
/* The GPU families, comma separated, for messages. */
const char *gm_gpu_families(void);

/* A deployment name: 1..GM_STACK_NAME_MAX characters of [a-z0-9-], starting
 * with a letter, not ending with '-', no "--". */
GM_MUST_CHECK gm_status gm_stack_validate_name(const char *name, gm_error *err);

/* Checks everything the generators need, before any AWS call: name, tier,
 * instance type syntax, a gpu tier only on a GPU instance type (the message
 * lists the GPU families), region, EFS id syntax (when given), models (at most
 * GM_STACK_MAX_MODELS names of [A-Za-z0-9._:/-]), ssm_prefix (when given:
 * starts and ends with '/', [A-Za-z0-9/_.-]), image overrides
 * (gm_stack_validate_images). GM_ERR_INVALID on failure. */
GM_MUST_CHECK gm_status gm_stack_validate(const gm_stack_params *p, gm_error *err);
/* Ollama model names: at most GM_STACK_MAX_MODELS, each of [A-Za-z0-9._:/-],
 * not starting with '-', '.' or '/'. GM_ERR_INVALID naming the bad one. */
GM_MUST_CHECK gm_status gm_stack_validate_models(const char *const *models, size_t n,
                                                 gm_error *err);

/* One image override: service must be a service of tier's stack (today every
 * tier runs the whole catalogue; the message lists them and suggests a near
 * miss), and ref a Docker image reference with an explicit version:
 *   [HOST[:PORT]/]PATH[:TAG][@sha256:<64 hex>]
 * HOST is dot-separated [A-Za-z0-9-] labels (it is the first component when
 * that has a '.' or a ':' or is "localhost"); PATH is '/'-separated components
 * of [a-z0-9]+ joined by '.', '_', "__" or dashes; TAG is
 * [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. A TAG or a digest is required, and the
 * tag "latest" is refused (both would make a replacement instance pull
 * whatever the tag points at that day); at most GM_STACK_IMAGE_REF_MAX
 * characters. The character set leaves nothing for the shell or YAML to
 * interpret. GM_ERR_INVALID with a message naming --image and the value. */
GM_MUST_CHECK gm_status gm_stack_validate_image(gm_tier tier, const char *service, const char *ref,
                                                gm_error *err);
/* Every override (gm_stack_validate_image), at most GM_STACK_MAX_IMAGES, and
 * no service named twice (GM_ERR_INVALID naming both values). */
GM_MUST_CHECK gm_status gm_stack_validate_images(gm_tier tier, const char *const *services,
                                                 const char *const *refs, size_t n, gm_error *err);
/* The override p gives service, or NULL (the catalogue's pin). */
const char *gm_stack_image_override(const gm_stack_params *p, const char *service);

/* Sensible defaults per tier (static strings). */
const char *gm_stack_default_instance_type(gm_tier tier);
const char *const *gm_stack_default_models(gm_tier tier, size_t *out_n);

/* Appends the UserData bash script to out (initialise it with
 * gm_buf_init(out, GM_LIMIT_USERDATA_SCRIPT)). Validates p first. The script
 * is emitted exactly as it must run: never post-process it (no comment
 * stripping: heredocs carry other scripts). */
GM_MUST_CHECK gm_status gm_userdata_render(const gm_stack_params *p, gm_buf *out, gm_error *err);

/* The marker a baked image carries, and the builder's completion tag. */
#define GM_BAKE_MARKER "/var/lib/geusemaker/baked" /* catalogue=, os=, tier= lines */
#define GM_BAKE_TAG "geusemaker:bake"              /* "done" or "failed" on the builder */

/* Appends the script of an image build's builder instance (initialise out
 * with gm_buf_init(out, GM_LIMIT_USERDATA_SCRIPT)): the install part of the
 * UserData (packages, Docker and Compose, efs-utils, nginx; the NVIDIA
 * runtime on tier gpu), then every catalogue image pulled (docker pull of
 * each pinned reference), the marker GM_BAKE_MARKER, and the builder's tag
 * GM_BAKE_TAG = done (failed when a step fails) set on itself with its
 * instance role. Validates p first. */
GM_MUST_CHECK gm_status gm_userdata_render_bake(const gm_stack_params *p, gm_buf *out,
                                                gm_error *err);

/* Prepares a script for RunInstances' UserData: when the script is over
 * GM_LIMIT_USERDATA_RAW bytes it is gzip-compressed (gzip header; cloud-init
 * gunzips it); if what would be sent is still over GM_LIMIT_USERDATA_RAW the
 * result is GM_ERR_LIMIT with both sizes in the message. On success
 * *out_base64 is a malloc'd NUL-terminated base64 string (caller frees),
 * *out_size the number of bytes before base64, *out_gzipped whether gzip was
 * applied. On failure the out_ values are untouched. */
GM_MUST_CHECK gm_status gm_userdata_encode(const gm_buf *script, char **out_base64,
                                           size_t *out_size, bool *out_gzipped, gm_error *err);

/* Appends the Docker Compose file (YAML) to out (initialise it with
 * gm_buf_init(out, GM_LIMIT_COMPOSE_FILE)). Secrets appear only as Compose
 * interpolations ("${GM_POSTGRES_PASSWORD:?...}") resolved from the 0600 env
 * file on the instance. Validates p first. */
GM_MUST_CHECK gm_status gm_compose_render(const gm_stack_params *p, gm_buf *out, gm_error *err);

/* The warning to show when p serves n8n over plain HTTP (tier automation
 * without a certificate): a static string, NULL when the stack is served over
 * HTTPS. The UserData logs it too. */
const char *gm_stack_plain_http_warning(const gm_stack_params *p);

/* The SSM prefix for a deployment: "/geusemaker/NAME/" (malloc'd; NULL when
 * memory is exhausted). */
char *gm_stack_default_ssm_prefix(const char *name);

#endif
