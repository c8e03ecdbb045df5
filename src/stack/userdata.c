/* The UserData generator: a bash script built from the catalogue, the
 * secrets table and the deployment's parameters.
 *
 * Static text goes through gm_emit_put (never through a printf format, so the
 * script's own '%' stay as they are); parameters go through gm_emit_putf and
 * are all validated to a safe character set first, then single-quoted.
 * Files the script writes are emitted as quoted heredocs (no expansion at
 * run time); the delimiter is checked against the content. The output is
 * final: nothing may post-process it (see LESSONS 4). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stack/catalogue.h"
#include "stack/internal.h"
#include "stack/secrets.h"
#include "stack/stack.h"

#define NL "\n"

/* ---- pieces shared by the main script and the helper scripts ---------- */

static void put_log_fn(gm_emit *e, const char *tag)
{
    gm_emit_putf(e,
                 "log() { printf '%%s [%s] %%s\\n' \"$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)\" \"$*\" "
                 ">&2; }" NL,
                 tag);
}

/* Writes content to path (a shell word, already quoted) through a quoted
 * heredoc, then sets its mode and moves it in place atomically. */
static void put_file(gm_emit *e, const char *path, const char *mode, const char *delim,
                     const char *content)
{
    if (e->st != GM_OK)
        return;
    size_t dl = strlen(delim);
    /* The delimiter must not appear as a line of the content. */
    for (const char *line = content; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len == dl && memcmp(line, delim, dl) == 0) {
            e->st = GM_ERR_INTERNAL;
            return;
        }
        line = end ? end + 1 : line + len;
    }
    size_t cl = strlen(content);
    gm_emit_putf(e, "cat >%s.tmp <<'%s'" NL, path, delim);
    gm_emit_put(e, content);
    if (cl && content[cl - 1] != '\n')
        gm_emit_put(e, NL);
    gm_emit_putf(e, "%s" NL "chmod %s %s.tmp" NL "mv -f %s.tmp %s" NL, delim, mode, path, path,
                 path);
}

/* ---- helper scripts installed on the instance ------------------------- */

static void helper_header(gm_emit *e, const char *what, bool app)
{
    gm_emit_put(e, "#!/bin/bash" NL);
    gm_emit_put(e, what);
    gm_emit_put(e, "# Installed by the GeuseMaker UserData. Holds no secret value." NL
                   "R=\"${GM_ROOT:-}\"" NL "STATE=\"$R/var/lib/geusemaker\"" NL);
    if (app)
        gm_emit_put(e, "APP=\"$R" GM_STACK_APP_DIR "\"" NL);
}

static void render_health_script(gm_emit *e, const gm_stack_params *p, gm_tier tier)
{
    size_t n;
    const gm_service *svc = gm_stack_services(&n);
    helper_header(e,
                  "# Writes the health document served by nginx at " GM_HEALTH_PATH ": each" NL
                  "# service's state from its Compose healthcheck (run by Docker) and, for" NL
                  "# PostgreSQL, pg_isready. Run by geusemaker-health.timer." NL,
                  false);
    gm_emit_put(e, "set -uo pipefail" NL "WWW=\"$STATE/www/geusemaker\"" NL "mkdir -p \"$WWW\"" NL);
    gm_emit_put(e, "services=(");
    for (size_t i = 0; i < n; i++)
        gm_emit_putf(e, "%s%s", i ? " " : "", svc[i].name);
    gm_emit_put(e, ")" NL "critical=\" ");
    for (size_t i = 0; i < n; i++)
        if (svc[i].critical)
            gm_emit_putf(e, "%s ", svc[i].name);
    gm_emit_put(e, "\"" NL "late=\" ");
    for (size_t i = 0; i < n; i++)
        if (svc[i].late)
            gm_emit_putf(e, "%s ", svc[i].name);
    gm_emit_put(e, "\"" NL);
    gm_emit_put(
        e,
        "clean() { printf '%s' \"$1\" | tr -cd 'A-Za-z0-9 ._:/()+-' | cut -c1-200; }" NL
        "now=$(date -u +%Y-%m-%dT%H:%M:%SZ)" NL "body=\"\"" NL
        "crit_bad=0 crit_notready=0 other_bad=0 starting=0" NL "for s in \"${services[@]}\"; do" NL
        "  c=\"geusemaker-$s\"" NL "  st=$(docker inspect -f '{{if "
        ".State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}"
        "}{{end}}' \"$c\" 2>/dev/null) || st=missing" NL "  case \"$st\" in" NL
        "    healthy) state=healthy detail=\"healthcheck passing\" ;;" NL
        "    starting) state=starting detail=\"container starting\" ;;" NL
        "    unhealthy) state=unhealthy detail=\"healthcheck failing\" ;;" NL
        "    running) state=healthy detail=\"container running\" ;;" NL "    *)" NL
        "      if [[ $late == *\" $s \"* ]] && [ ! -e \"$STATE/late.done\" ]; then" NL
        "        state=starting detail=\"waiting for its image\"" NL "      else" NL
        "        state=unhealthy detail=\"container ${st:-missing}\"" NL "      fi ;;" NL
        "  esac" NL "  if [ \"$s\" = postgres ] && [ \"$st\" != missing ]; then" NL "    rc=0" NL
        "    docker exec \"$c\" pg_isready -q -U n8n -d n8n || rc=$?" NL "    case $rc in" NL
        "      0) ;;" NL "      1) [ \"$state\" = healthy ] && state=starting; "
        "detail=\"pg_isready: rejecting connections\" ;;" NL
        "      2) state=unhealthy detail=\"pg_isready: no response\" ;;" NL
        "      *) state=unhealthy detail=\"pg_isready: exit $rc\" ;;" NL "    esac" NL "  fi" NL
        "  if [ \"$s\" = ollama ]; then" NL "    if [ -e \"$STATE/late.failed\" ]; then" NL
        "      state=unhealthy detail=$(head -n 1 \"$STATE/late.failed\")" NL
        "    elif [ \"$state\" = healthy ] && [ ! -e \"$STATE/late.done\" ]; then" NL
        "      state=starting detail=\"pulling models\"" NL
        "      [ -s \"$STATE/late.status\" ] && detail=$(head -n 1 \"$STATE/late.status\")" NL
        "    fi" NL "  fi" NL "  if [ -e \"$STATE/stopping\" ]; then" NL
        "    state=unhealthy detail=\"stopped after a spot interruption notice\"" NL "  fi" NL
        "  crit=false" NL "  [[ $critical == *\" $s \"* ]] && crit=true" NL
        "  case \"$state\" in" NL
        "    unhealthy) if [ $crit = true ]; then crit_bad=1; else other_bad=1; fi ;;" NL
        "    starting) starting=1 ;;" NL "  esac" NL
        "  if [ $crit = true ] && [ \"$state\" != healthy ]; then crit_notready=1; fi" NL
        "  [ -n \"$body\" ] && body+=\",\"" NL
        "  body+=$(printf '\"%s\":{\"state\":\"%s\",\"detail\":\"%s\",\"critical\":%s}' \"$s\" "
        "\"$state\" \"$(clean \"$detail\")\" \"$crit\")" NL "done" NL
        "if [ $crit_bad = 1 ]; then overall=unhealthy" NL
        "elif [ $other_bad = 1 ]; then overall=degraded" NL
        "elif [ $starting = 1 ]; then overall=starting" NL "else overall=healthy; fi" NL);
    gm_emit_putf(e,
                 "printf "
                 "'{\"schema\":1,\"deployment\":\"%s\",\"tier\":\"%s\",\"overall\":\"%%s\","
                 "\"checked_at\":\"%%s\",\"services\":{%%s}}\\n' \\" NL,
                 p->name, gm_tier_name(tier));
    gm_emit_put(e,
                "  \"$overall\" \"$now\" \"$body\" >\"$WWW/health.json.tmp\"" NL
                "chmod 644 \"$WWW/health.json.tmp\"" NL
                "mv -f \"$WWW/health.json.tmp\" \"$WWW/health.json\"" NL "# " GM_HEALTH_READY_PATH
                " answers 200 only while the critical services are healthy." NL
                "if [ $crit_notready = 0 ] && [ ! -e \"$STATE/stopping\" ]; then" NL
                "  echo ok >\"$WWW/ready\"" NL "else" NL "  rm -f \"$WWW/ready\"" NL "fi" NL
                "echo \"$overall\"" NL);
}

static void render_late_script(gm_emit *e)
{
    size_t n;
    const gm_service *svc = gm_stack_services(&n);
    char late[128] = "";
    for (size_t i = 0; i < n; i++)
        if (svc[i].late && strlen(late) + strlen(svc[i].name) + 2 < sizeof late) {
            if (*late)
                strcat(late, " ");
            strcat(late, svc[i].name);
        }
    helper_header(e,
                  "# Pulls and starts the large images, then the Ollama models, behind the" NL
                  "# rest of the stack. Run once by geusemaker-late.service." NL,
                  true);
    gm_emit_put(e,
                "set -euo pipefail" NL "exec >>\"$R/var/log/geusemaker/late-start.log\" 2>&1" NL);
    put_log_fn(e, "late-start");
    gm_emit_put(
        e,
        "status() { log \"$*\"; printf '%s\\n' \"$*\" >\"$STATE/late.status\"; }" NL
        "failed() { status \"$*\"; printf '%s\\n' \"$*\" >\"$STATE/late.failed\"; touch "
        "\"$STATE/late.done\"; exit 1; }" NL
        "dc() { docker compose -f \"$APP/docker-compose.yml\" --env-file \"$APP/.env\" \"$@\"; }" NL
        "rm -f \"$STATE/late.done\" \"$STATE/late.failed\"" NL);
    gm_emit_putf(e, "status \"pulling images: %s\"" NL "n=0" NL "until dc pull %s; do" NL, late,
                 late);
    gm_emit_put(e, "  n=$((n + 1))" NL "  [ \"$n\" -lt 5 ] || failed \"image pull failed\"" NL
                   "  sleep 20" NL "done" NL);
    gm_emit_putf(e, "dc up -d %s || failed \"cannot start %s\"" NL, late, late);
    gm_emit_put(e,
                "status \"waiting for ollama\"" NL "for _ in $(seq 1 90); do" NL
                "  h=$(docker inspect -f '{{.State.Health.Status}}' geusemaker-ollama 2>/dev/null "
                "|| true)" NL "  [ \"$h\" = healthy ] && break" NL "  sleep 5" NL "done" NL
                "bad=\"\"" NL "while IFS= read -r m; do" NL "  [ -n \"$m\" ] || continue" NL
                "  status \"pulling model $m\"" NL "  ok=0" NL "  for _ in 1 2 3; do" NL
                "    if docker exec geusemaker-ollama ollama pull \"$m\" >/dev/null; then ok=1; "
                "break; fi" NL "    sleep 15" NL "  done" NL "  [ $ok = 1 ] || bad=\"$bad $m\"" NL
                "done <\"$R/etc/geusemaker/models\"" NL
                "[ -z \"$bad\" ] || failed \"model pull failed:$bad\"" NL
                "status \"models ready\"" NL "touch \"$STATE/late.done\"" NL);
}

static void render_spot_script(gm_emit *e)
{
    helper_header(e,
                  "# Polls the EC2 spot interruption notice (IMDSv2) every 5 s and stops the" NL
                  "# stack cleanly within the two-minute warning." NL,
                  true);
    gm_emit_put(e, "set -uo pipefail" NL "IMDS=\"${GM_IMDS:-http://169.254.169.254/latest}\"" NL
                   "INTERVAL=\"${GM_SPOT_INTERVAL:-5}\"" NL
                   "exec >>\"$R/var/log/geusemaker/spot-watch.log\" 2>&1" NL);
    put_log_fn(e, "spot-watch");
    gm_emit_put(
        e,
        "log \"watching for the spot interruption notice\"" NL "while :; do" NL
        "  token=$(curl -fsS --max-time 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "
        "\"$IMDS/api/token\" || true)" NL "  if [ -n \"$token\" ]; then" NL
        "    code=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' -H "
        "\"X-aws-ec2-metadata-token: $token\" \"$IMDS/meta-data/spot/instance-action\" || true)" NL
        "    if [ \"$code\" = 200 ]; then" NL
        "      log \"spot interruption notice: stopping the stack\"" NL
        "      touch \"$STATE/stopping\"" NL "      \"$APP/bin/gm-health\" >/dev/null || true" NL
        "      if docker compose -f \"$APP/docker-compose.yml\" --env-file \"$APP/.env\" stop -t "
        "45; then" NL "        log \"stack stopped\"" NL "      else" NL
        "        log \"docker compose stop failed\"" NL "      fi" NL "      sync" NL
        "      exit 0" NL "    fi" NL "  fi" NL "  sleep \"$INTERVAL\"" NL "done" NL);
}

/* ---- systemd units and nginx ------------------------------------------ */

#define COMPOSE_CMD                                \
    "/usr/bin/docker compose -f " GM_STACK_APP_DIR \
    "/docker-compose.yml --env-file " GM_STACK_APP_DIR "/.env"

static const char unit_stack[] =
    "[Unit]" NL "Description=GeuseMaker AI stack (Docker Compose)" NL "Requires=docker.service" NL
    "After=docker.service network-online.target" NL "Wants=network-online.target" NL
    "RequiresMountsFor=" GM_STACK_EFS_MOUNT NL "[Service]" NL "Type=oneshot" NL
    "RemainAfterExit=yes" NL "ExecStartPre=/bin/rm -f /var/lib/geusemaker/stopping" NL
    "ExecStart=" COMPOSE_CMD " up -d" NL "ExecStop=" COMPOSE_CMD " stop -t 45" NL
    "TimeoutStartSec=0" NL "[Install]" NL "WantedBy=multi-user.target" NL;

static const char unit_health_service[] =
    "[Unit]" NL "Description=GeuseMaker health document" NL "After=docker.service" NL "[Service]" NL
    "Type=oneshot" NL "ExecStart=" GM_STACK_APP_DIR "/bin/gm-health" NL;

#define STR_(x) #x
#define STR(x) STR_(x)
static const char unit_health_timer[] =
    "[Unit]" NL "Description=Refresh the GeuseMaker health document" NL "[Timer]" NL
    "OnBootSec=20s" NL "OnUnitActiveSec=" STR(GM_HEALTH_REFRESH_S) "s" NL "AccuracySec=5s" NL
                                                                   "[Install]" NL
                                                                   "WantedBy=timers.target" NL;

static const char unit_spot[] =
    "[Unit]" NL "Description=GeuseMaker spot interruption watcher" NL
    "After=docker.service network-online.target" NL "Wants=network-online.target" NL "[Service]" NL
    "ExecStart=" GM_STACK_APP_DIR "/bin/gm-spot-watch" NL "Restart=on-failure" NL "RestartSec=5" NL
    "[Install]" NL "WantedBy=multi-user.target" NL;

static const char unit_late[] =
    "[Unit]" NL "Description=GeuseMaker: pull the large images and the Ollama models" NL
    "Requires=docker.service" NL "After=docker.service" NL "[Service]" NL "Type=oneshot" NL
    "ExecStart=" GM_STACK_APP_DIR "/bin/gm-late-start" NL "TimeoutStartSec=0" NL;

static const char docker_dropin[] =
    "# Containers keep their data on EFS: never start them on the bare mount point." NL "[Unit]" NL
    "RequiresMountsFor=" GM_STACK_EFS_MOUNT NL "After=remote-fs.target" NL;

static void render_nginx_conf(gm_emit *e, gm_os os)
{
    gm_emit_putf(e, "user %s;" NL, os == GM_OS_AL2023 ? "nginx" : "www-data");
    gm_emit_put(
        e,
        "# GeuseMaker: the only public listener (80, 443). Every service listens on" NL
        "# 127.0.0.1; the security group limits who reaches this host." NL
        "worker_processes auto;" NL "pid /run/nginx.pid;" NL
        "error_log /var/log/nginx/error.log;" NL "events { worker_connections 1024; }" NL
        "http {" NL "  include /etc/nginx/mime.types;" NL
        "  default_type application/octet-stream;" NL "  server_tokens off;" NL "  sendfile on;" NL
        "  access_log /var/log/nginx/access.log;" NL "  client_max_body_size 64m;" NL
        "  map $http_upgrade $connection_upgrade { default upgrade; '' close; }" NL
        "  # $gm_ollama_ok and $gm_crawl4ai_ok: bearer tokens from SSM, file 0600." NL
        "  include /etc/nginx/geusemaker/tokens.conf;" NL "  server {" NL
        "    listen 80 default_server;" NL "    listen [::]:80 default_server;" NL
        "    location = " GM_HEALTH_PATH " {" NL "      root /var/lib/geusemaker/www;" NL
        "      default_type application/json;" NL
        "      add_header Cache-Control \"no-store\" always;" NL "    }" NL
        "    location = " GM_HEALTH_READY_PATH " {" NL "      root /var/lib/geusemaker/www;" NL
        "      default_type text/plain;" NL "      try_files " GM_HEALTH_READY_PATH " =503;" NL
        "    }" NL "    location / { return 301 https://$host$request_uri; }" NL "  }" NL
        "  server {" NL "    listen 443 ssl default_server;" NL
        "    listen [::]:443 ssl default_server;" NL
        "    ssl_certificate /etc/nginx/geusemaker/tls.crt;" NL
        "    ssl_certificate_key /etc/nginx/geusemaker/tls.key;" NL
        "    ssl_protocols TLSv1.2 TLSv1.3;" NL "    proxy_http_version 1.1;" NL
        "    # A location with its own proxy_set_header inherits none of these." NL
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" NL
        "    proxy_set_header X-Forwarded-Proto https;" NL "    location = " GM_HEALTH_PATH " {" NL
        "      root /var/lib/geusemaker/www;" NL "      default_type application/json;" NL
        "      add_header Cache-Control \"no-store\" always;" NL "    }" NL
        "    location = " GM_HEALTH_READY_PATH " {" NL "      root /var/lib/geusemaker/www;" NL
        "      default_type text/plain;" NL "      try_files " GM_HEALTH_READY_PATH " =503;" NL
        "    }" NL "    # Ollama has no authentication of its own: a bearer token here." NL
        "    location /ollama/ {" NL "      if ($gm_ollama_ok = 0) { return 401; }" NL
        "      proxy_pass http://127.0.0.1:11434/;" NL "      proxy_set_header Host localhost;" NL
        "      proxy_buffering off;" NL "      proxy_read_timeout 900s;" NL "    }" NL
        "    location /crawl4ai/ {" NL "      if ($gm_crawl4ai_ok = 0) { return 401; }" NL
        "      proxy_pass http://127.0.0.1:11235/;" NL "      proxy_read_timeout 300s;" NL
        "    }" NL "    # Qdrant checks its own API key (header api-key)." NL
        "    location /qdrant/ {" NL "      proxy_pass http://127.0.0.1:6333/;" NL "    }" NL
        "    location / {" NL "      proxy_pass http://127.0.0.1:5678;" NL
        "      proxy_set_header Host $host;" NL
        "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" NL
        "      proxy_set_header X-Forwarded-Proto https;" NL
        "      proxy_set_header Upgrade $http_upgrade;" NL
        "      proxy_set_header Connection $connection_upgrade;" NL "      proxy_buffering off;" NL
        "      proxy_read_timeout 300s;" NL "    }" NL "  }" NL "}" NL);
}

/* ---- the main script --------------------------------------------------- */

static const char *os_label(gm_os os)
{
    switch (os) {
    case GM_OS_UBUNTU2204: return "Ubuntu 22.04";
    case GM_OS_UBUNTU2404: return "Ubuntu 24.04";
    case GM_OS_AL2023:
    default: return "Amazon Linux 2023";
    }
}

static void render_prologue(gm_emit *e, const gm_stack_params *p, gm_tier tier, const char *prefix)
{
    gm_emit_put(e, "#!/bin/bash" NL);
    gm_emit_putf(e, "# GeuseMaker UserData: deployment '%s', tier %s, %s, %s." NL, p->name,
                 gm_tier_name(tier), os_label(p->os), p->instance_type);
    gm_emit_put(
        e, "# Generated by geusemaker ('geusemaker userdata' prints it for review)." NL
           "# It holds no secret value: the instance reads them from SSM Parameter" NL
           "# Store at boot with its instance role. Safe to run twice." NL "# Log: " GM_USERDATA_LOG
           "; result: " GM_USERDATA_DONE_MARKER " or" NL "# " GM_USERDATA_FAILED_MARKER "." NL
           "set -euo pipefail" NL "set -o errtrace" NL "umask 022" NL "" NL
           "# Every path written is under R: empty on an instance, a sandbox in tests." NL
           "R=\"${GM_ROOT:-}\"" NL
           "export PATH=\"$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"" NL);
    if (p->os != GM_OS_AL2023)
        gm_emit_put(e, "export DEBIAN_FRONTEND=noninteractive" NL);
    gm_emit_putf(e,
                 "GM_NAME='%s'" NL "GM_TIER='%s'" NL "GM_REGION='%s'" NL "GM_EFS_ID='%s'" NL
                 "GM_SSM_PREFIX='%s'" NL,
                 p->name, gm_tier_name(tier), p->region,
                 p->efs_id ? p->efs_id : GM_STACK_EFS_PLACEHOLDER, prefix);
    gm_emit_put(e,
                "EFS_ATTEMPTS=\"${GM_EFS_ATTEMPTS:-60}\"" NL "EFS_DELAY=\"${GM_EFS_DELAY:-10}\"" NL
                "IMDS=\"${GM_IMDS:-http://169.254.169.254/latest}\"" NL "APP=\"$R" GM_STACK_APP_DIR
                "\"" NL "CONF=\"$R/etc/geusemaker\"" NL "STATE=\"$R/var/lib/geusemaker\"" NL
                "LOGDIR=\"$R/var/log/geusemaker\"" NL "EFS=\"$R" GM_STACK_EFS_MOUNT "\"" NL
                "ENV_FILE=\"$APP/.env\"" NL "COMPOSE=\"$APP/docker-compose.yml\"" NL
                "UNITS=\"$R/etc/systemd/system\"" NL "NGINX=\"$R/etc/nginx\"" NL "" NL
                "mkdir -p \"$LOGDIR\" \"$STATE\" \"$APP/bin\" \"$CONF\"" NL "chmod 700 \"$CONF\"" NL
                "exec >>\"$LOGDIR/userdata.log\" 2>&1" NL "STEP=start" NL);
    put_log_fn(e, "userdata");
    gm_emit_put(
        e,
        "fail() { log \"error: $*\"; return 1; }" NL "on_error() {" NL "  local rc=$? line=$1" NL
        "  trap - ERR" NL
        "  log \"FAILED at step '$STEP' (line $line, exit code $rc); the lines above say why\"" NL
        "  printf 'step=%s\\nline=%s\\nexit=%s\\ntime=%s\\n' \"$STEP\" \"$line\" \"$rc\" \\" NL
        "    \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" >\"$STATE/userdata.failed\"" NL "  exit \"$rc\"" NL
        "}" NL "trap 'on_error $LINENO' ERR" NL "step() { STEP=$1; log \"step $1: $2\"; }" NL
        "# retry ATTEMPTS DELAY COMMAND...: runs COMMAND until it succeeds." NL "retry() {" NL
        "  local n=$1 delay=$2 i=1" NL "  shift 2" NL "  until \"$@\"; do" NL
        "    if [ \"$i\" -ge \"$n\" ]; then" NL "      log \"giving up after $n attempts: $*\"" NL
        "      return 1" NL "    fi" NL
        "    log \"attempt $i of $n failed: $*; again in ${delay}s\"" NL "    sleep \"$delay\"" NL
        "    i=$((i + 1))" NL "  done" NL "}" NL "imds_get() {" NL "  local token" NL
        "  token=$(curl -fsS --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "
        "\"$IMDS/api/token\") || return 1" NL
        "  curl -fsS --max-time 5 -H \"X-aws-ec2-metadata-token: $token\" \"$IMDS/meta-data/$1\"" NL
        "}" NL "dc() { docker compose -f \"$COMPOSE\" --env-file \"$ENV_FILE\" \"$@\"; }" NL "" NL
        "exec 9>\"$STATE/userdata.lock\"" NL "if ! flock -n 9; then" NL
        "  log \"another run of this script holds $STATE/userdata.lock\"" NL "  exit 1" NL "fi" NL
        "rm -f \"$STATE/userdata.done\" \"$STATE/userdata.failed\"" NL
        "log \"start: deployment $GM_NAME, tier $GM_TIER\"" NL "" NL);
}

static void render_packages(gm_emit *e, const gm_stack_params *p)
{
    gm_emit_put(e, "step packages \"Docker, Compose, nginx, openssl, amazon-efs-utils\"" NL);
    if (p->os == GM_OS_AL2023) {
        gm_emit_put(
            e,
            "retry 5 15 dnf install -y nginx openssl amazon-efs-utils util-linux" NL
            "command -v docker >/dev/null || retry 5 15 dnf install -y docker" NL
            "command -v aws >/dev/null || retry 5 15 dnf install -y awscli-2" NL
            "if ! docker compose version >/dev/null 2>&1; then" NL
            "  # Amazon Linux packages no Compose plugin: the pinned release, checksum verified." NL
            "  arch=$(uname -m)" NL "  dl=\"$STATE/download\"" NL
            "  f=\"docker-compose-linux-$arch\"" NL
            "  url=\"https://github.com/docker/compose/releases/download/" GM_COMPOSE_PLUGIN_VERSION
            "/$f\"" NL "  mkdir -p \"$dl\" \"$R/usr/local/lib/docker/cli-plugins\"" NL
            "  retry 5 10 curl -fsSL -o \"$dl/$f\" \"$url\"" NL
            "  retry 5 10 curl -fsSL -o \"$dl/$f.sha256\" \"$url.sha256\"" NL
            "  if ! (cd \"$dl\" && sha256sum -c \"$f.sha256\"); then" NL
            "    fail \"checksum mismatch for $url\"" NL "  fi" NL
            "  install -m 0755 \"$dl/$f\" \"$R/usr/local/lib/docker/cli-plugins/docker-compose\"" NL
            "fi" NL);
    } else {
        gm_emit_put(e,
                    "apt_get() { apt-get -o DPkg::Lock::Timeout=600 -y \"$@\"; }" NL
                    "retry 5 15 apt_get update" NL "retry 5 15 apt_get install nginx openssl "
                    "nfs-common stunnel4 git binutils util-linux" NL
                    "command -v docker >/dev/null || retry 5 15 apt_get install docker.io" NL
                    "docker compose version >/dev/null 2>&1 || retry 5 15 apt_get install "
                    "docker-compose-v2" NL
                    "command -v aws >/dev/null || retry 5 15 snap install aws-cli --classic" NL
                    "if [ ! -x \"$R/sbin/mount.efs\" ]; then" NL
                    "  # Ubuntu packages no amazon-efs-utils: build the pinned tag into a .deb." NL
                    "  src=\"$STATE/build/efs-utils\"" NL "  rm -rf \"$src\"" NL
                    "  mkdir -p \"$STATE/build\"" NL
                    "  retry 5 10 git clone --depth 1 --branch " GM_EFS_UTILS_TAG
                    " https://github.com/aws/efs-utils \"$src\"" NL "  cd \"$src\"" NL
                    "  ./build-deb.sh" NL "  cd /" NL
                    "  retry 3 10 apt_get install \"$src\"/build/amazon-efs-utils*deb" NL "fi" NL);
    }
    gm_emit_put(e, "" NL);
}

static void render_efs(gm_emit *e)
{
    size_t n;
    const gm_service *svc = gm_stack_services(&n);
    gm_emit_put(
        e,
        "step efs \"mount $GM_EFS_ID at " GM_STACK_EFS_MOUNT " over TLS\"" NL
        "if [ \"$GM_EFS_ID\" = '" GM_STACK_EFS_PLACEHOLDER "' ]; then" NL
        "  fail \"no EFS file system id: this script was rendered for review only\"" NL "fi" NL
        "mkdir -p \"$EFS\"" NL "if mountpoint -q \"$EFS\"; then" NL
        "  log \"EFS already mounted\"" NL "else" NL
        "  # The instance often boots before the mount targets answer: keep trying." NL
        "  retry \"$EFS_ATTEMPTS\" \"$EFS_DELAY\" mount -t efs -o tls \"$GM_EFS_ID:/\" \"$EFS\"" NL
        "fi" NL "if ! grep -q \"^$GM_EFS_ID:/ " GM_STACK_EFS_MOUNT
        " \" \"$R/etc/fstab\" 2>/dev/null; then" NL "  printf '%s:/ " GM_STACK_EFS_MOUNT
        " efs _netdev,noresvport,tls 0 0\\n' \"$GM_EFS_ID\" >>\"$R/etc/fstab\"" NL "fi" NL);
    gm_emit_put(e, "mkdir -p");
    for (size_t i = 0; i < n; i++)
        if (svc[i].data_dir)
            gm_emit_putf(e, " \"$EFS/%s\"", svc[i].name);
    gm_emit_put(e, NL);
    for (size_t i = 0; i < n; i++)
        if (svc[i].data_dir && svc[i].data_owner)
            gm_emit_putf(e, "chown %s \"$EFS/%s\"" NL, svc[i].data_owner, svc[i].name);
    gm_emit_put(e, "" NL);
}

static void render_docker(gm_emit *e, const gm_stack_params *p, gm_tier tier)
{
    gm_emit_put(e, "step docker \"start Docker after the EFS mount\"" NL
                   "mkdir -p \"$UNITS/docker.service.d\"" NL);
    put_file(e, "\"$UNITS/docker.service.d/geusemaker-efs.conf\"", "644", "GM_DROPIN_EOF",
             docker_dropin);
    gm_emit_put(e, "systemctl daemon-reload" NL "systemctl enable --now docker" NL);
    if (tier == GM_TIER_GPU) {
        gm_emit_put(e, "step gpu \"NVIDIA container runtime\"" NL
                       "retry 30 10 nvidia-smi || fail \"no NVIDIA GPU visible to nvidia-smi: the "
                       "gpu tier needs a GPU instance type and the Deep Learning AMI\"" NL
                       "if ! command -v nvidia-ctk >/dev/null; then" NL);
        if (p->os == GM_OS_AL2023)
            gm_emit_put(e, "  retry 5 10 curl -fsSL -o "
                           "\"$R/etc/yum.repos.d/nvidia-container-toolkit.repo\" \\" NL "    "
                           "https://nvidia.github.io/libnvidia-container/stable/rpm/"
                           "nvidia-container-toolkit.repo" NL
                           "  retry 5 15 dnf install -y nvidia-container-toolkit" NL);
        else
            gm_emit_put(
                e,
                "  key=\"$R/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg\"" NL
                "  mkdir -p \"$R/usr/share/keyrings\" \"$R/etc/apt/sources.list.d\"" NL
                "  retry 5 10 curl -fsSL -o \"$STATE/nvidia.gpgkey\" "
                "https://nvidia.github.io/libnvidia-container/gpgkey" NL
                "  gpg --batch --yes --dearmor -o \"$key\" \"$STATE/nvidia.gpgkey\"" NL
                "  arch=$(dpkg --print-architecture)" NL "  printf 'deb "
                "[signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] "
                "https://nvidia.github.io/libnvidia-container/stable/deb/%s /\\n' \"$arch\" \\" NL
                "    >\"$R/etc/apt/sources.list.d/nvidia-container-toolkit.list\"" NL
                "  retry 5 15 apt_get update" NL
                "  retry 5 15 apt_get install nvidia-container-toolkit" NL);
        gm_emit_put(e, "fi" NL "nvidia-ctk runtime configure --runtime=docker "
                       "--config=\"$R/etc/docker/daemon.json\"" NL "systemctl restart docker" NL);
    }
    gm_emit_put(e, "" NL);
}

static void render_secrets(gm_emit *e)
{
    const gm_secret_def *t = gm_secrets_table();
    gm_emit_put(e,
                "step secrets \"read the secrets from SSM Parameter Store\"" NL "region=\"\"" NL
                "for _ in 1 2 3 4 5 6 7 8 9 10; do" NL
                "  if region=$(imds_get placement/region) && [ -n \"$region\" ]; then break; fi" NL
                "  region=\"\"" NL "  sleep 3" NL "done" NL "if [ -z \"$region\" ]; then" NL
                "  log \"the instance metadata service gave no region: using $GM_REGION\"" NL
                "  region=$GM_REGION" NL "fi" NL "keys=(");
    for (int i = 0; i < GM_SECRET_COUNT; i++)
        gm_emit_putf(e, "%s%s", i ? " " : "", t[i].key);
    gm_emit_put(
        e,
        ")" NL "names=()" NL "for k in \"${keys[@]}\"; do names+=(\"$GM_SSM_PREFIX$k\"); done" NL
        "ssm_out=\"\"" NL "fetch_secrets() {" NL
        "  ssm_out=$(aws ssm get-parameters --region \"$region\" --with-decryption \\" NL
        "    --names \"${names[@]}\" --query 'Parameters[].[Name,Value]' --output text)" NL "}" NL
        "# The instance role can take a few seconds to be usable after boot." NL
        "log \"aws ssm get-parameters: ${#names[@]} parameters under $GM_SSM_PREFIX in $region\"" NL
        "retry 10 6 fetch_secrets" NL "declare -A secret=()" NL
        "while IFS=$'\\t' read -r pname pvalue; do" NL
        "  [ -n \"$pname\" ] && secret[${pname##*/}]=$pvalue" NL "done <<<\"$ssm_out\"" NL
        "ssm_out=\"\"" NL "for k in \"${keys[@]}\"; do" NL "  v=${secret[$k]:-}" NL
        "  [ -n \"$v\" ] || fail \"SSM parameter $GM_SSM_PREFIX$k is missing or empty\"" NL
        "  case \"$v\" in" NL "    *[!A-Za-z0-9._~+/=-]*) fail \"SSM parameter $GM_SSM_PREFIX$k "
        "holds characters outside [A-Za-z0-9._~+/=-]\" ;;" NL "  esac" NL "done" NL "umask 077" NL
        "{" NL "  echo \"# GeuseMaker secrets, from SSM Parameter Store "
        "at boot. Never copy them elsewhere.\"" NL);
    for (int i = 0; i < GM_SECRET_COUNT; i++)
        gm_emit_putf(e, "  printf '%s=%%s\\n' \"${secret[%s]}\"" NL, t[i].env, t[i].key);
    gm_emit_put(e,
                "} >\"$ENV_FILE.tmp\"" NL "chmod 600 \"$ENV_FILE.tmp\"" NL
                "mv -f \"$ENV_FILE.tmp\" \"$ENV_FILE\"" NL "mkdir -p \"$NGINX/geusemaker\"" NL
                "{" NL "  printf \"map \\$http_authorization \\$gm_ollama_ok {\\n  default 0;\\n  "
                "\\\"Bearer %s\\\" 1;\\n}\\n\" \"${secret[ollama_token]}\"" NL
                "  printf \"map \\$http_authorization \\$gm_crawl4ai_ok {\\n  default 0;\\n  "
                "\\\"Bearer %s\\\" 1;\\n}\\n\" \"${secret[crawl4ai_token]}\"" NL
                "} >\"$NGINX/geusemaker/tokens.conf.tmp\"" NL
                "chmod 600 \"$NGINX/geusemaker/tokens.conf.tmp\"" NL
                "mv -f \"$NGINX/geusemaker/tokens.conf.tmp\" \"$NGINX/geusemaker/tokens.conf\"" NL
                "unset secret v" NL "umask 022" NL "" NL);
}

static GM_MUST_CHECK gm_status render_files(gm_emit *e, const gm_stack_params *p, gm_tier tier)
{
    gm_buf tmp;
    gm_buf_init(&tmp, GM_LIMIT_COMPOSE_FILE);
    gm_emit_put(e, "step files \"Compose file, helper scripts, systemd units\"" NL);
    gm_status st = gm_stack_compose_append(p, tier, &tmp);
    if (st == GM_OK)
        put_file(e, "\"$COMPOSE\"", "644", "GM_COMPOSE_EOF", gm_buf_cstr(&tmp));

    struct {
        const char *file;
        void (*render)(gm_emit *);
    } helpers[] = {{"gm-late-start", render_late_script}, {"gm-spot-watch", render_spot_script}};
    for (size_t i = 0; st == GM_OK && i < 2; i++) {
        gm_buf_reset(&tmp);
        gm_emit h = {&tmp, GM_OK};
        helpers[i].render(&h);
        st = h.st;
        char path[64];
        snprintf(path, sizeof path, "\"$APP/bin/%s\"", helpers[i].file);
        if (st == GM_OK)
            put_file(e, path, "755", "GM_SCRIPT_EOF", gm_buf_cstr(&tmp));
    }
    if (st == GM_OK) {
        gm_buf_reset(&tmp);
        gm_emit h = {&tmp, GM_OK};
        render_health_script(&h, p, tier);
        st = h.st;
        if (st == GM_OK)
            put_file(e, "\"$APP/bin/gm-health\"", "755", "GM_SCRIPT_EOF", gm_buf_cstr(&tmp));
    }
    gm_buf_release(&tmp);
    if (st != GM_OK)
        return st;

    put_file(e, "\"$UNITS/geusemaker-stack.service\"", "644", "GM_UNIT_EOF", unit_stack);
    put_file(e, "\"$UNITS/geusemaker-health.service\"", "644", "GM_UNIT_EOF", unit_health_service);
    put_file(e, "\"$UNITS/geusemaker-health.timer\"", "644", "GM_UNIT_EOF", unit_health_timer);
    put_file(e, "\"$UNITS/geusemaker-spot-watch.service\"", "644", "GM_UNIT_EOF", unit_spot);
    put_file(e, "\"$UNITS/geusemaker-late.service\"", "644", "GM_UNIT_EOF", unit_late);
    gm_emit_put(e, "# The Ollama models to pull, one a line." NL "printf '%s\\n'");
    for (size_t i = 0; i < p->n_models; i++)
        gm_emit_putf(e, " '%s'", p->models[i]);
    if (p->n_models == 0)
        gm_emit_put(e, " ''");
    gm_emit_put(e, " >\"$CONF/models\"" NL "systemctl daemon-reload" NL "" NL);
    return GM_OK;
}

static void render_start(gm_emit *e)
{
    size_t n;
    const gm_service *svc = gm_stack_services(&n);
    char core[128] = "";
    for (size_t i = 0; i < n; i++)
        if (!svc[i].late && strlen(core) + strlen(svc[i].name) + 2 < sizeof core) {
            if (*core)
                strcat(core, " ");
            strcat(core, svc[i].name);
        }
    gm_emit_putf(e,
                 "step stack \"pull (in parallel) and start %s\"" NL "retry 5 15 dc pull %s" NL
                 "retry 3 10 dc up -d %s" NL "systemctl enable geusemaker-stack.service" NL
                 "# The large images and the models follow in the background." NL
                 "systemctl start --no-block geusemaker-late.service" NL "" NL,
                 core, core, core);
}

static void render_nginx(gm_emit *e, const gm_stack_params *p)
{
    gm_emit_put(
        e,
        "step nginx \"TLS reverse proxy on 443, health on 80\"" NL
        "key=\"$NGINX/geusemaker/tls.key\"" NL "crt=\"$NGINX/geusemaker/tls.crt\"" NL
        "if [ ! -s \"$key\" ] || [ ! -s \"$crt\" ]; then" NL
        "  # A self-signed certificate: browsers warn until a real one replaces it." NL
        "  umask 077" NL "  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 825 \\" NL
        "    -subj \"/CN=geusemaker-$GM_NAME\" -keyout \"$key.tmp\" -out \"$crt.tmp\"" NL
        "  umask 022" NL "  chmod 600 \"$key.tmp\"" NL "  chmod 644 \"$crt.tmp\"" NL
        "  mv -f \"$key.tmp\" \"$key\"" NL "  mv -f \"$crt.tmp\" \"$crt\"" NL "fi" NL
        "if [ -f \"$NGINX/nginx.conf\" ] && [ ! -f \"$NGINX/nginx.conf.geusemaker-orig\" ]; then" NL
        "  cp -p \"$NGINX/nginx.conf\" \"$NGINX/nginx.conf.geusemaker-orig\"" NL "fi" NL
        "mkdir -p \"$STATE/www/geusemaker\"" NL);
    gm_buf tmp;
    gm_buf_init(&tmp, GM_LIMIT_SMALL);
    gm_emit h = {&tmp, GM_OK};
    render_nginx_conf(&h, p->os);
    if (h.st != GM_OK)
        e->st = h.st;
    put_file(e, "\"$NGINX/nginx.conf\"", "644", "GM_NGINX_EOF", gm_buf_cstr(&tmp));
    gm_buf_release(&tmp);
    gm_emit_put(e, "nginx -t" NL "systemctl enable nginx" NL "systemctl restart nginx" NL "" NL);
}

static void render_epilogue(gm_emit *e)
{
    gm_emit_put(
        e, "step services \"health timer and spot watcher\"" NL
           "systemctl enable --now geusemaker-health.timer geusemaker-spot-watch.service" NL
           "\"$APP/bin/gm-health\" >/dev/null || log \"warning: the first health check failed\"" NL
           "" NL "step finish \"write the success marker\"" NL
           "printf 'time=%s\\n' \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" >\"$STATE/userdata.done\"" NL
           "log \"success: PostgreSQL, n8n and Qdrant are starting; Ollama, Crawl4AI and the "
           "models follow (geusemaker-late.service)\"" NL);
}

gm_status gm_userdata_render(const gm_stack_params *p, gm_buf *out, gm_error *err)
{
    gm_status st = gm_stack_validate(p, err);
    if (st != GM_OK)
        return st;
    gm_tier tier = p->tier;
    char *prefix = p->ssm_prefix ? NULL : gm_stack_default_ssm_prefix(p->name);
    if (!p->ssm_prefix && !prefix)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");

    size_t before = out->len;
    gm_emit e = {out, GM_OK};
    render_prologue(&e, p, tier, p->ssm_prefix ? p->ssm_prefix : prefix);
    render_packages(&e, p);
    render_efs(&e);
    render_docker(&e, p, tier);
    render_secrets(&e);
    st = render_files(&e, p, tier);
    if (st == GM_OK) {
        render_start(&e);
        render_nginx(&e, p);
        render_epilogue(&e);
        st = e.st;
    }
    free(prefix);
    if (st != GM_OK) {
        out->len = before;
        if (out->data)
            out->data[before] = '\0';
        if (st == GM_ERR_INTERNAL)
            return gm_error_set(err, st,
                                "cannot render the UserData: a heredoc delimiter "
                                "appears in its content");
        return gm_error_set(err, st, "cannot render the UserData: %s (buffer limit %zu bytes)",
                            gm_status_name(st), out->max);
    }
    return GM_OK;
}
