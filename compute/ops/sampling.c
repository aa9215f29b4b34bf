/* Sampling ops: device noise and the in-place reverse step. */
#include <string.h>

#include "ops/ops.h"
#include "noise.spv.h"
#include "sample_step.spv.h"

gtensor op_noise(graph *g, gtensor shape, uint64_t seed, uint32_t stream) {
  gtensor y = graph_tensor(g, shape.n, shape.c, shape.h, shape.w);
  struct { uint32_t count, item, seed_lo, seed_hi, stream; } pc = {
    (uint32_t)gtensor_count(y), (uint32_t)(gtensor_count(y) / y.n),
    (uint32_t)seed, (uint32_t)(seed >> 32), stream};
  gnode nd = {
    .op = "noise",
    .spirv = spv_noise, .spirv_size = sizeof spv_noise,
    .n_bind = 1,
    .bind = {gb_tensor(y)},
    .writes = 0,
    .push_size = sizeof pc,
  };
  memcpy(nd.push, &pc, sizeof pc);
  graph_groups_1d(gtensor_count(y), 64, nd.groups);
  graph_add(g, &nd);
  return y;
}

void op_sample_step(graph *g, gtensor x, gtensor eps, gtensor params,
                    gtensor init, gtensor mask, gtensor z_step, gtensor z_known,
                    gtensor x0, const sample_step_params *sp) {
  struct {
    uint32_t count, item, hw, seed_lo, seed_hi;
    uint32_t ddim, prediction, clip, masked;
    float clip_range;
    uint32_t shared_noise;
  } pc = {
    (uint32_t)gtensor_count(x), (uint32_t)(gtensor_count(x) / x.n),
    (uint32_t)x.h * x.w, (uint32_t)sp->seed, (uint32_t)(sp->seed >> 32),
    sp->ddim, sp->prediction, sp->clip, sp->masked, sp->clip_range,
    sp->shared_noise,
  };
  gnode nd = {
    .op = "sample_step",
    .spirv = spv_sample_step, .spirv_size = sizeof spv_sample_step,
    .n_bind = 8,
    .bind = {gb_tensor(x), gb_tensor(eps), gb_tensor(params), gb_tensor(init),
             gb_tensor(mask), gb_tensor(z_step), gb_tensor(z_known), gb_tensor(x0)},
    .writes = 0,
    .push_size = sizeof pc,
  };
  memcpy(nd.push, &pc, sizeof pc);
  graph_groups_1d(gtensor_count(x), 64, nd.groups);
  graph_add(g, &nd);
}
