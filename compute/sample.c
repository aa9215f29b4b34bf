/* The reverse process: DDPM ancestral and DDIM steps as diffusers computes
 * them, masked SDEdit, RePaint resampling, denoising, previews and cancel.
 * The sample stays on the device: each step is one submit of the recorded
 * U-Net + step kernel, with only the timestep and the step's scalar
 * coefficients written by the host; nothing is read back unless a preview
 * or the trajectory is asked for. */
#include <math.h>
#include <string.h>

#include "graph.h"
#include "model.h"
#include "ops/ops.h"
#include "schedule.h"
#include "unet.h"

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
    double abar = ddpm_schedule_abar(s, ts[i], false); /* t may be T (steps_offset) */
    double d = fabs(sqrt((1 - abar) / abar) - sigma);
    if (d < best_d) best_d = d, best = i;
  }
  return best;
}

/* Index of the first non-finite value, or -1. */
static ptrdiff_t first_non_finite(const float *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i])) return (ptrdiff_t)i;
  return -1;
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
                    "strength = %g out of range (0, 1]%s", p->strength,
                    p->strength == 0 ? ": 0 would leave the image as it is "
                    "(set strength, or t0 >= 0)" : "");
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
  /* Before anything is sized from them (negative sizes made huge counts). */
  if (!ddpm_model_check_size(m, p->batch, pl->h, pl->w, err)) {
    g_free(pl->ts);
    return false;
  }
  pl->item = (size_t)pl->c * pl->h * pl->w;
  pl->total = pl->item * p->batch;
  if (p->start_step < 0 || p->start_step >= pl->n_run ||
      (p->start_step > 0 && !p->start_x)) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                p->start_x || p->start_step <= 0
                  ? "start_step = %d out of range 0..%d (the run has %d steps)"
                  : "start_step = %d needs start_x (range 0..%d, %d steps)",
                p->start_step, pl->n_run - 1, pl->n_run);
    g_free(pl->ts);
    return false;
  }
  if (p->stop_step < 0 || p->stop_step > pl->n_run ||
      (p->stop_step > 0 && p->stop_step <= p->start_step)) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "stop_step = %d out of range %d..%d", p->stop_step,
                p->start_step + 1, pl->n_run);
    g_free(pl->ts);
    return false;
  }
  ptrdiff_t bad_init = p->init ? first_non_finite(p->init, pl->total) : -1;
  ptrdiff_t bad_mask = p->mask ? first_non_finite(p->mask, (size_t)pl->h * pl->w) : -1;
  ptrdiff_t bad_start = p->start_x ? first_non_finite(p->start_x, pl->total) : -1;
  if (bad_init >= 0 || bad_mask >= 0 || bad_start >= 0) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_NUMERIC,
                "the %s holds NaN or Inf (value %td)",
                bad_init >= 0 ? "input image (init)"
                : bad_mask >= 0 ? "mask" : "start sample (start_x)",
                bad_init >= 0 ? bad_init : bad_mask >= 0 ? bad_mask : bad_start);
    g_free(pl->ts);
    return false;
  }
  for (size_t i = 0; p->init && p->mask && i < (size_t)pl->h * pl->w; i++)
    if (!(p->mask[i] >= 0 && p->mask[i] <= 1)) {
      g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                  "mask value %g at pixel (%zu, %zu) outside [0, 1]",
                  p->mask[i], i % pl->w, i / pl->w);
      g_free(pl->ts);
      return false;
    }
  return true;
}

int ddpm_sample_steps_run(ddpm_model *m, const ddpm_sample_params *p,
                          GError **err) {
  plan pl;
  if (!make_plan(m, p, &pl, err)) return -1;
  g_free(pl.ts);
  return pl.n_run;
}

bool ddpm_sample_timesteps(ddpm_model *m, int steps, int *ts, GError **err) {
  g_return_val_if_fail(m && ts, false);
  const ddpm_schedule *s = ddpm_model_schedule(m);
  if (!ddpm_schedule_timesteps(s, steps, ts)) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "steps = %d out of range 1..%d (num_train_timesteps)", steps,
                s->num_train_timesteps);
    return false;
  }
  return true;
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
      out[b * pl->item + i] =
        ddpm_noise(p->seed + (p->shared_noise ? 0 : (uint64_t)b), stream, i);
}

/* ---- per-step scalars (layout shared with shaders/sample_step.comp) ---- */

enum { SP_ABAR, SP_C0, SP_C1, SP_SD, SP_KA, SP_KB, SP_KNOWN, SP_RA, SP_RB,
       SP_RENOISE, SP_STREAM_S, SP_STREAM_K, SP_STREAM_R, SP_INJECT_S,
       SP_INJECT_K, SP_ITEM0, SP_COUNT = 16 };

typedef struct {
  float v[SP_COUNT];
} step_values;

static float uint_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* DDPMScheduler.step coefficients, float32 in diffusers' order. */
static void ddpm_coeffs(const ddpm_schedule *s, int steps, int t, step_values *sv) {
  int prev = ddpm_schedule_prev(s, steps, t);
  float abar = ddpm_schedule_abar(s, t, false);
  float abar_prev = ddpm_schedule_abar(s, prev, false);
  float beta = 1.0f - abar, beta_prev = 1.0f - abar_prev;
  float cur_alpha = abar / abar_prev, cur_beta = 1.0f - cur_alpha;
  sv->v[SP_ABAR] = abar;
  sv->v[SP_C0] = sqrtf(abar_prev) * cur_beta / beta;
  sv->v[SP_C1] = sqrtf(cur_alpha) * beta_prev / beta;
  float var = 0.0f;
  if (t > 0) {
    var = (1.0f - abar_prev) / (1.0f - abar) * cur_beta;
    var = fmaxf(var, 1e-20f);
    if (s->variance == VARIANCE_FIXED_LARGE) var = cur_beta;
  }
  sv->v[SP_SD] = sqrtf(var);
}

/* DDIMScheduler.step coefficients. */
static void ddim_coeffs(const ddpm_schedule *s, int steps, int t, float eta,
                        step_values *sv) {
  int prev = ddpm_schedule_prev(s, steps, t);
  float abar = ddpm_schedule_abar(s, t, true);
  float abar_prev = ddpm_schedule_abar(s, prev, true);
  float beta = 1.0f - abar, beta_prev = 1.0f - abar_prev;
  float var = (beta_prev / beta) * (1.0f - abar / abar_prev);
  float std = eta * sqrtf(var);
  sv->v[SP_ABAR] = abar;
  sv->v[SP_C0] = sqrtf(abar_prev);
  sv->v[SP_C1] = sqrtf(1.0f - abar_prev - std * std);
  sv->v[SP_SD] = eta > 0 ? std : 0.0f;
}

/* ---- the device-side state ------------------------------------------------ */

typedef struct {
  ddpm_model *m;
  graph *g;
  unet_io io;
  gtensor x, params, init, mask, zs, zk, x0;
  int batch;
  size_t n;
} stepper;

static void stepper_free(stepper *st) {
  graph_free(st->g);
  memset(st, 0, sizeof *st);
}

/* Builds and compiles the stepper for `batch` items.  False with *err set,
 * or with *err unset and *arena set when the estimate says the device
 * cannot hold it (nothing allocated then). */
static bool stepper_init(stepper *st, ddpm_model *m, ddpm_sampler sampler,
                         uint64_t seed, bool shared_noise, int batch, int h,
                         int w, uint64_t *arena, GError **err) {
  memset(st, 0, sizeof *st);
  const ddpm_unet_config *cfg = ddpm_model_config(m);
  const ddpm_schedule *s = ddpm_model_schedule(m);
  if (!ddpm_model_check_size(m, batch, h, w, err)) return false;
  ddpm_model_release_graph(m); /* one graph's activations at a time */
  st->m = m;
  st->batch = batch;
  st->g = graph_new(ddpm_model_context(m), ddpm_model_weights(m));
  graph *g = st->g;
  int c = cfg->in_channels;
  st->x = graph_resident(g, batch, c, h, w);
  st->n = gtensor_count(st->x);
  unet_build_on(g, ddpm_model_weights(m), NULL, cfg, st->x, false, &st->io);
  st->params = graph_input(g, 1, SP_COUNT, 1, 1);
  st->init = graph_resident(g, batch, c, h, w);
  st->mask = graph_resident(g, 1, 1, h, w);
  st->zs = graph_resident(g, batch, c, h, w);
  st->zk = graph_resident(g, batch, c, h, w);
  st->x0 = graph_resident(g, batch, c, h, w);
  sample_step_params ssp = {
    .seed = seed,
    .ddim = sampler == DDPM_SAMPLER_DDIM,
    .prediction = s->prediction == PRED_SAMPLE ? 1 : s->prediction == PRED_V ? 2 : 0,
    .clip = s->clip_sample,
    .masked = 1,
    .clip_range = s->clip_sample_range,
    .shared_noise = shared_noise,
  };
  op_sample_step(g, st->x, st->io.eps, st->params, st->init, st->mask, st->zs,
                 st->zk, st->x0, &ssp);
  *arena = graph_plan_arena_bytes(g);
  if (!ddpm_memfit_fits(ddpm_model_context(m), *arena) || !graph_compile(g, err)) {
    stepper_free(st);
    return false;
  }
  return true;
}

/* One submit: the U-Net at t, then the step with these scalars. */
static bool stepper_run(stepper *st, int t, const step_values *sv, GError **err) {
  float *tf = graph_input_data(st->g, st->io.t);
  for (int b = 0; b < st->batch; b++) tf[b] = (float)t;
  memcpy(graph_input_data(st->g, st->params), sv->v, sizeof sv->v);
  return graph_run(st->g, err);
}

/* ---- public entry points --------------------------------------------------- */

bool ddpm_sample_step(ddpm_model *m, ddpm_sampler sampler, int steps,
                      float eta, int t, int batch, int h, int w, const float *x,
                      const float *noise, float *x_prev, float *x0,
                      GError **err) {
  const ddpm_schedule *s = ddpm_model_schedule(m);
  stepper st;
  uint64_t arena;
  GError *e = NULL;
  if (!stepper_init(&st, m, sampler, 0, false, batch, h, w, &arena, &e)) {
    if (e) g_propagate_error(err, e);
    else ddpm_memfit_error(m, arena, h, w, err);
    return false;
  }
  step_values sv = {{0}};
  if (sampler == DDPM_SAMPLER_DDPM) ddpm_coeffs(s, steps, t, &sv);
  else ddim_coeffs(s, steps, t, eta, &sv);
  sv.v[SP_INJECT_S] = noise != NULL;
  if (!noise) sv.v[SP_SD] = 0; /* no noise to add */
  bool ok = graph_upload(st.g, st.x, x, err) &&
            (!noise || graph_upload(st.g, st.zs, noise, err)) &&
            stepper_run(&st, t, &sv, err) &&
            graph_download(st.g, st.x, x_prev, err) &&
            graph_download(st.g, st.x0, x0, err);
  stepper_free(&st);
  return ok;
}

/* ---- batch groups ------------------------------------------------------------
 * When the whole batch does not fit the device, the stepper holds a group
 * of G items and each step runs the groups in turn, the sample staying on
 * the host between them.  Item b's noise is drawn for seed + b wherever it
 * sits (SP_ITEM0 is the group's first item) and items do not see each
 * other in the U-Net, so the result is the same bit for bit.  A short last
 * group is padded with zeros, whose results are dropped. */

typedef struct {
  ddpm_model *m;
  const ddpm_sample_params *p;
  int h, w;
  stepper *st;
} stepper_job;

static bool try_stepper(void *user, int g, uint64_t *arena, GError **err) {
  stepper_job *j = user;
  return stepper_init(j->st, j->m, j->p->sampler, j->p->seed,
                      j->p->shared_noise, g, j->h, j->w, arena, err);
}

/* Items b0 .. b0+len-1 of a [batch, item] array into tensor t (padded). */
static bool put_group(stepper *st, gtensor t, const float *src, size_t item,
                      int b0, int len, float *buf, GError **err) {
  memcpy(buf, src + (size_t)b0 * item, (size_t)len * item * sizeof(float));
  memset(buf + (size_t)len * item, 0, (size_t)(st->batch - len) * item * sizeof(float));
  return graph_upload(st->g, t, buf, err);
}

static bool get_group(stepper *st, gtensor t, float *dst, size_t item, int b0,
                      int len, float *buf, GError **err) {
  if (!graph_download(st->g, t, buf, err)) return false;
  memcpy(dst + (size_t)b0 * item, buf, (size_t)len * item * sizeof(float));
  return true;
}

/* Step k (all its RePaint rounds) for the group at b0 (the whole batch
 * when not split); the group's x and init are on the device. */
static bool run_step(stepper *st, const ddpm_sample_params *p, const plan *pl,
                     int k, int b0, int len, float *buf, GError **err) {
  const ddpm_schedule *s = pl->s;
  bool split = st->batch < p->batch;
  bool denoise = p->init && p->denoise_sigma > 0;
  bool masked = p->init && p->mask && !denoise;
  int rounds = masked && p->resample > 1 ? p->resample : 1;
  size_t n = pl->total;
  int t = pl->ts[pl->first + k];
  int prev = ddpm_schedule_prev(s, pl->steps, t);
  bool last = k == pl->n_run - 1;
  bool ok = true;
  for (int u = 0; u < rounds && ok; u++) {
    step_values sv = {{0}};
    if (p->sampler == DDPM_SAMPLER_DDPM) ddpm_coeffs(s, pl->steps, t, &sv);
    else ddim_coeffs(s, pl->steps, t, p->eta, &sv);
    sv.v[SP_ITEM0] = uint_bits((uint32_t)b0);
    sv.v[SP_STREAM_S] = uint_bits(u == 0 ? STREAM_STEP + (uint32_t)k
                                         : STREAM_RESAMPLE + (uint32_t)k * 256 + u);
    if (u == 0 && p->noise_steps && sv.v[SP_SD] != 0) {
      sv.v[SP_INJECT_S] = 1;
      ok = split ? put_group(st, st->zs, p->noise_steps + (size_t)k * n, pl->item,
                             b0, len, buf, err)
                 : graph_upload(st->g, st->zs, p->noise_steps + (size_t)k * n, err);
    }
    if (masked) {
      /* Known region at the noise level of the next step, x0 at the end. */
      if (!last && prev >= 0) {
        float abar_prev = s->alphas_cumprod[prev];
        sv.v[SP_KNOWN] = 2;
        sv.v[SP_KA] = sqrtf(abar_prev);
        sv.v[SP_KB] = sqrtf(1.0f - abar_prev);
        sv.v[SP_STREAM_K] = uint_bits(STREAM_KNOWN + (uint32_t)k * 256 + u);
        if (u == 0 && p->noise_known) {
          const float *zk = p->noise_known + (size_t)k * n;
          sv.v[SP_INJECT_K] = 1;
          ok = ok && (split ? put_group(st, st->zk, zk, pl->item, b0, len, buf, err)
                            : graph_upload(st->g, st->zk, zk, err));
        }
      } else {
        sv.v[SP_KNOWN] = 1;
      }
    }
    bool again = u < rounds - 1 && !last && prev >= 0;
    if (again) { /* RePaint: back to t with q(x_t | x_prev) */
      float ratio = s->alphas_cumprod[t] / ddpm_schedule_abar(s, prev, false);
      sv.v[SP_RENOISE] = 1;
      sv.v[SP_RA] = sqrtf(ratio);
      sv.v[SP_RB] = sqrtf(1.0f - ratio);
      sv.v[SP_STREAM_R] = uint_bits(STREAM_RESAMPLE + (uint32_t)k * 256 + 128 + u);
    }
    ok = ok && stepper_run(st, t, &sv, err);
    if (!again) break;
  }
  return ok;
}

bool ddpm_sample(ddpm_model *m, const ddpm_sample_params *p, float *out,
                 GError **err) {
  g_return_val_if_fail(m && p && out, false);
  plan pl;
  if (!make_plan(m, p, &pl, err)) return false;
  const ddpm_schedule *s = pl.s;
  size_t n = pl.total;
  bool denoise = p->init && p->denoise_sigma > 0;
  bool masked = p->init && p->mask && !denoise;
  stepper st;
  stepper_job job = {m, p, pl.h, pl.w, &st};
  int G = ddpm_memfit_group(m, p->batch, pl.h, pl.w, try_stepper, &job, err);
  if (!G) {
    g_free(pl.ts);
    return false;
  }
  bool split = G < p->batch;
  float *x = g_new(float, n), *tmp = g_new(float, n);
  float *buf = split ? g_new(float, (size_t)G * pl.item) : NULL;
  bool ok = true;

  /* The starting sample, made on the host once. */
  if (p->start_x) {
    memcpy(x, p->start_x, n * sizeof(float));
  } else if (denoise) {
    float a = sqrtf(ddpm_schedule_abar(s, pl.ts[pl.first], false));
    for (size_t i = 0; i < n; i++) x[i] = a * p->init[i];
  } else if (p->init) {
    fill_noise(p, &pl, p->noise_start, STREAM_START, tmp);
    ddpm_schedule_add_noise(s, pl.ts[pl.first], p->init, tmp, n, x);
  } else {
    fill_noise(p, &pl, p->noise_start, STREAM_START, x);
  }
  if (split)
    ok = !masked || graph_upload(st.g, st.mask, p->mask, err);
  else
    ok = graph_upload(st.g, st.x, x, err) &&
         (!masked || (graph_upload(st.g, st.init, p->init, err) &&
                      graph_upload(st.g, st.mask, p->mask, err)));

  int end = p->stop_step > 0 ? p->stop_step : pl.n_run;
  for (int k = p->start_step; k < end && ok; k++) {
    int t = pl.ts[pl.first + k];
    bool last = k == pl.n_run - 1;
    bool preview = p->progress && p->preview_every > 0 &&
                   ((k + 1) % p->preview_every == 0 || k == end - 1);
    for (int b0 = 0; b0 < p->batch && ok; b0 += G) {
      int len = MIN(G, p->batch - b0);
      if (split)
        ok = put_group(&st, st.x, x, pl.item, b0, len, buf, err) &&
             (!masked || put_group(&st, st.init, p->init, pl.item, b0, len, buf, err));
      ok = ok && run_step(&st, p, &pl, k, b0, len, buf, err);
      if (ok && split)
        ok = get_group(&st, st.x, x, pl.item, b0, len, buf, err) &&
             (!preview || get_group(&st, st.x0, tmp, pl.item, b0, len, buf, err));
    }
    if (!ok) break;
    if (!split && (preview || p->trajectory || (last && denoise && p->mask)))
      ok = graph_download(st.g, st.x, x, err);
    if (ok && last && denoise && p->mask) {
      size_t hw = (size_t)pl.h * pl.w;
      for (size_t i = 0; i < n; i++) {
        float mk = p->mask[i % hw];
        x[i] = mk * x[i] + (1.0f - mk) * p->init[i];
      }
      if (!split) ok = graph_upload(st.g, st.x, x, err);
    }
    if (ok && preview && !split) ok = graph_download(st.g, st.x0, tmp, err);
    if (!ok) break;
    if (p->trajectory) memcpy(p->trajectory + (size_t)k * n, x, n * sizeof(float));
    if (p->progress) {
      ddpm_progress pr = {k + 1, pl.n_run, t, preview ? x : NULL, preview ? tmp : NULL};
      if (!p->progress(&pr, p->user)) {
        g_set_error(err, DDPM_ERROR, DDPM_ERROR_CANCELLED,
                    "cancelled after %d of %d steps", k + 1, pl.n_run);
        ok = false;
      }
    }
  }
  if (ok && split) memcpy(out, x, n * sizeof(float));
  else ok = ok && graph_download(st.g, st.x, out, err);
  /* NaN propagates through every later step, so one look at the end catches
   * bad weights (or an overflow) before anything is shown. */
  if (ok && first_non_finite(out, n) >= 0) {
    g_set_error_literal(err, DDPM_ERROR, DDPM_ERROR_NUMERIC,
                        "the sample became NaN or Inf: the model's weights "
                        "hold non-finite values or overflow float32");
    ok = false;
  }
  stepper_free(&st);
  g_free(x);
  g_free(tmp);
  g_free(buf);
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
