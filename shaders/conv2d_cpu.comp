#version 450
// 2-D convolution for CPU devices (lavapipe): one dispatch adds the
// contribution of KC input channels to all output channels;
// ops/conv2d_cpu.c records cin / KC of them.
//
// How llvmpipe (Mesa's JIT behind lavapipe) compiles a shader decides this
// shape.  It runs SIMD-width invocations as one vector.  Outside every loop
// and branch, a shared-memory read at a constant address is one scalar
// load folded into the multiply as a broadcast, and an image load at
// per-lane texels is an inline gather with one bounds check per texel (a
// uniform buffer checks and gathers every component apart, which made the
// weights cost 14% more); inside a loop or branch the same reads go lane
// by lane.  So:
//  - one invocation is one output channel and keeps a TH x TW tile of
//    output pixels in registers;
//  - the workgroup stages the input tile of its KC channels into shared
//    memory, and every tap reads it at constant offsets (a broadcast);
//  - weights come from one rgba32ui image, one texel per gather: 4
//    consecutive float32 weights (channel, tap) of the lane's output
//    channel, or with F16 8 IEEE halves, 2 per word;
//  - after the staging, no loop or branch: the KC x KS x KS taps are
//    unrolled (the body is large; Mesa caches the compiled code).
// Epilogue in torch's order: bias (+ vec) on the first slice, the slices'
// sum, then (res + y) / out_scale after the last.
// Split (split_stride > 0, for grids too small to fill the threads): one
// dispatch runs every slice, workgroup row y / cblocks being the slice,
// and writes slice s's sum (bias and vec in slice 0's) at s * split_stride
// of y; conv2d_sum_slices.comp adds them in slice order and applies res.
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 0) in;                // output channels per workgroup
#include "store64.glsl"

layout(constant_id = 1) const uint KS = 3;     // kernel size
layout(constant_id = 2) const uint STRIDE = 1;
layout(constant_id = 3) const uint KC = 32;    // input channels per dispatch
layout(constant_id = 4) const uint TH = 2;     // output tile rows
layout(constant_id = 5) const uint TW = 8;     // output tile columns
layout(constant_id = 6) const bool V4 = true;  // rows in whole vec4s (w % 4 == 0)
layout(constant_id = 7) const uint PAD = 1;    // left padding (V4 only)
layout(constant_id = 8) const bool F16 = false; // weights as packed halves
const uint KK = KS * KS;
const uint WPV = F16 ? 8 : 4;                  // weights per texel
const uint K4 = KC * KK / WPV;                 // texels per output channel
const uint LANES = 8;                          // channels whose texels interleave
const uint IH = (TH - 1) * STRIDE + KS;        // staged input rows
// Staged input columns: exactly the tile's, or with V4 a span of whole
// vec4s starting PAD4 - PAD before the tile's first input column.
const uint PAD4 = (PAD + 3) / 4 * 4;
const uint OFF = V4 ? PAD4 - PAD : 0;
const uint IW = V4 ? ((TW - 1) * STRIDE + KS + OFF + 3) / 4 * 4 : (TW - 1) * STRIDE + KS;
const uint TILE = KC * IH * IW;

layout(binding = 0, r32f) uniform readonly imageBuffer x;    // [n, cin, h, w]
layout(binding = 1, r32f) uniform readonly imageBuffer part; // y so far
layout(binding = 2, r32f) uniform readonly imageBuffer bias; // [cout]
layout(binding = 3, r32f) uniform readonly imageBuffer vec;  // [n, cout] or unused
layout(binding = 4, r32f) uniform readonly imageBuffer res;  // [n, cout, ho, wo] or unused
layout(std430, binding = 5) writeonly buffer Y { float y[]; };
// With V4 (wo % 4 == 0), part, res and y are read and written 4 pixels at a
// time: a lane-by-lane store then moves 4 floats per lane, not 1.
layout(binding = 6, rgba32f) uniform readonly imageBuffer part4;
layout(binding = 7, rgba32f) uniform readonly imageBuffer res4;
layout(std430, binding = 8) writeonly buffer Y4 { u64vec2 y4[]; };
layout(binding = 9, rgba32f) uniform readonly imageBuffer x4;
// Weights, per slice [output channel / 8][K4][output channel % 8] texels:
// texel k / WPV of a channel holds weights k .. k + WPV - 1 of the slice,
// k = channel * KK + tap (float bits, or two halves per word, the lower
// first).  8 channels' texels side by side make one vector's gather read
// 128 contiguous bytes.
layout(binding = 10, rgba32ui) uniform readonly uimageBuffer wimg;

layout(push_constant) uniform Push {
  uint cin, h, w, cout, ho, wo;
  int pad_t, pad_l;
  uint tiles_y, nb0;              // tile rows per image, first image
  uint c0;                        // first input channel
  uint first, last, vec_stride, vec_off, has_res; // vec_stride 0: no vec
  float out_scale;
  uint wbase;                     // first texel of this slice's weights
  uint cblocks, slice_texels, split_stride; // split: see above
  uint img_texels;                // weight texels between images (Winograd's
                                  // positions have weights of their own)
  uint has_bias;
} p;

shared float xs[V4 ? 1 : TILE];
shared vec4 xs4[V4 ? TILE / 4 : 1];

float staged(uint i) { return V4 ? xs4[i / 4][i % 4] : xs[i]; }

// Weight k (channel * KK + tap) of the slice for output channel wcol; k is
// a constant once unrolled, so the loads of one texel are one gather.
float weight(uint wbase, uint wcol, uint k) {
  uint texel = wbase + (wcol / LANES * K4 + k / WPV) * LANES + wcol % LANES;
  uint word = imageLoad(wimg, int(texel))[k % WPV / (F16 ? 2 : 1)];
  return F16 ? unpackHalf2x16(word)[k % 2] : uintBitsToFloat(word);
}

void main() {
  uint lid = gl_LocalInvocationID.x;
  uint slice = p.split_stride != 0 ? gl_WorkGroupID.y / p.cblocks : 0;
  uint cblock = gl_WorkGroupID.y - slice * p.cblocks;
  uint c0 = p.c0 + slice * KC;
  // Workgroups: x tile columns, y output channels (and slices), z tile rows of images
  // nb0 ...; z < 65536, so the float division is exact.
  uint rows = gl_WorkGroupID.z, img = uint((float(rows) + 0.5) / float(p.tiles_y));
  uint nb = p.nb0 + img;
  uint wbase = p.wbase + slice * p.slice_texels + nb * p.img_texels;
  uint oy0 = (rows - img * p.tiles_y) * TH, ox0 = gl_WorkGroupID.x * TW;
  int iy0 = int(oy0 * STRIDE) - p.pad_t, ix0 = int(ox0 * STRIDE) - p.pad_l;

  // Stage the input tile, zero outside the image and past cin.
  uint xb = (nb * p.cin + c0) * p.h * p.w;
  if (V4) {
    int col0 = int(ox0 * STRIDE) - int(PAD4);
    [[unroll]] for (uint i = 0; i < (TILE / 4 + gl_WorkGroupSize.x - 1) / gl_WorkGroupSize.x; i++) {
      uint e = i * gl_WorkGroupSize.x + lid;
      if (e < TILE / 4) {
        uint ci = e / (IH * IW / 4), r = e % (IH * IW / 4);
        int iy = iy0 + int(r / (IW / 4)), ix = col0 + 4 * int(r % (IW / 4));
        bool ok = c0 + ci < p.cin && iy >= 0 && iy < int(p.h) && ix >= 0 && ix < int(p.w);
        vec4 v = imageLoad(x4, ok ? (int(xb + ci * p.h * p.w) + iy * int(p.w) + ix) / 4 : 0);
        xs4[e] = ok ? v : vec4(0.0);
      }
    }
  } else {
    [[unroll]] for (uint i = 0; i < (TILE + gl_WorkGroupSize.x - 1) / gl_WorkGroupSize.x; i++) {
      uint e = i * gl_WorkGroupSize.x + lid;
      if (e < TILE) {
        uint ci = e / (IH * IW), r = e % (IH * IW);
        int iy = iy0 + int(r / IW), ix = ix0 + int(r % IW);
        bool ok = c0 + ci < p.cin && iy >= 0 && iy < int(p.h) && ix >= 0 && ix < int(p.w);
        float v = imageLoad(x, ok ? int(xb + ci * p.h * p.w) + iy * int(p.w) + ix : 0).x;
        xs[e] = ok ? v : 0.0;
      }
    }
  }
  barrier();

  uint wcol = cblock * gl_WorkGroupSize.x + lid;
  float acc[TH * TW];
  [[unroll]] for (uint j = 0; j < TH * TW; j++) acc[j] = 0.0;
  [[unroll]] for (uint ci = 0; ci < KC; ci++) {
    float wv[KK];
    [[unroll]] for (uint t = 0; t < KK; t++)
      wv[t] = weight(wbase, wcol, ci * KK + t);
    [[unroll]] for (uint ky = 0; ky < KS; ky++)
      [[unroll]] for (uint kx = 0; kx < KS; kx++)
        [[unroll]] for (uint ty = 0; ty < TH; ty++)
          [[unroll]] for (uint tx = 0; tx < TW; tx++)
            acc[ty * TW + tx] += wv[ky * KS + kx] *
              staged((ci * IH + ty * STRIDE + ky) * IW + tx * STRIDE + kx + OFF);
  }

  uint co = wcol;
  uint cc = min(co, p.cout - 1);
  uint obase = (nb * p.cout + cc) * p.ho * p.wo;
  float init = imageLoad(bias, int(cc)).x;
  init = p.has_bias != 0 ? init : 0.0;
  float vv = imageLoad(vec, p.vec_stride != 0 ? int(nb * p.vec_stride + p.vec_off + cc) : 0).x;
  init = p.vec_stride != 0 ? init + vv : init;
  init = slice == 0 ? init : 0.0;
  uint y0 = slice * p.split_stride; // this slice's sum in y
  bool apply_res = p.last != 0 && p.has_res != 0;
  if (V4) {
    [[unroll]] for (uint ty = 0; ty < TH; ty++) {
      [[unroll]] for (uint q = 0; q < TW / 4; q++) {
        uint oy = min(oy0 + ty, p.ho - 1), ox = min(ox0 + 4 * q, p.wo - 4);
        int o4 = int(obase + oy * p.wo + ox) / 4;
        vec4 prev = imageLoad(part4, p.first != 0 ? 0 : o4);
        vec4 rv = imageLoad(res4, apply_res ? o4 : 0);
        [[unroll]] for (uint i = 0; i < 4; i++) {
          float v = (p.first != 0 ? init : prev[i]) + acc[ty * TW + 4 * q + i];
          acc[ty * TW + 4 * q + i] = apply_res ? (rv[i] + v) / p.out_scale : v;
        }
      }
    }
    if (co < p.cout) {
      [[unroll]] for (uint ty = 0; ty < TH; ty++)
        [[unroll]] for (uint q = 0; q < TW / 4; q++)
          if (oy0 + ty < p.ho && ox0 + 4 * q < p.wo)
            y4[(y0 + obase + (oy0 + ty) * p.wo + ox0) / 4 + q] =
              bits64(vec4(acc[ty * TW + 4 * q], acc[ty * TW + 4 * q + 1],
                          acc[ty * TW + 4 * q + 2], acc[ty * TW + 4 * q + 3]));
    }
    return;
  }
  [[unroll]] for (uint ty = 0; ty < TH; ty++) {
    [[unroll]] for (uint tx = 0; tx < TW; tx++) {
      uint oy = min(oy0 + ty, p.ho - 1), ox = min(ox0 + tx, p.wo - 1);
      int o = int(obase + oy * p.wo + ox);
      float prev = imageLoad(part, p.first != 0 ? 0 : o).x;
      float v = (p.first != 0 ? init : prev) + acc[ty * TW + tx];
      float rv = imageLoad(res, apply_res ? o : 0).x;
      acc[ty * TW + tx] = apply_res ? (rv + v) / p.out_scale : v;
    }
  }
  if (co < p.cout) {
    [[unroll]] for (uint ty = 0; ty < TH; ty++)
      [[unroll]] for (uint tx = 0; tx < TW; tx++)
        if (oy0 + ty < p.ho && ox0 + tx < p.wo)
          y[y0 + obase + (oy0 + ty) * p.wo + ox0 + tx] = acc[ty * TW + tx];
  }
}
