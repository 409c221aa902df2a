//! The durable state of the warehouse, on sled. The only module that knows sled and the
//! on-disk encoding; everything else sees items, stock, orders and releases.
//!
//! **Layout.** One sled tree, keys grouped by a prefix, so that one `apply_batch` commits a whole
//! intake file or a whole batch atomically:
//!
//! | key | value |
//! | --- | --- |
//! | `meta/format` | the layout version of the store |
//! | `meta/last-day` | the last release day batched |
//! | `meta/logs-due/<day>` | the day's release log and manifest must be written from the store |
//! | `meta/verdicts` | the last batch's verdict on every open order it examined, in one value |
//! | `item/<sku>` | `Item` |
//! | `stock/<sku>` | `StockLevel` (received, released, adjusted) |
//! | `open/<order_id>` | `Order`, pending or held |
//! | `closed/<order_id>` | `ClosedOrder`: the order and its fate (released or cancelled) |
//! | `release/<release_id>` | `Release`; release ids sort by day, then sequence |
//!
//! Writes are few per order: intake writes one key per new order; a batch moves each released
//! order from `open/` to `closed/`, writes one key per release and per SKU touched, and the
//! verdicts of all waiting orders as a single value. Open orders are found by a prefix scan that
//! never touches closed ones.
//!
//! **Encoding.** Every value starts with a one-byte format version, then bincode. A version this
//! build does not know is an error, never a guess.
//!
//! **Durability.** `commit` applies the batch, flushes sled, then fsyncs every file of the store
//! and its folders: sled's own flush uses `sync_file_range`, which does not reach the disk's cache.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::{Fate, Item, Order, OrderState, Release, StockLevel, Verdict};

/// The layout version written to `meta/format`.
pub const LAYOUT_VERSION: u32 = 1;

/// The format version that starts every stored value.
pub const VALUE_VERSION: u8 = 1;

/// Memory sled may use for its page cache.
pub const CACHE_BYTES_MAX: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {path} is in use by another process (is the daemon running? then use the daemon's API, or stop it first)")]
    Locked { path: PathBuf },
    #[error("store at {path}: {source}")]
    Sled { path: PathBuf, source: sled::Error },
    #[error("store at {path}: {source}")]
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
}

type Result<T> = std::result::Result<T, StoreError>;

/// A released or cancelled order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedOrder {
    pub order: Order,
    pub fate: Fate,
}

/// The last batch's verdict on the open orders it examined.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdicts {
    pub day: Option<NaiveDate>,
    pub entries: Vec<(String, Verdict)>,
}

/// The store, opened by this process alone.
pub struct Store {
    db: sled::Db,
    path: PathBuf,
}

/// Writes to apply together, atomically, with [`Store::commit`].
#[derive(Default)]
pub struct Commit {
    batch: sled::Batch,
    writes: usize,
}

const FORMAT_KEY: &[u8] = b"meta/format";
const LAST_DAY_KEY: &[u8] = b"meta/last-day";
const LOGS_DUE_PREFIX: &str = "meta/logs-due/";
const VERDICTS_KEY: &[u8] = b"meta/verdicts";
const ITEM_PREFIX: &str = "item/";
const STOCK_PREFIX: &str = "stock/";
const OPEN_PREFIX: &str = "open/";
const CLOSED_PREFIX: &str = "closed/";
const RELEASE_PREFIX: &str = "release/";

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
        let store = Store {
            db,
            path: path.to_owned(),
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

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies `commit` atomically and makes it durable before returning.
    pub fn commit(&self, commit: Commit) -> Result<()> {
        self.apply(commit)?;
        crate::crashpoint::reached("store-after-apply");
        self.db.flush().map_err(|source| self.sled_error(source))?;
        sync_tree(&self.path).map_err(|source| StoreError::Io {
            path: self.path.clone(),
            source,
        })
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
        self.db
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

    /// An order and, for a released or cancelled one, its fate.
    pub fn order(&self, order_id: &str) -> Result<Option<(Order, Option<Fate>)>> {
        if let Some(order) = self.get::<Order>(&key(OPEN_PREFIX, order_id))? {
            return Ok(Some((order, None)));
        }
        Ok(self
            .get::<ClosedOrder>(&key(CLOSED_PREFIX, order_id))?
            .map(|closed| (closed.order, Some(closed.fate))))
    }

    /// Every open (pending or held) order, by order id.
    pub fn open_orders(&self) -> Result<Vec<Order>> {
        self.scan::<Order>(OPEN_PREFIX)
            .map(|entry| entry.map(|(_, order)| order))
            .collect()
    }

    /// Every released or cancelled order, by order id.
    pub fn closed_orders(&self) -> impl Iterator<Item = Result<ClosedOrder>> + '_ {
        self.scan::<ClosedOrder>(CLOSED_PREFIX)
            .map(|entry| entry.map(|(_, closed)| closed))
    }

    pub fn verdicts(&self) -> Result<Verdicts> {
        Ok(self.get(VERDICTS_KEY)?.unwrap_or_default())
    }

    /// The state of every accepted order, by order id.
    pub fn order_states(&self) -> Result<Vec<(Order, OrderState)>> {
        let verdicts: HashMap<String, Verdict> = self.verdicts()?.entries.into_iter().collect();
        let mut states = Vec::new();
        for order in self.open_orders()? {
            let state = match verdicts.get(&order.order_id) {
                Some(Verdict::Held(reason)) => OrderState::Held(*reason),
                Some(Verdict::Waiting(reason)) => OrderState::Pending(Some(*reason)),
                None => OrderState::Pending(None),
            };
            states.push((order, state));
        }
        for closed in self.closed_orders() {
            let closed = closed?;
            let state = match closed.fate {
                Fate::Released { release_id, day } => OrderState::Released { release_id, day },
                Fate::Cancelled { .. } => OrderState::Cancelled,
            };
            states.push((closed.order, state));
        }
        states.sort_by(|a, b| a.0.order_id.cmp(&b.0.order_id));
        Ok(states)
    }

    /// The committed releases of `day`, in release id order.
    pub fn releases_of(&self, day: NaiveDate) -> Result<Vec<Release>> {
        let prefix = format!("{RELEASE_PREFIX}{}-", day.format("%Y-%m-%d"));
        self.scan::<Release>(&prefix)
            .map(|entry| entry.map(|(_, release)| release))
            .collect()
    }

    /// Every committed release, by release id.
    pub fn releases(&self) -> impl Iterator<Item = Result<Release>> + '_ {
        self.scan::<Release>(RELEASE_PREFIX)
            .map(|entry| entry.map(|(_, release)| release))
    }

    /// The last release day a batch ran for.
    pub fn last_day(&self) -> Result<Option<NaiveDate>> {
        self.get(LAST_DAY_KEY)
    }

    /// Days whose release log and manifest must be (re)written from the store.
    pub fn logs_due(&self) -> Result<Vec<NaiveDate>> {
        self.scan::<NaiveDate>(LOGS_DUE_PREFIX)
            .map(|entry| entry.map(|(_, day)| day))
            .collect()
    }

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.db.get(key).map_err(|source| self.sled_error(source))? {
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
        self.db.scan_prefix(prefix.as_bytes()).map(move |entry| {
            let (key, bytes) = entry.map_err(|source| self.sled_error(source))?;
            let value = decode(&bytes).map_err(|message| self.corrupt(&key, message))?;
            let name = String::from_utf8_lossy(&key[skip..]).into_owned();
            Ok((name, value))
        })
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

impl Commit {
    pub fn new() -> Commit {
        Commit::default()
    }

    /// How many keys the commit writes or removes.
    pub fn writes(&self) -> usize {
        self.writes
    }

    pub fn put_item(&mut self, item: &Item) {
        self.put(&key(ITEM_PREFIX, &item.sku), item);
    }

    pub fn put_stock(&mut self, sku: &str, level: &StockLevel) {
        self.put(&key(STOCK_PREFIX, sku), level);
    }

    /// Stores a new order as open.
    pub fn put_open_order(&mut self, order: &Order) {
        self.put(&key(OPEN_PREFIX, &order.order_id), order);
    }

    /// Moves an open order to closed with its fate.
    pub fn close_order(&mut self, order: &Order, fate: Fate) {
        self.remove(&key(OPEN_PREFIX, &order.order_id));
        self.put(
            &key(CLOSED_PREFIX, &order.order_id),
            &ClosedOrder {
                order: order.clone(),
                fate,
            },
        );
    }

    pub fn put_release(&mut self, release: &Release) {
        self.put(&key(RELEASE_PREFIX, &release.release_id), release);
    }

    pub fn set_last_day(&mut self, day: NaiveDate) {
        self.put(LAST_DAY_KEY, &day);
    }

    pub fn set_verdicts(&mut self, verdicts: &Verdicts) {
        self.put(VERDICTS_KEY, verdicts);
    }

    pub fn mark_logs_due(&mut self, day: NaiveDate) {
        self.put(&logs_due_key(day), &day);
    }

    pub fn clear_logs_due(&mut self, day: NaiveDate) {
        self.remove(&logs_due_key(day));
    }

    fn put<T: Serialize + ?Sized>(&mut self, key: &[u8], value: &T) {
        self.batch.insert(key, encode(value));
        self.writes += 1;
    }

    fn remove(&mut self, key: &[u8]) {
        self.batch.remove(key);
        self.writes += 1;
    }
}

fn key(prefix: &str, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + name.len());
    key.extend_from_slice(prefix.as_bytes());
    key.extend_from_slice(name.as_bytes());
    key
}

fn logs_due_key(day: NaiveDate) -> Vec<u8> {
    key(LOGS_DUE_PREFIX, &day.format("%Y-%m-%d").to_string())
}

/// The stored bytes of a value: the format version, then bincode.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut bytes = vec![VALUE_VERSION];
    bincode::serialize_into(&mut bytes, value).expect("in-memory bincode encoding cannot fail");
    bytes
}

/// Reads stored bytes written by any format version this build knows.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, String> {
    match bytes.split_first() {
        None => Err("empty value".into()),
        Some((&VALUE_VERSION, payload)) => {
            bincode::deserialize(payload).map_err(|error| format!("format version {VALUE_VERSION}: {error}"))
        }
        Some((version, _)) => Err(format!(
            "format version {version} is not known to this build (it reads version {VALUE_VERSION}); upgrade border-release"
        )),
    }
}

/// fsyncs every file under `dir`, then the folders themselves.
fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            sync_tree(&path)?;
        } else {
            match fs::File::open(&path) {
                Ok(file) => file.sync_all()?,
                // sled removes old snapshot and blob files on its own schedule.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
    }
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Address, Consignee, FxUsed, HoldReason, OrderLine, ReleaseLine, WaitReason,
    };
    use rust_decimal::Decimal;
    use std::str::FromStr;

    /// Bytes written by format version 1, kept in `tests/fixtures/store-v1/`. They must decode
    /// to the same values for as long as version 1 stores may exist. Set
    /// `BORDER_RELEASE_WRITE_FIXTURES=1` only when adding a fixture for a new value type.
    fn fixture<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
        name: &str,
        value: T,
    ) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/store-v1")
            .join(format!("{name}.hex"));
        if std::env::var_os("BORDER_RELEASE_WRITE_FIXTURES").is_some() && !path.exists() {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            let hex: String = encode(&value)
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            fs::write(&path, hex + "\n").unwrap();
        }
        let text =
            fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let text = text.trim();
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
            .collect();
        assert_eq!(bytes[0], 1, "{name}: fixture is not format version 1");
        assert_eq!(
            decode::<T>(&bytes).unwrap(),
            value,
            "{name}: version 1 bytes decode differently"
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
                sku: "TSHIRT-M".into(),
                qty: 2,
                description: "Cotton T-shirt".into(),
                hts: "6109.10.0012".into(),
                origin: "MX".into(),
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
        fixture("layout", LAYOUT_VERSION);
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
        fixture("order", sample_order());
        fixture(
            "closed-order",
            ClosedOrder {
                order: sample_order(),
                fate: Fate::Released {
                    release_id: "2026-11-24-000001".into(),
                    day: day("2026-11-24"),
                },
            },
        );
        fixture(
            "cancelled-order",
            ClosedOrder {
                order: sample_order(),
                fate: Fate::Cancelled {
                    at: "2026-11-24T15:00:00Z".parse().unwrap(),
                },
            },
        );
        fixture("release", sample_release());
        fixture(
            "verdicts",
            Verdicts {
                day: Some(day("2026-11-24")),
                entries: vec![
                    ("SO-1".into(), Verdict::Waiting(WaitReason::DailyLimit)),
                    ("SO-2".into(), Verdict::Waiting(WaitReason::Stock)),
                    ("SO-3".into(), Verdict::Held(HoldReason::OverLimit)),
                    ("SO-4".into(), Verdict::Held(HoldReason::ExcludedOrigin)),
                    ("SO-5".into(), Verdict::Held(HoldReason::ExcludedGoods)),
                    ("SO-6".into(), Verdict::Held(HoldReason::ExcludedFlag)),
                    ("SO-7".into(), Verdict::Held(HoldReason::NoRate)),
                ],
            },
        );
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

    #[test]
    fn a_commit_survives_reopening_and_moves_orders_between_open_and_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let order = sample_order();
        {
            let store = Store::open(&path).unwrap();
            let mut commit = Commit::new();
            commit.put_open_order(&order);
            commit.put_stock(
                "TSHIRT-M",
                &StockLevel {
                    received: 5,
                    released: 0,
                    adjusted: 0,
                },
            );
            store.commit(commit).unwrap();
            assert_eq!(store.open_orders().unwrap(), vec![order.clone()]);
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.order("SO-1001").unwrap(), Some((order.clone(), None)));
        let fate = Fate::Released {
            release_id: "2026-11-24-000001".into(),
            day: day("2026-11-24"),
        };
        let mut commit = Commit::new();
        commit.close_order(&order, fate.clone());
        commit.put_release(&sample_release());
        store.commit(commit).unwrap();
        assert!(store.open_orders().unwrap().is_empty());
        assert_eq!(store.order("SO-1001").unwrap(), Some((order, Some(fate))));
        assert_eq!(
            store.releases_of(day("2026-11-24")).unwrap(),
            vec![sample_release()]
        );
        assert!(store.releases_of(day("2026-11-25")).unwrap().is_empty());
        assert_eq!(store.stock_level("TSHIRT-M").unwrap().on_hand(), 5);
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
