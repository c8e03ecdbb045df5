/* Command-line options, declared once per command as tables. The same table
 * drives parsing, --help, and the suggestions for a mistyped option; each
 * command only turns the parsed options into its settings. */
#ifndef GM_CLI_OPTIONS_H
#define GM_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum {
    GM_OPT_REPEAT = 1 << 0, /* may be given more than once (each value kept) */
    GM_OPT_HIDDEN = 1 << 1, /* accepted, not shown in --help (tests, review) */
    GM_OPT_CONFIG = 1 << 2, /* a deployment setting saved in its record */
};

typedef struct gm_opt {
    const char *name; /* long name without the dashes: "instance-type" */
    char short_name;  /* '-y' style alias, or 0 */
    const char *arg;  /* what the value is ("TYPE"); NULL for a flag */
    const char *help; /* one line: what it does */
    const char *dflt; /* the default as shown in --help, or NULL */
    int id;           /* the command's code for it (> 0) */
    unsigned flags;
} gm_opt;

typedef struct gm_optgroup {
    const char *title; /* heading in --help ("tier automation"), or NULL */
    const gm_opt *opts;
    size_t n;
} gm_optgroup;

#define GM_OPTGROUP(title, table)                         \
    {                                                     \
        (title), (table), sizeof(table) / sizeof *(table) \
    }

struct gm_setting;

/* One parsed option, in command-line order (then those taken from the
 * settings, cli/config.h). value is NULL for a flag. */
typedef struct gm_arg {
    const gm_opt *opt;
    const char *value;
    const struct gm_setting *from; /* NULL: the command line */
} gm_arg;

typedef struct gm_args {
    gm_arg *opts;
    size_t n_opts;
    const char **pos; /* positional arguments */
    size_t n_pos;
} gm_args;

void gm_args_release(gm_args *a);
/* The last value of option id, or NULL when it was not given. */
const char *gm_args_value(const gm_args *a, int id);
/* True when option id was given. */
bool gm_args_has(const gm_args *a, int id);
/* The last option called name, or NULL. */
const gm_arg *gm_args_find(const gm_args *a, const char *name);

/* Edit distance between two short strings (for "did you mean"). */
size_t gm_edit_distance(const char *a, const char *b);

#endif
