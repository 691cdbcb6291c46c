//! What Toss puts on a customer's receipt: an e-mail address and a name, validated once at
//! the edge so that nothing odd reaches a receipt or a charge request.

use std::fmt;

/// Why a contact value was refused (the value itself is never echoed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct ContactError {
    pub field: &'static str,
    pub problem: &'static str,
}

/// An e-mail address as Toss accepts it for `customerEmail` (at most 100 characters): one
/// `@`, a dot-atom local part, and a domain of at least two DNS labels with an alphabetic
/// top-level label. Deliberately narrower than RFC 5322 (no quoted local parts, no IP
/// literals, ASCII only): what a receipt can carry.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

const LOCAL_SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~-";

fn dot_atom(part: &str, allowed: impl Fn(u8) -> bool) -> bool {
    !part.is_empty()
        && part
            .split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(&allowed))
}

fn dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

impl Email {
    pub fn parse(value: &str) -> Result<Self, ContactError> {
        let refuse = |problem| ContactError {
            field: "customerEmail",
            problem,
        };
        if value.len() > 100 {
            return Err(refuse("is longer than 100 characters"));
        }
        let Some((local, domain)) = value.split_once('@') else {
            return Err(refuse("has no @"));
        };
        if local.len() > 64
            || !dot_atom(local, |b| {
                b.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(&b)
            })
        {
            return Err(refuse("has an invalid part before the @"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let tld_ok = labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()));
        if labels.len() < 2 || !labels.iter().all(|l| dns_label(l)) || !tld_ok {
            return Err(refuse("has an invalid domain"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    /// Personal data: the domain only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domain = self.0.split_once('@').map_or("", |(_, d)| d);
        write!(f, "Email(***@{domain})")
    }
}

/// A customer's name for the receipt: 1 to 100 characters, trimmed, without control
/// characters, and without the invisible ones that can disguise text (bidirectional
/// overrides and isolates, zero-width characters, the byte-order mark).
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerName(String);

/// Characters that change how text is displayed without being visible themselves.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'                   // soft hyphen
        | '\u{061C}'                 // Arabic letter mark
        | '\u{180E}'                 // Mongolian vowel separator
        | '\u{200B}'..='\u{200F}'    // zero-width space/joiners, LRM, RLM
        | '\u{202A}'..='\u{202E}'    // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}'    // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}'    // bidi isolates
        | '\u{FEFF}'                 // byte-order mark / zero-width no-break space
    )
}

impl CustomerName {
    pub fn parse(value: &str) -> Result<Self, ContactError> {
        let refuse = |problem| ContactError {
            field: "customerName",
            problem,
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(refuse("is empty"));
        }
        if trimmed.chars().count() > 100 {
            return Err(refuse("is longer than 100 characters"));
        }
        if trimmed.chars().any(|c| c.is_control() || invisible(c)) {
            return Err(refuse("has control or invisible formatting characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CustomerName {
    /// Personal data: its length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomerName({} chars)", self.0.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_are_accepted() {
        for ok in [
            "a@b.co",
            "kim.toss+saju@example.co.kr",
            "o'neil@mail-server.example.com",
            "x_y-z@sub.domain.io",
        ] {
            assert_eq!(
                Email::parse(ok).map(|e| e.as_str().to_owned()),
                Ok(ok.into())
            );
        }
    }

    #[test]
    fn addresses_a_receipt_cannot_carry_are_refused() {
        let long = format!("{}@example.com", "a".repeat(90));
        for bad in [
            "a@.",
            "a@b.",
            "a@.com",
            "a@b",
            "@b.co",
            "a@@b.co",
            "a@b@c.co",
            ".a@b.co",
            "a.@b.co",
            "a..b@c.co",
            "a b@c.co",
            "a@b c.co",
            "a@-b.co",
            "a@b-.co",
            "a@b.c0m",
            "a@b.c",
            "a@b..co",
            "김@b.co",
            "a@b.co\n",
            "a\u{0}@b.co",
            "\"q\"@b.co",
            "a@[127.0.0.1]",
            long.as_str(),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_trimmed_and_kept_as_written() {
        assert_eq!(
            CustomerName::parse("  김토스 ").map(|n| n.as_str().to_owned()),
            Ok("김토스".into())
        );
        assert!(CustomerName::parse("Ana María O'Neil").is_ok());
    }

    #[test]
    fn names_with_invisible_or_control_characters_are_refused() {
        let long = "가".repeat(101);
        for bad in [
            "",
            "   ",
            "evil\u{202E}gnp.exe",
            "a\u{200B}b",
            "a\u{2066}b\u{2069}",
            "\u{FEFF}kim",
            "a\u{061C}b",
            "a\nb",
            "a\u{7}b",
            long.as_str(),
        ] {
            assert!(CustomerName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_output_does_not_show_personal_data() {
        let e = Email::parse("kim.toss@example.com").unwrap();
        let n = CustomerName::parse("김토스").unwrap();
        let shown = format!("{e:?} {n:?}");
        assert!(
            !shown.contains("kim.toss") && !shown.contains("김토스"),
            "{shown}"
        );
    }
}
