#version 450
// The split CPU convolution's last step (see conv2d_cpu.comp): y = the
// sum of S slice sums, added in slice order as the sequential dispatches
// add them, then (res + y) / out_scale with a residual; 4 floats per
// invocation (image loads gather; the store is two 64-bit halves,
// store64.glsl).
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
layout(local_size_x = 64) in;
#include "store64.glsl"
#include "index.glsl"
layout(constant_id = 0) const uint S = 2;   // slices

layout(binding = 0, rgba32f) uniform readonly imageBuffer part4; // [S][count4]
layout(binding = 1, rgba32f) uniform readonly imageBuffer res4;  // or unused
layout(std430, binding = 2) writeonly buffer Y4 { u64vec2 y4[]; };

layout(push_constant) uniform P {
  uint count4, stride4, has_res;
  float out_scale;
} p;

void main() {
  uint i = flat_index(), ic = min(i, p.count4 - 1);
  vec4 v = imageLoad(part4, int(ic));
  [[unroll]] for (uint s = 1; s < S; s++)
    v += imageLoad(part4, int(s * p.stride4 + ic));
  vec4 r = imageLoad(res4, p.has_res != 0 ? int(ic) : 0);
  v = p.has_res != 0 ? (r + v) / p.out_scale : v;
  if (i < p.count4) y4[i] = bits64(v);
}
