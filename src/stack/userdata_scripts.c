/* The helper scripts the UserData installs under /opt/geusemaker/bin: the
 * health document, the late start, the spot watcher, the public URL, the
 * Qdrant backup and restore, and the IMDS rule for containers.
 *
 * Static text goes through gm_emit_put (never through a printf format, so the
 * scripts' own '%' stay as they are); parameters go through gm_emit_putf and
 * are validated to a safe character set first (gm_stack_validate). */
#include <string.h>

#include "stack/catalogue.h"
#include "stack/internal.h"
#include "stack/stack.h"

#define NL "\n"
#define STR_(x) #x
#define STR(x) STR_(x)

void gm_ud_log_fn(gm_emit *e, const char *tag)
{
    gm_emit_putf(e,
                 "log() { printf '%%s [%s] %%s\\n' \"$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)\" \"$*\" "
                 ">&2; }" NL,
                 tag);
}

void gm_ud_have_image_fn(gm_emit *e)
{
    gm_emit_put(e, "have_image() {" NL "  local ref" NL
                   "  ref=$(awk -v s=\"$1\" '$1 == s { print $2 }' \"$R/etc/geusemaker/images\")" NL
                   "  [ -n \"$ref\" ] && docker image inspect \"$ref\" >/dev/null 2>&1" NL "}" NL);
}

void gm_ud_put_file(gm_emit *e, const char *path, const char *mode, const char *delim,
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

static void helper_header(gm_emit *e, const char *what, bool app)
{
    gm_emit_put(e, "#!/bin/bash" NL);
    gm_emit_put(e, what);
    gm_emit_put(e, "# Installed by the GeuseMaker UserData. Holds no secret value." NL
                   "R=\"${GM_ROOT:-}\"" NL "STATE=\"$R/var/lib/geusemaker\"" NL);
    if (app)
        gm_emit_put(e, "APP=\"$R" GM_STACK_APP_DIR "\"" NL);
}

/* imds PATH: a meta-data value through IMDSv2 (the host's own calls). */
static void put_imds_fn(gm_emit *e)
{
    gm_emit_put(
        e, "IMDS=\"${GM_IMDS:-http://169.254.169.254/latest}\"" NL "imds() {" NL "  local token" NL
           "  token=$(curl -fsS --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: "
           "60' \"$IMDS/api/token\") || return 1" NL
           "  curl -fsS --max-time 5 -H \"X-aws-ec2-metadata-token: $token\" "
           "\"$IMDS/meta-data/$1\"" NL "}" NL);
}

/* ---- gm-health ------------------------------------------------------------- */

static const char health_loop[] =
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
    "        state=unhealthy detail=\"container ${st:-missing}\"" NL "      fi ;;" NL "  esac" NL
    "  if [ \"$s\" = postgres ] && [ \"$st\" != missing ]; then" NL "    rc=0" NL
    "    docker exec \"$c\" pg_isready -q -h 127.0.0.1 -U n8n -d n8n || rc=$?" NL
    "    case $rc in" NL "      0) ;;" NL "      1) [ \"$state\" = healthy ] && state=starting; "
    "detail=\"pg_isready: rejecting connections\" ;;" NL
    "      2) state=unhealthy detail=\"pg_isready: no response\" ;;" NL
    "      *) state=unhealthy detail=\"pg_isready: exit $rc\" ;;" NL "    esac" NL "  fi" NL
    "  if [ \"$s\" = qdrant ]; then" NL "    if [ -e \"$STATE/qdrant-restore.failed\" ]; then" NL
    "      state=unhealthy detail=\"restore from EFS failed: $(head -n 1 "
    "\"$STATE/qdrant-restore.failed\")\"" NL
    "    elif [ -e \"$STATE/qdrant-backup.failed\" ] && [ \"$state\" = healthy ]; then" NL
    "      detail=\"last backup to EFS failed: $(head -n 1 \"$STATE/qdrant-backup.failed\")\"" NL
    "    fi" NL "  fi" NL "  if [ \"$s\" = ollama ]; then" NL
    "    if [ -e \"$STATE/late.failed\" ]; then" NL
    "      state=unhealthy detail=$(head -n 1 \"$STATE/late.failed\")" NL
    "    elif [ \"$state\" = healthy ] && [ ! -e \"$STATE/late.done\" ]; then" NL
    "      state=starting detail=\"pulling models\"" NL
    "      [ -s \"$STATE/late.status\" ] && detail=$(head -n 1 \"$STATE/late.status\")" NL
    "    fi" NL "  fi" NL "  if [ -e \"$STATE/stopping\" ]; then" NL
    "    state=unhealthy detail=\"stopped after a spot interruption notice\"" NL "  fi" NL
    "  crit=false" NL "  [[ $critical == *\" $s \"* ]] && crit=true" NL "  case \"$state\" in" NL
    "    unhealthy) if [ $crit = true ]; then crit_bad=1; else other_bad=1; fi ;;" NL
    "    starting) starting=1 ;;" NL "  esac" NL
    "  if [ $crit = true ] && [ \"$state\" != healthy ]; then crit_notready=1; fi" NL
    "  [ -n \"$body\" ] && body+=\",\"" NL
    "  body+=$(printf '\"%s\":{\"state\":\"%s\",\"detail\":\"%s\",\"critical\":%s}' \"$s\" "
    "\"$state\" \"$(clean \"$detail\")\" \"$crit\")" NL "done" NL
    "if [ $crit_bad = 1 ]; then overall=unhealthy" NL
    "elif [ $other_bad = 1 ]; then overall=degraded" NL
    "elif [ $starting = 1 ]; then overall=starting" NL "else overall=healthy; fi" NL;

/* The boot's own budget from the UserData's step lines (boot-steps: "NAME
 * START END SKIPPED") and its milestones (epoch seconds in boot-started,
 * boot-ready: written here the first time the critical services are healthy,
 * boot-finished, boot-models), bounded as health.c reads it. */
static const char health_boot_head[] =
    "boot=null" NL "if [ -s \"$STATE/boot-started\" ]; then" NL
    "  if [ $crit_notready = 0 ] && [ ! -s \"$STATE/boot-ready\" ]; then" NL
    "    date +%s >\"$STATE/boot-ready\"" NL "  fi" NL "  when() {" NL "    local v" NL
    "    v=$(head -n 1 \"$STATE/$1\" 2>/dev/null)" NL "    if [[ $v =~ ^[0-9]{1,12}$ ]]; then" NL
    "      date -u -d \"@$v\" +'\"%Y-%m-%dT%H:%M:%SZ\"'" NL "    else" NL "      echo null" NL
    "    fi" NL "  }" NL "  steps=\"\" n=0" NL "  while read -r sn t0 t1 sk; do" NL
    "    [[ $sn =~ ^[a-z0-9_-]{1,31}$ && $t0 =~ ^[0-9]{1,12}$ && $t1 =~ ^[0-9]{1,12}$ ]] ||" NL
    "      continue" NL;

static const char health_boot_tail[] =
    "    n=$((n + 1))" NL "    case $sk in 1) sk=true ;; *) sk=false ;; esac" NL
    "    [ -n \"$steps\" ] && steps+=\",\"" NL
    "    steps+=$(printf '{\"name\":\"%s\",\"seconds\":%d,\"skipped\":%s}' \\" NL
    "      \"$sn\" $((t1 > t0 ? t1 - t0 : 0)) \"$sk\")" NL "  done <\"$STATE/boot-steps\"" NL
    "  baked=false" NL "  [ -e \"$STATE/baked\" ] && baked=true" NL
    "  boot=$(printf '{\"started\":%s,\"ready\":%s,\"finished\":%s,\"models_ready\":%s,' \\" NL
    "    \"$(when boot-started)\" \"$(when boot-ready)\" \"$(when boot-finished)\" \\" NL
    "    \"$(when boot-models)\")" NL
    "  boot+=$(printf '\"baked\":%s,\"steps\":[%s]}' \"$baked\" \"$steps\")" NL "fi" NL;

/* ready-<minute> (server local time, as nginx's $time_iso8601) for this
 * minute and the next GM_HEALTH_READY_TTL_MIN - 1: nginx answers 200 only
 * while one matches, so a health timer that stopped reads as not ready. */
static const char health_ready[] =
    "# " GM_HEALTH_READY_PATH " answers 200 only while the critical services are healthy" NL
    "# and this script ran in the last " STR(
        GM_HEALTH_READY_TTL_MIN) " minutes: one file per minute it vouches for." NL
                                 "rm -f \"$WWW/ready\"" NL "minute=$(date +%Y-%m-%dT%H:%M)" NL
                                 "for f in \"$WWW\"/ready-*; do" NL "  [ -e \"$f\" ] || continue" NL
                                 "  if [ $crit_notready = 1 ] || [ -e \"$STATE/stopping\" ] || "
                                 "[[ ${f##*/ready-} < $minute ]]; then rm -f \"$f\"; fi" NL
                                 "done" NL "if [ $crit_notready = 0 ] && [ ! -e "
                                 "\"$STATE/stopping\" ]; then" NL "  for i in $(seq 0 $((" STR(
                                     GM_HEALTH_READY_TTL_MIN) " - 1))); do" NL
                                                              "    echo ok >\"$WWW/ready-$(date -d "
                                                              "\"+$i min\" +%Y-%m-%dT%H:%M)\"" NL
                                                              "  done" NL "fi" NL
                                                              "echo \"$overall\"" NL;

static void render_health_script(gm_emit *e, const gm_stack_params *p)
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
    gm_emit_put(e, health_loop);
    gm_emit_put(e, health_boot_head);
    gm_emit_putf(e, "    [ \"$n\" -lt %d ] || break" NL, GM_HEALTH_BOOT_STEPS_MAX);
    gm_emit_put(e, health_boot_tail);
    gm_emit_putf(e,
                 "printf "
                 "'{\"schema\":1,\"deployment\":\"%s\",\"tier\":\"%s\",\"overall\":\"%%s\","
                 "\"checked_at\":\"%%s\",\"services\":{%%s},\"boot\":%%s}\\n' \\" NL,
                 p->name, gm_tier_name(p->tier));
    gm_emit_put(e, "  \"$overall\" \"$now\" \"$body\" \"$boot\" >\"$WWW/health.json.tmp\"" NL
                   "chmod 644 \"$WWW/health.json.tmp\"" NL
                   "mv -f \"$WWW/health.json.tmp\" \"$WWW/health.json\"" NL);
    gm_emit_put(e, health_ready);
}

/* ---- gm-late-start --------------------------------------------------------- */

static void render_late_script(gm_emit *e, const gm_stack_params *p)
{
    (void)p;
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
    gm_ud_log_fn(e, "late-start");
    gm_emit_put(
        e,
        "status() { log \"$*\"; printf '%s\\n' \"$*\" >\"$STATE/late.status\"; }" NL
        "failed() { status \"$*\"; printf '%s\\n' \"$*\" >\"$STATE/late.failed\"; touch "
        "\"$STATE/late.done\"; exit 1; }" NL
        "dc() { docker compose -f \"$APP/docker-compose.yml\" --env-file \"$APP/.env\" \"$@\"; }" NL
        "rm -f \"$STATE/late.done\" \"$STATE/late.failed\" \"$STATE/boot-models\"" NL);
    gm_ud_have_image_fn(e);
    gm_emit_putf(e,
                 "missing=()" NL "for s in %s; do have_image \"$s\" || missing+=(\"$s\"); done" NL
                 "status \"pulling images: ${missing[*]:-none, all here}\"" NL "n=0" NL
                 "until [ \"${#missing[@]}\" = 0 ] || dc pull \"${missing[@]}\"; do" NL,
                 late);
    gm_emit_put(e, "  n=$((n + 1))" NL "  [ \"$n\" -lt 5 ] || failed \"image pull failed\"" NL
                   "  sleep 20" NL "done" NL);
    gm_emit_putf(e, "dc up -d %s || failed \"cannot start %s\"" NL, late, late);
    gm_emit_put(
        e, "status \"waiting for ollama\"" NL "for _ in $(seq 1 90); do" NL
           "  h=$(docker inspect -f '{{.State.Health.Status}}' geusemaker-ollama 2>/dev/null "
           "|| true)" NL "  [ \"$h\" = healthy ] && break" NL "  sleep 5" NL "done" NL "bad=\"\"" NL
           "while IFS= read -r m; do" NL "  [ -n \"$m\" ] || continue" NL
           "  status \"pulling model $m\"" NL "  ok=0" NL "  for _ in 1 2 3; do" NL
           "    if docker exec geusemaker-ollama ollama pull \"$m\" >/dev/null; then ok=1; "
           "break; fi" NL "    sleep 15" NL "  done" NL "  [ $ok = 1 ] || bad=\"$bad $m\"" NL
           "done <\"$R/etc/geusemaker/models\"" NL
           "[ -z \"$bad\" ] || failed \"model pull failed:$bad\"" NL "status \"models ready\"" NL
           "date +%s >\"$STATE/boot-models\"" NL "touch \"$STATE/late.done\"" NL);
}

/* ---- gm-spot-watch --------------------------------------------------------- */

static void render_spot_script(gm_emit *e, const gm_stack_params *p)
{
    (void)p;
    helper_header(e,
                  "# Polls the EC2 spot interruption notice (IMDSv2) every 5 s; when it comes," NL
                  "# copies Qdrant's data to EFS and stops the stack within the two minutes." NL,
                  true);
    gm_emit_put(e, "set -uo pipefail" NL "IMDS=\"${GM_IMDS:-http://169.254.169.254/latest}\"" NL
                   "INTERVAL=\"${GM_SPOT_INTERVAL:-5}\"" NL
                   "exec >>\"$R/var/log/geusemaker/spot-watch.log\" 2>&1" NL);
    gm_ud_log_fn(e, "spot-watch");
    gm_emit_put(
        e,
        "log \"watching for the spot interruption notice\"" NL "while :; do" NL
        "  token=$(curl -fsS --max-time 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "
        "\"$IMDS/api/token\" || true)" NL "  if [ -n \"$token\" ]; then" NL
        "    code=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' -H "
        "\"X-aws-ec2-metadata-token: $token\" \"$IMDS/meta-data/spot/instance-action\" || true)" NL
        "    if [ \"$code\" = 200 ]; then" NL
        "      log \"spot interruption notice: Qdrant to EFS, then stopping the stack\"" NL
        "      touch \"$STATE/stopping\"" NL "      \"$APP/bin/gm-health\" >/dev/null || true" NL
        "      if timeout 70 \"$APP/bin/gm-qdrant-backup\" backup; then" NL
        "        log \"Qdrant backed up to EFS\"" NL "      else" NL
        "        log \"the Qdrant backup failed (qdrant-backup.log): EFS keeps the previous "
        "one\"" NL "      fi" NL
        "      if docker compose -f \"$APP/docker-compose.yml\" --env-file \"$APP/.env\" stop -t "
        "40; then" NL "        log \"stack stopped\"" NL "      else" NL
        "        log \"docker compose stop failed\"" NL "      fi" NL "      sync" NL
        "      exit 0" NL "    fi" NL "  fi" NL "  sleep \"$INTERVAL\"" NL "done" NL);
}

/* ---- gm-public-url --------------------------------------------------------- */

static const char url_body[] =
    "region=$(imds placement/region) || region=$REGION" NL "url=\"\"" NL "i=1" NL "while :; do" NL
    "  if url=$(aws ssm get-parameter --region \"$region\" --name \"$PARAM\" \\" NL
    "    --query Parameter.Value --output text 2>/dev/null) && [ -n \"$url\" ]; then break; fi" NL
    "  url=\"\"" NL "  [ \"$i\" -lt \"$ATTEMPTS\" ] || break" NL
    "  [ \"$i\" = 1 ] && log \"waiting for $PARAM (the load balancer's URL)\"" NL
    "  i=$((i + 1))" NL "  sleep \"$DELAY\"" NL "done" NL "if [ -z \"$url\" ]; then" NL
    "  host=$(imds public-ipv4) || host=$(imds local-ipv4) || host=\"\"" NL
    "  if [ -z \"$host\" ] && [ -s \"$APP/n8n.env\" ]; then" NL
    "    log \"no address from the instance metadata: $APP/n8n.env kept\"" NL "    exit 0" NL
    "  fi" NL "  host=${host:-localhost}" NL "  if [ \"$TIER\" = automation ]; then" NL
    "    log \"WARNING: no parameter $PARAM (the load balancer's URL): n8n shows $host\"" NL
    "  fi" NL "  url=\"$SCHEME://$host\"" NL "fi" NL "url=${url%/}" NL "scheme=${url%%://*}" NL
    "hostport=${url#*://}" NL "case \"$scheme\" in http | https) ;; *)" NL
    "  log \"refusing public URL '$url': not http:// or https://\"" NL "  exit 1 ;;" NL "esac" NL
    "case \"$hostport\" in '' | *[!A-Za-z0-9.:-]*)" NL
    "  log \"refusing public URL '$url': only a host and a port, of [A-Za-z0-9.:-]\"" NL
    "  exit 1 ;;" NL "esac" NL "host=${hostport%%:*}" NL "{" NL
    "  echo \"# The public URL, derived at boot by gm-public-url. No secret here.\"" NL
    "  printf 'N8N_HOST=%s\\nN8N_PROTOCOL=%s\\n' \"$host\" \"$scheme\"" NL
    "  printf 'N8N_EDITOR_BASE_URL=%s/\\nWEBHOOK_URL=%s/\\nN8N_WEBHOOK_URL=%s/\\n' \"$url\" "
    "\"$url\" \"$url\"" NL "} >\"$APP/n8n.env.tmp\"" NL "chmod 644 \"$APP/n8n.env.tmp\"" NL
    "mv -f \"$APP/n8n.env.tmp\" \"$APP/n8n.env\"" NL
    "printf '%s\\n' \"$url\" >\"$STATE/public-url\"" NL "log \"public URL: $url\"" NL
    "# The self-signed certificate names this host (subjectAltName)." NL
    "case \"$host\" in *[!0-9.]*) san=\"DNS:$host\" ;; *) san=\"IP:$host\" ;; esac" NL
    "key=\"$TLS/tls.key\" crt=\"$TLS/tls.crt\"" NL
    "if [ -s \"$key\" ] && [ -s \"$crt\" ] && [ \"$(cat \"$TLS/tls.san\" 2>/dev/null)\" = "
    "\"$san\" ]; then" NL "  exit 0" NL "fi" NL "mkdir -p \"$TLS\"" NL "umask 077" NL
    "if ! openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 825 -subj \"/CN=$host\" \\" NL
    "  -addext \"subjectAltName=$san\" -keyout \"$key.tmp\" -out \"$crt.tmp\"; then" NL
    "  log \"openssl could not make the certificate\"" NL "  exit 1" NL "fi" NL
    "chmod 600 \"$key.tmp\"" NL "chmod 644 \"$crt.tmp\"" NL "mv -f \"$key.tmp\" \"$key\"" NL
    "mv -f \"$crt.tmp\" \"$crt\"" NL "printf '%s\\n' \"$san\" >\"$TLS/tls.san\"" NL
    "chmod 644 \"$TLS/tls.san\"" NL "log \"self-signed certificate for $san\"" NL
    "systemctl --no-block try-reload-or-restart nginx >/dev/null 2>&1 || true" NL;

static void render_url_script(gm_emit *e, const gm_stack_params *p)
{
    bool alb = gm_tier_has_alb(p->tier);
    helper_header(e,
                  "# Derives the URL users reach the stack at: the SSM parameter" NL
                  "# <prefix>" GM_STACK_PUBLIC_URL_PARAMETER
                  " when it exists (tier automation: the load balancer's" NL
                  "# URL, waited for), else the instance's public address. Writes n8n's URL" NL
                  "# variables ($APP/n8n.env) and a self-signed certificate for that host." NL
                  "# Run by the UserData and before every start of geusemaker-stack.service." NL,
                  true);
    gm_emit_put(e, "set -uo pipefail" NL);
    gm_emit_putf(e,
                 "TIER='%s'" NL "SCHEME='%s'" NL "REGION='%s'" NL
                 "PARAM='%s" GM_STACK_PUBLIC_URL_PARAMETER "'" NL
                 "ATTEMPTS=\"${GM_URL_ATTEMPTS:-%d}\"" NL,
                 gm_tier_name(p->tier), alb && !p->alb_https ? "http" : "https", p->region,
                 p->ssm_prefix, alb ? 24 : 1);
    gm_emit_put(e, "DELAY=\"${GM_URL_DELAY:-5}\"" NL "TLS=\"$R/etc/nginx/geusemaker\"" NL);
    gm_ud_log_fn(e, "public-url");
    put_imds_fn(e);
    gm_emit_put(e, url_body);
}

/* ---- gm-qdrant-backup ------------------------------------------------------ */

static const char backup_head[] =
    "set -uo pipefail" NL "shopt -s nullglob" NL "DATA=\"$R" GM_STACK_DATA_MOUNT "/qdrant\"" NL
    "DEST=\"$R" GM_STACK_QDRANT_BACKUP_DIR "\"" NL
    "# On the local volume: it was restored, or there was nothing to restore." NL
    "MARK=\"$DATA/.geusemaker-initialised\"" NL "KEEP=\"${GM_QDRANT_KEEP:-4}\"" NL
    "QDRANT=\"${GM_QDRANT_URL:-http://127.0.0.1:6333}\"" NL "ACTION=\"${1:-}\"" NL
    "exec >>\"$R/var/log/geusemaker/qdrant-backup.log\" 2>&1" NL;

static const char backup_fns[] =
    "die() {" NL "  log \"error: $*\"" NL
    "  printf '%s\\n' \"$*\" >\"$STATE/qdrant-$ACTION.failed\"" NL "  exit 1" NL "}" NL
    "key=$(sed -n 's/^GM_QDRANT_API_KEY=//p' \"$APP/.env\" 2>/dev/null)" NL
    "[ -n \"$key\" ] || die \"no Qdrant API key in $APP/.env\"" NL
    "# Qdrant's API. The key goes in a header read from a pipe, never on a command line." NL
    "q() {" NL "  local method=$1 path=$2" NL "  shift 2" NL
    "  curl -fsS --max-time \"${GM_QDRANT_TIMEOUT:-900}\" -X \"$method\" \\" NL
    "    -H @<(printf 'api-key: %s\\n' \"$key\") \"$@\" \"$QDRANT$path\"" NL "}" NL
    "name_ok() { [[ $1 =~ ^[A-Za-z0-9._-]+$ ]] && [ \"$1\" != . ] && [ \"$1\" != .. ]; }" NL;

static const char backup_fn[] =
    "backup() {" NL "  [ -e \"$MARK\" ] || die \"refusing to back up before the local data is "
    "restored or new ($MARK missing)\"" NL "  exec 8>\"$STATE/qdrant-backup.lock\"" NL
    "  flock -w 300 8 || die \"another backup holds $STATE/qdrant-backup.lock\"" NL
    "  local stamp tmp list c snap n=0 sets" NL
    "  # Sorts as it happened, even two in one second (the spot notice and the stop)." NL
    "  stamp=$(date -u +%Y%m%dT%H%M%S.%NZ)" NL "  tmp=\"$DEST/.partial-$stamp\"" NL
    "  mkdir -p \"$tmp\" || die \"cannot write to $DEST\"" NL
    "  list=$(q GET /collections | jq -r '.result.collections[].name') ||" NL
    "    die \"cannot list the collections\"" NL "  while IFS= read -r c; do" NL
    "    [ -n \"$c\" ] || continue" NL
    "    name_ok \"$c\" || die \"collection '$c': not a file name\"" NL
    "    snap=$(q POST \"/collections/$c/snapshots?wait=true\" | jq -r '.result.name')" NL
    "    name_ok \"$snap\" || die \"no snapshot of collection $c\"" NL
    "    cp \"$DATA/snapshots/$c/$snap\" \"$tmp/$c.snapshot\" || die \"cannot copy $c to EFS\"" NL
    "    q DELETE \"/collections/$c/snapshots/$snap\" >/dev/null ||" NL
    "      log \"warning: the local snapshot $snap of $c stays\"" NL "    n=$((n + 1))" NL
    "  done <<<\"$list\"" NL "  sync" NL
    "  mv \"$tmp\" \"$DEST/$stamp\" || die \"cannot rename $tmp\"" NL
    "  if ! printf '%s\\n' \"$stamp\" >\"$DEST/latest.tmp\" ||" NL
    "    ! mv -f \"$DEST/latest.tmp\" \"$DEST/latest\"; then" NL
    "    die \"cannot update $DEST/latest\"" NL "  fi" NL "  rm -rf \"$DEST\"/.partial-*" NL
    "  sets=(\"$DEST\"/2*Z)" NL "  while [ \"${#sets[@]}\" -gt \"$KEEP\" ]; do" NL
    "    rm -rf \"${sets[0]}\"" NL "    sets=(\"${sets[@]:1}\")" NL "  done" NL
    "  date -u +%Y-%m-%dT%H:%M:%SZ >\"$STATE/qdrant-backup.last\"" NL
    "  rm -f \"$STATE/qdrant-backup.failed\"" NL
    "  log \"backup $stamp: $n collection(s) in $DEST/$stamp\"" NL "}" NL;

static const char restore_fn[] =
    "restore() {" NL "  local latest f c n=0 ready=0" NL "  if [ -e \"$MARK\" ]; then" NL
    "    log \"the local data is initialised: nothing to restore\"" NL "    return 0" NL "  fi" NL
    "  mkdir -p \"$DATA\" || die \"cannot write to $DATA\"" NL
    "  if [ -n \"$(find \"$DATA/storage/collections\" -mindepth 1 -maxdepth 1 2>/dev/null | "
    "head -n 1)\" ]; then" NL "    log \"local collections found: kept, nothing restored\"" NL
    "    touch \"$MARK\"" NL "    return 0" NL "  fi" NL
    "  latest=$(cat \"$DEST/latest\" 2>/dev/null || true)" NL "  if [ -z \"$latest\" ]; then" NL
    "    log \"no backup on EFS: a new Qdrant\"" NL "    touch \"$MARK\" || die \"cannot write "
    "$MARK\"" NL "    rm -f \"$STATE/qdrant-restore.failed\"" NL "    return 0" NL "  fi" NL
    "  if ! name_ok \"$latest\" || [ ! -d \"$DEST/$latest\" ]; then" NL
    "    die \"the backup '$latest' named in $DEST/latest is missing\"" NL "  fi" NL
    "  log \"restoring backup $latest\"" NL "  for _ in $(seq 1 \"${GM_QDRANT_WAIT:-60}\"); do" NL
    "    if curl -fsS --max-time 3 -o /dev/null \"$QDRANT/readyz\"; then" NL "      ready=1" NL
    "      break" NL "    fi" NL "    sleep 5" NL "  done" NL
    "  [ \"$ready\" = 1 ] || die \"Qdrant did not become ready at $QDRANT\"" NL
    "  for f in \"$DEST/$latest\"/*.snapshot; do" NL "    c=${f##*/}" NL "    c=${c%.snapshot}" NL
    "    name_ok \"$c\" || die \"snapshot file $f: not a collection name\"" NL
    "    q POST \"/collections/$c/snapshots/upload?priority=snapshot&wait=true\" \\" NL
    "      -F \"snapshot=@$f\" >/dev/null || die \"cannot restore collection $c from $f\"" NL
    "    n=$((n + 1))" NL "  done" NL "  touch \"$MARK\" || die \"cannot write $MARK\"" NL
    "  rm -f \"$STATE/qdrant-restore.failed\"" NL
    "  log \"restored $n collection(s) from $DEST/$latest\"" NL "}" NL "case \"$ACTION\" in" NL
    "  backup) backup ;;" NL "  restore) restore ;;" NL
    "  *) log \"usage: gm-qdrant-backup backup|restore\"; exit 2 ;;" NL "esac" NL;

static void render_backup_script(gm_emit *e, const gm_stack_params *p)
{
    (void)p;
    helper_header(e,
                  "# Qdrant keeps its data on the local volume (it does not work on NFS)." NL
                  "#   backup:  a snapshot of every collection (Qdrant's snapshot API, with its" NL
                  "#            API key) copied to EFS as one set; the newest $KEEP sets stay." NL
                  "#   restore: on a new, empty local volume, the newest set from EFS." NL
                  "# Run by geusemaker-qdrant-backup.timer, the spot watcher, the stack's stop" NL
                  "# and the UserData." NL,
                  true);
    gm_emit_put(e, backup_head);
    gm_ud_log_fn(e, "qdrant-backup");
    gm_emit_put(e, backup_fns);
    gm_emit_put(e, backup_fn);
    gm_emit_put(e, restore_fn);
}

/* ---- gm-imds-block --------------------------------------------------------- */

void gm_ud_imds_block_script(gm_emit *e, const gm_stack_params *p)
{
    (void)p;
    gm_emit_put(e, "#!/bin/bash" NL
                   "# Containers must not reach the instance metadata service: its role" NL
                   "# credentials read every secret of the deployment. DOCKER-USER sees the" NL
                   "# packets Docker forwards from containers; the host's own calls (OUTPUT)" NL
                   "# never pass it. Run by docker.service (drop-in) and the UserData." NL
                   "# Installed by the GeuseMaker UserData. Holds no secret value." NL "set -u" NL);
    gm_ud_log_fn(e, "imds-block");
    gm_emit_put(e, "rule=(-d 169.254.169.254/32 -j DROP)" NL
                   "iptables -w -N DOCKER-USER 2>/dev/null || true" NL
                   "# Docker jumps to DOCKER-USER first; put the jump back if it is missing." NL
                   "if ! iptables -w -C FORWARD -j DOCKER-USER 2>/dev/null; then" NL
                   "  iptables -w -I FORWARD 1 -j DOCKER-USER || log \"warning: no jump to "
                   "DOCKER-USER\"" NL "fi" NL
                   "if ! iptables -w -C DOCKER-USER \"${rule[@]}\" 2>/dev/null; then" NL
                   "  if ! iptables -w -I DOCKER-USER 1 \"${rule[@]}\"; then" NL
                   "    log \"cannot add the IMDS rule to DOCKER-USER\"" NL "    exit 1" NL
                   "  fi" NL "  log \"containers cannot reach 169.254.169.254 (DOCKER-USER)\"" NL
                   "fi" NL "# The IPv6 endpoint, where the kernel filters IPv6: best effort." NL
                   "if command -v ip6tables >/dev/null 2>&1; then" NL
                   "  ip6tables -w -C FORWARD -d fd00:ec2::254/128 -j DROP 2>/dev/null ||" NL
                   "    ip6tables -w -I FORWARD 1 -d fd00:ec2::254/128 -j DROP 2>/dev/null ||" NL
                   "    log \"warning: no IPv6 rule for fd00:ec2::254\"" NL "fi" NL "exit 0" NL);
}

/* ---- gm-lease ---------------------------------------------------------------- */

/* Holds the stack's lease: an exclusive lock on a file on EFS, for as long
 * as geusemaker-lease.service runs. The Auto Scaling group's capacity
 * rebalancing starts a replacement before it terminates the instance it
 * replaces; the replacement waits here until that instance is gone (its
 * lock goes with it: EFS releases a client's locks when the client's lease
 * expires), so two instances never run PostgreSQL and n8n on the same files.
 * flock(1) on NFS takes a whole-file POSIX lock, which EFS keeps. */
static void render_lease_script(gm_emit *e, const gm_stack_params *p)
{
    (void)p;
    helper_header(e,
                  "# The stack's lease on EFS: one instance runs the stack at a time (see" NL
                  "# geusemaker-lease.service). Ready (sd_notify) once the lock is held." NL,
                  false);
    gm_emit_put(e, "set -euo pipefail" NL "DIR=\"$R" GM_STACK_EFS_MOUNT "/" GM_STACK_LEASE_DIR
                   "\"" NL "mkdir -p \"$DIR\"" NL);
    gm_ud_log_fn(e, "lease");
    gm_emit_put(e, "exec 8>>\"$DIR/stack.lease\"" NL "if ! flock -n 8; then" NL
                   "  log \"the stack's lease is held by $(cat \"$DIR/holder\" 2>/dev/null || "
                   "echo 'another instance'): waiting until it is gone\"" NL "  flock 8" NL "fi" NL
                   "printf '%s since %s\\n' \"$(uname -n)\" \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" "
                   ">\"$DIR/holder\"" NL "log \"lease held\"" NL "systemd-notify --ready || true" NL
                   "# The lock stays with this process." NL "exec sleep infinity" NL);
}

static const gm_ud_script scripts[] = {
    {"gm-late-start", render_late_script},      {"gm-spot-watch", render_spot_script},
    {"gm-health", render_health_script},        {"gm-public-url", render_url_script},
    {"gm-qdrant-backup", render_backup_script}, {"gm-lease", render_lease_script},
};

const gm_ud_script *gm_ud_scripts(size_t *out_n)
{
    *out_n = sizeof scripts / sizeof *scripts;
    return scripts;
}
