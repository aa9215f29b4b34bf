/* Multi-head attention core in three dispatches: scores, softmax, apply.
 * The score matrix [n, heads, T, T] lives in the arena only meanwhile. */
#include <math.h>
#include <string.h>

#include "ops/conv2d_cpu.h"
#include "ops/ops.h"
#include "attn_apply.spv.h"
#include "attn_apply_direct.spv.h"
#include "attn_pack_cpu.spv.h"
#include "attn_scores.spv.h"
#include "attn_scores_direct.spv.h"
#include "attn_softmax_cpu.spv.h"
#include "softmax.spv.h"

typedef struct {
  uint32_t b, heads, dh, tokens;
  float scale;
} scores_push;

typedef struct {
  uint32_t rows, cols;
} softmax_push;

typedef struct {
  uint32_t b, heads, dh, tokens;
} apply_push;

typedef struct {
  uint32_t images, rows, cols, cout, cin, kc, cor, k4, img_texels, transpose;
} pack_push;

/* src [images][rows][cols] packed into `plan`'s weight layout of a
 * [cout][cin] matrix: (co, ci) = src[ci][co] with transpose, else
 * src[co][ci]. */
static gtensor pack(graph *g, gtensor src, int images, uint32_t rows, uint32_t cols,
                    const conv2d_cpu_plan *plan, bool transpose, uint32_t *img_texels) {
  uint64_t texels = conv2d_cpu_plan_floats(plan) / 4;
  *img_texels = (uint32_t)texels;
  gtensor w = graph_tensor(g, images, (int)conv2d_cpu_plan_floats(plan), 1, 1);
  pack_push pp = {(uint32_t)images, rows, cols, (uint32_t)plan->cout, (uint32_t)plan->cin,
                  (uint32_t)plan->kc, (uint32_t)plan->cor, (uint32_t)plan->k4,
                  (uint32_t)texels, transpose};
  gnode nd = {
    .op = "attn_pack",
    .spirv = spv_attn_pack_cpu, .spirv_size = sizeof spv_attn_pack_cpu,
    .n_bind = 2,
    .bind = {gb_tensor_image(src), gb_tensor(w)},
    .writes = 1,
    .push_size = sizeof pp,
  };
  memcpy(nd.push, &pp, sizeof pp);
  graph_groups_1d(texels * images, 64, nd.groups);
  graph_add(g, &nd);
  return w;
}

/* CPU devices: both products through the convolution kernel's GEMM
 * (ops/conv2d_cpu.c), per image of one head: S^T = K^T Q as a 1x1
 * convolution of q with K^T as its weights (key j as output channel), a
 * softmax over each pixel's channels, then O = V P^T as a 1x1 convolution
 * of P^T with V as its weights.  K and V are packed into the kernel's
 * weight layout first.  cifar10's forward: 0.151 -> 0.143 s on lavapipe. */
static bool attention_gemm(graph *g, gtensor q, gtensor k, gtensor v, int heads,
                           gtensor *out) {
  ddpm_context *ctx = graph_context(g);
  const uint32_t t = (uint32_t)q.h * q.w, dh = (uint32_t)(q.c / heads);
  const int nh = q.n * heads;
  /* At least 256 tokens and 128 channels a head: smaller products would
   * each compile kernel variants of their own (about 0.35 s a process on
   * lavapipe) for little work; the softmax's three loops over T, T + 1
   * passes each, within llvmpipe's limit of 65535 loop passes. */
  if (!conv2d_cpu_supported(ctx ? &ctx->limits : NULL) || t < 256 || dh < 128 ||
      3 * ((uint64_t)t + 1) >= 65535)
    return false;
  const conv2d_params one = {.k = 1, .stride = 1};
  conv2d_cpu_plan ps = conv2d_cpu_plan_for((int)dh, (int)t, 1, false);
  conv2d_cpu_plan pa = conv2d_cpu_plan_for((int)t, (int)dh, 1, false);
  /* The kernel addresses all images' weights with 31-bit texel indices. */
  uint64_t most = MAX(conv2d_cpu_plan_floats(&ps), conv2d_cpu_plan_floats(&pa)) / 4;
  if (most * nh > INT32_MAX) return false;

  conv2d_cpu_gemm gs = {.op = "attn_scores", .flops_scale = 1.0};
  gtensor kp = pack(g, k, nh, dh, t, &ps, true, &gs.img_texels);
  gs.weights = &kp;
  gtensor qv = q;
  qv.n = nh, qv.c = (int)dh;
  gtensor st = graph_tensor(g, nh, (int)t, q.h, q.w);
  conv2d_cpu_record(g, qv, (gweight){0}, (gweight){0}, st, &one, &ps, &gs);

  gtensor pt = graph_tensor(g, nh, (int)t, q.h, q.w);
  struct { uint32_t images, tokens; float scale; } sp = {
    (uint32_t)nh, t, (float)(1.0 / sqrt((double)dh))};
  gnode sm = {
    .op = "attn_softmax",
    .spirv = spv_attn_softmax_cpu, .spirv_size = sizeof spv_attn_softmax_cpu,
    .n_bind = 2,
    .bind = {gb_tensor_image(st), gb_tensor(pt)},
    .writes = 1,
    .push_size = sizeof sp,
  };
  memcpy(sm.push, &sp, sizeof sp);
  graph_groups_1d((uint64_t)nh * t, 64, sm.groups);
  graph_add(g, &sm);

  conv2d_cpu_gemm ga = {.op = "attn_apply", .flops_scale = 1.0};
  gtensor vp = pack(g, v, nh, dh, t, &pa, false, &ga.img_texels);
  ga.weights = &vp;
  gtensor o = graph_tensor(g, q.n, q.c, q.h, q.w);
  gtensor ov = o;
  ov.n = nh, ov.c = (int)dh;
  conv2d_cpu_record(g, pt, (gweight){0}, (gweight){0}, ov, &one, &pa, &ga);
  *out = o;
  return true;
}

gtensor op_attention(graph *g, gtensor q, gtensor k, gtensor v, int heads) {
  gtensor og;
  if (ops_use_cpu_kernels(g) && ops_use_cpu_gemms(g) && attention_gemm(g, q, k, v, heads, &og))
    return og;
  uint32_t tokens = (uint32_t)q.h * q.w, dh = q.c / heads;
  gtensor s = graph_tensor(g, q.n, heads, tokens, tokens);

  scores_push sp = {q.n, heads, dh, tokens, (float)(1.0 / sqrt((double)dh))};
  gnode nd = {
    .op = "attn_scores",
    .spirv = spv_attn_scores, .spirv_size = sizeof spv_attn_scores,
    .n_bind = 3,
    .bind = {gb_tensor(q), gb_tensor(k), gb_tensor(s)},
    .writes = 2,
    .push_size = sizeof sp,
    .flops = 2.0 * q.n * heads * tokens * tokens * dh,
  };
  memcpy(nd.push, &sp, sizeof sp);
  /* CPU kernels: blocks of rows (scores) or channels (apply) per workgroup,
   * 2 tokens per invocation, lx invocations (fewer for few tokens). */
  const uint32_t blk = 16, px = 2;
  const bool cpu = ops_use_cpu_kernels(g);
  uint32_t lx = MIN(64, (vk_div_up(tokens, px) + 7) / 8 * 8);
  const int v4 = tokens % 4 == 0 ? 4 : 1; /* q, s, v as vec4 texels */
  if (cpu) {
    nd.spirv = spv_attn_scores_direct;
    nd.spirv_size = sizeof spv_attn_scores_direct;
    nd.bind[0] = gb_tensor_image(q);
    nd.bind[1] = gb_tensor_image(k);
    nd.bind[3] = gb_tensor_image4(q); /* read with v4 only */
    nd.n_bind = 4;
    nd.spec[0] = blk, nd.spec[1] = px, nd.spec[2] = lx, nd.spec[3] = v4 == 4;
    nd.n_spec = 4;
    nd.groups[0] = vk_div_up(tokens, px * lx);
    nd.groups[1] = vk_div_up(tokens, blk);
    nd.groups[2] = (uint32_t)q.n * heads;
  } else {
    graph_groups_1d(gtensor_count(s), 64, nd.groups);
  }
  graph_add(g, &nd);

  if (!cpu) { /* the CPU apply kernel does the softmax itself */
    softmax_push mp = {(uint32_t)q.n * heads * tokens, tokens};
    nd = (gnode){
      .op = "attn_softmax",
      .spirv = spv_softmax, .spirv_size = sizeof spv_softmax,
      .n_bind = 1,
      .bind = {gb_tensor(s)},
      .writes = 0,
      .push_size = sizeof mp,
    };
    memcpy(nd.push, &mp, sizeof mp);
    graph_groups_1d((uint64_t)mp.rows * 128, 128, nd.groups);
    graph_add(g, &nd);
  }

  gtensor o = graph_tensor(g, q.n, q.c, q.h, q.w);
  apply_push ap = {q.n, heads, dh, tokens};
  nd = (gnode){
    .op = "attn_apply",
    .spirv = spv_attn_apply, .spirv_size = sizeof spv_attn_apply,
    .n_bind = 3,
    .bind = {gb_tensor(s), gb_tensor(v), gb_tensor(o)},
    .writes = 2,
    .push_size = sizeof ap,
    .flops = 2.0 * q.n * heads * tokens * tokens * dh,
  };
  memcpy(nd.push, &ap, sizeof ap);
  if (cpu) {
    nd.spirv = spv_attn_apply_direct;
    nd.spirv_size = sizeof spv_attn_apply_direct;
    /* Float views without v4, vec4 views with (a float view of the
     * scores would count 4x the texels against the device's limit). */
    nd.bind[0] = gb_tensor_image(v4 == 4 ? v : s);
    nd.bind[1] = gb_tensor_image(v);
    nd.bind[3] = gb_tensor_image4(v4 == 4 ? s : v);
    nd.bind[4] = gb_tensor_image4(v);
    nd.n_bind = 5;
    nd.spec[0] = blk, nd.spec[1] = px, nd.spec[2] = lx, nd.spec[3] = v4 == 4;
    nd.n_spec = 4;
    nd.groups[0] = vk_div_up(tokens, px * lx);
    nd.groups[1] = heads * vk_div_up(dh, blk);
    nd.groups[2] = (uint32_t)q.n;
  } else {
    graph_groups_1d(gtensor_count(o), 64, nd.groups);
  }
  graph_add(g, &nd);
  return o;
}
