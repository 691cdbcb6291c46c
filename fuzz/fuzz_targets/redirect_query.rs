//! The redirect routes' query parsing (`functions/billing-api/src/query.rs`, compiled in as is)
//! on arbitrary bytes: it never panics, and whatever it accepts is something Toss could accept.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../functions/billing-api/src/query.rs"]
mod query;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(q) = query::SuccessQuery::parse(raw) {
        let state = q.state.expose_secret();
        assert!(
            state.len() == 64
                && state
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "state shape"
        );
        let key = q.customer_key.as_str();
        assert!((2..=50).contains(&key.len()), "customerKey length");
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_=.@".contains(&b)),
            "customerKey characters"
        );
        let auth = q.auth_key.expose_secret();
        assert!(!auth.is_empty() && auth.len() <= 300, "authKey length");
        assert!(
            auth.bytes().all(|b| b.is_ascii_graphic()),
            "authKey characters"
        );
        let email = q.customer_email.as_ref().map(|e| e.as_str());
        let name = q.customer_name.as_ref().map(|n| n.as_str());
        for v in [email, name].into_iter().flatten() {
            assert!(!v.chars().any(char::is_control), "no control characters");
            assert!(
                !v.chars()
                    .any(|c| matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')),
                "no invisible formatting characters"
            );
        }
        if let Some(email) = email {
            assert!(
                email.len() <= 100 && email.is_ascii(),
                "customerEmail fits a receipt"
            );
        }
    }
    if let Ok(q) = query::FailQuery::parse(raw) {
        assert!(
            q.code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
            "the fail code is safe to put in a URL"
        );
        assert!((1..=64).contains(&q.code.len()));
    }
});
