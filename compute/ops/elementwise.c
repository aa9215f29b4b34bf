/* Data-movement and elementwise ops: nearest upsample, concat, affine. */
#include <string.h>

#include "ops/ops.h"
#include "affine.spv.h"
#include "concat.spv.h"
#include "upsample_nearest.spv.h"

gtensor op_upsample_nearest2x(graph *g, gtensor x) {
  gtensor y = graph_tensor(g, x.n, x.c, 2 * x.h, 2 * x.w);
  struct { uint32_t nc, h, w; } pc = {(uint32_t)x.n * x.c, x.h, x.w};
  gnode nd = {
    .op = "upsample",
    .spirv = spv_upsample_nearest, .spirv_size = sizeof spv_upsample_nearest,
    .n_bind = 2,
    .bind = {gb_tensor(x), gb_tensor(y)},
    .writes = 1,
    .push_size = sizeof pc,
  };
  memcpy(nd.push, &pc, sizeof pc);
  graph_groups_1d(gtensor_count(y), 64, nd.groups);
  graph_add(g, &nd);
  return y;
}

gtensor op_concat(graph *g, gtensor a, gtensor b) {
  gtensor y = graph_tensor(g, a.n, a.c + b.c, a.h, a.w);
  struct { uint32_t n, ca, cb, hw; } pc = {a.n, a.c, b.c, (uint32_t)a.h * a.w};
  gnode nd = {
    .op = "concat",
    .spirv = spv_concat, .spirv_size = sizeof spv_concat,
    .n_bind = 3,
    .bind = {gb_tensor(a), gb_tensor(b), gb_tensor(y)},
    .writes = 2,
    .push_size = sizeof pc,
  };
  memcpy(nd.push, &pc, sizeof pc);
  graph_groups_1d(gtensor_count(y), 64, nd.groups);
  graph_add(g, &nd);
  return y;
}

gtensor op_affine(graph *g, gtensor x, float scale, float shift) {
  gtensor y = graph_tensor(g, x.n, x.c, x.h, x.w);
  struct { uint32_t count; float scale, shift; } pc = {
    (uint32_t)gtensor_count(x), scale, shift};
  gnode nd = {
    .op = "affine",
    .spirv = spv_affine, .spirv_size = sizeof spv_affine,
    .n_bind = 2,
    .bind = {gb_tensor(x), gb_tensor(y)},
    .writes = 1,
    .push_size = sizeof pc,
  };
  memcpy(nd.push, &pc, sizeof pc);
  graph_groups_1d(gtensor_count(y), 64, nd.groups);
  graph_add(g, &nd);
  return y;
}
