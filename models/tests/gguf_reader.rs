//! GGUF reader on files the tests write: every metadata type, every supported tensor type
//! against hand-computed values, and every kind of malformed file giving an error that names the
//! file, the subject and the byte offset.

mod common;

use common::{GgufBuilder, string, string_array};
use half::{bf16, f16};
use tessera_models::gguf::{GgmlType, GgufError, GgufFile, MetadataType, MetadataValue, Problem, dequantize};

fn open_written(bytes: &[u8]) -> (tempfile::TempDir, Result<GgufFile, GgufError>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tiny.gguf");
    std::fs::write(&path, bytes).expect("write");
    let result = GgufFile::open(&path);
    (dir, result)
}

fn expect_error(bytes: &[u8]) -> (String, Problem) {
    let (_dir, result) = open_written(bytes);
    let err = result.expect_err("malformed file must not parse");
    let message = err.to_string();
    assert!(message.contains("tiny.gguf"), "error must name the file: {message}");
    assert!(message.contains("byte offset"), "error must give the offset: {message}");
    let problem = err.problem().expect("content error").clone();
    (message, problem)
}

fn f16_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect()
}

#[test]
fn metadata_of_every_type_round_trips() {
    let nested = MetadataValue::Array {
        element_type: MetadataType::Array,
        values: vec![
            MetadataValue::Array { element_type: MetadataType::I32, values: vec![MetadataValue::I32(-1)] },
            MetadataValue::Array { element_type: MetadataType::I32, values: vec![] },
        ],
    };
    let entries = vec![
        ("u8", MetadataValue::U8(200)),
        ("i8", MetadataValue::I8(-5)),
        ("u16", MetadataValue::U16(60000)),
        ("i16", MetadataValue::I16(-3000)),
        ("u32", MetadataValue::U32(4_000_000_000)),
        ("i32", MetadataValue::I32(-7)),
        ("f32", MetadataValue::F32(0.25)),
        ("bool", MetadataValue::Bool(true)),
        ("string", string("héllo")),
        ("u64", MetadataValue::U64(u64::MAX)),
        ("i64", MetadataValue::I64(i64::MIN)),
        ("f64", MetadataValue::F64(-1e300)),
        ("strings", string_array(&["a", "", "ü"])),
        ("nested", nested),
    ];
    let mut builder = GgufBuilder::new();
    for (k, v) in &entries {
        builder = builder.kv(k, v.clone());
    }
    for version in [2, 3] {
        builder.version = version;
        let gguf = GgufFile::from_bytes("meta.gguf", builder.build()).expect("parses");
        assert_eq!(gguf.version(), version);
        assert_eq!(gguf.metadata().len(), entries.len());
        for (k, v) in &entries {
            assert_eq!(gguf.get(k), Some(v), "key {k}");
        }
        assert_eq!(gguf.get_u64("u32").expect("int"), Some(4_000_000_000));
        assert_eq!(gguf.get_f64("f32").expect("number"), Some(0.25));
        assert_eq!(gguf.get_str_array("strings").expect("strings"), Some(vec!["a", "", "ü"]));
        let err = gguf.get_str("u8").expect_err("u8 is not a string");
        assert!(err.to_string().contains("\"u8\"") && err.to_string().contains("byte offset"), "{err}");
    }
}

#[test]
fn every_plain_and_block_type_dequantizes_to_hand_computed_values() {
    let qs: Vec<u8> = (0..16u8).map(|j| j | ((15 - j) << 4)).collect();
    let low: Vec<f32> = (0..16).map(|j| j as f32).collect();
    let high: Vec<f32> = (0..16).map(|j| (15 - j) as f32).collect();

    let mut q4_0 = f16_bytes(&[2.0]);
    q4_0.extend(&qs);
    let q4_0_expected: Vec<f32> = low.iter().chain(&high).map(|q| (q - 8.0) * 2.0).collect();

    let mut q4_1 = f16_bytes(&[0.5, -1.0]);
    q4_1.extend(&qs);
    let q4_1_expected: Vec<f32> = low.iter().chain(&high).map(|q| q * 0.5 - 1.0).collect();

    let q8_values: Vec<i8> = (0..32).map(|i| (i * 8 - 128) as i8).collect();
    let mut q8_0 = f16_bytes(&[0.25]);
    q8_0.extend(q8_values.iter().map(|&v| v as u8));
    let q8_0_expected: Vec<f32> = q8_values.iter().map(|&v| f32::from(v) * 0.25).collect();

    let f32_values = [1.5f32, -2.0, 0.0, 3.25];
    let bf16_values = [1.0f32, -3.0, 0.5, 256.0];
    type Case = (&'static str, GgmlType, Vec<u64>, Vec<u8>, Vec<f32>);
    let cases: Vec<Case> = vec![
        (
            "f32",
            GgmlType::F32,
            vec![2, 2],
            f32_values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            f32_values.to_vec(),
        ),
        ("f16", GgmlType::F16, vec![4], f16_bytes(&[1.0, -2.0, 0.5, 65504.0]), vec![1.0, -2.0, 0.5, 65504.0]),
        (
            "bf16",
            GgmlType::BF16,
            vec![4],
            bf16_values.iter().flat_map(|&v| bf16::from_f32(v).to_le_bytes()).collect(),
            bf16_values.to_vec(),
        ),
        ("q4_0", GgmlType::Q4_0, vec![32], q4_0, q4_0_expected),
        ("q4_1", GgmlType::Q4_1, vec![32], q4_1, q4_1_expected),
        ("q8_0", GgmlType::Q8_0, vec![32], q8_0, q8_0_expected),
    ];
    let mut builder = GgufBuilder::new();
    for (name, ty, dims, data, _) in &cases {
        builder = builder.tensor(name, dims, ty.id(), data.clone());
    }
    let (_dir, gguf) = open_written(&builder.build());
    let gguf = gguf.expect("parses");
    assert_eq!(gguf.tensor_infos().len(), cases.len());
    for (name, ty, dims, data, expected) in &cases {
        let t = gguf.tensor(name).expect("present");
        assert_eq!(t.info.ggml_type, *ty);
        assert_eq!(&t.info.dims, dims);
        assert_eq!(t.data, &data[..], "{name} bytes borrowed unchanged");
        assert_eq!(t.info.data_start % 32, 0, "{name} aligned");
        assert_eq!(&dequantize(&t).expect("dequantizes"), expected, "{name}");
    }
    assert_eq!(gguf.tensor("f32").expect("present").info.shape(), vec![2, 2]);
}

#[test]
fn custom_alignment_is_honoured() {
    let mut builder = GgufBuilder::new()
        .kv("general.alignment", MetadataValue::U32(64))
        .tensor("a", &[3], 0, vec![0; 12])
        .tensor("b", &[1], 0, 7f32.to_le_bytes().to_vec());
    builder.alignment = 64;
    let gguf = GgufFile::from_bytes("aligned.gguf", builder.build()).expect("parses");
    assert_eq!(gguf.alignment(), 64);
    assert_eq!(gguf.data_offset() % 64, 0);
    let b = gguf.tensor("b").expect("present");
    assert_eq!(b.info.offset, 64);
    assert_eq!(dequantize(&b).expect("f32"), vec![7.0]);

    let bad = GgufBuilder::new().kv("general.alignment", MetadataValue::U32(48)).build();
    let (message, problem) = expect_error(&bad);
    assert_eq!(problem, Problem::BadAlignment(48));
    assert!(message.contains("general.alignment"), "{message}");
}

#[test]
fn wrong_magic_and_unsupported_version_are_reported() {
    let mut bytes = GgufBuilder::new().build();
    bytes[..4].copy_from_slice(b"GGML");
    let (message, problem) = expect_error(&bytes);
    assert!(matches!(problem, Problem::WrongMagic { .. }), "{message}");
    assert!(message.contains("offset 0"), "{message}");

    let mut builder = GgufBuilder::new();
    builder.version = 1;
    let (message, problem) = expect_error(&builder.build());
    assert_eq!(problem, Problem::UnsupportedVersion(1));
    assert!(message.contains("offset 4"), "{message}");
}

#[test]
fn every_truncation_is_an_error_never_a_panic() {
    let bytes = GgufBuilder::new()
        .kv("general.architecture", string("llama"))
        .kv("tokens", string_array(&["a", "bc"]))
        .tensor("t", &[32], GgmlType::Q8_0.id(), vec![1; 34])
        .build();
    for len in 0..bytes.len() {
        let result = GgufFile::from_bytes("cut.gguf", bytes[..len].to_vec());
        let err = result.expect_err("a truncated file must not parse");
        let message = err.to_string();
        assert!(message.contains("cut.gguf") && message.contains("byte offset"), "{len}: {message}");
    }
    let (message, problem) = expect_error(&bytes[..bytes.len() - 1]);
    assert!(matches!(problem, Problem::DataPastEnd { .. }), "{message}");
    assert!(message.contains("tensor \"t\""), "{message}");
}

#[test]
fn a_tensor_past_the_end_names_the_tensor_and_offset() {
    // Dims say 64 floats; the data holds 4.
    let bytes = GgufBuilder::new().tensor("big", &[64], 0, vec![0; 16]).build();
    let (message, problem) = expect_error(&bytes);
    assert!(matches!(problem, Problem::DataPastEnd { len: 256, .. }), "{problem:?}");
    assert!(message.contains("tensor \"big\""), "{message}");
}

#[test]
fn absurd_counts_and_dimensions_are_rejected_before_allocating() {
    let base = GgufBuilder::new().kv("k", string("v")).build();

    let mut huge_tensor_count = base.clone();
    huge_tensor_count[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    let (message, problem) = expect_error(&huge_tensor_count);
    assert!(matches!(problem, Problem::AbsurdCount { what: "tensor count", .. }), "{message}");
    assert!(message.contains("offset 8"), "{message}");

    let mut huge_kv_count = base.clone();
    huge_kv_count[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let (_, problem) = expect_error(&huge_kv_count);
    assert!(matches!(problem, Problem::AbsurdCount { what: "metadata count", .. }));

    let mut huge_key_len = base.clone();
    huge_key_len[24..32].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    let (message, problem) = expect_error(&huge_key_len);
    assert!(matches!(problem, Problem::AbsurdCount { what: "string length", .. }), "{message}");
    assert!(message.contains("metadata entry #0") && message.contains("offset 24"), "{message}");

    let huge_array = GgufBuilder::new()
        .kv(
            "arr",
            MetadataValue::Array { element_type: MetadataType::U64, values: vec![MetadataValue::U64(1)] },
        )
        .build();
    let mut patched = huge_array.clone();
    // Array count follows: key (8 + 3), value type (4), element type (4).
    let count_at = 24 + 8 + 3 + 4 + 4;
    patched[count_at..count_at + 8].copy_from_slice(&(1u64 << 61).to_le_bytes());
    let (message, problem) = expect_error(&patched);
    assert!(matches!(problem, Problem::AbsurdCount { what: "array length", .. }), "{message}");
    assert!(message.contains("\"arr\""), "{message}");

    let overflow = GgufBuilder::new().tensor("wide", &[1 << 40, 1 << 40], 0, vec![]).build();
    let (message, problem) = expect_error(&overflow);
    assert!(matches!(problem, Problem::Overflow(_)), "{message}");
    assert!(message.contains("tensor \"wide\""), "{message}");

    let bytes_overflow = GgufBuilder::new().tensor("bytes", &[1 << 62, 2], 0, vec![]).build();
    let (_, problem) = expect_error(&bytes_overflow);
    assert!(matches!(problem, Problem::Overflow(_)), "{problem:?}");

    let zero_hides_overflow = GgufBuilder::new().tensor("zero", &[0, 1 << 40, 1 << 40], 0, vec![]).build();
    let (_, problem) = expect_error(&zero_hides_overflow);
    assert!(matches!(problem, Problem::Overflow(_)), "{problem:?}");

    let five_dims = GgufBuilder::new().tensor("5d", &[1, 1, 1, 1, 1], 0, vec![0; 4]).build();
    let (_, problem) = expect_error(&five_dims);
    assert_eq!(problem, Problem::TooManyDimensions(5));
}

#[test]
fn deeply_nested_arrays_are_rejected_not_recursed_into() {
    let mut value = MetadataValue::Array { element_type: MetadataType::U8, values: vec![] };
    for _ in 0..20 {
        value = MetadataValue::Array { element_type: MetadataType::Array, values: vec![value] };
    }
    let (message, problem) = expect_error(&GgufBuilder::new().kv("deep", value).build());
    assert!(matches!(problem, Problem::NestingTooDeep(_)), "{message}");
}

#[test]
fn unknown_types_misalignment_and_duplicates_are_reported() {
    let unknown = GgufBuilder::new().tensor("odd", &[4], 99, vec![0; 16]).build();
    let (message, problem) = expect_error(&unknown);
    assert_eq!(problem, Problem::UnknownTensorType(99));
    assert!(message.contains("tensor \"odd\""), "{message}");

    let mut bad_value_type = GgufBuilder::new().kv("x", MetadataValue::U8(1)).build();
    bad_value_type[24 + 8 + 1..24 + 8 + 5].copy_from_slice(&77u32.to_le_bytes());
    let (message, problem) = expect_error(&bad_value_type);
    assert_eq!(problem, Problem::UnknownValueType(77));
    assert!(message.contains("metadata key \"x\""), "{message}");

    // Second tensor's stored offset is 32; make it 4.
    let builder = GgufBuilder::new().tensor("a", &[1], 0, vec![0; 4]).tensor("b", &[1], 0, vec![0; 4]);
    let mut bytes = builder.build();
    let b_offset_at =
        bytes.windows(1 + 8).position(|w| w[0] == b'b' && w[1..5] == 1u32.to_le_bytes()).expect("entry")
            + 1
            + 4
            + 8
            + 4;
    bytes[b_offset_at..b_offset_at + 8].copy_from_slice(&4u64.to_le_bytes());
    let (message, problem) = expect_error(&bytes);
    assert_eq!(problem, Problem::Misaligned { offset: 4, alignment: 32 });
    assert!(message.contains("tensor \"b\""), "{message}");

    let partial = GgufBuilder::new().tensor("q", &[16], GgmlType::Q4_0.id(), vec![0; 18]).build();
    let (_, problem) = expect_error(&partial);
    assert!(matches!(problem, Problem::PartialBlock { row: 16, block: 32, .. }));

    let dup = GgufBuilder::new().kv("k", MetadataValue::U8(1)).kv("k", MetadataValue::U8(2)).build();
    let (_, problem) = expect_error(&dup);
    assert_eq!(problem, Problem::Duplicate("k".into()));
}

#[test]
fn llama_metadata_maps_to_llama_config() {
    let u32v = MetadataValue::U32;
    let bytes = GgufBuilder::new()
        .kv("general.architecture", string("qwen2"))
        .kv("qwen2.context_length", u32v(4096))
        .kv("qwen2.embedding_length", u32v(64))
        .kv("qwen2.block_count", u32v(2))
        .kv("qwen2.feed_forward_length", u32v(96))
        .kv("qwen2.attention.head_count", u32v(4))
        .kv("qwen2.attention.head_count_kv", u32v(2))
        .kv("qwen2.rope.freq_base", MetadataValue::F32(1e6))
        .kv("qwen2.attention.layer_norm_rms_epsilon", MetadataValue::F32(1e-6))
        .kv("qwen2.rope.scaling.type", string("linear"))
        .kv("qwen2.rope.scaling.factor", MetadataValue::F32(2.0))
        .kv("tokenizer.ggml.tokens", string_array(&["a", "b", "c"]))
        .kv("tokenizer.ggml.eos_token_id", u32v(2))
        .tensor("blk.0.attn_q.bias", &[64], 0, vec![0; 256])
        .tensor("output.weight", &[64, 3], 0, vec![0; 768])
        .build();
    let gguf = GgufFile::from_bytes("qwen.gguf", bytes).expect("parses");
    let c = gguf.llama_config().expect("maps");
    assert_eq!(c.model_type, "qwen2");
    assert_eq!((c.hidden_size, c.intermediate_size, c.num_hidden_layers), (64, 96, 2));
    assert_eq!((c.num_attention_heads, c.num_key_value_heads, c.head_dim), (4, 2, 16));
    assert_eq!((c.vocab_size, c.max_position_embeddings), (3, 4096));
    assert_eq!(c.rope_theta, 1e6);
    assert!(c.attention_bias && !c.tie_word_embeddings);
    assert_eq!(c.rope_scaling.as_ref().map(|s| (s.rope_type.as_str(), s.factor)), Some(("linear", 2.0)));
    assert_eq!(c.eos_token_ids(), vec![2]);
    assert_eq!(gguf.tensor("output.weight").expect("present").info.shape(), vec![3, 64]);

    let missing = GgufBuilder::new().kv("general.architecture", string("llama")).build();
    let err =
        GgufFile::from_bytes("bare.gguf", missing).expect("parses").llama_config().expect_err("incomplete");
    let message = err.to_string();
    assert!(message.contains("bare.gguf") && message.contains("llama.embedding_length"), "{message}");
}
