#include <math.h>
#include <string.h>

#include "model/weights.h"

#define MAX_LISTED 40 /* problems spelled out in one error message */

struct wmap {
  const st_file *file; /* NULL: random weights */
  uint64_t seed;
  int last_fan_in;     /* of the last .weight requested (for its .bias) */
  GArray *record;      /* st_out_tensor copies of random weights, if asked */
  GHashTable *by_name; /* canonical name -> const st_tensor* */
  GHashTable *used;    /* canonical names requested */
  GPtrArray *problems; /* char* */
  int dtype_seen;      /* bit per st_dtype */
};

/* Pre-2023 attention parameter names and their current equivalents. */
static const struct { const char *old_part, *new_part; } renames[] = {
  {".query.", ".to_q."},
  {".key.", ".to_k."},
  {".value.", ".to_v."},
  {".proj_attn.", ".to_out.0."},
};

char *weights_canonical_name(const char *name) {
  if (!strstr(name, ".attentions.")) return g_strdup(name);
  for (size_t i = 0; i < G_N_ELEMENTS(renames); i++) {
    const char *at = strstr(name, renames[i].old_part);
    if (at)
      return g_strdup_printf("%.*s%s%s", (int)(at - name), name,
                             renames[i].new_part, at + strlen(renames[i].old_part));
  }
  return g_strdup(name);
}

wmap *wmap_new(const st_file *file, GError **err) {
  wmap *m = g_new0(wmap, 1);
  m->file = file;
  m->by_name = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  m->used = g_hash_table_new(g_str_hash, g_str_equal);
  m->problems = g_ptr_array_new_with_free_func(g_free);
  for (size_t i = 0; i < st_count(file); i++) {
    const st_tensor *t = st_tensor_at(file, i);
    char *canon = weights_canonical_name(t->name);
    const st_tensor *prev = g_hash_table_lookup(m->by_name, canon);
    if (prev) {
      g_set_error(err, DDPM_ERROR, DDPM_ERROR_WEIGHTS,
                  "%s: tensors '%s' and '%s' are the same parameter '%s'",
                  st_path(file), prev->name, t->name, canon);
      g_free(canon);
      wmap_free(m);
      return NULL;
    }
    g_hash_table_insert(m->by_name, canon, (gpointer)t);
  }
  return m;
}

void wmap_free(wmap *m) {
  if (!m) return;
  if (m->by_name) g_hash_table_destroy(m->by_name);
  if (m->used) g_hash_table_destroy(m->used);
  if (m->record) {
    for (guint i = 0; i < m->record->len; i++)
    {
      st_out_tensor *t = &g_array_index(m->record, st_out_tensor, i);
      g_free((char *)t->name);
      g_free((void *)t->data);
    }
    g_array_free(m->record, TRUE);
  }
  g_ptr_array_free(m->problems, TRUE);
  g_free(m);
}

static char *shape_str(int ndim, const int64_t *shape) {
  GString *s = g_string_new("[");
  for (int i = 0; i < ndim; i++)
    g_string_append_printf(s, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
  g_string_append_c(s, ']');
  return g_string_free(s, FALSE);
}

static uint64_t mix64(uint64_t z) {
  z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ z >> 27) * 0x94D049BB133111EBull;
  return z ^ z >> 31;
}

void weights_random_fill(uint64_t seed, const char *name, float offset,
                         float scale, float *dst, uint64_t count) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    h = (h ^ *p) * 0x100000001B3ull;
  uint64_t base = mix64(h ^ seed);
  for (uint64_t i = 0; i < count; i++) {
    uint64_t r = mix64(base + (i + 1) * 0x9E3779B97F4A7C15ull);
    float u = (float)((int64_t)(r >> 40) - (1 << 23)) / (float)(1 << 23);
    dst[i] = offset + scale * u;
  }
}

void wmap_keep_random(wmap *m) {
  if (!m->record) m->record = g_array_new(FALSE, TRUE, sizeof(st_out_tensor));
}

const st_out_tensor *wmap_kept(const wmap *m, size_t *n) {
  *n = m->record ? m->record->len : 0;
  return m->record ? (const st_out_tensor *)m->record->data : NULL;
}

wmap *wmap_new_random(uint64_t seed) {
  wmap *m = g_new0(wmap, 1);
  m->seed = seed;
  m->problems = g_ptr_array_new_with_free_func(g_free);
  m->dtype_seen = 1 << ST_F32;
  return m;
}

static void random_request(wmap *m, const char *name, int ndim,
                           const int64_t *shape, float *dst, uint64_t count) {
  bool norm = strstr(name, "norm") != NULL; /* norm1/2, group_norm, conv_norm_out */
  bool is_bias = g_str_has_suffix(name, ".bias");
  if (!is_bias && ndim >= 2) {
    m->last_fan_in = 1;
    for (int i = 1; i < ndim; i++) m->last_fan_in *= (int)shape[i];
  }
  float offset = norm && !is_bias ? 1.0f : 0.0f;
  float scale = norm ? 0.25f : (float)(1.0 / sqrt((double)m->last_fan_in));
  weights_random_fill(m->seed, name, offset, scale, dst, count);
}

gweight wmap_request(wmap *m, wstore *ws, const char *name, int ndim,
                     const int64_t *shape) {
  uint64_t count = 1;
  for (int i = 0; i < ndim; i++) count *= (uint64_t)shape[i];
  gweight w;
  if (!m->file) {
    float *dst = wstore_add(ws, name, count, &w);
    random_request(m, name, ndim, shape, dst, count);
    if (m->record) {
      st_out_tensor t = {.name = g_strdup(name), .dtype = ST_F32, .ndim = ndim,
                         .data = g_memdup2(dst, count * sizeof(float))};
      memcpy(t.shape, shape, ndim * sizeof *shape);
      g_array_append_val(m->record, t);
    }
    return w;
  }

  gpointer key = NULL, value = NULL;
  if (!g_hash_table_lookup_extended(m->by_name, name, &key, &value)) {
    char *s = shape_str(ndim, shape);
    g_ptr_array_add(m->problems, g_strdup_printf("missing tensor '%s' %s", name, s));
    g_free(s);
    return wstore_add_unfilled(ws, name, count);
  }
  const st_tensor *t = value;
  g_hash_table_add(m->used, key);
  bool same = t->ndim == ndim;
  for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
  if (!same) {
    char *want = shape_str(ndim, shape), *got = shape_str(t->ndim, t->shape);
    g_ptr_array_add(m->problems,
                    g_strdup_printf("tensor '%s' has shape %s, expected %s",
                                    t->name, got, want));
    g_free(want);
    g_free(got);
    return wstore_add_unfilled(ws, name, count);
  }
  if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16 &&
      t->dtype != ST_F64) {
    g_ptr_array_add(m->problems,
                    g_strdup_printf("tensor '%s' has dtype %s, expected a "
                                    "float type (F32, F16, BF16, F64)",
                                    t->name, st_dtype_name(t->dtype)));
    return wstore_add_unfilled(ws, name, count);
  }
  /* The shapes agree, so count == t->n_elements: bounded by the file. */
  float *dst = wstore_add(ws, name, count, &w);
  GError *e = NULL;
  if (!st_read_f32(m->file, t, dst, &e)) {
    g_ptr_array_add(m->problems, g_strdup(e->message));
    g_error_free(e);
    return w;
  }
  m->dtype_seen |= 1 << t->dtype;
  return w;
}

bool wmap_finish(wmap *m, GError **err) {
  if (!m->file) return true;
  GHashTableIter it;
  gpointer key, value;
  GPtrArray *unexpected = g_ptr_array_new();
  g_hash_table_iter_init(&it, m->by_name);
  while (g_hash_table_iter_next(&it, &key, &value))
    if (!g_hash_table_contains(m->used, key))
      g_ptr_array_add(unexpected, ((const st_tensor *)value)->name);
  g_ptr_array_sort(unexpected, (GCompareFunc)g_strcmp0);

  guint n = m->problems->len + unexpected->len;
  if (n == 0) {
    g_ptr_array_free(unexpected, TRUE);
    return true;
  }
  GString *msg = g_string_new(NULL);
  g_string_printf(msg, "%s: %u problem%s with the weights:", st_path(m->file),
                  n, n == 1 ? "" : "s");
  guint listed = 0;
  for (guint i = 0; i < m->problems->len && listed < MAX_LISTED; i++, listed++)
    g_string_append_printf(msg, "\n  %s", (char *)m->problems->pdata[i]);
  for (guint i = 0; i < unexpected->len && listed < MAX_LISTED; i++, listed++)
    g_string_append_printf(msg, "\n  unexpected tensor '%s'",
                           (char *)unexpected->pdata[i]);
  if (listed < n) g_string_append_printf(msg, "\n  ... and %u more", n - listed);
  g_set_error_literal(err, DDPM_ERROR, DDPM_ERROR_WEIGHTS, msg->str);
  g_string_free(msg, TRUE);
  g_ptr_array_free(unexpected, TRUE);
  return false;
}

const char *wmap_dtype(const wmap *m) {
  switch (m->dtype_seen) {
  case 1 << ST_F32: return "F32";
  case 1 << ST_F16: return "F16";
  case 1 << ST_BF16: return "BF16";
  case 0: return "none";
  default: return "mixed";
  }
}
