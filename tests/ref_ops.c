#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref_ops.h"

static double silu(double x) { return x / (1.0 + exp(-x)); }

void ref_conv2d(const float *x, int n, int cin, int h, int w, const float *wt,
                const float *bias, int cout, int k, int stride, int pad_t,
                int pad_l, int pad_b, int pad_r, const float *vec,
                const float *res, float out_scale, float *y, int *ho_out,
                int *wo_out) {
  int ho = (h + pad_t + pad_b - k) / stride + 1;
  int wo = (w + pad_l + pad_r - k) / stride + 1;
  for (int b = 0; b < n; b++)
    for (int co = 0; co < cout; co++)
      for (int oy = 0; oy < ho; oy++)
        for (int ox = 0; ox < wo; ox++) {
          double acc = 0;
          for (int ci = 0; ci < cin; ci++)
            for (int ky = 0; ky < k; ky++)
              for (int kx = 0; kx < k; kx++) {
                int iy = oy * stride - pad_t + ky, ix = ox * stride - pad_l + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                acc += (double)x[((b * cin + ci) * h + iy) * w + ix] *
                       wt[((co * cin + ci) * k + ky) * k + kx];
              }
          acc += bias[co];
          if (vec) acc += vec[b * cout + co];
          size_t o = ((size_t)(b * cout + co) * ho + oy) * wo + ox;
          if (res) acc = (res[o] + acc) / out_scale;
          y[o] = (float)acc;
        }
  *ho_out = ho;
  *wo_out = wo;
}

void ref_groupnorm(const float *x, int n, int c, int hw, const float *gamma,
                   const float *beta, int groups, float eps, bool act,
                   float *y) {
  int cpg = c / groups;
  for (int b = 0; b < n; b++)
    for (int g = 0; g < groups; g++) {
      const float *p = x + ((size_t)b * c + g * cpg) * hw;
      size_t cnt = (size_t)cpg * hw;
      double mean = 0, var = 0;
      for (size_t i = 0; i < cnt; i++) mean += p[i];
      mean /= cnt;
      for (size_t i = 0; i < cnt; i++) var += (p[i] - mean) * (p[i] - mean);
      var /= cnt;
      double rstd = 1.0 / sqrt(var + eps);
      for (size_t i = 0; i < cnt; i++) {
        int ch = g * cpg + (int)(i / hw);
        double v = (p[i] - mean) * rstd * gamma[ch] + beta[ch];
        y[((size_t)b * c + g * cpg) * hw + i] = (float)(act ? silu(v) : v);
      }
    }
}

void ref_linear(const float *x, int n, int in, const float *w, const float *b,
                int out, bool silu_in, bool silu_out, float *y) {
  for (int r = 0; r < n; r++)
    for (int o = 0; o < out; o++) {
      double acc = b[o];
      for (int i = 0; i < in; i++) {
        double v = x[r * in + i];
        acc += (double)w[o * in + i] * (silu_in ? silu(v) : v);
      }
      y[r * out + o] = (float)(silu_out ? silu(acc) : acc);
    }
}

void ref_timestep_freqs(int half, float shift, float *freq) {
  for (int i = 0; i < half; i++) {
    float e = -9.210340371976184f * (float)i; /* -ln(10000) * i in float32 */
    e = e / ((float)half - shift);
    freq[i] = expf(e);
  }
}

void ref_timestep_embed(const float *t, int n, const float *freq, int dim,
                        int half, bool flip, float *y) {
  for (int b = 0; b < n; b++)
    for (int i = 0; i < dim; i++) {
      float v = 0;
      if (i < 2 * half) {
        bool first = i < half;
        int j = first ? i : i - half;
        float arg = t[b] * freq[j];
        bool want_sin = flip ? !first : first;
        v = want_sin ? (float)sin((double)arg) : (float)cos((double)arg);
      }
      y[b * dim + i] = v;
    }
}

void ref_attention(const float *q, const float *k, const float *v, int n,
                   int c, int tokens, int heads, float *y) {
  int dh = c / heads;
  double scale = 1.0 / sqrt((double)dh);
  double *s = malloc(sizeof(double) * tokens);
  for (int b = 0; b < n; b++)
    for (int h = 0; h < heads; h++)
      for (int i = 0; i < tokens; i++) {
        double m = -INFINITY, sum = 0;
        for (int j = 0; j < tokens; j++) {
          double acc = 0;
          for (int d = 0; d < dh; d++) {
            size_t ch = (size_t)b * c + h * dh + d;
            acc += (double)q[ch * tokens + i] * k[ch * tokens + j];
          }
          s[j] = acc * scale;
          if (s[j] > m) m = s[j];
        }
        for (int j = 0; j < tokens; j++) sum += s[j] = exp(s[j] - m);
        for (int d = 0; d < dh; d++) {
          size_t ch = (size_t)b * c + h * dh + d;
          double acc = 0;
          for (int j = 0; j < tokens; j++) acc += s[j] / sum * v[ch * tokens + j];
          y[ch * tokens + i] = (float)acc;
        }
      }
  free(s);
}

void ref_upsample2x(const float *x, int nc, int h, int w, float *y) {
  for (int c = 0; c < nc; c++)
    for (int oy = 0; oy < 2 * h; oy++)
      for (int ox = 0; ox < 2 * w; ox++)
        y[((size_t)c * 2 * h + oy) * 2 * w + ox] =
          x[((size_t)c * h + oy / 2) * w + ox / 2];
}

void ref_concat(const float *a, const float *b, int n, int ca, int cb, int hw,
                float *y) {
  for (int i = 0; i < n; i++) {
    memcpy(y + (size_t)i * (ca + cb) * hw, a + (size_t)i * ca * hw,
           sizeof(float) * ca * hw);
    memcpy(y + ((size_t)i * (ca + cb) + ca) * hw, b + (size_t)i * cb * hw,
           sizeof(float) * cb * hw);
  }
}
