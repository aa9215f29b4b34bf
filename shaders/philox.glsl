// Counter-based normal noise, the same algorithm as compute/noise.c:
// Philox4x32-10 keyed by the 64-bit seed, counter (index / 4, index >> 34,
// stream, 0), then Box-Muller on the pair (index & 2), with 24-bit uniforms.
#include "sincos.glsl"

uvec4 philox4x32_10(uvec4 ctr, uvec2 key) {
  for (int r = 0; r < 10; r++) {
    uint hi0, lo0, hi1, lo1;
    umulExtended(0xD2511F53u, ctr.x, hi0, lo0);
    umulExtended(0xCD9E8D57u, ctr.z, hi1, lo1);
    ctr = uvec4(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
    key += uvec2(0x9E3779B9u, 0xBB67AE85u);
  }
  return ctr;
}

// Standard normal value `index` (low 32 bits; high bits in index_hi) of
// `stream` for the 64-bit seed (lo, hi).
float philox_normal(uvec2 seed, uint stream, uint index, uint index_hi) {
  uvec4 c = philox4x32_10(uvec4((index >> 2) | (index_hi << 30), index_hi >> 2,
                                stream, 0u), seed);
  bool second = (index & 2u) != 0u;
  uint a = second ? c.z : c.x, b = second ? c.w : c.y;
  // u1 in (0, 1]: never log(0)
  float u1 = (float(a >> 8) + 1.0) * (1.0 / 16777216.0);
  float u2 = float(b >> 8) * (1.0 / 16777216.0);
  float r = sqrt(-2.0 * log(u1));
  float ang = 6.283185307179586 * u2;
  return r * precise_sincos(ang, (index & 1u) != 0u ? 0 : 1);
}
