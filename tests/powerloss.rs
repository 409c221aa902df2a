//! Power loss and failing fsyncs. The commands run with a recorder preloaded
//! (`tests/support/powerloss_shim.c`) that notes what each fsync made durable; then the
//! warehouse folder is put back as a disk that lost power would hold it, every write that was
//! not synced lost (`tests/support/powerloss.rs`). What a command acknowledged must be there
//! afterwards, whole; what it did not acknowledge must be there whole or not at all. A failed
//! fsync must fail the command, and nothing may be acknowledged after it.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::powerloss::Disk;
use support::{order, Seeded, Warehouse};

const NOW: &str = "2026-12-01T07:00:00-08:00";
const DAY: &str = "2026-12-01";

/// The recorder itself: a shell's writes survive exactly as far as `sync` (coreutils' fsync of
/// a file or folder) made them durable.
#[test]
fn the_simulated_disk_keeps_only_what_was_synced() {
    if Command::new("sync").arg("--version").output().is_err() {
        eprintln!("skipped: no sync(1)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut disk = Disk::new(dir.path());
    let mut shell = Command::new("sh");
    shell.current_dir(dir.path()).arg("-c").arg(
        "set -e
         mkdir sub; printf d > sub/x; sync sub/x; sync sub
         printf c > kept; sync kept
         printf f > unsynced-bytes
         sync .
         printf e >> kept
         printf a > unsynced-name
         printf b > synced-bytes-unsynced-name; sync synced-bytes-unsynced-name
         mkdir unsynced-folder",
    );
    disk.watch(&mut shell);
    let output = shell.output().unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let lost = disk.lose_power();
    let mut names: Vec<String> = walk(dir.path());
    names.sort();
    assert_eq!(names, ["kept", "sub", "sub/x", "unsynced-bytes"]);
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("kept"), "c");
    assert_eq!(read("sub/x"), "d");
    assert_eq!(read("unsynced-bytes"), "");
    // kept (appended to), unsynced-bytes, unsynced-name and synced-bytes-unsynced-name.
    assert_eq!(lost, 4);
}

/// An intake and a batch that were acknowledged (exit 0) are found whole after power fails
/// right after them: the orders, their states and releases, and the day's release log,
/// manifest and release summary, byte for byte.
#[test]
fn what_was_acknowledged_survives_power_loss() {
    let w = prepared();
    let mut disk = Disk::new(w.dir.path());
    let file = w.file("orders.jsonl", &orders("P", 0..300));
    disk.settle();
    let output = watched(
        &w,
        &disk,
        NOW,
        &["orders", "import", file.to_str().unwrap()],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let listed = listing(&w, &disk);
    assert_eq!(listed.lines().count(), 300);
    disk.lose_power();
    assert_eq!(listing(&w, &disk), listed, "the acknowledged intake");

    let output = watched(&w, &disk, NOW, &["batch", "--day", DAY]);
    assert!(output.status.success(), "{}", describe(&output));
    let listed = listing(&w, &disk);
    assert!(listed.contains(r#""state":"released""#), "{listed}");
    let log = std::fs::read(w.path(&format!("logs/releases/{DAY}.jsonl"))).unwrap();
    let manifest = std::fs::read(w.path(&format!("logs/releases/{DAY}.manifest.csv"))).unwrap();
    let summary = std::fs::read(w.path(&format!("logs/releases/{DAY}.releases.csv"))).unwrap();
    let lost = disk.lose_power();
    assert_eq!(listing(&w, &disk), listed, "the acknowledged batch");
    let read = |name: String| std::fs::read(w.path(&name)).unwrap();
    assert_eq!(read(format!("logs/releases/{DAY}.jsonl")), log);
    assert_eq!(read(format!("logs/releases/{DAY}.manifest.csv")), manifest);
    assert_eq!(read(format!("logs/releases/{DAY}.releases.csv")), summary);
    w.assert_store_sound(NOW);
    eprintln!("power loss after the batch: {lost} files lost bytes or vanished");
}

/// Rounds of intake, receipts and batches, each run with the recorder and killed with SIGKILL
/// at a moment drawn from the seed (or left to finish), then power fails. After every round:
/// every acknowledged order is there once, an intake is there whole or not at all, a receipt
/// added its quantity once or not at all, every acknowledged release is there, and
/// `check-store` passes (which also checks the release logs against the committed releases).
/// `BORDER_RELEASE_POWER_CUTS` sets the number of rounds (default 40; the long run is 1000)
/// and `BORDER_RELEASE_SEED` the seed; the seed is printed. `BORDER_RELEASE_POWER_LARGE=1` adds
/// files of 1,500 to 3,000 orders, whose commits span many of the store's pages;
/// `BORDER_RELEASE_POWER_DIRS=journal` makes names durable with any fsync, as on ext4 or XFS
/// (RELIABILITY.md says what each finds).
#[test]
fn power_lost_at_random_moments_breaks_no_invariant() {
    let rounds: usize = env_number("BORDER_RELEASE_POWER_CUTS").unwrap_or(40);
    let seed = env_number("BORDER_RELEASE_SEED").unwrap_or(0x9043_10ad) as u64;
    eprintln!(
        "power cuts: seed {seed}, {rounds} rounds (BORDER_RELEASE_SEED, BORDER_RELEASE_POWER_CUTS)"
    );
    let large = std::env::var_os("BORDER_RELEASE_POWER_LARGE").is_some();
    let mut random = Seeded(seed.max(1));
    let w = prepared();
    let mut disk = Disk::new(w.dir.path());
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    let mut released: BTreeSet<(String, String)> = BTreeSet::new();
    let mut day = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let (mut kills, mut lost_files, mut next_id) = (0usize, 0usize, 0usize);
    for round in 1..=rounds {
        let now = format!("{day}T07:00:00-08:00");
        let context = format!("seed {seed}, round {round}, day {day}");
        let before = stored_ids(&w, &now);
        let received_before = received(&w, &now);
        let delay = Duration::from_micros(1_000 + random.below(120_000));
        let mut intake: Option<BTreeSet<String>> = None;
        let mut receipt = None;
        let ended = match random.below(10) {
            0..=4 => {
                // With BORDER_RELEASE_POWER_LARGE, now and then a file of several megabytes.
                let count = if large && random.below(8) == 0 {
                    1_500 + random.below(1_500) as usize
                } else {
                    1 + random.below(150) as usize
                };
                let ids: BTreeSet<String> = (next_id..next_id + count)
                    .map(|n| format!("Q-{n:05}"))
                    .collect();
                let numbers = next_id..next_id + count;
                let text = if count > 150 {
                    large_orders("Q", numbers)
                } else {
                    orders("Q", numbers)
                };
                let file = w.file(&format!("orders-{round}.jsonl"), &text);
                next_id += count;
                intake = Some(ids);
                disk.settle();
                run_or_kill(&w, &disk, &now, &["orders", "import", path(&file)], delay)
            }
            5..=6 => {
                let qty = 1 + random.below(40);
                let file = w.file(
                    &format!("receipt-{round}.csv"),
                    &format!("sku,qty\nTSHIRT,{qty}\n"),
                );
                receipt = Some(qty);
                disk.settle();
                run_or_kill(&w, &disk, &now, &["stock", "receive", path(&file)], delay)
            }
            _ => {
                if random.below(3) == 0 {
                    day = day.succ_opt().unwrap();
                }
                let now = format!("{day}T07:00:00-08:00");
                disk.settle();
                let ended = run_or_kill(
                    &w,
                    &disk,
                    &now,
                    &["batch", "--day", &day.to_string()],
                    delay,
                );
                if ended.as_ref().is_some_and(|output| output.status.success()) {
                    // What the batch acknowledged: read before the power fails.
                    released.extend(releases(&listing(&w, &disk)));
                }
                ended
            }
        };
        if ended.is_none() {
            kills += 1;
        }
        let acknowledged_now = ended.as_ref().is_some_and(|output| {
            output.status.success() || output.status.code() == Some(3) // 3: some lines rejected
        });
        lost_files += disk.lose_power();

        let now = format!("{day}T07:00:00-08:00");
        let check = w.run_at(&now, &["check-store"]);
        assert!(check.status.success(), "{context}: {}", describe(&check));
        let after = stored_ids(&w, &now);
        if let Some(ids) = intake {
            if acknowledged_now {
                acknowledged.extend(ids.iter().cloned());
            }
            let new: BTreeSet<String> = after.difference(&before).cloned().collect();
            assert!(
                new.is_empty() || new == ids,
                "{context}: an intake is whole or not at all: {} of {} orders there",
                new.len(),
                ids.len()
            );
        }
        for id in &acknowledged {
            assert!(
                after.contains(id),
                "{context}: acknowledged order {id} lost"
            );
        }
        let received_after = received(&w, &now);
        let added = received_after - received_before;
        match receipt {
            Some(qty) if acknowledged_now => assert_eq!(added, qty, "{context}: receipt"),
            Some(qty) => assert!(added == 0 || added == qty, "{context}: receipt {added}"),
            None => assert_eq!(added, 0, "{context}: stock received moved"),
        }
        let now_released = releases(&listing(&w, &disk));
        for release in &released {
            assert!(
                now_released.contains(release),
                "{context}: acknowledged release {release:?} lost"
            );
        }
        released = now_released;
    }
    let store_bytes = std::fs::metadata(w.path("data/store.redb")).map_or(0, |file| file.len());
    eprintln!(
        "power cuts: {rounds} rounds, {kills} killed, {lost_files} files lost bytes or vanished, {} orders acknowledged, {} orders released, a store of {store_bytes} bytes, seed {seed}: no invariant broken",
        acknowledged.len(),
        released.len()
    );
}

/// A disk that fails an fsync with EIO, at each fsync of an intake and of a batch in turn
/// (each that has something to write): the command fails and says why, unless the work was
/// durable before that fsync; once power has failed too, the store is sound, holds what was
/// acknowledged, holds the intake or the batch whole or not at all, and the same work then goes
/// in once.
#[test]
fn a_failed_fsync_fails_the_command_and_is_never_taken_for_success() {
    let template = prepared();
    let file = template.file("orders.jsonl", &orders("E", 0..200));
    let (mut failures, mut after_acknowledged) = (0, 0);
    for (work, args) in [
        ("intake", vec!["orders", "import", path(&file)]),
        ("batch", vec!["batch", "--day", DAY]),
    ] {
        for nth in 1.. {
            let w = copy_of(&template);
            if work == "batch" {
                w.ok(NOW, &["orders", "import", path(&file)]);
            }
            let mut disk = Disk::new(w.dir.path());
            let mut command = w.process(NOW, &args);
            disk.watch(&mut command);
            command.env("POWERLOSS_FAIL_FSYNC", nth.to_string());
            let output = command.output().unwrap();
            let err = String::from_utf8_lossy(&output.stderr);
            if !err.contains("powerloss shim: fsync") {
                assert!(output.status.success(), "{}", describe(&output));
                assert!(nth > 3, "{work}: only {} fsyncs", nth - 1);
                break;
            }
            failures += 1;
            let context = format!("{work}, fsync {nth} failed");
            // 4: the batch was committed, its files were not written (the next command
            // writes them).
            let committed = output.status.code() == Some(4);
            let acknowledged = output.status.success() || committed;
            if committed {
                assert!(
                    err.contains("Input/output error"),
                    "{context}: the error is named: {err}"
                );
            } else if acknowledged {
                // The fsync failed after the work was durable (the store's closing): what was
                // acknowledged must be there after power loss.
                after_acknowledged += 1;
            } else {
                assert_eq!(
                    output.status.code(),
                    Some(1),
                    "{context}: {}",
                    describe(&output)
                );
                assert!(
                    err.contains("Input/output error"),
                    "{context}: the error is named: {err}"
                );
                // Nothing was committed: the day's files, written beside the commit under
                // temporary names, are gone with it.
                let written: Vec<_> = std::fs::read_dir(w.path("logs/releases"))
                    .map(|dir| dir.map(|entry| entry.unwrap().file_name()).collect())
                    .unwrap_or_default();
                assert!(written.is_empty(), "{context}: left {written:?}");
            }
            disk.lose_power();
            let check = w.run_at(NOW, &["check-store"]);
            assert!(check.status.success(), "{context}: {}", describe(&check));
            let listed = w.orders(NOW);
            let released = listed.iter().filter(|row| row.state == "released").count();
            if work == "intake" {
                assert!(
                    listed.len() == 200 || (!acknowledged && listed.is_empty()),
                    "{context}: {} orders",
                    listed.len()
                );
                w.ok(NOW, &args);
                assert_eq!(w.orders(NOW).len(), 200, "{context}");
            } else {
                assert_eq!(listed.len(), 200, "{context}");
                assert!(!acknowledged || released > 0, "{context}: the batch lost");
                let again = w.ok(NOW, &args);
                let after = w.orders(NOW);
                let released_after = after.iter().filter(|row| row.state == "released").count();
                assert!(released_after > 0, "{context}: {again}");
                assert!(
                    released == 0 || released == released_after,
                    "{context}: {released} released before, {released_after} after"
                );
            }
            w.assert_store_sound(NOW);
        }
    }
    eprintln!(
        "{failures} failed fsyncs: {} failed their command, {after_acknowledged} came after the work was durable",
        failures - after_acknowledged
    );
}

/// A warehouse with the test catalogue and 1,000 T-shirts.
fn prepared() -> Warehouse {
    let w = Warehouse::with_items(NOW);
    let stock = w.file("stock.csv", "sku,qty\nTSHIRT,1000\n");
    w.ok(NOW, &["stock", "receive", path(&stock)]);
    w
}

/// A copy of a warehouse's folder, as a warehouse of its own.
fn copy_of(template: &Warehouse) -> Warehouse {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", template.dir.path().display()))
        .arg(dir.path())
        .status()
        .expect("run cp");
    assert!(status.success());
    Warehouse { dir }
}

/// Orders `<prefix>-<n>` for `numbers`, a T-shirt each, to one of 40 people.
fn orders(prefix: &str, numbers: std::ops::Range<usize>) -> String {
    numbers
        .map(|n| {
            order(
                &format!("{prefix}-{n:05}"),
                "2026-11-30T10:00:00-08:00",
                &format!("Person {}", n % 40),
                &format!("{} Main St", n % 40),
                "USD",
                &[("TSHIRT", 1 + (n % 3) as u32, "100.00")],
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Orders of three lines to long addresses: an intake of 2,000 of them is a commit of about
/// a megabyte.
fn large_orders(prefix: &str, numbers: std::ops::Range<usize>) -> String {
    numbers
        .map(|n| {
            order(
                &format!("{prefix}-{n:05}"),
                "2026-11-30T10:00:00-08:00",
                &format!("Person {} of the long-named household", n % 40),
                &format!(
                    "{} Main Street, Building {n}, Floor 3, Suite 300, Rear Entrance",
                    n % 40
                ),
                "USD",
                &[
                    ("TSHIRT", 1, "10.00"),
                    ("JEANS", 1, "20.00"),
                    ("BOOTS", 1, "30.00"),
                ],
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs a command with the recorder.
fn watched(w: &Warehouse, disk: &Disk, now: &str, args: &[&str]) -> Output {
    let mut command = w.process(now, args);
    disk.watch(&mut command);
    command.output().expect("run border-release")
}

/// `orders list --json`, run with the recorder (it may write the release files a batch left
/// due, which must then be synced to count).
fn listing(w: &Warehouse, disk: &Disk) -> String {
    let output = watched(w, disk, NOW, &["orders", "list", "--json"]);
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8(output.stdout).unwrap()
}

/// Runs a command with the recorder and kills it with SIGKILL after `delay` unless it ended
/// first: its output when it ended on its own.
fn run_or_kill(
    w: &Warehouse,
    disk: &Disk,
    now: &str,
    args: &[&str],
    delay: Duration,
) -> Option<Output> {
    let mut command = w.process(now, args);
    disk.watch(&mut command);
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start border-release");
    let start = Instant::now();
    while start.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    // It may have ended on its own just before the kill.
    output.status.code().map(|_| output)
}

fn stored_ids(w: &Warehouse, now: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for row in w.orders(now) {
        assert!(ids.insert(row.order_id.clone()), "{} twice", row.order_id);
    }
    ids
}

/// The T-shirts received so far, from `stock list`.
fn received(w: &Warehouse, now: &str) -> u64 {
    w.ok(now, &["stock", "list"])
        .lines()
        .find(|line| line.starts_with("TSHIRT "))
        .and_then(|line| line.split("received ").nth(1))
        .and_then(|rest| rest.split(',').next())
        .and_then(|number| number.trim().parse().ok())
        .expect("TSHIRT in stock list")
}

/// (release id, order id) of every released order in an `orders list --json`.
fn releases(listed: &str) -> BTreeSet<(String, String)> {
    listed
        .lines()
        .filter_map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let release = value["release_id"].as_str()?.to_owned();
            Some((release, value["order_id"].as_str()?.to_owned()))
        })
        .collect()
}

/// Every file and folder under `dir`, relative to it.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        out.push(name.clone());
        if entry.path().is_dir() {
            out.extend(
                walk(&entry.path())
                    .into_iter()
                    .map(|n| format!("{name}/{n}")),
            );
        }
    }
    out
}

fn path(file: &Path) -> &str {
    file.to_str().unwrap()
}

fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|text| text.parse().ok())
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The promise for large commits: in a store that large intakes have filled, one more large
/// intake is stopped right after each of its fsyncs in turn (`POWERLOSS_STOP_AFTER`), and power
/// fails there; the store must open and hold that intake whole or not at all.
/// `BORDER_RELEASE_POWER_PASSES` sets how many passes over the fsyncs it makes (default 1; the
/// store's fsyncs come in the same order every run) and `BORDER_RELEASE_POWER_FILL` how many
/// intakes of 2,000 orders fill the store first (default 10).
#[test]
fn a_large_intake_survives_power_loss_after_any_of_its_fsyncs() {
    let passes = env_number("BORDER_RELEASE_POWER_PASSES").unwrap_or(1);
    let fill = env_number("BORDER_RELEASE_POWER_FILL").unwrap_or(10);
    let template = prepared();
    for part in 0..fill {
        let file = template.file(
            &format!("fill-{part}.jsonl"),
            &large_orders("F", part * 2_000..(part + 1) * 2_000),
        );
        template.ok(NOW, &["orders", "import", path(&file)]);
    }
    let stored = template.orders(NOW).len();
    let file = template.file("last.jsonl", &large_orders("L", 0..2_000));
    let mut failures = Vec::new();
    let mut points = 0;
    for pass in 1..=passes {
        for nth in 1.. {
            let w = copy_of(&template);
            let mut disk = Disk::new(w.dir.path());
            let mut command = w.process(NOW, &["orders", "import", path(&file)]);
            disk.watch(&mut command);
            let output = command
                .env("POWERLOSS_STOP_AFTER", nth.to_string())
                .output()
                .unwrap();
            disk.lose_power();
            points += 1;
            let listed = w.run_at(NOW, &["orders", "list", "--json"]);
            let count = String::from_utf8_lossy(&listed.stdout).lines().count();
            if !listed.status.success() {
                failures.push(format!(
                    "pass {pass}, fsync {nth}: the store cannot be read: {}",
                    String::from_utf8_lossy(&listed.stderr).trim()
                ));
            } else if count != stored && count != stored + 2_000 {
                failures.push(format!(
                    "pass {pass}, fsync {nth}: {} of the intake's 2,000 orders",
                    count as i64 - stored as i64
                ));
            }
            if output.status.code().is_some() {
                break; // the intake ended before its nth fsync
            }
        }
    }
    eprintln!(
        "{points} stopping points over {passes} passes, {} broken",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
