#include <string.h>

#include "ops/ops.h"
#include "timestep_embed.spv.h"

typedef struct {
  uint32_t n, dim, half_dim, flip;
} timestep_embed_push;

gtensor op_timestep_embed(graph *g, gtensor t, gweight freq, int dim, int half,
                          bool flip_sin_to_cos) {
  gtensor y = graph_tensor(g, t.n, dim, 1, 1);
  timestep_embed_push pc = {t.n, dim, half, flip_sin_to_cos};
  gnode nd = {
    .op = "timestep_embed",
    .spirv = spv_timestep_embed, .spirv_size = sizeof spv_timestep_embed,
    .n_bind = 3,
    .bind = {gb_tensor(t), gb_weight(freq), gb_tensor(y)},
    .writes = 2,
    .push_size = sizeof pc,
  };
  memcpy(nd.push, &pc, sizeof pc);
  graph_groups_1d(gtensor_count(y), 64, nd.groups);
  graph_add(g, &nd);
  return y;
}
