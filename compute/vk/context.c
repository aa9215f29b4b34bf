/* Vulkan instance, device choice and compute queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk/vk.h"

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

const char *vk_result_name(VkResult r) {
  switch (r) {
#define CASE(x) case x: return #x;
    CASE(VK_SUCCESS) CASE(VK_NOT_READY) CASE(VK_TIMEOUT)
    CASE(VK_ERROR_OUT_OF_HOST_MEMORY) CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    CASE(VK_ERROR_INITIALIZATION_FAILED) CASE(VK_ERROR_DEVICE_LOST)
    CASE(VK_ERROR_MEMORY_MAP_FAILED) CASE(VK_ERROR_LAYER_NOT_PRESENT)
    CASE(VK_ERROR_EXTENSION_NOT_PRESENT) CASE(VK_ERROR_FEATURE_NOT_PRESENT)
    CASE(VK_ERROR_INCOMPATIBLE_DRIVER) CASE(VK_ERROR_TOO_MANY_OBJECTS)
    CASE(VK_ERROR_FORMAT_NOT_SUPPORTED) CASE(VK_ERROR_FRAGMENTED_POOL)
    CASE(VK_ERROR_OUT_OF_POOL_MEMORY) CASE(VK_ERROR_UNKNOWN)
#undef CASE
  default: return "VkResult(unknown)";
  }
}

bool vk_fail(VkResult r, const char *what, GError **err) {
  int code = DDPM_ERROR_VULKAN;
  if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
    code = DDPM_ERROR_OUT_OF_MEMORY;
  g_set_error(err, DDPM_ERROR, code, "Vulkan: %s failed: %s", what,
              vk_result_name(r));
  return false;
}

void vk_fault_arm(ddpm_context *ctx, vk_fault_kind kind, uint64_t n) {
  ctx->fault_count[kind] = 0;
  ctx->fault_at[kind] = n;
}

uint64_t vk_fault_calls(const ddpm_context *ctx, vk_fault_kind kind) {
  return ctx->fault_count[kind];
}

bool vk_fault_hit(ddpm_context *ctx, vk_fault_kind kind) {
  return ++ctx->fault_count[kind] == ctx->fault_at[kind];
}

const char *ddpm_device_type_name(ddpm_device_type type) {
  switch (type) {
  case DDPM_DEVICE_INTEGRATED_GPU: return "integrated GPU";
  case DDPM_DEVICE_DISCRETE_GPU: return "discrete GPU";
  case DDPM_DEVICE_VIRTUAL_GPU: return "virtual GPU";
  case DDPM_DEVICE_CPU: return "CPU";
  default: return "other";
  }
}

static VKAPI_ATTR VkBool32 VKAPI_CALL
on_validation_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                      VkDebugUtilsMessageTypeFlagsEXT type,
                      const VkDebugUtilsMessengerCallbackDataEXT *data,
                      void *user) {
  ddpm_context *ctx = user;
  (void)type;
  if (severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
    ctx->validation_messages++;
    fprintf(stderr, "ddpm: validation: %s\n",
            data && data->pMessage ? data->pMessage : "(no message)");
  }
  return VK_FALSE;
}

static bool layer_available(const char *name) {
  uint32_t n = 0;
  if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS) return false;
  VkLayerProperties *props = g_new0(VkLayerProperties, n ? n : 1);
  bool found = false;
  if (vkEnumerateInstanceLayerProperties(&n, props) == VK_SUCCESS)
    for (uint32_t i = 0; i < n && !found; i++)
      found = strcmp(props[i].layerName, name) == 0;
  g_free(props);
  return found;
}

static bool create_instance(ddpm_context *ctx, bool validation, GError **err) {
  VkApplicationInfo app = {
    .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
    .pApplicationName = "libddpm",
    .pEngineName = "libddpm",
    .apiVersion = VK_API_VERSION_1_1,
  };
  const char *layers[1] = {VALIDATION_LAYER};
  const char *exts[1] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
  if (validation && !layer_available(VALIDATION_LAYER)) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_VULKAN,
                "Vulkan validation was requested but %s is not installed "
                "(Debian: vulkan-validationlayers)", VALIDATION_LAYER);
    return false;
  }
  VkInstanceCreateInfo ici = {
    .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
    .pApplicationInfo = &app,
    .enabledLayerCount = validation ? 1 : 0,
    .ppEnabledLayerNames = layers,
    .enabledExtensionCount = validation ? 1 : 0,
    .ppEnabledExtensionNames = exts,
  };
  VkResult r = vkCreateInstance(&ici, NULL, &ctx->instance);
  if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_NO_DEVICE,
                "no Vulkan driver found (%s); install a Vulkan driver, e.g. "
                "Debian's mesa-vulkan-drivers", vk_result_name(r));
    return false;
  }
  if (r != VK_SUCCESS) return vk_fail(r, "vkCreateInstance", err);
  if (validation) {
    PFN_vkCreateDebugUtilsMessengerEXT create =
      (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
        ctx->instance, "vkCreateDebugUtilsMessengerEXT");
    VkDebugUtilsMessengerCreateInfoEXT mci = {
      .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
      .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                         VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
      .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
      .pfnUserCallback = on_validation_message,
      .pUserData = ctx,
    };
    if (!create ||
        (r = create(ctx->instance, &mci, NULL, &ctx->messenger)) != VK_SUCCESS)
      return vk_fail(create ? r : VK_ERROR_EXTENSION_NOT_PRESENT,
                     "vkCreateDebugUtilsMessengerEXT", err);
  }
  return true;
}

static void describe_device(VkPhysicalDevice pd, ddpm_device_info *info) {
  VkPhysicalDeviceSubgroupProperties sub = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceProperties2 p2 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sub};
  vkGetPhysicalDeviceProperties2(pd, &p2);
  VkPhysicalDevice16BitStorageFeatures f16 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
  VkPhysicalDeviceFeatures2 f2 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f16};
  vkGetPhysicalDeviceFeatures2(pd, &f2);
  VkPhysicalDeviceMemoryProperties mp;
  vkGetPhysicalDeviceMemoryProperties(pd, &mp);

  memset(info, 0, sizeof *info);
  g_strlcpy(info->name, p2.properties.deviceName, sizeof info->name);
  info->type = (ddpm_device_type)p2.properties.deviceType;
  info->vendor_id = p2.properties.vendorID;
  info->device_id = p2.properties.deviceID;
  info->api_version = p2.properties.apiVersion;
  info->subgroup_size = sub.subgroupSize;
  info->fp16_storage = f16.storageBuffer16BitAccess;
  for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
    if ((mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
        mp.memoryHeaps[i].size > info->device_local_bytes)
      info->device_local_bytes = mp.memoryHeaps[i].size;
}

static VkPhysicalDevice *enumerate(VkInstance inst, uint32_t *n, GError **err) {
  VkResult r = vkEnumeratePhysicalDevices(inst, n, NULL);
  if (r != VK_SUCCESS) {
    vk_fail(r, "vkEnumeratePhysicalDevices", err);
    return NULL;
  }
  VkPhysicalDevice *pds = g_new0(VkPhysicalDevice, *n ? *n : 1);
  r = vkEnumeratePhysicalDevices(inst, n, pds);
  if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
    g_free(pds);
    vk_fail(r, "vkEnumeratePhysicalDevices", err);
    return NULL;
  }
  return pds;
}

ddpm_device_info *ddpm_list_devices(size_t *n_out, GError **err) {
  ddpm_context tmp = {0};
  *n_out = 0;
  if (!create_instance(&tmp, false, err)) return NULL;
  uint32_t n = 0;
  VkPhysicalDevice *pds = enumerate(tmp.instance, &n, err);
  ddpm_device_info *infos = NULL;
  if (pds) {
    infos = g_new0(ddpm_device_info, n ? n : 1);
    for (uint32_t i = 0; i < n; i++) describe_device(pds[i], &infos[i]);
    *n_out = n;
  }
  g_free(pds);
  vkDestroyInstance(tmp.instance, NULL);
  return infos;
}

/* Index of the requested device, or -1 with *err set. */
static int choose_device(const ddpm_device_info *infos, uint32_t n,
                         const char *want, GError **err) {
  if (n == 0) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_NO_DEVICE,
                "no Vulkan device found (for a CPU fallback install Debian's "
                "mesa-vulkan-drivers)");
    return -1;
  }
  if (want && *want) {
    char *end = NULL;
    long idx = strtol(want, &end, 10);
    if (end && *end == '\0') {
      if (idx >= 0 && idx < (long)n) return (int)idx;
      g_set_error(err, DDPM_ERROR, DDPM_ERROR_NO_DEVICE,
                  "Vulkan device index %ld out of range (%u device%s)", idx, n,
                  n == 1 ? "" : "s");
      return -1;
    }
    char *needle = g_utf8_casefold(want, -1);
    int found = -1;
    for (uint32_t i = 0; i < n && found < 0; i++) {
      char *hay = g_utf8_casefold(infos[i].name, -1);
      if (strstr(hay, needle)) found = (int)i;
      g_free(hay);
    }
    g_free(needle);
    if (found < 0)
      g_set_error(err, DDPM_ERROR, DDPM_ERROR_NO_DEVICE,
                  "no Vulkan device matches '%s' (see `ddpm devices`)", want);
    return found;
  }
  static const ddpm_device_type order[] = {
    DDPM_DEVICE_DISCRETE_GPU, DDPM_DEVICE_INTEGRATED_GPU,
    DDPM_DEVICE_VIRTUAL_GPU, DDPM_DEVICE_CPU, DDPM_DEVICE_OTHER};
  for (size_t k = 0; k < G_N_ELEMENTS(order); k++)
    for (uint32_t i = 0; i < n; i++)
      if (infos[i].type == order[k]) return (int)i;
  return 0;
}

static bool find_compute_queue(VkPhysicalDevice pd, uint32_t *family) {
  uint32_t n = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
  VkQueueFamilyProperties *q = g_new0(VkQueueFamilyProperties, n ? n : 1);
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
  bool ok = false;
  /* Prefer a compute queue without graphics (often a separate engine). */
  for (int pass = 0; pass < 2 && !ok; pass++)
    for (uint32_t i = 0; i < n && !ok; i++)
      if ((q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) &&
          (pass == 1 || !(q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))) {
        *family = i;
        ok = true;
      }
  g_free(q);
  return ok;
}

static bool create_device(ddpm_context *ctx, GError **err) {
  if (!find_compute_queue(ctx->phys, &ctx->queue_family)) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_NO_DEVICE,
                "Vulkan device '%s' has no compute queue", ctx->info.name);
    return false;
  }
  float prio = 1.0f;
  VkDeviceQueueCreateInfo qci = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
    .queueFamilyIndex = ctx->queue_family,
    .queueCount = 1,
    .pQueuePriorities = &prio,
  };
  /* 64-bit integers where the device has them: the CPU kernels store
   * through them (shaders/store64.glsl) and need them. */
  VkPhysicalDeviceFeatures have;
  vkGetPhysicalDeviceFeatures(ctx->phys, &have);
  ctx->shader_int64 = have.shaderInt64;
  VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  f2.features.shaderInt64 = have.shaderInt64;
  VkDeviceCreateInfo dci = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
    .pNext = &f2,
    .queueCreateInfoCount = 1,
    .pQueueCreateInfos = &qci,
  };
  VkResult r = vkCreateDevice(ctx->phys, &dci, NULL, &ctx->device);
  if (r != VK_SUCCESS) return vk_fail(r, "vkCreateDevice", err);
  vkGetDeviceQueue(ctx->device, ctx->queue_family, 0, &ctx->queue);

  VkCommandPoolCreateInfo pci = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
    .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
    .queueFamilyIndex = ctx->queue_family,
  };
  if ((r = vkCreateCommandPool(ctx->device, &pci, NULL, &ctx->cmd_pool)))
    return vk_fail(r, "vkCreateCommandPool", err);
  VkPipelineCacheCreateInfo cci = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
  if ((r = vkCreatePipelineCache(ctx->device, &cci, NULL, &ctx->pipeline_cache)))
    return vk_fail(r, "vkCreatePipelineCache", err);
  return true;
}

ddpm_context_params ddpm_context_default_params(void) {
  ddpm_context_params p = {0};
  return p;
}

/* DDPM_DEVICE_MEMORY_LIMIT=BYTES (a K, M or G suffix multiplies by 1024^n):
 * emulate a device with that much device-local memory.  0 or unset: none. */
static bool read_memory_limit(uint64_t *limit, GError **err) {
  const char *v = g_getenv("DDPM_DEVICE_MEMORY_LIMIT");
  *limit = 0;
  if (!v || !*v) return true;
  char *end = NULL;
  guint64 n = g_ascii_strtoull(v, &end, 10);
  int shift = 0;
  if (end && end != v) {
    switch (g_ascii_toupper(*end)) {
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    default: break;
    }
  }
  if (!end || end == v || *end || *v == '-' || (shift && n > (G_MAXUINT64 >> shift))) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "DDPM_DEVICE_MEMORY_LIMIT = '%s': expected a number of bytes "
                "(optionally with a K, M or G suffix)", v);
    return false;
  }
  *limit = (uint64_t)n << shift;
  return true;
}

void vk_set_memory_limit(ddpm_context *ctx, uint64_t bytes) {
  uint64_t heap = 0;
  for (uint32_t i = 0; i < ctx->mem_props.memoryHeapCount; i++)
    if ((ctx->mem_props.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
        ctx->mem_props.memoryHeaps[i].size > heap)
      heap = ctx->mem_props.memoryHeaps[i].size;
  ctx->memory_limit = bytes;
  ctx->info.device_local_bytes = bytes && bytes < heap ? bytes : heap;
}

static bool env_true(const char *name) {
  const char *v = g_getenv(name);
  return v && *v && strcmp(v, "0") != 0;
}

ddpm_context *ddpm_context_new(const ddpm_context_params *params, GError **err) {
  ddpm_context_params p = params ? *params : ddpm_context_default_params();
  ddpm_context *ctx = g_new0(ddpm_context, 1);
  ctx->kernels = g_ptr_array_new();
  bool validation = p.validation || env_true("DDPM_VALIDATION");
  if (!create_instance(ctx, validation, err)) goto fail;

  uint32_t n = 0;
  VkPhysicalDevice *pds = enumerate(ctx->instance, &n, err);
  if (!pds) goto fail;
  ddpm_device_info *infos = g_new0(ddpm_device_info, n ? n : 1);
  for (uint32_t i = 0; i < n; i++) describe_device(pds[i], &infos[i]);
  const char *want = p.device ? p.device : g_getenv("DDPM_DEVICE");
  int idx = choose_device(infos, n, want, err);
  if (idx >= 0) {
    ctx->phys = pds[idx];
    ctx->info = infos[idx];
  }
  g_free(infos);
  g_free(pds);
  if (idx < 0) goto fail;

  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties(ctx->phys, &props);
  ctx->limits = props.limits;
  VkPhysicalDeviceSubgroupProperties sub = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceProperties2 p2 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sub};
  vkGetPhysicalDeviceProperties2(ctx->phys, &p2);
  ctx->subgroup_arith = (sub.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                        (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                        sub.subgroupSize >= 4 && sub.subgroupSize <= 128;
  vkGetPhysicalDeviceMemoryProperties(ctx->phys, &ctx->mem_props);
  VkDeviceSize align = ctx->limits.minStorageBufferOffsetAlignment;
  if (align > VK_SUBALLOC_ALIGN) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_UNSUPPORTED,
                "Vulkan device '%s' needs buffer offsets aligned to "
                "%" G_GUINT64_FORMAT " bytes (at most %u supported)",
                ctx->info.name, (guint64)align, VK_SUBALLOC_ALIGN);
    goto fail;
  }
  uint64_t limit;
  if (!read_memory_limit(&limit, err)) goto fail;
  vk_set_memory_limit(ctx, limit);
  ctx->fp16_weights = p.fp16_weights || env_true("DDPM_FP16_WEIGHTS");
  if (!create_device(ctx, err)) goto fail;
  return ctx;

fail:
  ddpm_context_free(ctx);
  return NULL;
}

void ddpm_context_free(ddpm_context *ctx) {
  if (!ctx) return;
  if (ctx->device) {
    vkDeviceWaitIdle(ctx->device);
    for (guint i = 0; i < ctx->kernels->len; i++) {
      vk_kernel *k = g_ptr_array_index(ctx->kernels, i);
      vkDestroyPipeline(ctx->device, k->pipeline, NULL);
      vkDestroyPipelineLayout(ctx->device, k->layout, NULL);
      vkDestroyDescriptorSetLayout(ctx->device, k->set_layout, NULL);
      vkDestroyShaderModule(ctx->device, k->module, NULL);
      g_free(k);
    }
    vkDestroyPipelineCache(ctx->device, ctx->pipeline_cache, NULL);
    vkDestroyCommandPool(ctx->device, ctx->cmd_pool, NULL);
    vkDestroyDevice(ctx->device, NULL);
  }
  if (ctx->messenger) {
    PFN_vkDestroyDebugUtilsMessengerEXT destroy =
      (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
        ctx->instance, "vkDestroyDebugUtilsMessengerEXT");
    if (destroy) destroy(ctx->instance, ctx->messenger, NULL);
  }
  if (ctx->instance) vkDestroyInstance(ctx->instance, NULL);
  g_ptr_array_free(ctx->kernels, TRUE);
  g_free(ctx);
}

const ddpm_device_info *ddpm_context_device(const ddpm_context *ctx) {
  return &ctx->info;
}

unsigned ddpm_context_validation_messages(const ddpm_context *ctx) {
  return ctx->validation_messages;
}
