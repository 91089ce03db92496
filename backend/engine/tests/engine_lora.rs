//! LoRA: gradients against finite differences, the identity at init, merged = unmerged, PEFT
//! files round-trip, training lowers the loss and resumes to the same bits, bad input is named.

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarBuilder;
use common::tiny::{random_weights, tiny_config, VOCAB};
use common::training::{example, randomize_b, tiny, tiny_from};
use culturespa_engine::lora::{peft_tensor_name, LoraAdapter, LoraSettings, TrainableAdapter};
use culturespa_engine::train::{answer_loss, read_sft_file, AdamW, TRAINER_STATE_FILE};
use culturespa_engine::{train, EngineError, LlamaModel, SequenceInput, TrainingExample, TrainingSettings};

fn last_token_logits(model: &LlamaModel, tokens: &[u32]) -> Vec<f32> {
    let output = model.forward(None, &[SequenceInput { tokens, branch_tokens: &[] }], false).unwrap();
    model.logits(&output.hidden).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn gradients_match_finite_differences() {
    let model = tiny(DType::F64);
    let settings = LoraSettings { rank: 2, ..LoraSettings::default() };
    let adapter = TrainableAdapter::init_in(model.config(), model.device(), settings, 7, DType::F64).unwrap();
    randomize_b(&adapter, 11);
    let examples = [example(1, 6, 3), example(2, 4, 2)];
    let batch: Vec<&TrainingExample> = examples.iter().collect();
    let loss_of = |adapter: &TrainableAdapter| -> (Tensor, f64) {
        let adapted = model.with_adapter(&adapter.as_adapter(2)).unwrap();
        let (loss, tokens) = answer_loss(&adapted, &batch).unwrap();
        assert_eq!(tokens, 5);
        let value = loss.to_scalar::<f64>().unwrap();
        (loss, value)
    };
    let (loss, _) = loss_of(&adapter);
    let gradients = loss.backward().unwrap();
    let epsilon = 1e-6;
    let mut checked = 0;
    // Every module of both layers, A and B, a few entries each.
    for (layer, module, a, b) in &adapter.vars {
        for (name, var) in [("A", a), ("B", b)] {
            let gradient = gradients.get(var.as_tensor()).expect("a gradient for every adapter matrix");
            let gradient: Vec<f64> = gradient.flatten_all().unwrap().to_vec1().unwrap();
            let original: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            for index in [0, original.len() / 2, original.len() - 1] {
                let nudged = |delta: f64| {
                    let mut values = original.clone();
                    values[index] += delta;
                    var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap()).unwrap();
                    loss_of(&adapter).1
                };
                let numeric = (nudged(epsilon) - nudged(-epsilon)) / (2.0 * epsilon);
                var.set(&Tensor::from_vec(original.clone(), var.shape(), &Device::Cpu).unwrap()).unwrap();
                let analytic = gradient[index];
                let tolerance = 1e-6 + 1e-5 * numeric.abs().max(analytic.abs());
                assert!(
                    (numeric - analytic).abs() <= tolerance,
                    "layer {layer} {module} lora_{name}[{index}]: analytic {analytic} vs numeric {numeric}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * 7 * 2 * 3);
}

/// On the CPU in f32 the frozen projections run a custom op with its own backward pass; its
/// gradients match the generic path's (checked against finite differences above) in f64.
#[test]
fn the_f32_frozen_projection_backward_matches_the_f64_gradients() {
    let weights = random_weights(&tiny_config());
    let (model64, model32) = (tiny_from(&weights, DType::F64), tiny_from(&weights, DType::F32));
    let adapter64 = TrainableAdapter::init_in(
        model64.config(),
        model64.device(),
        LoraSettings { rank: 2, ..LoraSettings::default() },
        7,
        DType::F64,
    )
    .unwrap();
    randomize_b(&adapter64, 11);
    let adapter32 = TrainableAdapter::from_adapter(&adapter64.snapshot(2, None).unwrap()).unwrap();
    let examples = [example(1, 6, 3), example(2, 4, 2)];
    let batch: Vec<&TrainingExample> = examples.iter().collect();
    let gradients = |model: &LlamaModel, adapter: &TrainableAdapter| {
        let adapted = model.with_adapter(&adapter.as_adapter(2)).unwrap();
        let store = answer_loss(&adapted, &batch).unwrap().0.backward().unwrap();
        adapter
            .vars
            .iter()
            .flat_map(|(_, _, a, b)| [a, b])
            .map(|var| {
                store
                    .get(var.as_tensor())
                    .unwrap()
                    .to_dtype(DType::F64)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    let (exact, frozen) = (gradients(&model64, &adapter64), gradients(&model32, &adapter32));
    let scale = exact.iter().flatten().fold(0.0f64, |m, g| m.max(g.abs()));
    for (index, (e, f)) in exact.iter().zip(&frozen).enumerate() {
        for (x, y) in e.iter().zip(f) {
            assert!((x - y).abs() <= 1e-4 * scale, "matrix {index}: {x} vs {y} (largest gradient {scale})");
        }
    }
}

#[test]
fn a_fresh_adapter_leaves_the_model_unchanged_and_training_ops_match_inference_ops() {
    let model = tiny(DType::F32);
    let adapter = TrainableAdapter::init(model.config(), model.device(), LoraSettings::default(), 3).unwrap();
    let tokens: Vec<u32> = (1..20).collect();
    let base = last_token_logits(&model, &tokens);
    let adapted = last_token_logits(&model.with_adapter(&adapter.as_adapter(2)).unwrap(), &tokens);
    assert!(max_difference(&base, &adapted) < 1e-5, "B = 0 must give the base model");

    // The differentiable forward (composed rms-norm, rope, softmax) equals the fused one.
    let hidden = model.forward_rows(&[&tokens], &[vec![tokens.len() - 1]]).unwrap();
    let training = model.logits(&hidden).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(max_difference(&base, &training) < 1e-4);
}

#[test]
fn merged_and_unmerged_adapters_give_the_same_logits() {
    let model = tiny(DType::F32);
    let adapter = TrainableAdapter::init(model.config(), model.device(), LoraSettings::default(), 5).unwrap();
    randomize_b(&adapter, 13);
    let adapter = adapter.snapshot(2, None).unwrap();
    let tokens: Vec<u32> = (3..30).collect();
    let base = last_token_logits(&model, &tokens);
    let unmerged = last_token_logits(&model.with_adapter(&adapter).unwrap(), &tokens);
    let mut merged_model = model.merged_with(&adapter).unwrap();
    let merged = last_token_logits(&merged_model, &tokens);
    assert!(
        max_difference(&base, &unmerged) > 1e-2,
        "the adapter must change the logits for this test to mean anything"
    );
    assert!(max_difference(&merged, &unmerged) < 1e-4, "merged {merged:?} vs unmerged {unmerged:?}");
    // The merged weights also run through the fused CPU kernels.
    merged_model.set_cpu_kernels(true);
    let fused = last_token_logits(&merged_model, &tokens);
    assert!(max_difference(&fused, &unmerged) < 1e-4);
}

#[test]
fn adapters_round_trip_through_peft_files() {
    let model = tiny(DType::F32);
    let trainable = TrainableAdapter::init(model.config(), model.device(), LoraSettings::default(), 9).unwrap();
    randomize_b(&trainable, 17);
    let adapter = trainable.snapshot(2, Some("tiny-llama".into())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    adapter.save(dir.path()).unwrap();

    let tensors = candle_core::safetensors::load(dir.path().join("adapter_model.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(tensors.len(), 2 * 7 * 2);
    let q_a = &tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"];
    assert_eq!(q_a.dims(), &[8, 32]);
    assert_eq!(tensors["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"].dims(), &[32, 8]);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["r"], 8);
    assert_eq!(config["lora_alpha"], 16.0);
    assert_eq!(config["task_type"], "CAUSAL_LM");
    assert_eq!(config["base_model_name_or_path"], "tiny-llama");

    let loaded = LoraAdapter::load(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(loaded.settings, adapter.settings);
    let tokens: Vec<u32> = (5..25).collect();
    let before = last_token_logits(&model.with_adapter(&adapter).unwrap(), &tokens);
    let after = last_token_logits(&model.with_adapter(&loaded).unwrap(), &tokens);
    assert_eq!(before, after);
}

/// An adapter folder as PEFT 0.13 writes it (its config carries many fields we do not use;
/// tensor names as `save_pretrained` writes them), with only q_proj and v_proj targeted.
#[test]
fn adapters_written_by_peft_load_and_apply() {
    let model = tiny(DType::F32);
    let dir = tempfile::tempdir().unwrap();
    let config = r#"{
  "alpha_pattern": {}, "auto_mapping": null, "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct",
  "bias": "none", "eva_config": null, "exclude_modules": null, "fan_in_fan_out": false, "inference_mode": true,
  "init_lora_weights": true, "layer_replication": null, "layers_pattern": null, "layers_to_transform": null,
  "loftq_config": {}, "lora_alpha": 32, "lora_bias": false, "lora_dropout": 0.05, "megatron_config": null,
  "megatron_core": "megatron.core", "modules_to_save": null, "peft_type": "LORA", "r": 4, "rank_pattern": {},
  "revision": null, "target_modules": ["v_proj", "q_proj"], "task_type": "CAUSAL_LM", "use_dora": false,
  "use_rslora": false
}"#;
    std::fs::write(dir.path().join("adapter_config.json"), config).unwrap();
    let mut tensors = HashMap::new();
    for layer in 0..2 {
        for (module, out) in [("q_proj", 32), ("v_proj", 16)] {
            let a = Tensor::full(0.01f32, (4, 32), &Device::Cpu).unwrap();
            let b = Tensor::full(0.02f32, (out, 4), &Device::Cpu).unwrap();
            tensors.insert(peft_tensor_name(layer, module, 'A'), a);
            tensors.insert(peft_tensor_name(layer, module, 'B'), b);
        }
    }
    candle_core::safetensors::save(&tensors, dir.path().join("adapter_model.safetensors")).unwrap();
    let adapter = LoraAdapter::load(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(adapter.settings.rank, 4);
    assert_eq!(adapter.settings.scale(), 8.0);
    assert_eq!(adapter.layers[1].len(), 2);
    let tokens: Vec<u32> = (1..12).collect();
    let unmerged = last_token_logits(&model.with_adapter(&adapter).unwrap(), &tokens);
    let merged = last_token_logits(&model.merged_with(&adapter).unwrap(), &tokens);
    assert!(max_difference(&unmerged, &last_token_logits(&model, &tokens)) > 1e-3);
    assert!(max_difference(&unmerged, &merged) < 1e-4);
}

#[test]
fn adapters_that_do_not_fit_are_refused_with_the_shapes() {
    let model = tiny(DType::F32);
    let other = {
        let mut config = tiny_config();
        config.hidden_size = 48;
        config.head_dim = 12;
        let varmap = random_weights(&config);
        LlamaModel::new(config, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu)).unwrap()
    };
    let adapter = TrainableAdapter::init(other.config(), other.device(), LoraSettings::default(), 1)
        .unwrap()
        .snapshot(2, None)
        .unwrap();
    let error = model.with_adapter(&adapter).unwrap_err().to_string();
    assert!(error.contains("layer 0 q_proj") && error.contains("[8, 48]") && error.contains("[8, 32]"), "{error}");
    assert!(model.merged_with(&adapter).is_err());

    let dir = tempfile::tempdir().unwrap();
    let good = TrainableAdapter::init(model.config(), model.device(), LoraSettings::default(), 1)
        .unwrap()
        .snapshot(2, None)
        .unwrap();
    good.save(dir.path()).unwrap();
    // A rank in the config that the tensors do not have.
    let config_path = dir.path().join("adapter_config.json");
    let text = std::fs::read_to_string(&config_path).unwrap().replace("\"r\": 8", "\"r\": 4");
    std::fs::write(&config_path, text).unwrap();
    let loaded = LoraAdapter::load(dir.path(), &Device::Cpu).unwrap();
    let error = loaded.check_fits(model.config(), Some(dir.path())).unwrap_err().to_string();
    assert!(error.contains("rank 4") && error.contains(&dir.path().display().to_string()), "{error}");
    // A missing half.
    let mut tensors =
        candle_core::safetensors::load(dir.path().join("adapter_model.safetensors"), &Device::Cpu).unwrap();
    tensors.remove("base_model.model.model.layers.1.mlp.up_proj.lora_B.weight");
    candle_core::safetensors::save(&tensors, dir.path().join("adapter_model.safetensors")).unwrap();
    let error = LoraAdapter::load(dir.path(), &Device::Cpu).unwrap_err().to_string();
    assert!(error.contains("layer 1 up_proj lacks its lora_A or lora_B"), "{error}");
    // Not a LoRA adapter.
    std::fs::write(&config_path, r#"{"peft_type": "PREFIX_TUNING", "r": 8, "lora_alpha": 16, "target_modules": []}"#)
        .unwrap();
    let error = LoraAdapter::load(dir.path(), &Device::Cpu).unwrap_err().to_string();
    assert!(error.contains("PREFIX_TUNING"), "{error}");
}

#[test]
fn our_adamw_takes_the_same_steps_as_candles() {
    use candle_nn::Optimizer;
    let start = Tensor::new(&[[0.5f32, -1.0, 2.0], [0.1, 0.2, -0.3]], &Device::Cpu).unwrap();
    let ours = Var::from_tensor(&start).unwrap();
    let theirs = Var::from_tensor(&start).unwrap();
    let params = candle_nn::ParamsAdamW { lr: 0.01, weight_decay: 0.1, ..Default::default() };
    let mut candle_adamw = candle_nn::AdamW::new(vec![theirs.clone()], params).unwrap();
    let mut our_adamw = AdamW::new(&[ours.as_tensor().clone()], 0.1).unwrap();
    for step in 0..4 {
        let target = Tensor::new(&[[1.0f32, 0.0, -1.0], [step as f32, 1.0, 0.5]], &Device::Cpu).unwrap();
        let loss = |var: &Var| (var.as_tensor() - &target).unwrap().sqr().unwrap().sum_all().unwrap();
        let gradient = loss(&ours).backward().unwrap().get(ours.as_tensor()).unwrap().clone();
        our_adamw.update(std::slice::from_ref(&ours), &[gradient], 0.01).unwrap();
        candle_adamw.backward_step(&loss(&theirs)).unwrap();
    }
    let a: Vec<f32> = ours.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = theirs.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    assert!(max_difference(&a, &b) < 1e-6, "{a:?} vs {b:?}");
    assert_ne!(a, start.flatten_all().unwrap().to_vec1::<f32>().unwrap());
}

fn small_settings() -> TrainingSettings {
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

fn examples() -> Vec<TrainingExample> {
    (0..8).map(|i| example(i, 5 + i % 3, 1 + i % 2)).collect()
}

fn mean_loss(model: &LlamaModel, adapter: Option<&LoraAdapter>, examples: &[TrainingExample]) -> f64 {
    let model = match adapter {
        Some(adapter) => model.with_adapter(adapter).unwrap(),
        None => model.clone(),
    };
    let batch: Vec<&TrainingExample> = examples.iter().collect();
    let (loss, tokens) = answer_loss(&model, &batch).unwrap();
    loss.to_scalar::<f32>().unwrap() as f64 / tokens as f64
}

#[test]
fn training_lowers_the_loss_and_a_killed_training_resumes_to_the_same_bits() {
    let model = tiny(DType::F32);
    let data = examples();
    let settings = small_settings();
    assert_eq!(settings.total_steps(data.len()), 12);

    let whole = tempfile::tempdir().unwrap();
    let mut losses = Vec::new();
    let outcome = train(&model, &data, &settings, whole.path(), None, |p| losses.push(p.loss), || false).unwrap();
    assert_eq!(outcome.state.step, 12);
    assert!(outcome.state.complete);
    assert_eq!(losses.len(), 12);
    let adapter = LoraAdapter::load(whole.path(), &Device::Cpu).unwrap();
    let before = mean_loss(&model, None, &data);
    let after = mean_loss(&model, Some(&adapter), &data);
    assert!(after < 0.8 * before, "loss {before} → {after}");
    assert!(!whole.path().join("checkpoints").exists(), "checkpoints are removed once the adapter is written");

    // Cancelled during step 6 (after the step-4 checkpoint), then resumed.
    let interrupted = tempfile::tempdir().unwrap();
    let steps = std::cell::Cell::new(0);
    let error = train(&model, &data, &settings, interrupted.path(), None, |p| steps.set(p.step), || steps.get() >= 5)
        .unwrap_err();
    assert!(matches!(error, EngineError::Cancelled));
    assert!(interrupted.path().join("checkpoints/step-4").exists());
    assert!(!interrupted.path().join("adapter_model.safetensors").exists(), "nothing final is written early");
    let resumed = train(&model, &data, &settings, interrupted.path(), None, |_| {}, || false).unwrap();
    assert_eq!(resumed.resumed_from, Some(4));
    assert_eq!(resumed.state.losses, outcome.state.losses);
    let bytes = |dir: &std::path::Path| std::fs::read(dir.join("adapter_model.safetensors")).unwrap();
    assert_eq!(bytes(whole.path()), bytes(interrupted.path()), "resumed training gives the same adapter bytes");

    // A finished folder is not trained again; other settings on a checkpoint are refused.
    let again = train(&model, &data, &settings, whole.path(), None, |_| panic!("no step"), || false).unwrap();
    assert_eq!(again.state.step, 12);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(whole.path().join(TRAINER_STATE_FILE)).unwrap()).unwrap();
    assert_eq!(state["losses"].as_array().unwrap().len(), 12);

    let other = tempfile::tempdir().unwrap();
    steps.set(0);
    let _ = train(&model, &data, &settings, other.path(), None, |p| steps.set(p.step), || steps.get() >= 5);
    let changed = TrainingSettings { learning_rate: 5e-3, ..settings.clone() };
    let error = train(&model, &data, &changed, other.path(), None, |_| {}, || false).unwrap_err().to_string();
    assert!(error.contains("other settings or data"), "{error}");
}

#[test]
fn bad_training_input_is_named() {
    let model = tiny(DType::F32);
    let dir = tempfile::tempdir().unwrap();
    let error = train(&model, &[], &TrainingSettings::default(), dir.path(), None, |_| {}, || false).unwrap_err();
    assert!(error.to_string().contains("training set is empty"), "{error}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing written");

    let bad =
        TrainingSettings { lora: LoraSettings { rank: 0, ..LoraSettings::default() }, ..TrainingSettings::default() };
    assert!(train(&model, &examples(), &bad, dir.path(), None, |_| {}, || false)
        .unwrap_err()
        .to_string()
        .contains("rank"));

    let file = dir.path().join("sft.jsonl");
    std::fs::write(
        &file,
        "{\"instruction\": \"q\", \"input\": \"\", \"output\": \"1\", \"system\": \"s\"}\n{\"instruction\": \"q2\", \"output\": 3\n",
    )
    .unwrap();
    let error = read_sft_file(&file).unwrap_err().to_string();
    assert!(error.contains("sft.jsonl:2"), "{error}");

    std::fs::write(&file, "{\"instruction\": \"q\"}\n").unwrap();
    let error = read_sft_file(&file).unwrap_err().to_string();
    assert!(error.contains("sft.jsonl:1") && error.contains("output"), "{error}");

    std::fs::write(&file, "\n\n").unwrap();
    assert!(read_sft_file(&file).unwrap_err().to_string().contains("no training records"));

    // LLaMA-Factory's JSON arrays and `messages` records both read.
    std::fs::write(
        &file,
        r#"[{"instruction": "a", "input": "b", "output": "2"},
            {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "4"}]}]"#,
    )
    .unwrap();
    let records = read_sft_file(&file).unwrap();
    assert_eq!(records[0].user, "a\nb");
    assert_eq!(records[0].system, None);
    assert_eq!(records[1].system.as_deref(), Some("s"));
    assert_eq!(records[1].answer, "4");
}

#[test]
fn the_probe_perplexity_is_the_exponential_of_the_mean_next_token_loss() {
    use culturespa_engine::probe::{perplexity_of_tokens, PERPLEXITY_WINDOW};
    let model = tiny(DType::F32);
    // Shorter than a window: one pass, every token after the first predicted.
    let tokens: Vec<u32> = (0..40).map(|i| (i * 7 % 97 + 1) as u32).collect();
    assert!(tokens.len() < PERPLEXITY_WINDOW);
    let (perplexity, predicted) = perplexity_of_tokens(&model, &tokens).unwrap();
    assert_eq!(predicted, 39);
    // Independently: the inference forward pass over each prefix, next-token log-probabilities.
    let mut nll = 0.0;
    for end in 1..tokens.len() {
        let logits = last_token_logits(&model, &tokens[..end]);
        let log_sum: f64 = logits.iter().map(|&l| f64::from(l).exp()).sum::<f64>().ln();
        nll += log_sum - f64::from(logits[tokens[end] as usize]);
    }
    let expected = (nll / 39.0).exp();
    assert!((perplexity - expected).abs() < 1e-3 * expected, "{perplexity} vs {expected}");
    // A uniform guess over the vocabulary would give VOCAB; a random model is near it, not far off.
    assert!(perplexity > 1.0 && perplexity < 10.0 * VOCAB as f64, "{perplexity}");
}
