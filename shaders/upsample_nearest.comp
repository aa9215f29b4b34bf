#version 450
// Nearest-neighbour 2x upsampling, NCHW.  With W4 (w % 4 == 0) one
// invocation reads 4 pixels of an input row as one vec4 image load and
// writes them to 2 output rows as 4 vec4 stores; otherwise one invocation
// is one output pixel.  Divisions by the sizes go through div_fast (exact
// for quotients below 2^23; `exact` asks for divisions past 2^20 rows):
// llvmpipe turns a vector integer division into a division per lane.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "index.glsl"
layout(constant_id = 0) const bool W4 = true;

layout(binding = 0, r32f) uniform readonly imageBuffer x;     // [nc, h, w]
layout(binding = 1, rgba32f) uniform readonly imageBuffer x4; // the same
layout(std430, binding = 2) writeonly buffer Y { float y[]; };  // [nc, 2h, 2w]
layout(std430, binding = 3) writeonly buffer Y4 { vec4 y4[]; }; // the same

layout(push_constant) uniform P { uint nc, h, w, exact; } p;

uint div(uint a, uint b) {
  uint q;
  if (p.exact != 0)
    q = a / b;
  else
    q = div_fast(a, b);
  return q;
}

void main() {
  uint idx = flat_index();
  if (W4) {
    uint q = p.w / 4;
    if (idx >= p.nc * p.h * q) return;
    uint row = div(idx, q), c = div(row, p.h);
    uint iy = row - c * p.h, qx = idx - row * q;
    vec4 v = imageLoad(x4, int(idx)); // rows are whole vec4s: texel idx is (row, qx)
    uint o4 = ((c * 2 * p.h + 2 * iy) * 2 * p.w + 8 * qx) / 4, row4 = p.w / 2;
    y4[o4] = v.xxyy;
    y4[o4 + 1] = v.zzww;
    y4[o4 + row4] = v.xxyy;
    y4[o4 + row4 + 1] = v.zzww;
    return;
  }
  uint wo = 2 * p.w, ho = 2 * p.h;
  if (idx >= p.nc * ho * wo) return;
  uint r = div(idx, wo), c = div(r, ho);
  uint ox = idx - r * wo, oy = r - c * ho;
  y[idx] = imageLoad(x, int((c * p.h + oy / 2) * p.w + ox / 2)).x;
}
