//! Any bytes: parse as safetensors, read every tensor, and check that writing what was read and
//! reading it again gives the same tensors. Must never panic or read out of bounds.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use tessera_models::safetensors::{serialize_safetensors, SafetensorsFile};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = SafetensorsFile::from_bytes("fuzz.safetensors", data.to_vec()) else { return };
    let names: Vec<String> = file.names().map(str::to_string).collect();
    let mut tensors = Vec::new();
    for name in &names {
        let view = file.tensor(name).expect("listed names resolve");
        assert_eq!(view.data.len(), view.n_elements() * view.dtype.size());
        let _ = view.to_f32();
        tensors.push((name.as_str(), view));
    }
    let metadata: BTreeMap<String, String> = file.metadata().clone();
    let bytes = serialize_safetensors(&tensors, &metadata).expect("what was read can be written");
    let again = SafetensorsFile::from_bytes("again.safetensors", bytes).expect("what was written reads back");
    assert_eq!(again.metadata(), &metadata);
    for (name, view) in &tensors {
        assert_eq!(again.tensor(name).as_ref(), Some(view));
    }
});
