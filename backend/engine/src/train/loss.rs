//! The answer loss through candle's autograd (any device and precision): the reference the
//! fused CPU path is checked against, and the path on a GPU.

use candle_core::{Tensor, D};

use super::data::TrainingExample;
use crate::error::Result;
use crate::model::LlamaModel;

/// Summed cross-entropy of the examples' answer tokens under `model` (an adapted copy when
/// training), and how many tokens it sums over.
pub fn answer_loss(model: &LlamaModel, examples: &[&TrainingExample]) -> Result<(Tensor, usize)> {
    let mut inputs = Vec::with_capacity(examples.len());
    let mut rows = Vec::with_capacity(examples.len());
    let mut labels = Vec::new();
    for example in examples {
        let mut tokens = example.prompt_tokens.clone();
        tokens.extend_from_slice(&example.target_tokens);
        tokens.pop(); // the last token predicts nothing
        let first = example.prompt_tokens.len() - 1;
        rows.push((first..first + example.target_tokens.len()).collect::<Vec<_>>());
        labels.extend_from_slice(&example.target_tokens);
        inputs.push(tokens);
    }
    let sequences: Vec<&[u32]> = inputs.iter().map(Vec::as_slice).collect();
    let hidden = model.forward_rows(&sequences, &rows)?;
    let logits = model.logits_for_loss(&hidden)?;
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let labels_tensor = Tensor::from_slice(&labels, (labels.len(), 1), model.device())?;
    let picked = log_probs.gather(&labels_tensor, 1)?;
    Ok((picked.sum_all()?.neg()?, labels.len()))
}
