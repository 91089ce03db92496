//! Helpers of the LoRA training tests: the tiny model in any precision, synthetic examples, an
//! adapter whose `B` is not zero.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use culturespa_engine::{LlamaModel, TrainableAdapter, TrainingExample};

use super::tiny::{random_weights, tiny_config, VOCAB};

pub fn tiny(dtype: DType) -> LlamaModel {
    tiny_from(&random_weights(&tiny_config()), dtype)
}

/// The model of `varmap`'s weights in `dtype` (plain tensors, not variables).
pub fn tiny_from(varmap: &candle_nn::VarMap, dtype: DType) -> LlamaModel {
    tiny_with(varmap, tiny_config(), dtype)
}

/// As [`tiny_from`] for another configuration (weights made by `random_weights(&config)`).
pub fn tiny_with(varmap: &candle_nn::VarMap, config: culturespa_engine::ModelConfig, dtype: DType) -> LlamaModel {
    let tensors: HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().to_dtype(dtype).unwrap()))
        .collect();
    let mut model = LlamaModel::new(config, VarBuilder::from_tensors(tensors, dtype, &Device::Cpu)).unwrap();
    model.set_cpu_kernels(false);
    model
}

pub fn example(id: usize, prompt_len: usize, target_len: usize) -> TrainingExample {
    let token = |i: usize| ((id * 7 + i * 13) % (VOCAB - 1) + 1) as u32;
    TrainingExample {
        id: format!("example {id}"),
        prompt_tokens: (0..prompt_len).map(token).collect(),
        target_tokens: (0..target_len).map(|i| token(prompt_len + i)).collect(),
    }
}

/// Sets every `B` to small random values so the adapter changes the model.
pub fn randomize_b(adapter: &TrainableAdapter, seed: u64) {
    let mut state = seed;
    for (_, _, _, b) in &adapter.vars {
        let values: Vec<f64> = (0..b.elem_count())
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.4
            })
            .collect();
        let tensor = Tensor::from_vec(values, b.shape(), &Device::Cpu).unwrap().to_dtype(b.dtype()).unwrap();
        b.set(&tensor).unwrap();
    }
}
