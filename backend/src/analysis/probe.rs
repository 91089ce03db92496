//! The general-ability probe's shipped data (`data/probe/`: a held-out general text written for
//! this project and 40 general-knowledge multiple-choice questions), and the probe over a model
//! and its adapters (`culturespa probe`).

use std::path::{Path, PathBuf};

use crate::engine::lora::LoraAdapter;
use crate::engine::probe::{parse_choice_questions, run_probe, ChoiceQuestion, ProbeReport};
use crate::engine::{load_model, DeviceKind, EngineError};

pub const PROBE_TEXT: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/probe/general_text.txt"));
pub const PROBE_QUESTIONS: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/probe/multiple_choice.jsonl"));

/// The shipped multiple-choice questions.
pub fn probe_questions() -> Result<Vec<ChoiceQuestion>, EngineError> {
    parse_choice_questions(PROBE_QUESTIONS, "data/probe/multiple_choice.jsonl")
}

/// Probes the base model (when `with_base`), then the model with each adapter (merged), loading
/// the model once. One report per setting, in that order.
pub fn probe_model(
    model: &Path,
    adapters: &[PathBuf],
    device: DeviceKind,
    with_base: bool,
) -> Result<Vec<ProbeReport>, EngineError> {
    let questions = probe_questions()?;
    // Adapters first: a missing or broken one fails before the model is loaded.
    let (device_handle, _) = device.device_and_dtype()?;
    let adapters = adapters
        .iter()
        .map(|dir| Ok((dir.display().to_string(), LoraAdapter::load(dir, &device_handle)?, dir)))
        .collect::<Result<Vec<_>, EngineError>>()?;
    let loaded = load_model(model, device)?;
    let mut reports = Vec::with_capacity(adapters.len() + 1);
    if with_base {
        reports.push(run_probe(&loaded, None, PROBE_TEXT, &questions)?);
    }
    for (name, adapter, dir) in &adapters {
        adapter.check_fits(loaded.model.config(), Some(dir))?;
        reports.push(run_probe(&loaded, Some((name, adapter)), PROBE_TEXT, &questions)?);
    }
    Ok(reports)
}
