//! The interpreter against values derived by hand, one group per op.

mod common;

use tessera_ir::interp::{Tensor, eval_op, run};
use tessera_ir::{
    BinaryOp, DType, Graph, IrError, Op, ReduceKind, RopeStyle, Shape, SliceRange, UnaryOp, float,
};

type Res = Result<(), IrError>;

fn f32s(shape: impl Into<Shape>, data: &[f64]) -> Tensor {
    Tensor::new(shape, DType::F32, data.to_vec())
}

fn i32s(shape: impl Into<Shape>, data: &[f64]) -> Tensor {
    Tensor::new(shape, DType::I32, data.to_vec())
}

fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor, IrError> {
    eval_op(&Op::Unary(op), &[x])
}

fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor, IrError> {
    eval_op(&Op::Binary(op), &[a, b])
}

/// Equal within `rel` relative error (NaN matches NaN, infinities must match exactly).
fn assert_close(got: &Tensor, want: &[f64], rel: f64) {
    assert_eq!(got.data.len(), want.len(), "{got:?}");
    for (i, (&g, &w)) in got.data.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= rel * w.abs().max(1e-30);
        assert!(ok, "element {i}: got {g}, want {w} (all: {:?})", got.data);
    }
}

const F32_REL: f64 = 1.2e-7;

#[test]
fn constant_fills_and_rounds_to_dtype() -> Res {
    let c = |value: f64, dtype| Op::Constant {
        value: float(value).expect("not NaN"),
        shape: Shape::from([2]),
        dtype,
    };
    assert_eq!(eval_op(&c(f64::NEG_INFINITY, DType::F32), &[])?.data, vec![f64::NEG_INFINITY; 2]);
    assert_eq!(eval_op(&c(0.1, DType::F32), &[])?.data, vec![0.1f32 as f64; 2]);
    assert_eq!(eval_op(&c(-2.7, DType::I32), &[])?.data, vec![-2.0; 2]);
    Ok(())
}

#[test]
fn unary_ops_on_floats() -> Res {
    let x = f32s([2], &[0.0, 1.0]);
    assert_eq!(unary(UnaryOp::Neg, &f32s([2], &[1.0, -2.0]))?.data, vec![-1.0, 2.0]);
    assert_close(&unary(UnaryOp::Exp, &x)?, &[1.0, std::f64::consts::E], F32_REL);
    assert_close(&unary(UnaryOp::Log, &f32s([2], &[1.0, 0.0]))?, &[0.0, f64::NEG_INFINITY], 0.0);
    assert_eq!(unary(UnaryOp::Sqrt, &f32s([2], &[4.0, 2.25]))?.data, vec![2.0, 1.5]);
    assert_eq!(unary(UnaryOp::Rsqrt, &f32s([2], &[4.0, 0.0]))?.data, vec![0.5, f64::INFINITY]);
    assert_eq!(unary(UnaryOp::Sin, &x)?.data[0], 0.0);
    assert_eq!(unary(UnaryOp::Cos, &x)?.data[0], 1.0);
    assert_close(&unary(UnaryOp::Tanh, &f32s([2], &[0.0, 100.0]))?, &[0.0, 1.0], 0.0);
    assert_close(&unary(UnaryOp::Sigmoid, &f32s([2], &[0.0, -1000.0]))?, &[0.5, 0.0], 0.0);
    // silu(2) = 2 / (1 + e^-2)
    assert_close(&unary(UnaryOp::Silu, &f32s([2], &[0.0, 2.0]))?, &[0.0, 1.7615941559557646], F32_REL);
    // gelu(1) = Phi(1), gelu(-1) = -Phi(-1)
    let pm1 = f32s([3], &[1.0, -1.0, 0.0]);
    assert_close(&unary(UnaryOp::Gelu, &pm1)?, &[0.8413447460685429, -0.15865525393145707, 0.0], F32_REL);
    assert_close(&unary(UnaryOp::GeluTanh, &pm1)?, &[0.8411919906082768, -0.15880800939172324, 0.0], F32_REL);
    assert_eq!(unary(UnaryOp::Relu, &f32s([2], &[-1.0, 2.0]))?.data, vec![0.0, 2.0]);
    assert_eq!(unary(UnaryOp::Abs, &f32s([2], &[-1.5, 2.0]))?.data, vec![1.5, 2.0]);
    assert_eq!(unary(UnaryOp::Recip, &f32s([2], &[4.0, 0.0]))?.data, vec![0.25, f64::INFINITY]);
    Ok(())
}

#[test]
fn gelu_keeps_relative_accuracy_far_left() -> Res {
    // gelu(-10) = -10 * Phi(-10) = -7.619853024160593e-23: representable in f32, and lost
    // entirely by a naive 1 + erf(x).
    let y = unary(UnaryOp::Gelu, &f32s([1], &[-10.0]))?;
    assert_close(&y, &[-7.619853024160593e-23], 2.0 * F32_REL);
    Ok(())
}

#[test]
fn unary_ops_on_integers_wrap() -> Res {
    let min = i32::MIN as f64;
    assert_eq!(unary(UnaryOp::Neg, &i32s([2], &[min, 5.0]))?.data, vec![min, -5.0]);
    assert_eq!(unary(UnaryOp::Abs, &i32s([2], &[min, -5.0]))?.data, vec![min, 5.0]);
    assert_eq!(unary(UnaryOp::Relu, &i32s([2], &[-3.0, 5.0]))?.data, vec![0.0, 5.0]);
    let u = Tensor::new([1], DType::U32, vec![1.0]);
    assert_eq!(unary(UnaryOp::Neg, &u)?.data, vec![4294967295.0]);
    assert!(unary(UnaryOp::Exp, &u).is_err());
    Ok(())
}

#[test]
fn binary_arithmetic_broadcasts() -> Res {
    let a = f32s([2, 1], &[1.0, 2.0]);
    let b = f32s([3], &[10.0, 20.0, 30.0]);
    let y = binary(BinaryOp::Add, &a, &b)?;
    assert_eq!(y.shape, Shape::from([2, 3]));
    assert_eq!(y.data, vec![11.0, 21.0, 31.0, 12.0, 22.0, 32.0]);
    assert_eq!(binary(BinaryOp::Sub, &a, &b)?.data, vec![-9.0, -19.0, -29.0, -8.0, -18.0, -28.0]);
    assert_eq!(binary(BinaryOp::Mul, &a, &b)?.data, vec![10.0, 20.0, 30.0, 20.0, 40.0, 60.0]);
    assert_eq!(binary(BinaryOp::Max, &f32s([2], &[1.0, 5.0]), &f32s([2], &[3.0, 2.0]))?.data, vec![3.0, 5.0]);
    assert_eq!(binary(BinaryOp::Min, &f32s([2], &[1.0, 5.0]), &f32s([2], &[3.0, 2.0]))?.data, vec![1.0, 2.0]);
    assert_eq!(
        binary(BinaryOp::Pow, &f32s([2], &[2.0, 9.0]), &f32s([2], &[10.0, 0.5]))?.data,
        vec![1024.0, 3.0]
    );
    // Float division by zero is IEEE.
    let y = binary(BinaryOp::Div, &f32s([3], &[1.0, -1.0, 0.0]), &f32s([1], &[0.0]))?;
    assert_close(&y, &[f64::INFINITY, f64::NEG_INFINITY, f64::NAN], 0.0);
    Ok(())
}

#[test]
fn binary_results_round_to_the_dtype() -> Res {
    // f16 has a spacing of 2 at 2048, so 2048 + 1 rounds (to even) back to 2048.
    let h = |v: f64| Tensor::new([1], DType::F16, vec![v]);
    assert_eq!(binary(BinaryOp::Add, &h(2048.0), &h(1.0))?.data, vec![2048.0]);
    // f32: 1 + 2^-24 is not representable.
    let one = f32s([1], &[1.0]);
    assert_eq!(binary(BinaryOp::Add, &one, &f32s([1], &[2f64.powi(-24)]))?.data, vec![1.0]);
    Ok(())
}

#[test]
fn integer_arithmetic_wraps_and_divides_like_wgsl() -> Res {
    let (max, min) = (i32::MAX as f64, i32::MIN as f64);
    assert_eq!(binary(BinaryOp::Add, &i32s([1], &[max]), &i32s([1], &[1.0]))?.data, vec![min]);
    assert_eq!(binary(BinaryOp::Sub, &i32s([1], &[min]), &i32s([1], &[1.0]))?.data, vec![max]);
    let y = binary(BinaryOp::Mul, &i32s([2], &[65536.0, max]), &i32s([2], &[65536.0, 2.0]))?;
    assert_eq!(y.data, vec![0.0, -2.0]);
    let u = |v: &[f64]| Tensor::new([v.len()], DType::U32, v.to_vec());
    // (2^32 - 1)^2 = 2^64 - 2^33 + 1 = 1 mod 2^32: needs exact 64-bit products.
    assert_eq!(binary(BinaryOp::Mul, &u(&[4294967295.0]), &u(&[4294967295.0]))?.data, vec![1.0]);
    let a = i32s([5], &[7.0, -7.0, 7.0, 7.0, min]);
    let b = i32s([5], &[2.0, 2.0, -2.0, 0.0, -1.0]);
    assert_eq!(binary(BinaryOp::Div, &a, &b)?.data, vec![3.0, -3.0, -3.0, 7.0, min]);
    assert_eq!(binary(BinaryOp::Div, &u(&[7.0, 7.0]), &u(&[2.0, 0.0]))?.data, vec![3.0, 7.0]);
    Ok(())
}

#[test]
fn comparisons_give_bool() -> Res {
    let a = f32s([4], &[1.0, 2.0, 3.0, f64::NAN]);
    let b = f32s([1], &[2.0]);
    let cases = [
        (BinaryOp::Eq, [0.0, 1.0, 0.0, 0.0]),
        (BinaryOp::Ne, [1.0, 0.0, 1.0, 1.0]),
        (BinaryOp::Lt, [1.0, 0.0, 0.0, 0.0]),
        (BinaryOp::Le, [1.0, 1.0, 0.0, 0.0]),
        (BinaryOp::Gt, [0.0, 0.0, 1.0, 0.0]),
        (BinaryOp::Ge, [0.0, 1.0, 1.0, 0.0]),
    ];
    for (op, want) in cases {
        let y = binary(op, &a, &b)?;
        assert_eq!((y.dtype, y.data.as_slice()), (DType::Bool, want.as_slice()), "{op:?}");
    }
    Ok(())
}

#[test]
fn where_broadcasts_all_three() -> Res {
    let cond = Tensor::new([2, 1], DType::Bool, vec![1.0, 0.0]);
    let a = f32s([3], &[1.0, 2.0, 3.0]);
    let b = f32s([], &[-1.0]);
    let y = eval_op(&Op::Where, &[&cond, &a, &b])?;
    assert_eq!(y.shape, Shape::from([2, 3]));
    assert_eq!(y.data, vec![1.0, 2.0, 3.0, -1.0, -1.0, -1.0]);
    Ok(())
}

#[test]
fn cast_truncates_clamps_and_wraps() -> Res {
    let cast = |x: &Tensor, to| eval_op(&Op::Cast { to }, &[x]);
    let x = f32s([7], &[-1.7, 2.9, 3e9, -3e9, f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
    let (max, min) = (i32::MAX as f64, i32::MIN as f64);
    assert_eq!(cast(&x, DType::I32)?.data, vec![-1.0, 2.0, max, min, 0.0, max, min]);
    assert_eq!(cast(&f32s([3], &[-5.0, 5e9, 7.9]), DType::U32)?.data, vec![0.0, 4294967295.0, 7.0]);
    // Integers into integers wrap modulo 2^32.
    assert_eq!(cast(&i32s([1], &[-1.0]), DType::U32)?.data, vec![4294967295.0]);
    assert_eq!(cast(&Tensor::new([1], DType::U32, vec![4294967295.0]), DType::I32)?.data, vec![-1.0]);
    // Anything into bool is x != 0 (NaN included); bool into numbers is 0/1.
    let b = cast(&f32s([4], &[0.0, -2.0, 0.5, f64::NAN]), DType::Bool)?;
    assert_eq!(b.data, vec![0.0, 1.0, 1.0, 1.0]);
    assert_eq!(cast(&b, DType::F32)?.data, vec![0.0, 1.0, 1.0, 1.0]);
    // Into floats rounds to nearest.
    assert_eq!(cast(&f32s([1], &[1.0 / 3.0]), DType::F16)?.data, vec![0.333251953125]);
    assert_eq!(cast(&i32s([1], &[16777217.0]), DType::F32)?.data, vec![16777216.0]);
    assert_eq!(cast(&f32s([1], &[70000.0]), DType::F16)?.data, vec![f64::INFINITY]);
    Ok(())
}

/// x[i][j][k] = 6i + 2j + k, shape [2,3,2].
fn ramp_2x3x2() -> Tensor {
    f32s([2, 3, 2], &(0..12).map(f64::from).collect::<Vec<_>>())
}

#[test]
fn reduce_over_the_middle_axis_with_keepdims() -> Res {
    let x = ramp_2x3x2();
    let r = |kind| eval_op(&Op::Reduce { kind, axes: vec![1], keepdims: true }, &[&x]);
    // sum_j (6i + 2j + k) = 18i + 6 + 3k
    let y = r(ReduceKind::Sum)?;
    assert_eq!(y.shape, Shape::from([2, 1, 2]));
    assert_eq!(y.data, vec![6.0, 9.0, 24.0, 27.0]);
    assert_eq!(r(ReduceKind::Max)?.data, vec![4.0, 5.0, 10.0, 11.0]);
    assert_eq!(r(ReduceKind::Min)?.data, vec![0.0, 1.0, 6.0, 7.0]);
    assert_eq!(r(ReduceKind::Mean)?.data, vec![2.0, 3.0, 8.0, 9.0]);
    // Over axes 0 and 2 without keepdims: sum_{i,k} = 14 + 8j.
    let y = eval_op(&Op::Reduce { kind: ReduceKind::Sum, axes: vec![0, 2], keepdims: false }, &[&x])?;
    assert_eq!((y.shape, y.data), (Shape::from([3]), vec![14.0, 22.0, 30.0]));
    // No axes: no reduction.
    let y = eval_op(&Op::Reduce { kind: ReduceKind::Sum, axes: vec![], keepdims: false }, &[&x])?;
    assert_eq!(y, x);
    Ok(())
}

#[test]
fn reduce_of_empty_sets_and_integer_sums() -> Res {
    let empty = f32s([2, 0], &[]);
    let r = |kind, x: &Tensor| eval_op(&Op::Reduce { kind, axes: vec![1], keepdims: false }, &[x]);
    assert_eq!(r(ReduceKind::Sum, &empty)?.data, vec![0.0, 0.0]);
    assert_eq!(r(ReduceKind::Max, &empty)?.data, vec![f64::NEG_INFINITY; 2]);
    assert_eq!(r(ReduceKind::Min, &empty)?.data, vec![f64::INFINITY; 2]);
    assert!(r(ReduceKind::Mean, &empty)?.data.iter().all(|v| v.is_nan()));
    let empty_int = i32s([1, 0], &[]);
    assert_eq!(r(ReduceKind::Max, &empty_int)?.data, vec![i32::MIN as f64]);
    assert_eq!(r(ReduceKind::Min, &empty_int)?.data, vec![i32::MAX as f64]);
    let u_empty = Tensor::new([1, 0], DType::U32, vec![]);
    assert_eq!(r(ReduceKind::Max, &u_empty)?.data, vec![0.0]);
    assert_eq!(r(ReduceKind::Min, &u_empty)?.data, vec![u32::MAX as f64]);
    assert_eq!(r(ReduceKind::Sum, &i32s([1, 2], &[i32::MAX as f64, 1.0]))?.data, vec![i32::MIN as f64]);
    assert!(r(ReduceKind::Mean, &i32s([1, 2], &[1.0, 2.0])).is_err());
    Ok(())
}

#[test]
fn argmax_returns_the_first_maximum() -> Res {
    let x = f32s([2, 3], &[1.0, 3.0, 3.0, 5.0, 2.0, 5.0]);
    let y = eval_op(&Op::ArgMax { axis: 1, keepdims: false }, &[&x])?;
    assert_eq!((y.dtype, y.shape.clone(), y.data), (DType::U32, Shape::from([2]), vec![1.0, 0.0]));
    let y = eval_op(&Op::ArgMax { axis: 0, keepdims: true }, &[&x])?;
    assert_eq!((y.shape, y.data), (Shape::from([1, 3]), vec![1.0, 0.0, 1.0]));
    Ok(())
}

#[test]
fn matmul_of_2x3_by_3x2_and_broadcast_batches() -> Res {
    let a = f32s([2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = f32s([3, 2], &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
    let y = eval_op(&Op::MatMul, &[&a, &b])?;
    assert_eq!((y.shape, y.data), (Shape::from([2, 2]), vec![58.0, 64.0, 139.0, 154.0]));
    // Batch [2] against no batch: [I, 2I] x B = [B, 2B].
    let a = f32s([2, 2, 2], &[1.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 2.0]);
    let b = f32s([2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let y = eval_op(&Op::MatMul, &[&a, &b])?;
    assert_eq!(y.shape, Shape::from([2, 2, 2]));
    assert_eq!(y.data, vec![1.0, 2.0, 3.0, 4.0, 2.0, 4.0, 6.0, 8.0]);
    // Batch dims [2,1] and [3] broadcast to [2,3].
    let a = f32s([2, 1, 1, 1], &[1.0, 10.0]);
    let b = f32s([3, 1, 1], &[1.0, 2.0, 3.0]);
    let y = eval_op(&Op::MatMul, &[&a, &b])?;
    assert_eq!(y.shape, Shape::from([2, 3, 1, 1]));
    assert_eq!(y.data, vec![1.0, 2.0, 3.0, 10.0, 20.0, 30.0]);
    Ok(())
}

#[test]
fn reshape_and_permute_of_a_2x3x4() -> Res {
    let x = f32s([2, 3, 4], &(0..24).map(f64::from).collect::<Vec<_>>());
    let y = eval_op(&Op::Reshape { shape: Shape::from([6, 4]) }, &[&x])?;
    assert_eq!((y.shape, &y.data), (Shape::from([6, 4]), &x.data));
    // out[i][j][k] = x[j][k][i] = 12j + 4k + i
    let y = eval_op(&Op::Permute { perm: vec![2, 0, 1] }, &[&x])?;
    assert_eq!(y.shape, Shape::from([4, 2, 3]));
    let want: Vec<f64> = (0..4)
        .flat_map(|i| (0..2).flat_map(move |j| (0..3).map(move |k| f64::from(12 * j + 4 * k + i))))
        .collect();
    assert_eq!(y.data, want);
    assert_eq!(&y.data[..6], &[0.0, 4.0, 8.0, 12.0, 16.0, 20.0]);
    Ok(())
}

#[test]
fn broadcast_repeats_unit_and_missing_axes() -> Res {
    let row = f32s([3], &[1.0, 2.0, 3.0]);
    let y = eval_op(&Op::Broadcast { shape: Shape::from([2, 3]) }, &[&row])?;
    assert_eq!(y.data, vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    let col = f32s([2, 1], &[1.0, 2.0]);
    let y = eval_op(&Op::Broadcast { shape: Shape::from([2, 3]) }, &[&col])?;
    assert_eq!(y.data, vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    Ok(())
}

#[test]
fn slice_with_steps() -> Res {
    let x = f32s([10], &(0..10).map(f64::from).collect::<Vec<_>>());
    let y = eval_op(&Op::Slice { ranges: vec![SliceRange { start: 1, stop: 8, step: 3 }] }, &[&x])?;
    assert_eq!(y.data, vec![1.0, 4.0, 7.0]);
    let x = f32s([3, 4], &(0..12).map(f64::from).collect::<Vec<_>>());
    let ranges = vec![SliceRange { start: 0, stop: 3, step: 2 }, SliceRange { start: 1, stop: 4, step: 2 }];
    let y = eval_op(&Op::Slice { ranges }, &[&x])?;
    assert_eq!((y.shape, y.data), (Shape::from([2, 2]), vec![1.0, 3.0, 9.0, 11.0]));
    let empty = vec![SliceRange { start: 3, stop: 3, step: 1 }, SliceRange::full(4)];
    assert_eq!(eval_op(&Op::Slice { ranges: empty }, &[&x])?.shape, Shape::from([0, 4]));
    Ok(())
}

#[test]
fn concat_along_inner_and_outer_axes() -> Res {
    let a = f32s([2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let b = f32s([2, 1], &[5.0, 6.0]);
    let y = eval_op(&Op::Concat { axis: 1 }, &[&a, &b])?;
    assert_eq!((y.shape, y.data), (Shape::from([2, 3]), vec![1.0, 2.0, 5.0, 3.0, 4.0, 6.0]));
    let c = f32s([1, 2], &[7.0, 8.0]);
    let y = eval_op(&Op::Concat { axis: 0 }, &[&a, &c, &a])?;
    assert_eq!(y.shape, Shape::from([5, 2]));
    assert_eq!(y.data, vec![1.0, 2.0, 3.0, 4.0, 7.0, 8.0, 1.0, 2.0, 3.0, 4.0]);
    Ok(())
}

#[test]
fn gather_clamps_indices() -> Res {
    let table = f32s([3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let idx = i32s([2, 2], &[2.0, -1.0, 7.0, 0.0]);
    let y = eval_op(&Op::Gather, &[&table, &idx])?;
    assert_eq!(y.shape, Shape::from([2, 2, 2]));
    assert_eq!(y.data, vec![5.0, 6.0, 1.0, 2.0, 5.0, 6.0, 1.0, 2.0]);
    let idx = Tensor::new([1], DType::U32, vec![4294967295.0]);
    assert_eq!(eval_op(&Op::Gather, &[&table, &idx])?.data, vec![5.0, 6.0]);
    Ok(())
}

#[test]
fn softmax_of_zero_and_ln2_is_thirds() -> Res {
    let x = f32s([2], &[0.0, std::f64::consts::LN_2]);
    assert_close(&eval_op(&Op::Softmax { axis: 0 }, &[&x])?, &[1.0 / 3.0, 2.0 / 3.0], F32_REL);
    // Large magnitudes do not overflow: the max is subtracted first.
    let x = f32s([2, 2], &[1000.0, -1000.0, 1000.0, 1000.0]);
    assert_close(&eval_op(&Op::Softmax { axis: 1 }, &[&x])?, &[1.0, 0.0, 0.5, 0.5], 0.0);
    // Along axis 0: columns are [1000, 1000] and [-1000, 1000].
    assert_close(&eval_op(&Op::Softmax { axis: 0 }, &[&x])?, &[0.5, 0.0, 0.5, 1.0], 0.0);
    Ok(())
}

#[test]
fn rms_norm_and_layer_norm() -> Res {
    let eps0 = float(0.0).expect("not NaN");
    // mean([9, 16]) = 12.5
    let x = f32s([1, 2], &[3.0, 4.0]);
    let w = f32s([2], &[1.0, 2.0]);
    let y = eval_op(&Op::RmsNorm { eps: eps0 }, &[&x, &w])?;
    assert_close(&y, &[0.848528137423857, 2.262741699796952], F32_REL);
    // Zeros stay zero with eps > 0.
    let z = f32s([2], &[0.0, 0.0]);
    assert_eq!(eval_op(&Op::RmsNorm { eps: float(1e-6).expect("not NaN") }, &[&z, &w])?.data, vec![0.0, 0.0]);
    // mean 2.5, biased variance 1.25
    let x = f32s([4], &[1.0, 2.0, 3.0, 4.0]);
    let w = f32s([4], &[1.0, 1.0, 2.0, 2.0]);
    let b = f32s([4], &[0.0, 0.0, 1.0, 1.0]);
    let y = eval_op(&Op::LayerNorm { eps: eps0 }, &[&x, &w, &b])?;
    let (s, t) = (1.3416407864998738, 0.4472135954999579);
    assert_close(&y, &[-s, -t, 2.0 * t + 1.0, 2.0 * s + 1.0], F32_REL);
    Ok(())
}

#[test]
fn rope_rotates_the_right_pairs() -> Res {
    let x = f32s([2, 4], &[1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]);
    // cos/sin of [2] broadcast over the row axis: pair 0 rotates by 90 degrees, pair 1 not at all.
    let cos = f32s([2], &[0.0, 1.0]);
    let sin = f32s([2], &[1.0, 0.0]);
    let half = eval_op(&Op::Rope { style: RopeStyle::HalfSplit }, &[&x, &cos, &sin])?;
    // pairs (0,2) and (1,3): (1,3) -> (1*0 - 3*1, 3*0 + 1*1) = (-3, 1)
    assert_eq!(half.data, vec![-3.0, 2.0, 1.0, 4.0, -3.0, 2.0, 1.0, 4.0]);
    let inter = eval_op(&Op::Rope { style: RopeStyle::Interleaved }, &[&x, &cos, &sin])?;
    // pairs (0,1) and (2,3): (1,2) -> (-2, 1)
    assert_eq!(inter.data, vec![-2.0, 1.0, 3.0, 4.0, -2.0, 1.0, 3.0, 4.0]);
    // Per-row angles: row 1 uses the identity rotation.
    let cos = f32s([2, 1], &[0.0, 1.0]);
    let sin = f32s([2, 1], &[1.0, 0.0]);
    let y = eval_op(&Op::Rope { style: RopeStyle::HalfSplit }, &[&x, &cos, &sin])?;
    assert_eq!(y.data, vec![-3.0, -4.0, 1.0, 2.0, 1.0, 2.0, 3.0, 4.0]);
    Ok(())
}

#[test]
fn run_binds_by_name_and_returns_outputs_in_order() -> Res {
    let mut g = Graph::new();
    let x = g.input("x", [2], DType::F32);
    let w = g.param("w", [2], DType::F32);
    let y = g.add(Op::Binary(BinaryOp::Mul), &[x, w])?;
    g.add_output(y)?;
    g.add_output(x)?;
    let out = run(
        &g,
        &[("w", f32s([2], &[3.0, 4.0])), ("x", f32s([2], &[1.0, 2.0])), ("unused", f32s([], &[0.0]))],
    )?;
    assert_eq!(out, vec![f32s([2], &[3.0, 8.0]), f32s([2], &[1.0, 2.0])]);
    Ok(())
}

#[test]
fn run_reports_missing_and_mismatched_bindings() -> Res {
    let mut g = Graph::new();
    let x = g.input("tokens", [2], DType::I32);
    g.add_output(x)?;
    let err = run(&g, &[]).expect_err("missing binding").to_string();
    assert!(err.contains("tokens"), "{err}");
    let err = run(&g, &[("tokens", f32s([2], &[1.0, 2.0]))]).expect_err("wrong dtype").to_string();
    assert!(err.contains("tokens") && err.contains("i32[2]") && err.contains("f32[2]"), "{err}");
    let err = run(&g, &[("tokens", i32s([3], &[1.0, 2.0, 3.0]))]).expect_err("wrong shape").to_string();
    assert!(err.contains("i32[3]"), "{err}");
    let bad = Tensor { shape: Shape::from([2]), dtype: DType::I32, data: vec![1.0] };
    assert!(matches!(run(&g, &[("tokens", bad)]), Err(IrError::Binding(_))));
    assert!(Tensor::try_new([3], DType::F32, vec![1.0]).is_err());
    assert!(
        eval_op(&Op::Input { name: "x".into(), shape: Shape::scalar(), dtype: DType::F32 }, &[]).is_err()
    );
    Ok(())
}

#[test]
fn every_op_graph_runs() -> Res {
    let g = common::every_op_graph()?;
    g.verify()?;
    let ramp = |n: usize| (0..n).map(|i| i as f64 * 0.25 - 1.0).collect::<Vec<_>>();
    let bindings = [
        ("x", f32s([2, 4], &ramp(8))),
        ("model.layers.0.w \"quoted\" \\ tab\t newline\n", f32s([4], &[0.5, 1.0, 1.5, 2.0])),
        ("bias", f32s([4], &[0.0, 0.1, 0.2, 0.3])),
        ("ids", i32s([3], &[1.0, 0.0, 5.0])),
        ("m", f32s([4, 3], &ramp(12))),
        ("cos", f32s([2], &[1.0, 0.0])),
        ("sin", f32s([1, 2], &[0.0, 1.0])),
        ("q", f32s([1, 4, 2, 8], &ramp(64))),
        ("k", f32s([1, 2, 2, 8], &ramp(32))),
        ("offset", Tensor::new([1], DType::U32, vec![1.0])),
        ("kv_len", Tensor::new([1], DType::U32, vec![3.0])),
        (
            "qw.weight",
            Tensor::new(
                [3, 4],
                DType::U32,
                (0..12).map(|i| (i * 0x01020304u32 as usize % 4294967296) as f64).collect(),
            ),
        ),
        ("qw.scales", f32s([3, 1], &[0.5, 1.0, 2.0])),
        ("qw.biases", f32s([3, 1], &[-1.0, 0.0, 1.0])),
        ("x16", f32s([2, 16], &ramp(32))),
        ("x32", f32s([2, 32], &ramp(64))),
    ];
    let out = run(&g, &bindings)?;
    assert_eq!(out.len(), g.outputs().len());
    for (o, t) in g.outputs().iter().zip(&out) {
        assert_eq!((&t.shape, t.dtype), (&g.node(*o).shape, g.node(*o).dtype));
    }
    Ok(())
}

#[test]
fn quant_matmul_and_gather_dequantize_mlx_affine_codes() -> Res {
    // One row of 8 four-bit codes 0..7 (code i in bits 4i), one group: w = 0.5 * code - 1.
    let word = (0..8u32).fold(0u32, |acc, i| acc | (i << (4 * i))) as f64;
    let w = Tensor::new([1, 1], DType::U32, vec![word]);
    let s = f32s([1, 1], &[0.5]);
    let b = f32s([1, 1], &[-1.0]);
    let x = f32s([2, 8], &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    let y = eval_op(&Op::QuantMatMul { bits: 4, group_size: 8 }, &[&x, &w, &s, &b])?;
    // Row 0: w[0] + w[7] = -1 + 2.5; row 1: sum of 0.5*c - 1 over c = 0..7 = 14 - 8.
    assert_eq!(y.data, vec![1.5, 6.0]);
    assert_eq!(y.shape, Shape::from([2, 1]));
    let idx = Tensor::new([2], DType::I32, vec![0.0, 9.0]);
    let rows = eval_op(&Op::QuantGather { bits: 4, group_size: 8 }, &[&w, &s, &b, &idx])?;
    let row: Vec<f64> = (0..8).map(|c| 0.5 * c as f64 - 1.0).collect();
    assert_eq!(rows.data, [row.clone(), row].concat(), "index 9 clamps to the last row");
    // Eight-bit codes, two groups of 4 (codes 1..8), scales 1 and 10.
    let words =
        vec![f64::from(u32::from_le_bytes([1, 2, 3, 4])), f64::from(u32::from_le_bytes([5, 6, 7, 8]))];
    let w8 = Tensor::new([1, 2], DType::U32, words);
    let y = eval_op(
        &Op::QuantMatMul { bits: 8, group_size: 4 },
        &[&f32s([1, 8], &[1.0; 8]), &w8, &f32s([1, 2], &[1.0, 10.0]), &f32s([1, 2], &[0.0, 0.5])],
    )?;
    assert_eq!(y.data, vec![10.0 + 262.0]);
    Ok(())
}

#[test]
fn attention_masks_by_cache_length_and_causality_with_grouped_heads() -> Res {
    // One kv head shared by two query heads; keys are one-hot so scores are easy by hand.
    let q = f32s([1, 2, 2, 2], &[1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    let k = f32s([1, 1, 4, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 9.0, 9.0]);
    let v = f32s([1, 1, 4, 1], &[10.0, 20.0, 30.0, 1000.0]);
    let len = Tensor::new([1], DType::U32, vec![3.0]);
    let scale = float(std::f64::consts::LN_2).ok_or(IrError::Graph("NaN".into()))?;
    let y = eval_op(&Op::Attention { scale, causal: true }, &[&q, &k, &v, &len])?;
    // Rows are positions 1 and 2 (kv_len 3, S 2). Head 0 row 0 sees keys 0,1 with scores
    // ln2*[1, 0]: weights [2/3, 1/3] -> 40/3. Head 0 row 1 sees keys 0..2 with scores
    // ln2*[0, 1, 1]: weights [1/5, 2/5, 2/5] -> 22. Head 1 has q = 0: uniform weights.
    let want = [40.0 / 3.0, 22.0, 15.0, 20.0];
    for (g, w) in y.data.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "{:?} vs {want:?}", y.data);
    }
    let y = eval_op(&Op::Attention { scale, causal: false }, &[&q, &k, &v, &len])?;
    assert!((y.data[0] - (2.0 * 10.0 + 20.0 + 2.0 * 30.0) / 5.0).abs() < 1e-5, "non-causal sees key 2");
    let none = Tensor::new([1], DType::U32, vec![0.0]);
    let y = eval_op(&Op::Attention { scale, causal: false }, &[&q, &k, &v, &none])?;
    assert_eq!(y.data, vec![0.0; 4], "no visible key gives zeros");
    Ok(())
}

#[test]
fn write_slice_and_iota() -> Res {
    let dst = f32s([2, 3], &[0.0; 6]);
    let src = f32s([2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let at = |o: f64| Tensor::new([1], DType::U32, vec![o]);
    let y = eval_op(&Op::WriteSlice { axis: 1 }, &[&dst, &src, &at(1.0)])?;
    assert_eq!(y.data, vec![0.0, 1.0, 2.0, 0.0, 3.0, 4.0]);
    let y = eval_op(&Op::WriteSlice { axis: 1 }, &[&dst, &src, &at(2.0)])?;
    assert_eq!(y.data, vec![0.0, 0.0, 1.0, 0.0, 0.0, 3.0], "rows past the end are dropped");
    let i = eval_op(&Op::Iota { shape: Shape::from([2, 3]), axis: 0, dtype: DType::I32 }, &[])?;
    assert_eq!(i.data, vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    Ok(())
}

#[test]
fn states_persist_through_run_with_states() -> Res {
    let mut g = Graph::new();
    let cache = g.add(Op::State { name: "c".into(), shape: Shape::from([4]), dtype: DType::F32 }, &[])?;
    let x = g.input("x", [1], DType::F32);
    let at = g.input("at", [1], DType::U32);
    let c = g.add(Op::WriteSlice { axis: 0 }, &[cache, x, at])?;
    let total = g.add(Op::Reduce { kind: ReduceKind::Sum, axes: vec![0], keepdims: false }, &[c])?;
    g.add_output(total)?;
    g.verify()?;
    let mut states = std::collections::HashMap::new();
    let mut sums = Vec::new();
    for (i, v) in [1.0, 2.0, 4.0].into_iter().enumerate() {
        let out = tessera_ir::interp::run_with_states(
            &g,
            &[("x", f32s([1], &[v])), ("at", Tensor::new([1], DType::U32, vec![i as f64]))],
            &mut states,
        )?;
        sums.push(out[0].data[0]);
    }
    assert_eq!(sums, vec![1.0, 3.0, 7.0]);
    // A state read by anything but one write_slice is rejected.
    let mut bad = Graph::new();
    let s = bad.add(Op::State { name: "c".into(), shape: Shape::from([4]), dtype: DType::F32 }, &[])?;
    let y = bad.add(Op::Unary(UnaryOp::Neg), &[s])?;
    bad.add_output(y)?;
    assert!(bad.verify().is_err());
    Ok(())
}

#[test]
fn round_int8_rounds_each_block_to_its_own_scale() -> Res {
    let op = Op::RoundInt8 { block: 4 };
    // Block 1: a = 127/64, so one code step is 1/64; the ties 50.5 and 51.5 steps round to
    // even. Block 2: all zeros stay zero. Block 3: the largest magnitude is kept exactly.
    let x =
        f32s([3, 4], &[1.984375, -0.011, 50.5 / 64.0, 51.5 / 64.0, 0.0, 0.0, 0.0, 0.0, -8.0, 3.0, 0.03, 8.0]);
    let y = eval_op(&op, &[&x])?;
    let step = 8.0 / 127.0;
    let want =
        [1.984375, -1.0 / 64.0, 50.0 / 64.0, 52.0 / 64.0, 0.0, 0.0, 0.0, 0.0, -8.0, 48.0 * step, 0.0, 8.0];
    assert_close(&y, &want, 1e-6);
    // Not whole blocks, or not f32: rejected by inference.
    assert!(eval_op(&op, &[&f32s([6], &[1.0; 6])]).is_err());
    assert!(eval_op(&op, &[&i32s([4], &[1.0; 4])]).is_err());
    Ok(())
}
