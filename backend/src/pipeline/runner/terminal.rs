//! Progress bars in the terminal for a run executed by the command line.

use std::collections::HashMap;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use shared::{RunEvent, Stage};
use tokio::sync::broadcast;

use super::RunUpdate;

const BAR_TEMPLATE: &str = "{prefix:>9} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left) {msg}";

/// Draws one bar per stage from the run's updates until the run finishes or the channel closes.
pub fn show_progress(run_id: i64, mut updates: broadcast::Receiver<RunUpdate>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bars = MultiProgress::new();
        let style = ProgressStyle::with_template(BAR_TEMPLATE)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let mut by_stage: HashMap<Stage, ProgressBar> = HashMap::new();
        let mut bar = |stage: Stage, total: u64| {
            by_stage
                .entry(stage)
                .or_insert_with(|| {
                    let bar = bars.add(ProgressBar::new(total).with_style(style.clone()));
                    bar.set_prefix(format!("{stage:?}").to_lowercase());
                    bar
                })
                .clone()
        };
        loop {
            let update = match updates.recv().await {
                Ok(update) => update,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if update.run_id != run_id {
                continue;
            }
            match update.event {
                RunEvent::StageStarted { stage, total } => bar(stage, total).set_length(total),
                RunEvent::Progress { stage, done, total } => {
                    let bar = bar(stage, total);
                    bar.set_length(total);
                    bar.set_position(done);
                }
                RunEvent::StageFinished { stage } => {
                    let bar = bar(stage, 0);
                    bar.finish_with_message("done");
                }
                RunEvent::Log { message } => {
                    let _ = bars.println(message);
                }
                RunEvent::Loss { step, loss } => {
                    let _ = bars.println(format!("step {step}: loss {loss:.4}"));
                }
                RunEvent::Finished { status } => {
                    let _ = bars.println(format!("run {run_id} {status:?}").to_lowercase());
                    break;
                }
            }
        }
    })
}
