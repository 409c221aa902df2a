//! The command line: parses arguments, loads the config, opens the store, runs one command and
//! prints its result. The exit code is decided in `main` from what this returns.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::audit;
use crate::batch::{self, Planned, Summary};
use crate::clock::{Clock, FAKE_NOW_VAR};
use crate::config::{self, Config};
use crate::intake::{self, Cancelled, IntakeReport, StockFile};
use crate::model::{OrderState, Verdict};
use crate::releaselog::{self, ReleaseRecord};
use crate::store::Store;

/// Exit code when some input lines were rejected and the rest applied.
pub const EXIT_REJECTED: u8 = 3;
/// Exit code when a batch was committed but its release log and manifest could not be written.
pub const EXIT_FILES_DUE: u8 = 4;

#[derive(Debug, Parser)]
#[command(
    name = "border-release",
    version,
    about = "Daily compliant cross-border releases for a near-border warehouse"
)]
pub struct Cli {
    /// The config file.
    #[arg(long, global = true, env = "BORDER_RELEASE_CONFIG", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validates the config and lists every problem.
    CheckConfig,
    /// Checks every invariant of the store, and the release logs against it; lists every
    /// violation.
    CheckStore,
    /// The item catalogue.
    #[command(subcommand)]
    Items(ItemsCommand),
    /// Stock on hand.
    #[command(subcommand)]
    Stock(StockCommand),
    /// Orders.
    #[command(subcommand)]
    Orders(OrdersCommand),
    /// Shows what a batch for the day would release now; changes nothing.
    Plan(DayArgs),
    /// Runs the release batch for the day and prints a summary.
    Batch(DayArgs),
}

#[derive(Debug, Subcommand)]
pub enum ItemsCommand {
    /// Loads items from a CSV file (sku,description,hts,origin,flags); known SKUs are updated.
    Import { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum StockCommand {
    /// Adds received quantities from a CSV file (sku,qty).
    Receive { file: PathBuf },
    /// Sets counted on-hand quantities from a CSV file (sku,qty), recorded as adjustments.
    Count { file: PathBuf },
    /// Lists stock on hand.
    List(JsonArg),
}

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// Loads orders from a JSON Lines file; good lines are kept even when others are rejected.
    Import { file: PathBuf },
    /// Cancels a pending or held order.
    Cancel { order_id: String },
    /// Lists orders and their states.
    List {
        /// Only orders in this state.
        #[arg(long, value_enum)]
        state: Option<StateFilter>,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateFilter {
    Pending,
    Held,
    Released,
    Cancelled,
}

impl StateFilter {
    fn admits(self, state: &OrderState) -> bool {
        matches!(
            (self, state),
            (StateFilter::Pending, OrderState::Pending(_))
                | (StateFilter::Held, OrderState::Held(_))
                | (StateFilter::Released, OrderState::Released { .. })
                | (StateFilter::Cancelled, OrderState::Cancelled)
        )
    }
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DayArgs {
    /// The release day (YYYY-MM-DD) at the warehouse; default today.
    #[arg(long)]
    pub day: Option<NaiveDate>,
    /// Prints JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// Runs one command. Errors are the ones that stop a command with nothing applied.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let clock = Clock::from_env().map_err(anyhow::Error::msg)?;
    if let Clock::Fixed(now) = clock {
        eprintln!("warning: {FAKE_NOW_VAR} is set: the clock reads {now}");
    }
    let config = match config::load(&cli.config) {
        Ok(config) => config,
        Err(error) => {
            if matches!(cli.command, Command::CheckConfig) {
                eprintln!("{error}");
                return Ok(ExitCode::FAILURE);
            }
            bail!("{error}\n(run `border-release check-config` for the full list)");
        }
    };
    if let Command::CheckConfig = cli.command {
        return check_config(&config);
    }
    let store = Store::open(&config.paths.data).context("opening the store")?;
    // Files an interrupted batch left unwritten are written before anything else.
    // Files an interrupted batch left unwritten are written before anything else; if they
    // cannot be, the command still runs (a batch refuses to, see `batch::run`).
    if let Err(error) = releaselog::write_due(&store, &config.paths.logs) {
        eprintln!(
            "warning: release logs left due by an earlier batch could not be written: {:#}",
            anyhow::Error::from(error)
        );
    }
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::CheckConfig => unreachable!("handled above"),
        Command::CheckStore => {
            let audit = audit::audit(&store, &config.timeline, &config.paths.logs)?;
            if audit.violations.is_empty() {
                writeln!(out, "{}: {audit}", store.path().display())?;
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("{}: {audit}", store.path().display());
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Items(ItemsCommand::Import { file }) => {
            intake_result(intake::import_items(&store, &file)?)
        }
        Command::Stock(StockCommand::Receive { file }) => {
            intake_result(intake::import_stock(&store, &file, StockFile::Receive)?)
        }
        Command::Stock(StockCommand::Count { file }) => {
            intake_result(intake::import_stock(&store, &file, StockFile::Count)?)
        }
        Command::Stock(StockCommand::List(json)) => {
            for (sku, level) in store.stock()? {
                if json.json {
                    let row = StockRow {
                        sku: &sku,
                        on_hand: level.on_hand() as i64,
                    };
                    writeln!(out, "{}", serde_json::to_string(&row)?)?;
                } else {
                    writeln!(
                        out,
                        "{sku:<24} on hand {:>10}  (received {}, released {}, adjusted {})",
                        level.on_hand(),
                        level.received,
                        level.released,
                        level.adjusted
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Orders(OrdersCommand::Import { file }) => {
            intake_result(intake::import_orders(&store, &file, config.identity)?)
        }
        Command::Orders(OrdersCommand::Cancel { order_id }) => {
            match intake::cancel_order(&store, &order_id)? {
                Cancelled::Now => writeln!(out, "order {order_id} cancelled")?,
                Cancelled::Already => writeln!(out, "order {order_id} was already cancelled")?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Orders(OrdersCommand::List { state, json }) => {
            list_orders(&store, state, json.json, &mut out)
        }
        Command::Plan(args) => {
            let today = clock.today(config.warehouse.timezone);
            let day = args.day.unwrap_or(today);
            let planned = batch::plan_day(&store, &config, day, today, clock.now())?;
            print_plan(&planned, args.json, &mut out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Batch(args) => {
            let today = clock.today(config.warehouse.timezone);
            let day = args.day.unwrap_or(today);
            let committed = batch::run(&store, &config, day, today, clock.now())?;
            let summary = &committed.summary;
            if args.json {
                writeln!(out, "{}", summary_json(summary, &config))?;
            } else {
                print_summary(summary, &config, &mut out)?;
            }
            match committed.files {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(error) => {
                    eprintln!(
                        "warning: the batch is committed, but its release log and manifest could not be written: {:#}\nevery later command tries again; check-store reports the day until they are written",
                        anyhow::Error::from(error)
                    );
                    Ok(ExitCode::from(EXIT_FILES_DUE))
                }
            }
        }
    }
}

fn check_config(config: &Config) -> anyhow::Result<ExitCode> {
    let policies = config.timeline.policies();
    println!("{}: ok", config.file.display());
    println!(
        "warehouse {} in {}",
        config.warehouse.name, config.warehouse.timezone
    );
    println!(
        "store {}; logs {}; spool {}",
        config.paths.data.display(),
        config.paths.logs.display(),
        config.paths.spool.display()
    );
    for policy in policies {
        println!(
            "policy {} from {}: lane {}, at most {} USD and {} release(s) per recipient per day",
            policy.name,
            policy.from,
            policy.lane,
            policy.value_limit_usd,
            policy.releases_per_recipient_per_day
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn intake_result(report: IntakeReport) -> anyhow::Result<ExitCode> {
    if report.rejected.is_empty() {
        println!("{report}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{report}");
        Ok(ExitCode::from(EXIT_REJECTED))
    }
}

#[derive(Serialize)]
struct StockRow<'a> {
    sku: &'a str,
    on_hand: i64,
}

#[derive(Serialize)]
struct OrderRow<'a> {
    order_id: &'a str,
    state: &'static str,
    reason: Option<&'static str>,
    release_id: Option<&'a str>,
    day: Option<String>,
}

fn list_orders(
    store: &Store,
    filter: Option<StateFilter>,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    if !json {
        writeln!(
            out,
            "{:<24} {:<10} {:<16} release",
            "order", "state", "reason"
        )?;
    }
    for (order, state) in store.order_states()? {
        let keep = filter.is_none_or(|filter| filter.admits(&state));
        if !keep {
            continue;
        }
        let (release_id, day) = match &state {
            OrderState::Released { release_id, day } => {
                (Some(release_id.as_str()), Some(day.to_string()))
            }
            _ => (None, None),
        };
        let row = OrderRow {
            order_id: &order.order_id,
            state: state.word(),
            reason: state.reason_word(),
            release_id,
            day,
        };
        if json {
            writeln!(out, "{}", serde_json::to_string(&row)?)?;
        } else {
            writeln!(
                out,
                "{:<24} {:<10} {:<16} {}",
                row.order_id,
                row.state,
                row.reason.unwrap_or("-"),
                row.release_id.unwrap_or("-")
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_plan(planned: &Planned, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let plan = &planned.plan;
    if json {
        // Streamed: a plan over a million orders is hundreds of megabytes of JSON.
        let record = PlanRecord {
            day: plan.day.to_string(),
            policy: &plan.policy,
            lane: &plan.lane,
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
        };
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, out);
        serde_json::to_writer(&mut writer, &record)?;
        writeln!(writer)?;
        writer.flush()?;
        return Ok(());
    }
    let summary = batch::summarise(planned);
    writeln!(out, "plan for {} (nothing is changed):", summary.day)?;
    write_counts(&summary, out)?;
    for release in &plan.releases {
        writeln!(
            out,
            "  {}  {:>10} USD  {} ({})  orders {}",
            release.release_id,
            release.value_usd,
            release.consignee.name,
            release.recipient_key,
            release.orders.join(", ")
        )?;
    }
    for (order_id, verdict) in &plan.verdicts {
        let (state, reason) = match verdict {
            Verdict::Held(reason) => ("held", reason.word()),
            Verdict::Waiting(reason) => ("waits", reason.word()),
        };
        writeln!(out, "  {order_id} {state}: {reason}")?;
    }
    Ok(())
}

/// `plan --json`: the releases as the release log would have them, and every other candidate.
#[derive(Serialize)]
struct PlanRecord<'a> {
    day: String,
    policy: &'a str,
    lane: &'a str,
    releases: ReleaseRecords<'a>,
    held: VerdictRecords<'a>,
    waiting: VerdictRecords<'a>,
    not_due: usize,
}

struct ReleaseRecords<'a>(&'a [crate::model::Release]);

impl Serialize for ReleaseRecords<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(ReleaseRecord::from))
    }
}

/// The held (or the waiting) candidates of a plan, as `{"order_id", "reason"}` objects.
struct VerdictRecords<'a> {
    verdicts: &'a [(String, Verdict)],
    held: bool,
}

impl Serialize for VerdictRecords<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Row<'a> {
            order_id: &'a str,
            reason: &'static str,
        }
        serializer.collect_seq(self.verdicts.iter().filter_map(|(order_id, verdict)| {
            let reason = match verdict {
                Verdict::Held(reason) if self.held => reason.word(),
                Verdict::Waiting(reason) if !self.held => reason.word(),
                _ => return None,
            };
            Some(Row { order_id, reason })
        }))
    }
}

fn write_counts(summary: &Summary, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "  policy {} (lane {}, at most {} USD per recipient per day)",
        summary.policy, summary.lane, summary.value_limit_usd
    )?;
    if summary.releases_before > 0 {
        writeln!(
            out,
            "  earlier waves today: {} releases",
            summary.releases_before
        )?;
    }
    writeln!(
        out,
        "  releases: {} ({} orders, {} USD)",
        summary.releases, summary.orders_released, summary.value_usd
    )?;
    writeln!(out, "  held: {}", counts(&summary.held))?;
    writeln!(out, "  waiting: {}", counts(&summary.waiting))?;
    writeln!(
        out,
        "  not yet due (placed after the cutoff): {}",
        summary.not_due
    )?;
    Ok(())
}

fn counts(counts: &std::collections::BTreeMap<&'static str, usize>) -> String {
    let total: usize = counts.values().sum();
    if total == 0 {
        return "0".into();
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(reason, count)| format!("{reason} {count}"))
        .collect();
    format!("{total} ({})", parts.join(", "))
}

fn print_summary(summary: &Summary, config: &Config, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "batch for {} committed:", summary.day)?;
    write_counts(summary, out)?;
    writeln!(
        out,
        "  release log: {}",
        releaselog::log_path(&config.paths.logs, summary.day).display()
    )?;
    writeln!(
        out,
        "  manifest:    {}",
        releaselog::manifest_path(&config.paths.logs, summary.day).display()
    )?;
    Ok(())
}

fn summary_json(summary: &Summary, config: &Config) -> serde_json::Value {
    let logs: &Path = &config.paths.logs;
    serde_json::json!({
        "day": summary.day.to_string(),
        "policy": summary.policy,
        "lane": summary.lane,
        "releases": summary.releases,
        "orders_released": summary.orders_released,
        "value_usd": summary.value_usd.to_string(),
        "held": summary.held,
        "waiting": summary.waiting,
        "not_due": summary.not_due,
        "release_log": releaselog::log_path(logs, summary.day),
        "manifest": releaselog::manifest_path(logs, summary.day),
    })
}
