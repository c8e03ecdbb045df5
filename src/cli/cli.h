/* The command-line layer: the only code that prints results and chooses exit
 * codes. One file per command (cmd_*.c), registered in main.c's table. */
#ifndef GM_CLI_CLI_H
#define GM_CLI_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include "aws/client.h"
#include "core/error.h"
#include "ui/term.h"

/* Exit codes (documented in --help). */
enum {
    GM_EXIT_OK = 0,
    GM_EXIT_FAILED = 1, /* the operation failed */
    GM_EXIT_USAGE = 2,  /* bad input: nothing was done */
    GM_EXIT_LOCKED = 3, /* another geusemaker process holds the deployment's lock */
    GM_EXIT_AUTH = 4,   /* no credentials, or AWS rejected them */
};

typedef enum gm_output { GM_OUTPUT_TEXT, GM_OUTPUT_JSON } gm_output;

typedef struct gm_cli {
    const char *prog;
    const char *region;  /* --region */
    const char *profile; /* --profile */
    gm_output output;
    bool verbose;
    bool no_color;
    gm_term term;    /* stderr */
    char **cmd_argv; /* the command's argv (for messages) */
} gm_cli;

typedef struct gm_command {
    const char *name;
    const char *summary;
    const char *usage; /* full help text after the synopsis line */
    int (*run)(gm_cli *cli, int argc, char **argv);
} gm_command;

/* Options every command accepts; getopt codes >= 1000. */
#define GM_OPT_REGION 1000
#define GM_OPT_PROFILE 1001
#define GM_OPT_OUTPUT 1002
#define GM_OPT_VERBOSE 1003
#define GM_OPT_NO_COLOR 1004
#define GM_OPT_HELP 1005
#define GM_CLI_GLOBAL_OPTIONS                                 \
    {"region", required_argument, NULL, GM_OPT_REGION},       \
        {"profile", required_argument, NULL, GM_OPT_PROFILE}, \
        {"output", required_argument, NULL, GM_OPT_OUTPUT},   \
        {"verbose", no_argument, NULL, GM_OPT_VERBOSE},       \
        {"no-color", no_argument, NULL, GM_OPT_NO_COLOR},     \
    {                                                         \
        "help", no_argument, NULL, GM_OPT_HELP                \
    }

/* Handles a global option code. Returns 0 when handled, GM_EXIT_USAGE on a
 * bad value, -1 when the code is not a global option, and -2 for --help
 * (the caller prints the command's help and exits 0). */
int gm_cli_global_option(gm_cli *cli, int code, const char *arg);

/* The standard handling of a getopt result that the command did not handle:
 * global options, '?' for unknown ones. Returns -1 to continue parsing,
 * otherwise an exit code to return (0 after printing help). */
int gm_cli_common_option(gm_cli *cli, const gm_command *cmd, int code, const char *arg);

void gm_cli_print_command_help(const gm_command *cmd, FILE *out);

/* Prints "error: <message>" (and hints) to stderr, and returns the exit code
 * matching the status. */
int gm_cli_fail(gm_cli *cli, gm_status st, const gm_error *err);
/* Prints "error: ..." for bad input and returns GM_EXIT_USAGE. */
int gm_cli_usage_error(gm_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Creates the AWS client from the global options, with the API-call observer
 * that writes the log and --verbose lines. */
gm_status gm_cli_aws_client(gm_cli *cli, gm_aws_client **out, gm_error *err);

/* A client in us-east-1 for the Price List API, or NULL when none can be made. */
gm_aws_client *gm_cli_pricing_client(gm_cli *cli);

int gm_cmd_whoami(gm_cli *cli, int argc, char **argv);
extern const gm_command gm_command_whoami;
extern const gm_command gm_command_userdata;
extern const gm_command gm_command_health, gm_command_secrets;
extern const gm_command gm_command_plan, gm_command_cost;

#endif
