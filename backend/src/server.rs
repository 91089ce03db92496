//! Starting the server: load the WVS data, open the store, seed it, serve.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::analysis::{import_embedded_release, EMBEDDED_SOURCE};
use crate::api::{app, AppState};
use crate::store::Store;
use crate::survey::SurveyData;

/// Loads the WVS data from `dir`, or the embedded copies when `dir` is `None`.
pub fn load_survey(dir: Option<&Path>) -> Result<SurveyData, crate::survey::DataError> {
    match dir {
        Some(dir) => SurveyData::from_dir(dir),
        None => SurveyData::embedded(),
    }
}

/// The default model: a name of the model catalogue (`scripts/fetch-model.sh` installs it).
pub const DEFAULT_MODEL: &str = crate::models::DEFAULT_MODEL_NAME;

/// The provenance recorded with the seeded WVS questions.
pub const WVS_PROVENANCE: &str = "World Values Survey wave 7 (data/wvs/wvs_questions.json)";

/// Opens the store in `data_dir`, makes sure it holds the WVS questions and, on first start, imports
/// the paper's released Llama-3-8B answers as a run (so the browser has real instances).
pub async fn open_store(data_dir: &Path, survey: &SurveyData) -> anyhow::Result<Store> {
    let store = Store::open(data_dir).await.with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let inserted =
        store.insert_questions(&survey.questions, WVS_PROVENANCE).await.context("seeding the WVS questions")?;
    if inserted > 0 {
        tracing::info!(inserted, "stored the WVS questions");
    }
    let import = import_embedded_release(&store, survey)
        .await
        .with_context(|| format!("importing the released answers of {EMBEDDED_SOURCE}"))?;
    if import.created {
        tracing::info!(
            run_id = import.run_id,
            answers = import.answers,
            instances = import.instances,
            "imported the paper's released answers ({EMBEDDED_SOURCE})"
        );
    }
    Ok(store)
}

pub struct ServeOptions {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub wvs_data: Option<PathBuf>,
    pub static_dir: Option<PathBuf>,
    /// The models runs can name, and the one of runs that name none.
    pub models: crate::models::ModelSource,
}

pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let survey = Arc::new(load_survey(options.wvs_data.as_deref())?);
    let store = open_store(&options.data_dir, &survey).await?;
    let static_dir = options.static_dir.filter(|dir| {
        let present = dir.join("index.html").is_file();
        if !present {
            tracing::warn!(dir = %dir.display(), "no built frontend there (run `make run`); serving the API only");
        }
        present
    });
    let router = app(AppState::new(survey, store, static_dir, options.models));
    let listener =
        tokio::net::TcpListener::bind(options.addr).await.with_context(|| format!("binding {}", options.addr))?;
    tracing::info!("CultureSPA Studio on http://{}", listener.local_addr()?);
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")
}
