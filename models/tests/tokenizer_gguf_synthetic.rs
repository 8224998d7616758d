//! Tokenizers built from small GGUFs the test writes: the pre-tokenizer follows
//! `tokenizer.ggml.pre` (digits split as llama.cpp splits them), control tokens are special,
//! `add_bos_token` prepends BOS, and non-BPE vocabularies are refused with a named key.

mod common;

use common::{GgufBuilder, string, string_array};
use tessera_models::gguf::{GgufFile, MetadataType, MetadataValue};
use tessera_models::tokenizer::ModelTokenizer;

/// GPT-2's byte alphabet, in byte order.
fn byte_alphabet() -> Vec<String> {
    let mut next = 256u32;
    (0..=255u8)
        .map(|b| {
            let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
            let code = if printable {
                u32::from(b)
            } else {
                next += 1;
                next - 1
            };
            char::from_u32(code).expect("valid").to_string()
        })
        .collect()
}

fn tiny_gguf(pre: &str, add_bos: bool) -> GgufFile {
    let mut tokens = byte_alphabet();
    tokens.extend(["12", "34", "123", "<|end|>"].map(String::from));
    let token_refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let mut types = vec![MetadataValue::I32(1); tokens.len()];
    types[tokens.len() - 1] = MetadataValue::I32(3);
    let bytes = GgufBuilder::new()
        .kv("tokenizer.ggml.model", string("gpt2"))
        .kv("tokenizer.ggml.pre", string(pre))
        .kv("tokenizer.ggml.tokens", string_array(&token_refs))
        .kv(
            "tokenizer.ggml.token_type",
            MetadataValue::Array { element_type: MetadataType::I32, values: types },
        )
        // "3 4" outranks "1 2": splitting decides whether "34" can form.
        .kv("tokenizer.ggml.merges", string_array(&["3 4", "1 2", "12 3"]))
        .kv("tokenizer.ggml.bos_token_id", MetadataValue::U32(259))
        .kv("tokenizer.ggml.add_bos_token", MetadataValue::Bool(add_bos))
        .build();
    GgufFile::from_bytes("tiny-tokenizer.gguf", bytes).expect("parses")
}

fn encode(pre: &str, text: &str) -> Vec<u32> {
    let tok = ModelTokenizer::from_gguf(&tiny_gguf(pre, false)).expect("builds");
    tok.encode(text).expect("encodes")
}

const ID_12: u32 = 256;
const ID_34: u32 = 257;
const ID_123: u32 = 258;
const ID_END: u32 = 259;

#[test]
fn digits_split_as_llama_cpp_splits_them_for_each_pre_tokenizer() {
    let id = |c: char| c as u32; // printable ASCII bytes keep their value as id
    // GPT-2: "1234" is one piece; "3 4" merges first, then "1 2".
    assert_eq!(encode("gpt-2", "1234"), vec![ID_12, ID_34]);
    // Llama 3: digits in groups of three: "123" + "4".
    assert_eq!(encode("llama-bpe", "1234"), vec![ID_123, id('4')]);
    // SmolLM / StarCoder and Qwen2: every digit alone.
    let singles = vec![id('1'), id('2'), id('3'), id('4')];
    assert_eq!(encode("smollm", "1234"), singles);
    assert_eq!(encode("qwen2", "1234"), singles);
}

#[test]
fn control_tokens_are_special_and_bos_is_added_when_asked() {
    let tok = ModelTokenizer::from_gguf(&tiny_gguf("gpt-2", true)).expect("builds");
    assert!(tok.special.add_bos);
    assert_eq!(tok.special.bos, Some(ID_END));
    let ids = tok.encode("12<|end|>").expect("encodes");
    assert_eq!(ids, vec![ID_END, ID_12, ID_END]);
    assert_eq!(tok.decode(&ids, true).expect("decodes"), "12");
}

#[test]
fn unsupported_tokenizer_models_name_the_key() {
    let bytes = GgufBuilder::new().kv("tokenizer.ggml.model", string("llama")).build();
    let gguf = GgufFile::from_bytes("spm.gguf", bytes).expect("parses");
    let message = ModelTokenizer::from_gguf(&gguf).expect_err("sentencepiece not supported").to_string();
    assert!(message.contains("spm.gguf") && message.contains("tokenizer.ggml.model"), "{message}");

    let bad_merge = GgufBuilder::new()
        .kv("tokenizer.ggml.model", string("gpt2"))
        .kv("tokenizer.ggml.tokens", string_array(&["a"]))
        .kv("tokenizer.ggml.merges", string_array(&["a b c"]))
        .build();
    let gguf = GgufFile::from_bytes("merges.gguf", bad_merge).expect("parses");
    let message = ModelTokenizer::from_gguf(&gguf).expect_err("bad merge").to_string();
    assert!(message.contains("tokenizer.ggml.merges") && message.contains("#0"), "{message}");
}
