//! Model files are untrusted input too: a GGUF (header, metadata, tensor table) and a PEFT adapter
//! (its `adapter_config.json` and its safetensors), mutated from the seeds in
//! `backend/tests/fuzz_corpus/` (written by `engine_loading.rs`'s `write_the_fuzz_seeds`), load to a
//! model or an error and never panic.

use std::path::Path;

use candle_core::Device;
use culturespa_engine::lora::{ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE};
use culturespa_engine::{load_model, DeviceKind, LoraAdapter, TrainableAdapter};
use proptest::prelude::*;

const GGUF: &[u8] = include_bytes!("../../tests/fuzz_corpus/tiny-qwen2.gguf");
const ADAPTER_CONFIG: &str = include_str!("../../tests/fuzz_corpus/adapter/adapter_config.json");
const ADAPTER_WEIGHTS: &[u8] = include_bytes!("../../tests/fuzz_corpus/adapter/adapter_model.safetensors");
/// Most edits fall in a file's first bytes: its header, where the lengths and counts are.
const HEADER_SPAN: usize = 8192;

/// One edit of a file: a byte inserted, deleted or replaced, a length-like field overwritten with
/// a value that tests bounds (little-endian, as GGUF and safetensors write them), or a cut.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, u8),
    Delete(usize),
    Replace(usize, u8),
    Word32(usize, u32),
    Word64(usize, u64),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let position = prop_oneof![3 => 0..HEADER_SPAN, 1 => any::<usize>()];
    let word32 = prop::sample::select(vec![0, 1, 7, 0x7fff_ffff, 0x8000_0000, u32::MAX]);
    let word64 = prop::sample::select(vec![0, 1, 1 << 32, 1 << 40, 1 << 62, u64::MAX]);
    prop_oneof![
        (position.clone(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert(at, byte)),
        position.clone().prop_map(Edit::Delete),
        (position.clone(), any::<u8>()).prop_map(|(at, byte)| Edit::Replace(at, byte)),
        (position.clone(), word32).prop_map(|(at, word)| Edit::Word32(at, word)),
        (position.clone(), word64).prop_map(|(at, word)| Edit::Word64(at, word)),
        position.prop_map(Edit::Truncate),
    ]
}

fn mutated_bytes(seed: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(edit(), 1..6).prop_map(move |edits| {
        let mut bytes = seed.to_vec();
        for edit in edits {
            let at = |index: usize, bytes: &Vec<u8>| if bytes.is_empty() { 0 } else { index % bytes.len() };
            match edit {
                Edit::Insert(index, byte) => {
                    let index = index % (bytes.len() + 1);
                    bytes.insert(index, byte);
                }
                Edit::Delete(index) if !bytes.is_empty() => {
                    bytes.remove(at(index, &bytes));
                }
                Edit::Replace(index, byte) if !bytes.is_empty() => {
                    let index = at(index, &bytes);
                    bytes[index] = byte;
                }
                Edit::Word32(index, word) => overwrite(&mut bytes, index, &word.to_le_bytes()),
                Edit::Word64(index, word) => overwrite(&mut bytes, index, &word.to_le_bytes()),
                Edit::Truncate(index) => bytes.truncate(at(index, &bytes)),
                _ => {}
            }
        }
        bytes
    })
}

fn overwrite(bytes: &mut [u8], index: usize, word: &[u8]) {
    if bytes.len() >= word.len() {
        let index = index % (bytes.len() - word.len() + 1);
        bytes[index..index + word.len()].copy_from_slice(word);
    }
}

/// The seed with up to 8 character edits (JSON's own characters among them), or arbitrary text.
fn mutated_text(seed: &'static str) -> impl Strategy<Value = String> {
    let character = prop_oneof![
        prop::sample::select(vec!['"', '{', '}', '[', ']', ',', ':', '0', '9', '-', 'e', '.', 'n']),
        any::<char>()
    ];
    let edit = (any::<usize>(), prop::option::of(character), any::<bool>());
    prop_oneof![
        4 => prop::collection::vec(edit, 1..8).prop_map(move |edits| {
            let mut chars: Vec<char> = seed.chars().collect();
            for (index, character, replace) in edits {
                let index = index % (chars.len() + 1);
                match (character, replace) {
                    (Some(c), true) if index < chars.len() => chars[index] = c,
                    (Some(c), _) => chars.insert(index, c),
                    (None, _) if index < chars.len() => {
                        chars.remove(index);
                    }
                    (None, _) => {}
                }
            }
            chars.into_iter().collect()
        }),
        1 => ".{0,200}",
    ]
}

/// Loads an adapter folder and, when it loads, checks it against the seed model's shapes.
fn load_adapter(dir: &Path, config: &str, weights: &[u8]) -> Result<(), String> {
    std::fs::write(dir.join(ADAPTER_CONFIG_FILE), config).unwrap();
    std::fs::write(dir.join(ADAPTER_WEIGHTS_FILE), weights).unwrap();
    let adapter = LoraAdapter::load(dir, &Device::Cpu).map_err(|error| error.to_string())?;
    adapter.check_fits(seed_model_config(), Some(dir)).map_err(|error| error.to_string())?;
    TrainableAdapter::from_adapter(&adapter).map(drop).map_err(|error| error.to_string())
}

fn seed_model_config() -> &'static culturespa_engine::ModelConfig {
    static CONFIG: std::sync::OnceLock<culturespa_engine::ModelConfig> = std::sync::OnceLock::new();
    CONFIG.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed.gguf");
        std::fs::write(&path, GGUF).unwrap();
        load_model(&path, DeviceKind::Cpu).unwrap().model.config().clone()
    })
}

#[test]
fn the_seeds_load() {
    assert_eq!(seed_model_config().num_layers, 1);
    let dir = tempfile::tempdir().unwrap();
    load_adapter(dir.path(), ADAPTER_CONFIG, ADAPTER_WEIGHTS).unwrap();
}

proptest! {
    #[test]
    fn gguf_files_never_panic(bytes in mutated_bytes(GGUF)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.gguf");
        std::fs::write(&path, &bytes).unwrap();
        let _ = load_model(&path, DeviceKind::Cpu);
    }

    #[test]
    fn adapter_configs_never_panic(text in mutated_text(ADAPTER_CONFIG)) {
        let dir = tempfile::tempdir().unwrap();
        let _ = load_adapter(dir.path(), &text, ADAPTER_WEIGHTS);
    }

    #[test]
    fn adapter_weights_never_panic(bytes in mutated_bytes(ADAPTER_WEIGHTS)) {
        let dir = tempfile::tempdir().unwrap();
        let _ = load_adapter(dir.path(), ADAPTER_CONFIG, &bytes);
    }
}
