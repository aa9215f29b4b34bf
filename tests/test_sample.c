/* Samplers against diffusers (../shared/golden/tiny, tiny_b) with the
 * golden's own noise: every step started from the golden's previous sample,
 * and free-running DDPM / SDEdit to the end.  Also timestep grids, the noise
 * generator's statistics, seeds and cancel. */
#include <string.h>

#include <glib/gstdio.h>

#include "golden.h"
#include "model.h"

#define STEP_TOL 1e-4
#define FINAL_TOL 1e-3

static ddpm_context *ctx;

typedef struct {
  char *dir;
  st_file *golden;
  ddpm_model *model;
  int b, c, h, w;
  size_t n;
} fixture;

static bool fixture_open(fixture *f, const char *name) {
  memset(f, 0, sizeof *f);
  f->dir = golden_path(name);
  if (!f->dir) return false;
  char *g = g_build_filename(f->dir, "golden.safetensors", NULL);
  GError *err = NULL;
  f->golden = st_open(g, &err);
  g_assert_no_error(err);
  g_free(g);
  f->model = ddpm_model_load(ctx, f->dir, &err);
  g_assert_no_error(err);
  const st_tensor *x = st_find(f->golden, "ddpm.x_T");
  f->b = (int)x->shape[0], f->c = (int)x->shape[1];
  f->h = (int)x->shape[2], f->w = (int)x->shape[3];
  f->n = x->n_elements;
  return true;
}

static void fixture_close(fixture *f) {
  ddpm_model_free(f->model);
  st_close(f->golden);
  g_free(f->dir);
}

static int64_t *golden_i64(st_file *f, const char *name, size_t *n) {
  const st_tensor *t = st_find(f, name);
  int64_t *v = g_new(int64_t, t->n_elements);
  g_assert_true(st_read_i64(f, t, v, NULL));
  *n = t->n_elements;
  return v;
}

/* Each step from the golden's previous sample; returns the worst error. */
static double replay_steps(fixture *f, const char *prefix, const char *traj_name,
                           ddpm_sampler sampler, ddpm_variance variance) {
  char key[64];
  size_t nt;
  g_snprintf(key, sizeof key, "%s.timesteps", prefix);
  int64_t *ts = golden_i64(f->golden, !strcmp(prefix, "ddpm_large") ? "ddpm.timesteps" : key, &nt);
  g_snprintf(key, sizeof key, "%s.x_T", strcmp(prefix, "ddim") ? "ddpm" : "ddim");
  float *x_T = golden_f32(f->golden, key, NULL);
  float *traj = golden_f32(f->golden, traj_name, NULL);
  float *noise = strcmp(prefix, "ddim") ? golden_f32(f->golden, "ddpm.noise", NULL) : NULL;
  ddpm_schedule *s = (ddpm_schedule *)ddpm_model_schedule(f->model);
  ddpm_variance saved = s->variance;
  s->variance = variance;
  float *out = g_new(float, f->n), *x0 = g_new(float, f->n);
  double worst = 0;
  GError *err = NULL;
  for (size_t k = 0; k < nt; k++) {
    const float *x = k ? traj + (k - 1) * f->n : x_T;
    g_assert_true(ddpm_sample_step(f->model, sampler, (int)nt, 0.0f, (int)ts[k], f->b,
                                   f->h, f->w, x, noise ? noise + k * f->n : NULL,
                                   out, x0, &err));
    double e = rel_max_err(out, traj + k * f->n, f->n);
    if (e > worst) worst = e;
  }
  s->variance = saved;
  g_free(ts); g_free(x_T); g_free(traj); g_free(noise); g_free(out); g_free(x0);
  return worst;
}

static void run_free(fixture *f, ddpm_sample_params *p, const char *final_name,
                     const char *label) {
  float *out = g_new(float, f->n);
  GError *err = NULL;
  g_assert_true(ddpm_sample(f->model, p, out, &err));
  g_assert_no_error(err);
  float *want = golden_f32(f->golden, final_name, NULL);
  double e = rel_max_err(out, want, f->n);
  g_printerr("  %s free-running final: max rel err %.3g\n", label, e);
  g_assert_cmpfloat(e, <=, FINAL_TOL);
  g_free(want);
  g_free(out);
}

static void golden_samplers(gconstpointer data) {
  fixture f;
  if (!fixture_open(&f, data)) return;
  double e;
  e = replay_steps(&f, "ddpm", "ddpm.traj", DDPM_SAMPLER_DDPM, VARIANCE_FIXED_SMALL);
  g_printerr("%s: DDPM fixed_small per-step max rel err %.3g\n", (char *)data, e);
  g_assert_cmpfloat(e, <=, STEP_TOL);
  e = replay_steps(&f, "ddpm_large", "ddpm_large.traj", DDPM_SAMPLER_DDPM, VARIANCE_FIXED_LARGE);
  g_printerr("%s: DDPM fixed_large per-step max rel err %.3g\n", (char *)data, e);
  g_assert_cmpfloat(e, <=, STEP_TOL);
  e = replay_steps(&f, "ddim", "ddim.traj", DDPM_SAMPLER_DDIM, VARIANCE_FIXED_SMALL);
  g_printerr("%s: DDIM per-step max rel err %.3g\n", (char *)data, e);
  g_assert_cmpfloat(e, <=, STEP_TOL);

  /* DDPM, free-running from x_T with the golden's noises. */
  float *x_T = golden_f32(f.golden, "ddpm.x_T", NULL);
  float *noise = golden_f32(f.golden, "ddpm.noise", NULL);
  ddpm_sample_params p = ddpm_sample_default_params();
  p.steps = 20;
  p.batch = f.b;
  p.noise_start = x_T;
  p.noise_steps = noise;
  run_free(&f, &p, "ddpm.x0", "DDPM");

  /* SDEdit: grid 25, t0 400, the golden's mask and noises. */
  float *x0_in = golden_f32(f.golden, "sdedit.x0_in", NULL);
  float *mask = golden_f32(f.golden, "sdedit.mask", NULL);
  float *n_init = golden_f32(f.golden, "sdedit.noise_init", NULL);
  float *n_step = golden_f32(f.golden, "sdedit.step_noise", NULL);
  float *n_known = golden_f32(f.golden, "sdedit.known_noise", NULL);
  p = ddpm_sample_default_params();
  p.steps = 25;
  p.batch = f.b;
  p.init = x0_in;
  p.mask = mask;
  p.t0 = 400;
  p.noise_start = n_init;
  p.noise_steps = n_step;
  p.noise_known = n_known;
  GError *err = NULL;
  g_assert_cmpint(ddpm_sample_steps_run(f.model, &p, &err), ==, 11);
  float *traj = g_new(float, 11 * f.n);
  p.trajectory = traj;
  run_free(&f, &p, "sdedit.out", "SDEdit");
  float *want = golden_f32(f.golden, "sdedit.traj", NULL);
  e = rel_max_err(traj, want, 11 * f.n);
  g_printerr("  SDEdit trajectory max rel err %.3g\n", e);
  g_assert_cmpfloat(e, <=, FINAL_TOL);

  g_free(want); g_free(traj);
  g_free(x0_in); g_free(mask); g_free(n_init); g_free(n_step); g_free(n_known);
  g_free(x_T); g_free(noise);
  fixture_close(&f);
}

/* Grids from diffusers' set_timesteps formulas (scheduling_ddpm.py):
 * leading: (arange(steps) * (T // steps)).round()[::-1] + steps_offset;
 * trailing: round(arange(T, 0, -T / steps)) - 1;
 * linspace: linspace(0, T - 1, steps).round()[::-1]. Expected lists worked
 * out by hand from those formulas for T = 1000. */
static void test_timesteps(void) {
  ddpm_schedule s;
  ddpm_schedule_defaults(&s);
  int ts[64];
  static const int lead10[] = {900, 800, 700, 600, 500, 400, 300, 200, 100, 0};
  g_assert_true(ddpm_schedule_timesteps(&s, 10, ts));
  g_assert_cmpmem(ts, sizeof lead10, lead10, sizeof lead10);
  static const int lead7[] = {852, 710, 568, 426, 284, 142, 0};
  g_assert_true(ddpm_schedule_timesteps(&s, 7, ts));
  g_assert_cmpmem(ts, sizeof lead7, lead7, sizeof lead7);
  s.steps_offset = 1;
  static const int lead4[] = {751, 501, 251, 1};
  g_assert_true(ddpm_schedule_timesteps(&s, 4, ts));
  g_assert_cmpmem(ts, sizeof lead4, lead4, sizeof lead4);
  s.steps_offset = 0;
  s.spacing = SPACING_TRAILING;
  static const int trail7[] = {999, 856, 713, 570, 428, 285, 142};
  g_assert_true(ddpm_schedule_timesteps(&s, 7, ts));
  g_assert_cmpmem(ts, sizeof trail7, trail7, sizeof trail7);
  s.spacing = SPACING_LINSPACE;
  static const int lin7[] = {999, 832, 666, 500, 333, 166, 0};
  g_assert_true(ddpm_schedule_timesteps(&s, 7, ts));
  g_assert_cmpmem(ts, sizeof lin7, lin7, sizeof lin7);
  g_assert_false(ddpm_schedule_timesteps(&s, 0, ts));
  g_assert_false(ddpm_schedule_timesteps(&s, 1001, ts));
  /* linear betas: 1e-4 .. 0.02 */
  g_assert_cmpfloat(fabs(s.betas[0] - 1e-4f), <, 1e-9);
  g_assert_cmpfloat(fabs(s.betas[999] - 0.02f), <, 1e-9);
  ddpm_schedule_clear(&s);
}

/* 10^6 draws: mean ~ 0, variance ~ 1, neighbours uncorrelated; streams and
 * seeds differ. */
static void test_noise_stats(void) {
  const int n = 1000000;
  double sum = 0, sq = 0, cross = 0, prev = 0;
  for (int i = 0; i < n; i++) {
    double v = ddpm_noise(1234, 7, (uint64_t)i);
    sum += v;
    sq += v * v;
    if (i) cross += v * prev;
    prev = v;
  }
  double mean = sum / n, var = sq / n - mean * mean, corr = cross / (n - 1);
  g_printerr("noise: mean %.2e var %.4f lag-1 corr %.2e\n", mean, var, corr);
  g_assert_cmpfloat(fabs(mean), <, 5e-3);
  g_assert_cmpfloat(fabs(var - 1), <, 5e-3);
  g_assert_cmpfloat(fabs(corr), <, 5e-3);
  g_assert_cmpfloat(ddpm_noise(1, 0, 0), !=, ddpm_noise(2, 0, 0));
  g_assert_cmpfloat(ddpm_noise(1, 0, 0), !=, ddpm_noise(1, 1, 0));
  g_assert_cmpfloat(ddpm_noise(1, 0, 5), ==, ddpm_noise(1, 0, 5));
}

typedef struct {
  int calls, stop_after;
} cancel_state;

static bool on_progress(const ddpm_progress *pr, void *user) {
  cancel_state *c = user;
  c->calls++;
  g_assert_cmpint(pr->step, ==, c->calls);
  return c->calls < c->stop_after;
}

/* Same seed, same image; batch item b equals a batch-1 run with seed + b;
 * cancel stops after the requested step. */
static void test_seed_and_cancel(void) {
  fixture f;
  if (!fixture_open(&f, "tiny")) return;
  size_t item = f.n / f.b;
  float *a = g_new(float, 2 * item), *b = g_new(float, item);
  ddpm_sample_params p = ddpm_sample_default_params();
  p.sampler = DDPM_SAMPLER_DDIM;
  p.steps = 4;
  p.seed = 99;
  p.batch = 2;
  GError *err = NULL;
  g_assert_true(ddpm_sample(f.model, &p, a, &err));
  p.batch = 1;
  p.seed = 100;
  g_assert_true(ddpm_sample(f.model, &p, b, &err));
  g_assert_cmpmem(a + item, item * 4, b, item * 4);

  cancel_state cs = {0, 2};
  p.steps = 10;
  p.progress = on_progress;
  p.user = &cs;
  g_assert_false(ddpm_sample(f.model, &p, b, &err));
  g_assert_error(err, DDPM_ERROR, DDPM_ERROR_CANCELLED);
  g_assert_cmpint(cs.calls, ==, 2);
  g_clear_error(&err);

  p.progress = NULL;
  p.steps = 0;
  g_assert_false(ddpm_sample(f.model, &p, b, &err));
  g_assert_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG);
  g_clear_error(&err);
  g_free(a);
  g_free(b);
  fixture_close(&f);
}

/* NaN in the input is refused up front; NaN weights (conv_out.bias of a
 * copy of the tiny model) end in DDPM_ERROR_NUMERIC, never in a sample. */
static void test_non_finite(void) {
  fixture f;
  if (!fixture_open(&f, "tiny")) return;
  size_t item = f.n / f.b;
  float *init = g_new0(float, item), *out = g_new(float, item);
  init[5] = NAN;
  ddpm_sample_params p = ddpm_sample_default_params();
  p.sampler = DDPM_SAMPLER_DDIM;
  p.steps = 3;
  p.init = init;
  p.strength = 0.5f;
  GError *err = NULL;
  g_assert_false(ddpm_sample(f.model, &p, out, &err));
  g_assert_error(err, DDPM_ERROR, DDPM_ERROR_NUMERIC);
  g_clear_error(&err);
  fixture_close(&f);

  char *src = golden_path("tiny");
  char *dir = g_dir_make_tmp("ddpm-nan-XXXXXX", NULL);
  const char *files[] = {"config.json", "scheduler_config.json",
                         "diffusion_pytorch_model.safetensors"};
  for (int i = 0; i < 3; i++) {
    char *a = g_build_filename(src, files[i], NULL), *b = g_build_filename(dir, files[i], NULL);
    char *data = NULL;
    gsize len = 0;
    if (g_file_get_contents(a, &data, &len, NULL)) {
      if (i == 2) { /* NaN into conv_out.bias */
        st_file *sf = st_open(a, &err);
        g_assert_no_error(err);
        const st_tensor *t = st_find(sf, "conv_out.bias");
        g_assert_nonnull(t);
        g_assert_cmpint(t->dtype, ==, ST_F32);
        uint64_t hlen;
        memcpy(&hlen, data, 8);
        float nan = NAN;
        memcpy(data + 8 + hlen + t->offset, &nan, 4);
        st_close(sf);
      }
      g_assert_true(g_file_set_contents(b, data, (gssize)len, NULL));
    }
    g_free(data); g_free(a); g_free(b);
  }
  ddpm_model *m = ddpm_model_load(ctx, dir, &err);
  g_assert_no_error(err);
  p.init = NULL;
  g_assert_false(ddpm_sample(m, &p, out, &err));
  g_assert_error(err, DDPM_ERROR, DDPM_ERROR_NUMERIC);
  g_clear_error(&err);
  ddpm_model_free(m);
  for (int i = 0; i < 3; i++) {
    char *b = g_build_filename(dir, files[i], NULL);
    g_remove(b);
    g_free(b);
  }
  g_rmdir(dir);
  g_free(dir); g_free(src); g_free(init); g_free(out);
}

/* RePaint resampling: runs, and the kept region is exactly the input. */
static void test_harmonize(void) {
  fixture f;
  if (!fixture_open(&f, "tiny")) return;
  size_t item = f.n / f.b, hw = (size_t)f.h * f.w;
  float *init = golden_f32(f.golden, "sdedit.x0_in", NULL);
  float *mask = golden_f32(f.golden, "sdedit.mask", NULL);
  float *out = g_new(float, item);
  ddpm_sample_params p = ddpm_sample_default_params();
  p.steps = 10;
  p.init = init;
  p.mask = mask;
  p.strength = 0.3f;
  p.resample = 3;
  p.seed = 11;
  GError *err = NULL;
  g_assert_true(ddpm_sample(f.model, &p, out, &err));
  int inside = 0;
  for (size_t i = 0; i < item; i++) {
    if (mask[i % hw] == 0.0f) g_assert_cmpfloat(out[i], ==, init[i]);
    else inside += out[i] != init[i];
  }
  g_assert_cmpint(inside, >, 0);
  g_free(init); g_free(mask); g_free(out);
  fixture_close(&f);
}

/* The MAD estimator finds the sigma of pure Gaussian noise. */
static void test_noise_estimate(void) {
  const int c = 3, h = 64, w = 64;
  float *img = g_new(float, c * h * w);
  for (int i = 0; i < c * h * w; i++) img[i] = 0.2f + 0.1f * ddpm_noise(5, 3, i);
  float s = ddpm_estimate_noise_sigma(img, c, h, w);
  g_printerr("noise estimate: %.4f for 0.1\n", s);
  g_assert_cmpfloat(fabs(s - 0.1f), <, 0.01);
  g_free(img);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  ctx = test_context();
  g_test_add_func("/sample/timesteps", test_timesteps);
  g_test_add_func("/sample/noise_stats", test_noise_stats);
  g_test_add_data_func("/sample/golden/tiny", "tiny", golden_samplers);
  g_test_add_data_func("/sample/golden/tiny_b", "tiny_b", golden_samplers);
  g_test_add_func("/sample/seed_and_cancel", test_seed_and_cancel);
  g_test_add_func("/sample/harmonize", test_harmonize);
  g_test_add_func("/sample/non_finite", test_non_finite);
  g_test_add_func("/sample/noise_estimate", test_noise_estimate);
  int rc = g_test_run();
  return test_context_finish(ctx, rc);
}
