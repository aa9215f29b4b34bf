#version 450
// Group norm for CPU devices, second dispatch: y = (x - mean) / std * gamma
// + beta, then SiLU if asked; one element per invocation.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "index.glsl"

layout(binding = 0) uniform samplerBuffer x;
layout(binding = 1) uniform samplerBuffer stats; // from groupnorm_stats_direct
layout(binding = 2) uniform samplerBuffer gamma;
layout(binding = 3) uniform samplerBuffer beta;
layout(std430, binding = 4) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P {
  uint n, c, hw, groups;
  float eps;
  uint silu;
} p;

void main() {
  uint idx = flat_index();
  if (idx >= p.n * p.c * p.hw) return;
  int ch = int((idx / p.hw) % p.c);
  int ng = int(idx / (p.c / p.groups * p.hw));
  float v = (texelFetch(x, int(idx)).x - texelFetch(stats, 2 * ng).x) *
            texelFetch(stats, 2 * ng + 1).x * texelFetch(gamma, ch).x +
            texelFetch(beta, ch).x;
  y[idx] = p.silu != 0 ? silu(v) : v;
}
