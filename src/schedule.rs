//! When the daily release batch fires: the instants of `schedule.batch`, a cron expression of six
//! fields (seconds first) read as wall time in the warehouse's IANA zone.
//!
//! Pure: every instant is an argument, never a read of the clock (only `clock` reads it).
//! Instants are UTC; the expression matches local wall times in the zone.
//!
//! **Daylight-saving rule**, the same as for the cutoff (`planner::cutoff_instant`):
//! a wall time that a change skips (02:30 on a spring-forward day in America/Chicago) fires at
//! the first instant after the gap (03:00 local), as cronie and vixie cron run such jobs, and
//! several skipped wall times fire once there together;
//! a wall time that happens twice (01:30 on a fall-back day) fires once, at its first occurrence.
//! The rule is per wall time, so an expression that fires every few minutes is silent during the
//! repeated hour of a fall-back day: its wall times already fired an hour earlier.
//! An instant never fires twice.

use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// How far back `latest_at_or_before` looks for a trigger.
pub const LOOKBACK_DAYS: i64 = 366;

/// A parsed batch schedule in the warehouse's zone.
#[derive(Debug, Clone)]
pub struct BatchSchedule {
    cron: Cron,
    zone: Tz,
}

impl BatchSchedule {
    /// Parses `cron_text` (six fields, seconds first, as `config` checks it) for wall time in `zone`.
    /// The error names the expression.
    pub fn new(cron_text: &str, zone: Tz) -> Result<BatchSchedule, String> {
        let cron = Cron::new(cron_text)
            .with_seconds_required()
            .parse()
            .map_err(|error| {
                format!(
                    "the batch schedule {cron_text:?} is not a cron expression \
                     of 6 fields, seconds first: {error}"
                )
            })?;
        Ok(BatchSchedule { cron, zone })
    }

    /// The first trigger strictly after `after`, so a trigger passed back in never fires again.
    /// None when the expression matches no wall time from there on (such as 30 February);
    /// croner stops its search at the year 5000, so that answer takes one bounded search.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Triggers fall on whole seconds, so the wall time can drop its fraction.
        let mut wall = after
            .with_timezone(&self.zone)
            .naive_local()
            .with_nanosecond(0)?;
        // Later wall times fire at or after `after`, except the first pass of a repeated hour
        // when `after` is in its second pass: those already fired, so the search goes on.
        loop {
            wall = self.next_wall_time(wall)?;
            let instant = self.instant_of(wall);
            if instant > after {
                return Some(instant);
            }
        }
    }

    /// The most recent trigger at or before `now`, looking back at most `LOOKBACK_DAYS` days.
    /// None when nothing fired in that window.
    pub fn latest_at_or_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // A trigger in (start, now] exists exactly when start is before the latest trigger,
        // so a binary search over start finds the second before it in about 25 steps.
        let fires_by_now = |start| self.next_after(start).filter(|next| *next <= now);
        let mut low = now - Duration::days(LOOKBACK_DAYS);
        let mut latest = fires_by_now(low)?;
        let mut high = now;
        while high - low > Duration::seconds(1) {
            let middle = low + (high - low) / 2;
            match fires_by_now(middle) {
                Some(next) => {
                    low = middle;
                    latest = next;
                }
                None => high = middle,
            }
        }
        Some(latest)
    }

    /// The trigger a daemon starting at `now` runs once before it waits for the next one:
    /// the latest trigger at or before `now`, when it is after `last_fired`.
    /// Several missed triggers give one run, of the latest.
    /// None when nothing was missed, or when `last_fired` is None: a store never scheduled has
    /// missed nothing.
    pub fn missed(
        &self,
        last_fired: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let last_fired = last_fired?;
        self.latest_at_or_before(now)
            .filter(|latest| *latest > last_fired)
    }

    /// The first wall time after `wall` that the expression matches.
    fn next_wall_time(&self, wall: NaiveDateTime) -> Option<NaiveDateTime> {
        // In UTC, which has no daylight saving, croner's search is over wall times alone.
        // Searching in the zone instead, croner 2.2 answers from the second pass of a repeated
        // hour with the first pass of a later wall time: an instant before its start.
        let next = self
            .cron
            .find_next_occurrence(&wall.and_utc(), false)
            .ok()?;
        Some(next.naive_utc())
    }

    /// The instant `wall` fires at in the zone: the first occurrence of a repeated wall time,
    /// and the end of the gap for a skipped one.
    fn instant_of(&self, wall: NaiveDateTime) -> DateTime<Utc> {
        match wall.and_local_timezone(self.zone).earliest() {
            Some(instant) => instant.with_timezone(&Utc),
            None => self.end_of_gap(wall),
        }
    }

    /// The first instant whose wall time is `wall` or later.
    /// Offsets are within 14 hours of UTC and no zone turns its clocks back within a day of a
    /// gap, so wall time rises with the instant over the searched span.
    fn end_of_gap(&self, wall: NaiveDateTime) -> DateTime<Utc> {
        let span = Duration::hours(14);
        let mut low = (wall - span).and_utc(); // wall time there is before `wall`
        let mut high = (wall + span).and_utc(); // and there at or after it
        while high - low > Duration::seconds(1) {
            let middle = low + Duration::seconds((high - low).num_seconds() / 2);
            if middle.with_timezone(&self.zone).naive_local() >= wall {
                high = middle;
            } else {
                low = middle;
            }
        }
        high
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("an RFC 3339 instant")
            .with_timezone(&Utc)
    }

    fn schedule(cron: &str, zone: &str) -> BatchSchedule {
        let zone: Tz = zone.parse().expect("an IANA zone");
        BatchSchedule::new(cron, zone).expect("a valid expression")
    }

    /// One schedule across one daylight-saving change: the first triggers after `from`,
    /// on the day before, the day of and the day after the change.
    struct Case {
        zone: &'static str,
        cron: &'static str,
        from: &'static str,
        fires: [&'static str; 3],
    }

    const SPRING: &str = "2026-03-07T00:00:00Z";
    const FALL: &str = "2026-10-31T00:00:00Z";

    #[rustfmt::skip]
    const CASES: &[Case] = &[
        // America/Chicago: CST (-6) to CDT (-5) at 08:00Z on 8 March, back at 07:00Z on 1 November.
        Case { zone: "America/Chicago", cron: "0 0 6 * * *", from: SPRING,
               fires: ["2026-03-07T12:00:00Z", "2026-03-08T11:00:00Z", "2026-03-09T11:00:00Z"] },
        Case { zone: "America/Chicago", cron: "0 30 2 * * *", from: SPRING,
               fires: ["2026-03-07T08:30:00Z", "2026-03-08T08:00:00Z", "2026-03-09T07:30:00Z"] },
        Case { zone: "America/Chicago", cron: "0 30 1 * * *", from: SPRING,
               fires: ["2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z"] },
        Case { zone: "America/Chicago", cron: "0 0 6 * * *", from: FALL,
               fires: ["2026-10-31T11:00:00Z", "2026-11-01T12:00:00Z", "2026-11-02T12:00:00Z"] },
        Case { zone: "America/Chicago", cron: "0 30 2 * * *", from: FALL,
               fires: ["2026-10-31T07:30:00Z", "2026-11-01T08:30:00Z", "2026-11-02T08:30:00Z"] },
        Case { zone: "America/Chicago", cron: "0 30 1 * * *", from: FALL,
               fires: ["2026-10-31T06:30:00Z", "2026-11-01T06:30:00Z", "2026-11-02T07:30:00Z"] },
        // America/Los_Angeles: PST (-8) to PDT (-7) at 10:00Z on 8 March, back at 09:00Z on 1 November.
        Case { zone: "America/Los_Angeles", cron: "0 0 6 * * *", from: SPRING,
               fires: ["2026-03-07T14:00:00Z", "2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z"] },
        Case { zone: "America/Los_Angeles", cron: "0 30 2 * * *", from: SPRING,
               fires: ["2026-03-07T10:30:00Z", "2026-03-08T10:00:00Z", "2026-03-09T09:30:00Z"] },
        Case { zone: "America/Los_Angeles", cron: "0 30 1 * * *", from: SPRING,
               fires: ["2026-03-07T09:30:00Z", "2026-03-08T09:30:00Z", "2026-03-09T08:30:00Z"] },
        Case { zone: "America/Los_Angeles", cron: "0 0 6 * * *", from: FALL,
               fires: ["2026-10-31T13:00:00Z", "2026-11-01T14:00:00Z", "2026-11-02T14:00:00Z"] },
        Case { zone: "America/Los_Angeles", cron: "0 30 2 * * *", from: FALL,
               fires: ["2026-10-31T09:30:00Z", "2026-11-01T10:30:00Z", "2026-11-02T10:30:00Z"] },
        Case { zone: "America/Los_Angeles", cron: "0 30 1 * * *", from: FALL,
               fires: ["2026-10-31T08:30:00Z", "2026-11-01T08:30:00Z", "2026-11-02T09:30:00Z"] },
        // America/Matamoros follows the US dates: CST (-6) and CDT (-5), as Chicago.
        Case { zone: "America/Matamoros", cron: "0 0 6 * * *", from: SPRING,
               fires: ["2026-03-07T12:00:00Z", "2026-03-08T11:00:00Z", "2026-03-09T11:00:00Z"] },
        Case { zone: "America/Matamoros", cron: "0 30 2 * * *", from: SPRING,
               fires: ["2026-03-07T08:30:00Z", "2026-03-08T08:00:00Z", "2026-03-09T07:30:00Z"] },
        Case { zone: "America/Matamoros", cron: "0 30 1 * * *", from: SPRING,
               fires: ["2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z"] },
        Case { zone: "America/Matamoros", cron: "0 0 6 * * *", from: FALL,
               fires: ["2026-10-31T11:00:00Z", "2026-11-01T12:00:00Z", "2026-11-02T12:00:00Z"] },
        Case { zone: "America/Matamoros", cron: "0 30 2 * * *", from: FALL,
               fires: ["2026-10-31T07:30:00Z", "2026-11-01T08:30:00Z", "2026-11-02T08:30:00Z"] },
        Case { zone: "America/Matamoros", cron: "0 30 1 * * *", from: FALL,
               fires: ["2026-10-31T06:30:00Z", "2026-11-01T06:30:00Z", "2026-11-02T07:30:00Z"] },
    ];

    #[test]
    fn daylight_saving_table() {
        for case in CASES {
            let schedule = schedule(case.cron, case.zone);
            let label = format!("{} {:?} from {}", case.zone, case.cron, case.from);
            let mut previous = at(case.from);
            for expected in case.fires {
                let expected = at(expected);
                let next = schedule.next_after(previous);
                assert_eq!(next, Some(expected), "next_after({previous}) for {label}");
                assert_eq!(
                    schedule.latest_at_or_before(expected),
                    Some(expected),
                    "latest_at_or_before({expected}) for {label}"
                );
                let just_before = expected - Duration::seconds(1);
                if previous != at(case.from) {
                    assert_eq!(
                        schedule.latest_at_or_before(just_before),
                        Some(previous),
                        "latest_at_or_before({just_before}) for {label}"
                    );
                }
                previous = expected;
            }
        }
    }

    #[test]
    fn repeated_wall_time_fires_once_even_from_its_second_pass() {
        let schedule = schedule("0 30 1 * * *", "America/Chicago");
        let second_day = Some(at("2026-11-02T07:30:00Z"));
        // 01:30 CDT fired at 06:30Z; 01:30 CST at 07:30Z is the same wall time and does not fire.
        assert_eq!(schedule.next_after(at("2026-11-01T06:30:00Z")), second_day);
        // 01:10 CST, in the second pass of the repeated hour and before 01:30 on the wall.
        assert_eq!(schedule.next_after(at("2026-11-01T07:10:00Z")), second_day);
        assert_eq!(
            schedule.latest_at_or_before(at("2026-11-01T07:45:00Z")),
            Some(at("2026-11-01T06:30:00Z"))
        );
        assert_eq!(
            schedule.missed(Some(at("2026-11-01T06:30:00Z")), at("2026-11-01T07:45:00Z")),
            None
        );
    }

    #[test]
    fn skipped_wall_time_fires_once_at_the_end_of_the_gap() {
        // 02:00, 02:15, 02:30 and 02:45 do not exist on 8 March: together they fire at 03:00 CDT.
        let schedule = schedule("0 0,15,30,45 2,3 * * *", "America/Chicago");
        let mut fired = Vec::new();
        let mut after = at("2026-03-08T07:00:00Z");
        while let Some(next) = schedule
            .next_after(after)
            .filter(|next| *next < at("2026-03-08T09:00:00Z"))
        {
            fired.push(next);
            after = next;
        }
        let expected = [
            "2026-03-08T08:00:00Z",
            "2026-03-08T08:15:00Z",
            "2026-03-08T08:30:00Z",
            "2026-03-08T08:45:00Z",
        ];
        assert_eq!(fired, expected.map(at));
    }

    #[test]
    fn missed_triggers_give_one_run_of_the_latest() {
        let schedule = schedule("0 0 6 * * *", "America/Chicago");
        let now = at("2026-03-09T15:00:00Z");
        let run = schedule.missed(Some(at("2026-03-05T12:00:00Z")), now);
        assert_eq!(run, Some(at("2026-03-09T11:00:00Z")));
        // Once that run is recorded, nothing else is missed.
        assert_eq!(schedule.missed(run, now), None);
    }

    #[test]
    fn no_missed_run_when_last_fired_is_the_latest_trigger() {
        let schedule = schedule("0 0 6 * * *", "America/Los_Angeles");
        let latest = at("2026-06-01T13:00:00Z");
        assert_eq!(schedule.missed(Some(latest), latest), None);
        assert_eq!(
            schedule.missed(Some(latest), at("2026-06-02T12:59:59Z")),
            None
        );
        assert_eq!(
            schedule.missed(Some(latest), at("2026-06-02T13:00:00Z")),
            Some(at("2026-06-02T13:00:00Z"))
        );
    }

    #[test]
    fn never_scheduled_store_has_missed_nothing() {
        let schedule = schedule("0 0 6 * * *", "America/Matamoros");
        assert_eq!(schedule.missed(None, at("2026-06-02T18:00:00Z")), None);
    }

    #[test]
    fn next_after_never_returns_its_argument() {
        let crons = [
            "0 0 6 * * *",
            "0 30 2 * * *",
            "0 30 1 * * *",
            "0 */15 * * * *",
        ];
        for zone in [
            "America/Chicago",
            "America/Los_Angeles",
            "America/Matamoros",
        ] {
            for cron in crons {
                let schedule = schedule(cron, zone);
                for from in [SPRING, FALL] {
                    let mut trigger = at(from);
                    for _ in 0..200 {
                        let next = schedule.next_after(trigger).expect("a trigger");
                        assert!(next > trigger, "{zone} {cron:?}: {next} after {trigger}");
                        trigger = next;
                    }
                }
            }
        }
    }

    #[test]
    fn fraction_of_a_second_after_a_trigger_is_after_it() {
        let schedule = schedule("0 0 6 * * *", "America/Chicago");
        let trigger = at("2026-06-01T11:00:00Z");
        let later = at("2026-06-01T11:00:00.5Z");
        assert_eq!(schedule.next_after(later), Some(at("2026-06-02T11:00:00Z")));
        assert_eq!(schedule.latest_at_or_before(later), Some(trigger));
        assert_eq!(
            schedule.next_after(at("2026-06-01T10:59:59.999Z")),
            Some(trigger)
        );
    }

    #[test]
    fn every_fifteen_minutes() {
        let schedule = schedule("0 */15 * * * *", "America/Chicago");
        let chain = |from: &str| {
            let mut fired = Vec::new();
            let mut after = at(from);
            for _ in 0..3 {
                after = schedule.next_after(after).expect("a trigger");
                fired.push(after);
            }
            fired
        };
        let ordinary = [
            "2026-06-01T10:15:00Z",
            "2026-06-01T10:30:00Z",
            "2026-06-01T10:45:00Z",
        ];
        assert_eq!(chain("2026-06-01T10:07:00Z"), ordinary.map(at));
        // Spring forward: 01:45 CST, then 03:00 CDT (02:00 to 02:45 do not exist).
        let spring = [
            "2026-03-08T07:45:00Z",
            "2026-03-08T08:00:00Z",
            "2026-03-08T08:15:00Z",
        ];
        assert_eq!(chain("2026-03-08T07:40:00Z"), spring.map(at));
        // Fall back: 01:45 CDT, then 02:00 CST; the repeated 01:00 to 01:45 already fired.
        let fall = [
            "2026-11-01T06:45:00Z",
            "2026-11-01T08:00:00Z",
            "2026-11-01T08:15:00Z",
        ];
        assert_eq!(chain("2026-11-01T06:40:00Z"), fall.map(at));
        assert_eq!(
            schedule.latest_at_or_before(at("2026-06-01T10:07:00Z")),
            Some(at("2026-06-01T10:00:00Z"))
        );
        assert_eq!(
            schedule.latest_at_or_before(at("2026-11-01T07:59:59Z")),
            Some(at("2026-11-01T06:45:00Z"))
        );
        assert_eq!(
            schedule.missed(Some(at("2026-06-01T09:00:00Z")), at("2026-06-01T10:07:00Z")),
            Some(at("2026-06-01T10:00:00Z"))
        );
    }

    #[test]
    fn expression_that_never_matches_gives_none() {
        let schedule = schedule("0 0 6 30 2 *", "America/Chicago");
        let now = at("2026-06-01T12:00:00Z");
        assert_eq!(schedule.next_after(now), None);
        assert_eq!(schedule.latest_at_or_before(now), None);
        assert_eq!(schedule.missed(Some(at("2025-01-01T00:00:00Z")), now), None);
    }

    #[test]
    fn lookback_is_bounded() {
        // 29 February 2028 is the first after 2024: more than LOOKBACK_DAYS before mid-2026.
        let schedule = schedule("0 0 6 29 2 *", "America/Chicago");
        assert_eq!(
            schedule.latest_at_or_before(at("2026-06-01T00:00:00Z")),
            None
        );
        assert_eq!(
            schedule.next_after(at("2026-06-01T00:00:00Z")),
            Some(at("2028-02-29T12:00:00Z"))
        );
        assert_eq!(
            schedule.latest_at_or_before(at("2028-03-01T00:00:00Z")),
            Some(at("2028-02-29T12:00:00Z"))
        );
    }

    #[test]
    fn invalid_expression_is_refused_naming_it() {
        let zone: Tz = "America/Chicago".parse().expect("an IANA zone");
        for text in ["0 0 6 * *", "0 61 6 * * *", "not cron"] {
            let error = BatchSchedule::new(text, zone).expect_err("refused");
            assert!(error.contains(&format!("{text:?}")), "{error}");
        }
    }

    proptest::proptest! {
        #[test]
        fn latest_and_next_bracket_every_instant(
            seconds in 1_767_225_600i64..1_798_761_600, // 2026
            which in 0usize..4,
        ) {
            let cron = ["0 0 6 * * *", "0 30 2 * * *", "0 30 1 * * *", "0 */15 * * * *"][which];
            let schedule = schedule(cron, "America/Chicago");
            let now = DateTime::from_timestamp(seconds, 0).expect("in range");
            let latest = schedule.latest_at_or_before(now).expect("a trigger");
            let next = schedule.next_after(now).expect("a trigger");
            proptest::prop_assert!(latest <= now && now < next);
            // No trigger lies between them.
            proptest::prop_assert_eq!(schedule.next_after(latest), Some(next));
        }
    }
}
