//! The generation prompt against the paper's released records: every one of the 13,000 `prompt`
//! fields re-renders byte for byte from the examples it shows, each traced back to a WVS seed of
//! its topic or an earlier generated question of its file (by question and options).

use std::collections::HashMap;
use std::path::PathBuf;

use culturespa::pipeline::generated_files::read_generated_file;
use culturespa::pipeline::generation_prompt::{
    generation_user_prompt, parse_generation_prompt, seed_examples, GenerationExample, EXAMPLES_PER_PROMPT,
};
use culturespa::survey::{SurveyData, TOPICS};

const RELEASED_RECORDS_PER_TOPIC: usize = 1000;

fn released_file(topic: usize) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/generated/Meta-Llama-3-8B-Instruct"))
        .join(format!("generated_questions_topic_{topic}_from_all_seed.json.gz"))
}

#[test]
fn the_template_rerenders_all_13000_released_prompts() {
    let survey = SurveyData::embedded().unwrap();
    let mut reproduced = 0;
    for (topic, topic_spec) in TOPICS.iter().enumerate() {
        let records = read_generated_file(&released_file(topic), 0).unwrap();
        assert_eq!(records.len(), RELEASED_RECORDS_PER_TOPIC);
        let seeds = seed_examples(&survey, topic as u8);
        let seed_index: HashMap<&GenerationExample, usize> =
            seeds.iter().enumerate().map(|(position, seed)| (seed, position)).collect();
        let mut generated: Vec<GenerationExample> = Vec::with_capacity(records.len());
        let mut generated_index: HashMap<GenerationExample, usize> = HashMap::new();
        for (record_index, record) in records.iter().enumerate() {
            let context = format!("topic {topic}, record {record_index}");
            let prompt = record.prompt.as_deref().unwrap();
            let parsed = parse_generation_prompt(prompt).unwrap_or_else(|error| panic!("{context}: {error}"));
            assert_eq!(parsed.topic_name, topic_spec.name, "{context}");
            assert_eq!(parsed.examples.len(), EXAMPLES_PER_PROMPT, "{context}");

            let mut sources: Vec<&GenerationExample> = Vec::with_capacity(EXAMPLES_PER_PROMPT);
            let mut from_generated = 0;
            for example in &parsed.examples {
                let source = match (seed_index.get(example), generated_index.get(example)) {
                    (Some(&position), _) => &seeds[position],
                    (None, Some(&position)) => {
                        from_generated += 1;
                        &generated[position]
                    }
                    (None, None) => {
                        panic!("{context}: example {:?} is neither a seed nor generated before", example.question)
                    }
                };
                sources.push(source);
            }
            // Seeds fill in while fewer than two questions are generated.
            assert_eq!(from_generated, record_index.min(2), "{context}");

            let rendered = generation_user_prompt(topic_spec.name, sources);
            if rendered != prompt {
                let differs_at = rendered.bytes().zip(prompt.bytes()).take_while(|(a, b)| a == b).count();
                panic!("{context}: differs at byte {differs_at}: {:?}", &prompt[differs_at.saturating_sub(40)..]);
            }
            reproduced += 1;

            let example = GenerationExample { question: record.question.clone(), options: record.options.clone() };
            generated_index.entry(example.clone()).or_insert(generated.len());
            generated.push(example);
        }
    }
    assert_eq!(reproduced, 13_000);
}
