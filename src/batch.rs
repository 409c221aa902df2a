//! The release batch: reads a snapshot from the store, plans the day, checks the plan, commits
//! it in one atomic and durable store commit, and writes the day's release log and manifest from
//! the same releases: under temporary names while the commit is made, put in place once it is
//! durable, so that the files never show a release the store does not hold.
//!
//! Days run in order: a day before today, or before the last day batched, is refused; the same
//! day again is a later wave, which only adds what the day's earlier releases still allow.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::config::Config;
use crate::model::{HoldReason, Order, Release, Verdict, WaitReason};
use crate::planner::{self, Claim, Places, Plan, PlanBroken, Rules, Snapshot};
use crate::releaselog::{self, LogError};
use crate::store::{Commit, OpenOrders, Ordinal, StateByte, States, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("no policy in the config is in force on {day}: add a [[policy]] whose from is on or before it")]
    NoPolicy { day: NaiveDate },
    #[error("{day} is before today ({today}) at the warehouse: a past day cannot be batched")]
    PastDay { day: NaiveDate, today: NaiveDate },
    #[error("{day} is before {last}, the last day batched: days run in order")]
    EarlierDay { day: NaiveDate, last: NaiveDate },
    #[error(transparent)]
    Broken(#[from] PlanBroken),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// A plan with what it was planned from, for printing.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: Plan,
    /// Where the plan's orders are among `orders`.
    pub places: Places,
    pub value_limit_usd: Decimal,
    pub releases_per_recipient_per_day: u32,
    /// Releases of the day committed by earlier waves.
    pub releases_before: u32,
    /// Those releases.
    pub earlier: Vec<Release>,
    /// The open orders the plan was made from, and their ordinals in the store.
    pub orders: Vec<Order>,
    pub ordinals: Vec<Ordinal>,
    /// The state of every order when the plan was made.
    pub states: States,
}

/// Counts of a committed or planned batch, for the summary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub day: NaiveDate,
    pub policy: String,
    pub lane: String,
    pub value_limit_usd: Decimal,
    /// Releases of the day committed by earlier waves.
    pub releases_before: u32,
    pub releases: usize,
    pub orders_released: usize,
    pub value_usd: Decimal,
    pub held: BTreeMap<String, usize>,
    pub waiting: BTreeMap<String, usize>,
    pub not_due: usize,
}

/// What `batch` for `day` would do now, without changing anything.
pub fn plan_day(
    store: &Store,
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
    let states = store.states()?;
    let OpenOrders { ordinals, orders } = store.open_orders(&states)?;
    let items = store.items()?;
    let on_hand: HashMap<String, u64> = store
        .stock()?
        .into_iter()
        .map(|(sku, level)| (sku, u64::try_from(level.on_hand()).unwrap_or(0)))
        .collect();
    let earlier = store.releases_of(day)?;
    let claims = claims_of(&earlier);
    let snapshot = Snapshot {
        orders: &orders,
        items: &items,
        on_hand: &on_hand,
        claims: &claims,
        releases_before: earlier.len() as u32,
    };
    let rules = Rules {
        cutoff: planner::cutoff_instant(day, config.schedule.cutoff, config.warehouse.timezone),
        rates: &config.rates,
        identity: config.identity,
        at,
    };
    let (plan, places) = planner::plan_placed(&snapshot, day, policy, &rules);
    planner::verify(&plan, &snapshot, policy)?;
    Ok(Planned {
        plan,
        places,
        value_limit_usd: policy.value_limit_usd,
        releases_per_recipient_per_day: policy.releases_per_recipient_per_day,
        releases_before: earlier.len() as u32,
        earlier,
        orders,
        ordinals,
        states,
    })
}

/// A committed batch: its summary, and whether the day's files were written. When they were
/// not, the store still marks them due and the next command writes them.
#[derive(Debug)]
pub struct Committed {
    pub summary: Summary,
    pub files: Result<(), LogError>,
}

/// Runs the batch for `day`: plans, commits durably, writes the day's files. An error means
/// nothing was committed. A scheduled batch gives its `trigger`, recorded in the same commit,
/// so that one trigger never runs twice.
pub fn run(
    store: &Store,
    config: &Config,
    day: NaiveDate,
    today: NaiveDate,
    at: DateTime<Utc>,
    trigger: Option<DateTime<Utc>>,
) -> Result<Committed, BatchError> {
    // Files left due by an interrupted earlier batch are written first.
    releaselog::write_due(store, &config.paths.logs)?;
    let planned = plan_day(store, config, day, today, at)?;
    let summary = summarise(&planned);
    let Planned {
        plan,
        places,
        earlier,
        orders,
        ordinals,
        mut states,
        ..
    } = planned;

    // Each examined order's new state byte, by its place among the open orders; then the orders
    // are freed, before the commit is encoded and the files are written.
    for place in &places.released {
        states.set(ordinals[*place], StateByte::Released);
    }
    for (place, (_, verdict)) in places.verdicts.iter().zip(&plan.verdicts) {
        states.set(ordinals[*place], StateByte::Open(Some(*verdict)));
    }
    drop(orders);

    // The day's files are written under temporary names while the commit is encoded and made
    // (one is mostly formatting, the other mostly the store and the disk), and put in place only once
    // the commit is durable.
    let parts: [&[Release]; 2] = [&earlier, &plan.releases];
    let (committed, prepared) = std::thread::scope(|scope| {
        let prepared = scope.spawn(|| releaselog::prepare_day(&config.paths.logs, day, &parts));
        let committed = commit_plan(store, &plan, &states, day, trigger);
        let prepared = prepared.join().expect("the release files thread panicked");
        (committed, prepared)
    });
    if let Err(error) = committed {
        if let Ok(prepared) = prepared {
            prepared.discard();
        }
        return Err(error);
    }
    crate::crashpoint::reached("batch-after-commit");
    for release in &plan.releases {
        tracing::info!(
            release_id = %release.release_id,
            day = %release.day,
            lane = %release.lane,
            orders = release.orders.len(),
            value_usd = %release.value_usd,
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
    Ok(Committed { summary, files })
}

/// Commits a plan in one durable store commit: its releases, the new state of every order it
/// examined, the stock it took, the day, and the files of the day marked as due.
fn commit_plan(
    store: &Store,
    plan: &Plan,
    states: &States,
    day: NaiveDate,
    trigger: Option<DateTime<Utc>>,
) -> Result<(), BatchError> {
    let mut commit = Commit::new();
    commit.put_releases(&plan.releases);
    commit.put_states(states);
    for (sku, taken) in &plan.stock_taken {
        let mut level = store.stock_level(sku)?;
        level.released += taken;
        commit.put_stock(sku, &level);
    }
    let last = store.last_day()?;
    if last.is_none_or(|last| last < day) {
        commit.set_last_day(day);
    }
    commit.mark_logs_due(day);
    if let Some(trigger) = trigger {
        commit.set_last_trigger(trigger);
    }
    crate::crashpoint::reached("batch-before-commit");
    store.commit(commit)?;
    Ok(())
}

/// Per recipient, what the day's committed releases already gave. This is the seam where the
/// per-(recipient, day) claims would move to a store shared by several warehouses.
pub fn claims_of(releases: &[Release]) -> HashMap<String, Claim> {
    let mut claims: HashMap<String, Claim> = HashMap::new();
    for release in releases {
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
        not_due: plan.not_due,
    }
}
