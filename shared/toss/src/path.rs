//! Putting identifiers into URL path segments.
//!
//! Billing keys look like URL-safe base64 with `=` padding. Toss's own sample puts them into the
//! path unencoded and a `%3D`-encoded `=` has never been tried against the real API
//! (docs/toss-api.md §3.1), so unreserved characters and `=` stay as they are; everything else
//! (`/`, `+`, `%`, spaces, …) is percent-encoded so a value can never leave its segment.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything except RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) and `=`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'=');

/// `value` encoded for use as exactly one path segment, or `None` for `.` and `..`, which URL
/// parsers resolve (encoded or not) as a step up the path instead of a segment.
pub(crate) fn segment(value: &str) -> Option<String> {
    if matches!(value, "." | "..") {
        return None;
    }
    Some(utf8_percent_encode(value, SEGMENT).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_billing_key_goes_into_the_path_unchanged() {
        let key = "Z_t5vOvQxrj4499PeiJcjen28-V2RyqgYTwN44Rdzk0=";
        assert_eq!(segment(key).as_deref(), Some(key));
    }

    #[test]
    fn characters_that_could_escape_the_segment_are_encoded() {
        assert_eq!(
            segment("a/b+c d%e?f#g").as_deref(),
            Some("a%2Fb%2Bc%20d%25e%3Ff%23g")
        );
        assert_eq!(segment("~x.y..").as_deref(), Some("~x.y.."));
    }

    #[test]
    fn dot_segments_are_refused_because_they_would_climb_the_path() {
        assert_eq!(segment("."), None);
        assert_eq!(segment(".."), None);
    }
}
