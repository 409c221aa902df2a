//! Hostile input: malformed, oversized and arbitrary bytes in every input file. Each gets a clear
//! rejection naming what is wrong, nothing else changes, and nothing panics.

mod support;

use border_release::identity::IdentityRule;
use border_release::intake::{self, Source, StockFile};
use border_release::store::Store;
use proptest::prelude::*;
use support::{order, stderr, Warehouse};

const NOW: &str = "2026-12-01T07:00:00-08:00";

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_text_parses_to_an_order_or_a_rejection(text in ".{0,300}") {
        let _ = intake::parse_order(&text, IdentityRule::NameAndAddress);
    }

    #[test]
    fn any_json_shaped_text_parses_to_an_order_or_a_rejection(
        text in r#"\{("[a-z_]{1,12}": ?("[^"]{0,20}"|-?[0-9]{1,25}(\.[0-9]{1,5})?|\[\]|\{\}|null|true),? ?){0,8}\}"#
    ) {
        let _ = intake::parse_order(&text, IdentityRule::CustomerId);
    }

    #[test]
    fn any_catalogue_row_parses_to_an_item_or_a_rejection(fields in prop::collection::vec(".{0,40}", 5)) {
        let _ = intake::parse_item(&fields);
    }

    #[test]
    fn any_duty_table_row_parses_to_a_rate_or_a_rejection(fields in prop::collection::vec(".{0,40}", 6..=7)) {
        if let Ok(rate) = intake::parse_duty(&fields) {
            // What is taken in is what the estimate can rely on.
            prop_assert!((2..=10).contains(&rate.hts_prefix.len()));
            prop_assert!(rate.hts_prefix.bytes().all(|b| b.is_ascii_digit()));
            prop_assert!(!rate.rate_percent.is_sign_negative());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_in_any_input_file_change_nothing_they_should_not(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("data")).unwrap();
        let file = dir.path().join("input");
        std::fs::write(&file, &bytes).unwrap();
        let source = Source::File(&file);
        // Whatever the bytes, each import returns a report or an error (bytes that are not
        // UTF-8 refuse the file whole); none panics, and the orders file (no catalogue yet, so
        // no order can be accepted) adds no order.
        if let Ok(orders) =
            intake::import_orders(&mut store, &[source], IdentityRule::NameAndAddress, None)
        {
            prop_assert_eq!(orders[0].accepted, 0);
        }
        let _ = intake::import_items(&mut store, source, None);
        let _ = intake::import_duties(&mut store, source, None);
        let _ = intake::import_stock(&mut store, source, StockFile::Receive, None);
        let _ = intake::import_stock(&mut store, source, StockFile::Count, None);
        prop_assert!(store.order_states().unwrap().is_empty());
    }
}

#[test]
fn hostile_order_lines_are_rejected_one_by_one_and_the_good_ones_kept() {
    let w = Warehouse::with_items(NOW);
    let good = order(
        "OK-1",
        "2026-11-30T10:00:00-08:00",
        "Ana Ruiz",
        "1 Main St",
        "USD",
        &[("TSHIRT", 1, "10.00")],
    );
    let huge_name = "A".repeat(2 * 1024 * 1024);
    let lines = [
        good.clone(),
        good.replace("OK-1", "HUGE").replace("Ana Ruiz", &huge_name),
        good.replace("OK-1", "QTY-OVERFLOW")
            .replace("\"qty\":1", "\"qty\":99999999999999999999999"),
        good.replace("OK-1", "CONTROL")
            .replace("Ana Ruiz", "Ana\\u0007Ruiz"),
        good.replace("OK-1", "FAR-FUTURE")
            .replace("2026-11-30T10:00:00-08:00", "9999-01-01T00:00:00Z"),
        good.replace("\"OK-1\"", "1234"),
        good.replace("OK-1", "DUPLICATE-KEY").replace(
            "\"currency\":\"USD\"",
            "\"currency\":\"USD\",\"currency\":\"MXN\"",
        ),
        good.replace("OK-1", "HUGE-PRICE")
            .replace("\"10.00\"", "\"1e400\""),
        good.replace("OK-1", "SPACE ID"),
        good.replace("OK-1", "FORMULA")
            .replace("Ana Ruiz", "=HYPERLINK(\\\"x\\\") Ruiz"),
        good.replace("OK-1", "OK-2")
            .replace("Ana Ruiz", "Ana Ruiz-Peña"),
    ];
    let file = w.file("orders.jsonl", &lines.join("\n"));
    let output = w.run_at(NOW, &["orders", "import", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("2 accepted, 0 unchanged, 9 rejected"));
    for expected in [
        "line 10: order FORMULA: recipient.name: starts with '=', which a spreadsheet would run as a formula",
        "line 2: longer than 1048576 bytes",
        "line 3: order QTY-OVERFLOW: lines[0].qty:",
        "line 4: order CONTROL: recipient.name: contains control characters",
        "line 5: order FAR-FUTURE: placed_at: 9999-01-01T00:00:00Z is outside 2000 to 2100",
        "line 6: order_id: invalid type: integer `1234`, expected a string",
        "line 7: order DUPLICATE-KEY: duplicate field `currency`",
        "line 8: order HUGE-PRICE: lines[0].unit_price: \"1e400\" is not a decimal amount",
        "line 9: order_id: must be 1 to 64 visible ASCII characters without spaces",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    let ids: Vec<String> = w.orders(NOW).into_iter().map(|row| row.order_id).collect();
    assert_eq!(ids, ["OK-1", "OK-2"]);
    w.assert_store_sound(NOW);
}

#[test]
fn an_empty_or_blank_file_changes_nothing() {
    let w = Warehouse::new();
    let empty = w.file("empty.jsonl", "");
    assert!(w
        .ok(NOW, &["orders", "import", empty.to_str().unwrap()])
        .contains("0 accepted, 0 unchanged, 0 rejected"));
    let blank = w.file("blank.jsonl", "\n \n\r\n\t\n");
    assert!(w
        .ok(NOW, &["orders", "import", blank.to_str().unwrap()])
        .contains("0 accepted, 0 unchanged, 0 rejected"));
    assert!(w.orders(NOW).is_empty());
}

/// Files of 100 MB: one line without an end (orders, items, stock), refused line by line with
/// the line named, and lines of arbitrary bytes, refused whole as not UTF-8 with the first such
/// line named. Nothing of them is taken in, the orders already stored are untouched, and a good
/// file goes in afterwards.
#[test]
fn files_of_a_hundred_megabytes_are_refused_with_the_line_named_and_change_nothing() {
    const SIZE: usize = 100 << 20;
    let w = Warehouse::with_items(NOW);
    let good = order(
        "KEPT-1",
        "2026-11-30T10:00:00-08:00",
        "Ana Ruiz",
        "1 Main St",
        "USD",
        &[("TSHIRT", 1, "10.00")],
    );
    let kept = w.file("kept.jsonl", &good);
    w.ok(NOW, &["orders", "import", kept.to_str().unwrap()]);
    let before = w.orders(NOW);

    // One line of 100 MB, for each kind of input.
    let endless = "x".repeat(SIZE);
    for (kind, args, header) in [
        ("orders", ["orders", "import"], ""),
        (
            "items",
            ["items", "import"],
            "sku,description,hts,origin,flags\n",
        ),
        ("stock", ["stock", "receive"], "sku,qty\n"),
    ] {
        let file = w.file(&format!("endless-{kind}"), &format!("{header}{endless}"));
        let output = w.run_at(NOW, &[args[0], args[1], file.to_str().unwrap()]);
        let err = stderr(&output);
        assert!(
            matches!(output.status.code(), Some(1) | Some(3)),
            "{kind}: exit {:?}\n{}",
            output.status.code(),
            err.chars().take(2000).collect::<String>()
        );
        assert!(
            err.contains("line") && err.len() < 64 << 10,
            "{kind}: the long line is named, not echoed: {}",
            err.chars().take(2000).collect::<String>()
        );
    }
    drop(endless);

    // 100 MB of arbitrary bytes in lines of about 4 KiB.
    let bytes = support::noise(SIZE, 0x5eed_1234_abcd_0001);
    let noise = w.path("noise.jsonl");
    std::fs::write(&noise, &bytes).unwrap();
    drop(bytes);
    let output = w.run_at(NOW, &["orders", "import", noise.to_str().unwrap()]);
    let err = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        err.chars().take(2000).collect::<String>()
    );
    assert!(
        err.contains("noise.jsonl is in another encoding (line 1 has bytes that are not UTF-8"),
        "{}",
        err.chars().take(2000).collect::<String>()
    );
    assert!(err.len() < 4096, "one message: {err}");

    assert_eq!(w.orders(NOW), before, "nothing else changed");
    w.assert_store_sound(NOW);
    let more = w.file(
        "more.jsonl",
        &order(
            "KEPT-2",
            "2026-11-30T10:00:00-08:00",
            "Ben Ode",
            "2 Main St",
            "USD",
            &[("TSHIRT", 1, "10.00")],
        ),
    );
    w.ok(NOW, &["orders", "import", more.to_str().unwrap()]);
    assert_eq!(w.orders(NOW).len(), 2);
}

/// Every rejected order line names the rule it breaks in words that do not quote the value,
/// for logs that must not hold a name or an address.
#[test]
fn a_rejections_rule_never_quotes_the_value() {
    let good = order(
        "OK-1",
        "2026-11-30T10:00:00-08:00",
        "Ana Ruiz",
        "1 Main St",
        "USD",
        &[("TSHIRT", 1, "10.00")],
    );
    let cases = [
        (
            "recipient.address.postal_code",
            good.replace("92101", "SECRET9"),
            "SECRET9",
        ),
        (
            "recipient.address.state",
            good.replace("\"CA\"", "\"SECRETSTATE\""),
            "SECRETSTATE",
        ),
        (
            "recipient.name",
            good.replace("Ana Ruiz", "=SECRET()"),
            "SECRET",
        ),
        ("recipient.name", good.replace("Ana Ruiz", "N/A"), "N/A"),
        (
            "recipient.address.line1",
            good.replace("1 Main St", "@SECRET"),
            "SECRET",
        ),
        (
            "recipient.address.country",
            good.replace("\"US\"", "\"SECRETLAND\""),
            "SECRETLAND",
        ),
        (
            "placed_at",
            good.replace("2026-11-30T10:00:00-08:00", "SECRET-DAY"),
            "SECRET",
        ),
        (
            "lines[0].unit_price",
            good.replace("\"10.00\"", "\"-7.77\""),
            "7.77",
        ),
        (
            "lines[0].qty",
            good.replace("\"qty\":1", "\"qty\":\"77777\""),
            "77777",
        ),
        (
            "recipient.secret",
            good.replace("\"name\"", "\"secret\":\"x\",\"name\""),
            "x\"",
        ),
    ];
    for (field, line, value) in cases {
        let rejection = intake::parse_order(&line, IdentityRule::NameAndAddress).expect_err(field);
        assert_eq!(rejection.field.as_deref(), Some(field), "{rejection:?}");
        assert!(!rejection.rule.is_empty(), "{rejection:?}");
        assert!(
            !rejection.rule.contains(value),
            "{field}: the rule quotes the value: {rejection:?}"
        );
    }
    let zip = intake::parse_order(
        &good.replace("92101", "ABCDE"),
        IdentityRule::NameAndAddress,
    )
    .unwrap_err();
    assert_eq!(zip.rule, "5 digits or ZIP+4");
}
