#!/usr/bin/env python3
"""The daily customs release done by hand: Python 3.11 and SQLite, standard library only.

This is the script an experienced warehouse operator would write in an afternoon to do what
border-release does, and the benchmarks (`bash bench/run.sh peer N`) compare border-release
against it. It reads the same input files and the same TOML config, keeps its state in one
SQLite file, and writes a release log and a broker manifest for the day.

    peer_sqlite.py intake DB ORDERS.jsonl ITEMS.csv STOCK.csv
    peer_sqlite.py batch DB DAY CONFIG.toml LOGDIR

Durability: the database runs with journal_mode=WAL and synchronous=FULL, so a transaction is
on disk when its COMMIT returns.

`intake` creates the schema if it is missing, then commits two transactions:
  1. the catalogue: ITEMS.csv (`sku,description,hts,origin,flags`; a known SKU is updated) and
     STOCK.csv (`sku,qty`, a count of the shelf: it sets the units on hand). This is part of
     the timed run: about a tenth of a second at 5,000 SKUs.
  2. the orders: every line of ORDERS.jsonl is checked (required fields, order id, placed_at as
     RFC 3339 with an offset, name, US state, ZIP, country, currency code, known SKU, whole
     positive quantity, unit price as a decimal string) and the good orders and their lines are
     inserted with executemany, a chunk at a time, in one transaction. A bad line is reported on
     standard error and skipped; an order id already stored (or seen earlier in the file) is
     skipped. Exit status 0, or 3 when some lines were rejected.

`batch` runs the release batch for DAY in one transaction: the open (pending or held) orders
placed before the day's cutoff (`schedule.cutoff` in `warehouse.timezone`) are read oldest
first (ties by order id) and valued in US dollars with Decimal: each line's qty x unit_price at
the latest `[[currency.rates]]` rate on or before DAY, rounded to the cent half away from zero.
An order is held when the policy in force (the `[[policy]]` with the latest `from` on or before
DAY) excludes one of its items by origin, HTS prefix or flag, when its currency has no rate, or
when its own value is over the limit. Otherwise it joins its recipient's release for the day if
the recipient still has a release left, the recipient's total for the day stays within the
limit and every line is in stock (the stock is taken then); else it waits, with the reason.
The releases, their lines, the orders' states and the stock are written, and the day's release
log (`LOGDIR/DAY.jsonl`, one JSON object per release) and manifest (`LOGDIR/DAY.manifest.csv`,
one row per release line) are written to temporary files and fsynced before the COMMIT, then
renamed into place. A later batch for the same day (a wave) only adds what the day's earlier
releases allow, and its files list the earlier releases too.

The recipient key is simpler than border-release's, which is close enough for a benchmark: the
name and the address lines and city in lower case, the state and the 5-digit ZIP, joined with
'|'. Upper-case names and ZIP+4 give one key, as in border-release, but `Street` and `St`, or
`#4` and `Apt 4`, give two, so a recipient who spells the address both ways gets two releases
and two limits: on the 10k and 100k benchmark workloads this script makes about 7% more
releases than border-release and releases 0.3 to 0.5% more orders (with border-release's key,
its releases are the same, line for line).

The database and the day's files hold names and addresses, so they are created owner-only.
"""

import argparse
import csv
import json
import os
import re
import sqlite3
import sys
import tomllib
from collections import Counter
from datetime import date, datetime, time, timezone
from decimal import ROUND_HALF_UP, Decimal
from itertools import groupby
from operator import itemgetter
from zoneinfo import ZoneInfo

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    sku         TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    hts         TEXT NOT NULL,
    origin      TEXT NOT NULL,
    flags       TEXT NOT NULL DEFAULT ''      -- ';'-separated
);
CREATE TABLE IF NOT EXISTS stock (
    sku     TEXT PRIMARY KEY,
    on_hand INTEGER NOT NULL CHECK (on_hand >= 0)
);
CREATE TABLE IF NOT EXISTS orders (
    order_id    TEXT PRIMARY KEY,
    placed_at   TEXT NOT NULL,                -- as received, with its offset
    placed_utc  TEXT NOT NULL,                -- UTC, fixed width: sorts as time does
    name        TEXT NOT NULL,
    customer_id TEXT,
    line1       TEXT NOT NULL,
    line2       TEXT,
    city        TEXT NOT NULL,
    state       TEXT NOT NULL,
    postal_code TEXT NOT NULL,
    country     TEXT NOT NULL,
    currency    TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',   -- pending, held, released
    reason      TEXT,
    release_id  TEXT
);
-- The batch reads the open orders in order of service; released orders leave this index.
CREATE INDEX IF NOT EXISTS orders_open ON orders (placed_utc, order_id)
    WHERE status IN ('pending', 'held');
CREATE TABLE IF NOT EXISTS order_lines (
    order_id   TEXT NOT NULL,
    line_no    INTEGER NOT NULL,
    sku        TEXT NOT NULL,
    qty        INTEGER NOT NULL CHECK (qty > 0),
    unit_price TEXT NOT NULL,                 -- decimal string: money is never a float
    PRIMARY KEY (order_id, line_no)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS releases (
    release_id    TEXT PRIMARY KEY,
    day           TEXT NOT NULL,
    policy        TEXT NOT NULL,
    lane          TEXT NOT NULL,
    recipient_key TEXT NOT NULL,
    value_usd     TEXT NOT NULL,
    released_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS releases_day ON releases (day, recipient_key);
CREATE TABLE IF NOT EXISTS release_lines (
    release_id   TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    line_no      INTEGER NOT NULL,
    sku          TEXT NOT NULL,
    qty          INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    unit_price   TEXT NOT NULL,
    usd_per_unit TEXT NOT NULL,
    value_usd    TEXT NOT NULL,
    PRIMARY KEY (release_id, order_id, line_no)
) WITHOUT ROWID;
"""

US_STATES = frozenset(
    "AK AL AR AS AZ CA CO CT DC DE FL GA GU HI IA ID IL IN KS KY LA MA MD ME MI MN MO MP MS MT "
    "NC ND NE NH NJ NM NV NY OH OK OR PA PR RI SC SD TN TX UT VA VI VT WA WI WV WY".split()
)
KNOWN_FLAGS = frozenset(["adcvd", "quota", "pga", "irc-tax"])
ORDER_ID = re.compile(r"[!-~]{1,64}")
ZIP = re.compile(r"\d{5}(-\d{4})?")
CURRENCY = re.compile(r"[A-Z]{3}")
PRICE = re.compile(r"\d{1,12}(\.\d{1,6})?")
HTS = re.compile(r"[\d.]{4,14}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

CENT = Decimal("0.01")
ZERO = Decimal(0)
ORDERS_PER_CHUNK = 10_000
# When several hold reasons apply, the first of these is given.
HOLD_RANK = {"excluded-origin": 0, "excluded-goods": 1, "excluded-flag": 2}


def connect(path):
    """A connection in autocommit mode: transactions are begun and committed explicitly."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = FULL")
    con.execute("PRAGMA cache_size = -65536")  # 64 MiB
    con.executescript(SCHEMA)
    return con


# --- intake -------------------------------------------------------------------------------------


class Rejected(Exception):
    def __init__(self, field, reason):
        super().__init__(f"{field}: {reason}" if field else reason)


def text(obj, key, field, required=True, most=200):
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise Rejected(field, "missing or not a string")
    if len(value) > most:
        raise Rejected(field, f"longer than {most} characters")
    if CONTROL.search(value):
        raise Rejected(field, "has a control character")
    return value


def check_order(obj, skus):
    """The order's row and its lines' rows, or Rejected."""
    if not isinstance(obj, dict):
        raise Rejected("", "not a JSON object")
    order_id = obj.get("order_id")
    if not isinstance(order_id, str) or not ORDER_ID.fullmatch(order_id):
        raise Rejected("order_id", "1 to 64 visible ASCII characters required")

    placed_at = text(obj, "placed_at", "placed_at", most=64)
    try:
        placed = datetime.fromisoformat(placed_at)
    except ValueError:
        raise Rejected("placed_at", f"{placed_at!r} is not an RFC 3339 date and time") from None
    if placed.tzinfo is None:
        raise Rejected("placed_at", "needs an offset (Z or +hh:mm)")
    if not 2000 <= placed.year <= 2100:
        raise Rejected("placed_at", "year out of range")
    placed_utc = placed.astimezone(timezone.utc).isoformat(timespec="microseconds")

    recipient = obj.get("recipient")
    if not isinstance(recipient, dict):
        raise Rejected("recipient", "missing")
    name = text(recipient, "name", "recipient.name")
    customer_id = text(recipient, "customer_id", "recipient.customer_id", required=False)
    address = recipient.get("address")
    if not isinstance(address, dict):
        raise Rejected("recipient.address", "missing")
    line1 = text(address, "line1", "recipient.address.line1")
    line2 = text(address, "line2", "recipient.address.line2", required=False)
    city = text(address, "city", "recipient.address.city")
    state = address.get("state")
    if state not in US_STATES:
        raise Rejected("recipient.address.state", f"{state!r} is not a US state code")
    postal_code = address.get("postal_code")
    if not isinstance(postal_code, str) or not ZIP.fullmatch(postal_code):
        raise Rejected("recipient.address.postal_code", "12345 or 12345-6789 required")
    country = address.get("country")
    if country != "US":
        raise Rejected("recipient.address.country", "must be US")

    currency = obj.get("currency")
    if not isinstance(currency, str) or not CURRENCY.fullmatch(currency):
        raise Rejected("currency", "an ISO 4217 code required")

    lines = obj.get("lines")
    if not isinstance(lines, list) or not 1 <= len(lines) <= 1000:
        raise Rejected("lines", "1 to 1000 lines required")
    line_rows = []
    for line_no, line in enumerate(lines, 1):
        field = f"lines[{line_no - 1}]"
        if not isinstance(line, dict):
            raise Rejected(field, "not an object")
        sku = line.get("sku")
        if sku not in skus:
            raise Rejected(f"{field}.sku", f"{sku!r} is not in the catalogue")
        qty = line.get("qty")
        if type(qty) is not int or not 1 <= qty <= 1_000_000:
            raise Rejected(f"{field}.qty", "a whole number from 1 to 1000000 required")
        price = line.get("unit_price")
        if not isinstance(price, str) or not PRICE.fullmatch(price):
            raise Rejected(f"{field}.unit_price", "a decimal string (at most 6 places) required")
        line_rows.append((order_id, line_no, sku, qty, price))

    order_row = (
        order_id, placed_at, placed_utc, name, customer_id, line1, line2, city, state,
        postal_code, country, currency,
    )
    return order_row, line_rows


def read_csv(path, header):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        if next(reader, None) != header:
            sys.exit(f"{path}: the header must be {','.join(header)}")
        for number, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) != len(header):
                sys.exit(f"{path}:line {number}: {len(header)} fields expected")
            yield number, row


def load_catalogue(con, items_path, stock_path):
    items = []
    for number, (sku, description, hts, origin, flags) in read_csv(
        items_path, ["sku", "description", "hts", "origin", "flags"]
    ):
        if not ORDER_ID.fullmatch(sku) or not description or not HTS.fullmatch(hts):
            sys.exit(f"{items_path}:line {number}: bad sku, description or hts")
        if not re.fullmatch(r"[A-Z]{2}", origin):
            sys.exit(f"{items_path}:line {number}: origin must be an ISO 3166 alpha-2 code")
        if flags and not set(flags.split(";")) <= KNOWN_FLAGS:
            sys.exit(f"{items_path}:line {number}: unknown flag in {flags!r}")
        items.append((sku, description, hts, origin, flags))
    if len({row[0] for row in items}) != len(items):
        sys.exit(f"{items_path}: the same SKU twice")

    con.execute("BEGIN IMMEDIATE")
    try:
        con.executemany(
            "INSERT INTO items (sku, description, hts, origin, flags) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (sku) DO UPDATE SET description = excluded.description, "
            "hts = excluded.hts, origin = excluded.origin, flags = excluded.flags",
            items,
        )
        known = {row[0] for row in con.execute("SELECT sku FROM items")}
        stock = []
        for number, (sku, qty) in read_csv(stock_path, ["sku", "qty"]):
            if sku not in known or not qty.isdigit():
                sys.exit(f"{stock_path}:line {number}: unknown SKU or bad quantity")
            stock.append((sku, int(qty)))
        con.executemany(
            "INSERT INTO stock (sku, on_hand) VALUES (?, ?) "
            "ON CONFLICT (sku) DO UPDATE SET on_hand = excluded.on_hand",
            stock,
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return known, len(items), len(stock)


def store_chunk(con, orders, lines):
    """Inserts the orders of one chunk (and their lines) whose ids are not stored yet."""
    ids = [row[0] for row in orders]
    marks = ",".join("?" * len(ids))
    query = f"SELECT order_id FROM orders WHERE order_id IN ({marks})"
    stored = {row[0] for row in con.execute(query, ids)}
    if stored:
        orders = [row for row in orders if row[0] not in stored]
        lines = [row for row in lines if row[0] not in stored]
    con.executemany(
        "INSERT INTO orders (order_id, placed_at, placed_utc, name, customer_id, line1, line2, "
        "city, state, postal_code, country, currency) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        orders,
    )
    con.executemany(
        "INSERT INTO order_lines (order_id, line_no, sku, qty, unit_price) VALUES (?, ?, ?, ?, ?)",
        lines,
    )
    return len(orders), len(stored)


def intake(args):
    con = connect(args.db)
    skus, item_count, stock_count = load_catalogue(con, args.items, args.stock)

    accepted = skipped = rejected = 0
    seen = set()  # ids earlier in this file
    orders, lines = [], []
    name = os.path.basename(args.orders)
    con.execute("BEGIN IMMEDIATE")
    try:
        with open(args.orders, "rb") as f:
            for number, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                obj = None
                try:
                    obj = json.loads(raw)
                    order_row, line_rows = check_order(obj, skus)
                except (ValueError, Rejected) as error:  # bad JSON or UTF-8, or a bad field
                    rejected += 1
                    order_id = obj.get("order_id") if isinstance(obj, dict) else None
                    which = f" order {order_id}:" if isinstance(order_id, str) else ""
                    print(f"{name}:line {number}:{which} {error}", file=sys.stderr)
                    continue
                if order_row[0] in seen:
                    skipped += 1
                    continue
                seen.add(order_row[0])
                orders.append(order_row)
                lines.extend(line_rows)
                if len(orders) == ORDERS_PER_CHUNK:
                    added, already = store_chunk(con, orders, lines)
                    accepted, skipped = accepted + added, skipped + already
                    orders, lines = [], []
        if orders:
            added, already = store_chunk(con, orders, lines)
            accepted, skipped = accepted + added, skipped + already
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.close()
    print(
        f"{name}: {accepted} accepted, {skipped} skipped (already stored), {rejected} rejected; "
        f"catalogue: {item_count} items, {stock_count} stock counts"
    )
    return 3 if rejected else 0


# --- batch --------------------------------------------------------------------------------------


def as_date(value):
    """A TOML date, or a date written as a string."""
    return value if isinstance(value, date) else date.fromisoformat(value)


def rules_for(config, day):
    """The day's cutoff (UTC), policy and rates (currency -> (usd per unit, from))."""
    zone = ZoneInfo(config["warehouse"]["timezone"])
    cutoff = time.fromisoformat(config.get("schedule", {}).get("cutoff", "06:00"))
    cutoff_utc = datetime.combine(day, cutoff, tzinfo=zone).astimezone(timezone.utc)

    in_force = [p for p in config["policy"] if as_date(p["from"]) <= day]
    if not in_force:
        sys.exit(f"no policy in force on {day}")
    policy = max(in_force, key=lambda p: as_date(p["from"]))

    rates = {"USD": (Decimal(1), None)}
    for rate in config.get("currency", {}).get("rates", []):
        start = as_date(rate["from"])
        if start <= day:
            current = rates.get(rate["currency"])
            if current is None or current[1] is None or current[1] <= start:
                rates[rate["currency"]] = (Decimal(rate["usd"]), start)
    return cutoff_utc, policy, rates


def exclusions(policy):
    """A function giving why the policy excludes an item, or None."""
    origins = {origin.upper() for origin in policy.get("excluded_origins", [])}
    prefixes = tuple(re.sub(r"\D", "", p) for p in policy.get("excluded_hts_prefixes", []))
    flags_out = set(policy.get("excluded_flags", []))

    def exclusion(origin, hts, flags):
        if origin.upper() in origins:
            return "excluded-origin"
        if prefixes and re.sub(r"\D", "", hts).startswith(prefixes):
            return "excluded-goods"
        if flags and not flags_out.isdisjoint(flags.split(";")):
            return "excluded-flag"
        return None

    return exclusion


def recipient_key(name, line1, line2, city, state, postal_code):
    return "|".join(
        (name.strip().lower(), line1.strip().lower(), (line2 or "").strip().lower(),
         city.strip().lower(), state, postal_code[:5])
    )


CANDIDATES = """
SELECT o.order_id, o.name, o.customer_id, o.line1, o.line2, o.city, o.state, o.postal_code,
       o.country, o.currency, l.line_no, l.sku, l.qty, l.unit_price
FROM orders AS o JOIN order_lines AS l ON l.order_id = o.order_id
WHERE o.status IN ('pending', 'held') AND o.placed_utc < ?
ORDER BY o.placed_utc, o.order_id, l.line_no
"""


def write_synced(path, write):
    with open(path, "w", newline="", encoding="utf-8") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def copy_earlier(path, f):
    """Starts a day's file with what an earlier wave of the day wrote."""
    if os.path.exists(path):
        with open(path, encoding="utf-8", newline="") as earlier:
            f.write(earlier.read())


MANIFEST_HEADER = [
    "release_id", "day", "policy", "lane", "consignee_name", "address_line1", "address_line2",
    "city", "state", "postal_code", "country", "order_id", "sku", "description", "quantity",
    "hts", "origin", "currency", "unit_price", "usd_per_currency_unit", "value_usd",
]


def batch(args):
    day = date.fromisoformat(args.day)
    day_text = day.isoformat()
    with open(args.config, "rb") as f:
        config = tomllib.load(f)
    cutoff_utc, policy, rates = rules_for(config, day)
    limit = Decimal(policy["value_limit_usd"])
    per_day = int(policy.get("releases_per_recipient_per_day", 1))
    policy_name, lane = policy["name"], policy["lane"]
    released_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    con = connect(args.db)
    con.execute("BEGIN IMMEDIATE")
    try:
        items, excluded = {}, {}
        exclusion = exclusions(policy)
        for sku, description, hts, origin, flags in con.execute(
            "SELECT sku, description, hts, origin, flags FROM items"
        ):
            items[sku] = (description, hts, origin)
            reason = exclusion(origin, hts, flags)
            if reason:
                excluded[sku] = reason
        on_hand = dict(con.execute("SELECT sku, on_hand FROM stock"))

        # What the day's earlier waves gave each recipient.
        claims = {}
        for key, value in con.execute(
            "SELECT recipient_key, value_usd FROM releases WHERE day = ?", (day_text,)
        ):
            count, total = claims.get(key, (0, ZERO))
            claims[key] = (count + 1, total + Decimal(value))
        next_seq = 1 + sum(count for count, _ in claims.values())

        releases = {}  # recipient key -> the release it gets in this batch
        held, waiting, released = [], [], []
        taken = Counter()
        cursor = con.execute(CANDIDATES, (cutoff_utc.isoformat(timespec="microseconds"),))
        for order_id, rows in groupby(cursor, key=itemgetter(0)):
            rows = list(rows)
            first = rows[0]
            currency = first[9]

            reasons = [excluded[row[11]] for row in rows if row[11] in excluded]
            if reasons:
                held.append(("held", min(reasons, key=HOLD_RANK.get), order_id))
                continue
            if currency not in rates:
                held.append(("held", "no-rate", order_id))
                continue
            usd_per_unit = rates[currency][0]
            values = [
                (row[12] * Decimal(row[13]) * usd_per_unit).quantize(CENT, ROUND_HALF_UP)
                for row in rows
            ]
            value = sum(values)
            if value > limit:
                held.append(("held", "over-limit", order_id))
                continue

            key = recipient_key(first[1], first[3], first[4], first[5], first[6], first[7])
            release = releases.get(key)
            earlier_count, earlier_value = claims.get(key, (0, ZERO))
            if release is None and earlier_count >= per_day:
                waiting.append(("pending", "daily-limit", order_id))
                continue
            today = earlier_value + (release["value"] if release else ZERO)
            if today + value > limit:
                waiting.append(("pending", "daily-limit", order_id))
                continue
            need = Counter()
            for row in rows:
                need[row[11]] += row[12]
            if any(on_hand.get(sku, 0) < qty for sku, qty in need.items()):
                waiting.append(("pending", "stock", order_id))
                continue
            for sku, qty in need.items():
                on_hand[sku] -= qty
                taken[sku] += qty

            if release is None:
                release = releases[key] = {
                    "id": f"{day_text}-{next_seq:06d}",
                    "key": key,
                    "consignee": first[1:9],
                    "orders": [],
                    "lines": [],
                    "value": ZERO,
                    "fx": set(),
                }
                next_seq += 1
            release["orders"].append(order_id)
            release["value"] += value
            if rates[currency][1] is not None:
                release["fx"].add(currency)
            release["lines"].extend(
                (order_id, line_no, sku, qty, currency, price, usd_per_unit, line_value)
                for (*_, line_no, sku, qty, price), line_value in zip(rows, values)
            )
            released.append((release["id"], order_id))

        con.executemany(
            "INSERT INTO releases (release_id, day, policy, lane, recipient_key, value_usd, "
            "released_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((r["id"], day_text, policy_name, lane, r["key"], str(r["value"]), released_at)
             for r in releases.values()),
        )
        con.executemany(
            "INSERT INTO release_lines (release_id, order_id, line_no, sku, qty, currency, "
            "unit_price, usd_per_unit, value_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((r["id"], order_id, line_no, sku, qty, currency, price, str(rate), str(value))
             for r in releases.values()
             for order_id, line_no, sku, qty, currency, price, rate, value in r["lines"]),
        )
        con.executemany(
            "UPDATE orders SET status = 'released', reason = NULL, release_id = ? "
            "WHERE order_id = ?",
            released,
        )
        con.executemany("UPDATE orders SET status = ?, reason = ? WHERE order_id = ?", held)
        con.executemany("UPDATE orders SET status = ?, reason = ? WHERE order_id = ?", waiting)
        con.executemany(
            "UPDATE stock SET on_hand = on_hand - ? WHERE sku = ?",
            ((qty, sku) for sku, qty in taken.items()),
        )
        not_due = con.execute(
            "SELECT count(*) FROM orders WHERE status IN ('pending', 'held') AND placed_utc >= ?",
            (cutoff_utc.isoformat(timespec="microseconds"),),
        ).fetchone()[0]

        # The day's files, on disk before the commit; renamed into place once it is done.
        os.makedirs(args.logdir, mode=0o700, exist_ok=True)
        log_path = os.path.join(args.logdir, f"{day_text}.jsonl")
        manifest_path = os.path.join(args.logdir, f"{day_text}.manifest.csv")

        def write_log(f):
            copy_earlier(log_path, f)
            for r in releases.values():
                name, customer_id, line1, line2, city, state, postal_code, country = r["consignee"]
                address = {"line1": line1}
                if line2 is not None:
                    address["line2"] = line2
                address.update(city=city, state=state, postal_code=postal_code, country=country)
                consignee = {"name": name}
                if customer_id is not None:
                    consignee["customer_id"] = customer_id
                consignee["address"] = address
                record = {
                    "release_id": r["id"],
                    "day": day_text,
                    "policy": policy_name,
                    "lane": lane,
                    "recipient_key": r["key"],
                    "consignee": consignee,
                    "orders": r["orders"],
                    "lines": [
                        {"order_id": order_id, "sku": sku, "qty": qty,
                         "description": items[sku][0], "hts": items[sku][1],
                         "origin": items[sku][2], "value_usd": str(value),
                         "currency": currency, "unit_price": price}
                        for order_id, _, sku, qty, currency, price, _, value in r["lines"]
                    ],
                    "value_usd": str(r["value"]),
                    "fx": [{"currency": c, "usd": str(rates[c][0]), "from": str(rates[c][1])}
                           for c in sorted(r["fx"])],
                    "released_at": released_at,
                }
                f.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
                f.write("\n")

        def write_manifest(f):
            writer = csv.writer(f, lineterminator="\n")
            if os.path.exists(manifest_path):
                copy_earlier(manifest_path, f)
            else:
                writer.writerow(MANIFEST_HEADER)
            for r in releases.values():
                name, _, line1, line2, city, state, postal_code, country = r["consignee"]
                head = (r["id"], day_text, policy_name, lane, name, line1, line2 or "", city,
                        state, postal_code, country)
                writer.writerows(
                    head + (order_id, sku, items[sku][0], qty, items[sku][1], items[sku][2],
                            currency, price, rate, value)
                    for order_id, _, sku, qty, currency, price, rate, value in r["lines"]
                )

        write_synced(log_path + ".tmp", write_log)
        write_synced(manifest_path + ".tmp", write_manifest)
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    con.close()
    os.replace(log_path + ".tmp", log_path)
    os.replace(manifest_path + ".tmp", manifest_path)
    directory = os.open(args.logdir, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)

    def tally(verdicts):
        counts = Counter(reason for _, reason, _ in verdicts)
        return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items()))

    total = sum((r["value"] for r in releases.values()), ZERO)
    print(
        f"batch for {day_text}: releases: {len(releases)} ({len(released)} orders, {total} USD); "
        f"held: {len(held)} ({tally(held)}); waiting: {len(waiting)} ({tally(waiting)}); "
        f"not yet due: {not_due}; {log_path}, {manifest_path}"
    )
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("intake", help="load the catalogue, the stock count and orders")
    p.add_argument("db")
    p.add_argument("orders")
    p.add_argument("items")
    p.add_argument("stock")
    p = commands.add_parser("batch", help="run the release batch for a day")
    p.add_argument("db")
    p.add_argument("day")
    p.add_argument("config")
    p.add_argument("logdir")
    args = parser.parse_args()
    os.umask(0o077)
    return intake(args) if args.command == "intake" else batch(args)


if __name__ == "__main__":
    sys.exit(main())
