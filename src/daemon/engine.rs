//! The engine: the one thread that owns the store while the daemon runs. Every command, API
//! call, spool file and scheduled batch becomes a job on its queue, run one at a time, so that
//! no two writes interleave. Orders posted one by one share commits: the engine takes every
//! order post waiting in the queue into one durable commit (group commit).

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::{mpsc, oneshot};

use super::metrics::{BatchOutcome, LastBatch, Metrics};
use super::JobError;
use crate::clock::Clock;
use crate::config::Config;
use crate::operations::{self, InputKind, IntakeReport, Source};
use crate::store::Store;
use crate::wire::BatchDoc;

/// Most order posts taken into one commit.
pub const GROUP_POSTS_MAX: usize = 4096;
/// Most bytes of order posts taken into one commit.
pub const GROUP_BYTES_MAX: usize = 64 << 20;
/// Jobs waiting before senders wait too.
pub const QUEUE_MAX: usize = 16 * 1024;

/// Orders posted to the API, waiting for their commit.
pub struct OrderPost {
    pub name: PathBuf,
    pub bytes: axum::body::Bytes,
    pub reply: oneshot::Sender<Result<IntakeReport, JobError>>,
}

/// Work for the engine.
pub enum Job {
    Orders(OrderPost),
    /// Anything else: runs alone, with the engine.
    Run(Box<dyn FnOnce(&mut Engine) + Send>),
}

/// The engine's state: the store, the config in force, the clock and the figures.
pub struct Engine {
    pub store: Store,
    pub config: Arc<Config>,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
}

impl Engine {
    pub fn new(store: Store, config: Arc<Config>, clock: Clock, metrics: Arc<Metrics>) -> Engine {
        let mut engine = Engine {
            store,
            config,
            clock,
            metrics,
        };
        engine.publish_states();
        engine
    }

    /// Takes in one input of a kind, in one commit; `mark` as in [`operations::import`].
    pub fn import(
        &mut self,
        source: Source,
        kind: InputKind,
        mark: Option<&str>,
    ) -> Result<IntakeReport, JobError> {
        let result = operations::import(&mut self.store, &self.config, source, kind, mark);
        let result = result.map_err(JobError::from);
        self.after(&result);
        result
    }

    /// After a job: a failure may have left the store unable to write; the figures are counted
    /// again.
    pub fn after<T>(&mut self, result: &Result<T, JobError>) {
        if matches!(result, Err(JobError::Failed(_))) {
            self.check_synced();
        }
        self.publish_states();
    }

    /// After a commit that could not be made durable, the daemon is unhealthy: it writes
    /// nothing more, `/healthz` says why, and the watchdog keep-alives stop, so that systemd
    /// starts it again from what is on disk.
    pub fn check_synced(&self) {
        if self.store.is_unsynced() {
            let why = "a commit could not be made durable (disk full or failing?); nothing more is written until the daemon restarts";
            tracing::error!(reason = why, "the store is unhealthy");
            self.metrics.set_failing(Some(why.to_owned()));
        }
    }

    /// Runs the batch for `day` (default: today at the port).
    pub fn batch(
        &mut self,
        day: Option<NaiveDate>,
        trigger: Option<DateTime<Utc>>,
    ) -> Result<BatchDoc, JobError> {
        let config = self.config.clone();
        let started = crate::clock::monotonic();
        let result = operations::batch(&mut self.store, &config, &self.clock, day, trigger);
        let ran = |outcome| LastBatch {
            day: day.unwrap_or_else(|| self.clock.today(config.warehouse.timezone)),
            at: self.clock.now(),
            took: started.elapsed(),
            scheduled: trigger.is_some(),
            outcome,
        };
        let doc = match result {
            Ok(doc) => doc,
            Err(error) if error.is_refusal() => {
                let error = JobError::Conflict(error.to_string());
                self.metrics
                    .batch_ran(ran(BatchOutcome::Refused(error.to_string())));
                return Err(error);
            }
            Err(error) => {
                self.check_synced();
                let error = JobError::failed(error);
                self.metrics
                    .batch_ran(ran(BatchOutcome::Failed(error.to_string())));
                return Err(error);
            }
        };
        let summary = &doc.summary;
        let last = LastBatch {
            day: summary.day,
            ..ran(BatchOutcome::Committed {
                releases: summary.releases as u64,
                orders: summary.orders_released as u64,
                value_usd: summary.value_usd,
                files_error: doc.files_error.clone(),
            })
        };
        self.metrics.batch_done(summary, last.took, last.at);
        self.metrics.batch_ran(last);
        self.publish_states();
        Ok(doc)
    }

    /// Writes release files an earlier batch left due.
    pub fn write_due(&mut self) {
        if let Err(error) = operations::write_due(&mut self.store, &self.config) {
            tracing::error!(
                error = %format!("{:#}", anyhow::Error::from(error)),
                "release logs left due by an earlier batch could not be written"
            );
        }
    }

    /// Counts of orders by state for the metrics, and the age of the oldest pending order.
    pub fn publish_states(&mut self) {
        if !self.metrics.states_due() {
            return;
        }
        match operations::order_counts(&mut self.store) {
            Ok((counts, oldest)) => {
                if !self.store.is_unsynced() {
                    self.metrics.set_failing(None);
                }
                self.metrics.set_states(counts, oldest);
            }
            Err(error) => self.metrics.set_failing(Some(format!(
                "the store cannot be read: {:#}",
                anyhow::Error::from(error)
            ))),
        }
    }

    /// Takes in order posts in one commit and answers each. A post that is not UTF-8 text is
    /// refused alone, before the commit, so that it does not fail the posts beside it.
    fn import_posts(&mut self, posts: Vec<OrderPost>) {
        let mut posts_read = Vec::with_capacity(posts.len());
        for post in posts {
            match operations::check_orders_text(&post.name, &post.bytes) {
                Ok(()) => posts_read.push(post),
                Err(error) => {
                    tracing::info!(source = "api", file = %post.name.display(), %error, "orders posted through the API refused whole");
                    let _ = post.reply.send(Err(JobError::from(error)));
                }
            }
        }
        let posts = posts_read;
        if posts.is_empty() {
            return;
        }
        let sources: Vec<Source> = posts
            .iter()
            .map(|post| Source::Bytes {
                name: &post.name,
                bytes: &post.bytes,
            })
            .collect();
        let result = operations::import_orders(&mut self.store, &self.config, &sources)
            .map_err(JobError::from);
        drop(sources);
        self.after(&result);
        match result {
            Ok(reports) => {
                self.metrics.order_commit(posts.len());
                let (mut accepted, mut unchanged, mut rejected) = (0, 0, 0);
                for report in &reports {
                    self.metrics.intake("api", report);
                    super::log_rejected_lines("api", report);
                    accepted += report.accepted;
                    unchanged += report.unchanged;
                    rejected += report.rejected.len();
                }
                // One event per commit: at thousands of posts a second, one per post would
                // flood the journal, which then drops the service's messages.
                tracing::info!(
                    source = "api",
                    posts = posts.len(),
                    accepted,
                    unchanged,
                    rejected,
                    "orders posted through the API taken in"
                );
                for (post, report) in posts.into_iter().zip(reports) {
                    let _ = post.reply.send(Ok(report));
                }
            }
            Err(error) => {
                tracing::error!(posts = posts.len(), %error, "orders posted to the API were not taken in");
                for post in posts {
                    let _ = post.reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// The engine's queue.
#[derive(Clone)]
pub struct Queue(mpsc::Sender<Job>);

impl Queue {
    /// Runs `work` on the engine and waits for its answer.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Engine) -> Result<T, JobError> + Send + 'static,
    ) -> Result<T, JobError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Run(Box::new(move |engine: &mut Engine| {
            let _ = reply.send(work(engine));
        }));
        self.0.send(job).await.map_err(|_| JobError::Stopping)?;
        answer.await.unwrap_or(Err(JobError::Stopping))
    }

    /// Posts orders; answers once they are durable.
    pub async fn post_orders(
        &self,
        name: PathBuf,
        bytes: axum::body::Bytes,
    ) -> Result<IntakeReport, JobError> {
        let (reply, answer) = oneshot::channel();
        let post = OrderPost { name, bytes, reply };
        self.0
            .send(Job::Orders(post))
            .await
            .map_err(|_| JobError::Stopping)?;
        answer.await.unwrap_or(Err(JobError::Stopping))
    }
}

/// Starts the engine's thread. It runs until every `Queue` is dropped and the queue is empty.
pub fn start(mut engine: Engine) -> (Queue, std::thread::JoinHandle<()>) {
    let (sender, mut receiver) = mpsc::channel::<Job>(QUEUE_MAX);
    let thread = std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || {
            let mut next = receiver.blocking_recv();
            while let Some(job) = next.take() {
                engine.metrics.engine_busy(true);
                // A job that panics (a bug) fails alone: its caller is told the daemon could
                // not answer, the ledger is loaded again, and the next job runs.
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match job {
                        Job::Run(work) => work(&mut engine),
                        Job::Orders(first) => {
                            let mut bytes = first.bytes.len();
                            let mut posts = vec![first];
                            while posts.len() < GROUP_POSTS_MAX && bytes < GROUP_BYTES_MAX {
                                match receiver.try_recv() {
                                    Ok(Job::Orders(post)) => {
                                        bytes += post.bytes.len();
                                        posts.push(post);
                                    }
                                    Ok(other) => {
                                        next = Some(other);
                                        break;
                                    }
                                    Err(_) => break,
                                }
                            }
                            engine.import_posts(posts);
                        }
                    }));
                if outcome.is_err() {
                    tracing::error!("a job of the engine panicked; its caller was not answered");
                }
                engine.metrics.engine_busy(false);
                if next.is_none() {
                    next = receiver.blocking_recv();
                }
            }
            tracing::debug!("the engine stopped");
        })
        .expect("the engine thread starts");
    (Queue(sender), thread)
}
