/* The list index (state/store.h): deployments/.index.json, a cache of reduced
 * records keyed by the identity of each record's file.
 *
 * Layout: {"index": 1, "version": "<caller's version>",
 *          "records": {"NAME": {"file": [ino, size, mtime_ns, ctime_ns],
 *                               "record": {reduced record}}, ...}}
 */
#include "state/store.h"
#include "state/store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/str.h"

#define INDEX_FILE ".index.json"
#define INDEX_TMP_PREFIX ".index.json."
#define INDEX_TMP_SUFFIX ".tmp"
#define INDEX_FORMAT 1
#define INDEX_LIMIT (256u * 1024u * 1024u)

/* The identity of a record file: what changes whenever it is replaced. */
static json_t *file_id(const struct stat *sb)
{
    return json_pack("[I, I, I, I]", (json_int_t)sb->st_ino, (json_int_t)sb->st_size,
                     (json_int_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec,
                     (json_int_t)sb->st_ctim.tv_sec * 1000000000 + sb->st_ctim.tv_nsec);
}

/* The index's records when it is there, safe, whole and of this version;
 * NULL otherwise (rebuilt). An unsafe index is an error like an unsafe
 * record. */
static GM_MUST_CHECK gm_status load_index(gm_store *s, int dirfd, const char *version, json_t **out,
                                          gm_error *err)
{
    *out = NULL;
    char *path = gm_strfmt("%s/%s", gm_store_dir_path(s, D_DEPLOYMENTS), INDEX_FILE);
    if (!path)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    int fd = -1;
    gm_status st = gm_store_open_at(s, dirfd, INDEX_FILE, path, O_RDONLY, false, &fd, err);
    gm_buf b;
    gm_buf_init(&b, INDEX_LIMIT);
    gm_error ignored = {0};
    if (st == GM_OK && gm_store_read_all(fd, path, &b, &ignored) == GM_OK) {
        json_t *j = json_loadb(gm_buf_cstr(&b), b.len, JSON_REJECT_DUPLICATES, NULL);
        json_t *recs = json_object_get(j, "records");
        const char *v = json_string_value(json_object_get(j, "version"));
        if (json_integer_value(json_object_get(j, "index")) == INDEX_FORMAT && v &&
            strcmp(v, version) == 0 && json_is_object(recs))
            *out = json_incref(recs);
        json_decref(j);
    }
    if (fd >= 0)
        close(fd);
    gm_buf_release(&b);
    free(path);
    return st == GM_ERR_NOT_FOUND ? GM_OK : st;
}

/* Removes index temporaries whose writer is dead (kill(pid, 0): ESRCH). */
static void tidy_index_temps(int dirfd)
{
    DIR *d = gm_store_opendir(dirfd);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *f = e->d_name;
        if (!gm_str_startswith(f, INDEX_TMP_PREFIX))
            continue;
        char *end = NULL;
        long pid = strtol(f + strlen(INDEX_TMP_PREFIX), &end, 10);
        if (pid > 0 && end && strcmp(end, INDEX_TMP_SUFFIX) == 0 && kill((pid_t)pid, 0) != 0 &&
            errno == ESRCH)
            (void)unlinkat(dirfd, f, 0);
    }
    closedir(d);
}

/* Writes the index: best effort and not synced (it is a cache checked against
 * every record file, and the listing is right without it). */
static void save_index(gm_store *s, int dirfd, const char *version, json_t *records)
{
    json_t *doc =
        json_pack("{s:i, s:s, s:O}", "index", INDEX_FORMAT, "version", version, "records", records);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(doc);
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s%ld%s", INDEX_TMP_PREFIX, (long)getpid(), INDEX_TMP_SUFFIX);
    char *path = gm_strfmt("%s/%s", gm_store_dir_path(s, D_DEPLOYMENTS), tmp);
    bool created = false;
    gm_error ignored = {0};
    if (text && path) {
        tidy_index_temps(dirfd);
        if (gm_store_write_new(dirfd, tmp, path, text, strlen(text), false, &created, &ignored) ==
                GM_OK &&
            renameat(dirfd, tmp, dirfd, INDEX_FILE) == 0)
            created = false;
    }
    if (created)
        (void)unlinkat(dirfd, tmp, 0);
    free(path);
    free(text);
}

/* The cached reduced record of name when its entry matches the file. */
static json_t *cached(json_t *index, const char *name, const json_t *id)
{
    json_t *entry = json_object_get(index, name);
    if (!entry || !json_equal(json_object_get(entry, "file"), id))
        return NULL;
    return json_object_get(entry, "record");
}

/* Reduces the record name afresh: its entry goes into fresh (not for an
 * unreadable record, whose error goes into v). */
static GM_MUST_CHECK gm_status reduce(gm_store *s, const char *name, json_t *id,
                                      gm_store_reduce_fn fn, json_t *fresh, gm_store_view *v,
                                      json_t **out, gm_error *err)
{
    *out = NULL;
    gm_deployment *d = NULL;
    gm_error lerr = {0};
    gm_status st = gm_store_load_tidy(s, name, false, &d, &lerr); /* tidied by the list */
    if (st == GM_ERR_NOT_FOUND)
        return st; /* removed since it was listed */
    if (st == GM_ERR_INVALID || st == GM_ERR_NOMEM)
        return gm_error_set(err, st, "%s", lerr.message); /* unsafe: the listing fails */
    if (st != GM_OK) {
        v->error = strdup(lerr.message);
        return v->error ? GM_OK : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    json_t *rec = fn(d);
    gm_deployment_free(d);
    if (!rec ||
        json_object_set_new(fresh, name, json_pack("{s:O, s:O}", "file", id, "record", rec)) != 0) {
        json_decref(rec);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    *out = rec;
    json_decref(rec); /* fresh holds it */
    return GM_OK;
}

/* One view: from the index when the file is unchanged, else loaded anew.
 * *changed when the index must be written. */
static GM_MUST_CHECK gm_status view_of(gm_store *s, int dirfd, json_t *index, json_t *fresh,
                                       gm_store_reduce_fn fn, gm_store_view *v, bool *changed,
                                       gm_error *err)
{
    char file[GM_NAME_MAX + 8];
    snprintf(file, sizeof file, "%s.json", v->name);
    struct stat sb;
    if (fstatat(dirfd, file, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? GM_ERR_NOT_FOUND
                               : gm_store_io_error(err, "inspect", file, errno); /* gone: skip */
    json_t *id = file_id(&sb);
    if (!id)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    json_t *rec = cached(index, v->name, id);
    gm_status st = GM_OK;
    if (rec) {
        if (json_object_set(fresh, v->name, json_object_get(index, v->name)) != 0)
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    } else {
        *changed = true;
        st = reduce(s, v->name, id, fn, fresh, v, &rec, err);
    }
    json_decref(id);
    if (st == GM_OK && rec) {
        gm_error perr = {0}; /* from_json never changes what it reads */
        if (gm_deployment_from_json(rec, &v->dep, &perr) != GM_OK)
            v->error = strdup(perr.message);
    }
    return st;
}

void gm_store_views_free(gm_store_view *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].name);
        gm_deployment_free(v[i].dep);
        free(v[i].error);
    }
    free(v);
}

/* The views of names[0..n) (taking the names); *out_n may end below n when
 * records vanish meanwhile. */
static GM_MUST_CHECK gm_status views_of(gm_store *s, int dirfd, const char *version,
                                        gm_store_reduce_fn fn, char **names, size_t n,
                                        gm_store_view *views, size_t *out_n, gm_error *err)
{
    json_t *index = NULL;
    gm_status st = load_index(s, dirfd, version, &index, err);
    json_t *fresh = json_object();
    if (st == GM_OK && !fresh)
        st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    bool changed = !index;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        views[k].name = names[i];
        names[i] = NULL;
        gm_status vs =
            st == GM_OK ? view_of(s, dirfd, index, fresh, fn, &views[k], &changed, err) : GM_OK;
        if (vs == GM_ERR_NOT_FOUND) {
            free(views[k].name); /* removed since it was listed */
            views[k].name = NULL;
            continue;
        }
        st = st == GM_OK ? vs : st;
        k++;
    }
    *out_n = k;
    if (st == GM_OK && (changed || json_object_size(fresh) != json_object_size(index)))
        save_index(s, dirfd, version, fresh);
    json_decref(index);
    json_decref(fresh);
    return st;
}

gm_status gm_store_list_views(gm_store *s, const char *version, gm_store_reduce_fn fn,
                              gm_store_view **out, size_t *out_n, gm_error *err)
{
    *out = NULL;
    *out_n = 0;
    char **names = NULL;
    size_t n = 0;
    gm_status st = gm_store_list(s, &names, &n, err);
    int dirfd = -1;
    if (st == GM_OK && n)
        st = gm_store_dir_fd(s, D_DEPLOYMENTS, &dirfd, err);
    if (st != GM_OK || !n || dirfd < 0) {
        gm_store_list_free(names, n);
        return st;
    }
    gm_store_view *views = calloc(n, sizeof *views);
    size_t k = 0;
    st = views ? views_of(s, dirfd, version, fn, names, n, views, &k, err)
               : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_store_list_free(names, n);
    if (st != GM_OK) {
        gm_store_views_free(views, views ? n : 0);
        return st;
    }
    *out = views;
    *out_n = k;
    return GM_OK;
}
