//! Cutting a stream of prompts into batches that share a token prefix, and keeping the key/value
//! cache of the last prefix so that the next batch reuses what it can.

use std::ops::Range;

use super::error::Result;
use super::model::{KvCache, LlamaModel, SequenceInput};

/// Limits on one forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Tokens computed per pass, beyond the shared prefix (branch tokens included).
    pub max_tokens: usize,
    pub max_sequences: usize,
    /// Extra tokens (shrunk prefix × members) accepted to keep one more prompt in a batch.
    pub max_prefix_shrink_cost: usize,
    /// Batches computed at the same time, one thread each (CPU kernels only); None = one per
    /// compute thread.
    pub concurrent_batches: Option<usize>,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_tokens: DEFAULT_MAX_BATCH_TOKENS,
            max_sequences: DEFAULT_MAX_BATCH_SEQUENCES,
            max_prefix_shrink_cost: DEFAULT_MAX_PREFIX_SHRINK_COST,
            concurrent_batches: None,
        }
    }
}

/// Large enough for GEMMs to run near peak on a CPU, small enough to report progress often.
pub const DEFAULT_MAX_BATCH_TOKENS: usize = 2048;
pub const DEFAULT_MAX_BATCH_SEQUENCES: usize = 64;
/// About one prompt's worth of tokens.
pub const DEFAULT_MAX_PREFIX_SHRINK_COST: usize = 64;

/// A run of consecutive prompts and the length of the token prefix they all share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    pub members: Range<usize>,
    pub prefix_len: usize,
}

/// What a batch member costs to compute: its tokens and how many branch tokens follow them.
#[derive(Debug, Clone, Copy)]
pub struct PlannedSequence<'a> {
    pub tokens: &'a [u32],
    pub branch_count: usize,
}

/// Greedy batching in order: a prompt joins the current batch while the batch fits the limits and
/// joining does not shrink the shared prefix by more than the limits allow.
pub fn plan_batches(sequences: &[PlannedSequence], limits: BatchLimits) -> Vec<BatchPlan> {
    let mut plans = Vec::new();
    let mut start = 0;
    while start < sequences.len() {
        let first = sequences[start];
        // Every member keeps at least its last token, whose logits are wanted.
        let mut prefix_len = first.tokens.len().saturating_sub(1);
        let mut computed = first.tokens.len() - prefix_len + first.branch_count;
        let mut end = start + 1;
        while end < sequences.len() && end - start < limits.max_sequences {
            let candidate = sequences[end];
            let shared = common_prefix_len(first.tokens, candidate.tokens)
                .min(prefix_len)
                .min(candidate.tokens.len().saturating_sub(1));
            let members = end - start;
            let shrink_cost = (prefix_len - shared) * members;
            let new_computed = computed + shrink_cost + candidate.tokens.len() - shared + candidate.branch_count;
            if shrink_cost > limits.max_prefix_shrink_cost || new_computed > limits.max_tokens {
                break;
            }
            prefix_len = shared;
            computed = new_computed;
            end += 1;
        }
        plans.push(BatchPlan { members: start..end, prefix_len });
        start = end;
    }
    plans
}

pub fn common_prefix_len(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The key/value cache of the most recent prefix.
#[derive(Debug, Default)]
pub struct PrefixCache {
    tokens: Vec<u32>,
    cache: Option<KvCache>,
}

impl PrefixCache {
    /// The cache of `prefix`, reusing the longest common start of the cached one; returns it with
    /// the number of tokens that had to be computed.
    pub fn prepare(&mut self, model: &LlamaModel, prefix: &[u32]) -> Result<(Option<KvCache>, usize)> {
        let reused = common_prefix_len(&self.tokens, prefix);
        let base = match &self.cache {
            Some(cache) if reused == cache.len() => Some(cache.clone()),
            Some(cache) => cache.truncated(reused)?,
            None => None,
        };
        let computed = prefix.len() - reused;
        let cache = if computed == 0 {
            base
        } else {
            let sequence = SequenceInput { tokens: &prefix[reused..], branch_tokens: &[] };
            model.forward(base.as_ref(), &[sequence], true)?.cache
        };
        self.tokens = prefix.to_vec();
        self.cache = cache.clone();
        Ok((cache, computed))
    }

    pub fn clear(&mut self) {
        self.tokens.clear();
        self.cache = None;
    }
}
