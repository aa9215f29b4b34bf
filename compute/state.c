/* Run states: a run stopped after some of its steps, and the sampling
 * parameters that finish it bit for bit (compute/state_file.c reads and
 * writes them). */
#include <string.h>

#include "ddpm/ddpm.h"

ddpm_state *ddpm_state_new(ddpm_model *m, const char *model_name,
                           const ddpm_sample_params *p, int step,
                           const float *x, GError **err) {
  g_return_val_if_fail(m && p && x, NULL);
  int n_run = ddpm_sample_steps_run(m, p, err);
  if (n_run < 0) return NULL;
  if (p->shared_noise && p->batch > 1) {
    g_set_error_literal(err, DDPM_ERROR, DDPM_ERROR_UNSUPPORTED,
                        "a run with shared noise across its batch cannot be kept "
                        "as a run state (keep one batch item)");
    return NULL;
  }
  if (step < 1 || step >= n_run) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "a run state is kept after step 1..%d of the %d-step run, not %d",
                n_run - 1, n_run, step);
    return NULL;
  }
  ddpm_model_info info;
  ddpm_model_get_info(m, &info);
  int size = info.sample_size > 0 ? info.sample_size : 32;
  ddpm_state *s = g_new0(ddpm_state, 1);
  s->model = g_strdup(model_name ? model_name : "");
  s->sampler = p->sampler;
  s->steps = p->steps;
  s->eta = p->sampler == DDPM_SAMPLER_DDIM ? p->eta : 0.0f;
  s->seed = p->seed;
  s->batch = p->batch;
  s->channels = info.in_channels;
  s->height = p->height ? p->height : size;
  s->width = p->width ? p->width : size;
  s->step = step;
  s->timesteps = g_new(int, p->steps);
  ddpm_sample_timesteps(m, p->steps, s->timesteps, NULL);
  int first = p->steps - n_run;
  s->t = s->timesteps[first + step];
  s->t0 = p->init ? s->timesteps[first] : -1;
  s->resample = p->init && p->resample > 1 ? p->resample : 1;
  s->denoise_sigma = p->init ? p->denoise_sigma : 0.0f;
  size_t n = (size_t)s->batch * s->channels * s->height * s->width;
  s->x = g_memdup2(x, n * sizeof(float));
  if (p->init) s->init = g_memdup2(p->init, n * sizeof(float));
  if (p->init && p->mask)
    s->mask = g_memdup2(p->mask, (size_t)s->height * s->width * sizeof(float));
  return s;
}

bool ddpm_state_resume_params(const ddpm_state *s, ddpm_model *m,
                              ddpm_sample_params *p, GError **err) {
  g_return_val_if_fail(s && m && p, false);
  ddpm_model_info info;
  ddpm_model_get_info(m, &info);
  if (s->channels != info.in_channels) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "x_t has %d channel(s), the model samples %d", s->channels,
                info.in_channels);
    return false;
  }
  int *ts = g_new(int, s->steps);
  bool ok = ddpm_sample_timesteps(m, s->steps, ts, err);
  if (ok && memcmp(ts, s->timesteps, sizeof(int) * (size_t)s->steps)) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "the state's %d-step grid differs from this model's scheduler's",
                s->steps);
    ok = false;
  }
  g_free(ts);
  if (!ok) return false;
  *p = ddpm_sample_default_params();
  p->sampler = s->sampler;
  p->steps = s->steps;
  p->eta = s->eta;
  p->seed = s->seed;
  p->batch = s->batch;
  p->height = s->height;
  p->width = s->width;
  p->init = s->init;
  p->mask = s->mask;
  p->t0 = s->init ? s->t0 : -1;
  p->resample = s->resample;
  p->denoise_sigma = s->init ? s->denoise_sigma : 0.0f;
  p->start_step = s->step;
  p->start_x = s->x;
  /* The run these parameters make must continue where the state stopped. */
  int n_run = ddpm_sample_steps_run(m, p, err);
  if (n_run < 0) return false;
  if (s->step >= n_run) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "metadata field 'step' = %d, but the run has %d steps", s->step, n_run);
    return false;
  }
  int t = s->timesteps[s->steps - n_run + s->step];
  if (t != s->t) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "metadata field 't' = %d, but step %d of the run is t = %d", s->t,
                s->step, t);
    return false;
  }
  return true;
}
