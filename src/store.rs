//! The durable state of the warehouse, on sled. The only module that knows sled and the
//! on-disk encoding; everything else sees items, stock, orders and releases.
//!
//! **Layout.** One sled tree, keys grouped by a prefix, so that one `apply_batch` commits a whole
//! intake file or a whole batch atomically:
//!
//! | key | value |
//! | --- | --- |
//! | `meta/format` | the layout version of the store |
//! | `meta/next-ordinal` | the ordinal the next accepted order gets |
//! | `meta/last-day` | the last release day batched |
//! | `meta/logs-due/<day>` | the day's release log and manifest must be written from the store |
//! | `item/<sku>` | `Item` |
//! | `stock/<sku>` | `StockLevel` (received, released, adjusted) |
//! | `order/<first ordinal>` | up to `ORDER_CHUNK_MAX` consecutive orders, as taken in |
//! | `ids/<first ordinal>` | the id hashes of the same orders, for the id index |
//! | `state/<block>` | one state byte per order for `STATE_BLOCK_ORDERS` consecutive ordinals |
//! | `release/<day>/<first sequence>` | up to `RELEASE_CHUNK_MAX` consecutive releases of the day (sequence in ten digits) |
//! | `release-items/<day>/<first sequence>` | the item facts the release lines of one wave name, each once |
//!
//! Ordinals number accepted orders from 0 in intake order; numbers in keys are fixed-width hex
//! or decimal so that keys sort numerically.
//!
//! **Why chunks.** sled takes on the order of 100k small writes a second, so a key per order
//! per phase would cost seconds per million orders. Instead an intake writes its orders in a
//! few large values, a batch writes its releases the same way, and an order's life (pending,
//! the reason it waits, held, released, cancelled) is one byte in a state block: a batch over a
//! million orders rewrites a few hundred kilobytes of state, not a million keys.
//!
//! **Encoding.** Every value starts with a one-byte format version, then bincode (variable-length
//! integers). A version this build does not know is an error, never a guess. Release chunks and
//! item tables written by layout 2 have format version 2 (see `release_chunk`): a wave's lines
//! name their item facts in its table instead of repeating them; layout 1's whole releases
//! (format version 1) are still read. Order ids are
//! indexed by their 64-bit FNV-1a hash; a hash shared by two ids is resolved by reading the
//! orders themselves.
//!
//! **Durability.** `commit` applies the batch, flushes sled, then fsyncs the store's log file,
//! every blob file sled wrote since the last commit, and the folders: sled's own flush uses
//! `sync_file_range`, which does not reach the disk's cache, and it never syncs blob files.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bincode::Options;
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::{HoldReason, Item, Order, OrderState, Release, StockLevel, Verdict, WaitReason};

mod release_chunk;

/// The layout version written to `meta/format`: 2 since releases are stored in format version 2
/// (see `release_chunk`). A store of layout 1 is read as it is, and marked 2 by the first batch
/// that stores releases the new way.
pub const LAYOUT_VERSION: u32 = 2;

/// The format version that starts every stored value.
pub const VALUE_VERSION: u8 = 1;

/// The format version of release chunks and item tables written by layout 2.
pub const RELEASE_VALUE_VERSION: u8 = 2;

/// Memory sled may use for its page cache.
pub const CACHE_BYTES_MAX: u64 = 128 * 1024 * 1024;

/// Most orders in one stored chunk (about 150 bytes each when encoded).
pub const ORDER_CHUNK_MAX: usize = 512;

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

/// The position of an accepted order in intake order, from 0.
pub type Ordinal = u64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {path} is in use by another process (normally the daemon)")]
    Locked { path: PathBuf },
    // The cause is not repeated in these two: it is the error's source, printed after it.
    #[error("store at {path}")]
    Sled { path: PathBuf, source: sled::Error },
    #[error("store at {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store at {path}: value of key {key} cannot be read: {message}")]
    Corrupt {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("store at {path}: key {key} has format version {found}; this build reads up to {supported}; upgrade border-release")]
    TooNew {
        path: PathBuf,
        key: String,
        found: u32,
        supported: u32,
    },
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
    db: Option<sled::Db>,
    path: PathBuf,
    /// Blob files already fsynced: sled never rewrites one, so each is synced once.
    synced_blobs: Mutex<SyncedBlobs>,
    /// sled's log file, open from the moment the store is: Linux reports a failed writeback
    /// to every descriptor that was open on the file when it failed, once, and to none opened
    /// later. sled's background thread fsyncs the log too and only logs a failure, so a
    /// descriptor opened per commit could be told "synced" about bytes that never reached the
    /// disk; this one hears of every failure since the store was opened.
    log_file: fs::File,
    /// Set when a commit's flush or fsync failed; every later commit is refused.
    unsynced: std::sync::atomic::AtomicBool,
    chunk_cache: Mutex<HashMap<Ordinal, std::sync::Arc<Vec<Order>>>>,
}

/// Writes to apply together, atomically, with [`Store::commit`].
#[derive(Default)]
pub struct Commit {
    batch: sled::Batch,
    writes: usize,
}

const FORMAT_KEY: &[u8] = b"meta/format";
const NEXT_ORDINAL_KEY: &[u8] = b"meta/next-ordinal";
const LAST_DAY_KEY: &[u8] = b"meta/last-day";
const LAST_TRIGGER_KEY: &[u8] = b"meta/last-trigger";
const APPLIED_PREFIX: &str = "applied/";
const LOGS_DUE_PREFIX: &str = "meta/logs-due/";
const ITEM_PREFIX: &str = "item/";
const STOCK_PREFIX: &str = "stock/";
const ORDER_PREFIX: &str = "order/";
const IDS_PREFIX: &str = "ids/";
const STATE_PREFIX: &str = "state/";
const RELEASE_PREFIX: &str = "release/";
const RELEASE_ITEMS_PREFIX: &str = "release-items/";

impl Store {
    /// Opens (or creates) the store in `path`. Fails with [`StoreError::Locked`] when another
    /// process has it open.
    pub fn open(path: &Path) -> Result<Store> {
        crate::files::create_private_dir(path).map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })?;
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES_MAX)
            .open()
            .map_err(|source| match &source {
                sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                    StoreError::Locked {
                        path: path.to_owned(),
                    }
                }
                _ => StoreError::Sled {
                    path: path.to_owned(),
                    source,
                },
            })?;
        let io_error = |source| StoreError::Io {
            path: path.to_owned(),
            source,
        };
        restrict_tree(path).map_err(io_error)?;
        // sled writes a new snapshot as it opens and removes the old one without syncing the
        // folder: both are made durable before anything is written on top of them.
        crate::files::sync_dir(path).map_err(io_error)?;
        let log_file = fs::File::open(path.join("db")).map_err(io_error)?;
        let store = Store {
            db: Some(db),
            log_file,
            path: path.to_owned(),
            synced_blobs: Mutex::new(SyncedBlobs::default()),
            unsynced: std::sync::atomic::AtomicBool::new(false),
            chunk_cache: Mutex::new(HashMap::new()),
        };
        match store.get::<u32>(FORMAT_KEY)? {
            None => {
                let mut commit = Commit::default();
                commit.put(FORMAT_KEY, &LAYOUT_VERSION);
                store.commit(commit)?;
            }
            Some(found) if found > LAYOUT_VERSION => {
                return Err(StoreError::TooNew {
                    path: store.path.clone(),
                    key: "meta/format".into(),
                    found,
                    supported: LAYOUT_VERSION,
                });
            }
            Some(_) => {}
        }
        Ok(store)
    }

    /// Opens the store, waiting up to `patience` while it is locked: sled lets go of its lock
    /// only once its background threads have ended, a moment after the store is dropped (by
    /// this process, or by a daemon that just stopped).
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

    fn db(&self) -> &sled::Db {
        self.db.as_ref().expect("the store is open until dropped")
    }

    /// Applies `commit` atomically and makes it durable before returning.
    /// A failed write, flush or fsync is never retried as if it could succeed: the store refuses
    /// every later commit ([`StoreError::Unsynced`]), and the process must start again from the
    /// disk.
    pub fn commit(&self, commit: Commit) -> Result<()> {
        use std::sync::atomic::Ordering;
        if self.unsynced.load(Ordering::SeqCst) {
            return Err(StoreError::Unsynced {
                path: self.path.clone(),
            });
        }
        if let Err(error) = self.apply(commit) {
            // sled keeps an I/O error and gives it back from then on: nothing more is written.
            self.unsynced.store(true, Ordering::SeqCst);
            return Err(error);
        }
        crate::crashpoint::reached("store-after-apply");
        let synced = self
            .db()
            .flush()
            .map_err(|source| self.sled_error(source))
            .and_then(|_| {
                self.sync_files().map_err(|source| StoreError::Io {
                    path: self.path.clone(),
                    source,
                })
            });
        if synced.is_err() {
            self.unsynced.store(true, Ordering::SeqCst);
        }
        synced
    }

    /// Whether a commit failed to reach the disk (see [`Store::commit`]).
    pub fn is_unsynced(&self) -> bool {
        self.unsynced.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Applies `commit` atomically without waiting for the disk: for bookkeeping that is safe
    /// to lose, such as clearing a marker whose work is idempotent.
    pub fn commit_lazily(&self, commit: Commit) -> Result<()> {
        self.apply(commit)
    }

    fn apply(&self, commit: Commit) -> Result<()> {
        if commit.writes == 0 {
            return Ok(());
        }
        // Stored chunks may change: lookups read them afresh.
        self.chunk_cache.lock().expect("chunk cache lock").clear();
        self.db()
            .apply_batch(commit.batch)
            .map_err(|source| self.sled_error(source))
    }

    pub fn item(&self, sku: &str) -> Result<Option<Item>> {
        self.get(&key(ITEM_PREFIX, sku))
    }

    pub fn items(&self) -> Result<HashMap<String, Item>> {
        self.scan::<Item>(ITEM_PREFIX)
            .map(|entry| entry.map(|(_, item)| (item.sku.clone(), item)))
            .collect()
    }

    pub fn stock(&self) -> Result<BTreeMap<String, StockLevel>> {
        self.scan::<StockLevel>(STOCK_PREFIX).collect()
    }

    pub fn stock_level(&self, sku: &str) -> Result<StockLevel> {
        Ok(self.get(&key(STOCK_PREFIX, sku))?.unwrap_or_default())
    }

    /// The ordinal the next accepted order gets.
    pub fn next_ordinal(&self) -> Result<Ordinal> {
        Ok(self.get(NEXT_ORDINAL_KEY)?.unwrap_or(0))
    }

    /// The id index of every accepted order.
    pub fn id_index(&self) -> Result<IdIndex> {
        // Sized once: growing a table of millions doubles it several times over.
        let orders = usize::try_from(self.next_ordinal()?).unwrap_or(usize::MAX);
        let mut index = IdIndex {
            first: HashMap::with_capacity_and_hasher(orders, BuildHashed::default()),
            more: Vec::new(),
        };
        for entry in self.scan::<Vec<u64>>(IDS_PREFIX) {
            let (first, hashes) = entry?;
            let first = self.ordinal_of_key(IDS_PREFIX, &first)?;
            for (offset, hash) in hashes.into_iter().enumerate() {
                index.insert(hash, first + offset as Ordinal);
            }
        }
        Ok(index)
    }

    /// The state byte of every accepted order.
    pub fn states(&self) -> Result<States> {
        let mut blocks = BTreeMap::new();
        for entry in self.scan::<Vec<u8>>(STATE_PREFIX) {
            let (block, bytes) = entry?;
            let block = u64::from_str_radix(&block, 16)
                .map_err(|_| self.corrupt(block.as_bytes(), "bad block key".into()))?;
            blocks.insert(block, bytes);
        }
        Ok(States {
            blocks,
            dirty: BTreeSet::new(),
        })
    }

    /// The order with this ordinal.
    pub fn order_at(&self, ordinal: Ordinal) -> Result<Order> {
        let (first, chunk) = self.chunk_of(ordinal)?;
        usize::try_from(ordinal - first)
            .ok()
            .and_then(|offset| chunk.get(offset).cloned())
            .ok_or_else(|| {
                self.corrupt(
                    &ordinal_key(ORDER_PREFIX, first),
                    format!("no order {ordinal} in the chunk"),
                )
            })
    }

    /// Finds an order by id with the id index.
    pub fn find_order(&self, index: &IdIndex, order_id: &str) -> Result<Option<(Ordinal, Order)>> {
        for ordinal in index.candidates(id_hash(order_id)) {
            let order = self.order_at(ordinal)?;
            if order.order_id == order_id {
                return Ok(Some((ordinal, order)));
            }
        }
        Ok(None)
    }

    /// An order and its state, by id.
    pub fn order(&self, order_id: &str) -> Result<Option<(Ordinal, Order, OrderState)>> {
        self.order_in(&self.id_index()?, &self.states()?, order_id)
    }

    /// An order and its state, by id, with an index and states already loaded.
    pub fn order_in(
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
                let (release_id, day) = self.release_of(&order.order_id)?.ok_or_else(|| {
                    self.corrupt(
                        order_id.as_bytes(),
                        "released, but in no stored release".into(),
                    )
                })?;
                OrderState::Released { release_id, day }
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
    pub fn open_orders(&self, states: &States) -> Result<OpenOrders> {
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
        // A chunk ends where the next one starts, so each is kept until the next is read.
        let mut previous: Option<(Ordinal, sled::IVec, sled::IVec)> = None;
        let mut take = |previous: Option<(Ordinal, sled::IVec, sled::IVec)>,
                        end: Ordinal,
                        last: bool|
         -> Result<()> {
            // Only chunks that hold an open order are decoded: an old held order must not make
            // every batch decode every order taken in since.
            if let Some((first, key, bytes)) = previous {
                if states.may_hold_open(first, end) {
                    let chunk_open = states.open_between(first, end);
                    group_open += chunk_open;
                    group.push(OrderChunk {
                        first,
                        open: chunk_open,
                        key,
                        bytes,
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
        for entry in self.db().range(ordinal_key(ORDER_PREFIX, start)..) {
            let (key, bytes) = entry.map_err(|source| self.sled_error(source))?;
            if !key.starts_with(ORDER_PREFIX.as_bytes()) {
                break;
            }
            let first = self.ordinal_of_key(
                ORDER_PREFIX,
                &String::from_utf8_lossy(&key[ORDER_PREFIX.len()..]),
            )?;
            take(previous.take(), first, false)?;
            previous = Some((first, key, bytes));
        }
        take(previous, next, true)?;
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
                let orders: Vec<Order> =
                    decode(&chunk.bytes).map_err(|message| self.corrupt(&chunk.key, message))?;
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

    /// Every accepted order with its state, in intake order.
    pub fn order_states(&self) -> Result<Vec<(Order, OrderState)>> {
        let states = self.states()?;
        let mut released: HashMap<String, (String, NaiveDate)> = HashMap::new();
        for release in self.releases() {
            let release = release?;
            for order_id in &release.orders {
                released.insert(
                    order_id.to_string(),
                    (release.release_id.to_string(), release.day),
                );
            }
        }
        let mut out = Vec::new();
        for entry in self.scan::<Vec<Order>>(ORDER_PREFIX) {
            let (first, orders) = entry?;
            let first = self.ordinal_of_key(ORDER_PREFIX, &first)?;
            for (offset, order) in orders.into_iter().enumerate() {
                let state = match self.state_of(&states, first + offset as Ordinal)? {
                    StateByte::Open(verdict) => open_state(verdict),
                    StateByte::Cancelled => OrderState::Cancelled,
                    StateByte::Released => match released.remove(order.order_id.as_str()) {
                        Some((release_id, day)) => OrderState::Released { release_id, day },
                        None => {
                            return Err(self.corrupt(
                                order.order_id.as_bytes(),
                                "released, but in no stored release".into(),
                            ))
                        }
                    },
                };
                out.push((order, state));
            }
        }
        Ok(out)
    }

    /// The state byte of an order, or the damage that hides it.
    fn state_of(&self, states: &States, ordinal: Ordinal) -> Result<StateByte> {
        states.get(ordinal).ok_or_else(|| {
            let block = ordinal / STATE_BLOCK_ORDERS;
            self.corrupt(
                &key(STATE_PREFIX, &format!("{block:08x}")),
                format!("no valid state byte for order {ordinal}"),
            )
        })
    }

    /// The release and day an order went out in, searching the newest days first.
    fn release_of(&self, order_id: &str) -> Result<Option<(String, NaiveDate)>> {
        for entry in self.db().scan_prefix(RELEASE_PREFIX.as_bytes()).rev() {
            let (key, bytes) = entry.map_err(|source| self.sled_error(source))?;
            let found = match self.release_chunk_of(&key, &bytes)? {
                ReleaseChunk::Whole(chunk) => chunk
                    .into_iter()
                    .find(|release| release.orders.iter().any(|id| id == order_id))
                    .map(|release| (release.release_id.to_string(), release.day)),
                ReleaseChunk::Stored(chunk) => chunk
                    .releases
                    .iter()
                    .find(|release| release.orders.iter().any(|id| id == order_id))
                    .map(|release| {
                        // As `release_chunk::decode` names it.
                        let day = chunk.day.format("%Y-%m-%d");
                        (format!("{day}-{:06}", release.seq), chunk.day)
                    }),
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The committed releases of `day`, in release id order.
    pub fn releases_of(&self, day: NaiveDate) -> Result<Vec<Release>> {
        let prefix = format!("{RELEASE_PREFIX}{}/", day.format("%Y-%m-%d"));
        let mut tables = HashMap::new();
        let mut releases = Vec::new();
        for entry in self.db().scan_prefix(prefix.as_bytes()) {
            let (key, bytes) = entry.map_err(|source| self.sled_error(source))?;
            releases.extend(self.releases_in(&key, &bytes, &mut tables)?);
        }
        Ok(releases)
    }

    /// Every committed release, by release id.
    pub fn releases(&self) -> impl Iterator<Item = Result<Release>> + '_ {
        let mut tables = HashMap::new();
        self.db()
            .scan_prefix(RELEASE_PREFIX.as_bytes())
            .flat_map(move |entry| {
                let releases = entry
                    .map_err(|source| self.sled_error(source))
                    .and_then(|(key, bytes)| self.releases_in(&key, &bytes, &mut tables));
                match releases {
                    Ok(chunk) => chunk.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(error) => vec![Err(error)],
                }
            })
    }

    /// A stored release chunk as it was written: whole releases (format version 1), or
    /// releases that name their item facts in their wave's table (format version 2).
    fn release_chunk_of(&self, key: &[u8], bytes: &[u8]) -> Result<ReleaseChunk> {
        match bytes.first() {
            Some(&RELEASE_VALUE_VERSION) => codec()
                .deserialize(&bytes[1..])
                .map(ReleaseChunk::Stored)
                .map_err(|error| {
                    self.corrupt(
                        key,
                        format!("format version {RELEASE_VALUE_VERSION}: {error}"),
                    )
                }),
            _ => decode(bytes)
                .map(ReleaseChunk::Whole)
                .map_err(|message| self.corrupt(key, message)),
        }
    }

    /// The whole releases of a stored chunk; `tables` keeps the item tables already read.
    fn releases_in(
        &self,
        key: &[u8],
        bytes: &[u8],
        tables: &mut HashMap<(NaiveDate, u64), release_chunk::Facts>,
    ) -> Result<Vec<Release>> {
        let chunk = match self.release_chunk_of(key, bytes)? {
            ReleaseChunk::Whole(releases) => return Ok(releases),
            ReleaseChunk::Stored(chunk) => chunk,
        };
        let facts = match tables.entry((chunk.day, chunk.items)) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(self.release_items(key, chunk.day, chunk.items)?)
            }
        };
        release_chunk::decode(chunk, facts).map_err(|message| self.corrupt(key, message))
    }

    /// The item table of the wave of `day` whose first release has sequence number `first`, for
    /// the release chunk stored under `chunk_key`.
    fn release_items(
        &self,
        chunk_key: &[u8],
        day: NaiveDate,
        first: u64,
    ) -> Result<release_chunk::Facts> {
        let items_key = release_items_key(day, first);
        let bytes = self
            .db()
            .get(&items_key)
            .map_err(|source| self.sled_error(source))?
            .ok_or_else(|| {
                self.corrupt(chunk_key, "the item table of its wave is missing".into())
            })?;
        let items: Vec<crate::model::ItemFacts> = match bytes.split_first() {
            Some((&RELEASE_VALUE_VERSION, payload)) => {
                codec().deserialize(payload).map_err(|error| {
                    self.corrupt(
                        &items_key,
                        format!("format version {RELEASE_VALUE_VERSION}: {error}"),
                    )
                })?
            }
            _ => {
                return Err(self.corrupt(
                    &items_key,
                    format!("an item table must have format version {RELEASE_VALUE_VERSION}"),
                ))
            }
        };
        Ok(release_chunk::facts(items))
    }

    /// The last release day a batch ran for.
    /// The report of an input applied under this mark (see [`Commit::mark_applied`]).
    pub fn applied(&self, mark: &str) -> Result<Option<String>> {
        self.get(&key(APPLIED_PREFIX, mark))
    }

    /// The scheduled trigger the last scheduled batch ran for.
    pub fn last_trigger(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .get::<i64>(LAST_TRIGGER_KEY)?
            .and_then(DateTime::from_timestamp_micros))
    }

    pub fn last_day(&self) -> Result<Option<NaiveDate>> {
        self.get(LAST_DAY_KEY)
    }

    /// Days whose release log and manifest must be (re)written from the store.
    pub fn logs_due(&self) -> Result<Vec<NaiveDate>> {
        self.scan::<NaiveDate>(LOGS_DUE_PREFIX)
            .map(|entry| entry.map(|(_, day)| day))
            .collect()
    }

    /// The chunk holding `ordinal`: its first ordinal and its orders.
    fn chunk_of(&self, ordinal: Ordinal) -> Result<(Ordinal, std::sync::Arc<Vec<Order>>)> {
        let bound = ordinal_key(ORDER_PREFIX, ordinal);
        let found = self
            .db()
            .range(..=bound.clone())
            .next_back()
            .transpose()
            .map_err(|source| self.sled_error(source))?
            .filter(|(key, _)| key.starts_with(ORDER_PREFIX.as_bytes()));
        let Some((key, bytes)) = found else {
            return Err(self.corrupt(&bound, "no chunk holds this ordinal".into()));
        };
        let first = self.ordinal_of_key(
            ORDER_PREFIX,
            &String::from_utf8_lossy(&key[ORDER_PREFIX.len()..]),
        )?;
        if let Some(chunk) = self
            .chunk_cache
            .lock()
            .expect("chunk cache lock")
            .get(&first)
        {
            return Ok((first, chunk.clone()));
        }
        let orders: Vec<Order> = decode(&bytes).map_err(|message| self.corrupt(&key, message))?;
        let chunk = std::sync::Arc::new(orders);
        let mut cache = self.chunk_cache.lock().expect("chunk cache lock");
        if cache.len() >= CHUNK_CACHE_MAX {
            cache.clear();
        }
        cache.insert(first, chunk.clone());
        Ok((first, chunk))
    }

    fn ordinal_of_key(&self, prefix: &str, name: &str) -> Result<Ordinal> {
        u64::from_str_radix(name, 16).map_err(|_| {
            self.corrupt(
                format!("{prefix}{name}").as_bytes(),
                "bad ordinal in key".into(),
            )
        })
    }

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self
            .db()
            .get(key)
            .map_err(|source| self.sled_error(source))?
        {
            None => Ok(None),
            Some(bytes) => decode(&bytes)
                .map(Some)
                .map_err(|message| self.corrupt(key, message)),
        }
    }

    fn scan<'a, T: DeserializeOwned + 'a>(
        &'a self,
        prefix: &str,
    ) -> impl Iterator<Item = Result<(String, T)>> + 'a {
        let skip = prefix.len();
        self.db().scan_prefix(prefix.as_bytes()).map(move |entry| {
            let (key, bytes) = entry.map_err(|source| self.sled_error(source))?;
            let value = decode(&bytes).map_err(|message| self.corrupt(&key, message))?;
            let name = String::from_utf8_lossy(&key[skip..]).into_owned();
            Ok((name, value))
        })
    }

    /// fsyncs what a commit may have written, blobs before the log that points to them: every
    /// blob file not yet synced (sled writes blobs without syncing them, some from its own
    /// background thread), again when one synced at the last commit has grown since (it was
    /// still being written), then the `blobs` folder, the `db` file, `conf` once per process,
    /// and the store's folder.
    fn sync_files(&self) -> std::io::Result<()> {
        let mut synced = self.synced_blobs.lock().expect("blob list lock");
        let blobs = self.path.join("blobs");
        if blobs.is_dir() {
            let recent = std::mem::take(&mut synced.recent);
            for entry in fs::read_dir(&blobs)? {
                let entry = entry?;
                let name = entry.file_name();
                let recent_size = recent.get(&name).copied();
                if synced.files.contains(&name) && recent_size.is_none() {
                    continue;
                }
                // sled's own thread removes blobs it no longer points to, also while this
                // lists them: a blob gone since the listing needs no sync.
                let size = match entry.metadata() {
                    Ok(metadata) => metadata.len(),
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(error) => return Err(error),
                };
                if recent_size != Some(size) {
                    sync_if_exists(&entry.path())?;
                    synced.recent.insert(name.clone(), size);
                }
                synced.files.insert(name);
            }
            crate::files::sync_dir(&blobs)?;
        }
        self.log_file.sync_all()?;
        if !synced.conf {
            sync_if_exists(&self.path.join("conf"))?;
            synced.conf = true;
        }
        crate::files::sync_dir(&self.path)
    }

    fn sled_error(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, key: &[u8], message: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            key: String::from_utf8_lossy(key).into_owned(),
            message,
        }
    }
}

impl Drop for Store {
    /// sled flushes and fsyncs its log as it closes, and panics if that fails. What a lazy
    /// commit left unflushed is flushed here first; if that fails, or a commit failed before
    /// (Linux then reports the failed writeback to sled's descriptor too), the store is left
    /// to the end of the process instead of closed: nothing more must be written, and what
    /// was lost was either reported already or safe to lose.
    fn drop(&mut self) {
        if !self.is_unsynced() {
            let flushed = self.db().flush().is_ok() && self.log_file.sync_all().is_ok();
            if !flushed {
                self.unsynced
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        if self.is_unsynced() {
            std::mem::forget(self.db.take());
        }
    }
}

/// What is known to be on disk already: sled never rewrites a finished blob file, and `conf`
/// only when the store is opened, so each is synced once; a blob synced at the last commit is
/// looked at again, in case it was still being written.
#[derive(Default)]
struct SyncedBlobs {
    conf: bool,
    files: HashSet<std::ffi::OsString>,
    /// Blobs synced at the last commit, with their sizes then.
    recent: HashMap<std::ffi::OsString, u64>,
}

/// Makes the files and folders under `dir` owner-only: sled creates them readable by all, and
/// they hold names and addresses. The folder itself is created owner-only.
fn restrict_tree(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let metadata = entry.metadata()?;
        let private = if metadata.is_dir() { 0o700 } else { 0o600 };
        if metadata.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(&path, fs::Permissions::from_mode(private))?;
        }
        if metadata.is_dir() {
            restrict_tree(&path)?;
        }
    }
    Ok(())
}

fn sync_if_exists(path: &Path) -> std::io::Result<()> {
    match fs::File::open(path) {
        Ok(file) => file.sync_all(),
        // sled removes old snapshot and blob files on its own schedule.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

fn open_state(verdict: Option<Verdict>) -> OrderState {
    match verdict {
        None => OrderState::Pending(None),
        Some(Verdict::Waiting(reason)) => OrderState::Pending(Some(reason)),
        Some(Verdict::Held(reason)) => OrderState::Held(reason),
    }
}

/// A stored release chunk, as written (see [`Store::release_chunk_of`]).
enum ReleaseChunk {
    Whole(Vec<Release>),
    Stored(release_chunk::StoredChunk),
}

/// The open orders of the store, in intake order, and their ordinals at the same places.
#[derive(Debug, Default)]
pub struct OpenOrders {
    pub ordinals: Vec<Ordinal>,
    pub orders: Vec<Order>,
}

impl OpenOrders {
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }
}

/// A stored order chunk to decode, with how many of its orders are open.
struct OrderChunk {
    first: Ordinal,
    open: usize,
    key: sled::IVec,
    bytes: sled::IVec,
}

/// An order encoded for the store, with the hash of its id: intake keeps accepted orders this
/// way, which takes a fraction of the memory of the decoded orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedOrder {
    bytes: Vec<u8>,
    pub id_hash: u64,
}

impl EncodedOrder {
    pub fn new(order: &Order) -> EncodedOrder {
        let mut bytes = Vec::with_capacity(192);
        codec()
            .serialize_into(&mut bytes, order)
            .expect("in-memory bincode encoding cannot fail");
        EncodedOrder {
            bytes,
            id_hash: id_hash(&order.order_id),
        }
    }

    pub fn decode(&self) -> Order {
        codec()
            .deserialize(&self.bytes)
            .expect("an order encoded by this process decodes")
    }
}

/// Order ids by hash, to find an order by id without a key per order. Also used by intake to
/// find an order id again within one file, with places in the file instead of ordinals.
#[derive(Debug, Default)]
pub struct IdIndex {
    first: HashMap<u64, Ordinal, BuildHashed>,
    /// Further entries whose hash an earlier entry already has (rare).
    more: Vec<(u64, Ordinal)>,
}

impl IdIndex {
    pub fn insert(&mut self, hash: u64, ordinal: Ordinal) {
        if let Some(existing) = self.first.insert(hash, ordinal) {
            self.first.insert(hash, existing);
            self.more.push((hash, ordinal));
        }
    }

    /// The entries with this hash, oldest first.
    pub fn candidates(&self, hash: u64) -> impl Iterator<Item = Ordinal> + '_ {
        let more = if self.more.is_empty() {
            &[][..]
        } else {
            &self.more[..]
        };
        self.first.get(&hash).copied().into_iter().chain(
            more.iter()
                .filter(move |(h, _)| *h == hash)
                .map(|(_, ordinal)| *ordinal),
        )
    }

    pub fn len(&self) -> usize {
        self.first.len() + self.more.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Hashes keys that are already hashes with one multiplication, instead of SipHash.
type BuildHashed = std::hash::BuildHasherDefault<Rehash>;

#[derive(Default)]
struct Rehash(u64);

impl std::hash::Hasher for Rehash {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    fn finish(&self) -> u64 {
        // Spread the bits a table uses for its buckets and its control bytes.
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
    }
}

/// 64-bit FNV-1a of an order id: part of the stored format, so it never changes.
pub fn id_hash(order_id: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in order_id.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// What one state byte says about an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateByte {
    /// Pending or held, with the last batch's verdict, if one examined it.
    Open(Option<Verdict>),
    Released,
    Cancelled,
}

impl StateByte {
    /// The state and reason words `orders list` gives.
    pub fn words(self) -> (&'static str, Option<&'static str>) {
        match self {
            StateByte::Open(None) => ("pending", None),
            StateByte::Open(Some(Verdict::Waiting(reason))) => ("pending", Some(reason.word())),
            StateByte::Open(Some(Verdict::Held(reason))) => ("held", Some(reason.word())),
            StateByte::Released => ("released", None),
            StateByte::Cancelled => ("cancelled", None),
        }
    }

    fn encode(self) -> u8 {
        match self {
            StateByte::Open(None) => 0x00,
            StateByte::Open(Some(Verdict::Waiting(WaitReason::DailyLimit))) => 0x01,
            StateByte::Open(Some(Verdict::Waiting(WaitReason::Stock))) => 0x02,
            StateByte::Open(Some(Verdict::Held(HoldReason::OverLimit))) => 0x10,
            StateByte::Open(Some(Verdict::Held(HoldReason::ExcludedOrigin))) => 0x11,
            StateByte::Open(Some(Verdict::Held(HoldReason::ExcludedGoods))) => 0x12,
            StateByte::Open(Some(Verdict::Held(HoldReason::ExcludedFlag))) => 0x13,
            StateByte::Open(Some(Verdict::Held(HoldReason::NoRate))) => 0x14,
            StateByte::Released => 0x20,
            StateByte::Cancelled => 0x30,
        }
    }

    fn decode(byte: u8) -> Option<StateByte> {
        let all = [
            StateByte::Open(None),
            StateByte::Open(Some(Verdict::Waiting(WaitReason::DailyLimit))),
            StateByte::Open(Some(Verdict::Waiting(WaitReason::Stock))),
            StateByte::Open(Some(Verdict::Held(HoldReason::OverLimit))),
            StateByte::Open(Some(Verdict::Held(HoldReason::ExcludedOrigin))),
            StateByte::Open(Some(Verdict::Held(HoldReason::ExcludedGoods))),
            StateByte::Open(Some(Verdict::Held(HoldReason::ExcludedFlag))),
            StateByte::Open(Some(Verdict::Held(HoldReason::NoRate))),
            StateByte::Released,
            StateByte::Cancelled,
        ];
        all.into_iter().find(|state| state.encode() == byte)
    }
}

/// The state bytes of every accepted order, in blocks, with the blocks changed since loading.
#[derive(Debug, Clone, Default)]
pub struct States {
    blocks: BTreeMap<u64, Vec<u8>>,
    dirty: BTreeSet<u64>,
}

impl States {
    /// The state of an order; `None` when the store has no valid byte for it, which only a
    /// damaged store can give (every intake writes its orders' bytes in the same commit).
    pub fn get(&self, ordinal: Ordinal) -> Option<StateByte> {
        let byte = self
            .blocks
            .get(&(ordinal / STATE_BLOCK_ORDERS))
            .and_then(|block| block.get((ordinal % STATE_BLOCK_ORDERS) as usize))
            .copied();
        byte.and_then(StateByte::decode)
    }

    /// Forgets which blocks changed, once they are committed.
    pub fn clean(&mut self) {
        self.dirty.clear();
    }

    pub fn set(&mut self, ordinal: Ordinal, state: StateByte) {
        let block_no = ordinal / STATE_BLOCK_ORDERS;
        let block = self.blocks.entry(block_no).or_default();
        let offset = (ordinal % STATE_BLOCK_ORDERS) as usize;
        if block.len() <= offset {
            block.resize(offset + 1, StateByte::Open(None).encode());
        }
        block[offset] = state.encode();
        self.dirty.insert(block_no);
    }

    /// Sets `count` consecutive orders from `first` to one state.
    pub fn set_range(&mut self, first: Ordinal, count: u64, state: StateByte) {
        let byte = state.encode();
        let mut ordinal = first;
        let end = first + count;
        while ordinal < end {
            let block_no = ordinal / STATE_BLOCK_ORDERS;
            let block = self.blocks.entry(block_no).or_default();
            let from = (ordinal % STATE_BLOCK_ORDERS) as usize;
            let to = from + (end - ordinal).min(STATE_BLOCK_ORDERS - from as u64) as usize;
            if block.len() < to {
                block.resize(to, StateByte::Open(None).encode());
            }
            block[from..to].fill(byte);
            self.dirty.insert(block_no);
            ordinal += (to - from) as u64;
        }
    }

    /// The lowest ordinal of an open order.
    pub fn first_open(&self) -> Option<Ordinal> {
        self.blocks.iter().find_map(|(block_no, block)| {
            block
                .iter()
                .position(|byte| matches!(StateByte::decode(*byte), Some(StateByte::Open(_))))
                .map(|offset| block_no * STATE_BLOCK_ORDERS + offset as Ordinal)
        })
    }

    /// The first pending order (open and not held), in intake order.
    pub fn first_pending(&self) -> Option<Ordinal> {
        self.blocks.iter().find_map(|(block_no, block)| {
            block
                .iter()
                .position(|byte| {
                    matches!(
                        StateByte::decode(*byte),
                        Some(StateByte::Open(None | Some(Verdict::Waiting(_))))
                    )
                })
                .map(|offset| block_no * STATE_BLOCK_ORDERS + offset as Ordinal)
        })
    }

    /// How many orders are in each state; bytes that are no state are left out.
    pub fn counts(&self) -> Vec<(StateByte, u64)> {
        let mut counts = [0u64; 256];
        for block in self.blocks.values() {
            for byte in block {
                counts[*byte as usize] += 1;
            }
        }
        (0..=255u8)
            .filter(|byte| counts[*byte as usize] > 0)
            .filter_map(|byte| Some((StateByte::decode(byte)?, counts[byte as usize])))
            .collect()
    }

    /// How many orders in `from..to` are open.
    pub fn open_between(&self, from: Ordinal, to: Ordinal) -> usize {
        let mut count = 0;
        let mut ordinal = from;
        while ordinal < to {
            let block_no = ordinal / STATE_BLOCK_ORDERS;
            let start = (ordinal % STATE_BLOCK_ORDERS) as usize;
            let end = start + (to - ordinal).min(STATE_BLOCK_ORDERS - start as u64) as usize;
            if let Some(block) = self.blocks.get(&block_no) {
                let present = &block[start.min(block.len())..end.min(block.len())];
                count += present
                    .iter()
                    .filter(|byte| matches!(StateByte::decode(**byte), Some(StateByte::Open(_))))
                    .count();
            }
            ordinal += (end - start) as u64;
        }
        count
    }

    /// Whether an order in `from..to` is open, or has no valid byte (so that reading it reports
    /// the damage).
    pub fn may_hold_open(&self, from: Ordinal, to: Ordinal) -> bool {
        let mut ordinal = from;
        while ordinal < to {
            let block_no = ordinal / STATE_BLOCK_ORDERS;
            let start = (ordinal % STATE_BLOCK_ORDERS) as usize;
            let end = start + (to - ordinal).min(STATE_BLOCK_ORDERS - start as u64) as usize;
            let Some(block) = self.blocks.get(&block_no) else {
                return true;
            };
            if block.len() < end {
                return true;
            }
            let closed = |byte: &u8| {
                matches!(
                    StateByte::decode(*byte),
                    Some(StateByte::Released | StateByte::Cancelled)
                )
            };
            if !block[start..end].iter().all(closed) {
                return true;
            }
            ordinal += (end - start) as u64;
        }
        false
    }
}

impl Commit {
    pub fn new() -> Commit {
        Commit::default()
    }

    pub fn put_item(&mut self, item: &Item) {
        self.put(&key(ITEM_PREFIX, &item.sku), item);
    }

    pub fn put_stock(&mut self, sku: &str, level: &StockLevel) {
        self.put(&key(STOCK_PREFIX, sku), level);
    }

    /// Stores new orders as pending from `next` on, in chunks, with their id hashes, and
    /// records them in `index` and `states`. Returns the ordinal after the last one.
    pub fn add_orders(
        &mut self,
        next: Ordinal,
        orders: &[EncodedOrder],
        index: &mut IdIndex,
        states: &mut States,
    ) -> Ordinal {
        let mut first = next;
        for chunk in orders.chunks(ORDER_CHUNK_MAX) {
            // A chunk is stored as the bincode of `Vec<Order>`: its length, then each order.
            let mut bytes = encode(&(chunk.len() as u64));
            let mut hashes = Vec::with_capacity(chunk.len());
            for (offset, order) in chunk.iter().enumerate() {
                bytes.extend_from_slice(&order.bytes);
                hashes.push(order.id_hash);
                index.insert(order.id_hash, first + offset as Ordinal);
            }
            states.set_range(first, chunk.len() as u64, StateByte::Open(None));
            self.batch.insert(ordinal_key(ORDER_PREFIX, first), bytes);
            self.writes += 1;
            self.put(&ordinal_key(IDS_PREFIX, first), &hashes);
            first += chunk.len() as Ordinal;
        }
        self.put(NEXT_ORDINAL_KEY, &first);
        first
    }

    /// Writes the state blocks changed since they were loaded.
    pub fn put_states(&mut self, states: &States) {
        for block_no in &states.dirty {
            self.put(
                &key(STATE_PREFIX, &format!("{block_no:08x}")),
                &states.blocks[block_no],
            );
        }
    }

    /// Stores the releases of one wave, numbered consecutively, in chunks: in format version 2
    /// when they allow it (see `release_chunk`), with the wave's item table, and the store marked
    /// as layout 2 in the same commit; else in format version 1.
    pub fn put_releases(&mut self, releases: &[Release]) {
        if let Some(wave) = release_chunk::encode(releases, RELEASE_CHUNK_MAX) {
            let day = releases[0].day;
            self.put_versioned(
                &release_items_key(day, wave.first),
                RELEASE_VALUE_VERSION,
                &wave.items,
            );
            for (first, chunk) in &wave.chunks {
                self.put_versioned(&release_key(day, *first), RELEASE_VALUE_VERSION, chunk);
            }
            self.put(FORMAT_KEY, &LAYOUT_VERSION);
            return;
        }
        for chunk in releases.chunks(RELEASE_CHUNK_MAX) {
            let first = &chunk[0];
            let sequence = release_chunk::sequence_of(&first.release_id)
                .expect("release ids end in their sequence number");
            self.put(&release_key(first.day, sequence), chunk);
        }
    }

    /// Records that the input named `mark` was applied, with its report, in the same commit as
    /// what it applied.
    pub fn mark_applied(&mut self, mark: &str, report: &str) {
        self.put(&key(APPLIED_PREFIX, mark), report);
    }

    /// Records the scheduled trigger this commit's batch ran for.
    pub fn set_last_trigger(&mut self, at: DateTime<Utc>) {
        self.put(LAST_TRIGGER_KEY, &at.timestamp_micros());
    }

    pub fn set_last_day(&mut self, day: NaiveDate) {
        self.put(LAST_DAY_KEY, &day);
    }

    pub fn mark_logs_due(&mut self, day: NaiveDate) {
        self.put(&logs_due_key(day), &day);
    }

    pub fn clear_logs_due(&mut self, day: NaiveDate) {
        self.batch.remove(logs_due_key(day));
        self.writes += 1;
    }

    fn put<T: Serialize + ?Sized>(&mut self, key: &[u8], value: &T) {
        self.batch.insert(key, encode(value));
        self.writes += 1;
    }

    /// Like `put`, with another format version than [`VALUE_VERSION`] first.
    fn put_versioned<T: Serialize + ?Sized>(&mut self, key: &[u8], version: u8, value: &T) {
        let mut bytes = vec![version];
        codec()
            .serialize_into(&mut bytes, value)
            .expect("in-memory bincode encoding cannot fail");
        self.batch.insert(key, bytes);
        self.writes += 1;
    }
}

fn key(prefix: &str, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + name.len());
    key.extend_from_slice(prefix.as_bytes());
    key.extend_from_slice(name.as_bytes());
    key
}

fn ordinal_key(prefix: &str, ordinal: Ordinal) -> Vec<u8> {
    key(prefix, &format!("{ordinal:016x}"))
}

/// The key of the release chunk whose first release has sequence number `first`: the number at
/// a fixed width of ten digits, so that the keys sort numerically even past the six digits a
/// release id shows.
fn release_key(day: NaiveDate, first: u64) -> Vec<u8> {
    key(
        RELEASE_PREFIX,
        &format!("{}/{first:010}", day.format("%Y-%m-%d")),
    )
}

/// The key of the item table of the wave whose first release has sequence number `first`.
fn release_items_key(day: NaiveDate, first: u64) -> Vec<u8> {
    key(
        RELEASE_ITEMS_PREFIX,
        &format!("{}/{first:010}", day.format("%Y-%m-%d")),
    )
}

fn logs_due_key(day: NaiveDate) -> Vec<u8> {
    key(LOGS_DUE_PREFIX, &day.format("%Y-%m-%d").to_string())
}

fn codec() -> impl Options {
    bincode::DefaultOptions::new()
        .with_varint_encoding()
        .reject_trailing_bytes()
}

/// The stored bytes of a value: the format version, then bincode.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut bytes = vec![VALUE_VERSION];
    codec()
        .serialize_into(&mut bytes, value)
        .expect("in-memory bincode encoding cannot fail");
    bytes
}

/// Reads stored bytes written by any format version this build knows.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, String> {
    match bytes.split_first() {
        None => Err("empty value".into()),
        Some((&VALUE_VERSION, payload)) => codec()
            .deserialize(payload)
            .map_err(|error| format!("format version {VALUE_VERSION}: {error}")),
        Some((version, _)) => Err(format!(
            "format version {version} is not known to this build (it reads version {VALUE_VERSION}); upgrade border-release"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, Consignee, FxUsed, OrderLine, ReleaseLine, Text, Verdict};
    use rust_decimal::Decimal;
    use std::str::FromStr;

    /// Bytes written by format version 1, kept in `tests/fixtures/store-v1/`. They must decode
    /// to the same values for as long as version 1 stores may exist. Set
    /// `BORDER_RELEASE_WRITE_FIXTURES=1` only when adding a fixture for a new value type.
    fn fixture<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
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
        let store = Store::open(dir.path()).unwrap();
        let day = day("2026-11-24");
        let mut commit = Commit::new();
        commit.batch.insert(release_items_key(day, 1), items_kept);
        commit.batch.insert(release_key(day, 1), chunk_kept);
        commit.writes += 2;
        store.commit(commit).unwrap();
        assert_eq!(store.releases_of(day).unwrap(), releases);
        assert_eq!(
            store.release_of("SO-2002").unwrap(),
            Some(("2026-11-24-000002".to_owned(), day))
        );
    }

    #[test]
    fn releases_are_read_back_whole_in_either_format() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let monday = day("2026-11-24");
        // A wave in format 1, as a layout-1 store holds it, then one in format 2.
        let first = sample_release();
        let mut commit = Commit::new();
        commit.put(&release_key(monday, 1), std::slice::from_ref(&first));
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
        assert_eq!(store.get::<u32>(FORMAT_KEY).unwrap(), Some(LAYOUT_VERSION));
        let all = vec![first.clone(), second.clone(), third.clone()];
        assert_eq!(store.releases_of(monday).unwrap(), all);
        let every: Vec<Release> = store.releases().collect::<Result<_>>().unwrap();
        assert_eq!(every, all);
        assert_eq!(
            store.release_of("SO-3001").unwrap(),
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
        }
    }

    #[test]
    fn version_1_values_still_decode() {
        fixture("layout", 1_u32);
        fixture("ordinal", 1_234_567_u64);
        fixture("day", day("2026-11-24"));
        fixture(
            "item",
            Item {
                sku: "MEZCAL-750".into(),
                description: "Mezcal 750 ml".into(),
                hts: "2208.90.8000".into(),
                origin: "MX".into(),
                flags: vec![crate::model::ItemFlag::IrcTax, crate::model::ItemFlag::Pga],
            },
        );
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
            vec![0x00, 0x01, 0x02, 0x10, 0x11, 0x12, 0x13, 0x14, 0x20, 0x30]
        );
        fixture("state-block", states);
        fixture("release-chunk", vec![sample_release()]);
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
        let encoded: Vec<EncodedOrder> = orders.iter().map(EncodedOrder::new).collect();
        {
            let store = Store::open(&path).unwrap();
            let mut index = store.id_index().unwrap();
            let mut states = store.states().unwrap();
            let mut commit = Commit::new();
            let next = commit.add_orders(
                store.next_ordinal().unwrap(),
                &encoded[..1000],
                &mut index,
                &mut states,
            );
            assert_eq!(next, 1000);
            commit.put_states(&states);
            commit.put_stock(
                "TSHIRT-M",
                &StockLevel {
                    received: 5,
                    released: 0,
                    adjusted: 0,
                },
            );
            store.commit(commit).unwrap();
            // A second intake continues the ordinals.
            let mut commit = Commit::new();
            let next = commit.add_orders(
                store.next_ordinal().unwrap(),
                &encoded[1000..],
                &mut index,
                &mut states,
            );
            assert_eq!(next, 1500);
            commit.put_states(&states);
            store.commit(commit).unwrap();
        }
        let store = Store::open(&path).unwrap();
        let index = store.id_index().unwrap();
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

        let mut states = store.states().unwrap();
        assert_eq!(store.open_orders(&states).unwrap().len(), 1500);
        states.set(0, StateByte::Cancelled);
        states.set(1, StateByte::Released);
        let release = Release {
            orders: vec!["SO-00001".into()],
            ..sample_release()
        };
        let mut commit = Commit::new();
        commit.put_states(&states);
        commit.put_releases(std::slice::from_ref(&release));
        store.commit(commit).unwrap();
        drop(store);

        let store = Store::open(&path).unwrap();
        let states = store.states().unwrap();
        let open = store.open_orders(&states).unwrap();
        assert_eq!(open.len(), 1498);
        assert_eq!(open.ordinals.len(), 1498);
        assert_eq!(open.ordinals[0], 2);
        assert_eq!(open.orders[0], orders[2]);
        assert_eq!(
            store.order("SO-00000").unwrap().unwrap().2,
            OrderState::Cancelled
        );
        assert_eq!(
            store.order("SO-00001").unwrap().unwrap().2,
            OrderState::Released {
                release_id: release.release_id.to_string(),
                day: release.day
            }
        );
        assert_eq!(
            store.order("SO-00002").unwrap().unwrap().2,
            OrderState::Pending(None)
        );
        assert_eq!(store.releases_of(day("2026-11-24")).unwrap(), vec![release]);
        assert!(store.releases_of(day("2026-11-25")).unwrap().is_empty());
        assert_eq!(store.stock_level("TSHIRT-M").unwrap().on_hand(), 5);
        assert_eq!(store.order_states().unwrap().len(), 1500);
    }

    #[test]
    fn releases_past_a_million_a_day_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
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
        let store = Store::open(dir.path()).unwrap();
        let orders: Vec<EncodedOrder> = (0..2000)
            .map(|n| EncodedOrder::new(&order_numbered(n)))
            .collect();
        let mut index = store.id_index().unwrap();
        let mut states = store.states().unwrap();
        let mut commit = Commit::new();
        commit.add_orders(0, &orders, &mut index, &mut states);
        // An old held order at 3, everything else up to 1600 released.
        states.set_range(0, 1600, StateByte::Released);
        states.set(
            3,
            StateByte::Open(Some(Verdict::Held(crate::model::HoldReason::OverLimit))),
        );
        commit.put_states(&states);
        store.commit(commit).unwrap();
        let states = store.states().unwrap();
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
        let store = Store::open_waiting(&path, std::time::Duration::from_secs(5)).unwrap();
        let mut commit = Commit::new();
        commit.put_stock("A", &StockLevel::default());
        store.commit(commit).unwrap();
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
    fn a_second_open_of_the_same_store_is_refused_as_locked() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        match Store::open(dir.path()) {
            Err(StoreError::Locked { .. }) => {}
            other => panic!("expected Locked, got {:?}", other.map(|_| "a store")),
        }
    }
}
