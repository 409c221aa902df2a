//! Mutation fuzzing of every parser: valid inputs (the sample files and the example config)
//! with bytes flipped, inserted, deleted and repeated, and arbitrary bytes. Whatever comes in,
//! a parser returns a value or an error naming what is wrong; none panics, and what is refused
//! changes nothing.
//!
//! 256 cases a test in the suite; the long run is
//! `PROPTEST_CASES=100000 cargo test --release --locked --test fuzz`.

use std::path::Path;

use border_release::identity::IdentityRule;
use border_release::intake::{self, Source, StockFile};
use border_release::store::Store;
use proptest::prelude::*;

fn seed(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect("seed file")
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Flip { at: usize, bit: u8 },
    Insert { at: usize, byte: u8 },
    Delete { at: usize, len: usize },
    Repeat { at: usize, len: usize, times: usize },
    Set { at: usize, byte: u8 },
}

/// Bytes that matter to the formats, more often than chance would give them.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(b"\"\\{}[],:.-+eE0123456789\n\r\t =#'\x00\x7f\xc3\xa9\xff".to_vec()),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Edit::Flip { at, bit }),
        (any::<usize>(), interesting_byte()).prop_map(|(at, byte)| Edit::Insert { at, byte }),
        (any::<usize>(), 1usize..16).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), 1usize..32, 2usize..64).prop_map(|(at, len, times)| Edit::Repeat {
            at,
            len,
            times
        }),
        (any::<usize>(), interesting_byte()).prop_map(|(at, byte)| Edit::Set { at, byte }),
    ]
}

fn mutate(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len();
        let at = |at: usize| if len == 0 { 0 } else { at % len };
        match *edit {
            Edit::Flip { at: i, bit } if len > 0 => bytes[at(i)] ^= 1 << bit,
            Edit::Insert { at: i, byte } => bytes.insert(at(i), byte),
            Edit::Delete { at: i, len: n } if len > 0 => {
                let start = at(i);
                bytes.drain(start..(start + n).min(len));
            }
            Edit::Repeat {
                at: i,
                len: n,
                times,
            } if len > 0 => {
                let start = at(i);
                let piece = bytes[start..(start + n).min(len)].to_vec();
                for _ in 0..times {
                    bytes.splice(start..start, piece.iter().copied());
                }
            }
            Edit::Set { at: i, byte } if len > 0 => bytes[at(i)] = byte,
            _ => {}
        }
    }
    bytes
}

/// A seed mutated by 1 to 8 edits, or arbitrary bytes now and then.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        9 => prop::collection::vec(edit(), 1..8).prop_map(move |edits| mutate(seed.clone(), &edits)),
        1 => prop::collection::vec(any::<u8>(), 0..600),
    ]
}

/// A store with the sample catalogue, one per test thread (intake needs one; what the fuzz
/// takes in accumulates harmlessly).
fn with_store<T>(work: impl FnOnce(&mut Store) -> T) -> T {
    thread_local! {
        static STORE: (tempfile::TempDir, std::cell::RefCell<Store>) = {
            let dir = tempfile::tempdir().unwrap();
            let mut store = Store::open(&dir.path().join("data")).unwrap();
            let items = seed("sample/items.csv");
            let name = Path::new("items.csv");
            intake::import_items(&mut store, Source::Bytes { name, bytes: &items }, None)
                .unwrap();
            (dir, std::cell::RefCell::new(store))
        };
    }
    STORE.with(|(_, store)| work(&mut store.borrow_mut()))
}

proptest! {
    #[test]
    fn a_mutated_order_line_parses_or_is_refused_with_a_reason(
        line in prop::sample::select(
            String::from_utf8(seed("sample/orders.jsonl")).unwrap().lines().map(str::to_owned).collect::<Vec<_>>()
        ).prop_flat_map(|line| mutated(line.into_bytes()))
    ) {
        let text = String::from_utf8_lossy(&line);
        for identity in [IdentityRule::NameAndAddress, IdentityRule::CustomerId, IdentityRule::Address] {
            if let Err(rejection) = intake::parse_order(&text, identity) {
                prop_assert!(!rejection.message.is_empty());
                prop_assert!(!rejection.rule.is_empty(), "no rule for {:?}", rejection);
            }
        }
    }

    #[test]
    fn a_mutated_orders_file_is_taken_in_line_by_line(bytes in mutated(seed("sample/orders.jsonl"))) {
        with_store(|store| {
            let name = Path::new("orders.jsonl");
            let before = store.order_states().unwrap().len();
            let reports = intake::import_orders(
                store,
                &[Source::Bytes { name, bytes: &bytes }],
                IdentityRule::NameAndAddress,
                None,
            );
            let after = store.order_states().unwrap().len();
            match reports {
                Ok(reports) => {
                    let report = &reports[0];
                    prop_assert_eq!(after - before, report.accepted);
                    for rejection in &report.rejected {
                        prop_assert!(rejection.line > 0 && !rejection.message.is_empty());
                    }
                }
                Err(_) => prop_assert_eq!(after, before),
            }
            Ok(())
        })?;
    }

    #[test]
    fn a_mutated_catalogue_duty_table_or_stock_file_is_taken_in_or_refused(
        items in mutated(seed("sample/items.csv")),
        duties in mutated(seed("config/duties-example.csv")),
        stock in mutated(seed("sample/stock.csv")),
    ) {
        with_store(|store| {
            let name = Path::new("input.csv");
            let _ = intake::import_items(store, Source::Bytes { name, bytes: &items }, None);
            let before = store.duty_rates().unwrap();
            match intake::import_duties(store, Source::Bytes { name, bytes: &duties }, None) {
                // Every row taken in is held, and none other came.
                Ok(report) => prop_assert!(
                    store.duty_rates().unwrap().len() <= before.len() + report.accepted
                ),
                Err(_) => prop_assert_eq!(store.duty_rates().unwrap(), before),
            }
            for kind in [StockFile::Receive, StockFile::Count] {
                let _ = intake::import_stock(
                    store,
                    Source::Bytes { name, bytes: &stock },
                    kind,
                    None,
                );
            }
            for (sku, level) in store.stock().unwrap() {
                prop_assert!(level.on_hand() >= 0, "{} below zero: {:?}", sku, level);
            }
            Ok(())
        })?;
    }

    #[test]
    fn a_mutated_config_loads_or_is_refused_with_a_reason(
        text in mutated(seed("config/border-release.toml"))
    ) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("border-release.toml");
        std::fs::write(&file, &text).unwrap();
        if let Err(error) = border_release::config::load_with_env(&file, &[]) {
            prop_assert!(!error.to_string().is_empty());
        }
    }
}
