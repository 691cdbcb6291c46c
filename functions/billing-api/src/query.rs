//! The redirect's query string, parsed into domain types before anything else happens.
//! Anything that cannot be valid is refused here, so it never reaches Toss or the table.

use std::collections::HashMap;

use domain::{AuthKey, CheckoutState, CustomerKey, CustomerName, Email, PaymentsCursor};

/// Longest query string accepted (authKey ≤300 + customerKey ≤50 + e-mail/name ≤100 each,
/// percent-encoded, plus whatever the app's own success URL carries).
pub(crate) const MAX_QUERY_BYTES: usize = 4096;
const MAX_PARAMS: usize = 16;

/// Why a query was refused. The reason is for logs and the JSON error; no value is echoed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QueryError {
    #[error("the query string is too long")]
    TooLong,
    #[error("the query string has too many parameters")]
    TooManyParams,
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0} is given more than once")]
    Repeated(&'static str),
    #[error("{0}")]
    Invalid(String),
    /// The checkout `state` is missing or cannot be one of ours (`INVALID_STATE`).
    #[error("the checkout state is missing or malformed")]
    State,
}

/// Decoded parameters, each name at most once (repeats of a name we read are refused).
struct Params(HashMap<String, Vec<String>>);

impl Params {
    fn parse(raw: &str) -> Result<Self, QueryError> {
        if raw.len() > MAX_QUERY_BYTES {
            return Err(QueryError::TooLong);
        }
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (i, (name, value)) in url::form_urlencoded::parse(raw.as_bytes()).enumerate() {
            if i >= MAX_PARAMS {
                return Err(QueryError::TooManyParams);
            }
            map.entry(name.into_owned())
                .or_default()
                .push(value.into_owned());
        }
        Ok(Self(map))
    }

    fn optional(&self, name: &'static str) -> Result<Option<&str>, QueryError> {
        match self.0.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([one]) => Ok(Some(one.as_str())),
            Some(_) => Err(QueryError::Repeated(name)),
        }
    }

    fn required(&self, name: &'static str) -> Result<&str, QueryError> {
        self.optional(name)?
            .filter(|v| !v.is_empty())
            .ok_or(QueryError::Missing(name))
    }
}

/// `GET /billing/success?state=…&customerKey=…&authKey=…[&customerEmail=…][&customerName=…]`
#[derive(Debug)]
pub(crate) struct SuccessQuery {
    pub state: CheckoutState,
    pub customer_key: CustomerKey,
    pub auth_key: AuthKey,
    pub customer_email: Option<Email>,
    pub customer_name: Option<CustomerName>,
}

impl SuccessQuery {
    pub(crate) fn parse(raw: &str) -> Result<Self, QueryError> {
        let p = Params::parse(raw)?;
        let state = p
            .optional("state")?
            .and_then(|v| CheckoutState::parse(v).ok())
            .ok_or(QueryError::State)?;
        let customer_key = CustomerKey::parse(p.required("customerKey")?)
            .map_err(|e| QueryError::Invalid(e.to_string()))?;
        let auth_key = AuthKey::parse(p.required("authKey")?)
            .map_err(|e| QueryError::Invalid(e.to_string()))?;
        let customer_email = p
            .optional("customerEmail")?
            .filter(|v| !v.is_empty())
            .map(email)
            .transpose()?;
        let customer_name = p
            .optional("customerName")?
            .filter(|v| !v.is_empty())
            .map(name)
            .transpose()?;
        Ok(Self {
            state,
            customer_key,
            auth_key,
            customer_email,
            customer_name,
        })
    }
}

/// `GET /billing/fail?code=…&message=…`: only the code is kept, and only if it looks like one.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FailQuery {
    pub code: String,
}

/// The code forwarded when Toss's is missing or not a plausible error code.
pub(crate) const UNKNOWN_FAIL_CODE: &str = "UNKNOWN_ERROR";

impl FailQuery {
    pub(crate) fn parse(raw: &str) -> Result<Self, QueryError> {
        let p = Params::parse(raw)?;
        let code = p
            .optional("code")?
            .filter(|c| {
                (1..=64).contains(&c.len())
                    && c.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            })
            .unwrap_or(UNKNOWN_FAIL_CODE)
            .to_owned();
        Ok(Self { code })
    }
}

/// `GET /v1/payments?limit=…&cursor=…`: `limit` 1–100 (default 20), `cursor` as a previous
/// page's `nextCursor` gave it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PaymentsQuery {
    pub limit: u32,
    pub after: Option<PaymentsCursor>,
}

impl PaymentsQuery {
    pub(crate) const DEFAULT_LIMIT: u32 = 20;
    pub(crate) const MAX_LIMIT: u32 = 100;

    pub(crate) fn parse(raw: &str) -> Result<Self, QueryError> {
        let p = Params::parse(raw)?;
        let limit = match p.optional("limit")? {
            None => Self::DEFAULT_LIMIT,
            Some(v) => small_number(v)
                .filter(|n| (1..=Self::MAX_LIMIT).contains(n))
                .ok_or_else(|| QueryError::Invalid("limit must be 1 to 100".into()))?,
        };
        let after = p
            .optional("cursor")?
            .map(|v| {
                let parts: Option<Vec<u32>> = v.split('.').map(small_number).collect();
                match parts.as_deref() {
                    Some(&[subscription, period, attempt]) => Some(PaymentsCursor {
                        subscription,
                        after: Some((period, attempt)),
                    }),
                    // A cursor given before payments spanned subscriptions: the newest one.
                    Some(&[period, attempt]) => Some(PaymentsCursor {
                        subscription: u32::MAX,
                        after: Some((period, attempt)),
                    }),
                    _ => None,
                }
                .ok_or_else(|| QueryError::Invalid("cursor is not one this API gave".into()))
            })
            .transpose()?;
        Ok(Self { limit, after })
    }

    /// The `nextCursor` for a page ending where `next` says: `<subscription>.<period>.<attempt>`
    /// (a subscription started at its newest payment is after the greatest key).
    pub(crate) fn cursor(next: PaymentsCursor) -> String {
        let (period, attempt) = next.after.unwrap_or((u32::MAX, u32::MAX));
        format!("{}.{period}.{attempt}", next.subscription)
    }
}

/// Plain decimal digits (no sign, no spaces), at most 10 of them, that fit a `u32`.
fn small_number(v: &str) -> Option<u32> {
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

fn email(value: &str) -> Result<Email, QueryError> {
    Email::parse(value).map_err(|e| QueryError::Invalid(e.to_string()))
}

fn name(value: &str) -> Result<CustomerName, QueryError> {
    CustomerName::parse(value).map_err(|e| QueryError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A success query behind a well-formed state: what the rest of the parser makes of it.
    fn success(raw: &str) -> Result<SuccessQuery, QueryError> {
        SuccessQuery::parse(&format!("state={STATE}&{raw}"))
    }

    #[test]
    fn the_checkout_state_is_required_first_and_must_have_its_exact_shape() {
        let q = success("customerKey=user_2abc&authKey=k1").unwrap();
        assert_eq!(q.state.expose_secret(), STATE);
        for raw in [
            String::new(),
            "customerKey=user_2abc&authKey=k1".to_owned(),
            "state=&customerKey=user_2abc&authKey=k1".to_owned(),
            format!(
                "state={}&customerKey=user_2abc&authKey=k1",
                STATE.to_uppercase()
            ),
            format!("state={}&customerKey=user_2abc&authKey=k1", &STATE[1..]),
            format!("state={STATE}0&customerKey=user_2abc&authKey=k1"),
        ] {
            assert_eq!(
                SuccessQuery::parse(&raw).unwrap_err(),
                QueryError::State,
                "{raw}"
            );
        }
        assert_eq!(
            success(&format!("state={STATE}&customerKey=u1&authKey=k")).unwrap_err(),
            QueryError::Repeated("state")
        );
        assert!(!QueryError::State.to_string().contains(STATE));
    }

    #[test]
    fn a_redirect_from_toss_parses_into_domain_types() {
        let q = success("customerKey=user_2abc&authKey=bln_8dk2Lq&customerEmail=a%40b.co&customerName=%EA%B9%80%ED%86%A0%EC%8A%A4").unwrap();
        assert_eq!(q.customer_key.as_str(), "user_2abc");
        assert_eq!(q.auth_key.expose_secret(), "bln_8dk2Lq");
        assert_eq!(q.customer_email.as_ref().map(Email::as_str), Some("a@b.co"));
        assert_eq!(
            q.customer_name.as_ref().map(CustomerName::as_str),
            Some("김토스")
        );
    }

    #[test]
    fn parameters_the_app_added_to_its_success_url_are_ignored() {
        assert!(success("billingMethod=CARD&customerKey=user_2abc&authKey=k1").is_ok());
    }

    #[test]
    fn bad_success_queries_are_refused_with_a_reason_that_echoes_nothing() {
        let long = format!("customerKey=user_1&authKey={}", "a".repeat(5000));
        let cases = [
            ("", QueryError::Missing("customerKey")),
            ("authKey=k", QueryError::Missing("customerKey")),
            ("customerKey=user_1", QueryError::Missing("authKey")),
            (
                "customerKey=user_1&authKey=",
                QueryError::Missing("authKey"),
            ),
            (
                "customerKey=user_1&customerKey=user_2&authKey=k",
                QueryError::Repeated("customerKey"),
            ),
            (
                "customerKey=user_1&authKey=k&authKey=k",
                QueryError::Repeated("authKey"),
            ),
            (long.as_str(), QueryError::TooLong),
        ];
        for (raw, expected) in cases {
            assert_eq!(success(raw).unwrap_err(), expected, "{raw:.60}");
        }
        for raw in [
            "customerKey=%ED%95%9C&authKey=k",
            "customerKey=user%0A1&authKey=k",
            "customerKey=u&authKey=k",
            "customerKey=user_1&authKey=has%20space",
            "customerKey=user_1&authKey=k&customerEmail=nope",
            "customerKey=user_1&authKey=k&customerName=a%00b",
        ] {
            let err = success(raw).unwrap_err();
            assert!(matches!(err, QueryError::Invalid(_)), "{raw}: {err:?}");
            assert!(!err.to_string().contains("space"), "{err}");
        }
    }

    #[test]
    fn a_fail_code_is_forwarded_only_when_it_looks_like_an_error_code() {
        assert_eq!(
            FailQuery::parse("code=PAY_PROCESS_CANCELED&message=%EC%B7%A8%EC%86%8C")
                .unwrap()
                .code,
            "PAY_PROCESS_CANCELED"
        );
        for raw in [
            "",
            "code=",
            "code=%3Cscript%3E",
            "code=lower",
            "message=only",
        ] {
            assert_eq!(
                FailQuery::parse(raw).unwrap().code,
                UNKNOWN_FAIL_CODE,
                "{raw}"
            );
        }
        assert_eq!(
            FailQuery::parse("code=A&code=B").unwrap_err(),
            QueryError::Repeated("code")
        );
    }
}
