//! Entries a broker can file: what the policy in force requires of each item (HTS digits, a
//! MID, a precise description), the catalogue's `mid` and `usmca` columns, and the
//! `incomplete-item` hold that a corrected catalogue frees.

mod support;

use serde_json::{json, Value};
use support::{order, stderr, Warehouse};

/// 07:00 in Los Angeles on 2026-12-01, after the day's 06:00 cutoff.
const NOW: &str = "2026-12-01T07:00:00-08:00";

/// One informal-entry policy that files 10-digit codes, with a MID, and refuses "gift".
const FILING_POLICY: &str = r#"
[[policy]]
name = "informal-entry-filed"
from = "2025-08-29"
lane = "informal-entry"
value_limit_usd = "2500"
min_hts_digits = 10
require_mid = true
vague_descriptions = ["Gift", "daily necessities"]
"#;

fn path(file: &std::path::Path) -> &str {
    file.to_str().expect("a UTF-8 path")
}

fn show(w: &Warehouse, order_id: &str) -> Value {
    serde_json::from_str(&w.ok(NOW, &["orders", "show", order_id, "--json"])).unwrap()
}

/// A warehouse under the filing policy, with `catalogue` and one order per item, all in stock.
fn warehouse(catalogue: &str) -> Warehouse {
    let w = Warehouse::with_policies(FILING_POLICY);
    let items = w.file("items.csv", catalogue);
    w.ok(NOW, &["items", "import", path(&items)]);
    let skus: Vec<&str> = catalogue
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap())
        .collect();
    let stock: String = skus.iter().map(|sku| format!("{sku},5\n")).collect();
    let stock = w.file("stock.csv", &format!("sku,qty\n{stock}"));
    w.ok(NOW, &["stock", "receive", path(&stock)]);
    let orders: Vec<String> = skus
        .iter()
        .enumerate()
        .map(|(n, sku)| {
            order(
                &format!("O-{sku}"),
                "2026-11-30T10:00:00-08:00",
                &format!("Buyer Number{n}"),
                &format!("{} Main St", n + 1),
                "USD",
                &[(sku, 1, "20.00")],
            )
        })
        .collect();
    let file = w.file("orders.jsonl", &orders.join("\n"));
    w.ok(NOW, &["orders", "import", path(&file)]);
    w
}

const CATALOGUE: &str = "sku,description,hts,origin,flags,mid,usmca
GOOD,Cotton knit T-shirt,6109.10.0012,MX,,MXCONTEX1450TIJ,yes
SHORT,Cotton denim trousers,6203.42.40,MX,,MXDENBAJ220TIJ,no
NOMID,Leather ankle boots,6403.91.6075,MX,,,
VAGUE, gift! ,9503.00.0073,MX,,MXTOYTIJ12TIJ,
";

#[test]
fn an_item_without_what_the_policy_requires_holds_its_order_until_the_catalogue_is_corrected() {
    let w = warehouse(CATALOGUE);
    let plan = w.ok(NOW, &["plan"]);
    for expected in [
        "O-SHORT held: incomplete-item (SHORT: an HTS code of 8 digits, 10 needed for policy informal-entry-filed)",
        "O-NOMID held: incomplete-item (NOMID: no MID for policy informal-entry-filed)",
        "O-VAGUE held: incomplete-item (VAGUE: a description too vague to file for policy informal-entry-filed)",
    ] {
        assert!(plan.contains(expected), "{expected}\n{plan}");
    }
    let batch = w.ok(NOW, &["batch"]);
    assert!(
        batch.contains("releases: 1 (1 order, 20.00 USD)"),
        "{batch}"
    );
    assert!(batch.contains("held: 3 (incomplete-item 3)"), "{batch}");
    let short = show(&w, "O-SHORT");
    assert_eq!(
        (&short["state"], &short["reason"]),
        (&json!("held"), &json!("incomplete-item"))
    );
    assert_eq!(
        short["detail"],
        json!({"sku": "SHORT", "missing": ["hts-digits"], "hts_digits": 8, "min_hts_digits": 10, "policy": "informal-entry-filed"})
    );
    assert_eq!(show(&w, "O-NOMID")["detail"]["missing"], json!(["mid"]));
    assert_eq!(
        show(&w, "O-VAGUE")["detail"]["missing"],
        json!(["description"])
    );
    let held = w.ok(NOW, &["orders", "list", "--state", "held", "--json"]);
    assert_eq!(held.lines().count(), 3, "{held}");

    // The catalogue corrected (an older one, without the MID columns, keeps working): the next
    // batch frees them.
    let fixed = w.file(
        "fixed.csv",
        "sku,description,hts,origin,flags,mid,usmca
SHORT,Cotton denim trousers,6203.42.4011,MX,,MXDENBAJ220TIJ,no
NOMID,Leather ankle boots,6403.91.6075,MX,,MXCALLEO88LEO,no
VAGUE,Plush toy bear,9503.00.0073,MX,,MXTOYTIJ12TIJ,
",
    );
    w.ok(NOW, &["items", "import", path(&fixed)]);
    let tomorrow = "2026-12-02T07:00:00-08:00";
    let batch = w.ok(tomorrow, &["batch"]);
    assert!(
        batch.contains("releases: 3 (3 orders, 60.00 USD)"),
        "{batch}"
    );
    for id in ["O-SHORT", "O-NOMID", "O-VAGUE"] {
        assert_eq!(show(&w, id)["state"], "released", "{id}");
    }
    w.assert_store_sound(tomorrow);
}

#[test]
fn the_catalogue_takes_a_mid_and_a_usmca_claim_and_checks_them() {
    let w = Warehouse::new();
    let items = w.file(
        "items.csv",
        "sku,description,hts,origin,flags,mid,usmca
A,Cotton knit T-shirt,6109.10.0012,MX,,MXCONTEX1450TIJ,YES
B,Cotton knit T-shirt,6109.10.0012,MX,,mxcontex1450tij,
C,Cotton knit T-shirt,6109.10.0012,MX,,MXCONTEX1450TIJA,no
D,Cotton knit T-shirt,6109.10.0012,MX,,MX,no
E,Cotton knit T-shirt,6109.10.0012,MX,,M1CONTEX,no
F,Cotton knit T-shirt,6109.10.0012,MX,,,maybe
G,Cotton knit T-shirt,6109.10.0012,MX,,,
",
    );
    let output = w.run_at(NOW, &["items", "import", path(&items)]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.contains("2 accepted, 0 unchanged, 5 rejected"), "{out}");
    let err = stderr(&output);
    let file = items.display();
    for (line, field) in [(3, "mid"), (4, "mid"), (5, "mid"), (6, "mid"), (7, "usmca")] {
        let expected = format!("{file}:line {line}: {field}:");
        assert!(err.contains(&expected), "{expected}\n{err}");
    }
    let listed: Vec<Value> = w
        .ok(NOW, &["items", "list", "--json"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["mid"], "MXCONTEX1450TIJ");
    assert_eq!(listed[0]["usmca"], true);
    assert_eq!(listed[1]["mid"], Value::Null);
    assert_eq!(listed[1]["usmca"], false);

    // A header of neither form is refused whole, naming both.
    let wrong = w.file("wrong.csv", "sku,description,hts,origin,flags,mid\n");
    let output = w.run_at(NOW, &["items", "import", path(&wrong)]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(r#"the header must be "sku,description,hts,origin,flags" or "sku,description,hts,origin,flags,mid,usmca""#),
        "{}",
        stderr(&output)
    );
}

#[test]
fn check_config_names_each_bad_filing_key() {
    let w = Warehouse::with_policies(
        r#"
[[policy]]
name = "informal"
from = "2025-08-29"
lane = "informal-entry"
value_limit_usd = "2500"
entry_type = "A1"
min_hts_digits = 12
require_mid = "sometimes"
vague_descriptions = ["gift", "!!"]
"#,
    );
    std::fs::write(w.path("api-token"), "a-token-of-enough-length\n").unwrap();
    let output = w.run_at(NOW, &["check-config"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    for key in [
        "policy[0].entry_type",
        "policy[0].min_hts_digits",
        "policy[0].require_mid",
        "policy[0].vague_descriptions[1]",
    ] {
        assert!(err.contains(key), "{key}\n{err}");
    }
}

#[test]
fn a_lane_gives_its_entry_type_unless_the_policy_names_one() {
    let w = Warehouse::new();
    std::fs::write(w.path("api-token"), "a-token-of-enough-length\n").unwrap();
    let out = w.ok(NOW, &["check-config"]);
    assert!(out.contains("filed as entry type 86: HTS codes of at least 4 digits, no MID required, 0 vague descriptions refused"), "{out}");
    assert!(out.contains("filed as entry type 11"), "{out}");
    // The shipped configs check, and file informal entries with 10 digits and a MID.
    for shipped in ["config/border-release.toml", "config/section-321-only.toml"] {
        let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(shipped);
        let copy = w.path("shipped.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        // Its paths and token, relative to the config, are this warehouse's.
        let text = text.replace("\"../var/", "\"var/");
        std::fs::write(&copy, &text).unwrap();
        std::fs::create_dir_all(w.path("var/section-321")).unwrap();
        for token in ["var/api-token", "var/section-321/api-token"] {
            std::fs::write(w.path(token), "a-token-of-enough-length\n").unwrap();
        }
        let output = w
            .process(NOW, &["check-config"])
            .env("BORDER_RELEASE_CONFIG", &copy)
            .args(["--config", copy.to_str().unwrap()])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{shipped}: {out}{}",
            stderr(&output)
        );
        if shipped.ends_with("border-release.toml") {
            assert!(
                out.contains("filed as entry type 11: HTS codes of at least 10 digits, a MID on every item, 7 vague descriptions refused"),
                "{out}"
            );
        }
    }
}

#[test]
fn an_informal_entry_in_force_or_coming_needs_its_importer_and_shipper() {
    let policies = |entry: &str| {
        format!(
            r#"
[[policy]]
name = "section-321"
from = "2016-03-10"
lane = "de-minimis"
value_limit_usd = "800"

[[policy]]
name = "informal"
from = "2027-01-01"
lane = "informal-entry"
value_limit_usd = "2500"
{entry}"#
        )
    };
    let check = |w: &Warehouse| {
        std::fs::write(w.path("api-token"), "a-token-of-enough-length\n").unwrap();
        w.run_at(NOW, &["check-config"])
    };
    // The test config's [entry] is replaced by one without the importer's number.
    let w = Warehouse::with_policies(&policies(""));
    let config = std::fs::read_to_string(w.config()).unwrap();
    let without = config.replace("importer_number = \"12-3456789\"\n", "");
    std::fs::write(w.config(), &without).unwrap();
    let output = check(&w);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("entry.importer_number: required: policy informal (lane informal-entry, from 2027-01-01)"),
        "{err}"
    );
    assert!(!err.contains("entry.shipper_name"), "{err}");

    // A bad number is named; with all four, the parties are shown.
    std::fs::write(w.config(), config.replace("12-3456789", "12 345")).unwrap();
    let err = stderr(&check(&w));
    assert!(
        err.contains("entry.importer_number: expected an importer number"),
        "{err}"
    );
    std::fs::write(w.config(), &config).unwrap();
    let out = String::from_utf8(check(&w).stdout).unwrap();
    assert!(
        out.contains("importer of record Test Imports LLC (12-3456789)"),
        "{out}"
    );

    // Without an informal-entry policy, none is needed.
    let de_minimis = config
        .split("[[policy]]\nname = \"informal\"")
        .next()
        .unwrap();
    std::fs::write(
        w.config(),
        de_minimis.replace("importer_number = \"12-3456789\"\n", ""),
    )
    .unwrap();
    assert_eq!(check(&w).status.code(), Some(0));
}

#[test]
fn each_release_says_what_it_is_filed_as_and_the_manifest_marks_usmca_lines() {
    let catalogue = "sku,description,hts,origin,flags,mid,usmca
GOOD,Cotton knit T-shirt,6109.10.0012,MX,,MXCONTEX1450TIJ,yes
PLAIN,Leather ankle boots,6403.91.6075,MX,,MXCALLEO88LEO,no
";
    let w = warehouse(catalogue);
    w.ok(NOW, &["batch"]);
    let log_path = w.path("logs/releases/2026-12-01.jsonl");
    let log = support::read_jsonl(&log_path);
    assert_eq!(log.len(), 2);
    for release in &log {
        assert_eq!(release["entry_type"], "11");
        assert_eq!(
            release["importer"],
            json!({"name": "Test Imports LLC", "number": "12-3456789"})
        );
        assert_eq!(
            release["shipper"],
            json!({"name": "Test Tijuana Warehouse SA de CV", "address": "Blvd Industrial 1, Tijuana, BC, MX"})
        );
    }
    let line = |sku: &str| -> Value {
        log.iter()
            .flat_map(|release| release["lines"].as_array().unwrap().clone())
            .find(|line| line["sku"] == sku)
            .unwrap()
    };
    assert_eq!(
        (&line("GOOD")["mid"], &line("GOOD")["usmca"]),
        (&json!("MXCONTEX1450TIJ"), &json!(true))
    );
    assert_eq!(
        (&line("PLAIN")["mid"], &line("PLAIN")["usmca"]),
        (&json!("MXCALLEO88LEO"), &json!(false))
    );

    let manifest = w.manifest("2026-12-01");
    let header: Vec<String> =
        csv::Reader::from_path(w.path("logs/releases/2026-12-01.manifest.csv"))
            .unwrap()
            .headers()
            .unwrap()
            .iter()
            .map(|column| column.trim_start_matches('\u{feff}').to_owned())
            .collect();
    let column = |name: &str| header.iter().position(|c| c == name).unwrap();
    assert_eq!(manifest.len(), 2);
    for row in &manifest {
        let usmca = &row[column("sku")] == "GOOD";
        assert_eq!(&row[column("entry_type")], "11");
        assert_eq!(&row[column("importer_number")], "12-3456789");
        assert_eq!(&row[column("spi")], if usmca { "S" } else { "" });
        assert_eq!(
            &row[column("mid")],
            if usmca {
                "MXCONTEX1450TIJ"
            } else {
                "MXCALLEO88LEO"
            }
        );
    }

    // What a release is filed with is kept with it: a later catalogue or config change does
    // not alter the day's log, written again byte for byte, nor a restore of its dump.
    let bytes = std::fs::read(&log_path).unwrap();
    let items = w.file("later.csv", "sku,description,hts,origin,flags,mid,usmca\nGOOD,Cotton knit T-shirt,6109.10.0012,MX,,MXOTHER1TIJ,no\n");
    w.ok(NOW, &["items", "import", path(&items)]);
    std::fs::remove_file(&log_path).unwrap();
    w.ok(NOW, &["releases", "write", "--day", "2026-12-01"]);
    assert_eq!(std::fs::read(&log_path).unwrap(), bytes);
    w.assert_store_sound(NOW);
    let dump = w.path("dump.jsonl");
    w.ok(NOW, &["store", "dump", path(&dump)]);
    let restored = Warehouse::with_policies(FILING_POLICY);
    restored.ok(NOW, &["store", "restore", path(&dump)]);
    assert_eq!(
        std::fs::read(restored.path("logs/releases/2026-12-01.jsonl")).unwrap(),
        bytes
    );
    restored.assert_store_sound(NOW);
}
