//! An Inglehart–Welzel style culture map: traditional ↔ secular-rational (x) and survival ↔
//! self-expression (y), from the WVS-7 items that define those dimensions, for the 18 human
//! cultures and for a model's culture personas placed in the same standardised space.
//!
//! Method:
//! 1. Each item's human value for a culture is computed from its answer distribution,
//!    renormalised over the substantive answers (the option codes, less the ones listed below;
//!    the file's shares also count "don't know" and "no answer", which are not option codes).
//! 2. Items are oriented so that higher means more secular-rational / more self-expressive.
//! 3. Each item is standardised over the cultures that have it (z-scores with the population
//!    standard deviation), and an axis is the mean of its items' z-scores.
//! 4. A persona's item value is the same function of its answers (its distribution's expectation
//!    when it has one, else its answer code as a point mass), standardised with the *human* means
//!    and deviations, so it lands in the humans' space and runs can be compared with arrows.
//!
//! Why the mean of z-scores and not the first principal component: with 18 cultures and 5 items
//! per axis, the loadings of a PCA are noisy and its sign is arbitrary, so a data update or a new
//! persona could flip or tilt an axis; equal weights keep each axis a fixed, readable formula
//! that places personas exactly as it places cultures. The autonomy and post-materialism indexes
//! are single items here, as in the Inglehart–Welzel factor analysis.
//!
//! Orientation of each item, checked against the option lists of `data/wvs/wvs_questions.json`:
//! - Q164 "How important is God in your life", options '1' (not at all important) … '10' (very
//!   important): the mean code, negated (more important = more traditional).
//! - Autonomy index, Q8 independence, Q14 determination and perseverance, Q15 religious faith,
//!   Q17 obedience as qualities for children, options 1 Yes (mentioned) / 2 No: the share
//!   mentioning Q8 + Q14 − Q15 − Q17 (−2 … 2; faith and obedience are the traditional pole).
//! - Q184 abortion, options '1' (never justifiable) … '10' (always justifiable): the mean code.
//! - Q254 national pride, options 1 Very proud … 4 Not at all proud, 5 "I am not of this
//!   nationality" (left out: not a degree of pride): the mean code (less proud = more secular).
//! - Q45 greater respect for authority, options 1 Good, 2 Don't mind, 3 Bad: the mean code.
//! - Post-materialism, Q154 / Q155 the first / second national aim, options 1 Maintaining order,
//!   2 More say in government decisions, 3 Fighting rising prices, 4 Protecting freedom of speech:
//!   the share choosing 2 or 4, averaged over both questions (WVS's 4-item index classifies each
//!   respondent's pair of choices; the file only has each question's shares, so the mean
//!   post-materialist share stands in for it).
//! - Q46 happiness, options 1 Very happy … 4 Not at all happy: the mean code, negated.
//! - Q182 homosexuality, options '1' (never justifiable) … '10' (always justifiable): the mean code.
//! - Q209 signing a petition, options 1 Have done, 2 Might do, 3 Would never do: the mean code,
//!   negated.
//! - Q57 "most people can be trusted", options 1 Most people can be trusted / 2 Need to be very
//!   careful: the share answering 1.

use std::collections::HashMap;

use shared::analysis::{CultureMap, MapArrow, MapDimension, MapItem, MapPersonas, MapPoint, SkippedCulture};
use shared::{PromptVariant, Question, Run};

use super::alignment::Predictions;
use super::run_scores::PersonaPredictions;
use crate::survey::SurveyData;

/// What a component reads from one question's answer distribution.
#[derive(Debug, Clone, Copy)]
enum Measure {
    /// The expected answer code.
    MeanCode,
    /// The probability of answering one of these codes.
    ShareOf(&'static [u32]),
}

/// One question's contribution to an item: `weight × measure`.
#[derive(Debug, Clone, Copy)]
struct Component {
    question_id: &'static str,
    measure: Measure,
    weight: f64,
    /// Option codes that are not an answer on the item's scale (left out, then renormalised).
    non_substantive_codes: &'static [u32],
}

const fn component(question_id: &'static str, measure: Measure, weight: f64) -> Component {
    Component { question_id, measure, weight, non_substantive_codes: &[] }
}

/// Codes of the yes/no "important child qualities" questions: 1 = mentioned.
const MENTIONED: &[u32] = &[1];
/// Q154/Q155: 2 = more say in government decisions, 4 = protecting freedom of speech.
const POST_MATERIALIST_AIMS: &[u32] = &[2, 4];
/// Q57: 1 = most people can be trusted.
const TRUSTING: &[u32] = &[1];
/// Q254: 5 = "I am not of this nationality".
const NOT_OF_THIS_NATIONALITY: &[u32] = &[5];
/// Higher answer codes mean the traditional / survival pole.
const REVERSED: f64 = -1.0;
const AS_IS: f64 = 1.0;
/// Each of the two post-materialism questions counts half.
const HALF: f64 = 0.5;

struct ItemSpec {
    key: &'static str,
    label: &'static str,
    dimension: MapDimension,
    components: &'static [Component],
    orientation: &'static str,
}

const ITEMS: [ItemSpec; 10] = [
    ItemSpec {
        key: "god",
        label: "Importance of God",
        dimension: MapDimension::SecularRational,
        components: &[component("Q164", Measure::MeanCode, REVERSED)],
        orientation: "−mean of 1 (not at all important) … 10 (very important)",
    },
    ItemSpec {
        key: "autonomy",
        label: "Autonomy index",
        dimension: MapDimension::SecularRational,
        components: &[
            component("Q8", Measure::ShareOf(MENTIONED), AS_IS),
            component("Q14", Measure::ShareOf(MENTIONED), AS_IS),
            component("Q15", Measure::ShareOf(MENTIONED), REVERSED),
            component("Q17", Measure::ShareOf(MENTIONED), REVERSED),
        ],
        orientation: "share naming independence + determination − religious faith − obedience",
    },
    ItemSpec {
        key: "abortion",
        label: "Abortion justifiable",
        dimension: MapDimension::SecularRational,
        components: &[component("Q184", Measure::MeanCode, AS_IS)],
        orientation: "mean of 1 (never) … 10 (always justifiable)",
    },
    ItemSpec {
        key: "national_pride",
        label: "National pride",
        dimension: MapDimension::SecularRational,
        components: &[Component {
            question_id: "Q254",
            measure: Measure::MeanCode,
            weight: AS_IS,
            non_substantive_codes: NOT_OF_THIS_NATIONALITY,
        }],
        orientation: "mean of 1 (very proud) … 4 (not at all proud); 5 (not of this nationality) left out",
    },
    ItemSpec {
        key: "respect_for_authority",
        label: "Respect for authority",
        dimension: MapDimension::SecularRational,
        components: &[component("Q45", Measure::MeanCode, AS_IS)],
        orientation: "mean of 1 (good) … 3 (bad thing)",
    },
    ItemSpec {
        key: "post_materialism",
        label: "Post-materialism",
        dimension: MapDimension::SelfExpression,
        components: &[
            component("Q154", Measure::ShareOf(POST_MATERIALIST_AIMS), HALF),
            component("Q155", Measure::ShareOf(POST_MATERIALIST_AIMS), HALF),
        ],
        orientation: "share choosing more say (2) or free speech (4), first and second aim averaged",
    },
    ItemSpec {
        key: "happiness",
        label: "Happiness",
        dimension: MapDimension::SelfExpression,
        components: &[component("Q46", Measure::MeanCode, REVERSED)],
        orientation: "−mean of 1 (very happy) … 4 (not at all happy)",
    },
    ItemSpec {
        key: "homosexuality",
        label: "Homosexuality justifiable",
        dimension: MapDimension::SelfExpression,
        components: &[component("Q182", Measure::MeanCode, AS_IS)],
        orientation: "mean of 1 (never) … 10 (always justifiable)",
    },
    ItemSpec {
        key: "petition",
        label: "Signing a petition",
        dimension: MapDimension::SelfExpression,
        components: &[component("Q209", Measure::MeanCode, REVERSED)],
        orientation: "−mean of 1 (have done) … 3 (would never do)",
    },
    ItemSpec {
        key: "trust",
        label: "Generalised trust",
        dimension: MapDimension::SelfExpression,
        components: &[component("Q57", Measure::ShareOf(TRUSTING), AS_IS)],
        orientation: "share answering 1 (most people can be trusted)",
    },
];

/// How the coordinates are made, for the API's `method` field.
const METHOD: &str = "Each item: the culture's mean answer (or share of answers) over substantive options, oriented \
so higher = secular-rational / self-expression, z-scored over the 18 human cultures (population SD). Each axis: \
the mean of its items' z-scores. Personas use their answer code (or their distribution's expectation) and the \
human means and SDs.";

/// Answer probabilities by option code.
type CodeWeights = Vec<(u32, f64)>;

/// The component's value for a distribution over answer codes; `None` without substantive mass.
fn component_value(question: &Question, component: &Component, answer: &CodeWeights) -> Option<f64> {
    let substantive: Vec<(u32, f64)> = answer
        .iter()
        .copied()
        .filter(|(code, _)| {
            question.options.iter().any(|option| option.code == *code)
                && !component.non_substantive_codes.contains(code)
        })
        .collect();
    let total: f64 = substantive.iter().map(|(_, weight)| weight).sum();
    if total <= 0.0 {
        return None;
    }
    let value = match component.measure {
        Measure::MeanCode => substantive.iter().map(|(code, weight)| f64::from(*code) * weight).sum::<f64>() / total,
        Measure::ShareOf(codes) => {
            substantive.iter().filter(|(code, _)| codes.contains(code)).map(|(_, weight)| weight).sum::<f64>() / total
        }
    };
    Some(component.weight * value)
}

/// An item's value; `None` when any of its questions has no usable answer.
fn item_value(
    survey: &SurveyData,
    item: &ItemSpec,
    answer_of: impl Fn(&Question) -> Option<CodeWeights>,
) -> Option<f64> {
    item.components.iter().try_fold(0.0, |sum, component| {
        let question = survey.question(component.question_id)?;
        Some(sum + component_value(question, component, &answer_of(question)?)?)
    })
}

fn human_answer(survey: &SurveyData, country_code: &str, question: &Question) -> Option<CodeWeights> {
    let human = survey.human(country_code, &question.question_id)?;
    Some(human.shares.iter().map(|entry| (entry.code, entry.share)).collect())
}

/// A persona's answer: its distribution (over the options, in order) when it has one, else its code.
fn persona_answer(predictions: &Predictions, question: &Question) -> Option<CodeWeights> {
    match predictions.distribution(&question.question_id) {
        Some(distribution) => {
            Some(question.options.iter().map(|option| option.code).zip(distribution.iter().copied()).collect())
        }
        None => Some(vec![(predictions.code(&question.question_id)?, 1.0)]),
    }
}

/// An item's human mean and standard deviation over the cultures.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scale {
    mean: f64,
    std: f64,
}

/// Fewer cultures than this cannot standardise an item.
const MIN_CULTURES_PER_ITEM: usize = 2;

impl Scale {
    fn of(values: &[f64]) -> Option<Scale> {
        if values.len() < MIN_CULTURES_PER_ITEM {
            return None;
        }
        let count = values.len() as f64;
        let mean = values.iter().sum::<f64>() / count;
        let std = (values.iter().map(|value| (value - mean).powi(2)).sum::<f64>() / count).sqrt();
        (std > 0.0).then_some(Scale { mean, std })
    }
}

/// The human map: every usable item with its scale, and the cultures' places.
#[derive(Debug, Clone, PartialEq)]
pub struct HumanMap {
    /// Positions in `ITEMS` of the items that could be standardised, with their scales.
    items: Vec<(usize, Scale)>,
    pub cultures: Vec<MapPoint>,
}

impl HumanMap {
    /// Builds the map from the survey's human answers. Items that no two cultures have, or on
    /// which all cultures agree, cannot be standardised and are left out.
    pub fn new(survey: &SurveyData) -> HumanMap {
        let values: Vec<Vec<Option<f64>>> = ITEMS
            .iter()
            .map(|item| {
                survey
                    .cultures
                    .iter()
                    .map(|culture| {
                        item_value(survey, item, |question| human_answer(survey, &culture.country_code, question))
                    })
                    .collect()
            })
            .collect();
        let items: Vec<(usize, Scale)> = values
            .iter()
            .enumerate()
            .filter_map(|(item, by_culture)| {
                Some((item, Scale::of(&by_culture.iter().flatten().copied().collect::<Vec<_>>())?))
            })
            .collect();
        let mut map = HumanMap { items, cultures: Vec::new() };
        map.cultures = survey
            .cultures
            .iter()
            .enumerate()
            .filter_map(|(culture, spec)| map.place(&spec.country_code, |item| values[item][culture]))
            .collect();
        map
    }

    /// Places a point from its item values: each axis is the mean z-score of its items that have
    /// a value; `None` when an axis has none.
    fn place(&self, country_code: &str, value_of: impl Fn(usize) -> Option<f64>) -> Option<MapPoint> {
        let mut sums: HashMap<MapDimension, (f64, u32)> = HashMap::new();
        for &(item, scale) in &self.items {
            if let Some(value) = value_of(item) {
                let entry = sums.entry(ITEMS[item].dimension).or_default();
                entry.0 += (value - scale.mean) / scale.std;
                entry.1 += 1;
            }
        }
        let axis = |dimension| sums.get(&dimension).map(|(sum, count)| sum / f64::from(*count));
        Some(MapPoint {
            country_code: country_code.to_string(),
            secular_rational: axis(MapDimension::SecularRational)?,
            self_expression: axis(MapDimension::SelfExpression)?,
            items_used: sums.values().map(|(_, count)| count).sum(),
        })
    }

    /// A persona's place, standardised with the human scales.
    pub fn place_persona(
        &self,
        survey: &SurveyData,
        country_code: &str,
        predictions: &Predictions,
    ) -> Option<MapPoint> {
        self.place(country_code, |item| {
            item_value(survey, &ITEMS[item], |question| persona_answer(predictions, question))
        })
    }

    /// The items with their human scales, for the API.
    pub fn items(&self) -> Vec<MapItem> {
        self.items
            .iter()
            .map(|&(item, scale)| (&ITEMS[item], scale))
            .map(|(item, scale)| MapItem {
                key: item.key.to_string(),
                label: item.label.to_string(),
                dimension: item.dimension,
                question_ids: item.components.iter().map(|component| component.question_id.to_string()).collect(),
                orientation: item.orientation.to_string(),
                human_mean: scale.mean,
                human_std: scale.std,
            })
            .collect()
    }

    /// A run's culture personas (of one variant) on this map, and its culture-unaware answers
    /// (any persona without a culture, e.g. the run's `unaware` variant) as `unaware`.
    pub fn personas(
        &self,
        survey: &SurveyData,
        run: &Run,
        variant: PromptVariant,
        personas: &[PersonaPredictions],
    ) -> MapPersonas {
        let mut points = Vec::new();
        let mut unaware = None;
        let mut unplaced = Vec::new();
        for persona in personas {
            let country_code = persona.country_code.as_deref().unwrap_or_default();
            match (self.place_persona(survey, country_code, &persona.predictions), &persona.country_code) {
                (Some(point), Some(_)) => points.push(point),
                (Some(point), None) => unaware = Some(point),
                (None, _) => unplaced.push(SkippedCulture {
                    country_code: country_code.to_string(),
                    reason: "no answer to any map item on one of the axes".to_string(),
                }),
            }
        }
        points
            .sort_by_key(|point| survey.cultures.iter().position(|culture| culture.country_code == point.country_code));
        MapPersonas { run_id: run.run_id, run_name: run.config.name.clone(), variant, points, unaware, unplaced }
    }
}

/// The whole map: the human cultures, optionally a run's personas, and arrows from each persona
/// of `personas` to the same culture's persona of `compare`.
pub fn culture_map(human: &HumanMap, personas: Option<MapPersonas>, compare: Option<MapPersonas>) -> CultureMap {
    let arrows = match (&personas, &compare) {
        (Some(from), Some(to)) => from
            .points
            .iter()
            .filter_map(|start| {
                let end = to.points.iter().find(|end| end.country_code == start.country_code)?;
                Some(MapArrow {
                    country_code: start.country_code.clone(),
                    from_secular_rational: start.secular_rational,
                    from_self_expression: start.self_expression,
                    to_secular_rational: end.secular_rational,
                    to_self_expression: end.self_expression,
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    CultureMap {
        method: METHOD.to_string(),
        items: human.items(),
        cultures: human.cultures.clone(),
        personas,
        compare,
        arrows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::human_over_options;

    fn point<'a>(map: &'a HumanMap, country_code: &str) -> &'a MapPoint {
        map.cultures.iter().find(|point| point.country_code == country_code).unwrap()
    }

    #[test]
    fn every_item_exists_for_every_culture_and_the_axes_are_centred() {
        let survey = SurveyData::embedded().unwrap();
        let map = HumanMap::new(&survey);
        assert_eq!(map.items.len(), ITEMS.len());
        assert_eq!(map.cultures.len(), 18);
        assert!(map.cultures.iter().all(|point| point.items_used == ITEMS.len() as u32));
        // The mean of z-scores over all cultures is 0, so each axis is centred too.
        let mean = |axis: fn(&MapPoint) -> f64| map.cultures.iter().map(axis).sum::<f64>() / 18.0;
        assert!(mean(|point| point.secular_rational).abs() < 1e-9);
        assert!(mean(|point| point.self_expression).abs() < 1e-9);
        // Each item question is a kept WVS question with the options the orientation assumes.
        for item in &ITEMS {
            for component in item.components {
                let question = survey.question(component.question_id).unwrap();
                if let Measure::ShareOf(codes) = component.measure {
                    assert!(codes.iter().all(|code| question.options.iter().any(|option| option.code == *code)));
                }
            }
        }
        assert_eq!(survey.question("Q164").unwrap().options.len(), 10);
        assert_eq!(survey.question("Q254").unwrap().options[4].text, "I am not of this nationality");
    }

    #[test]
    fn secular_and_self_expressive_cultures_are_where_the_literature_puts_them() {
        let survey = SurveyData::embedded().unwrap();
        let map = HumanMap::new(&survey);
        for secular in ["NLD", "DEU", "GBR", "AUS"] {
            for traditional in ["NGA", "ETH", "BOL", "ZWE", "KEN"] {
                let (a, b) = (point(&map, secular), point(&map, traditional));
                assert!(a.secular_rational > b.secular_rational + 0.5, "{secular} {a:?} vs {traditional} {b:?}");
            }
        }
        for expressive in ["NLD", "NZL", "AUS", "DEU", "CAN"] {
            for survival in ["ETH", "ZWE", "RUS", "UKR"] {
                let (a, b) = (point(&map, expressive), point(&map, survival));
                assert!(a.self_expression > b.self_expression + 0.5, "{expressive} {a:?} vs {survival} {b:?}");
            }
        }
        // The quadrants: English-speaking and Protestant Europe secular and self-expressive,
        // Africa traditional, the ex-Soviet cultures on the survival side.
        for code in ["NLD", "DEU", "GBR", "AUS", "NZL", "CAN", "USA"] {
            let at = point(&map, code);
            assert!(at.secular_rational > 0.0 && at.self_expression > 0.0, "{at:?}");
        }
        for code in ["NGA", "ETH", "ZWE", "BOL"] {
            assert!(point(&map, code).secular_rational < 0.0, "{code}");
        }
        for code in ["RUS", "UKR", "ZWE"] {
            assert!(point(&map, code).self_expression < 0.0, "{code}");
        }
    }

    #[test]
    fn the_map_is_deterministic() {
        let survey = SurveyData::embedded().unwrap();
        let first = culture_map(&HumanMap::new(&survey), None, None);
        let second = culture_map(&HumanMap::new(&survey), None, None);
        assert_eq!(first, second);
        assert_eq!(serde_json_text(&first), serde_json_text(&second));
    }

    fn serde_json_text(map: &CultureMap) -> String {
        serde_json::to_string(map).unwrap()
    }

    #[test]
    fn a_persona_with_a_cultures_human_distributions_lands_on_that_culture() {
        let survey = SurveyData::embedded().unwrap();
        let map = HumanMap::new(&survey);
        let mut predictions = Predictions::default();
        for item in &ITEMS {
            for component in item.components {
                let question = survey.question(component.question_id).unwrap();
                let human = human_over_options(question, survey.human("KEN", component.question_id).unwrap()).unwrap();
                predictions.insert_distribution(question, human).unwrap();
            }
        }
        let placed = map.place_persona(&survey, "KEN", &predictions).unwrap();
        let kenya = point(&map, "KEN");
        assert!((placed.secular_rational - kenya.secular_rational).abs() < 1e-9);
        assert!((placed.self_expression - kenya.self_expression).abs() < 1e-9);
    }

    #[test]
    fn a_persona_answering_codes_is_oriented_like_the_humans() {
        let survey = SurveyData::embedded().unwrap();
        let map = HumanMap::new(&survey);
        // God very important, faith and obedience named, abortion and homosexuality never
        // justifiable, very proud, respect for authority good; order and prices, not happy,
        // would never petition, careful.
        let traditional_survival = [
            ("Q164", 10),
            ("Q8", 2),
            ("Q14", 2),
            ("Q15", 1),
            ("Q17", 1),
            ("Q184", 1),
            ("Q254", 1),
            ("Q45", 1),
            ("Q154", 1),
            ("Q155", 3),
            ("Q46", 4),
            ("Q182", 1),
            ("Q209", 3),
            ("Q57", 2),
        ];
        let mut predictions = Predictions::default();
        for (question_id, code) in traditional_survival {
            predictions.insert_code(question_id, code);
        }
        let placed = map.place_persona(&survey, "XXX", &predictions).unwrap();
        assert_eq!(placed.items_used, 10);
        let minimum = |axis: fn(&MapPoint) -> f64| map.cultures.iter().map(axis).fold(f64::INFINITY, f64::min);
        assert!(placed.secular_rational < minimum(|point| point.secular_rational), "{placed:?}");
        assert!(placed.self_expression < minimum(|point| point.self_expression), "{placed:?}");
        // "Not of this nationality" is no degree of pride: that item is left out.
        predictions.insert_code("Q254", 5);
        assert_eq!(map.place_persona(&survey, "XXX", &predictions).unwrap().items_used, 9);
        assert_eq!(map.place_persona(&survey, "XXX", &Predictions::default()), None);
    }
}
