//! The request bodies the emulated endpoints accept, each next to its parser, and the field rules
//! Toss applies (customerKey, orderId, amounts, email, installments), answered with Toss's codes.

use axum::body::Bytes;
use serde_json::{Map, Value};

use crate::errors::ApiError;

/// A validated billing-key issue request body.
#[derive(Debug, Clone)]
pub(crate) struct IssueRequest {
    pub(crate) auth_key: String,
    pub(crate) customer_key: String,
}

pub(crate) fn parse_issue(body: &Bytes) -> Result<IssueRequest, ApiError> {
    let object = json_object(body)?;
    let auth_key = required_str(&object, "authKey")?;
    if auth_key.is_empty() || auth_key.chars().count() > 300 {
        return Err(ApiError::invalid_request(
            "authKey는 1자 이상 300자 이하여야 합니다.",
        ));
    }
    let customer_key = required_str(&object, "customerKey")?;
    if !valid_customer_key(customer_key, 300) {
        return Err(ApiError::of("INVALID_CUSTOMER_KEY"));
    }
    Ok(IssueRequest {
        auth_key: auth_key.to_owned(),
        customer_key: customer_key.to_owned(),
    })
}

/// A validated charge request body.
#[derive(Debug, Clone)]
pub(crate) struct ChargeRequest {
    pub(crate) customer_key: String,
    pub(crate) amount: i64,
    pub(crate) order_id: String,
    pub(crate) order_name: String,
    pub(crate) tax_free_amount: i64,
    pub(crate) tax_exemption_amount: i64,
    pub(crate) installment_months: i64,
}

pub(crate) fn parse_charge(body: &Bytes) -> Result<ChargeRequest, ApiError> {
    let object = json_object(body)?;
    let customer_key = required_str(&object, "customerKey")?;
    if !valid_customer_key(customer_key, 300) {
        return Err(ApiError::of("INVALID_CUSTOMER_KEY"));
    }
    let order_id = required_str(&object, "orderId")?;
    if !valid_order_id(order_id) {
        return Err(ApiError::of("INVALID_ORDER_ID"));
    }
    let order_name = required_str(&object, "orderName")?;
    let order_name_chars = order_name.chars().count();
    if order_name_chars == 0 || order_name_chars > 100 {
        return Err(ApiError::of("INVALID_ORDER_NAME"));
    }
    let amount = match present(&object, "amount") {
        Some(value) => integer(value, "amount")?,
        None => {
            return Err(ApiError::invalid_request(
                "필수 파라미터가 누락되었습니다: amount",
            ));
        }
    };
    if amount <= 0 {
        return Err(ApiError::of("BELOW_ZERO_AMOUNT"));
    }
    if amount < 100 {
        return Err(ApiError::of("BELOW_MINIMUM_AMOUNT"));
    }
    if let Some(email) = optional_str(&object, "customerEmail")?
        && !valid_email(email)
    {
        return Err(ApiError::of("INVALID_EMAIL"));
    }
    if let Some(name) = optional_str(&object, "customerName")?
        && name.chars().count() > 100
    {
        return Err(ApiError::invalid_request(
            "customerName은 100자 이하여야 합니다.",
        ));
    }
    let tax_free_amount = optional_integer(&object, "taxFreeAmount")?.unwrap_or(0);
    let tax_exemption_amount = optional_integer(&object, "taxExemptionAmount")?.unwrap_or(0);
    if tax_free_amount < 0
        || tax_exemption_amount < 0
        || tax_free_amount + tax_exemption_amount > amount
    {
        return Err(ApiError::invalid_request(
            "면세 금액은 0 이상, 결제 금액 이하여야 합니다.",
        ));
    }
    let installment_months = optional_integer(&object, "cardInstallmentPlan")?.unwrap_or(0);
    if !(installment_months == 0 || (2..=12).contains(&installment_months)) {
        return Err(ApiError::of("INVALID_CARD_INSTALLMENT_PLAN"));
    }
    if installment_months >= 2 && amount < 50_000 {
        return Err(ApiError::with_message(
            "INVALID_CARD_INSTALLMENT_PLAN",
            "할부는 50,000원 이상 결제에서만 가능합니다.",
        ));
    }
    Ok(ChargeRequest {
        customer_key: customer_key.to_owned(),
        amount,
        order_id: order_id.to_owned(),
        order_name: order_name.to_owned(),
        tax_free_amount,
        tax_exemption_amount,
        installment_months,
    })
}

/// A validated cancel request body.
#[derive(Debug, Clone)]
pub(crate) struct CancelRequest {
    pub(crate) cancel_reason: String,
    pub(crate) cancel_amount: Option<i64>,
    pub(crate) refundable_amount: Option<i64>,
}

pub(crate) fn parse_cancel(body: &Bytes) -> Result<CancelRequest, ApiError> {
    let object = json_object(body)?;
    let cancel_reason = required_str(&object, "cancelReason")?;
    let reason_chars = cancel_reason.chars().count();
    if reason_chars == 0 || reason_chars > 200 {
        return Err(ApiError::invalid_request(
            "cancelReason은 1자 이상 200자 이하여야 합니다.",
        ));
    }
    Ok(CancelRequest {
        cancel_reason: cancel_reason.to_owned(),
        cancel_amount: optional_integer(&object, "cancelAmount")?,
        refundable_amount: optional_integer(&object, "refundableAmount")?,
    })
}

/// `customerKey`: letters, digits, `-_=.@`, 2..=`max` characters, never the SDK's guest key.
pub fn valid_customer_key(customer_key: &str, max: usize) -> bool {
    let len = customer_key.chars().count();
    (2..=max).contains(&len)
        && customer_key != "@@ANONYMOUS"
        && customer_key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=' | '.' | '@'))
}

fn json_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(ApiError::invalid_request(
            "요청 본문이 올바른 JSON 객체가 아닙니다.",
        )),
    }
}

fn present<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).filter(|value| !value.is_null())
}

fn required_str<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a str, ApiError> {
    match present(object, name) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(ApiError::invalid_request(format!(
            "{name}의 형식이 올바르지 않습니다."
        ))),
        None => Err(ApiError::invalid_request(format!(
            "필수 파라미터가 누락되었습니다: {name}"
        ))),
    }
}

fn optional_str<'a>(
    object: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, ApiError> {
    match present(object, name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(ApiError::invalid_request(format!(
            "{name}의 형식이 올바르지 않습니다."
        ))),
    }
}

/// A KRW amount: a JSON integer, or a number with no fractional part (`100.0`).
fn integer(value: &Value, name: &str) -> Result<i64, ApiError> {
    let invalid = || ApiError::invalid_request(format!("{name}은(는) 정수여야 합니다."));
    let Value::Number(number) = value else {
        return Err(invalid());
    };
    if let Some(n) = number.as_i64() {
        return Ok(n);
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => Ok(f as i64),
        _ => Err(invalid()),
    }
}

fn optional_integer(object: &Map<String, Value>, name: &str) -> Result<Option<i64>, ApiError> {
    present(object, name).map(|v| integer(v, name)).transpose()
}

fn valid_order_id(order_id: &str) -> bool {
    (6..=64).contains(&order_id.len())
        && order_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.chars().count() <= 100
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Bytes {
        Bytes::from(value.to_string())
    }

    fn charge_code(value: Value) -> String {
        parse_charge(&body(value))
            .err()
            .map(|e| e.code)
            .unwrap_or_default()
    }

    fn valid() -> Value {
        serde_json::json!({
            "customerKey": "cust_1", "amount": 4900, "orderId": "order-0001",
            "orderName": "토스 프라임 구독", "unknownField": null
        })
    }

    fn with(field: &str, value: Value) -> Value {
        let mut v = valid();
        v[field] = value;
        v
    }

    #[test]
    fn a_valid_charge_body_with_unknown_fields_is_accepted() {
        assert!(parse_charge(&body(valid())).is_ok());
    }

    #[test]
    fn a_fractional_amount_is_an_invalid_request_but_a_whole_float_is_fine() {
        assert_eq!(
            charge_code(with("amount", serde_json::json!(1500.5))),
            "INVALID_REQUEST"
        );
        assert_eq!(
            charge_code(with("amount", serde_json::json!("4900"))),
            "INVALID_REQUEST"
        );
        assert!(parse_charge(&body(with("amount", serde_json::json!(4900.0)))).is_ok());
    }

    #[test]
    fn amounts_below_one_hundred_and_at_most_zero_have_their_own_codes() {
        assert_eq!(
            charge_code(with("amount", serde_json::json!(99))),
            "BELOW_MINIMUM_AMOUNT"
        );
        assert_eq!(
            charge_code(with("amount", serde_json::json!(0))),
            "BELOW_ZERO_AMOUNT"
        );
        assert_eq!(
            charge_code(with("amount", serde_json::json!(-100))),
            "BELOW_ZERO_AMOUNT"
        );
    }

    #[test]
    fn order_ids_follow_the_six_to_sixty_four_character_charset() {
        assert_eq!(
            charge_code(with("orderId", serde_json::json!("abc12"))),
            "INVALID_ORDER_ID"
        );
        assert_eq!(
            charge_code(with("orderId", serde_json::json!("order=0001"))),
            "INVALID_ORDER_ID"
        );
        assert_eq!(
            charge_code(with("orderId", Value::String("a".repeat(65)))),
            "INVALID_ORDER_ID"
        );
        assert!(parse_charge(&body(with("orderId", Value::String("a".repeat(64))))).is_ok());
    }

    #[test]
    fn order_names_must_have_one_to_one_hundred_characters() {
        assert_eq!(
            charge_code(with("orderName", serde_json::json!(""))),
            "INVALID_ORDER_NAME"
        );
        assert_eq!(
            charge_code(with("orderName", Value::String("가".repeat(101)))),
            "INVALID_ORDER_NAME"
        );
        assert!(parse_charge(&body(with("orderName", Value::String("가".repeat(100))))).is_ok());
    }

    #[test]
    fn a_malformed_email_is_invalid_email() {
        assert_eq!(
            charge_code(with("customerEmail", serde_json::json!("nope"))),
            "INVALID_EMAIL"
        );
        assert!(parse_charge(&body(with("customerEmail", serde_json::json!("a@b.com")))).is_ok());
    }

    #[test]
    fn installments_need_two_to_twelve_months_and_fifty_thousand_won() {
        assert_eq!(
            charge_code(with("cardInstallmentPlan", serde_json::json!(1))),
            "INVALID_CARD_INSTALLMENT_PLAN"
        );
        assert_eq!(
            charge_code(with("cardInstallmentPlan", serde_json::json!(3))),
            "INVALID_CARD_INSTALLMENT_PLAN"
        );
        let mut big = with("cardInstallmentPlan", serde_json::json!(3));
        big["amount"] = serde_json::json!(50_000);
        assert!(parse_charge(&body(big)).is_ok());
    }

    #[test]
    fn a_cancel_needs_a_reason_of_at_most_two_hundred_characters() {
        let code = |v: Value| {
            parse_cancel(&body(v))
                .err()
                .map(|e| e.code)
                .unwrap_or_default()
        };
        assert_eq!(code(serde_json::json!({})), "INVALID_REQUEST");
        assert_eq!(
            code(serde_json::json!({"cancelReason": "가".repeat(201)})),
            "INVALID_REQUEST"
        );
        assert!(parse_cancel(&body(serde_json::json!({"cancelReason": "고객 요청"}))).is_ok());
    }

    #[test]
    fn customer_keys_follow_the_toss_charset_and_length() {
        assert!(valid_customer_key("a1", 50));
        assert!(valid_customer_key("user-1_2=3.4@5", 50));
        assert!(!valid_customer_key("a", 50));
        assert!(!valid_customer_key("has space", 50));
        assert!(!valid_customer_key(&"a".repeat(51), 50));
        assert!(!valid_customer_key("@@ANONYMOUS", 50));
    }
}
