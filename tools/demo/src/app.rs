//! The demo's checkout app: what the Saju맛피아 front end does around Toss's billing window.
//!
//! - `GET /`: a plan card with a "구독하기" button. Its script calls
//!   `TossPayments(clientKey).payment({customerKey}).requestBillingAuth({method:'CARD', successUrl, failUrl})`
//!   on a small stand-in for the Toss SDK that opens the sandbox's billing-auth page exactly as
//!   the SDK opens Toss's (the real SDK is an external script; the demo runs offline).
//!   `successUrl`/`failUrl` are billing-api's routes under the Lambda emulator.
//! - `GET /done`: where billing-api sends the customer after success (`APP_SUCCESS_URL`); shows
//!   the subscription and its ledger read from the table.
//! - `GET /failed?code=…`: where billing-api sends the customer after a failure (`APP_FAIL_URL`).
//!
//! The customer key is made up per visit (`user_<ulid>`, as Clerk's user id would be) and kept
//! in a cookie, since billing-api never echoes request data into its redirect.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use domain::CustomerKey;

use crate::config::{CLIENT_KEY, PLAN_AMOUNT, Urls};
use crate::fmt::{kst, kst_day, won};

const COOKIE_NAME: &str = "demo_customer";

#[derive(Debug, Clone)]
pub(crate) struct AppState {
    store: store::Store,
    sandbox: String,
    success_url: String,
    fail_url: String,
}

impl AppState {
    pub(crate) fn new(store: store::Store, urls: &Urls) -> Self {
        Self {
            store,
            sandbox: urls.sandbox.clone(),
            success_url: urls.success_url.clone(),
            fail_url: urls.fail_url.clone(),
        }
    }
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(checkout))
        .route("/done", get(done))
        .route("/failed", get(failed))
        .with_state(state)
}

fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="ko">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  body {{ font-family: "Apple SD Gothic Neo", "NanumGothic", "Noto Sans KR", sans-serif; background: #f2f4f6; color: #191f28; margin: 0; }}
  main {{ max-width: 560px; margin: 48px auto; background: #fff; border-radius: 16px; padding: 32px; box-shadow: 0 2px 12px rgba(0,0,0,.06); }}
  h1 {{ font-size: 22px; margin: 0 0 8px; }}
  .muted {{ color: #6b7684; font-size: 14px; }}
  .price {{ font-size: 32px; font-weight: 700; margin: 16px 0; }}
  button {{ background: #3182f6; color: #fff; border: 0; border-radius: 10px; font-size: 17px; padding: 14px 20px; width: 100%; cursor: pointer; }}
  table {{ border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 12px; }}
  th, td {{ text-align: left; padding: 6px 4px; border-bottom: 1px solid #e5e8eb; }}
  dl {{ display: grid; grid-template-columns: 9em 1fr; gap: 6px 12px; }}
  dt {{ color: #6b7684; }} dd {{ margin: 0; }}
  code {{ background: #f2f4f6; padding: 1px 5px; border-radius: 4px; }}
  .ok {{ color: #0a8f3c; }} .bad {{ color: #e42939; }}
  a {{ color: #3182f6; }}
</style>
</head>
<body><main>
{body}
</main></body>
</html>
"#
    )
}

/// HTML-escapes text for element content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn new_customer_key() -> String {
    format!(
        "user_{}",
        ulid::Ulid::new().to_string().to_ascii_lowercase()
    )
}

async fn checkout(State(state): State<AppState>) -> Response {
    let customer_key = new_customer_key();
    let config = serde_json::json!({
        "clientKey": CLIENT_KEY,
        "customerKey": customer_key,
        "sandbox": state.sandbox,
        "successUrl": state.success_url,
        "failUrl": state.fail_url,
    });
    // JSON inside <script>: `<` escaped so no value can close the element.
    let config = config.to_string().replace('<', "\\u003c");
    let body = format!(
        r#"<p class="muted">Saju맛피아 · 로컬 데모 (Toss 샌드박스)</p>
<h1>Pro 구독</h1>
<p>매달 사주 풀이 30회. 첫 달은 카드 등록과 함께 바로 결제되고, 이후 매달 같은 날 자동 결제됩니다.</p>
<p class="price">{price}<span class="muted"> / 월</span></p>
<button id="subscribe" type="button">Pro {price}/월 구독하기</button>
<p class="muted">고객 키 (Clerk user id 역할): <code id="customer-key">{customer}</code></p>
<script type="application/json" id="config">{config}</script>
<script>
// A stand-in for the Toss SDK v2 (`TossPayments(clientKey)` from js.tosspayments.com), which this
// offline demo cannot load: the same calls, and requestBillingAuth opens the sandbox's card
// window with the same query the SDK sends to Toss's.
function TossPayments(clientKey) {{
  const sandbox = JSON.parse(document.getElementById("config").textContent).sandbox;
  return {{
    payment({{ customerKey }}) {{
      return {{
        async requestBillingAuth({{ method, successUrl, failUrl }}) {{
          if (method !== "CARD") throw new Error("only CARD billing is supported");
          const query = new URLSearchParams({{ clientKey, customerKey, successUrl, failUrl }});
          window.location.href = sandbox + "/billing-auth?" + query.toString();
        }},
      }};
    }},
  }};
}}

const config = JSON.parse(document.getElementById("config").textContent);
document.getElementById("subscribe").addEventListener("click", async () => {{
  const tossPayments = TossPayments(config.clientKey);
  const payment = tossPayments.payment({{ customerKey: config.customerKey }});
  await payment.requestBillingAuth({{
    method: "CARD",
    successUrl: config.successUrl,
    failUrl: config.failUrl,
  }});
}});
</script>"#,
        price = won(PLAN_AMOUNT),
        customer = esc(&customer_key),
    );
    let mut response = Html(page("Pro 구독하기", &body)).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={customer_key}; Path=/; HttpOnly; SameSite=Lax"
    )) {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    no_store(response)
}

fn customer_from_cookie(headers: &HeaderMap) -> Option<CustomerKey> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .and_then(|(_, value)| CustomerKey::parse(value).ok())
}

async fn done(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(customer) = customer_from_cookie(&headers) else {
        return no_store(
            Html(page(
                "구독",
                r#"<h1 id="outcome">no-customer</h1><p>이 브라우저에는 데모 고객이 없습니다. <a href="/">처음으로</a></p>"#,
            ))
            .into_response(),
        );
    };
    let body = match subscription_html(&state, &customer).await {
        Ok(html) => html,
        Err(e) => format!(
            r#"<h1 id="outcome" class="bad">error</h1><p>테이블을 읽지 못했습니다: {}</p>"#,
            esc(&format!("{e:#}"))
        ),
    };
    no_store(Html(page("구독 완료", &body)).into_response())
}

async fn subscription_html(state: &AppState, customer: &CustomerKey) -> anyhow::Result<String> {
    let Some(sub) = state.store.customer_subscription(customer).await? else {
        return Ok(format!(
            r#"<h1 id="outcome" class="bad">no-subscription</h1><p>고객 <code>{}</code>의 구독이 테이블에 없습니다.</p>"#,
            esc(customer.as_str())
        ));
    };
    let ledger = state.store.ledger(&sub.id).await?;
    let mut rows = String::new();
    for entry in &ledger {
        let when = entry.approved_at.unwrap_or(entry.updated_at);
        let _ = write!(
            rows,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&kst(when)),
            esc(entry.order_id.as_str()),
            esc(&won(entry.amount.won())),
            esc(entry.status.as_str()),
            esc(entry.error_code.as_deref().unwrap_or("")),
        );
    }
    Ok(format!(
        r#"<p class="muted">Saju맛피아 · 로컬 데모</p>
<h1 id="outcome" class="ok">구독이 시작되었습니다</h1>
<dl>
  <dt>고객 키</dt><dd><code id="customer-key">{customer}</code></dd>
  <dt>상태</dt><dd id="status">{status}</dd>
  <dt>카드</dt><dd id="card">{card}</dd>
  <dt>크레딧</dt><dd id="credits">{credits}</dd>
  <dt>이번 기간 끝</dt><dd>{period_end}</dd>
  <dt>다음 결제일</dt><dd id="next-charge">{next}</dd>
</dl>
<h2 style="font-size:16px">결제 내역 (DynamoDB 원장)</h2>
<table id="ledger"><thead><tr><th>승인 시각</th><th>주문번호 (orderId)</th><th>금액</th><th>결과</th><th>코드</th></tr></thead>
<tbody>{rows}</tbody></table>
<p class="muted">구독 ID <code>{id}</code> · <a href="/">처음으로</a></p>"#,
        customer = esc(customer.as_str()),
        status = esc(sub.status.as_str()),
        card = esc(sub.card_number_masked.as_deref().unwrap_or("-")),
        credits = sub.credits,
        period_end = sub
            .current_period_end
            .map(kst)
            .unwrap_or_else(|| "-".into()),
        next = sub
            .next_charge_at
            .map(kst_day)
            .unwrap_or_else(|| "-".into()),
        id = esc(sub.id.as_str()),
    ))
}

/// The code as billing-api sent it, if it looks like one (`[A-Z0-9_]`, at most 64 characters).
fn clean_code(query: &HashMap<String, String>) -> String {
    query
        .get("code")
        .filter(|c| {
            !c.is_empty()
                && c.len() <= 64
                && c.chars()
                    .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
        })
        .cloned()
        .unwrap_or_else(|| "UNKNOWN".to_owned())
}

fn explain(code: &str) -> &'static str {
    match code {
        "INVALID_CARD_NUMBER" => "카드번호가 올바르지 않습니다. 카드 정보를 다시 확인해주세요.",
        "REJECT_CARD_COMPANY" => "카드사에서 카드 등록을 거절했습니다. 다른 카드를 사용해주세요.",
        "PAY_PROCESS_CANCELED" => "카드 등록을 취소했습니다.",
        "REJECT_CARD_PAYMENT" => "한도초과 혹은 잔액부족으로 결제에 실패했습니다.",
        "INVALID_STOPPED_CARD" | "INVALID_CARD_EXPIRATION" => {
            "사용할 수 없는 카드입니다. 다른 카드를 등록해주세요."
        }
        _ => "카드 등록 또는 첫 결제에 실패했습니다. 잠시 후 다시 시도해주세요.",
    }
}

async fn failed(Query(query): Query<HashMap<String, String>>) -> Response {
    let code = clean_code(&query);
    let body = format!(
        r#"<p class="muted">Saju맛피아 · 로컬 데모</p>
<h1 id="outcome" class="bad">구독하지 못했습니다</h1>
<p>{message}</p>
<p>코드: <code id="fail-code">{code}</code></p>
<p><a href="/">다시 시도하기</a></p>"#,
        message = esc(explain(&code)),
        code = esc(&code),
    );
    no_store(Html(page("구독 실패", &body)).into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn only_code_shaped_values_are_shown_as_the_fail_code() {
        let q = |v: &str| HashMap::from([("code".to_owned(), v.to_owned())]);
        assert_eq!(clean_code(&q("INVALID_CARD_NUMBER")), "INVALID_CARD_NUMBER");
        assert_eq!(clean_code(&q("<script>")), "UNKNOWN");
        assert_eq!(clean_code(&HashMap::new()), "UNKNOWN");
    }

    #[test]
    fn the_customer_comes_from_the_demo_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=b; demo_customer=user_abc; c=d"),
        );
        assert_eq!(customer_from_cookie(&headers).unwrap().as_str(), "user_abc");
    }

    #[test]
    fn made_up_customer_keys_fit_the_sdk_limit() {
        let key = new_customer_key();
        assert!(key.len() <= 50 && CustomerKey::parse(&key).is_ok(), "{key}");
    }
}
