/* Out of device memory (../shared/golden/tiny): a batch that does not fit a
 * small device (DDPM_DEVICE_MEMORY_LIMIT, then vk_set_memory_limit) runs in
 * smaller groups with the same result bit for bit, within the limit; so
 * does one whose allocation really fails (fault injection).  Weights that
 * do not fit and an image far too large fail with an error naming the
 * memory needed and available, before any large allocation, and the
 * context stays usable. */
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "golden.h"
#include "vk/vk.h"

enum { BATCH = 8, STEPS = 4 };

static ddpm_context *ctx; /* unlimited */
static char *dir;

/* The tiny model's folder, or false (skipped) without the goldens. */
static bool have_dir(void) {
  if (!dir) dir = golden_path("tiny");
  return dir != NULL;
}

/* The last "runs in groups of G" debug message's G (0: none since reset). */
static int last_group;

static void on_log(const gchar *domain, GLogLevelFlags level,
                   const gchar *message, gpointer user) {
  (void)user;
  const char *at = strstr(message, "in groups of ");
  if (at) last_group = atoi(at + strlen("in groups of "));
  if (level & G_LOG_LEVEL_DEBUG) {
    if (g_test_verbose()) g_printerr("debug: %s\n", message);
    return;
  }
  g_log_default_handler(domain, level, message, user);
}

/* FNV-1a over the previews (x_t and x0_pred of the whole batch) seen. */
static bool on_progress(const ddpm_progress *pr, void *user) {
  guint64 *h = user;
  const guint8 *bytes[2] = {(const guint8 *)pr->x_t, (const guint8 *)pr->x0_pred};
  for (int k = 0; k < 2; k++)
    for (size_t i = 0; bytes[k] && i < (size_t)BATCH * 3 * 16 * 16 * 4; i++)
      *h = (*h ^ bytes[k][i]) * 0x100000001B3ull;
  *h ^= (guint64)pr->step << 40;
  return true;
}

/* Previews and trajectory of the last job's first run. */
static guint64 preview_hash;
static float traj[STEPS * BATCH * 3 * 16 * 16];

/* DDPM from noise (with previews and the trajectory), then masked SDEdit
 * with RePaint rounds from its result: every noise stream, init and mask
 * go through the groups. */
static bool job(ddpm_model *m, float *out, size_t n, GError **err) {
  ddpm_sample_params p = ddpm_sample_default_params();
  p.steps = STEPS;
  p.seed = 77;
  p.batch = BATCH;
  g_assert_cmpuint(n, ==, G_N_ELEMENTS(traj) / STEPS);
  preview_hash = 0xCBF29CE484222325ull;
  p.progress = on_progress;
  p.user = &preview_hash;
  p.preview_every = 2;
  p.trajectory = traj;
  if (!ddpm_sample(m, &p, out, err)) return false;
  p.progress = NULL;
  p.trajectory = NULL;
  ddpm_model_info info;
  ddpm_model_get_info(m, &info);
  int hw = info.sample_size * info.sample_size;
  float *mask = g_new(float, hw);
  for (int i = 0; i < hw; i++) mask[i] = (i / info.sample_size) < info.sample_size / 2;
  p.init = out;
  p.mask = mask;
  p.strength = 0.6f;
  p.resample = 2;
  bool ok = ddpm_sample(m, &p, out + n, err);
  g_free(mask);
  return ok;
}

static ddpm_model *load(ddpm_context *c) {
  GError *err = NULL;
  ddpm_model *m = ddpm_model_load(c, dir, &err);
  g_assert_no_error(err);
  return m;
}

static double elapsed_since(gint64 t0) {
  return (g_get_monotonic_time() - t0) / 1e6;
}

/* Batch 8 does not fit, 2 does: the groups give the unlimited result. */
static void test_split(void) {
  if (!have_dir()) return;
  GError *err = NULL;
  ddpm_model *m = load(ctx);
  ddpm_model_info info;
  ddpm_model_get_info(m, &info);
  int s = info.sample_size;
  size_t n = (size_t)BATCH * info.in_channels * s * s;
  float *want = g_new(float, 2 * n), *got = g_new(float, 2 * n);
  float *eps_want = g_new(float, n), *eps_got = g_new(float, n);
  int64_t t[BATCH];
  for (int b = 0; b < BATCH; b++) t[b] = 100 * b + 7;
  gint64 t0 = g_get_monotonic_time();
  g_assert_true(job(m, want, n, &err));
  g_assert_no_error(err);
  double t_whole = elapsed_since(t0);
  guint64 hash_whole = preview_hash;
  float *traj_whole = g_memdup2(traj, sizeof traj);
  g_assert_true(ddpm_model_forward(m, want, t, BATCH, s, s, eps_want, &err));
  g_assert_no_error(err);
  /* The limit: the weights and what batch 3 needs (a forward's estimate,
   * staging included), so 8 and 4 do not fit and 2 does. */
  uint64_t e2 = ddpm_model_memory_estimate(m, 2, s, s, &err);
  uint64_t e3 = ddpm_model_memory_estimate(m, 3, s, s, &err);
  uint64_t e8 = ddpm_model_memory_estimate(m, BATCH, s, s, &err);
  g_assert_no_error(err);
  ddpm_model_free(m);
  uint64_t limit = e3;
  g_printerr("estimates: batch 2 %.2f MiB, 3 %.2f MiB, 8 %.2f MiB (weights "
             "%.2f MiB); limit %.2f MiB\n", e2 / 1048576.0, e3 / 1048576.0,
             e8 / 1048576.0, info.weight_bytes / 1048576.0, limit / 1048576.0);

  /* A context made with the environment variable. */
  char *value = g_strdup_printf("%" G_GUINT64_FORMAT, (guint64)limit);
  g_setenv("DDPM_DEVICE_MEMORY_LIMIT", value, TRUE);
  ddpm_context *small = test_context();
  g_unsetenv("DDPM_DEVICE_MEMORY_LIMIT");
  g_free(value);
  g_assert_cmpuint(ddpm_context_device(small)->device_local_bytes, ==, limit);
  m = load(small);
  last_group = 0;
  t0 = g_get_monotonic_time();
  g_assert_true(job(m, got, n, &err));
  g_assert_no_error(err);
  double t_split = elapsed_since(t0);
  g_assert_cmpint(last_group, ==, 2);
  g_assert_cmpmem(got, 2 * n * sizeof(float), want, 2 * n * sizeof(float));
  g_assert_cmpuint(preview_hash, ==, hash_whole);
  g_assert_cmpmem(traj, sizeof traj, traj_whole, sizeof traj);
  g_free(traj_whole);
  last_group = 0;
  g_assert_true(ddpm_model_forward(m, want, t, BATCH, s, s, eps_got, &err));
  g_assert_no_error(err);
  g_assert_cmpint(last_group, ==, 2);
  g_assert_cmpmem(eps_got, n * sizeof(float), eps_want, n * sizeof(float));
  g_assert_cmpuint(small->peak_local_bytes, <=, limit);
  g_printerr("batch %d under a %.2f MiB limit: groups of 2, identical; "
             "peak %.2f MiB device-local; %.2f s (whole batch %.2f s)\n",
             BATCH, limit / 1048576.0, small->peak_local_bytes / 1048576.0,
             t_split, t_whole);

  /* Shared noise (every item draws item 0's, as ddpm_interpolate asks):
   * the same in groups. */
  ddpm_model *big = load(ctx);
  ddpm_sample_params sp = ddpm_sample_default_params();
  sp.sampler = DDPM_SAMPLER_DDIM;
  sp.eta = 1;
  sp.steps = STEPS;
  sp.batch = BATCH;
  sp.shared_noise = true;
  sp.start_x = want; /* different start samples, the same noise */
  g_assert_true(ddpm_sample(big, &sp, got, &err));
  g_assert_no_error(err);
  ddpm_model_free(big);
  float *shared = g_new(float, n);
  last_group = 0;
  g_assert_true(ddpm_sample(m, &sp, shared, &err));
  g_assert_no_error(err);
  g_assert_cmpint(last_group, ==, 2);
  g_assert_cmpmem(shared, n * sizeof(float), got, n * sizeof(float));
  g_free(shared);

  /* The variational bound's chunks split too (same numbers as unlimited),
   * with a model of its own (no graph cached). */
  ddpm_model_free(m);
  m = load(small);
  ddpm_nll_params np = ddpm_nll_default_params();
  np.timesteps = 5;
  np.chunk = 8;
  ddpm_nll_result r_small[2], r_big[2];
  float *x0 = g_new(float, 2 * n / BATCH);
  for (size_t i = 0; i < 2 * n / BATCH; i++) x0[i] = fmaxf(-1, fminf(1, want[i]));
  last_group = 0;
  g_assert_true(ddpm_nll(m, x0, 2, s, s, &np, r_small, NULL, NULL, &err));
  g_assert_no_error(err);
  g_assert_cmpint(last_group, ==, 2);
  ddpm_model_free(m);
  m = load(ctx);
  g_assert_true(ddpm_nll(m, x0, 2, s, s, &np, r_big, NULL, NULL, &err));
  g_assert_no_error(err);
  ddpm_model_free(m);
  for (int b = 0; b < 2; b++) { /* fields: the struct has padding */
    g_assert_cmpfloat(r_small[b].bpd, ==, r_big[b].bpd);
    g_assert_cmpfloat(r_small[b].se, ==, r_big[b].se);
    g_assert_cmpint(r_small[b].n_terms, ==, r_big[b].n_terms);
  }

  /* A real allocation failure (the batch-8 stepper's activations) halves
   * the batch too: groups of 4, the same result. */
  m = load(ctx);
  vk_fault_arm(ctx, VK_FAULT_ALLOC, 1);
  last_group = 0;
  g_assert_true(job(m, got, n, &err));
  g_assert_no_error(err);
  vk_fault_arm(ctx, VK_FAULT_ALLOC, 0);
  g_assert_cmpint(last_group, ==, 4);
  g_assert_cmpmem(got, 2 * n * sizeof(float), want, 2 * n * sizeof(float));
  ddpm_model_free(m);

  unsigned msgs = ddpm_context_validation_messages(small);
  ddpm_context_free(small);
  g_assert_cmpuint(msgs, ==, 0);
  g_free(want); g_free(got); g_free(eps_want); g_free(eps_got); g_free(x0);
}

static void assert_names_memory(const GError *err, const char *what) {
  g_assert_error(err, DDPM_ERROR, DDPM_ERROR_OUT_OF_MEMORY);
  if (!strstr(err->message, what) || !strstr(err->message, "need") ||
      !strstr(err->message, "available") || !strstr(err->message, "MiB") ||
      !strstr(err->message, "try"))
    g_error("unclear out-of-memory error: %s", err->message);
  g_printerr("%s\n", err->message);
}

/* Limits below the weights, and below one image: clear errors; raising
 * the limit makes the same context work. */
static void test_too_small(void) {
  if (!have_dir()) return;
  GError *err = NULL;
  ddpm_model *m = load(ctx);
  ddpm_model_info info;
  ddpm_model_get_info(m, &info);
  int s = info.sample_size;
  size_t n = (size_t)BATCH * info.in_channels * s * s;
  float *want = g_new(float, 2 * n), *got = g_new(float, 2 * n);
  g_assert_true(job(m, want, n, &err));
  g_assert_no_error(err);
  ddpm_model_free(m);

  vk_set_memory_limit(ctx, info.weight_bytes / 2);
  g_assert_null(ddpm_model_load(ctx, dir, &err));
  assert_names_memory(err, "weights");
  g_clear_error(&err);
  g_assert_cmpuint(ctx->local_bytes, ==, 0);

  /* The weights fit, one image's activations do not. */
  vk_set_memory_limit(ctx, info.weight_bytes + 16384);
  m = load(ctx);
  g_assert_false(job(m, got, n, &err));
  char *size = g_strdup_printf("%dx%d", s, s);
  assert_names_memory(err, size);
  g_free(size);
  g_clear_error(&err);
  float *eps = g_new(float, n);
  int64_t t[BATCH] = {0};
  g_assert_false(ddpm_model_forward(m, want, t, BATCH, s, s, eps, &err));
  assert_names_memory(err, "image");
  g_clear_error(&err);
  g_free(eps);
  vk_set_memory_limit(ctx, 0);
  g_assert_true(job(m, got, n, &err));
  g_assert_no_error(err);
  g_assert_cmpmem(got, 2 * n * sizeof(float), want, 2 * n * sizeof(float));
  ddpm_model_free(m);
  g_free(want); g_free(got);
}

static long max_rss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* 16384x16384 (and 2048x2048) on the unlimited device: refused from the
 * estimate in moments, nothing large allocated or written. */
static void test_huge_image(void) {
  if (!have_dir()) return;
  GError *err = NULL;
  ddpm_model *m = load(ctx);
  enum { HUGE = 16384, BIG = 2048 };
  uint64_t est = ddpm_model_memory_estimate(m, 1, HUGE, HUGE, &err);
  g_assert_no_error(err);
  g_printerr("16384x16384 needs %.0f GiB by the estimate; the device has "
             "%.0f MiB\n", est / 1073741824.0,
             ddpm_context_device(ctx)->device_local_bytes / 1048576.0);
  /* out: reserved, not accessible: any write would crash the test. */
  size_t out_bytes = (size_t)3 * HUGE * HUGE * sizeof(float);
  void *out = mmap(NULL, out_bytes, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  g_assert_true(out != MAP_FAILED);
  long rss0 = max_rss_kib();
  uint64_t peak0 = ctx->peak_device_bytes;
  gint64 t0 = g_get_monotonic_time();
  ddpm_sample_params p = ddpm_sample_default_params();
  p.steps = 2;
  p.height = p.width = HUGE;
  g_assert_false(ddpm_sample(m, &p, out, &err));
  double dt = elapsed_since(t0);
  assert_names_memory(err, "16384x16384");
  g_clear_error(&err);
  munmap(out, out_bytes);

  /* 2048x2048 through the forward and the bound (48 MiB inputs). */
  size_t big = (size_t)3 * BIG * BIG;
  float *x = g_new0(float, big), *eps = g_new(float, big);
  int64_t t = 10;
  g_assert_false(ddpm_model_forward(m, x, &t, 1, BIG, BIG, eps, &err));
  assert_names_memory(err, "2048x2048");
  g_clear_error(&err);
  ddpm_nll_params np = ddpm_nll_default_params();
  ddpm_nll_result r;
  g_assert_false(ddpm_nll(m, x, 1, BIG, BIG, &np, &r, NULL, NULL, &err));
  assert_names_memory(err, "2048x2048");
  g_clear_error(&err);
  g_free(x); g_free(eps);
  long grew = max_rss_kib() - rss0;
  g_printerr("refused in %.3f s; peak RSS grew %ld KiB (the 2048x2048 "
             "buffers of the test itself: %zu KiB)\n", dt, grew, 2 * big * 4 / 1024);
  g_assert_cmpfloat(dt, <, 10);
  g_assert_cmpint(grew, <, 2 * (long)(big * 4 / 1024) + 65536);
  g_assert_cmpuint(ctx->peak_device_bytes, ==, peak0);

  /* Still usable. */
  size_t n = (size_t)BATCH * 3 * 16 * 16;
  float *a = g_new(float, 2 * n);
  g_assert_true(job(m, a, n, &err));
  g_assert_no_error(err);
  g_free(a);
  ddpm_model_free(m);
}

/* A limit that is not a number of bytes: refused, naming the variable. */
static void test_bad_limit(void) {
  const char *bad[] = {"lots", "-5", "12Q", "99999999999999999999G"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_setenv("DDPM_DEVICE_MEMORY_LIMIT", bad[i], TRUE);
    GError *err = NULL;
    ddpm_context *c = ddpm_context_new(NULL, &err);
    g_unsetenv("DDPM_DEVICE_MEMORY_LIMIT");
    g_assert_null(c);
    g_assert_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG);
    g_assert_nonnull(strstr(err->message, "DDPM_DEVICE_MEMORY_LIMIT"));
    g_assert_nonnull(strstr(err->message, bad[i]));
    g_clear_error(&err);
  }
  g_setenv("DDPM_DEVICE_MEMORY_LIMIT", "3M", TRUE);
  GError *err = NULL;
  ddpm_context *c = ddpm_context_new(NULL, &err);
  g_unsetenv("DDPM_DEVICE_MEMORY_LIMIT");
  g_assert_no_error(err);
  g_assert_cmpuint(ddpm_context_device(c)->device_local_bytes, ==, 3 << 20);
  ddpm_context_free(c);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  g_log_set_default_handler(on_log, NULL);
  ctx = test_context();
  g_test_add_func("/oom/split", test_split);
  g_test_add_func("/oom/too-small", test_too_small);
  g_test_add_func("/oom/huge-image", test_huge_image);
  g_test_add_func("/oom/bad-limit", test_bad_limit);
  int rc = g_test_run();
  g_free(dir);
  return test_context_finish(ctx, rc);
}
