//! What the daemon's status page shows from the store, the config and the spool: the release
//! day and the policy in force, the orders by state and reason, a page of the held orders that
//! need a decision, the last day batched, the figures of recent days, and the spool files
//! rejected lately with their reports. Every figure about orders comes from one view of the
//! store (a read transaction), so that the page agrees with itself and with `orders list`.
//!
//! Cheap at any size: the orders are counted from their state bytes, and only the orders of the
//! page of held orders are decoded.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use crate::clock::Clock;
use crate::config::Config;
use crate::model::Text;
use crate::money::{self, Conversion};
use crate::store::{StateCount, Store, StoreError, StoreReader};
use crate::wire::OrderRow;

/// The spool's folder of the files it refused, beside `inbox/`.
pub const SPOOL_REJECTED: &str = "rejected";
/// What the name of a refused file's report adds to the file's name.
pub const REPORT_SUFFIX: &str = ".report.txt";
/// How many days back the page lists refused spool files.
pub const REJECTED_DAYS: i64 = 7;
/// Refused files listed at most, newest first.
const REJECTED_SHOWN: usize = 50;
/// The most of a report shown; the rest is in its file.
const REPORT_BYTES_SHOWN: usize = 16 << 10;

/// The store's, the config's and the spool's part of the status page.
#[derive(Debug, Clone)]
pub struct Status {
    pub warehouse: String,
    pub zone: Tz,
    pub now: DateTime<Utc>,
    /// Today's release day at the warehouse.
    pub today: NaiveDate,
    /// The policy in force today, if one is.
    pub policy: Option<PolicyInForce>,
    /// `schedule.batch` and `schedule.cutoff`.
    pub schedule: String,
    pub cutoff: NaiveTime,
    /// Orders by state and reason, as `orders list` gives the words.
    pub counts: Vec<StateCount>,
    /// When the first pending order in intake order was placed.
    pub oldest_pending: Option<DateTime<Utc>>,
    /// Every held order.
    pub held_total: u64,
    /// How many held orders come before `held`.
    pub held_skipped: u64,
    /// A page of the held orders, in intake order, as `orders list` gives them.
    pub held: Vec<OrderRow>,
    /// The last day batched (a day whose releases are all void does not count).
    pub last_day: Option<NaiveDate>,
    /// The spool's folder of refused files.
    pub rejected_folder: PathBuf,
    /// Files refused in the last [`REJECTED_DAYS`] days, newest first, at most 50.
    pub rejected: Vec<RejectedFile>,
    /// How many were refused in those days.
    pub rejected_total: usize,
    /// Why the refused files could not be listed.
    pub rejected_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PolicyInForce {
    pub name: String,
    pub lane: String,
    pub from: NaiveDate,
    pub value_limit_usd: Decimal,
    pub releases_per_recipient_per_day: u32,
    pub entry_type: String,
}

/// A spool file refused, whole or in part, and its report.
#[derive(Debug, Clone)]
pub struct RejectedFile {
    /// Its name in the rejected folder.
    pub name: String,
    /// When its report was written: when it was refused.
    pub at: DateTime<Utc>,
    /// The report, or its first 16 KiB.
    pub report: String,
    /// Whether the report goes on beyond `report`.
    pub cut: bool,
    pub report_path: PathBuf,
}

/// A view of the store at this moment (a read transaction), for [`status`]: taken by the one
/// that holds the store, read by anyone.
pub fn status_view(store: &Store) -> Result<StoreReader, StoreError> {
    store.reader()
}

/// What the status page shows from `view`, the config and the spool, with the held orders from
/// the `held_skip`-th on, at most `held_take` of them.
pub fn status(
    view: &StoreReader,
    config: &Config,
    clock: &Clock,
    held_skip: u64,
    held_take: usize,
) -> Result<Status, StoreError> {
    let now = clock.now();
    let zone = config.warehouse.timezone;
    let today = clock.today(zone);
    let page = view.held_page(held_skip, held_take)?;
    let cutoffs = crate::explain::Cutoffs::of(config);
    let mut rates: HashMap<Text, Option<Conversion>> = HashMap::new();
    let held = page
        .held
        .iter()
        .map(|held| {
            let order = &held.order;
            let conversion = rates
                .entry(order.currency.clone())
                .or_insert_with(|| config.rates.on(&order.currency, today));
            let value = conversion
                .as_ref()
                .and_then(|conversion| money::value_order(order, conversion));
            OrderRow::new(held, value, &cutoffs)
        })
        .collect();
    let policy = config.timeline.in_force(today).map(|policy| PolicyInForce {
        name: policy.name.clone(),
        lane: policy.lane.clone(),
        from: policy.from,
        value_limit_usd: policy.value_limit_usd,
        releases_per_recipient_per_day: policy.releases_per_recipient_per_day,
        entry_type: policy.filing.entry_type.clone(),
    });
    let rejected_folder = config.paths.spool.join(SPOOL_REJECTED);
    let since = now - chrono::Duration::days(REJECTED_DAYS);
    let (rejected, rejected_total, rejected_error) = match rejected_since(&rejected_folder, since) {
        Ok((files, total)) => (files, total, None),
        Err(error) => (
            Vec::new(),
            0,
            Some(format!("{}: {error}", rejected_folder.display())),
        ),
    };
    Ok(Status {
        warehouse: config.warehouse.name.clone(),
        zone,
        now,
        today,
        policy,
        schedule: config.schedule.batch.clone(),
        cutoff: config.schedule.cutoff,
        counts: page.counts,
        oldest_pending: page.oldest_pending,
        held_total: page.held_total,
        held_skipped: held_skip.min(page.held_total),
        held,
        last_day: view.last_day()?,
        rejected_folder,
        rejected,
        rejected_total,
        rejected_error,
    })
}

/// Releases that stand and their value in US dollars, by day.
pub type DayFigures = BTreeMap<NaiveDate, (u64, Decimal)>;

/// The releases that stand and their value for each day batched from `days - 1` days before
/// today (at the warehouse) on, and for the last day batched however old.
pub fn day_figures(
    view: &StoreReader,
    config: &Config,
    clock: &Clock,
    days: u32,
) -> Result<DayFigures, StoreError> {
    let Some(last_day) = view.last_day()? else {
        return Ok(BTreeMap::new());
    };
    let today = clock.today(config.warehouse.timezone);
    let first = today
        .checked_sub_days(chrono::Days::new(u64::from(days.saturating_sub(1))))
        .unwrap_or(today)
        .min(last_day);
    view.day_figures(first, last_day)
}

/// The reports in `folder` written at or after `since`, newest first (at most
/// [`REJECTED_SHOWN`]), and how many there are.
fn rejected_since(
    folder: &Path,
    since: DateTime<Utc>,
) -> std::io::Result<(Vec<RejectedFile>, usize)> {
    let mut found: Vec<(DateTime<Utc>, String, PathBuf)> = Vec::new();
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        // A spool not made yet has refused nothing.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = file_name.strip_suffix(REPORT_SUFFIX) else {
            continue;
        };
        let metadata = entry.metadata()?;
        if !metadata.is_file() {
            continue;
        }
        // The report is written when the file is refused (the file itself keeps the time its
        // sender wrote it).
        let at = DateTime::<Utc>::from(metadata.modified()?);
        if at >= since {
            found.push((at, name.to_owned(), entry.path()));
        }
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let total = found.len();
    let mut files = Vec::new();
    for (at, name, report_path) in found.into_iter().take(REJECTED_SHOWN) {
        let (report, cut) = read_start(&report_path, REPORT_BYTES_SHOWN)?;
        files.push(RejectedFile {
            name,
            at,
            report,
            cut,
            report_path,
        });
    }
    Ok((files, total))
}

/// The first `most` bytes of a text file, cut after its last whole line when it is longer, and
/// whether it was.
fn read_start(path: &Path, most: usize) -> std::io::Result<(String, bool)> {
    let mut bytes = Vec::with_capacity(most.min(64 << 10) + 1);
    std::fs::File::open(path)?
        .take(most as u64 + 1)
        .read_to_end(&mut bytes)?;
    let cut = bytes.len() > most;
    if cut {
        bytes.truncate(most);
        if let Some(end) = bytes.iter().rposition(|byte| *byte == b'\n') {
            bytes.truncate(end + 1);
        }
    }
    Ok((String::from_utf8_lossy(&bytes).into_owned(), cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_report_is_cut_after_a_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.report.txt");
        std::fs::write(&path, "first line\nsecond line\nthird line\n").unwrap();
        assert_eq!(
            read_start(&path, 100).unwrap(),
            ("first line\nsecond line\nthird line\n".to_owned(), false)
        );
        assert_eq!(
            read_start(&path, 15).unwrap(),
            ("first line\n".to_owned(), true)
        );
    }

    #[test]
    fn only_reports_of_the_days_asked_for_are_listed_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-30T18:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let write = |name: &str, days_ago: i64| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("{name}: why\n")).unwrap();
            let at = now - chrono::Duration::days(days_ago);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(at.into())
                .unwrap();
        };
        write("orders-1.jsonl.report.txt", 1);
        write("items-2.csv.report.txt", 0);
        write("orders-old.jsonl.report.txt", 8);
        write("orders-1.rejected.jsonl", 0);
        let since = now - chrono::Duration::days(REJECTED_DAYS);
        let (files, total) = rejected_since(dir.path(), since).unwrap();
        assert_eq!(total, 2);
        let names: Vec<&str> = files.iter().map(|file| file.name.as_str()).collect();
        assert_eq!(names, ["items-2.csv", "orders-1.jsonl"]);
        assert_eq!(files[1].report, "orders-1.jsonl.report.txt: why\n");
        assert!(!files[1].cut);
        // A spool that does not exist yet has refused nothing.
        let missing = rejected_since(&dir.path().join("none"), since).unwrap();
        assert_eq!(missing.1, 0);
    }
}
