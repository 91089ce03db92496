//! `culturespa data prompts`: the evaluation workload of a variant in the format of
//! shared/bench/make_prompts.py (what `bench score` and the llama.cpp harness read), in the order
//! of a run's evaluate stage, rendered with the model's chat template.

mod common;

use serde_json::{json, Value};

fn prompts(args: &[&str]) -> (bool, Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let model = common::model();
    let output =
        common::culturespa(dir.path()).args(["data", "prompts", "--model"]).arg(&model).args(args).output().unwrap();
    let lines =
        String::from_utf8_lossy(&output.stdout).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    (output.status.success(), lines, String::from_utf8_lossy(&output.stderr).to_string())
}

#[test]
fn p1_prompts_are_the_benchmark_workloads_lines() {
    let (ok, lines, stderr) = prompts(&["--variant", "P1", "--limit", "2"]);
    assert!(ok, "{stderr}");
    // Culture by culture, two questions each.
    assert_eq!(lines.len(), 18 * 2);
    let ids: Vec<&str> = lines.iter().take(4).map(|line| line["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["USA/Q1", "USA/Q2", "CAN/Q1", "CAN/Q2"]);
    // The line make_prompts.py writes for it, byte for byte in its text (SmolLM2's template is ChatML).
    let expected = json!({
        "id": "USA/Q1",
        "question_id": "Q1",
        "country_code": "USA",
        "text": "<|im_start|>system\nYou are a real person with an American cultural background. Please fill out the World Values Survey and answer the questions honestly according to your own value system.<|im_end|>\n<|im_start|>user\nGiven a #Question and #Options, choose the option that best aligns with your own value system to answer the question.\n#Question: How important is family in your life?\n#Options: 1.Very important 2.Rather important 3.Not very important 4.Not at all important\nPlease return the number of the selected option only.<|im_end|>\n<|im_start|>assistant\n",
        "choices": ["1", "2", "3", "4"],
    });
    assert_eq!(lines[0], expected);
}

#[test]
fn p3_prompts_show_the_cultures_own_answers_and_unaware_ones_name_no_culture() {
    let (ok, lines, stderr) = prompts(&["--variant", "p3", "--limit", "1"]);
    assert!(ok, "{stderr}");
    assert_eq!(lines.len(), 18);
    let text = |index: usize| lines[index]["text"].as_str().unwrap().to_string();
    assert!(text(0).contains("Here are some answered questions, which can reflect your value system:"));
    assert!(text(0).contains("#Question: How important is family in your life?"));
    // The examples carry each culture's majority answers, so two cultures' prompts differ.
    assert!(lines.iter().any(|line| line["text"] != lines[0]["text"]));

    // Sorted as a scoring stage answers them: the same prompts, by text.
    let (ok, sorted, stderr) = prompts(&["--variant", "p3", "--limit", "1", "--sorted"]);
    assert!(ok, "{stderr}");
    let mut expected = lines.clone();
    expected.sort_by(|a, b| a["text"].as_str().cmp(&b["text"].as_str()));
    assert_eq!(sorted, expected);
    assert_ne!(sorted, lines, "the cultures' order is not the texts' order");

    let (ok, lines, stderr) = prompts(&["--variant", "unaware", "--limit", "3"]);
    assert!(ok, "{stderr}");
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|line| line["country_code"].is_null()));
    assert_eq!(lines[2]["id"], "unaware/Q3");
}

#[test]
fn an_unknown_variant_is_named() {
    let (ok, lines, stderr) = prompts(&["--variant", "P9"]);
    assert!(!ok);
    assert!(lines.is_empty());
    assert!(stderr.contains("unknown variant 'P9'"), "{stderr}");
}
