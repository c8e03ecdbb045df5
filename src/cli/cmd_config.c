/* geusemaker config: every setting's effective value and where it came
 * from; geusemaker init: a commented sample configuration file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/config.h"
#include "cli/deploy_options.h"
#include "core/str.h"
#include "state/store.h"

static int cmd_config(gm_cli *cli, const gm_args *args);
static int cmd_init(gm_cli *cli, const gm_args *args);

const gm_command gm_command_config = {
    .name = "config",
    .summary = "show each setting's effective value and where it came from",
    .synopsis = "config [deployment options] [--output text|json]",
    .groups = {&gm_cli_deploy_group, &gm_cli_alb_group},
    .pos_what = "no arguments",
    .notes = "Precedence: flags > GEUSEMAKER_<OPTION> variables (GEUSEMAKER_ALLOW_CIDR for\n"
             "--allow-cidr; lists comma-separated) > ./geusemaker.yaml > the user file\n"
             "$GEUSEMAKER_HOME/config.yaml > defaults. Keys are the long option names.\n"
             "A region set in either file, or GEUSEMAKER_REGION, wins over AWS_REGION,\n"
             "AWS_DEFAULT_REGION and the profile's region, never over a record's region.",
    .local = true,
    .run = cmd_config,
};

enum { OPT_PROJECT = 1, OPT_FORCE };

static const gm_opt init_opts[] = {
    {.name = "project",
     .help = "write ./geusemaker.yaml (for this directory) instead of the user file",
     .id = OPT_PROJECT},
    {.name = "force", .help = "replace an existing file", .id = OPT_FORCE},
};

static const gm_optgroup init_group = GM_OPTGROUP(NULL, init_opts);

const gm_command gm_command_init = {
    .name = "init",
    .summary = "write a commented sample configuration file",
    .synopsis = "init [--project] [--force]",
    .groups = {&init_group},
    .pos_what = "no arguments",
    .notes = "Writes $GEUSEMAKER_HOME/config.yaml (or ./geusemaker.yaml with --project)\n"
             "with every setting commented out at its default; uncomment what you change.",
    .local = true,
    .no_settings = true,
    .run = cmd_init,
};

/* Calls fn for every setting once (the first table that has its name). */
static void each_setting(void (*fn)(void *ctx, const gm_opt *o), void *ctx)
{
    for (size_t i = 0; i < gm_cli_global_group.n; i++)
        if (gm_cli_is_setting(&gm_cli_global_group.opts[i]))
            fn(ctx, &gm_cli_global_group.opts[i]);
    size_t n = 0;
    const gm_command *const *cmds = gm_cli_commands(&n);
    const char *seen[128];
    size_t n_seen = 0;
    for (size_t c = 0; c < n; c++)
        for (size_t g = 0; g < 4 && cmds[c]->groups[g]; g++)
            for (size_t i = 0; i < cmds[c]->groups[g]->n; i++) {
                const gm_opt *o = &cmds[c]->groups[g]->opts[i];
                bool dup = false;
                for (size_t k = 0; k < n_seen; k++)
                    dup |= strcmp(seen[k], o->name) == 0;
                if (dup || !gm_cli_is_setting(o) || (o->flags & GM_OPT_HIDDEN) || n_seen == 128)
                    continue;
                seen[n_seen++] = o->name;
                fn(ctx, o);
            }
}

typedef struct show_ctx {
    gm_cli *cli;
    const gm_args *args;
    json_t *out;
} show_ctx;

static const char *source_name(gm_setting_source s)
{
    static const char *const names[] = {"default", "user file", "project file", "environment",
                                        "flag"};
    return names[s];
}

/* A global option's value from the command line, or NULL. */
static json_t *global_flag(const gm_cli *cli, const gm_opt *o)
{
    if (!(cli->given & (1u << o->id)))
        return NULL;
    if (strcmp(o->name, "region") == 0)
        return json_string(cli->region);
    if (strcmp(o->name, "profile") == 0)
        return json_string(cli->profile);
    if (strcmp(o->name, "output") == 0)
        return json_string(cli->output == GM_OUTPUT_JSON ? "json" : "text");
    return json_true();
}

static json_t *values_json(const gm_opt *o, char *const *values, size_t n)
{
    if (!o->arg)
        return json_boolean(n > 0 && strcmp(values[n - 1], "true") == 0);
    if (n == 0)
        return json_null();
    if (!(o->flags & GM_OPT_REPEAT))
        return json_string(values[n - 1]);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(values[i]));
    return a;
}

static void show_one(void *vctx, const gm_opt *o)
{
    show_ctx *c = vctx;
    json_t *value = NULL;
    const char *source = "default", *where = NULL;
    const gm_arg *given = gm_args_find(c->args, o->name);
    const gm_setting *s = gm_cli_setting(o->name);
    if ((value = global_flag(c->cli, o))) {
        source = "flag";
    } else if (given && !given->from) {
        char *vals[32];
        size_t n = 0;
        for (size_t i = 0; i < c->args->n_opts && n < 32; i++)
            if (c->args->opts[i].opt == given->opt && !c->args->opts[i].from)
                vals[n++] = (char *)(c->args->opts[i].value ? c->args->opts[i].value : "true");
        value = values_json(o, vals, n);
        source = "flag";
    } else if (s) {
        value = values_json(o, s->values, s->n);
        source = source_name(s->source);
        where = s->where;
    } else {
        value = !o->arg   ? json_boolean(o->dflt && strcmp(o->dflt, "on") == 0)
                : o->dflt ? json_string(o->dflt)
                          : json_null();
    }
    json_object_set_new(c->out, o->name,
                        json_pack("{s:o, s:s, s:s?}", "value", value ? value : json_null(),
                                  "source", source, "where", where));
}

static void print_text(json_t *settings)
{
    printf("%-24s %-30s %s\n", "SETTING", "VALUE", "SOURCE");
    const char *key;
    json_t *v;
    json_object_foreach (settings, key, v) {
        json_t *val = json_object_get(v, "value");
        char *text = json_is_string(val) ? strdup(json_string_value(val))
                                         : json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
        const char *where = json_string_value(json_object_get(v, "where"));
        printf("%-24s %-30s %s\n", key, text ? text : "?",
               where ? where : json_string_value(json_object_get(v, "source")));
        free(text);
    }
}

static int cmd_config(gm_cli *cli, const gm_args *args)
{
    show_ctx c = {.cli = cli, .args = args, .out = json_object()};
    each_setting(show_one, &c);
    char *user = gm_cli_user_config_path();
    if (cli->output == GM_OUTPUT_JSON) {
        gm_cli_print_json(json_pack("{s:o, s:{s:s, s:s?}}", "settings", c.out, "files", "project",
                                    gm_cli_project_config_path(), "user", user));
    } else {
        print_text(c.out);
        printf("\nfiles: %s, %s\n", gm_cli_project_config_path(), user ? user : "(no state home)");
        json_decref(c.out);
    }
    free(user);
    return GM_EXIT_OK;
}

/* ---- init ------------------------------------------------------------------------ */

static void sample_line(void *ctx, const gm_opt *o)
{
    FILE *f = ctx;
    char value[96];
    /* a default that is a description ("the tier's list") shows the placeholder */
    const char *v = o->dflt && !strchr(o->dflt, ' ') ? o->dflt : o->arg;
    if (!o->arg)
        snprintf(value, sizeof value, "%s",
                 o->dflt && strcmp(o->dflt, "on") == 0 ? "true" : "false");
    else if (o->flags & GM_OPT_REPEAT)
        snprintf(value, sizeof value, "[%s]", v);
    else
        snprintf(value, sizeof value, "%s", v);
    char line[160];
    snprintf(line, sizeof line, "# %s: %s", o->name, value);
    fprintf(f, "%-44s # %s\n", line, o->help);
}

static int cmd_init(gm_cli *cli, const gm_args *args)
{
    bool project = gm_args_has(args, OPT_PROJECT);
    gm_error err = {0};
    gm_store *store = NULL;
    char *path = project ? strdup(gm_cli_project_config_path()) : NULL;
    gm_status st = GM_OK;
    if (!project) { /* the state home, made if needed (and checked) */
        st = gm_store_open(NULL, &store, &err);
        if (st == GM_OK)
            st = gm_store_make_dirs(store, &err);
        if (st == GM_OK)
            path = gm_strfmt("%s/config.yaml", gm_store_home(store));
        gm_store_free(store);
    }
    if (st != GM_OK)
        return gm_cli_fail(cli, st, &err);
    int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
                (gm_args_has(args, OPT_FORCE) ? O_TRUNC : O_EXCL);
    int fd = path ? open(path, flags, 0600) : -1;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        int rc = gm_cli_usage_error(cli, "cannot write %s: %s%s", path ? path : "the file",
                                    strerror(e), e == EEXIST ? " (--force replaces it)" : "");
        free(path);
        return rc;
    }
    fprintf(f, "# geusemaker settings: keys are the long option names.\n"
               "# Precedence: flags > GEUSEMAKER_<OPTION> variables > ./geusemaker.yaml >\n"
               "# $GEUSEMAKER_HOME/config.yaml > the defaults shown here.\n"
               "# Uncomment and edit what you want to change; lists take [a, b].\n\n");
    each_setting(sample_line, f);
    bool ok = fclose(f) == 0;
    if (ok && cli->output == GM_OUTPUT_JSON)
        gm_cli_print_json(json_pack("{s:s}", "written", path));
    else if (ok)
        printf("wrote %s\n", path);
    int rc = ok ? GM_EXIT_OK : gm_cli_usage_error(cli, "cannot write %s", path);
    free(path);
    return rc;
}
