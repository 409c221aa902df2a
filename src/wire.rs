//! The JSON the local API speaks, shared by the daemon that writes it and the command line that
//! reads it, so that a command prints the same whether it ran here or in the daemon.
//! README.md ("Local API") documents each shape.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::batch::{Committed, Planned, Summary};
use crate::config::Config;
use crate::model::{OrderState, Release, Text, Verdict};
use crate::releaselog;
use crate::releaselog::ReleaseRecord;

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
}

impl BatchDoc {
    pub fn new(committed: Committed, config: &Config) -> BatchDoc {
        let logs = &config.paths.logs;
        let day = committed.summary.day;
        BatchDoc {
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

/// One line of `stock list --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StockRow {
    pub sku: String,
    pub on_hand: i64,
    pub received: u64,
    pub released: u64,
    pub adjusted: i64,
}

/// One line of `orders list --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderRow {
    pub order_id: String,
    pub state: String,
    pub reason: Option<String>,
    pub release_id: Option<String>,
    pub day: Option<String>,
}

impl OrderRow {
    pub fn new(order_id: &str, state: &OrderState) -> OrderRow {
        let (release_id, day) = match state {
            OrderState::Released { release_id, day } => {
                (Some(release_id.clone()), Some(day.to_string()))
            }
            _ => (None, None),
        };
        OrderRow {
            order_id: order_id.to_owned(),
            state: state.word().to_owned(),
            reason: state.reason_word().map(str::to_owned),
            release_id,
            day,
        }
    }
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
}

impl<'a> PlanRecord<'a> {
    pub fn new(planned: &'a Planned, summary: &'a Summary) -> PlanRecord<'a> {
        let plan = &planned.plan;
        PlanRecord {
            day: plan.day.to_string(),
            policy: &plan.policy,
            lane: &plan.lane,
            summary,
            releases: ReleaseRecords(&plan.releases),
            held: VerdictRecords {
                verdicts: &plan.verdicts,
                held: true,
            },
            waiting: VerdictRecords {
                verdicts: &plan.verdicts,
                held: false,
            },
            not_due: plan.not_due,
        }
    }
}

struct ReleaseRecords<'a>(&'a [Release]);

impl Serialize for ReleaseRecords<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(ReleaseRecord::from))
    }
}

/// The held (or the waiting) candidates of a plan, as `{"order_id", "reason"}` objects.
struct VerdictRecords<'a> {
    verdicts: &'a [(Text, Verdict)],
    held: bool,
}

impl Serialize for VerdictRecords<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(verdict_rows(self.verdicts, self.held))
    }
}

/// The held (or the waiting) verdicts as rows.
fn verdict_rows(verdicts: &[(Text, Verdict)], held: bool) -> impl Iterator<Item = VerdictRow> + '_ {
    verdicts.iter().filter_map(move |(order_id, verdict)| {
        let reason = match verdict {
            Verdict::Held(reason) if held => reason.word(),
            Verdict::Waiting(reason) if !held => reason.word(),
            _ => return None,
        };
        Some(VerdictRow {
            order_id: order_id.to_string(),
            reason: reason.to_owned(),
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
    pub fn new(planned: &Planned, summary: Summary) -> PlanDoc {
        let plan = &planned.plan;
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
            held: verdict_rows(&plan.verdicts, true).collect(),
            waiting: verdict_rows(&plan.verdicts, false).collect(),
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerdictRow {
    pub order_id: String,
    pub reason: String,
}
