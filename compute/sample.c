/* The reverse process: DDPM ancestral and DDIM steps as diffusers computes
 * them (float32 scalars, same order), masked SDEdit, previews and cancel.
 * The U-Net runs on the device; the per-step update is cheap host math. */
#include <math.h>
#include <string.h>

#include "model.h"
#include "schedule.h"

/* Noise streams of the generator. */
enum {
  STREAM_START = 0,
  STREAM_STEP = 1,              /* + step index */
  STREAM_RESAMPLE = 0x20000000, /* + step index * 256 + round */
  STREAM_KNOWN = 0x40000000,    /* + step index * 256 + round */
};

ddpm_sample_params ddpm_sample_default_params(void) {
  ddpm_sample_params p = {
    .sampler = DDPM_SAMPLER_DDPM,
    .steps = 1000,
    .eta = 0.0f,
    .seed = 0,
    .batch = 1,
    .t0 = -1,
    .strength = 0.0f,
  };
  return p;
}

typedef struct {
  const ddpm_schedule *s;
  int steps, first, n_run; /* grid size, index of the first step run, steps run */
  int *ts;
  int c, h, w;
  size_t item, total; /* floats per batch item, per batch */
} plan;

/* Grid index whose noise level sqrt((1 - abar) / abar) is nearest sigma. */
static int denoise_start_index(const ddpm_schedule *s, const int *ts, int steps,
                               float sigma) {
  int best = steps - 1;
  double best_d = INFINITY;
  for (int i = 0; i < steps; i++) {
    double abar = s->alphas_cumprod[ts[i]];
    double d = fabs(sqrt((1 - abar) / abar) - sigma);
    if (d < best_d) best_d = d, best = i;
  }
  return best;
}

static bool make_plan(ddpm_model *m, const ddpm_sample_params *p, plan *pl,
                      GError **err) {
  const ddpm_unet_config *cfg = ddpm_model_config(m);
  memset(pl, 0, sizeof *pl);
  pl->s = ddpm_model_schedule(m);
  int T = pl->s->num_train_timesteps;
  if (p->steps < 1 || p->steps > T) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "steps = %d out of range 1..%d (num_train_timesteps)", p->steps, T);
    return false;
  }
  if (p->batch < 1 || p->batch > 4096) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "batch = %d out of range 1..4096", p->batch);
    return false;
  }
  if (p->sampler == DDPM_SAMPLER_DDIM && !(p->eta >= 0 && p->eta <= 1)) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "eta = %g out of range 0..1", p->eta);
    return false;
  }
  pl->steps = p->steps;
  pl->ts = g_new(int, p->steps);
  ddpm_schedule_timesteps(pl->s, p->steps, pl->ts);
  if (p->init && p->denoise_sigma > 0) {
    pl->first = denoise_start_index(pl->s, pl->ts, p->steps, p->denoise_sigma);
  } else if (p->init) {
    int t0 = p->t0;
    if (t0 < 0) {
      if (!(p->strength > 0 && p->strength <= 1)) {
        g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                    "strength = %g out of range (0, 1]", p->strength);
        g_free(pl->ts);
        return false;
      }
      t0 = MIN((int)floor(p->strength * T), T - 1);
    }
    if (t0 >= T) {
      g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                  "t0 = %d out of range 0..%d", t0, T - 1);
      g_free(pl->ts);
      return false;
    }
    while (pl->first < p->steps && pl->ts[pl->first] > t0) pl->first++;
  }
  pl->n_run = p->steps - pl->first;
  if (pl->n_run == 0) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "no step of the %d-step grid is at or below t0", p->steps);
    g_free(pl->ts);
    return false;
  }
  pl->c = cfg->in_channels;
  int size = cfg->sample_size > 0 ? cfg->sample_size : 32;
  pl->h = p->height ? p->height : size;
  pl->w = p->width ? p->width : size;
  pl->item = (size_t)pl->c * pl->h * pl->w;
  pl->total = pl->item * p->batch;
  return true;
}

int ddpm_sample_steps_run(ddpm_model *m, const ddpm_sample_params *p,
                          GError **err) {
  plan pl;
  if (!make_plan(m, p, &pl, err)) return -1;
  g_free(pl.ts);
  return pl.n_run;
}

/* Noise from the injected array or the generator: one batch worth. */
static void fill_noise(const ddpm_sample_params *p, const plan *pl,
                       const float *injected, uint32_t stream, float *out) {
  if (injected) {
    memcpy(out, injected, pl->total * sizeof(float));
    return;
  }
  for (int b = 0; b < p->batch; b++)
    for (size_t i = 0; i < pl->item; i++)
      out[b * pl->item + i] = ddpm_noise(p->seed + (uint64_t)b, stream, i);
}

/* diffusers add_noise: sqrt(abar) * x0 + sqrt(1 - abar) * noise. */
static void add_noise(const ddpm_schedule *s, int t, const float *x0,
                      const float *noise, size_t n, float *out) {
  float abar = s->alphas_cumprod[t];
  float a = sqrtf(abar), b = sqrtf(1.0f - abar);
  for (size_t i = 0; i < n; i++) out[i] = a * x0[i] + b * noise[i];
}

/* x0 from the model output, per prediction_type; clipped if configured. */
static float pred_x0(const ddpm_schedule *s, float x, float out, float abar) {
  float beta = 1.0f - abar, v;
  switch (s->prediction) {
  case PRED_SAMPLE: v = out; break;
  case PRED_V: v = sqrtf(abar) * x - sqrtf(beta) * out; break;
  default: v = (x - sqrtf(beta) * out) / sqrtf(abar); break;
  }
  if (s->clip_sample)
    v = fminf(fmaxf(v, -s->clip_sample_range), s->clip_sample_range);
  return v;
}

/* One DDPMScheduler.step over the batch. */
static void ddpm_step(const ddpm_schedule *s, int steps, int t, const float *x,
                      const float *eps, const float *noise, size_t n,
                      float *x0_out, float *x_out) {
  int prev = ddpm_schedule_prev(s, steps, t);
  float abar = ddpm_schedule_abar(s, t, false);
  float abar_prev = ddpm_schedule_abar(s, prev, false);
  float beta = 1.0f - abar, beta_prev = 1.0f - abar_prev;
  float cur_alpha = abar / abar_prev, cur_beta = 1.0f - cur_alpha;
  float c_x0 = sqrtf(abar_prev) * cur_beta / beta;
  float c_x = sqrtf(cur_alpha) * beta_prev / beta;
  float var = 0.0f;
  if (t > 0) {
    var = (1.0f - abar_prev) / (1.0f - abar) * cur_beta;
    var = fmaxf(var, 1e-20f);
    if (s->variance == VARIANCE_FIXED_LARGE) var = cur_beta;
  }
  float sd = sqrtf(var);
  for (size_t i = 0; i < n; i++) {
    float x0 = pred_x0(s, x[i], eps[i], abar);
    x0_out[i] = x0;
    float v = c_x0 * x0 + c_x * x[i];
    if (t > 0) v = v + sd * noise[i];
    x_out[i] = v;
  }
}

/* One DDIMScheduler.step over the batch. */
static void ddim_step(const ddpm_schedule *s, int steps, int t, float eta,
                      const float *x, const float *out, const float *noise,
                      size_t n, float *x0_out, float *x_out) {
  int prev = ddpm_schedule_prev(s, steps, t);
  float abar = ddpm_schedule_abar(s, t, true);
  float abar_prev = ddpm_schedule_abar(s, prev, true);
  float beta = 1.0f - abar, beta_prev = 1.0f - abar_prev;
  float var = (beta_prev / beta) * (1.0f - abar / abar_prev);
  float std = eta * sqrtf(var);
  float dir = sqrtf(1.0f - abar_prev - std * std);
  for (size_t i = 0; i < n; i++) {
    float x0 = pred_x0(s, x[i], out[i], abar);
    float e;
    switch (s->prediction) {
    case PRED_SAMPLE: e = (x[i] - sqrtf(abar) * x0) / sqrtf(beta); break;
    case PRED_V: e = sqrtf(abar) * out[i] + sqrtf(beta) * x[i]; break;
    default: e = out[i]; break;
    }
    x0_out[i] = x0;
    float v = sqrtf(abar_prev) * x0 + dir * e;
    if (eta > 0) v = v + std * noise[i];
    x_out[i] = v;
  }
}

bool ddpm_sample_step(ddpm_model *m, ddpm_sampler sampler, int steps,
                      float eta, int t, int batch, int h, int w, const float *x,
                      const float *noise, float *x_prev, float *x0,
                      GError **err) {
  const ddpm_schedule *s = ddpm_model_schedule(m);
  size_t n = (size_t)batch * ddpm_model_config(m)->in_channels * h * w;
  float *eps = g_new(float, n);
  int64_t *tb = g_new(int64_t, batch);
  for (int b = 0; b < batch; b++) tb[b] = t;
  bool ok = ddpm_model_forward(m, x, tb, batch, h, w, eps, err);
  if (ok && sampler == DDPM_SAMPLER_DDPM)
    ddpm_step(s, steps, t, x, eps, noise, n, x0, x_prev);
  else if (ok)
    ddim_step(s, steps, t, eta, x, eps, noise, n, x0, x_prev);
  g_free(eps);
  g_free(tb);
  return ok;
}

/* Noise of step k, round u (u > 0: RePaint resampling rounds). */
static void step_noise(const ddpm_sample_params *p, const plan *pl, int k,
                       int u, float *out) {
  if (u == 0)
    fill_noise(p, pl, p->noise_steps ? p->noise_steps + (size_t)k * pl->total : NULL,
               STREAM_STEP + (uint32_t)k, out);
  else
    fill_noise(p, pl, NULL, STREAM_RESAMPLE + (uint32_t)k * 256 + u, out);
}

bool ddpm_sample(ddpm_model *m, const ddpm_sample_params *p, float *out,
                 GError **err) {
  g_return_val_if_fail(m && p && out, false);
  plan pl;
  if (!make_plan(m, p, &pl, err)) return false;
  const ddpm_schedule *s = pl.s;
  size_t n = pl.total, hw = (size_t)pl.h * pl.w;
  float *x = g_new(float, n), *eps = g_new(float, n), *x0 = g_new(float, n);
  float *next = g_new(float, n), *noise = g_new(float, n);
  int64_t *tb = g_new(int64_t, p->batch);
  bool denoise = p->init && p->denoise_sigma > 0;
  bool masked = p->init && p->mask && !denoise;
  int rounds = masked && p->resample > 1 ? p->resample : 1;
  bool ok = true;

  if (denoise) {
    float a = sqrtf(s->alphas_cumprod[pl.ts[pl.first]]);
    for (size_t i = 0; i < n; i++) x[i] = a * p->init[i];
  } else if (p->init) {
    fill_noise(p, &pl, p->noise_start, STREAM_START, noise);
    add_noise(s, pl.ts[pl.first], p->init, noise, n, x);
  } else {
    fill_noise(p, &pl, p->noise_start, STREAM_START, x);
  }

  for (int k = 0; k < pl.n_run && ok; k++) {
    int t = pl.ts[pl.first + k];
    int prev = ddpm_schedule_prev(s, pl.steps, t);
    bool last = k == pl.n_run - 1;
    for (int b = 0; b < p->batch; b++) tb[b] = t;
    for (int u = 0; u < rounds && ok; u++) {
      ok = ddpm_model_forward(m, x, tb, p->batch, pl.h, pl.w, eps, err);
      if (!ok) break;
      bool need_noise = p->sampler == DDPM_SAMPLER_DDPM ? t > 0 : p->eta > 0;
      if (need_noise) step_noise(p, &pl, k, u, noise);
      if (p->sampler == DDPM_SAMPLER_DDPM)
        ddpm_step(s, pl.steps, t, x, eps, noise, n, x0, next);
      else
        ddim_step(s, pl.steps, t, p->eta, x, eps, noise, n, x0, next);

      if (masked) {
        /* Keep the known region at the noise level of the next step
         * (q(x_prev | x0)), and exactly x0 after the last. */
        const float *known = p->init;
        if (!last && prev >= 0) {
          fill_noise(p, &pl, p->noise_known && u == 0 ? p->noise_known + (size_t)k * n : NULL,
                     STREAM_KNOWN + (uint32_t)k * 256 + u, noise);
          add_noise(s, prev, p->init, noise, n, eps); /* eps is free now */
          known = eps;
        }
        for (size_t i = 0; i < n; i++) {
          float mk = p->mask[i % hw];
          next[i] = mk * next[i] + (1.0f - mk) * known[i];
        }
      }
      if (u < rounds - 1 && !last && prev >= 0) {
        /* RePaint: back to t with q(x_t | x_prev). */
        float ratio = s->alphas_cumprod[t] / ddpm_schedule_abar(s, prev, false);
        float a = sqrtf(ratio), b = sqrtf(1.0f - ratio);
        fill_noise(p, &pl, NULL, STREAM_RESAMPLE + (uint32_t)k * 256 + 128 + u, noise);
        for (size_t i = 0; i < n; i++) x[i] = a * next[i] + b * noise[i];
      } else {
        float *tmp = x;
        x = next;
        next = tmp;
        break;
      }
    }
    if (!ok) break;
    if (denoise && p->mask && last)
      for (size_t i = 0; i < n; i++) {
        float mk = p->mask[i % hw];
        x[i] = mk * x[i] + (1.0f - mk) * p->init[i];
      }
    if (p->trajectory) memcpy(p->trajectory + (size_t)k * n, x, n * sizeof(float));
    if (p->progress) {
      bool preview = p->preview_every > 0 && ((k + 1) % p->preview_every == 0 || last);
      ddpm_progress pr = {k + 1, pl.n_run, t, preview ? x : NULL, preview ? x0 : NULL};
      if (!p->progress(&pr, p->user)) {
        g_set_error(err, DDPM_ERROR, DDPM_ERROR_CANCELLED,
                    "cancelled after %d of %d steps", k + 1, pl.n_run);
        ok = false;
      }
    }
  }
  if (ok) memcpy(out, x, n * sizeof(float));
  g_free(x); g_free(eps); g_free(x0); g_free(next); g_free(noise); g_free(tb);
  g_free(pl.ts);
  return ok;
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return x < y ? -1 : x > y;
}

float ddpm_estimate_noise_sigma(const float *image, int c, int h, int w) {
  size_t n = (size_t)c * (h / 2) * (w / 2), k = 0;
  if (n == 0) return 0.0f;
  float *d = g_new(float, n);
  for (int ch = 0; ch < c; ch++) {
    const float *im = image + (size_t)ch * h * w;
    for (int y = 0; y + 1 < h; y += 2)
      for (int x = 0; x + 1 < w; x += 2) {
        float a = im[y * w + x], b = im[y * w + x + 1];
        float cc = im[(y + 1) * w + x], dd = im[(y + 1) * w + x + 1];
        d[k++] = fabsf(a - b - cc + dd) / 2.0f; /* diagonal Haar detail */
      }
  }
  qsort(d, k, sizeof *d, cmp_float);
  float med = k % 2 ? d[k / 2] : 0.5f * (d[k / 2 - 1] + d[k / 2]);
  g_free(d);
  return med / 0.6745f;
}

int ddpm_denoise_start_timestep(ddpm_model *m, int steps, float sigma) {
  const ddpm_schedule *s = ddpm_model_schedule(m);
  if (steps < 1 || steps > s->num_train_timesteps) return -1;
  int *ts = g_new(int, steps);
  ddpm_schedule_timesteps(s, steps, ts);
  int t = ts[denoise_start_index(s, ts, steps, sigma)];
  g_free(ts);
  return t;
}
