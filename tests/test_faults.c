/* Fault injection: every device memory allocation, queue submit and fence
 * wait of a whole job (model load, DDIM sample, SDEdit sample) fails in turn.
 * Each run must end in a clear error of the right code, leak nothing (ASan,
 * validation layer quiet), and leave the context usable: the same job then
 * succeeds with the same result.  An allocation that fails while a sampler
 * sets up its batch is recovered from by running the batch in smaller
 * groups: then the job succeeds, with the same result. */
#include <string.h>

#include "golden.h"
#include "vk/vk.h"

static ddpm_context *ctx;

enum { BATCH = 2 };

/* Loads `dir` and runs a short DDIM generation and an SDEdit with a mask
 * into out (2 samples each).  Any failure is reported in err. */
static bool job(const char *dir, float *out, size_t n, GError **err) {
  ddpm_model *m = ddpm_model_load(ctx, dir, err);
  if (!m) return false;
  ddpm_sample_params p = ddpm_sample_default_params();
  p.sampler = DDPM_SAMPLER_DDIM;
  p.steps = 3;
  p.seed = 5;
  p.batch = BATCH;
  bool ok = ddpm_sample(m, &p, out, err);
  if (ok) {
    float *init = g_memdup2(out, n * sizeof(float));
    ddpm_model_info info;
    ddpm_model_get_info(m, &info);
    int hw = info.sample_size * info.sample_size;
    float *mask = g_new(float, hw);
    for (int i = 0; i < hw; i++) mask[i] = i % 3 == 0;
    p.sampler = DDPM_SAMPLER_DDPM;
    p.init = init;
    p.mask = mask;
    p.t0 = -1;
    p.strength = 0.5f;
    ok = ddpm_sample(m, &p, out + n, err);
    g_free(init);
    g_free(mask);
  }
  ddpm_model_free(m);
  return ok;
}

static void test_sweep(void) {
  char *dir = golden_path("tiny");
  if (!dir) return;
  GError *err = NULL;
  ddpm_model *m = ddpm_model_load(ctx, dir, &err);
  g_assert_no_error(err);
  ddpm_model_info info;
  ddpm_model_get_info(m, &info);
  ddpm_model_free(m);
  size_t n = (size_t)BATCH * info.in_channels * info.sample_size * info.sample_size;
  float *want = g_new(float, 2 * n), *got = g_new(float, 2 * n);

  static const struct {
    vk_fault_kind kind;
    const char *name;
    int code;
    const char *says;
  } kinds[] = {
    {VK_FAULT_ALLOC, "allocation", DDPM_ERROR_OUT_OF_MEMORY, "memory allocating"},
    {VK_FAULT_SUBMIT, "submit", DDPM_ERROR_VULKAN, "DEVICE_LOST"},
    {VK_FAULT_WAIT, "fence wait", DDPM_ERROR_VULKAN, "TIMEOUT"},
  };
  for (size_t k = 0; k < G_N_ELEMENTS(kinds); k++) {
    /* A clean run counts the calls. */
    vk_fault_arm(ctx, kinds[k].kind, 0);
    g_assert_true(job(dir, want, n, &err));
    g_assert_no_error(err);
    uint64_t calls = vk_fault_calls(ctx, kinds[k].kind);
    g_assert_cmpuint(calls, >, 0);
    unsigned recovered = 0;
    for (uint64_t at = 1; at <= calls; at++) {
      vk_fault_arm(ctx, kinds[k].kind, at);
      bool ok = job(dir, got, n, &err);
      if (ok && kinds[k].kind == VK_FAULT_ALLOC) {
        g_assert_no_error(err); /* split into smaller groups */
        g_assert_cmpmem(got, 2 * n * sizeof(float), want, 2 * n * sizeof(float));
        recovered++;
        continue;
      }
      g_assert_false(ok);
      g_assert_nonnull(err);
      if (!g_error_matches(err, DDPM_ERROR, kinds[k].code) ||
          !strstr(err->message, kinds[k].says))
        g_error("%s %" G_GUINT64_FORMAT ": unexpected error: %s", kinds[k].name,
                at, err->message);
      if (g_test_verbose() && at == 1) g_printerr("%s -> %s\n", kinds[k].name, err->message);
      g_clear_error(&err);
      /* The context is still good: the job now succeeds, identically. */
      vk_fault_arm(ctx, kinds[k].kind, 0);
      g_assert_true(job(dir, got, n, &err));
      g_assert_no_error(err);
      g_assert_cmpmem(got, 2 * n * sizeof(float), want, 2 * n * sizeof(float));
    }
    g_printerr("%s: %" G_GUINT64_FORMAT " injection points, each a clean error "
               "or (%u) recovered by splitting the batch\n", kinds[k].name, calls,
               recovered);
  }
  g_free(want);
  g_free(got);
  g_free(dir);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  ctx = test_context();
  g_test_add_func("/faults/sweep", test_sweep);
  int rc = g_test_run();
  return test_context_finish(ctx, rc);
}
