/* Data-movement and elementwise ops: nearest upsample, concat, affine, SiLU. */
#include <string.h>

#include "ops/ops.h"
#include "affine.spv.h"
#include "upsample_nearest.spv.h"

gtensor op_upsample_nearest2x(graph *g, gtensor x) {
  gtensor y = graph_tensor(g, x.n, x.c, 2 * x.h, 2 * x.w);
  const bool w4 = x.w % 4 == 0;
  /* The shader's quotients are rows (of pixels or of vec4s) and images:
   * div_fast is exact below 2^23; past 2^20 rows (huge tensors, and a
   * test's size) exact divisions. */
  const uint64_t rows = (uint64_t)x.n * x.c * (w4 ? x.h : 2 * x.h);
  struct { uint32_t nc, h, w, exact; } pc = {(uint32_t)x.n * x.c, x.h, x.w, rows >= (1u << 20)};
  gnode nd = {
    .op = "upsample",
    .spirv = spv_upsample_nearest, .spirv_size = sizeof spv_upsample_nearest,
    .spec = {w4}, .n_spec = 1,
    .n_bind = 4,
    .bind = {gb_tensor_image(x), gb_tensor_image4(x), gb_tensor(y), gb_tensor(y)},
    .writes = 2,
    .push_size = sizeof pc,
  };
  memcpy(nd.push, &pc, sizeof pc);
  graph_groups_1d(w4 ? gtensor_count(x) / 4 : gtensor_count(y), 64, nd.groups);
  graph_add(g, &nd);
  return y;
}

/* Two buffer copies: in NCHW each image of a and of b is one contiguous
 * block of y's image. */
gtensor op_concat(graph *g, gtensor a, gtensor b) {
  gtensor y = graph_tensor(g, a.n, a.c + b.c, a.h, a.w);
  uint64_t hw = (uint64_t)a.h * a.w, ca = a.c * hw, cb = b.c * hw;
  gnode nd = {
    .op = "concat",
    .n_bind = 2,
    .bind = {gb_tensor(a), gb_tensor(y)},
    .writes = 1,
    .copy = {.n = (uint32_t)a.n, .len = ca, .src_stride = ca, .dst_stride = ca + cb},
  };
  graph_add(g, &nd);
  nd.bind[0] = gb_tensor(b);
  nd.copy = (gcopy){.n = (uint32_t)a.n, .len = cb, .src_stride = cb, .dst_stride = ca + cb,
                    .dst_first = ca};
  graph_add(g, &nd);
  return y;
}

static gtensor affine(graph *g, gtensor x, float scale, float shift, bool silu_out) {
  gtensor y = graph_tensor(g, x.n, x.c, x.h, x.w);
  struct { uint32_t count; float scale, shift; uint32_t silu_out; } pc = {
    (uint32_t)gtensor_count(x), scale, shift, silu_out};
  gnode nd = {
    .op = silu_out ? "silu" : "affine",
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

gtensor op_affine(graph *g, gtensor x, float scale, float shift) {
  return affine(g, x, scale, shift, false);
}

gtensor op_silu(graph *g, gtensor x) { return affine(g, x, 1.0f, 0.0f, true); }
