//! `culturespa export`: a run's instances as SFT data.

use std::path::PathBuf;

use culturespa::{curation, server};

use super::Globals;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[arg(long = "run")]
    run_id: i64,
    #[arg(long, value_enum, default_value = "alpaca")]
    format: curation::ExportFormat,
    /// joint: one file for all cultures; specific: one file per culture.
    #[arg(long, value_enum, default_value = "joint")]
    mode: curation::ExportMode,
    /// Only instances reviewers accepted, with their changed or edited answers.
    #[arg(long)]
    accepted_only: bool,
    /// Only this culture (a country code).
    #[arg(long)]
    culture: Option<String>,
    /// The folder to write into; created if missing.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
    data_dir: PathBuf,
}

pub async fn run(globals: &Globals, args: ExportArgs) -> anyhow::Result<()> {
    let survey = globals.survey()?;
    let country_code = args.culture.map(|code| code.to_ascii_uppercase());
    let options = curation::ExportOptions {
        run_id: args.run_id,
        format: args.format,
        mode: args.mode,
        accepted_only: args.accepted_only,
        country_code,
    };
    let store = server::open_store(&args.data_dir, &survey).await?;
    let files = curation::export_run(&store, &survey, &options).await?;
    let out = &args.out;
    let paths = curation::write_export(out, &files, options.format)?;
    let records: u64 = files.iter().map(|file| file.records).sum();
    println!("run {}: {records} records in {} file(s) in {}", options.run_id, files.len(), out.display());
    for (file, path) in files.iter().zip(&paths) {
        println!("{:>6}  {}", file.records, path.display());
    }
    println!("        {}", out.join(curation::export::DATASET_INFO_FILE).display());
    Ok(())
}
