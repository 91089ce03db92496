//! `culturespa persona-meter` (the meter of a stored run) and `culturespa sensitivity` (the meter
//! as a quick run).

use std::path::PathBuf;
use std::sync::Arc;

use culturespa::analysis;
use culturespa::runs::sensitivity::{render_meters, run_sensitivity, SensitivityPlan, MAX_QUESTIONS};
use culturespa::runs::RunService;
use culturespa::server;
use culturespa::store::Store;

use super::{parse_serde_name, parse_variant_arg, Globals};

#[derive(Debug, clap::Args)]
pub struct PersonaMeterArgs {
    #[arg(long)]
    run: i64,
    /// A culture-aware variant: P1, P2, P3, P1+P3, P2+P3.
    #[arg(long, default_value = "P1")]
    variant: String,
    #[arg(long, default_value_t = analysis::DEFAULT_RESAMPLES, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    resamples: u32,
    #[arg(long, default_value_t = analysis::DEFAULT_SEED)]
    seed: u64,
    /// Print the meter as JSON.
    #[arg(long)]
    json: bool,
    #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
    data_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct SensitivityArgs {
    #[arg(long, env = "CULTURESPA_MODEL", default_value = server::DEFAULT_MODEL)]
    model: String,
    #[arg(long, default_value_t = 26, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_QUESTIONS)))]
    questions: u32,
    /// Country codes (comma-separated); all 18 when omitted.
    #[arg(long, value_delimiter = ',')]
    cultures: Vec<String>,
    /// Culture-aware variants (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "P1")]
    variants: Vec<String>,
    /// Where the persona goes: system (the paper), user, both.
    #[arg(long, default_value = "system", value_parser = parse_serde_name::<shared::PersonaPlacement>)]
    persona: shared::PersonaPlacement,
    /// How options are scored: digits (the option codes; the paper) or cloze (the option texts).
    #[arg(long, default_value = "digits", value_parser = parse_serde_name::<shared::ScoringFormulation>)]
    scoring: shared::ScoringFormulation,
    /// Calibration of the option distributions: none, content_free or permutation.
    #[arg(long, default_value = "none", value_parser = parse_serde_name::<shared::Calibration>)]
    calibration: shared::Calibration,
    #[arg(long, default_value_t = analysis::DEFAULT_RESAMPLES, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    resamples: u32,
    #[arg(long, default_value_t = analysis::DEFAULT_SEED)]
    seed: u64,
    #[arg(long)]
    json: bool,
    #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
    data_dir: PathBuf,
}

pub async fn persona_meter(globals: &Globals, args: PersonaMeterArgs) -> anyhow::Result<()> {
    let variant = parse_variant_arg(&args.variant)?;
    let survey = globals.survey()?;
    let store = Store::open(&args.data_dir).await?;
    let meter = analysis::run_persona_meter(&store, &survey, args.run, variant, args.resamples, args.seed).await?;
    match args.json {
        true => println!("{}", serde_json::to_string_pretty(&meter)?),
        false => print!("{}", render_meters(&[meter])),
    }
    Ok(())
}

pub async fn sensitivity(globals: &Globals, args: SensitivityArgs) -> anyhow::Result<()> {
    let variants = args.variants.iter().map(|text| parse_variant_arg(text)).collect::<anyhow::Result<Vec<_>>>()?;
    let plan = SensitivityPlan {
        model: args.model,
        questions: args.questions,
        cultures: args.cultures,
        variants,
        persona: args.persona,
        scoring: args.scoring,
        calibration: args.calibration,
        seed: args.seed,
    };
    let survey = Arc::new(globals.survey()?);
    let store = server::open_store(&args.data_dir, &survey).await?;
    let service = RunService::new(store, survey, globals.model_source(plan.model.clone())?);
    let meters = run_sensitivity(&service, &args.data_dir, &plan, args.resamples).await?;
    match args.json {
        true => println!("{}", serde_json::to_string_pretty(&meters)?),
        false => print!("{}", render_meters(&meters)),
    }
    Ok(())
}
