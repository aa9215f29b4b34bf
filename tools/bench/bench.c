/* ddpm-bench: time U-Net forwards of a model folder on a Vulkan device.
 *
 *   ddpm-bench MODEL_DIR [--batch B] [--iters N] [--device D] [--fp16-weights]
 *
 * Loads the model, runs one forward to build and warm up the graph, then N
 * more, and prints one JSON line: device, parameters, batch, median, mean and
 * best seconds per forward, peak device memory, the weights' size, and the set-up
 * time (loading, then the first forward, which compiles the shaders).  The
 * numbers are for comparison within one run (tools/bench/bench.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddpm/ddpm.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int batch = 1, iters = 3;
  const char *dir = NULL, *device = NULL;
  bool fp16 = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
    else if (!strcmp(argv[i], "--fp16-weights")) fp16 = true;
    else if (!dir && argv[i][0] != '-') dir = argv[i];
    else dir = NULL, i = argc;
  }
  if (!dir || batch < 1 || batch > 256 || iters < 1 || iters > 1000) {
    fprintf(stderr, "usage: ddpm-bench MODEL_DIR [--batch 1..256] [--iters 1..1000] "
                    "[--device D] [--fp16-weights]\n");
    return 2;
  }
  GError *err = NULL;
  ddpm_context_params cp = ddpm_context_default_params();
  cp.device = device;
  cp.fp16_weights = fp16;
  ddpm_context *ctx = ddpm_context_new(&cp, &err);
  gint64 t_load = g_get_monotonic_time();
  ddpm_model *m = ctx ? ddpm_model_load(ctx, dir, &err) : NULL;
  double load_s = (g_get_monotonic_time() - t_load) / 1e6;
  if (!m) {
    fprintf(stderr, "ddpm-bench: %s\n", err->message);
    g_error_free(err);
    ddpm_context_free(ctx);
    return 1;
  }
  ddpm_model_info info;
  ddpm_model_get_info(m, &info);
  int s = info.sample_size > 0 ? info.sample_size : 32;
  size_t n = (size_t)batch * info.in_channels * s * s;
  float *x = g_new(float, n), *eps = g_new(float, (size_t)batch * info.out_channels * s * s);
  for (size_t i = 0; i < n; i++) x[i] = ddpm_noise(1, 0, i);
  int64_t *t = g_new(int64_t, batch);
  for (int b = 0; b < batch; b++) t[b] = 500;
  double sum = 0, *times = g_new(double, iters);
  gint64 t_first = g_get_monotonic_time();
  bool ok = ddpm_model_forward(m, x, t, batch, s, s, eps, &err);
  double first_s = (g_get_monotonic_time() - t_first) / 1e6;
  for (int i = 0; ok && i < iters; i++) {
    gint64 t0 = g_get_monotonic_time();
    ok = ddpm_model_forward(m, x, t, batch, s, s, eps, &err);
    double sec = (g_get_monotonic_time() - t0) / 1e6;
    sum += sec;
    times[i] = sec;
  }
  /* Sorted: the best first, the median as the PyTorch side takes it (the
   * upper middle one). */
  if (ok) qsort(times, iters, sizeof *times, cmp_double);
  if (ok)
    printf("{\"device\": \"%s\", \"model\": \"%s\", \"params\": %" G_GUINT64_FORMAT
           ", \"size\": %d, \"batch\": %d, \"iters\": %d, \"median_s\": %.4f, "
           "\"mean_s\": %.4f, \"best_s\": %.4f, \"peak_device_bytes\": %" G_GUINT64_FORMAT
           ", \"weight_bytes\": %" G_GUINT64_FORMAT ", \"gflop\": %.4f"
           ", \"load_s\": %.3f, \"first_forward_s\": %.3f}\n",
           ddpm_context_device(ctx)->name, dir, info.n_params, s, batch, iters,
           times[iters / 2], sum / iters, times[0], ddpm_model_peak_device_bytes(m),
           info.weight_bytes,
           info.forward_flops * batch / 1e9, load_s, first_s);
  else
    fprintf(stderr, "ddpm-bench: %s\n", err->message);
  g_clear_error(&err);
  g_free(x); g_free(eps); g_free(t); g_free(times);
  ddpm_model_free(m);
  ddpm_context_free(ctx);
  return ok ? 0 : 1;
}
