//! `culturespa`: the CultureSPA Studio server and command-line tool. `main` parses the command
//! line and dispatches to the command's module in [`cli`], on one runtime.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shared::Stage;

use cli::Globals;

#[derive(Debug, Parser)]
#[command(name = "culturespa", version, about = "Culture alignment of language models (CultureSPA)")]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API and the browser app.
    Serve(cli::serve::ServeArgs),
    /// Work with the WVS data.
    Data {
        #[command(subcommand)]
        command: cli::data::DataCommand,
    },
    /// Score the paper's released answer files (wvs_result_*.json) with the paper's metric.
    ScoreReleased(cli::data::ScoreReleasedArgs),
    /// The persona meter of a stored run: first-option share, share of culture-aware answers
    /// that differ from the unaware ones, their mean total variation, and per culture the change
    /// of the paper's metric and 1 − JSD with 95 % bootstrap intervals beside a uniform answerer.
    PersonaMeter(cli::meter::PersonaMeterArgs),
    /// The persona meter as a quick run: answers about --questions WVS questions (a sample of
    /// each topic drawn with --seed) unaware and with each --variants persona for --cultures in
    /// scoring mode with the levers asked for, then prints the meter of each variant. The run is
    /// stored; `run --resume ID` finishes it.
    Sensitivity(cli::meter::SensitivityArgs),
    /// Import released answers (culture-unaware and P1) as a run and collect its instances.
    ImportReleased(cli::data::ImportReleasedArgs),
    /// Do a run: all its stages, with progress bars; Ctrl-C stops it so that `--resume` continues.
    Run(cli::run::RunArgs),
    /// Do (or finish) only the generate stage of a stored run: new questions per topic, filtered.
    Generate(cli::run::StageArgs),
    /// Do (or finish) only the answer stage of a stored run.
    Answer(cli::run::StageArgs),
    /// Do (or finish) only the collect stage of a stored run.
    Collect(cli::run::StageArgs),
    /// Do (or finish) only the evaluate stage (the 259 WVS questions) of a stored run.
    Evaluate(cli::run::StageArgs),
    /// Train a LoRA adapter (PEFT layout) on an SFT file: ours or LLaMA-Factory's alpaca, or
    /// `messages` records. Run it again on the same --out to resume a killed training.
    Train(cli::train::TrainArgs),
    /// The general-ability probe: perplexity on a held-out general text and accuracy on 40
    /// multiple-choice questions, for the model and for the model with each adapter (merged);
    /// one JSON line per setting.
    Probe(cli::train::ProbeArgs),
    /// The model catalogue and the models folder: what runs can name and what is installed.
    Models(cli::models::ModelsArgs),
    /// Measure the inference engine.
    Bench {
        #[command(subcommand)]
        command: cli::bench::BenchCommand,
    },
    /// Filter and import generated questions.
    Questions {
        #[command(subcommand)]
        command: cli::questions::QuestionsCommand,
    },
    /// A run's answering stage as an OpenAI batch file (vllm run-batch), and its results read back.
    Batch {
        #[command(subcommand)]
        command: cli::batch::BatchCommand,
    },
    /// Stored runs: list them, print a run's scores.
    Runs {
        #[command(subcommand)]
        command: cli::runs::RunsCommand,
    },
    /// User accounts. While none exists the server runs in open local mode.
    Users {
        #[command(subcommand)]
        command: cli::users::UsersCommand,
    },
    /// Export a run's instances as SFT data (JSON lines and LLaMA-Factory's dataset_info.json).
    Export(cli::export::ExportArgs),
}

fn main() -> ExitCode {
    culturespa::engine::bench::single_threaded_elementwise();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let outcome = tokio::runtime::Runtime::new().map_err(anyhow::Error::from).and_then(|runtime| {
        let outcome = runtime.block_on(dispatch(cli));
        // A run's engine thread may still hold work; the commands have reported their outcome.
        runtime.shutdown_background();
        outcome
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let globals = &cli.globals;
    if let Some(url) = &globals.database_url {
        culturespa::store::use_database_url(url.clone());
    }
    match cli.command {
        Command::Serve(args) => cli::serve::run(globals, args).await,
        Command::Data { command } => cli::data::run(globals, command),
        Command::ScoreReleased(args) => cli::data::score_released(globals, args),
        Command::ImportReleased(args) => cli::data::import_released(globals, args).await,
        Command::PersonaMeter(args) => cli::meter::persona_meter(globals, args).await,
        Command::Sensitivity(args) => cli::meter::sensitivity(globals, args).await,
        Command::Run(args) => cli::run::run(globals, args).await,
        Command::Generate(args) => cli::run::stage(globals, args, Stage::Generate).await,
        Command::Answer(args) => cli::run::stage(globals, args, Stage::Answer).await,
        Command::Collect(args) => cli::run::stage(globals, args, Stage::Collect).await,
        Command::Evaluate(args) => cli::run::stage(globals, args, Stage::Evaluate).await,
        Command::Train(args) => cli::train::train(globals, args),
        Command::Probe(args) => cli::train::probe(globals, args),
        Command::Models(args) => cli::models::run(globals, args),
        Command::Bench { command } => cli::bench::run(globals, command).await,
        Command::Questions { command } => cli::questions::run(globals, command).await,
        Command::Runs { command } => cli::runs::run(globals, command).await,
        Command::Batch { command } => cli::batch::run(globals, command).await,
        Command::Users { command } => cli::users::run(command).await,
        Command::Export(args) => cli::export::run(globals, args).await,
    }
}
