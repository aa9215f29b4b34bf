/* Multi-head attention core in three dispatches: scores, softmax, apply.
 * The score matrix [n, heads, T, T] lives in the arena only meanwhile. */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "attn_apply.spv.h"
#include "attn_apply_direct.spv.h"
#include "attn_scores.spv.h"
#include "attn_scores_direct.spv.h"
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

gtensor op_attention(graph *g, gtensor q, gtensor k, gtensor v, int heads) {
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
