//! `apiload`: a load generator for the daemon's local API (bench/run.sh; BENCHMARKS.md).
//!
//! ```text
//! apiload ADDRESS TOKEN_FILE ORDERS_FILE N CONCURRENCY   # post N orders, one per request
//! apiload --wait-healthz ADDRESS [TIMEOUT_SECONDS]       # wait until GET /healthz answers 200
//! apiload --get ADDRESS PATH                             # GET PATH (no token), body to stdout
//! ```
//!
//! `ADDRESS` is `127.0.0.1:PORT` or `unix:/path/to/socket`, as `api.listen` says it.
//!
//! Posting: the first N lines of ORDERS_FILE (a JSONL file from the `workload` example) are
//! sent one order per request, `POST /v1/orders?name=api` with the bearer token, over
//! CONCURRENCY keep-alive HTTP/1.1 connections. Each connection sends its next order only once
//! the previous one was answered; orders are handed out in file order (line 1 first), so the
//! same file and N always send the same orders in the same order of starting. Every request's
//! latency (from sending the request to the whole answer read) is recorded. It prints one line
//! of `key=value` fields on standard output:
//!
//! `orders=N accepted=A unchanged=U rejected=R failed=F concurrency=C wall_s=... orders_per_s=...
//! mean_ms=... p50_ms=... p90_ms=... p99_ms=... max_ms=...`
//!
//! `accepted`, `unchanged` and `rejected` add up the JSON answers' fields; `failed` counts
//! answers other than 200 and requests that got no answer, each also reported on standard
//! error (the first few in full). The exit code is 0 only when every order was answered 200.
//!
//! The client runs on one thread (a current-thread tokio runtime), so that it takes as little
//! of the machine from the daemon as it can.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

/// Failures shown in full on standard error; the rest are only counted.
const FAILURES_SHOWN: usize = 5;
/// How often `--wait-healthz` asks.
const HEALTHZ_EVERY: Duration = Duration::from_millis(2);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("apiload: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime, run(args));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("apiload: {error:#}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: apiload ADDRESS TOKEN_FILE ORDERS_FILE N CONCURRENCY\n       \
     apiload --wait-healthz ADDRESS [TIMEOUT_SECONDS]\n       \
     apiload --get ADDRESS PATH";

async fn run(args: Vec<String>) -> anyhow::Result<ExitCode> {
    match args.first().map(String::as_str) {
        Some("--wait-healthz") if (2..=3).contains(&args.len()) => {
            let address = Address::parse(&args[1])?;
            let timeout = match args.get(2) {
                Some(text) => Duration::from_secs_f64(
                    text.parse()
                        .with_context(|| format!("TIMEOUT_SECONDS: not a number: {text:?}"))?,
                ),
                None => Duration::from_secs(600),
            };
            wait_healthz(&address, timeout).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some("--get") if args.len() == 3 => {
            let address = Address::parse(&args[1])?;
            let (status, body) = get(&address, &args[2]).await?;
            use std::io::Write;
            std::io::stdout().write_all(&body)?;
            if status != StatusCode::OK {
                bail!("GET {} answered {status}", args[2]);
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(first) if args.len() == 5 && !first.starts_with("--") => {
            let address = Address::parse(&args[0])?;
            let token = read_token(Path::new(&args[1]))?;
            let orders: usize = whole_number("N", &args[3])?;
            let concurrency: usize = whole_number("CONCURRENCY", &args[4])?;
            let bodies = read_orders(Path::new(&args[2]), orders)?;
            let outcome = post_all(&address, &token, bodies, concurrency).await?;
            println!("{}", outcome.line(concurrency));
            Ok(if outcome.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        _ => {
            eprintln!("{USAGE}");
            Ok(ExitCode::from(2))
        }
    }
}

fn whole_number(name: &str, text: &str) -> anyhow::Result<usize> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("{name} must be a whole number above 0, not {text:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Addresses and connections

/// Where the API listens, as `api.listen` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Address {
    Tcp(String),
    Unix(PathBuf),
}

impl Address {
    fn parse(text: &str) -> anyhow::Result<Address> {
        match text.strip_prefix("unix:") {
            Some("") => bail!("ADDRESS: unix: needs a socket path"),
            Some(path) => Ok(Address::Unix(PathBuf::from(path))),
            None if text.parse::<std::net::SocketAddr>().is_ok() => {
                Ok(Address::Tcp(text.to_owned()))
            }
            None => bail!("ADDRESS: expected HOST:PORT or unix:/path, not {text:?}"),
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(address) => f.write_str(address),
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Opens one HTTP/1.1 connection; it stays open (keep-alive) while the sender lives.
async fn connect<B>(address: &Address) -> anyhow::Result<SendRequest<B>>
where
    B: hyper::body::Body + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    async fn over<S, B>(stream: S) -> anyhow::Result<SendRequest<B>>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
        B: hyper::body::Body + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::task::spawn_local(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
    match address {
        Address::Tcp(host_port) => {
            let stream = tokio::net::TcpStream::connect(host_port).await?;
            stream.set_nodelay(true)?;
            over(stream).await
        }
        Address::Unix(path) => over(tokio::net::UnixStream::connect(path).await?).await,
    }
}

/// One GET without a token: its status and whole body.
async fn get(address: &Address, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
    let mut sender = connect::<Empty<Bytes>>(address)
        .await
        .with_context(|| format!("connecting to {address}"))?;
    let request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(hyper::header::HOST, "localhost")
        .body(Empty::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Asks `GET /healthz` until it answers 200; a refused connection or another status is asked
/// again.
async fn wait_healthz(address: &Address, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Ok((StatusCode::OK, _)) = get(address, "/healthz").await {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!(
                "{address}/healthz did not answer 200 within {} s",
                timeout.as_secs_f64()
            );
        }
        tokio::time::sleep(HEALTHZ_EVERY).await;
    }
}

fn read_token(file: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("TOKEN_FILE {}: cannot read it", file.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        bail!("TOKEN_FILE {}: the first line is empty", file.display());
    }
    Ok(token)
}

// ---------------------------------------------------------------------------------------------
// Posting orders

/// The first `n` non-empty lines of the file, each with its line break, as request bodies.
fn read_orders(file: &Path, n: usize) -> anyhow::Result<Vec<Bytes>> {
    let text = std::fs::read(file)
        .with_context(|| format!("ORDERS_FILE {}: cannot read it", file.display()))?;
    let bodies = first_lines(&text, n);
    if bodies.len() < n {
        bail!(
            "ORDERS_FILE {} has {} orders, fewer than the {n} asked for",
            file.display(),
            bodies.len()
        );
    }
    Ok(bodies)
}

fn first_lines(text: &[u8], n: usize) -> Vec<Bytes> {
    text.split_inclusive(|&byte| byte == b'\n')
        .filter(|line| !line.trim_ascii().is_empty())
        .take(n)
        .map(|line| {
            let mut line = line.to_vec();
            if line.last() != Some(&b'\n') {
                line.push(b'\n');
            }
            Bytes::from(line)
        })
        .collect()
}

/// What the posts came to.
#[derive(Debug, Default)]
struct Outcome {
    orders: usize,
    accepted: u64,
    unchanged: u64,
    rejected: u64,
    failed: usize,
    wall: Duration,
    /// One per answered request, in microseconds.
    latencies_us: Vec<u64>,
}

impl Outcome {
    fn line(&self, concurrency: usize) -> String {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        let mean = if sorted.is_empty() {
            0.0
        } else {
            sorted.iter().sum::<u64>() as f64 / sorted.len() as f64 / 1000.0
        };
        let wall = self.wall.as_secs_f64();
        format!(
            "orders={} accepted={} unchanged={} rejected={} failed={} concurrency={concurrency} \
             wall_s={wall:.3} orders_per_s={:.0} mean_ms={mean:.2} p50_ms={:.2} p90_ms={:.2} \
             p99_ms={:.2} max_ms={:.2}",
            self.orders,
            self.accepted,
            self.unchanged,
            self.rejected,
            self.failed,
            if wall > 0.0 {
                self.orders as f64 / wall
            } else {
                0.0
            },
            ms(percentile(&sorted, 50.0)),
            ms(percentile(&sorted, 90.0)),
            ms(percentile(&sorted, 99.0)),
            ms(sorted.last().copied().unwrap_or(0)),
        )
    }
}

/// The nearest-rank percentile of sorted values (0 when there are none).
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What one connection saw.
#[derive(Default)]
struct WorkerTally {
    accepted: u64,
    unchanged: u64,
    rejected: u64,
    failed: usize,
    latencies_us: Vec<u64>,
}

/// Shared by the workers: the orders, the next one to send, and the failures shown so far.
struct Work {
    address: Address,
    authorization: String,
    bodies: Vec<Bytes>,
    next: AtomicUsize,
    shown: AtomicUsize,
}

impl Work {
    fn report_failure(&self, order: usize, what: &str) {
        if self.shown.fetch_add(1, Ordering::Relaxed) < FAILURES_SHOWN {
            eprintln!("apiload: the order on line {}: {what}", order + 1);
        }
    }
}

async fn post_all(
    address: &Address,
    token: &str,
    bodies: Vec<Bytes>,
    concurrency: usize,
) -> anyhow::Result<Outcome> {
    let orders = bodies.len();
    let concurrency = concurrency.min(orders);
    let work = Rc::new(Work {
        address: address.clone(),
        authorization: format!("Bearer {token}"),
        bodies,
        next: AtomicUsize::new(0),
        shown: AtomicUsize::new(0),
    });
    // Every connection is open before the clock starts.
    let mut senders = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        senders.push(
            connect::<Full<Bytes>>(address)
                .await
                .with_context(|| format!("connecting to {address}"))?,
        );
    }
    let started = Instant::now();
    let workers: Vec<_> = senders
        .into_iter()
        .map(|sender| tokio::task::spawn_local(worker(work.clone(), sender)))
        .collect();
    let mut outcome = Outcome {
        orders,
        ..Outcome::default()
    };
    for handle in workers {
        let tally = handle.await.context("a worker panicked")?;
        outcome.accepted += tally.accepted;
        outcome.unchanged += tally.unchanged;
        outcome.rejected += tally.rejected;
        outcome.failed += tally.failed;
        outcome.latencies_us.extend(tally.latencies_us);
    }
    outcome.wall = started.elapsed();
    Ok(outcome)
}

/// Sends orders over one connection, one at a time, until none are left. A connection that
/// fails is opened again; an order whose request failed is counted and not sent again.
async fn worker(work: Rc<Work>, sender: SendRequest<Full<Bytes>>) -> WorkerTally {
    let mut tally = WorkerTally::default();
    let mut sender = Some(sender);
    loop {
        let order = work.next.fetch_add(1, Ordering::Relaxed);
        let Some(body) = work.bodies.get(order) else {
            return tally;
        };
        if sender.as_ref().is_none_or(|sender| sender.is_closed()) {
            match connect::<Full<Bytes>>(&work.address).await {
                Ok(new) => sender = Some(new),
                Err(error) => {
                    tally.failed += 1;
                    work.report_failure(order, &format!("cannot connect: {error:#}"));
                    sender = None;
                    continue;
                }
            }
        }
        let connection = sender.as_mut().expect("connected above");
        let request = Request::builder()
            .method(Method::POST)
            .uri("/v1/orders?name=api")
            .header(hyper::header::HOST, "localhost")
            .header(hyper::header::AUTHORIZATION, &work.authorization)
            .header(hyper::header::CONTENT_TYPE, "application/x-ndjson")
            .body(Full::new(body.clone()))
            .expect("a valid request");
        let sent = Instant::now();
        let answer = async {
            connection.ready().await?;
            let response = connection.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        }
        .await;
        let latency = sent.elapsed();
        match answer {
            Ok((status, body)) => {
                tally
                    .latencies_us
                    .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
                let report = serde_json::from_slice::<serde_json::Value>(&body).ok();
                let count = |field: &str| {
                    report
                        .as_ref()
                        .and_then(|report| report.get(field))
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0)
                };
                tally.accepted += count("accepted");
                tally.unchanged += count("unchanged");
                tally.rejected += report
                    .as_ref()
                    .and_then(|report| report.get("rejected"))
                    .and_then(serde_json::Value::as_array)
                    .map_or(0, |rejected| rejected.len() as u64);
                if status != StatusCode::OK {
                    tally.failed += 1;
                    work.report_failure(
                        order,
                        &format!("{status}: {}", String::from_utf8_lossy(&body).trim()),
                    );
                }
            }
            Err(error) => {
                tally.failed += 1;
                work.report_failure(order, &format!("no answer: {error}"));
                sender = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_as_api_listen_says_them() {
        assert_eq!(
            Address::parse("127.0.0.1:8321").unwrap(),
            Address::Tcp("127.0.0.1:8321".into())
        );
        assert_eq!(
            Address::parse("unix:/run/br/api.sock").unwrap(),
            Address::Unix("/run/br/api.sock".into())
        );
        assert!(Address::parse("unix:").is_err());
        assert!(Address::parse("localhost").is_err());
        assert_eq!(
            Address::parse("unix:/a.sock").unwrap().to_string(),
            "unix:/a.sock"
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), 50);
        assert_eq!(percentile(&values, 99.0), 99);
        assert_eq!(percentile(&values, 100.0), 100);
        assert_eq!(percentile(&values, 0.0), 1);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn orders_are_the_first_lines_in_file_order() {
        let text = b"{\"a\":1}\n\n{\"a\":2}\n{\"a\":3}";
        let lines = first_lines(text, 5);
        assert_eq!(lines.len(), 3);
        assert_eq!(&lines[0][..], b"{\"a\":1}\n");
        assert_eq!(&lines[2][..], b"{\"a\":3}\n");
        assert_eq!(first_lines(text, 2).len(), 2);
    }

    #[test]
    fn the_line_names_every_figure() {
        let outcome = Outcome {
            orders: 4,
            accepted: 4,
            wall: Duration::from_secs(2),
            latencies_us: vec![1000, 3000, 2000, 4000],
            ..Outcome::default()
        };
        let line = outcome.line(2);
        assert!(line.starts_with("orders=4 accepted=4 unchanged=0 rejected=0 failed=0 concurrency=2 wall_s=2.000 orders_per_s=2 "), "{line}");
        assert!(line.contains(" p50_ms=2.00 "), "{line}");
        assert!(line.ends_with(" p99_ms=4.00 max_ms=4.00"), "{line}");
    }
}
