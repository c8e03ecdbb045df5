/* The default credential provider chain.
 *
 * The chain is a table of providers tried in order (CHAIN below). Each one
 * either fills the credentials (done), reports "not configured" (next one),
 * or fails (the chain stops: a source that is configured but broken must not
 * silently hand over to a different identity). Every provider adds a short
 * description of what it looked at to the "tried" list used by the final
 * "no aws credentials found" message.
 *
 * Order, as botocore (the AWS CLI) has it:
 *   1. environment      AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
 *   2. assume-role      role_arn in the profile             (slot: not supported yet)
 *   3. web identity     AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, or the
 *                       profile's web_identity_token_file (slot: not supported yet)
 *   4. sso              sso_start_url / sso_session           (slot: not supported yet)
 *   5. shared credentials file static keys of [NAME]
 *   6. config file      static keys of [profile NAME] / [default]
 *   7. credential_process of the profile (credentials file first, then config)
 *   8. IMDSv2
 * botocore runs credential_process before the config file's static keys;
 * here static keys of either file beat credential_process (a profile rarely
 * has both, and static keys are the cheaper, more explicit choice).
 *
 * Secrets: values are never formatted into messages. Buffers that held a
 * file, process output or an IMDS answer are wiped before they are freed.
 */
#include "aws/credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aws/ini.h"
#include "core/buf.h"
#include "core/str.h"
#include "core/timeutil.h"

extern char **environ;

#define PROCESS_TIMEOUT_DEFAULT_MS 60000L
#define IMDS_TIMEOUT_DEFAULT_MS 1000L
#define IMDS_TOKEN_TTL_SECONDS "21600"
#define IMDS_ENDPOINT_IPV4 "http://169.254.169.254"
#define IMDS_ENDPOINT_IPV6 "http://[fd00:ec2::254]"
#define IMDS_ROLE_PATH "/latest/meta-data/iam/security-credentials/"

/* ---------------------------------------------------------------------- */
/* Small helpers                                                          */

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void wipe_buf(gm_buf *b)
{
    if (b->data)
        explicit_bzero(b->data, b->cap);
    gm_buf_release(b);
}

/* Copies *src into *dst when dst holds no error yet. */
static gm_status error_move(gm_error *dst, const gm_error *src) /* like gm_error_set */
{
    if (dst && dst->status == GM_OK)
        *dst = *src;
    return src->status;
}

/* HOME, else the password database entry; NULL when neither is known.
 * *out_free is what the caller frees (NULL when nothing was allocated). */
static const char *home_dir(char **out_free)
{
    *out_free = NULL;
    const char *h = env_nonempty("HOME");
    if (h)
        return h;
    long size = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t n = size > 0 ? (size_t)size : 16384;
    char *buf = malloc(n);
    struct passwd pw, *res = NULL;
    if (!buf || getpwuid_r(getuid(), &pw, buf, n, &res) != 0 || !res || !res->pw_dir ||
        !*res->pw_dir) {
        free(buf);
        return NULL;
    }
    *out_free = strdup(res->pw_dir);
    free(buf);
    return *out_free;
}

/* The path from env_name (with "~/" expanded), else ~/.aws/<file>. NULL when
 * no home directory is known or memory runs out. */
static char *aws_file_path(const char *env_name, const char *file)
{
    const char *v = env_nonempty(env_name);
    char *home_alloc = NULL;
    const char *home = home_dir(&home_alloc);
    char *path = NULL;
    if (v) {
        if ((v[0] == '~' && (v[1] == '/' || v[1] == '\0')) && home)
            path = gm_strfmt("%s%s", home, v + 1);
        else
            path = gm_strdup(v);
    } else if (home) {
        path = gm_strfmt("%s/.aws/%s", home, file);
    }
    free(home_alloc);
    return path;
}

/* Credential values go into HTTP headers: printable ASCII, no spaces. */
static bool credential_value_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

/* Validates and copies the values into out (which must be zeroed). what names
 * the origin for messages; an invalid value fails with bad (GM_ERR_AUTH for
 * settings, GM_ERR_PARSE for documents). token may be NULL or "" (none). */
static GM_MUST_CHECK gm_status credentials_set(gm_credentials *out, const char *akid,
                                               const char *secret, const char *token,
                                               time_t expiration, const char *source,
                                               const char *what, gm_status bad, gm_error *err)
{
    if (!credential_value_ok(akid))
        return gm_error_set(err, bad, "%s has an empty or invalid access key id", what);
    if (!credential_value_ok(secret))
        return gm_error_set(err, bad, "%s has an empty or invalid secret access key", what);
    if (token && *token && !credential_value_ok(token))
        return gm_error_set(err, bad, "%s has an invalid session token", what);
    out->access_key_id = strdup(akid);
    out->secret_access_key = strdup(secret);
    out->session_token = token && *token ? strdup(token) : NULL;
    if (!out->access_key_id || !out->secret_access_key ||
        (token && *token && !out->session_token)) {
        gm_credentials_release(out);
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory copying credentials");
    }
    out->expiration = expiration;
    out->source = source;
    return GM_OK;
}

/* ---------------------------------------------------------------------- */
/* Public small functions                                                 */

void gm_credentials_release(gm_credentials *c)
{
    if (!c)
        return;
    wipe_free(c->access_key_id);
    wipe_free(c->secret_access_key);
    wipe_free(c->session_token);
    c->access_key_id = NULL;
    c->secret_access_key = NULL;
    c->session_token = NULL;
    c->expiration = 0;
    c->source = NULL;
}

gm_status gm_credentials_copy(gm_credentials *dst, const gm_credentials *src)
{
    memset(dst, 0, sizeof *dst);
    dst->access_key_id = gm_strdup(src->access_key_id);
    dst->secret_access_key = gm_strdup(src->secret_access_key);
    dst->session_token = gm_strdup(src->session_token);
    if ((src->access_key_id && !dst->access_key_id) ||
        (src->secret_access_key && !dst->secret_access_key) ||
        (src->session_token && !dst->session_token)) {
        gm_credentials_release(dst);
        return GM_ERR_NOMEM;
    }
    dst->expiration = src->expiration;
    dst->source = src->source;
    return GM_OK;
}

const char *gm_profile_name(const char *opts_profile)
{
    if (opts_profile && *opts_profile)
        return opts_profile;
    const char *env = env_nonempty("AWS_PROFILE");
    return env ? env : "default";
}

/* ---------------------------------------------------------------------- */
/* JSON documents: credential_process output and IMDS                     */

typedef struct json_fields {
    const char *what;   /* for messages: "credential_process output" */
    const char *token;  /* name of the session token member */
    const char *source; /* gm_credentials.source */
} json_fields;

/* A member that must be a string when present (null counts as absent). */
static GM_MUST_CHECK gm_status json_opt_string(json_t *root, const char *name, const char *what,
                                               const char **out, gm_error *err)
{
    *out = NULL;
    json_t *v = json_object_get(root, name);
    if (!v || json_is_null(v))
        return GM_OK;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return gm_error_set(err, GM_ERR_PARSE, "%s has a malformed '%s'", what, name);
    *out = json_string_value(v);
    return GM_OK;
}

static GM_MUST_CHECK gm_status json_credentials(json_t *root, const json_fields *f,
                                                gm_credentials *out, gm_error *err)
{
    const char *akid, *secret, *token, *exp_s;
    gm_status st;
    if ((st = json_opt_string(root, "AccessKeyId", f->what, &akid, err)) != GM_OK ||
        (st = json_opt_string(root, "SecretAccessKey", f->what, &secret, err)) != GM_OK ||
        (st = json_opt_string(root, f->token, f->what, &token, err)) != GM_OK ||
        (st = json_opt_string(root, "Expiration", f->what, &exp_s, err)) != GM_OK)
        return st;
    if (!akid || !*akid)
        return gm_error_set(err, GM_ERR_PARSE, "%s has no 'AccessKeyId'", f->what);
    if (!secret || !*secret)
        return gm_error_set(err, GM_ERR_PARSE, "%s has no 'SecretAccessKey'", f->what);
    time_t expiration = 0;
    if (exp_s && *exp_s) {
        expiration = gm_time_parse_iso8601(exp_s);
        if (expiration == (time_t)-1)
            return gm_error_set(err, GM_ERR_PARSE, "%s has a malformed 'Expiration'", f->what);
    }
    return credentials_set(out, akid, secret, token, expiration, f->source, f->what, GM_ERR_PARSE,
                           err);
}

static json_t *json_parse_object(const char *json, size_t len, const char *what, gm_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(json ? json : "", json ? len : 0, 0, &jerr);
    if (!root) {
        /* jerr.text may quote the input: report the position only. */
        gm_error_set(err, GM_ERR_PARSE, "%s is not valid json (line %d, column %d)", what,
                     jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        gm_error_set(err, GM_ERR_PARSE, "%s is not a json object", what);
        return NULL;
    }
    return root;
}

gm_status gm_credential_process_parse(const char *json, size_t len, gm_credentials *out,
                                      gm_error *err)
{
    static const json_fields f = {"credential_process output", "SessionToken",
                                  "credential-process"};
    memset(out, 0, sizeof *out);
    json_t *root = json_parse_object(json, len, f.what, err);
    if (!root)
        return GM_ERR_PARSE;
    gm_status st;
    json_t *ver = json_object_get(root, "Version");
    if (!ver)
        st = gm_error_set(err, GM_ERR_PARSE, "%s has no 'Version'", f.what);
    else if (!json_is_integer(ver) || json_integer_value(ver) != 1)
        st =
            gm_error_set(err, GM_ERR_PARSE, "%s has an unsupported 'Version' (expected 1)", f.what);
    else
        st = json_credentials(root, &f, out, err);
    json_decref(root);
    return st;
}

gm_status gm_imds_credentials_parse(const char *json, size_t len, gm_credentials *out,
                                    gm_error *err)
{
    static const json_fields f = {"instance metadata credentials", "Token", "imds"};
    memset(out, 0, sizeof *out);
    json_t *root = json_parse_object(json, len, f.what, err);
    if (!root)
        return GM_ERR_PARSE;
    gm_status st;
    json_t *code = json_object_get(root, "Code");
    if (code && !(json_is_string(code) && strcmp(json_string_value(code), "Success") == 0))
        st = gm_error_set(err, GM_ERR_PARSE, "%s report a failure (Code is not 'Success')", f.what);
    else
        st = json_credentials(root, &f, out, err);
    json_decref(root);
    return st;
}

/* ---------------------------------------------------------------------- */
/* The chain's shared context                                             */

typedef struct chain_ctx {
    const gm_credentials_options *opts;
    const char *profile;  /* the profile in effect */
    bool explicit_option; /* named by opts->profile */
    bool named;           /* named by opts->profile or AWS_PROFILE */

    bool files_loaded;
    char *cred_path, *config_path; /* NULL when no home directory is known */
    gm_ini *cred, *config;         /* NULL when the file does not exist */
    char *config_section;          /* section holding the profile in config, or NULL */
    bool in_cred;                  /* [NAME] present in the credentials file */

    gm_buf tried; /* "environment variables, shared credentials file ..." */
} chain_ctx;

static void tried_add(chain_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tried_add(chain_ctx *c, const char *fmt, ...)
{
    /* The list only explains a failure: a truncated one is acceptable. */
    if (c->tried.len)
        gm_ignore(gm_buf_appends(&c->tried, ", "));
    va_list ap;
    va_start(ap, fmt);
    gm_ignore(gm_buf_vprintf(&c->tried, fmt, ap));
    va_end(ap);
}

/* Loads one file; a missing file (or no path) leaves *doc NULL. */
static GM_MUST_CHECK gm_status load_optional(const char *path, gm_ini **doc, gm_error *err)
{
    *doc = NULL;
    if (!path)
        return GM_OK;
    gm_error local;
    gm_error_clear(&local);
    gm_status st = gm_ini_load_file(path, doc, &local);
    if (st == GM_ERR_NOT_FOUND)
        return GM_OK;
    if (st != GM_OK)
        return error_move(err, &local);
    return GM_OK;
}

/* The config file section of a profile: "[profile NAME]"; for "default",
 * "[profile default]" wins over "[default]" when both exist. */
static GM_MUST_CHECK gm_status config_section_of(const gm_ini *config, const char *profile,
                                                 char **out)
{
    *out = NULL;
    if (!config)
        return GM_OK;
    char *prefixed = gm_strfmt("profile %s", profile);
    if (!prefixed)
        return GM_ERR_NOMEM;
    if (gm_ini_has_section(config, prefixed)) {
        *out = prefixed;
        return GM_OK;
    }
    free(prefixed);
    if (strcmp(profile, "default") == 0 && gm_ini_has_section(config, "default")) {
        *out = strdup("default");
        return *out ? GM_OK : GM_ERR_NOMEM;
    }
    return GM_OK;
}

static GM_MUST_CHECK gm_status load_files(chain_ctx *c, gm_error *err)
{
    if (c->files_loaded)
        return GM_OK;
    c->files_loaded = true;
    c->cred_path = aws_file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    c->config_path = aws_file_path("AWS_CONFIG_FILE", "config");
    gm_status st = load_optional(c->cred_path, &c->cred, err);
    if (st == GM_OK)
        st = load_optional(c->config_path, &c->config, err);
    if (st != GM_OK)
        return st;
    c->in_cred = gm_ini_has_section(c->cred, c->profile);
    if (config_section_of(c->config, c->profile, &c->config_section) != GM_OK)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory reading the aws config file");
    if (c->named && !c->in_cred && !c->config_section)
        return gm_error_set(err, GM_ERR_INVALID, "profile '%s' not found in '%s' or '%s'",
                            c->profile, c->cred_path ? c->cred_path : "~/.aws/credentials",
                            c->config_path ? c->config_path : "~/.aws/config");
    return GM_OK;
}

/* A key of the profile, credentials file first, then config file (as the
 * CLI merges them). NULL when absent or empty. */
static const char *profile_get(const chain_ctx *c, const char *key)
{
    const char *v = c->in_cred ? gm_ini_get(c->cred, c->profile, key) : NULL;
    if (!v || !*v)
        v = c->config_section ? gm_ini_get(c->config, c->config_section, key) : NULL;
    return v && *v ? v : NULL;
}

static void chain_ctx_release(chain_ctx *c)
{
    free(c->cred_path);
    free(c->config_path);
    free(c->config_section);
    gm_ini_free(c->cred);
    gm_ini_free(c->config);
    gm_buf_release(&c->tried);
}

/* A provider: GM_OK with out->source set (found), GM_OK with out->source
 * NULL (not configured, try the next), or an error (stop). */
typedef gm_status (*provider_fn)(chain_ctx *c, gm_credentials *out, gm_error *err);

/* ---------------------------------------------------------------------- */
/* 1. Environment                                                         */

static GM_MUST_CHECK gm_status provider_environment(chain_ctx *c, gm_credentials *out,
                                                    gm_error *err)
{
    if (c->explicit_option) {
        /* As the CLI's --profile: an explicit profile beats the environment keys. */
        tried_add(c, "environment variables (skipped for explicit profile '%s')", c->profile);
        return GM_OK;
    }
    tried_add(c, "environment variables");
    const char *akid = env_nonempty("AWS_ACCESS_KEY_ID");
    const char *secret = env_nonempty("AWS_SECRET_ACCESS_KEY");
    if (!akid && !secret)
        return GM_OK;
    if (!secret)
        return gm_error_set(err, GM_ERR_AUTH,
                            "environment variable 'AWS_ACCESS_KEY_ID' is set but "
                            "'AWS_SECRET_ACCESS_KEY' is not");
    if (!akid)
        return gm_error_set(err, GM_ERR_AUTH,
                            "environment variable 'AWS_SECRET_ACCESS_KEY' is set but "
                            "'AWS_ACCESS_KEY_ID' is not");
    return credentials_set(out, akid, secret, env_nonempty("AWS_SESSION_TOKEN"), 0, "environment",
                           "the environment", GM_ERR_AUTH, err);
}

/* ---------------------------------------------------------------------- */
/* 2-4. Reserved slots: assume-role, web identity, SSO                    */

/* SLOT: assume-role (role_arn + source_profile / credential_source). When
 * implemented: resolve the source credentials, call STS AssumeRole, cache
 * until expiration. Until then a profile naming role_arn fails loudly. */
static GM_MUST_CHECK gm_status provider_assume_role(chain_ctx *c, gm_credentials *out,
                                                    gm_error *err)
{
    if (!profile_get(c, "role_arn"))
        return GM_OK; /* not configured */
    return gm_error_set(err, GM_ERR_AUTH,
                        "profile '%s' sets 'role_arn': assume-role profiles are not supported "
                        "yet",
                        c->profile);
}

/* SLOT: web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, or the
 * profile's web_identity_token_file + role_arn). When implemented: read the
 * token file, call STS AssumeRoleWithWebIdentity (unsigned). */
static GM_MUST_CHECK gm_status provider_web_identity(chain_ctx *c, gm_credentials *out,
                                                     gm_error *err)
{
    bool env = env_nonempty("AWS_WEB_IDENTITY_TOKEN_FILE") && env_nonempty("AWS_ROLE_ARN");
    if (!env && !profile_get(c, "web_identity_token_file"))
        return GM_OK; /* not configured */
    return gm_error_set(err, GM_ERR_AUTH, "web identity credentials (%s) are not supported yet",
                        env ? "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN"
                            : "'web_identity_token_file' in the profile");
}

/* SLOT: IAM Identity Center (sso_session / sso_start_url). When implemented:
 * read the cached token under ~/.aws/sso/cache, call GetRoleCredentials. */
static GM_MUST_CHECK gm_status provider_sso(chain_ctx *c, gm_credentials *out, gm_error *err)
{
    if (!profile_get(c, "sso_session") && !profile_get(c, "sso_start_url"))
        return GM_OK; /* not configured */
    return gm_error_set(err, GM_ERR_AUTH,
                        "profile '%s' uses sso: sso profiles are not supported yet "
                        "(run 'aws configure export-credentials' or use static keys)",
                        c->profile);
}

/* ---------------------------------------------------------------------- */
/* 5-6. Static keys in the shared files                                   */

static GM_MUST_CHECK gm_status static_keys(chain_ctx *c, const gm_ini *doc, const char *section,
                                           const char *path, const char *source,
                                           gm_credentials *out, gm_error *err)
{
    const char *akid = gm_ini_get(doc, section, "aws_access_key_id");
    const char *secret = gm_ini_get(doc, section, "aws_secret_access_key");
    bool has_akid = akid && *akid, has_secret = secret && *secret;
    if (!has_akid && !has_secret)
        return GM_OK;
    if (has_akid != has_secret)
        return gm_error_set(err, GM_ERR_AUTH, "profile '%s' in '%s' sets '%s' but not '%s'",
                            c->profile, path,
                            has_akid ? "aws_access_key_id" : "aws_secret_access_key",
                            has_akid ? "aws_secret_access_key" : "aws_access_key_id");
    char what[512];
    snprintf(what, sizeof what, "profile '%s' in '%s'", c->profile, path);
    return credentials_set(out, akid, secret, gm_ini_get(doc, section, "aws_session_token"), 0,
                           source, what, GM_ERR_AUTH, err);
}

static GM_MUST_CHECK gm_status provider_credentials_file(chain_ctx *c, gm_credentials *out,
                                                         gm_error *err)
{
    if (!c->cred_path) {
        tried_add(c, "shared credentials file (no home directory)");
        return GM_OK;
    }
    if (!c->cred) {
        tried_add(c, "shared credentials file '%s' (not found)", c->cred_path);
        return GM_OK;
    }
    tried_add(c, "shared credentials file '%s' profile '%s'", c->cred_path, c->profile);
    if (!c->in_cred)
        return GM_OK;
    return static_keys(c, c->cred, c->profile, c->cred_path, "shared-credentials-file", out, err);
}

static GM_MUST_CHECK gm_status provider_config_file(chain_ctx *c, gm_credentials *out,
                                                    gm_error *err)
{
    if (!c->config_path) {
        tried_add(c, "config file (no home directory)");
        return GM_OK;
    }
    if (!c->config) {
        tried_add(c, "config file '%s' (not found)", c->config_path);
        return GM_OK;
    }
    tried_add(c, "config file '%s' profile '%s'", c->config_path, c->profile);
    if (!c->config_section)
        return GM_OK;
    return static_keys(c, c->config, c->config_section, c->config_path, "config-file", out, err);
}

/* ---------------------------------------------------------------------- */
/* 7. credential_process                                                  */

static void reap(pid_t pid, int *out_wstatus)
{
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (out_wstatus)
        *out_wstatus = ws;
}

/* Starts /bin/sh -c command with its stdout on a pipe (*out_fd, the read
 * end), in a process group of its own. The child starts with default
 * SIGPIPE handling and no blocked signals, whatever this process (or libcurl)
 * set up. Without the attributes (out of memory) it is not started: a child
 * outside its own group could not be stopped with everything it started. */
static GM_MUST_CHECK gm_status spawn_child(const char *command, const char *what, pid_t *out_pid,
                                           int *out_fd, gm_error *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return gm_error_set(err, GM_ERR_IO, "cannot run %s: pipe: %s", what, strerror(errno));
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0) {
        close(fds[0]);
        close(fds[1]);
        return gm_error_set(err, GM_ERR_NOMEM, "cannot run %s: out of memory", what);
    }
    /* dup2 onto 1 clears close-on-exec for the child's stdout; both pipe ends
     * are otherwise closed at exec. */
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawnattr_t attr;
    if (posix_spawnattr_init(&attr) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        close(fds[0]);
        close(fds[1]);
        return gm_error_set(err, GM_ERR_NOMEM, "cannot run %s: out of memory", what);
    }
    sigset_t none, pipe_only;
    sigemptyset(&none);
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &pipe_only);
    /* Its own process group (pgid = its pid), so that at the deadline the
     * whole group dies: the shell and whatever it started. */
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                        POSIX_SPAWN_SETPGROUP);
    char *argv[] = {"/bin/sh", "-c", (char *)command, NULL};
    int rc = posix_spawn(out_pid, "/bin/sh", &fa, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return gm_error_set(err, GM_ERR_IO, "cannot run %s: %s", what, strerror(rc));
    }
    *out_fd = fds[0];
    return GM_OK;
}

/* Reads fd to its end into out before deadline: GM_ERR_TIMEOUT,
 * GM_ERR_LIMIT (out is full) or GM_ERR_IO (reported). */
static GM_MUST_CHECK gm_status read_until(int fd, int64_t deadline, const char *what, gm_buf *out,
                                          gm_error *err)
{
    gm_status st = GM_OK;
    char chunk[4096];
    for (;;) {
        int64_t left = deadline - gm_now_ms();
        if (left <= 0) {
            st = GM_ERR_TIMEOUT;
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = gm_error_set(err, GM_ERR_IO, "cannot read from %s: %s", what, strerror(errno));
            break;
        }
        if (n == 0)
            continue; /* the deadline check above ends the loop */
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got < 0) {
            st = gm_error_set(err, GM_ERR_IO, "cannot read from %s: %s", what, strerror(errno));
            break;
        }
        if (got == 0)
            break;
        if (gm_buf_append(out, chunk, (size_t)got) != GM_OK) {
            st = GM_ERR_LIMIT;
            break;
        }
    }
    explicit_bzero(chunk, sizeof chunk);
    return st;
}

/* Waits for pid's exit before deadline. */
static GM_MUST_CHECK gm_status wait_until(pid_t pid, int64_t deadline, const char *what,
                                          int *out_wstatus, gm_error *err)
{
    for (;;) {
        int ws = 0;
        pid_t r = waitpid(pid, &ws, WNOHANG);
        if (r == pid) {
            *out_wstatus = ws;
            return GM_OK;
        }
        if (r < 0 && errno != EINTR)
            return gm_error_set(err, GM_ERR_IO, "cannot wait for %s: %s", what, strerror(errno));
        if (gm_now_ms() >= deadline)
            return GM_ERR_TIMEOUT;
        gm_sleep_ms(5);
    }
}

/* A credential_process may prompt on the terminal (an MFA code). In a group
 * of its own it would be stopped (SIGTTIN) reading it, so while it runs its
 * group is the terminal's foreground group, when ours was. Returns the
 * terminal's descriptor, or -1 when the terminal was not handed over. */
static int give_terminal(pid_t pgid)
{
    if (!isatty(STDIN_FILENO) || tcgetpgrp(STDIN_FILENO) != getpgrp() ||
        tcsetpgrp(STDIN_FILENO, pgid) != 0)
        return -1;
    kill(-pgid, SIGCONT); /* in case it read the terminal before it had it */
    return STDIN_FILENO;
}

static void take_terminal_back(int fd)
{
    if (fd < 0)
        return;
    /* A background group changing the foreground group gets SIGTTOU. */
    sigset_t ttou, old;
    sigemptyset(&ttou);
    sigaddset(&ttou, SIGTTOU);
    pthread_sigmask(SIG_BLOCK, &ttou, &old);
    if (tcsetpgrp(fd, getpgrp()) != 0) {
        /* Nothing to do: the terminal stays with the (finished) group and
         * the shell takes it back when this process ends. */
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Runs command with /bin/sh -c, capturing stdout into out (bounded by
 * out->max) within timeout_ms. stdin and stderr are inherited. On GM_OK
 * *out_wstatus holds the wait status. On timeout or overflow the child's
 * whole process group (the shell and anything it started, such as a
 * background job holding stdout open) is killed (SIGKILL) and the child
 * reaped. */
static GM_MUST_CHECK gm_status run_capture(const char *command, long timeout_ms, const char *what,
                                           gm_buf *out, int *out_wstatus, gm_error *err)
{
    pid_t pid = 0;
    int fd = -1;
    gm_status st = spawn_child(command, what, &pid, &fd, err);
    if (st != GM_OK)
        return st;
    int tty = give_terminal(pid);
    int64_t deadline = gm_now_ms() + timeout_ms;
    st = read_until(fd, deadline, what, out, err);
    close(fd);
    /* stdout is closed (or we gave up): wait for the exit, still bounded. */
    if (st == GM_OK)
        st = wait_until(pid, deadline, what, out_wstatus, err);
    if (st != GM_OK) {
        kill(-pid, SIGKILL); /* the group: pgid == pid */
        kill(pid, SIGKILL);  /* and the child, should the group be gone */
        reap(pid, NULL);
    }
    take_terminal_back(tty);
    if (st == GM_ERR_TIMEOUT)
        return gm_error_set(err, st, "%s timed out after %ld ms", what, timeout_ms);
    if (st == GM_ERR_LIMIT)
        return gm_error_set(err, st, "%s wrote more than %zu bytes to stdout", what, out->max);
    return st;
}

static GM_MUST_CHECK gm_status provider_process(chain_ctx *c, gm_credentials *out, gm_error *err)
{
    const char *command = profile_get(c, "credential_process");
    if (!command) {
        tried_add(c, "credential_process (not set)");
        return GM_OK;
    }
    tried_add(c, "credential_process");
    long timeout = c->opts && c->opts->process_timeout_ms > 0 ? c->opts->process_timeout_ms
                                                              : PROCESS_TIMEOUT_DEFAULT_MS;
    char what[300];
    snprintf(what, sizeof what, "credential_process of profile '%s'", c->profile);

    gm_buf output;
    gm_buf_init(&output, GM_LIMIT_PROCESS_OUTPUT);
    int ws = 0;
    gm_status st = run_capture(command, timeout, what, &output, &ws, err);
    if (st == GM_OK) {
        if (WIFSIGNALED(ws))
            st = gm_error_set(err, GM_ERR_AUTH, "%s was killed by signal %d", what, WTERMSIG(ws));
        else if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
            st = gm_error_set(err, GM_ERR_AUTH, "%s exited with status %d", what,
                              WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
    }
    if (st == GM_OK) {
        st = gm_credential_process_parse(output.data, output.len, out, err);
        if (st != GM_OK)
            gm_error_prefix(err, "%s", what);
    }
    wipe_buf(&output);
    if (st == GM_OK && out->expiration && out->expiration <= time(NULL)) {
        char when[32];
        gm_time_iso8601(out->expiration, when);
        gm_credentials_release(out);
        st = gm_error_set(err, GM_ERR_AUTH, "%s returned credentials that expired at %s", what,
                          when);
    }
    return st;
}

/* ---------------------------------------------------------------------- */
/* 8. IMDSv2                                                              */

typedef struct imds_ctx {
    gm_transport *transport;
    const char *endpoint; /* no trailing '/' */
    long timeout_ms;
} imds_ctx;

/* One IMDS call with at most one retry (on a transport failure or a 5xx,
 * unless retry_transport_errors is false for transport failures). On GM_OK
 * resp holds the last answer, whatever its status. */
static GM_MUST_CHECK gm_status imds_call(const imds_ctx *m, const char *method, const char *path,
                                         const char *token, bool retry_transport_errors,
                                         gm_http_response *resp, gm_error *err)
{
    gm_http_request req;
    gm_http_request_init(&req);
    gm_status st = GM_ERR_NOMEM;
    char *url = gm_strfmt("%s%s", m->endpoint, path);
    if (!url || gm_http_request_setup(&req, method, url) != GM_OK)
        goto done;
    if (token ? gm_headers_set(&req.headers, "X-aws-ec2-metadata-token", token) != GM_OK
              : gm_headers_set(&req.headers, "X-aws-ec2-metadata-token-ttl-seconds",
                               IMDS_TOKEN_TTL_SECONDS) != GM_OK)
        goto done;
    req.connect_timeout_ms = m->timeout_ms;
    req.total_timeout_ms = m->timeout_ms;
    for (int attempt = 0; attempt < 2; attempt++) {
        gm_error local;
        gm_error_clear(&local);
        gm_http_response_reset(resp);
        resp->body.max = GM_LIMIT_SMALL;
        st = gm_transport_send(m->transport, &req, resp, &local);
        if (st == GM_OK && resp->status >= 500 && resp->status <= 599)
            continue; /* retry once; after that resp holds the 5xx */
        if (st == GM_OK)
            break;
        bool transport_failure = st == GM_ERR_NETWORK || st == GM_ERR_TIMEOUT;
        if (attempt == 1 || !transport_failure || !retry_transport_errors) {
            error_move(err, &local);
            break;
        }
    }
done:
    if (st == GM_ERR_NOMEM)
        gm_error_set(err, st, "out of memory building an instance metadata request");
    for (size_t i = 0; i < req.headers.count; i++) /* the token is a secret of sorts */
        explicit_bzero(req.headers.items[i].value, strlen(req.headers.items[i].value));
    gm_http_request_release(&req);
    free(url);
    return st;
}

static bool imds_disabled(void)
{
    const char *v = getenv("AWS_EC2_METADATA_DISABLED");
    return v && strcasecmp(v, "true") == 0;
}

static char *imds_endpoint(void)
{
    const char *v = env_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (!v) {
        const char *mode = env_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
        v = mode && strcasecmp(mode, "ipv6") == 0 ? IMDS_ENDPOINT_IPV6 : IMDS_ENDPOINT_IPV4;
    }
    size_t n = strlen(v);
    while (n && v[n - 1] == '/')
        n--;
    return gm_strndup(v, n);
}

/* The session token. No answer at all means "not on EC2": *out_token stays
 * NULL and the reason is noted. */
static GM_MUST_CHECK gm_status imds_token(chain_ctx *c, const imds_ctx *m, gm_http_response *resp,
                                          char **out_token, gm_error *err)
{
    *out_token = NULL;
    gm_error local;
    gm_error_clear(&local);
    gm_status st = imds_call(m, "PUT", "/latest/api/token", NULL, false, resp, &local);
    if (st != GM_OK || resp->status != 200 || resp->body.len == 0) {
        if (st == GM_OK)
            tried_add(c, "instance metadata ('%s' refused a token: http %ld)", m->endpoint,
                      resp->status);
        else if (st == GM_ERR_NETWORK || st == GM_ERR_TIMEOUT)
            tried_add(c, "instance metadata (no response from '%s')", m->endpoint);
        else
            tried_add(c, "instance metadata ('%s': %s)", m->endpoint, local.message);
        return GM_OK;
    }
    *out_token = gm_strdup(gm_str_trim(resp->body.data));
    return *out_token ? GM_OK : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
}

/* The role name (first line); *out_role NULL when the instance has none. */
static GM_MUST_CHECK gm_status imds_role(chain_ctx *c, const imds_ctx *m, const char *token,
                                         gm_http_response *resp, char **out_role, gm_error *err)
{
    *out_role = NULL;
    gm_status st = imds_call(m, "GET", IMDS_ROLE_PATH, token, true, resp, err);
    if (st != GM_OK) {
        gm_error_prefix(err, "cannot list the instance role at '%s'", m->endpoint);
        return st;
    }
    if (resp->status == 404) {
        tried_add(c, "instance metadata '%s' (no instance role)", m->endpoint);
        return GM_OK;
    }
    if (resp->status != 200)
        return gm_error_set(err, GM_ERR_AUTH,
                            "instance metadata at '%s' answered http %ld listing the instance "
                            "role",
                            m->endpoint, resp->status);
    char *body = resp->body.data ? resp->body.data : "";
    body[strcspn(body, "\r\n")] = '\0';
    gm_str_trim(body);
    if (!*body) {
        tried_add(c, "instance metadata '%s' (no instance role)", m->endpoint);
        return GM_OK;
    }
    tried_add(c, "instance metadata '%s'", m->endpoint);
    *out_role = gm_strdup(body);
    return *out_role ? GM_OK : gm_error_set(err, GM_ERR_NOMEM, "out of memory");
}

/* The role's credentials. */
static GM_MUST_CHECK gm_status imds_role_credentials(const imds_ctx *m, const char *token,
                                                     const char *role, gm_http_response *resp,
                                                     gm_credentials *out, gm_error *err)
{
    gm_buf enc;
    gm_buf_init(&enc, GM_LIMIT_SMALL);
    char *path = NULL;
    if (gm_uri_encode(&enc, role, strlen(role), false) == GM_OK)
        path = gm_strfmt("%s%s", IMDS_ROLE_PATH, gm_buf_cstr(&enc));
    gm_buf_release(&enc);
    if (!path)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_status st = imds_call(m, "GET", path, token, true, resp, err);
    free(path);
    if (st != GM_OK) {
        gm_error_prefix(err, "cannot get credentials of instance role '%s'", role);
        return st;
    }
    if (resp->status != 200)
        return gm_error_set(err, GM_ERR_AUTH,
                            "instance metadata at '%s' answered http %ld for the credentials of "
                            "role '%s'",
                            m->endpoint, resp->status, role);
    st = gm_imds_credentials_parse(resp->body.data, resp->body.len, out, err);
    if (st != GM_OK) {
        gm_error_prefix(err, "instance role '%s'", role);
        return st;
    }
    if (out->expiration && out->expiration <= time(NULL)) {
        char when[32];
        gm_time_iso8601(out->expiration, when);
        gm_credentials_release(out);
        return gm_error_set(err, GM_ERR_AUTH,
                            "instance metadata returned credentials of role '%s' that expired "
                            "at %s",
                            role, when);
    }
    return GM_OK;
}

static GM_MUST_CHECK gm_status provider_imds(chain_ctx *c, gm_credentials *out, gm_error *err)
{
    if (imds_disabled()) {
        tried_add(c, "instance metadata (disabled)");
        return GM_OK;
    }
    if (!c->opts || !c->opts->transport) {
        tried_add(c, "instance metadata (no transport)");
        return GM_OK;
    }
    imds_ctx m = {
        .transport = c->opts->transport,
        .timeout_ms =
            c->opts->imds_timeout_ms > 0 ? c->opts->imds_timeout_ms : IMDS_TIMEOUT_DEFAULT_MS,
    };
    char *endpoint = imds_endpoint();
    if (!endpoint)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    m.endpoint = endpoint;
    char *token = NULL, *role = NULL;
    gm_http_response resp;
    gm_http_response_init(&resp);
    gm_status st = imds_token(c, &m, &resp, &token, err);
    if (st == GM_OK && token)
        st = imds_role(c, &m, token, &resp, &role, err);
    if (st == GM_OK && role)
        st = imds_role_credentials(&m, token, role, &resp, out, err);
    wipe_free(token);
    free(role);
    free(endpoint);
    wipe_buf(&resp.body);
    gm_http_response_release(&resp);
    return st;
}

/* ---------------------------------------------------------------------- */
/* The chain                                                              */

static const struct {
    provider_fn fn;
    bool needs_files; /* load the shared files first */
} CHAIN[] = {
    {provider_environment, false},
    {provider_assume_role, true},  /* slot */
    {provider_web_identity, true}, /* slot */
    {provider_sso, true},          /* slot */
    {provider_credentials_file, true},
    {provider_config_file, true},
    {provider_process, true},
    {provider_imds, false},
};

gm_status gm_credentials_resolve(const gm_credentials_options *opts, gm_credentials *out,
                                 gm_error *err)
{
    memset(out, 0, sizeof *out);
    chain_ctx c = {
        .opts = opts,
        .explicit_option = opts && opts->profile && *opts->profile,
    };
    c.profile = gm_profile_name(opts ? opts->profile : NULL);
    c.named = c.explicit_option || env_nonempty("AWS_PROFILE");
    gm_buf_init(&c.tried, GM_LIMIT_SMALL);

    gm_status st = GM_OK;
    for (size_t i = 0; i < sizeof CHAIN / sizeof CHAIN[0]; i++) {
        if (CHAIN[i].needs_files && (st = load_files(&c, err)) != GM_OK)
            break;
        st = CHAIN[i].fn(&c, out, err);
        if (st != GM_OK || out->source)
            break;
    }
    if (st == GM_OK && !out->source)
        st = gm_error_set(err, GM_ERR_AUTH, "no aws credentials found (tried: %s)",
                          gm_buf_cstr(&c.tried));
    if (st != GM_OK)
        gm_credentials_release(out);
    chain_ctx_release(&c);
    return st;
}

gm_status gm_config_profile_get(const char *profile, const char *key, char **out, gm_error *err)
{
    *out = NULL;
    const char *name = gm_profile_name(profile);
    char *path = aws_file_path("AWS_CONFIG_FILE", "config");
    gm_ini *config = NULL;
    char *section = NULL;
    gm_status st = load_optional(path, &config, err);
    if (st == GM_OK && config) {
        if (config_section_of(config, name, &section) != GM_OK) {
            st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        } else if (section) {
            const char *v = gm_ini_get(config, section, key);
            if (v && *v && !(*out = strdup(v)))
                st = gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        }
    }
    free(section);
    gm_ini_free(config);
    free(path);
    return st;
}
