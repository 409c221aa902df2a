//! Release logs, broker manifests and release summaries: files derived from the committed
//! releases of a day.
//!
//! `<logs>/releases/<day>.jsonl` holds one release per line; `<logs>/releases/<day>.manifest.csv`
//! one row per release line with what an entry filing needs; `<logs>/releases/<day>.releases.csv`
//! one row per release (consignee, orders, lines, value) for the operator. All three are
//! rewritten whole from the store (write to a temporary file, fsync, rename), so however often
//! they are written, and whatever crash came before, they list every committed release of the
//! day exactly once.
//! The store marks a day's files as due in the same commit as its releases and clears the mark
//! once they are written: [`write_due`] catches up after a crash.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, SecondsFormat};
use serde::Serialize;

use crate::config::Config;
use crate::duties;
use crate::files;
use crate::model::{Consignee, Release, Text, Void};
use crate::money::DecimalText;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot write {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who reads the release files besides the service: its group, where brokers' and operators'
/// accounts are (README, "Output files").
pub const READERS: files::Readers = files::Readers::OwnerAndGroup;

/// The folder of release logs and manifests under the configured logs folder.
pub fn releases_dir(logs: &Path) -> PathBuf {
    logs.join("releases")
}

/// A day's file in `folder`: `<folder>/<YYYY-MM-DD><ending>`.
pub fn day_file(folder: &Path, day: NaiveDate, ending: &str) -> PathBuf {
    folder.join(format!("{}{ending}", day.format("%Y-%m-%d")))
}

pub fn log_path(logs: &Path, day: NaiveDate) -> PathBuf {
    day_file(&releases_dir(logs), day, ".jsonl")
}

pub fn manifest_path(logs: &Path, day: NaiveDate) -> PathBuf {
    day_file(&releases_dir(logs), day, ".manifest.csv")
}

/// The day's release summary: one row per release.
pub fn summary_path(logs: &Path, day: NaiveDate) -> PathBuf {
    day_file(&releases_dir(logs), day, ".releases.csv")
}

/// The day's voids: one line per void release, written once the day has one.
pub fn voids_path(logs: &Path, day: NaiveDate) -> PathBuf {
    day_file(&releases_dir(logs), day, ".voids.jsonl")
}

/// Where the release files go, and how they are written (`[paths] logs` and
/// `[release_files]`).
#[derive(Debug, Clone, Copy)]
pub struct Output<'a> {
    /// The logs folder; the files go into its `releases/`.
    pub logs: &'a Path,
    /// Whether the CSV files start with a UTF-8 byte-order mark.
    pub csv_bom: bool,
}

impl Output<'_> {
    pub fn of(config: &Config) -> Output<'_> {
        Output {
            logs: &config.paths.logs,
            csv_bom: config.release_files.csv_bom,
        }
    }

    /// Starts a CSV file: the byte-order mark by which spreadsheets (Excel) know that it is
    /// UTF-8, when asked for.
    fn start_csv(self, out: &mut impl Write) -> std::io::Result<()> {
        if self.csv_bom {
            out.write_all(UTF8_BOM)?;
        }
        Ok(())
    }
}

/// The UTF-8 byte-order mark, U+FEFF encoded.
pub const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// Writes the files of every day the store marks as due, then clears the marks.
/// Returns the days written.
pub fn write_due(store: &mut Store, output: Output) -> Result<Vec<NaiveDate>, LogError> {
    let days = store.logs_due()?;
    for day in &days {
        let releases = store.releases_of(*day)?;
        let voids = store.voids_of(*day)?;
        write_committed(store, output, *day, &[&releases], &voids)?;
    }
    Ok(days)
}

/// Writes the files of a day that the store marks as due, from its committed releases, and
/// clears the mark. The batch calls this with the releases it has just committed, to spare
/// reading them back.
pub fn write_committed(
    store: &mut Store,
    output: Output,
    day: NaiveDate,
    parts: &[&[Release]],
    voids: &[Void],
) -> Result<(), LogError> {
    put_committed_in_place(store, prepare_day(output, day, parts, voids)?)
}

/// Puts in place the files of a day prepared from its committed releases, and clears the mark
/// that says they are due.
pub fn put_committed_in_place(store: &mut Store, prepared: Prepared) -> Result<(), LogError> {
    let day = prepared.day;
    prepared.put_in_place()?;
    crate::crashpoint::reached("logs-after-write");
    // Losing this is harmless: the files would only be written again, identically.
    store.logs_written(day)?;
    Ok(())
}

/// Writes the release log, manifest and release summary of `day` from its committed releases,
/// given in parts (for example the day's earlier waves, then the releases just committed), and
/// its voids.
pub fn write_day(
    output: Output,
    day: NaiveDate,
    parts: &[&[Release]],
    voids: &[Void],
) -> Result<(), LogError> {
    prepare_day(output, day, parts, voids)?.put_in_place()
}

/// A day's release log, manifest and release summary, written and fsynced under temporary names
/// beside their own, and not yet in place: [`Prepared::put_in_place`] renames them over the
/// day's files.
#[derive(Debug)]
pub struct Prepared {
    day: NaiveDate,
    /// The temporary file and the file it replaces: release log, manifest, release summary,
    /// and the voids when the day has some.
    files: Vec<(PathBuf, PathBuf)>,
}

/// Writes the release log, manifest and release summary of `day` from the given releases under
/// temporary names, side by side, and fsyncs them. The batch does this while its commit is being
/// made, and puts them in place once the commit is durable.
pub fn prepare_day(
    output: Output,
    day: NaiveDate,
    parts: &[&[Release]],
    voids: &[Void],
) -> Result<Prepared, LogError> {
    let logs = output.logs;
    let dir = releases_dir(logs);
    files::create_shared_dir(&dir, READERS).map_err(io_error(&dir))?;
    // The log keeps every release as it was written; the manifest and the summary list what
    // is to be filed, so not the void ones.
    let voided: HashSet<&str> = voids.iter().map(|void| void.release_id.as_str()).collect();
    let releases = || parts.iter().flat_map(|part| part.iter());
    let standing = || releases().filter(|release| !voided.contains(release.release_id.as_str()));
    let mut targets = vec![
        log_path(logs, day),
        manifest_path(logs, day),
        summary_path(logs, day),
    ];
    if !voids.is_empty() {
        targets.push(voids_path(logs, day));
    }
    let written = std::thread::scope(|scope| {
        let manifest = scope.spawn(|| {
            files::write_temporary_for(&targets[1], READERS, |writer| {
                output.start_csv(writer)?;
                write_manifest(standing(), writer)
            })
        });
        let log = files::write_temporary_for(&targets[0], READERS, |writer| {
            write_log(releases(), writer)
        });
        let summary = files::write_temporary_for(&targets[2], READERS, |writer| {
            output.start_csv(writer)?;
            write_summary(standing(), writer)
        });
        let mut written = vec![
            log,
            manifest.join().expect("the manifest thread panicked"),
            summary,
        ];
        if let Some(voids_file) = targets.get(3) {
            written.push(files::write_temporary_for(voids_file, READERS, |writer| {
                write_voids(voids, writer)
            }));
        }
        written
    });
    if written.iter().all(Result::is_ok) {
        let temporaries = written.into_iter().map(|file| file.expect("all written"));
        return Ok(Prepared {
            day,
            files: temporaries.zip(targets).collect(),
        });
    }
    // The ones written are removed: they may list releases that will not be committed.
    let mut first_error = None;
    for (result, target) in written.into_iter().zip(targets) {
        match result {
            Ok(temporary) => {
                let _ = std::fs::remove_file(temporary);
            }
            Err(error) => {
                first_error.get_or_insert_with(|| io_error(&target)(error));
            }
        }
    }
    Err(first_error.expect("one file failed"))
}

impl Prepared {
    /// Renames the release log into place, then the manifest, the release summary and the
    /// voids, each durably. A file that holds the same bytes already is left as it is: a day's
    /// log written again (after a void, by `releases write`) is never rewritten.
    pub fn put_in_place(self) -> Result<(), LogError> {
        let mut files = self.files.into_iter().enumerate();
        let mut skipped = None;
        while let Some((at, (written, file))) = files.next() {
            let placed = match files::same_contents(&written, &file) {
                Ok(true) => {
                    skipped = file.parent().map(Path::to_owned);
                    std::fs::remove_file(&written).map_err(io_error(&written))
                }
                Ok(false) => files::rename_durably(&written, &file).map_err(io_error(&file)),
                Err(error) => Err(io_error(&file)(error)),
            };
            if let Err(error) = placed {
                // The temporaries not put in place go: they may name people.
                let _ = std::fs::remove_file(&written);
                for (_, (written, _)) in files {
                    let _ = std::fs::remove_file(written);
                }
                return Err(error);
            }
            if at == 0 {
                crate::crashpoint::reached("logs-after-release-log");
            }
        }
        // A file left as it is may be one whose rename an earlier crash left unsynced.
        if let Some(folder) = skipped {
            files::sync_dir(&folder).map_err(io_error(&folder))?;
        }
        Ok(())
    }

    /// Removes the temporary files, for releases that were not committed after all.
    pub fn discard(self) {
        for (written, _) in self.files {
            let _ = std::fs::remove_file(written);
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> LogError {
    let path = path.to_owned();
    move |source| LogError::Io { path, source }
}

/// How a day's file stands against the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileCheck {
    Missing,
    /// Other bytes than the store gives.
    Differs,
}

/// Checks each of a day's files against what [`write_day`] would write from the store now,
/// byte for byte, without writing anything: the files that are missing or differ. A CSV file
/// is compared without its byte-order mark, so that days written before `csv_bom` changed
/// still agree.
pub fn check_day(
    output: Output,
    day: NaiveDate,
    releases: &[Release],
    voids: &[Void],
) -> std::io::Result<Vec<(PathBuf, FileCheck)>> {
    let logs = output.logs;
    let voided: HashSet<&str> = voids.iter().map(|void| void.release_id.as_str()).collect();
    let standing = || {
        releases
            .iter()
            .filter(|release| !voided.contains(release.release_id.as_str()))
    };
    type Writes<'a> = Box<dyn Fn(&mut Comparing) -> std::io::Result<()> + 'a>;
    let mut files: Vec<(PathBuf, Writes)> = vec![
        (
            log_path(logs, day),
            Box::new(|out: &mut Comparing| write_log(releases.iter(), out)),
        ),
        (
            manifest_path(logs, day),
            Box::new(|out: &mut Comparing| write_manifest(standing(), out)),
        ),
        (
            summary_path(logs, day),
            Box::new(|out: &mut Comparing| write_summary(standing(), out)),
        ),
    ];
    if !voids.is_empty() {
        files.push((
            voids_path(logs, day),
            Box::new(|out: &mut Comparing| write_voids(voids, out)),
        ));
    }
    let mut found = Vec::new();
    for (path, write) in files {
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                found.push((path, FileCheck::Missing));
                continue;
            }
            Err(error) => return Err(error),
        };
        let mut file = std::io::BufReader::with_capacity(1 << 16, file);
        if path.extension().is_some_and(|extension| extension == "csv") {
            use std::io::BufRead;
            if file.fill_buf()?.starts_with(UTF8_BOM) {
                file.consume(UTF8_BOM.len());
            }
        }
        let mut comparing = Comparing {
            file,
            same: true,
            buffer: Vec::new(),
        };
        write(&mut comparing)?;
        if !comparing.finish()? {
            found.push((path, FileCheck::Differs));
        }
    }
    Ok(found)
}

/// A writer that compares what is written with a file's bytes instead of writing them.
struct Comparing {
    file: std::io::BufReader<std::fs::File>,
    same: bool,
    buffer: Vec<u8>,
}

impl Write for Comparing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        use std::io::Read;
        if self.same {
            self.buffer.resize(bytes.len(), 0);
            match self.file.read_exact(&mut self.buffer) {
                Ok(()) => self.same = self.buffer == bytes,
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.same = false
                }
                Err(error) => return Err(error),
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Comparing {
    /// Whether everything written matched and the file has nothing more.
    fn finish(mut self) -> std::io::Result<bool> {
        use std::io::Read;
        let mut rest = [0u8; 1];
        Ok(self.same && self.file.read(&mut rest)? == 0)
    }
}

/// One JSON line per void: `release_id`, `reason`, `voided_at`.
fn write_voids(voids: &[Void], out: &mut impl Write) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct VoidLine<'a> {
        release_id: &'a str,
        reason: &'a str,
        voided_at: String,
    }
    for void in voids {
        let line = VoidLine {
            release_id: &void.release_id,
            reason: &void.reason,
            voided_at: void.voided_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        };
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The manifest CSV of some releases, header first.
pub fn manifest(releases: &[Release]) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_manifest(releases.iter(), &mut bytes).expect("writing CSV to memory cannot fail");
    bytes
}

/// Writes release log lines, byte for byte what `serde_json` writes for [`ReleaseRecord`]
/// followed by a newline, without building the record: a large day has hundreds of megabytes.
fn write_log<'a>(
    releases: impl Iterator<Item = &'a Release>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(4096);
    let mut dates = Dates::default();
    for release in releases {
        line.clear();
        log_line(release, &mut dates, &mut line);
        out.write_all(&line)?;
    }
    Ok(())
}

/// The release log line of one release, newline included (see [`write_log`]).
fn log_line(release: &Release, dates: &mut Dates, out: &mut Vec<u8>) {
    let assessed = release.assessed.as_deref();
    // The release's duty and whether every line claims USMCA, gathered line by line.
    let mut duty_usd = Some(rust_decimal::Decimal::ZERO);
    let mut all_usmca = true;
    let consignee = &release.consignee;
    let address = &consignee.address;
    out.extend_from_slice(b"{\"release_id\":");
    json_str(out, &release.release_id);
    out.extend_from_slice(b",\"day\":");
    json_str(out, dates.day(release.day));
    out.extend_from_slice(b",\"policy\":");
    json_str(out, &release.policy);
    out.extend_from_slice(b",\"lane\":");
    json_str(out, &release.lane);
    out.extend_from_slice(b",\"recipient_key\":");
    json_str(out, &release.recipient_key);
    out.extend_from_slice(b",\"consignee\":{\"name\":");
    json_str(out, &consignee.name);
    if let Some(customer_id) = &consignee.customer_id {
        out.extend_from_slice(b",\"customer_id\":");
        json_str(out, customer_id);
    }
    out.extend_from_slice(b",\"address\":{\"line1\":");
    json_str(out, &address.line1);
    out.extend_from_slice(b",\"line2\":");
    match &address.line2 {
        Some(line2) => json_str(out, line2),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"city\":");
    json_str(out, &address.city);
    out.extend_from_slice(b",\"state\":");
    json_str(out, &address.state);
    out.extend_from_slice(b",\"postal_code\":");
    json_str(out, &address.postal_code);
    out.extend_from_slice(b",\"country\":");
    json_str(out, &address.country);
    out.extend_from_slice(b"}},\"orders\":[");
    for (at, order_id) in release.orders.iter().enumerate() {
        if at > 0 {
            out.push(b',');
        }
        json_str(out, order_id);
    }
    out.extend_from_slice(b"],\"lines\":[");
    for (at, line) in release.lines.iter().enumerate() {
        if at > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"order_id\":");
        json_str(out, &line.order_id);
        out.extend_from_slice(b",\"sku\":");
        json_str(out, &line.item.sku);
        out.extend_from_slice(b",\"qty\":");
        write!(out, "{}", line.qty).expect("writing to memory cannot fail");
        out.extend_from_slice(b",\"description\":");
        json_str(out, &line.item.description);
        out.extend_from_slice(b",\"hts\":");
        json_str(out, &line.item.hts);
        out.extend_from_slice(b",\"origin\":");
        json_str(out, &line.item.origin);
        out.extend_from_slice(b",\"value_usd\":");
        json_str(out, DecimalText::usd(line.value_usd).as_str());
        out.extend_from_slice(b",\"currency\":");
        json_str(out, &line.currency);
        out.extend_from_slice(b",\"unit_price\":");
        json_str(out, DecimalText::new(line.unit_price).as_str());
        if let Some(filed) = &release.filed {
            let (mid, usmca) = filed.item(&line.item.sku);
            out.extend_from_slice(b",\"mid\":");
            match mid {
                Some(mid) => json_str(out, mid),
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(if usmca {
                b",\"usmca\":true"
            } else {
                b",\"usmca\":false"
            });
        }
        if let Some(assessed) = assessed {
            let item = assessed.item(&line.item.sku);
            all_usmca &= item.is_some_and(|item| item.usmca);
            let line_duty = duties::line_duty_usd(item, line.value_usd);
            duty_usd = duty_usd.zip(line_duty).map(|(sum, line)| sum + line);
            out.extend_from_slice(b",\"duty_usd\":");
            json_usd_or_null(out, line_duty);
            out.extend_from_slice(b",\"duties\":[");
            let programs = item.map(|item| duties::program_duties(item, line.value_usd));
            for (at, program) in programs.into_iter().flatten().enumerate() {
                if at > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"program\":");
                json_str(out, program.program);
                out.extend_from_slice(b",\"rate_percent\":");
                json_str(out, DecimalText::new(program.rate_percent).as_str());
                out.extend_from_slice(b",\"usd\":");
                json_str(out, DecimalText::usd(program.usd).as_str());
                out.push(b'}');
            }
            out.push(b']');
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"value_usd\":");
    json_str(out, DecimalText::usd(release.value_usd).as_str());
    out.extend_from_slice(b",\"fx\":[");
    for (at, fx) in release.fx.iter().enumerate() {
        if at > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"currency\":");
        json_str(out, &fx.currency);
        out.extend_from_slice(b",\"usd\":");
        json_str(out, DecimalText::new(fx.usd).as_str());
        out.extend_from_slice(b",\"from\":");
        json_str(out, dates.day(fx.from));
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"released_at\":");
    json_str(out, dates.instant(release.released_at));
    if let Some(filed) = &release.filed {
        out.extend_from_slice(b",\"entry_type\":");
        json_str(out, &filed.entry_type);
        out.extend_from_slice(b",\"importer\":");
        match &filed.importer {
            Some(importer) => {
                out.extend_from_slice(b"{\"name\":");
                json_str(out, &importer.name);
                out.extend_from_slice(b",\"number\":");
                json_str(out, &importer.number);
                out.push(b'}');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"shipper\":");
        match &filed.shipper {
            Some(shipper) => {
                out.extend_from_slice(b"{\"name\":");
                json_str(out, &shipper.name);
                out.extend_from_slice(b",\"address\":");
                json_str(out, &shipper.address);
                out.push(b'}');
            }
            None => out.extend_from_slice(b"null"),
        }
    }
    if let Some(assessed) = assessed {
        out.extend_from_slice(b",\"duty_usd\":");
        json_usd_or_null(out, duty_usd);
        out.extend_from_slice(b",\"fees\":[");
        let mut fees_usd = rust_decimal::Decimal::ZERO;
        for (at, fee) in duties::fees_owed(assessed, all_usmca).enumerate() {
            if at > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"name\":");
            json_str(out, &fee.name);
            out.extend_from_slice(b",\"usd\":");
            json_str(out, DecimalText::usd(fee.usd).as_str());
            out.push(b'}');
            fees_usd += fee.usd;
        }
        out.extend_from_slice(b"],\"fees_usd\":");
        json_str(out, DecimalText::usd(fees_usd).as_str());
    }
    out.extend_from_slice(b"}\n");
}

/// A dollar amount as a JSON string, or `null` when it is not known.
fn json_usd_or_null(out: &mut Vec<u8>, usd: Option<rust_decimal::Decimal>) {
    match usd {
        Some(usd) => json_str(out, DecimalText::usd(usd).as_str()),
        None => out.extend_from_slice(b"null"),
    }
}

/// Days and instants as the release log writes them, formatted once while they repeat (every
/// release of a batch has the same day and instant).
#[derive(Default)]
struct Dates {
    day: Option<(NaiveDate, String)>,
    instant: Option<(chrono::DateTime<chrono::Utc>, String)>,
}

impl Dates {
    fn day(&mut self, day: NaiveDate) -> &str {
        if self.day.as_ref().is_none_or(|(known, _)| *known != day) {
            self.day = Some((day, day.to_string()));
        }
        &self.day.as_ref().expect("just set").1
    }

    fn instant(&mut self, at: chrono::DateTime<chrono::Utc>) -> &str {
        if self.instant.as_ref().is_none_or(|(known, _)| *known != at) {
            self.instant = Some((at, at.to_rfc3339_opts(SecondsFormat::Secs, true)));
        }
        &self.instant.as_ref().expect("just set").1
    }
}

/// A JSON string as `serde_json` writes it: `"` and `\` escaped, the control characters
/// below 0x20 as `\b`, `\t`, `\n`, `\f`, `\r` or `\u00XX` (lower-case hex), everything else as it is.
fn json_str(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let short: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..at]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Writes the manifest, one row per release line (see [`MANIFEST_COLUMNS`]).
fn write_manifest<'a>(
    releases: impl Iterator<Item = &'a Release>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    write_csv(
        &MANIFEST_COLUMNS,
        |row| for_each_manifest_row(releases, row),
        out,
    )
}

/// The rows of a CSV file: each given to the function that writes it.
type EachRow<'r, const N: usize> = &'r mut dyn FnMut(&[&str; N]) -> std::io::Result<()>;

/// Writes a CSV file, `columns` first, then the rows `for_each_row` gives, byte for byte what
/// the `csv` crate's default writer writes for the same records, without its per-field state
/// machine: a large day has millions of rows.
fn write_csv<const N: usize>(
    columns: &[&str; N],
    for_each_row: impl FnOnce(EachRow<N>) -> std::io::Result<()>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut rows = Vec::with_capacity(ROWS_BUFFER_BYTES + 4096);
    write_csv_row(&mut rows, columns);
    for_each_row(&mut |fields| {
        write_csv_row(&mut rows, fields);
        if rows.len() >= ROWS_BUFFER_BYTES {
            out.write_all(&rows)?;
            rows.clear();
        }
        Ok(())
    })?;
    out.write_all(&rows)
}

/// How many bytes of CSV rows are gathered before they are written.
const ROWS_BUFFER_BYTES: usize = 64 << 10;

/// Gives `row` the fields of each manifest row, in the order of [`MANIFEST_COLUMNS`]: a row
/// per line of each release.
fn for_each_manifest_row<'a>(
    releases: impl Iterator<Item = &'a Release>,
    mut row: impl FnMut(&[&str; MANIFEST_COLUMNS.len()]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut dates = Dates::default();
    for release in releases {
        let day = dates.day(release.day).to_owned();
        let address = &release.consignee.address;
        let assessed = release.assessed.as_deref();
        for line in &release.lines {
            let duty_usd = assessed
                .and_then(|assessed| {
                    duties::line_duty_usd(assessed.item(&line.item.sku), line.value_usd)
                })
                .map(DecimalText::usd);
            let fx = release
                .fx
                .iter()
                .find(|fx| *fx.currency == *line.currency)
                .map_or(rust_decimal::Decimal::ONE, |fx| fx.usd);
            let qty = line.qty.to_string();
            let (unit_price, fx, value_usd) = (
                DecimalText::new(line.unit_price),
                DecimalText::new(fx),
                DecimalText::usd(line.value_usd),
            );
            let filed = release.filed.as_deref();
            let (mid, usmca) = filed.map_or((None, false), |filed| filed.item(&line.item.sku));
            let importer_number = filed
                .and_then(|filed| filed.importer.as_ref())
                .map_or("", |importer| importer.number.as_str());
            row(&[
                release.release_id.as_str(),
                &day,
                &release.policy,
                &release.lane,
                &release.consignee.name,
                &address.line1,
                address.line2.as_deref().unwrap_or(""),
                &address.city,
                &address.state,
                &address.postal_code,
                &address.country,
                &line.order_id,
                &line.item.sku,
                &line.item.description,
                &qty,
                &line.item.hts,
                &line.item.origin,
                &line.currency,
                unit_price.as_str(),
                fx.as_str(),
                value_usd.as_str(),
                filed.map_or("", |filed| filed.entry_type.as_str()),
                importer_number,
                mid.unwrap_or(""),
                // The special program indicator: S for goods that claim USMCA origin.
                if usmca { "S" } else { "" },
                duty_usd.as_ref().map_or("", DecimalText::as_str),
            ])?;
        }
    }
    Ok(())
}

/// One CSV row, its fields as [`csv_field`] writes them, ended by a line feed.
fn write_csv_row(out: &mut Vec<u8>, fields: &[&str]) {
    for (at, field) in fields.iter().enumerate() {
        if at > 0 {
            out.push(b',');
        }
        csv_field(out, field);
    }
    out.push(b'\n');
}

/// A CSV field as the `csv` crate's default writer writes it: in double quotes, with each
/// double quote doubled, when it holds a comma, a double quote, a carriage return or a line
/// feed; as it is otherwise.
fn csv_field(out: &mut Vec<u8>, field: &str) {
    let bytes = field.as_bytes();
    if !bytes
        .iter()
        .any(|byte| matches!(byte, b',' | b'"' | b'\r' | b'\n'))
    {
        out.extend_from_slice(bytes);
        return;
    }
    out.push(b'"');
    for &byte in bytes {
        if byte == b'"' {
            out.push(b'"');
        }
        out.push(byte);
    }
    out.push(b'"');
}

/// Writes the release summary, one row per release (see [`SUMMARY_COLUMNS`]).
fn write_summary<'a>(
    releases: impl Iterator<Item = &'a Release>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    write_csv(
        &SUMMARY_COLUMNS,
        |row| for_each_summary_row(releases, row),
        out,
    )
}

/// Gives `row` the fields of each release summary row, in the order of [`SUMMARY_COLUMNS`].
fn for_each_summary_row<'a>(
    releases: impl Iterator<Item = &'a Release>,
    mut row: impl FnMut(&[&str; SUMMARY_COLUMNS.len()]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    for release in releases {
        let address = &release.consignee.address;
        let (orders, lines) = (release.orders.len(), release.lines.len());
        let owed = duties::owed(release);
        let duty_usd = owed.and_then(|owed| owed.duty_usd).map(DecimalText::usd);
        let fees_usd = owed.map(|owed| DecimalText::usd(owed.fees_usd));
        row(&[
            release.release_id.as_str(),
            &release.consignee.name,
            &address.city,
            &address.state,
            &address.postal_code,
            &orders.to_string(),
            &lines.to_string(),
            DecimalText::usd(release.value_usd).as_str(),
            duty_usd.as_ref().map_or("", DecimalText::as_str),
            fees_usd.as_ref().map_or("", DecimalText::as_str),
        ])?;
    }
    Ok(())
}

/// The release summary's columns.
pub const SUMMARY_COLUMNS: [&str; 10] = [
    "release_id",
    "consignee",
    "city",
    "state",
    "postal_code",
    "orders",
    "lines",
    "value_usd",
    "duty_usd",
    "fees_usd",
];

/// A CSV file as the `csv` crate writes it: what [`write_csv`] must match.
#[cfg(test)]
fn write_csv_with_csv<const N: usize>(
    columns: &[&str; N],
    for_each_row: impl FnOnce(EachRow<N>) -> std::io::Result<()>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(columns)?;
    for_each_row(&mut |fields| writer.write_record(fields).map_err(std::io::Error::from))?;
    writer.flush()
}

/// The manifest's columns.
pub const MANIFEST_COLUMNS: [&str; 26] = [
    "release_id",
    "day",
    "policy",
    "lane",
    "consignee_name",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "country",
    "order_id",
    "sku",
    "description",
    "quantity",
    "hts",
    "origin",
    "currency",
    "unit_price",
    "usd_per_currency_unit",
    "value_usd",
    "entry_type",
    "importer_number",
    "mid",
    "spi",
    "duty_usd",
];

/// One line of the release log (README, "Output files").
#[derive(Serialize)]
pub struct ReleaseRecord<'a> {
    release_id: &'a str,
    day: String,
    policy: &'a str,
    lane: &'a str,
    recipient_key: &'a str,
    consignee: ConsigneeRecord<'a>,
    orders: &'a [Text],
    lines: Vec<LineRecord<'a>>,
    value_usd: UsdAmount,
    fx: Vec<FxRecord<'a>>,
    released_at: String,
    /// What the release is filed with; absent for a release committed before releases
    /// recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    entry_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    importer: Option<Option<&'a crate::model::Importer>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shipper: Option<Option<&'a crate::model::Shipper>>,
    /// The estimate; absent for a release committed before releases recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    duty_usd: Option<Option<UsdAmount>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fees: Option<Vec<FeeRecord<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fees_usd: Option<UsdAmount>,
}

#[derive(Serialize)]
struct DutyRecord<'a> {
    program: &'a str,
    rate_percent: Amount,
    usd: UsdAmount,
}

#[derive(Serialize)]
struct FeeRecord<'a> {
    name: &'a str,
    usd: UsdAmount,
}

#[derive(Serialize)]
struct ConsigneeRecord<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_id: Option<&'a str>,
    address: &'a crate::model::Address,
}

#[derive(Serialize)]
struct LineRecord<'a> {
    order_id: &'a str,
    sku: &'a str,
    qty: u32,
    description: &'a str,
    hts: &'a str,
    origin: &'a str,
    value_usd: UsdAmount,
    currency: &'a str,
    unit_price: Amount,
    #[serde(skip_serializing_if = "Option::is_none")]
    mid: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usmca: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duty_usd: Option<Option<UsdAmount>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duties: Option<Vec<DutyRecord<'a>>>,
}

#[derive(Serialize)]
struct FxRecord<'a> {
    currency: &'a str,
    usd: Amount,
    from: String,
}

/// A US dollar amount written as a JSON string with at least two decimal places (`"20.00"`).
struct UsdAmount(rust_decimal::Decimal);

impl Serialize for UsdAmount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(DecimalText::usd(self.0).as_str())
    }
}

/// A decimal written as a JSON string (`"19.99"`), formatted without allocating.
struct Amount(rust_decimal::Decimal);

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(DecimalText::new(self.0).as_str())
    }
}

impl<'a> From<&'a Release> for ReleaseRecord<'a> {
    fn from(release: &'a Release) -> ReleaseRecord<'a> {
        let filed = release.filed.as_deref();
        let estimate = duties::of_release(release);
        ReleaseRecord {
            release_id: &release.release_id,
            day: release.day.to_string(),
            policy: &release.policy,
            lane: &release.lane,
            recipient_key: &release.recipient_key,
            consignee: consignee_record(&release.consignee),
            orders: &release.orders,
            lines: release
                .lines
                .iter()
                .enumerate()
                .map(|(at, line)| LineRecord {
                    order_id: &line.order_id,
                    sku: &line.item.sku,
                    qty: line.qty,
                    description: &line.item.description,
                    hts: &line.item.hts,
                    origin: &line.item.origin,
                    value_usd: UsdAmount(line.value_usd),
                    currency: &line.currency,
                    unit_price: Amount(line.unit_price),
                    mid: filed.map(|filed| filed.item(&line.item.sku).0),
                    usmca: filed.map(|filed| filed.item(&line.item.sku).1),
                    duty_usd: estimate
                        .as_ref()
                        .map(|estimate| estimate.lines[at].duty_usd.map(UsdAmount)),
                    duties: estimate.as_ref().map(|estimate| {
                        estimate.lines[at]
                            .duties
                            .iter()
                            .map(|duty| DutyRecord {
                                program: duty.program,
                                rate_percent: Amount(duty.rate_percent),
                                usd: UsdAmount(duty.usd),
                            })
                            .collect()
                    }),
                })
                .collect(),
            value_usd: UsdAmount(release.value_usd),
            fx: release
                .fx
                .iter()
                .map(|fx| FxRecord {
                    currency: &fx.currency,
                    usd: Amount(fx.usd),
                    from: fx.from.to_string(),
                })
                .collect(),
            released_at: release
                .released_at
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            entry_type: filed.map(|filed| filed.entry_type.as_str()),
            importer: filed.map(|filed| filed.importer.as_ref()),
            shipper: filed.map(|filed| filed.shipper.as_ref()),
            duty_usd: estimate
                .as_ref()
                .map(|estimate| estimate.duty_usd.map(UsdAmount)),
            fees: estimate.as_ref().map(|estimate| {
                estimate
                    .fees
                    .iter()
                    .map(|fee| FeeRecord {
                        name: &fee.name,
                        usd: UsdAmount(fee.usd),
                    })
                    .collect()
            }),
            fees_usd: estimate
                .as_ref()
                .map(|estimate| UsdAmount(estimate.fees_usd)),
        }
    }
}

fn consignee_record(consignee: &Consignee) -> ConsigneeRecord<'_> {
    ConsigneeRecord {
        name: &consignee.name,
        customer_id: consignee.customer_id.as_deref(),
        address: &consignee.address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, FxUsed, ItemFacts, ReleaseLine};
    use rust_decimal::Decimal;
    use std::fs;
    use std::str::FromStr;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn line(
        order_id: &str,
        sku: &str,
        qty: u32,
        currency: &str,
        price: &str,
        usd: &str,
    ) -> ReleaseLine {
        ReleaseLine {
            order_id: order_id.into(),
            item: std::sync::Arc::new(ItemFacts {
                sku: sku.into(),
                description: format!("Description of {sku}, with a comma"),
                hts: "6109.10.0012".into(),
                origin: "MX".into(),
            }),
            qty,
            currency: currency.into(),
            unit_price: dec(price),
            value_usd: dec(usd),
        }
    }

    fn release() -> Release {
        Release {
            release_id: "2026-11-24-000001".into(),
            day: NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
            policy: "informal-entry".into(),
            lane: "informal-entry".into(),
            recipient_key: "ana ruiz|1200 market st 4|san diego|CA|92101".into(),
            consignee: Consignee {
                name: "Ana Ruiz".into(),
                customer_id: None,
                address: Address {
                    line1: "1200 Market St".into(),
                    line2: Some("Apt 4".into()),
                    city: "San Diego".into(),
                    state: "CA".into(),
                    postal_code: "92101".into(),
                    country: "US".into(),
                },
            },
            orders: vec!["SO-1001".into(), "SO-1002".into()],
            lines: vec![
                line("SO-1001", "TSHIRT-M", 2, "USD", "19.99", "39.98"),
                line("SO-1002", "JEANS-32", 1, "MXN", "899.00", "48.64"),
            ],
            value_usd: dec("88.62"),
            fx: vec![FxUsed {
                currency: "MXN".into(),
                usd: dec("0.0541"),
                from: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            }],
            released_at: "2026-11-24T14:00:03.250Z".parse().unwrap(),
            filed: None,
            assessed: None,
        }
    }

    /// A release filed and assessed: the T-shirt under two programs, the jeans of unknown duty,
    /// and a fee.
    fn estimated() -> Release {
        use crate::model::{Assessed, AssessedItem, Fee, Filed, FiledItem, ProgramRate};
        let rate = |program: &str, rate: &str| ProgramRate {
            program: program.into(),
            rate_percent: dec(rate),
        };
        let mut release = release();
        release.release_id = "2026-11-24-000004".into();
        release.filed = Some(std::sync::Arc::new(Filed::new(
            "11".into(),
            None,
            None,
            vec![FiledItem {
                sku: "TSHIRT-M".into(),
                mid: Some("MXCONTEX1450TIJ".into()),
                usmca: false,
            }],
        )));
        release.assessed = Some(std::sync::Arc::new(Assessed::new(
            vec![
                AssessedItem {
                    sku: "JEANS-32".into(),
                    usmca: false,
                    known: false,
                    rates: vec![rate("section-122", "10")],
                },
                AssessedItem {
                    sku: "TSHIRT-M".into(),
                    usmca: false,
                    known: true,
                    rates: vec![rate("mfn", "16.5"), rate("section-122", "10")],
                },
            ],
            vec![Fee {
                name: "merchandise-processing-fee".into(),
                usd: dec("2.69"),
                usmca_exempt: true,
            }],
        )));
        release
    }

    #[test]
    fn an_estimated_release_log_line_reads_as_documented() {
        let line = serde_json::to_string(&ReleaseRecord::from(&estimated())).unwrap();
        insta::assert_snapshot!(line);
        let mut known = estimated();
        known.lines.truncate(1);
        let value: serde_json::Value = serde_json::to_value(ReleaseRecord::from(&known)).unwrap();
        // 39.98 x 16.5 % = 6.5967 and 39.98 x 10 % = 3.998, each to the cent.
        assert_eq!(value["lines"][0]["duty_usd"], "10.60");
        assert_eq!(value["duty_usd"], "10.60");
        assert_eq!(value["fees_usd"], "2.69");
    }

    #[test]
    fn a_release_log_line_reads_as_documented() {
        let line = serde_json::to_string(&ReleaseRecord::from(&release())).unwrap();
        insta::assert_snapshot!(line);
    }

    #[test]
    fn a_manifest_has_a_row_per_release_line() {
        let manifest = String::from_utf8(manifest(&[release(), estimated()])).unwrap();
        insta::assert_snapshot!(manifest);
    }

    #[test]
    fn a_release_summary_has_a_row_per_release() {
        let mut second = release();
        second.release_id = "2026-11-24-000002".into();
        second.consignee.name = "Zoë Peña, Jr.".into();
        second.orders.truncate(1);
        second.lines.truncate(1);
        second.value_usd = dec("40");
        let mut summary = Vec::new();
        write_summary([release(), second, estimated()].iter(), &mut summary).unwrap();
        insta::assert_snapshot!(String::from_utf8(summary).unwrap());
    }

    #[test]
    fn the_manifest_names_its_rate_column_usd_per_currency_unit() {
        let manifest = String::from_utf8(manifest(&[release()])).unwrap();
        let mut reader = csv::Reader::from_reader(manifest.as_bytes());
        let header = reader.headers().unwrap().clone();
        let column = header
            .iter()
            .position(|name| name == "usd_per_currency_unit")
            .expect("no usd_per_currency_unit column");
        let rates: Vec<String> = reader
            .records()
            .map(|row| row.unwrap()[column].to_owned())
            .collect();
        assert_eq!(rates, ["1", "0.0541"]);
    }

    /// The log line and manifest rows of `release` as written here, and as `serde_json` and the
    /// `csv` crate write them.
    fn written_both_ways(releases: &[Release]) -> [(Vec<u8>, Vec<u8>); 3] {
        let mut log = Vec::new();
        write_log(releases.iter(), &mut log).unwrap();
        let mut log_reference = Vec::new();
        for release in releases {
            serde_json::to_writer(&mut log_reference, &ReleaseRecord::from(release)).unwrap();
            log_reference.push(b'\n');
        }
        let mut manifest = Vec::new();
        write_manifest(releases.iter(), &mut manifest).unwrap();
        let mut manifest_reference = Vec::new();
        write_csv_with_csv(
            &MANIFEST_COLUMNS,
            |row| for_each_manifest_row(releases.iter(), row),
            &mut manifest_reference,
        )
        .unwrap();
        let mut summary = Vec::new();
        write_summary(releases.iter(), &mut summary).unwrap();
        let mut summary_reference = Vec::new();
        write_csv_with_csv(
            &SUMMARY_COLUMNS,
            |row| for_each_summary_row(releases.iter(), row),
            &mut summary_reference,
        )
        .unwrap();
        [
            (log, log_reference),
            (manifest, manifest_reference),
            (summary, summary_reference),
        ]
    }

    fn assert_written_as_the_crates_write(releases: &[Release]) {
        for (written, reference) in written_both_ways(releases) {
            assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&reference)
            );
        }
    }

    #[test]
    fn the_files_are_written_byte_for_byte_as_serde_json_and_csv_write_them() {
        let plain = release();
        let mut awkward = release();
        awkward.release_id = "2026-11-24-000002".into();
        awkward.consignee.name = "Zoë \"Z\" O'Brien, Jr.\\ \u{1f600}\u{7f}".into();
        awkward.consignee.customer_id = Some("c-\n\r\t\u{8}\u{c}\u{0}\u{1f}".into());
        awkward.consignee.address.line2 = None;
        awkward.consignee.address.line1 = "1 \"Main\", St\r\nApt 4".into();
        awkward.orders.push("SO,\"3\"".into());
        std::sync::Arc::make_mut(&mut awkward.lines[0].item).description =
            "A \"quoted\", two-line\ndescription\\".into();
        awkward.lines[1].value_usd = dec("-0.50");
        awkward.fx.clear();
        let mut empty = release();
        empty.release_id = "2026-11-24-000003".into();
        empty.orders.clear();
        empty.lines.clear();
        empty.consignee.address.line2 = Some(Text::default());
        assert_written_as_the_crates_write(&[plain, awkward, empty, estimated()]);
        assert_written_as_the_crates_write(&[]);
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_written_as_serde_json_and_csv_write_it(
            name in "\\PC*",
            line1 in ".*",
            control in "[\\x00-\\x1f\\x7f\",\\\\\r\n a-z]*",
        ) {
            let mut release = release();
            release.consignee.name = name.into();
            release.consignee.address.line1 = line1.into();
            release.consignee.address.city = control.as_str().into();
            std::sync::Arc::make_mut(&mut release.lines[0].item).description = control.clone();
            for (written, reference) in written_both_ways(&[release]) {
                proptest::prop_assert_eq!(written, reference);
            }
        }
    }

    /// Files written into `logs` without a byte-order mark.
    fn plain(logs: &Path) -> Output<'_> {
        Output {
            logs,
            csv_bom: false,
        }
    }

    #[test]
    fn the_csv_files_start_with_a_byte_order_mark_when_asked_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let day = release().day;
        for csv_bom in [true, false] {
            let output = Output {
                logs: dir.path(),
                csv_bom,
            };
            write_day(output, day, &[&[release()]], &[]).unwrap();
            for file in [
                manifest_path(dir.path(), day),
                summary_path(dir.path(), day),
            ] {
                let bytes = fs::read(&file).unwrap();
                assert_eq!(bytes.starts_with(UTF8_BOM), csv_bom, "{}", file.display());
                let rest = bytes.strip_prefix(UTF8_BOM).unwrap_or(&bytes);
                assert!(rest.starts_with(b"release_id,"), "{}", file.display());
            }
            // The release log is JSON Lines, read by programs: never a mark.
            assert!(fs::read(log_path(dir.path(), day))
                .unwrap()
                .starts_with(b"{\"release_id\""));
        }
    }

    #[test]
    fn writing_a_day_twice_gives_the_same_files_once() {
        let dir = tempfile::tempdir().unwrap();
        let day = release().day;
        write_day(plain(dir.path()), day, &[&[release()]], &[]).unwrap();
        let first = fs::read(log_path(dir.path(), day)).unwrap();
        write_day(plain(dir.path()), day, &[&[release()]], &[]).unwrap();
        assert_eq!(fs::read(log_path(dir.path(), day)).unwrap(), first);
        assert_eq!(first.iter().filter(|byte| **byte == b'\n').count(), 1);
        let names: Vec<String> = fs::read_dir(releases_dir(dir.path()))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "temporary files left behind: {names:?}");
    }

    #[test]
    fn the_release_files_are_readable_by_the_group_and_no_one_else() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o7777;
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let day = release().day;
        write_day(plain(&logs), day, &[&[release()]], &[]).unwrap();
        assert_eq!(mode(&logs), 0o750, "the logs folder");
        assert_eq!(mode(&releases_dir(&logs)), 0o750, "the releases folder");
        for file in [
            log_path(&logs, day),
            manifest_path(&logs, day),
            summary_path(&logs, day),
        ] {
            assert_eq!(mode(&file), 0o640, "{}", file.display());
        }
        // A releases folder an earlier build made owner-only is opened to the group.
        fs::set_permissions(releases_dir(&logs), fs::Permissions::from_mode(0o700)).unwrap();
        write_day(plain(&logs), day, &[&[release()]], &[]).unwrap();
        assert_eq!(mode(&releases_dir(&logs)), 0o750);
    }
}
