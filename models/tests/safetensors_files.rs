//! safetensors: the real all-MiniLM-L6-v2 checkpoint, write-then-read round trips, sharded
//! checkpoints, and malformed headers (each error naming the file, tensor and offset); plus the
//! model directory's config.json and tokenizer.json.

mod common;

use std::collections::BTreeMap;

use half::{bf16, f16};
use tessera_models::BertConfig;
use tessera_models::safetensors::{
    Dtype, SafetensorsFile, ShardedSafetensors, TensorView, serialize_safetensors, write_safetensors,
};
use tessera_models::tokenizer::ModelTokenizer;

fn le_f32(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn minilm_checkpoint_reads_with_names_shapes_and_values() {
    let Some(dir) = common::real_model(common::MINILM_DIR) else { return };
    let file = SafetensorsFile::open(&dir.join("model.safetensors")).expect("opens");
    assert_eq!(file.len(), 104);
    assert_eq!(file.metadata().get("format").map(String::as_str), Some("pt"));
    let embed = file.tensor("embeddings.word_embeddings.weight").expect("present");
    assert_eq!((embed.dtype, embed.shape), (Dtype::F32, &[30522usize, 384][..]));
    let values = embed.to_f32().expect("f32");
    let first: Vec<f64> = values[..4].iter().map(|&v| f64::from(v)).collect();
    assert_eq!(first, [-0.019989013671875, -0.0034027099609375, -0.014678955078125, 0.0117034912109375]);
    let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
    assert!((sum - 138.05072214923618).abs() < 1e-6, "{sum}");
    let positions = file.tensor("embeddings.position_ids").expect("present");
    assert_eq!((positions.dtype, positions.shape), (Dtype::I64, &[1usize, 512][..]));
    assert_eq!(&positions.data[8..16], &1i64.to_le_bytes());
    let error = file.tensor_f32("embeddings.position_ids").expect_err("I64 is not a float");
    assert!(
        error.to_string().contains("model.safetensors") && error.to_string().contains("byte offset"),
        "{error}"
    );
    assert!(
        file.names()
            .all(|n| n.starts_with("embeddings.") || n.starts_with("encoder.") || n.starts_with("pooler."))
    );

    let sharded = ShardedSafetensors::open_dir(&dir).expect("single-file directory");
    assert_eq!(sharded.tensor("pooler.dense.weight").expect("present").shape, &[384, 384]);

    let config = BertConfig::from_file(&dir.join("config.json")).expect("config");
    assert_eq!((config.hidden_size, config.num_hidden_layers, config.num_attention_heads), (384, 6, 12));
    assert_eq!((config.intermediate_size, config.vocab_size, config.type_vocab_size), (1536, 30522, 2));
    assert_eq!((config.hidden_act.as_str(), config.layer_norm_eps, config.pad_token_id), ("gelu", 1e-12, 0));

    let tokenizer = ModelTokenizer::from_dir(&dir).expect("tokenizer.json");
    let ids = tokenizer.tokenizer.encode("Hello world!", true).expect("encodes");
    assert_eq!(&ids.get_ids()[..5], &[101, 7592, 2088, 999, 102]);
}

#[test]
fn written_files_read_back_identically() {
    let f32_data = le_f32(&[1.0, -2.5, 3.0, 0.125, 7.0, 8.0]);
    let f16_data: Vec<u8> = [1.0f32, -0.5].iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect();
    let bf16_data: Vec<u8> =
        [3.0f32, -4.0, 0.25].iter().flat_map(|&v| bf16::from_f32(v).to_le_bytes()).collect();
    let u32_data: Vec<u8> = [7u32, 0xDEAD_BEEF].iter().flat_map(|v| v.to_le_bytes()).collect();
    let bools = vec![1u8, 0, 1];
    let tensors = [
        ("w", TensorView { dtype: Dtype::F32, shape: &[2, 3], data: &f32_data }),
        ("h", TensorView { dtype: Dtype::F16, shape: &[2], data: &f16_data }),
        ("b", TensorView { dtype: Dtype::BF16, shape: &[3, 1], data: &bf16_data }),
        ("packed", TensorView { dtype: Dtype::U32, shape: &[2], data: &u32_data }),
        ("mask", TensorView { dtype: Dtype::BOOL, shape: &[3], data: &bools }),
        ("empty", TensorView { dtype: Dtype::I8, shape: &[0, 4], data: &[] }),
        ("scalar", TensorView { dtype: Dtype::I32, shape: &[], data: &[5, 0, 0, 0] }),
    ];
    let metadata = BTreeMap::from([("format".to_string(), "mlx".to_string())]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("round.safetensors");
    write_safetensors(&path, &tensors, &metadata).expect("writes");

    let file = SafetensorsFile::open(&path).expect("reads back");
    assert_eq!(file.metadata(), &metadata);
    assert_eq!(file.data_start() % 8, 0, "header padded to 8 bytes");
    for (name, view) in &tensors {
        assert_eq!(file.tensor(name).as_ref(), Some(view), "{name}");
    }
    assert_eq!(file.tensor_f32("h").expect("f16"), vec![1.0, -0.5]);
    assert_eq!(file.tensor_f32("b").expect("bf16"), vec![3.0, -4.0, 0.25]);

    let bad = [("w", TensorView { dtype: Dtype::F32, shape: &[4], data: &f32_data })];
    let err = write_safetensors(&path, &bad, &metadata).expect_err("24 bytes are not 4 floats");
    assert!(err.to_string().contains("\"w\"") && err.to_string().contains("round.safetensors"), "{err}");
}

#[test]
fn sharded_checkpoints_resolve_through_the_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = le_f32(&[1.0, 2.0]);
    let b = le_f32(&[3.0]);
    let none = BTreeMap::new();
    write_safetensors(
        &dir.path().join("model-00001-of-00002.safetensors"),
        &[("a", TensorView { dtype: Dtype::F32, shape: &[2], data: &a })],
        &none,
    )
    .expect("shard 1");
    write_safetensors(
        &dir.path().join("model-00002-of-00002.safetensors"),
        &[("b", TensorView { dtype: Dtype::F32, shape: &[1], data: &b })],
        &none,
    )
    .expect("shard 2");
    let index = r#"{"metadata": {"total_size": 12}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#;
    std::fs::write(dir.path().join("model.safetensors.index.json"), index).expect("index");
    let sharded = ShardedSafetensors::open_dir(dir.path()).expect("opens");
    assert_eq!(sharded.shards().len(), 2);
    assert_eq!(sharded.tensor("b").expect("b").to_f32(), Some(vec![3.0]));
    assert!(sharded.shard_for("a").expect("a").file_name().ends_with("model-00001-of-00002.safetensors"));

    let wrong = r#"{"weight_map": {"c": "model-00001-of-00002.safetensors"}}"#;
    std::fs::write(dir.path().join("model.safetensors.index.json"), wrong).expect("index");
    let err = ShardedSafetensors::open_dir(dir.path()).expect_err("c is in no shard");
    assert!(err.to_string().contains("\"c\"") && err.to_string().contains("index.json"), "{err}");

    let escaping = r#"{"weight_map": {"a": "../model-00001-of-00002.safetensors"}}"#;
    std::fs::write(dir.path().join("model.safetensors.index.json"), escaping).expect("index");
    assert!(ShardedSafetensors::open_dir(dir.path()).is_err());
}

fn with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

fn expect_error(bytes: Vec<u8>, needles: &[&str]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.safetensors");
    std::fs::write(&path, &bytes).expect("write");
    let message = SafetensorsFile::open(&path).expect_err("malformed").to_string();
    assert!(message.contains("bad.safetensors") && message.contains("byte offset"), "{message}");
    for needle in needles {
        assert!(message.contains(needle), "{message:?} should mention {needle:?}");
    }
}

#[test]
fn malformed_files_are_errors_naming_file_tensor_and_offset() {
    expect_error(vec![1, 2, 3], &["header", "offset 0"]);
    expect_error(u64::MAX.to_le_bytes().to_vec(), &["exceeds"]);
    expect_error(with_header("{}", &[])[..6].to_vec(), &["shorter"]);
    let mut too_long = with_header("{}", &[]);
    too_long[0] = 200;
    expect_error(too_long, &["runs past the end"]);
    expect_error(with_header("{\"a\": ", &[]), &["invalid JSON"]);
    expect_error(with_header("[1, 2]", &[]), &["invalid JSON"]);
    expect_error(
        with_header(r#"{"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, &[0; 4]),
        &["\"w\"", "F33"],
    );
    let past_end = with_header(r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, &[0; 8]);
    expect_error(past_end, &["\"w\"", "do not fit", "offset 63"]);
    let wrong_len = with_header(r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, &[0; 8]);
    expect_error(wrong_len, &["\"w\"", "needs 12"]);
    let overflow =
        with_header(r#"{"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, &[0; 8]);
    expect_error(overflow, &["\"w\"", "overflows"]);
    let reversed = with_header(r#"{"w":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}"#, &[0; 8]);
    expect_error(reversed, &["\"w\""]);
    let hole = with_header(r#"{"w":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#, &[0; 4]);
    expect_error(hole, &["\"w\"", "holes"]);
    let trailing = with_header(r#"{"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#, &[0; 4]);
    expect_error(trailing, &["not described"]);
    let bad_metadata = with_header(r#"{"__metadata__":{"n":1}}"#, &[]);
    expect_error(bad_metadata, &["__metadata__"]);
}

#[test]
fn from_bytes_and_serialize_agree() {
    let data = le_f32(&[0.5]);
    let bytes = serialize_safetensors(
        &[("x", TensorView { dtype: Dtype::F32, shape: &[1], data: &data })],
        &BTreeMap::new(),
    )
    .expect("serializes");
    let file = SafetensorsFile::from_bytes("<memory>", bytes).expect("parses");
    assert_eq!(file.tensor_f32("x").expect("f32"), vec![0.5]);
}
