/* libFuzzer: scheduler_config.json parsing, the schedule it builds and a
 * few timestep grids over it. */
#include <stdint.h>
#include <string.h>

#include "schedule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ddpm_schedule s;
  GError *err = NULL;
  if (!ddpm_schedule_parse((const char *)data, size, "scheduler_config.json",
                           &s, &err)) {
    if (!err || !strstr(err->message, "scheduler_config.json")) __builtin_trap();
    g_error_free(err);
    return 0;
  }
  int T = s.num_train_timesteps;
  const int steps[] = {1, 7, 50, T};
  int *ts = g_new(int, T);
  for (size_t i = 0; i < G_N_ELEMENTS(steps); i++)
    if (steps[i] <= T && ddpm_schedule_timesteps(&s, steps[i], ts))
      for (int k = 0; k < steps[i]; k++) {
        volatile float a = ddpm_schedule_abar(&s, ts[k], true);
        (void)a;
      }
  g_free(ts);
  ddpm_schedule_clear(&s);
  return 0;
}
