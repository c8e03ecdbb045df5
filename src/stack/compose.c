/* The Docker Compose file, generated from the catalogue.
 *
 * Every string value is written as a double-quoted YAML scalar, so no value
 * can change the document's structure. Values never contain a secret: those
 * are Compose interpolations resolved from the env file on the instance. */
#include <stdio.h>
#include <string.h>

#include "stack/catalogue.h"
#include "stack/internal.h"
#include "stack/stack.h"

/* A double-quoted YAML scalar. Catalogue values are plain ASCII; anything
 * else is escaped all the same. */
static GM_MUST_CHECK gm_status put_quoted(gm_buf *b, const char *s)
{
    gm_status st = gm_buf_appendc(b, '"');
    for (const unsigned char *c = (const unsigned char *)s; st == GM_OK && *c; c++) {
        if (*c == '"' || *c == '\\')
            st = gm_buf_printf(b, "\\%c", *c);
        else if (*c < 0x20 || *c == 0x7f)
            st = gm_buf_printf(b, "\\x%02x", *c);
        else
            st = gm_buf_appendc(b, (char)*c);
    }
    return st == GM_OK ? gm_buf_appendc(b, '"') : st;
}

static GM_MUST_CHECK gm_status put_kv(gm_buf *b, int indent, const char *key, const char *value)
{
    gm_status st = gm_buf_printf(b, "%*s%s: ", indent, "", key);
    if (st == GM_OK)
        st = put_quoted(b, value);
    return st == GM_OK ? gm_buf_appendc(b, '\n') : st;
}

gm_status gm_stack_image_ref(const gm_stack_params *p, const gm_service *s, char *out, size_t size)
{
    const char *override = gm_stack_image_override(p, s->name);
    int n = override    ? snprintf(out, size, "%s", override)
            : s->digest ? snprintf(out, size, "%s@%s", s->image, s->digest)
                        : snprintf(out, size, "%s", s->image);
    return n > 0 && (size_t)n < size ? GM_OK : GM_ERR_LIMIT;
}

/* The catalogue's pin (REPO:TAG@DIGEST: the digest decides what is pulled,
 * the tag is for people), or the override p gives (--image: validated, so
 * [A-Za-z0-9._/:@-] only, quoted all the same). The comment keeps the pin it
 * replaces in sight for a reviewer. */
static GM_MUST_CHECK gm_status render_image(gm_buf *b, const gm_service *s,
                                            const gm_stack_params *p)
{
    char ref[256];
    gm_status st = gm_stack_image_ref(p, s, ref, sizeof ref);
    if (st == GM_OK && gm_stack_image_override(p, s->name))
        st = gm_buf_printf(b, "    # image override (--image); the catalogue pins %s\n", s->image);
    if (st == GM_OK)
        st = gm_buf_appends(b, "    image: ");
    if (st == GM_OK)
        st = put_quoted(b, ref);
    return st == GM_OK ? gm_buf_appendc(b, '\n') : st;
}

static GM_MUST_CHECK gm_status render_env(gm_buf *b, const gm_service *s, const gm_stack_params *p)
{
    gm_service_env extra[GM_SERVICE_MAX_TIER_ENV];
    size_t n_extra = gm_stack_tier_env(s, p->tier, p->alb_https, extra);
    gm_status st = GM_OK;
    if (s->env_file)
        st = gm_buf_printf(b, "    env_file:\n      - \"%s\"\n", s->env_file);
    if (st != GM_OK || (!s->env[0].name && n_extra == 0))
        return st;
    st = gm_buf_appends(b, "    environment:\n");
    for (size_t i = 0; st == GM_OK && i < GM_SERVICE_MAX_ENV && s->env[i].name; i++)
        st = put_kv(b, 6, s->env[i].name, s->env[i].value);
    for (size_t i = 0; st == GM_OK && i < n_extra; i++)
        st = put_kv(b, 6, extra[i].name, extra[i].value);
    return st;
}

static GM_MUST_CHECK gm_status render_volume(gm_buf *b, const gm_service *s)
{
    if (!s->data_dir || s->storage == GM_STORAGE_NONE)
        return GM_OK;
    const char *mount = s->storage == GM_STORAGE_LOCAL ? GM_STACK_DATA_MOUNT : GM_STACK_EFS_MOUNT;
    /* create_host_path false: with the mount missing the container fails
     * instead of writing to the instance's root disk. */
    return gm_buf_printf(b,
                         "    volumes:\n"
                         "      - type: \"bind\"\n"
                         "        source: \"%s/%s\"\n"
                         "        target: \"%s\"\n"
                         "        bind:\n"
                         "          create_host_path: false\n",
                         mount, s->name, s->data_dir);
}

static GM_MUST_CHECK gm_status render_healthcheck(gm_buf *b, const gm_service *s)
{
    if (!s->test[0])
        return GM_OK;
    gm_status st = gm_buf_appends(b, "    healthcheck:\n      test: [");
    for (size_t i = 0; st == GM_OK && i < GM_SERVICE_MAX_TEST && s->test[i]; i++) {
        if (i)
            st = gm_buf_appends(b, ", ");
        if (st == GM_OK)
            st = put_quoted(b, s->test[i]);
    }
    if (st == GM_OK)
        st = gm_buf_printf(b,
                           "]\n"
                           "      interval: \"%s\"\n"
                           "      timeout: \"%s\"\n"
                           "      retries: %d\n"
                           "      start_period: \"%s\"\n",
                           s->interval, s->timeout, s->retries, s->start_period);
    return st;
}

static GM_MUST_CHECK gm_status render_service(gm_buf *b, const gm_service *s,
                                              const gm_stack_params *p)
{
    gm_status st = gm_buf_printf(b, "  %s:\n", s->name);
    if (st == GM_OK)
        st = render_image(b, s, p);
    if (st == GM_OK)
        st = gm_buf_printf(b,
                           "    container_name: \"geusemaker-%s\"\n"
                           "    restart: \"unless-stopped\"\n",
                           s->name);
    if (st == GM_OK)
        st = render_env(b, s, p);
    if (st == GM_OK)
        st = render_volume(b, s);
    if (st == GM_OK && s->publish && s->port)
        st = gm_buf_printf(b, "    ports:\n      - \"127.0.0.1:%d:%d\"\n", s->port, s->port);
    if (st == GM_OK && s->depends_on)
        st = gm_buf_printf(b,
                           "    depends_on:\n"
                           "      %s:\n"
                           "        condition: \"service_healthy\"\n",
                           s->depends_on);
    if (st == GM_OK)
        st = render_healthcheck(b, s);
    if (st == GM_OK && s->mem_reservation)
        st = put_kv(b, 4, "mem_reservation", s->mem_reservation);
    if (st == GM_OK && s->shm_size)
        st = put_kv(b, 4, "shm_size", s->shm_size);
    if (st == GM_OK)
        st = gm_buf_appends(b, "    stop_grace_period: \"45s\"\n"
                               "    logging:\n"
                               "      driver: \"json-file\"\n"
                               "      options:\n"
                               "        max-size: \"10m\"\n"
                               "        max-file: \"3\"\n");
    if (st == GM_OK && s->gpu && p->tier == GM_TIER_GPU)
        st = gm_buf_appends(b, "    deploy:\n"
                               "      resources:\n"
                               "        reservations:\n"
                               "          devices:\n"
                               "            - driver: \"nvidia\"\n"
                               "              count: \"all\"\n"
                               "              capabilities: [\"gpu\"]\n");
    return st;
}

gm_status gm_stack_compose_append(const gm_stack_params *p, gm_tier tier, gm_buf *out)
{
    size_t n;
    const gm_service *svc = gm_stack_services(&n);
    gm_status st =
        gm_buf_printf(out,
                      "# Docker Compose file of GeuseMaker deployment '%s' (tier %s).\n"
                      "# Generated by geusemaker from its stack catalogue. No secret is\n"
                      "# written here: ${GM_...} values come from the 0600 env file.\n"
                      "# Every port is published on 127.0.0.1 only; nginx fronts them.\n"
                      "name: \"geusemaker\"\n"
                      "services:\n",
                      p->name, gm_tier_name(tier));
    for (size_t i = 0; st == GM_OK && i < n; i++)
        st = render_service(out, &svc[i], p);
    if (st == GM_OK)
        st = gm_buf_appends(out, "networks:\n"
                                 "  default:\n"
                                 "    name: \"geusemaker\"\n");
    return st;
}

gm_status gm_compose_render(const gm_stack_params *p, gm_buf *out, gm_error *err)
{
    gm_status st = gm_stack_validate(p, err);
    if (st != GM_OK)
        return st;
    gm_tier tier = p->tier;
    size_t before = out->len;
    st = gm_stack_compose_append(p, tier, out);
    if (st != GM_OK) {
        out->len = before;
        if (out->data)
            out->data[before] = '\0';
        return gm_error_set(err, st, "cannot render the Compose file: %s (buffer limit %zu bytes)",
                            gm_status_name(st), out->max);
    }
    return GM_OK;
}
