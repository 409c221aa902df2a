//! Tidy checks: the boundaries ARCHITECTURE.md states as invariants, enforced by grepping the
//! source, so that breaking one fails the build.

use std::fs;
use std::path::{Path, PathBuf};

fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    assert!(out.len() > 5, "no sources found");
    out
}

/// Files under `src/` other than `allowed` that contain `needle` outside comments.
fn offenders(needle: &str, allowed: &[&str]) -> Vec<String> {
    sources()
        .into_iter()
        .filter(|(path, _)| {
            !allowed.iter().any(|name| {
                path.ends_with(name)
                    || (name.ends_with('/') && path.to_string_lossy().contains(&format!("/{name}")))
            })
        })
        .filter(|(_, text)| {
            text.lines()
                .map(str::trim_start)
                .filter(|line| !line.starts_with("//"))
                .any(|line| line.contains(needle))
        })
        .map(|(path, _)| path.display().to_string())
        .collect()
}

#[test]
fn only_the_clock_reads_the_wall_clock() {
    for needle in ["Utc::now", "Local::now", "SystemTime::now", "Instant::now"] {
        assert_eq!(
            offenders(needle, &["src/clock.rs"]),
            Vec::<String>::new(),
            "{needle}"
        );
    }
}

#[test]
fn only_the_store_knows_redb() {
    let store = ["src/store.rs", "src/store/"];
    assert_eq!(offenders("redb::", &store), Vec::<String>::new());
    assert_eq!(offenders("use redb", &store), Vec::<String>::new());
    assert_eq!(offenders("bincode::", &store), Vec::<String>::new());
}

#[test]
fn the_store_layout_is_the_stores_alone() {
    let store = ["src/store.rs", "src/store/"];
    for layout in ["Ordinal", "StateByte", "IdIndex", "States", "Commit::"] {
        assert_eq!(offenders(layout, &store), Vec::<String>::new(), "{layout}");
    }
}

#[test]
fn entry_points_call_the_use_cases_and_not_each_other() {
    let below = [
        "crate::intake",
        "crate::batch",
        "crate::releaselog",
        "crate::referrals",
        "crate::audit",
        "crate::planner",
    ];
    for entry in ["src/cli.rs", "src/daemon/http.rs", "src/daemon/spool.rs"] {
        for needle in below {
            let found = offenders(needle, &[])
                .into_iter()
                .filter(|path| path.ends_with(entry))
                .collect::<Vec<_>>();
            assert_eq!(found, Vec::<String>::new(), "{entry} uses {needle}");
        }
    }
    let uses = |file: &str, needle: &str| {
        offenders(needle, &[])
            .into_iter()
            .any(|path| path.ends_with(file))
    };
    assert!(
        !uses("src/daemon/http.rs", "crate::cli"),
        "the API uses the command line"
    );
    assert!(
        !uses("src/daemon/http.rs", "spool::"),
        "the API uses the spool"
    );
    assert!(
        !uses("src/daemon/spool.rs", "engine::"),
        "the spool uses the engine"
    );
    assert!(
        !uses("src/daemon/engine.rs", "spool::"),
        "the engine uses the spool"
    );
    assert!(
        !uses("src/cli.rs", "crate::daemon"),
        "the command line uses the daemon"
    );
}

#[test]
fn the_status_pages_render_what_they_are_given_and_read_nothing() {
    let uses = |needle: &str| {
        offenders(needle, &[])
            .into_iter()
            .any(|path| path.ends_with("src/daemon/page.rs"))
    };
    for needle in [
        "std::fs",
        "crate::store",
        "crate::config",
        "Queue",
        "Engine",
        "operations::status(",
        "operations::order(",
    ] {
        assert!(!uses(needle), "src/daemon/page.rs uses {needle}");
    }
}

#[test]
fn only_the_config_module_knows_toml_and_the_config_crate() {
    assert_eq!(
        offenders("config::Config::builder", &["src/config.rs"]),
        Vec::<String>::new()
    );
    assert_eq!(
        offenders("config::Environment", &["src/config.rs"]),
        Vec::<String>::new()
    );
    assert_eq!(
        offenders("config::File", &["src/config.rs"]),
        Vec::<String>::new()
    );
    assert_eq!(
        offenders("use config::", &["src/config.rs"]),
        Vec::<String>::new()
    );
    assert_eq!(
        offenders("toml::", &["src/config.rs"]),
        Vec::<String>::new()
    );
}

#[test]
fn money_is_never_a_float() {
    assert_eq!(offenders("f64", &[]), Vec::<String>::new());
    assert_eq!(offenders("f32", &[]), Vec::<String>::new());
}

#[test]
fn every_module_says_what_it_owns() {
    for (path, text) in sources() {
        assert!(
            text.trim_start().starts_with("//!"),
            "{} has no //! module doc",
            path.display()
        );
    }
}

#[test]
fn every_crash_point_is_reached_in_code_and_exercised_by_a_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tests: String = fs::read_dir(root.join("tests"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .filter(|path| !path.ends_with("tidy.rs"))
        .map(|path| fs::read_to_string(path).unwrap())
        .collect();
    let code: String = sources().into_iter().map(|(_, text)| text).collect();
    for point in border_release::crashpoint::POINTS {
        assert!(
            code.contains(&format!("reached(\"{point}\")")),
            "{point} is never reached"
        );
        assert!(
            tests.contains(&format!("\"{point}\"")),
            "no test aborts at {point}"
        );
    }
}
