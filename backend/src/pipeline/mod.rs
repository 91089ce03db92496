//! The data side of the pipeline: the paper's prompts, byte for byte, and what happens to
//! generated questions before any model answers them.
//!
//! - [`answer_prompt`]: the answer prompts of every [`shared::PromptVariant`].
//! - [`generation_prompt`]: the question-generation prompt and its example selection.
//! - [`generation_reply`]: reading a model's generated question out of its reply.
//! - [`generated_files`]: reading generated-question files (`.json` or `.json.gz`).
//! - [`question_filter`]: the paper's four filters after generation.
//! - [`import`]: filtering files into a JSON file or a stored question set.
//! - [`python_literal`]: Python's `repr` of a list of strings, and its inverse.

pub mod answer_prompt;
pub mod calibration;
pub mod generated_files;
pub mod generation_prompt;
pub mod generation_reply;
pub mod import;
pub mod python_literal;
pub mod question_filter;
pub mod run_file;
pub mod runner;

pub use answer_prompt::{answer_prompt, AnswerPromptError};
pub use generated_files::{read_generated_files, GeneratedFileError, GeneratedRecord};
pub use generation_prompt::{generation_prompt, select_examples, GenerationExample};
pub use generation_reply::{parse_generation_reply, GeneratedQuestion, ReplyError};
pub use import::{filter_generated_files, import_generated_files, write_questions_json, ImportError, ImportSummary};
pub use question_filter::{filter_generated, FilterOutcome, FilterSummary};

/// A prompt as a chat: the system and the user message. Rendering it with a model's chat
/// template is the engine's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatPrompt {
    pub system: String,
    pub user: String,
}
