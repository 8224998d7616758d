//! Fusion without a GPU: a transformer block built in the IR (RMSNorm, GQA attention with RoPE
//! and a KV cache, SwiGLU MLP, residuals) compiles to fewer kernels and fewer bytes than one
//! kernel per op, within recorded bounds; every fused kernel passes naga validation (the
//! pipeline validates by default) and respects the binding limit of the profile.

use tessera_compiler::{CompileOptions, DeviceProfile, Plan, compile};
use tessera_ir::{BinaryOp, DType, Graph, NodeId, Op, RopeStyle, Shape, SliceRange, UnaryOp, float};

/// One Llama block for `s` tokens: hidden 64, 4 query heads, 2 KV heads of 16, MLP 96; with
/// `int8`, each quantized matmul reads x rounded to int8 (as decode steps do).
fn block(s: usize, quant: bool, int8: bool) -> Graph {
    let (hidden, hq, hkv, d, inter, ctx) = (64, 4, 2, 16, 96, 32);
    let mut g = Graph::new();
    let h = g.input("h", [s, hidden], DType::F32);
    let cos = g.input("cos", [s, d / 2], DType::F32);
    let sin = g.input("sin", [s, d / 2], DType::F32);
    let offset = g.input("offset", [1], DType::U32);
    let kv_len = g.input("kv_len", [1], DType::U32);
    let mut n = 0;
    let mut linear = |g: &mut Graph, x: NodeId, k: usize, out: usize| -> NodeId {
        n += 1;
        if quant {
            let x = if int8 { g.add(Op::RoundInt8 { block: 32 }, &[x]).expect("round_int8") } else { x };
            let w = g.param(&format!("w{n}"), [out, k / 8], DType::U32);
            let sc = g.param(&format!("s{n}"), [out, k / 32], DType::F32);
            let b = g.param(&format!("b{n}"), [out, k / 32], DType::F32);
            g.add(Op::QuantMatMul { bits: 4, group_size: 32 }, &[x, w, sc, b]).expect("quant_matmul")
        } else {
            let w = g.param(&format!("w{n}"), [k, out], DType::F32);
            g.add(Op::MatMul, &[x, w]).expect("matmul")
        }
    };
    let eps = float(1e-5).expect("eps");
    let add = |g: &mut Graph, op: Op, x: &[NodeId]| g.add(op, x).expect("op");
    let heads = |g: &mut Graph, x: NodeId, h: usize| {
        let x = g.add(Op::Reshape { shape: Shape::from([s, h, d]) }, &[x]).expect("reshape");
        let x = g.add(Op::Permute { perm: vec![1, 0, 2] }, &[x]).expect("permute");
        g.add(Op::Reshape { shape: Shape::from([1, h, s, d]) }, &[x]).expect("reshape")
    };
    let w1 = g.param("norm1", [hidden], DType::F32);
    let x = add(&mut g, Op::RmsNorm { eps }, &[h, w1]);
    let q = linear(&mut g, x, hidden, hq * d);
    let k = linear(&mut g, x, hidden, hkv * d);
    let v = linear(&mut g, x, hidden, hkv * d);
    let (q, k, v) = (heads(&mut g, q, hq), heads(&mut g, k, hkv), heads(&mut g, v, hkv));
    let q = add(&mut g, Op::Rope { style: RopeStyle::HalfSplit }, &[q, cos, sin]);
    let k = add(&mut g, Op::Rope { style: RopeStyle::HalfSplit }, &[k, cos, sin]);
    let state =
        |name: &str| Op::State { name: name.into(), shape: Shape::from([1, hkv, ctx, d]), dtype: DType::F32 };
    let kc = add(&mut g, state("k"), &[]);
    let vc = add(&mut g, state("v"), &[]);
    let kc = add(&mut g, Op::WriteSlice { axis: 2 }, &[kc, k, offset]);
    let vc = add(&mut g, Op::WriteSlice { axis: 2 }, &[vc, v, offset]);
    let scale = float(0.25).expect("scale");
    let a = add(&mut g, Op::Attention { scale, causal: true }, &[q, kc, vc, kv_len]);
    let a = add(&mut g, Op::Reshape { shape: Shape::from([hq, s, d]) }, &[a]);
    let a = add(&mut g, Op::Permute { perm: vec![1, 0, 2] }, &[a]);
    let a = add(&mut g, Op::Reshape { shape: Shape::from([s, hq * d]) }, &[a]);
    let o = linear(&mut g, a, hq * d, hidden);
    let h = add(&mut g, Op::Binary(BinaryOp::Add), &[h, o]);
    let w2 = g.param("norm2", [hidden], DType::F32);
    let x = add(&mut g, Op::RmsNorm { eps }, &[h, w2]);
    let gate = linear(&mut g, x, hidden, inter);
    let up = linear(&mut g, x, hidden, inter);
    let gate = add(&mut g, Op::Unary(UnaryOp::Silu), &[gate]);
    let act = add(&mut g, Op::Binary(BinaryOp::Mul), &[gate, up]);
    let down = linear(&mut g, act, inter, hidden);
    let h = add(&mut g, Op::Binary(BinaryOp::Add), &[h, down]);
    g.add_output(h).expect("output");
    g
}

fn bytes(plan: &Plan) -> u64 {
    plan.report.iter().map(|r| r.bytes).sum()
}

#[test]
fn transformer_block_fuses_within_recorded_bounds() {
    for (quant, s) in [(true, 1), (false, 1), (true, 5)] {
        let g = block(s, quant, false);
        let profile = DeviceProfile::full();
        let before = compile(&g, &profile, &CompileOptions::unoptimized()).expect("unoptimized");
        let after = compile(&g, &profile, &CompileOptions::default()).expect("optimized");
        let (kb, ka) = (before.dispatches.len(), after.dispatches.len());
        eprintln!(
            "block quant={quant} s={s}: {kb} -> {ka} dispatches, {} -> {} bytes",
            bytes(&before),
            bytes(&after)
        );
        for r in &after.report {
            eprintln!("  {:<36} {:>2} bindings  {}", r.kernel, r.bindings, r.ops.join("+"));
        }
        assert_eq!(kb, 22, "one kernel per op");
        assert!(
            ka <= if quant { 9 } else { 11 },
            "{ka} dispatches after fusion (recorded bounds: 9 quantized, 11 dense)"
        );
        assert!(bytes(&after) < bytes(&before), "fusion moves fewer bytes");
        assert!(
            after.report.iter().any(|r| r.ops.contains(&"add".to_string()) && r.ops.len() > 1),
            "residual epilogue"
        );
    }
}

/// With subgroups of one size (32, as on NVIDIA), every round_int8 is the prologue of its
/// integer-dot gemvs, together with the RMSNorm or SwiGLU below it: the rounded block has the
/// dispatch count of the float one. Where subgroup sizes vary it runs as its own kernel.
#[test]
fn int8_activations_fuse_into_the_integer_dot_gemv() {
    let mut profile = DeviceProfile::full();
    (profile.subgroup_min_size, profile.subgroup_max_size) = (32, 32);
    let float = compile(&block(1, true, false), &profile, &CompileOptions::default()).expect("float x");
    let int8 = compile(&block(1, true, true), &profile, &CompileOptions::default()).expect("int8 x");
    let names: Vec<&str> = int8.report.iter().map(|r| r.kernel.as_str()).collect();
    assert_eq!(int8.dispatches.len(), float.dispatches.len(), "{names:?}");
    assert_eq!(names.iter().filter(|n| n.contains("gemv4i8")).count(), 7, "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("round_int8")), "{names:?}");
    let varying = compile(&block(1, true, true), &DeviceProfile::full(), &CompileOptions::default())
        .expect("int8 x, varying subgroups");
    let standalone = varying.report.iter().filter(|r| r.kernel.starts_with("round_int8")).count();
    assert!(standalone >= 3 && !varying.report.iter().any(|r| r.kernel.contains("gemv4i8")));
}

#[test]
fn fused_kernels_respect_a_small_binding_limit() {
    let g = block(1, false, false);
    let mut profile = DeviceProfile::full();
    profile.limits.max_storage_buffers_per_shader_stage = 5;
    let plan = compile(&g, &profile, &CompileOptions::default()).expect("compiles under 5 buffers");
    for d in &plan.dispatches {
        assert!(d.buffers.len() <= 5, "{} buffers", d.buffers.len());
    }
}

#[test]
fn switches_turn_each_step_off() {
    let g = block(1, true, false);
    let profile = DeviceProfile::full();
    let no_fuse = CompileOptions { fuse: false, ..CompileOptions::default() };
    let plan = compile(&g, &profile, &no_fuse).expect("compiles");
    assert_eq!(plan.dispatches.len(), 22);
    assert!(plan.report.iter().all(|r| r.ops.len() == 1));
}

#[test]
fn prologues_reading_one_buffer_bind_it_once() {
    // Both operands of the matmul are views of x: its kernel binds x once, then its output.
    let mut g = Graph::new();
    let x = g.input("x", [8, 8], DType::F32);
    let t = g.add(Op::Permute { perm: vec![1, 0] }, &[x]).expect("permute");
    let all = SliceRange { start: 0, stop: 8, step: 1 };
    let half = SliceRange { start: 0, stop: 8, step: 2 };
    let s = g.add(Op::Slice { ranges: vec![all, half] }, &[x]).expect("slice");
    let y = g.add(Op::MatMul, &[t, s]).expect("matmul");
    g.add_output(y).expect("output");
    let plan = compile(&g, &DeviceProfile::full(), &CompileOptions::default()).expect("compiles");
    assert_eq!(plan.dispatches.len(), 1, "{:?}", plan.kernels.iter().map(|k| &k.name).collect::<Vec<_>>());
    assert_eq!(plan.kernels[0].bindings.len(), 2, "{}", plan.kernels[0].wgsl);
}
