/* ddpm-soak: many sampling jobs in one process, to show that host and
 * device memory stay flat (issue: no leaks over long GIMP sessions).
 *
 *   ddpm-soak MODEL_DIR [--runs N] [--steps S] [--every K]
 *
 * Alternates a DDIM generation and a masked SDEdit of the result (batch 1,
 * a new seed each run) and prints, every K runs, the resident set size and
 * the model's peak device memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ddpm/ddpm.h"

static double rss_mib(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

int main(int argc, char **argv) {
  int runs = 1000, steps = 5, every = 100;
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--every") && i + 1 < argc) every = atoi(argv[++i]);
    else if (!dir && argv[i][0] != '-') dir = argv[i];
    else dir = NULL, i = argc;
  }
  if (!dir || runs < 1 || steps < 1 || steps > 1000 || every < 1) {
    fprintf(stderr, "usage: ddpm-soak MODEL_DIR [--runs N] [--steps 1..1000] [--every K]\n");
    return 2;
  }
  GError *err = NULL;
  ddpm_context_params cp = ddpm_context_default_params();
  ddpm_context *ctx = ddpm_context_new(&cp, &err);
  ddpm_model *m = ctx ? ddpm_model_load(ctx, dir, &err) : NULL;
  if (!m) {
    fprintf(stderr, "ddpm-soak: %s\n", err->message);
    g_error_free(err);
    ddpm_context_free(ctx);
    return 1;
  }
  ddpm_model_info info;
  ddpm_model_get_info(m, &info);
  int s = info.sample_size, hw = s * s;
  size_t n = (size_t)info.in_channels * hw;
  float *img = g_new(float, n), *out = g_new(float, n), *mask = g_new(float, hw);
  for (int i = 0; i < hw; i++) mask[i] = (i / s) < s / 2; /* top half */
  printf("run  rss_MiB  peak_device_MiB\n");
  bool ok = true;
  for (int r = 1; ok && r <= runs; r++) {
    ddpm_sample_params p = ddpm_sample_default_params();
    p.sampler = DDPM_SAMPLER_DDIM;
    p.steps = steps;
    p.seed = (uint64_t)r;
    ok = ddpm_sample(m, &p, img, &err);
    if (ok) {
      p.init = img;
      p.mask = mask;
      p.t0 = -1;
      p.strength = 0.6f;
      ok = ddpm_sample(m, &p, out, &err);
    }
    if (ok && (r % every == 0 || r == 1))
      printf("%4d %8.1f %16.1f\n", r, rss_mib(),
             ddpm_model_peak_device_bytes(m) / 1048576.0);
    fflush(stdout);
  }
  if (!ok) fprintf(stderr, "ddpm-soak: %s\n", err->message);
  g_clear_error(&err);
  g_free(img); g_free(out); g_free(mask);
  ddpm_model_free(m);
  ddpm_context_free(ctx);
  return ok ? 0 : 1;
}
