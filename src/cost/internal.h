/* Helpers shared inside the cost layer (not part of its API). */
#ifndef GM_COST_INTERNAL_H
#define GM_COST_INTERNAL_H

#include <math.h>
#include <stdio.h>

/* v rounded to the nearest multiple of 1/scale, half away from zero; no libm
 * (the layer does not link it). |v * scale| must stay below 2^62. */
static inline double gm_cost_round(double v, double scale)
{
    double x = v * scale;
    long long n = (long long)(x < 0 ? x - 0.5 : x + 0.5);
    return (double)n / scale;
}

static inline double gm_cost_abs(double v)
{
    return v < 0 ? -v : v;
}

/* "0.1664", or six decimals for prices under a tenth of a cent (emulators). */
static inline const char *gm_cost_usd(double v, char *buf, size_t size)
{
    snprintf(buf, size, v >= 0.001 || v <= 0 ? "%.4f" : "%.6f", v);
    return buf;
}

#endif
