#version 450
// S[b, h, i, j] = scale * sum_d q[b, h*dh + d, i] * k[b, h*dh + d, j]
// q, k are channel-major [B, C, T] (outputs of 1x1 projections).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "index.glsl"

layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };
layout(std430, binding = 2) writeonly buffer S { float s[]; };

layout(push_constant) uniform P { uint b, heads, dh, tokens; float scale; } p;

void main() {
  uint idx = flat_index();
  uint tt = p.tokens * p.tokens;
  if (idx >= p.b * p.heads * tt) return;
  uint j = idx % p.tokens, i = (idx / p.tokens) % p.tokens;
  uint bh = idx / tt;
  uint b = bh / p.heads, h = bh % p.heads;
  uint c0 = b * p.heads * p.dh + h * p.dh;
  float acc = 0.0;
  for (uint d = 0; d < p.dh; d++)
    acc += q[(c0 + d) * p.tokens + i] * k[(c0 + d) * p.tokens + j];
  s[idx] = p.scale * acc;
}
