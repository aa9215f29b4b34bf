/* Compute pipelines from embedded SPIR-V, cached per specialization. */
#include <string.h>

#include "vk/vk.h"

static const VkDescriptorType descriptor_type[] = {
  [VK_BIND_STORAGE] = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
  [VK_BIND_UNIFORM_TEXEL] = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
  [VK_BIND_STORAGE_TEXEL] = VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER,
};

VkDescriptorType vk_descriptor_type(vk_bind_kind kind) { return descriptor_type[kind]; }

static bool same_kernel(const vk_kernel *k, const uint32_t *spirv, uint32_t n_bindings,
                        const vk_bind_kind *kinds, const uint32_t *spec,
                        uint32_t n_spec) {
  return k->spirv == spirv && k->n_bindings == n_bindings &&
         memcmp(k->kinds, kinds, n_bindings * sizeof *kinds) == 0 && k->n_spec == n_spec &&
         (n_spec == 0 || memcmp(k->spec, spec, n_spec * sizeof *spec) == 0);
}

static void destroy_kernel(ddpm_context *ctx, vk_kernel *k) {
  if (k->pipeline) vkDestroyPipeline(ctx->device, k->pipeline, NULL);
  if (k->layout) vkDestroyPipelineLayout(ctx->device, k->layout, NULL);
  if (k->set_layout)
    vkDestroyDescriptorSetLayout(ctx->device, k->set_layout, NULL);
  if (k->module) vkDestroyShaderModule(ctx->device, k->module, NULL);
  g_free(k);
}

const vk_kernel *vk_kernel_get(ddpm_context *ctx, const uint32_t *spirv,
                               size_t spirv_size, uint32_t n_bindings,
                               const vk_bind_kind *kinds, uint32_t push_size,
                               const uint32_t *spec,
                               uint32_t n_spec, GError **err) {
  g_return_val_if_fail(n_bindings <= VK_MAX_BINDINGS, NULL);
  g_return_val_if_fail(push_size <= VK_MAX_PUSH && n_spec <= VK_MAX_SPEC, NULL);
  for (guint i = 0; i < ctx->kernels->len; i++) {
    vk_kernel *k = g_ptr_array_index(ctx->kernels, i);
    if (same_kernel(k, spirv, n_bindings, kinds, spec, n_spec)) return k;
  }

  vk_kernel *k = g_new0(vk_kernel, 1);
  k->spirv = spirv;
  k->spirv_size = spirv_size;
  k->n_bindings = n_bindings;
  memcpy(k->kinds, kinds, n_bindings * sizeof *kinds);
  k->push_size = push_size;
  k->n_spec = n_spec;
  if (n_spec) memcpy(k->spec, spec, n_spec * sizeof *spec);

  VkShaderModuleCreateInfo smci = {
    .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
    .codeSize = spirv_size,
    .pCode = spirv,
  };
  VkResult r = vkCreateShaderModule(ctx->device, &smci, NULL, &k->module);
  if (r != VK_SUCCESS) goto fail;

  VkDescriptorSetLayoutBinding b[VK_MAX_BINDINGS];
  for (uint32_t i = 0; i < n_bindings; i++)
    b[i] = (VkDescriptorSetLayoutBinding){
      .binding = i,
      .descriptorType = descriptor_type[kinds[i]],
      .descriptorCount = 1,
      .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    };
  VkDescriptorSetLayoutCreateInfo dslci = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
    .bindingCount = n_bindings,
    .pBindings = b,
  };
  r = vkCreateDescriptorSetLayout(ctx->device, &dslci, NULL, &k->set_layout);
  if (r != VK_SUCCESS) goto fail;

  VkPushConstantRange pcr = {
    .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = push_size};
  VkPipelineLayoutCreateInfo plci = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
    .setLayoutCount = 1,
    .pSetLayouts = &k->set_layout,
    .pushConstantRangeCount = push_size ? 1 : 0,
    .pPushConstantRanges = &pcr,
  };
  r = vkCreatePipelineLayout(ctx->device, &plci, NULL, &k->layout);
  if (r != VK_SUCCESS) goto fail;

  VkSpecializationMapEntry entries[VK_MAX_SPEC];
  for (uint32_t i = 0; i < n_spec; i++)
    entries[i] = (VkSpecializationMapEntry){
      .constantID = i, .offset = i * 4, .size = 4};
  VkSpecializationInfo si = {
    .mapEntryCount = n_spec,
    .pMapEntries = entries,
    .dataSize = n_spec * 4,
    .pData = k->spec,
  };
  VkComputePipelineCreateInfo cpci = {
    .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
    .stage = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
      .stage = VK_SHADER_STAGE_COMPUTE_BIT,
      .module = k->module,
      .pName = "main",
      .pSpecializationInfo = n_spec ? &si : NULL,
    },
    .layout = k->layout,
  };
  r = vkCreateComputePipelines(ctx->device, ctx->pipeline_cache, 1, &cpci, NULL,
                               &k->pipeline);
  if (r != VK_SUCCESS) goto fail;
  g_ptr_array_add(ctx->kernels, k);
  return k;

fail:
  destroy_kernel(ctx, k);
  vk_fail(r, "creating a compute pipeline", err);
  return NULL;
}
