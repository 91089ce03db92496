//! Evaluation and culture relations: the paper's alignment metric, distributional metrics, culture ×
//! culture similarity, and the paper's released Llama-3-8B answers (scored, and imported as a run).

mod alignment;
mod baseline;
mod culture_map;
mod distribution;
mod import;
mod persona_meter;
mod probe;
mod relations;
mod released;
mod run_scores;
mod run_selection;
mod score_intervals;

use std::path::PathBuf;

pub use alignment::{
    alignment, culture_sample, option_answer_code, paper_answer_code, score_culture, score_cultures, CodePair,
    CultureSample, CultureScores, Predictions, SkippedCulture, MAX_VALID_ANSWER,
};
pub use baseline::{render_table, score_released, ReleasedScores, ScoredAgainst, SettingScores};
pub use culture_map::{culture_map, HumanMap};
pub use distribution::{
    compare_to_human, human_over_options, one_minus_js_distance, wasserstein_ordinal, DistributionComparison,
    DistributionError,
};
pub use import::{import_embedded_release, import_released, ImportSummary};
pub use persona_meter::{persona_meter, run_persona_meter, MeterInput, DEFAULT_RESAMPLES, DEFAULT_SEED};
pub use probe::{probe_model, probe_questions, PROBE_QUESTIONS, PROBE_TEXT};
pub use relations::{
    average_linkage, human_relations, human_similarity_matrix, human_similarity_of, majority_codes, neighbours,
    pearson_off_diagonal, run_relations, similarity_difference, similarity_matrix, Clustering, Merge, RunMatrix,
    SimilarityMatrix, NEIGHBOUR_COUNT,
};
pub use released::{
    classify_file_name, load_released, FileKind, ReleasedAnswer, ReleasedFile, ReleasedSet, SkippedFile, Target,
    EMBEDDED_SOURCE,
};
pub use run_scores::{
    predictions_from_answers, score_run, scoring_targets, topic_scores, PersonaPredictions, RunScoring,
};
pub use run_selection::{select_run_variant, stored_personas, stored_run_scores, RunVariant, DEFAULT_VARIANT};
pub use score_intervals::{score_intervals, CultureIntervals};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("{file}: cannot read: {error}")]
    Read { file: PathBuf, error: std::io::Error },
    #[error("{file}: line {line}, column {column}: {message}")]
    Parse { file: PathBuf, line: usize, column: usize, message: String },
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
    #[error("{source_name}: {message}")]
    Import { source_name: String, message: String },
    #[error("the two matrices cover different cultures")]
    MatrixMismatch,
    #[error("question {question_id}: {error}")]
    Distribution { question_id: String, error: DistributionError },
    #[error("{0}")]
    Meter(String),
    /// A run, variant or answers an analysis was asked for that do not exist.
    #[error("{0} not found")]
    NotFound(String),
    #[error("importing the released answers")]
    Store(#[from] StoreError),
}
