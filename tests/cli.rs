//! Black-box tests of the command line: exit codes, errors that name the file, line and field,
//! and the store lock.

mod support;

use border_release::store::Store;
use support::{order, stderr, utf16, Warehouse};

const NOW: &str = "2026-12-01T07:00:00-08:00";

fn warehouse_with_items() -> Warehouse {
    Warehouse::with_items(NOW)
}

#[test]
fn a_file_with_bad_lines_keeps_its_good_lines_and_lists_every_rejected_one() {
    let w = warehouse_with_items();
    let good = order(
        "OK-1",
        "2026-11-30T10:00:00-08:00",
        "Ana Ruiz",
        "1 Main St",
        "USD",
        &[("TSHIRT", 1, "10.00")],
    );
    let lines = [
        good.clone(),
        good.replace("OK-1", "BAD-PRICE")
            .replace("\"10.00\"", "10.5"),
        good.replace("OK-1", "BAD-STATE")
            .replace("\"CA\"", "\"XX\""),
        good.replace("OK-1", "BAD-NAME").replace("Ana Ruiz", "N/A"),
        good.replace("OK-1", "BAD-SKU").replace("TSHIRT", "NOPE"),
        good.replace("OK-1", "BAD-QTY")
            .replace("\"qty\":1", "\"qty\":0"),
        good.replace("OK-1", "BAD-DATE")
            .replace("2026-11-30T10:00:00-08:00", "2026-11-30T10:00:00"),
        good.replace("OK-1", "BAD-FIELD")
            .replace("\"currency\"", "\"colour\":\"red\",\"currency\""),
        "{not json".to_owned(),
        String::new(),
        good.replace("OK-1", "OK-2").replace("\"CA\"", "\"ca\""),
        good.replace("OK-1", "BAD-NEG")
            .replace("\"10.00\"", "\"-1.00\""),
        good.replace("OK-1", "BAD-COUNTRY")
            .replace("\"US\"", "\"MX\""),
    ];
    let file = w.file("orders.jsonl", &lines.join("\n"));
    let output = w.run_at(NOW, &["orders", "import", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let err = stderr(&output);
    let path = file.display().to_string();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{path}: 2 accepted, 0 unchanged, 10 rejected\n")
    );
    for expected in [
        format!("{path}:line 2: order BAD-PRICE: lines[0].unit_price: money is a decimal string"),
        format!("{path}:line 3: order BAD-STATE: recipient.address.state: \"XX\" is not a US state code"),
        format!("{path}:line 4: order BAD-NAME: recipient.name: \"N/A\" is a placeholder"),
        format!("{path}:line 5: order BAD-SKU: lines[0].sku: unknown SKU \"NOPE\""),
        format!("{path}:line 6: order BAD-QTY: lines[0].qty: 0 is not a quantity"),
        format!("{path}:line 7: order BAD-DATE: placed_at:"),
        format!("{path}:line 8: order BAD-FIELD: colour: unknown field `colour`, expected one of `order_id`, `placed_at`, `recipient`, `currency`, `lines`\n"),
        format!("{path}:line 9: not valid JSON: key must be a string"),
        format!("{path}:line 12: order BAD-NEG: lines[0].unit_price: -1.00 is negative"),
        format!("{path}:line 13: order BAD-COUNTRY: recipient.address.country"),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    let ids: Vec<String> = w.orders(NOW).into_iter().map(|row| row.order_id).collect();
    assert_eq!(ids, ["OK-1", "OK-2"]);
}

#[test]
fn a_file_that_is_not_utf8_is_rejected_whole_with_one_message() {
    let w = warehouse_with_items();
    let good = order(
        "OK-1",
        "2026-11-30T10:00:00-08:00",
        "Ana Ruiz",
        "1 Main St",
        "USD",
        &[("TSHIRT", 1, "10.00")],
    );
    // A good line, then lines saved in Latin-1 (a name with an accent, one byte for it).
    let mut bytes = format!("{good}\n").into_bytes();
    for id in ["L-1", "L-2"] {
        let line = order(
            id,
            "2026-11-30T10:00:00-08:00",
            "Ana Peña",
            "1 Main St",
            "USD",
            &[("TSHIRT", 1, "10.00")],
        );
        bytes.extend(line.chars().map(|c| u8::try_from(u32::from(c)).unwrap()));
        bytes.push(b'\n');
    }
    let file = w.path("orders.jsonl");
    std::fs::write(&file, bytes).unwrap();
    let output = w.run_at(NOW, &["orders", "import", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_eq!(
        last_line(&err),
        format!(
            "error: {} is in another encoding (line 2 has bytes that are not UTF-8, as Latin-1 \
             or Windows-1252 text has), not UTF-8: save it as UTF-8; nothing of this file was \
             applied",
            file.display()
        ),
        "one message for the file"
    );
    assert!(output.stdout.is_empty());
    assert!(w.orders(NOW).is_empty(), "nothing of the file was applied");
}

/// The last line a command wrote to standard error (the first says the clock is pinned).
fn last_line(err: &str) -> &str {
    err.trim_end().rsplit('\n').next().unwrap_or("")
}

#[test]
fn a_utf16_or_utf32_file_of_any_kind_is_rejected_whole_saying_so() {
    let w = warehouse_with_items();
    let orders = order(
        "OK-1",
        "2026-11-30T10:00:00-08:00",
        "Zoë Peña",
        "1 Main St",
        "USD",
        &[("TSHIRT", 1, "10.00")],
    );
    let items = "sku,description,hts,origin,flags\nCAP,Cotton cap,6505.00.1525,MX,\n";
    let stock = "sku,qty\nTSHIRT,5\n";
    for (args, name, bytes, what) in [
        (
            ["orders", "import"],
            "orders.jsonl",
            utf16(&orders, false),
            "UTF-16 (little-endian)",
        ),
        (
            ["items", "import"],
            "items.csv",
            utf16(items, true),
            "UTF-16 (big-endian)",
        ),
        (
            ["stock", "receive"],
            "stock.csv",
            utf16(stock, false),
            "UTF-16 (little-endian)",
        ),
        // Saved without a byte-order mark: a NUL beside every character tells it.
        (
            ["stock", "count"],
            "count.csv",
            utf16(stock, false)[2..].to_vec(),
            "UTF-16 (little-endian)",
        ),
        (
            ["orders", "import"],
            "be.jsonl",
            utf16(&orders, true)[2..].to_vec(),
            "UTF-16 (big-endian)",
        ),
        (
            ["orders", "import"],
            "wider.jsonl",
            [0xff, 0xfe, 0, 0]
                .into_iter()
                .chain(orders.chars().flat_map(|c| u32::from(c).to_le_bytes()))
                .collect(),
            "UTF-32 (little-endian)",
        ),
    ] {
        let file = w.path(name);
        std::fs::write(&file, bytes).unwrap();
        let output = w.run_at(NOW, &[args[0], args[1], file.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "{name}");
        let err = stderr(&output);
        assert_eq!(
            last_line(&err),
            format!(
                "error: {} is {what}, not UTF-8: save it as UTF-8; nothing of this file was applied",
                file.display()
            ),
            "{name}"
        );
    }
    assert!(w.orders(NOW).is_empty());
    let stock = w.ok(NOW, &["stock", "list", "--json"]);
    assert!(
        stock.lines().all(|row| row.ends_with(r#""on_hand":0}"#)),
        "{stock}"
    );
}

#[test]
fn a_file_with_a_utf8_byte_order_mark_is_read_like_one_without() {
    let w = Warehouse::new();
    let items = w.file("items.csv", &format!("\u{feff}{}", support::ITEMS));
    w.ok(NOW, &["items", "import", items.to_str().unwrap()]);
    let stock = w.file("stock.csv", "\u{feff}sku,qty\nTSHIRT,5\n");
    w.ok(NOW, &["stock", "receive", stock.to_str().unwrap()]);
    let count = w.file("count.csv", "\u{feff}sku,qty\nJEANS,3\n");
    w.ok(NOW, &["stock", "count", count.to_str().unwrap()]);
    let lines = [
        order(
            "BOM-1",
            "2026-11-30T10:00:00-08:00",
            "Zoë Peña",
            "1 Main St",
            "USD",
            &[("TSHIRT", 1, "10.00")],
        ),
        order(
            "BOM-2",
            "2026-11-30T10:00:00-08:00",
            "Ben Ode",
            "2 Main St",
            "USD",
            &[("JEANS", 1, "10.00")],
        ),
    ];
    let orders = w.file("orders.jsonl", &format!("\u{feff}{}\n", lines.join("\n")));
    let out = w.ok(NOW, &["orders", "import", orders.to_str().unwrap()]);
    assert!(out.contains("2 accepted, 0 unchanged, 0 rejected"), "{out}");
    let stock = w.ok(NOW, &["stock", "list", "--json"]);
    assert!(stock.contains(r#"{"sku":"TSHIRT","on_hand":5}"#), "{stock}");
    assert!(stock.contains(r#"{"sku":"JEANS","on_hand":3}"#), "{stock}");
    // The same file again, without the mark, is the same orders.
    let plain = w.file("plain.jsonl", &lines.join("\n"));
    let out = w.ok(NOW, &["orders", "import", plain.to_str().unwrap()]);
    assert!(out.contains("0 accepted, 2 unchanged, 0 rejected"), "{out}");
}

#[test]
fn a_csv_with_a_wrong_header_is_rejected_whole() {
    let w = Warehouse::new();
    let file = w.file("items.csv", "sku,desc,hts\nTSHIRT,Shirt,6109.10\n");
    let output = w.run_at(NOW, &["items", "import", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("items.csv: line 1: the header must be"),
        "{err}"
    );
    assert!(err.contains("nothing of this file was applied"), "{err}");
}

#[test]
fn bad_catalogue_and_stock_rows_name_their_line_and_field() {
    let w = Warehouse::new();
    let items = w.file(
        "items.csv",
        "sku,description,hts,origin,flags\nA,Shirt,6109.10,MX,\nB,Shirt,61x9,MX,\nC,Shirt,6109.10,Mexico,\nD,Shirt,6109.10,MX,radioactive\nA,Again,6109.10,MX,\n",
    );
    let output = w.run_at(NOW, &["items", "import", items.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3));
    let err = stderr(&output);
    assert!(err.contains("line 3: hts:"), "{err}");
    assert!(err.contains("line 4: origin:"), "{err}");
    assert!(err.contains("line 5: flags:"), "{err}");
    assert!(err.contains("line 6: sku: A is already on line 2"), "{err}");

    let stock = w.file("stock.csv", "sku,qty\nA,5\nZ,1\nA,-2\nA,1.5\n");
    let output = w.run_at(NOW, &["stock", "receive", stock.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3));
    let err = stderr(&output);
    assert!(err.contains("line 3: sku: unknown SKU \"Z\""), "{err}");
    assert!(err.contains("line 4: qty:"), "{err}");
    assert!(err.contains("line 5: qty:"), "{err}");
    assert!(w
        .ok(NOW, &["stock", "list", "--json"])
        .contains(r#"{"sku":"A","on_hand":5}"#));
}

#[test]
fn a_missing_file_changes_nothing_and_says_which() {
    let w = Warehouse::new();
    let output = w.run_at(NOW, &["orders", "import", "no-such-file.jsonl"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no-such-file.jsonl: cannot read"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_second_process_is_told_the_store_is_in_use() {
    let w = Warehouse::new();
    w.ok(NOW, &["stock", "list", "--json"]);
    let held = Store::open(&w.path("data")).expect("open the store in this process");
    let output = w.run_at(NOW, &["orders", "list", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("is in use by another process"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    drop(held);
    w.ok(NOW, &["orders", "list", "--json"]);
}

#[test]
fn orders_list_filters_by_state() {
    let w = warehouse_with_items();
    let orders = [
        order(
            "P1",
            "2026-11-30T10:00:00-08:00",
            "Ana Ruiz",
            "1 Main St",
            "USD",
            &[("TSHIRT", 1, "10.00")],
        ),
        order(
            "C1",
            "2026-11-30T10:00:00-08:00",
            "Ben Ode",
            "2 Main St",
            "USD",
            &[("TSHIRT", 1, "10.00")],
        ),
    ];
    let file = w.file("orders.jsonl", &orders.join("\n"));
    w.ok(NOW, &["orders", "import", file.to_str().unwrap()]);
    w.ok(NOW, &["orders", "cancel", "C1"]);
    let row = |state: &str| -> serde_json::Value {
        let listed = w.ok(NOW, &["orders", "list", "--state", state, "--json"]);
        assert_eq!(listed.lines().count(), 1, "{listed}");
        serde_json::from_str(&listed).unwrap()
    };
    let pending = row("pending");
    let fields = |row: &serde_json::Value, names: &[&str]| -> Vec<serde_json::Value> {
        names.iter().map(|name| row[*name].clone()).collect()
    };
    let names = [
        "order_id",
        "state",
        "reason",
        "release_id",
        "day",
        "value_usd",
    ];
    assert_eq!(
        fields(&pending, &names),
        serde_json::json!(["P1", "pending", null, null, null, "10.00"])
            .as_array()
            .unwrap()
            .clone()
    );
    assert_eq!(pending["placed_at"], "2026-11-30T18:00:00Z");
    assert_eq!(pending["consignee"]["name"], "Ana Ruiz");
    assert_eq!(pending["consignee"]["address"]["line1"], "1 Main St");
    let cancelled = row("cancelled");
    assert_eq!(
        fields(&cancelled, &names),
        serde_json::json!(["C1", "cancelled", null, null, null, null])
            .as_array()
            .unwrap()
            .clone()
    );
    let output = w.run_at(NOW, &["orders", "cancel", "NOPE"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("order NOPE is not known"));
}

#[test]
fn tomorrow_can_be_prepared_but_then_today_is_an_earlier_day() {
    let w = warehouse_with_items();
    w.ok(NOW, &["batch", "--day", "2026-12-02"]);
    let output = w.run_at(NOW, &["batch"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("2026-12-01 is before 2026-12-02, the last day batched"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_day_without_a_policy_is_refused() {
    let w = Warehouse::with_policies(
        r#"
[[policy]]
name = "later"
from = "2027-01-01"
lane = "de-minimis"
value_limit_usd = "800"
"#,
    );
    let output = w.run_at(NOW, &["batch"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no policy in the config is in force on 2026-12-01"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn check_config_lists_every_problem() {
    let w = Warehouse::new();
    w.file("api-token", "a-token-of-at-least-16-characters\n");
    w.ok(NOW, &["check-config"]);
    let bad = w.file(
        "bad.toml",
        r#"
[warehouse]
name = "x"
timezone = "Mars/Olympus"
colour = "red"

[schedule]
cutoff = "25:00"

[[policy]]
name = "p"
from = "2020-01-01"
lane = "de-minimis"
value_limit_usd = 800.5
"#,
    );
    let output = assert_cmd::Command::cargo_bin("border-release")
        .unwrap()
        .args(["--config", bad.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(0));
    let err = stderr(&output);
    for key in [
        "warehouse.timezone",
        "warehouse.colour",
        "schedule.cutoff",
        "value_limit_usd",
    ] {
        assert!(err.contains(key), "missing {key} in:\n{err}");
    }
}

/// `check-config` fails, naming the key, on what would stop the daemon or a batch later: the
/// API's token file missing, unreadable or too short, and no policy in force today at the
/// warehouse; and on a lane it does not know, which `serve` refuses at start too.
#[test]
fn check_config_fails_on_a_missing_token_no_policy_today_or_an_unknown_lane() {
    let w = Warehouse::new();
    let check = |w: &Warehouse| {
        let output = w.run_at(NOW, &["check-config"]);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert!(output.stdout.is_empty());
        stderr(&output)
    };
    let token = w.path("api-token");
    let err = check(&w);
    assert!(
        err.contains(&format!(
            "  api.token_file: {}: cannot read the API token",
            token.display()
        )),
        "{err}"
    );
    w.file("api-token", "short\n");
    let err = check(&w);
    assert!(
        err.contains(&format!(
            "  api.token_file: {}: the token must be at least 16 characters",
            token.display()
        )),
        "{err}"
    );
    // Unreadable (a folder where the file should be: unreadable as any user, root included).
    std::fs::remove_file(&token).unwrap();
    std::fs::create_dir(&token).unwrap();
    assert!(check(&w).contains("cannot read the API token"));
    std::fs::remove_dir(&token).unwrap();
    w.file("api-token", "a-token-of-at-least-16-characters\n");
    w.ok(NOW, &["check-config"]);

    // No policy in force on the day the clock says it is at the warehouse.
    let later = Warehouse::with_policies(
        r#"
[[policy]]
name = "later"
from = "2026-12-02"
lane = "de-minimis"
value_limit_usd = "800"
"#,
    );
    later.file("api-token", "a-token-of-at-least-16-characters\n");
    let err = check(&later);
    assert!(
        err.contains("  policy: no policy is in force today (2026-12-01 at the warehouse)"),
        "{err}"
    );
    later.ok("2026-12-02T07:00:00-08:00", &["check-config"]);

    // A lane of no known kind: check-config names it, and the daemon does not start.
    let text = std::fs::read_to_string(w.config()).unwrap();
    let unknown = text.replacen("lane = \"de-minimis\"", "lane = \"formal-entry\"", 1);
    assert_ne!(unknown, text);
    std::fs::write(w.config(), unknown).unwrap();
    let err = check(&w);
    assert!(
        err.contains(
            "  policy[0].lane: expected one of de-minimis, informal-entry, found \"formal-entry\""
        ),
        "{err}"
    );
    let output = w.run_at(NOW, &["serve"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("policy[0].lane"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn check_store_finds_a_release_log_that_disagrees_with_the_store() {
    let w = warehouse_with_items();
    let stock = w.file("stock.csv", "sku,qty\nTSHIRT,10\n");
    w.ok(NOW, &["stock", "receive", stock.to_str().unwrap()]);
    let orders = [
        order(
            "A1",
            "2026-11-30T10:00:00-08:00",
            "Ana Ruiz",
            "1 Main St",
            "USD",
            &[("TSHIRT", 1, "10.00")],
        ),
        order(
            "B1",
            "2026-11-30T10:00:00-08:00",
            "Ben Ode",
            "2 Main St",
            "USD",
            &[("TSHIRT", 1, "10.00")],
        ),
    ];
    let file = w.file("orders.jsonl", &orders.join("\n"));
    w.ok(NOW, &["orders", "import", file.to_str().unwrap()]);
    w.ok(NOW, &["batch"]);
    w.assert_store_sound(NOW);
    let log = w.path("logs/releases/2026-12-01.jsonl");
    let manifest = w.path("logs/releases/2026-12-01.manifest.csv");
    let (text, manifest_text) = (
        std::fs::read(&log).unwrap(),
        std::fs::read(&manifest).unwrap(),
    );
    let first_line = String::from_utf8_lossy(&text)
        .lines()
        .next()
        .unwrap()
        .to_owned();
    std::fs::write(&log, first_line).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    let output = w.run_at(NOW, &["check-store"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.ends_with(": 2 violations\n"), "the summary: {out}");
    let repair = "`border-release releases write --day 2026-12-01` writes the day's files again";
    for expected in [
        format!(
            "2026-12-01: {} differs from the store: {repair}",
            log.display()
        ),
        format!("2026-12-01: {} is missing: {repair}", manifest.display()),
    ] {
        assert!(err.contains(&expected), "{expected}\n{err}");
    }

    // Written again, the files are what they were, byte for byte.
    let written = w.ok(NOW, &["releases", "write", "--day", "2026-12-01"]);
    assert!(
        written.starts_with("2026-12-01: 2 releases and 0 voids written from the store"),
        "{written}"
    );
    assert_eq!(std::fs::read(&log).unwrap(), text);
    assert_eq!(std::fs::read(&manifest).unwrap(), manifest_text);
    w.assert_store_sound(NOW);
    let none = w.run_at(NOW, &["releases", "write", "--day", "2026-11-30"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(stderr(&none).contains("no release was ever committed for 2026-11-30"));
}

#[test]
fn json_errors_are_told_in_the_integrators_words() {
    let w = warehouse_with_items();
    let good = order(
        "OK-1",
        "2026-11-30T10:00:00-08:00",
        "Ana Ruiz",
        "1 Main St",
        "USD",
        &[("TSHIRT", 1, "10.00")],
    );
    let lines = [
        "[]".to_owned(),
        good.replace("\"qty\":1", "\"qty\":-1"),
        good.replace("\"qty\":1", "\"qty\":\"1\""),
    ];
    let file = w.file("orders.jsonl", &lines.join("\n"));
    let output = w.run_at(NOW, &["orders", "import", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3));
    let err = stderr(&output);
    for expected in [
        "line 1: expected an order object, found an empty array\n",
        "line 2: order OK-1: lines[0].qty: invalid value: integer `-1`, expected a whole number\n",
        "line 3: order OK-1: lines[0].qty: invalid type: string \"1\", expected a whole number\n",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(!err.contains("Json"), "{err}");
    assert!(!err.contains("column"), "{err}");
}

#[test]
fn a_batch_whose_files_cannot_be_written_is_committed_and_says_so() {
    let w = warehouse_with_items();
    let stock = w.file("stock.csv", "sku,qty\nTSHIRT,10\n");
    w.ok(NOW, &["stock", "receive", stock.to_str().unwrap()]);
    let file = w.file(
        "orders.jsonl",
        &order(
            "A1",
            "2026-11-30T10:00:00-08:00",
            "Ana Ruiz",
            "1 Main St",
            "USD",
            &[("TSHIRT", 1, "10.00")],
        ),
    );
    w.ok(NOW, &["orders", "import", file.to_str().unwrap()]);
    // A file where the releases folder belongs: the day's files cannot be written.
    std::fs::create_dir_all(w.path("logs")).unwrap();
    std::fs::write(w.path("logs/releases"), "in the way").unwrap();
    let output = w.run_at(NOW, &["batch"]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("releases: 1 (1 order, 10.00 USD)"));
    assert!(stderr(&output)
        .contains("the batch is committed, but its release log and manifest could not be written"));
    // Other commands still run, and warn; check-store names the day.
    let output = w.run_at(NOW, &["check-store"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("warning: release logs left due"), "{err}");
    assert!(
        err.contains("2026-12-01: the release files are not written yet"),
        "{err}"
    );
    assert_eq!(w.order(NOW, "A1").state, "released");
    // Once the way is clear, the next command writes them.
    std::fs::remove_file(w.path("logs/releases")).unwrap();
    w.assert_store_sound(NOW);
    assert_eq!(w.release_log("2026-12-01").len(), 1);
}
