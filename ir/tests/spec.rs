//! `ir/SPEC.md` has a row for every op and every unary/binary/reduce kind.

mod common;

use std::collections::BTreeSet;
use tessera_ir::{IrError, Op, ReduceKind};

const SPEC: &str = include_str!("../SPEC.md");

/// Mnemonics of one instance of every Op variant and every op kind.
fn every_mnemonic() -> Result<BTreeSet<String>, IrError> {
    let g = common::every_op_graph()?;
    // The graph must hold every Op variant (variant_index is an exhaustive match).
    let variants: BTreeSet<usize> = g.nodes().iter().map(|n| common::variant_index(&n.op)).collect();
    assert_eq!(variants, (0..common::OP_VARIANTS).collect(), "every_op_graph misses an Op variant");
    let mut names: BTreeSet<String> = g.nodes().iter().map(|n| n.op.mnemonic()).collect();
    names.extend(common::all_unary().into_iter().map(|u| Op::Unary(u).mnemonic()));
    names.extend(common::all_binary().into_iter().map(|b| Op::Binary(b).mnemonic()));
    let reduce = |kind: ReduceKind| Op::Reduce { kind, axes: vec![], keepdims: false }.mnemonic();
    names.extend(common::all_reduce().into_iter().map(reduce));
    Ok(names)
}

#[test]
fn spec_has_a_row_for_every_mnemonic() -> Result<(), IrError> {
    let names = every_mnemonic()?;
    // 24 variants without kinds, plus 15 unary, 13 binary and 4 reduce kinds.
    assert_eq!(names.len(), 56, "{names:?}");
    let missing: Vec<&String> = names.iter().filter(|m| !SPEC.contains(&format!("\n| `{m}` |"))).collect();
    assert!(missing.is_empty(), "ir/SPEC.md has no row for {missing:?}");
    Ok(())
}

#[test]
fn spec_rows_have_six_columns() {
    for line in SPEC.lines().filter(|l| l.starts_with("| `")) {
        // Cells may not contain `|`, which would split the row.
        assert_eq!(line.matches('|').count(), 7, "malformed row: {line}");
    }
}
