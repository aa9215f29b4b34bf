/* ddpm_model: a loaded UNet2DModel folder, its weights on the device and
 * the compiled graph for the last input shape used. */
#include <math.h>
#include <string.h>

#include "graph.h"
#include "model.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "unet.h"

#define WEIGHTS_FILE "diffusion_pytorch_model.safetensors"
#define MAX_BATCH 4096
#define MAX_TIMESTEP 1000000

struct ddpm_model {
  ddpm_context *ctx;
  ddpm_unet_config cfg;
  ddpm_schedule sched;
  wstore *ws;
  char dtype[8];
  size_t n_nodes; /* at the natural size, batch 1 */
  double flops;   /* the same */
  /* The graph of the last shape. */
  graph *g;
  unet_io io;
  int n, h, w;
  bool probed;
  int fit_n; /* the batch that m->g (of batch n <= fit_n) serves, in groups */
};

/* The folder that holds config.json: dir itself, or dir/unet. */
static char *model_folder(const char *dir, GError **err) {
  char *cfg = g_build_filename(dir, "config.json", NULL);
  bool here = g_file_test(cfg, G_FILE_TEST_EXISTS);
  g_free(cfg);
  if (here) return g_strdup(dir);
  char *unet = g_build_filename(dir, "unet", NULL);
  cfg = g_build_filename(unet, "config.json", NULL);
  bool sub = g_file_test(cfg, G_FILE_TEST_EXISTS);
  g_free(cfg);
  if (sub) return unet;
  g_free(unet);
  if (!g_file_test(dir, G_FILE_TEST_IS_DIR))
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_IO,
                "%s: not a folder (expected a diffusers UNet2DModel folder)", dir);
  else
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_IO,
                "%s: no config.json here or in unet/ (expected a diffusers "
                "UNet2DModel folder)", dir);
  return NULL;
}

/* scheduler_config.json beside config.json, or in a pipeline's scheduler/. */
static bool load_schedule(const char *folder, ddpm_schedule *s, GError **err) {
  char *path = g_build_filename(folder, "scheduler_config.json", NULL);
  if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
    char *parent = g_path_get_dirname(folder);
    g_free(path);
    path = g_build_filename(parent, "scheduler", "scheduler_config.json", NULL);
    g_free(parent);
  }
  bool ok = ddpm_schedule_load(path, s, err);
  g_free(path);
  return ok;
}

void ddpm_model_free(ddpm_model *m) {
  if (!m) return;
  graph_free(m->g);
  if (m->io.probes) g_array_unref(m->io.probes);
  wstore_free(m->ws);
  ddpm_schedule_clear(&m->sched);
  g_free(m);
}

ddpm_model *ddpm_model_load(ddpm_context *ctx, const char *dir, GError **err) {
  g_return_val_if_fail(ctx && dir, NULL);
  char *folder = model_folder(dir, err);
  if (!folder) return NULL;
  ddpm_model *m = g_new0(ddpm_model, 1);
  m->ctx = ctx;
  m->ws = wstore_new(ctx);
  char *cfg_path = g_build_filename(folder, "config.json", NULL);
  char *st_path = g_build_filename(folder, WEIGHTS_FILE, NULL);
  st_file *st = NULL;
  wmap *src = NULL;
  bool ok = ddpm_unet_config_load(cfg_path, &m->cfg, err) &&
            load_schedule(folder, &m->sched, err);
  if (ok && !g_file_test(st_path, G_FILE_TEST_EXISTS)) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_IO, "%s: file not found", st_path);
    ok = false;
  }
  ok = ok && (st = st_open(st_path, err)) && (src = wmap_new(st, err));
  if (ok) {
    /* Build once at the natural size to request (and check) every weight. */
    int size = m->cfg.sample_size > 0 ? m->cfg.sample_size
                                      : 1 << (m->cfg.n_levels - 1);
    graph *g = graph_new(ctx, m->ws);
    unet_io io;
    unet_build(g, m->ws, src, &m->cfg, 1, size, size, false, &io);
    m->n_nodes = graph_n_nodes(g);
    m->flops = graph_flops(g);
    graph_free(g);
    ok = wmap_finish(src, err);
    g_strlcpy(m->dtype, wmap_dtype(src), sizeof m->dtype);
  }
  wmap_free(src);
  st_close(st);
  ok = ok && ddpm_memfit_weights(ctx, wstore_bytes(m->ws), err) &&
       wstore_upload(m->ws, err);
  g_free(cfg_path);
  g_free(st_path);
  g_free(folder);
  if (!ok) {
    ddpm_model_free(m);
    return NULL;
  }
  return m;
}

void ddpm_model_get_info(const ddpm_model *m, ddpm_model_info *info) {
  memset(info, 0, sizeof *info);
  info->in_channels = m->cfg.in_channels;
  info->out_channels = m->cfg.out_channels;
  info->sample_size = m->cfg.sample_size;
  info->n_levels = m->cfg.n_levels;
  for (int i = 0; i < m->cfg.n_levels && i < 8; i++)
    info->block_out_channels[i] = m->cfg.block_out_channels[i];
  info->layers_per_block = m->cfg.layers_per_block;
  /* The frequency table is ours, not the checkpoint's. */
  info->n_params = wstore_params(m->ws) - m->cfg.block_out_channels[0] / 2;
  info->weight_dtype = m->dtype;
  info->weight_bytes = wstore_bytes(m->ws);
  info->n_nodes = m->n_nodes;
  info->forward_flops = m->flops;
}

const ddpm_unet_config *ddpm_model_config(const ddpm_model *m) {
  return &m->cfg;
}

const ddpm_schedule *ddpm_model_schedule(const ddpm_model *m) {
  return &m->sched;
}

static bool check_args(ddpm_model *m, int n, int h, int w, GError **err) {
  if (n < 1 || n > MAX_BATCH) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "batch size %d out of range 1..%d", n, MAX_BATCH);
    return false;
  }
  return unet_check_size(&m->cfg, h, w, err);
}

/* Makes m->g the compiled graph for this shape.  False with *err set, or
 * with *err unset and *arena set when its activations would not fit the
 * device (nothing is allocated then). */
static bool ensure_graph(ddpm_model *m, int n, int h, int w, bool probed,
                         uint64_t *arena, GError **err) {
  if (m->g && m->n == n && m->h == h && m->w == w && m->probed == probed)
    return true;
  ddpm_model_release_graph(m);
  m->g = graph_new(m->ctx, m->ws);
  unet_build(m->g, m->ws, NULL, &m->cfg, n, h, w, probed, &m->io);
  *arena = graph_plan_arena_bytes(m->g);
  if (!ddpm_memfit_fits(m->ctx, *arena) || !graph_compile(m->g, err)) {
    ddpm_model_release_graph(m);
    return false;
  }
  m->n = n, m->h = h, m->w = w, m->probed = probed;
  m->fit_n = n;
  return true;
}

typedef struct {
  ddpm_model *m;
  int h, w;
  bool probed;
} fit_job;

static bool try_group(void *user, int g, uint64_t *arena, GError **err) {
  fit_job *j = user;
  return ensure_graph(j->m, g, j->h, j->w, j->probed, arena, err);
}

/* Compiles the graph of the largest group of a batch of n that fits.
 * Returns the group, or 0 with *err set. */
static int fit_group(ddpm_model *m, int n, int h, int w, bool probed,
                     GError **err) {
  if (m->g && m->fit_n == n && m->h == h && m->w == w && m->probed == probed)
    return m->n;
  fit_job j = {m, h, w, probed};
  int g = ddpm_memfit_group(m, n, h, w, try_group, &j, err);
  if (g) m->fit_n = n;
  return g;
}

int ddpm_model_forward_group(ddpm_model *m, int n, int h, int w, GError **err) {
  if (!check_args(m, n, h, w, err)) return 0;
  return fit_group(m, n, h, w, false, err);
}

/* The forward in groups of the batch that fits; a short last group is
 * padded with zeros at t = 0 (items do not see each other). */
static bool run(ddpm_model *m, const float *x, const int64_t *t, int n, int h,
                int w, float *eps, bool probed, GError **err) {
  if (!check_args(m, n, h, w, err)) return false;
  for (int i = 0; i < n; i++)
    if (t[i] < 0 || t[i] > MAX_TIMESTEP) {
      g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                  "timestep %" G_GINT64_FORMAT " (batch item %d) out of range "
                  "0..%d", t[i], i, MAX_TIMESTEP);
      return false;
    }
  int g = fit_group(m, n, h, w, probed, err);
  if (!g) return false;
  if (probed && g < n) { /* the probes see one graph's batch */
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_OUT_OF_MEMORY,
                "a probed forward of batch %d does not fit the device; "
                "batch %d does", n, g);
    return false;
  }
  size_t item = gtensor_count(m->io.x) / g, item_e = gtensor_count(m->io.eps) / g;
  for (int b0 = 0; b0 < n; b0 += g) {
    size_t len = (size_t)MIN(g, n - b0);
    float *xin = graph_input_data(m->g, m->io.x);
    memcpy(xin, x + b0 * item, len * item * sizeof(float));
    memset(xin + len * item, 0, (g - len) * item * sizeof(float));
    float *tf = graph_input_data(m->g, m->io.t);
    for (int i = 0; i < g; i++) tf[i] = i < (int)len ? (float)t[b0 + i] : 0.0f;
    if (!graph_run(m->g, err)) return false;
    memcpy(eps + b0 * item_e, graph_tensor_data(m->g, m->io.eps),
           len * item_e * sizeof(float));
  }
  return true;
}

bool ddpm_model_forward(ddpm_model *m, const float *x, const int64_t *t,
                        int n, int h, int w, float *eps, GError **err) {
  g_return_val_if_fail(m && x && t && eps, false);
  if (!run(m, x, t, n, h, w, eps, false, err)) return false;
  size_t count = (size_t)n * m->cfg.out_channels * h * w;
  for (size_t i = 0; i < count; i++)
    if (!isfinite(eps[i])) {
      g_set_error(err, DDPM_ERROR, DDPM_ERROR_NUMERIC,
                  "the model's output is NaN or Inf (batch item %zu): its "
                  "weights hold non-finite values or the computation "
                  "overflows float32", i / (count / n));
      return false;
    }
  return true;
}

bool ddpm_model_forward_probed(ddpm_model *m, const float *x, const int64_t *t,
                               int n, int h, int w, float *eps,
                               ddpm_probe_fn fn, void *user, GError **err) {
  if (!run(m, x, t, n, h, w, eps, true, err)) return false;
  for (guint i = 0; i < m->io.probes->len; i++) {
    unet_probe *p = &g_array_index(m->io.probes, unet_probe, i);
    fn(p->name, graph_tensor_data(m->g, p->t), p->t.n, p->t.c, p->t.h, p->t.w,
       user);
  }
  return true;
}

uint64_t ddpm_model_memory_estimate(ddpm_model *m, int n, int h, int w,
                                    GError **err) {
  if (!check_args(m, n, h, w, err)) return 0;
  graph *g = graph_new(m->ctx, m->ws);
  unet_io io;
  unet_build(g, m->ws, NULL, &m->cfg, n, h, w, false, &io);
  graph_plan_arena_bytes(g); /* plans */
  uint64_t bytes = graph_device_bytes(g) + wstore_bytes(m->ws);
  graph_free(g);
  return bytes;
}

ddpm_context *ddpm_model_context(const ddpm_model *m) { return m->ctx; }
struct wstore *ddpm_model_weights(const ddpm_model *m) { return m->ws; }

void ddpm_model_release_graph(ddpm_model *m) {
  graph_free(m->g);
  m->g = NULL;
  m->fit_n = 0;
  if (m->io.probes) g_array_unref(m->io.probes);
  memset(&m->io, 0, sizeof m->io);
}

bool ddpm_model_check_size(ddpm_model *m, int n, int h, int w, GError **err) {
  return check_args(m, n, h, w, err);
}

uint64_t ddpm_model_peak_device_bytes(const ddpm_model *m) {
  return m->ctx->peak_device_bytes;
}
