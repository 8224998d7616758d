//! The lazy `Array` API as users see it (shared/INTERFACE.md), on the GPU.

mod common;

use tessera::{Array, DType, Device, Error};

fn device() -> Option<Device> {
    common::gpu()?;
    Some(Device::default().expect("a GPU was found, so the default device must open"))
}

fn close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "length: got {got:?}, want {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-5 + 1e-5 * w.abs(), "got {got:?}, want {want:?}");
    }
}

#[test]
fn interface_example_runs_as_written() -> Result<(), Error> {
    let Some(_) = device() else { return Ok(()) };
    let dev = Device::default()?;
    let a = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], &dev)?;
    let b = Array::from_vec(vec![0.5f32; 12], &[3, 4], &dev)?;
    let c = a.matmul(&b)?.add(&Array::scalar(1.0, &dev)?)?.softmax(-1)?;
    let v: Vec<f32> = c.to_vec()?;
    // Every row of a @ b is constant (3.0 and 7.5), so softmax is uniform.
    close(&v, &[0.25; 8]);
    assert_eq!(c.shape(), &[2, 4]);
    Ok(())
}

#[test]
fn elementwise_broadcasting_and_negative_axes() -> Result<(), Error> {
    let Some(dev) = device() else { return Ok(()) };
    let x = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], &dev)?;
    let col = Array::from_vec(vec![10.0f32, 20.0], &[2, 1], &dev)?;
    close(&x.add(&col)?.to_vec::<f32>()?, &[11.0, 12.0, 13.0, 24.0, 25.0, 26.0]);
    close(&x.sum(&[-1], false)?.to_vec::<f32>()?, &[6.0, 15.0]);
    close(&x.max(&[0], true)?.to_vec::<f32>()?, &[4.0, 5.0, 6.0]);
    close(&x.mean(&[], false)?.to_vec::<f32>()?, &[3.5]);
    assert_eq!(x.argmax(-1, false)?.to_vec::<u32>()?, vec![2, 2]);
    close(&x.transpose(&[])?.reshape(&[-1])?.to_vec::<f32>()?, &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    close(&x.slice(&[(0, 2, 1), (-2, 3, 1)])?.to_vec::<f32>()?, &[2.0, 3.0, 5.0, 6.0]);
    let mask = x.greater(&Array::scalar(3.0, &dev)?)?;
    close(&mask.where_(&x, &Array::scalar(0.0, &dev)?)?.to_vec::<f32>()?, &[0.0, 0.0, 0.0, 4.0, 5.0, 6.0]);
    Ok(())
}

#[test]
fn weak_scalars_keep_the_array_dtype() -> Result<(), Error> {
    let Some(dev) = device() else { return Ok(()) };
    let x = Array::from_vec(vec![1i32, -2, 3], &[3], &dev)?;
    let y = x.mul(&Array::scalar(2.0, &dev)?)?;
    assert_eq!(y.dtype(), DType::I32);
    assert_eq!(y.to_vec::<i32>()?, vec![2, -4, 6]);
    let h = Array::from_vec(vec![half::f16::from_f32(1.5)], &[1], &dev)?;
    assert_eq!(h.add(&Array::scalar(1.0, &dev)?)?.dtype(), DType::F16);
    Ok(())
}

#[test]
fn matmul_follows_numpy_for_vectors_and_batches() -> Result<(), Error> {
    let Some(dev) = device() else { return Ok(()) };
    let m = Array::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2], &dev)?;
    let v = Array::from_vec(vec![1.0f32, 1.0], &[2], &dev)?;
    let mv = m.matmul(&v)?;
    assert_eq!(mv.shape(), &[2]);
    close(&mv.to_vec::<f32>()?, &[3.0, 7.0]);
    let vm = v.matmul(&m)?;
    assert_eq!(vm.shape(), &[2]);
    close(&vm.to_vec::<f32>()?, &[4.0, 6.0]);
    let batch = Array::from_vec((0..8).map(|i| i as f32).collect(), &[2, 2, 2], &dev)?;
    let out = batch.matmul(&m)?;
    assert_eq!(out.shape(), &[2, 2, 2]);
    close(&out.to_vec::<f32>()?, &[3.0, 4.0, 11.0, 16.0, 19.0, 28.0, 27.0, 40.0]);
    Ok(())
}

#[test]
fn shape_errors_name_the_op_and_shapes() -> Result<(), Error> {
    let Some(dev) = device() else { return Ok(()) };
    let a = Array::from_vec(vec![0.0f32; 6], &[2, 3], &dev)?;
    let b = Array::from_vec(vec![0.0f32; 8], &[4, 2], &dev)?;
    let msg = a.matmul(&b).expect_err("inner dims differ").to_string();
    assert!(msg.contains("matmul") && msg.contains("[2,3]") && msg.contains("[4,2]"), "{msg}");
    let msg = a.add(&b).expect_err("no broadcast").to_string();
    assert!(msg.contains("add") && msg.contains("f32[2,3]"), "{msg}");
    let msg = a.sum(&[2], false).expect_err("axis out of range").to_string();
    assert!(msg.contains("axis 2"), "{msg}");
    let msg = a.reshape(&[4, -1]).expect_err("6 elements into 4x?").to_string();
    assert!(msg.contains("reshape"), "{msg}");
    let msg = Array::from_vec(vec![1.0f32; 5], &[2, 3], &dev).expect_err("5 values").to_string();
    assert!(msg.contains("from_vec"), "{msg}");
    let i = Array::from_vec(vec![1i32, 2], &[2], &dev)?;
    let msg = i.exp().expect_err("exp of ints").to_string();
    assert!(msg.contains("exp") && msg.contains("i32"), "{msg}");
    Ok(())
}

#[test]
fn eval_is_cached_by_structure() -> Result<(), Error> {
    let Some(_) = device() else { return Ok(()) };
    let dev = Device::new()?;
    let run = |k: f32| -> Result<Vec<f32>, Error> {
        let x = Array::from_vec(vec![k, 2.0 * k, 3.0 * k], &[3], &dev)?;
        x.exp()?.log()?.mul(&x)?.to_vec()
    };
    close(&run(1.0)?, &[1.0, 4.0, 9.0]);
    let after_first = dev.compile_count();
    close(&run(2.0)?, &[4.0, 16.0, 36.0]);
    assert_eq!(dev.compile_count(), after_first, "same structure must reuse the compiled plan");
    Ok(())
}

#[test]
fn compile_traces_once_per_signature() -> Result<(), Error> {
    let Some(_) = device() else { return Ok(()) };
    let dev = Device::new()?;
    let bias = Array::from_vec(vec![1.0f32, 2.0, 3.0], &[3], &dev)?;
    let f = tessera::compile(|x: &[Array]| Ok(vec![x[0].add(&bias)?.relu()?]));
    let x = Array::from_vec(vec![-5.0f32, 0.5, 1.0], &[3], &dev)?;
    close(&f.call(&[x])?[0].to_vec::<f32>()?, &[0.0, 2.5, 4.0]);
    let compiles = dev.compile_count();
    let x = Array::from_vec(vec![1.0f32, -3.0, 0.0], &[3], &dev)?;
    close(&f.call(&[x])?[0].to_vec::<f32>()?, &[2.0, 0.0, 3.0]);
    assert_eq!(dev.compile_count(), compiles);
    let x = Array::from_vec(vec![0.0f32; 6], &[2, 3], &dev)?;
    close(&f.call(&[x])?[0].to_vec::<f32>()?, &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    assert_eq!(dev.compile_count(), compiles + 1, "a new shape compiles once more");
    Ok(())
}

#[test]
fn concat_gather_and_norms() -> Result<(), Error> {
    let Some(dev) = device() else { return Ok(()) };
    let a = Array::from_vec(vec![1.0f32, 2.0], &[1, 2], &dev)?;
    let b = Array::from_vec(vec![3.0f32, 4.0, 5.0, 6.0], &[2, 2], &dev)?;
    let c = Array::concat(&[&a, &b], 0)?;
    close(&c.to_vec::<f32>()?, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let idx = Array::from_vec(vec![2i32, 0], &[2], &dev)?;
    close(&c.gather(&idx)?.to_vec::<f32>()?, &[5.0, 6.0, 1.0, 2.0]);
    let w = Array::from_vec(vec![1.0f32, 1.0], &[2], &dev)?;
    let x = Array::from_vec(vec![3.0f32, 4.0], &[1, 2], &dev)?;
    let rms = (12.5f32).sqrt();
    close(&x.rms_norm(&w, 0.0)?.to_vec::<f32>()?, &[3.0 / rms, 4.0 / rms]);
    Ok(())
}
