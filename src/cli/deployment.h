/* Plumbing shared by the deployment commands (deploy, destroy, status, list). */
#ifndef GM_CLI_DEPLOYMENT_H
#define GM_CLI_DEPLOYMENT_H

#include <signal.h>

#include "cli/cli.h"
#include "engine/engine.h"
#include "engine/liveness.h"
#include "state/store.h"
#include "ui/progress.h"

/* Set by SIGINT/SIGTERM during a mutating command: the signal's number. */
extern volatile sig_atomic_t gm_cli_interrupted;
/* First SIGINT/SIGTERM sets the flag (the engine stops at the next safe point
 * and saves its journal; the exit code is then 130 or 143, see
 * gm_cli_interrupt_exit_code); a second one ends the process at once. */
void gm_cli_install_interrupt_handlers(void);

/* gm_store_load, except that a name with no record is GM_ERR_INVALID (exit
 * 2: bad input, nothing was done) with the store's "no deployment named
 * 'NAME'" message. */
GM_MUST_CHECK gm_status gm_cli_load_record(gm_store *store, const char *name, gm_deployment **out,
                                           gm_error *err);

/* Whether the progress display is drawn: not with --verbose (which logs every
 * step), and with --output json only when stderr is a terminal (stdout then
 * carries just the document). */
bool gm_cli_show_progress(const gm_cli *cli);

/* The engine observer that draws the progress display (ctx: a gm_progress). */
void gm_cli_progress_observer(void *ctx, const gm_engine_event *ev);

/* Opens the store, takes the deployment's lock, opens its log. */
GM_MUST_CHECK gm_status gm_cli_open_locked(gm_cli *cli, const char *name, gm_store **out_store,
                                           gm_lock **out_lock, gm_error *err);

/* One run of a command that changes a recorded deployment (destroy, stop,
 * start, update): the engine's settings, the store with the deployment's
 * lock and log, its record, the AWS client of its region, the progress
 * display while the engine runs. Zero it, then:
 *   gm_cli_session_open     settings, lock, record (bad input: nothing held);
 *   gm_cli_session_connect  the client (the record's region unless --region);
 *   gm_cli_session_engine   the engine's options, with the interrupt handlers
 *                           and the progress display titled title;
 *   gm_cli_session_done     the progress display ended (before printing);
 *   gm_cli_session_close    the exit code for st (the error printed; 130/143
 *                           after a signal) and everything released. */
typedef struct gm_cli_session {
    gm_cli *cli;
    const char *name;
    int64_t t0; /* when the command started (gm_now_ms) */
    gm_engine_settings settings;
    gm_store *store;
    gm_lock *lock;
    gm_deployment *dep;
    gm_aws_client *aws;
    gm_progress *progress;
    gm_error err;
} gm_cli_session;

GM_MUST_CHECK gm_status gm_cli_session_open(gm_cli *cli, const char *name, gm_cli_session *s);
GM_MUST_CHECK gm_status gm_cli_session_connect(gm_cli_session *s);
gm_engine_options gm_cli_session_engine(gm_cli_session *s, const char *title);
void gm_cli_session_done(gm_cli_session *s);
int gm_cli_session_close(gm_cli_session *s, gm_status st, int rc);

/* For the reading commands: checks the name, opens the store, loads the record
 * (its region unless --region), and makes the AWS client when out_aws is not
 * NULL. The caller frees what was filled, on success or not. */
GM_MUST_CHECK gm_status gm_cli_open_deployment(gm_cli *cli, const char *name, gm_store **out_store,
                                               gm_deployment **out_dep, gm_aws_client **out_aws,
                                               gm_error *err);

/* Prints the deployment summary (text on stdout, or one JSON object). */
void gm_cli_print_deployment(gm_cli *cli, const gm_deployment *dep, json_t *live,
                             int64_t duration_ms);

/* status: gm_cli_print_deployment with the live look and its verdict (the
 * Status line says the health; JSON gains "health" and "health_reason"). */
void gm_cli_print_status(gm_cli *cli, const gm_deployment *dep, json_t *live,
                         const gm_live_verdict *verdict);

/* A JSON object describing a deployment (no secrets): name, tier, region,
 * status, resources, endpoints, cost. */
json_t *gm_cli_deployment_json(const gm_deployment *dep);

extern const gm_command gm_command_deploy, gm_command_destroy, gm_command_list, gm_command_status,
    gm_command_adopt, gm_command_cleanup, gm_command_stop, gm_command_start, gm_command_update;

#endif
