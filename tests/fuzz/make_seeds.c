/* Seed corpora for the fuzz targets, made at run time from the golden model
 * folders (so that no binary blobs live in the repository):
 *   make_seeds GOLDEN_DIR OUT_DIR [EXTRA_MODEL_DIR...]
 * writes OUT_DIR/{safetensors,config,scheduler,png,state}/.  Safetensors seeds are
 * small valid files made of a few tensors of each golden file (the fuzzer
 * works best on inputs of a few KiB). */
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "ddpm/ddpm.h"
#include "model/safetensors.h"
#include "png_io.h"

static const char *out_dir;
static int n_written;

static char *out_path(const char *kind, const char *name) {
  char *dir = g_build_filename(out_dir, kind, NULL);
  g_mkdir_with_parents(dir, 0755);
  char *p = g_build_filename(dir, name, NULL);
  g_free(dir);
  n_written++;
  return p;
}

static void copy_file(const char *src, const char *kind, const char *name) {
  char *data;
  gsize len;
  if (!g_file_get_contents(src, &data, &len, NULL)) return;
  char *dst = out_path(kind, name);
  if (!g_file_set_contents(dst, data, (gssize)len, NULL)) g_error("cannot write %s", dst);
  g_free(dst);
  g_free(data);
}

/* Up to `max` tensors of at most `max_bytes` each, as dtype `as` (ST_F32:
 * as stored). */
static void small_safetensors(st_file *f, const char *name, size_t max,
                              uint64_t max_bytes, st_dtype as) {
  st_out_tensor *out = g_new0(st_out_tensor, max);
  void **bufs = g_new0(void *, max);
  size_t n = 0;
  for (size_t i = 0; i < st_count(f) && n < max; i++) {
    const st_tensor *t = st_tensor_at(f, i);
    if (t->nbytes > max_bytes || t->dtype != ST_F32) continue;
    out[n] = (st_out_tensor){.name = t->name, .dtype = t->dtype, .ndim = t->ndim,
                             .data = st_data(f, t)};
    memcpy(out[n].shape, t->shape, sizeof out[n].shape);
    if (as == ST_F16 || as == ST_BF16) {
      float *v = g_new(float, t->n_elements ? t->n_elements : 1);
      uint16_t *h = g_new(uint16_t, t->n_elements ? t->n_elements : 1);
      if (!st_read_f32(f, t, v, NULL)) g_error("cannot read %s", t->name);
      for (uint64_t k = 0; k < t->n_elements; k++) {
        uint32_t bits;
        memcpy(&bits, &v[k], 4);
        h[k] = as == ST_F16 ? st_f32_to_f16(v[k]) : (uint16_t)(bits >> 16);
      }
      g_free(v);
      out[n].dtype = as;
      out[n].data = bufs[n] = h;
    }
    n++;
  }
  char *dst = out_path("safetensors", name);
  GError *err = NULL;
  if (!st_write(dst, out, n, &err)) g_error("%s", err->message);
  g_free(dst);
  for (size_t i = 0; i < max; i++) g_free(bufs[i]);
  g_free(bufs);
  g_free(out);
}

static void model_dir(const char *dir, const char *tag) {
  static const char *const weights[] = {"diffusion_pytorch_model.safetensors",
                                        "diffusion_pytorch_model.oldkeys.safetensors"};
  char *p, *name;
  p = g_build_filename(dir, "config.json", NULL);
  name = g_strdup_printf("%s.json", tag);
  copy_file(p, "config", name);
  g_free(p);
  g_free(name);
  p = g_build_filename(dir, "scheduler_config.json", NULL);
  name = g_strdup_printf("%s.json", tag);
  copy_file(p, "scheduler", name);
  g_free(p);
  g_free(name);
  for (size_t w = 0; w < G_N_ELEMENTS(weights); w++) {
    p = g_build_filename(dir, weights[w], NULL);
    st_file *f = g_file_test(p, G_FILE_TEST_EXISTS) ? st_open(p, NULL) : NULL;
    g_free(p);
    if (!f) continue;
    static const struct { size_t max; uint64_t bytes; st_dtype as; const char *suffix; } v[] = {
      {1, 64, ST_F32, "1"}, {4, 256, ST_F32, "4"}, {12, 512, ST_F32, "12"},
      {4, 256, ST_F16, "4.f16"}, {4, 256, ST_BF16, "4.bf16"}};
    for (size_t i = 0; i < G_N_ELEMENTS(v); i++) {
      name = g_strdup_printf("%s.%zu.%s.safetensors", tag, w, v[i].suffix);
      small_safetensors(f, name, v[i].max, v[i].bytes, v[i].as);
      g_free(name);
    }
    st_close(f);
  }
}

static void pngs(void) {
  static const struct { int c, w, h, depth; bool alpha; } v[] = {
    {3, 5, 4, 8, false}, {1, 3, 3, 16, true}, {1, 2, 2, 8, false},
    {3, 4, 2, 8, true}, {3, 1, 1, 16, false}};
  for (size_t i = 0; i < G_N_ELEMENTS(v); i++) {
    size_t n = (size_t)v[i].w * v[i].h;
    png_image_f img = {.c = v[i].c, .h = v[i].h, .w = v[i].w,
                       .bit_depth = v[i].depth,
                       .data = g_new(float, n * v[i].c),
                       .alpha = v[i].alpha ? g_new(float, n) : NULL};
    for (size_t k = 0; k < n * v[i].c; k++) img.data[k] = (float)(k % 7) / 3.5f - 1;
    for (size_t k = 0; v[i].alpha && k < n; k++) img.alpha[k] = (float)(k % 2);
    char name[32];
    g_snprintf(name, sizeof name, "seed%zu.png", i);
    char *dst = out_path("png", name);
    GError *err = NULL;
    if (!png_write_float(dst, &img, &err)) g_error("%s", err->message);
    g_free(dst);
    png_image_clear(&img);
  }
}

/* Run states: a generation stopped at step 2 of 4 and a masked SDEdit. */
static void states(void) {
  int ts[4] = {750, 500, 250, 0};
  float x[2 * 3 * 4 * 4], init[2 * 3 * 4 * 4], mask[4 * 4];
  for (size_t i = 0; i < G_N_ELEMENTS(x); i++) x[i] = init[i] = (float)i / 48 - 1;
  for (size_t i = 0; i < G_N_ELEMENTS(mask); i++) mask[i] = (float)(i % 2);
  ddpm_state s = {.model = "default", .sampler = DDPM_SAMPLER_DDIM, .steps = 4,
                  .eta = 0.5f, .seed = 7, .batch = 2, .channels = 3, .height = 4,
                  .width = 4, .step = 2, .t = 250, .t0 = -1, .resample = 1,
                  .timesteps = ts, .x = x};
  for (int k = 0; k < 2; k++) {
    if (k) s.init = init, s.mask = mask, s.t0 = 750, s.resample = 2;
    GBytes *b = ddpm_state_to_bytes(&s);
    gsize len = 0;
    const char *data = g_bytes_get_data(b, &len);
    char *dst = out_path("state", k ? "sdedit.safetensors" : "generate.safetensors");
    if (!g_file_set_contents(dst, data, (gssize)len, NULL)) g_error("cannot write %s", dst);
    g_free(dst);
    g_bytes_unref(b);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s GOLDEN_DIR OUT_DIR [MODEL_DIR...]\n", argv[0]);
    return 2;
  }
  out_dir = argv[2];
  GDir *d = g_dir_open(argv[1], 0, NULL);
  if (!d) g_error("cannot open %s", argv[1]);
  for (const char *e; (e = g_dir_read_name(d));) {
    char *sub = g_build_filename(argv[1], e, NULL);
    if (!strcmp(e, "configs")) {
      GDir *c = g_dir_open(sub, 0, NULL);
      for (const char *k; c && (k = g_dir_read_name(c));) {
        char *cd = g_build_filename(sub, k, NULL);
        model_dir(cd, k);
        g_free(cd);
      }
      if (c) g_dir_close(c);
    } else if (g_file_test(sub, G_FILE_TEST_IS_DIR)) {
      model_dir(sub, e);
    }
    g_free(sub);
  }
  g_dir_close(d);
  for (int i = 3; i < argc; i++) {
    char *tag = g_strdup_printf("extra%d", i - 3);
    model_dir(argv[i], tag);
    g_free(tag);
  }
  /* Schedules the goldens do not show. */
  static const char *const sched[] = {
    "{\"num_train_timesteps\": 4, \"trained_betas\": [0.1, 0.2, 0.3, 0.4]}",
    "{\"beta_schedule\": \"squaredcos_cap_v2\", \"num_train_timesteps\": 10, "
    "\"timestep_spacing\": \"trailing\", \"steps_offset\": 1}",
    "{\"beta_schedule\": \"scaled_linear\", \"prediction_type\": \"v_prediction\", "
    "\"timestep_spacing\": \"linspace\", \"variance_type\": \"fixed_large\"}"};
  for (size_t i = 0; i < G_N_ELEMENTS(sched); i++) {
    char name[32];
    g_snprintf(name, sizeof name, "extra%zu.json", i);
    char *dst = out_path("scheduler", name);
    if (!g_file_set_contents(dst, sched[i], -1, NULL)) g_error("cannot write %s", dst);
    g_free(dst);
  }
  pngs();
  states();
  printf("%d seed files in %s\n", n_written, out_dir);
  return 0;
}
