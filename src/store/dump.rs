//! The store's logical dump: everything the store holds as JSON Lines that no storage engine
//! needs to read, for the operator's backups and for carrying a warehouse across a change of
//! the store's format.
//!
//! A dump is one JSON object per line, each with a `kind`:
//!
//! | kind | what |
//! | --- | --- |
//! | `header` | first line: `format` (`border-release-dump`), `version` (this format's, 5), `layout` (the store layout it was taken from), `created_at` |
//! | `item` | an item of the catalogue: `sku`, `description`, `hts`, `origin`, `flags` |
//! | `stock` | a SKU's stock movements: `sku`, `received`, `released`, `adjusted` |
//! | `duty` | a row of the duty tables (version 5): `hts_prefix`, `origin`, `program`, `rate_percent`, `from`, `usmca_exempt`, `source` |
//! | `order` | an order as taken in (`order`), its `state` and the `reason` of the last batch that examined it, and its `detail` when that batch said more (version 2); in intake order |
//! | `filed` | what a wave's releases are filed with (version 4): `day`, `first` (the sequence number of its first release) and `filed` (`entry_type`, `importer`, `shipper`, `items` with each SKU's `mid` and `usmca`); before the releases |
//! | `assessed` | what a wave's duties and fees are estimated from (version 5): `day`, `first` and `assessed` (`items` with each SKU's `usmca`, `known` and `rates`, and `fees`); before the releases |
//! | `void` | a void release (version 2): `release_id`, `day`, `reason`, `voided_at`; before the releases |
//! | `release` | a committed release, whole (`release`); by day and release id, void ones included |
//! | `referral` | an order referred to a formal entry (version 3): its `referral` whole (day, hold reason, note, time, consignee, lines valued, rate); by day and sequence, after the releases |
//! | `schedule` | the last day batched (`last_day`) and the schedule time of the last scheduled batch (`last_trigger`), each null when none |
//! | `logs-due` | a `day` whose release log and manifest were not yet written |
//! | `applied` | a spool file already taken in: its `mark` and `report` |
//! | `end` | last line: how many `lines` came before it, how many `items`, `skus` (stock lines), `orders` and `releases` the dump holds, and `fnv1a64`, the 64-bit FNV-1a of the lines before it (newlines included), in hex |
//!
//! A dump is written from one consistent view of the store ([`StoreReader`]). Restoring one
//! checks every line as it is read and builds the store in a folder of its own beside the
//! target (`.restoring`), which takes the target's place only once the whole dump is in and its
//! end line agrees: a truncated or damaged dump is refused with the line at fault, and leaves
//! the target as it was.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::layout::{decode, encode, DetailBlock, Ordinal, StateByte};
use super::reader::Details;
use super::{
    foreign_store, Commit, PreparedOrder, Store, StoreError, StoreReader, APPLIED, FILE_NAME,
    LAYOUT_VERSION, ORDERS, STATE_BLOCK_ORDERS,
};
use crate::model::{
    Assessed, Detail, DutyRate, Filed, HoldReason, Item, Order, Referral, Release, StockLevel,
    Verdict, Void, WaitReason,
};

/// The name a dump's header gives its format.
pub const DUMP_FORMAT: &str = "border-release-dump";
/// The version of the dump format this build writes and reads.
/// Version 2 added `void` lines and the `detail` of open orders, version 3 `referral` lines and
/// the state `referred`, version 4 `filed` lines, version 5 `duty` and `assessed` lines; dumps of earlier versions (which have none of
/// what came later) are read as they are.
pub const DUMP_VERSION: u32 = 5;
/// The folder, inside the store's, where a restore builds the store.
pub const RESTORING: &str = ".restoring";
/// Orders (and releases) restored together in one commit.
const RESTORE_GROUP: usize = 64 * 1024;

/// One line of a dump.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum Line {
    Header {
        format: String,
        version: u32,
        layout: u32,
        created_at: DateTime<Utc>,
    },
    Item {
        #[serde(flatten)]
        item: Item,
    },
    Stock {
        sku: String,
        #[serde(flatten)]
        level: StockLevel,
    },
    /// A row of the duty tables (version 5), after the stock.
    Duty {
        #[serde(flatten)]
        row: DutyRate,
    },
    Order {
        state: String,
        reason: Option<String>,
        /// What the last batch said of an open order beyond its reason, when it said more.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<Detail>,
        order: Order,
    },
    /// Before the releases, so that a restore knows which are void as it reads them.
    Void {
        #[serde(flatten)]
        void: Void,
    },
    /// What a wave's releases are filed with (version 4): its `day`, the sequence number of its
    /// first release (`first`) and the record (`filed`); before the releases.
    Filed {
        day: NaiveDate,
        first: u64,
        filed: Filed,
    },
    /// What a wave's duties and fees are estimated from (version 5): its `day`, the sequence
    /// number of its first release (`first`) and the record (`assessed`); before the releases.
    Assessed {
        day: NaiveDate,
        first: u64,
        assessed: Assessed,
    },
    Release {
        release: Release,
    },
    /// After the releases.
    Referral {
        referral: Referral,
    },
    Schedule {
        last_day: Option<NaiveDate>,
        last_trigger: Option<DateTime<Utc>>,
    },
    LogsDue {
        day: NaiveDate,
    },
    Applied {
        mark: String,
        report: String,
    },
    End {
        lines: u64,
        items: u64,
        skus: u64,
        orders: u64,
        releases: u64,
        fnv1a64: String,
    },
}

/// What a dump or a restore held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpCounts {
    pub items: u64,
    pub skus: u64,
    pub orders: u64,
    pub releases: u64,
    pub lines: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the dump")]
    Write(#[source] std::io::Error),
}

/// A dump refused, or a restore that failed: nothing of it is in the store.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{file}: line {line}: {message}; nothing was restored")]
    Line {
        file: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{file}: {message}; nothing was restored")]
    Dump { file: PathBuf, message: String },
    #[error("{path} is not empty ({what}): a dump is restored into an empty store only; nothing was restored")]
    NotEmpty { path: PathBuf, what: String },
    #[error("{file}: cannot read")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Writes the whole store as seen by `reader` to `out`, as described above.
pub fn dump(
    reader: &StoreReader,
    created_at: DateTime<Utc>,
    out: &mut impl Write,
) -> Result<DumpCounts, DumpError> {
    let mut out = Hashing {
        out,
        hash: FNV_OFFSET,
        lines: 0,
    };
    let mut counts = DumpCounts::default();
    out.line(&Line::Header {
        format: DUMP_FORMAT.to_owned(),
        version: DUMP_VERSION,
        layout: LAYOUT_VERSION,
        created_at,
    })?;
    let mut items: Vec<Item> = reader.items()?.into_values().collect();
    items.sort_by(|a, b| a.sku.cmp(&b.sku));
    for item in items {
        counts.items += 1;
        out.line(&Line::Item { item })?;
    }
    for (sku, level) in reader.stock()? {
        counts.skus += 1;
        out.line(&Line::Stock { sku, level })?;
    }
    for row in reader.duty_rates()? {
        out.line(&Line::Duty { row })?;
    }
    let states = reader.states()?;
    let table = reader.table(ORDERS)?;
    let mut details = Details::new(reader);
    for entry in table.iter().map_err(|e| reader.engine(e))? {
        let (first, bytes) = entry.map_err(|e| reader.engine(e))?;
        let first = first.value();
        let orders: Vec<Order> =
            decode(bytes.value()).map_err(|m| reader.corrupt("orders", &first.to_string(), m))?;
        for (offset, order) in orders.into_iter().enumerate() {
            let ordinal = first + offset as Ordinal;
            let state = reader.state_of(&states, ordinal)?;
            let detail = match state {
                StateByte::Open(verdict) => details.of(ordinal, verdict)?,
                _ => None,
            };
            let (state, reason) = state.words();
            counts.orders += 1;
            out.line(&Line::Order {
                state: state.to_owned(),
                reason: reason.map(str::to_owned),
                detail,
                order,
            })?;
        }
    }
    for void in reader.voids()? {
        out.line(&Line::Void { void })?;
    }
    for (day, first, filed) in reader.filings()? {
        out.line(&Line::Filed { day, first, filed })?;
    }
    for (day, first, assessed) in reader.assessments()? {
        out.line(&Line::Assessed {
            day,
            first,
            assessed,
        })?;
    }
    let mut failed = None;
    reader.for_each_release(|release| {
        counts.releases += 1;
        if failed.is_none() {
            failed = out.line(&Line::Release { release }).err();
        }
        Ok(())
    })?;
    if let Some(error) = failed {
        return Err(error);
    }
    for referral in reader.referrals()? {
        out.line(&Line::Referral { referral })?;
    }
    out.line(&Line::Schedule {
        last_day: reader.last_day()?,
        last_trigger: reader.last_trigger()?,
    })?;
    for day in reader.logs_due()? {
        out.line(&Line::LogsDue { day })?;
    }
    let applied = reader.table(APPLIED)?;
    for entry in applied.iter().map_err(|e| reader.engine(e))? {
        let (mark, bytes) = entry.map_err(|e| reader.engine(e))?;
        let report: String =
            decode(bytes.value()).map_err(|m| reader.corrupt("applied", mark.value(), m))?;
        out.line(&Line::Applied {
            mark: mark.value().to_owned(),
            report,
        })?;
    }
    counts.lines = out.lines;
    let end = Line::End {
        lines: out.lines,
        items: counts.items,
        skus: counts.skus,
        orders: counts.orders,
        releases: counts.releases,
        fnv1a64: format!("{:016x}", out.hash),
    };
    out.line(&end)?;
    out.out.flush().map_err(DumpError::Write)?;
    Ok(counts)
}

/// A restored store, built beside the target and not yet in its place.
pub struct Restored {
    store: Store,
    folder: PathBuf,
    pub counts: DumpCounts,
}

impl Restored {
    /// The restored store, to check before it takes the target's place.
    pub fn store(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Puts the restored store in the target folder's place, durably, and opens it there.
    pub fn put_in_place(self) -> Result<Store, StoreError> {
        let Restored { store, folder, .. } = self;
        let building = store.path().to_owned();
        drop(store);
        let io_error = |source| StoreError::Io {
            path: folder.clone(),
            source,
        };
        fs::rename(building.join(FILE_NAME), folder.join(FILE_NAME)).map_err(io_error)?;
        crate::files::sync_dir(&folder).map_err(io_error)?;
        fs::remove_dir_all(&building).map_err(io_error)?;
        crate::files::sync_dir(&folder).map_err(io_error)?;
        Store::open(&folder)
    }

    /// Gives the restored store up; the target stays as it was.
    pub fn discard(self) {
        let building = self.store.path().to_owned();
        drop(self.store);
        let _ = fs::remove_dir_all(building);
    }
}

/// Restores the dump read from `input` (named `file` in errors) into the store folder
/// `folder`, which must hold no store or an empty one. The store is built in `.restoring`
/// inside it; [`Restored::put_in_place`] moves it into place. Every day with releases is
/// marked as due, so that its release log and manifest are written again from the store.
pub fn restore(folder: &Path, file: &Path, input: impl BufRead) -> Result<Restored, RestoreError> {
    check_empty(folder)?;
    let building = folder.join(RESTORING);
    if building.exists() {
        // Left by a restore that did not finish.
        fs::remove_dir_all(&building).map_err(|source| StoreError::Io {
            path: building.clone(),
            source,
        })?;
    }
    let store = Store::open(&building)?;
    let mut restoring = Restoring {
        store,
        file: file.to_owned(),
        counts: DumpCounts::default(),
        items: Vec::new(),
        stock: BTreeMap::new(),
        orders: Vec::new(),
        order_states: Vec::new(),
        seen: HashSet::new(),
        releases: Vec::new(),
        release_days: Vec::new(),
        released: HashSet::new(),
        commit: Commit::new(),
        details: BTreeMap::new(),
        voided: HashSet::new(),
        duty_keys: HashSet::new(),
        referred: HashSet::new(),
        referral_seqs: BTreeMap::new(),
        stage: Stage::Header,
    };
    let result = restoring.read(input);
    match result {
        Ok(()) => Ok(Restored {
            counts: restoring.counts,
            store: restoring.store,
            folder: folder.to_owned(),
        }),
        Err(error) => {
            let building = restoring.store.path().to_owned();
            drop(restoring);
            let _ = fs::remove_dir_all(building);
            Err(error)
        }
    }
}

/// Refuses a folder that holds anything but an empty store (or a restore left unfinished).
fn check_empty(folder: &Path) -> Result<(), RestoreError> {
    let entries = match fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Io {
                path: folder.to_owned(),
                source,
            }
            .into())
        }
    };
    if let Some(writer) = foreign_store(folder) {
        return Err(RestoreError::NotEmpty {
            path: folder.to_owned(),
            what: format!("a store written by {writer}"),
        });
    }
    for entry in entries {
        let entry = entry.map_err(|source| StoreError::Io {
            path: folder.to_owned(),
            source,
        })?;
        let name = entry.file_name();
        if name == RESTORING || name == FILE_NAME {
            continue;
        }
        return Err(RestoreError::NotEmpty {
            path: folder.to_owned(),
            what: format!("it holds {}", name.to_string_lossy()),
        });
    }
    if folder.join(FILE_NAME).exists() {
        let store = Store::open(folder)?;
        let reader = store.reader()?;
        let held = [
            ("items", reader.items()?.len() as u64),
            ("stock", reader.stock()?.len() as u64),
            ("orders", reader.next_ordinal()?),
            ("releases", reader.releases()?.len() as u64),
        ];
        if let Some((what, count)) = held.iter().find(|(_, count)| *count > 0) {
            return Err(RestoreError::NotEmpty {
                path: folder.to_owned(),
                what: format!("its store holds {count} {what}"),
            });
        }
    }
    Ok(())
}

/// Where a restore is in the dump: the header first, the end line last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Header,
    Body,
    Ended,
}

/// A restore under way: what has been read and not yet committed.
struct Restoring {
    store: Store,
    file: PathBuf,
    counts: DumpCounts,
    items: Vec<Item>,
    stock: BTreeMap<String, StockLevel>,
    orders: Vec<PreparedOrder>,
    order_states: Vec<StateByte>,
    /// The ids of the orders not yet committed (those committed are in the store's index).
    seen: HashSet<String>,
    releases: Vec<Release>,
    /// Days with releases, to mark their files due.
    release_days: Vec<NaiveDate>,
    /// The orders released so far, which must be released, and only once.
    released: HashSet<String>,
    /// The schedule marks, logs due and applied marks, committed at the end.
    commit: Commit,
    /// The details of open orders, by state block, committed at the end.
    details: BTreeMap<u64, DetailBlock>,
    /// The ids of the void releases.
    voided: HashSet<String>,
    /// The keys of the duty rows read, to refuse one twice.
    duty_keys: HashSet<String>,
    /// The orders referred.
    referred: HashSet<String>,
    /// The sequence number of the last referral read of each day.
    referral_seqs: BTreeMap<NaiveDate, u64>,
    stage: Stage,
}

impl Restoring {
    fn read(&mut self, mut input: impl BufRead) -> Result<(), RestoreError> {
        let mut hash = FNV_OFFSET;
        let mut line_no = 0u64;
        let mut bytes = Vec::new();
        loop {
            bytes.clear();
            let read =
                input
                    .read_until(b'\n', &mut bytes)
                    .map_err(|source| RestoreError::Read {
                        file: self.file.clone(),
                        source,
                    })?;
            if read == 0 {
                break;
            }
            line_no += 1;
            if self.stage == Stage::Ended {
                return Err(self.at(line_no, "a line after the end line".into()));
            }
            if bytes.last() != Some(&b'\n') {
                return Err(self.at(
                    line_no,
                    "the line is cut short (no newline): the dump is truncated".into(),
                ));
            }
            let line: Line = serde_json::from_slice(&bytes[..bytes.len() - 1])
                .map_err(|error| self.at(line_no, error.to_string()))?;
            if let Line::End {
                lines,
                items,
                skus,
                orders,
                releases,
                fnv1a64,
            } = &line
            {
                let expected = format!("{hash:016x}");
                let read = &self.counts;
                let counted = (read.items, read.skus, read.orders, read.releases);
                if counted != (*items, *skus, *orders, *releases) {
                    return Err(self.at(
                        line_no,
                        format!(
                            "the end line counts {items} items, {skus} SKUs, {orders} orders and {releases} releases, the dump holds {} items, {} SKUs, {} orders and {} releases: it is damaged",
                            read.items, read.skus, read.orders, read.releases
                        ),
                    ));
                }
                if *lines != line_no - 1 || *fnv1a64 != expected {
                    return Err(self.at(
                        line_no,
                        format!(
                            "the end line counts {lines} lines with fnv1a64 {fnv1a64}, the dump has {} with {expected}: it is damaged",
                            line_no - 1
                        ),
                    ));
                }
                self.finish(line_no)?;
                self.stage = Stage::Ended;
                continue;
            }
            hash = fnv1a64(hash, &bytes);
            self.take(line_no, line)?;
        }
        if self.stage != Stage::Ended {
            return Err(RestoreError::Dump {
                file: self.file.clone(),
                message: format!(
                    "the dump ends at line {line_no} without its end line: it is truncated"
                ),
            });
        }
        self.counts.lines = line_no - 1;
        Ok(())
    }

    fn at(&self, line: u64, message: String) -> RestoreError {
        RestoreError::Line {
            file: self.file.clone(),
            line,
            message,
        }
    }

    /// Takes one line in, committing what it completes.
    fn take(&mut self, line_no: u64, line: Line) -> Result<(), RestoreError> {
        match (self.stage, line) {
            (
                Stage::Header,
                Line::Header {
                    format, version, ..
                },
            ) => {
                if format != DUMP_FORMAT || !(1..=DUMP_VERSION).contains(&version) {
                    return Err(self.at(
                        line_no,
                        format!("a dump of format {format:?} version {version}; this build reads {DUMP_FORMAT:?} versions 1 to {DUMP_VERSION}"),
                    ));
                }
                self.stage = Stage::Body;
            }
            (Stage::Header, _) => {
                return Err(self.at(
                    line_no,
                    "not a border-release dump (its first line is no header)".into(),
                ))
            }
            (_, Line::Header { .. }) => {
                return Err(self.at(line_no, "a second header".into()));
            }
            (_, Line::Item { item }) => {
                if !self.orders.is_empty() || self.counts.orders > 0 {
                    return Err(self.at(line_no, "an item after the orders".into()));
                }
                if self.items.iter().any(|known| known.sku == item.sku) {
                    return Err(self.at(line_no, format!("item {} twice", item.sku)));
                }
                self.counts.items += 1;
                self.items.push(item);
            }
            (_, Line::Stock { sku, level }) => {
                if !self.items.iter().any(|item| item.sku == sku) {
                    return Err(self.at(line_no, format!("stock of {sku}, which is no item")));
                }
                if level.on_hand() < 0 {
                    return Err(self.at(line_no, format!("stock of {sku} below zero")));
                }
                if self.stock.insert(sku.clone(), level).is_some() {
                    return Err(self.at(line_no, format!("stock of {sku} twice")));
                }
                self.counts.skus += 1;
            }
            (
                _,
                Line::Order {
                    state,
                    reason,
                    detail,
                    order,
                },
            ) => {
                self.catalogue_in()?;
                let state = state_byte(&state, reason.as_deref()).ok_or_else(|| {
                    self.at(line_no, format!("no such state: {state} ({reason:?})"))
                })?;
                if let Some((at, line)) = order
                    .lines
                    .iter()
                    .enumerate()
                    .find(|(_, line)| !self.items.iter().any(|item| item.sku == line.sku))
                {
                    return Err(self.at(
                        line_no,
                        format!(
                            "order {}: lines[{at}].sku {} is no item",
                            order.order_id, line.sku
                        ),
                    ));
                }
                let prepared = PreparedOrder::new(&order);
                if !self.seen.insert(order.order_id.to_string())
                    || self.store.known(&prepared)? != super::Known::New
                {
                    return Err(self.at(line_no, format!("order {} twice", order.order_id)));
                }
                if let (Some(detail), StateByte::Open(Some(_))) = (detail, state) {
                    let ordinal = self.counts.orders;
                    let block = self
                        .details
                        .entry(ordinal / STATE_BLOCK_ORDERS)
                        .or_insert_with(|| DetailBlock {
                            day: NaiveDate::MIN,
                            cutoff: DateTime::<Utc>::MIN_UTC,
                            entries: Vec::new(),
                        });
                    match detail {
                        Detail::NotDue { day, cutoff } => (block.day, block.cutoff) = (day, cutoff),
                        detail => block
                            .entries
                            .push(((ordinal % STATE_BLOCK_ORDERS) as u32, detail)),
                    }
                }
                self.orders.push(prepared);
                self.order_states.push(state);
                self.counts.orders += 1;
                if self.orders.len() >= RESTORE_GROUP {
                    self.commit_orders()?;
                }
            }
            (_, Line::Filed { day, first, filed }) => {
                self.commit_orders()?;
                if !self.releases.is_empty() || self.counts.releases > 0 {
                    return Err(self.at(line_no, "a filing record after the releases".into()));
                }
                self.commit
                    .release_filings
                    .push(((super::day_number(day), first), encode(&filed)));
            }
            (_, Line::Duty { row }) => {
                if !self.orders.is_empty() || self.counts.orders > 0 {
                    return Err(self.at(line_no, "a duty row after the orders".into()));
                }
                let key = super::layout::duty_key(&row);
                if !self.duty_keys.insert(key.clone()) {
                    return Err(self.at(line_no, format!("duty row {key} twice")));
                }
                self.commit.put_duty_rate(&row);
            }
            (
                _,
                Line::Assessed {
                    day,
                    first,
                    assessed,
                },
            ) => {
                self.commit_orders()?;
                if !self.releases.is_empty() || self.counts.releases > 0 {
                    return Err(self.at(line_no, "an assessment after the releases".into()));
                }
                self.commit
                    .release_duties
                    .push(((super::day_number(day), first), encode(&assessed)));
            }
            (_, Line::Void { void }) => {
                self.commit_orders()?;
                if !self.releases.is_empty() || self.counts.releases > 0 {
                    return Err(self.at(line_no, "a void after the releases".into()));
                }
                if !self.voided.insert(void.release_id.to_string()) {
                    return Err(
                        self.at(line_no, format!("release {} voided twice", void.release_id))
                    );
                }
                let seq = super::release_chunk::sequence_of(&void.release_id)
                    .filter(|_| {
                        void.release_id
                            .starts_with(&void.day.format("%Y-%m-%d").to_string())
                    })
                    .ok_or_else(|| {
                        self.at(
                            line_no,
                            format!("{} is no release id of {}", void.release_id, void.day),
                        )
                    })?;
                self.commit
                    .voids
                    .push(((super::day_number(void.day), seq), encode(&void)));
                if self.release_days.last() != Some(&void.day) {
                    self.release_days.push(void.day);
                }
            }
            (_, Line::Release { release }) => {
                self.commit_orders()?;
                let void = self.voided.contains(release.release_id.as_str());
                for order_id in release.orders.iter().filter(|_| !void) {
                    if !self.released.insert(order_id.to_string()) {
                        return Err(
                            self.at(line_no, format!("order {order_id} is in two releases"))
                        );
                    }
                }
                let wave = self
                    .releases
                    .first()
                    .map(|first| (first.day, first.released_at, &first.policy, &first.lane));
                let same_wave = wave.is_none_or(|(day, at, policy, lane)| {
                    (day, at, policy, lane)
                        == (
                            release.day,
                            release.released_at,
                            &release.policy,
                            &release.lane,
                        )
                });
                if !same_wave || self.releases.len() >= RESTORE_GROUP {
                    self.commit_releases()?;
                }
                if self.release_days.last() != Some(&release.day) {
                    self.release_days.push(release.day);
                }
                self.counts.releases += 1;
                self.releases.push(release);
            }
            (_, Line::Referral { referral }) => {
                self.commit_orders()?;
                self.commit_releases()?;
                let order_id = referral.order_id.to_string();
                if !self.referred.insert(order_id) {
                    return Err(self.at(
                        line_no,
                        format!("order {} is referred twice", referral.order_id),
                    ));
                }
                let day = super::day_number(referral.day);
                let seq = self.referral_seqs.entry(referral.day).or_default();
                *seq += 1;
                let key = (day, *seq);
                self.commit.referrals.push((key, encode(&referral)));
                // Their files are written once the store is in place, and owed until then.
                self.commit.referrals_due.push((day, true));
            }
            (
                _,
                Line::Schedule {
                    last_day,
                    last_trigger,
                },
            ) => {
                if let Some(day) = last_day {
                    self.commit.set_last_day(day);
                }
                if let Some(at) = last_trigger {
                    self.commit.set_last_trigger(at);
                }
            }
            (_, Line::LogsDue { day }) => self.commit.mark_logs_due(day),
            (_, Line::Applied { mark, report }) => self.commit.mark_applied(&mark, &report),
            (_, Line::End { .. }) => unreachable!("taken before"),
        }
        Ok(())
    }

    /// Commits the catalogue and stock once the first order comes (or at the end).
    fn catalogue_in(&mut self) -> Result<(), RestoreError> {
        if self.counts.orders == 0 && self.orders.is_empty() {
            let items = std::mem::take(&mut self.items);
            self.store.put_items(&items, None)?;
            self.items = items;
            self.store.put_stock(&self.stock, None)?;
        }
        Ok(())
    }

    fn commit_orders(&mut self) -> Result<(), RestoreError> {
        if self.orders.is_empty() {
            return Ok(());
        }
        let orders = std::mem::take(&mut self.orders);
        let states = std::mem::take(&mut self.order_states);
        self.store.restore_orders(&orders, &states)?;
        self.seen.clear();
        Ok(())
    }

    fn commit_releases(&mut self) -> Result<(), RestoreError> {
        if self.releases.is_empty() {
            return Ok(());
        }
        let releases = std::mem::take(&mut self.releases);
        let mut commit = Commit::new();
        commit.put_releases(&releases);
        self.store.commit(commit)?;
        Ok(())
    }

    /// At the end line: what is left, the marks, every day with releases due, and a check that
    /// the orders marked released are exactly those in releases.
    fn finish(&mut self, line_no: u64) -> Result<(), RestoreError> {
        self.catalogue_in()?;
        self.commit_orders()?;
        self.commit_releases()?;
        let (counts, _) = self.store.order_counts()?;
        let marked = counts
            .iter()
            .filter(|count| count.state == "released")
            .map(|count| count.orders)
            .sum::<u64>();
        if marked != self.released.len() as u64 {
            return Err(self.at(
                line_no,
                format!(
                    "{marked} orders are marked released, the releases hold {}: the dump is damaged",
                    self.released.len()
                ),
            ));
        }
        let referred = counts
            .iter()
            .filter(|count| count.state == "referred")
            .map(|count| count.orders)
            .sum::<u64>();
        if referred != self.referred.len() as u64 {
            return Err(self.at(
                line_no,
                format!(
                    "{referred} orders are marked referred, the dump has {} referrals: it is damaged",
                    self.referred.len()
                ),
            ));
        }
        let mut commit = std::mem::take(&mut self.commit);
        for day in &self.release_days {
            commit.mark_logs_due(*day);
        }
        for (block_no, block) in std::mem::take(&mut self.details) {
            commit.details.push((block_no, encode(&block)));
        }
        self.store.commit(commit)?;
        Ok(())
    }
}

impl Store {
    /// Takes in restored orders with their states, after every order already held.
    fn restore_orders(
        &mut self,
        orders: &[PreparedOrder],
        states: &[StateByte],
    ) -> Result<(), StoreError> {
        let first = self.next_ordinal()?;
        self.add_orders(orders, None)?;
        let held = self.states()?;
        for (offset, state) in states.iter().enumerate() {
            held.set(first + offset as Ordinal, *state);
        }
        let mut commit = Commit::new();
        commit.put_states(held);
        self.commit(commit)
    }
}

/// The state byte a dump's state and reason words name.
fn state_byte(state: &str, reason: Option<&str>) -> Option<StateByte> {
    let wait = |word: &str| {
        WaitReason::ALL
            .into_iter()
            .find(|reason| reason.word() == word)
    };
    let hold = |word: &str| {
        HoldReason::ALL
            .into_iter()
            .find(|reason| reason.word() == word)
    };
    let byte = match (state, reason) {
        ("pending", None) => StateByte::Open(None),
        ("pending", Some(word)) => StateByte::Open(Some(Verdict::Waiting(wait(word)?))),
        ("held", Some(word)) => StateByte::Open(Some(Verdict::Held(hold(word)?))),
        ("released", None) => StateByte::Released,
        ("cancelled", None) => StateByte::Cancelled,
        ("referred", Some(word)) => StateByte::Referred(hold(word)?),
        _ => return None,
    };
    // The words must be the ones this byte gives back.
    (byte.words() == (state, reason)).then_some(byte)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a64(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Writes lines, counting them and hashing their bytes.
struct Hashing<'a, W: Write> {
    out: &'a mut W,
    hash: u64,
    lines: u64,
}

impl<W: Write> Hashing<'_, W> {
    fn line(&mut self, line: &Line) -> Result<(), DumpError> {
        let mut bytes = serde_json::to_vec(line).map_err(|error| DumpError::Write(error.into()))?;
        bytes.push(b'\n');
        if !matches!(line, Line::End { .. }) {
            self.hash = fnv1a64(self.hash, &bytes);
            self.lines += 1;
        }
        self.out.write_all(&bytes).map_err(DumpError::Write)
    }
}
