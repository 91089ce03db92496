//! `culturespa`: the CultureSPA Studio server and command-line tool.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use culturespa::analysis;
use culturespa::pipeline;
use culturespa::server::{self, ServeOptions};
use culturespa::store::Store;

#[derive(Debug, Parser)]
#[command(name = "culturespa", version, about = "Culture alignment of language models (CultureSPA)")]
struct Cli {
    /// A folder with the four WVS data files, instead of the copies embedded in the binary.
    #[arg(long, global = true, env = "CULTURESPA_WVS_DATA")]
    wvs_data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API and the browser app.
    Serve {
        #[arg(long, env = "CULTURESPA_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Where the database and run outputs live; created on first start.
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
        /// The Trunk-built frontend.
        #[arg(long, env = "CULTURESPA_STATIC_DIR", default_value = "dist")]
        static_dir: PathBuf,
    },
    /// Work with the WVS data.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Score the paper's released answer files (wvs_result_*.json) with the paper's metric.
    ScoreReleased {
        /// The folder of released files; the embedded Llama-3-8B release when omitted.
        dir: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Import released answers (culture-unaware and P1) as a run and collect its instances.
    ImportReleased {
        /// The folder of released files; the embedded Llama-3-8B release when omitted.
        dir: Option<PathBuf>,
        /// The run's name; by default after the model (the folder's name).
        #[arg(long)]
        name: Option<String>,
        /// Where the database lives.
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// Filter and import generated questions.
    Questions {
        #[command(subcommand)]
        command: QuestionsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Validate the WVS data and print what it holds as JSON.
    Check,
}

#[derive(Debug, Subcommand)]
enum QuestionsCommand {
    /// Apply the paper's filters to generated-question files (.json or .json.gz), write the kept
    /// questions as JSON and print the counts.
    Filter {
        /// Generated-question files, e.g. data/generated/*/generated_questions_topic_*.json.gz.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where to write the kept questions (a JSON list).
        #[arg(long)]
        out: PathBuf,
        /// The question set the kept questions belong to.
        #[arg(long = "set", default_value = "generated")]
        question_set: String,
    },
    /// Filter generated-question files and store the kept questions as a question set.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The name of the question set.
        #[arg(long = "set")]
        question_set: String,
        /// Where the database lives.
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { addr, data_dir, static_dir } => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(server::serve(ServeOptions {
                addr,
                data_dir,
                wvs_data: cli.wvs_data,
                static_dir: Some(static_dir),
            }))
        }
        Command::Data { command: DataCommand::Check } => {
            let survey = server::load_survey(cli.wvs_data.as_deref())?;
            let summary = serde_json::json!({
                "questions": survey.questions.len(),
                "records": survey.records.len(),
                "cultures": survey.cultures.len(),
                "topics": survey.topics.iter().map(|t| serde_json::json!({"index": t.index, "name": t.name, "questions": t.question_count})).collect::<Vec<_>>(),
            });
            println!("{summary}");
            Ok(())
        }
        Command::ScoreReleased { dir, json } => {
            let survey = server::load_survey(cli.wvs_data.as_deref())?;
            let released = analysis::load_released(dir.as_deref(), &survey)?;
            for skipped in &released.skipped_files {
                eprintln!("note: skipped {}: {}", skipped.file_name, skipped.reason);
            }
            let scores = analysis::score_released(&survey, &released);
            if json {
                println!("{}", serde_json::to_string_pretty(&scores)?);
            } else {
                print!("{}", analysis::render_table(&survey, &scores));
            }
            Ok(())
        }
        Command::ImportReleased { dir, name, data_dir } => {
            let survey = server::load_survey(cli.wvs_data.as_deref())?;
            let released = analysis::load_released(dir.as_deref(), &survey)?;
            for skipped in &released.skipped_files {
                eprintln!("note: skipped {}: {}", skipped.file_name, skipped.reason);
            }
            let runtime = tokio::runtime::Runtime::new()?;
            let summary = runtime.block_on(async {
                // Not `open_store`: import what was asked for, not also the embedded release.
                let store = Store::open(&data_dir).await?;
                anyhow::Ok(analysis::import_released(&store, &survey, &released, name.as_deref()).await?)
            })?;
            let outcome = if summary.created { "imported as" } else { "already imported as" };
            println!(
                "{} {outcome} run {}: {} answers, {} culture-related instances in {} (question, culture) pairs",
                released.source, summary.run_id, summary.answers, summary.instances, summary.aware_answers
            );
            Ok(())
        }
        Command::Questions { command: QuestionsCommand::Filter { files, out, question_set } } => {
            let survey = server::load_survey(cli.wvs_data.as_deref())?;
            let outcome = pipeline::filter_generated_files(&survey.records, &files, &question_set)?;
            pipeline::write_questions_json(&out, &outcome.questions)?;
            println!("{}", serde_json::to_string(&outcome.summary)?);
            Ok(())
        }
        Command::Questions { command: QuestionsCommand::Import { files, question_set, data_dir } } => {
            let survey = server::load_survey(cli.wvs_data.as_deref())?;
            let runtime = tokio::runtime::Runtime::new()?;
            let summary = runtime.block_on(async {
                let store = server::open_store(&data_dir, &survey).await?;
                anyhow::Ok(pipeline::import_generated_files(&store, &survey.records, &files, &question_set).await?)
            })?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
    }
}
