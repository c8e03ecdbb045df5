/* geusemaker image build | list | delete: baked images, so a boot skips the
 * package installs and image pulls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/deploy_prompt.h"
#include "cli/deployment.h"
#include "core/log.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "stack/catalogue.h"

static int cmd_image(gm_cli *cli, const gm_args *args);

enum { OPT_TIER = 1, OPT_OS, OPT_TYPE, OPT_TIMEOUT, OPT_YES };

static const gm_opt build_opts[] = {
    {.name = "tier",
     .arg = "TIER",
     .help = "dev, automation or gpu (gpu adds the NVIDIA container runtime)",
     .dflt = "dev",
     .id = OPT_TIER},
    {.name = "os",
     .arg = "OS",
     .help = "the builder's system: al2023, ubuntu-22.04 or ubuntu-24.04 (as deploy --os)",
     .dflt = "al2023",
     .id = OPT_OS},
    {.name = "instance-type",
     .arg = "TYPE",
     .help = "the builder's type (its architecture is the image's); default: the tier's",
     .id = OPT_TYPE},
    {.name = "timeout",
     .arg = "S",
     .help = "the whole build's deadline in seconds",
     .dflt = "3600",
     .id = OPT_TIMEOUT},
    {.name = "yes",
     .short_name = 'y',
     .help = "do not ask for confirmation (required without a terminal)",
     .id = OPT_YES},
};

static const gm_optgroup build_group = GM_OPTGROUP("build and delete", build_opts);

const gm_command gm_command_image = {
    .name = "image",
    .summary = "bake, list and delete images with the stack's packages and images installed",
    .synopsis = "image build [--tier dev|automation|gpu] [--os OS] [--instance-type T]\n"
                "                       [--timeout S] [--yes]\n"
                "       geusemaker image list\n"
                "       geusemaker image delete ID [--yes]",
    .notes = "build launches a temporary builder (its own network without ingress, a role\n"
             "that may only tag the builder) that installs Docker, Compose, nginx and\n"
             "efs-utils and pulls every pinned image, then makes an image of it and removes\n"
             "the rest. The image is tagged with the catalogue version: deploy --image baked\n"
             "launches the newest one that matches this geusemaker. A build that stopped\n"
             "half-way is removed with 'geusemaker destroy bake-ID --yes' or 'cleanup'.",
    .groups = {&build_group},
    .min_pos = 1,
    .max_pos = 2,
    .pos_what = "an action (build, list, delete) and, for delete, an image id",
    .pos_words = "build list delete",
    .run = cmd_image,
};

static bool confirm(const char *question)
{
    if (!gm_cli_can_ask())
        return false;
    fprintf(stderr, "%s [y/N] ", question);
    char line[16];
    return fgets(line, sizeof line, stdin) && (line[0] == 'y' || line[0] == 'Y');
}

/* ---- build -------------------------------------------------------------- */

typedef struct build_run {
    gm_cli *cli;
    gm_deploy_config cfg;
    char name[32];
    gm_engine_settings settings;
    gm_store *store;
    gm_lock *lock;
    gm_aws_client *aws;
    gm_deployment *dep;
    char ami[64];
    int64_t t0;
    gm_error err;
} build_run;

static int parse_build(build_run *b, const gm_args *args)
{
    gm_cli *cli = b->cli;
    const char *tier = gm_args_value(args, OPT_TIER), *os = gm_args_value(args, OPT_OS);
    const char *timeout = gm_args_value(args, OPT_TIMEOUT);
    b->cfg.tier = GM_TIER_DEV;
    if (tier && !gm_tier_parse(tier, &b->cfg.tier))
        return gm_cli_usage_error(cli, "unknown --tier '%s': expected dev, automation or gpu",
                                  tier);
    if (os && !gm_os_parse(os, &b->cfg.os))
        return gm_cli_usage_error(
            cli, "unknown --os '%s': expected al2023, ubuntu-22.04 or ubuntu-24.04", os);
    int64_t s = 3600;
    if (timeout && !gm_str_to_int64(timeout, 60, 24 * 3600, &s))
        return gm_cli_usage_error(
            cli, "invalid --timeout '%s': expected a whole number of seconds from 60 to 86400",
            timeout);
    b->cfg.timeout_ms = s * 1000;
    b->cfg.instance_type = gm_args_value(args, OPT_TYPE);
    if (!b->cfg.instance_type)
        b->cfg.instance_type = gm_stack_default_instance_type(b->cfg.tier);
    b->cfg.spot = false;
    gm_status st = gm_engine_bake_name(b->name, sizeof b->name, &b->err);
    b->cfg.name = b->name;
    if (st == GM_OK)
        st = gm_engine_check_config(&b->cfg, &b->err);
    if (st != GM_OK)
        return gm_cli_fail(cli, st, &b->err);
    if (!gm_args_has(args, OPT_YES) && !gm_cli_can_ask())
        return gm_cli_usage_error(cli, "image build launches an instance that costs money: pass "
                                       "--yes (there is no terminal to ask on)");
    if (!gm_args_has(args, OPT_YES) &&
        !confirm("Build an image (a temporary instance and network for about 15 minutes)?")) {
        fprintf(stderr, "not confirmed: nothing was created\n");
        return GM_EXIT_USAGE;
    }
    return -1;
}

static void print_built(build_run *b)
{
    char version[GM_CATALOGUE_VERSION_LEN];
    gm_catalogue_version(version);
    double secs = (double)(gm_now_ms() - b->t0) / 1000.0;
    if (b->cli->output == GM_OUTPUT_JSON) {
        gm_cli_print_json(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:f}", "image_id", b->ami,
                                    "build", b->name, "catalogue", version, "os",
                                    gm_os_name(b->cfg.os), "tier", gm_tier_name(b->cfg.tier),
                                    "region", gm_aws_client_region(b->aws), "duration_s", secs));
        return;
    }
    printf("Baked %s (catalogue %s, %s, tier %s) in %.1fs.\n"
           "Deploy from it with: geusemaker deploy --image baked ...\n",
           b->ami, version, gm_os_name(b->cfg.os), gm_tier_name(b->cfg.tier), secs);
}

static int report_build(build_run *b, gm_status st, const gm_deploy_outcome *outcome)
{
    char *archived = NULL;
    gm_error aerr = {0};
    if (st == GM_OK || outcome->rolled_back) {
        if (gm_store_archive(b->store, b->name, &archived, &aerr) != GM_OK)
            fprintf(stderr, "warning: the build's record could not be archived: %s\n",
                    aerr.message);
        free(archived);
    }
    if (st == GM_OK) {
        print_built(b);
        return GM_EXIT_OK;
    }
    if (*b->ami)
        fprintf(stderr, "the image %s was made\n", b->ami);
    if (outcome->rolled_back)
        fprintf(stderr, "rolled back: nothing of build '%s' remains\n", b->name);
    else
        fprintf(stderr,
                "the build is recorded as '%s'; remove what it left with 'geusemaker destroy "
                "%s --yes'\n",
                b->dep ? gm_dep_status_name(b->dep->status) : "failed", b->name);
    int rc = gm_cli_fail(b->cli, st, &b->err);
    return outcome->interrupted ? gm_cli_interrupt_exit_code() : rc;
}

static int run_build(build_run *b)
{
    gm_log_event(GM_LOG_INFO, "image_build_start",
                 json_pack("{s:s, s:s, s:s, s:s}", "build", b->name, "tier",
                           gm_tier_name(b->cfg.tier), "os", gm_os_name(b->cfg.os), "instance_type",
                           b->cfg.instance_type));
    char title[128];
    snprintf(title, sizeof title, "Baking an image \"%s\" in %s", b->name,
             gm_aws_client_region(b->aws));
    gm_progress *progress = gm_progress_new(&b->cli->term, gm_cli_show_progress(b->cli), title);
    gm_engine_options eo = {.aws = b->aws,
                            .store = b->store,
                            .observer = gm_cli_progress_observer,
                            .observer_ctx = progress,
                            .interrupt = &gm_cli_interrupted,
                            .settings = b->settings};
    gm_deploy_outcome outcome = {0};
    gm_status st =
        gm_engine_bake(&eo, &b->cfg, b->dep, false, b->ami, sizeof b->ami, &outcome, &b->err);
    gm_progress_free(progress);
    gm_log_event(st == GM_OK ? GM_LOG_INFO : GM_LOG_ERROR, "image_build_end",
                 json_pack("{s:s, s:s, s:I, s:s?}", "build", b->name, "image_id", b->ami,
                           "duration_ms", (json_int_t)(gm_now_ms() - b->t0), "error",
                           st == GM_OK ? NULL : b->err.message));
    return report_build(b, st, &outcome);
}

static int image_build(gm_cli *cli, const gm_args *args)
{
    build_run b = {.cli = cli};
    int rc = parse_build(&b, args);
    if (rc >= 0)
        return rc;
    gm_status st = gm_cli_engine_settings(&b.settings, &b.err);
    b.t0 = gm_now_ms();
    gm_cli_install_interrupt_handlers();
    if (st == GM_OK)
        st = gm_cli_open_locked(cli, b.name, &b.store, &b.lock, &b.err);
    if (st == GM_OK)
        st = gm_cli_aws_client(cli, &b.aws, &b.err);
    if (st == GM_OK)
        st = gm_engine_check_config_region(&b.cfg, gm_aws_client_region(b.aws), &b.err);
    if (st == GM_OK && gm_cli_interrupted)
        st = gm_error_set(&b.err, GM_ERR_INTERRUPTED, "interrupted: nothing was created");
    if (st == GM_OK)
        st = gm_engine_bake_record_new(&b.cfg, gm_aws_client_region(b.aws), &b.dep, &b.err);
    if (st == GM_OK)
        st = gm_store_save(b.store, b.dep, &b.err);
    rc = st == GM_OK ? run_build(&b) : gm_cli_fail(cli, st, &b.err);
    gm_deployment_free(b.dep);
    gm_aws_client_free(b.aws);
    gm_lock_release(b.lock);
    gm_store_free(b.store);
    gm_log_close();
    return rc;
}

/* ---- list and delete -------------------------------------------------- */

static void print_images(const json_t *images)
{
    printf("%-21s  %-20s  %-20s  %-10s  %-10s  %-13s  %s\n", "IMAGE", "CREATED", "NAME", "OS",
           "TIER", "CATALOGUE", "CURRENT");
    size_t i;
    json_t *im;
    json_array_foreach (images, i, im) {
        const char *name = json_string_value(json_object_get(im, "name"));
        printf("%-21s  %-20.20s  %-20.20s  %-10s  %-10s  %-13s  %s\n",
               json_string_value(json_object_get(im, "id")),
               json_string_value(json_object_get(im, "created")),
               name && strncmp(name, "geusemaker-", 11) == 0 ? name + 11 : name,
               json_string_value(json_object_get(im, "os")),
               json_string_value(json_object_get(im, "tier")),
               json_string_value(json_object_get(im, "catalogue")),
               json_is_true(json_object_get(im, "current")) ? "yes" : "no");
    }
    if (json_array_size(images) == 0)
        printf("(no baked image in this region: 'geusemaker image build' makes one)\n");
}

static int image_list(gm_cli *cli)
{
    gm_aws_client *aws = NULL;
    gm_error err = {0};
    json_t *images = NULL;
    gm_status st = gm_cli_aws_client(cli, &aws, &err);
    if (st == GM_OK)
        st = gm_engine_images(aws, &images, &err);
    if (st != GM_OK) {
        gm_aws_client_free(aws);
        return gm_cli_fail(cli, st, &err);
    }
    char version[GM_CATALOGUE_VERSION_LEN];
    gm_catalogue_version(version);
    if (cli->output == GM_OUTPUT_JSON)
        gm_cli_print_json(json_pack("{s:s, s:s, s:O}", "region", gm_aws_client_region(aws),
                                    "catalogue", version, "images", images));
    else
        print_images(images);
    json_decref(images);
    gm_aws_client_free(aws);
    return GM_EXIT_OK;
}

static int image_delete(gm_cli *cli, const char *id, bool yes)
{
    if (!yes && !gm_cli_can_ask())
        return gm_cli_usage_error(cli, "image delete needs --yes when there is no terminal to "
                                       "confirm on");
    if (!yes && !confirm("Deregister the image and delete its snapshots?")) {
        fprintf(stderr, "not confirmed: nothing was deleted\n");
        return GM_EXIT_USAGE;
    }
    gm_aws_client *aws = NULL;
    gm_error err = {0};
    bool gone = false;
    size_t snaps = 0;
    gm_status st = gm_cli_aws_client(cli, &aws, &err);
    if (st == GM_OK)
        st = gm_engine_image_delete(aws, id, &gone, &snaps, &err);
    gm_aws_client_free(aws);
    if (st != GM_OK)
        return gm_cli_fail(cli, st, &err);
    if (cli->output == GM_OUTPUT_JSON)
        gm_cli_print_json(json_pack("{s:s, s:s, s:i}", "image_id", id, "status",
                                    gone ? "gone" : "deleted", "snapshots_deleted", (int)snaps));
    else if (gone)
        printf("Image %s is already gone.\n", id);
    else
        printf("Deleted image %s and %zu snapshot(s).\n", id, snaps);
    return GM_EXIT_OK;
}

static int cmd_image(gm_cli *cli, const gm_args *args)
{
    static const char *const actions[] = {"build", "list", "delete"};
    const char *action = args->pos[0];
    bool build = strcmp(action, "build") == 0, del = strcmp(action, "delete") == 0;
    if (!build && !del && strcmp(action, "list") != 0) {
        const char *near = NULL;
        size_t best = 3;
        for (size_t i = 0; i < 3; i++) {
            size_t d = gm_edit_distance(action, actions[i]);
            if (d < best)
                best = d, near = actions[i];
        }
        return gm_cli_usage_error(cli,
                                  "unknown image action '%s'%s%s%s: expected build, list or "
                                  "delete",
                                  action, near ? " (did you mean '" : "", near ? near : "",
                                  near ? "'?)" : "");
    }
    if (del != (args->n_pos == 2))
        return gm_cli_usage_error(cli,
                                  del ? "image delete needs one image id (ami-...)"
                                      : "image %s takes no other argument",
                                  action);
    bool build_only = gm_args_has(args, OPT_TIER) || gm_args_has(args, OPT_OS) ||
                      gm_args_has(args, OPT_TYPE) || gm_args_has(args, OPT_TIMEOUT);
    if (!build && (build_only || (!del && gm_args_has(args, OPT_YES))))
        return gm_cli_usage_error(cli,
                                  "image %s takes none of --tier, --os, --instance-type, "
                                  "--timeout%s",
                                  action, del ? "" : ", --yes");
    if (build)
        return image_build(cli, args);
    return del ? image_delete(cli, args->pos[1], gm_args_has(args, OPT_YES)) : image_list(cli);
}
