/* A compute graph: activation tensors, weights and a flat list of kernel
 * dispatches.  Built once per input shape, then compiled: tensors get arena
 * offsets from a liveness plan, weights are uploaded once, and the whole
 * forward is recorded into one command buffer that is replayed per run. */
#ifndef DDPM_GRAPH_H
#define DDPM_GRAPH_H

#include "vk/vk.h"
#include "wstore.h"

/* An activation tensor, NCHW (vectors use h = w = 1). */
typedef struct {
  int id;
  int n, c, h, w;
} gtensor;

static inline uint64_t gtensor_count(gtensor t) {
  return (uint64_t)t.n * t.c * t.h * t.w;
}

/* What a shader binding refers to, and how it is read (vk_bind_kind: the
 * speed on lavapipe depends on it): as a storage buffer (float[]), or as a
 * read-only samplerBuffer or imageBuffer of float (texels 1), vec4
 * (texels 4) or uvec4 (texels -4) elements. */
typedef enum { GBIND_TENSOR, GBIND_WEIGHT } gbind_kind;
typedef struct {
  gbind_kind kind;
  int id;
  vk_bind_kind how;
  int texels; /* texel kinds: 1 or 4 floats per texel (-4: 4 uints) */
} gbind;

static inline gbind gb_tensor(gtensor t) { return (gbind){GBIND_TENSOR, t.id, VK_BIND_STORAGE, 0}; }
static inline gbind gb_weight(gweight w) { return (gbind){GBIND_WEIGHT, w.id, VK_BIND_STORAGE, 0}; }
static inline gbind gb_tensor_texels(gtensor t, int per_texel) {
  return (gbind){GBIND_TENSOR, t.id, VK_BIND_UNIFORM_TEXEL, per_texel};
}
static inline gbind gb_tensor_image(gtensor t) {
  return (gbind){GBIND_TENSOR, t.id, VK_BIND_STORAGE_TEXEL, 1};
}
static inline gbind gb_weight_image(gweight w) {
  return (gbind){GBIND_WEIGHT, w.id, VK_BIND_STORAGE_TEXEL, 1};
}
static inline gbind gb_tensor_image4(gtensor t) {
  return (gbind){GBIND_TENSOR, t.id, VK_BIND_STORAGE_TEXEL, 4};
}
/* A tensor as an imageBuffer of uvec4 (rgba32ui): 4 words per texel. */
static inline gbind gb_tensor_image4u(gtensor t) {
  return (gbind){GBIND_TENSOR, t.id, VK_BIND_STORAGE_TEXEL, -4};
}
/* A weight as an imageBuffer of uvec4 (rgba32ui): 4 words per texel. */
static inline gbind gb_weight_image4u(gweight w) {
  return (gbind){GBIND_WEIGHT, w.id, VK_BIND_STORAGE_TEXEL, -4};
}

/* A copy node's blocks: n blocks of len floats, block k read at
 * src_stride * k floats into the source and written at dst_first +
 * dst_stride * k into the destination. */
typedef struct {
  uint32_t n;
  uint64_t len, src_stride, dst_stride, dst_first;
} gcopy;

/* One dispatch, as ops describe it; or, with spirv NULL, a buffer copy
 * (vkCmdCopyBuffer, a memcpy on lavapipe) of `copy` from tensor bind[0]
 * into tensor bind[1] (writes 1). */
typedef struct {
  const char *op; /* kind, for profiling and messages */
  const uint32_t *spirv;
  size_t spirv_size;
  uint32_t spec[VK_MAX_SPEC]; /* specialization constants 0..n_spec-1 */
  uint32_t n_spec;
  uint32_t n_bind;
  gbind bind[VK_MAX_BINDINGS];
  int writes; /* index into bind[] of the written tensor */
  uint32_t push_size;
  uint8_t push[VK_MAX_PUSH];
  uint32_t groups[3];
  double flops; /* multiply-adds count 2; for the benchmark's GFLOP/s */
  gcopy copy;
} gnode;

typedef struct graph graph;

/* Weights come from `weights`, which must outlive the graph. */
graph *graph_new(ddpm_context *ctx, wstore *weights);
ddpm_context *graph_context(const graph *g);
wstore *graph_weights(const graph *g);
void graph_free(graph *g);

/* A tensor written by the host before each run. */
gtensor graph_input(graph *g, int n, int c, int h, int w);
/* A tensor that keeps its contents on the device between runs (e.g. the
 * sample being denoised); set and read with graph_upload/graph_download. */
gtensor graph_resident(graph *g, int n, int c, int h, int w);
/* An intermediate tensor (arena-allocated, may share memory). */
gtensor graph_tensor(graph *g, int n, int c, int h, int w);
/* Marks a tensor readable after each run under `name`; it then keeps its
 * own memory for the whole forward. */
void graph_output(graph *g, gtensor t, const char *name);

void graph_add(graph *g, const gnode *node);
size_t graph_n_nodes(const graph *g);
/* Floating-point operations of one run (sum of the nodes' flops). */
double graph_flops(const graph *g);

/* Plans memory, uploads the weights if not yet done, records the program.
 * Activation + staging memory of the plan is in graph_device_bytes. */
bool graph_compile(graph *g, GError **err);
uint64_t graph_device_bytes(const graph *g);
/* Arena size only (activations); valid before compile. */
uint64_t graph_plan_arena_bytes(graph *g);

/* Host pointer where the input's data goes before graph_run. */
float *graph_input_data(graph *g, gtensor t);
bool graph_run(graph *g, GError **err);
/* Result of an output after graph_run (NULL for an unknown name). */
const float *graph_output_data(graph *g, const char *name, gtensor *shape);

/* Copies between host memory and a resident tensor (after compile). */
bool graph_upload(graph *g, gtensor t, const float *data, GError **err);
bool graph_download(graph *g, gtensor t, float *data, GError **err);

/* Data of a tensor marked with graph_output, after graph_run. */
const float *graph_tensor_data(graph *g, gtensor t);

/* Helpers for ops: a 1-D dispatch over `total` invocations of `local`. */
void graph_groups_1d(uint64_t total, uint32_t local, uint32_t groups[3]);

#endif
