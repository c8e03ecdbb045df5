/* The deployment store: one JSON file per deployment under the state home.
 *
 * Layout (directories 0700, files 0600, whatever the umask):
 *
 *   HOME/                       $GEUSEMAKER_HOME, else $HOME/.geusemaker
 *     deployments/NAME.json     the current record (state/deployment.c layout)
 *     deployments/NAME.json.bak the record as it was before the last save
 *     deployments/NAME.lock     flock(2) target; holds "PID\nCOMMAND\n" of the holder
 *     deployments/.NAME.json.tmp.PID   a save in progress (never read)
 *     archive/NAME-YYYYMMDDTHHMMSSZ.json   records of destroyed deployments
 *     logs/NAME.log             the operation log (core/log.h)
 *
 * Guarantees:
 *   - Saves are atomic: a reader (or a crash) sees the old record or the new
 *     one, never a mix. The new text goes to a fresh tmp file that is fsynced,
 *     renamed over NAME.json, and the directory is fsynced.
 *   - A state file that cannot be read (corrupt JSON, invalid fields, a newer
 *     schema, another deployment's name) is never replaced, moved by a save or
 *     deleted: load reports it and save refuses to overwrite it.
 *   - Deployment names are checked (gm_store_valid_name) by every function
 *     taking one, so no path can leave the store's directories.
 *
 * Concurrency: between processes, callers take gm_store_lock(NAME) before
 * load/save/archive of NAME. Within a process, one gm_store may be used from
 * several threads: save and archive are serialised by the store.
 */
#ifndef GM_STATE_STORE_H
#define GM_STATE_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "state/deployment.h"

typedef struct gm_store gm_store;
typedef struct gm_lock gm_lock;

/* True when name is 1..GM_NAME_MAX-1 characters of [a-z0-9-], not starting
 * with '-'. */
bool gm_store_valid_name(const char *name);

/* gm_store_valid_name with an error: GM_ERR_INVALID "invalid deployment name
 * 'X': ...". */
GM_MUST_CHECK gm_status gm_store_check_name(const char *name, gm_error *err);

/* Opens the store at home (NULL: $GEUSEMAKER_HOME if set and non-empty, else
 * $HOME/.geusemaker, else the passwd entry's home + /.geusemaker). Creates home
 * (and missing parents), deployments/, archive/ and logs/ with mode 0700;
 * existing directories keep their mode. GM_ERR_IO when a path exists and is
 * not a directory or cannot be created; GM_ERR_INVALID when no home can be
 * found. *out is NULL on failure. */
GM_MUST_CHECK gm_status gm_store_open(const char *home, gm_store **out, gm_error *err);
void gm_store_free(gm_store *s); /* safe on NULL; does not release locks */

/* The state home directory (absolute or as given). Valid while s lives. */
const char *gm_store_home(const gm_store *s);

/* "HOME/logs/NAME.log", for gm_log_open. NULL when name is invalid or memory
 * is exhausted; the caller frees it. */
char *gm_store_log_path(const gm_store *s, const char *name);

/* Takes the exclusive lock of deployment NAME (which need not exist yet):
 * flock(LOCK_EX|LOCK_NB) on deployments/NAME.lock, then writes the holder's
 * pid and command into it. Never waits. When another process (or another
 * gm_store_lock in this process) holds it: GM_ERR_LOCKED "deployment 'NAME'
 * is locked by another geusemaker process (pid N) holding 'PATH'". The kernel
 * drops the lock when the holder dies, so a stale lock file never blocks.
 * The descriptor is close-on-exec, but a fork()ed child shares the lock until
 * it exits. The lock file itself is never deleted (deleting it would let two
 * processes hold locks on different inodes). */
GM_MUST_CHECK gm_status gm_store_lock(gm_store *s, const char *name, gm_lock **out, gm_error *err);
/* Releases the lock and frees l; safe on NULL. */
void gm_lock_release(gm_lock *l);
/* The path of the lock file. Valid while l lives. */
const char *gm_lock_path(const gm_lock *l);

/* Reads deployments/NAME.json (through a gm_buf bounded by
 * GM_LIMIT_STATE_FILE), migrating older schema versions in memory.
 *   GM_ERR_NOT_FOUND "no deployment named 'NAME' (looked in PATH)"
 *   GM_ERR_PARSE     "state file 'PATH' is corrupt: MSG at line L column C; it
 *                    was left as it is", or "state file 'PATH' is invalid:
 *                    state field '...' ...; it was left as it is"
 *   GM_ERR_CONFLICT  schema version newer than this build, or the file holds
 *                    a deployment of another name
 *   GM_ERR_LIMIT     the file is larger than GM_LIMIT_STATE_FILE
 * The file is never changed. *out is NULL on failure; free with
 * gm_deployment_free. */
GM_MUST_CHECK gm_status gm_store_load(gm_store *s, const char *name, gm_deployment **out,
                                      gm_error *err);

/* Writes d to deployments/D->NAME.json atomically, setting d->updated_at to
 * now (restored when the save fails). The previous file, if any, first
 * becomes NAME.json.bak (replaced atomically). Refuses:
 *   GM_ERR_INVALID   d->name is not a valid store name
 *   GM_ERR_LIMIT     the JSON text would exceed GM_LIMIT_STATE_FILE
 *   GM_ERR_CONFLICT  the existing NAME.json cannot be loaded (corrupt, newer
 *                    schema, other name): it is left as it is
 *   GM_ERR_IO        any file system failure
 * On failure the existing NAME.json is intact and the tmp file is removed. */
GM_MUST_CHECK gm_status gm_store_save(gm_store *s, gm_deployment *d, gm_error *err);

/* True when deployments/NAME.json exists (false for invalid names). */
bool gm_store_exists(gm_store *s, const char *name);

/* The names of all deployments (deployments/NAME.json with a valid NAME;
 * hidden, tmp, bak and lock files skipped), sorted by strcmp. *out_names is
 * NULL when there are none. Free with gm_store_list_free. */
GM_MUST_CHECK gm_status gm_store_list(gm_store *s, char ***out_names, size_t *out_n, gm_error *err);
void gm_store_list_free(char **names, size_t n); /* safe on NULL */

/* Moves deployments/NAME.json to archive/NAME-<UTC YYYYMMDDTHHMMSSZ>.json
 * (adding -1, -2, ... when that exists; never overwrites) with one rename, then
 * removes NAME.json.bak. For a destroy that left nothing behind. GM_ERR_NOT_FOUND
 * when there is no NAME.json. out_path (may be NULL) receives the archive
 * path; the caller frees it. */
GM_MUST_CHECK gm_status gm_store_archive(gm_store *s, const char *name, char **out_path,
                                         gm_error *err);

#endif
