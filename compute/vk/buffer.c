/* Buffers: one VkDeviceMemory each.  The graph sub-allocates inside a few
 * large buffers (weights, activation arena, staging), so allocations stay few. */
#include <string.h>

#include "vk/vk.h"

static int find_memory_type(const ddpm_context *ctx, uint32_t type_bits,
                            VkMemoryPropertyFlags want,
                            VkMemoryPropertyFlags prefer) {
  const VkPhysicalDeviceMemoryProperties *mp = &ctx->mem_props;
  for (int pass = 0; pass < 2; pass++)
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++) {
      VkMemoryPropertyFlags f = mp->memoryTypes[i].propertyFlags;
      VkMemoryPropertyFlags need = pass == 0 ? (want | prefer) : want;
      if ((type_bits & (1u << i)) && (f & need) == need) return (int)i;
    }
  return -1;
}

bool vk_buffer_create(ddpm_context *ctx, VkDeviceSize size, vk_mem_kind kind,
                      vk_buffer *out, GError **err) {
  memset(out, 0, sizeof *out);
  if (size == 0) size = 16;
  VkBufferCreateInfo bci = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = size,
    .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
             VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
             VK_BUFFER_USAGE_STORAGE_TEXEL_BUFFER_BIT |
             VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
    .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  VkResult r = vkCreateBuffer(ctx->device, &bci, NULL, &out->buf);
  if (r != VK_SUCCESS) return vk_fail(r, "vkCreateBuffer", err);

  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(ctx->device, out->buf, &req);
  int type = kind == VK_MEM_DEVICE
    ? find_memory_type(ctx, req.memoryTypeBits,
                       VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0)
    : find_memory_type(ctx, req.memoryTypeBits,
                       VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                         VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                       VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
  if (type < 0 && kind == VK_MEM_DEVICE) /* e.g. no device-local type fits */
    type = find_memory_type(ctx, req.memoryTypeBits, 0, 0);
  if (type < 0) {
    vkDestroyBuffer(ctx->device, out->buf, NULL);
    out->buf = VK_NULL_HANDLE;
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_VULKAN,
                "Vulkan: no suitable memory type for a %s buffer",
                kind == VK_MEM_DEVICE ? "device" : "host-visible");
    return false;
  }
  VkMemoryAllocateInfo mai = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
    .allocationSize = req.size,
    .memoryTypeIndex = (uint32_t)type,
  };
  /* DDPM_DEVICE_MEMORY_LIMIT: a smaller device, as the driver would say. */
  bool over = kind == VK_MEM_DEVICE && ctx->memory_limit &&
              req.size > vk_device_available(ctx);
  r = vk_fault_hit(ctx, VK_FAULT_ALLOC) || over
        ? VK_ERROR_OUT_OF_DEVICE_MEMORY
        : vkAllocateMemory(ctx->device, &mai, NULL, &out->mem);
  if (r != VK_SUCCESS) {
    vkDestroyBuffer(ctx->device, out->buf, NULL);
    out->buf = VK_NULL_HANDLE;
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) {
      if (kind == VK_MEM_DEVICE)
        g_set_error(err, DDPM_ERROR, DDPM_ERROR_OUT_OF_MEMORY,
                    "out of device memory allocating %.1f MiB (%.1f MiB of "
                    "device memory already allocated by this process, device "
                    "%s%.1f MiB)", req.size / 1048576.0,
                    ctx->local_bytes / 1048576.0,
                    ctx->memory_limit ? "limited by DDPM_DEVICE_MEMORY_LIMIT to " : "heap ",
                    ctx->info.device_local_bytes / 1048576.0);
      else
        g_set_error(err, DDPM_ERROR, DDPM_ERROR_OUT_OF_MEMORY,
                    "out of host-visible memory allocating %.1f MiB (%.1f MiB "
                    "already allocated by this process)",
                    req.size / 1048576.0, ctx->device_bytes / 1048576.0);
      return false;
    }
    return vk_fail(r, "vkAllocateMemory", err);
  }
  r = vkBindBufferMemory(ctx->device, out->buf, out->mem, 0);
  if (r == VK_SUCCESS && kind == VK_MEM_HOST)
    r = vkMapMemory(ctx->device, out->mem, 0, VK_WHOLE_SIZE, 0, &out->mapped);
  if (r != VK_SUCCESS) {
    vkDestroyBuffer(ctx->device, out->buf, NULL);
    vkFreeMemory(ctx->device, out->mem, NULL);
    memset(out, 0, sizeof *out);
    return vk_fail(r, "binding or mapping buffer memory", err);
  }
  out->size = size;
  if (kind == VK_MEM_DEVICE) {
    ctx->local_bytes += req.size;
    if (ctx->local_bytes > ctx->peak_local_bytes)
      ctx->peak_local_bytes = ctx->local_bytes;
  }
  ctx->device_bytes += req.size;
  if (ctx->device_bytes > ctx->peak_device_bytes)
    ctx->peak_device_bytes = ctx->device_bytes;
  return true;
}

uint64_t vk_device_available(const ddpm_context *ctx) {
  uint64_t budget = ctx->info.device_local_bytes;
  return budget > ctx->local_bytes ? budget - ctx->local_bytes : 0;
}

void vk_buffer_destroy(ddpm_context *ctx, vk_buffer *b) {
  if (!b || !b->buf) return;
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(ctx->device, b->buf, &req);
  ctx->device_bytes -= req.size;
  if (!b->mapped) ctx->local_bytes -= req.size; /* VK_MEM_DEVICE: never mapped */
  if (b->mapped) vkUnmapMemory(ctx->device, b->mem);
  vkDestroyBuffer(ctx->device, b->buf, NULL);
  vkFreeMemory(ctx->device, b->mem, NULL);
  memset(b, 0, sizeof *b);
}
