//! Release logs and broker manifests: files derived from the committed releases of a day.
//!
//! `<logs>/releases/<day>.jsonl` holds one release per line; `<logs>/releases/<day>.manifest.csv`
//! one row per release line with what an entry filing needs. Both are rewritten whole from the
//! store (write to a temporary file, fsync, rename), so however often they are written, and
//! whatever crash came before, they list every committed release of the day exactly once.
//! The store marks a day's files as due in the same commit as its releases and clears the mark
//! once they are written: [`write_due`] catches up after a crash.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, SecondsFormat};
use serde::Serialize;

use crate::files;
use crate::model::{Consignee, Release};
use crate::money::DecimalText;
use crate::store::{Commit, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot write {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The folder of release logs and manifests under the configured logs folder.
pub fn releases_dir(logs: &Path) -> PathBuf {
    logs.join("releases")
}

pub fn log_path(logs: &Path, day: NaiveDate) -> PathBuf {
    releases_dir(logs).join(format!("{}.jsonl", day.format("%Y-%m-%d")))
}

pub fn manifest_path(logs: &Path, day: NaiveDate) -> PathBuf {
    releases_dir(logs).join(format!("{}.manifest.csv", day.format("%Y-%m-%d")))
}

/// Writes the files of every day the store marks as due, then clears the marks.
/// Returns the days written.
pub fn write_due(store: &Store, logs: &Path) -> Result<Vec<NaiveDate>, LogError> {
    let days = store.logs_due()?;
    for day in &days {
        let releases = store.releases_of(*day)?;
        write_committed(store, logs, *day, &[&releases])?;
    }
    Ok(days)
}

/// Writes the files of a day that the store marks as due, from its committed releases, and
/// clears the mark. The batch calls this with the releases it has just committed, to spare
/// reading them back.
pub fn write_committed(
    store: &Store,
    logs: &Path,
    day: NaiveDate,
    parts: &[&[Release]],
) -> Result<(), LogError> {
    write_day(logs, day, parts)?;
    crate::crashpoint::reached("logs-after-write");
    let mut commit = Commit::new();
    commit.clear_logs_due(day);
    // Losing this is harmless: the files would only be written again, identically.
    store.commit_lazily(commit)?;
    Ok(())
}

/// Writes the release log and manifest of `day` from its committed releases, given in parts
/// (for example the day's earlier waves, then the releases just committed).
pub fn write_day(logs: &Path, day: NaiveDate, parts: &[&[Release]]) -> Result<(), LogError> {
    let dir = releases_dir(logs);
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| LogError::Io { path, source }
    };
    files::create_private_dir(&dir).map_err(io_error(&dir))?;
    let releases = || parts.iter().flat_map(|part| part.iter());
    let log_file = log_path(logs, day);
    let manifest_file = manifest_path(logs, day);
    // The two files are written side by side; the release log is renamed into place first.
    let manifest_written = std::thread::scope(|scope| {
        let manifest = scope.spawn(|| {
            files::write_temporary(&manifest_file, |writer| write_manifest(releases(), writer))
        });
        files::replace_durably_with(&log_file, |writer| {
            for release in releases() {
                serde_json::to_writer(&mut *writer, &ReleaseRecord::from(release))?;
                writer.write_all(b"\n")?;
            }
            Ok(())
        })
        .map_err(io_error(&log_file))?;
        manifest
            .join()
            .expect("the manifest thread panicked")
            .map_err(io_error(&manifest_file))
    })?;
    crate::crashpoint::reached("logs-after-release-log");
    files::rename_durably(&manifest_written, &manifest_file).map_err(io_error(&manifest_file))
}

/// The manifest CSV of some releases, header first.
pub fn manifest(releases: &[Release]) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_manifest(releases.iter(), &mut bytes).expect("writing CSV to memory cannot fail");
    bytes
}

fn write_manifest<'a>(
    releases: impl Iterator<Item = &'a Release>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(MANIFEST_COLUMNS)?;
    for release in releases {
        let day = release.day.to_string();
        let address = &release.consignee.address;
        for line in &release.lines {
            let fx = release
                .fx
                .iter()
                .find(|fx| *fx.currency == *line.currency)
                .map_or(rust_decimal::Decimal::ONE, |fx| fx.usd);
            let qty = line.qty.to_string();
            let (unit_price, fx, value_usd) = (
                DecimalText::new(line.unit_price),
                DecimalText::new(fx),
                DecimalText::new(line.value_usd),
            );
            writer.write_record([
                release.release_id.as_str(),
                &day,
                &release.policy,
                &release.lane,
                &release.consignee.name,
                &address.line1,
                address.line2.as_deref().unwrap_or(""),
                &address.city,
                &address.state,
                &address.postal_code,
                &address.country,
                &line.order_id,
                &line.sku,
                &line.description,
                &qty,
                &line.hts,
                &line.origin,
                &line.currency,
                unit_price.as_str(),
                fx.as_str(),
                value_usd.as_str(),
            ])?;
        }
    }
    writer.flush()
}

/// The manifest's columns.
pub const MANIFEST_COLUMNS: [&str; 21] = [
    "release_id",
    "day",
    "policy",
    "lane",
    "consignee_name",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
    "order_id",
    "sku",
    "description",
    "quantity",
    "hts",
    "origin",
    "currency",
    "unit_price",
    "usd_per_unit",
    "value_usd",
];

/// One line of the release log (DESIGN section 5).
#[derive(Serialize)]
pub struct ReleaseRecord<'a> {
    release_id: &'a str,
    day: String,
    policy: &'a str,
    lane: &'a str,
    recipient_key: &'a str,
    consignee: ConsigneeRecord<'a>,
    orders: &'a [String],
    lines: Vec<LineRecord<'a>>,
    value_usd: Amount,
    fx: Vec<FxRecord<'a>>,
    released_at: String,
}

#[derive(Serialize)]
struct ConsigneeRecord<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_id: Option<&'a str>,
    address: &'a crate::model::Address,
}

#[derive(Serialize)]
struct LineRecord<'a> {
    order_id: &'a str,
    sku: &'a str,
    qty: u32,
    description: &'a str,
    hts: &'a str,
    origin: &'a str,
    value_usd: Amount,
    currency: &'a str,
    unit_price: Amount,
}

#[derive(Serialize)]
struct FxRecord<'a> {
    currency: &'a str,
    usd: Amount,
    from: String,
}

/// A decimal written as a JSON string (`"19.99"`), formatted without allocating.
struct Amount(rust_decimal::Decimal);

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(DecimalText::new(self.0).as_str())
    }
}

impl<'a> From<&'a Release> for ReleaseRecord<'a> {
    fn from(release: &'a Release) -> ReleaseRecord<'a> {
        ReleaseRecord {
            release_id: &release.release_id,
            day: release.day.to_string(),
            policy: &release.policy,
            lane: &release.lane,
            recipient_key: &release.recipient_key,
            consignee: consignee_record(&release.consignee),
            orders: &release.orders,
            lines: release
                .lines
                .iter()
                .map(|line| LineRecord {
                    order_id: &line.order_id,
                    sku: &line.sku,
                    qty: line.qty,
                    description: &line.description,
                    hts: &line.hts,
                    origin: &line.origin,
                    value_usd: Amount(line.value_usd),
                    currency: &line.currency,
                    unit_price: Amount(line.unit_price),
                })
                .collect(),
            value_usd: Amount(release.value_usd),
            fx: release
                .fx
                .iter()
                .map(|fx| FxRecord {
                    currency: &fx.currency,
                    usd: Amount(fx.usd),
                    from: fx.from.to_string(),
                })
                .collect(),
            released_at: release
                .released_at
                .to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }
}

fn consignee_record(consignee: &Consignee) -> ConsigneeRecord<'_> {
    ConsigneeRecord {
        name: &consignee.name,
        customer_id: consignee.customer_id.as_deref(),
        address: &consignee.address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, FxUsed, ReleaseLine};
    use rust_decimal::Decimal;
    use std::fs;
    use std::str::FromStr;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn line(
        order_id: &str,
        sku: &str,
        qty: u32,
        currency: &str,
        price: &str,
        usd: &str,
    ) -> ReleaseLine {
        ReleaseLine {
            order_id: order_id.into(),
            sku: sku.into(),
            qty,
            description: format!("Description of {sku}, with a comma").into(),
            hts: "6109.10.0012".into(),
            origin: "MX".into(),
            currency: currency.into(),
            unit_price: dec(price),
            value_usd: dec(usd),
        }
    }

    fn release() -> Release {
        Release {
            release_id: "2026-11-24-000001".into(),
            day: NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
            policy: "informal-entry".into(),
            lane: "informal-entry".into(),
            recipient_key: "ana ruiz|1200 market st 4|san diego|CA|92101".into(),
            consignee: Consignee {
                name: "Ana Ruiz".into(),
                customer_id: None,
                address: Address {
                    line1: "1200 Market St".into(),
                    line2: Some("Apt 4".into()),
                    city: "San Diego".into(),
                    state: "CA".into(),
                    postal_code: "92101".into(),
                    country: "US".into(),
                },
            },
            orders: vec!["SO-1001".into(), "SO-1002".into()],
            lines: vec![
                line("SO-1001", "TSHIRT-M", 2, "USD", "19.99", "39.98"),
                line("SO-1002", "JEANS-32", 1, "MXN", "899.00", "48.64"),
            ],
            value_usd: dec("88.62"),
            fx: vec![FxUsed {
                currency: "MXN".into(),
                usd: dec("0.0541"),
                from: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            }],
            released_at: "2026-11-24T14:00:03.250Z".parse().unwrap(),
        }
    }

    #[test]
    fn a_release_log_line_reads_as_documented() {
        let line = serde_json::to_string(&ReleaseRecord::from(&release())).unwrap();
        insta::assert_snapshot!(line);
    }

    #[test]
    fn a_manifest_has_a_row_per_release_line() {
        let manifest = String::from_utf8(manifest(&[release()])).unwrap();
        insta::assert_snapshot!(manifest);
    }

    #[test]
    fn writing_a_day_twice_gives_the_same_files_once() {
        let dir = tempfile::tempdir().unwrap();
        let day = release().day;
        write_day(dir.path(), day, &[&[release()]]).unwrap();
        let first = fs::read(log_path(dir.path(), day)).unwrap();
        write_day(dir.path(), day, &[&[release()]]).unwrap();
        assert_eq!(fs::read(log_path(dir.path(), day)).unwrap(), first);
        assert_eq!(first.iter().filter(|byte| **byte == b'\n').count(), 1);
        let names: Vec<String> = fs::read_dir(releases_dir(dir.path()))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "temporary files left behind: {names:?}");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(log_path(dir.path(), day))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the release log is readable by others");
    }
}
