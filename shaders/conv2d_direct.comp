#version 450
// 2-D convolution for CPU devices (lavapipe), without shared memory: there a
// workgroup barrier switches between coroutines of every SIMD slice, and a
// storage-buffer load runs lane by lane behind branches, while a texel fetch
// is one vector gather.  So the input and the weights come in as
// samplerBuffers, and each invocation computes CB output channels x PX
// consecutive output pixels, registers reused CB times per input fetch and
// PX times per weight fetch.  Weights are pre-transposed by op_conv2d to
// [cin * k * k][cout padded to CB], 4 output channels per vec4 texel, so a
// weight fetch is uniform across the SIMD lanes.  Same push constants and
// epilogue as conv2d.comp.
layout(local_size_x_id = 3) in; // LX, fewer for small images

layout(binding = 0) uniform samplerBuffer x;   // [n, cin, h, w]
layout(binding = 1) uniform samplerBuffer wt;  // transposed, vec4 texels
layout(std430, binding = 2) readonly buffer B { float bias[]; };
layout(std430, binding = 3) readonly buffer V { float vec[]; };
layout(std430, binding = 4) readonly buffer R { float res[]; };
layout(std430, binding = 5) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P {
  uint n, cin, h, w, cout, ho, wo, k, stride;
  int pad_t, pad_l;
  uint has_vec, has_res;
  float out_scale;
} p;

layout(constant_id = 0) const uint KS = 3;
layout(constant_id = 1) const uint CB = 32; // output channels, multiple of 4
layout(constant_id = 2) const uint PX = 3;  // output pixels
const uint KK = KS * KS;

void main() {
  uint hw_out = p.ho * p.wo;
  uint npix = p.n * hw_out;
  uint pb = (gl_WorkGroupID.z * gl_NumWorkGroups.x + gl_WorkGroupID.x) *
            gl_WorkGroupSize.x + gl_LocalInvocationID.x;
  uint co0 = gl_WorkGroupID.y * CB;
  uint row4 = (p.cout + CB - 1) / CB * (CB / 4); // texels per weight row
  uint hwin = p.h * p.w;

  int iy0[PX], ix0[PX], xb[PX];
  for (uint j = 0; j < PX; j++) {
    uint pg = pb * PX + j;
    uint nb = pg / hw_out, q = pg % hw_out;
    // Pixels past the end read nothing (iy far out of range).
    iy0[j] = pg < npix ? int((q / p.wo) * p.stride) - p.pad_t : -(1 << 20);
    ix0[j] = int((q % p.wo) * p.stride) - p.pad_l;
    xb[j] = int(nb * p.cin * hwin);
  }

  float acc[CB][PX];
  for (uint i = 0; i < CB; i++)
    for (uint j = 0; j < PX; j++) acc[i][j] = 0.0;

  for (uint ky = 0; ky < KS; ky++) {
    for (uint kx = 0; kx < KS; kx++) {
      int off[PX]; // input index at channel 0, or -1 in the padding
      for (uint j = 0; j < PX; j++) {
        int iy = iy0[j] + int(ky), ix = ix0[j] + int(kx);
        bool inside = iy >= 0 && iy < int(p.h) && ix >= 0 && ix < int(p.w);
        off[j] = inside ? xb[j] + iy * int(p.w) + ix : -1;
      }
      uint wrow = (ky * KS + kx) * row4 + co0 / 4;
      for (uint ci = 0; ci < p.cin; ci++) {
        int cofs = int(ci * hwin);
        float xv[PX];
        for (uint j = 0; j < PX; j++)
          xv[j] = off[j] >= 0 ? texelFetch(x, off[j] + cofs).x : 0.0;
        uint wi = ci * KK * row4 + wrow;
        for (uint i = 0; i < CB / 4; i++) {
          vec4 w4 = texelFetch(wt, int(wi + i));
          for (uint j = 0; j < PX; j++) {
            acc[4 * i][j] += w4.x * xv[j];
            acc[4 * i + 1][j] += w4.y * xv[j];
            acc[4 * i + 2][j] += w4.z * xv[j];
            acc[4 * i + 3][j] += w4.w * xv[j];
          }
        }
      }
    }
  }

  for (uint i = 0; i < CB; i++) {
    uint co = co0 + i;
    if (co >= p.cout) break;
    for (uint j = 0; j < PX; j++) {
      uint pg = pb * PX + j;
      if (pg >= npix) break;
      uint nb = pg / hw_out, q = pg % hw_out;
      uint o = (nb * p.cout + co) * hw_out + q;
      float v = acc[i][j] + bias[co];
      if (p.has_vec != 0) v += vec[nb * p.cout + co];
      if (p.has_res != 0) v = (res[o] + v) / p.out_scale;
      y[o] = v;
    }
  }
}
