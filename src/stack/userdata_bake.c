/* The script of an image build's builder instance (geusemaker image build):
 * the install part of the UserData (userdata.c: prologue, packages, Docker
 * and the NVIDIA runtime), every catalogue image pulled, the marker a baked
 * image carries, and the builder's completion tag, which the tool polls for.
 *
 * The builder has no EFS, no data volume and no secrets: nothing here reads
 * or mounts them. Its role may tag only the instance itself. */
#include <stdlib.h>

#include "stack/catalogue.h"
#include "stack/internal.h"
#include "stack/stack.h"

#define NL "\n"

/* The tag goes on the builder through its role; a failed step tags it
 * "failed" before the script exits, so the tool stops waiting at once. */
static const char bake_fns[] =
    "bake_tag() {" NL "  local id region" NL "  id=$(imds_get instance-id) || return 1" NL
    "  region=$(imds_get placement/region) || region=$GM_REGION" NL
    "  aws ec2 create-tags --region \"$region\" --resources \"$id\" \\" NL
    "    --tags \"Key=" GM_BAKE_TAG ",Value=$1\"" NL "}" NL "bake_failed() {" NL
    "  local rc=$? line=$1" NL "  trap - ERR" NL
    "  log \"FAILED at step '$STEP' (line $line, exit code $rc): the image is not baked\"" NL
    "  printf 'step=%s\\nline=%s\\nexit=%s\\n' \"$STEP\" \"$line\" \"$rc\" "
    ">\"$STATE/userdata.failed\"" NL "  retry 5 6 bake_tag failed || log \"cannot tag the builder: "
    "the tool stops at its timeout\"" NL "  exit \"$rc\"" NL "}" NL
    "trap 'bake_failed $LINENO' ERR" NL
    "# The prologue's settings for EFS, the data volume, nginx and secrets: a" NL
    "# builder has none of them." NL
    ": \"$GM_EFS_ID\" \"$GM_SSM_PREFIX\" \"$EFS_ATTEMPTS\" \"$EFS_DELAY\" \"$DATA_ATTEMPTS\" "
    "\"$DATA_DELAY\" \"$EFS\" \"$DATA\" \"$NGINX\"" NL "" NL;

static void render_pulls(gm_emit *e)
{
    size_t n;
    const gm_service *svc = gm_stack_services(&n);
    gm_emit_put(e, "step pull \"every catalogue image, so a boot pulls nothing\"" NL);
    for (size_t i = 0; i < n; i++) {
        if (svc[i].digest)
            gm_emit_putf(e, "retry 5 30 docker pull '%s@%s'" NL, svc[i].image, svc[i].digest);
        else
            gm_emit_putf(e, "retry 5 30 docker pull '%s'" NL, svc[i].image);
    }
    gm_emit_put(e, "" NL);
}

static void render_baked(gm_emit *e, const gm_stack_params *p)
{
    char version[GM_CATALOGUE_VERSION_LEN];
    gm_catalogue_version(version);
    gm_emit_put(e, "step baked \"the marker, then the builder's tag\"" NL
                   "rm -rf \"$STATE/download\" \"$STATE/build\"" NL);
    gm_emit_putf(e,
                 "printf 'catalogue=%%s\\nos=%%s\\ntier=%%s\\n' '%s' '%s' '%s' "
                 ">\"$STATE/baked.tmp\"" NL,
                 version, gm_os_name(p->os), gm_tier_name(p->tier));
    gm_emit_put(e, "mv -f \"$STATE/baked.tmp\" \"$STATE/baked\"" NL "sync" NL
                   "retry 10 6 bake_tag 'done'" NL
                   "log \"baked: $(tr '\\n' ' ' <\"$STATE/baked\")\"" NL);
}

static GM_MUST_CHECK gm_status render_all(gm_emit *e, const gm_stack_params *p)
{
    gm_ud_render_prologue(e, p);
    gm_emit_put(e, bake_fns);
    gm_ud_render_packages(e, p);
    gm_status st = gm_ud_render_docker(e, p);
    if (st != GM_OK)
        return st;
    render_pulls(e);
    render_baked(e, p);
    return e->st;
}

gm_status gm_userdata_render_bake(const gm_stack_params *p, gm_buf *out, gm_error *err)
{
    return gm_ud_render_with(p, out, render_all, "the builder's script", err);
}
