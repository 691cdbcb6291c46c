//! Billing keys sealed through the real KMS SDK client against a loopback server that answers
//! KMS's `GenerateDataKey` and `Decrypt` as AWS does (JSON 1.1 protocol): the data key the
//! store seals with is the one KMS returned, one `Decrypt` opens another instance's keys, the
//! purpose travels in the encryption context, and a refusal fails the cold start naming the
//! variable without echoing anything.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use billing::kms::Kms;
use store::{KeyService, Sealer};
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const KEY_ARN: &str =
    "arn:aws:kms:ap-northeast-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn client(server: &MockServer) -> aws_sdk_kms::Client {
    let config = aws_sdk_kms::Config::builder()
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
    aws_sdk_kms::Client::from_conf(config)
}

fn kms(server: &MockServer) -> Kms {
    Kms::new(client(server), KEY_ARN)
}

/// KMS as far as envelope encryption sees it: each data key it makes is "wrapped" as
/// `wrapped:<n>`, and `Decrypt` gives back the data key of that number. Every request body is
/// kept for the assertions.
#[derive(Default)]
struct FakeKms {
    made: AtomicUsize,
    requests: Mutex<Vec<serde_json::Value>>,
}

fn data_key(n: usize) -> [u8; 32] {
    [u8::try_from(n % 251).unwrap_or(0) + 1; 32]
}

impl Respond for &'static FakeKms {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        self.requests.lock().unwrap().push(body.clone());
        let target = request
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let answer = match target.as_str() {
            "TrentService.GenerateDataKey" => {
                let n = self.made.fetch_add(1, Ordering::SeqCst);
                serde_json::json!({
                    "KeyId": KEY_ARN,
                    "Plaintext": B64.encode(data_key(n)),
                    "CiphertextBlob": B64.encode(format!("wrapped:{n}")),
                })
            }
            "TrentService.Decrypt" => {
                let blob = B64
                    .decode(body["CiphertextBlob"].as_str().unwrap())
                    .unwrap();
                let n: usize = String::from_utf8(blob)
                    .unwrap()
                    .strip_prefix("wrapped:")
                    .unwrap()
                    .parse()
                    .unwrap();
                serde_json::json!({
                    "KeyId": KEY_ARN,
                    "Plaintext": B64.encode(data_key(n)),
                    "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                })
            }
            other => panic!("unexpected KMS call {other}"),
        };
        ResponseTemplate::new(200)
            .insert_header("content-type", "application/x-amz-json-1.1")
            .set_body_string(answer.to_string())
    }
}

#[tokio::test]
async fn data_keys_are_made_and_decrypted_under_the_configured_key_bound_to_their_purpose() {
    let fake: &'static FakeKms = Box::leak(Box::default());
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("content-type", "application/x-amz-json-1.1"))
        .respond_with(fake)
        .mount(&server)
        .await;
    let service = std::sync::Arc::new(kms(&server));

    let made = service.generate_data_key().await.unwrap();
    assert_eq!(made.plaintext, data_key(0));
    assert_eq!(made.encrypted, b"wrapped:0");
    let opened = service.decrypt_data_key(&made.encrypted).await.unwrap();
    assert_eq!(opened, data_key(0));

    let first = Sealer::new(service.clone()).await.unwrap();
    let second = Sealer::new(service.clone()).await.unwrap();
    let requests = fake.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 4, "{requests:?}");
    for request in &requests {
        assert_eq!(request["KeyId"], KEY_ARN);
        assert_eq!(
            request["EncryptionContext"],
            serde_json::json!({"purpose": "toss-billing-key"}),
            "the data key is bound to its purpose"
        );
    }
    assert_eq!(requests[0]["KeySpec"], "AES_256");
    drop((first, second));
}

#[tokio::test]
async fn a_kms_refusal_fails_the_start_naming_the_variable_and_echoing_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_string(
                    r#"{"__type":"AccessDeniedException","Message":"User arn:aws:sts::123456789012:assumed-role/x is not authorized to perform kms:GenerateDataKey secret-detail"}"#,
                ),
        )
        .mount(&server)
        .await;
    let mut config = billing::Config::from_lookup(|name| match name {
        "TOSS_SECRET_KEY" => Some("test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R".into()),
        "TABLE_NAME" => Some("t".into()),
        "BILLING_KEY_KMS_KEY_ID" => Some(KEY_ARN.into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(config.billing_key_kms_key.as_deref(), Some(KEY_ARN));

    let err = billing::kms::sealer(&config, || client(&server))
        .await
        .unwrap_err();

    let text = err.to_string();
    assert!(text.contains("BILLING_KEY_KMS_KEY_ID"), "{text}");
    assert!(text.contains("AccessDeniedException"), "{text}");
    assert!(!text.contains("secret-detail"), "{text}");

    config.billing_key_kms_key = None;
    let none = billing::kms::sealer(&config, || panic!("no client without a key"))
        .await
        .unwrap();
    assert!(none.is_none(), "a local run stores keys as they are");
}
