use std::fmt;

/// An amount of Korean won. KRW has no minor unit, so an integer is exact; money is never a
/// float anywhere in this workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Krw(u64);

impl Krw {
    pub const fn new(won: u64) -> Self {
        Self(won)
    }

    pub const fn won(self) -> u64 {
        self.0
    }

    pub fn checked_add(self, other: Krw) -> Option<Krw> {
        self.0.checked_add(other.0).map(Krw)
    }
}

impl fmt::Display for Krw {
    /// `3,900원`: how Korean receipts show an amount.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        write!(f, "{out}원")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_display_with_thousands_separators_in_won() {
        assert_eq!(Krw::new(3900).to_string(), "3,900원");
        assert_eq!(Krw::new(100).to_string(), "100원");
        assert_eq!(Krw::new(1_234_567).to_string(), "1,234,567원");
    }
}
