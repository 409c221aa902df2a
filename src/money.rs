//! Money: dated exchange rates and the valuation of orders in US dollars.
//!
//! Pure. Amounts are `rust_decimal::Decimal`, never floats.
//!
//! **Rounding rule.** Each order line is valued exactly (`qty x unit_price x usd_per_unit`) and
//! then rounded to the cent, half away from zero (`0.005` becomes `0.01`). An order's value is the
//! sum of its rounded lines and a release's value the sum of its orders, so every total a broker
//! adds up from the manifest matches the release log to the cent. The daily limit is compared with
//! those sums.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::model::{FxUsed, Order};

/// The currency every value limit is written in.
pub const USD: &str = "USD";

/// Decimal places of a US dollar value.
pub const USD_SCALE: u32 = 2;

/// One configured rate: from `from` on, one unit of `currency` is worth `usd` US dollars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    pub currency: String,
    pub from: NaiveDate,
    pub usd: Decimal,
}

/// The configured rates, by currency, each list ordered by `from`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rates {
    by_currency: BTreeMap<String, Vec<Rate>>,
}

impl Rates {
    pub fn new(rates: Vec<Rate>) -> Rates {
        let mut by_currency: BTreeMap<String, Vec<Rate>> = BTreeMap::new();
        for rate in rates {
            by_currency
                .entry(rate.currency.clone())
                .or_default()
                .push(rate);
        }
        for list in by_currency.values_mut() {
            list.sort_by_key(|rate| rate.from);
        }
        Rates { by_currency }
    }

    /// The rate for `currency` on `day`: the latest one on or before it.
    /// US dollars need no rate: their conversion is exact and is not recorded.
    pub fn on(&self, currency: &str, day: NaiveDate) -> Option<Conversion> {
        if currency == USD {
            return Some(Conversion::Usd);
        }
        let rate = self
            .by_currency
            .get(currency)?
            .iter()
            .rev()
            .find(|rate| rate.from <= day)?;
        Some(Conversion::Rate(FxUsed {
            currency: rate.currency.clone(),
            usd: rate.usd,
            from: rate.from,
        }))
    }
}

/// How an amount becomes US dollars on a given day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conversion {
    Usd,
    Rate(FxUsed),
}

impl Conversion {
    fn usd_per_unit(&self) -> Decimal {
        match self {
            Conversion::Usd => Decimal::ONE,
            Conversion::Rate(rate) => rate.usd,
        }
    }

    /// The rate to record in a release, if any.
    pub fn fx(&self) -> Option<&FxUsed> {
        match self {
            Conversion::Usd => None,
            Conversion::Rate(rate) => Some(rate),
        }
    }
}

/// The value of one line in US dollars, rounded to the cent as the module doc says.
/// `None` only if the arithmetic overflows, which intake bounds make impossible.
pub fn line_value_usd(qty: u32, unit_price: Decimal, conversion: &Conversion) -> Option<Decimal> {
    let exact = Decimal::from(qty)
        .checked_mul(unit_price)?
        .checked_mul(conversion.usd_per_unit())?;
    Some(round_usd(exact))
}

/// Rounds a US dollar amount to the cent, half away from zero.
pub fn round_usd(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(USD_SCALE, RoundingStrategy::MidpointAwayFromZero)
}

/// An order's value in US dollars: the sum of its lines' values, each rounded to the cent
/// ([`line_value_usd`]). `None` only on arithmetic overflow.
pub fn value_order(order: &Order, conversion: &Conversion) -> Option<Decimal> {
    order.lines.iter().try_fold(Decimal::ZERO, |total, line| {
        total.checked_add(line_value_usd(line.qty, line.unit_price, conversion)?)
    })
}

/// A decimal written as `Display` writes it (no exponent, the stored scale kept: `19.90`), into a
/// buffer on the stack: release logs and manifests write millions of amounts.
pub struct DecimalText {
    bytes: [u8; 64],
    len: usize,
}

impl DecimalText {
    /// A US dollar amount: as [`DecimalText::new`], with at least two decimal places (`0.00`,
    /// `20.00`, `19.99`), as every amount in US dollars is written for people and programs.
    pub fn usd(value: Decimal) -> DecimalText {
        let mut value = value;
        if value.scale() < USD_SCALE {
            value.rescale(USD_SCALE);
        }
        DecimalText::new(value)
    }

    pub fn new(value: Decimal) -> DecimalText {
        let mut digits = [0u8; 40];
        let mut count = 0;
        let mut magnitude = value.mantissa().unsigned_abs();
        loop {
            digits[count] = b'0' + (magnitude % 10) as u8;
            count += 1;
            magnitude /= 10;
            if magnitude == 0 {
                break;
            }
        }
        let scale = value.scale() as usize;
        // At least one digit before the point.
        while count <= scale {
            digits[count] = b'0';
            count += 1;
        }
        let mut text = DecimalText {
            bytes: [0; 64],
            len: 0,
        };
        if value.is_sign_negative() && !value.is_zero() {
            text.push(b'-');
        }
        for at in (0..count).rev() {
            text.push(digits[at]);
            if at == scale && scale > 0 {
                text.push(b'.');
            }
        }
        text
    }

    fn push(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).expect("digits, a sign and a point are ASCII")
    }
}

impl std::fmt::Display for DecimalText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A US dollar amount as people read it: at least two decimal places (`0.00`, `800.00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usd(pub Decimal);

impl std::fmt::Display for Usd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        DecimalText::usd(self.0).fmt(f)
    }
}

/// Serde for a US dollar amount: written as a string with at least two decimal places
/// (`"0.00"`), read from any decimal string. For `#[serde(with = "crate::money::usd_text")]`.
pub mod usd_text {
    use rust_decimal::Decimal;

    pub fn serialize<S: serde::Serializer>(
        value: &Decimal,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(super::DecimalText::usd(*value).as_str())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Decimal, D::Error> {
        rust_decimal::serde::str::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::from_str(text).unwrap()
    }

    fn mxn(usd: &str) -> Conversion {
        Conversion::Rate(FxUsed {
            currency: "MXN".into(),
            usd: dec(usd),
            from: day("2026-10-01"),
        })
    }

    #[test]
    fn lines_round_to_the_cent_half_away_from_zero() {
        let cases = [
            (2, "19.99", Conversion::Usd, "39.98"),
            (1, "0.005", Conversion::Usd, "0.01"),
            (1, "0.004999", Conversion::Usd, "0.00"),
            (3, "0.335", Conversion::Usd, "1.01"),
            (1, "100", mxn("0.0541"), "5.41"),
            (1, "9.25", mxn("0.0541"), "0.50"),
            (1, "9.24", mxn("0.0541"), "0.50"),
            (1, "9.2421", mxn("0.0541"), "0.50"),
            (7, "123.45", mxn("0.0541"), "46.75"),
            (1, "0", mxn("0.0541"), "0.00"),
        ];
        for (qty, price, conversion, expected) in cases {
            assert_eq!(
                line_value_usd(qty, dec(price), &conversion),
                Some(dec(expected)),
                "{qty} x {price} at {conversion:?}"
            );
        }
    }

    #[test]
    fn decimal_text_reads_as_display_does() {
        for text in [
            "0",
            "0.00",
            "-0.5",
            "19.99",
            "19.90",
            "800",
            "0.0541",
            "123456789.123456",
            "0.0000000000000000000000000001",
            "-79228162514264337593543950335",
            "79228162514264337593543950335",
            "7.9228162514264337593543950335",
            "-1.000",
        ] {
            let value = dec(text);
            assert_eq!(
                DecimalText::new(value).as_str(),
                value.to_string(),
                "{text}"
            );
        }
    }

    #[test]
    fn us_dollars_have_at_least_two_decimal_places() {
        for (value, text) in [
            ("0", "0.00"),
            ("-0", "0.00"),
            ("20", "20.00"),
            ("19.9", "19.90"),
            ("19.99", "19.99"),
            ("0.005", "0.005"),
            ("-1.5", "-1.50"),
            ("2500", "2500.00"),
        ] {
            assert_eq!(DecimalText::usd(dec(value)).as_str(), text, "{value}");
            assert_eq!(Usd(dec(value)).to_string(), text, "{value}");
        }
        assert_eq!(format!("{:>8}", Usd(dec("5"))), "    5.00");
    }

    proptest::proptest! {
        #[test]
        fn decimal_text_matches_display(mantissa in proptest::num::i128::ANY, scale in 0u32..=28) {
            let mantissa = mantissa % 79_228_162_514_264_337_593_543_950_335_i128;
            let value = Decimal::from_i128_with_scale(mantissa, scale);
            let text = DecimalText::new(value);
            proptest::prop_assert_eq!(text.as_str(), value.to_string());
        }
    }

    #[test]
    fn the_latest_rate_on_or_before_the_day_applies() {
        let rates = Rates::new(vec![
            Rate {
                currency: "MXN".into(),
                from: day("2026-10-01"),
                usd: dec("0.0541"),
            },
            Rate {
                currency: "MXN".into(),
                from: day("2026-07-01"),
                usd: dec("0.0530"),
            },
            Rate {
                currency: "CAD".into(),
                from: day("2026-07-01"),
                usd: dec("0.72"),
            },
        ]);
        assert_eq!(rates.on("MXN", day("2026-06-30")), None);
        assert_eq!(
            rates.on("MXN", day("2026-07-01")),
            Some(mxn_at("0.0530", "2026-07-01"))
        );
        assert_eq!(
            rates.on("MXN", day("2026-09-30")),
            Some(mxn_at("0.0530", "2026-07-01"))
        );
        assert_eq!(
            rates.on("MXN", day("2026-10-01")),
            Some(mxn_at("0.0541", "2026-10-01"))
        );
        assert_eq!(rates.on("EUR", day("2026-10-01")), None);
        assert_eq!(rates.on("USD", day("1999-01-01")), Some(Conversion::Usd));
    }

    fn mxn_at(usd: &str, from: &str) -> Conversion {
        Conversion::Rate(FxUsed {
            currency: "MXN".into(),
            usd: dec(usd),
            from: day(from),
        })
    }

    #[test]
    fn an_order_is_the_sum_of_its_rounded_lines() {
        use crate::model::{Address, Consignee, OrderLine};
        let order = Order {
            order_id: "SO-1".into(),
            placed_at: "2026-11-23T10:00:00Z".parse().unwrap(),
            recipient: Consignee {
                name: "Ana Ruiz".into(),
                customer_id: None,
                address: Address {
                    line1: "1200 Market St".into(),
                    line2: None,
                    city: "San Diego".into(),
                    state: "CA".into(),
                    postal_code: "92101".into(),
                    country: "US".into(),
                },
            },
            currency: "USD".into(),
            lines: vec![
                OrderLine {
                    sku: "A".into(),
                    qty: 1,
                    unit_price: dec("0.005"),
                },
                OrderLine {
                    sku: "B".into(),
                    qty: 1,
                    unit_price: dec("0.005"),
                },
            ],
        };
        for line in &order.lines {
            assert_eq!(
                line_value_usd(line.qty, line.unit_price, &Conversion::Usd),
                Some(dec("0.01"))
            );
        }
        assert_eq!(value_order(&order, &Conversion::Usd), Some(dec("0.02")));
    }
}
