#version 450
// Winograd F(4x4, 3x3) input transform (Lavin & Gray 2016), the first of
// the three steps of a CPU-device 3x3 convolution on the widest levels
// (ops/conv2d_winograd.c): for each 6x6 input patch d of a 4x4 output tile
// (padding 1, zero outside), V = B^T d B, stored as 36 matrices
// [position][cin][column], column = tile of this chunk of tile rows, each
// tile row padded to whole pairs of 2 tiles.
//
// One invocation is a pair of consecutive tiles of one channel's tile row
// (8 output columns, as a quad of winograd_in.comp): 6 input rows of 10
// columns (with W8, w % 8 == 0, as 4 vec4 image loads a row), then 36 vec2
// stores.  Columns past the chunk's tiles (padding to the GEMM's 16) get
// zeros.
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "index.glsl"
layout(constant_id = 0) const bool W8 = true; // w % 8 == 0

layout(binding = 0, rgba32f) uniform readonly imageBuffer x4; // [n, cin, h, w]
layout(binding = 1, r32f) uniform readonly imageBuffer x;     // the same
layout(std430, binding = 2) writeonly buffer V2 { vec2 v2[]; }; // [36][cin][cols]

layout(push_constant) uniform P {
  uint cin, h, w, th;  // th: tile rows per image, (h + 3) / 4
  uint upr;            // pairs per tile row, (w + 7) / 8
  uint r0, rows;       // the chunk: tile rows r0 .. r0 + rows - 1 of n * th
  uint cols;           // columns per (position, channel), a multiple of 16
} p;

// B^T e for a column (or row) e of 6 values.
float[6] bt(float e0, float e1, float e2, float e3, float e4, float e5) {
  return float[6](4.0 * e0 - 5.0 * e2 + e4,
                  e3 + e4 - 4.0 * (e1 + e2),
                  e4 - e3 + 4.0 * (e1 - e2),
                  2.0 * (e3 - e1) + (e4 - e2),
                  2.0 * (e1 - e3) + (e4 - e2),
                  4.0 * e1 - 5.0 * e3 + e5);
}

void main() {
  // Invocations run over (channel, pair); pairs of a channel: cols / 2.
  uint id = flat_index(), np = p.cols / 2;
  uint ci = min(div_fast(id, np), p.cin - 1), q = id - ci * np;
  uint rr = div_fast(q, p.upr);
  uint pr = q - rr * p.upr, r = p.r0 + rr;
  uint img = div_fast(r, p.th), ty = r - img * p.th;
  bool live = rr < p.rows;
  int cb = int(8 * pr); // first input column of the pair's tiles, + 1
  int base = int((img * p.cin + ci) * p.h * p.w);

  // d[i][c]: input row 4 ty - 1 + i, column cb - 1 + c.
  float d[6][10];
  [[unroll]] for (uint i = 0; i < 6; i++) {
    int iy = int(4 * ty) - 1 + int(i);
    bool row_ok = live && iy >= 0 && iy < int(p.h);
    int rowb = base + iy * int(p.w);
    if (W8) {
      bool a_ok = row_ok && cb > 0, e_ok = row_ok && cb + 8 < int(p.w);
      vec4 a = imageLoad(x4, a_ok ? (rowb + cb - 4) / 4 : 0);
      vec4 b = imageLoad(x4, row_ok ? (rowb + cb) / 4 : 0);
      vec4 c = imageLoad(x4, row_ok ? (rowb + cb + 4) / 4 : 0);
      vec4 e = imageLoad(x4, e_ok ? (rowb + cb + 8) / 4 : 0);
      a = a_ok ? a : vec4(0.0);
      b = row_ok ? b : vec4(0.0);
      c = row_ok ? c : vec4(0.0);
      e = e_ok ? e : vec4(0.0);
      d[i] = float[10](a.w, b.x, b.y, b.z, b.w, c.x, c.y, c.z, c.w, e.x);
    } else {
      [[unroll]] for (uint c = 0; c < 10; c++) {
        int ix = cb - 1 + int(c);
        bool ok = row_ok && ix >= 0 && ix < int(p.w);
        float v = imageLoad(x, ok ? rowb + ix : 0).x;
        d[i][c] = ok ? v : 0.0;
      }
    }
  }
  // u = B^T d, column by column.
  float u[6][10];
  [[unroll]] for (uint c = 0; c < 10; c++) {
    float t[6] = bt(d[0][c], d[1][c], d[2][c], d[3][c], d[4][c], d[5][c]);
    [[unroll]] for (uint k = 0; k < 6; k++) u[k][c] = t[k];
  }
  // V = u B for each tile j (columns 4j .. 4j + 5 of u), position 6k + l.
  float v[36][2];
  [[unroll]] for (uint j = 0; j < 2; j++) {
    [[unroll]] for (uint k = 0; k < 6; k++) {
      float t[6] = bt(u[k][4 * j], u[k][4 * j + 1], u[k][4 * j + 2], u[k][4 * j + 3],
                      u[k][4 * j + 4], u[k][4 * j + 5]);
      [[unroll]] for (uint l = 0; l < 6; l++) v[6 * k + l][j] = t[l];
    }
  }
  if (id < p.cin * np) {
    [[unroll]] for (uint pos = 0; pos < 36; pos++)
      v2[((pos * p.cin + ci) * p.cols) / 2 + q] = vec2(v[pos][0], v[pos][1]);
  }
}
