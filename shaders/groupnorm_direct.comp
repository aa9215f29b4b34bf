#version 450
// Group norm in one dispatch for CPU devices: one workgroup of exactly one
// subgroup per (n, group) computes the group's statistics as
// groupnorm_stats_direct.comp does (two passes, subgroupAdd, no barrier),
// then normalizes the group's channels as groupnorm_apply_direct.comp does,
// with the same arithmetic: y = (x - mean) * (1 / std) * gamma + beta, then
// SiLU if asked.  Saves the second dispatch (about 60 us on lavapipe, the
// cost of a small group's whole work) where a group's three passes fit
// llvmpipe's loop limit (ops/groupnorm.c checks).
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
layout(local_size_x_id = 0) in; // the subgroup size
#include "store64.glsl"
layout(constant_id = 1) const bool V4 = false; // hw % 4 == 0
#include "index.glsl"

// Image loads, not texel fetches: on lavapipe those are function calls.
layout(binding = 0, r32f) uniform readonly imageBuffer x;
layout(binding = 1, rgba32f) uniform readonly imageBuffer x4; // x, with V4
layout(binding = 2, r32f) uniform readonly imageBuffer gamma;
layout(binding = 3, r32f) uniform readonly imageBuffer beta;
layout(std430, binding = 4) writeonly buffer Y { float y[]; };
layout(std430, binding = 5) writeonly buffer Y4 { u64vec2 y4[]; }; // y, with V4

layout(push_constant) uniform P {
  uint n, c, hw, groups;
  float eps;
  uint silu;
} p;

void main() {
  uint ng = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (ng >= p.n * p.groups) return; // uniform per workgroup
  uint lid = gl_LocalInvocationID.x, lx = gl_WorkGroupSize.x;
  uint cpg = p.c / p.groups, count = cpg * p.hw;
  int base = int(ng * count);
  float s = 0.0;
  if (V4) {
    for (uint i = lid; i < count / 4; i += lx) {
      vec4 v = imageLoad(x4, base / 4 + int(i));
      s += (v.x + v.y) + (v.z + v.w);
    }
  } else {
    for (uint i = lid; i < count; i += lx) s += imageLoad(x, base + int(i)).x;
  }
  float mean = subgroupAdd(s) / float(count);
  float q = 0.0;
  if (V4) {
    for (uint i = lid; i < count / 4; i += lx) {
      vec4 d = imageLoad(x4, base / 4 + int(i)) - mean;
      q += dot(d, d);
    }
  } else {
    for (uint i = lid; i < count; i += lx) {
      float d = imageLoad(x, base + int(i)).x - mean;
      q += d * d;
    }
  }
  float var = subgroupAdd(q) / float(count);
  float rstd = 1.0 / sqrt(var + p.eps);

  uint ch0 = ng % p.groups * cpg; // first channel of the group
  for (uint k = 0; k < cpg; k++) {
    float g = imageLoad(gamma, int(ch0 + k)).x, b = imageLoad(beta, int(ch0 + k)).x;
    int row = base + int(k * p.hw);
    if (V4) {
      for (uint i = lid; i < p.hw / 4; i += lx) {
        vec4 v = (imageLoad(x4, row / 4 + int(i)) - mean) * rstd * g + b;
        y4[row / 4 + int(i)] = bits64(p.silu != 0 ? v / (1.0 + exp(-v)) : v);
      }
    } else {
      for (uint i = lid; i < p.hw; i += lx) {
        float v = (imageLoad(x, row + int(i)).x - mean) * rstd * g + b;
        y[row + int(i)] = p.silu != 0 ? silu(v) : v;
      }
    }
  }
}
