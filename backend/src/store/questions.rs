use shared::{Question, QuestionOption, QuestionSource};

use super::numbered;
use super::{from_json, to_json, Store, StoreError, StoreTransaction, WVS_SET};

#[derive(sqlx::FromRow)]
struct QuestionRow {
    question_set: String,
    question_id: String,
    topic: i64,
    text: String,
    options_json: String,
}

impl QuestionRow {
    fn into_question(self) -> Result<Question, StoreError> {
        let options: Vec<QuestionOption> = from_json("questions", "options_json", &self.options_json)?;
        let source = if self.question_set == WVS_SET {
            QuestionSource::Wvs
        } else {
            QuestionSource::Generated { question_set: self.question_set }
        };
        Ok(Question { question_id: self.question_id, text: self.text, options, topic: self.topic as u8, source })
    }
}

fn question_set_of(question: &Question) -> &str {
    match &question.source {
        QuestionSource::Wvs => WVS_SET,
        QuestionSource::Generated { question_set } => question_set,
    }
}

impl Store {
    /// Stores questions in one transaction; a question already stored (same set and id) is kept as
    /// it is. Returns how many were new.
    pub async fn insert_questions(&self, questions: &[Question], provenance: &str) -> Result<u64, StoreError> {
        let mut transaction = self.begin().await?;
        let inserted = transaction.insert_questions(questions, provenance).await?;
        transaction.commit().await?;
        Ok(inserted)
    }
}

impl StoreTransaction {
    /// Stores questions; a question already stored (same set and id) is kept as it is. Returns
    /// how many were new.
    pub async fn insert_questions(&mut self, questions: &[Question], provenance: &str) -> Result<u64, StoreError> {
        let mut inserted = 0;
        for question in questions {
            inserted += sqlx::query(numbered(
                "INSERT INTO questions (question_set, question_id, topic, text, options_json, provenance)
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            ))
            .bind(question_set_of(question))
            .bind(&question.question_id)
            .bind(i64::from(question.topic))
            .bind(&question.text)
            .bind(to_json(&question.options))
            .bind(provenance)
            .execute(&mut *self.transaction)
            .await?
            .rows_affected();
        }
        Ok(inserted)
    }
}

impl Store {
    /// Questions of a set in id order of insertion, optionally of one topic, paged.
    pub async fn questions(
        &self,
        question_set: &str,
        topic: Option<u8>,
        limit: u32,
        offset: u32,
    ) -> Result<(u64, Vec<Question>), StoreError> {
        let topic = topic.map(i64::from);
        let total: i64 = sqlx::query_scalar(numbered(
            "SELECT COUNT(*) FROM questions WHERE question_set = ? AND (? IS NULL OR topic = ?)",
        ))
        .bind(question_set)
        .bind(topic)
        .bind(topic)
        .fetch_one(&self.pool)
        .await?;
        let rows: Vec<QuestionRow> = sqlx::query_as(numbered(
            "SELECT question_set, question_id, topic, text, options_json FROM questions
             WHERE question_set = ? AND (? IS NULL OR topic = ?) ORDER BY rowid LIMIT ? OFFSET ?",
        ))
        .bind(question_set)
        .bind(topic)
        .bind(topic)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await?;
        let items = rows.into_iter().map(QuestionRow::into_question).collect::<Result<_, _>>()?;
        Ok((total as u64, items))
    }

    pub async fn question(&self, question_set: &str, question_id: &str) -> Result<Question, StoreError> {
        let row: Option<QuestionRow> = sqlx::query_as(numbered(
            "SELECT question_set, question_id, topic, text, options_json FROM questions
             WHERE question_set = ? AND question_id = ?",
        ))
        .bind(question_set)
        .bind(question_id)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or_else(|| StoreError::NotFound(format!("question {question_set}/{question_id}")))?.into_question()
    }
}
