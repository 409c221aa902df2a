//! The end-to-end story of a warehouse over three release days, told through the built binary:
//! the daily limit, consolidation of two spellings of one person, waves, held orders with each
//! reason, stock arriving, cancellations, a currency, and a policy change that frees held orders.

mod support;

use support::{order, Warehouse, ITEMS};

const DAY1_MORNING: &str = "2026-12-01T07:00:00-08:00";
const DAY1_LATER: &str = "2026-12-01T09:00:00-08:00";
const DAY2_MORNING: &str = "2026-12-02T07:00:00-08:00";
const DAY3_MORNING: &str = "2026-12-03T07:00:00-08:00";

#[test]
fn three_days_at_a_warehouse() {
    let w = Warehouse::new();
    let items = w.file("items.csv", ITEMS);
    w.ok(DAY1_MORNING, &["items", "import", items.to_str().unwrap()]);
    let stock = w.file(
        "stock.csv",
        "sku,qty\nTSHIRT,20\nJEANS,10\nBOOTS,2\nTEQUILA,5\nRADIO,5\n",
    );
    w.ok(DAY1_MORNING, &["stock", "receive", stock.to_str().unwrap()]);

    let orders = [
        order(
            "A1",
            "2026-11-30T10:00:00-08:00",
            "Ana Ruiz",
            "1200 Market St",
            "USD",
            &[("TSHIRT", 10, "50.00")],
        ),
        order(
            "A2",
            "2026-11-30T11:00:00-08:00",
            "ANA RUÍZ",
            "1200 Market Street",
            "USD",
            &[("JEANS", 4, "100.00")],
        ),
        order(
            "B1",
            "2026-11-30T12:00:00-08:00",
            "Ben Ode",
            "9 Harbor Blvd",
            "USD",
            &[("BOOTS", 9, "100.00")],
        ),
        order(
            "C1",
            "2026-11-30T13:00:00-08:00",
            "Cy Young",
            "4 Elm Ave",
            "MXN",
            &[("JEANS", 1, "5000.00")],
        ),
        order(
            "D1",
            "2026-11-30T14:00:00-08:00",
            "Dee Park",
            "8 Oak Dr",
            "USD",
            &[("TEQUILA", 1, "30.00")],
        ),
        order(
            "R1",
            "2026-11-30T14:30:00-08:00",
            "Rae Ford",
            "3 Bay Rd",
            "USD",
            &[("RADIO", 1, "25.00")],
        ),
        order(
            "E1",
            "2026-11-30T15:00:00-08:00",
            "Eve Stone",
            "6 Pine St",
            "USD",
            &[("BOOTS", 3, "50.00")],
        ),
        order(
            "F1",
            "2026-11-30T16:00:00-08:00",
            "Fay Wong",
            "2 Ash Ct",
            "USD",
            &[("TSHIRT", 1, "10.00")],
        ),
        order(
            "G1",
            "2026-11-30T17:00:00-08:00",
            "Gus Berg",
            "5 Fir Ln",
            "EUR",
            &[("TSHIRT", 1, "10.00")],
        ),
    ]
    .join("\n");
    let orders_file = w.file("orders-1.jsonl", &orders);
    let out = w.ok(
        DAY1_MORNING,
        &["orders", "import", orders_file.to_str().unwrap()],
    );
    assert!(out.contains("9 accepted"), "{out}");
    w.ok(DAY1_MORNING, &["orders", "cancel", "F1"]);

    // Day 1, first wave.
    let out = w.ok(DAY1_MORNING, &["batch"]);
    assert!(out.contains("batch for 2026-12-01 committed"), "{out}");
    let log = w.release_log("2026-12-01");
    assert_eq!(log.len(), 2, "{log:#?}");
    assert_eq!(log[0]["release_id"], "2026-12-01-000001");
    assert_eq!(log[0]["orders"], serde_json::json!(["A1"]));
    assert_eq!(log[0]["value_usd"], "500.00");
    assert_eq!(log[0]["policy"], "section-321");
    assert_eq!(log[0]["lane"], "de-minimis");
    assert_eq!(log[0]["released_at"], "2026-12-01T15:00:00Z");
    assert_eq!(log[1]["orders"], serde_json::json!(["C1"]));
    assert_eq!(log[1]["value_usd"], "270.50");
    assert_eq!(
        log[1]["fx"],
        serde_json::json!([{"currency": "MXN", "usd": "0.0541", "from": "2026-10-01"}])
    );
    assert_eq!(log[1]["lines"][0]["hts"], "6203.42.4011");
    assert_eq!(w.manifest("2026-12-01").len(), 2);

    let state = |id: &str, now: &str| {
        let row = w.order(now, id);
        (row.state, row.reason)
    };
    let s = |state: &str, reason: Option<&str>| (state.to_owned(), reason.map(str::to_owned));
    assert_eq!(state("A1", DAY1_MORNING), s("released", None));
    assert_eq!(state("A2", DAY1_MORNING), s("pending", Some("daily-limit")));
    assert_eq!(state("B1", DAY1_MORNING), s("held", Some("over-limit")));
    assert_eq!(state("D1", DAY1_MORNING), s("held", Some("excluded-goods")));
    assert_eq!(
        state("R1", DAY1_MORNING),
        s("held", Some("excluded-origin"))
    );
    assert_eq!(state("E1", DAY1_MORNING), s("pending", Some("stock")));
    assert_eq!(state("F1", DAY1_MORNING), s("cancelled", None));
    assert_eq!(state("G1", DAY1_MORNING), s("held", Some("no-rate")));
    assert_eq!(
        w.order(DAY1_MORNING, "A1").release_id.as_deref(),
        Some("2026-12-01-000001")
    );
    assert_eq!(
        w.order(DAY1_MORNING, "A1").day.as_deref(),
        Some("2026-12-01")
    );

    // Day 1, a later wave: late orders placed before the cutoff join; the one after waits.
    let late = [
        order(
            "H1",
            "2026-12-01T05:00:00-08:00",
            "Hal Moss",
            "7 Cedar Pl",
            "USD",
            &[("TSHIRT", 2, "12.00")],
        ),
        order(
            "A3",
            "2026-12-01T05:30:00-08:00",
            "Ana Ruiz",
            "1200 Market St.",
            "USD",
            &[("TSHIRT", 1, "10.00")],
        ),
        order(
            "I1",
            "2026-12-01T08:00:00-08:00",
            "Ivy Chen",
            "1 Birch Way",
            "USD",
            &[("TSHIRT", 1, "15.00")],
        ),
    ]
    .join("\n");
    let late_file = w.file("orders-2.jsonl", &late);
    w.ok(
        DAY1_LATER,
        &["orders", "import", late_file.to_str().unwrap()],
    );
    let out = w.ok(DAY1_LATER, &["batch"]);
    assert!(out.contains("earlier waves today: 2 releases"), "{out}");
    let log = w.release_log("2026-12-01");
    assert_eq!(log.len(), 3, "{log:#?}");
    assert_eq!(log[2]["release_id"], "2026-12-01-000003");
    assert_eq!(log[2]["orders"], serde_json::json!(["H1"]));
    assert_eq!(state("A3", DAY1_LATER), s("pending", Some("daily-limit")));
    // Placed after the cutoff: the batch passed it over, and says so.
    assert_eq!(state("I1", DAY1_LATER), s("pending", Some("not-due")));

    // Importing the same file again changes nothing; the same id with other content is refused.
    let out = w.ok(
        DAY1_LATER,
        &["orders", "import", orders_file.to_str().unwrap()],
    );
    assert!(out.contains("0 accepted, 9 unchanged, 0 rejected"), "{out}");
    let changed = w.file(
        "changed.jsonl",
        &order(
            "A2",
            "2026-11-30T11:00:00-08:00",
            "Ana Ruiz",
            "1200 Market St",
            "USD",
            &[("JEANS", 5, "100.00")],
        ),
    );
    let output = w.run_at(DAY1_LATER, &["orders", "import", changed.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains("changed.jsonl:line 1: order A2: order_id: already taken in with other content"));

    // A released order cannot be cancelled; cancelling twice is harmless.
    let output = w.run_at(DAY1_LATER, &["orders", "cancel", "A1"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("released in 2026-12-01-000001"));
    assert!(w
        .ok(DAY1_LATER, &["orders", "cancel", "F1"])
        .contains("already cancelled"));

    // Days run in order.
    let output = w.run_at(DAY1_LATER, &["batch", "--day", "2026-11-30"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("before today"));

    // Day 2: boots arrive; Ana's waiting orders ship together; plan changes nothing.
    let boots = w.file("boots.csv", "sku,qty\nBOOTS,5\n");
    w.ok(DAY2_MORNING, &["stock", "receive", boots.to_str().unwrap()]);
    let before = w.orders(DAY2_MORNING);
    let planned = w.ok(DAY2_MORNING, &["plan", "--json"]);
    let planned: serde_json::Value = serde_json::from_str(&planned).unwrap();
    assert_eq!(planned["day"], "2026-12-02");
    assert_eq!(w.orders(DAY2_MORNING), before, "plan changed the store");
    w.ok(DAY2_MORNING, &["batch"]);
    let log = w.release_log("2026-12-02");
    let released: Vec<&serde_json::Value> = log.iter().map(|release| &release["orders"]).collect();
    assert_eq!(
        released,
        [
            &serde_json::json!(["A2", "A3"]),
            &serde_json::json!(["E1"]),
            &serde_json::json!(["I1"])
        ],
        "{log:#?}"
    );
    assert_eq!(planned["releases"].as_array().unwrap().len(), 3);
    assert_eq!(log[0]["value_usd"], "410.00");
    assert_eq!(state("B1", DAY2_MORNING), s("held", Some("over-limit")));

    // Day 3: informal entry up to $2,500 frees the over-limit, HTS and origin holds.
    let more = w.file("more.csv", "sku,qty\nBOOTS,10\n");
    w.ok(DAY3_MORNING, &["stock", "receive", more.to_str().unwrap()]);
    w.ok(DAY3_MORNING, &["batch"]);
    let log = w.release_log("2026-12-03");
    let released: Vec<&serde_json::Value> = log.iter().map(|release| &release["orders"]).collect();
    assert_eq!(
        released,
        [
            &serde_json::json!(["B1"]),
            &serde_json::json!(["D1"]),
            &serde_json::json!(["R1"])
        ],
        "{log:#?}"
    );
    assert!(log
        .iter()
        .all(|release| release["policy"] == "informal-entry"));
    assert_eq!(state("G1", DAY3_MORNING), s("held", Some("no-rate")));

    // Stock: received - released - adjusted = on hand; a count records the difference.
    let stock = w.ok(DAY3_MORNING, &["stock", "list", "--json"]);
    assert!(stock.contains(r#"{"sku":"TSHIRT","on_hand":6}"#), "{stock}");
    assert!(stock.contains(r#"{"sku":"BOOTS","on_hand":5}"#), "{stock}");
    let count = w.file("count.csv", "sku,qty\nTSHIRT,5\n");
    w.ok(DAY3_MORNING, &["stock", "count", count.to_str().unwrap()]);
    let stock = w.ok(DAY3_MORNING, &["stock", "list", "--json"]);
    let tshirt: Vec<serde_json::Value> = stock
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|row| row["sku"] == "TSHIRT")
        .collect();
    assert_eq!(tshirt[0]["on_hand"], 5);

    // Every released order is in exactly one logged release.
    let mut logged: Vec<String> = Vec::new();
    for day in ["2026-12-01", "2026-12-02", "2026-12-03"] {
        for release in w.release_log(day) {
            for order in release["orders"].as_array().unwrap() {
                logged.push(order.as_str().unwrap().to_owned());
            }
        }
    }
    let mut released: Vec<String> = w
        .orders(DAY3_MORNING)
        .into_iter()
        .filter(|row| row.state == "released")
        .map(|row| row.order_id)
        .collect();
    logged.sort();
    released.sort();
    assert_eq!(logged, released);
    assert_eq!(released.len(), 10);
    w.assert_store_sound(DAY3_MORNING);
}
