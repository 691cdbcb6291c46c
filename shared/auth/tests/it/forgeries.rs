//! Hostile and broken requests: each is refused, with the reason it deserves.

use auth::{Error, Failure};
use auth_issuer::{Forgery, SigningAlg, TokenRequest};

use crate::Env;

async fn refused(env: &Env, forgery: Forgery) -> Error {
    let token = env.mint(TokenRequest::for_user("user_victim").forgery(forgery));
    let error = env.verify(&token).await.unwrap_err();
    assert_eq!(error.failure(), Failure::Unauthenticated, "{error:?}");
    error
}

#[tokio::test]
async fn a_token_signed_by_a_stranger_under_a_trusted_kid_fails_the_signature() {
    let env = Env::new().await;
    for alg in [SigningAlg::Rs256, SigningAlg::Es256] {
        let token = env.mint(
            TokenRequest::for_user("user_victim")
                .alg(alg)
                .forgery(Forgery::StrangerKey),
        );
        let error = env.verify(&token).await.unwrap_err();
        assert!(matches!(error, Error::BadSignature), "{alg}: {error:?}");
    }
}

#[tokio::test]
async fn a_token_whose_payload_was_swapped_after_signing_fails_the_signature() {
    let env = Env::new().await;
    let error = refused(&env, Forgery::TamperedPayload).await;
    assert!(matches!(error, Error::BadSignature), "{error:?}");
}

#[tokio::test]
async fn a_token_with_alg_none_is_refused_before_any_key_is_looked_up() {
    let env = Env::new().await;
    let error = refused(&env, Forgery::AlgNone).await;
    assert!(
        matches!(&error, Error::AlgorithmNotAllowed { alg } if alg == "none"),
        "{error:?}"
    );
    assert_eq!(
        env.fetches(),
        0,
        "an alg:none token made the verifier fetch keys"
    );
}

#[tokio::test]
async fn an_hs256_token_keyed_with_the_public_key_is_refused() {
    let env = Env::new().await;
    let error = refused(&env, Forgery::Hs256WithPublicKey).await;
    assert!(
        matches!(&error, Error::AlgorithmNotAllowed { alg } if alg == "HS256"),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_es256_token_naming_the_rsa_key_is_refused_as_a_key_mismatch() {
    let env = Env::new().await;
    let error = refused(&env, Forgery::KidOfOtherAlg).await;
    assert!(
        matches!(
            error,
            Error::KeyMismatch {
                alg: "ES256",
                key_alg: "RS256",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_token_without_a_kid_is_refused() {
    let env = Env::new().await;
    let error = refused(&env, Forgery::NoKid).await;
    assert!(matches!(error, Error::MissingKeyId), "{error:?}");
}

#[tokio::test]
async fn a_token_under_a_kid_the_issuer_never_published_is_refused_as_unknown() {
    let env = Env::new().await;
    let error = refused(&env, Forgery::UnknownKid).await;
    assert!(
        matches!(&error, Error::UnknownKeyId { kid } if kid.starts_with("unknown-")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_token_with_another_algorithm_of_the_allowed_families_is_refused() {
    let env = Env::new().await;
    // RS512 / PS256 / ES384 are real algorithms jsonwebtoken implements: still not on the list
    for alg in ["RS512", "PS256", "ES384", "EdDSA"] {
        let header = base64_json(&serde_json::json!({"alg": alg, "kid": "k"}));
        let token = format!("{header}.e30.c2ln");
        let error = env.verify(&token).await.unwrap_err();
        assert!(
            matches!(&error, Error::AlgorithmNotAllowed { alg: named } if named == alg),
            "{alg}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_malformed_token_is_refused_as_malformed() {
    let env = Env::new().await;
    let honest = env.mint(TokenRequest::for_user("user_x"));
    let segments: Vec<&str> = honest.split('.').collect();
    for token in [
        "not-a-jwt".to_owned(),
        "a.b".to_owned(),
        format!("{}.{}", segments[0], segments[1]),
        format!("{honest}.{}", segments[2]),
        format!("e30.{}.{}", segments[1], segments[2]),
        format!("bm90IGpzb24.{}.{}", segments[1], segments[2]),
        format!(".{}.{}", segments[1], segments[2]),
    ] {
        let error = env.verify(&token).await.unwrap_err();
        assert!(
            matches!(error, Error::MalformedToken),
            "{token:?}: {error:?}"
        );
    }
    // a valid header but a payload that is not base64url JSON: the signature fails first
    let error = env
        .verify(&format!("{}.bm90IGpzb24.{}", segments[0], segments[2]))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::BadSignature), "{error:?}");
}

#[tokio::test]
async fn a_request_without_an_authorization_header_is_refused() {
    let env = Env::new().await;
    let error = env.verifier.authenticate(None).await.unwrap_err();
    assert!(matches!(error, Error::MissingHeader), "{error:?}");
    assert_eq!(error.failure(), Failure::Unauthenticated);
}

#[tokio::test]
async fn an_ill_formed_authorization_header_is_refused_without_reading_the_token() {
    let env = Env::new().await;
    let token = env.mint(TokenRequest::for_user("user_x"));
    for header in [
        format!("Basic {token}"),
        format!("Bearer  {token}"),
        format!("Bearer {token} "),
        format!("Bearer\t{token}"),
        format!("Bearer{token}"),
        token.clone(),
        format!("Bearer {token},Bearer {token}"),
        "Bearer ".to_owned(),
    ] {
        let error = env
            .verifier
            .authenticate(Some(header.as_bytes()))
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::MalformedHeader),
            "{header:?}: {error:?}"
        );
    }
    assert_eq!(env.fetches(), 0);
}

#[tokio::test]
async fn a_request_with_two_authorization_headers_is_refused_even_if_one_is_valid() {
    use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
    let env = Env::new().await;
    let token = env.mint(TokenRequest::for_user("user_x"));
    let valid = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();

    let mut headers = HeaderMap::new();
    let error = env
        .verifier
        .authenticate_headers(&headers)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::MissingHeader), "{error:?}");

    headers.insert(AUTHORIZATION, valid.clone());
    assert_eq!(
        env.verifier
            .authenticate_headers(&headers)
            .await
            .unwrap()
            .user_id
            .as_str(),
        "user_x"
    );

    headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer a.b.c"));
    let error = env
        .verifier
        .authenticate_headers(&headers)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::MalformedHeader), "{error:?}");
}

fn base64_json(value: &serde_json::Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}
