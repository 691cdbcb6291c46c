//! The token never leaves the verifier: not in an error, a `Debug`, or a log line.

use std::io::Write;
use std::sync::{Arc, Mutex};

use auth::Error;
use auth_issuer::{Forgery, JwksFault, TokenRequest};

use crate::Env;

/// Everything the tracing subscriber writes, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Every part of the token that would give it away: the whole, and its payload and signature.
fn secrets(token: &str) -> Vec<String> {
    let mut parts = vec![token.to_owned()];
    parts.extend(
        token
            .split('.')
            .skip(1)
            .filter(|p| p.len() > 8)
            .map(str::to_owned),
    );
    parts
}

fn error_text(error: &Error) -> String {
    let mut text = format!("{error} | {error:?}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(" | {cause} | {cause:?}"));
        source = cause.source();
    }
    text
}

// a current-thread runtime: the subscriber set for this thread sees every task of the test
#[tokio::test(flavor = "current_thread")]
async fn no_token_appears_in_errors_debug_output_or_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let env = Env::new().await;
    let mut tokens = Vec::new();
    let mut outputs = Vec::new();

    let honest = env.mint(TokenRequest::for_user("user_secret_test"));
    let user = env.verify(&honest).await.unwrap();
    outputs.push(format!("{user:?} {:?}", env.verifier));
    tokens.push(honest);

    for forgery in [
        Forgery::StrangerKey,
        Forgery::UnknownKid,
        Forgery::NoKid,
        Forgery::AlgNone,
        Forgery::Hs256WithPublicKey,
        Forgery::KidOfOtherAlg,
        Forgery::TamperedPayload,
    ] {
        let token = env.mint(TokenRequest::for_user("user_secret_test").forgery(forgery));
        let error = env.verify(&token).await.unwrap_err();
        tracing::info!(reason = error.reason(), error.message = %error, error.cause_chain = ?error, "refused");
        outputs.push(error_text(&error));
        tokens.push(token);
    }
    for request in [
        TokenRequest::for_user("user_secret_test").expires_in(-60),
        TokenRequest::for_user("user_secret_test").iss("https://evil.example.com"),
        TokenRequest::for_user(" bad sub "),
    ] {
        let token = env.mint(request);
        let error = env.verify(&token).await.unwrap_err();
        outputs.push(error_text(&error));
        tokens.push(token);
    }
    // an outage, with the transport error's own chain
    env.clock.advance(std::time::Duration::from_secs(3600));
    env.issuer
        .issuer()
        .set_jwks_fault(Some(JwksFault::Status { status: 500 }));
    let token = env.mint(TokenRequest::for_user("user_secret_test").forgery(Forgery::UnknownKid));
    let error = env.verify(&token).await.unwrap_err();
    assert!(matches!(error, Error::KeysUnavailable(_)), "{error:?}");
    outputs.push(error_text(&error));
    tokens.push(token);
    outputs.push(format!("{:?}", env.verifier));

    let logs = captured.text();
    assert!(
        logs.contains("loaded the issuer's JWKS") && logs.contains("could not fetch"),
        "the capture did not see the verifier's own log lines:\n{logs}"
    );
    for token in &tokens {
        for secret in secrets(token) {
            assert!(!logs.contains(&secret), "a token is in the logs:\n{logs}");
            for output in &outputs {
                assert!(!output.contains(&secret), "a token is in {output}");
            }
        }
    }
}
