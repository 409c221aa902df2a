//! A temporary warehouse for black-box tests of the built binary: its own folder, config,
//! store and logs, and a pinned clock.

#![allow(dead_code)]

pub mod powerloss;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// The policies of the test config: Section 321 at $800, then informal entry at $2,500 from
/// 2026-12-03, so a story can see a policy change free held orders.
pub const POLICIES: &str = r#"
[[policy]]
name = "section-321"
from = "2016-03-10"
lane = "de-minimis"
value_limit_usd = "800"
releases_per_recipient_per_day = 1
excluded_origins = ["CN", "HK"]
excluded_hts_prefixes = ["2203", "2204", "2208", "24", "3303"]
excluded_flags = ["adcvd", "quota", "pga", "irc-tax"]

[[policy]]
name = "informal-entry"
from = "2026-12-03"
lane = "informal-entry"
value_limit_usd = "2500"
releases_per_recipient_per_day = 1
excluded_flags = ["adcvd"]
"#;

pub struct Warehouse {
    pub dir: tempfile::TempDir,
}

impl Warehouse {
    /// A warehouse in Tijuana with the test policies and an MXN rate from 2026-10-01.
    pub fn new() -> Warehouse {
        Warehouse::with_policies(POLICIES)
    }

    pub fn with_policies(policies: &str) -> Warehouse {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = format!(
            r#"
[warehouse]
name = "test-tijuana"
timezone = "America/Los_Angeles"

[paths]
data = "data"
logs = "logs"
spool = "spool"

[schedule]
batch = "0 0 6 * * *"
cutoff = "06:00"

[recipients]
identity = "name-and-address"

[api]
listen = "127.0.0.1:0"
token_file = "api-token"

[entry]
importer_name = "Test Imports LLC"
importer_number = "12-3456789"
shipper_name = "Test Tijuana Warehouse SA de CV"
shipper_address = "Blvd Industrial 1, Tijuana, BC, MX"

[[currency.rates]]
currency = "MXN"
from = "2026-10-01"
usd = "0.0541"
{policies}"#
        );
        std::fs::write(dir.path().join("border-release.toml"), config).expect("write config");
        Warehouse { dir }
    }

    /// A warehouse whose catalogue holds [`ITEMS`], taken in at `now`.
    pub fn with_items(now: &str) -> Warehouse {
        let w = Warehouse::new();
        let items = w.file("items.csv", ITEMS);
        w.ok(now, &["items", "import", items.to_str().unwrap()]);
        w
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config(&self) -> PathBuf {
        self.path("border-release.toml")
    }

    /// Writes a file into the warehouse folder and returns its path.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write input file");
        path
    }

    /// Runs the binary with the clock pinned at `now` (RFC 3339).
    pub fn run_at(&self, now: &str, args: &[&str]) -> Output {
        self.command(now, args, None)
            .output()
            .expect("run border-release")
    }

    /// Runs the binary and aborts it at the named crash point.
    pub fn run_crashing(&self, now: &str, point: &str, args: &[&str]) -> Output {
        self.command(now, args, Some(point))
            .output()
            .expect("run border-release")
    }

    fn command(&self, now: &str, args: &[&str], crash_at: Option<&str>) -> Command {
        let mut command = Command::from_std(self.process(now, args));
        if let Some(point) = crash_at {
            command.env("BORDER_RELEASE_CRASH_AT", point);
        }
        command
    }

    /// The binary as a plain command with the clock pinned at `now`, standard input closed:
    /// for tests that spawn it, kill it or preload into it.
    pub fn process(&self, now: &str, args: &[&str]) -> std::process::Command {
        let mut command =
            std::process::Command::new(assert_cmd::cargo::cargo_bin("border-release"));
        command
            .current_dir(self.dir.path())
            .env_remove("BORDER_RELEASE_CONFIG")
            .env_remove("BORDER_RELEASE_CRASH_AT")
            .env("BORDER_RELEASE_FAKE_NOW", now)
            .arg("--config")
            .arg(self.config())
            .args(args)
            .stdin(std::process::Stdio::null());
        command
    }

    /// Runs and expects exit code `code`, returning stdout.
    pub fn expect(&self, now: &str, args: &[&str], code: i32) -> String {
        let output = self.run_at(now, args);
        assert_eq!(
            output.status.code(),
            Some(code),
            "border-release {args:?} exited {:?}\nstdout:\n{}\nstderr:\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("stdout is UTF-8")
    }

    pub fn ok(&self, now: &str, args: &[&str]) -> String {
        self.expect(now, args, 0)
    }

    /// `check-store` must find every invariant holding.
    pub fn assert_store_sound(&self, now: &str) {
        let out = self.ok(now, &["check-store"]);
        assert!(out.contains("every invariant holds"), "{out}");
    }

    /// `orders list --json`, as (order_id, state, reason, release_id, day).
    pub fn orders(&self, now: &str) -> Vec<OrderRow> {
        self.ok(now, &["orders", "list", "--json"])
            .lines()
            .map(|line| {
                let value: serde_json::Value =
                    serde_json::from_str(line).expect("orders list line is JSON");
                OrderRow {
                    order_id: value["order_id"].as_str().unwrap().to_owned(),
                    state: value["state"].as_str().unwrap().to_owned(),
                    reason: value["reason"].as_str().map(str::to_owned),
                    release_id: value["release_id"].as_str().map(str::to_owned),
                    day: value["day"].as_str().map(str::to_owned),
                }
            })
            .collect()
    }

    pub fn order(&self, now: &str, order_id: &str) -> OrderRow {
        self.orders(now)
            .into_iter()
            .find(|row| row.order_id == order_id)
            .unwrap_or_else(|| panic!("order {order_id} not listed"))
    }

    /// The release log of `day` as JSON values (empty when the file does not exist).
    pub fn release_log(&self, day: &str) -> Vec<serde_json::Value> {
        read_jsonl(&self.path(&format!("logs/releases/{day}.jsonl")))
    }

    pub fn manifest(&self, day: &str) -> Vec<csv::StringRecord> {
        let path = self.path(&format!("logs/releases/{day}.manifest.csv"));
        let mut reader = csv::Reader::from_path(path).expect("manifest exists");
        reader
            .records()
            .map(|record| record.expect("manifest row"))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub order_id: String,
    pub state: String,
    pub reason: Option<String>,
    pub release_id: Option<String>,
    pub day: Option<String>,
}

/// What a command wrote to standard error.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .map(|line| serde_json::from_str(line).expect("log line is JSON"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// One order as a JSON line.
pub fn order(
    id: &str,
    placed_at: &str,
    name: &str,
    street: &str,
    currency: &str,
    lines: &[(&str, u32, &str)],
) -> String {
    let lines: Vec<serde_json::Value> = lines
        .iter()
        .map(|(sku, qty, price)| serde_json::json!({"sku": sku, "qty": qty, "unit_price": price}))
        .collect();
    serde_json::json!({
        "order_id": id,
        "placed_at": placed_at,
        "recipient": {
            "name": name,
            "address": {"line1": street, "city": "San Diego", "state": "CA", "postal_code": "92101", "country": "US"}
        },
        "currency": currency,
        "lines": lines,
    })
    .to_string()
}

/// `count` orders of one T-shirt at `unit_price`, each to a recipient of its own, as JSON Lines:
/// ids `<prefix>-00000` on.
pub fn orders_to_many(prefix: &str, count: usize, unit_price: &str) -> String {
    let lines: Vec<String> = (0..count)
        .map(|n| {
            order(
                &format!("{prefix}-{n:05}"),
                "2026-11-29T09:00:00-08:00",
                &format!("Buyer {n}"),
                &format!("{n} Market St"),
                "USD",
                &[("TSHIRT", 1, unit_price)],
            )
        })
        .collect();
    lines.join("\n")
}

/// `text` in UTF-16, big-endian or little-endian, with its byte-order mark.
pub fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
    let mut bytes = if big_endian {
        vec![0xfe, 0xff]
    } else {
        vec![0xff, 0xfe]
    };
    for unit in text.encode_utf16() {
        bytes.extend(if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    bytes
}

/// Runs `command` with standard output a pipe that is closed after its first line, as
/// `border-release orders list | head -1` does; returns the line, the exit code and what was
/// written to standard error.
pub fn read_one_line_and_close(
    mut command: std::process::Command,
) -> (String, Option<i32>, String) {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run border-release");
    let mut first = String::new();
    let mut reader = std::io::BufReader::new(child.stdout.take().expect("its output"));
    reader.read_line(&mut first).expect("its first line");
    drop(reader);
    let output = child.wait_with_output().expect("it ends");
    (first, output.status.code(), stderr(&output))
}

pub const ITEMS: &str = "sku,description,hts,origin,flags
TSHIRT,Cotton knit T-shirt,6109.10.0012,MX,
JEANS,Cotton denim trousers,6203.42.4011,MX,
BOOTS,Leather ankle boots,6403.91.6075,MX,
TEQUILA,Tequila 750 ml,2208.90.4000,MX,irc-tax
RADIO,Portable radio,8527.12.0000,CN,
";

/// A small deterministic generator (xorshift), so that a failing run is repeated by its seed.
pub struct Seeded(pub u64);

impl Seeded {
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// `size` bytes of arbitrary bytes from a fixed xorshift stream, cut into lines of about 4 KiB:
/// a hostile input file.
pub fn noise(size: usize, seed: u64) -> Vec<u8> {
    let mut random = Seeded(seed.max(1));
    let mut bytes = Vec::with_capacity(size + 8);
    while bytes.len() < size {
        let word = random.below(u64::MAX);
        let line_ends = word.is_multiple_of(4096);
        bytes.extend(
            word.to_le_bytes()
                .map(|byte| if line_ends { b'\n' } else { byte }),
        );
    }
    bytes
}

/// A `border-release serve` of a test warehouse on a loopback port of its own, its clock
/// pinned, its log in a file of the warehouse folder; killed when dropped.
pub struct Served {
    child: std::process::Child,
    pub log: PathBuf,
    pub port: u16,
}

/// An HTTP answer: its status, its header lines and its body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    /// The value of a header, by name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

impl Warehouse {
    /// Points the API at a free loopback port, with `token` in the token file; the port.
    pub fn listen_on_loopback(&self, token: &str) -> u16 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let config = std::fs::read_to_string(self.config()).expect("read the config");
        let api = "[api]\nlisten = \"127.0.0.1:0\"\n";
        assert!(
            config.contains(api),
            "the support config changed:\n{config}"
        );
        let ours = format!("[log]\nformat = \"text\"\n\n[api]\nlisten = \"127.0.0.1:{port}\"\n");
        std::fs::write(self.config(), config.replace(api, &ours)).expect("write the config");
        std::fs::write(self.path("api-token"), format!("{token}\n")).expect("write the token");
        port
    }

    /// Starts `serve` with the clock pinned at `now` (after [`Warehouse::listen_on_loopback`])
    /// and waits until it answers.
    pub fn serve(&self, now: &str, port: u16) -> Served {
        let log = self.path("serve.log");
        let file = std::fs::File::create(&log).expect("create the daemon's log");
        let child = self
            .process(now, &["serve"])
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start border-release serve");
        let mut served = Served { child, log, port };
        served.wait_until("the daemon to be ready", |served| {
            served.log_text().contains("border-release is ready")
                && served
                    .try_get("/healthz", None)
                    .is_some_and(|answer| answer.status == 200)
        });
        served
    }
}

impl Served {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `done` until it holds; fails with the daemon's log if the daemon exits first or
    /// 20 seconds go by.
    pub fn wait_until(&mut self, what: &str, mut done: impl FnMut(&Served) -> bool) {
        let start = std::time::Instant::now();
        loop {
            if done(self) {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("poll the daemon") {
                panic!(
                    "the daemon exited ({status:?}) while waiting for {what}; its log:\n{}",
                    self.log_text()
                );
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "gave up waiting for {what}; the daemon's log:\n{}",
                self.log_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// A GET with an `Authorization` header when given.
    pub fn get(&self, path: &str, authorization: Option<&str>) -> Answer {
        self.try_get(path, authorization)
            .unwrap_or_else(|| panic!("GET {path}: no answer; the log:\n{}", self.log_text()))
    }

    fn try_get(&self, path: &str, authorization: Option<&str>) -> Option<Answer> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .ok()?;
        let authorization = authorization
            .map(|value| format!("Authorization: {value}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{authorization}\r\n"
        )
        .ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).ok()?;
        let answer = String::from_utf8(answer).expect("the answer is UTF-8");
        let (head, body) = answer.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        Some(Answer {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        })
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `Authorization` for HTTP Basic.
pub fn basic(user: &str, password: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::from("Basic ");
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for place in 0..4 {
            if place <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * place) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// HTML's escapes of `&`, `<`, `>`, `"` and `'` undone.
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The `data-*` attributes of every element of `html` that has the attribute `name`, in
/// order, unescaped: how the tests read the figures the pages show. Quoted values may hold
/// `<` and `>` (a browser's serialisation may leave them).
pub fn data_of(html: &str, name: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut found = Vec::new();
    let bytes = html.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] != b'<' {
            at += 1;
            continue;
        }
        // One tag: its attributes until a '>' outside quotes.
        let mut attributes = std::collections::BTreeMap::new();
        let mut named = false;
        let mut place = at + 1;
        while place < bytes.len() && !bytes[place].is_ascii_whitespace() && bytes[place] != b'>' {
            place += 1;
        }
        loop {
            while place < bytes.len() && bytes[place].is_ascii_whitespace() {
                place += 1;
            }
            if place >= bytes.len() || bytes[place] == b'>' {
                break;
            }
            let key_start = place;
            while place < bytes.len() && !b"= >".contains(&bytes[place]) {
                place += 1;
            }
            let key = &html[key_start..place];
            let mut value = String::new();
            if bytes.get(place) == Some(&b'=') {
                place += 1;
                let quote = bytes[place];
                if quote == b'"' || quote == b'\'' {
                    let end = place
                        + 1
                        + html[place + 1..]
                            .find(quote as char)
                            .expect("the value ends");
                    value = unescape(&html[place + 1..end]);
                    place = end + 1;
                } else {
                    let end = place + html[place..].find([' ', '>']).unwrap_or(0);
                    value = unescape(&html[place..end]);
                    place = end;
                }
            }
            if key == name {
                named = true;
            }
            if key.starts_with("data-") {
                attributes.insert(key.to_owned(), value);
            }
        }
        if named {
            found.push(attributes);
        }
        at = place + 1;
    }
    found
}
