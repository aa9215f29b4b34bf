/* Internal model API beyond include/ddpm/ddpm.h (tests, tools). */
#ifndef DDPM_MODEL_INTERNAL_H
#define DDPM_MODEL_INTERNAL_H

#include "ddpm/ddpm.h"
#include "model/config.h"

const ddpm_unet_config *ddpm_model_config(const ddpm_model *model);

/* Called for each diffusers module output of a probed forward. */
typedef void (*ddpm_probe_fn)(const char *name, const float *data, int n,
                              int c, int h, int w, void *user);

/* A forward that keeps every module output and reports it to `fn`
 * (then eps as for ddpm_model_forward). */
bool ddpm_model_forward_probed(ddpm_model *model, const float *x,
                               const int64_t *t, int batch, int height,
                               int width, float *eps, ddpm_probe_fn fn,
                               void *user, GError **err);

#endif
