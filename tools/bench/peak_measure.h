/* The device's multiply-add peak (shaders/peak_muladd.comp), measured on a
 * context: ddpm-peak's work, shared with tests/test_peak.c. */
#pragma once

#include <stdbool.h>

#include "ddpm/ddpm.h"

typedef struct {
  double gflops;  /* of the fastest dispatch, 2 flops a multiply-add */
  double seconds; /* that dispatch's time */
  double gflop;   /* its work */
  int mismatches; /* lanes whose sums differ from the CPU's (printed) */
} peak_result;

/* Sizes the dispatch to about target_s seconds and runs it 5 times;
 * checks the chains' sums against the same recurrence on the CPU.  False
 * with *err set when Vulkan fails. */
bool peak_measure(ddpm_context *ctx, double target_s, peak_result *out, GError **err);
