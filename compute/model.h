/* Internal model API beyond include/ddpm/ddpm.h (tests, tools). */
#ifndef DDPM_MODEL_INTERNAL_H
#define DDPM_MODEL_INTERNAL_H

#include "ddpm/ddpm.h"
#include "model/config.h"
#include "schedule.h"

const ddpm_unet_config *ddpm_model_config(const ddpm_model *model);
/* The noise schedule from scheduler_config.json beside config.json (or in
 * ../scheduler/ of a pipeline folder), else the DDPM defaults. */
const ddpm_schedule *ddpm_model_schedule(const ddpm_model *model);

/* Called for each diffusers module output of a probed forward. */
typedef void (*ddpm_probe_fn)(const char *name, const float *data, int n,
                              int c, int h, int w, void *user);

/* A forward that keeps every module output and reports it to `fn`
 * (then eps as for ddpm_model_forward). */
bool ddpm_model_forward_probed(ddpm_model *model, const float *x,
                               const int64_t *t, int batch, int height,
                               int width, float *eps, ddpm_probe_fn fn,
                               void *user, GError **err);

struct wstore;
ddpm_context *ddpm_model_context(const ddpm_model *model);
struct wstore *ddpm_model_weights(const ddpm_model *model);
/* Frees the cached forward graph (its activation memory). */
void ddpm_model_release_graph(ddpm_model *model);
bool ddpm_model_check_size(ddpm_model *model, int n, int h, int w, GError **err);

/* One reverse step from x at timestep t of a `steps` grid: the U-Net, then
 * the scheduler update with `noise` (may be NULL when none is added). */
bool ddpm_sample_step(ddpm_model *model, ddpm_sampler sampler, int steps,
                      float eta, int t, int batch, int h, int w, const float *x,
                      const float *noise, float *x_prev, float *x0,
                      GError **err);

#endif
