//! The wall clock. The only module that reads it: everything else takes time as an argument.
//!
//! `BORDER_RELEASE_FAKE_NOW` (an RFC 3339 instant) pins the clock for black-box tests and
//! rehearsals; the command line warns whenever it is set.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

/// The environment variable that pins the clock.
pub const FAKE_NOW_VAR: &str = "BORDER_RELEASE_FAKE_NOW";

/// Where the current instant comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    System,
    Fixed(DateTime<Utc>),
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

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(instant) => *instant,
        }
    }

    /// Today's date in `zone`.
    pub fn today(&self, zone: Tz) -> NaiveDate {
        self.now().with_timezone(&zone).date_naive()
    }
}
