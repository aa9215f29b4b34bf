/* Interpolation through the diffusion's latent (Ho et al. 2020, section
 * 4.3, Fig. 8): both images noised to one t with the same eps, the noised
 * pair mixed per frame (linearly or by slerp), every mix denoised from t
 * with the reverse noise shared across frames, the frames batched through
 * ddpm_sample in chunks of bounded size. */
#include <math.h>
#include <string.h>

#include "interpolate.h"
#include "model.h"
#include "schedule.h"

#define CHUNK_MAX 16
#define CHUNK_BYTES (1024ull * 1024 * 1024) /* device memory one chunk may take */

ddpm_interpolate_params ddpm_interpolate_default_params(void) {
  ddpm_interpolate_params p = {
    .t = 500,
    .frames = 8,
    .sampler = DDPM_SAMPLER_DDPM,
    .steps = 1000,
  };
  return p;
}

/* Index of the first non-finite value, or -1. */
static ptrdiff_t first_non_finite(const float *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i])) return (ptrdiff_t)i;
  return -1;
}

/* Endpoints are copies, so frame 0 and the last frame are exactly the
 * noised inputs. */
void interp_mix(const float *xa, const float *xb, size_t n, double lambda,
                bool spherical, float *out) {
  if (lambda <= 0 || lambda >= 1) {
    memcpy(out, lambda <= 0 ? xa : xb, n * sizeof(float));
    return;
  }
  double wa = 1 - lambda, wb = lambda, scale = 1;
  if (spherical) {
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < n; i++) {
      dot += (double)xa[i] * xb[i];
      na += (double)xa[i] * xa[i];
      nb += (double)xb[i] * xb[i];
    }
    na = sqrt(na), nb = sqrt(nb);
    double cosv = na > 0 && nb > 0 ? CLAMP(dot / (na * nb), -1.0, 1.0) : 1.0;
    double theta = acos(cosv), s = sin(theta);
    if (s > 1e-6) { /* else (nearly) parallel: the lerp is the slerp */
      wa = sin((1 - lambda) * theta) / s;
      wb = sin(lambda * theta) / s;
      /* Slerp keeps the norm only for equal norms; scale the result to the
       * linearly interpolated norm so the noise level stays that of x_t. */
      double nv = 0;
      for (size_t i = 0; i < n; i++) {
        double v = wa * xa[i] + wb * xb[i];
        nv += v * v;
      }
      nv = sqrt(nv);
      if (nv > 0) scale = ((1 - lambda) * na + lambda * nb) / nv;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (spherical) out[i] = (float)(scale * (wa * xa[i] + wb * xb[i]));
    else out[i] = (float)wa * xa[i] + (float)wb * xb[i];
  }
}

typedef struct {
  ddpm_progress_fn fn;
  void *user;
  int done, total; /* steps of earlier chunks, of all chunks */
} chunk_progress;

static bool on_chunk_progress(const ddpm_progress *p, void *user) {
  chunk_progress *cp = user;
  ddpm_progress q = {cp->done + p->step, cp->total, p->t, NULL, NULL};
  return cp->fn(&q, cp->user);
}

static bool check_params(ddpm_model *m, const float *a, const float *b,
                         const ddpm_interpolate_params *p, int *c, int *h,
                         int *w, GError **err) {
  const ddpm_unet_config *cfg = ddpm_model_config(m);
  int T = ddpm_model_schedule(m)->num_train_timesteps;
  int size = cfg->sample_size > 0 ? cfg->sample_size : 32;
  *c = p->channels ? p->channels : cfg->in_channels;
  *h = p->height ? p->height : size;
  *w = p->width ? p->width : size;
  if (p->frames < 2 || p->frames > DDPM_INTERPOLATE_MAX_FRAMES) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "frames = %d out of range 2..%d", p->frames,
                DDPM_INTERPOLATE_MAX_FRAMES);
    return false;
  }
  if (p->t < 0 || p->t >= T) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "t = %d out of range 0..%d (num_train_timesteps - 1)", p->t, T - 1);
    return false;
  }
  if (*c != cfg->in_channels) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "channels = %d, but the model takes %d", *c, cfg->in_channels);
    return false;
  }
  if (p->chunk < 0) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "chunk = %d is negative", p->chunk);
    return false;
  }
  if (!ddpm_model_check_size(m, 1, *h, *w, err)) return false;
  size_t n = (size_t)*c * *h * *w;
  ptrdiff_t bad_a = first_non_finite(a, n), bad_b = first_non_finite(b, n);
  if (bad_a >= 0 || bad_b >= 0) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_NUMERIC,
                "image %s holds NaN or Inf (value %td)", bad_a >= 0 ? "a" : "b",
                bad_a >= 0 ? bad_a : bad_b);
    return false;
  }
  return true;
}

/* Frames per ddpm_sample call: all of them up to CHUNK_MAX, halved while a
 * chunk would take more than CHUNK_BYTES of device memory. */
static int pick_chunk(ddpm_model *m, const ddpm_interpolate_params *p, int h,
                      int w) {
  if (p->chunk > 0) return MIN(p->chunk, p->frames);
  int chunk = MIN(p->frames, CHUNK_MAX);
  while (chunk > 1) {
    uint64_t bytes = ddpm_model_memory_estimate(m, chunk, h, w, NULL);
    if (bytes && bytes <= CHUNK_BYTES) break;
    chunk = (chunk + 1) / 2;
  }
  return chunk;
}

bool ddpm_interpolate(ddpm_model *m, const float *a, const float *b,
                      const ddpm_interpolate_params *p, float *out,
                      GError **err) {
  g_return_val_if_fail(m && a && b && p && out, false);
  int c, h, w;
  if (!check_params(m, a, b, p, &c, &h, &w, err)) return false;
  const ddpm_schedule *s = ddpm_model_schedule(m);
  int *ts = g_new(int, MAX(p->steps, 1));
  if (!ddpm_sample_timesteps(m, p->steps, ts, err)) {
    g_free(ts);
    return false;
  }
  int first = 0;
  while (first < p->steps && ts[first] > p->t) first++;
  if (first == p->steps) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "t = %d: no step of the %d-step grid is at or below it "
                "(the lowest is %d)", p->t, p->steps, ts[p->steps - 1]);
    g_free(ts);
    return false;
  }
  int t_start = ts[first], n_run = p->steps - first;
  g_free(ts);

  /* The noised pair, with the noise an SDEdit run of `seed` draws. */
  size_t n = (size_t)c * h * w;
  float *xa = g_new(float, n), *xb = g_new(float, n), *eps = g_new(float, n);
  for (size_t i = 0; i < n; i++) eps[i] = ddpm_noise(p->seed, 0, i);
  ddpm_schedule_add_noise(s, t_start, a, eps, n, xa);
  ddpm_schedule_add_noise(s, t_start, b, eps, n, xb);
  g_free(eps);

  int chunk = pick_chunk(m, p, h, w);
  int n_chunks = (p->frames + chunk - 1) / chunk;
  float *start = g_new(float, n * chunk), *init = g_new(float, n * chunk);
  chunk_progress cp = {p->progress, p->user, 0, n_chunks * n_run};
  bool ok = true;
  for (int f0 = 0; f0 < p->frames && ok; f0 += chunk) {
    int k = MIN(chunk, p->frames - f0);
    for (int j = 0; j < k; j++) {
      double lambda = (double)(f0 + j) / (p->frames - 1);
      interp_mix(xa, xb, n, lambda, p->spherical, start + j * n);
      /* init only places the run's start at t (start_x replaces its
       * noising); the mixed clean images keep it meaningful. */
      interp_mix(a, b, n, lambda, false, init + j * n);
    }
    ddpm_sample_params sp = ddpm_sample_default_params();
    sp.sampler = p->sampler;
    sp.steps = p->steps;
    sp.eta = p->eta;
    sp.seed = p->seed;
    sp.shared_noise = true;
    sp.batch = k;
    sp.height = h;
    sp.width = w;
    sp.init = init;
    sp.t0 = p->t;
    sp.start_x = start;
    if (p->progress) {
      sp.progress = on_chunk_progress;
      sp.user = &cp;
    }
    ok = ddpm_sample(m, &sp, out + (size_t)f0 * n, err);
    cp.done += n_run;
  }
  g_free(start);
  g_free(init);
  g_free(xa);
  g_free(xb);
  return ok;
}
