//! Spool intake: files dropped into `<paths.spool>/inbox/` are taken in, one at a time, each in
//! one durable commit, then moved to `done/`, or to `rejected/` with a report.
//!
//! The kind of a file is told by its name: `items*.csv` (the item catalogue), `stock-receive*.csv`
//! (receipts), `stock-count*.csv` (counts) and `orders*.jsonl` (orders). Names starting with `.`
//! or ending in `.tmp` are being written and are left alone: write a file under such a name,
//! then rename it into place. Any other name is rejected whole.
//!
//! A file that is read and has rejected lines goes to `rejected/` with `<name>.report.txt`,
//! which names every rejected line and reason, and `<stem>.rejected.<ext>`, which holds just
//! those lines (with the CSV header) to fix and drop in again; the lines not named there are
//! committed. A file that cannot be read, or whose CSV header is wrong, is rejected whole and
//! nothing of it is applied.
//!
//! A file is first moved from the inbox into `processing/`, where nobody else writes, so that a
//! file replaced in the inbox under the same name is a new file, taken in on its own. The commit
//! records the file (its name, size, modification time and a hash of its bytes) with its
//! report, so that a restart between the commit and the move neither applies the file twice nor
//! loses its report; files left in `processing/` by a stop are taken in first at the next start.

use std::fs;
use std::io::{self, BufRead, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::JobError;
use crate::config::Config;
use crate::files;
use crate::operations::{self, InputKind, IntakeReport, Source};
use crate::store::Store;

/// What a spool file holds, told by its name.
pub fn kind_of(name: &str) -> Option<InputKind> {
    let rules = [
        ("items", ".csv", InputKind::Items),
        ("duties", ".csv", InputKind::Duties),
        ("stock-receive", ".csv", InputKind::Receipts),
        ("stock-count", ".csv", InputKind::Counts),
        ("orders", ".jsonl", InputKind::Orders),
    ];
    rules
        .into_iter()
        .find(|(prefix, suffix, _)| name.starts_with(prefix) && name.ends_with(suffix))
        .map(|(_, _, kind)| kind)
}

/// Whether a name is still being written, by convention.
pub fn in_progress(name: &str) -> bool {
    name.starts_with('.') || name.ends_with(".tmp")
}

pub fn inbox(spool: &Path) -> PathBuf {
    spool.join("inbox")
}

pub fn done(spool: &Path) -> PathBuf {
    spool.join("done")
}

pub fn rejected(spool: &Path) -> PathBuf {
    spool.join(operations::SPOOL_REJECTED)
}

pub fn processing(spool: &Path) -> PathBuf {
    spool.join("processing")
}

/// Creates the spool's folders where missing.
pub fn prepare(spool: &Path) -> io::Result<()> {
    for folder in [
        inbox(spool),
        processing(spool),
        done(spool),
        rejected(spool),
    ] {
        files::create_private_dir(&folder)?;
    }
    Ok(())
}

/// The files waiting, in the order to take them in: those a stop left in `processing/` first,
/// then the inbox's, each by kind, then in the order they arrived (so that of two stock counts
/// the later one is applied last), then by name.
pub fn waiting(spool: &Path) -> io::Result<Vec<(Option<InputKind>, PathBuf)>> {
    let mut all = Vec::new();
    for folder in [processing(spool), inbox(spool)] {
        let mut found = Vec::new();
        for entry in fs::read_dir(folder)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if in_progress(&name) || !entry.file_type()?.is_file() {
                continue;
            }
            // Renamed into the inbox when it arrived: its change time tells when.
            let metadata = entry.metadata()?;
            let arrived = (metadata.ctime(), metadata.ctime_nsec());
            found.push((kind_of(&name), arrived, entry.path()));
        }
        // Unknown kinds last, so that they do not hold up the others.
        found.sort_by(|a, b| (a.0.is_none(), a.0, a.1, &a.2).cmp(&(b.0.is_none(), b.0, b.1, &b.2)));
        all.extend(found.into_iter().map(|(kind, _, path)| (kind, path)));
    }
    Ok(all)
}

/// What became of a spool file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every line taken in; moved to `done/`.
    Done(IntakeReport),
    /// Some lines rejected, the rest committed; moved to `rejected/` with a report.
    Partly(IntakeReport),
    /// Nothing applied; moved to `rejected/` with a report.
    Rejected(String),
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Done(_) => "done",
            Outcome::Partly(_) => "partly-rejected",
            Outcome::Rejected(_) => "rejected",
        }
    }
}

/// Takes in one spool file, commits it, and moves it. A store failure leaves the file in the
/// inbox, to be tried again.
pub fn take_in(
    store: &mut Store,
    config: &Config,
    file: &Path,
    kind: Option<InputKind>,
) -> Result<Outcome, JobError> {
    let spool = config.paths.spool.clone();
    let name = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Out of the inbox first: from here on the file is the daemon's alone.
    let taken;
    let file = if file.parent() == Some(processing(&spool).as_path()) {
        file
    } else {
        taken = move_into(file, &processing(&spool), &name).map_err(io_failed)?;
        taken.as_path()
    };
    let Some(kind) = kind else {
        let why = format!(
            "{name}: not a known kind of file; names start with items, stock-receive or \
             stock-count and end in .csv, or start with orders and end in .jsonl"
        );
        reject_whole(&spool, file, &name, &why).map_err(io_failed)?;
        return Ok(Outcome::Rejected(why));
    };
    let metadata = fs::metadata(file).map_err(io_failed)?;
    let mark = format!(
        "spool/{name}/{}/{}.{:09}/{:016x}",
        metadata.len(),
        metadata.mtime(),
        metadata.mtime_nsec(),
        content_hash(file).map_err(io_failed)?
    );
    let stored = operations::applied(store, &mark)
        .map_err(|error| JobError::Failed(format!("{name}: {:#}", anyhow::Error::from(error))))?;
    let report = match stored {
        Some(report) => {
            tracing::info!(file = %name, "spool file was committed before a restart; moving it");
            report
        }
        None => {
            let result = operations::import(store, config, Source::File(file), kind, Some(&mark))
                .map_err(JobError::from);
            match result {
                Ok(report) => report,
                Err(JobError::Refused(why)) => {
                    // The report names the file as it was dropped, not where it is taken in.
                    let why = why.replace(&file.display().to_string(), &name);
                    reject_whole(&spool, file, &name, &why).map_err(io_failed)?;
                    return Ok(Outcome::Rejected(why));
                }
                Err(error) => return Err(error),
            }
        }
    };
    if report.rejected.is_empty() {
        crate::crashpoint::reached("spool-before-move");
        move_into(file, &done(&spool), &name).map_err(io_failed)?;
        Ok(Outcome::Done(report))
    } else {
        reject_lines(&spool, file, &name, kind, &report).map_err(io_failed)?;
        Ok(Outcome::Partly(report))
    }
}

/// FNV-1a of a file's bytes: two files that differ only in content have different marks.
fn content_hash(file: &Path) -> io::Result<u64> {
    use std::io::Read;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut reader = fs::File::open(file)?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            return Ok(hash);
        }
        for byte in &buffer[..read] {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn io_failed(error: io::Error) -> JobError {
    JobError::Failed(format!("spool: {error}"))
}

/// Moves a file into `folder` under its name, or a free variant of it, durably, and makes it
/// owner-only where it can (a file another account dropped may refuse).
fn move_into(file: &Path, folder: &Path, name: &str) -> io::Result<PathBuf> {
    let target = free_name(folder, name);
    fs::rename(file, &target)?;
    let _ = fs::set_permissions(&target, fs::Permissions::from_mode(0o600));
    files::sync_dir(folder)?;
    if let Some(inbox) = file.parent() {
        files::sync_dir(inbox)?;
    }
    Ok(target)
}

/// `name`, or `name` with `-1`, `-2`... before its extension, whichever is not taken.
fn free_name(folder: &Path, name: &str) -> PathBuf {
    let plain = folder.join(name);
    if !plain.exists() {
        return plain;
    }
    let (stem, extension) = match name.rfind('.') {
        Some(dot) if dot > 0 => (&name[..dot], &name[dot..]),
        _ => (name, ""),
    };
    (1u64..)
        .map(|n| folder.join(format!("{stem}-{n}{extension}")))
        .find(|candidate| !candidate.exists())
        .expect("some numbered name is free")
}

/// Writes `path` durably, owner-only.
fn write_file(path: &Path, text: &[u8]) -> io::Result<()> {
    files::replace_durably_with(path, |out| out.write_all(text))
}

/// The report is written before the file moves, so that a crash between the two leaves the
/// file in the inbox, to be handled again the same way.
fn reject_whole(spool: &Path, file: &Path, name: &str, why: &str) -> io::Result<()> {
    let folder = rejected(spool);
    let target = free_name(&folder, name);
    let report = if why.ends_with(NOTHING_APPLIED) {
        format!("{why}\n")
    } else {
        format!("{why}\n{NOTHING_APPLIED}\n")
    };
    write_file(&report_path(&target), report.as_bytes())?;
    crate::crashpoint::reached("spool-before-move");
    move_into(file, &folder, name)?;
    Ok(())
}

/// What the report of a file rejected whole ends with.
const NOTHING_APPLIED: &str = "nothing of this file was applied";

fn report_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(operations::REPORT_SUFFIX);
    target.with_file_name(name)
}

fn reject_lines(
    spool: &Path,
    file: &Path,
    name: &str,
    kind: InputKind,
    report: &IntakeReport,
) -> io::Result<()> {
    let folder = rejected(spool);
    // The rejected lines, copied before the file moves.
    let mut wanted: Vec<usize> = report.rejected.iter().map(|r| r.line).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut lines = Vec::new();
    let reader = io::BufReader::new(fs::File::open(file)?);
    let mut header_kept = kind == InputKind::Orders;
    for (index, line) in reader.split(b'\n').enumerate() {
        let line = line?;
        let line_no = index + 1;
        let blank = line.iter().all(u8::is_ascii_whitespace);
        if !header_kept && !blank {
            lines.extend_from_slice(&line);
            lines.push(b'\n');
            header_kept = true;
            continue;
        }
        if wanted.binary_search(&line_no).is_ok() {
            lines.extend_from_slice(&line);
            lines.push(b'\n');
        }
    }
    // The reports first, named after the place the file will take, then the move: a crash in
    // between leaves the file in the inbox, and the next attempt writes the same reports again.
    let target = free_name(&folder, name);
    let target_name = target
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let (stem, extension) = match target_name.rfind('.') {
        Some(dot) if dot > 0 => (&target_name[..dot], &target_name[dot..]),
        _ => (target_name.as_str(), ""),
    };
    let lines_path = folder.join(format!("{stem}.rejected{extension}"));
    write_file(&lines_path, &lines)?;
    let mut text = format!(
        "{name}: {} accepted, {} unchanged, {} rejected\n\
         the accepted lines are committed; fix the lines in {} and drop that file in again\n",
        report.accepted,
        report.unchanged,
        report.rejected.len(),
        lines_path.file_name().unwrap_or_default().to_string_lossy()
    );
    for rejection in &report.rejected {
        text.push_str(&format!("{name}:{rejection}\n"));
    }
    write_file(&report_path(&target), text.as_bytes())?;
    crate::crashpoint::reached("spool-before-move");
    move_into(file, &folder, name)?;
    Ok(())
}
