//! `culturespa runs list`, `runs scores ID` and `runs reviews ID`: the stored runs, a run's scores
//! and its reviews, for scripts and a terminal (`--json` prints what the API answers).

use std::path::PathBuf;

use culturespa::analysis::{score_intervals, select_run_variant, stored_personas, stored_run_scores};
use culturespa::curation::review_export::{render_reviews, ReviewExportFormat};
use culturespa::store::Store;

use super::Globals;

/// The most runs `runs list` prints.
const MAX_LISTED_RUNS: u32 = 500;

#[derive(Debug, clap::Subcommand)]
pub enum RunsCommand {
    /// The stored runs, newest first: id, status, name, model, when made.
    List {
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_LISTED_RUNS)))]
        limit: u32,
        #[arg(long)]
        json: bool,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// A run's alignment to the WVS answers per culture: the paper's metric and 1 − JSD (×100).
    Scores {
        run_id: i64,
        /// unaware, P1, P2, P3, P1+P3, P2+P3 (P1 where the run has it).
        #[arg(long)]
        variant: Option<String>,
        /// Also 95 % bootstrap intervals per culture from this many resamples of its questions;
        /// with --json the output is `{"scores": ..., "intervals": [...]}`.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        intervals: Option<u32>,
        /// The seed of the resamples.
        #[arg(long, default_value_t = culturespa::analysis::DEFAULT_SEED)]
        seed: u64,
        #[arg(long)]
        json: bool,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// Every review of a run (reviewer, decision, edits, notes, time; superseded ones too) as CSV
    /// or JSON on standard output.
    Reviews {
        run_id: i64,
        #[arg(long, value_enum, default_value = "csv")]
        format: ReviewExportFormat,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
}

pub async fn run(globals: &Globals, command: RunsCommand) -> anyhow::Result<()> {
    match command {
        RunsCommand::List { limit, json, data_dir } => {
            let (total, runs) = Store::open(&data_dir).await?.runs(limit, 0).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&shared::api::Page { total, items: runs })?);
                return Ok(());
            }
            println!("run\tstatus\tname\tmodel\tcreated");
            for run in &runs {
                let remote = run.config.engine.as_ref().map(|engine| format!("{} (remote)", engine.model));
                let model = remote.as_deref().or(run.config.model.as_deref()).unwrap_or("(default)");
                let status = format!("{:?}", run.status).to_lowercase();
                println!("{}\t{status}\t{}\t{model}\t{}", run.run_id, run.config.name, run.created_at);
            }
            if total > runs.len() as u64 {
                eprintln!("{} of {total} runs (--limit)", runs.len());
            }
        }
        RunsCommand::Scores { run_id, variant, intervals, seed, json, data_dir } => {
            let store = Store::open(&data_dir).await?;
            let survey = globals.survey()?;
            let selected = select_run_variant(&store, run_id, variant.as_deref()).await?;
            let personas = stored_personas(&store, &survey, run_id, selected.variant).await?;
            let bounds = intervals.map(|resamples| score_intervals(&survey, &personas, resamples, seed));
            let scores = stored_run_scores(&store, &survey, selected).await?;
            if json {
                let value = match &bounds {
                    Some(bounds) => serde_json::json!({"scores": scores, "intervals": bounds}),
                    None => serde_json::to_value(&scores)?,
                };
                println!("{}", serde_json::to_string_pretty(&value)?);
                return Ok(());
            }
            println!(
                "run {} ({}), {}: paper metric (1 − JSD), ×100",
                scores.run_id, scores.run_name, scores.variant_label
            );
            let number = |value: Option<f64>| value.map_or_else(|| "–".to_string(), |value| format!("{value:.2}"));
            let range = |interval: Option<&shared::analysis::Interval>| {
                interval.map_or_else(String::new, |interval| format!(" [{:.2}, {:.2}]", interval.low, interval.high))
            };
            for culture in &scores.scores {
                let bound =
                    bounds.as_ref().and_then(|bounds| bounds.iter().find(|b| b.country_code == culture.country_code));
                println!(
                    "{}\t{:.2}{}\t({}{})",
                    culture.country_code,
                    culture.score,
                    range(bound.map(|b| &b.score)),
                    number(culture.one_minus_jsd),
                    range(bound.and_then(|b| b.one_minus_jsd.as_ref()))
                );
            }
            println!("average\t{}\t({})", number(scores.average), number(scores.average_one_minus_jsd));
            for skipped in &scores.skipped_cultures {
                eprintln!("skipped {skipped:?}");
            }
        }
        RunsCommand::Reviews { run_id, format, data_dir } => {
            let records = Store::open(&data_dir).await?.review_records(run_id).await?;
            std::io::Write::write_all(&mut std::io::stdout(), &render_reviews(&records, format)?)?;
            eprintln!("{} review(s) of run {run_id}", records.len());
        }
    }
    Ok(())
}
