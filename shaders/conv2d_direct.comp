#version 450
// 2-D convolution without shared memory, for CPU devices (lavapipe): there a
// workgroup barrier switches between coroutines of every SIMD slice of the
// group, which costs more than the reuse it buys, while the CPU's caches
// already keep W and X close.  Each invocation computes 8 output channels x 4
// consecutive output pixels straight from global memory.  Same bindings,
// push constants and epilogue as conv2d.comp.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Wt { float w[]; };
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
const uint KK = KS * KS;

// Output channels per invocation: taken from the workgroup id so that the
// weight reads are uniform (one scalar load for all SIMD lanes on llvmpipe).
const uint CB = 8;

void main() {
  uint hw_out = p.ho * p.wo;
  uint npix = p.n * hw_out;
  uint pb = (gl_WorkGroupID.z * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64 +
            gl_LocalInvocationID.x;
  uint co0 = gl_WorkGroupID.y * CB;
  uint ktot = p.cin * KK;
  uint hwin = p.h * p.w;

  ivec4 iy0, ix0;
  uvec4 xb;
  bvec4 ok;
  for (uint j = 0; j < 4; j++) {
    uint pg = pb * 4 + j;
    ok[j] = pg < npix;
    uint pgc = ok[j] ? pg : 0;
    uint nb = pgc / hw_out, q = pgc % hw_out;
    iy0[j] = int((q / p.wo) * p.stride) - p.pad_t;
    ix0[j] = int((q % p.wo) * p.stride) - p.pad_l;
    xb[j] = nb * p.cin * hwin;
  }

  vec4 acc[CB];
  for (uint i = 0; i < CB; i++) acc[i] = vec4(0.0);
  for (uint ky = 0; ky < KS; ky++) {
    ivec4 iy = iy0 + int(ky);
    for (uint kx = 0; kx < KS; kx++) {
      ivec4 ix = ix0 + int(kx);
      bvec4 inb = bvec4(uvec4(ok) & uvec4(greaterThanEqual(iy, ivec4(0))) &
                        uvec4(lessThan(iy, ivec4(p.h))) &
                        uvec4(greaterThanEqual(ix, ivec4(0))) &
                        uvec4(lessThan(ix, ivec4(p.w))));
      uvec4 off = xb + uvec4(max(iy, 0)) * p.w + uvec4(max(ix, 0));
      uint kofs = ky * KS + kx;
      for (uint ci = 0; ci < p.cin; ci++) {
        uint cofs = ci * hwin;
        vec4 xv = vec4(inb.x ? x[off.x + cofs] : 0.0, inb.y ? x[off.y + cofs] : 0.0,
                       inb.z ? x[off.z + cofs] : 0.0, inb.w ? x[off.w + cofs] : 0.0);
        uint k = ci * KK + kofs;
        for (uint i = 0; i < CB; i++)
          acc[i] += w[min(co0 + i, p.cout - 1) * ktot + k] * xv;
      }
    }
  }

  for (uint i = 0; i < CB; i++) {
    uint co = co0 + i;
    if (co >= p.cout) break;
    for (uint j = 0; j < 4; j++) {
      if (!ok[j]) continue;
      uint pg = pb * 4 + j;
      uint nb = pg / hw_out, q = pg % hw_out;
      uint o = (nb * p.cout + co) * hw_out + q;
      float v = acc[i][j] + bias[co];
      if (p.has_vec != 0) v += vec[nb * p.cout + co];
      if (p.has_res != 0) v = (res[o] + v) / p.out_scale;
      y[o] = v;
    }
  }
}
