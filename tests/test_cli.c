/* The ddpm command line end to end: golden reproduction through --noise and
 * --trajectory, PNG in/out with a mask (pixels outside bit-identical, alpha
 * kept), noise estimation, and bad input (one clear line, exit 1). */
#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "golden.h"
#include "png_io.h"

static char *tmpdir;

/* Runs ddpm with args; returns the exit status (-1 if killed by a signal). */
static int run_cli(char **out, char **errout, const char *first, ...) {
  GPtrArray *argv = g_ptr_array_new();
  g_ptr_array_add(argv, (char *)g_getenv("DDPM_CLI"));
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a; a = va_arg(ap, const char *))
    g_ptr_array_add(argv, (char *)a);
  va_end(ap);
  g_ptr_array_add(argv, NULL);
  /* Under ASan the Vulkan loader unloads the driver before LeakSanitizer
   * runs, so the driver's own leaks show as "<unknown module>" frames that no
   * suppression can match (in-process tests pin the driver: golden.h).  The
   * library's leaks are checked by those tests; here only the CLI's exit. */
  char **envp = g_get_environ();
  const char *asan = g_environ_getenv(envp, "ASAN_OPTIONS");
  if (asan) {
    char *opts = g_strconcat(asan, ":detect_leaks=0", NULL);
    envp = g_environ_setenv(envp, "ASAN_OPTIONS", opts, TRUE);
    g_free(opts);
  }
  int status = 0;
  GError *err = NULL;
  g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, envp, G_SPAWN_DEFAULT,
                             NULL, NULL, out, errout, &status, &err));
  g_strfreev(envp);
  g_ptr_array_free(argv, TRUE);
  if (!WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

static char *tmp(const char *name) { return g_build_filename(tmpdir, name, NULL); }

/* sdedit replaying the golden noise; with --fp16-weights (first in argv)
 * the result is looser but must differ from the float32 one. */
static void golden_sdedit(gconstpointer fp16) {
  char *dir = golden_path("tiny");
  if (!dir) return;
  char *noise = g_build_filename(dir, "golden.safetensors", NULL);
  char *traj = tmp("traj.safetensors"), *traj32 = tmp("traj32.safetensors");
  char *out = NULL, *err = NULL;
  int rc = fp16 ? run_cli(&out, &err, "--fp16-weights", "sdedit", dir, "--noise", noise,
                          "--steps", "25", "--t0", "400", "--trajectory", traj, NULL)
                 : run_cli(&out, &err, "sdedit", dir, "--noise", noise, "--steps", "25",
                           "--t0", "400", "--trajectory", traj32, NULL);
  if (rc) g_printerr("%s", err);
  g_assert_cmpint(rc, ==, 0);
  GError *e = NULL;
  st_file *got = st_open(fp16 ? traj : traj32, &e), *want = st_open(noise, &e);
  g_assert_no_error(e);
  uint64_t n, m;
  float *gt = golden_f32(got, "traj", &n), *wt = golden_f32(want, "sdedit.traj", &m);
  g_assert_cmpuint(n, ==, m);
  double et = rel_max_err(gt, wt, n);
  float *gx = golden_f32(got, "x0", &n), *wx = golden_f32(want, "sdedit.out", &m);
  double ex = rel_max_err(gx, wx, n);
  g_printerr("CLI sdedit%s vs golden: trajectory %.3g, final %.3g\n",
             fp16 ? " --fp16-weights" : "", et, ex);
  double tol = fp16 ? 2e-2 : 1e-3;
  g_assert_cmpfloat(et, <=, tol);
  g_assert_cmpfloat(ex, <=, tol);
  if (fp16) { /* after the float32 run */
    st_file *f32 = st_open(traj32, &e);
    g_assert_no_error(e);
    float *g32 = golden_f32(f32, "x0", &m);
    g_assert_cmpfloat(rel_max_err(gx, g32, n), >, 0);
    g_free(g32);
    st_close(f32);
  }
  g_free(gt); g_free(wt); g_free(gx); g_free(wx);
  st_close(got); st_close(want);
  g_free(out); g_free(err); g_free(traj); g_free(traj32); g_free(noise); g_free(dir);
}

/* A 16-bit RGBA picture of another size than the model's, half masked. */
static void test_png_mask(void) {
  char *dir = golden_path("tiny");
  if (!dir) return;
  const int w = 20, h = 12;
  png_image_f in = {.c = 3, .h = h, .w = w, .bit_depth = 16};
  in.data = g_new(float, 3 * w * h);
  in.alpha = g_new(float, w * h);
  png_image_f mask = {.c = 1, .h = h, .w = w, .bit_depth = 8};
  mask.data = g_new(float, w * h);
  for (int i = 0; i < w * h; i++) {
    for (int k = 0; k < 3; k++) in.data[k * w * h + i] = (float)((i * 7 + k * 13) % 50) / 25 - 1;
    in.alpha[i] = (float)(i % 9) / 8;
    mask.data[i] = (i % w) < w / 2 ? -1.0f : 1.0f; /* right half regenerates */
  }
  char *in_path = tmp("in.png"), *mask_path = tmp("mask.png"), *out_path = tmp("out.png");
  GError *e = NULL;
  g_assert_true(png_write_float(in_path, &in, &e));
  g_assert_true(png_write_float(mask_path, &mask, &e));
  png_image_f before;
  g_assert_true(png_read_float(in_path, &before, &e));
  char *out = NULL, *err = NULL;
  int rc = run_cli(&out, &err, "sdedit", dir, in_path, "--mask", mask_path,
                   "--strength", "0.6", "--steps", "10", "--seed", "5", "-o",
                   out_path, NULL);
  if (rc) g_printerr("%s", err);
  g_assert_cmpint(rc, ==, 0);
  png_image_f after;
  g_assert_true(png_read_float(out_path, &after, &e));
  g_assert_cmpint(after.w, ==, w);
  g_assert_cmpint(after.h, ==, h);
  g_assert_cmpint(after.bit_depth, ==, 16);
  g_assert_nonnull(after.alpha);
  g_assert_cmpmem(after.alpha, w * h * 4, before.alpha, w * h * 4);
  int changed = 0;
  for (int i = 0; i < w * h; i++)
    for (int k = 0; k < 3; k++) {
      float a = after.data[k * w * h + i], b = before.data[k * w * h + i];
      if ((i % w) < w / 2) g_assert_cmpfloat(a, ==, b); /* kept exactly */
      else changed += a != b;
    }
  g_assert_cmpint(changed, >, w * h); /* most regenerated values differ */
  png_image_clear(&in); png_image_clear(&mask);
  png_image_clear(&before); png_image_clear(&after);
  g_free(out); g_free(err);
  g_free(in_path); g_free(mask_path); g_free(out_path); g_free(dir);
}

/* Denoise estimates the noise of a flat grey picture with known noise. */
static void test_denoise_estimate(void) {
  char *dir = golden_path("tiny");
  if (!dir) return;
  const int w = 64, h = 64;
  png_image_f in = {.c = 3, .h = h, .w = w, .bit_depth = 16};
  in.data = g_new(float, 3 * w * h);
  const double sigma8 = 20.0; /* 8-bit units */
  for (int i = 0; i < 3 * w * h; i++)
    in.data[i] = (float)(ddpm_noise(77, 0, i) * sigma8 / 127.5);
  char *in_path = tmp("noisy.png"), *out_path = tmp("clean.png");
  GError *e = NULL;
  g_assert_true(png_write_float(in_path, &in, &e));
  char *out = NULL, *err = NULL;
  int rc = run_cli(&out, &err, "denoise", dir, in_path, "--steps", "20", "-o",
                   out_path, NULL);
  if (rc) g_printerr("%s", err);
  g_assert_cmpint(rc, ==, 0);
  const char *at = strstr(out, "estimated noise sigma: ");
  g_assert_nonnull(at);
  double est = g_ascii_strtod(at + strlen("estimated noise sigma: "), NULL);
  g_printerr("denoise: true sigma %.1f, estimated %.2f\n", sigma8, est);
  g_assert_cmpfloat(fabs(est - sigma8), <, 0.1 * sigma8);
  png_image_clear(&in);
  g_free(out); g_free(err); g_free(in_path); g_free(out_path); g_free(dir);
}

static void expect_fail(const char *needle, const char *a1, ...) {
  char *argv[16];
  int n = 0;
  va_list ap;
  va_start(ap, a1);
  for (const char *a = a1; a && n < 15; a = va_arg(ap, const char *)) argv[n++] = (char *)a;
  va_end(ap);
  argv[n] = NULL;
  char *out = NULL, *err = NULL;
  int rc = run_cli(&out, &err, argv[0], argv[1], argv[2], argv[3], argv[4],
                   argv[5], argv[6], argv[7], argv[8], argv[9], NULL);
  if (g_test_verbose()) g_printerr("  -> %s", err);
  g_assert_cmpint(rc, ==, 1);
  g_assert_true(g_str_has_prefix(err, "ddpm: "));
  g_assert_cmpint(strchr(err, '\n') - err, ==, (int)strlen(err) - 1); /* one line */
  if (!strstr(err, needle)) g_error("'%s' not in: %s", needle, err);
  g_free(out);
  g_free(err);
}

static void test_bad_input(void) {
  char *dir = golden_path("tiny");
  if (!dir) return;
  char *junk = tmp("junk.png"), *in = tmp("in.png"), *small = tmp("small.png");
  char *o = tmp("x.png");
  g_assert_true(g_file_set_contents(junk, "\x89PNG\r\n\x1a\nnot really", -1, NULL));
  png_image_f im = {.c = 1, .h = 8, .w = 8, .bit_depth = 8};
  im.data = g_new0(float, 64);
  GError *e = NULL;
  g_assert_true(png_write_float(in, &im, &e));
  im.w = 4;
  g_assert_true(png_write_float(small, &im, &e));
  png_image_clear(&im);
  expect_fail("junk.png", "sdedit", dir, junk, "-o", o, NULL);
  expect_fail("mask is 4x8", "sdedit", dir, in, "--mask", small, "-o", o, NULL);
  expect_fail("strength = 1.5", "sdedit", dir, in, "--strength", "1.5", "-o", o, NULL);
  expect_fail("steps = 0", "generate", dir, "--steps", "0", "-o", o, NULL);
  expect_fail("/nonexistent", "generate", "/nonexistent", "-o", o, NULL);
  expect_fail("-o OUT.png", "generate", dir, NULL);
  expect_fail("ddpm or ddim", "generate", dir, "--sampler", "euler", "-o", o, NULL);
  expect_fail("not a PNG", "denoise", dir, dir, "-o", o, NULL);
  g_free(junk); g_free(in); g_free(small); g_free(o); g_free(dir);
}


/* generate --stop-at/--save-state, then --resume: bit-identical to the
 * uninterrupted run with the same seed, different with another. */
static void test_resume(void) {
  char *dir = golden_path("tiny");
  if (!dir) return;
  char *full = tmp("full.png"), *res = tmp("resumed.png"), *branch = tmp("branch.png");
  char *s10 = tmp("s10.safetensors"), *s15a = tmp("s15a.safetensors"),
       *s15b = tmp("s15b.safetensors");
  char *out = NULL, *err = NULL;
#define RUN(...) do { int rc_ = run_cli(&out, &err, __VA_ARGS__, NULL); \
    if (rc_) g_printerr("%s", err); \
    g_assert_cmpint(rc_, ==, 0); \
    g_clear_pointer(&out, g_free); g_clear_pointer(&err, g_free); } while (0)
  RUN("generate", dir, "-n", "2", "--steps", "20", "--seed", "11", "-o", full);
  /* Uninterrupted to step 15 vs. stopped at 10 and resumed to 15: the saved
   * states (x_t as float32 and all metadata) must be the same bytes. */
  RUN("generate", dir, "-n", "2", "--steps", "20", "--seed", "11",
      "--stop-at", "15", "--save-state", s15a);
  RUN("generate", dir, "-n", "2", "--steps", "20", "--seed", "11",
      "--stop-at", "10", "--save-state", s10);
  RUN("generate", "--resume", s10, "--stop-at", "15", "--save-state", s15b);
  RUN("generate", "--resume", s10, "-o", res);
  RUN("generate", "--resume", s10, "--seed", "12", "-o", branch);
#undef RUN
  gchar *a, *b;
  gsize na, nb;
  g_assert_true(g_file_get_contents(s15a, &a, &na, NULL));
  g_assert_true(g_file_get_contents(s15b, &b, &nb, NULL));
  g_assert_cmpmem(a, na, b, nb);
  g_free(a); g_free(b);
  g_assert_true(g_file_get_contents(full, &a, &na, NULL));
  g_assert_true(g_file_get_contents(res, &b, &nb, NULL));
  g_assert_cmpmem(a, na, b, nb);
  g_free(b);
  g_assert_true(g_file_get_contents(branch, &b, &nb, NULL));
  g_assert_false(na == nb && memcmp(a, b, na) == 0);
  g_free(a); g_free(b);
  g_free(full); g_free(res); g_free(branch); g_free(s10); g_free(s15a);
  g_free(s15b); g_free(dir);
}

/* A masked, harmonized SDEdit run stopped and resumed (the state carries
 * the input and the mask) saves the same state as the uninterrupted run. */
static void test_resume_sdedit(void) {
  char *dir = golden_path("tiny");
  if (!dir) return;
  const int w = 40, h = 24;
  png_image_f in = {.c = 3, .h = h, .w = w, .bit_depth = 8};
  png_image_f mask = {.c = 1, .h = h, .w = w, .bit_depth = 8};
  in.data = g_new(float, 3 * w * h);
  mask.data = g_new(float, w * h);
  for (int i = 0; i < 3 * w * h; i++) in.data[i] = (float)((i * 37 % 255) / 127.5 - 1);
  for (int i = 0; i < w * h; i++) mask.data[i] = (i % w) < w / 2 ? -1.0f : 1.0f;
  char *in_path = tmp("sd-in.png"), *mask_path = tmp("sd-mask.png");
  char *a_path = tmp("sd-a.safetensors"), *mid = tmp("sd-mid.safetensors"),
       *b_path = tmp("sd-b.safetensors");
  GError *e = NULL;
  g_assert_true(png_write_float(in_path, &in, &e));
  g_assert_true(png_write_float(mask_path, &mask, &e));
  char *out = NULL, *err = NULL;
#define RUN(...) do { int rc_ = run_cli(&out, &err, __VA_ARGS__, NULL); \
    if (rc_) g_printerr("%s", err); \
    g_assert_cmpint(rc_, ==, 0); \
    g_clear_pointer(&out, g_free); g_clear_pointer(&err, g_free); } while (0)
  RUN("sdedit", dir, in_path, "--mask", mask_path, "--steps", "20", "--strength",
      "0.7", "--harmonize", "2", "--seed", "5", "--stop-at", "9", "--save-state", a_path);
  RUN("sdedit", dir, in_path, "--mask", mask_path, "--steps", "20", "--strength",
      "0.7", "--harmonize", "2", "--seed", "5", "--stop-at", "4", "--save-state", mid);
  RUN("generate", "--resume", mid, "--stop-at", "9", "--save-state", b_path);
#undef RUN
  gchar *a, *b;
  gsize na, nb;
  g_assert_true(g_file_get_contents(a_path, &a, &na, NULL));
  g_assert_true(g_file_get_contents(b_path, &b, &nb, NULL));
  g_assert_cmpmem(a, na, b, nb);
  g_assert_nonnull(g_strstr_len(a + 8, (gssize)na - 8, "\"resample\":\"2\""));
  g_free(a); g_free(b);
  png_image_clear(&in); png_image_clear(&mask);
  g_free(in_path); g_free(mask_path); g_free(a_path); g_free(mid); g_free(b_path);
  g_free(dir);
}

/* A copy of the state file `src` with metadata field `key` set to `value`
 * (NULL: removed), or with the tensor's dtype/shape header replaced by
 * `tensor_json`, or its first float set to `first`. */
static char *edit_state(const char *src, const char *name, const char *key,
                        const char *value, const char *tensor_json, float first) {
  gchar *data;
  gsize n;
  g_assert_true(g_file_get_contents(src, &data, &n, NULL));
  uint64_t hl = 0;
  for (int i = 0; i < 8; i++) hl |= (uint64_t)(guint8)data[i] << (8 * i);
  JsonParser *p = json_parser_new();
  g_assert_true(json_parser_load_from_data(p, data + 8, (gssize)hl, NULL));
  JsonObject *root = json_node_get_object(json_parser_get_root(p));
  JsonObject *meta = json_object_get_object_member(root, "__metadata__");
  if (key && value) json_object_set_string_member(meta, key, value);
  else if (key) json_object_remove_member(meta, key);
  if (tensor_json) {
    JsonParser *tp = json_parser_new();
    g_assert_true(json_parser_load_from_data(tp, tensor_json, -1, NULL));
    json_object_set_member(root, "x_t", json_node_copy(json_parser_get_root(tp)));
    g_object_unref(tp);
  }
  JsonGenerator *gen = json_generator_new();
  json_generator_set_root(gen, json_parser_get_root(p));
  gsize nh;
  char *h = json_generator_to_data(gen, &nh);
  GByteArray *out = g_byte_array_new();
  guint8 len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (guint8)((uint64_t)nh >> (8 * i));
  g_byte_array_append(out, len8, 8);
  g_byte_array_append(out, (guint8 *)h, (guint)nh);
  size_t body = out->len;
  g_byte_array_append(out, (guint8 *)data + 8 + hl, (guint)(n - 8 - hl));
  if (!isnan(first)) memcpy(out->data + body, &first, 4);
  char *path = tmp(name);
  g_assert_true(g_file_set_contents(path, (char *)out->data, out->len, NULL));
  g_byte_array_unref(out);
  g_free(h);
  g_object_unref(gen);
  g_object_unref(p);
  g_free(data);
  return path;
}

/* Hostile state files: every bad field is named in one line. */
static void test_bad_state(void) {
  char *dir = golden_path("tiny");
  if (!dir) return;
  char *good = tmp("good.safetensors"), *o = tmp("x.png");
  char *out = NULL, *err = NULL;
  int rc = run_cli(&out, &err, "generate", dir, "--steps", "10", "--seed", "3",
                   "--stop-at", "4", "--save-state", good, NULL);
  if (rc) g_printerr("%s", err);
  g_assert_cmpint(rc, ==, 0);
  g_free(out); g_free(err);
  static const struct {
    const char *key, *value, *tensor, *needle;
  } cases[] = {
    {"format", "something-else", NULL, "'format'"},
    {"version", "3", NULL, "'version' = 3"},
    {"version", "x", NULL, "'version'"},
    {"seed", NULL, NULL, "'seed' is missing"},
    {"seed", "-1", NULL, "'seed'"},
    {"step", "10", NULL, "'step'"},
    {"step", "5", NULL, "'t' = 500"},
    {"steps", "0", NULL, "'steps'"},
    {"steps", "20", NULL, "'timesteps'"},
    {"timesteps", "[1,2]", NULL, "'timesteps'"},
    {"sampler", "euler", NULL, "'sampler'"},
    {"eta", "nan", NULL, "'eta'"},
    {"eta", "2", NULL, "'eta'"},
    {"batch", "2", NULL, "tensor 'x_t'"},
    {"height", "99999", NULL, "'height'"},
    {"model", "/nonexistent", NULL, "/nonexistent"},
    {NULL, NULL, "{\"dtype\":\"F16\",\"shape\":[1,3,16,32],\"data_offsets\":[0,3072]}",
     "tensor 'x_t' must be F32"},
    {NULL, NULL, "{\"dtype\":\"F32\",\"shape\":[1,3,8,32],\"data_offsets\":[0,3072]}",
     "tensor 'x_t' must be F32"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    char *bad = edit_state(good, "bad.safetensors", cases[i].key, cases[i].value,
                           cases[i].tensor, NAN);
    expect_fail(cases[i].needle, "generate", "--resume", bad, "-o", o, NULL);
    g_free(bad);
  }
  char *nan_x = edit_state(good, "nan.safetensors", NULL, NULL, NULL, INFINITY);
  expect_fail("NaN or Inf", "generate", "--resume", nan_x, "-o", o, NULL);
  /* A state made for another model (tiny_b: 1 channel, 24x24). */
  char *other = golden_path("tiny_b");
  expect_fail("x_t has 3 channel(s), the model samples 1", "generate", other, "--resume", good,
              "-o", o, NULL);
  char *junk = tmp("junk.safetensors");
  g_assert_true(g_file_set_contents(junk, "\x10\0\0\0\0\0\0\0{}", 10, NULL));
  expect_fail("junk.safetensors", "generate", "--resume", junk, "-o", o, NULL);
  expect_fail("--stop-at and --save-state go together", "generate", dir,
              "--stop-at", "3", "-o", o, NULL);
  expect_fail("--resume: --steps comes from the state file", "generate",
              "--resume", good, "--steps", "5", "-o", o, NULL);
  expect_fail("--stop-at 4 out of range 5..9", "generate", "--resume", good,
              "--stop-at", "4", "--save-state", junk, NULL);
  g_free(nan_x); g_free(other); g_free(junk);
  g_free(good); g_free(o); g_free(dir);
}


/* ddpm nll: an estimate with its standard error on two PNGs, and bad input
 * (the numbers themselves are checked in test_nll.c). */
static void test_nll(void) {
  char *dir = golden_path("tiny");
  if (!dir) return;
  png_image_f im = {.c = 3, .h = 16, .w = 16, .bit_depth = 8};
  im.data = g_new(float, 3 * 16 * 16);
  for (int i = 0; i < 3 * 16 * 16; i++) im.data[i] = (float)((i * 37) % 256) / 127.5f - 1;
  char *a = tmp("nll_a.png"), *b = tmp("nll_b.png"), *small = tmp("nll_small.png");
  GError *e = NULL;
  g_assert_true(png_write_float(a, &im, &e));
  g_assert_true(png_write_float(b, &im, &e));
  im.w = 8;
  g_assert_true(png_write_float(small, &im, &e));
  png_image_clear(&im);
  char *out = NULL, *err = NULL;
  int rc = run_cli(&out, &err, "nll", dir, a, b, "--timesteps", "4", "--seed", "3", NULL);
  if (rc) g_printerr("%s", err);
  g_assert_cmpint(rc, ==, 0);
  g_assert_nonnull(strstr(out, "nll_a.png: "));
  g_assert_nonnull(strstr(out, " +- "));
  g_assert_nonnull(strstr(out, "mean of 2: "));
  g_assert_nonnull(strstr(out, "4 U-Net evaluations per image"));
  g_free(out); g_free(err);
  expect_fail("the image is 8x16", "nll", dir, small, NULL);
  expect_fail("timesteps = 2", "nll", dir, a, "--timesteps", "2", NULL);
  expect_fail("give one or more IMAGE.png", "nll", dir, NULL);
  g_free(a); g_free(b); g_free(small); g_free(dir);
}

/* Pixel values of a PNG's w x h cell at (x0, y0), as floats [c, h, w]. */
static float *png_cell(const char *path, int x0, int y0, int w, int h, int *c) {
  png_image_f im = {0};
  GError *e = NULL;
  g_assert_true(png_read_float(path, &im, &e));
  g_assert_cmpint(im.w, >=, x0 + w);
  g_assert_cmpint(im.h, >=, y0 + h);
  float *cell = g_new(float, (size_t)im.c * w * h);
  for (int ch = 0; ch < im.c; ch++)
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        cell[((size_t)ch * h + y) * w + x] =
          im.data[((size_t)ch * im.h + y0 + y) * im.w + x0 + x];
  *c = im.c;
  png_image_clear(&im);
  return cell;
}

static double cell_diff(const float *a, const float *b, size_t n) {
  double d = 0;
  for (size_t i = 0; i < n; i++) d = MAX(d, fabs((double)a[i] - b[i]));
  return d * 127.5; /* in 8-bit levels */
}

/* interpolate: a strip of 3 frames from an RGB and a grey picture of
 * another size; frame 0 is `sdedit` of the first with the same seed and
 * t0, frame 1 differs; --frames-dir writes each frame; bad arguments. */
static void test_interpolate(void) {
  char *dir = golden_path("tiny");
  if (!dir) return;
  png_image_f im = {.c = 3, .h = 16, .w = 16, .bit_depth = 8};
  im.data = g_new(float, 3 * 16 * 16);
  for (int i = 0; i < 3 * 16 * 16; i++) im.data[i] = sinf(0.05f * i);
  char *a = tmp("ip_a.png"), *b = tmp("ip_b.png"), *strip = tmp("strip.png");
  char *sd = tmp("ip_sd.png"), *f0 = tmp("frame000.png"), *f2 = tmp("frame002.png");
  GError *e = NULL;
  g_assert_true(png_write_float(a, &im, &e));
  png_image_clear(&im);
  im = (png_image_f){.c = 1, .h = 12, .w = 20, .bit_depth = 8};
  im.data = g_new(float, 12 * 20);
  for (int i = 0; i < 12 * 20; i++) im.data[i] = (i % 20) < 10 ? 0.8f : -0.8f;
  g_assert_true(png_write_float(b, &im, &e));
  png_image_clear(&im);
  char *out = NULL, *err = NULL;
  int rc = run_cli(&out, &err, "interpolate", dir, a, b, "--t", "300", "--frames", "3",
                   "--steps", "10", "--seed", "5", "-o", strip, "--frames-dir", tmpdir, NULL);
  if (rc) g_printerr("%s", err);
  g_assert_cmpint(rc, ==, 0);
  g_free(out); g_free(err);
  rc = run_cli(&out, &err, "sdedit", dir, a, "--t0", "300", "--steps", "10", "--seed", "5",
               "-o", sd, NULL);
  g_assert_cmpint(rc, ==, 0);
  g_free(out); g_free(err);
  int c;
  float *s0 = png_cell(strip, 0, 0, 16, 16, &c), *s1 = png_cell(strip, 18, 0, 16, 16, &c);
  float *s2 = png_cell(strip, 36, 0, 16, 16, &c);
  float *want = png_cell(sd, 0, 0, 16, 16, &c), *file0 = png_cell(f0, 0, 0, 16, 16, &c);
  float *file2 = png_cell(f2, 0, 0, 16, 16, &c);
  size_t n = 3 * 16 * 16;
  double d0 = cell_diff(s0, want, n), d1 = cell_diff(s1, s0, n);
  g_printerr("CLI interpolate: frame 0 vs sdedit %.1f levels, frame 1 vs frame 0 %.1f\n",
             d0, d1);
  g_assert_cmpfloat(d0, <=, 1.0); /* 8-bit rounding of two writers */
  g_assert_cmpfloat(d1, >, 10.0);
  g_assert_cmpfloat(cell_diff(file0, s0, n), ==, 0);
  g_assert_cmpfloat(cell_diff(file2, s2, n), ==, 0);
  expect_fail("--frames 1 out of range 2..256", "interpolate", dir, a, b, "--frames", "1",
              "-o", strip, NULL);
  expect_fail("t = 5000 out of range 0..999", "interpolate", dir, a, b, "--t", "5000",
              "-o", strip, NULL);
  expect_fail("give two pictures", "interpolate", a, "-o", strip, NULL);
  expect_fail("ip_missing.png", "interpolate", dir, a, "ip_missing.png", "-o", strip, NULL);
  g_free(s0); g_free(s1); g_free(s2); g_free(want); g_free(file0); g_free(file2);
  g_free(a); g_free(b); g_free(strip); g_free(sd); g_free(f0); g_free(f2); g_free(dir);
}

/* progressive: 2 kept steps x (x_t, x0, 3 finishes); finish 0 of the last
 * row is `generate` with the same seed, pixel for pixel; the finishes of a
 * row differ; DDIM eta 0 and bad counts are refused. */
static void test_progressive(void) {
  char *dir = golden_path("tiny");
  if (!dir) return;
  char *grid = tmp("prog.png"), *gen = tmp("prog_gen.png");
  char *out = NULL, *err = NULL;
  int rc = run_cli(&out, &err, "progressive", dir, "--every", "4", "--finishes", "3",
                   "--steps", "12", "--seed", "6", "-o", grid, NULL);
  if (rc) g_printerr("%s", err);
  g_assert_cmpint(rc, ==, 0);
  g_assert_nonnull(strstr(out, "2 rows (every 4 of 12 steps)"));
  g_free(out); g_free(err);
  rc = run_cli(&out, &err, "generate", dir, "--steps", "12", "--seed", "6", "-o", gen, NULL);
  g_assert_cmpint(rc, ==, 0);
  g_free(out); g_free(err);
  png_image_f im = {0};
  GError *e = NULL;
  g_assert_true(png_read_float(grid, &im, &e));
  g_assert_cmpint(im.w, ==, 5 * 16 + 4 * 2);
  g_assert_cmpint(im.h, ==, 2 * 16 + 2);
  png_image_clear(&im);
  int c;
  size_t n = 3 * 16 * 16;
  float *fin0 = png_cell(grid, 2 * 18, 18, 16, 16, &c), *want = png_cell(gen, 0, 0, 16, 16, &c);
  float *fin1 = png_cell(grid, 3 * 18, 18, 16, 16, &c);
  double d0 = cell_diff(fin0, want, n), d1 = cell_diff(fin1, fin0, n);
  g_printerr("CLI progressive: last row's finish 0 vs generate %.1f levels, "
             "finish 1 vs finish 0 %.1f\n", d0, d1);
  g_assert_cmpfloat(d0, ==, 0);
  g_assert_cmpfloat(d1, >, 1.0);
  expect_fail("use --sampler ddpm or --eta > 0", "progressive", dir, "--sampler", "ddim",
              "-o", grid, NULL);
  expect_fail("--finishes 0 out of range 1..64", "progressive", dir, "--finishes", "0",
              "-o", grid, NULL);
  expect_fail("--every 12 out of range 1..11", "progressive", dir, "--steps", "12",
              "--every", "12", "-o", grid, NULL);
  g_free(fin0); g_free(fin1); g_free(want);
  g_free(grid); g_free(gen); g_free(dir);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  if (!g_getenv("DDPM_CLI")) return 77;
  tmpdir = g_dir_make_tmp("ddpm-cli-XXXXXX", NULL);
  g_test_add_data_func("/cli/golden_sdedit", NULL, golden_sdedit);
  g_test_add_data_func("/cli/golden_sdedit/fp16", "", golden_sdedit);
  g_test_add_func("/cli/png_mask", test_png_mask);
  g_test_add_func("/cli/denoise_estimate", test_denoise_estimate);
  g_test_add_func("/cli/bad_input", test_bad_input);
  g_test_add_func("/cli/resume", test_resume);
  g_test_add_func("/cli/resume_sdedit", test_resume_sdedit);
  g_test_add_func("/cli/bad_state", test_bad_state);
  g_test_add_func("/cli/nll", test_nll);
  g_test_add_func("/cli/interpolate", test_interpolate);
  g_test_add_func("/cli/progressive", test_progressive);
  int rc = g_test_run();
  GDir *d = g_dir_open(tmpdir, 0, NULL);
  for (const char *name; d && (name = g_dir_read_name(d));) {
    char *p = tmp(name);
    g_unlink(p);
    g_free(p);
  }
  if (d) g_dir_close(d);
  g_rmdir(tmpdir);
  g_free(tmpdir);
  return rc;
}
