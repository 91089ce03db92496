//! `culturespa sensitivity`: the persona meter as a quick command. It writes a run file (scoring
//! mode, the Answer stage only, unaware plus the culture-aware variants asked for, on a sample of
//! every topic's questions drawn with the plan's seed), does the run like `culturespa run` (so it resumes with
//! `culturespa run --resume ID`), and reads the meter of each variant; `culturespa persona-meter`
//! reads it for any stored run. [`render_meters`] is the table both print.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shared::analysis::PersonaMeter;
use shared::{Calibration, PersonaPlacement, PromptVariant, RunStatus, ScoringFormulation};

use super::{run_command, RunError, RunService, RunTarget};
use crate::analysis::{run_persona_meter, AnalysisError};

#[derive(Debug, thiserror::Error)]
pub enum SensitivityError {
    #[error("writing the run file {file}: {error}")]
    RunFile { file: PathBuf, error: std::io::Error },
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("run {run_id} ended {status}; `culturespa run --resume {run_id}` continues it")]
    NotCompleted { run_id: i64, status: &'static str },
    #[error(transparent)]
    Meter(#[from] AnalysisError),
}

/// Does the plan's run in `data_dir`'s store and returns the meter of each culture-aware variant.
pub async fn run_sensitivity(
    service: &Arc<RunService>,
    data_dir: &Path,
    plan: &SensitivityPlan,
    resamples: u32,
) -> Result<Vec<PersonaMeter>, SensitivityError> {
    let file = plan
        .write_run_file(data_dir)
        .map_err(|error| SensitivityError::RunFile { file: data_dir.join("sensitivity"), error })?;
    let (run_id, status) = run_command(service, RunTarget::Config(file), None).await?;
    let (store, survey) = (service.store(), service.survey());
    if status != RunStatus::Completed {
        return Err(SensitivityError::NotCompleted { run_id, status: status.as_str() });
    }
    let mut meters = Vec::new();
    for variant in plan.variants.iter().filter(|variant| **variant != PromptVariant::Unaware) {
        meters.push(run_persona_meter(store, survey, run_id, *variant, resamples, plan.seed).await?);
    }
    Ok(meters)
}

/// What a sensitivity run answers.
#[derive(Debug, Clone)]
pub struct SensitivityPlan {
    pub model: String,
    /// About this many WVS questions: ⌈N / 13⌉ of every topic, drawn with the seed.
    pub questions: u32,
    /// Country codes; empty: all 18.
    pub cultures: Vec<String>,
    /// Culture-aware variants (unaware is always answered).
    pub variants: Vec<PromptVariant>,
    /// Where the persona goes in the culture-aware prompts.
    pub persona: PersonaPlacement,
    /// How options are scored (digit labels or cloze).
    pub scoring: ScoringFormulation,
    /// How the option distributions are calibrated.
    pub calibration: Calibration,
    pub seed: u64,
}

/// The topics of the WVS questionnaire the questions are spread over.
const TOPICS: u32 = 13;
/// The most questions a sensitivity run takes (all kept WVS questions fit).
pub const MAX_QUESTIONS: u32 = 400;

impl SensitivityPlan {
    /// The run file of the plan (parsed and validated by `run_file`, as any other).
    pub fn run_file(&self) -> String {
        let quoted = |items: &[String]| items.iter().map(|item| format!("{item:?}")).collect::<Vec<_>>().join(", ");
        let mut variants = vec!["unaware".to_string()];
        variants.extend(self.variants.iter().filter(|v| **v != PromptVariant::Unaware).map(|v| variant_name(*v)));
        format!(
            "name = {name:?}\nmodel = {model:?}\ncultures = [{cultures}]\ntopics = []\nquestions_per_topic = {per_topic}\n\
             variants = [{variants}]\nanswer_mode = \"scoring\"\npersona = {persona:?}\nscoring = {scoring:?}\n\
             calibration = {calibration:?}\nquestion_selection = \"random\"\nseed = {seed}\nstages = [\"answer\"]\n",
            name = format!(
                "sensitivity of {} (persona in the {} turn, {} scoring, calibration {})",
                self.model,
                self.persona.as_str(),
                self.scoring.as_str(),
                self.calibration.as_str()
            ),
            persona = self.persona.as_str(),
            scoring = self.scoring.as_str(),
            calibration = self.calibration.as_str(),
            model = self.model,
            cultures = quoted(&self.cultures),
            per_topic = self.questions.clamp(1, MAX_QUESTIONS).div_ceil(TOPICS),
            variants = quoted(&variants),
            seed = self.seed,
        )
    }

    /// Writes the run file under `dir/sensitivity/` and returns its path.
    pub fn write_run_file(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let folder = dir.join("sensitivity");
        std::fs::create_dir_all(&folder)?;
        let safe: String =
            self.model.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
        let path = folder.join(format!(
            "{safe}-{}-{}-{}-{}-seed{}.toml",
            self.persona.as_str(),
            self.scoring.as_str(),
            self.calibration.as_str(),
            self.questions,
            self.seed
        ));
        let temporary = path.with_extension("toml.tmp");
        std::fs::write(&temporary, self.run_file())?;
        std::fs::rename(&temporary, &path)?;
        Ok(path)
    }
}

/// The serde name of a variant, as run files spell it.
fn variant_name(variant: PromptVariant) -> String {
    serde_json::to_value(variant).ok().and_then(|value| value.as_str().map(str::to_string)).unwrap_or_default()
}

fn percent(value: Option<f64>) -> String {
    value.map_or("–".to_string(), |v| format!("{:.1} %", 100.0 * v))
}

fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or("–".to_string(), |v| format!("{v:.decimals$}"))
}

/// The meters as a plain-text report: movement per variant, then the direction per culture.
pub fn render_meters(meters: &[PersonaMeter]) -> String {
    let mut out = String::new();
    for meter in meters {
        let _ = writeln!(
            out,
            "run {} {}: {} pairs, first option {} unaware / {} aware, aware ≠ unaware {}, mean TV {}",
            meter.run_id,
            meter.variant_label,
            meter.pairs,
            percent(meter.first_option_unaware),
            percent(meter.first_option_aware),
            percent(meter.changed),
            number(meter.mean_total_variation, 4),
        );
        let _ = writeln!(
            out,
            "  {:<5} {:>4} {:>8} {:>8} {:>8} {:>17} {:>8} {:>8} {:>17} {:>8}",
            "", "n", "changed", "unaware", "aware", "Δ score [95 %]", "uniform", "Δ 1−JSD", "[95 %]", "uniform"
        );
        for culture in &meter.cultures {
            let jsd_interval = culture
                .delta_one_minus_jsd_interval
                .map_or("–".to_string(), |i| format!("[{:+.2}, {:+.2}]", i.low, i.high));
            let _ = writeln!(
                out,
                "  {:<5} {:>4} {:>8} {:>8.2} {:>8.2} {:>+6.2} [{:+.2}, {:+.2}] {:>8.2} {:>8} {:>17} {:>8}",
                culture.country_code,
                culture.questions,
                percent(Some(culture.changed)),
                culture.unaware_score,
                culture.aware_score,
                culture.delta_score,
                culture.delta_score_interval.low,
                culture.delta_score_interval.high,
                culture.uniform_score,
                culture.delta_one_minus_jsd.map_or("–".to_string(), |d| format!("{d:+.2}")),
                jsd_interval,
                number(culture.uniform_one_minus_jsd, 2),
            );
        }
        let _ = writeln!(
            out,
            "  mean Δ score {}, mean Δ 1−JSD {} ({} bootstrap resamples, seed {})",
            meter.mean_delta_score.map_or("–".into(), |d| format!("{d:+.2}")),
            meter.mean_delta_one_minus_jsd.map_or("–".into(), |d| format!("{d:+.2}")),
            meter.resamples,
            meter.seed,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::parse_run_file;
    use crate::survey::SurveyData;

    #[test]
    fn the_plan_is_a_valid_run_file_of_the_answer_stage_in_scoring_mode() {
        let plan = SensitivityPlan {
            model: "qwen2.5-coder-0.5b".into(),
            questions: 40,
            cultures: vec!["usa".into(), "CHN".into()],
            variants: vec![PromptVariant::P1, PromptVariant::P1P3],
            persona: PersonaPlacement::User,
            scoring: ScoringFormulation::Cloze,
            calibration: Calibration::Permutation,
            seed: 7,
        };
        let survey = SurveyData::embedded().unwrap();
        let config = parse_run_file(Path::new("sensitivity.toml"), &plan.run_file(), &survey).unwrap();
        assert_eq!(config.model.as_deref(), Some("qwen2.5-coder-0.5b"));
        assert_eq!(config.cultures, ["USA", "CHN"]);
        assert_eq!(config.questions_per_topic, 4, "40 questions over 13 topics: 4 each");
        assert_eq!(config.variants, [PromptVariant::Unaware, PromptVariant::P1, PromptVariant::P1P3]);
        assert_eq!(config.answer_mode, shared::AnswerMode::Scoring);
        assert_eq!(config.stages, [shared::Stage::Answer]);
        assert_eq!(config.seed, 7);
        assert_eq!(config.persona, PersonaPlacement::User);
        assert_eq!(config.scoring, ScoringFormulation::Cloze);
        assert_eq!(config.calibration, Calibration::Permutation);
        assert_eq!(config.question_selection, shared::QuestionSelection::Random);
    }

    #[test]
    fn plans_that_differ_in_a_lever_write_different_run_files() {
        let dir = tempfile::tempdir().unwrap();
        let plan = |calibration| SensitivityPlan {
            model: "smollm2-135m".into(),
            questions: 26,
            cultures: vec![],
            variants: vec![PromptVariant::P1],
            persona: PersonaPlacement::System,
            scoring: ScoringFormulation::Digits,
            calibration,
            seed: 1,
        };
        let none = plan(Calibration::None).write_run_file(dir.path()).unwrap();
        let content_free = plan(Calibration::ContentFree).write_run_file(dir.path()).unwrap();
        assert_ne!(none, content_free, "a second plan must not overwrite the first one's run file");
        assert!(std::fs::read_to_string(&content_free).unwrap().contains("calibration = \"content_free\""));
    }
}
