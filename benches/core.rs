//! In-process benchmarks of the pure core and the stored encoding (BENCHMARKS.md, "The targets"), through the
//! crate's public API only: planning a day over 100k open orders for 30k recipients, valuing an
//! order, recipient keys, and the stored encoding of an order and of a chunk of 512 orders.
//!
//! `cargo bench --bench core` (about a minute); `cargo bench --bench core -- planner` for one
//! group. Whole-process figures (intake, batch, plan with the store, peak memory) come from
//! `bench/run.sh`. The data is built from a fixed seed, so every run measures the same inputs.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use border_release::identity::{self, IdentityRule};
use border_release::model::{Address, Consignee, FxUsed, Item, ItemFlag, Order, OrderLine};
use border_release::money::{self, Conversion, Rate, Rates};
use border_release::planner::{self, Claim, Rules, Snapshot};
use border_release::policy::{Filing, Lane, Policy};
use border_release::store;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use rust_decimal::Decimal;

/// Size of the planning snapshot.
const ORDERS: u64 = 100_000;
const RECIPIENTS: u64 = 30_000;
const SKUS: u64 = 2_000;
/// Orders per stored chunk, as the store writes them.
const CHUNK: usize = 512;

// ---------------------------------------------------------------------------------------------
// Deterministic data

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Zipf with exponent 1 over `0..n`, as the `workload` generator draws recipients.
struct Zipf(Vec<u64>);

impl Zipf {
    fn new(n: u64) -> Zipf {
        let mut total = 0;
        Zipf(
            (1..=n)
                .map(|k| {
                    total += (1u64 << 40) / k;
                    total
                })
                .collect(),
        )
    }

    fn sample(&self, rng: &mut Rng) -> u64 {
        let u = rng.below(*self.0.last().unwrap());
        self.0.partition_point(|&c| c <= u) as u64
    }
}

const FIRST: [&str; 12] = [
    "Ana", "Luis", "María", "José", "Grace", "John", "Sofía", "Kevin", "Mei", "Raúl", "Emily",
    "Omar",
];
const LAST: [&str; 12] = [
    "Ruiz", "Ortega", "García", "Peña", "Kim", "Smith", "Núñez", "Lee", "O'Brien", "Patel",
    "Muñoz", "Brown",
];
const STREETS: [&str; 8] = [
    "Market St",
    "Elm Ave",
    "Pine Street",
    "Broadway Blvd",
    "Mission Rd",
    "Harbor Dr",
    "Oak Ln",
    "Vista Ct",
];
const CITIES: [(&str, &str, &str); 6] = [
    ("San Diego", "CA", "92101"),
    ("Chula Vista", "CA", "91910"),
    ("Phoenix", "AZ", "85004"),
    ("El Paso", "TX", "79901"),
    ("Laredo", "TX", "78040-1234"),
    ("Chicago", "IL", "60618"),
];

fn consignee(recipient: u64) -> Consignee {
    let pick = |list_len: usize, shift: u32| {
        ((recipient >> shift) as usize + recipient as usize) % list_len
    };
    let (city, state, postal_code) = CITIES[pick(CITIES.len(), 3)];
    Consignee {
        name: format!(
            "{} {}",
            FIRST[pick(FIRST.len(), 0)],
            LAST[pick(LAST.len(), 4)]
        )
        .into(),
        customer_id: Some(format!("C-{recipient:07}").into()),
        address: Address {
            line1: format!(
                "{} {}",
                1 + recipient % 9000,
                STREETS[pick(STREETS.len(), 2)]
            )
            .into(),
            line2: recipient
                .is_multiple_of(5)
                .then(|| format!("Apt {}", recipient % 400).into()),
            city: city.into(),
            state: state.into(),
            postal_code: postal_code.into(),
            country: "US".into(),
        },
    }
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
}

fn cutoff() -> DateTime<Utc> {
    planner::cutoff_instant(
        day(),
        NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
        chrono_tz::America::Los_Angeles,
    )
}

fn sku(index: u64) -> String {
    format!("SKU-{:06}", index + 1)
}

/// Unit price in cents of a SKU: 5 to 400 dollars.
fn price_cents(index: u64) -> i64 {
    (500 + (index * 7919) % 39_500) as i64
}

fn items() -> HashMap<String, Item> {
    (0..SKUS)
        .map(|index| {
            // About 1% under an AD/CVD order, which the policy holds.
            let flags = if index >= 20 && index.is_multiple_of(97) {
                vec![ItemFlag::Adcvd]
            } else {
                Vec::new()
            };
            let item = Item {
                sku: sku(index),
                description: format!("Cotton knit T-shirt style {index}"),
                hts: "6109.10.0012".into(),
                origin: if index.is_multiple_of(20) { "CN" } else { "MX" }.into(),
                flags,
                mid: None,
                usmca: false,
            };
            (item.sku.clone(), item)
        })
        .collect()
}

/// `ORDERS` open orders for `RECIPIENTS` recipients (Zipf), placed over the 72 hours before the
/// cutoff (1% after it), 1 to 3 lines, 10% in MXN, 3% over the limit on their own.
fn orders() -> Vec<Order> {
    let mut rng = Rng(1);
    let recipients = Zipf::new(RECIPIENTS);
    let skus = Zipf::new(SKUS);
    let window = 72 * 3600;
    let start = cutoff() - chrono::Duration::seconds(window);
    (0..ORDERS)
        .map(|index| {
            let recipient = recipients.sample(&mut rng);
            let late = rng.below(100) == 0;
            let offset = if late {
                window + rng.below(3600) as i64
            } else {
                rng.below(window as u64) as i64
            };
            let mxn = rng.below(10) == 0;
            let over = rng.below(100) < 3;
            let lines = (0..1 + rng.below(3))
                .map(|position| {
                    let sku_index = skus.sample(&mut rng);
                    let qty = if over && position == 0 {
                        3_000
                    } else {
                        1 + rng.below(2) as u32
                    };
                    let cents = price_cents(sku_index);
                    let unit_price = if mxn {
                        Decimal::new(cents * 1848 / 100, 2)
                    } else {
                        Decimal::new(cents, 2)
                    };
                    OrderLine {
                        sku: sku(sku_index).into(),
                        qty,
                        unit_price,
                    }
                })
                .collect();
            let mut recipient = consignee(recipient);
            if rng.below(10) == 0 {
                recipient.name = recipient.name.to_uppercase();
            }
            Order {
                order_id: format!("W-{:08}", index + 1).into(),
                placed_at: start + chrono::Duration::seconds(offset),
                recipient,
                currency: if mxn { "MXN" } else { "USD" }.into(),
                lines,
            }
        })
        .collect()
}

/// Stock for most of the demand; one SKU in ten short.
fn on_hand(orders: &[Order]) -> HashMap<String, u64> {
    let mut demand: HashMap<String, u64> = HashMap::new();
    for order in orders {
        for line in &order.lines {
            *demand.entry(line.sku.to_string()).or_default() += u64::from(line.qty.min(3));
        }
    }
    demand
        .into_iter()
        .map(|(sku, units)| {
            let short = sku.ends_with('7');
            (sku, if short { units / 5 } else { units })
        })
        .collect()
}

fn rates() -> Rates {
    Rates::new(vec![Rate {
        currency: "MXN".into(),
        from: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        usd: Decimal::new(541, 4),
    }])
}

fn policy() -> Policy {
    Policy {
        name: "informal-entry".into(),
        from: NaiveDate::from_ymd_opt(2025, 8, 29).unwrap(),
        lane: "informal-entry".into(),
        value_limit_usd: Decimal::from(2500),
        releases_per_recipient_per_day: 1,
        excluded_origins: Vec::new(),
        excluded_hts_prefixes: Vec::new(),
        excluded_flags: vec![ItemFlag::Adcvd, ItemFlag::Quota],
        filing: Filing::of_lane(Lane::InformalEntry),
    }
}

fn mxn() -> Conversion {
    Conversion::Rate(FxUsed {
        currency: "MXN".into(),
        usd: Decimal::new(541, 4),
        from: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
    })
}

// ---------------------------------------------------------------------------------------------
// Benchmarks

fn planning(c: &mut Criterion) {
    let orders = orders();
    let items = items();
    let on_hand = on_hand(&orders);
    let claims: HashMap<String, Claim> = HashMap::new();
    let snapshot = Snapshot {
        orders: &orders,
        items: &items,
        on_hand: &on_hand,
        claims: &claims,
        releases_before: 0,
    };
    let rates = rates();
    let rules = Rules {
        cutoff: cutoff(),
        rates: &rates,
        identity: IdentityRule::NameAndAddress,
        at: cutoff() + chrono::Duration::hours(1),
    };
    let policy = policy();
    let plan = planner::plan(&snapshot, day(), &policy, &rules);
    planner::verify(&plan, &snapshot, &policy).expect("the bench plan keeps the invariants");
    eprintln!(
        "planner snapshot: {} open orders, {} recipients: {} releases, {} verdicts, {} not due",
        orders.len(),
        RECIPIENTS,
        plan.releases.len(),
        plan.verdicts.len(),
        plan.not_due.len()
    );

    let mut group = c.benchmark_group("planner");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(ORDERS));
    group.bench_function("plan/100k-orders-30k-recipients", |b| {
        b.iter(|| planner::plan(black_box(&snapshot), day(), &policy, &rules))
    });
    group.bench_function("verify/100k-orders-30k-recipients", |b| {
        b.iter(|| planner::verify(black_box(&plan), &snapshot, &policy))
    });
    group.finish();
}

fn small_group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group
}

fn valuation(c: &mut Criterion) {
    let orders = orders();
    let one_line_usd = orders
        .iter()
        .find(|order| order.currency == "USD" && order.lines.len() == 1)
        .expect("a one-line USD order")
        .clone();
    let three_lines_mxn = orders
        .iter()
        .find(|order| order.currency == "MXN" && order.lines.len() == 3)
        .expect("a three-line MXN order")
        .clone();
    let mxn = mxn();
    let mut group = small_group(c, "money");
    group.bench_function("value_order/1-line-usd", |b| {
        b.iter(|| money::value_order(black_box(&one_line_usd), &Conversion::Usd))
    });
    group.bench_function("value_order/3-lines-mxn", |b| {
        b.iter(|| money::value_order(black_box(&three_lines_mxn), &mxn))
    });
    group.finish();
}

fn recipient_keys(c: &mut Criterion) {
    let ascii = Consignee {
        name: "Grace Kim".into(),
        customer_id: Some("C-0000077".into()),
        address: Address {
            line1: "1200 Market Street".into(),
            line2: Some("Apt 4".into()),
            city: "San Diego".into(),
            state: "CA".into(),
            postal_code: "92101-2207".into(),
            country: "US".into(),
        },
    };
    let accented = Consignee {
        name: "MARÍA JOSÉ NÚÑEZ PEÑA".into(),
        address: Address {
            line1: "455 Avenida Álvaro Obregón".into(),
            line2: Some("#12".into()),
            city: "San Ysidro".into(),
            ..ascii.address.clone()
        },
        ..ascii.clone()
    };
    let mut group = small_group(c, "identity");
    group.bench_function("recipient_key/name-and-address/ascii", |b| {
        b.iter(|| identity::recipient_key(IdentityRule::NameAndAddress, black_box(&ascii)))
    });
    group.bench_function("recipient_key/name-and-address/accented", |b| {
        b.iter(|| identity::recipient_key(IdentityRule::NameAndAddress, black_box(&accented)))
    });
    group.bench_function("recipient_key/address/ascii", |b| {
        b.iter(|| identity::recipient_key(IdentityRule::Address, black_box(&ascii)))
    });
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let orders = orders();
    let order = orders
        .iter()
        .find(|order| order.lines.len() == 2 && order.recipient.address.line2.is_some())
        .expect("a two-line order with a line2")
        .clone();
    let chunk: Vec<Order> = orders[..CHUNK].to_vec();
    let order_bytes = store::encode(&order);
    let chunk_bytes = store::encode(&chunk);
    assert_eq!(store::decode::<Order>(&order_bytes).unwrap(), order);
    assert_eq!(store::decode::<Vec<Order>>(&chunk_bytes).unwrap(), chunk);

    let mut group = small_group(c, "store");
    group.throughput(Throughput::Bytes(order_bytes.len() as u64));
    group.bench_function("encode/order", |b| {
        b.iter(|| store::encode(black_box(&order)))
    });
    group.bench_function("decode/order", |b| {
        b.iter(|| store::decode::<Order>(black_box(&order_bytes)))
    });
    group.throughput(Throughput::Elements(CHUNK as u64));
    group.bench_function("encode/chunk-of-512-orders", |b| {
        b.iter(|| store::encode(black_box(&chunk)))
    });
    // Decoding times include dropping what was decoded, as a reader eventually does.
    group.bench_function("decode/chunk-of-512-orders", |b| {
        b.iter(|| store::decode::<Vec<Order>>(black_box(&chunk_bytes)))
    });
    group.finish();
}

criterion_group!(benches, planning, valuation, recipient_keys, encoding);
criterion_main!(benches);
