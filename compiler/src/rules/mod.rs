//! Rewrite rules as named data. Each [`Rule`] names the set it belongs to, a witness term it
//! must fire on (built for a given shape, inputs `x` and `y`), and a matcher that reads one
//! e-node plus the shape analysis and returns the equivalent term. Conditions on shapes and
//! dtypes live in the matcher: patterns alone know no shapes. One generic test saturates every
//! witness with its rule alone and compares both sides in the interpreter.

pub mod algebra;
pub mod layout;
pub mod patterns;

use crate::egraph::lang::RuleApplication;
use crate::egraph::lang::node_type;
use crate::egraph::{TEGraph, TNode, TypeAnalysis};
use egg::{Applier, Id, PatternAst, Rewrite, SearchMatches, Searcher, Subst, Symbol, Var};
use tessera_ir::{Graph, IrError, Op};

/// Which rule set a rule belongs to (each can be switched off).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleSet {
    /// Algebraic identities, constant folding, strength reduction, cast chains.
    Algebra,
    /// Permute/reshape/broadcast/slice cancellation and merging.
    Layout,
    /// Primitive compositions recognized as a composite op (attention).
    Patterns,
}

/// Switches for the rule sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuleSets {
    /// Run the algebra rules.
    pub algebra: bool,
    /// Run the layout rules.
    pub layout: bool,
    /// Run the pattern rules.
    pub patterns: bool,
}

impl Default for RuleSets {
    fn default() -> RuleSets {
        RuleSets { algebra: true, layout: true, patterns: true }
    }
}

impl RuleSets {
    /// No rules at all.
    pub fn none() -> RuleSets {
        RuleSets { algebra: false, layout: false, patterns: false }
    }

    /// True when `set` is on.
    pub fn has(&self, set: RuleSet) -> bool {
        match set {
            RuleSet::Algebra => self.algebra,
            RuleSet::Layout => self.layout,
            RuleSet::Patterns => self.patterns,
        }
    }
}

/// The right-hand side of a rewrite: an existing e-class or a new op over such terms.
#[derive(Clone, Debug)]
pub enum Rhs {
    /// An e-class already in the e-graph.
    Class(Id),
    /// A new e-node.
    Node(Op, Vec<Rhs>),
}

/// Looks at one e-node and, when the rule applies, returns what it equals.
pub type Matcher = fn(&TEGraph, &TNode) -> Option<Rhs>;

/// Builds the witness term for a shape (inputs named `x`, `y`; values drawn positive).
pub type Witness = fn(&[usize]) -> Result<Graph, IrError>;

/// One named rewrite rule.
#[derive(Clone, Copy)]
pub struct Rule {
    /// Unique name (`mul-one`).
    pub name: &'static str,
    /// The set it belongs to.
    pub set: RuleSet,
    /// A term the rule fires on.
    pub witness: Witness,
    /// The rewrite.
    pub matcher: Matcher,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rule({})", self.name)
    }
}

/// Every rule, algebra, layout, then patterns.
pub fn all() -> Vec<Rule> {
    let mut rules = algebra::rules();
    rules.extend(layout::rules());
    rules.extend(patterns::rules());
    rules
}

/// The rules of the sets switched on.
pub fn enabled(sets: &RuleSets) -> Vec<Rule> {
    all().into_iter().filter(|r| sets.has(r.set)).collect()
}

/// The rules as egg rewrites.
pub fn rewrites(rules: &[Rule]) -> Vec<Rewrite<TNode, TypeAnalysis>> {
    rules
        .iter()
        .filter_map(|r| Rewrite::new(r.name, RuleSearcher(r.matcher), RuleApplier(r.matcher)).ok())
        .collect()
}

/// Finds e-classes holding an e-node the matcher accepts.
struct RuleSearcher(Matcher);

impl Searcher<TNode, TypeAnalysis> for RuleSearcher {
    fn search_eclass_with_limit(
        &self,
        egraph: &TEGraph,
        eclass: Id,
        limit: usize,
    ) -> Option<SearchMatches<'_, TNode>> {
        if limit == 0 {
            return None;
        }
        let hit = egraph[eclass].nodes.iter().any(|n| (self.0)(egraph, n).is_some());
        hit.then(|| SearchMatches { eclass, substs: vec![Subst::default()], ast: None })
    }

    fn vars(&self) -> Vec<Var> {
        Vec::new()
    }
}

/// Re-runs the matcher on the class's e-nodes and unions each right-hand side in.
struct RuleApplier(Matcher);

impl Applier<TNode, TypeAnalysis> for RuleApplier {
    fn apply_one(
        &self,
        egraph: &mut TEGraph,
        eclass: Id,
        _subst: &Subst,
        _ast: Option<&PatternAst<TNode>>,
        rule: Symbol,
    ) -> Vec<Id> {
        let nodes = egraph[eclass].nodes.clone();
        let users: Vec<Id> = egraph[eclass].parents().take(MAX_RECORDED_USERS).collect();
        let mut changed = Vec::new();
        for node in &nodes {
            let Some(rhs) = (self.0)(egraph, node) else { continue };
            let Some(id) = add_rhs(egraph, &rhs) else { continue };
            // A rule must preserve the type; one that does not is skipped, never merged.
            if egraph[id].data.ty == egraph[eclass].data.ty && egraph.union(eclass, id) {
                changed.push(id);
            }
        }
        if !changed.is_empty() {
            egraph.analysis.applications.push(RuleApplication { rule, class: eclass, users });
        }
        changed
    }
}

/// Users of a rewritten class recorded per application (a widely shared constant has many; a
/// report needs only a few of them).
const MAX_RECORDED_USERS: usize = 64;

/// Adds a right-hand side, checking each new node's type first; `None` when one is ill-typed.
fn add_rhs(egraph: &mut TEGraph, rhs: &Rhs) -> Option<Id> {
    match rhs {
        Rhs::Class(id) => Some(*id),
        Rhs::Node(op, args) => {
            let ids = args.iter().map(|a| add_rhs(egraph, a)).collect::<Option<Vec<_>>>()?;
            node_type(egraph, op, &ids)?;
            Some(egraph.add(TNode::new(op.clone(), ids)))
        }
    }
}

/// The constant value of a class, when every element is one known number.
pub fn constant(egraph: &TEGraph, id: Id) -> Option<f64> {
    egraph[id].data.constant
}

/// Shape of a class.
pub fn dims(egraph: &TEGraph, id: Id) -> &[usize] {
    egraph[id].data.ty.shape.dims()
}
