/* libFuzzer: the safetensors reader (header JSON, offsets, shapes) and the
 * float conversions of whatever it accepts. */
#include <stdint.h>
#include <string.h>

#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  GError *err = NULL;
  st_file *f = st_open_memory(data, size, "fuzz.safetensors", &err);
  if (!f) {
    if (!err || !strstr(err->message, "fuzz.safetensors")) __builtin_trap();
    g_error_free(err);
    return 0;
  }
  for (size_t i = 0; i < st_count(f); i++) {
    const st_tensor *t = st_tensor_at(f, i);
    if (st_find(f, t->name) == NULL) __builtin_trap();
    /* Accepted sizes are bounded by the input: nbytes <= size. */
    if (t->nbytes > size) __builtin_trap();
    float *dst = g_new(float, t->n_elements ? t->n_elements : 1);
    if (!st_read_f32(f, t, dst, &err)) g_clear_error(&err);
    g_free(dst);
  }
  st_close(f);
  return 0;
}
