#version 450
// y[n, o] = act(sum_i W[o, i] * x[n, i] + b[o]); act = SiLU or none.
// (CPU devices run linears as 1x1 convolutions: ops/linear.c.)
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "index.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Wt { float w[]; };
layout(std430, binding = 2) readonly buffer B { float bias[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P {
  uint n, in_features, out_features, silu_out;
} p;

void main() {
  uint idx = flat_index();
  if (idx >= p.n * p.out_features) return;
  uint o = idx % p.out_features, n = idx / p.out_features;
  float acc = 0.0;
  for (uint i = 0; i < p.in_features; i++) {
    acc += w[o * p.in_features + i] * x[n * p.in_features + i];
  }
  float r = acc + bias[o];
  y[idx] = p.silu_out != 0 ? silu(r) : r;
}
