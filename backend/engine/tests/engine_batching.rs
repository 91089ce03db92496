//! The forward pass and scoring on a tiny random-init llama: batched, prefix-cached scoring equals
//! scoring each prompt alone; scores follow the definition; logits match candle-transformers' llama.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use common::tiny::{random_weights, tiny_config, tiny_model, CONTEXT, DIGIT_IDS};
use culturespa_engine::batch::{
    plan_batches, BatchLimits, BatchPlan, PlanSummary, PlannedSequence, PrefixCache, DEFAULT_MAX_BATCH_TOKENS,
};
use culturespa_engine::scoring::PreparedPrompt;
use culturespa_engine::{Architecture, LlamaModel, ModelConfig, Scorer, SequenceInput};

const TOLERANCE: f64 = 1e-4;

/// Deterministic pseudo-random token ids outside the digit range.
fn tokens(seed: u32, len: usize) -> Vec<u32> {
    (0..len as u32).map(|i| 20 + (seed.wrapping_mul(31).wrapping_add(i * 17 + i * i * 7)) % 80).collect()
}

fn codes(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|c| c.to_string()).collect()
}

/// Prompts sharing a 20-token prefix, with suffixes of different lengths and option lists of one
/// and two digits (1..10 and 0..10 need the branch after "1").
fn prompts(scorer: &Scorer) -> Vec<PreparedPrompt> {
    let shared = tokens(7, 20);
    let option_lists = [codes(1..=4), codes(1..=10), codes(0..=10), codes(1..=2), codes(1..=5), codes(1..=10)];
    option_lists
        .iter()
        .enumerate()
        .map(|(index, choices)| {
            let mut prompt = shared.clone();
            prompt.extend(tokens(100 + index as u32, 3 + 4 * index));
            scorer.prepare_token_prompt(&format!("p{index}"), prompt, choices, CONTEXT).unwrap()
        })
        .collect()
}

#[test]
fn batched_prefix_cached_scoring_equals_scoring_each_prompt_alone() {
    let config = tiny_config();
    let (model, _weights) = tiny_model(&config);
    let limits = BatchLimits { max_tokens: 4096, max_sequences: 64, ..BatchLimits::default() };
    let scorer = Scorer::with_digit_ids(&model, DIGIT_IDS, limits).unwrap();
    let prompts = prompts(&scorer);

    let planned: Vec<PlannedSequence> =
        prompts.iter().map(|p| PlannedSequence { tokens: &p.tokens, branch_count: p.branch_count() }).collect();
    let plans = plan_batches(&planned, limits);
    assert_eq!(plans.len(), 1, "all prompts fit one batch: {plans:?}");
    assert_eq!(plans[0].prefix_len, 20);

    let mut batched = Vec::new();
    scorer.score_all(&model, &prompts, || false, |_, scores, _| batched.extend(scores)).unwrap();

    for (prompt, batched) in prompts.iter().zip(&batched) {
        let (alone, evaluated) =
            scorer.score_batch(&model, &mut PrefixCache::default(), std::slice::from_ref(prompt), 0).unwrap();
        assert_eq!(evaluated, prompt.tokens.len() + prompt.branch_count());
        assert_eq!(alone[0].answer, batched.answer);
        for (a, b) in alone[0].probs.iter().zip(&batched.probs) {
            assert!((a - b).abs() < TOLERANCE, "alone {:?} vs batched {:?}", alone[0].probs, batched.probs);
        }
        assert!((batched.probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
}

#[test]
fn batches_of_one_prompt_each_reuse_the_cached_prefix() {
    let config = tiny_config();
    let (model, _weights) = tiny_model(&config);
    // One prompt per batch, two batches at a time on two worker threads.
    let one_at_a_time = BatchLimits { max_sequences: 1, concurrent_batches: Some(2), ..BatchLimits::default() };
    let scorer = Scorer::with_digit_ids(&model, DIGIT_IDS, one_at_a_time).unwrap();
    let prompts = prompts(&scorer);
    let mut sequential = Vec::new();
    let counters =
        scorer.score_all(&model, &prompts, || false, |_, scores, _| sequential.extend(scores)).unwrap().counters;
    // The shared 20 tokens are computed once (a stem that every batch's prefix extends), plus
    // what each prompt has beyond them.
    let total: usize = prompts.iter().map(|p| p.tokens.len() + p.branch_count()).sum();
    assert_eq!(counters.tokens_evaluated, total - 20 * (prompts.len() - 1));

    let batched_scorer = Scorer::with_digit_ids(&model, DIGIT_IDS, BatchLimits::default()).unwrap();
    let mut batched = Vec::new();
    batched_scorer.score_all(&model, &prompts, || false, |_, scores, _| batched.extend(scores)).unwrap();
    for (a, b) in sequential.iter().zip(&batched) {
        for (x, y) in a.probs.iter().zip(&b.probs) {
            assert!((x - y).abs() < TOLERANCE);
        }
    }
}

/// Prompts of `groups` settings (distinct 20-token system prefixes), `per_group` questions each.
fn grouped_prompts(scorer: &Scorer, groups: u32, per_group: u32) -> Vec<PreparedPrompt> {
    let mut prompts = Vec::new();
    for group in 0..groups {
        let shared = tokens(40 + group, 20);
        for question in 0..per_group {
            let mut prompt = shared.clone();
            prompt.extend(tokens(200 + question, 2 + (question as usize * 5) % 11));
            let choices = if question % 3 == 0 { codes(1..=10) } else { codes(1..=4) };
            prompts
                .push(scorer.prepare_token_prompt(&format!("g{group}q{question}"), prompt, &choices, CONTEXT).unwrap());
        }
    }
    prompts
}

#[test]
fn a_long_shared_prefix_with_long_tails_makes_one_batch() {
    // The WVS prompts: a 75-token system + instruction prefix, then ~70 tokens of question.
    let prefix: Vec<u32> = (0..75).collect();
    let prompts: Vec<Vec<u32>> =
        (0..8u32).map(|p| prefix.iter().copied().chain((0..70).map(|i| 1000 + p * 100 + i)).collect()).collect();
    let planned: Vec<PlannedSequence> =
        prompts.iter().map(|tokens| PlannedSequence { tokens, branch_count: 0 }).collect();
    // A token limit that 8 tails fit in (the default, 512, is about the cache, not the planner).
    let limits = BatchLimits { max_tokens: 2048, ..BatchLimits::default() };
    let plans = plan_batches(&planned, limits);
    assert_eq!(plans, vec![BatchPlan { members: 0..8, prefix_len: 75 }]);
    let summary = PlanSummary::of(&plans, &planned);
    assert_eq!((summary.plans, summary.max_members, summary.max_batch_tokens), (1, 8, 8 * 70));

    // Joining costs what the other members recompute: a prompt that shares only 10 tokens with a
    // batch of 8 would make 7 of them recompute 65 tokens each (455 > 64), so it starts a new batch.
    let mut with_stranger = prompts.clone();
    with_stranger.push(prefix[..10].iter().copied().chain(5000..5070).collect());
    let planned: Vec<PlannedSequence> =
        with_stranger.iter().map(|tokens| PlannedSequence { tokens, branch_count: 0 }).collect();
    let plans = plan_batches(&planned, limits);
    assert_eq!(plans.len(), 2);
    assert_eq!(plans[1], BatchPlan { members: 8..9, prefix_len: 79 });

    // The token limit still holds: 70 computed tokens each, at most 2048 per batch, and at most
    // the default 512.
    let many: Vec<Vec<u32>> =
        (0..100u32).map(|p| prefix.iter().copied().chain((0..70).map(|i| 1000 + p * 100 + i)).collect()).collect();
    let planned: Vec<PlannedSequence> = many.iter().map(|tokens| PlannedSequence { tokens, branch_count: 0 }).collect();
    for (limits, cap) in [(limits, 2048), (BatchLimits::default(), DEFAULT_MAX_BATCH_TOKENS)] {
        let plans = plan_batches(&planned, limits);
        assert!(plans.iter().all(|p| p.members.len() <= cap / 70), "{plans:?}");
        assert_eq!(plans.iter().map(|p| p.members.len()).sum::<usize>(), 100);
    }
}

#[test]
fn batches_are_split_until_every_worker_has_one() {
    let prefix: Vec<u32> = (0..75).collect();
    let prompts: Vec<Vec<u32>> =
        (0..9u32).map(|p| prefix.iter().copied().chain((0..30).map(|i| 1000 + p * 100 + i)).collect()).collect();
    let planned: Vec<PlannedSequence> =
        prompts.iter().map(|tokens| PlannedSequence { tokens, branch_count: 0 }).collect();
    for (workers, expected) in [(1, vec![9]), (2, vec![4, 5]), (3, vec![4, 2, 3]), (20, vec![1; 9])] {
        let plans = plan_batches(&planned, BatchLimits { balance_over: workers, ..BatchLimits::default() });
        assert_eq!(plans.iter().map(|p| p.members.len()).collect::<Vec<_>>(), expected, "{workers} workers");
        let mut next = 0;
        for plan in &plans {
            assert_eq!(plan.members.start, next);
            next = plan.members.end;
            let expected_prefix = if plan.members.len() == 1 { 104 } else { 75 };
            assert_eq!(plan.prefix_len, expected_prefix);
        }
    }
}

#[test]
fn the_work_queue_gives_the_same_bits_with_any_number_of_workers() {
    let config = tiny_config();
    let (model, _weights) = tiny_model(&config);
    assert!(model.uses_cpu_kernels());
    let limits = |workers| BatchLimits { max_tokens: 40, concurrent_batches: Some(workers), ..BatchLimits::default() };
    let serial = Scorer::with_digit_ids(&model, DIGIT_IDS, BatchLimits::default()).unwrap();
    let prompts = grouped_prompts(&serial, 4, 9);
    let run = |workers: usize| {
        let scorer = Scorer::with_digit_ids(&model, DIGIT_IDS, limits(workers)).unwrap();
        let mut scores = Vec::new();
        let mut firsts = Vec::new();
        let report = scorer
            .score_all(
                &model,
                &prompts,
                || false,
                |first, batch, _| {
                    firsts.push(first);
                    scores.extend(batch);
                },
            )
            .unwrap();
        (scores, firsts, report)
    };
    let (two, firsts, report) = run(2);
    assert!(report.plans.plans >= 8, "{:?}", report.plans);
    assert!(report.prefixes >= 4, "at least each group's prefix: {report:?}");
    assert_eq!(report.counters.prompts, prompts.len());
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "batches arrive in prompt order: {firsts:?}");
    assert_eq!(report.schedule.workers, 2);
    for workers in [3, 5] {
        let (other, other_firsts, other_report) = run(workers);
        assert_eq!(other, two, "{workers} workers");
        assert_eq!(other_firsts, firsts);
        assert_eq!(other_report.counters, report.counters);
    }
    // Against each prompt alone (no batching, no shared prefix) within float tolerance.
    for (prompt, batched) in prompts.iter().zip(&two) {
        let (alone, _) =
            serial.score_batch(&model, &mut PrefixCache::default(), std::slice::from_ref(prompt), 0).unwrap();
        for (a, b) in alone[0].probs.iter().zip(&batched.probs) {
            assert!((a - b).abs() < TOLERANCE, "{a} vs {b}");
        }
    }
}

#[test]
fn a_batch_whose_prefix_is_shorter_than_the_previous_ones_reuses_its_start() {
    let config = tiny_config();
    let (model, _weights) = tiny_model(&config);
    let limits = BatchLimits { max_prefix_shrink_cost: 5, concurrent_batches: Some(2), ..BatchLimits::default() };
    let scorer = Scorer::with_digit_ids(&model, DIGIT_IDS, limits).unwrap();
    let base = tokens(9, 30);
    let prompt = |shared: usize, tail: u32| {
        let mut prompt = base[..shared].to_vec();
        prompt.extend(tokens(300 + tail, 6));
        scorer.prepare_token_prompt(&format!("t{tail}"), prompt, &codes(1..=4), CONTEXT).unwrap()
    };
    // Two batches: 30 shared tokens, then 20 of those same tokens (a prefix of the first prefix).
    let prompts = vec![prompt(30, 0), prompt(30, 1), prompt(20, 2), prompt(20, 3)];
    let mut scores = Vec::new();
    let report = scorer.score_all(&model, &prompts, || false, |_, batch, _| scores.extend(batch)).unwrap();
    assert_eq!(report.plans.plans, 2);
    assert_eq!(report.counters.tokens_evaluated, 30 + 4 * 6, "the second prefix is the first one's start");
    for (prompt, batched) in prompts.iter().zip(&scores) {
        let (alone, _) =
            scorer.score_batch(&model, &mut PrefixCache::default(), std::slice::from_ref(prompt), 0).unwrap();
        for (a, b) in alone[0].probs.iter().zip(&batched.probs) {
            assert!((a - b).abs() < TOLERANCE, "{a} vs {b}");
        }
    }
}

#[test]
fn a_cancelled_scoring_delivers_nothing_after_the_stop() {
    let config = tiny_config();
    let (model, _weights) = tiny_model(&config);
    let limits = BatchLimits { max_tokens: 30, concurrent_batches: Some(1), ..BatchLimits::default() };
    let scorer = Scorer::with_digit_ids(&model, DIGIT_IDS, limits).unwrap();
    let prompts = grouped_prompts(&scorer, 3, 6);
    let batches = std::cell::Cell::new(0);
    let error = scorer
        .score_all(&model, &prompts, || batches.get() >= 2, |_, _, _| batches.set(batches.get() + 1))
        .unwrap_err();
    assert!(matches!(error, culturespa_engine::EngineError::Cancelled), "{error}");
    assert_eq!(batches.get(), 2);
}

fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exp: Vec<f64> = logits.iter().map(|&l| (l as f64 - max).exp()).collect();
    let total: f64 = exp.iter().sum();
    exp.iter().map(|e| e / total).collect()
}

fn next_token_probs(model: &LlamaModel, tokens: &[u32]) -> Vec<f64> {
    let output = model.forward(None, &[SequenceInput { tokens, branch_tokens: &[] }], false).unwrap();
    softmax(&model.logits(&output.hidden).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap())
}

#[test]
fn scores_follow_the_definition_of_llamacpp_score() {
    let config = tiny_config();
    let (model, _weights) = tiny_model(&config);
    let scorer = Scorer::with_digit_ids(&model, DIGIT_IDS, BatchLimits::default()).unwrap();
    let prompt_tokens = tokens(3, 30);
    let choices = codes(0..=10);
    let prepared = scorer.prepare_token_prompt("zero-based", prompt_tokens.clone(), &choices, CONTEXT).unwrap();
    let (scores, _) = scorer.score_batch(&model, &mut PrefixCache::default(), &[prepared], 0).unwrap();

    // The definition, spelled out: P(c) for one digit, P("1") × P(no digit | "1"), P("1") × P("0" | "1").
    let first = next_token_probs(&model, &prompt_tokens);
    let mut after_one = prompt_tokens.clone();
    after_one.push(DIGIT_IDS[1]);
    let second = next_token_probs(&model, &after_one);
    let digit_mass: f64 = DIGIT_IDS.iter().map(|&id| second[id as usize]).sum();
    let raw: Vec<f64> = choices
        .iter()
        .map(|code| match code.as_str() {
            "1" => first[DIGIT_IDS[1] as usize] * (1.0 - digit_mass),
            "10" => first[DIGIT_IDS[1] as usize] * second[DIGIT_IDS[0] as usize],
            single => first[DIGIT_IDS[single.parse::<usize>().unwrap()] as usize],
        })
        .collect();
    let total: f64 = raw.iter().sum();
    for (expected, actual) in raw.iter().map(|r| r / total).zip(&scores[0].probs) {
        assert!((expected - actual).abs() < TOLERANCE, "{expected} vs {actual}");
    }
    let best = scores[0].probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    assert_eq!(scores[0].answer, choices[best]);
}

#[test]
fn logits_match_candle_transformers_llama() {
    use candle_transformers::models::llama as reference;
    let config = tiny_config();
    let (model, weights) = tiny_model(&config);
    let reference_config = reference::Config {
        hidden_size: config.hidden_size,
        intermediate_size: config.intermediate_size,
        vocab_size: config.vocab_size,
        num_hidden_layers: config.num_layers,
        num_attention_heads: config.num_heads,
        num_key_value_heads: config.num_kv_heads,
        use_flash_attn: false,
        rms_norm_eps: config.rms_norm_eps,
        rope_theta: config.rope_theta as f32,
        bos_token_id: None,
        eos_token_id: None,
        rope_scaling: None,
        max_position_embeddings: CONTEXT,
        tie_word_embeddings: false,
    };
    let builder = VarBuilder::from_varmap(&weights, DType::F32, &Device::Cpu);
    let reference_model = reference::Llama::load(builder, &reference_config).unwrap();
    let prompt = tokens(11, 25);
    let mut cache = reference::Cache::new(false, DType::F32, &reference_config, &Device::Cpu).unwrap();
    let input = Tensor::new(prompt.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let expected =
        reference_model.forward(&input, 0, &mut cache).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap();

    let mut generic = model.clone();
    generic.set_cpu_kernels(false);
    for model in [&model, &generic] {
        let output = model.forward(None, &[SequenceInput { tokens: &prompt, branch_tokens: &[] }], false).unwrap();
        let actual = model.logits(&output.hidden).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap();
        let worst = expected.iter().zip(&actual).map(|(e, a)| (e - a).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "largest logit difference {worst} (cpu kernels: {})", model.uses_cpu_kernels());
    }
}

fn max_difference(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn cpu_kernels_match_the_generic_tensor_path() {
    for architecture in [Architecture::Llama, Architecture::Qwen2] {
        let config = ModelConfig { architecture, ..tiny_config() };
        let (fused, _weights) = tiny_model(&config);
        assert!(fused.uses_cpu_kernels());
        let mut generic = fused.clone();
        generic.set_cpu_kernels(false);

        // A prefix kept in the cache, then a batch with branches on top of it.
        let prefix = tokens(5, 12);
        let prefix_input = [SequenceInput { tokens: &prefix, branch_tokens: &[] }];
        let fused_prefix = fused.forward(None, &prefix_input, true).unwrap();
        let generic_prefix = generic.forward(None, &prefix_input, true).unwrap();
        assert!(max_difference(&fused_prefix.hidden, &generic_prefix.hidden) < 1e-4);
        let (fused_cache, generic_cache) = (fused_prefix.cache.unwrap(), generic_prefix.cache.unwrap());
        assert_eq!(fused_cache.len(), 12);

        let suffixes = [tokens(21, 7), tokens(22, 1), tokens(23, 15)];
        let branches = [vec![DIGIT_IDS[1]], vec![], vec![DIGIT_IDS[1], DIGIT_IDS[2]]];
        let batch: Vec<SequenceInput> = suffixes
            .iter()
            .zip(&branches)
            .map(|(tokens, branch_tokens)| SequenceInput { tokens, branch_tokens })
            .collect();
        let fused_out = fused.forward(Some(&fused_cache), &batch, false).unwrap().hidden;
        let generic_out = generic.forward(Some(&generic_cache), &batch, false).unwrap().hidden;
        assert_eq!(fused_out.dims(), &[1 + 1 + 1 + 1 + 2, config.hidden_size]);
        assert!(max_difference(&fused_out, &generic_out) < 1e-4, "{architecture:?}");

        // Extending a kept cache by one token, as decoding does.
        let next = [SequenceInput { tokens: &[42], branch_tokens: &[] }];
        let fused_step = fused.forward(Some(&fused_cache), &next, true).unwrap();
        let generic_step = generic.forward(Some(&generic_cache), &next, true).unwrap();
        assert!(max_difference(&fused_step.hidden, &generic_step.hidden) < 1e-4);
        assert_eq!(fused_step.cache.unwrap().len(), 13);
    }
}

#[test]
fn qwen2_biases_are_applied_and_batching_still_matches() {
    let config = ModelConfig { architecture: Architecture::Qwen2, ..tiny_config() };
    let (model, _weights) = tiny_model(&config);
    let scorer = Scorer::with_digit_ids(&model, DIGIT_IDS, BatchLimits::default()).unwrap();
    let prompts = prompts(&scorer);
    let mut batched = Vec::new();
    scorer.score_all(&model, &prompts, || false, |_, s, _| batched.extend(s)).unwrap();
    let (alone, _) = scorer.score_batch(&model, &mut PrefixCache::default(), &prompts[3..4], 0).unwrap();
    for (a, b) in alone[0].probs.iter().zip(&batched[3].probs) {
        assert!((a - b).abs() < TOLERANCE);
    }
}

#[test]
fn a_qwen2_model_without_biases_is_rejected_naming_the_tensor() {
    let config = tiny_config();
    let weights = random_weights(&config);
    let qwen = ModelConfig { architecture: Architecture::Qwen2, ..config };
    let error = LlamaModel::new(qwen, VarBuilder::from_varmap(&weights, DType::F32, &Device::Cpu)).unwrap_err();
    assert!(error.to_string().contains("model.layers.0.self_attn.q_proj.bias"), "{error}");
}
