/* ddpm — command-line front end of libddpm.
 *
 *   ddpm devices
 *   ddpm info MODEL_DIR
 *   ddpm eps MODEL_DIR --in IN.safetensors --out OUT.safetensors
 *   ddpm generate MODEL_DIR [-n N] [--steps S] [--sampler ddpm|ddim]
 *                 [--eta E] [--seed K] -o OUT.png
 *
 * Everything goes through include/ddpm/ddpm.h; the safetensors reader and
 * writer (a file-format utility of the library) serve `eps`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "ddpm/ddpm.h"
#include "model/safetensors.h"
#include "png_io.h"

static const char *device_opt;

static int fail(GError *err) {
  fprintf(stderr, "ddpm: %s\n", err ? err->message : "failed");
  g_clear_error(&err);
  return 1;
}

static int usage(void) {
  fprintf(stderr,
          "usage: ddpm [--device D] COMMAND ...\n"
          "  devices                         list Vulkan devices\n"
          "  info MODEL_DIR                  describe a diffusers UNet2DModel folder\n"
          "  eps MODEL_DIR --in IN.safetensors --out OUT.safetensors\n"
          "                                  one U-Net evaluation: IN holds x (F32\n"
          "                                  [B,C,H,W]) and t (I64 [B]); OUT gets eps\n"
          "  generate MODEL_DIR [-n N] [--steps S] [--sampler ddpm|ddim]\n"
          "           [--eta E] [--seed K] -o OUT.png\n"
          "                                  sample N images from noise into a grid\n"
          "--device D: index or name substring (also DDPM_DEVICE)\n");
  return 2;
}

static ddpm_context *open_context(GError **err) {
  ddpm_context_params cp = ddpm_context_default_params();
  cp.device = device_opt;
  return ddpm_context_new(&cp, err);
}

static int cmd_devices(void) {
  GError *err = NULL;
  size_t n = 0;
  ddpm_device_info *d = ddpm_list_devices(&n, &err);
  if (!d) return fail(err);
  for (size_t i = 0; i < n; i++)
    printf("%zu: %s (%s), %.0f MiB device-local, Vulkan %u.%u, subgroup %u%s\n",
           i, d[i].name, ddpm_device_type_name(d[i].type),
           d[i].device_local_bytes / 1048576.0, d[i].api_version >> 22,
           (d[i].api_version >> 12) & 0x3ff, d[i].subgroup_size,
           d[i].fp16_storage ? ", fp16 storage" : "");
  if (n == 0) printf("no Vulkan devices\n");
  g_free(d);
  return 0;
}

static int cmd_info(const char *dir) {
  GError *err = NULL;
  ddpm_context *ctx = open_context(&err);
  if (!ctx) return fail(err);
  ddpm_model *m = ddpm_model_load(ctx, dir, &err);
  if (!m) {
    ddpm_context_free(ctx);
    return fail(err);
  }
  ddpm_model_info info;
  ddpm_model_get_info(m, &info);
  printf("model:        %s\n", dir);
  printf("device:       %s\n", ddpm_context_device(ctx)->name);
  printf("sample:       %d channel(s) in, %d out, %dx%d\n", info.in_channels,
         info.out_channels, info.sample_size, info.sample_size);
  printf("channels:     [");
  for (int i = 0; i < info.n_levels; i++)
    printf("%s%d", i ? ", " : "", info.block_out_channels[i]);
  printf("], %d layer(s) per block\n", info.layers_per_block);
  printf("parameters:   %" G_GUINT64_FORMAT " (%.2f M), stored as %s\n",
         info.n_params, info.n_params / 1e6, info.weight_dtype);
  printf("kernels:      %zu dispatches per forward\n", info.n_nodes);
  int size = info.sample_size > 0 ? info.sample_size : 32;
  for (int b = 1; b <= 4; b *= 4) {
    uint64_t bytes = ddpm_model_memory_estimate(m, b, size, size, &err);
    if (!bytes) break;
    printf("memory:       %.1f MiB on the device at batch %d (weights %.1f MiB)\n",
           bytes / 1048576.0, b, info.weight_bytes / 1048576.0);
  }
  g_clear_error(&err);
  ddpm_model_free(m);
  ddpm_context_free(ctx);
  return 0;
}

static int cmd_eps(const char *dir, const char *in_path, const char *out_path) {
  GError *err = NULL;
  st_file *in = st_open(in_path, &err);
  if (!in) return fail(err);
  const st_tensor *tx = st_find(in, "x"), *tt = st_find(in, "t");
  if (!tx || !tt || tx->ndim != 4 || tt->ndim != 1 ||
      tt->shape[0] != tx->shape[0] || tx->shape[0] < 1 || tx->shape[0] > 4096 ||
      tx->shape[1] < 1 || tx->shape[1] > 64 || tx->shape[2] > 16384 ||
      tx->shape[3] > 16384) {
    fprintf(stderr, "ddpm: %s: needs tensors x [B,C,H,W] and t [B] "
            "(B <= 4096, C <= 64, H, W <= 16384)\n", in_path);
    st_close(in);
    return 1;
  }
  int n = (int)tx->shape[0], c = (int)tx->shape[1], h = (int)tx->shape[2],
      w = (int)tx->shape[3];
  float *x = g_new(float, tx->n_elements);
  int64_t *t = g_new(int64_t, n);
  float *eps = NULL;
  ddpm_context *ctx = NULL;
  ddpm_model *m = NULL;
  int rc = 1;
  if (!st_read_f32(in, tx, x, &err) || !st_read_i64(in, tt, t, &err)) goto out;
  if (!(ctx = open_context(&err)) || !(m = ddpm_model_load(ctx, dir, &err)))
    goto out;
  ddpm_model_info info;
  ddpm_model_get_info(m, &info);
  if (c != info.in_channels) {
    g_set_error(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "%s: x has %d channels, the model takes %d", in_path, c,
                info.in_channels);
    goto out;
  }
  eps = g_new(float, (size_t)n * info.out_channels * h * w);
  if (!ddpm_model_forward(m, x, t, n, h, w, eps, &err)) goto out;
  st_out_tensor o = {.name = "eps", .dtype = ST_F32, .ndim = 4,
                     .shape = {n, info.out_channels, h, w}, .data = eps};
  if (!st_write(out_path, &o, 1, &err)) goto out;
  rc = 0;
out:
  if (rc) fail(err);
  g_free(x);
  g_free(t);
  g_free(eps);
  ddpm_model_free(m);
  ddpm_context_free(ctx);
  st_close(in);
  return rc;
}

/* A progress line with steps/s and ETA, on a terminal only. */
typedef struct {
  gint64 start;
  bool tty;
} progress_state;

static bool on_progress(const ddpm_progress *p, void *user) {
  progress_state *ps = user;
  if (!ps->tty) return true;
  double el = (g_get_monotonic_time() - ps->start) / 1e6;
  double rate = p->step / (el > 0 ? el : 1e-9);
  int width = 30, done = p->total ? width * p->step / p->total : width;
  fprintf(stderr, "\r[%.*s%*s] %d/%d t=%-4d %.2f steps/s ETA %.0fs ",
          done, "##############################", width - done, "", p->step,
          p->total, p->t, rate, (p->total - p->step) / (rate > 0 ? rate : 1));
  if (p->step == p->total) fputc('\n', stderr);
  return true;
}

static int cmd_generate(int argc, char **argv) {
  int n = 1, steps = 0;
  double eta = 0.0;
  gint64 seed = -1;
  char *sampler = NULL, *out = NULL;
  GOptionEntry entries[] = {
    {"num", 'n', 0, G_OPTION_ARG_INT, &n, "Number of images (batch)", "N"},
    {"steps", 0, 0, G_OPTION_ARG_INT, &steps, "Steps (default 1000 ddpm, 50 ddim)", "S"},
    {"sampler", 0, 0, G_OPTION_ARG_STRING, &sampler, "ddpm or ddim", "NAME"},
    {"eta", 0, 0, G_OPTION_ARG_DOUBLE, &eta, "DDIM eta in [0, 1]", "E"},
    {"seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed (default: random)", "K"},
    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Output PNG", "OUT.png"},
    {NULL}};
  GOptionContext *oc = g_option_context_new("MODEL_DIR - sample images from noise");
  g_option_context_add_main_entries(oc, entries, NULL);
  GError *err = NULL;
  int rc = 1;
  ddpm_context *ctx = NULL;
  ddpm_model *m = NULL;
  float *img = NULL;
  if (!g_option_context_parse(oc, &argc, &argv, &err)) goto out;
  if (argc != 2 || !out) {
    g_set_error(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "generate: give one MODEL_DIR and -o OUT.png");
    goto out;
  }
  ddpm_sample_params p = ddpm_sample_default_params();
  if (sampler && !strcmp(sampler, "ddim")) p.sampler = DDPM_SAMPLER_DDIM;
  else if (sampler && strcmp(sampler, "ddpm")) {
    g_set_error(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "--sampler: '%s' is not ddpm or ddim", sampler);
    goto out;
  }
  p.steps = steps ? steps : p.sampler == DDPM_SAMPLER_DDIM ? 50 : 1000;
  p.eta = (float)eta;
  p.batch = n;
  p.seed = seed >= 0 ? (uint64_t)seed : g_random_int();
  progress_state ps = {g_get_monotonic_time(), isatty(STDERR_FILENO)};
  p.progress = on_progress;
  p.user = &ps;
  if (!(ctx = open_context(&err)) || !(m = ddpm_model_load(ctx, argv[1], &err)))
    goto out;
  ddpm_model_info info;
  ddpm_model_get_info(m, &info);
  if (ddpm_sample_steps_run(m, &p, &err) < 0) goto out;
  int size = info.sample_size > 0 ? info.sample_size : 32;
  img = g_new(float, (size_t)n * info.in_channels * size * size);
  if (!ddpm_sample(m, &p, img, &err)) goto out;
  int cols = (int)ceil(sqrt((double)n));
  if (!png_write_grid(out, img, n, info.out_channels, size, size, cols, &err))
    goto out;
  printf("%s: %d image%s, %s, %d steps, seed %" G_GUINT64_FORMAT ", %.1f s\n",
         out, n, n == 1 ? "" : "s", p.sampler == DDPM_SAMPLER_DDIM ? "DDIM" : "DDPM",
         p.steps, p.seed, (g_get_monotonic_time() - ps.start) / 1e6);
  rc = 0;
out:
  if (rc) fail(err);
  g_free(img);
  ddpm_model_free(m);
  ddpm_context_free(ctx);
  g_free(sampler);
  g_free(out);
  g_option_context_free(oc);
  return rc;
}

int main(int argc, char **argv) {
  int i = 1;
  while (i < argc && argv[i][0] == '-') {
    if (!strcmp(argv[i], "--device") && i + 1 < argc) {
      device_opt = argv[i + 1];
      i += 2;
    } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage();
      return 0;
    } else {
      return usage();
    }
  }
  if (i >= argc) return usage();
  const char *cmd = argv[i++];
  if (!strcmp(cmd, "devices")) return cmd_devices();
  if (!strcmp(cmd, "generate")) return cmd_generate(argc - i + 1, argv + i - 1);
  if (!strcmp(cmd, "info") && i + 1 == argc) return cmd_info(argv[i]);
  if (!strcmp(cmd, "eps") && i < argc) {
    const char *dir = argv[i++], *in = NULL, *out = NULL;
    for (; i + 1 < argc; i += 2) {
      if (!strcmp(argv[i], "--in")) in = argv[i + 1];
      else if (!strcmp(argv[i], "--out")) out = argv[i + 1];
      else return usage();
    }
    if (i != argc || !in || !out) return usage();
    return cmd_eps(dir, in, out);
  }
  return usage();
}
