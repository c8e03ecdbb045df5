/* Shared between the stack generators; not part of the layer's interface. */
#ifndef GM_STACK_INTERNAL_H
#define GM_STACK_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include "core/buf.h"
#include "stack/catalogue.h"
#include "stack/stack.h"

/* Appends the Compose file for validated parameters (no validation, no error
 * context; GM_ERR_LIMIT/GM_ERR_NOMEM from the buffer). */
GM_MUST_CHECK gm_status gm_stack_compose_append(const gm_stack_params *p, gm_tier tier,
                                                gm_buf *out);

/* The image reference Compose runs for service s: the --image override, else
 * the catalogue's REPO:TAG@DIGEST (REPO:TAG without a digest). GM_ERR_LIMIT
 * when it does not fit in size bytes. */
GM_MUST_CHECK gm_status gm_stack_image_ref(const gm_stack_params *p, const gm_service *s, char *out,
                                           size_t size);

/* ---- the UserData's pieces (userdata*.c) ---------------------------------- */

/* A file the UserData installs: its name and its whole text. */
typedef struct gm_ud_file {
    const char *name;
    const char *text;
} gm_ud_file;

/* The systemd units under /etc/systemd/system (userdata_conf.c). */
const gm_ud_file *gm_ud_units(size_t *out_n);
/* docker.service.d/geusemaker.conf: mounts required, the IMDS rule re-applied. */
const char *gm_ud_docker_dropin(void);
/* nginx.conf for the OS and tier. */
void gm_ud_nginx_conf(gm_emit *e, const gm_stack_params *p);

/* The helper scripts under /opt/geusemaker/bin (userdata_scripts.c), in the
 * order they are installed. Each renders a whole bash script. */
typedef struct gm_ud_script {
    const char *name;
    void (*render)(gm_emit *e, const gm_stack_params *p);
} gm_ud_script;
const gm_ud_script *gm_ud_scripts(size_t *out_n);
/* The one the docker step installs before Docker starts. */
void gm_ud_imds_block_script(gm_emit *e, const gm_stack_params *p);

/* have_image SERVICE for a script that sets R: true when the service's image
 * (as written to $R/etc/geusemaker/images by the files step) is already in
 * Docker's store, so the pull can leave it out. */
void gm_ud_have_image_fn(gm_emit *e);

/* A whole script: p validated, its SSM prefix defaulted, body rendered into
 * out; on failure out is as it was and the message names what ("the
 * UserData"). */
typedef gm_status (*gm_ud_body)(gm_emit *e, const gm_stack_params *p);
GM_MUST_CHECK gm_status gm_ud_render_with(const gm_stack_params *p, gm_buf *out, gm_ud_body body,
                                          const char *what, gm_error *err);
/* log() for a script: "<time> [tag] message" on stderr. */
void gm_ud_log_fn(gm_emit *e, const char *tag);
/* Writes content to path (a shell word, already quoted) through a quoted
 * heredoc, then sets its mode and moves it in place. e->st becomes
 * GM_ERR_INTERNAL when the delimiter appears as a line of the content. */
void gm_ud_put_file(gm_emit *e, const char *path, const char *mode, const char *delim,
                    const char *content);

/* The install part of the main script (userdata.c), for the bake's script
 * (userdata_bake.c): the prologue (variables, log, fail/retry/imds_get, the
 * run's lock), the packages step (Docker, Compose, nginx, efs-utils, ...)
 * and the docker step (the metadata rule, Docker enabled; the NVIDIA
 * container runtime on tier gpu). */
void gm_ud_render_prologue(gm_emit *e, const gm_stack_params *p);
void gm_ud_render_packages(gm_emit *e, const gm_stack_params *p);
GM_MUST_CHECK gm_status gm_ud_render_docker(gm_emit *e, const gm_stack_params *p);

#endif
