/* Shared helpers for tests that read ../shared/golden (DDPM_GOLDEN_DIR). */
#ifndef DDPM_TEST_GOLDEN_H
#define DDPM_TEST_GOLDEN_H

#include <dlfcn.h>
#include <math.h>

#include "ddpm/ddpm.h"
#include "model/safetensors.h"

/* Path under the golden folder (g_free), or NULL (test skipped) if unset. */
static inline char *golden_path(const char *rel) {
  const char *dir = g_getenv("DDPM_GOLDEN_DIR");
  if (!dir) {
    g_test_skip("DDPM_GOLDEN_DIR not set");
    return NULL;
  }
  return g_build_filename(dir, rel, NULL);
}

/* Reads a float tensor of a golden file into a new array (g_free). */
static inline float *golden_f32(st_file *f, const char *name, uint64_t *count) {
  const st_tensor *t = st_find(f, name);
  g_assert_nonnull(t);
  float *data = g_new(float, t->n_elements ? t->n_elements : 1);
  GError *err = NULL;
  g_assert_true(st_read_f32(f, t, data, &err));
  if (count) *count = t->n_elements;
  return data;
}

/* max |got - want| / max(1, max |want|) */
static inline double rel_max_err(const float *got, const float *want, size_t n) {
  double e = 0, m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - want[i]);
    if (!(d <= e)) e = d; /* NaN propagates as failure */
    if (fabs(want[i]) > m) m = fabs(want[i]);
  }
  return e / (m > 1 ? m : 1);
}

/* A context with the validation layer on.  Driver and layer libraries are
 * pinned in memory (RTLD_NODELETE) so that LeakSanitizer does not report
 * their process-lifetime allocations as leaks once the loader unloads them. */
static inline ddpm_context *test_context(void) {
  static const char *const pinned[] = {
    "libVkLayer_khronos_validation.so", "libVkLayer_MESA_device_select.so",
    "libvulkan_lvp.so"};
  for (size_t i = 0; i < G_N_ELEMENTS(pinned); i++)
    dlopen(pinned[i], RTLD_NOW | RTLD_NODELETE);
  GError *err = NULL;
  ddpm_context_params cp = ddpm_context_default_params();
  cp.validation = true;
  ddpm_context *ctx = ddpm_context_new(&cp, &err);
  if (!ctx) g_error("no Vulkan context: %s", err->message);
  return ctx;
}

/* Frees the test context: exit status 1 if the validation layer reported
 * anything during the run, else rc. */
static inline int test_context_finish(ddpm_context *ctx, int rc) {
  unsigned msgs = ddpm_context_validation_messages(ctx);
  ddpm_context_free(ctx);
  if (msgs) {
    g_printerr("FAIL: %u validation message(s)\n", msgs);
    return 1;
  }
  return rc;
}

#endif
