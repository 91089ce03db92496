//! The fused CPU training pass: its loss and gradients against candle's autograd (f64 and f32,
//! llama and qwen2, grouped-query attention, with dropout, on all or some modules) and against
//! finite differences (f64); training through it lowers the loss and resumes to the same bits.

mod common;

use candle_core::{DType, Device, Tensor};
use common::tiny::{random_weights, tiny_config};
use common::training::{example, randomize_b, tiny_with};
use culturespa_engine::lora::{LoraAdapter, LoraSettings, TrainableAdapter};
use culturespa_engine::train::{answer_loss, fused};
use culturespa_engine::{train, Architecture, EngineError, LlamaModel, ModelConfig, TrainingExample, TrainingSettings};

/// Loss × scale and the gradient of every adapter matrix (A, B of each), as f64.
type Pass = (f64, Vec<Vec<f64>>);

fn flat(tensor: &Tensor) -> Vec<f64> {
    tensor.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

fn autograd_pass(
    model: &LlamaModel,
    adapter: &TrainableAdapter,
    batch: &[&TrainingExample],
    scale: f64,
    seed: Option<u64>,
) -> Pass {
    let adapted = model.with_adapter_and_dropout(&adapter.as_adapter(model.config().num_layers), seed).unwrap();
    let loss = (answer_loss(&adapted, batch).unwrap().0 * scale).unwrap();
    let store = loss.backward().unwrap();
    let gradients = adapter
        .vars
        .iter()
        .flat_map(|(_, _, a, b)| [a, b])
        .map(|var| store.get(var.as_tensor()).map(flat).unwrap_or_else(|| vec![0.0; var.elem_count()]))
        .collect();
    (flat(&loss)[0], gradients)
}

fn fused_pass(
    model: &LlamaModel,
    adapter: &TrainableAdapter,
    batch: &[&TrainingExample],
    scale: f64,
    seed: Option<u64>,
) -> Pass {
    let pass = fused::loss_and_gradients(model, adapter, batch, scale, seed).unwrap();
    (pass.loss, pass.gradients.iter().map(flat).collect())
}

fn examples() -> Vec<TrainingExample> {
    vec![example(1, 9, 3), example(2, 4, 1), example(3, 13, 2), example(4, 6, 4)]
}

#[test]
fn fused_gradients_equal_autograd_gradients() {
    let subset = LoraSettings {
        rank: 3,
        alpha: 5.0,
        dropout: 0.25,
        target_modules: ["q_proj", "v_proj", "o_proj", "down_proj"].map(String::from).to_vec(),
        use_rslora: false,
    };
    let all = LoraSettings { rank: 2, ..LoraSettings::default() };
    for architecture in [Architecture::Llama, Architecture::Qwen2] {
        let config = ModelConfig { architecture, ..tiny_config() };
        let weights = random_weights(&config);
        for (dtype, tolerance) in [(DType::F64, 1e-10), (DType::F32, 2e-4)] {
            let model = tiny_with(&weights, config.clone(), dtype);
            assert!(fused::supports(&model));
            for settings in [&all, &subset] {
                let adapter =
                    TrainableAdapter::init_in(model.config(), model.device(), settings.clone(), 7, dtype).unwrap();
                randomize_b(&adapter, 11);
                let data = examples();
                let batch: Vec<&TrainingExample> = data.iter().collect();
                let seed = Some(99);
                let (loss, gradients) = fused_pass(&model, &adapter, &batch, 0.1, seed);
                let (expected_loss, expected) = autograd_pass(&model, &adapter, &batch, 0.1, seed);
                let case = format!("{architecture:?} {dtype:?} rank {}", settings.rank);
                assert!(
                    (loss - expected_loss).abs() <= tolerance * expected_loss.abs(),
                    "{case}: {loss} vs {expected_loss}"
                );
                assert_eq!(gradients.len(), 2 * adapter.vars.len());
                let largest = expected.iter().flatten().fold(0.0f64, |m, g| m.max(g.abs()));
                assert!(largest > 1e-3, "{case}: the gradients are not trivially zero");
                for (index, (ours, theirs)) in gradients.iter().zip(&expected).enumerate() {
                    assert_eq!(ours.len(), theirs.len());
                    for (x, y) in ours.iter().zip(theirs) {
                        assert!((x - y).abs() <= tolerance * largest, "{case} matrix {index}: {x} vs {y}");
                    }
                }
            }
        }
    }
}

#[test]
fn fused_gradients_match_finite_differences() {
    let config = ModelConfig { architecture: Architecture::Qwen2, ..tiny_config() };
    let model = tiny_with(&random_weights(&config), config, DType::F64);
    let adapter = TrainableAdapter::init_in(
        model.config(),
        model.device(),
        LoraSettings { rank: 2, ..LoraSettings::default() },
        5,
        DType::F64,
    )
    .unwrap();
    randomize_b(&adapter, 3);
    let data = examples();
    let batch: Vec<&TrainingExample> = data.iter().collect();
    let (_, gradients) = fused_pass(&model, &adapter, &batch, 1.0, None);
    let epsilon = 1e-6;
    let mut checked = 0;
    for (var_index, (layer, module, a, b)) in adapter.vars.iter().enumerate() {
        for (which, var) in [(0, a), (1, b)] {
            let original = flat(var.as_tensor());
            for index in [0, original.len() / 3, original.len() - 1] {
                let nudged = |delta: f64| {
                    let mut values = original.clone();
                    values[index] += delta;
                    var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap()).unwrap();
                    fused_pass(&model, &adapter, &batch, 1.0, None).0
                };
                let numeric = (nudged(epsilon) - nudged(-epsilon)) / (2.0 * epsilon);
                var.set(&Tensor::from_vec(original.clone(), var.shape(), &Device::Cpu).unwrap()).unwrap();
                let analytic = gradients[2 * var_index + which][index];
                let tolerance = 1e-6 + 1e-5 * numeric.abs().max(analytic.abs());
                assert!(
                    (numeric - analytic).abs() <= tolerance,
                    "layer {layer} {module} {}[{index}]: analytic {analytic} vs numeric {numeric}",
                    ["A", "B"][which]
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * 7 * 2 * 3);
}

fn settings() -> TrainingSettings {
    TrainingSettings {
        learning_rate: 1e-2,
        batch_size: 4,
        micro_batch_size: 2,
        epochs: 6,
        checkpoint_every: 2,
        lora: LoraSettings { dropout: 0.1, ..LoraSettings::default() },
        ..TrainingSettings::default()
    }
}

fn mean_loss(model: &LlamaModel, adapter: Option<&LoraAdapter>, data: &[TrainingExample]) -> f64 {
    let model = match adapter {
        Some(adapter) => model.with_adapter(adapter).unwrap(),
        None => model.clone(),
    };
    let batch: Vec<&TrainingExample> = data.iter().collect();
    let (loss, tokens) = answer_loss(&model, &batch).unwrap();
    flat(&loss)[0] / tokens as f64
}

#[test]
fn training_through_the_fused_pass_lowers_the_loss_and_resumes_to_the_same_bits() {
    let weights = random_weights(&tiny_config());
    let mut model = tiny_with(&weights, tiny_config(), DType::F32);
    model.set_cpu_kernels(true);
    assert!(model.uses_cpu_kernels(), "the trainer takes the fused path");
    let data: Vec<TrainingExample> = (0..8).map(|i| example(i, 5 + i % 3, 1 + i % 2)).collect();
    let settings = settings();

    let whole = tempfile::tempdir().unwrap();
    let outcome = train(&model, &data, &settings, whole.path(), None, |_| {}, || false).unwrap();
    assert_eq!(outcome.state.step, 12);
    let adapter = LoraAdapter::load(whole.path(), &Device::Cpu).unwrap();
    let before = mean_loss(&model, None, &data);
    let after = mean_loss(&model, Some(&adapter), &data);
    assert!(after < 0.8 * before, "loss {before} → {after}");

    // The same training through autograd follows the same losses (float rounding apart).
    let mut generic = model.clone();
    generic.set_cpu_kernels(false);
    let reference = tempfile::tempdir().unwrap();
    let generic_outcome = train(&generic, &data, &settings, reference.path(), None, |_| {}, || false).unwrap();
    for ((step, ours), (_, theirs)) in outcome.state.losses.iter().zip(&generic_outcome.state.losses) {
        assert!((ours - theirs).abs() <= 1e-3 * theirs.abs(), "step {step}: {ours} vs {theirs}");
    }

    // Cancelled during step 6 (after the step-4 checkpoint), then resumed to the same bytes.
    let interrupted = tempfile::tempdir().unwrap();
    let steps = std::cell::Cell::new(0);
    let error = train(&model, &data, &settings, interrupted.path(), None, |p| steps.set(p.step), || steps.get() >= 5)
        .unwrap_err();
    assert!(matches!(error, EngineError::Cancelled));
    let resumed = train(&model, &data, &settings, interrupted.path(), None, |_| {}, || false).unwrap();
    assert_eq!(resumed.resumed_from, Some(4));
    let bytes = |dir: &std::path::Path| std::fs::read(dir.join("adapter_model.safetensors")).unwrap();
    assert_eq!(bytes(whole.path()), bytes(interrupted.path()));
}
