/* The variational bound on the negative log-likelihood (Ho et al. 2020,
 * eq. 5; the evaluation of their Table 2, diffusion_utils_2.py calc_bpd_loop)
 * in bits per dimension, with 0-based timesteps t = 0 .. T-1 as the model
 * sees them:
 *
 *   prior    KL(q(x_T | x0) || N(0, I)), from alphas_cumprod[T-1];
 *   t >= 1   KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t)): both Gaussian, the
 *            posterior's mean and variance beta~_t in closed form, p's mean
 *            (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) from the
 *            model's eps (sample and v predictions are converted to eps) and
 *            p's variance beta~_t (fixed_small) or beta_t (fixed_large);
 *   t = 0    -log p(x0 | x_1): the discretized Gaussian decoder over 256 bins
 *            of width 2/255 centred on the 8-bit levels, the outer bins
 *            stretched to -inf / +inf, mean the model's x0 prediction and
 *            variance beta~_1 (the paper's clipped log-variance, for both
 *            variance types).  The bin mass is the exact normal CDF
 *            difference (the paper's code uses a tanh approximation of the
 *            CDF); as there, the log is taken of max(mass, 1e-12).
 *
 * x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) n is rounded to float32 for the
 * U-Net, with n = ddpm_noise(seed + b, t, i) for image b; everything else is
 * in double, from the schedule's float32 betas. */
#include <math.h>
#include <string.h>

#include "model.h"
#include "schedule.h"

#define DEFAULT_CHUNK 16

ddpm_nll_params ddpm_nll_default_params(void) {
  ddpm_nll_params p = {.timesteps = 0, .seed = 0, .chunk = 0};
  return p;
}

typedef struct {
  int T;
  double *beta, *alpha, *abar, *post_var;
} dschedule;

static void dschedule_init(dschedule *d, const ddpm_schedule *s) {
  int T = d->T = s->num_train_timesteps;
  d->beta = g_new(double, T);
  d->alpha = g_new(double, T);
  d->abar = g_new(double, T);
  d->post_var = g_new(double, T);
  double acc = 1.0;
  for (int t = 0; t < T; t++) {
    d->beta[t] = s->betas[t];
    d->alpha[t] = 1.0 - d->beta[t];
    acc *= d->alpha[t];
    d->abar[t] = acc;
  }
  for (int t = 0; t < T; t++) {
    double abar_prev = t > 0 ? d->abar[t - 1] : 1.0;
    d->post_var[t] = d->beta[t] * (1.0 - abar_prev) / (1.0 - d->abar[t]);
  }
}

static void dschedule_clear(dschedule *d) {
  g_free(d->beta);
  g_free(d->alpha);
  g_free(d->abar);
  g_free(d->post_var);
}

/* Standard normal CDF and its complement without cancellation. */
static double phi_cdf(double z) { return 0.5 * erfc(-z * M_SQRT1_2); }
static double phi_sf(double z) { return 0.5 * erfc(z * M_SQRT1_2); }

/* log P(bin of x | N(mean, sigma^2)), x on the 8-bit grid of [-1, 1]. */
static double decoder_log_prob(double x, double mean, double sigma) {
  double c = x - mean;
  double plus = (c + 1.0 / 255.0) / sigma, minus = (c - 1.0 / 255.0) / sigma;
  double p;
  if (x < -0.999) p = phi_cdf(plus);
  else if (x > 0.999) p = phi_sf(minus);
  else if (minus > 0) p = phi_sf(minus) - phi_sf(plus);
  else p = phi_cdf(plus) - phi_cdf(minus);
  return log(fmax(p, 1e-12));
}

/* KL(N(m1, v1) || N(m2, v2)) in nats. */
static double gauss_kl(double m1, double v1, double m2, double v2) {
  double d = m1 - m2;
  return 0.5 * (-1.0 + log(v2) - log(v1) + v1 / v2 + d * d / v2);
}

/* The term of model timestep t for one image, in nats: x0 and x_t (as given
 * to the U-Net) and the model output. */
static double term_nats(const dschedule *d, const ddpm_schedule *s, int t,
                        const float *x0, const float *xt, const float *out,
                        size_t n) {
  double sa = sqrt(d->abar[t]), sb = sqrt(1.0 - d->abar[t]);
  double sum = 0.0;
  if (t == 0) {
    double sigma = sqrt(d->post_var[d->T > 1 ? 1 : 0]);
    for (size_t i = 0; i < n; i++) {
      double eps = out[i];
      if (s->prediction == PRED_SAMPLE) eps = (xt[i] - sa * out[i]) / sb;
      else if (s->prediction == PRED_V) eps = sa * out[i] + sb * xt[i];
      double mean = (xt[i] - d->beta[0] / sb * eps) / sqrt(d->alpha[0]);
      sum -= decoder_log_prob(x0[i], mean, sigma);
    }
    return sum;
  }
  double abar_prev = d->abar[t - 1];
  double c1 = d->beta[t] * sqrt(abar_prev) / (1.0 - d->abar[t]);
  double c2 = (1.0 - abar_prev) * sqrt(d->alpha[t]) / (1.0 - d->abar[t]);
  double v1 = d->post_var[t];
  double v2 = s->variance == VARIANCE_FIXED_LARGE ? d->beta[t] : v1;
  double inv_sa = 1.0 / sqrt(d->alpha[t]), k = d->beta[t] / sb;
  for (size_t i = 0; i < n; i++) {
    double eps = out[i];
    if (s->prediction == PRED_SAMPLE) eps = (xt[i] - sa * out[i]) / sb;
    else if (s->prediction == PRED_V) eps = sa * out[i] + sb * xt[i];
    double m1 = c1 * x0[i] + c2 * xt[i];
    double m2 = (xt[i] - k * eps) * inv_sa;
    sum += gauss_kl(m1, v1, m2, v2);
  }
  return sum;
}

/* splitmix64, for the choice of timesteps. */
static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* The estimate and its standard error from per-timestep terms (bits/dim):
 * prior + terms[0] + (T-1)/n * sum of the n sampled KL terms, and the
 * without-replacement standard error of that sum. */
static void finish_result(double prior, const double *terms, const int *ts,
                          int n_ts, int T, ddpm_nll_result *r) {
  double dec = 0, sum = 0, sum2 = 0;
  int n = 0;
  for (int j = 0; j < n_ts; j++) {
    double v = terms[ts[j]];
    if (ts[j] == 0) { dec = v; continue; }
    sum += v;
    sum2 += v * v;
    n++;
  }
  int N = T - 1;
  r->prior = prior;
  r->decoder = dec;
  r->n_terms = n_ts;
  if (n == N) {
    r->bpd = prior + dec + sum;
    r->se = 0;
    return;
  }
  double mean = sum / n;
  double var = n > 1 ? fmax(0.0, (sum2 - n * mean * mean) / (n - 1)) : 0.0;
  r->bpd = prior + dec + (double)N * mean;
  r->se = (double)N * sqrt((1.0 - (double)n / N) * var / n);
}

bool ddpm_nll(ddpm_model *m, const float *x0, int batch, int height, int width,
              const ddpm_nll_params *p, ddpm_nll_result *res,
              ddpm_nll_result *mean, double *terms, GError **err) {
  g_return_val_if_fail(m && x0 && p && res, false);
  const ddpm_unet_config *cfg = ddpm_model_config(m);
  const ddpm_schedule *s = ddpm_model_schedule(m);
  int T = s->num_train_timesteps, c = cfg->in_channels;
  if (batch < 1 || batch > 4096) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "batch = %d out of range 1..4096", batch);
    return false;
  }
  if (p->timesteps < 0 || (p->timesteps > 0 && p->timesteps < 3 && p->timesteps < T)) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "timesteps = %d: give at least 3 (or 0 for all %d)", p->timesteps, T);
    return false;
  }
  if (p->chunk < 0 || p->chunk > 4096) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "chunk = %d out of range 0..4096", p->chunk);
    return false;
  }
  if (cfg->out_channels != c) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_UNSUPPORTED,
                "the model predicts %d channels for %d: a learned variance "
                "(out_channels = 2 * in_channels) is not supported",
                cfg->out_channels, c);
    return false;
  }
  /* Before anything is sized from them (negative sizes made huge counts). */
  if (!ddpm_model_check_size(m, batch, height, width, err)) return false;
  size_t item = (size_t)c * height * width;
  for (size_t i = 0; i < item * batch; i++)
    if (!(x0[i] >= -1.0f && x0[i] <= 1.0f)) {
      g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                  "image value %zu (image %zu) is %g, outside [-1, 1]", i % item,
                  i / item, x0[i]);
      return false;
    }

  /* The timesteps: all, or the decoder's and K - 1 of the T - 1 others. */
  int n_ts = p->timesteps == 0 || p->timesteps >= T ? T : p->timesteps;
  int *ts = g_new(int, T);
  for (int t = 0; t < T; t++) ts[t] = t;
  if (n_ts < T) {
    uint64_t st = p->seed ^ 0x6E6C6C2074696D65ull; /* "nll time" */
    for (int j = 1; j < n_ts; j++) { /* partial Fisher-Yates over ts[1..T-1] */
      int r = j + (int)(splitmix64(&st) % (uint64_t)(T - j));
      int tmp = ts[j]; ts[j] = ts[r]; ts[r] = tmp;
    }
    qsort(ts + 1, n_ts - 1, sizeof *ts, cmp_int);
  }

  int chunk = p->chunk ? p->chunk : DEFAULT_CHUNK;
  size_t n_pairs = (size_t)batch * n_ts;
  if ((size_t)chunk > n_pairs) chunk = (int)n_pairs;
  /* As many pairs per forward as the device holds, decided before the
   * host buffers are sized from it. */
  chunk = ddpm_model_forward_group(m, chunk, height, width, err);
  if (!chunk) {
    g_free(ts);
    return false;
  }
  dschedule d;
  dschedule_init(&d, s);
  double ln2d = M_LN2 * (double)item;
  double *all = g_new(double, (size_t)batch * T);
  for (size_t i = 0; i < (size_t)batch * T; i++) all[i] = NAN;
  float *xt = g_new(float, item * chunk), *out = g_new(float, item * chunk);
  int64_t *tt = g_new(int64_t, chunk);
  bool ok = true;
  for (size_t start = 0; start < n_pairs && ok; start += chunk) {
    size_t len = MIN((size_t)chunk, n_pairs - start);
    for (int k = 0; k < chunk; k++) {
      /* A short last chunk repeats its first pair: one graph for all. */
      size_t q = start + (k < (int)len ? (size_t)k : 0);
      int b = (int)(q / n_ts), t = ts[q % n_ts];
      double sa = sqrt(d.abar[t]), sb = sqrt(1.0 - d.abar[t]);
      const float *x = x0 + (size_t)b * item;
      float *dst = xt + (size_t)k * item;
      for (size_t i = 0; i < item; i++)
        dst[i] = (float)(sa * x[i] + sb * ddpm_noise(p->seed + (uint64_t)b, (uint32_t)t, i));
      tt[k] = t;
    }
    ok = ddpm_model_forward(m, xt, tt, chunk, height, width, out, err);
    for (size_t k = 0; k < len && ok; k++) {
      size_t q = start + k;
      int b = (int)(q / n_ts), t = ts[q % n_ts];
      const float *o = out + k * item;
      for (size_t i = 0; i < item; i++)
        if (!isfinite(o[i])) {
          g_set_error(err, DDPM_ERROR, DDPM_ERROR_NUMERIC,
                      "the model's output at t = %d is NaN or Inf", t);
          ok = false;
          break;
        }
      if (ok)
        all[(size_t)b * T + t] = term_nats(&d, s, t, x0 + (size_t)b * item,
                                           xt + k * item, o, item) / ln2d;
    }
    if (ok && p->progress) {
      ddpm_progress pr = {(int)(start + len), (int)n_pairs, ts[(start + len - 1) % n_ts],
                          NULL, NULL};
      if (!p->progress(&pr, p->user)) {
        g_set_error(err, DDPM_ERROR, DDPM_ERROR_CANCELLED,
                    "cancelled after %zu of %zu evaluations", start + len, n_pairs);
        ok = false;
      }
    }
  }
  if (ok) {
    double *avg = g_new0(double, T), prior_avg = 0;
    double aT = d.abar[T - 1];
    for (int b = 0; b < batch; b++) {
      const float *x = x0 + (size_t)b * item;
      double prior = 0;
      for (size_t i = 0; i < item; i++)
        prior += gauss_kl(sqrt(aT) * x[i], 1.0 - aT, 0.0, 1.0);
      prior /= ln2d;
      prior_avg += prior / batch;
      finish_result(prior, all + (size_t)b * T, ts, n_ts, T, &res[b]);
      for (int j = 0; j < n_ts; j++) avg[ts[j]] += all[(size_t)b * T + ts[j]] / batch;
    }
    if (mean) finish_result(prior_avg, avg, ts, n_ts, T, mean);
    if (terms) memcpy(terms, all, sizeof(double) * batch * T);
    g_free(avg);
  }
  dschedule_clear(&d);
  g_free(all);
  g_free(xt);
  g_free(out);
  g_free(tt);
  g_free(ts);
  return ok;
}
