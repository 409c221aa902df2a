//! Counted nouns in the text people read: `1 order`, `2 orders`, `0 releases`.
//! Pure; it knows English plurals of the nouns the product counts, which all take an `s`.

use std::fmt;

/// `count` and its noun, singular for one and plural otherwise: `counted(1, "order")` reads
/// `1 order`, `counted(2, "order")` reads `2 orders`.
pub fn counted(count: u64, noun: &'static str) -> Counted {
    Counted { count, noun }
}

/// A count and its noun, written as [`counted`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    count: u64,
    noun: &'static str,
}

impl fmt::Display for Counted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.count == 1 { "" } else { "s" };
        write!(f, "{} {}{plural}", self.count, self.noun)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(counted(0, "order").to_string(), "0 orders");
        assert_eq!(counted(1, "order").to_string(), "1 order");
        assert_eq!(counted(2, "order").to_string(), "2 orders");
        assert_eq!(counted(1, "SKU").to_string(), "1 SKU");
        assert_eq!(counted(41, "release").to_string(), "41 releases");
    }
}
