//! The two vocabularies every Toss failure is described in: which client operation failed, and
//! the error `code` Toss sent. Both the error type and the classification table build on them.

use std::fmt;

/// The client operation that failed; part of an error because the same code can mean different
/// things for different endpoints (an invalid card at registration is not a renewal decline).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /v1/billing/authorizations/issue`
    IssueBillingKey,
    /// `POST /v1/billing/{billingKey}`
    Charge,
    /// `GET /v1/payments/{paymentKey}` and `GET /v1/payments/orders/{orderId}`
    LookUp,
    /// `POST /v1/payments/{paymentKey}/cancel`
    Cancel,
    /// `DELETE /v1/billing/{billingKey}`
    DeleteBillingKey,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::IssueBillingKey => "issue_billing_key",
            Operation::Charge => "charge",
            Operation::LookUp => "look_up",
            Operation::Cancel => "cancel",
            Operation::DeleteBillingKey => "delete_billing_key",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! error_codes {
    ($($variant:ident = $text:literal,)*) => {
        /// A Toss error `code`. Every code `docs/toss-api.md` §4–§5 names has a variant; codes Toss adds
        /// later arrive as `Other` and are kept verbatim.
        #[non_exhaustive]
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(
                #[doc = $text]
                $variant,
            )*
            /// A code this client does not know yet.
            Other(String),
        }

        impl ErrorCode {
            /// Every named code, for exhaustive tests of the classification table.
            pub const KNOWN: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn parse(code: &str) -> Self {
                match code {
                    $($text => ErrorCode::$variant,)*
                    other => ErrorCode::Other(other.to_owned()),
                }
            }

            /// The code exactly as Toss spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                    ErrorCode::Other(other) => other,
                }
            }
        }
    };
}

error_codes! {
    // Keys, auth and headers
    UnauthorizedKey = "UNAUTHORIZED_KEY",
    InvalidApiKey = "INVALID_API_KEY",
    IncorrectBasicAuthFormat = "INCORRECT_BASIC_AUTH_FORMAT",
    InvalidIdempotencyKey = "INVALID_IDEMPOTENCY_KEY",
    IdempotentRequestProcessing = "IDEMPOTENT_REQUEST_PROCESSING",
    InvalidTestCode = "INVALID_TEST_CODE",
    ApiVersionUpdateNeeded = "API_VERSION_UPDATE_NEEDED",
    ForbiddenRequest = "FORBIDDEN_REQUEST",
    ForbiddenConsecutiveRequest = "FORBIDDEN_CONSECUTIVE_REQUEST",
    // Request validation
    InvalidRequest = "INVALID_REQUEST",
    InvalidOrderId = "INVALID_ORDER_ID",
    InvalidOrderName = "INVALID_ORDER_NAME",
    InvalidCustomerKey = "INVALID_CUSTOMER_KEY",
    InvalidEmail = "INVALID_EMAIL",
    BelowMinimumAmount = "BELOW_MINIMUM_AMOUNT",
    BelowZeroAmount = "BELOW_ZERO_AMOUNT",
    NotMatchesCustomerKey = "NOT_MATCHES_CUSTOMER_KEY",
    NotSupportedMethod = "NOT_SUPPORTED_METHOD",
    InvalidCardInstallmentPlan = "INVALID_CARD_INSTALLMENT_PLAN",
    NotSupportedInstallmentPlanCardOrMerchant = "NOT_SUPPORTED_INSTALLMENT_PLAN_CARD_OR_MERCHANT",
    NotSupportedMonthlyInstallmentPlan = "NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN",
    // Order state
    DuplicatedOrderId = "DUPLICATED_ORDER_ID",
    AlreadyProcessedPayment = "ALREADY_PROCESSED_PAYMENT",
    NotFoundPayment = "NOT_FOUND_PAYMENT",
    // Soft declines
    RejectCardPayment = "REJECT_CARD_PAYMENT",
    ExceedMaxDailyPaymentCount = "EXCEED_MAX_DAILY_PAYMENT_COUNT",
    ExceedMaxPaymentAmount = "EXCEED_MAX_PAYMENT_AMOUNT",
    ExceedMaxAmount = "EXCEED_MAX_AMOUNT",
    RejectCardCompany = "REJECT_CARD_COMPANY",
    InvalidRejectCard = "INVALID_REJECT_CARD",
    ExceedMaxAuthCount = "EXCEED_MAX_AUTH_COUNT",
    RejectAccountPayment = "REJECT_ACCOUNT_PAYMENT",
    RestrictedTransferAccount = "RESTRICTED_TRANSFER_ACCOUNT",
    // The card or billing key is unusable
    InvalidCardExpiration = "INVALID_CARD_EXPIRATION",
    InvalidStoppedCard = "INVALID_STOPPED_CARD",
    InvalidCardLostOrStolen = "INVALID_CARD_LOST_OR_STOLEN",
    InvalidCardNumber = "INVALID_CARD_NUMBER",
    NotSupportedCardType = "NOT_SUPPORTED_CARD_TYPE",
    NotRegisteredCardCompany = "NOT_REGISTERED_CARD_COMPANY",
    InvalidBillKeyRequest = "INVALID_BILL_KEY_REQUEST",
    NotFoundBilling = "NOT_FOUND_BILLING",
    AlreadyRemovedBillingKey = "ALREADY_REMOVED_BILLING_KEY",
    // Card data at registration
    InvalidCardPassword = "INVALID_CARD_PASSWORD",
    InvalidCardIdentity = "INVALID_CARD_IDENTITY",
    InvalidBirthDayFormat = "INVALID_BIRTH_DAY_FORMAT",
    InvalidBillingAuth = "INVALID_BILLING_AUTH",
    // Toss or card-company side failures
    ProviderError = "PROVIDER_ERROR",
    FailedInternalSystemProcessing = "FAILED_INTERNAL_SYSTEM_PROCESSING",
    FailedPaymentInternalSystemProcessing = "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING",
    FailedCardCompanyResponse = "FAILED_CARD_COMPANY_RESPONSE",
    FailedDbProcessing = "FAILED_DB_PROCESSING",
    FailedBillKeyAuthCreation = "FAILED_BILL_KEY_AUTH_CREATION",
    UnknownPaymentError = "UNKNOWN_PAYMENT_ERROR",
    CommonError = "COMMON_ERROR",
    UnknownError = "UNKNOWN_ERROR",
    // Cancel
    AlreadyCanceledPayment = "ALREADY_CANCELED_PAYMENT",
    NotCancelableAmount = "NOT_CANCELABLE_AMOUNT",
    NotCancelablePayment = "NOT_CANCELABLE_PAYMENT",
    NotMatchesRefundableAmount = "NOT_MATCHES_REFUNDABLE_AMOUNT",
    ExceedMaxRefundDue = "EXCEED_MAX_REFUND_DUE",
    NotAllowedPartialRefund = "NOT_ALLOWED_PARTIAL_REFUND",
    RefundRejected = "REFUND_REJECTED",
    FailedRefundProcess = "FAILED_REFUND_PROCESS",
    FailedMethodHandlingCancel = "FAILED_METHOD_HANDLING_CANCEL",
}

impl From<&str> for ErrorCode {
    fn from(code: &str) -> Self {
        ErrorCode::parse(code)
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = std::convert::Infallible;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Ok(ErrorCode::parse(code))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_code_round_trips_through_its_text() {
        for code in ErrorCode::KNOWN {
            assert_eq!(&ErrorCode::parse(code.as_str()), code);
            assert!(!matches!(code, ErrorCode::Other(_)));
        }
    }

    #[test]
    fn an_unknown_code_is_kept_verbatim() {
        let code: ErrorCode = "BRAND_NEW_CODE".parse().unwrap_or(ErrorCode::UnknownError);
        assert_eq!(code, ErrorCode::Other("BRAND_NEW_CODE".into()));
        assert_eq!(code.as_str(), "BRAND_NEW_CODE");
    }
}
