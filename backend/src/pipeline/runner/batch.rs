//! A run's answering stage offline: its pending prompts written as an OpenAI batch file (for
//! `vllm run-batch` on a GPU cluster, or OpenAI's Batch API), and the results read back into the
//! store. Resuming the run afterwards finds those answers stored and goes on from there.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use shared::{AnswerMode, Calibration, Run, RunEvent, Stage};

use super::answer::{new_answer, pending_work, run_questions, stage_work};
use super::inference::RunEngine;
use super::work::render_prompt;
use super::{run_question_set, Runner, RunnerError};
use crate::analysis::option_answer_code;
use crate::pipeline::calibration::argmax;
use crate::remote::batch::{custom_id, read_results, request_line};
use crate::remote::{RemoteEngine, RemoteError, RemoteSampling};
use crate::store::WVS_SET;

/// What writing or reading a batch did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BatchSummary {
    pub run_id: i64,
    pub stage: Stage,
    /// Prompts the stage still needs.
    pub pending: usize,
    /// Requests written (write) or answers stored (read).
    pub done: usize,
    /// Read: prompts with a missing or failed result (they stay pending).
    pub missing: usize,
    /// Read: the first failures the results file reports, with the server's words.
    pub failures: Vec<String>,
}

fn refuse(run: &Run, message: impl Into<String>) -> RunnerError {
    RunnerError::Config { run_id: run.run_id, message: message.into() }
}

/// The run's answering stage that has not finished, checked for a batch.
async fn batch_stage<'r>(runner: &'r Runner, run: &Run) -> Result<(Stage, String, &'r RemoteEngine), RunnerError> {
    let RunEngine::Remote(remote) = &runner.engine else {
        return Err(refuse(run, "batch files are for runs with a remote `engine` (its model names the requests)"));
    };
    if run.config.calibration != Calibration::None {
        return Err(refuse(run, "a calibrated run estimates its priors first: run it live"));
    }
    let finished: HashSet<Stage> = runner
        .store
        .events(run.run_id, 0)
        .await?
        .into_iter()
        .filter_map(|(_, event)| match event {
            RunEvent::StageFinished { stage } => Some(stage),
            _ => None,
        })
        .collect();
    let stage = [Stage::Answer, Stage::Evaluate]
        .into_iter()
        .find(|stage| run.config.stages.contains(stage) && !finished.contains(stage))
        .ok_or_else(|| refuse(run, "the run has no Answer or Evaluate stage left to do"))?;
    if stage == Stage::Answer && run.config.stages.contains(&Stage::Generate) && !finished.contains(&Stage::Generate) {
        return Err(refuse(run, "the run answers its generated questions: finish its Generate stage first"));
    }
    let question_set = if stage == Stage::Evaluate { WVS_SET.to_string() } else { run_question_set(run) };
    Ok((stage, question_set, remote))
}

fn sampling(run: &Run) -> RemoteSampling {
    RemoteSampling::from(&crate::engine::SamplingParams { seed: run.config.seed, ..Default::default() })
}

/// Writes the requests of the stage's pending prompts, one a line.
pub async fn write_batch(runner: &Runner, run_id: i64, out: &mut dyn Write) -> Result<BatchSummary, RunnerError> {
    let run = runner.store.run(run_id).await?;
    let (stage, question_set, remote) = batch_stage(runner, &run).await?;
    let questions = run_questions(runner, &run, stage, &question_set).await?;
    let work = stage_work(runner, &run, &questions);
    let pending = pending_work(runner, run_id, &work, &question_set).await?;
    let mut written = 0;
    let io = |error: std::io::Error| refuse(&run, format!("writing the batch file: {error}"));
    for item in &pending {
        let Ok(prompt) = render_prompt(runner, &run, item.question, item.variant, item.country_code.as_deref())? else {
            continue; // a prompt that cannot be built is recorded as a skip by the live stage
        };
        let prompt_id = item.prompt_id();
        let requests = match run.config.answer_mode {
            AnswerMode::Scoring => remote.score_requests(&prompt.chat, &item.question.option_codes())?,
            AnswerMode::Sampling => vec![remote.generation_request(&prompt.chat, &sampling(&run))?],
        };
        let sampled = run.config.answer_mode == AnswerMode::Sampling;
        for request in requests {
            writeln!(out, "{}", request_line(&custom_id(&prompt_id, &request, sampled), &request)).map_err(io)?;
            written += 1;
        }
    }
    out.flush().map_err(io)?;
    Ok(BatchSummary { run_id, stage, pending: pending.len(), done: written, missing: 0, failures: Vec::new() })
}

/// Reads a results file and stores the answers of every pending prompt whose results are all
/// there, in one transaction with a log event; the others stay pending.
pub async fn read_batch(runner: &Runner, run_id: i64, file: &Path) -> Result<BatchSummary, RunnerError> {
    const SHOWN_FAILURES: usize = 5;
    let run = runner.store.run(run_id).await?;
    let (stage, question_set, remote) = batch_stage(runner, &run).await?;
    let results = read_results(file).map_err(|error| refuse(&run, error.to_string()))?;
    let questions = run_questions(runner, &run, stage, &question_set).await?;
    let work = stage_work(runner, &run, &questions);
    let pending = pending_work(runner, run_id, &work, &question_set).await?;
    let sampled = run.config.answer_mode == AnswerMode::Sampling;
    let (mut answers, mut missing, mut failures) = (Vec::new(), 0, Vec::new());
    for item in &pending {
        let Ok(prompt) = render_prompt(runner, &run, item.question, item.variant, item.country_code.as_deref())? else {
            continue;
        };
        let prompt_id = item.prompt_id();
        let requests = if sampled {
            vec![remote.generation_request(&prompt.chat, &sampling(&run))?]
        } else {
            remote.score_requests(&prompt.chat, &item.question.option_codes())?
        };
        let wanted = requests.len();
        let mut replies = Vec::with_capacity(wanted);
        for request in requests {
            let id = custom_id(&prompt_id, &request, sampled);
            match results.replies.get(&id) {
                Some(reply) => replies.push((request.prefix, reply.clone())),
                None => {
                    if let Some(reason) = results.failed.get(&id) {
                        if failures.len() < SHOWN_FAILURES {
                            failures.push(format!("{id}: {reason}"));
                        }
                    }
                    break;
                }
            }
        }
        if replies.len() < wanted {
            missing += 1;
            continue;
        }
        let answer = if sampled {
            let reply = crate::remote::reply_text(&replies[0].1)
                .map_err(|message| RemoteError::Reply { endpoint: format!("results of {prompt_id}"), message })?;
            let code = option_answer_code(&reply, item.question);
            new_answer(&question_set, item, Some(reply), code, None)
        } else {
            let distribution = remote.distribution(&item.question.option_codes(), &replies)?;
            let code = argmax(&distribution).map(|index| item.question.options[index].code);
            new_answer(&question_set, item, None, code, Some(distribution))
        };
        answers.push(answer);
    }
    let mut transaction = runner.store.begin().await?;
    transaction.insert_answers(run_id, &answers).await?;
    let message = format!(
        "{stage:?}: {} answers read from the batch results {}; {missing} prompts have none yet",
        answers.len(),
        file.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
    );
    let event = runner.emit_in(&mut transaction, run_id, RunEvent::Log { message }).await?;
    transaction.commit().await?;
    runner.publish(run_id, event.0, event.1);
    Ok(BatchSummary { run_id, stage, pending: pending.len(), done: answers.len(), missing, failures })
}
