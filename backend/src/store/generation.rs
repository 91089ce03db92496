//! The Generate stage's records: every reply drawn for a (topic, question index) slot, what was
//! read from it, and what the paper's filters did to it.

use super::numbered;
use super::{from_json, to_json, Store, StoreError, StoreTransaction};

/// The question set a run's generated (filtered) questions are stored as.
pub fn generated_set_name(run_id: i64) -> String {
    format!("{GENERATED_SET_PREFIX}{run_id}{GENERATED_SET_SUFFIX}")
}

/// Whether `name` is the shape of a run's generated set (`run-7-generated`), which no import may take.
pub fn is_generated_set_name(name: &str) -> bool {
    name.strip_prefix(GENERATED_SET_PREFIX)
        .and_then(|rest| rest.strip_suffix(GENERATED_SET_SUFFIX))
        .is_some_and(|run_id| !run_id.is_empty() && run_id.bytes().all(|byte| byte.is_ascii_digit()))
}

const GENERATED_SET_PREFIX: &str = "run-";
const GENERATED_SET_SUFFIX: &str = "-generated";

/// One reply of the Generate stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationAttempt {
    pub topic: u8,
    pub question_index: u32,
    pub attempt: u32,
    /// The sampling seed of the reply (below 2^63, so SQLite stores it as it is).
    pub seed: u64,
    /// The generation user prompt.
    pub prompt: String,
    pub raw_reply: String,
    /// The question and options read from the reply, or why none could be read.
    pub parsed: Result<(String, Vec<String>), String>,
    /// What the filters did (`kept`, `rewritten`, `duplicate`, `digit_only`, `numbering`) and the
    /// kept question's id; `None` until the stage filtered.
    pub filter_verdict: Option<String>,
    pub question_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    topic: i64,
    question_index: i64,
    attempt: i64,
    seed: i64,
    prompt: String,
    raw_reply: String,
    question: Option<String>,
    options_json: Option<String>,
    parse_error: Option<String>,
    filter_verdict: Option<String>,
    question_id: Option<String>,
}

impl AttemptRow {
    fn into_attempt(self) -> Result<GenerationAttempt, StoreError> {
        let invalid = |column: &str| StoreError::Invalid(format!("generation_attempts.{column}"));
        let parsed = match (self.question, self.options_json, self.parse_error) {
            (Some(question), Some(options), None) => {
                Ok((question, from_json("generation_attempts", "options_json", &options)?))
            }
            (None, None, Some(error)) => Err(error),
            _ => return Err(invalid("question")),
        };
        Ok(GenerationAttempt {
            topic: u8::try_from(self.topic).map_err(|_| invalid("topic"))?,
            question_index: u32::try_from(self.question_index).map_err(|_| invalid("question_index"))?,
            attempt: u32::try_from(self.attempt).map_err(|_| invalid("attempt"))?,
            seed: u64::try_from(self.seed).map_err(|_| invalid("seed"))?,
            prompt: self.prompt,
            raw_reply: self.raw_reply,
            parsed,
            filter_verdict: self.filter_verdict,
            question_id: self.question_id,
        })
    }
}

impl Store {
    /// Every reply the run's Generate stage stored, by topic, question index and attempt.
    pub async fn generation_attempts(&self, run_id: i64) -> Result<Vec<GenerationAttempt>, StoreError> {
        let rows: Vec<AttemptRow> = sqlx::query_as(numbered(
            "SELECT topic, question_index, attempt, seed, prompt, raw_reply, question, options_json, parse_error,
                    filter_verdict, question_id
             FROM generation_attempts WHERE run_id = ? ORDER BY topic, question_index, attempt",
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AttemptRow::into_attempt).collect()
    }
}

impl StoreTransaction {
    /// Stores one reply of the Generate stage. A slot's attempt is stored once: storing it again
    /// is a conflict (the runner never redoes stored work).
    pub async fn insert_generation_attempt(
        &mut self,
        run_id: i64,
        attempt: &GenerationAttempt,
    ) -> Result<(), StoreError> {
        let seed = i64::try_from(attempt.seed)
            .map_err(|_| StoreError::Conflict(format!("seed {} does not fit a stored seed", attempt.seed)))?;
        let (question, options_json, parse_error) = match &attempt.parsed {
            Ok((question, options)) => (Some(question.as_str()), Some(to_json(options)), None),
            Err(error) => (None, None, Some(error.as_str())),
        };
        let inserted = sqlx::query(numbered(
            "INSERT INTO generation_attempts
                (run_id, topic, question_index, attempt, seed, prompt, raw_reply, question, options_json, parse_error)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        ))
        .bind(run_id)
        .bind(i64::from(attempt.topic))
        .bind(i64::from(attempt.question_index))
        .bind(i64::from(attempt.attempt))
        .bind(seed)
        .bind(&attempt.prompt)
        .bind(&attempt.raw_reply)
        .bind(question)
        .bind(options_json)
        .bind(parse_error)
        .execute(&mut *self.transaction)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "run {run_id}: topic {} question {} attempt {} is stored already",
                attempt.topic, attempt.question_index, attempt.attempt
            )));
        }
        Ok(())
    }

    /// Records what the filters did to a stored reply's question.
    pub async fn set_generation_verdict(
        &mut self,
        run_id: i64,
        (topic, question_index, attempt): (u8, u32, u32),
        verdict: &str,
        question_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query(numbered(
            "UPDATE generation_attempts SET filter_verdict = ?, question_id = ?
             WHERE run_id = ? AND topic = ? AND question_index = ? AND attempt = ? AND question IS NOT NULL",
        ))
        .bind(verdict)
        .bind(question_id)
        .bind(run_id)
        .bind(i64::from(topic))
        .bind(i64::from(question_index))
        .bind(i64::from(attempt))
        .execute(&mut *self.transaction)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "run {run_id}: a question from topic {topic} question {question_index} attempt {attempt}"
            )));
        }
        Ok(())
    }
}
