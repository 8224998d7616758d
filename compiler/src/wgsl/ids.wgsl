// Invocation ids of the workgroup-memory kernels.
struct Ids {
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
}
