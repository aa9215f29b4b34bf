/* ddpm_interpolate (Ho et al. 2020, section 4.3) on the tiny golden model:
 * the end frames are SDEdit runs of each image with the same seed, a middle
 * frame is the SDEdit run of the mixed image (the forward process is
 * linear in x0 for a fixed eps), slerp keeps the norm, the reverse noise is
 * shared by all frames, and bad arguments are refused. */
#include <string.h>

#include "golden.h"
#include "interpolate.h"
#include "model.h"
#include "schedule.h"

#define T_START 400
#define STEPS 20
#define SEED 7

static ddpm_context *ctx;

typedef struct {
  char *dir;
  ddpm_model *model;
  int c, h, w;
  size_t n;
  float *a, *b;
} fixture;

static bool fixture_open(fixture *f) {
  memset(f, 0, sizeof *f);
  f->dir = golden_path("tiny");
  if (!f->dir) return false;
  GError *err = NULL;
  f->model = ddpm_model_load(ctx, f->dir, &err);
  g_assert_no_error(err);
  ddpm_model_info info;
  ddpm_model_get_info(f->model, &info);
  f->c = info.in_channels;
  f->h = f->w = info.sample_size;
  f->n = (size_t)f->c * f->h * f->w;
  /* Two smooth, different pictures in [-1, 1]. */
  f->a = g_new(float, f->n);
  f->b = g_new(float, f->n);
  for (int ch = 0; ch < f->c; ch++)
    for (int y = 0; y < f->h; y++)
      for (int x = 0; x < f->w; x++) {
        size_t i = ((size_t)ch * f->h + y) * f->w + x;
        f->a[i] = 0.8f * sinf(0.4f * x + ch) * cosf(0.3f * y);
        f->b[i] = (x + y) % 8 < 4 ? 0.7f - 0.2f * ch : -0.6f;
      }
  return true;
}

static void fixture_close(fixture *f) {
  ddpm_model_free(f->model);
  g_free(f->dir);
  g_free(f->a);
  g_free(f->b);
}

static ddpm_interpolate_params params(int frames, bool spherical) {
  ddpm_interpolate_params p = ddpm_interpolate_default_params();
  p.t = T_START;
  p.frames = frames;
  p.spherical = spherical;
  p.steps = STEPS;
  p.seed = SEED;
  return p;
}

/* The SDEdit run of one image from t with the interpolation's seed. */
static float *sdedit(fixture *f, const float *x0, ddpm_sampler sampler, float eta) {
  ddpm_sample_params p = ddpm_sample_default_params();
  p.sampler = sampler;
  p.eta = eta;
  p.steps = STEPS;
  p.seed = SEED;
  p.init = x0;
  p.t0 = T_START;
  float *out = g_new(float, f->n);
  GError *err = NULL;
  g_assert_true(ddpm_sample(f->model, &p, out, &err));
  g_assert_no_error(err);
  return out;
}

static float *interpolate(fixture *f, const ddpm_interpolate_params *p) {
  float *out = g_new(float, f->n * p->frames);
  GError *err = NULL;
  g_assert_true(ddpm_interpolate(f->model, f->a, f->b, p, out, &err));
  g_assert_no_error(err);
  return out;
}

static double max_abs_diff(const float *x, const float *y, size_t n) {
  double d = 0;
  for (size_t i = 0; i < n; i++) d = MAX(d, fabs((double)x[i] - y[i]));
  return d;
}

/* (a) and (b), with DDPM and with stochastic DDIM. */
static void check_lerp(ddpm_sampler sampler, float eta) {
  fixture f;
  if (!fixture_open(&f)) return;
  ddpm_interpolate_params p = params(5, false);
  p.sampler = sampler;
  p.eta = eta;
  float *fr = interpolate(&f, &p);
  float *sa = sdedit(&f, f.a, sampler, eta), *sb = sdedit(&f, f.b, sampler, eta);
  g_assert_true(memcmp(fr, sa, f.n * sizeof(float)) == 0);
  g_assert_true(memcmp(fr + 4 * f.n, sb, f.n * sizeof(float)) == 0);
  /* Frame 1 (lambda 1/4): SDEdit of 3/4 a + 1/4 b with the same noise. */
  float *mixed = g_new(float, f.n);
  for (size_t i = 0; i < f.n; i++) mixed[i] = 0.75f * f.a[i] + 0.25f * f.b[i];
  float *sm = sdedit(&f, mixed, sampler, eta);
  double e = rel_max_err(fr + f.n, sm, f.n);
  double apart = max_abs_diff(fr + f.n, sa, f.n);
  g_printerr("%s eta %.1f: ends bit-identical to SDEdit of a and b; frame 1/4 vs "
             "SDEdit of the mix: max rel err %.3g (frame 1/4 vs frame 0: %.3g)\n",
             sampler == DDPM_SAMPLER_DDIM ? "DDIM" : "DDPM", eta, e, apart);
  g_assert_cmpfloat(e, <=, 1e-4);
  g_assert_cmpfloat(apart, >, 1e-2); /* the check above can tell frames apart */
  g_free(fr); g_free(sa); g_free(sb); g_free(mixed); g_free(sm);
  fixture_close(&f);
}

static void test_lerp_ddpm(void) { check_lerp(DDPM_SAMPLER_DDPM, 0.0f); }
static void test_lerp_ddim(void) { check_lerp(DDPM_SAMPLER_DDIM, 0.5f); }

static double norm(const float *x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return sqrt(s);
}

/* (c) slerp: ends as with lerp, middle different, norm kept. */
static void test_slerp(void) {
  fixture f;
  if (!fixture_open(&f)) return;
  ddpm_interpolate_params p = params(3, true);
  float *fs = interpolate(&f, &p);
  p.spherical = false;
  float *fl = interpolate(&f, &p);
  float *sa = sdedit(&f, f.a, DDPM_SAMPLER_DDPM, 0), *sb = sdedit(&f, f.b, DDPM_SAMPLER_DDPM, 0);
  g_assert_true(memcmp(fs, sa, f.n * sizeof(float)) == 0);
  g_assert_true(memcmp(fs + 2 * f.n, sb, f.n * sizeof(float)) == 0);
  double d = max_abs_diff(fs + f.n, fl + f.n, f.n);
  g_assert_cmpfloat(d, >, 1e-3);

  /* The mixing itself: on the noised pair (one eps, so strongly correlated)
   * and on two independent noises (where lerp loses ~1/sqrt(2) of the norm). */
  const ddpm_schedule *s = ddpm_model_schedule(f.model);
  float *eps = g_new(float, f.n), *eps2 = g_new(float, f.n);
  float *xa = g_new(float, f.n), *xb = g_new(float, f.n);
  float *ms = g_new(float, f.n), *ml = g_new(float, f.n);
  for (size_t i = 0; i < f.n; i++) {
    eps[i] = ddpm_noise(SEED, 0, i);
    eps2[i] = 1.5f * ddpm_noise(SEED + 1, 0, i);
  }
  ddpm_schedule_add_noise(s, T_START, f.a, eps, f.n, xa);
  ddpm_schedule_add_noise(s, T_START, f.b, eps, f.n, xb);
  const float *pairs[2][2] = {{xa, xb}, {eps, eps2}};
  const char *names[2] = {"noised pair", "independent noises"};
  for (int k = 0; k < 2; k++) {
    const float *u = pairs[k][0], *v = pairs[k][1];
    double nu = norm(u, f.n), nv = norm(v, f.n);
    for (int j = 1; j <= 3; j++) {
      double lam = j / 4.0, want = (1 - lam) * nu + lam * nv;
      interp_mix(u, v, f.n, lam, true, ms);
      interp_mix(u, v, f.n, lam, false, ml);
      double ns = norm(ms, f.n), nl = norm(ml, f.n);
      if (j == 2)
        g_printerr("slerp, %s: |u| %.3f |v| %.3f, at 1/2 |slerp| %.4f (want %.4f), "
                   "|lerp| %.4f\n", names[k], nu, nv, ns, want, nl);
      g_assert_cmpfloat(fabs(ns - want) / want, <, 1e-5);
      g_assert_cmpfloat(nl, <=, ns * (1 + 1e-6));
      if (k == 1 && j == 2) g_assert_cmpfloat(nl, <, 0.8 * ns);
    }
  }
  interp_mix(xa, xb, f.n, 0.0, true, ms);
  g_assert_true(memcmp(ms, xa, f.n * sizeof(float)) == 0);
  g_free(eps); g_free(eps2); g_free(xa); g_free(xb); g_free(ms); g_free(ml);
  g_free(fs); g_free(fl); g_free(sa); g_free(sb);
  fixture_close(&f);
}

/* (d) one reverse noise for all frames: a frame made alone (chunk 1) is the
 * frame made in a batch, and interpolating an image with itself gives the
 * same frame throughout (only lambda may change a frame). */
static void test_shared_noise(void) {
  fixture f;
  if (!fixture_open(&f)) return;
  ddpm_interpolate_params p = params(4, false);
  p.chunk = 4;
  float *batched = interpolate(&f, &p);
  p.chunk = 1;
  float *alone = interpolate(&f, &p);
  g_assert_true(memcmp(batched, alone, 4 * f.n * sizeof(float)) == 0);
  p.chunk = 3; /* uneven chunks: 3 + 1 */
  float *uneven = interpolate(&f, &p);
  g_assert_true(memcmp(batched, uneven, 4 * f.n * sizeof(float)) == 0);

  float *out = g_new(float, 4 * f.n);
  GError *err = NULL;
  p.chunk = 0;
  g_assert_true(ddpm_interpolate(f.model, f.a, f.a, &p, out, &err));
  /* (1 - lambda) x + lambda x rounds, so equal up to float rounding. */
  double self = 0;
  for (int j = 1; j < 4; j++) self = MAX(self, max_abs_diff(out, out + j * f.n, f.n));
  /* Without shared noise the same batch would differ item to item. */
  ddpm_sample_params sp = ddpm_sample_default_params();
  sp.steps = STEPS;
  sp.seed = SEED;
  sp.batch = 2;
  float *two = g_new(float, 2 * f.n), *init2 = g_new(float, 2 * f.n);
  memcpy(init2, f.a, f.n * sizeof(float));
  memcpy(init2 + f.n, f.a, f.n * sizeof(float));
  sp.init = init2;
  sp.t0 = T_START;
  g_assert_true(ddpm_sample(f.model, &sp, two, &err));
  double own = max_abs_diff(two, two + f.n, f.n);
  sp.shared_noise = true;
  g_assert_true(ddpm_sample(f.model, &sp, two, &err));
  double shared = max_abs_diff(two, two + f.n, f.n);
  g_printerr("a with itself: frames differ by %.3g; the same image twice in a "
             "batch: max diff %.3g with seed + b, %.3g shared\n", self, own, shared);
  g_assert_cmpfloat(self, <, 1e-4);
  g_assert_cmpfloat(own, >, 1e-2);
  g_assert_cmpfloat(shared, ==, 0);
  g_free(batched); g_free(alone); g_free(uneven); g_free(out);
  g_free(two); g_free(init2);
  fixture_close(&f);
}

static void expect_error(fixture *f, const ddpm_interpolate_params *p,
                         const float *b, int code, const char *needle) {
  float *out = g_new(float, f->n * CLAMP(p->frames, 1, 300));
  GError *err = NULL;
  g_assert_false(ddpm_interpolate(f->model, f->a, b, p, out, &err));
  g_assert_error(err, DDPM_ERROR, code);
  if (!strstr(err->message, needle))
    g_error("'%s' does not mention '%s'", err->message, needle);
  g_printerr("  refused: %s\n", err->message);
  g_error_free(err);
  g_free(out);
}

/* (e) */
static void test_errors(void) {
  fixture f;
  if (!fixture_open(&f)) return;
  ddpm_interpolate_params p = params(1, false);
  expect_error(&f, &p, f.b, DDPM_ERROR_INVALID_ARG, "frames = 1");
  p.frames = DDPM_INTERPOLATE_MAX_FRAMES + 1;
  expect_error(&f, &p, f.b, DDPM_ERROR_INVALID_ARG, "frames = 257");
  p = params(3, false);
  p.t = -1;
  expect_error(&f, &p, f.b, DDPM_ERROR_INVALID_ARG, "t = -1");
  p.t = 1000;
  expect_error(&f, &p, f.b, DDPM_ERROR_INVALID_ARG, "t = 1000 out of range 0..999");
  p = params(3, false);
  p.channels = 1;
  expect_error(&f, &p, f.b, DDPM_ERROR_INVALID_ARG, "channels = 1");
  p = params(3, false);
  p.height = 15;
  expect_error(&f, &p, f.b, DDPM_ERROR_INVALID_ARG, "15");
  p = params(3, false);
  p.steps = 0;
  expect_error(&f, &p, f.b, DDPM_ERROR_INVALID_ARG, "steps = 0");
  p.steps = 1; /* the edge of the range is accepted: t = 0, one step */
  p.t = 0;
  float *ok = g_new(float, 3 * f.n);
  GError *err = NULL;
  g_assert_true(ddpm_interpolate(f.model, f.a, f.b, &p, ok, &err));
  g_free(ok);
  p = params(3, false);
  float *bad = g_memdup2(f.b, f.n * sizeof(float));
  bad[17] = NAN;
  expect_error(&f, &p, bad, DDPM_ERROR_NUMERIC, "image b holds NaN or Inf (value 17)");
  g_free(bad);
  fixture_close(&f);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  ctx = test_context();
  g_test_add_func("/interpolate/lerp_ddpm", test_lerp_ddpm);
  g_test_add_func("/interpolate/lerp_ddim", test_lerp_ddim);
  g_test_add_func("/interpolate/slerp", test_slerp);
  g_test_add_func("/interpolate/shared_noise", test_shared_noise);
  g_test_add_func("/interpolate/errors", test_errors);
  int rc = g_test_run();
  return test_context_finish(ctx, rc);
}
