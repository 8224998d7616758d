//! A `tokenizers::Tokenizer` from a GGUF's `tokenizer.ggml.*` metadata, for byte-level BPE
//! vocabularies (`tokenizer.ggml.model` = `gpt2`). The pre-tokenizer follows llama.cpp's choice
//! for `tokenizer.ggml.pre` (`llm_tokenizer_bpe` in `llama-vocab.cpp`), written as the
//! tokenizer.json the original Hugging Face model ships; control tokens become special added
//! tokens and user-defined ones plain added tokens, as transformers' GGUF loader does.

use std::collections::HashSet;
use std::str::FromStr;

use serde_json::{Map, Value, json};
use tokenizers::Tokenizer;

use super::{ChatTemplate, ModelTokenizer, SpecialTokens, TokenizerError};
use crate::gguf::{GgufFile, Problem};

/// llama.cpp's `LLAMA_TOKEN_TYPE_CONTROL`.
const TOKEN_TYPE_CONTROL: i64 = 3;
/// llama.cpp's `LLAMA_TOKEN_TYPE_USER_DEFINED`.
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// GPT-2's split, which the `ByteLevel` pre-tokenizer applies when `use_regex` is set.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How text is split before BPE, by `tokenizer.ggml.pre`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizerKind {
    /// GPT-2's regex (`gpt2`, `gpt-2`, `mpt`, `olmo`, `jais`, `default`, and unknown names).
    Gpt2,
    /// Every digit on its own, then GPT-2's regex (`smollm`, `starcoder`, `refact`,
    /// `command-r`, `codeshell`, `exaone`, `minerva-7b`).
    DigitsThenGpt2,
    /// Llama 3's regex: numbers in groups of up to three (`llama-bpe`, `llama3`, `falcon3`, ...).
    Llama3,
    /// Qwen2's regex: single digits (`qwen2`, `deepseek-r1-qwen`, `stablelm2`, `megrez`).
    Qwen2,
}

/// The pre-tokenizer llama.cpp uses for a `tokenizer.ggml.pre` value.
pub fn pre_tokenizer_for(pre: Option<&str>) -> PreTokenizerKind {
    match pre.unwrap_or("default") {
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b" => {
            PreTokenizerKind::DigitsThenGpt2
        }
        "llama-bpe" | "llama3" | "llama-v3" | "falcon3" | "falcon-h1" | "pixtral" | "dbrx" | "smaug-bpe"
        | "midm-2.0" | "lfm2" => PreTokenizerKind::Llama3,
        "qwen2" | "deepseek-r1-qwen" | "stablelm2" | "megrez" => PreTokenizerKind::Qwen2,
        _ => PreTokenizerKind::Gpt2,
    }
}

impl PreTokenizerKind {
    fn to_json(self) -> Value {
        let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
        let split = |regex: &str| json!({"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false});
        match self {
            PreTokenizerKind::Gpt2 => byte_level(true),
            PreTokenizerKind::DigitsThenGpt2 => json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
            PreTokenizerKind::Llama3 => {
                json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_SPLIT), byte_level(false)]})
            }
            PreTokenizerKind::Qwen2 => {
                json!({"type": "Sequence", "pretokenizers": [split(QWEN2_SPLIT), byte_level(false)]})
            }
        }
    }
}

/// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes stand for themselves, the rest map to
/// U+0100 onwards. Returns the character for each byte.
fn byte_alphabet() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for byte in 0..=255u8 {
        let printable = matches!(byte, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let code = if printable {
            u32::from(byte)
        } else {
            next += 1;
            next - 1
        };
        table[byte as usize] = char::from_u32(code).unwrap_or('\u{FFFD}');
    }
    table
}

/// The tokenizer.json (as a JSON value) that a GGUF's byte-level BPE metadata describes.
pub fn tokenizer_json_from_gguf(gguf: &GgufFile) -> Result<Value, TokenizerError> {
    let model_key = "tokenizer.ggml.model";
    let model =
        gguf.get_str(model_key)?.ok_or_else(|| gguf.metadata_error(model_key, Problem::MissingKey))?;
    if model != "gpt2" {
        let problem = Problem::BadValue(format!(
            "tokenizer model {model:?} is not supported (only byte-level BPE, \"gpt2\")"
        ));
        return Err(gguf.metadata_error(model_key, problem).into());
    }
    let tokens_key = "tokenizer.ggml.tokens";
    let tokens = gguf
        .get_str_array(tokens_key)?
        .ok_or_else(|| gguf.metadata_error(tokens_key, Problem::MissingKey))?;
    let token_types = gguf.get_int_array("tokenizer.ggml.token_type")?.unwrap_or_default();
    let merges_key = "tokenizer.ggml.merges";
    let merges = gguf
        .get_str_array(merges_key)?
        .ok_or_else(|| gguf.metadata_error(merges_key, Problem::MissingKey))?;

    let alphabet = byte_alphabet();
    let in_alphabet: HashSet<char> = alphabet.iter().copied().collect();
    let spelled = |token: &str| -> String {
        if token.chars().all(|c| in_alphabet.contains(&c)) {
            token.to_string()
        } else {
            token.bytes().map(|b| alphabet[b as usize]).collect()
        }
    };
    let mut vocab = Map::with_capacity(tokens.len());
    let mut added_tokens = Vec::new();
    for (id, &token) in tokens.iter().enumerate() {
        let text = spelled(token);
        let token_type = token_types.get(id).copied();
        let is_plain_spelling = text == token;
        // A control token spelled outside the byte alphabet is a llama.cpp mislabel (transformers
        // skips these too); adding it would give it a second id.
        if is_plain_spelling
            && !token.is_empty()
            && matches!(token_type, Some(TOKEN_TYPE_CONTROL | TOKEN_TYPE_USER_DEFINED))
        {
            added_tokens.push(json!({
                "id": id, "content": token, "single_word": false, "lstrip": false, "rstrip": false,
                "normalized": false, "special": token_type == Some(TOKEN_TYPE_CONTROL),
            }));
        }
        vocab.insert(text, json!(id));
    }
    let mut merge_pairs = Vec::with_capacity(merges.len());
    for (index, merge) in merges.iter().enumerate() {
        let mut parts = merge.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) => merge_pairs.push(json!([a, b])),
            _ => {
                let problem = Problem::BadValue(format!("merge #{index} {merge:?} is not two tokens"));
                return Err(gguf.metadata_error(merges_key, problem).into());
            }
        }
    }

    let special = special_tokens(gguf, &tokens)?;
    let add_eos = gguf.get_bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
    let post_processor = post_processor(&special, add_eos, &tokens);
    let pre_kind = pre_tokenizer_for(gguf.get_str("tokenizer.ggml.pre")?);
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens,
        "normalizer": null,
        "pre_tokenizer": pre_kind.to_json(),
        "post_processor": post_processor,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            // Llama 3's tokenizer.json (and llama.cpp for it) take a whole pre-token from the
            // vocabulary before merging.
            "ignore_merges": pre_kind == PreTokenizerKind::Llama3,
            "vocab": vocab, "merges": merge_pairs,
        },
    }))
}

/// BOS prepended (and EOS appended) by a template post-processor when the file asks for it.
fn post_processor(special: &SpecialTokens, add_eos: bool, tokens: &[&str]) -> Value {
    let bos = special.bos.filter(|_| special.add_bos);
    let eos = special.eos.filter(|_| add_eos);
    if bos.is_none() && eos.is_none() {
        return json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true});
    }
    let mut single = Vec::new();
    let mut pair = Vec::new();
    let mut specials = Map::new();
    let mut special_piece = |id: u32, into: &mut [&mut Vec<Value>]| {
        let text = tokens[id as usize].to_string();
        for seq in into.iter_mut() {
            seq.push(json!({"SpecialToken": {"id": text, "type_id": 0}}));
        }
        specials.insert(text.clone(), json!({"id": text, "ids": [id], "tokens": [text]}));
    };
    if let Some(id) = bos {
        special_piece(id, &mut [&mut single, &mut pair]);
    }
    single.push(json!({"Sequence": {"id": "A", "type_id": 0}}));
    pair.push(json!({"Sequence": {"id": "A", "type_id": 0}}));
    if let Some(id) = eos {
        special_piece(id, &mut [&mut single]);
    }
    if let Some(id) = bos {
        special_piece(id, &mut [&mut pair]);
    }
    pair.push(json!({"Sequence": {"id": "B", "type_id": 1}}));
    if let Some(id) = eos {
        special_piece(id, &mut [&mut pair]);
    }
    json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials})
}

/// BOS/EOS/PAD ids (bounded by the vocabulary) and `add_bos_token`.
fn special_tokens(gguf: &GgufFile, tokens: &[&str]) -> Result<SpecialTokens, TokenizerError> {
    let id = |key: &str| -> Result<Option<u32>, TokenizerError> {
        let Some(id) = gguf.get_u64(key)? else {
            return Ok(None);
        };
        if id >= tokens.len() as u64 {
            let problem =
                Problem::BadValue(format!("token id {id} is outside the {}-token vocabulary", tokens.len()));
            return Err(gguf.metadata_error(key, problem).into());
        }
        Ok(Some(id as u32))
    };
    let bos = id("tokenizer.ggml.bos_token_id")?;
    let eos = id("tokenizer.ggml.eos_token_id")?;
    Ok(SpecialTokens {
        bos,
        eos,
        pad: id("tokenizer.ggml.padding_token_id")?,
        // llama.cpp adds BOS to BPE vocabularies only when the file says so.
        add_bos: gguf.get_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(false),
        bos_text: bos.map(|i| tokens[i as usize].to_string()),
        eos_text: eos.map(|i| tokens[i as usize].to_string()),
    })
}

pub(super) fn model_tokenizer_from_gguf(gguf: &GgufFile) -> Result<ModelTokenizer, TokenizerError> {
    let json = tokenizer_json_from_gguf(gguf)?;
    let tokenizer = Tokenizer::from_str(&json.to_string()).map_err(|e| TokenizerError::Tokenizers {
        file: gguf.file_name().to_string(),
        message: e.to_string(),
    })?;
    let tokens = gguf.get_str_array("tokenizer.ggml.tokens")?.unwrap_or_default();
    let special = special_tokens(gguf, &tokens)?;
    let chat_template = gguf
        .get_str("tokenizer.chat_template")?
        .map(|source| ChatTemplate::new(source.to_string(), &special));
    Ok(ModelTokenizer { tokenizer, special, chat_template })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_matches_gpt2() {
        let a = byte_alphabet();
        assert_eq!(a[b' ' as usize], 'Ġ');
        assert_eq!(a[b'\n' as usize], 'Ċ');
        assert_eq!(a[b'A' as usize], 'A');
        assert_eq!(a[0xAD], 'Ń');
        assert_eq!(a.iter().collect::<HashSet<_>>().len(), 256);
    }

    #[test]
    fn pre_tokenizer_names_follow_llama_cpp() {
        assert_eq!(pre_tokenizer_for(Some("smollm")), PreTokenizerKind::DigitsThenGpt2);
        assert_eq!(pre_tokenizer_for(Some("llama-bpe")), PreTokenizerKind::Llama3);
        assert_eq!(pre_tokenizer_for(Some("qwen2")), PreTokenizerKind::Qwen2);
        assert_eq!(pre_tokenizer_for(Some("gpt-2")), PreTokenizerKind::Gpt2);
        assert_eq!(pre_tokenizer_for(None), PreTokenizerKind::Gpt2);
    }
}
