/* libFuzzer: run-state files (generate --resume, the plug-in's layer
 * parasites).  Whatever is accepted must be consistent: shapes within the
 * bounds, values finite, the grid as long as `steps`; it must also survive
 * a write/read round trip unchanged. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ddpm/ddpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  GError *err = NULL;
  ddpm_state *s = ddpm_state_from_bytes(data, size, "fuzz.state", &err);
  if (!s) {
    if (!err || !strstr(err->message, "fuzz.state")) __builtin_trap();
    g_error_free(err);
    return 0;
  }
  size_t n = (size_t)s->batch * s->channels * s->height * s->width;
  if (n * sizeof(float) > size || s->step < 1 || s->step >= s->steps) __builtin_trap();
  for (size_t i = 0; i < n; i++)
    if (!isfinite(s->x[i]) || (s->init && !isfinite(s->init[i]))) __builtin_trap();
  GBytes *b = ddpm_state_to_bytes(s);
  gsize len = 0;
  const void *bytes = g_bytes_get_data(b, &len);
  ddpm_state *again = ddpm_state_from_bytes(bytes, len, "fuzz.state", &err);
  if (!again || again->seed != s->seed || again->t != s->t ||
      memcmp(again->x, s->x, n * sizeof(float)) ||
      memcmp(again->timesteps, s->timesteps, sizeof(int) * (size_t)s->steps))
    __builtin_trap();
  ddpm_state_free(again);
  g_bytes_unref(b);
  ddpm_state_free(s);
  return 0;
}
