//! The wall clock. The only module that reads it: everything else takes time as an argument.
//!
//! `BORDER_RELEASE_FAKE_NOW` (an RFC 3339 instant) pins the clock for black-box tests and
//! rehearsals; the command line warns whenever it is set.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

/// The monotonic clock, for timing and timeouts (never pinned: it tells durations, not dates).
pub fn monotonic() -> std::time::Instant {
    std::time::Instant::now()
}

/// The environment variable that pins the clock.
pub const FAKE_NOW_VAR: &str = "BORDER_RELEASE_FAKE_NOW";

/// Where the current instant comes from.
#[derive(Debug, Clone)]
pub enum Clock {
    System,
    Fixed(DateTime<Utc>),
    /// Set by its owner (the daemon's in-process tests), shared by every clone.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// The system clock, or the pinned instant when `BORDER_RELEASE_FAKE_NOW` is set.
    pub fn from_env() -> Result<Clock, String> {
        match std::env::var(FAKE_NOW_VAR) {
            Err(_) => Ok(Clock::System),
            Ok(text) => DateTime::parse_from_rfc3339(text.trim())
                .map(|instant| Clock::Fixed(instant.with_timezone(&Utc)))
                .map_err(|error| {
                    format!("{FAKE_NOW_VAR}={text:?} is not an RFC 3339 instant: {error}")
                }),
        }
    }

    /// A clock that reads `start` until it is set.
    pub fn manual(start: DateTime<Utc>) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(start.timestamp_micros())))
    }

    /// Moves a manual clock to `instant`; other clocks are not moved.
    pub fn set(&self, instant: DateTime<Utc>) {
        if let Clock::Manual(micros) = self {
            micros.store(instant.timestamp_micros(), Ordering::SeqCst);
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(instant) => *instant,
            Clock::Manual(micros) => DateTime::from_timestamp_micros(micros.load(Ordering::SeqCst))
                .expect("a manual clock holds a valid instant"),
        }
    }

    /// Today's date in `zone`.
    pub fn today(&self, zone: Tz) -> NaiveDate {
        self.now().with_timezone(&zone).date_naive()
    }
}
