/* Hostile model folders: a thousand and more deterministic mutations of the
 * tiny golden model (config.json, scheduler_config.json and the safetensors
 * file), each loaded through ddpm_model_load on one context.  Every load must
 * either succeed or fail with a DDPM_ERROR whose message names the file (and
 * the field, where one field was given a value of the wrong type); the
 * sanitizer build checks that none of them crashes, leaks or overflows.
 * A few mutated PNGs go through the CLI's reader (tools/png_io.c) too.
 *
 * test_model_errors checks specific messages; this one checks breadth.
 * Set DDPM_MUTATE_VERBOSE=1 to see every error message. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "golden.h"
#include "png_io.h"

#define SEED 20261125
#define WEIGHTS "diffusion_pytorch_model.safetensors"

enum { F_CONFIG, F_SCHED, F_WEIGHTS, N_FILES };
static const char *const file_names[N_FILES] = {
  "config.json", "scheduler_config.json", WEIGHTS};

typedef enum { EXPECT_ANY, EXPECT_FAIL, EXPECT_OK } expect;

static ddpm_context *ctx;
static char *tmpdir;
static char *paths[N_FILES];
static GBytes *good[N_FILES];
static bool dirty[N_FILES];
static GRand *rng;
static bool verbose;
static int n_tried, n_loaded, n_rejected;

/* ---- the folder ---------------------------------------------------------- */

/* Not g_file_set_contents: its fsync costs seconds over a thousand files. */
static void write_file(const char *path, const void *data, size_t len) {
  FILE *fp = g_fopen(path, "wb");
  g_assert_nonnull(fp);
  g_assert_cmpuint(fwrite(data, 1, len, fp), ==, len);
  g_assert_cmpint(fclose(fp), ==, 0);
}

static void put(int which, const void *data, size_t len) {
  if (g_file_test(paths[which], G_FILE_TEST_IS_DIR)) g_rmdir(paths[which]);
  if (data) write_file(paths[which], data, len);
  else g_unlink(paths[which]);
  dirty[which] = true;
}

static void restore(void) {
  for (int i = 0; i < N_FILES; i++)
    if (dirty[i]) {
      put(i, g_bytes_get_data(good[i], NULL), g_bytes_get_size(good[i]));
      dirty[i] = false;
    }
}

/* Loads the folder.  A failure must be a DDPM_ERROR naming a file of the
 * folder and, when `field` is given and the message is about `which`, the
 * field too. */
static void load(const char *what, int which, expect want, const char *field) {
  GError *err = NULL;
  ddpm_model *m = ddpm_model_load(ctx, tmpdir, &err);
  n_tried++;
  if (m) {
    g_assert_no_error(err);
    ddpm_model_info info;
    ddpm_model_get_info(m, &info);
    g_assert_cmpint(info.n_levels, >=, 1);
    ddpm_model_free(m);
    n_loaded++;
    if (verbose) g_printerr("[%s] loaded\n", what);
    if (want == EXPECT_FAIL) g_error("[%s] loaded; expected an error", what);
  } else {
    n_rejected++;
    g_assert_nonnull(err);
    if (verbose) g_printerr("[%s] %s\n", what, err->message);
    if (err->domain != DDPM_ERROR)
      g_error("[%s] error outside DDPM_ERROR: %s", what, err->message);
    if (want == EXPECT_OK) g_error("[%s] expected to load: %s", what, err->message);
    bool named = false;
    for (int i = 0; i < N_FILES; i++)
      if (strstr(err->message, paths[i])) named = true;
    if (!named && !strstr(err->message, tmpdir))
      g_error("[%s] message names no file: %s", what, err->message);
    if (field && g_str_has_prefix(err->message, paths[which]) &&
        !strstr(err->message, field))
      g_error("[%s] message does not name '%s': %s", what, field, err->message);
    g_error_free(err);
  }
}

/* ---- JSON helpers -------------------------------------------------------- */

#define HOLE "@@HOLE@@"

/* Text of `root` with the string "@@HOLE@@" (quotes included) replaced by
 * the raw text `raw`. */
static char *json_with_hole(JsonNode *root, const char *raw) {
  JsonGenerator *gen = json_generator_new();
  json_generator_set_root(gen, root);
  char *text = json_generator_to_data(gen, NULL);
  g_object_unref(gen);
  char **parts = g_strsplit(text, "\"" HOLE "\"", -1);
  char *out = g_strjoinv(raw, parts);
  g_strfreev(parts);
  g_free(text);
  return out;
}

static JsonNode *parse_copy(GBytes *b, size_t skip, size_t len) {
  JsonParser *p = json_parser_new();
  g_assert_true(json_parser_load_from_data(
    p, (const char *)g_bytes_get_data(b, NULL) + skip, (gssize)len, NULL));
  JsonNode *root = json_node_copy(json_parser_get_root(p));
  g_object_unref(p);
  return root;
}

/* Values of every JSON type and a few hostile numbers. */
typedef enum { J_NULL, J_BOOL, J_INT, J_NUM, J_INF, J_STR, J_LIST, J_OBJ,
               J_HUGE /* refused wherever it is */ } jtype;
static const struct { const char *text; jtype type; } values[] = {
  {"null", J_NULL},
  {"true", J_BOOL},
  {"false", J_BOOL},
  {"0", J_INT},
  {"-1", J_INT},
  {"3", J_INT},
  {"2147483648", J_INT},
  {"9223372036854775807", J_INT},
  {"-9223372036854775808", J_INT},
  {"1099511627776", J_INT},
  {"0.5", J_NUM},
  {"1e999", J_INF},                /* json-glib: inf */
  {"-1e999", J_INF},
  {"18446744073709551617", J_HUGE}, /* 2^64 + 1: wraps to 1 in json-glib */
  {"99999999999999999999999999999", J_HUGE},
  {"-9223372036854775809", J_HUGE},
  {"\"x\"", J_STR},
  {"\"\"", J_STR},
  {"[]", J_LIST},
  {"[1, 2]", J_LIST},
  {"[\"DownBlock2D\"]", J_LIST},
  {"[[1]]", J_LIST},
  {"{}", J_OBJ},
};

/* What a config field accepts; K_IGNORED fields are not read. */
typedef enum { K_IGNORED, K_INT, K_NUM, K_BOOL, K_STR, K_BLOCKS, K_CHANNELS,
               K_SIZE, K_MUST_BE_NULL, K_BETAS } kind;

/* Whether a value of type t can be right for kind k (else: must fail). */
static bool type_fits(kind k, jtype t, const char *text) {
  if (t == J_NULL || k == K_IGNORED) return t != J_HUGE;
  switch (k) {
  case K_INT: return t == J_INT;
  case K_NUM: return t == J_INT || t == J_NUM;
  case K_BOOL: return t == J_BOOL;
  case K_STR: return false; /* "x" and "" are no supported value */
  case K_BLOCKS: return !strcmp(text, "[\"DownBlock2D\"]");
  case K_CHANNELS: return !strcmp(text, "[1, 2]");
  case K_SIZE: return t == J_INT;
  case K_MUST_BE_NULL: return false;
  case K_BETAS: return false; /* never 1000 numbers */
  default: return true;
  }
}

/* Every value into every field of a JSON file, then every field removed. */
static void mutate_fields(int which, const char *const *names,
                          const kind *kinds, size_t n) {
  GBytes *b = good[which];
  JsonNode *root = parse_copy(b, 0, g_bytes_get_size(b));
  JsonObject *o = json_node_get_object(root);
  for (size_t f = 0; f < n; f++) {
    JsonNode *saved = json_object_get_member(o, names[f]);
    if (saved) saved = json_node_copy(saved);
    for (size_t v = 0; v < G_N_ELEMENTS(values); v++) {
      json_object_set_string_member(o, names[f], HOLE);
      char *text = json_with_hole(root, values[v].text);
      put(which, text, strlen(text));
      char *what = g_strdup_printf("%s %s = %s", file_names[which], names[f],
                                   values[v].text);
      bool fits = type_fits(kinds[f], values[v].type, values[v].text);
      /* A value of the wrong type must be refused, naming the field. */
      load(what, which, fits ? EXPECT_ANY : EXPECT_FAIL,
           !fits && values[v].type != J_HUGE ? names[f] : NULL);
      g_free(what);
      g_free(text);
    }
    json_object_remove_member(o, names[f]);
    char *text = json_with_hole(root, "");
    put(which, text, strlen(text));
    char *what = g_strdup_printf("%s without %s", file_names[which], names[f]);
    load(what, which, EXPECT_ANY, NULL);
    g_free(what);
    g_free(text);
    if (saved) json_object_set_member(o, names[f], saved);
  }
  json_node_unref(root);
  restore();
}

/* Raw text damage common to the JSON files: empty, truncated, flipped,
 * deep, not UTF-8. */
static void mutate_text(int which, int n_flips) {
  const char *text = g_bytes_get_data(good[which], NULL);
  size_t len = g_bytes_get_size(good[which]);
  const char *fname = file_names[which];
  char *what;

  put(which, "", 0);
  load("empty", which, EXPECT_FAIL, NULL);
  for (size_t at = 1; at < len; at += 1 + len / 40) {
    put(which, text, at);
    what = g_strdup_printf("%s truncated to %zu", fname, at);
    load(what, which, EXPECT_FAIL, NULL);
    g_free(what);
  }
  char *buf = g_malloc(len);
  for (int i = 0; i < n_flips; i++) {
    memcpy(buf, text, len);
    size_t at = (size_t)g_rand_int_range(rng, 0, (gint32)len);
    buf[at] = (char)(buf[at] ^ g_rand_int_range(rng, 1, 256));
    put(which, buf, len);
    what = g_strdup_printf("%s byte %zu flipped", fname, at);
    load(what, which, EXPECT_ANY, NULL);
    g_free(what);
  }
  g_free(buf);

  static const char *const hostile[] = {
    "{\"a\": \"\xff\xfe\"}",               /* not UTF-8 */
    "{\"a\": \"\\ud800\"}",                 /* lone surrogate */
    "{\"a\": \"\\u0000\"}",
    "{\"a\": \"\\\\u0000\"}",           /* an escaped backslash, then u0000 */
    "{\"a\": 1} trailing",
    "{\"a\": 0x10}",
    "{\"a\": 1, \"a\": [}",
    "null",
    "[]",
    "\"UNet2DModel\"",
    "{\"a\":",
    "{\"in_channels\": 1e400}",
    "{\"num_train_timesteps\": 1e400}",
    "{\"steps_offset\": -1e300}",
  };
  for (size_t i = 0; i < G_N_ELEMENTS(hostile); i++) {
    put(which, hostile[i], strlen(hostile[i]));
    what = g_strdup_printf("%s = %s", fname, hostile[i]);
    load(what, which, EXPECT_ANY, NULL);
    g_free(what);
  }
  /* A NUL byte inside, text after it. */
  put(which, "{\"a\": 1}\0{\"b\": [", 17);
  load("NUL inside", which, EXPECT_FAIL, NULL);

  /* Deep nesting: 100k '[' (json-glib recurses per level), then '{'. */
  size_t deep = 100000;
  buf = g_malloc(deep + 16);
  memset(buf, '[', deep);
  put(which, buf, deep);
  load("100k [", which, EXPECT_FAIL, NULL);
  for (size_t i = 0; i + 5 < deep; i += 5) memcpy(buf + i, "{\"a\":", 5);
  put(which, buf, deep - deep % 5);
  load("20k {\"a\":", which, EXPECT_FAIL, NULL);
  g_free(buf);

  /* A folder where the file should be. */
  put(which, NULL, 0);
  g_assert_cmpint(g_mkdir(paths[which], 0700), ==, 0);
  load("a folder", which, EXPECT_FAIL, NULL);
  g_rmdir(paths[which]);
  restore();
}

/* ---- config.json and scheduler_config.json ------------------------------ */

static void test_config(void) {
  static const char *const names[] = {
    "_class_name", "sample_size", "in_channels", "out_channels",
    "center_input_sample", "time_embedding_type", "freq_shift",
    "flip_sin_to_cos", "down_block_types", "up_block_types",
    "block_out_channels", "layers_per_block", "mid_block_scale_factor",
    "downsample_padding", "downsample_type", "upsample_type", "act_fn",
    "attention_head_dim", "norm_num_groups", "attn_norm_num_groups",
    "norm_eps", "resnet_time_scale_shift", "add_attention",
    "class_embed_type", "num_class_embeds", "dropout", "_diffusers_version"};
  static const kind kinds[] = {
    K_STR, K_SIZE, K_INT, K_INT, K_BOOL, K_STR, K_NUM, K_BOOL, K_BLOCKS,
    K_BLOCKS, K_CHANNELS, K_INT, K_NUM, K_INT, K_STR, K_STR, K_STR, K_INT,
    K_INT, K_INT, K_NUM, K_STR, K_BOOL, K_MUST_BE_NULL, K_MUST_BE_NULL,
    K_IGNORED, K_IGNORED};
  G_STATIC_ASSERT(G_N_ELEMENTS(names) == G_N_ELEMENTS(kinds));
  int before = n_tried;
  mutate_fields(F_CONFIG, names, kinds, G_N_ELEMENTS(names));
  mutate_text(F_CONFIG, 60);
  if (g_test_verbose()) g_printerr("config.json: %d loads\n", n_tried - before);
}

static void test_scheduler(void) {
  static const char *const names[] = {
    "num_train_timesteps", "beta_start", "beta_end", "beta_schedule",
    "variance_type", "prediction_type", "timestep_spacing", "clip_sample",
    "clip_sample_range", "set_alpha_to_one", "steps_offset", "thresholding",
    "rescale_betas_zero_snr", "trained_betas", "_class_name"};
  static const kind kinds[] = {
    K_NUM, K_NUM, K_NUM, K_STR, K_STR, K_STR, K_STR, K_BOOL, K_NUM, K_BOOL,
    K_NUM, K_BOOL, K_BOOL, K_BETAS, K_IGNORED};
  G_STATIC_ASSERT(G_N_ELEMENTS(names) == G_N_ELEMENTS(kinds));
  int before = n_tried;
  mutate_fields(F_SCHED, names, kinds, G_N_ELEMENTS(names));
  mutate_text(F_SCHED, 40);

  /* Large but allowed schedules, and trained_betas of the wrong length. */
  static const char *const texts[] = {
    "{\"num_train_timesteps\": 100000}",
    "{\"num_train_timesteps\": 100001}",
    "{\"num_train_timesteps\": 2, \"trained_betas\": [0.1, 0.2]}",
    "{\"num_train_timesteps\": 2, \"trained_betas\": [0.1, 1.0]}",
    "{\"num_train_timesteps\": 2, \"trained_betas\": [0.1]}",
    "{\"num_train_timesteps\": 2, \"trained_betas\": [0.1, \"x\"]}",
    "{\"num_train_timesteps\": 2, \"steps_offset\": 2}",
    "{\"beta_schedule\": \"squaredcos_cap_v2\", \"num_train_timesteps\": 3}",
    "{\"beta_start\": 0.5, \"beta_end\": 1e-300}",
  };
  static const expect want[] = {EXPECT_OK, EXPECT_FAIL, EXPECT_OK, EXPECT_FAIL,
                                EXPECT_FAIL, EXPECT_FAIL, EXPECT_FAIL,
                                EXPECT_OK, EXPECT_ANY};
  for (size_t i = 0; i < G_N_ELEMENTS(texts); i++) {
    put(F_SCHED, texts[i], strlen(texts[i]));
    load(texts[i], F_SCHED, want[i], NULL);
  }
  restore();
  if (g_test_verbose()) g_printerr("scheduler_config.json: %d loads\n", n_tried - before);
}

/* ---- the safetensors file ------------------------------------------------- */

static size_t header_len(void) {
  const guint8 *w = g_bytes_get_data(good[F_WEIGHTS], NULL);
  guint64 hl = 0;
  for (int i = 7; i >= 0; i--) hl = hl << 8 | w[i];
  return (size_t)hl;
}

/* Writes length prefix + header text (as given) + the good data section. */
static void put_weights(const char *header, size_t hlen, const void *data,
                        size_t dlen) {
  guint8 *b = g_malloc(8 + hlen + dlen);
  for (int i = 0; i < 8; i++) b[i] = (guint8)((guint64)hlen >> (8 * i));
  memcpy(b + 8, header, hlen);
  if (dlen) memcpy(b + 8 + hlen, data, dlen);
  put(F_WEIGHTS, b, 8 + hlen + dlen);
  g_free(b);
}

static const guint8 *good_data(size_t *dlen) {
  size_t hl = header_len();
  *dlen = g_bytes_get_size(good[F_WEIGHTS]) - 8 - hl;
  return (const guint8 *)g_bytes_get_data(good[F_WEIGHTS], NULL) + 8 + hl;
}

static void test_truncate_and_flip(void) {
  const guint8 *w = g_bytes_get_data(good[F_WEIGHTS], NULL);
  size_t n = g_bytes_get_size(good[F_WEIGHTS]), hl = header_len();
  char what[96];
  put(F_WEIGHTS, "", 0);
  load("empty weights", F_WEIGHTS, EXPECT_FAIL, NULL);
  /* Every offset of the length prefix, ~100 in the header, ~60 in the data. */
  GArray *cuts = g_array_new(FALSE, FALSE, sizeof(size_t));
  for (size_t at = 1; at <= 9; at++) g_array_append_val(cuts, at);
  for (size_t at = 9; at < 8 + hl; at += hl / 100 + 1) g_array_append_val(cuts, at);
  size_t edge[] = {8 + hl - 1, 8 + hl, 8 + hl + 1, n - 1};
  for (size_t i = 0; i < G_N_ELEMENTS(edge); i++) g_array_append_val(cuts, edge[i]);
  for (size_t at = 8 + hl + 2; at < n; at += (n - hl) / 60 + 1) g_array_append_val(cuts, at);
  for (guint i = 0; i < cuts->len; i++) {
    size_t at = g_array_index(cuts, size_t, i);
    put(F_WEIGHTS, w, at);
    g_snprintf(what, sizeof what, "weights truncated to %zu of %zu", at, n);
    load(what, F_WEIGHTS, EXPECT_FAIL, NULL);
  }
  g_array_free(cuts, TRUE);

  /* Random bytes in the header, one to four at a time. */
  guint8 *buf = g_malloc(n);
  for (int i = 0; i < 260; i++) {
    memcpy(buf, w, n);
    int k = 1 + i % 4;
    for (int j = 0; j < k; j++) {
      size_t at = 8 + (size_t)g_rand_int_range(rng, 0, (gint32)hl);
      buf[at] = i % 2 ? (guint8)g_rand_int_range(rng, 0, 256)
                      : (guint8)(buf[at] ^ (1u << g_rand_int_range(rng, 0, 8)));
    }
    put(F_WEIGHTS, buf, n);
    g_snprintf(what, sizeof what, "header: %d random bytes (%d)", k, i);
    load(what, F_WEIGHTS, EXPECT_ANY, NULL);
  }
  /* Digits of the header changed to other digits (offsets and shapes). */
  for (int i = 0; i < 120; i++) {
    memcpy(buf, w, n);
    char *h = (char *)buf + 8;
    for (int tries = 0; tries < 1000; tries++) {
      size_t at = (size_t)g_rand_int_range(rng, 0, (gint32)hl);
      if (g_ascii_isdigit(h[at])) {
        h[at] = (char)('0' + g_rand_int_range(rng, 0, 10));
        break;
      }
    }
    put(F_WEIGHTS, buf, n);
    g_snprintf(what, sizeof what, "header: a digit changed (%d)", i);
    load(what, F_WEIGHTS, EXPECT_ANY, NULL);
  }
  /* Random bytes in the data: any bit pattern is a valid float. */
  for (int i = 0; i < 6; i++) {
    memcpy(buf, w, n);
    for (int j = 0; j < 64; j++)
      buf[8 + hl + (size_t)g_rand_int_range(rng, 0, (gint32)(n - 8 - hl))] =
        (guint8)g_rand_int_range(rng, 0, 256);
    put(F_WEIGHTS, buf, n);
    g_snprintf(what, sizeof what, "data: random bytes (%d)", i);
    load(what, F_WEIGHTS, EXPECT_OK, NULL);
  }
  /* The length prefix: off by one, zero, all ones, past the file, ... */
  const guint64 lens[] = {0, 1, 2, hl - 1, hl + 1, n - 8, n - 7, n,
                          (guint64)100 << 20, ((guint64)100 << 20) + 1,
                          (guint64)1 << 32, (guint64)1 << 40, (guint64)1 << 63,
                          G_MAXUINT64, G_MAXUINT64 - 7, G_MAXUINT64 - 8};
  for (size_t i = 0; i < G_N_ELEMENTS(lens); i++) {
    memcpy(buf, w, n);
    for (int b = 0; b < 8; b++) buf[b] = (guint8)(lens[i] >> (8 * b));
    put(F_WEIGHTS, buf, n);
    g_snprintf(what, sizeof what, "header length %" G_GUINT64_FORMAT, lens[i]);
    load(what, F_WEIGHTS, EXPECT_FAIL, NULL);
  }
  for (int b = 0; b < 8; b++) {
    memcpy(buf, w, n);
    buf[b] = 0xff;
    put(F_WEIGHTS, buf, n);
    g_snprintf(what, sizeof what, "header length byte %d = 0xff", b);
    load(what, F_WEIGHTS, EXPECT_FAIL, NULL);
  }
  g_free(buf);
  restore();
}

/* NaN, Inf and subnormal weights, and the file converted to other float
 * dtypes: all load (non-finite weights are caught by ddpm_sample, see
 * test_sample's test_non_finite). */
static void test_values(void) {
  GError *err = NULL;
  const guint8 *w = g_bytes_get_data(good[F_WEIGHTS], NULL);
  size_t n = g_bytes_get_size(good[F_WEIGHTS]), hl = header_len();
  guint8 *buf = g_memdup2(w, n);
  const float specials[] = {NAN, INFINITY, -INFINITY, 1e-45f, -0.0f, 3.4e38f};
  for (size_t i = 0; i < G_N_ELEMENTS(specials); i++) {
    memcpy(buf, w, n);
    for (int j = 0; j < 16; j++) {
      size_t at = (size_t)g_rand_int_range(rng, 0, (gint32)((n - 8 - hl) / 4));
      memcpy(buf + 8 + hl + 4 * at, &specials[i], 4);
    }
    put(F_WEIGHTS, buf, n);
    char what[64];
    g_snprintf(what, sizeof what, "weights with %g", (double)specials[i]);
    load(what, F_WEIGHTS, EXPECT_OK, NULL);
  }
  g_free(buf);

  st_file *f = st_open_memory(w, n, "tiny", &err);
  g_assert_no_error(err);
  const st_dtype to[] = {ST_F16, ST_BF16, ST_F64, ST_I32};
  for (size_t d = 0; d < G_N_ELEMENTS(to); d++) {
    st_out_tensor *out = g_new0(st_out_tensor, st_count(f));
    for (size_t i = 0; i < st_count(f); i++) {
      const st_tensor *t = st_tensor_at(f, i);
      float *src = golden_f32(f, t->name, NULL);
      uint8_t *dst = g_malloc(t->n_elements * 8 + 1);
      for (uint64_t k = 0; k < t->n_elements; k++) {
        float v = src[k];
        if (i == 0 && k == 0) v = d % 2 ? INFINITY : 70000.0f; /* overflows F16 */
        uint16_t h = to[d] == ST_F16 ? st_f32_to_f16(v) : 0;
        uint32_t bits;
        memcpy(&bits, &v, 4);
        if (to[d] == ST_BF16) h = (uint16_t)(bits >> 16);
        double dv = v;
        int32_t iv = (int32_t)(v * 100);
        if (to[d] == ST_F64) memcpy(dst + 8 * k, &dv, 8);
        else if (to[d] == ST_I32) memcpy(dst + 4 * k, &iv, 4);
        else memcpy(dst + 2 * k, &h, 2);
      }
      g_free(src);
      out[i] = (st_out_tensor){.name = t->name, .dtype = to[d], .ndim = t->ndim,
                               .data = dst};
      memcpy(out[i].shape, t->shape, sizeof out[i].shape);
    }
    g_assert_true(st_write(paths[F_WEIGHTS], out, st_count(f), &err));
    g_assert_no_error(err);
    dirty[F_WEIGHTS] = true;
    char what[64];
    g_snprintf(what, sizeof what, "weights as %s", st_dtype_name(to[d]));
    load(what, F_WEIGHTS, to[d] == ST_I32 ? EXPECT_FAIL : EXPECT_OK,
         to[d] == ST_I32 ? "I32" : NULL);
    for (size_t i = 0; i < st_count(f); i++) g_free((void *)out[i].data);
    g_free(out);
  }
  st_close(f);
  restore();
}

/* One header entry edited: every value into dtype, shape, data_offsets, an
 * element of each, and the entry itself; then names, order and overlaps. */
static void test_header_entries(void) {
  size_t hl = header_len(), dlen;
  const guint8 *data = good_data(&dlen);
  JsonNode *root = parse_copy(good[F_WEIGHTS], 8, hl);
  JsonObject *o = json_node_get_object(root);
  GList *members = json_object_get_members(o);
  /* Copies: json-glib frees a member's key when the member is replaced. */
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  for (GList *l = members; l; l = l->next)
    if (strcmp(l->data, "__metadata__")) g_ptr_array_add(names, g_strdup(l->data));
  g_list_free(members);
  char what[256];

  /* A handful of entries: the first, the last and random ones. */
  guint picks[6] = {0, names->len - 1};
  for (int i = 2; i < 6; i++) picks[i] = (guint)g_rand_int_range(rng, 0, (gint32)names->len);
  static const char *const parts[] = {"dtype", "shape", "data_offsets",
                                      "shape[0]", "data_offsets[0]",
                                      "data_offsets[1]", "(entry)"};
  for (int p = 0; p < 6; p++) {
    const char *name = names->pdata[picks[p]];
    JsonObject *e = json_object_get_object_member(o, name);
    for (size_t part = 0; part < G_N_ELEMENTS(parts); part++) {
      for (size_t v = 0; v < G_N_ELEMENTS(values); v++) {
        JsonNode *saved = NULL;
        JsonArray *arr = NULL;
        int idx = -1;
        const char *key = parts[part];
        if (part == 6) {
          saved = json_node_copy(json_object_get_member(o, name));
          json_object_set_string_member(o, name, HOLE);
        } else if (part >= 3) {
          key = part == 3 ? "shape" : "data_offsets";
          idx = part == 5 ? 1 : 0;
          arr = json_object_get_array_member(e, key);
          if ((guint)idx >= json_array_get_length(arr)) continue; /* a scalar */
          saved = json_node_copy(json_array_get_element(arr, (guint)idx));
          /* JsonArray has no setter: rebuild it around the hole. */
          JsonArray *na = json_array_new();
          for (guint k = 0; k < json_array_get_length(arr); k++)
            if ((int)k == idx) json_array_add_string_element(na, HOLE);
            else json_array_add_element(na, json_node_copy(json_array_get_element(arr, k)));
          json_object_set_array_member(e, key, na);
        } else {
          saved = json_node_copy(json_object_get_member(e, key));
          json_object_set_string_member(e, key, HOLE);
        }
        char *text = json_with_hole(root, values[v].text);
        put_weights(text, strlen(text), data, dlen);
        g_snprintf(what, sizeof what, "tensor %s %s = %s", name, parts[part],
                   values[v].text);
        /* Only the same value again may load. */
        load(what, F_WEIGHTS, EXPECT_ANY, NULL);
        g_free(text);
        if (part == 6) {
          json_object_set_member(o, name, saved);
          e = json_node_get_object(saved);
        } else if (idx >= 0) {
          JsonArray *cur = json_object_get_array_member(e, key);
          JsonArray *na = json_array_new();
          for (guint k = 0; k < json_array_get_length(cur); k++)
            json_array_add_element(na, (int)k == idx ? json_node_copy(saved)
                                   : json_node_copy(json_array_get_element(cur, k)));
          json_node_unref(saved);
          json_object_set_array_member(e, key, na);
        } else {
          json_object_set_member(e, key, saved);
        }
      }
    }
    /* Every dtype name, known or not. */
    static const char *const dtypes[] = {"F32", "F16", "BF16", "F64", "I64",
                                         "I32", "I16", "I8", "U8", "BOOL",
                                         "f32", "F8_E4M3", "Q4", "F32 ", ""};
    for (size_t d = 0; d < G_N_ELEMENTS(dtypes); d++) {
      JsonNode *saved = json_node_copy(json_object_get_member(e, "dtype"));
      json_object_set_string_member(e, "dtype", dtypes[d]);
      char *text = json_with_hole(root, "");
      put_weights(text, strlen(text), data, dlen);
      g_snprintf(what, sizeof what, "tensor %s dtype %s", name, dtypes[d]);
      load(what, F_WEIGHTS, d == 0 ? EXPECT_OK : EXPECT_FAIL, NULL);
      g_free(text);
      json_object_set_member(e, "dtype", saved);
    }
    /* Each field removed; nine dimensions; shape of a huge tensor. */
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    for (size_t k = 0; k < 3; k++) {
      JsonNode *saved = json_node_copy(json_object_get_member(e, fields[k]));
      json_object_remove_member(e, fields[k]);
      char *text = json_with_hole(root, "");
      put_weights(text, strlen(text), data, dlen);
      g_snprintf(what, sizeof what, "tensor %s without %s", name, fields[k]);
      load(what, F_WEIGHTS, EXPECT_FAIL, fields[k]);
      g_free(text);
      json_object_set_member(e, fields[k], saved);
    }
    static const char *const shapes[] = {
      "[1,1,1,1,1,1,1,1,1]", "[1099511627776, 1099511627776]",
      "[1099511627777]", "[4294967296, 4294967296, 4]", "[0]", "[]",
      "[-1, -1]", "[1.5]"};
    for (size_t k = 0; k < G_N_ELEMENTS(shapes); k++) {
      JsonNode *saved = json_node_copy(json_object_get_member(e, "shape"));
      json_object_set_string_member(e, "shape", HOLE);
      char *text = json_with_hole(root, shapes[k]);
      put_weights(text, strlen(text), data, dlen);
      g_snprintf(what, sizeof what, "tensor %s shape %s", name, shapes[k]);
      load(what, F_WEIGHTS, EXPECT_FAIL, NULL);
      g_free(text);
      json_object_set_member(e, "shape", saved);
    }
  }

  /* Offsets: two entries swapped (same sizes: loads; else fails), one
   * overlapping its neighbour, gaps, offsets near 2^63. */
  for (int i = 0; i < 40; i++) {
    const char *a = names->pdata[g_rand_int_range(rng, 0, (gint32)names->len)];
    const char *b = names->pdata[g_rand_int_range(rng, 0, (gint32)names->len)];
    JsonObject *ea = json_object_get_object_member(o, a);
    JsonObject *eb = json_object_get_object_member(o, b);
    JsonNode *oa = json_node_copy(json_object_get_member(ea, "data_offsets"));
    JsonNode *ob = json_node_copy(json_object_get_member(eb, "data_offsets"));
    int mode = i % 4;
    if (mode == 0) { /* swap */
      json_object_set_member(ea, "data_offsets", json_node_copy(ob));
      json_object_set_member(eb, "data_offsets", json_node_copy(oa));
    } else { /* a's range moved onto b's start, shifted, or past 2^63 */
      JsonArray *ra = json_node_get_array(oa), *rb = json_node_get_array(ob);
      gint64 len = json_array_get_int_element(ra, 1) - json_array_get_int_element(ra, 0);
      gint64 start = mode == 1 ? json_array_get_int_element(rb, 0) + 4
                   : mode == 2 ? json_array_get_int_element(ra, 0) + 1
                               : G_MAXINT64 - len / 2;
      JsonArray *na = json_array_new();
      json_array_add_int_element(na, start);
      json_array_add_int_element(na, mode == 3 ? G_MAXINT64 : start + len);
      json_object_set_array_member(ea, "data_offsets", na);
    }
    char *text = json_with_hole(root, "");
    put_weights(text, strlen(text), data, dlen);
    g_snprintf(what, sizeof what, "offsets of %s and %s, mode %d", a, b, mode);
    load(what, F_WEIGHTS, mode ? EXPECT_FAIL : EXPECT_ANY, NULL);
    g_free(text);
    json_object_set_member(ea, "data_offsets", oa);
    json_object_set_member(eb, "data_offsets", ob);
  }

  /* Names: empty, renamed to an old attention name it duplicates, and a
   * header in reverse order (order does not matter). */
  g_ptr_array_free(names, TRUE);
  json_node_unref(root);

  const char *htext = (const char *)g_bytes_get_data(good[F_WEIGHTS], NULL) + 8;
  static const struct { const char *from, *to; expect want; } edits[] = {
    {"\"conv_in.bias\"", "\"\"", EXPECT_FAIL},
    {"\"conv_in.bias\"", "\"conv_in.bias\\u0000x\"", EXPECT_FAIL},
    {"\"conv_in.bias\"", "\"conv_in.weight\"", EXPECT_FAIL}, /* duplicate key */
    {".to_q.", ".query.", EXPECT_OK},
    {"\"__metadata__\":{\"format\":\"pt\"}", "\"__metadata__\":[1,[2]]", EXPECT_OK},
    {"\"__metadata__\":{\"format\":\"pt\"}", "\"x\":1", EXPECT_FAIL},
    {"[0,128]", "[0,18446744073709551744]", EXPECT_FAIL}, /* 2^64 + 128 */
    {"[0,128]", "[-18446744073709551616,128]", EXPECT_FAIL},
    {"[0,128]", "[0,128.0]", EXPECT_FAIL},
    {"[0,128]", "[0,1e999]", EXPECT_FAIL},
    {"[0,128]", "[1e-999,128]", EXPECT_FAIL},
    {"[0,128]", "[0,128,256]", EXPECT_FAIL},
    {"[0,128]", "[128,0]", EXPECT_FAIL},
    {"[0,128]", "[0, 0x80]", EXPECT_FAIL},
    {"[32]", "[32.0]", EXPECT_FAIL},
    {"[32]", "[00032]", EXPECT_FAIL},
    {"[32]", "[32e0]", EXPECT_FAIL},
    {"[32]", "[18446744073709551648]", EXPECT_FAIL}, /* 2^64 + 32 */
    {"\"F32\"", "\"F\\u0033\\u0032\"", EXPECT_OK},     /* escapes decode */
  };
  for (size_t i = 0; i < G_N_ELEMENTS(edits); i++) {
    const char *at = g_strstr_len(htext, (gssize)hl, edits[i].from);
    g_assert_nonnull(at);
    GString *s = g_string_new_len(htext, at - htext);
    g_string_append(s, edits[i].to);
    g_string_append_len(s, at + strlen(edits[i].from),
                        (gssize)(hl - (size_t)(at - htext) - strlen(edits[i].from)));
    put_weights(s->str, s->len, data, dlen);
    g_snprintf(what, sizeof what, "header: %s -> %s", edits[i].from, edits[i].to);
    load(what, F_WEIGHTS, edits[i].want, NULL);
    g_string_free(s, TRUE);
  }

  /* Whole headers. */
  size_t deep = 100000;
  char *buf = g_malloc(deep);
  memset(buf, '[', deep);
  put_weights(buf, deep, data, dlen);
  load("header: 100k [", F_WEIGHTS, EXPECT_FAIL, NULL);
  memset(buf, '{', deep);
  put_weights(buf, deep, data, dlen);
  load("header: 100k {", F_WEIGHTS, EXPECT_FAIL, NULL);
  g_free(buf);
  static const char *const headers[] = {
    "", " ", "{}", "[]", "null", "{\"__metadata__\":{}}", "\xff", "{\"a\":",
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}",
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
    "\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}",
  };
  for (size_t i = 0; i < G_N_ELEMENTS(headers); i++) {
    put_weights(headers[i], strlen(headers[i]), data, dlen);
    g_snprintf(what, sizeof what, "header: '%s'", headers[i]);
    load(what, F_WEIGHTS, EXPECT_FAIL, NULL);
  }
  restore();
}

/* Configurations whose tensors would be huge: must fail on the file without
 * allocating what the config asks for. */
static void test_huge_config(void) {
  const char *text = g_bytes_get_data(good[F_CONFIG], NULL);
  static const struct { const char *from, *to; } edits[] = {
    {"32,\n    64", "8192,\n    8192"},
    {"\"layers_per_block\": 1", "\"layers_per_block\": 16"},
    {"\"sample_size\": 16", "\"sample_size\": 65536"},
    {"\"sample_size\": 16", "\"sample_size\": 17"},
    {"\"in_channels\": 3", "\"in_channels\": 64"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(edits); i++) {
    const char *at = strstr(text, edits[i].from);
    g_assert_nonnull(at);
    char *cfg = g_strdup_printf("%.*s%s%s", (int)(at - text), text, edits[i].to,
                                at + strlen(edits[i].from));
    put(F_CONFIG, cfg, strlen(cfg));
    char what[128];
    g_snprintf(what, sizeof what, "config: %s", edits[i].to);
    load(what, F_CONFIG, EXPECT_FAIL, NULL);
    g_free(cfg);
  }
  /* All of them at once. */
  char *cfg = g_strdup(text);
  for (size_t i = 0; i < 3; i++) {
    char *at = strstr(cfg, edits[i].from);
    char *next = g_strdup_printf("%.*s%s%s", (int)(at - cfg), cfg, edits[i].to,
                                 at + strlen(edits[i].from));
    g_free(cfg);
    cfg = next;
  }
  put(F_CONFIG, cfg, strlen(cfg));
  load("config: everything huge", F_CONFIG, EXPECT_FAIL, NULL);
  g_free(cfg);
  restore();
}

/* ---- PNG through tools/png_io.c ------------------------------------------- */

static uint32_t crc32_png(const guint8 *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = c >> 1 ^ (0xedb88320u & (0u - (c & 1)));
  }
  return c ^ 0xffffffffu;
}

static void put_be32(guint8 *p, uint32_t v) {
  p[0] = (guint8)(v >> 24), p[1] = (guint8)(v >> 16), p[2] = (guint8)(v >> 8);
  p[3] = (guint8)v;
}

static int png_tried;

static void read_png(const char *path, const void *data, size_t len) {
  write_file(path, data, len);
  png_image_f img;
  GError *err = NULL;
  png_tried++;
  if (png_read_float(path, &img, &err)) {
    g_assert_no_error(err);
    g_assert_cmpint(img.c * img.h * img.w, >, 0);
    png_image_clear(&img);
  } else {
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, path));
    if (verbose) g_printerr("[png] %s\n", err->message);
    g_error_free(err);
  }
}

static void test_png(void) {
  char *path = g_build_filename(tmpdir, "in.png", NULL);
  GError *err = NULL;
  for (int variant = 0; variant < 2; variant++) {
    int w = 13, h = 7, c = variant ? 1 : 3;
    png_image_f img = {.c = c, .h = h, .w = w, .bit_depth = variant ? 16 : 8,
                       .data = g_new(float, c * h * w),
                       .alpha = variant ? g_new(float, h * w) : NULL};
    for (int i = 0; i < c * h * w; i++) img.data[i] = (float)g_rand_double_range(rng, -1, 1);
    if (img.alpha) for (int i = 0; i < h * w; i++) img.alpha[i] = 0.5f;
    g_assert_true(png_write_float(path, &img, &err));
    png_image_clear(&img);
    gchar *good_png;
    gsize n;
    g_assert_true(g_file_get_contents(path, &good_png, &n, NULL));
    guint8 *buf = g_malloc(n);
    for (size_t at = 0; at < n; at += 5) read_png(path, good_png, at);
    for (int i = 0; i < 100; i++) {
      memcpy(buf, good_png, n);
      size_t at = (size_t)g_rand_int_range(rng, 8, (gint32)n);
      buf[at] ^= (guint8)g_rand_int_range(rng, 1, 256);
      read_png(path, buf, n);
    }
    /* IHDR (bytes 16..28) with other sizes, depths and types, CRC fixed. */
    static const uint32_t sides[][2] = {{1, 1}, {0, 7}, {65536, 65536},
                                        {16384, 16384}, {1u << 31, 1}, {13, 100000}};
    for (size_t s = 0; s < G_N_ELEMENTS(sides); s++)
      for (int depth = 1; depth <= 16; depth *= 2)
        for (int type = 0; type <= 6; type++) {
          memcpy(buf, good_png, n);
          put_be32(buf + 16, sides[s][0]);
          put_be32(buf + 20, sides[s][1]);
          buf[24] = (guint8)depth;
          buf[25] = (guint8)type;
          put_be32(buf + 29, crc32_png(buf + 12, 17));
          read_png(path, buf, n);
        }
    g_free(buf);
    g_free(good_png);
  }
  g_unlink(path);
  g_free(path);
  if (g_test_verbose()) g_printerr("png: %d reads\n", png_tried);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  verbose = g_getenv("DDPM_MUTATE_VERBOSE") != NULL;
  char *src = golden_path("tiny");
  if (!src) return 77;
  for (int i = 0; i < N_FILES; i++) {
    char *p = g_build_filename(src, file_names[i], NULL);
    gchar *data;
    gsize len;
    g_assert_true(g_file_get_contents(p, &data, &len, NULL));
    good[i] = g_bytes_new_take(data, len);
    g_free(p);
  }
  /* Some thousand files of 2.8 MB: in memory where there is a tmpfs. */
  if (g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) && !g_access("/dev/shm", W_OK))
    tmpdir = g_mkdtemp(g_strdup("/dev/shm/ddpm-mutate-XXXXXX"));
  if (!tmpdir) tmpdir = g_dir_make_tmp("ddpm-mutate-XXXXXX", NULL);
  g_assert_nonnull(tmpdir);
  for (int i = 0; i < N_FILES; i++) {
    paths[i] = g_build_filename(tmpdir, file_names[i], NULL);
    dirty[i] = true;
  }
  restore();
  rng = g_rand_new_with_seed(SEED);
  ctx = test_context();
  g_test_add_func("/mutate/config", test_config);
  g_test_add_func("/mutate/scheduler", test_scheduler);
  g_test_add_func("/mutate/truncate_and_flip", test_truncate_and_flip);
  g_test_add_func("/mutate/values", test_values);
  g_test_add_func("/mutate/header_entries", test_header_entries);
  g_test_add_func("/mutate/huge_config", test_huge_config);
  g_test_add_func("/mutate/png", test_png);
  int rc = g_test_run();
  g_printerr("mutated model folders loaded: %d (%d loaded, %d rejected); "
             "PNGs read: %d\n", n_tried, n_loaded, n_rejected, png_tried);
  for (int i = 0; i < N_FILES; i++) {
    g_unlink(paths[i]);
    g_free(paths[i]);
    g_bytes_unref(good[i]);
  }
  g_rmdir(tmpdir);
  g_rand_free(rng);
  g_free(tmpdir);
  g_free(src);
  return test_context_finish(ctx, rc);
}
