/* Internal Vulkan layer: context, buffers, compute kernels, command recording.
 * Nothing here knows about U-Nets; compute/ops and compute/unet.c build on it. */
#ifndef DDPM_VK_H
#define DDPM_VK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vulkan/vulkan.h>

#include "ddpm/ddpm.h"

/* Alignment of every sub-allocation inside a buffer; a multiple of any
 * device's minStorageBufferOffsetAlignment we expect (checked at start). */
#define VK_SUBALLOC_ALIGN 256u

typedef struct vk_kernel vk_kernel;

struct ddpm_context {
  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  VkPhysicalDevice phys;
  VkDevice device;
  VkQueue queue;
  uint32_t queue_family;
  VkCommandPool cmd_pool;
  VkPipelineCache pipeline_cache;
  VkPhysicalDeviceMemoryProperties mem_props;
  VkPhysicalDeviceLimits limits;
  ddpm_device_info info;
  bool fp16_weights; /* convolution weights stored as halves (ops_fp16_weights) */
  bool subgroup_arith; /* subgroupAdd etc. in compute shaders */
  bool shader_int64;   /* shaderInt64, enabled (the CPU kernels need it) */
  unsigned validation_messages;
  uint64_t device_bytes, peak_device_bytes; /* live / peak allocations */
  /* Device-local (VK_MEM_DEVICE) allocations only, live and peak, and the
   * budget they may take: info.device_local_bytes, which
   * DDPM_DEVICE_MEMORY_LIMIT can lower (0: no cap beyond the heap). */
  uint64_t local_bytes, peak_local_bytes, memory_limit;
  GPtrArray *kernels; /* vk_kernel*, cached by (spirv, specialization) */
  uint64_t fault_count[3]; /* calls seen, per vk_fault_kind */
  uint64_t fault_at[3];    /* fail the call with this count (0: never) */
};

/* ---- fault injection (tests) ------------------------------------------ */

/* Tests make the N-th device memory allocation, queue submit or fence wait
 * fail (out of device memory, device lost, timeout) to check that every
 * caller cleans up and reports.  A failed wait still waits for the work, so
 * nothing is freed while the device uses it. */
typedef enum { VK_FAULT_ALLOC, VK_FAULT_SUBMIT, VK_FAULT_WAIT } vk_fault_kind;
/* Fail the n-th call of `kind` from now (1 = the next; 0 = never) and reset
 * the count. */
void vk_fault_arm(ddpm_context *ctx, vk_fault_kind kind, uint64_t n);
/* Calls of `kind` since it was last armed (or since the context was made). */
uint64_t vk_fault_calls(const ddpm_context *ctx, vk_fault_kind kind);
/* Counts a call; true if this one must fail. */
bool vk_fault_hit(ddpm_context *ctx, vk_fault_kind kind);

/* Device-local bytes still free for new allocations: the budget
 * (info.device_local_bytes) less what is allocated now.  Other processes
 * may hold some of it too, so an allocation within it can still fail. */
uint64_t vk_device_available(const ddpm_context *ctx);
/* Caps the device-local budget at `bytes` (0: the heap) as
 * DDPM_DEVICE_MEMORY_LIMIT does at context creation; device-local
 * allocations beyond it fail as out of device memory. */
void vk_set_memory_limit(ddpm_context *ctx, uint64_t bytes);

/* Sets *err from a failed Vulkan call; always returns false. */
bool vk_fail(VkResult r, const char *what, GError **err);
const char *vk_result_name(VkResult r);

/* ---- buffers ----------------------------------------------------------- */

typedef struct {
  VkBuffer buf;
  VkDeviceMemory mem;
  VkDeviceSize size;
  void *mapped; /* host-visible buffers only */
} vk_buffer;

typedef enum {
  VK_MEM_DEVICE, /* device-local; transfer src/dst */
  VK_MEM_HOST,   /* host-visible, coherent, mapped; preferably cached */
} vk_mem_kind;

bool vk_buffer_create(ddpm_context *ctx, VkDeviceSize size, vk_mem_kind kind,
                      vk_buffer *out, GError **err);
void vk_buffer_destroy(ddpm_context *ctx, vk_buffer *b);

/* How a shader binding reads its buffer.  On lavapipe (llvmpipe) the
 * choice decides the speed: inside any loop or branch a storage buffer is
 * read one SIMD lane at a time behind branches; a texel fetch is a vector
 * gather inside a function call that spills every vector register; an image
 * load is an inline gather. */
typedef enum {
  VK_BIND_STORAGE,       /* storage buffer (buffer { float x[]; }) */
  VK_BIND_UNIFORM_TEXEL, /* uniform texel buffer (samplerBuffer) */
  VK_BIND_STORAGE_TEXEL, /* storage texel buffer (imageBuffer) */
  VK_BIND_KINDS
} vk_bind_kind;

/* A range of a buffer bound to one shader binding. */
typedef struct {
  const vk_buffer *buffer;
  VkDeviceSize offset, range;
  vk_bind_kind kind;
  VkFormat texel_format; /* texel buffers only */
} vk_binding;

/* ---- kernels ----------------------------------------------------------- */

#define VK_MAX_BINDINGS 20
#define VK_MAX_PUSH 128
#define VK_MAX_SPEC 12

struct vk_kernel {
  const uint32_t *spirv;
  size_t spirv_size;
  uint32_t n_bindings, push_size;
  vk_bind_kind kinds[VK_MAX_BINDINGS];
  uint32_t spec[VK_MAX_SPEC];
  uint32_t n_spec;
  VkShaderModule module;
  VkDescriptorSetLayout set_layout;
  VkPipelineLayout layout;
  VkPipeline pipeline;
};

/* Returns the cached pipeline for this SPIR-V, binding kinds and
 * specialization constants (constant_id 0..n_spec-1), creating it on first
 * use.  Owned by ctx. */
const vk_kernel *vk_kernel_get(ddpm_context *ctx, const uint32_t *spirv,
                               size_t spirv_size, uint32_t n_bindings,
                               const vk_bind_kind *kinds,
                               uint32_t push_size, const uint32_t *spec,
                               uint32_t n_spec, GError **err);

VkDescriptorType vk_descriptor_type(vk_bind_kind kind);

/* ---- command recording ------------------------------------------------- */

/* One recorded dispatch. */
typedef struct {
  const vk_kernel *kernel;
  vk_binding bindings[VK_MAX_BINDINGS];
  uint8_t push[VK_MAX_PUSH];
  uint32_t groups[3];
} vk_dispatch;

/* A command buffer with its descriptor sets: record once, submit many. */
typedef struct {
  VkCommandBuffer cb;
  VkDescriptorPool pool;
  GArray *views; /* VkBufferView of the texel bindings, freed with it */
  VkFence fence;
  bool recording;
} vk_program;

bool vk_program_begin(ddpm_context *ctx, vk_program *p, uint32_t max_sets,
                      GError **err);
void vk_program_copy(vk_program *p, const vk_buffer *src, VkDeviceSize src_off,
                     const vk_buffer *dst, VkDeviceSize dst_off,
                     VkDeviceSize size);
bool vk_program_dispatch(ddpm_context *ctx, vk_program *p,
                         const vk_dispatch *d, GError **err);
/* Makes earlier writes (shader or transfer) visible to later reads. */
void vk_program_barrier(vk_program *p);
bool vk_program_end(vk_program *p, GError **err);
/* Submits and waits. */
bool vk_program_run(ddpm_context *ctx, vk_program *p, GError **err);
void vk_program_destroy(ddpm_context *ctx, vk_program *p);

/* Convenience for tests and small jobs: one dispatch, submitted and waited. */
bool vk_run_single(ddpm_context *ctx, const vk_dispatch *d, GError **err);

static inline VkDeviceSize vk_align(VkDeviceSize x) {
  return (x + VK_SUBALLOC_ALIGN - 1) & ~(VkDeviceSize)(VK_SUBALLOC_ALIGN - 1);
}

static inline uint32_t vk_div_up(uint64_t a, uint32_t b) {
  return (uint32_t)((a + b - 1) / b);
}

#endif
