#include <string.h>

#include "ops/ops.h"
#include "groupnorm.spv.h"
#include "groupnorm_apply_direct.spv.h"
#include "groupnorm_direct.spv.h"
#include "groupnorm_stats_direct.spv.h"

typedef struct {
  uint32_t n, c, hw, groups;
  float eps;
  uint32_t silu;
  uint32_t rpw; /* groupnorm_apply_direct: rows per workgroup */
} groupnorm_push;

gtensor op_groupnorm(graph *g, gtensor x, gweight gamma, gweight beta,
                     int groups, float eps, bool silu) {
  gtensor y = graph_tensor(g, x.n, x.c, x.h, x.w);
  groupnorm_push pc = {x.n, x.c, (uint32_t)x.h * x.w, groups, eps, silu, 1};
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
  /* llvmpipe stops an invocation's loops after 65535 iterations in all
   * (summed over its loops; a 1152 x 1152 group came out with 42% of its
   * variance): the CPU statistics loop twice over a group in vec4s per
   * subgroup lane, this shader thrice in floats per 256 invocations. */
  const bool v4 = pc.hw % 4 == 0;
  uint64_t count = (uint64_t)(x.c / groups) * pc.hw;
  uint32_t lanes = ctx ? ctx->info.subgroup_size : 8;
  bool stats_fit = 2 * (vk_div_up(count / (v4 ? 4 : 1), lanes) + 1) < 65535;
  /* One dispatch where the group's three passes (two of statistics, one
   * normalizing channel by channel) fit that limit, which counts every
   * pass of a loop's end, the last (leaving) one too, across all its
   * loops: the channel loop's cpg + 1 and each row loop's passes. */
  uint64_t cpg = (uint64_t)x.c / groups, row = pc.hw / (v4 ? 4 : 1);
  uint64_t passes = 2 * (vk_div_up(count / (v4 ? 4 : 1), lanes) + 1) + (cpg + 1) +
                    cpg * (vk_div_up(row, lanes) + 1);
  bool fused_fit = passes < 65535;
  const bool cpu = ops_use_cpu_kernels(g) && (!ctx || ctx->subgroup_arith);
  if (cpu && fused_fit) {
    nd.spirv = spv_groupnorm_direct;
    nd.spirv_size = sizeof spv_groupnorm_direct;
    nd.n_bind = 6;
    nd.bind[0] = gb_tensor_image(x);
    nd.bind[1] = gb_tensor_image4(x);
    nd.bind[2] = gb_weight_image(gamma);
    nd.bind[3] = gb_weight_image(beta);
    nd.bind[4] = gb_tensor(y);
    nd.bind[5] = gb_tensor(y);
    nd.writes = 4;
    /* A workgroup is one subgroup: its size, known when recording. */
    nd.spec[0] = lanes;
    nd.spec[1] = v4;
    nd.n_spec = 2;
    graph_groups_1d((uint64_t)x.n * groups, 1, nd.groups);
    graph_add(g, &nd);
    return y;
  }
  if (cpu && stats_fit) {
    /* Statistics per (n, group), then an elementwise pass; both read 4
     * elements at a time when rows come in whole vec4s (then so does every
     * tensor's size, and a group). */
    gtensor st = graph_tensor(g, x.n, groups * 2, 1, 1);
    nd.op = "groupnorm_stats";
    nd.spirv = spv_groupnorm_stats_direct;
    nd.spirv_size = sizeof spv_groupnorm_stats_direct;
    nd.n_bind = 3;
    nd.bind[0] = gb_tensor_image(x);
    nd.bind[1] = gb_tensor_image4(x);
    nd.bind[2] = gb_tensor(st);
    nd.writes = 2;
    /* A workgroup is one subgroup: its size, known when recording. */
    nd.spec[0] = lanes;
    nd.spec[1] = v4;
    nd.n_spec = 2;
    graph_groups_1d((uint64_t)x.n * groups, 1, nd.groups);
    graph_add(g, &nd);
    nd.op = "groupnorm";
    nd.spec[0] = v4 ? 4 : 1;
    nd.n_spec = 1;
    nd.spirv = spv_groupnorm_apply_direct;
    nd.spirv_size = sizeof spv_groupnorm_apply_direct;
    nd.n_bind = 7;
    nd.bind[0] = gb_tensor_image(x);
    nd.bind[1] = gb_tensor_image4(x);
    nd.bind[2] = gb_tensor_image(st);
    nd.bind[3] = gb_weight_image(gamma);
    nd.bind[4] = gb_weight_image(beta);
    nd.bind[5] = gb_tensor(y);
    nd.bind[6] = gb_tensor(y);
    nd.writes = 5;
    uint64_t rows = (uint64_t)x.n * x.c;
    g_return_val_if_fail(rows < (1u << 20), y); /* the shader's float divisions */
    /* Rows shorter than a workgroup share one. */
    uint32_t len = pc.hw / (v4 ? 4 : 1);
    pc.rpw = len < 64 ? 64 / len : 1;
    memcpy(nd.push, &pc, sizeof pc);
    uint64_t row_groups = vk_div_up(rows, pc.rpw);
    nd.groups[0] = pc.rpw > 1 ? 1 : vk_div_up(len, 64);
    nd.groups[1] = (uint32_t)MIN(row_groups, 65535);
    nd.groups[2] = vk_div_up(row_groups, 65535);
    graph_add(g, &nd);
    return y;
  }
  /* One workgroup of 256 per (n, group). */
  graph_groups_1d((uint64_t)x.n * groups * 256, 256, nd.groups);
  graph_add(g, &nd);
  return y;
}
