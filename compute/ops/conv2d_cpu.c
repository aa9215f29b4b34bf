/* The CPU-device convolution (shaders/conv2d_cpu.comp): weights blocked
 * per slice of input channels into texels of one output channel, one
 * dispatch per slice. */
#include <string.h>

#include "ops/conv2d_cpu.h"
#include "conv2d_cpu.spv.h"
#include "conv2d_sum_slices.spv.h"

typedef struct {
  uint32_t cin, h, w, cout, ho, wo;
  int32_t pad_t, pad_l;
  uint32_t tiles_y, nb0;
  uint32_t c0;
  uint32_t first, last, vec_stride, vec_off, has_res;
  float out_scale;
  uint32_t wbase;
  uint32_t cblocks, slice_texels, split_stride;
  uint32_t img_texels, has_bias;
} conv2d_cpu_push;

/* The shader's output tile of 2 x 8 pixels (accumulator registers) per
 * channel: every variant costs about a second of compile time per
 * process, so narrow images leave part of the tile idle rather than
 * getting variants of their own; only images of width 4 or less (a
 * 32 x 32 U-Net's bottom level) get 4 x 4, as 2 x 8 would leave half of
 * it idle.  A workgroup has the most output channels of 64 (3x3) or 256
 * (1x1), or their halves down to 32, that leaves at most an eighth of
 * them idle (8 for 8 or fewer): every invocation stages a
 * workgroup-th of the input tile, and a 1x1 invocation, with 9 times
 * fewer multiply-adds, pays for that 9 times as much (on cifar10's
 * Winograd GEMMs 256 made a forward 11% faster than 64; 3x3 convolutions
 * measured no difference).  A slice has 32 input channels (3x3), the
 * unrolled body's size; a 1x1 slice the most of 256, 128 or 64 that cin
 * fills, so wide ones dispatch a quarter as often (cifar10's 1x1
 * convolutions took 34 ms instead of 60). */
enum { TILE_H = 2, TILE_W = 8, NARROW = 4, WG_3X3 = 64, WG_1X1 = 256, WG_MIN = 32, KC_3X3 = 32, KC_1X1_MAX = 256 };

/* A convolution of three or more slices with fewer workgroups than this
 * each runs them all in one dispatch, then sums them in a second: small
 * images at the U-Net's bottom would otherwise leave threads idle and pay
 * a dispatch (57 us or more on lavapipe) per slice. */
enum { SPLIT_BELOW = 64 };

/* The texels of 8 consecutive output channels (one llvmpipe vector of
 * invocations) lie side by side: a gather then reads two cache lines, not
 * eight, and the weights stream in order. */
enum { LANES = 8 };

static int workgroup_channels(int cout, int k) {
  /* At most one vector of output channels (a U-Net's last convolution
   * has 3): a workgroup of 32 would leave 29 of 32 idle. */
  if (cout <= LANES) return LANES;
  for (int wg = k == 1 ? WG_1X1 : WG_3X3; wg > WG_MIN; wg /= 2)
    if ((cout + wg - 1) / wg * wg - cout <= cout / 8) return wg;
  return WG_MIN;
}

static int slice_channels(int cin, int k, int unit) {
  if (k != 1) return MIN(KC_3X3, (cin + unit - 1) / unit * unit);
  for (int kc = KC_1X1_MAX; kc >= 64; kc /= 2)
    if (cin >= kc) return kc;
  return MIN(64, (cin + unit - 1) / unit * unit);
}

conv2d_cpu_plan conv2d_cpu_plan_for(int cin, int cout, int k, bool f16) {
  conv2d_cpu_plan a = {.cin = cin, .cout = cout, .kk = k * k, .f16 = f16};
  /* A texel holds 4 consecutive (channel, tap) weights, 8 as halves:
   * kc * kk % (4 or 8) == 0. */
  int unit = f16 ? 8 : 4;
  a.kc = slice_channels(cin, k, unit);
  a.nslices = (int)vk_div_up(cin, a.kc);
  a.wg = workgroup_channels(cout, k);
  a.cor = (cout + a.wg - 1) / a.wg * a.wg;
  a.k4 = (uint64_t)a.kc * a.kk / unit;
  return a;
}

uint64_t conv2d_cpu_plan_index(const conv2d_cpu_plan *a, int co, int ci, int tap) {
  const int unit = a->f16 ? 8 : 4;
  int s = ci / a->kc;
  uint64_t k = (uint64_t)(ci % a->kc) * a->kk + tap;
  uint64_t texel = ((uint64_t)s * a->cor + co / LANES * LANES) * a->k4 + k / unit * LANES + co % LANES;
  return texel * unit + k % unit;
}

uint64_t conv2d_cpu_plan_floats(const conv2d_cpu_plan *a) {
  return (uint64_t)a->nslices * a->cor * a->k4 * 4;
}

/* The weight store's tag of w blocked by plan a. */
static void blocked_tag(const conv2d_cpu_plan *a, char *tag, size_t size) {
  g_snprintf(tag, size, "conv-cpu-%d-%d%s", a->kc, a->cor, a->f16 ? "-f16" : "");
}

bool conv2d_cpu_has_weights(graph *g, gweight w, int cin, int cout, int k, bool f16) {
  conv2d_cpu_plan a = conv2d_cpu_plan_for(cin, cout, k, f16);
  char tag[48];
  blocked_tag(&a, tag, sizeof tag);
  return wstore_has_derived(graph_weights(g), w, tag);
}

/* [cout][cin][kk] -> [slice][cor][kc * kk] weights, i.e. texels of 4 (8
 * halves) consecutive (channel, tap) of one output channel; the padding
 * zero. */
static void block_weights(const float *src, float *dst, const void *arg) {
  const conv2d_cpu_plan *a = arg;
  for (int co = 0; co < a->cout; co++)
    for (int ci = 0; ci < a->cin; ci++)
      for (int t = 0; t < a->kk; t++) {
        uint64_t d = conv2d_cpu_plan_index(a, co, ci, t);
        float v = src[((size_t)co * a->cin + ci) * a->kk + t];
        if (a->f16)
          wstore_set_f16(dst, d, v);
        else
          dst[d] = v;
      }
}

bool conv2d_cpu_supported(const VkPhysicalDeviceLimits *l) {
  /* 9 images + 2 storage buffers, 16 KiB of staging. */
  return !l || (l->maxPerStageDescriptorStorageImages >= 9 &&
                l->maxPerStageDescriptorStorageBuffers >= 2 &&
                l->maxPerStageResources >= 11 && l->maxBoundDescriptorSets >= 1 &&
                l->maxComputeSharedMemorySize >= 16384);
}

void conv2d_cpu(graph *g, gtensor x, gweight w, gweight b, gtensor y,
                const conv2d_params *p) {
  conv2d_cpu_plan a = conv2d_cpu_plan_for(x.c, y.c, p->k, ops_fp16_weights(g, w));
  char tag[48];
  blocked_tag(&a, tag, sizeof tag);
  gweight wt = wstore_derive(graph_weights(g), w, tag, conv2d_cpu_plan_floats(&a),
                             block_weights, &a);
  conv2d_cpu_record(g, x, wt, b, y, p, &a, NULL);
}

void conv2d_cpu_record(graph *g, gtensor x, gweight wt, gweight b, gtensor y,
                       const conv2d_params *p, const conv2d_cpu_plan *plan,
                       const conv2d_cpu_gemm *gemm) {
  const conv2d_cpu_plan a = *plan;
  const uint32_t img_texels = gemm ? gemm->img_texels : 0;
  const double flops_scale = gemm ? gemm->flops_scale : 1.0;
  const bool tensor_weights = gemm && gemm->weights;
  /* The bias slot of a GEMM is not read (has_bias 0): any float image. */
  const gbind bias_bind = tensor_weights ? gb_tensor_image(x) : gb_weight_image(b);
  const gbind weight_bind = tensor_weights ? gb_tensor_image4u(*gemm->weights)
                                           : gb_weight_image4u(wt);
  int cout = y.c;
  uint64_t slice_texels = (uint64_t)a.cor * a.k4;
  /* Input and output rows in whole vec4s (then so is every tensor's size
   * and offset); the staging then starts 4 columns early at most. */
  const uint32_t v4 = y.w % 4 == 0 && x.w % 4 == 0 && p->pad_l <= 4;
  /* Workgroups: x over tile columns, z over tile rows of as many images as
   * fit 65535 (the shader divides z by tiles_y in float: exact below 2^20);
   * so images of up to 131070 rows (the U-Net allows 16384). */
  /* A 1x1 output (linears) gets a tile of one pixel: its own variant,
   * but a body a sixteenth the size. */
  const bool one_px = y.h == 1 && y.w == 1, narrow = y.w <= NARROW;
  const uint32_t th = one_px ? 1 : narrow ? NARROW : TILE_H;
  const uint32_t tw = one_px ? 1 : narrow ? NARROW : TILE_W;
  uint32_t tiles_x = vk_div_up(y.w, tw), tiles_y = vk_div_up(y.h, th);
  int per = (int)MIN((uint32_t)y.n, 65535u / tiles_y);
  g_return_if_fail(tiles_x <= 65535 && per >= 1 &&
                   slice_texels * a.nslices + (uint64_t)img_texels * (y.n - 1) <= INT32_MAX);
  uint32_t cblocks = vk_div_up(cout, a.wg);
  conv2d_cpu_push pc = {
    .cin = x.c, .h = x.h, .w = x.w, .cout = cout, .ho = y.h, .wo = y.w,
    .pad_t = p->pad_t, .pad_l = p->pad_l,
    .tiles_y = tiles_y,
    .vec_stride = p->vec ? (uint32_t)p->vec->c : 0, .vec_off = (uint32_t)p->vec_off,
    .has_res = p->residual != NULL,
    .out_scale = p->out_scale != 0.0f ? p->out_scale : 1.0f,
    .cblocks = cblocks, .slice_texels = (uint32_t)slice_texels,
    .img_texels = img_texels, .has_bias = gemm == NULL,
  };
  gnode nd = {
    .op = gemm ? gemm->op : p->k == 1 ? "conv1x1_cpu" : p->k == 3 ? "conv3x3_cpu" : "conv_cpu",
    .spirv = spv_conv2d_cpu, .spirv_size = sizeof spv_conv2d_cpu,
    .spec = {(uint32_t)a.wg, (uint32_t)p->k, (uint32_t)p->stride, (uint32_t)a.kc, th, tw, v4,
             v4 ? (uint32_t)p->pad_l : 0, a.f16},
    .n_spec = 9,
    .n_bind = 11,
    .writes = 5,
    .push_size = sizeof pc,
  };
  uint64_t per_slice = (uint64_t)tiles_x * cblocks * tiles_y * y.n;
  if (v4 && a.nslices > 2 && per_slice < SPLIT_BELOW && y.n <= per) {
    /* Split: every slice's sum into part, then y = their sum. */
    gtensor part = graph_tensor(g, a.nslices * y.n, cout, y.h, y.w);
    pc.first = 1;
    pc.split_stride = (uint32_t)gtensor_count(y);
    /* The vec4 views (6-9) are read only with v4; 1 and 6 (y so far) not
     * at all. */
    gbind bind[] = {gb_tensor_image(x), gb_tensor_image(part), bias_bind,
                    gb_tensor_image(p->vec ? *p->vec : x), gb_tensor_image(x), gb_tensor(part),
                    gb_tensor_image4(part), gb_tensor_image4(x), gb_tensor(part),
                    gb_tensor_image4(x), weight_bind};
    memcpy(nd.bind, bind, sizeof bind);
    nd.flops = flops_scale * 2.0 * y.n * cout * y.h * y.w * x.c * a.kk;
    nd.groups[0] = tiles_x, nd.groups[1] = cblocks * a.nslices, nd.groups[2] = y.n * tiles_y;
    memcpy(nd.push, &pc, sizeof pc);
    graph_add(g, &nd);

    struct { uint32_t count4, stride4, has_res; float out_scale; } sp = {
      pc.split_stride / 4, pc.split_stride / 4, pc.has_res, pc.out_scale};
    gnode sum = {
      .op = "conv_sum_slices",
      .spirv = spv_conv2d_sum_slices, .spirv_size = sizeof spv_conv2d_sum_slices,
      .spec = {(uint32_t)a.nslices}, .n_spec = 1,
      .n_bind = 3,
      .bind = {gb_tensor_image4(part), gb_tensor_image4(p->residual ? *p->residual : part),
               gb_tensor(y)},
      .writes = 2,
      .push_size = sizeof sp,
    };
    memcpy(sum.push, &sp, sizeof sp);
    graph_groups_1d(sp.count4, 64, sum.groups);
    graph_add(g, &sum);
    return;
  }
  /* The vec4 views (6-9) are read only with v4. */
  gbind bind[] = {gb_tensor_image(x), gb_tensor_image(y), bias_bind,
                  gb_tensor_image(p->vec ? *p->vec : x),
                  gb_tensor_image(p->residual ? *p->residual : x), gb_tensor(y),
                  gb_tensor_image4(y), gb_tensor_image4(p->residual ? *p->residual : x),
                  gb_tensor(y), gb_tensor_image4(x), weight_bind};
  memcpy(nd.bind, bind, sizeof bind);
  for (int nb0 = 0; nb0 < y.n; nb0 += per) {
    int nimg = MIN(per, y.n - nb0);
    for (int s = 0; s < a.nslices; s++) {
      pc.nb0 = (uint32_t)nb0;
      pc.c0 = (uint32_t)(s * a.kc);
      pc.first = s == 0, pc.last = s == a.nslices - 1;
      pc.wbase = (uint32_t)(s * slice_texels);
      nd.flops = flops_scale * 2.0 * nimg * cout * y.h * y.w * MIN(a.kc, x.c - s * a.kc) * a.kk;
      nd.groups[0] = tiles_x, nd.groups[1] = cblocks, nd.groups[2] = (uint32_t)nimg * tiles_y;
      memcpy(nd.push, &pc, sizeof pc);
      graph_add(g, &nd);
    }
  }
}
