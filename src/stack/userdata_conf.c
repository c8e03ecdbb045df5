/* The configuration files the UserData installs: systemd units, the
 * docker.service drop-in and nginx.conf. Static text; nginx.conf depends on
 * the OS (its user) and the tier (who sets X-Forwarded-Proto). */
#include <stddef.h>

#include "stack/internal.h"
#include "stack/stack.h"

#define NL "\n"
#define BIN GM_STACK_APP_DIR "/bin/"
#define COMPOSE_CMD                                \
    "/usr/bin/docker compose -f " GM_STACK_APP_DIR \
    "/docker-compose.yml --env-file " GM_STACK_APP_DIR "/.env"
#define MOUNTS "RequiresMountsFor=" GM_STACK_EFS_MOUNT " " GM_STACK_DATA_MOUNT NL
#define STR_(x) #x
#define STR(x) STR_(x)

static const char unit_stack[] =
    "[Unit]" NL "Description=GeuseMaker AI stack (Docker Compose)" NL "Requires=docker.service" NL
    "# Only while this instance holds the stack's lease on EFS." NL
    "BindsTo=geusemaker-lease.service" NL
    "After=docker.service network-online.target geusemaker-lease.service" NL
    "Wants=network-online.target" NL MOUNTS "[Service]" NL "Type=oneshot" NL
    "RemainAfterExit=yes" NL
    "# The public address can change between boots: derive it again (a few tries)." NL
    "Environment=GM_URL_ATTEMPTS=3" NL "ExecStartPre=/bin/rm -f /var/lib/geusemaker/stopping" NL
    "ExecStartPre=-" BIN "gm-public-url" NL "ExecStart=" COMPOSE_CMD " up -d" NL
    "# Qdrant's newest data to EFS first (it lives on the local volume)." NL "ExecStop=-" BIN
    "gm-qdrant-backup backup" NL "ExecStop=" COMPOSE_CMD " stop -t 45" NL "TimeoutStartSec=0" NL
    "TimeoutStopSec=300" NL "[Install]" NL "WantedBy=multi-user.target" NL;

static const char unit_health_service[] =
    "[Unit]" NL "Description=GeuseMaker health document" NL "After=docker.service" NL "[Service]" NL
    "Type=oneshot" NL "ExecStart=" BIN "gm-health" NL;

static const char unit_health_timer[] =
    "[Unit]" NL "Description=Refresh the GeuseMaker health document" NL "[Timer]" NL
    "OnBootSec=20s" NL "OnUnitActiveSec=" STR(GM_HEALTH_REFRESH_S) "s" NL "AccuracySec=5s" NL
                                                                   "[Install]" NL
                                                                   "WantedBy=timers.target" NL;

static const char unit_spot[] =
    "[Unit]" NL "Description=GeuseMaker spot interruption watcher" NL
    "After=docker.service network-online.target" NL "Wants=network-online.target" NL "[Service]" NL
    "ExecStart=" BIN "gm-spot-watch" NL "Restart=on-failure" NL "RestartSec=5" NL "[Install]" NL
    "WantedBy=multi-user.target" NL;

static const char unit_lease[] =
    "[Unit]" NL "Description=GeuseMaker: the stack's lease on EFS (one instance at a time)" NL
    "After=remote-fs.target" NL "RequiresMountsFor=" GM_STACK_EFS_MOUNT NL "[Service]" NL
    "Type=notify" NL "NotifyAccess=all" NL "ExecStart=" BIN "gm-lease" NL
    "TimeoutStartSec=infinity" NL "Restart=on-failure" NL "RestartSec=10" NL "[Install]" NL
    "WantedBy=multi-user.target" NL;

static const char unit_late[] =
    "[Unit]" NL "Description=GeuseMaker: pull the large images and the Ollama models" NL
    "Requires=docker.service" NL "BindsTo=geusemaker-lease.service" NL
    "After=docker.service geusemaker-lease.service" NL "[Service]" NL "Type=oneshot" NL
    "ExecStart=" BIN "gm-late-start" NL "TimeoutStartSec=0" NL;

static const char unit_backup_service[] =
    "[Unit]" NL "Description=GeuseMaker: Qdrant snapshots to EFS" NL
    "After=docker.service" NL MOUNTS "[Service]" NL "Type=oneshot" NL "ExecStart=" BIN
    "gm-qdrant-backup backup" NL;

static const char
    unit_backup_timer[] =
        "[Unit]" NL "Description=Copy Qdrant snapshots to EFS every " STR(
            GM_QDRANT_BACKUP_INTERVAL_MIN) " minutes" NL "[Timer]" NL
                                           "OnBootSec=" STR(GM_QDRANT_BACKUP_INTERVAL_MIN) "min" NL "OnUnitActiveSec=" STR(
                                               GM_QDRANT_BACKUP_INTERVAL_MIN) "min" NL
                                                                              "AccuracySec=1min" NL
                                                                              "[Install]" NL
                                                                              "WantedBy=timers."
                                                                              "target" NL;

static const char docker_dropin[] =
    "# Containers keep their data on EFS and the local data volume: never start" NL
    "# them on a bare mount point. They never reach the instance metadata" NL
    "# service: the DOCKER-USER rule is put back on every start of Docker." NL "[Unit]" NL MOUNTS
    "After=remote-fs.target" NL "[Service]" NL
    "# After dockerd made its chains (a DOCKER-USER made before it can keep Docker" NL
    "# from jumping to it). Until then the hop limit of 1 keeps containers' IMDSv2" NL
    "# tokens from arriving." NL "ExecStartPost=" BIN "gm-imds-block" NL;

static const gm_ud_file units[] = {
    {"geusemaker-stack.service", unit_stack},
    {"geusemaker-lease.service", unit_lease},
    {"geusemaker-health.service", unit_health_service},
    {"geusemaker-health.timer", unit_health_timer},
    {"geusemaker-spot-watch.service", unit_spot},
    {"geusemaker-late.service", unit_late},
    {"geusemaker-qdrant-backup.service", unit_backup_service},
    {"geusemaker-qdrant-backup.timer", unit_backup_timer},
};

const gm_ud_file *gm_ud_units(size_t *out_n)
{
    *out_n = sizeof units / sizeof *units;
    return units;
}

const char *gm_ud_docker_dropin(void)
{
    return docker_dropin;
}

/* The two health paths, served on 80 and 443. ready: the file gm-health
 * writes for the current minute (and the next two); a health timer that
 * stopped leaves none for the current minute, so the answer is 503. */
static const char health_locations[] =
    "    location = " GM_HEALTH_PATH " {" NL "      root /var/lib/geusemaker/www;" NL
    "      default_type application/json;" NL
    "      add_header Cache-Control \"no-store\" always;" NL "    }" NL
    "    location = " GM_HEALTH_READY_PATH " {" NL "      root /var/lib/geusemaker/www;" NL
    "      default_type text/plain;" NL "      add_header Cache-Control \"no-store\" always;" NL
    "      try_files $gm_ready =503;" NL "    }" NL;

static const char http_head[] =
    "# GeuseMaker: the only public listener (80, 443). Every service listens on" NL
    "# 127.0.0.1; the security group limits who reaches this host." NL "worker_processes auto;" NL
    "pid /run/nginx.pid;" NL "error_log /var/log/nginx/error.log;" NL
    "events { worker_connections 1024; }" NL "http {" NL "  include /etc/nginx/mime.types;" NL
    "  default_type application/octet-stream;" NL "  server_tokens off;" NL "  sendfile on;" NL
    "  access_log /var/log/nginx/access.log;" NL "  client_max_body_size 64m;" NL
    "  map $http_upgrade $connection_upgrade { default upgrade; '' close; }" NL
    "  # The ready file of this minute (server local time, as gm-health writes it)." NL
    "  map $time_iso8601 $gm_ready {" NL
    "    \"~^(?<gm_minute>[0-9]+-[0-9]+-[0-9]+T[0-9]+:[0-9]+):\" " GM_HEALTH_READY_PATH
    "-$gm_minute;" NL "    default " GM_HEALTH_READY_PATH "-none;" NL "  }" NL
    "  # $gm_ollama_ok and $gm_crawl4ai_ok: bearer tokens from SSM, file 0600." NL
    "  include /etc/nginx/geusemaker/tokens.conf;" NL;

static const char proxied[] =
    "    # Ollama has no authentication of its own: a bearer token here." NL
    "    location /ollama/ {" NL "      if ($gm_ollama_ok = 0) { return 401; }" NL
    "      proxy_pass http://127.0.0.1:11434/;" NL "      proxy_set_header Host localhost;" NL
    "      proxy_buffering off;" NL "      proxy_read_timeout 900s;" NL "    }" NL
    "    # Crawl4AI checks the same token itself (0.9+); nginx checks it first." NL
    "    location /crawl4ai/ {" NL "      if ($gm_crawl4ai_ok = 0) { return 401; }" NL
    "      proxy_pass http://127.0.0.1:11235/;" NL "      proxy_read_timeout 300s;" NL "    }" NL
    "    # Qdrant checks its own API key (header api-key)." NL "    location /qdrant/ {" NL
    "      proxy_pass http://127.0.0.1:6333/;" NL "    }" NL
    "    # These UIs load their files and API from the site root: they do not" NL
    "    # work under a prefix (docs/services.md: a tunnel to 127.0.0.1)." NL
    "    location ~ ^/(qdrant/dashboard|crawl4ai/playground|crawl4ai/dashboard) {" NL
    "      default_type text/plain;" NL
    "      return 404 \"Not served here: open it through a tunnel to the instance's "
    "127.0.0.1 (docs/services.md).\\n\";" NL "    }" NL "    location / {" NL
    "      proxy_pass http://127.0.0.1:5678;" NL "      proxy_set_header Host $host;" NL
    "      proxy_set_header X-Forwarded-Host $host;" NL
    "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" NL
    "      proxy_set_header X-Forwarded-Proto $gm_proto;" NL
    "      proxy_set_header Upgrade $http_upgrade;" NL
    "      proxy_set_header Connection $connection_upgrade;" NL "      proxy_buffering off;" NL
    "      proxy_read_timeout 300s;" NL "    }" NL "  }" NL "}" NL;

void gm_ud_nginx_conf(gm_emit *e, const gm_stack_params *p)
{
    gm_emit_putf(e, "user %s;" NL, p->os == GM_OS_AL2023 ? "nginx" : "www-data");
    gm_emit_put(e, http_head);
    if (gm_tier_has_alb(p->tier))
        gm_emit_put(e, "  # Behind the load balancer: the scheme the browser used is the ALB's." NL
                       "  map $http_x_forwarded_proto $gm_proto {" NL
                       "    default $scheme; http http; https https;" NL "  }" NL);
    else
        gm_emit_put(e, "  map $scheme $gm_proto { default $scheme; }" NL);
    gm_emit_put(e, "  server {" NL "    listen 80 default_server;" NL
                   "    listen [::]:80 default_server;" NL);
    gm_emit_put(e, health_locations);
    gm_emit_put(e, "    location / { return 301 https://$host$request_uri; }" NL "  }" NL
                   "  server {" NL "    listen 443 ssl default_server;" NL
                   "    listen [::]:443 ssl default_server;" NL
                   "    ssl_certificate /etc/nginx/geusemaker/tls.crt;" NL
                   "    ssl_certificate_key /etc/nginx/geusemaker/tls.key;" NL
                   "    ssl_protocols TLSv1.2 TLSv1.3;" NL "    proxy_http_version 1.1;" NL
                   "    # A location with its own proxy_set_header inherits none of these." NL
                   "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" NL
                   "    proxy_set_header X-Forwarded-Proto $gm_proto;" NL);
    gm_emit_put(e, health_locations);
    gm_emit_put(e, proxied);
}
