#version 450
// Group norm statistics for CPU devices: one workgroup of exactly one
// subgroup per (n, group), so the sums reduce with subgroupAdd and no
// barrier (lavapipe: see README, Benchmarks); two passes (mean, then
// variance), reading 4 elements per image load when a group's size is a
// multiple of 4.  stats[2 * ng] = mean, stats[2 * ng + 1] = 1 / std.  A
// group's elements are contiguous: cpg channels of hw pixels.
#extension GL_KHR_shader_subgroup_arithmetic : require
layout(local_size_x_id = 0) in; // the subgroup size
layout(constant_id = 1) const bool V4 = false; // count % 4 == 0

// Image loads, not texel fetches: on lavapipe those are function calls.
layout(binding = 0, r32f) uniform readonly imageBuffer x;
layout(binding = 1, rgba32f) uniform readonly imageBuffer x4; // x, with V4
layout(std430, binding = 2) writeonly buffer S { float stats[]; };

layout(push_constant) uniform P {
  uint n, c, hw, groups;
  float eps;
  uint silu;
} p;

void main() {
  uint ng = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (ng >= p.n * p.groups) return; // uniform per workgroup
  uint lid = gl_LocalInvocationID.x, lx = gl_WorkGroupSize.x;
  uint count = p.c / p.groups * p.hw;
  int base = int(ng * count);
  float s = 0.0;
  if (V4) {
    for (uint i = lid; i < count / 4; i += lx) {
      vec4 v = imageLoad(x4, base / 4 + int(i));
      s += (v.x + v.y) + (v.z + v.w);
    }
  } else {
    for (uint i = lid; i < count; i += lx) s += imageLoad(x, base + int(i)).x;
  }
  float mean = subgroupAdd(s) / float(count);
  float q = 0.0;
  if (V4) {
    for (uint i = lid; i < count / 4; i += lx) {
      vec4 d = imageLoad(x4, base / 4 + int(i)) - mean;
      q += dot(d, d);
    }
  } else {
    for (uint i = lid; i < count; i += lx) {
      float d = imageLoad(x, base + int(i)).x - mean;
      q += d * d;
    }
  }
  float var = subgroupAdd(q) / float(count);
  if (lid == 0) {
    stats[2 * ng] = mean;
    stats[2 * ng + 1] = 1.0 / sqrt(var + p.eps);
  }
}
