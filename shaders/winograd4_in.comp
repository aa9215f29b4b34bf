#version 450
// Winograd F(4x4, 3x3) input transform (Lavin & Gray 2016), the first of
// the three steps of a CPU-device 3x3 convolution on the widest levels
// (ops/conv2d_winograd.c): for each 6x6 input patch d of a 4x4 output tile
// (padding 1, zero outside), V = B^T d B, stored as 36 matrices
// [position][cin][column], column = tile of this chunk of tile rows, each
// tile row padded to whole pairs of 2 tiles.
//
// One invocation is a quad of 4 consecutive tiles of one channel's tile
// row (16 output columns): 6 input rows of 18 columns (with V4, w % 4 == 0,
// as 6 vec4 image loads a row), then 36 stores of 4 floats, each as two
// 64-bit halves (store64.glsl; pairs of tiles and vec2 stores took
// longer).  Columns past the chunk's tiles (padding to the GEMM's 16) get
// zeros.
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
layout(local_size_x = 64) in;
#include "store64.glsl"
#include "index.glsl"
layout(constant_id = 0) const bool V4 = true; // w % 4 == 0

layout(binding = 0, rgba32f) uniform readonly imageBuffer x4; // [n, cin, h, w]
layout(binding = 1, r32f) uniform readonly imageBuffer x;     // the same
layout(std430, binding = 2) writeonly buffer V4s { u64vec2 v4[]; }; // [36][cin][cols]

layout(push_constant) uniform P {
  uint cin, h, w, th;  // th: tile rows per image, (h + 3) / 4
  uint upr;            // quads per tile row, (w + 15) / 16
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
  // Invocations run over (channel, quad); quads of a channel: cols / 4.
  uint id = flat_index(), nq = p.cols / 4;
  uint ci = min(div_fast(id, nq), p.cin - 1), q = id - ci * nq;
  uint rr = div_fast(q, p.upr);
  uint qr = q - rr * p.upr, r = p.r0 + rr;
  uint img = div_fast(r, p.th), ty = r - img * p.th;
  bool live = rr < p.rows;
  int cb = int(16 * qr); // first input column of the quad's tiles, + 1
  int base = int((img * p.cin + ci) * p.h * p.w);

  // d[i][c]: input row 4 ty - 1 + i, column cb - 1 + c.
  float d[6][18];
  [[unroll]] for (uint i = 0; i < 6; i++) {
    int iy = int(4 * ty) - 1 + int(i);
    bool row_ok = live && iy >= 0 && iy < int(p.h);
    int rowb = base + iy * int(p.w);
    if (V4) {
      // Texels k = 0 .. 5 hold columns cb - 4 + 4k .. cb - 1 + 4k: whole
      // texels of the row or wholly outside it.
      vec4 t[6];
      [[unroll]] for (uint k = 0; k < 6; k++) {
        int c0 = cb - 4 + 4 * int(k);
        bool ok = row_ok && c0 >= 0 && c0 < int(p.w);
        vec4 v = imageLoad(x4, ok ? (rowb + c0) / 4 : 0);
        t[k] = ok ? v : vec4(0.0);
      }
      d[i][0] = t[0].w;
      [[unroll]] for (uint c = 1; c < 17; c++) d[i][c] = t[(c + 3) / 4][(c + 3) % 4];
      d[i][17] = t[5].x;
    } else {
      [[unroll]] for (uint c = 0; c < 18; c++) {
        int ix = cb - 1 + int(c);
        bool ok = row_ok && ix >= 0 && ix < int(p.w);
        float v = imageLoad(x, ok ? rowb + ix : 0).x;
        d[i][c] = ok ? v : 0.0;
      }
    }
  }
  // u = B^T d, column by column.
  float u[6][18];
  [[unroll]] for (uint c = 0; c < 18; c++) {
    float t[6] = bt(d[0][c], d[1][c], d[2][c], d[3][c], d[4][c], d[5][c]);
    [[unroll]] for (uint k = 0; k < 6; k++) u[k][c] = t[k];
  }
  // V = u B for each tile j (columns 4j .. 4j + 5 of u), position 6k + l.
  float v[36][4];
  [[unroll]] for (uint j = 0; j < 4; j++) {
    [[unroll]] for (uint k = 0; k < 6; k++) {
      float t[6] = bt(u[k][4 * j], u[k][4 * j + 1], u[k][4 * j + 2], u[k][4 * j + 3],
                      u[k][4 * j + 4], u[k][4 * j + 5]);
      [[unroll]] for (uint l = 0; l < 6; l++) v[6 * k + l][j] = t[l];
    }
  }
  if (id < p.cin * nq) {
    [[unroll]] for (uint pos = 0; pos < 36; pos++)
      v4[((pos * p.cin + ci) * p.cols) / 4 + q] =
        bits64(vec4(v[pos][0], v[pos][1], v[pos][2], v[pos][3]));
  }
}
