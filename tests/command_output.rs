//! What commands print, for people and for programs: summaries on standard output and
//! rejections on standard error, a reader that stops early, singular and plural words, amounts
//! in US dollars with their cents, and help for every argument.

mod support;

use support::{order, orders_to_many, read_one_line_and_close, stderr, Warehouse};

const NOW: &str = "2026-12-01T07:00:00-08:00";

/// Every import-like command prints its summary on standard output, even when lines were
/// rejected (exit 3), so that `> report.txt` keeps it; the rejected lines go to standard error.
#[test]
fn an_imports_summary_goes_to_standard_output_even_when_lines_are_rejected() {
    let w = Warehouse::new();
    let items = w.file(
        "items.csv",
        &format!("{}BAD SKU,Shirt,6109.10,MX,\n", support::ITEMS),
    );
    let receipts = w.file("receipts.csv", "sku,qty\nTSHIRT,5\nNOPE,1\n");
    let counts = w.file("counts.csv", "sku,qty\nJEANS,3\nJEANS,-1\n");
    let orders = w.file(
        "orders.jsonl",
        &[
            order(
                "OK-1",
                "2026-11-30T10:00:00-08:00",
                "Ana Ruiz",
                "1 Main St",
                "USD",
                &[("TSHIRT", 1, "10.00")],
            ),
            "{not json".to_owned(),
        ]
        .join("\n"),
    );
    for (args, file, summary, rejected) in [
        (
            ["items", "import"],
            &items,
            "5 accepted, 0 unchanged, 1 rejected",
            "line 7: sku:",
        ),
        (
            ["stock", "receive"],
            &receipts,
            "1 accepted, 0 unchanged, 1 rejected",
            "line 3: sku:",
        ),
        (
            ["stock", "count"],
            &counts,
            "1 accepted, 0 unchanged, 1 rejected",
            "line 3: qty:",
        ),
        (
            ["orders", "import"],
            &orders,
            "1 accepted, 0 unchanged, 1 rejected",
            "line 2: not valid JSON",
        ),
    ] {
        let path = file.display().to_string();
        let output = w.run_at(NOW, &[args[0], args[1], &path]);
        assert_eq!(
            output.status.code(),
            Some(3),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("{path}: {summary}\n"),
            "{args:?}"
        );
        let err = stderr(&output);
        assert!(
            err.contains(&format!("{path}:{rejected}")),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("accepted"),
            "{args:?}: the summary on standard error: {err}"
        );
    }
}

/// A warehouse holding `count` orders, each to its own recipient.
fn warehouse_with_orders(count: usize) -> Warehouse {
    let w = Warehouse::with_items(NOW);
    let file = w.file("orders.jsonl", &orders_to_many("SO", count, "10.00"));
    w.ok(NOW, &["orders", "import", file.to_str().unwrap()]);
    w
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // Far more than a pipe holds (64 KiB), so that the command writes after the reader has gone.
    let w = warehouse_with_orders(3000);
    for args in [
        &["orders", "list"][..],
        &["orders", "list", "--json"],
        // A day far ahead, for the real clock: every order is examined and waits for stock.
        &["plan", "--day", "2099-01-01", "--json"],
        &["plan", "--day", "2099-01-01"],
    ] {
        // Without the pinned clock, which would warn on standard error.
        let mut command = w.process(NOW, args);
        command.env_remove("BORDER_RELEASE_FAKE_NOW");
        let (first, code, err) = read_one_line_and_close(command);
        assert!(!first.is_empty(), "{args:?}");
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert_eq!(err, "", "{args:?}: nothing on standard error");
    }
}

/// `1 order`, `2 orders`; `0.00 USD`; `"value_usd":"0.00"`: counts take their singular for
/// one, and every amount in US dollars has its cents, in print and in JSON.
#[test]
fn words_and_amounts_read_right() {
    let w = Warehouse::with_items(NOW);
    // Nothing to release yet: zero of everything, with its cents.
    let plan = w.ok(NOW, &["plan"]);
    assert!(plan.contains("releases: 0 (0 orders, 0.00 USD)"), "{plan}");
    assert!(
        plan.contains("at most 800.00 USD per recipient per day"),
        "{plan}"
    );
    let json: serde_json::Value = serde_json::from_str(&w.ok(NOW, &["plan", "--json"])).unwrap();
    assert_eq!(json["summary"]["value_usd"], "0.00");
    assert_eq!(json["summary"]["value_limit_usd"], "800.00");

    let stock = w.file("stock.csv", "sku,qty\nTSHIRT,5\n");
    w.ok(NOW, &["stock", "receive", stock.to_str().unwrap()]);
    // One order of whole dollars.
    let file = w.file(
        "orders.jsonl",
        &order(
            "SO-1",
            "2026-11-30T10:00:00-08:00",
            "Ana Ruiz",
            "1 Main St",
            "USD",
            &[("TSHIRT", 2, "10")],
        ),
    );
    w.ok(NOW, &["orders", "import", file.to_str().unwrap()]);
    let batch = w.ok(NOW, &["batch"]);
    assert!(
        batch.contains("releases: 1 (1 order, 20.00 USD)"),
        "{batch}"
    );
    let log = w.release_log("2026-12-01");
    assert_eq!(log[0]["value_usd"], "20.00");
    assert_eq!(log[0]["lines"][0]["value_usd"], "20.00");
    assert_eq!(&w.manifest("2026-12-01")[0][20], "20.00");
    // A second wave: nothing more, and the earlier one counted in the singular.
    let json: serde_json::Value = serde_json::from_str(&w.ok(NOW, &["batch", "--json"])).unwrap();
    assert_eq!(json["value_usd"], "0.00");
    assert_eq!(json["value_limit_usd"], "800.00");
    let plan = w.ok(NOW, &["plan"]);
    assert!(plan.contains("earlier waves today: 1 release\n"), "{plan}");

    let check = w.ok(NOW, &["check-store"]);
    assert!(
        check.contains(": 1 order, 1 release over 1 day, 1 SKU: every invariant holds"),
        "{check}"
    );
    w.file("api-token", "a-token-of-at-least-16-characters\n");
    let config = w.ok(NOW, &["check-config"]);
    assert!(
        config.contains("at most 800.00 USD and 1 release per recipient per day"),
        "{config}"
    );
    let dump = w.path("backup.jsonl");
    let dumped = w.ok(NOW, &["store", "dump", dump.to_str().unwrap()]);
    assert!(
        dumped.contains(": 5 items, stock of 1 SKU, 1 order and 1 release ("),
        "{dumped}"
    );
    let other = Warehouse::new();
    let restored = other.ok(NOW, &["store", "restore", dump.to_str().unwrap()]);
    assert!(
        restored.contains("restored 5 items, stock of 1 SKU, 1 order and 1 release into"),
        "{restored}"
    );
    assert!(
        restored.contains("release files written for 1 day\n"),
        "{restored}"
    );
}

/// Every command has a description, and every argument and option of every command says what
/// it is in `--help`.
#[test]
fn help_describes_every_argument_of_every_command() {
    use clap::CommandFactory;
    fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        if command.get_about().is_none() && !path.is_empty() {
            missing.push(format!("{path}: the command"));
        }
        for argument in command.get_arguments() {
            let described = argument
                .get_help()
                .is_some_and(|help| !help.to_string().trim().is_empty());
            if !described {
                missing.push(format!("{path}: {}", argument.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut command = border_release::cli::Cli::command();
    command.build();
    let mut missing = Vec::new();
    walk(&command, "", &mut missing);
    assert_eq!(missing, Vec::<String>::new(), "arguments without help");

    // What an operator sees.
    let output = assert_cmd::Command::cargo_bin("border-release")
        .unwrap()
        .args(["orders", "cancel", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("<ORDER_ID>  The order's `order_id`, as it was taken in"),
        "{help}"
    );
}

/// `bash sample/run.sh` says it is building and lets cargo show its progress, instead of two
/// silent minutes.
#[test]
fn the_sample_script_shows_its_build() {
    let script = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample/run.sh"),
    )
    .unwrap();
    let lines: Vec<&str> = script.lines().map(str::trim).collect();
    let build = lines
        .iter()
        .position(|line| line.starts_with("cargo build"))
        .expect("the script builds the binary");
    assert!(!lines[build].contains("--quiet") && !lines[build].contains(" -q"));
    assert!(
        lines[..build]
            .iter()
            .any(|line| line.starts_with("step ") || line.starts_with("echo ")),
        "nothing is printed before the build"
    );
}
