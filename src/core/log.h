/* Structured operation log: one JSON object per line.
 *
 * Events go to the log file when one is open ($GEUSEMAKER_HOME/logs/NAME.log
 * for deployment commands) and, with --verbose, as a readable line to stderr.
 * Thread-safe. Callers never pass secret values. */
#ifndef GM_CORE_LOG_H
#define GM_CORE_LOG_H

#include <jansson.h>
#include <stdbool.h>

#include "core/error.h"

typedef enum gm_log_level { GM_LOG_DEBUG, GM_LOG_INFO, GM_LOG_WARN, GM_LOG_ERROR } gm_log_level;

/* Opens (appending, mode 0600) the log file; closes any previous one. */
GM_MUST_CHECK gm_status gm_log_open(const char *path, gm_error *err);
void gm_log_close(void);
void gm_log_set_verbose(bool verbose);
/* Adds "deployment": name to every following event (NULL clears). */
void gm_log_set_deployment(const char *name);

/* Writes one event; fields (may be NULL) is taken. Adds ts, level, event. */
void gm_log_event(gm_log_level level, const char *event, json_t *fields);

#endif
