//! The runs the analysis pages pick from, and the one they show when the URL names none.

use shared::api::Page;
use shared::Run;

use crate::api;

/// The run analyses look at when the URL names none: the oldest (the paper's release, run 1).
pub async fn default_run_id() -> Result<i64, String> {
    let runs = api::get::<Page<Run>>("/runs?limit=500").await?;
    runs.items.iter().map(|run| run.run_id).min().ok_or_else(|| "No runs yet.".to_string())
}

/// The runs to choose from, newest first.
pub async fn all_runs() -> Result<Vec<Run>, String> {
    Ok(api::get::<Page<Run>>("/runs?limit=500").await?.items)
}
