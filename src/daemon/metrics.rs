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
/// Days of releases kept in the figures.
const DAYS_KEPT: usize = 7;

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// The states changed since they were last counted.
    states_stale: AtomicBool,
    engine_busy_since: Mutex<Option<Instant>>,
}

/// What a release day's committed releases that stand add up to.
#[derive(Debug, Clone, Copy, Default)]
struct DayFigures {
    releases: u64,
    value_usd: Decimal,
    /// The estimate: the duties known, the fees, and the lines of unknown duty.
    estimate: EstimateTotals,
}

/// One figure of a day, as written.
type DayFigure = fn(&DayFigures) -> String;

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
    /// The figures of each recent release day.
    releases: BTreeMap<NaiveDate, DayFigures>,
    batches: BTreeMap<&'static str, u64>,
    last_batch_seconds: Option<Duration>,
    last_batch_at: Option<DateTime<Utc>>,
    reloads: BTreeMap<&'static str, u64>,
    /// Why the daemon is not healthy.
    failing: Option<String>,
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
        day.releases += summary.releases as u64;
        day.value_usd += summary.value_usd;
        day.estimate.duty_usd += summary.duty_usd;
        day.estimate.fees_usd += summary.fees_usd;
        day.estimate.unknown_lines += summary.unknown_duty_lines;
        while inner.releases.len() > DAYS_KEPT {
            inner.releases.pop_first();
        }
        *inner.batches.entry("committed").or_default() += 1;
        inner.last_batch_seconds = Some(took);
        inner.last_batch_at = Some(at);
        inner.states_counted = None;
    }

    /// A release voided: its day's figures lose it.
    pub fn release_voided(&self, void: &VoidDoc) {
        if let Some(figures) = self.inner().releases.get_mut(&void.day) {
            figures.releases = figures.releases.saturating_sub(1);
            figures.value_usd -= void.value_usd;
            figures.estimate.duty_usd -= void.duty_usd;
            figures.estimate.fees_usd -= void.fees_usd;
            figures.estimate.unknown_lines = figures
                .estimate
                .unknown_lines
                .saturating_sub(void.unknown_duty_lines);
        }
    }

    pub fn batch_failed(&self) {
        *self.inner().batches.entry("failed").or_default() += 1;
    }

    /// A day's releases as the store has them, at start.
    pub fn set_day(
        &self,
        day: NaiveDate,
        releases: u64,
        value_usd: Decimal,
        estimate: EstimateTotals,
    ) {
        self.inner().releases.insert(
            day,
            DayFigures {
                releases,
                value_usd,
                estimate,
            },
        );
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
        let series: [(&str, &str, DayFigure); 5] = [
            (
                "border_release_releases",
                "Releases committed per release day (recent days).",
                |figures| figures.releases.to_string(),
            ),
            (
                "border_release_released_value_usd",
                "Declared value released per release day, in US dollars (recent days).",
                |figures| figures.value_usd.to_string(),
            ),
            (
                "border_release_estimated_duty_usd",
                "Estimated duties of the lines of known duty released per release day, in US dollars (recent days).",
                |figures| figures.estimate.duty_usd.to_string(),
            ),
            (
                "border_release_estimated_fees_usd",
                "Estimated fees of the releases per release day, in US dollars (recent days).",
                |figures| figures.estimate.fees_usd.to_string(),
            ),
            (
                "border_release_unknown_duty_lines",
                "Release lines per release day whose duty is unknown: no mfn row of the duty tables applies (recent days).",
                |figures| figures.estimate.unknown_lines.to_string(),
            ),
        ];
        for (name, help, figure) in series {
            header(&mut out, name, "gauge", help);
            for (day, figures) in &inner.releases {
                let _ = writeln!(out, "{name}{{day=\"{day}\"}} {}", figure(figures));
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
