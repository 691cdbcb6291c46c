//! What a caller asks the issuer to mint: an honest Clerk-like session token by default, and
//! every field of it (or the way it is signed) can be bent to build a hostile one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::keys::SigningAlg;

/// Every field is optional; `TokenRequest::default()` (or `{}` over HTTP) is an honest RS256
/// token for `user_test` that lives for the issuer's configured lifetime.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct TokenRequest {
    /// The user id (`sub`); default `user_test`.
    pub sub: Option<String>,
    /// RS256 (default) or ES256; the current key of that algorithm signs.
    pub alg: Option<SigningAlg>,
    /// Authorized party; default the issuer's `default_azp` (none if that is unset).
    pub azp: Option<String>,
    /// Session id; default `sess_` and a counter.
    pub sid: Option<String>,
    /// Audience claim (string or array), absent by default as in Clerk session tokens.
    pub aud: Option<Value>,
    /// Override the `iss` claim (a wrong issuer).
    pub iss: Option<String>,
    /// Seconds from now to `exp`; negative means already expired. Default: the issuer's lifetime.
    pub expires_in: Option<i64>,
    /// Seconds from now to `nbf`; positive means not yet valid. Default `-10` (Clerk backdates it).
    pub not_before: Option<i64>,
    /// Registered claims to leave out (`exp`, `nbf`, `sub`, `iss`, `azp`, `sid`, `iat`, `v`).
    pub omit: Vec<String>,
    /// Extra claims, written last (they replace any claim of the same name).
    pub claims: Map<String, Value>,
    /// Sign it dishonestly.
    pub forgery: Option<Forgery>,
}

impl TokenRequest {
    /// An honest token for `sub`.
    pub fn for_user(sub: impl Into<String>) -> Self {
        TokenRequest {
            sub: Some(sub.into()),
            ..TokenRequest::default()
        }
    }

    pub fn alg(mut self, alg: SigningAlg) -> Self {
        self.alg = Some(alg);
        self
    }

    pub fn azp(mut self, azp: impl Into<String>) -> Self {
        self.azp = Some(azp.into());
        self
    }

    pub fn aud(mut self, aud: impl Into<Value>) -> Self {
        self.aud = Some(aud.into());
        self
    }

    pub fn iss(mut self, iss: impl Into<String>) -> Self {
        self.iss = Some(iss.into());
        self
    }

    pub fn expires_in(mut self, seconds: i64) -> Self {
        self.expires_in = Some(seconds);
        self
    }

    pub fn not_before(mut self, seconds: i64) -> Self {
        self.not_before = Some(seconds);
        self
    }

    pub fn omit(mut self, claim: impl Into<String>) -> Self {
        self.omit.push(claim.into());
        self
    }

    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    pub fn forgery(mut self, forgery: Forgery) -> Self {
        self.forgery = Some(forgery);
        self
    }
}

/// Ways to sign a token that a correct verifier must refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Forgery {
    /// Signed by a key the JWKS does not hold, under the kid of the key it does hold.
    StrangerKey,
    /// Signed by a key the JWKS does not hold, under a kid it never published (a new one each time).
    UnknownKid,
    /// No `kid` in the header.
    NoKid,
    /// `alg: none` and an empty signature.
    AlgNone,
    /// HS256 keyed with the current RSA key's public PEM (the key-confusion attack).
    Hs256WithPublicKey,
    /// Signed by the EC key with `alg: ES256`, but the header names the RSA key's kid.
    KidOfOtherAlg,
    /// An honest token whose payload was swapped afterwards (sub `user_admin`).
    TamperedPayload,
}
