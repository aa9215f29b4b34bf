/* Counter-based normal noise: Philox4x32-10 (Salmon et al. 2011) keyed by
 * the seed, counter (index / 4, stream), then Box-Muller.  Any value can be
 * computed on its own, so results do not depend on batch position, thread
 * count or evaluation order. */
#include <math.h>

#include "ddpm/ddpm.h"

static void philox4x32_10(uint32_t ctr[4], uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * ctr[0];
    uint64_t p1 = (uint64_t)0xCD9E8D57u * ctr[2];
    uint32_t c0 = (uint32_t)(p1 >> 32) ^ ctr[1] ^ k0;
    uint32_t c2 = (uint32_t)(p0 >> 32) ^ ctr[3] ^ k1;
    ctr[1] = (uint32_t)p1;
    ctr[3] = (uint32_t)p0;
    ctr[0] = c0;
    ctr[2] = c2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

float ddpm_noise(uint64_t seed, uint32_t stream, uint64_t index) {
  uint32_t ctr[4] = {(uint32_t)(index >> 2), (uint32_t)(index >> 34), stream, 0};
  philox4x32_10(ctr, (uint32_t)seed, (uint32_t)(seed >> 32));
  int pair = (int)(index & 3) >> 1;
  /* Uniforms in (0, 1]: never log(0). */
  double u1 = ((double)ctr[2 * pair] + 1.0) / 4294967296.0;
  double u2 = (double)ctr[2 * pair + 1] / 4294967296.0;
  double r = sqrt(-2.0 * log(u1));
  double a = 2.0 * G_PI * u2;
  return (float)((index & 1) ? r * sin(a) : r * cos(a));
}
