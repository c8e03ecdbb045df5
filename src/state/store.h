/* The deployment store: one JSON file per deployment under the state home.
 *
 * Layout (directories 0700, files 0600, whatever the umask):
 *
 *   HOME/                       $GEUSEMAKER_HOME, else $HOME/.geusemaker
 *     deployments/NAME.json     the current record (state/deployment.c layout)
 *     deployments/NAME.json.bak the record as it was before the last save
 *     deployments/NAME.lock     flock(2) target; holds "PID\nCOMMAND\n" of the holder
 *     deployments/.NAME.json.tmp.PID       a save in progress (never read)
 *     deployments/.NAME.json.bak.tmp.PID   its backup link in progress
 *     archive/NAME-YYYYMMDDTHHMMSSZ.json   records of destroyed deployments
 *     archive/NAME-YYYYMMDDTHHMMSSZ.forgotten.json   records dropped by forget
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
 *   - Folder safety: the home and each of its folders, every record and every
 *     lock file must be owned by the effective uid, not be writable by group
 *     or others, and not be a symlink (gm_store_check_stat). Anything else is
 *     refused with GM_ERR_INVALID and a message naming the exact fix. Folders
 *     are opened once (O_NOFOLLOW, then fstat) and every file is reached with
 *     openat/renameat from them, and records and locks are opened with
 *     O_NOFOLLOW and checked with fstat on the open descriptor: what is
 *     checked is what is used.
 *   - Nothing is created until something is written: gm_store_open only looks,
 *     so the reading commands (list, status, ...) never create the state home.
 *     gm_store_lock, gm_store_save, gm_store_archive and gm_store_make_dirs
 *     create the missing folders.
 *   - Temporary files of a save that was killed (.NAME.json.tmp.PID,
 *     .NAME.json.bak.tmp.PID) are removed under NAME's lock: by gm_store_lock,
 *     and by gm_store_load and gm_store_list when they can take the lock at
 *     once (a live writer holds it, so its files are never touched).
 *
 * Concurrency: between processes, callers take gm_store_lock(NAME) before
 * save/archive/forget of NAME. Within a process, one gm_store may be used from
 * several threads: save and archive are serialised by the store.
 */
#ifndef GM_STATE_STORE_H
#define GM_STATE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

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

/* The folder-safety rule as a pure function (so that tests can give any owner):
 * st describes path (from lstat/fstatat without following, or fstat of a
 * descriptor opened with O_NOFOLLOW); want_dir says whether it must be a
 * directory or a regular file; link_target (may be NULL) is where a symlink
 * points, for the fix. GM_ERR_INVALID, with the fix, when st is
 *   a symlink:        "refusing 'P': it is a symlink (to 'T'); fix: replace it
 *                     with a real directory: rm 'P' && mv 'T' 'P'" (for a file:
 *                     cp --remove-destination 'T' 'P' && chmod 600 'P')
 *   the wrong type:   "refusing 'P': it is not a directory; fix: ..."
 *   not euid's:       "refusing 'P': it is owned by uid U, not by uid E that
 *                     runs geusemaker; fix: sudo chown [-R] E 'P'"
 *   writable by group or others:
 *                     "refusing 'P': it is writable by group/others; fix:
 *                     chmod go-w 'P'"
 * in that order; GM_OK otherwise. */
GM_MUST_CHECK gm_status gm_store_check_stat(const char *path, const struct stat *st,
                                            const char *link_target, uid_t euid, bool want_dir,
                                            gm_error *err);

/* Opens the store at home (NULL: $GEUSEMAKER_HOME if set and non-empty, else
 * $HOME/.geusemaker, else the passwd entry's home + /.geusemaker). Creates
 * nothing: the home and its folders that exist are opened and checked
 * (gm_store_check_stat: GM_ERR_INVALID with the fix); missing ones are made
 * when something is written. GM_ERR_IO when a folder cannot be opened;
 * GM_ERR_INVALID when no home can be found or a folder is unsafe. *out is NULL
 * on failure. */
GM_MUST_CHECK gm_status gm_store_open(const char *home, gm_store **out, gm_error *err);
void gm_store_free(gm_store *s); /* safe on NULL; does not release locks */

/* Creates the missing folders: home (and missing parents), deployments/,
 * archive/ and logs/, mode 0700 whatever the umask; existing ones keep their
 * mode (and were checked). gm_store_lock, save and archive do this
 * themselves; a command that writes a log without taking a deployment's lock
 * calls it first. */
GM_MUST_CHECK gm_status gm_store_make_dirs(gm_store *s, gm_error *err);

/* The state home directory (absolute or as given). Valid while s lives. */
const char *gm_store_home(const gm_store *s);

/* "HOME/logs/NAME.log", for gm_log_open. NULL when name is invalid or memory
 * is exhausted; the caller frees it. */
char *gm_store_log_path(const gm_store *s, const char *name);

/* Takes the exclusive lock of deployment NAME (which need not exist yet):
 * creates the store's folders if missing, flock(LOCK_EX|LOCK_NB) on
 * deployments/NAME.lock (opened with O_NOFOLLOW and checked like a record),
 * then writes the holder's pid and command into it, and removes the temporary
 * files a killed save of NAME left behind. Does not wait, except for a moment
 * when the holder is unknown or dead (a reader tidying temporary files holds it
 * for that long). When another process (or another
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
 * GM_LIMIT_STATE_FILE), migrating older schema versions in memory. The file
 * is opened with O_NOFOLLOW and checked with fstat (gm_store_check_stat).
 *   GM_ERR_NOT_FOUND "no deployment named 'NAME' (looked in PATH)"
 *   GM_ERR_INVALID   the file (or a folder) is unsafe: the message names the fix
 *   GM_ERR_PARSE     "state file 'PATH' is corrupt: MSG at line L column C; it
 *                    was left as it is", or "state file 'PATH' is invalid:
 *                    state field '...' ...; it was left as it is"
 *   GM_ERR_CONFLICT  schema version newer than this build, or the file holds
 *                    a deployment of another name
 *   GM_ERR_LIMIT     the file is larger than GM_LIMIT_STATE_FILE
 * The file is never changed (temporary files of a killed save of NAME are
 * removed when NAME's lock is free). *out is NULL on failure; free with
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
 *   GM_ERR_INVALID   the existing NAME.json or a folder is unsafe (see above)
 *   GM_ERR_IO        any file system failure
 * On failure the existing NAME.json is intact and the tmp file is removed. */
GM_MUST_CHECK gm_status gm_store_save(gm_store *s, gm_deployment *d, gm_error *err);

/* True when deployments/NAME.json exists, whatever it is (a symlink too:
 * load then says what is wrong with it); false for invalid names. */
bool gm_store_exists(gm_store *s, const char *name);

/* The names of all deployments (deployments/NAME.json with a valid NAME;
 * hidden, tmp, bak and lock files skipped), sorted by strcmp. *out_names is
 * NULL when there are none (also when the store has no folder yet). A record
 * that is unsafe (gm_store_check_stat) fails the whole list with
 * GM_ERR_INVALID and its fix. Removes the temporary files of killed saves
 * whose name's lock is free. Free with gm_store_list_free. */
GM_MUST_CHECK gm_status gm_store_list(gm_store *s, char ***out_names, size_t *out_n, gm_error *err);
void gm_store_list_free(char **names, size_t n); /* safe on NULL */

/* Moves deployments/NAME.json to archive/NAME-<UTC YYYYMMDDTHHMMSSZ>.json
 * (adding -1, -2, ... when that exists; never overwrites) with one rename, then
 * removes NAME.json.bak. For a destroy that left nothing behind. GM_ERR_NOT_FOUND
 * when there is no NAME.json. out_path (may be NULL) receives the archive
 * path; the caller frees it. */
GM_MUST_CHECK gm_status gm_store_archive(gm_store *s, const char *name, char **out_path,
                                         gm_error *err);

/* Drops the record of NAME without touching anything it describes: like
 * gm_store_archive, but to archive/NAME-<stamp>[-k].forgotten.json, so nothing
 * is lost and the archive tells a forgotten record from a destroyed one (cost
 * reads only the latter). The log stays. GM_ERR_NOT_FOUND when there is no
 * NAME.json; GM_ERR_INVALID when it is unsafe. Call with NAME's lock held. */
GM_MUST_CHECK gm_status gm_store_forget(gm_store *s, const char *name, char **out_path,
                                        gm_error *err);

/* ---- the list index ------------------------------------------------------
 * `list` must not parse every record: deployments/.index.json keeps, for each
 * record, a reduced copy of it (what the caller's fn makes of it: a record
 * JSON that gm_deployment_from_json reads) and the identity of the record's
 * file (inode, size, mtime and ctime in ns). An entry is used only while the
 * file is the one it was made from; otherwise the record is loaded and
 * reduced again. The index is a cache under a version the caller names (a new
 * reduction invalidates it): missing, corrupt, stale, unsafe to trust, or cut
 * short by a kill at any point, it is rebuilt, and since the folder itself is
 * read every time, a listing never shows a record that does not exist or
 * misses one that does. It is rewritten (a temporary file renamed over it)
 * only when it changed and the deployments folder exists, so a reading
 * command never creates the state home; concurrent writers each write a
 * complete, checked view. */
typedef json_t *(*gm_store_reduce_fn)(const gm_deployment *d);

typedef struct gm_store_view {
    char *name;
    gm_deployment *dep; /* the reduced record, or NULL when it could not be read */
    char *error;        /* why it could not be read, or NULL */
} gm_store_view;

/* Every record of the store, sorted by name, reduced by fn (see above). An
 * unsafe record fails the whole listing (as gm_store_list); an unreadable one
 * is an entry with its error. Free with gm_store_views_free. */
GM_MUST_CHECK gm_status gm_store_list_views(gm_store *s, const char *version, gm_store_reduce_fn fn,
                                            gm_store_view **out, size_t *out_n, gm_error *err);
void gm_store_views_free(gm_store_view *v, size_t n); /* safe on NULL */

#endif
