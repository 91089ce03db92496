//! Adapters on the default model: the engine holds several and answers with one merged or
//! unmerged (same distributions), and trains on its own thread; training on a small real SFT set
//! lowers the loss.

mod common;

use candle_core::{Device, Tensor};
use culturespa_engine::lora::{LoraAdapter, LoraSettings, TrainableAdapter};
use culturespa_engine::train::{answer_loss, prepare_example, SftRecord};
use culturespa_engine::{
    AdapterChoice, CancelToken, Engine, EngineOptions, OptionScores, ScorePrompt, TrainingExample, TrainingRequest,
    TrainingSettings,
};

use common::{answer_prompt, chatml, default_model, default_model_path, UNAWARE_SYSTEM};

const FOUR_OPTIONS: &str = "1.Very important 2.Rather important 3.Not very important 4.Not at all important";
const QUESTIONS: [&str; 8] = [
    "How important is family in your life?",
    "How important are friends in your life?",
    "How important is leisure time in your life?",
    "How important is politics in your life?",
    "How important is work in your life?",
    "How important is religion in your life?",
    "How important is tradition in your life?",
    "How important is science in your life?",
];

fn prompts() -> Vec<ScorePrompt> {
    QUESTIONS
        .iter()
        .enumerate()
        .map(|(index, question)| ScorePrompt {
            id: format!("Q{index}"),
            text: chatml(UNAWARE_SYSTEM, &answer_prompt(question, FOUR_OPTIONS)),
            choices: ["1", "2", "3", "4"].map(String::from).to_vec(),
        })
        .collect()
}

/// Records whose answers the model does not give on its own (it says 1 to almost everything).
fn records() -> Vec<SftRecord> {
    QUESTIONS
        .iter()
        .enumerate()
        .map(|(index, question)| SftRecord {
            id: format!("record {index}"),
            system: Some(UNAWARE_SYSTEM.to_string()),
            user: answer_prompt(question, FOUR_OPTIONS),
            answer: if index % 2 == 0 { "3" } else { "4" }.to_string(),
        })
        .collect()
}

fn score(engine: &Engine, adapter: Option<AdapterChoice>) -> Vec<OptionScores> {
    engine.score_with_adapter(prompts(), adapter, CancelToken::new(), |_| {}).unwrap().wait().unwrap().scores
}

fn max_difference(a: &[OptionScores], b: &[OptionScores]) -> f64 {
    a.iter().zip(b).flat_map(|(x, y)| x.probs.iter().zip(&y.probs).map(|(p, q)| (p - q).abs())).fold(0.0, f64::max)
}

#[test]
fn the_engine_answers_with_loaded_adapters_merged_or_not_and_trains_on_its_thread() {
    let loaded = default_model();
    let dir = tempfile::tempdir().unwrap();
    // A random adapter strong enough to move the answers.
    let trainable =
        TrainableAdapter::init(loaded.model.config(), loaded.model.device(), LoraSettings::default(), 5).unwrap();
    for (index, (_, _, _, b)) in trainable.vars.iter().enumerate() {
        let values = Tensor::randn(0f32, 0.02, b.shape(), &Device::Cpu).unwrap();
        b.set(&(values * if index % 2 == 0 { 1.0 } else { -1.0 }).unwrap()).unwrap();
    }
    trainable.snapshot(loaded.model.config().num_layers, None).unwrap().save(&dir.path().join("random")).unwrap();

    let engine = Engine::start(EngineOptions::new(default_model_path())).unwrap();
    let info = engine.load_adapter("random", dir.path().join("random")).unwrap();
    assert_eq!((info.rank, info.target_modules.len()), (8, 7));
    let base = score(&engine, None);
    let merged = score(&engine, Some(AdapterChoice { name: "random".into(), merged: true }));
    let unmerged = score(&engine, Some(AdapterChoice { name: "random".into(), merged: false }));
    assert!(max_difference(&base, &merged) > 1e-3, "the adapter must change the answers");
    assert!(max_difference(&merged, &unmerged) < 1e-4, "merged and unmerged adapters answer alike");
    assert_eq!(score(&engine, None), base, "the base model is untouched");
    let error = engine.score_with_adapter(
        prompts(),
        Some(AdapterChoice { name: "nope".into(), merged: true }),
        CancelToken::new(),
        |_| {},
    );
    let error = error.unwrap().wait().unwrap_err().to_string();
    assert!(error.contains("no adapter named \"nope\""), "{error}");

    // Training on the engine thread, with progress per optimizer step.
    let settings = TrainingSettings {
        learning_rate: 2e-3,
        batch_size: 4,
        micro_batch_size: 4,
        max_steps: Some(2),
        warmup_ratio: 0.0,
        ..TrainingSettings::default()
    };
    let out_dir = dir.path().join("trained");
    let (sender, steps) = std::sync::mpsc::channel();
    let request = TrainingRequest { records: records(), settings, out_dir: out_dir.clone() };
    let outcome =
        engine.train(request, CancelToken::new(), move |p| sender.send(p.step).unwrap()).unwrap().wait().unwrap();
    assert_eq!(steps.try_iter().collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(outcome.state.losses.len(), 2);
    engine.load_adapter("trained", &out_dir).unwrap();
    let trained = score(&engine, Some(AdapterChoice { name: "trained".into(), merged: true }));
    // Two steps on these records move probability towards their answers (3 and 4).
    let target_share = |scores: &[OptionScores]| -> f64 {
        let targets = records().into_iter().map(|record| record.answer.parse::<usize>().unwrap() - 1);
        scores.iter().zip(targets).map(|(scores, target)| scores.probs[target]).sum::<f64>() / scores.len() as f64
    };
    let (before, after) = (target_share(&base), target_share(&trained));
    assert!(after > before, "the trained answers' mean probability went from {before:.4} to {after:.4}");
}

#[test]
fn training_lowers_the_loss_on_a_small_real_sft_set() {
    let loaded = default_model();
    let template = loaded.chat_template().unwrap();
    let context = loaded.model.config().context_length;
    let examples: Vec<TrainingExample> =
        records().iter().map(|r| prepare_example(r, template, &loaded.tokenizer, context).unwrap()).collect();
    // The answer and the end of turn carry the loss: "3" then "<|im_end|>".
    assert_eq!(examples[0].target_tokens.len(), 2);
    assert_eq!(loaded.tokenizer.decode(&examples[0].target_tokens, false).unwrap(), "3<|im_end|>");
    let mean_loss = |adapter: Option<&LoraAdapter>| {
        let model = adapter.map_or_else(|| loaded.model.clone(), |a| loaded.model.with_adapter(a).unwrap());
        let batch: Vec<&TrainingExample> = examples.iter().collect();
        let (loss, tokens) = answer_loss(&model, &batch).unwrap();
        f64::from(loss.to_scalar::<f32>().unwrap()) / tokens as f64
    };
    let settings = TrainingSettings {
        learning_rate: 1e-3,
        batch_size: 4,
        micro_batch_size: 4,
        epochs: 3,
        ..TrainingSettings::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let outcome =
        culturespa_engine::train(&loaded.model, &examples, &settings, dir.path(), None, |_| {}, || false).unwrap();
    assert_eq!(outcome.state.step, 6);
    let adapter = LoraAdapter::load(dir.path(), &Device::Cpu).unwrap();
    let (before, after) = (mean_loss(None), mean_loss(Some(&adapter)));
    assert!(after < 0.7 * before, "mean answer loss {before:.3} → {after:.3}");
}
