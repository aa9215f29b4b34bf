/* Image helpers shared by the CLI and the plug-in: resampling between a
 * picture's size and the model's, and channel count conversion. */
#include <math.h>
#include <stdlib.h>

#include "ddpm/ddpm.h"

/* Weights of one output coordinate over the input axis (separable). */
typedef struct {
  int first, count;
  float *w;
} taps;

static taps *axis_taps(int src, int dst) {
  taps *t = g_new0(taps, dst);
  double scale = (double)src / dst;
  for (int o = 0; o < dst; o++) {
    if (scale >= 1.0) { /* area: input interval [o, o+1) * scale */
      double a = o * scale, b = (o + 1) * scale;
      int i0 = (int)floor(a), i1 = MIN((int)ceil(b), src);
      t[o].first = i0;
      t[o].count = i1 - i0;
      t[o].w = g_new(float, t[o].count);
      for (int i = i0; i < i1; i++)
        t[o].w[i - i0] = (float)((MIN(b, i + 1.0) - MAX(a, (double)i)) / scale);
    } else { /* bilinear at the pixel centre, clamped at the borders */
      double x = (o + 0.5) * scale - 0.5;
      int i0 = (int)floor(x);
      double f = x - i0;
      int a = CLAMP(i0, 0, src - 1), b = CLAMP(i0 + 1, 0, src - 1);
      t[o].first = MIN(a, b);
      t[o].count = a == b ? 1 : 2;
      t[o].w = g_new(float, 2);
      if (a == b) t[o].w[0] = 1.0f;
      else t[o].w[0] = (float)(1 - f), t[o].w[1] = (float)f;
    }
  }
  return t;
}

static void free_taps(taps *t, int n) {
  for (int i = 0; i < n; i++) g_free(t[i].w);
  g_free(t);
}

void ddpm_resize_rows(const float *src, int c, int sh, int sw, float *dst,
                      int dh, int dw, int y0, int y1) {
  taps *tx = axis_taps(sw, dw), *ty = axis_taps(sh, dh);
  float *tmp = g_new(float, (size_t)sh * dw); /* horizontal pass, one channel */
  size_t rows = (size_t)(y1 - y0);
  for (int k = 0; k < c; k++) {
    const float *s = src + (size_t)k * sh * sw;
    for (int y = 0; y < sh; y++)
      for (int x = 0; x < dw; x++) {
        float acc = 0;
        for (int i = 0; i < tx[x].count; i++)
          acc += tx[x].w[i] * s[(size_t)y * sw + tx[x].first + i];
        tmp[(size_t)y * dw + x] = acc;
      }
    float *d = dst + (size_t)k * rows * dw;
    for (int y = y0; y < y1; y++)
      for (int x = 0; x < dw; x++) {
        float acc = 0;
        for (int i = 0; i < ty[y].count; i++)
          acc += ty[y].w[i] * tmp[(size_t)(ty[y].first + i) * dw + x];
        d[(size_t)(y - y0) * dw + x] = acc;
      }
  }
  g_free(tmp);
  free_taps(tx, dw);
  free_taps(ty, dh);
}

void ddpm_resize(const float *src, int c, int sh, int sw, float *dst, int dh,
                 int dw) {
  ddpm_resize_rows(src, c, sh, sw, dst, dh, dw, 0, dh);
}

void ddpm_convert_channels(const float *src, int sc, float *dst, int dc,
                           size_t hw) {
  for (size_t i = 0; i < hw; i++)
    for (int k = 0; k < dc; k++) {
      float v;
      if (sc == dc) v = src[k * hw + i];
      else if (sc == 1) v = src[i];
      else if (dc == 1) /* RGB to grey: Rec. 601 luma */
        v = 0.299f * src[i] + 0.587f * src[hw + i] + 0.114f * src[2 * hw + i];
      else v = src[MIN(k, sc - 1) * hw + i];
      dst[k * hw + i] = v;
    }
}
