//! Extractors that turn a request into domain types before a route's code runs.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::State;

/// The caller of a `/v1` route, from a verified bearer token (product §10.1). A route that
/// takes a `Caller` runs only for an authenticated request; nothing else names the user.
#[derive(Debug, Clone)]
pub struct Caller(pub auth::AuthUser);

impl<B: Send + Sync> FromRequestParts<Arc<State<B>>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<State<B>>,
    ) -> Result<Self, ApiError> {
        let user = state.verifier.authenticate_headers(&parts.headers).await?;
        Ok(Caller(user))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use auth_issuer::{IssuerConfig, TokenRequest};
    use axum::http::{Request, StatusCode, header};
    use axum::response::IntoResponse;

    use super::*;
    use crate::state::testing;

    async fn extract(state: &Arc<State>, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let mut request = Request::builder().uri("/v1/subscription");
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        Caller::from_request_parts(&mut parts, state).await
    }

    #[tokio::test]
    async fn a_token_from_the_configured_issuer_names_its_subject_as_the_caller() {
        let issuer = auth_issuer::spawn(IssuerConfig::default()).await.unwrap();
        let state = Arc::new(testing::state(issuer.issuer_url()));
        let token = issuer
            .issuer()
            .mint(&TokenRequest::for_user("user_alice"))
            .unwrap();

        let Caller(user) = extract(&state, Some(&format!("Bearer {token}")))
            .await
            .unwrap();

        assert_eq!(user.user_id.as_str(), "user_alice");
    }

    #[tokio::test]
    async fn no_token_or_a_token_of_another_issuer_is_refused_with_a_bearer_challenge() {
        let ours = auth_issuer::spawn(IssuerConfig::default()).await.unwrap();
        let theirs = auth_issuer::spawn(IssuerConfig::default()).await.unwrap();
        let state = Arc::new(testing::state(ours.issuer_url()));
        let foreign = theirs
            .issuer()
            .mint(&TokenRequest::for_user("user_alice"))
            .unwrap();

        for authorization in [
            None,
            Some(format!("Bearer {foreign}")),
            Some("Basic dTpw".into()),
        ] {
            let refused = extract(&state, authorization.as_deref()).await.unwrap_err();
            let response = refused.into_response();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{authorization:?}"
            );
            assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        }
    }
}
