#version 450
// Winograd F(4x4, 3x3) output transform, the last step of a CPU-device 3x3
// convolution on the widest levels (ops/conv2d_winograd.c): for each 4x4
// output tile, Y = A^T M A of its 36 GEMM results M [position][cout][column],
// then the convolution's epilogue: + bias (+ vec), then (res + y) / out_scale.
//
// One invocation is a pair of consecutive tiles of one output channel's
// tile row (half a quad of winograd4_in.comp): 36 vec4 image loads (half
// of each is the pair's), then 4 output rows of 8 columns (with W8 as vec4
// stores).
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
layout(local_size_x = 64) in;
#include "store64.glsl"
#include "index.glsl"
layout(constant_id = 0) const bool W8 = true; // w % 8 == 0

layout(binding = 0, rgba32f) uniform readonly imageBuffer m4;  // [36][cout][cols]
layout(binding = 1, r32f) uniform readonly imageBuffer bias;   // [cout]
layout(binding = 2, r32f) uniform readonly imageBuffer vec;    // [n, cout] or unused
layout(binding = 3, rgba32f) uniform readonly imageBuffer res4; // [n, cout, h, w] or unused
layout(binding = 4, r32f) uniform readonly imageBuffer res;    // the same
layout(std430, binding = 5) writeonly buffer Y { float y[]; }; // [n, cout, h, w]
layout(std430, binding = 6) writeonly buffer Y4 { u64vec2 y4[]; }; // the same

layout(push_constant) uniform P {
  uint cout, h, w, th, upr; // upr: pairs per tile row
  uint r0, rows, cols;
  uint vec_stride, vec_off, has_res; // vec_stride 0: no vec
  float out_scale;
} p;

// A^T e for a column (or row) e of 6 values.
float[4] at(float e0, float e1, float e2, float e3, float e4, float e5) {
  float s = e1 + e2, t = e1 - e2, s2 = e3 + e4, t2 = e3 - e4;
  return float[4](e0 + s + s2, t + 2.0 * t2, s + 4.0 * s2, t + 8.0 * t2 + e5);
}

void main() {
  // Invocations run over (channel, pair) of the chunk's rows * upr pairs.
  uint id = flat_index(), np = p.rows * p.upr;
  bool live = id < p.cout * np;
  uint co = min(div_fast(id, np), p.cout - 1);
  uint qc = live ? id - co * np : 0;
  uint rr = div_fast(qc, p.upr);
  uint pr = qc - rr * p.upr, r = p.r0 + rr;
  uint img = div_fast(r, p.th), ty = r - img * p.th;
  // A tile row's quads of winograd4_in.comp may end in a pair past w.
  live = live && 8 * pr < p.w;
  pr = live ? pr : 0;

  // Pair qc's two columns: half of texel qc / 2 (cols % 16 == 0).
  vec2 m[36];
  [[unroll]] for (uint pos = 0; pos < 36; pos++) {
    vec4 t = imageLoad(m4, int(((pos * p.cout + co) * p.cols) / 4 + qc / 2));
    m[pos] = (qc & 1) != 0 ? t.zw : t.xy;
  }
  float init = imageLoad(bias, int(co)).x;
  float vv = imageLoad(vec, p.vec_stride != 0 ? int(img * p.vec_stride + p.vec_off + co) : 0).x;
  init = p.vec_stride != 0 ? init + vv : init;

  // o[i][c]: output row 4 ty + i, column 8 pr + c.
  float o[4][8];
  [[unroll]] for (uint j = 0; j < 2; j++) {
    float a[4][6]; // A^T M
    [[unroll]] for (uint l = 0; l < 6; l++) {
      float t[4] = at(m[l][j], m[6 + l][j], m[12 + l][j], m[18 + l][j], m[24 + l][j],
                      m[30 + l][j]);
      [[unroll]] for (uint i = 0; i < 4; i++) a[i][l] = t[i];
    }
    [[unroll]] for (uint i = 0; i < 4; i++) {
      float t[4] = at(a[i][0], a[i][1], a[i][2], a[i][3], a[i][4], a[i][5]);
      [[unroll]] for (uint c = 0; c < 4; c++) o[i][4 * j + c] = init + t[c];
    }
  }
  uint obase = (img * p.cout + co) * p.h * p.w;
  int ox0 = int(8 * pr);
  [[unroll]] for (uint i = 0; i < 4; i++) {
    int orow = int(obase + min(4 * ty + i, p.h - 1) * p.w);
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
    [[unroll]] for (uint i = 0; i < 4; i++) {
      if (4 * ty + i < p.h) {
        uint orow = obase + (4 * ty + i) * p.w;
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
