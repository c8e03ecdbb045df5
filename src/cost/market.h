/* The market a placement is chosen in: candidate instance types (with their
 * specs and on-demand prices), the availability zones, which type each zone
 * offers, and the current spot prices.
 *
 * A gm_cost_market is plain data. gm_cost_market_gather fills it from AWS
 * (read-only calls: DescribeInstanceTypeOfferings, DescribeInstanceTypes,
 * DescribeSpotPriceHistory, pricing GetProducts); tests fill it by hand and
 * hand it to the pure ranking (cost/rank.h).
 */
#ifndef GM_COST_MARKET_H
#define GM_COST_MARKET_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/client.h"
#include "core/error.h"
#include "cost/prices.h"

#define GM_COST_MAX_TYPES 16 /* candidate types in one market */
#define GM_COST_MAX_AZS 32   /* zones in one market */
#define GM_COST_MAX_NOTES 8
#define GM_COST_NOTE_MAX 320

typedef struct gm_cost_type {
    char type[GM_COST_TYPE_MAX];
    int vcpus;       /* 0: unknown */
    int memory_mib;  /* 0: unknown */
    int nvidia_gpus; /* -1: unknown */
    char specs_source[GM_COST_SOURCE_MAX];
    double on_demand; /* USD per hour; < 0: unknown */
    char on_demand_source[GM_COST_SOURCE_MAX];
    bool offered[GM_COST_MAX_AZS]; /* offered in azs[i]; read only when offerings_known */
} gm_cost_type;

typedef struct gm_cost_market {
    char region[32];
    gm_cost_type types[GM_COST_MAX_TYPES]; /* candidate order: ties go to the earlier */
    size_t n_types;
    char azs[GM_COST_MAX_AZS][GM_COST_AZ_MAX]; /* sorted by name */
    size_t n_azs;
    bool offerings_known; /* false: every type counts as offered in every zone */
    gm_spot_prices spot;  /* owned */
    bool spot_known;      /* the spot price history was read (even if it was empty) */
    char spot_source[GM_COST_SOURCE_MAX];            /* "spot price history 2026-11-23T10:00:00Z" */
    char spot_error[GM_COST_NOTE_MAX];               /* why spot prices are unknown, or "" */
    char notes[GM_COST_MAX_NOTES][GM_COST_NOTE_MAX]; /* fallbacks taken, for the user */
    size_t n_notes;
} gm_cost_market;

/* An empty market in region (may be NULL: ""). Release with
 * gm_cost_market_release; both are safe to call on a released market. */
void gm_cost_market_init(gm_cost_market *m, const char *region);
void gm_cost_market_release(gm_cost_market *m);

/* Adds a candidate type (duplicates are ignored), with its specs and
 * on-demand price from the shipped table when it knows the type (sources say
 * so), else unknown. GM_ERR_INVALID for a malformed name, GM_ERR_LIMIT past
 * GM_COST_MAX_TYPES. */
GM_MUST_CHECK gm_status gm_cost_market_add_type(gm_cost_market *m, const char *type, gm_error *err);
gm_cost_type *gm_cost_market_type(gm_cost_market *m, const char *type); /* NULL if absent */

/* Adds a zone, keeping azs sorted (duplicates ignored). GM_ERR_LIMIT past
 * GM_COST_MAX_AZS. Returns its index through out_index (may be NULL). */
GM_MUST_CHECK gm_status gm_cost_market_add_az(gm_cost_market *m, const char *az, size_t *out_index,
                                              gm_error *err);
/* Index of a zone, or -1. */
int gm_cost_market_az_index(const gm_cost_market *m, const char *az);

/* Marks type as offered in az (adding the zone when add_zone). Sets
 * offerings_known. Unknown types are ignored. */
GM_MUST_CHECK gm_status gm_cost_market_set_offered(gm_cost_market *m, const char *type,
                                                   const char *az, bool add_zone, gm_error *err);

/* Adds a note (printf format; silently dropped past GM_COST_MAX_NOTES). */
void gm_cost_market_note(gm_cost_market *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

typedef struct gm_cost_gather_options {
    gm_aws_client *aws;     /* the deployment's region */
    gm_aws_client *pricing; /* a client in us-east-1 for the Price List API; NULL: table only */
    const char *const *azs; /* zones to consider (the engine's subnets); NULL: every zone
                               offering a candidate */
    size_t n_azs;
    bool skip_spot;  /* on-demand only: no DescribeSpotPriceHistory */
    bool sequential; /* one call after another (tests with ordered canned answers); otherwise
                        specs, spot and on-demand prices are read at once */
} gm_cost_gather_options;

/* Fills a market whose candidate types were added: the zones offering each
 * type (DescribeInstanceTypeOfferings; an error here is returned), specs
 * (DescribeInstanceTypes; on error the table stays and a note says why),
 * spot prices (DescribeSpotPriceHistory; on error spot_known stays false and
 * spot_error says why) and on-demand prices (pricing GetProducts per type;
 * after the first failure the table is used for the rest, with a note).
 * Makes read-only calls only. */
GM_MUST_CHECK gm_status gm_cost_market_gather(const gm_cost_gather_options *o, gm_cost_market *m,
                                              gm_error *err);

/* A new market of the given candidate types (in preference order), gathered
 * as gm_cost_market_gather does; *out is NULL on failure. Free it with
 * gm_cost_market_free (safe on NULL). */
GM_MUST_CHECK gm_status gm_cost_market_for(const gm_cost_gather_options *o,
                                           const char *const *types, size_t n_types,
                                           gm_cost_market **out, gm_error *err);
void gm_cost_market_free(gm_cost_market *m);

/* The parsers gather uses, over one response each (exposed for tests):
 * DescribeInstanceTypeOfferings (instanceTypeOfferingSet, availability-zone
 * locations) and DescribeInstanceTypes (vCpuInfo/defaultVCpus,
 * memoryInfo/sizeInMiB, gpuInfo NVIDIA counts). *out_next_token as in
 * gm_cost_parse_spot_history. */
GM_MUST_CHECK gm_status gm_cost_parse_offerings(xmlDocPtr doc, gm_cost_market *m, bool add_zones,
                                                char **out_next_token, gm_error *err);
GM_MUST_CHECK gm_status gm_cost_parse_instance_types(xmlDocPtr doc, gm_cost_market *m,
                                                     gm_error *err);

#endif
