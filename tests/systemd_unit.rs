//! The systemd files in `systemd/`: the settings the daemon relies on, and, where systemd's own
//! tools are installed, the unit's exposure score (`systemd-analyze security`), a `verify` run,
//! and the folders `systemd-sysusers` and `systemd-tmpfiles` make in a scratch root.
//! Where a tool is missing the check says it is skipped and passes.

use std::env;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const UNIT: &str = "border-release.service";

/// Highest acceptable overall exposure, in tenths (2.0).
const MAX_EXPOSURE_TENTHS: u32 = 20;

fn systemd_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("systemd")
        .join(name)
}

fn read(name: &str) -> String {
    let path = systemd_file(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `Key=value` lines of the unit, comments and section headers left out, in order.
fn settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with(['#', ';', '[']))
        .map(|line| {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not a setting: {line}"));
            (key.trim().to_string(), value.trim().to_string())
        })
        .collect()
}

fn values<'a>(settings: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    settings
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The one value of `key`; fails if it is missing or set more than once.
fn value<'a>(settings: &'a [(String, String)], key: &str) -> &'a str {
    match values(settings, key).as_slice() {
        [one] => one,
        other => panic!("{key}= should be set once, found {other:?}"),
    }
}

/// `program` found on PATH.
fn which(program: &str) -> Option<PathBuf> {
    env::var_os("PATH").and_then(|paths| {
        env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// `program` found on PATH, or `None` after saying that `what` is skipped.
fn tool(program: &str, what: &str) -> Option<PathBuf> {
    let found = which(program);
    if found.is_none() {
        eprintln!("{program} is not on PATH: {what} skipped");
    }
    found
}

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "cat")
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
}

fn transcript(program: &Path, args: &[&str], output: &Output) -> String {
    format!(
        "$ {} {}\n{}\n--- stdout\n{}--- stderr\n{}",
        program.display(),
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    )
}

/// Lines of the output that name the unit: systemd reports problems with a unit file as
/// `<path>:<line>: ...` or `<unit>: ...`.
fn complaints(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&output.stderr).lines())
        .filter(|line| line.contains(&format!("{UNIT}:")) && !line.contains("exposure level"))
        .map(str::to_string)
        .collect()
}

/// "0.9" as 9 tenths.
fn tenths(figure: &str) -> Option<u32> {
    let (whole, tenth) = figure.split_once('.')?;
    if tenth.len() != 1 {
        return None;
    }
    Some(whole.parse::<u32>().ok()? * 10 + tenth.parse::<u32>().ok()?)
}

#[test]
fn the_unit_states_how_the_daemon_starts_reloads_stops_and_runs() {
    let unit = read(UNIT);
    let s = settings(&unit);
    assert_eq!(value(&s, "Type"), "notify");
    assert_eq!(value(&s, "NotifyAccess"), "main");
    assert_eq!(value(&s, "ExecStart"), "/usr/bin/border-release serve");
    assert_eq!(value(&s, "ExecReload"), "/bin/kill -HUP $MAINPID");
    // The daemon's own drain deadline (20 s) must stay below this.
    assert_eq!(value(&s, "TimeoutStopSec"), "30s");
    assert!(
        !value(&s, "WatchdogSec").is_empty(),
        "WatchdogSec= is empty"
    );
    assert_eq!(value(&s, "Restart"), "on-failure");
    assert_eq!(value(&s, "User"), "border-release");
    assert_eq!(value(&s, "Group"), "border-release");
    assert_eq!(value(&s, "UMask"), "0077");
    assert_eq!(value(&s, "StateDirectory"), "border-release");
    assert_eq!(value(&s, "LogsDirectory"), "border-release");
    // The release files are the group's to read (the daemon sets their modes, 0640 in folders
    // 0750, whatever the umask); the store is the daemon's alone.
    assert_eq!(value(&s, "LogsDirectoryMode"), "0750");
    assert_eq!(value(&s, "StateDirectoryMode"), "0700");
    assert_eq!(value(&s, "RuntimeDirectory"), "border-release");
    assert_eq!(value(&s, "RuntimeDirectoryMode"), "0750");
    assert_eq!(value(&s, "ConfigurationDirectory"), "border-release");
    assert_eq!(value(&s, "ReadWritePaths"), "/var/spool/border-release");
    assert_eq!(value(&s, "ProtectSystem"), "strict");
    assert_eq!(value(&s, "CapabilityBoundingSet"), "");
    assert_eq!(value(&s, "NoNewPrivileges"), "yes");
    assert_eq!(
        value(&s, "RestrictAddressFamilies"),
        "AF_UNIX AF_INET AF_INET6"
    );
    assert_eq!(value(&s, "IPAddressDeny"), "any");
    assert_eq!(value(&s, "IPAddressAllow"), "localhost");
    assert_eq!(
        values(&s, "SystemCallFilter"),
        ["@system-service", "~@privileged @resources"]
    );
}

#[test]
fn the_tmpfiles_entries_make_a_setgid_inbox_and_a_closed_config_folder() {
    let entries: Vec<Vec<String>> = read("border-release.tmpfiles.conf")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split_whitespace().map(str::to_string).collect())
        .collect();
    let entry = |path: &str| {
        entries
            .iter()
            .find(|fields| fields.get(1).is_some_and(|p| p == path))
            .unwrap_or_else(|| panic!("no entry for {path}"))[..5]
            .join(" ")
    };
    assert_eq!(
        entry("/etc/border-release"),
        "d /etc/border-release 0750 root border-release"
    );
    assert_eq!(
        entry("/var/spool/border-release/inbox"),
        "d /var/spool/border-release/inbox 2770 border-release border-release"
    );
    for folder in ["", "/done", "/rejected"] {
        let path = format!("/var/spool/border-release{folder}");
        assert_eq!(
            entry(&path),
            format!("d {path} 0750 border-release border-release")
        );
    }
}

#[test]
fn systemd_analyze_security_rates_the_unit_at_most_2_0() {
    let Some(analyze) = tool("systemd-analyze", "the exposure check") else {
        return;
    };
    let help = run(&analyze, &["security", "--help"]);
    if !String::from_utf8_lossy(&help.stdout).contains("--offline") {
        eprintln!("this systemd-analyze has no --offline: the exposure check skipped");
        return;
    }
    let unit = systemd_file(UNIT);
    let args = [
        "security",
        "--offline=true",
        "--no-pager",
        unit.to_str().unwrap(),
    ];
    let output = run(&analyze, &args);
    let transcript = transcript(&analyze, &args, &output);
    assert!(output.status.success(), "{transcript}");
    assert_eq!(complaints(&output), Vec::<String>::new(), "{transcript}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let figure = stdout
        .lines()
        .find_map(|line| line.split_once(&format!("Overall exposure level for {UNIT}: ")))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no overall exposure level in the output\n{transcript}"));
    let level = tenths(figure)
        .unwrap_or_else(|| panic!("exposure {figure:?} is not a number\n{transcript}"));
    assert!(
        level <= MAX_EXPOSURE_TENTHS,
        "exposure {figure} is above 2.0\n{transcript}"
    );
    eprintln!("systemd-analyze security: overall exposure {figure}");
}

/// `systemd-analyze verify` insists that ExecStart= names an existing executable, so it checks
/// a copy of the unit whose ExecStart= names the binary this build made, and is otherwise the same.
#[test]
fn systemd_analyze_verify_finds_nothing_wrong() {
    let Some(analyze) = tool("systemd-analyze", "systemd-analyze verify") else {
        return;
    };
    let binary = env!("CARGO_BIN_EXE_border-release");
    let original = "ExecStart=/usr/bin/border-release ";
    let unit = read(UNIT);
    assert!(unit.contains(original), "no {original:?} in the unit");
    let quoted = format!("ExecStart=\"{}\" ", binary.replace('%', "%%"));
    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join(UNIT);
    fs::write(&copy, unit.replace(original, &quoted)).unwrap();
    let args = ["verify", "--man=no", "--no-pager", copy.to_str().unwrap()];
    let output = run(&analyze, &args);
    let transcript = transcript(&analyze, &args, &output);
    assert!(output.status.success(), "{transcript}");
    assert_eq!(complaints(&output), Vec::<String>::new(), "{transcript}");
}

/// Runs the sysusers and tmpfiles entries against a scratch root (they change owners, so only
/// as root) and checks the owners and modes of what they made.
#[test]
fn sysusers_and_tmpfiles_make_the_user_and_the_folders() {
    let (Some(sysusers), Some(tmpfiles)) = (which("systemd-sysusers"), which("systemd-tmpfiles"))
    else {
        eprintln!("systemd-sysusers or systemd-tmpfiles is not on PATH: their run skipped");
        return;
    };
    let id = Command::new("id").arg("-u").output();
    if !id.is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0") {
        eprintln!("not running as root: the sysusers and tmpfiles run skipped");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("etc")).unwrap();
    let root_arg = format!("--root={}", root.path().display());
    for (program, file, extra) in [
        (&sysusers, "border-release.sysusers.conf", None),
        (&tmpfiles, "border-release.tmpfiles.conf", Some("--create")),
    ] {
        let conf = systemd_file(file);
        let mut args = vec![root_arg.as_str()];
        args.extend(extra);
        args.push(conf.to_str().unwrap());
        let output = run(program, &args);
        assert!(
            output.status.success(),
            "{}",
            transcript(program, &args, &output)
        );
    }

    let id_of = |file: &str| -> u32 {
        let text = fs::read_to_string(root.path().join("etc").join(file)).unwrap();
        text.lines()
            .map(|line| line.split(':').collect::<Vec<_>>())
            .find(|fields| fields[0] == "border-release")
            .unwrap_or_else(|| panic!("no border-release in {file}:\n{text}"))[2]
            .parse()
            .unwrap()
    };
    let (uid, gid) = (id_of("passwd"), id_of("group"));
    let passwd = fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    let shell = passwd
        .lines()
        .find(|line| line.starts_with("border-release:"))
        .and_then(|line| line.rsplit(':').next())
        .unwrap();
    assert!(shell.ends_with("nologin"), "login shell {shell}");

    for (path, mode, owner) in [
        ("etc/border-release", 0o750, 0),
        ("var/spool/border-release", 0o750, uid),
        ("var/spool/border-release/inbox", 0o2770, uid),
        ("var/spool/border-release/done", 0o750, uid),
        ("var/spool/border-release/rejected", 0o750, uid),
    ] {
        let meta = fs::metadata(root.path().join(path)).unwrap();
        assert!(meta.is_dir(), "{path}");
        assert_eq!(meta.mode() & 0o7777, mode, "{path}: mode {:o}", meta.mode());
        assert_eq!((meta.uid(), meta.gid()), (owner, gid), "{path}: owner");
    }
}

#[test]
fn exposure_figures_read_as_tenths() {
    assert_eq!(tenths("0.9"), Some(9));
    assert_eq!(tenths("2.0"), Some(20));
    assert_eq!(tenths("10.0"), Some(100));
    assert_eq!(tenths("1"), None);
    assert_eq!(tenths("1.25"), None);
    assert_eq!(tenths("x.5"), None);
}
