/* The safetensors form of a run state (compute/state.c): the CLI's
 * --save-state files and the plug-in's layer parasites.  Everything in such
 * a file is untrusted: each field is bounded and the tensors must match the
 * metadata before anything is allocated.  No model is needed here, so the
 * fuzzer (tests/fuzz/fuzz_state.c) builds this file alone. */
#include <math.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "ddpm/ddpm.h"
#include "model/json.h"
#include "model/safetensors.h"

#define STATE_FORMAT "gimp-ddpm-state"
#define STATE_VERSION 2 /* 1: generation only (no t0, init, mask) */
#define MAX_STEPS 100000
#define MAX_BATCH 4096
#define MAX_CHANNELS 64
#define MAX_SIDE 16384

void ddpm_state_free(ddpm_state *s) {
  if (!s) return;
  g_free(s->model);
  g_free(s->timesteps);
  g_free(s->x);
  g_free(s->init);
  g_free(s->mask);
  g_free(s);
}

/* "[950,900,...,0]" */
static char *grid_text(const int *ts, int n) {
  GString *g = g_string_new("[");
  for (int i = 0; i < n; i++) g_string_append_printf(g, "%s%d", i ? "," : "", ts[i]);
  g_string_append_c(g, ']');
  return g_string_free(g, FALSE);
}

GBytes *ddpm_state_to_bytes(const ddpm_state *s) {
  g_return_val_if_fail(s, NULL);
  char num[13][40];
  g_snprintf(num[0], 40, "%d", STATE_VERSION);
  g_snprintf(num[1], 40, "%d", s->steps);
  g_snprintf(num[2], 40, "%d", s->step);
  g_snprintf(num[3], 40, "%d", s->t);
  g_snprintf(num[4], 40, "%" G_GUINT64_FORMAT, s->seed);
  g_ascii_formatd(num[5], 40, "%.9g", s->eta); /* exact for a float */ /* exact for a float */
  g_snprintf(num[6], 40, "%d", s->batch);
  g_snprintf(num[7], 40, "%d", s->channels);
  g_snprintf(num[8], 40, "%d", s->height);
  g_snprintf(num[9], 40, "%d", s->width);
  g_snprintf(num[10], 40, "%d", s->t0);
  g_snprintf(num[11], 40, "%d", s->resample);
  g_ascii_formatd(num[12], 40, "%.9g", s->denoise_sigma);
  char *grid = grid_text(s->timesteps, s->steps);
  const char *meta[] = {
    "format", STATE_FORMAT, "version", num[0], "model", s->model ? s->model : "",
    "sampler", s->sampler == DDPM_SAMPLER_DDIM ? "ddim" : "ddpm",
    "steps", num[1], "step", num[2], "t", num[3], "timesteps", grid,
    "seed", num[4], "eta", num[5], "batch", num[6], "channels", num[7],
    "height", num[8], "width", num[9],
    /* Runs from an image only: for the others the list ends here. */
    s->init ? "t0" : NULL, num[10], "resample", num[11], "denoise_sigma", num[12],
    NULL};
  st_out_tensor t[3] = {
    {"x_t", ST_F32, 4, {s->batch, s->channels, s->height, s->width}, s->x},
    {"init", ST_F32, 4, {s->batch, s->channels, s->height, s->width}, s->init},
    {"mask", ST_F32, 4, {1, 1, s->height, s->width}, s->mask},
  };
  GBytes *b = st_serialize(t, s->init ? (s->mask ? 3 : 2) : 1, meta);
  g_free(grid);
  return b;
}

bool ddpm_state_save(const ddpm_state *s, const char *path, GError **err) {
  GBytes *b = ddpm_state_to_bytes(s);
  gsize size = 0;
  const char *data = g_bytes_get_data(b, &size);
  GError *e = NULL;
  bool ok = g_file_set_contents(path, data, (gssize)size, &e);
  g_bytes_unref(b);
  if (!ok) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_IO, "%s: cannot write: %s", path,
                e->message);
    g_error_free(e);
  }
  return ok;
}

/* ---- reading -------------------------------------------------------------- */

typedef struct {
  const st_file *f;
  const char *name;
  GError **err;
} reader;

static const char *field(reader *r, const char *key) {
  const char *v = st_metadata(r->f, key);
  if (!v)
    g_set_error(r->err, DDPM_ERROR, DDPM_ERROR_FORMAT,
                "%s: metadata field '%s' is missing or not a string", r->name, key);
  return v;
}

static bool field_int(reader *r, const char *key, gint64 lo, gint64 hi, gint64 *out) {
  const char *v = field(r, key);
  if (!v) return false;
  if (!g_ascii_string_to_signed(v, 10, lo, hi, out, NULL)) {
    g_set_error(r->err, DDPM_ERROR, DDPM_ERROR_FORMAT,
                "%s: metadata field '%s' = '%.40s' is not an integer in %"
                G_GINT64_FORMAT "..%" G_GINT64_FORMAT, r->name, key, v, lo, hi);
    return false;
  }
  return true;
}

static bool field_float(reader *r, const char *key, double lo, double hi, float *out) {
  const char *v = field(r, key);
  if (!v) return false;
  char *end = NULL;
  double d = g_ascii_strtod(v, &end);
  if (!*v || *end || !(d >= lo && d <= hi)) {
    g_set_error(r->err, DDPM_ERROR, DDPM_ERROR_FORMAT,
                "%s: metadata field '%s' = '%.40s' is not a number in %g..%g",
                r->name, key, v, lo, hi);
    return false;
  }
  *out = (float)d;
  return true;
}

/* The grid: a JSON array of `steps` timesteps in 0..MAX_STEPS. */
static int *field_grid(reader *r, int steps) {
  const char *v = field(r, "timesteps");
  if (!v) return NULL;
  GError *e = NULL;
  JsonParser *jp = ddpm_json_parse(v, strlen(v), &e);
  JsonNode *root = jp ? json_parser_get_root(jp) : NULL;
  JsonArray *a = root && JSON_NODE_HOLDS_ARRAY(root) ? json_node_get_array(root) : NULL;
  int *ts = NULL;
  if (a && json_array_get_length(a) == (guint)steps) {
    ts = g_new(int, steps);
    for (int i = 0; i < steps && ts; i++) {
      JsonNode *n = json_array_get_element(a, i);
      gint64 t = JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64
                   ? json_node_get_int(n) : -1;
      if (t < 0 || t > MAX_STEPS) g_clear_pointer(&ts, g_free);
      else ts[i] = (int)t;
    }
  }
  if (!ts)
    g_set_error(r->err, DDPM_ERROR, DDPM_ERROR_FORMAT,
                "%s: metadata field 'timesteps' is not a list of %d timesteps",
                r->name, steps);
  if (e) g_error_free(e);
  if (jp) g_object_unref(jp);
  return ts;
}

/* Tensor `key` as F32 of exactly this shape, converted; NULL with an error. */
static float *tensor(reader *r, const char *key, const int64_t shape[4]) {
  const st_tensor *t = st_find(r->f, key);
  bool same = t && t->dtype == ST_F32 && t->ndim == 4;
  for (int d = 0; same && d < 4; d++) same = t->shape[d] == shape[d];
  if (!same) {
    g_set_error(r->err, DDPM_ERROR, DDPM_ERROR_FORMAT,
                "%s: tensor '%s' must be F32 [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] as the metadata says%s",
                r->name, key, shape[0], shape[1], shape[2], shape[3],
                t ? "" : " (missing)");
    return NULL;
  }
  float *v = g_try_new(float, t->n_elements);
  if (!v) {
    g_set_error(r->err, DDPM_ERROR, DDPM_ERROR_OUT_OF_MEMORY,
                "%s: no memory for tensor '%s'", r->name, key);
    return NULL;
  }
  if (!st_read_f32(r->f, t, v, r->err)) {
    g_free(v);
    return NULL;
  }
  for (uint64_t i = 0; i < t->n_elements; i++)
    if (!isfinite(v[i])) {
      g_set_error(r->err, DDPM_ERROR, DDPM_ERROR_NUMERIC,
                  "%s: tensor '%s' holds NaN or Inf (value %" G_GUINT64_FORMAT ")",
                  r->name, key, i);
      g_free(v);
      return NULL;
    }
  return v;
}

static ddpm_state *parse(const st_file *f, const char *name, GError **err) {
  reader r = {f, name, err};
  ddpm_state *s = g_new0(ddpm_state, 1);
  const char *fmt = field(&r, "format");
  if (!fmt) goto fail;
  if (strcmp(fmt, STATE_FORMAT)) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT,
                "%s: metadata field 'format' = '%.40s', expected '" STATE_FORMAT "'",
                name, fmt);
    goto fail;
  }
  gint64 version, v[9];
  if (!field_int(&r, "version", 0, G_MAXINT, &version)) goto fail;
  if (version < 1 || version > STATE_VERSION) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_UNSUPPORTED,
                "%s: metadata field 'version' = %" G_GINT64_FORMAT
                ": this ddpm reads versions 1..%d", name, version, STATE_VERSION);
    goto fail;
  }
  const char *model = field(&r, "model"), *sampler = model ? field(&r, "sampler") : NULL;
  if (!sampler) goto fail;
  if (strcmp(sampler, "ddpm") && strcmp(sampler, "ddim")) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT,
                "%s: metadata field 'sampler' = '%.40s' is not ddpm or ddim", name, sampler);
    goto fail;
  }
  if (!field_int(&r, "steps", 1, MAX_STEPS, &v[0]) ||
      !field_int(&r, "step", 1, v[0] - 1, &v[1]) ||
      !field_int(&r, "t", 0, MAX_STEPS, &v[2]) ||
      !field_int(&r, "batch", 1, MAX_BATCH, &v[3]) ||
      !field_int(&r, "channels", 1, MAX_CHANNELS, &v[4]) ||
      !field_int(&r, "height", 1, MAX_SIDE, &v[5]) ||
      !field_int(&r, "width", 1, MAX_SIDE, &v[6]) ||
      !field_float(&r, "eta", 0, 1, &s->eta))
    goto fail;
  const char *seed = field(&r, "seed");
  if (!seed || !g_ascii_string_to_unsigned(seed, 10, 0, G_MAXUINT64, &s->seed, NULL)) {
    if (seed)
      g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT,
                  "%s: metadata field 'seed' = '%.40s' is not an unsigned integer",
                  name, seed);
    goto fail;
  }
  s->model = g_strdup(model);
  s->sampler = strcmp(sampler, "ddim") ? DDPM_SAMPLER_DDPM : DDPM_SAMPLER_DDIM;
  s->steps = (int)v[0], s->step = (int)v[1], s->t = (int)v[2];
  s->batch = (int)v[3], s->channels = (int)v[4];
  s->height = (int)v[5], s->width = (int)v[6];
  s->t0 = -1;
  s->resample = 1;
  if (!(s->timesteps = field_grid(&r, s->steps))) goto fail;
  int64_t shape[4] = {s->batch, s->channels, s->height, s->width};
  if (!(s->x = tensor(&r, "x_t", shape))) goto fail;
  bool from_image = st_find(f, "init") != NULL;
  size_t expect = from_image ? (st_find(f, "mask") ? 3 : 2) : 1;
  if (st_count(f) != expect) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT,
                "%s: %zu tensors, expected x_t%s", name, st_count(f),
                from_image ? ", init and (optionally) mask" : " (and init, mask)");
    goto fail;
  }
  if (from_image) {
    int64_t mshape[4] = {1, 1, s->height, s->width};
    if (!field_int(&r, "t0", 0, MAX_STEPS, &v[7]) ||
        !field_int(&r, "resample", 1, 1000, &v[8]) ||
        !field_float(&r, "denoise_sigma", 0, 1e6, &s->denoise_sigma) ||
        !(s->init = tensor(&r, "init", shape)) ||
        (st_find(f, "mask") && !(s->mask = tensor(&r, "mask", mshape))))
      goto fail;
    s->t0 = (int)v[7];
    s->resample = (int)v[8];
  }
  return s;
fail:
  ddpm_state_free(s);
  return NULL;
}

ddpm_state *ddpm_state_from_bytes(const void *data, size_t size,
                                  const char *name, GError **err) {
  st_file *f = st_open_memory(data, size, name, err);
  if (!f) return NULL;
  ddpm_state *s = parse(f, name, err);
  st_close(f);
  return s;
}

ddpm_state *ddpm_state_load(const char *path, GError **err) {
  st_file *f = st_open(path, err);
  if (!f) return NULL;
  ddpm_state *s = parse(f, path, err);
  st_close(f);
  return s;
}
