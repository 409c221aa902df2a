//! border-release: daily compliant cross-border releases for a near-border warehouse.
//!
//! The crate is a pure core (`policy`, `money`, `identity`, `planner`) surrounded by the edges
//! that touch the outside world: `config` (TOML), `store` (redb), `intake` (input files),
//! `releaselog` (release logs and manifests), `referrals` (the broker's referral files),
//! `clock` (the wall clock) and `cli` (the command line).
//! `ARCHITECTURE.md` at the repository root is the map.

pub mod audit;
pub mod batch;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod crashpoint;
pub mod daemon;
pub mod duties;
pub mod explain;
pub mod files;
pub mod identity;
pub mod intake;
pub mod machine;
pub mod model;
pub mod money;
pub mod operations;
pub mod planner;
pub mod policy;
pub mod referrals;
pub mod releaselog;
pub mod schedule;
pub mod store;
pub mod wire;
pub mod words;
