//! Toss error bodies (`{"code","message"}`) and the catalogue of codes the sandbox knows.
//!
//! Statuses and Korean messages come from the official full error list (docs.tosspayments.com
//! `reference/error-codes`); the few codes missing there are marked in [`CATALOG`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// An error answer in Toss's v1 shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    /// The error for a catalogued code, with its status and Korean message.
    /// An uncatalogued code gets 400 and a generic message.
    pub fn of(code: &str) -> Self {
        match lookup(code) {
            Some(entry) => Self {
                status: entry.status,
                code: entry.code.to_owned(),
                message: entry.message.to_owned(),
            },
            None => Self {
                status: 400,
                code: code.to_owned(),
                message: "요청을 처리할 수 없습니다.".to_owned(),
            },
        }
    }

    /// A catalogued code with a more specific message.
    pub fn with_message(code: &str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::of(code)
        }
    }

    /// Any code, status and message (fault knobs, forced declines).
    pub fn custom(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::with_message("INVALID_REQUEST", message)
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn body(&self) -> String {
        serde_json::json!({ "code": self.code, "message": self.message }).to_string()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status_code(),
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.body(),
        )
            .into_response()
    }
}

/// One catalogued error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogEntry {
    pub code: &'static str,
    pub status: u16,
    pub message: &'static str,
}

const fn e(code: &'static str, status: u16, message: &'static str) -> CatalogEntry {
    CatalogEntry {
        code,
        status,
        message,
    }
}

/// Codes the sandbox can answer, e.g. through `TossPayments-Test-Code`.
pub const CATALOG: &[CatalogEntry] = &[
    // --- request / key errors
    e("INVALID_REQUEST", 400, "잘못된 요청입니다."),
    e(
        "INVALID_REQUIRED_PARAM",
        400,
        "필수 파라미터가 누락되었습니다.",
    ),
    e("INVALID_API_KEY", 400, "잘못된 시크릿키 연동 정보 입니다."),
    e(
        "INVALID_CLIENT_KEY",
        400,
        "잘못된 클라이언트 연동 정보 입니다.",
    ),
    // not in the official list; message from third-party enum transcriptions
    e(
        "INCORRECT_BASIC_AUTH_FORMAT",
        400,
        "잘못된 요청입니다. ':' 를 포함해 인코딩해주세요.",
    ),
    e(
        "UNAUTHORIZED_KEY",
        401,
        "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.",
    ),
    e("FORBIDDEN_REQUEST", 403, "허용되지 않은 요청입니다."),
    e(
        "FORBIDDEN_CONSECUTIVE_REQUEST",
        403,
        "반복적인 요청은 허용되지 않습니다. 잠시 후 다시 시도해주세요.",
    ),
    e("INVALID_TEST_CODE", 400, "유효하지 않은 테스트 코드입니다."),
    e(
        "INVALID_IDEMPOTENCY_KEY",
        400,
        "멱등키는 300자 이하여야 합니다.",
    ),
    e(
        "IDEMPOTENT_REQUEST_PROCESSING",
        409,
        "이전 멱등 요청이 처리중입니다.",
    ),
    e(
        "API_VERSION_UPDATE_NEEDED",
        400,
        "이 API를 사용하려면 [VERSION] 이상의 버전을 사용해야 합니다. 개발자센터(https://developers.tosspayments.com)에서 버전을 변경해주세요.",
    ),
    // --- field validation
    e(
        "INVALID_ORDER_ID",
        400,
        "`orderId`는 영문 대소문자, 숫자, 특수문자(-, _) 만 허용합니다. 6자 이상 64자 이하여야 합니다.",
    ),
    e(
        "INVALID_ORDER_NAME",
        400,
        "주문 이름은 100자 이하여야 합니다.",
    ),
    e(
        "INVALID_CUSTOMER_KEY",
        400,
        "`customerKey`는 영문 대소문자, 숫자, 특수문자 -, _, =, ., @로 2자 이상 255자 이하여야 합니다.",
    ),
    e("INVALID_EMAIL", 400, "이메일 주소 형식에 맞지 않습니다."),
    e(
        "BELOW_MINIMUM_AMOUNT",
        400,
        "신용카드는 결제금액이 100원 이상, 계좌는 200원이상부터 결제가 가능합니다.",
    ),
    e("BELOW_ZERO_AMOUNT", 400, "금액은 0보다 커야 합니다."),
    e("REQUIRED_AMOUNT", 400, "금액 값이 필수입니다."),
    e("INVALID_PAYMENT_KEY", 400, "잘못된 결제 키 입니다."),
    e(
        "INVALID_CARD_INSTALLMENT_PLAN",
        400,
        "할부 개월 정보가 잘못되었습니다.",
    ),
    e(
        "NOT_SUPPORTED_INSTALLMENT_PLAN_CARD_OR_MERCHANT",
        400,
        "할부가 지원되지 않는 카드 또는 가맹점 입니다.",
    ),
    e(
        "NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN",
        400,
        "할부 또는 무이자 할부가 지원되지 않는 카드입니다.",
    ),
    // --- billing auth / billing keys
    e(
        "INVALID_BILLING_AUTH",
        400,
        "유효하지 않은 빌링 인증입니다.",
    ),
    e(
        "NOT_FOUND_BILLING",
        404,
        "존재하지 않는 빌링 결제 인증 정보 입니다.",
    ),
    e(
        "INVALID_BILL_KEY_REQUEST",
        400,
        "빌링키 인증이 완료되지 않았거나 유효하지 않은 빌링 거래 건입니다.",
    ),
    // only a bare enum string in the official catalogue; message from a third-party mock
    e(
        "ALREADY_REMOVED_BILLING_KEY",
        400,
        "이미 삭제된 빌링키입니다.",
    ),
    e(
        "NOT_MATCHES_CUSTOMER_KEY",
        400,
        "빌링 인증 고객키와 결제 요청 고객키가 일치하지 않습니다.",
    ),
    e("NOT_SUPPORTED_METHOD", 400, "지원되지 않는 결제수단입니다."),
    e(
        "FAILED_BILL_KEY_AUTH_CREATION",
        500,
        "빌링 결제 인증 중 키 생성에 실패했습니다. 잠시 후 다시 시도해주세요.",
    ),
    // --- card declines
    e("INVALID_CARD_NUMBER", 400, "카드번호를 다시 확인해주세요."),
    e(
        "INVALID_CARD_EXPIRATION",
        400,
        "카드 정보를 다시 확인해주세요.(유효기간)",
    ),
    e(
        "INVALID_CARD_PASSWORD",
        400,
        "카드 정보를 다시 확인해주세요.(비밀번호)",
    ),
    e(
        "INVALID_CARD_IDENTITY",
        400,
        "입력하신 주민번호/사업자번호가 카드 소유주 정보와 일치하지 않습니다.",
    ),
    e(
        "INVALID_BIRTH_DAY_FORMAT",
        400,
        "생년월일 정보는 6자리의 yyMMdd 형식이어야 합니다. 사업자등록번호는 10자리의 숫자여야 합니다.",
    ),
    e("INVALID_STOPPED_CARD", 400, "정지된 카드 입니다."),
    e(
        "INVALID_REJECT_CARD",
        400,
        "카드 사용이 거절되었습니다. 카드사 문의가 필요합니다.",
    ),
    // from third-party transcriptions of the confirm table
    e(
        "INVALID_CARD_LOST_OR_STOLEN",
        400,
        "분실 혹은 도난 카드입니다.",
    ),
    e(
        "NOT_SUPPORTED_CARD_TYPE",
        400,
        "지원되지 않는 카드 종류입니다.",
    ),
    e(
        "NOT_REGISTERED_CARD_COMPANY",
        400,
        "카드를 사용 등록 후 이용해주세요.",
    ),
    e("EXCEED_MAX_AMOUNT", 400, "거래금액 한도를 초과했습니다."),
    e(
        "EXCEED_MAX_DAILY_PAYMENT_COUNT",
        400,
        "하루 결제 가능 횟수를 초과했습니다.",
    ),
    e(
        "EXCEED_MAX_PAYMENT_AMOUNT",
        400,
        "하루 결제 가능 금액을 초과했습니다.",
    ),
    e(
        "EXCEED_MAX_AUTH_COUNT",
        403,
        "최대 인증 횟수를 초과했습니다. 카드사로 문의해주세요.",
    ),
    // 403 per the confirm table [3P]; not in the official full list
    e(
        "REJECT_CARD_PAYMENT",
        403,
        "한도초과 혹은 잔액부족으로 결제에 실패했습니다.",
    ),
    e("REJECT_CARD_COMPANY", 403, "결제 승인이 거절되었습니다."),
    e(
        "REJECT_ACCOUNT_PAYMENT",
        403,
        "잔액부족으로 결제에 실패했습니다.",
    ),
    // --- orders / payments
    e(
        "DUPLICATED_ORDER_ID",
        400,
        "이미 승인 및 취소가 진행된 중복된 주문번호 입니다. 다른 주문번호로 진행해주세요.",
    ),
    e("ALREADY_PROCESSED_PAYMENT", 400, "이미 처리된 결제 입니다."),
    e("NOT_FOUND_PAYMENT", 404, "존재하지 않는 결제 정보 입니다."),
    e("NOT_FOUND", 404, "존재하지 않는 정보 입니다."),
    e(
        "NOT_FOUND_HTTP_METHOD",
        404,
        "존재하지 않는 HTTP 메소드 접근입니다.",
    ),
    // --- cancel
    e("ALREADY_CANCELED_PAYMENT", 400, "이미 취소된 결제 입니다."),
    e("NOT_CANCELABLE_AMOUNT", 403, "취소 할 수 없는 금액 입니다."),
    e(
        "NOT_CANCELABLE_PAYMENT",
        403,
        "취소 할 수 없는 결제 입니다.",
    ),
    e(
        "NOT_MATCHES_REFUNDABLE_AMOUNT",
        400,
        "잔액 결과가 일치하지 않습니다.",
    ),
    e(
        "EXCEED_MAX_REFUND_DUE",
        403,
        "환불 가능한 기간이 초과했습니다.",
    ),
    e(
        "NOT_ALLOWED_PARTIAL_REFUND",
        403,
        "에스크로 주문, 현금 카드 결제 등의 사유로 부분 환불이 불가합니다.",
    ),
    e(
        "REFUND_REJECTED",
        400,
        "환불이 거절됐습니다. 결제사에 문의 부탁드립니다.",
    ),
    e(
        "FAILED_REFUND_PROCESS",
        500,
        "은행 응답시간 지연이나 일시적인 오류로 환불요청에 실패했습니다.",
    ),
    e(
        "FAILED_METHOD_HANDLING_CANCEL",
        500,
        "취소 중 결제 시 사용한 결제수단 처리과정에서 일시적인 오류가 발생했습니다.",
    ),
    // --- provider / server
    e(
        "PROVIDER_ERROR",
        400,
        "일시적인 오류가 발생했습니다. 잠시 후 다시 시도해주세요.",
    ),
    e(
        "FAILED_INTERNAL_SYSTEM_PROCESSING",
        500,
        "내부 시스템 처리 작업이 실패했습니다. 잠시 후 다시 시도해주세요.",
    ),
    e(
        "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING",
        500,
        "결제 기관(카드사, 은행, 국세청 등) 오류입니다. 결제 기관에서 보내 준 에러 메시지가 표시됩니다.",
    ),
    e(
        "FAILED_DB_PROCESSING",
        500,
        "잘못된 요청 값으로 처리 중 DB 에러가 발생했습니다.",
    ),
    e(
        "FAILED_CARD_COMPANY_RESPONSE",
        500,
        "카드사에서 에러가 발생했습니다. 잠시 후 다시 시도해 주세요.",
    ),
    e(
        "UNKNOWN_PAYMENT_ERROR",
        500,
        "결제에 실패했어요. 같은 문제가 반복된다면 은행이나 카드사로 문의해주세요.",
    ),
    e(
        "COMMON_ERROR",
        500,
        "일시적인 오류가 발생했습니다. 잠시 후 다시 시도해주세요.",
    ),
    e(
        "UNKNOWN_ERROR",
        500,
        "확인되지 않은 오류입니다. 잠시 후 다시 시도해주세요.",
    ),
    // not a Toss code: the sandbox's default body for an injected 429
    e(
        "TOO_MANY_REQUESTS",
        429,
        "비정상적으로 많은 요청이 발생했습니다. 잠시 후 다시 시도해주세요.",
    ),
    // --- billing window (failUrl) codes
    e(
        "PAY_PROCESS_CANCELED",
        400,
        "결제가 사용자에 의해 취소되었습니다.",
    ),
    e(
        "PAY_PROCESS_ABORTED",
        400,
        "결제가 취소되었거나 진행되지 않았습니다.",
    ),
];

/// The catalogue entry for a code, if known.
pub fn lookup(code: &str) -> Option<&'static CatalogEntry> {
    CATALOG.iter().find(|entry| entry.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogued_code_appears_once() {
        let mut codes: Vec<_> = CATALOG.iter().map(|entry| entry.code).collect();
        codes.sort_unstable();
        let before = codes.len();
        codes.dedup();
        assert_eq!(before, codes.len());
    }

    #[test]
    fn an_uncatalogued_code_becomes_a_400_with_that_code() {
        let error = ApiError::of("SOMETHING_NEW");
        assert_eq!((error.status, error.code.as_str()), (400, "SOMETHING_NEW"));
    }

    #[test]
    fn reject_card_payment_is_a_403_about_the_limit_or_balance() {
        let error = ApiError::of("REJECT_CARD_PAYMENT");
        assert_eq!(error.status, 403);
        assert!(error.message.contains("한도초과 혹은 잔액부족"));
    }
}
