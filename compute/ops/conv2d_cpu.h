/* The convolution kernel for CPU devices (lavapipe), used by op_conv2d. */
#ifndef DDPM_CONV2D_CPU_H
#define DDPM_CONV2D_CPU_H

#include "ops/ops.h"

/* Whether the device (NULL: a graph only planned) has the descriptors and
 * memory the kernel binds. */
bool conv2d_cpu_supported(const VkPhysicalDeviceLimits *limits);

/* Records y = conv(x) (see op_conv2d) with y already shaped. */
void conv2d_cpu(graph *g, gtensor x, gweight w, gweight b, gtensor y,
                const conv2d_params *p);

/* How the kernel wants the weights [cout][cin][kk] of one image laid out:
 * slices of kc input channels, output channels padded to cor (a multiple
 * of the workgroup's wg), each one's kc * kk weights in texels of 4 floats
 * (8 halves with f16). */
typedef struct {
  int cin, cout, kk;
  bool f16;       /* weights as packed halves */
  int kc;         /* input channels per slice */
  int nslices;
  int wg;         /* output channels per workgroup */
  int cor;        /* output channels padded to wg */
  uint64_t k4;    /* texels (4 words) per output channel and slice */
} conv2d_cpu_plan;

/* The layout depends on the weight's shape only, so every graph of a
 * model asks for the same. */
conv2d_cpu_plan conv2d_cpu_plan_for(int cin, int cout, int k, bool f16);
/* Whether a graph of the model has made w's blocked copy for this kernel
 * (the convolution is then direct in every graph). */
bool conv2d_cpu_has_weights(graph *g, gweight w, int cin, int cout, int k, bool f16);
/* Index of weight (co, ci, tap) in the blocked array (a half's index with
 * f16), and the array's size in floats (32-bit words). */
uint64_t conv2d_cpu_plan_index(const conv2d_cpu_plan *a, int co, int ci, int tap);
uint64_t conv2d_cpu_plan_floats(const conv2d_cpu_plan *a);

/* A batched GEMM through the kernel (Winograd's positions, attention's
 * images): image nb of x uses the weights img_texels * nb texels (4 floats)
 * further on, no bias; the nodes are named `op` and count flops_scale
 * times their own flops.  With `weights` set, the weights are that tensor
 * (packed as `plan` says) instead of wt, and b is not bound. */
typedef struct {
  uint32_t img_texels;
  const char *op;
  double flops_scale;
  const gtensor *weights;
} conv2d_cpu_gemm;

/* Records the kernel with weights wt already blocked by `plan`: the
 * convolution p, or with gemm (b bound, not read) that GEMM. */
void conv2d_cpu_record(graph *g, gtensor x, gweight wt, gweight b, gtensor y,
                       const conv2d_params *p, const conv2d_cpu_plan *plan,
                       const conv2d_cpu_gemm *gemm);

/* The Winograd convolution for CPU devices (ops/conv2d_winograd.c),
 * F(4x4, 3x3) or F(2x2, 3x3): whether it takes this convolution, and the
 * recording, in the form the weight's first graph chose (that graph's
 * image decides both). */
bool conv2d_winograd_applies(graph *g, gtensor x, gweight w, int cout,
                             const conv2d_params *p);
void conv2d_winograd(graph *g, gtensor x, gweight w, gweight b, gtensor y,
                     const conv2d_params *p);

#endif
