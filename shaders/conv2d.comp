#version 450
// 2-D convolution, NCHW, weights [Cout, Cin, K, K], one output per invocation.
// Epilogue (in torch's order): + bias, + vec[n, co] (time embedding),
// then (residual + h) / out_scale when a residual is given.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "index.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Wt { float w[]; };
layout(std430, binding = 2) readonly buffer B { float bias[]; };
layout(std430, binding = 3) readonly buffer V { float vec[]; };
layout(std430, binding = 4) readonly buffer R { float res[]; };
layout(std430, binding = 5) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P {
  uint n, cin, h, w, cout, ho, wo, k, stride;
  int pad_t, pad_l;
  uint has_vec, has_res;
  float out_scale;
} p;

void main() {
  uint idx = flat_index();
  uint total = p.n * p.cout * p.ho * p.wo;
  if (idx >= total) return;
  uint ox = idx % p.wo;
  uint oy = (idx / p.wo) % p.ho;
  uint co = (idx / (p.wo * p.ho)) % p.cout;
  uint n = idx / (p.wo * p.ho * p.cout);

  int iy0 = int(oy * p.stride) - p.pad_t;
  int ix0 = int(ox * p.stride) - p.pad_l;
  float acc = 0.0;
  for (uint ci = 0; ci < p.cin; ci++) {
    uint xbase = (n * p.cin + ci) * p.h * p.w;
    uint wbase = (co * p.cin + ci) * p.k * p.k;
    for (uint ky = 0; ky < p.k; ky++) {
      int iy = iy0 + int(ky);
      if (iy < 0 || iy >= int(p.h)) continue;
      for (uint kx = 0; kx < p.k; kx++) {
        int ix = ix0 + int(kx);
        if (ix < 0 || ix >= int(p.w)) continue;
        acc += x[xbase + uint(iy) * p.w + uint(ix)] * w[wbase + ky * p.k + kx];
      }
    }
  }
  float v = acc + bias[co];
  if (p.has_vec != 0) v += vec[n * p.cout + co];
  if (p.has_res != 0) v = (res[idx] + v) / p.out_scale;
  y[idx] = v;
}
