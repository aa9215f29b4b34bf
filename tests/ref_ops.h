/* Plain-C reference implementations of every kernel (double accumulation),
 * used to check the shaders. NCHW layouts as in compute/ops/ops.h. */
#ifndef DDPM_REF_OPS_H
#define DDPM_REF_OPS_H

#include <stdbool.h>

void ref_conv2d(const float *x, int n, int cin, int h, int w, const float *wt,
                const float *bias, int cout, int k, int stride, int pad_t,
                int pad_l, int pad_b, int pad_r, const float *vec,
                const float *res, float out_scale, float *y, int *ho, int *wo);
void ref_groupnorm(const float *x, int n, int c, int hw, const float *gamma,
                   const float *beta, int groups, float eps, bool silu,
                   float *y);
void ref_linear(const float *x, int n, int in, const float *w, const float *b,
                int out, bool silu_in, bool silu_out, float *y);
/* freq[half] computed as diffusers does, in float32. */
void ref_timestep_freqs(int half, float shift, float *freq);
void ref_timestep_embed(const float *t, int n, const float *freq, int dim,
                        int half, bool flip, float *y);
void ref_attention(const float *q, const float *k, const float *v, int n,
                   int c, int tokens, int heads, float *y);
void ref_upsample2x(const float *x, int nc, int h, int w, float *y);
void ref_concat(const float *a, const float *b, int n, int ca, int cb, int hw,
                float *y);

#endif
