/* 2-D convolution: picks the CPU-device kernel (ops/conv2d_cpu.c) or the
 * tiled implicit GEMM for GPUs (shaders/conv2d.comp). */
#include <string.h>

#include "ops/conv2d_cpu.h"
#include "conv2d.spv.h"

typedef struct {
  uint32_t n, cin, h, w, cout, ho, wo, k, stride;
  int32_t pad_t, pad_l;
  uint32_t vec_stride, vec_off, has_res;
  float out_scale;
} conv2d_push;

static void pack_f16(const float *src, float *dst, const void *count) {
  for (uint64_t i = 0; i < *(const uint64_t *)count; i++) wstore_set_f16(dst, i, src[i]);
}

gtensor op_conv2d(graph *g, gtensor x, gweight w, gweight b, int cout,
                  const conv2d_params *p) {
  int ho = (x.h + p->pad_t + p->pad_b - p->k) / p->stride + 1;
  int wo = (x.w + p->pad_l + p->pad_r - p->k) / p->stride + 1;
  gtensor y = graph_tensor(g, x.n, cout, ho, wo);
  g_return_val_if_fail(!p->vec || (p->vec->n == x.n && p->vec->h == 1 && p->vec->w == 1 &&
                                   p->vec_off >= 0 && p->vec_off + cout <= p->vec->c), y);
  /* The register-tiled kernel on CPUs, the tiled GEMM on GPUs. */
  ddpm_context *ctx = graph_context(g);
  if (ops_use_cpu_kernels(g) && conv2d_cpu_supported(ctx ? &ctx->limits : NULL)) {
    if (conv2d_winograd_applies(g, x, w, cout, p))
      conv2d_winograd(g, x, w, b, y, p);
    else
      conv2d_cpu(g, x, w, b, y, p);
    return y;
  }
  /* Halves: derived once per weight, in the same order, two per word. */
  bool f16 = ops_fp16_weights(g, w);
  uint64_t count = w.count;
  if (f16) w = wstore_derive(graph_weights(g), w, "f16", (count + 1) / 2, pack_f16, &count);
  conv2d_push pc = {
    .n = x.n, .cin = x.c, .h = x.h, .w = x.w, .cout = cout,
    .ho = ho, .wo = wo, .k = p->k, .stride = p->stride,
    .pad_t = p->pad_t, .pad_l = p->pad_l,
    .vec_stride = p->vec ? (uint32_t)p->vec->c : 0, .vec_off = (uint32_t)p->vec_off,
    .has_res = p->residual != NULL,
    .out_scale = p->out_scale != 0.0f ? p->out_scale : 1.0f,
  };
  /* Unused optional inputs are bound to x; the shader never reads them. */
  gnode nd = {
    .op = "conv2d",
    .spirv = spv_conv2d, .spirv_size = sizeof spv_conv2d,
    .spec = {(uint32_t)p->k, f16}, .n_spec = 2,
    .n_bind = 6,
    .bind = {gb_tensor(x), gb_weight(w), gb_weight(b),
             gb_tensor(p->vec ? *p->vec : x),
             gb_tensor(p->residual ? *p->residual : x), gb_tensor(y)},
    .writes = 5,
    .push_size = sizeof pc,
    .flops = 2.0 * x.n * cout * ho * wo * x.c * p->k * p->k,
  };
  memcpy(nd.push, &pc, sizeof pc);
  /* 64 x 64 tiles: x (and z) over pixels (n, oy, ox), y over channels. */
  uint32_t tiles = vk_div_up((uint64_t)x.n * ho * wo, 64);
  nd.groups[0] = MIN(tiles, 65535);
  nd.groups[1] = vk_div_up((uint64_t)cout, 64);
  nd.groups[2] = vk_div_up(tiles, nd.groups[0]);
  graph_add(g, &nd);
  return y;
}
