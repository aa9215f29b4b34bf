/* Noise schedules and timestep grids, as diffusers' DDPMScheduler and
 * DDIMScheduler compute them (scheduling_ddpm.py, scheduling_ddim.py). */
#ifndef DDPM_SCHEDULE_H
#define DDPM_SCHEDULE_H

#include <stdbool.h>

#include <glib.h>

#define DDPM_MAX_TRAIN_STEPS 100000

typedef enum { SPACING_LEADING, SPACING_TRAILING, SPACING_LINSPACE } ddpm_spacing;
typedef enum { VARIANCE_FIXED_SMALL, VARIANCE_FIXED_LARGE } ddpm_variance;
typedef enum { PRED_EPSILON, PRED_SAMPLE, PRED_V } ddpm_prediction;

typedef struct {
  int num_train_timesteps;
  float *betas;          /* [num_train_timesteps] */
  float *alphas;         /* 1 - betas */
  float *alphas_cumprod; /* running product, accumulated in double as torch does */
  ddpm_variance variance;
  ddpm_prediction prediction;
  ddpm_spacing spacing;
  int steps_offset;
  bool clip_sample;
  float clip_sample_range;
  bool set_alpha_to_one; /* DDIM: alpha_prod at "t = -1" is 1, else alphas_cumprod[0] */
} ddpm_schedule;

/* From scheduler_config.json; a missing file gives the DDPM paper's
 * defaults (1000 steps, linear 1e-4 .. 0.02, fixed_small, clip). */
bool ddpm_schedule_load(const char *path, ddpm_schedule *s, GError **err);
bool ddpm_schedule_parse(const char *json, size_t len, const char *source,
                         ddpm_schedule *s, GError **err);
void ddpm_schedule_defaults(ddpm_schedule *s);
void ddpm_schedule_clear(ddpm_schedule *s);

/* set_timesteps(steps): fills ts[steps] (descending); false if steps is out
 * of 1..num_train_timesteps. */
bool ddpm_schedule_timesteps(const ddpm_schedule *s, int steps, int *ts);
/* The timestep diffusers steps to from t: t - T / steps (may be < 0). */
int ddpm_schedule_prev(const ddpm_schedule *s, int steps, int t);

/* alphas_cumprod[t] for t >= 0; for t < 0 one (DDPM) or, in DDIM,
 * final_alpha_cumprod. */
float ddpm_schedule_abar(const ddpm_schedule *s, int t, bool ddim);

/* diffusers add_noise, q(x_t | x0): out = sqrt(abar_t) * x0 +
 * sqrt(1 - abar_t) * noise over n values (out may alias x0). */
void ddpm_schedule_add_noise(const ddpm_schedule *s, int t, const float *x0,
                             const float *noise, size_t n, float *out);

#endif
