//! IR errors: every one names the op and the shapes involved.

use crate::{DType, Shape};
use std::fmt;

/// An error in building, verifying, parsing or interpreting a graph.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum IrError {
    /// Operand shapes or dtypes that the op does not accept.
    #[error("{op}: {}: {reason}", OperandList(.operands))]
    Type {
        /// The op's mnemonic.
        op: String,
        /// Shape and dtype of each operand.
        operands: Vec<(Shape, DType)>,
        /// What is wrong.
        reason: String,
    },
    /// Invalid attribute values (axes out of range, a bad permutation, a reshape of the wrong size).
    #[error("{op}: {reason}")]
    Attribute {
        /// The op's mnemonic.
        op: String,
        /// What is wrong.
        reason: String,
    },
    /// A structural problem in the graph (dangling id, wrong operand count, no outputs).
    #[error("graph: {0}")]
    Graph(String),
    /// The text form could not be parsed.
    #[error("text form, line {line}: {reason}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The interpreter was missing data for an input or parameter, or it had the wrong size.
    #[error("interpreter: {0}")]
    Binding(String),
}

/// Displays operands as `f32[2,3], f32[3,4]`.
struct OperandList<'a>(&'a [(Shape, DType)]);

impl fmt::Display for OperandList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "no operands");
        }
        for (i, (s, d)) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}{s}")?;
        }
        Ok(())
    }
}
