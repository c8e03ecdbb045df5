/* Settings from outside the command line, with the usual precedence:
 * flags > GEUSEMAKER_<OPTION> variables > ./geusemaker.yaml (the project)
 * > $GEUSEMAKER_HOME/config.yaml (the user) > the defaults.
 *
 * Keys are the long option names, flat ("region: eu-west-1", "tier:
 * automation", "allow-cidr: [203.0.113.0/24]"); a variable is GEUSEMAKER_
 * plus the name in capitals with '_' for '-' (GEUSEMAKER_ALLOW_CIDR; a
 * repeatable option takes a comma-separated list there). Only options that
 * are settings may be set this way: the deployment's settings (the options
 * saved in its record), its name, and --region, --profile, --output,
 * --no-color. Files are read with libyaml and checked strictly: an unknown
 * key, a duplicate, a list for a single value, a mapping anywhere is
 * GM_ERR_INVALID naming the file, line and key. */
#ifndef GM_CLI_CONFIG_H
#define GM_CLI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/cli.h"

typedef enum gm_setting_source {
    GM_SRC_DEFAULT,
    GM_SRC_USER,    /* $GEUSEMAKER_HOME/config.yaml */
    GM_SRC_PROJECT, /* ./geusemaker.yaml */
    GM_SRC_ENV,     /* GEUSEMAKER_<OPTION> */
    GM_SRC_FLAG,
} gm_setting_source;

typedef struct gm_setting {
    const char *key; /* the option's name */
    char **values;   /* one, or several for a repeatable option; a flag: "true"/"false" */
    size_t n;
    gm_setting_source source;
    char where[320]; /* "GEUSEMAKER_REGION", "/path/geusemaker.yaml:3" */
} gm_setting;

/* True for an option that may be set outside the command line. */
bool gm_cli_is_setting(const gm_opt *o);

/* Reads the two files and the variables (once per process; later calls
 * return the first result). */
GM_MUST_CHECK gm_status gm_cli_settings_load(gm_error *err);

/* The setting of key from outside the command line, or NULL. */
const gm_setting *gm_cli_setting(const char *key);

/* The paths of the two files (whether they exist or not). */
const char *gm_cli_project_config_path(void);
char *gm_cli_user_config_path(void); /* malloc'd; NULL without a home */

extern const gm_command gm_command_config, gm_command_init, gm_command_completion,
    gm_command_manpage;

/* Every command, for the settings' key check, help, completion and the man
 * page (main.c). */
const gm_command *const *gm_cli_commands(size_t *out_n);

#endif
