/* The CPU-device convolution (shaders/conv2d_cpu.comp): weights blocked
 * into uniform-buffer ranges, one dispatch per (input-channel slice,
 * output-channel range). */
#include <string.h>

#include "ops/conv2d_cpu.h"
#include "conv2d_cpu.spv.h"

typedef struct {
  uint32_t cin, h, w, cout, ho, wo;
  int32_t pad_t, pad_l;
  uint32_t tiles_y, nb0;
  uint32_t c0, co0, cor;
  uint32_t first, last, has_vec, has_res;
  float out_scale;
} conv2d_cpu_push;

/* The shader's eight uniform buffers of weights and its output tile of
 * 2 x 8 pixels (accumulator registers) per channel, fixed: every variant
 * costs about a second of compile time per process, so narrow images leave
 * part of the tile idle rather than getting variants of their own.  A
 * workgroup has 64 output channels, or 32 where 64 would leave more than
 * an eighth of them idle (32 and 96 channels). */
enum { N_UBO = 8, TILE_H = 2, TILE_W = 8, WG_MAX = 64, WG_MIN = 32 };

/* Blocking of one weight; it depends on the weight's shape and the device
 * only, so every graph of a model asks for the same layout. */
typedef struct {
  int cin, cout, kk;
  bool f16;            /* weights as packed halves */
  int kcu, nu, kc;     /* input channels per buffer, buffers, channels per slice */
  int nslices;
  int wg;              /* output channels per workgroup */
  int cor, nranges;    /* output channels per range (padded to wg), ranges */
  uint64_t ubo_floats; /* one buffer's range in 32-bit words, a multiple of 64 */
} cpu_plan;

static cpu_plan plan(int cin, int cout, int k, bool f16, uint32_t max_ubo_bytes) {
  cpu_plan a = {.cin = cin, .cout = cout, .kk = k * k, .f16 = f16};
  /* A uvec4 holds 4 consecutive (channel, tap) weights, 8 as halves:
   * kcu * kk % (4 or 8) == 0.  Halves put twice the channels in half the
   * buffers: the same 32 (3x3) or 64 (1x1) channels per dispatch, for half
   * the gathers. */
  a.kcu = (k == 1 ? 8 : 4) * (f16 ? 2 : 1);
  a.nu = MIN(N_UBO / (f16 ? 2 : 1), (int)vk_div_up(cin, a.kcu));
  a.kc = a.nu * a.kcu;
  a.nslices = (int)vk_div_up(cin, a.kc);
  uint32_t ubo_weights = MIN(max_ubo_bytes, 65536u) / (f16 ? 2 : 4);
  int max_cor = (int)(ubo_weights / ((uint32_t)a.kcu * a.kk));
  a.nranges = (int)vk_div_up(cout, max_cor);
  int per = (int)vk_div_up(cout, a.nranges);
  a.wg = (per + WG_MAX - 1) / WG_MAX * WG_MAX - per > per / 8 || max_cor < WG_MAX ? WG_MIN
                                                                               : WG_MAX;
  a.cor = MIN((per + a.wg - 1) / a.wg * a.wg, max_cor / a.wg * a.wg);
  a.nranges = (int)vk_div_up(cout, a.cor);
  a.ubo_floats = ((uint64_t)a.kcu * a.kk * a.cor / (f16 ? 2 : 1) + 63) / 64 * 64;
  return a;
}

/* [cout][cin][kk] -> per (slice, range, buffer) [cor][kcu * kk] weights,
 * i.e. uvec4s of 4 (8 halves) consecutive (channel, tap) of one output
 * channel; the padding zero. */
static void block_weights(const float *src, float *dst, const void *arg) {
  const cpu_plan *a = arg;
  for (int co = 0; co < a->cout; co++)
    for (int ci = 0; ci < a->cin; ci++)
      for (int t = 0; t < a->kk; t++) {
        int s = ci / a->kc, u = ci % a->kc / a->kcu, q = co / a->cor;
        uint64_t buf = ((uint64_t)s * a->nranges + q) * a->nu + u;
        uint64_t d = (uint64_t)(co % a->cor) * a->kcu * a->kk + (uint64_t)(ci % a->kcu) * a->kk + t;
        float v = src[((size_t)co * a->cin + ci) * a->kk + t];
        if (a->f16)
          wstore_set_f16(dst + buf * a->ubo_floats, d, v);
        else
          dst[buf * a->ubo_floats + d] = v;
      }
}

bool conv2d_cpu_supported(const VkPhysicalDeviceLimits *l, int k) {
  /* 8 images + 2 storage buffers + 8 uniform buffers, 16 KiB of staging,
   * a buffer range holding at least one workgroup's weights. */
  uint32_t ubo_bytes = MIN(l ? l->maxUniformBufferRange : 65536u, 65536u);
  if ((uint64_t)(k == 1 ? 8 : 4) * k * k * WG_MIN * sizeof(float) > ubo_bytes) return false;
  return !l || (l->maxPerStageDescriptorUniformBuffers >= N_UBO &&
         l->maxPerStageDescriptorStorageImages >= 8 &&
         l->maxPerStageResources >= 18 && l->maxBoundDescriptorSets >= 1 &&
         l->maxUniformBufferRange >= 16384 && l->maxComputeSharedMemorySize >= 16384 &&
         l->minUniformBufferOffsetAlignment <= 64 * sizeof(float));
}

void conv2d_cpu(graph *g, gtensor x, gweight w, gweight b, gtensor y,
                const conv2d_params *p) {
  ddpm_context *ctx = graph_context(g);
  int cout = y.c;
  cpu_plan a = plan(x.c, cout, p->k, ops_fp16_weights(g, w),
                    ctx ? ctx->limits.maxUniformBufferRange : 65536);
  char tag[48];
  g_snprintf(tag, sizeof tag, "conv-cpu-%d-%d-%d%s", a.kcu, a.nu, a.cor, a.f16 ? "-f16" : "");
  uint64_t nbuf = (uint64_t)a.nslices * a.nranges * a.nu;
  gweight wt = wstore_derive(graph_weights(g), w, tag, nbuf * a.ubo_floats,
                             block_weights, &a);
  /* Input and output rows in whole vec4s (then so is every tensor's size
   * and offset); the staging then starts 4 columns early at most. */
  const uint32_t v4 = y.w % 4 == 0 && x.w % 4 == 0 && p->pad_l <= 4;
  /* Workgroups: x over tile columns, z over tile rows of as many images as
   * fit 65535 (the shader divides z by tiles_y in float: exact below 2^20). */
  uint32_t tiles_x = vk_div_up(y.w, TILE_W), tiles_y = vk_div_up(y.h, TILE_H);
  int per = (int)MIN((uint32_t)y.n, 65535u / tiles_y);
  g_return_if_fail(tiles_x <= 65535 && per >= 1);
  for (int nb0 = 0; nb0 < y.n; nb0 += per) {
    int nimg = MIN(per, y.n - nb0);
    for (int s = 0; s < a.nslices; s++)
      for (int q = 0; q < a.nranges; q++) {
        conv2d_cpu_push pc = {
          .cin = x.c, .h = x.h, .w = x.w, .cout = cout, .ho = y.h, .wo = y.w,
          .pad_t = p->pad_t, .pad_l = p->pad_l,
          .tiles_y = tiles_y, .nb0 = (uint32_t)nb0,
          .c0 = (uint32_t)(s * a.kc), .co0 = (uint32_t)(q * a.cor), .cor = (uint32_t)a.cor,
          .first = s == 0, .last = s == a.nslices - 1,
          .has_vec = p->vec != NULL, .has_res = p->residual != NULL,
          .out_scale = p->out_scale != 0.0f ? p->out_scale : 1.0f,
        };
        int nco = MIN(a.cor, cout - q * a.cor);
        gnode nd = {
          .op = p->k == 1 ? "conv1x1_cpu" : p->k == 3 ? "conv3x3_cpu" : "conv_cpu",
          .spirv = spv_conv2d_cpu, .spirv_size = sizeof spv_conv2d_cpu,
          .spec = {(uint32_t)a.wg, (uint32_t)p->k, (uint32_t)p->stride, (uint32_t)a.kc, TILE_H, TILE_W,
                   (uint32_t)a.nu, v4, v4 ? (uint32_t)p->pad_l : 0, a.f16},
          .n_spec = 10,
          .n_bind = 6 + N_UBO + 4,
          .bind = {gb_tensor_image(x), gb_tensor_image(y), gb_weight_image(b),
                   gb_tensor_image(p->vec ? *p->vec : x),
                   gb_tensor_image(p->residual ? *p->residual : x), gb_tensor(y)},
          .writes = 5,
          .push_size = sizeof pc,
          .flops = 2.0 * nimg * nco * y.h * y.w * MIN(a.kc, x.c - s * a.kc) * a.kk,
        };
        /* Buffers past nu repeat the first: the shader declares all eight. */
        uint64_t buf0 = ((uint64_t)s * a.nranges + q) * a.nu;
        for (int u = 0; u < N_UBO; u++)
          nd.bind[6 + u] = gb_weight_uniform(wt, (buf0 + (u < a.nu ? u : 0)) * a.ubo_floats,
                                             a.ubo_floats);
        /* The vec4 views, read only with v4. */
        nd.bind[6 + N_UBO] = gb_tensor_image4(y);
        nd.bind[7 + N_UBO] = gb_tensor_image4(p->residual ? *p->residual : x);
        nd.bind[8 + N_UBO] = gb_tensor(y);
        nd.bind[9 + N_UBO] = gb_tensor_image4(x);
        memcpy(nd.push, &pc, sizeof pc);
        nd.groups[0] = tiles_x;
        nd.groups[1] = vk_div_up(nco, a.wg);
        nd.groups[2] = (uint32_t)nimg * tiles_y;
        graph_add(g, &nd);
      }
  }
}
