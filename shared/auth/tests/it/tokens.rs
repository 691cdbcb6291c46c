//! Honest tokens pass; claims that do not hold are refused with their reason.

use auth::{Error, Failure};
use auth_issuer::{SigningAlg, TokenRequest};
use serde_json::json;

use crate::{Env, user};

#[tokio::test]
async fn an_rs256_token_from_the_issuer_authenticates_its_user() {
    let env = Env::new().await;
    let token = env.mint(TokenRequest::for_user("user_2abcRS").alg(SigningAlg::Rs256));
    assert_eq!(user(env.verify(&token).await), "user_2abcRS");
}

#[tokio::test]
async fn an_es256_token_from_the_issuer_authenticates_its_user() {
    let env = Env::new().await;
    let token = env.mint(TokenRequest::for_user("user_2abcES").alg(SigningAlg::Es256));
    assert_eq!(user(env.verify(&token).await), "user_2abcES");
}

#[tokio::test]
async fn a_token_minted_over_the_control_api_authenticates_too() {
    let env = Env::new().await;
    let answer: serde_json::Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/__issuer/tokens", env.issuer.issuer_url()))
        .json(&json!({"sub": "user_http", "alg": "ES256", "expiresIn": 30}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = answer["token"].as_str().unwrap();
    assert_eq!(user(env.verify(token).await), "user_http");
}

#[tokio::test]
async fn the_bearer_scheme_is_accepted_in_any_case() {
    let env = Env::new().await;
    let token = env.mint(TokenRequest::for_user("user_case"));
    let header = format!("bEARER {token}");
    assert_eq!(
        user(env.verifier.authenticate(Some(header.as_bytes())).await),
        "user_case"
    );
}

#[tokio::test]
async fn a_token_expired_a_second_ago_passes_within_the_five_second_leeway() {
    let env = Env::new().await;
    // one second late leaves four seconds of the leeway for a slow machine to verify in
    let token = env.mint(TokenRequest::for_user("user_skew").expires_in(-1));
    assert_eq!(user(env.verify(&token).await), "user_skew");
}

#[tokio::test]
async fn a_token_expired_beyond_the_leeway_is_refused_as_expired() {
    let env = Env::new().await;
    let token = env.mint(TokenRequest::for_user("user_late").expires_in(-10));
    let refused = env.verify(&token).await.unwrap_err();
    assert!(matches!(refused, Error::Expired), "{refused:?}");
    assert_eq!(refused.failure(), Failure::Unauthenticated);
}

#[tokio::test]
async fn a_token_valid_only_from_two_seconds_on_passes_within_the_leeway() {
    let env = Env::new().await;
    let token = env.mint(TokenRequest::for_user("user_early").not_before(2));
    assert_eq!(user(env.verify(&token).await), "user_early");
}

#[tokio::test]
async fn a_token_not_valid_for_another_minute_is_refused_as_not_yet_valid() {
    let env = Env::new().await;
    let token = env.mint(TokenRequest::for_user("user_early").not_before(60));
    let refused = env.verify(&token).await.unwrap_err();
    assert!(matches!(refused, Error::NotYetValid), "{refused:?}");
}

#[tokio::test]
async fn a_token_of_another_issuer_is_refused_even_when_signed_by_a_trusted_key() {
    let env = Env::new().await;
    let issuer = env.issuer.issuer_url().to_owned();
    for iss in [
        "https://evil.example.com".to_owned(),
        format!("{issuer}/"),
        issuer.to_uppercase(),
    ] {
        let token = env.mint(TokenRequest::for_user("user_x").iss(iss.clone()));
        let refused = env.verify(&token).await.unwrap_err();
        assert!(matches!(refused, Error::WrongIssuer), "{iss}: {refused:?}");
    }
}

#[tokio::test]
async fn an_azp_outside_the_authorized_parties_is_refused_and_one_inside_passes() {
    let env = Env::with(|config| {
        config
            .with_authorized_parties(["https://app.example.com", "http://localhost:3000"])
            .unwrap()
    })
    .await;
    let inside = env.mint(TokenRequest::for_user("user_a").azp("https://app.example.com"));
    assert_eq!(user(env.verify(&inside).await), "user_a");
    let outside = env.mint(TokenRequest::for_user("user_a").azp("https://evil.example.com"));
    let refused = env.verify(&outside).await.unwrap_err();
    assert!(matches!(refused, Error::UnauthorizedParty), "{refused:?}");
    let not_a_string = env.mint(TokenRequest::for_user("user_a").claim("azp", json!(["x"])));
    let refused = env.verify(&not_a_string).await.unwrap_err();
    assert!(matches!(refused, Error::InvalidClaim("azp")), "{refused:?}");
}

#[tokio::test]
async fn a_token_without_azp_passes_because_clerk_checks_azp_only_when_present() {
    let env = Env::with(|config| {
        config
            .with_authorized_parties(["https://app.example.com"])
            .unwrap()
    })
    .await;
    let token = env.mint(TokenRequest::for_user("user_server").omit("azp"));
    assert_eq!(user(env.verify(&token).await), "user_server");
}

#[tokio::test]
async fn azp_is_not_checked_when_no_authorized_parties_are_configured() {
    let env = Env::new().await;
    let token = env.mint(TokenRequest::for_user("user_any").azp("https://anywhere.example.com"));
    assert_eq!(user(env.verify(&token).await), "user_any");
}

#[tokio::test]
async fn aud_is_ignored_unless_an_audience_is_configured() {
    let env = Env::new().await;
    let token = env.mint(TokenRequest::for_user("user_aud").aud("someone-else"));
    assert_eq!(user(env.verify(&token).await), "user_aud");
}

#[tokio::test]
async fn with_an_audience_configured_a_token_must_carry_it() {
    let env = Env::with(|config| config.with_audience("billing-api").unwrap()).await;
    let right = env.mint(TokenRequest::for_user("user_aud").aud("billing-api"));
    assert_eq!(user(env.verify(&right).await), "user_aud");
    let among_others =
        env.mint(TokenRequest::for_user("user_aud").aud(json!(["x", "billing-api"])));
    assert_eq!(user(env.verify(&among_others).await), "user_aud");
    let wrong = env.mint(TokenRequest::for_user("user_aud").aud("another-api"));
    let refused = env.verify(&wrong).await.unwrap_err();
    assert!(matches!(refused, Error::WrongAudience), "{refused:?}");
    let missing = env.mint(TokenRequest::for_user("user_aud"));
    let refused = env.verify(&missing).await.unwrap_err();
    assert!(matches!(refused, Error::MissingClaim("aud")), "{refused:?}");
}

#[tokio::test]
async fn a_token_without_exp_nbf_iss_or_sub_is_refused_naming_the_claim() {
    let env = Env::new().await;
    for claim in ["exp", "nbf", "iss", "sub"] {
        let token = env.mint(TokenRequest::for_user("user_x").omit(claim));
        let refused = env.verify(&token).await.unwrap_err();
        assert!(
            matches!(&refused, Error::MissingClaim(named) if *named == claim),
            "{claim}: {refused:?}"
        );
    }
}

#[tokio::test]
async fn an_exp_that_is_not_a_number_is_refused() {
    let env = Env::new().await;
    let token = env.mint(TokenRequest::for_user("user_x").claim("exp", "tomorrow"));
    let refused = env.verify(&token).await.unwrap_err();
    assert!(matches!(refused, Error::MissingClaim("exp")), "{refused:?}");
}

#[tokio::test]
async fn an_empty_overlong_or_spaced_subject_is_refused() {
    let env = Env::new().await;
    for sub in [String::new(), "u".repeat(256), "user one".to_owned()] {
        let token = env.mint(TokenRequest::for_user(sub.clone()));
        let refused = env.verify(&token).await.unwrap_err();
        assert!(
            matches!(refused, Error::InvalidClaim("sub")),
            "{sub:?}: {refused:?}"
        );
    }
    let longest = env.mint(TokenRequest::for_user("u".repeat(255)));
    assert_eq!(user(env.verify(&longest).await).len(), 255);
}
