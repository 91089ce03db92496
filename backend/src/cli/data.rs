//! `culturespa data check`, `score-released`, `import-released`: the WVS data and the paper's
//! released answers.

use std::path::PathBuf;

use culturespa::analysis;
use culturespa::store::Store;

use super::Globals;

#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Validate the WVS data and print what it holds as JSON.
    Check,
}

#[derive(Debug, clap::Args)]
pub struct ScoreReleasedArgs {
    /// The folder of released files; the embedded Llama-3-8B release when omitted.
    dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ImportReleasedArgs {
    /// The folder of released files; the embedded Llama-3-8B release when omitted.
    dir: Option<PathBuf>,
    /// The run's name; by default after the model (the folder's name).
    #[arg(long)]
    name: Option<String>,
    /// Where the database lives.
    #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
    data_dir: PathBuf,
}

pub fn check(globals: &Globals, command: DataCommand) -> anyhow::Result<()> {
    let DataCommand::Check = command;
    let survey = globals.survey()?;
    let topics: Vec<_> = survey
        .topics
        .iter()
        .map(|topic| serde_json::json!({"index": topic.index, "name": topic.name, "questions": topic.question_count}))
        .collect();
    let summary = serde_json::json!({
        "questions": survey.questions.len(),
        "records": survey.records.len(),
        "cultures": survey.cultures.len(),
        "topics": topics,
    });
    println!("{summary}");
    Ok(())
}

pub fn score_released(globals: &Globals, args: ScoreReleasedArgs) -> anyhow::Result<()> {
    let survey = globals.survey()?;
    let released = analysis::load_released(args.dir.as_deref(), &survey)?;
    for skipped in &released.skipped_files {
        eprintln!("note: skipped {}: {}", skipped.file_name, skipped.reason);
    }
    let scores = analysis::score_released(&survey, &released);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&scores)?);
    } else {
        print!("{}", analysis::render_table(&survey, &scores));
    }
    Ok(())
}

pub async fn import_released(globals: &Globals, args: ImportReleasedArgs) -> anyhow::Result<()> {
    let survey = globals.survey()?;
    let released = analysis::load_released(args.dir.as_deref(), &survey)?;
    for skipped in &released.skipped_files {
        eprintln!("note: skipped {}: {}", skipped.file_name, skipped.reason);
    }
    // Not `open_store`: import what was asked for, not also the embedded release.
    let store = Store::open(&args.data_dir).await?;
    let summary = analysis::import_released(&store, &survey, &released, args.name.as_deref()).await?;
    let outcome = if summary.created { "imported as" } else { "already imported as" };
    println!(
        "{} {outcome} run {}: {} answers, {} culture-related instances in {} (question, culture) pairs",
        released.source, summary.run_id, summary.answers, summary.instances, summary.aware_answers
    );
    Ok(())
}
