//! The daemon in process: a temporary warehouse, a clock the test moves, and the real API on a
//! port of its own, driven through the same client the command line uses. The story of a day:
//! the catalogue and stock arrive, orders come through the spool and the API (many at once,
//! sharing commits), one is cancelled, bad input is refused in the API's own words, and the
//! batch fires at 06:00 at the port, once; a daemon down at 06:00 runs the missed batch once
//! when it starts.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use border_release::client::{Client, Response};
use border_release::clock::Clock;
use border_release::config::{self, Api, Listen};
use border_release::daemon::{self, Listener, Options};
use border_release::operations::{self, IntakeReport};
use border_release::store::Store;
use border_release::wire::{BatchDoc, CancelDoc, ErrorBody};
use chrono::{DateTime, Utc};
use hyper::{Method, StatusCode};
use support::{order, utf16, Warehouse, ITEMS};

const TOKEN: &str = "test-token-0123456789abcdef";

/// A daemon running on its own thread and runtime, and a client of its API.
struct Running {
    data: std::path::PathBuf,
    client: Client,
    address: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    fn start(w: &Warehouse, clock: &Clock) -> Running {
        std::fs::write(w.path("api-token"), format!("{TOKEN}\n")).unwrap();
        let config = config::load(&w.config()).expect("the test config loads");
        let data = config.paths.data.clone();
        let options = Options {
            tick: Duration::from_millis(20),
            stop_deadline: Duration::from_secs(10),
            reload_on_sighup: false,
            ..Options::new(w.config(), clock.clone())
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(Listener::bind(&Listen::Tcp("127.0.0.1:0".parse().unwrap())))
            .unwrap();
        let address = listener.address().parse().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(daemon::run(config, listener, options, async {
                let _ = stopped.await;
            }))
        });
        let api = Api {
            listen: Listen::Tcp(address),
            token_file: w.path("api-token"),
        };
        let client = Client::new(&api, "in-process test".into()).unwrap();
        let running = Running {
            data,
            client,
            address,
            stop: Some(stop),
            thread: Some(thread),
        };
        running.wait_for("the API to answer", || {
            running
                .client
                .send(Method::GET, "/healthz", "text/plain", vec![])
                .is_ok_and(|response| response.status == StatusCode::OK)
        });
        running
    }

    fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        let result = self
            .thread
            .take()
            .unwrap()
            .join()
            .expect("the daemon thread");
        result.expect("the daemon stops cleanly");
        // The store's lock goes a moment after the store: wait for it, as a new process would.
        drop(Store::open_waiting(&self.data, Duration::from_secs(5)).expect("the store is free"));
    }

    fn send(&self, method: Method, path: &str, body: &str) -> Response {
        self.client
            .send(
                method,
                path,
                "application/octet-stream",
                body.as_bytes().to_vec(),
            )
            .expect("the API answers")
    }

    /// Posts an orders file named `name`: the answer's status and body.
    fn post_orders(&self, name: &str, body: Vec<u8>) -> (StatusCode, String) {
        let response = self
            .client
            .send(
                Method::POST,
                &format!("/v1/orders?name={name}"),
                "application/x-ndjson",
                body,
            )
            .expect("the API answers");
        (response.status, self.body(response))
    }

    fn body(&self, response: Response) -> String {
        String::from_utf8(self.client.body(response).unwrap().to_vec()).unwrap()
    }

    fn metrics(&self) -> String {
        let response = self.send(Method::GET, "/metrics", "");
        assert_eq!(response.status, StatusCode::OK);
        self.body(response)
    }

    /// The value of one metric line, e.g. `border_release_batches_total{outcome="committed"}`.
    fn metric(&self, line: &str) -> Option<String> {
        self.metrics()
            .lines()
            .find_map(|text| text.strip_prefix(&format!("{line} ")).map(str::to_owned))
    }

    /// Waits until a metric line has this value.
    fn wait_for_metric(&self, line: &str, value: &str) {
        self.wait_for(&format!("{line} {value}"), || {
            self.metric(line).as_deref() == Some(value)
        });
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// Drops a file into the inbox as integrators should: written under a `.tmp` name, then renamed.
fn drop_into_spool(w: &Warehouse, name: &str, text: &str) {
    let inbox = w.path("spool/inbox");
    let temporary = inbox.join(format!("{name}.tmp"));
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, inbox.join(name)).unwrap();
}

fn exists(path: &Path) -> bool {
    path.exists()
}

fn shirt_order(id: &str, name: &str, street: &str) -> String {
    order(
        id,
        "2026-11-30T09:00:00-08:00",
        name,
        street,
        "USD",
        &[("TSHIRT", 1, "20.00")],
    )
}

#[test]
fn a_day_in_the_daemon() {
    let w = Warehouse::new();
    let clock = Clock::manual(at("2026-11-30T10:00:00-08:00"));
    let d = Running::start(&w, &clock);

    // Health and metrics need no token; everything else does, and says so in JSON.
    assert_eq!(
        d.body(d.send(Method::GET, "/healthz", "")),
        r#"{"status":"ok"}"#
    );

    // The catalogue through the API, the stock through the spool.
    let items = d.send(Method::POST, "/v1/items?name=items.csv", ITEMS);
    assert_eq!(items.status, StatusCode::OK);
    drop_into_spool(&w, "stock-count-1.csv", "sku,qty\nTSHIRT,100\nJEANS,10\n");
    d.wait_for("the stock file to be taken in", || {
        exists(&w.path("spool/done/stock-count-1.csv"))
    });
    let stock = d.body(d.send(Method::GET, "/v1/stock", ""));
    assert!(stock.contains(r#""sku":"TSHIRT","on_hand":100"#), "{stock}");

    // Orders from the spool, one of them bad: the good ones are committed, the bad line goes
    // to rejected/ with a report naming it.
    let spooled = [
        shirt_order("S-1", "Ana Ruiz", "1 Market St"),
        shirt_order("S-2", "N/A", "2 Market St"),
        shirt_order("S-3", "Luis Vega", "3 Market St"),
    ];
    drop_into_spool(&w, "orders-1.jsonl", &spooled.join("\n"));
    // The report is written before the file moves: both are waited for.
    d.wait_for("the orders file to be moved", || {
        exists(&w.path("spool/rejected/orders-1.jsonl.report.txt"))
            && exists(&w.path("spool/rejected/orders-1.jsonl"))
    });
    let report =
        std::fs::read_to_string(w.path("spool/rejected/orders-1.jsonl.report.txt")).unwrap();
    assert!(
        report.contains("2 accepted, 0 unchanged, 1 rejected"),
        "{report}"
    );
    assert!(
        report.contains("line 2: order S-2: recipient.name"),
        "{report}"
    );
    // What the spool keeps holds names and addresses: owner-only, like the store.
    for kept in [
        "spool/done/stock-count-1.csv",
        "spool/rejected/orders-1.jsonl",
        "spool/rejected/orders-1.jsonl.report.txt",
        "spool/rejected/orders-1.rejected.jsonl",
        "spool/done",
        "spool/rejected",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(w.path(kept))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{kept} is open to others: {mode:o}");
    }
    let again = std::fs::read_to_string(w.path("spool/rejected/orders-1.rejected.jsonl")).unwrap();
    assert_eq!(again.trim(), spooled[1]);

    // Many single orders posted at once are all acknowledged, durably, sharing commits.
    let posts = 64;
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let d = &d;
            scope.spawn(move || {
                for n in 0..posts / 8 {
                    let id = format!("A-{thread}-{n}");
                    let line =
                        shirt_order(&id, &format!("Buyer {thread} {n}"), &format!("{n} Elm St"));
                    let response = d.send(Method::POST, "/v1/orders?name=api", &line);
                    assert_eq!(response.status, StatusCode::OK);
                    let report: IntakeReport =
                        serde_json::from_slice(&d.client.body(response).unwrap()).unwrap();
                    assert_eq!((report.accepted, report.rejected.len()), (1, 0));
                }
            });
        }
    });
    assert_eq!(
        d.metric("border_release_api_order_posts_total").as_deref(),
        Some("64")
    );

    // The same order again is a no-op; the same id with other content is refused with 422
    // and the line named.
    let same = d.send(
        Method::POST,
        "/v1/orders",
        &shirt_order("S-1", "Ana Ruiz", "1 Market St"),
    );
    assert_eq!(same.status, StatusCode::OK);
    let report: IntakeReport = serde_json::from_slice(&d.client.body(same).unwrap()).unwrap();
    assert_eq!(report.unchanged, 1);
    let changed = d.send(
        Method::POST,
        "/v1/orders",
        &shirt_order("S-1", "Ana Ruiz", "9 Other St"),
    );
    assert_eq!(changed.status, StatusCode::UNPROCESSABLE_ENTITY);
    let report: IntakeReport = serde_json::from_slice(&d.client.body(changed).unwrap()).unwrap();
    assert_eq!(report.rejected[0].line, 1);

    // Cancel: once, again (a no-op), and an unknown order, in the API's error shape.
    let cancel: CancelDoc = d
        .client
        .json(d.send(Method::POST, "/v1/orders/S-3/cancel", ""))
        .unwrap();
    assert!(cancel.cancelled);
    let cancel: CancelDoc = d
        .client
        .json(d.send(Method::POST, "/v1/orders/S-3/cancel", ""))
        .unwrap();
    assert!(!cancel.cancelled);
    let unknown = d.send(Method::POST, "/v1/orders/NOPE/cancel", "");
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let error: ErrorBody = serde_json::from_slice(&d.client.body(unknown).unwrap()).unwrap();
    assert_eq!(error.error.code, "not-found");
    assert!(
        error.error.message.contains("NOPE"),
        "{}",
        error.error.message
    );
    let bad_day = d.send(Method::GET, "/v1/plan?day=tomorrow", "");
    assert_eq!(bad_day.status, StatusCode::BAD_REQUEST);
    let nowhere = d.send(Method::GET, "/v1/nowhere", "");
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);

    // The plan for tomorrow (orders placed before 06:00 tomorrow join it) changes nothing.
    let plan = d.body(d.send(Method::GET, "/v1/plan?day=2026-12-01", ""));
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(plan["releases"].as_array().unwrap().len(), 65);
    assert!(d
        .metric("border_release_batches_total{outcome=\"committed\"}")
        .is_none());

    // 06:00 tomorrow at the port: the scheduled batch fires, once.
    clock.set(at("2026-12-01T06:00:00-08:00"));
    let log = w.path("logs/releases/2026-12-01.jsonl");
    d.wait_for("the scheduled batch", || exists(&log));
    let releases = support::read_jsonl(&log);
    assert_eq!(releases.len(), 65);
    d.wait_for_metric("border_release_batches_total{outcome=\"committed\"}", "1");
    clock.set(at("2026-12-01T06:00:30-08:00"));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        d.metric("border_release_batches_total{outcome=\"committed\"}")
            .as_deref(),
        Some("1"),
        "one trigger, one batch"
    );
    assert_eq!(
        d.metric("border_release_releases{day=\"2026-12-01\"}")
            .as_deref(),
        Some("65")
    );
    assert_eq!(
        d.metric("border_release_orders{state=\"released\",reason=\"\"}")
            .as_deref(),
        Some("65"),
        "{}",
        d.metrics()
    );
    assert_eq!(
        d.metric("border_release_orders{state=\"cancelled\",reason=\"\"}")
            .as_deref(),
        Some("1")
    );

    // A batch through the API is a later wave of the same day: nothing is left to release.
    let wave: BatchDoc = d
        .client
        .json(d.send(Method::POST, "/v1/batch?day=2026-12-01", ""))
        .unwrap();
    assert_eq!(wave.summary.releases, 0);
    assert_eq!(wave.summary.releases_before, 65);
    d.stop();

    // Down over the next 06:00: at start, the missed batch runs once.
    let late = shirt_order("L-1", "Rosa Diaz", "5 Pine St");
    std::fs::write(w.path("late.jsonl"), &late).unwrap();
    w.ok(
        "2026-12-01T12:00:00-08:00",
        &["orders", "import", w.path("late.jsonl").to_str().unwrap()],
    );
    clock.set(at("2026-12-02T09:30:00-08:00"));
    let d = Running::start(&w, &clock);
    let log = w.path("logs/releases/2026-12-02.jsonl");
    d.wait_for("the missed batch", || exists(&log));
    assert_eq!(support::read_jsonl(&log).len(), 1);
    d.stop();

    // Started again after it ran: that trigger is not run again.
    let d = Running::start(&w, &clock);
    std::thread::sleep(Duration::from_millis(200));
    assert!(d
        .metric("border_release_batches_total{outcome=\"committed\"}")
        .is_none());
    d.stop();
    w.assert_store_sound("2026-12-02T09:30:00-08:00");
}

#[test]
fn requests_without_the_token_are_refused() {
    let w = Warehouse::new();
    let clock = Clock::manual(at("2026-11-30T10:00:00-08:00"));
    let d = Running::start(&w, &clock);
    std::fs::write(w.path("wrong-token"), "not-the-token-at-all\n").unwrap();
    let stranger = Client::new(
        &Api {
            listen: Listen::Tcp(d.address),
            token_file: w.path("wrong-token"),
        },
        String::new(),
    )
    .unwrap();
    for (method, path) in [
        (Method::GET, "/v1/stock"),
        (Method::POST, "/v1/batch"),
        (Method::POST, "/v1/orders"),
    ] {
        let response = stranger
            .send(method, path, "text/plain", b"{}".to_vec())
            .unwrap();
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{path}");
        let error: ErrorBody = serde_json::from_slice(&stranger.body(response).unwrap()).unwrap();
        assert_eq!(error.error.code, "unauthorized");
    }
    for path in ["/healthz", "/metrics"] {
        let response = stranger
            .send(Method::GET, path, "text/plain", vec![])
            .unwrap();
        assert_eq!(response.status, StatusCode::OK, "{path}");
    }
    // Nothing was batched by the refused request.
    assert!(!w.path("logs/releases").exists());
    d.stop();
}

#[test]
fn order_posts_waiting_together_share_one_commit() {
    use border_release::daemon::engine::{self, Engine};
    use border_release::daemon::metrics::Metrics;
    use border_release::store::Store;

    let w = Warehouse::new();
    let config = Arc::new(config::load(&w.config()).unwrap());
    let mut store = Store::open(&config.paths.data).unwrap();
    std::fs::write(w.path("items.csv"), ITEMS).unwrap();
    let items = w.path("items.csv");
    let source = operations::Source::File(&items);
    operations::import(
        &mut store,
        &config,
        source,
        operations::InputKind::Items,
        None,
    )
    .unwrap();
    let metrics = Arc::new(Metrics::default());
    let clock = Clock::manual(at("2026-11-30T10:00:00-08:00"));
    let engine = Engine::new(store, config, clock, metrics.clone());
    let (queue, thread) = engine::start(engine);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The engine is busy while fifty posts arrive; they wait together, and go together.
        let busy = tokio::spawn({
            let queue = queue.clone();
            async move {
                queue
                    .run(|_| {
                        std::thread::sleep(Duration::from_millis(300));
                        Ok(())
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let posts: Vec<_> = (0..50)
            .map(|n| {
                let queue = queue.clone();
                let line = shirt_order(&format!("G-{n}"), &format!("Buyer {n}"), "1 Elm St");
                tokio::spawn(async move {
                    queue
                        .post_orders("api".into(), line.into_bytes().into())
                        .await
                })
            })
            .collect();
        busy.await.unwrap().unwrap();
        for post in posts {
            let report = post.await.unwrap().unwrap();
            assert_eq!(report.accepted, 1);
        }
    });
    let figures = metrics.render(Utc::now());
    assert!(
        figures.contains("border_release_api_order_posts_total 50\n"),
        "{figures}"
    );
    assert!(
        figures.contains("border_release_api_order_commits_total 1\n"),
        "{figures}"
    );
    drop(queue);
    thread.join().unwrap();
}

/// Hostile input through the API and the spool: every piece is refused with a reason, nothing
/// else changes, and the daemon keeps answering.
#[test]
fn hostile_input_is_refused_and_the_daemon_stays_up() {
    let w = Warehouse::new();
    let clock = Clock::manual(at("2026-11-30T10:00:00-08:00"));
    let d = Running::start(&w, &clock);
    assert_eq!(
        d.send(Method::POST, "/v1/items?name=items.csv", ITEMS)
            .status,
        StatusCode::OK
    );
    let long_line = format!("{{\"order_id\": \"{}\"}}", "x".repeat(2 << 20));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("not JSON", b"{not json".to_vec()),
        ("a number", b"42".to_vec()),
        ("a line of 2 MiB", long_line.into_bytes()),
        (
            "float money",
            shirt_order("F-1", "Ana Ruiz", "1 Market St")
                .replace("\"20.00\"", "20.0")
                .into_bytes(),
        ),
        (
            "a quantity that overflows",
            shirt_order("F-2", "Ana Ruiz", "1 Market St")
                .replace("\"qty\":1", "\"qty\":99999999999999999999999")
                .into_bytes(),
        ),
        (
            "a date without an offset",
            shirt_order("F-3", "Ana Ruiz", "1 Market St")
                .replace("2026-11-30T09:00:00-08:00", "2026-11-30T09:00:00")
                .into_bytes(),
        ),
        (
            "a formula in a name",
            shirt_order("F-4", "=HYPERLINK(\"x\")", "1 Market St").into_bytes(),
        ),
        (
            "a control character in a street",
            shirt_order("F-5", "Ana Ruiz", "1 Market\u{7} St").into_bytes(),
        ),
    ];
    for (what, body) in bodies {
        let (status, text) = d.post_orders("hostile", body);
        if what == "empty" {
            assert_eq!(status, StatusCode::OK, "{what}: {text}");
            continue;
        }
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {text}");
        let report: IntakeReport = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (report.accepted, report.rejected.len()),
            (0, 1),
            "{what}: {text}"
        );
        assert!(!report.rejected[0].message.is_empty(), "{what}");
    }
    // A post that is not UTF-8 is refused whole, once, saying what it is.
    for (what, body, found) in [
        (
            "UTF-16",
            vec![0xff, 0xfe, b'{', 0, b'}', 0],
            "is UTF-16 (little-endian)",
        ),
        (
            "Latin-1",
            b"{\"order_id\": \"\xd1\"}\n{}\n".to_vec(),
            "is in another encoding (line 1 has bytes that are not UTF-8",
        ),
    ] {
        let (status, text) = d.post_orders("hostile", body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        let error: ErrorBody = serde_json::from_str(&text).unwrap();
        assert_eq!(error.error.code, "rejected-file", "{what}");
        assert!(
            error.error.message.starts_with(&format!("hostile {found}")),
            "{what}: {}",
            error.error.message
        );
    }
    // Files refused whole: a CSV without its header, binary bytes, a name of no known kind.
    for (name, text) in [
        ("items-2.csv", "TSHIRT,shirt,6109.10.0012,MX,\n"),
        ("stock-receive-2.csv", "\u{0}\u{1}\u{2}"),
        ("notes.txt", "hello"),
    ] {
        drop_into_spool(&w, name, text);
        let report = w.path("spool/rejected").join(format!("{name}.report.txt"));
        d.wait_for(name, || exists(&report));
        let report = std::fs::read_to_string(report).unwrap();
        assert!(
            report.contains("nothing of this file was applied"),
            "{report}"
        );
    }
    let bad_cancel = d.send(Method::POST, "/v1/orders/%FF%FE/cancel", "");
    assert_eq!(bad_cancel.status, StatusCode::BAD_REQUEST);
    let error: ErrorBody = serde_json::from_slice(&d.client.body(bad_cancel).unwrap()).unwrap();
    assert_eq!(error.error.code, "bad-request");
    assert_eq!(
        d.body(d.send(Method::GET, "/healthz", "")),
        r#"{"status":"ok"}"#
    );
    let listed = d.body(d.send(Method::GET, "/v1/orders", ""));
    assert_eq!(listed, "", "no order was taken in");
    d.stop();
    w.assert_store_sound("2026-11-30T10:00:00-08:00");
}

/// A scheduled batch that fails (here: the day before's release files cannot be written, so
/// the batch refuses to run) is tried again a minute later, for the same trigger, until it
/// succeeds; it is not put off to the next day's trigger.
#[test]
fn a_failed_scheduled_batch_is_tried_again_until_it_succeeds() {
    let w = Warehouse::new();
    // `logs` is a file, not a folder: no release file can be written.
    std::fs::write(w.path("logs"), "in the way").unwrap();
    let clock = Clock::manual(at("2026-11-30T10:00:00-08:00"));
    let d = Running::start(&w, &clock);
    assert_eq!(
        d.send(Method::POST, "/v1/items?name=items.csv", ITEMS)
            .status,
        StatusCode::OK
    );
    let stock = d.send(
        Method::POST,
        "/v1/stock/receive?name=s.csv",
        "sku,qty\nTSHIRT,10\n",
    );
    assert_eq!(stock.status, StatusCode::OK);
    let first = shirt_order("T-1", "Ana Ruiz", "1 Market St");
    assert_eq!(
        d.send(Method::POST, "/v1/orders", &first).status,
        StatusCode::OK
    );

    // Day one: the batch commits; its files are due.
    clock.set(at("2026-12-01T06:00:00-08:00"));
    d.wait_for_metric("border_release_batches_total{outcome=\"committed\"}", "1");
    let late = order(
        "T-2",
        "2026-12-01T09:00:00-08:00",
        "Luis Vega",
        "3 Market St",
        "USD",
        &[("TSHIRT", 1, "20.00")],
    );
    assert_eq!(
        d.send(Method::POST, "/v1/orders", &late).status,
        StatusCode::OK
    );

    // Day two: the files of day one still cannot be written, so the batch fails, and again a
    // minute later.
    clock.set(at("2026-12-02T06:00:00-08:00"));
    d.wait_for_metric("border_release_batches_total{outcome=\"failed\"}", "1");
    clock.set(at("2026-12-02T06:01:01-08:00"));
    d.wait_for_metric("border_release_batches_total{outcome=\"failed\"}", "2");

    // The way is cleared: the next try writes day one's files and commits day two's batch.
    std::fs::remove_file(w.path("logs")).unwrap();
    clock.set(at("2026-12-02T06:02:02-08:00"));
    d.wait_for_metric("border_release_batches_total{outcome=\"committed\"}", "2");
    assert_eq!(
        support::read_jsonl(&w.path("logs/releases/2026-12-01.jsonl")).len(),
        1
    );
    let day_two = support::read_jsonl(&w.path("logs/releases/2026-12-02.jsonl"));
    assert_eq!(day_two.len(), 1);
    assert_eq!(day_two[0]["orders"][0], "T-2");
    d.stop();
    w.assert_store_sound("2026-12-02T07:00:00-08:00");
}

/// Files of one kind waiting together are taken in in the order they arrived, not by name: of
/// two stock counts, the later one stands, whatever their names.
#[test]
fn spool_files_of_a_kind_are_taken_in_the_order_they_arrived() {
    let w = Warehouse::new();
    std::fs::create_dir_all(w.path("spool/inbox")).unwrap();
    drop_into_spool(&w, "items-1.csv", ITEMS);
    drop_into_spool(&w, "stock-count-9.csv", "sku,qty\nTSHIRT,5\n");
    std::thread::sleep(Duration::from_millis(50));
    drop_into_spool(&w, "stock-count-10.csv", "sku,qty\nTSHIRT,7\n");
    let clock = Clock::manual(at("2026-11-30T10:00:00-08:00"));
    let d = Running::start(&w, &clock);
    d.wait_for("both counts", || {
        exists(&w.path("spool/done/stock-count-9.csv"))
            && exists(&w.path("spool/done/stock-count-10.csv"))
    });
    let stock = d.body(d.send(Method::GET, "/v1/stock", ""));
    assert!(
        stock.contains(r#""sku":"TSHIRT","on_hand":7"#),
        "the later count stands: {stock}"
    );
    d.stop();
}

/// Input in another encoding than UTF-8 is refused whole, with one message that says what it
/// is, through the spool (to rejected/ with its report) and the API alike, and a post in UTF-16
/// does not fail the posts committed beside it; a UTF-8 byte-order mark is read as nothing.
#[test]
fn input_that_is_not_utf8_is_refused_whole_and_a_byte_order_mark_is_skipped() {
    let w = Warehouse::new();
    let clock = Clock::manual(at("2026-11-30T10:00:00-08:00"));
    let d = Running::start(&w, &clock);
    // The catalogue with a byte-order mark, as Excel saves "CSV UTF-8".
    drop_into_spool(&w, "items-1.csv", &format!("\u{feff}{ITEMS}"));
    d.wait_for("the catalogue", || {
        exists(&w.path("spool/done/items-1.csv"))
    });

    // Latin-1, as an old spreadsheet saves it: one byte per character.
    let latin1 = |text: &str| -> Vec<u8> {
        text.chars()
            .map(|c| u8::try_from(u32::from(c)).expect("a Latin-1 character"))
            .collect()
    };
    let good = shirt_order("U-1", "Zoë Peña", "1 Market St");
    let inbox = w.path("spool/inbox");
    for (name, bytes, found) in [
        (
            "orders-16.jsonl",
            utf16(&good, false),
            "orders-16.jsonl is UTF-16 (little-endian), not UTF-8",
        ),
        (
            "stock-count-16.csv",
            utf16("sku,qty\nTSHIRT,5\n", true),
            "stock-count-16.csv is UTF-16 (big-endian), not UTF-8",
        ),
        (
            "orders-latin1.jsonl",
            latin1(&good),
            "orders-latin1.jsonl is in another encoding (line 1 has bytes that are not UTF-8",
        ),
    ] {
        std::fs::write(inbox.join(format!("{name}.tmp")), &bytes).unwrap();
        std::fs::rename(inbox.join(format!("{name}.tmp")), inbox.join(name)).unwrap();
        let report = w.path("spool/rejected").join(format!("{name}.report.txt"));
        // The report is written before the file moves: both are waited for.
        let moved = w.path("spool/rejected").join(name);
        d.wait_for(name, || exists(&report) && exists(&moved));
        let report = std::fs::read_to_string(report).unwrap();
        assert!(report.starts_with(found), "{name}: {report}");
        assert!(
            report.ends_with(", not UTF-8: save it as UTF-8; nothing of this file was applied\n"),
            "{report}"
        );
        assert_eq!(
            report.lines().count(),
            1,
            "one message, not one per line: {report}"
        );
        assert!(exists(&w.path("spool/rejected").join(name)));
    }

    // Posts sent together, one in UTF-16 (they may share a commit): it alone is refused.
    let bodies: Vec<(String, Vec<u8>)> = vec![
        (
            "p-1".into(),
            shirt_order("P-1", "Ana Ruiz", "1 Market St").into_bytes(),
        ),
        (
            "p-16".into(),
            utf16(&shirt_order("P-16", "Ben Ode", "2 Market St"), false),
        ),
        (
            "p-2".into(),
            format!("\u{feff}{}", shirt_order("P-2", "Cy Young", "3 Market St")).into_bytes(),
        ),
    ];
    let answers: Vec<(StatusCode, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = bodies
            .iter()
            .map(|(name, body)| {
                let d = &d;
                scope.spawn(move || d.post_orders(name, body.clone()))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    assert_eq!(answers[0].0, StatusCode::OK, "{}", answers[0].1);
    assert_eq!(answers[1].0, StatusCode::BAD_REQUEST, "{}", answers[1].1);
    assert!(
        answers[1]
            .1
            .contains("p-16 is UTF-16 (little-endian), not UTF-8"),
        "{}",
        answers[1].1
    );
    assert_eq!(answers[2].0, StatusCode::OK, "{}", answers[2].1);
    let listed = d.body(d.send(Method::GET, "/v1/orders", ""));
    let ids: Vec<String> = listed
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["order_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut ids = ids;
    ids.sort();
    assert_eq!(ids, ["P-1", "P-2"]);
    d.stop();
    w.assert_store_sound("2026-11-30T10:00:00-08:00");
}
