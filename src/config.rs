//! The configuration: reads the TOML file and the `BORDER_RELEASE__*` environment overrides, and
//! validates them into a typed [`Config`].
//!
//! This is the only module that knows TOML and the `config` crate.
//! It parses twice: first into a generic tree (`config::Value`, file and overrides merged), then
//! field by field into typed values (`Tz`, `NaiveTime`, `Decimal`, resolved paths, the policy
//! [`Timeline`]), collecting every problem with its key, so an operator fixes the file in one go.
//! It never creates the folders it names, never reads the API token file (it only says where it
//! is), and never reads the clock.
//!
//! **Overrides.** `BORDER_RELEASE__PATHS__DATA=/x` sets `paths.data`; a level of digits picks an
//! array entry (`BORDER_RELEASE__POLICY__0__VALUE_LIMIT_USD=2500` sets `policy[0]`); a list is
//! given comma-separated (`BORDER_RELEASE__POLICY__1__EXCLUDED_ORIGINS=CN,HK`).
//! Overrides are strings, so a whole number may be written as a string (`"2"`) in the file too.
//! A problem with an overridden value says so.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use ::config::{Environment, File, FileFormat, Map, Source, Value, ValueKind};
use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use crate::duties::FeeRule;
use crate::identity::IdentityRule;
use crate::model::ItemFlag;
use crate::money::{Rate, Rates, USD};
use crate::policy::{description_key, hts_digits, Filing, Lane, Policy, Timeline};

/// Where the binary looks for the config unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/border-release/border-release.toml";

/// Environment variables `BORDER_RELEASE__SECTION__KEY` override `section.key` of the file.
/// [`CONFIG_PATH_ENV`] (one underscore) names the file and is not an override.
pub const ENV_PREFIX: &str = "BORDER_RELEASE";

/// The environment variable that names the config file (read by the command line, not here).
pub const CONFIG_PATH_ENV: &str = "BORDER_RELEASE_CONFIG";

/// Separates the prefix and the levels of an override's name.
/// Keys are snake_case, so a single `_` would split them.
/// A level made of digits picks an entry of an array: `BORDER_RELEASE__POLICY__0__VALUE_LIMIT_USD`.
pub const ENV_SEPARATOR: &str = "__";

pub const DEFAULT_DATA: &str = "/var/lib/border-release";
pub const DEFAULT_LOGS: &str = "/var/log/border-release";
pub const DEFAULT_SPOOL: &str = "/var/spool/border-release";
pub const DEFAULT_BATCH: &str = "0 0 6 * * *";
pub const DEFAULT_CUTOFF: &str = "06:00";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8321";
pub const DEFAULT_TOKEN_FILE: &str = "/etc/border-release/api-token";

/// A value limit is in US dollars: cents at most.
pub const VALUE_LIMIT_PLACES_MAX: u32 = 2;
/// Certified rates have a few decimal places; ten is far more than any of them.
pub const RATE_PLACES_MAX: u32 = 10;

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The absolute path of the file read.
    pub file: PathBuf,
    pub warehouse: Warehouse,
    pub paths: Paths,
    pub schedule: Schedule,
    /// Whose orders share a daily limit (`[recipients] identity`).
    pub identity: IdentityRule,
    pub api: Api,
    /// `[release_files]`: how the release files are written.
    pub release_files: ReleaseFiles,
    /// `[entry]`: the parties an entry names besides the consignee.
    pub entry: EntryParties,
    /// `[log]`: how the daemon writes its own log.
    pub log: Log,
    /// `[[currency.rates]]`; empty when the section is absent (then only US dollars can be valued).
    pub rates: Rates,
    /// `[[policy]]`, at least one.
    pub timeline: Timeline,
    /// `[[fees]]`: what each release owes besides duties, dated; empty when the config gives none.
    pub fees: Vec<FeeRule>,
}

/// `[entry]`: the importer of record and the shipper an entry names besides the consignee;
/// each `None` when the config does not give it. An informal entry needs all four
/// (`check-config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryParties {
    pub importer_name: Option<String>,
    pub importer_number: Option<String>,
    pub shipper_name: Option<String>,
    pub shipper_address: Option<String>,
}

impl EntryParties {
    /// The keys of the parties the config does not give.
    pub fn missing(&self) -> Vec<&'static str> {
        [
            ("entry.importer_name", self.importer_name.is_none()),
            ("entry.importer_number", self.importer_number.is_none()),
            ("entry.shipper_name", self.shipper_name.is_none()),
            ("entry.shipper_address", self.shipper_address.is_none()),
        ]
        .into_iter()
        .filter(|(_, missing)| *missing)
        .map(|(key, _)| key)
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warehouse {
    pub name: String,
    /// The port's IANA time zone: release days and the schedule are in it.
    pub timezone: Tz,
}

/// All absolute: relative ones in the file are resolved against the config file's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The store.
    pub data: PathBuf,
    /// Release logs and broker manifests.
    pub logs: PathBuf,
    /// `inbox/`, `done/` and `rejected/`.
    pub spool: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// A cron expression of 6 fields, seconds first, in the warehouse time zone; known to parse.
    pub batch: String,
    /// Orders placed before this local time join that day's batch.
    pub cutoff: NaiveTime,
    /// How many days after today `batch --day` may run for (0: today only).
    pub max_days_ahead: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    pub listen: Listen,
    /// Where the token is; it need not exist when the config is read.
    pub token_file: PathBuf,
}

/// `[release_files]`: how the release files in `<paths.logs>/releases/` are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseFiles {
    /// Whether the CSV files (the manifest and the release summary) start with a UTF-8
    /// byte-order mark, without which Excel reads them in the machine's legacy code page and
    /// garbles accented names.
    pub csv_bom: bool,
}

impl Default for ReleaseFiles {
    fn default() -> ReleaseFiles {
        ReleaseFiles { csv_bom: true }
    }
}

/// `[log]`: the daemon's own log (not the release logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    pub format: LogFormat,
    /// A `tracing` filter: a level (`info`), or directives (`info,border_release=debug`).
    pub level: String,
}

/// Where and how the daemon's log goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// The journal when started by systemd with its output to the journal, else `text`.
    Auto,
    /// Readable lines on standard error.
    Text,
    /// One JSON object per line on standard error.
    Json,
    /// The systemd journal, with structured fields.
    Journald,
}

impl LogFormat {
    pub const ALL: [LogFormat; 4] = [
        LogFormat::Auto,
        LogFormat::Text,
        LogFormat::Json,
        LogFormat::Journald,
    ];

    pub fn word(self) -> &'static str {
        match self {
            LogFormat::Auto => "auto",
            LogFormat::Text => "text",
            LogFormat::Json => "json",
            LogFormat::Journald => "journald",
        }
    }
}

/// Where the API listens: `"127.0.0.1:8321"` or `"unix:/run/border-release/api.sock"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Tcp(address) => write!(f, "{address}"),
            Listen::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// One thing wrong with the config, at a key such as `policy[2].value_limit_usd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{}: cannot read the config file: {source}", .file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("{}: not valid TOML: {message}", .file.display())]
    Syntax { file: PathBuf, message: String },
    /// The file is TOML but its content is wrong: every problem found, all at once.
    #[error("{}", invalid_report(.file, .problems))]
    Invalid {
        file: PathBuf,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The config file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            ConfigError::Read { file, .. }
            | ConfigError::Syntax { file, .. }
            | ConfigError::Invalid { file, .. } => file,
        }
    }
}

/// Reads the config file at `path` and the process environment's `BORDER_RELEASE__*` overrides.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let mut env = Vec::new();
    let mut env_problems = Vec::new();
    for (name, value) in std::env::vars_os() {
        // A name that is not Unicode cannot start with the prefix.
        let Some(name) = name.to_str() else { continue };
        if !is_override(name) {
            continue;
        }
        match value.into_string() {
            Ok(value) => env.push((name.to_owned(), value)),
            Err(_) => env_problems.push(Problem {
                key: name.to_owned(),
                message: "the environment variable's value is not valid UTF-8".into(),
            }),
        }
    }
    load_from(path, &env, env_problems)
}

/// Like [`load`], with `env` (name, value) standing in for the process environment.
/// Variables without the `BORDER_RELEASE__` prefix are ignored.
pub fn load_with_env(path: &Path, env: &[(String, String)]) -> Result<Config, ConfigError> {
    load_from(path, env, Vec::new())
}

fn load_from(
    path: &Path,
    env: &[(String, String)],
    env_problems: Vec<Problem>,
) -> Result<Config, ConfigError> {
    let file = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let bytes = std::fs::read(&file).map_err(|source| ConfigError::Read {
        file: file.clone(),
        source,
    })?;
    let Ok(text) = String::from_utf8(bytes) else {
        return Err(ConfigError::Syntax {
            file,
            message: "not UTF-8 text (a TOML file is UTF-8)".into(),
        });
    };
    let tree = match raw_tree(&text, env) {
        Ok(tree) => tree,
        Err(message) => return Err(ConfigError::Syntax { file, message }),
    };
    let folder = config_folder(&file);
    let mut check = Check {
        folder: &folder,
        problems: env_problems,
    };
    let config = check.config(&file, &tree);
    match config {
        Some(config) if check.problems.is_empty() => Ok(config),
        _ => Err(ConfigError::Invalid {
            file,
            problems: check.problems,
        }),
    }
}

/// The first parse: the file and the overrides merged into one generic tree.
fn raw_tree(text: &str, env: &[(String, String)]) -> Result<Map<String, Value>, String> {
    let overrides: Map<String, String> = env
        .iter()
        .filter(|(name, _)| is_override(name))
        .map(|(name, value)| (with_indexes(name), value.clone()))
        .collect();
    let merged = ::config::Config::builder()
        .add_source(File::from_str(text, FileFormat::Toml))
        .add_source(environment(overrides))
        .build()
        .map_err(|error| match error {
            ::config::ConfigError::FileParse { cause, .. } => {
                cause.to_string().trim_end().to_owned()
            }
            other => other.to_string(),
        })?;
    merged.collect().map_err(|error| error.to_string())
}

/// The `config` crate's source for the overrides.
/// With a separator and no prefix separator, the prefix is followed by the separator too
/// (`BORDER_RELEASE__`), so `BORDER_RELEASE_CONFIG` is not taken.
/// Overrides stay strings (no `try_parsing`): the second parse reads numbers out of strings where
/// a number is expected, and money never goes through a float.
fn environment(overrides: Map<String, String>) -> Environment {
    Environment::with_prefix(ENV_PREFIX)
        .separator(ENV_SEPARATOR)
        .source(Some(overrides))
}

/// Whether an environment variable is an override. The `config` crate matches the prefix
/// without regard to case; so does this.
fn is_override(name: &str) -> bool {
    let prefix = format!("{ENV_PREFIX}{ENV_SEPARATOR}");
    // Compared as bytes: the name may have a multi-byte character where the prefix ends.
    let name = name.as_bytes();
    name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Rewrites levels made of digits as subscripts (`POLICY__0__NAME` to `POLICY[0]__NAME`), so
/// that the `config` crate sets one entry of the array instead of replacing the array with a
/// table whose key is `0`.
fn with_indexes(name: &str) -> String {
    let prefix_len = ENV_PREFIX.len() + ENV_SEPARATOR.len();
    let mut out = name[..prefix_len].to_owned();
    for (level, segment) in name[prefix_len..].split(ENV_SEPARATOR).enumerate() {
        let is_index = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
        if level > 0 && is_index {
            out.push('[');
            out.push_str(segment);
            out.push(']');
        } else {
            if level > 0 {
                out.push_str(ENV_SEPARATOR);
            }
            out.push_str(segment);
        }
    }
    out
}

/// The folder relative paths resolve against. Canonical (no symlinks), so that a leading `..`
/// can be resolved lexically and still mean what the kernel would make of it.
fn config_folder(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new("/"));
    parent
        .canonicalize()
        .unwrap_or_else(|_| parent.to_path_buf())
}

/// `path` as written if absolute, else joined to `folder` with its leading `.` and `..` resolved.
fn resolve(folder: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let mut out = folder.to_path_buf();
    let mut components = path.components().peekable();
    while let Some(component) = components.peek() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            _ => break,
        }
        components.next();
    }
    out.extend(components);
    out
}

fn invalid_report(file: &Path, problems: &[Problem]) -> String {
    let count = problems.len();
    let noun = if count == 1 { "problem" } else { "problems" };
    let mut report = format!("{}: {count} {noun}", file.display());
    for problem in problems {
        report.push_str(&format!("\n  {problem}"));
    }
    report
}

const SECTIONS: &[&str] = &[
    "warehouse",
    "paths",
    "schedule",
    "recipients",
    "api",
    "release_files",
    "entry",
    "log",
    "currency",
    "policy",
    "fees",
];
const FEE_KEYS: &[&str] = &["name", "from", "lane", "per_release_usd", "usmca_exempt"];
/// The most decimal places of a fee.
const FEE_PLACES_MAX: u32 = 2;
const RELEASE_FILES_KEYS: &[&str] = &["csv_bom"];
const ENTRY_KEYS: &[&str] = &[
    "importer_name",
    "importer_number",
    "shipper_name",
    "shipper_address",
];

/// The longest importer number: an IRS number with its suffix (`12-3456789AB`), a CBP-assigned
/// number (`260615-12345`) and their like.
const IMPORTER_NUMBER_CHARS_MAX: usize = 20;
const LOG_KEYS: &[&str] = &["format", "level"];
const WAREHOUSE_KEYS: &[&str] = &["name", "timezone"];
const PATHS_KEYS: &[&str] = &["data", "logs", "spool"];
const SCHEDULE_KEYS: &[&str] = &["batch", "cutoff", "max_days_ahead"];

/// `schedule.max_days_ahead` when the config does not set it: tomorrow may be batched.
pub const DEFAULT_MAX_DAYS_AHEAD: u32 = 1;

/// The most `schedule.max_days_ahead` may be.
const MAX_DAYS_AHEAD_LIMIT: i64 = 366;
const RECIPIENTS_KEYS: &[&str] = &["identity"];
const API_KEYS: &[&str] = &["listen", "token_file"];
const CURRENCY_KEYS: &[&str] = &["rates"];
const RATE_KEYS: &[&str] = &["currency", "from", "usd"];
const POLICY_KEYS: &[&str] = &[
    "name",
    "from",
    "lane",
    "value_limit_usd",
    "releases_per_recipient_per_day",
    "excluded_origins",
    "excluded_hts_prefixes",
    "excluded_flags",
    "entry_type",
    "min_hts_digits",
    "require_mid",
    "vague_descriptions",
];

/// The origin the `config` crate gives to values from the environment.
const ENV_ORIGIN: &str = "the environment";

const MONEY_FLOAT: &str =
    "money is written as a quoted decimal string, e.g. \"800\"; a float loses digits";

/// The second parse: every field of the tree checked and typed, every problem kept.
struct Check<'a> {
    folder: &'a Path,
    problems: Vec<Problem>,
}

/// One table of the tree, its unknown keys already reported.
struct Table<'v> {
    key: String,
    /// `None` if the table is absent or is not a table.
    entries: Option<&'v Map<String, Value>>,
    /// It is something else than a table, already reported: its keys are not reported missing.
    misfit: bool,
}

impl<'v> Table<'v> {
    fn get(&self, name: &str) -> Option<&'v Value> {
        self.entries?.get(name)
    }

    fn key(&self, name: &str) -> String {
        if self.key.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.key)
        }
    }
}

impl Check<'_> {
    fn config(&mut self, file: &Path, tree: &Map<String, Value>) -> Option<Config> {
        let root = Table {
            key: String::new(),
            entries: Some(tree),
            misfit: false,
        };
        self.unknown_keys(&root, SECTIONS);
        let warehouse = self.warehouse(&root);
        let paths = self.paths(&root);
        let schedule = self.schedule(&root);
        let identity = self.recipients(&root);
        let api = self.api(&root);
        let release_files = self.release_files(&root);
        let entry = self.entry(&root);
        let log = self.log(&root);
        let rates = self.rates(&root);
        let timeline = self.timeline(&root);
        let fees = self.fees(&root);
        Some(Config {
            file: file.to_path_buf(),
            warehouse: warehouse?,
            paths: paths?,
            schedule: schedule?,
            identity: identity?,
            api: api?,
            release_files: release_files?,
            entry: entry?,
            log: log?,
            rates: rates?,
            timeline: timeline?,
            fees: fees?,
        })
    }

    /// `[[fees]]`: each fee's name, first day, lane, amount per release (0 ends the fee of that
    /// name from its day) and whether releases of USMCA goods only are spared it.
    fn fees(&mut self, root: &Table) -> Option<Vec<FeeRule>> {
        let Some(value) = root.get("fees") else {
            return Some(Vec::new());
        };
        let entries = self.array("fees", value, "an array of tables ([[fees]])")?;
        let mut fees = Vec::with_capacity(entries.len());
        let mut all_valid = true;
        // (name, lane, from) to the entry that has it first.
        let mut seen: HashMap<(String, String, NaiveDate), String> = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let key = format!("fees[{index}]");
            let Some(fee) = self.fee(&key, entry) else {
                all_valid = false;
                continue;
            };
            let at = (fee.name.clone(), fee.lane.clone(), fee.from);
            if let Some(first) = seen.get(&at) {
                let message = format!(
                    "{} already has an amount for {} from {} ({first})",
                    fee.name, fee.lane, fee.from
                );
                self.problem(&format!("{key}.from"), entry_field(entry, "from"), message);
                all_valid = false;
                continue;
            }
            seen.insert(at, key);
            fees.push(fee);
        }
        all_valid.then_some(fees)
    }

    fn fee(&mut self, key: &str, value: &Value) -> Option<FeeRule> {
        let table = self.entry_table(key, value, "a table ([[fees]])", FEE_KEYS)?;
        let name = self.required_field(&table, "name", Self::text);
        let from = self.required_field(&table, "from", Self::date);
        let lane = self.required_field(&table, "lane", Self::lane);
        let per_release_usd = self.required(&table, "per_release_usd").and_then(|v| {
            let zero = match &v.kind {
                ValueKind::String(text) => Decimal::from_str(text.trim()).ok(),
                ValueKind::I64(number) => Some(Decimal::from(*number)),
                _ => None,
            }
            .is_some_and(|amount| amount.is_zero());
            if zero {
                Some(Decimal::ZERO)
            } else {
                self.money(&table.key("per_release_usd"), v, FEE_PLACES_MAX)
            }
        });
        let usmca_exempt = match table.get("usmca_exempt") {
            None => Some(false),
            Some(v) => self.boolean(&table.key("usmca_exempt"), v),
        };
        Some(FeeRule {
            name: name?,
            from: from?,
            lane: lane?,
            per_release_usd: per_release_usd?,
            usmca_exempt: usmca_exempt?,
        })
    }

    fn warehouse(&mut self, root: &Table) -> Option<Warehouse> {
        let table = self.table(root, "warehouse", WAREHOUSE_KEYS);
        let name = self
            .required(&table, "name")
            .and_then(|v| self.text(&table.key("name"), v));
        let timezone = self
            .required(&table, "timezone")
            .and_then(|v| self.timezone(&table.key("timezone"), v));
        Some(Warehouse {
            name: name?,
            timezone: timezone?,
        })
    }

    fn paths(&mut self, root: &Table) -> Option<Paths> {
        let table = self.table(root, "paths", PATHS_KEYS);
        let data = self.path(&table, "data", DEFAULT_DATA);
        let logs = self.path(&table, "logs", DEFAULT_LOGS);
        let spool = self.path(&table, "spool", DEFAULT_SPOOL);
        Some(Paths {
            data: data?,
            logs: logs?,
            spool: spool?,
        })
    }

    fn schedule(&mut self, root: &Table) -> Option<Schedule> {
        let table = self.table(root, "schedule", SCHEDULE_KEYS);
        let batch = match table.get("batch") {
            None => Some(DEFAULT_BATCH.to_owned()),
            Some(value) => self.cron(&table.key("batch"), value),
        };
        let cutoff = match table.get("cutoff") {
            None => Some(parse_cutoff(DEFAULT_CUTOFF).expect("the default cutoff parses")),
            Some(value) => self.cutoff(&table.key("cutoff"), value),
        };
        let max_days_ahead = match table.get("max_days_ahead") {
            None => Some(DEFAULT_MAX_DAYS_AHEAD),
            Some(value) => self.days_ahead(&table.key("max_days_ahead"), value),
        };
        Some(Schedule {
            batch: batch?,
            cutoff: cutoff?,
            max_days_ahead: max_days_ahead?,
        })
    }

    fn recipients(&mut self, root: &Table) -> Option<IdentityRule> {
        let table = self.table(root, "recipients", RECIPIENTS_KEYS);
        let Some(value) = table.get("identity") else {
            return Some(IdentityRule::default());
        };
        let key = table.key("identity");
        let word = self.string(&key, value, "one of name-and-address, address, customer-id")?;
        let rule = IdentityRule::from_word(word);
        if rule.is_none() {
            let words: Vec<&str> = IdentityRule::ALL.iter().map(|rule| rule.word()).collect();
            self.problem(
                &key,
                Some(value),
                format!("expected one of {}, found {word:?}", words.join(", ")),
            );
        }
        rule
    }

    fn api(&mut self, root: &Table) -> Option<Api> {
        let table = self.table(root, "api", API_KEYS);
        let listen = match table.get("listen") {
            None => Some(Listen::Tcp(
                DEFAULT_LISTEN.parse().expect("the default address parses"),
            )),
            Some(value) => self.listen(&table.key("listen"), value),
        };
        let token_file = self.path(&table, "token_file", DEFAULT_TOKEN_FILE);
        Some(Api {
            listen: listen?,
            token_file: token_file?,
        })
    }

    fn release_files(&mut self, root: &Table) -> Option<ReleaseFiles> {
        let table = self.table(root, "release_files", RELEASE_FILES_KEYS);
        let csv_bom = match table.get("csv_bom") {
            None => Some(ReleaseFiles::default().csv_bom),
            Some(value) => self.boolean(&table.key("csv_bom"), value),
        };
        Some(ReleaseFiles { csv_bom: csv_bom? })
    }

    fn entry(&mut self, root: &Table) -> Option<EntryParties> {
        let table = self.table(root, "entry", ENTRY_KEYS);
        let texts = |this: &mut Self, name: &str| -> Option<Option<String>> {
            match table.get(name) {
                None => Some(None),
                Some(value) => this.party_text(&table.key(name), value).map(Some),
            }
        };
        let importer_name = texts(self, "importer_name");
        let shipper_name = texts(self, "shipper_name");
        let shipper_address = texts(self, "shipper_address");
        let importer_number = match table.get("importer_number") {
            None => Some(None),
            Some(value) => self
                .importer_number(&table.key("importer_number"), value)
                .map(Some),
        };
        Some(EntryParties {
            importer_name: importer_name?,
            importer_number: importer_number?,
            shipper_name: shipper_name?,
            shipper_address: shipper_address?,
        })
    }

    /// A name or address of a party: text of at most 200 characters, no control characters.
    fn party_text(&mut self, key: &str, value: &Value) -> Option<String> {
        let text = self.text(key, value)?;
        if text.chars().count() > 200 || text.chars().any(char::is_control) {
            self.problem(
                key,
                Some(value),
                "at most 200 characters, without control characters",
            );
            return None;
        }
        Some(text)
    }

    /// An importer of record number: letters, digits and dashes, at most 20 characters.
    fn importer_number(&mut self, key: &str, value: &Value) -> Option<String> {
        const EXPECTED: &str = "an importer number: letters, digits and dashes, at most 20 characters (\"12-3456789\", \"12-3456789AB\")";
        let text = self.string(key, value, EXPECTED)?.trim().to_owned();
        let valid = !text.is_empty()
            && text.len() <= IMPORTER_NUMBER_CHARS_MAX
            && text.bytes().any(|b| b.is_ascii_digit())
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if valid {
            Some(text.to_ascii_uppercase())
        } else {
            self.mismatch(key, value, EXPECTED);
            None
        }
    }

    fn log(&mut self, root: &Table) -> Option<Log> {
        let table = self.table(root, "log", LOG_KEYS);
        let format = match table.get("format") {
            None => Some(LogFormat::Auto),
            Some(value) => {
                let key = table.key("format");
                let words: Vec<&str> = LogFormat::ALL.iter().map(|format| format.word()).collect();
                let word = self.string(&key, value, "one of auto, text, json, journald")?;
                let format = LogFormat::ALL
                    .into_iter()
                    .find(|format| format.word() == word);
                if format.is_none() {
                    self.problem(
                        &key,
                        Some(value),
                        format!("expected one of {}, found {word:?}", words.join(", ")),
                    );
                }
                format
            }
        };
        let level = match table.get("level") {
            None => Some("info".to_owned()),
            Some(value) => {
                let key = table.key("level");
                let text = self.text(&key, value)?;
                match tracing_subscriber::EnvFilter::builder().parse(&text) {
                    Ok(_) => Some(text),
                    Err(error) => {
                        self.problem(
                            &key,
                            Some(value),
                            format!("not a log filter such as \"info\" or \"info,border_release=debug\": {error}"),
                        );
                        None
                    }
                }
            }
        };
        Some(Log {
            format: format?,
            level: level?,
        })
    }

    fn rates(&mut self, root: &Table) -> Option<Rates> {
        let currency = self.table(root, "currency", CURRENCY_KEYS);
        let Some(value) = currency.get("rates") else {
            return Some(Rates::default());
        };
        let key = currency.key("rates");
        let entries = self.array(&key, value, "an array of tables ([[currency.rates]])")?;
        let mut rates = Vec::with_capacity(entries.len());
        let mut all_valid = true;
        // (currency, from) to the entry that has it first.
        let mut seen: HashMap<(&str, NaiveDate), String> = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let entry_key = format!("{key}[{index}]");
            match self.rate(&entry_key, entry) {
                Some(rate) => rates.push(rate),
                None => all_valid = false,
            }
            // Checked on the raw entry, so that a duplicate is reported even beside other problems.
            let currency = entry_text(entry, "currency");
            let from = entry_text(entry, "from").and_then(parse_date);
            let (Some(currency), Some(from)) = (currency, from) else {
                continue;
            };
            if let Some(first) = seen.get(&(currency, from)) {
                let message = format!("{currency} already has a rate from {from} ({first})");
                self.problem(
                    &format!("{entry_key}.from"),
                    entry_field(entry, "from"),
                    message,
                );
                all_valid = false;
            } else {
                seen.insert((currency, from), entry_key);
            }
        }
        all_valid.then(|| Rates::new(rates))
    }

    fn rate(&mut self, key: &str, value: &Value) -> Option<Rate> {
        let table = self.entry_table(key, value, "a table ([[currency.rates]])", RATE_KEYS)?;
        let currency = self.required_field(&table, "currency", Self::currency);
        let from = self.required_field(&table, "from", Self::date);
        let usd = self
            .required(&table, "usd")
            .and_then(|v| self.money(&table.key("usd"), v, RATE_PLACES_MAX));
        Some(Rate {
            currency: currency?,
            from: from?,
            usd: usd?,
        })
    }

    fn timeline(&mut self, root: &Table) -> Option<Timeline> {
        const NONE: &str = "at least one [[policy]] is required: the customs rule is policy data";
        let Some(value) = root.get("policy") else {
            self.problem("policy", None, NONE);
            return None;
        };
        let entries = self.array("policy", value, "an array of tables ([[policy]])")?;
        if entries.is_empty() {
            self.problem("policy", Some(value), NONE);
            return None;
        }
        let mut policies = Vec::with_capacity(entries.len());
        let mut all_valid = true;
        let mut names: BTreeMap<&str, String> = BTreeMap::new();
        let mut froms: BTreeMap<NaiveDate, String> = BTreeMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let entry_key = format!("policy[{index}]");
            match self.policy(&entry_key, entry) {
                Some(policy) => policies.push(policy),
                None => all_valid = false,
            }
            // Checked on the raw entry, so that a duplicate is reported even beside other problems.
            if let Some(name) = entry_text(entry, "name").map(str::trim) {
                if let Some(first) = names.get(name) {
                    let message = format!("{name:?} is already the name of {first}");
                    self.problem(
                        &format!("{entry_key}.name"),
                        entry_field(entry, "name"),
                        message,
                    );
                    all_valid = false;
                } else {
                    names.insert(name, entry_key.clone());
                }
            }
            if let Some(from) = entry_text(entry, "from").and_then(parse_date) {
                if let Some(first) = froms.get(&from) {
                    // Two policies from one day would leave the one in force that day undecided.
                    let message = format!("{first} already starts on {from}");
                    self.problem(
                        &format!("{entry_key}.from"),
                        entry_field(entry, "from"),
                        message,
                    );
                    all_valid = false;
                } else {
                    froms.insert(from, entry_key);
                }
            }
        }
        all_valid.then(|| Timeline::new(policies))
    }

    fn policy(&mut self, key: &str, value: &Value) -> Option<Policy> {
        let table = self.entry_table(key, value, "a table ([[policy]])", POLICY_KEYS)?;
        let name = self
            .required(&table, "name")
            .and_then(|v| self.text(&table.key("name"), v));
        let from = self
            .required(&table, "from")
            .and_then(|v| self.date(&table.key("from"), v));
        let lane = self
            .required(&table, "lane")
            .and_then(|v| self.lane(&table.key("lane"), v));
        let value_limit_usd = self
            .required(&table, "value_limit_usd")
            .and_then(|v| self.money(&table.key("value_limit_usd"), v, VALUE_LIMIT_PLACES_MAX));
        let releases = match table.get("releases_per_recipient_per_day") {
            None => Some(1),
            Some(v) => self.count(&table.key("releases_per_recipient_per_day"), v),
        };
        let origins = self.list(&table, "excluded_origins", Self::origin);
        let hts_prefixes = self.list(&table, "excluded_hts_prefixes", Self::hts_prefix);
        let flags = self.list(&table, "excluded_flags", Self::flag);
        let entry_type = table
            .get("entry_type")
            .map(|v| self.entry_type(&table.key("entry_type"), v));
        let min_hts_digits = table
            .get("min_hts_digits")
            .map(|v| self.hts_digits(&table.key("min_hts_digits"), v));
        let require_mid = table
            .get("require_mid")
            .map(|v| self.boolean(&table.key("require_mid"), v));
        let vague = self.list(&table, "vague_descriptions", Self::vague_description);
        let lane = lane?;
        let mut filing = Filing::of_lane(Lane::from_word(&lane).expect("a lane checked above"));
        if let Some(entry_type) = entry_type {
            filing.entry_type = entry_type?;
        }
        if let Some(digits) = min_hts_digits {
            filing.min_hts_digits = digits?;
        }
        if let Some(require_mid) = require_mid {
            filing.require_mid = require_mid?;
        }
        filing.vague_descriptions = vague?;
        Some(Policy {
            name: name?,
            from: from?,
            lane,
            value_limit_usd: value_limit_usd?,
            releases_per_recipient_per_day: releases?,
            excluded_origins: origins?,
            excluded_hts_prefixes: hts_prefixes?,
            excluded_flags: flags?,
            filing,
        })
    }

    // Tables and lists.

    /// The section `name` of `parent`, or an empty one if absent.
    fn table<'v>(&mut self, parent: &Table<'v>, name: &str, known: &[&str]) -> Table<'v> {
        let key = parent.key(name);
        let (entries, misfit) = match parent.get(name) {
            None => (None, false),
            Some(value) => match &value.kind {
                ValueKind::Table(entries) => (Some(entries), false),
                _ => {
                    self.mismatch(&key, value, &format!("a table ([{key}])"));
                    (None, true)
                }
            },
        };
        let table = Table {
            key,
            entries,
            misfit,
        };
        self.unknown_keys(&table, known);
        table
    }

    /// An entry of an array of tables; `None` (reported) if it is not a table.
    fn entry_table<'v>(
        &mut self,
        key: &str,
        value: &'v Value,
        expected: &str,
        known: &[&str],
    ) -> Option<Table<'v>> {
        let entries = match &value.kind {
            ValueKind::Table(entries) => entries,
            // Only an override naming an entry past the end of the array leaves such a gap.
            ValueKind::Nil => {
                let message = "no such entry (an environment override names a later one)";
                self.problem(key, None, message);
                return None;
            }
            _ => {
                self.mismatch(key, value, expected);
                return None;
            }
        };
        let table = Table {
            key: key.to_owned(),
            entries: Some(entries),
            misfit: false,
        };
        self.unknown_keys(&table, known);
        Some(table)
    }

    fn unknown_keys(&mut self, table: &Table, known: &[&str]) {
        let Some(entries) = table.entries else { return };
        let mut unknown: Vec<(&String, &Value)> = entries
            .iter()
            .filter(|(name, _)| !known.contains(&name.as_str()))
            .collect();
        // The tree is a hash map: sort for a stable report.
        unknown.sort_by(|a, b| a.0.cmp(b.0));
        for (name, value) in unknown {
            let message = format!("unknown key; expected one of: {}", known.join(", "));
            self.problem(&table.key(name), Some(value), message);
        }
    }

    fn array<'v>(&mut self, key: &str, value: &'v Value, expected: &str) -> Option<&'v [Value]> {
        match &value.kind {
            ValueKind::Array(entries) => Some(entries),
            _ => {
                self.mismatch(key, value, expected);
                None
            }
        }
    }

    /// An optional list of strings (empty if absent), each checked by `item`.
    /// An override from the environment gives the list as one comma-separated string.
    fn list<T>(
        &mut self,
        table: &Table,
        name: &str,
        item: fn(&mut Self, &str, &Value, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let Some(value) = table.get(name) else {
            return Some(Vec::new());
        };
        let key = table.key(name);
        let texts: Vec<(String, &str)> = match &value.kind {
            ValueKind::Array(entries) => {
                let mut texts = Vec::with_capacity(entries.len());
                let mut all_strings = true;
                for (index, entry) in entries.iter().enumerate() {
                    let entry_key = format!("{key}[{index}]");
                    match &entry.kind {
                        ValueKind::String(text) => texts.push((entry_key, text.as_str())),
                        _ => {
                            self.mismatch(&entry_key, entry, "a quoted string");
                            all_strings = false;
                        }
                    }
                }
                if !all_strings {
                    return None;
                }
                texts
            }
            ValueKind::String(text) if from_environment(value) => text
                .split(',')
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .enumerate()
                .map(|(index, text)| (format!("{key}[{index}]"), text))
                .collect(),
            _ => {
                self.mismatch(&key, value, "an array of strings");
                return None;
            }
        };
        let mut items = Vec::with_capacity(texts.len());
        let mut all_valid = true;
        for (entry_key, text) in texts {
            match item(self, &entry_key, value, text) {
                Some(parsed) => items.push(parsed),
                None => all_valid = false,
            }
        }
        all_valid.then_some(items)
    }

    // Single values.

    /// A required key of a table, checked by `check` under its whole key.
    fn required_field<T>(
        &mut self,
        table: &Table,
        name: &str,
        check: fn(&mut Self, &str, &Value) -> Option<T>,
    ) -> Option<T> {
        let value = self.required(table, name)?;
        check(self, &table.key(name), value)
    }

    fn required<'v>(&mut self, table: &Table<'v>, name: &str) -> Option<&'v Value> {
        let value = table.get(name);
        if value.is_none() && !table.misfit {
            self.problem(&table.key(name), None, "missing; this key is required");
        }
        value
    }

    fn string<'v>(&mut self, key: &str, value: &'v Value, expected: &str) -> Option<&'v str> {
        match &value.kind {
            ValueKind::String(text) => Some(text),
            _ => {
                self.mismatch(key, value, expected);
                None
            }
        }
    }

    /// A non-blank string, trimmed.
    fn text(&mut self, key: &str, value: &Value) -> Option<String> {
        let text = self.string(key, value, "a quoted string")?.trim();
        if text.is_empty() {
            self.problem(key, Some(value), "must not be empty");
            return None;
        }
        Some(text.to_owned())
    }

    fn timezone(&mut self, key: &str, value: &Value) -> Option<Tz> {
        let name = self.string(
            key,
            value,
            "an IANA time zone name such as \"America/Los_Angeles\"",
        )?;
        let zone = Tz::from_str(name).ok();
        if zone.is_none() {
            let message = format!(
                "unknown time zone {name:?}; expected an IANA name \
                 such as \"America/Los_Angeles\" or \"America/Matamoros\""
            );
            self.problem(key, Some(value), message);
        }
        zone
    }

    fn cron(&mut self, key: &str, value: &Value) -> Option<String> {
        const EXPECTED: &str =
            "a cron expression of 6 fields, seconds first, such as \"0 0 6 * * *\"";
        let text = self.string(key, value, EXPECTED)?;
        let fields = text.split_whitespace().count();
        if fields != 6 {
            let fields = crate::words::counted(fields as u64, "field");
            let message = format!("expected {EXPECTED}, found {fields} in {text:?}");
            self.problem(key, Some(value), message);
            return None;
        }
        if let Err(error) = croner::Cron::new(text).with_seconds_required().parse() {
            let message = format!("not a valid cron expression ({EXPECTED}): {error}");
            self.problem(key, Some(value), message);
            return None;
        }
        Some(text.to_owned())
    }

    fn cutoff(&mut self, key: &str, value: &Value) -> Option<NaiveTime> {
        const EXPECTED: &str = "a local time HH:MM (24-hour) such as \"06:00\"";
        let text = self.string(key, value, EXPECTED)?;
        let cutoff = parse_cutoff(text);
        if cutoff.is_none() {
            self.problem(
                key,
                Some(value),
                format!("expected {EXPECTED}, found {text:?}"),
            );
        }
        cutoff
    }

    fn listen(&mut self, key: &str, value: &Value) -> Option<Listen> {
        const EXPECTED: &str = "an IP address and port such as \"127.0.0.1:8321\", \
            or \"unix:\" and a socket path such as \"unix:/run/border-release/api.sock\"";
        let text = self.string(key, value, EXPECTED)?;
        let listen = match text.strip_prefix("unix:") {
            Some("") => None,
            Some(path) => Some(Listen::Unix(resolve(self.folder, path))),
            None => SocketAddr::from_str(text).ok().map(Listen::Tcp),
        };
        if listen.is_none() {
            self.problem(
                key,
                Some(value),
                format!("expected {EXPECTED}, found {text:?}"),
            );
        }
        listen
    }

    /// `paths.*` and `api.token_file`: resolved against the config folder; `default` if absent.
    fn path(&mut self, table: &Table, name: &str, default: &str) -> Option<PathBuf> {
        let Some(value) = table.get(name) else {
            return Some(PathBuf::from(default));
        };
        let key = table.key(name);
        let text = self.string(&key, value, "a path as a quoted string")?;
        if text.is_empty() {
            self.problem(&key, Some(value), "must not be empty");
            return None;
        }
        // No shell reads this file: `~` would become a folder named `~`.
        if text.starts_with('~') {
            self.problem(
                &key,
                Some(value),
                "`~` is not expanded; write the full path",
            );
            return None;
        }
        Some(resolve(self.folder, text))
    }

    fn date(&mut self, key: &str, value: &Value) -> Option<NaiveDate> {
        // An unquoted TOML date reaches here as a string too.
        let text = self.string(key, value, "a date YYYY-MM-DD")?;
        let date = parse_date(text);
        if date.is_none() {
            self.problem(
                key,
                Some(value),
                format!("expected a date YYYY-MM-DD, found {text:?}"),
            );
        }
        date
    }

    /// A positive amount with at most `places_max` decimal places, never through a float.
    fn money(&mut self, key: &str, value: &Value, places_max: u32) -> Option<Decimal> {
        const EXPECTED: &str = "a decimal amount as a quoted string, such as \"800\" or \"0.0541\"";
        let amount = match &value.kind {
            ValueKind::String(text) => match Decimal::from_str(text.trim()) {
                Ok(amount) => amount,
                Err(_) => {
                    self.problem(
                        key,
                        Some(value),
                        format!("expected {EXPECTED}, found {text:?}"),
                    );
                    return None;
                }
            },
            ValueKind::I64(number) => Decimal::from(*number),
            ValueKind::Float(_) => {
                self.problem(key, Some(value), MONEY_FLOAT);
                return None;
            }
            _ => {
                self.mismatch(key, value, EXPECTED);
                return None;
            }
        };
        if amount <= Decimal::ZERO {
            self.problem(
                key,
                Some(value),
                format!("must be more than zero, found {amount}"),
            );
            return None;
        }
        if amount.normalize().scale() > places_max {
            let message = format!("at most {places_max} decimal places, found {amount}");
            self.problem(key, Some(value), message);
            return None;
        }
        Some(amount)
    }

    /// `true` or `false`; as a string too, as overrides arrive as strings.
    fn boolean(&mut self, key: &str, value: &Value) -> Option<bool> {
        const EXPECTED: &str = "true or false";
        let flag = match &value.kind {
            ValueKind::Boolean(flag) => Some(*flag),
            ValueKind::String(text) => match text.trim() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if flag.is_none() {
            self.mismatch(key, value, EXPECTED);
        }
        flag
    }

    /// A whole number of at least 1; a string of digits too, as overrides arrive as strings.
    fn count(&mut self, key: &str, value: &Value) -> Option<u32> {
        const EXPECTED: &str = "a whole number of at least 1";
        let number = match &value.kind {
            ValueKind::I64(number) => Some(*number),
            ValueKind::String(text) => text.trim().parse::<i64>().ok(),
            _ => {
                self.mismatch(key, value, EXPECTED);
                return None;
            }
        };
        let count = number
            .filter(|n| *n >= 1)
            .and_then(|n| u32::try_from(n).ok());
        if count.is_none() {
            self.mismatch(key, value, EXPECTED);
        }
        count
    }

    fn days_ahead(&mut self, key: &str, value: &Value) -> Option<u32> {
        const EXPECTED: &str = "a whole number of days from 0 (today only) to 366";
        let number = match &value.kind {
            ValueKind::I64(number) => Some(*number),
            ValueKind::String(text) => text.trim().parse::<i64>().ok(),
            _ => None,
        };
        let days = number
            .filter(|n| (0..=MAX_DAYS_AHEAD_LIMIT).contains(n))
            .and_then(|n| u32::try_from(n).ok());
        if days.is_none() {
            self.mismatch(key, value, EXPECTED);
        }
        days
    }

    fn currency(&mut self, key: &str, value: &Value) -> Option<String> {
        const EXPECTED: &str = "an ISO 4217 code of three upper-case letters such as \"MXN\"";
        let code = self.string(key, value, EXPECTED)?;
        if code == USD {
            self.problem(key, Some(value), "US dollars need no rate");
            return None;
        }
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            self.problem(
                key,
                Some(value),
                format!("expected {EXPECTED}, found {code:?}"),
            );
            return None;
        }
        Some(code.to_owned())
    }

    /// An entry type: two digits, as CBP numbers them (`86`, `11`, `01`).
    fn entry_type(&mut self, key: &str, value: &Value) -> Option<String> {
        const EXPECTED: &str = "an entry type of two digits, such as \"11\" or \"86\"";
        let text = self.string(key, value, EXPECTED)?.trim().to_owned();
        if text.len() == 2 && text.bytes().all(|b| b.is_ascii_digit()) {
            Some(text)
        } else {
            self.mismatch(key, value, EXPECTED);
            None
        }
    }

    /// The fewest digits an HTS code may have: 4 to 10.
    fn hts_digits(&mut self, key: &str, value: &Value) -> Option<u8> {
        const EXPECTED: &str = "a whole number of digits from 4 to 10";
        let number = match &value.kind {
            ValueKind::I64(number) => Some(*number),
            ValueKind::String(text) => text.trim().parse::<i64>().ok(),
            _ => None,
        };
        let digits = number
            .filter(|n| (4..=10).contains(n))
            .and_then(|n| u8::try_from(n).ok());
        if digits.is_none() {
            self.mismatch(key, value, EXPECTED);
        }
        digits
    }

    /// A vague description, kept as it is compared ([`description_key`]).
    fn vague_description(&mut self, key: &str, value: &Value, text: &str) -> Option<String> {
        let description = description_key(text);
        if description.is_empty() {
            self.problem(key, Some(value), "a description with letters or digits");
            return None;
        }
        Some(description)
    }

    fn lane(&mut self, key: &str, value: &Value) -> Option<String> {
        let words: Vec<&str> = Lane::ALL.iter().map(|lane| lane.word()).collect();
        let expected = format!("one of {}", words.join(", "));
        let word = self.string(key, value, &expected)?;
        match Lane::from_word(word) {
            Some(lane) => Some(lane.word().to_owned()),
            None => {
                self.problem(
                    key,
                    Some(value),
                    format!("expected {expected}, found {word:?}"),
                );
                None
            }
        }
    }

    /// A country of origin: stored upper case, as items store theirs.
    fn origin(&mut self, key: &str, value: &Value, text: &str) -> Option<String> {
        if text.len() != 2 || !text.bytes().all(|b| b.is_ascii_alphabetic()) {
            let message =
                format!("expected an ISO 3166 alpha-2 country code such as \"CN\", found {text:?}");
            self.problem(key, Some(value), message);
            return None;
        }
        Some(text.to_ascii_uppercase())
    }

    /// An HTS prefix: stored as digits only, as `policy` matches on digits.
    fn hts_prefix(&mut self, key: &str, value: &Value, text: &str) -> Option<String> {
        let digits = hts_digits(text);
        let only_digits_and_dots = text.chars().all(|c| c.is_ascii_digit() || c == '.');
        if !only_digits_and_dots || !(2..=10).contains(&digits.len()) {
            let message = format!(
                "expected an HTS prefix of 2 to 10 digits (dots allowed) \
                 such as \"2208\" or \"6109.10\", found {text:?}"
            );
            self.problem(key, Some(value), message);
            return None;
        }
        Some(digits)
    }

    fn flag(&mut self, key: &str, value: &Value, text: &str) -> Option<ItemFlag> {
        let flag = ItemFlag::from_word(text);
        if flag.is_none() {
            let words: Vec<&str> = ItemFlag::ALL.iter().map(|flag| flag.word()).collect();
            let message = format!("expected one of {}, found {text:?}", words.join(", "));
            self.problem(key, Some(value), message);
        }
        flag
    }

    // Reporting.

    fn mismatch(&mut self, key: &str, value: &Value, expected: &str) {
        let message = format!("expected {expected}, found {}", describe(value));
        self.problem(key, Some(value), message);
    }

    /// Records a problem; one set by an override says so, as the file alone would not show it.
    fn problem(&mut self, key: &str, value: Option<&Value>, message: impl Into<String>) {
        let mut message = message.into();
        if value.is_some_and(from_environment) {
            message.push_str(" (set by the environment)");
        }
        self.problems.push(Problem {
            key: key.to_owned(),
            message,
        });
    }
}

fn from_environment(value: &Value) -> bool {
    value.origin() == Some(ENV_ORIGIN)
}

/// The value of `name` in an entry that is a table, for reporting where a problem came from.
fn entry_field<'v>(entry: &'v Value, name: &str) -> Option<&'v Value> {
    match &entry.kind {
        ValueKind::Table(entries) => entries.get(name),
        _ => None,
    }
}

/// The string value of `name` in an entry that is a table, unchecked.
fn entry_text<'v>(entry: &'v Value, name: &str) -> Option<&'v str> {
    match &entry_field(entry, name)?.kind {
        ValueKind::String(text) => Some(text),
        _ => None,
    }
}

fn describe(value: &Value) -> String {
    match &value.kind {
        ValueKind::Nil => "nothing".into(),
        ValueKind::Boolean(flag) => format!("a boolean ({flag})"),
        ValueKind::I64(number) => format!("an integer ({number})"),
        ValueKind::I128(number) => format!("an integer ({number})"),
        ValueKind::U64(number) => format!("an integer ({number})"),
        ValueKind::U128(number) => format!("an integer ({number})"),
        ValueKind::Float(_) => "a float".into(),
        ValueKind::String(text) => format!("the string {text:?}"),
        ValueKind::Table(_) => "a table".into(),
        ValueKind::Array(_) => "an array".into(),
    }
}

/// `YYYY-MM-DD` exactly (chrono alone would also take `2016-3-10`).
fn parse_date(text: &str) -> Option<NaiveDate> {
    let shaped = text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
    shaped
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
}

/// `HH:MM` exactly, 24-hour.
fn parse_cutoff(text: &str) -> Option<NaiveTime> {
    let shaped = text.len() == 5 && text.as_bytes()[2] == b':';
    shaped
        .then(|| NaiveTime::parse_from_str(text, "%H:%M").ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[warehouse]
name = "test-1"
timezone = "America/Los_Angeles"

[[policy]]
name = "section-321"
from = "2016-03-10"
lane = "de-minimis"
value_limit_usd = "800"
"#;

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config")
            .join(name)
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::from_str(text).unwrap()
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    /// A `[[policy]]` entry; `from` and `limit` are written as TOML, quotes included.
    fn policy_entry(name: &str, from: &str, limit: &str) -> String {
        format!(
            "\n[[policy]]\nname = \"{name}\"\nfrom = {from}\nlane = \"de-minimis\"\nvalue_limit_usd = {limit}\n"
        )
    }

    /// A `[[currency.rates]]` entry; `usd` is written as TOML, quotes included.
    fn rate_entry(currency: &str, from: &str, usd: &str) -> String {
        format!("\n[[currency.rates]]\ncurrency = \"{currency}\"\nfrom = \"{from}\"\nusd = {usd}\n")
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    /// A temp folder holding `border-release.toml` with `text`; the folder is canonical.
    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir
            .path()
            .canonicalize()
            .unwrap()
            .join("border-release.toml");
        std::fs::write(&file, text).unwrap();
        (dir, file)
    }

    fn load_text(text: &str, overrides: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let (_dir, file) = write(text);
        load_with_env(&file, &env(overrides))
    }

    fn problems(text: &str, overrides: &[(&str, &str)]) -> Vec<Problem> {
        match load_text(text, overrides) {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    /// The message of the one problem at `key`.
    fn problem_at(problems: &[Problem], key: &str) -> String {
        let found: Vec<&Problem> = problems.iter().filter(|p| p.key == key).collect();
        assert_eq!(found.len(), 1, "one problem at {key} in {problems:#?}");
        found[0].message.clone()
    }

    fn in_force(config: &Config, on: &str) -> String {
        config.timeline.in_force(day(on)).unwrap().name.clone()
    }

    #[test]
    fn the_service_config_has_the_units_paths_and_the_examples_rules() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/border-release.toml");
        let service = load_with_env(&file, &[]).unwrap();
        let example = load_with_env(&example("border-release.toml"), &[]).unwrap();
        assert_eq!(service.paths.data, Path::new("/var/lib/border-release"));
        assert_eq!(service.paths.logs, Path::new("/var/log/border-release"));
        assert_eq!(service.paths.spool, Path::new("/var/spool/border-release"));
        assert_eq!(
            service.api.listen,
            Listen::Unix("/run/border-release/api.sock".into())
        );
        assert_eq!(service.api.token_file, Path::new(DEFAULT_TOKEN_FILE));
        assert_eq!(service.timeline.policies(), example.timeline.policies());
        assert_eq!(service.rates, example.rates);
        assert_eq!(service.schedule, example.schedule);
        assert_eq!(service.release_files, example.release_files);
        assert!(
            service.release_files.csv_bom,
            "brokers open the manifest in Excel"
        );
    }

    #[test]
    fn the_shipped_example_encodes_the_us_timeline() {
        let config = load_with_env(&example("border-release.toml"), &[]).unwrap();
        assert_eq!(config.warehouse.name, "tijuana-1");
        assert_eq!(config.warehouse.timezone, chrono_tz::America::Los_Angeles);
        assert_eq!(in_force(&config, "2016-03-10"), "section-321");
        assert_eq!(in_force(&config, "2025-05-01"), "section-321");
        assert_eq!(in_force(&config, "2025-05-02"), "section-321-no-cn-hk");
        assert_eq!(in_force(&config, "2025-08-28"), "section-321-no-cn-hk");
        assert_eq!(in_force(&config, "2025-08-29"), "informal-entry");
        assert_eq!(
            in_force(&config, "2026-02-20"),
            "informal-entry-eo-2026-02-20"
        );
        assert_eq!(in_force(&config, "2026-06-24"), "informal-entry-19cfr10151");
        assert_eq!(in_force(&config, "2027-06-30"), "informal-entry-19cfr10151");
        assert_eq!(
            in_force(&config, "2027-07-01"),
            "informal-entry-post-repeal"
        );
        assert_eq!(config.timeline.in_force(day("2016-03-09")), None);

        let section_321 = config.timeline.in_force(day("2025-05-01")).unwrap();
        assert_eq!(section_321.lane, "de-minimis");
        assert_eq!(section_321.value_limit_usd, dec("800"));
        assert_eq!(section_321.releases_per_recipient_per_day, 1);
        assert!(section_321.excluded_origins.is_empty());
        assert_eq!(
            section_321.excluded_hts_prefixes,
            ["2203", "2204", "2205", "2206", "2207", "2208", "24", "3303"]
        );
        assert_eq!(section_321.excluded_flags, ItemFlag::ALL);

        let no_cn_hk = config.timeline.in_force(day("2025-05-02")).unwrap();
        assert_eq!(no_cn_hk.excluded_origins, ["CN", "HK"]);
        assert_eq!(
            no_cn_hk.excluded_hts_prefixes,
            section_321.excluded_hts_prefixes
        );
        assert_eq!(no_cn_hk.value_limit_usd, dec("800"));

        for on in [
            "2025-08-29",
            "2026-02-20",
            "2026-06-24",
            "2027-07-01",
            "2040-01-01",
        ] {
            let informal = config.timeline.in_force(day(on)).unwrap();
            assert_eq!(informal.lane, "informal-entry", "{on}");
            assert_eq!(informal.value_limit_usd, dec("2500"), "{on}");
            assert_eq!(informal.releases_per_recipient_per_day, 1, "{on}");
            assert!(informal.excluded_origins.is_empty(), "{on}");
            assert!(informal.excluded_hts_prefixes.is_empty(), "{on}");
            assert_eq!(
                informal.excluded_flags,
                [ItemFlag::Adcvd, ItemFlag::Quota],
                "{on}"
            );
        }

        let mxn = |on: &str| match config.rates.on("MXN", day(on)) {
            Some(crate::money::Conversion::Rate(fx)) => fx.usd,
            other => panic!("no MXN rate on {on}: {other:?}"),
        };
        assert_eq!(mxn("2026-07-01"), dec("0.0530"));
        assert_eq!(mxn("2026-10-01"), dec("0.0541"));

        // Relative paths in the example land in the clone, beside config/.
        let clone = Path::new(env!("CARGO_MANIFEST_DIR"))
            .canonicalize()
            .unwrap();
        assert_eq!(config.paths.data, clone.join("var/data"));
        assert_eq!(config.paths.logs, clone.join("var/log"));
        assert_eq!(config.paths.spool, clone.join("var/spool"));
        assert_eq!(config.api.token_file, clone.join("var/api-token"));
        assert_eq!(
            config.api.listen,
            Listen::Tcp("127.0.0.1:8321".parse().unwrap())
        );
        assert_eq!(config.schedule.batch, "0 0 6 * * *");
        assert_eq!(
            config.schedule.cutoff,
            NaiveTime::from_hms_opt(6, 0, 0).unwrap()
        );
        assert_eq!(config.identity, IdentityRule::NameAndAddress);
        assert!(config.file.is_absolute());
    }

    #[test]
    fn the_section_321_only_example_keeps_800_dollars_forever() {
        let config = load_with_env(&example("section-321-only.toml"), &[]).unwrap();
        assert_eq!(config.warehouse.name, "nuevo-laredo-1");
        assert_eq!(config.warehouse.timezone, chrono_tz::America::Matamoros);
        assert_eq!(config.timeline.policies().len(), 1);
        for on in [
            "2025-05-01",
            "2025-05-02",
            "2025-08-28",
            "2025-08-29",
            "2027-07-01",
        ] {
            let policy = config.timeline.in_force(day(on)).unwrap();
            assert_eq!(policy.name, "section-321", "{on}");
            assert_eq!(policy.value_limit_usd, dec("800"), "{on}");
            assert!(policy.excluded_origins.is_empty(), "{on}");
        }
        let clone = Path::new(env!("CARGO_MANIFEST_DIR"))
            .canonicalize()
            .unwrap();
        assert_eq!(config.paths.data, clone.join("var/section-321/data"));
        assert_eq!(config.paths.logs, clone.join("var/section-321/log"));
        assert_eq!(config.paths.spool, clone.join("var/section-321/spool"));
    }

    #[test]
    fn defaults_fill_every_optional_key() {
        let config = load_text(MINIMAL, &[]).unwrap();
        assert_eq!(config.paths.data, Path::new(DEFAULT_DATA));
        assert_eq!(config.paths.logs, Path::new(DEFAULT_LOGS));
        assert_eq!(config.paths.spool, Path::new(DEFAULT_SPOOL));
        assert_eq!(config.schedule.batch, DEFAULT_BATCH);
        assert_eq!(
            config.schedule.cutoff,
            NaiveTime::from_hms_opt(6, 0, 0).unwrap()
        );
        assert_eq!(config.identity, IdentityRule::NameAndAddress);
        assert_eq!(config.api.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.api.token_file, Path::new(DEFAULT_TOKEN_FILE));
        assert!(config.release_files.csv_bom);
        assert_eq!(config.rates, Rates::default());
        let policy = &config.timeline.policies()[0];
        assert_eq!(policy.releases_per_recipient_per_day, 1);
        assert!(policy.excluded_origins.is_empty());
        assert!(policy.excluded_hts_prefixes.is_empty());
        assert!(policy.excluded_flags.is_empty());
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let text = r#"
[warehouse]
name = ""
timezone = "Mexico/Tijuana"

[paths]
data = 7

[schedule]
batch = "0 6 * * *"
cutoff = "6am"

[recipients]
identity = "email"

[api]
listen = "localhost"

[[currency.rates]]
currency = "mxn"
from = "2026-10-01"
usd = "0"

[[policy]]
name = "a"
from = "2016-03-10"
lane = "De Minimis"
value_limit_usd = "800"
releases_per_recipient_per_day = 0
excluded_origins = ["CHN"]
excluded_hts_prefixes = ["2", "22a"]
excluded_flags = ["alcohol"]

[[policy]]
from = "2016-03-32"
lane = "informal-entry"
value_limit_usd = "800.001"
"#;
        let found = problems(text, &[]);
        let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "warehouse.name",
                "warehouse.timezone",
                "paths.data",
                "schedule.batch",
                "schedule.cutoff",
                "recipients.identity",
                "api.listen",
                "currency.rates[0].currency",
                "currency.rates[0].usd",
                "policy[0].lane",
                "policy[0].releases_per_recipient_per_day",
                "policy[0].excluded_origins[0]",
                "policy[0].excluded_hts_prefixes[0]",
                "policy[0].excluded_hts_prefixes[1]",
                "policy[0].excluded_flags[0]",
                "policy[1].name",
                "policy[1].from",
                "policy[1].value_limit_usd",
            ]
        );
        assert_eq!(
            problem_at(&found, "policy[1].name"),
            "missing; this key is required"
        );
        assert!(problem_at(&found, "paths.data").contains("expected a path"));
        assert!(problem_at(&found, "paths.data").contains("an integer (7)"));
        assert!(
            problem_at(&found, "policy[1].value_limit_usd").contains("at most 2 decimal places")
        );
        assert!(problem_at(&found, "currency.rates[0].usd").contains("more than zero"));
        assert!(problem_at(&found, "policy[0].excluded_flags[0]")
            .contains("adcvd, quota, pga, irc-tax"));
    }

    #[test]
    fn a_lane_is_one_of_a_fixed_set() {
        for lane in Lane::ALL {
            let text = MINIMAL.replace(
                "lane = \"de-minimis\"",
                &format!("lane = \"{}\"", lane.word()),
            );
            let config = load_text(&text, &[]).unwrap();
            assert_eq!(config.timeline.policies()[0].lane, lane.word());
        }
        let text = MINIMAL.replace("lane = \"de-minimis\"", "lane = \"formal-entry\"");
        assert_ne!(text, MINIMAL);
        assert_eq!(
            problem_at(&problems(&text, &[]), "policy[0].lane"),
            "expected one of de-minimis, informal-entry, found \"formal-entry\""
        );
    }

    #[test]
    fn the_report_lists_every_problem_under_the_file() {
        let (_dir, file) = write("[warehouse]\nname = \"x\"\n");
        let error = load_with_env(&file, &[]).unwrap_err();
        let report = error.to_string();
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines[0], format!("{}: 2 problems", file.display()));
        assert_eq!(
            lines[1],
            "  warehouse.timezone: missing; this key is required"
        );
        assert!(lines[2].starts_with("  policy: at least one [[policy]] is required"));
        assert_eq!(lines.len(), 3);
        assert_eq!(error.file(), file);
    }

    #[test]
    fn unknown_keys_are_problems_everywhere() {
        // `typo` lands in the last [[policy]] table, as TOML says.
        let text = format!(
            "{MINIMAL}typo = 1\n[warehouse2]\nname = \"x\"\n[paths]\ndatas = \"x\"\n{}source = \"CBP\"\n\
             [currency]\nbase = \"USD\"\n",
            rate_entry("MXN", "2026-10-01", "\"0.05\"")
        );
        let found = problems(&text, &[]);
        for key in [
            "warehouse2",
            "paths.datas",
            "currency.base",
            "currency.rates[0].source",
            "policy[0].typo",
        ] {
            assert!(
                problem_at(&found, key).starts_with("unknown key"),
                "{key}: {found:#?}"
            );
        }
        assert_eq!(found.len(), 5, "{found:#?}");
        assert!(problem_at(&found, "paths.datas").contains("data, logs, spool"));
    }

    #[test]
    fn money_as_a_float_is_refused_with_a_hint() {
        let found = problems(&MINIMAL.replace("\"800\"", "800.0"), &[]);
        assert_eq!(problem_at(&found, "policy[0].value_limit_usd"), MONEY_FLOAT);
        assert!(MONEY_FLOAT.contains("quoted decimal string"));

        let rate = rate_entry("MXN", "2026-10-01", "0.0541");
        let found = problems(&format!("{MINIMAL}{rate}"), &[]);
        assert_eq!(problem_at(&found, "currency.rates[0].usd"), MONEY_FLOAT);
    }

    #[test]
    fn money_may_be_a_toml_integer_or_a_quoted_decimal() {
        let config = load_text(&MINIMAL.replace("\"800\"", "800"), &[]).unwrap();
        assert_eq!(config.timeline.policies()[0].value_limit_usd, dec("800"));
        let config = load_text(&MINIMAL.replace("\"800\"", "\"800.00\""), &[]).unwrap();
        assert_eq!(config.timeline.policies()[0].value_limit_usd, dec("800"));
        let found = problems(&MINIMAL.replace("\"800\"", "\"-1\""), &[]);
        assert!(problem_at(&found, "policy[0].value_limit_usd").contains("more than zero"));
        let found = problems(&MINIMAL.replace("\"800\"", "\"eight hundred\""), &[]);
        assert!(problem_at(&found, "policy[0].value_limit_usd").contains("decimal amount"));
        let rate = rate_entry("MXN", "2026-10-01", "\"0.05410000001\"");
        let found = problems(&format!("{MINIMAL}{rate}"), &[]);
        assert!(problem_at(&found, "currency.rates[0].usd").contains("at most 10 decimal places"));
    }

    #[test]
    fn environment_overrides_paths_data_and_schedule_cutoff() {
        let config = load_text(
            MINIMAL,
            &[
                ("BORDER_RELEASE__PATHS__DATA", "/srv/border-release/data"),
                ("BORDER_RELEASE__SCHEDULE__CUTOFF", "05:30"),
                ("BORDER_RELEASE__WAREHOUSE__TIMEZONE", "America/Matamoros"),
                ("PATH", "/usr/bin"),
            ],
        )
        .unwrap();
        assert_eq!(config.paths.data, Path::new("/srv/border-release/data"));
        assert_eq!(config.paths.logs, Path::new(DEFAULT_LOGS));
        assert_eq!(
            config.schedule.cutoff,
            NaiveTime::from_hms_opt(5, 30, 0).unwrap()
        );
        assert_eq!(config.warehouse.timezone, chrono_tz::America::Matamoros);
    }

    #[test]
    fn the_csv_byte_order_mark_is_set_by_the_file_or_an_override() {
        let off = format!("{MINIMAL}\n[release_files]\ncsv_bom = false\n");
        assert!(!load_text(&off, &[]).unwrap().release_files.csv_bom);
        let on = load_text(&off, &[("BORDER_RELEASE__RELEASE_FILES__CSV_BOM", "true")]).unwrap();
        assert!(on.release_files.csv_bom);
        let wrong = format!("{MINIMAL}\n[release_files]\ncsv_bom = \"yes\"\n");
        let message = problem_at(&problems(&wrong, &[]), "release_files.csv_bom");
        assert!(message.contains("expected true or false"), "{message}");
    }

    #[test]
    fn environment_overrides_beat_the_file() {
        let text = format!("{MINIMAL}\n[paths]\ndata = \"/from/the/file\"\n");
        let config = load_text(&text, &[("BORDER_RELEASE__PATHS__DATA", "relative/data")]).unwrap();
        assert_eq!(
            config.paths.data,
            config.file.parent().unwrap().join("relative/data")
        );
    }

    #[test]
    fn border_release_config_is_not_an_override() {
        let config = load_text(
            MINIMAL,
            &[
                ("BORDER_RELEASE_CONFIG", "/etc/border-release/other.toml"),
                ("BORDER_RELEASE_PATHS_DATA", "/single/underscores"),
            ],
        )
        .unwrap();
        assert_eq!(config.paths.data, Path::new(DEFAULT_DATA));
        assert_eq!(CONFIG_PATH_ENV, "BORDER_RELEASE_CONFIG");
    }

    #[test]
    fn an_override_of_an_unknown_key_is_reported_as_from_the_environment() {
        let found = problems(MINIMAL, &[("BORDER_RELEASE__PATHS__DTA", "/x")]);
        assert_eq!(
            problem_at(&found, "paths.dta"),
            "unknown key; expected one of: data, logs, spool (set by the environment)"
        );
        let found = problems(MINIMAL, &[("BORDER_RELEASE__SCHEDULE__CUTOFF", "25:00")]);
        assert!(problem_at(&found, "schedule.cutoff").ends_with("(set by the environment)"));
    }

    #[test]
    fn overrides_reach_policy_entries_by_index() {
        let later = policy_entry("later", "\"2025-05-02\"", "\"800\"");
        let text = format!("{MINIMAL}{later}");
        let config = load_text(
            &text,
            &[
                (
                    "BORDER_RELEASE__POLICY__1__RELEASES_PER_RECIPIENT_PER_DAY",
                    "2",
                ),
                ("BORDER_RELEASE__POLICY__1__VALUE_LIMIT_USD", "2500"),
                ("BORDER_RELEASE__POLICY__1__EXCLUDED_ORIGINS", "cn, hk"),
            ],
        )
        .unwrap();
        let policies = config.timeline.policies();
        assert_eq!(policies.len(), 2);
        assert_eq!(policies[0].name, "section-321");
        assert_eq!(policies[0].releases_per_recipient_per_day, 1);
        assert_eq!(policies[1].name, "later");
        assert_eq!(policies[1].releases_per_recipient_per_day, 2);
        assert_eq!(policies[1].value_limit_usd, dec("2500"));
        assert_eq!(policies[1].excluded_origins, ["CN", "HK"]);

        let found = problems(MINIMAL, &[("BORDER_RELEASE__POLICY__2__NAME", "third")]);
        assert_eq!(
            problem_at(&found, "policy[1]"),
            "no such entry (an environment override names a later one)"
        );
        assert_eq!(
            problem_at(&found, "policy[2].from"),
            "missing; this key is required"
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_config_folder() {
        let text = format!(
            "{MINIMAL}\n[paths]\ndata = \"state/data\"\nlogs = \"../logs\"\nspool = \"./spool\"\n\
             [api]\nlisten = \"unix:run/api.sock\"\ntoken_file = \"secrets/api-token\"\n"
        );
        let (dir, file) = write(&text);
        let folder = dir.path().canonicalize().unwrap();
        let config = load_with_env(&file, &[]).unwrap();
        assert_eq!(config.file, file);
        assert_eq!(config.paths.data, folder.join("state/data"));
        assert_eq!(config.paths.logs, folder.parent().unwrap().join("logs"));
        assert_eq!(config.paths.spool, folder.join("spool"));
        assert_eq!(config.api.listen, Listen::Unix(folder.join("run/api.sock")));
        // The token file need not exist yet.
        assert_eq!(config.api.token_file, folder.join("secrets/api-token"));
        assert!(!config.api.token_file.exists());
    }

    #[test]
    fn a_relative_config_path_is_made_absolute() {
        // Relative to the current directory, which cargo sets to the package root.
        let config = load_with_env(Path::new("config/border-release.toml"), &[]).unwrap();
        assert!(config.file.is_absolute());
        assert!(config.paths.data.is_absolute());
    }

    #[test]
    fn two_policies_may_not_start_on_one_day_nor_share_a_name() {
        let same_day = policy_entry("other", "\"2016-03-10\"", "\"800\"");
        let same_name = policy_entry("section-321", "\"2020-01-01\"", "\"800\"");
        let text = format!("{MINIMAL}{same_day}{same_name}");
        let found = problems(&text, &[]);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!(
            problem_at(&found, "policy[1].from"),
            "policy[0] already starts on 2016-03-10"
        );
        assert_eq!(
            problem_at(&found, "policy[2].name"),
            "\"section-321\" is already the name of policy[0]"
        );
    }

    #[test]
    fn a_duplicate_is_reported_even_when_the_entry_has_other_problems() {
        // An unquoted TOML date is a date too.
        let twin = policy_entry("section-321", "2016-03-10", "800.0");
        let text = format!("{MINIMAL}{twin}");
        let found = problems(&text, &[]);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert_eq!(problem_at(&found, "policy[1].value_limit_usd"), MONEY_FLOAT);
        assert!(problem_at(&found, "policy[1].name").contains("already the name of policy[0]"));
        assert!(problem_at(&found, "policy[1].from").contains("already starts on 2016-03-10"));
    }

    #[test]
    fn two_rates_may_not_share_currency_and_day() {
        let rate = rate_entry("MXN", "2026-10-01", "\"0.0541\"");
        let usd = rate_entry("USD", "2026-10-01", "\"1\"");
        let found = problems(&format!("{MINIMAL}{rate}{rate}{usd}"), &[]);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!(
            problem_at(&found, "currency.rates[1].from"),
            "MXN already has a rate from 2026-10-01 (currency.rates[0])"
        );
        assert_eq!(
            problem_at(&found, "currency.rates[2].currency"),
            "US dollars need no rate"
        );
    }

    #[test]
    fn an_unknown_time_zone_is_a_problem() {
        let found = problems(&MINIMAL.replace("America/Los_Angeles", "Pacific Time"), &[]);
        assert!(problem_at(&found, "warehouse.timezone")
            .starts_with("unknown time zone \"Pacific Time\""));
    }

    #[test]
    fn a_bad_cron_is_a_problem() {
        for batch in [
            "0 6 * * *",
            "0 0 6 * * * 2026",
            "@daily",
            "0 0 25 * * *",
            "x x x x x x",
        ] {
            let text = format!("{MINIMAL}\n[schedule]\nbatch = \"{batch}\"\n");
            let found = problems(&text, &[]);
            assert!(
                problem_at(&found, "schedule.batch").contains("6 fields"),
                "{batch}"
            );
        }
        let text = format!("{MINIMAL}\n[schedule]\nbatch = \"0 30 5,17 * * MON-FRI\"\n");
        assert_eq!(
            load_text(&text, &[]).unwrap().schedule.batch,
            "0 30 5,17 * * MON-FRI"
        );
    }

    #[test]
    fn a_bad_cutoff_is_a_problem() {
        for cutoff in ["6:00", "24:00", "06:00:00", "06:60", "6am", ""] {
            let text = format!("{MINIMAL}\n[schedule]\ncutoff = \"{cutoff}\"\n");
            let found = problems(&text, &[]);
            assert!(
                problem_at(&found, "schedule.cutoff").contains("HH:MM"),
                "{cutoff}"
            );
        }
        let text = format!("{MINIMAL}\n[schedule]\ncutoff = \"23:59\"\n");
        let cutoff = load_text(&text, &[]).unwrap().schedule.cutoff;
        assert_eq!(cutoff, NaiveTime::from_hms_opt(23, 59, 0).unwrap());
    }

    #[test]
    fn a_config_without_policy_is_a_problem() {
        let text = MINIMAL.split("[[policy]]").next().unwrap();
        let found = problems(text, &[]);
        assert!(problem_at(&found, "policy").contains("at least one [[policy]]"));
        let found = problems(&format!("{text}policy = []\n"), &[]);
        assert!(problem_at(&found, "policy").contains("at least one [[policy]]"));
    }

    #[test]
    fn a_missing_file_is_a_read_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nowhere.toml");
        let error = load(&file).unwrap_err();
        assert!(
            matches!(&error, ConfigError::Read { file: f, .. } if *f == file),
            "{error:?}"
        );
        assert!(error.to_string().contains(&file.display().to_string()));
        let error = load_with_env(dir.path(), &[]).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }), "{error:?}");
    }

    #[test]
    fn a_file_that_is_not_toml_is_a_syntax_error_naming_the_file() {
        let (_dir, file) = write("[warehouse\nname = \"x\"\n");
        let error = load_with_env(&file, &[]).unwrap_err();
        assert!(
            matches!(&error, ConfigError::Syntax { file: f, .. } if *f == file),
            "{error:?}"
        );
        let report = error.to_string();
        assert!(
            report.starts_with(&format!("{}: not valid TOML", file.display())),
            "{report}"
        );
        assert!(report.contains("line 1"), "{report}");

        let (_dir, file) = write("");
        std::fs::write(&file, [0xff, 0xfe, 0x00]).unwrap();
        let error = load_with_env(&file, &[]).unwrap_err();
        assert!(matches!(error, ConfigError::Syntax { .. }), "{error:?}");
    }

    #[test]
    fn exclusions_are_stored_normalised() {
        let text = MINIMAL.replace(
            "value_limit_usd = \"800\"",
            "value_limit_usd = \"800\"\nexcluded_origins = [\"cn\", \"Hk\"]\n\
             excluded_hts_prefixes = [\"2208.20\", \"6109.10.0012\", \"24\"]\nexcluded_flags = [\"irc-tax\"]",
        );
        let config = load_text(&text, &[]).unwrap();
        let policy = &config.timeline.policies()[0];
        assert_eq!(policy.excluded_origins, ["CN", "HK"]);
        assert_eq!(policy.excluded_hts_prefixes, ["220820", "6109100012", "24"]);
        assert_eq!(policy.excluded_flags, [ItemFlag::IrcTax]);

        let found = problems(
            &MINIMAL.replace(
                "value_limit_usd",
                "excluded_hts_prefixes = [2208]\nvalue_limit_usd",
            ),
            &[],
        );
        assert!(problem_at(&found, "policy[0].excluded_hts_prefixes[0]").contains("quoted string"));
    }

    #[test]
    fn type_mismatches_name_what_was_expected() {
        let text = MINIMAL
            .replace("name = \"test-1\"", "name = [\"a\"]")
            .replace("name = \"section-321\"", "name = true")
            + "\n[recipients]\nidentity = 3\n[api]\nlisten = 8321\n";
        let found = problems(&text, &[]);
        assert_eq!(
            problem_at(&found, "warehouse.name"),
            "expected a quoted string, found an array"
        );
        assert_eq!(
            problem_at(&found, "policy[0].name"),
            "expected a quoted string, found a boolean (true)"
        );
        assert!(problem_at(&found, "recipients.identity")
            .starts_with("expected one of name-and-address"));
        assert!(problem_at(&found, "api.listen").starts_with("expected an IP address and port"));

        let found = problems(
            &format!(
                "warehouse = \"x\"\n{}",
                MINIMAL.replace(
                    "[warehouse]\nname = \"test-1\"\ntimezone = \"America/Los_Angeles\"\n",
                    ""
                )
            ),
            &[],
        );
        assert_eq!(
            problem_at(&found, "warehouse"),
            "expected a table ([warehouse]), found the string \"x\""
        );
        assert_eq!(found.len(), 1, "{found:#?}");
    }

    #[test]
    fn identity_rules_are_read_by_word() {
        for rule in IdentityRule::ALL {
            let text = format!("{MINIMAL}\n[recipients]\nidentity = \"{}\"\n", rule.word());
            assert_eq!(load_text(&text, &[]).unwrap().identity, rule);
        }
    }

    #[test]
    fn the_config_crate_splits_overrides_on_double_underscores_only() {
        let overrides: Map<String, String> = [
            ("BORDER_RELEASE_CONFIG", "/etc/x.toml"),
            ("BORDER_RELEASE_PATHS_DATA", "/one/underscore"),
            ("BORDER_RELEASE__PATHS__DATA", "/x"),
            ("BORDER_RELEASE__API__TOKEN_FILE", "/t"),
            ("BORDER_RELEASE__POLICY[0]__VALUE_LIMIT_USD", "2500"),
            ("OTHER__PATHS__DATA", "/y"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        let collected = environment(overrides).collect().unwrap();
        let mut keys: Vec<&str> = collected.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["api.token_file", "paths.data", "policy[0].value_limit_usd"]
        );
        assert_eq!(collected["paths.data"].origin(), Some(ENV_ORIGIN));
    }

    #[test]
    fn overrides_are_rewritten_with_subscripts() {
        assert_eq!(
            with_indexes("BORDER_RELEASE__PATHS__DATA"),
            "BORDER_RELEASE__PATHS__DATA"
        );
        assert_eq!(
            with_indexes("BORDER_RELEASE__CURRENCY__RATES__12__USD"),
            "BORDER_RELEASE__CURRENCY__RATES[12]__USD"
        );
        assert!(is_override("border_release__paths__data"));
        assert!(!is_override("BORDER_RELEASE_CONFIG"));
        assert!(!is_override("BORDER_RELEASE"));
        assert!(!is_override("BORDER_RELEASE_\u{e9}__PATHS"));
    }
}
