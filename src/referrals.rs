//! The referral files: the broker's list of the orders referred to a formal entry on a day
//! (`orders refer`), derived from the referrals the store keeps.
//!
//! `<logs>/referrals/<day>.jsonl` holds one referral per line, `<logs>/referrals/<day>.csv` one
//! row per referred order. Both are written whole from the store (to a temporary file, fsynced,
//! renamed), readable by the service's group like the release files; `check-store` compares
//! them with the store byte for byte, and `releases write --day` writes them again.
//! Never reads the clock nor the config beyond the release files' output.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, SecondsFormat};
use serde::Serialize;

use crate::files;
use crate::model::{Address, Referral};
use crate::money::Usd;
use crate::releaselog::{day_file, FileCheck, LogError, Output, READERS, UTF8_BOM};

/// The folder of referral files under the configured logs folder.
pub fn referrals_dir(logs: &Path) -> PathBuf {
    logs.join("referrals")
}

/// The day's referrals as JSON Lines.
pub fn jsonl_path(logs: &Path, day: NaiveDate) -> PathBuf {
    day_file(&referrals_dir(logs), day, ".jsonl")
}

/// The day's referrals as CSV, one row per order.
pub fn csv_path(logs: &Path, day: NaiveDate) -> PathBuf {
    day_file(&referrals_dir(logs), day, ".csv")
}

/// The referral CSV's columns. `lines` gives each line as `QTY x SKU`, separated by `; `.
pub const CSV_COLUMNS: [&str; 17] = [
    "order_id",
    "day",
    "reason",
    "consignee_name",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
    "currency",
    "usd_per_currency_unit",
    "lines",
    "units",
    "value_usd",
    "note",
    "referred_at",
];

/// Writes the referral files of `day` from its referrals (in sequence), each whole and
/// durably. Returns the files written.
pub fn write_day(
    output: Output,
    day: NaiveDate,
    referrals: &[Referral],
) -> Result<Vec<PathBuf>, LogError> {
    let dir = referrals_dir(output.logs);
    files::create_shared_dir(&dir, READERS).map_err(io_error(&dir))?;
    let mut written = Vec::new();
    for (path, bytes) in day_files(output, day, referrals).map_err(io_error(&dir))? {
        let temporary = files::write_temporary_for(&path, READERS, |out| out.write_all(&bytes))
            .map_err(io_error(&path))?;
        files::rename_durably(&temporary, &path).map_err(io_error(&path))?;
        written.push(path);
    }
    Ok(written)
}

/// Checks the referral files of `day` against what [`write_day`] would write from the store
/// now, byte for byte (a CSV file without its byte-order mark): the files missing or differing.
pub fn check_day(
    output: Output,
    day: NaiveDate,
    referrals: &[Referral],
) -> std::io::Result<Vec<(PathBuf, FileCheck)>> {
    let mut found = Vec::new();
    for (path, bytes) in day_files(output, day, referrals)? {
        let existing = match std::fs::read(&path) {
            Ok(existing) => existing,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                found.push((path, FileCheck::Missing));
                continue;
            }
            Err(error) => return Err(error),
        };
        let strip =
            |bytes: &[u8]| -> Vec<u8> { bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes).to_vec() };
        if strip(&existing) != strip(&bytes) {
            found.push((path, FileCheck::Differs));
        }
    }
    Ok(found)
}

/// The day's files and their bytes: referrals are few, so they are made in memory.
fn day_files(
    output: Output,
    day: NaiveDate,
    referrals: &[Referral],
) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut jsonl = Vec::new();
    for referral in referrals {
        serde_json::to_writer(&mut jsonl, &ReferralRecord::from(referral))?;
        jsonl.push(b'\n');
    }
    let mut csv = Vec::new();
    if output.csv_bom {
        csv.extend_from_slice(UTF8_BOM);
    }
    {
        let mut writer = csv::Writer::from_writer(&mut csv);
        writer.write_record(CSV_COLUMNS)?;
        for referral in referrals {
            writer.write_record(csv_row(referral))?;
        }
        writer.flush()?;
    }
    Ok(vec![
        (jsonl_path(output.logs, day), jsonl),
        (csv_path(output.logs, day), csv),
    ])
}

/// One line of `<day>.jsonl`.
#[derive(Serialize)]
struct ReferralRecord<'a> {
    order_id: &'a str,
    day: NaiveDate,
    reason: &'static str,
    note: &'a str,
    referred_at: String,
    consignee: ConsigneeRecord<'a>,
    currency: &'a str,
    /// US dollars per unit of the currency; null for an order in dollars.
    usd_per_currency_unit: Option<String>,
    lines: Vec<LineRecord<'a>>,
    value_usd: String,
}

#[derive(Serialize)]
struct ConsigneeRecord<'a> {
    name: &'a str,
    customer_id: Option<&'a str>,
    address: &'a Address,
}

#[derive(Serialize)]
struct LineRecord<'a> {
    sku: &'a str,
    qty: u32,
    description: &'a str,
    hts: &'a str,
    origin: &'a str,
    currency: &'a str,
    unit_price: String,
    value_usd: String,
}

impl<'a> From<&'a Referral> for ReferralRecord<'a> {
    fn from(referral: &'a Referral) -> ReferralRecord<'a> {
        ReferralRecord {
            order_id: &referral.order_id,
            day: referral.day,
            reason: referral.reason.word(),
            note: &referral.note,
            referred_at: referred_at(referral),
            consignee: ConsigneeRecord {
                name: &referral.consignee.name,
                customer_id: referral.consignee.customer_id.as_deref(),
                address: &referral.consignee.address,
            },
            currency: &referral.currency,
            usd_per_currency_unit: referral.fx.as_ref().map(|fx| fx.usd.to_string()),
            lines: referral
                .lines
                .iter()
                .map(|line| LineRecord {
                    sku: &line.sku,
                    qty: line.qty,
                    description: &line.description,
                    hts: &line.hts,
                    origin: &line.origin,
                    currency: &referral.currency,
                    unit_price: line.unit_price.to_string(),
                    value_usd: Usd(line.value_usd).to_string(),
                })
                .collect(),
            value_usd: Usd(referral.value_usd).to_string(),
        }
    }
}

fn referred_at(referral: &Referral) -> String {
    referral
        .referred_at
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A row of `<day>.csv`, in the order of [`CSV_COLUMNS`].
fn csv_row(referral: &Referral) -> [String; CSV_COLUMNS.len()] {
    let address = &referral.consignee.address;
    let lines: Vec<String> = referral
        .lines
        .iter()
        .map(|line| format!("{} x {}", line.qty, line.sku))
        .collect();
    let units: u64 = referral.lines.iter().map(|line| u64::from(line.qty)).sum();
    [
        referral.order_id.to_string(),
        referral.day.to_string(),
        referral.reason.word().to_owned(),
        referral.consignee.name.to_string(),
        address.line1.to_string(),
        address.line2.as_deref().unwrap_or("").to_owned(),
        address.city.to_string(),
        address.state.to_string(),
        address.postal_code.to_string(),
        address.country.to_string(),
        referral.currency.to_string(),
        referral
            .fx
            .as_ref()
            .map_or_else(String::new, |fx| fx.usd.to_string()),
        lines.join("; "),
        units.to_string(),
        Usd(referral.value_usd).to_string(),
        referral.note.clone(),
        referred_at(referral),
    ]
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_owned(),
        source,
    }
}
