//! Conformance cases for the model ops: iota, write_slice, state (KV cache), attention,
//! quantized matmul and gather.

use super::{Builder, Case, SIZES};
use crate::common::Domain;
use rand::Rng;
use rand::rngs::StdRng;
use tessera::layers::ir::interp::Tensor;
use tessera::layers::ir::{
    BinaryOp, DType, NodeId, Op, ReduceKind, RopeStyle, Shape, SliceRange, UnaryOp, float,
};

pub(crate) fn iota_cases(rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    for dtype in [DType::F32, DType::F16, DType::I32, DType::U32] {
        let shapes = SIZES.iter().map(|&n| (vec![n], 0)).chain([
            (vec![3, 50], 0),
            (vec![3, 50], 1),
            (vec![2, 783, 3], 1),
        ]);
        for (shape, axis) in shapes {
            let op = Op::Iota { shape: Shape::from(shape.clone()), axis, dtype };
            let mut b = Builder::new(rng);
            let y = b.op(op.clone(), &[]);
            cases.push(b.finish(format!("iota {dtype}{shape:?} axis {axis}"), op, y, 1));
        }
    }
    cases
}

impl Builder<'_> {
    /// An input holding exactly `values`.
    fn data(&mut self, shape: &[usize], dtype: DType, values: Vec<f64>) -> NodeId {
        let name = format!("x{}", self.bindings.len());
        let id = self.graph.input(&name, shape.to_vec(), dtype);
        self.bindings.push((name, Tensor::new(shape.to_vec(), dtype, values)));
        id
    }

    /// f32 x whose int8 codes per block of 32 sit at least 0.2 from a rounding tie (one value of
    /// each block is its largest magnitude `a`, the rest `(q + u) * a / 127` with |u| <= 0.3), so
    /// the GPU's `127 / a` rounded differently from the interpreter's cannot flip a code. `a`
    /// lies in `[0.5, 2) * scale`.
    fn int8_grid(&mut self, shape: &[usize], scale: f64) -> NodeId {
        let n: usize = shape.iter().product();
        let mut values = Vec::with_capacity(n);
        for _ in 0..n / 32 {
            let a: f64 = self.rng.random_range(0.5..2.0) * scale;
            let peak = self.rng.random_range(0..32);
            for i in 0..32 {
                let q = if i == peak {
                    if self.rng.random::<bool>() { 127.0 } else { -127.0 }
                } else {
                    self.rng.random_range(-126..=126) as f64 + self.rng.random_range(-0.3..0.3)
                };
                values.push(q * a / 127.0);
            }
        }
        self.data(shape, DType::F32, values)
    }

    /// A packed `[rows, k]` table: random u32 words, scales ~U(0.01, 0.1), biases ~U(-0.1, 0.1).
    fn packed(&mut self, rows: usize, k: usize, bits: u32, group: usize, dtype: DType) -> [NodeId; 3] {
        let words = (0..rows * k * bits as usize / 32).map(|_| self.rng.random::<u32>() as f64).collect();
        let w = self.data(&[rows, k * bits as usize / 32], DType::U32, words);
        let groups = rows * k / group;
        let scales = (0..groups).map(|_| self.rng.random_range(0.01..0.1)).collect();
        let biases = (0..groups).map(|_| self.rng.random_range(-0.1..0.1)).collect();
        let scales = self.data(&[rows, k / group], dtype, scales);
        let biases = self.data(&[rows, k / group], dtype, biases);
        [w, scales, biases]
    }
}

pub(crate) fn write_slice_cases(rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    // (dst, src, axis, offset): inside, flush with the end, running past it, wholly past it.
    let layouts: [(&[usize], &[usize], usize, u32); 8] = [
        (&[3, 50], &[3, 7], 1, 0),
        (&[3, 50], &[3, 7], 1, 20),
        (&[3, 50], &[3, 7], 1, 43),
        (&[3, 50], &[3, 7], 1, 48),
        (&[3, 50], &[3, 7], 1, 100),
        (&[783], &[5], 0, 780),
        (&[2, 3, 4], &[2, 3, 2], 2, 3),
        (&[4096, 1], &[1, 1], 0, 4095),
    ];
    for dtype in DType::ALL {
        for (dst, src, axis, offset) in layouts {
            let op = Op::WriteSlice { axis };
            let mut b = Builder::new(rng);
            let d = b.input(dst, dtype, Domain::Any);
            let s = b.input(src, dtype, Domain::Any);
            let o = b.data(&[1], DType::U32, vec![offset as f64]);
            let y = b.op(op.clone(), &[d, s, o]);
            cases.push(b.finish(format!("write_slice {dtype}{dst:?} <- {src:?} at {offset}"), op, y, 1));
        }
    }
    cases
}

/// States start at zero (in the interpreter and on a freshly loaded plan), so one run compares.
pub(crate) fn state_cases(rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    let state = |name: &str, shape: &[usize], dtype| Op::State {
        name: name.into(),
        shape: Shape::from(shape),
        dtype,
    };
    for dtype in [DType::F32, DType::F16, DType::I32] {
        for offset in [0, 3, 5] {
            // The updated state itself as the output (a copy out of the state's buffer).
            let mut b = Builder::new(rng);
            let cache = b.op(state("cache", &[5, 4], dtype), &[]);
            let src = b.input(&[2, 4], dtype, Domain::Any);
            let at = b.data(&[1], DType::U32, vec![offset as f64]);
            let op = Op::WriteSlice { axis: 0 };
            let y = b.op(op.clone(), &[cache, src, at]);
            cases.push(b.finish(format!("state {dtype}[5,4] write at {offset}"), op.clone(), y, 1));
            // Something computed from it.
            let mut b = Builder::new(rng);
            let cache = b.op(state("cache", &[3, 50], dtype), &[]);
            let src = b.input(&[3, 20], dtype, Domain::Any);
            let at = b.data(&[1], DType::U32, vec![offset as f64 * 10.0]);
            let y = b.op(Op::WriteSlice { axis: 1 }, &[cache, src, at]);
            let sum = b.op(Op::Reduce { kind: ReduceKind::Sum, axes: vec![1], keepdims: false }, &[y]);
            cases.push(b.finish(
                format!("state {dtype}[3,50] write at {} then sum", offset * 10),
                op,
                sum,
                50,
            ));
        }
    }
    // A merged projection whose second half is a cache write (the v of a qkv gemv): the matmul
    // stores those elements into the cache too (a tee) while its first half stays an output.
    // 1 and 3 rows of x run gemvs, 12 the tiled kernel; at 14 the last row falls off the cache.
    for (s, pos) in [(1, 0), (3, 5), (3, 14), (12, 2)] {
        let (k, h, d, rows) = (64, 2, 8, 16);
        let c = h * d;
        let mut b = Builder::new(rng);
        let x = b.input(&[s, k], DType::F32, Domain::Any);
        let [w, scales, biases] = b.packed(2 * c, k, 4, 32, DType::F16);
        let y = b.op(Op::QuantMatMul { bits: 4, group_size: 32 }, &[x, w, scales, biases]);
        let half = |start| Op::Slice {
            ranges: vec![SliceRange::full(s), SliceRange { start, stop: start + c, step: 1 }],
        };
        let first = b.op(half(0), &[y]);
        let v = b.op(half(c), &[y]);
        let v = b.op(Op::Reshape { shape: Shape::from([s, h, d]) }, &[v]);
        let v = b.op(Op::Permute { perm: vec![1, 0, 2] }, &[v]);
        let v = b.op(Op::Reshape { shape: Shape::from([1, h, s, d]) }, &[v]);
        let at = b.data(&[1], DType::U32, vec![pos as f64]);
        let cache = b.op(state("v", &[1, h, rows, d], DType::F32), &[]);
        let written = b.op(Op::WriteSlice { axis: 2 }, &[cache, v, at]);
        let two = b.op(
            Op::Constant { value: float(2.0).expect("not NaN"), shape: Shape::scalar(), dtype: DType::F32 },
            &[],
        );
        let out = b.op(Op::Binary(BinaryOp::Mul), &[written, two]);
        // The cache (compared) first; the other half an output too, so the matmul keeps its buffer.
        b.graph.add_output(out).expect("output");
        b.graph.add_output(first).expect("output");
        let name = format!("state tee: quant_matmul [{s},{k}] half written at {pos} of {rows}");
        let op = Op::QuantMatMul { bits: 4, group_size: 32 };
        cases.push(Case { name, graph: b.graph, bindings: b.bindings, op, reduce_len: k });
    }
    // A KV cache: new keys and values written at `pos`, attention over the updated caches.
    for dtype in [DType::F32, DType::F16] {
        for (s, pos) in [(1, 0), (1, 37), (7, 20)] {
            let mut b = Builder::new(rng);
            let q = b.input(&[1, 4, s, 8], dtype, Domain::Any);
            let k_new = b.input(&[1, 2, s, 8], dtype, Domain::Any);
            let v_new = b.input(&[1, 2, s, 8], dtype, Domain::Any);
            let at = b.data(&[1], DType::U32, vec![pos as f64]);
            let len = b.data(&[1], DType::U32, vec![(pos + s) as f64]);
            let k_cache = b.op(state("k", &[1, 2, 64, 8], dtype), &[]);
            let v_cache = b.op(state("v", &[1, 2, 64, 8], dtype), &[]);
            let k = b.op(Op::WriteSlice { axis: 2 }, &[k_cache, k_new, at]);
            let v = b.op(Op::WriteSlice { axis: 2 }, &[v_cache, v_new, at]);
            let op = Op::Attention { scale: float(0.35).expect("not NaN"), causal: true };
            let y = b.op(op.clone(), &[q, k, v, len]);
            cases.push(b.finish(format!("state kv cache {dtype} S={s} at {pos}, attention"), op, y, 64));
        }
    }
    // A decode step's RoPE: the table (positions times inv_freq, its cos and sin) read by the
    // keys' cache write and by the attention's queries. Up to 4096 angles the fusion recomputes
    // the table inside both kernels; 130 positions of 32 angles materialize it. A 1024-row cache
    // splits the attention over its keys.
    for (s, pos, rows) in [(1, 9, 136), (3, 40, 136), (130, 2, 136), (1, 700, 1024)] {
        let (hq, hkv, d) = (4, 2, 64);
        let mut b = Builder::new(rng);
        let positions = b.data(&[s], DType::U32, (pos..pos + s).map(|p| p as f64).collect());
        let inv_freq: Vec<f64> = (0..d / 2).map(|i| 10000f64.powf(-2.0 * i as f64 / d as f64)).collect();
        let inv_freq = b.data(&[1, d / 2], DType::F32, inv_freq);
        let angles = b.op(Op::Cast { to: DType::F32 }, &[positions]);
        let angles = b.op(Op::Reshape { shape: Shape::from([s, 1]) }, &[angles]);
        let angles = b.op(Op::Binary(BinaryOp::Mul), &[angles, inv_freq]);
        let cos = b.op(Op::Unary(UnaryOp::Cos), &[angles]);
        let sin = b.op(Op::Unary(UnaryOp::Sin), &[angles]);
        let rope = Op::Rope { style: RopeStyle::HalfSplit };
        let q = b.input(&[1, hq, s, d], DType::F32, Domain::Any);
        let q = b.op(rope.clone(), &[q, cos, sin]);
        let k = b.input(&[1, hkv, s, d], DType::F32, Domain::Any);
        let k = b.op(rope.clone(), &[k, cos, sin]);
        let v = b.input(&[1, hkv, s, d], DType::F32, Domain::Any);
        let at = b.data(&[1], DType::U32, vec![pos as f64]);
        let len = b.data(&[1], DType::U32, vec![(pos + s) as f64]);
        let k_cache = b.op(state("k", &[1, hkv, rows, d], DType::F32), &[]);
        let v_cache = b.op(state("v", &[1, hkv, rows, d], DType::F32), &[]);
        let k = b.op(Op::WriteSlice { axis: 2 }, &[k_cache, k, at]);
        let v = b.op(Op::WriteSlice { axis: 2 }, &[v_cache, v, at]);
        let op = Op::Attention { scale: float(0.125).expect("not NaN"), causal: true };
        let y = b.op(op.clone(), &[q, k, v, len]);
        cases.push(b.finish(
            format!("rope table inline: S={s} at {pos} of {rows}, cache write and attention"),
            rope,
            y,
            rows,
        ));
    }
    cases
}

/// (B, Hq, Hkv, S, T, D, Dv, causal, kv_len per batch)
pub(crate) type AttentionLayout = (usize, usize, usize, usize, usize, usize, usize, bool, &'static [u32]);

pub(crate) fn attention_cases(rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    // With subgroups every row runs one online softmax per subgroup; without them, decode-sized
    // rows (< 128) run 256 keys per chunk with groups splitting the value sums and 128 rows and
    // up chunks of 64. Also: several 256-key chunks, Dv wider than a workgroup, fewer keys than
    // subgroups (or than keys per step), and Llama heads (32 over 8, D = 64 and 128, odd lengths).
    let layouts: [AttentionLayout; 26] = [
        (1, 1, 1, 1, 1, 2, 2, false, &[1]),
        (1, 1, 1, 1, 1, 2, 2, true, &[1]),
        (1, 9, 3, 1, 64, 64, 64, true, &[1]),
        (1, 9, 3, 1, 64, 64, 64, true, &[37]),
        (1, 9, 3, 1, 64, 64, 64, true, &[64]),
        (1, 9, 3, 7, 64, 64, 64, true, &[7]),
        (1, 9, 3, 7, 64, 64, 64, true, &[30]),
        (2, 4, 2, 3, 16, 8, 8, false, &[16, 5]),
        (2, 4, 2, 3, 16, 8, 8, true, &[16, 5]),
        (1, 2, 1, 3, 8, 4, 4, true, &[1]),
        (1, 2, 1, 2, 8, 4, 4, false, &[0]),
        (1, 2, 1, 2, 8, 4, 4, false, &[20]),
        (1, 2, 2, 2, 150, 4, 100, false, &[150]),
        (1, 2, 2, 3, 150, 16, 3, true, &[129]),
        (1, 8, 2, 16, 40, 32, 32, true, &[40]),
        (1, 2, 1, 1, 300, 8, 8, false, &[300]),
        (1, 1, 1, 1, 4, 4, 300, false, &[4]),
        (1, 32, 8, 1, 300, 64, 64, true, &[257]),
        (1, 32, 8, 2, 160, 128, 128, true, &[151]),
        (1, 9, 3, 1, 700, 64, 64, true, &[613]),
        // Split over the keys (fewer than 128 rows, a cache of 512 rows or more): an empty row
        // beside a long one, a short length in a long cache (one part busy of 16), a long one,
        // causal rows of different lengths, Dv wider than the combine's workgroup, odd lengths.
        (2, 4, 2, 1, 1024, 32, 32, true, &[0, 1000]),
        (1, 9, 3, 1, 4096, 64, 64, true, &[5]),
        (1, 9, 3, 1, 4096, 64, 64, true, &[2500]),
        (1, 4, 1, 3, 640, 128, 128, true, &[640]),
        (1, 2, 2, 2, 600, 4, 300, false, &[600]),
        (1, 2, 1, 1, 520, 8, 8, false, &[517]),
    ];
    for dtype in [DType::F32, DType::F16] {
        for (b_, hq, hkv, s, t, d, dv, causal, kv_len) in layouts {
            let mut b = Builder::new(rng);
            let q = b.input(&[b_, hq, s, d], dtype, Domain::Any);
            let k = b.input(&[b_, hkv, t, d], dtype, Domain::Any);
            let v = b.input(&[b_, hkv, t, dv], dtype, Domain::Any);
            let len = b.data(&[b_], DType::U32, kv_len.iter().map(|&l| l as f64).collect());
            let op = Op::Attention { scale: float(1.0 / (d as f64).sqrt()).expect("not NaN"), causal };
            let y = b.op(op.clone(), &[q, k, v, len]);
            let name = format!(
                "attention {dtype} B={b_} Hq={hq} Hkv={hkv} S={s} T={t} D={d} Dv={dv} causal={causal} kv_len={kv_len:?}"
            );
            cases.push(b.finish(name, op, y, t));
        }
    }
    cases
}

pub(crate) fn quant_matmul_cases(rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    // (M, K, N): the gemv path up to 8 rows of x, the tiled path above.
    // K = 2112: chunks past one workgroup's width; K = 4096: 16 rows per workgroup, 21 = 16 + 5.
    let shapes = [
        (1, 64, 3),
        (1, 576, 783),
        (3, 576, 50),
        (8, 64, 50),
        (9, 64, 50),
        (50, 64, 783),
        (50, 576, 3),
        (1, 2112, 5),
        (3, 2112, 7),
        (1, 4096, 21),
    ];
    for (bits, groups) in [(4, [8, 32, 64]), (8, [16, 32, 64])] {
        for group_size in groups {
            for (i, (m, k, n)) in shapes.into_iter().enumerate() {
                for dtype in [DType::F32, DType::F16] {
                    let scale_dtype = if i % 2 == 0 { dtype } else { DType::F32 };
                    let op = Op::QuantMatMul { bits, group_size };
                    let mut b = Builder::new(rng);
                    let x = b.input(&[m, k], dtype, Domain::Any);
                    let [w, scales, biases] = b.packed(n, k, bits, group_size as usize, scale_dtype);
                    let y = b.op(op.clone(), &[x, w, scales, biases]);
                    let name = format!(
                        "quant_matmul q{bits} g{group_size} {dtype} scales {scale_dtype} [{m},{k}]x[{n},{k}]^T"
                    );
                    cases.push(b.finish(name, op, y, k));
                }
            }
        }
    }
    // Prefill in f16 as model graphs build it (x cast to f16, the f16 result widened and added to
    // the residual; stored as f16 here so the f16 tolerance applies). Where the adapter has
    // cooperative matrices these run 16 x 16 fragments: M, N, K past whole 64-wide tiles and
    // 32-deep steps, K = 4096 for a long accumulation.
    for (bits, group_size, m, k, n) in [
        (4, 32, 9, 64, 50),
        (4, 32, 17, 576, 70),
        (8, 32, 64, 256, 64),
        (4, 64, 130, 2112, 70),
        (8, 16, 65, 80, 129),
        (4, 32, 128, 4096, 96),
        (8, 64, 200, 576, 300),
    ] {
        let op = Op::QuantMatMul { bits, group_size };
        let mut b = Builder::new(rng);
        let x = b.input(&[m, k], DType::F32, Domain::Any);
        let x = b.op(Op::Cast { to: DType::F16 }, &[x]);
        let [w, scales, biases] = b.packed(n, k, bits, group_size as usize, DType::F16);
        let y = b.op(op.clone(), &[x, w, scales, biases]);
        let y = b.op(Op::Cast { to: DType::F32 }, &[y]);
        let residual = b.input(&[m, n], DType::F32, Domain::Any);
        let y = b.op(Op::Binary(BinaryOp::Add), &[y, residual]);
        let y = b.op(Op::Cast { to: DType::F16 }, &[y]);
        let name = format!("f16 prefill quant_matmul q{bits} g{group_size} [{m},{k}]x[{n},{k}]^T + residual");
        cases.push(b.finish(name, op, y, k));
    }
    // x with batch dimensions.
    let op = Op::QuantMatMul { bits: 4, group_size: 32 };
    let mut b = Builder::new(rng);
    let x = b.input(&[2, 3, 64], DType::F32, Domain::Any);
    let [w, scales, biases] = b.packed(50, 64, 4, 32, DType::F16);
    let y = b.op(op.clone(), &[x, w, scales, biases]);
    cases.push(b.finish("quant_matmul q4 g32 f32 [2,3,64]".into(), op, y, 64));
    cases
}

/// `round_int8` alone and as the x of quantized gemvs, which round x themselves where the
/// adapter has the integer-dot kernel (fused, with an RMSNorm or a SwiGLU below it).
/// K = 4096 at 8 rows of x (and 576 at 32 rows, 8-bit) needs several tiles of staged x; N = 21
/// and 783 end in part-filled workgroups. One row of x with long rows splits K between two
/// subgroups per row (at [1, 1024] x [16400, 1024] with two rows per subgroup on lavapipe).
pub(crate) fn round_int8_cases(rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    let round = Op::RoundInt8 { block: 32 };
    for shape in [vec![32], vec![3, 64], vec![5, 96], vec![2, 3, 4096]] {
        let mut b = Builder::new(rng);
        let x = b.int8_grid(&shape, 1.0);
        let y = b.op(round.clone(), &[x]);
        cases.push(b.finish(format!("round_int8 f32{shape:?}"), round.clone(), y, 1));
    }
    // A block of zeros rounds to zeros (no 0/0).
    let mut b = Builder::new(rng);
    let mut values = vec![0.0; 64];
    values[40] = -3.5;
    let x = b.data(&[2, 32], DType::F32, values);
    let y = b.op(round.clone(), &[x]);
    cases.push(b.finish("round_int8 zero block".into(), round.clone(), y, 1));
    // 12 to 32 rows: short prompts, where a lane stores several partials on subgroups of 8.
    let shapes = [
        (1, 64, 3),
        (1, 576, 783),
        (3, 192, 50),
        (8, 4096, 21),
        (1, 4096, 37),
        (1, 1024, 16400),
        (5, 320, 9),
        (12, 256, 70),
        (16, 1024, 45),
        (32, 576, 130),
    ];
    for (bits, group_size) in [(4, 32), (4, 64), (8, 32), (8, 16)] {
        for (i, (m, k, n)) in shapes.into_iter().enumerate() {
            for prologue in ["", "rms_norm", "swiglu"] {
                let op = Op::QuantMatMul { bits, group_size };
                let mut b = Builder::new(rng);
                // Prologues that keep the codes: a unit norm weight (the row scale cancels in
                // each block's), a gate where silu(20) = 20 in f32 (x20 cancels likewise; x is
                // drawn 20 times smaller so the products stay near unit size).
                let scale = if prologue == "swiglu" { 0.05 } else { 1.0 };
                let mut x = b.int8_grid(&[m, k], scale);
                if prologue == "rms_norm" {
                    let w = b.data(&[k], DType::F32, vec![1.0; k]);
                    x = b.op(Op::RmsNorm { eps: float(1e-5).expect("not NaN") }, &[x, w]);
                } else if prologue == "swiglu" {
                    let gate = b.data(&[m, k], DType::F32, vec![20.0; m * k]);
                    let gate = b.op(Op::Unary(UnaryOp::Silu), &[gate]);
                    x = b.op(Op::Binary(BinaryOp::Mul), &[gate, x]);
                }
                let x = b.op(round.clone(), &[x]);
                let scale_dtype = if i % 2 == 0 { DType::F16 } else { DType::F32 };
                let [w, scales, biases] = b.packed(n, k, bits, group_size as usize, scale_dtype);
                let y = b.op(op.clone(), &[x, w, scales, biases]);
                let name = format!(
                    "round_int8 {prologue} -> quant_matmul q{bits} g{group_size} [{m},{k}]x[{n},{k}]^T"
                );
                // Normalized x is up to twice the grid's size, and so is the f32 rounding of the
                // tiled kernel (no subgroups, more than 8 rows), which multiplies in floats.
                let len = if prologue == "rms_norm" { 4 * k } else { k };
                cases.push(b.finish(name, op, y, len));
            }
        }
    }
    // After an RMSNorm (its own kernel here): the rounding sees the normalized x.
    let mut b = Builder::new(rng);
    let x = b.int8_grid(&[16, 1024], 1.0);
    let w = b.data(&[1024], DType::F32, vec![1.0; 1024]);
    let x = b.op(Op::RmsNorm { eps: float(1e-5).expect("not NaN") }, &[x, w]);
    let y = b.op(round.clone(), &[x]);
    cases.push(b.finish("round_int8 after rms_norm f32[16,1024]".into(), round.clone(), y, 1));
    cases
}

pub(crate) fn quant_gather_cases(rng: &mut StdRng) -> Vec<Case> {
    let mut cases = Vec::new();
    for rows in [50, 783] {
        for (i, (bits, group_size, k)) in
            [(4, 32, 64), (8, 64, 576), (4, 64, 576), (8, 16, 64)].into_iter().enumerate()
        {
            for dtype in [DType::F32, DType::F16] {
                let op = Op::QuantGather { bits, group_size };
                let mut b = Builder::new(rng);
                let [w, scales, biases] = b.packed(rows, k, bits, group_size as usize, dtype);
                let (idx_dtype, idx) = if i % 2 == 0 {
                    (DType::I32, (0..7).map(|_| b.rng.random_range(-3..rows as i64 + 10) as f64).collect())
                } else {
                    (DType::U32, (0..7).map(|_| b.rng.random_range(0..rows as i64 + 10) as f64).collect())
                };
                let idx = b.data(&[7], idx_dtype, idx);
                let y = b.op(op.clone(), &[w, scales, biases, idx]);
                let name =
                    format!("quant_gather q{bits} g{group_size} {dtype} [{rows},{k}] {idx_dtype} indices");
                cases.push(b.finish(name, op, y, 1));
            }
        }
    }
    cases
}
