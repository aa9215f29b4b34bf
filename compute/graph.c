/* Graph: tensor bookkeeping, liveness-based arena plan, weight upload and
 * recording of the forward into one replayable command buffer. */
#include <string.h>

#include "graph.h"

typedef struct {
  uint64_t count;
  int first, last; /* node indices of first write and last use */
  bool input;
  bool resident;     /* lives on the device across runs; no staging copy */
  char *output_name; /* non-NULL: read back after each run */
  uint64_t offset;   /* in the arena */
  uint64_t staging;  /* in the staging buffer (inputs and outputs) */
  int n, c, h, w;
} tensor_info;

struct graph {
  ddpm_context *ctx;
  GArray *tensors; /* tensor_info */
  wstore *weights;
  GArray *nodes; /* gnode */
  uint64_t arena_bytes, staging_bytes;
  bool planned, compiled;
  vk_buffer arena, staging;
  vk_program program;
  VkQueryPool prof_pool; /* DDPM_PROFILE: a timestamp after each node */
  GHashTable *prof;      /* op name -> double[3]: milliseconds, dispatches, flops */
  bool prof_shapes;      /* DDPM_PROFILE=shape: keys are op and output shape */
  int prof_runs;
};

#define TENSOR(g, i) (&g_array_index((g)->tensors, tensor_info, (i)))
#define NODE(g, i) (&g_array_index((g)->nodes, gnode, (i)))

static void profile_report(graph *g);

ddpm_context *graph_context(const graph *g) { return g->ctx; }
wstore *graph_weights(const graph *g) { return g->weights; }

graph *graph_new(ddpm_context *ctx, wstore *weights) {
  graph *g = g_new0(graph, 1);
  g->ctx = ctx;
  g->weights = weights;
  g->tensors = g_array_new(FALSE, TRUE, sizeof(tensor_info));
  g->nodes = g_array_new(FALSE, TRUE, sizeof(gnode));
  return g;
}

void graph_free(graph *g) {
  if (!g) return;
  profile_report(g);
  vk_program_destroy(g->ctx, &g->program);
  vk_buffer_destroy(g->ctx, &g->arena);
  vk_buffer_destroy(g->ctx, &g->staging);
  for (guint i = 0; i < g->tensors->len; i++) g_free(TENSOR(g, i)->output_name);
  g_array_free(g->tensors, TRUE);
  g_array_free(g->nodes, TRUE);
  g_free(g);
}

static gtensor new_tensor(graph *g, int n, int c, int h, int w, bool input) {
  tensor_info ti = {
    .count = (uint64_t)n * c * h * w,
    .first = input ? 0 : -1,
    .last = -1,
    .input = input,
    .n = n, .c = c, .h = h, .w = w,
  };
  g_array_append_val(g->tensors, ti);
  return (gtensor){(int)g->tensors->len - 1, n, c, h, w};
}

gtensor graph_input(graph *g, int n, int c, int h, int w) {
  return new_tensor(g, n, c, h, w, true);
}

gtensor graph_resident(graph *g, int n, int c, int h, int w) {
  gtensor t = new_tensor(g, n, c, h, w, false);
  TENSOR(g, t.id)->resident = true;
  return t;
}

gtensor graph_tensor(graph *g, int n, int c, int h, int w) {
  return new_tensor(g, n, c, h, w, false);
}

void graph_output(graph *g, gtensor t, const char *name) {
  tensor_info *ti = TENSOR(g, t.id);
  g_free(ti->output_name);
  ti->output_name = g_strdup(name);
}

void graph_add(graph *g, const gnode *node) {
  g_array_append_val(g->nodes, *node);
}

size_t graph_n_nodes(const graph *g) { return g->nodes->len; }

double graph_flops(const graph *g) {
  double f = 0;
  for (guint i = 0; i < g->nodes->len; i++) f += NODE(g, i)->flops;
  return f;
}

void graph_groups_1d(uint64_t total, uint32_t local, uint32_t groups[3]) {
  uint64_t n = (total + local - 1) / local;
  if (n == 0) n = 1;
  uint32_t x = n > 65535 ? 65535 : (uint32_t)n;
  groups[0] = x;
  groups[1] = (uint32_t)((n + x - 1) / x);
  groups[2] = 1;
}

/* ---- memory plan --------------------------------------------------------- */

typedef struct {
  uint64_t begin, end;
} range;

static int cmp_range(const void *a, const void *b) {
  const range *x = a, *y = b;
  return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static int cmp_by_size_desc(gconstpointer a, gconstpointer b, gpointer user) {
  graph *g = user;
  uint64_t sa = TENSOR(g, *(const int *)a)->count;
  uint64_t sb = TENSOR(g, *(const int *)b)->count;
  return sa > sb ? -1 : sa < sb;
}

/* Lifetimes from the node list, then greedy placement, largest first, at the
 * lowest offset free during the tensor's whole lifetime. */
static void plan(graph *g) {
  if (g->planned) return;
  int n_nodes = (int)g->nodes->len;
  for (int i = 0; i < n_nodes; i++) {
    gnode *nd = NODE(g, i);
    for (uint32_t b = 0; b < nd->n_bind; b++) {
      if (nd->bind[b].kind != GBIND_TENSOR) continue;
      tensor_info *ti = TENSOR(g, nd->bind[b].id);
      if (ti->first < 0) ti->first = i;
      ti->last = i;
    }
  }
  guint nt = g->tensors->len;
  int *order = g_new(int, nt ? nt : 1);
  for (guint i = 0; i < nt; i++) {
    tensor_info *ti = TENSOR(g, i);
    if (ti->first < 0) ti->first = 0;
    if (ti->output_name || ti->resident || ti->last < 0) ti->last = n_nodes;
    if (ti->input || ti->resident) ti->first = 0;
    order[i] = (int)i;
  }
  g_qsort_with_data(order, (gint)nt, sizeof(int), cmp_by_size_desc, g);

  range *busy = g_new(range, nt ? nt : 1);
  bool *placed = g_new0(bool, nt ? nt : 1);
  uint64_t arena = 0, staging = 0;
  for (guint k = 0; k < nt; k++) {
    tensor_info *ti = TENSOR(g, order[k]);
    uint64_t bytes = vk_align(ti->count * sizeof(float));
    size_t nb = 0;
    for (guint j = 0; j < nt; j++) {
      tensor_info *o = TENSOR(g, j);
      if (!placed[j] || o->last < ti->first || o->first > ti->last) continue;
      busy[nb++] = (range){o->offset, o->offset + vk_align(o->count * sizeof(float))};
    }
    qsort(busy, nb, sizeof *busy, cmp_range);
    uint64_t at = 0;
    for (size_t j = 0; j < nb; j++) {
      if (busy[j].begin >= at + bytes) break;
      if (busy[j].end > at) at = busy[j].end;
    }
    ti->offset = at;
    placed[order[k]] = true;
    if (at + bytes > arena) arena = at + bytes;
    if (ti->input || ti->output_name) {
      ti->staging = staging;
      staging += bytes;
    }
  }
  g_free(busy);
  g_free(placed);
  g_free(order);

  g->arena_bytes = arena;
  g->staging_bytes = staging;
  g->planned = true;
}

uint64_t graph_plan_arena_bytes(graph *g) {
  plan(g);
  return g->arena_bytes;
}

uint64_t graph_device_bytes(const graph *g) {
  return g->arena_bytes + g->staging_bytes;
}

/* ---- profiling (DDPM_PROFILE=1): time per op kind, printed at graph_free;
 * DDPM_PROFILE=shape splits each kind by output shape (c x h x w). ------- */

static void profile_collect(graph *g) {
  /* The first run includes the driver's lazy shader compilation. */
  if (g->prof_runs++ == 0) return;
  guint n = g->nodes->len + 1;
  uint64_t *ts = g_new(uint64_t, n);
  if (vkGetQueryPoolResults(g->ctx->device, g->prof_pool, 0, n, n * sizeof(uint64_t),
                            ts, sizeof(uint64_t), VK_QUERY_RESULT_64_BIT) == VK_SUCCESS) {
    for (guint i = 0; i < g->nodes->len; i++) {
      const gnode *nd = NODE(g, i);
      const tensor_info *t = TENSOR(g, nd->bind[nd->writes].id);
      char *key = g->prof_shapes ? g_strdup_printf("%s %dx%dx%d", nd->op, t->c, t->h, t->w)
                                 : g_strdup(nd->op);
      double *acc = g_hash_table_lookup(g->prof, key);
      if (acc)
        g_free(key);
      else
        g_hash_table_insert(g->prof, key, acc = g_new0(double, 3));
      acc[0] += (ts[i + 1] - ts[i]) * g->ctx->limits.timestampPeriod * 1e-6;
      acc[1] += 1;
      acc[2] += nd->flops;
    }
  }
  g_free(ts);
}

static void profile_report(graph *g) {
  if (!g->prof) return;
  double total = 0;
  GList *keys = g_list_sort(g_hash_table_get_keys(g->prof), (GCompareFunc)g_strcmp0);
  for (GList *k = keys; k; k = k->next) total += ((double *)g_hash_table_lookup(g->prof, k->data))[0];
  for (GList *k = keys; k; k = k->next) {
    const double *a = g_hash_table_lookup(g->prof, k->data);
    int runs = MAX(g->prof_runs - 1, 1);
    g_printerr("profile: %-24s %9.2f ms/run %5.1f%% %4.0f dispatches/run %8.4f GFLOP/run\n",
               (char *)k->data, a[0] / runs, 100 * a[0] / MAX(total, 1e-9), a[1] / runs,
               a[2] / runs / 1e9);
  }
  g_list_free(keys);
  g_hash_table_destroy(g->prof);
  vkDestroyQueryPool(g->ctx->device, g->prof_pool, NULL);
}

/* ---- recording ------------------------------------------------------------ */

static vk_binding resolve(graph *g, gbind b) {
  vk_binding vb;
  if (b.kind == GBIND_WEIGHT) {
    vb = wstore_binding(g->weights, b.id);
  } else {
    tensor_info *t = TENSOR(g, b.id);
    vb = (vk_binding){.buffer = &g->arena, .offset = t->offset,
                      .range = MAX(t->count, 1) * sizeof(float)};
  }
  vb.kind = b.how;
  if (b.how != VK_BIND_STORAGE) {
    /* Whole texels: rounding up stays inside the tensor's or weight's
     * VK_SUBALLOC_ALIGN-sized slot. */
    vb.texel_format = b.texels == 4    ? VK_FORMAT_R32G32B32A32_SFLOAT
                      : b.texels == -4 ? VK_FORMAT_R32G32B32A32_UINT
                                       : VK_FORMAT_R32_SFLOAT;
    VkDeviceSize texel = ABS(b.texels) * sizeof(float);
    vb.range = (vb.range + texel - 1) / texel * texel;
  }
  return vb;
}

static void record_copy(graph *g, const gnode *nd) {
  vk_binding src = resolve(g, nd->bind[0]), dst = resolve(g, nd->bind[1]);
  const gcopy *c = &nd->copy;
  VkBufferCopy *r = g_new(VkBufferCopy, MAX(c->n, 1));
  for (uint32_t k = 0; k < c->n; k++)
    r[k] = (VkBufferCopy){.srcOffset = src.offset + c->src_stride * k * sizeof(float),
                          .dstOffset = dst.offset + (c->dst_first + c->dst_stride * k) *
                                                      sizeof(float),
                          .size = c->len * sizeof(float)};
  g_assert(c->n == 0 || (c->src_stride * (c->n - 1) + c->len) * sizeof(float) <= src.range);
  g_assert(c->n == 0 ||
           (c->dst_first + c->dst_stride * (c->n - 1) + c->len) * sizeof(float) <= dst.range);
  if (c->n && c->len) vkCmdCopyBuffer(g->program.cb, src.buffer->buf, dst.buffer->buf, c->n, r);
  g_free(r);
}

static bool record(graph *g, GError **err) {
  ddpm_context *ctx = g->ctx;
  vk_program *p = &g->program;
  if (!vk_program_begin(ctx, p, g->nodes->len, err)) return false;
  if (g->prof_pool) {
    vkCmdResetQueryPool(p->cb, g->prof_pool, 0, g->nodes->len + 1);
    vkCmdWriteTimestamp(p->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, g->prof_pool, 0);
  }
  for (guint i = 0; i < g->tensors->len; i++) {
    tensor_info *t = TENSOR(g, i);
    if (t->input && t->count)
      vk_program_copy(p, &g->staging, t->staging, &g->arena, t->offset,
                      t->count * sizeof(float));
  }
  vk_program_barrier(p);
  for (guint i = 0; i < g->nodes->len; i++) {
    gnode *nd = NODE(g, i);
    if (!nd->spirv) {
      record_copy(g, nd);
      vk_program_barrier(p);
      if (g->prof_pool)
        vkCmdWriteTimestamp(p->cb, VK_PIPELINE_STAGE_TRANSFER_BIT, g->prof_pool, i + 1);
      continue;
    }
    vk_bind_kind kinds[VK_MAX_BINDINGS];
    for (uint32_t b = 0; b < nd->n_bind; b++) kinds[b] = nd->bind[b].how;
    const vk_kernel *k = vk_kernel_get(ctx, nd->spirv, nd->spirv_size,
                                       nd->n_bind, kinds, nd->push_size, nd->spec,
                                       nd->n_spec, err);
    if (!k) return false;
    vk_dispatch d = {.kernel = k};
    for (uint32_t b = 0; b < nd->n_bind; b++) {
      d.bindings[b] = resolve(g, nd->bind[b]);
      uint64_t texels = nd->bind[b].texels
        ? d.bindings[b].range / (ABS(nd->bind[b].texels) * sizeof(float)) : 0;
      if (texels > ctx->limits.maxTexelBufferElements) {
        g_set_error(err, DDPM_ERROR, DDPM_ERROR_OUT_OF_MEMORY,
                    "%s: an input of %" G_GUINT64_FORMAT " texels exceeds this "
                    "device's texel buffers (%u); use a smaller batch or image",
                    nd->op, (guint64)texels, ctx->limits.maxTexelBufferElements);
        return false;
      }
    }
    memcpy(d.push, nd->push, nd->push_size);
    memcpy(d.groups, nd->groups, sizeof d.groups);
    if (!vk_program_dispatch(ctx, p, &d, err)) return false;
    vk_program_barrier(p);
    if (g->prof_pool)
      vkCmdWriteTimestamp(p->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, g->prof_pool, i + 1);
  }
  for (guint i = 0; i < g->tensors->len; i++) {
    tensor_info *t = TENSOR(g, i);
    if (t->output_name && t->count)
      vk_program_copy(p, &g->arena, t->offset, &g->staging, t->staging,
                      t->count * sizeof(float));
  }
  return vk_program_end(p, err);
}

bool graph_compile(graph *g, GError **err) {
  g_return_val_if_fail(!g->compiled, false);
  plan(g);
  ddpm_context *ctx = g->ctx;
  if (!wstore_upload(g->weights, err) ||
      !vk_buffer_create(ctx, g->arena_bytes, VK_MEM_DEVICE, &g->arena, err) ||
      !vk_buffer_create(ctx, g->staging_bytes, VK_MEM_HOST, &g->staging, err))
    return false;
  if (g_getenv("DDPM_PROFILE") && ctx->limits.timestampComputeAndGraphics) {
    VkQueryPoolCreateInfo qi = {
      .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
      .queryType = VK_QUERY_TYPE_TIMESTAMP,
      .queryCount = g->nodes->len + 1,
    };
    if (vkCreateQueryPool(ctx->device, &qi, NULL, &g->prof_pool) != VK_SUCCESS)
      g->prof_pool = VK_NULL_HANDLE;
    g->prof = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g->prof_shapes = !g_strcmp0(g_getenv("DDPM_PROFILE"), "shape");
  }
  if (!record(g, err)) return false;
  g->compiled = true;
  return true;
}

float *graph_input_data(graph *g, gtensor t) {
  plan(g);
  tensor_info *ti = TENSOR(g, t.id);
  g_return_val_if_fail(ti->input && g->staging.mapped, NULL);
  return (float *)((uint8_t *)g->staging.mapped + ti->staging);
}

bool graph_run(graph *g, GError **err) {
  g_return_val_if_fail(g->compiled, false);
  if (!vk_program_run(g->ctx, &g->program, err)) return false;
  if (g->prof_pool) profile_collect(g);
  return true;
}

const float *graph_output_data(graph *g, const char *name, gtensor *shape) {
  for (guint i = 0; i < g->tensors->len; i++) {
    tensor_info *t = TENSOR(g, i);
    if (t->output_name && strcmp(t->output_name, name) == 0) {
      if (shape) *shape = (gtensor){(int)i, t->n, t->c, t->h, t->w};
      return (const float *)((const uint8_t *)g->staging.mapped + t->staging);
    }
  }
  return NULL;
}

const float *graph_tensor_data(graph *g, gtensor t) {
  tensor_info *ti = TENSOR(g, t.id);
  g_return_val_if_fail(ti->output_name && g->compiled, NULL);
  return (const float *)((const uint8_t *)g->staging.mapped + ti->staging);
}

/* One-off copy between a host-visible temporary and a resident tensor. */
static bool transfer(graph *g, gtensor t, float *host, bool up, GError **err) {
  tensor_info *ti = TENSOR(g, t.id);
  g_return_val_if_fail(g->compiled, false);
  uint64_t bytes = ti->count * sizeof(float);
  vk_buffer tmp;
  if (!vk_buffer_create(g->ctx, bytes, VK_MEM_HOST, &tmp, err)) return false;
  if (up) memcpy(tmp.mapped, host, bytes);
  vk_program p;
  bool ok = vk_program_begin(g->ctx, &p, 1, err);
  if (ok) {
    if (up) vk_program_copy(&p, &tmp, 0, &g->arena, ti->offset, bytes);
    else vk_program_copy(&p, &g->arena, ti->offset, &tmp, 0, bytes);
    ok = vk_program_end(&p, err) && vk_program_run(g->ctx, &p, err);
    vk_program_destroy(g->ctx, &p);
  }
  if (ok && !up) memcpy(host, tmp.mapped, bytes);
  vk_buffer_destroy(g->ctx, &tmp);
  return ok;
}

bool graph_upload(graph *g, gtensor t, const float *data, GError **err) {
  return transfer(g, t, (float *)data, true, err);
}

bool graph_download(graph *g, gtensor t, float *data, GError **err) {
  return transfer(g, t, data, false, err);
}
