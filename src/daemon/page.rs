//! The status pages the daemon serves to a browser (`GET /` and `GET /orders/ID`), rendered
//! here as plain functions from plain data to a `String` of HTML: no template engine, no script,
//! no asset from elsewhere (the style is inline, the chart is inline SVG), readable at phone
//! width, and refreshed by the browser every 30 seconds.
//!
//! Every value that comes from an order, an item, the config or a file goes through [`escape`]
//! (and into a link through [`path_segment`] first): a consignee named `<script>` is shown as
//! text. Figures are drawn with whole numbers and decimals, never floats.

use std::fmt::Write;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::metrics::{BatchOutcome, DaemonFigures, DaysRead};
use crate::money::Usd;
use crate::operations::{Status, REJECTED_DAYS};
use crate::wire::OrderDoc;

/// Held orders on one page.
pub const HELD_PER_PAGE: usize = 100;
/// How often the pages reload themselves, in seconds.
pub const REFRESH_SECONDS: u32 = 30;
/// Days in the chart.
pub const CHART_DAYS: u32 = 14;

/// `text` for HTML, in element content and in quoted attribute values alike.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` as one segment of a URL path: every byte but letters, digits and `-._~`
/// percent-encoded (so `/`, `?`, `#` and `%` stay in the segment).
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

const STYLE: &str = "\
:root{color-scheme:light dark;--fg:#1d232a;--muted:#5b6672;--bg:#f3f5f7;--card:#fff;--line:#d9dee4;\
--accent:#0b5cad;--bad:#a4161a;--ok:#1b6e3a;--bar:#2f6fb0}\
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ed;--muted:#a3adb8;--bg:#15191e;--card:#1e242b;\
--line:#333c46;--accent:#7fb6f0;--bad:#ff8a8a;--ok:#7fd49a;--bar:#5b9be0}}\
*{box-sizing:border-box}\
body{margin:0;font:15px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif;\
color:var(--fg);background:var(--bg)}\
header{padding:12px 16px;background:var(--card);border-bottom:1px solid var(--line)}\
header p{margin:2px 0 0}\
h1{font-size:1.3rem;margin:0}\
h2{font-size:1.05rem;margin:0 0 8px}\
h3{font-size:.95rem;margin:0 0 4px;color:var(--muted)}\
main{max-width:1180px;margin:0 auto;padding:12px;display:grid;gap:12px;\
grid-template-columns:minmax(0,1fr) minmax(0,1fr)}\
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px;min-width:0}\
section.wide{grid-column:1/-1}\
p{margin:6px 0}\
.muted{color:var(--muted)}\
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}\
table{border-collapse:collapse;width:100%;font-size:.92rem}\
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}\
th{font-weight:600;color:var(--muted);white-space:nowrap}\
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
td.id{white-space:nowrap}\
table.held{min-width:760px}\
td.why{min-width:18em}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 12px;margin:0}\
dt{color:var(--muted)}\
dd{margin:0;min-width:0;overflow-wrap:anywhere}\
.bad{color:var(--bad);font-weight:600}\
.ok{color:var(--ok);font-weight:600}\
.big{font-size:1.6rem;font-weight:600;font-variant-numeric:tabular-nums}\
a{color:var(--accent)}\
pre{white-space:pre-wrap;overflow-wrap:anywhere;font-size:.85rem;background:var(--bg);padding:8px;\
border-radius:6px;max-height:24em;overflow:auto;margin:6px 0}\
details{margin:6px 0}\
summary{cursor:pointer}\
svg{width:100%;height:auto;display:block}\
svg .bar{fill:var(--bar)}\
svg .axis{stroke:var(--line)}\
svg text{fill:var(--muted);font-family:system-ui,sans-serif;font-size:15px}\
nav.pages{display:flex;flex-wrap:wrap;gap:16px;margin-top:8px}\
footer{max-width:1180px;margin:0 auto;padding:0 16px 16px;font-size:.85rem;color:var(--muted)}\
@media (max-width:760px){main{grid-template-columns:minmax(0,1fr)}}\
@media (max-width:600px){main{padding:8px;gap:8px}body{font-size:14px}section{padding:10px}\
svg text{font-size:26px}svg text.alternate{display:none}.meaning{display:none}}";

/// A whole page: the head with the viewport, the refresh and the style, then `body`.
fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\n\
         <meta name=\"robots\" content=\"noindex\">\n\
         <link rel=\"icon\" href=\"data:,\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

/// An instant as a person at the warehouse reads it: `2026-11-30 10:00:00 PST`.
fn local(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// A span in a few words: `2 d 3 h`, `4 h 12 min`, `3 min 5 s`, `12 s`.
pub fn span(duration: chrono::Duration) -> String {
    let seconds = duration.num_seconds().max(0);
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {minutes} min")
    } else if minutes > 0 {
        format!("{minutes} min {secs} s")
    } else {
        format!("{secs} s")
    }
}

/// A duration to the millisecond: `0.412 s`.
fn seconds(duration: std::time::Duration) -> String {
    format!("{}.{:03} s", duration.as_secs(), duration.subsec_millis())
}

/// `1 order`, `2 orders`.
fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// What a reason word means, as README's table says it.
fn meaning(state: &str, reason: Option<&str>) -> &'static str {
    match (state, reason) {
        ("pending", None) => "not examined by a batch yet",
        ("pending", Some("daily-limit")) => {
            "the recipient's releases or value for the day were used up"
        }
        ("pending", Some("stock")) => "a line was not in stock at its turn",
        ("pending", Some("not-due")) => "placed at or after the last batch's cutoff",
        (_, Some("over-limit")) => "its own value is over the policy's limit",
        (_, Some("excluded-origin")) => "an item's country of origin is excluded",
        (_, Some("excluded-goods")) => "an item's HTS code is excluded",
        (_, Some("excluded-flag")) => "an item carries a flag the policy excludes",
        (_, Some("incomplete-item")) => "an item lacks what a filing needs",
        (_, Some("no-rate")) => "no exchange rate for its currency",
        ("released", _) => "in a release",
        ("cancelled", _) => "cancelled",
        _ => "",
    }
}

/// The status page: the warehouse's day, the batches, the last days' figures, the orders, the
/// held orders of page `page` (from 1), and the spool files refused lately.
pub fn status_page(status: &Status, daemon: &DaemonFigures, page: u64) -> String {
    let zone = status.zone;
    let mut body = String::with_capacity(64 << 10);
    let _ = write!(
        body,
        "<header>\n<h1>border-release · {}</h1>\n<p class=\"muted\">{} · {}</p>\n</header>\n<main>\n",
        escape(&status.warehouse),
        escape(&local(status.now, zone)),
        escape(zone.name()),
    );
    today_section(&mut body, status, daemon);
    batches_section(&mut body, status, daemon);
    days_section(&mut body, status, daemon);
    orders_section(&mut body, status);
    held_section(&mut body, status, page);
    rejected_section(&mut body, status);
    let _ = write!(
        body,
        "</main>\n<footer>This page reloads itself every {REFRESH_SECONDS} s; figures as of {}. \
         Also: <a href=\"metrics\">metrics</a>, <a href=\"healthz\">health</a>.</footer>\n",
        escape(&local(status.now, zone))
    );
    document(&format!("border-release · {}", status.warehouse), &body)
}

fn today_section(body: &mut String, status: &Status, daemon: &DaemonFigures) {
    let _ = write!(
        body,
        "<section id=\"today\">\n<h2>Today</h2>\n<dl>\n\
         <dt>release day</dt><dd data-today=\"{today}\"><span class=\"big\">{today}</span> \
         <span class=\"muted\">at the warehouse</span></dd>\n",
        today = escape(&status.today.to_string()),
    );
    match &status.policy {
        Some(policy) => {
            let _ = write!(
                body,
                "<dt>policy</dt><dd data-policy=\"{name}\"><strong>{name}</strong> \
                 (lane {lane}, entry type {entry}), in force since {from}</dd>\n\
                 <dt>limit</dt><dd>{limit} USD and {releases} per recipient per day</dd>\n",
                name = escape(&policy.name),
                lane = escape(&policy.lane),
                entry = escape(&policy.entry_type),
                from = escape(&policy.from.to_string()),
                limit = escape(&Usd(policy.value_limit_usd).to_string()),
                releases = escape(&count(
                    u64::from(policy.releases_per_recipient_per_day),
                    "release",
                    "releases"
                )),
            );
        }
        None => body.push_str(
            "<dt>policy</dt><dd class=\"bad\">none is in force today: a batch would be refused \
             (add a [[policy]] whose from is on or before today)</dd>\n",
        ),
    }
    let _ = writeln!(
        body,
        "<dt>cutoff</dt><dd>{} local: orders placed before it join the day's batch</dd>",
        escape(&status.cutoff.format("%H:%M").to_string())
    );
    match &daemon.failing {
        None => body.push_str("<dt>health</dt><dd class=\"ok\" data-health=\"ok\">healthy</dd>\n"),
        Some(why) => {
            let _ = writeln!(
                body,
                "<dt>health</dt><dd class=\"bad\" data-health=\"failing\">failing: {}</dd>",
                escape(why)
            );
        }
    }
    if let Some(started) = daemon.started_at {
        let _ = writeln!(
            body,
            "<dt>daemon</dt><dd>running since {} ({})</dd>",
            escape(&local(started, status.zone)),
            escape(&span(status.now - started))
        );
    }
    body.push_str("</dl>\n</section>\n");
}

fn batches_section(body: &mut String, status: &Status, daemon: &DaemonFigures) {
    let zone = status.zone;
    body.push_str("<section id=\"batches\">\n<h2>Batches</h2>\n");
    match &daemon.last_batch {
        Some(last) => {
            let (outcome, class, word) = match &last.outcome {
                BatchOutcome::Committed { files_error, .. } => match files_error {
                    None => ("committed".to_owned(), "ok", "committed"),
                    Some(error) => (
                        format!("committed, but its release files are still due: {error}"),
                        "bad",
                        "committed",
                    ),
                },
                BatchOutcome::Refused(why) => (format!("refused: {why}"), "bad", "refused"),
                BatchOutcome::Failed(why) => (format!("failed: {why}"), "bad", "failed"),
            };
            let _ = write!(
                body,
                "<h3>last batch</h3>\n\
                 <dl id=\"last-batch\" data-last-batch=\"{day}\" data-outcome=\"{word}\">\n\
                 <dt>day</dt><dd>{day}</dd>\n\
                 <dt>when</dt><dd>{when} ({by})</dd>\n\
                 <dt>outcome</dt><dd class=\"{class}\">{outcome}</dd>\n\
                 <dt>took</dt><dd>{took}</dd>\n",
                day = escape(&last.day.to_string()),
                when = escape(&local(last.at, zone)),
                by = if last.scheduled {
                    "on the schedule"
                } else {
                    "asked for"
                },
                outcome = escape(&outcome),
                took = escape(&seconds(last.took)),
            );
            if let BatchOutcome::Committed {
                releases,
                orders,
                value_usd,
                ..
            } = &last.outcome
            {
                let _ = write!(
                    body,
                    "<dt>releases</dt><dd data-last-releases=\"{releases}\">{releases} \
                     <span class=\"muted\">({})</span></dd>\n\
                     <dt>value</dt><dd data-last-value=\"{value}\">{value} USD</dd>\n",
                    escape(&count(*orders, "order", "orders")),
                    value = escape(&Usd(*value_usd).to_string()),
                );
            }
            body.push_str("</dl>\n");
        }
        None => {
            let since = daemon
                .started_at
                .map(|at| format!(" (at {})", local(at, zone)))
                .unwrap_or_default();
            let _ = writeln!(
                body,
                "<p id=\"last-batch\" data-last-batch=\"\" data-outcome=\"none\">No batch has run since the daemon \
                 started{}.</p>",
                escape(&since)
            );
            match status.last_day {
                Some(day) => match daemon.days.get(&day) {
                    Some((releases, value)) if daemon.days_read == DaysRead::Read => {
                        let _ = writeln!(
                            body,
                            "<p id=\"store-last-day\" data-store-last-day=\"{day}\" data-store-releases=\"{releases}\" \
                             data-store-value=\"{value}\">The store's last day batched is \
                             <strong>{day}</strong>: {} that stand, {value} USD (from the store; \
                             how that batch went and how long it took is not kept).</p>",
                            escape(&count(*releases, "release", "releases")),
                            day = escape(&day.to_string()),
                            value = escape(&Usd(*value).to_string()),
                        );
                    }
                    _ => {
                        let why = match daemon.days_read {
                            DaysRead::Reading => "; its figures are being read",
                            _ => "",
                        };
                        let _ = writeln!(
                            body,
                            "<p id=\"store-last-day\" data-store-last-day=\"{day}\">The store's last day \
                             batched is <strong>{day}</strong>{why}.</p>",
                            day = escape(&day.to_string()),
                        );
                    }
                },
                None => body.push_str(
                    "<p id=\"store-last-day\" class=\"muted\">The store has never been batched.</p>\n",
                ),
            }
        }
    }
    match daemon.next_batch {
        Some(next) => {
            let _ = writeln!(
                body,
                "<p id=\"next-batch\" data-at=\"{}\">Next scheduled batch: <strong>{}</strong> \
                 <span class=\"muted\">(in {}; schedule.batch <code>{}</code>)</span></p>",
                escape(&next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                escape(&local(next, zone)),
                escape(&span(next - status.now)),
                escape(&status.schedule),
            );
        }
        None => {
            let _ = writeln!(
                body,
                "<p id=\"next-batch\">No scheduled batch to come: schedule.batch <code>{}</code> \
                 matches no later time.</p>",
                escape(&status.schedule)
            );
        }
    }
    if !daemon.batches.is_empty() {
        let runs: Vec<String> = daemon
            .batches
            .iter()
            .map(|(outcome, n)| format!("{n} {outcome}"))
            .collect();
        let _ = writeln!(
            body,
            "<p class=\"muted\">Since start: {}.</p>",
            escape(&runs.join(", "))
        );
    }
    body.push_str("</section>\n");
}

/// The last [`CHART_DAYS`] days up to today, or up to the latest day batched ahead of it.
fn chart_days(status: &Status, daemon: &DaemonFigures) -> Vec<(NaiveDate, u64, Decimal)> {
    let last = daemon
        .days
        .keys()
        .next_back()
        .copied()
        .map_or(status.today, |day| day.max(status.today));
    let first = last
        .checked_sub_days(chrono::Days::new(u64::from(CHART_DAYS - 1)))
        .unwrap_or(last);
    first
        .iter_days()
        .take_while(|day| *day <= last)
        .map(|day| {
            let (releases, value) = daemon.days.get(&day).copied().unwrap_or_default();
            (day, releases, value)
        })
        .collect()
}

fn days_section(body: &mut String, status: &Status, daemon: &DaemonFigures) {
    let days = chart_days(status, daemon);
    let _ = write!(
        body,
        "<section id=\"days\">\n<h2>Releases, the last {CHART_DAYS} days</h2>\n"
    );
    match daemon.days_read {
        DaysRead::Read => {}
        DaysRead::Reading => body.push_str(
            "<p class=\"muted\">The figures of the days batched before the daemon started are \
             being read from the store; until then only the batches since are shown.</p>\n",
        ),
        DaysRead::Failed => body.push_str(
            "<p class=\"bad\">The figures of the days batched before the daemon started could not \
             be read from the store (the daemon's log says why): only the batches since are \
             shown.</p>\n",
        ),
    }
    body.push_str(&chart(&days));
    let (releases, value) = days
        .iter()
        .fold((0u64, Decimal::ZERO), |(n, v), (_, releases, value)| {
            (n + releases, v + value)
        });
    let _ = write!(
        body,
        "<p>{} · {} USD in these days <span class=\"muted\">(releases that stand: a void \
         release leaves its day)</span></p>\n\
         <details><summary>figures by day</summary>\n<div class=\"scroll\"><table id=\"day-figures\">\n\
         <thead><tr><th>day</th><th class=\"num\">releases</th><th class=\"num\">value USD</th></tr></thead>\n<tbody>\n",
        escape(&count(releases, "release", "releases")),
        escape(&Usd(value).to_string()),
    );
    for (day, releases, value) in days.iter().rev() {
        let value = Usd(*value).to_string();
        let _ = writeln!(
            body,
            "<tr data-figures-day=\"{day}\" data-releases=\"{releases}\" data-value=\"{value}\">\
             <td>{day}</td><td class=\"num\">{releases}</td><td class=\"num\">{value}</td></tr>",
            day = escape(&day.to_string()),
            value = escape(&value),
        );
    }
    body.push_str("</tbody>\n</table></div>\n</details>\n</section>\n");
}

/// A bar chart of the days' values, with each day's releases over its bar, as inline SVG.
fn chart(days: &[(NaiveDate, u64, Decimal)]) -> String {
    const WIDTH: i64 = 700;
    /// Room either side for the first and last dates.
    const SIDE: i64 = 24;
    const TOP: i64 = 30;
    const PLOT: i64 = 140;
    const BOTTOM: i64 = 36;
    let slots = days.len().max(1) as i64;
    let slot = WIDTH / slots;
    let bar = slot * 2 / 3;
    let most = days
        .iter()
        .map(|(_, _, value)| *value)
        .max()
        .unwrap_or_default();
    let height = TOP + PLOT + BOTTOM;
    let mut svg = String::with_capacity(8 << 10);
    let _ = write!(
        svg,
        "<svg viewBox=\"0 0 {full} {height}\" role=\"img\" aria-labelledby=\"chart-title\">\n\
         <title id=\"chart-title\">Value released per day, in US dollars, with the number of \
         releases over each bar</title>\n\
         <line class=\"axis\" x1=\"{SIDE}\" y1=\"{base}\" x2=\"{right}\" y2=\"{base}\"/>\n",
        full = WIDTH + 2 * SIDE,
        right = WIDTH + SIDE,
        base = TOP + PLOT,
    );
    for (place, (day, releases, value)) in days.iter().enumerate() {
        let x = SIDE + place as i64 * slot + (slot - bar) / 2;
        let bar_height = if most > Decimal::ZERO && *value > Decimal::ZERO {
            (*value * Decimal::from(PLOT) / most)
                .round()
                .to_i64()
                .unwrap_or(0)
                .clamp(1, PLOT)
        } else {
            0
        };
        let y = TOP + PLOT - bar_height;
        let centre = x + bar / 2;
        let label = escape(&format!(
            "{day}: {}, {} USD",
            count(*releases, "release", "releases"),
            Usd(*value)
        ));
        // A day without releases has no number over its bar; on a phone every other date
        // is left out, counting back from the last day.
        let number = if *releases > 0 {
            format!(
                "<text x=\"{centre}\" y=\"{}\" text-anchor=\"middle\">{releases}</text>",
                y - 6
            )
        } else {
            String::new()
        };
        let alternate = if (days.len() - 1 - place) % 2 == 1 {
            " class=\"alternate\""
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            "<g><title>{label}</title>\
             <rect class=\"bar\" x=\"{x}\" y=\"{y}\" width=\"{bar}\" height=\"{bar_height}\"/>\
             {number}<text{alternate} x=\"{centre}\" y=\"{dy}\" text-anchor=\"middle\">{date}</text></g>",
            dy = TOP + PLOT + 26,
            date = escape(&day.format("%m-%d").to_string()),
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn orders_section(body: &mut String, status: &Status) {
    let open: u64 = status
        .counts
        .iter()
        .filter(|count| matches!(count.state, "pending" | "held"))
        .map(|count| count.orders)
        .sum();
    let _ = write!(
        body,
        "<section id=\"orders\">\n<h2>Orders</h2>\n<p><span class=\"big\" data-open=\"{open}\">{open}</span> open</p>\n",
    );
    match status.oldest_pending {
        Some(placed) => {
            let _ = writeln!(
                body,
                "<p>The oldest pending order (first in intake order) was placed {} ago, at {}.</p>",
                escape(&span(status.now - placed)),
                escape(&local(placed, status.zone))
            );
        }
        None => body.push_str("<p class=\"muted\">No order is pending.</p>\n"),
    }
    body.push_str(
        "<div class=\"scroll\"><table id=\"order-counts\">\n<thead><tr><th>state</th><th>reason</th>\
         <th class=\"num\">orders</th><th class=\"meaning\">meaning</th></tr></thead>\n<tbody>\n",
    );
    for count in &status.counts {
        let reason = count.reason.unwrap_or("");
        let _ = writeln!(
            body,
            "<tr data-state=\"{state}\" data-reason=\"{reason}\" data-orders=\"{orders}\">\
             <td>{state}</td><td>{shown}</td><td class=\"num\">{orders}</td><td class=\"muted meaning\">{meaning}</td></tr>",
            state = escape(count.state),
            reason = escape(reason),
            shown = if reason.is_empty() {
                "-".to_owned()
            } else {
                escape(reason)
            },
            orders = count.orders,
            meaning = escape(meaning(count.state, count.reason)),
        );
    }
    if status.counts.is_empty() {
        body.push_str("<tr><td colspan=\"4\" class=\"muted\">no order taken in yet</td></tr>\n");
    }
    body.push_str("</tbody>\n</table></div>\n</section>\n");
}

fn held_section(body: &mut String, status: &Status, page: u64) {
    let total = status.held_total;
    let _ = write!(
        body,
        "<section id=\"held\" class=\"wide\">\n<h2>Held orders that need a decision: \
         <span data-held-total=\"{total}\">{total}</span></h2>\n",
    );
    if total == 0 {
        body.push_str(
            "<p class=\"muted\">None: every open order is pending, waiting for its day, stock \
             or the recipient's allowance.</p>\n</section>\n",
        );
        return;
    }
    body.push_str(
        "<p class=\"muted\">Excluded goods, over the limit, no rate or an incomplete item: \
         a new policy, rate or catalogue frees them at the next batch, \
         <code>orders refer</code> sends them to a formal entry, <code>orders cancel</code> \
         drops them.</p>\n",
    );
    let first = status.held_skipped + 1;
    let last = status.held_skipped + status.held.len() as u64;
    if status.held.is_empty() {
        let _ = writeln!(
            body,
            "<p>No held order on page {page}. <a href=\"?page=1\">the first {HELD_PER_PAGE}</a></p>"
        );
    } else {
        let _ = write!(
            body,
            "<p class=\"muted\" data-first=\"{first}\" data-last=\"{last}\">{first} to {last} of \
             {total}, in intake order</p>\n\
             <div class=\"scroll\"><table id=\"held-orders\" class=\"held\">\n<thead><tr><th>order</th><th>reason</th>\
             <th>why</th><th>consignee</th><th class=\"num\">value USD</th><th>placed at (UTC)</th></tr></thead>\n<tbody>\n",
        );
        for row in &status.held {
            let reason = row.reason.as_deref().unwrap_or("");
            let _ = writeln!(
                body,
                "<tr data-order=\"{id}\" data-reason=\"{reason}\" data-value=\"{value}\">\
                 <td class=\"id\"><a href=\"orders/{link}\">{id}</a></td><td class=\"id\">{reason}</td>\
                 <td class=\"why\">{why}</td><td>{name}<br><span class=\"muted\">{city}, {state}</span></td>\
                 <td class=\"num\">{value}</td><td class=\"id\">{placed}</td></tr>",
                id = escape(&row.order_id),
                link = escape(&path_segment(&row.order_id)),
                reason = escape(reason),
                why = escape(row.explanation.as_deref().unwrap_or("")),
                name = escape(&row.consignee.name),
                city = escape(&row.consignee.address.city),
                state = escape(&row.consignee.address.state),
                value = escape(row.value_usd.as_deref().unwrap_or("-")),
                placed = escape(&row.placed_at),
            );
        }
        body.push_str("</tbody>\n</table></div>\n");
    }
    let previous = page > 1;
    let next = last < total;
    if previous || next {
        body.push_str("<nav class=\"pages\">");
        if previous {
            let _ = write!(
                body,
                "<a rel=\"prev\" href=\"?page={}\">« previous {HELD_PER_PAGE}</a>",
                page - 1
            );
        }
        if next {
            let _ = write!(
                body,
                "<a rel=\"next\" href=\"?page={}\">next {HELD_PER_PAGE} »</a>",
                page + 1
            );
        }
        body.push_str("</nav>\n");
    }
    body.push_str("</section>\n");
}

fn rejected_section(body: &mut String, status: &Status) {
    let total = status.rejected_total;
    let _ = write!(
        body,
        "<section id=\"rejected\" class=\"wide\">\n<h2>Spool files refused in the last \
         {REJECTED_DAYS} days: <span data-rejected-total=\"{total}\">{total}</span></h2>\n",
    );
    if let Some(error) = &status.rejected_error {
        let _ = writeln!(
            body,
            "<p class=\"bad\">The refused files cannot be listed: {}</p>",
            escape(error)
        );
    }
    if total == 0 {
        body.push_str("<p class=\"muted\">None.</p>\n</section>\n");
        return;
    }
    let _ = writeln!(
        body,
        "<p class=\"muted\">In {}: each file with its report. A file with some lines refused \
         had its other lines taken in; fix the lines of its <code>.rejected</code> file and drop \
         that in again.</p>",
        escape(&status.rejected_folder.display().to_string())
    );
    for file in &status.rejected {
        let _ = write!(
            body,
            "<details data-file=\"{name}\"><summary><strong>{name}</strong> \
             <span class=\"muted\">{at}</span></summary>\n<pre>{report}</pre>\n",
            name = escape(&file.name),
            at = escape(&local(file.at, status.zone)),
            report = escape(&file.report),
        );
        if file.cut {
            let _ = writeln!(
                body,
                "<p class=\"muted\">… the whole report is in {}</p>",
                escape(&file.report_path.display().to_string())
            );
        }
        body.push_str("</details>\n");
    }
    if status.rejected.len() < total {
        let _ = writeln!(
            body,
            "<p class=\"muted\">and {} more, older, in the folder.</p>",
            total - status.rejected.len()
        );
    }
    body.push_str("</section>\n");
}

/// One order's page: what `orders show` says of it.
pub fn order_page(doc: &OrderDoc) -> String {
    let row = &doc.row;
    let mut body = String::with_capacity(16 << 10);
    let _ = write!(
        body,
        "<header>\n<p><a href=\"../\">« status</a></p>\n<h1>Order {id}</h1>\n</header>\n<main>\n\
         <section id=\"order\" data-order=\"{id}\" data-state=\"{state}\" data-reason=\"{reason}\">\n\
         <h2>{state}{reason_words}</h2>\n",
        id = escape(&row.order_id),
        state = escape(&row.state),
        reason = escape(row.reason.as_deref().unwrap_or("")),
        reason_words = row
            .reason
            .as_deref()
            .map(|reason| format!(": {}", escape(reason)))
            .unwrap_or_default(),
    );
    if let Some(explanation) = &row.explanation {
        let _ = writeln!(
            body,
            "<p data-explanation=\"{0}\">{0}</p>",
            escape(explanation)
        );
    }
    body.push_str("<dl>\n");
    if let Some(release_id) = &row.release_id {
        let _ = writeln!(
            body,
            "<dt>release</dt><dd data-release=\"{0}\">{0} on {1}</dd>",
            escape(release_id),
            escape(row.day.as_deref().unwrap_or("-"))
        );
    } else if let (Some(day), "referred") = (&row.day, row.state.as_str()) {
        let _ = writeln!(
            body,
            "<dt>referred</dt><dd>on {} to a formal entry</dd>",
            escape(day)
        );
    }
    let _ = writeln!(
        body,
        "<dt>placed at</dt><dd>{} (UTC)</dd>",
        escape(&row.placed_at)
    );
    let (rate, basis) = (doc.rate_words(), doc.value_basis());
    let _ = writeln!(
        body,
        "<dt>value</dt><dd data-order-value=\"{value}\">{shown}{basis}{rate}</dd>",
        value = escape(row.value_usd.as_deref().unwrap_or("")),
        shown = escape(
            &row.value_usd
                .as_ref()
                .map_or_else(|| "-".to_owned(), |value| format!("{value} USD"))
        ),
        basis = escape(if row.value_usd.is_some() { basis } else { "" }),
        rate = escape(&rate),
    );
    if doc.duty_estimated {
        let source = doc.duty_source();
        let _ = writeln!(
            body,
            "<dt>duty</dt><dd data-order-duty=\"{duty}\">{shown} ({source})</dd>",
            source = escape(source),
            duty = escape(doc.duty_usd.as_deref().unwrap_or("")),
            shown = escape(
                &doc.duty_usd
                    .as_ref()
                    .map_or_else(|| "unknown".to_owned(), |duty| format!("{duty} USD"))
            ),
        );
    }
    body.push_str("</dl>\n</section>\n");

    let who = &row.consignee;
    let address = &who.address;
    let _ = write!(
        body,
        "<section id=\"recipient\">\n<h2>Recipient</h2>\n<p data-consignee=\"{name}\"><strong>{name}</strong>{customer}<br>\n{line1}<br>\n",
        name = escape(&who.name),
        customer = who
            .customer_id
            .as_ref()
            .map(|id| format!(" <span class=\"muted\">(customer {})</span>", escape(id)))
            .unwrap_or_default(),
        line1 = escape(&address.line1),
    );
    if let Some(line2) = &address.line2 {
        let _ = writeln!(body, "{}<br>", escape(line2));
    }
    let _ = write!(
        body,
        "{}, {} {} {}</p>\n</section>\n",
        escape(&address.city),
        escape(&address.state),
        escape(&address.postal_code),
        escape(&address.country)
    );

    let _ = write!(
        body,
        "<section id=\"lines\" class=\"wide\">\n<h2>Lines</h2>\n<div class=\"scroll\"><table>\n\
         <thead><tr><th>SKU</th><th class=\"num\">qty</th><th class=\"num\">unit price {currency}</th>\
         <th class=\"num\">value USD</th><th class=\"num\">duty USD</th><th>programs</th></tr></thead>\n<tbody>\n",
        currency = escape(&doc.currency),
    );
    for line in &doc.lines {
        let programs: Vec<String> = line
            .duties
            .iter()
            .map(|duty| format!("{} {} % {}", duty.program, duty.rate_percent, duty.usd))
            .collect();
        let duty = match (&line.duty_usd, doc.duty_estimated) {
            (Some(duty), _) => duty.as_str(),
            (None, true) => "unknown",
            (None, false) => "-",
        };
        let _ = writeln!(
            body,
            "<tr data-sku=\"{sku}\" data-value=\"{value}\"><td>{sku}</td><td class=\"num\">{qty}</td>\
             <td class=\"num\">{price}</td><td class=\"num\">{shown}</td><td class=\"num\">{duty}</td>\
             <td>{programs}</td></tr>",
            sku = escape(&line.sku),
            qty = line.qty,
            price = escape(&line.unit_price),
            value = escape(line.value_usd.as_deref().unwrap_or("")),
            shown = escape(line.value_usd.as_deref().unwrap_or("-")),
            duty = escape(duty),
            programs = escape(&programs.join(", ")),
        );
    }
    body.push_str("</tbody>\n</table></div>\n</section>\n");

    if let Some(detail) = &row.detail {
        body.push_str("<section id=\"detail\" class=\"wide\">\n<h2>What decided it</h2>\n");
        detail_html(&mut body, detail);
        body.push_str("</section>\n");
    }
    body.push_str("</main>\n");
    let _ = writeln!(
        body,
        "<footer>This page reloads itself every {REFRESH_SECONDS} s. \
         <code>border-release orders show {} --json</code> gives the same.</footer>",
        escape(&row.order_id)
    );
    document(&format!("Order {}", row.order_id), &body)
}

/// The detail of a verdict (JSON) as nested lists of its fields.
fn detail_html(out: &mut String, value: &serde_json::Value) {
    match value {
        serde_json::Value::Object(fields) => {
            out.push_str("<dl>\n");
            for (key, value) in fields {
                let _ = write!(out, "<dt>{}</dt><dd>", escape(key));
                detail_html(out, value);
                out.push_str("</dd>\n");
            }
            out.push_str("</dl>\n");
        }
        serde_json::Value::Array(items) => {
            out.push_str("<ul>\n");
            for item in items {
                out.push_str("<li>");
                detail_html(out, item);
                out.push_str("</li>\n");
            }
            out.push_str("</ul>\n");
        }
        serde_json::Value::String(text) => out.push_str(&escape(text)),
        serde_json::Value::Null => out.push('-'),
        other => out.push_str(&escape(&other.to_string())),
    }
}

/// A page that only says something: an error, a refusal.
pub fn message_page(title: &str, message: &str) -> String {
    document(
        title,
        &format!(
            "<header>\n<h1>{}</h1>\n</header>\n<main>\n<section class=\"wide\">\n<p>{}</p>\n\
             <p><a href=\"/\">status</a></p>\n</section>\n</main>\n",
            escape(title),
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, Consignee};
    use crate::wire::{OrderLineDoc, OrderRow};
    use std::collections::BTreeMap;

    fn days_of(days: &[(&str, u64, &str)]) -> BTreeMap<NaiveDate, (u64, Decimal)> {
        days.iter()
            .map(|(day, releases, value)| {
                (day.parse().unwrap(), (*releases, value.parse().unwrap()))
            })
            .collect()
    }

    #[test]
    fn escaping_leaves_no_markup_and_no_quote_that_ends_an_attribute() {
        assert_eq!(
            escape("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            escape(r#"a "b" 'c' & <d>"#),
            "a &quot;b&quot; &#39;c&#39; &amp; &lt;d&gt;"
        );
        assert_eq!(escape("Peña, 1200 Market St"), "Peña, 1200 Market St");
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert_eq!(escape(""), "");
        for hostile in ["<", ">", "\"", "'", "<img src=x onerror=alert(1)>"] {
            let escaped = escape(hostile);
            assert!(
                !escaped.contains(['<', '>', '"', '\'']),
                "{hostile} -> {escaped}"
            );
        }
    }

    #[test]
    fn a_path_segment_keeps_every_byte_of_an_id_in_one_segment() {
        assert_eq!(path_segment("SO-1001"), "SO-1001");
        assert_eq!(path_segment("a/b?c#d%e f"), "a%2Fb%3Fc%23d%25e%20f");
        assert_eq!(path_segment("<x>&\"'"), "%3Cx%3E%26%22%27");
        assert_eq!(path_segment("Ñ"), "%C3%91");
    }

    #[test]
    fn spans_read_in_a_few_words() {
        assert_eq!(span(chrono::Duration::seconds(12)), "12 s");
        assert_eq!(span(chrono::Duration::seconds(185)), "3 min 5 s");
        assert_eq!(
            span(chrono::Duration::seconds(4 * 3600 + 720)),
            "4 h 12 min"
        );
        assert_eq!(
            span(chrono::Duration::seconds(2 * 86_400 + 3 * 3600)),
            "2 d 3 h"
        );
        assert_eq!(span(chrono::Duration::seconds(-5)), "0 s");
        assert_eq!(seconds(std::time::Duration::from_millis(1412)), "1.412 s");
    }

    fn hostile_row() -> OrderRow {
        OrderRow {
            order_id: "X/1?<b>".into(),
            state: "held".into(),
            reason: Some("over-limit".into()),
            release_id: None,
            day: None,
            placed_at: "2026-11-29T17:00:00Z".into(),
            consignee: Consignee {
                name: "<script>alert(1)</script>".into(),
                customer_id: Some("\"><img src=x>".into()),
                address: Address {
                    line1: "1 <b>Bold</b> St".into(),
                    line2: Some("Apt 'x'".into()),
                    city: "San Diego".into(),
                    state: "CA".into(),
                    postal_code: "92101".into(),
                    country: "US".into(),
                },
            },
            value_usd: Some("900.00".into()),
            detail: Some(serde_json::json!({"value_usd": "900.00", "note": "<i>"})),
            explanation: Some("over-limit (<i>)".into()),
        }
    }

    fn status_with(held: Vec<OrderRow>, held_total: u64, skipped: u64) -> Status {
        Status {
            warehouse: "Tijuana <1>".into(),
            zone: chrono_tz::America::Los_Angeles,
            now: "2026-11-30T18:00:00Z".parse().unwrap(),
            today: "2026-11-30".parse().unwrap(),
            policy: None,
            schedule: "0 0 6 * * *".into(),
            cutoff: chrono::NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
            counts: Vec::new(),
            oldest_pending: None,
            held_total,
            held_skipped: skipped,
            held,
            last_day: None,
            rejected_folder: "/spool/rejected".into(),
            rejected: vec![crate::operations::RejectedFile {
                name: "orders-<1>.jsonl".into(),
                at: "2026-11-30T17:00:00Z".parse().unwrap(),
                report: "line 3: unknown SKU \"<img src=x>\"\n".into(),
                cut: false,
                report_path: "/spool/rejected/orders-<1>.jsonl.report.txt".into(),
            }],
            rejected_total: 1,
            rejected_error: None,
        }
    }

    fn figures() -> DaemonFigures {
        DaemonFigures {
            days: days_of(&[("2026-11-29", 3, "120.50"), ("2026-11-30", 2, "84.98")]),
            days_read: DaysRead::Read,
            last_batch: None,
            next_batch: None,
            batches: BTreeMap::new(),
            failing: Some("<disk>".into()),
            started_at: None,
        }
    }

    /// The text of a page with its markup taken out: what a browser shows.
    fn shown(page: &str) -> String {
        let mut text = String::new();
        let mut in_tag = false;
        for c in page.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        text
    }

    #[test]
    fn every_value_on_the_status_page_is_escaped() {
        let page = status_page(&status_with(vec![hostile_row()], 1, 0), &figures(), 1);
        for raw in ["<script>", "<img", "<b>Bold", "<i>", "<1>", "<disk>"] {
            assert!(!page.contains(raw), "{raw} left unescaped");
        }
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("href=\"orders/X%2F1%3F%3Cb%3E\""), "{page}");
        assert!(page.contains("unknown SKU &quot;&lt;img src=x&gt;&quot;"));
        // What a browser shows keeps the names as they are.
        assert!(shown(&page).contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn every_value_on_an_order_page_is_escaped() {
        let doc = OrderDoc {
            row: hostile_row(),
            currency: "USD".into(),
            lines: vec![OrderLineDoc {
                sku: "<SKU>".into(),
                qty: 1,
                unit_price: "900.00".into(),
                value_usd: Some("900.00".into()),
                duty_usd: Some("148.50".into()),
                duties: vec![crate::wire::DutyDoc {
                    program: "<mfn>".into(),
                    rate_percent: "16.5".into(),
                    usd: "148.50".into(),
                }],
            }],
            rate: None,
            duty_usd: Some("148.50".into()),
            duty_estimated: true,
        };
        let page = order_page(&doc);
        assert!(
            page.contains("148.50 USD (estimate, from today&#39;s duty tables)"),
            "{page}"
        );
        for raw in ["<script>", "<img", "<b>", "<i>", "<SKU>", "'x'", "<mfn>"] {
            assert!(!page.contains(raw), "{raw} left unescaped");
        }
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("Apt &#39;x&#39;"));
    }

    #[test]
    fn the_page_refreshes_itself_fits_a_phone_and_loads_nothing_from_elsewhere() {
        let page = status_page(&status_with(Vec::new(), 0, 0), &figures(), 1);
        assert!(page.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
        assert!(page
            .contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
        assert!(!page.contains("<script"));
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert!(!page.contains("src=\""));
    }

    #[test]
    fn held_orders_page_with_links_to_the_pages_around() {
        let rows = vec![hostile_row(); 100];
        let first = status_page(&status_with(rows.clone(), 250, 0), &figures(), 1);
        assert!(first.contains("1 to 100 of"), "{first}");
        assert!(first.contains("href=\"?page=2\">next 100"));
        assert!(!first.contains("previous 100"));
        let second = status_page(&status_with(rows, 250, 100), &figures(), 2);
        assert!(second.contains("101 to 200 of"));
        assert!(second.contains("href=\"?page=1\">« previous 100"));
        assert!(second.contains("href=\"?page=3\">next 100"));
        let last = status_page(
            &status_with(vec![hostile_row(); 50], 250, 200),
            &figures(),
            3,
        );
        assert!(last.contains("201 to 250 of"));
        assert!(!last.contains("next 100"));
    }

    #[test]
    fn the_last_batch_says_how_it_went_and_a_failure_says_why() {
        let status = status_with(Vec::new(), 0, 0);
        let mut daemon = figures();
        daemon.last_batch = Some(super::super::metrics::LastBatch {
            day: "2026-11-30".parse().unwrap(),
            at: "2026-11-30T14:00:02Z".parse().unwrap(),
            took: std::time::Duration::from_millis(2412),
            scheduled: true,
            outcome: BatchOutcome::Failed("the logs folder <x> is not writable".into()),
        });
        let page = status_page(&status, &daemon, 1);
        assert!(page.contains("data-outcome=\"failed\""));
        assert!(page.contains("failed: the logs folder &lt;x&gt; is not writable"));
        assert!(page.contains("2026-11-30 06:00:02 PST (on the schedule)"));
        assert!(page.contains("2.412 s"));
        daemon.last_batch.as_mut().unwrap().outcome = BatchOutcome::Committed {
            releases: 3,
            orders: 4,
            value_usd: "268.12".parse().unwrap(),
            files_error: None,
        };
        let page = status_page(&status, &daemon, 1);
        assert!(page.contains("data-last-releases=\"3\""));
        assert!(page.contains("data-last-value=\"268.12\""));
        assert!(page.contains("(4 orders)"));
        // No batch since start: the store's last day stands in, when the daemon has read it.
        daemon.last_batch = None;
        let mut status = status;
        status.last_day = Some("2026-11-30".parse().unwrap());
        let page = status_page(&status, &daemon, 1);
        assert!(page.contains("data-store-releases=\"2\" data-store-value=\"84.98\""));
        daemon.days_read = DaysRead::Reading;
        let page = status_page(&status, &daemon, 1);
        assert!(page.contains("its figures are being read"));
        assert!(!page.contains("data-store-releases"));
    }

    #[test]
    fn the_chart_shows_fourteen_days_with_bars_in_proportion() {
        let status = status_with(Vec::new(), 0, 0);
        let days = chart_days(&status, &figures());
        assert_eq!(days.len(), 14);
        assert_eq!(days[0].0, "2026-11-17".parse::<NaiveDate>().unwrap());
        assert_eq!(
            days[13],
            ("2026-11-30".parse().unwrap(), 2, "84.98".parse().unwrap())
        );
        let svg = chart(&days);
        // The largest day takes the whole height, the other in proportion (84.98 / 120.50).
        assert!(svg.contains("height=\"140\""), "{svg}");
        assert!(svg.contains("height=\"99\""), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 14);
    }
}
