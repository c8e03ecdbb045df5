/* The deployment store. See store.h for the layout and the guarantees.
 *
 * Every folder is opened once, without following a symlink, and checked with
 * fstat on the descriptor (gm_store_check_stat); every file operation is then
 * relative to those descriptors (openat, renameat, linkat, unlinkat), so a
 * folder swapped after the check is never used.
 *
 * Save protocol (crash-safe at every step):
 *   1. check the current NAME.json still loads (never overwrite what we
 *      cannot read: a corrupt file or one from a newer geusemaker);
 *   2. write the new text to .NAME.json.tmp.PID (O_EXCL, 0600), fsync, close;
 *   3. hard-link NAME.json to .NAME.json.bak.tmp.PID and rename that over
 *      NAME.json.bak (a copy when the file system has no hard links);
 *   4. rename the tmp file over NAME.json; fsync the directory.
 * A crash leaves at worst a hidden tmp file, which list skips and which is
 * removed under NAME's lock (tidy_temps).
 */
#include "state/store.h"
#include "state/store_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/str.h"
#include "core/timeutil.h"

#define DIR_MODE 0700
#define FILE_MODE 0600
#define LOCK_INFO_MAX 512   /* "PID\nCOMMAND\n" written into the lock file */
#define ENTRY_MAX 128       /* a file name in deployments/: NAME + suffix + pid */
#define QUOTED_MAX 320      /* a path quoted for the shell, in messages */
#define LOCK_BRIEF_TRIES 25 /* 10 ms apart: a tidying reader holds a lock briefly */

static const char *const sub_names[D_N] = {NULL, "deployments", "archive", "logs"};

struct gm_store {
    char *dir[D_N];     /* paths, for messages (and the log path) */
    int fd[D_N];        /* open and checked; -1 while the folder does not exist */
    uid_t euid;         /* who must own everything */
    pthread_mutex_t mu; /* serialises save, archive and making the folders */
};

struct gm_lock {
    int fd;
    bool held;
    char *path;
};

/* ---- names ---------------------------------------------------------------- */

bool gm_store_valid_name(const char *name)
{
    if (!name || !*name || name[0] == '-')
        return false;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        if (n >= GM_NAME_MAX - 1)
            return false;
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return false;
    }
    return true;
}

gm_status gm_store_check_name(const char *name, gm_error *err)
{
    if (gm_store_valid_name(name))
        return GM_OK;
    /* Show the name safely: it may hold anything. */
    char shown[GM_NAME_MAX + 4];
    size_t j = 0;
    for (const char *p = name ? name : ""; *p && j < GM_NAME_MAX; p++)
        shown[j++] = isprint((unsigned char)*p) ? *p : '?';
    if (name && strlen(name) > GM_NAME_MAX) {
        memcpy(shown + j, "...", 3);
        j += 3;
    }
    shown[j] = '\0';
    return gm_error_set(err, GM_ERR_INVALID,
                        "invalid deployment name '%s': use 1 to %d lowercase letters, digits "
                        "and '-', not starting with '-'",
                        shown, GM_NAME_MAX - 1);
}

/* ---- the folder-safety rule ----------------------------------------------- */

/* s quoted for a POSIX shell ('...', with ' written '\''), for the fixes the
 * messages give. Cut (and closed) when out is too small. */
static void shell_quote(const char *s, char *out, size_t cap)
{
    size_t j = 0;
    out[j++] = '\'';
    for (; *s && j + 6 < cap; s++) {
        if (*s == '\'') {
            memcpy(out + j, "'\\''", 4);
            j += 4;
        } else {
            out[j++] = *s;
        }
    }
    out[j++] = '\'';
    out[j] = '\0';
}

static GM_MUST_CHECK gm_status refuse_symlink(const char *path, const char *target, bool want_dir,
                                              gm_error *err)
{
    char qp[QUOTED_MAX], qt[QUOTED_MAX];
    shell_quote(path, qp, sizeof qp);
    if (!target)
        return gm_error_set(err, GM_ERR_INVALID,
                            "refusing '%s': it is a symlink, and geusemaker does not follow "
                            "symlinks in its state folder; fix: replace it with a real %s",
                            path, want_dir ? "directory" : "file");
    shell_quote(target, qt, sizeof qt);
    if (want_dir)
        return gm_error_set(err, GM_ERR_INVALID,
                            "refusing '%s': it is a symlink (to '%s'), and geusemaker does not "
                            "follow symlinks in its state folder; fix: replace it with a real "
                            "directory: rm %s && mv %s %s",
                            path, target, qp, qt, qp);
    return gm_error_set(err, GM_ERR_INVALID,
                        "refusing '%s': it is a symlink (to '%s'), and geusemaker does not follow "
                        "symlinks in its state folder; fix: replace it with a real file: cp "
                        "--remove-destination %s %s && chmod 600 %s",
                        path, target, qt, qp, qp);
}

gm_status gm_store_check_stat(const char *path, const struct stat *st, const char *link_target,
                              uid_t euid, bool want_dir, gm_error *err)
{
    if (S_ISLNK(st->st_mode))
        return refuse_symlink(path, link_target, want_dir, err);
    char qp[QUOTED_MAX];
    shell_quote(path, qp, sizeof qp);
    if (want_dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode)) {
        char *old = gm_strfmt("%s.old", path);
        char qo[QUOTED_MAX];
        shell_quote(old ? old : path, qo, sizeof qo);
        free(old);
        return gm_error_set(err, GM_ERR_INVALID,
                            "refusing '%s': it is not a %s; fix: move it out of the way: mv %s %s",
                            path, want_dir ? "directory" : "regular file", qp, qo);
    }
    if (st->st_uid != euid) {
        const char *r = want_dir ? "-R " : "";
        if (euid == 0)
            return gm_error_set(err, GM_ERR_INVALID,
                                "refusing '%s': it is owned by uid %ld, not by uid 0 that runs "
                                "geusemaker; fix: run geusemaker as uid %ld, or chown %s0 %s",
                                path, (long)st->st_uid, (long)st->st_uid, r, qp);
        return gm_error_set(err, GM_ERR_INVALID,
                            "refusing '%s': it is owned by uid %ld, not by uid %ld that runs "
                            "geusemaker; fix: sudo chown %s%ld %s",
                            path, (long)st->st_uid, (long)euid, r, (long)euid, qp);
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return gm_error_set(err, GM_ERR_INVALID,
                            "refusing '%s': it is writable by group/others; fix: chmod go-w %s",
                            path, qp);
    return GM_OK;
}

/* Where the symlink name in dirfd points, made absolute against path's
 * directory when it is relative (so the fix can be pasted anywhere). NULL
 * when it cannot be read. */
static char *link_target_of(int dirfd, const char *name, const char *path)
{
    char buf[4096];
    ssize_t n = readlinkat(dirfd, name, buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    const char *slash = strrchr(path, '/');
    if (buf[0] == '/' || !slash)
        return strdup(buf);
    return gm_strfmt("%.*s/%s", (int)(slash - path), path, buf);
}

GM_MUST_CHECK gm_status gm_store_io_error(gm_error *err, const char *what, const char *path, int e)
{
    return gm_error_set(err, GM_ERR_IO, "cannot %s '%s': %s", what, path, strerror(e));
}

/* Judges the entry name of dirfd (not following it). GM_ERR_NOT_FOUND, with
 * no message, when it does not exist. */
GM_MUST_CHECK gm_status gm_store_check_at(const gm_store *s, int dirfd, const char *name,
                                          const char *path, bool want_dir, gm_error *err)
{
    struct stat sb;
    if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? GM_ERR_NOT_FOUND : gm_store_io_error(err, "inspect", path, errno);
    char *target = S_ISLNK(sb.st_mode) ? link_target_of(dirfd, name, path) : NULL;
    gm_status st = gm_store_check_stat(path, &sb, target, s->euid, want_dir, err);
    free(target);
    return st;
}

/* Opens name in dirfd without following a symlink (flags: O_RDONLY or
 * O_RDWR, maybe O_CREAT) and checks the open file. GM_ERR_NOT_FOUND, with no
 * message, when it does not exist. */
GM_MUST_CHECK gm_status gm_store_open_at(const gm_store *s, int dirfd, const char *name,
                                         const char *path, int flags, bool want_dir, int *out,
                                         gm_error *err)
{
    *out = -1;
    flags |= O_NOFOLLOW | O_CLOEXEC | (want_dir ? O_DIRECTORY : O_NONBLOCK);
    int fd = openat(dirfd, name, flags, FILE_MODE);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return GM_ERR_NOT_FOUND;
        if (e == ELOOP || e == ENOTDIR || e == ENXIO) {
            /* A symlink, or not what it should be: say which and how to fix it. */
            gm_status st = gm_store_check_at(s, dirfd, name, path, want_dir, err);
            if (st != GM_OK && st != GM_ERR_NOT_FOUND)
                return st;
        }
        return gm_store_io_error(err, want_dir ? "open directory" : "open", path, e);
    }
    struct stat sb;
    gm_status st = fstat(fd, &sb) == 0
                       ? gm_store_check_stat(path, &sb, NULL, s->euid, want_dir, err)
                       : gm_store_io_error(err, "inspect", path, errno);
    if (st != GM_OK) {
        close(fd);
        return st;
    }
    *out = fd;
    return GM_OK;
}

/* ---- folders -------------------------------------------------------------- */

/* Creates one directory with mode 0700 (whatever the umask), or accepts an
 * existing one (opening it checks it). */
static GM_MUST_CHECK gm_status make_dir_at(int dirfd, const char *name, const char *path,
                                           gm_error *err)
{
    if (mkdirat(dirfd, name, DIR_MODE) == 0) {
        /* By name: under a umask like 0777 the new directory has mode 0 and
         * cannot be opened by its (non-root) owner to fchmod it. */
        if (fchmodat(dirfd, name, DIR_MODE, 0) != 0)
            return gm_store_io_error(err, "set the mode of", path, errno);
        return GM_OK;
    }
    if (errno == EEXIST)
        return GM_OK;
    return gm_store_io_error(err, "create directory", path, errno);
}

/* make_dir_at for path's missing parents (the home's, which are not the
 * store's to judge) and then path itself. */
static GM_MUST_CHECK gm_status make_dirs(const char *path, gm_error *err)
{
    char *copy = strdup(path);
    if (!copy)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_status st = GM_OK;
    for (char *p = copy + 1; *p && st == GM_OK; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        struct stat sb;
        if (stat(copy, &sb) != 0)
            st = make_dir_at(AT_FDCWD, copy, copy, err);
        else if (!S_ISDIR(sb.st_mode))
            st = gm_error_set(err, GM_ERR_IO, "'%s' exists and is not a directory", copy);
        *p = '/';
    }
    if (st == GM_OK)
        st = make_dir_at(AT_FDCWD, copy, copy, err);
    free(copy);
    return st;
}

/* Opens (and checks) every folder not open yet that exists; with create,
 * makes the missing ones first. Called by open, or with s->mu held. */
static GM_MUST_CHECK gm_status open_dirs(gm_store *s, bool create, gm_error *err)
{
    gm_status st = GM_OK;
    if (s->fd[D_HOME] < 0) {
        if (create)
            st = make_dirs(s->dir[D_HOME], err);
        if (st == GM_OK)
            st = gm_store_open_at(s, AT_FDCWD, s->dir[D_HOME], s->dir[D_HOME], O_RDONLY, true,
                                  &s->fd[D_HOME], err);
        if (st == GM_ERR_NOT_FOUND)
            st = create ? gm_store_io_error(err, "open directory", s->dir[D_HOME], ENOENT) : GM_OK;
    }
    for (int i = D_HOME + 1; st == GM_OK && s->fd[D_HOME] >= 0 && i < D_N; i++) {
        if (s->fd[i] >= 0)
            continue;
        if (create)
            st = make_dir_at(s->fd[D_HOME], sub_names[i], s->dir[i], err);
        if (st == GM_OK)
            st = gm_store_open_at(s, s->fd[D_HOME], sub_names[i], s->dir[i], O_RDONLY, true,
                                  &s->fd[i], err);
        if (st == GM_ERR_NOT_FOUND)
            st = create ? gm_store_io_error(err, "open directory", s->dir[i], ENOENT) : GM_OK;
    }
    return st;
}

/* The descriptor of a folder in *out (-1 while it does not exist). A folder
 * made since the store was opened (by another process) is opened and checked
 * now. */
GM_MUST_CHECK gm_status gm_store_dir_fd(gm_store *s, int which, int *out, gm_error *err)
{
    pthread_mutex_lock(&s->mu);
    gm_status st = s->fd[which] < 0 ? open_dirs(s, false, err) : GM_OK;
    *out = s->fd[which];
    pthread_mutex_unlock(&s->mu);
    return st;
}

gm_status gm_store_make_dirs(gm_store *s, gm_error *err)
{
    pthread_mutex_lock(&s->mu);
    gm_status st = open_dirs(s, true, err);
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* ---- small file helpers --------------------------------------------------- */

static GM_MUST_CHECK gm_status write_all(int fd, const char *data, size_t len, const char *path,
                                         gm_error *err)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return gm_store_io_error(err, "write", path, errno);
        }
        data += n;
        len -= (size_t)n;
    }
    return GM_OK;
}

GM_MUST_CHECK gm_status gm_store_sync_dir(int fd, const char *path, gm_error *err)
{
    if (fsync(fd) != 0 && errno != EINVAL) /* some file systems cannot sync directories */
        return gm_store_io_error(err, "sync directory", path, errno);
    return GM_OK;
}

/* Creates name in dirfd exclusively (0600) and writes data to it durably. A
 * regular file already there is a leftover of a dead process with our pid
 * (callers hold the deployment lock and the store mutex) and is replaced;
 * anything else there is an error. *created tells whether the caller must
 * unlink on failure. */
GM_MUST_CHECK gm_status gm_store_write_new(int dirfd, const char *name, const char *path,
                                           const char *data, size_t len, bool durable,
                                           bool *created, gm_error *err)
{
    *created = false;
    int fd = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, FILE_MODE);
        if (fd >= 0 || errno != EEXIST || attempt)
            break;
        struct stat sb;
        if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode) ||
            unlinkat(dirfd, name, 0) != 0) {
            errno = EEXIST;
            break;
        }
    }
    if (fd < 0)
        return gm_store_io_error(err, "create", path, errno);
    *created = true;
    gm_status st = GM_OK;
    if (fchmod(fd, FILE_MODE) != 0)
        st = gm_store_io_error(err, "set the mode of", path, errno);
    if (st == GM_OK)
        st = write_all(fd, data, len, path, err);
    if (st == GM_OK && durable && fsync(fd) != 0)
        st = gm_store_io_error(err, "sync", path, errno);
    if (close(fd) != 0 && st == GM_OK)
        st = gm_store_io_error(err, "close", path, errno);
    return st;
}

/* ---- open ----------------------------------------------------------------- */

static char *default_home(void)
{
    const char *env = getenv("GEUSEMAKER_HOME");
    if (env && *env)
        return strdup(env);
    const char *home = getenv("HOME");
    if (home && *home)
        return gm_strfmt("%s/.geusemaker", home);
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) == 0 && res && res->pw_dir && *res->pw_dir)
        return gm_strfmt("%s/.geusemaker", res->pw_dir);
    return NULL;
}

gm_status gm_store_open(const char *home, gm_store **out, gm_error *err)
{
    *out = NULL;
    if (home && !*home)
        return gm_error_set(err, GM_ERR_INVALID, "state home is an empty path");
    gm_store *s = calloc(1, sizeof *s);
    if (!s)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    for (int i = 0; i < D_N; i++)
        s->fd[i] = -1;
    s->euid = geteuid();
    gm_status st = GM_OK;
    s->dir[D_HOME] = home ? strdup(home) : default_home();
    if (!s->dir[D_HOME]) {
        st = home ? gm_error_set(err, GM_ERR_NOMEM, "out of memory")
                  : gm_error_set(err, GM_ERR_INVALID,
                                 "cannot find a home directory for geusemaker state; set "
                                 "GEUSEMAKER_HOME or HOME");
        goto error;
    }
    /* Trailing slashes would only make paths ugly. */
    for (size_t n = strlen(s->dir[D_HOME]); n > 1 && s->dir[D_HOME][n - 1] == '/'; n--)
        s->dir[D_HOME][n - 1] = '\0';
    for (int i = D_HOME + 1; i < D_N; i++) {
        s->dir[i] = gm_strfmt("%s/%s", s->dir[D_HOME], sub_names[i]);
        if (!s->dir[i]) {
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
            goto error;
        }
    }
    st = open_dirs(s, false, err);
    if (st != GM_OK)
        goto error;
    *out = s;
    return GM_OK;
error:
    gm_store_free(s);
    return st;
}

void gm_store_free(gm_store *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    for (int i = 0; i < D_N; i++) {
        if (s->fd[i] >= 0)
            close(s->fd[i]);
        free(s->dir[i]);
    }
    free(s);
}

const char *gm_store_dir_path(const gm_store *s, int which)
{
    return s->dir[which];
}

uid_t gm_store_euid(const gm_store *s)
{
    return s->euid;
}

const char *gm_store_home(const gm_store *s)
{
    return s->dir[D_HOME];
}

char *gm_store_log_path(const gm_store *s, const char *name)
{
    if (!s || !gm_store_valid_name(name))
        return NULL;
    return gm_strfmt("%s/%s.log", s->dir[D_LOGS], name);
}

static char *state_path(const gm_store *s, const char *name)
{
    return gm_strfmt("%s/%s.json", s->dir[D_DEPLOYMENTS], name);
}

/* ---- temporary files of killed saves -------------------------------------- */

/* True when f is one of the tool's temporary names, ".NAME.json.tmp.PID" (a
 * save) or ".NAME.json.bak.tmp.PID" (its backup link); NAME goes to name. */
static bool temp_file_name(const char *f, char name[GM_NAME_MAX])
{
    const char *dot = f[0] == '.' ? strchr(f + 1, '.') : NULL;
    if (!dot || dot == f + 1 || (size_t)(dot - f - 1) >= GM_NAME_MAX)
        return false;
    memcpy(name, f + 1, (size_t)(dot - f - 1));
    name[dot - f - 1] = '\0';
    const char *pid;
    if (gm_str_startswith(dot, ".json.tmp."))
        pid = dot + strlen(".json.tmp.");
    else if (gm_str_startswith(dot, ".json.bak.tmp."))
        pid = dot + strlen(".json.bak.tmp.");
    else
        return false;
    if (!*pid || !gm_store_valid_name(name))
        return false;
    for (; *pid; pid++)
        if (!isdigit((unsigned char)*pid))
            return false;
    return true;
}

/* NAME's lock if it can be had at once (a descriptor to close), else -1. */
static int try_lock(const gm_store *s, int dirfd, const char *name)
{
    char file[ENTRY_MAX];
    snprintf(file, sizeof file, "%s.lock", name);
    int fd = openat(dirfd, file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, FILE_MODE);
    if (fd < 0)
        return -1;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != s->euid ||
        flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -1;
    }
    (void)fchmod(fd, FILE_MODE); /* it may have just been made under any umask */
    return fd;
}

DIR *gm_store_opendir(int dirfd)
{
    int scan = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = scan >= 0 ? fdopendir(scan) : NULL;
    if (!d && scan >= 0) {
        int e = errno;
        close(scan);
        errno = e;
    }
    return d;
}

/* Removes the temporary files killed saves left in deployments/ (dirfd), for
 * only (every name when NULL). held: the caller holds only's lock, so none of
 * them belongs to a live writer; otherwise each name's lock is tried, never
 * waited for, and a name whose lock is busy is left alone. Best effort. */
static void tidy_temps(const gm_store *s, int dirfd, const char *only, bool held)
{
    DIR *d = gm_store_opendir(dirfd);
    if (!d)
        return;
    struct dirent *e;
    char name[GM_NAME_MAX];
    while ((e = readdir(d)) != NULL) {
        if (!temp_file_name(e->d_name, name) || (only && strcmp(name, only) != 0))
            continue;
        int lock = held ? -1 : try_lock(s, dirfd, name);
        if (held || lock >= 0)
            (void)unlinkat(dirfd, e->d_name, 0); /* gone already is as good */
        if (lock >= 0)
            close(lock);
    }
    closedir(d);
}

/* ---- lock ----------------------------------------------------------------- */

/* "PID\nCOMMAND\n" for the lock file; the command from /proc when available. */
static void lock_info(char out[LOCK_INFO_MAX])
{
    char cmd[LOCK_INFO_MAX - 32] = "";
    size_t n = 0;
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t got = read(fd, cmd, sizeof cmd - 1);
        n = got > 0 ? (size_t)got : 0;
        close(fd);
    }
    if (n == 0) {
        snprintf(cmd, sizeof cmd, "%s", program_invocation_name);
        n = strlen(cmd);
    }
    cmd[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (cmd[i] == '\0' || cmd[i] == '\n' || cmd[i] == '\r')
            cmd[i] = ' ';
    gm_str_trim(cmd);
    snprintf(out, LOCK_INFO_MAX, "%ld\n%s\n", (long)getpid(), cmd);
}

/* The pid recorded in a lock file, or 0 when there is none yet. */
static long lock_holder(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return (end != buf && pid > 0 && *end == '\n') ? pid : 0;
}

/* flock(LOCK_EX|LOCK_NB) on l, trying again for a moment while the holder is
 * unknown or dead: a reader removing temporary files (tidy_temps) holds the
 * lock for that long without writing its pid. */
static GM_MUST_CHECK gm_status take_flock(gm_lock *l, const char *name, gm_error *err)
{
    for (int tries = 0;; tries++) {
        int rc;
        while ((rc = flock(l->fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
        }
        if (rc == 0)
            return GM_OK;
        if (errno != EWOULDBLOCK)
            return gm_store_io_error(err, "lock", l->path, errno);
        long pid = lock_holder(l->fd);
        bool unknown = pid == 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH);
        if (unknown && tries < LOCK_BRIEF_TRIES) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (pid)
            return gm_error_set(err, GM_ERR_LOCKED,
                                "deployment '%s' is locked by another geusemaker process (pid "
                                "%ld) holding '%s'",
                                name, pid, l->path);
        return gm_error_set(err, GM_ERR_LOCKED,
                            "deployment '%s' is locked by another geusemaker process (pid "
                            "unknown) holding '%s'",
                            name, l->path);
    }
}

gm_status gm_store_lock(gm_store *s, const char *name, gm_lock **out, gm_error *err)
{
    *out = NULL;
    gm_status st = gm_store_check_name(name, err);
    if (st != GM_OK)
        return st;
    int dirfd = -1;
    st = gm_store_make_dirs(s, err);
    if (st == GM_OK)
        st = gm_store_dir_fd(s, D_DEPLOYMENTS, &dirfd, err);
    if (st != GM_OK)
        return st;
    gm_lock *l = calloc(1, sizeof *l);
    if (!l)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    l->fd = -1;
    l->path = gm_strfmt("%s/%s.lock", s->dir[D_DEPLOYMENTS], name);
    if (!l->path) {
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        goto error;
    }
    char file[ENTRY_MAX];
    snprintf(file, sizeof file, "%s.lock", name);
    st = gm_store_open_at(s, dirfd, file, l->path, O_RDWR | O_CREAT, false, &l->fd, err);
    if (st == GM_ERR_NOT_FOUND)
        st = gm_store_io_error(err, "open lock file", l->path, ENOENT);
    if (st == GM_OK)
        st = take_flock(l, name, err);
    if (st != GM_OK)
        goto error;
    /* Ours now: record who holds it (best effort, it is only for messages). */
    l->held = true;
    (void)fchmod(l->fd, FILE_MODE);
    char info[LOCK_INFO_MAX];
    lock_info(info);
    if (ftruncate(l->fd, 0) == 0) {
        size_t len = strlen(info);
        if (pwrite(l->fd, info, len, 0) != (ssize_t)len) {
            /* The lock holds without the note. */
        }
    }
    /* No live writer of NAME can exist now: whatever tmp file is left is junk. */
    tidy_temps(s, dirfd, name, true);
    *out = l;
    return GM_OK;
error:
    gm_lock_release(l);
    return st;
}

void gm_lock_release(gm_lock *l)
{
    if (!l)
        return;
    if (l->fd >= 0) {
        /* Clear the note only if the lock is ours: a failed gm_store_lock
         * releases through here too, while another process holds it. */
        if (l->held && ftruncate(l->fd, 0) != 0) {
            /* Harmless: the next holder rewrites it. */
        }
        close(l->fd);
    }
    free(l->path);
    free(l);
}

const char *gm_lock_path(const gm_lock *l)
{
    return l ? l->path : NULL;
}

/* ---- load ----------------------------------------------------------------- */

GM_MUST_CHECK gm_status gm_store_read_all(int fd, const char *path, gm_buf *b, gm_error *err)
{
    char chunk[8192];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n == 0)
            return GM_OK;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return gm_store_io_error(err, "read", path, errno);
        }
        gm_status st = gm_buf_append(b, chunk, (size_t)n);
        if (st == GM_ERR_LIMIT)
            return gm_error_set(err, st,
                                "state file '%s' is larger than %u bytes; it was left as it is",
                                path, GM_LIMIT_STATE_FILE);
        if (st != GM_OK)
            return gm_error_set(err, st, "out of memory reading '%s'", path);
    }
}

/* Opens deployments/NAME.json (dirfd: deployments/, -1 when it does not
 * exist) without following a symlink, checks what was opened and reads it
 * into b. NOT_FOUND gets the store's message. */
static GM_MUST_CHECK gm_status read_state(const gm_store *s, int dirfd, const char *name,
                                          const char *path, gm_buf *b, gm_error *err)
{
    char file[ENTRY_MAX];
    snprintf(file, sizeof file, "%s.json", name);
    int fd = -1;
    gm_status st = dirfd < 0 ? GM_ERR_NOT_FOUND
                             : gm_store_open_at(s, dirfd, file, path, O_RDONLY, false, &fd, err);
    if (st == GM_ERR_NOT_FOUND)
        return gm_error_set(err, st, "no deployment named '%s' (looked in '%s')", name, path);
    if (st != GM_OK)
        return st;
    st = gm_store_read_all(fd, path, b, err);
    close(fd);
    return st;
}

static GM_MUST_CHECK gm_status parse_state(const char *name, const char *path, const gm_buf *b,
                                           gm_deployment **out, gm_error *err)
{
    *out = NULL;
    json_error_t jerr;
    json_t *j = json_loadb(gm_buf_cstr(b), b->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return gm_error_set(err, GM_ERR_PARSE,
                            "state file '%s' is corrupt: %s at line %d column %d; it was left as "
                            "it is",
                            path, jerr.text, jerr.line, jerr.column);
    gm_error e = {0};
    gm_deployment *d = NULL;
    gm_status st = gm_deployment_from_json(j, &d, &e);
    json_decref(j);
    if (st == GM_ERR_PARSE)
        return gm_error_set(err, st, "state file '%s' is invalid: %s; it was left as it is", path,
                            e.message);
    if (st != GM_OK)
        return gm_error_set(err, st, "%s", e.message);
    if (strcmp(d->name, name) != 0) {
        st = gm_error_set(err, GM_ERR_CONFLICT,
                          "state file '%s' holds deployment '%s', not '%s'; it was left as it is",
                          path, d->name, name);
        gm_deployment_free(d);
        return st;
    }
    *out = d;
    return GM_OK;
}

gm_status gm_store_load(gm_store *s, const char *name, gm_deployment **out, gm_error *err)
{
    return gm_store_load_tidy(s, name, true, out, err);
}

gm_status gm_store_load_tidy(gm_store *s, const char *name, bool tidy, gm_deployment **out,
                             gm_error *err)
{
    *out = NULL;
    gm_status st = gm_store_check_name(name, err);
    if (st != GM_OK)
        return st;
    int dirfd = -1;
    st = gm_store_dir_fd(s, D_DEPLOYMENTS, &dirfd, err);
    if (st != GM_OK)
        return st;
    char *path = state_path(s, name);
    if (!path)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    if (dirfd >= 0 && tidy)
        tidy_temps(s, dirfd, name, false);
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_STATE_FILE);
    st = read_state(s, dirfd, name, path, &b, err);
    if (st == GM_OK)
        st = parse_state(name, path, &b, out, err);
    gm_buf_release(&b);
    free(path);
    return st;
}

bool gm_store_exists(gm_store *s, const char *name)
{
    if (!s || !gm_store_valid_name(name))
        return false;
    int dirfd = -1;
    gm_error ignored = {0}; /* an unsafe folder: false here, load says why */
    if (gm_store_dir_fd(s, D_DEPLOYMENTS, &dirfd, &ignored) != GM_OK || dirfd < 0)
        return false;
    char file[ENTRY_MAX];
    snprintf(file, sizeof file, "%s.json", name);
    struct stat sb;
    return fstatat(dirfd, file, &sb, AT_SYMLINK_NOFOLLOW) == 0;
}

/* ---- save ----------------------------------------------------------------- */

typedef struct dump_ctx {
    gm_buf *buf;
    gm_status st;
} dump_ctx;

static int dump_to_buf(const char *data, size_t size, void *arg)
{
    dump_ctx *ctx = arg;
    ctx->st = gm_buf_append(ctx->buf, data, size);
    return ctx->st == GM_OK ? 0 : -1;
}

/* The record's JSON text (indented, with a final newline) into text. */
static GM_MUST_CHECK gm_status serialize(const gm_deployment *d, gm_buf *text, gm_error *err)
{
    json_t *j = gm_deployment_to_json(d);
    if (!j)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory saving deployment '%s'", d->name);
    dump_ctx ctx = {text, GM_OK};
    gm_status st = GM_OK;
    if (json_dump_callback(j, dump_to_buf, &ctx, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
        (ctx.st = gm_buf_appendc(text, '\n')) != GM_OK) {
        if (ctx.st == GM_ERR_LIMIT)
            st = gm_error_set(err, GM_ERR_LIMIT,
                              "state of '%s' is larger than %u bytes; it was not saved", d->name,
                              GM_LIMIT_STATE_FILE);
        else
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory saving deployment '%s'", d->name);
    }
    json_decref(j);
    return st;
}

/* Reads the current NAME.json into old (*have_old) when there is one, and
 * refuses to go on when it does not load: never replace a file we could not
 * load ourselves. */
static GM_MUST_CHECK gm_status load_current(gm_store *s, const char *name, const char *path,
                                            gm_buf *old, bool *have_old, gm_error *err)
{
    *have_old = false;
    char file[ENTRY_MAX];
    snprintf(file, sizeof file, "%s.json", name);
    struct stat sb;
    if (fstatat(s->fd[D_DEPLOYMENTS], file, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? GM_OK : gm_store_io_error(err, "inspect", path, errno);
    gm_error e = {0};
    gm_deployment *cur = NULL;
    gm_status st = read_state(s, s->fd[D_DEPLOYMENTS], name, path, old, &e);
    if (st == GM_ERR_INVALID) /* unsafe: the message is the fix */
        return gm_error_set(err, st, "%s", e.message);
    if (st == GM_OK)
        st = parse_state(name, path, old, &cur, &e);
    gm_deployment_free(cur);
    if (st != GM_OK) {
        if (st != GM_ERR_IO && st != GM_ERR_NOMEM)
            st = GM_ERR_CONFLICT;
        return gm_error_set(err, st, "refusing to replace state file: %s", e.message);
    }
    *have_old = true;
    return GM_OK;
}

/* Keeps the current file as NAME.json.bak, replacing the old backup in one
 * rename. old holds the current content for file systems without links. */
static GM_MUST_CHECK gm_status keep_backup(const gm_store *s, const char *name, const gm_buf *old,
                                           gm_error *err)
{
    int dirfd = s->fd[D_DEPLOYMENTS];
    char file[ENTRY_MAX], bak[ENTRY_MAX], tmp[ENTRY_MAX];
    snprintf(file, sizeof file, "%s.json", name);
    snprintf(bak, sizeof bak, "%s.json.bak", name);
    snprintf(tmp, sizeof tmp, ".%s.json.bak.tmp.%ld", name, (long)getpid());
    char *tmp_path = gm_strfmt("%s/%s", s->dir[D_DEPLOYMENTS], tmp);
    if (!tmp_path)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_status st = GM_OK;
    bool created = false;
    (void)unlinkat(dirfd, tmp, 0); /* a leftover of a dead process with our pid */
    if (linkat(dirfd, file, dirfd, tmp, 0) == 0) {
        created = true;
    } else if (errno == EPERM || errno == EOPNOTSUPP || errno == EMLINK || errno == ENOSYS) {
        st = gm_store_write_new(dirfd, tmp, tmp_path, old->data ? old->data : "", old->len, true,
                                &created, err);
    } else {
        st = gm_store_io_error(err, "create backup", tmp_path, errno);
    }
    if (st == GM_OK && renameat(dirfd, tmp, dirfd, bak) != 0)
        st = gm_error_set(err, GM_ERR_IO, "cannot replace backup '%s/%s': %s",
                          s->dir[D_DEPLOYMENTS], bak, strerror(errno));
    if (st == GM_OK)
        created = false;
    if (created)
        (void)unlinkat(dirfd, tmp, 0);
    free(tmp_path);
    return st;
}

static GM_MUST_CHECK gm_status save_locked(gm_store *s, gm_deployment *d, gm_error *err)
{
    gm_status st = gm_store_check_name(d->name, err);
    if (st == GM_OK)
        st = open_dirs(s, true, err);
    if (st != GM_OK)
        return st;
    const char *name = d->name;
    int dirfd = s->fd[D_DEPLOYMENTS];
    char file[ENTRY_MAX], tmp[ENTRY_MAX];
    snprintf(file, sizeof file, "%s.json", name);
    snprintf(tmp, sizeof tmp, ".%s.json.tmp.%ld", name, (long)getpid());
    char *path = state_path(s, name);
    char *tmp_path = gm_strfmt("%s/%s", s->dir[D_DEPLOYMENTS], tmp);
    gm_buf text, old;
    gm_buf_init(&text, GM_LIMIT_STATE_FILE);
    gm_buf_init(&old, GM_LIMIT_STATE_FILE);
    bool tmp_created = false, have_old = false;
    if (!path || !tmp_path)
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    if (st == GM_OK)
        st = serialize(d, &text, err);
    if (st == GM_OK)
        st = load_current(s, name, path, &old, &have_old, err);
    if (st == GM_OK)
        st = gm_store_write_new(dirfd, tmp, tmp_path, text.data, text.len, true, &tmp_created, err);
    if (st == GM_OK && have_old)
        st = keep_backup(s, name, &old, err);
    if (st == GM_OK && renameat(dirfd, tmp, dirfd, file) != 0)
        st = gm_store_io_error(err, "replace", path, errno);
    if (st == GM_OK) {
        tmp_created = false;
        st = gm_store_sync_dir(dirfd, s->dir[D_DEPLOYMENTS], err);
    }
    if (tmp_created)
        (void)unlinkat(dirfd, tmp, 0);
    gm_buf_release(&text);
    gm_buf_release(&old);
    free(path);
    free(tmp_path);
    return st;
}

gm_status gm_store_save(gm_store *s, gm_deployment *d, gm_error *err)
{
    if (!s || !d)
        return gm_error_set(err, GM_ERR_INVALID, "no store or deployment to save");
    pthread_mutex_lock(&s->mu);
    int64_t before = d->updated_at;
    d->updated_at = gm_wall_ms();
    gm_status st = save_locked(s, d, err);
    if (st != GM_OK)
        d->updated_at = before;
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* ---- list ----------------------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void gm_store_list_free(char **names, size_t n)
{
    if (!names)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The NAME of a record file name ("NAME.json" with a valid NAME), or NULL
 * (also when memory is exhausted: *nomem). */
static char *record_name(const char *f, bool *nomem)
{
    size_t len = strlen(f);
    *nomem = false;
    if (f[0] == '.' || len <= 5 || strcmp(f + len - 5, ".json") != 0)
        return NULL;
    char *name = strndup(f, len - 5);
    if (!name)
        *nomem = true;
    else if (!gm_store_valid_name(name)) {
        free(name);
        name = NULL;
    }
    return name;
}

/* Appends name (of record file f) to names, growing it; an unsafe record
 * is refused, one gone since readdir skipped. Takes name in every case. */
static GM_MUST_CHECK gm_status add_listed(gm_store *s, int dirfd, const char *f, char *name,
                                          char ***names, size_t *n, size_t *cap, gm_error *err)
{
    char *path = gm_strfmt("%s/%s", s->dir[D_DEPLOYMENTS], f);
    gm_status st = path ? gm_store_check_at(s, dirfd, f, path, false, err)
                        : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    free(path);
    char **grown = *names;
    if (st == GM_OK && *n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        grown = realloc(*names, ncap * sizeof *grown);
        if (grown) {
            *names = grown;
            *cap = ncap;
        } else {
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        }
    }
    if (st != GM_OK || !grown) {
        free(name);
        return st == GM_ERR_NOT_FOUND ? GM_OK : st; /* not found: gone since readdir */
    }
    grown[(*n)++] = name;
    return GM_OK;
}

gm_status gm_store_list(gm_store *s, char ***out_names, size_t *out_n, gm_error *err)
{
    *out_names = NULL;
    *out_n = 0;
    int dirfd = -1;
    gm_status st = gm_store_dir_fd(s, D_DEPLOYMENTS, &dirfd, err);
    if (st != GM_OK || dirfd < 0)
        return st; /* unsafe, or nothing was ever saved */
    tidy_temps(s, dirfd, NULL, false);
    DIR *dir = gm_store_opendir(dirfd);
    if (!dir)
        return gm_store_io_error(err, "open directory", s->dir[D_DEPLOYMENTS], errno);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    errno = 0;
    while (st == GM_OK && (e = readdir(dir)) != NULL) {
        bool nomem;
        char *name = record_name(e->d_name, &nomem);
        if (nomem)
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        else if (name)
            st = add_listed(s, dirfd, e->d_name, name, &names, &n, &cap, err);
        errno = 0;
    }
    if (st == GM_OK && errno != 0)
        st = gm_store_io_error(err, "read directory", s->dir[D_DEPLOYMENTS], errno);
    closedir(dir);
    if (st != GM_OK) {
        gm_store_list_free(names, n);
        return st;
    }
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    *out_names = names;
    *out_n = n;
    return GM_OK;
}

/* ---- archive -------------------------------------------------------------- */

/* Moves src (in sfd) to dst (in dfd) unless dst exists (EEXIST). */
static int move_noreplace(int sfd, const char *src, int dfd, const char *dst)
{
    if (renameat2(sfd, src, dfd, dst, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
        return -1;
    /* No RENAME_NOREPLACE here: link (which never replaces), then unlink. */
    if (linkat(sfd, src, dfd, dst, 0) != 0)
        return -1;
    return unlinkat(sfd, src, 0);
}

/* Moves NAME.json into archive/ as NAME-<stamp>[-k]<kind>.json (the first
 * free k); *out_file receives the file name. */
static GM_MUST_CHECK gm_status move_to_archive(gm_store *s, const char *name, const char *kind,
                                               char **out_file, gm_error *err)
{
    char src[ENTRY_MAX];
    snprintf(src, sizeof src, "%s.json", name);
    time_t now = (time_t)(gm_wall_ms() / 1000);
    struct tm tm;
    char stamp[32];
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    char *dst = NULL;
    for (int k = 0;; k++) {
        free(dst);
        dst = k ? gm_strfmt("%s-%s-%d%s.json", name, stamp, k, kind)
                : gm_strfmt("%s-%s%s.json", name, stamp, kind);
        if (!dst)
            return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        if (move_noreplace(s->fd[D_DEPLOYMENTS], src, s->fd[D_ARCHIVE], dst) == 0)
            break;
        if (errno != EEXIST || k >= 1000) {
            gm_status st =
                gm_error_set(err, GM_ERR_IO, "cannot move '%s/%s' to '%s/%s': %s",
                             s->dir[D_DEPLOYMENTS], src, s->dir[D_ARCHIVE], dst, strerror(errno));
            free(dst);
            return st;
        }
    }
    *out_file = dst;
    return GM_OK;
}

static GM_MUST_CHECK gm_status archive_locked(gm_store *s, const char *name, const char *kind,
                                              char **out_path, gm_error *err)
{
    char *src = state_path(s, name);
    char *file = NULL;
    if (!src)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_status st = open_dirs(s, true, err);
    char rec[ENTRY_MAX], bak[ENTRY_MAX];
    snprintf(rec, sizeof rec, "%s.json", name);
    snprintf(bak, sizeof bak, "%s.json.bak", name);
    if (st == GM_OK)
        st = gm_store_check_at(s, s->fd[D_DEPLOYMENTS], rec, src, false, err);
    if (st == GM_ERR_NOT_FOUND)
        st = gm_error_set(err, st, "no deployment named '%s' (looked in '%s')", name, src);
    if (st == GM_OK)
        st = move_to_archive(s, name, kind, &file, err);
    if (st == GM_OK && unlinkat(s->fd[D_DEPLOYMENTS], bak, 0) != 0 && errno != ENOENT)
        st = gm_error_set(err, GM_ERR_IO, "cannot remove '%s/%s': %s", s->dir[D_DEPLOYMENTS], bak,
                          strerror(errno));
    if (st == GM_OK)
        st = gm_store_sync_dir(s->fd[D_ARCHIVE], s->dir[D_ARCHIVE], err);
    if (st == GM_OK)
        st = gm_store_sync_dir(s->fd[D_DEPLOYMENTS], s->dir[D_DEPLOYMENTS], err);
    if (st == GM_OK && out_path) {
        *out_path = gm_strfmt("%s/%s", s->dir[D_ARCHIVE], file);
        if (!*out_path)
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    free(src);
    free(file);
    return st;
}

static GM_MUST_CHECK gm_status archive_as(gm_store *s, const char *name, const char *kind,
                                          char **out_path, gm_error *err)
{
    if (out_path)
        *out_path = NULL;
    gm_status st = gm_store_check_name(name, err);
    if (st != GM_OK)
        return st;
    pthread_mutex_lock(&s->mu);
    st = archive_locked(s, name, kind, out_path, err);
    pthread_mutex_unlock(&s->mu);
    return st;
}

gm_status gm_store_archive(gm_store *s, const char *name, char **out_path, gm_error *err)
{
    return archive_as(s, name, "", out_path, err);
}

gm_status gm_store_forget(gm_store *s, const char *name, char **out_path, gm_error *err)
{
    return archive_as(s, name, ".forgotten", out_path, err);
}
