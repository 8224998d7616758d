//! Compiler switches from command-line flags (`--no-fuse`, `--no-rules=SET`), shared by
//! `tessera generate` and `compile-model`, to bisect a wrong result pass by pass.

use crate::error::{Result, invalid};
use tessera_compiler::CompileOptions;

/// Compile options with fusion off when `no_fuse`, and each rule set named in `no_rules`
/// (`algebra`, `layout`, `patterns`, or `all`) switched off.
pub fn compile_options(no_fuse: bool, no_rules: &[String]) -> Result<CompileOptions> {
    let mut options = CompileOptions { fuse: !no_fuse, ..CompileOptions::default() };
    for set in no_rules {
        match set.as_str() {
            "algebra" => options.rules.algebra = false,
            "layout" => options.rules.layout = false,
            "patterns" => options.rules.patterns = false,
            "all" => options.rules = tessera_compiler::rules::RuleSets::none(),
            other => {
                return Err(invalid(
                    "--no-rules",
                    format!("unknown rule set `{other}` (algebra, layout, patterns, all)"),
                ));
            }
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_switch_passes_off() {
        let o = compile_options(true, &["layout".into()]).expect("valid");
        assert!(!o.fuse && o.rules.algebra && !o.rules.layout);
        let o = compile_options(false, &["all".into()]).expect("valid");
        assert!(o.fuse && !o.rules.algebra && !o.rules.layout && !o.rules.patterns);
        assert!(compile_options(false, &["nope".into()]).is_err());
    }
}
