//! The text form: one node per line, then an `outputs` line.
//!
//! ```text
//! %0 = input "x" : f32[2,3]
//! %1 = param "model.layers.0.w" : f32[3,4]
//! %2 = constant -inf : f32[]
//! %3 = matmul %0, %1 : f32[2,4]
//! %4 = reduce.sum {axes=[1], keepdims=true} %3 : f32[2,1]
//! outputs %4
//! ```
//!
//! The form is the compile-cache key, so [`dump`] is deterministic and writes every attribute;
//! floats are written with Rust's shortest round-tripping notation, so `parse(dump(g)) == g`.
//! [`parse`] re-infers each node's type and checks it against the recorded `: type`.

use crate::{
    BinaryOp, DType, Graph, IrError, NodeId, Op, ReduceKind, RopeStyle, Shape, SliceRange, UnaryOp, float,
};
use std::fmt::{self, Write};

/// Writes `graph` in the text form (deterministic; includes every attribute).
pub fn dump(graph: &Graph) -> String {
    let mut s = String::new();
    for (id, node) in graph.iter() {
        // Writing into a String cannot fail.
        let _ = write!(s, "{id} = {}", node.op.mnemonic());
        write_attrs(&mut s, &node.op);
        for (i, operand) in node.inputs.iter().enumerate() {
            s.push_str(if i == 0 { " " } else { ", " });
            let _ = write!(s, "{operand}");
        }
        let _ = writeln!(s, " : {}{}", node.dtype, node.shape);
    }
    s.push_str("outputs");
    for (i, o) in graph.outputs().iter().enumerate() {
        s.push_str(if i == 0 { " " } else { ", " });
        let _ = write!(s, "{o}");
    }
    s.push('\n');
    s
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&dump(self))
    }
}

/// Everything between the mnemonic and the operands.
fn write_attrs(s: &mut String, op: &Op) {
    let list = |xs: &[usize]| format!("[{}]", xs.iter().map(usize::to_string).collect::<Vec<_>>().join(","));
    let attrs = match op {
        Op::Input { name, .. } | Op::Param { name, .. } | Op::State { name, .. } => {
            s.push(' ');
            write_string(s, name);
            return;
        }
        Op::Constant { value, .. } => {
            let _ = write!(s, " {}", fmt_float(value.into_inner()));
            return;
        }
        Op::Unary(_) | Op::Binary(_) | Op::Where | Op::MatMul | Op::Gather => return,
        Op::Cast { to } => format!("to={to}"),
        Op::Reduce { axes, keepdims, .. } => format!("axes={}, keepdims={keepdims}", list(axes)),
        Op::ArgMax { axis, keepdims } => format!("axis={axis}, keepdims={keepdims}"),
        Op::Reshape { shape } | Op::Broadcast { shape } => format!("shape={shape}"),
        Op::Permute { perm } => format!("perm={}", list(perm)),
        Op::Slice { ranges } => {
            let rs = ranges.iter().map(|r| format!("{}:{}:{}", r.start, r.stop, r.step)).collect::<Vec<_>>();
            format!("ranges=[{}]", rs.join(","))
        }
        Op::Concat { axis } | Op::Softmax { axis } => format!("axis={axis}"),
        Op::RoundInt8 { block } => format!("block={block}"),
        Op::RmsNorm { eps } | Op::LayerNorm { eps } => format!("eps={}", fmt_float(eps.into_inner())),
        Op::Rope { style } => format!("style={}", style.name()),
        Op::Iota { axis, .. } | Op::WriteSlice { axis } => format!("axis={axis}"),
        Op::Attention { scale, causal } => {
            format!("scale={}, causal={causal}", fmt_float(scale.into_inner()))
        }
        Op::QuantMatMul { bits, group_size } | Op::QuantGather { bits, group_size } => {
            format!("bits={bits}, group_size={group_size}")
        }
    };
    let _ = write!(s, " {{{attrs}}}");
}

/// Shortest text that parses back to the same f64 (`1.0`, `1e-5`, `-inf`).
fn fmt_float(x: f64) -> String {
    format!("{x:?}")
}

/// A double-quoted string; `"`, `\` and control characters are escaped so a name never
/// breaks the one-node-per-line structure.
fn write_string(s: &mut String, text: &str) {
    s.push('"');
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(s, "\\u{{{:x}}}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

/// Parses the text form, re-inferring every node's type through [`Graph::add`].
/// Blank lines and lines starting with `#` are ignored.
pub fn parse(text: &str) -> Result<Graph, IrError> {
    let mut graph = Graph::new();
    let mut outputs: Option<Vec<NodeId>> = None;
    let mut last_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        last_line = line;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let err = |reason: String| IrError::Parse { line, reason };
        if outputs.is_some() {
            return Err(err("nothing may follow the `outputs` line".into()));
        }
        let mut c = Cursor { s: trimmed, pos: 0 };
        if trimmed.starts_with("outputs") {
            outputs = Some(c.outputs(&graph).map_err(err)?);
        } else {
            c.node(&mut graph).map_err(err)?;
        }
    }
    let outputs = outputs
        .ok_or_else(|| IrError::Parse { line: last_line + 1, reason: "missing `outputs` line".into() })?;
    graph.set_outputs(outputs).map_err(|e| IrError::Parse { line: last_line, reason: e.to_string() })?;
    Ok(graph)
}

/// A position in one line of text. Errors are plain strings; `parse` adds the line number.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

type Res<T> = Result<T, String>;

impl<'a> Cursor<'a> {
    /// `outputs %a, %b`
    fn outputs(&mut self, graph: &Graph) -> Res<Vec<NodeId>> {
        self.keyword("outputs")?;
        let ids = self.operands(graph.len())?;
        self.end()?;
        Ok(ids)
    }

    /// `%n = mnemonic [attrs] [operands] : type`, appended to `graph`.
    fn node(&mut self, graph: &mut Graph) -> Res<()> {
        let id = self.node_ref()?;
        if id != graph.len() {
            return Err(format!("expected node %{}, found %{id}", graph.len()));
        }
        self.expect('=')?;
        let mnemonic = self.word()?.to_string();
        let (op, inputs) = match mnemonic.as_str() {
            "input" | "param" | "state" => {
                let name = self.string()?;
                self.expect(':')?;
                let (dtype, shape) = self.ty()?;
                let op = match mnemonic.as_str() {
                    "input" => Op::Input { name, shape, dtype },
                    "param" => Op::Param { name, shape, dtype },
                    _ => Op::State { name, shape, dtype },
                };
                (op, Vec::new())
            }
            "iota" => {
                self.expect('{')?;
                let axis = self.key("axis").and_then(|()| self.usize())?;
                self.expect('}')?;
                self.expect(':')?;
                let (dtype, shape) = self.ty()?;
                (Op::Iota { shape, axis, dtype }, Vec::new())
            }
            "constant" => {
                let value = self.float()?;
                self.expect(':')?;
                let (dtype, shape) = self.ty()?;
                (Op::Constant { value, shape, dtype }, Vec::new())
            }
            _ => {
                let op = self.op_with_attrs(&mnemonic)?;
                let inputs = self.operands(graph.len())?;
                self.expect(':')?;
                // The recorded type is checked against inference below.
                let (dtype, shape) = self.ty()?;
                let id = graph.add(op, &inputs).map_err(|e| e.to_string())?;
                let node = graph.node(id);
                if node.dtype != dtype || node.shape != shape {
                    return Err(format!(
                        "records {dtype}{shape} but {} infers {}{}",
                        mnemonic, node.dtype, node.shape
                    ));
                }
                return self.end();
            }
        };
        graph.add(op, &inputs).map_err(|e| e.to_string())?;
        self.end()
    }

    /// The op named `mnemonic` with its `{key=value, ...}` attributes, if it has any.
    fn op_with_attrs(&mut self, mnemonic: &str) -> Res<Op> {
        if let Some(u) = UnaryOp::ALL.into_iter().find(|u| u.name() == mnemonic) {
            return Ok(Op::Unary(u));
        }
        if let Some(b) = BinaryOp::ALL.into_iter().find(|b| b.name() == mnemonic) {
            return Ok(Op::Binary(b));
        }
        if let Some(kind) = mnemonic.strip_prefix("reduce.") {
            let kind = ReduceKind::ALL
                .into_iter()
                .find(|k| k.name() == kind)
                .ok_or_else(|| format!("unknown reduction `{kind}`"))?;
            self.expect('{')?;
            let axes = self.key("axes").and_then(|()| self.usize_list())?;
            let keepdims = self.key("keepdims").and_then(|()| self.bool())?;
            self.expect('}')?;
            return Ok(Op::Reduce { kind, axes, keepdims });
        }
        let simple = match mnemonic {
            "where" => Some(Op::Where),
            "matmul" => Some(Op::MatMul),
            "gather" => Some(Op::Gather),
            _ => None,
        };
        if let Some(op) = simple {
            return Ok(op);
        }
        const WITH_ATTRS: [&str; 16] = [
            "write_slice",
            "attention",
            "quant_matmul",
            "quant_gather",
            "cast",
            "argmax",
            "reshape",
            "broadcast",
            "permute",
            "slice",
            "concat",
            "softmax",
            "round_int8",
            "rms_norm",
            "layer_norm",
            "rope",
        ];
        if !WITH_ATTRS.contains(&mnemonic) {
            return Err(format!("unknown op `{mnemonic}`"));
        }
        self.expect('{')?;
        let op = match mnemonic {
            "cast" => Op::Cast { to: self.key("to").and_then(|()| self.dtype())? },
            "argmax" => {
                let axis = self.key("axis").and_then(|()| self.usize())?;
                let keepdims = self.key("keepdims").and_then(|()| self.bool())?;
                Op::ArgMax { axis, keepdims }
            }
            "reshape" => Op::Reshape { shape: Shape(self.key("shape").and_then(|()| self.usize_list())?) },
            "broadcast" => {
                Op::Broadcast { shape: Shape(self.key("shape").and_then(|()| self.usize_list())?) }
            }
            "permute" => Op::Permute { perm: self.key("perm").and_then(|()| self.usize_list())? },
            "slice" => Op::Slice { ranges: self.key("ranges").and_then(|()| self.ranges())? },
            "concat" => Op::Concat { axis: self.key("axis").and_then(|()| self.usize())? },
            "softmax" => Op::Softmax { axis: self.key("axis").and_then(|()| self.usize())? },
            "round_int8" => {
                let block = self.key("block").and_then(|()| self.usize())?;
                Op::RoundInt8 {
                    block: u32::try_from(block).map_err(|_| format!("block {block} is too large"))?,
                }
            }
            "rms_norm" => Op::RmsNorm { eps: self.key("eps").and_then(|()| self.float())? },
            "layer_norm" => Op::LayerNorm { eps: self.key("eps").and_then(|()| self.float())? },
            "rope" => {
                let style = self.key("style").and_then(|()| self.word())?;
                let style = [RopeStyle::HalfSplit, RopeStyle::Interleaved]
                    .into_iter()
                    .find(|s| s.name() == style)
                    .ok_or_else(|| format!("unknown rope style `{style}`"))?;
                Op::Rope { style }
            }
            "write_slice" => Op::WriteSlice { axis: self.key("axis").and_then(|()| self.usize())? },
            "attention" => {
                let scale = self.key("scale").and_then(|()| self.float())?;
                let causal = self.key("causal").and_then(|()| self.bool())?;
                Op::Attention { scale, causal }
            }
            "quant_matmul" | "quant_gather" => {
                let bits = self.key("bits").and_then(|()| self.usize())? as u32;
                let group_size = self.key("group_size").and_then(|()| self.usize())? as u32;
                if mnemonic == "quant_matmul" {
                    Op::QuantMatMul { bits, group_size }
                } else {
                    Op::QuantGather { bits, group_size }
                }
            }
            other => return Err(format!("unknown op `{other}`")),
        };
        self.expect('}')?;
        Ok(op)
    }

    /// Zero or more `%n` separated by commas; each must name an existing node.
    fn operands(&mut self, defined: usize) -> Res<Vec<NodeId>> {
        let mut ids = Vec::new();
        self.ws();
        if self.peek() != Some('%') {
            return Ok(ids);
        }
        loop {
            let id = self.node_ref()?;
            if id >= defined {
                return Err(format!("%{id} is used before it is defined"));
            }
            ids.push(NodeId(id as u32));
            if !self.eat(',') {
                return Ok(ids);
            }
        }
    }

    /// `f32[2,3]`
    fn ty(&mut self) -> Res<(DType, Shape)> {
        let dtype = self.dtype()?;
        Ok((dtype, Shape(self.usize_list()?)))
    }

    /// `, key=` (the comma is optional, so the first key needs none).
    fn key(&mut self, key: &str) -> Res<()> {
        self.eat(',');
        self.keyword(key)?;
        self.expect('=')
    }

    fn keyword(&mut self, expected: &str) -> Res<()> {
        let w = self.word()?;
        if w == expected { Ok(()) } else { Err(format!("expected `{expected}`, found `{w}`")) }
    }

    fn node_ref(&mut self) -> Res<usize> {
        self.expect('%')?;
        self.usize()
    }

    fn dtype(&mut self) -> Res<DType> {
        self.word()?.parse()
    }

    fn usize(&mut self) -> Res<usize> {
        let w = self.word()?;
        w.parse().map_err(|_| format!("expected a non-negative integer, found `{w}`"))
    }

    fn bool(&mut self) -> Res<bool> {
        let w = self.word()?;
        w.parse().map_err(|_| format!("expected true or false, found `{w}`"))
    }

    fn float(&mut self) -> Res<crate::Float> {
        let w = self.word()?;
        let x: f64 = w.parse().map_err(|_| format!("expected a number, found `{w}`"))?;
        float(x).ok_or_else(|| "NaN is not a valid attribute".to_string())
    }

    /// `[1,2,3]` (possibly empty).
    fn usize_list(&mut self) -> Res<Vec<usize>> {
        self.list(Cursor::usize)
    }

    /// `[start:stop:step,...]`
    fn ranges(&mut self) -> Res<Vec<SliceRange>> {
        self.list(|c| {
            let start = c.usize()?;
            c.expect(':')?;
            let stop = c.usize()?;
            c.expect(':')?;
            let step = c.usize()?;
            Ok(SliceRange { start, stop, step })
        })
    }

    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Res<T>) -> Res<Vec<T>> {
        self.expect('[')?;
        let mut items = Vec::new();
        if self.eat(']') {
            return Ok(items);
        }
        loop {
            items.push(item(self)?);
            if self.eat(']') {
                return Ok(items);
            }
            self.expect(',')?;
        }
    }

    /// A double-quoted string with the escapes `write_string` produces.
    fn string(&mut self) -> Res<String> {
        self.expect('"')?;
        let mut out = String::new();
        loop {
            let c = self.next().ok_or("unterminated string")?;
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let e = self.next().ok_or("unterminated escape")?;
                    out.push(match e {
                        '"' => '"',
                        '\\' => '\\',
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'u' => self.unicode_escape()?,
                        other => return Err(format!("unknown escape `\\{other}`")),
                    });
                }
                c => out.push(c),
            }
        }
    }

    /// The `{hex}` part of `\u{hex}`.
    fn unicode_escape(&mut self) -> Res<char> {
        if self.next() != Some('{') {
            return Err("expected `{` after `\\u`".into());
        }
        let mut hex = String::new();
        loop {
            match self.next() {
                Some('}') => break,
                Some(h) if h.is_ascii_hexdigit() && hex.len() < 8 => hex.push(h),
                _ => return Err("bad `\\u{...}` escape".into()),
            }
        }
        u32::from_str_radix(&hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| format!("`\\u{{{hex}}}` is not a character"))
    }

    /// A run of `[A-Za-z0-9_.+-]`: names, integers and floats (`-inf`, `1e-5`).
    fn word(&mut self) -> Res<&'a str> {
        self.ws();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-') {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
        if self.pos == start {
            return Err(match self.peek() {
                Some(c) => format!("expected a word, found `{c}`"),
                None => "expected a word, found the end of the line".into(),
            });
        }
        Ok(&self.s[start..self.pos])
    }

    fn expect(&mut self, c: char) -> Res<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(match self.peek() {
                Some(found) => format!("expected `{c}`, found `{found}`"),
                None => format!("expected `{c}`, found the end of the line"),
            })
        }
    }

    /// Skips whitespace, then consumes `c` if it is next.
    fn eat(&mut self, c: char) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn end(&mut self) -> Res<()> {
        self.ws();
        if self.pos == self.s.len() {
            Ok(())
        } else {
            Err(format!("unexpected `{}` at the end of the line", &self.s[self.pos..]))
        }
    }

    fn ws(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.pos += c.len_utf8();
        }
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }
}
