//! Authentication for the app's API (docs/money-rules.md §10.1): verify the sign-in provider's bearer token
//! (an OIDC JWT: Clerk first, any issuer with a JWKS) and say who is calling.
//!
//! ```no_run
//! # async fn demo(headers: &reqwest::header::HeaderMap) -> Result<(), Box<dyn std::error::Error>> {
//! use auth::{Config, Verifier};
//! // at cold start, from AUTH_ISSUER, AUTH_AUTHORIZED_PARTIES, …
//! let config = Config::new("https://clerk.example.com")?
//!     .with_authorized_parties("https://app.example.com".split(','))?;
//! let verifier = Verifier::new(config)?;
//! let _ = verifier.prefetch().await; // warm the JWKS; a failure only costs the first request
//!
//! // per request
//! match verifier.authenticate_headers(headers).await {
//!     Ok(user) => println!("caller {}", user.user_id),
//!     Err(e) => {
//!         tracing::info!(reason = e.reason(), error.message = %e, "refused");
//!         let failure = e.failure(); // 401 UNAUTHENTICATED, or 503 when the issuer is down
//!         let _ = (failure.status(), failure.code(), failure.message());
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! What is checked, in order: the header is `Bearer <jwt>`; the JWT's `alg` is RS256 or ES256
//! (never `none`, never HS*); its `kid` names a key of the issuer's JWKS (cached, refetched at
//! most once a minute for an unknown kid) whose type agrees with `alg`; the signature (by
//! jsonwebtoken on aws-lc); `iss` equals the issuer; `exp` and `nbf` are present and hold with
//! at most 5 s of leeway; `aud` when an audience is configured; `azp` when authorized parties
//! are configured and the token has one; `sub` is a valid [`UserId`].
//!
//! The token is never logged, never stored, and never part of an error or a `Debug` output.

mod bearer;
mod clock;
mod config;
mod error;
mod jwks;
mod user;
mod verifier;

pub use bearer::{MAX_TOKEN_BYTES, bearer_token};
pub use clock::{Clock, SystemClock};
pub use config::{Config, ConfigError};
pub use error::{Error, Failure, JwksError};
pub use user::{AuthUser, InvalidUserId, UserId};
pub use verifier::Verifier;
