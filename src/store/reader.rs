//! Reading the store: a consistent view of it at one commit (a redb read transaction), which
//! later commits do not change. The store's own lookups read through one; `store dump` holds
//! one for as long as it writes, while the daemon goes on taking in orders.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use bincode::Options;
use chrono::{DateTime, NaiveDate, Utc};
use redb::{ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;

use super::layout::{codec, decode, decode_item, DetailBlock, IdIndex, Ordinal, StateByte, States};
use super::{
    day_number, missing_state, open_state, release_chunk, release_key_text, OrderView,
    ReleaseChunk, Result, StateCount, StoreError, APPLIED, DETAILS, DUTY_RATES, ITEMS, LAST_DAY,
    LAST_TRIGGER, LOGS_DUE, META, NEXT_ORDINAL, ORDERS, ORDER_IDS, REFERRALS, RELEASES,
    RELEASE_DUTIES, RELEASE_FILINGS, RELEASE_ITEMS, RELEASE_VALUE_VERSION, STATES,
    STATE_BLOCK_ORDERS, STOCK, VOIDS,
};
use crate::model::{
    Assessed, Detail, DutyRate, Filed, HoldReason, Item, Order, OrderState, Referral, Release,
    StockLevel, Verdict, Void,
};
use rust_decimal::Decimal;
use std::sync::Arc;

/// What reading release chunks keeps: the item tables and the filing records already read.
#[derive(Default)]
struct Decoding {
    facts: HashMap<(NaiveDate, u64), release_chunk::Facts>,
    /// By day number: each wave's first sequence number and its filing record.
    filed: HashMap<i32, Vec<(u64, Arc<Filed>)>>,
    /// By day number: each wave's first sequence number and what it was assessed with.
    assessed: HashMap<i32, Vec<(u64, Arc<Assessed>)>>,
}

/// A view of the store at one commit.
pub struct StoreReader {
    pub(super) txn: redb::ReadTransaction,
    pub(super) path: PathBuf,
}

/// What the status page shows of the orders, read from one view: how many are in each state
/// and reason, when the first pending order in intake order was placed, and one page of the
/// held orders, in intake order, with what decided them.
#[derive(Debug, Clone)]
pub struct HeldPage {
    pub counts: Vec<StateCount>,
    pub oldest_pending: Option<DateTime<Utc>>,
    /// Every held order, those of the page included.
    pub held_total: u64,
    pub held: Vec<OrderView>,
}

/// The details of open orders, read a state block at a time as orders are walked in intake
/// order.
pub struct Details<'a> {
    reader: &'a StoreReader,
    /// The block read last, if its details were stored.
    block: Option<(u64, Option<DetailBlock>)>,
}

impl<'a> Details<'a> {
    pub fn new(reader: &'a StoreReader) -> Details<'a> {
        Details {
            reader,
            block: None,
        }
    }

    /// The detail of the order at `ordinal`, whose state byte says `verdict`.
    pub fn of(&mut self, ordinal: Ordinal, verdict: Option<Verdict>) -> Result<Option<Detail>> {
        let Some(verdict) = verdict else {
            return Ok(None);
        };
        let block_no = ordinal / STATE_BLOCK_ORDERS;
        if self
            .block
            .as_ref()
            .is_none_or(|(read, _)| *read != block_no)
        {
            self.block = Some((block_no, self.reader.detail_block(block_no)?));
        }
        let block = self.block.as_ref().and_then(|(_, block)| block.as_ref());
        let place = (ordinal % STATE_BLOCK_ORDERS) as u32;
        Ok(block.and_then(|block| block.detail(place, verdict)))
    }
}

impl StoreReader {
    /// One item of the catalogue.
    pub fn item(&self, sku: &str) -> Result<Option<Item>> {
        let table = self.table(ITEMS)?;
        let found = table.get(sku).map_err(|e| self.engine(e))?;
        found
            .map(|bytes| decode_item(bytes.value()).map_err(|m| self.corrupt("items", sku, m)))
            .transpose()
    }

    pub fn items(&self) -> Result<HashMap<String, Item>> {
        let table = self.table(ITEMS)?;
        let mut items = HashMap::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (sku, bytes) = entry.map_err(|e| self.engine(e))?;
            let item: Item =
                decode_item(bytes.value()).map_err(|m| self.corrupt("items", sku.value(), m))?;
            items.insert(item.sku.clone(), item);
        }
        Ok(items)
    }

    pub fn stock(&self) -> Result<BTreeMap<String, StockLevel>> {
        let table = self.table(STOCK)?;
        let mut stock = BTreeMap::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (sku, bytes) = entry.map_err(|e| self.engine(e))?;
            let level = decode(bytes.value()).map_err(|m| self.corrupt("stock", sku.value(), m))?;
            stock.insert(sku.value().to_owned(), level);
        }
        Ok(stock)
    }

    pub fn stock_level(&self, sku: &str) -> Result<StockLevel> {
        let table = self.table(STOCK)?;
        let found = table.get(sku).map_err(|e| self.engine(e))?;
        Ok(found
            .map(|bytes| decode(bytes.value()).map_err(|m| self.corrupt("stock", sku, m)))
            .transpose()?
            .unwrap_or_default())
    }

    /// The ordinal the next accepted order gets.
    pub fn next_ordinal(&self) -> Result<Ordinal> {
        Ok(self.meta(NEXT_ORDINAL)?.unwrap_or(0))
    }

    /// The id index of every accepted order.
    pub fn index(&self) -> Result<IdIndex> {
        let orders = usize::try_from(self.next_ordinal()?).unwrap_or(usize::MAX);
        let mut index = IdIndex::with_capacity(orders);
        let table = self.table(ORDER_IDS)?;
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (first, bytes) = entry.map_err(|e| self.engine(e))?;
            let first = first.value();
            let hashes: Vec<u64> = decode(bytes.value())
                .map_err(|m| self.corrupt("order-ids", &first.to_string(), m))?;
            for (offset, hash) in hashes.into_iter().enumerate() {
                index.insert(hash, first + offset as Ordinal);
            }
        }
        Ok(index)
    }

    /// The state byte of every accepted order.
    pub fn states(&self) -> Result<States> {
        let table = self.table(STATES)?;
        let mut blocks = BTreeMap::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (block, bytes) = entry.map_err(|e| self.engine(e))?;
            let block = block.value();
            let bytes: Vec<u8> =
                decode(bytes.value()).map_err(|m| self.corrupt("states", &block.to_string(), m))?;
            blocks.insert(block, bytes);
        }
        Ok(States::from_blocks(blocks))
    }

    /// Every accepted order with its state, in intake order.
    pub fn order_states(&self) -> Result<Vec<(Order, OrderState)>> {
        Ok(self
            .order_views()?
            .into_iter()
            .map(|view| (view.order, view.state))
            .collect())
    }

    /// Every accepted order with its state, in intake order, with the detail of an open order's
    /// verdict and the value a released order went out at.
    pub fn order_views(&self) -> Result<Vec<OrderView>> {
        let states = self.states()?;
        let voided = self.voided_ids()?;
        let mut released: HashMap<String, (String, NaiveDate, Decimal)> = HashMap::new();
        self.for_each_release(|release| {
            if voided.contains(release.release_id.as_str()) {
                return Ok(());
            }
            for order_id in &release.orders {
                let value_usd = release
                    .lines
                    .iter()
                    .filter(|line| line.order_id == *order_id)
                    .map(|line| line.value_usd)
                    .sum();
                released.insert(
                    order_id.to_string(),
                    (release.release_id.to_string(), release.day, value_usd),
                );
            }
            Ok(())
        })?;
        let mut referred: HashMap<String, (NaiveDate, Decimal)> = self
            .referrals()?
            .into_iter()
            .map(|referral| {
                let day_value = (referral.day, referral.value_usd);
                (referral.order_id.to_string(), day_value)
            })
            .collect();
        let mut out = Vec::new();
        let mut details = Details::new(self);
        let table = self.table(ORDERS)?;
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (first, bytes) = entry.map_err(|e| self.engine(e))?;
            let first = first.value();
            let orders: Vec<Order> =
                decode(bytes.value()).map_err(|m| self.corrupt("orders", &first.to_string(), m))?;
            for (offset, order) in orders.into_iter().enumerate() {
                let ordinal = first + offset as Ordinal;
                let mut detail = None;
                let mut value_usd = None;
                let state = match self.state_of(&states, ordinal)? {
                    StateByte::Open(verdict) => {
                        detail = details.of(ordinal, verdict)?;
                        open_state(verdict)
                    }
                    StateByte::Cancelled => OrderState::Cancelled,
                    StateByte::Released => match released.remove(order.order_id.as_str()) {
                        Some((release_id, day, value)) => {
                            value_usd = Some(value);
                            OrderState::Released { release_id, day }
                        }
                        None => {
                            return Err(self.corrupt(
                                "orders",
                                &order.order_id,
                                "released, but in no stored release".into(),
                            ))
                        }
                    },
                    StateByte::Referred(reason) => match referred.remove(order.order_id.as_str()) {
                        Some((day, value)) => {
                            value_usd = Some(value);
                            OrderState::Referred { reason, day }
                        }
                        None => {
                            return Err(self.corrupt(
                                "orders",
                                &order.order_id,
                                "referred, but has no referral".into(),
                            ))
                        }
                    },
                };
                out.push(OrderView {
                    order,
                    state,
                    detail,
                    value_usd,
                });
            }
        }
        Ok(out)
    }

    /// The counts of the orders by state, the first pending order's `placed_at`, and the held
    /// orders from the `skip`-th on, at most `take` of them. Only the state bytes are read
    /// whole; orders are decoded only in the chunks that hold the page's.
    pub fn held_page(&self, skip: u64, take: usize) -> Result<HeldPage> {
        let states = self.states()?;
        let counts: Vec<StateCount> = states
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
        let held_total: u64 = counts
            .iter()
            .filter(|count| count.state == "held")
            .map(|count| count.orders)
            .sum();
        let mut chunk: Option<(Ordinal, Vec<Order>)> = None;
        let oldest_pending = match states.first_pending() {
            Some(ordinal) => Some(self.order_in(&mut chunk, ordinal)?.placed_at),
            None => None,
        };
        let mut held = Vec::with_capacity(take.min(1024));
        let mut details = Details::new(self);
        let mut seen = 0u64;
        // The hold reason each byte says, looked up rather than decoded order by order.
        let held_reasons: Vec<Option<HoldReason>> = (0..=u8::MAX)
            .map(|byte| match StateByte::decode(byte) {
                Some(StateByte::Open(Some(Verdict::Held(reason)))) => Some(reason),
                _ => None,
            })
            .collect();
        let wanted = held_total.saturating_sub(skip).min(take as u64) as usize;
        'blocks: for (block_no, block) in &states.blocks {
            for (offset, byte) in block.iter().enumerate() {
                if held.len() >= wanted {
                    break 'blocks;
                }
                let Some(reason) = held_reasons[usize::from(*byte)] else {
                    continue;
                };
                seen += 1;
                if seen <= skip {
                    continue;
                }
                let ordinal = block_no * STATE_BLOCK_ORDERS + offset as Ordinal;
                let order = self.order_in(&mut chunk, ordinal)?;
                let detail = details.of(ordinal, Some(Verdict::Held(reason)))?;
                held.push(OrderView {
                    order,
                    state: OrderState::Held(reason),
                    detail,
                    value_usd: None,
                });
            }
        }
        Ok(HeldPage {
            counts,
            oldest_pending,
            held_total,
            held,
        })
    }

    /// `read` of the stored chunk of orders holding `ordinal`: its first ordinal and its bytes.
    pub(super) fn with_chunk_of<T>(
        &self,
        ordinal: Ordinal,
        read: impl FnOnce(Ordinal, &[u8]) -> Result<T>,
    ) -> Result<T> {
        let table = self.table(ORDERS)?;
        let found = table
            .range(..=ordinal)
            .map_err(|e| self.engine(e))?
            .next_back()
            .transpose()
            .map_err(|e| self.engine(e))?;
        let Some((first, bytes)) = found else {
            return Err(self.corrupt(
                "orders",
                &ordinal.to_string(),
                "no chunk holds this ordinal".into(),
            ));
        };
        read(first.value(), bytes.value())
    }

    /// The order at `ordinal`, from `chunk` when it holds it, else from its stored chunk, which
    /// then takes `chunk`'s place.
    fn order_in(
        &self,
        chunk: &mut Option<(Ordinal, Vec<Order>)>,
        ordinal: Ordinal,
    ) -> Result<Order> {
        let held = |chunk: &Option<(Ordinal, Vec<Order>)>| {
            chunk.as_ref().and_then(|(first, orders)| {
                let offset = usize::try_from(ordinal.checked_sub(*first)?).ok()?;
                orders.get(offset).cloned()
            })
        };
        if let Some(order) = held(chunk) {
            return Ok(order);
        }
        let (first, orders) = self.with_chunk_of(ordinal, |first, bytes| {
            let orders: Vec<Order> =
                decode(bytes).map_err(|m| self.corrupt("orders", &first.to_string(), m))?;
            Ok((first, orders))
        })?;
        *chunk = Some((first, orders));
        held(chunk).ok_or_else(|| {
            self.corrupt(
                "orders",
                &first.to_string(),
                format!("no order {ordinal} in the chunk"),
            )
        })
    }

    /// The releases that stand (not void) of each day from `from` to `to` that has one, and
    /// their value in US dollars: what the days' release summaries list. Read from the stored
    /// chunks without joining the lines to their item facts.
    pub fn day_figures(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, (u64, Decimal)>> {
        let mut figures: BTreeMap<NaiveDate, (u64, Decimal)> = BTreeMap::new();
        if from > to {
            return Ok(figures);
        }
        let voided: HashSet<String> = self
            .voids_in((day_number(from), 0)..=(day_number(to), u64::MAX))?
            .into_iter()
            .map(|void| void.release_id.to_string())
            .collect();
        let mut add = |day: NaiveDate, value: Decimal| {
            let day = figures.entry(day).or_default();
            day.0 += 1;
            day.1 += value;
        };
        let table = self.table(RELEASES)?;
        let range = table
            .range((day_number(from), 0)..=(day_number(to), u64::MAX))
            .map_err(|e| self.engine(e))?;
        for entry in range {
            let (key, bytes) = entry.map_err(|e| self.engine(e))?;
            match self.release_chunk_of(key.value(), bytes.value())? {
                ReleaseChunk::Whole(releases) => {
                    for release in releases {
                        if !voided.contains(release.release_id.as_str()) {
                            add(release.day, release.value_usd);
                        }
                    }
                }
                ReleaseChunk::Stored(chunk) => {
                    let day = chunk.day.format("%Y-%m-%d");
                    for release in &chunk.releases {
                        // As `release_chunk::decode` names it.
                        let release_id = format!("{day}-{:06}", release.seq);
                        if !voided.contains(&release_id) {
                            add(chunk.day, release.value_usd);
                        }
                    }
                }
            }
        }
        Ok(figures)
    }

    /// The latest day with a release not in `voided`: the last day batched, once the releases
    /// of later days are all void.
    pub fn last_day_released(&self, voided: &HashSet<String>) -> Result<Option<NaiveDate>> {
        let table = self.table(RELEASES)?;
        let items = self.table(RELEASE_ITEMS)?;
        let mut tables = Decoding::default();
        for entry in table.iter().map_err(|e| self.engine(e))?.rev() {
            let (key, bytes) = entry.map_err(|e| self.engine(e))?;
            let releases = self.releases_in(&items, key.value(), bytes.value(), &mut tables)?;
            if let Some(release) = releases
                .iter()
                .find(|release| !voided.contains(release.release_id.as_str()))
            {
                return Ok(Some(release.day));
            }
        }
        Ok(None)
    }

    /// Every void, by day and release id.
    pub fn voids(&self) -> Result<Vec<Void>> {
        self.voids_in((i32::MIN, 0)..=(i32::MAX, u64::MAX))
    }

    /// The voids of the releases of `day`, by release id.
    pub fn voids_of(&self, day: NaiveDate) -> Result<Vec<Void>> {
        let number = day_number(day);
        self.voids_in((number, 0)..=(number, u64::MAX))
    }

    /// The ids of the void releases.
    pub fn voided_ids(&self) -> Result<HashSet<String>> {
        Ok(self
            .voids()?
            .into_iter()
            .map(|void| void.release_id.to_string())
            .collect())
    }

    fn voids_in(&self, range: std::ops::RangeInclusive<(i32, u64)>) -> Result<Vec<Void>> {
        let table = self.table(VOIDS)?;
        let mut voids = Vec::new();
        for entry in table.range(range).map_err(|e| self.engine(e))? {
            let (key, bytes) = entry.map_err(|e| self.engine(e))?;
            voids.push(
                decode(bytes.value())
                    .map_err(|m| self.corrupt("voids", &release_key_text(key.value()), m))?,
            );
        }
        Ok(voids)
    }

    /// Every referral, by day and sequence.
    pub fn referrals(&self) -> Result<Vec<Referral>> {
        self.referrals_in((i32::MIN, 0)..=(i32::MAX, u64::MAX))
    }

    /// The referrals of `day`, in sequence.
    pub fn referrals_of(&self, day: NaiveDate) -> Result<Vec<Referral>> {
        let number = day_number(day);
        self.referrals_in((number, 0)..=(number, u64::MAX))
    }

    /// The referral of an order, if it was referred (referrals are few: they are read whole).
    pub fn referral_of(&self, order_id: &str) -> Result<Option<Referral>> {
        Ok(self
            .referrals()?
            .into_iter()
            .find(|referral| referral.order_id == order_id))
    }

    /// The sequence number of the last referral of `day`; 0 when it has none.
    pub fn last_referral_seq(&self, day: NaiveDate) -> Result<u64> {
        let number = day_number(day);
        let table = self.table(REFERRALS)?;
        let last = table
            .range((number, 0)..=(number, u64::MAX))
            .map_err(|e| self.engine(e))?
            .next_back()
            .transpose()
            .map_err(|e| self.engine(e))?;
        Ok(last.map_or(0, |(key, _)| key.value().1))
    }

    fn referrals_in(&self, range: std::ops::RangeInclusive<(i32, u64)>) -> Result<Vec<Referral>> {
        let table = self.table(REFERRALS)?;
        let mut referrals = Vec::new();
        for entry in table.range(range).map_err(|e| self.engine(e))? {
            let (key, bytes) = entry.map_err(|e| self.engine(e))?;
            referrals.push(
                decode(bytes.value())
                    .map_err(|m| self.corrupt("referrals", &release_key_text(key.value()), m))?,
            );
        }
        Ok(referrals)
    }

    /// Whether the store has the table (a store of an earlier layout may lack it).
    pub fn has_table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        table: TableDefinition<K, V>,
    ) -> Result<bool> {
        match self.txn.open_table(table) {
            Ok(_) => Ok(true),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
            Err(error) => Err(self.engine(error)),
        }
    }

    /// One committed release, by id.
    pub fn release(&self, release_id: &str) -> Result<Option<Release>> {
        let day = release_id
            .get(..10)
            .and_then(|day| NaiveDate::parse_from_str(day, "%Y-%m-%d").ok());
        let (Some(day), Some(seq)) = (day, release_chunk::sequence_of(release_id)) else {
            return Ok(None);
        };
        let number = day_number(day);
        let table = self.table(RELEASES)?;
        let items = self.table(RELEASE_ITEMS)?;
        let chunk = table
            .range((number, 0)..=(number, seq))
            .map_err(|e| self.engine(e))?
            .next_back();
        let Some(entry) = chunk else {
            return Ok(None);
        };
        let (key, bytes) = entry.map_err(|e| self.engine(e))?;
        let releases =
            self.releases_in(&items, key.value(), bytes.value(), &mut Decoding::default())?;
        Ok(releases
            .into_iter()
            .find(|release| release.release_id == release_id))
    }

    /// The details the last batch wrote for the orders of a state block, if it wrote any.
    pub fn detail_block(&self, block_no: u64) -> Result<Option<DetailBlock>> {
        let table = self.table(DETAILS)?;
        let Some(bytes) = table.get(block_no).map_err(|e| self.engine(e))? else {
            return Ok(None);
        };
        decode(bytes.value())
            .map(Some)
            .map_err(|m| self.corrupt("details", &block_no.to_string(), m))
    }

    /// The state byte of an order, or the damage that hides it.
    pub fn state_of(&self, states: &States, ordinal: Ordinal) -> Result<StateByte> {
        states
            .get(ordinal)
            .ok_or_else(|| missing_state(&self.path, ordinal))
    }

    /// The release and day an order went out in (a void release does not count), searching the
    /// newest days first.
    pub fn release_of(&self, order_id: &str) -> Result<Option<(String, NaiveDate)>> {
        let voided = self.voided_ids()?;
        let table = self.table(RELEASES)?;
        for entry in table.iter().map_err(|e| self.engine(e))?.rev() {
            let (key, bytes) = entry.map_err(|e| self.engine(e))?;
            let found = match self.release_chunk_of(key.value(), bytes.value())? {
                ReleaseChunk::Whole(chunk) => chunk
                    .into_iter()
                    .filter(|release| !voided.contains(release.release_id.as_str()))
                    .find(|release| release.orders.iter().any(|id| id == order_id))
                    .map(|release| (release.release_id.to_string(), release.day)),
                ReleaseChunk::Stored(chunk) => chunk
                    .releases
                    .iter()
                    .map(|release| {
                        // As `release_chunk::decode` names it.
                        let day = chunk.day.format("%Y-%m-%d");
                        (format!("{day}-{:06}", release.seq), release)
                    })
                    .filter(|(release_id, _)| !voided.contains(release_id))
                    .find(|(_, release)| release.orders.iter().any(|id| id == order_id))
                    .map(|(release_id, _)| (release_id, chunk.day)),
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The committed releases of `day`, in release id order.
    pub fn releases_of(&self, day: NaiveDate) -> Result<Vec<Release>> {
        let number = day_number(day);
        let table = self.table(RELEASES)?;
        let items = self.table(RELEASE_ITEMS)?;
        let mut tables = Decoding::default();
        let mut releases = Vec::new();
        let range = table
            .range((number, 0)..=(number, u64::MAX))
            .map_err(|e| self.engine(e))?;
        for entry in range {
            let (key, bytes) = entry.map_err(|e| self.engine(e))?;
            releases.extend(self.releases_in(&items, key.value(), bytes.value(), &mut tables)?);
        }
        Ok(releases)
    }

    /// Every committed release, by day and release id.
    pub fn releases(&self) -> Result<Vec<Release>> {
        let mut all = Vec::new();
        self.for_each_release(|release| {
            all.push(release);
            Ok(())
        })?;
        Ok(all)
    }

    /// Calls `each` with every committed release, by day and release id.
    pub fn for_each_release(&self, mut each: impl FnMut(Release) -> Result<()>) -> Result<()> {
        let table = self.table(RELEASES)?;
        let items = self.table(RELEASE_ITEMS)?;
        let mut tables = Decoding::default();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (key, bytes) = entry.map_err(|e| self.engine(e))?;
            for release in self.releases_in(&items, key.value(), bytes.value(), &mut tables)? {
                each(release)?;
            }
        }
        Ok(())
    }

    /// A stored release chunk as it was written: whole releases (format version 1), or
    /// releases that name their item facts in their wave's table (format version 2).
    fn release_chunk_of(&self, key: (i32, u64), bytes: &[u8]) -> Result<ReleaseChunk> {
        match bytes.first() {
            Some(&RELEASE_VALUE_VERSION) => codec()
                .deserialize(&bytes[1..])
                .map(ReleaseChunk::Stored)
                .map_err(|error| {
                    self.corrupt(
                        "releases",
                        &release_key_text(key),
                        format!("format version {RELEASE_VALUE_VERSION}: {error}"),
                    )
                }),
            _ => decode(bytes)
                .map(ReleaseChunk::Whole)
                .map_err(|m| self.corrupt("releases", &release_key_text(key), m)),
        }
    }

    /// The whole releases of a stored chunk, with what their wave was filed with; `tables`
    /// keeps the item tables and filing records already read.
    fn releases_in(
        &self,
        items: &redb::ReadOnlyTable<(i32, u64), &[u8]>,
        key: (i32, u64),
        bytes: &[u8],
        tables: &mut Decoding,
    ) -> Result<Vec<Release>> {
        let mut releases = match self.release_chunk_of(key, bytes)? {
            ReleaseChunk::Whole(releases) => releases,
            ReleaseChunk::Stored(chunk) => {
                let facts = match tables.facts.entry((chunk.day, chunk.items)) {
                    std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                    std::collections::hash_map::Entry::Vacant(entry) => {
                        entry.insert(self.release_items(items, key, chunk.day, chunk.items)?)
                    }
                };
                release_chunk::decode(chunk, facts)
                    .map_err(|m| self.corrupt("releases", &release_key_text(key), m))?
            }
        };
        let filed = match tables.filed.entry(key.0) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => entry.insert(self.filed_of(key.0)?),
        };
        for release in &mut releases {
            let seq = release_chunk::sequence_of(&release.release_id).unwrap_or(0);
            release.filed = wave_record(filed, seq);
        }
        let assessed = match tables.assessed.entry(key.0) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(self.wave_records(RELEASE_DUTIES, "release-duties", key.0)?)
            }
        };
        for release in &mut releases {
            let seq = release_chunk::sequence_of(&release.release_id).unwrap_or(0);
            release.assessed = wave_record(assessed, seq);
        }
        Ok(releases)
    }

    /// The records of the waves of a day (by day number) in a table keyed by day and first
    /// sequence number, by first sequence number.
    fn wave_records<T: serde::de::DeserializeOwned>(
        &self,
        definition: TableDefinition<(i32, u64), &[u8]>,
        name: &'static str,
        day: i32,
    ) -> Result<Vec<(u64, Arc<T>)>> {
        let table = self.table(definition)?;
        let mut records = Vec::new();
        for entry in table
            .range((day, 0)..=(day, u64::MAX))
            .map_err(|e| self.engine(e))?
        {
            let (key, bytes) = entry.map_err(|e| self.engine(e))?;
            let record: T = decode(bytes.value())
                .map_err(|m| self.corrupt(name, &release_key_text(key.value()), m))?;
            records.push((key.value().1, Arc::new(record)));
        }
        Ok(records)
    }

    /// Every record of a table keyed by day and first sequence number (for the dump).
    fn all_wave_records<T: serde::de::DeserializeOwned>(
        &self,
        definition: TableDefinition<(i32, u64), &[u8]>,
        name: &'static str,
    ) -> Result<Vec<(NaiveDate, u64, T)>> {
        let table = self.table(definition)?;
        let mut all = Vec::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (key, bytes) = entry.map_err(|e| self.engine(e))?;
            let (day, first) = key.value();
            let record: T = decode(bytes.value())
                .map_err(|m| self.corrupt(name, &release_key_text((day, first)), m))?;
            let day = NaiveDate::from_num_days_from_ce_opt(day)
                .ok_or_else(|| self.corrupt(name, &day.to_string(), "not a day".into()))?;
            all.push((day, first, record));
        }
        Ok(all)
    }

    /// Every assessment record, by day and first sequence number (for the dump).
    pub fn assessments(&self) -> Result<Vec<(NaiveDate, u64, Assessed)>> {
        self.all_wave_records(RELEASE_DUTIES, "release-duties")
    }

    /// The operator's duty tables, every row ever imported, by prefix, origin, program and day.
    pub fn duty_rates(&self) -> Result<Vec<DutyRate>> {
        let table = self.table(DUTY_RATES)?;
        let mut rows = Vec::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (key, bytes) = entry.map_err(|e| self.engine(e))?;
            rows.push(
                decode(bytes.value()).map_err(|m| self.corrupt("duty-rates", key.value(), m))?,
            );
        }
        Ok(rows)
    }

    /// The filing records of the waves of a day (by day number), by first sequence number.
    fn filed_of(&self, day: i32) -> Result<Vec<(u64, Arc<Filed>)>> {
        self.wave_records(RELEASE_FILINGS, "release-filings", day)
    }

    /// Every filing record, by day and first sequence number (for the dump).
    pub fn filings(&self) -> Result<Vec<(NaiveDate, u64, Filed)>> {
        self.all_wave_records(RELEASE_FILINGS, "release-filings")
    }

    /// The item table of the wave of `day` whose first release has sequence number `first`, for
    /// the release chunk stored under `chunk_key`.
    fn release_items(
        &self,
        table: &redb::ReadOnlyTable<(i32, u64), &[u8]>,
        chunk_key: (i32, u64),
        day: NaiveDate,
        first: u64,
    ) -> Result<release_chunk::Facts> {
        let key = (day_number(day), first);
        let bytes = table.get(key).map_err(|e| self.engine(e))?.ok_or_else(|| {
            self.corrupt(
                "releases",
                &release_key_text(chunk_key),
                "the item table of its wave is missing".into(),
            )
        })?;
        let items: Vec<crate::model::ItemFacts> = match bytes.value().split_first() {
            Some((&RELEASE_VALUE_VERSION, payload)) => {
                codec().deserialize(payload).map_err(|error| {
                    self.corrupt(
                        "release-items",
                        &release_key_text(key),
                        format!("format version {RELEASE_VALUE_VERSION}: {error}"),
                    )
                })?
            }
            _ => {
                return Err(self.corrupt(
                    "release-items",
                    &release_key_text(key),
                    format!("an item table must have format version {RELEASE_VALUE_VERSION}"),
                ))
            }
        };
        Ok(release_chunk::facts(items))
    }

    /// The report of an input applied under this mark (see [`Commit::mark_applied`]).
    pub fn applied(&self, mark: &str) -> Result<Option<String>> {
        let table = self.table(APPLIED)?;
        let found = table.get(mark).map_err(|e| self.engine(e))?;
        found
            .map(|bytes| decode(bytes.value()).map_err(|m| self.corrupt("applied", mark, m)))
            .transpose()
    }

    /// The scheduled trigger the last scheduled batch ran for.
    pub fn last_trigger(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .meta::<i64>(LAST_TRIGGER)?
            .and_then(DateTime::from_timestamp_micros))
    }

    /// The last release day a batch ran for.
    pub fn last_day(&self) -> Result<Option<NaiveDate>> {
        self.meta(LAST_DAY)
    }

    /// Days whose release log and manifest must be (re)written from the store.
    pub fn logs_due(&self) -> Result<Vec<NaiveDate>> {
        self.due_days(LOGS_DUE, "logs-due")
    }

    /// The days a table of due marks holds.
    pub fn due_days(
        &self,
        definition: TableDefinition<i32, ()>,
        name: &'static str,
    ) -> Result<Vec<NaiveDate>> {
        let table = self.table(definition)?;
        let mut days = Vec::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (day, _) = entry.map_err(|e| self.engine(e))?;
            let number = day.value();
            days.push(
                NaiveDate::from_num_days_from_ce_opt(number)
                    .ok_or_else(|| self.corrupt(name, &number.to_string(), "not a day".into()))?,
            );
        }
        Ok(days)
    }

    pub fn meta<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let table = match self.txn.open_table(META) {
            Ok(table) => table,
            // A file just created has no tables yet.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(self.engine(error)),
        };
        let found = table.get(name).map_err(|e| self.engine(e))?;
        found
            .map(|bytes| decode(bytes.value()).map_err(|m| self.corrupt("meta", name, m)))
            .transpose()
    }

    pub fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        table: TableDefinition<K, V>,
    ) -> Result<redb::ReadOnlyTable<K, V>> {
        self.txn.open_table(table).map_err(|e| self.engine(e))
    }

    pub fn engine(&self, source: impl Into<redb::Error>) -> StoreError {
        StoreError::Engine {
            path: self.path.clone(),
            source: source.into(),
        }
    }

    pub fn corrupt(&self, table: &'static str, key: &str, message: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            table,
            key: key.to_owned(),
            message,
        }
    }
}

/// The record of the wave a release of sequence number `seq` belongs to: the last wave that
/// starts at or before it.
fn wave_record<T>(records: &[(u64, Arc<T>)], seq: u64) -> Option<Arc<T>> {
    records
        .iter()
        .rev()
        .find(|(first, _)| *first <= seq)
        .map(|(_, record)| record.clone())
}
