/* The device's multiply-add peak: see peak_measure.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "peak_measure.h"
#include "peak_muladd.spv.h"
#include "vk/vk.h"

enum { CHAINS = 16, STEPS = 128, LOCAL = 64, RUNS = 5, MAX_X = 65535 };
/* 128 steps take a chain from a0 to 1 + (a0 - 1) * 0.61: work left out shows. */
#define M (1.0f - 0x1p-8f)
#define C 0x1p-8f

typedef struct {
  float m, c;
} peak_push;

/* The sum of the chains of a lane whose start is a0 = (lane & 3) / 4, the
 * multiply-add fused or not. */
static float reference(uint32_t start, bool fused) {
  float sum = 0.0f;
  for (int j = 0; j < CHAINS; j++) {
    volatile float a = (float)j + (float)start * 0.25f;
    for (int s = 0; s < STEPS; s++) {
      if (fused) {
        a = fmaf(a, M, C);
      } else {
        volatile float p = a * M;
        a = p + C;
      }
    }
    sum += a;
  }
  return sum;
}

static bool run(ddpm_context *ctx, const vk_kernel *k, vk_buffer *out, uint64_t groups,
                double *seconds, GError **err) {
  uint32_t gx = (uint32_t)MIN(groups, MAX_X), gy = (uint32_t)(groups / gx);
  vk_dispatch d = {.kernel = k, .groups = {gx, gy, 1}};
  d.bindings[0] = (vk_binding){.buffer = out, .range = out->size, .kind = VK_BIND_STORAGE};
  peak_push pc = {M, C};
  memcpy(d.push, &pc, sizeof pc);
  gint64 t0 = g_get_monotonic_time();
  bool ok = vk_run_single(ctx, &d, err);
  *seconds = (g_get_monotonic_time() - t0) / 1e6;
  return ok;
}

bool peak_measure(ddpm_context *ctx, double target, peak_result *res, GError **err) {
  memset(res, 0, sizeof *res);
  vk_buffer out = {0};
  const vk_bind_kind kinds[] = {VK_BIND_STORAGE};
  const uint32_t spec[] = {CHAINS, STEPS};
  const vk_kernel *k = vk_kernel_get(ctx, spv_peak_muladd, sizeof spv_peak_muladd, 1, kinds,
                                     sizeof(peak_push), spec, 2, err);
  bool ok = k && vk_buffer_create(ctx, LOCAL * sizeof(float), VK_MEM_HOST, &out, err);
  /* Size: after a first dispatch (the driver may compile the shader in
   * it), double the workgroups until a dispatch takes a tenth of the
   * target, then scale to the target, in whole rows of MAX_X. */
  uint64_t groups = 64, cap = (uint64_t)MAX_X * MAX_X;
  double s = 0, best = INFINITY;
  ok = ok && run(ctx, k, &out, groups, &s, err);
  while (ok && (ok = run(ctx, k, &out, groups, &s, err)) && s < target / 10 && groups < cap)
    groups *= 2;
  if (ok) {
    groups = (uint64_t)MIN((double)cap, MAX(1.0, groups * target / MAX(s, 1e-6)));
    if (groups > MAX_X) groups = groups / MAX_X * MAX_X;
  }
  for (int r = 0; ok && r < RUNS; r++)
    if ((ok = run(ctx, k, &out, groups, &s, err))) best = MIN(best, s);
  if (ok) {
    const float *o = out.mapped;
    float plain[4], fma4[4]; /* the shader's four starts */
    for (uint32_t start = 0; start < 4; start++)
      plain[start] = reference(start, false), fma4[start] = reference(start, true);
    for (uint32_t i = 0; i < LOCAL; i++) {
      float want = plain[i & 3u], fused = fma4[i & 3u];
      if (fabsf(o[i] - want) > 1e-4f * fabsf(want) &&
          fabsf(o[i] - fused) > 1e-4f * fabsf(fused) && res->mismatches++ < 4)
        fprintf(stderr, "peak: invocation %u sums to %.7g, the CPU to %.7g (%.7g fused)\n",
                i, o[i], want, fused);
    }
    res->gflop = 2.0 * CHAINS * STEPS * (double)groups * LOCAL / 1e9;
    res->seconds = best;
    res->gflops = res->gflop / best;
  }
  vk_buffer_destroy(ctx, &out);
  return ok;
}
