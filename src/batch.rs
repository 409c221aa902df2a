//! The release batch: reads a snapshot from the store, plans the day, checks the plan, commits
//! it in one atomic and durable store commit, and writes the day's release log and manifest from
//! the same releases: under temporary names while the commit is made, put in place once it is
//! durable, so that the files never show a release the store does not hold.
//!
//! Days run in order: a day before today, or before the last day batched, is refused; the same
//! day again is a later wave, which only adds what the day's earlier releases still allow.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::config::Config;
use crate::duties;
use crate::model::{
    Detail, Filed, FiledItem, HoldReason, Importer, Release, Shipper, Text, Verdict, Void,
    WaitReason,
};
use crate::planner::{self, Claim, Places, Plan, PlanBroken, Rules, Snapshot};
use crate::releaselog::{self, LogError};
use crate::store::{DaySnapshot, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("no policy in the config is in force on {day}: add a [[policy]] whose from is on or before it")]
    NoPolicy { day: NaiveDate },
    #[error("{day} is before today ({today}) at the warehouse: a past day cannot be batched")]
    PastDay { day: NaiveDate, today: NaiveDate },
    #[error("{day} is before {last}, the last day batched: days run in order")]
    EarlierDay { day: NaiveDate, last: NaiveDate },
    #[error("{day} is more than {} after today ({today}) at the warehouse: schedule.max_days_ahead is {most}; batch that day when it comes, or raise schedule.max_days_ahead", crate::words::counted(u64::from(*.most), "day"))]
    TooFarAhead {
        day: NaiveDate,
        today: NaiveDate,
        most: u32,
    },
    #[error(transparent)]
    Broken(#[from] PlanBroken),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Log(#[from] LogError),
}

impl BatchError {
    /// Whether the batch was refused for what was asked (a day out of order, no policy), not
    /// failed.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            BatchError::NoPolicy { .. }
                | BatchError::PastDay { .. }
                | BatchError::EarlierDay { .. }
                | BatchError::TooFarAhead { .. }
        )
    }
}

/// A plan with what it was planned from, for printing.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    /// Where the plan's orders are among `orders`.
    pub places: Places,
    pub value_limit_usd: Decimal,
    pub releases_per_recipient_per_day: u32,
    /// Releases of the day committed by earlier waves.
    pub releases_before: u32,
    /// What the plan was made from: the open orders, and the day's earlier releases.
    pub snapshot: DaySnapshot,
    /// Not a plan: what a past day released (`view_day`).
    pub past: bool,
}

/// A candidate a plan does not ship, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdicted {
    pub order_id: Text,
    pub placed_at: DateTime<Utc>,
    pub verdict: Verdict,
    pub detail: Detail,
}

impl Planned {
    /// The candidates the plan does not ship, in order of service, with why.
    pub fn verdicted(&self) -> impl Iterator<Item = Verdicted> + '_ {
        let plan = &self.plan;
        let places = self.places.verdicts.iter();
        places.zip(&plan.verdicts).zip(&plan.details).map(
            |((place, (order_id, verdict)), detail)| Verdicted {
                order_id: order_id.clone(),
                placed_at: self.snapshot.orders[*place].placed_at,
                verdict: *verdict,
                detail: detail.clone(),
            },
        )
    }

    /// The first `most` held and the first `most` waiting candidates, in order of service.
    pub fn first_verdicted(&self, most: usize) -> Vec<Verdicted> {
        let (mut held, mut waiting) = (0, 0);
        self.verdicted()
            .filter(|verdicted| {
                let count = match verdicted.verdict {
                    Verdict::Held(_) => &mut held,
                    Verdict::Waiting(_) => &mut waiting,
                };
                *count += 1;
                *count <= most
            })
            .collect()
    }
}

/// How many held and how many waiting orders a batch's answer names (`batch` prints them with
/// why; `orders list` lists them all).
pub const VERDICTS_SHOWN: usize = 100;

/// Counts of a committed or planned batch, for the summary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub day: NaiveDate,
    pub policy: String,
    pub lane: String,
    #[serde(with = "crate::money::usd_text")]
    pub value_limit_usd: Decimal,
    /// Releases of the day committed by earlier waves.
    pub releases_before: u32,
    pub releases: usize,
    pub orders_released: usize,
    #[serde(with = "crate::money::usd_text")]
    pub value_usd: Decimal,
    pub held: BTreeMap<String, usize>,
    pub waiting: BTreeMap<String, usize>,
    pub not_due: usize,
    /// What a past day released, not a plan (`plan --day` for a day batched and gone).
    #[serde(default)]
    pub past: bool,
    /// The estimate of the releases: the duties of the lines whose duty is known, the fees,
    /// and how many lines have an unknown duty.
    #[serde(default, with = "crate::money::usd_text")]
    pub duty_usd: Decimal,
    #[serde(default, with = "crate::money::usd_text")]
    pub fees_usd: Decimal,
    #[serde(default)]
    pub unknown_duty_lines: u64,
}

/// What `plan` shows for `day`: what a batch would do now, or, for a day before today that was
/// batched, what it released. Changes nothing.
pub fn view_day(
    store: &mut Store,
    config: &Config,
    day: NaiveDate,
    today: NaiveDate,
    at: DateTime<Utc>,
) -> Result<Planned, BatchError> {
    match plan_day(store, config, day, today, at) {
        Err(BatchError::PastDay { .. }) => {}
        planned => return planned,
    }
    let snapshot = store.released_day(day)?;
    if snapshot.earlier.is_empty() {
        // Never batched, or nothing released: there is nothing to show, and no batch may run.
        return plan_day(store, config, day, today, at);
    }
    let policy = config
        .timeline
        .in_force(day)
        .ok_or(BatchError::NoPolicy { day })?;
    let voided: HashSet<&str> = snapshot
        .voids
        .iter()
        .map(|void| void.release_id.as_str())
        .collect();
    let releases: Vec<Release> = snapshot
        .earlier
        .iter()
        .filter(|release| !voided.contains(release.release_id.as_str()))
        .cloned()
        .collect();
    if releases.is_empty() {
        // Every release of the day is void: the day counts as never batched.
        return plan_day(store, config, day, today, at);
    }
    let mut stock_taken = BTreeMap::new();
    for line in releases.iter().flat_map(|release| &release.lines) {
        *stock_taken.entry(line.item.sku.clone()).or_insert(0) += u64::from(line.qty);
    }
    let first = releases.first().expect("not empty");
    let plan = Plan {
        day,
        cutoff: planner::cutoff_instant(day, config.schedule.cutoff, config.warehouse.timezone),
        policy: first.policy.to_string(),
        lane: first.lane.to_string(),
        releases,
        verdicts: Vec::new(),
        details: Vec::new(),
        not_due: Vec::new(),
        stock_taken,
    };
    Ok(Planned {
        plan,
        places: Places::default(),
        value_limit_usd: policy.value_limit_usd,
        releases_per_recipient_per_day: policy.releases_per_recipient_per_day,
        releases_before: 0,
        snapshot,
        past: true,
    })
}

/// What `batch` for `day` would do now, without changing anything.
pub fn plan_day(
    store: &mut Store,
    config: &Config,
    day: NaiveDate,
    today: NaiveDate,
    at: DateTime<Utc>,
) -> Result<Planned, BatchError> {
    if day < today {
        return Err(BatchError::PastDay { day, today });
    }
    if let Some(last) = store.last_day()? {
        if day < last {
            return Err(BatchError::EarlierDay { day, last });
        }
    }
    let policy = config
        .timeline
        .in_force(day)
        .ok_or(BatchError::NoPolicy { day })?;
    let snapshot = store.snapshot(day)?;
    let claims = claims_of(&snapshot.earlier, &snapshot.voids);
    let releases_before = snapshot.earlier.len() as u32;
    let view = Snapshot {
        orders: &snapshot.orders,
        items: &snapshot.items,
        on_hand: &snapshot.on_hand,
        claims: &claims,
        releases_before,
    };
    let rules = Rules {
        cutoff: planner::cutoff_instant(day, config.schedule.cutoff, config.warehouse.timezone),
        rates: &config.rates,
        identity: config.identity,
        at,
    };
    let (mut plan, places) = planner::plan_placed(&view, day, policy, &rules);
    planner::verify(&plan, &view, policy)?;
    if !plan.releases.is_empty() {
        let skus = skus_of(&plan.releases);
        let filed = Arc::new(filed(&skus, policy, config, &snapshot.items));
        let rows = store.duty_rates()?;
        let assessed = Arc::new(duties::assess(
            day,
            &plan.lane,
            &skus,
            &snapshot.items,
            &rows,
            &config.fees,
        ));
        for release in &mut plan.releases {
            release.filed = Some(filed.clone());
            release.assessed = Some(assessed.clone());
        }
    }
    Ok(Planned {
        plan,
        places,
        value_limit_usd: policy.value_limit_usd,
        releases_per_recipient_per_day: policy.releases_per_recipient_per_day,
        releases_before,
        snapshot,
        past: false,
    })
}

/// A committed batch: its summary, and whether the day's files were written. When they were
/// not, the store still marks them due and the next command writes them.
#[derive(Debug)]
pub struct Committed {
    pub summary: Summary,
    /// The first [`VERDICTS_SHOWN`] held and waiting orders, with why.
    pub verdicted: Vec<Verdicted>,
    pub files: Result<(), LogError>,
}

/// Runs the batch for `day`: plans, commits durably, writes the day's files. An error means
/// nothing was committed. A scheduled batch gives its `trigger`, recorded in the same commit,
/// so that one trigger never runs twice.
pub fn run(
    store: &mut Store,
    config: &Config,
    day: NaiveDate,
    today: NaiveDate,
    at: DateTime<Utc>,
    trigger: Option<DateTime<Utc>>,
) -> Result<Committed, BatchError> {
    // Files left due by an interrupted earlier batch are written first.
    let output = releaselog::Output::of(config);
    releaselog::write_due(store, output)?;
    if day > today + chrono::Days::new(u64::from(config.schedule.max_days_ahead)) {
        return Err(BatchError::TooFarAhead {
            day,
            today,
            most: config.schedule.max_days_ahead,
        });
    }
    let planned = plan_day(store, config, day, today, at)?;
    let summary = summarise(&planned);
    let verdicted = planned.first_verdicted(VERDICTS_SHOWN);
    let Planned {
        plan,
        places,
        mut snapshot,
        ..
    } = planned;
    // The open orders are freed before the commit is encoded and the files are written.
    drop(std::mem::take(&mut snapshot.orders));
    let earlier = std::mem::take(&mut snapshot.earlier);
    let voids = std::mem::take(&mut snapshot.voids);

    // The day's files are written under temporary names while the commit is encoded and made
    // (one is mostly formatting, the other mostly the store and the disk), and put in place only
    // once the commit is durable.
    let parts: [&[Release]; 2] = [&earlier, &plan.releases];
    let (committed, prepared) = std::thread::scope(|scope| {
        let prepared = scope.spawn(|| releaselog::prepare_day(output, day, &parts, &voids));
        crate::crashpoint::reached("batch-before-commit");
        let committed = store.apply_plan(snapshot, &plan, &places, trigger);
        let prepared = prepared.join().expect("the release files thread panicked");
        (committed, prepared)
    });
    if let Err(error) = committed {
        if let Ok(prepared) = prepared {
            prepared.discard();
        }
        return Err(error.into());
    }
    crate::crashpoint::reached("batch-after-commit");
    for release in &plan.releases {
        tracing::info!(
            release_id = %release.release_id,
            day = %release.day,
            lane = %release.lane,
            orders = release.orders.len(),
            value_usd = %crate::money::Usd(release.value_usd),
            "release committed"
        );
        tracing::debug!(
            release_id = %release.release_id,
            consignee = %release.consignee.name,
            recipient_key = %release.recipient_key,
            "release consignee"
        );
    }

    let files = prepared.and_then(|prepared| releaselog::put_committed_in_place(store, prepared));
    Ok(Committed {
        summary,
        verdicted,
        files,
    })
}

/// The SKUs some releases hold, each once, in order.
fn skus_of(releases: &[Release]) -> Vec<&str> {
    let skus: HashSet<&str> = releases
        .iter()
        .flat_map(|release| &release.lines)
        .map(|line| line.item.sku.as_str())
        .collect();
    let mut skus: Vec<&str> = skus.into_iter().collect();
    skus.sort_unstable();
    skus
}

/// What a wave's releases are filed with: the policy's entry type, the parties of `[entry]`,
/// and the MID and USMCA claim of each item `skus` names that has either.
fn filed(
    skus: &[&str],
    policy: &crate::policy::Policy,
    config: &Config,
    items: &HashMap<String, crate::model::Item>,
) -> Filed {
    let entry = &config.entry;
    let importer = entry
        .importer_name
        .clone()
        .zip(entry.importer_number.clone())
        .map(|(name, number)| Importer { name, number });
    let shipper = entry
        .shipper_name
        .clone()
        .zip(entry.shipper_address.clone())
        .map(|(name, address)| Shipper { name, address });
    let items = skus
        .iter()
        .filter_map(|sku| items.get(*sku))
        .filter(|item| item.mid.is_some() || item.usmca)
        .map(|item| FiledItem {
            sku: item.sku.clone(),
            mid: item.mid.clone(),
            usmca: item.usmca,
        })
        .collect();
    Filed::new(policy.filing.entry_type.clone(), importer, shipper, items)
}

/// Per recipient, what the day's committed releases already gave; a void release gives
/// nothing. This is the seam where the per-(recipient, day) claims would move to a store shared
/// by several warehouses.
pub fn claims_of(releases: &[Release], voids: &[Void]) -> HashMap<String, Claim> {
    let voided: HashSet<&str> = voids.iter().map(|void| void.release_id.as_str()).collect();
    let mut claims: HashMap<String, Claim> = HashMap::new();
    for release in releases {
        if voided.contains(release.release_id.as_str()) {
            continue;
        }
        let claim = claims.entry(release.recipient_key.clone()).or_default();
        claim.releases += 1;
        claim.value_usd += release.value_usd;
    }
    claims
}

pub fn summarise(planned: &Planned) -> Summary {
    let plan = &planned.plan;
    let mut held = BTreeMap::new();
    let mut waiting = BTreeMap::new();
    for (_, verdict) in &plan.verdicts {
        match verdict {
            Verdict::Held(reason) => {
                *held
                    .entry(HoldReason::word(*reason).to_owned())
                    .or_insert(0) += 1
            }
            Verdict::Waiting(reason) => {
                *waiting
                    .entry(WaitReason::word(*reason).to_owned())
                    .or_insert(0) += 1
            }
        }
    }
    let estimate = duties::Totals::of(&plan.releases);
    Summary {
        day: plan.day,
        policy: plan.policy.clone(),
        lane: plan.lane.clone(),
        value_limit_usd: planned.value_limit_usd,
        releases_before: planned.releases_before,
        releases: plan.releases.len(),
        orders_released: plan
            .releases
            .iter()
            .map(|release| release.orders.len())
            .sum(),
        value_usd: plan.releases.iter().map(|release| release.value_usd).sum(),
        held,
        waiting,
        not_due: plan.not_due.len(),
        past: planned.past,
        duty_usd: estimate.duty_usd,
        fees_usd: estimate.fees_usd,
        unknown_duty_lines: estimate.unknown_lines,
    }
}
