//! The use cases: every operation the command line, the HTTP API and the spool offer, in the
//! warehouse's terms, over an opened store. The entry points (`cli`, `daemon::http`,
//! `daemon::spool`, and the daemon's scheduler) call these and nothing below them (intake, the
//! batch, the release logs, the audit); none of them calls another (tidy test).
//!
//! Each operation reads or commits through the store's own terms and answers with the shapes of
//! `wire`, so that a command run here and the same command run through the daemon print the
//! same.

use chrono::{DateTime, NaiveDate, Utc};

use crate::audit;
use crate::batch;
use crate::clock::Clock;
use crate::config::{Config, ConfigError, Problem};
use crate::intake::{self, StockFile};
use std::collections::HashMap;

use rust_decimal::Decimal;

use crate::duties;
use crate::explain;
use crate::model::{HoldReason, Order, OrderState, Referral, ReferralLine, Text};
use crate::money::{self, Conversion, Usd};
use crate::referrals;
use crate::releaselog::{self, LogError};
pub use crate::store::DumpCounts;
use crate::store::{
    self, Cancel, DumpError, OrderView, Referring, RestoreError, StateCount, Store, StoreError,
    StoreReader, Voiding,
};
use crate::wire::{
    BatchDoc, CancelDoc, CheckDoc, DutyDoc, DutyRow, ItemRow, OrderDoc, OrderLineDoc, OrderRow,
    RateDoc, ReferDoc, ReferredDoc, StockRow, VoidDoc, WrittenDoc,
};

mod status;
pub use status::{
    day_figures, status, status_view, DayFigures, PolicyInForce, RejectedFile, Status,
    REJECTED_DAYS, REPORT_SUFFIX, SPOOL_REJECTED,
};

pub use crate::batch::{BatchError, Planned, Summary};
pub use crate::duties::Totals as EstimateTotals;
pub use crate::intake::{IntakeError, IntakeReport, Source};
pub use crate::releaselog::LogError as FilesError;

/// What an input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InputKind {
    // In the order they are taken in when several wait: orders need their items.
    Items,
    Duties,
    Receipts,
    Counts,
    Orders,
}

impl InputKind {
    pub fn word(self) -> &'static str {
        match self {
            InputKind::Items => "items",
            InputKind::Duties => "duties",
            InputKind::Receipts => "stock-receive",
            InputKind::Counts => "stock-count",
            InputKind::Orders => "orders",
        }
    }
}

/// Takes in one input of a kind in one durable commit. `mark`, when given, is recorded in the
/// same commit with the report, so that the input is known when it is seen again (see
/// [`applied`]).
pub fn import(
    store: &mut Store,
    config: &Config,
    source: Source,
    kind: InputKind,
    mark: Option<&str>,
) -> Result<IntakeReport, IntakeError> {
    match kind {
        InputKind::Items => intake::import_items(store, source, mark),
        InputKind::Duties => intake::import_duties(store, source, mark),
        InputKind::Receipts => intake::import_stock(store, source, StockFile::Receive, mark),
        InputKind::Counts => intake::import_stock(store, source, StockFile::Count, mark),
        InputKind::Orders => {
            let mut reports = intake::import_orders(store, &[source], config.identity, mark)?;
            Ok(reports.remove(0))
        }
    }
}

/// Takes in orders sent together (posts to the API) in one durable commit, with a report for
/// each.
pub fn import_orders(
    store: &mut Store,
    config: &Config,
    sources: &[Source],
) -> Result<Vec<IntakeReport>, IntakeError> {
    intake::import_orders(store, sources, config.identity, None)
}

/// Checks that orders received as bytes are UTF-8 text, taking nothing in (see
/// [`import_orders`]: one input refused whole fails the others of its commit).
pub fn check_orders_text(name: &std::path::Path, bytes: &[u8]) -> Result<(), IntakeError> {
    intake::check_orders_text(name, bytes)
}

/// The report of an input already taken in under `mark`, if one was.
pub fn applied(store: &Store, mark: &str) -> Result<Option<IntakeReport>, AppliedError> {
    match store.applied(mark)? {
        None => Ok(None),
        Some(json) => serde_json::from_str(&json)
            .map(Some)
            .map_err(|error| AppliedError::Report(error.to_string())),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppliedError {
    #[error("the stored report cannot be read: {0}")]
    Report(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("order {0} is not known")]
    Unknown(String),
    #[error("order {order_id} was released in {release_id} on {day}; a released order cannot be cancelled")]
    Released {
        order_id: String,
        release_id: String,
        day: NaiveDate,
    },
    #[error("order {order_id} was referred to a formal entry on {day}; a referred order cannot be cancelled")]
    Referred { order_id: String, day: NaiveDate },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Cancels a pending or held order; cancelling a cancelled order again changes nothing.
pub fn cancel(store: &mut Store, order_id: &str) -> Result<CancelDoc, CancelError> {
    let cancelled = match store.cancel(order_id)? {
        Cancel::Done => true,
        Cancel::Already => false,
        Cancel::Unknown => return Err(CancelError::Unknown(order_id.to_owned())),
        Cancel::Released { release_id, day } => {
            return Err(CancelError::Released {
                order_id: order_id.to_owned(),
                release_id,
                day,
            })
        }
        Cancel::Referred { day } => {
            return Err(CancelError::Referred {
                order_id: order_id.to_owned(),
                day,
            })
        }
    };
    tracing::info!(order_id, cancelled, "order cancel");
    Ok(CancelDoc {
        order_id: order_id.to_owned(),
        cancelled,
    })
}

/// One order as `orders show` gives it, by id: as taken in, its lines valued at the rate used
/// (a released order's in its release, a referred one's in its referral; an open one's at
/// today's rate), its state, and what decided it.
pub fn order(
    store: &mut Store,
    config: &Config,
    clock: &Clock,
    order_id: &str,
) -> Result<Option<OrderDoc>, StoreError> {
    let Some((order, state)) = store.order(order_id)? else {
        return Ok(None);
    };
    let detail = store.detail(order_id)?;
    // Each line's duty, when it was or can be estimated.
    let mut line_duties: Option<Vec<(Option<String>, Vec<DutyDoc>)>> = None;
    let (values, conversion): (Vec<Option<Decimal>>, Option<Conversion>) = match &state {
        OrderState::Released { release_id, .. } => {
            let release = store.release(release_id)?;
            let release = release.as_ref();
            let lines = release
                .into_iter()
                .flat_map(|release| release.lines.iter())
                .filter(|line| line.order_id == order.order_id);
            let values = lines.map(|line| Some(line.value_usd)).collect();
            if let Some((release, estimate)) =
                release.and_then(|release| Some((release, duties::of_release(release)?)))
            {
                line_duties = Some(
                    release
                        .lines
                        .iter()
                        .zip(&estimate.lines)
                        .filter(|(line, _)| line.order_id == order.order_id)
                        .map(|(_, duty)| DutyDoc::of_line(duty))
                        .collect(),
                );
            }
            let fx = release
                .and_then(|release| release.fx.iter().find(|fx| fx.currency == order.currency));
            (values, fx.cloned().map(Conversion::Rate))
        }
        OrderState::Referred { .. } => {
            let referral = store.referral(order_id)?;
            let referral = referral.as_ref();
            let lines = referral
                .into_iter()
                .flat_map(|referral| referral.lines.iter());
            let values = lines.map(|line| Some(line.value_usd)).collect();
            let fx = referral.and_then(|referral| referral.fx.clone());
            (values, fx.map(Conversion::Rate))
        }
        OrderState::Cancelled => (vec![None; order.lines.len()], None),
        OrderState::Pending(_) | OrderState::Held(_) => {
            let conversion = rate_today(config, clock, &order);
            let values = order
                .lines
                .iter()
                .map(|line| {
                    let conversion = conversion.as_ref()?;
                    money::line_value_usd(line.qty, line.unit_price, conversion)
                })
                .collect::<Vec<_>>();
            let today = clock.today(config.warehouse.timezone);
            let rows = store.duty_rates()?;
            let table = duties::Table::on(&rows, today);
            let items = store.items()?;
            line_duties = Some(
                order
                    .lines
                    .iter()
                    .zip(&values)
                    .map(
                        |(line, value)| match (items.get(line.sku.as_str()), value) {
                            (Some(item), Some(value)) => DutyDoc::of_line(&duties::line_duty(
                                Some(&table.item(item)),
                                *value,
                            )),
                            _ => (None, Vec::new()),
                        },
                    )
                    .collect(),
            );
            (values, conversion)
        }
    };
    let duty_usd = line_duties.as_ref().and_then(|lines| {
        lines
            .iter()
            .map(|(duty, _)| duty.as_deref()?.parse::<Decimal>().ok())
            .sum::<Option<Decimal>>()
            .map(|total| Usd(total).to_string())
    });
    let duty_estimated = line_duties.is_some();
    let mut line_duties = line_duties.unwrap_or_default().into_iter();
    let total = values
        .iter()
        .try_fold(Decimal::ZERO, |total, value| Some(total + (*value)?))
        .filter(|_| !matches!(state, OrderState::Cancelled));
    let lines = order
        .lines
        .iter()
        .zip(values.iter().chain(std::iter::repeat(&None)))
        .map(|(line, value)| {
            let (duty_usd, duties) = line_duties.next().unwrap_or_default();
            OrderLineDoc {
                sku: line.sku.to_string(),
                qty: line.qty,
                unit_price: line.unit_price.to_string(),
                value_usd: value.map(|value| Usd(value).to_string()),
                duty_usd,
                duties,
            }
        })
        .collect();
    let rate = conversion
        .as_ref()
        .and_then(Conversion::fx)
        .map(|fx| RateDoc {
            usd_per_currency_unit: fx.usd.to_string(),
            from: fx.from,
        });
    let currency = order.currency.to_string();
    let view = OrderView {
        order,
        state,
        detail,
        value_usd: None,
    };
    Ok(Some(OrderDoc {
        row: OrderRow::new(&view, total, &cutoffs(config)),
        currency,
        lines,
        rate,
        duty_usd,
        duty_estimated,
    }))
}

/// The rate a batch today would value an order at.
fn rate_today(config: &Config, clock: &Clock, order: &Order) -> Option<Conversion> {
    let today = clock.today(config.warehouse.timezone);
    config.rates.on(&order.currency, today)
}

/// The warehouse's zone and cutoff, for explaining orders not due.
fn cutoffs(config: &Config) -> explain::Cutoffs {
    explain::Cutoffs::of(config)
}

#[derive(Debug, thiserror::Error)]
pub enum VoidError {
    #[error("release {0} is not known")]
    Unknown(String),
    #[error("release {release_id} was voided at {} ({reason}); a void release cannot be voided again", .voided_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))]
    Already {
        release_id: String,
        voided_at: DateTime<Utc>,
        reason: String,
    },
    #[error("a void needs a reason (--reason TEXT): the day's voids file keeps it for the broker")]
    NoReason,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Voids a release that did not cross (`releases void`): its orders back to pending in their
/// place, its stock back on hand, its recipient's allowance for the day restored, the void
/// kept; then the day's manifest, summary and voids are written again (its log stays as first
/// written). A failure to write the files leaves them due, as after a batch.
pub fn void_release(
    store: &mut Store,
    config: &Config,
    clock: &Clock,
    release_id: &str,
    reason: &str,
) -> Result<VoidDoc, VoidError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(VoidError::NoReason);
    }
    let (release, void) = match store.void(release_id, reason, clock.now())? {
        Voiding::Done { release, void } => (release, void),
        Voiding::Unknown => return Err(VoidError::Unknown(release_id.to_owned())),
        Voiding::Already(void) => {
            return Err(VoidError::Already {
                release_id: release_id.to_owned(),
                voided_at: void.voided_at,
                reason: void.reason,
            })
        }
    };
    tracing::info!(release_id, day = %release.day, orders = release.orders.len(), "release voided");
    let files = write_due(store, config)
        .err()
        .map(|error| format!("{:#}", anyhow::Error::from(error)));
    let logs = &config.paths.logs;
    let estimate = EstimateTotals::of([&*release]);
    Ok(VoidDoc {
        release_id: void.release_id.to_string(),
        day: void.day,
        reason: void.reason,
        voided_at: void.voided_at,
        orders: release.orders.iter().map(Text::to_string).collect(),
        value_usd: release.value_usd,
        duty_usd: estimate.duty_usd,
        fees_usd: estimate.fees_usd,
        unknown_duty_lines: estimate.unknown_lines,
        last_day: store.last_day()?,
        voids: releaselog::voids_path(logs, void.day),
        manifest: releaselog::manifest_path(logs, void.day),
        files_error: files,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ReferError {
    #[error("name at least one order to refer")]
    NoOrders,
    #[error("order {0} is not known; nothing was referred")]
    Unknown(String),
    #[error("order {0} is named twice; nothing was referred")]
    Twice(String),
    #[error("order {order_id} is {state}, not held: only a held order can be referred; nothing was referred")]
    NotHeld { order_id: String, state: String },
    #[error("order {order_id} cannot be referred: {why}; nothing was referred")]
    Unvalued { order_id: String, why: String },
    #[error("order {order_id}: stock of {sku} is short: {needed} needed, {on_hand} on hand; nothing was referred")]
    Short {
        order_id: String,
        sku: String,
        needed: u64,
        on_hand: u64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Refers held orders to a formal entry (`orders refer`), all in one durable commit or none:
/// each leaves the daily plan for good (state `referred`, keeping its hold reason), its units
/// leave the stock, and its referral is kept with its lines valued at today's rate and `note`;
/// then the day's referral files are written from the store. A failure to write them is
/// reported in the answer (`releases write --day` writes them again).
pub fn refer(
    store: &mut Store,
    config: &Config,
    clock: &Clock,
    order_ids: &[String],
    note: Option<&str>,
) -> Result<ReferDoc, ReferError> {
    if order_ids.is_empty() {
        return Err(ReferError::NoOrders);
    }
    let today = clock.today(config.warehouse.timezone);
    let referred_at = clock.now();
    let note = note.unwrap_or("").trim();
    let mut referrals: Vec<Referral> = Vec::with_capacity(order_ids.len());
    for (at, order_id) in order_ids.iter().enumerate() {
        if order_ids[..at].contains(order_id) {
            return Err(ReferError::Twice(order_id.clone()));
        }
        let Some((order, state)) = store.order(order_id)? else {
            return Err(ReferError::Unknown(order_id.clone()));
        };
        let OrderState::Held(reason) = state else {
            return Err(ReferError::NotHeld {
                order_id: order_id.clone(),
                state: state_words(&state),
            });
        };
        let referral =
            referral_of(store.items()?, config, today, order, reason).map_err(|why| {
                ReferError::Unvalued {
                    order_id: order_id.clone(),
                    why,
                }
            })?;
        referrals.push(Referral {
            note: note.to_owned(),
            referred_at,
            ..referral
        });
    }
    match store.refer(&referrals)? {
        Referring::Done => {}
        Referring::NotHeld { order_id } => {
            let state = store.order(&order_id)?.map(|(_, state)| state);
            return Err(ReferError::NotHeld {
                state: state.as_ref().map_or_else(|| "unknown".into(), state_words),
                order_id,
            });
        }
        Referring::Short { order_id, short } => {
            return Err(ReferError::Short {
                order_id,
                sku: short.sku.to_string(),
                needed: short.needed,
                on_hand: short.on_hand,
            })
        }
    }
    tracing::info!(day = %today, orders = referrals.len(), "orders referred");
    crate::crashpoint::reached("refer-after-commit");
    let files = write_referrals(store, config, today)
        .and_then(|_| Ok(store.referral_files_written(today)?))
        .err()
        .map(|error| format!("{:#}", anyhow::Error::from(error)));
    let logs = &config.paths.logs;
    Ok(ReferDoc {
        day: today,
        referred_at,
        note: note.to_owned(),
        orders: referrals
            .iter()
            .map(|referral| ReferredDoc {
                order_id: referral.order_id.to_string(),
                reason: referral.reason.word().to_owned(),
                value_usd: referral.value_usd,
            })
            .collect(),
        jsonl: referrals::jsonl_path(logs, today),
        csv: referrals::csv_path(logs, today),
        files_error: files,
    })
}

/// A state in the words of a refusal: `released in 2026-12-01-000001 on 2026-12-01`.
fn state_words(state: &OrderState) -> String {
    match state {
        OrderState::Released { release_id, day } => format!("released in {release_id} on {day}"),
        OrderState::Referred { day, .. } => format!("referred already (on {day})"),
        state => state.word().to_owned(),
    }
}

/// The referral of a held order on `day`: its lines with their items' facts, valued at the
/// day's rate. The note and the time are the caller's.
fn referral_of(
    items: &HashMap<String, crate::model::Item>,
    config: &Config,
    day: NaiveDate,
    order: Order,
    reason: HoldReason,
) -> Result<Referral, String> {
    let conversion = config
        .rates
        .on(&order.currency, day)
        .ok_or_else(|| format!("no {} rate for {day} to value it at", order.currency))?;
    let mut lines = Vec::with_capacity(order.lines.len());
    for line in &order.lines {
        let item = items
            .get(line.sku.as_str())
            .ok_or_else(|| format!("{} is no item of the catalogue", line.sku))?;
        let value_usd = money::line_value_usd(line.qty, line.unit_price, &conversion)
            .ok_or_else(|| format!("{} cannot be valued in US dollars", line.sku))?;
        lines.push(ReferralLine {
            sku: line.sku.clone(),
            qty: line.qty,
            description: item.description.clone(),
            hts: item.hts.clone(),
            origin: item.origin.clone(),
            unit_price: line.unit_price,
            value_usd,
        });
    }
    Ok(Referral {
        order_id: order.order_id,
        day,
        reason,
        note: String::new(),
        referred_at: DateTime::<Utc>::MIN_UTC,
        value_usd: lines.iter().map(|line| line.value_usd).sum(),
        lines,
        consignee: order.recipient,
        currency: order.currency,
        fx: conversion.fx().cloned(),
    })
}

/// Writes the referral files of `day` from the store; none when the day has no referral.
fn write_referrals(
    store: &Store,
    config: &Config,
    day: NaiveDate,
) -> Result<Vec<std::path::PathBuf>, LogError> {
    let referrals = store.referrals_of(day)?;
    if referrals.is_empty() {
        return Ok(Vec::new());
    }
    referrals::write_day(releaselog::Output::of(config), day, &referrals)
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("no release was ever committed for {0}, nor any order referred: there are no files to write")]
    NoReleases(NaiveDate),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Files(#[from] LogError),
}

/// Writes a day's release log, manifest, summary and voids, and its referral files, again from
/// the store (`releases write`), for files lost or damaged: the log byte for byte as it was
/// first written.
pub fn write_releases(
    store: &mut Store,
    config: &Config,
    day: NaiveDate,
) -> Result<WrittenDoc, WriteError> {
    let releases = store.releases_of(day)?;
    let referred = store.referrals_of(day)?.len();
    if releases.is_empty() && referred == 0 {
        return Err(WriteError::NoReleases(day));
    }
    let voids = store.voids_of(day)?;
    let logs = &config.paths.logs;
    let mut files = Vec::new();
    if !releases.is_empty() {
        let output = releaselog::Output::of(config);
        releaselog::write_day(output, day, &[&releases], &voids)?;
        tracing::info!(%day, releases = releases.len(), "release files written again");
        files.extend([
            releaselog::log_path(logs, day),
            releaselog::manifest_path(logs, day),
            releaselog::summary_path(logs, day),
        ]);
        if !voids.is_empty() {
            files.push(releaselog::voids_path(logs, day));
        }
    }
    files.extend(write_referrals(store, config, day)?);
    Ok(WrittenDoc {
        day,
        releases: releases.len(),
        voids: voids.len(),
        referrals: referred,
        files,
    })
}

/// Which orders a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    Pending,
    Held,
    Released,
    Cancelled,
    Referred,
}

impl StateFilter {
    pub const ALL: [StateFilter; 5] = [
        StateFilter::Pending,
        StateFilter::Held,
        StateFilter::Released,
        StateFilter::Cancelled,
        StateFilter::Referred,
    ];

    pub fn word(self) -> &'static str {
        match self {
            StateFilter::Pending => "pending",
            StateFilter::Held => "held",
            StateFilter::Released => "released",
            StateFilter::Cancelled => "cancelled",
            StateFilter::Referred => "referred",
        }
    }

    pub fn from_word(word: &str) -> Option<StateFilter> {
        StateFilter::ALL
            .into_iter()
            .find(|filter| filter.word() == word)
    }

    pub fn admits(self, state: &OrderState) -> bool {
        matches!(
            (self, state),
            (StateFilter::Pending, OrderState::Pending(_))
                | (StateFilter::Held, OrderState::Held(_))
                | (StateFilter::Released, OrderState::Released { .. })
                | (StateFilter::Cancelled, OrderState::Cancelled)
                | (StateFilter::Referred, OrderState::Referred { .. })
        )
    }
}

/// Every order with its state, in intake order, as `orders list` gives it: a released order
/// valued in its release, a referred one in its referral, an open one at today's rate.
pub fn for_each_order<E: From<StoreError>>(
    store: &Store,
    config: &Config,
    clock: &Clock,
    filter: Option<StateFilter>,
    mut each: impl FnMut(OrderRow) -> Result<(), E>,
) -> Result<(), E> {
    let cutoffs = cutoffs(config);
    let today = clock.today(config.warehouse.timezone);
    let mut rates: HashMap<Text, Option<Conversion>> = HashMap::new();
    for view in store.order_views()? {
        if filter.is_none_or(|filter| filter.admits(&view.state)) {
            let value_usd = match view.state {
                OrderState::Released { .. } | OrderState::Referred { .. } => view.value_usd,
                OrderState::Cancelled => None,
                OrderState::Pending(_) | OrderState::Held(_) => {
                    let order = &view.order;
                    let conversion = rates
                        .entry(order.currency.clone())
                        .or_insert_with(|| config.rates.on(&order.currency, today));
                    conversion
                        .as_ref()
                        .and_then(|conversion| money::value_order(order, conversion))
                }
            };
            each(OrderRow::new(&view, value_usd, &cutoffs))?;
        }
    }
    Ok(())
}

/// The stock of every SKU of the catalogue (those with nothing on hand too), by SKU, as
/// `stock list` gives it: received + adjusted - released = on hand, so that a count that
/// lowered on hand shows a negative adjustment.
pub fn stock_rows(store: &Store) -> Result<Vec<StockRow>, StoreError> {
    let mut levels = store.stock()?;
    for sku in store.reader()?.items()?.into_keys() {
        levels.entry(sku).or_default();
    }
    Ok(levels
        .into_iter()
        .map(|(sku, level)| StockRow {
            on_hand: level.on_hand() as i64,
            received: level.received,
            released: level.released,
            adjusted: -level.adjusted,
            sku,
        })
        .collect())
}

/// The catalogue, by SKU, as `items list` gives it.
/// The rows of the duty tables in force on `day` (default the warehouse's today), by prefix,
/// origin and program, with the day.
pub fn duty_rows(
    store: &Store,
    config: &Config,
    clock: &Clock,
    day: Option<NaiveDate>,
) -> Result<(NaiveDate, Vec<DutyRow>), StoreError> {
    let day = day.unwrap_or_else(|| clock.today(config.warehouse.timezone));
    let rows = store.duty_rates()?;
    let shown = duties::in_force(&rows, day)
        .into_iter()
        .map(|row| DutyRow {
            hts_prefix: row.hts_prefix.clone(),
            origin: row.origin.clone(),
            program: row.program.clone(),
            rate_percent: row.rate_percent.normalize().to_string(),
            from: row.from,
            usmca_exempt: row.usmca_exempt,
            source: row.source.clone(),
        })
        .collect();
    Ok((day, shown))
}

pub fn item_rows(store: &Store) -> Result<Vec<ItemRow>, StoreError> {
    let mut items: Vec<ItemRow> = store
        .reader()?
        .items()?
        .into_values()
        .map(|item| ItemRow {
            sku: item.sku,
            description: item.description,
            hts: item.hts,
            origin: item.origin,
            flags: item
                .flags
                .iter()
                .map(|flag| flag.word().to_owned())
                .collect(),
            mid: item.mid,
            usmca: item.usmca,
        })
        .collect();
    items.sort_by(|a, b| a.sku.cmp(&b.sku));
    Ok(items)
}

/// What a batch for `day` (default: today at the warehouse) would do now; changes nothing.
pub fn plan(
    store: &mut Store,
    config: &Config,
    clock: &Clock,
    day: Option<NaiveDate>,
) -> Result<Planned, BatchError> {
    let today = clock.today(config.warehouse.timezone);
    batch::view_day(store, config, day.unwrap_or(today), today, clock.now())
}

/// Runs the batch for `day` (default: today at the warehouse). A scheduled batch gives its
/// `trigger`, recorded in the same commit.
pub fn batch(
    store: &mut Store,
    config: &Config,
    clock: &Clock,
    day: Option<NaiveDate>,
    trigger: Option<DateTime<Utc>>,
) -> Result<BatchDoc, BatchError> {
    let today = clock.today(config.warehouse.timezone);
    let day = day.unwrap_or(today);
    let committed = batch::run(store, config, day, today, clock.now(), trigger)?;
    Ok(BatchDoc::new(committed, config))
}

/// Writes the release logs and manifests that an interrupted batch left due.
pub fn write_due(store: &mut Store, config: &Config) -> Result<Vec<NaiveDate>, LogError> {
    let mut days = releaselog::write_due(store, releaselog::Output::of(config))?;
    // And the referral files a referral left due (a crash between its commit and its files).
    for day in store.referrals_due()? {
        write_referrals(store, config, day)?;
        store.referral_files_written(day)?;
        if !days.contains(&day) {
            days.push(day);
        }
    }
    Ok(days)
}

/// What `check-config` checks beyond the file, which loading it has checked: that the API's
/// token can be read (the daemon will not start, nor a command reach it, without it), and that a
/// policy is in force today at the warehouse (a batch is refused without one). Every problem
/// with its key.
pub fn check_config(config: &Config, clock: &Clock) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    if let Err(error) = crate::client::read_token(&config.api.token_file) {
        problems.push(Problem {
            key: "api.token_file".into(),
            message: format!("{error:#}")
                .trim_start_matches("api.token_file ")
                .to_owned(),
        });
    }
    let today = clock.today(config.warehouse.timezone);
    if config.timeline.in_force(today).is_none() {
        problems.push(Problem {
            key: "policy".into(),
            message: format!(
                "no policy is in force today ({today} at the warehouse): add a [[policy]] whose \
                 from is on or before it"
            ),
        });
    }
    // An informal entry names its importer and shipper: a policy of that lane in force or
    // coming needs them.
    let informal = config.timeline.policies().iter().find(|policy| {
        policy.lane == crate::policy::Lane::InformalEntry.word()
            && config
                .timeline
                .in_force(today)
                .is_none_or(|in_force| policy.from >= in_force.from)
    });
    if let Some(policy) = informal {
        for key in config.entry.missing() {
            problems.push(Problem {
                key: key.into(),
                message: format!(
                    "required: policy {} (lane informal-entry, from {}) files informal entries, which name the importer of record and the shipper",
                    policy.name, policy.from
                ),
            });
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            file: config.file.clone(),
            problems,
        })
    }
}

/// The store audit, as `check-store` prints it.
pub fn check_store(store: &Store, config: &Config) -> Result<CheckDoc, StoreError> {
    let output = releaselog::Output::of(config);
    let audit = audit::audit(store, &config.timeline, Some(output))?;
    Ok(CheckDoc {
        ok: audit.violations.is_empty(),
        report: format!("{}: {audit}", store.path().display()),
    })
}

/// Orders by state and reason, and when the oldest pending one was placed: the daemon's
/// figures.
pub fn order_counts(
    store: &mut Store,
) -> Result<(Vec<StateCount>, Option<DateTime<Utc>>), StoreError> {
    store.order_counts()
}

/// The last day batched, and its releases that stand (not void).
/// The last day batched in a view of the store, and what the estimates of its releases that
/// stand add up to (for the daemon's figures at start).
pub fn last_day_estimate(
    view: &StoreReader,
) -> Result<Option<(NaiveDate, EstimateTotals)>, StoreError> {
    let Some(day) = view.last_day()? else {
        return Ok(None);
    };
    let voids = view.voids_of(day)?;
    let releases = view.releases_of(day)?;
    let standing = releases.iter().filter(|release| {
        !voids
            .iter()
            .any(|void| void.release_id == release.release_id)
    });
    Ok(Some((day, EstimateTotals::of(standing))))
}

/// Reads what intake checks new orders against (the catalogue, the id index and the state of
/// every order) now, rather than at the first intake.
pub fn prepare_intake(store: &mut Store) -> Result<(), StoreError> {
    store.prepare_intake()
}

/// The schedule time the last scheduled batch ran for.
pub fn last_trigger(store: &Store) -> Result<Option<DateTime<Utc>>, StoreError> {
    store.last_trigger()
}

/// Opens the store of `config` and writes any release files an interrupted batch left due; a
/// failure to write them is a warning (`warn`), since every later command tries again.
pub fn open(config: &Config, warn: impl FnOnce(LogError)) -> Result<Store, StoreError> {
    let mut store = Store::open(&config.paths.data)?;
    if let Err(error) = write_due(&mut store, config) {
        warn(error);
    }
    Ok(store)
}

/// The counts of a plan or batch, for its summary.
pub fn summarise(planned: &Planned) -> Summary {
    batch::summarise(planned)
}

/// A consistent view of the store for a dump, taken now: commits made while the dump is
/// written do not change it.
pub fn dump_view(store: &Store) -> Result<StoreReader, StoreError> {
    store.reader()
}

/// Writes the logical dump of `view` (see `store dump`) to `out`.
pub fn dump(
    view: &StoreReader,
    clock: &Clock,
    out: &mut impl std::io::Write,
) -> Result<DumpCounts, DumpError> {
    store::dump(view, clock.now(), out)
}

/// Writes the dump of the store to `file`, durably: under a temporary name, fsynced, then
/// renamed into place.
pub fn dump_to_file(
    store: &Store,
    clock: &Clock,
    file: &std::path::Path,
) -> Result<DumpCounts, DumpError> {
    let view = dump_view(store)?;
    let mut counts = DumpCounts::default();
    let temporary = crate::files::write_temporary(file, |out| {
        counts = dump(&view, clock, out).map_err(std::io::Error::other)?;
        Ok(())
    })
    .map_err(DumpError::Write)?;
    crate::files::rename_durably(&temporary, file).map_err(DumpError::Write)?;
    Ok(counts)
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreFailed {
    #[error(transparent)]
    Refused(#[from] RestoreError),
    #[error("the dump breaks the store's invariants; nothing was restored:\n  {}", .0.join("\n  "))]
    Broken(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RestoreFailed {
    /// Whether the store is another process's (normally the running daemon's).
    pub fn is_locked(&self) -> bool {
        match self {
            RestoreFailed::Store(error) | RestoreFailed::Refused(RestoreError::Store(error)) => {
                error.is_locked_or_private()
            }
            _ => false,
        }
    }
}

/// Restores a dump into the empty store of `config`, checks every invariant of the restored
/// store before it takes the empty one's place, then writes every day's release log and
/// manifest, and every day's referral files, from it.
pub fn restore(
    config: &Config,
    file: &std::path::Path,
) -> Result<(DumpCounts, Result<Vec<NaiveDate>, LogError>), RestoreFailed> {
    let input = std::fs::File::open(file).map_err(|source| RestoreError::Read {
        file: file.to_owned(),
        source,
    })?;
    let input = std::io::BufReader::with_capacity(1 << 20, input);
    let mut restored = store::restore(&config.paths.data, file, input)?;
    let audit = audit::audit(restored.store(), &config.timeline, None)?;
    if !audit.violations.is_empty() {
        restored.discard();
        return Err(RestoreFailed::Broken(audit.violations));
    }
    let counts = restored.counts.clone();
    let mut store = restored.put_in_place()?;
    // The restore marked every day's release and referral files due.
    let written = write_due(&mut store, config);
    Ok((counts, written))
}
