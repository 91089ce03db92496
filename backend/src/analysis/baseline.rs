//! The paper baseline: every released setting scored with the paper's metric, per culture and on
//! average (`culturespa score-released`), as JSON or as a table.

use std::collections::BTreeMap;
use std::fmt::Write;

pub use shared::analysis::{ReleasedScores, ScoredAgainst, SettingScores};
use shared::PromptVariant;

use super::alignment::{score_cultures, Predictions};
use super::released::{ReleasedFile, ReleasedSet, Target};
use crate::survey::SurveyData;

/// The order settings are listed in: unaware, P1, P1+P3, P2, P2+P3, P3.
fn variant_rank(variant: PromptVariant) -> u8 {
    match variant {
        PromptVariant::Unaware => 0,
        PromptVariant::P1 => 1,
        PromptVariant::P1P3 => 2,
        PromptVariant::P2 => 3,
        PromptVariant::P2P3 => 4,
        PromptVariant::P3 => 5,
    }
}

type SettingKey = (u8, String, u32, ScoredAgainst);

/// Scores every setting of the released files against the survey's human answers.
pub fn score_released(survey: &SurveyData, released: &ReleasedSet) -> ReleasedScores {
    let mut groups: BTreeMap<SettingKey, Vec<&ReleasedFile>> = BTreeMap::new();
    for file in &released.files {
        let scored_against = match file.kind.target {
            Target::Culture(_) => ScoredAgainst::OwnCulture,
            Target::AllCultures => ScoredAgainst::AllCultures,
        };
        let key = (variant_rank(file.kind.variant), file.kind.setting.clone(), file.kind.run, scored_against);
        groups.entry(key).or_default().push(file);
    }
    let settings = groups.into_values().filter_map(|files| score_setting(survey, &files)).collect();
    ReleasedScores { source: released.source.clone(), settings, skipped_files: released.skipped_files.clone() }
}

fn score_setting(survey: &SurveyData, files: &[&ReleasedFile]) -> Option<SettingScores> {
    let first = files.first()?;
    let predictions: Vec<Predictions> = files
        .iter()
        .map(|file| Predictions::from_replies(file.answers.iter().map(|a| (a.question_id.as_str(), a.answer.as_str()))))
        .collect();
    let culture_position =
        |code: &str| survey.cultures.iter().position(|culture| culture.country_code == code).unwrap_or(usize::MAX);
    let mut targets: Vec<(&str, &Predictions)> = Vec::new();
    let mut scored_against = ScoredAgainst::AllCultures;
    for (file, predictions) in files.iter().zip(&predictions) {
        match &file.kind.target {
            Target::Culture(code) => {
                scored_against = ScoredAgainst::OwnCulture;
                targets.push((code.as_str(), predictions));
            }
            Target::AllCultures => {
                targets.extend(survey.cultures.iter().map(|culture| (culture.country_code.as_str(), predictions)))
            }
        }
    }
    targets.sort_by_key(|(code, _)| culture_position(code));
    let scored = score_cultures(survey, targets);

    let mut notes: Vec<String> = Vec::new();
    for note in files.iter().filter_map(|file| file.kind.note.clone()) {
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    let culture_count = survey.cultures.len();
    if scored_against == ScoredAgainst::OwnCulture && scored.scores.len() < culture_count {
        notes.push(format!("covers {} of {culture_count} cultures; the average is over those", scored.scores.len()));
    }
    Some(SettingScores {
        setting: first.kind.setting.clone(),
        variant: first.kind.variant,
        variant_label: first.kind.variant.label().to_string(),
        run: first.kind.run,
        scored_against,
        files: files.iter().map(|file| file.file_name.clone()).collect(),
        scores: scored.scores,
        skipped_cultures: scored.skipped_cultures,
        average: scored.average,
        notes,
    })
}

/// Width of a score column: `100.00`.
const SCORE_WIDTH: usize = 6;
const MISSING: &str = "-";

/// The scores as a plain-text table: one row per setting, the average, then one column per culture.
pub fn render_table(survey: &SurveyData, scores: &ReleasedScores) -> String {
    let setting_width = scores.settings.iter().map(|s| s.setting.len()).chain(["setting".len()]).max().unwrap_or(0);
    let variant_width =
        scores.settings.iter().map(|s| s.variant_label.len()).chain(["variant".len()]).max().unwrap_or(0);
    let file_count: usize = scores.settings.iter().map(|s| s.files.len()).sum();
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "Released answers: {} ({file_count} files scored)", scores.source);
    let _ = writeln!(out, "The paper's alignment score ×100; avg = plain mean over the cultures scored.\n");
    let _ =
        write!(out, "{:<setting_width$} {:>3} {:<variant_width$} {:>SCORE_WIDTH$}", "setting", "run", "variant", "avg");
    for culture in &survey.cultures {
        let _ = write!(out, " {:>SCORE_WIDTH$}", culture.country_code);
    }
    out.push('\n');
    let format_score = |score: Option<f64>| score.map_or_else(|| MISSING.to_string(), |value| format!("{value:.2}"));
    for setting in &scores.settings {
        let _ = write!(
            out,
            "{:<setting_width$} {:>3} {:<variant_width$} {:>SCORE_WIDTH$}",
            setting.setting,
            setting.run,
            setting.variant_label,
            format_score(setting.average)
        );
        for culture in &survey.cultures {
            let score = setting.scores.iter().find(|score| score.country_code == culture.country_code);
            let _ = write!(out, " {:>SCORE_WIDTH$}", format_score(score.map(|score| score.score)));
        }
        out.push('\n');
    }
    let mut footnotes = Vec::new();
    for setting in &scores.settings {
        footnotes.extend(setting.notes.iter().map(|note| format!("{}: {note}", setting.setting)));
        footnotes.extend(
            setting
                .skipped_cultures
                .iter()
                .map(|skipped| format!("{}: {} not scored: {}", setting.setting, skipped.country_code, skipped.reason)),
        );
    }
    if !footnotes.is_empty() {
        out.push('\n');
        for footnote in footnotes {
            let _ = writeln!(out, "* {footnote}");
        }
    }
    out
}
