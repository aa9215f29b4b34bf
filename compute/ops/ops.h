/* Ops: each appends its kernel dispatch(es) to a graph and returns the
 * output tensor.  Shapes are NCHW; plain-C references live in tests/. */
#ifndef DDPM_OPS_H
#define DDPM_OPS_H

#include "graph.h"

/* Whether ops record their CPU-device kernels (see variant.c): on a CPU
 * device unless DDPM_KERNELS=gpu, on any device with DDPM_KERNELS=cpu.  The
 * answer must not depend on the batch: it fixes the weights' layout for
 * every graph of a model (activations too large for a texel buffer are
 * refused by graph_compile instead). */
bool ops_use_cpu_kernels(graph *g);
/* Whether CPU devices may run ops as GEMMs through the convolution kernel:
 * 3x3 convolutions by Winograd (ops/conv2d_winograd.c), attention's two
 * products (ops/attention.c); DDPM_KERNELS=cpu-direct, the CPU kernels
 * without them, is for tests and benchmarks. */
bool ops_use_cpu_gemms(graph *g);
/* Whether an op stores weight w as IEEE halves (converted to float in the
 * shader): when the context asks for fp16 weights and every value of w
 * fits the half range (else w stays float32). */
bool ops_fp16_weights(graph *g, gweight w);

/* Convolution with square kernel k, weights [cout, x.c, k, k], bias [cout].
 * Padding is per side (diffusers' asymmetric downsample pad is 0,1,0,1).
 * Optional epilogue: + vec[n, cout] (vec: [n, cout, 1, 1]), then
 * (residual + result) / out_scale. */
typedef struct {
  int k, stride;
  int pad_t, pad_l, pad_b, pad_r;
  const gtensor *vec;  /* [n, c] with c >= vec_off + cout: channels vec_off .. added */
  int vec_off;
  const gtensor *residual;
  float out_scale; /* 0 means 1 */
} conv2d_params;

gtensor op_conv2d(graph *g, gtensor x, gweight w, gweight b, int cout,
                  const conv2d_params *p);

/* GroupNorm(groups, eps) with affine gamma/beta [c], then SiLU if asked. */
gtensor op_groupnorm(graph *g, gtensor x, gweight gamma, gweight beta,
                     int groups, float eps, bool silu);

/* y[n, o] = silu_out?(W @ x[n] + b), x: [n, in, 1, 1]. */
gtensor op_linear(graph *g, gtensor x, gweight w, gweight b, int out, bool silu_out);

/* Sinusoidal embedding of t ([n,1,1,1] float) with frequencies freq[half]:
 * [n, dim, 1, 1]. */
gtensor op_timestep_embed(graph *g, gtensor t, gweight freq, int dim, int half,
                          bool flip_sin_to_cos);

/* softmax(Q K^T * dh^-0.5) V for `heads` heads; q, k, v, result: [n, c, h, w]
 * with head h using channels h*dh .. (h+1)*dh - 1 and tokens h*w. */
gtensor op_attention(graph *g, gtensor q, gtensor k, gtensor v, int heads);

gtensor op_upsample_nearest2x(graph *g, gtensor x);
gtensor op_concat(graph *g, gtensor a, gtensor b);
/* y = x * scale + shift, elementwise. */
gtensor op_affine(graph *g, gtensor x, float scale, float shift);
/* y = x * sigmoid(x), elementwise. */
gtensor op_silu(graph *g, gtensor x);

/* Standard normal noise of the library's generator (shaders/philox.glsl),
 * item b of the batch seeded with seed + b. */
gtensor op_noise(graph *g, gtensor shape, uint64_t seed, uint32_t stream);

/* Static settings of the reverse-step kernel (shaders/sample_step.comp). */
typedef struct {
  uint64_t seed;
  uint32_t ddim, prediction, clip, masked; /* prediction: 0 eps, 1 sample, 2 v */
  float clip_range;
  uint32_t shared_noise; /* 1: every batch item uses `seed` (not seed + b) */
} sample_step_params;

/* In place on x: one reverse step with per-run parameters in `params`
 * (16 floats, see the shader); writes the x0 prediction to x0. */
void op_sample_step(graph *g, gtensor x, gtensor eps, gtensor params,
                    gtensor init, gtensor mask, gtensor z_step, gtensor z_known,
                    gtensor x0, const sample_step_params *sp);

#endif
