//! Null tier: the structure of compiled plans (bindings, buffers, grids, limits, serde).

use tessera_compiler::{BufferRole, CompileError, CompileOptions, DeviceProfile, Plan, compile};
use tessera_ir::{BinaryOp, DType, Graph, Op, ReduceKind, Shape, UnaryOp};

type R = Result<(), Box<dyn std::error::Error>>;

/// Structure tests look at one kernel per op: optimizations off (fusion has its own tests).
fn build(profile: &DeviceProfile, g: &Graph) -> Result<Plan, CompileError> {
    compile(g, profile, &CompileOptions::unoptimized())
}

#[test]
fn inputs_params_and_outputs_are_bound_by_name_with_their_storage() -> R {
    let mut g = Graph::new();
    let x = g.input("x", [3, 5], DType::F32);
    let w = g.param("w", [5], DType::F16);
    let wx = g.add(Op::Cast { to: DType::F32 }, &[w])?;
    let y = g.add(Op::Binary(BinaryOp::Mul), &[x, wx])?;
    let c = g.add(Op::Binary(BinaryOp::Gt), &[y, x])?;
    g.set_outputs(vec![y, c])?;

    let portable = build(&DeviceProfile::portable(), &g)?;
    let wb = portable.param("w").ok_or("no param w")?;
    assert_eq!((wb.dtype, wb.storage, wb.shape.clone()), (DType::F16, DType::F32, vec![5]));
    assert_eq!(portable.buffers[wb.buffer.0 as usize].size, 20);
    assert_eq!(portable.buffers[wb.buffer.0 as usize].role, BufferRole::Param);
    let xb = portable.input("x").ok_or("no input x")?;
    assert_eq!(portable.buffers[xb.buffer.0 as usize].size, 60);
    assert_eq!(portable.buffers[xb.buffer.0 as usize].role, BufferRole::Input);
    let names: Vec<_> = portable.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["output0", "output1"]);
    assert_eq!((portable.outputs[1].dtype, portable.outputs[1].storage), (DType::Bool, DType::U32));
    assert!(portable.kernels.iter().all(|k| !k.uses_f16 && !k.wgsl.contains("enable f16")));
    assert_eq!(portable.peak_bytes, portable.buffers.iter().map(|b| b.size).sum::<u64>());

    let full = build(&DeviceProfile::full(), &g)?;
    let wb = full.param("w").ok_or("no param w")?;
    assert_eq!(wb.storage, DType::F16);
    assert_eq!(full.buffers[wb.buffer.0 as usize].size, 12, "5 halves round up to 12 bytes");
    let cast = full.kernels.iter().find(|k| k.name.starts_with("cast")).ok_or("no cast kernel")?;
    assert!(cast.uses_f16 && cast.wgsl.starts_with("enable f16;"));
    Ok(())
}

#[test]
fn outputs_never_alias_each_other_or_host_buffers() -> R {
    let mut g = Graph::new();
    let x = g.input("x", [4, 6], DType::F32);
    let p = g.param("p", [24], DType::F32);
    let e = g.add(Op::Unary(UnaryOp::Exp), &[x])?;
    let r = g.add(Op::Reshape { shape: Shape::from([24]) }, &[e])?;
    let s = g.add(Op::Binary(BinaryOp::Add), &[r, p])?;
    g.set_outputs(vec![s, s, x, p, r])?;
    let plan = build(&DeviceProfile::portable(), &g)?;
    let mut out_buffers: Vec<_> = plan.outputs.iter().map(|o| o.buffer).collect();
    out_buffers.sort();
    out_buffers.dedup();
    assert_eq!(out_buffers.len(), 5, "distinct output buffers");
    for o in &plan.outputs {
        assert_eq!(plan.buffers[o.buffer.0 as usize].role, BufferRole::Output);
    }
    // exp, add, then copies for the repeated s, x, p and the reshape.
    assert_eq!(plan.dispatches.len(), 6);
    // The non-output use of the reshape aliases exp's buffer: add reads it directly.
    let exp_out = plan.dispatches[0].buffers[1];
    assert_eq!(plan.dispatches[1].buffers[0], exp_out);
    Ok(())
}

#[test]
fn thirty_million_elements_fit_the_dispatch_grid() -> R {
    let n = 30_000_000;
    let mut g = Graph::new();
    let x = g.input("x", [n], DType::F32);
    let y = g.add(Op::Unary(UnaryOp::Sigmoid), &[x])?;
    g.add_output(y)?;
    let profile = DeviceProfile::portable();
    let plan = build(&profile, &g)?;
    let d = &plan.dispatches[0];
    let wg = plan.kernels[d.kernel].workgroup_size[0] as u64;
    assert!(d.workgroups.iter().all(|&w| w <= profile.limits.max_compute_workgroups_per_dimension));
    assert!(d.workgroups[1] > 1, "needs a 2-D grid");
    assert!(d.workgroups.iter().map(|&w| w as u64).product::<u64>() * wg >= n as u64);
    Ok(())
}

#[test]
fn concat_of_twelve_inputs_respects_the_binding_limit() -> R {
    let mut g = Graph::new();
    let parts: Vec<_> = (0..12).map(|i| g.input(&format!("x{i}"), [2, i + 1], DType::F32)).collect();
    let y = g.add(Op::Concat { axis: 1 }, &parts)?;
    g.add_output(y)?;
    let profile = DeviceProfile::portable();
    let plan = build(&profile, &g)?;
    assert!(plan.dispatches.len() >= 2);
    for d in &plan.dispatches {
        assert!(d.buffers.len() <= 8);
        assert_eq!(plan.kernels[d.kernel].bindings.len(), d.buffers.len());
        assert_eq!(*d.buffers.last().ok_or("no output")?, plan.outputs[0].buffer);
    }
    let bound: usize = plan.dispatches.iter().map(|d| d.buffers.len() - 1).sum();
    assert_eq!(bound, 12, "every part is copied once");
    Ok(())
}

#[test]
fn tensors_over_the_binding_limit_are_a_limit_error() -> R {
    let mut g = Graph::new();
    let x = g.input("x", [40_000_000], DType::F32);
    let y = g.add(Op::Unary(UnaryOp::Neg), &[x])?;
    g.add_output(y)?;
    let err = build(&DeviceProfile::portable(), &g).err().ok_or("expected an error")?;
    assert!(matches!(err, CompileError::Limit { .. }), "{err}");
    Ok(())
}

/// An f16 weight whose f32 widening would not fit one binding is fine when the widening is
/// computed as the matmul loads it (fused), and a limit error when it needs a buffer (unfused).
#[test]
fn a_widened_weight_over_the_limit_needs_no_buffer_when_fused() -> R {
    let mut g = Graph::new();
    let x = g.input("x", [1, 4096], DType::F32);
    let w = g.param("w", [5120, 4096], DType::F16);
    let w32 = g.add(Op::Cast { to: DType::F32 }, &[w])?;
    let wt = g.add(Op::Permute { perm: vec![1, 0] }, &[w32])?;
    let y = g.add(Op::MatMul, &[x, wt])?;
    g.add_output(y)?;
    // 40 MiB as f16, 80 MiB widened: only the widened copy exceeds a 64 MiB binding limit.
    let mut profile = DeviceProfile::full();
    profile.limits.max_storage_buffer_binding_size = 64 << 20;
    let plan = compile(&g, &profile, &CompileOptions::default())?;
    assert_eq!(plan.dispatches.len(), 1, "the cast and permute are loads of the gemv");
    let err = build(&profile, &g).err().ok_or("expected an error without fusion")?;
    assert!(matches!(err, CompileError::Limit { .. }), "{err}");
    Ok(())
}

#[test]
fn scratch_buffers_are_reused_when_lifetimes_do_not_overlap() -> R {
    let mut g = Graph::new();
    let mut v = g.input("x", [1000], DType::F32);
    for _ in 0..6 {
        v = g.add(Op::Unary(UnaryOp::Exp), &[v])?;
    }
    g.add_output(v)?;
    let plan = build(&DeviceProfile::portable(), &g)?;
    let scratch = plan.buffers.iter().filter(|b| b.role == BufferRole::Scratch).count();
    assert_eq!(scratch, 2);
    for d in &plan.dispatches {
        assert_ne!(d.buffers[0], d.buffers[1], "a kernel never reads the buffer it writes");
    }
    let no_reuse = compile(
        &g,
        &DeviceProfile::portable(),
        &CompileOptions { reuse_buffers: false, ..CompileOptions::unoptimized() },
    )?;
    assert_eq!(no_reuse.buffers.iter().filter(|b| b.role == BufferRole::Scratch).count(), 5);
    assert!(no_reuse.peak_bytes > plan.peak_bytes);
    Ok(())
}

#[test]
fn subgroup_kernels_follow_the_profile_and_the_switch() -> R {
    let mut g = Graph::new();
    let x = g.input("x", [8, 300], DType::F32);
    let y = g.add(Op::Reduce { kind: ReduceKind::Sum, axes: vec![1], keepdims: false }, &[x])?;
    let z = g.add(Op::Softmax { axis: 1 }, &[x])?;
    g.set_outputs(vec![y, z])?;
    let full = build(&DeviceProfile::full(), &g)?;
    assert!(full.kernels.iter().all(|k| k.uses_subgroups && k.wgsl.contains("subgroupAdd")));
    assert!(full.kernels.iter().all(|k| !k.wgsl.contains("enable subgroups")));
    let off =
        compile(&g, &DeviceProfile::full(), &CompileOptions { subgroups: false, ..Default::default() })?;
    assert!(off.kernels.iter().all(|k| !k.uses_subgroups && !k.wgsl.contains("subgroup")));
    let portable = build(&DeviceProfile::portable(), &g)?;
    assert!(portable.kernels.iter().all(|k| !k.uses_subgroups));
    Ok(())
}

#[test]
fn repeated_kernels_are_stored_once() -> R {
    let mut g = Graph::new();
    let a = g.input("a", [64], DType::F32);
    let b = g.add(Op::Unary(UnaryOp::Tanh), &[a])?;
    let c = g.add(Op::Unary(UnaryOp::Tanh), &[b])?;
    g.add_output(c)?;
    let plan = build(&DeviceProfile::portable(), &g)?;
    assert_eq!((plan.kernels.len(), plan.dispatches.len()), (1, 2));
    Ok(())
}

#[test]
fn plans_round_trip_through_serde() -> R {
    let mut g = Graph::new();
    let x = g.input("x", [2, 16, 8], DType::F16);
    let w = g.param("w", [8, 4], DType::F16);
    let y = g.add(Op::MatMul, &[x, w])?;
    let s = g.add(Op::Softmax { axis: 2 }, &[y])?;
    g.add_output(s)?;
    for profile in [DeviceProfile::portable(), DeviceProfile::full()] {
        let plan = build(&profile, &g)?;
        let text = serde_json::to_string(&plan)?;
        let back: Plan = serde_json::from_str(&text)?;
        assert_eq!(back, plan);
    }
    Ok(())
}

#[test]
fn validate_kernel_reports_the_offending_line() -> R {
    let mut g = Graph::new();
    let x = g.input("x", [3], DType::F32);
    let y = g.add(Op::Unary(UnaryOp::Exp), &[x])?;
    g.add_output(y)?;
    let plan = build(&DeviceProfile::portable(), &g)?;
    let mut kernel = plan.kernels[0].clone();
    kernel.wgsl = kernel.wgsl.replace("op_exp_f32(x0)", "op_exp_f32(x0, 1u)");
    let err = tessera_compiler::validate_kernel(&kernel, &DeviceProfile::portable())
        .err()
        .ok_or("accepted bad WGSL")?;
    match err {
        CompileError::Invalid { message, .. } => assert!(message.contains("op_exp_f32(x0, 1u)"), "{message}"),
        other => return Err(format!("unexpected {other}").into()),
    }
    Ok(())
}

/// A profile like the H200's: one subgroup size of 32 and cooperative matrices.
fn cooperative_profile() -> DeviceProfile {
    let mut p = DeviceProfile {
        subgroup_min_size: 32,
        subgroup_max_size: 32,
        cooperative_matrix: true,
        ..DeviceProfile::full()
    };
    p.limits.max_compute_workgroup_storage_size = 48 << 10;
    p
}

/// `quant_matmul` of `m` rows of f16 x on the fused path (x cast to f16 inside the kernel).
fn f16_quant_matmul(m: usize) -> Result<Graph, Box<dyn std::error::Error>> {
    let (n, k) = (96, 256);
    let mut g = Graph::new();
    let x = g.input("x", [m, k], DType::F32);
    let x16 = g.add(Op::Cast { to: DType::F16 }, &[x])?;
    let w = g.param("w", [n, k / 8], DType::U32);
    let s = g.param("s", [n, k / 32], DType::F16);
    let b = g.param("b", [n, k / 32], DType::F16);
    let y = g.add(Op::QuantMatMul { bits: 4, group_size: 32 }, &[x16, w, s, b])?;
    let y32 = g.add(Op::Cast { to: DType::F32 }, &[y])?;
    g.set_outputs(vec![y32])?;
    Ok(g)
}

#[test]
fn cooperative_matrices_take_f16_prefill_where_the_profile_has_them() -> R {
    let coop = cooperative_profile();
    let plan = compile(&f16_quant_matmul(50)?, &coop, &CompileOptions::default())?;
    let k = plan.kernels.iter().find(|k| k.name.starts_with("quant_matmul")).ok_or("no matmul")?;
    assert!(k.name.starts_with("quant_matmul_coop"), "{}", k.name);
    assert!(k.uses_cooperative_matrix && k.uses_f16 && k.uses_subgroups);
    assert!(k.wgsl.contains("enable wgpu_cooperative_matrix;") && k.wgsl.contains("coopMultiplyAdd"));
    assert_eq!(plan.kernels.len(), 1, "the casts fuse into the cooperative kernel");

    // Decode rows keep the gemv; without cooperative matrices (or subgroups) prefill is tiled.
    let decode = compile(&f16_quant_matmul(1)?, &coop, &CompileOptions::default())?;
    assert!(decode.kernels.iter().all(|k| !k.uses_cooperative_matrix));
    for profile in [
        DeviceProfile { cooperative_matrix: false, ..coop.clone() },
        DeviceProfile { subgroup_max_size: 64, ..coop.clone() },
    ] {
        let plan = compile(&f16_quant_matmul(50)?, &profile, &CompileOptions::default())?;
        assert!(plan.kernels.iter().all(|k| !k.uses_cooperative_matrix && !k.name.contains("coop")));
    }
    // An f32 x never rounds to f16 behind the graph's back.
    let mut g = Graph::new();
    let x = g.input("x", [50, 256], DType::F32);
    let w = g.param("w", [96, 32], DType::U32);
    let s = g.param("s", [96, 8], DType::F16);
    let b = g.param("b", [96, 8], DType::F16);
    let y = g.add(Op::QuantMatMul { bits: 4, group_size: 32 }, &[x, w, s, b])?;
    g.set_outputs(vec![y])?;
    let plan = compile(&g, &coop, &CompileOptions::default())?;
    assert!(plan.kernels.iter().all(|k| !k.uses_cooperative_matrix));
    Ok(())
}

/// Attention of `s` query rows of 32 heads over 8 kv heads of 64 dims, a cache of `t` rows.
fn llama_attention(s: usize, t: usize) -> Result<Graph, Box<dyn std::error::Error>> {
    let mut g = Graph::new();
    let q = g.input("q", [1, 32, s, 64], DType::F32);
    let k = g.input("k", [1, 8, t, 64], DType::F32);
    let v = g.input("v", [1, 8, t, 64], DType::F32);
    let len = g.input("len", [1], DType::U32);
    let scale = tessera_ir::float(0.125).ok_or("NaN")?;
    let y = g.add(Op::Attention { scale, causal: true }, &[q, k, v, len])?;
    g.set_outputs(vec![y])?;
    Ok(g)
}

/// Names of the plan's attention dispatches, in order.
fn attention_dispatches(plan: &Plan) -> Vec<String> {
    let name = |d: &tessera_compiler::Dispatch| plan.kernels[d.kernel].name.clone();
    plan.dispatches.iter().map(name).filter(|n| n.starts_with("attention")).collect()
}

#[test]
fn attention_runs_one_softmax_per_subgroup_where_there_are_subgroups() -> R {
    // 128 query rows and more, or a cache too short for two parts of 256: one workgroup per row.
    for (s, t) in [(4, 4096), (100, 300), (1, 511)] {
        let plan = build(&DeviceProfile::full(), &llama_attention(s, t)?)?;
        let names = attention_dispatches(&plan);
        assert!(names.len() == 1 && names[0].ends_with("_subgroups_sg"), "{names:?}");
        let k = plan.kernels.iter().find(|k| k.name == names[0]).ok_or("no kernel")?;
        assert!(k.wgsl.contains("subgroupAdd"));
    }
    // A device without subgroups keeps the chunked kernel.
    let portable = build(&DeviceProfile::portable(), &llama_attention(1, 300)?)?;
    let names = attention_dispatches(&portable);
    assert!(names.len() == 1 && !names[0].contains("subgroups") && !names[0].ends_with("_sg"), "{names:?}");
    Ok(())
}

#[test]
fn decode_attention_over_a_long_cache_splits_its_keys_through_a_workspace() -> R {
    // Two layers' worth, caches of 4096 and 1024 rows (16 and 4 parts): both pairs share the one
    // workspace, sized for the larger.
    let mut g = llama_attention(1, 4096)?;
    let first = g.outputs()[0];
    let q = g.input("q2", [1, 32, 1, 64], DType::F32);
    let k = g.input("k2", [1, 8, 1024, 64], DType::F32);
    let v = g.input("v2", [1, 8, 1024, 64], DType::F32);
    let len = g.input("len2", [1], DType::U32);
    let scale = tessera_ir::float(0.125).ok_or("NaN")?;
    let y = g.add(Op::Attention { scale, causal: true }, &[q, k, v, len])?;
    g.set_outputs(vec![first, y])?;
    let plan = build(&DeviceProfile::full(), &g)?;
    let names = attention_dispatches(&plan);
    assert_eq!(names.len(), 4, "{names:?}");
    for pair in names.chunks(2) {
        assert!(pair[0].ends_with("_parts_sg") && pair[1].ends_with("_combine_sg"), "{names:?}");
    }
    let workspaces: Vec<_> = plan.buffers.iter().filter(|b| b.label == "workspace").collect();
    assert_eq!(workspaces.len(), 1);
    // 32 rows x 16 parts (512 workgroups) x (64 value dims + max + sum) f32.
    assert_eq!(workspaces[0].size, 32 * 16 * 66 * 4);
    // The partials kernel writes the workspace last; the combine reads it first.
    let ws = plan.buffers.iter().position(|b| b.label == "workspace").ok_or("no workspace")? as u32;
    let parts: Vec<_> =
        plan.dispatches.iter().filter(|d| plan.kernels[d.kernel].name.ends_with("_parts_sg")).collect();
    let combines: Vec<_> =
        plan.dispatches.iter().filter(|d| plan.kernels[d.kernel].name.ends_with("_combine_sg")).collect();
    assert!(parts.iter().all(|d| d.buffers.last().map(|b| b.0) == Some(ws)));
    assert!(combines.iter().all(|d| d.buffers.len() == 2 && d.buffers[0].0 == ws));
    Ok(())
}

#[test]
fn short_cooperative_grids_take_the_narrower_tile() -> R {
    // The H200's limits: workgroups of 1024 invocations, so the default 64 x 256 tile.
    let mut coop = cooperative_profile();
    coop.limits.max_compute_invocations_per_workgroup = 1024;
    coop.limits.max_compute_workgroup_size_x = 1024;
    let tile = |m: usize, n: usize| -> Result<String, Box<dyn std::error::Error>> {
        let mut g = Graph::new();
        let x = g.input("x", [m, 256], DType::F16);
        let w = g.param("w", [n, 32], DType::U32);
        let s = g.param("s", [n, 8], DType::F16);
        let b = g.param("b", [n, 8], DType::F16);
        let y = g.add(Op::QuantMatMul { bits: 4, group_size: 32 }, &[x, w, s, b])?;
        g.set_outputs(vec![y])?;
        let plan = compile(&g, &coop, &CompileOptions::default())?;
        let k = plan.kernels.iter().find(|k| k.name.starts_with("quant_matmul")).ok_or("no matmul")?;
        Ok(k.name.clone())
    };
    // 64 x 256 tiles: 2 x 16 = 32 workgroups for [128, 4096], 8 x 16 = 128 for [512, 4096].
    assert!(tile(128, 4096)?.ends_with("_64x128"), "{}", tile(128, 4096)?);
    assert!(tile(512, 4096)?.ends_with("_64x256"), "{}", tile(512, 4096)?);
    Ok(())
}

#[test]
fn decode_gemvs_over_long_rows_split_k_between_two_subgroups() -> R {
    // The integer-dot gemv (x rounded to int8) on subgroups of 32 in workgroups of 512.
    let mut profile = cooperative_profile();
    profile.limits.max_compute_invocations_per_workgroup = 1024;
    profile.limits.max_compute_workgroup_size_x = 1024;
    let gemv = |m: usize, k: usize, n: usize| -> Result<(String, [u32; 3]), Box<dyn std::error::Error>> {
        let mut g = Graph::new();
        let x = g.input("x", [m, k], DType::F32);
        let x = g.add(Op::RoundInt8 { block: 32 }, &[x])?;
        let w = g.param("w", [n, k / 8], DType::U32);
        let s = g.param("s", [n, k / 32], DType::F16);
        let b = g.param("b", [n, k / 32], DType::F16);
        let y = g.add(Op::QuantMatMul { bits: 4, group_size: 32 }, &[x, w, s, b])?;
        g.set_outputs(vec![y])?;
        let plan = compile(&g, &profile, &CompileOptions::default())?;
        assert_eq!(plan.dispatches.len(), 1, "the rounding fuses into the gemv");
        let kernel = &plan.kernels[plan.dispatches[0].kernel];
        assert!(kernel.name.starts_with("quant_gemv4i8"), "{}", kernel.name);
        Ok((kernel.wgsl.clone(), plan.dispatches[0].workgroups))
    };
    // K = 4096 is 128 chunks a row, 4 per lane: two subgroups share each row, so the 16
    // subgroups of a workgroup take 8 rows (R = 1) and 64 rows need 8 workgroups.
    let (wgsl, groups) = gemv(1, 4096, 64)?;
    assert!(wgsl.contains("const KS: u32 = 2u;"));
    assert_eq!(groups[0] * groups[1], 8);
    // Shorter rows, and prompts, keep one subgroup per row (16 rows per workgroup).
    for (m, k) in [(1, 2048), (2, 4096)] {
        let (wgsl, groups) = gemv(m, k, 64)?;
        assert!(wgsl.contains("const KS: u32 = 1u;"), "m = {m}, k = {k}");
        assert_eq!(groups[0] * groups[1], 4);
    }
    Ok(())
}
