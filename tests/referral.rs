//! Referral to a formal entry through the command line (`orders refer`): held orders leave the
//! daily plan for good, their stock is taken, the broker's referral files list them, and a
//! referral refused changes nothing.

mod support;

use serde_json::{json, Value};
use support::{order, read_jsonl, stderr, Warehouse};

/// 07:00 in Los Angeles on 2026-12-01: after the 06:00 cutoff of the day.
const NOW: &str = "2026-12-01T07:00:00-08:00";
const DAY: &str = "2026-12-01";

fn path(file: &std::path::Path) -> &str {
    file.to_str().expect("a UTF-8 path")
}

/// A warehouse with three held orders after a batch: H1 over the limit on its own (two
/// T-shirts in pesos), H2 excluded goods (tequila), H3 over the limit (one T-shirt); a pending
/// one, P1, short of jeans; and stock of three T-shirts and one tequila.
fn a_day_with_held_orders() -> Warehouse {
    let w = Warehouse::with_items(NOW);
    let stock = w.file("receipts.csv", "sku,qty\nTSHIRT,3\nTEQUILA,1\n");
    w.ok(NOW, &["stock", "receive", path(&stock)]);
    let yesterday = "2026-11-30T10:00:00-08:00";
    let orders = [
        order(
            "H1",
            yesterday,
            "Ana Ruiz",
            "1 Main St",
            "MXN",
            &[("TSHIRT", 2, "9000.00")],
        ),
        order(
            "H2",
            yesterday,
            "Ben Ode",
            "2 Main St, Apt \"B\"",
            "USD",
            &[("TEQUILA", 1, "35.00")],
        ),
        order(
            "H3",
            yesterday,
            "Cy Young",
            "3 Main St",
            "USD",
            &[("TSHIRT", 2, "900.00")],
        ),
        order(
            "P1",
            yesterday,
            "Dee Dee",
            "4 Main St",
            "USD",
            &[("JEANS", 1, "20.00")],
        ),
    ];
    let file = w.file("orders.jsonl", &orders.join("\n"));
    w.ok(NOW, &["orders", "import", path(&file)]);
    w.ok(NOW, &["batch"]);
    for (order_id, reason) in [
        ("H1", "over-limit"),
        ("H2", "excluded-goods"),
        ("H3", "over-limit"),
    ] {
        let row = w.order(NOW, order_id);
        assert_eq!(
            (row.state.as_str(), row.reason.as_deref()),
            ("held", Some(reason))
        );
    }
    w
}

fn show(w: &Warehouse, order_id: &str) -> Value {
    serde_json::from_str(&w.ok(NOW, &["orders", "show", order_id, "--json"])).unwrap()
}

fn stock(w: &Warehouse) -> String {
    w.ok(NOW, &["stock", "list", "--json"])
}

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn a_referral_takes_the_orders_out_of_the_plan_takes_their_stock_and_writes_the_brokers_files() {
    let w = a_day_with_held_orders();
    let out = w.ok(
        NOW,
        &[
            "orders",
            "refer",
            "H1",
            "H2",
            "--note",
            "formal entry, broker Ortiz",
        ],
    );
    assert!(
        out.starts_with("2 orders referred to a formal entry on 2026-12-01:\n"),
        "{out}"
    );
    assert!(out.contains("  H1 (over-limit, 973.80 USD)\n"), "{out}");
    assert!(out.contains("  H2 (excluded-goods, 35.00 USD)\n"), "{out}");
    assert!(
        out.contains("  note: formal entry, broker Ortiz\n"),
        "{out}"
    );

    // Their state, kept reason, day and value.
    for (order_id, reason, value) in [
        ("H1", "over-limit", "973.80"),
        ("H2", "excluded-goods", "35.00"),
    ] {
        let shown = show(&w, order_id);
        assert_eq!(shown["state"], "referred", "{shown}");
        assert_eq!(shown["reason"], reason, "{shown}");
        assert_eq!(shown["day"], DAY, "{shown}");
        assert_eq!(shown["value_usd"], value, "{shown}");
        assert_eq!(shown["release_id"], Value::Null, "{shown}");
    }
    let h1 = show(&w, "H1");
    assert_eq!(h1["lines"][0]["value_usd"], "973.80");
    assert_eq!(h1["rate"]["usd_per_currency_unit"], "0.0541");
    let text = w.ok(NOW, &["orders", "show", "H1"]);
    assert!(text.contains("referred"), "{text}");

    // `orders list --state referred` lists them, and only them.
    let listed: Vec<Value> = w
        .ok(NOW, &["orders", "list", "--state", "referred", "--json"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let ids: Vec<&str> = listed
        .iter()
        .map(|row| row["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["H1", "H2"]);
    let table = w.ok(NOW, &["orders", "list", "--state", "referred"]);
    assert!(table.contains("H1") && !table.contains("H3"), "{table}");

    // Their stock is taken: 3 - 2 T-shirts, 1 - 1 tequila.
    let levels = stock(&w);
    assert!(
        levels.contains(r#"{"sku":"TSHIRT","on_hand":1}"#),
        "{levels}"
    );
    assert!(
        levels.contains(r#"{"sku":"TEQUILA","on_hand":0}"#),
        "{levels}"
    );

    // The broker's files: a line and a row per order.
    let jsonl = read_jsonl(&w.path("logs/referrals/2026-12-01.jsonl"));
    assert_eq!(jsonl.len(), 2);
    assert_eq!(
        jsonl[0],
        json!({
            "order_id": "H1",
            "day": DAY,
            "reason": "over-limit",
            "note": "formal entry, broker Ortiz",
            "referred_at": "2026-12-01T15:00:00Z",
            "consignee": {
                "name": "Ana Ruiz",
                "customer_id": null,
                "address": {
                    "line1": "1 Main St",
                    "line2": null,
                    "city": "San Diego",
                    "state": "CA",
                    "postal_code": "92101",
                    "country": "US",
                },
            },
            "currency": "MXN",
            "usd_per_currency_unit": "0.0541",
            "lines": [{
                "sku": "TSHIRT",
                "qty": 2,
                "description": "Cotton knit T-shirt",
                "hts": "6109.10.0012",
                "origin": "MX",
                "currency": "MXN",
                "unit_price": "9000.00",
                "value_usd": "973.80",
            }],
            "value_usd": "973.80",
        })
    );
    assert_eq!(jsonl[1]["order_id"], "H2");
    assert_eq!(jsonl[1]["lines"][0]["hts"], "2208.90.4000");
    let csv_file = w.path("logs/referrals/2026-12-01.csv");
    let csv = String::from_utf8(read(&csv_file)).unwrap();
    assert_eq!(
        csv,
        "\u{feff}order_id,day,reason,consignee_name,address_line1,address_line2,city,state,postal_code,country,currency,usd_per_currency_unit,lines,units,value_usd,note,referred_at\n\
         H1,2026-12-01,over-limit,Ana Ruiz,1 Main St,,San Diego,CA,92101,US,MXN,0.0541,2 x TSHIRT,2,973.80,\"formal entry, broker Ortiz\",2026-12-01T15:00:00Z\n\
         H2,2026-12-01,excluded-goods,Ben Ode,\"2 Main St, Apt \"\"B\"\"\",,San Diego,CA,92101,US,USD,,1 x TEQUILA,1,35.00,\"formal entry, broker Ortiz\",2026-12-01T15:00:00Z\n"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&csv_file), 0o640);
        assert_eq!(mode(&w.path("logs/referrals")), 0o750);
    }

    // The plan never sees them again; a referred order is not cancelled.
    let plan = w.ok(NOW, &["plan", "--json"]);
    assert!(
        !plan.contains("\"H1\"") && !plan.contains("\"H2\""),
        "{plan}"
    );
    let cancel = w.run_at(NOW, &["orders", "cancel", "H1"]);
    assert_eq!(cancel.status.code(), Some(1));
    assert!(
        stderr(&cancel).contains(
            "order H1 was referred to a formal entry on 2026-12-01; a referred order cannot be cancelled"
        ),
        "{}",
        stderr(&cancel)
    );
    w.assert_store_sound(NOW);

    // Lost referral files: check-store names them and `releases write` writes them again.
    let jsonl_file = w.path("logs/referrals/2026-12-01.jsonl");
    let whole = read(&jsonl_file);
    std::fs::remove_file(&jsonl_file).unwrap();
    let check = w.run_at(NOW, &["check-store"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        stderr(&check).contains("2026-12-01.jsonl is missing")
            && stderr(&check).contains("releases write --day 2026-12-01"),
        "{}",
        stderr(&check)
    );
    let written = w.ok(NOW, &["releases", "write", "--day", DAY]);
    assert!(
        written.contains("0 releases, 0 voids and 2 referrals written from the store"),
        "{written}"
    );
    assert_eq!(read(&jsonl_file), whole);
    w.assert_store_sound(NOW);
}

#[test]
fn a_referral_refused_names_the_order_and_changes_nothing() {
    let w = a_day_with_held_orders();
    let before = (w.ok(NOW, &["orders", "list", "--json"]), stock(&w));
    let refused = |args: &[&str], message: &str| {
        let output = w.run_at(NOW, args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty(), "{args:?}");
        assert_eq!(
            (w.ok(NOW, &["orders", "list", "--json"]), stock(&w)),
            before,
            "{args:?} changed the store"
        );
        assert!(!w.path("logs/referrals").exists(), "{args:?} wrote files");
    };
    refused(
        &["orders", "refer", "P1"],
        "order P1 is pending, not held: only a held order can be referred; nothing was referred",
    );
    refused(
        &["orders", "refer", "NOPE"],
        "order NOPE is not known; nothing was referred",
    );
    // One bad id among good ones refuses them all.
    refused(
        &["orders", "refer", "H1", "H2", "NOPE"],
        "order NOPE is not known",
    );
    refused(&["orders", "refer", "H1", "H1"], "order H1 is named twice");
    // H1 takes two of the three T-shirts; H3 needs two more.
    refused(
        &["orders", "refer", "H1", "H3"],
        "order H3: stock of TSHIRT is short: 2 needed, 1 on hand; nothing was referred",
    );

    // Once referred, an order is not referred again.
    w.ok(NOW, &["orders", "refer", "H3"]);
    let again = w.run_at(NOW, &["orders", "refer", "H3"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("order H3 is referred already (on 2026-12-01), not held"),
        "{}",
        stderr(&again)
    );
    w.assert_store_sound(NOW);
}

#[test]
fn a_dump_keeps_the_referrals_and_a_restore_writes_their_files() {
    let w = a_day_with_held_orders();
    w.ok(
        NOW,
        &["orders", "refer", "H2", "H3", "--note", "by truck 7"],
    );
    let dump = w.path("dump.jsonl");
    w.ok(NOW, &["store", "dump", path(&dump)]);
    let dumped = String::from_utf8(read(&dump)).unwrap();
    assert!(dumped.contains(r#""kind":"header""#) && dumped.contains(r#""version":5"#));
    assert_eq!(dumped.matches(r#""kind":"referral""#).count(), 2);

    let target = Warehouse::new();
    target.ok(NOW, &["store", "restore", path(&dump)]);
    target.assert_store_sound(NOW);
    for args in [
        &["orders", "list", "--json"][..],
        &["orders", "list", "--state", "referred"],
        &["orders", "show", "H3", "--json"],
        &["stock", "list"],
    ] {
        assert_eq!(target.ok(NOW, args), w.ok(NOW, args), "{args:?}");
    }
    for name in ["2026-12-01.jsonl", "2026-12-01.csv"] {
        let file = format!("logs/referrals/{name}");
        assert_eq!(read(&target.path(&file)), read(&w.path(&file)), "{name}");
    }
    // A later referral of the restored store comes after them.
    let receipt = target.file("receipts.csv", "sku,qty\nTSHIRT,1\n");
    target.ok(NOW, &["stock", "receive", path(&receipt)]);
    target.ok(NOW, &["orders", "refer", "H1"]);
    let lines = read_jsonl(&target.path("logs/referrals/2026-12-01.jsonl"));
    let ids: Vec<&str> = lines
        .iter()
        .map(|line| line["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["H2", "H3", "H1"]);
    target.assert_store_sound(NOW);
}

#[test]
fn referral_files_a_crash_left_unwritten_are_written_by_the_next_command() {
    let w = a_day_with_held_orders();
    let output = w.run_crashing(NOW, "refer-after-commit", &["orders", "refer", "H3"]);
    assert!(
        !output.status.success(),
        "the crash point aborts the command"
    );
    let jsonl = w.path(&format!("logs/referrals/{DAY}.jsonl"));
    assert!(!jsonl.exists(), "the crash came before the files");
    // The referral is committed; any command writes the files the store marks due.
    assert_eq!(show(&w, "H3")["state"], "referred");
    let written = read_jsonl(&jsonl);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0]["order_id"], "H3");
    w.assert_store_sound(NOW);
}
