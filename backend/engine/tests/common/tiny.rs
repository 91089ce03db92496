//! A tiny random-init llama for tests (hidden 32, intermediate 64, 2 layers, 4 heads, 2 kv heads).

use candle_core::{DType, Device};
use candle_nn::{Init, VarBuilder, VarMap};
use culturespa_engine::{Architecture, LlamaModel, ModelConfig};

pub const VOCAB: usize = 100;
pub const CONTEXT: usize = 64;
/// Token ids standing for the digits "0".."9" in the tiny vocabulary.
pub const DIGIT_IDS: [u32; 10] = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19];

pub fn tiny_config() -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Llama,
        vocab_size: VOCAB,
        hidden_size: 32,
        intermediate_size: 64,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 8,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_freq_factors: None,
        context_length: CONTEXT,
        tie_word_embeddings: false,
    }
}

/// Fills a VarMap with random weights in Hugging Face names.
pub fn random_weights(config: &ModelConfig) -> VarMap {
    let varmap = VarMap::new();
    let builder = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let init = Init::Randn { mean: 0.0, stdev: 0.3 };
    let ones = Init::Randn { mean: 1.0, stdev: 0.1 };
    let (h, i, v) = (config.hidden_size, config.intermediate_size, config.vocab_size);
    let q = config.num_heads * config.head_dim;
    let kv = config.num_kv_heads * config.head_dim;
    let mut shapes: Vec<(String, Vec<usize>, Init)> = vec![
        ("model.embed_tokens.weight".into(), vec![v, h], init),
        ("model.norm.weight".into(), vec![h], ones),
        ("lm_head.weight".into(), vec![v, h], init),
    ];
    for layer in 0..config.num_layers {
        let name = |s: &str| format!("model.layers.{layer}.{s}");
        shapes.extend([
            (name("input_layernorm.weight"), vec![h], ones),
            (name("post_attention_layernorm.weight"), vec![h], ones),
            (name("self_attn.q_proj.weight"), vec![q, h], init),
            (name("self_attn.k_proj.weight"), vec![kv, h], init),
            (name("self_attn.v_proj.weight"), vec![kv, h], init),
            (name("self_attn.o_proj.weight"), vec![h, q], init),
            (name("mlp.gate_proj.weight"), vec![i, h], init),
            (name("mlp.up_proj.weight"), vec![i, h], init),
            (name("mlp.down_proj.weight"), vec![h, i], init),
        ]);
        if config.architecture == Architecture::Qwen2 {
            shapes.extend([
                (name("self_attn.q_proj.bias"), vec![q], init),
                (name("self_attn.k_proj.bias"), vec![kv], init),
                (name("self_attn.v_proj.bias"), vec![kv], init),
            ]);
        }
    }
    for (name, shape, init) in shapes {
        builder.get_with_hints(shape, &name, init).unwrap();
    }
    varmap
}

/// The tiny model running the fused CPU kernels (what release builds run on the CPU).
pub fn tiny_model(config: &ModelConfig) -> (LlamaModel, VarMap) {
    let varmap = random_weights(config);
    let builder = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let mut model = LlamaModel::new(config.clone(), builder).unwrap();
    model.set_cpu_kernels(true);
    (model, varmap)
}
