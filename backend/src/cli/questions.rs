//! `culturespa questions filter|import`: the paper's filters on generated questions.

use std::path::PathBuf;

use culturespa::{pipeline, server};

use super::Globals;

#[derive(Debug, clap::Subcommand)]
pub enum QuestionsCommand {
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

pub async fn run(globals: &Globals, command: QuestionsCommand) -> anyhow::Result<()> {
    let survey = globals.survey()?;
    match command {
        QuestionsCommand::Filter { files, out, question_set } => {
            let outcome = pipeline::filter_generated_files(&survey.records, &files, &question_set)?;
            pipeline::write_questions_json(&out, &outcome.questions)?;
            println!("{}", serde_json::to_string(&outcome.summary)?);
        }
        QuestionsCommand::Import { files, question_set, data_dir } => {
            let store = server::open_store(&data_dir, &survey).await?;
            let summary = pipeline::import_generated_files(&store, &survey.records, &files, &question_set).await?;
            println!("{}", serde_json::to_string(&summary)?);
        }
    }
    Ok(())
}
