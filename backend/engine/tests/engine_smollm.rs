//! The default model (SmolLM2-135M-Instruct, GGUF): its tokenizer and chat template rebuilt from
//! the GGUF metadata, and greedy decoding.

mod common;

use culturespa_engine::batch::{BatchLimits, PrefixCache};
use culturespa_engine::sampling::generate;
use culturespa_engine::{Architecture, ChatMessage, SamplingParams, ScorePrompt, Scorer};

use common::{answer_prompt, chatml, default_model, UNAWARE_SYSTEM};

const FOUR_OPTIONS: &str = "1.Very important 2.Rather important 3.Not very important 4.Not at all important";

#[test]
fn config_is_read_from_the_gguf_metadata() {
    let config = default_model().model.config();
    assert_eq!(config.architecture, Architecture::Llama);
    assert_eq!((config.num_layers, config.hidden_size, config.intermediate_size), (30, 576, 1536));
    assert_eq!((config.num_heads, config.num_kv_heads, config.head_dim), (9, 3, 64));
    assert_eq!((config.vocab_size, config.context_length), (49152, 8192));
    assert!(config.tie_word_embeddings);
    // The id llama.cpp's converter wrote into general.*: organization/basename-size-finetune.
    assert_eq!(default_model().model_id.as_deref(), Some("HuggingFaceTB/smollm2-135M-8k-lc100k-mix1-ep2"));
}

#[test]
fn chat_template_renders_chatml_byte_for_byte() {
    let template = default_model().chat_template().unwrap();
    let user = answer_prompt(
        "How important is family in your life?",
        "1.Very important 2.Rather important 3.Not very important 4.Not at all important",
    );
    assert_eq!(template.render_exchange(UNAWARE_SYSTEM, &user).unwrap(), chatml(UNAWARE_SYSTEM, &user));
    // Without a system turn the template adds SmolLM's default one.
    let rendered = template.render(&[ChatMessage::user("Hi")], true).unwrap();
    assert!(rendered.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"), "{rendered}");
    assert!(rendered.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"), "{rendered}");
    let without_generation_prompt =
        template.render(&[ChatMessage::system("S"), ChatMessage::user("U")], false).unwrap();
    assert_eq!(without_generation_prompt, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n");
}

#[test]
fn special_tokens_written_in_text_are_parsed_as_special() {
    let tokenizer = &default_model().tokenizer;
    let start = tokenizer.token_id("<|im_start|>").unwrap();
    let end = tokenizer.token_id("<|im_end|>").unwrap();
    assert_eq!((start, end), (1, 2));
    let ids = tokenizer.encode("<|im_start|>user\nHello<|im_end|>\n").unwrap();
    assert_eq!(ids.first(), Some(&start));
    assert!(ids.contains(&end));
    assert_eq!(ids.iter().filter(|&&id| id == start || id == end).count(), 2, "{ids:?}");
    assert!(tokenizer.stop_ids().contains(&end));
    // Skipping special tokens on decode leaves the text between them.
    assert_eq!(tokenizer.decode(&ids, true).unwrap(), "user\nHello\n");
}

#[test]
fn text_survives_a_round_trip_and_digits_are_single_tokens() {
    let tokenizer = &default_model().tokenizer;
    let texts = [
        "Hello, world!",
        "  leading spaces and\ttabs\nand new lines\n\n",
        "Numbers 1234567890 and 3.14159, codes 10 and 0.",
        "Unicode: café, naïve, 日本語, emoji 🙂, Ünïcödé.",
        "#Options: 1.Very important 2.Rather important 3.Not very important 4.Not at all important",
        "it's they're we've I'm you'll he'd",
    ];
    for text in texts {
        let ids = tokenizer.encode(text).unwrap();
        assert_eq!(tokenizer.decode(&ids, false).unwrap(), text);
    }
    let digits = tokenizer.digit_ids().unwrap();
    let number = tokenizer.encode("2024").unwrap();
    assert_eq!(number, vec![digits[2], digits[0], digits[2], digits[4]], "SmolLM splits numbers into digits");
    assert_eq!(tokenizer.encode(" the").unwrap().len(), 1, "byte-level BPE merges a leading space");
}

#[test]
fn cpu_kernels_and_generic_ops_score_a_wvs_prompt_alike() {
    let loaded = default_model();
    let mut kernels = loaded.model.clone();
    kernels.set_cpu_kernels(true);
    let mut generic = loaded.model.clone();
    generic.set_cpu_kernels(false);
    let text = chatml(UNAWARE_SYSTEM, &answer_prompt("How important is work in your life?", FOUR_OPTIONS));
    let prompt = ScorePrompt { id: "Q5".into(), text, choices: ["1", "2", "3", "4"].map(String::from).to_vec() };
    let mut scores = Vec::new();
    for model in [&kernels, &generic] {
        let scorer = Scorer::new(model, &loaded.tokenizer, BatchLimits::default()).unwrap();
        let prepared = scorer.prepare(&loaded.tokenizer, 8192, &prompt).unwrap();
        scores.push(scorer.score_batch(model, &mut PrefixCache::default(), &[prepared], 0).unwrap().0.remove(0));
    }
    assert_eq!(scores[0].answer, scores[1].answer);
    for (a, b) in scores[0].probs.iter().zip(&scores[1].probs) {
        assert!((a - b).abs() < 1e-4, "{:?} vs {:?}", scores[0].probs, scores[1].probs);
    }
}

#[test]
fn greedy_decoding_knows_the_capital_of_france() {
    let loaded = default_model();
    let prompt =
        loaded.chat_template().unwrap().render(&[ChatMessage::user("What is the capital of France?")], true).unwrap();
    let tokens = loaded.tokenizer.encode(&prompt).unwrap();
    let (generation, _) = generate(
        &loaded.model,
        &loaded.tokenizer,
        &mut PrefixCache::default(),
        &tokens,
        &SamplingParams::greedy(24),
        || false,
    )
    .unwrap();
    assert!(generation.text.contains("Paris"), "reply: {:?}", generation.text);
}

/// Cloze scores from the inference path (a cached prompt, every row of each option) against the
/// same per-character log-likelihoods computed independently through the training forward pass
/// over each whole sequence.
#[test]
fn cloze_scores_are_the_per_character_option_likelihoods() {
    use culturespa_engine::cloze::{score_cloze, ClozePrompt};
    let loaded = default_model();
    let (model, tokenizer) = (&loaded.model, &loaded.tokenizer);
    let option_texts: Vec<String> =
        ["Very important", "Rather important", "Not very important", "Not at all important"].map(String::from).into();
    let mut cache = PrefixCache::default();
    for question in ["How important is family in your life?", "How important is work in your life?"] {
        let text = chatml(UNAWARE_SYSTEM, &format!("{question} Answer with the option's text."));
        let prompt = ClozePrompt {
            id: question.into(),
            text: text.clone(),
            choices: (1..=4).map(|c| c.to_string()).collect(),
            option_texts: option_texts.clone(),
        };
        let (scores, evaluated) = score_cloze(model, tokenizer, &mut cache, &prompt).unwrap();
        assert!(evaluated > 0);

        let prompt_tokens = tokenizer.encode(&text).unwrap();
        let normalised: Vec<f64> = option_texts
            .iter()
            .map(|option| {
                let option_tokens = tokenizer.encode(option).unwrap();
                let sequence: Vec<u32> = prompt_tokens.iter().chain(&option_tokens).copied().collect();
                let rows: Vec<usize> = (prompt_tokens.len() - 1..sequence.len() - 1).collect();
                let hidden = model.forward_rows(&[&sequence], &[rows]).unwrap();
                let logits = model.logits(&hidden).unwrap().to_vec2::<f32>().unwrap();
                let log_likelihood: f64 = logits
                    .iter()
                    .zip(&option_tokens)
                    .map(|(row, &id)| {
                        let max = row.iter().copied().fold(f32::MIN, f32::max) as f64;
                        let total: f64 = row.iter().map(|&l| (l as f64 - max).exp()).sum();
                        row[id as usize] as f64 - max - total.ln()
                    })
                    .sum();
                log_likelihood / option.chars().count() as f64
            })
            .collect();
        let max = normalised.iter().copied().fold(f64::MIN, f64::max);
        let total: f64 = normalised.iter().map(|s| (s - max).exp()).sum();
        for (probability, score) in scores.probs.iter().zip(&normalised) {
            let expected = (score - max).exp() / total;
            assert!((probability - expected).abs() < 1e-4, "{question}: {probability} vs {expected}");
        }
        let best = normalised.iter().enumerate().fold(0, |b, (i, s)| if *s > normalised[b] { i } else { b });
        assert_eq!(scores.answer, (best + 1).to_string());
    }
}
