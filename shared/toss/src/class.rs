//! The one reviewed table that turns a Toss failure into what the caller should do
//! (docs/money-rules.md §5, docs/toss-api.md §4.3).
//!
//! Classification is by `code`, never by HTTP status: transcriptions of Toss's tables disagree
//! on statuses. The status matters only when there is no code at all. Anything unrecognised is
//! "outcome unknown", because marking a charge failed when it went through breaks the money
//! invariants, while reconciling an actual failure costs one lookup.

use crate::code::{ErrorCode, Operation};

/// What a failure means for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The customer's card declined this time (limit, balance): retry on a later dunning step.
    SoftDecline,
    /// The card or billing key is unusable: the customer must register a card again.
    NeedsNewCard,
    /// Toss may or may not have acted: look the order up, then retry with the same
    /// `Idempotency-Key` and order id. Never mark the charge failed on this alone.
    OutcomeUnknown,
    /// Toss already processed this order (`DUPLICATED_ORDER_ID`, `ALREADY_PROCESSED_PAYMENT`,
    /// `ALREADY_CANCELED_PAYMENT`): look it up by order id; not a failure.
    AlreadyProcessed,
    /// A bug or misconfiguration on our side (keys, invalid request): stop and alert, never
    /// change a customer's subscription because of it.
    OurFault,
    /// Toss refused this one customer's data (`INVALID_EMAIL`, `INVALID_CUSTOMER_KEY`, a
    /// billing key that belongs to another customerKey): every other customer's requests are
    /// fine, so the work goes on and an operator looks at this customer.
    CustomerData,
    /// A lookup found nothing (`NOT_FOUND_PAYMENT`).
    NotFound,
    /// The customer-side step of this operation was refused (a card that cannot be registered,
    /// a refund the institution refused): a decline of that operation, not our fault.
    Rejected,
}

/// An answer we could not read. Only an auth failure is certain to have done nothing;
/// everything else (5xx, 429, a 200 with a truncated body, a proxy page) may hide a charge.
pub(crate) fn class_without_code(status: u16) -> ErrorClass {
    match status {
        401 | 403 => ErrorClass::OurFault,
        _ => ErrorClass::OutcomeUnknown,
    }
}

/// The table. At registration (`IssueBillingKey`), every customer-side card problem is a
/// `Rejected` registration instead of a renewal decline.
pub fn class_of_code(operation: Operation, code: &ErrorCode) -> ErrorClass {
    use ErrorClass::*;
    use ErrorCode as C;

    let class = match code {
        C::RejectCardPayment
        | C::ExceedMaxDailyPaymentCount
        | C::ExceedMaxPaymentAmount
        | C::ExceedMaxAmount
        | C::RejectCardCompany
        | C::InvalidRejectCard
        | C::ExceedMaxAuthCount
        | C::RejectAccountPayment
        // "계좌는 등록 후 12시간 뒤부터 결제할 수 있습니다": it will work later.
        | C::RestrictedTransferAccount => SoftDecline,

        C::InvalidCardExpiration
        | C::InvalidStoppedCard
        | C::InvalidCardLostOrStolen
        | C::InvalidCardNumber
        | C::NotSupportedCardType
        | C::NotRegisteredCardCompany
        | C::InvalidBillKeyRequest
        | C::NotFoundBilling
        | C::AlreadyRemovedBillingKey
        // Card-data and auth codes of registration; if a charge ever sees them, the key is bad.
        | C::InvalidCardPassword
        | C::InvalidCardIdentity
        | C::InvalidBirthDayFormat
        | C::InvalidBillingAuth => NeedsNewCard,

        C::IdempotentRequestProcessing
        | C::ProviderError
        | C::FailedInternalSystemProcessing
        | C::FailedPaymentInternalSystemProcessing
        | C::FailedCardCompanyResponse
        | C::FailedDbProcessing
        | C::FailedBillKeyAuthCreation
        | C::FailedRefundProcess
        | C::FailedMethodHandlingCancel
        | C::UnknownPaymentError
        | C::CommonError
        | C::UnknownError
        | C::ForbiddenConsecutiveRequest => OutcomeUnknown,

        C::DuplicatedOrderId | C::AlreadyProcessedPayment | C::AlreadyCanceledPayment => {
            AlreadyProcessed
        }

        C::UnauthorizedKey
        | C::InvalidApiKey
        | C::IncorrectBasicAuthFormat
        | C::InvalidRequest
        | C::InvalidOrderId
        | C::InvalidOrderName
        | C::BelowMinimumAmount
        | C::BelowZeroAmount
        | C::InvalidIdempotencyKey
        | C::NotSupportedMethod
        | C::ForbiddenRequest
        | C::InvalidCardInstallmentPlan
        | C::NotSupportedInstallmentPlanCardOrMerchant
        | C::NotSupportedMonthlyInstallmentPlan
        | C::ApiVersionUpdateNeeded
        | C::InvalidTestCode
        // Cancel requests that do not fit the payment's state: our bookkeeping is off.
        | C::NotCancelableAmount
        | C::NotCancelablePayment
        | C::NotMatchesRefundableAmount
        | C::ExceedMaxRefundDue
        | C::NotAllowedPartialRefund => OurFault,

        C::InvalidCustomerKey | C::InvalidEmail | C::NotMatchesCustomerKey => CustomerData,

        C::NotFoundPayment => NotFound,

        C::RefundRejected => Rejected,

        C::Other(_) => OutcomeUnknown,
    };

    match (operation, class) {
        (Operation::IssueBillingKey, SoftDecline | NeedsNewCard) => Rejected,
        (_, class) => class,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use ErrorClass::*;

    fn api(operation: Operation, status: u16, code: &str) -> Error {
        Error::Api {
            operation,
            status,
            code: ErrorCode::parse(code),
            message: "메시지".into(),
            trace_id: None,
        }
    }

    fn decode(status: u16) -> Error {
        let source = serde_json::from_str::<serde_json::Value>("<html>").unwrap_err();
        Error::Decode {
            operation: Operation::Charge,
            status,
            body_snippet: "<html>".into(),
            source,
        }
    }

    /// (code, class for a charge, class at registration), for every named code.
    const TABLE: &[(&str, ErrorClass, ErrorClass)] = &[
        ("REJECT_CARD_PAYMENT", SoftDecline, Rejected),
        ("EXCEED_MAX_DAILY_PAYMENT_COUNT", SoftDecline, Rejected),
        ("EXCEED_MAX_PAYMENT_AMOUNT", SoftDecline, Rejected),
        ("EXCEED_MAX_AMOUNT", SoftDecline, Rejected),
        ("REJECT_CARD_COMPANY", SoftDecline, Rejected),
        ("INVALID_REJECT_CARD", SoftDecline, Rejected),
        ("EXCEED_MAX_AUTH_COUNT", SoftDecline, Rejected),
        ("REJECT_ACCOUNT_PAYMENT", SoftDecline, Rejected),
        ("RESTRICTED_TRANSFER_ACCOUNT", SoftDecline, Rejected),
        ("INVALID_CARD_EXPIRATION", NeedsNewCard, Rejected),
        ("INVALID_STOPPED_CARD", NeedsNewCard, Rejected),
        ("INVALID_CARD_LOST_OR_STOLEN", NeedsNewCard, Rejected),
        ("INVALID_CARD_NUMBER", NeedsNewCard, Rejected),
        ("NOT_SUPPORTED_CARD_TYPE", NeedsNewCard, Rejected),
        ("NOT_REGISTERED_CARD_COMPANY", NeedsNewCard, Rejected),
        ("INVALID_BILL_KEY_REQUEST", NeedsNewCard, Rejected),
        ("NOT_FOUND_BILLING", NeedsNewCard, Rejected),
        ("ALREADY_REMOVED_BILLING_KEY", NeedsNewCard, Rejected),
        ("INVALID_CARD_PASSWORD", NeedsNewCard, Rejected),
        ("INVALID_CARD_IDENTITY", NeedsNewCard, Rejected),
        ("INVALID_BIRTH_DAY_FORMAT", NeedsNewCard, Rejected),
        ("INVALID_BILLING_AUTH", NeedsNewCard, Rejected),
        (
            "IDEMPOTENT_REQUEST_PROCESSING",
            OutcomeUnknown,
            OutcomeUnknown,
        ),
        ("PROVIDER_ERROR", OutcomeUnknown, OutcomeUnknown),
        (
            "FAILED_INTERNAL_SYSTEM_PROCESSING",
            OutcomeUnknown,
            OutcomeUnknown,
        ),
        (
            "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING",
            OutcomeUnknown,
            OutcomeUnknown,
        ),
        (
            "FAILED_CARD_COMPANY_RESPONSE",
            OutcomeUnknown,
            OutcomeUnknown,
        ),
        ("FAILED_DB_PROCESSING", OutcomeUnknown, OutcomeUnknown),
        (
            "FAILED_BILL_KEY_AUTH_CREATION",
            OutcomeUnknown,
            OutcomeUnknown,
        ),
        ("FAILED_REFUND_PROCESS", OutcomeUnknown, OutcomeUnknown),
        (
            "FAILED_METHOD_HANDLING_CANCEL",
            OutcomeUnknown,
            OutcomeUnknown,
        ),
        ("UNKNOWN_PAYMENT_ERROR", OutcomeUnknown, OutcomeUnknown),
        ("COMMON_ERROR", OutcomeUnknown, OutcomeUnknown),
        ("UNKNOWN_ERROR", OutcomeUnknown, OutcomeUnknown),
        (
            "FORBIDDEN_CONSECUTIVE_REQUEST",
            OutcomeUnknown,
            OutcomeUnknown,
        ),
        ("DUPLICATED_ORDER_ID", AlreadyProcessed, AlreadyProcessed),
        (
            "ALREADY_PROCESSED_PAYMENT",
            AlreadyProcessed,
            AlreadyProcessed,
        ),
        (
            "ALREADY_CANCELED_PAYMENT",
            AlreadyProcessed,
            AlreadyProcessed,
        ),
        ("UNAUTHORIZED_KEY", OurFault, OurFault),
        ("INVALID_API_KEY", OurFault, OurFault),
        ("INCORRECT_BASIC_AUTH_FORMAT", OurFault, OurFault),
        ("INVALID_REQUEST", OurFault, OurFault),
        ("INVALID_ORDER_ID", OurFault, OurFault),
        ("INVALID_ORDER_NAME", OurFault, OurFault),
        ("INVALID_CUSTOMER_KEY", CustomerData, CustomerData),
        ("INVALID_EMAIL", CustomerData, CustomerData),
        ("BELOW_MINIMUM_AMOUNT", OurFault, OurFault),
        ("BELOW_ZERO_AMOUNT", OurFault, OurFault),
        ("INVALID_IDEMPOTENCY_KEY", OurFault, OurFault),
        ("NOT_MATCHES_CUSTOMER_KEY", CustomerData, CustomerData),
        ("NOT_SUPPORTED_METHOD", OurFault, OurFault),
        ("FORBIDDEN_REQUEST", OurFault, OurFault),
        ("INVALID_CARD_INSTALLMENT_PLAN", OurFault, OurFault),
        (
            "NOT_SUPPORTED_INSTALLMENT_PLAN_CARD_OR_MERCHANT",
            OurFault,
            OurFault,
        ),
        ("NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN", OurFault, OurFault),
        ("API_VERSION_UPDATE_NEEDED", OurFault, OurFault),
        ("INVALID_TEST_CODE", OurFault, OurFault),
        ("NOT_CANCELABLE_AMOUNT", OurFault, OurFault),
        ("NOT_CANCELABLE_PAYMENT", OurFault, OurFault),
        ("NOT_MATCHES_REFUNDABLE_AMOUNT", OurFault, OurFault),
        ("EXCEED_MAX_REFUND_DUE", OurFault, OurFault),
        ("NOT_ALLOWED_PARTIAL_REFUND", OurFault, OurFault),
        ("NOT_FOUND_PAYMENT", NotFound, NotFound),
        ("REFUND_REJECTED", Rejected, Rejected),
    ];

    #[test]
    fn every_listed_code_has_its_reviewed_class_for_a_charge_and_at_registration() {
        for &(code, charge, issue) in TABLE {
            let err = api(Operation::Charge, 400, code);
            assert_eq!(err.class(), charge, "{code} on a charge");
            let err = api(Operation::IssueBillingKey, 400, code);
            assert_eq!(err.class(), issue, "{code} at registration");
        }
    }

    #[test]
    fn the_test_table_covers_every_named_code_exactly_once() {
        for code in ErrorCode::KNOWN {
            let rows = TABLE.iter().filter(|row| row.0 == code.as_str()).count();
            assert_eq!(rows, 1, "{} must appear once in TABLE", code.as_str());
        }
        assert_eq!(TABLE.len(), ErrorCode::KNOWN.len());
    }

    #[test]
    fn lookups_cancels_and_deletes_classify_like_charges() {
        for &(code, charge, _) in TABLE {
            for op in [
                Operation::LookUp,
                Operation::Cancel,
                Operation::DeleteBillingKey,
            ] {
                assert_eq!(api(op, 400, code).class(), charge, "{code} on {op}");
            }
        }
    }

    #[test]
    fn the_class_follows_the_code_whatever_the_http_status() {
        assert_eq!(
            api(Operation::Charge, 401, "REJECT_CARD_PAYMENT").class(),
            SoftDecline
        );
        assert_eq!(
            api(Operation::Charge, 500, "INVALID_REQUEST").class(),
            OurFault
        );
        assert_eq!(
            api(Operation::Charge, 200, "PROVIDER_ERROR").class(),
            OutcomeUnknown
        );
    }

    #[test]
    fn an_unknown_code_is_an_unknown_outcome_for_every_operation_and_status() {
        for op in [
            Operation::IssueBillingKey,
            Operation::Charge,
            Operation::LookUp,
            Operation::Cancel,
            Operation::DeleteBillingKey,
        ] {
            for status in [400, 401, 403, 404, 409, 429, 500, 503] {
                let err = api(op, status, "SOMETHING_TOSS_ADDED_LATER");
                assert_eq!(err.class(), OutcomeUnknown, "{op} {status}");
                assert!(err.is_retryable());
            }
        }
    }

    #[test]
    fn timeouts_and_transport_failures_are_unknown_outcomes() {
        let err = Error::Timeout {
            operation: Operation::Charge,
        };
        assert_eq!(err.class(), OutcomeUnknown);
        assert!(err.is_retryable());
    }

    #[test]
    fn an_answer_without_a_code_is_unknown_unless_it_is_an_auth_failure() {
        for status in [200, 400, 404, 409, 429, 500, 502, 503, 504] {
            assert_eq!(decode(status).class(), OutcomeUnknown, "{status}");
            assert!(decode(status).is_retryable());
        }
        for status in [401, 403] {
            assert_eq!(decode(status).class(), OurFault, "{status}");
            assert!(!decode(status).is_retryable());
        }
    }

    #[test]
    fn only_unknown_outcomes_and_already_processed_orders_are_retryable() {
        assert!(api(Operation::Charge, 400, "DUPLICATED_ORDER_ID").is_retryable());
        assert!(api(Operation::Charge, 409, "IDEMPOTENT_REQUEST_PROCESSING").is_retryable());
        for code in [
            "REJECT_CARD_PAYMENT",
            "INVALID_STOPPED_CARD",
            "UNAUTHORIZED_KEY",
            "NOT_FOUND_PAYMENT",
        ] {
            assert!(!api(Operation::Charge, 400, code).is_retryable(), "{code}");
        }
        assert!(!Error::InvalidConfig("x".into()).is_retryable());
        assert_eq!(Error::InvalidConfig("x".into()).class(), OurFault);
    }

    #[test]
    fn the_code_accessor_returns_tosss_spelling_only_for_api_errors() {
        assert_eq!(
            api(Operation::Charge, 400, "NEW_CODE").code(),
            Some("NEW_CODE")
        );
        assert_eq!(decode(500).code(), None);
    }
}
