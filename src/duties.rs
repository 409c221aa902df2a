//! The duty and fee estimate of a release: which rows of the operator's rate tables apply to a
//! line, what each program costs, and which fees a release owes. Nothing here is known by heart:
//! every rate comes from the tables imported with `duties import` and every fee from `[[fees]]`.
//!
//! The estimate is information for the operator and the broker; the value limit of a release is
//! on the goods' value, never on duties, so the planner does not look at it.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::model::{Assessed, AssessedItem, DutyRate, Fee, Item, ProgramRate, Release};
use crate::policy::hts_digits;

/// The program whose row makes a line's duty known: the normal rate.
pub const MFN: &str = "mfn";

/// A fee of `[[fees]]`: from `from` on, each release of `lane` owes `per_release_usd`; a row of
/// 0 ends the fee of that name from its day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeRule {
    pub name: String,
    pub from: NaiveDate,
    pub lane: String,
    pub per_release_usd: Decimal,
    pub usmca_exempt: bool,
}

/// The rows of the rate tables in force on one day, by HTS prefix.
pub struct Table<'a> {
    by_prefix: HashMap<&'a str, Vec<&'a DutyRate>>,
}

impl<'a> Table<'a> {
    /// The rows whose `from` is on or before `day`.
    pub fn on(rows: &'a [DutyRate], day: NaiveDate) -> Table<'a> {
        let mut by_prefix: HashMap<&str, Vec<&DutyRate>> = HashMap::new();
        for row in rows.iter().filter(|row| row.from <= day) {
            by_prefix.entry(&row.hts_prefix).or_default().push(row);
        }
        Table { by_prefix }
    }

    /// The row of each program that applies to goods of an HTS code (its digits) and origin: of
    /// the rows whose prefix starts the code and whose origin is the goods' or `*`, the longest
    /// prefix, then the exact origin, then the latest `from`.
    pub fn chosen(&self, hts_digits: &str, origin: &str) -> BTreeMap<&'a str, &'a DutyRate> {
        let mut chosen: BTreeMap<&str, &DutyRate> = BTreeMap::new();
        let rank = |row: &DutyRate| (row.hts_prefix.len(), row.origin == origin, row.from);
        for length in (2..=hts_digits.len().min(10)).rev() {
            let Some(rows) = self.by_prefix.get(&hts_digits[..length]) else {
                continue;
            };
            for &row in rows {
                if row.origin != origin && row.origin != "*" {
                    continue;
                }
                let best = chosen.entry(&row.program).or_insert(row);
                if rank(row) > rank(best) {
                    *best = row;
                }
            }
        }
        chosen
    }

    /// What applies to an item: each program's rate, left out when the program is ended (rate
    /// 0, but for `mfn`, whose 0 is a rate of free) or spares the item's USMCA claim.
    pub fn item(&self, item: &Item) -> AssessedItem {
        let chosen = self.chosen(&hts_digits(&item.hts), &item.origin);
        let rates = chosen
            .values()
            .filter(|row| !(item.usmca && row.usmca_exempt))
            .filter(|row| row.program == MFN || !row.rate_percent.is_zero())
            .map(|row| ProgramRate {
                program: row.program.clone(),
                rate_percent: row.rate_percent,
            })
            .collect();
        AssessedItem {
            sku: item.sku.clone(),
            usmca: item.usmca,
            known: chosen.contains_key(MFN),
            rates,
        }
    }
}

/// The fees a release of `lane` owes on `day`: for each name, the rule of the latest `from` on
/// or before the day, unless it is 0. In the order the names first appear in the config.
pub fn fees_on(rules: &[FeeRule], lane: &str, day: NaiveDate) -> Vec<Fee> {
    let mut latest: Vec<&FeeRule> = Vec::new();
    for rule in rules
        .iter()
        .filter(|rule| rule.lane == lane && rule.from <= day)
    {
        match latest.iter_mut().find(|kept| kept.name == rule.name) {
            Some(kept) if kept.from < rule.from => *kept = rule,
            Some(_) => {}
            None => latest.push(rule),
        }
    }
    latest
        .into_iter()
        .filter(|rule| !rule.per_release_usd.is_zero())
        .map(|rule| Fee {
            name: rule.name.clone(),
            usd: rule.per_release_usd,
            usmca_exempt: rule.usmca_exempt,
        })
        .collect()
}

/// What a wave of `lane` on `day` is assessed with: the rates of each item it holds (`skus`, in
/// order), and the fees of its lane on its day.
pub fn assess(
    day: NaiveDate,
    lane: &str,
    skus: &[&str],
    items: &HashMap<String, Item>,
    rows: &[DutyRate],
    fees: &[FeeRule],
) -> Assessed {
    let table = Table::on(rows, day);
    Assessed::new(
        skus.iter()
            .filter_map(|sku| items.get(*sku))
            .map(|item| table.item(item))
            .collect(),
        fees_on(fees, lane, day),
    )
}

/// One program's duty on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramDuty<'a> {
    pub program: &'a str,
    pub rate_percent: Decimal,
    pub usd: Decimal,
}

/// A line's duty: each program's, and their sum, or `None` when no `mfn` row applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDuty<'a> {
    pub duties: Vec<ProgramDuty<'a>>,
    pub duty_usd: Option<Decimal>,
}

/// The duty of one program on a value: the value times the rate, to the cent, half away from
/// zero.
pub fn program_duty(value_usd: Decimal, rate_percent: Decimal) -> Decimal {
    let mut duty = value_usd * rate_percent;
    // Percent: two more decimal places, which is exact, and much cheaper than a division.
    if duty.set_scale(duty.scale() + 2).is_err() {
        duty = value_usd * rate_percent / Decimal::ONE_HUNDRED;
    }
    duty.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Each program's duty on a line of `value_usd` of an item assessed as `item`.
pub fn program_duties(
    item: &AssessedItem,
    value_usd: Decimal,
) -> impl Iterator<Item = ProgramDuty<'_>> {
    item.rates.iter().map(move |rate| ProgramDuty {
        program: &rate.program,
        rate_percent: rate.rate_percent,
        usd: program_duty(value_usd, rate.rate_percent),
    })
}

/// The duty of a line of `value_usd` of an item assessed as `item`: the sum of its programs',
/// or `None` when no `mfn` row applies to it or the wave did not assess it.
pub fn line_duty_usd(item: Option<&AssessedItem>, value_usd: Decimal) -> Option<Decimal> {
    let item = item.filter(|item| item.known)?;
    Some(program_duties(item, value_usd).map(|duty| duty.usd).sum())
}

/// A line's duty with each program's.
pub fn line_duty(item: Option<&AssessedItem>, value_usd: Decimal) -> LineDuty<'_> {
    LineDuty {
        duties: item
            .map(|item| program_duties(item, value_usd).collect())
            .unwrap_or_default(),
        duty_usd: line_duty_usd(item, value_usd),
    }
}

/// The fees of a wave a release owes: all of them, but those spared to a release whose every
/// line claims USMCA when it does.
pub fn fees_owed(assessed: &Assessed, all_usmca: bool) -> impl Iterator<Item = &Fee> {
    assessed
        .fees
        .iter()
        .filter(move |fee| !(fee.usmca_exempt && all_usmca))
}

/// Whether every line of a release claims USMCA.
fn all_usmca(release: &Release, assessed: &Assessed) -> bool {
    release
        .lines
        .iter()
        .all(|line| assessed.item(&line.item.sku).is_some_and(|item| item.usmca))
}

/// A release's estimate: its lines' duties, their sum (`None` when any line's is unknown), and
/// the fees it owes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseDuty<'a> {
    pub lines: Vec<LineDuty<'a>>,
    pub duty_usd: Option<Decimal>,
    pub fees: Vec<&'a Fee>,
    pub fees_usd: Decimal,
}

/// The estimate of a release assessed as `assessed`, line by line.
pub fn release_duty<'a>(release: &Release, assessed: &'a Assessed) -> ReleaseDuty<'a> {
    let lines: Vec<LineDuty> = release
        .lines
        .iter()
        .map(|line| line_duty(assessed.item(&line.item.sku), line.value_usd))
        .collect();
    let duty_usd = lines.iter().map(|line| line.duty_usd).sum();
    let fees: Vec<&Fee> = fees_owed(assessed, all_usmca(release, assessed)).collect();
    let fees_usd = fees.iter().map(|fee| fee.usd).sum();
    ReleaseDuty {
        lines,
        duty_usd,
        fees,
        fees_usd,
    }
}

/// The estimate of a release, when its wave was assessed.
pub fn of_release(release: &Release) -> Option<ReleaseDuty<'_>> {
    release
        .assessed
        .as_deref()
        .map(|assessed| release_duty(release, assessed))
}

/// What a release owes, without the detail of each line (for the files and figures written
/// for every release of a day).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owed {
    /// The sum of the lines' duties; `None` when any line's is unknown.
    pub duty_usd: Option<Decimal>,
    /// The sum of the duties known, and how many lines have none.
    pub known_usd: Decimal,
    pub unknown_lines: u64,
    pub fees_usd: Decimal,
}

/// What a release owes, when its wave was assessed.
pub fn owed(release: &Release) -> Option<Owed> {
    let assessed = release.assessed.as_deref()?;
    let mut owed = Owed::default();
    let mut all_usmca = true;
    for line in &release.lines {
        let item = assessed.item(&line.item.sku);
        all_usmca &= item.is_some_and(|item| item.usmca);
        match line_duty_usd(item, line.value_usd) {
            Some(usd) => owed.known_usd += usd,
            None => owed.unknown_lines += 1,
        }
    }
    owed.duty_usd = (owed.unknown_lines == 0).then_some(owed.known_usd);
    owed.fees_usd = fees_owed(assessed, all_usmca).map(|fee| fee.usd).sum();
    Some(owed)
}

/// What the estimates of some releases add up to: the duties known, the fees, and the lines
/// whose duty is unknown (releases made before estimates add nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub duty_usd: Decimal,
    pub fees_usd: Decimal,
    pub unknown_lines: u64,
}

impl Totals {
    pub fn of<'a>(releases: impl IntoIterator<Item = &'a Release>) -> Totals {
        let mut totals = Totals::default();
        for owed in releases.into_iter().filter_map(owed) {
            totals.duty_usd += owed.known_usd;
            totals.unknown_lines += owed.unknown_lines;
            totals.fees_usd += owed.fees_usd;
        }
        totals
    }
}

/// The rows in force on `day`: for each prefix, origin and program, the row of the latest
/// `from` on or before it (rows of rate 0 included: they say a program ended). By prefix,
/// origin and program.
pub fn in_force(rows: &[DutyRate], day: NaiveDate) -> Vec<&DutyRate> {
    let mut latest: BTreeMap<(&str, &str, &str), &DutyRate> = BTreeMap::new();
    for row in rows.iter().filter(|row| row.from <= day) {
        let kept = latest
            .entry((&row.hts_prefix, &row.origin, &row.program))
            .or_insert(row);
        if kept.from < row.from {
            *kept = row;
        }
    }
    latest.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ItemFacts, ReleaseLine};
    use std::sync::Arc;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn usd(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn row(prefix: &str, origin: &str, program: &str, rate: &str, from: &str) -> DutyRate {
        DutyRate {
            hts_prefix: prefix.into(),
            origin: origin.into(),
            program: program.into(),
            rate_percent: usd(rate),
            from: day(from),
            usmca_exempt: false,
            source: String::new(),
        }
    }

    fn item(sku: &str, hts: &str, origin: &str, usmca: bool) -> Item {
        Item {
            sku: sku.into(),
            description: "goods".into(),
            hts: hts.into(),
            origin: origin.into(),
            flags: Vec::new(),
            mid: None,
            usmca,
        }
    }

    fn rates(table: &Table, item: &Item) -> Vec<(String, Decimal)> {
        table
            .item(item)
            .rates
            .into_iter()
            .map(|rate| (rate.program, rate.rate_percent))
            .collect()
    }

    #[test]
    fn the_longest_prefix_then_the_exact_origin_then_the_latest_day_wins() {
        let rows = vec![
            row("61", "*", "mfn", "10", "2020-01-01"),
            row("6109", "*", "mfn", "16.5", "2020-01-01"),
            row("610910", "CN", "mfn", "20", "2020-01-01"),
            row("6109", "CN", "mfn", "18", "2020-01-01"),
            row("6109", "*", "mfn", "17", "2026-06-01"),
            row("6109", "*", "mfn", "99", "2027-01-01"),
        ];
        let table = Table::on(&rows, day("2026-12-06"));
        let shirt = |origin| item("T", "6109.10.0012", origin, false);
        // The 6-digit row is for China only; elsewhere the 4-digit rows, the latest in force.
        assert_eq!(
            rates(&table, &shirt("MX")),
            [("mfn".into(), usd("17"))],
            "latest from among the longest prefix for every origin"
        );
        assert_eq!(rates(&table, &shirt("CN")), [("mfn".into(), usd("20"))]);
        // Without the 6-digit row, China's exact row beats the later `*` one.
        let rows: Vec<DutyRate> = rows
            .into_iter()
            .filter(|r| r.hts_prefix != "610910")
            .collect();
        let table = Table::on(&rows, day("2026-12-06"));
        assert_eq!(rates(&table, &shirt("CN")), [("mfn".into(), usd("18"))]);
        // A chapter with no 4-digit row falls back to the 2-digit one.
        assert_eq!(
            rates(&table, &item("J", "6110.20", "MX", false)),
            [("mfn".into(), usd("10"))]
        );
        // Before a row's day it is not there.
        let table = Table::on(&rows, day("2019-12-31"));
        assert!(!table.item(&shirt("MX")).known);
    }

    #[test]
    fn a_program_ended_by_a_zero_row_no_longer_applies_but_a_free_mfn_rate_does() {
        let rows = vec![
            row("6109", "*", "mfn", "0", "2020-01-01"),
            row("6109", "*", "section-122", "10", "2026-02-24"),
            row("6109", "*", "section-122", "0", "2026-07-25"),
        ];
        let shirt = item("T", "6109.10.0012", "MX", false);
        let during = Table::on(&rows, day("2026-07-24"));
        assert_eq!(
            rates(&during, &shirt),
            [("mfn".into(), usd("0")), ("section-122".into(), usd("10"))]
        );
        let after = Table::on(&rows, day("2026-07-25"));
        assert_eq!(rates(&after, &shirt), [("mfn".into(), usd("0"))]);
        assert!(after.item(&shirt).known);
    }

    #[test]
    fn usmca_goods_are_spared_the_programs_marked_exempt() {
        let mut mfn = row("6109", "*", "mfn", "16.5", "2020-01-01");
        mfn.usmca_exempt = true;
        let mut surcharge = row("6109", "*", "section-122", "10", "2026-02-24");
        surcharge.usmca_exempt = true;
        let rows = vec![
            mfn,
            surcharge,
            row("6109", "MX", "other", "1", "2020-01-01"),
        ];
        let table = Table::on(&rows, day("2026-03-01"));
        let claimed = table.item(&item("T", "6109.10", "MX", true));
        assert!(
            claimed.known,
            "an exempt mfn row still makes the duty known"
        );
        assert_eq!(
            claimed.rates,
            [ProgramRate {
                program: "other".into(),
                rate_percent: usd("1")
            }]
        );
        assert_eq!(
            table.item(&item("T", "6109.10", "MX", false)).rates.len(),
            3
        );
    }

    #[test]
    fn each_program_is_rounded_to_the_cent_half_away_from_zero() {
        assert_eq!(program_duty(usd("10.10"), usd("16.5")), usd("1.67")); // 1.6665
        assert_eq!(program_duty(usd("0.10"), usd("25")), usd("0.03")); // 0.025
        assert_eq!(program_duty(usd("0.30"), usd("5")), usd("0.02")); // 0.015
        assert_eq!(program_duty(usd("0.10"), usd("4")), usd("0.00")); // 0.004
        assert_eq!(program_duty(usd("19.99"), usd("0")), usd("0"));
    }

    fn release(lines: &[(&str, &str)]) -> Release {
        Release {
            release_id: "R-20261206-000001".into(),
            day: day("2026-12-06"),
            policy: "informal".into(),
            lane: "informal-entry".into(),
            recipient_key: "k".into(),
            consignee: crate::model::Consignee {
                name: "A".into(),
                customer_id: None,
                address: crate::model::Address {
                    line1: "1".into(),
                    line2: None,
                    city: "C".into(),
                    state: "CA".into(),
                    postal_code: "92101".into(),
                    country: "US".into(),
                },
            },
            orders: vec!["O1".into()],
            lines: lines
                .iter()
                .map(|(sku, value)| ReleaseLine {
                    order_id: "O1".into(),
                    item: Arc::new(ItemFacts {
                        sku: (*sku).into(),
                        description: "goods".into(),
                        hts: "6109.10".into(),
                        origin: "MX".into(),
                    }),
                    qty: 1,
                    currency: Arc::from("USD"),
                    unit_price: usd(value),
                    value_usd: usd(value),
                })
                .collect(),
            value_usd: lines.iter().map(|(_, value)| usd(value)).sum(),
            fx: Vec::new(),
            released_at: chrono::DateTime::UNIX_EPOCH,
            filed: None,
            assessed: None,
        }
    }

    fn assessed(items: Vec<AssessedItem>) -> Assessed {
        Assessed::new(
            items,
            vec![Fee {
                name: "mpf".into(),
                usd: usd("2.69"),
                usmca_exempt: true,
            }],
        )
    }

    fn assessed_item(sku: &str, usmca: bool, known: bool, rates: &[(&str, &str)]) -> AssessedItem {
        AssessedItem {
            sku: sku.into(),
            usmca,
            known,
            rates: rates
                .iter()
                .map(|(program, rate)| ProgramRate {
                    program: (*program).into(),
                    rate_percent: usd(rate),
                })
                .collect(),
        }
    }

    #[test]
    fn a_release_owes_the_sum_of_its_lines_and_its_fees() {
        let wave = assessed(vec![
            assessed_item("A", false, true, &[("mfn", "16.5"), ("section-301", "7.5")]),
            assessed_item("B", true, true, &[]),
        ]);
        let estimate = release_duty(
            &release(&[("A", "10.10"), ("B", "50.00"), ("A", "3.33")]),
            &wave,
        );
        let lines: Vec<Option<Decimal>> = estimate.lines.iter().map(|l| l.duty_usd).collect();
        // 1.67 + 0.76; 0 (USMCA); 0.55 + 0.25
        assert_eq!(
            lines,
            [Some(usd("2.43")), Some(usd("0")), Some(usd("0.80"))]
        );
        assert_eq!(estimate.duty_usd, Some(usd("3.23")));
        assert_eq!(
            estimate.duty_usd.unwrap(),
            estimate
                .lines
                .iter()
                .flat_map(|l| &l.duties)
                .map(|d| d.usd)
                .sum::<Decimal>()
        );
        assert_eq!(
            estimate.fees_usd,
            usd("2.69"),
            "not every line claims USMCA"
        );
        let three = release(&[("A", "10.10"), ("B", "50.00"), ("A", "3.33")]);
        assert_owed_agrees(&three, wave.clone());
    }

    /// The totals written for every release agree with the estimate line by line.
    fn assert_owed_agrees(release: &Release, wave: Assessed) {
        let mut release = release.clone();
        release.assessed = Some(Arc::new(wave));
        let estimate = of_release(&release).unwrap();
        let owed = owed(&release).unwrap();
        assert_eq!(owed.duty_usd, estimate.duty_usd);
        assert_eq!(owed.fees_usd, estimate.fees_usd);
        let known: Decimal = estimate.lines.iter().filter_map(|line| line.duty_usd).sum();
        assert_eq!(owed.known_usd, known);
    }

    #[test]
    fn one_unknown_line_makes_the_release_duty_unknown() {
        let wave = assessed(vec![
            assessed_item("A", false, true, &[("mfn", "10")]),
            assessed_item("C", false, false, &[("section-301", "25")]),
        ]);
        let estimate = release_duty(&release(&[("A", "10.00"), ("C", "4.00")]), &wave);
        assert_eq!(estimate.lines[0].duty_usd, Some(usd("1.00")));
        assert_eq!(estimate.lines[1].duty_usd, None);
        assert_eq!(
            estimate.lines[1].duties[0].usd,
            usd("1.00"),
            "the programs known still show"
        );
        assert_eq!(estimate.duty_usd, None);
        let mut unknown = release(&[("A", "10.00"), ("C", "4.00")]);
        unknown.assessed = Some(Arc::new(wave));
        let owed = owed(&unknown).unwrap();
        assert_eq!(
            (owed.duty_usd, owed.known_usd, owed.unknown_lines),
            (None, usd("1.00"), 1)
        );
    }

    #[test]
    fn a_release_of_usmca_goods_only_is_spared_the_exempt_fees() {
        let wave = assessed(vec![
            assessed_item("B", true, true, &[]),
            assessed_item("D", true, true, &[]),
        ]);
        let estimate = release_duty(&release(&[("B", "1.00"), ("D", "2.00")]), &wave);
        assert!(estimate.fees.is_empty());
        assert_eq!(estimate.fees_usd, Decimal::ZERO);
        assert_eq!(estimate.duty_usd, Some(Decimal::ZERO));
    }

    #[test]
    fn fees_follow_their_lane_and_their_latest_day() {
        let rule = |name: &str, from: &str, lane: &str, usd_text: &str| FeeRule {
            name: name.into(),
            from: day(from),
            lane: lane.into(),
            per_release_usd: usd(usd_text),
            usmca_exempt: true,
        };
        let rules = vec![
            rule("mpf", "2024-10-01", "informal-entry", "2.62"),
            rule("mpf", "2025-10-01", "informal-entry", "2.69"),
            rule("handling", "2026-01-01", "informal-entry", "1.00"),
            rule("handling", "2026-06-01", "informal-entry", "0"),
            rule("manifest", "2020-01-01", "de-minimis", "0.50"),
        ];
        let names = |lane, on| -> Vec<(String, Decimal)> {
            fees_on(&rules, lane, day(on))
                .into_iter()
                .map(|fee| (fee.name, fee.usd))
                .collect()
        };
        assert_eq!(
            names("informal-entry", "2026-03-01"),
            [
                ("mpf".into(), usd("2.69")),
                ("handling".into(), usd("1.00"))
            ]
        );
        assert_eq!(
            names("informal-entry", "2025-09-30"),
            [("mpf".into(), usd("2.62"))]
        );
        assert_eq!(
            names("informal-entry", "2026-06-01"),
            [("mpf".into(), usd("2.69"))]
        );
        assert_eq!(
            names("de-minimis", "2026-06-01"),
            [("manifest".into(), usd("0.50"))]
        );
        assert!(names("informal-entry", "2020-01-01").is_empty());
    }

    #[test]
    fn in_force_keeps_the_latest_row_of_each_key_up_to_the_day() {
        let rows = vec![
            row("6109", "*", "section-122", "10", "2026-02-24"),
            row("6109", "*", "section-122", "0", "2026-07-25"),
            row("6109", "*", "mfn", "16.5", "2020-01-01"),
        ];
        let shown = |on| -> Vec<(String, Decimal)> {
            in_force(&rows, day(on))
                .into_iter()
                .map(|row| (row.program.clone(), row.rate_percent))
                .collect()
        };
        assert_eq!(
            shown("2026-03-01"),
            [
                ("mfn".into(), usd("16.5")),
                ("section-122".into(), usd("10"))
            ]
        );
        assert_eq!(
            shown("2026-08-01"),
            [
                ("mfn".into(), usd("16.5")),
                ("section-122".into(), usd("0"))
            ]
        );
    }
}
