//! The daemon, `border-release serve`, tested from outside through the built binary: it takes in
//! spool files, answers every command of the command line through its API while it holds the
//! store, reloads its config on SIGHUP (refusing a bad one), and stops cleanly on SIGTERM; killed
//! at any moment, it loses nothing it acknowledged and applies no spool file twice.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use support::powerloss::Disk;
use support::{order, orders_to_many, read_one_line_and_close, stderr, utf16, Warehouse, ITEMS};

/// A duty table for the test catalogue: jeans known, T-shirts unknown (no mfn row).
const DUTIES: &str = "hts_prefix,origin,program,rate_percent,from,usmca_exempt,source
6203,*,mfn,16.6,2026-01-01,yes,HTSUS 6203.42.40
62,*,surcharge,10,2026-01-01,yes,example
";

/// The pinned clock of every process of these tests: a Monday morning in Tijuana.
const NOW: &str = "2026-11-30T10:00:00-08:00";
const DAY: &str = "2026-11-30";
const TOKEN: &str = "serve-test-token-0123456789";
/// How long anything the daemon does on its own (a spool poll, a reload) may take here.
const PATIENCE: Duration = Duration::from_secs(15);
/// The longest a stop may take, from SIGTERM to exit (README, `daemon::STOP_DEADLINE`).
const STOP_DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn the_daemon_takes_in_the_spool_answers_commands_reloads_and_stops() {
    let w = daemon_warehouse();
    fs::write(w.path("api-token"), format!("{TOKEN}\n")).expect("write the token file");
    let mut daemon = Daemon::start(&w);

    // The open endpoints answer without a token; the others want it.
    let (status, body) = daemon.get("/healthz", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""status":"ok""#), "{body}");
    assert_eq!(daemon.get("/metrics", None).0, 200);
    assert_eq!(daemon.get("/v1/orders", None).0, 401);
    assert_eq!(
        daemon.get("/v1/orders", Some("not-the-token-at-all")).0,
        401
    );

    // A second daemon on the same socket is refused, and the first one keeps running.
    let (status, log) = serve_until_exit(&w, "second-serve.log");
    assert!(!status.success(), "{status:?}\n{log}");
    assert!(
        log.contains("api.listen") && log.contains("is in use by another process"),
        "{log}"
    );
    assert_eq!(daemon.get("/healthz", None).0, 200);

    // The spool: the catalogue first, then stock and orders. A file still being written (.tmp)
    // is left alone; a file of no known kind is rejected whole.
    drop_in_spool(&w, "items-1.csv", ITEMS);
    daemon.wait_for_file(&w.path("spool/done/items-1.csv"));
    drop_in_spool(&w, "stock-receive-1.csv", "sku,qty\nTSHIRT,10\nJEANS,10\n");
    fs::write(
        w.path("spool/inbox/orders-2.jsonl.tmp"),
        "still being written\n",
    )
    .expect("write a .tmp file");
    drop_in_spool(&w, "notes.txt", "not an input file\n");
    drop_in_spool(&w, "orders-1.jsonl", &spool_orders());
    daemon.wait_for_file(&w.path("spool/done/stock-receive-1.csv"));
    daemon.wait_for_file(&w.path("spool/rejected/orders-1.jsonl.report.txt"));
    daemon.wait_for_file(&w.path("spool/rejected/notes.txt.report.txt"));

    // The orders file had one bad line (line 3): the file and its report go to rejected/, the
    // report names that line, and `.rejected.jsonl` holds that line alone, to fix and resend.
    assert!(w.path("spool/rejected/orders-1.jsonl").is_file());
    assert!(!w.path("spool/done/orders-1.jsonl").exists());
    let report = read(&w.path("spool/rejected/orders-1.jsonl.report.txt"));
    assert!(
        report.contains("orders-1.jsonl: 3 accepted, 0 unchanged, 1 rejected"),
        "{report}"
    );
    assert!(
        report.contains("orders-1.jsonl:line 3: order BAD1:"),
        "{report}"
    );
    assert!(report.contains("unknown SKU \"NOPE\""), "{report}");
    let rejected_lines = read(&w.path("spool/rejected/orders-1.rejected.jsonl"));
    assert_eq!(rejected_lines.lines().count(), 1, "{rejected_lines}");
    assert!(
        rejected_lines.contains(r#""order_id":"BAD1""#),
        "{rejected_lines}"
    );
    let notes_report = read(&w.path("spool/rejected/notes.txt.report.txt"));
    assert!(
        notes_report.contains("not a known kind of file"),
        "{notes_report}"
    );
    assert!(notes_report.contains("nothing of this file was applied"));
    // Nothing is left in the inbox but the file still being written.
    assert_eq!(
        file_names(&w.path("spool/inbox")),
        vec!["orders-2.jsonl.tmp".to_owned()]
    );

    // Commands go through the daemon's API and print what they print run directly; none is
    // told that the store is in use.
    let check = via_daemon(&w, &["check-store"]);
    assert!(check.contains("every invariant holds"), "{check}");
    let stock = via_daemon(&w, &["stock", "list", "--json"]);
    assert!(
        stock.contains(r#"{"sku":"TSHIRT","on_hand":10}"#),
        "{stock}"
    );
    let plan = via_daemon(&w, &["plan", "--json"]);
    assert!(plan.contains(r#""not_due":1"#), "{plan}");

    // The batch through the command line: A1 and B1 are released, one release each; C1 was
    // placed after the day's 06:00 cutoff and waits.
    let batch = via_daemon(&w, &["batch"]);
    assert!(
        batch.contains(&format!("batch for {DAY} committed")),
        "{batch}"
    );
    assert!(
        batch.contains("releases: 2 (2 orders, 84.98 USD)"),
        "{batch}"
    );
    assert!(
        batch.contains(&format!("logs/releases/{DAY}.jsonl")),
        "{batch}"
    );
    let releases = w.release_log(DAY);
    let released: Vec<(String, String, String)> = releases
        .iter()
        .map(|release| {
            (
                release["release_id"].as_str().unwrap().to_owned(),
                release["orders"].to_string(),
                release["value_usd"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        released,
        vec![
            (
                format!("{DAY}-000001"),
                r#"["A1"]"#.to_owned(),
                "39.98".to_owned()
            ),
            (
                format!("{DAY}-000002"),
                r#"["B1"]"#.to_owned(),
                "45.00".to_owned()
            ),
        ]
    );
    assert!(releases
        .iter()
        .all(|release| release["policy"] == "section-321" && release["day"] == DAY));
    daemon.wait_for_log("batch committed");

    // `orders list --json` through the daemon (support's `orders` runs it) shows the released
    // orders with their release.
    let rows = w.orders(NOW);
    let state_of = |id: &str| {
        let row = rows.iter().find(|row| row.order_id == id).unwrap();
        (
            row.state.as_str(),
            row.release_id.as_deref(),
            row.day.as_deref(),
        )
    };
    let first = format!("{DAY}-000001");
    let second = format!("{DAY}-000002");
    assert_eq!(
        state_of("A1"),
        ("released", Some(first.as_str()), Some(DAY))
    );
    assert_eq!(
        state_of("B1"),
        ("released", Some(second.as_str()), Some(DAY))
    );
    assert_eq!(state_of("C1"), ("pending", None, None));
    assert!(rows.iter().all(|row| row.order_id != "BAD1"), "{rows:?}");

    // A bad config is refused on SIGHUP, the old one stays, and the daemon still answers.
    let good_config = read(&w.config());
    let bad_config = good_config.replace(
        "name = \"test-tijuana\"\n",
        "name = \"test-tijuana\"\nsurprise = true\n",
    );
    assert_ne!(bad_config, good_config, "the config has the warehouse name");
    fs::write(w.config(), bad_config).expect("write the bad config");
    daemon.signal("HUP");
    daemon.wait_for_log("the new config is refused");
    assert!(
        daemon.log().contains("warehouse.surprise"),
        "{}",
        daemon.log()
    );
    assert_eq!(daemon.get("/healthz", None).0, 200);
    let (status, body) = daemon.get("/v1/orders", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""order_id":"A1""#), "{body}");
    let (_, metrics) = daemon.get("/metrics", None);
    assert!(
        metrics.contains(r#"border_release_config_reloads_total{outcome="refused"} 1"#),
        "{metrics}"
    );

    // A good config is taken on SIGHUP: a new warehouse name, and a 09:00 cutoff that makes
    // C1 (placed at 08:00) due in a plan of the day made after the reload.
    let new_config = good_config
        .replace("name = \"test-tijuana\"", "name = \"test-tijuana-2\"")
        .replace("cutoff = \"06:00\"", "cutoff = \"09:00\"");
    assert!(new_config.contains("test-tijuana-2") && new_config.contains("09:00"));
    fs::write(w.config(), new_config).expect("write the new config");
    daemon.signal("HUP");
    daemon.wait_for_log("config reloaded");
    assert!(
        !daemon.log().contains("take effect at the next start"),
        "neither the store, the socket nor the token file changed:\n{}",
        daemon.log()
    );
    let plan = via_daemon(&w, &["plan", "--json"]);
    assert!(plan.contains(r#""orders":["C1"]"#), "{plan}");
    assert!(plan.contains(r#""not_due":0"#), "{plan}");

    // Orders sent with `orders import` through the daemon: the good line is kept and the bad
    // one listed, with exit code 3; a cancel goes through too.
    let extra = w.file("extra.jsonl", &extra_orders());
    let output = w.run_at(NOW, &["orders", "import", extra.to_str().unwrap()]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(!err.contains("in use"), "{err}");
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("extra.jsonl: 1 accepted, 0 unchanged, 1 rejected"),
        "{}",
        describe(&output)
    );
    assert!(err.contains("extra.jsonl:line 2: order BAD2:"), "{err}");
    let cancel = via_daemon(&w, &["orders", "cancel", "D1"]);
    assert!(cancel.contains("order D1 cancelled"), "{cancel}");

    // What the read-only commands print through the daemon, to compare once it is gone.
    let printed_via_daemon: Vec<String> =
        READ_ONLY.iter().map(|args| via_daemon(&w, args)).collect();

    // SIGTERM: the daemon stops within the deadline, exits 0, and says so.
    daemon.signal("TERM");
    let status = daemon.wait_for_exit(STOP_DEADLINE);
    assert!(status.success(), "{status:?}\n{}", daemon.log());
    assert!(daemon.log().contains("stopped"), "{}", daemon.log());
    assert!(!daemon.socket.exists(), "the socket is removed at stop");
    // The daemon's log (at its default level) names orders, files and releases, never a
    // consignee's name or street.
    let log = daemon.log();
    for personal in [
        "Ana Ruiz",
        "1200 Market St",
        "Bea Dee",
        "7 Palm Ave",
        "Cy Young",
    ] {
        assert!(
            !log.contains(personal),
            "{personal:?} in the daemon's log:\n{log}"
        );
    }
    assert!(log.contains("release committed"), "{log}");

    // With the daemon gone, commands open the store themselves: the store is sound, and each
    // read-only command prints what it printed through the daemon.
    w.assert_store_sound(NOW);
    for (args, via_daemon) in READ_ONLY.iter().zip(&printed_via_daemon) {
        assert_eq!(&w.ok(NOW, args), via_daemon, "border-release {args:?}");
    }
    assert!(printed_via_daemon[0].contains(r#""state":"cancelled""#));
}

/// Commands that change nothing, whose output must not depend on whether the daemon runs.
const READ_ONLY: &[&[&str]] = &[
    &["orders", "list", "--json"],
    &["orders", "list"],
    &["orders", "list", "--state", "released", "--json"],
    &["orders", "show", "A1", "--json"],
    &["orders", "show", "A1"],
    &["orders", "show", "C1", "--json"],
    &["orders", "show", "C1"],
    &["stock", "list", "--json"],
    &["stock", "list"],
    &["items", "list", "--json"],
    &["items", "list"],
    &["plan", "--json"],
    &["plan"],
    &["check-store"],
];

#[test]
fn serve_refuses_to_start_without_its_token() {
    let w = daemon_warehouse();

    // No token file at all.
    let (status, log) = serve_until_exit(&w, "serve.log");
    assert!(!status.success(), "{status:?}\n{log}");
    assert!(
        log.contains("api.token_file") && log.contains(&w.path("api-token").display().to_string()),
        "{log}"
    );
    assert!(log.contains("cannot read the API token"), "{log}");

    // A token shorter than 16 characters.
    fs::write(w.path("api-token"), "short\n").expect("write the token file");
    let (status, log) = serve_until_exit(&w, "serve.log");
    assert!(!status.success(), "{status:?}\n{log}");
    assert!(log.contains("api.token_file"), "{log}");
    assert!(log.contains("at least 16 characters"), "{log}");
}

/// A receipt file is not idempotent (taken in twice, it adds twice), so it shows whether a
/// spool file committed just before a crash is applied again at restart. It must not be: the
/// daemon finds the file's mark in the store and only moves it. Aborted before its commit, it
/// is applied at restart, once.
#[test]
fn a_spool_file_is_applied_once_across_a_crash_at_any_step() {
    let w = daemon_warehouse();
    fs::write(w.path("api-token"), format!("{TOKEN}\n")).expect("write the token file");
    drop_in_spool_now(&w, "items-1.csv", ITEMS);
    let daemon = Daemon::start(&w);
    drop(daemon);
    for (n, point) in [
        "intake-before-commit",
        "store-after-apply",
        "intake-after-commit",
        "spool-before-move",
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("stock-receive-{n}.csv");
        let mut crashing = Daemon::spawn(&w, &format!("crash-{n}.log"), Some(point));
        crashing.wait_for_log("border-release is ready");
        drop_in_spool(&w, &name, "sku,qty\nTSHIRT,5\n");
        let status = crashing.wait_for_exit(PATIENCE);
        assert!(!status.success(), "the daemon aborted at {point}");
        assert!(
            w.path("spool/inbox").join(&name).exists()
                || w.path("spool/processing").join(&name).exists(),
            "{name} is still in the spool, not yet in done/"
        );

        let mut daemon = Daemon::start(&w);
        daemon.wait_for_file(&w.path("spool/done").join(&name));
        let stock = via_daemon(&w, &["stock", "list", "--json"]);
        let expected = format!(r#"{{"sku":"TSHIRT","on_hand":{}}}"#, 5 * (n + 1));
        assert!(
            stock.contains(&expected),
            "after a crash at {point}: {stock}"
        );
        drop(daemon);
    }
    assert!(w.run_at(NOW, &["check-store"]).status.success());
}

/// Rounds of work (receipt files in the spool, order files through the command line) with the
/// daemon killed by SIGKILL at a moment drawn from a fixed seed. Afterwards every acknowledged
/// order is in the store once, every receipt file was added once, and every invariant holds.
#[test]
fn a_daemon_killed_at_random_moments_keeps_what_it_acknowledged() {
    let w = daemon_warehouse();
    fs::write(w.path("api-token"), format!("{TOKEN}\n")).expect("write the token file");
    drop_in_spool_now(&w, "items-1.csv", ITEMS);
    let mut seed: u64 = 0x5eed_0b0d;
    let mut random = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let rounds = 8;
    let mut acknowledged: Vec<String> = Vec::new();
    for round in 0..rounds {
        let mut daemon = Daemon::start(&w);
        drop_in_spool(
            &w,
            &format!("stock-receive-{round:02}.csv"),
            "sku,qty\nJEANS,3\n",
        );
        let orders: Vec<String> = (0..20)
            .map(|n| {
                order(
                    &format!("K-{round}-{n}"),
                    "2026-11-29T09:00:00-08:00",
                    &format!("Buyer {round} {n}"),
                    &format!("{n} Birch St"),
                    "USD",
                    &[("TSHIRT", 1, "10.00")],
                )
            })
            .collect();
        let file = w.file(&format!("orders-{round}.jsonl"), &orders.join("\n"));
        let delay = Duration::from_millis(random(120));
        let importer = {
            let file = file.clone();
            let dir = w.dir.path().to_owned();
            let config = w.config();
            std::thread::spawn(move || {
                Command::new(assert_cmd::cargo::cargo_bin("border-release"))
                    .current_dir(dir)
                    .env("BORDER_RELEASE_FAKE_NOW", NOW)
                    .arg("--config")
                    .arg(config)
                    .args(["orders", "import"])
                    .arg(file)
                    .output()
                    .expect("run orders import")
            })
        };
        std::thread::sleep(delay);
        daemon.signal("KILL");
        let _ = daemon.wait_for_exit(PATIENCE);
        let output = importer.join().unwrap();
        if output.status.success() {
            acknowledged.extend((0..20).map(|n| format!("K-{round}-{n}")));
        }
    }
    // A last, clean run takes in whatever the kills left in the inbox.
    assert_each_once(&w, &acknowledged, 3 * rounds);
    eprintln!(
        "{rounds} kills; {} of {} imported orders acknowledged",
        acknowledged.len(),
        rounds * 20
    );
}

/// The systemd notify protocol, with the test standing in for systemd: READY=1 once the API
/// answers, WATCHDOG=1 at half the interval asked for, RELOADING=1 with MONOTONIC_USEC then
/// READY=1 around a reload, STOPPING=1 at SIGTERM.
#[test]
fn the_daemon_speaks_the_systemd_notify_protocol() {
    let w = daemon_warehouse();
    fs::write(w.path("api-token"), format!("{TOKEN}\n")).expect("write the token file");
    let socket = w.path("notify.sock");
    let systemd = std::os::unix::net::UnixDatagram::bind(&socket).expect("bind the notify socket");
    systemd
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut command = serve_command(&w, "serve.log");
    command
        .env("NOTIFY_SOCKET", &socket)
        .env("WATCHDOG_USEC", "200000");
    let mut daemon = Daemon {
        child: command.spawn().expect("start border-release serve"),
        log: w.path("serve.log"),
        socket: w.path("api.sock"),
    };
    let mut heard: Vec<String> = Vec::new();
    let listen_until = |what: &str, heard: &mut Vec<String>, done: &dyn Fn(&[String]) -> bool| {
        let start = Instant::now();
        let mut buffer = [0u8; 4096];
        while !done(heard) {
            assert!(start.elapsed() < PATIENCE, "no {what}; heard {heard:?}");
            if let Ok(length) = systemd.recv(&mut buffer) {
                heard.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
            }
        }
    };
    listen_until("READY=1", &mut heard, &|heard| {
        heard.iter().any(|m| m.lines().any(|l| l == "READY=1"))
    });
    listen_until("two keep-alives", &mut heard, &|heard| {
        heard
            .iter()
            .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
            .count()
            >= 2
    });
    daemon.wait_for_log("border-release is ready");
    heard.clear();
    daemon.signal("HUP");
    listen_until("RELOADING=1 then READY=1", &mut heard, &|heard| {
        let reloading = heard.iter().position(|m| {
            m.lines().any(|l| l == "RELOADING=1")
                && m.lines().any(|l| l.starts_with("MONOTONIC_USEC="))
        });
        reloading.is_some_and(|at| {
            heard[at..]
                .iter()
                .any(|m| m.lines().any(|l| l == "READY=1"))
        })
    });
    heard.clear();
    daemon.signal("TERM");
    listen_until("STOPPING=1", &mut heard, &|heard| {
        heard.iter().any(|m| m.lines().any(|l| l == "STOPPING=1"))
    });
    assert!(daemon.wait_for_exit(STOP_DEADLINE).success());
}

/// A disk that refuses the daemon's writes (a file size limit: EFBIG, as a full disk gives
/// ENOSPC): the command that sent the orders is told and exits 1, the daemon says it is unhealthy
/// (so that systemd's watchdog restarts it) instead of acknowledging anything more, and once
/// started again on a disk that takes writes, nothing of the refused commit is there and the
/// same orders go in whole.
#[test]
fn a_daemon_whose_disk_refuses_a_commit_acknowledges_nothing_and_says_it_is_unhealthy() {
    if Command::new("bash").arg("-c").arg("true").status().is_err() {
        eprintln!("skipped: no bash to set the file size limit with");
        return;
    }
    let w = daemon_warehouse();
    fs::write(w.path("api-token"), format!("{TOKEN}\n")).expect("write the token file");
    drop_in_spool_now(&w, "items-1.csv", ITEMS);
    drop(Daemon::start(&w));
    let orders: Vec<String> = (0..30_000)
        .map(|n| {
            order(
                &format!("F-{n:05}"),
                "2026-11-29T09:00:00-08:00",
                &format!("Buyer {n}"),
                &format!("{n} Cedar St"),
                "USD",
                &[("TSHIRT", 1, "10.00")],
            )
        })
        .collect();
    let file = w.file("orders-big.jsonl", &orders.join("\n"));

    // The daemon under a file size limit of a megabyte: the store opens, the orders do not fit.
    let mut limited = Command::new("bash");
    limited
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 1024; exec \"$@\"")
        .arg("bash")
        .arg(assert_cmd::cargo::cargo_bin("border-release"))
        .arg("--config")
        .arg(w.config())
        .arg("serve")
        .current_dir(w.dir.path())
        .env_remove("BORDER_RELEASE_CRASH_AT")
        .env_remove("NOTIFY_SOCKET")
        .env("BORDER_RELEASE_FAKE_NOW", NOW)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(w.path("limited.log")).unwrap());
    let mut daemon = Daemon {
        child: limited.spawn().expect("start the limited daemon"),
        log: w.path("limited.log"),
        socket: w.path("api.sock"),
    };
    daemon.wait_for_log("border-release is ready");
    let output = w.run_at(NOW, &["orders", "import", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        stderr(&output).contains("File too large"),
        "{}",
        describe(&output)
    );
    let (status, body) = daemon.get("/healthz", None);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("failing"), "{body}");
    drop(daemon);

    let daemon = Daemon::start(&w);
    assert_eq!(via_daemon(&w, &["orders", "list", "--json"]), "");
    via_daemon(&w, &["orders", "import", file.to_str().unwrap()]);
    assert_eq!(
        via_daemon(&w, &["orders", "list", "--json"])
            .lines()
            .count(),
        30_000
    );
    drop(daemon);
    let check = w.run_at(NOW, &["check-store"]);
    assert!(check.status.success(), "{}", describe(&check));
}

/// The disk fails the first fsync with something to write once orders are being posted from
/// eight connections: the daemon must notice (no post answered 200 after one was refused, and
/// `/healthz` says it is failing), and after power loss every post answered 200 is there.
#[test]
fn a_failed_fsync_stops_the_daemon_acknowledging() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let w = daemon_warehouse();
    fs::write(w.path("api-token"), format!("{TOKEN}\n")).expect("write the token file");
    drop_in_spool_now(&w, "items-1.csv", ITEMS);
    drop(Daemon::start(&w));
    let mut disk = Disk::new(w.dir.path());
    let mut command = serve_command(&w, "serve.log");
    disk.watch(&mut command);
    let cue = std::env::temp_dir().join(format!("powerloss-cue-{}", std::process::id()));
    let _ = fs::remove_file(&cue);
    command.env("POWERLOSS_FAIL_WHEN", &cue);
    let mut daemon = Daemon {
        child: command.spawn().expect("start border-release serve"),
        log: w.path("serve.log"),
        socket: w.path("api.sock"),
    };
    daemon.wait_for_log("border-release is ready");

    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let answered = std::sync::Arc::new(AtomicUsize::new(0));
    let refused_threads = std::sync::Arc::new(AtomicUsize::new(0));
    let posters: Vec<_> = (0..8)
        .map(|thread| {
            let socket = daemon.socket.clone();
            let (stop, answered, refused_threads) =
                (stop.clone(), answered.clone(), refused_threads.clone());
            std::thread::spawn(move || {
                let mut answers: Vec<(String, u16)> = Vec::new();
                for n in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let id = format!("W-{thread}-{n:05}");
                    let body = order(
                        &id,
                        "2026-11-29T09:00:00-08:00",
                        &format!("Buyer {thread} {n}"),
                        &format!("{n} Walnut St"),
                        "USD",
                        &[("TSHIRT", 1, "10.00")],
                    );
                    let status = post(&socket, "/v1/orders?name=api", &body);
                    if status != 200 && answers.iter().all(|(_, status)| *status == 200) {
                        refused_threads.fetch_add(1, Ordering::SeqCst);
                    }
                    answers.push((id, status));
                    answered.fetch_add(1, Ordering::SeqCst);
                }
                answers
            })
        })
        .collect();
    daemon.wait_until("posts to be answered", || {
        answered.load(Ordering::SeqCst) >= 200
    });
    fs::write(&cue, "").expect("write the cue");
    daemon.wait_for_log("powerloss shim: fsync");
    daemon.wait_until("every connection to be refused", || {
        refused_threads.load(Ordering::SeqCst) == 8
    });
    stop.store(true, Ordering::SeqCst);
    let answers: Vec<Vec<(String, u16)>> = posters
        .into_iter()
        .map(|poster| poster.join().expect("poster"))
        .collect();
    let _ = fs::remove_file(&cue);
    let (status, body) = daemon.get("/healthz", None);
    assert_eq!(status, 503, "{body}\n{}", daemon.log());
    daemon.signal("KILL");
    let _ = daemon.wait_for_exit(PATIENCE);
    disk.lose_power();

    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for thread in &answers {
        let first_refused = thread.iter().position(|(_, status)| *status != 200);
        if let Some(first) = first_refused {
            refused += 1;
            assert!(
                thread[first..].iter().all(|(_, status)| *status != 200),
                "a post was answered 200 after one was refused: {thread:?}"
            );
        }
        acknowledged.extend(
            thread
                .iter()
                .filter(|(_, status)| *status == 200)
                .map(|(id, _)| id.clone()),
        );
    }
    assert!(refused > 0, "no post was refused after the failed fsync");
    let daemon = Daemon::start(&w);
    let listed = via_daemon(&w, &["orders", "list", "--json"]);
    for id in &acknowledged {
        assert!(
            listed.contains(&format!(r#""order_id":"{id}""#)),
            "acknowledged {id} lost after power loss"
        );
    }
    drop(daemon);
    eprintln!("{} posts answered 200 before the failed fsync, all there after power loss; {refused} of 8 connections refused after it", acknowledged.len());
}

/// `store dump` through the running daemon while orders are posted one after another: each
/// dump restores into a store that passes `check-store` and holds exactly the first posts up to
/// some moment, none missing (a consistent snapshot), and the posting never waits for a dump.
#[test]
fn a_dump_through_the_daemon_is_a_consistent_snapshot_while_orders_come_in() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let w = daemon_warehouse();
    fs::write(w.path("api-token"), format!("{TOKEN}\n")).expect("write the token file");
    drop_in_spool_now(&w, "items-1.csv", ITEMS);
    let mut daemon = Daemon::start(&w);
    daemon.wait_for_file(&w.path("spool/done/items-1.csv"));
    let stop = Arc::new(AtomicBool::new(false));
    let posted = Arc::new(AtomicUsize::new(0));
    let poster = {
        let (stop, posted, socket) = (stop.clone(), posted.clone(), daemon.socket.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let n = posted.load(Ordering::SeqCst);
                let body = order(
                    &format!("P-{n:05}"),
                    "2026-11-30T09:00:00-08:00",
                    &format!("Poster {n}"),
                    &format!("{n} Pine St"),
                    "USD",
                    &[("TSHIRT", 1, "10.00")],
                );
                assert_eq!(post(&socket, "/v1/orders?name=api", &body), 200);
                posted.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let mut dumps = Vec::new();
    for round in 1..=3 {
        daemon.wait_until("more posts", || posted.load(Ordering::SeqCst) >= 40 * round);
        let dump = w.path(&format!("live-{round}.jsonl"));
        let output = w.run_at(NOW, &["store", "dump", dump.to_str().unwrap()]);
        assert!(output.status.success(), "{}", describe(&output));
        dumps.push((dump, String::from_utf8_lossy(&output.stdout).into_owned()));
    }
    stop.store(true, Ordering::SeqCst);
    poster.join().expect("the poster");
    assert!(
        daemon.log().contains("store dump written"),
        "{}",
        daemon.log()
    );
    // A restore needs the store to itself: refused while the daemon holds it, nothing changed.
    let before = w.run_at(NOW, &["orders", "list", "--json"]);
    let refused = w.run_at(NOW, &["store", "restore", dumps[0].0.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    assert!(
        stderr(&refused).contains("stop the daemon"),
        "{}",
        describe(&refused)
    );
    assert_eq!(
        w.run_at(NOW, &["orders", "list", "--json"]).stdout,
        before.stdout
    );
    drop(daemon);
    let mut sizes = Vec::new();
    for (dump, said) in dumps {
        let target = Warehouse::new();
        let copy = target.file("live.jsonl", &read(&dump));
        target.ok(NOW, &["store", "restore", copy.to_str().unwrap()]);
        target.assert_store_sound(NOW);
        let ids: Vec<String> = target
            .orders(NOW)
            .into_iter()
            .map(|row| row.order_id)
            .collect();
        assert!(said.contains(&format!(" {} orders", ids.len())), "{said}");
        let expected: Vec<String> = (0..ids.len()).map(|n| format!("P-{n:05}")).collect();
        assert_eq!(ids, expected, "a dump holds the first posts, none missing");
        sizes.push(ids.len());
    }
    assert!(sizes.windows(2).all(|pair| pair[0] <= pair[1]), "{sizes:?}");
    assert!(sizes[0] >= 40, "{sizes:?}");
}

/// The daemon loses power at random moments while orders are posted and receipt files wait in
/// its spool: after each cut the warehouse folder holds only what was fsynced. In the end
/// every post answered 200 is in the store once, every receipt file was added exactly once
/// (a file taken in whose move was lost is known by its mark), and every invariant holds.
/// Commits stay small here: RELIABILITY.md says why large ones are not covered.
#[test]
fn a_daemon_losing_power_keeps_what_it_acknowledged_and_takes_each_spool_file_once() {
    let w = daemon_warehouse();
    fs::write(w.path("api-token"), format!("{TOKEN}\n")).expect("write the token file");
    drop_in_spool_now(&w, "items-1.csv", ITEMS);
    drop(Daemon::start(&w));
    let mut disk = Disk::new(w.dir.path());
    let mut random = support::Seeded(0x90e7_0c07);
    let rounds = 6;
    let mut acknowledged: Vec<String> = Vec::new();
    let mut lost = 0;
    for round in 0..rounds {
        drop_in_spool(
            &w,
            &format!("stock-receive-{round:02}.csv"),
            "sku,qty\nJEANS,3\n",
        );
        disk.settle();
        let mut command = serve_command(&w, &format!("serve-{round}.log"));
        disk.watch(&mut command);
        let mut daemon = Daemon {
            child: command.spawn().expect("start border-release serve"),
            log: w.path(&format!("serve-{round}.log")),
            socket: w.path("api.sock"),
        };
        daemon.wait_for_log("border-release is ready");
        let socket = daemon.socket.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let poster = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut answered = Vec::new();
                for n in 0.. {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let id = format!("P-{round}-{n:04}");
                    let body = order(
                        &id,
                        "2026-11-29T09:00:00-08:00",
                        &format!("Buyer {round} {n}"),
                        &format!("{n} Poplar St"),
                        "USD",
                        &[("TSHIRT", 1, "10.00")],
                    );
                    // A post cut off by the kill is not acknowledged.
                    if post_or_cut(&socket, &body) == Some(200) {
                        answered.push(id);
                    }
                }
                answered
            })
        };
        std::thread::sleep(Duration::from_millis(20 + random.below(400)));
        daemon.signal("KILL");
        let _ = daemon.wait_for_exit(PATIENCE);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        acknowledged.extend(poster.join().expect("poster"));
        lost += disk.lose_power();
    }
    assert_each_once(&w, &acknowledged, 3 * rounds);
    eprintln!(
        "{rounds} power cuts: {} posts acknowledged, all there once; {rounds} receipts added once; {lost} files lost bytes or vanished",
        acknowledged.len()
    );
}

/// Starts the daemon once more, lets it take in what its spool holds, and checks that every
/// acknowledged order is stored once, that the receipts added `jeans` in all (each once), and
/// that every invariant holds.
fn assert_each_once(w: &Warehouse, acknowledged: &[String], jeans: usize) {
    let mut daemon = Daemon::start(w);
    daemon.wait_until("the spool to be taken in", || {
        file_names(&w.path("spool/inbox")).is_empty()
            && file_names(&w.path("spool/processing")).is_empty()
    });
    let listed = via_daemon(w, &["orders", "list", "--json"]);
    for order_id in acknowledged {
        let needle = format!(r#""order_id":"{order_id}""#);
        assert_eq!(listed.matches(&needle).count(), 1, "{order_id}");
    }
    let stock = via_daemon(w, &["stock", "list", "--json"]);
    let expected = format!(r#"{{"sku":"JEANS","on_hand":{jeans}}}"#);
    assert!(stock.contains(&expected), "each receipt once: {stock}");
    drop(daemon);
    let check = w.run_at(NOW, &["check-store"]);
    assert!(check.status.success(), "{}", describe(&check));
}

/// Like [`post`] of an order, but `None` when the daemon goes away before answering.
fn post_or_cut(socket: &Path, body: &str) -> Option<u16> {
    let mut stream = UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(PATIENCE)).ok()?;
    write!(
        stream,
        "POST /v1/orders?name=api HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split(' ').nth(1)?.parse().ok()
}

/// A POST of `body` on the daemon's socket with the test's token: the status.
fn post(socket: &Path, path: &str, body: &str) -> u16 {
    let mut stream = UnixStream::connect(socket).expect("connect to the daemon");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("set a read timeout");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send the request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

/// A file of 100 MB of arbitrary bytes and one of a single endless line, dropped in the spool:
/// each is rejected with its report, nothing of them is taken in, and the daemon stays up and
/// takes in the next good file.
#[test]
fn files_of_a_hundred_megabytes_in_the_spool_leave_the_daemon_up() {
    const SIZE: usize = 100 << 20;
    let w = daemon_warehouse();
    fs::write(w.path("api-token"), format!("{TOKEN}\n")).expect("write the token file");
    drop_in_spool_now(&w, "items-1.csv", ITEMS);
    let mut daemon = Daemon::start(&w);
    let bytes = support::noise(SIZE, 0x0dd_b175_f00d);
    let inbox = w.path("spool/inbox");
    fs::write(inbox.join("orders-noise.jsonl.tmp"), &bytes).expect("write noise");
    fs::rename(
        inbox.join("orders-noise.jsonl.tmp"),
        inbox.join("orders-noise.jsonl"),
    )
    .unwrap();
    drop(bytes);
    fs::write(
        inbox.join("stock-receive-endless.csv.tmp"),
        format!("sku,qty\n{}", "9".repeat(SIZE)),
    )
    .unwrap();
    fs::rename(
        inbox.join("stock-receive-endless.csv.tmp"),
        inbox.join("stock-receive-endless.csv"),
    )
    .unwrap();
    daemon.wait_for_file(&w.path("spool/rejected/orders-noise.jsonl.report.txt"));
    daemon.wait_for_file(&w.path("spool/rejected/stock-receive-endless.csv.report.txt"));
    let report = read(&w.path("spool/rejected/orders-noise.jsonl.report.txt"));
    assert!(
        report.starts_with("orders-noise.jsonl is in another encoding (line 1 has bytes that"),
        "{}",
        &report[..report.len().min(2000)]
    );
    assert_eq!(report.lines().count(), 1, "{report}");
    let report = read(&w.path("spool/rejected/stock-receive-endless.csv.report.txt"));
    assert!(
        report.contains("line 2") && report.contains("longer than"),
        "{report}"
    );
    assert_eq!(daemon.get("/healthz", None).0, 200);
    drop_in_spool(&w, "orders-1.jsonl", &extra_orders());
    daemon.wait_for_file(&w.path("spool/rejected/orders-1.jsonl.report.txt"));
    let listed = via_daemon(&w, &["orders", "list", "--json"]);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.contains(r#""order_id":"D1""#), "{listed}");
}

/// Writes a file straight into the inbox before a daemon runs.
fn drop_in_spool_now(w: &Warehouse, name: &str, contents: &str) {
    fs::create_dir_all(w.path("spool/inbox")).expect("make the inbox");
    drop_in_spool(w, name, contents);
}

/// A test warehouse (tests/support) whose daemon listens on a Unix socket in its folder and
/// logs readable lines to standard error.
fn daemon_warehouse() -> Warehouse {
    let w = Warehouse::new();
    let config = read(&w.config());
    let api = "[api]\nlisten = \"127.0.0.1:0\"\n";
    assert!(
        config.contains(api),
        "the support config changed:\n{config}"
    );
    let socket = w.path("api.sock");
    let ours = format!(
        "[log]\nformat = \"text\"\n\n[api]\nlisten = \"unix:{}\"\n",
        socket.display()
    );
    fs::write(w.config(), config.replace(api, &ours)).expect("write the config");
    w
}

/// Orders for the spool: A1 and B1 due today, a bad line 3 (an unknown SKU), and C1 placed
/// after today's 06:00 cutoff.
fn spool_orders() -> String {
    let lines = [
        order(
            "A1",
            "2026-11-29T09:00:00-08:00",
            "Ana Ruiz",
            "1200 Market St",
            "USD",
            &[("TSHIRT", 2, "19.99")],
        ),
        order(
            "B1",
            "2026-11-29T10:00:00-08:00",
            "Ben Ode",
            "9 Harbor Blvd",
            "USD",
            &[("JEANS", 1, "45.00")],
        ),
        order(
            "BAD1",
            "2026-11-29T11:00:00-08:00",
            "Bea Dee",
            "7 Palm Ave",
            "USD",
            &[("NOPE", 1, "1.00")],
        ),
        order(
            "C1",
            "2026-11-30T08:00:00-08:00",
            "Cy Young",
            "4 Elm Ave",
            "USD",
            &[("TSHIRT", 1, "10.00")],
        ),
    ];
    lines.join("\n") + "\n"
}

/// Orders for `orders import`: D1, good, and a bad line 2 (an unknown SKU).
fn extra_orders() -> String {
    let lines = [
        order(
            "D1",
            "2026-11-29T12:00:00-08:00",
            "Dee Park",
            "8 Oak Dr",
            "USD",
            &[("JEANS", 1, "30.00")],
        ),
        order(
            "BAD2",
            "2026-11-29T13:00:00-08:00",
            "Eve Stone",
            "6 Pine St",
            "USD",
            &[("NOPE", 1, "1.00")],
        ),
    ];
    lines.join("\n") + "\n"
}

/// Writes a file into the spool inbox the way an integrator should: under a `.tmp` name, then
/// renamed into place.
fn drop_in_spool(w: &Warehouse, name: &str, contents: &str) {
    let inbox = w.path("spool/inbox");
    let partial = inbox.join(format!("{name}.tmp"));
    fs::write(&partial, contents).expect("write into the spool");
    fs::rename(&partial, inbox.join(name)).expect("rename into the spool");
}

/// Runs a command while the daemon holds the store: it must succeed, and must not have been
/// told that the store is in use. Returns its standard output.
fn via_daemon(w: &Warehouse, args: &[&str]) -> String {
    let output = w.run_at(NOW, args);
    let err = stderr(&output);
    assert!(
        output.status.success(),
        "border-release {args:?} exited {:?}\n{}",
        output.status.code(),
        describe(&output)
    );
    assert!(!err.contains("in use"), "border-release {args:?}:\n{err}");
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

fn describe(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(output)
    )
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn file_names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(folder)
        .expect("read the folder")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The `serve` command with the test's clock, its log (standard error) going to the file `log`
/// in the warehouse folder.
fn serve_command(w: &Warehouse, log: &str) -> Command {
    let log = fs::File::create(w.path(log)).expect("create the daemon's log");
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("border-release"));
    command
        .current_dir(w.dir.path())
        .env_remove("BORDER_RELEASE_CONFIG")
        .env_remove("BORDER_RELEASE_CRASH_AT")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .env("BORDER_RELEASE_FAKE_NOW", NOW)
        .arg("--config")
        .arg(w.config())
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    command
}

/// Starts `serve`, expecting it to stop on its own; returns how it ended and its log (in the
/// file `log`).
fn serve_until_exit(w: &Warehouse, log: &str) -> (ExitStatus, String) {
    let mut daemon = Daemon {
        child: serve_command(w, log)
            .spawn()
            .expect("start border-release serve"),
        log: w.path(log),
        socket: w.path("api.sock"),
    };
    let status = daemon.wait_for_exit(STOP_DEADLINE);
    (status, daemon.log())
}

/// A running `border-release serve`, killed when dropped (so a failed test leaves no daemon).
struct Daemon {
    child: Child,
    log: PathBuf,
    socket: PathBuf,
}

impl Daemon {
    /// Starts the daemon and waits until it is ready: its log says so and a command through
    /// its API succeeds. (A command run before the daemon has opened the store would take the
    /// store itself, so the log is waited for first.)
    fn start(w: &Warehouse) -> Daemon {
        let mut daemon = Daemon::spawn(w, "serve.log", None);
        daemon.wait_for_log("border-release is ready");
        assert!(daemon.socket.exists(), "{}", daemon.log());
        daemon.wait_until("check-store to pass through the API", || {
            w.run_at(NOW, &["check-store"]).status.success()
        });
        daemon
    }

    /// Starts the daemon without waiting, aborting at the crash point when one is named.
    fn spawn(w: &Warehouse, log: &str, crash_at: Option<&str>) -> Daemon {
        let mut command = serve_command(w, log);
        if let Some(point) = crash_at {
            command.env("BORDER_RELEASE_CRASH_AT", point);
        }
        Daemon {
            child: command.spawn().expect("start border-release serve"),
            log: w.path(log),
            socket: w.path("api.sock"),
        }
    }

    /// The daemon's log so far.
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal with kill(1).
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Polls `done` until it holds; fails with the daemon's log if the daemon exits first or
    /// the time runs out.
    fn wait_until(&mut self, what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        loop {
            if done() {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("poll the daemon") {
                panic!(
                    "the daemon exited ({status:?}) while waiting for {what}; its log:\n{}",
                    self.log()
                );
            }
            if start.elapsed() > PATIENCE {
                panic!(
                    "gave up waiting for {what}; the daemon's log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_log(&mut self, text: &str) {
        let log = self.log.clone();
        self.wait_until(&format!("{text:?} in the log"), || {
            fs::read_to_string(&log).is_ok_and(|log| log.contains(text))
        });
    }

    fn wait_for_file(&mut self, path: &Path) {
        self.wait_until(&path.display().to_string(), || path.exists());
    }

    /// Waits for the daemon to exit, at most `limit`.
    fn wait_for_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the daemon") {
                return status;
            }
            if start.elapsed() > limit {
                panic!(
                    "the daemon did not exit within {limit:?}; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A GET on the daemon's socket, with the bearer token when given: the status and the
    /// body (left chunked if it was sent so).
    fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        get_from(&self.socket, path, token)
    }
}

/// A GET of the daemon listening on `socket`: its status and body.
fn get_from(socket: &Path, path: &str, token: Option<&str>) -> (u16, String) {
    {
        let mut stream = UnixStream::connect(socket).expect("connect to the daemon");
        stream
            .set_read_timeout(Some(PATIENCE))
            .expect("set a read timeout");
        let authorization = token
            .map(|token| format!("Authorization: Bearer {token}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{authorization}\r\n"
        )
        .expect("send the request");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read the answer");
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
        let body = answer
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
            .to_owned();
        (status, body)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The operator's corrections print the same, with the same exit codes, whether the daemon
/// has the store or the command opens it itself: two warehouses with the same day, one served.
#[test]
fn corrections_read_the_same_through_the_daemon_and_on_the_store() {
    let setup = |w: &Warehouse| {
        fs::write(w.path("api-token"), format!("{TOKEN}\n")).expect("write the token file");
        let items = w.file("items.csv", ITEMS);
        w.ok(NOW, &["items", "import", items.to_str().unwrap()]);
        let stock = w.file("stock.csv", "sku,qty\nTSHIRT,10\nJEANS,10\n");
        w.ok(NOW, &["stock", "receive", stock.to_str().unwrap()]);
        let duties = w.file("duties.csv", DUTIES);
        w.ok(NOW, &["duties", "import", duties.to_str().unwrap()]);
        let mut good: Vec<String> = spool_orders()
            .lines()
            .filter(|line| !line.contains("BAD1"))
            .map(str::to_owned)
            .collect();
        // Held over the limit, to be referred to a formal entry.
        good.push(order(
            "H1",
            "2026-11-29T09:30:00-08:00",
            "Hal Ito",
            "5 Bay St",
            "USD",
            &[("JEANS", 2, "450.00")],
        ));
        let orders = w.file("orders.jsonl", &good.join("\n"));
        w.ok(NOW, &["orders", "import", orders.to_str().unwrap()]);
        w.ok(NOW, &["batch"]);
    };
    let (served, local) = (daemon_warehouse(), daemon_warehouse());
    setup(&served);
    setup(&local);
    for w in [&served, &local] {
        // A later table with a bad line: the good rows are kept, the bad one named.
        w.file(
            "duties-more.csv",
            "hts_prefix,origin,program,rate_percent,from,usmca_exempt\n6109,*,mfn,12,2026-12-01,yes\n62,MX,mfn,abc,2026-12-01,no\n",
        );
    }
    let mut daemon = Daemon::start(&served);
    let socket = daemon.socket.clone();
    let figure = |name: &str| {
        let (_, metrics) = get_from(&socket, "/metrics", None);
        let line = format!("{name}{{day=\"{DAY}\"}} ");
        metrics
            .lines()
            .find_map(|row| row.strip_prefix(&line).map(str::to_owned))
    };
    let releases_of_the_day = || figure("border_release_releases");
    daemon.wait_until("the day's figures", || releases_of_the_day().is_some());
    let before: u64 = releases_of_the_day().unwrap().parse().unwrap();
    // The day's estimate as /metrics gives it is the release log's.
    let log = served.release_log(DAY);
    let known: Decimal = log
        .iter()
        .flat_map(|release| release["lines"].as_array().unwrap())
        .filter_map(|line| line["duty_usd"].as_str())
        .map(|usd| usd.parse::<Decimal>().unwrap())
        .sum();
    let unknown = log
        .iter()
        .flat_map(|release| release["lines"].as_array().unwrap())
        .filter(|line| line["duty_usd"].is_null())
        .count();
    let fees: Decimal = log
        .iter()
        .map(|release| {
            release["fees_usd"]
                .as_str()
                .unwrap()
                .parse::<Decimal>()
                .unwrap()
        })
        .sum();
    assert!(known > Decimal::ZERO && unknown > 0, "{log:#?}");
    let decimal = |name: &str| figure(name).unwrap().parse::<Decimal>().unwrap();
    assert_eq!(decimal("border_release_estimated_duty_usd"), known);
    assert_eq!(decimal("border_release_estimated_fees_usd"), fees);
    assert_eq!(
        figure("border_release_unknown_duty_lines"),
        Some(unknown.to_string())
    );
    let release = format!("{DAY}-000001");
    let first_duty: Decimal = log[0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|line| line["duty_usd"].as_str())
        .map(|usd| usd.parse::<Decimal>().unwrap())
        .sum();
    let steps: &[&[&str]] = &[
        &[
            "releases",
            "void",
            &release,
            "--reason",
            "the truck did not leave",
        ],
        &["releases", "void", &release, "--reason", "again"],
        &[
            "releases",
            "void",
            "2026-11-30-000009",
            "--reason",
            "no such",
        ],
        &["orders", "show", "A1", "--json"],
        &["orders", "show", "A1"],
        &["orders", "show", "NOPE"],
        &["orders", "refer", "H1", "A1"],
        &["orders", "refer", "NOPE"],
        &["orders", "refer", "H1", "--note", "formal entry", "--json"],
        &["orders", "refer", "H1"],
        &["orders", "list", "--state", "referred"],
        &["orders", "show", "H1"],
        &["orders", "cancel", "H1"],
        &["orders", "list"],
        &["items", "list"],
        &["stock", "list"],
        &["duties", "list"],
        &["duties", "list", "--day", "2026-01-01", "--json"],
        &["duties", "import", "duties-more.csv"],
        &["duties", "list", "--json"],
        &["releases", "write", "--day", DAY],
        &["releases", "write", "--day", "2026-01-01", "--json"],
        &["batch", "--day", "2026-12-09"],
        &["batch", "--json"],
        &["plan", "--day", "2026-12-01", "--json"],
        &["check-store"],
    ];
    let same = |output: &Output, w: &Warehouse| {
        let folder = w.path("").display().to_string();
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).replace(&folder, "<folder>/");
        (
            output.status.code(),
            text(&output.stdout),
            text(&output.stderr),
        )
    };
    for (step, args) in steps.iter().enumerate() {
        let through_daemon = same(&served.run_at(NOW, args), &served);
        let on_the_store = same(&local.run_at(NOW, args), &local);
        assert_eq!(through_daemon, on_the_store, "border-release {args:?}");
        if step == 0 {
            // The void is gone from the day's figures at once, its estimate too.
            assert_eq!(releases_of_the_day(), Some((before - 1).to_string()));
            assert_eq!(
                decimal("border_release_estimated_duty_usd"),
                known - first_duty
            );
        }
    }
    assert!(daemon.log().contains("release voided"), "{}", daemon.log());
    assert!(daemon.log().contains("orders referred"), "{}", daemon.log());
    let referrals = "logs/referrals/2026-11-30.jsonl";
    assert_eq!(read(&served.path(referrals)), read(&local.path(referrals)));
}

/// Through the running daemon, commands print and exit as they do run alone: an import's
/// summary on standard output and its rejected lines on standard error (exit 3), a file in
/// UTF-16 refused whole with one message (exit 1), counts and amounts as people read them, and
/// output into a closed pipe ending quietly. The daemon's log names the file, line, field and
/// rule of each rejected line, from the API and the spool alike, never the value.
#[test]
fn commands_through_the_daemon_print_as_run_alone_and_its_log_names_rules_not_values() {
    let w = daemon_warehouse();
    fs::write(w.path("api-token"), format!("{TOKEN}\n")).expect("write the token file");
    drop_in_spool_now(&w, "items-1.csv", ITEMS);
    drop_in_spool_now(&w, "stock-receive-1.csv", "sku,qty\nTSHIRT,10\n");
    let mut daemon = Daemon::start(&w);
    daemon.wait_for_file(&w.path("spool/done/stock-receive-1.csv"));

    // An import with a rejected line, through the API.
    let secret = order(
        "BAD-ZIP",
        "2026-11-29T09:00:00-08:00",
        "Pat Secretname",
        "77 Hidden Ln",
        "USD",
        &[("TSHIRT", 1, "20")],
    )
    .replace("92101", "ABCDE");
    let good = order(
        "GOOD-1",
        "2026-11-29T09:00:00-08:00",
        "Ana Ruiz",
        "1 Main St",
        "USD",
        &[("TSHIRT", 2, "10")],
    );
    let file = w.file("orders.jsonl", &format!("{good}\n{secret}\n"));
    let path = file.display().to_string();
    let output = w.run_at(NOW, &["orders", "import", &path]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{path}: 1 accepted, 0 unchanged, 1 rejected\n")
    );
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "{path}:line 2: order BAD-ZIP: recipient.address.postal_code: \"ABCDE\" is not a ZIP code"
        )),
        "{err}"
    );
    assert!(!err.contains("accepted"), "{err}");

    // The same bad line through the spool.
    drop_in_spool(&w, "orders-1.jsonl", &format!("{secret}\n"));
    daemon.wait_for_file(&w.path("spool/rejected/orders-1.jsonl.report.txt"));
    daemon.wait_for_log("orders-1.jsonl accepted=0");
    let log = daemon.log();
    let rejected: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("input line rejected"))
        .collect();
    assert_eq!(rejected.len(), 2, "one event per rejected line:\n{log}");
    for (line, source) in rejected.iter().zip(["api", "spool"]) {
        assert!(line.contains(" INFO "), "{line}");
        for field in [
            format!("source=\"{source}\""),
            "line=".to_owned(),
            "order_id=\"BAD-ZIP\"".to_owned(),
            "field=\"recipient.address.postal_code\"".to_owned(),
            "rule=\"5 digits or ZIP+4\"".to_owned(),
        ] {
            assert!(line.contains(&field), "no {field} in {line}");
        }
    }
    for personal in ["Pat Secretname", "77 Hidden Ln", "ABCDE"] {
        assert!(
            !log.contains(personal),
            "{personal:?} in the daemon's log:\n{log}"
        );
    }

    // A file in UTF-16: refused whole, with one message.
    let wide = w.path("wide.jsonl");
    fs::write(&wide, utf16(&good.replace("GOOD-1", "U-1"), false)).unwrap();
    let output = w.run_at(NOW, &["orders", "import", wide.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert_eq!(
        stderr(&output).trim_end().rsplit('\n').next().unwrap(),
        format!(
            "error: {} is UTF-16 (little-endian), not UTF-8: save it as UTF-8; nothing of this file was applied",
            wide.display()
        )
    );

    // Words and amounts.
    let batch = via_daemon(&w, &["batch"]);
    assert!(
        batch.contains("releases: 1 (1 order, 20.00 USD)"),
        "{batch}"
    );

    // A reader that stops early: more rows than a pipe holds, and the first one read.
    let many = w.file("many.jsonl", &orders_to_many("M", 3000, "1.00"));
    via_daemon(&w, &["orders", "import", many.to_str().unwrap()]);
    let mut command = w.process(NOW, &["orders", "list"]);
    command.env_remove("BORDER_RELEASE_FAKE_NOW");
    let (first, code, err) = read_one_line_and_close(command);
    assert!(first.starts_with("order "), "{first}");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err, "");
    assert_eq!(daemon.get("/healthz", None).0, 200);
}
