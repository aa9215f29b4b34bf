/* gimp-ddpm: pixels between GEGL buffers and the model's planar floats.
 * Pixels are read and written as float in the drawable's own colour space
 * with its non-linear (perceptual) encoding, which is what diffusion models
 * are trained on; any precision (8/16/32-bit) and linear images work. */
#include <string.h>

#include "plugin.h"

static const Babl *colour_format(GimpDrawable *drawable, bool alpha) {
  const char *name = gimp_drawable_is_gray(drawable)
    ? (alpha ? "Y'A float" : "Y' float")
    : (alpha ? "R'G'B'A float" : "R'G'B' float");
  return babl_format_with_space(name, gimp_drawable_get_format(drawable));
}

bool pixels_read(GimpDrawable *drawable, int x, int y, int w, int h,
                 pixel_region *r, GError **err) {
  memset(r, 0, sizeof *r);
  if (gimp_drawable_is_indexed(drawable)) {
    g_set_error_literal(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                        "indexed images are not supported: convert the image "
                        "to RGB (Image > Mode > RGB) first");
    return false;
  }
  r->x = x, r->y = y, r->w = w, r->h = h;
  r->channels = gimp_drawable_is_gray(drawable) ? 1 : 3;
  r->alpha = gimp_drawable_has_alpha(drawable);
  int bpp = r->channels + r->alpha;
  size_t hw = (size_t)w * h;
  float *packed = g_try_new(float, hw * bpp);
  r->colour = g_try_new(float, hw * r->channels);
  if (!packed || !r->colour) {
    g_free(packed);
    pixels_clear(r);
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_OUT_OF_MEMORY,
                "not enough memory for a %d x %d region", w, h);
    return false;
  }
  GeglBuffer *buf = gimp_drawable_get_buffer(drawable);
  gegl_buffer_get(buf, GEGL_RECTANGLE(x, y, w, h), 1.0,
                  colour_format(drawable, r->alpha), packed,
                  GEGL_AUTO_ROWSTRIDE, GEGL_ABYSS_NONE);
  g_object_unref(buf);
  if (r->alpha) r->alpha_plane = g_new(float, hw);
  for (size_t i = 0; i < hw; i++) {
    for (int k = 0; k < r->channels; k++)
      r->colour[k * hw + i] = packed[i * bpp + k];
    if (r->alpha) r->alpha_plane[i] = packed[i * bpp + r->channels];
  }
  g_free(packed);
  return true;
}

void pixels_clear(pixel_region *r) {
  g_free(r->colour);
  g_free(r->alpha_plane);
  memset(r, 0, sizeof *r);
}

float *pixels_selection_mask(GimpImage *image, GimpDrawable *drawable, int x,
                             int y, int w, int h) {
  size_t hw = (size_t)w * h;
  float *mask = g_new(float, hw);
  if (gimp_selection_is_empty(image)) {
    for (size_t i = 0; i < hw; i++) mask[i] = 1.0f;
    return mask;
  }
  int ox = 0, oy = 0;
  gimp_drawable_get_offsets(drawable, &ox, &oy);
  GimpSelection *sel = gimp_image_get_selection(image);
  GeglBuffer *buf = gimp_drawable_get_buffer(GIMP_DRAWABLE(sel));
  /* The selection is in image coordinates and may stop short of the
   * layer: outside the image nothing is selected. */
  gegl_buffer_get(buf, GEGL_RECTANGLE(x + ox, y + oy, w, h), 1.0,
                  babl_format("Y float"), mask, GEGL_AUTO_ROWSTRIDE,
                  GEGL_ABYSS_NONE);
  g_object_unref(buf);
  return mask;
}

void pixels_write(GeglBuffer *buffer, GimpDrawable *drawable,
                  const pixel_region *r) {
  int bpp = r->channels + r->alpha;
  size_t hw = (size_t)r->w * r->h;
  float *packed = g_new(float, hw * bpp);
  for (size_t i = 0; i < hw; i++) {
    for (int k = 0; k < r->channels; k++)
      packed[i * bpp + k] = CLAMP(r->colour[k * hw + i], 0.0f, 1.0f);
    if (r->alpha) packed[i * bpp + r->channels] = r->alpha_plane[i];
  }
  gegl_buffer_set(buffer, GEGL_RECTANGLE(r->x, r->y, r->w, r->h), 0,
                  colour_format(drawable, r->alpha), packed, GEGL_AUTO_ROWSTRIDE);
  g_free(packed);
}

float *pixels_to_model(const float *colour, int rc, int rh, int rw, int mc,
                       int size) {
  size_t rhw = (size_t)rh * rw, mhw = (size_t)size * size;
  float *conv = g_new(float, rhw * mc);
  ddpm_convert_channels(colour, rc, conv, mc, rhw);
  float *x = g_new(float, mhw * mc);
  ddpm_resize(conv, mc, rh, rw, x, size, size);
  for (size_t i = 0; i < mhw * mc; i++) x[i] = x[i] * 2.0f - 1.0f;
  g_free(conv);
  return x;
}

void pixels_from_model(const float *x, int mc, int size, float *colour, int rc,
                       int rh, int rw) {
  size_t rhw = (size_t)rh * rw;
  float *big = g_new(float, rhw * mc);
  ddpm_resize(x, mc, size, size, big, rh, rw);
  ddpm_convert_channels(big, mc, colour, rc, rhw);
  for (size_t i = 0; i < rhw * rc; i++)
    colour[i] = CLAMP((colour[i] + 1.0f) * 0.5f, 0.0f, 1.0f);
  g_free(big);
}

GimpLayer *pixels_new_layer(GimpImage *image, const char *name, int w, int h,
                            const float *colour, int c) {
  GimpImageType type = c == 1 ? GIMP_GRAY_IMAGE : GIMP_RGB_IMAGE;
  GimpLayer *layer = gimp_layer_new(image, name, w, h, type, 100.0,
                                    gimp_image_get_default_new_layer_mode(image));
  pixel_region r = {.x = 0, .y = 0, .w = w, .h = h, .channels = c,
                    .colour = (float *)colour};
  GeglBuffer *buf = gimp_drawable_get_buffer(GIMP_DRAWABLE(layer));
  pixels_write(buf, GIMP_DRAWABLE(layer), &r);
  g_object_unref(buf);
  return layer;
}
