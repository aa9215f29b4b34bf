#include <string.h>

#include "ops/ops.h"
#include "linear.spv.h"

typedef struct {
  uint32_t n, in_features, out_features, silu_in, silu_out;
} linear_push;

gtensor op_linear(graph *g, gtensor x, gweight w, gweight b, int out,
                  bool silu_in, bool silu_out) {
  gtensor y = graph_tensor(g, x.n, out, 1, 1);
  linear_push pc = {x.n, (uint32_t)x.c * x.h * x.w, out, silu_in, silu_out};
  gnode nd = {
    .op = "linear",
    .spirv = spv_linear, .spirv_size = sizeof spv_linear,
    .n_bind = 4,
    .bind = {gb_tensor(x), gb_weight(w), gb_weight(b), gb_tensor(y)},
    .writes = 3,
    .push_size = sizeof pc,
    .flops = 2.0 * x.n * pc.in_features * out,
  };
  memcpy(nd.push, &pc, sizeof pc);
  graph_groups_1d(gtensor_count(y), 64, nd.groups);
  graph_add(g, &nd);
  return y;
}
