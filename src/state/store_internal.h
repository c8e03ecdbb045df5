/* What the store's files share inside state/ (store.c, index.c): the folders
 * and the checked file primitives. Not for other layers. */
#ifndef GM_STATE_STORE_INTERNAL_H
#define GM_STATE_STORE_INTERNAL_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/error.h"
#include "state/store.h"

/* The store's folders; the home first, the others inside it. */
enum { D_HOME, D_DEPLOYMENTS, D_ARCHIVE, D_LOGS, D_N };

/* The path of a folder (for messages); the owner everything must have. */
const char *gm_store_dir_path(const gm_store *s, int which);
uid_t gm_store_euid(const gm_store *s);

/* The descriptor of a folder in *out (-1 while it does not exist); a folder
 * made since the store was opened is opened and checked now. */
GM_MUST_CHECK gm_status gm_store_dir_fd(gm_store *s, int which, int *out, gm_error *err);

/* A scan of the folder dirfd on a descriptor of its own (dirfd stays open
 * and unmoved); NULL with errno set on failure. Close with closedir. */
DIR *gm_store_opendir(int dirfd);

/* GM_ERR_IO "cannot WHAT 'PATH': strerror(e)". */
GM_MUST_CHECK gm_status gm_store_io_error(gm_error *err, const char *what, const char *path, int e);

/* Judges the entry name of dirfd without following it (gm_store_check_stat).
 * GM_ERR_NOT_FOUND, with no message, when it does not exist. */
GM_MUST_CHECK gm_status gm_store_check_at(const gm_store *s, int dirfd, const char *name,
                                          const char *path, bool want_dir, gm_error *err);

/* Opens name in dirfd without following a symlink and checks the open file.
 * GM_ERR_NOT_FOUND, with no message, when it does not exist. */
GM_MUST_CHECK gm_status gm_store_open_at(const gm_store *s, int dirfd, const char *name,
                                         const char *path, int flags, bool want_dir, int *out,
                                         gm_error *err);

/* Reads fd to its end into b (bounded by b's limit). */
GM_MUST_CHECK gm_status gm_store_read_all(int fd, const char *path, gm_buf *b, gm_error *err);

/* Creates name in dirfd exclusively (0600) and writes data (durable: fsynced);
 * a regular file already there is replaced. *created: the caller unlinks on
 * failure. */
GM_MUST_CHECK gm_status gm_store_write_new(int dirfd, const char *name, const char *path,
                                           const char *data, size_t len, bool durable,
                                           bool *created, gm_error *err);

/* gm_store_load; tidy false skips removing NAME's temporaries (a scan of the
 * folder: the caller has just done it for every name, gm_store_list). */
GM_MUST_CHECK gm_status gm_store_load_tidy(gm_store *s, const char *name, bool tidy,
                                           gm_deployment **out, gm_error *err);

GM_MUST_CHECK gm_status gm_store_sync_dir(int fd, const char *path, gm_error *err);

#endif
