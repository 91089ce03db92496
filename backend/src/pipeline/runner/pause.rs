//! A test hook at a stored-progress point. With `CULTURESPA_PAUSE_AFTER_COMMITS=N` and
//! `CULTURESPA_PAUSE_FILE=PATH` in the environment, the Nth commit of stored work (a chunk of
//! answers, a generated reply) in this process writes PATH and then waits there for ever: a kill
//! test kills the process once PATH exists, so the kill falls at a known point however fast or
//! slow the engine is. Unset (always, outside tests), it does nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

pub const PAUSE_AFTER_COMMITS: &str = "CULTURESPA_PAUSE_AFTER_COMMITS";
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

/// Called after each commit of stored work.
pub(super) fn after_commit() {
    let Some((after, file)) = pause_point() else { return };
    if COMMITS.fetch_add(1, Ordering::SeqCst) + 1 == *after {
        if let Err(error) = std::fs::write(file, b"paused") {
            tracing::error!(file = %file.display(), %error, "cannot write the pause file");
        }
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
}
