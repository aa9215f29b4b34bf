/* Hostile and extreme parameters on the tiny golden model: each is either
 * run sensibly (steps 1, strength 1, eta 0 and 1, a one-pixel or empty
 * mask, odd but allowed sizes) or refused with an error of the right code
 * whose message names the parameter; the context stays usable after every
 * refusal, and nothing is read or written out of bounds (ASan). */
#include <string.h>

#include <glib/gstdio.h>

#include "golden.h"

enum { S = 16, C = 3, HW = S * S, ITEM = C * HW, T = 1000 };

static ddpm_context *ctx;
static ddpm_model *model;

static bool open_model(void) {
  if (model) return true;
  char *dir = golden_path("tiny");
  if (!dir) return false;
  GError *err = NULL;
  model = ddpm_model_load(ctx, dir, &err);
  g_assert_no_error(err);
  g_free(dir);
  return true;
}

/* ddpm_sample must fail with `code` and a message containing `names`. */
static void refused(const ddpm_sample_params *p, int code, const char *names) {
  GError *err = NULL;
  size_t n = (size_t)MAX(p->batch, 1) * ITEM;
  float *out = g_new0(float, MIN(n, (size_t)64 * ITEM));
  g_assert_false(ddpm_sample(model, p, out, &err));
  if (!g_error_matches(err, DDPM_ERROR, code) || !strstr(err->message, names))
    g_error("expected an error naming '%s', got: %s", names,
            err ? err->message : "(none)");
  if (g_test_verbose()) g_printerr("refused: %s\n", err->message);
  g_error_free(err);
  g_free(out);
}

/* A short DDIM run, to show the context still works; returns out[0]. */
static void still_works(void) {
  ddpm_sample_params p = ddpm_sample_default_params();
  p.sampler = DDPM_SAMPLER_DDIM;
  p.steps = 2;
  float *out = g_new(float, ITEM);
  GError *err = NULL;
  g_assert_true(ddpm_sample(model, &p, out, &err));
  g_assert_no_error(err);
  g_free(out);
}

static bool all_finite(const float *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i])) return false;
  return true;
}

/* A smooth test image in [-1, 1]. */
static float *test_image(int batch) {
  float *im = g_new(float, (size_t)batch * ITEM);
  for (size_t i = 0; i < (size_t)batch * ITEM; i++)
    im[i] = 0.8f * sinf(0.37f * (float)(i % HW) + (float)(i / HW));
  return im;
}

static void test_steps(void) {
  if (!open_model()) return;
  GError *err = NULL;
  float *out = g_new(float, ITEM);
  for (int s = 0; s < 2; s++) { /* one step: the t = 0 step from noise */
    ddpm_sample_params p = ddpm_sample_default_params();
    p.sampler = s ? DDPM_SAMPLER_DDIM : DDPM_SAMPLER_DDPM;
    p.steps = 1;
    g_assert_cmpint(ddpm_sample_steps_run(model, &p, &err), ==, 1);
    g_assert_true(ddpm_sample(model, &p, out, &err));
    g_assert_no_error(err);
    g_assert_true(all_finite(out, ITEM));
  }
  ddpm_sample_params p = ddpm_sample_default_params();
  p.steps = T; /* the whole grid is allowed (not run here: slow) */
  g_assert_cmpint(ddpm_sample_steps_run(model, &p, &err), ==, T);
  g_assert_no_error(err);
  const int bad[] = {T + 1, 10000, 0, -1, G_MININT, G_MAXINT};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    p.steps = bad[i];
    refused(&p, DDPM_ERROR_INVALID_ARG, "steps");
    refused(&p, DDPM_ERROR_INVALID_ARG, "1000");
    g_assert_cmpint(ddpm_sample_steps_run(model, &p, &err), ==, -1);
    g_assert_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG);
    g_clear_error(&err);
    int ts[4]; /* refused before anything is written */
    g_assert_false(ddpm_sample_timesteps(model, bad[i], ts, &err));
    g_assert_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG);
    g_clear_error(&err);
    g_assert_cmpint(ddpm_denoise_start_timestep(model, bad[i], 0.1f), ==, -1);
  }
  still_works();
  g_free(out);
}

static void test_strength(void) {
  if (!open_model()) return;
  GError *err = NULL;
  float *init = test_image(1), *out = g_new(float, ITEM);
  ddpm_sample_params p = ddpm_sample_default_params();
  p.steps = 4;
  p.init = init;
  /* 0 (also what an unset strength reads) would leave the image as it is:
   * refused, saying so. */
  p.strength = 0;
  refused(&p, DDPM_ERROR_INVALID_ARG, "strength");
  refused(&p, DDPM_ERROR_INVALID_ARG, "as it is");
  const float bad[] = {-0.1f, 1.5f, NAN, INFINITY};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    p.strength = bad[i];
    refused(&p, DDPM_ERROR_INVALID_ARG, "strength");
  }
  /* 1: all of the grid, from the image noised to its first timestep. */
  p.strength = 1;
  g_assert_cmpint(ddpm_sample_steps_run(model, &p, &err), ==, 4);
  g_assert_true(ddpm_sample(model, &p, out, &err));
  g_assert_no_error(err);
  g_assert_true(all_finite(out, ITEM));
  /* t0 = 0: the last step only; t0 >= T refused. */
  p.t0 = 0;
  g_assert_cmpint(ddpm_sample_steps_run(model, &p, &err), ==, 1);
  g_assert_true(ddpm_sample(model, &p, out, &err));
  g_assert_no_error(err);
  p.t0 = T;
  refused(&p, DDPM_ERROR_INVALID_ARG, "t0");
  still_works();
  g_free(init);
  g_free(out);
}

static void test_eta(void) {
  if (!open_model()) return;
  GError *err = NULL;
  float *a = g_new(float, ITEM), *b = g_new(float, ITEM);
  ddpm_sample_params p = ddpm_sample_default_params();
  p.sampler = DDPM_SAMPLER_DDIM;
  p.steps = 3;
  const float ok[] = {0, 1};
  for (size_t i = 0; i < 2; i++) {
    p.eta = ok[i];
    g_assert_true(ddpm_sample(model, &p, a, &err));
    g_assert_no_error(err);
    g_assert_true(all_finite(a, ITEM));
  }
  const float bad[] = {-0.1f, 1.5f, NAN, -INFINITY};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    p.eta = bad[i];
    refused(&p, DDPM_ERROR_INVALID_ARG, "eta");
  }
  /* DDPM has no eta: ignored, the same sample. */
  p.sampler = DDPM_SAMPLER_DDPM;
  p.eta = 0;
  g_assert_true(ddpm_sample(model, &p, a, &err));
  p.eta = 1.5f;
  g_assert_true(ddpm_sample(model, &p, b, &err));
  g_assert_no_error(err);
  g_assert_cmpmem(a, ITEM * sizeof(float), b, ITEM * sizeof(float));
  g_free(a);
  g_free(b);
}

/* Pixels where the mask is 0 are the input's values bit for bit, in every
 * channel and batch item, for SDEdit, RePaint and denoising. */
static void check_kept(const float *out, const float *init, const float *mask,
                       int batch, const char *what) {
  size_t changed = 0;
  for (size_t i = 0; i < (size_t)batch * ITEM; i++) {
    if (mask[i % HW] == 0) {
      if (memcmp(&out[i], &init[i], sizeof(float)) != 0)
        g_error("%s: value %zu (mask 0) is %.9g, the input %.9g", what, i,
                out[i], init[i]);
    } else {
      changed += out[i] != init[i];
    }
  }
  size_t ones = 0;
  for (int i = 0; i < HW; i++) ones += mask[i] != 0;
  /* Where it is 1, the pixel was regenerated. */
  g_assert_cmpuint(changed, ==, ones * C * batch);
}

static void test_mask(void) {
  if (!open_model()) return;
  enum { B = 2 };
  GError *err = NULL;
  float *init = test_image(B), *out = g_new(float, B * ITEM);
  float *mask = g_new0(float, HW);
  ddpm_sample_params p = ddpm_sample_default_params();
  p.steps = 5;
  p.batch = B;
  p.init = init;
  p.mask = mask;
  p.strength = 0.5f;
  struct { const char *what; int resample; float sigma; } modes[] = {
    {"sdedit", 1, 0}, {"repaint", 3, 0}, {"denoise", 1, 0.2f}};
  for (size_t k = 0; k < G_N_ELEMENTS(modes); k++) {
    p.resample = modes[k].resample;
    p.denoise_sigma = modes[k].sigma;
    memset(mask, 0, HW * sizeof(float)); /* empty: the input itself */
    g_assert_true(ddpm_sample(model, &p, out, &err));
    g_assert_no_error(err);
    g_assert_cmpmem(out, B * ITEM * sizeof(float), init, B * ITEM * sizeof(float));
    mask[7 * S + 5] = 1; /* one pixel */
    g_assert_true(ddpm_sample(model, &p, out, &err));
    g_assert_no_error(err);
    check_kept(out, init, mask, B, modes[k].what);
  }
  p.resample = 1;
  p.denoise_sigma = 0;
  const float bad[] = {1.5f, -0.5f};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    mask[3] = bad[i];
    refused(&p, DDPM_ERROR_INVALID_ARG, "mask");
  }
  still_works();
  g_free(init); g_free(out); g_free(mask);
}

static void test_non_finite_inputs(void) {
  if (!open_model()) return;
  GError *err = NULL;
  float *init = test_image(1), *mask = g_new0(float, HW), *x = test_image(1);
  ddpm_sample_params p = ddpm_sample_default_params();
  p.steps = 3;
  p.init = init;
  p.strength = 0.5f;
  const float specials[] = {NAN, INFINITY, -INFINITY};
  for (size_t i = 0; i < G_N_ELEMENTS(specials); i++) {
    init[ITEM - 1] = specials[i];
    refused(&p, DDPM_ERROR_NUMERIC, "init");
    init[ITEM - 1] = 0;
    p.mask = mask;
    mask[HW / 2] = specials[i];
    refused(&p, DDPM_ERROR_NUMERIC, "mask");
    mask[HW / 2] = 0;
    p.mask = NULL;
    p.start_step = 1;
    p.start_x = x;
    x[17] = specials[i];
    refused(&p, DDPM_ERROR_NUMERIC, "start_x");
    x[17] = 0;
    p.start_step = 0;
    p.start_x = NULL;
  }
  /* The forward and the bound. */
  float *eps = g_new(float, ITEM);
  int64_t t = 500;
  x[9] = NAN;
  g_assert_false(ddpm_model_forward(model, x, &t, 1, S, S, eps, &err));
  g_assert_error(err, DDPM_ERROR, DDPM_ERROR_NUMERIC);
  g_clear_error(&err);
  ddpm_nll_params np = ddpm_nll_default_params();
  np.timesteps = 3;
  ddpm_nll_result r;
  g_assert_false(ddpm_nll(model, x, 1, S, S, &np, &r, NULL, NULL, &err));
  g_assert_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG);
  g_assert_nonnull(strstr(err->message, "image value 9"));
  g_clear_error(&err);
  still_works();
  g_free(init); g_free(mask); g_free(x); g_free(eps);
}

/* A copy of the tiny model with a NaN in conv_out.bias (or, with
 * `offset`, its scheduler's steps_offset): a new folder (removed by
 * remove_copy). */
static char *model_copy(bool nan_weight, int steps_offset) {
  char *src = golden_path("tiny");
  char *dir = g_dir_make_tmp("ddpm-extremes-XXXXXX", NULL);
  const char *files[] = {"config.json", "scheduler_config.json",
                         "diffusion_pytorch_model.safetensors"};
  GError *err = NULL;
  for (int i = 0; i < 3; i++) {
    char *a = g_build_filename(src, files[i], NULL);
    char *b = g_build_filename(dir, files[i], NULL);
    char *data = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(a, &data, &len, NULL));
    if (i == 1 && steps_offset) {
      char *at = strstr(data, "\"steps_offset\": 0");
      g_assert_nonnull(at);
      at[strlen("\"steps_offset\": ")] = (char)('0' + steps_offset);
    }
    if (i == 2 && nan_weight) {
      st_file *sf = st_open(a, &err);
      g_assert_no_error(err);
      const st_tensor *t = st_find(sf, "conv_out.bias");
      g_assert_nonnull(t);
      uint64_t hlen;
      memcpy(&hlen, data, 8);
      float nan = NAN;
      memcpy(data + 8 + hlen + t->offset, &nan, 4);
      st_close(sf);
    }
    g_assert_true(g_file_set_contents(b, data, (gssize)len, NULL));
    g_free(data); g_free(a); g_free(b);
  }
  g_free(src);
  return dir;
}

static void remove_copy(char *dir) {
  const char *files[] = {"config.json", "scheduler_config.json",
                         "diffusion_pytorch_model.safetensors"};
  for (int i = 0; i < 3; i++) {
    char *b = g_build_filename(dir, files[i], NULL);
    g_remove(b);
    g_free(b);
  }
  g_rmdir(dir);
  g_free(dir);
}

static void test_nan_weights(void) {
  if (!open_model()) return;
  char *dir = model_copy(true, 0);
  GError *err = NULL;
  ddpm_model *m = ddpm_model_load(ctx, dir, &err);
  g_assert_no_error(err);
  float *x = test_image(1), *out = g_new(float, ITEM);
  int64_t t = 10;
  g_assert_false(ddpm_model_forward(m, x, &t, 1, S, S, out, &err));
  g_assert_error(err, DDPM_ERROR, DDPM_ERROR_NUMERIC);
  g_clear_error(&err);
  ddpm_sample_params p = ddpm_sample_default_params();
  p.steps = 2;
  for (int s = 0; s < 2; s++) {
    p.sampler = s ? DDPM_SAMPLER_DDIM : DDPM_SAMPLER_DDPM;
    g_assert_false(ddpm_sample(m, &p, out, &err));
    g_assert_error(err, DDPM_ERROR, DDPM_ERROR_NUMERIC);
    g_clear_error(&err);
  }
  ddpm_nll_params np = ddpm_nll_default_params();
  np.timesteps = 3;
  ddpm_nll_result r;
  g_assert_false(ddpm_nll(m, x, 1, S, S, &np, &r, NULL, NULL, &err));
  g_assert_error(err, DDPM_ERROR, DDPM_ERROR_NUMERIC);
  g_clear_error(&err);
  ddpm_model_free(m);
  remove_copy(dir);
  g_free(x); g_free(out);
}

static void test_batch(void) {
  if (!open_model()) return;
  GError *err = NULL;
  float *x = test_image(1), *eps = g_new(float, ITEM);
  int64_t t = 3;
  ddpm_nll_params np = ddpm_nll_default_params();
  ddpm_nll_result r;
  const int bad[] = {0, -1, 4097, G_MAXINT, G_MININT};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    ddpm_sample_params p = ddpm_sample_default_params();
    p.steps = 2;
    p.batch = bad[i];
    refused(&p, DDPM_ERROR_INVALID_ARG, "batch");
    g_assert_false(ddpm_model_forward(model, x, &t, bad[i], S, S, eps, &err));
    g_assert_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG);
    g_assert_nonnull(strstr(err->message, "batch"));
    g_clear_error(&err);
    g_assert_false(ddpm_nll(model, x, bad[i], S, S, &np, &r, NULL, NULL, &err));
    g_assert_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG);
    g_assert_nonnull(strstr(err->message, "batch"));
    g_clear_error(&err);
  }
  still_works();
  g_free(x); g_free(eps);
}

/* Sizes must be multiples of 2^(levels-1) = 2 for tiny: odd ones, zero
 * (for the forward) and negative ones are refused before any buffer is
 * read (the inputs here are 16x16: a count made from a negative size would
 * run off them); 16x8 and 18x24 are fine. */
static void test_sizes(void) {
  if (!open_model()) return;
  GError *err = NULL;
  float *init = test_image(1), *eps = g_new(float, ITEM), *mask = g_new0(float, HW);
  int64_t t = 3;
  const int bad[][2] = {{15, 16}, {16, 17}, {1, 1}, {-16, 16}, {16, -16},
                        {-16, -16}, {16, 16385}, {G_MININT, 2}};
  ddpm_nll_params np = ddpm_nll_default_params();
  ddpm_nll_result r;
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    ddpm_sample_params p = ddpm_sample_default_params();
    p.steps = 2;
    p.height = bad[i][0];
    p.width = bad[i][1];
    refused(&p, DDPM_ERROR_INVALID_ARG, "multiples of 2");
    p.init = init;
    p.mask = mask;
    p.strength = 0.5f;
    refused(&p, DDPM_ERROR_INVALID_ARG, "image size");
    g_assert_cmpint(ddpm_sample_steps_run(model, &p, &err), ==, -1);
    g_assert_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG);
    g_clear_error(&err);
    g_assert_false(ddpm_model_forward(model, init, &t, 1, bad[i][0], bad[i][1], eps, &err));
    g_assert_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG);
    g_clear_error(&err);
    g_assert_false(ddpm_nll(model, init, 1, bad[i][0], bad[i][1], &np, &r, NULL, NULL, &err));
    g_assert_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG);
    g_assert_nonnull(strstr(err->message, "image size"));
    g_clear_error(&err);
  }
  const int good[][2] = {{16, 8}, {18, 24}};
  for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
    ddpm_sample_params p = ddpm_sample_default_params();
    p.sampler = DDPM_SAMPLER_DDIM;
    p.steps = 2;
    p.height = good[i][0];
    p.width = good[i][1];
    float *out = g_new(float, (size_t)C * p.height * p.width);
    g_assert_true(ddpm_sample(model, &p, out, &err));
    g_assert_no_error(err);
    g_assert_true(all_finite(out, (size_t)C * p.height * p.width));
    g_free(out);
  }
  g_free(init); g_free(eps); g_free(mask);
}

/* steps_offset 1 with "leading" spacing puts the first timestep of a
 * 1000-step grid at 1000, one past the schedule's tables. */
static void test_steps_offset(void) {
  if (!open_model()) return;
  char *dir = model_copy(false, 1);
  GError *err = NULL;
  ddpm_model *m = ddpm_model_load(ctx, dir, &err);
  g_assert_no_error(err);
  int *ts = g_new(int, T);
  g_assert_true(ddpm_sample_timesteps(m, T, ts, &err));
  g_printerr("steps_offset 1, 1000 steps: the grid starts at t = %d\n", ts[0]);
  int t = ddpm_denoise_start_timestep(m, T, 0.05f);
  g_assert_cmpint(t, >=, 0);
  g_assert_cmpint(t, <, T);
  t = ddpm_denoise_start_timestep(m, T, 1e6f); /* noisier than anything */
  g_assert_cmpint(t, ==, ts[0]);
  /* Denoising from there: one step of it. */
  float *y = test_image(1), *out = g_new(float, ITEM);
  ddpm_sample_params p = ddpm_sample_default_params();
  p.steps = T;
  p.init = y;
  p.denoise_sigma = 1e6f;
  p.stop_step = 1;
  g_assert_true(ddpm_sample(m, &p, out, &err));
  g_assert_no_error(err);
  g_assert_true(all_finite(out, ITEM));
  g_free(y); g_free(out);
  g_free(ts);
  ddpm_model_free(m);
  remove_copy(dir);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  ctx = test_context();
  g_test_add_func("/extremes/steps", test_steps);
  g_test_add_func("/extremes/strength", test_strength);
  g_test_add_func("/extremes/eta", test_eta);
  g_test_add_func("/extremes/mask", test_mask);
  g_test_add_func("/extremes/non-finite-inputs", test_non_finite_inputs);
  g_test_add_func("/extremes/nan-weights", test_nan_weights);
  g_test_add_func("/extremes/batch", test_batch);
  g_test_add_func("/extremes/sizes", test_sizes);
  g_test_add_func("/extremes/steps-offset", test_steps_offset);
  int rc = g_test_run();
  ddpm_model_free(model);
  return test_context_finish(ctx, rc);
}
