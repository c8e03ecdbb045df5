/* Baked images (geusemaker image build | list | delete, deploy --image
 * baked|ami-ID).
 *
 * A build is a deployment-like record named bake-<id> run over the bake
 * graph (tiers.c): every resource it makes is journalled and carries the
 * build's deployment tags, so destroy, cleanup and the sweep find all of it
 * after a crash. On success the image's deployment tags are taken off (it is
 * the build's output, no longer one of its resources), the image node is
 * marked as kept, and the rest is destroyed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "core/crypto.h"
#include "engine/nodes.h"
#include "engine/run.h"
#include "stack/catalogue.h"
#include "stack/validate.h"

bool gm_engine_is_bake(const gm_deployment *dep)
{
    return dep && json_is_true(json_object_get(dep->config, "bake"));
}

gm_status gm_engine_bake_name(char *out, size_t size, gm_error *err)
{
    char id[9];
    gm_status st = gm_random_id(id, 8, err);
    if (st == GM_OK)
        snprintf(out, size, "bake-%s", id);
    return st;
}

gm_status gm_engine_bake_record_new(const gm_deploy_config *cfg, const char *region,
                                    gm_deployment **out, gm_error *err)
{
    const char none[2][64] = {"", ""};
    gm_status st = gm_engine_record_new(cfg, region, none, out, err);
    if (st != GM_OK)
        return st;
    char version[GM_CATALOGUE_VERSION_LEN];
    gm_catalogue_version(version);
    if (json_object_set_new((*out)->config, "bake", json_true()) != 0 ||
        json_object_set_new((*out)->config, "catalogue", json_string(version)) != 0) {
        gm_deployment_free(*out);
        *out = NULL;
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    }
    return GM_OK;
}

/* The image's EBS snapshots into ids. */
static GM_MUST_CHECK gm_status image_snapshots(gm_aws_client *aws, const char *ami, gm_ids *ids,
                                               gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "ImageId.1", ami);
    xmlDocPtr doc = NULL;
    gm_status st = gm_aws_query(aws, &gm_svc_ec2, "DescribeImages", &p, &doc, err);
    gm_params_release(&p);
    gm_read_rows devices;
    gm_read_rows_init(&devices);
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_image_devices, &devices, err);
    xmlFreeDoc(doc);
    for (size_t i = 0; st == GM_OK && i < devices.n; i++)
        if (*gm_read_get(&devices, i, GM_EC2_BDM_SNAPSHOT))
            st = gm_ids_add(ids, gm_read_get(&devices, i, GM_EC2_BDM_SNAPSHOT), err);
    gm_read_rows_release(&devices);
    return st;
}

/* Takes the build's deployment tags off the image and its snapshots: the
 * sweep, cleanup and destroy no longer count them as the build's. */
static GM_MUST_CHECK gm_status release_image(gm_aws_client *aws, const char *ami, gm_error *err)
{
    gm_ids ids;
    gm_ids_init(&ids);
    gm_status st = gm_ids_add(&ids, ami, err);
    if (st == GM_OK)
        st = image_snapshots(aws, ami, &ids, err);
    if (st != GM_OK) {
        gm_ids_release(&ids);
        return st;
    }
    gm_params p;
    gm_params_init(&p);
    for (size_t i = 0; i < ids.n; i++)
        gm_params_addf(&p, ids.v[i], "ResourceId.%zu", i + 1);
    gm_params_add(&p, "Tag.1.Key", GM_TAG_DEPLOYMENT_ID);
    gm_params_add(&p, "Tag.2.Key", GM_TAG_DEPLOYMENT);
    xmlDocPtr doc = NULL;
    st = gm_aws_query(aws, &gm_svc_ec2, "DeleteTags", &p, &doc, err);
    xmlFreeDoc(doc);
    gm_params_release(&p);
    gm_ids_release(&ids);
    return st;
}

/* After a successful run: the image released and kept, the rest deleted. */
static GM_MUST_CHECK gm_status finish_build(const gm_engine_options *o, gm_deployment *dep,
                                            const char *ami, gm_error *err)
{
    gm_status st = release_image(o->aws, ami, err);
    if (st != GM_OK) {
        gm_error_prefix(err, "image %s is made, but its build tags could not be taken off", ami);
        return st;
    }
    gm_node_state *s = gm_deployment_node(dep, "image");
    if (s)
        s->provenance = GM_PROV_REUSED; /* the output: never deleted by this record */
    if (json_object_set_new(dep->config, "image_id", json_string(ami)) != 0)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    if (o->store && (st = gm_store_save(o->store, dep, err)) != GM_OK)
        return st;
    st = gm_engine_destroy(o, dep, false, err);
    if (st != GM_OK)
        gm_error_prefix(err, "image %s is made; removing the builder and its network failed", ami);
    return st;
}

gm_status gm_engine_bake(const gm_engine_options *o, const gm_deploy_config *cfg,
                         gm_deployment *dep, bool resume, char *out_ami, size_t size,
                         gm_deploy_outcome *out, gm_error *err)
{
    gm_engine_options bo = *o;
    bo.graph = gm_engine_bake_graph();
    *out_ami = '\0';
    gm_status st = gm_engine_deploy(&bo, cfg, dep, resume, out, err);
    if (st != GM_OK)
        return st;
    gm_node_state *s = gm_deployment_node(dep, "image");
    if (!s || !s->id)
        return gm_error_set(err, GM_ERR_INTERNAL, "the build ended without an image");
    snprintf(out_ami, size, "%s", s->id);
    return finish_build(&bo, dep, s->id, err);
}

/* ---- the account's baked images ------------------------------------------ */

/* Whether the image's tags (rows of gm_ec2_image_tags) say it is a baked
 * image of geusemaker. */
static bool tagged_baked(const gm_read_rows *tags)
{
    bool managed = false, catalogue = false;
    for (size_t i = 0; i < tags->n; i++) {
        const char *k = gm_read_get(tags, i, 0), *v = gm_read_get(tags, i, 1);
        managed = managed || (strcmp(k, GM_TAG_MANAGED_BY) == 0 && strcmp(v, "geusemaker") == 0);
        catalogue = catalogue || strcmp(k, GM_TAG_CATALOGUE) == 0;
    }
    return managed && catalogue;
}

/* DescribeImages of this account's baked images (filtered by their tags),
 * or of the one image ami: then *out_gone when it does not exist, and
 * *out_foreign (rows empty) when it is not tagged as a baked image of ours. */
static GM_MUST_CHECK gm_status describe_baked(gm_aws_client *aws, const char *ami,
                                              gm_read_rows *rows, bool *out_gone, bool *out_foreign,
                                              gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "Owner.1", "self");
    if (ami) {
        gm_params_add(&p, "ImageId.1", ami);
    } else {
        gm_params_add(&p, "Filter.1.Name", "tag:" GM_TAG_MANAGED_BY);
        gm_params_add(&p, "Filter.1.Value.1", "geusemaker");
        gm_params_add(&p, "Filter.2.Name", "tag-key");
        gm_params_add(&p, "Filter.2.Value.1", GM_TAG_CATALOGUE);
    }
    xmlDocPtr doc = NULL;
    gm_error cerr = {0};
    gm_read_rows_init(rows);
    gm_status st = gm_aws_query(aws, &gm_svc_ec2, "DescribeImages", &p, &doc, &cerr);
    gm_params_release(&p);
    if (ami)
        *out_gone = st != GM_OK && strstr(cerr.aws_code, "InvalidAMIID.NotFound");
    if (ami && *out_gone)
        return GM_OK;
    gm_read_rows tags;
    gm_read_rows_init(&tags);
    if (st != GM_OK)
        *err = cerr;
    else
        st = gm_read_xml(doc, &gm_ec2_baked_images, rows, err);
    if (st == GM_OK && ami)
        st = gm_read_xml(doc, &gm_ec2_image_tags, &tags, err);
    xmlFreeDoc(doc);
    if (st == GM_OK && ami) {
        *out_gone = rows->n == 0;
        *out_foreign = rows->n > 0 && !tagged_baked(&tags);
        if (*out_foreign)
            gm_read_rows_release(rows), gm_read_rows_init(rows);
    }
    gm_read_rows_release(&tags);
    return st;
}

static json_t *image_json(const gm_read_rows *rows, size_t i, const char *version)
{
    const char *cat = gm_read_get(rows, i, GM_EC2_BAKED_CATALOGUE);
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "id",
        gm_read_get(rows, i, GM_EC2_BAKED_ID), "name", gm_read_get(rows, i, GM_EC2_BAKED_NAME),
        "created", gm_read_get(rows, i, GM_EC2_BAKED_CREATED), "state",
        gm_read_get(rows, i, GM_EC2_BAKED_STATE), "architecture",
        gm_read_get(rows, i, GM_EC2_BAKED_ARCH), "os", gm_read_get(rows, i, GM_EC2_BAKED_OS),
        "tier", gm_read_get(rows, i, GM_EC2_BAKED_TIER), "catalogue", cat, "current",
        strcmp(cat, version) == 0);
}

static int newest_first(const void *a, const void *b)
{
    const char *ca = json_string_value(json_object_get(*(json_t *const *)a, "created"));
    const char *cb = json_string_value(json_object_get(*(json_t *const *)b, "created"));
    return strcmp(cb ? cb : "", ca ? ca : "");
}

gm_status gm_engine_images(gm_aws_client *aws, json_t **out, gm_error *err)
{
    gm_read_rows rows;
    gm_status st = describe_baked(aws, NULL, &rows, NULL, NULL, err);
    if (st != GM_OK)
        return st;
    char version[GM_CATALOGUE_VERSION_LEN];
    gm_catalogue_version(version);
    json_t **items = calloc(rows.n + 1, sizeof *items);
    json_t *arr = json_array();
    for (size_t i = 0; items && i < rows.n; i++)
        items[i] = image_json(&rows, i, version);
    if (items && rows.n)
        qsort(items, rows.n, sizeof *items, newest_first);
    for (size_t i = 0; items && arr && i < rows.n; i++)
        if (!items[i] || json_array_append_new(arr, items[i]) != 0)
            json_decref(arr), arr = NULL;
    free(items);
    gm_read_rows_release(&rows);
    if (!arr)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    *out = arr;
    return GM_OK;
}

gm_status gm_engine_image_delete(gm_aws_client *aws, const char *ami, bool *out_gone,
                                 size_t *out_snapshots, gm_error *err)
{
    *out_gone = false;
    *out_snapshots = 0;
    if (strncmp(ami, "ami-", 4) != 0 || !gm_n_ec2_id_ok(ami))
        return gm_error_set(err, GM_ERR_INVALID, "'%s' is not an image id (ami-...)", ami);
    gm_read_rows rows;
    bool gone = false, foreign = false;
    gm_status st = describe_baked(aws, ami, &rows, &gone, &foreign, err);
    gm_read_rows_release(&rows);
    if (st != GM_OK)
        return st;
    if (gone) {
        *out_gone = true;
        return GM_OK;
    }
    if (foreign)
        return gm_error_set(err, GM_ERR_INVALID,
                            "image '%s' is not tagged as a geusemaker baked image: not deleting it",
                            ami);
    return gm_n_image_delete(aws, ami, out_snapshots, err);
}

/* ---- the image a deploy launches ----------------------------------------- */

/* Checks one baked image row against the deployment. */
static GM_MUST_CHECK gm_status check_row(const gm_read_rows *rows, size_t i,
                                         const gm_deploy_config *cfg, const char *version,
                                         gm_error *err)
{
    const char *id = gm_read_get(rows, i, GM_EC2_BAKED_ID);
    const char *cat = gm_read_get(rows, i, GM_EC2_BAKED_CATALOGUE);
    const char *os = gm_read_get(rows, i, GM_EC2_BAKED_OS);
    bool gpu = strcmp(gm_read_get(rows, i, GM_EC2_BAKED_TIER), "gpu") == 0;
    const char *arch = gm_read_get(rows, i, GM_EC2_BAKED_ARCH);
    const char *want_arch = gm_arch_name(gm_instance_type_arch(cfg->instance_type));
    if (strcmp(cat, version) != 0)
        return gm_error_set(err, GM_ERR_INVALID,
                            "image %s was baked for catalogue %s, this geusemaker needs %s: run "
                            "`geusemaker image build`",
                            id, *cat ? cat : "(none)", version);
    if (strcmp(os, gm_os_name(cfg->os)) != 0)
        return gm_error_set(err, GM_ERR_INVALID,
                            "image %s was baked for --os %s, the deployment runs %s", id, os,
                            gm_os_name(cfg->os));
    if (gpu != (cfg->tier == GM_TIER_GPU))
        return gm_error_set(
            err, GM_ERR_INVALID, "image %s was baked %s the GPU runtime, tier %s %s", id,
            gpu ? "with" : "without", gm_tier_name(cfg->tier), gpu ? "has no GPU" : "needs it");
    if (strcmp(arch, want_arch) != 0)
        return gm_error_set(err, GM_ERR_INVALID, "image %s is for %s, instance type '%s' is %s", id,
                            arch, cfg->instance_type, want_arch);
    if (strcmp(gm_read_get(rows, i, GM_EC2_BAKED_STATE), "available") != 0)
        return gm_error_set(err, GM_ERR_INVALID, "image %s is %s, not available", id,
                            gm_read_get(rows, i, GM_EC2_BAKED_STATE));
    return GM_OK;
}

gm_status gm_engine_resolve_image(gm_aws_client *aws, const gm_deploy_config *cfg,
                                  const char *request, char *out, size_t size, gm_error *err)
{
    bool baked = strcmp(request, "baked") == 0;
    if (!baked && (strncmp(request, "ami-", 4) != 0 || !gm_n_ec2_id_ok(request)))
        return gm_error_set(err, GM_ERR_INVALID,
                            "invalid --image '%s': expected 'baked', an image id (ami-...) or "
                            "SERVICE=REF",
                            request);
    char version[GM_CATALOGUE_VERSION_LEN];
    gm_catalogue_version(version);
    gm_read_rows rows;
    bool gone = false, foreign = false;
    gm_status st = describe_baked(aws, baked ? NULL : request, &rows, &gone, &foreign, err);
    if (st != GM_OK)
        return st;
    if (!baked && rows.n == 0)
        st = gm_error_set(err, GM_ERR_INVALID,
                          "image %s is not a geusemaker baked image of this account (or does not "
                          "exist): 'geusemaker image list' shows them",
                          request);
    const char *best = NULL, *best_created = "";
    for (size_t i = 0; st == GM_OK && i < rows.n; i++) {
        gm_error rerr = {0};
        if (check_row(&rows, i, cfg, version, &rerr) != GM_OK) {
            if (!baked)
                *err = rerr, st = rerr.status;
            continue;
        }
        const char *created = gm_read_get(&rows, i, GM_EC2_BAKED_CREATED);
        if (!best || strcmp(created, best_created) > 0)
            best = gm_read_get(&rows, i, GM_EC2_BAKED_ID), best_created = created;
    }
    if (st == GM_OK && !best)
        st = gm_error_set(err, GM_ERR_INVALID,
                          "no baked image for catalogue %s, --os %s, tier %s and %s in %s: run "
                          "`geusemaker image build --os %s --tier %s`",
                          version, gm_os_name(cfg->os), gm_tier_name(cfg->tier),
                          gm_arch_name(gm_instance_type_arch(cfg->instance_type)),
                          gm_aws_client_region(aws), gm_os_name(cfg->os), gm_tier_name(cfg->tier));
    if (st == GM_OK)
        snprintf(out, size, "%s", best);
    gm_read_rows_release(&rows);
    return st;
}
