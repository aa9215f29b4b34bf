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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peak_measure.h"

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
  peak_result r;
  if (!ctx || !peak_measure(ctx, target, &r, &err)) {
    fprintf(stderr, "ddpm-peak: %s\n", err->message);
    g_error_free(err);
    ddpm_context_free(ctx);
    return 1;
  }
  printf("{\"device\": \"%s\", \"muladd_gflops\": %.1f, \"seconds\": %.4f, \"gflop\": %.3f}\n",
         ddpm_context_device(ctx)->name, r.gflops, r.seconds, r.gflop);
  ddpm_context_free(ctx);
  return r.mismatches ? 1 : 0;
}
