#include <math.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "ddpm/ddpm.h"
#include "model/json.h"
#include "schedule.h"

void ddpm_schedule_clear(ddpm_schedule *s) {
  g_free(s->betas);
  g_free(s->alphas);
  g_free(s->alphas_cumprod);
  memset(s, 0, sizeof *s);
}

/* torch.linspace(start, end, n, dtype=float32): float arithmetic, the first
 * half counted from start, the second from end. */
static void linspace_f32(float start, float end, int n, float *out) {
  float step = n > 1 ? (end - start) / (float)(n - 1) : 0.0f;
  int half = n / 2;
  for (int i = 0; i < n; i++)
    out[i] = i < half ? start + step * (float)i : end - step * (float)(n - i - 1);
}

static double alpha_bar_cosine(double t) {
  double c = cos((t + 0.008) / 1.008 * G_PI / 2);
  return c * c;
}

static void finish(ddpm_schedule *s) {
  int n = s->num_train_timesteps;
  s->alphas = g_new(float, n);
  s->alphas_cumprod = g_new(float, n);
  double acc = 1.0; /* torch's CPU cumprod accumulates float in double */
  for (int i = 0; i < n; i++) {
    s->alphas[i] = 1.0f - s->betas[i];
    acc *= s->alphas[i];
    s->alphas_cumprod[i] = (float)acc;
  }
}

static void set_betas_linear(ddpm_schedule *s, float start, float end, bool scaled) {
  int n = s->num_train_timesteps;
  s->betas = g_new(float, n);
  if (scaled) {
    linspace_f32(sqrtf(start), sqrtf(end), n, s->betas);
    for (int i = 0; i < n; i++) s->betas[i] *= s->betas[i];
  } else {
    linspace_f32(start, end, n, s->betas);
  }
}

void ddpm_schedule_defaults(ddpm_schedule *s) {
  memset(s, 0, sizeof *s);
  s->num_train_timesteps = 1000;
  s->variance = VARIANCE_FIXED_SMALL;
  s->prediction = PRED_EPSILON;
  s->spacing = SPACING_LEADING;
  s->clip_sample = true;
  s->clip_sample_range = 1.0f;
  s->set_alpha_to_one = true;
  set_betas_linear(s, 1e-4f, 0.02f, false);
  finish(s);
}

typedef struct {
  JsonObject *o;
  const char *src;
  GError **err;
  bool ok;
} rd;

static JsonNode *mem(rd *r, const char *k) {
  JsonNode *n = json_object_get_member(r->o, k);
  return n && !JSON_NODE_HOLDS_NULL(n) ? n : NULL;
}

static void bad(rd *r, int code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void bad(rd *r, int code, const char *fmt, ...) {
  if (!r->ok) return;
  va_list ap;
  va_start(ap, fmt);
  char *m = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(r->err, DDPM_ERROR, code, "%s: %s", r->src, m);
  g_free(m);
  r->ok = false;
}

static double num(rd *r, const char *k, double def) {
  JsonNode *n = mem(r, k);
  if (!n) return def;
  GType t = JSON_NODE_HOLDS_VALUE(n) ? json_node_get_value_type(n) : G_TYPE_NONE;
  if (t == G_TYPE_INT64) return (double)json_node_get_int(n);
  if (t == G_TYPE_DOUBLE) return json_node_get_double(n);
  bad(r, DDPM_ERROR_FORMAT, "%s must be a number", k);
  return def;
}

static bool boolean(rd *r, const char *k, bool def) {
  JsonNode *n = mem(r, k);
  if (!n) return def;
  if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_BOOLEAN)
    return json_node_get_boolean(n);
  bad(r, DDPM_ERROR_FORMAT, "%s must be true or false", k);
  return def;
}

/* Index of the string value of k in names (NULL-terminated), or -1. */
static int choice(rd *r, const char *k, const char *def, const char *const *names) {
  JsonNode *n = mem(r, k);
  const char *v = def;
  if (n) {
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
      bad(r, DDPM_ERROR_FORMAT, "%s must be a string", k);
      return 0;
    }
    v = json_node_get_string(n);
  }
  for (int i = 0; names[i]; i++)
    if (!strcmp(v, names[i])) return i;
  char *list = g_strjoinv(", ", (char **)names);
  bad(r, DDPM_ERROR_UNSUPPORTED, "%s = '%s' is not supported (supported: %s)",
      k, v, list);
  g_free(list);
  return 0;
}

bool ddpm_schedule_parse(const char *json, size_t len, const char *source,
                         ddpm_schedule *s, GError **err) {
  static const char *const schedules[] = {"linear", "scaled_linear",
                                          "squaredcos_cap_v2", NULL};
  static const char *const variances[] = {"fixed_small", "fixed_large", NULL};
  static const char *const predictions[] = {"epsilon", "sample", "v_prediction", NULL};
  static const char *const spacings[] = {"leading", "trailing", "linspace", NULL};
  memset(s, 0, sizeof *s);
  GError *je = NULL;
  JsonParser *p = ddpm_json_parse(json, len, &je);
  if (!p) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT, "%s: invalid JSON: %s",
                source, je->message);
    g_error_free(je);
    return false;
  }
  JsonNode *root = json_parser_get_root(p);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT, "%s: expected a JSON object", source);
    g_object_unref(p);
    return false;
  }
  rd r = {json_node_get_object(root), source, err, true};
  double T = num(&r, "num_train_timesteps", 1000);
  if (r.ok && (T != floor(T) || T < 2 || T > DDPM_MAX_TRAIN_STEPS))
    bad(&r, DDPM_ERROR_UNSUPPORTED, "num_train_timesteps = %g out of range 2..%d",
        T, DDPM_MAX_TRAIN_STEPS);
  if (!r.ok) T = 1000; /* (int) of an out-of-range double is undefined */
  s->num_train_timesteps = (int)T;
  float b0 = (float)num(&r, "beta_start", 1e-4), b1 = (float)num(&r, "beta_end", 0.02);
  int sched = choice(&r, "beta_schedule", "linear", schedules);
  s->variance = choice(&r, "variance_type", "fixed_small", variances);
  s->prediction = choice(&r, "prediction_type", "epsilon", predictions);
  s->spacing = choice(&r, "timestep_spacing", "leading", spacings);
  s->clip_sample = boolean(&r, "clip_sample", true);
  s->clip_sample_range = (float)num(&r, "clip_sample_range", 1.0);
  if (r.ok && !(s->clip_sample_range > 0 && isfinite(s->clip_sample_range)))
    bad(&r, DDPM_ERROR_UNSUPPORTED, "clip_sample_range must be finite and > 0");
  s->set_alpha_to_one = boolean(&r, "set_alpha_to_one", true);
  double off = num(&r, "steps_offset", 0);
  if (r.ok && (off != floor(off) || off < 0 || off >= T))
    bad(&r, DDPM_ERROR_UNSUPPORTED, "steps_offset = %g out of range", off);
  s->steps_offset = r.ok ? (int)off : 0;
  if (boolean(&r, "thresholding", false))
    bad(&r, DDPM_ERROR_UNSUPPORTED, "thresholding = true is not supported");
  if (boolean(&r, "rescale_betas_zero_snr", false))
    bad(&r, DDPM_ERROR_UNSUPPORTED, "rescale_betas_zero_snr = true is not supported");
  if (r.ok && !(b0 > 0 && b1 > 0 && b0 < 1 && b1 < 1))
    bad(&r, DDPM_ERROR_UNSUPPORTED, "beta_start and beta_end must be in (0, 1)");

  JsonNode *tb = mem(&r, "trained_betas");
  if (r.ok && tb) {
    if (!JSON_NODE_HOLDS_ARRAY(tb) ||
        json_array_get_length(json_node_get_array(tb)) != (guint)s->num_train_timesteps) {
      bad(&r, DDPM_ERROR_FORMAT, "trained_betas must be a list of "
          "num_train_timesteps (%d) numbers", s->num_train_timesteps);
    } else {
      JsonArray *a = json_node_get_array(tb);
      s->betas = g_new(float, s->num_train_timesteps);
      for (int i = 0; i < s->num_train_timesteps && r.ok; i++) {
        JsonNode *e = json_array_get_element(a, i);
        GType t = JSON_NODE_HOLDS_VALUE(e) ? json_node_get_value_type(e) : G_TYPE_NONE;
        double v = t == G_TYPE_DOUBLE ? json_node_get_double(e)
                 : t == G_TYPE_INT64 ? (double)json_node_get_int(e) : -1;
        if (!(v > 0 && v < 1))
          bad(&r, DDPM_ERROR_FORMAT, "trained_betas[%d] must be a number in (0, 1)", i);
        s->betas[i] = (float)v;
      }
    }
  } else if (r.ok && sched == 2) {
    s->betas = g_new(float, s->num_train_timesteps);
    for (int i = 0; i < s->num_train_timesteps; i++) {
      double t1 = (double)i / T, t2 = (double)(i + 1) / T;
      s->betas[i] = (float)fmin(1 - alpha_bar_cosine(t2) / alpha_bar_cosine(t1), 0.999);
    }
  } else if (r.ok) {
    set_betas_linear(s, b0, b1, sched == 1);
  }
  g_object_unref(p);
  if (!r.ok) {
    ddpm_schedule_clear(s);
    return false;
  }
  finish(s);
  return true;
}

bool ddpm_schedule_load(const char *path, ddpm_schedule *s, GError **err) {
  char *text = NULL;
  gsize len = 0;
  if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
    ddpm_schedule_defaults(s);
    return true;
  }
  GError *e = NULL;
  if (!g_file_get_contents(path, &text, &len, &e)) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_IO, "%s: cannot read: %s", path, e->message);
    g_error_free(e);
    return false;
  }
  bool ok = len <= (16u << 20)
    ? ddpm_schedule_parse(text, len, path, s, err)
    : (g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT, "%s: too large", path), false);
  g_free(text);
  return ok;
}

bool ddpm_schedule_timesteps(const ddpm_schedule *s, int steps, int *ts) {
  int T = s->num_train_timesteps;
  if (steps < 1 || steps > T) return false;
  for (int i = 0; i < steps; i++) {
    double v;
    switch (s->spacing) {
    case SPACING_LEADING: /* (arange(steps) * (T // steps)).round()[::-1] + offset */
      v = (double)(steps - 1 - i) * (T / steps) + s->steps_offset;
      break;
    case SPACING_TRAILING: { /* round(arange(T, 0, -T / steps)) - 1 */
      double ratio = (double)T / steps;
      v = nearbyint((double)T - i * ratio) - 1;
      break;
    }
    default: { /* np.linspace(0, T - 1, steps).round()[::-1] */
      int idx = steps - 1 - i;
      double step = steps > 1 ? (double)(T - 1) / (steps - 1) : 0;
      v = idx == steps - 1 && steps > 1 ? T - 1 : nearbyint(idx * step);
      break;
    }
    }
    ts[i] = (int)v;
  }
  return true;
}

int ddpm_schedule_prev(const ddpm_schedule *s, int steps, int t) {
  return t - s->num_train_timesteps / steps;
}

float ddpm_schedule_abar(const ddpm_schedule *s, int t, bool ddim) {
  if (t >= 0) return s->alphas_cumprod[MIN(t, s->num_train_timesteps - 1)];
  if (ddim && !s->set_alpha_to_one) return s->alphas_cumprod[0];
  return 1.0f;
}

void ddpm_schedule_add_noise(const ddpm_schedule *s, int t, const float *x0,
                             const float *noise, size_t n, float *out) {
  float abar = s->alphas_cumprod[t];
  float a = sqrtf(abar), b = sqrtf(1.0f - abar);
  for (size_t i = 0; i < n; i++) out[i] = a * x0[i] + b * noise[i];
}
