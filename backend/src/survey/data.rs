//! Loading and validating the WVS data files, from the copies embedded in the binary or from a
//! folder that holds the same four files.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use shared::{CodeShare, Culture, HumanDistribution, Question, QuestionOption, QuestionSource, Topic};

use super::catalog::{codes_start_at_zero, is_excluded, topic_of, CULTURES, TOPICS};

pub const QUESTIONS_FILE: &str = "wvs_questions.json";
pub const PROPORTIONS_FILE: &str = "proportions_group_by_country.json";
pub const SIMILARITY_FILE: &str = "country_similarity.json";
pub const EXAMPLES_FILE: &str = "self_alignment_examples.json";
/// The files a WVS data folder must hold.
pub const DATA_FILES: [&str; 4] = [QUESTIONS_FILE, PROPORTIONS_FILE, SIMILARITY_FILE, EXAMPLES_FILE];

const EXPECTED_KEPT_QUESTIONS: usize = 259;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{file}: cannot read: {error}")]
    Read { file: PathBuf, error: std::io::Error },
    #[error("{file}: line {line}, column {column}: {message}")]
    Parse { file: PathBuf, line: usize, column: usize, message: String },
    #[error("{file}: {field}: {message}")]
    Invalid { file: PathBuf, field: String, message: String },
}

/// One record of `wvs_questions.json`, as released (all 291, the excluded ones too).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WvsRecord {
    #[serde(rename = "Q_id")]
    pub question_id: String,
    pub question: String,
    pub option_lst: Vec<String>,
}

/// The validated WVS data.
#[derive(Debug, Clone)]
pub struct SurveyData {
    /// All 291 released records, in file order (the question filter deduplicates against them).
    pub records: Vec<WvsRecord>,
    /// The 18 cultures in the paper's order.
    pub cultures: Vec<Culture>,
    /// The 13 topics, index = position.
    pub topics: Vec<Topic>,
    /// The 259 kept questions in WVS order.
    pub questions: Vec<Question>,
    question_index: HashMap<String, usize>,
    /// (country code, question id) → human distribution (only cells with answers).
    human: HashMap<(String, String), HumanDistribution>,
    /// country → other country → similarity score (×100, one decimal).
    similarity: BTreeMap<String, BTreeMap<String, f64>>,
    /// question id → the other kept questions, most similar first.
    examples: HashMap<String, Vec<String>>,
}

/// The raw texts of the four files, with the names errors should show.
struct Sources<'a> {
    dir: PathBuf,
    questions: &'a str,
    proportions: &'a str,
    similarity: &'a str,
    examples: &'a str,
}

macro_rules! embedded {
    ($file:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/wvs/", $file))
    };
}

impl SurveyData {
    /// The copies shipped in `data/wvs/` and embedded at build time.
    pub fn embedded() -> Result<Self, DataError> {
        Self::from_sources(Sources {
            dir: PathBuf::from("<embedded>/data/wvs"),
            questions: embedded!("wvs_questions.json"),
            proportions: embedded!("proportions_group_by_country.json"),
            similarity: embedded!("country_similarity.json"),
            examples: embedded!("self_alignment_examples.json"),
        })
    }

    /// Reads the four files from `dir`.
    pub fn from_dir(dir: &Path) -> Result<Self, DataError> {
        let read = |name: &str| {
            let file = dir.join(name);
            std::fs::read_to_string(&file).map_err(|error| DataError::Read { file, error })
        };
        let (questions, proportions) = (read(QUESTIONS_FILE)?, read(PROPORTIONS_FILE)?);
        let (similarity, examples) = (read(SIMILARITY_FILE)?, read(EXAMPLES_FILE)?);
        Self::from_sources(Sources {
            dir: dir.to_path_buf(),
            questions: &questions,
            proportions: &proportions,
            similarity: &similarity,
            examples: &examples,
        })
    }

    fn from_sources(sources: Sources<'_>) -> Result<Self, DataError> {
        let file = |name: &str| sources.dir.join(name);
        let records: Vec<WvsRecord> = parse(&file(QUESTIONS_FILE), sources.questions)?;
        let questions = kept_questions(&file(QUESTIONS_FILE), &records)?;
        let question_index: HashMap<String, usize> =
            questions.iter().enumerate().map(|(position, question)| (question.question_id.clone(), position)).collect();

        type Proportions = BTreeMap<String, BTreeMap<String, serde_json::Map<String, serde_json::Value>>>;
        let proportions: Proportions = parse(&file(PROPORTIONS_FILE), sources.proportions)?;
        let human = human_distributions(&file(PROPORTIONS_FILE), &proportions, &questions, &question_index)?;

        let similarity: BTreeMap<String, BTreeMap<String, f64>> = parse(&file(SIMILARITY_FILE), sources.similarity)?;
        validate_similarity(&file(SIMILARITY_FILE), &similarity)?;

        let examples: HashMap<String, Vec<String>> = parse(&file(EXAMPLES_FILE), sources.examples)?;
        validate_examples(&file(EXAMPLES_FILE), &examples, &question_index)?;

        let cultures = CULTURES
            .iter()
            .map(|spec| Culture {
                country_code: spec.country_code.to_string(),
                name: spec.name.to_string(),
                article: spec.article.to_string(),
                adjective: spec.adjective.to_string(),
                region: spec.region,
                answered_questions: questions
                    .iter()
                    .filter(|q| human.contains_key(&(spec.country_code.to_string(), q.question_id.clone())))
                    .count() as u32,
            })
            .collect();
        let topics = TOPICS
            .iter()
            .enumerate()
            .map(|(index, spec)| Topic {
                index: index as u8,
                name: spec.name.to_string(),
                first_question_id: format!("Q{}", spec.first),
                last_question_id: format!("Q{}", spec.last),
                question_count: questions.iter().filter(|q| q.topic as usize == index).count() as u32,
            })
            .collect();

        Ok(SurveyData { records, cultures, topics, questions, question_index, human, similarity, examples })
    }

    pub fn question(&self, question_id: &str) -> Option<&Question> {
        self.question_index.get(question_id).map(|&position| &self.questions[position])
    }

    pub fn culture(&self, country_code: &str) -> Option<&Culture> {
        self.cultures.iter().find(|culture| culture.country_code == country_code)
    }

    /// The topic with this index (`"3"`) or name (any case).
    pub fn topic(&self, index_or_name: &str) -> Option<&Topic> {
        match index_or_name.parse::<usize>() {
            Ok(index) => self.topics.get(index),
            Err(_) => self.topics.iter().find(|t| t.name.eq_ignore_ascii_case(index_or_name)),
        }
    }

    /// The culture's human answer distribution for a question, if it answered it.
    pub fn human(&self, country_code: &str, question_id: &str) -> Option<&HumanDistribution> {
        self.human.get(&(country_code.to_string(), question_id.to_string()))
    }

    /// The released similarity score (×100) between two different cultures.
    pub fn similarity(&self, country_a: &str, country_b: &str) -> Option<f64> {
        self.similarity.get(country_a)?.get(country_b).copied()
    }

    /// The other cultures ordered from most to least similar to `country_code` (ties keep the
    /// paper's culture order).
    pub fn cultures_by_similarity(&self, country_code: &str) -> Vec<(&str, f64)> {
        let mut others: Vec<(&str, f64)> = CULTURES
            .iter()
            .filter(|spec| spec.country_code != country_code)
            .filter_map(|spec| Some((spec.country_code, self.similarity(country_code, spec.country_code)?)))
            .collect();
        others.sort_by(|a, b| b.1.total_cmp(&a.1));
        others
    }

    /// The other kept questions, most similar to `question_id` first (for self-alignment prompts).
    pub fn similar_questions(&self, question_id: &str) -> &[String] {
        self.examples.get(question_id).map(Vec::as_slice).unwrap_or(&[])
    }
}

fn parse<T: serde::de::DeserializeOwned>(file: &Path, text: &str) -> Result<T, DataError> {
    serde_json::from_str(text).map_err(|error| DataError::Parse {
        file: file.to_path_buf(),
        line: error.line(),
        column: error.column(),
        message: error.to_string(),
    })
}

fn invalid(file: &Path, field: impl Into<String>, message: impl Into<String>) -> DataError {
    DataError::Invalid { file: file.to_path_buf(), field: field.into(), message: message.into() }
}

fn kept_questions(file: &Path, records: &[WvsRecord]) -> Result<Vec<Question>, DataError> {
    let mut questions = Vec::with_capacity(EXPECTED_KEPT_QUESTIONS);
    for (position, record) in records.iter().enumerate() {
        let field = |name: &str| format!("[{position}] ({}).{name}", record.question_id);
        if is_excluded(&record.question_id) {
            continue;
        }
        let topic = topic_of(&record.question_id)
            .ok_or_else(|| invalid(file, field("Q_id"), "not a WVS question id in Q1–Q259"))?;
        if record.question.trim().is_empty() {
            return Err(invalid(file, field("question"), "empty question text"));
        }
        if record.option_lst.len() < 2 {
            return Err(invalid(file, field("option_lst"), "fewer than 2 options"));
        }
        let first_code = u32::from(!codes_start_at_zero(&record.question_id));
        questions.push(Question {
            question_id: record.question_id.clone(),
            text: record.question.clone(),
            options: (first_code..)
                .zip(&record.option_lst)
                .map(|(code, text)| QuestionOption { code, text: text.clone() })
                .collect(),
            topic,
            source: QuestionSource::Wvs,
        });
    }
    if questions.len() != EXPECTED_KEPT_QUESTIONS {
        return Err(invalid(
            file,
            "Q_id",
            format!("expected {EXPECTED_KEPT_QUESTIONS} kept questions, found {}", questions.len()),
        ));
    }
    Ok(questions)
}

fn human_distributions(
    file: &Path,
    proportions: &BTreeMap<String, BTreeMap<String, serde_json::Map<String, serde_json::Value>>>,
    questions: &[Question],
    question_index: &HashMap<String, usize>,
) -> Result<HashMap<(String, String), HumanDistribution>, DataError> {
    let mut human = HashMap::new();
    for spec in &CULTURES {
        let country = spec.country_code;
        let by_question = proportions.get(country).ok_or_else(|| invalid(file, country, "culture missing"))?;
        for (question_id, shares) in by_question {
            let field = |suffix: &str| format!("{country}.{question_id}{suffix}");
            let Some(&position) = question_index.get(question_id) else {
                return Err(invalid(file, field(""), "not a kept WVS question"));
            };
            let question = &questions[position];
            let mut parsed = Vec::with_capacity(shares.len());
            for (code_text, share) in shares {
                let code: u32 = code_text
                    .parse()
                    .map_err(|_| invalid(file, field(&format!(".{code_text}")), "answer code is not a number"))?;
                if !question.options.iter().any(|option| option.code == code) {
                    return Err(invalid(file, field(&format!(".{code_text}")), "answer code is not an option code"));
                }
                let share = share
                    .as_f64()
                    .filter(|share| (0.0..=1.0).contains(share))
                    .ok_or_else(|| invalid(file, field(&format!(".{code_text}")), "share is not a number in [0, 1]"))?;
                parsed.push(CodeShare { code, share });
            }
            if parsed.is_empty() {
                continue; // the culture has no answer for this question
            }
            let distribution = HumanDistribution {
                country_code: country.to_string(),
                question_id: question_id.clone(),
                shares: parsed,
            };
            human.insert((country.to_string(), question_id.clone()), distribution);
        }
    }
    Ok(human)
}

fn validate_similarity(file: &Path, similarity: &BTreeMap<String, BTreeMap<String, f64>>) -> Result<(), DataError> {
    for a in &CULTURES {
        let row = similarity.get(a.country_code).ok_or_else(|| invalid(file, a.country_code, "culture missing"))?;
        for b in CULTURES.iter().filter(|b| b.country_code != a.country_code) {
            let score = row
                .get(b.country_code)
                .ok_or_else(|| invalid(file, format!("{}.{}", a.country_code, b.country_code), "pair missing"))?;
            if !(0.0..=100.0).contains(score) {
                return Err(invalid(file, format!("{}.{}", a.country_code, b.country_code), "score outside 0–100"));
            }
        }
    }
    Ok(())
}

fn validate_examples(
    file: &Path,
    examples: &HashMap<String, Vec<String>>,
    question_index: &HashMap<String, usize>,
) -> Result<(), DataError> {
    for question_id in question_index.keys() {
        let similar =
            examples.get(question_id).ok_or_else(|| invalid(file, question_id.as_str(), "question missing"))?;
        if let Some(unknown) = similar.iter().find(|id| !question_index.contains_key(id.as_str())) {
            return Err(invalid(file, question_id.as_str(), format!("{unknown} is not a kept WVS question")));
        }
    }
    Ok(())
}
