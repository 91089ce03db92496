//! What the engine tests share: locating the default model (fetched by scripts/fetch-model.sh).

#![allow(dead_code)]

pub mod tiny;
pub mod training;

use std::path::PathBuf;
use std::sync::OnceLock;

use culturespa_engine::{load_model, DeviceKind, LoadedModel};

pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// `<repo>/models/SmolLM2-135M-Instruct.Q4_1.gguf`; fails the test, saying how to get it, when missing.
pub fn default_model_path() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..").join("models").join(DEFAULT_MODEL_FILE);
    assert!(
        path.exists(),
        "the default model {} is missing: run scripts/fetch-model.sh (it downloads it into models/)",
        path.display()
    );
    path
}

/// The default model, loaded once per test binary.
pub fn default_model() -> &'static LoadedModel {
    static MODEL: OnceLock<LoadedModel> = OnceLock::new();
    MODEL.get_or_init(|| load_model(&default_model_path(), DeviceKind::Cpu).expect("load the default model"))
}

/// The prompt text of shared/bench/make_prompts.py's chatml().
pub fn chatml(system: &str, user: &str) -> String {
    format!("<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")
}

pub const UNAWARE_SYSTEM: &str = "You are a real person with your own set of values. Please fill out the World Values Survey and answer the questions honestly according to your own value system.";

pub fn answer_prompt(question: &str, options: &str) -> String {
    format!(
        "Given a #Question and #Options, choose the option that best aligns with your own value system to answer the question.\n#Question: {question}\n#Options: {options}\nPlease return the number of the selected option only."
    )
}
