//! The rules as a small model, run side by side with the library on a real store.
//!
//! proptest generates sequences of up to 30 operations: orders taken in (new ones, and the same
//! order ids sent again with the same or other content), orders cancelled, stock received and
//! counted, release batches for today or a later day, plans (which must change nothing), and
//! restarts (the store closed and opened again from its folder). The model in this file applies
//! each operation by the rules of the README ("How a release day works") and the promises of
//! RELIABILITY.md, written from those pages and not from the planner. After every operation the store, read through its public API, must agree with
//! the model: which orders it holds and their content, each order's state and reason, the stock of
//! every SKU, and every release; and `audit` must find every invariant holding.
//!
//! The world is kept small on purpose, so that the model stays readable: one policy, US dollars
//! and one peso rate (in force from the third day on), a fixed catalogue, three recipients whose
//! names and addresses differ (so one recipient is simply one person of the list).
//!
//! `PROPTEST_CASES` sets the number of cases (256 by default; proptest reads the variable even
//! though the config below sets the number). A failing case is written by proptest to
//! `tests/model.proptest-regressions` and replayed first on every later run.
//! The long run: `PROPTEST_CASES=10000 cargo test --release --test model`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use border_release::audit;
use border_release::clock::Clock;
use border_release::config::{self, Config};
use border_release::model::{HoldReason, OrderState, Release, Verdict, WaitReason};
use border_release::operations::{self, BatchError, CancelError, InputKind, IntakeReport, Source};
use border_release::store::Store;
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use rust_decimal::{Decimal, RoundingStrategy};

// ---------------------------------------------------------------------------------------------
// The world: config, catalogue, recipients, instants and prices
// ---------------------------------------------------------------------------------------------

const TIMEZONE: chrono_tz::Tz = chrono_tz::America::Los_Angeles;
/// `schedule.cutoff`: orders placed before this local time join that day's batch.
const CUTOFF: &str = "06:00";
/// The policy's `value_limit_usd`.
const VALUE_LIMIT: &str = "100";
const POLICY: &str = "test-321";
const EXCLUDED_ORIGINS: &[&str] = &["CN"];
const EXCLUDED_HTS_PREFIXES: &[&str] = &["2208", "24"];
const EXCLUDED_FLAGS: &[&str] = &["irc-tax", "pga"];
/// The one peso rate: US dollars per peso, from a day inside the generated span, so that pesos
/// are held with `no-rate` on the first days and freed later.
const MXN_USD: &str = "0.0541";
const MXN_FROM: &str = "2026-11-25";
/// The first day the clock shows.
const FIRST_TODAY: &str = "2026-11-23";

struct ItemFacts {
    sku: &'static str,
    hts: &'static str,
    origin: &'static str,
    flags: &'static [&'static str],
}

/// The catalogue, taken in before the first operation. Some items are excluded by the policy
/// for one reason, some for several (to check which reason wins).
#[rustfmt::skip]
const CATALOGUE: [ItemFacts; 7] = [
    ItemFacts { sku: "TSHIRT", hts: "6109.10.0012", origin: "MX", flags: &[] },
    ItemFacts { sku: "MUG", hts: "6912.00.4810", origin: "MX", flags: &[] },
    // A flag the policy does not exclude.
    ItemFacts { sku: "BOOTS", hts: "6403.91.6075", origin: "MX", flags: &["quota"] },
    // Excluded by origin.
    ItemFacts { sku: "RADIO", hts: "8527.12.0000", origin: "CN", flags: &[] },
    // Excluded by HTS prefix and by flag: the goods reason comes first.
    ItemFacts { sku: "TEQUILA", hts: "2208.90.4000", origin: "MX", flags: &["irc-tax"] },
    // Excluded by flag.
    ItemFacts { sku: "VITAMINS", hts: "2106.90.9998", origin: "US", flags: &["pga"] },
    // Excluded for all three reasons: origin comes first.
    ItemFacts { sku: "CIGARS", hts: "2402.10.3000", origin: "CN", flags: &["irc-tax"] },
];
/// A SKU that is not in the catalogue: lines naming it are rejected.
const UNKNOWN_SKU: &str = "GHOST";

struct Person {
    name: &'static str,
    street: &'static str,
    zip: &'static str,
}

#[rustfmt::skip]
const RECIPIENTS: [Person; 3] = [
    Person { name: "Ana Ruiz", street: "1200 Market St", zip: "92101" },
    Person { name: "Luis Ortega", street: "55 Pine Ave", zip: "92102" },
    Person { name: "Mei Chen", street: "9 Oak Rd", zip: "92103" },
];

const ORDER_IDS: [&str; 30] = [
    "SO-1", "SO-2", "SO-3", "SO-4", "SO-5", "SO-6", "SO-7", "SO-8", "SO-9", "SO-10", "SO-11",
    "SO-12", "SO-13", "SO-14", "SO-15", "SO-16", "SO-17", "SO-18", "SO-19", "SO-20", "SO-21",
    "SO-22", "SO-23", "SO-24", "SO-25", "SO-26", "SO-27", "SO-28", "SO-29", "SO-30",
];
const UNKNOWN_ORDER_ID: &str = "SO-404";

/// Instants orders are placed at, over a few days around the first day's cutoff
/// (06:00 at the warehouse is 14:00 UTC on these days), written with several offsets.
const PLACED_AT: [&str; 9] = [
    "2026-11-22T20:00:00-08:00",
    "2026-11-23T05:59:59-08:00", // a second before the first day's cutoff
    "2026-11-23T06:00:00-08:00", // the cutoff itself: not before it, so the next day's
    "2026-11-23T14:00:00Z",      // the same instant, written in UTC
    "2026-11-23T12:30:00-08:00",
    "2026-11-24T05:00:00-08:00",
    "2026-11-24T23:00:00-08:00",
    "2026-11-25T09:15:00+01:00",
    "2026-11-26T03:00:00-06:00",
];

/// Unit prices in US dollars: a half cent to round, an amount that three units take over the
/// limit, one that two units take exactly to it, and one over the limit alone.
const USD_PRICES: [&str; 8] = [
    "0", "0.125", "4.99", "12.50", "33.34", "50", "99.99", "100.01",
];
/// Unit prices in pesos: at 0.0541, 50 is 2.705 (a half cent), 1848.43 is 100.000063
/// (rounds to the limit), 1848.62 is 100.010342 (over it).
const MXN_PRICES: [&str; 6] = ["9.25", "50", "184.85", "924.21", "1848.43", "1848.62"];

// ---------------------------------------------------------------------------------------------
// Operations, as proptest generates them
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    /// An orders file of 1 to 4 lines.
    Import(Vec<Entry>),
    Cancel(Pick),
    /// A stock receipt file (`sku,qty` rows).
    Receive(Vec<(&'static str, u32)>),
    /// A stock count file (`sku,qty` rows).
    Count(Vec<(&'static str, u32)>),
    /// The clock moves `forward` days, then the batch runs for today plus `ahead` days
    /// (`ahead` = -1 asks for yesterday, which must be refused).
    Batch {
        forward: u8,
        ahead: i8,
    },
    /// What a batch for today plus `ahead` days would do now; it must change nothing.
    Plan {
        ahead: i8,
    },
    /// The store is closed and opened again from its folder.
    Restart,
}

/// The order a cancel names.
#[derive(Debug, Clone)]
enum Pick {
    /// One of the orders taken in so far (whatever its state); `Unknown` when there is none.
    Accepted(Index),
    /// An id never taken in.
    Unknown,
}

/// One line of an orders file.
#[derive(Debug, Clone)]
enum Entry {
    New(OrderSpec),
    /// One of the orders taken in so far, sent again as it was or changed; `New(otherwise)`
    /// when none has been taken in yet.
    Resend {
        pick: Index,
        change: Change,
        otherwise: OrderSpec,
    },
}

#[derive(Debug, Clone, Copy)]
enum Change {
    /// Byte for byte the same content.
    Same,
    /// The same instant written with another offset: the same order.
    OtherOffset,
    /// Other content under the same id.
    Qty,
    PlacedAt,
    Recipient,
    Currency,
}

#[derive(Debug, Clone)]
struct OrderSpec {
    id: &'static str,
    placed_at: &'static str,
    recipient: usize,
    currency: &'static str,
    lines: Vec<(&'static str, u32, &'static str)>,
}

fn sku() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        12 => select(&["TSHIRT", "MUG", "BOOTS"][..]),
        6 => select(CATALOGUE.iter().map(|item| item.sku).collect::<Vec<_>>()),
        1 => Just(UNKNOWN_SKU),
    ]
}

fn order_spec() -> impl Strategy<Value = OrderSpec> {
    (
        select(&ORDER_IDS[..]),
        select(&PLACED_AT[..]),
        0..RECIPIENTS.len(),
        prop_oneof![3 => Just("USD"), 1 => Just("MXN")],
        prop::collection::vec(
            (
                sku(),
                prop_oneof![3 => Just(1u32), 1 => 2..=3u32],
                any::<Index>(),
            ),
            1..=2,
        ),
    )
        .prop_map(|(id, placed_at, recipient, currency, lines)| {
            let prices: &[&'static str] = if currency == "USD" {
                &USD_PRICES
            } else {
                &MXN_PRICES
            };
            let lines = lines
                .into_iter()
                .map(|(sku, qty, price)| (sku, qty, *price.get(prices)))
                .collect();
            OrderSpec {
                id,
                placed_at,
                recipient,
                currency,
                lines,
            }
        })
}

fn entry() -> impl Strategy<Value = Entry> {
    let change = prop_oneof![
        3 => Just(Change::Same),
        1 => Just(Change::OtherOffset),
        1 => Just(Change::Qty),
        1 => Just(Change::PlacedAt),
        1 => Just(Change::Recipient),
        1 => Just(Change::Currency),
    ];
    prop_oneof![
        3 => order_spec().prop_map(Entry::New),
        1 => (any::<Index>(), change, order_spec()).prop_map(|(pick, change, otherwise)| {
            Entry::Resend { pick, change, otherwise }
        }),
    ]
}

fn stock_rows(
    qty: std::ops::RangeInclusive<u32>,
) -> impl Strategy<Value = Vec<(&'static str, u32)>> {
    prop::collection::vec((sku(), qty), 1..=3)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => prop::collection::vec(entry(), 1..=4).prop_map(Op::Import),
        1 => prop_oneof![
            5 => any::<Index>().prop_map(Pick::Accepted),
            1 => Just(Pick::Unknown),
        ]
        .prop_map(Op::Cancel),
        3 => stock_rows(1..=6).prop_map(Op::Receive),
        1 => stock_rows(0..=5).prop_map(Op::Count),
        3 => (
            prop_oneof![1 => Just(0u8), 1 => Just(1u8)],
            prop_oneof![1 => Just(-1i8), 8 => Just(0i8), 2 => Just(1i8), 1 => Just(2i8)],
        )
            .prop_map(|(forward, ahead)| Op::Batch { forward, ahead }),
        1 => prop_oneof![1 => Just(0i8), 1 => Just(1i8)].prop_map(|ahead| Op::Plan { ahead }),
        1 => Just(Op::Restart),
    ]
}

// ---------------------------------------------------------------------------------------------
// The model: the rules, in small named steps
// ---------------------------------------------------------------------------------------------

/// What an order is, for the rule "the same id with the same content is the same order".
/// The instant is compared, not the text it was written as.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Content {
    placed_at: DateTime<Utc>,
    recipient: usize,
    currency: &'static str,
    /// (SKU, quantity, unit price).
    lines: Vec<(&'static str, u32, Decimal)>,
}

#[derive(Debug, Clone)]
struct ModelOrder {
    id: &'static str,
    content: Content,
    /// `placed_at` as written in the file, with its offset.
    placed_at_text: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Stock {
    received: u64,
    released: u64,
    adjusted: i64,
}

impl Stock {
    /// On hand is what was received, less what was released and what counts took away.
    fn on_hand(&self) -> i64 {
        self.received as i64 - self.released as i64 - self.adjusted
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelRelease {
    release_id: String,
    day: NaiveDate,
    recipient: usize,
    /// Order ids, in order of service.
    orders: Vec<&'static str>,
    /// (order id, SKU, quantity, value in US dollars), in order of service.
    lines: Vec<(&'static str, &'static str, u32, Decimal)>,
    value_usd: Decimal,
    /// Whether a peso order is in it (then the release records the peso rate).
    pesos: bool,
}

/// What an intake is expected to report.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Report {
    accepted: usize,
    unchanged: usize,
    /// Rejected line numbers.
    rejected: Vec<usize>,
}

/// What one batch did: its new releases, and every candidate that did not ship, with why,
/// in order of service.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wave {
    releases: Vec<ModelRelease>,
    verdicts: Vec<(&'static str, Verdict)>,
}

/// Why a batch is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    PastDay,
    EarlierDay,
    TooFarAhead,
}

#[derive(Clone)]
struct Model {
    per_day: u32,
    today: NaiveDate,
    last_day: Option<NaiveDate>,
    /// Accepted orders, in intake order.
    orders: Vec<ModelOrder>,
    states: HashMap<&'static str, OrderState>,
    /// Per catalogue SKU; a SKU never touched has all zeros.
    stock: BTreeMap<&'static str, Stock>,
    /// Every committed release, in release id order.
    releases: Vec<ModelRelease>,
}

impl Model {
    fn new(per_day: u32) -> Model {
        Model {
            per_day,
            today: day(FIRST_TODAY),
            last_day: None,
            orders: Vec::new(),
            states: HashMap::new(),
            stock: CATALOGUE
                .iter()
                .map(|item| (item.sku, Stock::default()))
                .collect(),
            releases: Vec::new(),
        }
    }

    fn order(&self, id: &str) -> Option<&ModelOrder> {
        self.orders.iter().find(|order| order.id == id)
    }

    /// Each line of an orders file, in order: a line naming an unknown SKU is rejected; a new
    /// id is accepted (pending, not yet examined); a known id with the same content is
    /// unchanged; a known id with other content is rejected. Lines accepted earlier in the same
    /// file count as known.
    fn take_in_orders(&mut self, lines: &[ModelOrder]) -> Report {
        let mut report = Report {
            accepted: 0,
            unchanged: 0,
            rejected: Vec::new(),
        };
        for (index, order) in lines.iter().enumerate() {
            let line_no = index + 1;
            let unknown_sku = order
                .content
                .lines
                .iter()
                .any(|(sku, _, _)| item(sku).is_none());
            if unknown_sku {
                report.rejected.push(line_no);
                continue;
            }
            match self.order(order.id) {
                None => {
                    self.orders.push(order.clone());
                    self.states.insert(order.id, OrderState::Pending(None));
                    report.accepted += 1;
                }
                Some(known) if known.content == order.content => report.unchanged += 1,
                Some(_) => report.rejected.push(line_no),
            }
        }
        report
    }

    /// Pending and held orders can be cancelled; cancelling again is not an error; a released
    /// order cannot be, nor an unknown one.
    /// Whether the order was cancelled now (not before), or why it cannot be.
    fn cancel(&mut self, id: &str) -> Result<bool, &'static str> {
        let Some(order) = self.order(id) else {
            return Err("unknown");
        };
        let id = order.id;
        match &self.states[id] {
            OrderState::Cancelled => Ok(false),
            OrderState::Released { .. } => Err("released"),
            OrderState::Referred { .. } => Err("referred"),
            OrderState::Pending(_) | OrderState::Held(_) => {
                self.states.insert(id, OrderState::Cancelled);
                Ok(true)
            }
        }
    }

    /// Receipts add. Rows are lines 2 on (line 1 is the header); unknown SKUs are rejected.
    fn receive(&mut self, rows: &[(&'static str, u32)]) -> Report {
        let mut report = Report {
            accepted: 0,
            unchanged: 0,
            rejected: Vec::new(),
        };
        for (index, (sku, qty)) in rows.iter().enumerate() {
            match self.stock.get_mut(sku) {
                Some(stock) => {
                    stock.received += u64::from(*qty);
                    report.accepted += 1;
                }
                None => report.rejected.push(index + 2),
            }
        }
        report
    }

    /// Counts set what is on hand, recording the difference as an adjustment. A SKU counted
    /// twice in one file is rejected the second time.
    fn count(&mut self, rows: &[(&'static str, u32)]) -> Report {
        let mut report = Report {
            accepted: 0,
            unchanged: 0,
            rejected: Vec::new(),
        };
        let mut counted = HashSet::new();
        for (index, (sku, qty)) in rows.iter().enumerate() {
            match self.stock.get_mut(sku) {
                Some(stock) if counted.insert(*sku) => {
                    stock.adjusted += stock.on_hand() - i64::from(*qty);
                    report.accepted += 1;
                }
                _ => report.rejected.push(index + 2),
            }
        }
        report
    }

    /// Days run in order: a day before today, or before the last day batched, is refused.
    fn refusal(&self, day: NaiveDate) -> Option<Refused> {
        if day < self.today {
            Some(Refused::PastDay)
        } else if self.last_day.is_some_and(|last| day < last) {
            Some(Refused::EarlierDay)
        } else {
            None
        }
    }

    /// The release batch for `day` (README, "How a release day works").
    fn batch(&mut self, day: NaiveDate) -> Result<Wave, Refused> {
        if let Some(refused) = self.refusal(day) {
            return Err(refused);
        }
        let mut on_hand: BTreeMap<&str, i64> = self
            .stock
            .iter()
            .map(|(sku, stock)| (*sku, stock.on_hand()))
            .collect();
        let earlier_today: Vec<ModelRelease> = self
            .releases
            .iter()
            .filter(|release| release.day == day)
            .cloned()
            .collect();
        let mut new: Vec<ModelRelease> = Vec::new();
        let mut verdicts = Vec::new();
        for order in self.candidates(day) {
            let state = match self.serve(&order, day, &earlier_today, &mut new, &mut on_hand) {
                Served::Released(release_id) => OrderState::Released { release_id, day },
                Served::Held(reason) => {
                    verdicts.push((order.id, Verdict::Held(reason)));
                    OrderState::Held(reason)
                }
                Served::Waits(reason) => {
                    verdicts.push((order.id, Verdict::Waiting(reason)));
                    OrderState::Pending(Some(reason))
                }
            };
            self.states.insert(order.id, state);
        }
        // Open orders placed at or after the cutoff are passed over, and say so.
        let cutoff = cutoff_of(day);
        let not_due: Vec<&'static str> = self
            .orders
            .iter()
            .filter(|order| order.content.placed_at >= cutoff)
            .filter(|order| {
                matches!(
                    self.states[order.id],
                    OrderState::Pending(_) | OrderState::Held(_)
                )
            })
            .map(|order| order.id)
            .collect();
        for id in not_due {
            self.states
                .insert(id, OrderState::Pending(Some(WaitReason::NotDue)));
        }
        for release in &new {
            for (_, sku, qty, _) in &release.lines {
                self.stock.get_mut(sku).expect("a catalogue SKU").released += u64::from(*qty);
            }
        }
        self.releases.extend(new.iter().cloned());
        self.last_day = Some(self.last_day.map_or(day, |last| last.max(day)));
        Ok(Wave {
            releases: new,
            verdicts,
        })
    }

    /// Candidates: open (pending or held) orders placed before the day's cutoff, oldest
    /// `placed_at` first, ties by order id.
    fn candidates(&self, day: NaiveDate) -> Vec<ModelOrder> {
        let cutoff = cutoff_of(day);
        let mut candidates: Vec<ModelOrder> = self
            .orders
            .iter()
            .filter(|order| {
                matches!(
                    self.states[order.id],
                    OrderState::Pending(_) | OrderState::Held(_)
                )
            })
            .filter(|order| order.content.placed_at < cutoff)
            .cloned()
            .collect();
        candidates.sort_by(|a, b| (a.content.placed_at, a.id).cmp(&(b.content.placed_at, b.id)));
        candidates
    }

    /// One candidate's turn: held if the policy excludes it or its value is over the limit;
    /// otherwise it joins its recipient's release if the recipient has a release left today,
    /// the day's total stays within the limit, and every line is in stock (taken now);
    /// otherwise it waits, with the reason.
    fn serve(
        &self,
        order: &ModelOrder,
        day: NaiveDate,
        earlier_today: &[ModelRelease],
        new: &mut Vec<ModelRelease>,
        on_hand: &mut BTreeMap<&str, i64>,
    ) -> Served {
        if let Some(reason) = hold_reason(&order.content, day) {
            return Served::Held(reason);
        }
        let lines = line_values(&order.content, day).expect("a rate: checked by hold_reason");
        let value: Decimal = lines.iter().sum();
        let recipient = order.content.recipient;
        let earlier: Vec<&ModelRelease> = earlier_today
            .iter()
            .filter(|r| r.recipient == recipient)
            .collect();
        let this_wave = new.iter().position(|r| r.recipient == recipient);
        let releases_used = earlier.len() as u32 + u32::from(this_wave.is_some());
        let value_used: Decimal = earlier.iter().map(|r| r.value_usd).sum::<Decimal>()
            + this_wave.map_or(Decimal::ZERO, |at| new[at].value_usd);
        let release_left = this_wave.is_some() || releases_used < self.per_day;
        if !release_left || value_used + value > limit() {
            return Served::Waits(WaitReason::DailyLimit);
        }
        if !in_stock(&order.content, on_hand) {
            return Served::Waits(WaitReason::Stock);
        }
        for (sku, qty, _) in &order.content.lines {
            *on_hand.get_mut(sku).expect("in stock") -= i64::from(*qty);
        }
        let at = match this_wave {
            Some(at) => at,
            None => {
                let sequence = earlier_today.len() + new.len() + 1;
                new.push(ModelRelease {
                    release_id: format!("{day}-{sequence:06}"),
                    day,
                    recipient,
                    orders: Vec::new(),
                    lines: Vec::new(),
                    value_usd: Decimal::ZERO,
                    pesos: false,
                });
                new.len() - 1
            }
        };
        let release = &mut new[at];
        release.orders.push(order.id);
        for ((sku, qty, _), value) in order.content.lines.iter().zip(lines) {
            release.lines.push((order.id, sku, *qty, value));
        }
        release.value_usd += value;
        release.pesos |= order.content.currency == "MXN";
        Served::Released(release.release_id.clone())
    }
}

/// What one candidate's turn gave.
enum Served {
    /// In the release with this id.
    Released(String),
    Held(HoldReason),
    Waits(WaitReason),
}

fn item(sku: &str) -> Option<&'static ItemFacts> {
    CATALOGUE.iter().find(|item| item.sku == sku)
}

fn limit() -> Decimal {
    Decimal::from_str(VALUE_LIMIT).unwrap()
}

/// Why an order cannot ship under the policy at all, if it cannot. When several reasons
/// apply, the first in the order origin, goods, flag, rate, over-limit is given, whichever
/// lines they come from.
fn hold_reason(content: &Content, day: NaiveDate) -> Option<HoldReason> {
    let items: Vec<&ItemFacts> = content
        .lines
        .iter()
        .map(|(sku, _, _)| item(sku).expect("a catalogue SKU"))
        .collect();
    if items
        .iter()
        .any(|item| EXCLUDED_ORIGINS.contains(&item.origin))
    {
        return Some(HoldReason::ExcludedOrigin);
    }
    if items.iter().any(|item| hts_excluded(item.hts)) {
        return Some(HoldReason::ExcludedGoods);
    }
    if items
        .iter()
        .any(|item| item.flags.iter().any(|flag| EXCLUDED_FLAGS.contains(flag)))
    {
        return Some(HoldReason::ExcludedFlag);
    }
    let Some(lines) = line_values(content, day) else {
        return Some(HoldReason::NoRate);
    };
    if lines.iter().sum::<Decimal>() > limit() {
        return Some(HoldReason::OverLimit);
    }
    None
}

/// An HTS code is excluded when its digits (dots ignored) start with an excluded prefix.
fn hts_excluded(hts: &str) -> bool {
    let digits: String = hts.chars().filter(char::is_ascii_digit).collect();
    EXCLUDED_HTS_PREFIXES
        .iter()
        .any(|prefix| digits.starts_with(prefix))
}

/// US dollars per unit of `currency` on `day`, if there is a rate.
fn usd_per_unit(currency: &str, day: NaiveDate) -> Option<Decimal> {
    match currency {
        "USD" => Some(Decimal::ONE),
        "MXN" if day >= self::day(MXN_FROM) => Some(Decimal::from_str(MXN_USD).unwrap()),
        _ => None,
    }
}

/// Each line's value in US dollars: quantity x unit price x rate, exactly, then rounded to
/// the cent, half away from zero. `None` without a rate.
fn line_values(content: &Content, day: NaiveDate) -> Option<Vec<Decimal>> {
    let rate = usd_per_unit(content.currency, day)?;
    Some(
        content
            .lines
            .iter()
            .map(|(_, qty, price)| {
                (Decimal::from(*qty) * price * rate)
                    .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
            })
            .collect(),
    )
}

/// Every line in stock: what the order needs of each SKU, all lines together, is on hand.
fn in_stock(content: &Content, on_hand: &BTreeMap<&str, i64>) -> bool {
    let mut need: BTreeMap<&str, i64> = BTreeMap::new();
    for (sku, qty, _) in &content.lines {
        *need.entry(sku).or_default() += i64::from(*qty);
    }
    need.iter()
        .all(|(sku, qty)| on_hand.get(sku).copied().unwrap_or(0) >= *qty)
}

/// The day's cutoff: `CUTOFF` local time at the warehouse, as an instant.
fn cutoff_of(day: NaiveDate) -> DateTime<Utc> {
    let local = day.and_time(NaiveTime::from_str(CUTOFF).unwrap());
    TIMEZONE
        .from_local_datetime(&local)
        .single()
        .expect("no daylight-saving change in the generated days")
        .with_timezone(&Utc)
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::from_str(text).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Turning generated entries into file lines
// ---------------------------------------------------------------------------------------------

fn from_spec(spec: &OrderSpec) -> ModelOrder {
    ModelOrder {
        id: spec.id,
        content: Content {
            placed_at: DateTime::parse_from_rfc3339(spec.placed_at)
                .unwrap()
                .with_timezone(&Utc),
            recipient: spec.recipient,
            currency: spec.currency,
            lines: spec
                .lines
                .iter()
                .map(|(sku, qty, price)| (*sku, *qty, Decimal::from_str(price).unwrap()))
                .collect(),
        },
        placed_at_text: spec.placed_at.to_owned(),
    }
}

/// The order a file line stands for, given the orders accepted so far.
fn resolve(entry: &Entry, accepted: &[ModelOrder]) -> ModelOrder {
    let (pick, change, otherwise) = match entry {
        Entry::New(spec) => return from_spec(spec),
        Entry::Resend {
            pick,
            change,
            otherwise,
        } => (pick, change, otherwise),
    };
    if accepted.is_empty() {
        return from_spec(otherwise);
    }
    let mut order = pick.get(accepted).clone();
    let content = &mut order.content;
    match change {
        Change::Same => {}
        Change::OtherOffset => {
            let offset = FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
            order.placed_at_text = content.placed_at.with_timezone(&offset).to_rfc3339();
        }
        Change::Qty => content.lines[0].1 += 1,
        Change::PlacedAt => {
            content.placed_at += Duration::hours(1);
            order.placed_at_text = content.placed_at.to_rfc3339();
        }
        Change::Recipient => content.recipient = (content.recipient + 1) % RECIPIENTS.len(),
        Change::Currency => {
            content.currency = if content.currency == "USD" {
                "MXN"
            } else {
                "USD"
            }
        }
    }
    order
}

/// One order as a JSON line.
fn order_json(order: &ModelOrder) -> String {
    let person = &RECIPIENTS[order.content.recipient];
    let lines: Vec<serde_json::Value> = order
        .content
        .lines
        .iter()
        .map(|(sku, qty, price)| {
            serde_json::json!({"sku": sku, "qty": qty, "unit_price": price.to_string()})
        })
        .collect();
    serde_json::json!({
        "order_id": order.id,
        "placed_at": order.placed_at_text,
        "recipient": {
            "name": person.name,
            "address": {"line1": person.street, "city": "San Diego", "state": "CA",
                        "postal_code": person.zip, "country": "US"},
        },
        "currency": order.content.currency,
        "lines": lines,
    })
    .to_string()
}

fn stock_csv(rows: &[(&str, u32)]) -> String {
    let mut text = String::from("sku,qty\n");
    for (sku, qty) in rows {
        text.push_str(&format!("{sku},{qty}\n"));
    }
    text
}

// ---------------------------------------------------------------------------------------------
// The real thing: a store in a temporary folder, driven through the library
// ---------------------------------------------------------------------------------------------

struct Warehouse {
    dir: tempfile::TempDir,
    config: Config,
    store: Option<Store>,
    files: usize,
}

impl Warehouse {
    fn new(per_day: u32) -> Warehouse {
        let dir = tempfile::tempdir().expect("temp dir");
        let quoted = |list: &[&str]| {
            list.iter()
                .map(|word| format!("{word:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let toml = format!(
            r#"
[warehouse]
name = "model"
timezone = "{TIMEZONE}"

[paths]
data = "data"
logs = "logs"
spool = "spool"

[schedule]
batch = "0 0 6 * * *"
cutoff = "{CUTOFF}"

[recipients]
identity = "name-and-address"

[api]
listen = "127.0.0.1:0"
token_file = "api-token"

[[currency.rates]]
currency = "MXN"
from = "{MXN_FROM}"
usd = "{MXN_USD}"

[[policy]]
name = "{POLICY}"
from = "2016-03-10"
lane = "de-minimis"
value_limit_usd = "{VALUE_LIMIT}"
releases_per_recipient_per_day = {per_day}
excluded_origins = [{}]
excluded_hts_prefixes = [{}]
excluded_flags = [{}]
"#,
            quoted(EXCLUDED_ORIGINS),
            quoted(EXCLUDED_HTS_PREFIXES),
            quoted(EXCLUDED_FLAGS),
        );
        let file = dir.path().join("border-release.toml");
        std::fs::write(&file, toml).expect("write config");
        let config = config::load_with_env(&file, &[]).expect("the model's config is valid");
        let store = Store::open(&config.paths.data).expect("open the store");
        let mut warehouse = Warehouse {
            dir,
            config,
            store: Some(store),
            files: 0,
        };
        let mut csv = String::from("sku,description,hts,origin,flags\n");
        for item in &CATALOGUE {
            let flags = item.flags.join(";");
            csv.push_str(&format!(
                "{},Item {},{},{},{flags}\n",
                item.sku, item.sku, item.hts, item.origin
            ));
        }
        let file = warehouse.write("items.csv", &csv);
        let report = warehouse
            .import(&file, InputKind::Items)
            .expect("import items");
        assert_eq!(
            (report.accepted, report.rejected.len()),
            (CATALOGUE.len(), 0),
            "{report}"
        );
        warehouse
    }

    fn store(&mut self) -> &mut Store {
        self.store.as_mut().expect("the store is open")
    }

    /// Takes in a file through the operations the command line calls.
    fn import(&mut self, file: &Path, kind: InputKind) -> Result<IntakeReport, String> {
        let config = self.config.clone();
        operations::import(self.store(), &config, Source::File(file), kind, None)
            .map_err(|error| error.to_string())
    }

    /// Writes an input file under a fresh name.
    fn write(&mut self, name: &str, text: &str) -> PathBuf {
        self.files += 1;
        let path = self.dir.path().join(format!("{:03}-{name}", self.files));
        std::fs::write(&path, text).expect("write input file");
        path
    }

    /// Closes the store and opens it again.
    fn restart(&mut self) {
        drop(self.store.take());
        let store = Store::open(&self.config.paths.data).expect("open the store again");
        self.store = Some(store);
    }
}

fn report_of(report: &IntakeReport) -> Report {
    Report {
        accepted: report.accepted,
        unchanged: report.unchanged,
        rejected: report
            .rejected
            .iter()
            .map(|rejection| rejection.line)
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// One operation on both, and the comparison after it
// ---------------------------------------------------------------------------------------------

/// The instant a batch says it ran at: irrelevant to the rules, fixed for the day.
fn batch_instant(today: NaiveDate) -> DateTime<Utc> {
    cutoff_of(today) + Duration::minutes(1)
}

fn apply(op: &Op, model: &mut Model, real: &mut Warehouse) -> Result<(), TestCaseError> {
    match op {
        Op::Import(entries) => {
            let mut lines = Vec::new();
            let mut accepted_so_far = model.orders.clone();
            for entry in entries {
                let order = resolve(entry, &accepted_so_far);
                accepted_so_far.push(order.clone());
                lines.push(order);
            }
            let text: String = lines.iter().map(|order| order_json(order) + "\n").collect();
            let file = real.write("orders.jsonl", &text);
            let expected = model.take_in_orders(&lines);
            let report = real
                .import(&file, InputKind::Orders)
                .map_err(|error| TestCaseError::fail(format!("import failed: {error}")))?;
            prop_assert_eq!(
                report_of(&report),
                expected,
                "orders file:\n{}{}",
                text,
                report
            );
        }
        Op::Cancel(pick) => {
            let id = match pick {
                Pick::Accepted(index) if !model.orders.is_empty() => index.get(&model.orders).id,
                _ => UNKNOWN_ORDER_ID,
            };
            let expected = model.cancel(id);
            let got = match operations::cancel(real.store(), id) {
                Ok(done) => Ok(done.cancelled),
                Err(CancelError::Unknown(_)) => Err("unknown"),
                Err(CancelError::Released { .. }) => Err("released"),
                Err(error) => return Err(TestCaseError::fail(format!("cancel {id}: {error}"))),
            };
            prop_assert_eq!(got, expected, "cancel {}", id);
        }
        Op::Receive(rows) | Op::Count(rows) => {
            let (kind, expected) = match op {
                Op::Receive(_) => (InputKind::Receipts, model.receive(rows)),
                _ => (InputKind::Counts, model.count(rows)),
            };
            let file = real.write("stock.csv", &stock_csv(rows));
            let report = real
                .import(&file, kind)
                .map_err(|error| TestCaseError::fail(format!("stock import failed: {error}")))?;
            prop_assert_eq!(
                report_of(&report),
                expected,
                "{:?} {:?}: {}",
                kind,
                rows,
                report
            );
        }
        Op::Batch { forward, ahead } => {
            model.today += Duration::days(i64::from(*forward));
            let today = model.today;
            let day = today + Duration::days(i64::from(*ahead));
            // The config keeps schedule.max_days_ahead at its default: tomorrow.
            let expected = if day > today + Duration::days(1) {
                Err(Refused::TooFarAhead)
            } else {
                model.batch(day)
            };
            let config = real.config.clone();
            let clock = Clock::Fixed(batch_instant(today));
            let got = operations::batch(real.store(), &config, &clock, Some(day), None);
            match (got, expected) {
                (Ok(committed), Ok(Wave { releases: new, .. })) => {
                    prop_assert!(
                        committed.files_error.is_none(),
                        "the day's files: {:?}",
                        committed.files_error
                    );
                    prop_assert_eq!(committed.summary.releases, new.len(), "releases on {}", day);
                    let orders: usize = new.iter().map(|release| release.orders.len()).sum();
                    prop_assert_eq!(committed.summary.orders_released, orders);
                }
                (Err(BatchError::PastDay { .. }), Err(Refused::PastDay))
                | (Err(BatchError::EarlierDay { .. }), Err(Refused::EarlierDay))
                | (Err(BatchError::TooFarAhead { .. }), Err(Refused::TooFarAhead)) => {}
                (got, expected) => {
                    return Err(TestCaseError::fail(format!(
                        "batch for {day} (today {today}): got {:?}, the model says {:?}",
                        got.map(|committed| committed.summary),
                        expected
                    )))
                }
            }
        }
        Op::Plan { ahead } => {
            let today = model.today;
            let day = today + Duration::days(i64::from(*ahead));
            let expected = model.clone().batch(day);
            let config = real.config.clone();
            let clock = Clock::Fixed(batch_instant(today));
            let got = operations::plan(real.store(), &config, &clock, Some(day));
            match (got, expected) {
                (Ok(planned), Ok(wave)) => {
                    let releases: Vec<ModelRelease> =
                        planned.plan.releases.iter().map(as_model).collect();
                    prop_assert_eq!(releases, wave.releases, "plan for {}", day);
                    let verdicts: Vec<(&str, Verdict)> = planned
                        .plan
                        .verdicts
                        .iter()
                        .map(|(id, verdict)| (order_id(id), *verdict))
                        .collect();
                    prop_assert_eq!(verdicts, wave.verdicts, "plan for {}", day);
                }
                (Err(BatchError::PastDay { .. }), Err(Refused::PastDay))
                | (Err(BatchError::EarlierDay { .. }), Err(Refused::EarlierDay)) => {}
                (got, expected) => {
                    return Err(TestCaseError::fail(format!(
                        "plan for {day} (today {today}): got {:?}, the model says {:?}",
                        got.map(|planned| planned.plan),
                        expected
                    )))
                }
            }
        }
        Op::Restart => real.restart(),
    }
    Ok(())
}

/// The store, read through its public API, against the model; then the audit.
fn compare(model: &Model, real: &mut Warehouse) -> Result<(), TestCaseError> {
    let config = real.config.clone();
    let store = real.store();

    // The accepted orders, in intake order, with their content and state.
    let stored = store.order_states().map_err(fail)?;
    let ids: Vec<&str> = stored
        .iter()
        .map(|(order, _)| order.order_id.as_str())
        .collect();
    let expected_ids: Vec<&str> = model.orders.iter().map(|order| order.id).collect();
    prop_assert_eq!(ids, expected_ids, "order ids in the store");
    for ((order, state), expected) in stored.iter().zip(&model.orders) {
        let content = Content {
            placed_at: order.placed_at,
            recipient: recipient_of(&order.recipient.name),
            currency: match order.currency.as_str() {
                "USD" => "USD",
                "MXN" => "MXN",
                _ => "(another currency)",
            },
            lines: order
                .lines
                .iter()
                .map(|line| (item_sku(&line.sku), line.qty, line.unit_price))
                .collect(),
        };
        prop_assert_eq!(&content, &expected.content, "content of {}", expected.id);
        prop_assert_eq!(
            state,
            &model.states[expected.id],
            "state of {}",
            expected.id
        );
    }

    // Stock per SKU: received, released, adjusted (a SKU without a record has none).
    let levels = store.stock().map_err(fail)?;
    for sku in levels.keys() {
        prop_assert!(item(sku).is_some(), "stock of unknown SKU {}", sku);
    }
    for (sku, expected) in &model.stock {
        let level = levels.get(*sku).copied().unwrap_or_default();
        let got = Stock {
            received: level.received,
            released: level.released,
            adjusted: level.adjusted,
        };
        prop_assert_eq!(got, *expected, "stock of {}", sku);
        prop_assert!(
            expected.on_hand() >= 0,
            "the model's stock of {} is negative",
            sku
        );
    }

    // Every release, in release id order.
    let releases: Vec<_> = store.releases().map_err(fail)?;
    let got: Vec<ModelRelease> = releases.iter().map(as_model).collect();
    prop_assert_eq!(&got, &model.releases, "releases");
    for release in &releases {
        prop_assert_eq!(&release.policy, POLICY);
        for fx in &release.fx {
            prop_assert_eq!(
                (fx.currency.as_str(), fx.usd, fx.from),
                ("MXN", Decimal::from_str(MXN_USD).unwrap(), day(MXN_FROM))
            );
        }
    }
    prop_assert_eq!(
        store.last_day().map_err(fail)?,
        model.last_day,
        "last day batched"
    );

    // The invariants, checked on what the store holds, whatever the model says: no order in
    // two releases; per recipient and day, within the policy's count and value.
    let mut seen = HashSet::new();
    let mut per_recipient_day: BTreeMap<(NaiveDate, &str), (u32, Decimal)> = BTreeMap::new();
    for release in &releases {
        for id in &release.orders {
            prop_assert!(seen.insert(id.clone()), "order {} in two releases", id);
        }
        let claim = per_recipient_day
            .entry((release.day, release.recipient_key.as_str()))
            .or_default();
        claim.0 += 1;
        claim.1 += release.value_usd;
        prop_assert!(
            claim.0 <= model.per_day,
            "{:?}: too many releases",
            release.day
        );
        prop_assert!(claim.1 <= limit(), "{:?}: over the limit", release.day);
    }

    let output = border_release::releaselog::Output::of(&config);
    let audit = audit::audit(store, &config.timeline, Some(output)).map_err(fail)?;
    prop_assert!(audit.violations.is_empty(), "audit: {}", audit);
    Ok(())
}

/// A release as the model describes one.
fn as_model(release: &Release) -> ModelRelease {
    ModelRelease {
        release_id: release.release_id.to_string(),
        day: release.day,
        recipient: recipient_of(&release.consignee.name),
        orders: release.orders.iter().map(|id| order_id(id)).collect(),
        lines: release
            .lines
            .iter()
            .map(|line| {
                (
                    order_id(&line.order_id),
                    item_sku(&line.item.sku),
                    line.qty,
                    line.value_usd,
                )
            })
            .collect(),
        value_usd: release.value_usd,
        pesos: release.fx.iter().any(|fx| fx.currency == "MXN"),
    }
}

fn recipient_of(name: &str) -> usize {
    RECIPIENTS
        .iter()
        .position(|person| person.name == name)
        .unwrap_or(usize::MAX)
}

/// The `&'static str` the model uses for an order id the store returns.
fn order_id(id: &str) -> &'static str {
    ORDER_IDS
        .iter()
        .find(|known| **known == id)
        .copied()
        .unwrap_or("(not an id of the model)")
}

fn item_sku(sku: &str) -> &'static str {
    item(sku).map_or("(not a SKU of the catalogue)", |item| item.sku)
}

fn fail(error: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(error.to_string())
}

/// Open orders before an operation, to check that a batch releases only orders that were open:
/// a cancelled or released order is never released again.
fn open_orders(store: &Store) -> Result<HashSet<String>, TestCaseError> {
    Ok(store
        .order_states()
        .map_err(fail)?
        .into_iter()
        .filter(|(_, state)| matches!(state, OrderState::Pending(_) | OrderState::Held(_)))
        .map(|(order, _)| order.order_id.into_string())
        .collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_store_follows_the_model(
        per_day in 1..=2u32,
        ops in prop::collection::vec(op(), 1..=30),
    ) {
        let mut model = Model::new(per_day);
        let mut real = Warehouse::new(per_day);
        for (step, op) in ops.iter().enumerate() {
            let open_before = open_orders(real.store())?;
            let released_before: HashSet<String> = real
                .store()
                .releases()
                .map_err(fail)?
                .into_iter()
                .map(|release| release.release_id.into_string())
                .collect();
            apply(op, &mut model, &mut real)
                .and_then(|()| compare(&model, &mut real))
                .map_err(|error| TestCaseError::fail(format!("step {step}, {op:?}: {error}")))?;
            for release in real.store().releases().map_err(fail)? {
                if released_before.contains(release.release_id.as_str()) {
                    continue;
                }
                for id in &release.orders {
                    prop_assert!(
                        open_before.contains(id.as_str()),
                        "step {}: {} released in {} but was not open", step, id, release.release_id
                    );
                }
            }
        }
    }
}
