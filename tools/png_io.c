#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "ddpm/ddpm.h"
#include "png_io.h"

static uint8_t to_u8(float v) {
  float s = (v + 1.0f) * 127.5f;
  if (!(s > 0.0f)) return 0; /* also NaN */
  if (s >= 255.0f) return 255;
  return (uint8_t)lrintf(s);
}

bool png_write_grid(const char *path, const float *images, int n, int c, int h,
                    int w, int cols, GError **err) {
  if (c != 1 && c != 3) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_UNSUPPORTED,
                "%s: cannot write %d-channel images as PNG (1 or 3)", path, c);
    return false;
  }
  const int gap = 2;
  cols = MAX(1, MIN(cols, n));
  int rows = (n + cols - 1) / cols;
  int W = cols * w + (cols - 1) * gap, H = rows * h + (rows - 1) * gap;
  uint8_t *pix = g_malloc0((size_t)W * H * c);
  for (int i = 0; i < n; i++) {
    int ox = (i % cols) * (w + gap), oy = (i / cols) * (h + gap);
    const float *img = images + (size_t)i * c * h * w;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        for (int ch = 0; ch < c; ch++)
          pix[((size_t)(oy + y) * W + ox + x) * c + ch] =
            to_u8(img[((size_t)ch * h + y) * w + x]);
  }
  char *tmp = g_strdup_printf("%s.tmp-XXXXXX", path);
  int fd = g_mkstemp(tmp);
  FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
  png_structp png = NULL;
  png_infop info = NULL;
  volatile bool ok = fp != NULL; /* survives longjmp from libpng */
  if (ok) {
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    info = png ? png_create_info_struct(png) : NULL;
    ok = png && info;
  }
  if (ok && setjmp(png_jmpbuf(png))) {
    ok = false;
  } else if (ok) {
    png_init_io(png, fp);
    png_set_IHDR(png, info, W, H, 8, c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < H; y++) png_write_row(png, pix + (size_t)y * W * c);
    png_write_end(png, NULL);
  }
  if (png) png_destroy_write_struct(&png, info ? &info : NULL);
  int saved = errno;
  if (fp && fclose(fp) != 0) ok = false;
  else if (!fp && fd >= 0) close(fd);
  if (ok && g_rename(tmp, path) != 0) {
    saved = errno;
    ok = false;
  }
  if (!ok) {
    if (fd >= 0) g_unlink(tmp);
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_IO, "%s: cannot write PNG: %s",
                path, g_strerror(saved));
  }
  g_free(tmp);
  g_free(pix);
  return ok;
}
