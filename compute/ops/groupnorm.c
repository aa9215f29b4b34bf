#include <string.h>

#include "ops/ops.h"
#include "groupnorm.spv.h"

typedef struct {
  uint32_t n, c, hw, groups;
  float eps;
  uint32_t silu;
} groupnorm_push;

gtensor op_groupnorm(graph *g, gtensor x, gweight gamma, gweight beta,
                     int groups, float eps, bool silu) {
  gtensor y = graph_tensor(g, x.n, x.c, x.h, x.w);
  groupnorm_push pc = {x.n, x.c, (uint32_t)x.h * x.w, groups, eps, silu};
  gnode nd = {
    .op = "groupnorm",
    .spirv = spv_groupnorm, .spirv_size = sizeof spv_groupnorm,
    .n_bind = 4,
    .bind = {gb_tensor(x), gb_weight(gamma), gb_weight(beta), gb_tensor(y)},
    .writes = 3,
    .push_size = sizeof pc,
  };
  memcpy(nd.push, &pc, sizeof pc);
  /* One workgroup of 256 per (n, group). */
  graph_groups_1d((uint64_t)x.n * groups * 256, 256, nd.groups);
  graph_add(g, &nd);
  return y;
}
