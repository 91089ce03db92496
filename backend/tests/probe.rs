//! The general-ability probe: its shipped questions, and a probe of the default model.

use std::path::Path;

use culturespa::analysis::{probe_model, probe_questions, PROBE_TEXT};
use culturespa::engine::probe::parse_choice_questions;
use culturespa::engine::DeviceKind;

#[test]
fn the_shipped_questions_parse_and_bad_ones_are_named() {
    let questions = probe_questions().unwrap();
    assert_eq!(questions.len(), 40);
    assert!(questions.iter().all(|q| q.options.len() == 4 && (1..=4).contains(&q.answer)));
    // Right answers spread over the four positions, so always answering 1 cannot score well.
    let first = questions.iter().filter(|q| q.answer == 1).count();
    assert!(first <= 10, "{first} questions have option 1 right");
    assert!(PROBE_TEXT.split_whitespace().count() > 700);

    let error = parse_choice_questions(
        "{\"id\": \"a\", \"question\": \"q\", \"options\": [\"x\", \"y\"], \"answer\": 3}\n",
        "mc.jsonl",
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("mc.jsonl:1") && error.contains("answer 3"), "{error}");
    let error = parse_choice_questions("\n{\"id\": \"a\"}\n", "mc.jsonl").unwrap_err().to_string();
    assert!(error.contains("mc.jsonl:2"), "{error}");
}

#[test]
fn the_default_model_is_probed() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(model.is_file(), "{} is missing: run scripts/fetch-model.sh", model.display());
    let reports = probe_model(&model, &[], DeviceKind::Cpu, true).unwrap();
    assert_eq!(reports.len(), 1);
    let base = &reports[0];
    assert_eq!(base.setting, "base");
    assert!(base.tokens_predicted > 800, "{base:?}");
    // A 135M instruct model on plain English: far better than chance (49,152 tokens), far from perfect.
    assert!(base.perplexity > 2.0 && base.perplexity < 100.0, "{base:?}");
    assert_eq!(base.multiple_choice_questions, 40);
    assert_eq!(base.multiple_choice_correct as f64 / 40.0, base.multiple_choice_accuracy);

    let error =
        probe_model(&model, &[Path::new("/nonexistent/adapter").to_path_buf()], DeviceKind::Cpu, true).unwrap_err();
    assert!(error.to_string().contains("/nonexistent/adapter"), "{error}");
}
