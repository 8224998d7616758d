//! The egg language over `ir::Op` (no second op list: an e-node is an op with its typed
//! attributes plus operand e-classes) and the analysis that gives every e-class the shape and
//! dtype `tessera_ir::infer` computes, plus the value when the class is a known constant.

use egg::{Analysis, DidMerge, EGraph, Id, Language, Symbol};
use std::fmt;
use tessera_ir::{Op, TensorType, infer};

/// One e-node: an IR op (attributes included) applied to operand e-classes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TNode {
    /// The operation, with its attributes.
    pub op: Op,
    /// Operand e-classes, in the op's order.
    pub args: Vec<Id>,
}

impl TNode {
    /// An e-node applying `op` to `args`.
    pub fn new(op: Op, args: Vec<Id>) -> TNode {
        TNode { op, args }
    }
}

impl Language for TNode {
    type Discriminant = Op;

    fn discriminant(&self) -> Op {
        self.op.clone()
    }

    fn matches(&self, other: &Self) -> bool {
        self.op == other.op && self.args.len() == other.args.len()
    }

    fn children(&self) -> &[Id] {
        &self.args
    }

    fn children_mut(&mut self) -> &mut [Id] {
        &mut self.args
    }
}

impl fmt::Display for TNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.op.mnemonic())
    }
}

/// What the analysis knows about an e-class.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassData {
    /// Shape and dtype (every e-node of a class has the same; merge asserts it).
    pub ty: TensorType,
    /// The value of every element when the class is a constant fill.
    pub constant: Option<f64>,
}

/// Shape/dtype analysis computed by the IR's own inference; it also keeps the log of rule
/// applications, since the analysis is the one piece of state every applier can reach.
#[derive(Clone, Debug, Default)]
pub struct TypeAnalysis {
    /// Every rewrite that changed the e-graph, in the order applied.
    pub applications: Vec<RuleApplication>,
}

/// One rewrite that merged something new into an e-class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleApplication {
    /// The rule's name.
    pub rule: Symbol,
    /// The e-class the rule matched (not canonical after later unions).
    pub class: Id,
    /// The e-classes that used `class` when the rule fired: where a folded term shows up once
    /// the rewritten class has merged into a leaf.
    pub users: Vec<Id>,
}

/// The e-graph tessera optimizes.
pub type TEGraph = EGraph<TNode, TypeAnalysis>;

/// The type of `op` over operand classes, or `None` when inference rejects it (rules check this
/// before adding a node, so an ill-typed node never enters the e-graph).
pub fn node_type(egraph: &TEGraph, op: &Op, args: &[Id]) -> Option<TensorType> {
    let operands: Vec<TensorType> = args.iter().map(|&a| egraph[a].data.ty.clone()).collect();
    infer(op, &operands).ok()
}

impl Analysis<TNode> for TypeAnalysis {
    type Data = ClassData;

    fn make(egraph: &mut TEGraph, enode: &TNode, _id: Id) -> ClassData {
        let ty = match node_type(egraph, &enode.op, &enode.args) {
            Some(ty) => ty,
            None => panic!(
                "ill-typed e-node {} entered the e-graph (a rule skipped its check)",
                enode.op.mnemonic()
            ),
        };
        let constant = match &enode.op {
            Op::Constant { value, dtype, .. } => Some(dtype.round(value.into_inner())),
            Op::Broadcast { .. } | Op::Reshape { .. } | Op::Permute { .. } => {
                egraph[enode.args[0]].data.constant
            }
            Op::Input { .. }
            | Op::Param { .. }
            | Op::Unary(_)
            | Op::Binary(_)
            | Op::Where
            | Op::Cast { .. }
            | Op::Reduce { .. }
            | Op::ArgMax { .. }
            | Op::MatMul
            | Op::Slice { .. }
            | Op::Concat { .. }
            | Op::Gather
            | Op::Softmax { .. }
            | Op::RoundInt8 { .. }
            | Op::RmsNorm { .. }
            | Op::LayerNorm { .. }
            | Op::Rope { .. }
            | Op::State { .. }
            | Op::Iota { .. }
            | Op::WriteSlice { .. }
            | Op::Attention { .. }
            | Op::QuantMatMul { .. }
            | Op::QuantGather { .. } => None,
        };
        ClassData { ty, constant }
    }

    fn merge(&mut self, a: &mut ClassData, b: ClassData) -> DidMerge {
        // Two e-nodes in one class must agree on type: a mismatch is an unsound rewrite.
        assert_eq!(a.ty, b.ty, "merged e-classes of different types");
        match (a.constant, b.constant) {
            (None, Some(c)) => {
                a.constant = Some(c);
                DidMerge(true, false)
            }
            (Some(_), None) => DidMerge(false, true),
            (None, None) | (Some(_), Some(_)) => DidMerge(false, false),
        }
    }
}
