/* ddpm-randmodel — writes a diffusers UNet2DModel folder with deterministic
 * pseudo-random weights (the recipe of the golden tests) for any config.json,
 * so benchmarks and memory figures can use real model sizes without a
 * download.
 *
 *   ddpm-randmodel CONFIG_DIR OUT_DIR [--seed N]
 *
 * CONFIG_DIR holds config.json (and optionally scheduler_config.json, which
 * is copied). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>

#include "graph.h"
#include "model/config.h"
#include "model/weights.h"
#include "unet.h"

static bool copy_file(const char *from_dir, const char *to_dir, const char *name,
                      bool required, GError **err) {
  char *src = g_build_filename(from_dir, name, NULL);
  char *dst = g_build_filename(to_dir, name, NULL);
  char *text = NULL;
  gsize len = 0;
  bool ok = true;
  if (g_file_get_contents(src, &text, &len, required ? err : NULL))
    ok = g_file_set_contents(dst, text, (gssize)len, err);
  else
    ok = !required;
  g_free(text);
  g_free(src);
  g_free(dst);
  return ok;
}

int main(int argc, char **argv) {
  if (argc != 3 && !(argc == 5 && !strcmp(argv[3], "--seed"))) {
    fprintf(stderr, "usage: ddpm-randmodel CONFIG_DIR OUT_DIR [--seed N]\n");
    return 2;
  }
  const char *in = argv[1], *out = argv[2];
  uint64_t seed = argc == 5 ? g_ascii_strtoull(argv[4], NULL, 10) : 20200619;
  GError *err = NULL;
  ddpm_unet_config cfg;
  char *cfg_path = g_build_filename(in, "config.json", NULL);
  int rc = 1;
  if (!ddpm_unet_config_load(cfg_path, &cfg, &err)) goto out;
  if (g_mkdir_with_parents(out, 0755) != 0) {
    fprintf(stderr, "ddpm-randmodel: cannot create %s\n", out);
    goto out;
  }
  if (!copy_file(in, out, "config.json", true, &err) ||
      !copy_file(in, out, "scheduler_config.json", false, &err))
    goto out;

  /* The builder requests every weight with its shape; the random source
   * fills and keeps them.  No device is needed: nothing is compiled. */
  wmap *src = wmap_new_random(seed);
  wmap_keep_random(src);
  wstore *ws = wstore_new(NULL);
  graph *g = graph_new(NULL, ws);
  int size = cfg.sample_size > 0 ? cfg.sample_size : 1 << (cfg.n_levels - 1);
  unet_io io;
  unet_build(g, ws, src, &cfg, 1, size, size, false, &io);
  size_t n;
  const st_out_tensor *t = wmap_kept(src, &n);
  char *st_path = g_build_filename(out, "diffusion_pytorch_model.safetensors", NULL);
  uint64_t params = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t c = 1;
    for (int d = 0; d < t[i].ndim; d++) c *= (uint64_t)t[i].shape[d];
    params += c;
  }
  if (st_write(st_path, t, n, &err)) {
    printf("%s: %zu tensors, %.2f M parameters, seed %" G_GUINT64_FORMAT "\n",
           st_path, n, params / 1e6, seed);
    rc = 0;
  }
  g_free(st_path);
  graph_free(g);
  wstore_free(ws);
  wmap_free(src);
out:
  if (err) fprintf(stderr, "ddpm-randmodel: %s\n", err->message);
  g_clear_error(&err);
  g_free(cfg_path);
  return rc;
}
