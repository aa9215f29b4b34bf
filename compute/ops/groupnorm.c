#include <string.h>

#include "ops/ops.h"
#include "groupnorm.spv.h"
#include "groupnorm_apply_direct.spv.h"
#include "groupnorm_stats_direct.spv.h"

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
  ddpm_context *ctx = graph_context(g);
  if (ops_use_cpu_kernels(g, 0) && (!ctx || ctx->subgroup_arith)) {
    /* Statistics per (n, group), then an elementwise pass. */
    gtensor st = graph_tensor(g, x.n, groups * 2, 1, 1);
    nd.op = "groupnorm_stats";
    nd.spirv = spv_groupnorm_stats_direct;
    nd.spirv_size = sizeof spv_groupnorm_stats_direct;
    nd.n_bind = 2;
    nd.bind[0] = gb_tensor_texels(x, 1);
    nd.bind[1] = gb_tensor(st);
    nd.writes = 1;
    /* A workgroup is one subgroup: its size, known when recording. */
    nd.spec[0] = ctx ? ctx->info.subgroup_size : 8;
    nd.n_spec = 1;
    graph_groups_1d((uint64_t)x.n * groups, 1, nd.groups);
    graph_add(g, &nd);
    nd.op = "groupnorm";
    nd.n_spec = 0;
    nd.spirv = spv_groupnorm_apply_direct;
    nd.spirv_size = sizeof spv_groupnorm_apply_direct;
    nd.n_bind = 5;
    nd.bind[0] = gb_tensor_texels(x, 1);
    nd.bind[1] = gb_tensor_texels(st, 1);
    nd.bind[2] = gb_weight_texels(gamma, 1);
    nd.bind[3] = gb_weight_texels(beta, 1);
    nd.bind[4] = gb_tensor(y);
    nd.writes = 4;
    graph_groups_1d(gtensor_count(x), 64, nd.groups);
    graph_add(g, &nd);
    return y;
  }
  /* One workgroup of 256 per (n, group). */
  graph_groups_1d((uint64_t)x.n * groups * 256, 256, nd.groups);
  graph_add(g, &nd);
  return y;
}
