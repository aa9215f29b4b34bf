#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "ddpm/ddpm.h"
#include "png_io.h"

/* libpng reports through these instead of printing: the message ends up in
 * the GError, warnings are dropped. */
static void on_png_error(png_structp png, png_const_charp msg) {
  char *buf = png_get_error_ptr(png);
  if (buf) g_strlcpy(buf, msg, 256);
  png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) {}

static uint8_t to_u8(float v) {
  float s = (v + 1.0f) * 127.5f;
  if (!(s > 0.0f)) return 0; /* also NaN */
  if (s >= 255.0f) return 255;
  return (uint8_t)lrintf(s);
}

/* Writes rows of packed pixels to `path` atomically: a temporary file in the
 * same folder, renamed over `path` only once complete. */
static bool write_png(const char *path, int w, int h, int depth, int color_type,
                      const uint8_t *pix, size_t stride, GError **err) {
  char *tmp = g_strdup_printf("%s.tmp-XXXXXX", path);
  int fd = g_mkstemp(tmp);
  FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
  png_structp png = NULL;
  png_infop info = NULL;
  volatile bool ok = fp != NULL; /* survives longjmp from libpng */
  if (ok) {
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, on_png_error,
                                  on_png_warning);
    info = png ? png_create_info_struct(png) : NULL;
    ok = png && info;
  }
  if (ok && setjmp(png_jmpbuf(png))) {
    ok = false;
  } else if (ok) {
    png_init_io(png, fp);
    png_set_IHDR(png, info, w, h, depth, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, pix + (size_t)y * stride);
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
  return ok;
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
  bool ok = write_png(path, W, H, 8, c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                      pix, (size_t)W * c, err);
  g_free(pix);
  return ok;
}

void png_image_clear(png_image_f *img) {
  g_free(img->data);
  g_free(img->alpha);
  memset(img, 0, sizeof *img);
}

#define MAX_SIDE 65536
#define MAX_PIXELS ((size_t)1 << 28)

bool png_read_float(const char *path, png_image_f *img, GError **err) {
  memset(img, 0, sizeof *img);
  FILE *fp = g_fopen(path, "rb");
  if (!fp) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_IO, "%s: cannot open: %s", path,
                g_strerror(errno));
    return false;
  }
  uint8_t sig[8];
  if (fread(sig, 1, 8, fp) != 8 || png_sig_cmp(sig, 0, 8)) {
    fclose(fp);
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT, "%s: not a PNG file", path);
    return false;
  }
  char msg[256] = "";
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, msg,
                                           on_png_error, on_png_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  uint16_t *volatile rows = NULL;
  png_bytep *volatile rp = NULL; /* freed below: libpng may longjmp out */
  volatile bool ok = png && info;
  if (ok && setjmp(png_jmpbuf(png))) {
    ok = false;
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT, "%s: corrupt PNG (%s)",
                path, msg);
  } else if (ok) {
    png_init_io(png, fp);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, MAX_SIDE, MAX_SIDE);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    /* Deflate expands at most 1032:1, so a file that cannot hold the
     * image's pixels is refused before the rows are allocated. */
    GStatBuf st;
    uint64_t file_bytes = fstat(fileno(fp), &st) == 0 ? (uint64_t)st.st_size : 0;
    uint64_t raw_bytes = (uint64_t)h * png_get_rowbytes(png, info);
    if ((size_t)w * h > MAX_PIXELS) {
      g_set_error(err, DDPM_ERROR, DDPM_ERROR_UNSUPPORTED,
                  "%s: %ux%u is larger than supported", path, w, h);
      ok = false;
    } else if (raw_bytes > 1032 * file_bytes + 65536) {
      g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT,
                  "%s: corrupt PNG (%ux%u pixels cannot fit in %" G_GUINT64_FORMAT
                  " bytes; truncated?)", path, w, h, file_bytes);
      ok = false;
    } else {
      /* Everything to 16-bit grey/RGB (+ alpha), host byte order. */
      if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
      if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
      if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
      if (depth < 16) png_set_expand_16(png);
      png_set_swap(png);
      png_read_update_info(png, info);
      int ch = png_get_channels(png, info);
      bool has_alpha = ch == 2 || ch == 4;
      int c = has_alpha ? ch - 1 : ch;
      rows = g_new(uint16_t, (size_t)w * h * ch);
      rp = g_new(png_bytep, h);
      for (png_uint_32 y = 0; y < h; y++) rp[y] = (png_bytep)(rows + (size_t)y * w * ch);
      png_read_image(png, rp);
      img->c = c, img->h = (int)h, img->w = (int)w, img->bit_depth = depth <= 8 ? 8 : 16;
      img->data = g_new(float, (size_t)c * w * h);
      if (has_alpha) img->alpha = g_new(float, (size_t)w * h);
      for (size_t i = 0; i < (size_t)w * h; i++) {
        for (int k = 0; k < c; k++)
          img->data[(size_t)k * w * h + i] = rows[i * ch + k] / 32767.5f - 1.0f;
        if (has_alpha) img->alpha[i] = rows[i * ch + c] / 65535.0f;
      }
    }
  }
  g_free(rows);
  g_free(rp);
  if (png) png_destroy_read_struct(&png, info ? &info : NULL, NULL);
  fclose(fp);
  if (!ok) {
    png_image_clear(img);
    if (err && !*err)
      g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT, "%s: cannot read PNG", path);
  }
  return ok;
}

static uint16_t to_u16(float v) {
  float s = (v + 1.0f) * 32767.5f;
  if (!(s > 0.0f)) return 0;
  if (s >= 65535.0f) return 65535;
  return (uint16_t)lrintf(s);
}

bool png_write_float(const char *path, const png_image_f *img, GError **err) {
  int ch = img->c + (img->alpha ? 1 : 0);
  if (ch < 1 || ch > 4) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_UNSUPPORTED,
                "%s: cannot write %d channels as PNG (1 to 4)", path, ch);
    return false;
  }
  size_t n = (size_t)img->w * img->h;
  bool deep = img->bit_depth == 16;
  uint8_t *pix = g_malloc(n * ch * (deep ? 2 : 1));
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < ch; k++) {
      float v = k < img->c ? img->data[(size_t)k * n + i] : img->alpha[i] * 2 - 1;
      if (deep) {
        uint16_t u = to_u16(v);
        pix[(i * ch + k) * 2] = (uint8_t)(u >> 8); /* PNG is big-endian */
        pix[(i * ch + k) * 2 + 1] = (uint8_t)u;
      } else {
        pix[i * ch + k] = to_u8(v);
      }
    }
  static const int types[] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                              PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  bool ok = write_png(path, img->w, img->h, deep ? 16 : 8, types[ch], pix,
                      (size_t)img->w * ch * (deep ? 2 : 1), err);
  g_free(pix);
  return ok;
}
