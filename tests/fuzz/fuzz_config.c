/* libFuzzer: config.json (UNet2DModel) parsing and validation. */
#include <stdint.h>
#include <string.h>

#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ddpm_unet_config cfg;
  GError *err = NULL;
  if (ddpm_unet_config_parse((const char *)data, size, "config.json", &cfg,
                             &err)) {
    if (cfg.n_levels < 1 || cfg.n_levels > DDPM_MAX_LEVELS) __builtin_trap();
  } else {
    if (!err || !strstr(err->message, "config.json")) __builtin_trap();
    g_error_free(err);
  }
  return 0;
}
