/* A recorded command buffer ("program"): transfers and dispatches separated
 * by barriers, with one descriptor set per dispatch.  Recorded once, it can
 * be submitted again and again as long as its buffers live. */
#include <string.h>

#include "vk/vk.h"

bool vk_program_begin(ddpm_context *ctx, vk_program *p, uint32_t max_sets,
                      GError **err) {
  memset(p, 0, sizeof *p);
  if (max_sets == 0) max_sets = 1;
  VkDescriptorPoolSize ps[VK_BIND_KINDS];
  for (int i = 0; i < VK_BIND_KINDS; i++)
    ps[i] = (VkDescriptorPoolSize){vk_descriptor_type((vk_bind_kind)i),
                                   max_sets * VK_MAX_BINDINGS};
  VkDescriptorPoolCreateInfo dpci = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
    .maxSets = max_sets,
    .poolSizeCount = VK_BIND_KINDS,
    .pPoolSizes = ps,
  };
  p->views = g_array_new(FALSE, FALSE, sizeof(VkBufferView));
  VkResult r = vkCreateDescriptorPool(ctx->device, &dpci, NULL, &p->pool);
  if (r != VK_SUCCESS) return vk_fail(r, "vkCreateDescriptorPool", err);

  VkCommandBufferAllocateInfo cbai = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
    .commandPool = ctx->cmd_pool,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
    .commandBufferCount = 1,
  };
  if ((r = vkAllocateCommandBuffers(ctx->device, &cbai, &p->cb)))
    goto fail;
  VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  if ((r = vkCreateFence(ctx->device, &fci, NULL, &p->fence)))
    goto fail;
  VkCommandBufferBeginInfo bi = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  if ((r = vkBeginCommandBuffer(p->cb, &bi)))
    goto fail;
  p->recording = true;
  return true;

fail:
  vk_program_destroy(ctx, p);
  return vk_fail(r, "creating a command buffer", err);
}

void vk_program_copy(vk_program *p, const vk_buffer *src, VkDeviceSize src_off,
                     const vk_buffer *dst, VkDeviceSize dst_off,
                     VkDeviceSize size) {
  VkBufferCopy c = {.srcOffset = src_off, .dstOffset = dst_off, .size = size};
  vkCmdCopyBuffer(p->cb, src->buf, dst->buf, 1, &c);
}

void vk_program_barrier(vk_program *p) {
  VkMemoryBarrier mb = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
    .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                     VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
  };
  VkPipelineStageFlags stages =
    VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
  vkCmdPipelineBarrier(p->cb, stages, stages, 0, 1, &mb, 0, NULL, 0, NULL);
}

bool vk_program_dispatch(ddpm_context *ctx, vk_program *p,
                         const vk_dispatch *d, GError **err) {
  const vk_kernel *k = d->kernel;
  VkDescriptorSetAllocateInfo dsai = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
    .descriptorPool = p->pool,
    .descriptorSetCount = 1,
    .pSetLayouts = &k->set_layout,
  };
  VkDescriptorSet set;
  VkResult r = vkAllocateDescriptorSets(ctx->device, &dsai, &set);
  if (r != VK_SUCCESS) return vk_fail(r, "vkAllocateDescriptorSets", err);

  VkDescriptorBufferInfo bi[VK_MAX_BINDINGS];
  VkWriteDescriptorSet w[VK_MAX_BINDINGS];
  VkBufferView views[VK_MAX_BINDINGS];
  for (uint32_t i = 0; i < k->n_bindings; i++) {
    const vk_binding *b = &d->bindings[i];
    g_return_val_if_fail(b->buffer && b->buffer->buf, false);
    g_return_val_if_fail(b->kind == k->kinds[i], false);
    bool texel = b->kind == VK_BIND_UNIFORM_TEXEL || b->kind == VK_BIND_STORAGE_TEXEL;
    g_return_val_if_fail(texel == (b->texel_format != VK_FORMAT_UNDEFINED), false);
    bi[i] = (VkDescriptorBufferInfo){
      .buffer = b->buffer->buf,
      .offset = b->offset,
      .range = b->range ? b->range : VK_WHOLE_SIZE,
    };
    w[i] = (VkWriteDescriptorSet){
      .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
      .dstSet = set,
      .dstBinding = i,
      .descriptorCount = 1,
      .descriptorType = vk_descriptor_type(b->kind),
      .pBufferInfo = &bi[i],
    };
    if (texel) {
      VkBufferViewCreateInfo vci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
        .buffer = b->buffer->buf,
        .format = b->texel_format,
        .offset = b->offset,
        .range = b->range ? b->range : VK_WHOLE_SIZE,
      };
      r = vkCreateBufferView(ctx->device, &vci, NULL, &views[i]);
      if (r != VK_SUCCESS) return vk_fail(r, "vkCreateBufferView", err);
      g_array_append_val(p->views, views[i]);
      w[i].pBufferInfo = NULL;
      w[i].pTexelBufferView = &views[i];
    }
  }
  vkUpdateDescriptorSets(ctx->device, k->n_bindings, w, 0, NULL);
  vkCmdBindPipeline(p->cb, VK_PIPELINE_BIND_POINT_COMPUTE, k->pipeline);
  vkCmdBindDescriptorSets(p->cb, VK_PIPELINE_BIND_POINT_COMPUTE, k->layout, 0,
                          1, &set, 0, NULL);
  if (k->push_size)
    vkCmdPushConstants(p->cb, k->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                       k->push_size, d->push);
  vkCmdDispatch(p->cb, d->groups[0], d->groups[1], d->groups[2]);
  return true;
}

bool vk_program_end(vk_program *p, GError **err) {
  p->recording = false;
  VkResult r = vkEndCommandBuffer(p->cb);
  return r == VK_SUCCESS || vk_fail(r, "vkEndCommandBuffer", err);
}

bool vk_program_run(ddpm_context *ctx, vk_program *p, GError **err) {
  VkSubmitInfo si = {
    .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
    .commandBufferCount = 1,
    .pCommandBuffers = &p->cb,
  };
  VkResult r = vkResetFences(ctx->device, 1, &p->fence);
  if (r == VK_SUCCESS)
    r = vk_fault_hit(ctx, VK_FAULT_SUBMIT) ? VK_ERROR_DEVICE_LOST
                                            : vkQueueSubmit(ctx->queue, 1, &si, p->fence);
  if (r != VK_SUCCESS) return vk_fail(r, "vkQueueSubmit", err);
  r = vkWaitForFences(ctx->device, 1, &p->fence, VK_TRUE, UINT64_MAX);
  if (r == VK_SUCCESS && vk_fault_hit(ctx, VK_FAULT_WAIT)) r = VK_TIMEOUT;
  return r == VK_SUCCESS || vk_fail(r, "vkWaitForFences", err);
}

void vk_program_destroy(ddpm_context *ctx, vk_program *p) {
  if (p->fence) vkDestroyFence(ctx->device, p->fence, NULL);
  if (p->cb) vkFreeCommandBuffers(ctx->device, ctx->cmd_pool, 1, &p->cb);
  if (p->pool) vkDestroyDescriptorPool(ctx->device, p->pool, NULL);
  for (guint i = 0; p->views && i < p->views->len; i++)
    vkDestroyBufferView(ctx->device, g_array_index(p->views, VkBufferView, i), NULL);
  if (p->views) g_array_free(p->views, TRUE);
  memset(p, 0, sizeof *p);
}

bool vk_run_single(ddpm_context *ctx, const vk_dispatch *d, GError **err) {
  vk_program p;
  if (!vk_program_begin(ctx, &p, 1, err)) return false;
  bool ok = vk_program_dispatch(ctx, &p, d, err) && vk_program_end(&p, err) &&
            vk_program_run(ctx, &p, err);
  vk_program_destroy(ctx, &p);
  return ok;
}
