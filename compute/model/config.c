/* UNet2DModel config.json reader.  Defaults are diffusers' own (0.31); a
 * value this engine does not implement is an error naming field and value. */
#include <math.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "ddpm/ddpm.h"
#include "model/config.h"
#include "model/json.h"

typedef struct {
  JsonObject *obj;
  const char *src;
  GError **err;
  bool ok;
} reader;

static void fail(reader *r, int code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void fail(reader *r, int code, const char *fmt, ...) {
  if (!r->ok) return; /* keep the first error */
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(r->err, DDPM_ERROR, code, "%s: %s", r->src, msg);
  g_free(msg);
  r->ok = false;
}

/* The member, or NULL when absent or null (diffusers treats both alike). */
static JsonNode *member(reader *r, const char *key) {
  JsonNode *n = json_object_get_member(r->obj, key);
  return n && !JSON_NODE_HOLDS_NULL(n) ? n : NULL;
}

static bool node_int(JsonNode *n, int64_t *out) {
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
    return false;
  *out = json_node_get_int(n);
  return true;
}

static int get_int(reader *r, const char *key, int def, int lo, int hi) {
  JsonNode *n = member(r, key);
  if (!n) return def;
  int64_t v;
  if (!node_int(n, &v)) {
    fail(r, DDPM_ERROR_FORMAT, "%s must be an integer", key);
    return def;
  }
  if (v < lo || v > hi) {
    fail(r, DDPM_ERROR_UNSUPPORTED, "%s = %" G_GINT64_FORMAT " out of the "
         "supported range %d..%d", key, v, lo, hi);
    return def;
  }
  return (int)v;
}

static double get_number(reader *r, const char *key, double def) {
  JsonNode *n = member(r, key);
  if (!n) return def;
  GType t = JSON_NODE_HOLDS_VALUE(n) ? json_node_get_value_type(n) : G_TYPE_NONE;
  if (t == G_TYPE_INT64) return (double)json_node_get_int(n);
  if (t == G_TYPE_DOUBLE) return json_node_get_double(n);
  fail(r, DDPM_ERROR_FORMAT, "%s must be a number", key);
  return def;
}

static bool get_bool(reader *r, const char *key, bool def) {
  JsonNode *n = member(r, key);
  if (!n) return def;
  if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_BOOLEAN)
    return json_node_get_boolean(n);
  fail(r, DDPM_ERROR_FORMAT, "%s must be true or false", key);
  return def;
}

static const char *get_string(reader *r, const char *key, const char *def) {
  JsonNode *n = member(r, key);
  if (!n) return def;
  if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
    return json_node_get_string(n);
  fail(r, DDPM_ERROR_FORMAT, "%s must be a string", key);
  return def;
}

/* A string field that must be one of `allowed` (NULL-terminated). */
static void expect_string(reader *r, const char *key, const char *def,
                          const char *const *allowed) {
  const char *v = get_string(r, key, def);
  if (!r->ok) return;
  for (int i = 0; allowed[i]; i++)
    if (strcmp(v, allowed[i]) == 0) return;
  char *list = g_strjoinv(", ", (char **)allowed);
  fail(r, DDPM_ERROR_UNSUPPORTED, "%s = '%s' is not supported (supported: %s)",
       key, v, list);
  g_free(list);
}

static void expect_null(reader *r, const char *key) {
  if (member(r, key))
    fail(r, DDPM_ERROR_UNSUPPORTED, "%s is set; class conditioning is not "
         "supported (unconditional UNet2DModel only)", key);
}

/* Block type list: sets attn[i] for `attn_name`, requires `plain_name` else. */
static int get_blocks(reader *r, const char *key, const char *const *def,
                      int n_def, const char *plain_name, const char *attn_name,
                      bool *attn) {
  JsonNode *n = member(r, key);
  if (!n) {
    for (int i = 0; i < n_def; i++) attn[i] = strcmp(def[i], attn_name) == 0;
    return n_def;
  }
  if (!JSON_NODE_HOLDS_ARRAY(n)) {
    fail(r, DDPM_ERROR_FORMAT, "%s must be a list of block type names", key);
    return 0;
  }
  JsonArray *a = json_node_get_array(n);
  guint len = json_array_get_length(a);
  if (len < 1 || len > DDPM_MAX_LEVELS) {
    fail(r, DDPM_ERROR_UNSUPPORTED, "%s has %u entries (1..%d supported)", key,
         len, DDPM_MAX_LEVELS);
    return 0;
  }
  for (guint i = 0; i < len; i++) {
    JsonNode *e = json_array_get_element(a, i);
    const char *s = JSON_NODE_HOLDS_VALUE(e) &&
                    json_node_get_value_type(e) == G_TYPE_STRING
                      ? json_node_get_string(e) : NULL;
    if (!s) {
      fail(r, DDPM_ERROR_FORMAT, "%s[%u] must be a string", key, i);
      return 0;
    }
    if (strcmp(s, plain_name) && strcmp(s, attn_name)) {
      fail(r, DDPM_ERROR_UNSUPPORTED, "%s[%u]: unsupported block type '%s' "
           "(supported: %s, %s)", key, i, s, plain_name, attn_name);
      return 0;
    }
    attn[i] = strcmp(s, attn_name) == 0;
  }
  return (int)len;
}

static void check_groups(reader *r, const char *key, int groups, int channels,
                         const char *where) {
  if (r->ok && channels % groups)
    fail(r, DDPM_ERROR_UNSUPPORTED, "%s = %d does not divide the %d channels "
         "of %s", key, groups, channels, where);
}

static void check_heads(reader *r, int head_dim, int channels,
                        const char *where) {
  if (r->ok && head_dim && channels % head_dim)
    fail(r, DDPM_ERROR_UNSUPPORTED, "attention_head_dim = %d does not divide "
         "the %d channels of %s", head_dim, channels, where);
}

/* Every channel count a group norm or attention sees, as diffusers builds
 * the blocks (UNet2DModel.__init__). */
static void check_channels(reader *r, const ddpm_unet_config *c) {
  int n = c->n_levels, g = c->norm_num_groups;
  char where[96];
  for (int i = 0; i < n && r->ok; i++) {
    int ch = c->block_out_channels[i];
    g_snprintf(where, sizeof where, "down_blocks.%d", i);
    check_groups(r, "norm_num_groups", g, ch, where);
    if (c->down_attn[i]) check_heads(r, c->attention_head_dim, ch, where);
  }
  int mid = c->block_out_channels[n - 1];
  if (c->add_attention) {
    check_heads(r, c->attention_head_dim, mid, "mid_block");
    if (c->attn_norm_num_groups)
      check_groups(r, "attn_norm_num_groups", c->attn_norm_num_groups, mid,
                   "mid_block");
  }
  int out = c->block_out_channels[n - 1];
  for (int i = 0; i < n && r->ok; i++) {
    int prev = out;
    out = c->block_out_channels[n - 1 - i];
    int in = c->block_out_channels[MAX(n - 2 - i, 0)];
    for (int j = 0; j <= c->layers_per_block && r->ok; j++) {
      int res_in = (j == 0 ? prev : out) + (j == c->layers_per_block ? in : out);
      g_snprintf(where, sizeof where, "up_blocks.%d.resnets.%d", i, j);
      check_groups(r, "norm_num_groups", g, res_in, where);
    }
    g_snprintf(where, sizeof where, "up_blocks.%d", i);
    check_groups(r, "norm_num_groups", g, out, where);
    if (c->up_attn[i]) check_heads(r, c->attention_head_dim, out, where);
  }
}

static void read_config(reader *r, ddpm_unet_config *c) {
  static const char *const def_down[] = {"DownBlock2D", "AttnDownBlock2D",
                                         "AttnDownBlock2D", "AttnDownBlock2D"};
  static const char *const def_up[] = {"AttnUpBlock2D", "AttnUpBlock2D",
                                       "AttnUpBlock2D", "UpBlock2D"};
  static const char *const positional[] = {"positional", NULL};
  static const char *const silu[] = {"silu", "swish", NULL};
  static const char *const conv[] = {"conv", NULL};
  static const char *const default_shift[] = {"default", NULL};

  const char *cls = get_string(r, "_class_name", "UNet2DModel");
  if (r->ok && strcmp(cls, "UNet2DModel") != 0)
    fail(r, DDPM_ERROR_UNSUPPORTED, "_class_name = '%s'; only UNet2DModel is "
         "supported", cls);

  JsonNode *ss = member(r, "sample_size");
  if (ss && JSON_NODE_HOLDS_ARRAY(ss)) {
    /* [h, w]: only square sizes */
    JsonArray *a = json_node_get_array(ss);
    int64_t h = 0, w = 0;
    if (json_array_get_length(a) != 2 ||
        !node_int(json_array_get_element(a, 0), &h) ||
        !node_int(json_array_get_element(a, 1), &w) || h != w || h < 0 ||
        h > 65536)
      fail(r, DDPM_ERROR_UNSUPPORTED, "sample_size must be an integer or a "
           "square [size, size] list");
    c->sample_size = (int)h;
  } else {
    c->sample_size = get_int(r, "sample_size", 0, 0, 65536);
  }
  c->in_channels = get_int(r, "in_channels", 3, 1, 64);
  c->out_channels = get_int(r, "out_channels", 3, 1, 64);
  c->center_input_sample = get_bool(r, "center_input_sample", false);
  expect_string(r, "time_embedding_type", "positional", positional);
  c->freq_shift = (float)get_number(r, "freq_shift", 0);
  if (r->ok && !isfinite(c->freq_shift))
    fail(r, DDPM_ERROR_UNSUPPORTED, "freq_shift must be finite");
  c->flip_sin_to_cos = get_bool(r, "flip_sin_to_cos", true);

  bool down_attn[DDPM_MAX_LEVELS], up_attn[DDPM_MAX_LEVELS];
  int nd = get_blocks(r, "down_block_types", def_down, 4, "DownBlock2D",
                      "AttnDownBlock2D", down_attn);
  int nu = r->ok ? get_blocks(r, "up_block_types", def_up, 4, "UpBlock2D",
                              "AttnUpBlock2D", up_attn) : 0;

  JsonNode *bc = member(r, "block_out_channels");
  if (!r->ok) return;
  if (!bc) {
    static const int def[] = {224, 448, 672, 896};
    c->n_levels = 4;
    memcpy(c->block_out_channels, def, sizeof def);
  } else if (!JSON_NODE_HOLDS_ARRAY(bc)) {
    fail(r, DDPM_ERROR_FORMAT, "block_out_channels must be a list of integers");
    return;
  } else {
    JsonArray *a = json_node_get_array(bc);
    guint len = json_array_get_length(a);
    if (len < 1 || len > DDPM_MAX_LEVELS) {
      fail(r, DDPM_ERROR_UNSUPPORTED, "block_out_channels has %u entries "
           "(1..%d supported)", len, DDPM_MAX_LEVELS);
      return;
    }
    c->n_levels = (int)len;
    for (guint i = 0; i < len; i++) {
      int64_t v;
      if (!node_int(json_array_get_element(a, i), &v) || v < 1 || v > 8192) {
        fail(r, DDPM_ERROR_FORMAT, "block_out_channels[%u] must be an integer "
             "in 1..8192", i);
        return;
      }
      c->block_out_channels[i] = (int)v;
    }
  }
  if (nd != c->n_levels || nu != c->n_levels) {
    fail(r, DDPM_ERROR_FORMAT, "down_block_types (%d), up_block_types (%d) "
         "and block_out_channels (%d) must have the same length", nd, nu,
         c->n_levels);
    return;
  }
  int mult = 1 << (c->n_levels - 1);
  if (c->sample_size % mult || c->sample_size > 16384) {
    fail(r, DDPM_ERROR_UNSUPPORTED, "sample_size = %d is not a multiple of %d "
         "(the model has %d levels) up to 16384", c->sample_size, mult,
         c->n_levels);
    return;
  }
  memcpy(c->down_attn, down_attn, sizeof down_attn);
  memcpy(c->up_attn, up_attn, sizeof up_attn);

  c->layers_per_block = get_int(r, "layers_per_block", 2, 1, 16);
  c->mid_block_scale_factor = (float)get_number(r, "mid_block_scale_factor", 1);
  if (r->ok && !(c->mid_block_scale_factor > 0 &&
                 isfinite(c->mid_block_scale_factor)))
    fail(r, DDPM_ERROR_UNSUPPORTED, "mid_block_scale_factor must be finite "
         "and > 0");
  c->downsample_padding = get_int(r, "downsample_padding", 1, 0, 8);
  expect_string(r, "downsample_type", "conv", conv);
  expect_string(r, "upsample_type", "conv", conv);
  expect_string(r, "act_fn", "silu", silu);
  c->attention_head_dim = get_int(r, "attention_head_dim", 0, 1, 8192);
  c->norm_num_groups = get_int(r, "norm_num_groups", 32, 1, 8192);
  c->attn_norm_num_groups = get_int(r, "attn_norm_num_groups", 0, 1, 8192);
  c->norm_eps = (float)get_number(r, "norm_eps", 1e-5);
  if (r->ok && !(c->norm_eps > 0 && c->norm_eps < 1))
    fail(r, DDPM_ERROR_UNSUPPORTED, "norm_eps must be in (0, 1)");
  expect_string(r, "resnet_time_scale_shift", "default", default_shift);
  c->add_attention = get_bool(r, "add_attention", true);
  expect_null(r, "class_embed_type");
  expect_null(r, "num_class_embeds");
  if (r->ok && member(r, "norm_num_groups") == NULL &&
      json_object_has_member(r->obj, "norm_num_groups"))
    fail(r, DDPM_ERROR_UNSUPPORTED, "norm_num_groups = null is not supported");
  if (r->ok) check_channels(r, c);
}

bool ddpm_unet_config_parse(const char *json, size_t len, const char *source,
                            ddpm_unet_config *cfg, GError **err) {
  memset(cfg, 0, sizeof *cfg);
  GError *jerr = NULL;
  JsonParser *parser = ddpm_json_parse(json, len, &jerr);
  if (!parser) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT, "%s: invalid JSON: %s",
                source, jerr->message);
    g_error_free(jerr);
    return false;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT,
                "%s: expected a JSON object", source);
    g_object_unref(parser);
    return false;
  }
  reader r = {json_node_get_object(root), source, err, true};
  read_config(&r, cfg);
  g_object_unref(parser);
  return r.ok;
}

bool ddpm_unet_config_load(const char *path, ddpm_unet_config *cfg,
                           GError **err) {
  char *text = NULL;
  gsize len = 0;
  GError *e = NULL;
  if (!g_file_get_contents(path, &text, &len, &e)) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_IO, "%s: cannot read: %s", path,
                e->message);
    g_error_free(e);
    return false;
  }
  if (len > (16u << 20)) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT,
                "%s: %zu bytes is too large for a config file", path, (size_t)len);
    g_free(text);
    return false;
  }
  bool ok = ddpm_unet_config_parse(text, len, path, cfg, err);
  g_free(text);
  return ok;
}
