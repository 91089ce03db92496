//! A tiny random llama / Qwen2 written as a GGUF file (q/k rows permuted the way llama.cpp's
//! converter does) and as a Hugging Face folder loads back to the same function, with a working
//! tokenizer and chat template; a qwen2-shaped GGUF in the k-quant types of the catalogue's Qwen
//! models loads to the function of its dequantized weights.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use common::tiny::{random_weights, tiny_config, CONTEXT};
use culturespa_engine::batch::{BatchLimits, PrefixCache};
use culturespa_engine::{
    load_model, Architecture, DeviceKind, LoadedModel, ModelConfig, ScorePrompt, Scorer, SequenceInput,
};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

const CHATML_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
const SPECIAL_TOKENS: [&str; 2] = ["<|im_start|>", "<|im_end|>"];
/// Room for the two special tokens, the 256 byte-level symbols and one merge.
const VOCAB: usize = 300;

fn config(architecture: Architecture) -> ModelConfig {
    ModelConfig { architecture, vocab_size: VOCAB, ..tiny_config() }
}

/// Vocabulary in id order: special tokens, byte-level symbols, one merged token; and its merge.
fn vocabulary() -> (Vec<String>, Vec<(String, String)>) {
    let mut symbols: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    symbols.sort_unstable();
    let mut tokens: Vec<String> = SPECIAL_TOKENS.iter().map(|t| t.to_string()).collect();
    tokens.extend(symbols.iter().map(|c| c.to_string()));
    tokens.push("ab".into());
    (tokens, vec![("a".into(), "b".into())])
}

fn weights_by_name(weights: &VarMap) -> HashMap<String, Tensor> {
    let data = weights.data().lock().unwrap();
    data.iter().map(|(name, var)| (name.clone(), var.as_tensor().clone())).collect()
}

fn write_hugging_face_folder(dir: &Path, config: &ModelConfig, weights: &VarMap) {
    let model_type = match config.architecture {
        Architecture::Llama => "llama",
        Architecture::Qwen2 => "qwen2",
    };
    let config_json = serde_json::json!({
        "model_type": model_type,
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads,
        "rms_norm_eps": config.rms_norm_eps,
        "rope_theta": config.rope_theta,
        "max_position_embeddings": config.context_length,
        "tie_word_embeddings": false,
    });
    std::fs::write(dir.join("config.json"), config_json.to_string()).unwrap();
    candle_core::safetensors::save(&weights_by_name(weights), dir.join("model.safetensors")).unwrap();

    let (tokens, merges) = vocabulary();
    let vocab: tokenizers::models::bpe::Vocab =
        tokens.iter().enumerate().map(|(id, token)| (token.clone(), id as u32)).collect();
    let bpe = BPE::builder().vocab_and_merges(vocab, merges).build().unwrap();
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    tokenizer.add_special_tokens(SPECIAL_TOKENS.map(|t| AddedToken::from(t, true))).unwrap();
    tokenizer.save(dir.join("tokenizer.json"), false).unwrap();
    // The llama folder keeps its template in chat_template.jinja, as newer exports do; the qwen2
    // one in tokenizer_config.json. Both load it (check_round_trip renders it).
    let mut tokenizer_config = serde_json::json!({"eos_token": {"content": "<|im_end|>", "special": true}});
    match config.architecture {
        Architecture::Llama => std::fs::write(dir.join("chat_template.jinja"), CHATML_TEMPLATE).unwrap(),
        Architecture::Qwen2 => tokenizer_config["chat_template"] = CHATML_TEMPLATE.into(),
    }
    std::fs::write(dir.join("tokenizer_config.json"), tokenizer_config.to_string()).unwrap();
}

/// llama.cpp's converter permutes llama's q/k rows for its interleaved RoPE.
fn permute_for_gguf(weight: &Tensor, heads: usize) -> Tensor {
    let (rows, columns) = weight.dims2().unwrap();
    let head_dim = rows / heads;
    weight
        .reshape((heads, 2, head_dim / 2, columns))
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape((rows, columns))
        .unwrap()
}

/// Writes `weights` as a GGUF file; `dtype_of` picks each tensor's type from its GGUF name (norms
/// and biases stay F32 whatever it says: GGUF quantizes matrices only).
fn write_gguf(path: &Path, config: &ModelConfig, weights: &VarMap, dtype_of: impl Fn(&str) -> GgmlDType) {
    let arch = match config.architecture {
        Architecture::Llama => "llama",
        Architecture::Qwen2 => "qwen2",
    };
    let by_name = weights_by_name(weights);
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut add = |gguf_name: String, tensor: &Tensor| {
        let dtype = if tensor.rank() == 2 { dtype_of(&gguf_name) } else { GgmlDType::F32 };
        tensors.push((gguf_name, QTensor::quantize(tensor, dtype).unwrap()));
    };
    add("token_embd.weight".into(), &by_name["model.embed_tokens.weight"]);
    add("output_norm.weight".into(), &by_name["model.norm.weight"]);
    add("output.weight".into(), &by_name["lm_head.weight"]);
    let permute = config.architecture == Architecture::Llama;
    for layer in 0..config.num_layers {
        let hf = |suffix: &str| &by_name[&format!("model.layers.{layer}.{suffix}")];
        let gguf = |suffix: &str| format!("blk.{layer}.{suffix}");
        add(gguf("attn_norm.weight"), hf("input_layernorm.weight"));
        add(gguf("ffn_norm.weight"), hf("post_attention_layernorm.weight"));
        let (q, k) = (hf("self_attn.q_proj.weight"), hf("self_attn.k_proj.weight"));
        if permute {
            add(gguf("attn_q.weight"), &permute_for_gguf(q, config.num_heads));
            add(gguf("attn_k.weight"), &permute_for_gguf(k, config.num_kv_heads));
        } else {
            add(gguf("attn_q.weight"), q);
            add(gguf("attn_k.weight"), k);
            add(gguf("attn_q.bias"), hf("self_attn.q_proj.bias"));
            add(gguf("attn_k.bias"), hf("self_attn.k_proj.bias"));
            add(gguf("attn_v.bias"), hf("self_attn.v_proj.bias"));
        }
        add(gguf("attn_v.weight"), hf("self_attn.v_proj.weight"));
        add(gguf("attn_output.weight"), hf("self_attn.o_proj.weight"));
        add(gguf("ffn_gate.weight"), hf("mlp.gate_proj.weight"));
        add(gguf("ffn_up.weight"), hf("mlp.up_proj.weight"));
        add(gguf("ffn_down.weight"), hf("mlp.down_proj.weight"));
    }

    let (tokens, merges) = vocabulary();
    let strings = |items: Vec<String>| Value::Array(items.into_iter().map(Value::String).collect());
    let token_types =
        Value::Array((0..tokens.len()).map(|id| Value::I32(if id < SPECIAL_TOKENS.len() { 3 } else { 1 })).collect());
    let key = |suffix: &str| format!("{arch}.{suffix}");
    let metadata: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.into())),
        (key("embedding_length"), Value::U32(config.hidden_size as u32)),
        (key("feed_forward_length"), Value::U32(config.intermediate_size as u32)),
        (key("block_count"), Value::U32(config.num_layers as u32)),
        (key("attention.head_count"), Value::U32(config.num_heads as u32)),
        (key("attention.head_count_kv"), Value::U32(config.num_kv_heads as u32)),
        (key("attention.layer_norm_rms_epsilon"), Value::F32(config.rms_norm_eps as f32)),
        (key("rope.freq_base"), Value::F32(config.rope_theta as f32)),
        (key("context_length"), Value::U32(config.context_length as u32)),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("default".into())),
        ("tokenizer.ggml.tokens".into(), strings(tokens)),
        ("tokenizer.ggml.token_type".into(), token_types),
        ("tokenizer.ggml.merges".into(), strings(merges.into_iter().map(|(a, b)| format!("{a} {b}")).collect())),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(1)),
        ("tokenizer.chat_template".into(), Value::String(CHATML_TEMPLATE.into())),
    ];
    let metadata_refs: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &metadata_refs, &tensor_refs).unwrap();
}

fn last_logits(loaded: &LoadedModel, tokens: &[u32]) -> Vec<f32> {
    let model = &loaded.model;
    let output = model.forward(None, &[SequenceInput { tokens, branch_tokens: &[] }], false).unwrap();
    model.logits(&output.hidden).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap()
}

fn reference_logits(config: &ModelConfig, weights: &VarMap, tokens: &[u32]) -> Vec<f32> {
    let builder = candle_nn::VarBuilder::from_varmap(weights, candle_core::DType::F32, &Device::Cpu);
    let model = culturespa_engine::LlamaModel::new(config.clone(), builder).unwrap();
    let output = model.forward(None, &[SequenceInput { tokens, branch_tokens: &[] }], false).unwrap();
    model.logits(&output.hidden).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap()
}

/// Loads both formats of `architecture` and checks them against the in-memory model.
fn check_round_trip(architecture: Architecture) {
    let config = config(architecture);
    let weights = random_weights(&config);
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("hf");
    std::fs::create_dir(&folder).unwrap();
    write_hugging_face_folder(&folder, &config, &weights);
    let gguf_path = dir.path().join("tiny.gguf");
    write_gguf(&gguf_path, &config, &weights, |_| GgmlDType::F32);

    let text = "<|im_start|>user\nPick 1 or 2: ab 12<|im_end|>\n<|im_start|>assistant\n";
    for path in [folder.as_path(), gguf_path.as_path()] {
        let loaded = load_model(path, DeviceKind::Cpu).unwrap();
        assert_eq!(loaded.model.config().architecture, architecture);
        assert_eq!(loaded.model.config().context_length, CONTEXT);
        let tokens = loaded.tokenizer.encode(text).unwrap();
        assert_eq!(tokens[0], 0, "<|im_start|> is special: {path:?}");
        let merged = loaded.tokenizer.token_id("ab").unwrap();
        assert!(tokens.contains(&merged), "the merge applies: {tokens:?}");
        assert_eq!(loaded.tokenizer.decode(&tokens, false).unwrap(), text);
        let expected = reference_logits(&config, &weights, &tokens);
        let actual = last_logits(&loaded, &tokens);
        let worst = expected.iter().zip(&actual).map(|(e, a)| (e - a).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "{path:?}: largest logit difference {worst}");

        let rendered = loaded.chat_template().unwrap().render_exchange("S", "U").unwrap();
        assert_eq!(rendered, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n");
        let scorer = Scorer::new(&loaded.model, &loaded.tokenizer, BatchLimits::default()).unwrap();
        let prompt = ScorePrompt { id: "p".into(), text: rendered, choices: vec!["1".into(), "2".into(), "10".into()] };
        let prepared = scorer.prepare(&loaded.tokenizer, CONTEXT, &prompt).unwrap();
        let (scores, _) = scorer.score_batch(&loaded.model, &mut PrefixCache::default(), &[prepared], 0).unwrap();
        assert!((scores[0].probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
}

#[test]
fn a_llama_gguf_and_folder_load_to_the_same_model() {
    check_round_trip(Architecture::Llama);
}

#[test]
fn a_qwen2_gguf_and_folder_load_to_the_same_model() {
    check_round_trip(Architecture::Qwen2);
}

/// The types of the catalogue's Qwen GGUFs (Q4_K_M: Q4_K with Q6_K for `attn_v`/`ffn_down`; the
/// 0.5B also holds Q5_0 and Q8_0), one per kind of tensor.
fn k_quant_type(gguf_name: &str) -> GgmlDType {
    match gguf_name.rsplit_once('.').map_or(gguf_name, |(stem, _)| stem).rsplit('.').next().unwrap() {
        "token_embd" => GgmlDType::Q8_0,
        "output" => GgmlDType::Q6K,
        "attn_q" | "attn_k" | "ffn_gate" => GgmlDType::Q4K,
        "attn_v" | "ffn_down" => GgmlDType::Q6K,
        "attn_output" => GgmlDType::Q5K,
        "ffn_up" => GgmlDType::Q5_0,
        other => panic!("no type for {other}"),
    }
}

#[test]
fn a_qwen2_gguf_with_k_quant_tensors_loads_to_its_dequantized_weights() {
    // k-quants pack 256 values a block along a row: every matrix here has rows of 256 or 512.
    let config = ModelConfig {
        architecture: Architecture::Qwen2,
        vocab_size: VOCAB,
        hidden_size: 256,
        intermediate_size: 512,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 64,
        ..tiny_config()
    };
    // Seeded weights (the shared random init is unseeded and scaled for width 32): matrices
    // uniform with standard deviation 0.1, norms near one, so that the figures below are fixed.
    let weights = random_weights(&config);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0 // uniform in [-1, 1)
    };
    {
        let data = weights.data().lock().unwrap();
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for name in names {
            let var = &data[name];
            let values: Vec<f32> = match var.rank() {
                2 => (0..var.elem_count()).map(|_| next() * 0.1 * 3f32.sqrt()).collect(),
                _ if name.ends_with("bias") => (0..var.elem_count()).map(|_| next() * 0.1).collect(),
                _ => (0..var.elem_count()).map(|_| 1.0 + next() * 0.1).collect(),
            };
            var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap()).unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qwen2-k-quants.gguf");
    write_gguf(&path, &config, &weights, k_quant_type);

    // The file holds what it claims: the k-quant types, read back from its header.
    let mut file = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let dtype = |name: &str| content.tensor_infos[name].ggml_dtype;
    assert_eq!(dtype("blk.0.attn_q.weight"), GgmlDType::Q4K);
    assert_eq!(dtype("blk.1.ffn_down.weight"), GgmlDType::Q6K);
    assert_eq!(dtype("blk.0.attn_output.weight"), GgmlDType::Q5K);
    assert_eq!(dtype("blk.1.ffn_up.weight"), GgmlDType::Q5_0);
    assert_eq!(dtype("token_embd.weight"), GgmlDType::Q8_0);
    assert_eq!(dtype("blk.0.attn_q.bias"), GgmlDType::F32);

    // The reference: the in-memory model with each matrix rounded through its type, in Hugging
    // Face names (the loader reads the file, maps names and dequantizes on its own).
    let rounded = VarMap::new();
    {
        let mut data = rounded.data().lock().unwrap();
        for (name, tensor) in weights_by_name(&weights) {
            let gguf_name = match name.as_str() {
                "model.embed_tokens.weight" => "token_embd.weight".to_string(),
                "lm_head.weight" => "output.weight".to_string(),
                other => {
                    let suffix = other.rsplit_once('.').unwrap().0.rsplit('.').next().unwrap();
                    let kind = match suffix {
                        "q_proj" => "attn_q",
                        "k_proj" => "attn_k",
                        "v_proj" => "attn_v",
                        "o_proj" => "attn_output",
                        "gate_proj" => "ffn_gate",
                        "up_proj" => "ffn_up",
                        "down_proj" => "ffn_down",
                        _ => "norm",
                    };
                    format!("blk.0.{kind}.weight")
                }
            };
            let rounded_tensor = if tensor.rank() == 2 {
                QTensor::quantize(&tensor, k_quant_type(&gguf_name)).unwrap().dequantize(&Device::Cpu).unwrap()
            } else {
                tensor
            };
            data.insert(name, candle_core::Var::from_tensor(&rounded_tensor).unwrap());
        }
    }

    let loaded = load_model(&path, DeviceKind::Cpu).unwrap();
    assert_eq!(loaded.model.config().architecture, Architecture::Qwen2);
    assert_eq!(loaded.model.config().hidden_size, 256);
    let text = "<|im_start|>user\nPick 1 or 2: ab 12<|im_end|>\n<|im_start|>assistant\n";
    let tokens = loaded.tokenizer.encode(text).unwrap();
    let expected = reference_logits(&config, &rounded, &tokens);
    let actual = last_logits(&loaded, &tokens);
    let scale = expected.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
    let worst = expected.iter().zip(&actual).map(|(e, a)| (e - a).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-4 * scale.max(1.0), "largest logit difference {worst} (largest logit {scale})");
    // And the quantized model is still the model: its logits go with the unrounded ones (a random
    // network amplifies rounding, so their correlation, not their difference, is what holds; 0.979
    // with these weights).
    let unrounded = reference_logits(&config, &weights, &tokens);
    let correlation = pearson(&unrounded, &actual);
    assert!(correlation > 0.97, "logits of the quantized and the unrounded model correlate at {correlation}");
}

fn pearson(a: &[f32], b: &[f32]) -> f64 {
    let mean = |x: &[f32]| x.iter().map(|v| f64::from(*v)).sum::<f64>() / x.len() as f64;
    let (mean_a, mean_b) = (mean(a), mean(b));
    let (mut covariance, mut variance_a, mut variance_b) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (f64::from(*x) - mean_a, f64::from(*y) - mean_b);
        covariance += dx * dy;
        variance_a += dx * dx;
        variance_b += dy * dy;
    }
    covariance / (variance_a * variance_b).sqrt()
}

/// Writes the seeds of the model-file fuzzing (`backend/tests/fuzz_corpus/`): a tiny qwen2 GGUF
/// (Q8_0 matrices, one layer) and a rank-2 PEFT adapter for it. Run when the formats change:
/// `cargo test -p culturespa-engine --test engine_loading -- --ignored write_the_fuzz_seeds`.
#[test]
#[ignore = "writes the fuzzing corpus; run by hand"]
fn write_the_fuzz_seeds() {
    use culturespa_engine::lora::{LoraSettings, TrainableAdapter};
    let config = ModelConfig {
        architecture: Architecture::Qwen2,
        vocab_size: VOCAB,
        hidden_size: 32,
        intermediate_size: 64,
        num_layers: 1,
        num_heads: 2,
        num_kv_heads: 1,
        head_dim: 16,
        ..tiny_config()
    };
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz_corpus");
    write_gguf(&corpus.join("tiny-qwen2.gguf"), &config, &random_weights(&config), |_| GgmlDType::Q8_0);
    let loaded = load_model(&corpus.join("tiny-qwen2.gguf"), DeviceKind::Cpu).unwrap();
    assert_eq!(loaded.model.config().num_layers, 1);
    let settings = LoraSettings { rank: 2, alpha: 4.0, ..LoraSettings::default() };
    let adapter = TrainableAdapter::init(&config, &Device::Cpu, settings, 7).unwrap();
    adapter.snapshot(config.num_layers, Some("tiny-qwen2".into())).unwrap().save(&corpus.join("adapter")).unwrap();
}

/// What fuzzing found (`fuzz_model_files.rs`): a header that declares 2^31 positions made the
/// rotary tables ask for 446 GB (the process aborted), and a tensor with no elements was read as
/// blocks at an unaligned address (undefined behaviour in candle). Both are now refused or bounded.
#[test]
fn a_damaged_header_is_bounded_or_refused() {
    use culturespa_engine::config::MAX_CONTEXT_POSITIONS;
    let dir = tempfile::tempdir().unwrap();
    let long = ModelConfig { context_length: 1 << 31, ..config(Architecture::Qwen2) };
    let path = dir.path().join("long.gguf");
    write_gguf(&path, &long, &random_weights(&long), |_| GgmlDType::F32);
    assert_eq!(load_model(&path, DeviceKind::Cpu).unwrap().model.config().context_length, MAX_CONTEXT_POSITIONS);

    let config = config(Architecture::Qwen2);
    let weights = random_weights(&config);
    weights.data().lock().unwrap().insert(
        "model.layers.0.self_attn.q_proj.bias".into(),
        candle_core::Var::from_tensor(&Tensor::zeros((0,), candle_core::DType::F32, &Device::Cpu).unwrap()).unwrap(),
    );
    let path = dir.path().join("empty-tensor.gguf");
    write_gguf(&path, &config, &weights, |_| GgmlDType::F32);
    let error = load_model(&path, DeviceKind::Cpu).err().unwrap().to_string();
    assert!(error.contains("tensor blk.0.attn_q.bias has no elements (shape [0])"), "{error}");
}
