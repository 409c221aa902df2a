//! The customs rule as dated data: which policy is in force on a release day, and what it excludes.
//!
//! Pure: no limit, country or HTS code is written here; all of them come from the config.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::model::{Exclusion, HoldReason, Item, ItemFlag, Missing};

/// One dated entry of the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Shown in every release record and log line.
    pub name: String,
    /// First release day it applies to.
    pub from: NaiveDate,
    /// What a release under it is: the word of one of [`Lane::ALL`].
    pub lane: String,
    /// Most one recipient may receive in aggregate on one day, inclusive.
    pub value_limit_usd: Decimal,
    pub releases_per_recipient_per_day: u32,
    /// ISO 3166 alpha-2, upper case.
    pub excluded_origins: Vec<String>,
    /// HTS prefixes, digits only (dots are dropped when the config is read).
    pub excluded_hts_prefixes: Vec<String>,
    pub excluded_flags: Vec<ItemFlag>,
    /// What a filing under it needs.
    pub filing: Filing,
}

/// What a filing under a policy needs of each item, and the entry it is filed as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filing {
    /// The entry type its releases are filed as: `86`, `11`, `01`.
    pub entry_type: String,
    /// The fewest digits an item's HTS code may have (4 to 10).
    pub min_hts_digits: u8,
    /// Whether every item needs a manufacturer identification code.
    pub require_mid: bool,
    /// Descriptions refused as they stand, as [`description_key`] gives them.
    pub vague_descriptions: Vec<String>,
}

impl Filing {
    /// What a policy of the lane needs when its config says nothing more: its entry type (`86`
    /// for de minimis, `11` for an informal entry), 4 HTS digits, no MID, no description
    /// refused.
    pub fn of_lane(lane: Lane) -> Filing {
        Filing {
            entry_type: lane.entry_type().to_owned(),
            min_hts_digits: 4,
            require_mid: false,
            vague_descriptions: Vec::new(),
        }
    }

    /// What the item lacks for a filing, in the order HTS digits, MID, description; empty when
    /// nothing.
    pub fn missing(&self, item: &Item) -> Vec<Missing> {
        let mut missing = Vec::new();
        let digits = hts_digits(&item.hts).len();
        if digits < usize::from(self.min_hts_digits) {
            missing.push(Missing::HtsDigits {
                digits: digits as u8,
                required: self.min_hts_digits,
            });
        }
        if self.require_mid && item.mid.is_none() {
            missing.push(Missing::Mid);
        }
        let description = description_key(&item.description);
        if self.vague_descriptions.contains(&description) {
            missing.push(Missing::Description);
        }
        missing
    }
}

/// A description as vague descriptions are compared: lower case, punctuation dropped, runs of
/// white space one space, no space around (`" Gift! "` gives `gift`).
pub fn description_key(text: &str) -> String {
    let kept: String = text
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .flat_map(char::to_lowercase)
        .collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The kinds of entry a release can be made under: a policy names one, and every release
/// under it carries its word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Section 321 de minimis: duty-free, one a day per person, up to the policy's limit.
    DeMinimis,
    /// An informal entry (Type 11), up to the policy's limit.
    InformalEntry,
}

impl Lane {
    pub const ALL: [Lane; 2] = [Lane::DeMinimis, Lane::InformalEntry];

    pub fn word(self) -> &'static str {
        match self {
            Lane::DeMinimis => "de-minimis",
            Lane::InformalEntry => "informal-entry",
        }
    }

    pub fn from_word(word: &str) -> Option<Lane> {
        Lane::ALL.into_iter().find(|lane| lane.word() == word)
    }

    /// The entry type a release in the lane is filed as unless its policy says otherwise: 86
    /// (Section 321 de minimis) or 11 (informal).
    pub fn entry_type(self) -> &'static str {
        match self {
            Lane::DeMinimis => "86",
            Lane::InformalEntry => "11",
        }
    }
}

/// Every policy of the config, ordered by `from`, no two with the same `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    policies: Vec<Policy>,
}

impl Timeline {
    /// Orders the policies by `from`. The config validation refuses two with the same `from`.
    pub fn new(mut policies: Vec<Policy>) -> Timeline {
        policies.sort_by_key(|policy| policy.from);
        Timeline { policies }
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The policy in force on `day`: the one with the latest `from` on or before it.
    pub fn in_force(&self, day: NaiveDate) -> Option<&Policy> {
        self.policies.iter().rev().find(|policy| policy.from <= day)
    }
}

impl Policy {
    /// Why this item may not use the policy's lane, if it may not.
    /// Checked in a fixed order: origin, then HTS, then flags.
    pub fn excludes(&self, item: &Item) -> Option<HoldReason> {
        self.exclusion(item).map(|rule| rule.reason())
    }

    /// The rule that keeps this item out of the policy's lane, if one does: the first in the
    /// order origin, HTS, flags (and the first matching entry of each).
    pub fn exclusion(&self, item: &Item) -> Option<Exclusion> {
        if let Some(origin) = self
            .excluded_origins
            .iter()
            .find(|origin| origin.eq_ignore_ascii_case(&item.origin))
        {
            return Some(Exclusion::Origin(origin.clone()));
        }
        let hts = hts_digits(&item.hts);
        if let Some(prefix) = self
            .excluded_hts_prefixes
            .iter()
            .find(|prefix| hts.starts_with(prefix.as_str()))
        {
            return Some(Exclusion::HtsPrefix(prefix.clone()));
        }
        if let Some(flag) = item
            .flags
            .iter()
            .find(|flag| self.excluded_flags.contains(flag))
        {
            return Some(Exclusion::Flag(*flag));
        }
        None
    }
}

/// The digits of an HTS code (`6109.10.0012` gives `6109100012`), for prefix matching.
pub fn hts_digits(hts: &str) -> String {
    hts.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::from_str(text).unwrap()
    }

    fn policy(name: &str, from: &str) -> Policy {
        Policy {
            name: name.into(),
            from: day(from),
            lane: "de-minimis".into(),
            value_limit_usd: Decimal::from(800),
            releases_per_recipient_per_day: 1,
            excluded_origins: vec!["CN".into(), "HK".into()],
            excluded_hts_prefixes: vec!["2203".into(), "24".into(), "3303".into()],
            excluded_flags: vec![ItemFlag::Adcvd],
            filing: Filing::of_lane(Lane::DeMinimis),
        }
    }

    fn item(hts: &str, origin: &str, flags: Vec<ItemFlag>) -> Item {
        Item {
            sku: "X".into(),
            description: "thing".into(),
            hts: hts.into(),
            origin: origin.into(),
            flags,
            mid: None,
            usmca: false,
        }
    }

    #[test]
    fn a_lane_files_as_its_entry_type_and_an_item_lacks_what_the_filing_needs() {
        assert_eq!(Filing::of_lane(Lane::DeMinimis).entry_type, "86");
        assert_eq!(Filing::of_lane(Lane::InformalEntry).entry_type, "11");
        let filing = Filing {
            entry_type: "11".into(),
            min_hts_digits: 10,
            require_mid: true,
            vague_descriptions: vec![description_key("General  Merchandise.")],
        };
        let mut thing = item("6109.10", "MX", vec![]);
        thing.description = " general merchandise ".into();
        assert_eq!(
            filing.missing(&thing),
            vec![
                Missing::HtsDigits {
                    digits: 6,
                    required: 10
                },
                Missing::Mid,
                Missing::Description
            ]
        );
        thing.hts = "6109.10.0012".into();
        thing.mid = Some("MXCONTEX1450TIJ".into());
        thing.description = "Cotton knit T-shirt".into();
        assert!(filing.missing(&thing).is_empty());
    }

    #[test]
    fn the_latest_policy_on_or_before_the_day_is_in_force() {
        let timeline = Timeline::new(vec![
            policy("suspended", "2025-08-29"),
            policy("section-321", "2016-03-10"),
            policy("no-china", "2025-05-02"),
        ]);
        assert_eq!(timeline.in_force(day("2016-03-09")), None);
        assert_eq!(
            timeline.in_force(day("2016-03-10")).unwrap().name,
            "section-321"
        );
        assert_eq!(
            timeline.in_force(day("2025-05-01")).unwrap().name,
            "section-321"
        );
        assert_eq!(
            timeline.in_force(day("2025-05-02")).unwrap().name,
            "no-china"
        );
        assert_eq!(
            timeline.in_force(day("2025-08-28")).unwrap().name,
            "no-china"
        );
        assert_eq!(
            timeline.in_force(day("2025-08-29")).unwrap().name,
            "suspended"
        );
        assert_eq!(
            timeline.in_force(day("2030-01-01")).unwrap().name,
            "suspended"
        );
    }

    #[test]
    fn exclusions_are_checked_origin_then_hts_then_flag() {
        let p = policy("p", "2020-01-01");
        assert_eq!(p.excludes(&item("6109.10.0012", "MX", vec![])), None);
        assert_eq!(
            p.excludes(&item("6109.10.0012", "cn", vec![])),
            Some(HoldReason::ExcludedOrigin)
        );
        assert_eq!(
            p.excludes(&item("2203.00.0030", "CN", vec![])),
            Some(HoldReason::ExcludedOrigin)
        );
        assert_eq!(
            p.excludes(&item("2203.00.0030", "MX", vec![])),
            Some(HoldReason::ExcludedGoods)
        );
        assert_eq!(
            p.excludes(&item("2402.20", "MX", vec![ItemFlag::Adcvd])),
            Some(HoldReason::ExcludedGoods)
        );
        assert_eq!(
            p.excludes(&item("3303.00.3000", "FR", vec![])),
            Some(HoldReason::ExcludedGoods)
        );
        assert_eq!(
            p.excludes(&item("7323.93", "MX", vec![ItemFlag::Adcvd])),
            Some(HoldReason::ExcludedFlag)
        );
        assert_eq!(
            p.excludes(&item("7323.93", "MX", vec![ItemFlag::Pga])),
            None
        );
    }

    #[test]
    fn hts_prefixes_match_on_digits_only() {
        assert_eq!(hts_digits("6109.10.0012"), "6109100012");
        let mut p = policy("p", "2020-01-01");
        p.excluded_hts_prefixes = vec!["220820".into()];
        assert_eq!(
            p.excludes(&item("2208.20.10", "MX", vec![])),
            Some(HoldReason::ExcludedGoods)
        );
        assert_eq!(p.excludes(&item("2208.30.10", "MX", vec![])), None);
    }
}
