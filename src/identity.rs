//! One person: the recipient key, and the consignee checks intake applies.
//!
//! Pure. The key decides whose orders share a daily limit, so two spellings of one person at one
//! address must give one key: case, accents, punctuation, white space, common street words and
//! ZIP+4 are normalised away.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use crate::model::Consignee;

/// What makes two orders go to the same recipient (`recipients.identity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdentityRule {
    /// Normalised name and street address (the default).
    #[default]
    NameAndAddress,
    /// Normalised street address alone: everyone at one address is one recipient.
    Address,
    /// The integrator's `customer_id`, which every order must then carry.
    CustomerId,
}

impl IdentityRule {
    pub const ALL: [IdentityRule; 3] = [
        IdentityRule::NameAndAddress,
        IdentityRule::Address,
        IdentityRule::CustomerId,
    ];

    pub fn word(self) -> &'static str {
        match self {
            IdentityRule::NameAndAddress => "name-and-address",
            IdentityRule::Address => "address",
            IdentityRule::CustomerId => "customer-id",
        }
    }

    pub fn from_word(word: &str) -> Option<IdentityRule> {
        IdentityRule::ALL
            .into_iter()
            .find(|rule| rule.word() == word)
    }
}

/// The recipient key of a consignee under `rule`.
/// `None` when the rule is `customer-id` and the consignee has none (intake refuses such orders).
pub fn recipient_key(rule: IdentityRule, consignee: &Consignee) -> Option<String> {
    // Built in one buffer: the planner makes a key for every order it examines.
    let mut key = String::with_capacity(96);
    match rule {
        IdentityRule::NameAndAddress => {
            push_normalised(&mut key, &consignee.name);
            key.push('|');
            push_address(&mut key, consignee);
        }
        IdentityRule::Address => push_address(&mut key, consignee),
        IdentityRule::CustomerId => {
            let id = consignee.customer_id.as_deref()?.trim();
            if id.is_empty() {
                return None;
            }
            key.push_str("id:");
            key.push_str(&id.to_lowercase());
        }
    }
    Some(key)
}

fn push_address(key: &mut String, consignee: &Consignee) {
    let address = &consignee.address;
    let street_start = key.len();
    push_street(key, &address.line1);
    if let Some(line2) = address.line2.as_deref() {
        let before = key.len();
        let separated = before > street_start;
        if separated {
            key.push(' ');
        }
        push_street(key, line2);
        if separated && key.len() == before + 1 {
            // The second line held only unit words: drop the separator again.
            key.truncate(before);
        }
    }
    key.push('|');
    push_normalised(key, &address.city);
    key.push('|');
    key.push_str(&address.state.trim().to_ascii_uppercase());
    key.push('|');
    key.push_str(zip5(&address.postal_code).unwrap_or(address.postal_code.trim()));
}

/// Lower case, accents removed, punctuation turned into space, white space collapsed.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_normalised(&mut out, text);
    out
}

/// Appends `text` normalised to `out`.
fn push_normalised(out: &mut String, text: &str) {
    if text.is_ascii() {
        // Nothing to decompose: the common case, and much the faster one.
        fold(out, text.chars());
    } else {
        fold(out, text.nfkd().filter(|c| !is_combining_mark(*c)));
    }
}

fn fold(out: &mut String, chars: impl Iterator<Item = char>) {
    let start = out.len();
    let mut pending_space = false;
    for c in chars {
        if c.is_alphanumeric() {
            if pending_space && out.len() > start {
                out.push(' ');
            }
            pending_space = false;
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else {
                out.extend(c.to_lowercase());
            }
        } else if c == '\'' || c == '\u{2019}' {
            // O'Brien and OBrien are one name.
        } else {
            pending_space = true;
        }
    }
}

/// Appends a street line normalised, with USPS street suffixes and directions abbreviated and unit
/// designators (`Apt`, `Suite`, `#`) dropped, so `Apt 4` and `#4` agree.
fn push_street(out: &mut String, text: &str) {
    let normalised = normalise(text);
    let mut first = true;
    for word in normalised.split(' ') {
        if word.is_empty() || is_unit_designator(word) {
            continue;
        }
        let word = street_abbreviation(word).unwrap_or(word);
        if !first {
            out.push(' ');
        }
        out.push_str(word);
        first = false;
    }
}

fn is_unit_designator(word: &str) -> bool {
    matches!(word, "apt" | "apartment" | "unit" | "suite" | "ste" | "no")
}

/// The USPS abbreviation of a street suffix or direction.
fn street_abbreviation(word: &str) -> Option<&'static str> {
    Some(match word {
        "street" => "st",
        "avenue" | "av" => "ave",
        "boulevard" => "blvd",
        "road" => "rd",
        "drive" => "dr",
        "lane" => "ln",
        "court" => "ct",
        "place" => "pl",
        "terrace" => "ter",
        "circle" => "cir",
        "highway" => "hwy",
        "parkway" => "pkwy",
        "square" => "sq",
        "trail" => "trl",
        "north" => "n",
        "south" => "s",
        "east" => "e",
        "west" => "w",
        "northeast" => "ne",
        "northwest" => "nw",
        "southeast" => "se",
        "southwest" => "sw",
        _ => return None,
    })
}

/// The five-digit ZIP of `12345`, `12345-6789` or `123456789`; `None` if it is none of those.
pub fn zip5(postal_code: &str) -> Option<&str> {
    let code = postal_code.trim();
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let ok = match code.len() {
        5 | 9 => digits(code),
        10 => digits(&code[..5]) && code.as_bytes()[5] == b'-' && digits(&code[6..]),
        _ => false,
    };
    ok.then(|| &code[..5])
}

/// Names that stand for no one: CBP rejects them as consignees.
pub fn is_placeholder_name(name: &str) -> bool {
    let name = normalise(name);
    name.is_empty()
        || name.chars().all(|c| !c.is_alphabetic())
        || PLACEHOLDER_NAMES.contains(&name.as_str())
}

const PLACEHOLDER_NAMES: [&str; 20] = [
    "na",
    "n a",
    "none",
    "null",
    "nil",
    "unknown",
    "customer",
    "consignee",
    "recipient",
    "test",
    "tbd",
    "tba",
    "name",
    "x",
    "xx",
    "xxx",
    "buyer",
    "client",
    "sample",
    "no name",
];

/// USPS codes of the states, the District of Columbia and the inhabited territories.
pub fn is_us_state(code: &str) -> bool {
    US_STATES.binary_search(&code).is_ok()
}

const US_STATES: [&str; 56] = [
    "AK", "AL", "AR", "AS", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "GU", "HI", "IA", "ID",
    "IL", "IN", "KS", "KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MP", "MS", "MT", "NC", "ND",
    "NE", "NH", "NJ", "NM", "NV", "NY", "OH", "OK", "OR", "PA", "PR", "RI", "SC", "SD", "TN", "TX",
    "UT", "VA", "VI", "VT", "WA", "WI", "WV", "WY",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Address;

    fn consignee(name: &str, line1: &str, line2: Option<&str>, zip: &str) -> Consignee {
        Consignee {
            name: name.into(),
            customer_id: Some("C-77".into()),
            address: Address {
                line1: line1.into(),
                line2: line2.map(Into::into),
                city: "San Diego".into(),
                state: "CA".into(),
                postal_code: zip.into(),
                country: "US".into(),
            },
        }
    }

    #[test]
    fn the_state_list_is_sorted_for_binary_search() {
        let mut sorted = US_STATES;
        sorted.sort_unstable();
        assert_eq!(sorted, US_STATES);
    }

    #[test]
    fn normalise_folds_case_accents_punctuation_and_space() {
        assert_eq!(
            normalise("  José  María   RUÍZ-Peña "),
            "jose maria ruiz pena"
        );
        assert_eq!(normalise("O'Brien, Jr."), "obrien jr");
        assert_eq!(normalise("Ａｎａ"), "ana");
        assert_eq!(normalise("..."), "");
    }

    #[test]
    fn two_spellings_of_one_person_are_one_recipient() {
        let a = consignee(
            "Ana Ruíz",
            "1200 Market Street",
            Some("Apt. 4"),
            "92101-1234",
        );
        let b = consignee("ANA  RUIZ", "1200 market st", Some("#4"), "92101");
        let rule = IdentityRule::NameAndAddress;
        assert_eq!(recipient_key(rule, &a), recipient_key(rule, &b));
    }

    #[test]
    fn different_people_or_places_are_different_recipients() {
        let rule = IdentityRule::NameAndAddress;
        let ana = consignee("Ana Ruiz", "1200 Market St", Some("Apt 4"), "92101");
        let luis = consignee("Luis Ruiz", "1200 Market St", Some("Apt 4"), "92101");
        let other_flat = consignee("Ana Ruiz", "1200 Market St", Some("Apt 5"), "92101");
        let other_zip = consignee("Ana Ruiz", "1200 Market St", Some("Apt 4"), "92102");
        assert_ne!(recipient_key(rule, &ana), recipient_key(rule, &luis));
        assert_ne!(recipient_key(rule, &ana), recipient_key(rule, &other_flat));
        assert_ne!(recipient_key(rule, &ana), recipient_key(rule, &other_zip));
        assert_eq!(
            recipient_key(IdentityRule::Address, &ana),
            recipient_key(IdentityRule::Address, &luis)
        );
    }

    #[test]
    fn a_second_line_of_unit_words_alone_adds_nothing() {
        let rule = IdentityRule::NameAndAddress;
        let plain = consignee("Ana Ruiz", "1200 Market St", None, "92101");
        let unit_word = consignee("Ana Ruiz", "1200 Market St", Some("Apt."), "92101");
        assert_eq!(recipient_key(rule, &plain), recipient_key(rule, &unit_word));
        let only_unit = consignee("Ana Ruiz", "Suite", Some("4"), "92101");
        assert_eq!(
            recipient_key(rule, &only_unit).as_deref(),
            Some("ana ruiz|4|san diego|CA|92101")
        );
        assert_eq!(
            recipient_key(
                rule,
                &consignee("Ana Ruiz", "1200 Market Street", Some("Apt 4"), "92101")
            )
            .as_deref(),
            Some("ana ruiz|1200 market st 4|san diego|CA|92101")
        );
    }

    #[test]
    fn customer_id_rule_needs_an_id() {
        let mut ana = consignee("Ana Ruiz", "1200 Market St", None, "92101");
        assert_eq!(
            recipient_key(IdentityRule::CustomerId, &ana).as_deref(),
            Some("id:c-77")
        );
        ana.customer_id = Some("  ".into());
        assert_eq!(recipient_key(IdentityRule::CustomerId, &ana), None);
        ana.customer_id = None;
        assert_eq!(recipient_key(IdentityRule::CustomerId, &ana), None);
    }

    #[test]
    fn zip_plus_four_reduces_to_zip() {
        assert_eq!(zip5("92101"), Some("92101"));
        assert_eq!(zip5("92101-1234"), Some("92101"));
        assert_eq!(zip5("921011234"), Some("92101"));
        assert_eq!(zip5("9210"), None);
        assert_eq!(zip5("92101-12"), None);
        assert_eq!(zip5("ABCDE"), None);
        assert_eq!(zip5("92101 1234"), None);
    }

    #[test]
    fn placeholder_names_are_recognised() {
        for name in [
            "", "  ", "N/A", "n.a.", "NA", "Customer", "TEST", "-", "???", "12345", "Unknown",
        ] {
            assert!(is_placeholder_name(name), "{name:?}");
        }
        for name in ["Ana Ruiz", "Na Li", "Test Kitchen LLC", "X Æ A-12 Musk"] {
            assert!(!is_placeholder_name(name), "{name:?}");
        }
    }

    #[test]
    fn states_are_usps_codes() {
        assert!(is_us_state("CA"));
        assert!(is_us_state("DC"));
        assert!(is_us_state("PR"));
        assert!(!is_us_state("ca"));
        assert!(!is_us_state("XX"));
        assert!(!is_us_state("BC"));
        assert!(!is_us_state("JAL"));
    }
}
