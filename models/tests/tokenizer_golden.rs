//! SmolLM2's tokenizer built from its GGUF against transformers (golden file from
//! scripts/golden_tokenizer.py): token ids, decoding, chat template rendering; and streaming
//! detokenization of multi-byte characters.

mod common;

use serde_json::Value;
use tessera_models::gguf::GgufFile;
use tessera_models::tokenizer::{ChatMessage, ModelTokenizer, StreamingDecoder};

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/smollm2_tokens.json")).expect("golden JSON")
}

fn smollm2() -> Option<ModelTokenizer> {
    let path = common::real_model(common::SMOLLM2_GGUF)?;
    let gguf = GgufFile::open(&path).expect("opens");
    Some(ModelTokenizer::from_gguf(&gguf).expect("tokenizer builds"))
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().expect("ids").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

#[test]
fn smollm2_encodes_and_decodes_like_transformers() {
    let Some(tok) = smollm2() else { return };
    let golden = golden();
    assert_eq!(tok.special.bos_text.as_deref(), golden["bos_token"].as_str());
    assert_eq!(tok.special.eos_text.as_deref(), golden["eos_token"].as_str());
    assert!(!tok.special.add_bos);
    for case in golden["encodings"].as_array().expect("encodings") {
        let text = case["text"].as_str().expect("text");
        let want = ids(&case["ids"]);
        let got = tok.encode(text).expect("encodes");
        assert_eq!(got, want, "ids of {text:?}");
        assert_eq!(
            tok.decode(&got, false).expect("decodes"),
            case["decoded"].as_str().expect("decoded"),
            "{text:?}"
        );
        let skipped = case["decoded_skip_special"].as_str().expect("decoded");
        assert_eq!(tok.decode(&got, true).expect("decodes"), skipped, "{text:?} without specials");
    }
}

#[test]
fn smollm2_chat_template_renders_like_transformers() {
    let Some(tok) = smollm2() else { return };
    let template = tok.chat_template.as_ref().expect("SmolLM2 has a chat template");
    for case in golden()["chats"].as_array().expect("chats") {
        let messages: Vec<ChatMessage> = serde_json::from_value(case["messages"].clone()).expect("messages");
        let add_generation_prompt = case["add_generation_prompt"].as_bool().expect("flag");
        let rendered = template.render(&messages, add_generation_prompt).expect("renders");
        assert_eq!(rendered, case["rendered"].as_str().expect("rendered"));
        assert_eq!(tok.encode(&rendered).expect("encodes"), ids(&case["ids"]));
    }
}

#[test]
fn streaming_emits_only_complete_characters() {
    let Some(tok) = smollm2() else { return };
    let text = "Hi 👩‍👩‍👧 你好世界, naïve 🤗!";
    let ids = tok.encode(text).expect("encodes");
    let mut decoder = StreamingDecoder::new(&tok.tokenizer, false);
    let mut pieces = Vec::new();
    let mut held_back = 0;
    for &id in &ids {
        match decoder.push(id).expect("decodes") {
            Some(piece) => {
                assert!(!piece.contains('\u{FFFD}'), "piece {piece:?} has a broken character");
                pieces.push(piece);
            }
            None => held_back += 1,
        }
    }
    if let Some(rest) = decoder.finish().expect("decodes") {
        pieces.push(rest);
    }
    assert!(held_back > 0, "emoji and CJK span several byte-level tokens, so some pushes wait");
    assert_eq!(pieces.concat(), text);
}

/// What `tessera convert` writes (tokenizer.json + tokenizer_config.json) loads back to a
/// tokenizer that encodes and renders exactly as the GGUF one does.
#[test]
fn saved_directory_tokenizer_matches_the_gguf_one() {
    let Some(tok) = smollm2() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    tok.save_to_dir(dir.path()).expect("saves");
    let reloaded = ModelTokenizer::from_dir(dir.path()).expect("loads");
    assert_eq!(reloaded.special, tok.special);
    let golden = golden();
    for case in golden["encodings"].as_array().expect("encodings") {
        let text = case["text"].as_str().expect("text");
        assert_eq!(reloaded.encode(text).expect("encodes"), ids(&case["ids"]), "{text:?}");
    }
    let chat = &golden["chats"][0];
    let messages: Vec<ChatMessage> = serde_json::from_value(chat["messages"].clone()).expect("messages");
    let template = reloaded.chat_template.as_ref().expect("template saved");
    assert_eq!(
        template.render(&messages, true).expect("renders"),
        chat["rendered"].as_str().expect("rendered")
    );
}
