//! The store audit: checks every invariant of RELIABILITY.md ("The promises") against what the store holds,
//! and the day files against the store. `check-store` runs it (after the command line has
//! written any files an interrupted batch left due); the durability tests run it after every
//! crash.
//!
//! Reads only; reports every violation it finds rather than stopping at the first.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::model::{OrderState, Void};
use crate::money::Usd;
use crate::policy::Timeline;
use crate::referrals;
use crate::releaselog;
use crate::store::{Store, StoreError};
use crate::words::counted;

/// What the audit looked at, and every violation it found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    pub orders: usize,
    pub releases: usize,
    pub days: usize,
    pub skus: usize,
    pub violations: Vec<String>,
}

impl fmt::Display for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counted = |count: usize, noun| counted(count as u64, noun);
        write!(
            f,
            "{}, {} over {}, {}: ",
            counted(self.orders, "order"),
            counted(self.releases, "release"),
            counted(self.days, "day"),
            counted(self.skus, "SKU"),
        )?;
        match self.violations.len() {
            0 => write!(f, "every invariant holds")?,
            count => write!(f, "{}", counted(count, "violation"))?,
        }
        for violation in &self.violations {
            write!(f, "\n  {violation}")?;
        }
        Ok(())
    }
}

/// Audits the store, and the release files of `output` (unless `None`: a store just restored
/// has none yet), against the rules of `timeline`.
pub fn audit(
    store: &Store,
    timeline: &Timeline,
    output: Option<releaselog::Output>,
) -> Result<Audit, StoreError> {
    let mut violations = Vec::new();
    let mut violation = |text: String| violations.push(text);

    // Every accepted order is in exactly one state; a released one names its release.
    let states = store.order_states()?;
    let mut released_in: HashMap<String, String> = HashMap::new();
    let mut referred: HashMap<String, OrderState> = HashMap::new();
    for (order, state) in &states {
        match state {
            OrderState::Released { release_id, .. } => {
                released_in.insert(order.order_id.to_string(), release_id.clone());
            }
            OrderState::Referred { .. } => {
                referred.insert(order.order_id.to_string(), state.clone());
            }
            _ => {}
        }
    }
    let orders = states.len();

    // No order in two releases; each release's orders are released in it; values add up;
    // per recipient and day, within the policy the release was made under.
    let mut in_release: HashMap<String, String> = HashMap::new();
    let mut per_recipient_day: BTreeMap<(NaiveDate, String), (u32, Decimal, String)> =
        BTreeMap::new();
    let mut released_units: BTreeMap<String, u64> = BTreeMap::new();
    let mut release_ids: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
    let mut releases = 0;
    let voids = store.voids()?;
    let mut voided: HashMap<String, bool> = voids
        .iter()
        .map(|void| (void.release_id.to_string(), false))
        .collect();
    let all_releases = store.releases()?;
    for release in &all_releases {
        releases += 1;
        release_ids
            .entry(release.day)
            .or_default()
            .push(release.release_id.to_string());
        if let Some(seen) = voided.get_mut(release.release_id.as_str()) {
            // A void release gave nothing: none of its orders is released in it.
            *seen = true;
            for order_id in &release.orders {
                if released_in.get(order_id.as_str()) == Some(&release.release_id.to_string()) {
                    violation(format!(
                        "order {order_id} is marked released in {}, which is void",
                        release.release_id
                    ));
                }
            }
            continue;
        }
        for order_id in &release.orders {
            if let Some(first) =
                in_release.insert(order_id.to_string(), release.release_id.to_string())
            {
                violation(format!(
                    "order {order_id} is in releases {first} and {}",
                    release.release_id
                ));
            }
            match released_in.get(order_id.as_str()) {
                Some(id) if *id == release.release_id => {}
                Some(id) => violation(format!(
                    "order {order_id} is in release {} but marked released in {id}",
                    release.release_id
                )),
                None => violation(format!(
                    "order {order_id} is in release {} but not marked released",
                    release.release_id
                )),
            }
        }
        let lines: Decimal = release.lines.iter().map(|line| line.value_usd).sum();
        if lines != release.value_usd {
            violation(format!(
                "release {} is worth {} USD but its lines add up to {} USD",
                release.release_id,
                Usd(release.value_usd),
                Usd(lines)
            ));
        }
        for line in &release.lines {
            *released_units.entry(line.item.sku.clone()).or_default() += u64::from(line.qty);
        }
        let entry = per_recipient_day
            .entry((release.day, release.recipient_key.clone()))
            .or_insert((0, Decimal::ZERO, release.policy.to_string()));
        entry.0 += 1;
        entry.1 += release.value_usd;
    }
    for (release_id, seen) in &voided {
        if !*seen {
            violation(format!("release {release_id} is void but not stored"));
        }
    }
    for (order_id, release_id) in &released_in {
        if !in_release.contains_key(order_id) {
            violation(format!(
                "order {order_id} is marked released in {release_id}, which does not hold it"
            ));
        }
    }
    for ((day, recipient), (count, value, policy_name)) in &per_recipient_day {
        let Some(policy) = timeline
            .policies()
            .iter()
            .find(|policy| policy.name == *policy_name)
        else {
            // The config no longer has the policy: nothing to check the day against.
            continue;
        };
        if *count > policy.releases_per_recipient_per_day {
            violation(format!(
                "{day}: {} to {recipient}, more than {policy_name} allows",
                counted((*count).into(), "release")
            ));
        }
        if *value > policy.value_limit_usd {
            violation(format!(
                "{day}: {} USD to {recipient}, over the {} USD of {policy_name}",
                Usd(*value),
                Usd(policy.value_limit_usd)
            ));
        }
    }

    // Each referred order has one referral, of its day and hold reason, and each referral is
    // of a referred order.
    let all_referrals = store.referrals()?;
    let mut referred_units: BTreeMap<String, u64> = BTreeMap::new();
    for referral in &all_referrals {
        let expected = OrderState::Referred {
            reason: referral.reason,
            day: referral.day,
        };
        match referred.remove(referral.order_id.as_str()) {
            Some(state) if state == expected => {}
            Some(_) => violation(format!(
                "order {} is marked referred for another day or reason than its referral's ({}, {})",
                referral.order_id,
                referral.day,
                referral.reason.word()
            )),
            None => violation(format!(
                "order {} has a referral of {} but is not marked referred (or has two)",
                referral.order_id, referral.day
            )),
        }
        for line in &referral.lines {
            *referred_units.entry(line.sku.to_string()).or_default() += u64::from(line.qty);
        }
    }
    for order_id in referred.keys() {
        violation(format!(
            "order {order_id} is marked referred but has no referral"
        ));
    }

    // Stock never below zero; what the stock says was released is what the standing releases
    // and the referrals hold.
    let stock = store.stock()?;
    for (sku, level) in &stock {
        if level.on_hand() < 0 {
            violation(format!("stock of {sku} is {}", level.on_hand()));
        }
        let in_releases = released_units.get(sku).copied().unwrap_or(0);
        let in_referrals = referred_units.get(sku).copied().unwrap_or(0);
        if level.released != in_releases + in_referrals {
            violation(format!(
                "stock of {sku} counts {} released, the releases hold {in_releases} and the referrals {in_referrals}",
                level.released
            ));
        }
    }
    for sku in referred_units.keys() {
        if !stock.contains_key(sku) {
            violation(format!("referrals hold {sku}, which has no stock record"));
        }
    }
    for sku in released_units.keys() {
        if !stock.contains_key(sku) {
            violation(format!("releases hold {sku}, which has no stock record"));
        }
    }

    // The day files are what the store gives, byte for byte: the log every release of the
    // day, the manifest and the summary those not void, the voids every void.
    let due = store.logs_due()?;
    let days = release_ids.len();
    if let Some(output) = output {
        for releases in all_releases.chunk_by(|a, b| a.day == b.day) {
            let day = &releases[0].day;
            if due.contains(day) {
                violation(format!(
                    "{day}: the release files are not written yet (the store marks them due)"
                ));
                continue;
            }
            let day_voids: Vec<Void> = voids
                .iter()
                .filter(|void| void.day == *day)
                .cloned()
                .collect();
            let found = releaselog::check_day(output, *day, releases, &day_voids);
            day_file_violations(*day, "release", found, &mut violation);
        }
        // The referral files likewise: every referral of the day.
        let referrals_due = store.referrals_due()?;
        for day_referrals in all_referrals.chunk_by(|a, b| a.day == b.day) {
            let day = day_referrals[0].day;
            if referrals_due.contains(&day) {
                violation(format!(
                    "{day}: the referral files are not written yet (the store marks them due)"
                ));
                continue;
            }
            let found = referrals::check_day(output, day, day_referrals);
            day_file_violations(day, "referral", found, &mut violation);
        }
    }

    Ok(Audit {
        orders,
        releases,
        days,
        skus: stock.len(),
        violations,
    })
}

/// The violations of a day's files (`kind`: release or referral) found missing or differing
/// from the store, each with the command that writes them again.
fn day_file_violations(
    day: NaiveDate,
    kind: &str,
    found: std::io::Result<Vec<(std::path::PathBuf, releaselog::FileCheck)>>,
    violation: &mut impl FnMut(String),
) {
    let found = match found {
        Ok(found) => found,
        Err(error) => {
            return violation(format!("{day}: the {kind} files cannot be read: {error}"));
        }
    };
    for (path, check) in found {
        let what = match check {
            releaselog::FileCheck::Missing => "is missing",
            releaselog::FileCheck::Differs => "differs from the store",
        };
        violation(format!(
            "{day}: {} {what}: `border-release releases write --day {day}` writes the day's files again",
            path.display()
        ));
    }
}
