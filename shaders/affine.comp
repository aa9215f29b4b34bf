#version 450
// Elementwise y = act(x * scale + shift), act SiLU or none (e.g.
// center_input_sample: 2x - 1; the SiLU of the time embedding).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "index.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P { uint count; float scale, shift; uint silu_out; } p;

void main() {
  uint idx = flat_index();
  if (idx >= p.count) return;
  float v = x[idx] * p.scale + p.shift;
  y[idx] = p.silu_out != 0 ? silu(v) : v;
}
