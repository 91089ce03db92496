//! Cutting a stream of prompts into batches that share a token prefix, and keeping the key/value
//! cache of the last prefix so that the next batch reuses what it can.

use std::ops::Range;

use super::error::{EngineError, Result};
use super::model::{KvCache, LlamaModel, SequenceInput};

/// Limits on one forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Tokens computed per pass, beyond the shared prefix (branch tokens included).
    pub max_tokens: usize,
    pub max_sequences: usize,
    /// Tokens the other members recompute (shrunk prefix × (members − 1)) accepted to keep one
    /// more prompt in a batch.
    pub max_prefix_shrink_cost: usize,
    /// Batches computed at the same time, one thread each (CPU kernels only); None = one per
    /// compute thread.
    pub concurrent_batches: Option<usize>,
    /// Split batches until there are at least this many (the workers that compute them); the
    /// scorer sets it to its worker count.
    pub balance_over: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_tokens: DEFAULT_MAX_BATCH_TOKENS,
            max_sequences: DEFAULT_MAX_BATCH_SEQUENCES,
            max_prefix_shrink_cost: DEFAULT_MAX_PREFIX_SHRINK_COST,
            concurrent_batches: None,
            balance_over: 1,
        }
    }
}

/// Tokens per pass: GEMMs of 512 rows run near their peak, and the activations of a pass stay
/// in the caches (on a 2-core EPYC, 1,000 WVS prompts: 8.0 prompts/s at 512, 7.0 at 1,024, 6.5 at
/// 2,048; see docs/bench/).
pub const DEFAULT_MAX_BATCH_TOKENS: usize = 512;
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
/// joining does not cost the other members more than the limits allow.
///
/// Joining shrinks the shared prefix to what the newcomer shares: the tokens between the old and
/// the new prefix were to be computed once (in the prefix) and are now computed by every member.
/// One member would compute them anyway, so the cost of joining is what the *other* members
/// recompute, `(prefix_len − shared) · (members − 1)`; the batch's token count grows by all of them.
/// When fewer batches come out than `limits.balance_over` workers, the largest are halved so
/// that no worker idles.
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
            let moved = prefix_len - shared;
            let recomputed = moved * (members - 1);
            let new_computed = computed + moved * members + candidate.tokens.len() - shared + candidate.branch_count;
            if recomputed > limits.max_prefix_shrink_cost || new_computed > limits.max_tokens {
                break;
            }
            prefix_len = shared;
            computed = new_computed;
            end += 1;
        }
        plans.push(BatchPlan { members: start..end, prefix_len });
        start = end;
    }
    balance(plans, sequences, limits.balance_over)
}

/// Halves the batch with the most members until there are `workers` batches (or none can be split).
fn balance(mut plans: Vec<BatchPlan>, sequences: &[PlannedSequence], workers: usize) -> Vec<BatchPlan> {
    while plans.len() < workers {
        let Some((index, _)) = plans
            .iter()
            .enumerate()
            .filter(|(_, p)| p.members.len() > 1)
            .max_by_key(|(i, p)| (p.members.len(), usize::MAX - i))
        else {
            break;
        };
        let plan = plans.remove(index);
        let middle = plan.members.start + plan.members.len() / 2;
        let halves = [plan.members.start..middle, middle..plan.members.end].map(|members| {
            let first = sequences[members.start].tokens;
            let prefix_len = sequences[members.clone()].iter().fold(first.len().saturating_sub(1), |len, s| {
                len.min(common_prefix_len(first, s.tokens)).min(s.tokens.len().saturating_sub(1))
            });
            BatchPlan { members, prefix_len }
        });
        plans.splice(index..index, halves);
    }
    plans
}

/// How a list of batches looks: for benchmarks and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct PlanSummary {
    pub plans: usize,
    pub min_members: usize,
    pub mean_members: f64,
    pub max_members: usize,
    /// Tokens computed per batch beyond its shared prefix (branch tokens included).
    pub mean_batch_tokens: f64,
    pub max_batch_tokens: usize,
    /// Batches of at most two rows: each streams all the weights for almost nothing.
    pub plans_of_two_tokens_or_fewer: usize,
}

impl PlanSummary {
    pub fn of(plans: &[BatchPlan], sequences: &[PlannedSequence]) -> Self {
        if plans.is_empty() {
            return PlanSummary::default();
        }
        let batch_tokens: Vec<usize> = plans
            .iter()
            .map(|plan| {
                sequences[plan.members.clone()].iter().map(|s| s.tokens.len() - plan.prefix_len + s.branch_count).sum()
            })
            .collect();
        let members = plans.iter().map(|p| p.members.len());
        PlanSummary {
            plans: plans.len(),
            min_members: members.clone().min().unwrap_or(0),
            mean_members: sequences.len() as f64 / plans.len() as f64,
            max_members: members.max().unwrap_or(0),
            mean_batch_tokens: batch_tokens.iter().sum::<usize>() as f64 / plans.len() as f64,
            max_batch_tokens: batch_tokens.iter().copied().max().unwrap_or(0),
            plans_of_two_tokens_or_fewer: batch_tokens.iter().filter(|&&t| t <= 2).count(),
        }
    }
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

/// The key/value caches of the distinct prefixes of a list of batches, each computed once, by
/// whichever worker first needs it, and dropped when no batch and no longer prefix needs it any
/// more.
///
/// The prefixes form a tree: where a batch's prefix parts from the previous batch's, their common
/// start becomes a node of its own (a *stem*) that both extend. So two batches depend on each
/// other only through the tokens they share, and the workers compute their own parts at the same
/// time. (A chain in which each prefix extends the whole previous one kept one worker waiting
/// whenever the batches were single long prompts, such as P3's: each batch's prefix is then all of
/// its prompt but the last token.) The tree depends on the prompts alone, so the results do not
/// depend on which thread computed what.
pub struct PrefixTree {
    nodes: Vec<PrefixNode>,
    /// The node of each batch (None when its prefix is empty).
    batch_nodes: Vec<Option<usize>>,
}

struct PrefixNode {
    tokens: Vec<u32>,
    /// The prefix this one extends (all of its tokens), if any.
    parent: Option<usize>,
    /// Batches and longer prefixes that still need this cache.
    users: std::sync::atomic::AtomicUsize,
    slot: std::sync::Mutex<PrefixSlot>,
}

enum PrefixSlot {
    Pending,
    Ready(Option<KvCache>),
    /// Computing it failed with this message (the worker that tried reports the error itself).
    Failed(String),
    Released,
}

/// A node of the tree while it is built.
struct PlannedNode {
    tokens: Vec<u32>,
    parent: Option<usize>,
    users: usize,
}

impl PrefixTree {
    /// The tree of the prefixes `prefixes[i]` of batches `i`, in batch order.
    pub fn new<'a>(prefixes: impl IntoIterator<Item = &'a [u32]>) -> Self {
        let mut nodes: Vec<PlannedNode> = Vec::new();
        let mut batch_nodes = Vec::new();
        // The node of the previous batch with a prefix.
        let mut previous: Option<usize> = None;
        for prefix in prefixes {
            if prefix.is_empty() {
                batch_nodes.push(None);
                continue;
            }
            let anchor = previous.and_then(|previous| Self::anchor(&mut nodes, previous, prefix));
            let node = match anchor {
                Some(anchor) if nodes[anchor].tokens.len() == prefix.len() => anchor,
                _ => {
                    nodes.push(PlannedNode { tokens: prefix.to_vec(), parent: anchor, users: 0 });
                    if let Some(anchor) = anchor {
                        nodes[anchor].users += 1;
                    }
                    nodes.len() - 1
                }
            };
            nodes[node].users += 1;
            batch_nodes.push(Some(node));
            previous = Some(node);
        }
        let nodes = nodes
            .into_iter()
            .map(|node| PrefixNode {
                tokens: node.tokens,
                parent: node.parent,
                users: std::sync::atomic::AtomicUsize::new(node.users),
                slot: std::sync::Mutex::new(PrefixSlot::Pending),
            })
            .collect();
        PrefixTree { nodes, batch_nodes }
    }

    /// The node holding exactly the start that `prefix` shares with node `previous` (found on
    /// `previous`'s path to the root, or made there as a stem), or None when they share nothing.
    fn anchor(nodes: &mut Vec<PlannedNode>, previous: usize, prefix: &[u32]) -> Option<usize> {
        let shared = common_prefix_len(&nodes[previous].tokens, prefix);
        if shared == 0 {
            return None;
        }
        // Up the path until a node no longer than the shared start; `child` is the one below it.
        let (mut child, mut above) = (None, Some(previous));
        while let Some(node) = above.filter(|&node| nodes[node].tokens.len() > shared) {
            child = Some(node);
            above = nodes[node].parent;
        }
        if let Some(node) = above.filter(|&node| nodes[node].tokens.len() == shared) {
            return Some(node);
        }
        // A stem between `above` (shorter, or the root's absence) and `child` (longer).
        let child = child?; // never None: `previous` is longer than the shared start here
        nodes.push(PlannedNode { tokens: prefix[..shared].to_vec(), parent: above, users: 1 });
        let stem = nodes.len() - 1;
        nodes[child].parent = Some(stem);
        Some(stem)
    }

    /// Distinct prefixes in the tree (stems included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The cache of batch `batch`'s prefix, computing what is missing on the calling thread;
    /// returns it with the number of tokens this call computed. Call [`PrefixTree::finished`]
    /// when the batch is done with it.
    pub fn prefix_of(&self, model: &LlamaModel, batch: usize) -> Result<(Option<KvCache>, usize)> {
        match self.batch_nodes.get(batch).copied().flatten() {
            Some(node) => self.ensure(model, node),
            None => Ok((None, 0)),
        }
    }

    /// Batch `batch` no longer needs its prefix.
    pub fn finished(&self, batch: usize) {
        if let Some(node) = self.batch_nodes.get(batch).copied().flatten() {
            self.release(node);
        }
    }

    fn ensure(&self, model: &LlamaModel, index: usize) -> Result<(Option<KvCache>, usize)> {
        let node = &self.nodes[index];
        let mut slot = node.slot.lock().map_err(|_| EngineError::WorkerPanicked)?;
        match &*slot {
            PrefixSlot::Ready(cache) => return Ok((cache.clone(), 0)),
            PrefixSlot::Failed(message) => {
                return Err(EngineError::InvalidBatch(format!("computing a shared prefix failed: {message}")))
            }
            PrefixSlot::Released => {
                return Err(EngineError::InvalidBatch("a prefix cache was needed after its release".into()))
            }
            PrefixSlot::Pending => {}
        }
        let computed = (|| -> Result<(Option<KvCache>, usize)> {
            let (base, reused, mut computed) = match node.parent {
                Some(parent) => {
                    let (cache, computed) = self.ensure(model, parent)?;
                    self.release(parent);
                    (cache, self.nodes[parent].tokens.len(), computed)
                }
                None => (None, 0, 0),
            };
            let sequence = SequenceInput { tokens: &node.tokens[reused..], branch_tokens: &[] };
            let cache = model.forward(base.as_ref(), &[sequence], true)?.cache;
            computed += node.tokens.len() - reused;
            Ok((cache, computed))
        })();
        match computed {
            Ok((cache, computed)) => {
                *slot = PrefixSlot::Ready(cache.clone());
                Ok((cache, computed))
            }
            Err(error) => {
                *slot = PrefixSlot::Failed(error.to_string());
                Err(error)
            }
        }
    }

    fn release(&self, index: usize) {
        let node = &self.nodes[index];
        if node.users.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1 {
            if let Ok(mut slot) = node.slot.lock() {
                *slot = PrefixSlot::Released;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ancestors(tree: &PrefixTree, node: usize) -> Vec<usize> {
        std::iter::successors(tree.nodes[node].parent, |&parent| tree.nodes[parent].parent).collect()
    }

    #[test]
    fn batches_that_part_ways_extend_a_shared_stem_not_each_other() {
        let stem: Vec<u32> = (0..30).collect();
        let with_tail = |start: usize, len: usize, tail: u32| -> Vec<u32> {
            stem[..start].iter().copied().chain((0..len as u32).map(|i| 1000 * tail + i)).collect()
        };
        // Three long prompts that share 30 tokens, one that shares 20, one identical to the last,
        // one that extends it and one that shares nothing.
        let prefixes = [
            with_tail(30, 10, 1),
            with_tail(30, 10, 2),
            with_tail(30, 10, 3),
            with_tail(20, 10, 4),
            with_tail(20, 10, 4),
            with_tail(20, 15, 4),
            vec![7, 7, 7],
        ];
        let tree = PrefixTree::new(prefixes.iter().map(Vec::as_slice));
        let batch = |index: usize| tree.batch_nodes[index].unwrap();
        for (index, prefix) in prefixes.iter().enumerate() {
            assert_eq!(&tree.nodes[batch(index)].tokens, prefix);
            // Every ancestor is a proper start of the batch's prefix.
            for ancestor in ancestors(&tree, batch(index)) {
                let tokens = &tree.nodes[ancestor].tokens;
                assert!(tokens.len() < prefix.len() && prefix.starts_with(tokens));
            }
        }
        // No batch waits for another's own tokens: only for starts they share.
        for (first, second) in [(0, 1), (1, 2), (0, 2), (2, 3)] {
            assert!(!ancestors(&tree, batch(second)).contains(&batch(first)), "{first} → {second}");
        }
        assert_eq!(batch(3), batch(4), "an identical prefix is one node");
        assert!(ancestors(&tree, batch(5)).contains(&batch(4)), "a longer prefix extends the previous one");
        assert!(ancestors(&tree, batch(6)).is_empty());
        // Each distinct token position is computed once: 20 + 10 (stems), 3 × 10, 10 + 5, 3.
        let computed: usize = tree
            .nodes
            .iter()
            .map(|node| node.tokens.len() - node.parent.map_or(0, |parent| tree.nodes[parent].tokens.len()))
            .sum();
        assert_eq!(computed, 30 + 30 + 15 + 3);
        assert_eq!(tree.len(), 2 + 3 + 2 + 1);
    }
}
