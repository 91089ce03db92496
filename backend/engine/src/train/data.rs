//! Training data: SFT files (ours, LLaMA-Factory's alpaca, `messages` records) and their
//! tokenized examples (prompt without loss, answer with it).

use std::path::Path;

use serde::Deserialize;

use crate::chat_template::{ChatMessage, ChatTemplate};
use crate::error::{EngineError, Result};
use crate::loader::LoadedModel;
use crate::tokenizer::TextTokenizer;

/// One supervised example: the prompt (no loss) and the answer tokens (loss).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingExample {
    pub id: String,
    pub prompt_tokens: Vec<u32>,
    pub target_tokens: Vec<u32>,
}

/// A record of an SFT file: LLaMA-Factory's alpaca (`instruction`, `input`, `output`, `system`)
/// or OpenAI-style `messages`.
#[derive(Debug, Clone, PartialEq)]
pub struct SftRecord {
    /// Where it came from, for errors (`file:line`).
    pub id: String,
    pub system: Option<String>,
    pub user: String,
    pub answer: String,
}

#[derive(Deserialize)]
struct AlpacaLine {
    instruction: String,
    #[serde(default)]
    input: String,
    output: String,
    #[serde(default)]
    system: Option<String>,
}

#[derive(Deserialize)]
struct MessagesLine {
    messages: Vec<MessageLine>,
}

#[derive(Deserialize)]
struct MessageLine {
    role: String,
    content: String,
}

/// Reads an SFT file: JSON Lines, or a JSON array (LLaMA-Factory's files), of alpaca or
/// `messages` records. A broken record is an error naming its line (or index in an array).
pub fn read_sft_file(path: &Path) -> Result<Vec<SftRecord>> {
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
    parse_sft_text(&text, path)
}

/// As [`read_sft_file`] for text already in memory; `path` names it in errors.
pub fn parse_sft_text(text: &str, path: &Path) -> Result<Vec<SftRecord>> {
    let broken =
        |line: usize, reason: String| EngineError::InvalidTrainingData { path: path.to_path_buf(), line, reason };
    let mut records = Vec::new();
    if text.trim_start().starts_with('[') {
        let values: Vec<serde_json::Value> =
            serde_json::from_str(text).map_err(|e| broken(e.line(), format!("not a JSON array of records: {e}")))?;
        for (index, value) in values.into_iter().enumerate() {
            let id = format!("{}[{index}]", path.display());
            records.push(parse_record(value, id).map_err(|reason| broken(0, format!("record {index}: {reason}")))?);
        }
    } else {
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|e| broken(index + 1, format!("not JSON: {e}")))?;
            let id = format!("{}:{}", path.display(), index + 1);
            records.push(parse_record(value, id).map_err(|reason| broken(index + 1, reason))?);
        }
    }
    if records.is_empty() {
        return Err(broken(0, "no training records".into()));
    }
    Ok(records)
}

fn parse_record(value: serde_json::Value, id: String) -> std::result::Result<SftRecord, String> {
    if value.get("messages").is_some() {
        let record: MessagesLine = serde_json::from_value(value).map_err(|e| format!("a messages record: {e}"))?;
        let mut system = None;
        let mut user = None;
        let mut answer = None;
        for message in record.messages {
            match message.role.as_str() {
                "system" => system = Some(message.content),
                "user" => user = Some(message.content),
                "assistant" => answer = Some(message.content),
                other => return Err(format!("unknown role {other:?}")),
            }
        }
        let user = user.ok_or("no user message")?;
        let answer = answer.ok_or("no assistant message")?;
        return Ok(SftRecord { id, system, user, answer });
    }
    let record: AlpacaLine = serde_json::from_value(value)
        .map_err(|e| format!("neither a messages record nor an alpaca record (instruction, output): {e}"))?;
    // LLaMA-Factory joins instruction and input with a newline.
    let user =
        if record.input.is_empty() { record.instruction } else { format!("{}\n{}", record.instruction, record.input) };
    Ok(SftRecord { id, system: record.system.filter(|s| !s.is_empty()), user, answer: record.output })
}

/// Tokenizes a record with the model's chat template: the prompt up to the assistant's turn
/// opener, and the answer with the template's end of turn (the tokens that carry the loss).
pub fn prepare_example(
    record: &SftRecord,
    template: &ChatTemplate,
    tokenizer: &TextTokenizer,
    context_length: usize,
) -> Result<TrainingExample> {
    let mut messages = Vec::new();
    if let Some(system) = &record.system {
        messages.push(ChatMessage::system(system.clone()));
    }
    messages.push(ChatMessage::user(record.user.clone()));
    let prompt = template.render(&messages, true)?;
    messages.push(ChatMessage::assistant(record.answer.clone()));
    let full = template.render(&messages, false)?;
    let answer_text = full.strip_prefix(&prompt).ok_or_else(|| {
        EngineError::ChatTemplate(format!("{}: the rendered conversation does not extend its prompt", record.id))
    })?;
    let prompt_tokens = tokenizer.encode(&prompt)?;
    let target_tokens = tokenizer.encode(answer_text.trim_end_matches('\n'))?;
    if prompt_tokens.is_empty() || target_tokens.is_empty() {
        return Err(EngineError::EmptyPrompt { id: record.id.clone() });
    }
    let tokens = prompt_tokens.len() + target_tokens.len();
    if tokens > context_length {
        return Err(EngineError::PromptTooLong { id: record.id.clone(), tokens, context: context_length });
    }
    Ok(TrainingExample { id: record.id.clone(), prompt_tokens, target_tokens })
}

/// Every record tokenized for `loaded`'s model (see [`prepare_example`]).
pub fn prepare_examples(records: &[SftRecord], loaded: &LoadedModel) -> Result<Vec<TrainingExample>> {
    let template = loaded.chat_template()?;
    let context = loaded.model.config().context_length;
    records.iter().map(|record| prepare_example(record, template, &loaded.tokenizer, context)).collect()
}
