#version 450
// Channel concatenation of two NCHW tensors: y = cat([a, b], dim=1).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "index.glsl"

layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P { uint n, ca, cb, hw; } p;

void main() {
  uint idx = flat_index();
  uint c = p.ca + p.cb;
  if (idx >= p.n * c * p.hw) return;
  uint s = idx % p.hw, ch = (idx / p.hw) % c, n = idx / (p.hw * c);
  y[idx] = ch < p.ca ? a[(n * p.ca + ch) * p.hw + s]
                     : b[(n * p.cb + ch - p.ca) * p.hw + s];
}
