//! `store dump` and `store restore`: a dump taken from a store with orders in every state,
//! releases over two days (one with two waves), stock movements and the schedule's marks
//! restores into an empty store that lists, plans and logs exactly the same; a truncated or
//! damaged dump is refused with the line at fault, and leaves the target empty.

mod support;

use std::path::Path;

use support::{order, stderr, Warehouse};

const MONDAY: &str = "2026-11-30T07:00:00-08:00";
const TUESDAY: &str = "2026-12-01T07:00:00-08:00";
const WEDNESDAY: &str = "2026-12-02T05:00:00-08:00";

/// A warehouse with orders pending, waiting, held, released and cancelled, two days of
/// releases (the second in two waves), receipts and a count.
fn busy_warehouse() -> Warehouse {
    let w = Warehouse::with_items(MONDAY);
    let stock = w.file("stock.csv", "sku,qty\nTSHIRT,40\nJEANS,3\nBOOTS,10\n");
    w.ok(MONDAY, &["stock", "receive", stock.to_str().unwrap()]);
    let count = w.file("count.csv", "sku,qty\nBOOTS,8\n");
    w.ok(MONDAY, &["stock", "count", count.to_str().unwrap()]);
    let mut lines = Vec::new();
    for n in 0..30 {
        let (sku, qty, price) = match n % 5 {
            0 => ("TSHIRT", 2, "19.99"),
            1 => ("JEANS", 1, "45.00"),
            2 => ("BOOTS", 1, "900.00"),
            3 => ("TEQUILA", 1, "30.00"),
            _ => ("TSHIRT", 1, "350.00"),
        };
        lines.push(order(
            &format!("SO-{n:03}"),
            &format!("2026-11-29T{:02}:00:00-08:00", 8 + n % 10),
            &format!("Buyer {}", n % 7),
            &format!("{} Market St", n % 7),
            if n % 4 == 0 { "MXN" } else { "USD" },
            &[(sku, qty, price)],
        ));
    }
    let file = w.file("orders.jsonl", &lines.join("\n"));
    w.ok(MONDAY, &["orders", "import", file.to_str().unwrap()]);
    w.ok(MONDAY, &["orders", "cancel", "SO-007"]);
    let duties = w.file(
        "duties.csv",
        "hts_prefix,origin,program,rate_percent,from,usmca_exempt\n6109,*,mfn,16.5,2026-01-01,yes\n61,MX,surcharge,10,2026-01-01,no\n",
    );
    w.ok(MONDAY, &["duties", "import", duties.to_str().unwrap()]);
    w.ok(TUESDAY, &["batch", "--day", "2026-12-01"]);
    let more: Vec<String> = (30..40)
        .map(|n| {
            order(
                &format!("SO-{n:03}"),
                "2026-12-01T09:00:00-08:00",
                &format!("Late buyer {n}"),
                &format!("{n} Elm St"),
                "USD",
                &[("TSHIRT", 1, "12.50")],
            )
        })
        .collect();
    let file = w.file("more.jsonl", &more.join("\n"));
    w.ok(TUESDAY, &["orders", "import", file.to_str().unwrap()]);
    w.ok(WEDNESDAY, &["batch", "--day", "2026-12-02"]);
    let receipt = w.file("receipt.csv", "sku,qty\nJEANS,5\n");
    w.ok(WEDNESDAY, &["stock", "receive", receipt.to_str().unwrap()]);
    w.ok(WEDNESDAY, &["batch", "--day", "2026-12-02"]);
    let last = w.file(
        "last.jsonl",
        &order(
            "SO-100",
            "2026-12-02T09:00:00-08:00",
            "Buyer 1",
            "1 Market St",
            "USD",
            &[("JEANS", 1, "45.00")],
        ),
    );
    w.ok(WEDNESDAY, &["orders", "import", last.to_str().unwrap()]);
    w
}

/// What the operator sees of a store, command by command.
fn views(w: &Warehouse) -> Vec<(String, String)> {
    let mut views = Vec::new();
    for args in [
        &["orders", "list", "--json"][..],
        &["stock", "list", "--json"],
        &["stock", "list"],
        &["plan", "--day", "2026-12-03", "--json"],
        &["plan", "--day", "2026-12-02"],
    ] {
        views.push((args.join(" "), w.ok(WEDNESDAY, args)));
    }
    for day in ["2026-12-01", "2026-12-02"] {
        for file in [
            format!("logs/releases/{day}.jsonl"),
            format!("logs/releases/{day}.manifest.csv"),
            format!("logs/releases/{day}.releases.csv"),
        ] {
            let text = std::fs::read_to_string(w.path(&file)).unwrap_or_default();
            views.push((file, text));
        }
    }
    views
}

fn path(file: &Path) -> &str {
    file.to_str().unwrap()
}

#[test]
fn a_restored_store_lists_plans_and_logs_exactly_what_the_dumped_one_did() {
    let source = busy_warehouse();
    let dump = source.path("backup.jsonl");
    let said = source.ok(WEDNESDAY, &["store", "dump", path(&dump)]);
    assert!(said.contains("41 orders"), "{said}");
    let text = std::fs::read_to_string(&dump).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "header");
    assert_eq!(first["format"], "border-release-dump");
    assert_eq!(first["version"], 5);
    let kinds: std::collections::BTreeSet<String> = text
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for kind in [
        "header", "item", "stock", "duty", "order", "assessed", "release", "schedule", "end",
    ] {
        assert!(kinds.contains(kind), "no {kind} line in the dump");
    }

    let target = Warehouse::new();
    let copy = target.file("backup.jsonl", &text);
    let said = target.ok(WEDNESDAY, &["store", "restore", path(&copy)]);
    assert!(said.contains("41 orders"), "{said}");
    target.assert_store_sound(WEDNESDAY);
    let (before, after) = (views(&source), views(&target));
    for ((what, expected), (_, got)) in before.iter().zip(&after) {
        assert!(!expected.is_empty(), "{what} is empty");
        assert_eq!(got, expected, "{what} differs after the restore");
    }

    // A dump of the restored store is the same dump, but for its time.
    let again = target.path("again.jsonl");
    target.ok(WEDNESDAY, &["store", "dump", path(&again)]);
    let again = std::fs::read_to_string(&again).unwrap();
    let body = |text: &str| {
        text.lines()
            .skip(1)
            .filter(|line| !line.contains(r#""kind":"end""#))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (mut old, new) = (body(&text), body(&again));
    // The restore marked every day's files due and wrote them; the source had none due.
    old.retain(|line| !line.contains(r#""kind":"logs-due""#));
    let missing: Vec<&String> = new.iter().filter(|line| !old.contains(line)).collect();
    let extra: Vec<&String> = old.iter().filter(|line| !new.contains(line)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "only in the second dump: {missing:#?}\nonly in the first: {extra:#?}"
    );

    // The restored store goes on as the old one would: the same batch, the same releases.
    let (a, b) = (
        source.ok(WEDNESDAY, &["batch", "--day", "2026-12-03", "--json"]),
        target.ok(WEDNESDAY, &["batch", "--day", "2026-12-03", "--json"]),
    );
    assert_eq!(
        a.replace(path(source.dir.path()), ""),
        b.replace(path(target.dir.path()), "")
    );
    assert_eq!(
        source.release_log("2026-12-03"),
        target.release_log("2026-12-03")
    );
}

#[test]
fn a_truncated_or_damaged_dump_is_refused_with_its_line_and_restores_nothing() {
    let source = busy_warehouse();
    let dump = source.path("backup.jsonl");
    source.ok(WEDNESDAY, &["store", "dump", path(&dump)]);
    let text = std::fs::read_to_string(&dump).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let count = lines.len();
    let order_line = lines
        .iter()
        .position(|line| line.contains(r#""kind":"order""#))
        .unwrap()
        + 1;
    let cases: Vec<(&str, String, String)> = vec![
        (
            "no end line",
            lines[..count - 1].join("\n") + "\n",
            format!("the dump ends at line {} without its end line", count - 1),
        ),
        (
            "cut inside a line",
            text[..text.len() - 40].to_owned(),
            format!("line {count}: the line is cut short"),
        ),
        (
            "half the dump",
            lines[..count / 2].join("\n") + "\n",
            "without its end line".to_owned(),
        ),
        (
            "a changed quantity",
            text.replacen(r#""qty":2"#, r#""qty":3"#, 1),
            format!("line {count}: the end line counts"),
        ),
        (
            "a broken line",
            text.replacen(lines[order_line - 1], "{\"kind\":\"order\",", 1),
            format!("line {order_line}:"),
        ),
        (
            "an order twice",
            {
                let mut twice = lines.clone();
                twice.insert(order_line, lines[order_line - 1]);
                twice.join("\n") + "\n"
            },
            format!("line {}: order SO-000 twice", order_line + 1),
        ),
        (
            "no header",
            lines[1..].join("\n") + "\n",
            "line 1: not a border-release dump".to_owned(),
        ),
        ("empty", String::new(), "without its end line".to_owned()),
    ];
    for (what, dumped, expected) in cases {
        let target = Warehouse::new();
        let file = target.file("backup.jsonl", &dumped);
        let output = target.run_at(WEDNESDAY, &["store", "restore", path(&file)]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{what}: {err}");
        assert!(
            err.contains(&expected),
            "{what}: expected {expected:?} in {err}"
        );
        assert!(err.contains("nothing was restored"), "{what}: {err}");
        assert!(
            err.contains(path(&file)),
            "{what}: the file is named: {err}"
        );
        // The target is as it was: empty.
        assert_eq!(
            target.ok(WEDNESDAY, &["orders", "list", "--json"]),
            "",
            "{what}"
        );
        assert_eq!(
            target.ok(WEDNESDAY, &["stock", "list", "--json"]),
            "",
            "{what}"
        );
        assert!(
            !target.path("data/.restoring").exists(),
            "{what}: left its work"
        );
        // And takes the good dump afterwards.
        let good = target.file("good.jsonl", &text);
        target.ok(WEDNESDAY, &["store", "restore", path(&good)]);
    }
}

#[test]
fn a_dump_is_restored_into_an_empty_store_only() {
    let source = busy_warehouse();
    let dump = source.path("backup.jsonl");
    source.ok(WEDNESDAY, &["store", "dump", path(&dump)]);
    let before = source.ok(WEDNESDAY, &["orders", "list", "--json"]);
    let output = source.run_at(WEDNESDAY, &["store", "restore", path(&dump)]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("is not empty") && err.contains("its store holds"),
        "{err}"
    );
    assert_eq!(source.ok(WEDNESDAY, &["orders", "list", "--json"]), before);

    // A folder with anything else in it is refused too.
    let target = Warehouse::new();
    std::fs::create_dir_all(target.path("data")).unwrap();
    std::fs::write(target.path("data/notes.txt"), "keep me").unwrap();
    let copy = target.file("backup.jsonl", &std::fs::read_to_string(&dump).unwrap());
    let output = target.run_at(WEDNESDAY, &["store", "restore", path(&copy)]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("notes.txt"), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(target.path("data/notes.txt")).unwrap(),
        "keep me"
    );
}

/// A store file and a dump written by layout 3 and dump format 1, kept in
/// `tests/fixtures/store-v3/`: the store must keep opening and dump the same lines, and the dump
/// must keep restoring, for as long as such stores and dumps may exist. Set
/// `BORDER_RELEASE_WRITE_FIXTURES=1` only to write them when they are missing.
/// A dump line without the end line's hash.
fn without_hash(line: &str) -> String {
    match line.find(r#","fnv1a64":"#) {
        Some(at) if line.starts_with(r#"{"kind":"end""#) => line[..at].to_owned(),
        _ => line.to_owned(),
    }
}

#[test]
fn a_store_and_a_dump_of_this_format_keep_reading() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v3");
    let (store_file, dump_file) = (fixtures.join("store.redb"), fixtures.join("dump.jsonl"));
    if std::env::var_os("BORDER_RELEASE_WRITE_FIXTURES").is_some() && !store_file.exists() {
        let w = busy_warehouse();
        std::fs::create_dir_all(&fixtures).unwrap();
        w.ok(WEDNESDAY, &["store", "dump", path(&dump_file)]);
        std::fs::copy(w.path("data/store.redb"), &store_file).unwrap();
    }
    let kept = std::fs::read_to_string(&dump_file).expect("the dump fixture");
    // The header names the layout of the store that wrote the dump (opening a store of an
    // earlier layout upgrades it), and the end line's hash covers the header: both are left out.
    let body = |text: &str| -> Vec<String> {
        let hash = without_hash;
        text.lines().skip(1).map(hash).collect()
    };

    let w = Warehouse::new();
    std::fs::create_dir_all(w.path("data")).unwrap();
    std::fs::copy(&store_file, w.path("data/store.redb")).unwrap();
    let dumped = w.path("again.jsonl");
    w.ok(WEDNESDAY, &["store", "dump", path(&dumped)]);
    assert_eq!(
        body(&std::fs::read_to_string(&dumped).unwrap()),
        body(&kept),
        "the kept store dumps otherwise"
    );

    let target = Warehouse::new();
    let copy = target.file("kept.jsonl", &kept);
    target.ok(WEDNESDAY, &["store", "restore", path(&copy)]);
    target.assert_store_sound(WEDNESDAY);
    // The kept store has no release logs beside it; what the commands show must agree.
    let commands = |w: &Warehouse| views(w).into_iter().take(5).collect::<Vec<_>>();
    assert_eq!(commands(&target), commands(&w));
}
