#version 450
// Sinusoidal timestep embedding (diffusers get_timestep_embedding):
// arg = t * freq[i]; [sin | cos] (or [cos | sin] when flipped), zero pad if odd.
// GLSL's sin/cos are only specified on [-pi, pi] to 2^-11, so both are
// computed here with Cody-Waite reduction and minimax polynomials (~1 ulp).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "index.glsl"

layout(std430, binding = 0) readonly buffer T { float t[]; };
layout(std430, binding = 1) readonly buffer F { float freq[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P { uint n, dim, half_dim, flip; } p;

// sin (which == 0) or cos (which == 1) of x.
float precise_sincos(float x, int which) {
  precise float k = roundEven(x * 0.63661977236758134308);
  precise float r = ((x - k * 1.5703125) - k * 4.837512969970703125e-4) -
                    k * 7.54978995489188216e-8;
  int q = (int(k) + which) & 3;
  precise float z = r * r;
  precise float s = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 +
                                 z * -1.9515295891e-4));
  precise float c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 +
                    z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  if (q == 0) return s;
  if (q == 1) return c;
  if (q == 2) return -s;
  return -c;
}

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
