//! The Toss secret key read through the real SDK client from a loopback server that answers
//! SSM's `GetParameter` as AWS does: the value reaches the configuration and never an error,
//! a `Debug` output or a log line.

use std::io::Write;
use std::sync::{Arc, Mutex};

use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
use billing::secret::{PARAMETER_VAR, ParameterStore, ReadError, Ssm, TossSecret};
use secrecy::ExposeSecret;
use wiremock::matchers::{body_partial_json, header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "live_sk_U3NtU2VjcmV0TmV2ZXJQcmludGVk";
const PARAMETER: &str = "/toss-subscriptions/toss-secret-key";

fn ssm(server: &MockServer) -> Ssm {
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("ap-northeast-2"))
        .credentials_provider(Credentials::new(
            "AKIDTEST",
            "not-a-secret",
            None,
            None,
            "test",
        ))
        .endpoint_url(server.uri())
        .build();
    Ssm::new(aws_sdk_ssm::Client::from_conf(config))
}

fn answer(kind: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_string(format!(
            r#"{{"Parameter":{{"Name":"{PARAMETER}","Type":"{kind}","Value":"{SECRET}","Version":3,"ARN":"arn:aws:ssm:ap-northeast-2:123456789012:parameter{PARAMETER}","DataType":"text"}}}}"#
        ))
}

fn refusal(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_string(format!(
            r#"{{"__type":"{code}","message":"refused for {PARAMETER}"}}"#
        ))
}

fn env(name: &str) -> Option<String> {
    match name {
        "TABLE_NAME" => Some("t".into()),
        PARAMETER_VAR => Some(PARAMETER.into()),
        _ => None,
    }
}

/// Every log line of the SDK and of the loader, at every level, while `f` runs.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn the_secret_key_is_read_decrypted_from_the_parameter_and_never_logged() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "AmazonSSM.GetParameter"))
        .and(body_partial_json(
            serde_json::json!({"Name": PARAMETER, "WithDecryption": true}),
        ))
        .respond_with(answer("SecureString"))
        .expect(1)
        .mount(&server)
        .await;
    let (logs, _guard) = capture();

    let secret = TossSecret::load(&env, &ssm(&server)).await.unwrap();
    let config = billing::Config::from_lookup(secret.lookup(env)).unwrap();
    tracing::info!(?config, "configuration loaded");

    assert_eq!(config.toss.secret_key.expose_secret(), SECRET);
    let logs = logs.text();
    assert!(logs.contains("configuration loaded"), "{logs}");
    assert!(!logs.contains("U3NtU2VjcmV0"), "{logs}");
}

#[tokio::test]
async fn a_missing_parameter_fails_the_start_naming_it_and_a_refused_read_names_the_code() {
    for (response, expected) in [
        (refusal(400, "ParameterNotFound"), ReadError::NotFound),
        (
            refusal(400, "AccessDeniedException"),
            ReadError::Refused("AccessDeniedException".into()),
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(response)
            .mount(&server)
            .await;

        let read = ssm(&server)
            .read_secure_string(PARAMETER)
            .await
            .unwrap_err();
        let err = TossSecret::load(&env, &ssm(&server)).await.unwrap_err();

        assert_eq!(read, expected);
        assert_eq!(err.name, PARAMETER_VAR);
        assert!(err.to_string().contains(PARAMETER), "{err}");
    }
}

#[tokio::test]
async fn a_plain_string_parameter_is_refused_and_its_value_never_shown() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer("String"))
        .mount(&server)
        .await;
    let (logs, _guard) = capture();

    let err = TossSecret::load(&env, &ssm(&server)).await.unwrap_err();

    assert!(err.to_string().contains("SecureString"), "{err}");
    let shown = format!("{err} {err:?} {}", logs.text());
    assert!(!shown.contains("U3NtU2VjcmV0"), "{shown}");
}

#[tokio::test]
async fn an_unreachable_parameter_store_fails_the_start_naming_the_parameter() {
    let server = MockServer::start().await;
    let store = ssm(&server);
    drop(server);

    let err = TossSecret::load(&env, &store).await.unwrap_err();

    assert_eq!(err.name, PARAMETER_VAR);
    assert!(err.to_string().contains("could not be reached"), "{err}");
}
