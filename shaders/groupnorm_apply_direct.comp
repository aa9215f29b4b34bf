#version 450
// Group norm for CPU devices, second dispatch: y = (x - mean) / std * gamma
// + beta, then SiLU if asked.  An invocation takes V consecutive elements
// of one channel (V = 4 when hw % 4 == 0): one vec4 load and store, whose
// lane-by-lane store on lavapipe then moves 4 floats per lane.  Workgroups:
// x along a channel's row, y (and z past 65535) over the n * c rows, or,
// where a row has fewer than 64 invocations' worth, over groups of rpw
// rows each (a workgroup costs about 2 us on lavapipe even when nearly
// idle); the channel and group come from the row by float divisions,
// exact below 2^20 (llvmpipe splits an integer division into one per lane).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
layout(local_size_x = 64) in;
#include "store64.glsl"
layout(constant_id = 0) const uint V = 1; // 1 or 4
#include "index.glsl"

// Image loads, not texel fetches: on lavapipe those are function calls.
layout(binding = 0, r32f) uniform readonly imageBuffer x;
layout(binding = 1, rgba32f) uniform readonly imageBuffer x4; // x, with V = 4
layout(binding = 2, r32f) uniform readonly imageBuffer stats; // groupnorm_stats_direct
layout(binding = 3, r32f) uniform readonly imageBuffer gamma;
layout(binding = 4, r32f) uniform readonly imageBuffer beta;
layout(std430, binding = 5) writeonly buffer Y { float y[]; };
layout(std430, binding = 6) writeonly buffer Y4 { u64vec2 y4[]; }; // y, with V = 4

layout(push_constant) uniform P {
  uint n, c, hw, groups;
  float eps;
  uint silu;
  uint rpw; // rows per workgroup
} p;

void main() {
  uint len = p.hw / V, lid = gl_LocalInvocationID.x;
  uint sub = p.rpw > 1 ? uint((float(lid) + 0.5) / float(len)) : 0;
  uint i = p.rpw > 1 ? lid - sub * len : gl_WorkGroupID.x * gl_WorkGroupSize.x + lid;
  uint row = (gl_WorkGroupID.z * 65535 + gl_WorkGroupID.y) * p.rpw + sub; // n * c + channel
  if (sub >= p.rpw || row >= p.n * p.c || i >= len) return;
  uint nb = uint((float(row) + 0.5) / float(p.c)), ch = row - nb * p.c;
  uint cpg = p.c / p.groups, gi = uint((float(ch) + 0.5) / float(cpg));
  int ng = int(nb * p.groups + gi);
  float mean = imageLoad(stats, 2 * ng).x, rstd = imageLoad(stats, 2 * ng + 1).x;
  float g = imageLoad(gamma, int(ch)).x, b = imageLoad(beta, int(ch)).x;
  uint e = row * len + i; // vec4 index with V = 4, else element
  if (V == 4) {
    vec4 v = (imageLoad(x4, int(e)) - mean) * rstd * g + b;
    y4[e] = bits64(p.silu != 0 ? v / (1.0 + exp(-v)) : v);
  } else {
    float v = (imageLoad(x, int(e)).x - mean) * rstd * g + b;
    y[e] = p.silu != 0 ? silu(v) : v;
  }
}
