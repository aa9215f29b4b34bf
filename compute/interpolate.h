/* Internal to ddpm_interpolate, exposed for tests/test_interpolate.c. */
#ifndef DDPM_INTERPOLATE_H
#define DDPM_INTERPOLATE_H

#include <stdbool.h>
#include <stddef.h>

/* The noised pair xa, xb [n] mixed at lambda in [0, 1] into out[n]:
 * (1 - lambda) xa + lambda xb, or with `spherical` the slerp of the two
 * scaled to the norm (1 - lambda) |xa| + lambda |xb|.  lambda 0 and 1 copy
 * xa and xb exactly. */
void interp_mix(const float *xa, const float *xb, size_t n, double lambda,
                bool spherical, float *out);

#endif
