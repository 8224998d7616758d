//! Chat templates rendered with minijinja as transformers' `apply_chat_template` renders them:
//! `trim_blocks` and `lstrip_blocks` on, Python string methods (`.strip()`, `.startswith()`)
//! through minijinja-contrib's pycompat, `raise_exception`, and a `tojson` that writes what
//! Python's `json.dumps` writes.

use minijinja::{Environment, Error, ErrorKind, Value};
use serde::{Deserialize, Serialize};

use super::{SpecialTokens, TokenizerError};

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The message text.
    pub content: String,
}

impl ChatMessage {
    /// A message with this role and content.
    pub fn new(role: &str, content: &str) -> Self {
        ChatMessage { role: role.to_string(), content: content.to_string() }
    }
}

/// A Jinja chat template with the special tokens it may refer to.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// A template from its Jinja source; `bos_token` / `eos_token` come from `special`.
    pub fn new(source: String, special: &SpecialTokens) -> Self {
        ChatTemplate {
            source,
            bos_token: special.bos_text.clone().unwrap_or_default(),
            eos_token: special.eos_text.clone().unwrap_or_default(),
        }
    }

    /// The Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders `messages`; `add_generation_prompt` appends the assistant turn's opening.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        self.render_with(Value::from_serialize(messages), add_generation_prompt)
    }

    /// Renders messages given as any serializable value (tool calls, content lists).
    pub fn render_with(
        &self,
        messages: Value,
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        let env = template_environment();
        let template =
            env.template_from_str(&self.source).map_err(|e| TokenizerError::Template(describe(&e)))?;
        let context = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.clone(),
            eos_token => self.eos_token.clone(),
        };
        template.render(context).map_err(|e| TokenizerError::Template(describe(&e)))
    }
}

/// The error with its cause chain (minijinja puts the template line in the chain).
fn describe(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn template_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |message: String| -> Result<Value, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, message))
    });
    env.add_filter("tojson", python_tojson);
    env
}

/// `json.dumps(value, ensure_ascii=False, indent=indent)`: `", "` and `": "` separators when not
/// indented; non-ASCII kept as is (minijinja's own `tojson` escapes HTML characters instead).
fn python_tojson(value: Value, indent: Option<usize>) -> Result<Value, Error> {
    // Serialized straight from minijinja's value: its maps keep insertion order, as Python's do.
    let json = &value;
    let mut out = Vec::new();
    let result = match indent {
        Some(width) => {
            let indent = vec![b' '; width];
            let formatter = serde_json::ser::PrettyFormatter::with_indent(&indent);
            let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
            serde::Serialize::serialize(json, &mut ser)
        }
        None => {
            let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonCompactFormatter);
            serde::Serialize::serialize(json, &mut ser)
        }
    };
    result.map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}")))?;
    let text = String::from_utf8(out).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    Ok(Value::from_safe_string(text))
}

/// Python's default `json.dumps` separators: `", "` between items, `": "` after keys.
struct PythonCompactFormatter;

impl serde_json::ser::Formatter for PythonCompactFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, messages: &[ChatMessage], add_generation_prompt: bool) -> String {
        let special = SpecialTokens {
            bos_text: Some("<s>".into()),
            eos_text: Some("</s>".into()),
            ..Default::default()
        };
        ChatTemplate::new(source.into(), &special).render(messages, add_generation_prompt).expect("renders")
    }

    #[test]
    fn python_methods_and_block_trimming_work() {
        let source = "{{ bos_token }}{% for m in messages %}\n  {% if m.role == 'user' %}\n[{{ m.content.strip() | upper }}]\n  {% endif %}\n{% endfor %}{% if add_generation_prompt %}>{% endif %}";
        let out = render(source, &[ChatMessage::new("user", "  hi  ")], true);
        assert_eq!(out, "<s>[HI]\n>");
    }

    #[test]
    fn tojson_writes_what_python_writes() {
        let out = render("{{ messages[0] | tojson }}", &[ChatMessage::new("user", "é<")], false);
        assert_eq!(out, r#"{"role": "user", "content": "é<"}"#);
    }

    #[test]
    fn raise_exception_is_an_error() {
        let special = SpecialTokens::default();
        let t = ChatTemplate::new("{{ raise_exception('no system role') }}".into(), &special);
        let err = t.render(&[], false).expect_err("raises");
        assert!(err.to_string().contains("no system role"), "{err}");
    }
}
