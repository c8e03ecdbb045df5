/* Instance prices: the shipped table, spot price history, the Price List API. */
#include "cost/prices.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aws/xml.h"
#include "core/str.h"
#include "core/timeutil.h"

/* See GM_COST_TABLE_SOURCE. Sorted by family for reading, not for lookup. */
/* clang-format off */
static const gm_instance_info table[] = {
    /* type            USD/h   vCPU  MiB   GPUs */
    {"t3.medium", 0.0416, 2, 4096, 0},      {"t3.large", 0.0832, 2, 8192, 0},
    {"t3.xlarge", 0.1664, 4, 16384, 0},     {"t3.2xlarge", 0.3328, 8, 32768, 0},
    {"t3a.medium", 0.0376, 2, 4096, 0},     {"t3a.large", 0.0752, 2, 8192, 0},
    {"t3a.xlarge", 0.1504, 4, 16384, 0},    {"t3a.2xlarge", 0.3008, 8, 32768, 0},
    {"t4g.large", 0.0672, 2, 8192, 0},      {"t4g.xlarge", 0.1344, 4, 16384, 0},
    {"m5.large", 0.096, 2, 8192, 0},        {"m5.xlarge", 0.192, 4, 16384, 0},
    {"m5.2xlarge", 0.384, 8, 32768, 0},     {"m5a.xlarge", 0.172, 4, 16384, 0},
    {"m6i.large", 0.096, 2, 8192, 0},       {"m6i.xlarge", 0.192, 4, 16384, 0},
    {"m6i.2xlarge", 0.384, 8, 32768, 0},    {"m6a.xlarge", 0.1728, 4, 16384, 0},
    {"m7i.large", 0.1008, 2, 8192, 0},      {"m7i.xlarge", 0.2016, 4, 16384, 0},
    {"m7i.2xlarge", 0.4032, 8, 32768, 0},   {"m7a.xlarge", 0.23184, 4, 16384, 0},
    {"m7g.large", 0.0816, 2, 8192, 0},      {"m7g.xlarge", 0.1632, 4, 16384, 0},
    {"c6i.xlarge", 0.17, 4, 8192, 0},       {"c6i.2xlarge", 0.34, 8, 16384, 0},
    {"r6i.large", 0.126, 2, 16384, 0},      {"r6i.xlarge", 0.252, 4, 32768, 0},
    {"g4dn.xlarge", 0.526, 4, 16384, 1},    {"g4dn.2xlarge", 0.752, 8, 32768, 1},
    {"g5.xlarge", 1.006, 4, 16384, 1},      {"g5.2xlarge", 1.212, 8, 32768, 1},
    {"g6.xlarge", 0.8048, 4, 16384, 1},     {"g6.2xlarge", 0.9776, 8, 32768, 1},
    {"g6e.xlarge", 1.861, 4, 32768, 1},     {"g5g.xlarge", 0.42, 4, 8192, 1},
    {"g5g.2xlarge", 0.556, 8, 16384, 1},
};
/* clang-format on */

const gm_instance_info *gm_cost_table_lookup(const char *type)
{
    for (size_t i = 0; type && i < sizeof table / sizeof *table; i++)
        if (strcmp(table[i].type, type) == 0)
            return &table[i];
    return NULL;
}

/* ---- spot price set ---------------------------------------------------------- */

void gm_spot_prices_init(gm_spot_prices *p)
{
    memset(p, 0, sizeof *p);
}

void gm_spot_prices_release(gm_spot_prices *p)
{
    if (!p)
        return;
    free(p->items);
    memset(p, 0, sizeof *p);
}

const gm_spot_price *gm_spot_prices_get(const gm_spot_prices *p, const char *type, const char *az)
{
    for (size_t i = 0; p && type && az && i < p->n; i++)
        if (strcmp(p->items[i].type, type) == 0 && strcmp(p->items[i].az, az) == 0)
            return &p->items[i];
    return NULL;
}

gm_status gm_spot_prices_put(gm_spot_prices *p, const char *type, const char *az, double price,
                             time_t timestamp, gm_error *err)
{
    if (!type || !*type || strlen(type) >= GM_COST_TYPE_MAX || !az || !*az ||
        strlen(az) >= GM_COST_AZ_MAX)
        return gm_error_set(err, GM_ERR_INVALID, "spot price with an invalid type or zone name");
    if (!isfinite(price) || price < 0)
        return gm_error_set(err, GM_ERR_INVALID, "invalid spot price for '%s' in '%s'", type, az);
    gm_spot_price *have = (gm_spot_price *)gm_spot_prices_get(p, type, az);
    if (have) {
        if (timestamp > have->timestamp) {
            have->price = price;
            have->timestamp = timestamp;
        }
        return GM_OK;
    }
    if (p->n >= GM_COST_MAX_SPOT_PRICES)
        return gm_error_set(err, GM_ERR_LIMIT, "more than %d spot prices in one answer",
                            GM_COST_MAX_SPOT_PRICES);
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 32;
        gm_spot_price *items = realloc(p->items, cap * sizeof *items);
        if (!items)
            return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
        p->items = items;
        p->cap = cap;
    }
    gm_spot_price *it = &p->items[p->n++];
    memset(it, 0, sizeof *it);
    memcpy(it->type, type, strlen(type) + 1);
    memcpy(it->az, az, strlen(az) + 1);
    it->price = price;
    it->timestamp = timestamp;
    return GM_OK;
}

/* A price as AWS writes it ("0.031200"): digits, one optional dot, nothing
 * else; at most 10000 USD per hour. */
static bool parse_price(const char *s, double *out)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return false;
    int dots = 0, digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.')
            dots++;
        else if (s[i] >= '0' && s[i] <= '9')
            digits++;
        else
            return false;
    }
    if (dots > 1 || digits == 0)
        return false;
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno || !end || *end || !isfinite(v) || v < 0 || v > 10000)
        return false;
    *out = v;
    return true;
}

static bool is_linux_product(const char *pd)
{
    return pd && (strcmp(pd, "Linux/UNIX") == 0 || strcmp(pd, "Linux/UNIX (Amazon VPC)") == 0);
}

gm_status gm_cost_parse_spot_history_doc(xmlDocPtr doc, gm_spot_prices *out, char **out_next_token,
                                         gm_error *err)
{
    if (out_next_token)
        *out_next_token = NULL;
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNodePtr set = root ? gm_xml_find(root, "spotPriceHistorySet") : NULL;
    if (!set)
        return gm_error_set(err, GM_ERR_PARSE,
                            "spot price history answer has no spotPriceHistorySet");
    size_t index = 0;
    GM_XML_FOREACH (item, set, "item") {
        index++;
        char type[GM_COST_TYPE_MAX + 1], az[GM_COST_AZ_MAX + 1], pd[64], price_s[40], ts_s[48];
        gm_xml_text_to(item, "instanceType", type, sizeof type);
        gm_xml_text_to(item, "availabilityZone", az, sizeof az);
        gm_xml_text_to(item, "productDescription", pd, sizeof pd);
        gm_xml_text_to(item, "spotPrice", price_s, sizeof price_s);
        gm_xml_text_to(item, "timestamp", ts_s, sizeof ts_s);
        gm_str_trim(type);
        gm_str_trim(az);
        gm_str_trim(pd);
        gm_str_trim(price_s);
        gm_str_trim(ts_s);
        if (!*type || !*az || strlen(type) >= GM_COST_TYPE_MAX || strlen(az) >= GM_COST_AZ_MAX)
            return gm_error_set(err, GM_ERR_PARSE,
                                "spot price history item %zu has no valid instanceType or "
                                "availabilityZone",
                                index);
        if (!is_linux_product(pd)) {
            out->skipped++;
            continue;
        }
        double price;
        if (!parse_price(price_s, &price))
            return gm_error_set(err, GM_ERR_PARSE,
                                "spot price history item %zu ('%s' in '%s') has an invalid "
                                "spotPrice '%s'",
                                index, type, az, price_s);
        time_t ts = *ts_s ? gm_time_parse_iso8601(ts_s) : 0;
        if (ts < 0)
            ts = 0;
        gm_status st = gm_spot_prices_put(out, type, az, price, ts, err);
        if (st != GM_OK)
            return st;
    }
    if (out_next_token) {
        xmlNodePtr tok = gm_xml_child(root, "nextToken");
        char *t = tok ? gm_xml_text(root, "nextToken") : NULL;
        if (t && *gm_str_trim(t))
            *out_next_token = t;
        else
            free(t);
    }
    return GM_OK;
}

gm_status gm_cost_parse_spot_history(const char *xml, size_t len, gm_spot_prices *out,
                                     char **out_next_token, gm_error *err)
{
    if (out_next_token)
        *out_next_token = NULL;
    xmlDocPtr doc = NULL;
    gm_status st = gm_xml_parse(xml, len, &doc, err);
    if (st != GM_OK)
        return st;
    st = gm_cost_parse_spot_history_doc(doc, out, out_next_token, err);
    xmlFreeDoc(doc);
    return st;
}

gm_status gm_cost_fetch_spot_prices(gm_aws_client *aws, const char *const *types, size_t n_types,
                                    const char *const *azs, size_t n_azs, gm_spot_prices *out,
                                    gm_error *err)
{
    char now[32];
    gm_time_iso8601(time(NULL), now);
    char *token = NULL;
    gm_status st = GM_OK;
    for (int page = 0;; page++) {
        if (page == GM_COST_MAX_PAGES) {
            st =
                gm_error_set(err, GM_ERR_LIMIT, "spot price history goes on for more than %d pages",
                             GM_COST_MAX_PAGES);
            break;
        }
        gm_params p;
        gm_params_init(&p);
        gm_params_add(&p, "ProductDescription.1", "Linux/UNIX");
        gm_params_add(&p, "StartTime", now);
        for (size_t i = 0; i < n_types; i++)
            gm_params_addf(&p, types[i], "InstanceType.%zu", i + 1);
        if (n_azs > 0)
            gm_params_add(&p, "Filter.1.Name", "availability-zone");
        for (size_t i = 0; i < n_azs; i++)
            gm_params_addf(&p, azs[i], "Filter.1.Value.%zu", i + 1);
        if (token)
            gm_params_add(&p, "NextToken", token);
        xmlDocPtr doc = NULL;
        st = gm_aws_query(aws, &gm_svc_ec2, "DescribeSpotPriceHistory", &p, &doc, err);
        gm_params_release(&p);
        if (st != GM_OK)
            break;
        char *next = NULL;
        st = gm_cost_parse_spot_history_doc(doc, out, &next, err);
        xmlFreeDoc(doc);
        if (st != GM_OK)
            break;
        if (next && token && strcmp(next, token) == 0) {
            free(next);
            st =
                gm_error_set(err, GM_ERR_PARSE, "spot price history repeated its pagination token");
            break;
        }
        free(token);
        token = next;
        if (!token)
            break;
    }
    free(token);
    return st;
}

/* ---- Price List API -------------------------------------------------------------- */

static const char *attr(const json_t *attrs, const char *key)
{
    return json_string_value(json_object_get(attrs, key));
}

/* Whether an attribute is absent or has the wanted value. */
static bool attr_ok(const json_t *attrs, const char *key, const char *want)
{
    const char *v = attr(attrs, key);
    return !v || strcmp(v, want) == 0;
}

/* The OnDemand "Hrs" price of one product document, or -1. */
static double product_hourly(const json_t *product)
{
    const json_t *on_demand = json_object_get(json_object_get(product, "terms"), "OnDemand");
    const char *k1, *k2;
    json_t *term, *dim;
    json_object_foreach ((json_t *)on_demand, k1, term) {
        json_object_foreach (json_object_get(term, "priceDimensions"), k2, dim) {
            const char *unit = json_string_value(json_object_get(dim, "unit"));
            const char *usd =
                json_string_value(json_object_get(json_object_get(dim, "pricePerUnit"), "USD"));
            double v;
            if (unit && (strcmp(unit, "Hrs") == 0 || strcmp(unit, "Hours") == 0) &&
                parse_price(usd, &v) && v > 0)
                return v;
        }
    }
    return -1;
}

gm_status gm_cost_parse_price_list(const json_t *response, const char *type, double *out_hourly,
                                   gm_error *err)
{
    const json_t *list = json_object_get(response, "PriceList");
    if (!json_is_object(response) || !json_is_array(list))
        return gm_error_set(err, GM_ERR_PARSE, "price list answer has no PriceList array");
    size_t i;
    const json_t *entry;
    json_array_foreach (list, i, entry) {
        json_t *doc = NULL;
        if (json_is_string(entry))
            doc = json_loadb(json_string_value(entry), json_string_length(entry), 0, NULL);
        else if (json_is_object(entry))
            doc = json_incref((json_t *)entry);
        if (!json_is_object(doc)) {
            json_decref(doc);
            return gm_error_set(err, GM_ERR_PARSE, "price list entry %zu is not a JSON object",
                                i + 1);
        }
        const json_t *attrs = json_object_get(json_object_get(doc, "product"), "attributes");
        const char *t = attr(attrs, "instanceType");
        bool match = t && strcmp(t, type) == 0 && attr_ok(attrs, "operatingSystem", "Linux") &&
                     attr_ok(attrs, "tenancy", "Shared") &&
                     attr_ok(attrs, "preInstalledSw", "NA") &&
                     attr_ok(attrs, "capacitystatus", "Used");
        double v = match ? product_hourly(doc) : -1;
        json_decref(doc);
        if (v > 0) {
            *out_hourly = v;
            return GM_OK;
        }
    }
    return gm_error_set(err, GM_ERR_NOT_FOUND, "the price list has no on-demand price for '%s'",
                        type);
}

static json_t *term_filter(const char *field, const char *value)
{
    return json_pack("{s:s, s:s, s:s}", "Type", "TERM_MATCH", "Field", field, "Value", value);
}

gm_status gm_cost_fetch_on_demand(gm_aws_client *pricing, const char *region, const char *type,
                                  double *out_hourly, gm_error *err)
{
    json_t *filters = json_array();
    json_array_append_new(filters, term_filter("instanceType", type));
    json_array_append_new(filters, term_filter("regionCode", region));
    json_array_append_new(filters, term_filter("operatingSystem", "Linux"));
    json_array_append_new(filters, term_filter("tenancy", "Shared"));
    json_array_append_new(filters, term_filter("preInstalledSw", "NA"));
    json_array_append_new(filters, term_filter("capacitystatus", "Used"));
    json_t *body = json_pack("{s:s, s:o, s:s, s:i}", "ServiceCode", "AmazonEC2", "Filters", filters,
                             "FormatVersion", "aws_v1", "MaxResults", 100);
    if (!body)
        return gm_error_set(err, GM_ERR_NOMEM, "out of memory");
    gm_status st = GM_OK;
    char *last_token = NULL;
    for (int page = 0;; page++) {
        if (page == GM_COST_MAX_PAGES) {
            st = gm_error_set(err, GM_ERR_LIMIT, "price list goes on for more than %d pages",
                              GM_COST_MAX_PAGES);
            break;
        }
        json_t *resp = NULL;
        st = gm_aws_json(pricing, &gm_svc_pricing, "GetProducts", body, &resp, err);
        if (st != GM_OK)
            break;
        gm_error perr = {0};
        st = gm_cost_parse_price_list(resp, type, out_hourly, &perr);
        const char *next = json_string_value(json_object_get(resp, "NextToken"));
        if (st == GM_ERR_NOT_FOUND && next && *next &&
            !(last_token && strcmp(last_token, next) == 0)) {
            free(last_token);
            last_token = gm_strdup(next);
            json_object_set_new(body, "NextToken", json_string(next));
            json_decref(resp);
            continue;
        }
        json_decref(resp);
        if (st != GM_OK)
            gm_error_set(err, st, "%s", perr.message);
        break;
    }
    free(last_token);
    json_decref(body);
    return st;
}

gm_aws_client *gm_cost_pricing_client_new(const gm_aws_client_options *base)
{
    gm_aws_client_options opts = *base;
    opts.region = GM_COST_PRICING_REGION;
    opts.max_attempts = 1;
    opts.total_timeout_ms = 5000;
    opts.transport = NULL;
    gm_aws_client *c = NULL;
    gm_error err = {0};
    if (gm_aws_client_new(&opts, &c, &err) != GM_OK)
        return NULL;
    return c;
}
