/* ddpm-peak: the device's multiply-add peak (shaders/peak_muladd.comp), a
 * ceiling for tools/bench/bench.py to set the convolutions against beside
 * the CPU's sgemm: on lavapipe a multiply-add is a multiply and an add (Mesa
 * 22.3 lowers every ffma), so the device's own peak can sit well below
 * what the CPU's BLAS reaches with fused multiply-adds.
 *
 *   ddpm-peak [--device D] [--seconds S]
 *
 * Sizes the dispatch to about S seconds (default 0.2), runs it 5 times and
 * prints one JSON line: device, GFLOP/s of the fastest (2 flops a
 * multiply-add), and the seconds and GFLOP of that dispatch.  Checks the
 * chains' sums against the same recurrence on the CPU (exit 1 on a
 * mismatch). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddpm/ddpm.h"
#include "peak_muladd.spv.h"
#include "vk/vk.h"

enum { CHAINS = 16, STEPS = 128, LOCAL = 64, RUNS = 5, MAX_X = 65535 };
/* 128 steps take a chain from a0 to 1 + (a0 - 1) * 0.61: work left out shows. */
#define M (1.0f - 0x1p-8f)
#define C 0x1p-8f

typedef struct {
  float m, c;
} peak_push;

/* The sum of a lane's chains, the multiply-add fused or not. */
static float reference(uint32_t lane, bool fused) {
  float sum = 0.0f;
  for (int j = 0; j < CHAINS; j++) {
    volatile float a = (float)j + (float)(lane & 3u) * 0.25f;
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

int main(int argc, char **argv) {
  const char *device = NULL;
  double target = 0.2;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) target = atof(argv[++i]);
    else target = -1, i = argc;
  }
  if (!(target > 0 && target <= 60)) {
    fprintf(stderr, "usage: ddpm-peak [--device D] [--seconds 0..60]\n");
    return 2;
  }
  GError *err = NULL;
  ddpm_context_params cp = ddpm_context_default_params();
  cp.device = device;
  ddpm_context *ctx = ddpm_context_new(&cp, &err);
  vk_buffer out = {0};
  const vk_bind_kind kinds[] = {VK_BIND_STORAGE};
  const uint32_t spec[] = {CHAINS, STEPS};
  const vk_kernel *k = ctx ? vk_kernel_get(ctx, spv_peak_muladd, sizeof spv_peak_muladd, 1,
                                           kinds, sizeof(peak_push), spec, 2, &err)
                           : NULL;
  bool ok = k && vk_buffer_create(ctx, LOCAL * sizeof(float), VK_MEM_HOST, &out, &err);
  /* Size: after a first dispatch (the driver may compile the shader in
   * it), double the workgroups until a dispatch takes a tenth of the
   * target, then scale to the target, in whole rows of MAX_X. */
  uint64_t groups = 64, cap = (uint64_t)MAX_X * MAX_X;
  double s = 0, best = INFINITY;
  ok = ok && run(ctx, k, &out, groups, &s, &err);
  while (ok && (ok = run(ctx, k, &out, groups, &s, &err)) && s < target / 10 && groups < cap)
    groups *= 2;
  if (ok) {
    groups = (uint64_t)MIN((double)cap, MAX(1.0, groups * target / MAX(s, 1e-6)));
    if (groups > MAX_X) groups = groups / MAX_X * MAX_X;
  }
  for (int r = 0; ok && r < RUNS; r++)
    if ((ok = run(ctx, k, &out, groups, &s, &err))) best = MIN(best, s);
  if (!ok) {
    fprintf(stderr, "ddpm-peak: %s\n", err ? err->message : "failed");
    g_clear_error(&err);
    if (ctx) vk_buffer_destroy(ctx, &out);
    ddpm_context_free(ctx);
    return 1;
  }
  const float *o = out.mapped;
  int bad = 0;
  for (uint32_t i = 0; i < LOCAL; i++) {
    float want = reference(i, false), fused = reference(i, true);
    if (fabsf(o[i] - want) > 1e-4f * fabsf(want) && fabsf(o[i] - fused) > 1e-4f * fabsf(fused) &&
        bad++ < 4)
      fprintf(stderr, "ddpm-peak: invocation %u sums to %.7g, the CPU to %.7g (%.7g fused)\n",
              i, o[i], want, fused);
  }
  double flops = 2.0 * CHAINS * STEPS * (double)groups * LOCAL;
  printf("{\"device\": \"%s\", \"muladd_gflops\": %.1f, \"seconds\": %.4f, \"gflop\": %.3f}\n",
         ddpm_context_device(ctx)->name, flops / best / 1e9, best, flops / 1e9);
  vk_buffer_destroy(ctx, &out);
  ddpm_context_free(ctx);
  return bad ? 1 : 0;
}
