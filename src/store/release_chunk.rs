//! How the releases of a batch are stored (format version 2): chunks of consecutive releases
//! that say once what all of them share (day, policy, lane, instant, the currencies of their
//! lines), and a table of item facts per wave, which each release line names by its place
//! instead of repeating the SKU, description, HTS code and origin.
//!
//! A wave of a million orders writes about a third of the bytes of format version 1, which
//! copied every fact into every line. Releases that do not share those fields, or whose id is
//! not the one their sequence number gives, are stored in format version 1, which any build
//! reads.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{self, Consignee, FxUsed, ItemFacts, Release, ReleaseLine, Text};

/// Consecutive releases of one wave: written from borrowed releases ([`ReleaseRef`]), read back
/// as owned ones ([`StoredRelease`]), the same bytes either way.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Chunk<R> {
    pub day: NaiveDate,
    pub policy: Text,
    pub lane: Text,
    #[serde(with = "chrono::serde::ts_nanoseconds")]
    pub released_at: DateTime<Utc>,
    /// The sequence number of the wave's first release, which names its item table.
    pub items: u64,
    /// The currencies the lines name by place.
    pub currencies: Vec<Text>,
    pub releases: Vec<R>,
}

/// A chunk as read back.
pub(super) type StoredChunk = Chunk<StoredRelease>;

#[derive(Debug, Deserialize)]
pub(super) struct StoredRelease {
    /// The release id is `model::release_id(day, seq)`.
    pub seq: u64,
    pub recipient_key: String,
    pub consignee: Consignee,
    pub orders: Vec<Text>,
    pub lines: Vec<StoredLine>,
    #[serde(with = "model::amount")]
    pub value_usd: Decimal,
    pub fx: Vec<FxUsed>,
}

/// A release as written: [`StoredRelease`], borrowing from the release.
#[derive(Debug, Serialize)]
pub(super) struct ReleaseRef<'a> {
    seq: u64,
    recipient_key: &'a str,
    consignee: &'a Consignee,
    orders: &'a [Text],
    lines: Vec<StoredLine>,
    #[serde(with = "model::amount")]
    value_usd: Decimal,
    fx: &'a [FxUsed],
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredLine {
    /// The place of the line's order among the release's orders.
    pub order: u32,
    /// The place of the line's item facts in the wave's item table.
    pub item: u32,
    /// The place of the line's currency among the chunk's currencies.
    pub currency: u32,
    pub qty: u32,
    #[serde(with = "model::amount")]
    pub unit_price: Decimal,
    #[serde(with = "model::amount")]
    pub value_usd: Decimal,
}

/// The releases of one wave as stored: the item table, and the chunks with the sequence
/// number of their first release.
pub(super) struct Wave<'a> {
    pub first: u64,
    pub items: Vec<&'a ItemFacts>,
    pub chunks: Vec<(u64, Chunk<ReleaseRef<'a>>)>,
}

/// The sequence number at the end of a release id (`2026-11-24-000001` is 1).
pub(super) fn sequence_of(release_id: &str) -> Option<u64> {
    release_id.rsplit('-').next()?.parse().ok()
}

/// Encodes the releases of one wave, `chunk_max` to a chunk; `None` when they cannot be stored
/// in this format (see the module's documentation) or there are none.
pub(super) fn encode<'a>(releases: &'a [Release], chunk_max: usize) -> Option<Wave<'a>> {
    let first = releases.first()?;
    let mut seqs = Vec::with_capacity(releases.len());
    for release in releases {
        let seq = sequence_of(&release.release_id)?;
        let canonical = u32::try_from(seq)
            .is_ok_and(|seq| model::release_id(release.day, seq) == release.release_id);
        let shared = release.day == first.day
            && release.policy == first.policy
            && release.lane == first.lane
            && release.released_at == first.released_at;
        if !canonical || !shared {
            return None;
        }
        seqs.push(seq);
    }

    // Item facts by SKU; a SKU whose facts differ between lines (which one batch never makes)
    // gets an entry for each.
    let mut items: Vec<&ItemFacts> = Vec::new();
    // The lines of one batch share one copy of each item's facts: found by its address first.
    let mut by_address: HashMap<*const ItemFacts, u32> = HashMap::new();
    let mut by_sku: HashMap<&str, Vec<u32>> = HashMap::new();
    let mut item_by_facts = |line: &'a ReleaseLine| -> u32 {
        let places = by_sku.entry(&line.item.sku).or_default();
        let same = |place: &&u32| {
            let facts = items[**place as usize];
            std::ptr::eq(facts, &*line.item) || *facts == *line.item
        };
        if let Some(place) = places.iter().find(same) {
            return *place;
        }
        let place = items.len() as u32;
        items.push(&line.item);
        places.push(place);
        place
    };
    let mut item_of = |line: &'a ReleaseLine| -> u32 {
        if let Some(place) = by_address.get(&Arc::as_ptr(&line.item)) {
            return *place;
        }
        let place = item_by_facts(line);
        by_address.insert(Arc::as_ptr(&line.item), place);
        place
    };

    let mut chunks = Vec::with_capacity(releases.len().div_ceil(chunk_max));
    for (part, part_seqs) in releases.chunks(chunk_max).zip(seqs.chunks(chunk_max)) {
        let mut currencies: Vec<Text> = Vec::new();
        let mut stored = Vec::with_capacity(part.len());
        for (release, &seq) in part.iter().zip(part_seqs) {
            let mut lines = Vec::with_capacity(release.lines.len());
            // Lines come order by order: the place of the line's order is found from the last.
            let mut order = 0;
            for line in &release.lines {
                if release.orders.get(order) != Some(&line.order_id) {
                    order = release.orders.iter().position(|id| *id == line.order_id)?;
                }
                let currency = match currencies.iter().position(|c| **c == *line.currency) {
                    Some(place) => place,
                    None => {
                        currencies.push(Text::from(&*line.currency));
                        currencies.len() - 1
                    }
                };
                lines.push(StoredLine {
                    order: order as u32,
                    item: item_of(line),
                    currency: currency as u32,
                    qty: line.qty,
                    unit_price: line.unit_price,
                    value_usd: line.value_usd,
                });
            }
            stored.push(ReleaseRef {
                seq,
                recipient_key: &release.recipient_key,
                consignee: &release.consignee,
                orders: &release.orders,
                lines,
                value_usd: release.value_usd,
                fx: &release.fx,
            });
        }
        chunks.push((
            part_seqs[0],
            Chunk {
                day: first.day,
                policy: first.policy.clone(),
                lane: first.lane.clone(),
                released_at: first.released_at,
                items: seqs[0],
                currencies,
                releases: stored,
            },
        ));
    }
    Some(Wave {
        first: seqs[0],
        items,
        chunks,
    })
}

/// An item table ready to be shared by the lines that name it.
pub(super) type Facts = Vec<Arc<ItemFacts>>;

pub(super) fn facts(items: Vec<ItemFacts>) -> Facts {
    items.into_iter().map(Arc::new).collect()
}

/// The releases of a chunk, whole, with their lines' facts from the wave's item table. An error
/// names what does not fit (a place out of range).
pub(super) fn decode(chunk: StoredChunk, facts: &Facts) -> Result<Vec<Release>, String> {
    let currencies: Vec<Arc<str>> = chunk
        .currencies
        .iter()
        .map(|currency| Arc::from(currency.as_str()))
        .collect();
    let day_prefix = chunk.day.format("%Y-%m-%d").to_string();
    let mut releases = Vec::with_capacity(chunk.releases.len());
    for stored in chunk.releases {
        let mut lines = Vec::with_capacity(stored.lines.len());
        for line in &stored.lines {
            let order_id = stored.orders.get(line.order as usize).ok_or_else(|| {
                format!(
                    "release {} names order {} of {}",
                    stored.seq,
                    line.order,
                    stored.orders.len()
                )
            })?;
            let item = facts.get(line.item as usize).ok_or_else(|| {
                format!(
                    "release {} names item {} of {}",
                    stored.seq,
                    line.item,
                    facts.len()
                )
            })?;
            let currency = currencies.get(line.currency as usize).ok_or_else(|| {
                format!(
                    "release {} names currency {} of {}",
                    stored.seq,
                    line.currency,
                    currencies.len()
                )
            })?;
            lines.push(ReleaseLine {
                order_id: order_id.clone(),
                item: item.clone(),
                qty: line.qty,
                currency: currency.clone(),
                unit_price: line.unit_price,
                value_usd: line.value_usd,
            });
        }
        releases.push(Release {
            release_id: compact_str::format_compact!("{day_prefix}-{:06}", stored.seq),
            day: chunk.day,
            policy: chunk.policy.clone(),
            lane: chunk.lane.clone(),
            recipient_key: stored.recipient_key,
            consignee: stored.consignee,
            orders: stored.orders,
            lines,
            value_usd: stored.value_usd,
            fx: stored.fx,
            released_at: chunk.released_at,
            filed: None,
            assessed: None,
        });
    }
    Ok(releases)
}
