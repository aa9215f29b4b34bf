/* Which family of kernels an op records: tiled ones using shared memory for
 * GPUs, or "direct" ones for CPU devices (lavapipe), which avoid barriers
 * and read their large inputs through texel buffers. */
#include <string.h>

#include "ops/ops.h"

bool ops_use_cpu_kernels(graph *g, uint64_t weight_texels) {
  ddpm_context *ctx = graph_context(g); /* NULL: a graph only planned */
  if (ctx) {
    const VkPhysicalDeviceLimits *l = &ctx->limits;
    if (l->minTexelBufferOffsetAlignment > VK_SUBALLOC_ALIGN ||
        weight_texels > l->maxTexelBufferElements)
      return false;
  }
  const char *env = g_getenv("DDPM_KERNELS");
  if (env && !strcmp(env, "gpu")) return false;
  if (env && !strcmp(env, "cpu")) return true;
  return ctx && ddpm_context_device(ctx)->type == DDPM_DEVICE_CPU;
}
