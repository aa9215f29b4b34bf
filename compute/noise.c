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
  /* 24-bit uniforms in float, as shaders/philox.glsl: u1 in (0, 1]. */
  float u1 = ((float)(ctr[2 * pair] >> 8) + 1.0f) * (1.0f / 16777216.0f);
  float u2 = (float)(ctr[2 * pair + 1] >> 8) * (1.0f / 16777216.0f);
  float r = sqrtf(-2.0f * logf(u1));
  float a = 6.283185307179586f * u2;
  return (index & 1) ? r * sinf(a) : r * cosf(a);
}
