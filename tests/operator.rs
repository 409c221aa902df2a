//! The operator's day through the command line: every decision explained (`orders show`, and
//! the few words of `plan`, `batch` and `orders list`) and every ordinary mistake correctable.

mod support;

use serde_json::{json, Value};
use support::{order, stderr, Warehouse};

/// 07:00 in Los Angeles on 2026-12-01: after the 06:00 cutoff of the day.
const NOW: &str = "2026-12-01T07:00:00-08:00";

fn path(file: &std::path::Path) -> &str {
    file.to_str().expect("a UTF-8 path")
}

/// A warehouse with one T-shirt in stock and an order for each kind of verdict.
fn a_day_with_every_verdict() -> Warehouse {
    let w = Warehouse::with_items(NOW);
    let stock = w.file("receipts.csv", "sku,qty\nTSHIRT,1\n");
    w.ok(NOW, &["stock", "receive", path(&stock)]);
    let yesterday = "2026-11-30T10:00:00-08:00";
    let orders = [
        order(
            "S1",
            yesterday,
            "Ana Ruiz",
            "1 Main St",
            "USD",
            &[("TSHIRT", 1, "10.00")],
        ),
        order(
            "S2",
            yesterday,
            "Ben Ode",
            "2 Main St",
            "USD",
            &[("TSHIRT", 1, "12.00")],
        ),
        order(
            "S3",
            yesterday,
            "Ana Ruiz",
            "1 Main St",
            "USD",
            &[("JEANS", 1, "795.00")],
        ),
        order(
            "S4",
            yesterday,
            "Cy Young",
            "3 Main St",
            "USD",
            &[("RADIO", 1, "20.00")],
        ),
        order(
            "S5",
            yesterday,
            "Dee Dee",
            "4 Main St",
            "USD",
            &[("TSHIRT", 1, "900.00")],
        ),
        order(
            "S6",
            yesterday,
            "Eve Ash",
            "5 Main St",
            "EUR",
            &[("TSHIRT", 1, "10.00")],
        ),
        // 06:30 on the day: after its 06:00 cutoff.
        order(
            "L1",
            "2026-12-01T06:30:00-08:00",
            "Fay Lo",
            "6 Main St",
            "USD",
            &[("TSHIRT", 1, "10.00")],
        ),
    ];
    let file = w.file("orders.jsonl", &orders.join("\n"));
    w.ok(NOW, &["orders", "import", path(&file)]);
    w
}

const EXPECTED_WORDS: &[&str] = &[
    "S2 waits: stock (TSHIRT: 1 needed, 0 on hand)",
    "S3 waits: daily-limit (the recipient has 1 of 1 release and 10.00 of 800.00 USD for the day; this order is 795.00 USD)",
    "S4 held: excluded-origin (RADIO: origin CN excluded by policy section-321)",
    "S5 held: over-limit (900.00 USD, over the 800.00 USD limit on its own)",
    "S6 held: no-rate (no EUR rate for 2026-12-01)",
];

fn show(w: &Warehouse, order_id: &str) -> Value {
    serde_json::from_str(&w.ok(NOW, &["orders", "show", order_id, "--json"])).unwrap()
}

#[test]
fn plan_batch_list_and_show_say_why_each_order_does_not_ship() {
    let w = a_day_with_every_verdict();
    let plan = w.ok(NOW, &["plan"]);
    for expected in EXPECTED_WORDS {
        assert!(plan.contains(expected), "{expected}\n{plan}");
    }
    let plan_json: Value = serde_json::from_str(&w.ok(NOW, &["plan", "--json"])).unwrap();
    assert_eq!(plan_json["not_due"], 1);
    assert_eq!(plan_json["not_due_orders"], json!(["L1"]));
    assert_eq!(
        plan_json["waiting"][0],
        json!({
            "order_id": "S2",
            "reason": "stock",
            "detail": {"short": [{"sku": "TSHIRT", "needed": 1, "on_hand": 0}]},
            "explanation": "stock (TSHIRT: 1 needed, 0 on hand)",
        })
    );

    let batch = w.ok(NOW, &["batch"]);
    for expected in EXPECTED_WORDS {
        assert!(batch.contains(expected), "{expected}\n{batch}");
    }

    // `orders show --json`: the contract's fields, and the detail of each reason.
    let s2 = show(&w, "S2");
    for (field, value) in [
        ("order_id", json!("S2")),
        ("state", json!("pending")),
        ("reason", json!("stock")),
        (
            "detail",
            json!({"short": [{"sku": "TSHIRT", "needed": 1, "on_hand": 0}]}),
        ),
        ("value_usd", json!("12.00")),
        ("release_id", Value::Null),
        ("day", Value::Null),
        ("placed_at", json!("2026-11-30T18:00:00Z")),
        ("currency", json!("USD")),
    ] {
        assert_eq!(s2[field], value, "{field}: {s2}");
    }
    assert_eq!(s2["consignee"]["name"], "Ben Ode");
    assert_eq!(s2["lines"][0]["value_usd"], "12.00");
    assert_eq!(
        show(&w, "S3")["detail"],
        json!({
            "releases_used": 1,
            "value_used_usd": "10.00",
            "order_value_usd": "795.00",
            "releases_per_recipient_per_day": 1,
            "value_limit_usd": "800.00",
        })
    );
    assert_eq!(
        show(&w, "S4")["detail"],
        json!({"sku": "RADIO", "origin": "CN", "policy": "section-321"})
    );
    assert_eq!(
        show(&w, "S5")["detail"],
        json!({"value_usd": "900.00", "value_limit_usd": "800.00"})
    );
    let s6 = show(&w, "S6");
    assert_eq!(
        s6["detail"],
        json!({"currency": "EUR", "day": "2026-12-01"})
    );
    assert_eq!(s6["value_usd"], Value::Null, "no EUR rate: no value");
    let l1 = show(&w, "L1");
    assert_eq!(l1["reason"], "not-due");
    assert_eq!(
        l1["detail"],
        json!({"day": "2026-12-01", "cutoff": "2026-12-01T14:00:00Z", "first_day": "2026-12-02"})
    );
    let s1 = show(&w, "S1");
    assert_eq!(
        (
            &s1["state"],
            &s1["release_id"],
            &s1["day"],
            &s1["value_usd"]
        ),
        (
            &json!("released"),
            &json!("2026-12-01-000001"),
            &json!("2026-12-01"),
            &json!("10.00")
        )
    );
    assert_eq!(s1["detail"], Value::Null);

    // The same in a few words for people.
    let text = w.ok(NOW, &["orders", "show", "S2"]);
    assert!(
        text.starts_with("order S2: pending, stock (TSHIRT: 1 needed, 0 on hand)\n"),
        "{text}"
    );
    assert!(text.contains("Ben Ode"), "{text}");
    let list = w.ok(NOW, &["orders", "list"]);
    assert!(
        list.contains("stock (TSHIRT: 1 needed, 0 on hand)"),
        "{list}"
    );
    assert!(
        list.contains("not-due (placed after the 2026-12-01 06:00 America/Los_Angeles cutoff of 2026-12-01; first examined on 2026-12-02)"),
        "{list}"
    );
    let rows: Vec<Value> = w
        .ok(NOW, &["orders", "list", "--json"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let s2_row = rows.iter().find(|row| row["order_id"] == "S2").unwrap();
    assert_eq!(s2_row["detail"], s2["detail"]);
    assert_eq!(s2_row["value_usd"], "12.00");

    let unknown = w.run_at(NOW, &["orders", "show", "NOPE"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("order NOPE is not known"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn batching_beyond_max_days_ahead_is_refused_naming_the_key_and_plan_may_look_anywhere() {
    let w = a_day_with_every_verdict();
    // Today is 2026-12-01; by default tomorrow may be batched, not the day after.
    let refused = w.run_at(NOW, &["batch", "--day", "2026-12-03"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr(&refused);
    assert!(
        err.contains("2026-12-03 is more than 1 day after today (2026-12-01)")
            && err.contains("schedule.max_days_ahead"),
        "{err}"
    );
    assert!(w
        .ok(NOW, &["plan", "--day", "2026-12-03"])
        .contains("plan for 2026-12-03"));
    assert_eq!(
        w.ok(NOW, &["orders", "list", "--state", "released", "--json"]),
        "",
        "the refused batch released nothing"
    );

    let config = std::fs::read_to_string(w.config()).unwrap();
    let wider = config.replace(
        "cutoff = \"06:00\"",
        "cutoff = \"06:00\"\nmax_days_ahead = 2",
    );
    std::fs::write(w.config(), wider).unwrap();
    w.ok(NOW, &["batch", "--day", "2026-12-03"]);
}

#[test]
fn plan_for_a_past_batched_day_shows_what_it_released() {
    let w = a_day_with_every_verdict();
    w.ok(NOW, &["batch"]);
    let tomorrow = "2026-12-02T07:00:00-08:00";
    let past = w.ok(tomorrow, &["plan", "--day", "2026-12-01"]);
    assert!(
        past.starts_with("2026-12-01 was batched and is past: what it released"),
        "{past}"
    );
    assert!(past.contains("2026-12-01-000001"), "{past}");
    assert!(!past.contains("waits"), "{past}");
    let json: Value =
        serde_json::from_str(&w.ok(tomorrow, &["plan", "--day", "2026-12-01", "--json"])).unwrap();
    assert_eq!(json["summary"]["past"], true);
    assert_eq!(json["releases"][0]["orders"], json!(["S1"]));
    // A past day that was never batched is still refused.
    let never = w.run_at(tomorrow, &["plan", "--day", "2026-11-30"]);
    assert_eq!(never.status.code(), Some(1));
    assert!(
        stderr(&never).contains("a past day cannot be batched"),
        "{}",
        stderr(&never)
    );
}

#[test]
fn items_list_the_catalogue_and_stock_lists_every_sku_with_counts_as_adjustments() {
    let w = Warehouse::with_items(NOW);
    let items: Vec<Value> = w
        .ok(NOW, &["items", "list", "--json"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(items.len(), 5);
    assert_eq!(
        items[3],
        json!({"sku": "TEQUILA", "description": "Tequila 750 ml", "hts": "2208.90.4000", "origin": "MX", "flags": ["irc-tax"], "mid": null, "usmca": false})
    );
    let text = w.ok(NOW, &["items", "list"]);
    assert!(
        text.contains("TEQUILA") && text.contains("irc-tax"),
        "{text}"
    );

    // 23 received, counted 10: an adjustment of -13.
    let received = w.file("receipts.csv", "sku,qty\nTSHIRT,23\n");
    w.ok(NOW, &["stock", "receive", path(&received)]);
    let counted = w.file("count.csv", "sku,qty\nTSHIRT,10\n");
    w.ok(NOW, &["stock", "count", path(&counted)]);
    let stock = w.ok(NOW, &["stock", "list"]);
    assert!(
        stock.contains("(received 23, adjusted -13, released 0)"),
        "{stock}"
    );
    // Every catalogue SKU, those never received included.
    let listed: Vec<Value> = w
        .ok(NOW, &["stock", "list", "--json"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        listed,
        ["BOOTS", "JEANS", "RADIO", "TEQUILA", "TSHIRT"]
            .iter()
            .map(|sku| json!({"sku": sku, "on_hand": if *sku == "TSHIRT" { 10 } else { 0 }}))
            .collect::<Vec<_>>()
    );
}

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn a_void_release_gives_back_its_orders_stock_and_allowance_and_is_kept() {
    use std::os::unix::fs::MetadataExt;
    let w = a_day_with_every_verdict();
    w.ok(NOW, &["batch"]);
    let log = w.path("logs/releases/2026-12-01.jsonl");
    let manifest = w.path("logs/releases/2026-12-01.manifest.csv");
    let voids = w.path("logs/releases/2026-12-01.voids.jsonl");
    let log_before = read(&log);
    let log_inode = std::fs::metadata(&log).unwrap().ino();
    assert!(String::from_utf8_lossy(&read(&manifest)).contains("2026-12-01-000001"));

    let voided = w.ok(
        NOW,
        &[
            "releases",
            "void",
            "2026-12-01-000001",
            "--reason",
            "the truck did not leave",
        ],
    );
    assert!(
        voided.starts_with("release 2026-12-01-000001 of 2026-12-01 voided: the truck did not leave\n  back to pending: 1 order (S1)\n  no day counts as batched\n"),
        "{voided}"
    );
    // The order is pending again, its T-shirt back on hand.
    let s1 = show(&w, "S1");
    assert_eq!(
        (&s1["state"], &s1["reason"]),
        (&json!("pending"), &Value::Null)
    );
    assert!(w
        .ok(NOW, &["stock", "list", "--json"])
        .contains(r#"{"sku":"TSHIRT","on_hand":1}"#));
    // The log is never rewritten; the manifest no longer lists the release; the void is kept.
    assert_eq!(read(&log), log_before);
    assert_eq!(std::fs::metadata(&log).unwrap().ino(), log_inode);
    assert!(!String::from_utf8_lossy(&read(&manifest)).contains("2026-12-01-000001"));
    let kept: Vec<Value> = String::from_utf8(read(&voids))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["release_id"], "2026-12-01-000001");
    assert_eq!(kept[0]["reason"], "the truck did not leave");
    assert_eq!(kept[0]["voided_at"], "2026-12-01T15:00:00Z");
    w.assert_store_sound(NOW);

    // Not twice; not a release that does not exist.
    let again = w.run_at(
        NOW,
        &["releases", "void", "2026-12-01-000001", "--reason", "again"],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("a void release cannot be voided again"),
        "{}",
        stderr(&again)
    );
    let unknown = w.run_at(
        NOW,
        &["releases", "void", "2026-12-01-000009", "--reason", "x"],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("release 2026-12-01-000009 is not known"));

    // The day batched again: Ana's allowance is whole, and S1 (placed first) takes the shirt.
    let batch = w.ok(NOW, &["batch"]);
    assert!(
        batch.contains("S2 waits: stock (TSHIRT: 1 needed, 0 on hand)"),
        "{batch}"
    );
    assert!(
        batch.contains(
            "S3 waits: daily-limit (the recipient has 1 of 1 release and 10.00 of 800.00 USD"
        ),
        "{batch}"
    );
    let s1 = show(&w, "S1");
    assert_eq!(s1["release_id"], "2026-12-01-000002");
    let log_lines = String::from_utf8(read(&log)).unwrap();
    assert!(log_lines.starts_with(std::str::from_utf8(&log_before).unwrap()));
    assert_eq!(log_lines.lines().count(), 2);
    let manifest_text = String::from_utf8_lossy(&read(&manifest)).into_owned();
    assert!(manifest_text.contains("2026-12-01-000002") && !manifest_text.contains("000001"));
    w.assert_store_sound(NOW);

    // Lost files come back from the store, the log byte for byte.
    let whole_log = read(&log);
    let whole_voids = read(&voids);
    std::fs::remove_file(&log).unwrap();
    std::fs::remove_file(&voids).unwrap();
    let check = w.run_at(NOW, &["check-store"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        stderr(&check).contains("releases write --day 2026-12-01"),
        "{}",
        stderr(&check)
    );
    w.ok(NOW, &["releases", "write", "--day", "2026-12-01"]);
    assert_eq!(read(&log), whole_log);
    assert_eq!(read(&voids), whole_voids);
    w.assert_store_sound(NOW);

    // A dump keeps the void: the restored store lists the same and writes the same files.
    let dump = w.path("dump.jsonl");
    w.ok(NOW, &["store", "dump", path(&dump)]);
    let target = Warehouse::new();
    target.ok(NOW, &["store", "restore", path(&dump)]);
    target.assert_store_sound(NOW);
    for args in [&["orders", "list", "--json"][..], &["stock", "list"]] {
        assert_eq!(target.ok(NOW, args), w.ok(NOW, args), "{args:?}");
    }
    for name in [
        "2026-12-01.jsonl",
        "2026-12-01.voids.jsonl",
        "2026-12-01.manifest.csv",
    ] {
        let file = format!("logs/releases/{name}");
        assert_eq!(read(&target.path(&file)), read(&w.path(&file)), "{name}");
    }
}

#[test]
fn voiding_a_wrong_future_days_releases_lets_the_days_before_be_batched() {
    let w = Warehouse::with_items(NOW);
    let stock = w.file("receipts.csv", "sku,qty\nTSHIRT,1\n");
    w.ok(NOW, &["stock", "receive", path(&stock)]);
    let orders = w.file(
        "orders.jsonl",
        &order(
            "S1",
            "2026-11-30T10:00:00-08:00",
            "Ana Ruiz",
            "1 Main St",
            "USD",
            &[("TSHIRT", 1, "10.00")],
        ),
    );
    w.ok(NOW, &["orders", "import", path(&orders)]);
    // Tomorrow batched by mistake: today is then an earlier day.
    w.ok(NOW, &["batch", "--day", "2026-12-02"]);
    let refused = w.run_at(NOW, &["batch"]);
    assert!(
        stderr(&refused).contains("the last day batched"),
        "{}",
        stderr(&refused)
    );
    w.ok(
        NOW,
        &[
            "releases",
            "void",
            "2026-12-02-000001",
            "--reason",
            "batched the wrong day",
        ],
    );
    // No release of 2026-12-02 stands: the day no longer counts, and today is batched.
    let batch = w.ok(NOW, &["batch"]);
    assert!(
        batch.contains("releases: 1 (1 order, 10.00 USD)"),
        "{batch}"
    );
    assert_eq!(show(&w, "S1")["release_id"], "2026-12-01-000001");
    w.assert_store_sound(NOW);
}

#[test]
fn files_written_again_take_the_groups_mode_even_when_their_bytes_are_the_same() {
    use std::os::unix::fs::PermissionsExt;
    let w = a_day_with_every_verdict();
    w.ok(NOW, &["batch"]);
    let log = w.path("logs/releases/2026-12-01.jsonl");
    let bytes = read(&log);
    // As an earlier build wrote it: owner only.
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
    w.ok(NOW, &["releases", "write", "--day", "2026-12-01"]);
    assert_eq!(read(&log), bytes);
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let leftovers: Vec<String> = std::fs::read_dir(w.path("logs/releases"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());
}
