/* Instance prices: the table shipped with the tool, current spot prices
 * (EC2 DescribeSpotPriceHistory) and on-demand prices (AWS Price List API).
 *
 * Every price the cost layer uses carries a source string saying where it came
 * from: "spot price history 2026-11-23T10:00:00Z", "price list api
 * 2026-11-23", or GM_COST_TABLE_SOURCE.
 *
 * The parsers are pure (no AWS call) so unit and fuzz tests can feed them
 * canned documents; the fetch functions wrap them around the request core.
 */
#ifndef GM_COST_PRICES_H
#define GM_COST_PRICES_H

#include <jansson.h>
#include <libxml/tree.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "aws/client.h"
#include "core/error.h"

#define GM_COST_TYPE_MAX 32    /* an instance type name, with its NUL */
#define GM_COST_AZ_MAX 32      /* an availability zone name, with its NUL */
#define GM_COST_SOURCE_MAX 128 /* a price's source string, with its NUL */

/* The shipped table: AWS public on-demand prices of Linux instances with shared
 * tenancy in us-east-1, and each type's vCPUs, memory and NVIDIA GPUs, as
 * published in the AWS Price List and the EC2 instance type documentation,
 * taken 2025-06. Other regions differ by a few per cent (more in some). */
#define GM_COST_TABLE_DATE "2025-06"
#define GM_COST_TABLE_SOURCE "shipped table 2025-06 (aws public prices, us-east-1)"

/* Hours in a month: 365 * 24 / 12, the figure AWS's own calculator uses. */
#define GM_COST_HOURS_PER_MONTH 730.0

/* Most (type, AZ) spot prices one parse or fetch keeps (a limit on outside
 * input: a region has well under a thousand for a handful of types). */
#define GM_COST_MAX_SPOT_PRICES 20000
/* Most pages one paginated fetch follows. */
#define GM_COST_MAX_PAGES 100

typedef struct gm_instance_info {
    const char *type;
    double on_demand; /* USD per hour, us-east-1 Linux shared tenancy */
    int vcpus;
    int memory_mib;
    int nvidia_gpus;
} gm_instance_info;

/* The shipped table's row for a type, or NULL when the table does not know it. */
const gm_instance_info *gm_cost_table_lookup(const char *type);

/* ---- spot prices ------------------------------------------------------------ */

typedef struct gm_spot_price {
    char type[GM_COST_TYPE_MAX];
    char az[GM_COST_AZ_MAX];
    double price;     /* USD per hour */
    time_t timestamp; /* when this price took effect; 0 when unknown */
} gm_spot_price;

/* The latest spot price per (type, AZ). */
typedef struct gm_spot_prices {
    gm_spot_price *items;
    size_t n;
    size_t cap;
    size_t skipped; /* history items of other products (Windows, SUSE, ...) */
} gm_spot_prices;

void gm_spot_prices_init(gm_spot_prices *p);
void gm_spot_prices_release(gm_spot_prices *p); /* safe on NULL and on a zeroed struct */

/* Records a price. When (type, az) is known already, the newer timestamp wins;
 * on equal timestamps the first stays. GM_ERR_INVALID for empty or too long
 * names or a price that is negative or not finite; GM_ERR_LIMIT past
 * GM_COST_MAX_SPOT_PRICES. */
GM_MUST_CHECK gm_status gm_spot_prices_put(gm_spot_prices *p, const char *type, const char *az,
                                           double price, time_t timestamp, gm_error *err);

/* The price of (type, az), or NULL. Valid until the next put or release. */
const gm_spot_price *gm_spot_prices_get(const gm_spot_prices *p, const char *type, const char *az);

/* Parses one DescribeSpotPriceHistory response into out (adding to what is
 * there). Only Linux/UNIX items are kept ("Linux/UNIX" and "Linux/UNIX (Amazon
 * VPC)"); others are counted in out->skipped. *out_next_token (may be NULL)
 * receives the nextToken, malloc'd, or NULL on the last page. GM_ERR_PARSE when
 * the text is not XML, has no spotPriceHistorySet, or an item lacks its type or
 * zone or has a spotPrice that is not a non-negative number; out may then hold
 * the items parsed before the bad one. */
GM_MUST_CHECK gm_status gm_cost_parse_spot_history(const char *xml, size_t len, gm_spot_prices *out,
                                                   char **out_next_token, gm_error *err);
/* The same over an already parsed document (borrowed). */
GM_MUST_CHECK gm_status gm_cost_parse_spot_history_doc(xmlDocPtr doc, gm_spot_prices *out,
                                                       char **out_next_token, gm_error *err);

/* Reads the current spot prices (StartTime now: AWS answers with the price in
 * effect at that time) of every type in every zone (n_azs 0: all zones of the
 * region), ProductDescription "Linux/UNIX", following NextToken for at most
 * GM_COST_MAX_PAGES pages. Read-only (one Describe call per page). */
GM_MUST_CHECK gm_status gm_cost_fetch_spot_prices(gm_aws_client *aws, const char *const *types,
                                                  size_t n_types, const char *const *azs,
                                                  size_t n_azs, gm_spot_prices *out, gm_error *err);

/* ---- on-demand prices (AWS Price List API) ------------------------------------ */

/* Finds the hourly on-demand USD price of type in one GetProducts response
 * (a JSON object whose PriceList holds product documents as JSON strings, the
 * aws_v1 format): the product must be the type's Linux, shared-tenancy, no
 * pre-installed software, capacitystatus "Used" offer, the price its OnDemand
 * term's "Hrs" dimension. GM_ERR_NOT_FOUND when no product matches;
 * GM_ERR_PARSE when the response is not that shape. */
GM_MUST_CHECK gm_status gm_cost_parse_price_list(const json_t *response, const char *type,
                                                 double *out_hourly, gm_error *err);

/* Asks the Price List API (GetProducts, ServiceCode AmazonEC2, filters on the
 * type, regionCode, Linux, shared tenancy) for the type's on-demand price in
 * region. pricing must be a client whose region serves the API (us-east-1).
 * Follows NextToken while nothing matched (at most GM_COST_MAX_PAGES pages).
 * Errors are the request core's, or the parser's. Read-only. */
GM_MUST_CHECK gm_status gm_cost_fetch_on_demand(gm_aws_client *pricing, const char *region,
                                                const char *type, double *out_hourly,
                                                gm_error *err);

/* The region of the Price List API. */
#define GM_COST_PRICING_REGION "us-east-1"

/* A client for the Price List API made like base (profile, observer, ...) but
 * in its region, with one attempt and a 5 s timeout: without it the shipped
 * table is used, and every figure says so. NULL when none can be made. */
gm_aws_client *gm_cost_pricing_client_new(const gm_aws_client_options *base);

#endif
