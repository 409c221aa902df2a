//! The durable state of the warehouse, in one redb database file. The only module that knows
//! redb and the on-disk encoding; everything else sees items, stock, orders and releases.
//!
//! **Layout** (layout version 3): one table per kind of record, all written by one write
//! transaction per intake file, API group commit or batch, so that each commits whole:
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `meta` | `format`, `next-ordinal`, `last-day`, `last-trigger` | the layout version, the ordinal the next accepted order gets, the last release day batched, the schedule time of the last scheduled batch |
//! | `items` | SKU | `Item` |
//! | `stock` | SKU | `StockLevel` (received, released, adjusted) |
//! | `orders` | first ordinal | consecutive orders, as taken in (a chunk) |
//! | `order-ids` | first ordinal | the id hashes of the same orders, for the id index |
//! | `states` | block number | one state byte per order for `STATE_BLOCK_ORDERS` consecutive ordinals |
//! | `releases` | (day, first sequence) | up to `RELEASE_CHUNK_MAX` consecutive releases of the day |
//! | `release-items` | (day, first sequence) | the item facts the release lines of one wave name, each once |
//! | `release-filings` | (day, a wave's first sequence) | what the wave's releases are filed with ([`crate::model::Filed`]): entry type, parties, each item's MID and USMCA claim |
//! | `voids` | (day, sequence) | a void release ([`Void`]), under its release's day and sequence number |
//! | `details` | block number | what the last batch said of the open orders of a state block beyond their reason words |
//! | `referrals` | (day, sequence) | the `sequence`th referral (from 1) of the day ([`Referral`]): an order taken out of the daily plan for the broker's formal entry |
//! | `logs-due` | day | the day's release log and manifest must be written from the store |
//! | `referrals-due` | day | the day's referral files must be written from the store |
//! | `applied` | mark | the report of an input already taken in (a spool file) |
//!
//! Ordinals number accepted orders from 0 in intake order; days are kept as their number of
//! days from the common era, so that they sort as dates.
//!
//! **Why chunks.** A record per order per phase would make a batch over a million orders
//! rewrite a million records. Instead an intake writes its orders in chunks of about
//! `ORDER_CHUNK_BYTES` each, a batch writes its releases the same way, and an order's life
//! (pending, the reason it waits, held, released, cancelled, referred) is one byte in a state block: a
//! batch over a million orders rewrites about a megabyte of state, not a million records.
//!
//! **Encoding.** Every value starts with a one-byte format version, then bincode (variable-length
//! integers). A version this build does not know is an error, never a guess. Release chunks and
//! item tables have format version 2 (see `release_chunk`): a wave's lines name their item
//! facts in its table instead of repeating them; whole releases (format version 1) are still
//! read. Order ids are indexed by their 64-bit FNV-1a hash; a hash shared by two ids is
//! resolved by reading the orders themselves.
//!
//! **Durability.** Every commit but one is made with redb's immediate durability: it returns
//! only once redb has fsynced the file, and redb's commit is atomic (checksummed, with the
//! previous commit kept until the new one is whole). The one exception is clearing the mark
//! that a day's files are due, which is safe to lose. The store fsyncs nothing of redb's but the
//! folder that names the file, once it is opened, so that a new file's name is durable before
//! anything is acknowledged.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;

use crate::model::{
    Detail, DutyRate, Item, Order, OrderState, Referral, Release, Shortfall, StockLevel, Verdict,
    Void, WaitReason,
};
use crate::planner::{Places, Plan};

mod dump;
mod layout;
mod reader;
mod release_chunk;

pub use dump::{
    dump, restore, DumpCounts, DumpError, RestoreError, Restored, DUMP_FORMAT, DUMP_VERSION,
};
pub use layout::{decode, duty_key, encode, PreparedOrder};
use layout::{id_hash, Commit, DetailBlock, IdIndex, Ordinal, StateByte, States};
pub use reader::{HeldPage, StoreReader};

/// The layout version kept in `meta/format`: 4 is the redb layout above; 3 lacked the tables
/// `voids` and `details`, and opening it creates them. A store of layout 4 written before
/// referrals lacks the table `referrals`, and opening it creates that. (Layouts 1 and 2 were
/// kept in sled by earlier builds; this build refuses their folders.)
pub const LAYOUT_VERSION: u32 = 4;

/// The format version that starts every stored value.
pub const VALUE_VERSION: u8 = 1;

/// The format version of release chunks and item tables.
pub const RELEASE_VALUE_VERSION: u8 = 2;

/// The file the store keeps in its folder (`paths.data`).
pub const FILE_NAME: &str = "store.redb";

/// Memory redb may use for its page cache.
pub const CACHE_BYTES_MAX: usize = 128 * 1024 * 1024;

/// Most orders in one stored chunk.
pub const ORDER_CHUNK_MAX: usize = 512;

/// Most bytes of one stored order chunk: a chunk is cut before the order that would take it
/// past this, so that it fills the 64 KiB page redb gives it (redb keeps a large value in a
/// page of its own, of a power of two of 4 KiB pages).
pub const ORDER_CHUNK_BYTES: usize = 64 * 1024 - 512;

/// Orders per state block: one byte each.
pub const STATE_BLOCK_ORDERS: u64 = 64 * 1024;

/// Most releases in one stored chunk.
pub const RELEASE_CHUNK_MAX: usize = 256;

/// Most threads decoding order chunks.
pub const DECODE_THREADS_MAX: usize = 4;

/// Open orders decoded together before the stored bytes of the next ones are read.
const DECODE_GROUP_ORDERS: usize = 64 * 1024;

/// Decoded order chunks kept for lookups by ordinal.
const CHUNK_CACHE_MAX: usize = 64;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("items");
const STOCK: TableDefinition<&str, &[u8]> = TableDefinition::new("stock");
const ORDERS: TableDefinition<u64, &[u8]> = TableDefinition::new("orders");
const ORDER_IDS: TableDefinition<u64, &[u8]> = TableDefinition::new("order-ids");
const STATES: TableDefinition<u64, &[u8]> = TableDefinition::new("states");
/// What each wave's releases are filed with ([`crate::model::Filed`]), by day and the wave's
/// first sequence number.
const RELEASE_FILINGS: TableDefinition<(i32, u64), &[u8]> = TableDefinition::new("release-filings");
/// What each wave's duties and fees are estimated from ([`crate::model::Assessed`]), by day and
/// the wave's first sequence number.
const RELEASE_DUTIES: TableDefinition<(i32, u64), &[u8]> = TableDefinition::new("release-duties");
/// The operator's duty tables ([`crate::model::DutyRate`]), by [`layout::duty_key`].
const DUTY_RATES: TableDefinition<&str, &[u8]> = TableDefinition::new("duty-rates");
/// Voided releases ([`crate::model::Void`]), by day and sequence number.
const VOIDS: TableDefinition<(i32, u64), &[u8]> = TableDefinition::new("voids");
/// [`layout::DetailBlock`]s, by state block.
const DETAILS: TableDefinition<u64, &[u8]> = TableDefinition::new("details");
/// [`Referral`]s, by day and sequence number.
const REFERRALS: TableDefinition<(i32, u64), &[u8]> = TableDefinition::new("referrals");
const RELEASES: TableDefinition<(i32, u64), &[u8]> = TableDefinition::new("releases");
const RELEASE_ITEMS: TableDefinition<(i32, u64), &[u8]> = TableDefinition::new("release-items");
const LOGS_DUE: TableDefinition<i32, ()> = TableDefinition::new("logs-due");
/// Days whose referral files are due, marked in the referral's commit.
const REFERRALS_DUE: TableDefinition<i32, ()> = TableDefinition::new("referrals-due");
const APPLIED: TableDefinition<&str, &[u8]> = TableDefinition::new("applied");

const FORMAT: &str = "format";
const NEXT_ORDINAL: &str = "next-ordinal";
const LAST_DAY: &str = "last-day";
const LAST_TRIGGER: &str = "last-trigger";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {path} is in use by another process (normally the daemon)")]
    Locked { path: PathBuf },
    // The cause is not repeated in these two: it is the error's source, printed after it.
    #[error("store at {path}")]
    Engine { path: PathBuf, source: redb::Error },
    #[error("store at {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store at {path}: {table} {key} cannot be read: {message}")]
    Corrupt {
        path: PathBuf,
        table: &'static str,
        key: String,
        message: String,
    },
    #[error("store at {path}: layout version {found}; this build reads version {supported}; upgrade border-release")]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// The folder holds a store this build does not read (an earlier build's).
    #[error("{path} holds a store written by {writer}, which this build does not read: open it with the build that wrote it, or set paths.data to an empty folder")]
    Foreign { path: PathBuf, writer: String },
    /// A plan was applied to another state of the store than the one it was planned from.
    #[error("store at {path}: the plan was made from an earlier state of the store; plan again")]
    Stale { path: PathBuf },
    /// A commit could not be made durable: what this process holds may be ahead of the disk,
    /// and a later sync that seems to succeed proves nothing about the failed one.
    #[error("store at {path}: an earlier commit could not be made durable, so nothing more is written; restart to go on from what is on disk")]
    Unsynced { path: PathBuf },
}

impl StoreError {
    /// Whether the store is another process's (open there, or in a folder this user may not
    /// read), rather than broken.
    pub fn is_locked_or_private(&self) -> bool {
        match self {
            StoreError::Locked { .. } => true,
            StoreError::Io { source, .. } => source.kind() == std::io::ErrorKind::PermissionDenied,
            _ => false,
        }
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// The store, opened by this process alone.
pub struct Store {
    /// Always `Some` until the store is dropped (see `Drop`).
    db: Option<redb::Database>,
    /// The store's folder.
    path: PathBuf,
    /// Set when a commit failed; every later commit is refused.
    unsynced: AtomicBool,
    chunk_cache: Mutex<HashMap<Ordinal, Arc<Vec<Order>>>>,
    /// What intake and the batch check against, read once and kept in step with every commit
    /// this handle makes (see [`Ledger`]).
    ledger: Ledger,
    /// Durable commits made through this handle: a day's snapshot is applied only to the store
    /// it was taken from.
    generation: u64,
}

/// The store's records that intake checks new ones against and that the batch updates: the
/// catalogue, the id index and the state of every order. Each is read when first needed (an
/// item import needs no id index) and then kept: the daemon's store lives all day, and reading
/// the index of ten million orders for each posted order would cost seconds.
/// After a failed commit they may be ahead of the disk, and are forgotten.
#[derive(Default)]
struct Ledger {
    /// Shared with an intake under way, which checks orders against it on other threads.
    catalogue: Option<Arc<HashMap<String, Item>>>,
    index: Option<IdIndex>,
    states: Option<States>,
}

/// An input applied in the same commit as its records, with its report (see
/// [`Store::applied`]), so that an input taken in before a crash is known when it is seen again.
#[derive(Debug, Clone, Copy)]
pub struct Applied<'a> {
    pub mark: &'a str,
    pub report: &'a str,
}

/// Orders being taken in (see [`Store::begin_orders`]).
pub struct OrderIntake<'a> {
    store: &'a mut Store,
    /// `Some` until finished.
    txn: Option<redb::WriteTransaction>,
    /// The ordinal of the intake's first order, and of its next one.
    first: Ordinal,
    next: Ordinal,
    /// Accepted orders not yet written, the last ones; the first of them has the ordinal
    /// `next - chunk.len()`.
    chunk: Vec<PreparedOrder>,
    chunk_bytes: usize,
}

/// What became of an order offered to an [`OrderIntake`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// New: taken in, as the intake's `place`th order (from 0).
    Taken { place: usize },
    /// The store holds the same order already.
    Same,
    /// The store holds another order under the same id.
    Other,
    /// The intake took in an order under the same id already, as its `place`th; `same` when it
    /// is the same order.
    Earlier { place: usize, same: bool },
}

/// What the store holds under a prepared order's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// No order.
    New,
    /// The same order.
    Same,
    /// Another order under the same id.
    Other,
}

/// What voiding a release found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Voiding {
    /// The release is void now; its orders are pending again, its stock back on hand.
    Done {
        release: Box<Release>,
        void: Void,
    },
    /// The release was voided before.
    Already(Void),
    Unknown,
}

/// What cancelling an order found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancel {
    /// Pending or held; now cancelled.
    Done,
    Already,
    Released {
        release_id: String,
        day: NaiveDate,
    },
    /// Referred to a formal entry on `day`.
    Referred {
        day: NaiveDate,
    },
    Unknown,
}

/// What referring orders found: all of them are referred, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Referring {
    /// Every order is referred now, its referral kept, its units taken from stock.
    Done,
    /// An order is not known, or not held (any more).
    NotHeld { order_id: String },
    /// Stock on hand is short for a line of an order, counting the orders before it.
    Short { order_id: String, short: Shortfall },
}

/// An accepted order as `orders list` and `orders show` give it: its state, the detail of the
/// last verdict of an open one, and the value a released one went out at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderView {
    pub order: Order,
    pub state: OrderState,
    pub detail: Option<Detail>,
    /// For a released order: the sum of its lines' values in its release.
    pub value_usd: Option<rust_decimal::Decimal>,
}

/// How many orders are in one state, for the figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCount {
    pub state: &'static str,
    pub reason: Option<&'static str>,
    pub orders: u64,
}

/// What the batch of a day plans from: every open order, the catalogue, stock on hand and the
/// day's earlier releases, as the store held them at one moment. [`Store::apply_plan`] takes
/// it back with the plan made from it.
#[derive(Debug)]
pub struct DaySnapshot {
    pub day: NaiveDate,
    /// The open (pending and held) orders, in intake order. The batch may take them out to
    /// free their memory before the plan is applied.
    pub orders: Vec<Order>,
    pub items: HashMap<String, Item>,
    pub on_hand: HashMap<String, u64>,
    /// The day's releases committed by earlier waves, void ones included.
    pub earlier: Vec<Release>,
    /// The voids of the day's releases.
    pub voids: Vec<Void>,
    /// The last day batched.
    pub last_day: Option<NaiveDate>,
    /// Where each of `orders` is in the store.
    ordinals: Vec<Ordinal>,
    generation: u64,
}

impl Store {
    /// Opens (or creates) the store in the folder `path`. Fails with [`StoreError::Locked`] when
    /// another process has it open, and with [`StoreError::Foreign`] when the folder holds a
    /// store an earlier build wrote.
    pub fn open(path: &Path) -> Result<Store> {
        let io_error = |source| StoreError::Io {
            path: path.to_owned(),
            source,
        };
        crate::files::create_private_dir(path).map_err(io_error)?;
        let file_path = path.join(FILE_NAME);
        if !file_path.exists() {
            if let Some(writer) = foreign_store(path) {
                return Err(StoreError::Foreign {
                    path: path.to_owned(),
                    writer,
                });
            }
        }
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&file_path)
                .map_err(io_error)?
        };
        restrict(&file).map_err(io_error)?;
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES_MAX)
            .create_with_backend(redb::backends::FileBackend::new(file))
            .map_err(|source| match source {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
                    path: path.to_owned(),
                },
                source => StoreError::Engine {
                    path: path.to_owned(),
                    source: source.into(),
                },
            })?;
        // The file's name is made durable before anything written in it is acknowledged.
        crate::files::sync_dir(path).map_err(io_error)?;
        let store = Store {
            db: Some(db),
            path: path.to_owned(),
            unsynced: AtomicBool::new(false),
            chunk_cache: Mutex::new(HashMap::new()),
            ledger: Ledger::default(),
            generation: 0,
        };
        match store.meta::<u32>(FORMAT)? {
            None => store.create_tables()?,
            // A store of this layout written before referrals lacks their table.
            Some(LAYOUT_VERSION) => {
                let reader = store.reader()?;
                if !reader.has_table(REFERRALS)?
                    || !reader.has_table(REFERRALS_DUE)?
                    || !reader.has_table(RELEASE_FILINGS)?
                    || !reader.has_table(RELEASE_DUTIES)?
                    || !reader.has_table(DUTY_RATES)?
                {
                    store.create_tables()?;
                }
            }
            // Layout 3 lacks the tables of details and voids, and no order in it has the state
            // bytes that came with them: creating the tables upgrades it.
            Some(3) => store.create_tables()?,
            Some(found) if found > LAYOUT_VERSION => {
                return Err(StoreError::TooNew {
                    path: store.path.clone(),
                    found,
                    supported: LAYOUT_VERSION,
                });
            }
            Some(found) => {
                return Err(store.corrupt("meta", FORMAT, format!("unknown layout {found}")));
            }
        }
        Ok(store)
    }

    /// Opens the store, waiting up to `patience` while it is locked: a daemon that has just
    /// been told to stop may hold it a moment longer.
    pub fn open_waiting(path: &Path, patience: std::time::Duration) -> Result<Store> {
        let start = crate::clock::monotonic();
        loop {
            match Store::open(path) {
                Err(StoreError::Locked { .. }) if start.elapsed() < patience => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                result => return result,
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db(&self) -> &redb::Database {
        self.db.as_ref().expect("the store is open until dropped")
    }

    /// A new store, or one of layout 3 (or 4 without referrals): every table, and the layout version, in one durable
    /// commit. Tables that exist are kept as they are.
    fn create_tables(&self) -> Result<()> {
        let txn = self.db().begin_write().map_err(|e| self.engine(e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.engine(e))?;
            meta.insert(FORMAT, encode(&LAYOUT_VERSION).as_slice())
                .map_err(|e| self.engine(e))?;
            macro_rules! create {
                ($($table:expr),*) => {
                    $(txn.open_table($table).map_err(|e| self.engine(e))?;)*
                };
            }
            create!(ITEMS, STOCK, APPLIED, DUTY_RATES);
            create!(ORDERS, ORDER_IDS, STATES);
            create!(
                RELEASES,
                RELEASE_ITEMS,
                VOIDS,
                DETAILS,
                REFERRALS,
                RELEASE_FILINGS,
                RELEASE_DUTIES
            );
            txn.open_table(LOGS_DUE).map_err(|e| self.engine(e))?;
            txn.open_table(REFERRALS_DUE).map_err(|e| self.engine(e))?;
        }
        txn.commit().map_err(|e| self.engine(e))
    }

    /// Whether a commit failed to reach the disk: the store then refuses every later one
    /// ([`StoreError::Unsynced`]), and the process must start again from the disk.
    pub fn is_unsynced(&self) -> bool {
        self.unsynced.load(Ordering::SeqCst)
    }

    /// The item catalogue.
    pub fn items(&mut self) -> Result<&HashMap<String, Item>> {
        if self.ledger.catalogue.is_none() {
            self.ledger.catalogue = Some(Arc::new(self.reader()?.items()?));
        }
        Ok(self.ledger.catalogue.as_deref().expect("read above"))
    }

    /// Adds items to the catalogue, or replaces those of the same SKU, in one durable commit.
    pub fn put_items(&mut self, items: &[Item], applied: Option<Applied>) -> Result<()> {
        self.items()?;
        let mut commit = Commit::new();
        mark(&mut commit, applied);
        for item in items {
            commit.put_item(item);
        }
        self.commit(commit)?;
        let catalogue = Arc::make_mut(self.ledger.catalogue.as_mut().expect("read above"));
        for item in items {
            catalogue.insert(item.sku.clone(), item.clone());
        }
        Ok(())
    }

    /// The operator's duty tables, every row ever imported.
    pub fn duty_rates(&self) -> Result<Vec<DutyRate>> {
        self.reader()?.duty_rates()
    }

    /// Adds rows to the duty tables, in one durable commit: a row of the same prefix, origin,
    /// program and day as one held replaces it.
    pub fn put_duty_rates(&mut self, rows: &[DutyRate], applied: Option<Applied>) -> Result<()> {
        let mut commit = Commit::new();
        mark(&mut commit, applied);
        for row in rows {
            commit.put_duty_rate(row);
        }
        self.commit(commit)
    }

    /// Sets the stock levels of the SKUs given (receipts and counts), in one durable commit.
    pub fn put_stock(
        &mut self,
        levels: &BTreeMap<String, StockLevel>,
        applied: Option<Applied>,
    ) -> Result<()> {
        let mut commit = Commit::new();
        mark(&mut commit, applied);
        for (sku, level) in levels {
            commit.put_stock(sku, level);
        }
        self.commit(commit)
    }

    /// What the store holds under the id of `order`.
    pub fn known(&mut self, order: &PreparedOrder) -> Result<Known> {
        let candidates: Vec<Ordinal> = self.index()?.candidates(order.id_hash).collect();
        for ordinal in candidates {
            let stored = self.order_at(ordinal)?;
            if stored.order_id == order.order_id() {
                return Ok(if stored == order.decode() {
                    Known::Same
                } else {
                    Known::Other
                });
            }
        }
        Ok(Known::New)
    }

    /// Takes in new orders (pending, in the order given, after every order already held), in
    /// one durable commit. The caller has made sure that the store knows none of their ids.
    pub fn add_orders(&mut self, orders: &[PreparedOrder], applied: Option<Applied>) -> Result<()> {
        let mut intake = self.begin_orders()?;
        for order in orders {
            intake.add(order.clone())?;
        }
        intake.finish(applied)
    }

    /// Reads the catalogue, the id index and the state bytes now, if not yet read.
    pub fn prepare_intake(&mut self) -> Result<()> {
        self.items()?;
        self.index()?;
        self.states()?;
        Ok(())
    }

    /// Begins taking in orders: each one offered is checked against the store and the orders
    /// offered before it, and written as it comes (so that a file's orders are never all held
    /// in memory), in one write transaction that [`OrderIntake::finish`] commits whole. An
    /// intake dropped unfinished leaves the store as it was.
    pub fn begin_orders(&mut self) -> Result<OrderIntake<'_>> {
        if self.is_unsynced() {
            return Err(StoreError::Unsynced {
                path: self.path.clone(),
            });
        }
        let first = self.next_ordinal()?;
        self.items()?;
        self.index()?;
        self.states()?;
        let txn = self.db().begin_write().map_err(|e| self.engine(e))?;
        Ok(OrderIntake {
            store: self,
            txn: Some(txn),
            first,
            next: first,
            chunk: Vec::new(),
            chunk_bytes: 0,
        })
    }

    /// An order and its state, by id.
    pub fn order(&mut self, order_id: &str) -> Result<Option<(Order, OrderState)>> {
        Ok(self.find(order_id)?.map(|(_, order, state)| (order, state)))
    }

    /// What the last batch that examined an open order said of it beyond its reason word, by
    /// id; `None` for an order that is not open, that no batch examined, or that the last one
    /// examined before the store kept details.
    pub fn detail(&mut self, order_id: &str) -> Result<Option<Detail>> {
        let Some((ordinal, _, _)) = self.find(order_id)? else {
            return Ok(None);
        };
        let states = self.ledger.states.as_ref().expect("read by find");
        let Some(StateByte::Open(verdict)) = states.get(ordinal) else {
            return Ok(None);
        };
        reader::Details::new(&self.reader()?).of(ordinal, verdict)
    }

    /// Cancels a pending or held order, in one durable commit.
    pub fn cancel(&mut self, order_id: &str) -> Result<Cancel> {
        let ordinal = match self.find(order_id)? {
            None => return Ok(Cancel::Unknown),
            Some((_, _, OrderState::Cancelled)) => return Ok(Cancel::Already),
            Some((_, _, OrderState::Released { release_id, day })) => {
                return Ok(Cancel::Released { release_id, day })
            }
            Some((_, _, OrderState::Referred { day, .. })) => return Ok(Cancel::Referred { day }),
            Some((ordinal, _, OrderState::Pending(_) | OrderState::Held(_))) => ordinal,
        };
        let states = self.ledger.states.as_mut().expect("read by find");
        states.set(ordinal, StateByte::Cancelled);
        let mut commit = Commit::new();
        commit.put_states(states);
        self.commit(commit)?;
        Ok(Cancel::Done)
    }

    /// Voids a release that did not cross, in one durable commit: its orders go back to pending
    /// (a later batch serves them in their place, by `placed_at`), its stock back on hand, and
    /// its recipient's allowance for its day is restored; the void is kept. A day all of whose
    /// releases are void no longer counts as batched. The day's files are marked due.
    pub fn void(&mut self, release_id: &str, reason: &str, at: DateTime<Utc>) -> Result<Voiding> {
        let reader = self.reader()?;
        let Some(release) = reader.release(release_id)? else {
            return Ok(Voiding::Unknown);
        };
        let day_voids = reader.voids_of(release.day)?;
        if let Some(void) = day_voids.iter().find(|void| void.release_id == release_id) {
            return Ok(Voiding::Already(void.clone()));
        }
        let seq = release_chunk::sequence_of(release_id).expect("a stored release's id");
        let mut ordinals = Vec::with_capacity(release.orders.len());
        // While a release stands, its orders are released in it and in no other: each one's
        // state byte is enough (finding its release would read every later day's releases).
        self.index()?;
        self.states()?;
        for order_id in &release.orders {
            let (index, states) = (
                self.ledger.index.as_ref().expect("read above"),
                self.ledger.states.as_ref().expect("read above"),
            );
            let found = self.find_order(index, order_id)?;
            match found.map(|(ordinal, _)| (ordinal, states.get(ordinal))) {
                Some((ordinal, Some(StateByte::Released))) => ordinals.push(ordinal),
                _ => {
                    return Err(self.corrupt(
                        "releases",
                        release_id,
                        format!("its order {order_id} is not released in it"),
                    ))
                }
            }
        }
        let mut commit = Commit::new();
        let mut units: BTreeMap<&str, u64> = BTreeMap::new();
        for line in &release.lines {
            *units.entry(line.item.sku.as_str()).or_default() += u64::from(line.qty);
        }
        for (sku, qty) in units {
            let mut level = self.stock_level(sku)?;
            level.released = level.released.checked_sub(qty).ok_or_else(|| {
                self.corrupt(
                    "stock",
                    sku,
                    format!("fewer released than {release_id} holds"),
                )
            })?;
            commit.put_stock(sku, &level);
        }
        let void = Void {
            release_id: release.release_id.clone(),
            day: release.day,
            reason: reason.to_owned(),
            voided_at: at,
        };
        commit
            .voids
            .push(((day_number(release.day), seq), encode(&void)));
        if reader.last_day()? == Some(release.day) {
            let mut voided = reader.voided_ids()?;
            voided.insert(release_id.to_owned());
            commit.put_last_day(reader.last_day_released(&voided)?);
        }
        commit.mark_logs_due(release.day);
        let states = self.states()?;
        for ordinal in ordinals {
            states.set(ordinal, StateByte::Open(None));
        }
        commit.put_states(states);
        self.commit(commit)?;
        Ok(Voiding::Done {
            release: Box::new(release),
            void,
        })
    }

    /// Refers held orders to a formal entry, in one durable commit, all of them or none: each
    /// order's state becomes referred (keeping its hold reason), its referral is kept as the
    /// `sequence`th of its day, and its lines' units are taken from stock (counted as
    /// released: what the stock says was released is what the standing releases and the
    /// referrals hold). Refused, changing nothing, when an order is not held or stock on hand
    /// is short for a line.
    pub fn refer(&mut self, referrals: &[Referral]) -> Result<Referring> {
        let mut ordinals = Vec::with_capacity(referrals.len());
        for referral in referrals {
            match self.find(&referral.order_id)? {
                Some((ordinal, _, OrderState::Held(reason))) if reason == referral.reason => {
                    ordinals.push((ordinal, reason))
                }
                _ => {
                    return Ok(Referring::NotHeld {
                        order_id: referral.order_id.to_string(),
                    })
                }
            }
        }
        let mut commit = Commit::new();
        let mut levels: BTreeMap<&str, StockLevel> = BTreeMap::new();
        for referral in referrals {
            let mut needed: BTreeMap<&str, u64> = BTreeMap::new();
            for line in &referral.lines {
                *needed.entry(line.sku.as_str()).or_default() += u64::from(line.qty);
            }
            for (sku, units) in needed {
                let level = match levels.entry(sku) {
                    Entry::Occupied(entry) => entry.into_mut(),
                    Entry::Vacant(entry) => entry.insert(self.stock_level(sku)?),
                };
                let on_hand = u64::try_from(level.on_hand()).unwrap_or(0);
                if on_hand < units {
                    return Ok(Referring::Short {
                        order_id: referral.order_id.to_string(),
                        short: Shortfall {
                            sku: sku.into(),
                            needed: units,
                            on_hand,
                        },
                    });
                }
                level.released += units;
            }
        }
        for (sku, level) in &levels {
            commit.put_stock(sku, level);
        }
        let reader = self.reader()?;
        let mut next: BTreeMap<NaiveDate, u64> = BTreeMap::new();
        for referral in referrals {
            let seq = match next.entry(referral.day) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => entry.insert(reader.last_referral_seq(referral.day)?),
            };
            *seq += 1;
            commit
                .referrals
                .push(((day_number(referral.day), *seq), encode(referral)));
            commit.referrals_due.push((day_number(referral.day), true));
        }
        let states = self.states()?;
        for (ordinal, reason) in ordinals {
            states.set(ordinal, StateByte::Referred(reason));
        }
        commit.put_states(states);
        self.commit(commit)?;
        Ok(Referring::Done)
    }

    /// How many orders are in each state and reason, and when the oldest pending order (in
    /// intake order) was placed.
    pub fn order_counts(&mut self) -> Result<(Vec<StateCount>, Option<DateTime<Utc>>)> {
        let states = self.states()?;
        let counts = states
            .counts()
            .into_iter()
            .map(|(state, orders)| {
                let (state, reason) = state.words();
                StateCount {
                    state,
                    reason,
                    orders,
                }
            })
            .collect();
        let oldest = states
            .first_pending()
            .map(|ordinal| self.order_at(ordinal))
            .transpose()?
            .map(|order| order.placed_at);
        Ok((counts, oldest))
    }

    /// The open orders, the catalogue, stock on hand and the earlier releases of `day`: what a
    /// batch of the day plans from.
    pub fn snapshot(&mut self, day: NaiveDate) -> Result<DaySnapshot> {
        let items = self.items()?.clone();
        let states = std::mem::take(&mut self.ledger.states);
        let states = match states {
            Some(states) => states,
            None => self.read_states()?,
        };
        let open = self.open_orders(&states);
        self.ledger.states = Some(states);
        let OpenOrders { ordinals, orders } = open?;
        let on_hand = self
            .stock()?
            .into_iter()
            .map(|(sku, level)| (sku, u64::try_from(level.on_hand()).unwrap_or(0)))
            .collect();
        Ok(DaySnapshot {
            day,
            orders,
            items,
            on_hand,
            earlier: self.releases_of(day)?,
            voids: self.voids_of(day)?,
            last_day: self.last_day()?,
            ordinals,
            generation: self.generation,
        })
    }

    /// What a day batched before released, as a snapshot no plan may be applied to: no open
    /// orders, and the day's releases as `earlier`.
    pub fn released_day(&mut self, day: NaiveDate) -> Result<DaySnapshot> {
        Ok(DaySnapshot {
            day,
            orders: Vec::new(),
            items: HashMap::new(),
            on_hand: HashMap::new(),
            earlier: self.releases_of(day)?,
            voids: self.voids_of(day)?,
            last_day: self.last_day()?,
            ordinals: Vec::new(),
            // Never this handle's generation: `apply_plan` refuses it.
            generation: u64::MAX,
        })
    }

    /// Commits a plan made from `snapshot`, in one durable commit: its releases, the new state
    /// of every order it examined (released, or the verdict of one that waits or is held), the
    /// stock it took, the day as the last batched (unless a later one is), the day's files
    /// marked due, and the schedule's `trigger` it ran for. The plan must have been checked
    /// (`planner::verify`); a snapshot older than this handle's last commit is refused.
    pub fn apply_plan(
        &mut self,
        snapshot: DaySnapshot,
        plan: &Plan,
        places: &Places,
        trigger: Option<DateTime<Utc>>,
    ) -> Result<()> {
        if snapshot.generation != self.generation || snapshot.day != plan.day {
            return Err(StoreError::Stale {
                path: self.path.clone(),
            });
        }
        let mut commit = Commit::new();
        commit.put_releases(&plan.releases);
        for (sku, taken) in &plan.stock_taken {
            let mut level = self.stock_level(sku)?;
            level.released += taken;
            commit.put_stock(sku, &level);
        }
        if snapshot.last_day.is_none_or(|last| last < plan.day) {
            commit.set_last_day(plan.day);
        }
        commit.mark_logs_due(plan.day);
        if let Some(trigger) = trigger {
            commit.set_last_trigger(trigger);
        }
        let states = self.states()?;
        for place in &places.released {
            states.set(snapshot.ordinals[*place], StateByte::Released);
        }
        let mut details: BTreeMap<u64, Vec<(u32, Detail)>> = BTreeMap::new();
        let mut touch = |ordinal: Ordinal| {
            details.entry(ordinal / STATE_BLOCK_ORDERS).or_default();
        };
        for place in &places.released {
            touch(snapshot.ordinals[*place]);
        }
        let not_due = StateByte::Open(Some(Verdict::Waiting(WaitReason::NotDue)));
        for place in &places.not_due {
            let ordinal = snapshot.ordinals[*place];
            states.set(ordinal, not_due);
            touch(ordinal);
        }
        let verdicts = places
            .verdicts
            .iter()
            .zip(&plan.verdicts)
            .zip(&plan.details);
        for ((place, (_, verdict)), detail) in verdicts {
            let ordinal = snapshot.ordinals[*place];
            states.set(ordinal, StateByte::Open(Some(*verdict)));
            let offset = (ordinal % STATE_BLOCK_ORDERS) as u32;
            let block = details.entry(ordinal / STATE_BLOCK_ORDERS).or_default();
            block.push((offset, detail.clone()));
        }
        commit.put_states(states);
        for (block_no, mut entries) in details {
            entries.sort_unstable_by_key(|(offset, _)| *offset);
            let block = DetailBlock {
                day: plan.day,
                cutoff: plan.cutoff,
                entries,
            };
            commit.details.push((block_no, encode(&block)));
        }
        self.commit(commit)
    }

    /// Clears the mark that `day`'s referral files are due, once they are written; without
    /// waiting for the disk, as [`Store::logs_written`].
    pub fn referral_files_written(&mut self, day: NaiveDate) -> Result<()> {
        let mut commit = Commit::new();
        commit.referrals_due.push((day_number(day), false));
        self.write(commit, redb::Durability::None)
    }

    /// Days whose referral files must be (re)written from the store.
    pub fn referrals_due(&self) -> Result<Vec<NaiveDate>> {
        self.reader()?.due_days(REFERRALS_DUE, "referrals-due")
    }

    /// Clears the mark that `day`'s release log and manifest are due, once they are written.
    /// Without waiting for the disk: losing this only has them written again, identically.
    pub fn logs_written(&mut self, day: NaiveDate) -> Result<()> {
        let mut commit = Commit::new();
        commit.clear_logs_due(day);
        self.write(commit, redb::Durability::None)
    }

    /// Applies `commit` atomically and makes it durable before returning. A failed commit is
    /// never retried as if it could succeed: every later one is refused.
    fn commit(&mut self, commit: Commit) -> Result<()> {
        let result = self.write(commit, redb::Durability::Immediate);
        match &result {
            Ok(()) => {
                self.generation += 1;
                if let Some(states) = &mut self.ledger.states {
                    states.clean();
                }
            }
            // What the ledger holds may be ahead of the disk.
            Err(_) => self.ledger = Ledger::default(),
        }
        result
    }

    /// The id index, read when first needed.
    fn index(&mut self) -> Result<&mut IdIndex> {
        if self.ledger.index.is_none() {
            self.ledger.index = Some(self.read_index()?);
        }
        Ok(self.ledger.index.as_mut().expect("read above"))
    }

    /// The state bytes, read when first needed.
    fn states(&mut self) -> Result<&mut States> {
        if self.ledger.states.is_none() {
            self.ledger.states = Some(self.read_states()?);
        }
        Ok(self.ledger.states.as_mut().expect("read above"))
    }

    /// An order, where it is and its state, by id.
    fn find(&mut self, order_id: &str) -> Result<Option<(Ordinal, Order, OrderState)>> {
        self.index()?;
        self.states()?;
        let (index, states) = (
            self.ledger.index.as_ref().expect("read above"),
            self.ledger.states.as_ref().expect("read above"),
        );
        self.order_in(index, states, order_id)
    }

    fn write(&mut self, commit: Commit, durability: redb::Durability) -> Result<()> {
        if self.is_unsynced() {
            return Err(StoreError::Unsynced {
                path: self.path.clone(),
            });
        }
        if commit.is_empty() {
            return Ok(());
        }
        // Stored chunks may change: lookups read them afresh.
        self.chunk_cache.lock().expect("chunk cache lock").clear();
        let result = self.apply(commit, durability);
        if result.is_err() {
            // redb refuses further writes after a failed commit as well: nothing more is
            // written by this process.
            self.unsynced.store(true, Ordering::SeqCst);
        }
        result
    }

    fn apply(&self, commit: Commit, durability: redb::Durability) -> Result<()> {
        let mut txn = self.db().begin_write().map_err(|e| self.engine(e))?;
        txn.set_durability(durability)
            .map_err(|e| self.engine(redb::Error::from(e)))?;
        self.put(&txn, &commit)?;
        crate::crashpoint::reached("store-after-apply");
        txn.commit().map_err(|e| self.engine(e))
    }

    /// Writes what `commit` gathered into an open write transaction.
    fn put(&self, txn: &redb::WriteTransaction, commit: &Commit) -> Result<()> {
        {
            let engine = |error: redb::StorageError| self.engine(error);
            let open = |error: redb::TableError| self.engine(error);
            if !commit.meta.is_empty() || !commit.meta_removed.is_empty() {
                let mut table = txn.open_table(META).map_err(open)?;
                for (key, value) in &commit.meta {
                    table.insert(*key, value.as_slice()).map_err(engine)?;
                }
                for key in &commit.meta_removed {
                    table.remove(*key).map_err(engine)?;
                }
            }
            macro_rules! put_all {
                ($field:ident, $table:expr, $key:ident => $borrowed:expr) => {
                    if !commit.$field.is_empty() {
                        let mut table = txn.open_table($table).map_err(open)?;
                        for ($key, value) in &commit.$field {
                            table.insert($borrowed, value.as_slice()).map_err(engine)?;
                        }
                    }
                };
                ($field:ident, $table:expr) => {
                    put_all!($field, $table, key => key)
                };
            }
            put_all!(items, ITEMS, key => key.as_str());
            put_all!(stock, STOCK, key => key.as_str());
            put_all!(applied, APPLIED, key => key.as_str());
            put_all!(orders, ORDERS);
            put_all!(order_ids, ORDER_IDS);
            put_all!(states, STATES);
            put_all!(details, DETAILS);
            put_all!(releases, RELEASES);
            put_all!(release_items, RELEASE_ITEMS);
            put_all!(release_filings, RELEASE_FILINGS);
            put_all!(release_duties, RELEASE_DUTIES);
            put_all!(duty_rates, DUTY_RATES, key => key.as_str());
            put_all!(voids, VOIDS);
            put_all!(referrals, REFERRALS);
            for (marks, definition) in [
                (&commit.logs_due, LOGS_DUE),
                (&commit.referrals_due, REFERRALS_DUE),
            ] {
                if marks.is_empty() {
                    continue;
                }
                let mut table = txn.open_table(definition).map_err(open)?;
                for (day, due) in marks {
                    if *due {
                        table.insert(day, ()).map_err(engine)?;
                    } else {
                        table.remove(day).map_err(engine)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A consistent view of the store as it is now, which later commits do not change.
    pub fn reader(&self) -> Result<StoreReader> {
        let txn = self.db().begin_read().map_err(|e| self.engine(e))?;
        Ok(StoreReader {
            txn,
            path: self.path.clone(),
        })
    }

    /// One item of the catalogue.
    pub fn item(&self, sku: &str) -> Result<Option<Item>> {
        self.reader()?.item(sku)
    }

    /// Stock levels by SKU.
    pub fn stock(&self) -> Result<BTreeMap<String, StockLevel>> {
        self.reader()?.stock()
    }

    /// The stock level of one SKU (nothing received yet when it has none).
    pub fn stock_level(&self, sku: &str) -> Result<StockLevel> {
        self.reader()?.stock_level(sku)
    }

    /// Every accepted order with its state, in intake order.
    pub fn order_views(&self) -> Result<Vec<OrderView>> {
        self.reader()?.order_views()
    }

    pub fn release(&self, release_id: &str) -> Result<Option<Release>> {
        self.reader()?.release(release_id)
    }

    pub fn order_states(&self) -> Result<Vec<(Order, OrderState)>> {
        self.reader()?.order_states()
    }

    /// The committed releases of `day`, in release id order.
    pub fn voids_of(&self, day: NaiveDate) -> Result<Vec<Void>> {
        self.reader()?.voids_of(day)
    }

    pub fn voids(&self) -> Result<Vec<Void>> {
        self.reader()?.voids()
    }

    /// Every referral, by day and sequence.
    pub fn referrals(&self) -> Result<Vec<Referral>> {
        self.reader()?.referrals()
    }

    /// The referrals of `day`, in sequence.
    pub fn referrals_of(&self, day: NaiveDate) -> Result<Vec<Referral>> {
        self.reader()?.referrals_of(day)
    }

    /// The referral of an order, if it was referred.
    pub fn referral(&self, order_id: &str) -> Result<Option<Referral>> {
        self.reader()?.referral_of(order_id)
    }

    pub fn releases_of(&self, day: NaiveDate) -> Result<Vec<Release>> {
        self.reader()?.releases_of(day)
    }

    /// Every committed release, by day and release id.
    pub fn releases(&self) -> Result<Vec<Release>> {
        self.reader()?.releases()
    }

    /// The report of an input applied under this mark (see [`Applied`]).
    pub fn applied(&self, mark: &str) -> Result<Option<String>> {
        self.reader()?.applied(mark)
    }

    /// The scheduled trigger the last scheduled batch ran for.
    pub fn last_trigger(&self) -> Result<Option<DateTime<Utc>>> {
        self.reader()?.last_trigger()
    }

    /// The last release day a batch ran for.
    pub fn last_day(&self) -> Result<Option<NaiveDate>> {
        self.reader()?.last_day()
    }

    /// Days whose release log and manifest must be (re)written from the store.
    pub fn logs_due(&self) -> Result<Vec<NaiveDate>> {
        self.reader()?.logs_due()
    }

    fn next_ordinal(&self) -> Result<Ordinal> {
        self.reader()?.next_ordinal()
    }

    fn read_index(&self) -> Result<IdIndex> {
        self.reader()?.index()
    }

    fn read_states(&self) -> Result<States> {
        self.reader()?.states()
    }

    fn meta<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        self.reader()?.meta(name)
    }

    fn state_of(&self, states: &States, ordinal: Ordinal) -> Result<StateByte> {
        states
            .get(ordinal)
            .ok_or_else(|| missing_state(&self.path, ordinal))
    }

    fn engine(&self, source: impl Into<redb::Error>) -> StoreError {
        StoreError::Engine {
            path: self.path.clone(),
            source: source.into(),
        }
    }

    fn corrupt(&self, table: &'static str, key: &str, message: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            table,
            key: key.to_owned(),
            message,
        }
    }

    /// The order with this ordinal.
    fn order_at(&self, ordinal: Ordinal) -> Result<Order> {
        let (first, chunk) = self.chunk_of(ordinal)?;
        usize::try_from(ordinal - first)
            .ok()
            .and_then(|offset| chunk.get(offset).cloned())
            .ok_or_else(|| {
                self.corrupt(
                    "orders",
                    &first.to_string(),
                    format!("no order {ordinal} in the chunk"),
                )
            })
    }

    /// Finds an order by id with the id index.
    fn find_order(&self, index: &IdIndex, order_id: &str) -> Result<Option<(Ordinal, Order)>> {
        for ordinal in index.candidates(id_hash(order_id)) {
            let order = self.order_at(ordinal)?;
            if order.order_id == order_id {
                return Ok(Some((ordinal, order)));
            }
        }
        Ok(None)
    }

    /// An order and its state, by id, with an index and states.
    fn order_in(
        &self,
        index: &IdIndex,
        states: &States,
        order_id: &str,
    ) -> Result<Option<(Ordinal, Order, OrderState)>> {
        let Some((ordinal, order)) = self.find_order(index, order_id)? else {
            return Ok(None);
        };
        let state = match self.state_of(states, ordinal)? {
            StateByte::Open(verdict) => open_state(verdict),
            StateByte::Cancelled => OrderState::Cancelled,
            StateByte::Released => {
                let (release_id, day) =
                    self.reader()?.release_of(&order.order_id)?.ok_or_else(|| {
                        self.corrupt(
                            "orders",
                            order_id,
                            "released, but in no stored release".into(),
                        )
                    })?;
                OrderState::Released { release_id, day }
            }
            StateByte::Referred(reason) => {
                let referral = self.reader()?.referral_of(&order.order_id)?;
                let referral = referral.ok_or_else(|| {
                    self.corrupt("orders", order_id, "referred, but has no referral".into())
                })?;
                OrderState::Referred {
                    reason,
                    day: referral.day,
                }
            }
        };
        Ok(Some((ordinal, order, state)))
    }

    /// Every open (pending or held) order, in intake order, with their ordinals beside them.
    ///
    /// The chunks are read and decoded a group at a time (about `DECODE_GROUP_ORDERS` open
    /// orders), each group on as many threads as the machine has cores (at most
    /// `DECODE_THREADS_MAX`), and the stored bytes of a group are freed before the next is read:
    /// the orders of a large batch take hundreds of megabytes decoded, and holding their stored
    /// bytes as well would add hundreds more. The result is sized once, from the state bytes:
    /// growing vectors of orders copies them again into freshly zeroed pages.
    fn open_orders(&self, states: &States) -> Result<OpenOrders> {
        self.open_orders_in_groups(states, DECODE_GROUP_ORDERS)
    }

    fn open_orders_in_groups(&self, states: &States, group_orders: usize) -> Result<OpenOrders> {
        let Some(first_open) = states.first_open() else {
            return Ok(OpenOrders::default());
        };
        let (start, _) = self.chunk_of(first_open)?;
        let next = self.next_ordinal()?;
        let total = states.open_between(start, next);
        let mut open = OpenOrders {
            ordinals: Vec::with_capacity(total),
            orders: Vec::with_capacity(total),
        };
        let mut group: Vec<OrderChunk> = Vec::new();
        let mut group_open = 0;
        let mut take =
            |previous: Option<(Ordinal, &[u8])>, end: Ordinal, last: bool| -> Result<()> {
                // Only chunks that hold an open order are copied out and decoded: an old held
                // order must not make every batch decode every order taken in since.
                if let Some((first, bytes)) = previous {
                    if states.may_hold_open(first, end) {
                        let chunk_open = states.open_between(first, end);
                        group_open += chunk_open;
                        group.push(OrderChunk {
                            first,
                            open: chunk_open,
                            bytes: bytes.to_vec(),
                        });
                    }
                }
                if group_open >= group_orders || (last && !group.is_empty()) {
                    self.decode_group(&group, group_open, states, &mut open)?;
                    group.clear();
                    group_open = 0;
                }
                Ok(())
            };
        let reader = self.reader()?;
        let table = reader.table(ORDERS)?;
        // A chunk ends where the next one starts, so each is kept until the next is read.
        let mut previous: Option<(Ordinal, redb::AccessGuard<&[u8]>)> = None;
        for entry in table.range(start..).map_err(|e| self.engine(e))? {
            let (first, bytes) = entry.map_err(|e| self.engine(e))?;
            let first = first.value();
            take(
                previous.as_ref().map(|(at, bytes)| (*at, bytes.value())),
                first,
                false,
            )?;
            previous = Some((first, bytes));
        }
        take(
            previous.as_ref().map(|(at, bytes)| (*at, bytes.value())),
            next,
            true,
        )?;
        Ok(open)
    }

    /// Decodes the open orders of `chunks` (`count` of them) on as many threads as the machine
    /// has cores, and appends them to `open` in intake order.
    fn decode_group(
        &self,
        chunks: &[OrderChunk],
        count: usize,
        states: &States,
        open: &mut OpenOrders,
    ) -> Result<()> {
        let decode_part = |part: &[OrderChunk], capacity: usize| -> Result<OpenOrders> {
            let mut decoded = OpenOrders {
                ordinals: Vec::with_capacity(capacity),
                orders: Vec::with_capacity(capacity),
            };
            for chunk in part {
                let orders: Vec<Order> = decode(&chunk.bytes)
                    .map_err(|m| self.corrupt("orders", &chunk.first.to_string(), m))?;
                for (offset, order) in orders.into_iter().enumerate() {
                    let ordinal = chunk.first + offset as Ordinal;
                    if let StateByte::Open(_) = self.state_of(states, ordinal)? {
                        decoded.ordinals.push(ordinal);
                        decoded.orders.push(order);
                    }
                }
            }
            Ok(decoded)
        };
        // Parts of about equal numbers of open orders.
        let threads = crate::machine::cores().clamp(1, DECODE_THREADS_MAX);
        let per_thread = count.div_ceil(threads).max(1);
        let mut parts: Vec<(&[OrderChunk], usize)> = Vec::new();
        let (mut from, mut part_open) = (0, 0);
        for (at, chunk) in chunks.iter().enumerate() {
            part_open += chunk.open;
            if part_open >= per_thread || at + 1 == chunks.len() {
                parts.push((&chunks[from..=at], part_open));
                (from, part_open) = (at + 1, 0);
            }
        }
        let decoded: Vec<Result<OpenOrders>> = std::thread::scope(|scope| {
            let handles: Vec<_> = parts
                .iter()
                .map(|(part, part_open)| scope.spawn(move || decode_part(part, *part_open)))
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("a decoding thread panicked"))
                .collect()
        });
        for part in decoded {
            let part = part?;
            open.ordinals.extend(part.ordinals);
            open.orders.extend(part.orders);
        }
        Ok(())
    }

    /// The chunk holding `ordinal`: its first ordinal and its orders.
    fn chunk_of(&self, ordinal: Ordinal) -> Result<(Ordinal, Arc<Vec<Order>>)> {
        let reader = self.reader()?;
        reader.with_chunk_of(ordinal, |first, bytes| {
            if let Some(chunk) = self
                .chunk_cache
                .lock()
                .expect("chunk cache lock")
                .get(&first)
            {
                return Ok((first, chunk.clone()));
            }
            let orders: Vec<Order> =
                decode(bytes).map_err(|m| self.corrupt("orders", &first.to_string(), m))?;
            let chunk = Arc::new(orders);
            let mut cache = self.chunk_cache.lock().expect("chunk cache lock");
            if cache.len() >= CHUNK_CACHE_MAX {
                cache.clear();
            }
            cache.insert(first, chunk.clone());
            Ok((first, chunk))
        })
    }
}

impl OrderIntake<'_> {
    /// The item catalogue orders are checked against.
    pub fn items(&self) -> Arc<HashMap<String, Item>> {
        self.store
            .ledger
            .catalogue
            .clone()
            .expect("read when the intake began")
    }

    /// Offers an order: taken in unless the store or this intake holds its id already.
    pub fn offer(&mut self, order: PreparedOrder) -> Result<Offered> {
        let candidates: Vec<Ordinal> = self
            .store
            .ledger
            .index
            .as_ref()
            .expect("read when the intake began")
            .candidates(order.id_hash)
            .collect();
        for ordinal in candidates {
            let held = if ordinal >= self.first {
                self.order_at(ordinal)?
            } else {
                self.store.order_at(ordinal)?
            };
            if held.order_id != order.order_id() {
                continue;
            }
            let same = held == order.decode();
            return Ok(if ordinal >= self.first {
                Offered::Earlier {
                    place: (ordinal - self.first) as usize,
                    same,
                }
            } else if same {
                Offered::Same
            } else {
                Offered::Other
            });
        }
        let place = (self.next - self.first) as usize;
        self.add(order)?;
        Ok(Offered::Taken { place })
    }

    /// Takes in an order known to be new.
    fn add(&mut self, order: PreparedOrder) -> Result<()> {
        let ordinal = self.next;
        self.next += 1;
        self.store
            .ledger
            .index
            .as_mut()
            .expect("read when the intake began")
            .insert(order.id_hash, ordinal);
        // A chunk is cut before the order that would take it past its bytes.
        if self.chunk_bytes + order.bytes.len() > ORDER_CHUNK_BYTES {
            self.write_chunk()?;
        }
        self.chunk_bytes += order.bytes.len();
        self.chunk.push(order);
        if self.chunk.len() >= ORDER_CHUNK_MAX {
            self.write_chunk()?;
        }
        Ok(())
    }

    /// How many orders this intake has taken in.
    pub fn taken(&self) -> usize {
        (self.next - self.first) as usize
    }

    /// Commits every order taken in, and `applied`, durably; then the intake is over.
    pub fn finish(mut self, applied: Option<Applied>) -> Result<()> {
        self.write_chunk()?;
        let txn = self.txn.take().expect("an intake finishes once");
        let store = &mut *self.store;
        let mut commit = Commit::new();
        mark(&mut commit, applied);
        if self.next > self.first {
            commit.set_next_ordinal(self.next);
            commit.put_states(
                store
                    .ledger
                    .states
                    .as_ref()
                    .expect("read when the intake began"),
            );
        }
        let result = store.put(&txn, &commit).and_then(|()| {
            crate::crashpoint::reached("store-after-apply");
            txn.commit().map_err(|e| store.engine(e))
        });
        match result {
            Ok(()) => {
                store.generation += 1;
                if let Some(states) = &mut store.ledger.states {
                    states.clean();
                }
                Ok(())
            }
            Err(error) => {
                store.unsynced.store(true, Ordering::SeqCst);
                store.ledger = Ledger::default();
                Err(error)
            }
        }
    }

    /// Writes the accepted orders not yet written as one chunk, with their id hashes, and marks
    /// them pending.
    fn write_chunk(&mut self) -> Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let first = self.next - self.chunk.len() as Ordinal;
        let store = &mut *self.store;
        let txn = self
            .txn
            .as_ref()
            .expect("an intake writes until it finishes");
        let (orders, hashes) = layout::order_chunk(&self.chunk);
        // A write that fails (a full disk) fails the whole intake, and every later commit: what
        // redb holds may be ahead of the disk.
        let engine = |error: redb::Error| {
            store.unsynced.store(true, Ordering::SeqCst);
            store.engine(error)
        };
        {
            let mut table = txn.open_table(ORDERS).map_err(|e| engine(e.into()))?;
            table
                .insert(first, orders.as_slice())
                .map_err(|e| engine(e.into()))?;
            let mut table = txn.open_table(ORDER_IDS).map_err(|e| engine(e.into()))?;
            table
                .insert(first, hashes.as_slice())
                .map_err(|e| engine(e.into()))?;
        }
        store
            .ledger
            .states
            .as_mut()
            .expect("read when the intake began")
            .set_range(first, self.chunk.len() as u64, StateByte::Open(None));
        self.chunk.clear();
        self.chunk_bytes = 0;
        Ok(())
    }

    /// An order this intake took in, by its ordinal.
    fn order_at(&self, ordinal: Ordinal) -> Result<Order> {
        let pending = self.next - self.chunk.len() as Ordinal;
        if ordinal >= pending {
            return Ok(self.chunk[(ordinal - pending) as usize].decode());
        }
        let txn = self
            .txn
            .as_ref()
            .expect("an intake reads until it finishes");
        let engine = |error: redb::Error| self.store.engine(error);
        let table = txn.open_table(ORDERS).map_err(|e| engine(e.into()))?;
        let found = table
            .range(..=ordinal)
            .map_err(|e| engine(e.into()))?
            .next_back()
            .transpose()
            .map_err(|e| engine(e.into()))?;
        let (first, bytes) = found.ok_or_else(|| {
            self.store.corrupt(
                "orders",
                &ordinal.to_string(),
                "no chunk holds this ordinal".into(),
            )
        })?;
        let first = first.value();
        let mut orders: Vec<Order> = decode(bytes.value())
            .map_err(|m| self.store.corrupt("orders", &first.to_string(), m))?;
        let offset = (ordinal - first) as usize;
        if offset >= orders.len() {
            return Err(self.store.corrupt(
                "orders",
                &first.to_string(),
                format!("no order {ordinal}"),
            ));
        }
        Ok(orders.swap_remove(offset))
    }
}

impl Drop for OrderIntake<'_> {
    /// An intake dropped before it finished commits nothing; what it added to the id index and
    /// the state bytes is forgotten, to be read again from the store.
    fn drop(&mut self) {
        if self.txn.take().is_some() {
            self.store.ledger.index = None;
            self.store.ledger.states = None;
        }
    }
}

impl Drop for Store {
    /// redb closes the file cleanly as it is dropped, with a last write and fsync of its own.
    /// After a failed commit nothing more is written: the database is left to the end of the
    /// process, and the next open recovers the last durable commit.
    fn drop(&mut self) {
        if self.is_unsynced() {
            std::mem::forget(self.db.take());
        }
    }
}

/// The error for an order without a valid state byte, which only a damaged store can give
/// (every intake writes its orders' bytes in the same commit).
fn missing_state(path: &Path, ordinal: Ordinal) -> StoreError {
    StoreError::Corrupt {
        path: path.to_owned(),
        table: "states",
        key: (ordinal / STATE_BLOCK_ORDERS).to_string(),
        message: format!("no valid state byte for order {ordinal}"),
    }
}

/// Records `applied` in `commit`.
fn mark(commit: &mut Commit, applied: Option<Applied>) {
    if let Some(Applied { mark, report }) = applied {
        commit.mark_applied(mark, report);
    }
}

/// What wrote the store in `folder`, if not this build: an earlier build kept its store in
/// sled, whose folder holds `conf` and `db`.
fn foreign_store(folder: &Path) -> Option<String> {
    let sled = ["conf", "db"]
        .iter()
        .all(|name| folder.join(name).is_file());
    sled.then(|| "an earlier build of border-release (sled files conf and db)".to_owned())
}

/// Makes the store's file owner-only: it holds names and addresses.
fn restrict(file: &fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

fn day_number(day: NaiveDate) -> i32 {
    day.num_days_from_ce()
}

fn release_key_text((day, first): (i32, u64)) -> String {
    match NaiveDate::from_num_days_from_ce_opt(day) {
        Some(day) => format!("{day}/{first}"),
        None => format!("{day}/{first}"),
    }
}

fn open_state(verdict: Option<Verdict>) -> OrderState {
    match verdict {
        None => OrderState::Pending(None),
        Some(Verdict::Waiting(reason)) => OrderState::Pending(Some(reason)),
        Some(Verdict::Held(reason)) => OrderState::Held(reason),
    }
}

/// A stored release chunk, as written (see [`StoreReader::release_chunk_of`]).
enum ReleaseChunk {
    Whole(Vec<Release>),
    Stored(release_chunk::StoredChunk),
}

/// The open orders of the store, in intake order, and their ordinals at the same places.
#[derive(Debug, Default)]
struct OpenOrders {
    ordinals: Vec<Ordinal>,
    orders: Vec<Order>,
}

/// A stored order chunk to decode, with how many of its orders are open.
struct OrderChunk {
    first: Ordinal,
    open: usize,
    bytes: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::layout::codec;
    use super::*;
    use crate::model::{Address, Consignee, FxUsed, OrderLine, ReleaseLine, Text, Verdict};
    use bincode::Options;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    /// Bytes written by format version 1, kept in `tests/fixtures/store-v1/`. They must decode
    /// to the same values for as long as version 1 stores may exist. Set
    /// `BORDER_RELEASE_WRITE_FIXTURES=1` only when adding a fixture for a new value type.
    fn fixture<T: serde::Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
        name: &str,
        value: T,
    ) {
        let bytes = fixture_bytes(&format!("store-v1/{name}"), &encode(&value));
        assert_eq!(bytes[0], 1, "{name}: fixture is not format version 1");
        assert_eq!(
            decode::<T>(&bytes).unwrap(),
            value,
            "{name}: version 1 bytes decode differently"
        );
    }

    /// The bytes kept in `tests/fixtures/<name>.hex`, written from `fresh` when
    /// `BORDER_RELEASE_WRITE_FIXTURES` is set and the file is missing.
    fn fixture_bytes(name: &str, fresh: &[u8]) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(format!("{name}.hex"));
        if std::env::var_os("BORDER_RELEASE_WRITE_FIXTURES").is_some() && !path.exists() {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            let hex: String = fresh.iter().map(|byte| format!("{byte:02x}")).collect();
            fs::write(&path, hex + "\n").unwrap();
        }
        let text =
            fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let text = text.trim();
        (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
            .collect()
    }

    /// A second release of the sample's day: two orders in dollars, one of them with two lines,
    /// and a SKU the first release shares.
    fn second_release() -> Release {
        let mut release = sample_release();
        release.release_id = "2026-11-24-000002".into();
        release.recipient_key = "luis gomez|55 elm st|chula vista|CA|91910".into();
        release.consignee.name = "Luis Gomez".into();
        release.orders = vec!["SO-2001".into(), "SO-2002".into()];
        let line = |order_id: &str, sku: &str, description: &str, cents: i64| ReleaseLine {
            order_id: order_id.into(),
            item: std::sync::Arc::new(crate::model::ItemFacts {
                sku: sku.into(),
                description: description.into(),
                hts: "6109.10.0012".into(),
                origin: "MX".into(),
            }),
            qty: 1,
            currency: "USD".into(),
            unit_price: Decimal::new(cents, 2),
            value_usd: Decimal::new(cents, 2),
        };
        release.lines = vec![
            line("SO-2001", "TSHIRT-M", "Cotton T-shirt", 1999),
            line("SO-2002", "TSHIRT-L", "Cotton T-shirt, large", 2199),
            line("SO-2002", "TSHIRT-M", "Cotton T-shirt", 1999),
        ];
        release.value_usd = dec("61.97");
        release.fx.clear();
        release
    }

    /// A release chunk and its wave's item table as format version 2 writes them, kept in
    /// `tests/fixtures/store-v2/`: they must read back as the same releases for as long as
    /// such stores may exist, and this build must still write them byte for byte.
    #[test]
    fn version_2_release_chunks_still_decode() {
        let releases = vec![sample_release(), second_release()];
        let wave = release_chunk::encode(&releases, RELEASE_CHUNK_MAX).expect("format 2 applies");
        assert_eq!(wave.items.len(), 2, "one entry per SKU");
        let versioned = |value: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = vec![RELEASE_VALUE_VERSION];
            value(&mut bytes);
            bytes
        };
        let items = versioned(&|bytes| codec().serialize_into(bytes, &wave.items).unwrap());
        let chunk = versioned(&|bytes| codec().serialize_into(bytes, &wave.chunks[0].1).unwrap());
        let items_kept = fixture_bytes("store-v2/release-items", &items);
        let chunk_kept = fixture_bytes("store-v2/release-chunk", &chunk);
        assert_eq!(items, items_kept, "the item table is written another way");
        assert_eq!(
            chunk, chunk_kept,
            "the release chunk is written another way"
        );

        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let day = day("2026-11-24");
        let mut commit = Commit::new();
        commit
            .release_items
            .push(((day_number(day), 1), items_kept));
        commit.releases.push(((day_number(day), 1), chunk_kept));
        store.commit(commit).unwrap();
        assert_eq!(store.releases_of(day).unwrap(), releases);
        assert_eq!(
            store.reader().unwrap().release_of("SO-2002").unwrap(),
            Some(("2026-11-24-000002".to_owned(), day))
        );
    }

    #[test]
    fn releases_are_read_back_whole_in_either_format() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let monday = day("2026-11-24");
        // A wave in format 1, as a layout-1 store holds it, then one in format 2.
        let first = sample_release();
        let mut commit = Commit::new();
        commit.releases.push((
            (day_number(monday), 1),
            encode(std::slice::from_ref(&first)),
        ));
        store.commit(commit).unwrap();
        let mut second = second_release();
        second.lines[1].currency = "MXN".into();
        let mut third = second_release();
        third.release_id = "2026-11-24-000003".into();
        third.orders = vec!["SO-3001".into(), "SO-2001".into()];
        third.lines[0].order_id = "SO-3001".into();
        let mut commit = Commit::new();
        commit.put_releases(&[second.clone(), third.clone()]);
        store.commit(commit).unwrap();
        assert_eq!(store.meta::<u32>(FORMAT).unwrap(), Some(LAYOUT_VERSION));
        let all = vec![first.clone(), second.clone(), third.clone()];
        assert_eq!(store.releases_of(monday).unwrap(), all);
        let every: Vec<Release> = store.releases().unwrap();
        assert_eq!(every, all);
        assert_eq!(
            store.reader().unwrap().release_of("SO-3001").unwrap(),
            Some(("2026-11-24-000003".to_owned(), monday))
        );

        // Releases that share no policy, or whose id is not their sequence's, are stored in
        // format 1, and read back the same.
        let mut odd_policy = sample_release();
        odd_policy.release_id = "2026-11-25-000001".into();
        odd_policy.day = day("2026-11-25");
        let mut other = odd_policy.clone();
        other.release_id = "2026-11-25-000002".into();
        other.policy = "informal-entry".into();
        assert!(release_chunk::encode(&[odd_policy.clone(), other.clone()], 8).is_none());
        let mut odd_id = odd_policy.clone();
        odd_id.release_id = "2026-11-25-03".into();
        assert!(release_chunk::encode(&[odd_id], 8).is_none());
        let mut commit = Commit::new();
        commit.put_releases(&[odd_policy.clone(), other.clone()]);
        store.commit(commit).unwrap();
        assert_eq!(
            store.releases_of(odd_policy.day).unwrap(),
            vec![odd_policy, other]
        );
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::from_str(text).unwrap()
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn sample_order() -> Order {
        Order {
            order_id: "SO-1001".into(),
            placed_at: "2026-11-24T02:04:00Z".parse().unwrap(),
            recipient: Consignee {
                name: "Ana Ruiz".into(),
                customer_id: Some("c-77".into()),
                address: Address {
                    line1: "1200 Market St".into(),
                    line2: Some("Apt 4".into()),
                    city: "San Diego".into(),
                    state: "CA".into(),
                    postal_code: "92101".into(),
                    country: "US".into(),
                },
            },
            currency: "MXN".into(),
            lines: vec![OrderLine {
                sku: "TSHIRT-M".into(),
                qty: 2,
                unit_price: dec("369.50"),
            }],
        }
    }

    fn sample_release() -> Release {
        let order = sample_order();
        Release {
            release_id: "2026-11-24-000001".into(),
            day: day("2026-11-24"),
            policy: "section-321".into(),
            lane: "de-minimis".into(),
            recipient_key: "ana ruiz|1200 market st 4|san diego|CA|92101".into(),
            consignee: order.recipient.clone(),
            orders: vec![order.order_id.clone()],
            lines: vec![ReleaseLine {
                order_id: order.order_id.clone(),
                item: std::sync::Arc::new(crate::model::ItemFacts {
                    sku: "TSHIRT-M".into(),
                    description: "Cotton T-shirt".into(),
                    hts: "6109.10.0012".into(),
                    origin: "MX".into(),
                }),
                qty: 2,
                currency: "MXN".into(),
                unit_price: dec("369.50"),
                value_usd: dec("39.98"),
            }],
            value_usd: dec("39.98"),
            fx: vec![FxUsed {
                currency: "MXN".into(),
                usd: dec("0.0541"),
                from: day("2026-10-01"),
            }],
            released_at: "2026-11-24T14:00:03Z".parse().unwrap(),
            filed: None,
            assessed: None,
        }
    }

    #[test]
    fn version_1_values_still_decode() {
        fixture("layout", 1_u32);
        fixture("ordinal", 1_234_567_u64);
        fixture("day", day("2026-11-24"));
        let mezcal = Item {
            sku: "MEZCAL-750".into(),
            description: "Mezcal 750 ml".into(),
            hts: "2208.90.8000".into(),
            origin: "MX".into(),
            flags: vec![crate::model::ItemFlag::IrcTax, crate::model::ItemFlag::Pga],
            mid: None,
            usmca: false,
        };
        // Items of format version 1 have no MID and claim no USMCA origin.
        let v1 = fixture_bytes("store-v1/item", &[]);
        assert_eq!(layout::decode_item(&v1).unwrap(), mezcal);
        // Format version 3 has both.
        let filed = Item {
            mid: Some("MXTEQSAB123GUA".into()),
            usmca: true,
            ..mezcal
        };
        let mut commit = Commit::new();
        commit.put_item(&filed);
        let v3 = fixture_bytes("store-v4/item", &commit.items[0].1);
        assert_eq!(v3[0], layout::ITEM_VALUE_VERSION);
        assert_eq!(layout::decode_item(&v3).unwrap(), filed);
        fixture(
            "stock",
            StockLevel {
                received: 120,
                released: 30,
                adjusted: -2,
            },
        );
        fixture("order-chunk", vec![sample_order(), sample_order()]);
        fixture("id-hashes", vec![id_hash("SO-1001"), id_hash("SO-1002")]);
        let states: Vec<u8> = (0..=0xff_u8)
            .filter(|byte| StateByte::decode(*byte).is_some())
            .collect();
        assert_eq!(
            states,
            vec![
                0x00, 0x01, 0x02, 0x03, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x20, 0x30, 0x40, 0x41,
                0x42, 0x43, 0x44, 0x45
            ]
        );
        assert_eq!(
            StateByte::decode(0x42).map(StateByte::words),
            Some(("referred", Some("excluded-goods")))
        );
        // The state bytes of layout 3 keep their meaning.
        let layout_3: Vec<u8> = states
            .into_iter()
            .filter(|byte| ![0x03, 0x15].contains(byte) && *byte < 0x40)
            .collect();
        fixture("state-block", layout_3);
        fixture("release-chunk", vec![sample_release()]);
        fixture(
            "duty-rate",
            crate::model::DutyRate {
                hts_prefix: "610910".into(),
                origin: "*".into(),
                program: "mfn".into(),
                rate_percent: Decimal::from_str("16.5").unwrap(),
                from: day("2026-01-01"),
                usmca_exempt: true,
                source: "HTSUS 6109.10.00".into(),
            },
        );
        fixture(
            "assessed",
            crate::model::Assessed::new(
                vec![crate::model::AssessedItem {
                    sku: "TSHIRT-M".into(),
                    usmca: false,
                    known: true,
                    rates: vec![crate::model::ProgramRate {
                        program: "section-301".into(),
                        rate_percent: Decimal::from_str("7.5").unwrap(),
                    }],
                }],
                vec![crate::model::Fee {
                    name: "merchandise-processing-fee".into(),
                    usd: Decimal::from_str("2.69").unwrap(),
                    usmca_exempt: true,
                }],
            ),
        );
        fixture(
            "detail-block",
            DetailBlock {
                day: day("2026-11-24"),
                cutoff: "2026-11-24T20:00:00Z".parse().unwrap(),
                entries: vec![
                    (
                        3,
                        Detail::Stock {
                            short: vec![crate::model::Shortfall {
                                sku: "MUG".into(),
                                needed: 2,
                                on_hand: 1,
                            }],
                        },
                    ),
                    (
                        9,
                        Detail::OverLimit {
                            value_usd: Some("800.01".parse().unwrap()),
                            value_limit_usd: "800".parse().unwrap(),
                        },
                    ),
                ],
            },
        );
    }

    #[test]
    fn version_1_referrals_still_decode() {
        let order = sample_order();
        fixture(
            "referral",
            crate::model::Referral {
                order_id: order.order_id,
                day: day("2026-12-01"),
                reason: crate::model::HoldReason::OverLimit,
                note: "formal entry".into(),
                referred_at: "2026-12-01T15:00:00Z".parse().unwrap(),
                consignee: order.recipient,
                currency: order.currency,
                lines: vec![crate::model::ReferralLine {
                    sku: "TSHIRT-M".into(),
                    qty: 2,
                    description: "Cotton T-shirt".into(),
                    hts: "6109.10.0012".into(),
                    origin: "MX".into(),
                    unit_price: dec("369.50"),
                    value_usd: dec("39.98"),
                }],
                value_usd: dec("39.98"),
                fx: Some(FxUsed {
                    currency: "MXN".into(),
                    usd: dec("0.0541"),
                    from: day("2026-10-01"),
                }),
            },
        );
    }

    #[test]
    fn a_store_of_layout_4_without_referrals_gains_their_table_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        {
            let db = redb::Database::open(dir.path().join(FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            assert!(txn.delete_table(REFERRALS).unwrap());
            txn.commit().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert!(store.reader().unwrap().has_table(REFERRALS).unwrap());
        assert!(store.referrals().unwrap().is_empty());
        assert_eq!(store.meta::<u32>(FORMAT).unwrap(), Some(LAYOUT_VERSION));
    }

    #[test]
    fn the_id_hash_never_changes() {
        // FNV-1a test vectors, and one order id: stored id chunks depend on these values.
        assert_eq!(id_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(id_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(id_hash("foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(id_hash("SO-1001"), 0x8128_472c_ddd8_7eec);
    }

    #[test]
    fn an_unknown_format_version_is_an_error_not_a_guess() {
        let mut bytes = encode(&sample_order());
        bytes[0] = 2;
        let error = decode::<Order>(&bytes).unwrap_err();
        assert!(error.contains("format version 2 is not known"), "{error}");
        assert!(decode::<Order>(&[]).is_err());
        assert!(decode::<Order>(&[1, 0xff]).is_err());
    }

    fn order_numbered(n: usize) -> Order {
        let mut order = sample_order();
        order.order_id = compact_str::format_compact!("SO-{n:05}");
        order
    }

    #[test]
    fn orders_are_found_by_id_and_their_states_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let orders: Vec<Order> = (0..1500).map(order_numbered).collect();
        let prepared: Vec<PreparedOrder> = orders.iter().map(PreparedOrder::new).collect();
        {
            let mut store = Store::open(&path).unwrap();
            assert_eq!(store.known(&prepared[0]).unwrap(), Known::New);
            store.add_orders(&prepared[..1000], None).unwrap();
            let level = StockLevel {
                received: 5,
                released: 0,
                adjusted: 0,
            };
            store
                .put_stock(&BTreeMap::from([("TSHIRT-M".to_owned(), level)]), None)
                .unwrap();
            // A second intake continues the ordinals.
            store.add_orders(&prepared[1000..], None).unwrap();
            assert_eq!(store.next_ordinal().unwrap(), 1500);
            assert_eq!(store.known(&prepared[1200]).unwrap(), Known::Same);
            let mut changed = orders[1200].clone();
            changed.currency = "USD".into();
            assert_eq!(
                store.known(&PreparedOrder::new(&changed)).unwrap(),
                Known::Other
            );
        }
        let mut store = Store::open(&path).unwrap();
        let index = store.read_index().unwrap();
        assert_eq!(index.len(), 1500);
        for n in [0, 511, 512, 999, 1000, 1499] {
            let (ordinal, order) = store
                .find_order(&index, &format!("SO-{n:05}"))
                .unwrap()
                .unwrap();
            assert_eq!(ordinal, n as Ordinal);
            assert_eq!(order, orders[n]);
        }
        assert_eq!(store.find_order(&index, "SO-99999").unwrap(), None);

        let states = store.read_states().unwrap();
        assert_eq!(store.open_orders(&states).unwrap().orders.len(), 1500);
        assert_eq!(store.cancel("SO-00000").unwrap(), Cancel::Done);
        assert_eq!(store.cancel("SO-00000").unwrap(), Cancel::Already);
        assert_eq!(store.cancel("SO-99999").unwrap(), Cancel::Unknown);
        let release = Release {
            orders: vec!["SO-00001".into()],
            ..sample_release()
        };
        let states = store.states().unwrap();
        states.set(1, StateByte::Released);
        let mut commit = Commit::new();
        commit.put_states(states);
        commit.put_releases(std::slice::from_ref(&release));
        store.commit(commit).unwrap();
        assert_eq!(
            store.cancel("SO-00001").unwrap(),
            Cancel::Released {
                release_id: release.release_id.to_string(),
                day: release.day
            }
        );
        drop(store);

        let mut store = Store::open(&path).unwrap();
        let states = store.read_states().unwrap();
        let open = store.open_orders(&states).unwrap();
        assert_eq!(open.orders.len(), 1498);
        assert_eq!(open.ordinals.len(), 1498);
        assert_eq!(open.ordinals[0], 2);
        assert_eq!(open.orders[0], orders[2]);
        assert_eq!(
            store.order("SO-00000").unwrap().unwrap().1,
            OrderState::Cancelled
        );
        assert_eq!(
            store.order("SO-00001").unwrap().unwrap().1,
            OrderState::Released {
                release_id: release.release_id.to_string(),
                day: release.day
            }
        );
        assert_eq!(
            store.order("SO-00002").unwrap().unwrap().1,
            OrderState::Pending(None)
        );
        assert_eq!(store.releases_of(day("2026-11-24")).unwrap(), vec![release]);
        assert!(store.releases_of(day("2026-11-25")).unwrap().is_empty());
        assert_eq!(store.stock_level("TSHIRT-M").unwrap().on_hand(), 5);
        assert_eq!(store.order_states().unwrap().len(), 1500);
        let (counts, oldest) = store.order_counts().unwrap();
        let count = |state: &str| {
            counts
                .iter()
                .filter(|count| count.state == state)
                .map(|count| count.orders)
                .sum::<u64>()
        };
        assert_eq!(
            (count("pending"), count("released"), count("cancelled")),
            (1498, 1, 1)
        );
        assert_eq!(oldest, Some(orders[2].placed_at));
    }

    #[test]
    fn releases_past_a_million_a_day_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let day = day("2026-11-24");
        let release = |seq: u32| Release {
            release_id: crate::model::release_id(day, seq),
            ..sample_release()
        };
        let mut commit = Commit::new();
        commit.put_releases(&[release(999_999)]);
        commit.put_releases(&[release(1_000_000), release(1_000_001)]);
        commit.put_releases(&[release(2)]);
        store.commit(commit).unwrap();
        let ids: Vec<Text> = store
            .releases_of(day)
            .unwrap()
            .into_iter()
            .map(|r| r.release_id)
            .collect();
        assert_eq!(
            ids,
            [
                "2026-11-24-000002",
                "2026-11-24-999999",
                "2026-11-24-1000000",
                "2026-11-24-1000001"
            ]
        );
    }

    #[test]
    fn only_chunks_with_open_orders_are_read_for_a_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let orders: Vec<PreparedOrder> = (0..2000)
            .map(|n| PreparedOrder::new(&order_numbered(n)))
            .collect();
        store.add_orders(&orders, None).unwrap();
        let states = store.states().unwrap();
        // An old held order at 3, everything else up to 1600 released.
        states.set_range(0, 1600, StateByte::Released);
        states.set(
            3,
            StateByte::Open(Some(Verdict::Held(crate::model::HoldReason::OverLimit))),
        );
        let mut commit = Commit::new();
        commit.put_states(states);
        store.commit(commit).unwrap();
        let states = store.read_states().unwrap();
        assert!(states.may_hold_open(0, 512));
        assert!(!states.may_hold_open(512, 1536));
        assert!(states.may_hold_open(1536, 2048));
        assert!(
            states.may_hold_open(2000, 2001),
            "a missing byte must be read to be reported"
        );
        let open: Vec<Ordinal> = store.open_orders(&states).unwrap().ordinals;
        assert_eq!(open.len(), 1 + 400);
        assert_eq!(open[0], 3);
        assert_eq!(open[1], 1600);
        // Decoded a group at a time, of any size, the orders are the same, in the same order.
        let whole = store.open_orders_in_groups(&states, usize::MAX).unwrap();
        for group_orders in [1, 100, 511, 512, 513, 1000] {
            let grouped = store.open_orders_in_groups(&states, group_orders).unwrap();
            assert_eq!(grouped.ordinals, whole.ordinals, "groups of {group_orders}");
            assert_eq!(grouped.orders, whole.orders, "groups of {group_orders}");
        }
        assert_eq!(whole.ordinals, open);
        assert_eq!(whole.orders[1].order_id, "SO-01600");
    }

    #[test]
    fn ids_that_share_a_hash_are_told_apart() {
        let mut index = IdIndex::default();
        index.insert(7, 0);
        index.insert(7, 1);
        index.insert(8, 2);
        assert_eq!(index.len(), 3);
        assert_eq!(index.candidates(7).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(index.candidates(8).collect::<Vec<_>>(), vec![2]);
        assert_eq!(index.candidates(9).count(), 0);
    }

    #[test]
    fn a_range_of_states_spans_blocks() {
        let mut states = States::default();
        states.set_range(0, STATE_BLOCK_ORDERS + 3, StateByte::Open(None));
        states.set_range(0, STATE_BLOCK_ORDERS - 1, StateByte::Cancelled);
        states.set(STATE_BLOCK_ORDERS, StateByte::Released);
        assert_eq!(
            states.get(STATE_BLOCK_ORDERS - 2),
            Some(StateByte::Cancelled)
        );
        assert_eq!(
            states.get(STATE_BLOCK_ORDERS - 1),
            Some(StateByte::Open(None))
        );
        assert_eq!(states.get(STATE_BLOCK_ORDERS), Some(StateByte::Released));
        assert_eq!(
            states.get(STATE_BLOCK_ORDERS + 2),
            Some(StateByte::Open(None))
        );
        assert_eq!(states.get(STATE_BLOCK_ORDERS + 3), None);
        assert_eq!(states.first_open(), Some(STATE_BLOCK_ORDERS - 1));
        assert_eq!(states.dirty.len(), 2);
        assert_eq!(states.blocks[&1].len(), 3);
    }

    #[test]
    fn the_store_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        drop(Store::open(&path).unwrap());
        let mut store = Store::open_waiting(&path, std::time::Duration::from_secs(5)).unwrap();
        let levels = BTreeMap::from([("A".to_owned(), StockLevel::default())]);
        store.put_stock(&levels, None).unwrap();
        for entry in fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            let mode = entry.metadata().unwrap().permissions().mode();
            assert_eq!(
                mode & 0o077,
                0,
                "{} is open to others",
                entry.path().display()
            );
        }
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o077, 0);
    }

    #[test]
    fn a_folder_an_earlier_build_wrote_with_sled_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("conf"), "segment_size: 524288\n").unwrap();
        fs::write(dir.path().join("db"), [0u8; 64]).unwrap();
        let error = Store::open(dir.path()).err().expect("refused");
        assert!(matches!(error, StoreError::Foreign { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("sled") && message.contains("paths.data"),
            "{message}"
        );
        assert!(
            !dir.path().join(FILE_NAME).exists(),
            "nothing is written beside it"
        );
    }

    #[test]
    fn a_second_open_of_the_same_store_is_refused_as_locked() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        match Store::open(dir.path()) {
            Err(StoreError::Locked { .. }) => {}
            other => panic!("expected Locked, got {:?}", other.map(|_| "a store")),
        }
    }
}
