//! Durability: the process is aborted at each named crash point of an intake and of a batch
//! (as abruptly as kill -9), then run again; the store and the day's files must hold every
//! committed change exactly once and nothing half-applied.

mod support;

use support::{order, Warehouse};

const NOW: &str = "2026-12-01T07:00:00-08:00";
const DAY: &str = "2026-12-01";

fn prepared() -> Warehouse {
    let w = Warehouse::with_items(NOW);
    let stock = w.file("stock.csv", "sku,qty\nTSHIRT,100\n");
    w.ok(NOW, &["stock", "receive", stock.to_str().unwrap()]);
    w
}

fn orders(count: usize) -> String {
    (0..count)
        .map(|i| {
            order(
                &format!("SO-{i:03}"),
                "2026-11-30T10:00:00-08:00",
                &format!("Person {}", (b'A' + (i % 26) as u8) as char),
                "1 Main St",
                "USD",
                &[("TSHIRT", 1, "10.00")],
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn aborted(output: &std::process::Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    output.status.signal().is_some()
}

/// Every released order is in exactly one line of the day's log, and the log holds nothing else.
fn assert_log_matches_store(w: &Warehouse) {
    let log = w.release_log(DAY);
    let mut logged: Vec<String> = log
        .iter()
        .flat_map(|release| {
            release["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().to_owned())
        })
        .collect();
    let mut released: Vec<String> = w
        .orders(NOW)
        .into_iter()
        .filter(|row| row.state == "released")
        .map(|row| row.order_id)
        .collect();
    logged.sort();
    released.sort();
    assert_eq!(logged, released, "release log and store disagree");
    let mut ids: Vec<&str> = log
        .iter()
        .map(|release| release["release_id"].as_str().unwrap())
        .collect();
    let count = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), count, "a release is logged twice");
    let manifest_rows: Vec<(String, String)> = w
        .manifest(DAY)
        .iter()
        .map(|row| (row[0].to_owned(), row[11].to_owned()))
        .collect();
    let log_lines: Vec<(String, String)> = log
        .iter()
        .flat_map(|release| {
            let id = release["release_id"].as_str().unwrap().to_owned();
            release["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |line| (id.clone(), line["order_id"].as_str().unwrap().to_owned()))
        })
        .collect();
    assert_eq!(
        manifest_rows, log_lines,
        "manifest rows and release log lines disagree"
    );
}

#[test]
fn an_intake_aborted_at_any_point_is_all_or_nothing() {
    for point in [
        "intake-before-commit",
        "store-after-apply",
        "intake-after-commit",
    ] {
        let w = prepared();
        let file = w.file("orders.jsonl", &orders(50));
        let output = w.run_crashing(NOW, point, &["orders", "import", file.to_str().unwrap()]);
        assert!(aborted(&output), "{point}: the process was not aborted");
        let count = w.orders(NOW).len();
        match point {
            "intake-before-commit" => assert_eq!(count, 0, "{point}"),
            "intake-after-commit" => {
                assert_eq!(count, 50, "{point}: an acknowledged intake was lost")
            }
            _ => assert!(
                count == 0 || count == 50,
                "{point}: {count} of 50 orders: half-applied"
            ),
        }
        w.assert_store_sound(NOW);
        // Taking the file in again finishes the work without doubling anything.
        w.ok(NOW, &["orders", "import", file.to_str().unwrap()]);
        assert_eq!(w.orders(NOW).len(), 50, "{point}");
        w.assert_store_sound(NOW);
    }
}

#[test]
fn a_batch_aborted_at_any_point_is_committed_whole_or_not_at_all_and_logged_once() {
    for point in [
        "batch-before-commit",
        "store-after-apply",
        "batch-after-commit",
        "logs-after-release-log",
        "logs-after-write",
    ] {
        let w = prepared();
        let file = w.file("orders.jsonl", &orders(40));
        w.ok(NOW, &["orders", "import", file.to_str().unwrap()]);
        let output = w.run_crashing(NOW, point, &["batch"]);
        assert!(aborted(&output), "{point}: the process was not aborted");
        let released = w
            .orders(NOW)
            .iter()
            .filter(|row| row.state == "released")
            .count();
        match point {
            "batch-before-commit" => assert_eq!(released, 0, "{point}"),
            "store-after-apply" => assert!(
                released == 0 || released == 40,
                "{point}: {released} released: half-applied"
            ),
            _ => assert_eq!(released, 40, "{point}: a committed batch was lost"),
        }
        // The command that listed the orders wrote any files left due.
        if released > 0 {
            assert_log_matches_store(&w);
        }
        w.assert_store_sound(NOW);
        // The next wave finishes the work; nothing is released twice.
        w.ok(NOW, &["batch"]);
        assert_log_matches_store(&w);
        w.assert_store_sound(NOW);
        assert_eq!(w.release_log(DAY).len(), 26, "{point}");
    }
}

#[test]
fn a_second_wave_aborted_at_any_point_adds_its_releases_once() {
    for point in [
        "batch-before-commit",
        "batch-after-commit",
        "logs-after-release-log",
        "logs-after-write",
    ] {
        let w = prepared();
        let first = w.file("first.jsonl", &orders(10));
        w.ok(NOW, &["orders", "import", first.to_str().unwrap()]);
        w.ok(NOW, &["batch"]);
        let before = w.release_log(DAY).len();
        // New recipients for the second wave, placed before the cutoff.
        let later: Vec<String> = (0..5)
            .map(|i| {
                order(
                    &format!("LATE-{i}"),
                    "2026-12-01T05:00:00-08:00",
                    &format!("Late Person {}", (b'A' + i as u8) as char),
                    "9 Late St",
                    "USD",
                    &[("TSHIRT", 1, "10.00")],
                )
            })
            .collect();
        let second = w.file("second.jsonl", &later.join("\n"));
        w.ok(NOW, &["orders", "import", second.to_str().unwrap()]);
        let output = w.run_crashing(NOW, point, &["batch"]);
        assert!(aborted(&output), "{point}: the process was not aborted");
        w.assert_store_sound(NOW);
        w.ok(NOW, &["batch"]);
        assert_log_matches_store(&w);
        w.assert_store_sound(NOW);
        assert_eq!(w.release_log(DAY).len(), before + 5, "{point}");
    }
}
