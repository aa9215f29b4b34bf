#version 450
// S[b, h, i, j] = scale * sum_d q[b, h*dh + d, i] * k[b, h*dh + d, j], for
// CPU devices (lavapipe: see README, Benchmarks, for why texel buffers): a workgroup
// takes IB rows i (uniform, so q fetches are shared by the SIMD lanes), each
// invocation PX consecutive columns j.  q, k are channel-major [B, C, T].
layout(local_size_x_id = 2) in;

// Image loads, not texel fetches: on lavapipe those are function calls.
layout(binding = 0, r32f) uniform readonly imageBuffer q;
layout(binding = 1, r32f) uniform readonly imageBuffer k;
layout(std430, binding = 2) writeonly buffer S { float s[]; };
layout(binding = 3, rgba32f) uniform readonly imageBuffer q4; // q, with V4

layout(push_constant) uniform P { uint b, heads, dh, tokens; float scale; } p;

layout(constant_id = 0) const uint IB = 16;
layout(constant_id = 1) const uint PX = 2;
// 1: q is bound with vec4 texels (tokens % 4 == 0): 4 rows per fetch.
layout(constant_id = 3) const uint V4 = 0;

void main() {
  uint t = p.tokens;
  uint bh = gl_WorkGroupID.z; // b * heads + h
  uint c0 = bh * p.dh;        // = b * heads * dh + h * dh
  uint i0 = gl_WorkGroupID.y * IB;
  uint j0 = (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * PX;

  float acc[IB][PX];
  for (uint i = 0; i < IB; i++)
    for (uint j = 0; j < PX; j++) acc[i][j] = 0.0;
  for (uint d = 0; d < p.dh; d++) {
    int base = int((c0 + d) * t);
    float kv[PX];
    for (uint j = 0; j < PX; j++)
      kv[j] = j0 + j < t ? imageLoad(k, base + int(j0 + j)).x : 0.0;
    if (V4 != 0) { // IB and i0 are multiples of 4; rows past t are zero
      int b4 = base / 4 + int(i0 / 4);
      for (uint i = 0; i < IB / 4; i++) {
        vec4 q4 = imageLoad(q4, b4 + int(min(i, (t - 1 - i0) / 4)));
        for (uint j = 0; j < PX; j++) {
          acc[4 * i][j] += q4.x * kv[j];
          acc[4 * i + 1][j] += q4.y * kv[j];
          acc[4 * i + 2][j] += q4.z * kv[j];
          acc[4 * i + 3][j] += q4.w * kv[j];
        }
      }
    } else {
      for (uint i = 0; i < IB; i++) {
        float qv = imageLoad(q, base + int(min(i0 + i, t - 1))).x;
        for (uint j = 0; j < PX; j++) acc[i][j] += qv * kv[j];
      }
    }
  }
  for (uint i = 0; i < IB; i++) {
    if (i0 + i >= t) break;
    uint row = (bh * t + i0 + i) * t;
    for (uint j = 0; j < PX; j++)
      if (j0 + j < t) s[row + j0 + j] = p.scale * acc[i][j];
  }
}
