#version 450
// Fills y [batch, item] with standard normal noise: item b uses seed + b.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "index.glsl"
#include "philox.glsl"

layout(std430, binding = 0) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P { uint count, item, seed_lo, seed_hi, stream; } p;

void main() {
  uint idx = flat_index();
  if (idx >= p.count) return;
  uint b = idx / p.item, i = idx % p.item;
  uint lo = p.seed_lo + b;
  uvec2 seed = uvec2(lo, p.seed_hi + (lo < b ? 1u : 0u));
  y[idx] = philox_normal(seed, p.stream, i, 0u);
}
