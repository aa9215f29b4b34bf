#version 450
// Softmax over the channels of each pixel, for the CPU attention
// (ops/attention.c): s is S^T, [images][T (key j)][T (query i)], as the
// score GEMM leaves it; p[j][i] = exp(scale * (s[j][i] - max_j)) / sum.
// One invocation per query i: the lanes of a vector read consecutive
// queries, so every image load gathers from one row.  Three passes over j
// (ops/attention.c keeps 3 T within llvmpipe's 65535 loop iterations).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "index.glsl"

layout(binding = 0, r32f) uniform readonly imageBuffer s;
layout(std430, binding = 1) writeonly buffer O { float o[]; };

layout(push_constant) uniform P { uint images, tokens; float scale; } p;

void main() {
  uint id = flat_index(), t = p.tokens;
  if (id >= p.images * t) return;
  uint img = div_fast(id, t), i = id - img * t;
  int base = int(img * t * t + i);
  float m = -1.0 / 0.0;
  for (uint j = 0; j < t; j++) m = max(m, imageLoad(s, base + int(j * t)).x);
  float l = 0.0;
  for (uint j = 0; j < t; j++) l += exp(p.scale * (imageLoad(s, base + int(j * t)).x - m));
  float inv = 1.0 / l;
  for (uint j = 0; j < t; j++)
    o[base + int(j * t)] = exp(p.scale * (imageLoad(s, base + int(j * t)).x - m)) * inv;
}
