/* Bad model folders through the public API: each must fail with a clear
 * error naming the file and field/tensor, never crash.  Starts from the tiny
 * golden model and breaks one thing at a time. */
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "golden.h"

static ddpm_context *ctx;
static char *tmpdir;
static char *good_config;   /* text of tiny/config.json */
static GBytes *good_weights; /* bytes of tiny's safetensors */

static char *tmp_file(const char *name) {
  return g_build_filename(tmpdir, name, NULL);
}

/* Writes a model folder from config text and weight bytes. */
static void write_model(const char *config, const void *weights, size_t size) {
  char *c = tmp_file("config.json"), *w = tmp_file("diffusion_pytorch_model.safetensors");
  g_unlink(c);
  g_unlink(w);
  if (config) g_assert_true(g_file_set_contents(c, config, -1, NULL));
  if (weights) g_assert_true(g_file_set_contents(w, weights, (gssize)size, NULL));
  g_free(c);
  g_free(w);
}

/* Loads tmpdir; asserts failure with `code` and each needle in the message. */
static void expect_error(int code, const char *needle1, const char *needle2) {
  GError *err = NULL;
  ddpm_model *m = ddpm_model_load(ctx, tmpdir, &err);
  g_assert_null(m);
  g_assert_nonnull(err);
  if (g_test_verbose()) g_printerr("  -> %s\n", err->message);
  g_assert_error(err, DDPM_ERROR, code);
  if (needle1 && !strstr(err->message, needle1))
    g_error("'%s' not in: %s", needle1, err->message);
  if (needle2 && !strstr(err->message, needle2))
    g_error("'%s' not in: %s", needle2, err->message);
  g_error_free(err);
}

/* A safetensors file from a header JSON text and `data_size` zero bytes. */
static GBytes *raw_safetensors(const char *header, size_t data_size) {
  size_t hl = strlen(header);
  guint8 *b = g_malloc0(8 + hl + data_size);
  for (int i = 0; i < 8; i++) b[i] = (guint8)((guint64)hl >> (8 * i));
  memcpy(b + 8, header, hl);
  return g_bytes_new_take(b, 8 + hl + data_size);
}

/* tiny's weights rewritten through `edit`, which may drop/alter tensors. */
typedef bool (*edit_fn)(st_out_tensor *t, void *user);

static void write_edited(edit_fn edit, void *user, const st_out_tensor *extra) {
  GError *err = NULL;
  st_file *f = st_open_memory(g_bytes_get_data(good_weights, NULL),
                              g_bytes_get_size(good_weights), "tiny", &err);
  g_assert_no_error(err);
  GArray *out = g_array_new(FALSE, TRUE, sizeof(st_out_tensor));
  for (size_t i = 0; i < st_count(f); i++) {
    const st_tensor *t = st_tensor_at(f, i);
    st_out_tensor o = {.name = t->name, .dtype = t->dtype, .ndim = t->ndim,
                       .data = st_data(f, t)};
    memcpy(o.shape, t->shape, sizeof o.shape);
    if (edit(&o, user)) g_array_append_val(out, o);
  }
  if (extra) g_array_append_val(out, *extra);
  char *w = tmp_file("diffusion_pytorch_model.safetensors");
  g_assert_true(st_write(w, (st_out_tensor *)out->data, out->len, &err));
  g_free(w);
  g_array_free(out, TRUE);
  st_close(f);
}

static bool drop_named(st_out_tensor *t, void *name) {
  return strcmp(t->name, name) != 0;
}

static bool keep_all(st_out_tensor *t, void *user) { return true; }

static bool reshape_conv_in(st_out_tensor *t, void *user) {
  if (!strcmp(t->name, "conv_in.weight")) { /* same bytes, wrong shape */
    t->shape[0] = 16;
    t->shape[1] = 6;
  }
  return true;
}

static bool retype_bias(st_out_tensor *t, void *user) {
  if (!strcmp(t->name, "conv_out.bias")) { /* 3 x F32 = 12 bytes as 3 x I32 */
    t->dtype = ST_I32;
  }
  return true;
}

static void test_missing_files(void) {
  GError *err = NULL;
  g_assert_null(ddpm_model_load(ctx, "/nonexistent/model", &err));
  g_assert_error(err, DDPM_ERROR, DDPM_ERROR_IO);
  g_assert_nonnull(strstr(err->message, "/nonexistent/model"));
  g_clear_error(&err);

  write_model(NULL, NULL, 0);
  expect_error(DDPM_ERROR_IO, "no config.json", NULL);
  write_model(good_config, NULL, 0);
  expect_error(DDPM_ERROR_IO, "diffusion_pytorch_model.safetensors", "not found");
}

static void test_bad_config(void) {
  gsize n = g_bytes_get_size(good_weights);
  const void *w = g_bytes_get_data(good_weights, NULL);
  write_model("{\"block_out_channels\": [32, 64", w, n);
  expect_error(DDPM_ERROR_FORMAT, "config.json", "invalid JSON");
  write_model("[1, 2]", w, n);
  expect_error(DDPM_ERROR_FORMAT, "config.json", "JSON object");

  static const struct { const char *from, *to, *needle; int code; } edits[] = {
    {"\"positional\"", "\"fourier\"", "time_embedding_type", DDPM_ERROR_UNSUPPORTED},
    {"\"default\"", "\"scale_shift\"", "resnet_time_scale_shift", DDPM_ERROR_UNSUPPORTED},
    {"\"class_embed_type\": null", "\"class_embed_type\": \"timestep\"", "class_embed_type", DDPM_ERROR_UNSUPPORTED},
    {"\"AttnDownBlock2D\"", "\"CrossAttnDownBlock2D\"", "down_block_types[1]", DDPM_ERROR_UNSUPPORTED},
    {"\"norm_num_groups\": 8", "\"norm_num_groups\": 7", "norm_num_groups", DDPM_ERROR_UNSUPPORTED},
    {"\"layers_per_block\": 1", "\"layers_per_block\": \"one\"", "layers_per_block", DDPM_ERROR_FORMAT},
    {"\"act_fn\": \"silu\"", "\"act_fn\": \"gelu\"", "act_fn", DDPM_ERROR_UNSUPPORTED},
    {"\"attention_head_dim\": null", "\"attention_head_dim\": 24", "attention_head_dim", DDPM_ERROR_UNSUPPORTED},
    {"\"in_channels\": 3", "\"in_channels\": -3", "in_channels", DDPM_ERROR_UNSUPPORTED},
    {"\"UpBlock2D\"\n", "\"UpBlock2D\", \"UpBlock2D\"\n", "same length", DDPM_ERROR_FORMAT},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(edits); i++) {
    const char *at = strstr(good_config, edits[i].from);
    g_assert_nonnull(at);
    char *cfg = g_strdup_printf("%.*s%s%s", (int)(at - good_config), good_config,
                                edits[i].to, at + strlen(edits[i].from));
    write_model(cfg, w, n);
    expect_error(edits[i].code, "config.json", edits[i].needle);
    g_free(cfg);
  }
}

static void test_bad_safetensors(void) {
  gsize n = g_bytes_get_size(good_weights);
  const guint8 *w = g_bytes_get_data(good_weights, NULL);
  write_model(good_config, w, n / 2);
  expect_error(DDPM_ERROR_FORMAT, "safetensors", "past the end");
  write_model(good_config, w, 5);
  expect_error(DDPM_ERROR_FORMAT, "safetensors", "too short");

  GBytes *b = raw_safetensors(
    "{\"conv_in.bias\":{\"dtype\":\"F32\",\"shape\":[32],\"data_offsets\":[0,128000]}}", 128);
  write_model(good_config, g_bytes_get_data(b, NULL), g_bytes_get_size(b));
  expect_error(DDPM_ERROR_FORMAT, "conv_in.bias", "past the end");
  g_bytes_unref(b);

  b = raw_safetensors("{\"conv_in.bias\":{\"dtype\":\"F32\",\"shape\":"
                      "[1099511627776,1099511627776],\"data_offsets\":[0,16]}}", 16);
  write_model(good_config, g_bytes_get_data(b, NULL), g_bytes_get_size(b));
  expect_error(DDPM_ERROR_FORMAT, "conv_in.bias", NULL);
  g_bytes_unref(b);

  b = raw_safetensors("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24);
  write_model(good_config, g_bytes_get_data(b, NULL), g_bytes_get_size(b));
  expect_error(DDPM_ERROR_FORMAT, "overlap", NULL);
  g_bytes_unref(b);

  b = raw_safetensors("{\"a\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
  write_model(good_config, g_bytes_get_data(b, NULL), g_bytes_get_size(b));
  expect_error(DDPM_ERROR_FORMAT, "unknown dtype 'Q4'", NULL);
  g_bytes_unref(b);

  b = raw_safetensors("{\"a\": not json", 0);
  write_model(good_config, g_bytes_get_data(b, NULL), g_bytes_get_size(b));
  expect_error(DDPM_ERROR_FORMAT, "not valid JSON", NULL);
  g_bytes_unref(b);
}

static void test_bad_tensors(void) {
  write_model(good_config, NULL, 0);
  write_edited(drop_named, "conv_in.bias", NULL);
  expect_error(DDPM_ERROR_WEIGHTS, "missing tensor 'conv_in.bias' [32]", NULL);

  write_edited(reshape_conv_in, NULL, NULL);
  expect_error(DDPM_ERROR_WEIGHTS, "conv_in.weight", "expected [32, 3, 3, 3]");

  write_edited(retype_bias, NULL, NULL);
  expect_error(DDPM_ERROR_WEIGHTS, "conv_out.bias", "I32");

  float junk[2] = {0};
  st_out_tensor extra = {.name = "class_embedding.weight", .dtype = ST_F32,
                         .ndim = 1, .shape = {2}, .data = junk};
  write_edited(keep_all, NULL, &extra);
  expect_error(DDPM_ERROR_WEIGHTS, "unexpected tensor 'class_embedding.weight'", NULL);
}

/* Deterministic mutations of the weights file: every one loads or fails
 * cleanly (the sanitizer build checks the "cleanly"). */
static void test_mutations(void) {
  gsize n = g_bytes_get_size(good_weights);
  const guint8 *w = g_bytes_get_data(good_weights, NULL);
  guint64 hl = 0;
  for (int i = 7; i >= 0; i--) hl = hl << 8 | w[i];
  guint8 *buf = g_malloc(n);
  GRand *r = g_rand_new_with_seed(2024);
  int loaded = 0, rejected = 0;
  for (int k = 0; k < 300; k++) {
    memcpy(buf, w, n);
    gsize len = n;
    int kind = k % 3;
    if (kind == 0) { /* flip a byte in the header */
      buf[8 + g_rand_int_range(r, 0, (gint32)hl)] ^= (guint8)g_rand_int_range(r, 1, 256);
    } else if (kind == 1) { /* truncate anywhere */
      len = (gsize)g_rand_int_range(r, 0, (gint32)n);
    } else { /* overwrite a digit of the header with another digit */
      char *h = (char *)buf + 8;
      for (int tries = 0; tries < 100; tries++) {
        guint64 at = (guint64)g_rand_int_range(r, 0, (gint32)hl);
        if (h[at] >= '0' && h[at] <= '9') {
          h[at] = (char)('0' + g_rand_int_range(r, 0, 10));
          break;
        }
      }
    }
    write_model(good_config, buf, len);
    GError *err = NULL;
    ddpm_model *m = ddpm_model_load(ctx, tmpdir, &err);
    if (m) {
      loaded++;
      ddpm_model_free(m);
    } else {
      g_assert_nonnull(err);
      g_assert_cmpuint(strlen(err->message), >, 10);
      rejected++;
      g_error_free(err);
    }
  }
  if (g_test_verbose()) g_printerr("mutations: %d loaded, %d rejected\n", loaded, rejected);
  g_assert_cmpint(rejected, >, 100);
  g_rand_free(r);
  g_free(buf);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  char *cfg = golden_path("tiny/config.json");
  char *wts = golden_path("tiny/diffusion_pytorch_model.safetensors");
  if (!cfg) return 77; /* skipped */
  gchar *data;
  gsize len;
  g_assert_true(g_file_get_contents(cfg, &good_config, NULL, NULL));
  g_assert_true(g_file_get_contents(wts, &data, &len, NULL));
  good_weights = g_bytes_new_take(data, len);
  tmpdir = g_dir_make_tmp("ddpm-badmodel-XXXXXX", NULL);
  ctx = test_context();
  g_test_add_func("/model_errors/missing_files", test_missing_files);
  g_test_add_func("/model_errors/config", test_bad_config);
  g_test_add_func("/model_errors/safetensors", test_bad_safetensors);
  g_test_add_func("/model_errors/tensors", test_bad_tensors);
  g_test_add_func("/model_errors/mutations", test_mutations);
  int rc = g_test_run();
  write_model(NULL, NULL, 0);
  g_rmdir(tmpdir);
  g_free(cfg); g_free(wts); g_free(good_config); g_free(tmpdir);
  g_bytes_unref(good_weights);
  return test_context_finish(ctx, rc);
}
