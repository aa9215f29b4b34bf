// Buffer stores as 64-bit components.  llvmpipe writes a storage buffer lane
// by lane: one loop per store, with a bounds check and a branch per
// component.  A vec4 stored as two 64-bit halves takes half of that work
// (cifar10's F(4x4) input transforms at 32 x 32, 36 stores an invocation:
// 3.41 -> 2.81 ms a forward on one thread, the lowest of 5 runs each).
// The includer enables GL_EXT_shader_explicit_arithmetic_types_int64; the
// device, shaderInt64.
u64vec2 bits64(vec4 v) {
  return u64vec2(packUint2x32(floatBitsToUint(v.xy)), packUint2x32(floatBitsToUint(v.zw)));
}
