/* PNG writing for the CLI (libpng): float images in [-1, 1] to 8-bit. */
#ifndef DDPM_PNG_IO_H
#define DDPM_PNG_IO_H

#include <stdbool.h>

#include <glib.h>

/* Writes `n` images [n, c, h, w] (c = 1 grey, 3 RGB) in the model's [-1, 1]
 * space as one PNG, tiled into a grid of `cols` columns with a 2-pixel gap. */
bool png_write_grid(const char *path, const float *images, int n, int c, int h,
                    int w, int cols, GError **err);

/* A decoded image: planar float [c, h, w] in [-1, 1] (c = 1 grey or 3 RGB);
 * alpha, if any, kept apart in [0, 1]. */
typedef struct {
  int c, h, w;
  float *data;
  float *alpha; /* [h, w] or NULL */
  int bit_depth;
} png_image_f;

/* Reads 8- or 16-bit grey, grey+alpha, RGB, RGBA or palette PNGs. */
bool png_read_float(const char *path, png_image_f *img, GError **err);
void png_image_clear(png_image_f *img);

/* Writes one image (alpha may be NULL) at `bit_depth` 8 or 16. */
bool png_write_float(const char *path, const png_image_f *img, GError **err);

#endif
