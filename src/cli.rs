//! The command line: parses arguments, loads the config, opens the store, runs one command and
//! prints its result. When the daemon has the store, the command goes through its local API
//! instead and prints the same. The exit code is decided in `main` from what this returns.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};
use hyper::{Method, StatusCode};

use crate::client::Client;
use crate::clock::{Clock, FAKE_NOW_VAR};
use crate::config::{self, Config};
use crate::money::Usd;
use crate::operations::{self, InputKind, IntakeError, IntakeReport, Source, StateFilter, Summary};
use crate::store::{Store, StoreError};
use crate::wire::{
    BatchDoc, CancelDoc, CheckDoc, DutyRow, ItemRow, OrderDoc, OrderRow, PlanDoc, PlanRecord,
    ReferDoc, StockRow, VerdictRow, VoidDoc, WrittenDoc, DAY_HEADER,
};
use crate::words::counted;

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
    /// Runs the daemon: spool intake, the scheduled batch and the local API.
    Serve,
    /// Validates the config and lists every problem.
    CheckConfig,
    /// Checks every invariant of the store, and the release logs against it; lists every
    /// violation.
    CheckStore,
    /// The store's backup: a logical dump, and its restore into an empty store.
    #[command(subcommand)]
    Store(StoreCommand),
    /// The item catalogue.
    #[command(subcommand)]
    Items(ItemsCommand),
    /// The duty tables the estimate of each release is made from.
    #[command(subcommand)]
    Duties(DutiesCommand),
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
    /// Committed releases: undo one that did not cross, or write a day's files again.
    #[command(subcommand)]
    Releases(ReleasesCommand),
}

#[derive(Debug, Subcommand)]
pub enum ReleasesCommand {
    /// Voids a release that did not cross: its orders go back to pending in their place in the
    /// queue, its stock back on hand, and its recipient's allowance for the day is restored.
    /// The void is kept in the day's voids file; the manifest is written again without it.
    Void {
        /// The release's id, as the release log gives it (2026-12-01-000001).
        release_id: String,
        /// Why it did not cross (the truck did not leave, the broker could not file it).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Writes a day's release log, manifest, release summary and voids again from the store,
    /// for files lost or damaged; the release log comes out byte for byte as first written.
    Write {
        /// The release day (YYYY-MM-DD) whose files to write.
        #[arg(long)]
        day: NaiveDate,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Writes everything the store holds to FILE as JSON Lines (a consistent snapshot, also
    /// while the daemon takes in orders).
    Dump {
        /// The dump file to write (replaced if it exists).
        file: PathBuf,
    },
    /// Loads a dump into an empty store (stop the daemon first), checks it, and writes every
    /// day's release files from it.
    Restore {
        /// A dump written by `store dump`.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ItemsCommand {
    /// Loads items from a CSV file (sku,description,hts,origin,flags); known SKUs are updated.
    Import {
        /// The catalogue: UTF-8 CSV with the header sku,description,hts,origin,flags.
        file: PathBuf,
    },
    /// Lists the catalogue.
    List(JsonArg),
}

#[derive(Debug, Subcommand)]
pub enum DutiesCommand {
    /// Adds rows to the duty tables from a CSV file; a row of the same hts_prefix, origin,
    /// program and from as one held replaces it.
    Import {
        /// UTF-8 CSV with the header hts_prefix,origin,program,rate_percent,from,usmca_exempt
        /// (and optionally source).
        file: PathBuf,
    },
    /// Lists the rows in force on a day.
    List(DayArgs),
}

#[derive(Debug, Subcommand)]
pub enum StockCommand {
    /// Adds received quantities from a CSV file (sku,qty).
    Receive {
        /// The receipts: UTF-8 CSV with the header sku,qty, quantities of at least 1.
        file: PathBuf,
    },
    /// Sets counted on-hand quantities from a CSV file (sku,qty), recorded as adjustments.
    Count {
        /// The count: UTF-8 CSV with the header sku,qty, quantities of 0 or more.
        file: PathBuf,
    },
    /// Lists stock on hand.
    List(JsonArg),
}

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// Loads orders from a JSON Lines file; good lines are kept even when others are rejected.
    Import {
        /// The orders: UTF-8 JSON Lines, one order object per line.
        file: PathBuf,
    },
    /// Cancels a pending or held order.
    Cancel {
        /// The order's `order_id`, as it was taken in.
        order_id: String,
    },
    /// Refers held orders (over the limit, or goods the broker enters formally) to a formal
    /// entry: they leave the daily plan for good, their stock is taken, and the day's referral
    /// files list them for the broker. All the orders named are referred, or none.
    Refer {
        /// The orders' `order_id`s, as they were taken in.
        #[arg(required = true)]
        order_ids: Vec<String>,
        /// A note for the broker, kept with each referral.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Shows one order as taken in, its lines valued in US dollars, its state, and what
    /// decided it.
    Show {
        /// The order's `order_id`, as it was taken in.
        order_id: String,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Lists orders and their states.
    List {
        /// Only orders in this state.
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        #[command(flatten)]
        json: JsonArg,
    },
}

/// The states `orders list --state` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    Pending,
    Held,
    Released,
    Cancelled,
    Referred,
}

impl StateArg {
    fn filter(self) -> StateFilter {
        match self {
            StateArg::Pending => StateFilter::Pending,
            StateArg::Held => StateFilter::Held,
            StateArg::Released => StateFilter::Released,
            StateArg::Cancelled => StateFilter::Cancelled,
            StateArg::Referred => StateFilter::Referred,
        }
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
///
/// A reader that stops reading early (`border-release orders list | head -1`) ends the command
/// quietly with exit code 0, as other command-line tools do: what it printed was all that was
/// wanted.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match run_command(cli) {
        Err(_) if stdout_closed() => Ok(ExitCode::SUCCESS),
        result => result,
    }
}

/// Standard output, noting when its reader has gone (a closed pipe), so that the command then
/// ends quietly instead of reporting the failed write.
struct Stdout(std::io::StdoutLock<'static>);

/// Whether a write to standard output found its reader gone.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn stdout() -> Stdout {
    Stdout(std::io::stdout().lock())
}

fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed)
}

impl Stdout {
    fn noted<T>(result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(error) = &result {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                STDOUT_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        result
    }
}

impl Write for Stdout {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        Stdout::noted(self.0.write(bytes))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Stdout::noted(self.0.flush())
    }
}

/// The outcome of printing a command's summary once its work is done: a reader gone does not
/// change the command's exit code (an import with rejected lines still exits 3).
fn printed(result: anyhow::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(_) if stdout_closed() => Ok(()),
        result => result,
    }
}

fn run_command(cli: Cli) -> anyhow::Result<ExitCode> {
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
    match cli.command {
        Command::CheckConfig => return check_config(&config, &clock),
        Command::Serve => bail!("serve is started by main"),
        Command::Store(StoreCommand::Restore { file }) => return restore(&config, &file),
        _ => {}
    }
    // Files an interrupted batch left unwritten are written before anything else; if they
    // cannot be, the command still runs (a batch refuses to).
    let warn = |error: operations::FilesError| {
        eprintln!(
            "warning: release logs left due by an earlier batch could not be written: {:#}",
            anyhow::Error::from(error)
        )
    };
    let mut store = match operations::open(&config, warn) {
        Ok(store) => store,
        // The daemon has the store, or keeps it where only it may read: the command goes
        // through the daemon.
        Err(locked @ (StoreError::Locked { .. } | StoreError::Io { .. }))
            if locked.is_locked_or_private() =>
        {
            let client = Client::new(&config.api, locked.to_string()).with_context(|| {
                format!("{locked}; so the command goes through the daemon's API")
            })?;
            return Daemon { client }.run(cli.command);
        }
        Err(error) => return Err(error).context("opening the store"),
    };
    Local {
        store: &mut store,
        config: &config,
        clock: &clock,
    }
    .run(cli.command)
}

/// A command run here, on the store.
struct Local<'a> {
    store: &'a mut Store,
    config: &'a Config,
    clock: &'a Clock,
}

impl Local<'_> {
    fn run(self, command: Command) -> anyhow::Result<ExitCode> {
        let Local {
            store,
            config,
            clock,
        } = self;
        let mut out = stdout();
        match command {
            Command::CheckConfig
            | Command::Serve
            | Command::Store(StoreCommand::Restore { .. }) => {
                unreachable!("handled before the store")
            }
            Command::CheckStore => check_result(operations::check_store(store, config)?),
            Command::Store(StoreCommand::Dump { file }) => {
                let counts = operations::dump_to_file(store, clock, &file)?;
                print_dumped(&file, &counts, &mut out)
            }
            Command::Items(ItemsCommand::Import { file }) => {
                import(store, config, &file, InputKind::Items)
            }
            Command::Duties(DutiesCommand::Import { file }) => {
                import(store, config, &file, InputKind::Duties)
            }
            Command::Duties(DutiesCommand::List(args)) => {
                let (day, rows) = operations::duty_rows(store, config, clock, args.day)?;
                print_duty_rows(day, &rows, args.json, &mut out)?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Stock(StockCommand::Receive { file }) => {
                import(store, config, &file, InputKind::Receipts)
            }
            Command::Stock(StockCommand::Count { file }) => {
                import(store, config, &file, InputKind::Counts)
            }
            Command::Stock(StockCommand::List(json)) => {
                for row in operations::stock_rows(store)? {
                    print_stock_row(&row, json.json, &mut out)?;
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Items(ItemsCommand::List(json)) => {
                for row in operations::item_rows(store)? {
                    print_item_row(&row, json.json, &mut out)?;
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Orders(OrdersCommand::Import { file }) => {
                import(store, config, &file, InputKind::Orders)
            }
            Command::Orders(OrdersCommand::Cancel { order_id }) => {
                print_cancel(&operations::cancel(store, &order_id)?, &mut out)
            }
            Command::Orders(OrdersCommand::Refer {
                order_ids,
                note,
                json,
            }) => {
                let doc = operations::refer(store, config, clock, &order_ids, note.as_deref())?;
                refer_result(&doc, json.json, &mut out)
            }
            Command::Orders(OrdersCommand::List { state, json }) => {
                if !json.json {
                    print_order_header(&mut out)?;
                }
                let filter = state.map(StateArg::filter);
                operations::for_each_order(store, config, clock, filter, |row| {
                    print_order_row(&row, json.json, &mut out)
                })?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Orders(OrdersCommand::Show { order_id, json }) => {
                match operations::order(store, config, clock, &order_id)? {
                    Some(doc) => print_order(&doc, json.json, &mut out),
                    None => bail!("order {order_id} is not known"),
                }
            }
            Command::Plan(args) => {
                let planned = operations::plan(store, config, clock, args.day)?;
                let summary = operations::summarise(&planned);
                if args.json {
                    // Streamed: a plan over a million orders is hundreds of megabytes of JSON.
                    let mut writer = std::io::BufWriter::with_capacity(1 << 20, out);
                    serde_json::to_writer(
                        &mut writer,
                        &PlanRecord::new(&planned, &summary, config),
                    )?;
                    writeln!(writer)?;
                    writer.flush()?;
                } else {
                    print_plan(&PlanDoc::new(&planned, summary, config), &mut out)?;
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Batch(args) => {
                let doc = operations::batch(store, config, clock, args.day, None)?;
                batch_result(&doc, args.json, &mut out)
            }
            Command::Releases(ReleasesCommand::Void {
                release_id,
                reason,
                json,
            }) => {
                let doc = operations::void_release(store, config, clock, &release_id, &reason)?;
                void_result(&doc, json.json, &mut out)
            }
            Command::Releases(ReleasesCommand::Write { day, json }) => {
                let doc = operations::write_releases(store, config, day)?;
                print_written(&doc, json.json, &mut out)
            }
        }
    }
}

/// A command sent to the daemon, which has the store.
struct Daemon {
    client: Client,
}

impl Daemon {
    fn run(self, command: Command) -> anyhow::Result<ExitCode> {
        let client = &self.client;
        let mut out = stdout();
        match command {
            Command::CheckConfig
            | Command::Serve
            | Command::Store(StoreCommand::Restore { .. }) => {
                unreachable!("handled before the store")
            }
            Command::CheckStore => check_result(client.json(client.get("/v1/store/check")?)?),
            Command::Store(StoreCommand::Dump { file }) => {
                let response = client.get("/v1/store/dump")?;
                let temporary = crate::files::write_temporary(&file, |writer| {
                    client
                        .copy_body(response, writer)
                        .map_err(std::io::Error::other)
                })
                .with_context(|| format!("writing {}", file.display()))?;
                // The daemon cuts its answer short when the dump fails: the end line says
                // the dump is whole.
                let counts = match dump_end(&temporary) {
                    Ok(counts) => counts,
                    Err(error) => {
                        let _ = std::fs::remove_file(&temporary);
                        return Err(error);
                    }
                };
                crate::files::rename_durably(&temporary, &file)
                    .with_context(|| format!("writing {}", file.display()))?;
                print_dumped(&file, &counts, &mut out)
            }
            Command::Items(ItemsCommand::Import { file }) => self.upload("/v1/items", &file),
            Command::Duties(DutiesCommand::Import { file }) => self.upload("/v1/duties", &file),
            Command::Duties(DutiesCommand::List(args)) => {
                let response = client.get(&day_path("/v1/duties", args.day))?;
                let day = response
                    .headers
                    .get(DAY_HEADER)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse().ok())
                    .context("the daemon's answer did not say its day")?;
                let body = client.body(response)?;
                let mut rows = Vec::new();
                for line in body.split(|byte| *byte == b'\n').filter(|l| !l.is_empty()) {
                    rows.push(
                        serde_json::from_slice(line)
                            .context("the daemon answered with unexpected JSON")?,
                    );
                }
                print_duty_rows(day, &rows, args.json, &mut out)?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Stock(StockCommand::Receive { file }) => {
                self.upload("/v1/stock/receive", &file)
            }
            Command::Stock(StockCommand::Count { file }) => self.upload("/v1/stock/count", &file),
            Command::Items(ItemsCommand::List(json)) => {
                let body = client.body(client.get("/v1/items")?)?;
                for line in body.split(|byte| *byte == b'\n').filter(|l| !l.is_empty()) {
                    let row: ItemRow = serde_json::from_slice(line)
                        .context("the daemon answered with unexpected JSON")?;
                    print_item_row(&row, json.json, &mut out)?;
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Stock(StockCommand::List(json)) => {
                let body = client.body(client.get("/v1/stock")?)?;
                for line in body.split(|byte| *byte == b'\n').filter(|l| !l.is_empty()) {
                    let row: StockRow = serde_json::from_slice(line)
                        .context("the daemon answered with unexpected JSON")?;
                    print_stock_row(&row, json.json, &mut out)?;
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Orders(OrdersCommand::Import { file }) => self.upload("/v1/orders", &file),
            Command::Orders(OrdersCommand::Cancel { order_id }) => {
                let path = format!("/v1/orders/{}/cancel", encode(&order_id));
                let response = client.send(Method::POST, &path, "text/plain", vec![])?;
                print_cancel(&client.json(response)?, &mut out)
            }
            Command::Orders(OrdersCommand::Refer {
                order_ids,
                note,
                json,
            }) => {
                let body = serde_json::json!({ "order_ids": order_ids, "note": note });
                let body = serde_json::to_vec(&body)?;
                let response =
                    client.send(Method::POST, "/v1/orders/refer", "application/json", body)?;
                refer_result(&client.json(response)?, json.json, &mut out)
            }
            Command::Orders(OrdersCommand::Show { order_id, json }) => {
                let path = format!("/v1/orders/{}", encode(&order_id));
                let doc: OrderDoc = client.json(client.get(&path)?)?;
                print_order(&doc, json.json, &mut out)
            }
            Command::Orders(OrdersCommand::List { state, json }) => {
                let path = match state {
                    Some(state) => format!("/v1/orders?state={}", state.filter().word()),
                    None => "/v1/orders".to_owned(),
                };
                let response = client.get(&path)?;
                if json.json {
                    client.copy_body(response, &mut out)?;
                } else {
                    print_order_header(&mut out)?;
                    let mut rows = RowPrinter {
                        out: &mut out,
                        pending: Vec::new(),
                    };
                    client.copy_body(response, &mut rows)?;
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Plan(args) => {
                let response = client.get(&day_path("/v1/plan", args.day))?;
                if args.json {
                    client.copy_body(response, &mut out)?;
                } else {
                    let doc: PlanDoc = client.json(response)?;
                    print_plan(&doc, &mut out)?;
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Batch(args) => {
                let response = client.send(
                    Method::POST,
                    &day_path("/v1/batch", args.day),
                    "text/plain",
                    vec![],
                )?;
                let doc: BatchDoc = client.json(response)?;
                batch_result(&doc, args.json, &mut out)
            }
            Command::Releases(ReleasesCommand::Void {
                release_id,
                reason,
                json,
            }) => {
                let path = format!("/v1/releases/{}/void", encode(&release_id));
                let body = serde_json::to_vec(&serde_json::json!({ "reason": reason }))?;
                let response = client.send(Method::POST, &path, "application/json", body)?;
                void_result(&client.json(response)?, json.json, &mut out)
            }
            Command::Releases(ReleasesCommand::Write { day, json }) => {
                let path = format!("/v1/releases/write?day={day}");
                let response = client.send(Method::POST, &path, "text/plain", vec![])?;
                print_written(&client.json(response)?, json.json, &mut out)
            }
        }
    }

    /// Sends an input file to the daemon, named as given here.
    fn upload(&self, path: &str, file: &Path) -> anyhow::Result<ExitCode> {
        let bytes = std::fs::read(file).map_err(|source| IntakeError::Read {
            file: file.to_owned(),
            source,
        })?;
        let name = file.to_string_lossy();
        let path = format!("{path}?name={}", encode(&name));
        let response = self
            .client
            .send(Method::POST, &path, "application/octet-stream", bytes)?;
        match response.status {
            StatusCode::OK | StatusCode::UNPROCESSABLE_ENTITY => {
                let status = response.status;
                let body = self.client.body(response)?;
                let report: IntakeReport = serde_json::from_slice(&body).with_context(|| {
                    format!("the daemon answered with unexpected JSON ({status})")
                })?;
                intake_result(report)
            }
            _ => Err(self.client.error(response)),
        }
    }
}

/// Percent-encodes a query or path value; a `/` too, so that an id holding one stays one
/// segment of the path.
fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn day_path(path: &str, day: Option<NaiveDate>) -> String {
    match day {
        Some(day) => format!("{path}?day={day}"),
        None => path.to_owned(),
    }
}

/// Prints `orders list` rows as they arrive as JSON lines.
struct RowPrinter<'a, W: Write> {
    out: &'a mut W,
    pending: Vec<u8>,
}

impl<W: Write> Write for RowPrinter<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let row: OrderRow = serde_json::from_slice(&line).map_err(std::io::Error::other)?;
            print_order_row(&row, false, self.out).map_err(std::io::Error::other)?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// `store restore`: run here, never through the daemon, which must be stopped.
fn restore(config: &Config, file: &Path) -> anyhow::Result<ExitCode> {
    let (counts, files) = match operations::restore(config, file) {
        Ok(restored) => restored,
        Err(locked) if locked.is_locked() => {
            bail!("{locked}: stop the daemon before restoring a dump")
        }
        Err(error) => return Err(error.into()),
    };
    let mut out = stdout();
    printed(
        writeln!(
            out,
            "{}: restored {} into {}",
            file.display(),
            dump_contents(&counts),
            config.paths.data.display()
        )
        .map_err(Into::into),
    )?;
    match files {
        Ok(days) => {
            printed(
                writeln!(
                    out,
                    "release files written for {}",
                    counted(days.len() as u64, "day")
                )
                .map_err(Into::into),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!(
                "warning: the release logs and manifests could not be written: {:#}\nevery later command tries again",
                anyhow::Error::from(error)
            );
            Ok(ExitCode::from(EXIT_FILES_DUE))
        }
    }
}

/// The counts on the end line of a dump file written through the daemon, which must have one.
fn dump_end(file: &Path) -> anyhow::Result<operations::DumpCounts> {
    use std::io::{Read, Seek, SeekFrom};
    let mut handle = std::fs::File::open(file)?;
    let length = handle.metadata()?.len();
    let tail_length = length.min(4096);
    handle.seek(SeekFrom::Start(length - tail_length))?;
    let mut tail = String::new();
    handle.read_to_string(&mut tail)?;
    let last = tail.trim_end().rsplit('\n').next().unwrap_or("");
    let end: serde_json::Value = serde_json::from_str(last).unwrap_or_default();
    if end["kind"] != "end" {
        bail!("the daemon's dump was cut short (no end line); see the daemon's log");
    }
    let count = |kind: &str| end[kind].as_u64().unwrap_or(0);
    Ok(operations::DumpCounts {
        items: count("items"),
        skus: count("skus"),
        orders: count("orders"),
        releases: count("releases"),
        lines: count("lines"),
    })
}

fn print_dumped(
    file: &Path,
    counts: &operations::DumpCounts,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    writeln!(
        out,
        "{}: {} ({} and the end line)",
        file.display(),
        dump_contents(counts),
        counted(counts.lines, "line")
    )?;
    Ok(ExitCode::SUCCESS)
}

/// What a dump holds, in words: `5 items, stock of 1 SKU, 1 order and 1 release`.
fn dump_contents(counts: &operations::DumpCounts) -> String {
    format!(
        "{}, stock of {}, {} and {}",
        counted(counts.items, "item"),
        counted(counts.skus, "SKU"),
        counted(counts.orders, "order"),
        counted(counts.releases, "release"),
    )
}

/// The audit's summary line goes to standard output, and the violations, if any, to standard
/// error.
fn check_result(doc: CheckDoc) -> anyhow::Result<ExitCode> {
    let (summary, violations) = doc.report.split_once('\n').unwrap_or((&doc.report, ""));
    printed(writeln!(stdout(), "{summary}").map_err(Into::into))?;
    if !violations.is_empty() {
        eprintln!("{violations}");
    }
    Ok(if doc.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_stock_row(row: &StockRow, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    if json {
        // The contract's two fields; the API's rows have the whole level.
        #[derive(serde::Serialize)]
        struct Json<'a> {
            sku: &'a str,
            on_hand: i64,
        }
        let json = Json {
            sku: &row.sku,
            on_hand: row.on_hand,
        };
        writeln!(out, "{}", serde_json::to_string(&json)?)?;
    } else {
        writeln!(
            out,
            "{:<24} on hand {:>10}  (received {}, adjusted {}, released {})",
            row.sku,
            row.on_hand,
            row.received,
            // Signed, as a stock controller reads an adjustment: +2, -13, 0.
            if row.adjusted == 0 {
                "0".to_owned()
            } else {
                format!("{:+}", row.adjusted)
            },
            row.released
        )?;
    }
    Ok(())
}

/// The duty rows in force on `day`: JSON Lines, or a table under a line naming the day.
fn print_duty_rows(
    day: NaiveDate,
    rows: &[DutyRow],
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if json {
        for row in rows {
            writeln!(out, "{}", serde_json::to_string(row)?)?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "duty rates in force on {day}: {}",
        counted(rows.len() as u64, "row")
    )?;
    if rows.is_empty() {
        writeln!(
            out,
            "no rates: every release's duty is unknown until `duties import` brings some"
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<10} {:<6} {:<20} {:>8}  {:<10} {:<12} source",
        "hts_prefix", "origin", "program", "rate_%", "from", "usmca_exempt"
    )?;
    for row in rows {
        writeln!(
            out,
            "{:<10} {:<6} {:<20} {:>8}  {:<10} {:<12} {}",
            row.hts_prefix,
            row.origin,
            row.program,
            row.rate_percent,
            row.from,
            if row.usmca_exempt { "yes" } else { "no" },
            row.source
        )?;
    }
    Ok(())
}

fn print_item_row(row: &ItemRow, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(row)?)?;
    } else {
        let flags = if row.flags.is_empty() {
            "-".to_owned()
        } else {
            row.flags.join(",")
        };
        writeln!(
            out,
            "{:<24} {:<14} {:<3} {:<16} {}",
            row.sku, row.hts, row.origin, flags, row.description
        )?;
    }
    Ok(())
}

fn print_order_header(out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<24} {:<10} {:<18} {:>12}  reason",
        "order", "state", "release", "value_usd"
    )?;
    Ok(())
}

fn print_order_row(row: &OrderRow, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(row)?)?;
    } else {
        writeln!(
            out,
            "{:<24} {:<10} {:<18} {:>12}  {}",
            row.order_id,
            row.state,
            row.release_id.as_deref().unwrap_or("-"),
            row.value_usd.as_deref().unwrap_or("-"),
            row.explanation.as_deref().unwrap_or("-"),
        )?;
    }
    Ok(())
}

/// `orders show`.
fn print_order(doc: &OrderDoc, json: bool, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    if json {
        writeln!(out, "{}", serde_json::to_string(doc)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let row = &doc.row;
    match &row.explanation {
        Some(explanation) => writeln!(out, "order {}: {}, {explanation}", row.order_id, row.state)?,
        None => writeln!(out, "order {}: {}", row.order_id, row.state)?,
    }
    if let (Some(release_id), Some(day)) = (&row.release_id, &row.day) {
        writeln!(out, "  release:   {release_id} on {day}")?;
    }
    writeln!(out, "  placed at: {}", row.placed_at)?;
    let who = &row.consignee;
    let address = &who.address;
    let customer = who
        .customer_id
        .as_ref()
        .map(|id| format!(" (customer {id})"))
        .unwrap_or_default();
    writeln!(out, "  recipient: {}{customer}", who.name)?;
    writeln!(out, "             {}", address.line1)?;
    if let Some(line2) = &address.line2 {
        writeln!(out, "             {line2}")?;
    }
    writeln!(
        out,
        "             {}, {} {} {}",
        address.city, address.state, address.postal_code, address.country
    )?;
    let (rate, basis) = (doc.rate_words(), doc.value_basis());
    match &row.value_usd {
        Some(value) => writeln!(out, "  value:     {value} USD{basis}{rate}")?,
        None => writeln!(out, "  value:     -{rate}")?,
    }
    // An open order is estimated from today's tables; a released one as its release was.
    let estimated = doc.duty_estimated;
    match &doc.duty_usd {
        Some(duty) => writeln!(out, "  duty:      {duty} USD ({})", doc.duty_source())?,
        None if estimated => writeln!(
            out,
            "  duty:      unknown (a line's item has no mfn rate in the duty tables)"
        )?,
        None => {}
    }
    writeln!(out, "  lines:")?;
    for line in &doc.lines {
        writeln!(
            out,
            "    {:<20} {:>5} x {:>10} {}  = {:>12}",
            line.sku,
            line.qty,
            line.unit_price,
            doc.currency,
            match &line.value_usd {
                Some(value) => format!("{value} USD"),
                None => "-".to_owned(),
            }
        )?;
        if estimated {
            let programs: Vec<String> = line
                .duties
                .iter()
                .map(|duty| format!("{} {} % {}", duty.program, duty.rate_percent, duty.usd))
                .collect();
            writeln!(
                out,
                "      duty {}: {}",
                line.duty_usd.as_deref().unwrap_or("unknown"),
                if programs.is_empty() {
                    "no program applies".to_owned()
                } else {
                    programs.join(", ")
                }
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_cancel(doc: &CancelDoc, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    if doc.cancelled {
        writeln!(out, "order {} cancelled", doc.order_id)?;
    } else {
        writeln!(out, "order {} was already cancelled", doc.order_id)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn batch_result(doc: &BatchDoc, json: bool, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    if json {
        printed(writeln!(out, "{}", serde_json::to_string(doc)?).map_err(Into::into))?;
    } else {
        printed(print_summary(doc, out))?;
    }
    match &doc.files_error {
        None => Ok(ExitCode::SUCCESS),
        Some(error) => {
            eprintln!(
                "warning: the batch is committed, but its release log and manifest could not be written: {error}\nevery later command tries again; check-store reports the day until they are written"
            );
            Ok(ExitCode::from(EXIT_FILES_DUE))
        }
    }
}

fn void_result(doc: &VoidDoc, json: bool, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    if json {
        writeln!(out, "{}", serde_json::to_string(doc)?)?;
    } else {
        writeln!(
            out,
            "release {} of {} voided: {}",
            doc.release_id, doc.day, doc.reason
        )?;
        writeln!(
            out,
            "  back to pending: {} ({})",
            counted(doc.orders.len() as u64, "order"),
            doc.orders.join(", ")
        )?;
        match doc.last_day {
            Some(last) => writeln!(out, "  last day batched: {last}")?,
            None => writeln!(out, "  no day counts as batched")?,
        }
        writeln!(out, "  voids:    {}", doc.voids.display())?;
        writeln!(out, "  manifest: {} (without it)", doc.manifest.display())?;
    }
    match &doc.files_error {
        None => Ok(ExitCode::SUCCESS),
        Some(error) => {
            eprintln!(
                "warning: the void is committed, but the day's files could not be written: {error}\nevery later command tries again; `releases write --day {}` writes them now",
                doc.day
            );
            Ok(ExitCode::from(EXIT_FILES_DUE))
        }
    }
}

fn refer_result(doc: &ReferDoc, json: bool, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    if json {
        writeln!(out, "{}", serde_json::to_string(doc)?)?;
    } else {
        writeln!(
            out,
            "{} referred to a formal entry on {}:",
            counted(doc.orders.len() as u64, "order"),
            doc.day
        )?;
        for order in &doc.orders {
            writeln!(
                out,
                "  {} ({}, {} USD)",
                order.order_id,
                order.reason,
                Usd(order.value_usd)
            )?;
        }
        if !doc.note.is_empty() {
            writeln!(out, "  note: {}", doc.note)?;
        }
        writeln!(out, "  referrals: {}", doc.jsonl.display())?;
        writeln!(out, "             {}", doc.csv.display())?;
    }
    match &doc.files_error {
        None => Ok(ExitCode::SUCCESS),
        Some(error) => {
            eprintln!(
                "warning: the referral is committed, but the day's referral files could not be written: {error}\n`releases write --day {}` writes them again",
                doc.day
            );
            Ok(ExitCode::from(EXIT_FILES_DUE))
        }
    }
}

fn print_written(doc: &WrittenDoc, json: bool, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    if json {
        writeln!(out, "{}", serde_json::to_string(doc)?)?;
    } else if doc.referrals == 0 {
        writeln!(
            out,
            "{}: {} and {} written from the store:",
            doc.day,
            counted(doc.releases as u64, "release"),
            counted(doc.voids as u64, "void")
        )?;
    } else {
        writeln!(
            out,
            "{}: {}, {} and {} written from the store:",
            doc.day,
            counted(doc.releases as u64, "release"),
            counted(doc.voids as u64, "void"),
            counted(doc.referrals as u64, "referral")
        )?;
    }
    if !json {
        for file in &doc.files {
            writeln!(out, "  {}", file.display())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn check_config(config: &Config, clock: &Clock) -> anyhow::Result<ExitCode> {
    if let Err(problems) = operations::check_config(config, clock) {
        eprintln!("{problems}");
        return Ok(ExitCode::FAILURE);
    }
    let policies = config.timeline.policies();
    let mut out = stdout();
    writeln!(out, "{}: ok", config.file.display())?;
    writeln!(
        out,
        "warehouse {} in {}",
        config.warehouse.name, config.warehouse.timezone
    )?;
    writeln!(
        out,
        "store {}; logs {}; spool {}",
        config.paths.data.display(),
        config.paths.logs.display(),
        config.paths.spool.display()
    )?;
    let entry = &config.entry;
    if let (Some(name), Some(number)) = (&entry.importer_name, &entry.importer_number) {
        writeln!(out, "importer of record {name} ({number})")?;
    }
    if let (Some(name), Some(address)) = (&entry.shipper_name, &entry.shipper_address) {
        writeln!(out, "shipper {name}, {address}")?;
    }
    for policy in policies {
        writeln!(
            out,
            "policy {} from {}: lane {}, at most {} USD and {} per recipient per day",
            policy.name,
            policy.from,
            policy.lane,
            Usd(policy.value_limit_usd),
            counted(policy.releases_per_recipient_per_day.into(), "release")
        )?;
        let filing = &policy.filing;
        writeln!(
            out,
            "  filed as entry type {}: HTS codes of at least {} digits, {}, {} refused",
            filing.entry_type,
            filing.min_hts_digits,
            if filing.require_mid {
                "a MID on every item"
            } else {
                "no MID required"
            },
            counted(filing.vague_descriptions.len() as u64, "vague description")
        )?;
    }
    for fee in &config.fees {
        if fee.per_release_usd.is_zero() {
            writeln!(out, "fee {} ends {} for {}", fee.name, fee.from, fee.lane)?;
            continue;
        }
        writeln!(
            out,
            "fee {} from {}: {} USD per {} release{}",
            fee.name,
            fee.from,
            Usd(fee.per_release_usd),
            fee.lane,
            if fee.usmca_exempt {
                ", none when every line claims USMCA"
            } else {
                ""
            }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Takes in a file of a kind here, on the store.
fn import(
    store: &mut Store,
    config: &Config,
    file: &Path,
    kind: InputKind,
) -> anyhow::Result<ExitCode> {
    intake_result(operations::import(
        store,
        config,
        Source::File(file),
        kind,
        None,
    )?)
}

/// The summary goes to standard output whatever the outcome, so that `> report.txt` keeps it;
/// the rejected lines go to standard error.
fn intake_result(report: IntakeReport) -> anyhow::Result<ExitCode> {
    printed(writeln!(stdout(), "{}", report.summary()).map_err(Into::into))?;
    if report.rejected.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    // A line per rejected input line, which may be millions: buffered, since standard error
    // is not.
    let mut err = std::io::BufWriter::with_capacity(1 << 16, std::io::stderr().lock());
    for rejection in &report.rejected {
        writeln!(err, "{}:{rejection}", report.file.display())?;
    }
    err.flush()?;
    Ok(ExitCode::from(EXIT_REJECTED))
}

fn print_plan(doc: &PlanDoc, out: &mut impl Write) -> anyhow::Result<()> {
    let summary = &doc.summary;
    if summary.past {
        writeln!(
            out,
            "{} was batched and is past: what it released (nothing is changed):",
            summary.day
        )?;
    } else {
        writeln!(out, "plan for {} (nothing is changed):", summary.day)?;
    }
    write_counts(summary, out)?;
    for release in &doc.releases {
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
    write_verdicts(&doc.held, &doc.waiting, out)
}

/// `SO-1 held: over-limit (...)`, `SO-2 waits: stock (GUITAR: 1 needed, 0 on hand)`.
fn write_verdicts(
    held: &[VerdictRow],
    waiting: &[VerdictRow],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let text = |row: &VerdictRow| {
        if row.explanation.is_empty() {
            row.reason.clone()
        } else {
            row.explanation.clone()
        }
    };
    for row in held {
        writeln!(out, "  {} held: {}", row.order_id, text(row))?;
    }
    for row in waiting {
        writeln!(out, "  {} waits: {}", row.order_id, text(row))?;
    }
    Ok(())
}

fn write_counts(summary: &Summary, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "  policy {} (lane {}, at most {} USD per recipient per day)",
        summary.policy,
        summary.lane,
        Usd(summary.value_limit_usd)
    )?;
    if summary.releases_before > 0 {
        writeln!(
            out,
            "  earlier waves today: {}",
            counted(summary.releases_before.into(), "release")
        )?;
    }
    writeln!(
        out,
        "  releases: {} ({}, {} USD)",
        summary.releases,
        counted(summary.orders_released as u64, "order"),
        Usd(summary.value_usd)
    )?;
    if summary.releases > 0 {
        let unknown = if summary.unknown_duty_lines > 0 {
            format!(
                ", and {} of unknown duty",
                counted(summary.unknown_duty_lines, "line")
            )
        } else {
            String::new()
        };
        writeln!(
            out,
            "  estimated duty {} USD and fees {} USD{unknown}",
            Usd(summary.duty_usd),
            Usd(summary.fees_usd)
        )?;
    }
    if summary.past {
        return Ok(());
    }
    writeln!(out, "  held: {}", counts(&summary.held))?;
    writeln!(out, "  waiting: {}", counts(&summary.waiting))?;
    writeln!(
        out,
        "  not yet due (placed after the cutoff): {}",
        summary.not_due
    )?;
    Ok(())
}

fn counts(counts: &std::collections::BTreeMap<String, usize>) -> String {
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

fn print_summary(doc: &BatchDoc, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "batch for {} committed:", doc.summary.day)?;
    write_counts(&doc.summary, out)?;
    write_verdicts(&doc.held_first, &doc.waiting_first, out)?;
    let summary = &doc.summary;
    let more = |shown: usize, counts: &std::collections::BTreeMap<String, usize>| {
        counts.values().sum::<usize>().saturating_sub(shown)
    };
    let (held_more, waiting_more) = (
        more(doc.held_first.len(), &summary.held),
        more(doc.waiting_first.len(), &summary.waiting),
    );
    if held_more + waiting_more > 0 {
        writeln!(
            out,
            "  ... and {held_more} more held, {waiting_more} more waiting: `orders list --state held` and `--state pending` list them all"
        )?;
    }
    writeln!(out, "  release log: {}", doc.release_log.display())?;
    writeln!(out, "  manifest:    {}", doc.manifest.display())?;
    writeln!(out, "  summary:     {}", doc.release_summary.display())?;
    Ok(())
}
