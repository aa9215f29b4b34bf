#version 450
// One reverse step on the device, in place on x (diffusers DDPMScheduler /
// DDIMScheduler arithmetic, coefficients from the host per step):
//   x0  = prediction -> x0 (clipped);  x0_out = x0
//   v   = DDPM: c0 * x0 + c1 * x + sd * z      DDIM: c0 * x0 + c1 * e + sd * z
//   SDEdit: v = m * v + (1 - m) * known, known = init or ka * init + kb * zk
//   RePaint: x = ra * v + rb * zr (jump back), else x = v
// z, zk, zr: injected noise tensors or the Philox generator.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "index.glsl"
#include "philox.glsl"

layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer E { float eps[]; };
layout(std430, binding = 2) readonly buffer S { float sp[]; };
layout(std430, binding = 3) readonly buffer I { float init[]; };
layout(std430, binding = 4) readonly buffer M { float mask[]; };
layout(std430, binding = 5) readonly buffer Z { float zs[]; };
layout(std430, binding = 6) readonly buffer K { float zk[]; };
layout(std430, binding = 7) writeonly buffer O { float x0_out[]; };

layout(push_constant) uniform P {
  uint count, item, hw, seed_lo, seed_hi;
  uint ddim, prediction, clip, masked;
  float clip_range;
  uint shared_noise; // every batch item draws the noise of item 0
} p;

// Per-step parameters (sp[]), written by the host before each run.
const uint ABAR = 0, C0 = 1, C1 = 2, SD = 3, KA = 4, KB = 5, KNOWN = 6,
           RA = 7, RB = 8, RENOISE = 9, STREAM_S = 10, STREAM_K = 11,
           STREAM_R = 12, INJECT_S = 13, INJECT_K = 14, ITEM0 = 15;

// Item b of the group whose first batch item is ITEM0 draws for seed + ITEM0 + b
// (all for seed with shared_noise).
float noise(uint stream, uint b, uint i) {
  uint item = p.shared_noise != 0u ? 0u : floatBitsToUint(sp[ITEM0]) + b;
  uint lo = p.seed_lo + item;
  return philox_normal(uvec2(lo, p.seed_hi + (lo < item ? 1u : 0u)), stream, i, 0u);
}

void main() {
  uint idx = flat_index();
  if (idx >= p.count) return;
  uint b = idx / p.item, i = idx % p.item;
  float xv = x[idx], out_ = eps[idx];
  float abar = sp[ABAR], sa = sqrt(abar), sb = sqrt(1.0 - abar);
  float x0;
  if (p.prediction == 1u) x0 = out_;                 // sample
  else if (p.prediction == 2u) x0 = sa * xv - sb * out_; // v
  else x0 = (xv - sb * out_) / sa;                   // epsilon
  if (p.clip != 0u) x0 = clamp(x0, -p.clip_range, p.clip_range);
  x0_out[idx] = x0;

  float v;
  if (p.ddim != 0u) {
    float e = p.prediction == 1u ? (xv - sa * x0) / sb
            : p.prediction == 2u ? sa * out_ + sb * xv : out_;
    v = sp[C0] * x0 + sp[C1] * e;
  } else {
    v = sp[C0] * x0 + sp[C1] * xv;
  }
  if (sp[SD] != 0.0) {
    float z = sp[INJECT_S] != 0.0 ? zs[idx] : noise(floatBitsToUint(sp[STREAM_S]), b, i);
    v = v + sp[SD] * z;
  }
  if (p.masked != 0u && sp[KNOWN] != 0.0) {
    float known = init[idx];
    if (sp[KNOWN] > 1.5) {
      float z = sp[INJECT_K] != 0.0 ? zk[idx] : noise(floatBitsToUint(sp[STREAM_K]), b, i);
      known = sp[KA] * init[idx] + sp[KB] * z;
    }
    float m = mask[i % p.hw];
    v = m * v + (1.0 - m) * known;
  }
  if (sp[RENOISE] != 0.0)
    v = sp[RA] * v + sp[RB] * noise(floatBitsToUint(sp[STREAM_R]), b, i);
  // Clipping would turn a NaN/Inf model output into a finite value; keep it
  // NaN instead so the host's check of the final sample sees it.
  if (isnan(out_) || isinf(out_)) v = uintBitsToFloat(0x7fc00000u);
  x[idx] = v;
}
