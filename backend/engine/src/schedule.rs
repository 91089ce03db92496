//! Running a list of jobs (batches) on worker threads as a work queue: each worker takes the next
//! job as soon as it is free (no rounds that wait for the slowest), and results reach the caller
//! in job order, so progress and stored results look exactly as with one thread.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::error::{EngineError, Result};

/// How busy the workers were while a list of jobs ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ScheduleStats {
    pub workers: usize,
    pub jobs: usize,
    /// CPU seconds the workers spent in jobs, summed over workers: a worker waiting inside a job
    /// (for a prefix another worker computes) or for a core is not busy.
    pub busy_seconds: f64,
    /// Seconds from the first job taken to the last result delivered.
    pub wall_seconds: f64,
}

impl ScheduleStats {
    /// Busy time over the time the workers were held: 1.0 when no worker ever waited.
    pub fn utilisation(&self) -> f64 {
        let held = self.wall_seconds * self.workers.max(1) as f64;
        if held > 0.0 {
            (self.busy_seconds / held).min(1.0)
        } else {
            0.0
        }
    }

    /// Adds the figures of another list of jobs run after this one.
    pub fn merge(&mut self, other: &ScheduleStats) {
        self.workers = self.workers.max(other.workers);
        self.jobs += other.jobs;
        self.busy_seconds += other.busy_seconds;
        self.wall_seconds += other.wall_seconds;
    }
}

/// What a worker reports for one job.
enum Report<T> {
    Done(usize, T),
    Failed(usize, EngineError),
}

/// Runs `work(0..jobs)` on `pools` (each job inside one pool, so a single-thread pool makes the
/// job's own parallel code run on that worker alone) and hands each result to `on_result` in job
/// order on the calling thread. With no pools the jobs run in order on the calling thread.
/// `should_stop` is asked between results: the workers then finish their current job and the
/// call returns [`EngineError::Cancelled`]. The first failing job stops the others; its error is
/// returned.
pub fn run_in_order<T: Send>(
    pools: &[rayon::ThreadPool],
    jobs: usize,
    mut should_stop: impl FnMut() -> bool,
    work: impl Fn(usize) -> Result<T> + Sync,
    mut on_result: impl FnMut(usize, T),
) -> Result<ScheduleStats> {
    let started = Instant::now();
    if pools.is_empty() {
        let mut busy = Duration::ZERO;
        for job in 0..jobs {
            if should_stop() {
                return Err(EngineError::Cancelled);
            }
            let job_started = thread_cpu_time();
            let result = work(job)?;
            busy += thread_cpu_time().saturating_sub(job_started);
            on_result(job, result);
        }
        return Ok(ScheduleStats {
            workers: 1,
            jobs,
            busy_seconds: busy.as_secs_f64(),
            wall_seconds: started.elapsed().as_secs_f64(),
        });
    }

    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let busy_nanos = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel::<Report<T>>();
    let outcome = std::thread::scope(|scope| {
        for pool in pools {
            let (sender, next, stop, busy_nanos, work) = (sender.clone(), &next, &stop, &busy_nanos, &work);
            scope.spawn(move || {
                pool.install(|| loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let job = next.fetch_add(1, Ordering::Relaxed);
                    if job >= jobs {
                        break;
                    }
                    let job_started = thread_cpu_time();
                    let report = match work(job) {
                        Ok(result) => Report::Done(job, result),
                        Err(error) => Report::Failed(job, error),
                    };
                    let busy = thread_cpu_time().saturating_sub(job_started);
                    busy_nanos.fetch_add(busy.as_nanos() as usize, Ordering::Relaxed);
                    if sender.send(report).is_err() {
                        break;
                    }
                })
            });
        }
        drop(sender);

        let mut waiting: BTreeMap<usize, T> = BTreeMap::new();
        let mut next_to_deliver = 0;
        let mut failure: Option<(usize, EngineError)> = None;
        let mut cancelled = false;
        // Ends when every worker has finished (all senders dropped).
        for report in receiver.iter() {
            match report {
                Report::Done(job, result) => {
                    waiting.insert(job, result);
                }
                Report::Failed(job, error) => {
                    stop.store(true, Ordering::Relaxed);
                    // The earliest failing job's error, whatever order they arrive in.
                    if failure.as_ref().is_none_or(|(first, _)| job < *first) {
                        failure = Some((job, error));
                    }
                }
            }
            // Delivery never passes a failed job (it is never waiting), so after a failure the jobs
            // before it are still delivered: every one of them was taken before it.
            if !cancelled {
                while let Some(result) = waiting.remove(&next_to_deliver) {
                    on_result(next_to_deliver, result);
                    next_to_deliver += 1;
                }
                if failure.is_none() && next_to_deliver < jobs && should_stop() {
                    cancelled = true;
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
        match (failure, cancelled) {
            (Some((_, error)), _) => Err(error),
            (None, true) => Err(EngineError::Cancelled),
            (None, false) if next_to_deliver < jobs => Err(EngineError::WorkerPanicked),
            (None, false) => Ok(()),
        }
    });
    outcome?;
    Ok(ScheduleStats {
        workers: pools.len(),
        jobs,
        busy_seconds: busy_nanos.load(Ordering::Relaxed) as f64 * 1e-9,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

/// The CPU time the calling thread has used (zero where the clock cannot be read).
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into `now`, which lives for the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(u64::try_from(now.tv_sec).unwrap_or(0), u32::try_from(now.tv_nsec).unwrap_or(0))
}

/// Single-thread pools, one per worker: no synchronisation inside a job, and a descheduled
/// thread delays only its own job.
pub fn single_thread_pools(count: usize) -> Result<Vec<rayon::ThreadPool>> {
    (0..count)
        .map(|index| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .thread_name(move |_| format!("culturespa-batch-{index}"))
                .build()
                .map_err(|e| EngineError::io("a batch worker thread", std::io::Error::other(e)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_arrive_in_order_whatever_order_the_workers_finish_in() {
        let pools = single_thread_pools(3).unwrap();
        let mut seen = Vec::new();
        let stats = run_in_order(
            &pools,
            40,
            || false,
            |job| {
                // Later jobs finish first.
                std::thread::sleep(Duration::from_micros(((40 - job) * 50) as u64));
                Ok(job * 10)
            },
            |job, value| seen.push((job, value)),
        )
        .unwrap();
        assert_eq!(seen, (0..40).map(|j| (j, j * 10)).collect::<Vec<_>>());
        assert_eq!((stats.workers, stats.jobs), (3, 40));
        assert!(stats.utilisation() <= 1.0);
    }

    #[test]
    fn a_worker_that_waits_inside_a_job_is_not_busy() {
        let pools = single_thread_pools(1).unwrap();
        let waiting = run_in_order(
            &pools,
            2,
            || false,
            |_| {
                std::thread::sleep(Duration::from_millis(30));
                Ok(())
            },
            |_, _| {},
        )
        .unwrap();
        assert!(waiting.busy_seconds < 0.015, "{waiting:?}");
        let computing = run_in_order(
            &pools,
            2,
            || false,
            |_| {
                let started = thread_cpu_time();
                while thread_cpu_time() - started < Duration::from_millis(30) {}
                Ok(())
            },
            |_, _| {},
        )
        .unwrap();
        assert!(computing.busy_seconds >= 0.06, "{computing:?}");
    }

    #[test]
    fn the_earliest_failing_job_is_reported_and_later_results_are_not_delivered() {
        for pools in [single_thread_pools(2).unwrap(), Vec::new()] {
            let mut delivered = Vec::new();
            let error = run_in_order(
                &pools,
                20,
                || false,
                |job| if job == 5 { Err(EngineError::InvalidBatch(format!("job {job}"))) } else { Ok(job) },
                |job, _| delivered.push(job),
            )
            .unwrap_err();
            assert_eq!(error.to_string(), "invalid batch: job 5");
            assert_eq!(delivered, (0..5).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_stop_request_ends_the_run_as_cancelled() {
        // One worker: its results arrive one by one in order, so the stop is seen after the third.
        for pools in [single_thread_pools(1).unwrap(), Vec::new()] {
            let delivered = std::cell::Cell::new(0);
            let error =
                run_in_order(&pools, 1000, || delivered.get() >= 3, Ok, |_, _| delivered.set(delivered.get() + 1))
                    .unwrap_err();
            assert!(matches!(error, EngineError::Cancelled));
            assert_eq!(delivered.get(), 3);
        }
    }
}
