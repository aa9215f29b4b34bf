// Shared helpers: flat invocation index over a 2-D grid of workgroups, so
// dispatches larger than maxComputeWorkGroupCount[0] (65535) still work.
uint flat_index() {
  return (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) *
             gl_WorkGroupSize.x + gl_LocalInvocationID.x;
}

float silu(float x) { return x / (1.0 + exp(-x)); }
