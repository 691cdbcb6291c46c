//! The JWKS: cached across verifications, refetched at most once a minute for an unknown kid,
//! one fetch in flight, rotation picked up, outages told apart from bad tokens.

use std::time::Duration;

use auth::{Config, Error, Failure, JwksError, Verifier};
use auth_issuer::{Forgery, JwksFault, SigningAlg, TokenRequest};
use tokio::task::JoinSet;

use crate::{Env, user};

const MINUTE: Duration = Duration::from_secs(60);

fn unknown_kid(env: &Env) -> String {
    env.mint(TokenRequest::for_user("user_x").forgery(Forgery::UnknownKid))
}

#[tokio::test]
async fn many_verifications_fetch_the_jwks_once() {
    let env = Env::new().await;
    for n in 0..10 {
        let alg = if n % 2 == 0 {
            SigningAlg::Rs256
        } else {
            SigningAlg::Es256
        };
        let token = env.mint(TokenRequest::for_user(format!("user_{n}")).alg(alg));
        assert_eq!(user(env.verify(&token).await), format!("user_{n}"));
    }
    assert_eq!(env.fetches(), 1);
}

#[tokio::test]
async fn clones_of_the_verifier_share_one_cache() {
    let env = Env::new().await;
    let token = env.mint(TokenRequest::for_user("user_x"));
    let clone = env.verifier.clone();
    user(env.verify(&token).await);
    user(clone.verify_token(&token).await);
    assert_eq!(env.fetches(), 1);
}

#[tokio::test]
async fn concurrent_first_verifications_share_one_fetch() {
    let env = Env::new().await;
    // the JWKS answers slowly, so every caller arrives while the first fetch is in flight
    env.issuer
        .issuer()
        .set_jwks_fault(Some(JwksFault::Delay { millis: 300 }));
    let token = env.mint(TokenRequest::for_user("user_x"));
    let mut callers = JoinSet::new();
    for _ in 0..16 {
        let (verifier, token) = (env.verifier.clone(), token.clone());
        callers.spawn(async move { verifier.verify_token(&token).await });
    }
    while let Some(result) = callers.join_next().await {
        assert_eq!(user(result.unwrap()), "user_x");
    }
    assert_eq!(env.fetches(), 1);
}

#[tokio::test]
async fn an_unknown_kid_refetches_once_and_a_second_one_within_a_minute_does_not() {
    let env = Env::new().await;
    user(
        env.verify(&env.mint(TokenRequest::for_user("user_x")))
            .await,
    );
    assert_eq!(env.fetches(), 1);

    let first = env.verify(&unknown_kid(&env)).await.unwrap_err();
    assert!(matches!(first, Error::UnknownKeyId { .. }), "{first:?}");
    assert_eq!(env.fetches(), 2, "the first unknown kid refetches");

    env.clock.advance(MINUTE - Duration::from_secs(1));
    let second = env.verify(&unknown_kid(&env)).await.unwrap_err();
    assert!(matches!(second, Error::UnknownKeyId { .. }), "{second:?}");
    assert_eq!(
        env.fetches(),
        2,
        "a second unknown kid within a minute does not"
    );

    env.clock.advance(Duration::from_secs(1));
    env.verify(&unknown_kid(&env)).await.unwrap_err();
    assert_eq!(env.fetches(), 3, "a minute after the last fetch, one more");
}

#[tokio::test]
async fn concurrent_unknown_kids_cause_a_single_refetch() {
    let env = Env::new().await;
    user(
        env.verify(&env.mint(TokenRequest::for_user("user_x")))
            .await,
    );
    env.clock.advance(MINUTE);
    env.issuer
        .issuer()
        .set_jwks_fault(Some(JwksFault::Delay { millis: 200 }));
    let mut callers = JoinSet::new();
    for _ in 0..16 {
        let (verifier, token) = (env.verifier.clone(), unknown_kid(&env));
        callers.spawn(async move { verifier.verify_token(&token).await });
    }
    while let Some(result) = callers.join_next().await {
        let error = result.unwrap().unwrap_err();
        assert!(matches!(error, Error::UnknownKeyId { .. }), "{error:?}");
    }
    assert_eq!(env.fetches(), 2);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_by_the_refetch_its_unknown_kid_triggers() {
    let env = Env::new().await;
    let before = env.mint(TokenRequest::for_user("user_x"));
    user(env.verify(&before).await);

    let kid = env
        .issuer
        .issuer()
        .rotate(SigningAlg::Rs256, false)
        .unwrap();
    let after = env.mint(TokenRequest::for_user("user_rotated"));
    assert_eq!(kid_of(&after), kid);
    assert_eq!(user(env.verify(&after).await), "user_rotated");
    assert_eq!(env.fetches(), 2);
    // the old key is still published: its tokens still pass, from the cache
    user(env.verify(&before).await);
    assert_eq!(env.fetches(), 2);
}

#[tokio::test]
async fn a_key_rotated_within_a_minute_of_an_unknown_kid_refetch_waits_for_the_minute() {
    let env = Env::new().await;
    user(
        env.verify(&env.mint(TokenRequest::for_user("user_x")))
            .await,
    );
    env.verify(&unknown_kid(&env)).await.unwrap_err();
    assert_eq!(env.fetches(), 2);

    env.issuer
        .issuer()
        .rotate(SigningAlg::Es256, false)
        .unwrap();
    let token = env.mint(TokenRequest::for_user("user_new").alg(SigningAlg::Es256));
    let error = env.verify(&token).await.unwrap_err();
    assert!(matches!(error, Error::UnknownKeyId { .. }), "{error:?}");
    assert_eq!(env.fetches(), 2, "no second refetch inside the minute");

    env.clock.advance(MINUTE);
    assert_eq!(user(env.verify(&token).await), "user_new");
    assert_eq!(env.fetches(), 3);
}

#[tokio::test]
async fn a_withdrawn_key_stops_verifying_once_the_cache_is_older_than_its_max_age() {
    let env = Env::new().await;
    let old = env.mint(TokenRequest::for_user("user_old").expires_in(3600));
    user(env.verify(&old).await);
    env.issuer.issuer().rotate(SigningAlg::Rs256, true).unwrap();

    env.clock.advance(Duration::from_secs(9 * 60));
    assert_eq!(user(env.verify(&old).await), "user_old", "cached for now");
    assert_eq!(env.fetches(), 1);

    env.clock.advance(Duration::from_secs(60));
    let error = env.verify(&old).await.unwrap_err();
    assert!(matches!(error, Error::UnknownKeyId { .. }), "{error:?}");
    assert_eq!(env.fetches(), 2);
}

#[tokio::test]
async fn an_unreachable_issuer_is_unavailable_not_unauthenticated() {
    // a port nobody listens on: bind one, then let it go
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = Config::new(format!("http://127.0.0.1:{port}")).unwrap();
    let verifier = Verifier::new(config).unwrap();
    let env = Env::new().await;
    let token = env.mint(TokenRequest::for_user("user_x"));
    let error = verifier.verify_token(&token).await.unwrap_err();
    assert!(
        matches!(error, Error::KeysUnavailable(JwksError::Transport(_))),
        "{error:?}"
    );
    assert_eq!(error.failure(), Failure::Unavailable);
    assert_eq!(error.failure().status(), 503);
}

#[tokio::test]
async fn a_failing_jwks_is_retried_after_the_back_off_not_on_every_request() {
    let env = Env::new().await;
    env.issuer
        .issuer()
        .set_jwks_fault(Some(JwksFault::Status { status: 502 }));
    let token = env.mint(TokenRequest::for_user("user_x"));

    let error = env.verify(&token).await.unwrap_err();
    assert!(
        matches!(error, Error::KeysUnavailable(JwksError::Status(502))),
        "{error:?}"
    );
    let error = env.verify(&token).await.unwrap_err();
    assert!(
        matches!(error, Error::KeysUnavailable(JwksError::BackingOff)),
        "{error:?}"
    );
    assert_eq!(env.fetches(), 1);

    env.issuer.issuer().set_jwks_fault(None);
    env.clock.advance(Duration::from_secs(5));
    assert_eq!(user(env.verify(&token).await), "user_x");
    assert_eq!(env.fetches(), 2);
}

#[tokio::test]
async fn cached_keys_keep_verifying_while_the_issuer_is_down() {
    let env = Env::new().await;
    let token = env.mint(TokenRequest::for_user("user_x").expires_in(3600));
    user(env.verify(&token).await);
    env.issuer
        .issuer()
        .set_jwks_fault(Some(JwksFault::Status { status: 503 }));
    env.clock.advance(Duration::from_secs(11 * 60));
    assert_eq!(user(env.verify(&token).await), "user_x");
    assert_eq!(
        env.fetches(),
        2,
        "the stale cache was refreshed, and that failed"
    );
}

#[tokio::test]
async fn while_a_stale_cache_is_refreshed_other_callers_go_on_with_the_cached_key() {
    let env = Env::new().await;
    let token = env.mint(TokenRequest::for_user("user_x").expires_in(3600));
    user(env.verify(&token).await);
    env.clock.advance(Duration::from_secs(11 * 60));
    env.issuer
        .issuer()
        .set_jwks_fault(Some(JwksFault::Delay { millis: 3_000 }));

    let (verifier, refreshing_token) = (env.verifier.clone(), token.clone());
    let refresh = tokio::spawn(async move { verifier.verify_token(&refreshing_token).await });
    while env.fetches() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = std::time::Instant::now();
    assert_eq!(user(env.verify(&token).await), "user_x");
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "waited {:?} for a refresh it did not need",
        started.elapsed()
    );
    assert_eq!(user(refresh.await.unwrap()), "user_x");
    assert_eq!(env.fetches(), 2);
}

#[tokio::test]
async fn a_jwks_over_the_size_limit_is_not_read() {
    let env = Env::with(|config| config.with_max_jwks_bytes(16 * 1024)).await;
    env.issuer
        .issuer()
        .set_jwks_fault(Some(JwksFault::Oversized { bytes: 64 * 1024 }));
    let error = env
        .verify(&env.mint(TokenRequest::for_user("user_x")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::KeysUnavailable(JwksError::TooLarge { limit: 16384 })
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_jwks_streamed_without_a_length_is_cut_off_at_the_size_limit() {
    let env = Env::with(|config| config.with_max_jwks_bytes(16 * 1024)).await;
    env.issuer
        .issuer()
        .set_jwks_fault(Some(JwksFault::OversizedStream { bytes: 1024 * 1024 }));
    let error = env
        .verify(&env.mint(TokenRequest::for_user("user_x")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::KeysUnavailable(JwksError::TooLarge { limit: 16384 })
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_jwks_that_is_not_json_is_unavailable() {
    let env = Env::new().await;
    env.issuer.issuer().set_jwks_fault(Some(JwksFault::NotJson));
    let error = env
        .verify(&env.mint(TokenRequest::for_user("user_x")))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::KeysUnavailable(JwksError::Decode(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_jwks_slower_than_the_timeout_is_given_up() {
    let env = Env::with(|config| config.with_fetch_timeout(Duration::from_millis(200))).await;
    env.issuer
        .issuer()
        .set_jwks_fault(Some(JwksFault::Delay { millis: 2_000 }));
    let started = std::time::Instant::now();
    let error = env
        .verify(&env.mint(TokenRequest::for_user("user_x")))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::KeysUnavailable(JwksError::Transport(_))),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(1_500));
}

#[tokio::test]
async fn prefetch_loads_the_keys_so_the_first_request_does_not_fetch() {
    let env = Env::new().await;
    env.verifier.prefetch().await.unwrap();
    assert_eq!(env.fetches(), 1);
    user(
        env.verify(&env.mint(TokenRequest::for_user("user_x")))
            .await,
    );
    assert_eq!(env.fetches(), 1);
}

#[tokio::test]
async fn the_verifier_reads_the_jwks_url_the_issuer_advertises() {
    let env = Env::new().await;
    let discovery: serde_json::Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!(
            "{}/.well-known/openid-configuration",
            env.issuer.issuer_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], env.issuer.issuer_url());
    assert_eq!(
        discovery["jwks_uri"].as_str().unwrap(),
        env.verifier.config().jwks_url().as_str()
    );
}

fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    value["kid"].as_str().unwrap().to_owned()
}
