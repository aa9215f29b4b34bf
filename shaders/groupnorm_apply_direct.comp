#version 450
// Group norm for CPU devices, second dispatch: y = (x - mean) / std * gamma
// + beta, then SiLU if asked.  An invocation takes V consecutive elements
// of one channel (V = 4 when hw % 4 == 0): one vec4 load and store, whose
// lane-by-lane store on lavapipe then moves 4 floats per lane.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint V = 1; // 1 or 4
#include "index.glsl"

// Image loads, not texel fetches: on lavapipe those are function calls.
layout(binding = 0, r32f) uniform readonly imageBuffer x;
layout(binding = 1, rgba32f) uniform readonly imageBuffer x4; // x, with V = 4
layout(binding = 2, r32f) uniform readonly imageBuffer stats; // groupnorm_stats_direct
layout(binding = 3, r32f) uniform readonly imageBuffer gamma;
layout(binding = 4, r32f) uniform readonly imageBuffer beta;
layout(std430, binding = 5) writeonly buffer Y { float y[]; };
layout(std430, binding = 6) writeonly buffer Y4 { vec4 y4[]; }; // y, with V = 4

layout(push_constant) uniform P {
  uint n, c, hw, groups;
  float eps;
  uint silu;
} p;

void main() {
  uint i = flat_index();
  if (i * V >= p.n * p.c * p.hw) return;
  uint idx = i * V; // first element
  int ch = int((idx / p.hw) % p.c);
  int ng = int(idx / (p.c / p.groups * p.hw));
  float mean = imageLoad(stats, 2 * ng).x, rstd = imageLoad(stats, 2 * ng + 1).x;
  float g = imageLoad(gamma, ch).x, b = imageLoad(beta, ch).x;
  if (V == 4) {
    vec4 v = (imageLoad(x4, int(i)) - mean) * rstd * g + b;
    y4[i] = p.silu != 0 ? v / (1.0 + exp(-v)) : v;
  } else {
    float v = (imageLoad(x, int(idx)).x - mean) * rstd * g + b;
    y[idx] = p.silu != 0 ? silu(v) : v;
  }
}
