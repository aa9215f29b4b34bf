#include <string.h>

#include "ops/conv2d_cpu.h"
#include "ops/ops.h"
#include "linear.spv.h"

typedef struct {
  uint32_t n, in_features, out_features, silu_out;
} linear_push;

gtensor op_linear(graph *g, gtensor x, gweight w, gweight b, int out, bool silu_out) {
  /* On CPU devices a 1x1 convolution of a 1x1 image: its unrolled kernel
   * gathers the weights as vectors, where this shader's loop reads them
   * lane by lane (0.5 ms for cifar10's 512 x 256 projections). */
  ddpm_context *ctx = graph_context(g);
  if (ops_use_cpu_kernels(g) && conv2d_cpu_supported(ctx ? &ctx->limits : NULL)) {
    conv2d_params p = {.k = 1, .stride = 1};
    gtensor in = x;
    in.c = x.c * x.h * x.w, in.h = in.w = 1;
    gtensor y = op_conv2d(g, in, w, b, out, &p);
    return silu_out ? op_silu(g, y) : y;
  }
  gtensor y = graph_tensor(g, x.n, out, 1, 1);
  linear_push pc = {x.n, (uint32_t)x.c * x.h * x.w, out, silu_out};
  gnode nd = {
    .op = "linear",
    .spirv = spv_linear, .spirv_size = sizeof spv_linear,
    .n_bind = 4,
    .bind = {gb_tensor(x), gb_weight(w), gb_weight(b), gb_tensor(y)},
    .writes = 3,
    .push_size = sizeof pc,
    .flops = 2.0 * x.n * pc.in_features * out,
  };
  memcpy(nd.push, &pc, sizeof pc);
  graph_groups_1d(gtensor_count(y), 64, nd.groups);
  graph_add(g, &nd);
  return y;
}
