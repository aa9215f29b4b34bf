#include <math.h>
#include <string.h>

#include "wstore.h"
#include "model/safetensors.h"

typedef struct {
  uint64_t count;
  float *host;
  uint64_t offset; /* set by the upload */
  bool replaced;   /* by a derived copy: not uploaded */
  int8_t fits_f16; /* wstore_fits_f16's answer: 0 not asked yet, 1 yes, -1 no */
} entry;

struct wstore {
  ddpm_context *ctx;
  GArray *entries;    /* entry */
  GHashTable *by_name; /* name -> id + 1 */
  uint64_t bytes, params;
  vk_buffer buf;
  bool uploaded;
};

#define ENTRY(ws, i) (&g_array_index((ws)->entries, entry, (i)))
#define UPLOAD_CHUNK ((uint64_t)32 << 20)

wstore *wstore_new(ddpm_context *ctx) {
  wstore *ws = g_new0(wstore, 1);
  ws->ctx = ctx;
  ws->entries = g_array_new(FALSE, TRUE, sizeof(entry));
  ws->by_name = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  return ws;
}

void wstore_free(wstore *ws) {
  if (!ws) return;
  vk_buffer_destroy(ws->ctx, &ws->buf);
  for (guint i = 0; i < ws->entries->len; i++) g_free(ENTRY(ws, i)->host);
  g_array_free(ws->entries, TRUE);
  g_hash_table_destroy(ws->by_name);
  g_free(ws);
}

static float *add(wstore *ws, const char *name, uint64_t count, bool filled,
                  gweight *out) {
  entry e = {.count = count,
             .host = filled ? g_new0(float, count ? count : 1) : NULL};
  ws->bytes += vk_align(MAX(count, 1) * sizeof(float));
  ws->params += count;
  g_array_append_val(ws->entries, e);
  int id = (int)ws->entries->len - 1;
  if (name) g_hash_table_insert(ws->by_name, g_strdup(name), GINT_TO_POINTER(id + 1));
  *out = (gweight){id, count};
  return e.host;
}

float *wstore_add(wstore *ws, const char *name, uint64_t count, gweight *out) {
  g_return_val_if_fail(!ws->uploaded, NULL);
  return add(ws, name, count, true, out);
}

gweight wstore_add_unfilled(wstore *ws, const char *name, uint64_t count) {
  gweight w = {-1, 0};
  g_return_val_if_fail(!ws->uploaded, w);
  add(ws, name, count, false, &w);
  return w;
}

bool wstore_find(const wstore *ws, const char *name, gweight *out) {
  int id = GPOINTER_TO_INT(g_hash_table_lookup(ws->by_name, name)) - 1;
  if (id < 0) return false;
  *out = (gweight){id, ENTRY(ws, id)->count};
  return true;
}

static void mark_replaced(wstore *ws, int id) {
  entry *src = ENTRY(ws, id);
  if (!src->replaced) {
    src->replaced = true;
    ws->bytes -= vk_align(MAX(src->count, 1) * sizeof(float));
  }
}

gweight wstore_concat(wstore *ws, const char *name, const gweight *parts, int n) {
  gweight d;
  if (wstore_find(ws, name, &d)) return d;
  g_return_val_if_fail(!ws->uploaded && n > 0, parts[0]);
  uint64_t count = 0;
  bool filled = true;
  for (int i = 0; i < n; i++) {
    count += parts[i].count;
    filled = filled && ENTRY(ws, parts[i].id)->host != NULL;
  }
  float *dst = add(ws, name, count, filled, &d);
  ws->params -= count; /* the same parameters, side by side */
  uint64_t at = 0;
  for (int i = 0; i < n; i++) {
    entry *src = ENTRY(ws, parts[i].id); /* after the add: the array may have moved */
    if (filled) memcpy(dst + at, src->host, parts[i].count * sizeof(float));
    at += parts[i].count;
    mark_replaced(ws, parts[i].id);
  }
  return d;
}

/* The name wstore_derive files copy `tag` of w under. */
static char *derived_key(gweight w, const char *tag) {
  return g_strdup_printf("%d/%s", w.id, tag);
}

bool wstore_has_derived(const wstore *ws, gweight w, const char *tag) {
  char *key = derived_key(w, tag);
  gweight d;
  bool found = wstore_find(ws, key, &d);
  g_free(key);
  return found;
}

gweight wstore_derive(wstore *ws, gweight w, const char *tag, uint64_t count,
                      wstore_fill_fn fill, const void *arg) {
  char *key = derived_key(w, tag);
  gweight d;
  if (wstore_find(ws, key, &d)) {
    g_free(key);
    return d;
  }
  g_return_val_if_fail(!ws->uploaded, w);
  /* A stand-in for a weight that could not be read stays one. */
  bool filled = ENTRY(ws, w.id)->host != NULL;
  float *dst = add(ws, NULL, count, filled, &d);
  ws->params -= count; /* the same parameters, rearranged */
  g_hash_table_insert(ws->by_name, key, GINT_TO_POINTER(d.id + 1));
  entry *src = ENTRY(ws, w.id); /* after the add: the array may have moved */
  if (filled) fill(src->host, dst, arg);
  mark_replaced(ws, w.id);
  return d;
}

bool wstore_fits_f16(wstore *ws, gweight w) {
  entry *e = ENTRY(ws, w.id);
  /* Kept: after the upload the host copy is gone, and a later graph must
   * get the answer (and so the layout) the first one got. */
  if (!e->fits_f16) {
    e->fits_f16 = 1;
    for (uint64_t i = 0; e->host && i < e->count; i++)
      if (isfinite(e->host[i]) && fabsf(e->host[i]) >= 65520.0f) { /* rounds to inf */
        e->fits_f16 = -1;
        break;
      }
  }
  return e->fits_f16 > 0;
}

void wstore_set_f16(float *dst, uint64_t i, float v) {
  uint32_t word;
  memcpy(&word, &dst[i / 2], sizeof word);
  word |= (uint32_t)st_f32_to_f16(v) << (i % 2 * 16);
  memcpy(&dst[i / 2], &word, sizeof word);
}

/* Streams the weights image (each array at its offset, padding zero) through
 * a host-visible chunk into the device buffer. */
bool wstore_upload(wstore *ws, GError **err) {
  if (ws->uploaded) return true;
  ddpm_context *ctx = ws->ctx;
  uint64_t total = 0;
  for (guint k = 0; k < ws->entries->len; k++) {
    entry *e = ENTRY(ws, k);
    if (e->replaced) continue;
    e->offset = total;
    total += vk_align(MAX(e->count, 1) * sizeof(float));
  }
  g_assert(total == ws->bytes);
  if (!vk_buffer_create(ctx, ws->bytes, VK_MEM_DEVICE, &ws->buf, err))
    return false;
  uint64_t chunk = MIN(UPLOAD_CHUNK, MAX(ws->bytes, 16));
  vk_buffer stage;
  if (!vk_buffer_create(ctx, chunk, VK_MEM_HOST, &stage, err)) {
    vk_buffer_destroy(ctx, &ws->buf);
    return false;
  }
  bool ok = true;
  guint i = 0;
  for (uint64_t pos = 0; pos < ws->bytes && ok; pos += chunk) {
    uint64_t len = MIN(chunk, ws->bytes - pos);
    uint8_t *dst = stage.mapped;
    memset(dst, 0, len);
    while (i < ws->entries->len) {
      entry *e = ENTRY(ws, i);
      if (e->replaced) {
        i++;
        continue;
      }
      uint64_t wb = e->offset, we = e->offset + e->count * sizeof(float);
      if (wb >= pos + len) break;
      uint64_t b = MAX(wb, pos), end = MIN(we, pos + len);
      if (end > b && e->host) memcpy(dst + (b - pos), (uint8_t *)e->host + (b - wb), end - b);
      if (we > pos + len) break; /* continues in the next chunk */
      i++;
    }
    vk_program p;
    ok = vk_program_begin(ctx, &p, 1, err);
    if (ok) {
      vk_program_copy(&p, &stage, 0, &ws->buf, pos, len);
      ok = vk_program_end(&p, err) && vk_program_run(ctx, &p, err);
      vk_program_destroy(ctx, &p);
    }
  }
  vk_buffer_destroy(ctx, &stage);
  if (!ok) {
    vk_buffer_destroy(ctx, &ws->buf);
    return false;
  }
  for (guint k = 0; k < ws->entries->len; k++) {
    g_free(ENTRY(ws, k)->host);
    ENTRY(ws, k)->host = NULL;
  }
  ws->uploaded = true;
  return true;
}

bool wstore_uploaded(const wstore *ws) { return ws->uploaded; }

vk_binding wstore_binding(const wstore *ws, int id) {
  const entry *e = &g_array_index(ws->entries, entry, id);
  g_return_val_if_fail(ws->uploaded && !e->replaced, (vk_binding){0});
  return (vk_binding){.buffer = &ws->buf, .offset = e->offset,
                      .range = MAX(e->count, 1) * sizeof(float)};
}

uint64_t wstore_bytes(const wstore *ws) { return ws->bytes; }
uint64_t wstore_params(const wstore *ws) { return ws->params; }
