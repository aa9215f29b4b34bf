/* ddpm_nll against tools/torch_ref/nll_ref.py: the variational bound of two
 * 8-bit images on the tiny golden U-Net under 20-step fixed_small and
 * fixed_large schedules, every term computed independently in float64
 * (tests/data/nll_tiny.json).  Both sides feed the U-Net the same float32
 * x_t (the reference reimplements ddpm_noise; checked bit for bit here), so
 * what remains is the float32 U-Net on Vulkan against float64 torch.
 * Tolerance: 1e-4 relative on each image's bits/dim, and on each term
 * 1e-4 * max(|ref|, 1e-2 bits/dim). */
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "golden.h"

#define TOL 1e-4

static JsonObject *data;
static ddpm_context *ctx;

static double arr_num(JsonArray *a, guint i) { return json_array_get_double_element(a, i); }

/* A model folder with the tiny golden weights and this scheduler_config. */
static char *make_model(JsonObject *sched) {
  char *golden = golden_path("tiny");
  char *dir = g_dir_make_tmp("ddpm-nll-XXXXXX", NULL);
  g_assert_nonnull(dir);
  const char *files[] = {"config.json", "diffusion_pytorch_model.safetensors"};
  for (int i = 0; i < 2; i++) {
    char *src = g_build_filename(golden, files[i], NULL);
    char *dst = g_build_filename(dir, files[i], NULL);
    g_assert_cmpint(symlink(src, dst), ==, 0);
    g_free(src);
    g_free(dst);
  }
  JsonNode *n = json_node_new(JSON_NODE_OBJECT);
  json_node_set_object(n, sched);
  char *text = json_to_string(n, TRUE);
  json_node_unref(n);
  char *path = g_build_filename(dir, "scheduler_config.json", NULL);
  g_assert_true(g_file_set_contents(path, text, -1, NULL));
  g_free(path);
  g_free(text);
  g_free(golden);
  return dir;
}

static void remove_model(char *dir) {
  const char *files[] = {"config.json", "diffusion_pytorch_model.safetensors",
                         "scheduler_config.json"};
  for (int i = 0; i < 3; i++) {
    char *p = g_build_filename(dir, files[i], NULL);
    g_unlink(p);
    g_free(p);
  }
  g_rmdir(dir);
  g_free(dir);
}

/* The test images in [-1, 1]. */
static float *images(int *batch, int *c, int *h, int *w) {
  JsonArray *imgs = json_object_get_array_member(data, "images");
  JsonArray *shape = json_object_get_array_member(data, "image_shape");
  *batch = (int)json_array_get_length(imgs);
  *c = (int)json_array_get_int_element(shape, 0);
  *h = (int)json_array_get_int_element(shape, 1);
  *w = (int)json_array_get_int_element(shape, 2);
  size_t item = (size_t)*c * *h * *w;
  float *x = g_new(float, item * *batch);
  for (int b = 0; b < *batch; b++) {
    JsonArray *a = json_array_get_array_element(imgs, b);
    g_assert_cmpuint(json_array_get_length(a), ==, item);
    for (size_t i = 0; i < item; i++)
      x[b * item + i] = (float)(json_array_get_int_element(a, i) / 127.5 - 1.0);
  }
  return x;
}

static void test_noise_port(void) {
  JsonObject *nc = json_object_get_object_member(data, "noise_check");
  GList *keys = json_object_get_members(nc);
  for (GList *l = keys; l; l = l->next) {
    unsigned long long seed;
    unsigned stream;
    g_assert_cmpint(sscanf(l->data, "%llu/%u", &seed, &stream), ==, 2);
    JsonArray *v = json_object_get_array_member(nc, l->data);
    for (guint i = 0; i < json_array_get_length(v); i++)
      g_assert_cmpfloat(ddpm_noise(seed, stream, i), ==, (float)arr_num(v, i));
  }
  g_list_free(keys);
}

static void check_case(const char *name, bool estimate) {
  JsonObject *cs = json_object_get_object_member(
    json_object_get_object_member(data, "cases"), name);
  char *dir = make_model(json_object_get_object_member(cs, "scheduler"));
  GError *err = NULL;
  ddpm_model *m = ddpm_model_load(ctx, dir, &err);
  g_assert_no_error(err);
  int B, c, h, w;
  float *x = images(&B, &c, &h, &w);
  JsonArray *bpd = json_object_get_array_member(cs, "bpd");
  JsonArray *prior = json_object_get_array_member(cs, "prior");
  JsonArray *terms = json_object_get_array_member(cs, "terms");
  int T = (int)json_array_get_length(json_array_get_array_element(terms, 0));

  /* Exact: all T terms. */
  ddpm_nll_params p = ddpm_nll_default_params();
  p.seed = (uint64_t)json_object_get_int_member(data, "seed");
  p.chunk = 12; /* a short last chunk: 40 pairs */
  ddpm_nll_result *res = g_new0(ddpm_nll_result, B), mean;
  double *got = g_new(double, (size_t)B * T);
  g_assert_true(ddpm_nll(m, x, B, h, w, &p, res, &mean, got, &err));
  g_assert_no_error(err);
  double worst_term = 0, worst_bpd = 0, mean_ref = 0;
  for (int b = 0; b < B; b++) {
    JsonArray *tr = json_array_get_array_element(terms, b);
    for (int t = 0; t < T; t++) {
      double ref = arr_num(tr, t), e = fabs(got[b * T + t] - ref) / fmax(fabs(ref), 1e-2);
      if (!(e <= worst_term)) worst_term = e;
    }
    double ref = arr_num(bpd, b), e = fabs(res[b].bpd - ref) / fabs(ref);
    if (!(e <= worst_bpd)) worst_bpd = e;
    /* The prior involves no U-Net; 1e-6 because the library's float32
     * linspace of the betas and torch 1.13's differ in the last bit for some
     * t, which moves alphas_cumprod[T-1] by about 1e-7. */
    g_assert_cmpfloat(fabs(res[b].prior - arr_num(prior, b)), <=, 1e-6 * fabs(arr_num(prior, b)));
    g_assert_cmpfloat(res[b].se, ==, 0);
    g_assert_cmpint(res[b].n_terms, ==, T);
    g_assert_cmpfloat(fabs(res[b].decoder - arr_num(tr, 0)), <=, TOL * fabs(arr_num(tr, 0)));
    mean_ref += ref / B;
  }
  g_printerr("%s: bits/dim C %.6f %.6f vs float64 %.6f %.6f: max rel err "
             "%.2e per image, %.2e per term\n", name, res[0].bpd, res[1].bpd,
             arr_num(bpd, 0), arr_num(bpd, 1), worst_bpd, worst_term);
  g_assert_cmpfloat(worst_bpd, <=, TOL);
  g_assert_cmpfloat(worst_term, <=, TOL);
  g_assert_cmpfloat(fabs(mean.bpd - mean_ref), <=, TOL * mean_ref);

  /* Estimate: K = 6 of T = 20: the decoder plus 5 KL terms scaled by 19/5,
   * and the without-replacement standard error, both from the terms. */
  p.timesteps = 6;
  p.chunk = 0;
  double *est = g_new(double, (size_t)B * T);
  if (estimate) {
    g_assert_true(ddpm_nll(m, x, B, h, w, &p, res, &mean, est, &err));
    g_assert_no_error(err);
  }
  for (int b = 0; b < B && estimate; b++) {
    g_assert_cmpint(res[b].n_terms, ==, 6);
    g_assert_false(isnan(est[b * T]));
    double sum = 0, sum2 = 0;
    int n = 0;
    for (int t = 1; t < T; t++) {
      double v = est[b * T + t];
      if (isnan(v)) continue;
      g_assert_cmpfloat(fabs(v - got[b * T + t]), <=, TOL * fmax(fabs(got[b * T + t]), 1e-2));
      sum += v, sum2 += v * v, n++;
    }
    g_assert_cmpint(n, ==, 5);
    double want = res[b].prior + est[b * T] + 19.0 / 5 * sum;
    double var = (sum2 - sum * sum / 5) / 4;
    double se = 19 * sqrt((1 - 5.0 / 19) * var / 5);
    g_assert_cmpfloat(fabs(res[b].bpd - want), <=, 1e-12 * want);
    g_assert_cmpfloat(fabs(res[b].se - se), <=, 1e-9 * se);
    g_printerr("  K=6 image %d: %.4f +- %.4f (exact %.4f)\n", b, res[b].bpd,
               res[b].se, arr_num(bpd, b));
  }
  if (estimate) g_assert_cmpfloat(mean.se, >, 0);
  g_free(est);
  g_free(got);
  g_free(res);
  g_free(x);
  ddpm_model_free(m);
  remove_model(dir);
}

static void test_fixed_small(void) { check_case("fixed_small", true); }
static void test_fixed_large(void) { check_case("fixed_large", false); }

static void test_bad_args(void) {
  char *dir = golden_path("tiny");
  GError *err = NULL;
  ddpm_model *m = ddpm_model_load(ctx, dir, &err);
  g_assert_no_error(err);
  float x[3 * 16 * 16] = {0};
  ddpm_nll_result r;
  ddpm_nll_params p = ddpm_nll_default_params();
  p.timesteps = 2;
  g_assert_false(ddpm_nll(m, x, 1, 16, 16, &p, &r, NULL, NULL, &err));
  g_assert_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG);
  g_assert_nonnull(strstr(err->message, "timesteps = 2"));
  g_clear_error(&err);
  p.timesteps = 5;
  x[7] = 1.5f;
  g_assert_false(ddpm_nll(m, x, 1, 16, 16, &p, &r, NULL, NULL, &err));
  g_assert_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG);
  g_assert_nonnull(strstr(err->message, "outside [-1, 1]"));
  g_clear_error(&err);
  x[7] = 0;
  g_assert_false(ddpm_nll(m, x, 1, 15, 15, &p, &r, NULL, NULL, &err));
  g_assert_nonnull(err);
  g_clear_error(&err);
  ddpm_model_free(m);
  g_free(dir);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  const char *dd = g_getenv("DDPM_TEST_DATA");
  char *gd = golden_path("tiny");
  if (!dd || !gd) return 77;
  g_free(gd);
  char *path = g_build_filename(dd, "nll_tiny.json", NULL);
  JsonParser *jp = json_parser_new();
  GError *err = NULL;
  if (!json_parser_load_from_file(jp, path, &err)) g_error("%s: %s", path, err->message);
  g_free(path);
  data = json_node_get_object(json_parser_get_root(jp));
  ctx = test_context();
  g_test_add_func("/nll/noise_port", test_noise_port);
  g_test_add_func("/nll/fixed_small", test_fixed_small);
  g_test_add_func("/nll/fixed_large", test_fixed_large);
  g_test_add_func("/nll/bad_args", test_bad_args);
  int rc = g_test_run();
  g_assert_cmpuint(ddpm_context_validation_messages(ctx), ==, 0);
  ddpm_context_free(ctx);
  g_object_unref(jp);
  return rc;
}
