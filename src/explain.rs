//! Why an order is where it is, for people: the detail of a verdict in a few words (`plan`,
//! `batch`, `orders list`: `stock (GUITAR: 1 needed, 0 on hand)`) and as the `detail` object of
//! `orders show --json` and `orders list --json`. README.md ("Why an order waits") documents
//! both.
//!
//! Pure: the detail comes from the batch that decided (see [`Detail`]); the warehouse's zone and
//! cutoff are given.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::model::{Detail, Exclusion, Missing};
use crate::money::Usd;
use crate::planner::cutoff_instant;
use crate::words::counted;

/// What explaining a not-due order needs of the config.
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    pub zone: Tz,
    pub cutoff: NaiveTime,
}

impl Cutoffs {
    pub fn of(config: &crate::config::Config) -> Cutoffs {
        Cutoffs {
            zone: config.warehouse.timezone,
            cutoff: config.schedule.cutoff,
        }
    }

    /// The first release day after `day` whose cutoff comes after `placed_at`: the day a batch
    /// first examines an order that `day`'s batch found not due.
    pub fn first_day(&self, day: NaiveDate, placed_at: DateTime<Utc>) -> NaiveDate {
        let placed_day = placed_at.with_timezone(&self.zone).date_naive();
        let mut first = day.succ_opt().unwrap_or(day).max(placed_day);
        while cutoff_instant(first, self.cutoff, self.zone) <= placed_at {
            match first.succ_opt() {
                Some(next) => first = next,
                None => break,
            }
        }
        first
    }

    /// The day's cutoff as the warehouse's clocks show it: `2026-11-24 12:00 America/Tijuana`.
    fn local(&self, instant: DateTime<Utc>) -> String {
        let local = instant.with_timezone(&self.zone);
        format!("{} {}", local.format("%Y-%m-%d %H:%M"), self.zone)
    }
}

/// An amount of US dollars as people read it and the JSON gives it: `0.00`, `800.00`.
fn usd(value: Decimal) -> String {
    Usd(value).to_string()
}

/// The detail in a few words, without the reason word.
pub fn words(detail: &Detail, placed_at: DateTime<Utc>, cutoffs: &Cutoffs) -> String {
    match detail {
        Detail::Stock { short } => short
            .iter()
            .map(|line| {
                format!(
                    "{}: {} needed, {} on hand",
                    line.sku, line.needed, line.on_hand
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        Detail::DailyLimit {
            releases_used,
            value_used_usd,
            order_value_usd,
            releases_per_recipient_per_day,
            value_limit_usd,
        } => format!(
            "the recipient has {releases_used} of {} and {} of {} USD for the day; this order is {} USD",
            counted(u64::from(*releases_per_recipient_per_day), "release"),
            usd(*value_used_usd),
            usd(*value_limit_usd),
            usd(*order_value_usd)
        ),
        Detail::Excluded { sku, rule, policy } => {
            let rule = match rule {
                Exclusion::Origin(origin) => format!("origin {origin}"),
                Exclusion::HtsPrefix(prefix) => format!("HTS {prefix}"),
                Exclusion::Flag(flag) => format!("flag {flag}"),
            };
            format!("{sku}: {rule} excluded by policy {policy}")
        }
        Detail::IncompleteItem {
            sku,
            missing,
            policy,
        } => {
            let lacks: Vec<String> = missing
                .iter()
                .map(|missing| match missing {
                    Missing::HtsDigits { digits, required } => {
                        format!("an HTS code of {digits} digits, {required} needed")
                    }
                    Missing::Mid => "no MID".to_owned(),
                    Missing::Description => "a description too vague to file".to_owned(),
                })
                .collect();
            format!("{sku}: {} for policy {policy}", lacks.join(", "))
        }
        Detail::OverLimit {
            value_usd: Some(value),
            value_limit_usd,
        } => format!(
            "{} USD, over the {} USD limit on its own",
            usd(*value),
            usd(*value_limit_usd)
        ),
        Detail::OverLimit {
            value_usd: None,
            value_limit_usd,
        } => format!(
            "too large to value, over the {} USD limit on its own",
            usd(*value_limit_usd)
        ),
        Detail::NoRate { currency, day } => format!("no {currency} rate for {day}"),
        Detail::NotDue { day, cutoff } => format!(
            "placed after the {} cutoff of {day}; first examined on {}",
            cutoffs.local(*cutoff),
            cutoffs.first_day(*day, placed_at)
        ),
    }
}

/// The reason word with the detail in a few words: `stock (GUITAR: 1 needed, 0 on hand)`.
pub fn reason_with_words(
    reason: &str,
    detail: Option<&Detail>,
    placed_at: DateTime<Utc>,
    cutoffs: &Cutoffs,
) -> String {
    match detail {
        Some(detail) => format!("{reason} ({})", words(detail, placed_at, cutoffs)),
        None => reason.to_owned(),
    }
}

/// The detail as the JSON object of `orders show --json`.
pub fn json(detail: &Detail, placed_at: DateTime<Utc>, cutoffs: &Cutoffs) -> Value {
    match detail {
        Detail::Stock { short } => json!({
            "short": short
                .iter()
                .map(|line| json!({"sku": line.sku, "needed": line.needed, "on_hand": line.on_hand}))
                .collect::<Vec<_>>(),
        }),
        Detail::DailyLimit {
            releases_used,
            value_used_usd,
            order_value_usd,
            releases_per_recipient_per_day,
            value_limit_usd,
        } => json!({
            "releases_used": releases_used,
            "value_used_usd": usd(*value_used_usd),
            "order_value_usd": usd(*order_value_usd),
            "releases_per_recipient_per_day": releases_per_recipient_per_day,
            "value_limit_usd": usd(*value_limit_usd),
        }),
        Detail::Excluded { sku, rule, policy } => {
            let (key, value) = match rule {
                Exclusion::Origin(origin) => ("origin", origin.clone()),
                Exclusion::HtsPrefix(prefix) => ("hts_prefix", prefix.clone()),
                Exclusion::Flag(flag) => ("flag", flag.word().to_owned()),
            };
            json!({"sku": sku, key: value, "policy": policy})
        }
        Detail::IncompleteItem {
            sku,
            missing,
            policy,
        } => {
            let mut detail = json!({
                "sku": sku,
                "missing": missing.iter().map(|missing| missing.word()).collect::<Vec<_>>(),
                "policy": policy,
            });
            for missing in missing {
                if let Missing::HtsDigits { digits, required } = missing {
                    detail["hts_digits"] = json!(digits);
                    detail["min_hts_digits"] = json!(required);
                }
            }
            detail
        }
        Detail::OverLimit {
            value_usd,
            value_limit_usd,
        } => json!({
            "value_usd": value_usd.map(usd),
            "value_limit_usd": usd(*value_limit_usd),
        }),
        Detail::NoRate { currency, day } => json!({"currency": currency, "day": day}),
        Detail::NotDue { day, cutoff } => json!({
            "day": day,
            "cutoff": cutoff.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "first_day": cutoffs.first_day(*day, placed_at),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ItemFlag, Shortfall};
    use std::str::FromStr;

    fn cutoffs() -> Cutoffs {
        Cutoffs {
            zone: chrono_tz::America::Tijuana,
            cutoff: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::from_str(text).unwrap()
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn each_detail_reads_in_a_few_words() {
        let placed = at("2026-11-24T21:00:00Z");
        let cases = [
            (
                Detail::Stock {
                    short: vec![Shortfall {
                        sku: "GUITAR".into(),
                        needed: 1,
                        on_hand: 0,
                    }],
                },
                "GUITAR: 1 needed, 0 on hand",
            ),
            (
                Detail::DailyLimit {
                    releases_used: 1,
                    value_used_usd: dec("700"),
                    order_value_usd: dec("150.5"),
                    releases_per_recipient_per_day: 1,
                    value_limit_usd: dec("800"),
                },
                "the recipient has 1 of 1 release and 700.00 of 800.00 USD for the day; this order is 150.50 USD",
            ),
            (
                Detail::Excluded {
                    sku: "BOLT".into(),
                    rule: Exclusion::Flag(ItemFlag::Adcvd),
                    policy: "section-321".into(),
                },
                "BOLT: flag adcvd excluded by policy section-321",
            ),
            (
                Detail::OverLimit {
                    value_usd: Some(dec("800.01")),
                    value_limit_usd: dec("800"),
                },
                "800.01 USD, over the 800.00 USD limit on its own",
            ),
            (
                Detail::NoRate {
                    currency: "EUR".into(),
                    day: day("2026-11-24"),
                },
                "no EUR rate for 2026-11-24",
            ),
            (
                Detail::NotDue {
                    day: day("2026-11-24"),
                    cutoff: at("2026-11-24T20:00:00Z"),
                },
                "placed after the 2026-11-24 12:00 America/Tijuana cutoff of 2026-11-24; first examined on 2026-11-25",
            ),
        ];
        for (detail, expected) in cases {
            assert_eq!(words(&detail, placed, &cutoffs()), expected);
        }
    }

    #[test]
    fn an_order_placed_after_the_next_cutoff_is_first_examined_the_day_after() {
        let cutoffs = cutoffs();
        let day = day("2026-11-24");
        // Before, at and after the next day's cutoff (20:00 UTC).
        assert_eq!(
            cutoffs.first_day(day, at("2026-11-25T19:59:59Z")),
            NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
        );
        assert_eq!(
            cutoffs.first_day(day, at("2026-11-25T20:00:00Z")),
            NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
        );
    }
}
