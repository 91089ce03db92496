//! `culturespa data check`, `data prompts`, `score-released`, `import-released`: the WVS data,
//! its evaluation prompts and the paper's released answers.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use culturespa::analysis;
use culturespa::pipeline::answer_prompt::placed_answer_prompt;
use culturespa::store::Store;
use shared::{PersonaPlacement, PromptVariant};

use super::{parse_serde_name, parse_variant_arg, Globals};

#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Validate the WVS data and print what it holds as JSON.
    Check,
    /// The evaluation workload of one prompt variant as JSON lines on stdout, culture by culture
    /// (the 259 WVS questions each) as a run lists it: one {"id", "question_id", "country_code",
    /// "text", "choices"} per prompt, its text rendered with the model's chat template. The format
    /// of shared/bench/make_prompts.py, so `bench score` and the llama.cpp harness take it (P2 and
    /// P3 prompts are longer than P1's).
    Prompts {
        /// A model of the catalogue or the models folder, a GGUF file or a Hugging Face folder
        /// (only its chat template is read).
        #[arg(long)]
        model: String,
        /// unaware, P1, P2, P3, P1+P3 or P2+P3.
        #[arg(long, default_value = "P1")]
        variant: String,
        /// Where the persona sits: system (the paper's prompts), user or both.
        #[arg(long, default_value = "system", value_parser = parse_serde_name::<PersonaPlacement>)]
        persona: PersonaPlacement,
        /// The first N questions only (0 = all 259).
        #[arg(long, default_value_t = 0)]
        limit: usize,
        /// In the order a scoring stage answers them: sorted by text, so that prompts sharing a
        /// start are neighbours.
        #[arg(long)]
        sorted: bool,
    },
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

pub fn run(globals: &Globals, command: DataCommand) -> anyhow::Result<()> {
    match command {
        DataCommand::Check => check(globals),
        DataCommand::Prompts { model, variant, persona, limit, sorted } => {
            prompts(globals, &model, parse_variant_arg(&variant)?, persona, limit, sorted)
        }
    }
}

fn check(globals: &Globals) -> anyhow::Result<()> {
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

fn prompts(
    globals: &Globals,
    model: &str,
    variant: PromptVariant,
    persona: PersonaPlacement,
    limit: usize,
    sorted: bool,
) -> anyhow::Result<()> {
    let survey = globals.survey()?;
    let model_path = globals.resolve_model(model)?;
    let template = culturespa::engine::load_chat_template(&model_path)
        .with_context(|| format!("the chat template of {}", model_path.display()))?;
    let questions = match limit {
        0 => &survey.questions[..],
        limit => &survey.questions[..limit.min(survey.questions.len())],
    };
    let settings: Vec<Option<&str>> = if variant.is_culture_specific() {
        survey.cultures.iter().map(|culture| Some(culture.country_code.as_str())).collect()
    } else {
        vec![None]
    };
    let mut lines = Vec::with_capacity(settings.len() * questions.len());
    for country_code in settings {
        for question in questions {
            let chat = placed_answer_prompt(&survey, question, variant, country_code, persona)
                .with_context(|| format!("the {} prompt of {}", variant.label(), question.question_id))?;
            let text = template.render_exchange(&chat.system, &chat.user)?;
            lines.push((text, country_code, question));
        }
    }
    if sorted {
        lines.sort_by(|a, b| a.0.cmp(&b.0)); // stable, as the stage's
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (text, country_code, question) in lines {
        let line = serde_json::json!({
            "id": format!("{}/{}", country_code.unwrap_or("unaware"), question.question_id),
            "question_id": question.question_id,
            "country_code": country_code,
            "text": text,
            "choices": question.option_codes(),
        });
        if let Err(error) = writeln!(out, "{line}") {
            return quiet_when_piped_away(error);
        }
    }
    out.flush().or_else(quiet_when_piped_away)
}

/// A reader that stops early (`| head`) is not an error.
fn quiet_when_piped_away(error: std::io::Error) -> anyhow::Result<()> {
    match error.kind() {
        std::io::ErrorKind::BrokenPipe => Ok(()),
        _ => Err(error.into()),
    }
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
