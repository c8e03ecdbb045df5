/* The Elastic IP of a tier without a load balancer: the stack's address stays
 * when the Auto Scaling group replaces the instance. The instance associates
 * it with itself at boot (its UserData, with the instance role's one
 * statement that allows exactly this address and this deployment's
 * instances); the engine allocates, inspects and releases it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/read.h"
#include "engine/nodes.h"

static const char *const ADDRESS_GONE[] = {"InvalidAllocationID.NotFound", NULL};

static GM_MUST_CHECK gm_status send_allocate(gm_node *n, void *ctx, char **out_id, gm_error *err)
{
    char *ip = ctx;
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "Domain", "vpc");
    gm_n_tag_spec(n, &p, 1, "elastic-ip");
    p.once = true; /* no token: a lost answer is looked up by tag */
    xmlDocPtr doc = NULL;
    gm_status st = gm_aws_query(gm_node_aws(n), &gm_svc_ec2, "AllocateAddress", &p, &doc, err);
    gm_params_release(&p);
    gm_read_rows rows;
    if (st == GM_OK)
        st = gm_read_xml(doc, &gm_ec2_allocated_address, &rows, err);
    xmlFreeDoc(doc);
    if (st != GM_OK)
        return st;
    *out_id = gm_read_dup(&rows, 0, GM_EC2_ADDR_ALLOCATION);
    snprintf(ip, 64, "%s", gm_read_get(&rows, 0, GM_EC2_ADDR_PUBLIC_IP));
    gm_read_rows_release(&rows);
    return *out_id ? GM_OK : gm_error_set(err, GM_ERR_PARSE, "AllocateAddress returned no id");
}

/* The address's row (none when it is gone). */
static GM_MUST_CHECK gm_status describe_address(gm_node *n, const char *id, gm_read_rows *rows,
                                                gm_error *err)
{
    gm_params p;
    gm_params_init(&p);
    gm_params_add(&p, "AllocationId.1", id);
    xmlDocPtr doc = NULL;
    gm_read_rows_init(rows);
    gm_status st = gm_n_ec2(n, "DescribeAddresses", &p, &doc, ADDRESS_GONE, err);
    gm_params_release(&p);
    if (st == GM_OK && doc)
        st = gm_read_xml(doc, &gm_ec2_addresses, rows, err);
    xmlFreeDoc(doc);
    return st;
}

static GM_MUST_CHECK gm_status eip_read_back(gm_node *n, const char *id, gm_error *err)
{
    gm_read_rows rows;
    gm_status st = describe_address(n, id, &rows, err);
    if (st == GM_OK && rows.n)
        st = gm_node_set_output(n, "public_ip", gm_read_get(&rows, 0, GM_EC2_ADDR_PUBLIC_IP), err);
    gm_read_rows_release(&rows);
    return st;
}

static GM_MUST_CHECK gm_status eip_create(gm_node *n, gm_error *err)
{
    char *id = NULL;
    char ip[64] = "";
    gm_status st = gm_n_adopt_or_intent(n, &id, NULL, 0, err);
    bool adopted = st == GM_OK && id;
    if (st == GM_OK && !id) {
        st = gm_n_create_once(n, send_allocate, ip, NULL, &id, err);
        if (st == GM_OK)
            st = gm_node_created(n, id, err);
    }
    /* The address a look-up adopted is read back. */
    if (st == GM_OK && (adopted || !*ip))
        st = eip_read_back(n, id, err);
    else if (st == GM_OK)
        st = gm_node_set_output(n, "public_ip", ip, err);
    free(id);
    return st;
}

static GM_MUST_CHECK gm_status eip_find(gm_node *n, gm_ids *out, gm_error *err)
{
    return gm_n_ec2_find_tagged(n, "DescribeAddresses", &gm_ec2_addresses, NULL, NULL, out, err);
}

/* Released after it is disassociated: the group's instances are gone by now
 * (the group is deleted first), but an instance of a crashed run may hold it. */
static GM_MUST_CHECK gm_status eip_destroy(gm_node *n, const char *id, gm_error *err)
{
    gm_read_rows rows;
    gm_status st = describe_address(n, id, &rows, err);
    if (st != GM_OK || rows.n == 0) {
        gm_read_rows_release(&rows);
        return st;
    }
    gm_params p;
    if (*gm_read_get(&rows, 0, GM_EC2_ADDR_ASSOCIATION)) {
        static const char *const unassociated[] = {"InvalidAssociationID.NotFound", NULL};
        gm_params_init(&p);
        gm_params_add(&p, "AssociationId", gm_read_get(&rows, 0, GM_EC2_ADDR_ASSOCIATION));
        st = gm_n_ec2(n, "DisassociateAddress", &p, NULL, unassociated, err);
        gm_params_release(&p);
    }
    gm_read_rows_release(&rows);
    if (st != GM_OK)
        return st;
    gm_params_init(&p);
    gm_params_add(&p, "AllocationId", id);
    st = gm_n_ec2(n, "ReleaseAddress", &p, NULL, ADDRESS_GONE, err);
    gm_params_release(&p);
    return st;
}

static GM_MUST_CHECK gm_status eip_owner(gm_node *n, const char *id, gm_owner *out, char *why,
                                         size_t why_size, gm_error *err)
{
    return gm_n_owner_ec2(n, id, "DescribeAddresses", "AllocationId.1", "addressesSet/item", out,
                          why, why_size, err);
}

/* Which instance holds the address; drift when it is not the group's
 * current instance (its boot has not associated it yet, or failed). */
static GM_MUST_CHECK gm_status eip_inspect(gm_node *n, const char *id, json_t *live, gm_error *err)
{
    gm_read_rows rows;
    gm_status st = describe_address(n, id, &rows, err);
    if (st != GM_OK)
        return st;
    json_object_set_new(live, "exists", json_boolean(rows.n > 0));
    if (rows.n == 0) {
        gm_n_drift(live, "missing");
        return GM_OK;
    }
    const char *holder = gm_read_get(&rows, 0, GM_EC2_ADDR_INSTANCE);
    json_object_set_new(live, "public_ip",
                        json_string(gm_read_get(&rows, 0, GM_EC2_ADDR_PUBLIC_IP)));
    json_object_set_new(live, "state",
                        *holder ? json_sprintf("associated with %s", holder)
                                : json_string("not associated"));
    char *current = NULL;
    st = gm_n_asg_current_instance(n, &current, err);
    if (st == GM_OK && current && strcmp(current, holder) != 0) {
        char what[160];
        snprintf(what, sizeof what, "not associated with the group's instance %s", current);
        gm_n_drift(live, what);
    }
    free(current);
    gm_read_rows_release(&rows);
    return st;
}

const gm_node_ops gm_ops_eip = {
    .kind = "eip",
    .label = "allocating the Elastic IP",
    .delete_label = "releasing the Elastic IP",
    .owns_resource = true,
    .swept_by_find = true,
    .create = eip_create,
    .find = eip_find,
    .destroy = eip_destroy,
    .owner = eip_owner,
    .inspect = eip_inspect,
    .read_back = eip_read_back,
};
