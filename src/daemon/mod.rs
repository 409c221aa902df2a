//! The daemon (`border-release serve`): takes in spool files and API calls all day, runs the
//! batch on the schedule, and speaks to systemd.
//!
//! Start-up reads top to bottom in [`run`]: open the store, write release files left due, load
//! what intake checks against, start the engine (the one thread that writes the store), start
//! the API, the spool watcher and the scheduler, then tell systemd it is ready. SIGHUP reloads
//! the config; the future `shutdown` stops it: intake stops, the engine finishes its job (or
//! is abandoned at the deadline: every commit is atomic), and the store is flushed.

pub mod engine;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod page;
pub mod spool;
mod systemd;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use self::engine::{Engine, Queue};
use self::metrics::Metrics;
use crate::clock::Clock;
use crate::config::{self, Config, Listen};
use crate::operations;
use crate::operations::{IntakeError, IntakeReport};
use crate::schedule::BatchSchedule;
use crate::store::Store;
use crate::wire::BatchDoc;

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
    pub fn failed(error: impl Into<anyhow::Error>) -> JobError {
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

/// How the daemon runs, beyond its config.
#[derive(Debug, Clone)]
pub struct Options {
    /// The config file, read again on SIGHUP.
    pub config_file: PathBuf,
    pub clock: Clock,
    /// How often the spool is looked at, and the longest the scheduler sleeps before it reads
    /// the clock again.
    pub tick: Duration,
    /// How long a stop may take, from SIGTERM to exit; below systemd's `TimeoutStopSec`.
    pub stop_deadline: Duration,
    /// Whether SIGHUP reloads the config (the binary); in-process tests leave signals alone.
    pub reload_on_sighup: bool,
}

impl Options {
    pub fn new(config_file: PathBuf, clock: Clock) -> Options {
        Options {
            config_file,
            clock,
            tick: Duration::from_secs(1),
            stop_deadline: STOP_DEADLINE,
            reload_on_sighup: true,
        }
    }
}

/// From SIGTERM to exit, at most; the unit's `TimeoutStopSec` is 30 s.
pub const STOP_DEADLINE: Duration = Duration::from_secs(20);
/// How long a scheduled batch that failed waits before it is tried again.
const BATCH_RETRY: Duration = Duration::from_secs(60);
/// How long a spool file that failed on a store error waits before it is tried again.
const SPOOL_RETRY: Duration = Duration::from_secs(30);

/// Where the API listens, bound.
pub enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener, PathBuf),
}

impl Listener {
    /// Binds the configured address. A Unix socket left by a daemon that is gone is replaced;
    /// one that answers is another daemon, and an error. The socket is owner and group only.
    pub async fn bind(listen: &Listen) -> anyhow::Result<Listener> {
        match listen {
            Listen::Tcp(address) => {
                let listener = tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("api.listen: cannot listen on {address}"))?;
                Ok(Listener::Tcp(listener))
            }
            Listen::Unix(path) => {
                if tokio::net::UnixStream::connect(path).await.is_ok() {
                    anyhow::bail!(
                        "api.listen: unix:{} is in use by another process",
                        path.display()
                    );
                }
                let _ = std::fs::remove_file(path);
                if let Some(folder) = path.parent() {
                    crate::files::create_private_dir(folder)?;
                }
                let listener = tokio::net::UnixListener::bind(path).with_context(|| {
                    format!("api.listen: cannot listen on unix:{}", path.display())
                })?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
                Ok(Listener::Unix(listener, path.clone()))
            }
        }
    }

    /// Where it listens, as `api.listen` would say it.
    pub fn address(&self) -> String {
        match self {
            Listener::Tcp(listener) => listener
                .local_addr()
                .map_or_else(|_| "?".into(), |address| address.to_string()),
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }
}

/// Runs the daemon until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: Listener,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let clock = options.clock.clone();
    let token = Arc::new(RwLock::new(crate::client::read_token(
        &config.api.token_file,
    )?));
    // A daemon that has just stopped may hold the store's lock for a moment longer.
    let store = Store::open_waiting(&config.paths.data, Duration::from_secs(2))
        .context("opening the store")?;
    spool::prepare(&config.paths.spool)
        .with_context(|| format!("paths.spool {}", config.paths.spool.display()))?;
    let metrics = Arc::new(Metrics::default());
    metrics.started(clock.now());
    let schedule = BatchSchedule::new(&config.schedule.batch, config.warehouse.timezone)
        .map_err(anyhow::Error::msg)?;
    let mut engine = Engine::new(store, config.clone(), clock.clone(), metrics.clone());
    engine.write_due();
    let last_trigger = operations::last_trigger(&engine.store).context("reading the store")?;
    let (queue, engine_thread) = engine::start(engine);

    let (config_tx, config_rx) = watch::channel(config.clone());
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let api = http::Api {
        queue: queue.clone(),
        metrics: metrics.clone(),
        token: token.clone(),
        clock: clock.clone(),
        bodies: Arc::new(tokio::sync::Semaphore::new(http::BODIES_KIB_MAX)),
    };
    let address = listener.address();
    let server = tokio::spawn(serve(listener, http::router(api), stopping_rx.clone()));
    let spool_task = tokio::spawn(watch_spool(
        queue.clone(),
        config_rx.clone(),
        options.tick,
        stopping_rx.clone(),
    ));
    let scheduler = tokio::spawn(schedule_batches(
        queue.clone(),
        metrics.clone(),
        config_rx.clone(),
        schedule,
        last_trigger,
        clock.clone(),
        options.tick,
        stopping_rx.clone(),
    ));
    let watchdog = systemd::watchdog_interval().map(|every| {
        tokio::spawn(systemd::keep_alive(
            every,
            metrics.clone(),
            stopping_rx.clone(),
        ))
    });

    tracing::info!(
        warehouse = %config.warehouse.name,
        listen = %address,
        store = %config.paths.data.display(),
        spool = %config.paths.spool.display(),
        batch = %config.schedule.batch,
        "border-release is ready"
    );
    systemd::ready();
    // After readiness: what intake checks against (the id index of every order takes a
    // second or two to read at ten million), so that the first order posted does not wait for
    // it; then the last batched day's figures (a day can hold many releases).
    // The days' figures are read from a view of the store on a thread of their own, so that
    // intake does not wait for them.
    tokio::spawn({
        let queue = queue.clone();
        let (config, clock, metrics) = (config.clone(), clock.clone(), metrics.clone());
        async move {
            let view = queue
                .run(|engine| {
                    if let Err(error) = operations::prepare_intake(&mut engine.store) {
                        tracing::warn!(error = %format!("{:#}", anyhow::Error::from(error)), "the store's index could not be read ahead; the first intake reads it");
                    }
                    engine.metrics.days_reading();
                    operations::status_view(&engine.store).map_err(JobError::failed)
                })
                .await;
            let read = tokio::task::spawn_blocking(move || {
                let figures = view.and_then(|view| {
                    // The estimate of the last day batched, read in full; the other days'
                    // figures from their releases' values alone.
                    match operations::last_day_estimate(&view) {
                        Ok(Some((day, estimate))) => metrics.estimate_read(day, estimate),
                        Ok(None) => {}
                        Err(error) => {
                            tracing::warn!(error = %format!("{:#}", anyhow::Error::from(error)), "the estimate of the last day batched could not be read");
                        }
                    }
                    operations::day_figures(&view, &config, &clock, metrics::DAYS_KEPT as u32)
                        .map_err(JobError::failed)
                });
                match figures {
                    Ok(figures) => metrics.days_read(Some(figures)),
                    Err(error) => {
                        tracing::warn!(%error, "the figures of the last days batched could not be read");
                        metrics.days_read(None);
                    }
                }
            });
            let _ = read.await;
        }
    });

    let mut hangups = if options.reload_on_sighup {
        Some(
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .context("listening for SIGHUP")?,
        )
    } else {
        None
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(()) = async {
                match hangups.as_mut() {
                    Some(hangups) => hangups.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                reload(&options.config_file, &config_tx, &token, &metrics, &queue).await;
            }
        }
    }

    tracing::info!("stopping: intake stops, the running job finishes");
    systemd::stopping();
    let _ = stopping_tx.send(true);
    drop(queue);
    let deadline =
        tokio::time::Instant::from_std(crate::clock::monotonic()) + options.stop_deadline;
    let stopped = async {
        let _ = server.await;
        let _ = spool_task.await;
        let _ = scheduler.await;
        if let Some(watchdog) = watchdog {
            watchdog.abort();
        }
        // Every queue is gone: the engine finishes what is queued and stops.
        tokio::task::spawn_blocking(move || engine_thread.join())
            .await
            .ok()
    };
    match tokio::time::timeout_at(deadline, stopped).await {
        Ok(_) => {
            tracing::info!("stopped");
            Ok(())
        }
        Err(_) => {
            tracing::error!(
                deadline_seconds = options.stop_deadline.as_secs(),
                "the running job did not finish by the stop deadline and is abandoned; \
                 every commit is atomic, so the store holds what was acknowledged"
            );
            Ok(())
        }
    }
}

async fn serve(listener: Listener, router: axum::Router, mut stopping: watch::Receiver<bool>) {
    let stop = async move {
        let _ = stopping.wait_for(|stopping| *stopping).await;
    };
    let result = match listener {
        Listener::Tcp(listener) => {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
        }
        Listener::Unix(listener, path) => {
            let result = axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await;
            let _ = std::fs::remove_file(path);
            result
        }
    };
    if let Err(error) = result {
        tracing::error!(%error, "the API stopped");
    }
}

/// Reads the config again; a bad one is refused and the old one kept. The store, the API
/// address and the token file's place take effect at the next start.
async fn reload(
    file: &Path,
    config_tx: &watch::Sender<Arc<Config>>,
    token: &RwLock<String>,
    metrics: &Metrics,
    queue: &Queue,
) {
    systemd::reloading();
    let old = config_tx.borrow().clone();
    match config::load(file) {
        Err(error) => {
            metrics.reload("refused");
            tracing::error!(
                file = %file.display(),
                problems = %error,
                "the new config is refused; the old one stays in force"
            );
        }
        Ok(mut new) => {
            if new.paths.data != old.paths.data
                || new.api.listen != old.api.listen
                || new.api.token_file != old.api.token_file
            {
                tracing::warn!(
                    "paths.data, api.listen and api.token_file take effect at the next start"
                );
                new.paths.data = old.paths.data.clone();
                new.api = old.api.clone();
            }
            if let Err(error) = spool::prepare(&new.paths.spool) {
                metrics.reload("refused");
                tracing::error!(spool = %new.paths.spool.display(), %error, "the new config is refused: its spool cannot be made; the old one stays in force");
                systemd::ready();
                return;
            }
            if let Err(error) = BatchSchedule::new(&new.schedule.batch, new.warehouse.timezone) {
                metrics.reload("refused");
                tracing::error!(%error, "the new config is refused; the old one stays in force");
                systemd::ready();
                return;
            }
            match crate::client::read_token(&new.api.token_file) {
                Ok(text) => {
                    *token
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = text;
                }
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "the API token was not read again; the old one stays")
                }
            }
            let new = Arc::new(new);
            let for_engine = new.clone();
            let _ = queue
                .run(move |engine| {
                    engine.config = for_engine;
                    Ok(())
                })
                .await;
            let _ = config_tx.send(new);
            metrics.reload("applied");
            tracing::info!(file = %file.display(), "config reloaded");
        }
    }
    systemd::ready();
}

/// Looks at the inbox every tick and takes in what waits there, one file per engine job.
async fn watch_spool(
    queue: Queue,
    mut config: watch::Receiver<Arc<Config>>,
    tick: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    // Files that failed on a store error, by name (they may have moved into processing/), and
    // when.
    let mut failed: std::collections::HashMap<std::ffi::OsString, std::time::Instant> =
        std::collections::HashMap::new();
    loop {
        let current = config.borrow_and_update().clone();
        let spool = current.paths.spool.clone();
        let waiting = tokio::task::spawn_blocking(move || spool::waiting(&spool)).await;
        match waiting {
            Ok(Ok(waiting)) => {
                for (kind, file) in waiting {
                    if *stopping.borrow() {
                        return;
                    }
                    let file_name = file.file_name().unwrap_or_default().to_owned();
                    if failed
                        .get(&file_name)
                        .is_some_and(|at| at.elapsed() < SPOOL_RETRY)
                    {
                        continue;
                    }
                    let kind_word = kind.map_or("unknown", operations::InputKind::word);
                    let path = file.clone();
                    let result = queue
                        .run(move |engine| {
                            let config = engine.config.clone();
                            let outcome = spool::take_in(&mut engine.store, &config, &path, kind);
                            engine.metrics.states_changed();
                            engine.after(&outcome);
                            let outcome = outcome?;
                            engine.metrics.spool_file(kind_word, outcome.word());
                            if let spool::Outcome::Done(report) | spool::Outcome::Partly(report) =
                                &outcome
                            {
                                engine.metrics.intake("spool", report);
                            }
                            Ok(outcome)
                        })
                        .await;
                    let name = file.display().to_string();
                    match result {
                        Ok(outcome) => {
                            failed.remove(&file_name);
                            log_spool(&name, kind_word, &outcome);
                        }
                        Err(JobError::Stopping) => return,
                        Err(error) => {
                            tracing::error!(file = %name, %error, retry_seconds = SPOOL_RETRY.as_secs(), "spool file left in the spool, to be tried again");
                            failed.insert(file_name, crate::clock::monotonic());
                        }
                    }
                }
            }
            Ok(Err(error)) => {
                tracing::error!(spool = %current.paths.spool.display(), %error, "cannot read the spool inbox");
            }
            Err(_) => {}
        }
        // Counts skipped while intake was busy are made now.
        let _ = queue
            .run(|engine| {
                if engine.metrics.states_stale() {
                    engine.metrics.states_changed();
                    engine.publish_states();
                }
                Ok(())
            })
            .await;
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stopping.wait_for(|stopping| *stopping) => return,
        }
    }
}

/// Runs the batch at each trigger of the schedule, in the warehouse's zone; at start, runs the
/// latest trigger missed while the daemon was down, once.
// The scheduler's inputs, each its own: the queue, the figures, the config, the schedule and
// its last run, the clock, the tick and the stop.
#[allow(clippy::too_many_arguments)]
async fn schedule_batches(
    queue: Queue,
    metrics: Arc<Metrics>,
    mut config: watch::Receiver<Arc<Config>>,
    mut schedule: BatchSchedule,
    last_trigger: Option<DateTime<Utc>>,
    clock: Clock,
    tick: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let mut last = last_trigger;
    // The first start of a store has missed nothing: it starts counting now.
    let mut next = match schedule.missed(last, clock.now()) {
        Some(missed) => {
            tracing::info!(trigger = %missed, "a scheduled batch was missed while the daemon was down; running it now");
            Some(missed)
        }
        None => schedule.next_after(last.unwrap_or_else(|| clock.now()).max(clock.now())),
    };
    metrics.set_next_batch(next);
    // When a failed scheduled batch is tried again.
    let mut retry_at: Option<DateTime<Utc>> = None;
    let mut in_force = {
        let current = config.borrow_and_update().clone();
        (current.schedule.batch.clone(), current.warehouse.timezone)
    };
    loop {
        if config.has_changed().unwrap_or(false) {
            let current = config.borrow_and_update().clone();
            let wanted = (current.schedule.batch.clone(), current.warehouse.timezone);
            // Only a new schedule moves the next trigger; one already due still runs first.
            if wanted != in_force {
                match BatchSchedule::new(&wanted.0, wanted.1) {
                    Ok(new) => {
                        schedule = new;
                        let due = next.filter(|trigger| *trigger <= clock.now());
                        next = due.or_else(|| {
                            schedule
                                .next_after(last.unwrap_or_else(|| clock.now()).max(clock.now()))
                        });
                        in_force = wanted;
                        metrics.set_next_batch(next);
                    }
                    Err(error) => tracing::error!(%error, "schedule.batch of the reloaded config"),
                }
            }
        }
        let now = clock.now();
        match next {
            Some(trigger) if trigger <= now && retry_at.is_none_or(|at| at <= now) => {
                retry_at = None;
                let result = queue
                    .run(move |engine| {
                        let zone = engine.config.warehouse.timezone;
                        let trigger_day = trigger.with_timezone(&zone).date_naive();
                        let today = engine.clock.today(zone);
                        if trigger_day < today {
                            tracing::warn!(
                                trigger = %trigger,
                                %trigger_day,
                                %today,
                                "the batch of a past day's trigger runs for today: a past day cannot be batched"
                            );
                        }
                        let doc = engine.batch(None, Some(trigger));
                        if doc.is_err() {
                            engine.metrics.batch_failed();
                        }
                        doc
                    })
                    .await;
                match result {
                    Ok(doc) => {
                        log_batch("schedule", &doc);
                        last = Some(trigger);
                    }
                    Err(JobError::Stopping) => return,
                    Err(error @ JobError::Conflict(_)) => {
                        tracing::error!(trigger = %trigger, %error, "the scheduled batch was refused; the next trigger runs as usual");
                        last = Some(trigger);
                    }
                    Err(error) => {
                        // A failure (the store, the release files) is tried again, for the same
                        // trigger, until it succeeds or the next trigger comes.
                        tracing::error!(trigger = %trigger, %error, retry_seconds = BATCH_RETRY.as_secs(), "the scheduled batch failed; it is tried again");
                        let retry = clock.now()
                            + chrono::Duration::from_std(BATCH_RETRY).unwrap_or_default();
                        let following = schedule.next_after(trigger);
                        if following.is_none_or(|following| retry < following) {
                            retry_at = Some(retry);
                        } else {
                            last = Some(trigger);
                        }
                    }
                }
                next = match retry_at {
                    Some(_) => Some(trigger),
                    None => schedule.next_after(last.unwrap_or(now).max(clock.now())),
                };
                if let Some(next) = next {
                    tracing::info!(next = %next, "next scheduled batch");
                }
                metrics.set_next_batch(retry_at.or(next));
            }
            _ => {
                let wake = retry_at.or(next);
                let wait = wake
                    .and_then(|wake| (wake - now).to_std().ok())
                    .unwrap_or(tick)
                    .min(tick);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopping.wait_for(|stopping| *stopping) => return,
                }
            }
        }
    }
}

/// One event per rejected line, and one for the input.
pub fn log_rejections(source: &str, report: &IntakeReport) {
    log_rejected_lines(source, report);
    tracing::info!(
        source,
        file = %report.file.display(),
        accepted = report.accepted,
        unchanged = report.unchanged,
        rejected = report.rejected.len(),
        "input taken in"
    );
}

/// One event per rejected line only: orders posted one by one are summed up per commit.
/// Each names the file, the line, the order id, the field and the rule the line breaks, never
/// the value: a value may be a name or an address. The reason, which may quote it, is logged
/// at debug level only; the report (or the API's answer) always has it.
pub fn log_rejected_lines(source: &str, report: &IntakeReport) {
    for rejection in &report.rejected {
        tracing::info!(
            source,
            file = %report.file.display(),
            line = rejection.line,
            order_id = rejection.order_id.as_deref().unwrap_or(""),
            field = rejection.field.as_deref().unwrap_or(""),
            rule = rejection.rule.as_str(),
            "input line rejected"
        );
        tracing::debug!(
            file = %report.file.display(),
            line = rejection.line,
            reason = %rejection.message,
            "input line rejected"
        );
    }
}

fn log_spool(name: &str, kind: &str, outcome: &spool::Outcome) {
    match outcome {
        spool::Outcome::Done(report) | spool::Outcome::Partly(report) => {
            log_rejections("spool", report);
        }
        spool::Outcome::Rejected(why) => {
            tracing::warn!(file = %name, kind, reason = %why, "spool file rejected whole");
        }
    }
    tracing::info!(file = %name, kind, outcome = outcome.word(), "spool file moved");
}

/// One event per release and one for the batch; consignees are named only at debug level.
pub fn log_batch(trigger: &str, doc: &BatchDoc) {
    let summary = &doc.summary;
    tracing::info!(
        trigger,
        day = %summary.day,
        policy = %summary.policy,
        releases = summary.releases,
        orders_released = summary.orders_released,
        value_usd = %crate::money::Usd(summary.value_usd),
        held = summary.held.values().sum::<usize>(),
        waiting = summary.waiting.values().sum::<usize>(),
        not_due = summary.not_due,
        release_log = %doc.release_log.display(),
        files_due = doc.files_error.is_some(),
        "batch committed"
    );
    if let Some(error) = &doc.files_error {
        tracing::error!(day = %summary.day, %error, "the batch is committed but its release log and manifest are still due");
    }
}
