//! Sharded checkpoints: `model.safetensors.index.json` maps each tensor name to the shard file
//! that holds it (`{"metadata": {...}, "weight_map": {name: file}}`), as transformers writes it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path};

use serde::Deserialize;

use super::{SafetensorsError, SafetensorsFile, TensorView};

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

/// A checkpoint spread over one or more safetensors files, looked up by tensor name.
#[derive(Debug)]
pub struct ShardedSafetensors {
    shards: Vec<SafetensorsFile>,
    shard_of: HashMap<String, usize>,
}

impl ShardedSafetensors {
    /// Opens a model directory: `model.safetensors.index.json` if present, else
    /// `model.safetensors`.
    pub fn open_dir(dir: &Path) -> Result<Self, SafetensorsError> {
        let index = dir.join("model.safetensors.index.json");
        if index.is_file() {
            Self::open_index(&index)
        } else {
            Self::single(SafetensorsFile::open(&dir.join("model.safetensors"))?)
        }
    }

    /// One file as a checkpoint.
    pub fn single(file: SafetensorsFile) -> Result<Self, SafetensorsError> {
        let shard_of = file.names().map(|n| (n.to_string(), 0)).collect();
        Ok(ShardedSafetensors { shards: vec![file], shard_of })
    }

    /// Opens the shards an index file names (paths relative to the index's directory) and
    /// checks that every tensor the index lists is in its shard.
    pub fn open_index(index_path: &Path) -> Result<Self, SafetensorsError> {
        let file = index_path.display().to_string();
        let text = std::fs::read_to_string(index_path)
            .map_err(|source| SafetensorsError::Io { file: file.clone(), source })?;
        let malformed = |subject: String, problem: String| SafetensorsError::Malformed {
            file: file.clone(),
            subject,
            offset: 0,
            problem,
        };
        let index: ShardIndex =
            serde_json::from_str(&text).map_err(|e| malformed("index".into(), e.to_string()))?;
        let dir = index_path.parent().unwrap_or(Path::new("."));

        let mut shards = Vec::new();
        let mut shard_by_file: HashMap<&str, usize> = HashMap::new();
        let mut shard_of = HashMap::new();
        for (name, shard_file) in &index.weight_map {
            let shard_path = Path::new(shard_file);
            let plain = shard_path.components().all(|c| matches!(c, Component::Normal(_)));
            if !plain {
                let problem = format!("shard path {shard_file:?} must be a plain relative file name");
                return Err(malformed(format!("weight_map entry {name:?}"), problem));
            }
            let shard = match shard_by_file.get(shard_file.as_str()) {
                Some(&i) => i,
                None => {
                    shards.push(SafetensorsFile::open(&dir.join(shard_path))?);
                    shard_by_file.insert(shard_file, shards.len() - 1);
                    shards.len() - 1
                }
            };
            if shards[shard].tensor(name).is_none() {
                let problem = format!("listed in {shard_file:?} but that shard has no such tensor");
                return Err(malformed(format!("tensor {name:?}"), problem));
            }
            shard_of.insert(name.clone(), shard);
        }
        Ok(ShardedSafetensors { shards, shard_of })
    }

    /// The tensor named `name`, from whichever shard holds it.
    pub fn tensor(&self, name: &str) -> Option<TensorView<'_>> {
        self.shards[*self.shard_of.get(name)?].tensor(name)
    }

    /// The shard file holding `name`.
    pub fn shard_for(&self, name: &str) -> Option<&SafetensorsFile> {
        self.shard_of.get(name).map(|&i| &self.shards[i])
    }

    /// Every tensor name (in no particular order).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.shard_of.keys().map(String::as_str)
    }

    /// The opened shard files.
    pub fn shards(&self) -> &[SafetensorsFile] {
        &self.shards
    }
}
