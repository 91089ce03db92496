//! `culturespa`: the CultureSPA Studio server and command-line tool.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use culturespa::server::{self, ServeOptions};

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
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Validate the WVS data and print what it holds as JSON.
    Check,
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
    }
}
