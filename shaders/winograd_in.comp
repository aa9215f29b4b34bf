#version 450
// Winograd F(2x2, 3x3) input transform (Lavin & Gray 2016), the first of
// the three steps of a CPU-device 3x3 convolution (ops/conv2d_winograd.c):
// for each 4x4 input patch d of a 2x2 output tile (padding 1, zero
// outside), V = B^T d B, stored as 16 matrices [position][cin][column],
// column = tile of this chunk of tile rows, each tile row padded to whole
// quads of 4 tiles.  B^T d B only adds and subtracts.
//
// One invocation is a quad of 4 consecutive tiles of one channel's tile
// row: it reads 4 input rows of 10 columns (with W8, w % 8 == 0, as 4
// vec4 image loads a row: image loads gather inline on llvmpipe) and
// stores 16 vec4s, each as two 64-bit halves (store64.glsl).  Columns past
// the chunk's tiles (padding to the GEMM's 16) get zeros.
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
layout(local_size_x = 64) in;
#include "store64.glsl"
#include "index.glsl"
layout(constant_id = 0) const bool W8 = true; // w % 8 == 0

layout(binding = 0, rgba32f) uniform readonly imageBuffer x4; // [n, cin, h, w]
layout(binding = 1, r32f) uniform readonly imageBuffer x;     // the same
layout(std430, binding = 2) writeonly buffer V4 { u64vec2 v4[]; }; // [16][cin][cols]

layout(push_constant) uniform P {
  uint cin, h, w, th;  // th: tile rows per image, (h + 1) / 2
  uint qpr;            // quads per tile row, (w + 7) / 8
  uint r0, rows;       // the chunk: tile rows r0 .. r0 + rows - 1 of n * th
  uint cols;           // columns per (position, channel), a multiple of 16
} p;

void main() {
  // Invocations run over (channel, quad); quads of a channel: cols / 4.
  uint id = flat_index(), nq = p.cols / 4;
  uint ci = min(div_fast(id, nq), p.cin - 1), q = id - ci * nq;
  uint rr = div_fast(q, p.qpr);
  uint tx0 = 4 * (q - rr * p.qpr), r = p.r0 + rr;
  uint img = div_fast(r, p.th), ty = r - img * p.th;
  bool live = rr < p.rows;
  int cb = int(2 * tx0); // first input column of the quad's tiles, + 1
  int base = int((img * p.cin + ci) * p.h * p.w);

  // d[i][c]: input row 2 ty - 1 + i, column cb - 1 + c.
  float d[4][10];
  [[unroll]] for (uint i = 0; i < 4; i++) {
    int iy = int(2 * ty) - 1 + int(i);
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
  float u[4][10];
  [[unroll]] for (uint c = 0; c < 10; c++) {
    u[0][c] = d[0][c] - d[2][c];
    u[1][c] = d[1][c] + d[2][c];
    u[2][c] = d[2][c] - d[1][c];
    u[3][c] = d[1][c] - d[3][c];
  }
  // V = u B for each tile j (columns 2j .. 2j + 3 of u), position 4k + l.
  float v[16][4];
  [[unroll]] for (uint j = 0; j < 4; j++) {
    [[unroll]] for (uint k = 0; k < 4; k++) {
      v[4 * k + 0][j] = u[k][2 * j] - u[k][2 * j + 2];
      v[4 * k + 1][j] = u[k][2 * j + 1] + u[k][2 * j + 2];
      v[4 * k + 2][j] = u[k][2 * j + 2] - u[k][2 * j + 1];
      v[4 * k + 3][j] = u[k][2 * j + 1] - u[k][2 * j + 3];
    }
  }
  if (id < p.cin * nq) {
    [[unroll]] for (uint pos = 0; pos < 16; pos++)
      v4[((pos * p.cin + ci) * p.cols) / 4 + q] = bits64(vec4(v[pos][0], v[pos][1], v[pos][2], v[pos][3]));
  }
}
