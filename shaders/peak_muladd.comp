#version 450
// The device's multiply-add peak, for tools/bench/peak_measure.c: every invocation
// runs CHAINS independent chains a = a * m + c for STEPS steps, unrolled,
// in registers.  A multiply and an add: what llvmpipe (Mesa 22.3) makes of
// any multiply-add, fma() included, as NIR lowers ffma for it; a GPU
// compiler fuses them.  No loop: llvmpipe would blend every chain with the
// loop's lane mask each iteration, and LLVM then runs the chains one after
// another, bound by their latency.  Workgroup (0, 0) stores its sums for
// the tool to check; every other invocation stores only if its sum is an
// impossible value, so none of the work can be dropped.
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint CHAINS = 16;
layout(constant_id = 1) const uint STEPS = 128;

layout(std430, binding = 0) writeonly buffer Out { float o[]; };
layout(push_constant) uniform P { float m, c; } p;

void main() {
  float m = p.m, c = p.c;
  // Starts that differ between lanes, so no compiler can run one lane for all.
  float a0 = float(gl_LocalInvocationID.x & 3u) * 0.25;
  float a[CHAINS];
  [[unroll]] for (uint j = 0; j < CHAINS; j++) a[j] = float(j) + a0;
  [[unroll]] for (uint s = 0; s < STEPS; s++)
    [[unroll]] for (uint j = 0; j < CHAINS; j++) a[j] = a[j] * m + c;
  float sum = 0.0;
  [[unroll]] for (uint j = 0; j < CHAINS; j++) sum += a[j];
  bool first = gl_WorkGroupID.x == 0 && gl_WorkGroupID.y == 0;
  if (first || sum == -1.0) o[gl_LocalInvocationID.x] = sum;
}
