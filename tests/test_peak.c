/* ddpm-peak's measurement (tools/bench/peak_measure.c) on the test device:
 * it runs, every lane's sums match the CPU's recurrence, and the
 * validation layer stays silent. */
#include "golden.h"
#include "peak_measure.h"

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  ddpm_context *ctx = test_context();
  peak_result r;
  GError *err = NULL;
  bool ok = peak_measure(ctx, 0.02, &r, &err);
  if (ok)
    g_printerr("multiply-add peak: %.1f GFLOP/s (%.3f GFLOP in %.4f s), %d lanes off\n",
               r.gflops, r.gflop, r.seconds, r.mismatches);
  else
    g_printerr("peak_measure: %s\n", err->message);
  g_clear_error(&err);
  return test_context_finish(ctx, ok && r.mismatches == 0 && r.gflops > 0 ? 0 : 1);
}
