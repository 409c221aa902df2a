//! Duty and fee estimates: the duty tables `duties import` keeps, the rows that apply to each
//! line, the fees of `[[fees]]`, and where the estimate shows (the release log, the manifest,
//! the release summary, `plan --json`, `orders show`); the plan itself never depends on it.

mod support;

use rust_decimal::Decimal;
use serde_json::Value;
use support::{order, stderr, Warehouse, POLICIES};

/// 07:00 in Los Angeles on 2026-12-03, after the day's 06:00 cutoff: the informal-entry
/// policy is in force from this day, Section 321 before it.
const NOW: &str = "2026-12-03T07:00:00-08:00";
const DAY: &str = "2026-12-03";
/// The day before, under Section 321 (lane de-minimis), and 07:00 on it.
const EVE: &str = "2026-12-02";
const EVE_NOW: &str = "2026-12-02T07:00:00-08:00";

/// A fee for each lane, the informal entry's spared for USMCA goods.
const FEES: &str = r#"
[[fees]]
name = "merchandise-processing-fee"
from = "2025-10-01"
lane = "informal-entry"
per_release_usd = "2.69"
usmca_exempt = true

[[fees]]
name = "broker-handling"
from = "2026-01-01"
lane = "de-minimis"
per_release_usd = "1.50"
"#;

const CATALOGUE: &str = "sku,description,hts,origin,flags,mid,usmca
TSHIRT,Cotton knit T-shirt,6109.10.0012,MX,,,yes
SHIRT-CN,Cotton knit T-shirt,6109.10.0040,CN,,,
JEANS,Cotton denim trousers,6203.42.4011,MX,,,no
BOOTS,Leather ankle boots,6403.91.6075,MX,,,no
";

/// The tables: rows for every rule of choice, and six bad lines.
const TABLE: &str = "hts_prefix,origin,program,rate_percent,from,usmca_exempt
61,*,mfn,10,2026-01-01,yes
6109,*,mfn,16.5,2026-01-01,yes
6109,*,mfn,18,2026-12-03,yes
6109,CN,mfn,20,2026-01-01,yes
61,CN,section-301,7.5,2020-02-14,no
6203.42,*,mfn,16.6,2026-01-01,yes
62,*,section-122,10,2026-02-24,yes
62,*,section-122,0,2026-12-03,yes
6109x,*,mfn,1,2026-01-01,yes
6109,MEX,mfn,1,2026-01-01,yes
6109,*,MFN,1,2026-01-01,yes
6109,*,mfn,-1,2026-01-01,yes
6109,*,mfn,1,2026-13-01,yes
6109,*,mfn,1,2026-01-01,maybe
";

fn path(file: &std::path::Path) -> &str {
    file.to_str().expect("a UTF-8 path")
}

fn usd(value: &Value) -> Decimal {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not an amount"))
        .parse()
        .unwrap()
}

/// A warehouse with the catalogue, stock, and four recipients' orders: one for the Section 321
/// day (jeans), three for the informal-entry day (USMCA T-shirts only; a Chinese shirt and
/// jeans; boots, of unknown duty, and a T-shirt). With `estimated`, the tables and fees too.
fn warehouse(estimated: bool) -> Warehouse {
    let policies = if estimated {
        format!("{POLICIES}{FEES}")
    } else {
        POLICIES.to_owned()
    };
    let w = Warehouse::with_policies(&policies);
    let items = w.file("items.csv", CATALOGUE);
    w.ok(NOW, &["items", "import", path(&items)]);
    let stock = w.file(
        "stock.csv",
        "sku,qty\nTSHIRT,10\nSHIRT-CN,10\nJEANS,10\nBOOTS,10\n",
    );
    w.ok(NOW, &["stock", "receive", path(&stock)]);
    if estimated {
        let table = w.file("duties.csv", TABLE);
        let output = w.run_at(NOW, &["duties", "import", path(&table)]);
        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(
            said.contains("8 accepted, 0 unchanged, 6 rejected"),
            "{said}"
        );
        let errors = stderr(&output);
        for (line, field) in [
            (10, "hts_prefix"),
            (11, "origin"),
            (12, "program"),
            (13, "rate_percent"),
            (14, "from"),
            (15, "usmca_exempt"),
        ] {
            assert!(
                errors.contains(&format!("line {line}")) && errors.contains(field),
                "line {line} ({field}) not named:\n{errors}"
            );
        }
    }
    let orders = [
        order(
            "EVE",
            "2026-12-01T10:00:00-08:00",
            "Eve Adams",
            "1 Main St",
            "USD",
            &[("JEANS", 1, "45.00")],
        ),
        order(
            "USMCA",
            "2026-12-02T10:00:00-08:00",
            "Uma Cruz",
            "2 Main St",
            "USD",
            &[("TSHIRT", 2, "19.99")],
        ),
        order(
            "MIXED",
            "2026-12-02T10:00:00-08:00",
            "Max Diaz",
            "3 Main St",
            "USD",
            &[("SHIRT-CN", 1, "10.10"), ("JEANS", 1, "3.33")],
        ),
        order(
            "BOOTS",
            "2026-12-02T10:00:00-08:00",
            "Bo Evans",
            "4 Main St",
            "USD",
            &[("BOOTS", 1, "50.00"), ("TSHIRT", 1, "19.99")],
        ),
    ];
    let file = w.file("orders.jsonl", &orders.join("\n"));
    w.ok(NOW, &["orders", "import", path(&file)]);
    w
}

/// The release of the log whose orders include `order_id`.
fn release_of<'a>(log: &'a [Value], order_id: &str) -> &'a Value {
    log.iter()
        .find(|release| {
            release["orders"]
                .as_array()
                .unwrap()
                .iter()
                .any(|id| id == order_id)
        })
        .unwrap_or_else(|| panic!("no release holds {order_id}"))
}

/// A program's name, rate and duty.
type Program = (String, String, String);

/// Each line's (sku, duty_usd, programs).
fn line_duties(release: &Value) -> Vec<(String, Value, Vec<Program>)> {
    release["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            let programs = line["duties"]
                .as_array()
                .unwrap()
                .iter()
                .map(|duty| {
                    (
                        duty["program"].as_str().unwrap().to_owned(),
                        duty["rate_percent"].as_str().unwrap().to_owned(),
                        duty["usd"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            (
                line["sku"].as_str().unwrap().to_owned(),
                line["duty_usd"].clone(),
                programs,
            )
        })
        .collect()
}

fn program(name: &str, rate: &str, usd: &str) -> Program {
    (name.into(), rate.into(), usd.into())
}

#[test]
fn each_release_carries_the_duty_of_the_rows_that_apply_and_the_fees_of_its_lane() {
    let w = warehouse(true);
    w.ok(EVE_NOW, &["batch"]);
    w.ok(NOW, &["batch"]);

    // Section 321 day: jeans at the 6203.42 mfn row (longer than 62) and the section-122
    // surcharge, not yet ended; the de-minimis lane's fee.
    let eve = w.release_log(EVE);
    let release = release_of(&eve, "EVE");
    assert_eq!(
        line_duties(release),
        [(
            "JEANS".to_owned(),
            Value::from("11.97"),
            vec![
                program("mfn", "16.6", "7.47"),
                program("section-122", "10", "4.50")
            ]
        )]
    );
    assert_eq!(release["duty_usd"], "11.97");
    assert_eq!(
        release["fees"],
        serde_json::json!([{"name": "broker-handling", "usd": "1.50"}])
    );
    assert_eq!(release["fees_usd"], "1.50");

    let log = w.release_log(DAY);
    // USMCA T-shirts: the mfn row spares them, and so does the fee: nothing owed, but known.
    let usmca = release_of(&log, "USMCA");
    assert_eq!(
        line_duties(usmca),
        [("TSHIRT".to_owned(), Value::from("0.00"), vec![])]
    );
    assert_eq!(usmca["duty_usd"], "0.00");
    assert_eq!(usmca["fees"], serde_json::json!([]));
    assert_eq!(usmca["fees_usd"], "0.00");
    assert_eq!(usmca["lines"][0]["usmca"], true);

    // The Chinese shirt: China's exact 6109 row (20 %) over the later `*` one (18 %), and
    // Section 301 from the 61 row; 10.10 x 7.5 % = 0.7575 is 0.76. The jeans: the surcharge
    // ended by its 0 row on this day; 3.33 x 16.6 % = 0.55278 is 0.55.
    let mixed = release_of(&log, "MIXED");
    assert_eq!(
        line_duties(mixed),
        [
            (
                "SHIRT-CN".to_owned(),
                Value::from("2.78"),
                vec![
                    program("mfn", "20", "2.02"),
                    program("section-301", "7.5", "0.76")
                ]
            ),
            (
                "JEANS".to_owned(),
                Value::from("0.55"),
                vec![program("mfn", "16.6", "0.55")]
            ),
        ]
    );
    assert_eq!(mixed["duty_usd"], "3.33");
    assert_eq!(
        mixed["fees"],
        serde_json::json!([{"name": "merchandise-processing-fee", "usd": "2.69"}])
    );

    // Boots have no mfn row: their duty, and so the release's, is unknown; the T-shirt beside
    // them still shows, and the release pays the fee, not every line being USMCA.
    let boots = release_of(&log, "BOOTS");
    assert_eq!(
        line_duties(boots),
        [
            ("BOOTS".to_owned(), Value::Null, vec![]),
            ("TSHIRT".to_owned(), Value::from("0.00"), vec![]),
        ]
    );
    assert_eq!(boots["duty_usd"], Value::Null);
    assert_eq!(boots["fees_usd"], "2.69");

    // A release's duty is the sum of its lines', and each line's the sum of its programs'.
    for release in eve.iter().chain(&log) {
        let lines = release["lines"].as_array().unwrap();
        for line in lines.iter().filter(|line| !line["duty_usd"].is_null()) {
            let programs: Decimal = line["duties"]
                .as_array()
                .unwrap()
                .iter()
                .map(|duty| usd(&duty["usd"]))
                .sum();
            assert_eq!(usd(&line["duty_usd"]), programs, "{line}");
        }
        if !release["duty_usd"].is_null() {
            let sum: Decimal = lines.iter().map(|line| usd(&line["duty_usd"])).sum();
            assert_eq!(usd(&release["duty_usd"]), sum, "{release}");
        }
        let fees: Decimal = release["fees"]
            .as_array()
            .unwrap()
            .iter()
            .map(|fee| usd(&fee["usd"]))
            .sum();
        assert_eq!(usd(&release["fees_usd"]), fees);
    }

    // The manifest has each line's duty, empty when unknown; the release summary each
    // release's duty and fees.
    let manifest = w.manifest(DAY);
    let header = csv::Reader::from_path(w.path(&format!("logs/releases/{DAY}.manifest.csv")))
        .unwrap()
        .headers()
        .unwrap()
        .clone();
    let at = |name: &str| header.iter().position(|column| column == name).unwrap();
    let duties: Vec<(&str, &str, &str)> = manifest
        .iter()
        .map(|row| (&row[at("order_id")], &row[at("sku")], &row[at("duty_usd")]))
        .collect();
    for (order_id, sku, duty) in [
        ("USMCA", "TSHIRT", "0.00"),
        ("MIXED", "SHIRT-CN", "2.78"),
        ("MIXED", "JEANS", "0.55"),
        ("BOOTS", "BOOTS", ""),
        ("BOOTS", "TSHIRT", "0.00"),
    ] {
        assert!(duties.contains(&(order_id, sku, duty)), "{duties:?}");
    }
    let summary =
        std::fs::read_to_string(w.path(&format!("logs/releases/{DAY}.releases.csv"))).unwrap();
    assert!(summary.contains(",duty_usd,fees_usd\n"), "{summary}");
    assert!(summary.contains(",3.33,2.69\n"), "{summary}");
    assert!(summary.contains(",,2.69\n"), "{summary}");

    // orders show gives the lines' duties as the log does.
    let shown: Value =
        serde_json::from_str(&w.ok(NOW, &["orders", "show", "MIXED", "--json"])).unwrap();
    assert_eq!(shown["duty_usd"], "3.33");
    assert_eq!(shown["lines"][0]["duty_usd"], "2.78");
    assert_eq!(shown["lines"][0]["duties"], mixed["lines"][0]["duties"]);
    let text = w.ok(NOW, &["orders", "show", "BOOTS"]);
    assert!(text.contains("duty:      unknown"), "{text}");

    // The estimate is kept as it was made: a new table changes what a batch estimates from now
    // on, not the releases made, whose files are written again byte for byte.
    let before = std::fs::read(w.path(&format!("logs/releases/{DAY}.jsonl"))).unwrap();
    let manifest_before =
        std::fs::read(w.path(&format!("logs/releases/{DAY}.manifest.csv"))).unwrap();
    let later = w.file(
        "later.csv",
        "hts_prefix,origin,program,rate_percent,from,usmca_exempt\n6109,CN,mfn,25,2026-01-01,yes\n6403,*,mfn,10,2026-01-01,no\n",
    );
    let said = w.ok(NOW, &["duties", "import", path(&later)]);
    assert!(
        said.contains("2 accepted, 0 unchanged, 0 rejected"),
        "{said}"
    );
    std::fs::remove_file(w.path(&format!("logs/releases/{DAY}.jsonl"))).unwrap();
    std::fs::remove_file(w.path(&format!("logs/releases/{DAY}.manifest.csv"))).unwrap();
    w.ok(NOW, &["releases", "write", "--day", DAY]);
    assert_eq!(
        std::fs::read(w.path(&format!("logs/releases/{DAY}.jsonl"))).unwrap(),
        before
    );
    assert_eq!(
        std::fs::read(w.path(&format!("logs/releases/{DAY}.manifest.csv"))).unwrap(),
        manifest_before
    );
    w.assert_store_sound(NOW);
}

#[test]
fn the_plan_shows_the_estimate_the_batch_then_records_and_is_the_same_without_it() {
    let (with, without) = (warehouse(true), warehouse(false));
    let plan = |w: &Warehouse| -> Value {
        serde_json::from_str(&w.ok(NOW, &["plan", "--day", DAY, "--json"])).unwrap()
    };
    let (planned, plain) = (plan(&with), plan(&without));

    // The planner's plan is the same with or without the estimate: the same releases, orders,
    // lines and values, the same held and waiting orders.
    let strip = |plan: &Value| -> Value {
        let mut plan = plan.clone();
        for release in plan["releases"].as_array_mut().unwrap() {
            let release = release.as_object_mut().unwrap();
            for field in ["duty_usd", "fees", "fees_usd"] {
                release.remove(field);
            }
            for line in release["lines"].as_array_mut().unwrap() {
                let line = line.as_object_mut().unwrap();
                line.remove("duty_usd");
                line.remove("duties");
            }
        }
        let summary = plan["summary"].as_object_mut().unwrap();
        for field in ["duty_usd", "fees_usd", "unknown_duty_lines"] {
            summary.remove(field);
        }
        plan
    };
    assert_eq!(strip(&planned), strip(&plain));
    assert_eq!(plain["releases"][0]["duty_usd"], Value::Null);
    assert_eq!(plain["releases"][0]["fees_usd"], "0.00");
    assert_eq!(plain["summary"]["unknown_duty_lines"], 6);

    // The plan's estimate is the one the batch then records in the release log.
    // The jeans of EVE (7.47, the surcharge ended), the mixed release (3.33); fees on all
    // but the USMCA release.
    assert_eq!(planned["summary"]["duty_usd"], "10.80");
    assert_eq!(planned["summary"]["fees_usd"], "8.07");
    assert_eq!(planned["summary"]["unknown_duty_lines"], 1);
    let batch = with.ok(NOW, &["batch", "--day", DAY]);
    assert!(
        batch.contains("estimated duty 10.80 USD and fees 8.07 USD, and 1 line of unknown duty"),
        "{batch}"
    );
    let log = with.release_log(DAY);
    for release in planned["releases"].as_array().unwrap() {
        let logged = log
            .iter()
            .find(|logged| logged["release_id"] == release["release_id"])
            .unwrap();
        for field in ["lines", "duty_usd", "fees", "fees_usd"] {
            assert_eq!(logged[field], release[field], "{field}");
        }
    }
}

#[test]
fn duties_list_shows_the_rows_in_force_on_a_day_and_a_row_imported_again_replaces_its_like() {
    let w = warehouse(true);
    let listed = |day: &str| -> Vec<Value> {
        w.ok(NOW, &["duties", "list", "--day", day, "--json"])
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    let rate = |rows: &[Value], prefix: &str, origin: &str, program: &str| {
        rows.iter()
            .find(|row| {
                row["hts_prefix"] == prefix && row["origin"] == origin && row["program"] == program
            })
            .map(|row| row["rate_percent"].as_str().unwrap().to_owned())
    };
    let eve = listed(EVE);
    assert_eq!(rate(&eve, "6109", "*", "mfn").as_deref(), Some("16.5"));
    assert_eq!(rate(&eve, "62", "*", "section-122").as_deref(), Some("10"));
    assert_eq!(rate(&eve, "620342", "*", "mfn").as_deref(), Some("16.6"));
    let day = listed(DAY);
    assert_eq!(rate(&day, "6109", "*", "mfn").as_deref(), Some("18"));
    assert_eq!(rate(&day, "62", "*", "section-122").as_deref(), Some("0"));
    assert_eq!(day.len(), 6, "{day:#?}");
    assert!(listed("2020-01-01").is_empty());
    let text = w.ok(NOW, &["duties", "list", "--day", "2019-01-01"]);
    assert!(text.contains("0 rows"), "{text}");
    let text = w.ok(NOW, &["duties", "list"]);
    assert!(
        text.starts_with(&format!("duty rates in force on {DAY}: 6 rows")),
        "{text}"
    );

    // The same prefix, origin, program and day again: the new rate replaces the old; the same
    // row again changes nothing.
    let again = w.file(
        "again.csv",
        "hts_prefix,origin,program,rate_percent,from,usmca_exempt,source\n61.09,*,mfn,17,2026-12-03,yes,corrected\n61,CN,section-301,7.5,2020-02-14,no,\n",
    );
    let said = w.ok(NOW, &["duties", "import", path(&again)]);
    assert!(
        said.contains("1 accepted, 1 unchanged, 0 rejected"),
        "{said}"
    );
    let day = listed(DAY);
    assert_eq!(rate(&day, "6109", "*", "mfn").as_deref(), Some("17"));
    assert_eq!(day.len(), 6);
    let corrected = day.iter().find(|row| row["source"] == "corrected");
    assert!(corrected.is_some(), "{day:#?}");

    // A file whose header is not the table's is refused whole.
    let wrong = w.file("wrong.csv", "sku,qty\nTSHIRT,1\n");
    let output = w.run_at(NOW, &["duties", "import", path(&wrong)]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("hts_prefix"),
        "{}",
        stderr(&output)
    );
    assert_eq!(listed(DAY).len(), 6);
}

#[test]
fn bad_fees_are_named_by_check_config() {
    let fees = r#"
[[fees]]
name = "merchandise-processing-fee"
from = "2025-10-01"
lane = "informal-entry"
per_release_usd = 2.69
usmca_exempt = "perhaps"

[[fees]]
name = "x"
from = "2025-13-01"
lane = "courier"
per_release_usd = "-1"

[[fees]]
name = "y"
from = "2025-10-01"
lane = "informal-entry"
per_release_usd = "1"
colour = "blue"

[[fees]]
name = "y"
from = "2025-10-01"
lane = "informal-entry"
per_release_usd = "2"
"#;
    let w = Warehouse::with_policies(&format!("{POLICIES}{fees}"));
    std::fs::write(w.path("api-token"), "a-token-of-at-least-16-chars\n").unwrap();
    let output = w.run_at(NOW, &["check-config"]);
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    for key in [
        "fees[0].per_release_usd",
        "fees[0].usmca_exempt",
        "fees[1].from",
        "fees[1].lane",
        "fees[1].per_release_usd",
        "fees[2].colour",
        "fees[3].from",
    ] {
        assert!(said.contains(key), "{key} not named:\n{said}");
    }

    let w = Warehouse::with_policies(&format!("{POLICIES}{FEES}"));
    std::fs::write(w.path("api-token"), "a-token-of-at-least-16-chars\n").unwrap();
    let said = w.ok(NOW, &["check-config"]);
    assert!(
        said.contains("fee merchandise-processing-fee from 2025-10-01: 2.69 USD per informal-entry release, none when every line claims USMCA"),
        "{said}"
    );
}
