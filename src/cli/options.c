/* The table-driven parser and --help of every command. */
#include <stdlib.h>
#include <string.h>

#include "aws/partition.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "core/log.h"
#include "core/str.h"

enum { G_REGION = 1, G_PROFILE, G_OUTPUT, G_VERBOSE, G_NO_COLOR, G_HELP };

static const gm_opt global_opts[] = {
    {.name = "region",
     .arg = "R",
     .help = "AWS region (else AWS_REGION, AWS_DEFAULT_REGION, profile region)",
     .id = G_REGION},
    {.name = "profile",
     .arg = "P",
     .help = "profile of the shared config files (else AWS_PROFILE, 'default')",
     .id = G_PROFILE},
    {.name = "output", .arg = "FMT", .help = "text or json", .dflt = "text", .id = G_OUTPUT},
    {.name = "verbose", .help = "mirror every operation and API call to stderr", .id = G_VERBOSE},
    {.name = "no-color", .help = "no colour (NO_COLOR is honoured too)", .id = G_NO_COLOR},
    {.name = "help", .short_name = 'h', .help = "this help", .id = G_HELP},
};

const gm_optgroup gm_cli_global_group = GM_OPTGROUP("options for every command", global_opts);

void gm_args_release(gm_args *a)
{
    free(a->opts);
    free(a->pos);
    memset(a, 0, sizeof *a);
}

const char *gm_args_value(const gm_args *a, int id)
{
    const char *v = NULL;
    for (size_t i = 0; i < a->n_opts; i++)
        if (a->opts[i].opt->id == id)
            v = a->opts[i].value ? a->opts[i].value : "";
    return v;
}

bool gm_args_has(const gm_args *a, int id)
{
    return gm_args_value(a, id) != NULL;
}

const gm_arg *gm_args_find(const gm_args *a, const char *name)
{
    const gm_arg *found = NULL;
    for (size_t i = 0; i < a->n_opts; i++)
        if (strcmp(a->opts[i].opt->name, name) == 0)
            found = &a->opts[i];
    return found;
}

size_t gm_edit_distance(const char *a, const char *b)
{
    return gm_str_edit_distance(a, b);
}

const char *gm_cli_region_flag(const gm_cli *cli)
{
    return cli->region ? cli->region : cli->region_setting;
}

int gm_cli_global_option(gm_cli *cli, const char *name, const char *value)
{
    for (size_t i = 0; i < gm_cli_global_group.n; i++) {
        const gm_opt *o = &gm_cli_global_group.opts[i];
        if (strcmp(o->name, name) != 0)
            continue;
        cli->given |= 1u << o->id;
        switch (o->id) {
        case G_REGION: {
            /* Known regions only (aws/partition.h), before anything runs. */
            gm_error err = {0};
            if (gm_region_check(value, "--region", &err) != GM_OK)
                return gm_cli_usage_error(cli, "%s", err.message);
            cli->region = value;
            return 0;
        }
        case G_PROFILE:
            if (!*value)
                return gm_cli_usage_error(cli, "empty --profile: name a profile of the aws "
                                               "config files, or leave the option out");
            cli->profile = value;
            return 0;
        case G_OUTPUT:
            if (strcmp(value, "json") == 0)
                cli->output = GM_OUTPUT_JSON;
            else if (strcmp(value, "text") == 0)
                cli->output = GM_OUTPUT_TEXT;
            else
                return gm_cli_usage_error(cli, "invalid --output '%s': expected 'text' or 'json'",
                                          value);
            return 0;
        case G_VERBOSE:
            cli->verbose = true;
            gm_log_set_verbose(true);
            return 0;
        case G_NO_COLOR:
            cli->no_color = true;
            gm_term_init(&cli->term, stderr, true);
            return 0;
        default: return -1;
        }
    }
    return -1;
}

/* ---- finding an option ------------------------------------------------------ */

typedef struct lookup {
    const gm_command *cmd;
    const gm_opt *found;
    const char *best; /* the closest name, for a suggestion */
    size_t best_d;
} lookup;

static void look_in(lookup *l, const gm_optgroup *g, const char *name, char short_name)
{
    for (size_t i = 0; i < g->n && !l->found; i++) {
        const gm_opt *o = &g->opts[i];
        if (short_name ? o->short_name == short_name : strcmp(o->name, name) == 0) {
            l->found = o;
            return;
        }
        if (!short_name && !(o->flags & GM_OPT_HIDDEN)) {
            size_t d = gm_edit_distance(name, o->name);
            if (d < l->best_d) {
                l->best_d = d;
                l->best = o->name;
            }
        }
    }
}

static const gm_opt *find_opt(lookup *l, const char *name, char short_name)
{
    for (size_t g = 0; g < 4 && l->cmd->groups[g] && !l->found; g++)
        look_in(l, l->cmd->groups[g], name, short_name);
    if (!l->found)
        look_in(l, &gm_cli_global_group, name, short_name);
    return l->found;
}

static int unknown_option(gm_cli *cli, const gm_command *cmd, const char *arg, const lookup *l)
{
    /* A suggestion when the name is close: at most a third of it differs. */
    size_t len = strlen(arg);
    if (l->best && l->best_d > 0 && l->best_d <= 2 && l->best_d * 3 <= len + 2)
        return gm_cli_usage_error(cli,
                                  "unknown option '%s' for '%s' (did you mean '--%s'? see "
                                  "'geusemaker %s --help')",
                                  arg, cmd->name, l->best, cmd->name);
    return gm_cli_usage_error(cli, "unknown option '%s' for '%s' (see 'geusemaker %s --help')", arg,
                              cmd->name, cmd->name);
}

/* ---- parsing ------------------------------------------------------------------ */

static bool push_from(gm_args *out, const gm_opt *o, const char *value, const gm_setting *from)
{
    gm_arg *a = realloc(out->opts, (out->n_opts + 1) * sizeof *a);
    if (!a)
        return false;
    out->opts = a;
    a[out->n_opts++] = (gm_arg){o, value, from};
    return true;
}

static bool push_opt(gm_args *out, const gm_opt *o, const char *value)
{
    return push_from(out, o, value, NULL);
}

static bool push_pos(gm_args *out, const char *value)
{
    const char **p = realloc(out->pos, (out->n_pos + 1) * sizeof *p);
    if (!p)
        return false;
    out->pos = p;
    p[out->n_pos++] = value;
    return true;
}

/* One "--name[=value]" or "-x" at argv[*i]; advances *i past a separate
 * value. Returns -1 to go on, or an exit code. */
static int parse_one(gm_cli *cli, const gm_command *cmd, int argc, char **argv, int *i,
                     gm_args *out)
{
    const char *a = argv[*i];
    char name[64] = "";
    char short_name = 0;
    const char *value = NULL;
    if (a[1] == '-') {
        const char *eq = strchr(a + 2, '=');
        size_t n = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (n == 0 || n >= sizeof name)
            return gm_cli_usage_error(cli, "unknown option '%s' for '%s'", a, cmd->name);
        memcpy(name, a + 2, n);
        name[n] = '\0';
        value = eq ? eq + 1 : NULL;
    } else if (a[1] && !a[2]) {
        short_name = a[1];
    } else {
        return gm_cli_usage_error(cli, "unknown option '%s' for '%s' (see 'geusemaker %s --help')",
                                  a, cmd->name, cmd->name);
    }
    lookup l = {.cmd = cmd, .best_d = (size_t)-1};
    const gm_opt *o = find_opt(&l, name, short_name);
    if (!o)
        return unknown_option(cli, cmd, a, &l);
    if (o->arg && !value) {
        if (*i + 1 >= argc)
            return gm_cli_usage_error(cli, "option '--%s' of '%s' needs a value (%s)", o->name,
                                      cmd->name, o->arg);
        value = argv[++*i];
    } else if (!o->arg && value) {
        return gm_cli_usage_error(cli, "option '--%s' of '%s' takes no value", o->name, cmd->name);
    }
    bool global = o >= global_opts && o < global_opts + sizeof global_opts / sizeof *global_opts;
    if (global && o->id == G_HELP) {
        gm_cli_print_command_help(cmd, stdout);
        return GM_EXIT_OK;
    }
    if (global)
        return gm_cli_global_option(cli, o->name, value ? value : "") == GM_EXIT_USAGE
                   ? GM_EXIT_USAGE
                   : -1;
    if (!push_opt(out, o, value))
        return gm_cli_usage_error(cli, "out of memory");
    return -1;
}

static int check_positionals(gm_cli *cli, const gm_command *cmd, const gm_args *out)
{
    if (out->n_pos < cmd->min_pos || out->n_pos > cmd->max_pos) {
        if (cmd->max_pos == 0)
            return gm_cli_usage_error(cli, "unexpected argument '%s' for '%s'", out->pos[0],
                                      cmd->name);
        return gm_cli_usage_error(cli, "%s takes %s%s", cmd->name,
                                  cmd->min_pos == cmd->max_pos ? "exactly " : "at most ",
                                  cmd->pos_what);
    }
    /* A non-repeatable option given twice is a mistake worth saying. */
    for (size_t i = 0; i < out->n_opts; i++)
        for (size_t j = i + 1; j < out->n_opts; j++)
            if (out->opts[i].opt == out->opts[j].opt &&
                !(out->opts[i].opt->flags & GM_OPT_REPEAT) && out->opts[i].opt->arg &&
                strcmp(out->opts[i].value, out->opts[j].value) != 0)
                return gm_cli_usage_error(cli, "option '--%s' given twice with different values",
                                          out->opts[i].opt->name);
    return -1;
}

/* A global option from the settings, unless given on the command line. */
static int apply_global(gm_cli *cli, const gm_opt *o, const gm_setting *s)
{
    if (cli->given & (1u << o->id))
        return -1;
    if (strcmp(o->name, "region") == 0) {
        gm_error err = {0};
        if (gm_region_check(s->values[0], s->where, &err) != GM_OK)
            return gm_cli_usage_error(cli, "%s", err.message);
        cli->region_setting = s->values[0];
        return -1;
    }
    if (!o->arg && strcmp(s->values[0], "true") != 0)
        return -1;
    unsigned given = cli->given;
    int rc = gm_cli_global_option(cli, o->name, o->arg ? s->values[0] : "");
    cli->given = given;
    if (rc == GM_EXIT_USAGE)
        fprintf(stderr, "  (the value came from %s)\n", s->where);
    return rc == GM_EXIT_USAGE ? rc : -1;
}

/* The command's settings not given on the command line, from the
 * environment and the configuration files (cli/config.h). */
static int apply_settings(gm_cli *cli, const gm_command *cmd, gm_args *out)
{
    gm_error err = {0};
    if (gm_cli_settings_load(&err) != GM_OK)
        return gm_cli_usage_error(cli, "%s", err.message);
    for (size_t g = 0; g < 5; g++) {
        const gm_optgroup *grp = g < 4 ? cmd->groups[g] : &gm_cli_global_group;
        for (size_t i = 0; grp && i < grp->n; i++) {
            const gm_opt *o = &grp->opts[i];
            const gm_setting *s = gm_cli_is_setting(o) ? gm_cli_setting(o->name) : NULL;
            int rc = s && g == 4 ? apply_global(cli, o, s) : -1;
            if (rc >= 0)
                return rc;
            if (!s || g == 4 || gm_args_has(out, o->id))
                continue;
            for (size_t k = 0; k < s->n; k++)
                if ((o->arg || strcmp(s->values[k], "true") == 0) &&
                    !push_from(out, o, o->arg ? s->values[k] : NULL, s))
                    return gm_cli_usage_error(cli, "out of memory");
        }
    }
    return -1;
}

int gm_cli_parse(gm_cli *cli, const gm_command *cmd, int argc, char **argv, gm_args *out)
{
    memset(out, 0, sizeof *out);
    bool options_end = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = -1;
        if (!options_end && strcmp(a, "--") == 0)
            options_end = true;
        else if (!options_end && a[0] == '-' && a[1])
            rc = parse_one(cli, cmd, argc, argv, &i, out);
        else if (!push_pos(out, a))
            rc = gm_cli_usage_error(cli, "out of memory");
        if (rc >= 0) {
            gm_args_release(out);
            return rc;
        }
    }
    int rc = check_positionals(cli, cmd, out);
    if (rc < 0 && !cmd->no_settings)
        rc = apply_settings(cli, cmd, out);
    if (rc >= 0)
        gm_args_release(out);
    return rc;
}

/* ---- help ----------------------------------------------------------------------- */

#define HELP_COL 29
#define HELP_WIDTH 79

/* Prints text from column HELP_COL, wrapped at HELP_WIDTH on spaces. */
static void print_wrapped(const char *text, FILE *out)
{
    size_t col = HELP_COL;
    const char *p = text;
    while (*p) {
        size_t word = strcspn(p, " ");
        if (col > HELP_COL && col + 1 + word > HELP_WIDTH) {
            fprintf(out, "\n%*s", HELP_COL, "");
            col = HELP_COL;
        } else if (col > HELP_COL) {
            fputc(' ', out);
            col++;
        }
        fprintf(out, "%.*s", (int)word, p);
        col += word;
        p += word;
        while (*p == ' ')
            p++;
    }
    fputc('\n', out);
}

static void print_group(const gm_optgroup *g, FILE *out)
{
    fprintf(out, "\n%s:\n", g->title ? g->title : "options");
    for (size_t i = 0; i < g->n; i++) {
        const gm_opt *o = &g->opts[i];
        if (o->flags & GM_OPT_HIDDEN)
            continue;
        char head[64];
        if (o->short_name)
            snprintf(head, sizeof head, "-%c, --%s%s%s", o->short_name, o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        else
            snprintf(head, sizeof head, "--%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        char text[512];
        snprintf(text, sizeof text, "%s%s%s%s%s", o->help, o->dflt ? " (default: " : "",
                 o->dflt ? o->dflt : "", o->dflt ? ")" : "",
                 o->flags & GM_OPT_REPEAT ? "; repeatable" : "");
        fprintf(out, "  %-*s", HELP_COL - 2, head);
        if (strlen(head) > HELP_COL - 3)
            fprintf(out, "\n%*s", HELP_COL, "");
        print_wrapped(text, out);
    }
}

void gm_cli_print_command_help(const gm_command *cmd, FILE *out)
{
    fprintf(out, "usage: geusemaker %s\n\n%s\n", cmd->synopsis, cmd->summary);
    for (size_t g = 0; g < 4 && cmd->groups[g]; g++)
        print_group(cmd->groups[g], out);
    if (cmd->notes)
        fprintf(out, "\n%s\n", cmd->notes);
    fprintf(out, "\noptions for every command: --region R, --profile P, --output text|json,\n"
                 "--verbose, --no-color, --help. Exit codes: 0 ok, 1 failed, 2 bad input,\n"
                 "3 locked, 4 credentials missing or rejected, 5 not healthy (status:\n"
                 "degraded, failed or unfinished), 130/143 interrupted (SIGINT/SIGTERM).\n");
}
