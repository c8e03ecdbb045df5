#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/timeutil.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file;
static bool log_verbose;
static char log_deployment[128];

gm_status gm_log_open(const char *path, gm_error *err)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return gm_error_set(err, GM_ERR_IO, "cannot open log file '%s': %s", path, strerror(errno));
    FILE *f = fdopen(fd, "a");
    if (!f) {
        close(fd);
        return gm_error_set(err, GM_ERR_IO, "cannot open log file '%s': %s", path, strerror(errno));
    }
    pthread_mutex_lock(&log_lock);
    if (log_file)
        fclose(log_file);
    log_file = f;
    pthread_mutex_unlock(&log_lock);
    return GM_OK;
}

void gm_log_close(void)
{
    pthread_mutex_lock(&log_lock);
    if (log_file)
        fclose(log_file);
    log_file = NULL;
    pthread_mutex_unlock(&log_lock);
}

void gm_log_set_verbose(bool verbose)
{
    log_verbose = verbose;
}

void gm_log_set_deployment(const char *name)
{
    pthread_mutex_lock(&log_lock);
    snprintf(log_deployment, sizeof log_deployment, "%s", name ? name : "");
    pthread_mutex_unlock(&log_lock);
}

static const char *level_name(gm_log_level l)
{
    switch (l) {
    case GM_LOG_DEBUG: return "debug";
    case GM_LOG_INFO: return "info";
    case GM_LOG_WARN: return "warn";
    case GM_LOG_ERROR: return "error";
    }
    return "info";
}

void gm_log_event(gm_log_level level, const char *event, json_t *fields)
{
    if (!log_file && !log_verbose) {
        json_decref(fields);
        return;
    }
    json_t *o = json_object();
    if (!o) {
        json_decref(fields);
        return;
    }
    int64_t now = gm_wall_ms();
    char ts[40], iso[32];
    gm_time_iso8601((time_t)(now / 1000), iso);
    snprintf(ts, sizeof ts, "%.19s.%03dZ", iso, (int)(now % 1000));
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level_name(level)));
    json_object_set_new(o, "event", json_string(event));
    pthread_mutex_lock(&log_lock);
    if (*log_deployment)
        json_object_set_new(o, "deployment", json_string(log_deployment));
    if (fields)
        json_object_update(o, fields);
    if (log_file) {
        char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (line) {
            fprintf(log_file, "%s\n", line);
            fflush(log_file);
            free(line);
        }
    }
    if (log_verbose) {
        /* Readable form: "12:00:01.123 event key=value ..." */
        fprintf(stderr, "%.8s %s", ts + 11, event);
        const char *key;
        json_t *val;
        json_object_foreach (fields, key, val) {
            char *v = json_is_string(val) ? NULL : json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
            fprintf(stderr, " %s=%s", key, v ? v : json_string_value(val));
            free(v);
        }
        fputc('\n', stderr);
    }
    pthread_mutex_unlock(&log_lock);
    json_decref(fields);
    json_decref(o);
}
