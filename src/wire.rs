//! The JSON the local API speaks, shared by the daemon that writes it and the command line that
//! reads it, so that a command prints the same whether it ran here or in the daemon.
//! README.md ("Local API") documents each shape.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::batch::{Committed, Planned, Summary, Verdicted};
use crate::config::Config;
use crate::explain;
use crate::model::{Consignee, OrderState, Release, Text, Verdict};
use crate::money::Usd;
use crate::releaselog;
use crate::releaselog::ReleaseRecord;
use crate::store::OrderView;
use chrono::NaiveDate;
use rust_decimal::Decimal;

/// Every error the API returns: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A stable word: `unauthorized`, `bad-request`, `not-found`, `conflict`, `rejected-file`,
    /// `too-large`, `unavailable`, `internal`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// A committed batch: its summary, where its files are, and why they could not be written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchDoc {
    #[serde(flatten)]
    pub summary: Summary,
    pub release_log: PathBuf,
    pub manifest: PathBuf,
    /// The day's release summary (`<day>.releases.csv`).
    pub release_summary: PathBuf,
    /// Set when the batch is committed but its release log and manifest are still due.
    #[serde(default)]
    pub files_error: Option<String>,
    /// The first 100 held orders, in order of service, with why (`orders list --state held`
    /// lists them all).
    #[serde(default)]
    pub held_first: Vec<VerdictRow>,
    /// The first 100 waiting orders, likewise.
    #[serde(default)]
    pub waiting_first: Vec<VerdictRow>,
}

impl BatchDoc {
    pub fn new(committed: Committed, config: &Config) -> BatchDoc {
        let logs = &config.paths.logs;
        let day = committed.summary.day;
        let cutoffs = explain::Cutoffs::of(config);
        let rows =
            |held| verdict_rows(committed.verdicted.iter().cloned(), held, &cutoffs).collect();
        let (held_first, waiting_first) = (rows(true), rows(false));
        BatchDoc {
            held_first,
            waiting_first,
            summary: committed.summary,
            release_log: releaselog::log_path(logs, day),
            manifest: releaselog::manifest_path(logs, day),
            release_summary: releaselog::summary_path(logs, day),
            files_error: committed
                .files
                .err()
                .map(|error| format!("{:#}", anyhow::Error::from(error))),
        }
    }
}

/// What `orders cancel` did: `cancelled` is false when the order was already cancelled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CancelDoc {
    pub order_id: String,
    pub cancelled: bool,
}

/// One line of `stock list --json` (which prints `sku` and `on_hand`) and of `GET /v1/stock`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StockRow {
    pub sku: String,
    pub on_hand: i64,
    pub received: u64,
    pub released: u64,
    /// What counts changed: received + adjusted - released = on hand.
    pub adjusted: i64,
}

/// One line of `items list --json` and of `GET /v1/items`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemRow {
    pub sku: String,
    pub description: String,
    pub hts: String,
    pub origin: String,
    /// Flag words: `adcvd`, `quota`, `pga`, `irc-tax`.
    pub flags: Vec<String>,
    /// The manufacturer identification code; null when the catalogue gives none.
    #[serde(default)]
    pub mid: Option<String>,
    /// Whether the goods originate under USMCA.
    #[serde(default)]
    pub usmca: bool,
}

/// The header of the answer to `GET /v1/duties` that gives the day its rows are in force on.
pub const DAY_HEADER: &str = "border-release-day";

/// One line of `duties list --json` and of `GET /v1/duties`: a row of the duty tables in force
/// on the day asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DutyRow {
    /// Digits only.
    pub hts_prefix: String,
    /// An ISO 3166 alpha-2 code, or `*`.
    pub origin: String,
    pub program: String,
    /// A decimal string; `"0"` for a program ended from `from`.
    pub rate_percent: String,
    pub from: NaiveDate,
    pub usmca_exempt: bool,
    /// Where the rate comes from; empty when the table did not say.
    pub source: String,
}

/// One line of `orders list --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderRow {
    pub order_id: String,
    pub state: String,
    pub reason: Option<String>,
    pub release_id: Option<String>,
    /// The release day of a released order; the day a referred order was referred.
    pub day: Option<String>,
    /// RFC 3339, UTC.
    pub placed_at: String,
    pub consignee: Consignee,
    /// A released order's value in its release, a referred order's in its referral; an open
    /// order's at today's rate (null when there is none); a cancelled order's is null.
    pub value_usd: Option<String>,
    /// What decided the last verdict (`explain::json`); null when there is nothing to say.
    pub detail: Option<serde_json::Value>,
    /// The reason word with the detail in a few words: `stock (GUITAR: 1 needed, 0 on hand)`.
    pub explanation: Option<String>,
}

impl OrderRow {
    /// The row of an order; `value_usd` as the field says.
    pub fn new(
        view: &OrderView,
        value_usd: Option<Decimal>,
        cutoffs: &explain::Cutoffs,
    ) -> OrderRow {
        let OrderView {
            order,
            state,
            detail,
            ..
        } = view;
        let (release_id, day) = match state {
            OrderState::Released { release_id, day } => {
                (Some(release_id.clone()), Some(day.to_string()))
            }
            OrderState::Referred { day, .. } => (None, Some(day.to_string())),
            _ => (None, None),
        };
        let reason = state.reason_word();
        OrderRow {
            order_id: order.order_id.to_string(),
            state: state.word().to_owned(),
            reason: reason.map(str::to_owned),
            release_id,
            day,
            placed_at: order
                .placed_at
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            consignee: order.recipient.clone(),
            value_usd: value_usd.map(|value| Usd(value).to_string()),
            detail: detail
                .as_ref()
                .map(|detail| explain::json(detail, order.placed_at, cutoffs)),
            explanation: reason.map(|reason| {
                explain::reason_with_words(reason, detail.as_ref(), order.placed_at, cutoffs)
            }),
        }
    }
}

/// `orders show --json`: the order's row, with its lines valued and the rate used.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderDoc {
    #[serde(flatten)]
    pub row: OrderRow,
    pub currency: String,
    pub lines: Vec<OrderLineDoc>,
    /// US dollars per unit of the order's currency, and the first day it applies; null for an
    /// order in dollars, or when there is no rate.
    pub rate: Option<RateDoc>,
    /// The estimated duty of the order's lines: a released order's as its release gives it, an
    /// open one's from today's duty tables; null when any line's is unknown, or for a
    /// cancelled or referred order and one released before releases were estimated.
    #[serde(default)]
    pub duty_usd: Option<String>,
    /// Whether the order's duty was estimated (so that a null `duty_usd` means unknown): true
    /// for an open order and for one released since releases were estimated.
    #[serde(default)]
    pub duty_estimated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderLineDoc {
    pub sku: String,
    pub qty: u32,
    pub unit_price: String,
    pub value_usd: Option<String>,
    /// The line's estimated duty; null when it is unknown.
    #[serde(default)]
    pub duty_usd: Option<String>,
    /// Each program's duty on the line.
    #[serde(default)]
    pub duties: Vec<DutyDoc>,
}

impl OrderDoc {
    /// Where the order's value comes from, in words: ` in its release`, ` at today's rate`...
    pub fn value_basis(&self) -> &'static str {
        match self.row.state.as_str() {
            "released" => " in its release",
            "referred" => " in its referral",
            "pending" | "held" => " at today's rate",
            _ => "",
        }
    }

    /// The rate its lines were valued at, in words: ` at 0.0541 USD per MXN (rate from
    /// 2026-10-01)`, ` (no EUR rate)`, or nothing for US dollars.
    pub fn rate_words(&self) -> String {
        match &self.rate {
            Some(rate) => format!(
                " at {} USD per {} (rate from {})",
                rate.usd_per_currency_unit, self.currency, rate.from
            ),
            None if self.currency == "USD" => String::new(),
            None => format!(" (no {} rate)", self.currency),
        }
    }

    /// Where its duty estimate comes from: today's duty tables for an open order, its release
    /// for a released one.
    pub fn duty_source(&self) -> &'static str {
        match self.row.state.as_str() {
            "pending" | "held" => "estimate, from today's duty tables",
            _ => "estimate, in its release",
        }
    }
}

/// One program's duty on a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DutyDoc {
    pub program: String,
    pub rate_percent: String,
    pub usd: String,
}

impl DutyDoc {
    /// The line's duty and each program's, as documents.
    pub fn of_line(duty: &crate::duties::LineDuty) -> (Option<String>, Vec<DutyDoc>) {
        let programs = duty
            .duties
            .iter()
            .map(|program| DutyDoc {
                program: program.program.to_owned(),
                rate_percent: program.rate_percent.to_string(),
                usd: crate::money::Usd(program.usd).to_string(),
            })
            .collect();
        (
            duty.duty_usd.map(|usd| crate::money::Usd(usd).to_string()),
            programs,
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateDoc {
    pub usd_per_currency_unit: String,
    pub from: NaiveDate,
}

/// What `releases void` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VoidDoc {
    pub release_id: String,
    pub day: NaiveDate,
    pub reason: String,
    pub voided_at: chrono::DateTime<chrono::Utc>,
    /// The orders back to pending.
    pub orders: Vec<String>,
    /// The void release's value, given back to its recipient's day.
    #[serde(with = "crate::money::usd_text")]
    pub value_usd: rust_decimal::Decimal,
    /// The void release's estimate, taken from its day's: the duties of its lines of known
    /// duty, its fees, and its lines of unknown duty.
    #[serde(default, with = "crate::money::usd_text")]
    pub duty_usd: rust_decimal::Decimal,
    #[serde(default, with = "crate::money::usd_text")]
    pub fees_usd: rust_decimal::Decimal,
    #[serde(default)]
    pub unknown_duty_lines: u64,
    /// The last day batched now (a day all of whose releases are void no longer counts).
    pub last_day: Option<NaiveDate>,
    pub voids: PathBuf,
    pub manifest: PathBuf,
    /// Set when the void is committed but the day's files are still due.
    #[serde(default)]
    pub files_error: Option<String>,
}

/// What `releases write` wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WrittenDoc {
    pub day: NaiveDate,
    pub releases: usize,
    pub voids: usize,
    /// The day's referrals, whose files were written too.
    #[serde(default)]
    pub referrals: usize,
    pub files: Vec<PathBuf>,
}

/// What `orders refer` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReferDoc {
    /// The warehouse's day of the referral: its files are that day's.
    pub day: NaiveDate,
    pub referred_at: chrono::DateTime<chrono::Utc>,
    pub note: String,
    pub orders: Vec<ReferredDoc>,
    /// The day's referral files.
    pub jsonl: PathBuf,
    pub csv: PathBuf,
    /// Set when the referral is committed but its files could not be written.
    #[serde(default)]
    pub files_error: Option<String>,
}

/// One order referred.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReferredDoc {
    pub order_id: String,
    /// The reason it was held for.
    pub reason: String,
    /// Its value at the day's rate.
    #[serde(with = "crate::money::usd_text")]
    pub value_usd: Decimal,
}

/// `check-store`: whether every invariant holds, and the audit as text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckDoc {
    pub ok: bool,
    pub report: String,
}

/// `plan --json`, as written: the releases as the release log would have them, every other
/// candidate, and the summary.
#[derive(Serialize)]
pub struct PlanRecord<'a> {
    day: String,
    policy: &'a str,
    lane: &'a str,
    summary: &'a Summary,
    releases: ReleaseRecords<'a>,
    held: VerdictRecords<'a>,
    waiting: VerdictRecords<'a>,
    not_due: usize,
    /// The ids of the orders placed after the day's cutoff, in intake order.
    not_due_orders: &'a [Text],
}

impl<'a> PlanRecord<'a> {
    pub fn new(planned: &'a Planned, summary: &'a Summary, config: &Config) -> PlanRecord<'a> {
        let plan = &planned.plan;
        let cutoffs = explain::Cutoffs::of(config);
        PlanRecord {
            day: plan.day.to_string(),
            policy: &plan.policy,
            lane: &plan.lane,
            summary,
            releases: ReleaseRecords(&plan.releases),
            held: VerdictRecords {
                planned,
                held: true,
                cutoffs,
            },
            waiting: VerdictRecords {
                planned,
                held: false,
                cutoffs,
            },
            not_due: plan.not_due.len(),
            not_due_orders: &plan.not_due,
        }
    }
}

struct ReleaseRecords<'a>(&'a [Release]);

impl Serialize for ReleaseRecords<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(ReleaseRecord::from))
    }
}

/// The held (or the waiting) candidates of a plan, as [`VerdictRow`] objects.
struct VerdictRecords<'a> {
    planned: &'a Planned,
    held: bool,
    cutoffs: explain::Cutoffs,
}

impl Serialize for VerdictRecords<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(verdict_rows(
            self.planned.verdicted(),
            self.held,
            &self.cutoffs,
        ))
    }
}

/// The held (or the waiting) verdicts as rows.
fn verdict_rows<'a>(
    verdicts: impl Iterator<Item = Verdicted> + 'a,
    held: bool,
    cutoffs: &'a explain::Cutoffs,
) -> impl Iterator<Item = VerdictRow> + 'a {
    verdicts.filter_map(move |verdicted| {
        let reason = match verdicted.verdict {
            Verdict::Held(reason) if held => reason.word(),
            Verdict::Waiting(reason) if !held => reason.word(),
            _ => return None,
        };
        let (detail, placed_at) = (&verdicted.detail, verdicted.placed_at);
        Some(VerdictRow {
            order_id: verdicted.order_id.to_string(),
            reason: reason.to_owned(),
            detail: Some(explain::json(detail, placed_at, cutoffs)),
            explanation: explain::reason_with_words(reason, Some(detail), placed_at, cutoffs),
        })
    })
}

/// `plan --json` as read back, with what the summary printout needs.
#[derive(Debug, Clone, Deserialize)]
pub struct PlanDoc {
    pub summary: Summary,
    pub releases: Vec<ReleaseBrief>,
    pub held: Vec<VerdictRow>,
    pub waiting: Vec<VerdictRow>,
}

impl PlanDoc {
    /// The same, from a plan made here.
    pub fn new(planned: &Planned, summary: Summary, config: &Config) -> PlanDoc {
        let plan = &planned.plan;
        let cutoffs = explain::Cutoffs::of(config);
        PlanDoc {
            summary,
            releases: plan
                .releases
                .iter()
                .map(|release| ReleaseBrief {
                    release_id: release.release_id.to_string(),
                    value_usd: crate::money::Usd(release.value_usd).to_string(),
                    recipient_key: release.recipient_key.clone(),
                    consignee: ConsigneeBrief {
                        name: release.consignee.name.to_string(),
                    },
                    orders: release.orders.iter().map(Text::to_string).collect(),
                })
                .collect(),
            held: verdict_rows(planned.verdicted(), true, &cutoffs).collect(),
            waiting: verdict_rows(planned.verdicted(), false, &cutoffs).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReleaseBrief {
    pub release_id: String,
    pub value_usd: String,
    pub recipient_key: String,
    pub consignee: ConsigneeBrief,
    pub orders: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConsigneeBrief {
    pub name: String,
}

/// A candidate that a plan or batch does not ship.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerdictRow {
    pub order_id: String,
    pub reason: String,
    /// What decided it (`orders show` gives the same object).
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
    /// The reason with the detail in a few words.
    #[serde(default)]
    pub explanation: String,
}
