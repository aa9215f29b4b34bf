#version 450
// Sinusoidal timestep embedding (diffusers get_timestep_embedding):
// arg = t * freq[i]; [sin | cos] (or [cos | sin] when flipped), zero pad if odd.
// sin/cos come from sincos.glsl (GLSL's own are too coarse here).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "index.glsl"
#include "sincos.glsl"

layout(std430, binding = 0) readonly buffer T { float t[]; };
layout(std430, binding = 1) readonly buffer F { float freq[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P { uint n, dim, half_dim, flip; } p;

void main() {
  uint idx = flat_index();
  if (idx >= p.n * p.dim) return;
  uint i = idx % p.dim, n = idx / p.dim;
  float v = 0.0;
  if (i < 2 * p.half_dim) {
    bool first = i < p.half_dim;
    uint j = first ? i : i - p.half_dim;
    precise float arg = t[n] * freq[j];
    bool want_sin = (p.flip != 0) ? !first : first;
    v = precise_sincos(arg, want_sin ? 0 : 1);
  }
  y[idx] = v;
}
