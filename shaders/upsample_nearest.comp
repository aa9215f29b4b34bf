#version 450
// Nearest-neighbour 2x upsampling, NCHW.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "index.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P { uint nc, h, w; } p;

void main() {
  uint idx = flat_index();
  uint wo = 2 * p.w, ho = 2 * p.h;
  if (idx >= p.nc * ho * wo) return;
  uint ox = idx % wo, oy = (idx / wo) % ho, c = idx / (wo * ho);
  y[idx] = x[(c * p.h + oy / 2) * p.w + ox / 2];
}
