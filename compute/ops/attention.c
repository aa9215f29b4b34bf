/* Multi-head attention core in three dispatches: scores, softmax, apply.
 * The score matrix [n, heads, T, T] lives in the arena only meanwhile. */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "attn_apply.spv.h"
#include "attn_scores.spv.h"
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
    .op = "attention",
    .spirv = spv_attn_scores, .spirv_size = sizeof spv_attn_scores,
    .n_bind = 3,
    .bind = {gb_tensor(q), gb_tensor(k), gb_tensor(s)},
    .writes = 2,
    .push_size = sizeof sp,
  };
  memcpy(nd.push, &sp, sizeof sp);
  graph_groups_1d(gtensor_count(s), 64, nd.groups);
  graph_add(g, &nd);

  softmax_push mp = {(uint32_t)q.n * heads * tokens, tokens};
  nd = (gnode){
    .op = "attention",
    .spirv = spv_softmax, .spirv_size = sizeof spv_softmax,
    .n_bind = 1,
    .bind = {gb_tensor(s)},
    .writes = 0,
    .push_size = sizeof mp,
  };
  memcpy(nd.push, &mp, sizeof mp);
  graph_groups_1d((uint64_t)mp.rows * 128, 128, nd.groups);
  graph_add(g, &nd);

  gtensor o = graph_tensor(g, q.n, q.c, q.h, q.w);
  apply_push ap = {q.n, heads, dh, tokens};
  nd = (gnode){
    .op = "attention",
    .spirv = spv_attn_apply, .spirv_size = sizeof spv_attn_apply,
    .n_bind = 3,
    .bind = {gb_tensor(s), gb_tensor(v), gb_tensor(o)},
    .writes = 2,
    .push_size = sizeof ap,
  };
  memcpy(nd.push, &ap, sizeof ap);
  graph_groups_1d(gtensor_count(o), 64, nd.groups);
  graph_add(g, &nd);
  return o;
}
