#version 450
// out[b, h*dh + d, i] = sum_j P[b, h, i, j] * v[b, h*dh + d, j]
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "index.glsl"

layout(std430, binding = 0) readonly buffer S { float s[]; };
layout(std430, binding = 1) readonly buffer V { float v[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };

layout(push_constant) uniform P { uint b, heads, dh, tokens; } p;

void main() {
  uint idx = flat_index();
  uint c = p.heads * p.dh;
  if (idx >= p.b * c * p.tokens) return;
  uint i = idx % p.tokens;
  uint ch = (idx / p.tokens) % c;
  uint b = idx / (p.tokens * c);
  uint h = ch / p.dh;
  uint srow = ((b * p.heads + h) * p.tokens + i) * p.tokens;
  uint vrow = (b * c + ch) * p.tokens;
  float acc = 0.0;
  for (uint j = 0; j < p.tokens; j++) acc += s[srow + j] * v[vrow + j];
  o[idx] = acc;
}
