//! The daily release planner: which open orders ship on a release day, in which releases.
//!
//! A pure function of (snapshot, day, policy, rules): no clock, no store, no logging. The batch
//! executor applies the `Plan` it returns; `plan` prints it. The same inputs give the same plan,
//! byte for byte.
//!
//! The algorithm (README, "How a release day works"): candidates are the open orders placed before the day's
//! cutoff, served oldest first (ties by order id). Each is held if the policy excludes one of its
//! items, if its currency has no rate, or if its own value is over the limit. Otherwise it joins
//! its recipient's release for the day when the recipient still has a release left, the
//! recipient's total for the day stays within the limit, and every line is in stock; stock is
//! taken at that moment. Otherwise it waits, with the reason. Orders ship whole or not at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use crate::identity::{self, IdentityRule};
use crate::model::{
    Detail, Exclusion, FxUsed, HoldReason, Item, ItemFacts, Missing, Order, Release, ReleaseLine,
    Shortfall, Text, Verdict, WaitReason,
};
use crate::money::{self, Conversion, Rates};
use crate::policy::Policy;

/// What one recipient has already received on the release day (earlier waves).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Claim {
    pub releases: u32,
    pub value_usd: Decimal,
}

/// The state the planner reads.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// Every open (pending or held) order, in any order.
    pub orders: &'a [Order],
    /// The item catalogue. Every SKU of an open order is in it (intake refuses unknown SKUs).
    pub items: &'a HashMap<String, Item>,
    /// Units on hand per SKU; a missing SKU has none.
    pub on_hand: &'a HashMap<String, u64>,
    /// The day's earlier releases per recipient key.
    pub claims: &'a HashMap<String, Claim>,
    /// Releases of the day already committed: new ones are numbered after them.
    pub releases_before: u32,
}

/// Everything else a plan depends on, given as arguments.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    /// Orders placed before this instant are candidates (the day's cutoff, see [`cutoff_instant`]).
    pub cutoff: DateTime<Utc>,
    pub rates: &'a Rates,
    pub identity: IdentityRule,
    /// The instant recorded as `released_at` in each release.
    pub at: DateTime<Utc>,
}

/// What a batch for the day would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub day: NaiveDate,
    /// The day's cutoff: orders placed before it were candidates.
    pub cutoff: DateTime<Utc>,
    pub policy: String,
    pub lane: String,
    /// New releases, numbered in the order their first order was served.
    pub releases: Vec<Release>,
    /// Every candidate that does not ship, with why, in order of service.
    pub verdicts: Vec<(Text, Verdict)>,
    /// What decided each of `verdicts`, in the same order.
    pub details: Vec<Detail>,
    /// Open orders placed at or after the cutoff, oldest first (ties by id): not examined on
    /// this day.
    pub not_due: Vec<Text>,
    /// Units taken per SKU.
    pub stock_taken: BTreeMap<String, u64>,
}

/// Where the orders a plan examined are among the snapshot's orders, so that the batch sets
/// their states without finding them by id. Not part of the plan: the same plan comes from the
/// same orders in any order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Places {
    /// The place of each order of the plan's `verdicts`, in the same order.
    pub verdicts: Vec<usize>,
    /// The places of the released orders, in order of service.
    pub released: Vec<usize>,
    /// The places of the orders not due, as the plan's `not_due`.
    pub not_due: Vec<usize>,
}

/// The instant of `day`'s cutoff in the warehouse's zone.
/// A cutoff that a daylight-saving change skips moves to the first instant after the gap;
/// one that happens twice is the earlier of the two.
pub fn cutoff_instant(day: NaiveDate, cutoff: NaiveTime, zone: Tz) -> DateTime<Utc> {
    let local = day.and_time(cutoff);
    match zone.from_local_datetime(&local) {
        LocalResult::Single(instant) => instant.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => first_instant_at_or_after(local, zone),
    }
}

/// The first instant whose local time in `zone` is `local` or later: for a local time that a
/// daylight-saving change skips, the instant the gap ends. Offsets are within 14 hours of UTC
/// and no zone turns its clocks back within a day of a gap, so local time rises with the
/// instant over the searched span and a binary search over its seconds finds it.
fn first_instant_at_or_after(local: chrono::NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    let span = chrono::Duration::hours(14);
    let mut low = (local - span).and_utc(); // local time there is before `local`
    let mut high = (local + span).and_utc(); // and there at or after it
    while high - low > chrono::Duration::seconds(1) {
        let middle = low + (high - low) / 2;
        if middle.with_timezone(&zone).naive_local() >= local {
            high = middle;
        } else {
            low = middle;
        }
    }
    let whole_second = high.timestamp();
    DateTime::from_timestamp(whole_second, 0).expect("within chrono's range")
}

/// Plans the release batch for `day` under `policy`, the one in force on that day.
pub fn plan(snapshot: &Snapshot<'_>, day: NaiveDate, policy: &Policy, rules: &Rules<'_>) -> Plan {
    plan_placed(snapshot, day, policy, rules).0
}

/// [`plan`], with where the orders it examined are in the snapshot.
pub fn plan_placed(
    snapshot: &Snapshot<'_>,
    day: NaiveDate,
    policy: &Policy,
    rules: &Rules<'_>,
) -> (Plan, Places) {
    // Sorted as (instant, the id's first bytes, place), which sit together in memory, going to
    // the orders themselves only to break a tie between ids that share their first bytes (many
    // orders share their second).
    let mut service: Vec<(DateTime<Utc>, IdPrefix, usize)> =
        Vec::with_capacity(snapshot.orders.len());
    service.extend(
        snapshot
            .orders
            .iter()
            .enumerate()
            .filter(|(_, order)| order.placed_at < rules.cutoff)
            .map(|(place, order)| (order.placed_at, id_prefix(&order.order_id), place)),
    );
    let mut not_due_places: Vec<usize> = snapshot
        .orders
        .iter()
        .enumerate()
        .filter(|(_, order)| order.placed_at >= rules.cutoff)
        .map(|(place, _)| place)
        .collect();
    not_due_places.sort_unstable_by(|a, b| {
        let (a, b) = (&snapshot.orders[*a], &snapshot.orders[*b]);
        (a.placed_at, &a.order_id).cmp(&(b.placed_at, &b.order_id))
    });
    service.sort_unstable_by(|(a_at, a_id, a), (b_at, b_id, b)| {
        a_at.cmp(b_at).then_with(|| a_id.cmp(b_id)).then_with(|| {
            snapshot.orders[*a]
                .order_id
                .cmp(&snapshot.orders[*b].order_id)
        })
    });
    let candidates: Vec<(usize, &Order)> = service
        .into_iter()
        .map(|(_, _, place)| (place, &snapshot.orders[place]))
        .collect();

    // Facts looked up for every line, worked out once per SKU and currency.
    let skus: FastMap<&str, Sku> = snapshot
        .items
        .iter()
        .map(|(sku, item)| {
            let facts = Sku {
                excluded: policy.exclusion(item),
                missing: policy.filing.missing(item),
                facts: Arc::new(ItemFacts {
                    sku: sku.clone(),
                    description: item.description.clone(),
                    hts: item.hts.clone(),
                    origin: item.origin.clone(),
                }),
            };
            (sku.as_str(), facts)
        })
        .collect();
    let mut on_hand: FastMap<&str, u64> = snapshot
        .on_hand
        .iter()
        .map(|(sku, qty)| (sku.as_str(), *qty))
        .collect();
    let mut stock_taken: FastMap<&str, u64> = FastMap::default();
    // Sized once for the most they can hold: growing vectors of hundreds of thousands of
    // entries copies them into fresh pages again and again (pages never written to take no
    // memory).
    let most = candidates.len();
    let mut opened: Vec<Opened> = Vec::with_capacity(most);
    let mut release_of_recipient: FastMap<String, u32> = FastMap::default();
    let mut verdicts = Vec::with_capacity(most);
    let mut details = Vec::with_capacity(most);
    let mut verdict_orders = Vec::with_capacity(most);
    // Each released order's place and release (its index among the new ones), in order of
    // service.
    let mut served: Vec<(usize, u32)> = Vec::with_capacity(most);
    // Units per SKU of the order being served (an order has a few lines).
    let mut need: Vec<(&str, u64)> = Vec::new();

    // First the decisions, in order of service: which orders ship, in which release. Candidates
    // are examined on their own (exclusions, rate, value, recipient key) a block at a time on
    // the other cores, since none of that depends on the orders served before them, while the
    // block before is served in order on this one. The releases themselves are built
    // afterwards, each at its final size.
    let examiners = crate::machine::cores()
        .saturating_sub(1)
        .clamp(1, EXAMINE_THREADS_MAX);
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel(EXAMINED_BLOCKS_AHEAD);
        let (blocks, skus) = (&candidates, &skus);
        scope.spawn(move || {
            for block in blocks.chunks(EXAMINE_BLOCK_ORDERS) {
                let examined = examine_all(block, skus, day, policy, rules, examiners);
                if sender.send(examined).is_err() {
                    break;
                }
            }
        });
        let examined_blocks = candidates
            .chunks(EXAMINE_BLOCK_ORDERS)
            .zip(receiver)
            .flat_map(|(block, examined)| block.iter().zip(examined));
        for (&(place, order), examined) in examined_blocks {
            let examined = match examined {
                Ok(examined) => examined,
                Err((reason, detail)) => {
                    verdicts.push((order.order_id.clone(), Verdict::Held(reason)));
                    details.push(detail);
                    verdict_orders.push(place);
                    continue;
                }
            };
            // The first wave of a day has no claims: spare hashing every key.
            let prior = if snapshot.claims.is_empty() {
                Claim::default()
            } else {
                let claim = snapshot.claims.get(&examined.recipient_key);
                claim.copied().unwrap_or_default()
            };
            let current = release_of_recipient.get(&examined.recipient_key).copied();
            let value_today = prior.value_usd
                + current.map_or(Decimal::ZERO, |index| opened[index as usize].value_usd);
            let release_left =
                current.is_some() || prior.releases < policy.releases_per_recipient_per_day;
            if !release_left || value_today + examined.value_usd > policy.value_limit_usd {
                verdicts.push((
                    order.order_id.clone(),
                    Verdict::Waiting(WaitReason::DailyLimit),
                ));
                details.push(Detail::DailyLimit {
                    releases_used: prior.releases + u32::from(current.is_some()),
                    value_used_usd: value_today,
                    order_value_usd: examined.value_usd,
                    releases_per_recipient_per_day: policy.releases_per_recipient_per_day,
                    value_limit_usd: policy.value_limit_usd,
                });
                verdict_orders.push(place);
                continue;
            }
            need.clear();
            for line in &order.lines {
                let qty = u64::from(line.qty);
                match need.iter_mut().find(|(sku, _)| *sku == line.sku.as_str()) {
                    Some((_, units)) => *units += qty,
                    None => need.push((line.sku.as_str(), qty)),
                }
            }
            let in_stock = need
                .iter()
                .all(|(sku, qty)| on_hand.get(sku).copied().unwrap_or(0) >= *qty);
            if !in_stock {
                verdicts.push((order.order_id.clone(), Verdict::Waiting(WaitReason::Stock)));
                details.push(shortfalls(&need, &on_hand));
                verdict_orders.push(place);
                continue;
            }
            for (sku, qty) in &need {
                if let Some(left) = on_hand.get_mut(sku) {
                    *left -= qty;
                }
                *stock_taken.entry(sku).or_default() += qty;
            }

            let index = match current {
                Some(index) => index,
                None => {
                    let index = opened.len() as u32;
                    release_of_recipient.insert(examined.recipient_key.clone(), index);
                    opened.push(Opened {
                        recipient_key: examined.recipient_key,
                        value_usd: Decimal::ZERO,
                        orders: 0,
                        fx: BTreeSet::new(),
                    });
                    index
                }
            };
            let release = &mut opened[index as usize];
            release.value_usd += examined.value_usd;
            release.orders += 1;
            if let Some(fx) = examined.fx {
                release.fx.insert(fx);
            }
            served.push((place, index));
        }
    });
    drop(release_of_recipient);
    drop(candidates);

    let releases = build_releases(
        opened,
        &served,
        &skus,
        &Frame {
            orders: snapshot.orders,
            day,
            policy,
            rules,
            first_seq: snapshot.releases_before + 1,
            day_prefix: day.format("%Y-%m-%d").to_string(),
        },
    );
    let released_orders = served.into_iter().map(|(place, _)| place).collect();

    let plan = Plan {
        day,
        cutoff: rules.cutoff,
        policy: policy.name.clone(),
        lane: policy.lane.clone(),
        releases,
        verdicts,
        details,
        not_due: not_due_places
            .iter()
            .map(|place| snapshot.orders[*place].order_id.clone())
            .collect(),
        stock_taken: stock_taken
            .into_iter()
            .map(|(sku, qty)| (sku.to_owned(), qty))
            .collect(),
    };
    let places = Places {
        verdicts: verdict_orders,
        released: released_orders,
        not_due: not_due_places,
    };
    (plan, places)
}

/// The first bytes of an order id, padded with zeros. Two ids whose prefixes differ sort as their
/// prefixes do (where one id ends, its padding sorts before any byte the other has there, as the
/// shorter id sorts first); only ids with the same prefix need comparing whole.
type IdPrefix = [u8; 16];

fn id_prefix(order_id: &str) -> IdPrefix {
    let mut prefix = [0u8; 16];
    let bytes = order_id.as_bytes();
    let len = bytes.len().min(prefix.len());
    prefix[..len].copy_from_slice(&bytes[..len]);
    prefix
}

/// The stock detail of an order that waits for stock: each SKU it needs more of than is on hand.
fn shortfalls(need: &[(&str, u64)], on_hand: &FastMap<&str, u64>) -> Detail {
    let short = need
        .iter()
        .filter_map(|(sku, needed)| {
            let on_hand = on_hand.get(sku).copied().unwrap_or(0);
            (on_hand < *needed).then(|| Shortfall {
                sku: (*sku).into(),
                needed: *needed,
                on_hand,
            })
        })
        .collect();
    Detail::Stock { short }
}

/// A SKU of the catalogue, with what the policy says of it and the facts a release line records.
struct Sku {
    excluded: Option<Exclusion>,
    /// What the item lacks for a filing under the policy.
    missing: Vec<Missing>,
    facts: Arc<ItemFacts>,
}

use crate::model::FastMap;

/// A candidate that the policy lets through, valued.
struct Examined {
    recipient_key: String,
    value_usd: Decimal,
    fx: Option<FxUsed>,
}

/// A release opened while serving: what deciding the next orders needs of it.
struct Opened {
    recipient_key: String,
    value_usd: Decimal,
    /// How many orders it has.
    orders: u32,
    fx: BTreeSet<FxUsed>,
}

/// What building the releases reads besides the decisions.
struct Frame<'a> {
    orders: &'a [Order],
    day: NaiveDate,
    policy: &'a Policy,
    rules: &'a Rules<'a>,
    /// The sequence number of the first new release.
    first_seq: u32,
    /// The day as release ids show it (`model::release_id`), formatted once.
    day_prefix: String,
}

/// Builds the releases decided while serving (`served`: each released order's place and release,
/// in order of service), each with its orders in order of service and its lines valued, every
/// vector at its final size; on as many threads as the machine has cores, each building a run
/// of consecutive releases.
fn build_releases(
    opened: Vec<Opened>,
    served: &[(usize, u32)],
    skus: &FastMap<&str, Sku>,
    frame: &Frame<'_>,
) -> Vec<Release> {
    // The places of each release's orders, release after release: a counting sort of `served`
    // by release, which keeps the order of service within each.
    let mut starts: Vec<usize> = Vec::with_capacity(opened.len() + 1);
    let mut start = 0;
    for release in &opened {
        starts.push(start);
        start += release.orders as usize;
    }
    starts.push(start);
    let mut places = vec![0usize; served.len()];
    let mut next = starts.clone();
    for &(place, release) in served {
        places[next[release as usize]] = place;
        next[release as usize] += 1;
    }
    drop(next);

    // The orders and lines of each release are built on every core, a run of consecutive
    // releases each; the releases themselves are then put together in one vector of their final
    // size (joining vectors of whole releases would hold a copy of part of them).
    let threads = crate::machine::cores().clamp(1, EXAMINE_THREADS_MAX);
    let per_thread = opened.len().div_ceil(threads).max(1);
    let (starts, places) = (&starts, &places);
    let built: Vec<Vec<Contents>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..opened.len())
            .step_by(per_thread)
            .map(|first| {
                let end = (first + per_thread).min(opened.len());
                scope.spawn(move || {
                    let mut conversions = FastMap::default();
                    (first..end)
                        .map(|index| {
                            let own = &places[starts[index]..starts[index + 1]];
                            contents(own, skus, &mut conversions, frame)
                        })
                        .collect::<Vec<Contents>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a release-building thread panicked"))
            .collect()
    });
    let mut releases = Vec::with_capacity(opened.len());
    let contents = built.into_iter().flatten();
    for (index, (release, (orders, lines))) in opened.into_iter().zip(contents).enumerate() {
        let seq = frame.first_seq + index as u32;
        releases.push(Release {
            release_id: compact_str::format_compact!("{}-{seq:06}", frame.day_prefix),
            day: frame.day,
            policy: frame.policy.name.as_str().into(),
            lane: frame.policy.lane.as_str().into(),
            recipient_key: release.recipient_key,
            consignee: frame.orders[places[starts[index]]].recipient.clone(),
            orders,
            lines,
            value_usd: release.value_usd,
            fx: release.fx.into_iter().collect(),
            released_at: frame.rules.at,
            filed: None,
            assessed: None,
        });
    }
    releases
}

/// A release's order ids and lines.
type Contents = (Vec<Text>, Vec<ReleaseLine>);

/// The order ids and lines of the release of the orders at `places`, each vector at its final
/// size.
fn contents<'a>(
    places: &[usize],
    skus: &FastMap<&str, Sku>,
    conversions: &mut FastMap<&'a str, (Conversion, Arc<str>)>,
    frame: &Frame<'a>,
) -> Contents {
    let orders = frame.orders;
    let line_count = places.iter().map(|&place| orders[place].lines.len()).sum();
    let mut lines = Vec::with_capacity(line_count);
    let mut order_ids = Vec::with_capacity(places.len());
    for &place in places {
        let order = &orders[place];
        order_ids.push(order.order_id.clone());
        let (conversion, currency) =
            conversions
                .entry(order.currency.as_str())
                .or_insert_with(|| {
                    let conversion = frame
                        .rules
                        .rates
                        .on(&order.currency, frame.day)
                        .expect("a served order's currency has a rate");
                    (conversion, Arc::from(order.currency.as_str()))
                });
        for line in &order.lines {
            let facts = &skus[line.sku.as_str()];
            let value_usd = money::line_value_usd(line.qty, line.unit_price, conversion)
                .expect("a served order was valued");
            lines.push(ReleaseLine {
                order_id: order.order_id.clone(),
                item: facts.facts.clone(),
                qty: line.qty,
                currency: currency.clone(),
                unit_price: line.unit_price,
                value_usd,
            });
        }
    }
    (order_ids, lines)
}

/// Examines every candidate, in order, on `threads` threads; each thread looks up the rate of a
/// currency once.
fn examine_all<'a>(
    candidates: &[(usize, &'a Order)],
    skus: &FastMap<&str, Sku>,
    day: NaiveDate,
    policy: &Policy,
    rules: &Rules<'a>,
    threads: usize,
) -> Vec<Result<Examined, (HoldReason, Detail)>> {
    if threads <= 1 {
        let mut conversions: FastMap<&str, Option<Conversion>> = FastMap::default();
        return candidates
            .iter()
            .map(|(_, order)| examine(order, skus, &mut conversions, day, policy, rules))
            .collect();
    }
    let per_thread = candidates.len().div_ceil(threads).max(1);
    let parts: Vec<Vec<Result<Examined, (HoldReason, Detail)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = candidates
            .chunks(per_thread)
            .map(|part| {
                scope.spawn(move || {
                    let mut conversions: FastMap<&str, Option<Conversion>> = FastMap::default();
                    part.iter()
                        .map(|(_, order)| {
                            examine(order, skus, &mut conversions, day, policy, rules)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("an examining thread panicked"))
            .collect()
    });
    let mut all = Vec::with_capacity(candidates.len());
    for part in parts {
        all.extend(part);
    }
    all
}

/// Most threads examining candidates.
const EXAMINE_THREADS_MAX: usize = 4;

/// Candidates examined together before they are served: enough to keep the threads busy,
/// few enough that their recipient keys and values take little memory.
const EXAMINE_BLOCK_ORDERS: usize = 32 * 1024;

/// Blocks examined ahead of the one being served.
const EXAMINED_BLOCKS_AHEAD: usize = 2;

/// Checks one order against the policy on its own: exclusions, rate, its own value.
fn examine<'a>(
    order: &'a Order,
    skus: &FastMap<&str, Sku>,
    conversions: &mut FastMap<&'a str, Option<Conversion>>,
    day: NaiveDate,
    policy: &Policy,
    rules: &Rules<'a>,
) -> Result<Examined, (HoldReason, Detail)> {
    // Of the lines' exclusions, the first in the documented order (origin, goods, flag),
    // whatever the order of the lines; of lines excluded alike, the first.
    let mut excluded: Option<(&str, &Exclusion)> = None;
    for line in &order.lines {
        let sku = skus.get(line.sku.as_str()).unwrap_or_else(|| {
            panic!(
                "invariant broken: order {} names SKU {} missing from the catalogue",
                order.order_id, line.sku
            )
        });
        if let Some(rule) = &sku.excluded {
            if excluded.is_none_or(|(_, earlier)| rank(rule.reason()) < rank(earlier.reason())) {
                excluded = Some((line.sku.as_str(), rule));
            }
        }
    }
    if let Some((sku, rule)) = excluded {
        let detail = Detail::Excluded {
            sku: sku.into(),
            rule: rule.clone(),
            policy: policy.name.as_str().into(),
        };
        return Err((rule.reason(), detail));
    }
    // Then the first line whose item lacks what a filing needs.
    if let Some((line, sku)) = order
        .lines
        .iter()
        .map(|line| (line, &skus[line.sku.as_str()]))
        .find(|(_, sku)| !sku.missing.is_empty())
    {
        let detail = Detail::IncompleteItem {
            sku: line.sku.clone(),
            missing: sku.missing.clone(),
            policy: policy.name.as_str().into(),
        };
        return Err((HoldReason::IncompleteItem, detail));
    }
    let Some(conversion) = conversions
        .entry(order.currency.as_str())
        .or_insert_with(|| rules.rates.on(&order.currency, day))
        .as_ref()
    else {
        let detail = Detail::NoRate {
            currency: order.currency.clone(),
            day,
        };
        return Err((HoldReason::NoRate, detail));
    };

    let value_usd = money::value_order(order, conversion);
    let over = |value_usd| {
        let detail = Detail::OverLimit {
            value_usd,
            value_limit_usd: policy.value_limit_usd,
        };
        (HoldReason::OverLimit, detail)
    };
    let value_usd = value_usd.ok_or_else(|| over(None))?;
    if value_usd > policy.value_limit_usd {
        return Err(over(Some(value_usd)));
    }
    Ok(Examined {
        recipient_key: recipient_key(rules.identity, order),
        value_usd,
        fx: conversion.fx().cloned(),
    })
}

/// Where a hold reason stands in the documented order: origin, goods, flag, incomplete item,
/// rate, over-limit.
fn rank(reason: HoldReason) -> u8 {
    match reason {
        HoldReason::ExcludedOrigin => 0,
        HoldReason::ExcludedGoods => 1,
        HoldReason::ExcludedFlag => 2,
        HoldReason::IncompleteItem => 3,
        HoldReason::NoRate => 4,
        HoldReason::OverLimit => 5,
    }
}

/// The recipient key of an order. Under `customer-id`, an order stored before the rule was
/// chosen may have no id: it is keyed by name and address instead, in a space of its own.
pub fn recipient_key(rule: IdentityRule, order: &Order) -> String {
    identity::recipient_key(rule, &order.recipient).unwrap_or_else(|| {
        let key = identity::recipient_key(IdentityRule::NameAndAddress, &order.recipient)
            .expect("name-and-address always gives a key");
        format!("no-id:{key}")
    })
}

/// A plan that breaks a rule it must keep.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invariant broken in the plan for {day}: {message}")]
pub struct PlanBroken {
    pub day: NaiveDate,
    pub message: String,
}

/// Checks what every plan must keep before it is committed: each order at most once, per
/// recipient at most the policy's releases and value for the day, no stock taken beyond what is
/// on hand, each release's value the sum of its lines.
pub fn verify(plan: &Plan, snapshot: &Snapshot<'_>, policy: &Policy) -> Result<(), PlanBroken> {
    let broken = |message: String| PlanBroken {
        day: plan.day,
        message,
    };
    let orders: usize = plan
        .releases
        .iter()
        .map(|release| release.orders.len())
        .sum();
    let mut seen: FastMap<&str, ()> = FastMap::with_capacity_and_hasher(orders, Default::default());
    let mut per_recipient: FastMap<&str, Claim> =
        FastMap::with_capacity_and_hasher(plan.releases.len(), Default::default());
    for release in &plan.releases {
        for order_id in &release.orders {
            if seen.insert(order_id.as_str(), ()).is_some() {
                return Err(broken(format!("order {order_id} planned twice")));
            }
        }
        let lines_total: Decimal = release.lines.iter().map(|line| line.value_usd).sum();
        if lines_total != release.value_usd {
            return Err(broken(format!(
                "release {} value is not the sum of its lines",
                release.release_id
            )));
        }
        let claim = per_recipient
            .entry(release.recipient_key.as_str())
            .or_insert_with(|| {
                snapshot
                    .claims
                    .get(&release.recipient_key)
                    .copied()
                    .unwrap_or_default()
            });
        claim.releases += 1;
        claim.value_usd += release.value_usd;
        if claim.releases > policy.releases_per_recipient_per_day {
            return Err(broken(format!(
                "release {} is one too many for its recipient",
                release.release_id
            )));
        }
        if claim.value_usd > policy.value_limit_usd {
            return Err(broken(format!(
                "release {} takes its recipient over the limit",
                release.release_id
            )));
        }
    }
    for (order_id, _) in &plan.verdicts {
        if seen.contains_key(order_id.as_str()) {
            return Err(broken(format!("order {order_id} both released and not")));
        }
    }
    for (sku, taken) in &plan.stock_taken {
        let on_hand = snapshot.on_hand.get(sku).copied().unwrap_or(0);
        if *taken > on_hand {
            return Err(broken(format!(
                "{taken} units of {sku} taken with {on_hand} on hand"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Ids whose prefixes differ sort as their prefixes do, so that the sort of candidates
        /// compares whole ids only when the prefixes are the same.
        #[test]
        fn id_prefixes_sort_as_the_ids_do(
            a in "[\\x00-\\x7fé]{0,20}",
            b in "[\\x00-\\x7fé]{0,20}",
        ) {
            let (pa, pb) = (id_prefix(&a), id_prefix(&b));
            if pa != pb {
                proptest::prop_assert_eq!(pa.cmp(&pb), a.cmp(&b));
            }
        }
    }

    #[test]
    fn an_id_prefix_pads_with_zeros() {
        assert_eq!(&id_prefix("W-1")[..4], b"W-1\0");
        assert_eq!(id_prefix("0123456789abcdefXYZ"), *b"0123456789abcdef");
        assert!(id_prefix("AB") < id_prefix("AB\u{1}"));
    }
}
