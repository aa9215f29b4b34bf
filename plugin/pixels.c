/* gimp-ddpm: pixels between GEGL buffers and the model's planar floats.
 * Pixels are read and written as float in the drawable's own colour space
 * with its non-linear (perceptual) encoding, which is what diffusion models
 * are trained on; any precision (8/16/32-bit) and linear images work.
 * Pictures are streamed a strip of rows at a time, so a 16k x 16k layer
 * costs a few strips of memory, never a float copy of the whole layer. */
#include <string.h>

#include "plugin.h"

/* Floats per strip (all channels): 16 MiB. */
#define STRIP_FLOATS ((size_t)4 << 20)

static const Babl *colour_format(GimpDrawable *drawable, bool alpha) {
  const char *name = gimp_drawable_is_gray(drawable)
    ? (alpha ? "Y'A float" : "Y' float")
    : (alpha ? "R'G'B'A float" : "R'G'B' float");
  return babl_format_with_space(name, gimp_drawable_get_format(drawable));
}

static int strip_rows(int w, int channels) {
  size_t per_row = (size_t)MAX(w, 1) * MAX(channels, 1);
  return (int)CLAMP(STRIP_FLOATS / per_row, 1, G_MAXINT);
}

/* Planar [c, h, w] <-> packed [h, w, c]. */
static void unpack(const float *packed, int bpp, float *planes, int c, size_t hw) {
  for (size_t i = 0; i < hw; i++)
    for (int k = 0; k < c; k++) planes[k * hw + i] = packed[i * bpp + k];
}

/* A rectangle of `buf` (a drawable's, or the selection's with `format`)
 * scaled to size x size planes [c, size, size].  Area averaging over the
 * same taps as ddpm_resize, done as a horizontal pass per strip into
 * [c, h, size] and one vertical pass, so the values are those of resizing
 * the whole rectangle at once.  `convert_to` > 0 converts the channels
 * (grey <-> RGB) first. */
static float *read_scaled(GeglBuffer *buf, const Babl *format, int bpp, int c,
                          int convert_to, int x, int y, int w, int h, int size) {
  int mc = convert_to > 0 ? convert_to : c;
  int rows = strip_rows(w, bpp);
  float *packed = g_new(float, (size_t)MIN(rows, h) * w * bpp);
  float *planes = g_new(float, (size_t)MIN(rows, h) * w * c);
  float *conv = g_new(float, (size_t)MIN(rows, h) * w * mc);
  float *narrow = g_new(float, (size_t)mc * h * size);  /* [mc, h, size] */
  float *strip = g_new(float, (size_t)mc * MIN(rows, h) * size);
  for (int y0 = 0; y0 < h; y0 += rows) {
    int n = MIN(rows, h - y0);
    size_t hw = (size_t)n * w;
    gegl_buffer_get(buf, GEGL_RECTANGLE(x, y + y0, w, n), 1.0, format, packed,
                    GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
    unpack(packed, bpp, planes, c, hw);
    if (convert_to > 0) ddpm_convert_channels(planes, c, conv, mc, hw);
    else memcpy(conv, planes, hw * c * sizeof(float));
    ddpm_resize(conv, mc, n, w, strip, n, size); /* horizontal only */
    for (int k = 0; k < mc; k++)
      memcpy(narrow + ((size_t)k * h + y0) * size, strip + (size_t)k * n * size,
             (size_t)n * size * sizeof(float));
  }
  float *out = g_new(float, (size_t)mc * size * size);
  ddpm_resize(narrow, mc, h, size, out, size, size); /* vertical */
  g_free(packed);
  g_free(planes);
  g_free(conv);
  g_free(narrow);
  g_free(strip);
  return out;
}

float *pixels_read_model(GimpDrawable *drawable, int x, int y, int w, int h,
                         int mc, int size, GError **err) {
  if (gimp_drawable_is_indexed(drawable)) {
    g_set_error_literal(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                        "indexed images are not supported: convert the image "
                        "to RGB (Image > Mode > RGB) first");
    return NULL;
  }
  int c = gimp_drawable_is_gray(drawable) ? 1 : 3;
  bool alpha = gimp_drawable_has_alpha(drawable); /* read, then dropped */
  GeglBuffer *buf = gimp_drawable_get_buffer(drawable);
  float *x0 = read_scaled(buf, colour_format(drawable, alpha), c + alpha, c, mc, x, y,
                          w, h, size);
  g_object_unref(buf);
  for (size_t i = 0; i < (size_t)mc * size * size; i++) x0[i] = x0[i] * 2.0f - 1.0f;
  return x0;
}

float *pixels_read_sample(GimpDrawable *drawable, int x, int y, int w, int h,
                          int *channels) {
  *channels = gimp_drawable_is_gray(drawable) ? 1 : 3;
  size_t hw = (size_t)w * h;
  float *packed = g_new(float, hw * *channels);
  float *planes = g_new(float, hw * *channels);
  GeglBuffer *buf = gimp_drawable_get_buffer(drawable);
  gegl_buffer_get(buf, GEGL_RECTANGLE(x, y, w, h), 1.0, colour_format(drawable, false),
                  packed, GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref(buf);
  unpack(packed, *channels, planes, *channels, hw);
  g_free(packed);
  return planes;
}

float *pixels_selection_model(GimpImage *image, GimpDrawable *drawable, int x,
                              int y, int w, int h, int size) {
  if (gimp_selection_is_empty(image)) {
    float *mask = g_new(float, (size_t)size * size);
    for (size_t i = 0; i < (size_t)size * size; i++) mask[i] = 1.0f;
    return mask;
  }
  int ox = 0, oy = 0;
  gimp_drawable_get_offsets(drawable, &ox, &oy);
  GimpSelection *sel = gimp_image_get_selection(image);
  GeglBuffer *buf = gimp_drawable_get_buffer(GIMP_DRAWABLE(sel));
  /* The selection is in image coordinates and may stop short of the
   * layer: outside the image nothing is selected. */
  float *mask = read_scaled(buf, babl_format("Y float"), 1, 1, 0, x + ox, y + oy,
                            w, h, size);
  g_object_unref(buf);
  return mask;
}

void pixels_write_model(GeglBuffer *buffer, GimpDrawable *drawable, int x,
                        int y, int w, int h, const float *model, int mc,
                        int size, const float *alpha_model) {
  int c = gimp_drawable_is_gray(drawable) ? 1 : 3;
  bool alpha = gimp_drawable_has_alpha(drawable);
  int bpp = c + alpha;
  int rows = MIN(strip_rows(w, bpp + mc), h);
  const Babl *format = colour_format(drawable, alpha);
  float *big = g_new(float, (size_t)rows * w * mc);
  float *colour = g_new(float, (size_t)rows * w * c);
  float *packed = g_new(float, (size_t)rows * w * bpp);
  float *a = alpha ? g_new(float, (size_t)rows * w) : NULL;
  GeglBuffer *own = alpha && !alpha_model ? gimp_drawable_get_buffer(drawable) : NULL;
  for (int y0 = 0; y0 < h; y0 += rows) {
    int n = MIN(rows, h - y0);
    size_t hw = (size_t)n * w;
    ddpm_resize_rows(model, mc, size, size, big, h, w, y0, y0 + n);
    ddpm_convert_channels(big, mc, colour, c, hw);
    if (alpha_model) {
      ddpm_resize_rows(alpha_model, 1, size, size, a, h, w, y0, y0 + n);
    } else if (own) { /* keep the drawable's alpha */
      gegl_buffer_get(own, GEGL_RECTANGLE(x, y + y0, w, n), 1.0, format, packed,
                      GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
      for (size_t i = 0; i < hw; i++) a[i] = packed[i * bpp + c];
    }
    for (size_t i = 0; i < hw; i++) {
      for (int k = 0; k < c; k++)
        packed[i * bpp + k] = CLAMP((colour[k * hw + i] + 1.0f) * 0.5f, 0.0f, 1.0f);
      if (alpha) packed[i * bpp + c] = CLAMP(a[i], 0.0f, 1.0f);
    }
    gegl_buffer_set(buffer, GEGL_RECTANGLE(x, y + y0, w, n), 0, format, packed,
                    GEGL_AUTO_ROWSTRIDE);
    gegl_buffer_flush(buffer); /* hand the strip's tiles to GIMP now */
  }
  if (own) g_object_unref(own);
  g_free(big);
  g_free(colour);
  g_free(packed);
  g_free(a);
}

GimpLayer *pixels_new_layer(GimpImage *image, const char *name, int w, int h,
                            const float *model, int mc, int size,
                            const float *alpha_model) {
  bool grey = gimp_image_get_base_type(image) == GIMP_GRAY;
  GimpImageType type = grey ? (alpha_model ? GIMP_GRAYA_IMAGE : GIMP_GRAY_IMAGE)
                            : (alpha_model ? GIMP_RGBA_IMAGE : GIMP_RGB_IMAGE);
  GimpLayer *layer = gimp_layer_new(image, name, w, h, type, 100.0,
                                    gimp_image_get_default_new_layer_mode(image));
  GeglBuffer *buf = gimp_drawable_get_buffer(GIMP_DRAWABLE(layer));
  pixels_write_model(buf, GIMP_DRAWABLE(layer), 0, 0, w, h, model, mc, size,
                     alpha_model);
  g_object_unref(buf);
  return layer;
}
