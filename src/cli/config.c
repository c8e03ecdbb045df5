/* Settings from the environment and the configuration files (cli/config.h). */
#include "cli/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "core/str.h"
#include "state/store.h"

#define PROJECT_FILE "geusemaker.yaml"
#define USER_FILE "config.yaml"
#define MAX_VALUES 16

static gm_setting *settings;
static size_t n_settings;
static bool loaded;
static gm_status load_status;
static gm_error load_error;

static bool is_global(const gm_opt *o)
{
    const gm_optgroup *g = &gm_cli_global_group;
    return o >= g->opts && o < g->opts + g->n;
}

bool gm_cli_is_setting(const gm_opt *o)
{
    static const char *const globals[] = {"region", "profile", "output", "no-color", NULL};
    if (!is_global(o))
        return (o->flags & GM_OPT_CONFIG) || strcmp(o->name, "name") == 0;
    for (int i = 0; globals[i]; i++)
        if (strcmp(o->name, globals[i]) == 0)
            return true;
    return false;
}

/* The option key names, a setting of some command (or of every one). */
static const gm_opt *setting_opt(const char *key)
{
    for (size_t i = 0; i < gm_cli_global_group.n; i++)
        if (strcmp(gm_cli_global_group.opts[i].name, key) == 0 &&
            gm_cli_is_setting(&gm_cli_global_group.opts[i]))
            return &gm_cli_global_group.opts[i];
    size_t n = 0;
    const gm_command *const *cmds = gm_cli_commands(&n);
    for (size_t c = 0; c < n; c++)
        for (size_t g = 0; g < 4 && cmds[c]->groups[g]; g++)
            for (size_t i = 0; i < cmds[c]->groups[g]->n; i++) {
                const gm_opt *o = &cmds[c]->groups[g]->opts[i];
                if (strcmp(o->name, key) == 0 && gm_cli_is_setting(o))
                    return o;
            }
    return NULL;
}

/* The closest setting key to key, for a suggestion (NULL: none close). */
static const char *nearest_key(const char *key)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1, n = 0;
    const gm_command *const *cmds = gm_cli_commands(&n);
    for (size_t c = 0; c <= n; c++) {
        const gm_optgroup *groups[5] = {&gm_cli_global_group};
        if (c < n)
            memcpy(groups, cmds[c]->groups, sizeof cmds[c]->groups);
        for (size_t g = 0; g < 5 && groups[g]; g++)
            for (size_t i = 0; i < groups[g]->n; i++) {
                const gm_opt *o = &groups[g]->opts[i];
                size_t d = gm_edit_distance(key, o->name);
                if (gm_cli_is_setting(o) && d < best_d) {
                    best_d = d;
                    best = o->name;
                }
            }
    }
    return best && best_d <= 2 && best_d * 3 <= strlen(key) + 2 ? best : NULL;
}

const gm_setting *gm_cli_setting(const char *key)
{
    for (size_t i = 0; i < n_settings; i++)
        if (strcmp(settings[i].key, key) == 0)
            return &settings[i];
    return NULL;
}

static void free_values(gm_setting *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->values[i]);
    free(s->values);
    s->values = NULL;
    s->n = 0;
}

/* Replaces key's values (a later source overrides an earlier one). */
static GM_MUST_CHECK gm_status put(const gm_opt *o, char **values, size_t n, gm_setting_source src,
                                   const char *where, gm_error *err)
{
    gm_setting *s = (gm_setting *)gm_cli_setting(o->name);
    if (!s) {
        gm_setting *v = realloc(settings, (n_settings + 1) * sizeof *v);
        if (!v)
            return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        settings = v;
        s = &settings[n_settings++];
        memset(s, 0, sizeof *s);
        s->key = o->name;
    }
    free_values(s);
    s->values = calloc(n ? n : 1, sizeof *s->values);
    for (size_t i = 0; s->values && i < n; i++)
        if ((s->values[i] = strdup(values[i])))
            s->n++;
    s->source = src;
    snprintf(s->where, sizeof s->where, "%s", where);
    return s->n == n ? GM_OK : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
}

/* "true"/"false" from the spellings YAML and shells use; NULL otherwise. */
static const char *boolean(const char *v)
{
    static const char *const yes[] = {"true", "yes", "on", "1", NULL};
    static const char *const no[] = {"false", "no", "off", "0", NULL};
    for (int i = 0; yes[i]; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return "true";
        if (strcasecmp(v, no[i]) == 0)
            return "false";
    }
    return NULL;
}

/* ---- the files ----------------------------------------------------------------- */

typedef struct file_ctx {
    const char *path;
    yaml_document_t *doc;
    gm_setting_source src;
    gm_error *err;
} file_ctx;

static GM_MUST_CHECK gm_status bad(const file_ctx *f, const yaml_node_t *at, const char *fmt,
                                   const char *key)
{
    char what[256];
    snprintf(what, sizeof what, fmt, key);
    return gm_error_set(f->err, GM_ERR_INVALID, "%s:%zu: %s", f->path,
                        (size_t)at->start_mark.line + 1, what);
}

/* The values of one key's node: a scalar, or a sequence of scalars for a
 * repeatable option; flags take a boolean. */
static GM_MUST_CHECK gm_status node_values(const file_ctx *f, const gm_opt *o, yaml_node_t *v,
                                           char **out, size_t *n)
{
    *n = 0;
    if (v->type == YAML_SEQUENCE_NODE && !(o->flags & GM_OPT_REPEAT))
        return bad(f, v, "'%s' takes one value, not a list", o->name);
    if (v->type == YAML_MAPPING_NODE)
        return bad(f, v, "'%s' takes a value, not a mapping", o->name);
    yaml_node_item_t *it = v->type == YAML_SEQUENCE_NODE ? v->data.sequence.items.start : NULL;
    size_t count = it ? (size_t)(v->data.sequence.items.top - it) : 1;
    if (count > MAX_VALUES || count == 0)
        return bad(f, v, "'%s' has no values, or too many", o->name);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *s = it ? yaml_document_get_node(f->doc, it[i]) : v;
        if (!s || s->type != YAML_SCALAR_NODE)
            return bad(f, v, "'%s' takes plain values", o->name);
        const char *text = (const char *)s->data.scalar.value;
        if (!*text)
            return bad(f, s, "'%s' has an empty value", o->name);
        if (!o->arg && !(text = boolean(text)))
            return bad(f, s, "'%s' is a flag: true or false", o->name);
        out[(*n)++] = (char *)text;
    }
    return GM_OK;
}

static GM_MUST_CHECK gm_status read_pairs(const file_ctx *f, yaml_node_t *root)
{
    gm_status st = GM_OK;
    char *seen[64];
    size_t n_seen = 0;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         st == GM_OK && p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(f->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(f->doc, p->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE)
            return bad(f, root, "%s", "keys must be plain option names");
        const char *key = (const char *)k->data.scalar.value;
        const gm_opt *o = setting_opt(key);
        if (!o) {
            const char *near = nearest_key(key);
            char msg[160];
            snprintf(msg, sizeof msg, "unknown key '%%s'%s%s%s", near ? " (did you mean '" : "",
                     near ? near : "", near ? "'?)" : "");
            return bad(f, k, msg, key);
        }
        for (size_t i = 0; i < n_seen; i++)
            if (strcmp(seen[i], key) == 0)
                return bad(f, k, "'%s' is given twice", key);
        if (n_seen < 64)
            seen[n_seen++] = (char *)key;
        char *values[MAX_VALUES];
        size_t n = 0;
        char where[320];
        snprintf(where, sizeof where, "%s:%zu", f->path, (size_t)k->start_mark.line + 1);
        st = node_values(f, o, v, values, &n);
        if (st == GM_OK)
            st = put(o, values, n, f->src, where, f->err);
    }
    return st;
}

/* The file at path as a stream, when it exists: owned by the caller, not
 * writable by group or others, not a symlink (someone who can change it
 * decides what a deploy does), like the state folder. *out NULL: none. */
static GM_MUST_CHECK gm_status open_checked(const char *path, FILE **out, gm_error *err)
{
    *out = NULL;
    struct stat lst;
    if (lstat(path, &lst) != 0)
        return errno == ENOENT
                   ? GM_OK
                   : gm_error_set(err, GM_ERR_INVALID, "cannot read %s: %s", path, strerror(errno));
    char target[PATH_MAX] = "";
    if (S_ISLNK(lst.st_mode)) {
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n > 0 ? n : 0] = '\0';
    }
    gm_status st = gm_store_check_stat(path, &lst, target, geteuid(), false, err);
    if (st != GM_OK)
        return st;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat fst;
    if (fd < 0 || fstat(fd, &fst) != 0 || fst.st_ino != lst.st_ino || fst.st_dev != lst.st_dev) {
        if (fd >= 0)
            close(fd);
        return gm_error_set(err, GM_ERR_INVALID, "cannot read %s: it changed while it was opened",
                            path);
    }
    if (!(*out = fdopen(fd, "rb"))) {
        close(fd);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    return GM_OK;
}

static GM_MUST_CHECK gm_status read_file(const char *path, gm_setting_source src, gm_error *err)
{
    FILE *fp = NULL;
    gm_status st = open_checked(path, &fp, err);
    if (st != GM_OK || !fp)
        return st;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    yaml_parser_set_input_file(&parser, fp);
    if (!yaml_parser_load(&parser, &doc)) {
        st = gm_error_set(err, GM_ERR_INVALID, "%s:%zu: not valid YAML: %s", path,
                          (size_t)parser.problem_mark.line + 1,
                          parser.problem ? parser.problem : "unreadable");
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        file_ctx f = {.path = path, .doc = &doc, .src = src, .err = err};
        if (root && root->type == YAML_SCALAR_NODE && !*root->data.scalar.value)
            root = NULL; /* an empty document */
        if (root && root->type != YAML_MAPPING_NODE)
            st = bad(&f, root, "%s", "the file must be a mapping of option names to values");
        else if (root)
            st = read_pairs(&f, root);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    fclose(fp);
    return st;
}

/* ---- the environment -------------------------------------------------------------- */

/* GEUSEMAKER_ALLOW_CIDR for "allow-cidr". */
static void env_name(const char *key, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "GEUSEMAKER_");
    for (const char *p = key; *p && n + 1 < size; p++)
        out[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    out[n] = '\0';
}

static GM_MUST_CHECK gm_status read_env(const gm_opt *o, gm_error *err)
{
    char name[96];
    env_name(o->name, name, sizeof name);
    const char *v = getenv(name);
    if (!v || !*v)
        return GM_OK;
    char *copy = strdup(v);
    char *values[MAX_VALUES];
    size_t n = 0;
    gm_status st = copy ? GM_OK : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    for (char *save = NULL, *tok = copy ? strtok_r(copy, ",", &save) : NULL; st == GM_OK && tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (n == MAX_VALUES || (n == 1 && !(o->flags & GM_OPT_REPEAT)))
            st = gm_error_set(err, GM_ERR_INVALID, "%s takes one value", name);
        else if (!o->arg && !(tok = (char *)boolean(tok)))
            st = gm_error_set(err, GM_ERR_INVALID, "invalid %s '%.64s': expected true or false",
                              name, v);
        else
            values[n++] = tok;
    }
    if (st == GM_OK && n == 0)
        st = gm_error_set(err, GM_ERR_INVALID, "invalid %s '%.64s': no value", name, v);
    if (st == GM_OK)
        st = put(o, values, n, GM_SRC_ENV, name, err);
    free(copy);
    return st;
}

static GM_MUST_CHECK gm_status read_all_env(gm_error *err)
{
    gm_status st = GM_OK;
    size_t n = 0;
    const gm_command *const *cmds = gm_cli_commands(&n);
    for (size_t i = 0; st == GM_OK && i < gm_cli_global_group.n; i++)
        if (gm_cli_is_setting(&gm_cli_global_group.opts[i]))
            st = read_env(&gm_cli_global_group.opts[i], err);
    for (size_t c = 0; st == GM_OK && c < n; c++)
        for (size_t g = 0; st == GM_OK && g < 4 && cmds[c]->groups[g]; g++)
            for (size_t i = 0; st == GM_OK && i < cmds[c]->groups[g]->n; i++) {
                const gm_opt *o = &cmds[c]->groups[g]->opts[i];
                /* each key once: the first table that has it */
                if (gm_cli_is_setting(o) && setting_opt(o->name) == o)
                    st = read_env(o, err);
            }
    return st;
}

/* ---- loading ---------------------------------------------------------------------- */

const char *gm_cli_project_config_path(void)
{
    return "./" PROJECT_FILE;
}

char *gm_cli_user_config_path(void)
{
    gm_store *store = NULL;
    gm_error err = {0};
    if (gm_store_open(NULL, &store, &err) != GM_OK)
        return NULL; /* no usable state home: the commands that need one say why */
    char *path = gm_strfmt("%s/%s", gm_store_home(store), USER_FILE);
    gm_store_free(store);
    return path;
}

gm_status gm_cli_settings_load(gm_error *err)
{
    if (!loaded) {
        loaded = true;
        char *user = gm_cli_user_config_path();
        load_status = user ? read_file(user, GM_SRC_USER, &load_error) : GM_OK;
        free(user);
        if (load_status == GM_OK)
            load_status = read_file(gm_cli_project_config_path(), GM_SRC_PROJECT, &load_error);
        if (load_status == GM_OK)
            load_status = read_all_env(&load_error);
    }
    if (load_status != GM_OK)
        *err = load_error;
    return load_status;
}
