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

/* ---- device memory (compute/memfit.c) ---------------------------------- */

/* Whether `bytes` more device-local memory fit the budget now. */
bool ddpm_memfit_fits(const ddpm_context *ctx, uint64_t bytes);
/* Tries to allocate a job for `group` batch items: true when done; false
 * with *err set on failure, or with *err unset and *arena set (the
 * activation bytes) when the estimate says it would not fit. */
typedef bool (*ddpm_memfit_try_fn)(void *user, int group, uint64_t *arena,
                                   GError **err);
/* Tries groups n, n/2, ... (rounded up) down to 1 until one fits, also
 * when allocating fails with DDPM_ERROR_OUT_OF_MEMORY (the try frees what
 * it allocated first).  Returns the group, or 0 with *err set: other
 * errors as they are, and when not even one h x w image fits, the
 * needed and available memory. */
int ddpm_memfit_group(ddpm_model *model, int n, int h, int w,
                      ddpm_memfit_try_fn try_group, void *user, GError **err);
/* DDPM_ERROR_OUT_OF_MEMORY: one h x w image needs `arena` bytes of
 * activations beside the weights; names needed and available MiB and what
 * to try. */
void ddpm_memfit_error(ddpm_model *model, uint64_t arena, int h, int w,
                       GError **err);
/* Whether weights of this size fit; else the error saying so. */
bool ddpm_memfit_weights(ddpm_context *ctx, uint64_t weights, GError **err);

/* The batch ddpm_model_forward runs a batch of n at: n when it fits the
 * device, else a smaller group (items are independent, so the result is
 * the same); 0 with *err set when not even one image fits. */
int ddpm_model_forward_group(ddpm_model *model, int n, int h, int w,
                             GError **err);

/* One reverse step from x at timestep t of a `steps` grid: the U-Net, then
 * the scheduler update with `noise` (may be NULL when none is added). */
bool ddpm_sample_step(ddpm_model *model, ddpm_sampler sampler, int steps,
                      float eta, int t, int batch, int h, int w, const float *x,
                      const float *noise, float *x_prev, float *x0,
                      GError **err);

#endif
