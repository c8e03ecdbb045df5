/* The command-line layer: the only code that prints results and chooses exit
 * codes. One file per command (cmd_*.c), registered in main.c's table; every
 * command declares its options as tables (cli/options.h) and only parses,
 * calls the layers below and prints. */
#ifndef GM_CLI_CLI_H
#define GM_CLI_CLI_H

#include <stdbool.h>

#include "aws/client.h"
#include "cli/options.h"
#include "core/error.h"
#include "engine/engine.h"
#include "ui/term.h"

/* Exit codes (documented in --help and the README). */
enum {
    GM_EXIT_OK = 0,
    GM_EXIT_FAILED = 1,    /* the operation failed (AWS or local runtime failure) */
    GM_EXIT_USAGE = 2,     /* bad input (options, environment, unknown name): nothing was done */
    GM_EXIT_LOCKED = 3,    /* another geusemaker process holds the deployment's lock */
    GM_EXIT_AUTH = 4,      /* credentials missing, broken or rejected */
    GM_EXIT_DEGRADED = 5,  /* status: the deployment is not healthy (degraded, failed or
                              unfinished); the output says why */
    GM_EXIT_SIGINT = 130,  /* stopped by SIGINT at a safe point, the journal saved */
    GM_EXIT_SIGTERM = 143, /* the same for SIGTERM */
};

typedef enum gm_output { GM_OUTPUT_TEXT, GM_OUTPUT_JSON } gm_output;

typedef struct gm_cli {
    const char *prog;
    const char *region;         /* --region */
    const char *profile;        /* --profile */
    const char *region_setting; /* region from a setting (cli/config.h): after --region, before
                                   AWS_REGION, never over a record's region */
    unsigned given;             /* the global options given on the command line (bit per id) */
    gm_output output;
    bool verbose;
    bool no_color;
    gm_term term; /* stderr */
} gm_cli;

typedef struct gm_command gm_command;

/* --region, else the region of the settings (config files, GEUSEMAKER_REGION),
 * else NULL (the AWS variables and the profile decide). */
const char *gm_cli_region_flag(const gm_cli *cli);

struct gm_command {
    const char *name;
    const char *summary;
    const char *synopsis; /* after "usage: geusemaker ": "destroy NAME [--yes] [--keep-efs]" */
    const char *notes;    /* text after the options in --help, or NULL */
    const gm_optgroup *groups[4]; /* the command's options, by group; unused slots NULL */
    size_t min_pos, max_pos;      /* how many positional arguments */
    const char *pos_what;         /* what they are, for messages: "one deployment name" */
    const char *pos_words;        /* the first positional's words, for completion; or NULL */
    bool local;       /* never talks to AWS: the AWS environment is not checked before it runs */
    bool hidden;      /* not listed in --help or completion (the build's generators) */
    bool no_settings; /* reads no configuration (generators; init, which repairs it) */
    int (*run)(gm_cli *cli, const gm_args *args);
};

/* Parses a command's arguments (argv[0] is the command's name) against its
 * option tables and the options every command takes (--region, --profile,
 * --output, --verbose, --no-color, --help). Returns -1 when the command
 * should run with *out, otherwise an exit code: 0 after printing --help,
 * GM_EXIT_USAGE after an error message naming the problem (with a
 * suggestion for a mistyped option). */
int gm_cli_parse(gm_cli *cli, const gm_command *cmd, int argc, char **argv, gm_args *out);

/* Handles one of the options every command takes, given before the command.
 * Returns 0 when handled, GM_EXIT_USAGE on a bad value, -1 when name is not
 * one of them. */
int gm_cli_global_option(gm_cli *cli, const char *name, const char *value);
/* The table of the options every command takes. */
extern const gm_optgroup gm_cli_global_group;

void gm_cli_print_command_help(const gm_command *cmd, FILE *out);

/* Prints "error: <message>" (and hints) to stderr, and returns the exit code
 * matching the status: GM_ERR_INVALID 2, GM_ERR_LOCKED 3, GM_ERR_AUTH 4,
 * GM_ERR_INTERRUPTED 128 + the signal that arrived (130, 143), anything
 * else 1. */
int gm_cli_fail(gm_cli *cli, gm_status st, const gm_error *err);
/* 128 + the signal that interrupted this run (SIGINT when none is known). */
int gm_cli_interrupt_exit_code(void);
/* Prints "error: ..." for bad input and returns GM_EXIT_USAGE. */
int gm_cli_usage_error(gm_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Checks what every command that talks to AWS reads from the environment
 * (aws/client.h: gm_aws_check_environment, and gm_cli_engine_settings)
 * before it does anything. Returns -1 when it is fine, else the exit code
 * after the message. */
int gm_cli_check_environment(gm_cli *cli);

/* Creates the AWS client from the global options, with the API-call observer
 * that writes the log and --verbose lines. */
GM_MUST_CHECK gm_status gm_cli_aws_client(gm_cli *cli, gm_aws_client **out, gm_error *err);

/* A client for a quick look that must not hold the command up (list's live
 * check): region given, one attempt, short timeouts. */
#define GM_CLI_QUICK_CONNECT_MS 2000
#define GM_CLI_QUICK_TOTAL_MS 5000
GM_MUST_CHECK gm_status gm_cli_aws_client_quick(gm_cli *cli, const char *region,
                                                gm_aws_client **out, gm_error *err);

/* A client for the Price List API, or NULL when none can be made. */
gm_aws_client *gm_cli_pricing_client(gm_cli *cli);

/* The engine's outside inputs from the environment (GEUSEMAKER_POLL_MS,
 * GEUSEMAKER_DESTROY_TIMEOUT_MS, GEUSEMAKER_HEALTH_POLL_MS,
 * GEUSEMAKER_AMI_PARAMETER, GEUSEMAKER_HEALTH_ENDPOINT, GEUSEMAKER_IP_ENDPOINT).
 * A malformed number or url is GM_ERR_INVALID naming the variable. */
GM_MUST_CHECK gm_status gm_cli_engine_settings(gm_engine_settings *s, gm_error *err);

/* Prints a JSON document on stdout (indented, keys in insertion order) and
 * drops the reference. Returns false when it could not be written. */
bool gm_cli_print_json(json_t *doc);

extern const gm_command gm_command_whoami, gm_command_userdata, gm_command_health,
    gm_command_secrets, gm_command_plan, gm_command_cost;
extern const gm_command gm_command_forget;
extern const gm_command gm_command_image;
extern const gm_command gm_command_logs;
extern const gm_command gm_command_connect;

#endif
