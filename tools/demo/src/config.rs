//! What the demo is configured with: the plan the functions sell, the keys they use, and where
//! each part of the running stack can be reached.

use serde::Serialize;

/// The secret key the functions use: the public docs test key the sandbox accepts.
pub(crate) const SECRET_KEY: &str = toss_sandbox::DOCS_SECRET_KEY;
/// The client key the checkout page gives the (stand-in) SDK.
pub(crate) const CLIENT_KEY: &str = toss_sandbox::DOCS_CLIENT_KEY;
pub(crate) const PLAN_AMOUNT: u64 = 3900;
pub(crate) const PLAN_CREDITS: u64 = 30;
pub(crate) const DUNNING_RETRY_DAYS: [u32; 3] = [1, 3, 5];

/// Where everything is.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Urls {
    pub app: String,
    pub sandbox: String,
    pub lambda: String,
    /// billing-api under the emulator (`API_BASE_URL`): `/v1/…` and the redirect routes.
    pub billing_api: String,
    /// The local sign-in provider (`AUTH_ISSUER`).
    pub issuer: String,
    pub dynamodb: String,
    pub table: String,
    pub function_logs: String,
}
