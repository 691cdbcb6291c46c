//! What the routes need from `billing::Billing`, split by route family, so that each route's
//! answers can be tested in-file against a hand-written fake (no table, no Toss). Each method
//! has `Billing`'s own signature; the futures are `Send` so axum can run the routes.

use std::future::Future;

use billing::{
    ChangeOutcome, ConsumeOutcome, ConsumeRequest, Error, PaymentsPage, Registration,
    RegistrationOutcome, Settings, StartedCheckout, TransmissionId, WebhookEvent, WebhookOutcome,
    WithdrawOutcome, Withdrawable,
};
use chrono::{DateTime, Utc};
use domain::{PaymentsCursor, Subscription};
use store::UserView;

/// `POST /v1/checkout` and Toss's success redirect.
pub(crate) trait Checkout: Send + Sync + 'static {
    fn start_checkout(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<StartedCheckout, Error>> + Send;

    fn register_card(
        &self,
        registration: &Registration,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<RegistrationOutcome, Error>> + Send;
}

/// The app's own `/v1` routes: the caller's subscription, credits, cancel/resume/withdraw and
/// payments.
pub(crate) trait Account: Send + Sync + 'static {
    fn settings(&self) -> &Settings;

    fn account(&self, user_id: &str) -> impl Future<Output = Result<UserView, Error>> + Send;

    fn withdrawable(
        &self,
        sub: &Subscription,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Withdrawable>, Error>> + Send;

    fn cancel_subscription(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<ChangeOutcome, Error>> + Send;

    fn resume_subscription(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<ChangeOutcome, Error>> + Send;

    fn withdraw(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<WithdrawOutcome, Error>> + Send;

    fn consume_credits(
        &self,
        user_id: &str,
        request: &ConsumeRequest,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<ConsumeOutcome, Error>> + Send;

    fn remember_consume_answer(
        &self,
        user_id: &str,
        request: &ConsumeRequest,
        status: u16,
        body: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    fn payments(
        &self,
        user_id: &str,
        limit: u32,
        after: Option<PaymentsCursor>,
    ) -> impl Future<Output = Result<PaymentsPage, Error>> + Send;
}

/// `POST /toss/webhooks`.
pub(crate) trait Webhooks: Send + Sync + 'static {
    fn handle_webhook(
        &self,
        id: &TransmissionId,
        event: &WebhookEvent,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<WebhookOutcome, Error>> + Send;
}

impl Checkout for billing::Billing {
    fn start_checkout(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<StartedCheckout, Error>> + Send {
        billing::Billing::start_checkout(self, user_id, now)
    }

    fn register_card(
        &self,
        registration: &Registration,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<RegistrationOutcome, Error>> + Send {
        billing::Billing::register_card(self, registration, now)
    }
}

impl Account for billing::Billing {
    fn settings(&self) -> &Settings {
        billing::Billing::settings(self)
    }

    fn account(&self, user_id: &str) -> impl Future<Output = Result<UserView, Error>> + Send {
        billing::Billing::account(self, user_id)
    }

    fn withdrawable(
        &self,
        sub: &Subscription,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Withdrawable>, Error>> + Send {
        billing::Billing::withdrawable(self, sub, now)
    }

    fn cancel_subscription(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<ChangeOutcome, Error>> + Send {
        billing::Billing::cancel_subscription(self, user_id, now)
    }

    fn resume_subscription(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<ChangeOutcome, Error>> + Send {
        billing::Billing::resume_subscription(self, user_id, now)
    }

    fn withdraw(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<WithdrawOutcome, Error>> + Send {
        billing::Billing::withdraw(self, user_id, now)
    }

    fn consume_credits(
        &self,
        user_id: &str,
        request: &ConsumeRequest,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<ConsumeOutcome, Error>> + Send {
        billing::Billing::consume_credits(self, user_id, request, now)
    }

    fn remember_consume_answer(
        &self,
        user_id: &str,
        request: &ConsumeRequest,
        status: u16,
        body: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        billing::Billing::remember_consume_answer(self, user_id, request, status, body)
    }

    fn payments(
        &self,
        user_id: &str,
        limit: u32,
        after: Option<PaymentsCursor>,
    ) -> impl Future<Output = Result<PaymentsPage, Error>> + Send {
        billing::Billing::payments(self, user_id, limit, after)
    }
}

impl Webhooks for billing::Billing {
    fn handle_webhook(
        &self,
        id: &TransmissionId,
        event: &WebhookEvent,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<WebhookOutcome, Error>> + Send {
        billing::Billing::handle_webhook(self, id, event, now)
    }
}

/// A hand-written fake of every capability: each use case answers what the test put in its
/// slot, once, and records who asked. A use case the test gave no answer panics, so a test
/// also proves which use cases a request reached.
#[cfg(test)]
pub(crate) mod fake {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::{Arc, Mutex};

    use super::*;

    pub(crate) use billing::testing::Slot;

    #[derive(Debug)]
    pub(crate) struct Fake {
        pub settings: Settings,
        pub start_checkout: Slot<StartedCheckout>,
        pub register_card: Slot<RegistrationOutcome>,
        pub account: Slot<UserView>,
        pub withdrawable: Slot<Option<Withdrawable>>,
        pub cancel_subscription: Slot<ChangeOutcome>,
        pub resume_subscription: Slot<ChangeOutcome>,
        pub withdraw: Slot<WithdrawOutcome>,
        pub consume_credits: Slot<ConsumeOutcome>,
        pub remember_consume_answer: Slot<()>,
        pub payments: Slot<PaymentsPage>,
        pub handle_webhook: Slot<WebhookOutcome>,
        /// `"<use case> <what it was given>"`, in order; shared so a test reads it after the
        /// fake moved into the router.
        pub calls: Arc<Mutex<Vec<String>>>,
    }

    impl Fake {
        pub(crate) fn new() -> Self {
            Self {
                settings: crate::state::testing::settings(),
                start_checkout: Slot::default(),
                register_card: Slot::default(),
                account: Slot::default(),
                withdrawable: Slot::default(),
                cancel_subscription: Slot::default(),
                resume_subscription: Slot::default(),
                withdraw: Slot::default(),
                consume_credits: Slot::default(),
                remember_consume_answer: Slot::default(),
                payments: Slot::default(),
                handle_webhook: Slot::default(),
                calls: Arc::default(),
            }
        }

        fn called(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }
    }

    impl Checkout for Fake {
        async fn start_checkout(
            &self,
            user_id: &str,
            _now: DateTime<Utc>,
        ) -> Result<StartedCheckout, Error> {
            self.called(format!("start_checkout {user_id}"));
            self.start_checkout.take("start_checkout")
        }

        async fn register_card(
            &self,
            registration: &Registration,
            _now: DateTime<Utc>,
        ) -> Result<RegistrationOutcome, Error> {
            self.called(format!(
                "register_card {}",
                registration.customer_key.as_str()
            ));
            self.register_card.take("register_card")
        }
    }

    impl Account for Fake {
        fn settings(&self) -> &Settings {
            &self.settings
        }

        async fn account(&self, user_id: &str) -> Result<UserView, Error> {
            self.called(format!("account {user_id}"));
            self.account.take("account")
        }

        async fn withdrawable(
            &self,
            sub: &Subscription,
            _now: DateTime<Utc>,
        ) -> Result<Option<Withdrawable>, Error> {
            self.called(format!("withdrawable {}", sub.id().as_str()));
            self.withdrawable.take("withdrawable")
        }

        async fn cancel_subscription(
            &self,
            user_id: &str,
            _now: DateTime<Utc>,
        ) -> Result<ChangeOutcome, Error> {
            self.called(format!("cancel_subscription {user_id}"));
            self.cancel_subscription.take("cancel_subscription")
        }

        async fn resume_subscription(
            &self,
            user_id: &str,
            _now: DateTime<Utc>,
        ) -> Result<ChangeOutcome, Error> {
            self.called(format!("resume_subscription {user_id}"));
            self.resume_subscription.take("resume_subscription")
        }

        async fn withdraw(
            &self,
            user_id: &str,
            _now: DateTime<Utc>,
        ) -> Result<WithdrawOutcome, Error> {
            self.called(format!("withdraw {user_id}"));
            self.withdraw.take("withdraw")
        }

        async fn consume_credits(
            &self,
            user_id: &str,
            request: &ConsumeRequest,
            _now: DateTime<Utc>,
        ) -> Result<ConsumeOutcome, Error> {
            self.called(format!(
                "consume_credits {user_id} {} key={}",
                request.amount, request.idempotency_key
            ));
            self.consume_credits.take("consume_credits")
        }

        async fn remember_consume_answer(
            &self,
            user_id: &str,
            request: &ConsumeRequest,
            status: u16,
            body: &str,
        ) -> Result<(), Error> {
            self.called(format!(
                "remember_consume_answer {user_id} key={} {status} {body}",
                request.idempotency_key
            ));
            self.remember_consume_answer.take("remember_consume_answer")
        }

        async fn payments(
            &self,
            user_id: &str,
            limit: u32,
            after: Option<PaymentsCursor>,
        ) -> Result<PaymentsPage, Error> {
            self.called(format!("payments {user_id} {limit} {after:?}"));
            self.payments.take("payments")
        }
    }

    impl Webhooks for Fake {
        async fn handle_webhook(
            &self,
            id: &TransmissionId,
            event: &WebhookEvent,
            _now: DateTime<Utc>,
        ) -> Result<WebhookOutcome, Error> {
            self.called(format!(
                "handle_webhook {} {}",
                id.as_str(),
                event.event_type()
            ));
            self.handle_webhook.take("handle_webhook")
        }
    }

    /// A failure on our side whose text must never reach the caller.
    pub(crate) fn our_fault() -> Error {
        Error::OurFault {
            code: Some(toss::ErrorCode::UnauthorizedKey),
        }
    }

    /// `request` through the function's router and entry point, with `fake` behind the routes
    /// and `issuer` trusted for bearer tokens.
    pub(crate) async fn send(
        fake: Fake,
        issuer: &str,
        request: lambda_http::Request,
    ) -> axum::response::Response {
        let app = crate::handler::app_with(crate::state::testing::with_billing(fake, issuer));
        crate::handler::handle(&app, request).await.unwrap()
    }

    /// The response's JSON body (`null` when empty).
    pub(crate) async fn json(response: axum::response::Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        if bytes.is_empty() {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&bytes).unwrap()
    }

    /// What the fake was asked, in order.
    pub(crate) fn calls(calls: &Mutex<Vec<String>>) -> Vec<String> {
        calls.lock().unwrap().clone()
    }
}
