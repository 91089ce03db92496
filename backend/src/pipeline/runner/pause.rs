//! A test hook at a stored-progress point. With `CULTURESPA_PAUSE_AFTER_COMMITS=N` and
//! `CULTURESPA_PAUSE_FILE=PATH` in the environment, the Nth commit of stored work (a chunk of
//! answers, a generated reply) in this process writes PATH and then waits there until PATH is
//! removed: a kill test kills the process once PATH exists, so the kill falls at a known point
//! however fast or slow the engine is; an interrupt test sends Ctrl-C there and then removes PATH.
//! Unset (always, outside tests), it does nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

pub const PAUSE_AFTER_COMMITS: &str = "CULTURESPA_PAUSE_AFTER_COMMITS";
/// Test hook: milliseconds each piece of stored work waits before it commits (a slow engine).
pub const SLOW_COMMITS_MS: &str = "CULTURESPA_SLOW_COMMITS_MS";
pub const PAUSE_FILE: &str = "CULTURESPA_PAUSE_FILE";

static COMMITS: AtomicU64 = AtomicU64::new(0);

/// `(N, PATH)` when the hook is set.
fn pause_point() -> &'static Option<(u64, std::path::PathBuf)> {
    static POINT: OnceLock<Option<(u64, std::path::PathBuf)>> = OnceLock::new();
    POINT.get_or_init(|| {
        let after = std::env::var(PAUSE_AFTER_COMMITS).ok()?.parse().ok()?;
        Some((after, std::env::var_os(PAUSE_FILE)?.into()))
    })
}

/// Called before each commit of stored work: with `CULTURESPA_SLOW_COMMITS_MS` set, it waits that
/// long, so that a test sees the run as an artificially slow engine would make it.
pub(super) async fn before_commit() {
    static DELAY: OnceLock<Option<Duration>> = OnceLock::new();
    let delay = DELAY.get_or_init(|| std::env::var(SLOW_COMMITS_MS).ok()?.parse().ok().map(Duration::from_millis));
    if let Some(delay) = delay {
        tokio::time::sleep(*delay).await;
    }
}

/// Called after each commit of stored work.
pub(super) fn after_commit() {
    let Some((after, file)) = pause_point() else { return };
    if COMMITS.fetch_add(1, Ordering::SeqCst) + 1 == *after {
        if let Err(error) = std::fs::write(file, b"paused") {
            tracing::error!(file = %file.display(), %error, "cannot write the pause file");
        }
        while file.exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
