#version 450
// Row-wise softmax in place over rows of length `cols`; one workgroup a row.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 128) in;

layout(std430, binding = 0) buffer S { float s[]; };

layout(push_constant) uniform P { uint rows, cols; } p;

shared float partial[128];

void main() {
  uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (row >= p.rows) return; // uniform per workgroup
  uint lid = gl_LocalInvocationID.x;
  uint base = row * p.cols;

  float m = -1.0 / 0.0;
  for (uint j = lid; j < p.cols; j += 128) m = max(m, s[base + j]);
  partial[lid] = m;
  barrier();
  for (uint st = 64; st > 0; st >>= 1) {
    if (lid < st) partial[lid] = max(partial[lid], partial[lid + st]);
    barrier();
  }
  m = partial[0];
  barrier();

  float sum = 0.0;
  for (uint j = lid; j < p.cols; j += 128) {
    float e = exp(s[base + j] - m);
    s[base + j] = e;
    sum += e;
  }
  partial[lid] = sum;
  barrier();
  for (uint st = 64; st > 0; st >>= 1) {
    if (lid < st) partial[lid] += partial[lid + st];
    barrier();
  }
  float total = partial[0];
  for (uint j = lid; j < p.cols; j += 128) s[base + j] = s[base + j] / total;
}
