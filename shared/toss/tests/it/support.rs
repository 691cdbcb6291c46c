use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::{AuthKey, BillingKey, CustomerKey, IdempotencyKey, Krw, OrderId, PaymentKey};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use toss::{ChargeRequest, Client, Config};
use url::Url;
use wiremock::{MockServer, Request, ResponseTemplate};

/// The public docs test key.
pub const SECRET: &str = "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R";
/// `Basic base64("test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R:")`, as printed in docs/toss-api.md §1.
pub const BASIC: &str = "Basic dGVzdF9za196WExrS0V5cE5BcldtbzUwblgzbG1lYXhZRzVSOg==";
/// A real-looking billing key: URL-safe base64 with `-`, `_` and `=` padding.
pub const BILLING_KEY: &str = "Z_t5vOvQxrj4499PeiJcjen28-V2RyqgYTwN44Rdzk0=";
pub const AUTH_KEY: &str = "bln_authKEY_4Kd9sLq2xYz";
pub const CUSTOMER_KEY: &str = "cust_01JDQ4ZC1V";
pub const ORDER_ID: &str = "sub-2026-10-abc123";
pub const IDEMPOTENCY_KEY: &str = "5f0c8f0e-7a1b-4c2d-9e3f-0123456789ab";

pub const PAYMENT_JSON: &str = include_str!("fixtures/payment.json");
pub const BILLING_JSON: &str = include_str!("fixtures/billing.json");

pub fn config(base: &str) -> Config {
    Config::new(SecretString::from(SECRET), Url::parse(base).unwrap())
}

pub fn client(server: &MockServer) -> Client {
    Client::new(config(&server.uri())).unwrap()
}

pub fn client_with(base: &str, adjust: impl FnOnce(&mut Config)) -> Client {
    let mut config = config(base);
    adjust(&mut config);
    Client::new(config).unwrap()
}

pub fn billing_key() -> BillingKey {
    BillingKey::parse(BILLING_KEY).unwrap()
}

pub fn auth_key() -> AuthKey {
    AuthKey::parse(AUTH_KEY).unwrap()
}

pub fn customer_key() -> CustomerKey {
    CustomerKey::parse(CUSTOMER_KEY).unwrap()
}

pub fn order_id() -> OrderId {
    OrderId::parse(ORDER_ID).unwrap()
}

pub fn payment_key() -> PaymentKey {
    PaymentKey::parse("tviva20240101abcDEF123").unwrap()
}

pub fn idempotency_key() -> IdempotencyKey {
    IdempotencyKey::parse(IDEMPOTENCY_KEY).unwrap()
}

pub fn charge_request() -> ChargeRequest {
    ChargeRequest {
        customer_key: customer_key(),
        amount: Krw::new(4900),
        order_id: order_id(),
        order_name: "토스 프라임 구독".into(),
        customer_email: None,
        customer_name: None,
    }
}

pub fn json(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), "application/json")
}

pub fn toss_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    json(
        status,
        &serde_json::json!({ "code": code, "message": message }).to_string(),
    )
    .insert_header("X-TossPayments-Trace-Id", "trace-abc-123")
}

pub async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

/// What a bare TCP server does with each connection.
#[derive(Clone, Copy)]
pub enum Misbehaviour {
    /// Reads the request, then closes the connection without a byte of answer.
    CloseAfterRequest,
    /// Answers `200` with a `Content-Length` longer than the body it sends, then closes.
    CloseMidBody,
}

/// A loopback server that misbehaves on every connection and counts them.
pub struct BrokenServer {
    pub uri: String,
    connections: Arc<AtomicUsize>,
}

impl BrokenServer {
    pub async fn start(misbehaviour: Misbehaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = vec![0u8; 16 * 1024];
                let _ = socket.read(&mut buf).await;
                if let Misbehaviour::CloseMidBody = misbehaviour {
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n";
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket
                        .write_all(br#"{"paymentKey":"pk_1","status":"DO"#)
                        .await;
                    let _ = socket.flush().await;
                }
                drop(socket);
            }
        });
        Self { uri, connections }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A loopback address nothing listens on.
pub async fn refused_uri() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    uri
}

/// Everything `tracing` wrote while the guard was alive, at every level.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.0.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Writer(sink.clone()))
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub const SHORT: Duration = Duration::from_millis(200);
pub const SLOW: Duration = Duration::from_millis(1500);
