//! The persona meter's levers in a real run on CPU with the default model: a permutation-calibrated
//! scoring run on a seeded sample of questions that collects its instances from P1 + P3. What is
//! checked is computed here from what the run stored, not by the runner's own code.

mod common;

use std::collections::HashMap;
use std::process::Stdio;

use common::{culturespa, Db};

const RUN_FILE: &str = r#"
name = "levers test"
cultures = ["USA", "NGA"]
topics = [0, 1]
questions_per_topic = 2
question_selection = "random"
variants = ["unaware", "p1", "p1_p3"]
answer_mode = "scoring"
calibration = "permutation"
collect_from = "p1_p3"
seed = 11
stages = ["answer", "collect"]
"#;
/// 4 questions × (unaware + 2 cultures × 2 culture-aware variants).
const EXPECTED_ANSWERS: usize = 4 * (1 + 2 * 2);

const ANSWERS_SQL: &str = "SELECT a.question_id || char(9) || IFNULL(a.country_code, '-') || char(9) || a.variant || \
     char(9) || q.topic || char(9) || q.options_json || char(9) || IFNULL(a.distribution_json, '') || char(9) || \
     IFNULL(a.raw_distribution_json, '') || char(9) || IFNULL(a.parsed_code, '') \
     FROM answers a JOIN questions q ON q.question_set = a.question_set AND q.question_id = a.question_id \
     WHERE a.run_id = 2 ORDER BY a.question_id, a.country_code, a.variant";
const PRIORS_SQL: &str = "SELECT prior_key || char(9) || prior_json FROM calibration_priors WHERE run_id = 2";
const INSTANCES_SQL: &str =
    "SELECT question_id || char(9) || country_code || char(9) || unaware_code || char(9) || aware_code \
     FROM instances WHERE run_id = 2";
const FIRST_QUESTIONS_SQL: &str = "SELECT question_id FROM questions WHERE question_set = 'wvs' AND topic IN (0, 1) \
     ORDER BY topic, rowid";
const STATUS_SQL: &str = "SELECT status FROM runs WHERE run_id = 2";

struct Stored {
    question_id: String,
    country_code: String,
    variant: String,
    topic: u8,
    codes: Vec<i64>,
    calibrated: Vec<f64>,
    raw: Vec<f64>,
    parsed_code: Option<i64>,
}

fn stored_answers(db: &Db) -> Vec<Stored> {
    db.rows(ANSWERS_SQL)
        .into_iter()
        .map(|row| {
            let fields: Vec<&str> = row.split('\t').collect();
            let options: Vec<serde_json::Value> = serde_json::from_str(fields[4]).unwrap();
            Stored {
                question_id: fields[0].to_string(),
                country_code: fields[1].to_string(),
                variant: fields[2].to_string(),
                topic: fields[3].parse().unwrap(),
                codes: options.iter().map(|option| option["code"].as_i64().unwrap()).collect(),
                calibrated: serde_json::from_str(fields[5]).expect("a calibrated distribution"),
                raw: serde_json::from_str(fields[6]).expect("the raw distribution is stored beside it"),
                parsed_code: fields[7].parse().ok(),
            }
        })
        .collect()
}

/// The prior key the runner documents: `answer/permutation/{variant label}/{culture or -}/{codes}`
/// (this run's calibrated stage is Answer).
fn prior_key(answer: &Stored) -> String {
    let label = match answer.variant.as_str() {
        "unaware" => "unaware",
        "p1" => "P1",
        "p1_p3" => "P1+P3",
        other => panic!("unexpected variant {other}"),
    };
    let codes = answer.codes.iter().map(i64::to_string).collect::<Vec<_>>().join("-");
    format!("answer/permutation/{label}/{}/{codes}", answer.country_code)
}

#[test]
fn a_calibrated_run_stores_both_distributions_and_collects_from_the_variant_it_names() {
    let work = tempfile::tempdir().unwrap();
    let run_file = work.path().join("run.toml");
    std::fs::write(&run_file, RUN_FILE).unwrap();
    let data = work.path().join("data");
    let status = culturespa(&data).args(["run", "--config"]).arg(&run_file).stderr(Stdio::null()).status().unwrap();
    assert!(status.success());
    let db = Db::of(&data);
    assert_eq!(db.rows(STATUS_SQL), ["completed"]);

    let answers = stored_answers(&db);
    assert_eq!(answers.len(), EXPECTED_ANSWERS);

    // A seeded sample: two questions of each topic, not simply the first two.
    let mut sampled: Vec<(u8, String)> = answers.iter().map(|a| (a.topic, a.question_id.clone())).collect();
    sampled.sort();
    sampled.dedup();
    assert_eq!(sampled.iter().filter(|(topic, _)| *topic == 0).count(), 2);
    assert_eq!(sampled.iter().filter(|(topic, _)| *topic == 1).count(), 2);
    let first: Vec<String> = db.rows(FIRST_QUESTIONS_SQL);
    let first_two = |topic_offset: usize| first[topic_offset..topic_offset + 2].to_vec();
    let sampled_ids: Vec<String> = sampled.iter().map(|(_, id)| id.clone()).collect();
    assert_ne!(sampled_ids[..2], first_two(0)[..], "seed 11 draws another sample than the first questions");

    // Each calibrated distribution is the raw one divided by its setting's stored prior.
    let priors: HashMap<String, Vec<f64>> = db
        .rows(PRIORS_SQL)
        .into_iter()
        .map(|row| {
            let (key, prior) = row.split_once('\t').unwrap();
            (key.to_string(), serde_json::from_str(prior).unwrap())
        })
        .collect();
    for answer in &answers {
        let prior = priors.get(&prior_key(answer)).unwrap_or_else(|| panic!("no prior {}", prior_key(answer)));
        assert_eq!(prior.len(), answer.codes.len());
        assert!((prior.iter().sum::<f64>() - 1.0).abs() < 1e-6, "a prior is a distribution: {prior:?}");
        let weights: Vec<f64> = answer.raw.iter().zip(prior).map(|(p, q)| p / q).collect();
        let total: f64 = weights.iter().sum();
        for (calibrated, weight) in answer.calibrated.iter().zip(&weights) {
            assert!((calibrated - weight / total).abs() < 1e-9, "{} {}", answer.question_id, answer.variant);
        }
        let best = answer.calibrated.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap();
        assert_eq!(answer.parsed_code, Some(answer.codes[best]), "the answer is the calibrated argmax");
    }

    // Instances pair the unaware answer with the P1 + P3 one, where they differ.
    let code = |question_id: &str, country_code: &str, variant: &str| {
        answers
            .iter()
            .find(|a| a.question_id == question_id && a.country_code == country_code && a.variant == variant)
            .and_then(|a| a.parsed_code)
    };
    let mut expected: Vec<String> = Vec::new();
    for aware in answers.iter().filter(|a| a.variant == "p1_p3") {
        let unaware = code(&aware.question_id, "-", "unaware");
        if let (Some(unaware), Some(aware_code)) = (unaware, aware.parsed_code) {
            if unaware != aware_code {
                expected.push(format!("{}\t{}\t{unaware}\t{aware_code}", aware.question_id, aware.country_code));
            }
        }
    }
    let mut instances = db.rows(INSTANCES_SQL);
    instances.sort();
    expected.sort();
    assert_eq!(instances, expected);
}
