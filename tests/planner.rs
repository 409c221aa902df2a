//! The daily release planner (README, "How a release day works"), through the crate's public API only.
//!
//! First small hand-made snapshots, one behaviour per test, then properties over generated
//! snapshots that check the guarantees every plan must keep.
//! Every instant is fixed: nothing here reads the wall clock or sleeps.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;

use border_release::identity::IdentityRule;
use border_release::model::{
    Address, Consignee, Detail, Exclusion, FxUsed, HoldReason, Item, ItemFlag, Order, OrderLine,
    Shortfall, Verdict, WaitReason,
};
use border_release::money::{Rate, Rates};
use border_release::planner::{self, Claim, Plan, Rules, Snapshot};
use border_release::policy::{Filing, Lane, Policy};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};

use HoldReason::{ExcludedFlag, ExcludedGoods, ExcludedOrigin, NoRate, OverLimit};
use Outcome::{Held, NotExamined, Ships, Waits};
use WaitReason::{DailyLimit, NotDue, Stock};

// ---------------------------------------------------------------------------------------------
// Order of service
// ---------------------------------------------------------------------------------------------

#[test]
fn oldest_placed_at_first_then_order_id_decides_who_gets_scarce_stock() {
    // The ids run against the clock, so only placed_at can explain why SO-9 is served first;
    // SO-2 and SO-3 are placed at the same instant, so the order id decides between them.
    // The vector is in neither order: the planner must sort, not trust its input.
    let orders = [
        order(
            "SO-3",
            "2026-11-24T10:00:00Z",
            &mei(),
            &[("MUG", 1, "12.00")],
        ),
        order(
            "SO-2",
            "2026-11-24T10:00:00Z",
            &luis(),
            &[("MUG", 1, "12.00")],
        ),
        order(
            "SO-9",
            "2026-11-23T09:00:00Z",
            &ana(),
            &[("MUG", 1, "12.00")],
        ),
    ];
    // (mugs on hand, outcomes of SO-9, SO-2, SO-3)
    let cases = [
        (0, [Waits(Stock), Waits(Stock), Waits(Stock)]),
        (1, [Ships, Waits(Stock), Waits(Stock)]),
        (2, [Ships, Ships, Waits(Stock)]),
        (3, [Ships, Ships, Ships]),
    ];
    for (mugs, expected) in cases {
        let plan = World::new()
            .with_stock("MUG", mugs)
            .with_orders(orders.clone())
            .plan();
        assert_eq!(
            ["SO-9", "SO-2", "SO-3"].map(|id| outcome(&plan, id)),
            expected,
            "{mugs} mugs"
        );
        // Releases are numbered in the order they were opened, which is the order of service.
        let first_orders: Vec<&str> = plan.releases.iter().map(|r| r.orders[0].as_str()).collect();
        assert_eq!(
            first_orders,
            ["SO-9", "SO-2", "SO-3"][..mugs as usize],
            "{mugs} mugs"
        );
        for (seq, release) in plan.releases.iter().enumerate() {
            assert_eq!(release.release_id, format!("2026-11-24-{:06}", seq + 1));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One release per recipient, and the daily limit
// ---------------------------------------------------------------------------------------------

#[test]
fn one_release_per_recipient_per_day_consolidates_all_her_orders() {
    let plan = World::new()
        .with_orders([
            order(
                "SO-1",
                "2026-11-23T09:00:00Z",
                &ana(),
                &[("TEE", 2, "19.99")],
            ),
            order(
                "SO-2",
                "2026-11-23T11:00:00Z",
                &luis(),
                &[("MUG", 1, "12.00")],
            ),
            order(
                "SO-3",
                "2026-11-23T12:00:00Z",
                &ana(),
                &[("MUG", 1, "12.00"), ("BAG", 1, "45.50")],
            ),
            order(
                "SO-4",
                "2026-11-24T08:00:00Z",
                &ana(),
                &[("TEE", 1, "19.99")],
            ),
        ])
        .plan();

    assert!(plan.verdicts.is_empty(), "{:?}", plan.verdicts);
    assert_eq!(plan.releases.len(), 2);
    let for_ana = &plan.releases[0];
    assert_eq!(for_ana.release_id, "2026-11-24-000001");
    assert_eq!(for_ana.orders, ["SO-1", "SO-3", "SO-4"]);
    let line_orders: Vec<&str> = for_ana
        .lines
        .iter()
        .map(|line| line.order_id.as_str())
        .collect();
    assert_eq!(line_orders, ["SO-1", "SO-3", "SO-3", "SO-4"]);
    assert_eq!(for_ana.value_usd, usd("117.47")); // 39.98 + 12.00 + 45.50 + 19.99
    assert_eq!(for_ana.consignee, ana());
    assert_eq!(for_ana.day, day());
    assert_eq!(for_ana.released_at, at("2026-11-24T20:05:00Z"));
    assert_eq!(plan.releases[1].release_id, "2026-11-24-000002");
    assert_eq!(plan.releases[1].orders, ["SO-2"]);
}

#[test]
fn a_recipients_day_total_may_reach_the_limit_but_not_pass_it() {
    // (value of her first order, value of her second, outcome of the second) under an $800 limit.
    let cases = [
        ("500.00", "300.00", Ships),
        ("500.00", "300.01", Waits(DailyLimit)),
        ("799.99", "0.01", Ships),
        ("800.00", "0.01", Waits(DailyLimit)),
        ("800.00", "0.00", Ships),
    ];
    for (first, second, expected) in cases {
        let plan = World::new()
            .with_orders([
                worth("SO-1", "2026-11-23T09:00:00Z", &ana(), first),
                worth("SO-2", "2026-11-23T10:00:00Z", &ana(), second),
            ])
            .plan();
        assert_eq!(outcome(&plan, "SO-1"), Ships, "{first} then {second}");
        assert_eq!(outcome(&plan, "SO-2"), expected, "{first} then {second}");
        let total = if expected == Ships {
            usd(first) + usd(second)
        } else {
            usd(first)
        };
        assert_eq!(plan.releases[0].value_usd, total, "{first} then {second}");
    }
}

#[test]
fn first_fit_a_later_smaller_order_ships_when_an_older_one_does_not_fit() {
    // Waiting is per order, not per recipient: an order that does not fit must not block her
    // later orders that do.
    struct Case {
        why: &'static str,
        mugs: u64,
        orders: Vec<Order>,
        outcomes: [Outcome; 3],
        released: Vec<&'static str>,
    }
    let cases = [
        Case {
            why: "the second order would pass the daily limit, the third fits under it",
            mugs: 10,
            orders: vec![
                worth("SO-1", "2026-11-23T09:00:00Z", &ana(), "600.00"),
                worth("SO-2", "2026-11-23T10:00:00Z", &ana(), "300.00"),
                worth("SO-3", "2026-11-23T11:00:00Z", &ana(), "150.00"),
            ],
            outcomes: [Ships, Waits(DailyLimit), Ships],
            released: vec!["SO-1", "SO-3"],
        },
        Case {
            why: "the second order needs more mugs than there are, the third needs one",
            mugs: 1,
            orders: vec![
                worth("SO-1", "2026-11-23T09:00:00Z", &ana(), "600.00"),
                order(
                    "SO-2",
                    "2026-11-23T10:00:00Z",
                    &ana(),
                    &[("MUG", 2, "10.00")],
                ),
                order(
                    "SO-3",
                    "2026-11-23T11:00:00Z",
                    &ana(),
                    &[("MUG", 1, "10.00")],
                ),
            ],
            outcomes: [Ships, Waits(Stock), Ships],
            released: vec!["SO-1", "SO-3"],
        },
        Case {
            why: "her oldest order lacks stock, so a later one opens her release",
            mugs: 0,
            orders: vec![
                order(
                    "SO-1",
                    "2026-11-23T09:00:00Z",
                    &ana(),
                    &[("MUG", 1, "10.00")],
                ),
                worth("SO-2", "2026-11-23T10:00:00Z", &ana(), "700.00"),
                worth("SO-3", "2026-11-23T11:00:00Z", &ana(), "100.00"),
            ],
            outcomes: [Waits(Stock), Ships, Ships],
            released: vec!["SO-2", "SO-3"],
        },
    ];
    for case in cases {
        let plan = World::new()
            .with_stock("MUG", case.mugs)
            .with_orders(case.orders)
            .plan();
        let outcomes = ["SO-1", "SO-2", "SO-3"].map(|id| outcome(&plan, id));
        assert_eq!(outcomes, case.outcomes, "{}", case.why);
        assert_eq!(plan.releases.len(), 1, "{}", case.why);
        assert_eq!(plan.releases[0].orders, case.released, "{}", case.why);
    }
}

#[test]
fn an_order_over_the_limit_on_its_own_is_held_over_limit_never_waiting() {
    // Such an order needs a formal entry: letting it wait would keep it in the queue for nothing.
    let cases = [
        (
            "alone",
            World::new().with_orders([worth("SO-9", "2026-11-23T09:00:00Z", &ana(), "800.01")]),
        ),
        (
            "after another of her orders shipped",
            World::new().with_orders([
                worth("SO-1", "2026-11-23T08:00:00Z", &ana(), "600.00"),
                worth("SO-9", "2026-11-23T09:00:00Z", &ana(), "900.00"),
            ]),
        ),
        (
            "when an earlier wave used up her day",
            World::new()
                .with_claim(&ana(), 1, "800.00")
                .with_orders([worth("SO-9", "2026-11-23T09:00:00Z", &ana(), "800.01")]),
        ),
        (
            "in pesos worth $800.01 at the day's rate",
            World::new().with_orders([in_currency(
                "MXN",
                order(
                    "SO-9",
                    "2026-11-23T09:00:00Z",
                    &ana(),
                    &[("TEE", 1, "14787.55")],
                ),
            )]),
        ),
    ];
    for (why, world) in cases {
        let plan = world.plan();
        assert_eq!(outcome(&plan, "SO-9"), Held(OverLimit), "{why}");
    }
}

// ---------------------------------------------------------------------------------------------
// Exclusions and rates
// ---------------------------------------------------------------------------------------------

#[test]
fn an_order_with_one_excluded_line_is_held_whole_with_the_reason() {
    // Each order has an allowed T-shirt line and one line of the item under test. A held order
    // must take no stock at all: orders are never split.
    let cases = [
        ("9405.11.4010", "CN", vec![], Held(ExcludedOrigin)),
        ("4202.92.3031", "HK", vec![], Held(ExcludedOrigin)),
        ("2208.40.0000", "MX", vec![], Held(ExcludedGoods)), // prefix 2208 matches across the dots
        ("2208400000", "MX", vec![], Held(ExcludedGoods)),   // the same code written without dots
        ("2402.10.3000", "DO", vec![], Held(ExcludedGoods)), // prefix 24: tobacco
        ("3303.00.3000", "FR", vec![], Held(ExcludedGoods)),
        (
            "7317.00.5502",
            "VN",
            vec![ItemFlag::Adcvd],
            Held(ExcludedFlag),
        ),
        ("9024.80.0000", "MX", vec![], Ships), // 24 inside the code is not a prefix
        ("4202.92.3031", "MX", vec![ItemFlag::Pga], Ships), // a flag the policy does not list
        ("6109.10.0012", "MX", vec![], Ships),
    ];
    for (hts, origin, flags, expected) in cases {
        let plan = World::new()
            .with_item("ODD", hts, origin, flags.clone())
            .with_orders([order(
                "SO-1",
                "2026-11-23T09:00:00Z",
                &ana(),
                &[("TEE", 1, "10.00"), ("ODD", 1, "20.00")],
            )])
            .plan();
        let case = format!("{hts} from {origin} {flags:?}");
        assert_eq!(outcome(&plan, "SO-1"), expected, "{case}");
        if expected != Ships {
            assert!(plan.releases.is_empty(), "{case}");
            assert!(
                plan.stock_taken.is_empty(),
                "{case}: {:?}",
                plan.stock_taken
            );
        }
    }
}

#[test]
fn lines_excluded_for_different_reasons_give_the_first_reason_in_the_documented_order() {
    // Origin before goods before flag, whatever the order of the lines.
    let lines_in_both_orders = [
        [("LIQUOR", 1, "10.00"), ("LAMP", 1, "10.00")],
        [("LAMP", 1, "10.00"), ("LIQUOR", 1, "10.00")],
    ];
    for lines in lines_in_both_orders {
        let plan = World::new()
            .with_item("LIQUOR", "2208.40.0000", "MX", vec![ItemFlag::Adcvd])
            .with_item("LAMP", "9405.11.4010", "CN", vec![])
            .with_orders([order("SO-1", "2026-11-23T09:00:00Z", &ana(), &lines)])
            .plan();
        assert_eq!(outcome(&plan, "SO-1"), Held(ExcludedOrigin), "{lines:?}");
    }
    let plan = World::new()
        .with_item("BOLT", "7317.00.5502", "VN", vec![ItemFlag::Adcvd])
        .with_item("LIQUOR", "2208.40.0000", "MX", vec![])
        .with_orders([order(
            "SO-1",
            "2026-11-23T09:00:00Z",
            &ana(),
            &[("BOLT", 1, "10.00"), ("LIQUOR", 1, "10.00")],
        )])
        .plan();
    assert_eq!(outcome(&plan, "SO-1"), Held(ExcludedGoods));
}

#[test]
fn an_order_in_a_currency_without_a_rate_on_the_day_is_held_no_rate() {
    let cases = [
        ("EUR", "no rate was ever configured"),
        ("CAD", "the only rate starts the day after"),
    ];
    for (currency, why) in cases {
        let mut world = World::new().with_orders([in_currency(
            currency,
            order(
                "SO-1",
                "2026-11-23T09:00:00Z",
                &ana(),
                &[("TEE", 1, "10.00")],
            ),
        )]);
        world.rates = Rates::new(vec![rate("CAD", "2026-11-25", "0.72")]);
        let plan = world.plan();
        assert_eq!(outcome(&plan, "SO-1"), Held(NoRate), "{why}");
    }
}

#[test]
fn an_order_in_pesos_is_valued_at_the_days_rate_and_the_release_records_it() {
    let plan = World::new()
        .with_orders([
            worth("SO-1", "2026-11-23T09:00:00Z", &ana(), "20.00"),
            in_currency(
                "MXN",
                order(
                    "SO-2",
                    "2026-11-23T10:00:00Z",
                    &ana(),
                    &[("TEE", 7, "123.45"), ("MUG", 1, "1000.00")],
                ),
            ),
            worth("SO-3", "2026-11-23T11:00:00Z", &luis(), "20.00"),
        ])
        .plan();

    let for_ana = &plan.releases[0];
    assert_eq!(for_ana.orders, ["SO-1", "SO-2"]);
    // 7 x 123.45 MXN x 0.0541 = 46.750515, rounded per line to 46.75; 1000 MXN = 54.10.
    let peso_lines: Vec<(&str, Decimal, Decimal)> = for_ana.lines[1..]
        .iter()
        .map(|line| (&*line.currency, line.unit_price, line.value_usd))
        .collect();
    assert_eq!(
        peso_lines,
        [
            ("MXN", usd("123.45"), usd("46.75")),
            ("MXN", usd("1000.00"), usd("54.10"))
        ]
    );
    assert_eq!(for_ana.value_usd, usd("120.85"));
    // The rate in force on the day (the later of the two), recorded once for the release.
    assert_eq!(
        for_ana.fx,
        [FxUsed {
            currency: "MXN".into(),
            usd: usd("0.0541"),
            from: date("2026-10-01")
        }]
    );
    // Dollars need no rate, so a release in dollars records none.
    assert_eq!(plan.releases[1].orders, ["SO-3"]);
    assert!(plan.releases[1].fx.is_empty());
}

#[test]
fn the_limit_is_compared_with_the_rounded_dollar_value() {
    // 14787.45 MXN x 0.0541 = 800.001045 rounds to 800.00, exactly the limit: it ships.
    // 14787.55 MXN x 0.0541 = 800.006455 rounds to 800.01: over the limit.
    let cases = [("14787.45", Ships), ("14787.55", Held(OverLimit))];
    for (pesos, expected) in cases {
        let plan = World::new()
            .with_orders([in_currency(
                "MXN",
                order("SO-1", "2026-11-23T09:00:00Z", &ana(), &[("TEE", 1, pesos)]),
            )])
            .plan();
        assert_eq!(outcome(&plan, "SO-1"), expected, "{pesos} MXN");
        if expected == Ships {
            assert_eq!(plan.releases[0].value_usd, usd("800.00"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Later waves
// ---------------------------------------------------------------------------------------------

#[test]
fn a_later_wave_gives_no_second_release_beyond_one_per_day() {
    // Ana got a $100 release in an earlier wave; three releases of the day are committed.
    let plan = World::new()
        .with_claim(&ana(), 1, "100.00")
        .with_releases_before(3)
        .with_orders([
            worth("SO-1", "2026-11-23T09:00:00Z", &ana(), "50.00"),
            worth("SO-2", "2026-11-23T10:00:00Z", &luis(), "20.00"),
        ])
        .plan();
    assert_eq!(outcome(&plan, "SO-1"), Waits(DailyLimit));
    assert_eq!(outcome(&plan, "SO-2"), Ships);
    assert_eq!(plan.releases.len(), 1);
    assert_eq!(plan.releases[0].release_id, "2026-11-24-000004");
}

#[test]
fn a_later_wave_with_two_releases_per_day_ships_only_what_the_claim_leaves() {
    let mut world = World::new()
        .with_claim(&ana(), 1, "700.00")
        .with_claim(&luis(), 2, "10.00")
        .with_releases_before(3)
        .with_orders([
            worth("SO-1", "2026-11-23T09:00:00Z", &ana(), "150.00"),
            worth("SO-2", "2026-11-23T10:00:00Z", &ana(), "100.00"),
            worth("SO-3", "2026-11-23T11:00:00Z", &luis(), "5.00"),
            worth("SO-4", "2026-11-23T12:00:00Z", &mei(), "5.00"),
        ]);
    world.policy.releases_per_recipient_per_day = 2;
    let plan = world.plan();

    assert_eq!(
        outcome(&plan, "SO-1"),
        Waits(DailyLimit),
        "700 + 150 passes 800"
    );
    assert_eq!(outcome(&plan, "SO-2"), Ships, "700 + 100 is exactly 800");
    assert_eq!(
        outcome(&plan, "SO-3"),
        Waits(DailyLimit),
        "Luis had both his releases"
    );
    assert_eq!(outcome(&plan, "SO-4"), Ships);
    let ids: Vec<(&str, Vec<&str>)> = plan
        .releases
        .iter()
        .map(|r| {
            (
                r.release_id.as_str(),
                r.orders.iter().map(|id| id.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("2026-11-24-000004", vec!["SO-2"]),
            ("2026-11-24-000005", vec!["SO-4"])
        ]
    );
    assert_eq!(plan.releases[0].value_usd, usd("100.00"));
}

// ---------------------------------------------------------------------------------------------
// The cutoff
// ---------------------------------------------------------------------------------------------

#[test]
fn orders_placed_at_or_after_the_cutoff_are_not_due() {
    // Noon in Tijuana on a November day is 20:00 UTC.
    let cutoff = planner::cutoff_instant(day(), time("12:00"), chrono_tz::America::Tijuana);
    assert_eq!(cutoff, at("2026-11-24T20:00:00Z"));
    let mut world = World::new().with_orders([
        worth("SO-1", "2026-11-24T19:59:59Z", &ana(), "10.00"),
        worth("SO-2", "2026-11-24T20:00:00Z", &luis(), "10.00"),
        // Even an order that would be held is not examined: its verdict belongs to a later day.
        order(
            "SO-3",
            "2026-11-24T23:00:00Z",
            &mei(),
            &[("LAMP", 1, "10.00")],
        ),
        worth("SO-4", "2026-11-25T09:00:00Z", &ana(), "10.00"),
    ]);
    world.cutoff = cutoff;
    let plan = world.plan();

    assert_eq!(outcome(&plan, "SO-1"), Ships);
    for id in ["SO-2", "SO-3", "SO-4"] {
        assert_eq!(outcome(&plan, id), NotExamined, "{id}");
    }
    assert_eq!(plan.not_due, ["SO-2", "SO-3", "SO-4"]);
}

/// The detail the plan gives an order's verdict.
fn detail_of(plan: &Plan, order_id: &str) -> Detail {
    let place = plan
        .verdicts
        .iter()
        .position(|(id, _)| id == order_id)
        .unwrap_or_else(|| panic!("{order_id} has no verdict"));
    assert_eq!(plan.details.len(), plan.verdicts.len());
    plan.details[place].clone()
}

#[test]
fn each_verdict_names_the_figures_that_decided_it() {
    let plan = World::new()
        .with_stock("MUG", 1)
        .with_item("LAMP", "9405.11.4010", "CN", vec![])
        .with_item("LIQUOR", "2208.40.0000", "MX", vec![])
        .with_item("BOLT", "7317.00.5502", "VN", vec![ItemFlag::Adcvd])
        .with_claim(&luis(), 1, "700.00")
        .with_orders([
            // Takes the only mug; SO-2 then needs 2 and finds none.
            order(
                "SO-1",
                "2026-11-23T08:00:00Z",
                &mei(),
                &[("MUG", 1, "12.00")],
            ),
            order(
                "SO-2",
                "2026-11-23T09:00:00Z",
                &ana(),
                &[("TEE", 1, "10.00"), ("MUG", 2, "12.00")],
            ),
            // Luis has had his one release of the day, worth 700.00.
            worth("SO-3", "2026-11-23T10:00:00Z", &luis(), "150.00"),
            order(
                "SO-4",
                "2026-11-23T11:00:00Z",
                &ana(),
                &[("LAMP", 1, "10.00")],
            ),
            order(
                "SO-5",
                "2026-11-23T11:00:01Z",
                &ana(),
                &[("LIQUOR", 1, "10.00")],
            ),
            order(
                "SO-6",
                "2026-11-23T11:00:02Z",
                &ana(),
                &[("BOLT", 1, "10.00")],
            ),
            worth("SO-7", "2026-11-23T12:00:00Z", &ana(), "800.01"),
            in_currency(
                "EUR",
                order(
                    "SO-8",
                    "2026-11-23T13:00:00Z",
                    &ana(),
                    &[("TEE", 1, "10.00")],
                ),
            ),
        ])
        .plan();
    assert_eq!(
        detail_of(&plan, "SO-2"),
        Detail::Stock {
            short: vec![Shortfall {
                sku: "MUG".into(),
                needed: 2,
                on_hand: 0
            }]
        }
    );
    assert_eq!(
        detail_of(&plan, "SO-3"),
        Detail::DailyLimit {
            releases_used: 1,
            value_used_usd: usd("700.00"),
            order_value_usd: usd("150.00"),
            releases_per_recipient_per_day: 1,
            value_limit_usd: usd("800"),
        }
    );
    let excluded = |sku: &str, rule| Detail::Excluded {
        sku: sku.into(),
        rule,
        policy: "section-321".into(),
    };
    assert_eq!(
        detail_of(&plan, "SO-4"),
        excluded("LAMP", Exclusion::Origin("CN".into()))
    );
    assert_eq!(
        detail_of(&plan, "SO-5"),
        excluded("LIQUOR", Exclusion::HtsPrefix("2208".into()))
    );
    assert_eq!(
        detail_of(&plan, "SO-6"),
        excluded("BOLT", Exclusion::Flag(ItemFlag::Adcvd))
    );
    assert_eq!(
        detail_of(&plan, "SO-7"),
        Detail::OverLimit {
            value_usd: Some(usd("800.01")),
            value_limit_usd: usd("800"),
        }
    );
    assert_eq!(
        detail_of(&plan, "SO-8"),
        Detail::NoRate {
            currency: "EUR".into(),
            day: day(),
        }
    );
}

#[test]
fn cutoff_instant_is_the_local_cutoff_on_ordinary_and_dst_days() {
    let la = chrono_tz::America::Los_Angeles;
    let matamoros = chrono_tz::America::Matamoros;
    // (zone, day, local cutoff, instant, why)
    let cases: [(Tz, &str, &str, &str, &str); 14] = [
        (
            la,
            "2026-11-24",
            "12:00",
            "2026-11-24T20:00:00Z",
            "standard time, UTC-8",
        ),
        (
            la,
            "2026-07-01",
            "12:00",
            "2026-07-01T19:00:00Z",
            "daylight time, UTC-7",
        ),
        (
            la,
            "2026-03-08",
            "01:59",
            "2026-03-08T09:59:00Z",
            "a minute before the spring gap",
        ),
        (
            la,
            "2026-03-08",
            "02:00",
            "2026-03-08T10:00:00Z",
            "the gap's first minute: 03:00 PDT",
        ),
        (
            la,
            "2026-03-08",
            "02:30",
            "2026-03-08T10:00:00Z",
            "inside the gap: 03:00 PDT",
        ),
        (
            la,
            "2026-03-08",
            "03:00",
            "2026-03-08T10:00:00Z",
            "right after the gap",
        ),
        (
            la,
            "2026-11-01",
            "01:30",
            "2026-11-01T08:30:00Z",
            "happens twice: the earlier, PDT",
        ),
        (
            la,
            "2026-11-01",
            "02:00",
            "2026-11-01T10:00:00Z",
            "after falling back, PST",
        ),
        (
            la,
            "2026-11-01",
            "12:00",
            "2026-11-01T20:00:00Z",
            "noon on the 25-hour day",
        ),
        (
            matamoros,
            "2026-11-24",
            "12:00",
            "2026-11-24T18:00:00Z",
            "standard time, UTC-6",
        ),
        (
            matamoros,
            "2026-07-01",
            "12:00",
            "2026-07-01T17:00:00Z",
            "daylight time, UTC-5",
        ),
        (
            matamoros,
            "2026-03-08",
            "02:30",
            "2026-03-08T08:00:00Z",
            "inside the gap: 03:00 CDT",
        ),
        (
            matamoros,
            "2026-11-01",
            "01:30",
            "2026-11-01T06:30:00Z",
            "happens twice: the earlier, CDT",
        ),
        (
            matamoros,
            "2026-11-01",
            "06:00",
            "2026-11-01T12:00:00Z",
            "after falling back, CST",
        ),
    ];
    for (zone, local_day, cutoff, expected, why) in cases {
        assert_eq!(
            planner::cutoff_instant(date(local_day), time(cutoff), zone),
            at(expected),
            "{zone} {local_day} {cutoff}: {why}"
        );
    }
}

#[test]
fn a_cutoff_with_seconds_in_the_spring_gap_moves_to_the_first_instant_after_it() {
    // Regression: stepping through the gap a minute at a time from 02:30:30 landed on 03:00:30.
    let la = chrono_tz::America::Los_Angeles;
    // (day, local cutoff with seconds, instant)
    let cases = [
        ("2026-03-08", "02:30:30", "2026-03-08T10:00:00Z"),
        ("2026-03-08", "02:59:59", "2026-03-08T10:00:00Z"),
        ("2026-03-08", "01:59:59", "2026-03-08T09:59:59Z"),
        ("2026-03-08", "03:00:01", "2026-03-08T10:00:01Z"),
        ("2026-11-01", "01:30:45", "2026-11-01T08:30:45Z"),
    ];
    for (local_day, cutoff, expected) in cases {
        let cutoff = NaiveTime::parse_from_str(cutoff, "%H:%M:%S").unwrap();
        assert_eq!(
            planner::cutoff_instant(date(local_day), cutoff, la),
            at(expected),
            "{local_day} {cutoff}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Stock
// ---------------------------------------------------------------------------------------------

#[test]
fn an_order_short_of_one_sku_waits_for_stock_and_takes_nothing() {
    let plan = World::new()
        .with_stock("TEE", 10)
        .with_stock("MUG", 4)
        .with_orders([
            order(
                "SO-1",
                "2026-11-23T09:00:00Z",
                &ana(),
                &[("TEE", 2, "10.00"), ("MUG", 5, "8.00")],
            ),
            order(
                "SO-2",
                "2026-11-23T10:00:00Z",
                &luis(),
                &[("TEE", 3, "10.00")],
            ),
        ])
        .plan();
    assert_eq!(outcome(&plan, "SO-1"), Waits(Stock));
    assert_eq!(outcome(&plan, "SO-2"), Ships);
    // Ana's T-shirts were not taken: only Luis's three are.
    assert_eq!(plan.stock_taken, BTreeMap::from([("TEE".to_owned(), 3)]));
}

#[test]
fn two_lines_of_one_sku_are_summed_against_stock() {
    // (mugs on hand, None for a SKU with no stock record at all, outcome) for 3 + 3 mugs.
    let cases = [
        (Some(5), Waits(Stock)),
        (Some(6), Ships),
        (Some(7), Ships),
        (None, Waits(Stock)),
    ];
    for (mugs, expected) in cases {
        let mut world = World::new().with_orders([order(
            "SO-1",
            "2026-11-23T09:00:00Z",
            &ana(),
            &[("MUG", 3, "8.00"), ("MUG", 3, "8.00")],
        )]);
        match mugs {
            Some(units) => world = world.with_stock("MUG", units),
            None => {
                world.on_hand.remove("MUG");
            }
        }
        let plan = world.plan();
        assert_eq!(outcome(&plan, "SO-1"), expected, "{mugs:?} mugs");
        let taken = if expected == Ships {
            BTreeMap::from([("MUG".to_owned(), 6)])
        } else {
            BTreeMap::new()
        };
        assert_eq!(plan.stock_taken, taken, "{mugs:?} mugs");
    }
}

// ---------------------------------------------------------------------------------------------
// One person
// ---------------------------------------------------------------------------------------------

#[test]
fn two_spellings_of_one_person_share_one_release_and_one_limit() {
    let spellings = &people()[ANA];
    let plan = World::new()
        .with_orders([
            worth("SO-1", "2026-11-23T09:00:00Z", &spellings[0], "500.00"),
            worth("SO-2", "2026-11-23T10:00:00Z", &spellings[1], "250.00"),
            worth("SO-3", "2026-11-23T11:00:00Z", &spellings[2], "100.00"),
            // Someone else at her address is another recipient, with a limit of her own.
            worth("SO-4", "2026-11-23T12:00:00Z", &people()[LUZ][0], "100.00"),
        ])
        .plan();

    assert_eq!(
        outcome(&plan, "SO-3"),
        Waits(DailyLimit),
        "500 + 250 + 100 passes 800"
    );
    assert_eq!(plan.releases.len(), 2);
    assert_eq!(plan.releases[0].orders, ["SO-1", "SO-2"]);
    assert_eq!(plan.releases[0].value_usd, usd("750.00"));
    assert_eq!(plan.releases[1].orders, ["SO-4"]);
}

// ---------------------------------------------------------------------------------------------
// Properties over generated snapshots
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_candidate_is_released_once_or_has_one_verdict(scenario in scenario()) {
        let world = scenario.world();
        let plan = world.plan_unchecked();

        let mut seen = HashSet::new();
        let released = plan.releases.iter().flat_map(|r| r.orders.iter());
        let judged = plan.verdicts.iter().map(|(id, _)| id);
        for id in released.chain(judged) {
            prop_assert!(seen.insert(id.as_str()), "order {} appears twice", id);
        }
        let candidates: HashSet<&str> = world.candidates().map(|o| o.order_id.as_str()).collect();
        prop_assert_eq!(&seen, &candidates, "every candidate, and nothing else, has a fate");
        prop_assert_eq!(plan.not_due.len(), world.orders.len() - candidates.len());
    }

    #[test]
    fn held_orders_are_exactly_those_the_policy_or_the_rates_refuse(scenario in scenario()) {
        let world = scenario.world();
        let plan = world.plan_unchecked();
        for order in world.candidates() {
            let reasons = scenario.hold_reasons(order);
            match outcome(&plan, &order.order_id) {
                Held(reason) => prop_assert!(
                    reasons.contains(&reason),
                    "{} held {:?}, but only {:?} apply", order.order_id, reason, reasons
                ),
                other => prop_assert!(
                    reasons.is_empty(),
                    "{} is {:?}, but should be held for one of {:?}", order.order_id, other, reasons
                ),
            }
        }
    }

    #[test]
    fn each_recipient_stays_within_the_days_releases_and_value(scenario in scenario()) {
        let world = scenario.world();
        let plan = world.plan_unchecked();
        let limit = world.policy.value_limit_usd;
        let per_day = world.policy.releases_per_recipient_per_day;

        // Group by the person the generator meant, not by the planner's key, so that a spelling
        // the key failed to fold shows up as a second release for one person.
        let mut releases_of: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (index, release) in plan.releases.iter().enumerate() {
            let persons: HashSet<usize> =
                release.orders.iter().map(|id| scenario.person_of(id)).collect();
            prop_assert_eq!(persons.len(), 1, "release {} mixes people", &release.release_id);
            let person = *persons.iter().next().unwrap();
            prop_assert_eq!(&release.recipient_key, &key_of(person));
            releases_of.entry(person).or_default().push(index);
        }
        for (person, releases) in releases_of {
            let claim = world.claims.get(&key_of(person)).copied().unwrap_or_default();
            prop_assert_eq!(releases.len(), 1, "one consolidated release per recipient per wave");
            prop_assert!(
                claim.releases + releases.len() as u32 <= per_day,
                "person {} had {} releases and gets {} more, {} allowed",
                person, claim.releases, releases.len(), per_day
            );
            let new_value: Decimal = releases.iter().map(|&i| plan.releases[i].value_usd).sum();
            let total = claim.value_usd + new_value;
            prop_assert!(
                total <= limit,
                "person {} gets {} in the day, limit {}", person, total, limit
            );
        }
    }

    #[test]
    fn stock_taken_is_what_released_lines_need_and_never_more_than_on_hand(scenario in scenario()) {
        let world = scenario.world();
        let plan = world.plan_unchecked();
        let mut needed: BTreeMap<String, u64> = BTreeMap::new();
        for line in plan.releases.iter().flat_map(|r| r.lines.iter()) {
            *needed.entry(line.item.sku.clone()).or_default() += u64::from(line.qty);
        }
        prop_assert_eq!(&plan.stock_taken, &needed);
        for (sku, taken) in &plan.stock_taken {
            let on_hand = world.on_hand.get(sku).copied().unwrap_or(0);
            prop_assert!(*taken <= on_hand, "{} {} taken with {} on hand", taken, sku, on_hand);
        }
    }

    #[test]
    fn releases_hold_whole_orders_valued_line_by_line(scenario in scenario()) {
        let world = scenario.world();
        let plan = world.plan_unchecked();
        for release in &plan.releases {
            let lines_total: Decimal = release.lines.iter().map(|line| line.value_usd).sum();
            prop_assert_eq!(release.value_usd, lines_total, "release {}", &release.release_id);

            // The lines are exactly the released orders' lines, order by order, in full.
            let mut expected = Vec::new();
            let mut currencies = HashSet::new();
            for id in &release.orders {
                let order = world.order(id);
                let rate = scenario
                    .usd_per_unit(&order.currency)
                    .expect("a released order has a rate");
                currencies.insert(order.currency.as_str());
                for line in &order.lines {
                    let value = round_to_cent(Decimal::from(line.qty) * line.unit_price * rate);
                    let sku = line.sku.as_str();
                    expected.push((id.as_str(), sku, line.qty, line.unit_price, value));
                }
            }
            let actual: Vec<_> = release
                .lines
                .iter()
                .map(|l| (l.order_id.as_str(), l.item.sku.as_str(), l.qty, l.unit_price, l.value_usd))
                .collect();
            prop_assert_eq!(actual, expected, "release {}", &release.release_id);
            // A rate is recorded exactly when an order in pesos is in the release.
            prop_assert_eq!(release.fx.is_empty(), !currencies.contains("MXN"));
        }
    }

    #[test]
    fn each_recipients_oldest_eligible_order_ships_when_stock_is_ample(
        scenario in scenario().prop_map(Scenario::with_ample_stock_and_no_claims)
    ) {
        let world = scenario.world();
        let plan = world.plan_unchecked();
        let mut served: HashSet<usize> = HashSet::new();
        for order in world.candidates_in_service_order() {
            let person = scenario.person_of(&order.order_id);
            if !scenario.hold_reasons(order).is_empty() || !served.insert(person) {
                continue;
            }
            prop_assert_eq!(
                outcome(&plan, &order.order_id),
                Ships,
                "{} is the oldest of person {}", &order.order_id, person
            );
        }
    }

    #[test]
    fn a_waiting_order_really_did_not_fit_at_its_turn(scenario in scenario()) {
        // Replays the day in order of service, from what the plan says shipped.
        let world = scenario.world();
        let plan = world.plan_unchecked();
        let limit = world.policy.value_limit_usd;
        let per_day = world.policy.releases_per_recipient_per_day;
        let mut left: HashMap<&str, u64> =
            world.on_hand.iter().map(|(sku, n)| (sku.as_str(), *n)).collect();
        let mut value_today: HashMap<usize, Decimal> = HashMap::new();
        let mut has_release: HashSet<usize> = HashSet::new();
        for order in world.candidates_in_service_order() {
            let person = scenario.person_of(&order.order_id);
            let claim = world.claims.get(&key_of(person)).copied().unwrap_or_default();
            let so_far = *value_today.entry(person).or_insert(claim.value_usd);
            let need = units_needed(order);
            let short = need.iter().any(|(sku, qty)| *qty > left.get(sku).copied().unwrap_or(0));
            match outcome(&plan, &order.order_id) {
                Ships => {
                    prop_assert!(!short, "{} shipped without stock", &order.order_id);
                    for (sku, qty) in need {
                        *left.get_mut(sku).unwrap() -= qty;
                    }
                    value_today.insert(person, so_far + scenario.value_usd(order).unwrap());
                    has_release.insert(person);
                }
                Waits(NotDue) => prop_assert!(false, "{} candidate but not due", &order.order_id),
                Waits(Stock) => prop_assert!(
                    short,
                    "{} waits for stock it had: needs {:?}, left {:?}", &order.order_id, need, left
                ),
                Waits(DailyLimit) => {
                    let release_left = has_release.contains(&person) || claim.releases < per_day;
                    let value = scenario.value_usd(order).unwrap();
                    prop_assert!(
                        !release_left || so_far + value > limit,
                        "{} ({}) waits for the daily limit with {} of {} used",
                        &order.order_id, value, so_far, limit
                    );
                }
                Held(_) => {}
                NotExamined => {
                    prop_assert!(false, "candidate {} was not examined", &order.order_id)
                }
            }
        }
    }

    #[test]
    fn verify_accepts_every_plan_that_plan_returns(scenario in scenario()) {
        let world = scenario.world();
        let plan = world.plan_unchecked();
        let verdict = planner::verify(&plan, &world.snapshot(), &world.policy);
        prop_assert!(verdict.is_ok(), "{:?}", verdict);
    }

    #[test]
    fn the_same_inputs_give_the_same_plan_byte_for_byte(
        (scenario, permutation) in scenario().prop_flat_map(|scenario| {
            let indices: Vec<usize> = (0..scenario.orders.len()).collect();
            (Just(scenario), Just(indices).prop_shuffle())
        })
    ) {
        // Each world is built afresh, so its hash maps iterate in an order of their own too.
        let first = scenario.world().plan_unchecked();
        let again = scenario.world().plan_unchecked();
        let mut shuffled = scenario.world();
        shuffled.orders = permutation.iter().map(|&i| shuffled.orders[i].clone()).collect();
        let shuffled = shuffled.plan_unchecked();
        let mut reversed = scenario.world();
        reversed.orders.reverse();
        let reversed = reversed.plan_unchecked();

        let bytes = serde_json::to_vec(&first.releases).unwrap();
        for other in [&again, &shuffled, &reversed] {
            prop_assert_eq!(other, &first);
            prop_assert_eq!(&serde_json::to_vec(&other.releases).unwrap(), &bytes);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generated snapshots
// ---------------------------------------------------------------------------------------------

/// A day of the warehouse as the generator draws it; `world` turns it into planner input.
#[derive(Debug, Clone)]
struct Scenario {
    limit_cents: i64,
    releases_per_day: u32,
    /// Per SKU of `CATALOGUE`: `None` for no stock record at all.
    stock: Vec<Option<u64>>,
    mxn_rate: MxnRate,
    /// Per person: releases and percent of the limit an earlier wave gave them.
    claims: Vec<Option<(u32, i64)>>,
    /// Releases of the day that went to people with no open order.
    other_releases_before: u32,
    orders: Vec<DrawnOrder>,
}

#[derive(Debug, Clone, Copy)]
enum MxnRate {
    InForce,
    StartsTomorrow,
    Missing,
}

#[derive(Debug, Clone)]
struct DrawnOrder {
    person: usize,
    spelling: usize,
    /// Two-hour steps after 2026-11-23T20:00Z; the cutoff is slot 12. Coarse on purpose, so that
    /// orders often tie on placed_at and the order id has to break the tie.
    slot: i64,
    currency: &'static str,
    /// (SKU, quantity, unit price in cents).
    lines: Vec<(&'static str, u32, i64)>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let stock = prop_oneof![1 => Just(None), 2 => Just(Some(0)), 7 => (1u64..=15).prop_map(Some)];
    let mxn_rate = prop_oneof![
        2 => Just(MxnRate::InForce),
        1 => Just(MxnRate::StartsTomorrow),
        1 => Just(MxnRate::Missing),
    ];
    let claim = prop::option::weighted(0.25, (1u32..=2, 0i64..=100));
    (
        20_000i64..=120_000,
        1u32..=2,
        prop::collection::vec(stock, CATALOGUE.len()),
        mxn_rate,
        prop::collection::vec(claim, PEOPLE_COUNT),
        0u32..=3,
        prop::collection::vec(drawn_order(), 0..=14),
    )
        .prop_map(
            |(
                limit_cents,
                releases_per_day,
                stock,
                mxn_rate,
                claims,
                other_releases_before,
                orders,
            )| Scenario {
                limit_cents,
                releases_per_day,
                stock,
                mxn_rate,
                claims,
                other_releases_before,
                orders,
            },
        )
}

fn drawn_order() -> impl Strategy<Value = DrawnOrder> {
    // Allowed items are drawn more often than excluded ones, so most orders compete for stock.
    let sku = prop_oneof![
        8 => Just("TEE"),
        8 => Just("MUG"),
        6 => Just("BAG"),
        1 => Just("LAMP"),
        1 => Just("RUM"),
        1 => Just("NAIL"),
    ];
    let currency = prop_oneof![14 => Just("USD"), 6 => Just("MXN"), 1 => Just("EUR")];
    (
        0..PEOPLE_COUNT,
        0usize..3,
        0i64..14,
        currency,
        prop::collection::vec((sku, 1u32..=3, 0i64..=10_000), 1..=3),
    )
        .prop_map(|(person, spelling, slot, currency, lines)| DrawnOrder {
            person,
            spelling,
            slot,
            currency,
            lines,
        })
}

impl Scenario {
    fn with_ample_stock_and_no_claims(mut self) -> Scenario {
        self.stock = vec![Some(1_000); CATALOGUE.len()];
        self.claims = vec![None; PEOPLE_COUNT];
        self
    }

    fn world(&self) -> World {
        let mut world = World::new();
        world.policy.value_limit_usd = Decimal::new(self.limit_cents, 2);
        world.policy.releases_per_recipient_per_day = self.releases_per_day;
        world.rates = match self.mxn_rate {
            MxnRate::InForce => Rates::new(vec![rate("MXN", "2026-10-01", "0.0541")]),
            MxnRate::StartsTomorrow => Rates::new(vec![rate("MXN", "2026-11-25", "0.0541")]),
            MxnRate::Missing => Rates::default(),
        };
        world.on_hand = CATALOGUE
            .iter()
            .zip(&self.stock)
            .filter_map(|(entry, units)| Some((entry.sku.to_owned(), (*units)?)))
            .collect();
        world.releases_before = self.other_releases_before;
        for (person, claim) in self.claims.iter().enumerate() {
            if let Some((releases, percent)) = *claim {
                let releases = releases.min(self.releases_per_day);
                let value = Decimal::new(self.limit_cents * percent / 100, 2);
                world.claims.insert(
                    key_of(person),
                    Claim {
                        releases,
                        value_usd: value,
                    },
                );
                world.releases_before += releases;
            }
        }
        world.orders = self
            .orders
            .iter()
            .enumerate()
            .map(|(index, drawn)| drawn.order(index))
            .collect();
        world
    }

    /// The person an order of `world` was drawn for.
    fn person_of(&self, order_id: &str) -> usize {
        let index: usize = order_id.trim_start_matches("SO-").parse().unwrap();
        self.orders[index].person
    }

    /// Dollars per unit of `currency` on the day, as the scenario configured it.
    fn usd_per_unit(&self, currency: &str) -> Option<Decimal> {
        match (currency, self.mxn_rate) {
            ("USD", _) => Some(Decimal::ONE),
            ("MXN", MxnRate::InForce) => Some(usd("0.0541")),
            _ => None,
        }
    }

    /// The order's value in dollars, each line rounded to the cent (money's rounding rule).
    fn value_usd(&self, order: &Order) -> Option<Decimal> {
        let rate = self.usd_per_unit(&order.currency)?;
        Some(
            order
                .lines
                .iter()
                .map(|l| round_to_cent(Decimal::from(l.qty) * l.unit_price * rate))
                .sum(),
        )
    }

    /// Every reason the order could be held for; empty when it must not be held. The design does
    /// not rank the reasons, so a held order may give any of them.
    fn hold_reasons(&self, order: &Order) -> Vec<HoldReason> {
        let mut reasons: Vec<HoldReason> = order
            .lines
            .iter()
            .filter_map(|line| catalogue_entry(&line.sku).held_as)
            .collect();
        match self.value_usd(order) {
            None => reasons.push(NoRate),
            Some(value) if value > Decimal::new(self.limit_cents, 2) => reasons.push(OverLimit),
            Some(_) => {}
        }
        reasons
    }
}

impl DrawnOrder {
    fn order(&self, index: usize) -> Order {
        let spellings = &people()[self.person];
        // Pesos are drawn twenty times larger so that they weigh about as much in dollars.
        let scale = if self.currency == "MXN" { 20 } else { 1 };
        Order {
            order_id: format!("SO-{index:02}").into(),
            placed_at: at("2026-11-23T20:00:00Z") + Duration::hours(2 * self.slot),
            recipient: spellings[self.spelling % spellings.len()].clone(),
            currency: self.currency.into(),
            lines: self
                .lines
                .iter()
                .map(|&(sku, qty, cents)| OrderLine {
                    sku: sku.into(),
                    qty,
                    unit_price: price(cents * scale),
                })
                .collect(),
        }
    }
}

/// A price as an integrator writes it, from whole cents: 1999 gives "19.99".
fn price(cents: i64) -> Decimal {
    usd(&format!("{}.{:02}", cents / 100, cents % 100))
}

fn round_to_cent(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Units per SKU an order needs, its lines of one SKU summed.
fn units_needed(order: &Order) -> BTreeMap<&str, u64> {
    let mut need = BTreeMap::new();
    for line in &order.lines {
        *need.entry(line.sku.as_str()).or_default() += u64::from(line.qty);
    }
    need
}

/// The recipient key of a person, from their first spelling.
fn key_of(person: usize) -> String {
    key_for(&people()[person][0])
}

/// The planner's recipient key for orders to `who`, as the claims of a day are keyed.
fn key_for(who: &Consignee) -> String {
    let probe = worth("KEY", "2026-11-23T00:00:00Z", who, "0.00");
    planner::recipient_key(IdentityRule::NameAndAddress, &probe)
}

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

/// What became of one order in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ships,
    Waits(WaitReason),
    Held(HoldReason),
    /// Neither released nor judged: placed at or after the cutoff.
    NotExamined,
}

/// The outcome of `order_id`; panics if the plan gives it more than one.
fn outcome(plan: &Plan, order_id: &str) -> Outcome {
    let releases = plan
        .releases
        .iter()
        .filter(|r| r.orders.iter().any(|id| id == order_id))
        .count();
    let verdicts: Vec<Verdict> = plan
        .verdicts
        .iter()
        .filter(|(id, _)| id == order_id)
        .map(|(_, verdict)| *verdict)
        .collect();
    match (releases, verdicts.as_slice()) {
        (0, []) => NotExamined,
        (1, []) => Ships,
        (0, [Verdict::Waiting(reason)]) => Waits(*reason),
        (0, [Verdict::Held(reason)]) => Held(*reason),
        _ => panic!("order {order_id} is in {releases} releases and has verdicts {verdicts:?}"),
    }
}

/// Everything `plan` reads, owned, with a day in Tijuana as the default.
struct World {
    day: NaiveDate,
    orders: Vec<Order>,
    items: HashMap<String, Item>,
    on_hand: HashMap<String, u64>,
    claims: HashMap<String, Claim>,
    releases_before: u32,
    policy: Policy,
    rates: Rates,
    cutoff: DateTime<Utc>,
}

impl World {
    /// Release day 2026-11-24, cutoff at noon in Tijuana (20:00 UTC), an $800 limit with one
    /// release per recipient per day, the whole catalogue with 100 units of each item, and
    /// two peso rates of which the later, 0.0541 from 2026-10-01, is in force.
    fn new() -> World {
        World {
            day: day(),
            orders: Vec::new(),
            items: CATALOGUE
                .iter()
                .map(|entry| {
                    let item = item(entry.sku, entry.hts, entry.origin, entry.flags.to_vec());
                    (entry.sku.to_owned(), item)
                })
                .collect(),
            on_hand: CATALOGUE
                .iter()
                .map(|entry| (entry.sku.to_owned(), 100))
                .collect(),
            claims: HashMap::new(),
            releases_before: 0,
            policy: Policy {
                name: "section-321".into(),
                from: date("2016-03-10"),
                lane: "de-minimis".into(),
                value_limit_usd: usd("800"),
                releases_per_recipient_per_day: 1,
                excluded_origins: vec!["CN".into(), "HK".into()],
                excluded_hts_prefixes: [
                    "2203", "2204", "2205", "2206", "2207", "2208", "24", "3303",
                ]
                .map(String::from)
                .to_vec(),
                excluded_flags: vec![ItemFlag::Adcvd, ItemFlag::Quota, ItemFlag::IrcTax],
                filing: Filing::of_lane(Lane::DeMinimis),
            },
            rates: Rates::new(vec![
                rate("MXN", "2026-07-01", "0.0530"),
                rate("MXN", "2026-10-01", "0.0541"),
            ]),
            cutoff: at("2026-11-24T20:00:00Z"),
        }
    }

    fn with_item(mut self, sku: &str, hts: &str, origin: &str, flags: Vec<ItemFlag>) -> World {
        self.items
            .insert(sku.to_owned(), item(sku, hts, origin, flags));
        self.on_hand.insert(sku.to_owned(), 100);
        self
    }

    fn with_stock(mut self, sku: &str, units: u64) -> World {
        self.on_hand.insert(sku.to_owned(), units);
        self
    }

    fn with_orders(mut self, orders: impl IntoIterator<Item = Order>) -> World {
        self.orders.extend(orders);
        self
    }

    /// What an earlier wave of the day gave `who`.
    fn with_claim(mut self, who: &Consignee, releases: u32, value: &str) -> World {
        self.claims.insert(
            key_for(who),
            Claim {
                releases,
                value_usd: usd(value),
            },
        );
        self
    }

    fn with_releases_before(mut self, releases: u32) -> World {
        self.releases_before = releases;
        self
    }

    fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            orders: &self.orders,
            items: &self.items,
            on_hand: &self.on_hand,
            claims: &self.claims,
            releases_before: self.releases_before,
        }
    }

    fn rules(&self) -> Rules<'_> {
        Rules {
            cutoff: self.cutoff,
            rates: &self.rates,
            identity: IdentityRule::NameAndAddress,
            at: at("2026-11-24T20:05:00Z"),
        }
    }

    /// The plan, checked by `verify` as the batch would before committing it.
    fn plan(&self) -> Plan {
        let plan = self.plan_unchecked();
        planner::verify(&plan, &self.snapshot(), &self.policy).expect("verify accepts the plan");
        plan
    }

    /// The plan as `plan` returns it, for properties that check the invariants themselves.
    fn plan_unchecked(&self) -> Plan {
        planner::plan(&self.snapshot(), self.day, &self.policy, &self.rules())
    }

    fn order(&self, order_id: &str) -> &Order {
        self.orders
            .iter()
            .find(|order| order.order_id == order_id)
            .unwrap()
    }

    fn candidates(&self) -> impl Iterator<Item = &Order> {
        self.orders
            .iter()
            .filter(|order| order.placed_at < self.cutoff)
    }

    /// Candidates oldest first, ties by order id: README, "How a release day works".
    fn candidates_in_service_order(&self) -> Vec<&Order> {
        let mut candidates: Vec<&Order> = self.candidates().collect();
        candidates.sort_by(|a, b| (a.placed_at, &a.order_id).cmp(&(b.placed_at, &b.order_id)));
        candidates
    }
}

/// One item of the test catalogue, with what the default policy makes of it.
struct CatalogueEntry {
    sku: &'static str,
    hts: &'static str,
    origin: &'static str,
    flags: &'static [ItemFlag],
    held_as: Option<HoldReason>,
}

const CATALOGUE: [CatalogueEntry; 6] = [
    CatalogueEntry {
        sku: "TEE",
        hts: "6109.10.0012",
        origin: "MX",
        flags: &[],
        held_as: None,
    },
    CatalogueEntry {
        sku: "MUG",
        hts: "6912.00.4810",
        origin: "US",
        flags: &[],
        held_as: None,
    },
    // Partner-agency data is not excluded by the default policy.
    CatalogueEntry {
        sku: "BAG",
        hts: "4202.92.3031",
        origin: "MX",
        flags: &[ItemFlag::Pga],
        held_as: None,
    },
    CatalogueEntry {
        sku: "LAMP",
        hts: "9405.11.4010",
        origin: "CN",
        flags: &[],
        held_as: Some(ExcludedOrigin),
    },
    CatalogueEntry {
        sku: "RUM",
        hts: "2208.40.0000",
        origin: "MX",
        flags: &[],
        held_as: Some(ExcludedGoods),
    },
    CatalogueEntry {
        sku: "NAIL",
        hts: "7317.00.5502",
        origin: "VN",
        flags: &[ItemFlag::Adcvd],
        held_as: Some(ExcludedFlag),
    },
];

fn catalogue_entry(sku: &str) -> &'static CatalogueEntry {
    CATALOGUE.iter().find(|entry| entry.sku == sku).unwrap()
}

fn item(sku: &str, hts: &str, origin: &str, flags: Vec<ItemFlag>) -> Item {
    Item {
        sku: sku.into(),
        description: format!("{sku} for testing"),
        hts: hts.into(),
        origin: origin.into(),
        flags,
        mid: None,
        usmca: false,
    }
}

/// An order in dollars with lines of (SKU, quantity, unit price).
fn order(order_id: &str, placed_at: &str, to: &Consignee, lines: &[(&str, u32, &str)]) -> Order {
    Order {
        order_id: order_id.into(),
        placed_at: at(placed_at),
        recipient: to.clone(),
        currency: "USD".into(),
        lines: lines
            .iter()
            .map(|&(sku, qty, unit_price)| OrderLine {
                sku: sku.into(),
                qty,
                unit_price: usd(unit_price),
            })
            .collect(),
    }
}

/// An order of one T-shirt worth `value` dollars.
fn worth(order_id: &str, placed_at: &str, to: &Consignee, value: &str) -> Order {
    order(order_id, placed_at, to, &[("TEE", 1, value)])
}

fn in_currency(currency: &str, mut order: Order) -> Order {
    order.currency = currency.into();
    order
}

const ANA: usize = 0;
const LUZ: usize = 3;
const PEOPLE_COUNT: usize = 4;

/// Each person as integrators spell them: every spelling of one person is one recipient.
/// Luz lives at Ana's address but is someone else.
fn people() -> [Vec<Consignee>; PEOPLE_COUNT] {
    [
        vec![
            consignee(
                "Ana Ruíz",
                "1200 Market Street",
                None,
                "San Diego",
                "92101-1234",
            ),
            consignee("ANA RUIZ.", "1200 market st", None, "SAN DIEGO", "92101"),
            consignee(
                "  ana   ruiz ",
                "1200 Market St.",
                None,
                "San Diego",
                "921011234",
            ),
        ],
        vec![
            consignee(
                "Luis O'Brien",
                "45 West Elm Avenue",
                None,
                "Chula Vista",
                "91910",
            ),
            consignee(
                "LUIS OBRIEN",
                "45 W. Elm Ave",
                None,
                "Chula Vista",
                "91910-0001",
            ),
        ],
        vec![
            consignee(
                "Mei Chen",
                "9 Harbor Drive",
                Some("Apt 4"),
                "La Jolla",
                "92037",
            ),
            consignee(
                "mei chen",
                "9 harbor dr",
                Some("#4"),
                "la jolla",
                "92037-4321",
            ),
        ],
        vec![consignee(
            "Luz Ruiz",
            "1200 Market Street",
            None,
            "San Diego",
            "92101",
        )],
    ]
}

fn ana() -> Consignee {
    people()[0][0].clone()
}

fn luis() -> Consignee {
    people()[1][0].clone()
}

fn mei() -> Consignee {
    people()[2][0].clone()
}

fn consignee(name: &str, line1: &str, line2: Option<&str>, city: &str, zip: &str) -> Consignee {
    Consignee {
        name: name.into(),
        customer_id: None,
        address: Address {
            line1: line1.into(),
            line2: line2.map(Into::into),
            city: city.into(),
            state: "CA".into(),
            postal_code: zip.into(),
            country: "US".into(),
        },
    }
}

fn rate(currency: &str, from: &str, usd_per_unit: &str) -> Rate {
    Rate {
        currency: currency.into(),
        from: date(from),
        usd: usd(usd_per_unit),
    }
}

fn day() -> NaiveDate {
    date("2026-11-24")
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::from_str(text).unwrap()
}

fn time(text: &str) -> NaiveTime {
    NaiveTime::parse_from_str(text, "%H:%M").unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn usd(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}
