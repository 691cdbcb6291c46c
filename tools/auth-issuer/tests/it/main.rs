//! The issuer over HTTP: what a verifier and a test see of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use auth_issuer::{IssuerConfig, RunningIssuer, SigningAlg, SigningKey, unix_now};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn issuer() -> RunningIssuer {
    auth_issuer::spawn(IssuerConfig::default()).await.unwrap()
}

async fn get(url: String) -> Value {
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn post(url: String, body: Value) -> (StatusCode, Value) {
    let response = client().post(url).json(&body).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The header and payload of a compact JWT, unverified.
fn parts(token: &str) -> (Value, Value) {
    let mut segments = token.split('.');
    let mut next = || {
        let bytes = URL_SAFE_NO_PAD.decode(segments.next().unwrap()).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    (next(), next())
}

async fn mint(issuer: &RunningIssuer, body: Value) -> String {
    let (status, answer) = post(format!("{}/__issuer/tokens", issuer.issuer_url()), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn discovery_names_the_issuer_and_its_jwks_url() {
    let issuer = issuer().await;
    let discovery = get(format!(
        "{}/.well-known/openid-configuration",
        issuer.issuer_url()
    ))
    .await;
    assert_eq!(discovery["issuer"], issuer.issuer_url());
    assert_eq!(discovery["jwks_uri"], issuer.jwks_url());
    assert_eq!(issuer.issuer_url(), format!("http://{}", issuer.addr()));
}

#[tokio::test]
async fn the_jwks_publishes_one_rsa_and_one_p256_signing_key_and_counts_its_fetches() {
    let issuer = issuer().await;
    let jwks = get(issuer.jwks_url()).await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let rsa = keys.iter().find(|k| k["kty"] == "RSA").unwrap();
    assert_eq!((&rsa["alg"], &rsa["use"]), (&json!("RS256"), &json!("sig")));
    assert!(
        rsa.get("d").is_none(),
        "a private RSA component is published"
    );
    let ec = keys.iter().find(|k| k["kty"] == "EC").unwrap();
    assert_eq!((&ec["alg"], &ec["crv"]), (&json!("ES256"), &json!("P-256")));
    assert!(ec.get("d").is_none(), "a private EC component is published");
    get(issuer.jwks_url()).await;
    let stats = get(format!("{}/__issuer/stats", issuer.issuer_url())).await;
    assert_eq!(stats["jwksFetches"], 2);
    let (status, _) = post(
        format!("{}/__issuer/stats/reset", issuer.issuer_url()),
        json!(null),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(issuer.issuer().jwks_fetches(), 0);
}

#[tokio::test]
async fn a_default_token_has_clerk_like_claims_and_a_sixty_second_lifetime() {
    let issuer = issuer().await;
    let before = unix_now();
    let token = mint(&issuer, json!({})).await;
    let (header, claims) = parts(&token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(
        header["kid"],
        issuer.issuer().current_kid(SigningAlg::Rs256)
    );
    assert_eq!(claims["iss"], issuer.issuer_url());
    assert_eq!(claims["sub"], "user_test");
    assert_eq!(claims["azp"], "http://localhost:3000");
    assert!(claims["sid"].as_str().unwrap().starts_with("sess_"));
    let iat = claims["iat"].as_i64().unwrap();
    assert!(iat >= before && iat <= unix_now());
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 60);
    assert_eq!(claims["nbf"].as_i64().unwrap(), iat - 10);
    assert!(claims.get("aud").is_none());
}

#[tokio::test]
async fn a_token_request_bends_every_claim_it_names() {
    let issuer = issuer().await;
    let token = mint(
        &issuer,
        json!({"sub": "user_9", "alg": "ES256", "azp": "https://app.example.com", "aud": ["a", "b"],
               "iss": "https://evil.example.com", "expiresIn": -30, "notBefore": 5,
               "omit": ["sid"], "claims": {"org_id": "org_1"}}),
    )
    .await;
    let (header, claims) = parts(&token);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(claims["sub"], "user_9");
    assert_eq!(claims["azp"], "https://app.example.com");
    assert_eq!(claims["aud"], json!(["a", "b"]));
    assert_eq!(claims["iss"], "https://evil.example.com");
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, -30);
    assert_eq!(claims["nbf"].as_i64().unwrap() - iat, 5);
    assert!(claims.get("sid").is_none());
    assert_eq!(claims["org_id"], "org_1");
}

#[tokio::test]
async fn forgeries_come_out_as_described() {
    let issuer = issuer().await;
    let rs_kid = issuer.issuer().current_kid(SigningAlg::Rs256);

    let none = mint(&issuer, json!({"forgery": "algNone"})).await;
    assert!(none.ends_with('.'));
    assert_eq!(parts(&none).0["alg"], "none");

    let hs = mint(&issuer, json!({"forgery": "hs256WithPublicKey"})).await;
    assert_eq!(
        parts(&hs).0,
        json!({"typ": "JWT", "alg": "HS256", "kid": rs_kid})
    );

    let unknown_a = mint(&issuer, json!({"forgery": "unknownKid"})).await;
    let unknown_b = mint(&issuer, json!({"forgery": "unknownKid"})).await;
    let (kid_a, kid_b) = (
        parts(&unknown_a).0["kid"].clone(),
        parts(&unknown_b).0["kid"].clone(),
    );
    assert_ne!(kid_a, kid_b);
    assert!(
        !issuer
            .issuer()
            .kids()
            .contains(&kid_a.as_str().unwrap().to_owned())
    );

    let mismatched = mint(&issuer, json!({"forgery": "kidOfOtherAlg"})).await;
    assert_eq!(parts(&mismatched).0["alg"], "ES256");
    assert_eq!(parts(&mismatched).0["kid"], rs_kid);

    let no_kid = mint(&issuer, json!({"forgery": "noKid"})).await;
    assert!(parts(&no_kid).0.get("kid").is_none());

    let tampered = mint(
        &issuer,
        json!({"sub": "user_1", "forgery": "tamperedPayload"}),
    )
    .await;
    assert_eq!(parts(&tampered).1["sub"], "user_admin");
}

#[tokio::test]
async fn an_unknown_field_in_a_token_request_is_refused() {
    let issuer = issuer().await;
    let (status, _) = post(
        format!("{}/__issuer/tokens", issuer.issuer_url()),
        json!({"subject": "user_1"}),
    )
    .await;
    assert!(status.is_client_error(), "{status}");
}

#[tokio::test]
async fn rotation_publishes_a_new_kid_that_signs_from_then_on_and_can_retire_the_old() {
    let issuer = issuer().await;
    let old = issuer.issuer().current_kid(SigningAlg::Es256);
    let (status, rotated) = post(
        format!("{}/__issuer/rotate", issuer.issuer_url()),
        json!({"alg": "ES256"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let new = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let token = mint(&issuer, json!({"alg": "ES256"})).await;
    assert_eq!(parts(&token).0["kid"], new);
    assert!(issuer.issuer().kids().contains(&old));

    let (_, again) = post(
        format!("{}/__issuer/rotate", issuer.issuer_url()),
        json!({"alg": "ES256", "retireOld": true}),
    )
    .await;
    let kids = issuer.issuer().kids();
    assert!(kids.contains(&old) && !kids.contains(&new));
    assert!(kids.contains(&again["kid"].as_str().unwrap().to_owned()));
}

#[tokio::test]
async fn a_jwks_fault_is_served_until_healed() {
    let issuer = issuer().await;
    let fault_url = format!("{}/__issuer/jwks-fault", issuer.issuer_url());
    let put = |body: Value| client().put(fault_url.clone()).json(&body).send();
    assert_eq!(
        put(json!({"kind": "status", "status": 503}))
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    let answer = client().get(issuer.jwks_url()).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);

    put(json!({"kind": "oversized", "bytes": 100_000}))
        .await
        .unwrap();
    let body = client()
        .get(issuer.jwks_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body.len(), 100_000);

    put(json!({"kind": "oversizedStream", "bytes": 100_000}))
        .await
        .unwrap();
    let answer = client().get(issuer.jwks_url()).send().await.unwrap();
    assert_eq!(
        answer.content_length(),
        None,
        "a streamed body announces no length"
    );
    assert_eq!(answer.text().await.unwrap().len(), 100_000);

    put(json!(null)).await.unwrap();
    get(issuer.jwks_url()).await;
    assert_eq!(issuer.issuer().jwks_fetches(), 4);
}

#[tokio::test]
async fn keys_given_in_the_config_are_published_with_their_thumbprint_kid() {
    let key = SigningKey::generate(SigningAlg::Rs256).unwrap();
    let issuer = auth_issuer::spawn(IssuerConfig {
        keys: vec![key.clone()],
        ..IssuerConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(issuer.issuer().current_kid(SigningAlg::Rs256), key.kid());
    assert_eq!(
        issuer.issuer().kids().len(),
        2,
        "the ES256 key is generated"
    );
}

#[test]
fn the_binary_serves_a_key_loaded_from_a_pem_file() {
    let key = SigningKey::generate(SigningAlg::Es256).unwrap();
    let dir = std::env::temp_dir().join(format!("auth-issuer-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("es256.pem");
    std::fs::write(&path, key.to_pkcs8_pem()).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_auth-issuer"))
        .args(["--port", "0", "--key"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep reading the issuer's log for as long as it runs: a closed pipe must not be what
    // stops it.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (lines, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let addr = log
        .iter()
        .find_map(|line| {
            line.split("addr=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next().map(str::to_owned))
        })
        .expect("the issuer did not log its address");
    let jwks: Value = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let url = format!("http://{addr}/.well-known/jwks.json");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            match client().get(&url).send().await {
                Ok(response) => {
                    assert_eq!(response.status(), StatusCode::OK);
                    break response.json().await.unwrap();
                }
                Err(_) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("the issuer at {addr} did not answer: {e}"),
            }
        }
    });
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&key.kid()), "{kids:?}");
}
