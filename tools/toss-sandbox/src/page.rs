//! The billing-auth page: plays Toss's card registration window.
//!
//! `GET /billing-auth?clientKey&customerKey&successUrl&failUrl` is what
//! `tossPayments.payment({customerKey}).requestBillingAuth({method:'CARD', successUrl, failUrl})`
//! would open. The form posts to `POST /billing-auth`, which redirects (302) to
//! `successUrl?customerKey=…&authKey=…` or `failUrl?code=…&message=…`.
//! `GET /billing-auth/submit` takes the same fields as a query string, for curl.

use axum::Form;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, LOCATION};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::cards::TestCard;
use crate::errors::ApiError;
use crate::requests::valid_customer_key;
use crate::state::Sandbox;

/// Everything but RFC 3986 unreserved characters is percent-encoded in query values.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The identity-verification code the test window accepts (as in Toss's test mode).
pub const TEST_AUTH_CODE: &str = "000000";

pub(crate) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/billing-auth", get(window).post(submit_form))
        .route("/billing-auth/submit", get(submit_query).post(submit_form))
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WindowParams {
    client_key: String,
    customer_key: String,
    success_url: String,
    fail_url: String,
    customer_email: Option<String>,
    customer_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Submission {
    #[serde(flatten)]
    window: WindowParams,
    /// A card slug (`ok`, `decline-renewals`, …), name (`decline_renewals`) or number.
    card: Option<String>,
    /// `submit` (default) or `cancel`.
    action: Option<String>,
    auth_code: Option<String>,
}

/// Why the window cannot open (the SDK would throw before redirecting).
#[derive(Debug, Clone, PartialEq, Eq)]
struct WindowError {
    code: &'static str,
    message: String,
}

fn validate(params: &WindowParams) -> Result<(), WindowError> {
    let client_key = params.client_key.as_str();
    if client_key.starts_with("live_") {
        return Err(WindowError {
            code: "INVALID_CLIENT_KEY",
            message: "라이브 키는 샌드박스에서 사용할 수 없습니다. (live keys are refused)".into(),
        });
    }
    if client_key.starts_with("test_gck_") {
        return Err(WindowError {
            code: "NOT_SUPPORTED_WIDGET_KEY",
            message:
                "결제위젯 연동 키로는 자동결제를 사용할 수 없습니다. (NotSupportedWidgetKeyError)"
                    .into(),
        });
    }
    if !(client_key.starts_with("test_ck_") && client_key.len() > "test_ck_".len()) {
        return Err(WindowError {
            code: "INVALID_CLIENT_KEY",
            message: "잘못된 클라이언트 연동 정보 입니다.".into(),
        });
    }
    if !valid_customer_key(&params.customer_key, 50) {
        return Err(WindowError {
            code: "INVALID_CUSTOMER_KEY",
            message: "customerKey는 영문 대소문자, 숫자, 특수문자 -, _, =, ., @로 2자 이상 50자 이하여야 합니다."
                .into(),
        });
    }
    if !absolute_http_url(&params.success_url) {
        return Err(WindowError {
            code: "INCORRECT_SUCCESS_URL_FORMAT",
            message: "잘못된 successUrl 입니다.".into(),
        });
    }
    if !absolute_http_url(&params.fail_url) {
        return Err(WindowError {
            code: "INCORRECT_FAIL_URL_FORMAT",
            message: "잘못된 failUrl 입니다.".into(),
        });
    }
    Ok(())
}

fn absolute_http_url(text: &str) -> bool {
    url::Url::parse(text)
        .map(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .unwrap_or(false)
}

/// Append query parameters, keeping an existing query string (and a fragment).
pub fn append_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let (head, fragment) = match base.split_once('#') {
        Some((head, fragment)) => (head, Some(fragment)),
        None => (base, None),
    };
    let encoded = pairs
        .iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                utf8_percent_encode(name, QUERY_VALUE),
                utf8_percent_encode(value, QUERY_VALUE)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let separator = if !head.contains('?') {
        "?"
    } else if head.ends_with('?') || head.ends_with('&') {
        ""
    } else {
        "&"
    };
    let mut url = format!("{head}{separator}{encoded}");
    if let Some(fragment) = fragment {
        url.push('#');
        url.push_str(fragment);
    }
    url
}

fn redirect(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [
            (LOCATION, location.to_owned()),
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

fn fail_redirect(fail_url: &str, code: &str, message: &str) -> Response {
    redirect(&append_query(
        fail_url,
        &[("code", code), ("message", message)],
    ))
}

async fn window(Query(params): Query<WindowParams>) -> Response {
    match validate(&params) {
        Ok(()) => Html(form_page(&params, None)).into_response(),
        Err(error) => error_page(&error),
    }
}

async fn submit_query(
    State(sandbox): State<Sandbox>,
    Query(submission): Query<Submission>,
) -> Response {
    submit(&sandbox, submission)
}

async fn submit_form(
    State(sandbox): State<Sandbox>,
    Form(submission): Form<Submission>,
) -> Response {
    submit(&sandbox, submission)
}

fn submit(sandbox: &Sandbox, submission: Submission) -> Response {
    let params = &submission.window;
    if let Err(error) = validate(params) {
        return error_page(&error);
    }
    if submission.action.as_deref() == Some("cancel") {
        let cancel = ApiError::of("PAY_PROCESS_CANCELED");
        return fail_redirect(&params.fail_url, &cancel.code, &cancel.message);
    }
    let card_name = submission.card.as_deref().unwrap_or("ok");
    let Some(card) = TestCard::parse(card_name).or_else(|| TestCard::from_number(card_name)) else {
        return (
            StatusCode::BAD_REQUEST,
            Html(form_page(
                params,
                Some("알 수 없는 카드입니다. (unknown test card)"),
            )),
        )
            .into_response();
    };
    if let Some(code) = submission.auth_code.as_deref()
        && code.trim() != TEST_AUTH_CODE
    {
        return (
            StatusCode::BAD_REQUEST,
            Html(form_page(
                params,
                Some("인증번호가 일치하지 않습니다. 테스트 인증번호는 000000 입니다. (wrong code: use 000000)"),
            )),
        )
            .into_response();
    }
    if let Some(code) = card.profile().registration_error {
        let error = ApiError::of(code);
        return fail_redirect(&params.fail_url, &error.code, &error.message);
    }
    match sandbox.mint_auth_key(&params.customer_key, card) {
        Ok(auth_key) => redirect(&append_query(
            &params.success_url,
            &[
                ("customerKey", params.customer_key.as_str()),
                ("authKey", auth_key.as_str()),
            ],
        )),
        Err(error) => fail_redirect(&params.fail_url, &error.code, &error.message),
    }
}

/// Minimal HTML escaping for text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;color:#191f28}\
h1{font-size:1.3rem}fieldset{border:1px solid #d1d6db;border-radius:8px;margin:1rem 0}\
label{display:block;padding:.35rem 0}.number{font-family:monospace;color:#4e5968}\
.error{color:#f04452}button{padding:.6rem 1.2rem;margin-right:.5rem;border-radius:6px;border:0}\
#submit-card{background:#3182f6;color:#fff}#cancel{background:#e5e8eb}";

fn form_page(params: &WindowParams, error: Option<&str>) -> String {
    let hidden = |name: &str, value: &str| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
            escape(value)
        )
    };
    let mut cards = String::new();
    for (index, card) in TestCard::ALL.into_iter().enumerate() {
        let p = card.profile();
        let checked = if index == 0 { " checked" } else { "" };
        cards.push_str(&format!(
            "<label for=\"card-{slug}\"><input type=\"radio\" id=\"card-{slug}\" name=\"card\" value=\"{slug}\"{checked}> \
             {label} <span class=\"number\">{number}</span> <small>({company} {card_type}/{owner_type})</small></label>\n",
            slug = p.slug,
            label = escape(p.label),
            number = p.display_number(),
            company = p.company,
            card_type = p.card_type,
            owner_type = p.owner_type,
        ));
    }
    let error_html = error
        .map(|e| format!("<p class=\"error\" id=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let customer = [
        params.customer_name.as_deref(),
        params.customer_email.as_deref(),
    ]
    .into_iter()
    .flatten()
    .map(escape)
    .collect::<Vec<_>>()
    .join(" · ");
    format!(
        r#"<!doctype html>
<html lang="ko">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>카드 등록 (Toss sandbox)</title><style>{STYLE}</style></head>
<body>
<h1>카드 자동결제 등록 <small>(Register a card for automatic payments)</small></h1>
<p>토스페이먼츠 샌드박스: 실제 결제는 일어나지 않습니다. (Sandbox: no real money moves.)</p>
<p id="customer">customerKey: <code>{customer_key}</code> {customer}</p>
{error_html}
<form id="billing-auth-form" method="post" action="/billing-auth">
{client_key}{customer_key_input}{success_url}{fail_url}
<fieldset><legend>테스트 카드 (Test card)</legend>
{cards}</fieldset>
<label for="auth-code">본인인증 번호 (Verification code, test: 000000)
<input type="text" id="auth-code" name="authCode" value="{TEST_AUTH_CODE}" inputmode="numeric" maxlength="6"></label>
<p><button type="submit" id="submit-card" name="action" value="submit">카드 등록 (Register card)</button>
<button type="submit" id="cancel" name="action" value="cancel" formnovalidate>취소 (Cancel)</button></p>
</form>
</body></html>
"#,
        customer_key = escape(&params.customer_key),
        client_key = hidden("clientKey", &params.client_key),
        customer_key_input = hidden("customerKey", &params.customer_key),
        success_url = hidden("successUrl", &params.success_url),
        fail_url = hidden("failUrl", &params.fail_url),
    )
}

fn error_page(error: &WindowError) -> Response {
    let body = format!(
        r#"<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>오류 (Error)</title><style>{STYLE}</style></head>
<body><h1>결제창을 열 수 없습니다 (The window cannot open)</h1>
<p class="error">code: <code id="error-code">{code}</code></p>
<p id="error-message">{message}</p></body></html>
"#,
        code = error.code,
        message = escape(&error.message),
    );
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_appended_to_a_url_without_a_query() {
        assert_eq!(
            append_query("http://localhost/ok", &[("a", "1"), ("b", "x y")]),
            "http://localhost/ok?a=1&b=x%20y"
        );
    }

    #[test]
    fn an_existing_query_string_is_kept_and_extended_with_an_ampersand() {
        assert_eq!(
            append_query("http://h/ok?billingMethod=CARD&", &[("a", "1")]),
            "http://h/ok?billingMethod=CARD&a=1"
        );
        assert_eq!(
            append_query("http://h/ok?x=1", &[("a", "1")]),
            "http://h/ok?x=1&a=1"
        );
        assert_eq!(
            append_query("http://h/ok?x=1#top", &[("a", "1")]),
            "http://h/ok?x=1&a=1#top"
        );
    }

    #[test]
    fn korean_messages_and_reserved_characters_are_percent_encoded() {
        let url = append_query("http://h/fail", &[("message", "취소"), ("k", "a=b@c")]);
        assert_eq!(url, "http://h/fail?message=%EC%B7%A8%EC%86%8C&k=a%3Db%40c");
    }

    #[test]
    fn only_absolute_http_urls_are_accepted() {
        assert!(absolute_http_url("http://localhost:3000/billing/success"));
        assert!(absolute_http_url("https://example.com/x?y=1"));
        assert!(!absolute_http_url("/billing/success"));
        assert!(!absolute_http_url("ftp://example.com/"));
        assert!(!absolute_http_url("javascript:alert(1)"));
    }

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
