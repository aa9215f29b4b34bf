/* The random-weight recipe (weights_random_fill + the U-Net builder's list of
 * weights) reproduces the golden models' weight files exactly: same names,
 * shapes and bits.  This also proves the builder requests exactly the
 * tensors diffusers saves. */
#include <string.h>

#include "golden.h"
#include "model/weights.h"
#include "unet.h"

static void check_model(gconstpointer data) {
  const char *name = data;
  char *dir = golden_path(name);
  if (!dir) return;
  char *cfg_path = g_build_filename(dir, "config.json", NULL);
  char *st_path = g_build_filename(dir, "diffusion_pytorch_model.safetensors", NULL);
  GError *err = NULL;
  ddpm_unet_config cfg;
  g_assert_true(ddpm_unet_config_load(cfg_path, &cfg, &err));
  st_file *f = st_open(st_path, &err);
  g_assert_no_error(err);

  wmap *src = wmap_new_random(20200619);
  wmap_keep_random(src);
  wstore *ws = wstore_new(NULL);
  graph *g = graph_new(NULL, ws);
  unet_io io;
  unet_build(g, ws, src, &cfg, 1, cfg.sample_size, cfg.sample_size, false, &io);
  size_t n;
  const st_out_tensor *t = wmap_kept(src, &n);
  g_assert_cmpuint(n, ==, st_count(f));
  for (size_t i = 0; i < n; i++) {
    const st_tensor *ft = st_find(f, t[i].name);
    if (!ft) g_error("%s: no tensor %s in the golden file", name, t[i].name);
    g_assert_cmpint(ft->ndim, ==, t[i].ndim);
    g_assert_cmpmem(ft->shape, ft->ndim * 8, t[i].shape, t[i].ndim * 8);
    g_assert_cmpmem(st_data(f, ft), ft->nbytes, t[i].data, ft->n_elements * 4);
  }
  graph_free(g);
  wstore_free(ws);
  wmap_free(src);
  st_close(f);
  g_free(cfg_path);
  g_free(st_path);
  g_free(dir);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  g_test_add_data_func("/random_weights/tiny", "tiny", check_model);
  g_test_add_data_func("/random_weights/tiny_b", "tiny_b", check_model);
  return g_test_run();
}
