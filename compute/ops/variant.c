/* Which family of kernels an op records: tiled ones using shared memory for
 * GPUs, or CPU-device ones (lavapipe), shaped by how llvmpipe compiles them
 * (see README, Benchmarks) and reading their inputs through texel buffers. */
#include <string.h>

#include "ops/ops.h"

bool ops_use_cpu_kernels(graph *g) {
  ddpm_context *ctx = graph_context(g); /* NULL: a graph only planned */
  if (ctx && (ctx->limits.minTexelBufferOffsetAlignment > VK_SUBALLOC_ALIGN ||
              !ctx->shader_int64))
    return false;
  const char *env = g_getenv("DDPM_KERNELS");
  if (env && !strcmp(env, "gpu")) return false;
  if (env && (!strcmp(env, "cpu") || !strcmp(env, "cpu-direct"))) return true;
  return ctx && ddpm_context_device(ctx)->type == DDPM_DEVICE_CPU;
}

bool ops_use_cpu_gemms(graph *g) {
  (void)g;
  const char *env = g_getenv("DDPM_KERNELS");
  return !env || strcmp(env, "cpu-direct") != 0;
}

bool ops_fp16_weights(graph *g, gweight w) {
  ddpm_context *ctx = graph_context(g);
  return ctx && ctx->fp16_weights && wstore_fits_f16(graph_weights(g), w);
}
