//! The store's layout: how orders, their states and the store's other records are laid out
//! in values, and how a commit is gathered before it is written. Private to `store`: nothing
//! outside it sees an ordinal, a state byte, the id index or an encoded order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bincode::Options;
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::release_chunk;
use super::{
    day_number, LAST_DAY, LAST_TRIGGER, NEXT_ORDINAL, RELEASE_CHUNK_MAX, RELEASE_VALUE_VERSION,
    STATE_BLOCK_ORDERS, VALUE_VERSION,
};
use crate::model::{
    Detail, DutyRate, HoldReason, Item, Order, Release, StockLevel, Text, Verdict, WaitReason,
};

/// The key of a duty row: its prefix, origin, program and first day, so that a row imported
/// again with the same four replaces the one held.
pub fn duty_key(row: &DutyRate) -> String {
    format!(
        "{} {} {} {}",
        row.hts_prefix, row.origin, row.program, row.from
    )
}

/// The position of an accepted order in intake order, from 0.
pub(super) type Ordinal = u64;

/// Writes to apply together, atomically, with [`Store::commit`]: what each table gains (or, for
/// `logs-due`, loses), in the order given; a later write of a key replaces an earlier one.
#[derive(Default)]
pub struct Commit {
    pub meta: Vec<(&'static str, Vec<u8>)>,
    /// Meta keys removed, after `meta` is written.
    pub meta_removed: Vec<&'static str>,
    pub items: Vec<(String, Vec<u8>)>,
    pub stock: Vec<(String, Vec<u8>)>,
    pub orders: Vec<(Ordinal, Vec<u8>)>,
    pub order_ids: Vec<(Ordinal, Vec<u8>)>,
    pub states: Vec<(u64, Vec<u8>)>,
    pub details: Vec<(u64, Vec<u8>)>,
    pub releases: Vec<((i32, u64), Vec<u8>)>,
    pub release_items: Vec<((i32, u64), Vec<u8>)>,
    pub release_filings: Vec<((i32, u64), Vec<u8>)>,
    pub release_duties: Vec<((i32, u64), Vec<u8>)>,
    pub duty_rates: Vec<(String, Vec<u8>)>,
    pub voids: Vec<((i32, u64), Vec<u8>)>,
    pub referrals: Vec<((i32, u64), Vec<u8>)>,
    /// A day, and whether its files are now due (or written).
    pub logs_due: Vec<(i32, bool)>,
    /// A day, and whether its referral files are now due (or written).
    pub referrals_due: Vec<(i32, bool)>,
    pub applied: Vec<(String, Vec<u8>)>,
}

/// An order checked and encoded for the store, ready to be taken in: intake holds accepted
/// orders this way, in a fraction of the memory of the decoded orders. What it holds is the
/// store's own business.
#[derive(Debug, Clone)]
pub struct PreparedOrder {
    order_id: Text,
    pub(super) bytes: Vec<u8>,
    pub(super) id_hash: u64,
}

impl PreparedOrder {
    pub fn new(order: &Order) -> PreparedOrder {
        // Sized exactly: a million of them are held at once in a large intake's chunks.
        let size = codec()
            .serialized_size(order)
            .expect("in-memory bincode sizing cannot fail");
        let mut bytes = Vec::with_capacity(size as usize);
        codec()
            .serialize_into(&mut bytes, order)
            .expect("in-memory bincode encoding cannot fail");
        PreparedOrder {
            order_id: order.order_id.clone(),
            bytes,
            id_hash: id_hash(&order.order_id),
        }
    }

    pub fn order_id(&self) -> &str {
        &self.order_id
    }

    pub fn id(&self) -> &Text {
        &self.order_id
    }

    /// The order again.
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
    /// An empty index with room for `orders` entries: growing a table of millions doubles it
    /// several times over.
    pub fn with_capacity(orders: usize) -> IdIndex {
        IdIndex {
            first: HashMap::with_capacity_and_hasher(orders, BuildHashed::default()),
            more: Vec::new(),
        }
    }

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

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.first.len() + self.more.len()
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
    /// Referred to a formal entry (`orders refer`), with the reason it was held for.
    Referred(HoldReason),
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
            StateByte::Referred(reason) => ("referred", Some(reason.word())),
        }
    }

    pub fn encode(self) -> u8 {
        match self {
            StateByte::Open(None) => 0x00,
            StateByte::Open(Some(Verdict::Waiting(WaitReason::DailyLimit))) => 0x01,
            StateByte::Open(Some(Verdict::Waiting(WaitReason::Stock))) => 0x02,
            StateByte::Open(Some(Verdict::Waiting(WaitReason::NotDue))) => 0x03,
            StateByte::Open(Some(Verdict::Held(HoldReason::OverLimit))) => 0x10,
            StateByte::Open(Some(Verdict::Held(HoldReason::ExcludedOrigin))) => 0x11,
            StateByte::Open(Some(Verdict::Held(HoldReason::ExcludedGoods))) => 0x12,
            StateByte::Open(Some(Verdict::Held(HoldReason::ExcludedFlag))) => 0x13,
            StateByte::Open(Some(Verdict::Held(HoldReason::NoRate))) => 0x14,
            StateByte::Open(Some(Verdict::Held(HoldReason::IncompleteItem))) => 0x15,
            StateByte::Released => 0x20,
            StateByte::Cancelled => 0x30,
            // The held state's byte plus 0x30.
            StateByte::Referred(HoldReason::OverLimit) => 0x40,
            StateByte::Referred(HoldReason::ExcludedOrigin) => 0x41,
            StateByte::Referred(HoldReason::ExcludedGoods) => 0x42,
            StateByte::Referred(HoldReason::ExcludedFlag) => 0x43,
            StateByte::Referred(HoldReason::NoRate) => 0x44,
            StateByte::Referred(HoldReason::IncompleteItem) => 0x45,
        }
    }

    pub fn decode(byte: u8) -> Option<StateByte> {
        let all = [
            StateByte::Open(None),
            StateByte::Open(Some(Verdict::Waiting(WaitReason::DailyLimit))),
            StateByte::Open(Some(Verdict::Waiting(WaitReason::Stock))),
            StateByte::Open(Some(Verdict::Waiting(WaitReason::NotDue))),
            StateByte::Open(Some(Verdict::Held(HoldReason::OverLimit))),
            StateByte::Open(Some(Verdict::Held(HoldReason::ExcludedOrigin))),
            StateByte::Open(Some(Verdict::Held(HoldReason::ExcludedGoods))),
            StateByte::Open(Some(Verdict::Held(HoldReason::ExcludedFlag))),
            StateByte::Open(Some(Verdict::Held(HoldReason::NoRate))),
            StateByte::Open(Some(Verdict::Held(HoldReason::IncompleteItem))),
            StateByte::Released,
            StateByte::Cancelled,
            StateByte::Referred(HoldReason::OverLimit),
            StateByte::Referred(HoldReason::ExcludedOrigin),
            StateByte::Referred(HoldReason::ExcludedGoods),
            StateByte::Referred(HoldReason::ExcludedFlag),
            StateByte::Referred(HoldReason::NoRate),
            StateByte::Referred(HoldReason::IncompleteItem),
        ];
        all.into_iter().find(|state| state.encode() == byte)
    }
}

/// What the last batch that examined the orders of one state block said of them beyond their
/// reason words (see [`Detail`]): its day and cutoff, and the detail of each order it gave a
/// verdict, by place in the block. Every batch examines every open order, so it writes the
/// block of each; a block's entries for orders no longer open are never read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DetailBlock {
    pub day: NaiveDate,
    pub cutoff: DateTime<Utc>,
    pub entries: Vec<(u32, Detail)>,
}

impl DetailBlock {
    /// The detail of the order at `offset` in the block, whose state byte says `verdict`.
    pub fn detail(&self, offset: u32, verdict: Verdict) -> Option<Detail> {
        if verdict == Verdict::Waiting(WaitReason::NotDue) {
            return Some(Detail::NotDue {
                day: self.day,
                cutoff: self.cutoff,
            });
        }
        let found = self
            .entries
            .binary_search_by_key(&offset, |(place, _)| *place)
            .ok()?;
        Some(self.entries[found].1.clone())
    }
}

/// The state bytes of every accepted order, in blocks, with the blocks changed since loading.
#[derive(Debug, Clone, Default)]
pub struct States {
    pub blocks: BTreeMap<u64, Vec<u8>>,
    /// The blocks changed since they were read or committed.
    pub dirty: BTreeSet<u64>,
}

impl States {
    /// The states of stored blocks, none changed yet.
    pub fn from_blocks(blocks: BTreeMap<u64, Vec<u8>>) -> States {
        States {
            blocks,
            dirty: BTreeSet::new(),
        }
    }

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
                    Some(StateByte::Released | StateByte::Cancelled | StateByte::Referred(_))
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

    /// Whether the commit writes nothing.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
            && self.meta_removed.is_empty()
            && self.voids.is_empty()
            && self.release_filings.is_empty()
            && self.release_duties.is_empty()
            && self.duty_rates.is_empty()
            && self.referrals.is_empty()
            && self.items.is_empty()
            && self.stock.is_empty()
            && self.orders.is_empty()
            && self.order_ids.is_empty()
            && self.states.is_empty()
            && self.details.is_empty()
            && self.releases.is_empty()
            && self.release_items.is_empty()
            && self.logs_due.is_empty()
            && self.referrals_due.is_empty()
            && self.applied.is_empty()
    }

    pub fn put_item(&mut self, item: &Item) {
        self.items.push((
            item.sku.clone(),
            versioned(ITEM_VALUE_VERSION, &StoredItem::of(item)),
        ));
    }

    pub fn put_duty_rate(&mut self, row: &DutyRate) {
        self.duty_rates.push((duty_key(row), encode(row)));
    }

    pub fn put_stock(&mut self, sku: &str, level: &StockLevel) {
        self.stock.push((sku.to_owned(), encode(level)));
    }

    /// Records the ordinal the next accepted order gets.
    pub fn set_next_ordinal(&mut self, next: Ordinal) {
        self.meta.push((NEXT_ORDINAL, encode(&next)));
    }

    /// Writes the state blocks changed since they were loaded.
    pub fn put_states(&mut self, states: &States) {
        for block_no in &states.dirty {
            self.states
                .push((*block_no, encode(&states.blocks[block_no])));
        }
    }

    /// Stores the releases of one wave, numbered consecutively, in chunks: in format version 2
    /// when they allow it (see `release_chunk`), with the wave's item table; else in format
    /// version 1.
    pub fn put_releases(&mut self, releases: &[Release]) {
        // What the wave is filed with, once, under its first release.
        if let Some((first, filed)) = releases
            .first()
            .and_then(|first| Some((first, first.filed.as_ref()?)))
        {
            let sequence = release_chunk::sequence_of(&first.release_id)
                .expect("release ids end in their sequence number");
            self.release_filings
                .push(((day_number(first.day), sequence), encode(&**filed)));
        }
        // What the wave's duties and fees are estimated from, likewise.
        if let Some((first, assessed)) = releases
            .first()
            .and_then(|first| Some((first, first.assessed.as_ref()?)))
        {
            let sequence = release_chunk::sequence_of(&first.release_id)
                .expect("release ids end in their sequence number");
            self.release_duties
                .push(((day_number(first.day), sequence), encode(&**assessed)));
        }
        if let Some(wave) = release_chunk::encode(releases, RELEASE_CHUNK_MAX) {
            let day = day_number(releases[0].day);
            self.release_items.push((
                (day, wave.first),
                versioned(RELEASE_VALUE_VERSION, &wave.items),
            ));
            for (first, chunk) in &wave.chunks {
                self.releases
                    .push(((day, *first), versioned(RELEASE_VALUE_VERSION, chunk)));
            }
            return;
        }
        for chunk in releases.chunks(RELEASE_CHUNK_MAX) {
            let first = &chunk[0];
            let sequence = release_chunk::sequence_of(&first.release_id)
                .expect("release ids end in their sequence number");
            self.releases
                .push(((day_number(first.day), sequence), encode(chunk)));
        }
    }

    /// Records that the input named `mark` was applied, with its report, in the same commit as
    /// what it applied.
    pub fn mark_applied(&mut self, mark: &str, report: &str) {
        self.applied.push((mark.to_owned(), encode(report)));
    }

    /// Records the scheduled trigger this commit's batch ran for.
    pub fn set_last_trigger(&mut self, at: DateTime<Utc>) {
        self.meta
            .push((LAST_TRIGGER, encode(&at.timestamp_micros())));
    }

    pub fn set_last_day(&mut self, day: NaiveDate) {
        self.meta.push((LAST_DAY, encode(&day)));
    }

    /// Records `day` as the last day batched, or that no day counts as batched.
    pub fn put_last_day(&mut self, day: Option<NaiveDate>) {
        match day {
            Some(day) => self.set_last_day(day),
            None => self.meta_removed.push(LAST_DAY),
        }
    }

    pub fn mark_logs_due(&mut self, day: NaiveDate) {
        self.logs_due.push((day_number(day), true));
    }

    pub fn clear_logs_due(&mut self, day: NaiveDate) {
        self.logs_due.push((day_number(day), false));
    }
}

/// The stored value of a chunk of orders (the bincode of `Vec<Order>`: its length, then each
/// order), and of their id hashes.
pub fn order_chunk(orders: &[PreparedOrder]) -> (Vec<u8>, Vec<u8>) {
    let length = encode(&(orders.len() as u64));
    let total = length.len() + orders.iter().map(|order| order.bytes.len()).sum::<usize>();
    let mut bytes = Vec::with_capacity(total);
    bytes.extend_from_slice(&length);
    for order in orders {
        bytes.extend_from_slice(&order.bytes);
    }
    let hashes: Vec<u64> = orders.iter().map(|order| order.id_hash).collect();
    (bytes, encode(&hashes))
}

/// The format version of items with a MID and a USMCA claim; items of format version 1 have
/// neither.
pub const ITEM_VALUE_VERSION: u8 = 3;

/// An item as format version 3 stores it: every field, always (bincode has no optional fields).
#[derive(Serialize, serde::Deserialize)]
struct StoredItem {
    sku: String,
    description: String,
    hts: String,
    origin: String,
    flags: Vec<crate::model::ItemFlag>,
    mid: Option<String>,
    usmca: bool,
}

/// An item as format version 1 stored it.
#[derive(serde::Deserialize)]
struct ItemV1 {
    sku: String,
    description: String,
    hts: String,
    origin: String,
    flags: Vec<crate::model::ItemFlag>,
}

impl StoredItem {
    fn of(item: &Item) -> StoredItem {
        StoredItem {
            sku: item.sku.clone(),
            description: item.description.clone(),
            hts: item.hts.clone(),
            origin: item.origin.clone(),
            flags: item.flags.clone(),
            mid: item.mid.clone(),
            usmca: item.usmca,
        }
    }
}

/// Reads a stored item of format version 1 or 3.
pub fn decode_item(bytes: &[u8]) -> std::result::Result<Item, String> {
    let stored = match bytes.split_first() {
        Some((&ITEM_VALUE_VERSION, payload)) => codec()
            .deserialize(payload)
            .map_err(|error| format!("format version {ITEM_VALUE_VERSION}: {error}"))?,
        _ => {
            let item: ItemV1 = decode(bytes)?;
            StoredItem {
                sku: item.sku,
                description: item.description,
                hts: item.hts,
                origin: item.origin,
                flags: item.flags,
                mid: None,
                usmca: false,
            }
        }
    };
    let StoredItem {
        sku,
        description,
        hts,
        origin,
        flags,
        mid,
        usmca,
    } = stored;
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

/// The stored bytes of a value with another format version than [`VALUE_VERSION`] first.
fn versioned<T: Serialize + ?Sized>(version: u8, value: &T) -> Vec<u8> {
    let mut bytes = vec![version];
    codec()
        .serialize_into(&mut bytes, value)
        .expect("in-memory bincode encoding cannot fail");
    bytes
}

pub fn codec() -> impl Options {
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
