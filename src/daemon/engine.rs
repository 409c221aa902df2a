//! The engine: the one thread that owns the store while the daemon runs. Every command, API
//! call, spool file and scheduled batch becomes a job on its queue, run one at a time, so that
//! no two writes interleave. Orders posted one by one share commits: the engine takes every
//! order post waiting in the queue into one durable commit (group commit).

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::{mpsc, oneshot};

use super::metrics::Metrics;
use super::spool::Kind;
use crate::batch;
use crate::clock::Clock;
use crate::config::Config;
use crate::intake::{self, IntakeError, IntakeReport, Ledger, Source, StockFile};
use crate::releaselog;
use crate::store::{StateByte, Store};
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

/// Why a job did nothing: the message is the one the command line prints.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    /// The input was refused whole (unreadable, a wrong header, an unknown order).
    #[error("{0}")]
    Refused(String),
    /// The request conflicts with the store (a released order, an earlier day).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// The store failed; nothing was acknowledged.
    #[error("{0}")]
    Failed(String),
    /// The daemon is stopping.
    #[error("the daemon is stopping")]
    Stopping,
}

impl JobError {
    fn failed(error: impl Into<anyhow::Error>) -> JobError {
        JobError::Failed(format!("{:#}", error.into()))
    }
}

impl From<IntakeError> for JobError {
    fn from(error: IntakeError) -> JobError {
        match error {
            IntakeError::Store(_) => JobError::failed(error),
            _ => JobError::Refused(format!("{:#}", anyhow::Error::from(error))),
        }
    }
}

/// The engine's state: the store, what intake checks against, and the config in force.
pub struct Engine {
    pub store: Store,
    /// `None` after a failed commit, until it is loaded again.
    ledger: Option<Ledger>,
    pub config: Arc<Config>,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
}

impl Engine {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Result<Engine, crate::store::StoreError> {
        let ledger = Ledger::load(&store)?;
        let mut engine = Engine {
            store,
            ledger: Some(ledger),
            config,
            clock,
            metrics,
        };
        engine.publish_states();
        Ok(engine)
    }

    /// The ledger, loaded again if a failed commit dropped it.
    pub fn ledger(&mut self) -> Result<&mut Ledger, JobError> {
        if self.ledger.is_none() {
            let ledger = Ledger::load(&self.store).map_err(|error| {
                self.metrics.set_failing(Some(format!(
                    "the store cannot be read: {:#}",
                    anyhow::Error::from(error)
                )));
                JobError::Failed("the store cannot be read; see the daemon's log".into())
            })?;
            if !self.store.is_unsynced() {
                self.metrics.set_failing(None);
            }
            self.ledger = Some(ledger);
        }
        Ok(self.ledger.as_mut().expect("loaded above"))
    }

    /// Runs an intake with the ledger. A store failure drops the ledger, which may be ahead
    /// of the store; a refusal comes before any change, and keeps it.
    pub fn with_ledger<T>(
        &mut self,
        work: impl FnOnce(&Store, &mut Ledger, &Config) -> Result<T, JobError>,
    ) -> Result<T, JobError> {
        let config = self.config.clone();
        self.ledger()?;
        let ledger = self.ledger.as_mut().expect("loaded above");
        let result = work(&self.store, ledger, &config);
        if matches!(result, Err(JobError::Failed(_))) {
            self.ledger = None;
            self.check_synced();
        }
        self.publish_states();
        result
    }

    /// Takes in one input of a kind, in one commit; `mark` as in
    /// [`intake::import_orders_from`].
    pub fn import(
        &mut self,
        source: Source,
        kind: Kind,
        mark: Option<&str>,
    ) -> Result<IntakeReport, JobError> {
        let identity = self.config.identity;
        self.with_ledger(|store, ledger, _| {
            Ok(match kind {
                Kind::Items => intake::import_items_from(store, ledger.items_mut(), source, mark)?,
                Kind::Receipts => intake::import_stock_from(
                    store,
                    ledger.items(),
                    source,
                    StockFile::Receive,
                    mark,
                )?,
                Kind::Counts => intake::import_stock_from(
                    store,
                    ledger.items(),
                    source,
                    StockFile::Count,
                    mark,
                )?,
                Kind::Orders => {
                    intake::import_orders_from(store, ledger, &[source], identity, mark)?.remove(0)
                }
            })
        })
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

    /// An order's state, by id.
    pub fn order_state(
        &mut self,
        order_id: &str,
    ) -> Result<Option<crate::model::OrderState>, JobError> {
        self.ledger()?;
        let ledger = self.ledger.as_ref().expect("loaded above");
        self.store
            .order_in(ledger.index(), ledger.states(), order_id)
            .map(|found| found.map(|(_, _, state)| state))
            .map_err(JobError::failed)
    }

    /// Runs the batch for `day` (default: today at the port).
    pub fn batch(
        &mut self,
        day: Option<NaiveDate>,
        trigger: Option<DateTime<Utc>>,
    ) -> Result<BatchDoc, JobError> {
        let config = self.config.clone();
        let today = self.clock.today(config.warehouse.timezone);
        let day = day.unwrap_or(today);
        let started = crate::clock::monotonic();
        let result = batch::run(&self.store, &config, day, today, self.clock.now(), trigger);
        // The batch changed the states on the store, or failed part way: read them again.
        let reloaded = self
            .ledger
            .as_mut()
            .map(|ledger| ledger.reload_states(&self.store));
        if !matches!(reloaded, Some(Ok(()))) {
            self.ledger = None;
        }
        let committed = match result {
            Ok(committed) => committed,
            Err(
                error @ (batch::BatchError::PastDay { .. }
                | batch::BatchError::EarlierDay { .. }
                | batch::BatchError::NoPolicy { .. }),
            ) => return Err(JobError::Conflict(error.to_string())),
            Err(error) => {
                self.check_synced();
                return Err(JobError::failed(error));
            }
        };
        let doc = BatchDoc::new(committed, &config);
        self.metrics
            .batch_done(&doc.summary, started.elapsed(), self.clock.now());
        self.publish_states();
        Ok(doc)
    }

    /// Writes release files an earlier batch left due.
    pub fn write_due(&self) {
        if let Err(error) = releaselog::write_due(&self.store, &self.config.paths.logs) {
            tracing::error!(
                error = %format!("{:#}", anyhow::Error::from(error)),
                "release logs left due by an earlier batch could not be written"
            );
        }
    }

    /// Counts of orders by state for the metrics, and the age of the oldest pending order.
    pub fn publish_states(&mut self) {
        if !self.metrics.states_due() || self.ledger().is_err() {
            return;
        }
        let Some(ledger) = &self.ledger else {
            return;
        };
        let states = ledger.states();
        let counts = states.counts();
        let oldest = states
            .first_pending()
            .and_then(|ordinal| self.store.order_at(ordinal).ok())
            .map(|order| order.placed_at);
        self.metrics.set_states(counts, oldest);
    }

    /// Takes in order posts in one commit and answers each.
    fn import_posts(&mut self, posts: Vec<OrderPost>) {
        let identity = self.config.identity;
        let result = self.with_ledger(|store, ledger, _| {
            let sources: Vec<Source> = posts
                .iter()
                .map(|post| Source::Bytes {
                    name: &post.name,
                    bytes: &post.bytes,
                })
                .collect();
            Ok(intake::import_orders_from(
                store, ledger, &sources, identity, None,
            )?)
        });
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
                    engine.ledger = None;
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

/// Whether an order state byte is pending (not held).
pub fn is_pending(state: StateByte) -> bool {
    matches!(
        state,
        StateByte::Open(None | Some(crate::model::Verdict::Waiting(_)))
    )
}
