/* The deployment store. See store.h for the layout and the guarantees.
 *
 * Save protocol (crash-safe at every step):
 *   1. check the current NAME.json still loads (never overwrite what we
 *      cannot read: a corrupt file or one from a newer geusemaker);
 *   2. write the new text to .NAME.json.tmp.PID (O_EXCL, 0600), fsync, close;
 *   3. hard-link NAME.json to .NAME.json.bak.tmp.PID and rename that over
 *      NAME.json.bak (a copy when the file system has no hard links);
 *   4. rename the tmp file over NAME.json; fsync the directory.
 * A crash leaves at worst a hidden tmp file, which list skips and the next save
 * by the same pid replaces.
 */
#include "state/store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
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
#define LOCK_INFO_MAX 512 /* "PID\nCOMMAND\n" written into the lock file */

struct gm_store {
    char *home;
    char *deployments;
    char *archive;
    char *logs;
    pthread_mutex_t mu; /* serialises save and archive within the process */
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

/* ---- small file helpers --------------------------------------------------- */

static GM_MUST_CHECK gm_status io_error(gm_error *err, const char *what, const char *path, int e)
{
    return gm_error_set(err, GM_ERR_IO, "cannot %s '%s': %s", what, path, strerror(e));
}

/* Creates one directory with mode 0700 (whatever the umask), or accepts an
 * existing directory. */
static GM_MUST_CHECK gm_status make_dir(const char *path, gm_error *err)
{
    if (mkdir(path, DIR_MODE) == 0) {
        /* By path: under a umask like 0777 the new directory has mode 0 and
         * cannot be opened by its (non-root) owner to fchmod it. */
        if (chmod(path, DIR_MODE) != 0)
            return io_error(err, "set the mode of", path, errno);
        return GM_OK;
    }
    int e = errno;
    struct stat st;
    if (e == EEXIST && stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return GM_OK;
        return gm_error_set(err, GM_ERR_IO, "'%s' exists and is not a directory", path);
    }
    return io_error(err, "create directory", path, e);
}

/* make_dir for path and every missing parent. */
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
            st = make_dir(copy, err);
        *p = '/';
    }
    if (st == GM_OK)
        st = make_dir(copy, err);
    free(copy);
    return st;
}

static GM_MUST_CHECK gm_status write_all(int fd, const char *data, size_t len, const char *path,
                                         gm_error *err)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return io_error(err, "write", path, errno);
        }
        data += n;
        len -= (size_t)n;
    }
    return GM_OK;
}

static GM_MUST_CHECK gm_status sync_dir(const char *path, gm_error *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return io_error(err, "open directory", path, errno);
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL) /* some file systems cannot sync directories */
        return io_error(err, "sync directory", path, e);
    return GM_OK;
}

/* Creates path exclusively (0600) and writes data to it durably. A regular
 * file already there is a leftover of a dead process with our pid (callers
 * hold the deployment lock and the store mutex) and is replaced; anything else
 * there is an error. *created tells whether the caller must unlink on failure. */
static GM_MUST_CHECK gm_status write_new_file(const char *path, const char *data, size_t len,
                                              bool *created, gm_error *err)
{
    *created = false;
    int fd = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, FILE_MODE);
        if (fd >= 0 || errno != EEXIST || attempt)
            break;
        struct stat sb;
        if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || unlink(path) != 0) {
            errno = EEXIST;
            break;
        }
    }
    if (fd < 0)
        return io_error(err, "create", path, errno);
    *created = true;
    gm_status st = GM_OK;
    if (fchmod(fd, FILE_MODE) != 0)
        st = io_error(err, "set the mode of", path, errno);
    if (st == GM_OK)
        st = write_all(fd, data, len, path, err);
    if (st == GM_OK && fsync(fd) != 0)
        st = io_error(err, "sync", path, errno);
    if (close(fd) != 0 && st == GM_OK)
        st = io_error(err, "close", path, errno);
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
    gm_status st = GM_OK;
    s->home = home ? strdup(home) : default_home();
    if (!s->home) {
        st = home ? gm_error_set(err, GM_ERR_NOMEM, "out of memory")
                  : gm_error_set(err, GM_ERR_INVALID,
                                 "cannot find a home directory for geusemaker state; set "
                                 "GEUSEMAKER_HOME or HOME");
        goto error;
    }
    /* Trailing slashes would only make paths ugly. */
    for (size_t n = strlen(s->home); n > 1 && s->home[n - 1] == '/'; n--)
        s->home[n - 1] = '\0';
    s->deployments = gm_strfmt("%s/deployments", s->home);
    s->archive = gm_strfmt("%s/archive", s->home);
    s->logs = gm_strfmt("%s/logs", s->home);
    if (!s->deployments || !s->archive || !s->logs) {
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        goto error;
    }
    st = make_dirs(s->home, err);
    if (st == GM_OK)
        st = make_dir(s->deployments, err);
    if (st == GM_OK)
        st = make_dir(s->archive, err);
    if (st == GM_OK)
        st = make_dir(s->logs, err);
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
    free(s->home);
    free(s->deployments);
    free(s->archive);
    free(s->logs);
    free(s);
}

const char *gm_store_home(const gm_store *s)
{
    return s->home;
}

char *gm_store_log_path(const gm_store *s, const char *name)
{
    if (!s || !gm_store_valid_name(name))
        return NULL;
    return gm_strfmt("%s/%s.log", s->logs, name);
}

static char *state_path(const gm_store *s, const char *name)
{
    return gm_strfmt("%s/%s.json", s->deployments, name);
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

gm_status gm_store_lock(gm_store *s, const char *name, gm_lock **out, gm_error *err)
{
    *out = NULL;
    gm_status st = gm_store_check_name(name, err);
    if (st != GM_OK)
        return st;
    gm_lock *l = calloc(1, sizeof *l);
    if (!l)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    l->fd = -1;
    l->path = gm_strfmt("%s/%s.lock", s->deployments, name);
    if (!l->path) {
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        goto error;
    }
    l->fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, FILE_MODE);
    if (l->fd < 0) {
        st = io_error(err, "open lock file", l->path, errno);
        goto error;
    }
    int rc;
    while ((rc = flock(l->fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
        if (errno != EWOULDBLOCK) {
            st = io_error(err, "lock", l->path, errno);
            goto error;
        }
        long pid = lock_holder(l->fd);
        if (pid)
            st = gm_error_set(err, GM_ERR_LOCKED,
                              "deployment '%s' is locked by another geusemaker process (pid %ld) "
                              "holding '%s'",
                              name, pid, l->path);
        else
            st = gm_error_set(err, GM_ERR_LOCKED,
                              "deployment '%s' is locked by another geusemaker process (pid "
                              "unknown) holding '%s'",
                              name, l->path);
        goto error;
    }
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

/* Reads path into b; NOT_FOUND and LIMIT get the store's messages. */
static GM_MUST_CHECK gm_status read_state(const char *name, const char *path, gm_buf *b,
                                          gm_error *err)
{
    gm_error e = {0};
    gm_status st = gm_buf_read_file(b, path, &e);
    if (st == GM_OK)
        return GM_OK;
    if (st == GM_ERR_NOT_FOUND)
        return gm_error_set(err, st, "no deployment named '%s' (looked in '%s')", name, path);
    if (st == GM_ERR_LIMIT)
        return gm_error_set(err, st,
                            "state file '%s' is larger than %u bytes; it was left as it is", path,
                            GM_LIMIT_STATE_FILE);
    return gm_error_set(err, st, "%s", e.message);
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
    *out = NULL;
    gm_status st = gm_store_check_name(name, err);
    if (st != GM_OK)
        return st;
    char *path = state_path(s, name);
    if (!path)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_STATE_FILE);
    st = read_state(name, path, &b, err);
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
    char *path = state_path(s, name);
    struct stat sb;
    bool found = path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
    free(path);
    return found;
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

/* Keeps the current file as NAME.json.bak, replacing the old backup in one
 * rename. old holds the current content for file systems without links. */
static GM_MUST_CHECK gm_status keep_backup(const gm_store *s, const char *name, const char *path,
                                           const gm_buf *old, gm_error *err)
{
    char *bak = gm_strfmt("%s/%s.json.bak", s->deployments, name);
    char *tmp = gm_strfmt("%s/.%s.json.bak.tmp.%ld", s->deployments, name, (long)getpid());
    gm_status st = GM_OK;
    bool created = false;
    if (!bak || !tmp) {
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        goto done;
    }
    (void)unlink(tmp); /* a leftover of a dead process with our pid */
    if (link(path, tmp) == 0) {
        created = true;
    } else if (errno == EPERM || errno == EOPNOTSUPP || errno == EMLINK || errno == ENOSYS) {
        st = write_new_file(tmp, old->data ? old->data : "", old->len, &created, err);
    } else {
        st = io_error(err, "create backup", tmp, errno);
    }
    if (st == GM_OK && rename(tmp, bak) != 0)
        st = io_error(err, "replace backup", bak, errno);
    if (st == GM_OK)
        created = false;
done:
    if (created)
        (void)unlink(tmp);
    free(bak);
    free(tmp);
    return st;
}

static GM_MUST_CHECK gm_status save_locked(gm_store *s, gm_deployment *d, gm_error *err)
{
    gm_status st = gm_store_check_name(d->name, err);
    if (st != GM_OK)
        return st;
    const char *name = d->name;
    char *path = state_path(s, name);
    char *tmp = gm_strfmt("%s/.%s.json.tmp.%ld", s->deployments, name, (long)getpid());
    json_t *j = NULL;
    gm_buf text, old;
    gm_buf_init(&text, GM_LIMIT_STATE_FILE);
    gm_buf_init(&old, GM_LIMIT_STATE_FILE);
    bool tmp_created = false, have_old = false;
    if (!path || !tmp) {
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        goto done;
    }

    j = gm_deployment_to_json(d);
    if (!j) {
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory saving deployment '%s'", name);
        goto done;
    }
    dump_ctx ctx = {&text, GM_OK};
    if (json_dump_callback(j, dump_to_buf, &ctx, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
        (ctx.st = gm_buf_appendc(&text, '\n')) != GM_OK) {
        if (ctx.st == GM_ERR_LIMIT)
            st = gm_error_set(err, GM_ERR_LIMIT,
                              "state of '%s' is larger than %u bytes; it was not saved", name,
                              GM_LIMIT_STATE_FILE);
        else
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory saving deployment '%s'", name);
        goto done;
    }

    /* Never replace a file we could not load ourselves. */
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        gm_error e = {0};
        gm_deployment *cur = NULL;
        st = read_state(name, path, &old, &e);
        if (st == GM_OK)
            st = parse_state(name, path, &old, &cur, &e);
        gm_deployment_free(cur);
        if (st != GM_OK) {
            if (st != GM_ERR_IO && st != GM_ERR_NOMEM)
                st = GM_ERR_CONFLICT;
            st = gm_error_set(err, st, "refusing to replace state file: %s", e.message);
            goto done;
        }
        have_old = true;
    } else if (errno != ENOENT) {
        st = io_error(err, "inspect", path, errno);
        goto done;
    }

    st = write_new_file(tmp, text.data, text.len, &tmp_created, err);
    if (st == GM_OK && have_old)
        st = keep_backup(s, name, path, &old, err);
    if (st == GM_OK && rename(tmp, path) != 0)
        st = io_error(err, "replace", path, errno);
    if (st == GM_OK) {
        tmp_created = false;
        st = sync_dir(s->deployments, err);
    }
done:
    if (tmp_created)
        (void)unlink(tmp);
    json_decref(j);
    gm_buf_release(&text);
    gm_buf_release(&old);
    free(path);
    free(tmp);
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

gm_status gm_store_list(gm_store *s, char ***out_names, size_t *out_n, gm_error *err)
{
    *out_names = NULL;
    *out_n = 0;
    DIR *dir = opendir(s->deployments);
    if (!dir)
        return io_error(err, "open directory", s->deployments, errno);
    char **names = NULL;
    size_t n = 0, cap = 0;
    gm_status st = GM_OK;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(dir)) != NULL) {
        const char *f = e->d_name;
        size_t len = strlen(f);
        if (f[0] == '.' || len <= 5 || strcmp(f + len - 5, ".json") != 0)
            continue;
        char *name = strndup(f, len - 5);
        if (!name) {
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
            break;
        }
        if (!gm_store_valid_name(name)) {
            free(name);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **grown = realloc(names, ncap * sizeof *grown);
            if (!grown) {
                free(name);
                st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
                break;
            }
            names = grown;
            cap = ncap;
        }
        names[n++] = name;
        errno = 0;
    }
    if (st == GM_OK && errno != 0)
        st = io_error(err, "read directory", s->deployments, errno);
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

/* Moves src to dst unless dst exists (EEXIST). */
static int move_noreplace(const char *src, const char *dst)
{
    if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
        return -1;
    /* No RENAME_NOREPLACE here: link (which never replaces), then unlink. */
    if (link(src, dst) != 0)
        return -1;
    return unlink(src);
}

static GM_MUST_CHECK gm_status archive_locked(gm_store *s, const char *name, char **out_path,
                                              gm_error *err)
{
    char *src = state_path(s, name);
    char *bak = gm_strfmt("%s/%s.json.bak", s->deployments, name);
    char *dst = NULL;
    gm_status st = GM_OK;
    if (!src || !bak) {
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        goto done;
    }
    struct stat sb;
    if (lstat(src, &sb) != 0) {
        if (errno == ENOENT)
            st = gm_error_set(err, GM_ERR_NOT_FOUND, "no deployment named '%s' (looked in '%s')",
                              name, src);
        else
            st = io_error(err, "inspect", src, errno);
        goto done;
    }
    time_t now = (time_t)(gm_wall_ms() / 1000);
    struct tm tm;
    char stamp[32];
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    for (int k = 0;; k++) {
        free(dst);
        dst = k ? gm_strfmt("%s/%s-%s-%d.json", s->archive, name, stamp, k)
                : gm_strfmt("%s/%s-%s.json", s->archive, name, stamp);
        if (!dst) {
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (move_noreplace(src, dst) == 0)
            break;
        if (errno != EEXIST || k >= 1000) {
            st = gm_error_set(err, GM_ERR_IO, "cannot move '%s' to '%s': %s", src, dst,
                              strerror(errno));
            goto done;
        }
    }
    if (unlink(bak) != 0 && errno != ENOENT) {
        st = io_error(err, "remove", bak, errno);
        goto done;
    }
    st = sync_dir(s->archive, err);
    if (st == GM_OK)
        st = sync_dir(s->deployments, err);
    if (st == GM_OK && out_path) {
        *out_path = dst;
        dst = NULL;
    }
done:
    free(src);
    free(bak);
    free(dst);
    return st;
}

gm_status gm_store_archive(gm_store *s, const char *name, char **out_path, gm_error *err)
{
    if (out_path)
        *out_path = NULL;
    gm_status st = gm_store_check_name(name, err);
    if (st != GM_OK)
        return st;
    pthread_mutex_lock(&s->mu);
    st = archive_locked(s, name, out_path, err);
    pthread_mutex_unlock(&s->mu);
    return st;
}
