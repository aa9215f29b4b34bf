#version 450
// Packs a per-image matrix of the attention (K or V, [images][rows][cols])
// as the weights of the CPU convolution kernel (conv2d_cpu.comp, 1x1), so
// that the score and output products run as its GEMMs: weight (co, ci) is
// src[ci][co] (K: TRANSPOSE) or src[co][ci] (V), stored as in
// ops/conv2d_cpu.c's conv2d_cpu_plan_index: per slice of KC input
// channels, [co / 8][ci % KC / 4][co % 8] texels of 4 input channels, zero
// past the matrix.  One invocation per texel.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
layout(local_size_x = 64) in;
#include "store64.glsl"
#include "index.glsl"

layout(binding = 0, r32f) uniform readonly imageBuffer src;
layout(std430, binding = 1) writeonly buffer W { u64vec2 w[]; };

layout(push_constant) uniform P {
  uint images, rows, cols;   // src: [images][rows][cols]
  uint cout, cin;            // the weight matrix: [cout][cin]
  uint kc, cor, k4;          // the plan: slice channels, padded cout, texels per co
  uint img_texels;           // texels per image: slices * cor * k4
  uint transpose;            // 1: weight (co, ci) = src[ci][co]
} p;

void main() {
  uint t = flat_index();
  if (t >= p.images * p.img_texels) return;
  uint img = div_fast(t, p.img_texels), r = t - img * p.img_texels;
  uint per_slice = p.cor * p.k4;
  uint s = div_fast(r, per_slice);
  r -= s * per_slice;
  uint cob = div_fast(r, 8 * p.k4);
  r -= cob * 8 * p.k4;
  uint kq = r / 8, co = cob * 8 + r % 8;
  uint ci0 = s * p.kc + 4 * kq;
  vec4 v = vec4(0.0);
  for (uint e = 0; e < 4; e++) {
    uint ci = ci0 + e;
    bool ok = co < p.cout && ci < p.cin && ci < (s + 1) * p.kc;
    uint at = p.transpose != 0 ? ci * p.cols + co : co * p.cols + ci;
    float x = imageLoad(src, ok ? int(img * p.rows * p.cols + at) : 0).x;
    v[e] = ok ? x : 0.0;
  }
  w[t] = bits64(v);
}
