#include "cost/estimate.h"

#include <string.h>

#define HOURS_PER_MONTH 730.0
#define TABLE_SOURCE "geusemaker price table: AWS on-demand Linux prices, us-east-1, 2025-06"

static const struct {
    const char *type;
    double hourly;
} on_demand[] = {
    {"t3.medium", 0.0416},   {"t3.large", 0.0832},    {"t3.xlarge", 0.1664},
    {"t3.2xlarge", 0.3328},  {"t3a.large", 0.0752},   {"t3a.xlarge", 0.1504},
    {"m5.large", 0.096},     {"m5.xlarge", 0.192},    {"m5.2xlarge", 0.384},
    {"m6i.large", 0.096},    {"m6i.xlarge", 0.192},   {"m6i.2xlarge", 0.384},
    {"m7i.large", 0.1008},   {"m7i.xlarge", 0.2016},  {"m7i.2xlarge", 0.4032},
    {"c6i.xlarge", 0.17},    {"c6i.2xlarge", 0.34},   {"r6i.large", 0.126},
    {"r6i.xlarge", 0.252},   {"t4g.large", 0.0672},   {"t4g.xlarge", 0.1344},
    {"m7g.large", 0.0816},   {"m7g.xlarge", 0.1632},  {"g4dn.xlarge", 0.526},
    {"g4dn.2xlarge", 0.752}, {"g5.xlarge", 1.006},    {"g5.2xlarge", 1.212},
    {"g6.xlarge", 0.8048},   {"g6.2xlarge", 0.9776},
};

void gm_cost_default_assumptions(gm_cost_assumptions *a)
{
    a->ebs_gb = 60;
    a->efs_gb = 10;
    a->transfer_gb = 10;
    a->spot_share = 0.35;
}

double gm_cost_on_demand_hourly(const char *instance_type)
{
    for (size_t i = 0; instance_type && i < sizeof on_demand / sizeof *on_demand; i++)
        if (strcmp(on_demand[i].type, instance_type) == 0)
            return on_demand[i].hourly;
    return -1;
}

static void item(json_t *breakdown, const char *name, double monthly, const char *source)
{
    json_object_set_new(breakdown, name,
                        json_pack("{s:f, s:s}", "monthly", monthly, "source", source));
}

json_t *gm_cost_estimate(const char *instance_type, bool spot, bool with_alb,
                         const gm_cost_assumptions *a)
{
    gm_cost_assumptions dflt;
    if (!a) {
        gm_cost_default_assumptions(&dflt);
        a = &dflt;
    }
    double od = gm_cost_on_demand_hourly(instance_type);
    json_t *breakdown = json_object();
    double monthly = 0, od_monthly = 0;
    if (od >= 0) {
        double ec2 = (spot ? od * a->spot_share : od) * HOURS_PER_MONTH;
        item(breakdown, spot ? "ec2_spot" : "ec2_on_demand", ec2,
             spot ? "on-demand price from the table times the assumed spot share" : TABLE_SOURCE);
        monthly += ec2;
        od_monthly += od * HOURS_PER_MONTH;
    }
    double fixed[][1] = {{a->ebs_gb * 0.08}, {a->efs_gb * 0.30}, {0.005 * HOURS_PER_MONTH},
                         {a->transfer_gb * 0.09}, {with_alb ? 0.0225 * HOURS_PER_MONTH + 5.84 : 0}};
    const char *names[] = {"ebs_gp3_root", "efs_storage", "public_ipv4", "data_transfer_out",
                           "load_balancer"};
    for (int i = 0; i < 5; i++) {
        if (i == 4 && !with_alb)
            continue;
        item(breakdown, names[i], fixed[i][0], TABLE_SOURCE);
        monthly += fixed[i][0];
        od_monthly += fixed[i][0];
    }
    json_t *o = json_pack("{s:f, s:f, s:f, s:o, s:s}", "hourly", monthly / HOURS_PER_MONTH,
                          "daily", monthly / HOURS_PER_MONTH * 24, "monthly", monthly, "breakdown",
                          breakdown, "source", TABLE_SOURCE);
    if (od < 0)
        json_object_set_new(o, "note",
                            json_sprintf("no price known for '%s': EC2 is not included",
                                         instance_type ? instance_type : ""));
    json_object_set_new(o, "saving_vs_on_demand_monthly", json_real(od_monthly - monthly));
    json_object_set_new(o, "assumptions",
                        json_pack("{s:f, s:f, s:f, s:f}", "ebs_gb", a->ebs_gb, "efs_gb", a->efs_gb,
                                  "transfer_gb_per_month", a->transfer_gb, "spot_share_of_on_demand",
                                  a->spot_share));
    return o;
}
