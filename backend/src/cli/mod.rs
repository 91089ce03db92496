//! The command line: one module per command (or family of commands), each with its arguments
//! and an `async fn run`, all on the one runtime `main` starts.

pub mod batch;
pub mod bench;
pub mod data;
pub mod export;
pub mod meter;
pub mod models;
pub mod questions;
pub mod run;
pub mod runs;
pub mod serve;
pub mod train;
pub mod users;

use std::path::PathBuf;

use anyhow::Context;

/// The options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Globals {
    /// A folder with the four WVS data files, instead of the copies embedded in the binary.
    #[arg(long, global = true, env = "CULTURESPA_WVS_DATA")]
    pub wvs_data: Option<PathBuf>,
    /// Where models are installed (scripts/fetch-model.sh puts them in models/).
    #[arg(long, global = true, env = "CULTURESPA_MODELS_DIR", default_value = culturespa::models::DEFAULT_MODELS_DIR)]
    pub models_dir: PathBuf,
    /// Run the models' projections as bf16 GEMMs (`run`, `serve`, the stage commands, `bench
    /// score`): on AMX tiles, or AVX-512 BF16 vectors where the CPU has no AMX (Zen 4); f32 (the
    /// reference) otherwise. A slow portable loop stands in where the CPU has neither.
    #[arg(long, visible_alias = "bf16", global = true, env = "CULTURESPA_AMX")]
    pub amx: bool,
    /// Force the fused f32 CPU kernels on or off (`on`, `off`); by default release builds use
    /// them and debug builds the generic tensor path.
    #[arg(long, global = true, env = "CULTURESPA_CPU_KERNELS", value_parser = parse_on_off)]
    pub cpu_kernels: Option<bool>,
    /// Keep the store on this database instead of the data folder's SQLite file:
    /// `postgres://user:password@host/db` (run outputs still go under the data folder).
    #[arg(long, global = true, env = "CULTURESPA_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

fn parse_on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("'{other}': on or off")),
    }
}

impl Globals {
    pub fn survey(&self) -> anyhow::Result<culturespa::survey::SurveyData> {
        Ok(culturespa::server::load_survey(self.wvs_data.as_deref())?)
    }

    /// The models runs may name, `default` for those that name none.
    pub fn model_source(&self, default: impl Into<String>) -> anyhow::Result<culturespa::models::ModelSource> {
        Ok(culturespa::models::ModelSource::new(&self.models_dir, default)?
            .with_bf16_projections(self.amx)
            .with_cpu_kernels(self.cpu_kernels))
    }

    /// A model named as people name them (catalogue name, a model of the folder, a path) → its file.
    pub fn resolve_model(&self, spec: &str) -> anyhow::Result<PathBuf> {
        Ok(culturespa::models::ModelRegistry::new(&self.models_dir)?.resolve(spec)?)
    }
}

/// A command-line value spelled as serde writes the enum (`content_free`).
pub fn parse_serde_name<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|error| error.to_string())
}

/// A prompt variant as people write it (`P1`, `p1p3`, `P1+P3`, `unaware`).
pub fn parse_variant_arg(text: &str) -> anyhow::Result<shared::PromptVariant> {
    shared::analysis::parse_variant(text)
        .with_context(|| format!("unknown variant '{text}': unaware, P1, P2, P3, P1+P3 or P2+P3"))
}
