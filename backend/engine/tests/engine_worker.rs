//! The engine thread with the default model: progress, cancellation, determinism, and prompts
//! it refuses.

mod common;

use std::sync::{mpsc, OnceLock};

use culturespa_engine::batch::BatchLimits;
use culturespa_engine::{
    CancelToken, Engine, EngineError, EngineOptions, GenerationPrompt, SamplingParams, ScorePrompt,
};

use common::{answer_prompt, chatml, default_model_path, UNAWARE_SYSTEM};

/// Batches of two prompts, one at a time, so that a handful of prompts make several rounds.
const SMALL_BATCH: BatchLimits = BatchLimits {
    max_tokens: 2048,
    max_sequences: 2,
    max_prefix_shrink_cost: 64,
    concurrent_batches: Some(1),
    balance_over: 1,
};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::start(EngineOptions { batch_limits: SMALL_BATCH, ..EngineOptions::new(default_model_path()) })
            .expect("start the engine")
    })
}

const QUESTIONS: [(&str, &str); 5] = [
    ("Q1", "How important is family in your life?"),
    ("Q2", "How important are friends in your life?"),
    ("Q3", "How important is leisure time in your life?"),
    ("Q4", "How important is politics in your life?"),
    ("Q5", "How important is work in your life?"),
];
const FOUR_OPTIONS: &str = "1.Very important 2.Rather important 3.Not very important 4.Not at all important";

fn wvs_prompts() -> Vec<ScorePrompt> {
    QUESTIONS
        .iter()
        .map(|(id, question)| ScorePrompt {
            id: id.to_string(),
            text: chatml(UNAWARE_SYSTEM, &answer_prompt(question, FOUR_OPTIONS)),
            choices: ["1", "2", "3", "4"].map(String::from).to_vec(),
        })
        .collect()
}

#[test]
fn scoring_reports_progress_per_batch_and_is_deterministic() {
    let (sender, progress) = mpsc::channel();
    let outcome = engine().score(wvs_prompts(), move |update| sender.send(update).unwrap()).unwrap().wait().unwrap();
    let updates: Vec<_> = progress.try_iter().collect();
    assert_eq!(updates.len(), 3, "5 prompts in batches of 2");
    assert_eq!(updates.iter().map(|u| u.completed).collect::<Vec<_>>(), [2, 4, 5]);
    assert_eq!(updates.iter().map(|u| u.first_index).collect::<Vec<_>>(), [0, 2, 4]);
    let streamed: Vec<_> = updates.into_iter().flat_map(|u| u.scores).collect();
    assert_eq!(streamed, outcome.scores);
    assert_eq!(outcome.counters.prompts, 5);
    for scores in &outcome.scores {
        assert_eq!(scores.probs.len(), 4);
        assert!((scores.probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    // Each answer is the option of highest probability, whatever the model prefers.
    for (scores, prompt) in outcome.scores.iter().zip(wvs_prompts()) {
        let best = (0..scores.probs.len()).max_by(|a, b| scores.probs[*a].total_cmp(&scores.probs[*b])).unwrap();
        assert_eq!(scores.answer, prompt.choices[best], "{scores:?}");
    }

    let again = engine().score(wvs_prompts(), |_| {}).unwrap().wait().unwrap();
    assert_eq!(again.scores, outcome.scores, "same prompts, same bytes");
}

#[test]
fn the_cpu_kernels_option_picks_the_path_and_both_paths_score_alike() {
    let start = |cpu_kernels| {
        let options = EngineOptions { cpu_kernels: Some(cpu_kernels), ..EngineOptions::new(default_model_path()) };
        Engine::start(options).expect("start the engine")
    };
    let (fused, generic) = (start(true), start(false));
    assert!(fused.info().cpu_kernels && !generic.info().cpu_kernels);
    let fused_scores = fused.score(wvs_prompts(), |_| {}).unwrap().wait().unwrap().scores;
    let generic_scores = generic.score(wvs_prompts(), |_| {}).unwrap().wait().unwrap().scores;
    for (a, b) in fused_scores.iter().zip(&generic_scores) {
        let largest_gap = a.probs.iter().zip(&b.probs).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        assert!(largest_gap < 1e-4, "{a:?} vs {b:?}");
    }
}

#[test]
fn a_cancelled_job_stops_and_the_engine_keeps_serving() {
    let mut prompts = wvs_prompts();
    prompts.extend(wvs_prompts());
    let cancel = CancelToken::new();
    let cancel_after_first_batch = cancel.clone();
    let (sender, progress) = mpsc::channel();
    let job = engine()
        .score_cancellable(prompts, cancel, move |update| {
            cancel_after_first_batch.cancel();
            sender.send(update.completed).unwrap();
        })
        .unwrap();
    let error = job.wait().unwrap_err();
    assert!(matches!(error, EngineError::Cancelled), "{error:?}");
    assert_eq!(progress.try_iter().collect::<Vec<_>>(), [2], "stopped before the second batch");
    let after = engine().score(wvs_prompts()[..1].to_vec(), |_| {}).unwrap().wait().unwrap();
    assert_eq!(after.scores.len(), 1);
}

#[test]
fn sampling_with_a_seed_repeats_byte_for_byte() {
    let prompt = GenerationPrompt {
        id: "Q1".into(),
        text: chatml(UNAWARE_SYSTEM, &answer_prompt(QUESTIONS[0].1, FOUR_OPTIONS)),
    };
    let params =
        SamplingParams { max_new_tokens: 12, temperature: 0.9, top_p: 0.95, seed: 42, ..SamplingParams::default() };
    let first = engine().generate(vec![prompt.clone()], params.clone(), |_| {}).unwrap().wait().unwrap();
    let second = engine().generate(vec![prompt], params, |_| {}).unwrap().wait().unwrap();
    assert_eq!(first.generations, second.generations);
    let generation = &first.generations[0];
    assert!(!generation.tokens.is_empty() && generation.tokens.len() <= 12);
}

#[test]
fn a_prompt_longer_than_the_context_is_refused_with_its_id() {
    let text = chatml(UNAWARE_SYSTEM, &"word ".repeat(9000));
    let prompt = ScorePrompt { id: "too-long".into(), text, choices: vec!["1".into(), "2".into()] };
    let error = engine().score(vec![prompt], |_| {}).unwrap().wait().unwrap_err();
    assert!(matches!(error, EngineError::PromptTooLong { context: 8192, .. }), "{error:?}");
    assert!(error.to_string().contains("too-long"), "{error}");
}

#[test]
fn option_codes_scoring_cannot_express_are_refused() {
    let score = |choices: &[&str]| {
        let mut prompt = wvs_prompts().remove(0);
        prompt.choices = choices.iter().map(|c| c.to_string()).collect();
        engine().score(vec![prompt], |_| {}).unwrap().wait().unwrap_err()
    };
    let error = score(&["1", "2", "100"]);
    assert!(matches!(error, EngineError::UnscorableOption { ref code, .. } if code == "100"), "{error:?}");
    assert!(error.to_string().contains("\"100\""), "{error}");
    assert!(matches!(score(&["1", "a"]), EngineError::UnscorableOption { .. }));
    assert!(matches!(score(&[]), EngineError::NoOptions { .. }));
    assert!(matches!(score(&["1", "1"]), EngineError::DuplicateOption { .. }));
}

#[test]
fn invalid_sampling_settings_are_refused() {
    let prompt = GenerationPrompt { id: "x".into(), text: "hi".into() };
    let params = SamplingParams { top_p: 0.0, ..SamplingParams::default() };
    let error = engine().generate(vec![prompt], params, |_| {}).unwrap_err();
    assert!(matches!(error, EngineError::InvalidSampling(_)), "{error:?}");
}
