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
        [format!("{DAY}.jsonl"), format!("{DAY}.manifest.csv")]
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
