#version 450
// Winograd F(2x2, 3x3) output transform, the last step of a CPU-device 3x3
// convolution (ops/conv2d_winograd.c): for each 2x2 output tile, Y = A^T M A
// of its 16 GEMM results M [position][cout][column], then the convolution's
// epilogue: + bias (+ vec), then (res + y) / out_scale.
//
// One invocation is a quad of 4 consecutive tiles of one output channel's
// tile row (see winograd_in.comp): 16 vec4 image loads, one per position,
// then 2 output rows of 8 columns (with W8 as vec4 stores).
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
layout(local_size_x = 64) in;
#include "store64.glsl"
#include "index.glsl"
layout(constant_id = 0) const bool W8 = true; // w % 8 == 0

layout(binding = 0, rgba32f) uniform readonly imageBuffer m4;  // [16][cout][cols]
layout(binding = 1, r32f) uniform readonly imageBuffer bias;   // [cout]
layout(binding = 2, r32f) uniform readonly imageBuffer vec;    // [n, cout] or unused
layout(binding = 3, rgba32f) uniform readonly imageBuffer res4; // [n, cout, h, w] or unused
layout(binding = 4, r32f) uniform readonly imageBuffer res;    // the same
layout(std430, binding = 5) writeonly buffer Y { float y[]; }; // [n, cout, h, w]
layout(std430, binding = 6) writeonly buffer Y4 { u64vec2 y4[]; }; // the same

layout(push_constant) uniform P {
  uint cout, h, w, th, qpr;
  uint r0, rows, cols;
  uint vec_stride, vec_off, has_res; // vec_stride 0: no vec
  float out_scale;
} p;

void main() {
  // Invocations run over (channel, quad) of the chunk's rows * qpr quads.
  uint id = flat_index(), nq = p.rows * p.qpr;
  bool live = id < p.cout * nq;
  uint co = min(div_fast(id, nq), p.cout - 1);
  uint qc = live ? id - co * nq : 0;
  uint rr = div_fast(qc, p.qpr);
  uint tx0 = 4 * (qc - rr * p.qpr), r = p.r0 + rr;
  uint img = div_fast(r, p.th), ty = r - img * p.th;

  vec4 m[16];
  [[unroll]] for (uint pos = 0; pos < 16; pos++)
    m[pos] = imageLoad(m4, int(((pos * p.cout + co) * p.cols) / 4 + qc));
  float init = imageLoad(bias, int(co)).x;
  float vv = imageLoad(vec, p.vec_stride != 0 ? int(img * p.vec_stride + p.vec_off + co) : 0).x;
  init = p.vec_stride != 0 ? init + vv : init;

  // o[i][c]: output row 2 ty + i, column 2 tx0 + c.
  float o[2][8];
  [[unroll]] for (uint j = 0; j < 4; j++) {
    float a[2][4]; // A^T M: rows s0 + s1 + s2 and s1 - s2 - s3
    [[unroll]] for (uint l = 0; l < 4; l++) {
      a[0][l] = m[l][j] + m[4 + l][j] + m[8 + l][j];
      a[1][l] = m[4 + l][j] - m[8 + l][j] - m[12 + l][j];
    }
    [[unroll]] for (uint i = 0; i < 2; i++) {
      o[i][2 * j] = init + (a[i][0] + a[i][1] + a[i][2]);
      o[i][2 * j + 1] = init + (a[i][1] - a[i][2] - a[i][3]);
    }
  }
  uint obase = (img * p.cout + co) * p.h * p.w;
  int ox0 = int(2 * tx0);
  [[unroll]] for (uint i = 0; i < 2; i++) {
    int orow = int(obase + min(2 * ty + i, p.h - 1) * p.w);
    if (W8) {
      [[unroll]] for (uint hq = 0; hq < 2; hq++) {
        vec4 rv = imageLoad(res4, p.has_res != 0 ? (orow + ox0) / 4 + int(hq) : 0);
        [[unroll]] for (uint c = 0; c < 4; c++)
          o[i][4 * hq + c] = p.has_res != 0 ? (rv[c] + o[i][4 * hq + c]) / p.out_scale
                                            : o[i][4 * hq + c];
      }
    } else {
      [[unroll]] for (uint c = 0; c < 8; c++) {
        int ox = min(ox0 + int(c), int(p.w) - 1);
        float rv = imageLoad(res, p.has_res != 0 ? orow + ox : 0).x;
        o[i][c] = p.has_res != 0 ? (rv + o[i][c]) / p.out_scale : o[i][c];
      }
    }
  }
  if (live) {
    [[unroll]] for (uint i = 0; i < 2; i++) {
      if (2 * ty + i < p.h) {
        uint orow = obase + (2 * ty + i) * p.w;
        if (W8) {
          [[unroll]] for (uint hq = 0; hq < 2; hq++)
            y4[(orow + ox0) / 4 + hq] = bits64(vec4(o[i][4 * hq], o[i][4 * hq + 1],
                                                    o[i][4 * hq + 2], o[i][4 * hq + 3]));
        } else {
          [[unroll]] for (uint c = 0; c < 8; c++)
            if (ox0 + int(c) < int(p.w)) y[orow + ox0 + c] = o[i][c];
        }
      }
    }
  }
}
