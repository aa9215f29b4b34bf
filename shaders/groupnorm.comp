#version 450
// Group normalisation over NCHW with affine weight/bias and optional SiLU.
// One workgroup per (n, group); two passes (mean, then variance) for accuracy.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
#include "index.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer G { float gamma[]; };
layout(std430, binding = 2) readonly buffer B { float beta[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P {
  uint n, c, hw, groups;
  float eps;
  uint silu;
} p;

shared float partial[256];

float reduce_sum(float v) {
  uint lid = gl_LocalInvocationID.x;
  partial[lid] = v;
  barrier();
  for (uint s = 128; s > 0; s >>= 1) {
    if (lid < s) partial[lid] += partial[lid + s];
    barrier();
  }
  float r = partial[0];
  barrier();
  return r;
}

void main() {
  uint ng = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (ng >= p.n * p.groups) return; // uniform per workgroup
  uint n = ng / p.groups, g = ng % p.groups;
  uint cpg = p.c / p.groups;
  uint count = cpg * p.hw;
  uint base = (n * p.c + g * cpg) * p.hw;
  uint lid = gl_LocalInvocationID.x;

  float s = 0.0;
  for (uint i = lid; i < count; i += 256) s += x[base + i];
  float mean = reduce_sum(s) / float(count);
  float q = 0.0;
  for (uint i = lid; i < count; i += 256) {
    float d = x[base + i] - mean;
    q += d * d;
  }
  float var = reduce_sum(q) / float(count);
  float rstd = 1.0 / sqrt(var + p.eps);
  for (uint i = lid; i < count; i += 256) {
    uint ch = g * cpg + i / p.hw;
    float v = (x[base + i] - mean) * rstd * gamma[ch] + beta[ch];
    y[base + i] = p.silu != 0 ? silu(v) : v;
  }
}
