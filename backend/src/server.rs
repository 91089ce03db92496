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
    /// Serve in open mode (no accounts: anyone may launch runs and review) on an address other
    /// than loopback; refused without it.
    pub open: bool,
    /// Session cookies are `Secure` (the server is reached over HTTPS).
    pub secure_cookies: bool,
}

/// Open mode (no account yet) is for one machine: on any other address the server wants an
/// account, or `--open` said so on purpose.
fn check_open_mode(addr: SocketAddr, accounts: usize, open: bool) -> anyhow::Result<()> {
    if accounts > 0 || addr.ip().is_loopback() {
        return Ok(());
    }
    if !open {
        anyhow::bail!(
            "{addr} is not a loopback address and there is no account, so anyone who reaches it could start runs \
             and review under any name. Add an account first (`culturespa users add NAME --role admin \
             --password-stdin`), or pass --open to serve in open mode anyway"
        );
    }
    tracing::warn!(%addr, "serving in OPEN mode beyond loopback: anyone who reaches it can start runs and review");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. Runs in flight stop with the process: what they stored is
/// whole (every chunk commits with its progress), and the next start resumes them.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
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
    check_open_mode(options.addr, store.users().await?.len(), options.open)?;
    let state = AppState::new(survey, store, static_dir, options.models).with_secure_cookies(options.secure_cookies);
    let resumed = state.runs.resume_interrupted().await?;
    if !resumed.is_empty() {
        tracing::info!(?resumed, "resuming the runs the last server left in flight");
    }
    let router = app(state);
    let listener =
        tokio::net::TcpListener::bind(options.addr).await.with_context(|| format!("binding {}", options.addr))?;
    tracing::info!("CultureSPA Studio on http://{}", listener.local_addr()?);
    // With the client's address, for the login rate limit.
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_mode_is_for_loopback_unless_asked_for() {
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let everywhere: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(check_open_mode(loopback, 0, false).is_ok());
        assert!(check_open_mode("[::1]:8080".parse().unwrap(), 0, false).is_ok());
        let refused = check_open_mode(everywhere, 0, false).unwrap_err().to_string();
        assert!(refused.contains("users add") && refused.contains("--open"), "{refused}");
        assert!(check_open_mode(everywhere, 0, true).is_ok());
        assert!(check_open_mode(everywhere, 1, false).is_ok());
    }
}
