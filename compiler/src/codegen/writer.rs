//! A small typed writer for WGSL kernels: bindings with their element types, `const` sizes,
//! included prelude/hand-kernel text, and the glue functions (loads, stores, index math).

use super::{Scalar, Storage, Target};
use crate::fuse::inline::KernelFusion;
use crate::{Access, KernelSource};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use tessera_ir::{DType, NodeId};

/// The elementwise prelude (every per-op function).
pub const PRELUDE: &str = include_str!("../wgsl/prelude.wgsl");

/// A storage buffer binding of a kernel, with the logical dtype of its elements.
#[derive(Clone, Debug)]
pub struct Binding {
    /// WGSL variable name.
    pub name: String,
    /// Element type in memory.
    pub storage: Storage,
    /// Logical dtype.
    pub dtype: DType,
    /// Loads and stores go through the generated function `name` (a fused prologue/epilogue).
    pub call: bool,
}

impl Binding {
    /// The compute type of its elements.
    pub fn scalar(&self) -> Scalar {
        Scalar::of(self.dtype)
    }

    /// Expression loading element `index` as the compute type (f16 widened, bool as `bool`).
    pub fn load(&self, index: &str) -> String {
        if self.call {
            return format!("{}({index})", self.name);
        }
        let raw = self.load_raw(index);
        match (self.dtype, self.storage) {
            (DType::F16, Storage::F16) => format!("f32({raw})"),
            (DType::Bool, _) => format!("({raw} != 0u)"),
            (DType::F32 | DType::F16 | DType::I32 | DType::U32, _) => raw,
        }
    }

    /// Statement storing the compute-type `value` at `index` (f16 rounded, bool as 0/1).
    pub fn store(&self, index: &str, value: &str) -> String {
        if self.call {
            return format!("{}({index}, {value});", self.name);
        }
        let stored = match (self.dtype, self.storage) {
            (DType::F16, Storage::F16) => format!("f16({value})"),
            (DType::F16, _) => format!("round_f16({value})"),
            (DType::Bool, _) => format!("select(0u, 1u, {value})"),
            (DType::F32 | DType::I32 | DType::U32, _) => value.to_string(),
        };
        self.store_raw(index, &stored)
    }

    /// Expression loading element `index` as stored (for pure data movement).
    pub fn load_raw(&self, index: &str) -> String {
        if self.call {
            return format!("{}({index})", self.name);
        }
        format!("{}[{index}]", self.name)
    }

    /// Statement storing an as-stored `value` at `index`.
    pub fn store_raw(&self, index: &str, value: &str) -> String {
        if self.call {
            return format!("{}({index}, {value});", self.name);
        }
        format!("{}[{index}] = {value};", self.name)
    }
}

/// Builds one WGSL module: directives, constants, bindings, included text, generated functions.
#[derive(Debug)]
pub struct KernelWriter {
    name: String,
    workgroup_size: u32,
    workgroup_bytes: u32,
    bindings: Vec<Access>,
    declarations: String,
    constants: String,
    functions: String,
    includes: String,
    uses_f16: bool,
    uses_subgroups: bool,
    uses_cooperative_matrix: bool,
    fusion: Option<Arc<KernelFusion>>,
    reads: usize,
    error: Option<crate::CompileError>,
    norm: Option<String>,
    prologue_leaves: Vec<(NodeId, Binding)>,
}

impl KernelWriter {
    /// A kernel named `name` with a 1-D workgroup of `workgroup_size` invocations (the `WG` constant).
    pub fn new(name: impl Into<String>, workgroup_size: u32) -> KernelWriter {
        let mut w = KernelWriter {
            name: name.into(),
            workgroup_size,
            workgroup_bytes: 0,
            bindings: Vec::new(),
            declarations: String::new(),
            constants: String::new(),
            functions: String::new(),
            includes: String::new(),
            uses_f16: false,
            uses_subgroups: false,
            uses_cooperative_matrix: false,
            fusion: None,
            reads: 0,
            error: None,
            norm: None,
            prologue_leaves: Vec::new(),
        };
        w.constant("WG", workgroup_size);
        w
    }

    /// Applies the target's fusion (prologues to reads, an epilogue to the write).
    pub fn fused(mut self, target: &Target) -> KernelWriter {
        self.fusion = target.fusion.clone();
        self
    }

    /// Adds the next binding, read-only, named `in{N}`; with a prologue for this read, binds the
    /// prologue's leaves instead (those an earlier prologue bound are shared) and returns a
    /// binding that loads through `vload{j}`.
    pub fn read(&mut self, dtype: DType, storage: Storage) -> Binding {
        let j = self.reads;
        self.reads += 1;
        let prologue = self.fusion.as_ref().and_then(|f| f.prologues.get(j).cloned().flatten());
        if let Some(inline) = prologue {
            // A node another prologue read too is bound once (as `lower` binds it).
            let mut leaves = Vec::with_capacity(inline.leaves.len());
            for (v, &node) in inline.leaves.iter().zip(&inline.nodes) {
                if let Some((_, b)) = self.prologue_leaves.iter().find(|(n, _)| *n == node) {
                    leaves.push(b.clone());
                    continue;
                }
                let b = self.read_buffer(v.dtype, v.storage);
                self.prologue_leaves.push((node, b.clone()));
                leaves.push(b);
            }
            let name = format!("vload{j}");
            match inline.load_fn(&name, &leaves) {
                Ok(text) => self.function(&text),
                Err(e) => self.error = Some(e),
            }
            if let Some(norm) = inline.norm_fns(&leaves) {
                self.norm = Some(norm);
            }
            return Binding { name, storage, dtype, call: true };
        }
        self.read_buffer(dtype, storage)
    }

    /// Adds the next binding, read-only, as `array<vec4<u32>>` (16-byte loads of packed words)
    /// and defines `fn NAME(i: u32) -> vec4<u32>`. Packed weights never take a prologue.
    pub fn read_words4(&mut self, name: &str) {
        self.reads += 1;
        let buffer = format!("in{}", self.bindings.len());
        self.declare(&buffer, "vec4<u32>", Access::Read);
        self.function(&format!("fn {name}(i: u32) -> vec4<u32> {{ return {buffer}[i]; }}"));
    }

    fn read_buffer(&mut self, dtype: DType, storage: Storage) -> Binding {
        let name = format!("in{}", self.bindings.len());
        self.bind(name, dtype, storage, Access::Read)
    }

    /// Adds the next binding, read-write, named `out`; with an epilogue, binds the epilogue's
    /// output and leaves and returns a binding that stores through `vstore`.
    pub fn write(&mut self, dtype: DType, storage: Storage) -> Binding {
        let scatter = self.fusion.as_ref().and_then(|f| f.scatter.clone());
        if let Some(scatter) = scatter {
            let out = self.bind("out".into(), scatter.out.dtype, scatter.out.storage, Access::ReadWrite);
            let offset = self.read_buffer(DType::U32, Storage::U32);
            self.function(&scatter.store_fn("vstore", &offset, &out));
            return Binding { name: "vstore".into(), storage, dtype, call: true };
        }
        let tee = self.fusion.as_ref().and_then(|f| f.tee.clone());
        if let Some(tee) = tee {
            let out = self.bind("out".into(), dtype, storage, Access::ReadWrite);
            let state = self.bind("state".into(), tee.out.dtype, tee.out.storage, Access::ReadWrite);
            let offset = self.read_buffer(DType::U32, Storage::U32);
            self.function(&tee.store_fn("tee_store", &offset, &state));
            let scalar = Scalar::of(dtype).wgsl();
            self.function(&format!(
                "fn vstore(i: u32, v: {scalar}) {{ {} tee_store(i, v); }}",
                out.store("i", "v")
            ));
            return Binding { name: "vstore".into(), storage, dtype, call: true };
        }
        let epilogue = self.fusion.as_ref().and_then(|f| f.epilogue.clone());
        if let Some(inline) = epilogue {
            let v = inline.value().clone();
            let out = self.bind("out".into(), v.dtype, v.storage, Access::ReadWrite);
            let leaves: Vec<Binding> =
                inline.leaves.iter().map(|v| self.read_buffer(v.dtype, v.storage)).collect();
            match inline.store_fn("vstore", &leaves, &out) {
                Ok(text) => self.function(&text),
                Err(e) => self.error = Some(e),
            }
            return Binding { name: "vstore".into(), storage, dtype, call: true };
        }
        self.bind("out".into(), dtype, storage, Access::ReadWrite)
    }

    /// True when a read so far takes an RMSNorm prologue whose row scale the kernel applies.
    pub fn has_norm(&self) -> bool {
        self.norm.is_some()
    }

    /// Defines `NORM`, `norm_sq` and `norm_scale` for kernels that apply a fused RMSNorm's row
    /// scale themselves (the quantized gemvs): the prologue's, or ones that do nothing.
    pub fn norm_fns(&mut self) {
        let text = self.norm.take().unwrap_or_else(|| {
            "const NORM: bool = false;\n\
             fn norm_sq(i: u32) -> f32 { return 0.0; }\n\
             fn norm_scale(sum_sq: f32) -> f32 { return 1.0; }\n"
                .into()
        });
        self.function(&text);
    }

    /// The first error a fused prologue or epilogue met while rendering.
    pub fn take_error(&mut self) -> Option<crate::CompileError> {
        self.error.take()
    }

    fn bind(&mut self, name: String, dtype: DType, storage: Storage, access: Access) -> Binding {
        self.uses_f16 |= storage == Storage::F16;
        self.declare(&name, storage.wgsl(), access);
        Binding { name, storage, dtype, call: false }
    }

    /// Declares the next binding slot as `var<storage> NAME: array<ELEMENT>`.
    fn declare(&mut self, name: &str, element: &str, access: Access) {
        let mode = match access {
            Access::Read => "read",
            Access::ReadWrite => "read_write",
        };
        let slot = self.bindings.len();
        let _ = writeln!(
            self.declarations,
            "@group(0) @binding({slot}) var<storage, {mode}> {name}: array<{element}>;"
        );
        self.bindings.push(access);
    }

    /// Declares `const NAME: u32`.
    pub fn constant(&mut self, name: &str, value: u32) {
        let _ = writeln!(self.constants, "const {name}: u32 = {value}u;");
    }

    /// Declares `const NAME: f32` (finite values only).
    pub fn constant_f32(&mut self, name: &str, value: f32) {
        let _ = writeln!(self.constants, "const {name}: f32 = {value:?};");
    }

    /// Declares `alias NAME = T;`.
    pub fn alias(&mut self, name: &str, scalar: Scalar) {
        let _ = writeln!(self.constants, "alias {name} = {};", scalar.wgsl());
    }

    /// Adds a generated function (or any module-scope text).
    pub fn function(&mut self, text: &str) {
        self.functions.push_str(text);
        self.functions.push('\n');
    }

    /// `fn NAME(i: u32) -> T` loading element `i` of `binding` as the compute type.
    pub fn load_fn(&mut self, name: &str, binding: &Binding) {
        let text =
            format!("fn {name}(i: u32) -> {} {{ return {}; }}", binding.scalar().wgsl(), binding.load("i"));
        self.function(&text);
    }

    /// `fn NAME(i: u32, v: T)` storing a compute-type value into `binding`.
    pub fn store_fn(&mut self, name: &str, binding: &Binding) {
        let text =
            format!("fn {name}(i: u32, v: {}) {{ {} }}", binding.scalar().wgsl(), binding.store("i", "v"));
        self.function(&text);
    }

    /// Includes WGSL text (the prelude, a snippet, a hand kernel) after the generated parts.
    pub fn include(&mut self, wgsl: &str) {
        self.includes.push_str(wgsl);
        self.includes.push('\n');
    }

    /// Includes a snippet after replacing each `$KEY` placeholder.
    pub fn include_template(&mut self, wgsl: &str, substitutions: &[(&str, &str)]) {
        let mut text = wgsl.to_string();
        for (key, value) in substitutions {
            text = text.replace(key, value);
        }
        self.include(&text);
    }

    /// Records `var<workgroup>` bytes declared by included text (checked against naga's layout).
    pub fn workgroup_bytes(&mut self, bytes: u32) {
        self.workgroup_bytes += bytes;
    }

    /// The `WG` constant: invocations per workgroup.
    pub fn workgroup_size_x(&self) -> u32 {
        self.workgroup_size
    }

    /// Marks the kernel as using subgroup builtins.
    pub fn uses_subgroups(&mut self) {
        self.uses_subgroups = true;
    }

    /// Marks the kernel as using cooperative matrices of f16 (and subgroups, their scope).
    pub fn uses_cooperative_matrix(&mut self) {
        self.uses_cooperative_matrix = true;
        self.uses_subgroups = true;
        self.uses_f16 = true;
    }

    /// Finishes a kernel whose entry point `main` is in the included text.
    pub fn finish(self) -> KernelSource {
        let mut wgsl = String::new();
        if let Some(e) = &self.error {
            // Fails naga validation with the reason rather than running a wrong kernel.
            let _ = writeln!(wgsl, "fusion error: {e}");
        }
        if self.uses_f16 {
            wgsl.push_str("enable f16;\n");
        }
        if self.uses_cooperative_matrix {
            wgsl.push_str("enable wgpu_cooperative_matrix;\n");
        }
        if self.uses_f16 {
            wgsl.push('\n');
        }
        let _ = writeln!(wgsl, "// {}", self.name);
        wgsl.push_str(&self.constants);
        wgsl.push('\n');
        wgsl.push_str(&self.declarations);
        wgsl.push('\n');
        wgsl.push_str(&self.functions);
        wgsl.push('\n');
        wgsl.push_str(&self.includes);
        KernelSource {
            name: self.name,
            wgsl,
            entry: "main".into(),
            constants: BTreeMap::new(),
            bindings: self.bindings,
            workgroup_size: [self.workgroup_size, 1, 1],
            workgroup_bytes: self.workgroup_bytes,
            uses_f16: self.uses_f16,
            uses_subgroups: self.uses_subgroups,
            uses_cooperative_matrix: self.uses_cooperative_matrix,
        }
    }

    /// Finishes a one-invocation-per-element kernel over `numel` elements: `body` runs with
    /// `idx` (the flat element index, `< N`) in scope.
    pub fn finish_per_element(mut self, numel: u32, grid_x: u32, body: &[String]) -> KernelSource {
        self.constant("N", numel);
        self.constant("GRID_X", grid_x);
        self.include(PRELUDE);
        let mut main = String::from(
            "@compute @workgroup_size(WG)\n\
             fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {\n\
             \x20   let idx = (wid.x + wid.y * GRID_X) * WG + lid;\n\
             \x20   if (idx >= N) {\n        return;\n    }\n",
        );
        for line in body {
            let _ = writeln!(main, "    {line}");
        }
        main.push_str("}\n");
        self.include(&main);
        self.finish()
    }
}
