//! The question-generation prompt of the paper, byte for byte, the choice of its five examples
//! (three WVS seeds of the topic and two questions already generated for it, shuffled), and a
//! reader that takes a released prompt apart again.

use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::python_literal::{parse_python_str_list, python_repr_str_list, PythonLiteralError};
use super::ChatPrompt;
use crate::survey::SurveyData;

pub const GENERATION_SYSTEM_PROMPT: &str = "You are a social scientist on the World Values Survey team, dedicated to studying and understanding shifts in human values across nearly 100 countries. Your work involves rigorous research designs and aims to capture a comprehensive view of human beliefs through nationally representative surveys.";

/// Examples in one generation prompt.
pub const EXAMPLES_PER_PROMPT: usize = 5;
/// Of those, WVS seed questions once the topic has enough generated ones.
pub const SEED_EXAMPLES_PER_PROMPT: usize = 3;

const PROMPT_OPENING: &str =
    "Please come up with one new survey question.\nMake sure your question addresses the topic of ";
const EXAMPLES_INTRO: &str = ".\nFor reference, here are some example questions:\n";
const PROMPT_CLOSING_OPENING: &str =
    "Note that your question should be clearly different from the example questions provided and must pertain to the topic of ";
const PROMPT_CLOSING: &str = ".\nPlease return your question in JSON format, for example:{\"Question:\" ..., \"Options\": [..., ..., ...]}.\nReturn the JSON data only and do not include any additional text or information.\n";

/// One example question shown to the generating model: its text and its option texts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GenerationExample {
    pub question: String,
    pub options: Vec<String>,
}

/// The generator of the example choice: ChaCha8, so a seed gives the same choice on every machine.
pub type ExampleRng = ChaCha8Rng;

pub fn example_rng(seed: u64) -> ExampleRng {
    ExampleRng::seed_from_u64(seed)
}

/// The seed examples of a topic: its kept WVS questions, in WVS order.
pub fn seed_examples(survey: &SurveyData, topic: u8) -> Vec<GenerationExample> {
    survey
        .questions
        .iter()
        .filter(|question| question.topic == topic)
        .map(|question| GenerationExample {
            question: question.text.clone(),
            options: question.options.iter().map(|option| option.text.clone()).collect(),
        })
        .collect()
}

/// Picks the examples of one prompt: up to two of the questions generated so far for the topic,
/// seeds for the rest (three, more while fewer than two are generated), all shuffled together.
pub fn select_examples<'a, R: Rng + ?Sized>(
    seeds: &'a [GenerationExample],
    generated: &'a [GenerationExample],
    rng: &mut R,
) -> Vec<&'a GenerationExample> {
    let generated_wanted = EXAMPLES_PER_PROMPT - SEED_EXAMPLES_PER_PROMPT.min(seeds.len());
    let generated_count = generated_wanted.min(generated.len());
    let seed_count = (EXAMPLES_PER_PROMPT - generated_count).min(seeds.len());
    let mut chosen: Vec<&GenerationExample> =
        rand::seq::index::sample(rng, seeds.len(), seed_count).into_iter().map(|index| &seeds[index]).collect();
    chosen.extend(
        rand::seq::index::sample(rng, generated.len(), generated_count).into_iter().map(|index| &generated[index]),
    );
    chosen.shuffle(rng);
    chosen
}

/// The generation user prompt for a topic (its full name, e.g. `Happiness and Well-being`).
pub fn generation_user_prompt<'a>(
    topic_name: &str,
    examples: impl IntoIterator<Item = &'a GenerationExample>,
) -> String {
    let rendered: Vec<String> = examples
        .into_iter()
        .enumerate()
        .map(|(position, example)| {
            format!(
                "#Example {}:\nQuestion: {}\nOptions: {}\n",
                position + 1,
                example.question,
                python_repr_str_list(&example.options)
            )
        })
        .collect();
    format!(
        "{PROMPT_OPENING}{topic_name}{EXAMPLES_INTRO}{}\n{PROMPT_CLOSING_OPENING}{topic_name}{PROMPT_CLOSING}",
        rendered.join("\n")
    )
}

/// The generation prompt: the social-scientist system prompt and the user prompt.
pub fn generation_prompt<'a>(
    topic_name: &str,
    examples: impl IntoIterator<Item = &'a GenerationExample>,
) -> ChatPrompt {
    ChatPrompt { system: GENERATION_SYSTEM_PROMPT.to_string(), user: generation_user_prompt(topic_name, examples) }
}

/// A generation user prompt read back: the topic name and the examples it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedGenerationPrompt {
    pub topic_name: String,
    pub examples: Vec<GenerationExample>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerationPromptParseError {
    #[error("byte {position}: expected {expected:?}")]
    Expected { position: usize, expected: &'static str },
    #[error("byte {position}: the options of example {example}: {error}")]
    Options { position: usize, example: usize, error: PythonLiteralError },
}

/// Reads the topic and the examples out of a generation user prompt (such as the `prompt` field
/// of the released records). Only the parts up to the closing note are checked.
pub fn parse_generation_prompt(prompt: &str) -> Result<ParsedGenerationPrompt, GenerationPromptParseError> {
    let position_of = |rest: &str| prompt.len() - rest.len();
    let expected =
        |rest: &str, expected| GenerationPromptParseError::Expected { position: position_of(rest), expected };
    let rest = prompt.strip_prefix(PROMPT_OPENING).ok_or_else(|| expected(prompt, PROMPT_OPENING))?;
    let (topic_name, mut rest) = rest.split_once(EXAMPLES_INTRO).ok_or_else(|| expected(rest, EXAMPLES_INTRO))?;
    let mut examples = Vec::with_capacity(EXAMPLES_PER_PROMPT);
    loop {
        let heading = format!("#Example {}:\nQuestion: ", examples.len() + 1);
        rest = rest.strip_prefix(heading.as_str()).ok_or_else(|| expected(rest, "#Example {i}:\nQuestion: "))?;
        let (question, after_question) = rest.split_once("\nOptions: ").ok_or_else(|| expected(rest, "\nOptions: "))?;
        let (options, after_options) =
            parse_python_str_list(after_question).map_err(|error| GenerationPromptParseError::Options {
                position: position_of(after_question),
                example: examples.len() + 1,
                error,
            })?;
        examples.push(GenerationExample { question: question.to_string(), options });
        rest = after_options.strip_prefix("\n\n").ok_or_else(|| expected(after_options, "\n\n"))?;
        if rest.starts_with(PROMPT_CLOSING_OPENING) {
            return Ok(ParsedGenerationPrompt { topic_name: topic_name.to_string(), examples });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(tag: &str) -> GenerationExample {
        GenerationExample { question: format!("Question {tag}?"), options: vec!["Yes".into(), "No".into()] }
    }

    #[test]
    fn the_prompt_follows_the_template() {
        let examples = [
            GenerationExample { question: "How happy are you?".into(), options: vec!["Very".into(), "Not".into()] },
            GenerationExample { question: "Trust?".into(), options: vec!["I don't know".into()] },
        ];
        let prompt = generation_prompt("Happiness and Well-being", &examples);
        assert_eq!(prompt.system, GENERATION_SYSTEM_PROMPT);
        assert_eq!(
            prompt.user,
            "Please come up with one new survey question.\nMake sure your question addresses the topic of Happiness and Well-being.\nFor reference, here are some example questions:\n#Example 1:\nQuestion: How happy are you?\nOptions: ['Very', 'Not']\n\n#Example 2:\nQuestion: Trust?\nOptions: [\"I don't know\"]\n\nNote that your question should be clearly different from the example questions provided and must pertain to the topic of Happiness and Well-being.\nPlease return your question in JSON format, for example:{\"Question:\" ..., \"Options\": [..., ..., ...]}.\nReturn the JSON data only and do not include any additional text or information.\n"
        );
        let parsed = parse_generation_prompt(&prompt.user).unwrap();
        assert_eq!(parsed.topic_name, "Happiness and Well-being");
        assert_eq!(parsed.examples, examples);
    }

    #[test]
    fn seeds_fill_in_while_fewer_than_two_are_generated() {
        let seeds: Vec<GenerationExample> = (0..10).map(|i| example(&format!("seed {i}"))).collect();
        let generated: Vec<GenerationExample> = (0..10).map(|i| example(&format!("generated {i}"))).collect();
        let mut rng = example_rng(42);
        for (generated_so_far, expected_generated) in [(0, 0), (1, 1), (2, 2), (3, 2), (10, 2)] {
            let chosen = select_examples(&seeds, &generated[..generated_so_far], &mut rng);
            assert_eq!(chosen.len(), EXAMPLES_PER_PROMPT);
            let from_generated = chosen.iter().filter(|e| e.question.contains("generated")).count();
            assert_eq!(from_generated, expected_generated, "with {generated_so_far} generated");
            let distinct: std::collections::HashSet<&str> = chosen.iter().map(|e| e.question.as_str()).collect();
            assert_eq!(distinct.len(), EXAMPLES_PER_PROMPT, "no example twice");
        }
    }

    #[test]
    fn a_topic_with_few_seeds_takes_more_generated_examples() {
        let seeds = vec![example("only seed")];
        let generated: Vec<GenerationExample> = (0..10).map(|i| example(&format!("generated {i}"))).collect();
        let chosen = select_examples(&seeds, &generated, &mut example_rng(1));
        assert_eq!(chosen.len(), EXAMPLES_PER_PROMPT);
        assert_eq!(chosen.iter().filter(|e| e.question.contains("seed")).count(), 1);
    }

    #[test]
    fn the_choice_depends_on_the_seed_only() {
        let seeds: Vec<GenerationExample> = (0..45).map(|i| example(&format!("seed {i}"))).collect();
        let generated: Vec<GenerationExample> = (0..100).map(|i| example(&format!("generated {i}"))).collect();
        let first = select_examples(&seeds, &generated, &mut example_rng(42));
        let again = select_examples(&seeds, &generated, &mut example_rng(42));
        let other = select_examples(&seeds, &generated, &mut example_rng(43));
        assert_eq!(first, again);
        assert_ne!(first, other);
    }

    #[test]
    fn broken_prompts_do_not_parse() {
        assert!(parse_generation_prompt("Hello").is_err());
        let prompt = generation_user_prompt("Corruption", &[example("a")]);
        assert!(parse_generation_prompt(&prompt.replace("['Yes', 'No']", "['Yes', 'No'")).is_err());
        assert!(parse_generation_prompt(&prompt.replace("#Example 1", "#Example 2")).is_err());
    }
}
