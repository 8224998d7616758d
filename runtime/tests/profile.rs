//! `TESSERA_PROFILE=FILE.json`: a profiled plan writes one Chrome trace event per dispatch per
//! run (valid JSON after every run), with the kernel's name, non-negative durations and the
//! dispatch's bindings and bytes; without the variable a plan records nothing.
//! One test only: it sets a process-wide variable.

mod common;

use serde_json::Value;
use tessera_compiler::{CompileOptions, DeviceProfile, Plan, compile};
use tessera_ir::{BinaryOp, DType, Graph, Op, ReduceKind, UnaryOp};

/// `sum(exp(x) * x)` compiled one kernel per op: three dispatches of different kernels.
fn three_dispatch_plan(profile: &DeviceProfile) -> Plan {
    let mut g = Graph::new();
    let x = g.input("x", [1000], DType::F32);
    let e = g.add(Op::Unary(UnaryOp::Exp), &[x]).expect("exp");
    let m = g.add(Op::Binary(BinaryOp::Mul), &[e, x]).expect("mul");
    let s = g.add(Op::Reduce { kind: ReduceKind::Sum, axes: vec![0], keepdims: false }, &[m]).expect("sum");
    g.add_output(s).expect("output");
    compile(&g, profile, &CompileOptions::unoptimized()).expect("compile")
}

#[test]
fn profiled_runs_write_one_trace_event_per_dispatch() {
    let gpu = gpu_or_skip!();
    let plan = three_dispatch_plan(gpu.profile());
    let input: Vec<u8> = (0..1000).flat_map(|i| (i as f32 / 1000.0).to_le_bytes()).collect();

    let mut plain = gpu.load(&plan).expect("load");
    plain.write_input("x", &input).expect("input");
    let expected = plain.run().expect("run");
    assert!(plain.kernel_times().is_none(), "no profiling without TESSERA_PROFILE");

    let path = std::env::temp_dir().join(format!("tessera-profile-test-{}.json", std::process::id()));
    // SAFETY: the only test in this binary, so no other thread reads the environment now.
    unsafe { std::env::set_var("TESSERA_PROFILE", &path) };
    let mut exe = gpu.load(&plan).expect("load");
    if !gpu.report().features.timestamp_query {
        assert!(exe.kernel_times().is_none());
        eprintln!("SKIPPED: adapter without TIMESTAMP_QUERY");
        return;
    }
    exe.write_input("x", &input).expect("input");
    assert_eq!(exe.run().expect("profiled run"), expected, "profiling changes no result");
    exe.run_without_readback().expect("profiled run without read-back");

    let text = std::fs::read_to_string(&path).expect("the profile file");
    let events: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    let n = plan.dispatches.len();
    assert_eq!(n, 3);
    assert_eq!(events.len(), 2 * n, "{text}");
    for (k, event) in events.iter().enumerate() {
        let dispatch = k % n;
        let kernel = &plan.kernels[plan.dispatches[dispatch].kernel];
        assert_eq!(event["name"], kernel.name.as_str(), "{event}");
        assert_eq!(event["ph"], "X", "{event}");
        assert_eq!(event["args"]["dispatch"], dispatch, "{event}");
        assert_eq!(event["args"]["run"], k / n + 1, "{event}");
        assert_eq!(event["args"]["bindings"], plan.dispatches[dispatch].buffers.len(), "{event}");
        assert!(event["args"]["bytes"].as_u64().is_some_and(|b| b > 0), "{event}");
        let dur = event["dur"].as_f64().unwrap_or(-1.0);
        let ts = event["ts"].as_f64().unwrap_or(-1.0);
        assert!(dur >= 0.0 && ts >= 0.0, "{event}");
    }
    let (times, runs) = exe.kernel_times().expect("a profiled plan has kernel times");
    assert_eq!(runs, 2);
    assert_eq!(times.iter().map(|t| t.count).sum::<usize>(), 2 * n);
    assert!(times.windows(2).all(|w| w[0].total >= w[1].total), "longest first: {times:?}");
    assert!(tessera_runtime::kernel_times().iter().map(|t| t.count).sum::<usize>() >= 2 * n);
    let _ = std::fs::remove_file(&path);
}
