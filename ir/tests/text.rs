//! The text form round-trips exactly, is stable, and rejects malformed or mistyped lines.

mod common;

use tessera_ir::text::{dump, parse};
use tessera_ir::{DType, Graph, IrError, Op, Shape, float};

type Res = Result<(), IrError>;

#[test]
fn every_op_round_trips_exactly_and_dump_is_stable() -> Res {
    let g = common::every_op_graph()?;
    let text = dump(&g);
    let back = parse(&text)?;
    assert_eq!(back, g, "{text}");
    assert_eq!(dump(&back), text);
    assert_eq!(g.to_string(), text);
    Ok(())
}

#[test]
fn dump_matches_the_documented_format() -> Res {
    let mut g = Graph::new();
    let x = g.input("x", [2, 3], DType::F32);
    let w = g.param("model.layers.0.w", [3, 4], DType::F32);
    let c = g.add(
        Op::Constant {
            value: float(f64::NEG_INFINITY).expect("not NaN"),
            shape: Shape::scalar(),
            dtype: DType::F32,
        },
        &[],
    )?;
    let y = g.add(Op::MatMul, &[x, w])?;
    let s = g.add(Op::Reduce { kind: tessera_ir::ReduceKind::Sum, axes: vec![1], keepdims: true }, &[y])?;
    g.set_outputs(vec![s, c])?;
    let want = "\
%0 = input \"x\" : f32[2,3]
%1 = param \"model.layers.0.w\" : f32[3,4]
%2 = constant -inf : f32[]
%3 = matmul %0, %1 : f32[2,4]
%4 = reduce.sum {axes=[1], keepdims=true} %3 : f32[2,1]
outputs %4, %2
";
    assert_eq!(dump(&g), want);
    Ok(())
}

#[test]
fn floats_round_trip_bit_for_bit() -> Res {
    for v in
        [0.1, 1e-5, 1e-300, 5e-324, 1.0 / 3.0, -0.0, 1e300, f64::MAX, f64::INFINITY, -2.5e-7, 123456789.0]
    {
        let mut g = Graph::new();
        let c = g.add(
            Op::Constant { value: float(v).expect("not NaN"), shape: Shape::from([1]), dtype: DType::F32 },
            &[],
        )?;
        let n = g.add(Op::RmsNorm { eps: float(v.abs()).expect("not NaN") }, &[c, c])?;
        g.set_outputs(vec![n])?;
        let back = parse(&dump(&g))?;
        let Op::Constant { value, .. } = &back.node(c).op else { panic!("not a constant") };
        assert_eq!(value.into_inner().to_bits(), v.to_bits(), "{v}");
        assert_eq!(back, g);
    }
    Ok(())
}

#[test]
fn names_with_quotes_and_control_characters_round_trip() -> Res {
    let mut g = Graph::new();
    let name = "a \"b\" \\c\nd\te\r\u{1}f é 模型";
    let x = g.input(name, [1], DType::U32);
    g.add_output(x)?;
    let text = dump(&g);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert_eq!(parse(&text)?, g);
    Ok(())
}

#[test]
fn blank_lines_comments_and_spacing_are_tolerated() -> Res {
    let text = "# a comment\n\n  %0 = input \"x\" : f32[2]\n%1 = exp   %0 : f32[2]\n\noutputs   %1\n\n";
    let g = parse(text)?;
    assert_eq!(g.len(), 2);
    assert_eq!(dump(&g), "%0 = input \"x\" : f32[2]\n%1 = exp %0 : f32[2]\noutputs %1\n");
    Ok(())
}

fn parse_err(text: &str) -> (usize, String) {
    match parse(text) {
        Err(IrError::Parse { line, reason }) => (line, reason),
        other => panic!("expected a parse error for {text:?}, got {other:?}"),
    }
}

#[test]
fn malformed_text_names_the_line_and_the_problem() {
    let head = "%0 = input \"x\" : f32[2,3]\n";
    let cases = [
        (format!("{head}%1 = matmul %0, %0 : f32[2,3]\noutputs %1\n"), 2, "matmul"),
        (format!("{head}%1 = exp %0 : f32[2,4]\noutputs %1\n"), 2, "f32[2,4]"),
        (format!("{head}%2 = exp %0 : f32[2,3]\noutputs %2\n"), 2, "expected node %1"),
        (format!("{head}%1 = exp %5 : f32[2,3]\noutputs %1\n"), 2, "%5"),
        (format!("{head}%1 = frobnicate %0 : f32[2,3]\noutputs %1\n"), 2, "frobnicate"),
        (format!("{head}%1 = softmax {{axs=1}} %0 : f32[2,3]\noutputs %1\n"), 2, "axis"),
        (format!("{head}%1 = cast {{to=f64}} %0 : f32[2,3]\noutputs %1\n"), 2, "f64"),
        (format!("{head}outputs %3\n"), 2, "%3"),
        (format!("{head}outputs %0\n%1 = exp %0 : f32[2,3]\n"), 3, "outputs"),
        (head.to_string(), 2, "outputs"),
        ("%0 = input \"x : f32[2]\noutputs %0\n".to_string(), 1, "unterminated"),
        ("%0 = constant nan : f32[2]\noutputs %0\n".to_string(), 1, "NaN"),
        ("%0 = input \"x\" : f32[2] extra\noutputs %0\n".to_string(), 1, "extra"),
        ("%0 = input \"\\q\" : f32[2]\noutputs %0\n".to_string(), 1, "escape"),
    ];
    for (text, line, needle) in cases {
        let (l, reason) = parse_err(&text);
        assert_eq!(l, line, "{text}: {reason}");
        assert!(reason.contains(needle), "{text}: {reason} (wanted `{needle}`)");
    }
}
