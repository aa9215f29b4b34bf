#version 450
// 2-D convolution as an implicit GEMM: out[co, p] = sum_k W[co, k] * X[k, p]
// over k = (ci, ky, kx) and pixels p = (n, oy, ox), NCHW, weights
// [Cout, Cin, K, K].  A workgroup computes a 64 (channels) x 64 (pixels)
// tile, each invocation 4 x 4 of it, with 16-deep slices of W and of the
// im2col matrix staged in shared memory.
// Epilogue (in torch's order): + bias, + vec[n, co] (time embedding), then
// (residual + h) / out_scale when a residual is given.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer X { float x[]; };
// Weights as float32 bits, or with F16 as IEEE halves, two per word.
layout(std430, binding = 1) readonly buffer Wt { uint w[]; };
layout(std430, binding = 2) readonly buffer B { float bias[]; };
layout(std430, binding = 3) readonly buffer V { float vec[]; };
layout(std430, binding = 4) readonly buffer R { float res[]; };
layout(std430, binding = 5) writeonly buffer Y { float y[]; };

layout(push_constant) uniform P {
  uint n, cin, h, w, cout, ho, wo, k, stride;
  int pad_t, pad_l;
  uint vec_stride, vec_off; // vec_stride 0: no vec
  uint has_res;
  float out_scale;
} p;

// The kernel size is a specialization constant so that splitting k into
// (ci, ky, kx) divides by constants (integer division is slow on CPUs).
layout(constant_id = 0) const uint KS = 3;
layout(constant_id = 1) const bool F16 = false;
const uint KK = KS * KS;
const uint TM = 64, TN = 64, TK = 16;
// vec4 rows so the inner product reads four channels / pixels at once.
shared vec4 As[TK][TM / 4];
shared vec4 Bs[TK][TN / 4];

void main() {
  uint lid = gl_LocalInvocationID.x;
  uint tx = lid % 16, ty = lid / 16;
  uint hw_out = p.ho * p.wo;
  uint npix = p.n * hw_out;
  uint ktot = p.cin * KK;
  uint co0 = gl_WorkGroupID.y * TM;
  // Pixel tiles may exceed the 65535 groups of one dimension: x and z.
  uint p0 = (gl_WorkGroupID.z * gl_NumWorkGroups.x + gl_WorkGroupID.x) * TN;

  // acc[i][j]: channel co0 + 4 ty + i, pixel p0 + 4 tx + j.
  vec4 acc0 = vec4(0.0), acc1 = vec4(0.0), acc2 = vec4(0.0), acc3 = vec4(0.0);

  // This invocation stages im2col column bn (one output pixel, decomposed
  // once here) at rows bk, bk + 4, bk + 8, bk + 12 of each slice.
  uint bn = lid % TN, bk = lid / TN;
  uint pg0 = p0 + bn;
  bool pix_ok = pg0 < npix;
  uint nb0 = pix_ok ? pg0 / hw_out : 0, q0 = pix_ok ? pg0 % hw_out : 0;
  int iy0 = int((q0 / p.wo) * p.stride) - p.pad_t;
  int ix0 = int((q0 % p.wo) * p.stride) - p.pad_l;
  uint xbase = nb0 * p.cin * p.h * p.w;

  for (uint k0 = 0; k0 < ktot; k0 += TK) {
    // Stage W[co0 .. +64, k0 .. +16] and X_im2col[k0 .. +16, p0 .. +64].
    for (uint e = lid; e < TM * TK; e += 256) {
      uint kl = e % TK, ml = e / TK;
      uint co = co0 + ml, kg = k0 + kl;
      float v = 0.0;
      if (co < p.cout && kg < ktot) {
        uint i = co * ktot + kg;
        v = F16 ? unpackHalf2x16(w[i / 2])[i % 2] : uintBitsToFloat(w[i]);
      }
      As[kl][ml / 4][ml % 4] = v;
    }
    for (uint r4 = 0; r4 < TK / 4; r4++) {
      uint kl = bk + 4 * r4, kg = k0 + kl;
      float v = 0.0;
      if (pix_ok && kg < ktot) {
        uint ci = kg / KK, r = kg % KK;
        int iy = iy0 + int(r / KS), ix = ix0 + int(r % KS);
        if (iy >= 0 && iy < int(p.h) && ix >= 0 && ix < int(p.w))
          v = x[xbase + ci * p.h * p.w + uint(iy) * p.w + uint(ix)];
      }
      Bs[kl][bn / 4][bn % 4] = v;
    }
    barrier();
    for (uint kl = 0; kl < TK; kl++) {
      vec4 a = As[kl][ty], b = Bs[kl][tx];
      acc0 += a.x * b;
      acc1 += a.y * b;
      acc2 += a.z * b;
      acc3 += a.w * b;
    }
    barrier();
  }

  mat4 acc = mat4(acc0, acc1, acc2, acc3);
  for (uint i = 0; i < 4; i++) {
    uint co = co0 + 4 * ty + i;
    if (co >= p.cout) continue;
    for (uint j = 0; j < 4; j++) {
      uint pg = p0 + 4 * tx + j;
      if (pg >= npix) continue;
      uint nb = pg / hw_out, q = pg % hw_out;
      uint o = (nb * p.cout + co) * hw_out + q;
      float v = acc[i][j] + bias[co];
      if (p.vec_stride != 0) v += vec[nb * p.vec_stride + p.vec_off + co];
      if (p.has_res != 0) v = (res[o] + v) / p.out_scale;
      y[o] = v;
    }
  }
}
