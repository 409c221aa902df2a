//! The daemon's status page (`GET /`) and order pages (`GET /orders/ID`), read through HTTP from
//! the built binary serving a test warehouse: they ask for the token (HTTP Basic, any user name,
//! or a bearer token) while `/healthz` and `/metrics` stay open; their figures are those of
//! `orders list --json`, `orders show --json` and the release logs; every value is escaped; held
//! orders come a hundred to a page.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use support::{basic, data_of, order, unescape, Answer, Served, Warehouse};

const TOKEN: &str = "page-test-token-0123456789";
/// A Monday morning in Tijuana; the days before it were batched by commands, at their time.
const NOW: &str = "2026-11-30T10:00:00-08:00";
const DAY: &str = "2026-11-30";
const HOSTILE_ID: &str = "H/1?<b>&\"x'#%";
const HOSTILE_NAME: &str = "<script>alert(1)</script>";

fn auth() -> String {
    basic("anyone", TOKEN)
}

/// The page at `path`, which must answer 200 in HTML.
fn page(served: &Served, path: &str) -> String {
    let answer = served.get(path, Some(&auth()));
    assert_eq!(answer.status, 200, "GET {path}: {answer:?}");
    assert_eq!(
        answer.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    answer.body
}

/// `orders list --json` through the daemon.
fn orders_list(w: &Warehouse, args: &[&str]) -> Vec<serde_json::Value> {
    let mut command = vec!["orders", "list", "--json"];
    command.extend(args);
    w.ok(NOW, &command)
        .lines()
        .map(|line| serde_json::from_str(line).expect("orders list --json is JSON lines"))
        .collect()
}

/// Orders by state and reason ("" for none), as `orders list --json` counts them.
fn listed_counts(w: &Warehouse) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for row in orders_list(w, &[]) {
        let key = (
            row["state"].as_str().unwrap().to_owned(),
            row["reason"].as_str().unwrap_or("").to_owned(),
        );
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// Orders by state and reason, as the status page shows them.
fn page_counts(html: &str) -> BTreeMap<(String, String), u64> {
    data_of(html, "data-orders")
        .into_iter()
        .map(|row| {
            (
                (row["data-state"].clone(), row["data-reason"].clone()),
                row["data-orders"].parse().unwrap(),
            )
        })
        .collect()
}

/// A day's releases that stand and their value, from its release log and voids file.
fn logged_day(w: &Warehouse, day: &str) -> (u64, String) {
    let voided: Vec<String> =
        support::read_jsonl(&w.path(&format!("logs/releases/{day}.voids.jsonl")))
            .iter()
            .map(|void| void["release_id"].as_str().unwrap().to_owned())
            .collect();
    let standing: Vec<serde_json::Value> = w
        .release_log(day)
        .into_iter()
        .filter(|release| !voided.iter().any(|id| release["release_id"] == id.as_str()))
        .collect();
    let value: rust_decimal::Decimal = standing
        .iter()
        .map(|release| {
            release["value_usd"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        })
        .sum();
    (standing.len() as u64, format!("{value:.2}"))
}

/// The figures of a day as the status page's table of days gives them.
fn page_day(html: &str, day: &str) -> (u64, String) {
    let row = data_of(html, "data-figures-day")
        .into_iter()
        .find(|row| row["data-figures-day"] == day)
        .unwrap_or_else(|| panic!("no row for {day} in the days' figures"));
    (
        row["data-releases"].parse().unwrap(),
        row["data-value"].clone(),
    )
}

fn one(html: &str, name: &str) -> BTreeMap<String, String> {
    let mut found = data_of(html, name);
    assert_eq!(found.len(), 1, "{name} once: {found:?}");
    found.remove(0)
}

/// Sets a file's modification time to `at`, an RFC 3339 instant.
fn set_modified(path: &std::path::Path, at: &str) {
    let at = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(at.timestamp() as u64);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

/// A warehouse with days batched on 2026-11-27 and 11-28 (a release of which is void), and
/// today's batch run: released, pending, held for each reason the test catalogue gives, not
/// due, cancelled; one consignee and one order id are hostile.
fn batched_warehouse() -> Warehouse {
    let w = Warehouse::with_items("2026-11-26T10:00:00-08:00");
    let receipt = w.file("receipt.csv", "sku,qty\nTSHIRT,100\nJEANS,1\nBOOTS,5\n");
    w.ok(
        "2026-11-26T10:00:00-08:00",
        &["stock", "receive", receipt.to_str().unwrap()],
    );
    let import = |now: &str, name: &str, lines: &[String]| {
        let file = w.file(name, &(lines.join("\n") + "\n"));
        w.ok(now, &["orders", "import", file.to_str().unwrap()]);
    };
    let shirt = |id: &str, placed: &str, who: &str, street: &str, qty: u32, price: &str| {
        order(id, placed, who, street, "USD", &[("TSHIRT", qty, price)])
    };

    let d1 = "2026-11-27T10:00:00-08:00";
    import(
        d1,
        "d1.jsonl",
        &[
            shirt(
                "P1",
                "2026-11-26T09:00:00-08:00",
                "Ana Ruiz",
                "1 Market St",
                2,
                "19.99",
            ),
            order(
                "P2",
                "2026-11-26T09:30:00-08:00",
                "Ben Ode",
                "2 Harbor Blvd",
                "USD",
                &[("BOOTS", 1, "60.00")],
            ),
        ],
    );
    w.ok(d1, &["batch"]);

    let d2 = "2026-11-28T10:00:00-08:00";
    import(
        d2,
        "d2.jsonl",
        &[
            shirt(
                "Q1",
                "2026-11-27T09:00:00-08:00",
                "Cy Young",
                "3 Elm Ave",
                1,
                "10.00",
            ),
            order(
                "Q2",
                "2026-11-27T09:30:00-08:00",
                "Dee Park",
                "4 Oak Dr",
                "USD",
                &[("JEANS", 1, "45.00")],
            ),
        ],
    );
    w.ok(d2, &["batch"]);
    w.ok(
        d2,
        &[
            "releases",
            "void",
            "2026-11-28-000001",
            "--reason",
            "the truck did not leave",
        ],
    );

    import(
        NOW,
        "today.jsonl",
        &[
            shirt(
                "A1",
                "2026-11-29T09:00:00-08:00",
                "Eve Stone",
                "5 Pine St",
                3,
                "15.00",
            ),
            shirt(
                HOSTILE_ID,
                "2026-11-29T09:10:00-08:00",
                HOSTILE_NAME,
                "6 Palm Ave",
                50,
                "20.00",
            ),
            order(
                "R1",
                "2026-11-29T09:20:00-08:00",
                "Fay Lin",
                "7 Bay Rd",
                "USD",
                &[("RADIO", 1, "25.00")],
            ),
            order(
                "T1",
                "2026-11-29T09:30:00-08:00",
                "Gus Hale",
                "8 Vine St",
                "USD",
                &[("TEQUILA", 1, "30.00")],
            ),
            order(
                "E1",
                "2026-11-29T09:40:00-08:00",
                "Hal Roy",
                "9 Ash Ct",
                "EUR",
                &[("TSHIRT", 1, "12.00")],
            ),
            order(
                "J1",
                "2026-11-29T09:50:00-08:00",
                "Ida Cole",
                "10 Fir Ln",
                "USD",
                &[("JEANS", 1, "40.00")],
            ),
            shirt(
                "C1",
                "2026-11-30T08:00:00-08:00",
                "Jo Tan",
                "11 Oak Ct",
                1,
                "18.00",
            ),
            shirt(
                "X1",
                "2026-11-29T10:00:00-08:00",
                "Kim Lo",
                "12 Elm St",
                1,
                "9.00",
            ),
        ],
    );
    w.ok(NOW, &["orders", "cancel", "X1"]);
    w.ok(NOW, &["batch"]);
    w
}

#[test]
fn the_status_page_asks_for_the_token_and_shows_what_orders_list_and_the_release_logs_say() {
    let w = batched_warehouse();
    let port = w.listen_on_loopback(TOKEN);
    let mut served = w.serve(NOW, port);

    // Without the token, or with a wrong one, a browser is asked for it; the open endpoints
    // stay open.
    for authorization in [
        None,
        Some(basic("anyone", "not-the-token-at-all")),
        Some(basic(TOKEN, "")),
        Some("Bearer not-the-token-at-all".to_owned()),
        Some(format!("Digest {TOKEN}")),
    ] {
        for path in ["/", "/orders/A1", "/?page=2"] {
            let answer: Answer = served.get(path, authorization.as_deref());
            assert_eq!(answer.status, 401, "{path} with {authorization:?}");
            assert_eq!(
                answer.header("www-authenticate"),
                Some("Basic realm=\"border-release\""),
                "{answer:?}"
            );
            assert!(!answer.body.contains("A1"), "{}", answer.body);
        }
    }
    assert_eq!(served.get("/healthz", None).status, 200);
    assert_eq!(served.get("/metrics", None).status, 200);
    for authorization in [
        basic("anyone", TOKEN),
        basic("", TOKEN),
        format!("Bearer {TOKEN}"),
    ] {
        let answer = served.get("/", Some(&authorization));
        assert_eq!(answer.status, 200, "{authorization}: {answer:?}");
        assert_eq!(answer.header("cache-control"), Some("no-store"));
    }
    let html = page(&served, "/");

    // The orders by state and reason are those of `orders list --json`.
    let listed = listed_counts(&w);
    assert_eq!(page_counts(&html), listed);
    for wanted in [
        ("released", ""),
        ("pending", "stock"),
        ("pending", "not-due"),
        ("held", "over-limit"),
        ("held", "excluded-origin"),
        ("held", "excluded-goods"),
        ("held", "no-rate"),
        ("cancelled", ""),
    ] {
        let key = (wanted.0.to_owned(), wanted.1.to_owned());
        assert!(listed.contains_key(&key), "{wanted:?} in {listed:?}");
    }
    let open: u64 = listed
        .iter()
        .filter(|((state, _), _)| state == "pending" || state == "held")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(one(&html, "data-open")["data-open"], open.to_string());

    // The held orders that need a decision, with the reason words and values of the listing,
    // in its order; the waiting ones are not among them.
    let held = orders_list(&w, &["--state", "held"]);
    assert_eq!(
        one(&html, "data-held-total")["data-held-total"],
        held.len().to_string()
    );
    let rows = data_of(&html, "data-order");
    let shown: Vec<(String, String, String)> = rows
        .iter()
        .map(|row| {
            (
                row["data-order"].clone(),
                row["data-reason"].clone(),
                row["data-value"].clone(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = held
        .iter()
        .map(|row| {
            (
                row["order_id"].as_str().unwrap().to_owned(),
                row["reason"].as_str().unwrap().to_owned(),
                row["value_usd"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    assert_eq!(shown, expected);
    for row in &held {
        let explanation = row["explanation"].as_str().unwrap();
        assert!(
            unescape(&html).contains(explanation),
            "{explanation} on the page"
        );
    }

    // A hostile consignee and order id are text, and the id's link leads to its page.
    assert!(!html.contains(HOSTILE_NAME));
    assert!(!html.contains("<b>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let link = "orders/H%2F1%3F%3Cb%3E%26%22x%27%23%25";
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    let hostile = page(&served, &format!("/{link}"));
    assert!(!hostile.contains(HOSTILE_NAME));
    assert_eq!(
        one(&hostile, "data-consignee")["data-consignee"],
        HOSTILE_NAME
    );
    assert_eq!(one(&hostile, "data-state")["data-order"], HOSTILE_ID);

    // Each held order's page says what `orders show --json` says.
    for row in &held {
        let id = row["order_id"].as_str().unwrap();
        let shown: serde_json::Value =
            serde_json::from_str(&w.ok(NOW, &["orders", "show", id, "--json"])).unwrap();
        let encoded: String = id
            .bytes()
            .map(|byte| {
                if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                    (byte as char).to_string()
                } else {
                    format!("%{byte:02X}")
                }
            })
            .collect();
        let order_html = page(&served, &format!("/orders/{encoded}"));
        let head = one(&order_html, "data-state");
        assert_eq!(head["data-order"], id);
        assert_eq!(head["data-state"], shown["state"].as_str().unwrap());
        assert_eq!(head["data-reason"], shown["reason"].as_str().unwrap());
        assert_eq!(
            one(&order_html, "data-explanation")["data-explanation"],
            shown["explanation"].as_str().unwrap()
        );
        assert_eq!(
            one(&order_html, "data-order-value")["data-order-value"],
            shown["value_usd"].as_str().unwrap_or("")
        );
        let lines: Vec<String> = data_of(&order_html, "data-sku")
            .iter()
            .map(|line| format!("{} {}", line["data-sku"], line["data-value"]))
            .collect();
        let expected: Vec<String> = shown["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|line| {
                format!(
                    "{} {}",
                    line["sku"].as_str().unwrap(),
                    line["value_usd"].as_str().unwrap_or("")
                )
            })
            .collect();
        assert_eq!(lines, expected, "{id}");
    }
    // A released order's page names its release.
    let released = page(&served, "/orders/A1");
    let a1: serde_json::Value =
        serde_json::from_str(&w.ok(NOW, &["orders", "show", "A1", "--json"])).unwrap();
    assert_eq!(
        one(&released, "data-release")["data-release"],
        a1["release_id"].as_str().unwrap()
    );
    // An order not known is a page that says so, with 404.
    let unknown = served.get("/orders/NOPE-1", Some(&auth()));
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(unknown.body.contains("order NOPE-1 is not known"));

    // The days: read from the store at start, as the release logs have them (a void release
    // left its day); no batch since the daemon started, so the store's last day stands in.
    served.wait_until("the days' figures to be read", |served| {
        !page(served, "/").contains("being read")
    });
    let html = page(&served, "/");
    for day in ["2026-11-27", "2026-11-28", DAY] {
        assert_eq!(page_day(&html, day), logged_day(&w, day), "{day}");
    }
    assert_eq!(page_day(&html, "2026-11-28").0, 1);
    assert_eq!(page_day(&html, "2026-11-29"), (0, "0.00".to_owned()));
    assert_eq!(one(&html, "data-last-batch")["data-outcome"], "none");
    let store_day = one(&html, "data-store-last-day");
    let (releases, value) = logged_day(&w, DAY);
    assert_eq!(store_day["data-store-last-day"], DAY);
    assert_eq!(store_day["data-store-releases"], releases.to_string());
    assert_eq!(store_day["data-store-value"], value);
    let next = one(&html, "data-at");
    assert_eq!(next["data-at"], "2026-12-01T14:00:00Z");
    assert_eq!(one(&html, "data-today")["data-today"], DAY);
    assert_eq!(one(&html, "data-policy")["data-policy"], "section-321");
    assert_eq!(one(&html, "data-health")["data-health"], "ok");

    // Spool files refused in the last 7 days, with their reports as text; an older one is not
    // listed.
    let bad = order(
        "BAD1",
        "2026-11-29T11:00:00-08:00",
        "Lee Ray",
        "13 Fig St",
        "USD",
        &[("<img src=x onerror=alert(1)>", 1, "1.00")],
    );
    let inbox = w.path("spool/inbox");
    std::fs::write(inbox.join("orders-bad.jsonl.tmp"), bad + "\n").unwrap();
    std::fs::rename(
        inbox.join("orders-bad.jsonl.tmp"),
        inbox.join("orders-bad.jsonl"),
    )
    .unwrap();
    let report = w.path("spool/rejected/orders-bad.jsonl.report.txt");
    served.wait_until("the bad file to be refused", |_| {
        report.exists() && w.path("spool/rejected/orders-bad.jsonl").exists()
    });
    // Refused an hour ago, as the test's clock goes; another, eight days ago.
    set_modified(&report, "2026-11-30T09:00:00-08:00");
    let old = w.path("spool/rejected/orders-old.jsonl.report.txt");
    std::fs::write(&old, "orders-old.jsonl: an old refusal\n").unwrap();
    set_modified(&old, "2026-11-22T10:00:00-08:00");
    let html = page(&served, "/");
    assert_eq!(
        one(&html, "data-rejected-total")["data-rejected-total"],
        "1"
    );
    assert_eq!(one(&html, "data-file")["data-file"], "orders-bad.jsonl");
    assert!(!html.contains("<img"));
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "the report is shown"
    );
    assert!(!html.contains("an old refusal"));

    // A batch through the daemon: the page shows it as the last batch, and its day, ahead of
    // today, joins the days.
    w.ok(NOW, &["batch", "--day", "2026-12-01"]);
    let html = page(&served, "/");
    let last = one(&html, "data-last-batch");
    assert_eq!(last["data-last-batch"], "2026-12-01");
    assert_eq!(last["data-outcome"], "committed");
    let (releases, value) = logged_day(&w, "2026-12-01");
    assert_eq!(releases, 1, "C1 was due on 2026-12-01");
    assert_eq!(
        one(&html, "data-last-releases")["data-last-releases"],
        releases.to_string()
    );
    assert_eq!(one(&html, "data-last-value")["data-last-value"], value);
    assert_eq!(page_day(&html, "2026-12-01"), (releases, value));
    assert_eq!(page_counts(&html), listed_counts(&w));

    // A void through the daemon leaves its day at once.
    let today_release = format!("{DAY}-000001");
    w.ok(
        NOW,
        &["releases", "void", &today_release, "--reason", "no truck"],
    );
    let html = page(&served, "/");
    assert_eq!(page_day(&html, DAY), logged_day(&w, DAY));
    assert_eq!(page_counts(&html), listed_counts(&w));
}

#[test]
fn held_orders_come_a_hundred_to_a_page_in_intake_order() {
    let w = Warehouse::with_items(NOW);
    let lines: Vec<String> = (0..260)
        .map(|n| {
            // Every 10th order waits for nothing and is released; the others hold a radio.
            let sku = if n % 10 == 0 { "BOOTS" } else { "RADIO" };
            order(
                &format!("O-{n:03}"),
                "2026-11-29T09:00:00-08:00",
                &format!("Buyer {n}"),
                &format!("{n} Market St"),
                "USD",
                &[(sku, 1, "25.00")],
            )
        })
        .collect();
    let receipt = w.file("receipt.csv", "sku,qty\nBOOTS,100\n");
    w.ok(NOW, &["stock", "receive", receipt.to_str().unwrap()]);
    let file = w.file("orders.jsonl", &(lines.join("\n") + "\n"));
    w.ok(NOW, &["orders", "import", file.to_str().unwrap()]);
    w.ok(NOW, &["batch"]);
    let port = w.listen_on_loopback(TOKEN);
    let served = w.serve(NOW, port);

    let held: Vec<String> = orders_list(&w, &["--state", "held"])
        .iter()
        .map(|row| row["order_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(held.len(), 234);
    let ids_on = |html: &str| -> Vec<String> {
        data_of(html, "data-order")
            .into_iter()
            .map(|row| row["data-order"].clone())
            .collect()
    };
    let first = page(&served, "/");
    assert_eq!(ids_on(&first), held[..100]);
    assert!(first.contains("href=\"?page=2\">next 100"));
    assert!(!first.contains("previous 100"));
    assert_eq!(ids_on(&page(&served, "/?page=1")), held[..100]);
    let second = page(&served, "/?page=2");
    assert_eq!(ids_on(&second), held[100..200]);
    assert!(second.contains("href=\"?page=1\">« previous 100"));
    assert!(second.contains("href=\"?page=3\">next 100"));
    let third = page(&served, "/?page=3");
    assert_eq!(ids_on(&third), held[200..]);
    assert!(!third.contains("next 100"));
    assert_eq!(one(&third, "data-first")["data-first"], "201");
    assert_eq!(one(&third, "data-last")["data-last"], "234");
    let beyond = page(&served, "/?page=9");
    assert!(ids_on(&beyond).is_empty());
    assert!(beyond.contains("No held order on page 9"));
    let bad = served.get("/?page=two", Some(&auth()));
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("page must be a whole number"));
}
