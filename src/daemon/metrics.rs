//! The daemon's figures, kept as they change and written out in the Prometheus text format at
//! `/metrics`. Money is written from its decimal text, never through a float.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::operations::{EstimateTotals, IntakeReport, Summary};
use crate::store::StateCount;
use crate::wire::VoidDoc;

/// Shortest time between two counts of the order states.
const STATES_EVERY: Duration = Duration::from_millis(250);
/// Days of releases kept in the figures (the days batched, the latest ones).
pub const DAYS_KEPT: usize = 14;

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// The states changed since they were last counted.
    states_stale: AtomicBool,
    engine_busy_since: Mutex<Option<Instant>>,
}

/// What batches and voids changed of a day's figures.
#[derive(Debug, Clone, Copy, Default)]
struct DayChange {
    releases: i64,
    value_usd: Decimal,
    duty_usd: Decimal,
    fees_usd: Decimal,
    unknown_lines: i64,
}

/// One figure of a day, as written.
type DayFigure = fn(&(u64, Decimal)) -> String;
/// One figure of a day's estimate, as written.
type EstimateFigure = fn(&EstimateTotals) -> String;

#[derive(Default)]
struct Inner {
    states: Vec<StateCount>,
    states_counted: Option<Instant>,
    oldest_pending: Option<DateTime<Utc>>,
    /// (source, outcome) to lines.
    intake: BTreeMap<(&'static str, &'static str), u64>,
    /// Order posts to the API, and the commits they shared.
    order_posts: u64,
    order_commits: u64,
    /// (kind, outcome) to spool files.
    spool_files: BTreeMap<(&'static str, &'static str), u64>,
    /// Day to (releases, value in USD).
    releases: BTreeMap<NaiveDate, (u64, Decimal)>,
    /// Day to the estimate of its releases: the last day batched when the daemon started, and
    /// the days batched since.
    estimates: BTreeMap<NaiveDate, EstimateTotals>,
    batches: BTreeMap<&'static str, u64>,
    last_batch_seconds: Option<Duration>,
    last_batch_at: Option<DateTime<Utc>>,
    reloads: BTreeMap<&'static str, u64>,
    /// Why the daemon is not healthy.
    failing: Option<String>,
    /// The last batch run since start, whatever became of it.
    last_batch: Option<LastBatch>,
    /// When the scheduler runs the next batch.
    next_batch: Option<DateTime<Utc>>,
    /// While the days' figures are read from the store: what batches and voids changed since
    /// the view they are read from was taken, by day.
    days_changed: Option<BTreeMap<NaiveDate, DayChange>>,
    /// Whether the days' figures were read from the store.
    days_read: DaysRead,
    /// When the daemon started.
    started_at: Option<DateTime<Utc>>,
}

/// A batch the daemon ran, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastBatch {
    pub day: NaiveDate,
    /// When it ended.
    pub at: DateTime<Utc>,
    pub took: Duration,
    /// Run by the schedule (else asked for: the command line, the API).
    pub scheduled: bool,
    pub outcome: BatchOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Committed: its releases, the orders they hold and their value; `files_error` when its
    /// release files are still due.
    Committed {
        releases: u64,
        orders: u64,
        value_usd: Decimal,
        files_error: Option<String>,
    },
    /// Refused by the rules (a day before the last one batched, no policy in force).
    Refused(String),
    /// Failed: the store, or release files due that cannot be written.
    Failed(String),
}

/// Whether the figures of the days batched before the daemon started were read from the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DaysRead {
    #[default]
    Reading,
    Read,
    /// They could not be read (the daemon's log says why): only the batches since start count.
    Failed,
}

/// What the status page shows of the daemon's own figures, as they are at one moment.
#[derive(Debug, Clone)]
pub struct DaemonFigures {
    /// The releases that stand and their value, by day, for the latest days batched.
    pub days: BTreeMap<NaiveDate, (u64, Decimal)>,
    /// Whether `days` holds what the store held at start (else only the batches since).
    pub days_read: DaysRead,
    pub last_batch: Option<LastBatch>,
    pub next_batch: Option<DateTime<Utc>>,
    /// Batches run since start, by outcome.
    pub batches: BTreeMap<&'static str, u64>,
    /// Why the daemon is not healthy.
    pub failing: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
}

impl Metrics {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the order states may be counted now; if not, they are marked stale.
    pub fn states_due(&self) -> bool {
        let due = self
            .inner()
            .states_counted
            .is_none_or(|at| at.elapsed() >= STATES_EVERY);
        if !due {
            self.states_stale.store(true, Ordering::SeqCst);
        }
        due
    }

    /// Whether a count was skipped since the last one.
    pub fn states_stale(&self) -> bool {
        self.states_stale.load(Ordering::SeqCst)
    }

    pub fn set_states(&self, counts: Vec<StateCount>, oldest: Option<DateTime<Utc>>) {
        let mut inner = self.inner();
        inner.states = counts;
        inner.oldest_pending = oldest;
        inner.states_counted = Some(crate::clock::monotonic());
        self.states_stale.store(false, Ordering::SeqCst);
    }

    /// Forgets when the states were counted, so that the next count is not skipped.
    pub fn states_changed(&self) {
        self.inner().states_counted = None;
    }

    pub fn intake(&self, source: &'static str, report: &IntakeReport) {
        let mut inner = self.inner();
        for (outcome, lines) in [
            ("accepted", report.accepted),
            ("unchanged", report.unchanged),
            ("rejected", report.rejected.len()),
        ] {
            *inner.intake.entry((source, outcome)).or_default() += lines as u64;
        }
    }

    /// One group commit of `posts` order posts.
    pub fn order_commit(&self, posts: usize) {
        let mut inner = self.inner();
        inner.order_posts += posts as u64;
        inner.order_commits += 1;
    }

    pub fn spool_file(&self, kind: &'static str, outcome: &'static str) {
        *self.inner().spool_files.entry((kind, outcome)).or_default() += 1;
    }

    pub fn batch_done(&self, summary: &Summary, took: Duration, at: DateTime<Utc>) {
        let mut inner = self.inner();
        let day = inner.releases.entry(summary.day).or_default();
        day.0 += summary.releases as u64;
        day.1 += summary.value_usd;
        if let Some(changed) = inner.days_changed.as_mut() {
            let day = changed.entry(summary.day).or_default();
            day.releases += summary.releases as i64;
            day.value_usd += summary.value_usd;
            day.duty_usd += summary.duty_usd;
            day.fees_usd += summary.fees_usd;
            day.unknown_lines += summary.unknown_duty_lines as i64;
        }
        while inner.releases.len() > DAYS_KEPT {
            inner.releases.pop_first();
        }
        let estimate = inner.estimates.entry(summary.day).or_default();
        estimate.duty_usd += summary.duty_usd;
        estimate.fees_usd += summary.fees_usd;
        estimate.unknown_lines += summary.unknown_duty_lines;
        while inner.estimates.len() > DAYS_KEPT {
            inner.estimates.pop_first();
        }
        *inner.batches.entry("committed").or_default() += 1;
        inner.last_batch_seconds = Some(took);
        inner.last_batch_at = Some(at);
        inner.states_counted = None;
    }

    /// When the daemon started, for the status page.
    pub fn started(&self, at: DateTime<Utc>) {
        self.inner().started_at = Some(at);
    }

    /// What became of the last batch run, for the status page.
    pub fn batch_ran(&self, batch: LastBatch) {
        self.inner().last_batch = Some(batch);
    }

    /// When the scheduler runs the next batch, if it knows.
    pub fn set_next_batch(&self, next: Option<DateTime<Utc>>) {
        self.inner().next_batch = next;
    }

    /// A release voided: its day's figures lose it, its estimate too.
    pub fn release_voided(&self, void: &VoidDoc) {
        let (day, value_usd) = (void.day, void.value_usd);
        let mut inner = self.inner();
        if let Some(estimate) = inner.estimates.get_mut(&day) {
            estimate.duty_usd -= void.duty_usd;
            estimate.fees_usd -= void.fees_usd;
            estimate.unknown_lines = estimate
                .unknown_lines
                .saturating_sub(void.unknown_duty_lines);
        }
        if let Some(changed) = inner.days_changed.as_mut() {
            let day = changed.entry(day).or_default();
            day.releases -= 1;
            day.value_usd -= value_usd;
            day.duty_usd -= void.duty_usd;
            day.fees_usd -= void.fees_usd;
            day.unknown_lines -= void.unknown_duty_lines as i64;
        }
        if let Some(figures) = inner.releases.get_mut(&day) {
            figures.0 = figures.0.saturating_sub(1);
            figures.1 -= value_usd;
        }
    }

    /// The estimate of a day's releases read from the view taken at [`Metrics::days_reading`]
    /// (the last day batched): with what changed it since, it replaces the day's estimate. Called
    /// before [`Metrics::days_read`].
    pub fn estimate_read(&self, day: NaiveDate, read: EstimateTotals) {
        let mut inner = self.inner();
        let change = inner
            .days_changed
            .as_ref()
            .and_then(|changed| changed.get(&day).copied())
            .unwrap_or_default();
        let estimate = EstimateTotals {
            duty_usd: read.duty_usd + change.duty_usd,
            fees_usd: read.fees_usd + change.fees_usd,
            unknown_lines: u64::try_from(read.unknown_lines as i64 + change.unknown_lines)
                .unwrap_or(0),
        };
        inner.estimates.insert(day, estimate);
        while inner.estimates.len() > DAYS_KEPT {
            inner.estimates.pop_first();
        }
    }

    /// The days' figures are about to be read from a view of the store taken now: the batches
    /// and voids from here on are kept aside, to be added to what is read.
    pub fn days_reading(&self) {
        self.inner().days_changed = Some(BTreeMap::new());
    }

    /// The days' figures read from the view taken at [`Metrics::days_reading`] (none when it
    /// could not be read): each day read, with what changed it since, replaces the day's
    /// figures.
    pub fn days_read(&self, read: Option<BTreeMap<NaiveDate, (u64, Decimal)>>) {
        let mut inner = self.inner();
        let changed = inner.days_changed.take().unwrap_or_default();
        let Some(read) = read else {
            inner.days_read = DaysRead::Failed;
            return;
        };
        for (day, (releases, value)) in read {
            let change = changed.get(&day).copied().unwrap_or_default();
            let releases = u64::try_from(releases as i64 + change.releases).unwrap_or(0);
            inner
                .releases
                .insert(day, (releases, value + change.value_usd));
        }
        while inner.releases.len() > DAYS_KEPT {
            inner.releases.pop_first();
        }
        inner.days_read = DaysRead::Read;
    }

    /// The daemon's figures for the status page.
    pub fn figures(&self) -> DaemonFigures {
        let inner = self.inner();
        DaemonFigures {
            days: inner.releases.clone(),
            days_read: inner.days_read,
            last_batch: inner.last_batch.clone(),
            next_batch: inner.next_batch,
            batches: inner.batches.clone(),
            failing: inner.failing.clone(),
            started_at: inner.started_at,
        }
    }

    pub fn batch_failed(&self) {
        *self.inner().batches.entry("failed").or_default() += 1;
    }

    pub fn reload(&self, outcome: &'static str) {
        *self.inner().reloads.entry(outcome).or_default() += 1;
    }

    pub fn engine_busy(&self, busy: bool) {
        let mut since = self
            .engine_busy_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *since = busy.then(crate::clock::monotonic);
    }

    /// How long the engine has been on its current job.
    pub fn engine_busy_for(&self) -> Option<Duration> {
        self.engine_busy_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .map(|since| since.elapsed())
    }

    pub fn set_failing(&self, why: Option<String>) {
        self.inner().failing = why;
    }

    pub fn failing(&self) -> Option<String> {
        self.inner().failing.clone()
    }

    /// The figures in the Prometheus text format.
    pub fn render(&self, now: DateTime<Utc>) -> String {
        let inner = self.inner();
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "border_release_orders",
            "gauge",
            "Orders in the store by state and reason.",
        );
        let mut by_state: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for count in &inner.states {
            *by_state
                .entry((count.state, count.reason.unwrap_or("")))
                .or_default() += count.orders;
        }
        for ((state, reason), count) in &by_state {
            let _ = writeln!(
                out,
                "border_release_orders{{state=\"{state}\",reason=\"{reason}\"}} {count}"
            );
        }
        header(
            &mut out,
            "border_release_oldest_pending_age_seconds",
            "gauge",
            "Age of the oldest pending order (in intake order), from its placed_at; 0 when none.",
        );
        let age = inner
            .oldest_pending
            .map_or(0, |placed| (now - placed).num_seconds().max(0));
        let _ = writeln!(out, "border_release_oldest_pending_age_seconds {age}");
        header(
            &mut out,
            "border_release_intake_lines_total",
            "counter",
            "Input lines taken in since start, by source and outcome.",
        );
        for ((source, outcome), lines) in &inner.intake {
            let _ = writeln!(
                out,
                "border_release_intake_lines_total{{source=\"{source}\",outcome=\"{outcome}\"}} {lines}"
            );
        }
        header(
            &mut out,
            "border_release_api_order_posts_total",
            "counter",
            "Order posts to the API acknowledged since start.",
        );
        let _ = writeln!(
            out,
            "border_release_api_order_posts_total {}",
            inner.order_posts
        );
        header(
            &mut out,
            "border_release_api_order_commits_total",
            "counter",
            "Durable commits those posts shared (group commit).",
        );
        let _ = writeln!(
            out,
            "border_release_api_order_commits_total {}",
            inner.order_commits
        );
        header(
            &mut out,
            "border_release_spool_files_total",
            "counter",
            "Spool files handled since start, by kind and outcome.",
        );
        for ((kind, outcome), files) in &inner.spool_files {
            let _ = writeln!(
                out,
                "border_release_spool_files_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {files}"
            );
        }
        let days: [(&str, &str, DayFigure); 2] = [
            (
                "border_release_releases",
                "Releases committed per release day (recent days).",
                |(releases, _)| releases.to_string(),
            ),
            (
                "border_release_released_value_usd",
                "Declared value released per release day, in US dollars (recent days).",
                |(_, value)| value.to_string(),
            ),
        ];
        for (name, help, figure) in days {
            header(&mut out, name, "gauge", help);
            for (day, figures) in &inner.releases {
                let _ = writeln!(out, "{name}{{day=\"{day}\"}} {}", figure(figures));
            }
        }
        let estimates: [(&str, &str, EstimateFigure); 3] = [
            (
                "border_release_estimated_duty_usd",
                "Estimated duties of the lines of known duty released per release day, in US dollars (the last day batched at start, and the days batched since).",
                |estimate| estimate.duty_usd.to_string(),
            ),
            (
                "border_release_estimated_fees_usd",
                "Estimated fees of the releases per release day, in US dollars (the last day batched at start, and the days batched since).",
                |estimate| estimate.fees_usd.to_string(),
            ),
            (
                "border_release_unknown_duty_lines",
                "Release lines per release day whose duty is unknown: no mfn row of the duty tables applies (the last day batched at start, and the days batched since).",
                |estimate| estimate.unknown_lines.to_string(),
            ),
        ];
        for (name, help, figure) in estimates {
            header(&mut out, name, "gauge", help);
            for (day, estimate) in &inner.estimates {
                let _ = writeln!(out, "{name}{{day=\"{day}\"}} {}", figure(estimate));
            }
        }
        header(
            &mut out,
            "border_release_batches_total",
            "counter",
            "Batches run since start, by outcome.",
        );
        for (outcome, count) in &inner.batches {
            let _ = writeln!(
                out,
                "border_release_batches_total{{outcome=\"{outcome}\"}} {count}"
            );
        }
        if let Some(took) = inner.last_batch_seconds {
            header(
                &mut out,
                "border_release_last_batch_duration_seconds",
                "gauge",
                "How long the last committed batch took.",
            );
            let _ = writeln!(
                out,
                "border_release_last_batch_duration_seconds {}.{:06}",
                took.as_secs(),
                took.subsec_micros()
            );
        }
        if let Some(at) = inner.last_batch_at {
            header(
                &mut out,
                "border_release_last_batch_timestamp_seconds",
                "gauge",
                "When the last batch committed, in Unix seconds.",
            );
            let _ = writeln!(
                out,
                "border_release_last_batch_timestamp_seconds {}",
                at.timestamp()
            );
        }
        header(
            &mut out,
            "border_release_config_reloads_total",
            "counter",
            "Config reloads since start, by outcome.",
        );
        for (outcome, count) in &inner.reloads {
            let _ = writeln!(
                out,
                "border_release_config_reloads_total{{outcome=\"{outcome}\"}} {count}"
            );
        }
        header(
            &mut out,
            "border_release_healthy",
            "gauge",
            "1 while the daemon is healthy, else 0.",
        );
        let _ = writeln!(
            out,
            "border_release_healthy {}",
            u8::from(inner.failing.is_none())
        );
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn usd(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn summary(on: &str, releases: usize, value: &str) -> Summary {
        Summary {
            day: day(on),
            policy: "p".into(),
            lane: "de-minimis".into(),
            value_limit_usd: usd("800"),
            releases_before: 0,
            releases,
            orders_released: releases,
            value_usd: usd(value),
            held: BTreeMap::new(),
            waiting: BTreeMap::new(),
            not_due: 0,
            past: false,
            duty_usd: usd("1.00") * Decimal::from(releases),
            fees_usd: usd("2.69") * Decimal::from(releases),
            unknown_duty_lines: 1,
        }
    }

    /// A void of one release of `on` worth `value`, whose estimate is 1.00 of duty, 2.69 of fees
    /// and one line of unknown duty.
    fn void(on: &str, value: &str) -> VoidDoc {
        VoidDoc {
            release_id: format!("{on}-000001"),
            day: day(on),
            reason: "the truck did not leave".into(),
            voided_at: DateTime::<Utc>::UNIX_EPOCH,
            orders: vec!["O1".into()],
            value_usd: usd(value),
            duty_usd: usd("1.00"),
            fees_usd: usd("2.69"),
            unknown_duty_lines: 1,
            last_day: None,
            voids: "voids.jsonl".into(),
            manifest: "manifest.csv".into(),
            files_error: None,
        }
    }

    /// The estimate lines of `/metrics` for `on`: duty, fees, lines of unknown duty.
    fn estimate_lines(metrics: &Metrics, on: &str) -> Vec<String> {
        let text = metrics.render(DateTime::<Utc>::UNIX_EPOCH);
        [
            "border_release_estimated_duty_usd",
            "border_release_estimated_fees_usd",
            "border_release_unknown_duty_lines",
        ]
        .iter()
        .filter_map(|name| {
            let prefix = format!("{name}{{day=\"{on}\"}} ");
            text.lines()
                .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
        })
        .collect()
    }

    #[test]
    fn the_estimate_read_at_start_takes_in_the_batches_and_voids_made_since() {
        let metrics = Metrics::default();
        let at = DateTime::<Utc>::UNIX_EPOCH;
        metrics.days_reading();
        // A second wave of the last day, and a void of one of its first releases, while it is
        // read: 2 releases of the wave (2.00, 5.38, 1 line), less the void (1.00, 2.69, 1 line).
        metrics.batch_done(&summary("2026-11-30", 2, "30.00"), Duration::ZERO, at);
        metrics.release_voided(&void("2026-11-30", "10.00"));
        let read = EstimateTotals {
            duty_usd: usd("40.00"),
            fees_usd: usd("26.90"),
            unknown_lines: 3,
        };
        metrics.estimate_read(day("2026-11-30"), read);
        metrics.days_read(Some(BTreeMap::from([(
            day("2026-11-30"),
            (10, usd("500.00")),
        )])));
        assert_eq!(
            estimate_lines(&metrics, "2026-11-30"),
            ["41.00", "29.59", "3"]
        );
        // From then on a batch and a void count once.
        metrics.batch_done(&summary("2026-11-30", 1, "5.00"), Duration::ZERO, at);
        metrics.release_voided(&void("2026-11-30", "5.00"));
        assert_eq!(
            estimate_lines(&metrics, "2026-11-30"),
            ["41.00", "29.59", "3"]
        );
        metrics.batch_done(&summary("2026-12-01", 3, "5.00"), Duration::ZERO, at);
        assert_eq!(
            estimate_lines(&metrics, "2026-12-01"),
            ["3.00", "8.07", "1"]
        );
    }

    #[test]
    fn batches_and_voids_made_while_the_days_are_read_are_added_to_what_is_read() {
        let metrics = Metrics::default();
        let at = DateTime::<Utc>::UNIX_EPOCH;
        // A batch before the view is taken is in what is read.
        metrics.batch_done(&summary("2026-11-30", 4, "100.00"), Duration::ZERO, at);
        metrics.days_reading();
        assert_eq!(metrics.figures().days_read, DaysRead::Reading);
        // A wave and a void after it are not.
        metrics.batch_done(&summary("2026-11-30", 2, "30.00"), Duration::ZERO, at);
        metrics.batch_done(&summary("2026-12-01", 1, "5.00"), Duration::ZERO, at);
        metrics.release_voided(&void("2026-11-29", "10.00"));
        let read = BTreeMap::from([
            (day("2026-11-29"), (3, usd("50.00"))),
            (day("2026-11-30"), (4, usd("100.00"))),
        ]);
        metrics.days_read(Some(read));
        let figures = metrics.figures();
        assert_eq!(figures.days_read, DaysRead::Read);
        assert_eq!(
            figures.days,
            BTreeMap::from([
                (day("2026-11-29"), (2, usd("40.00"))),
                (day("2026-11-30"), (6, usd("130.00"))),
                (day("2026-12-01"), (1, usd("5.00"))),
            ])
        );
        // From then on a batch counts once.
        metrics.batch_done(&summary("2026-12-01", 1, "7.00"), Duration::ZERO, at);
        assert_eq!(
            metrics.figures().days[&day("2026-12-01")],
            (2, usd("12.00"))
        );
    }

    #[test]
    fn days_that_cannot_be_read_leave_the_batches_since_start() {
        let metrics = Metrics::default();
        metrics.days_reading();
        let at = DateTime::<Utc>::UNIX_EPOCH;
        metrics.batch_done(&summary("2026-11-30", 2, "30.00"), Duration::ZERO, at);
        metrics.days_read(None);
        let figures = metrics.figures();
        assert_eq!(figures.days_read, DaysRead::Failed);
        assert_eq!(figures.days[&day("2026-11-30")], (2, usd("30.00")));
    }

    #[test]
    fn fourteen_days_are_kept() {
        let metrics = Metrics::default();
        let at = DateTime::<Utc>::UNIX_EPOCH;
        for n in 1..=20 {
            let on = format!("2026-11-{n:02}");
            metrics.batch_done(&summary(&on, 1, "1.00"), Duration::ZERO, at);
        }
        let days = metrics.figures().days;
        assert_eq!(days.len(), DAYS_KEPT);
        assert_eq!(days.keys().next(), Some(&day("2026-11-07")));
    }
}
