/* PNG writing for the CLI (libpng): float images in [-1, 1] to 8-bit. */
#ifndef DDPM_PNG_IO_H
#define DDPM_PNG_IO_H

#include <stdbool.h>

#include <glib.h>

/* Writes `n` images [n, c, h, w] (c = 1 grey, 3 RGB) in the model's [-1, 1]
 * space as one PNG, tiled into a grid of `cols` columns with a 2-pixel gap. */
bool png_write_grid(const char *path, const float *images, int n, int c, int h,
                    int w, int cols, GError **err);

#endif
