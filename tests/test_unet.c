/* The whole U-Net against diffusers (../shared/golden/tiny, tiny_b): eps and
 * every module output, old attention key names, batch independence, and
 * bad model folders. */
#include <glib/gstdio.h>
#include <unistd.h>
#include <string.h>

#include "golden.h"
#include "model.h"
#include "vk/vk.h"

#define TOL 1e-4
/* With fp16 weights (ddpm_context_params.fp16_weights): the weights'
 * rounding, 2^-12 relative at most, accumulated through the network. */
#define TOL_F16 5e-3

static ddpm_context *ctx;
static double tol = TOL;

typedef struct {
  st_file *golden;
  double worst;
  int compared;
} probe_check;

static void on_probe(const char *name, const float *data, int n, int c, int h,
                     int w, void *user) {
  probe_check *pc = user;
  char *key = g_strconcat("dbg.", name, NULL);
  const st_tensor *t = st_find(pc->golden, key);
  if (t) {
    g_assert_cmpuint(t->n_elements, ==, (uint64_t)n * c * h * w);
    float *want = golden_f32(pc->golden, key, NULL);
    double e = rel_max_err(data, want, t->n_elements);
    if (g_test_verbose()) g_printerr("  %-34s %.3g\n", key, e);
    if (e > tol) g_printerr("  %s: error %.3g > %.1g\n", key, e, tol);
    g_assert_cmpfloat(e, <=, tol);
    if (e > pc->worst) pc->worst = e;
    pc->compared++;
    g_free(want);
  }
  g_free(key);
}

static int count_dbg(st_file *f) {
  int n = 0;
  for (size_t i = 0; i < st_count(f); i++)
    n += g_str_has_prefix(st_tensor_at(f, i)->name, "dbg.");
  return n;
}

/* Runs unet.x/unet.t through the model in `dir` and checks eps (and, when
 * probed, every dbg.* tensor).  Returns eps (g_free). */
static float *check_forward(const char *model_dir, st_file *golden, bool probed,
                            const char *label) {
  GError *err = NULL;
  ddpm_model *m = ddpm_model_load(ctx, model_dir, &err);
  g_assert_no_error(err);
  const st_tensor *tx = st_find(golden, "unet.x");
  const st_tensor *tt = st_find(golden, "unet.t");
  int n = (int)tx->shape[0], c = (int)tx->shape[1], h = (int)tx->shape[2],
      w = (int)tx->shape[3];
  float *x = golden_f32(golden, "unet.x", NULL);
  int64_t t[16];
  g_assert_true(st_read_i64(golden, tt, t, &err));
  uint64_t count;
  float *want = golden_f32(golden, "unet.eps", &count);
  float *eps = g_new(float, count);
  probe_check pc = {.golden = golden};
  bool ok = probed ? ddpm_model_forward_probed(m, x, t, n, h, w, eps, on_probe,
                                               &pc, &err)
                   : ddpm_model_forward(m, x, t, n, h, w, eps, &err);
  g_assert_no_error(err);
  g_assert_true(ok);
  g_assert_cmpint(c, ==, ddpm_model_config(m)->in_channels);
  double e = rel_max_err(eps, want, count);
  g_printerr("%s: unet.eps max rel err %.3g", label, e);
  if (probed) {
    g_printerr(", %d dbg tensors, worst %.3g", pc.compared, pc.worst);
    g_assert_cmpint(pc.compared, ==, count_dbg(golden));
  }
  g_printerr("\n");
  g_assert_cmpfloat(e, <=, tol);
  g_free(x);
  g_free(want);
  ddpm_model_free(m);
  return eps;
}

static void golden_case(gconstpointer data) {
  const char *name = data;
  char *dir = golden_path(name);
  if (!dir) return;
  char *gpath = g_build_filename(dir, "golden.safetensors", NULL);
  GError *err = NULL;
  st_file *golden = st_open(gpath, &err);
  g_assert_no_error(err);

  float *eps = check_forward(dir, golden, true, name);

  /* The pre-2023 attention names must give bit-identical output. */
  char *tmp = g_dir_make_tmp("ddpm-oldkeys-XXXXXX", &err);
  g_assert_no_error(err);
  char *cfg_src = g_build_filename(dir, "config.json", NULL);
  char *cfg_dst = g_build_filename(tmp, "config.json", NULL);
  char *st_src = g_build_filename(dir, "diffusion_pytorch_model.oldkeys.safetensors", NULL);
  char *st_dst = g_build_filename(tmp, "diffusion_pytorch_model.safetensors", NULL);
  g_assert_cmpint(symlink(cfg_src, cfg_dst), ==, 0);
  g_assert_cmpint(symlink(st_src, st_dst), ==, 0);
  char *label = g_strconcat(name, " (old key names)", NULL);
  float *eps_old = check_forward(tmp, golden, false, label);
  const st_tensor *te = st_find(golden, "unet.eps");
  g_assert_cmpmem(eps, te->n_elements * 4, eps_old, te->n_elements * 4);
  g_unlink(cfg_dst);
  g_unlink(st_dst);
  g_rmdir(tmp);

  g_free(label); g_free(cfg_src); g_free(cfg_dst); g_free(st_src); g_free(st_dst);
  g_free(tmp); g_free(eps); g_free(eps_old);
  st_close(golden);
  g_free(gpath);
  g_free(dir);
}

/* Item k of a batch gives the same eps as alone (no cross-talk). */
static void test_batch_independence(void) {
  char *dir = golden_path("tiny_b");
  if (!dir) return;
  GError *err = NULL;
  ddpm_model *m = ddpm_model_load(ctx, dir, &err);
  g_assert_no_error(err);
  const int n = 3, c = 1, hw = 24 * 24;
  float *x = g_new(float, n * c * hw), *eps = g_new(float, n * c * hw);
  float *one = g_new(float, c * hw);
  GRand *r = g_rand_new_with_seed(7);
  for (int i = 0; i < n * c * hw; i++) x[i] = (float)g_rand_double_range(r, -1, 1);
  int64_t t[3] = {999, 0, 437};
  g_assert_true(ddpm_model_forward(m, x, t, n, 24, 24, eps, &err));
  for (int k = 0; k < n; k++) {
    g_assert_true(ddpm_model_forward(m, x + k * c * hw, &t[k], 1, 24, 24, one, &err));
    g_assert_cmpmem(one, c * hw * 4, eps + k * c * hw, c * hw * 4);
  }
  /* Another resolution (a multiple of 2^(levels-1)) also runs. */
  float *big = g_new0(float, 2 * 32 * 32);
  int64_t t2[2] = {5, 500};
  g_assert_true(ddpm_model_forward(m, big, t2, 2, 32, 32, big, &err) || err);
  g_assert_no_error(err);
  /* And a bad one is refused with a clear message. */
  g_assert_false(ddpm_model_forward(m, x, t, 1, 25, 24, eps, &err));
  g_assert_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG);
  g_assert_nonnull(strstr(err->message, "multiples of 4"));
  g_clear_error(&err);
  g_free(big);
  g_rand_free(r);
  g_free(x); g_free(eps); g_free(one);
  ddpm_model_free(m);
  g_free(dir);
}

/* The other kernel family than the device's own (tiled GPU kernels on
 * lavapipe, CPU kernels on a GPU), so both stay exact end to end. */
static void golden_other_kernels(gconstpointer name) {
  bool cpu = ddpm_context_device(ctx)->type == DDPM_DEVICE_CPU;
  g_setenv("DDPM_KERNELS", cpu ? "gpu" : "cpu", TRUE);
  golden_case(name);
  g_unsetenv("DDPM_KERNELS");
}

/* fp16 weights, in both kernel families: within TOL_F16 of diffusers, and
 * not the float32 result (the halves are really used). */
static void golden_fp16(gconstpointer name) {
  char *dir = golden_path(name);
  if (!dir) return;
  GError *err = NULL;
  char *gpath = g_build_filename(dir, "golden.safetensors", NULL);
  st_file *golden = st_open(gpath, &err);
  g_assert_no_error(err);
  float *eps32 = check_forward(dir, golden, false, name);
  const char *kernels[] = {"gpu", "cpu"};
  for (int k = 0; k < 2; k++) {
    g_setenv("DDPM_KERNELS", kernels[k], TRUE);
    ctx->fp16_weights = true;
    tol = TOL_F16;
    char *label = g_strdup_printf("%s (fp16 weights, %s kernels)", (const char *)name, kernels[k]);
    float *eps16 = check_forward(dir, golden, true, label);
    ctx->fp16_weights = false;
    tol = TOL;
    uint64_t count = st_find(golden, "unet.eps")->n_elements;
    g_assert_cmpfloat(rel_max_err(eps16, eps32, count), >, 0);
    g_free(eps16);
    g_free(label);
  }
  g_unsetenv("DDPM_KERNELS");
  g_free(eps32);
  st_close(golden);
  g_free(gpath);
  g_free(dir);
}

/* The CPU kernels without the Winograd convolution, as on a model whose
 * weights it does not take. */
static void golden_cpu_direct(gconstpointer name) {
  g_setenv("DDPM_KERNELS", "cpu-direct", TRUE);
  golden_case(name);
  g_unsetenv("DDPM_KERNELS");
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  ctx = test_context();
  g_test_add_data_func("/unet/golden/tiny", "tiny", golden_case);
  g_test_add_data_func("/unet/golden/tiny_b", "tiny_b", golden_case);
  g_test_add_data_func("/unet/golden/tiny_b/other_kernels", "tiny_b",
                       golden_other_kernels);
  g_test_add_data_func("/unet/golden/tiny_b/cpu_direct", "tiny_b", golden_cpu_direct);
  g_test_add_data_func("/unet/golden/tiny/fp16", "tiny", golden_fp16);
  g_test_add_data_func("/unet/golden/tiny_b/fp16", "tiny_b", golden_fp16);
  g_test_add_func("/unet/batch_independence", test_batch_independence);
  int rc = g_test_run();
  return test_context_finish(ctx, rc);
}
