//! Which process executes a run: an exclusive lock on `DATA_DIR/runs/RUN_ID/run.lock`, held while
//! the run executes. The operating system lets go of it when the process ends, killed or not, so a
//! starting server can tell a run that another process (a `culturespa run` on the same data folder)
//! is executing from one left in flight by a process that died.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// Held while a run executes; dropping it releases the run.
#[derive(Debug)]
pub struct RunLock {
    /// `None` for a store without a folder (in memory): no other process can reach its runs.
    _file: Option<File>,
}

fn lock_path(data_dir: &Path, run_id: i64) -> PathBuf {
    data_dir.join("runs").join(run_id.to_string()).join("run.lock")
}

impl RunLock {
    /// Takes the run's lock; `Ok(None)` when another holder (another process, or another
    /// execution in this one) has it.
    pub fn try_acquire(data_dir: Option<&Path>, run_id: i64) -> io::Result<Option<RunLock>> {
        let Some(data_dir) = data_dir else {
            return Ok(Some(RunLock { _file: None }));
        };
        let path = lock_path(data_dir, run_id);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(RunLock { _file: Some(file) })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(error)) => Err(error),
        }
    }

    /// Whether someone executes the run now.
    pub fn is_held(data_dir: Option<&Path>, run_id: i64) -> io::Result<bool> {
        Ok(Self::try_acquire(data_dir, run_id)?.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let held = RunLock::try_acquire(Some(dir.path()), 7).unwrap().expect("free");
        // Another open file description, as another process would have.
        assert!(RunLock::try_acquire(Some(dir.path()), 7).unwrap().is_none());
        assert!(RunLock::is_held(Some(dir.path()), 7).unwrap());
        assert!(!RunLock::is_held(Some(dir.path()), 8).unwrap(), "another run is free");
        drop(held);
        assert!(!RunLock::is_held(Some(dir.path()), 7).unwrap());
        assert!(RunLock::try_acquire(None, 7).unwrap().is_some(), "an in-memory store has no lock");
    }
}
