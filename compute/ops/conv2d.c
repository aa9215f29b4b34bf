#include <string.h>

#include "ops/ops.h"
#include "conv2d.spv.h"
#include "conv2d_direct.spv.h"

typedef struct {
  uint32_t n, cin, h, w, cout, ho, wo, k, stride;
  int32_t pad_t, pad_l;
  uint32_t has_vec, has_res;
  float out_scale;
} conv2d_push;

/* Output channels per invocation of the direct kernel. */
static int direct_block(int cout) { return cout >= 32 ? 32 : (cout + 3) / 4 * 4; }

typedef struct {
  int cout, ktot, row; /* row: cout padded to the channel block */
} transpose_arg;

/* [cout][cin*k*k] -> [cin*k*k][row], the padding zero. */
static void transpose_weights(const float *src, float *dst, const void *arg) {
  const transpose_arg *a = arg;
  for (int co = 0; co < a->cout; co++)
    for (int k = 0; k < a->ktot; k++)
      dst[(size_t)k * a->row + co] = src[(size_t)co * a->ktot + k];
}

gtensor op_conv2d(graph *g, gtensor x, gweight w, gweight b, int cout,
                  const conv2d_params *p) {
  int ho = (x.h + p->pad_t + p->pad_b - p->k) / p->stride + 1;
  int wo = (x.w + p->pad_l + p->pad_r - p->k) / p->stride + 1;
  gtensor y = graph_tensor(g, x.n, cout, ho, wo);
  conv2d_push pc = {
    .n = x.n, .cin = x.c, .h = x.h, .w = x.w, .cout = cout,
    .ho = ho, .wo = wo, .k = p->k, .stride = p->stride,
    .pad_t = p->pad_t, .pad_l = p->pad_l,
    .has_vec = p->vec != NULL, .has_res = p->residual != NULL,
    .out_scale = p->out_scale != 0.0f ? p->out_scale : 1.0f,
  };
  /* Unused optional inputs are bound to x; the shader never reads them. */
  gnode nd = {
    .op = "conv2d",
    .spirv = spv_conv2d, .spirv_size = sizeof spv_conv2d,
    .spec = {(uint32_t)p->k}, .n_spec = 1,
    .n_bind = 6,
    .bind = {gb_tensor(x), gb_weight(w), gb_weight(b),
             gb_tensor(p->vec ? *p->vec : x),
             gb_tensor(p->residual ? *p->residual : x), gb_tensor(y)},
    .writes = 5,
    .push_size = sizeof pc,
    .flops = 2.0 * x.n * cout * ho * wo * x.c * p->k * p->k,
  };
  memcpy(nd.push, &pc, sizeof pc);
  const int cb = direct_block(cout), px = 3;
  transpose_arg ta = {cout, x.c * p->k * p->k, (cout + cb - 1) / cb * cb};
  uint64_t wcount = (uint64_t)ta.ktot * ta.row;
  /* The tiled GEMM on GPUs, the direct kernel on CPUs. */
  if (ops_use_cpu_kernels(g, wcount / 4)) {
    char tag[32];
    g_snprintf(tag, sizeof tag, "conv-rows-%d", ta.row);
    gweight wt = wstore_derive(graph_weights(g), w, tag, wcount, transpose_weights, &ta);
    nd.op = "conv2d_direct";
    nd.spirv = spv_conv2d_direct;
    nd.spirv_size = sizeof spv_conv2d_direct;
    nd.spec[1] = (uint32_t)cb;
    nd.spec[2] = px;
    /* Invocations per group: 64, fewer (a multiple of the SIMD width 8)
     * when the image is small, so that no lanes run empty. */
    uint64_t inv = vk_div_up((uint64_t)x.n * ho * wo, px);
    uint32_t lx = (uint32_t)MIN(64, (inv + 7) / 8 * 8);
    nd.spec[3] = lx;
    nd.n_spec = 4;
    nd.bind[0] = gb_tensor_texels(x, 1);
    nd.bind[1] = gb_weight_texels(wt, 4);
    /* lx invocations of px pixels per group along x (and z); y takes
     * blocks of cb channels. */
    uint32_t groups = vk_div_up(inv, lx);
    nd.groups[0] = MIN(groups, 65535);
    nd.groups[1] = vk_div_up((uint64_t)cout, cb);
    nd.groups[2] = vk_div_up(groups, nd.groups[0]);
    graph_add(g, &nd);
    return y;
  }
  /* 64 x 64 tiles: x (and z) over pixels (n, oy, ox), y over channels. */
  uint32_t tiles = vk_div_up((uint64_t)x.n * ho * wo, 64);
  nd.groups[0] = MIN(tiles, 65535);
  nd.groups[1] = vk_div_up((uint64_t)cout, 64);
  nd.groups[2] = vk_div_up(tiles, nd.groups[0]);
  graph_add(g, &nd);
  return y;
}
