//! `culturespa bench api` on a small store: every request of every client answered, the counts
//! as asked (the timings are the bench's business, not a test's).

mod common;

use culturespa::load_bench::{run_api_bench, ApiBenchOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_bench_fills_its_store_and_every_request_is_answered() {
    let work = tempfile::tempdir().unwrap();
    let options = ApiBenchOptions { instances: 4_000, clients: 4, requests: 42, seed: 1 };
    let summary = run_api_bench(&options, work.path(), common::model_source()).await.unwrap();
    // The released run has 1,373 instances: two copies more make 4,119.
    assert_eq!(summary.instances, 3 * 1_373);
    assert_eq!((summary.requests, summary.failed), (42, 0));
    assert_eq!((summary.list_page.requests, summary.run_culture.requests), (22, 20));
    assert!(summary.all.p50_ms <= summary.all.p99_ms && summary.all.p99_ms <= summary.all.max_ms);
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0, "the bench's store is removed");
}
