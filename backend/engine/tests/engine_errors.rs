//! Bad input gives a clear error that names what is wrong.

mod common;

use std::io::Write;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use culturespa_engine::{load_model, DeviceKind, EngineError};

fn load_error(path: &std::path::Path) -> EngineError {
    load_model(path, DeviceKind::Cpu).expect_err("loading should fail")
}

#[test]
fn a_missing_model_file_is_named() {
    let error = load_error(std::path::Path::new("/nowhere/model.gguf"));
    assert!(matches!(error, EngineError::ModelNotFound(_)), "{error:?}");
    assert!(error.to_string().contains("/nowhere/model.gguf"), "{error}");
}

#[test]
fn a_truncated_gguf_names_the_first_tensor_past_the_end() {
    let original = std::fs::read(common::default_model_path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.gguf");
    std::fs::write(&path, &original[..original.len() / 2]).unwrap();
    let error = load_error(&path);
    assert!(matches!(error, EngineError::InvalidGguf { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("truncated.gguf") && message.contains("truncated: tensor"), "{message}");

    // Cut inside the header (in the tokenizer vocabulary).
    std::fs::write(&path, &original[..4096]).unwrap();
    let error = load_error(&path);
    assert!(matches!(error, EngineError::InvalidGguf { .. }), "{error:?}");
}

#[test]
fn a_file_that_is_not_gguf_is_rejected() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "just some text, not a model").unwrap();
    let error = load_error(file.path());
    assert!(matches!(error, EngineError::InvalidGguf { .. }), "{error:?}");
    assert!(error.to_string().contains("magic"), "{error}");
}

#[test]
fn an_unsupported_gguf_architecture_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpt2.gguf");
    let weight =
        QTensor::quantize(&Tensor::zeros((4, 32), candle_core::DType::F32, &Device::Cpu).unwrap(), GgmlDType::F32)
            .unwrap();
    let architecture = gguf_file::Value::String("gpt2".into());
    let mut file = std::fs::File::create(&path).unwrap();
    gguf_file::write(&mut file, &[("general.architecture", &architecture)], &[("token_embd.weight", &weight)]).unwrap();
    drop(file);
    let error = load_error(&path);
    assert!(matches!(error, EngineError::UnsupportedArchitecture(ref name) if name == "gpt2"), "{error:?}");
    assert!(error.to_string().contains("\"gpt2\""), "{error}");
}

#[test]
fn an_unsupported_hugging_face_architecture_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"{"model_type": "bert", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
        "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 32}"#;
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let error = load_error(dir.path());
    assert!(matches!(error, EngineError::UnsupportedArchitecture(ref name) if name == "bert"), "{error:?}");
}

#[test]
fn a_model_folder_without_config_names_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let error = load_error(dir.path());
    assert!(matches!(error, EngineError::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("config.json"), "{error}");
}
