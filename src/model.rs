//! The warehouse's nouns: items, stock levels, orders, their states, and releases.
//!
//! Plain data with no behaviour that touches the outside world. The store encodes these
//! (with a format version) and the planner reads them; wire formats for people and
//! integrators (order JSON, release log, manifest) are built from them in `intake` and
//! `releaselog`.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The text of an order's fields: strings of up to 24 bytes (ids, names, most address lines,
/// codes) are kept in place rather than on the heap. A batch decodes a million orders of a dozen
/// such fields each, and copies many of them into its releases; as `String`s they cost a dozen
/// allocations an order and hundreds of megabytes of memory.
pub type Text = compact_str::CompactString;

/// An item flag that a policy may exclude from its lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ItemFlag {
    /// Subject to antidumping or countervailing duties.
    Adcvd,
    /// Subject to a quota or tariff-rate quota.
    Quota,
    /// Needs partner-agency (FDA, CPSC, NHTSA, ...) data that a manifest release cannot carry.
    Pga,
    /// Taxed under the Internal Revenue Code (alcohol, tobacco).
    IrcTax,
}

impl ItemFlag {
    pub const ALL: [ItemFlag; 4] = [
        ItemFlag::Adcvd,
        ItemFlag::Quota,
        ItemFlag::Pga,
        ItemFlag::IrcTax,
    ];

    /// The word used in CSV files, config and logs.
    pub fn word(self) -> &'static str {
        match self {
            ItemFlag::Adcvd => "adcvd",
            ItemFlag::Quota => "quota",
            ItemFlag::Pga => "pga",
            ItemFlag::IrcTax => "irc-tax",
        }
    }

    pub fn from_word(word: &str) -> Option<ItemFlag> {
        ItemFlag::ALL.into_iter().find(|flag| flag.word() == word)
    }
}

impl fmt::Display for ItemFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// One entry of the item catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub sku: String,
    pub description: String,
    /// HTS code as written by the operator, for example `6109.10.0012`.
    pub hts: String,
    /// ISO 3166 alpha-2 country of origin, upper case.
    pub origin: String,
    pub flags: Vec<ItemFlag>,
    /// The manufacturer identification code (MID): the country code, then 1 to 13 letters and
    /// digits, upper case, at most 15 characters in all; `None` when the catalogue gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    /// The goods originate under USMCA and the operator keeps the evidence.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub usmca: bool,
}

/// Stock of one SKU. On hand is derived, so the identity
/// `received - released - adjusted = on_hand` holds by construction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    pub received: u64,
    pub released: u64,
    /// Units removed by counts (negative when a count found more than expected).
    pub adjusted: i64,
}

impl StockLevel {
    /// Units on hand. Never negative while the store invariants hold.
    pub fn on_hand(&self) -> i128 {
        i128::from(self.received) - i128::from(self.released) - i128::from(self.adjusted)
    }
}

/// A US postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub line1: Text,
    pub line2: Option<Text>,
    pub city: Text,
    /// USPS two-letter state code, upper case.
    pub state: Text,
    pub postal_code: Text,
    pub country: Text,
}

/// The person an order ships to, as the integrator sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consignee {
    pub name: Text,
    pub customer_id: Option<Text>,
    pub address: Address,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: Text,
    pub qty: u32,
    /// Price of one unit in the order's currency.
    #[serde(with = "amount")]
    pub unit_price: Decimal,
}

/// An accepted order, as taken in. Immutable once stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: Text,
    #[serde(with = "chrono::serde::ts_nanoseconds")]
    pub placed_at: DateTime<Utc>,
    pub recipient: Consignee,
    /// ISO 4217 code, upper case.
    pub currency: Text,
    pub lines: Vec<OrderLine>,
}

/// Why a pending order did not ship at the last batch that examined it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WaitReason {
    /// The recipient's releases or value for the day were used up.
    DailyLimit,
    /// A line was not in stock.
    Stock,
    /// Placed at or after the cutoff of the day the last batch ran for: not examined that day.
    NotDue,
}

/// Why an order is held: it cannot ship under the policy in force until something changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HoldReason {
    /// The order's own value exceeds the policy's limit: it needs another kind of entry.
    OverLimit,
    ExcludedOrigin,
    /// An HTS prefix excluded by the policy.
    ExcludedGoods,
    ExcludedFlag,
    /// An item lacks what a filing under the policy requires (HTS digits, a MID, a specific
    /// description).
    IncompleteItem,
    /// No exchange rate for the order's currency on the release day.
    NoRate,
}

impl WaitReason {
    pub const ALL: [WaitReason; 3] = [
        WaitReason::DailyLimit,
        WaitReason::Stock,
        WaitReason::NotDue,
    ];

    pub fn word(self) -> &'static str {
        match self {
            WaitReason::DailyLimit => "daily-limit",
            WaitReason::Stock => "stock",
            WaitReason::NotDue => "not-due",
        }
    }
}

impl HoldReason {
    pub const ALL: [HoldReason; 6] = [
        HoldReason::OverLimit,
        HoldReason::ExcludedOrigin,
        HoldReason::ExcludedGoods,
        HoldReason::ExcludedFlag,
        HoldReason::IncompleteItem,
        HoldReason::NoRate,
    ];

    pub fn word(self) -> &'static str {
        match self {
            HoldReason::OverLimit => "over-limit",
            HoldReason::ExcludedOrigin => "excluded-origin",
            HoldReason::ExcludedGoods => "excluded-goods",
            HoldReason::ExcludedFlag => "excluded-flag",
            HoldReason::IncompleteItem => "incomplete-item",
            HoldReason::NoRate => "no-rate",
        }
    }
}

/// The figures behind a verdict: what decided it, for the operator (`orders show`, and `plan`,
/// `batch` and `orders list` in a few words). An order placed after the cutoff has none: its
/// figures are the batch's day and cutoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Detail {
    /// The lines that were short when the order's turn came.
    Stock {
        short: Vec<Shortfall>,
    },
    /// What the recipient had already used of the day when the order's turn came.
    DailyLimit {
        releases_used: u32,
        #[serde(with = "amount")]
        value_used_usd: Decimal,
        #[serde(with = "amount")]
        order_value_usd: Decimal,
        releases_per_recipient_per_day: u32,
        #[serde(with = "amount")]
        value_limit_usd: Decimal,
    },
    /// The first line whose item the policy excludes, and the rule that excludes it.
    Excluded {
        sku: Text,
        rule: Exclusion,
        policy: Text,
    },
    /// The order's own value; `None` when it is too large to compute.
    OverLimit {
        #[serde(with = "amount_option")]
        value_usd: Option<Decimal>,
        #[serde(with = "amount")]
        value_limit_usd: Decimal,
    },
    NoRate {
        currency: Text,
        day: NaiveDate,
    },
    /// Placed at or after the cutoff of the day the last batch ran for.
    NotDue {
        day: NaiveDate,
        cutoff: DateTime<Utc>,
    },
    // Stored details name variants by their place: new ones go last.
    /// The first line whose item lacks what the policy requires of a filing, and what it lacks.
    IncompleteItem {
        sku: Text,
        missing: Vec<Missing>,
        policy: Text,
    },
}

/// What an item lacks for a filing under a policy (`incomplete-item`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Missing {
    /// Its HTS code has fewer digits than the policy requires.
    HtsDigits { digits: u8, required: u8 },
    /// It has no manufacturer identification code, which the policy requires.
    Mid,
    /// Its description is one the policy refuses as vague.
    Description,
}

impl Missing {
    /// The word for it in `detail`: `hts-digits`, `mid`, `description`.
    pub fn word(self) -> &'static str {
        match self {
            Missing::HtsDigits { .. } => "hts-digits",
            Missing::Mid => "mid",
            Missing::Description => "description",
        }
    }
}

/// One SKU an order needed more of than was on hand at its turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortfall {
    pub sku: Text,
    pub needed: u64,
    pub on_hand: u64,
}

/// The rule of a policy that keeps an item out of its lane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Exclusion {
    /// The item's origin is excluded.
    Origin(String),
    /// The item's HTS code starts with this excluded prefix (digits).
    HtsPrefix(String),
    Flag(ItemFlag),
}

impl Exclusion {
    pub fn reason(&self) -> HoldReason {
        match self {
            Exclusion::Origin(_) => HoldReason::ExcludedOrigin,
            Exclusion::HtsPrefix(_) => HoldReason::ExcludedGoods,
            Exclusion::Flag(_) => HoldReason::ExcludedFlag,
        }
    }
}

/// What the last batch that examined an open order decided about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Waiting(WaitReason),
    Held(HoldReason),
}

/// Where an order is in its life. Every accepted order is in exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderState {
    /// Waiting to ship; the reason is the one the last batch gave, if one examined it.
    Pending(Option<WaitReason>),
    Held(HoldReason),
    Released {
        release_id: String,
        day: NaiveDate,
    },
    Cancelled,
    /// Taken out of the daily plan for good (`orders refer`) on `day`, for the broker to enter
    /// formally; it keeps the reason it was held for.
    Referred {
        reason: HoldReason,
        day: NaiveDate,
    },
}

impl OrderState {
    pub fn word(&self) -> &'static str {
        match self {
            OrderState::Pending(_) => "pending",
            OrderState::Held(_) => "held",
            OrderState::Released { .. } => "released",
            OrderState::Cancelled => "cancelled",
            OrderState::Referred { .. } => "referred",
        }
    }

    pub fn reason_word(&self) -> Option<&'static str> {
        match self {
            OrderState::Pending(reason) => reason.map(WaitReason::word),
            OrderState::Held(reason) | OrderState::Referred { reason, .. } => Some(reason.word()),
            OrderState::Released { .. } | OrderState::Cancelled => None,
        }
    }
}

/// A rate used to value a release, as recorded in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FxUsed {
    pub currency: String,
    /// US dollars per one unit of the currency.
    #[serde(with = "amount")]
    pub usd: Decimal,
    /// The first day the rate applies (from the config).
    pub from: NaiveDate,
}

/// What a release line records about its item: the catalogue's facts when the line ships, kept
/// with the release so that later catalogue changes do not alter it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFacts {
    pub sku: String,
    pub description: String,
    pub hts: String,
    pub origin: String,
}

/// One shipped order line, valued in US dollars, with the item facts at release time.
///
/// The facts and the currency are shared between the lines of one SKU or currency: a batch makes
/// millions of lines. Stored and serialised as the flat record of [`FlatReleaseLine`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseLine {
    pub order_id: Text,
    pub item: Arc<ItemFacts>,
    pub qty: u32,
    pub currency: Arc<str>,
    pub unit_price: Decimal,
    pub value_usd: Decimal,
}

/// A release line as stored by format version 1 and serialised: its fields one after another.
#[derive(Serialize)]
struct FlatReleaseLine<'a> {
    order_id: &'a str,
    sku: &'a str,
    qty: u32,
    description: &'a str,
    hts: &'a str,
    origin: &'a str,
    currency: &'a str,
    #[serde(with = "amount")]
    unit_price: Decimal,
    #[serde(with = "amount")]
    value_usd: Decimal,
}

/// [`FlatReleaseLine`] read back.
#[derive(Deserialize)]
struct OwnedReleaseLine {
    order_id: Text,
    sku: String,
    qty: u32,
    description: String,
    hts: String,
    origin: String,
    currency: String,
    #[serde(with = "amount")]
    unit_price: Decimal,
    #[serde(with = "amount")]
    value_usd: Decimal,
}

impl Serialize for ReleaseLine {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        FlatReleaseLine {
            order_id: &self.order_id,
            sku: &self.item.sku,
            qty: self.qty,
            description: &self.item.description,
            hts: &self.item.hts,
            origin: &self.item.origin,
            currency: &self.currency,
            unit_price: self.unit_price,
            value_usd: self.value_usd,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ReleaseLine {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ReleaseLine, D::Error> {
        let line = OwnedReleaseLine::deserialize(deserializer)?;
        Ok(ReleaseLine {
            order_id: line.order_id,
            item: Arc::new(ItemFacts {
                sku: line.sku,
                description: line.description,
                hts: line.hts,
                origin: line.origin,
            }),
            qty: line.qty,
            currency: Arc::from(line.currency),
            unit_price: line.unit_price,
            value_usd: line.value_usd,
        })
    }
}

/// One consolidated shipment to one recipient on one day, as planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub release_id: Text,
    pub day: NaiveDate,
    pub policy: Text,
    pub lane: Text,
    pub recipient_key: String,
    /// Name and address of the release's oldest order.
    pub consignee: Consignee,
    pub orders: Vec<Text>,
    pub lines: Vec<ReleaseLine>,
    #[serde(with = "amount")]
    pub value_usd: Decimal,
    pub fx: Vec<FxUsed>,
    #[serde(with = "chrono::serde::ts_nanoseconds")]
    pub released_at: DateTime<Utc>,
    /// What the release is filed with, shared by its wave; `None` for a release committed
    /// before releases recorded it. Stored beside the releases, not in them.
    #[serde(skip)]
    pub filed: Option<Arc<Filed>>,
    /// What the release's duties and fees are estimated from, shared by its wave; `None` for a
    /// release committed before releases recorded it. Stored beside the releases, not in them.
    #[serde(skip)]
    pub assessed: Option<Arc<Assessed>>,
}

/// What the releases of a wave are filed with: the entry type of the policy they were made
/// under, the parties of `[entry]`, and the MID and USMCA claim of each item they hold, as they
/// were when the wave was committed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Filed {
    pub entry_type: String,
    pub importer: Option<Importer>,
    pub shipper: Option<Shipper>,
    /// By SKU; an item with neither a MID nor a USMCA claim is left out.
    pub items: Vec<FiledItem>,
    /// The place of each SKU in `items`, made at the first lookup.
    #[serde(skip)]
    index: std::sync::OnceLock<FastMap<String, usize>>,
}

impl PartialEq for Filed {
    fn eq(&self, other: &Filed) -> bool {
        (&self.entry_type, &self.importer, &self.shipper, &self.items)
            == (
                &other.entry_type,
                &other.importer,
                &other.shipper,
                &other.items,
            )
    }
}

impl Eq for Filed {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Importer {
    pub name: String,
    pub number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipper {
    pub name: String,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiledItem {
    pub sku: String,
    pub mid: Option<String>,
    pub usmca: bool,
}

impl Filed {
    pub fn new(
        entry_type: String,
        importer: Option<Importer>,
        shipper: Option<Shipper>,
        items: Vec<FiledItem>,
    ) -> Filed {
        Filed {
            entry_type,
            importer,
            shipper,
            items,
            index: std::sync::OnceLock::new(),
        }
    }

    /// The MID and USMCA claim of a SKU.
    pub fn item(&self, sku: &str) -> (Option<&str>, bool) {
        match sku_place(&self.index, &self.items, |item| &item.sku).get(sku) {
            Some(place) => (self.items[*place].mid.as_deref(), self.items[*place].usmca),
            None => (None, false),
        }
    }
}

/// The place of each SKU in `items`, made once in `index`.
fn sku_place<'a, T>(
    index: &'a std::sync::OnceLock<FastMap<String, usize>>,
    items: &[T],
    sku: impl Fn(&T) -> &String,
) -> &'a FastMap<String, usize> {
    index.get_or_init(|| {
        items
            .iter()
            .enumerate()
            .map(|(place, item)| (sku(item).clone(), place))
            .collect()
    })
}

/// One row of the operator's duty tables (`duties import`): an ad valorem rate of one program
/// for goods whose HTS code starts with `hts_prefix`, of one origin (or `*`, every origin), from
/// a release day on. A row of rate 0 ends its program from its day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DutyRate {
    /// Digits only, 2 to 10.
    pub hts_prefix: String,
    /// An ISO 3166 alpha-2 code, upper case, or `*`.
    pub origin: String,
    /// `mfn`, `section-301`, ...: 1 to 32 lower-case letters, digits and `-`.
    pub program: String,
    #[serde(with = "amount")]
    pub rate_percent: Decimal,
    /// The first release day the row applies to.
    pub from: NaiveDate,
    /// Goods that claim USMCA are spared it.
    pub usmca_exempt: bool,
    /// Where the rate comes from, as the operator wrote it; may be empty.
    pub source: String,
}

/// What the duties and fees of a wave's releases are estimated from: the rates that applied to
/// each item they hold and the fees of their lane, as they were when the wave was committed, so
/// that the estimate of a release never changes once it is made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assessed {
    /// By SKU.
    pub items: Vec<AssessedItem>,
    /// The fees each release of the wave owes, in the order of the config.
    pub fees: Vec<Fee>,
    /// The place of each SKU in `items`, made at the first lookup: the files of a day look up
    /// every line's item.
    #[serde(skip)]
    index: std::sync::OnceLock<FastMap<String, usize>>,
}

impl PartialEq for Assessed {
    fn eq(&self, other: &Assessed) -> bool {
        self.items == other.items && self.fees == other.fees
    }
}

impl Eq for Assessed {}

/// The rates that apply to one item on the day of its wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssessedItem {
    pub sku: String,
    /// The item claims USMCA origin.
    pub usmca: bool,
    /// An `mfn` row applies to it; without one its duty is unknown.
    pub known: bool,
    /// Each program that applies, by name.
    pub rates: Vec<ProgramRate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramRate {
    pub program: String,
    #[serde(with = "amount")]
    pub rate_percent: Decimal,
}

/// A fee a release owes (`[[fees]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fee {
    pub name: String,
    #[serde(with = "amount")]
    pub usd: Decimal,
    /// A release whose every line claims USMCA owes none.
    pub usmca_exempt: bool,
}

impl Assessed {
    pub fn new(items: Vec<AssessedItem>, fees: Vec<Fee>) -> Assessed {
        Assessed {
            items,
            fees,
            index: std::sync::OnceLock::new(),
        }
    }

    /// What applies to a SKU; `None` for a SKU the wave did not hold.
    pub fn item(&self, sku: &str) -> Option<&AssessedItem> {
        sku_place(&self.index, &self.items, |item| &item.sku)
            .get(sku)
            .map(|place| &self.items[*place])
    }
}

/// A hash map for many small lookups: FNV-1a instead of SipHash, since its keys come from the
/// warehouse's own store, not from an adversary choosing collisions.
pub type FastMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

/// The 64-bit FNV-1a hash, for [`FastMap`].
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A release that did not cross (the truck did not leave, the broker could not file it), undone
/// by `releases void`: its orders went back to pending, its stock back on hand, and its
/// recipient's allowance for its day was restored. Kept for good, like the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Void {
    pub release_id: Text,
    pub day: NaiveDate,
    pub reason: String,
    pub voided_at: DateTime<Utc>,
}

/// A held order taken out of the daily plan for good (`orders refer`), for the broker to enter
/// formally: what the day's referral files give, kept for good as it was on the day, so that the
/// files can always be written again from the store. Its units left the stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    pub order_id: Text,
    /// The warehouse's day of the referral.
    pub day: NaiveDate,
    /// Why the order was held.
    pub reason: HoldReason,
    /// The operator's note for the broker; empty when none was given.
    pub note: String,
    pub referred_at: DateTime<Utc>,
    pub consignee: Consignee,
    pub currency: Text,
    pub lines: Vec<ReferralLine>,
    #[serde(with = "amount")]
    pub value_usd: Decimal,
    /// The rate the lines were valued at; `None` for an order in dollars.
    pub fx: Option<FxUsed>,
}

/// One line of a referred order, with the catalogue's facts of its item on the day and its
/// value in US dollars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralLine {
    pub sku: Text,
    pub qty: u32,
    pub description: String,
    pub hts: String,
    pub origin: String,
    #[serde(with = "amount")]
    pub unit_price: Decimal,
    #[serde(with = "amount")]
    pub value_usd: Decimal,
}

/// The release id for the `seq`th release (from 1) of `day`: `2026-11-24-000001`.
pub fn release_id(day: NaiveDate, seq: u32) -> Text {
    compact_str::format_compact!("{}-{:06}", day.format("%Y-%m-%d"), seq)
}

/// How amounts are serialised: as decimal strings in text formats (`"19.99"`, never a float),
/// and as their scale and mantissa in binary ones (a few bytes with variable-length integers),
/// which encode and decode without formatting or parsing text.
pub(crate) mod amount {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            rust_decimal::serde::str::serialize(value, serializer)
        } else {
            (value.scale() as u8, value.mantissa()).serialize(serializer)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        if deserializer.is_human_readable() {
            rust_decimal::serde::str::deserialize(deserializer)
        } else {
            let (scale, mantissa): (u8, i128) = Deserialize::deserialize(deserializer)?;
            Decimal::try_from_i128_with_scale(mantissa, u32::from(scale))
                .map_err(serde::de::Error::custom)
        }
    }
}

/// [`amount`] for an amount that may be missing.
pub(crate) mod amount_option {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Amount(#[serde(with = "super::amount")] Decimal);

    pub fn serialize<S: Serializer>(
        value: &Option<Decimal>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.map(Amount).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Decimal>, D::Error> {
        Ok(Option::<Amount>::deserialize(deserializer)?.map(|Amount(value)| value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn amounts_are_strings_in_json_and_never_floats() {
        let line = OrderLine {
            sku: "A".into(),
            qty: 2,
            unit_price: Decimal::from_str("19.90").unwrap(),
        };
        let json = serde_json::to_string(&line).unwrap();
        assert_eq!(json, r#"{"sku":"A","qty":2,"unit_price":"19.90"}"#);
        assert_eq!(serde_json::from_str::<OrderLine>(&json).unwrap(), line);
        assert!(
            serde_json::from_str::<OrderLine>(r#"{"sku":"A","qty":2,"unit_price":19.9}"#).is_err()
        );
    }
}
