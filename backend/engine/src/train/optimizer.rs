//! AdamW, written out rather than taken from `candle_nn::AdamW` because a resumable training
//! must save and restore its moments, which candle's keeps private; a test checks that both take
//! identical steps.

use candle_core::Tensor;

use crate::error::Result;

/// AdamW with decoupled weight decay, as `candle_nn::AdamW` computes it, with its state exposed.
#[derive(Debug, Clone)]
pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub step: usize,
    pub first_moments: Vec<Tensor>,
    pub second_moments: Vec<Tensor>,
}

impl AdamW {
    pub fn new(parameters: &[Tensor], weight_decay: f64) -> Result<Self> {
        let zeros = |t: &Tensor| t.zeros_like();
        Ok(AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            step: 0,
            first_moments: parameters.iter().map(zeros).collect::<candle_core::Result<_>>()?,
            second_moments: parameters.iter().map(zeros).collect::<candle_core::Result<_>>()?,
        })
    }

    /// One update of `parameters` (variables) with `gradients`, at `learning_rate`.
    pub fn update(&mut self, parameters: &[candle_core::Var], gradients: &[Tensor], learning_rate: f64) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let (scale_m, scale_v) = (1.0 - self.beta1.powi(t), 1.0 - self.beta2.powi(t));
        for (index, (parameter, gradient)) in parameters.iter().zip(gradients).enumerate() {
            let m = ((&self.first_moments[index] * self.beta1)? + (gradient * (1.0 - self.beta1))?)?;
            let v = ((&self.second_moments[index] * self.beta2)? + (gradient.sqr()? * (1.0 - self.beta2))?)?;
            let theta = (parameter.as_tensor() * (1.0 - learning_rate * self.weight_decay))?;
            let adjusted_m = (&m / scale_m)?;
            let adjusted_v = (&v / scale_v)?;
            let next = (theta - ((adjusted_m / (adjusted_v.sqrt()? + self.eps)?)? * learning_rate)?)?;
            parameter.set(&next)?;
            self.first_moments[index] = m;
            self.second_moments[index] = v;
        }
        Ok(())
    }
}
