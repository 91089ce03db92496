//! Collect: the (question, culture) pairs where both answers parse and the aware answer differs
//! from the unaware one become culture-related instances.

use shared::{Run, RunEvent, Stage};

use super::{instance_variant, Runner, RunnerError};

pub(super) async fn collect_stage(runner: &Runner, run: &Run) -> Result<(), RunnerError> {
    let run_id = run.run_id;
    let variant = instance_variant(&run.config).ok_or_else(|| RunnerError::Config {
        run_id,
        message: "collecting instances needs a culture-aware variant".into(),
    })?;
    runner.emit(run_id, RunEvent::StageStarted { stage: Stage::Collect, total: 1 }).await?;
    let mut transaction = runner.store.begin().await?;
    let instances = transaction.collect_instances(run_id, variant).await?;
    let mut events = Vec::new();
    events.push(
        runner
            .emit_in(&mut transaction, run_id, RunEvent::Progress { stage: Stage::Collect, done: 1, total: 1 })
            .await?,
    );
    let pairs = runner.store.aware_answer_count(run_id, variant).await?;
    let rate = if pairs == 0 { 0.0 } else { 100.0 * instances as f64 / pairs as f64 };
    let message = format!(
        "{instances} culture-related instances: the {} answer differs from the unaware one in {rate:.1} % of {pairs} (question, culture) pairs",
        variant.label()
    );
    events.push(runner.emit_in(&mut transaction, run_id, RunEvent::Log { message }).await?);
    events.push(runner.emit_in(&mut transaction, run_id, RunEvent::StageFinished { stage: Stage::Collect }).await?);
    transaction.commit().await?;
    for (event_id, event) in events {
        runner.publish(run_id, event_id, event);
    }
    Ok(())
}
