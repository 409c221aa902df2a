//! The status page in a real browser: headless Chromium (`/usr/bin/chromium`, Debian's
//! `chromium` package) against the built daemon holding two weeks of a warehouse's days. The
//! page loads with the credentials in the URL (HTTP Basic) and not without them, its figures are
//! those of `orders list --json`, an order's link opens that order's page, a hostile consignee
//! is shown as text, and screenshots at desktop and phone width are written to
//! `target/screenshots/`.
//!
//! Without Chromium the test says so and passes, unless `BORDER_RELEASE_BROWSER=required`
//! (as `.ci/run` sets it), when it fails.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use support::{data_of, order, Seeded, Warehouse};

const CHROMIUM: &str = "/usr/bin/chromium";
const TOKEN: &str = "browser-test-token-0123456789";
/// The Monday morning the browser looks at; the two weeks before it were batched each day.
const NOW: &str = "2026-11-30T10:00:00-08:00";
const DAY: &str = "2026-11-30";
const HOSTILE_NAME: &str = "<script>alert(1)</script>";
/// How long one run of the browser may take.
const BROWSER_PATIENCE: Duration = Duration::from_secs(90);

/// Whether the browser is there; without it, the test passes saying why, unless it is
/// required.
fn chromium_or_skip() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    let required = std::env::var("BORDER_RELEASE_BROWSER").is_ok_and(|value| value == "required");
    assert!(
        !required,
        "BORDER_RELEASE_BROWSER=required, but {CHROMIUM} is missing: apt-get install -y chromium"
    );
    eprintln!(
        "SKIPPED: the status page was not checked in a browser: {CHROMIUM} is missing \
         (apt-get install -y chromium; BORDER_RELEASE_BROWSER=required makes this a failure)"
    );
    false
}

/// Headless Chromium with a profile of its own, run on `url` with `args`; its standard output.
fn chromium(profile: &Path, url: &str, args: &[&str]) -> String {
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("poll chromium").is_some() {
            break;
        }
        if start.elapsed() > BROWSER_PATIENCE {
            let _ = child.kill();
            let output = child.wait_with_output().expect("chromium's output");
            panic!(
                "chromium did not finish {args:?} within {BROWSER_PATIENCE:?}:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("chromium's output");
    assert!(
        output.status.success(),
        "chromium {args:?} failed: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the DOM is UTF-8")
}

/// The DOM of a page after the browser loaded it.
fn dom(profiles: &Path, url: &str) -> String {
    let profile = tempfile::tempdir_in(profiles).expect("a profile");
    chromium(profile.path(), url, &["--dump-dom"])
}

/// A screenshot of `url` at `width` x `height`; checks it is a PNG of that width.
fn screenshot(profiles: &Path, url: &str, file: &Path, width: u32, height: u32) {
    let profile = tempfile::tempdir_in(profiles).expect("a profile");
    let _ = std::fs::remove_file(file);
    chromium(
        profile.path(),
        url,
        &[
            &format!("--screenshot={}", file.display()),
            &format!("--window-size={width},{height}"),
        ],
    );
    let png = std::fs::read(file).expect("the screenshot is written");
    assert_eq!(
        &png[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is a PNG",
        file.display()
    );
    let png_width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let png_height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!(
        (png_width, png_height),
        (width, height),
        "{}",
        file.display()
    );
    assert!(png.len() > 20_000, "{} looks empty", file.display());
}

/// Where the screenshots go: `target/screenshots/`.
fn screenshots() -> PathBuf {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder")
        .join("screenshots");
    std::fs::create_dir_all(&folder).expect("make target/screenshots");
    folder
}

const NAMES: &[&str] = &[
    "Ana Ruiz",
    "Luis Ortega",
    "Grace Kim",
    "Marisol Peña",
    "Tom Becker",
    "Priya Nair",
    "José Álvarez",
    "Hannah Cole",
    "Diego Fuentes",
    "Wei Zhang",
    "Fatima Haddad",
    "Sam O'Neil",
    "Carmen Delgado",
    "Noah Fischer",
    "Lucía Romero",
    "Omar Aziz",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("San Diego", "CA", "92101"),
    ("Chula Vista", "CA", "91910"),
    ("Los Angeles", "CA", "90012"),
    ("Phoenix", "AZ", "85004"),
    ("Tucson", "AZ", "85701"),
    ("Austin", "TX", "78701"),
    ("El Paso", "TX", "79901"),
    ("Las Vegas", "NV", "89101"),
];

/// One order of the sample days: `seed` picks its recipient, city and lines.
fn sample_order(
    id: &str,
    placed: &str,
    random: &mut Seeded,
    lines: &[(&str, u32, &str)],
) -> String {
    let name = NAMES[random.below(NAMES.len() as u64) as usize];
    let (city, state, zip) = CITIES[random.below(CITIES.len() as u64) as usize];
    let lines: Vec<serde_json::Value> = lines
        .iter()
        .map(|(sku, qty, price)| serde_json::json!({"sku": sku, "qty": qty, "unit_price": price}))
        .collect();
    serde_json::json!({
        "order_id": id,
        "placed_at": placed,
        "recipient": {
            "name": name,
            "address": {"line1": format!("{} {} St", 100 + random.below(9000), ["Market", "Palm", "Harbor", "Elm", "Mission"][random.below(5) as usize]),
                        "city": city, "state": state, "postal_code": zip, "country": "US"}
        },
        "currency": "USD",
        "lines": lines,
    })
    .to_string()
}

/// A warehouse with the thirteen days before 2026-11-30 batched, each at 10:00 of its day, and
/// that day's orders taken in, to be batched through the daemon: among them orders held for
/// each reason the test catalogue gives, one not due yet, and one with a hostile consignee.
fn two_weeks() -> Warehouse {
    let w = Warehouse::with_items("2026-11-16T08:00:00-08:00");
    let config = std::fs::read_to_string(w.config()).unwrap();
    std::fs::write(
        w.config(),
        config.replace("name = \"test-tijuana\"", "name = \"Tijuana · Otay Mesa\""),
    )
    .unwrap();
    let receipt = w.file("receipt.csv", "sku,qty\nTSHIRT,5000\nJEANS,800\nBOOTS,40\n");
    w.ok(
        "2026-11-16T08:00:00-08:00",
        &["stock", "receive", receipt.to_str().unwrap()],
    );
    let mut random = Seeded(20261130);
    let first: chrono::NaiveDate = "2026-11-17".parse().unwrap();
    for (n, day) in first.iter_days().take(14).enumerate() {
        let count = 6 + random.below(14) as usize + if n % 7 == 5 { 10 } else { 0 };
        let placed_day = day.pred_opt().unwrap();
        let mut lines = Vec::new();
        for k in 0..count {
            let placed = format!(
                "{placed_day}T{:02}:{:02}:00-08:00",
                9 + random.below(12),
                random.below(60)
            );
            let id = format!("SO-{}{k:03}", day.format("%m%d"));
            let qty = 1 + random.below(3) as u32;
            let order_lines = match random.below(10) {
                0..=4 => vec![("TSHIRT", qty, "19.99")],
                5..=7 => vec![("JEANS", 1, "45.00"), ("TSHIRT", qty, "19.99")],
                8 => vec![("BOOTS", 1, "89.00")],
                _ => vec![("RADIO", 1, "34.50")],
            };
            lines.push(sample_order(&id, &placed, &mut random, &order_lines));
        }
        let now = format!("{day}T10:00:00-08:00");
        if day.to_string() == DAY {
            lines.push(order(
                "SO-1130-HX",
                "2026-11-29T16:05:00-08:00",
                HOSTILE_NAME,
                "1 Elm St",
                "USD",
                &[("TSHIRT", 45, "19.99")],
            ));
            lines.push(order(
                "SO-1130-EU",
                "2026-11-29T17:15:00-08:00",
                "Pierre Martin",
                "44 Rue St",
                "EUR",
                &[("JEANS", 2, "39.00")],
            ));
            lines.push(order(
                "SO-1130-TQ",
                "2026-11-29T18:20:00-08:00",
                "Gus Hale",
                "8 Vine St",
                "USD",
                &[("TEQUILA", 2, "38.00")],
            ));
            lines.push(order(
                "SO-1130-LATE",
                "2026-11-30T07:45:00-08:00",
                "Jo Tan",
                "11 Oak Ct",
                "USD",
                &[("TSHIRT", 1, "19.99")],
            ));
        }
        let file = w.file(&format!("orders-{day}.jsonl"), &(lines.join("\n") + "\n"));
        w.ok(&now, &["orders", "import", file.to_str().unwrap()]);
        if day.to_string() != DAY {
            w.ok(&now, &["batch"]);
        }
    }
    w
}

/// Orders by state and reason ("" for none), from `orders list --json`.
fn listed_counts(w: &Warehouse) -> BTreeMap<(String, String), String> {
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for line in w.ok(NOW, &["orders", "list", "--json"]).lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = (
            row["state"].as_str().unwrap().to_owned(),
            row["reason"].as_str().unwrap_or("").to_owned(),
        );
        *counts.entry(key).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(key, n)| (key, n.to_string()))
        .collect()
}

#[test]
fn the_status_page_in_a_browser_shows_the_figures_opens_orders_and_fits_a_phone() {
    if !chromium_or_skip() {
        return;
    }
    let w = two_weeks();
    let port = w.listen_on_loopback(TOKEN);
    let mut served = w.serve(NOW, port);
    // Today's batch, through the daemon.
    w.ok(NOW, &["batch"]);
    // A refused spool file, an hour before now by the test's clock.
    let bad = order(
        "SO-BAD-1",
        "2026-11-29T11:00:00-08:00",
        "Lee Ray",
        "13 Fig St",
        "USD",
        &[("PHONE-X", 1, "120.00")],
    );
    let inbox = w.path("spool/inbox");
    std::fs::write(inbox.join("orders-shopify.jsonl.tmp"), bad + "\n").unwrap();
    std::fs::rename(
        inbox.join("orders-shopify.jsonl.tmp"),
        inbox.join("orders-shopify.jsonl"),
    )
    .unwrap();
    let report = w.path("spool/rejected/orders-shopify.jsonl.report.txt");
    served.wait_until("the refused file", |_| {
        report.exists() && w.path("spool/rejected/orders-shopify.jsonl").exists()
    });
    let an_hour_ago = chrono::DateTime::parse_from_rfc3339("2026-11-30T09:00:00-08:00").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&report)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(an_hour_ago.timestamp() as u64))
        .unwrap();
    served.wait_until("the days' figures", |served| {
        !served
            .get("/", Some(&support::basic("x", TOKEN)))
            .body
            .contains("being read")
    });

    let profiles = tempfile::tempdir().expect("a folder for the browser's profiles");
    let base = format!("http://127.0.0.1:{port}/");
    let with_credentials = format!("http://operator:{TOKEN}@127.0.0.1:{port}/");

    // Without the credentials, or with wrong ones, the browser is asked for them (headless, it
    // shows nothing) and no figure reaches it.
    for url in [
        base.clone(),
        format!("http://operator:wrong-token-0123456789@127.0.0.1:{port}/"),
    ] {
        let refused = dom(profiles.path(), &url);
        assert!(!refused.contains("data-orders"), "{url}: {refused}");
        assert!(!refused.contains("Held orders"), "{url}: {refused}");
    }

    // With them, the page and its figures: those of `orders list --json`.
    let page = dom(profiles.path(), &with_credentials);
    let shown: BTreeMap<(String, String), String> = data_of(&page, "data-orders")
        .into_iter()
        .map(|row| {
            (
                (row["data-state"].clone(), row["data-reason"].clone()),
                row["data-orders"].clone(),
            )
        })
        .collect();
    assert_eq!(shown, listed_counts(&w));
    let held: Vec<String> = w
        .ok(NOW, &["orders", "list", "--state", "held", "--json"])
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            row["order_id"].as_str().unwrap().to_owned()
        })
        .collect();
    let rows = data_of(&page, "data-order");
    let ids: Vec<&str> = rows.iter().map(|row| row["data-order"].as_str()).collect();
    assert!(!held.is_empty());
    assert_eq!(
        ids,
        held.iter()
            .take(100)
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    let releases_today = w.release_log(DAY).len().to_string();
    let today = data_of(&page, "data-figures-day")
        .into_iter()
        .find(|row| row["data-figures-day"] == DAY)
        .expect("today's figures");
    assert_eq!(today["data-releases"], releases_today);
    let last = data_of(&page, "data-last-batch");
    assert_eq!(last.len(), 1);
    assert_eq!(last[0]["data-last-batch"], DAY);
    assert_eq!(last[0]["data-outcome"], "committed");
    assert_eq!(
        data_of(&page, "data-last-releases")[0]["data-last-releases"],
        releases_today
    );
    assert_eq!(data_of(&page, "data-figures-day").len(), 14);
    assert_eq!(data_of(&page, "data-file").len(), 1);

    // The hostile consignee is text: no script element, the name in a text node.
    assert!(!page.to_lowercase().contains("<script"), "a script element");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    // The hostile consignee's order, through the link the page gives it.
    let hostile = rows
        .iter()
        .position(|row| row["data-order"] == "SO-1130-HX")
        .expect("the hostile order is held");
    let hrefs: Vec<&str> = page
        .match_indices("href=\"orders/")
        .map(|(at, _)| {
            let start = at + "href=\"".len();
            &page[start..start + page[start..].find('"').unwrap()]
        })
        .collect();
    assert_eq!(hrefs.len(), rows.len());
    let order_page = dom(
        profiles.path(),
        &format!("{with_credentials}{}", hrefs[hostile]),
    );
    let head = data_of(&order_page, "data-state");
    assert_eq!(head.len(), 1, "{order_page}");
    assert_eq!(head[0]["data-order"], "SO-1130-HX");
    assert_eq!(head[0]["data-state"], "held");
    assert_eq!(head[0]["data-reason"], "over-limit");
    assert_eq!(
        data_of(&order_page, "data-consignee")[0]["data-consignee"],
        HOSTILE_NAME
    );
    assert!(!order_page.to_lowercase().contains("<script"));

    // Screenshots at desktop and phone width.
    let folder = screenshots();
    let shots = [
        ("status-desktop.png", with_credentials.clone(), 1280, 2050),
        ("status-phone.png", with_credentials.clone(), 390, 2400),
        (
            "order-phone.png",
            format!("{with_credentials}{}", hrefs[hostile]),
            390,
            1200,
        ),
    ];
    for (name, url, width, height) in shots {
        let file = folder.join(name);
        screenshot(profiles.path(), &url, &file, width, height);
        println!("screenshot: {}", file.display());
    }
}
