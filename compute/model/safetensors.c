/* safetensors reader/writer.  The header is untrusted: every length, offset
 * and shape is checked against the file before anything is read. */
#include <string.h>

#include <json-glib/json-glib.h>

#include "ddpm/ddpm.h"
#include "model/json.h"
#include "model/safetensors.h"

#define MAX_HEADER ((uint64_t)100 << 20)
#define MAX_TENSORS 100000
#define MAX_DIM ((int64_t)1 << 40)

struct st_file {
  char *path;
  GMappedFile *mapped; /* NULL for st_open_memory */
  const uint8_t *data; /* the data section */
  uint64_t data_size;
  GPtrArray *tensors;  /* st_tensor* in file order */
  GHashTable *by_name; /* name -> st_tensor* */
  GHashTable *metadata; /* __metadata__ key -> value, string values only */
};

static const struct {
  const char *name;
  st_dtype dtype;
  size_t size;
} dtypes[] = {
  {"F32", ST_F32, 4}, {"F16", ST_F16, 2}, {"BF16", ST_BF16, 2},
  {"F64", ST_F64, 8}, {"I64", ST_I64, 8}, {"I32", ST_I32, 4},
  {"I16", ST_I16, 2}, {"I8", ST_I8, 1},   {"U8", ST_U8, 1},
  {"BOOL", ST_BOOL, 1},
};

size_t st_dtype_size(st_dtype dt) {
  for (size_t i = 0; i < G_N_ELEMENTS(dtypes); i++)
    if (dtypes[i].dtype == dt) return dtypes[i].size;
  return 0;
}

const char *st_dtype_name(st_dtype dt) {
  for (size_t i = 0; i < G_N_ELEMENTS(dtypes); i++)
    if (dtypes[i].dtype == dt) return dtypes[i].name;
  return "?";
}

static bool parse_dtype(const char *s, st_dtype *out) {
  for (size_t i = 0; i < G_N_ELEMENTS(dtypes); i++)
    if (strcmp(dtypes[i].name, s) == 0) {
      *out = dtypes[i].dtype;
      return true;
    }
  return false;
}

static void tensor_free(gpointer p) {
  st_tensor *t = p;
  g_free(t->name);
  g_free(t);
}

void st_close(st_file *f) {
  if (!f) return;
  if (f->tensors) g_ptr_array_free(f->tensors, TRUE);
  if (f->by_name) g_hash_table_destroy(f->by_name);
  if (f->metadata) g_hash_table_destroy(f->metadata);
  if (f->mapped) g_mapped_file_unref(f->mapped);
  g_free(f->path);
  g_free(f);
}

static bool bad(GError **err, const char *path, const char *fmt, ...)
  G_GNUC_PRINTF(3, 4);

static bool bad(GError **err, const char *path, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT, "%s: %s", path, msg);
  g_free(msg);
  return false;
}

/* A JSON integer node, as int64 (json-glib keeps integers exact). */
static bool json_int(JsonNode *n, int64_t *out) {
  if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
    return false;
  *out = json_node_get_int(n);
  return true;
}

static bool parse_entry(st_file *f, const char *name, JsonNode *node,
                        GError **err) {
  const char *path = f->path;
  if (!*name) return bad(err, path, "a tensor has an empty name");
  if (!JSON_NODE_HOLDS_OBJECT(node))
    return bad(err, path, "tensor '%s': entry is not a JSON object", name);
  JsonObject *o = json_node_get_object(node);
  JsonNode *dt = json_object_get_member(o, "dtype");
  JsonNode *shape = json_object_get_member(o, "shape");
  JsonNode *offs = json_object_get_member(o, "data_offsets");
  if (!dt || !JSON_NODE_HOLDS_VALUE(dt) ||
      json_node_get_value_type(dt) != G_TYPE_STRING)
    return bad(err, path, "tensor '%s': missing or non-string 'dtype'", name);
  if (!shape || !JSON_NODE_HOLDS_ARRAY(shape))
    return bad(err, path, "tensor '%s': missing or non-array 'shape'", name);
  if (!offs || !JSON_NODE_HOLDS_ARRAY(offs))
    return bad(err, path, "tensor '%s': missing or non-array 'data_offsets'", name);

  st_tensor *t = g_new0(st_tensor, 1);
  t->name = g_strdup(name);
  g_ptr_array_add(f->tensors, t); /* owned from here on */
  if (!parse_dtype(json_node_get_string(dt), &t->dtype))
    return bad(err, path, "tensor '%s': unknown dtype '%s'", name,
               json_node_get_string(dt));

  JsonArray *sa = json_node_get_array(shape);
  guint nd = json_array_get_length(sa);
  if (nd > ST_MAX_DIMS)
    return bad(err, path, "tensor '%s': %u dimensions (at most %d)", name, nd,
               ST_MAX_DIMS);
  t->ndim = (int)nd;
  uint64_t count = 1;
  for (guint i = 0; i < nd; i++) {
    int64_t d;
    if (!json_int(json_array_get_element(sa, i), &d) || d < 0 || d > MAX_DIM)
      return bad(err, path, "tensor '%s': shape[%u] is not an integer in "
                 "0..2^40", name, i);
    t->shape[i] = d;
    if (d && count > UINT64_MAX / (uint64_t)d)
      return bad(err, path, "tensor '%s': element count overflows", name);
    count *= (uint64_t)d;
  }
  t->n_elements = count;

  JsonArray *oa = json_node_get_array(offs);
  int64_t begin, end;
  if (json_array_get_length(oa) != 2 ||
      !json_int(json_array_get_element(oa, 0), &begin) ||
      !json_int(json_array_get_element(oa, 1), &end) || begin < 0 || end < begin)
    return bad(err, path, "tensor '%s': data_offsets must be [begin, end] "
               "with 0 <= begin <= end", name);
  if ((uint64_t)end > f->data_size)
    return bad(err, path, "tensor '%s': data_offsets end %" G_GINT64_FORMAT
               " is past the end of the data (%" G_GUINT64_FORMAT " bytes; "
               "truncated file?)", name, end, f->data_size);
  size_t es = st_dtype_size(t->dtype);
  if (count > UINT64_MAX / es || count * es != (uint64_t)(end - begin))
    return bad(err, path, "tensor '%s': %" G_GINT64_FORMAT " bytes of data "
               "for %" G_GUINT64_FORMAT " elements of %s", name, end - begin,
               count, st_dtype_name(t->dtype));
  t->offset = (uint64_t)begin;
  t->nbytes = (uint64_t)(end - begin);
  return true;
}

static int cmp_offset(gconstpointer a, gconstpointer b) {
  const st_tensor *x = *(st_tensor *const *)a, *y = *(st_tensor *const *)b;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* As the reference reader (safetensors' validate): the tensors tile the data
 * section exactly, without overlaps, gaps or bytes left over; a header length
 * off by a few bytes would otherwise shift every tensor. */
static bool check_layout(st_file *f, GError **err) {
  GPtrArray *sorted = g_ptr_array_copy(f->tensors, NULL, NULL);
  g_ptr_array_set_free_func(sorted, NULL); /* the copy borrows */
  g_ptr_array_sort(sorted, cmp_offset);
  bool ok = true;
  uint64_t end = 0;
  const st_tensor *prev = NULL;
  for (guint i = 0; i < sorted->len && ok; i++) {
    const st_tensor *t = sorted->pdata[i];
    if (t->offset < end)
      ok = bad(err, f->path, "tensors '%s' and '%s' overlap", prev->name,
               t->name);
    else if (t->offset > end)
      ok = bad(err, f->path, "gap of %" G_GUINT64_FORMAT " bytes in the data "
               "before tensor '%s' (data_offsets begin %" G_GUINT64_FORMAT
               "; header length wrong?)", t->offset - end, t->name, t->offset);
    end = t->offset + t->nbytes;
    prev = t;
  }
  if (ok && end != f->data_size)
    ok = bad(err, f->path, "%" G_GUINT64_FORMAT " bytes of data after the last "
             "tensor (header length wrong or file damaged?)", f->data_size - end);
  g_ptr_array_free(sorted, TRUE);
  return ok;
}

/* The format says __metadata__ maps strings to strings; anything else in
 * it is ignored (readers of a key then see it as missing). */
static void keep_metadata(st_file *f, JsonNode *node) {
  if (!JSON_NODE_HOLDS_OBJECT(node)) return;
  JsonObject *m = json_node_get_object(node);
  GList *keys = json_object_get_members(m);
  for (GList *l = keys; l; l = l->next) {
    JsonNode *v = json_object_get_member(m, l->data);
    if (JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_STRING)
      g_hash_table_replace(f->metadata, g_strdup(l->data),
                           g_strdup(json_node_get_string(v)));
  }
  g_list_free(keys);
}

static st_file *parse(st_file *f, const uint8_t *bytes, uint64_t size,
                      GError **err) {
  if (size < 8) {
    bad(err, f->path, "file too short (%" G_GUINT64_FORMAT " bytes) for a "
        "safetensors header", size);
    goto fail;
  }
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | bytes[i];
  if (hlen > size - 8 || hlen > MAX_HEADER) {
    bad(err, f->path, "header length %" G_GUINT64_FORMAT " is past the end "
        "of the file (%" G_GUINT64_FORMAT " bytes) or over 100 MiB; "
        "truncated or not a safetensors file", hlen, size);
    goto fail;
  }
  f->data = bytes + 8 + hlen;
  f->data_size = size - 8 - hlen;

  GError *jerr = NULL;
  JsonParser *parser = ddpm_json_parse((const char *)bytes + 8, hlen, &jerr);
  if (!parser) {
    bad(err, f->path, "header is not valid JSON: %s", jerr->message);
    g_error_free(jerr);
    goto fail;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    bad(err, f->path, "header is not a JSON object");
    g_object_unref(parser);
    goto fail;
  }
  JsonObject *obj = json_node_get_object(root);
  GList *members = json_object_get_members(obj);
  bool ok = g_list_length(members) <= MAX_TENSORS + 1 ||
            bad(err, f->path, "more than %d tensors", MAX_TENSORS);
  for (GList *l = members; l && ok; l = l->next) {
    const char *name = l->data;
    if (strcmp(name, "__metadata__") == 0) {
      keep_metadata(f, json_object_get_member(obj, name));
      continue;
    }
    ok = parse_entry(f, name, json_object_get_member(obj, name), err);
  }
  g_list_free(members);
  g_object_unref(parser);
  if (!ok || !check_layout(f, err)) goto fail;
  for (guint i = 0; i < f->tensors->len; i++) {
    st_tensor *t = f->tensors->pdata[i];
    g_hash_table_insert(f->by_name, t->name, t);
  }
  return f;

fail:
  st_close(f);
  return NULL;
}

static st_file *file_new(const char *name) {
  st_file *f = g_new0(st_file, 1);
  f->path = g_strdup(name);
  f->tensors = g_ptr_array_new_with_free_func(tensor_free);
  f->by_name = g_hash_table_new(g_str_hash, g_str_equal);
  f->metadata = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  return f;
}

st_file *st_open(const char *path, GError **err) {
  GError *e = NULL;
  GMappedFile *mf = g_mapped_file_new(path, FALSE, &e);
  if (!mf) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_IO, "%s: cannot open: %s", path,
                e->message);
    g_error_free(e);
    return NULL;
  }
  st_file *f = file_new(path);
  f->mapped = mf;
  return parse(f, (const uint8_t *)g_mapped_file_get_contents(mf),
               g_mapped_file_get_length(mf), err);
}

st_file *st_open_memory(const void *data, size_t size, const char *name,
                        GError **err) {
  return parse(file_new(name), data, size, err);
}

const char *st_path(const st_file *f) { return f->path; }
size_t st_count(const st_file *f) { return f->tensors->len; }

const st_tensor *st_tensor_at(const st_file *f, size_t i) {
  return i < f->tensors->len ? f->tensors->pdata[i] : NULL;
}

const st_tensor *st_find(const st_file *f, const char *name) {
  return g_hash_table_lookup(f->by_name, name);
}

const char *st_metadata(const st_file *f, const char *key) {
  return g_hash_table_lookup(f->metadata, key);
}

const void *st_data(const st_file *f, const st_tensor *t) {
  return f->data + t->offset;
}

/* ---- conversions ------------------------------------------------------- */

float st_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else { /* subnormal: normalise */
      int e = -1;
      do {
        e++;
        man <<= 1;
      } while (!(man & 0x400));
      bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | man << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

uint16_t st_f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t exp = (x >> 23) & 0xff, man = x & 0x7fffff;
  if (exp == 0xff) return sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0);
  int e = (int)exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    man |= 0x800000;
    int shift = 14 - e;
    uint32_t half = man >> shift, rem = man & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) half++;
    return sign | (uint16_t)half;
  }
  uint32_t half = (uint32_t)e << 10 | man >> 13, rem = man & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into inf */
  return sign | (uint16_t)half;
}

float st_bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

bool st_read_f32(const st_file *f, const st_tensor *t, float *dst,
                 GError **err) {
  const uint8_t *src = st_data(f, t);
  for (uint64_t i = 0; i < t->n_elements; i++) {
    uint16_t h;
    double d;
    switch (t->dtype) {
    case ST_F32: memcpy(&dst[i], src + 4 * i, 4); break;
    case ST_F16: memcpy(&h, src + 2 * i, 2); dst[i] = st_f16_to_f32(h); break;
    case ST_BF16: memcpy(&h, src + 2 * i, 2); dst[i] = st_bf16_to_f32(h); break;
    case ST_F64: memcpy(&d, src + 8 * i, 8); dst[i] = (float)d; break;
    default:
      g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT,
                  "%s: tensor '%s' has dtype %s, expected a float type "
                  "(F32, F16, BF16)", f->path, t->name, st_dtype_name(t->dtype));
      return false;
    }
  }
  return true;
}

bool st_read_i64(const st_file *f, const st_tensor *t, int64_t *dst,
                 GError **err) {
  const uint8_t *src = st_data(f, t);
  for (uint64_t i = 0; i < t->n_elements; i++) {
    int32_t v32;
    switch (t->dtype) {
    case ST_I64: memcpy(&dst[i], src + 8 * i, 8); break;
    case ST_I32: memcpy(&v32, src + 4 * i, 4); dst[i] = v32; break;
    default:
      g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT,
                  "%s: tensor '%s' has dtype %s, expected I64 or I32",
                  f->path, t->name, st_dtype_name(t->dtype));
      return false;
    }
  }
  return true;
}

/* ---- writer ------------------------------------------------------------ */

bool st_write(const char *path, const st_out_tensor *tensors, size_t n,
              GError **err) {
  return st_write_meta(path, tensors, n, NULL, err);
}

GBytes *st_serialize(const st_out_tensor *tensors, size_t n,
                     const char *const *metadata) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  uint64_t offset = 0;
  for (size_t i = 0; i < n; i++) {
    const st_out_tensor *t = &tensors[i];
    uint64_t count = 1;
    for (int d = 0; d < t->ndim; d++) count *= (uint64_t)t->shape[d];
    uint64_t bytes = count * st_dtype_size(t->dtype);
    json_builder_set_member_name(b, t->name);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "dtype");
    json_builder_add_string_value(b, st_dtype_name(t->dtype));
    json_builder_set_member_name(b, "shape");
    json_builder_begin_array(b);
    for (int d = 0; d < t->ndim; d++) json_builder_add_int_value(b, t->shape[d]);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "data_offsets");
    json_builder_begin_array(b);
    json_builder_add_int_value(b, (gint64)offset);
    json_builder_add_int_value(b, (gint64)(offset + bytes));
    json_builder_end_array(b);
    json_builder_end_object(b);
    offset += bytes;
  }
  if (metadata) {
    json_builder_set_member_name(b, "__metadata__");
    json_builder_begin_object(b);
    for (const char *const *kv = metadata; kv[0] && kv[1]; kv += 2) {
      json_builder_set_member_name(b, kv[0]);
      json_builder_add_string_value(b, kv[1]);
    }
    json_builder_end_object(b);
  }
  json_builder_end_object(b);
  JsonGenerator *gen = json_generator_new();
  JsonNode *root = json_builder_get_root(b);
  json_generator_set_root(gen, root);
  gsize hlen = 0;
  char *header = json_generator_to_data(gen, &hlen);
  json_node_unref(root);
  g_object_unref(gen);
  g_object_unref(b);

  /* Length, then the header padded with spaces so the data section is
   * 8-byte aligned, then the tensors in order. */
  GByteArray *out = g_byte_array_sized_new((guint)(8 + hlen + 8 + offset));
  uint64_t padded = hlen + (8 - (8 + hlen) % 8) % 8;
  uint8_t len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (uint8_t)(padded >> (8 * i));
  g_byte_array_append(out, len8, 8);
  g_byte_array_append(out, (const guint8 *)header, (guint)hlen);
  for (uint64_t i = hlen; i < padded; i++) g_byte_array_append(out, (const guint8 *)" ", 1);
  g_free(header);
  for (size_t i = 0; i < n; i++) {
    const st_out_tensor *t = &tensors[i];
    uint64_t count = 1;
    for (int d = 0; d < t->ndim; d++) count *= (uint64_t)t->shape[d];
    g_byte_array_append(out, t->data, (guint)(count * st_dtype_size(t->dtype)));
  }
  return g_byte_array_free_to_bytes(out);
}

bool st_write_meta(const char *path, const st_out_tensor *tensors, size_t n,
                   const char *const *metadata, GError **err) {
  GBytes *bytes = st_serialize(tensors, n, metadata);
  gsize size = 0;
  const char *data = g_bytes_get_data(bytes, &size);
  GError *e = NULL;
  /* Atomic: a temporary file renamed over the target. */
  bool ok = g_file_set_contents(path, data ? data : "", (gssize)size, &e);
  g_bytes_unref(bytes);
  if (!ok) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_IO, "%s: cannot write: %s", path,
                e->message);
    g_error_free(e);
  }
  return ok;
}
