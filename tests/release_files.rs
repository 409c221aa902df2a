//! The release files as brokers and operators get them: who may read them, what they hold, and
//! how a spreadsheet opens them.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::{order, stderr, Warehouse};

const NOW: &str = "2026-12-01T07:00:00-08:00";
const DAY: &str = "2026-12-01";

/// A warehouse with stock and two orders for two recipients, due today.
fn warehouse_with_orders() -> Warehouse {
    let w = Warehouse::with_items(NOW);
    let stock = w.file("stock.csv", "sku,qty\nTSHIRT,10\nJEANS,10\n");
    w.ok(NOW, &["stock", "receive", stock.to_str().unwrap()]);
    let orders = [
        order(
            "A1",
            "2026-11-30T10:00:00-08:00",
            "Zoë Peña",
            "1 Main St",
            "USD",
            &[("TSHIRT", 2, "10.00"), ("JEANS", 1, "30")],
        ),
        order(
            "A2",
            "2026-11-30T11:00:00-08:00",
            "Zoë Peña",
            "1 Main St",
            "MXN",
            &[("TSHIRT", 1, "200.00")],
        ),
        order(
            "B1",
            "2026-11-30T12:00:00-08:00",
            "Ben Ode",
            "2 Main St",
            "USD",
            &[("JEANS", 1, "45.00")],
        ),
    ];
    let file = w.file("orders.jsonl", &orders.join("\n"));
    w.ok(NOW, &["orders", "import", file.to_str().unwrap()]);
    w
}

/// A file of one more order, C1, to a third recipient, due today: one T-shirt at `price`.
fn one_more_order(w: &Warehouse, price: &str) -> std::path::PathBuf {
    w.file(
        "more.jsonl",
        &order(
            "C1",
            "2026-11-30T13:00:00-08:00",
            "Cy Young",
            "4 Elm Ave",
            "USD",
            &[("TSHIRT", 1, price)],
        ),
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn release_files_are_readable_by_the_group_whatever_the_umask() {
    let w = warehouse_with_orders();
    // As under the unit's UMask=0077.
    let binary = assert_cmd::cargo::cargo_bin("border-release");
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 077 && exec \"$0\" \"$@\"")
        .arg(binary)
        .args(["--config", w.config().to_str().unwrap(), "batch"])
        .env("BORDER_RELEASE_FAKE_NOW", NOW)
        .env_remove("BORDER_RELEASE_CONFIG")
        .current_dir(w.dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(mode(&w.path("logs")), 0o750, "the logs folder");
    assert_eq!(mode(&w.path("logs/releases")), 0o750, "the releases folder");
    let mut names: Vec<String> = std::fs::read_dir(w.path("logs/releases"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            format!("{DAY}.jsonl"),
            format!("{DAY}.manifest.csv"),
            format!("{DAY}.releases.csv"),
        ]
    );
    for name in names {
        assert_eq!(
            mode(&w.path(&format!("logs/releases/{name}"))),
            0o640,
            "{name}"
        );
    }
    // The store stays the owner's alone.
    assert_eq!(mode(&w.path("data")) & 0o077, 0, "the store's folder");
}

/// The rows of a CSV file, its header first, read as a spreadsheet would (a byte-order mark
/// dropped).
fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let text = String::from_utf8(bytes).expect("UTF-8");
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|row| row.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[test]
fn the_release_summary_has_a_row_per_release_beside_the_log_and_manifest() {
    let w = warehouse_with_orders();
    let summary = w.path(&format!("logs/releases/{DAY}.releases.csv"));
    let printed = w.ok(NOW, &["batch"]);
    assert!(
        printed.contains(&format!("summary:     {}", summary.display())),
        "{printed}"
    );
    let rows = csv_rows(&summary);
    assert_eq!(
        rows,
        [
            vec![
                "release_id",
                "consignee",
                "city",
                "state",
                "postal_code",
                "orders",
                "lines",
                "value_usd",
                "duty_usd",
                "fees_usd"
            ],
            // 2 x 10.00 + 30 + 200.00 MXN at 0.0541.
            vec![
                "2026-12-01-000001",
                "Zoë Peña",
                "San Diego",
                "CA",
                "92101",
                "2",
                "3",
                "60.82",
                // No duty table: the duty is unknown; no fee in the config.
                "",
                "0.00"
            ],
            vec![
                "2026-12-01-000002",
                "Ben Ode",
                "San Diego",
                "CA",
                "92101",
                "1",
                "1",
                "45.00",
                "",
                "0.00"
            ],
        ]
    );
    // The release log lists the same releases, in the same order.
    let logged: Vec<String> = w
        .release_log(DAY)
        .iter()
        .map(|release| release["release_id"].as_str().unwrap().to_owned())
        .collect();
    let summed: Vec<String> = rows[1..].iter().map(|row| row[0].clone()).collect();
    assert_eq!(logged, summed);

    // A later wave rewrites it whole with the day's every release.
    let more = one_more_order(&w, "5");
    w.ok(NOW, &["orders", "import", more.to_str().unwrap()]);
    let json = w.ok(NOW, &["batch", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["release_summary"], summary.display().to_string());
    let rows = csv_rows(&summary);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows[3][0], "2026-12-01-000003");
    assert_eq!(rows[3][7], "5.00");

    // A release summary lost is written again, like the release log, when the day's files are
    // due: here by a store restored from a dump.
    let dump = w.path("backup.jsonl");
    w.ok(NOW, &["store", "dump", dump.to_str().unwrap()]);
    let other = Warehouse::new();
    other.ok(NOW, &["store", "restore", dump.to_str().unwrap()]);
    let restored = other.path(&format!("logs/releases/{DAY}.releases.csv"));
    assert_eq!(
        std::fs::read(&restored).unwrap(),
        std::fs::read(&summary).unwrap()
    );
}

#[test]
fn a_manifest_opens_in_a_spreadsheet_with_accented_names_intact() {
    let w = warehouse_with_orders();
    w.ok(NOW, &["batch"]);
    for file in ["manifest.csv", "releases.csv"] {
        let bytes = std::fs::read(w.path(&format!("logs/releases/{DAY}.{file}"))).unwrap();
        assert!(
            bytes.starts_with(b"\xef\xbb\xbfrelease_id,"),
            "{file} does not start with the UTF-8 byte-order mark"
        );
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("Zoë Peña"), "{file}: {text}");
    }
    // The manifest reads as the release log says; check-store agrees with the files.
    let manifest = w.manifest(DAY);
    assert_eq!(manifest.len(), 4);
    assert_eq!(&manifest[0][4], "Zoë Peña");
    w.assert_store_sound(NOW);

    // Without the mark, when the config says so (here by an override), and the files of a day
    // written again follow the config in force.
    let plain = |args: &[&str]| {
        let output = w
            .process(NOW, args)
            .env("BORDER_RELEASE__RELEASE_FILES__CSV_BOM", "false")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    };
    let more = one_more_order(&w, "5.00");
    plain(&["orders", "import", more.to_str().unwrap()]);
    plain(&["batch"]);
    for file in ["manifest.csv", "releases.csv"] {
        let bytes = std::fs::read(w.path(&format!("logs/releases/{DAY}.{file}"))).unwrap();
        assert!(bytes.starts_with(b"release_id,"), "{file}");
    }
    assert_eq!(w.manifest(DAY).len(), 5);
    w.assert_store_sound(NOW);
}
