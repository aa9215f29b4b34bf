/* Device memory budgets: whether a job's activations fit beside what is
 * allocated now, and the error when not even one image does. */
#include "model.h"
#include "vk/vk.h"
#include "wstore.h"

#define MIB(x) ((double)(x) / 1048576.0)

/* "12.34 MiB" below 100 MiB, "1234 MiB" above. */
static const char *mib(char buf[32], uint64_t bytes) {
  g_snprintf(buf, 32, MIB(bytes) < 100 ? "%.2f MiB" : "%.0f MiB", MIB(bytes));
  return buf;
}

bool ddpm_memfit_fits(const ddpm_context *ctx, uint64_t bytes) {
  return bytes <= vk_device_available(ctx);
}

void ddpm_memfit_error(ddpm_model *m, uint64_t arena, int h, int w,
                       GError **err) {
  const ddpm_context *ctx = ddpm_model_context(m);
  const ddpm_unet_config *cfg = ddpm_model_config(m);
  uint64_t weights = wstore_bytes(ddpm_model_weights(m));
  /* This model's weights are allocated already: count them on both sides. */
  uint64_t avail = vk_device_available(ctx) + weights;
  int natural = cfg->sample_size > 0 ? cfg->sample_size : 32;
  char a[32], b[32], c[32], d[32], e[32];
  g_set_error(err, DDPM_ERROR, DDPM_ERROR_OUT_OF_MEMORY,
              "not enough device memory for one %dx%d image: it needs %s "
              "(weights %s + %s for the computation), %s are available on "
              "'%s' (%s in all%s); try a smaller image size (this model was "
              "trained at %dx%d) or a device with more memory", w, h,
              mib(a, weights + arena), mib(b, weights), mib(c, arena),
              mib(d, avail), ctx->info.name, mib(e, ctx->info.device_local_bytes),
              ctx->memory_limit ? ", limited by DDPM_DEVICE_MEMORY_LIMIT" : "",
              natural, natural);
}

bool ddpm_memfit_weights(ddpm_context *ctx, uint64_t weights, GError **err) {
  if (weights <= vk_device_available(ctx)) return true;
  char a[32], b[32], c[32];
  g_set_error(err, DDPM_ERROR, DDPM_ERROR_OUT_OF_MEMORY,
              "not enough device memory for the model's weights: they need "
              "%s, %s are available on '%s' (%s in all%s); try a smaller "
              "model, free other models, or a device with more memory",
              mib(a, weights), mib(b, vk_device_available(ctx)), ctx->info.name,
              mib(c, ctx->info.device_local_bytes),
              ctx->memory_limit ? ", limited by DDPM_DEVICE_MEMORY_LIMIT" : "");
  return false;
}

int ddpm_memfit_group(ddpm_model *m, int n, int h, int w,
                      ddpm_memfit_try_fn try_group, void *user, GError **err) {
  for (int g = n; g > 0; g = g > 1 ? (g + 1) / 2 : 0) {
    GError *e = NULL;
    uint64_t arena = 0;
    if (try_group(user, g, &arena, &e)) {
      if (g < n)
        g_debug("batch %d at %dx%d runs in groups of %d (%.1f MiB of "
                "activations, %.1f MiB free)", n, w, h, g, MIB(arena),
                MIB(vk_device_available(ddpm_model_context(m)) + arena));
      return g;
    }
    if (e && !g_error_matches(e, DDPM_ERROR, DDPM_ERROR_OUT_OF_MEMORY)) {
      g_propagate_error(err, e);
      return 0;
    }
    if (g == 1) {
      if (e)
        g_propagate_prefixed_error(err, e, "not even one %dx%d image fits the "
                                   "device (try a smaller size): ", w, h);
      else
        ddpm_memfit_error(m, arena, h, w, err);
      return 0;
    }
    g_clear_error(&e);
  }
  return 0;
}
