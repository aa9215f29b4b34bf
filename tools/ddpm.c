/* ddpm — command-line front end of libddpm.
 *
 *   ddpm devices
 *   ddpm info MODEL_DIR
 *   ddpm eps MODEL_DIR --in IN.safetensors --out OUT.safetensors
 *   ddpm generate [MODEL] [-n N] [--steps S] [--sampler ddpm|ddim] ... -o OUT.png
 *   ddpm generate ... --stop-at STEP --save-state S.safetensors
 *   ddpm generate [MODEL] --resume S.safetensors [--seed K] -o OUT.png
 *   ddpm nll [MODEL] IMAGE.png... [--timesteps K] [--seed S]
 *   ddpm sdedit [MODEL] IN.png [--mask M.png] [--strength S | --t0 T] ...
 *   ddpm denoise [MODEL] IN.png [--sigma S] ...
 *   ddpm interpolate [MODEL] A.png B.png [--t T] [--frames N] ...  (cmd_interpolate.c)
 *   ddpm progressive [MODEL] [--every K] [--finishes N] ...        (cmd_progressive.c)
 *
 * Everything goes through include/ddpm/ddpm.h; the safetensors reader and
 * writer (a file-format utility of the library) serve `eps`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <json-glib/json-glib.h>

#include "cli.h"
#include "ddpm/ddpm.h"
#include "model/safetensors.h"
#include "png_io.h"

static const char *device_opt;
static bool fp16_weights_opt;

int fail(GError *err) {
  fprintf(stderr, "ddpm: %s\n", err ? err->message : "failed");
  g_clear_error(&err);
  return 1;
}

static int usage(void) {
  fprintf(stderr,
          "usage: ddpm [--device D] [--fp16-weights] COMMAND ...\n"
          "  devices                         list Vulkan devices\n"
          "  info MODEL_DIR                  describe a diffusers UNet2DModel folder\n"
          "  eps MODEL_DIR --in IN.safetensors --out OUT.safetensors\n"
          "                                  one U-Net evaluation: IN holds x (F32\n"
          "                                  [B,C,H,W]) and t (I64 [B]); OUT gets eps\n"
          "  models                          list the default model and the\n"
          "                                  Hugging Face cache's UNet2DModels\n"
          "  generate [MODEL] [-n N] [--steps S] [--sampler ddpm|ddim]\n"
          "           [--eta E] [--seed K] -o OUT.png\n"
          "                                  sample N images from noise into a grid\n"
          "  generate ... --stop-at STEP --save-state S.safetensors\n"
          "  generate [MODEL] --resume S.safetensors [--seed K] -o OUT.png\n"
          "                                  interrupt a run and finish it later\n"
          "  sdedit [MODEL] IN.png [--mask M.png] [--strength S | --t0 T]\n"
          "           [--harmonize R] -o OUT.png\n"
          "                                  re-imagine an image (or its masked part)\n"
          "  denoise [MODEL] IN.png [--sigma S] -o OUT.png\n"
          "                                  remove Gaussian noise (sigma estimated)\n"
          "  interpolate [MODEL] A.png B.png [--t T] [--frames N] [--slerp]\n"
          "           -o STRIP.png [--frames-dir DIR]\n"
          "                                  frames between two pictures through x_t\n"
          "  progressive [MODEL] [--every K] [--finishes N] -o GRID.png\n"
          "                                  x_t, predicted x0 and N finishes every\n"
          "                                  K steps of one run\n"
          "  nll [MODEL] IMAGE.png... [--timesteps K] [--seed S]\n"
          "                                  variational bound in bits/dim (K < T:\n"
          "                                  an estimate with its standard error)\n"
          "  sampling commands also take --noise N.safetensors, --trajectory\n"
          "  T.safetensors, --previews DIR --every K; see COMMAND --help\n"
          "MODEL: a diffusers folder, an org/name in the Hugging Face cache, or\n"
          "  nothing for the installed default model\n"
          "--device D: index or name substring (also DDPM_DEVICE)\n"
          "--fp16-weights: convolution weights as halves, half the memory,\n"
          "  about 1e-3 relative difference (also DDPM_FP16_WEIGHTS=1)\n");
  return 2;
}

static ddpm_context *open_context(GError **err) {
  ddpm_context_params cp = ddpm_context_default_params();
  cp.device = device_opt;
  cp.fp16_weights = fp16_weights_opt;
  return ddpm_context_new(&cp, err);
}

/* See cli.h. */
ddpm_model *open_model(const char *spec, char **dir, ddpm_context **ctx,
                       int *size, int *c, GError **err) {
  ddpm_model *m = NULL;
  if (!(*dir = ddpm_resolve_model(spec, err)) || !(*ctx = open_context(err)) ||
      !(m = ddpm_model_load(*ctx, *dir, err)))
    return NULL;
  ddpm_model_info info;
  ddpm_model_get_info(m, &info);
  *size = info.sample_size > 0 ? info.sample_size : 32;
  *c = info.in_channels;
  return m;
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

static int cmd_models(void) {
  const char *def = ddpm_default_model_dir();
  printf("default: %s%s\n", def,
         g_file_test(def, G_FILE_TEST_IS_DIR) ? "" : " (not installed)");
  size_t n = 0;
  ddpm_model_entry *e = ddpm_find_models(&n);
  for (size_t i = 0; i < n; i++) printf("%s: %s\n", e[i].name, e[i].path);
  ddpm_model_entries_free(e, n);
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

/* ---- sampling commands --------------------------------------------------- */

typedef struct {
  int n, steps, every, resample, stop_at;
  double eta, strength, sigma;
  gint64 seed, t0;
  char *sampler, *out, *noise, *trajectory, *previews, *mask;
  char *save_state, *resume;
} sample_opts;

static GOptionEntry *sample_entries(sample_opts *o, bool image_input) {
  static GOptionEntry e[24];
  int k = 0;
  e[k++] = (GOptionEntry){"steps", 0, 0, G_OPTION_ARG_INT, &o->steps,
                          "Steps of the grid (default 1000 ddpm, 50 ddim)", "S"};
  e[k++] = (GOptionEntry){"sampler", 0, 0, G_OPTION_ARG_STRING, &o->sampler,
                          "ddpm (default) or ddim", "NAME"};
  e[k++] = (GOptionEntry){"eta", 0, 0, G_OPTION_ARG_DOUBLE, &o->eta, "DDIM eta in [0, 1]", "E"};
  e[k++] = (GOptionEntry){"seed", 0, 0, G_OPTION_ARG_INT64, &o->seed, "Seed (default: random)", "K"};
  e[k++] = (GOptionEntry){"output", 'o', 0, G_OPTION_ARG_FILENAME, &o->out, "Output PNG", "OUT.png"};
  e[k++] = (GOptionEntry){"noise", 0, 0, G_OPTION_ARG_FILENAME, &o->noise,
                          "Use the noises (and inputs) of this safetensors file", "N.safetensors"};
  e[k++] = (GOptionEntry){"trajectory", 0, 0, G_OPTION_ARG_FILENAME, &o->trajectory,
                          "Write traj [steps,B,C,H,W] and x0 here", "T.safetensors"};
  e[k++] = (GOptionEntry){"previews", 0, 0, G_OPTION_ARG_FILENAME, &o->previews,
                          "Write x_t and predicted x0 PNGs into this folder", "DIR"};
  e[k++] = (GOptionEntry){"every", 0, 0, G_OPTION_ARG_INT, &o->every, "Preview every K steps", "K"};
  e[k++] = (GOptionEntry){"stop-at", 0, 0, G_OPTION_ARG_INT, &o->stop_at,
                          "Stop after STEP steps (with --save-state)", "STEP"};
  e[k++] = (GOptionEntry){"save-state", 0, 0, G_OPTION_ARG_FILENAME, &o->save_state,
                          "Write the interrupted run's state here (finish it with "
                          "generate --resume)", "S.safetensors"};
  if (!image_input) {
    e[k++] = (GOptionEntry){"num", 'n', 0, G_OPTION_ARG_INT, &o->n, "Number of images", "N"};
    e[k++] = (GOptionEntry){"resume", 0, 0, G_OPTION_ARG_FILENAME, &o->resume,
                            "Finish the run saved in this state file", "S.safetensors"};
  } else {
    e[k++] = (GOptionEntry){"mask", 0, 0, G_OPTION_ARG_FILENAME, &o->mask,
                            "Grey PNG: white = regenerate, black = keep", "M.png"};
    e[k++] = (GOptionEntry){"strength", 0, 0, G_OPTION_ARG_DOUBLE, &o->strength,
                            "Start at strength * num_train_timesteps, in (0, 1]", "S"};
    e[k++] = (GOptionEntry){"t0", 0, 0, G_OPTION_ARG_INT64, &o->t0, "Start timestep", "T"};
    e[k++] = (GOptionEntry){"harmonize", 0, 0, G_OPTION_ARG_INT, &o->resample,
                            "RePaint resamples per step (1 = plain SDEdit)", "R"};
    e[k++] = (GOptionEntry){"sigma", 0, 0, G_OPTION_ARG_DOUBLE, &o->sigma,
                            "denoise: noise sigma in 8-bit pixel units (default: estimated)", "S"};
  }
  e[k] = (GOptionEntry){NULL};
  return e;
}

bool on_progress(const ddpm_progress *p, void *user) {
  run_state *rs = user;
  if (p->x_t && rs->previews) {
    const float *imgs[2] = {p->x_t, p->x0_pred};
    const char *what[2] = {"xt", "x0"};
    for (int i = 0; i < 2 && !rs->error; i++) {
      char *name = g_strdup_printf("step%04d_t%04d_%s.png", p->step, p->t, what[i]);
      char *path = g_build_filename(rs->previews, name, NULL);
      png_write_grid(path, imgs[i], rs->batch, rs->c, rs->h, rs->w,
                     (int)ceil(sqrt((double)rs->batch)), &rs->error);
      g_free(name);
      g_free(path);
    }
    if (rs->error) return false;
  }
  if (!rs->tty) return true;
  double el = (g_get_monotonic_time() - rs->start) / 1e6;
  double rate = p->step / (el > 0 ? el : 1e-9);
  int width = 30, done = p->total ? width * p->step / p->total : width;
  fprintf(stderr, "\r[%.*s%*s] %d/%d t=%-4d %.2f steps/s ETA %.0fs ",
          done, "##############################", width - done, "", p->step,
          p->total, p->t, rate, (p->total - p->step) / (rate > 0 ? rate : 1));
  if (p->step == p->total) fputc('\n', stderr);
  return true;
}

/* A float tensor of the noise file, checked against the expected count. */
static float *noise_tensor(st_file *f, const char *name, size_t count,
                           bool required, GError **err) {
  if (!f) return NULL;
  const st_tensor *t = st_find(f, name);
  if (!t) {
    if (required)
      g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                  "%s: no tensor '%s'", st_path(f), name);
    return NULL;
  }
  if (count && t->n_elements != count) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "%s: tensor '%s' has %" G_GUINT64_FORMAT " values, expected %zu",
                st_path(f), name, t->n_elements, count);
    return NULL;
  }
  float *v = g_new(float, t->n_elements ? t->n_elements : 1);
  if (!st_read_f32(f, t, v, err)) {
    g_free(v);
    return NULL;
  }
  return v;
}

typedef enum { MODE_GENERATE, MODE_SDEDIT, MODE_DENOISE } run_mode;

/* Image in [-1, 1], planar, converted to the model's channel count. */
static float *to_model_channels(const png_image_f *img, int c) {
  float *out = g_new(float, (size_t)img->h * img->w * c);
  ddpm_convert_channels(img->data, img->c, out, c, (size_t)img->h * img->w);
  return out;
}

static int cmd_sample(run_mode mode, int argc, char **argv) {
  sample_opts o = {.n = -1, .steps = -1, .seed = -1, .t0 = -1, .resample = 1,
                   .eta = NAN};
  const char *what = mode == MODE_GENERATE ? "[MODEL] - sample images from noise"
                   : mode == MODE_SDEDIT ? "[MODEL] [IN.png] - re-imagine an image (SDEdit)"
                                         : "[MODEL] IN.png - denoise an image";
  GOptionContext *oc = g_option_context_new(what);
  g_option_context_add_main_entries(oc, sample_entries(&o, mode != MODE_GENERATE), NULL);
  GError *err = NULL;
  int rc = 1;
  ddpm_context *ctx = NULL;
  ddpm_model *m = NULL;
  st_file *nf = NULL;
  png_image_f in = {0}, maskimg = {0};
  float *init = NULL, *mask = NULL, *res = NULL, *traj = NULL;
  float *n_start = NULL, *n_steps = NULL, *n_known = NULL;
  char *model_dir = NULL;
  ddpm_state *resumed = NULL;
  ddpm_sample_params p = ddpm_sample_default_params();
  if (!g_option_context_parse(oc, &argc, &argv, &err)) goto out;
  /* MODEL is optional (the installed default); a lone argument of sdedit
   * or denoise that is a file is the picture. */
  const char *model_spec = NULL, *png_path = NULL;
  if (argc == 3) model_spec = argv[1], png_path = argv[2];
  else if (argc == 2 && mode != MODE_GENERATE &&
           g_file_test(argv[1], G_FILE_TEST_IS_REGULAR)) png_path = argv[1];
  else if (argc == 2) model_spec = argv[1];
  bool have_png = png_path != NULL;
  if (argc > 3 || (mode == MODE_GENERATE && have_png) ||
      (mode == MODE_DENOISE && !have_png)) {
    g_set_error(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "wrong arguments; see ddpm %s --help", argv[0]);
    goto out;
  }
  if (!o.out && !o.trajectory && !o.save_state) {
    g_set_error_literal(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                        "give -o OUT.png (or --trajectory T.safetensors)");
    goto out;
  }
  if ((o.stop_at != 0) != (o.save_state != NULL)) {
    g_set_error_literal(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                        "--stop-at and --save-state go together");
    goto out;
  }
  if ((o.resume || o.save_state) && (o.noise || o.trajectory)) {
    g_set_error_literal(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                        "--resume and --save-state cannot be combined with "
                        "--noise or --trajectory");
    goto out;
  }
  if (o.resume) {
    const char *given = o.steps >= 0 ? "--steps" : o.sampler ? "--sampler"
                      : !isnan(o.eta) ? "--eta" : o.n >= 0 ? "-n" : NULL;
    if (given) {
      g_set_error(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                  "--resume: %s comes from the state file", given);
      goto out;
    }
    if (!(resumed = ddpm_state_load(o.resume, &err))) goto out;
    if (!model_spec) model_spec = resumed->model;
  }
  if (o.sampler && !strcmp(o.sampler, "ddim")) p.sampler = DDPM_SAMPLER_DDIM;
  else if (o.sampler && strcmp(o.sampler, "ddpm")) {
    g_set_error(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "--sampler: '%s' is not ddpm or ddim", o.sampler);
    goto out;
  }
  p.steps = o.steps >= 0 ? o.steps : p.sampler == DDPM_SAMPLER_DDIM ? 50 : 1000;
  p.eta = isnan(o.eta) ? 0.0f : (float)o.eta;
  p.seed = o.seed >= 0 ? (uint64_t)o.seed : g_random_int();
  p.resample = o.resample;
  if (o.noise && !(nf = st_open(o.noise, &err))) goto out;
  int size, c;
  if (!(m = open_model(model_spec, &model_dir, &ctx, &size, &c, &err))) goto out;
  size_t item = (size_t)c * size * size;
  if (resumed) {
    if (!ddpm_state_resume_params(resumed, m, &p, &err)) {
      g_prefix_error(&err, "%s: ", o.resume);
      goto out;
    }
    if (o.seed >= 0) p.seed = (uint64_t)o.seed;
    printf("resuming %s at step %d of %d (t = %d), seed %" G_GUINT64_FORMAT "%s\n",
           o.resume, resumed->step, resumed->steps, resumed->t, p.seed,
           p.seed == resumed->seed ? "" : " (a new branch)");
  }

  /* The input: a PNG, or (with --noise) the file's sdedit.x0_in. */
  if (mode != MODE_GENERATE) {
    if (have_png) {
      if (!png_read_float(png_path, &in, &err)) goto out;
      float *planes = to_model_channels(&in, c);
      init = g_new(float, item);
      ddpm_resize(planes, c, in.h, in.w, init, size, size);
      g_free(planes);
      p.batch = 1;
    } else {
      const st_tensor *t = nf ? st_find(nf, "sdedit.x0_in") : NULL;
      if (!t || t->ndim != 4 || t->shape[1] != c || t->shape[2] != size ||
          t->shape[3] != size || t->shape[0] < 1 || t->shape[0] > 4096) {
        g_set_error(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                    "no input image: give IN.png, or --noise with sdedit.x0_in "
                    "[B, %d, %d, %d]", c, size, size);
        goto out;
      }
      p.batch = (int)t->shape[0];
      if (!(init = noise_tensor(nf, "sdedit.x0_in", 0, true, &err))) goto out;
    }
    p.init = init;
    if (o.mask) {
      if (!have_png) {
        g_set_error_literal(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                            "--mask needs an input PNG");
        goto out;
      }
      if (!png_read_float(o.mask, &maskimg, &err)) goto out;
      if (maskimg.w != in.w || maskimg.h != in.h) {
        g_set_error(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                    "%s: mask is %dx%d, the image %dx%d", o.mask, maskimg.w,
                    maskimg.h, in.w, in.h);
        goto out;
      }
      for (size_t i = 0; i < (size_t)in.w * in.h; i++)
        maskimg.data[i] = (maskimg.data[i] + 1) / 2; /* [0, 1] */
      mask = g_new(float, (size_t)size * size);
      ddpm_resize(maskimg.data, 1, in.h, in.w, mask, size, size);
    } else if (!have_png && st_find(nf, "sdedit.mask")) {
      if (!(mask = noise_tensor(nf, "sdedit.mask", (size_t)size * size, true, &err)))
        goto out;
    }
    p.mask = mask;
    if (mode == MODE_SDEDIT) {
      if (o.t0 >= 0 && o.strength != 0) {
        g_set_error_literal(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                            "give --strength or --t0, not both");
        goto out;
      }
      if (o.t0 < 0 && o.strength == 0) o.strength = 0.5;
      p.t0 = o.t0 >= 0 ? (int)MIN(o.t0, G_MAXINT) : -1;
      p.strength = (float)o.strength;
    } else {
      float sigma = o.sigma > 0 ? (float)(o.sigma / 127.5) : 0;
      if (o.sigma < 0) {
        g_set_error(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                    "--sigma must be positive");
        goto out;
      }
      if (sigma == 0) {
        float *planes = to_model_channels(&in, c);
        sigma = ddpm_estimate_noise_sigma(planes, c, in.h, in.w);
        g_free(planes);
        printf("estimated noise sigma: %.2f (8-bit units)\n", sigma * 127.5);
      }
      if (sigma <= 0) sigma = 1e-3f;
      p.denoise_sigma = sigma;
      printf("denoising from t = %d\n", ddpm_denoise_start_timestep(m, p.steps, sigma));
    }
  } else {
    if (!resumed) p.batch = o.n >= 0 ? o.n : 1;
    if (nf) {
      const char *xn = p.sampler == DDPM_SAMPLER_DDIM ? "ddim.x_T" : "ddpm.x_T";
      const st_tensor *t = st_find(nf, xn);
      if (t && t->ndim == 4 && t->shape[1] == c && t->shape[2] == size &&
          t->shape[3] == size && t->shape[0] >= 1 && t->shape[0] <= 4096)
        p.batch = (int)t->shape[0];
    }
  }
  int steps_run = ddpm_sample_steps_run(m, &p, &err);
  if (steps_run < 0) goto out;
  if (o.save_state) {
    if (o.stop_at <= p.start_step || o.stop_at >= steps_run) {
      g_set_error(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                  "--stop-at %d out of range %d..%d", o.stop_at,
                  p.start_step + 1, steps_run - 1);
      goto out;
    }
    p.stop_step = o.stop_at;
  }
  size_t total = item * p.batch;
  if (nf) {
    const char *start = mode == MODE_GENERATE
      ? (p.sampler == DDPM_SAMPLER_DDIM ? "ddim.x_T" : "ddpm.x_T") : "sdedit.noise_init";
    const char *stepn = mode == MODE_GENERATE ? "ddpm.noise" : "sdedit.step_noise";
    if (!(n_start = noise_tensor(nf, start, total, true, &err))) goto out;
    bool need_steps = p.sampler == DDPM_SAMPLER_DDPM || p.eta > 0;
    n_steps = noise_tensor(nf, stepn, total * steps_run, need_steps && mode != MODE_DENOISE, &err);
    if (err) goto out;
    if (mode == MODE_SDEDIT && p.mask &&
        !(n_known = noise_tensor(nf, "sdedit.known_noise", total * steps_run, true, &err)))
      goto out;
    if (mode == MODE_DENOISE) g_clear_pointer(&n_start, g_free);
    p.noise_start = n_start;
    p.noise_steps = n_steps;
    p.noise_known = n_known;
  }
  if (o.trajectory) p.trajectory = traj = g_new(float, total * steps_run);
  run_state rs = {g_get_monotonic_time(), isatty(STDERR_FILENO), o.previews,
                  p.batch, c, size, size, NULL};
  if (o.previews) {
    if (g_mkdir_with_parents(o.previews, 0755) != 0) {
      g_set_error(&err, DDPM_ERROR, DDPM_ERROR_IO, "%s: cannot create folder", o.previews);
      goto out;
    }
    p.preview_every = o.every > 0 ? o.every : MAX(1, steps_run / 10);
  }
  p.progress = on_progress;
  p.user = &rs;
  res = g_new(float, total);
  if (!ddpm_sample(m, &p, res, &err)) {
    if (rs.error) {
      g_clear_error(&err);
      err = rs.error;
    }
    goto out;
  }
  double secs = (g_get_monotonic_time() - rs.start) / 1e6;
  if (o.save_state) {
    ddpm_state *st = ddpm_state_new(m, model_dir, &p, p.stop_step, res, &err);
    bool ok = st && ddpm_state_save(st, o.save_state, &err);
    if (ok)
      printf("%s: stopped after %d of %d steps (next t = %d), seed %" G_GUINT64_FORMAT
             ", %.1f s\n", o.save_state, p.stop_step, steps_run, st->t, p.seed, secs);
    ddpm_state_free(st);
    if (!ok) goto out;
    if (o.out && !png_write_grid(o.out, res, p.batch, c, size, size,
                                 (int)ceil(sqrt((double)p.batch)), &err))
      goto out;
    rc = 0;
    goto out;
  }
  if (o.trajectory) {
    st_out_tensor t[2] = {
      {.name = "traj", .dtype = ST_F32, .ndim = 5,
       .shape = {steps_run, p.batch, c, size, size}, .data = traj},
      {.name = "x0", .dtype = ST_F32, .ndim = 4,
       .shape = {p.batch, c, size, size}, .data = res}};
    if (!st_write(o.trajectory, t, 2, &err)) goto out;
  }
  if (o.out && mode != MODE_GENERATE && have_png) {
    /* Back to the picture's size; pixels outside the mask stay as they were. */
    png_image_f outimg = in;
    size_t hw = (size_t)in.w * in.h;
    float *big = g_new(float, (size_t)c * hw);
    ddpm_resize(res, c, size, size, big, in.h, in.w);
    outimg.data = g_new(float, (size_t)in.c * hw);
    for (size_t i = 0; i < hw; i++)
      for (int k = 0; k < in.c; k++) {
        float v = big[(c == in.c ? k : 0) * hw + i];
        float mk = maskimg.data ? maskimg.data[i] : 1.0f;
        float orig = in.data[k * hw + i];
        outimg.data[k * hw + i] = mk >= 1.0f ? v : mk <= 0.0f ? orig : mk * v + (1 - mk) * orig;
      }
    bool ok = png_write_float(o.out, &outimg, &err);
    g_free(outimg.data);
    g_free(big);
    if (!ok) goto out;
  } else if (o.out) {
    if (!png_write_grid(o.out, res, p.batch, c, size, size,
                        (int)ceil(sqrt((double)p.batch)), &err))
      goto out;
  }
  printf("%s: %d image%s, %s, %d of %d steps, seed %" G_GUINT64_FORMAT ", %.1f s\n",
         o.out ? o.out : o.trajectory, p.batch, p.batch == 1 ? "" : "s",
         p.sampler == DDPM_SAMPLER_DDIM ? "DDIM" : "DDPM", steps_run, p.steps,
         p.seed, secs);
  rc = 0;
out:
  if (rc) fail(err);
  else g_clear_error(&err);
  g_free(model_dir);
  ddpm_state_free(resumed);
  g_free(init); g_free(mask); g_free(res); g_free(traj);
  g_free(n_start); g_free(n_steps); g_free(n_known);
  png_image_clear(&in);
  png_image_clear(&maskimg);
  st_close(nf);
  ddpm_model_free(m);
  ddpm_context_free(ctx);
  g_free(o.sampler); g_free(o.out); g_free(o.noise); g_free(o.trajectory);
  g_free(o.previews); g_free(o.mask);
  g_free(o.save_state); g_free(o.resume);
  g_option_context_free(oc);
  return rc;
}


/* ---- nll: the variational bound in bits/dim ------------------------------ */

static bool on_nll_progress(const ddpm_progress *p, void *user) {
  run_state *rs = user;
  if (!rs->tty) return true;
  double el = (g_get_monotonic_time() - rs->start) / 1e6;
  double rate = p->step / (el > 0 ? el : 1e-9);
  int width = 30, done = p->total ? width * p->step / p->total : width;
  fprintf(stderr, "\r[%.*s%*s] %d/%d U-Net evaluations, %.1f/s ETA %.0fs ",
          done, "##############################", width - done, "", p->step,
          p->total, rate, (p->total - p->step) / (rate > 0 ? rate : 1));
  if (p->step == p->total) fputc('\n', stderr);
  return true;
}

static int cmd_nll(int argc, char **argv) {
  int timesteps = 0, chunk = 0;
  gint64 seed = 0;
  GOptionEntry entries[] = {
    {"timesteps", 0, 0, G_OPTION_ARG_INT, &timesteps,
     "U-Net evaluations per image K (3..T; default all T: the exact bound)", "K"},
    {"seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of the noise and the timesteps (default 0)", "S"},
    {"chunk", 0, 0, G_OPTION_ARG_INT, &chunk, "U-Net batch size (default 16)", "N"},
    {NULL}};
  GOptionContext *oc = g_option_context_new(
    "[MODEL] IMAGE.png... - the variational bound (bits/dim) of 8-bit images");
  g_option_context_add_main_entries(oc, entries, NULL);
  GError *err = NULL;
  int rc = 1;
  char *model_dir = NULL;
  ddpm_context *ctx = NULL;
  ddpm_model *m = NULL;
  float *x = NULL;
  ddpm_nll_result *res = NULL;
  if (!g_option_context_parse(oc, &argc, &argv, &err)) goto out;
  /* MODEL is optional: a first argument that is not a file is the model. */
  int first = 1;
  const char *model_spec = NULL;
  if (argc > 1 && !g_file_test(argv[1], G_FILE_TEST_IS_REGULAR)) model_spec = argv[first++];
  int n = argc - first;
  if (n < 1) {
    g_set_error_literal(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                        "give one or more IMAGE.png; see ddpm nll --help");
    goto out;
  }
  if (seed < 0) {
    g_set_error_literal(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG, "--seed must be >= 0");
    goto out;
  }
  int size, c;
  if (!(m = open_model(model_spec, &model_dir, &ctx, &size, &c, &err))) goto out;
  size_t item = (size_t)c * size * size;
  x = g_new(float, item * n);
  for (int i = 0; i < n; i++) {
    png_image_f img = {0};
    const char *path = argv[first + i];
    if (!png_read_float(path, &img, &err)) goto out;
    if (img.w != size || img.h != size) {
      g_set_error(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                  "%s: the image is %dx%d, the model's likelihood is for %dx%d",
                  path, img.w, img.h, size, size);
      png_image_clear(&img);
      goto out;
    }
    ddpm_convert_channels(img.data, img.c, x + i * item, c, (size_t)size * size);
    png_image_clear(&img);
    /* The bound is for 8-bit data: back onto the 256 levels. */
    for (size_t k = 0; k < item; k++) {
      double v = nearbyint(((double)x[i * item + k] + 1.0) * 127.5);
      x[i * item + k] = (float)(CLAMP(v, 0.0, 255.0) / 127.5 - 1.0);
    }
  }
  ddpm_nll_params p = ddpm_nll_default_params();
  p.timesteps = timesteps;
  p.seed = (uint64_t)seed;
  p.chunk = chunk;
  run_state rs = {g_get_monotonic_time(), isatty(STDERR_FILENO), NULL, n, c, size, size, NULL};
  p.progress = on_nll_progress;
  p.user = &rs;
  res = g_new0(ddpm_nll_result, n);
  ddpm_nll_result mean;
  if (!ddpm_nll(m, x, n, size, size, &p, res, &mean, NULL, &err)) goto out;
  double secs = (g_get_monotonic_time() - rs.start) / 1e6;
  bool exact = timesteps == 0 || (res[0].se == 0 && res[0].n_terms <= timesteps);
  for (int i = 0; i < n; i++) {
    printf("%s: %.4f", argv[first + i], res[i].bpd);
    if (!exact) printf(" +- %.4f", res[i].se);
    printf(" bits/dim (prior %.5f, decoder %.4f)\n", res[i].prior, res[i].decoder);
  }
  printf("mean of %d: %.4f", n, mean.bpd);
  if (!exact) printf(" +- %.4f", mean.se);
  printf(" bits/dim, %s, %d U-Net evaluations per image, seed %" G_GINT64_FORMAT
         ", %.1f s\n", exact ? "all timesteps" : "estimate", res[0].n_terms, seed, secs);
  rc = 0;
out:
  if (rc) fail(err);
  g_free(model_dir);
  g_free(x);
  g_free(res);
  ddpm_model_free(m);
  ddpm_context_free(ctx);
  g_option_context_free(oc);
  return rc;
}

int main(int argc, char **argv) {
  int i = 1;
  while (i < argc && argv[i][0] == '-') {
    if (!strcmp(argv[i], "--device") && i + 1 < argc) {
      device_opt = argv[i + 1];
      i += 2;
    } else if (!strcmp(argv[i], "--fp16-weights")) {
      fp16_weights_opt = true;
      i++;
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
  if (!strcmp(cmd, "models")) return cmd_models();
  if (!strcmp(cmd, "generate")) return cmd_sample(MODE_GENERATE, argc - i + 1, argv + i - 1);
  if (!strcmp(cmd, "sdedit")) return cmd_sample(MODE_SDEDIT, argc - i + 1, argv + i - 1);
  if (!strcmp(cmd, "denoise")) return cmd_sample(MODE_DENOISE, argc - i + 1, argv + i - 1);
  if (!strcmp(cmd, "nll")) return cmd_nll(argc - i + 1, argv + i - 1);
  if (!strcmp(cmd, "interpolate")) return cmd_interpolate(argc - i + 1, argv + i - 1);
  if (!strcmp(cmd, "progressive")) return cmd_progressive(argc - i + 1, argv + i - 1);
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
