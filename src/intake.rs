//! Intake: reading the files integrators and operators hand in (orders as JSON Lines, the item
//! catalogue and stock as CSV), checking every field, and committing the good records of a file
//! in one durable store commit.
//!
//! A bad line never stops the others: each is rejected with its line number, the field and the
//! reason, and the good lines are committed together. A file that cannot be read at all, that
//! is not UTF-8 text, or whose CSV header is wrong, is rejected whole and nothing of it is
//! applied. A UTF-8 byte-order mark at the start is skipped.
//! Importing the same order again changes nothing; the same order id with other content is
//! rejected.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::identity::{self, IdentityRule};
use crate::model::{
    Address, Consignee, DutyRate, Item, ItemFlag, Order, OrderLine, StockLevel, Text,
};
use crate::store::{Applied, Offered, PreparedOrder, Store, StoreError};

/// Lines parsed together, across threads, before their orders are checked against the store.
pub const LINE_BATCH_MAX: usize = 16 * 1024;
/// Most threads parsing order lines.
pub const PARSE_THREADS_MAX: usize = 4;
/// Longest line read, in bytes; a longer one is rejected without being held in memory.
pub const LINE_BYTES_MAX: usize = 1024 * 1024;
/// Most lines one order may have.
pub const ORDER_LINES_MAX: usize = 1000;
/// Most units on one order line, and in one stock line.
pub const QTY_MAX: u64 = 1_000_000_000;
/// Most units on one order line.
pub const ORDER_LINE_QTY_MAX: u32 = 1_000_000;
/// Highest unit price accepted, in the order's currency.
pub const UNIT_PRICE_MAX: u64 = 1_000_000_000;
/// Most decimal places of a unit price.
pub const UNIT_PRICE_SCALE_MAX: u32 = 6;
/// Longest identifier (order id, SKU, customer id), in characters.
pub const ID_CHARS_MAX: usize = 64;
/// Longest text field (names, address lines, descriptions), in characters.
pub const TEXT_CHARS_MAX: usize = 200;
/// Earliest and latest year accepted in `placed_at`.
pub const PLACED_YEAR_MIN: i32 = 2000;
pub const PLACED_YEAR_MAX: i32 = 2100;

/// One rejected input line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Rejection {
    /// 1-based line number in the file.
    pub line: usize,
    /// The order id, when the line got far enough to have one.
    pub order_id: Option<String>,
    /// The field at fault, as a path (`recipient.address.state`, `lines[1].qty`).
    pub field: Option<String>,
    /// The rule the line breaks, in words that never quote what it holds (`5 digits or
    /// ZIP+4`), for logs that must not hold personal data; empty in reports stored by builds
    /// before it.
    #[serde(default)]
    pub rule: String,
    /// What is wrong, for the sender: it may quote the value.
    pub message: String,
}

/// Why a value was refused: the rule it breaks (never quoting it) and the message for the
/// report (which may).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fault {
    rule: String,
    message: String,
}

fn fault(rule: impl Into<String>, message: impl Into<String>) -> Fault {
    Fault {
        rule: rule.into(),
        message: message.into(),
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(order_id) = &self.order_id {
            write!(f, ": order {order_id}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What an intake did with a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct IntakeReport {
    pub file: PathBuf,
    /// Records committed (new orders, items added or changed, stock lines applied).
    pub accepted: usize,
    /// Records already in the store exactly as given (orders imported again).
    pub unchanged: usize,
    pub rejected: Vec<Rejection>,
}

impl fmt::Display for IntakeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.summary())?;
        for rejection in &self.rejected {
            write!(f, "\n{}:{}", self.file.display(), rejection)?;
        }
        Ok(())
    }
}

/// The first line of an [`IntakeReport`]: the file and its counts.
pub struct IntakeSummary<'a>(&'a IntakeReport);

impl fmt::Display for IntakeSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = self.0;
        write!(
            f,
            "{}: {} accepted, {} unchanged, {} rejected",
            report.file.display(),
            report.accepted,
            report.unchanged,
            report.rejected.len()
        )
    }
}

impl IntakeReport {
    /// The file and its counts, without the rejected lines.
    pub fn summary(&self) -> IntakeSummary<'_> {
        IntakeSummary(self)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }

    fn new(file: &Path) -> IntakeReport {
        IntakeReport {
            file: file.to_owned(),
            accepted: 0,
            unchanged: 0,
            rejected: Vec::new(),
        }
    }
}

/// A file rejected whole: nothing of it was applied.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{file}: cannot read")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: line {line}: {message}; nothing of this file was applied")]
    Format {
        file: PathBuf,
        line: usize,
        message: String,
    },
    /// The file is text in another encoding, or not text: one error for the file, not one per
    /// line.
    #[error("{}", not_utf8(.file, .found))]
    NotUtf8 { file: PathBuf, found: Encoding },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an input that is not UTF-8 turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-16 or UTF-32 (`unit_bits` 16 or 32), told by its byte-order mark, or UTF-16 by a
    /// NUL beside every other byte.
    Wide { unit_bits: u8, order: ByteOrder },
    /// Bytes that are not UTF-8 (as Latin-1 or Windows-1252 text has), first on this line.
    Other { line: usize },
}

/// The order of the bytes of a UTF-16 or UTF-32 code unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    Little,
    Big,
}

/// What [`IntakeError::NotUtf8`] says: what the file is, and what to do.
fn not_utf8(file: &Path, found: &Encoding) -> String {
    let what = match *found {
        Encoding::Wide { unit_bits, order } => {
            let order = match order {
                ByteOrder::Little => "little-endian",
                ByteOrder::Big => "big-endian",
            };
            format!("UTF-{unit_bits} ({order})")
        }
        Encoding::Other { line } => format!(
            "in another encoding (line {line} has bytes that are not UTF-8, as Latin-1 or \
             Windows-1252 text has)"
        ),
    };
    format!(
        "{} is {what}, not UTF-8: save it as UTF-8; nothing of this file was applied",
        file.display()
    )
}

fn wide(unit_bits: u8, order: ByteOrder) -> Encoding {
    Encoding::Wide { unit_bits, order }
}

/// How many bytes at the start of an input tell its encoding.
const SNIFF_BYTES: usize = 4096;

/// The encoding the first bytes of an input show when it is not UTF-8 (a byte-order mark of
/// UTF-16 or UTF-32, or NULs in at least a quarter of the bytes, as text in UTF-16 without a
/// mark has), and how many bytes of a UTF-8 byte-order mark to skip otherwise.
fn sniff(head: &[u8]) -> Result<usize, Encoding> {
    match head {
        [0xff, 0xfe, 0, 0, ..] => Err(wide(32, ByteOrder::Little)),
        [0, 0, 0xfe, 0xff, ..] => Err(wide(32, ByteOrder::Big)),
        [0xff, 0xfe, ..] => Err(wide(16, ByteOrder::Little)),
        [0xfe, 0xff, ..] => Err(wide(16, ByteOrder::Big)),
        [0xef, 0xbb, 0xbf, ..] => Ok(3),
        _ => {
            let at_even = head.iter().step_by(2).filter(|byte| **byte == 0).count();
            let at_odd = head
                .iter()
                .skip(1)
                .step_by(2)
                .filter(|byte| **byte == 0)
                .count();
            if head.len() >= 2 && 4 * (at_even + at_odd) >= head.len() {
                // ASCII in UTF-16 is a NUL and the character: the NUL first in big-endian.
                let order = if at_even > at_odd {
                    ByteOrder::Big
                } else {
                    ByteOrder::Little
                };
                Err(wide(16, order))
            } else {
                Ok(0)
            }
        }
    }
}

/// Checks that orders received as bytes are UTF-8 text, as [`import_orders`] reads them,
/// without taking anything in. Orders posted together go into one commit, which an input
/// refused whole would fail for all of them: the API checks each post first, and answers a
/// post in another encoding alone.
pub fn check_orders_text(name: &Path, bytes: &[u8]) -> Result<(), IntakeError> {
    let not_utf8 = |found| IntakeError::NotUtf8 {
        file: name.to_owned(),
        found,
    };
    let mark = sniff(&bytes[..bytes.len().min(SNIFF_BYTES)]).map_err(not_utf8)?;
    for (index, line) in bytes[mark..].split(|byte| *byte == b'\n').enumerate() {
        // An overlong line is rejected alone, unread, as `Lines` does.
        if line.len() <= LINE_BYTES_MAX && std::str::from_utf8(line).is_err() {
            return Err(not_utf8(Encoding::Other { line: index + 1 }));
        }
    }
    Ok(())
}

/// Opens an input as UTF-8 text: a UTF-8 byte-order mark at the start is skipped, and an input
/// in UTF-16 or UTF-32 is refused whole.
fn open_text<'a>(source: &Source<'a>) -> Result<Box<dyn Read + Send + 'a>, IntakeError> {
    let mut handle = source.open()?;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    (&mut handle)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|error| IntakeError::Read {
            file: source.name().to_owned(),
            source: error,
        })?;
    match sniff(&head) {
        Ok(mark) => {
            head.drain(..mark);
            Ok(Box::new(std::io::Cursor::new(head).chain(handle)))
        }
        Err(found) => Err(IntakeError::NotUtf8 {
            file: source.name().to_owned(),
            found,
        }),
    }
}

/// Which stock file: receipts add, counts set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockFile {
    Receive,
    Count,
}

/// Where an input comes from: a file, or bytes received by the API, named for the report.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    File(&'a Path),
    Bytes { name: &'a Path, bytes: &'a [u8] },
}

impl<'a> Source<'a> {
    /// The name reports and rejections give.
    pub fn name(&self) -> &'a Path {
        match self {
            Source::File(file) => file,
            Source::Bytes { name, .. } => name,
        }
    }

    fn open(&self) -> Result<Box<dyn Read + Send + 'a>, IntakeError> {
        match *self {
            Source::File(file) => std::fs::File::open(file)
                .map(|handle| Box::new(handle) as Box<dyn Read + Send>)
                .map_err(|source| IntakeError::Read {
                    file: file.to_owned(),
                    source,
                }),
            Source::Bytes { bytes, .. } => Ok(Box::new(bytes)),
        }
    }
}

/// Takes in orders from several sources in one durable commit, with a report for each. An
/// order id seen earlier in the same call counts as already taken in. `mark` is recorded in
/// the same commit with the report of the one source (see [`Store::applied`]), so that an
/// input taken in before a crash is known, with its report, when it is seen again.
pub fn import_orders(
    store: &mut Store,
    sources: &[Source],
    identity: IdentityRule,
    mark: Option<&str>,
) -> Result<Vec<IntakeReport>, IntakeError> {
    let mut reports = Vec::with_capacity(sources.len());
    // Where each order taken in came from: (source, line).
    let mut taken: Vec<(usize, usize)> = Vec::new();
    let mut intake = store.begin_orders()?;
    // A large input is read and checked on the other cores a block ahead, while this thread
    // offers the block before; a small one (an order posted alone) on this thread, since
    // starting threads would cost more than the work.
    let items = intake.items();
    std::thread::scope(|scope| -> Result<(), IntakeError> {
        let items = &*items;
        for (source_no, source) in sources.iter().enumerate() {
            let mut report = IntakeReport::new(source.name());
            let mut lines = Lines::open(source)?;
            let first = lines
                .next_batch()?
                .map(|batch| (batch.len(), check_orders(batch, identity, items)));
            let mut ahead = match first {
                Some((read, checked)) if read == LINE_BATCH_MAX => {
                    Ahead::Checking(read_and_check(scope, lines, identity, items), checked)
                }
                Some((_, checked)) => Ahead::Last(checked),
                None => Ahead::Done,
            };
            loop {
                let checked = match ahead {
                    Ahead::Done => break,
                    Ahead::Last(checked) => {
                        ahead = Ahead::Done;
                        checked
                    }
                    Ahead::Checking(next, checked) => {
                        let (lines, next) = next.join().expect("an order checking thread panicked");
                        ahead = match next? {
                            Some(next) => {
                                Ahead::Checking(read_and_check(scope, lines, identity, items), next)
                            }
                            None => Ahead::Done,
                        };
                        checked
                    }
                };
                for (line_no, checked) in checked {
                    let prepared = match checked {
                        Ok(prepared) => prepared,
                        Err(mut rejection) => {
                            rejection.line = line_no;
                            report.rejected.push(rejection);
                            continue;
                        }
                    };
                    // Inline up to 24 bytes: no allocation for the common id.
                    let order_id = prepared.id().clone();
                    let reject = |message: String| Rejection {
                        line: line_no,
                        order_id: Some(order_id.to_string()),
                        field: Some("order_id".to_owned()),
                        rule: "an order id is taken in with one content".to_owned(),
                        message,
                    };
                    // The same order again is unchanged, other content under its id rejected.
                    let rejection = match intake.offer(prepared)? {
                        Offered::Taken { .. } => {
                            taken.push((source_no, line_no));
                            None
                        }
                        Offered::Same | Offered::Earlier { same: true, .. } => {
                            report.unchanged += 1;
                            None
                        }
                        Offered::Other => Some(reject(TAKEN_OTHERWISE.into())),
                        Offered::Earlier { place, same: false } => match taken[place] {
                            (first_source, first_line) if first_source == source_no => {
                                Some(reject(format!(
                                    "already on line {first_line} of this file with other content"
                                )))
                            }
                            _ => Some(reject(TAKEN_OTHERWISE.into())),
                        },
                    };
                    report.rejected.extend(rejection);
                }
            }
            reports.push(report);
        }
        Ok(())
    })?;
    for (source_no, _) in &taken {
        reports[*source_no].accepted += 1;
    }
    let report = match (mark, reports.as_slice()) {
        (Some(_), [report]) => Some(report.to_json()),
        _ => None,
    };
    let applied = mark
        .zip(report.as_deref())
        .map(|(mark, report)| Applied { mark, report });
    crate::crashpoint::reached("intake-before-commit");
    intake.finish(applied)?;
    crate::crashpoint::reached("intake-after-commit");
    Ok(reports)
}

/// Reads the next batch of `lines` and checks its orders on a thread of `scope`; the lines come
/// back with the batch, to read the one after.
fn read_and_check<'scope, 'a: 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    mut lines: Lines<'a>,
    identity: IdentityRule,
    items: &'scope HashMap<String, Item>,
) -> Checking<'scope, 'a> {
    scope.spawn(move || {
        let checked = lines
            .next_batch()
            .map(|batch| batch.map(|batch| check_orders(batch, identity, items)));
        (lines, checked)
    })
}

/// The blocks of an input not yet offered: the one to offer now, and the next being read and
/// checked on another thread.
#[allow(clippy::large_enum_variant)]
enum Ahead<'scope, 'a> {
    Checking(Checking<'scope, 'a>, Numbered<PreparedOrder>),
    Last(Numbered<PreparedOrder>),
    Done,
}

/// A block being read and checked on another thread; the lines come back with it.
type Checking<'scope, 'a> = std::thread::ScopedJoinHandle<'scope, (Lines<'a>, CheckedBlock)>;

/// A block read and checked, or none when the input has ended.
type CheckedBlock = Result<Option<Numbered<PreparedOrder>>, IntakeError>;

const TAKEN_OTHERWISE: &str =
    "already taken in with other content; send changes as a new order id, or cancel the old one";

/// Parses and checks a batch of order lines, and encodes the good orders for the store, on as
/// many threads as the machine has cores (at most `PARSE_THREADS_MAX`), keeping the lines in
/// order. What is left for one thread is what needs the store: finding ids already taken in.
fn check_orders(
    batch: Numbered<String>,
    identity: IdentityRule,
    items: &HashMap<String, Item>,
) -> Numbered<PreparedOrder> {
    let threads = crate::machine::cores().clamp(1, PARSE_THREADS_MAX);
    let check = |part: Numbered<String>| -> Numbered<PreparedOrder> {
        part.into_iter()
            .map(|(line_no, line)| {
                (
                    line_no,
                    line.and_then(|text| check_order(&text, identity, items)),
                )
            })
            .collect()
    };
    if threads == 1 || batch.len() < 2 * threads {
        return check(batch);
    }
    let per_thread = batch.len().div_ceil(threads);
    let mut parts: Vec<Numbered<String>> = Vec::with_capacity(threads);
    let mut rest = batch;
    while rest.len() > per_thread {
        let tail = rest.split_off(per_thread);
        parts.push(rest);
        rest = tail;
    }
    parts.push(rest);
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || check(part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("an order checking thread panicked"))
            .collect()
    })
}

/// One order line parsed, its SKUs checked against the catalogue, and prepared for the store.
fn check_order(
    text: &str,
    identity: IdentityRule,
    items: &HashMap<String, Item>,
) -> Result<PreparedOrder, Rejection> {
    let order = parse_order(text, identity)?;
    if let Some((at, line)) = order
        .lines
        .iter()
        .enumerate()
        .find(|(_, line)| !items.contains_key(line.sku.as_str()))
    {
        return Err(Rejection {
            line: 0,
            order_id: Some(order.order_id.to_string()),
            field: Some(format!("lines[{at}].sku")),
            rule: "a SKU of the catalogue".to_owned(),
            message: format!(
                "unknown SKU {:?}: import it with the item catalogue first",
                line.sku
            ),
        });
    }
    Ok(PreparedOrder::new(&order))
}

/// The catalogue's columns.
const ITEM_COLUMNS: &[&str] = &["sku", "description", "hts", "origin", "flags"];
/// The catalogue's columns with what a filing needs besides: the manufacturer (MID) and
/// whether the goods originate under USMCA.
const ITEM_COLUMNS_FILED: &[&str] = &[
    "sku",
    "description",
    "hts",
    "origin",
    "flags",
    "mid",
    "usmca",
];

/// The longest MID: the country code and at most 13 letters and digits.
const MID_CHARS_MAX: usize = 15;

/// Takes in an item catalogue (CSV `sku,description,hts,origin,flags`, optionally followed by
/// `mid,usmca`) in one durable commit; items already in the catalogue are replaced. See
/// [`import_orders`] for `mark`.
pub fn import_items(
    store: &mut Store,
    source: Source,
    mark: Option<&str>,
) -> Result<IntakeReport, IntakeError> {
    let rows = read_csv(source, &[ITEM_COLUMNS, ITEM_COLUMNS_FILED])?;
    let mut report = IntakeReport::new(source.name());
    let items = store.items()?;
    let mut changed = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line_no, row) in rows {
        let item = match row.and_then(|fields| parse_item(&fields)) {
            Ok(item) => item,
            Err(mut rejection) => {
                rejection.line = line_no;
                report.rejected.push(rejection);
                continue;
            }
        };
        if let Some(first) = seen.get(&item.sku) {
            report.rejected.push(Rejection {
                line: line_no,
                order_id: None,
                field: Some("sku".into()),
                rule: "each SKU once per file".into(),
                message: format!("{} is already on line {first} of this file", item.sku),
            });
            continue;
        }
        seen.insert(item.sku.clone(), line_no);
        if items.get(&item.sku) == Some(&item) {
            report.unchanged += 1;
            continue;
        }
        changed.push(item);
        report.accepted += 1;
    }
    commit_with_report(report, mark, |applied| store.put_items(&changed, applied))
}

/// Makes an intake's commit, with the input's `mark` and report when it has a mark, and
/// returns the report.
fn commit_with_report(
    report: IntakeReport,
    mark: Option<&str>,
    commit: impl FnOnce(Option<Applied>) -> Result<(), StoreError>,
) -> Result<IntakeReport, IntakeError> {
    let report_json = report.to_json();
    let applied = mark.map(|mark| Applied {
        mark,
        report: &report_json,
    });
    crate::crashpoint::reached("intake-before-commit");
    commit(applied)?;
    crate::crashpoint::reached("intake-after-commit");
    Ok(report)
}

/// The duty table's columns.
const DUTY_COLUMNS: &[&str] = &[
    "hts_prefix",
    "origin",
    "program",
    "rate_percent",
    "from",
    "usmca_exempt",
];
/// The duty table's columns with where each rate comes from.
const DUTY_COLUMNS_SOURCED: &[&str] = &[
    "hts_prefix",
    "origin",
    "program",
    "rate_percent",
    "from",
    "usmca_exempt",
    "source",
];

/// The longest program name.
const PROGRAM_CHARS_MAX: usize = 32;
/// The most decimal places of a duty rate.
const RATE_PLACES_MAX: u32 = 4;
/// The highest duty rate taken in, in percent: rates above 100 % exist (Section 301 at
/// 100 % on some goods, anti-dumping duties), a rate beyond this is a slip.
const RATE_PERCENT_MAX: i64 = 1000;

/// Takes in rows of the duty tables (CSV `hts_prefix,origin,program,rate_percent,from,
/// usmca_exempt`, optionally followed by `source`) in one durable commit; a row of the same
/// prefix, origin, program and day as one held replaces it. See [`import_orders`] for `mark`.
pub fn import_duties(
    store: &mut Store,
    source: Source,
    mark: Option<&str>,
) -> Result<IntakeReport, IntakeError> {
    let rows = read_csv(source, &[DUTY_COLUMNS, DUTY_COLUMNS_SOURCED])?;
    let mut report = IntakeReport::new(source.name());
    let held: HashMap<String, DutyRate> = store
        .duty_rates()?
        .into_iter()
        .map(|row| (crate::store::duty_key(&row), row))
        .collect();
    let mut changed = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line_no, row) in rows {
        let duty = match row.and_then(|fields| parse_duty(&fields)) {
            Ok(duty) => duty,
            Err(mut rejection) => {
                rejection.line = line_no;
                report.rejected.push(rejection);
                continue;
            }
        };
        let key = crate::store::duty_key(&duty);
        if let Some(first) = seen.get(&key) {
            report.rejected.push(Rejection {
                line: line_no,
                order_id: None,
                field: Some("from".into()),
                rule: "each prefix, origin, program and day once per file".into(),
                message: format!(
                    "{} {} {} from {} is already on line {first} of this file",
                    duty.hts_prefix, duty.origin, duty.program, duty.from
                ),
            });
            continue;
        }
        seen.insert(key.clone(), line_no);
        if held.get(&key) == Some(&duty) {
            report.unchanged += 1;
            continue;
        }
        changed.push(duty);
        report.accepted += 1;
    }
    commit_with_report(report, mark, |applied| {
        store.put_duty_rates(&changed, applied)
    })
}

/// One row of a duty table.
pub fn parse_duty(fields: &[String]) -> Result<DutyRate, Rejection> {
    let rejection = |field: &str, Fault { rule, message }| Rejection {
        line: 0,
        order_id: None,
        field: Some(field.into()),
        rule,
        message,
    };
    let prefix = fields[0].trim();
    let hts_prefix: String = prefix.chars().filter(char::is_ascii_digit).collect();
    if !prefix.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        || !(2..=10).contains(&hts_prefix.len())
        || prefix.starts_with('.')
    {
        return Err(rejection(
            "hts_prefix",
            fault(
                "2 to 10 digits, dots allowed",
                format!(
                    "{:?} is not an HTS prefix (2 to 10 digits, dots allowed)",
                    fields[0]
                ),
            ),
        ));
    }
    let origin = fields[1].trim().to_ascii_uppercase();
    if origin != "*" && (origin.len() != 2 || !origin.bytes().all(|b| b.is_ascii_alphabetic())) {
        return Err(rejection(
            "origin",
            fault(
                "an ISO 3166 alpha-2 country code or *",
                format!(
                    "{:?} is not an ISO 3166 alpha-2 country code or * (every origin)",
                    fields[1]
                ),
            ),
        ));
    }
    let program = fields[2].trim();
    if program.is_empty()
        || program.len() > PROGRAM_CHARS_MAX
        || !program
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(rejection(
            "program",
            fault(
                "1 to 32 lower-case letters, digits and -",
                format!(
                    "{:?} is not a program name (1 to 32 lower-case letters, digits and -, such as mfn or section-301)",
                    fields[2]
                ),
            ),
        ));
    }
    let rate_rule = format!(
        "a decimal from 0 to {RATE_PERCENT_MAX} with at most {RATE_PLACES_MAX} decimal places"
    );
    let rate_percent = Decimal::from_str(fields[3].trim())
        .ok()
        .filter(|rate| {
            !rate.is_sign_negative()
                && *rate <= Decimal::from(RATE_PERCENT_MAX)
                && rate.normalize().scale() <= RATE_PLACES_MAX
        })
        .ok_or_else(|| {
            rejection(
                "rate_percent",
                fault(
                    rate_rule.clone(),
                    format!("{:?} is not a rate in percent ({rate_rule})", fields[3]),
                ),
            )
        })?;
    let from = NaiveDate::parse_from_str(fields[4].trim(), "%Y-%m-%d").map_err(|_| {
        rejection(
            "from",
            fault(
                "a date YYYY-MM-DD",
                format!("{:?} is not a date YYYY-MM-DD", fields[4]),
            ),
        )
    })?;
    let usmca_exempt = match fields[5].trim().to_ascii_lowercase().as_str() {
        "yes" => true,
        "no" => false,
        _ => {
            return Err(rejection(
                "usmca_exempt",
                fault("yes or no", format!("{:?} is not yes or no", fields[5])),
            ))
        }
    };
    let source = match fields.get(6).map(|source| source.trim()) {
        None | Some("") => String::new(),
        Some(source) => text_field(source, TEXT_CHARS_MAX)
            .map_err(|f| rejection("source", f))?
            .to_owned(),
    };
    Ok(DutyRate {
        hts_prefix,
        origin,
        program: program.to_owned(),
        rate_percent,
        from,
        usmca_exempt,
        source,
    })
}

/// Takes in a stock file (CSV `sku,qty`) in one durable commit: receipts add to what is on
/// hand; counts set it, recording the difference as an adjustment. See [`import_orders`] for
/// `mark`.
pub fn import_stock(
    store: &mut Store,
    source: Source,
    kind: StockFile,
    mark: Option<&str>,
) -> Result<IntakeReport, IntakeError> {
    let rows = read_csv(source, &[&["sku", "qty"]])?;
    let items = store.items()?.clone();
    let mut report = IntakeReport::new(source.name());
    let mut levels: BTreeMap<String, StockLevel> = BTreeMap::new();
    let mut counted: HashMap<String, usize> = HashMap::new();
    for (line_no, row) in rows {
        let reject = |field: &str, Fault { rule, message }| Rejection {
            line: line_no,
            order_id: None,
            field: Some(field.into()),
            rule,
            message,
        };
        let fields = match row {
            Ok(fields) => fields,
            Err(mut rejection) => {
                rejection.line = line_no;
                report.rejected.push(rejection);
                continue;
            }
        };
        let sku = fields[0].trim();
        if !items.contains_key(sku) {
            report.rejected.push(reject(
                "sku",
                fault(
                    "a SKU of the catalogue",
                    format!("unknown SKU {sku:?}: import it with the item catalogue first"),
                ),
            ));
            continue;
        }
        let min = if kind == StockFile::Receive { 1 } else { 0 };
        let qty = match parse_qty(&fields[1], min, QTY_MAX) {
            Ok(qty) => qty,
            Err(fault) => {
                report.rejected.push(reject("qty", fault));
                continue;
            }
        };
        let level = match levels.get(sku) {
            Some(level) => *level,
            None => store.stock_level(sku)?,
        };
        let updated = match kind {
            StockFile::Receive => level
                .received
                .checked_add(qty)
                .map(|received| StockLevel { received, ..level }),
            StockFile::Count => {
                if let Some(first) = counted.get(sku) {
                    report.rejected.push(reject(
                        "sku",
                        fault(
                            "each SKU once per file",
                            format!("{sku} is already counted on line {first} of this file"),
                        ),
                    ));
                    continue;
                }
                counted.insert(sku.to_owned(), line_no);
                let on_hand = level.on_hand();
                i64::try_from(on_hand - i128::from(qty))
                    .ok()
                    .and_then(|difference| level.adjusted.checked_add(difference))
                    .map(|adjusted| StockLevel { adjusted, ..level })
            }
        };
        match updated {
            Some(updated) => {
                levels.insert(sku.to_owned(), updated);
                report.accepted += 1;
            }
            None => report.rejected.push(reject(
                "qty",
                fault(
                    "within the range of a stock level",
                    format!("{qty} would overflow the stock of {sku}"),
                ),
            )),
        }
    }
    commit_with_report(report, mark, |applied| store.put_stock(&levels, applied))
}

/// An order line as integrators send it. Strings borrow from the line where they can (a string
/// with escapes is copied), so that a field is copied once, into the order.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderJson<'a> {
    #[serde(borrow)]
    order_id: Cow<'a, str>,
    #[serde(borrow)]
    placed_at: Cow<'a, str>,
    #[serde(borrow)]
    recipient: RecipientJson<'a>,
    #[serde(borrow)]
    currency: Cow<'a, str>,
    #[serde(borrow)]
    lines: Vec<LineJson<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipientJson<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    customer_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    address: AddressJson<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressJson<'a> {
    #[serde(borrow)]
    line1: Cow<'a, str>,
    #[serde(borrow, default)]
    line2: Option<Cow<'a, str>>,
    #[serde(borrow)]
    city: Cow<'a, str>,
    #[serde(borrow)]
    state: Cow<'a, str>,
    #[serde(borrow)]
    postal_code: Cow<'a, str>,
    #[serde(borrow)]
    country: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineJson<'a> {
    #[serde(borrow)]
    sku: Cow<'a, str>,
    qty: u64,
    #[serde(borrow)]
    unit_price: Cow<'a, str>,
}

/// Parses and checks one order line of JSON. The line number of the rejection is left at 0.
pub fn parse_order(text: &str, identity: IdentityRule) -> Result<Order, Rejection> {
    let rejection = |order_id: Option<&str>, field: &str, Fault { rule, message }| Rejection {
        line: 0,
        order_id: order_id.map(str::to_owned),
        field: (!field.is_empty()).then(|| field.to_owned()),
        rule,
        message,
    };
    // The fast path parses without tracking where it is; a line that fails is parsed again
    // with tracking, to name the field at fault.
    let raw: OrderJson = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(_) => {
            let mut deserializer = serde_json::Deserializer::from_str(text);
            let error = match serde_path_to_error::deserialize::<_, OrderJson>(&mut deserializer) {
                Err(error) => error,
                Ok(raw) => {
                    let trailing = deserializer
                        .end()
                        .err()
                        .map_or_else(String::new, |error| error.to_string());
                    return Err(rejection(
                        Some(&raw.order_id),
                        "",
                        fault(
                            "one order object per line",
                            format!("text after the order: {trailing}"),
                        ),
                    ));
                }
            };
            let field = error.path().to_string();
            let field = if field == "." || field == "?" {
                String::new()
            } else {
                field
            };
            let mut message = plain_json_error(&error.inner().to_string());
            let mut rule = json_rule(error.inner(), &message);
            if error.inner().is_syntax() || error.inner().is_eof() {
                message = format!("not valid JSON: {message}");
            }
            if field.ends_with("unit_price") && message.contains("expected a string") {
                message = "money is a decimal string such as \"19.99\", not a JSON number".into();
                rule = "a decimal string, not a JSON number".into();
            }
            return Err(rejection(
                order_id_hint(text).as_deref(),
                &field,
                fault(rule, message),
            ));
        }
    };
    // Text fields are built as `Text` straight from the parsed JSON: most fit in place.
    let order_id = Text::from(raw.order_id.trim());
    if order_id.is_empty()
        || order_id.chars().count() > ID_CHARS_MAX
        || !order_id.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(rejection(
            None,
            "order_id",
            fault(
                format!("1 to {ID_CHARS_MAX} visible ASCII characters"),
                format!(
                    "must be 1 to {ID_CHARS_MAX} visible ASCII characters without spaces, got {:?}",
                    raw.order_id
                ),
            ),
        ));
    }
    let id = Some(order_id.as_str());
    let placed_at = DateTime::parse_from_rfc3339(raw.placed_at.trim())
        .map_err(|error| {
            rejection(
                id,
                "placed_at",
                fault(
                    "an RFC 3339 instant with an offset",
                    format!(
                        "{:?} is not an RFC 3339 instant with an offset: {error}",
                        raw.placed_at
                    ),
                ),
            )
        })?
        .with_timezone(&Utc);
    if !(PLACED_YEAR_MIN..=PLACED_YEAR_MAX).contains(&placed_at.year()) {
        return Err(rejection(
            id,
            "placed_at",
            fault(
                format!("years {PLACED_YEAR_MIN} to {PLACED_YEAR_MAX}"),
                format!(
                    "{} is outside {PLACED_YEAR_MIN} to {PLACED_YEAR_MAX}",
                    raw.placed_at
                ),
            ),
        ));
    }

    let name = Text::from(
        text_field(&raw.recipient.name, TEXT_CHARS_MAX)
            .map_err(|f| rejection(id, "recipient.name", f))?,
    );
    if identity::is_placeholder_name(&name) {
        return Err(rejection(
            id,
            "recipient.name",
            fault(
                "a consignee's name, not a placeholder",
                format!("{name:?} is a placeholder, not a consignee name"),
            ),
        ));
    }
    let customer_id = match raw.recipient.customer_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(value) => Some(Text::from(
            text_field(value, ID_CHARS_MAX)
                .map_err(|f| rejection(id, "recipient.customer_id", f))?,
        )),
    };
    if identity == IdentityRule::CustomerId && customer_id.is_none() {
        return Err(rejection(
            id,
            "recipient.customer_id",
            fault(
                "required when recipients are identified by customer id",
                "required: recipients are identified by customer id",
            ),
        ));
    }
    let address = &raw.recipient.address;
    let line1 = Text::from(
        text_field(&address.line1, TEXT_CHARS_MAX)
            .map_err(|f| rejection(id, "recipient.address.line1", f))?,
    );
    let line2 = match address.line2.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(value) => Some(Text::from(
            text_field(value, TEXT_CHARS_MAX)
                .map_err(|f| rejection(id, "recipient.address.line2", f))?,
        )),
    };
    let city = Text::from(
        text_field(&address.city, TEXT_CHARS_MAX)
            .map_err(|f| rejection(id, "recipient.address.city", f))?,
    );
    let mut country = Text::from(address.country.trim());
    country.make_ascii_uppercase();
    if country != "US" {
        return Err(rejection(
            id,
            "recipient.address.country",
            fault(
                "US",
                format!("{:?}: only US addresses are released", address.country),
            ),
        ));
    }
    let mut state = Text::from(address.state.trim());
    state.make_ascii_uppercase();
    if !identity::is_us_state(&state) {
        return Err(rejection(
            id,
            "recipient.address.state",
            fault(
                "a US state code",
                format!("{:?} is not a US state code", address.state),
            ),
        ));
    }
    let postal_code = Text::from(address.postal_code.trim());
    if identity::zip5(&postal_code).is_none() {
        return Err(rejection(
            id,
            "recipient.address.postal_code",
            fault(
                "5 digits or ZIP+4",
                format!(
                    "{:?} is not a ZIP code (12345 or 12345-6789)",
                    address.postal_code
                ),
            ),
        ));
    }
    let mut currency = Text::from(raw.currency.trim());
    currency.make_ascii_uppercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(rejection(
            id,
            "currency",
            fault(
                "an ISO 4217 currency code",
                format!("{:?} is not an ISO 4217 currency code", raw.currency),
            ),
        ));
    }
    if raw.lines.is_empty() {
        return Err(rejection(
            id,
            "lines",
            fault("at least one line", "an order needs at least one line"),
        ));
    }
    if raw.lines.len() > ORDER_LINES_MAX {
        return Err(rejection(
            id,
            "lines",
            fault(
                format!("at most {ORDER_LINES_MAX} lines"),
                format!("{} lines; at most {ORDER_LINES_MAX}", raw.lines.len()),
            ),
        ));
    }
    let mut lines = Vec::with_capacity(raw.lines.len());
    for (index, line) in raw.lines.iter().enumerate() {
        let field = |name: &str| format!("lines[{index}].{name}");
        let sku = Text::from(line.sku.trim());
        if !valid_sku(&sku) {
            return Err(rejection(
                id,
                &field("sku"),
                fault(
                    format!("1 to {ID_CHARS_MAX} visible ASCII characters"),
                    format!("{:?} is not a SKU", line.sku),
                ),
            ));
        }
        if line.qty == 0 || line.qty > u64::from(ORDER_LINE_QTY_MAX) {
            return Err(rejection(
                id,
                &field("qty"),
                fault(
                    format!("a whole number from 1 to {ORDER_LINE_QTY_MAX}"),
                    format!(
                        "{} is not a quantity from 1 to {ORDER_LINE_QTY_MAX}",
                        line.qty
                    ),
                ),
            ));
        }
        let unit_price =
            parse_price(&line.unit_price).map_err(|f| rejection(id, &field("unit_price"), f))?;
        lines.push(OrderLine {
            sku,
            qty: line.qty as u32,
            unit_price,
        });
    }
    Ok(Order {
        order_id,
        placed_at,
        recipient: Consignee {
            name,
            customer_id,
            address: Address {
                line1,
                line2,
                city,
                state,
                postal_code,
                country,
            },
        },
        currency,
        lines,
    })
}

/// A serde_json message in the integrator's words: no Rust type names, and no position, since
/// the position serde gives is within the line and the line number is reported beside it.
fn plain_json_error(message: &str) -> String {
    let message = match message.rfind(" at line ") {
        Some(at) if message[at..].contains(" column ") => &message[..at],
        _ => message,
    };
    let mut plain = message.to_owned();
    for (from, to) in [
        ("struct OrderJson with 5 elements", "an order object"),
        ("struct OrderJson", "an order object"),
        ("struct RecipientJson", "a recipient object"),
        ("struct AddressJson", "an address object"),
        ("struct LineJson", "an order line object"),
        ("expected u64", "expected a whole number"),
        (
            "invalid length 0, expected an order object",
            "expected an order object, found an empty array",
        ),
    ] {
        plain = plain.replace(from, to);
    }
    plain
}

/// The rule a line of JSON that does not parse as an order breaks, from serde's error, without
/// the value it quotes: the part of the message after "expected" names a type, never a value.
fn json_rule(error: &serde_json::Error, message: &str) -> String {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => "valid JSON".to_owned(),
        Category::Data if message.starts_with("unknown field") => "known fields only".to_owned(),
        Category::Data if message.starts_with("missing field") => "required".to_owned(),
        Category::Data if message.starts_with("duplicate field") => "each field once".to_owned(),
        Category::Data => match message.rsplit_once(", expected ") {
            Some((_, expected)) => expected.to_owned(),
            None => match message.strip_prefix("expected ") {
                Some(expected) => expected
                    .split_once(',')
                    .map_or(expected, |(expected, _)| expected)
                    .to_owned(),
                None => "an order object".to_owned(),
            },
        },
    }
}

/// The order id of a line that failed to parse, when one can still be read from it.
fn order_id_hint(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let id = value.get("order_id")?.as_str()?;
    (id.chars().count() <= ID_CHARS_MAX && id.chars().all(|c| c.is_ascii_graphic()))
        .then(|| id.to_owned())
}

/// Parses and checks one catalogue row (`sku,description,hts,origin,flags`, and `mid,usmca`
/// when the file has those columns).
pub fn parse_item(fields: &[String]) -> Result<Item, Rejection> {
    let rejection = |field: &str, Fault { rule, message }| Rejection {
        line: 0,
        order_id: None,
        field: Some(field.into()),
        rule,
        message,
    };
    let sku = fields[0].trim().to_owned();
    if !valid_sku(&sku) {
        return Err(rejection(
            "sku",
            fault(
                format!("1 to {ID_CHARS_MAX} visible ASCII characters"),
                format!(
                    "{:?} is not a SKU (1 to {ID_CHARS_MAX} visible ASCII characters)",
                    fields[0]
                ),
            ),
        ));
    }
    let description = text_field(&fields[1], TEXT_CHARS_MAX)
        .map_err(|f| rejection("description", f))?
        .to_owned();
    let hts = fields[2].trim().to_owned();
    let digits = hts.bytes().filter(u8::is_ascii_digit).count();
    if !hts.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        || !(4..=10).contains(&digits)
        || hts.starts_with('.')
    {
        return Err(rejection(
            "hts",
            fault(
                "4 to 10 digits, dots allowed",
                format!(
                    "{:?} is not an HTS code (4 to 10 digits, dots allowed)",
                    fields[2]
                ),
            ),
        ));
    }
    let origin = fields[3].trim().to_ascii_uppercase();
    if origin.len() != 2 || !origin.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(rejection(
            "origin",
            fault(
                "an ISO 3166 alpha-2 country code",
                format!("{:?} is not an ISO 3166 alpha-2 country code", fields[3]),
            ),
        ));
    }
    let mut flags = Vec::new();
    for word in fields[4]
        .split(';')
        .map(str::trim)
        .filter(|word| !word.is_empty())
    {
        let flag = ItemFlag::from_word(&word.to_ascii_lowercase()).ok_or_else(|| {
            rejection(
                "flags",
                fault(
                    "adcvd, quota, pga or irc-tax",
                    format!("{word:?} is not a flag (adcvd, quota, pga, irc-tax)"),
                ),
            )
        })?;
        if !flags.contains(&flag) {
            flags.push(flag);
        }
    }
    flags.sort();
    let mid = match fields.get(5).map(|mid| mid.trim()) {
        None | Some("") => None,
        Some(mid) => Some(parse_mid(mid).map_err(|f| rejection("mid", f))?),
    };
    let usmca = match fields.get(6).map(|usmca| usmca.trim().to_ascii_lowercase()) {
        None => false,
        Some(word) => match word.as_str() {
            "yes" => true,
            "no" | "" => false,
            _ => {
                return Err(rejection(
                    "usmca",
                    fault(
                        "yes, no or empty",
                        format!("{:?} is not yes, no or empty", fields[6]),
                    ),
                ))
            }
        },
    };
    Ok(Item {
        sku,
        description,
        hts,
        origin,
        flags,
        mid,
        usmca,
    })
}

/// A manufacturer identification code: the ISO 3166 alpha-2 code of the manufacturer's
/// country, then 1 to 13 letters and digits, upper case, at most 15 characters in all.
fn parse_mid(mid: &str) -> Result<String, Fault> {
    let rule = "a country code then 1 to 13 letters and digits, upper case, at most 15 characters";
    let valid = (3..=MID_CHARS_MAX).contains(&mid.len())
        && mid.as_bytes()[..2].iter().all(u8::is_ascii_uppercase)
        && mid.as_bytes()[2..]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if valid {
        Ok(mid.to_owned())
    } else {
        Err(fault(rule, format!("{mid:?} is not a MID ({rule})")))
    }
}

fn valid_sku(sku: &str) -> bool {
    !sku.is_empty()
        && sku.chars().count() <= ID_CHARS_MAX
        && sku.chars().all(|c| c.is_ascii_graphic())
}

/// A trimmed, non-empty text of at most `chars_max` characters with no control characters.
fn text_field(value: &str, chars_max: usize) -> Result<&str, Fault> {
    let value = value.trim();
    if value.is_empty() {
        return Err(fault("not empty", "must not be empty"));
    }
    if value.chars().count() > chars_max {
        return Err(fault(
            format!("at most {chars_max} characters"),
            format!("longer than {chars_max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(fault(
            "no control characters",
            "contains control characters",
        ));
    }
    if let Some(first) = value.chars().next().filter(|c| FORMULA_STARTS.contains(c)) {
        // The manifest goes to brokers who open it in spreadsheets, which run such cells.
        return Err(fault(
            "not starting with =, +, - or @",
            format!("starts with {first:?}, which a spreadsheet would run as a formula"),
        ));
    }
    Ok(value)
}

/// First characters that make a spreadsheet cell a formula.
const FORMULA_STARTS: [char; 4] = ['=', '+', '-', '@'];

fn parse_price(text: &str) -> Result<Decimal, Fault> {
    let trimmed = text.trim();
    let well_formed = !trimmed.is_empty()
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && trimmed.bytes().filter(|b| *b == b'.').count() <= 1;
    let price = well_formed
        .then(|| Decimal::from_str(trimmed).ok())
        .flatten()
        .ok_or_else(|| {
            fault(
                "a decimal amount such as \"19.99\"",
                format!("{text:?} is not a decimal amount such as \"19.99\""),
            )
        })?;
    if price.is_sign_negative() && !price.is_zero() {
        return Err(fault("not negative", format!("{text} is negative")));
    }
    if price > Decimal::from(UNIT_PRICE_MAX) {
        return Err(fault(
            format!("at most {UNIT_PRICE_MAX}"),
            format!("{text} is over {UNIT_PRICE_MAX}"),
        ));
    }
    if price.scale() > UNIT_PRICE_SCALE_MAX {
        return Err(fault(
            format!("at most {UNIT_PRICE_SCALE_MAX} decimal places"),
            format!("{text} has more than {UNIT_PRICE_SCALE_MAX} decimal places"),
        ));
    }
    // -0 becomes 0; the scale the integrator wrote is kept for the manifest.
    Ok(if price.is_zero() {
        Decimal::ZERO
    } else {
        price
    })
}

fn parse_qty(text: &str, min: u64, max: u64) -> Result<u64, Fault> {
    let trimmed = text.trim();
    match trimmed.parse::<u64>() {
        Ok(qty) if (min..=max).contains(&qty) => Ok(qty),
        _ => Err(fault(
            format!("a whole number from {min} to {max}"),
            format!("{text:?} is not a whole number from {min} to {max}"),
        )),
    }
}

/// Input records with their 1-based line numbers, each read or rejected.
type Numbered<T> = Vec<(usize, Result<T, Rejection>)>;

/// A file read as numbered lines, in batches, skipping blank ones. A line longer than
/// [`LINE_BYTES_MAX`] comes back as a rejection, without being held in memory; a line that is
/// not UTF-8 is an error for the whole file.
struct Lines<'a> {
    file: PathBuf,
    reader: BufReader<Box<dyn Read + Send + 'a>>,
    line_no: usize,
    buffer: Vec<u8>,
}

impl<'a> Lines<'a> {
    fn open(source: &Source<'a>) -> Result<Lines<'a>, IntakeError> {
        let handle = open_text(source)?;
        Ok(Lines {
            file: source.name().to_owned(),
            reader: BufReader::with_capacity(1 << 20, handle),
            line_no: 0,
            buffer: Vec::new(),
        })
    }

    /// Up to `LINE_BATCH_MAX` more lines, or `None` at the end of the file.
    fn next_batch(&mut self) -> Result<Option<Numbered<String>>, IntakeError> {
        let mut batch = Vec::new();
        while batch.len() < LINE_BATCH_MAX {
            match self.next_line()? {
                None => break,
                Some(None) => {}
                Some(Some(line)) => batch.push(line),
            }
        }
        Ok((!batch.is_empty()).then_some(batch))
    }

    /// The next line: `None` at the end, `Some(None)` for a blank line.
    #[allow(clippy::type_complexity)]
    fn next_line(
        &mut self,
    ) -> Result<Option<Option<(usize, Result<String, Rejection>)>>, IntakeError> {
        let file = &self.file;
        let read_error = |source| IntakeError::Read {
            file: file.clone(),
            source,
        };
        self.buffer.clear();
        let read = (&mut self.reader)
            .take(LINE_BYTES_MAX as u64 + 1)
            .read_until(b'\n', &mut self.buffer)
            .map_err(read_error)?;
        if read == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        let line_no = self.line_no;
        if self.buffer.len() > LINE_BYTES_MAX && self.buffer.last() != Some(&b'\n') {
            // Skip the rest of the overlong line without keeping it.
            loop {
                let available = self.reader.fill_buf().map_err(read_error)?;
                if available.is_empty() {
                    break;
                }
                match available.iter().position(|b| *b == b'\n') {
                    Some(end) => {
                        self.reader.consume(end + 1);
                        break;
                    }
                    None => {
                        let length = available.len();
                        self.reader.consume(length);
                    }
                }
            }
            let rejection = line_rejection(overlong());
            return Ok(Some(Some((line_no, Err(rejection)))));
        }
        while matches!(self.buffer.last(), Some(b'\n' | b'\r')) {
            self.buffer.pop();
        }
        Ok(Some(match std::str::from_utf8(&self.buffer) {
            Ok(text) if text.trim().is_empty() => None,
            Ok(text) => Some((line_no, Ok(text.to_owned()))),
            // One line not UTF-8 says the file is in another encoding: the whole file is
            // refused, rather than every line with an accent.
            Err(_) => {
                return Err(IntakeError::NotUtf8 {
                    file: self.file.clone(),
                    found: Encoding::Other { line: line_no },
                })
            }
        }))
    }
}

fn line_rejection(Fault { rule, message }: Fault) -> Rejection {
    Rejection {
        line: 0,
        order_id: None,
        field: None,
        rule,
        message,
    }
}

/// A line over [`LINE_BYTES_MAX`].
fn overlong() -> Fault {
    fault(
        format!("at most {LINE_BYTES_MAX} bytes a line"),
        format!("longer than {LINE_BYTES_MAX} bytes"),
    )
}

/// Reads a CSV file whose header must be exactly `columns`, as numbered rows of fields.
/// The rows of a CSV file whose header is one of `headers`; each row has that header's fields.
fn read_csv(source: Source, headers: &[&[&str]]) -> Result<Numbered<Vec<String>>, IntakeError> {
    let mut columns: &[&str] = headers[0];
    let file = source.name();
    let handle = open_text(&source)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::new(handle));
    let mut rows = Vec::new();
    let mut header_seen = false;
    let mut record = csv::ByteRecord::new();
    loop {
        let line_no = reader.position().line() as usize;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                if let csv::ErrorKind::Io(_) = error.kind() {
                    return Err(IntakeError::Read {
                        file: file.to_owned(),
                        source: std::io::Error::other(error.to_string()),
                    });
                }
                rows.push((
                    line_no,
                    Err(line_rejection(fault(
                        "valid CSV",
                        format!("not CSV: {error}"),
                    ))),
                ));
                continue;
            }
        }
        let line_no = record
            .position()
            .map_or(line_no, |position| position.line() as usize);
        if record.as_slice().len() > LINE_BYTES_MAX {
            // Held while read (CSV files are catalogues and counts, read whole), but refused
            // like an overlong line of orders.
            let rejection = line_rejection(overlong());
            if !header_seen {
                return Err(IntakeError::Format {
                    file: file.to_owned(),
                    line: line_no,
                    message: rejection.message,
                });
            }
            rows.push((line_no, Err(rejection)));
            continue;
        }
        if record
            .iter()
            .all(|field| field.iter().all(u8::is_ascii_whitespace))
        {
            continue;
        }
        let fields: Result<Vec<String>, _> = record
            .iter()
            .map(|field| std::str::from_utf8(field).map(str::to_owned))
            .collect();
        let Ok(fields) = fields else {
            // As for orders: the file is in another encoding, and refused whole.
            return Err(IntakeError::NotUtf8 {
                file: file.to_owned(),
                found: Encoding::Other { line: line_no },
            });
        };
        if !header_seen {
            let header: Vec<String> = fields
                .iter()
                .map(|field| field.trim().to_ascii_lowercase())
                .collect();
            let Some(found) = headers.iter().find(|columns| header == **columns) else {
                let expected: Vec<String> = headers
                    .iter()
                    .map(|columns| format!("{:?}", columns.join(",")))
                    .collect();
                return Err(IntakeError::Format {
                    file: file.to_owned(),
                    line: line_no,
                    message: format!(
                        "the header must be {}, found {:?}",
                        expected.join(" or "),
                        fields.join(",")
                    ),
                });
            };
            columns = found;
            header_seen = true;
            continue;
        }
        if fields.len() != columns.len() {
            rows.push((
                line_no,
                Err(line_rejection(fault(
                    format!("{} fields ({})", columns.len(), columns.join(",")),
                    format!(
                        "{} fields; expected {} ({})",
                        fields.len(),
                        columns.len(),
                        columns.join(",")
                    ),
                ))),
            ));
            continue;
        }
        rows.push((line_no, Ok(fields)));
    }
    if !header_seen {
        return Err(IntakeError::Format {
            file: file.to_owned(),
            line: 1,
            message: format!("empty: expected the header {:?}", columns.join(",")),
        });
    }
    Ok(rows)
}
