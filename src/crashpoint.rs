//! Named crash points, so that durability tests can stop the process at an exact step.
//!
//! When `BORDER_RELEASE_CRASH_AT` names a point, the process aborts there, as abruptly as a
//! kill -9: no destructors, no flushing. Unset (always, in production), a point costs one
//! environment lookup.

/// The environment variable naming the point to abort at.
pub const CRASH_AT_VAR: &str = "BORDER_RELEASE_CRASH_AT";

/// Every point, in the order a batch or an intake reaches them; then a referral's.
pub const POINTS: [&str; 9] = [
    "intake-before-commit",
    "store-after-apply",
    "intake-after-commit",
    "spool-before-move",
    "batch-before-commit",
    "batch-after-commit",
    "logs-after-release-log",
    "logs-after-write",
    "refer-after-commit",
];

/// Aborts the process if `BORDER_RELEASE_CRASH_AT` names this point.
pub fn reached(point: &'static str) {
    debug_assert!(POINTS.contains(&point), "unknown crash point {point}");
    if std::env::var_os(CRASH_AT_VAR).is_some_and(|name| name == point) {
        eprintln!("{CRASH_AT_VAR}: aborting at {point}");
        std::process::abort();
    }
}
