/* libFuzzer: the CLI's PNG reader (tools/png_io.c), which reads from a
 * path: each input goes through one temporary file.  libpng itself is not
 * instrumented (the system's), so coverage guides through png_io.c only. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "png_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *path;

static void remove_path(void) {
  g_unlink(path);
  g_free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!path) { /* in memory where there is a tmpfs: a disk costs 10x */
    int fd = -1;
    if (g_file_test("/dev/shm", G_FILE_TEST_IS_DIR)) {
      path = g_strdup("/dev/shm/ddpm-fuzz-XXXXXX.png");
      fd = g_mkstemp(path);
      if (fd < 0) g_clear_pointer(&path, g_free);
    }
    if (fd < 0) fd = g_file_open_tmp("ddpm-fuzz-XXXXXX.png", &path, NULL);
    if (fd < 0) __builtin_trap();
    close(fd);
    atexit(remove_path);
  }
  FILE *fp = fopen(path, "wb");
  if (!fp || fwrite(data, 1, size, fp) != size || fclose(fp)) __builtin_trap();
  png_image_f img;
  GError *err = NULL;
  if (png_read_float(path, &img, &err)) {
    if (img.c < 1 || img.h < 1 || img.w < 1 || !img.data) __builtin_trap();
    png_image_clear(&img);
  } else {
    if (!err || !strstr(err->message, path)) __builtin_trap();
    g_error_free(err);
  }
  return 0;
}
