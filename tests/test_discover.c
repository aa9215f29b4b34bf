/* Model discovery: a fake Hugging Face cache with a root-level UNet, a
 * pipeline with unet/, a non-UNet model, a broken config and a dangling
 * refs/main; resolution of "", a folder, an org/name and a miss.  Also the
 * image helpers (resize, channel conversion). */
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>

#include "ddpm/ddpm.h"

static char *root;

static void put(const char *rel, const char *text) {
  char *path = g_build_filename(root, rel, NULL);
  char *dir = g_path_get_dirname(path);
  g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
  g_assert_true(g_file_set_contents(path, text, -1, NULL));
  g_free(dir);
  g_free(path);
}

static const char *unet_cfg = "{\"_class_name\": \"UNet2DModel\", \"sample_size\": 32}";

static void test_find(void) {
  put("hub/models--google--ddpm-cifar10-32/refs/main", "abc\n");
  put("hub/models--google--ddpm-cifar10-32/snapshots/abc/config.json", unet_cfg);
  put("hub/models--google--ddpm-cifar10-32/snapshots/old/config.json", "{}");
  put("hub/models--org--pipe/snapshots/r1/unet/config.json", unet_cfg);
  put("hub/models--org--vae/snapshots/r1/config.json",
      "{\"_class_name\": \"AutoencoderKL\"}");
  put("hub/models--org--broken/snapshots/r1/config.json", "{\"_class_name\": 7");
  put("hub/models--org--numeric/snapshots/r1/config.json", "{\"_class_name\": 7}");
  put("hub/models--org--dangling/refs/main", "../../etc\n");
  put("hub/models--org--dangling/snapshots/r2/config.json", unet_cfg);
  char *hub = g_build_filename(root, "hub", NULL);
  g_setenv("HF_HUB_CACHE", hub, TRUE);

  size_t n = 0;
  ddpm_model_entry *e = ddpm_find_models(&n);
  g_assert_cmpuint(n, ==, 3);
  g_assert_cmpstr(e[0].name, ==, "google/ddpm-cifar10-32");
  g_assert_true(g_str_has_suffix(e[0].path, "snapshots/abc"));
  g_assert_cmpstr(e[1].name, ==, "org/dangling"); /* falls back to the newest */
  g_assert_true(g_str_has_suffix(e[1].path, "snapshots/r2"));
  g_assert_cmpstr(e[2].name, ==, "org/pipe");
  g_assert_true(g_str_has_suffix(e[2].path, "r1/unet"));

  GError *err = NULL;
  char *p = ddpm_resolve_model("google/ddpm-cifar10-32", &err);
  g_assert_no_error(err);
  g_assert_cmpstr(p, ==, e[0].path);
  g_free(p);
  p = ddpm_resolve_model(hub, &err); /* an existing folder is itself */
  g_assert_cmpstr(p, ==, hub);
  g_free(p);
  g_assert_null(ddpm_resolve_model("org/vae", &err));
  g_assert_error(err, DDPM_ERROR, DDPM_ERROR_IO);
  g_assert_nonnull(strstr(err->message, "org/vae"));
  g_clear_error(&err);

  g_setenv("DDPM_DEFAULT_MODEL", hub, TRUE);
  p = ddpm_resolve_model("", &err);
  g_assert_cmpstr(p, ==, hub);
  g_free(p);
  g_setenv("DDPM_DEFAULT_MODEL", "/nonexistent/default", TRUE);
  g_assert_null(ddpm_resolve_model(NULL, &err));
  g_assert_nonnull(strstr(err->message, "DDPM_DEFAULT_MODEL"));
  g_clear_error(&err);

  ddpm_model_entries_free(e, n);
  g_free(hub);
}

static void test_resize(void) {
  /* Shrinking by 2 averages 2x2 blocks; enlarging a constant stays constant;
   * a horizontal ramp enlarged stays monotonic within its range. */
  float src[2 * 4 * 4], half[2 * 2 * 2], big[2 * 7 * 9];
  for (int i = 0; i < 32; i++) src[i] = (float)i;
  ddpm_resize(src, 2, 4, 4, half, 2, 2);
  g_assert_cmpfloat(fabsf(half[0] - (0 + 1 + 4 + 5) / 4.0f), <, 1e-6);
  g_assert_cmpfloat(fabsf(half[7] - (26 + 27 + 30 + 31) / 4.0f), <, 1e-6);
  float flat[9];
  for (int i = 0; i < 9; i++) flat[i] = 0.25f;
  ddpm_resize(flat, 1, 3, 3, big, 7, 9);
  for (int i = 0; i < 63; i++) g_assert_cmpfloat(fabsf(big[i] - 0.25f), <, 1e-6);
  ddpm_resize(src, 2, 4, 4, big, 7, 9);
  for (int y = 0; y < 7; y++)
    for (int x = 1; x < 9; x++) g_assert_cmpfloat(big[y * 9 + x], >=, big[y * 9 + x - 1]);
  g_assert_cmpfloat(big[0], >=, 0);
  g_assert_cmpfloat(big[62], <=, 15);

  float rgb[3 * 2] = {1, 0, 0, 1, 0.5f, 0.5f}, grey[2], back[6];
  ddpm_convert_channels(rgb, 3, grey, 1, 2);
  g_assert_cmpfloat(fabsf(grey[0] - (0.299f + 0.114f * 0.5f)), <, 1e-6);
  ddpm_convert_channels(grey, 1, back, 3, 2);
  g_assert_cmpfloat(back[0], ==, grey[0]);
  g_assert_cmpfloat(back[4], ==, grey[0]);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  GError *err = NULL;
  root = g_dir_make_tmp("ddpm-discover-XXXXXX", &err);
  g_assert_no_error(err);
  g_test_add_func("/discover/find", test_find);
  g_test_add_func("/image/resize", test_resize);
  int rc = g_test_run();
  char *cmd = g_strdup_printf("rm -rf '%s'", root);
  g_assert_cmpint(system(cmd), ==, 0);
  g_free(cmd);
  g_free(root);
  return rc;
}
