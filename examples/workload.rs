//! `workload`: writes a synthetic, deterministic workload for benchmarks: an item catalogue, a
//! stock receipt, a day's orders and a config, all accepted by `border-release` as they are.
//!
//! Same arguments, same bytes: the only source of randomness is a splitmix64 generator seeded
//! with `--seed`, nothing reads the clock, and nothing iterates a hash map. What it writes into
//! `--out`:
//!
//! - `items.csv`: `--skus` items with real HTS codes; about 2% alcohol (`2208.90.8000` and
//!   other chapter 22 codes) flagged `irc-tax`, about 1% flagged `adcvd`, about 5% made in China.
//! - `orders.jsonl`: `--orders` orders `W-00000001`, ... placed over the 72 hours before the
//!   release day's 06:00 cutoff in America/Los_Angeles, nearly in time order. Recipients are
//!   drawn with a shifted Zipf skew (weight 1/(k + R/10) for the k-th of the R `--recipients`), so
//!   the busiest have about eleven times the orders of the quietest and some hit the daily limit; a recipient's name and address are a function of its
//!   number, and about 10% of its orders spell them another way (upper case, `Street` for `St`,
//!   ZIP+4, `#4` for `Apt 4`), which the recipient key must see through. About 10% of orders are
//!   in MXN, and about 3% are over the $2,500 limit on their own.
//! - `stock.csv`: for each SKU, the units the orders ask for it (orders over the limit left
//!   out) times `--stock-ratio` (default 1), rounded up; one SKU in ten gets a fifth of that, so
//!   some orders wait for stock.
//! - `duties.csv`: `--duty-rows` rows of duty tables (default 10,000): for each kind of goods
//!   but two (whose duty stays unknown), an `mfn` rate at 10 and at 6 digits, Section 301 on
//!   Chinese goods by heading, a Section 122 surcharge by chapter ended by a 0 row; the rest
//!   rows of other prefixes, origins, programs and days, as a real table holds.
//! - `border-release.toml`: the warehouse in Tijuana with its store, logs and spool in `data`,
//!   `logs` and `spool` beside the file, the MXN rate, the `informal-entry` policy and the
//!   merchandise processing fee.
//!
//! It prints one line: what it wrote, with counts and sizes.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Offset, Timelike, Utc};
use chrono_tz::Tz;
use clap::Parser;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

/// Writes a deterministic benchmark workload for border-release.
#[derive(Debug, Parser)]
#[command(name = "workload", version)]
struct Args {
    /// Orders to write.
    #[arg(long, default_value_t = 1_000_000)]
    orders: u64,
    /// Distinct recipients the orders are drawn from (Zipf, exponent 1, shifted by a tenth of
    /// their number).
    #[arg(long, default_value_t = 300_000)]
    recipients: u64,
    /// Items in the catalogue.
    #[arg(long, default_value_t = 5_000)]
    skus: u64,
    /// Seed of the generator: the same arguments and seed give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The release day the orders are for (placed over the 72 hours before its 06:00 cutoff).
    #[arg(long, default_value = "2026-12-01")]
    day: NaiveDate,
    /// Folder to write into (created if missing; the four files in it are replaced).
    #[arg(long, default_value = "var/workload")]
    out: PathBuf,
    /// Stock per SKU as a multiple of the units the orders ask for (a decimal, e.g. 0.8);
    /// default 1. One SKU in ten gets a fifth of that.
    #[arg(long)]
    stock_ratio: Option<Decimal>,
    /// Rows of the duty table.
    #[arg(long, default_value_t = 10_000)]
    duty_rows: u64,
}

/// The warehouse's zone and cutoff, as written into the config.
const TIMEZONE: Tz = chrono_tz::America::Los_Angeles;
const CUTOFF_HOUR: u32 = 6;
/// Orders are placed over this many hours before the day's cutoff.
const WINDOW_HOURS: i64 = 72;
/// The MXN rate of the config, and the rate the generator prices MXN orders at (pesos per
/// dollar x 100, about 1 / 0.0541).
const MXN_RATE_FROM: &str = "2026-10-01";
const MXN_PER_100_USD: u64 = 1848;
/// The policy's limit, in cents.
const LIMIT_CENTS: u64 = 250_000;
/// Per mille of orders made over the limit on purpose, of orders in MXN, and of orders that
/// spell their recipient another way.
const OVER_LIMIT_PER_MILLE: u64 = 30;
const MXN_PER_MILLE: u64 = 100;
const SECOND_SPELLING_PER_MILLE: u64 = 100;
/// The most popular SKUs are kept plain, so that a seed cannot hold most orders at once.
const PLAIN_TOP_SKUS: u64 = 20;

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if args.orders == 0 || args.recipients == 0 || args.skus == 0 {
        bail!("--orders, --recipients and --skus must be at least 1");
    }
    if args.orders > 99_999_999 {
        bail!("--orders: at most 99999999 (order ids have eight digits)");
    }
    let stock_ratio = args.stock_ratio.unwrap_or(Decimal::ONE);
    if stock_ratio < Decimal::ZERO {
        bail!("--stock-ratio must not be negative");
    }
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;

    let items = make_items(args.seed, args.skus);
    let sizes_items = write_file(&args.out.join("items.csv"), |w| write_items(w, &items))?;

    let cutoff = cutoff_instant(args.day)?;
    let plan = OrderPlan {
        seed: args.seed,
        orders: args.orders,
        recipients: Zipf::shifted(
            args.recipients,
            args.recipients / RECIPIENT_SKEW_OFFSET_DIVISOR,
        ),
        skus: Zipf::new(args.skus),
        start: cutoff - Duration::hours(WINDOW_HOURS),
    };
    let mut tally = Tally::new(args.recipients, args.skus);
    let size_orders = write_file(&args.out.join("orders.jsonl"), |w| {
        write_orders(w, &plan, &items, &mut tally)
    })?;

    let stock = make_stock(args.seed, &tally.demand, stock_ratio)?;
    let size_stock = write_file(&args.out.join("stock.csv"), |w| {
        write_stock(w, &items, &stock)
    })?;
    let size_duties = write_file(&args.out.join("duties.csv"), |w| {
        write_duties(w, args.seed, args.duty_rows)
    })?;
    let size_config = write_file(&args.out.join("border-release.toml"), |w| {
        write_config(w, args.day, plan.start)
    })?;

    let short = (0..args.skus)
        .filter(|&index| is_short(args.seed, index))
        .count();
    let recipients_used = tally.recipient_orders.iter().filter(|&&n| n > 0).count();
    let busiest = tally.recipient_orders.iter().copied().max().unwrap_or(0);
    println!(
        "workload for {day} (seed {seed}) in {out}: {orders} orders ({lines} lines, {over} over the limit, {mxn} in MXN, {spelled} spelled another way) for {used} of {recipients} recipients (busiest {busiest} orders), {skus} items ({irc} irc-tax, {adcvd} adcvd, {cn} CN), {short} SKUs short of stock; orders.jsonl {o}, items.csv {i}, stock.csv {s}, duties.csv {d} ({rows} rows), border-release.toml {c}",
        day = args.day,
        seed = args.seed,
        out = args.out.display(),
        orders = args.orders,
        lines = tally.lines,
        over = tally.over_limit,
        mxn = tally.mxn,
        spelled = tally.second_spelling,
        used = recipients_used,
        recipients = args.recipients,
        skus = args.skus,
        irc = items.iter().filter(|item| item.kind.flag == Some("irc-tax")).count(),
        adcvd = items.iter().filter(|item| item.kind.flag == Some("adcvd")).count(),
        cn = items.iter().filter(|item| item.origin == "CN").count(),
        o = bytes(size_orders),
        i = bytes(sizes_items),
        s = bytes(size_stock),
        d = bytes(size_duties),
        rows = args.duty_rows,
        c = bytes(size_config),
    );
    Ok(())
}

/// Writes a file through a buffer and returns its size in bytes.
fn write_file(
    path: &Path,
    body: impl FnOnce(&mut Counting<BufWriter<File>>) -> io::Result<()>,
) -> anyhow::Result<u64> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer = Counting {
        inner: BufWriter::with_capacity(1 << 20, file),
        bytes: 0,
    };
    body(&mut writer)
        .and_then(|()| writer.flush())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(writer.bytes)
}

/// A writer that counts what goes through it.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        self.bytes += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn bytes(n: u64) -> String {
    const MB: u64 = 1_000_000;
    const KB: u64 = 1_000;
    if n >= 10 * MB {
        format!("{} MB", n / MB)
    } else if n >= 10 * KB {
        format!("{} KB", n / KB)
    } else {
        format!("{n} B")
    }
}

// ---------------------------------------------------------------------------------------------
// Randomness

/// splitmix64: small, fast, and good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        Rng(mix(seed ^ mix(stream)))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `0..n` (multiply-shift; the bias is far below what matters here).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn per_mille(&mut self, chance: u64) -> bool {
        self.below(1000) < chance
    }

    fn pick<'a, T>(&mut self, list: &'a [T]) -> &'a T {
        &list[self.below(list.len() as u64) as usize]
    }
}

/// The splitmix64 finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A fixed hash of (seed, what, number): per-recipient and per-SKU facts that do not depend on
/// the order things are generated in.
fn hash(seed: u64, what: u64, number: u64) -> u64 {
    mix(mix(seed ^ mix(what)) ^ number)
}

/// The recipients' Zipf skew is shifted by a tenth of their number: the busiest recipient gets
/// about eleven times the orders of the quietest, and nearly every recipient gets some, as in a
/// warehouse whose 300k recipients share 1M orders.
const RECIPIENT_SKEW_OFFSET_DIVISOR: u64 = 10;

/// Streams and hash domains.
const STREAM_ITEMS: u64 = 1;
const STREAM_ORDERS: u64 = 2;
const HASH_RECIPIENT: u64 = 3;
const HASH_SHORT: u64 = 4;
const HASH_SPELLING: u64 = 5;
const STREAM_DUTIES: u64 = 6;

/// Zipf with exponent 1 over `1..=n`, shifted by `offset` (Zipf-Mandelbrot: weight
/// `1 / (k + offset)`), by inverse CDF over integer weights `2^40 / (k + offset)` (no floats: the
/// sum stays below 2^45 for any `n` that fits in memory). An offset of 0 is plain Zipf.
struct Zipf {
    cumulative: Vec<u64>,
}

impl Zipf {
    fn new(n: u64) -> Zipf {
        Zipf::shifted(n, 0)
    }

    fn shifted(n: u64, offset: u64) -> Zipf {
        let mut total = 0u64;
        let cumulative = (1..=n)
            .map(|k| {
                total += (1u64 << 40) / (k + offset);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    /// A rank in `0..n` (0 the most frequent).
    fn sample(&self, rng: &mut Rng) -> u64 {
        let total = *self.cumulative.last().expect("n is at least 1");
        let u = rng.below(total);
        self.cumulative.partition_point(|&c| c <= u) as u64
    }
}

// ---------------------------------------------------------------------------------------------
// Items

/// A kind of goods: description, HTS code, price range in whole dollars, flag.
struct Kind {
    description: &'static str,
    hts: &'static str,
    dollars: (u64, u64),
    flag: Option<&'static str>,
}

const fn kind(description: &'static str, hts: &'static str, low: u64, high: u64) -> Kind {
    Kind {
        description,
        hts,
        dollars: (low, high),
        flag: None,
    }
}

const fn flagged(
    description: &'static str,
    hts: &'static str,
    low: u64,
    high: u64,
    flag: &'static str,
) -> Kind {
    Kind {
        description,
        hts,
        dollars: (low, high),
        flag: Some(flag),
    }
}

const PLAIN_KINDS: [Kind; 24] = [
    kind("Men's cotton knit T-shirt", "6109.10.0012", 8, 30),
    kind("Women's cotton knit T-shirt", "6109.10.0040", 8, 30),
    kind("Men's cotton denim trousers", "6203.42.4011", 25, 80),
    kind("Women's cotton denim trousers", "6204.62.4011", 25, 90),
    kind("Cotton pullover sweater", "6110.20.2079", 20, 70),
    kind("Women's leather ankle boots", "6403.91.6075", 60, 200),
    kind("Men's leather work boots", "6403.91.6045", 70, 220),
    kind("Textile backpack", "4202.92.3031", 15, 90),
    kind("Leather handbag", "4202.21.9000", 40, 400),
    kind("Smartphone", "8517.13.0000", 150, 1200),
    kind("Laptop computer 15 inch", "8471.30.0100", 400, 2200),
    kind("Bluetooth headphones", "8518.30.2000", 15, 250),
    kind("Bluetooth speaker", "8518.22.0000", 20, 180),
    kind("Toy building set", "9503.00.0073", 10, 120),
    kind("Skin care cream 50 ml", "3304.99.5000", 5, 60),
    kind("Ceramic dinnerware set", "6912.00.4810", 25, 150),
    kind("Wooden side table", "9403.60.8081", 40, 250),
    kind("Costume jewelry necklace", "7117.19.9000", 5, 45),
    kind("Quartz wrist watch", "9102.11.1000", 20, 300),
    kind("Cotton bath towel", "6302.60.0020", 6, 25),
    kind("Drip coffee maker", "8516.71.0020", 20, 120),
    kind("Inflatable soccer ball", "9506.62.4080", 8, 40),
    kind("Printed paperback book", "4901.99.0093", 5, 35),
    kind("Talavera ceramic vase", "6913.90.5000", 15, 120),
];

/// Goods taxed under the Internal Revenue Code (chapter 22).
const IRC_TAX_KINDS: [Kind; 3] = [
    flagged("Mezcal 750 ml bottle", "2208.90.8000", 25, 120, "irc-tax"),
    flagged("Tequila 750 ml bottle", "2208.90.4000", 20, 150, "irc-tax"),
    flagged("Craft beer 12-pack", "2203.00.0060", 15, 40, "irc-tax"),
];

/// Goods under antidumping or countervailing duty orders.
const ADCVD_KINDS: [Kind; 2] = [
    flagged(
        "Stainless steel cooking pot",
        "7323.93.0080",
        15,
        90,
        "adcvd",
    ),
    flagged("Aluminum foil roll", "7607.11.3000", 5, 25, "adcvd"),
];

const COLOURS: [&str; 12] = [
    "black", "white", "navy", "red", "green", "grey", "blue", "brown", "beige", "pink", "teal",
    "olive",
];

/// Countries of origin other than China, with weights summing to 95 (China has the other 5).
const ORIGINS: [(&str, u64); 9] = [
    ("MX", 70),
    ("US", 8),
    ("VN", 5),
    ("IN", 3),
    ("BD", 3),
    ("TW", 2),
    ("KR", 2),
    ("IT", 1),
    ("GT", 1),
];

/// The entry of `list` that `pick` (below the sum of the weights) falls on.
fn weighted(list: &[(&'static str, u64)], mut pick: u64) -> &'static str {
    for (value, weight) in list {
        if pick < *weight {
            return value;
        }
        pick -= weight;
    }
    list[0].0
}

struct GenItem {
    sku: String,
    kind: &'static Kind,
    colour: &'static str,
    origin: &'static str,
    cents: u64,
}

fn make_items(seed: u64, skus: u64) -> Vec<GenItem> {
    let mut rng = Rng::new(seed, STREAM_ITEMS);
    (0..skus)
        .map(|index| {
            let roll = rng.below(1000);
            let kind = if index < PLAIN_TOP_SKUS || roll >= 30 {
                rng.pick(&PLAIN_KINDS)
            } else if roll < 20 {
                rng.pick(&IRC_TAX_KINDS)
            } else {
                rng.pick(&ADCVD_KINDS)
            };
            let origin = if rng.per_mille(50) {
                "CN"
            } else {
                weighted(&ORIGINS, rng.below(95))
            };
            let (low, high) = kind.dollars;
            // Prices end in .99, .49 or .00, as shops write them.
            let dollars = low + rng.below(high - low + 1);
            let cents = dollars * 100 + [99, 49, 0][rng.below(3) as usize];
            GenItem {
                sku: format!("SKU-{:06}", index + 1),
                kind,
                colour: COLOURS[rng.below(COLOURS.len() as u64) as usize],
                origin,
                cents: cents.max(1),
            }
        })
        .collect()
}

fn write_items(w: &mut impl Write, items: &[GenItem]) -> io::Result<()> {
    writeln!(w, "sku,description,hts,origin,flags")?;
    for item in items {
        writeln!(
            w,
            "{},{} {},{},{},{}",
            item.sku,
            item.kind.description,
            item.colour,
            item.kind.hts,
            item.origin,
            item.kind.flag.unwrap_or("")
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Stock

/// One SKU in ten, past the most popular ones, is short of stock.
fn is_short(seed: u64, index: u64) -> bool {
    index >= PLAIN_TOP_SKUS && hash(seed, HASH_SHORT, index).is_multiple_of(10)
}

fn make_stock(seed: u64, demand: &[u64], ratio: Decimal) -> anyhow::Result<Vec<u64>> {
    demand
        .iter()
        .enumerate()
        .map(|(index, &units)| {
            let mut wanted = Decimal::from(units) * ratio;
            if is_short(seed, index as u64) {
                wanted /= Decimal::from(5);
            }
            let qty = wanted
                .ceil()
                .to_u64()
                .context("--stock-ratio is too large")?;
            // A receipt is at least one unit; a SKU nobody ordered still gets a few.
            Ok(if units == 0 { 10 } else { qty.max(1) })
        })
        .collect()
}

fn write_stock(w: &mut impl Write, items: &[GenItem], stock: &[u64]) -> io::Result<()> {
    writeln!(w, "sku,qty")?;
    for (item, qty) in items.iter().zip(stock) {
        writeln!(w, "{},{qty}", item.sku)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Orders

struct OrderPlan {
    seed: u64,
    orders: u64,
    recipients: Zipf,
    skus: Zipf,
    /// The first instant of the window; the window ends at the day's cutoff.
    start: DateTime<Utc>,
}

/// What the orders came to, for the stock and the summary.
struct Tally {
    /// Units asked per SKU by orders within the limit.
    demand: Vec<u64>,
    recipient_orders: Vec<u32>,
    lines: u64,
    over_limit: u64,
    mxn: u64,
    second_spelling: u64,
}

impl Tally {
    fn new(recipients: u64, skus: u64) -> Tally {
        Tally {
            demand: vec![0; skus as usize],
            recipient_orders: vec![0; recipients as usize],
            lines: 0,
            over_limit: 0,
            mxn: 0,
            second_spelling: 0,
        }
    }
}

/// The release day's cutoff, 06:00 at the warehouse.
fn cutoff_instant(day: NaiveDate) -> anyhow::Result<DateTime<Utc>> {
    let local = day.and_time(NaiveTime::from_hms_opt(CUTOFF_HOUR, 0, 0).expect("valid time"));
    let instant = local
        .and_local_timezone(TIMEZONE)
        .earliest()
        .with_context(|| format!("{local} does not exist in {TIMEZONE}"))?;
    Ok(instant.with_timezone(&Utc))
}

fn write_orders(
    w: &mut impl Write,
    plan: &OrderPlan,
    items: &[GenItem],
    tally: &mut Tally,
) -> io::Result<()> {
    let mut rng = Rng::new(plan.seed, STREAM_ORDERS);
    let window = WINDOW_HOURS * 3600;
    let mut skus: Vec<u64> = Vec::with_capacity(3);
    for index in 0..plan.orders {
        // Nearly in time order: evenly spread, each up to two minutes late.
        let offset = (i128::from(index) * i128::from(window) / i128::from(plan.orders)) as i64
            + rng.below(120) as i64;
        let placed_at = plan.start + Duration::seconds(offset.min(window - 1));
        let recipient = plan.recipients.sample(&mut rng);
        tally.recipient_orders[recipient as usize] += 1;
        let second_spelling = rng.per_mille(SECOND_SPELLING_PER_MILLE);
        tally.second_spelling += u64::from(second_spelling);
        let mxn = rng.per_mille(MXN_PER_MILLE);
        tally.mxn += u64::from(mxn);
        let over_limit = rng.per_mille(OVER_LIMIT_PER_MILLE);
        tally.over_limit += u64::from(over_limit);

        let line_count = match rng.below(10) {
            0..=5 => 1,
            6..=8 => 2,
            _ => 3,
        };
        skus.clear();
        for _ in 0..line_count {
            // Redraw a SKU already in the order a few times, then do without the line.
            for _ in 0..4 {
                let sku = plan.skus.sample(&mut rng);
                if !skus.contains(&sku) {
                    skus.push(sku);
                    break;
                }
            }
        }
        tally.lines += skus.len() as u64;

        write!(w, "{{\"order_id\":\"W-{:08}\",\"placed_at\":\"", index + 1)?;
        write_local_time(w, placed_at)?;
        w.write_all(b"\",\"recipient\":")?;
        write_recipient(w, plan.seed, recipient + 1, second_spelling)?;
        write!(
            w,
            ",\"currency\":\"{}\",\"lines\":[",
            if mxn { "MXN" } else { "USD" }
        )?;
        for (position, &sku) in skus.iter().enumerate() {
            let item = &items[sku as usize];
            let qty = if over_limit && position == 0 {
                // Enough of the first item to be over the limit on its own, in either currency.
                (LIMIT_CENTS + LIMIT_CENTS / 20) / item.cents + 1
            } else {
                match rng.below(10) {
                    0..=6 => 1,
                    7..=8 => 2,
                    _ => 3,
                }
            };
            if !over_limit {
                tally.demand[sku as usize] += qty;
            }
            let price = if mxn {
                (item.cents * MXN_PER_100_USD + 50) / 100
            } else {
                item.cents
            };
            if position > 0 {
                w.write_all(b",")?;
            }
            write!(
                w,
                "{{\"sku\":\"{}\",\"qty\":{qty},\"unit_price\":\"{}.{:02}\"}}",
                item.sku,
                price / 100,
                price % 100
            )?;
        }
        w.write_all(b"]}\n")?;
    }
    Ok(())
}

/// An instant as RFC 3339 in the warehouse's local time with its offset (`-08:00` in winter).
fn write_local_time(w: &mut impl Write, instant: DateTime<Utc>) -> io::Result<()> {
    let local = instant.with_timezone(&TIMEZONE);
    let offset_minutes = local.offset().fix().local_minus_utc() / 60;
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let offset_minutes = offset_minutes.abs();
    write!(
        w,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
        local.year(),
        local.month(),
        local.day(),
        local.hour(),
        local.minute(),
        local.second(),
        offset_minutes / 60,
        offset_minutes % 60
    )
}

// ---------------------------------------------------------------------------------------------
// Recipients

const FIRST_NAMES: [&str; 48] = [
    "Ana",
    "Luis",
    "María",
    "José",
    "Sofía",
    "Carlos",
    "Lucía",
    "Jorge",
    "Valentina",
    "Miguel",
    "Camila",
    "Andrés",
    "Daniela",
    "Raúl",
    "Inés",
    "Julián",
    "Mónica",
    "Ramón",
    "Verónica",
    "Héctor",
    "Grace",
    "John",
    "Mary",
    "James",
    "Linda",
    "Robert",
    "Emily",
    "David",
    "Sarah",
    "Michael",
    "Jessica",
    "William",
    "Ashley",
    "Kevin",
    "Nguyen",
    "Mei",
    "Wei",
    "Priya",
    "Arjun",
    "Fatima",
    "Omar",
    "Olga",
    "Ivan",
    "Chloé",
    "Zoë",
    "Noah",
    "Liam",
    "Ava",
];

const LAST_NAMES: [&str; 52] = [
    "Ruiz",
    "Ortega",
    "García",
    "Hernández",
    "López",
    "Martínez",
    "González",
    "Pérez",
    "Sánchez",
    "Ramírez",
    "Torres",
    "Flores",
    "Rivera",
    "Gómez",
    "Díaz",
    "Reyes",
    "Morales",
    "Cruz",
    "Peña",
    "Muñoz",
    "Núñez",
    "Ibáñez",
    "Castillo",
    "Jiménez",
    "Vásquez",
    "Romero",
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Kim",
    "Nguyen",
    "Patel",
    "Chen",
    "Wong",
    "O'Brien",
    "O'Connor",
    "MacDonald",
    "Schmidt",
    "Kowalski",
    "Haddad",
];

const STREET_NAMES: [&str; 40] = [
    "Market",
    "Main",
    "Elm",
    "Pine",
    "Oak",
    "Maple",
    "Cedar",
    "Palm",
    "Olive",
    "Broadway",
    "Mission",
    "Sunset",
    "Harbor",
    "Lake",
    "Hill",
    "Park",
    "Church",
    "Washington",
    "Lincoln",
    "Jefferson",
    "Madison",
    "Franklin",
    "Cesar Chavez",
    "El Camino",
    "Alameda",
    "Vista",
    "Del Mar",
    "Las Palmas",
    "San Pedro",
    "Santa Fe",
    "Rio Grande",
    "Mesa",
    "Canyon",
    "Ridge",
    "Valley",
    "Meadow",
    "Spring",
    "Willow",
    "Birch",
    "Magnolia",
];

/// Street suffixes: the USPS abbreviation and the long form (both give one recipient key).
const SUFFIXES: [(&str, &str); 8] = [
    ("St", "Street"),
    ("Ave", "Avenue"),
    ("Blvd", "Boulevard"),
    ("Rd", "Road"),
    ("Dr", "Drive"),
    ("Ln", "Lane"),
    ("Ct", "Court"),
    ("Pl", "Place"),
];

/// City, USPS state code, first three digits of its ZIP codes.
const CITIES: [(&str, &str, u32); 32] = [
    ("San Diego", "CA", 921),
    ("Chula Vista", "CA", 919),
    ("San Ysidro", "CA", 921),
    ("Los Angeles", "CA", 900),
    ("Long Beach", "CA", 908),
    ("Fresno", "CA", 937),
    ("Sacramento", "CA", 958),
    ("El Centro", "CA", 922),
    ("Phoenix", "AZ", 850),
    ("Tucson", "AZ", 857),
    ("Yuma", "AZ", 853),
    ("El Paso", "TX", 799),
    ("Laredo", "TX", 780),
    ("Brownsville", "TX", 785),
    ("San Antonio", "TX", 782),
    ("Houston", "TX", 770),
    ("Dallas", "TX", 752),
    ("Albuquerque", "NM", 871),
    ("Las Vegas", "NV", 891),
    ("Denver", "CO", 802),
    ("Salt Lake City", "UT", 841),
    ("Seattle", "WA", 981),
    ("Portland", "OR", 972),
    ("Chicago", "IL", 606),
    ("Atlanta", "GA", 303),
    ("Miami", "FL", 331),
    ("Orlando", "FL", 328),
    ("New York", "NY", 100),
    ("Boston", "MA", 21),
    ("Washington", "DC", 200),
    ("San Juan", "PR", 9),
    ("Honolulu", "HI", 968),
];

/// A recipient's name and address, a function of (seed, number); with `second_spelling`, the
/// same person written another way (one way per recipient), which gives the same recipient key.
fn write_recipient(
    w: &mut impl Write,
    seed: u64,
    number: u64,
    second_spelling: bool,
) -> io::Result<()> {
    let h = hash(seed, HASH_RECIPIENT, number);
    let bits = |shift: u32, n: u64| (h >> shift) % n;
    let first = FIRST_NAMES[bits(0, FIRST_NAMES.len() as u64) as usize];
    let last = LAST_NAMES[bits(6, LAST_NAMES.len() as u64) as usize];
    let initial = (bits(12, 32) < 26).then(|| char::from(b'A' + bits(12, 32) as u8));
    let customer_id = bits(17, 10) < 8;
    let house = 1 + bits(21, 9899);
    let street = STREET_NAMES[bits(35, STREET_NAMES.len() as u64) as usize];
    let (short_suffix, long_suffix) = SUFFIXES[bits(41, SUFFIXES.len() as u64) as usize];
    let apartment = (bits(44, 5) == 0).then(|| 1 + bits(47, 400));
    let (city, state, zip3) = CITIES[bits(50, CITIES.len() as u64) as usize];
    let zip = zip3 * 100 + bits(55, 100) as u32;
    // One second spelling per recipient: 0 name in upper case, 1 long street suffix,
    // 2 ZIP+4, 3 `#n` for `Apt n` (upper case name when there is no apartment).
    let other = hash(seed, HASH_SPELLING, number);
    let spelling = second_spelling.then_some(other % 4);

    let mut name = match initial {
        Some(initial) => format!("{first} {initial}. {last}"),
        None => format!("{first} {last}"),
    };
    if spelling == Some(0) || (spelling == Some(3) && apartment.is_none()) {
        name = name.to_uppercase();
    }
    w.write_all(b"{\"name\":\"")?;
    write_json_text(w, &name)?;
    w.write_all(b"\"")?;
    if customer_id {
        write!(w, ",\"customer_id\":\"C-{number:07}\"")?;
    }
    let suffix = if spelling == Some(1) {
        long_suffix
    } else {
        short_suffix
    };
    write!(w, ",\"address\":{{\"line1\":\"{house} {street} {suffix}\"")?;
    if let Some(apartment) = apartment {
        if spelling == Some(3) {
            write!(w, ",\"line2\":\"#{apartment}\"")?;
        } else {
            write!(w, ",\"line2\":\"Apt {apartment}\"")?;
        }
    }
    write!(
        w,
        ",\"city\":\"{city}\",\"state\":\"{state}\",\"postal_code\":\"{zip:05}"
    )?;
    if spelling == Some(2) {
        write!(w, "-{:04}", 1 + (other >> 8) % 9998)?;
    }
    w.write_all(b"\",\"country\":\"US\"}}")
}

/// Writes text as the inside of a JSON string.
fn write_json_text(w: &mut impl Write, text: &str) -> io::Result<()> {
    if !text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        return w.write_all(text.as_bytes());
    }
    for c in text.chars() {
        match c {
            '"' => w.write_all(b"\\\"")?,
            '\\' => w.write_all(b"\\\\")?,
            c if u32::from(c) < 0x20 => write!(w, "\\u{:04x}", u32::from(c))?,
            c => write!(w, "{c}")?,
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Config

/// Kinds of goods the duty table gives no `mfn` rate, so that some lines have an unknown duty.
const KINDS_WITHOUT_MFN: [&str; 2] = ["6913.90.5000", "9102.11.1000"];

/// Programs of the filler rows.
const PROGRAMS: [&str; 5] = [
    "mfn",
    "section-301",
    "section-232",
    "section-201",
    "section-122",
];

/// Origins of the filler rows (`*` among them).
const DUTY_ORIGINS: [&str; 12] = [
    "*", "*", "*", "CN", "MX", "VN", "IN", "BD", "TW", "KR", "IT", "DE",
];

/// Writes `rows` rows of duty tables: the rows the catalogue's goods need, then filler rows of
/// random prefixes, origins, programs and days, each key once.
fn write_duties(w: &mut impl Write, seed: u64, rows: u64) -> io::Result<()> {
    writeln!(
        w,
        "hts_prefix,origin,program,rate_percent,from,usmca_exempt"
    )?;
    let mut table = DutyTable {
        out: w,
        keys: std::collections::BTreeSet::new(),
        left: rows,
    };
    let mut rng = Rng::new(seed, STREAM_DUTIES);
    for kind in PLAIN_KINDS.iter().chain(&IRC_TAX_KINDS).chain(&ADCVD_KINDS) {
        let digits: String = kind.hts.chars().filter(char::is_ascii_digit).collect();
        if !KINDS_WITHOUT_MFN.contains(&kind.hts) {
            let rate = format!("{}.{}", rng.below(20), rng.below(10));
            table.row(&digits, "*", "mfn", &rate, "2026-01-01", true)?;
            table.row(&digits[..6], "*", "mfn", "5", "2020-01-01", true)?;
        }
        table.row(
            &digits[..4],
            "CN",
            "section-301",
            "7.5",
            "2020-02-14",
            false,
        )?;
        table.row(&digits[..2], "*", "section-122", "10", "2026-02-24", true)?;
        table.row(&digits[..2], "*", "section-122", "0", "2026-07-25", true)?;
    }
    while table.left > 0 {
        let length = 4 + rng.below(7);
        let prefix: String = (0..length)
            .map(|_| char::from(b'0' + rng.below(10) as u8))
            .collect();
        let origin = rng.pick(&DUTY_ORIGINS);
        let program = rng.pick(&PROGRAMS);
        let rate = if rng.per_mille(100) {
            "0".to_owned()
        } else {
            format!("{}.{}", rng.below(40), rng.below(10))
        };
        let from = NaiveDate::from_ymd_opt(2018, 1, 1).expect("valid date")
            + Duration::days(rng.below(3255) as i64);
        let usmca = rng.per_mille(500);
        table.row(&prefix, origin, program, &rate, &from.to_string(), usmca)?;
    }
    Ok(())
}

/// The duty table being written: each key once, up to a number of rows.
struct DutyTable<'w, W: Write> {
    out: &'w mut W,
    keys: std::collections::BTreeSet<(String, String, String, String)>,
    left: u64,
}

impl<W: Write> DutyTable<'_, W> {
    fn row(
        &mut self,
        prefix: &str,
        origin: &str,
        program: &str,
        rate: &str,
        from: &str,
        usmca: bool,
    ) -> io::Result<()> {
        let key = (prefix.into(), origin.into(), program.into(), from.into());
        if self.left == 0 || !self.keys.insert(key) {
            return Ok(());
        }
        self.left -= 1;
        let usmca = if usmca { "yes" } else { "no" };
        writeln!(
            self.out,
            "{prefix},{origin},{program},{rate},{from},{usmca}"
        )
    }
}

fn write_config(w: &mut impl Write, day: NaiveDate, start: DateTime<Utc>) -> io::Result<()> {
    // The rate and the policy are in force on the day whatever --day is.
    let first_day = start.with_timezone(&TIMEZONE).date_naive();
    let rate_from = MXN_RATE_FROM
        .parse::<NaiveDate>()
        .expect("valid date")
        .min(first_day);
    let policy_from = NaiveDate::from_ymd_opt(2025, 8, 29)
        .expect("valid date")
        .min(first_day);
    write!(
        w,
        r#"# Written by `workload` (examples/workload.rs) for the release day {day}.
# Relative paths resolve against the folder of this file.

[warehouse]
name = "workload"
timezone = "{TIMEZONE}"

[paths]
data = "data"
logs = "logs"
spool = "spool"

[schedule]
batch = "0 0 6 * * *"
cutoff = "{CUTOFF_HOUR:02}:00"

[recipients]
identity = "name-and-address"

[api]
listen = "127.0.0.1:8321"
token_file = "api-token"

[[currency.rates]]
currency = "MXN"
from = "{rate_from}"
usd = "0.0541"

[[policy]]
name = "informal-entry"
from = "{policy_from}"
lane = "informal-entry"
value_limit_usd = "2500"
releases_per_recipient_per_day = 1
excluded_flags = ["adcvd", "quota"]

[[fees]]
name = "merchandise-processing-fee"
from = "2025-10-01"
lane = "informal-entry"
per_release_usd = "2.69"
usmca_exempt = true
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_ranks_are_in_range_and_skewed() {
        let zipf = Zipf::new(1000);
        let mut rng = Rng::new(7, STREAM_ORDERS);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[zipf.sample(&mut rng) as usize] += 1;
        }
        // Rank 1 has about 1/H(1000) = 13% of the draws, rank 10 a tenth of that.
        assert!(counts[0] > 11_000 && counts[0] < 16_000, "{}", counts[0]);
        assert!(counts[9] > 1_000 && counts[9] < 1_800, "{}", counts[9]);
    }

    #[test]
    fn the_cutoff_is_six_in_the_morning_in_tijuana() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(
            cutoff_instant(day).unwrap().to_rfc3339(),
            "2026-12-01T14:00:00+00:00"
        );
        let mut text = Vec::new();
        write_local_time(&mut text, cutoff_instant(day).unwrap()).unwrap();
        assert_eq!(text, b"2026-12-01T06:00:00-08:00");
    }

    fn small_orders(seed: u64) -> Vec<u8> {
        let items = make_items(seed, 50);
        let plan = OrderPlan {
            seed,
            orders: 500,
            recipients: Zipf::new(150),
            skus: Zipf::new(50),
            start: cutoff_instant(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()).unwrap()
                - Duration::hours(WINDOW_HOURS),
        };
        let mut tally = Tally::new(150, 50);
        let mut out = Vec::new();
        write_orders(&mut out, &plan, &items, &mut tally).unwrap();
        out
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        assert_eq!(small_orders(1), small_orders(1));
        assert_ne!(small_orders(1), small_orders(2));
    }

    #[test]
    fn every_order_is_one_json_object_before_the_cutoff() {
        let text = String::from_utf8(small_orders(3)).unwrap();
        let cutoff = cutoff_instant(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()).unwrap();
        for (index, line) in text.lines().enumerate() {
            let order: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(order["order_id"], format!("W-{:08}", index + 1));
            let placed_at =
                DateTime::parse_from_rfc3339(order["placed_at"].as_str().unwrap()).unwrap();
            assert!(placed_at < cutoff && placed_at >= cutoff - Duration::hours(WINDOW_HOURS));
            assert!(placed_at.to_rfc3339().ends_with("-08:00"), "{line}");
        }
        assert_eq!(text.lines().count(), 500);
    }

    #[test]
    fn json_text_is_escaped() {
        let mut text = Vec::new();
        write_json_text(&mut text, "a\"b\\c\nÉ").unwrap();
        assert_eq!(String::from_utf8(text).unwrap(), r#"a\"b\\c\u000aÉ"#);
    }
}
