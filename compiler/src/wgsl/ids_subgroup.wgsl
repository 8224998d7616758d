// Invocation ids of the subgroup kernels. No enable directive: naga 30 rejects the extension
// and the builtins work without it once the device has SUBGROUP.
struct Ids {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(num_subgroups) n_sg: u32,
}
