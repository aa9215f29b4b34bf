// Shared helpers: flat invocation index over a 2-D grid of workgroups, so
// dispatches larger than maxComputeWorkGroupCount[0] (65535) still work.
uint flat_index() {
  return (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) *
             gl_WorkGroupSize.x + gl_LocalInvocationID.x;
}

float silu(float x) { return x / (1.0 + exp(-x)); }

// a / b for any a (b > 0, a / b < 2^23) without an integer division, which
// llvmpipe splits into one `div` per lane: the float quotient is within one
// of the true one, then corrected.
uint div_fast(uint a, uint b) {
  uint q = uint(float(a) / float(b));
  q = q * b > a ? q - 1 : q;
  return (q + 1) * b <= a ? q + 1 : q;
}
