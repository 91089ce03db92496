//! Agreement between reviewers: exact-match rate, Cohen's kappa for two reviewers, Fleiss' kappa
//! for any number per instance.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;

use shared::review::{Agreement, PairAgreement};

use super::ReviewLabel;
use crate::store::LabelledReview;

/// Cohen's kappa of two raters' labels on the same items, `(rater a, rater b)` per item; `None`
/// without items or when chance agreement is already perfect (one category only).
pub fn cohen_kappa<L: Eq + Hash>(pairs: &[(L, L)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    let items = pairs.len() as f64;
    let observed = pairs.iter().filter(|(a, b)| a == b).count() as f64 / items;
    let mut marginals: HashMap<&L, (f64, f64)> = HashMap::new();
    for (a, b) in pairs {
        marginals.entry(a).or_default().0 += 1.0;
        marginals.entry(b).or_default().1 += 1.0;
    }
    let chance: f64 = marginals.values().map(|(a, b)| (a / items) * (b / items)).sum();
    kappa(observed, chance)
}

/// Fleiss' kappa from the number of raters who put each item in each category (`counts[item]
/// [category]`). Items may have different numbers of raters (at least two each); with the same
/// number for all it is the textbook formula. `None` without items or with one category only.
pub fn fleiss_kappa(counts: &[Vec<u32>]) -> Option<f64> {
    let rated: Vec<&Vec<u32>> = counts.iter().filter(|item| item.iter().sum::<u32>() >= 2).collect();
    if rated.is_empty() {
        return None;
    }
    let categories = rated.iter().map(|item| item.len()).max().unwrap_or(0);
    let mut per_category = vec![0.0; categories];
    let mut ratings = 0.0;
    let mut agreement_sum = 0.0;
    for item in &rated {
        let raters = f64::from(item.iter().sum::<u32>());
        let same_pairs: f64 = item.iter().map(|&count| f64::from(count) * f64::from(count)).sum::<f64>() - raters;
        agreement_sum += same_pairs / (raters * (raters - 1.0));
        for (category, &count) in item.iter().enumerate() {
            per_category[category] += f64::from(count);
        }
        ratings += raters;
    }
    let observed = agreement_sum / rated.len() as f64;
    let chance: f64 = per_category.iter().map(|count| (count / ratings).powi(2)).sum();
    kappa(observed, chance)
}

fn kappa(observed: f64, chance: f64) -> Option<f64> {
    // Chance agreement of 1 leaves nothing to measure beyond chance.
    const PERFECT_CHANCE_TOLERANCE: f64 = 1e-12;
    (1.0 - chance > PERFECT_CHANCE_TOLERANCE).then(|| (observed - chance) / (1.0 - chance))
}

/// The agreement of a run's reviewers, from the labels of its current reviews.
pub fn agreement(run_id: i64, reviews: &[LabelledReview]) -> Agreement {
    let mut by_instance: BTreeMap<i64, BTreeMap<&str, &ReviewLabel>> = BTreeMap::new();
    for review in reviews {
        by_instance.entry(review.instance_id).or_default().insert(&review.reviewer, &review.label);
    }
    let reviewers: BTreeSet<&str> = reviews.iter().map(|review| review.reviewer.as_str()).collect();
    let shared: Vec<&BTreeMap<&str, &ReviewLabel>> = by_instance.values().filter(|labels| labels.len() >= 2).collect();

    let unanimous = shared.iter().filter(|labels| labels.values().collect::<BTreeSet<_>>().len() == 1).count();
    let exact_match_rate = (!shared.is_empty()).then(|| unanimous as f64 / shared.len() as f64);

    let categories: Vec<&ReviewLabel> =
        shared.iter().flat_map(|labels| labels.values().copied()).collect::<BTreeSet<_>>().into_iter().collect();
    let counts: Vec<Vec<u32>> = shared
        .iter()
        .map(|labels| {
            let mut row = vec![0u32; categories.len()];
            for label in labels.values() {
                if let Ok(category) = categories.binary_search(label) {
                    row[category] += 1;
                }
            }
            row
        })
        .collect();

    let reviewer_list: Vec<&str> = reviewers.iter().copied().collect();
    let mut pairs = Vec::new();
    for (index, &reviewer_a) in reviewer_list.iter().enumerate() {
        for &reviewer_b in &reviewer_list[index + 1..] {
            let both: Vec<(&ReviewLabel, &ReviewLabel)> = by_instance
                .values()
                .filter_map(|labels| Some((*labels.get(reviewer_a)?, *labels.get(reviewer_b)?)))
                .collect();
            if both.is_empty() {
                continue;
            }
            let matches = both.iter().filter(|(a, b)| a == b).count();
            pairs.push(PairAgreement {
                reviewer_a: reviewer_a.to_string(),
                reviewer_b: reviewer_b.to_string(),
                instances: both.len() as u64,
                exact_match_rate: Some(matches as f64 / both.len() as f64),
                cohen_kappa: cohen_kappa(&both),
            });
        }
    }
    let cohen = match (reviewer_list.len(), pairs.as_slice()) {
        (2, [pair]) => pair.cohen_kappa,
        _ => None,
    };
    Agreement {
        run_id,
        reviewers: reviewer_list.iter().map(|reviewer| reviewer.to_string()).collect(),
        instances: shared.len() as u64,
        exact_match_rate,
        cohen_kappa: cohen,
        fleiss_kappa: fleiss_kappa(&counts),
        pairs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("a kappa");
        assert!((actual - expected).abs() < 5e-4, "{actual} vs {expected}");
    }

    /// A 2×2 table of two raters (yes/no): both yes, a yes b no, a no b yes, both no.
    fn table(yes_yes: usize, yes_no: usize, no_yes: usize, no_no: usize) -> Vec<(bool, bool)> {
        let mut pairs = vec![(true, true); yes_yes];
        pairs.extend(vec![(true, false); yes_no]);
        pairs.extend(vec![(false, true); no_yes]);
        pairs.extend(vec![(false, false); no_no]);
        pairs
    }

    #[test]
    fn cohen_kappa_matches_the_textbook_examples() {
        // Wikipedia, "Cohen's kappa": 50 proposals read by two readers, p_o = 0.7, p_e = 0.5.
        close(cohen_kappa(&table(20, 5, 10, 15)), 0.4);
        // The same article's two tables with p_o = 0.6: p_e = 0.54 and p_e = 0.46.
        close(cohen_kappa(&table(45, 15, 25, 15)), 0.1304);
        close(cohen_kappa(&table(25, 35, 5, 35)), 0.2593);
        close(cohen_kappa(&table(10, 0, 0, 10)), 1.0);
        assert_eq!(cohen_kappa(&table(10, 0, 0, 0)), None);
        assert_eq!(cohen_kappa::<bool>(&[]), None);
    }

    #[test]
    fn fleiss_kappa_matches_the_textbook_example() {
        // Wikipedia, "Fleiss' kappa": 14 raters, 10 subjects, 5 categories; kappa 0.210.
        let counts = vec![
            vec![0, 0, 0, 0, 14],
            vec![0, 2, 6, 4, 2],
            vec![0, 0, 3, 5, 6],
            vec![0, 3, 9, 2, 0],
            vec![2, 2, 8, 1, 1],
            vec![7, 7, 0, 0, 0],
            vec![3, 2, 6, 3, 0],
            vec![2, 5, 3, 2, 2],
            vec![6, 5, 2, 1, 0],
            vec![0, 2, 2, 3, 7],
        ];
        close(fleiss_kappa(&counts), 0.20993);
        assert_eq!(fleiss_kappa(&[vec![3, 0], vec![2, 0]]), None);
    }

    #[test]
    fn with_two_raters_fleiss_is_close_to_cohen() {
        // Fleiss' kappa pools the marginals (Scott's pi); on balanced marginals the two agree.
        let pairs = table(20, 5, 5, 20);
        let counts: Vec<Vec<u32>> =
            pairs.iter().map(|&(a, b)| vec![u32::from(a) + u32::from(b), 2 - u32::from(a) - u32::from(b)]).collect();
        close(fleiss_kappa(&counts), cohen_kappa(&pairs).unwrap());
    }

    #[test]
    fn a_runs_agreement_compares_what_reviews_say() {
        let review = |instance_id, reviewer: &str, label: ReviewLabel| LabelledReview {
            instance_id,
            reviewer: reviewer.to_string(),
            label,
        };
        let answer = |code: &str| ReviewLabel::Answer(code.to_string());
        let reviews = vec![
            review(1, "ann", answer("2")),
            review(1, "bob", answer("2")),
            review(2, "ann", ReviewLabel::Reject),
            review(2, "bob", ReviewLabel::Reject),
            review(3, "ann", answer("2")),
            review(3, "bob", ReviewLabel::Flag),
            review(4, "ann", answer("3")), // one review: not compared
        ];
        let report = agreement(7, &reviews);
        assert_eq!(report.reviewers, ["ann", "bob"]);
        assert_eq!(report.instances, 3);
        close(report.exact_match_rate, 2.0 / 3.0);
        // p_o = 2/3; marginals ann (2, 1, 0), bob (1, 1, 1) over (answer 2, reject, flag): p_e = 1/3.
        close(report.cohen_kappa, 0.5);
        assert_eq!(report.pairs.len(), 1);
        assert_eq!(report.pairs[0].instances, 3);
        assert!(report.fleiss_kappa.is_some());

        let third = [reviews.clone(), vec![review(1, "cy", answer("2"))]].concat();
        let report = agreement(7, &third);
        assert_eq!(report.cohen_kappa, None, "three reviewers: Fleiss, and Cohen per pair");
        assert_eq!(report.pairs.len(), 3);
    }
}
