//! Culture relations: culture × culture similarity from majority answers (human or a model's),
//! the correlation of two such matrices, and a hierarchical clustering order.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
pub use shared::analysis::{Clustering, Merge};
use shared::analysis::{CultureNeighbours, Neighbour, RelationKind, Relations};
use shared::Run;

use super::alignment::{alignment, CodePair};
use super::run_scores::PersonaPredictions;
use super::AnalysisError;
use crate::survey::SurveyData;

/// Similarities are ×100 with one decimal, as in `country_similarity.json`.
const PERCENT: f64 = 100.0;
const DECIMALS_SCALE: f64 = 10.0;
/// The distance of two cultures with no question in common (similarity 0).
const MAX_DISTANCE: f64 = 100.0;

/// Similarity (×100, one decimal) between every ordered pair of cultures; `None` where two
/// cultures share no question. The diagonal is 100 for a culture with any answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarityMatrix {
    pub country_codes: Vec<String>,
    /// `values[a][b]`, in the order of `country_codes`.
    pub values: Vec<Vec<Option<f64>>>,
}

impl SimilarityMatrix {
    pub fn get(&self, country_a: &str, country_b: &str) -> Option<f64> {
        let a = self.country_codes.iter().position(|code| code == country_a)?;
        let b = self.country_codes.iter().position(|code| code == country_b)?;
        self.values[a][b]
    }

    /// The off-diagonal entries (a ≠ b), row by row.
    fn off_diagonal(&self) -> impl Iterator<Item = Option<f64>> + '_ {
        self.values
            .iter()
            .enumerate()
            .flat_map(|(a, row)| row.iter().enumerate().filter(move |(b, _)| *b != a).map(|(_, value)| *value))
    }
}

/// The similarity matrix of cultures given each one's answer code per question id (e.g. a model's
/// culture-aware answers): the paper's score between two code vectors over the kept questions both
/// have, with n = the question's option count.
pub fn similarity_matrix(survey: &SurveyData, cultures: &[(&str, &HashMap<String, u32>)]) -> SimilarityMatrix {
    let values = cultures
        .iter()
        .map(|(_, codes_a)| {
            cultures
                .iter()
                .map(|(_, codes_b)| {
                    let pairs = survey.questions.iter().filter_map(|question| {
                        Some(CodePair {
                            predicted: *codes_a.get(&question.question_id)?,
                            gold: *codes_b.get(&question.question_id)?,
                            option_count: question.options.len(),
                        })
                    });
                    alignment(pairs).map(|score| (PERCENT * score * DECIMALS_SCALE).round() / DECIMALS_SCALE)
                })
                .collect()
        })
        .collect();
    SimilarityMatrix { country_codes: cultures.iter().map(|(code, _)| code.to_string()).collect(), values }
}

/// The similarity matrix of the survey's cultures from their human majority answers (reproduces
/// `country_similarity.json`).
pub fn human_similarity_matrix(survey: &SurveyData) -> SimilarityMatrix {
    let country_codes: Vec<&str> = survey.cultures.iter().map(|culture| culture.country_code.as_str()).collect();
    human_similarity_of(survey, &country_codes)
}

/// The human similarity matrix restricted to (and ordered as) `country_codes`.
pub fn human_similarity_of(survey: &SurveyData, country_codes: &[&str]) -> SimilarityMatrix {
    let majority: Vec<(&str, HashMap<String, u32>)> =
        country_codes.iter().map(|code| (*code, majority_codes(survey, code))).collect();
    let cultures: Vec<(&str, &HashMap<String, u32>)> = majority.iter().map(|(code, codes)| (*code, codes)).collect();
    similarity_matrix(survey, &cultures)
}

/// A culture's majority (gold) answer code per kept question it answered.
pub fn majority_codes(survey: &SurveyData, country_code: &str) -> HashMap<String, u32> {
    survey
        .questions
        .iter()
        .filter_map(|question| {
            let human = survey.human(country_code, &question.question_id)?;
            Some((question.question_id.clone(), human.majority_code()?))
        })
        .collect()
}

/// `model − human` cell by cell (one decimal), over the same cultures; `None` where either is.
pub fn similarity_difference(
    model: &SimilarityMatrix,
    human: &SimilarityMatrix,
) -> Result<SimilarityMatrix, AnalysisError> {
    if model.country_codes != human.country_codes {
        return Err(AnalysisError::MatrixMismatch);
    }
    let values = model
        .values
        .iter()
        .zip(&human.values)
        .map(|(model_row, human_row)| {
            model_row
                .iter()
                .zip(human_row)
                .map(|(model, human)| Some((((*model)? - (*human)?) * DECIMALS_SCALE).round() / DECIMALS_SCALE))
                .collect()
        })
        .collect();
    Ok(SimilarityMatrix { country_codes: model.country_codes.clone(), values })
}

/// How many most and least similar cultures are listed per culture (as in the P2 prompt).
pub const NEIGHBOUR_COUNT: usize = 3;

/// Each culture's highest and lowest values with the others, picked as the paper picks the P2
/// prompt's cultures: the row sorted ascending (stable, in matrix order), the first ones as the
/// most different and the last ones, from the end, as the most similar.
pub fn neighbours(matrix: &SimilarityMatrix) -> Vec<CultureNeighbours> {
    matrix
        .country_codes
        .iter()
        .enumerate()
        .map(|(row, country_code)| {
            let mut ascending: Vec<Neighbour> = matrix.values[row]
                .iter()
                .enumerate()
                .filter(|(column, _)| *column != row)
                .filter_map(|(column, value)| {
                    Some(Neighbour { country_code: matrix.country_codes[column].clone(), value: (*value)? })
                })
                .collect();
            ascending.sort_by(|a, b| a.value.total_cmp(&b.value));
            let most_different = ascending.iter().take(NEIGHBOUR_COUNT).cloned().collect();
            let most_similar = ascending.iter().rev().take(NEIGHBOUR_COUNT).cloned().collect();
            CultureNeighbours { country_code: country_code.clone(), most_similar, most_different }
        })
        .collect()
}

/// Pearson correlation between the off-diagonal entries of two matrices over the same cultures,
/// using the pairs both have. `Ok(None)` when it is undefined (under 2 pairs, or no variance).
pub fn pearson_off_diagonal(a: &SimilarityMatrix, b: &SimilarityMatrix) -> Result<Option<f64>, AnalysisError> {
    if a.country_codes != b.country_codes {
        return Err(AnalysisError::MatrixMismatch);
    }
    let pairs: Vec<(f64, f64)> = a.off_diagonal().zip(b.off_diagonal()).filter_map(|(x, y)| Some((x?, y?))).collect();
    Ok(pearson(&pairs))
}

fn pearson(pairs: &[(f64, f64)]) -> Option<f64> {
    if pairs.len() < 2 {
        return None;
    }
    let count = pairs.len() as f64;
    let mean_x = pairs.iter().map(|(x, _)| x).sum::<f64>() / count;
    let mean_y = pairs.iter().map(|(_, y)| y).sum::<f64>() / count;
    let (mut covariance, mut variance_x, mut variance_y) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        covariance += (x - mean_x) * (y - mean_y);
        variance_x += (x - mean_x) * (x - mean_x);
        variance_y += (y - mean_y) * (y - mean_y);
    }
    (variance_x > 0.0 && variance_y > 0.0).then(|| covariance / (variance_x * variance_y).sqrt())
}

struct Cluster {
    id: usize,
    leaves: Vec<usize>,
}

/// Average-linkage (UPGMA) clustering on 100 − similarity. Deterministic: on equal distances the
/// pair met first wins, and a merged cluster keeps the earlier cluster's leaves on the left.
/// A missing similarity counts as the larger of the two directions, else as the maximum distance.
pub fn average_linkage(matrix: &SimilarityMatrix) -> Clustering {
    let leaf_count = matrix.country_codes.len();
    let distance = |a: usize, b: usize| -> f64 {
        match (matrix.values[a][b], matrix.values[b][a]) {
            (Some(x), Some(y)) => PERCENT - x.min(y),
            (Some(x), None) | (None, Some(x)) => PERCENT - x,
            (None, None) => MAX_DISTANCE,
        }
    };
    let cluster_distance = |a: &Cluster, b: &Cluster| -> f64 {
        let total: f64 = a.leaves.iter().flat_map(|&x| b.leaves.iter().map(move |&y| distance(x, y))).sum();
        total / (a.leaves.len() * b.leaves.len()) as f64
    };
    let mut clusters: Vec<Cluster> = (0..leaf_count).map(|leaf| Cluster { id: leaf, leaves: vec![leaf] }).collect();
    let mut merges = Vec::with_capacity(leaf_count.saturating_sub(1));
    while clusters.len() > 1 {
        let mut best = (0, 1, f64::INFINITY);
        for left in 0..clusters.len() {
            for right in left + 1..clusters.len() {
                let between = cluster_distance(&clusters[left], &clusters[right]);
                if between < best.2 {
                    best = (left, right, between);
                }
            }
        }
        let (left, right, between) = best;
        let removed = clusters.remove(right);
        let kept = &mut clusters[left];
        merges.push(Merge {
            left: kept.id,
            right: removed.id,
            distance: between,
            size: kept.leaves.len() + removed.leaves.len(),
        });
        kept.id = leaf_count + merges.len() - 1;
        kept.leaves.extend(removed.leaves);
    }
    let order = clusters
        .first()
        .map(|root| root.leaves.iter().map(|&leaf| matrix.country_codes[leaf].clone()).collect())
        .unwrap_or_default();
    Clustering { order, merges }
}

/// The relations of the cultures' human majority answers (`GET /api/relations?source=human`).
pub fn human_relations(survey: &SurveyData) -> Relations {
    let matrix = human_similarity_matrix(survey);
    Relations {
        source: "human".to_string(),
        kind: RelationKind::Human,
        run_id: None,
        run_name: None,
        clustering: average_linkage(&matrix),
        neighbours: neighbours(&matrix),
        pearson_with_human: None,
        country_codes: matrix.country_codes,
        values: matrix.values,
    }
}

/// Which matrix of a run [`run_relations`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMatrix {
    /// The similarity of the run's culture personas.
    Similarity,
    /// That similarity minus the human one.
    DifferenceToHuman,
}

/// The relations of a run's culture personas, or their difference to the human ones, over the
/// cultures the run answered as.
pub fn run_relations(
    survey: &SurveyData,
    run: &Run,
    personas: &[PersonaPredictions],
    wanted: RunMatrix,
) -> Result<Relations, AnalysisError> {
    let mut cultures: Vec<(&str, &HashMap<String, u32>)> = personas
        .iter()
        .filter_map(|persona| Some((persona.country_code.as_deref()?, persona.predictions.codes())))
        .collect();
    cultures.sort_by_key(|(code, _)| survey.cultures.iter().position(|culture| culture.country_code == *code));
    let model = similarity_matrix(survey, &cultures);
    let country_codes: Vec<&str> = cultures.iter().map(|(code, _)| *code).collect();
    let human = human_similarity_of(survey, &country_codes);
    let pearson_with_human = pearson_off_diagonal(&model, &human)?;
    let (kind, source, matrix, clustering) = match wanted {
        RunMatrix::DifferenceToHuman => (
            RelationKind::Difference,
            format!("difference:{}", run.run_id),
            similarity_difference(&model, &human)?,
            average_linkage(&human),
        ),
        RunMatrix::Similarity => {
            let clustering = average_linkage(&model);
            (RelationKind::Run, format!("run:{}", run.run_id), model, clustering)
        }
    };
    Ok(Relations {
        source,
        kind,
        run_id: Some(run.run_id),
        run_name: Some(run.config.name.clone()),
        clustering,
        neighbours: neighbours(&matrix),
        pearson_with_human,
        country_codes: matrix.country_codes,
        values: matrix.values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(codes: &[&str], values: &[&[f64]]) -> SimilarityMatrix {
        SimilarityMatrix {
            country_codes: codes.iter().map(|code| code.to_string()).collect(),
            values: values.iter().map(|row| row.iter().map(|value| Some(*value)).collect()).collect(),
        }
    }

    #[test]
    fn similarity_of_code_vectors_uses_the_paper_score() {
        let survey = SurveyData::embedded().unwrap();
        // Q1 has 4 options, Q94 has 3: d = sqrt(1 + 4), d_max = sqrt(9 + 4).
        let a: HashMap<String, u32> = [("Q1".to_string(), 1), ("Q94".to_string(), 0)].into();
        let b: HashMap<String, u32> = [("Q1".to_string(), 2), ("Q94".to_string(), 2), ("Q2".to_string(), 4)].into();
        let computed = similarity_matrix(&survey, &[("A", &a), ("B", &b)]);
        let expected = ((1.0 - 5f64.sqrt() / 13f64.sqrt()) * 1000.0).round() / 10.0;
        assert_eq!(expected, 38.0);
        assert_eq!(computed.get("A", "B"), Some(expected));
        assert_eq!(computed.get("B", "A"), Some(expected));
        assert_eq!(computed.get("A", "A"), Some(100.0));
        let empty = HashMap::new();
        assert_eq!(similarity_matrix(&survey, &[("A", &a), ("C", &empty)]).get("A", "C"), None);
    }

    #[test]
    fn pearson_by_hand() {
        let a = matrix(&["X", "Y", "Z"], &[&[100.0, 1.0, 2.0], &[1.0, 100.0, 3.0], &[2.0, 3.0, 100.0]]);
        let twice = matrix(&["X", "Y", "Z"], &[&[100.0, 2.0, 4.0], &[2.0, 100.0, 6.0], &[4.0, 6.0, 100.0]]);
        let reversed = matrix(&["X", "Y", "Z"], &[&[0.0, 3.0, 2.0], &[3.0, 0.0, 1.0], &[2.0, 1.0, 0.0]]);
        assert!((pearson_off_diagonal(&a, &twice).unwrap().unwrap() - 1.0).abs() < 1e-12);
        assert!((pearson_off_diagonal(&a, &reversed).unwrap().unwrap() + 1.0).abs() < 1e-12);
        // x = (1, 2, 3), y = (1, 3, 2) twice over: r = 0.5.
        let swapped = matrix(&["X", "Y", "Z"], &[&[0.0, 1.0, 3.0], &[1.0, 0.0, 2.0], &[3.0, 2.0, 0.0]]);
        assert!((pearson_off_diagonal(&a, &swapped).unwrap().unwrap() - 0.5).abs() < 1e-12);
        let flat = matrix(&["X", "Y", "Z"], &[&[0.0, 5.0, 5.0], &[5.0, 0.0, 5.0], &[5.0, 5.0, 0.0]]);
        assert_eq!(pearson_off_diagonal(&a, &flat).unwrap(), None);
        let other = matrix(&["X", "Y"], &[&[100.0, 1.0], &[1.0, 100.0]]);
        assert!(matches!(pearson_off_diagonal(&a, &other), Err(AnalysisError::MatrixMismatch)));
    }

    #[test]
    fn average_linkage_by_hand() {
        // Distances: A–C 10, B–D 20, A–B 60, A–D 70, C–B 80, C–D 90.
        let similarity = matrix(
            &["A", "B", "C", "D"],
            &[
                &[100.0, 40.0, 90.0, 30.0],
                &[40.0, 100.0, 20.0, 80.0],
                &[90.0, 20.0, 100.0, 10.0],
                &[30.0, 80.0, 10.0, 100.0],
            ],
        );
        let clustering = average_linkage(&similarity);
        assert_eq!(clustering.order, ["A", "C", "B", "D"]);
        assert_eq!(clustering.merges.len(), 3);
        assert_eq!(clustering.merges[0], Merge { left: 0, right: 2, distance: 10.0, size: 2 });
        assert_eq!(clustering.merges[1], Merge { left: 1, right: 3, distance: 20.0, size: 2 });
        // Average of A–B 60, A–D 70, C–B 80, C–D 90.
        assert_eq!(clustering.merges[2], Merge { left: 4, right: 5, distance: 75.0, size: 4 });
    }

    #[test]
    fn average_linkage_breaks_ties_by_input_order() {
        let all_equal = matrix(&["A", "B", "C"], &[&[100.0, 50.0, 50.0], &[50.0, 100.0, 50.0], &[50.0, 50.0, 100.0]]);
        let clustering = average_linkage(&all_equal);
        assert_eq!(clustering.order, ["A", "B", "C"]);
        assert_eq!(clustering.merges[0], Merge { left: 0, right: 1, distance: 50.0, size: 2 });
        assert_eq!(clustering.merges[1], Merge { left: 3, right: 2, distance: 50.0, size: 3 });
        assert_eq!(average_linkage(&matrix(&[], &[])).order, Vec::<String>::new());
        assert_eq!(average_linkage(&matrix(&["A"], &[&[100.0]])).order, ["A"]);
    }
}
