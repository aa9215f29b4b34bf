#version 450
// out[b, h*dh + c, i] = sum_j softmax_j(S[b, h, i, :]) * v[b, h*dh + c, j],
// for CPU devices (lavapipe: see README, Benchmarks), the softmax folded in: each
// invocation first finds its rows' max and sum of exponentials.  A
// workgroup takes CB channels of one head (uniform, so v fetches are shared
// by the SIMD lanes), each invocation PX consecutive tokens i.
layout(local_size_x_id = 2) in;

// Image loads, not texel fetches: on lavapipe those are function calls.
layout(binding = 0, r32f) uniform readonly imageBuffer s; // scores S, [B, heads, T, T]
layout(binding = 1, r32f) uniform readonly imageBuffer v; // [B, C, T]
layout(std430, binding = 2) writeonly buffer O { float o[]; };
layout(binding = 3, rgba32f) uniform readonly imageBuffer s4; // s, with V4
layout(binding = 4, rgba32f) uniform readonly imageBuffer v4; // v, with V4

layout(push_constant) uniform P { uint b, heads, dh, tokens; } p;

layout(constant_id = 0) const uint CB = 16;
layout(constant_id = 1) const uint PX = 2;
// 1: s and v are bound with vec4 texels (tokens % 4 == 0): 4 columns j
// per fetch.
layout(constant_id = 3) const uint V4 = 0;

void main() {
  uint t = p.tokens;
  uint blocks = (p.dh + CB - 1) / CB; // channel blocks per head
  uint h = gl_WorkGroupID.y / blocks, c0 = (gl_WorkGroupID.y % blocks) * CB;
  uint b = gl_WorkGroupID.z;
  uint bh = b * p.heads + h;
  uint ch0 = bh * p.dh + c0; // channel row of v and o
  uint i0 = (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * PX;

  int srow[PX];
  for (uint i = 0; i < PX; i++) srow[i] = int((bh * t + min(i0 + i, t - 1)) * t);
  float m[PX], l[PX];
  float acc[CB][PX];
  for (uint c = 0; c < CB; c++)
    for (uint i = 0; i < PX; i++) acc[c][i] = 0.0;
  if (V4 != 0) {
    uint t4 = t / 4;
    for (uint i = 0; i < PX; i++) {
      int r4 = srow[i] / 4;
      vec4 mv = vec4(-1.0 / 0.0);
      for (uint j = 0; j < t4; j++) mv = max(mv, imageLoad(s4, r4 + int(j)));
      m[i] = max(max(mv.x, mv.y), max(mv.z, mv.w));
      vec4 lv = vec4(0.0);
      for (uint j = 0; j < t4; j++) lv += exp(imageLoad(s4, r4 + int(j)) - m[i]);
      l[i] = (lv.x + lv.y) + (lv.z + lv.w);
    }
    for (uint j = 0; j < t4; j++) {
      vec4 pv[PX];
      for (uint i = 0; i < PX; i++) pv[i] = exp(imageLoad(s4, srow[i] / 4 + int(j)) - m[i]);
      for (uint c = 0; c < CB; c++) {
        vec4 vv = imageLoad(v4, int((ch0 + min(c, p.dh - 1 - c0)) * t4 + j));
        for (uint i = 0; i < PX; i++) acc[c][i] += dot(vv, pv[i]);
      }
    }
  } else {
  for (uint i = 0; i < PX; i++) {
    m[i] = -1.0 / 0.0;
    for (uint j = 0; j < t; j++) m[i] = max(m[i], imageLoad(s, srow[i] + int(j)).x);
    l[i] = 0.0;
    for (uint j = 0; j < t; j++) l[i] += exp(imageLoad(s, srow[i] + int(j)).x - m[i]);
  }
  for (uint j = 0; j < t; j++) {
    float pv[PX];
    for (uint i = 0; i < PX; i++) pv[i] = exp(imageLoad(s, srow[i] + int(j)).x - m[i]);
    for (uint c = 0; c < CB; c++) {
      float vv = imageLoad(v, int((ch0 + min(c, p.dh - 1 - c0)) * t + j)).x;
      for (uint i = 0; i < PX; i++) acc[c][i] += vv * pv[i];
    }
  }
  }
  for (uint c = 0; c < CB; c++) {
    if (c0 + c >= p.dh) break;
    for (uint i = 0; i < PX; i++)
      if (i0 + i < t) o[(ch0 + c) * t + i0 + i] = acc[c][i] / l[i];
  }
}
