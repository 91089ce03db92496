//! What the explorer shows: how well a model fits each culture (scores per culture and topic, the
//! paper's released settings), how cultures relate (similarity matrices, clustering) and where
//! they sit on an Inglehart–Welzel style culture map.

use serde::{Deserialize, Serialize};

use crate::{CultureScore, PromptVariant};

/// Reads a prompt variant as people write it: the paper's label (`P1+P3`, `unaware`), the serde
/// name (`p1p3`), or the label after URL decoding turned `+` into a space (`P1 P3`); any case.
pub fn parse_variant(text: &str) -> Option<PromptVariant> {
    let wanted: String =
        text.chars().filter(|c| !matches!(c, '+' | ' ' | '_' | '-')).collect::<String>().to_ascii_lowercase();
    PromptVariant::ALL.into_iter().find(|variant| {
        let label: String = variant.label().chars().filter(|c| *c != '+').collect::<String>().to_ascii_lowercase();
        label == wanted
    })
}

/// A culture that got no score (or no place on the map), and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkippedCulture {
    pub country_code: String,
    pub reason: String,
}

/// Whom a setting's answers were scored against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScoredAgainst {
    /// Each culture's answers against that culture (the prompt names it).
    OwnCulture,
    /// One set of answers against every culture.
    AllCultures,
}

/// The scores of one released setting (one run of the paper).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettingScores {
    /// The file name without `wvs_result_`, the culture and the run, e.g. `culture_aware`.
    pub setting: String,
    pub variant: PromptVariant,
    /// The paper's name of the variant: `unaware`, `P1`, `P1+P3`, ...
    pub variant_label: String,
    pub run: u32,
    pub scored_against: ScoredAgainst,
    pub files: Vec<String>,
    /// In the paper's culture order.
    pub scores: Vec<CultureScore>,
    pub skipped_cultures: Vec<SkippedCulture>,
    /// Plain mean of `scores`.
    pub average: Option<f64>,
    pub notes: Vec<String>,
}

/// A file of a released folder that was not read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkippedFile {
    pub file_name: String,
    pub reason: String,
}

/// Every setting of a released folder (`GET /api/scores/released`, `culturespa score-released`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReleasedScores {
    pub source: String,
    pub settings: Vec<SettingScores>,
    pub skipped_files: Vec<SkippedFile>,
}

/// The paper's score of one culture on one topic's questions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopicScore {
    /// Topic index 0–12.
    pub topic: u8,
    /// ×100; `None` when no question of the topic has both a gold and a valid prediction.
    pub score: Option<f64>,
    pub questions_scored: u32,
}

/// One culture's scores per topic, in topic order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CultureTopicScores {
    pub country_code: String,
    pub topics: Vec<TopicScore>,
}

/// `GET /api/scores?run=ID&variant=P1`: the paper's metric for a stored run's answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunScores {
    pub run_id: i64,
    pub run_name: String,
    pub variant: PromptVariant,
    pub variant_label: String,
    pub scored_against: ScoredAgainst,
    /// The variants the run has answers for, to choose from.
    pub available_variants: Vec<PromptVariant>,
    /// In the paper's culture order.
    pub scores: Vec<CultureScore>,
    pub skipped_cultures: Vec<SkippedCulture>,
    /// Plain mean of the scores (the paper's headline number).
    pub average: Option<f64>,
    /// Mean 1 − JSD (×100) over the cultures that have it (runs with distributions).
    pub average_one_minus_jsd: Option<f64>,
    /// Culture × topic, cultures as in `scores`.
    pub topic_scores: Vec<CultureTopicScores>,
}

/// One merge of a clustering, numbered as SciPy's linkage matrix: leaves are 0..n, the cluster
/// made by merge k is n + k.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Merge {
    pub left: usize,
    pub right: usize,
    /// Average distance (100 − similarity) between the two clusters' members.
    pub distance: f64,
    /// Leaves in the merged cluster.
    pub size: usize,
}

/// A dendrogram of the cultures and its leaf order (similar cultures next to each other).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Clustering {
    pub order: Vec<String>,
    pub merges: Vec<Merge>,
}

/// Which matrix `GET /api/relations` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    /// Similarity of the cultures' human majority answers (`country_similarity.json`).
    Human,
    /// Similarity of a run's culture-aware (P1) answers.
    Run,
    /// The run's similarity minus the human one.
    Difference,
}

/// Another culture and its matrix value with the culture it is listed for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Neighbour {
    pub country_code: String,
    pub value: f64,
}

/// A culture's 3 highest and 3 lowest matrix values with the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CultureNeighbours {
    pub country_code: String,
    /// Highest value first (for similarities: the P2 prompt's S1, S2, S3).
    pub most_similar: Vec<Neighbour>,
    /// Lowest value first (for similarities: the P2 prompt's D1, D2, D3).
    pub most_different: Vec<Neighbour>,
}

/// `GET /api/relations?source=human|run:ID|difference:ID`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Relations {
    /// The source as asked for, normalised: `human`, `run:1`, `difference:1`.
    pub source: String,
    pub kind: RelationKind,
    pub run_id: Option<i64>,
    pub run_name: Option<String>,
    /// The rows and columns of `values`, in the paper's culture order.
    pub country_codes: Vec<String>,
    /// ×100, one decimal; `values[a][b]`. For `difference`: model − human (diagonal 0).
    pub values: Vec<Vec<Option<f64>>>,
    /// Average-linkage clustering; `difference` uses the human clustering, so its cells line up with
    /// the human heatmap.
    pub clustering: Clustering,
    /// Pearson r between the run's and the human off-diagonal similarities; `None` for `human`.
    pub pearson_with_human: Option<f64>,
    /// In the order of `country_codes`.
    pub neighbours: Vec<CultureNeighbours>,
}

/// The two axes of the culture map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MapDimension {
    /// Traditional (−) ↔ secular-rational (+): the x axis.
    SecularRational,
    /// Survival (−) ↔ self-expression (+): the y axis.
    SelfExpression,
}

/// One item of the map: a value per culture from one or more WVS questions, oriented so that
/// higher is more secular / more self-expressive, standardised over the 18 cultures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MapItem {
    pub key: String,
    pub label: String,
    pub dimension: MapDimension,
    pub question_ids: Vec<String>,
    /// How the item is computed and oriented, for a person.
    pub orientation: String,
    /// Mean and (population) standard deviation of the item over the human cultures.
    pub human_mean: f64,
    pub human_std: f64,
}

/// A place on the map: x = secular-rational, y = self-expression (mean item z-scores).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MapPoint {
    pub country_code: String,
    pub secular_rational: f64,
    pub self_expression: f64,
    /// Items that had a value (of all items of both dimensions).
    pub items_used: u32,
}

/// A run's culture-aware personas placed on the human map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MapPersonas {
    pub run_id: i64,
    pub run_name: String,
    pub variant: PromptVariant,
    /// One per culture the run answered as, in the paper's culture order.
    pub points: Vec<MapPoint>,
    /// The culture-unaware answers, when the run has them (`country_code` is empty).
    pub unaware: Option<MapPoint>,
    /// Personas without any map item.
    pub unplaced: Vec<SkippedCulture>,
}

/// A persona's move from one run to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MapArrow {
    pub country_code: String,
    pub from_secular_rational: f64,
    pub from_self_expression: f64,
    pub to_secular_rational: f64,
    pub to_self_expression: f64,
}

/// `GET /api/culture-map?run=ID&compare=ID`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CultureMap {
    /// How the coordinates are made, for a person.
    pub method: String,
    pub items: Vec<MapItem>,
    /// The 18 human cultures.
    pub cultures: Vec<MapPoint>,
    /// The personas of `run`.
    pub personas: Option<MapPersonas>,
    /// The personas of `compare`.
    pub compare: Option<MapPersonas>,
    /// From each persona of `run` to the same culture's persona of `compare`.
    pub arrows: Vec<MapArrow>,
}

/// A 95 % interval (bootstrap percentiles).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// `GET /api/persona-meter?run=ID&variant=P1`, `culturespa persona-meter`, `culturespa
/// sensitivity`: whether a culture persona moves a model's answers (movement) and whether it moves
/// them toward that culture's people (direction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonaMeter {
    pub run_id: i64,
    pub variant: PromptVariant,
    pub variant_label: String,
    /// (question, culture) pairs with both a culture-aware and an unaware answer.
    pub pairs: u32,
    /// Share of answers that pick a question's first option: unaware, and culture-aware.
    pub first_option_unaware: Option<f64>,
    pub first_option_aware: Option<f64>,
    /// Share of pairs whose culture-aware answer differs from the unaware one (the paper's
    /// culture-related instances).
    pub changed: Option<f64>,
    /// Mean total variation between the aware and the unaware option distributions (scoring runs).
    pub mean_total_variation: Option<f64>,
    /// Per culture, in the survey's culture order.
    pub cultures: Vec<PersonaDirection>,
    /// Means over the cultures of the score changes.
    pub mean_delta_score: Option<f64>,
    pub mean_delta_one_minus_jsd: Option<f64>,
    /// Bootstrap resamples of the questions behind every interval, and their seed.
    pub resamples: u32,
    pub seed: u64,
}

/// One culture's direction: the paper's metric and 1 − JSD (×100) of its unaware and aware answers
/// on the same questions, the change with a 95 % bootstrap interval over the questions, and what
/// a uniform answerer (every option equally likely) gets on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonaDirection {
    pub country_code: String,
    pub questions: u32,
    pub changed: f64,
    pub unaware_score: f64,
    pub aware_score: f64,
    pub delta_score: f64,
    pub delta_score_interval: Interval,
    /// The expected paper metric of a uniform random answerer.
    pub uniform_score: f64,
    pub unaware_one_minus_jsd: Option<f64>,
    pub aware_one_minus_jsd: Option<f64>,
    pub delta_one_minus_jsd: Option<f64>,
    pub delta_one_minus_jsd_interval: Option<Interval>,
    pub uniform_one_minus_jsd: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_parse_from_labels_serde_names_and_decoded_urls() {
        assert_eq!(parse_variant("P1"), Some(PromptVariant::P1));
        assert_eq!(parse_variant("p1"), Some(PromptVariant::P1));
        assert_eq!(parse_variant("unaware"), Some(PromptVariant::Unaware));
        assert_eq!(parse_variant("P1+P3"), Some(PromptVariant::P1P3));
        assert_eq!(parse_variant("P1 P3"), Some(PromptVariant::P1P3));
        assert_eq!(parse_variant("p2p3"), Some(PromptVariant::P2P3));
        assert_eq!(parse_variant("P4"), None);
        assert_eq!(parse_variant(""), None);
    }
}
