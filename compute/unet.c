/* The U-Net graph builder.  Mirrors diffusers' UNet2DModel.__init__ and
 * forward (unet_2d.py, unet_2d_blocks.py, resnet.py, attention_processor.py)
 * module by module, so weight names and probe names are diffusers' own. */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "ops/ops.h"
#include "unet.h"

typedef struct {
  graph *g;
  wstore *ws;
  wmap *src;
  const ddpm_unet_config *cfg;
  GArray *probes;
  /* Every resnet's time_emb_proj(SiLU(temb)), side by side: [n, sum of
   * their couts]; temb_off maps a resnet's name to its first channel + 1. */
  gtensor temb_proj;
  GHashTable *temb_off;
} builder;

/* Weight `name` (printf-style) of the given shape. */
static gweight weight(builder *b, int ndim, const int64_t *shape,
                      const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static gweight weight(builder *b, int ndim, const int64_t *shape,
                      const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *name = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  gweight w = {0};
  if (b->src) {
    w = wmap_request(b->src, b->ws, name, ndim, shape);
  } else if (!wstore_find(b->ws, name, &w)) {
    g_critical("weight '%s' was not loaded", name);
  }
  g_free(name);
  return w;
}

#define SHAPE(...) (sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
                   ((int64_t[]){__VA_ARGS__})

static void probe(builder *b, gtensor t, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void probe(builder *b, gtensor t, const char *fmt, ...) {
  if (!b->probes) return;
  va_list ap;
  va_start(ap, fmt);
  char *name = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  graph_output(b->g, t, name);
  unet_probe p = {name, t};
  g_array_append_val(b->probes, p);
}

static gtensor group_norm(builder *b, gtensor x, int groups, bool silu,
                          const char *prefix) {
  gweight gamma = weight(b, SHAPE(x.c), "%s.weight", prefix);
  gweight beta = weight(b, SHAPE(x.c), "%s.bias", prefix);
  return op_groupnorm(b->g, x, gamma, beta, groups, b->cfg->norm_eps, silu);
}

/* A conv layer `prefix` (weight [cout, x.c, k, k] + bias). */
static gtensor conv(builder *b, gtensor x, int cout, const conv2d_params *p,
                    const char *prefix) {
  gweight w = weight(b, SHAPE(cout, x.c, p->k, p->k), "%s.weight", prefix);
  gweight bias = weight(b, SHAPE(cout), "%s.bias", prefix);
  return op_conv2d(b->g, x, w, bias, cout, p);
}

/* A linear layer applied per pixel, as a 1x1 convolution (weight [out, in]). */
static gtensor linear_1x1(builder *b, gtensor x, int out,
                          const conv2d_params *p, const char *prefix) {
  gweight w = weight(b, SHAPE(out, x.c), "%s.weight", prefix);
  gweight bias = weight(b, SHAPE(out), "%s.bias", prefix);
  return op_conv2d(b->g, x, w, bias, out, p);
}

static const conv2d_params conv3x3 = {.k = 3, .stride = 1, .pad_t = 1,
                                      .pad_l = 1, .pad_b = 1, .pad_r = 1};

/* The resnets in the order unet_build_on builds them, with their output
 * channels. */
static GPtrArray *resnet_names(const ddpm_unet_config *cfg, GArray *couts) {
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  const int *ch = cfg->block_out_channels, levels = cfg->n_levels;
  for (int i = 0; i < levels; i++)
    for (int j = 0; j < cfg->layers_per_block; j++) {
      g_ptr_array_add(names, g_strdup_printf("down_blocks.%d.resnets.%d", i, j));
      g_array_append_val(couts, ch[i]);
    }
  for (int j = 0; j < 2; j++) {
    g_ptr_array_add(names, g_strdup_printf("mid_block.resnets.%d", j));
    g_array_append_val(couts, ch[levels - 1]);
  }
  for (int i = 0; i < levels; i++)
    for (int j = 0; j <= cfg->layers_per_block; j++) {
      g_ptr_array_add(names, g_strdup_printf("up_blocks.%d.resnets.%d", i, j));
      g_array_append_val(couts, ch[levels - 1 - i]);
    }
  return names;
}

/* Every resnet's time_emb_proj (Linear(temb_dim, cout)) of temb_act =
 * SiLU(temb) as one linear layer of their weights side by side: one or
 * two dispatches instead of one or two per resnet. */
static void time_emb_projections(builder *b, gtensor temb_act) {
  GArray *couts = g_array_new(FALSE, FALSE, sizeof(int));
  GPtrArray *names = resnet_names(b->cfg, couts);
  gweight *ws = g_new(gweight, names->len), *bs = g_new(gweight, names->len);
  b->temb_off = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  int total = 0;
  for (guint r = 0; r < names->len; r++) {
    const char *name = g_ptr_array_index(names, r);
    int cout = g_array_index(couts, int, r);
    ws[r] = weight(b, SHAPE(cout, temb_act.c), "%s.time_emb_proj.weight", name);
    bs[r] = weight(b, SHAPE(cout), "%s.time_emb_proj.bias", name);
    g_hash_table_insert(b->temb_off, g_strdup(name), GINT_TO_POINTER(total + 1));
    total += cout;
  }
  gweight w = wstore_concat(b->ws, "@time_emb_proj.weight", ws, (int)names->len);
  gweight bias = wstore_concat(b->ws, "@time_emb_proj.bias", bs, (int)names->len);
  b->temb_proj = op_linear(b->g, temb_act, w, bias, total, false);
  g_free(ws);
  g_free(bs);
  g_ptr_array_free(names, TRUE);
  g_array_free(couts, TRUE);
}

/* ResnetBlock2D, time_embedding_norm "default", its time embedding's
 * projection from b->temb_proj. */
static gtensor resnet(builder *b, gtensor x, int cout, float out_scale, const char *prefix) {
  int groups = b->cfg->norm_num_groups;
  char *p = g_strdup_printf("%s.norm1", prefix);
  gtensor h = group_norm(b, x, groups, true, p);
  g_free(p);

  conv2d_params c1 = conv3x3;
  c1.vec = &b->temb_proj;
  c1.vec_off = GPOINTER_TO_INT(g_hash_table_lookup(b->temb_off, prefix)) - 1;
  g_return_val_if_fail(c1.vec_off >= 0, x);
  p = g_strdup_printf("%s.conv1", prefix);
  h = conv(b, h, cout, &c1, p);
  g_free(p);

  p = g_strdup_printf("%s.norm2", prefix);
  h = group_norm(b, h, groups, true, p);
  g_free(p);

  gtensor shortcut = x;
  if (x.c != cout) {
    conv2d_params c = {.k = 1, .stride = 1};
    p = g_strdup_printf("%s.conv_shortcut", prefix);
    shortcut = conv(b, x, cout, &c, p);
    g_free(p);
  }
  conv2d_params c2 = conv3x3;
  c2.residual = &shortcut;
  c2.out_scale = out_scale;
  p = g_strdup_printf("%s.conv2", prefix);
  h = conv(b, h, cout, &c2, p);
  g_free(p);
  return h;
}

/* Attention with group norm, residual and rescale (diffusers' Attention as
 * used by the UNet2D blocks, _from_deprecated_attn_block). */
static gtensor attention(builder *b, gtensor x, int heads, int groups,
                         float out_scale, const char *prefix) {
  char *p = g_strdup_printf("%s.group_norm", prefix);
  gtensor n = group_norm(b, x, groups, false, p);
  g_free(p);
  conv2d_params plain = {.k = 1, .stride = 1};
  const char *parts[3] = {"to_q", "to_k", "to_v"};
  gtensor qkv[3];
  for (int i = 0; i < 3; i++) {
    p = g_strdup_printf("%s.%s", prefix, parts[i]);
    qkv[i] = linear_1x1(b, n, x.c, &plain, p);
    g_free(p);
  }
  gtensor a = op_attention(b->g, qkv[0], qkv[1], qkv[2], heads);
  conv2d_params out = {.k = 1, .stride = 1, .residual = &x,
                       .out_scale = out_scale};
  p = g_strdup_printf("%s.to_out.0", prefix);
  gtensor y = linear_1x1(b, a, x.c, &out, p);
  g_free(p);
  return y;
}

static int heads_for(const ddpm_unet_config *cfg, int channels) {
  return cfg->attention_head_dim ? channels / cfg->attention_head_dim : 1;
}

static void clear_probe(gpointer p) { g_free(((unet_probe *)p)->name); }

bool unet_check_size(const ddpm_unet_config *cfg, int h, int w, GError **err) {
  int mult = 1 << (cfg->n_levels - 1);
  if (h < mult || w < mult || h % mult || w % mult || h > 16384 || w > 16384) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "image size %dx%d not supported by this model: width and "
                "height must be multiples of %d (the model has %d levels), "
                "at most 16384", w, h, mult, cfg->n_levels);
    return false;
  }
  return true;
}

void unet_build(graph *g, wstore *ws, wmap *src, const ddpm_unet_config *cfg,
                int n, int h, int w, bool probes, unet_io *io) {
  gtensor x = graph_input(g, n, cfg->in_channels, h, w);
  unet_build_on(g, ws, src, cfg, x, probes, io);
  graph_output(g, io->eps, "eps");
}

void unet_build_on(graph *g, wstore *ws, wmap *src, const ddpm_unet_config *cfg,
                   gtensor x_in, bool probes, unet_io *io) {
  int n = x_in.n;
  builder bd = {.g = g, .ws = ws, .src = src, .cfg = cfg};
  builder *b = &bd;
  if (probes) {
    b->probes = g_array_new(FALSE, FALSE, sizeof(unet_probe));
    g_array_set_clear_func(b->probes, clear_probe);
  }
  const int *ch = cfg->block_out_channels;
  const int levels = cfg->n_levels, groups = cfg->norm_num_groups;
  const int temb_dim = 4 * ch[0];

  io->x = x_in;
  io->t = graph_input(g, n, 1, 1, 1);

  /* Time embedding: Timesteps (sinusoids) -> linear_1 -> SiLU -> linear_2.
   * The frequencies depend on the config only, so they are a weight. */
  int half = ch[0] / 2;
  gweight freq;
  if (!wstore_find(ws, "@time_proj.freq", &freq)) {
    float *f = wstore_add(ws, "@time_proj.freq", half, &freq);
    for (int i = 0; i < half; i++) {
      /* As diffusers computes them in float32: exp(-ln(10000) * i / (half - shift)). */
      float e = -9.210340371976184f * (float)i;
      f[i] = expf(e / ((float)half - cfg->freq_shift));
    }
  }
  gtensor tproj = op_timestep_embed(g, io->t, freq, ch[0], half,
                                    cfg->flip_sin_to_cos);
  probe(b, tproj, "time_proj");
  gweight w1 = weight(b, SHAPE(temb_dim, ch[0]), "time_embedding.linear_1.weight");
  gweight b1 = weight(b, SHAPE(temb_dim), "time_embedding.linear_1.bias");
  gweight w2 = weight(b, SHAPE(temb_dim, temb_dim), "time_embedding.linear_2.weight");
  gweight b2 = weight(b, SHAPE(temb_dim), "time_embedding.linear_2.bias");
  gtensor temb = op_linear(g, tproj, w1, b1, temb_dim, true);
  temb = op_linear(g, temb, w2, b2, temb_dim, false);
  probe(b, temb, "time_embedding");
  /* Every resnet projects SiLU(temb): computed once here, projected for
   * all of them at once. */
  temb = op_silu(g, temb);
  time_emb_projections(b, temb);

  gtensor x = io->x;
  if (cfg->center_input_sample) x = op_affine(g, x, 2.0f, -1.0f);
  x = conv(b, x, ch[0], &conv3x3, "conv_in");
  probe(b, x, "conv_in");

  /* Down blocks; every resnet/attention output and downsample is a skip. */
  gtensor skips[DDPM_MAX_LEVELS * 18 + 1];
  int n_skips = 0;
  skips[n_skips++] = x;
  char name[160];
  for (int i = 0; i < levels; i++) {
    for (int j = 0; j < cfg->layers_per_block; j++) {
      g_snprintf(name, sizeof name, "down_blocks.%d.resnets.%d", i, j);
      x = resnet(b, x, ch[i], 1.0f, name);
      probe(b, x, "%s", name);
      if (cfg->down_attn[i]) {
        g_snprintf(name, sizeof name, "down_blocks.%d.attentions.%d", i, j);
        x = attention(b, x, heads_for(cfg, ch[i]), groups, 1.0f, name);
        probe(b, x, "%s", name);
      }
      skips[n_skips++] = x;
    }
    if (i < levels - 1) {
      int pad = cfg->downsample_padding;
      conv2d_params down = {.k = 3, .stride = 2, .pad_t = pad, .pad_l = pad,
                            .pad_b = pad ? pad : 1, .pad_r = pad ? pad : 1};
      g_snprintf(name, sizeof name, "down_blocks.%d.downsamplers.0.conv", i);
      x = conv(b, x, ch[i], &down, name);
      probe(b, x, "down_blocks.%d.downsamplers.0", i);
      skips[n_skips++] = x;
    }
    probe(b, x, "down_blocks.%d", i);
  }

  /* Mid block: resnet, attention, resnet, all scaled by mid_block_scale_factor. */
  int cm = ch[levels - 1];
  float ms = cfg->mid_block_scale_factor;
  x = resnet(b, x, cm, ms, "mid_block.resnets.0");
  probe(b, x, "mid_block.resnets.0");
  if (cfg->add_attention) {
    int mid_heads = heads_for(cfg, cm);
    int attn_groups = cfg->attn_norm_num_groups ? cfg->attn_norm_num_groups : groups;
    x = attention(b, x, mid_heads, attn_groups, ms, "mid_block.attentions.0");
    probe(b, x, "mid_block.attentions.0");
  }
  x = resnet(b, x, cm, ms, "mid_block.resnets.1");
  probe(b, x, "mid_block.resnets.1");
  probe(b, x, "mid_block");

  /* Up blocks: layers_per_block + 1 resnets, each over cat(x, skip). */
  for (int i = 0; i < levels; i++) {
    int cout = ch[levels - 1 - i];
    for (int j = 0; j <= cfg->layers_per_block; j++) {
      gtensor skip = skips[--n_skips];
      x = op_concat(g, x, skip);
      g_snprintf(name, sizeof name, "up_blocks.%d.resnets.%d", i, j);
      x = resnet(b, x, cout, 1.0f, name);
      probe(b, x, "%s", name);
      if (cfg->up_attn[i]) {
        g_snprintf(name, sizeof name, "up_blocks.%d.attentions.%d", i, j);
        x = attention(b, x, heads_for(cfg, cout), groups, 1.0f, name);
        probe(b, x, "%s", name);
      }
    }
    if (i < levels - 1) {
      x = op_upsample_nearest2x(g, x);
      g_snprintf(name, sizeof name, "up_blocks.%d.upsamplers.0.conv", i);
      x = conv(b, x, cout, &conv3x3, name);
      probe(b, x, "up_blocks.%d.upsamplers.0", i);
    }
    probe(b, x, "up_blocks.%d", i);
  }

  /* Output: GroupNorm + SiLU fused; with probes the norm is also computed
   * alone so its pre-activation output can be compared. */
  if (b->probes) {
    gtensor nrm = group_norm(b, x, groups, false, "conv_norm_out");
    probe(b, nrm, "conv_norm_out");
  }
  x = group_norm(b, x, groups, true, "conv_norm_out");
  x = conv(b, x, cfg->out_channels, &conv3x3, "conv_out");
  probe(b, x, "conv_out");
  io->eps = x;
  io->probes = b->probes;
  g_hash_table_destroy(b->temb_off);
}
