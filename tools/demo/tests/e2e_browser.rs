//! The checkout page in Debian's headless Chromium, end to end: `demo serve` (DynamoDB, the
//! Toss sandbox, the local sign-in issuer, both functions under `cargo lambda watch`, the
//! checkout app), driven by `browser/checkout.test.mjs` (playwright-core): a signed-in visitor's
//! checkout through `POST /v1/checkout` and the real `@tosspayments/tosspayments-sdk` loader,
//! then the table and the sandbox checked here.
//! Screenshots land in `target/artifacts/browser/`.
//!
//! Needs `/usr/bin/chromium` (or `$CHROMIUM`) and `npm ci` in `tools/demo/browser`, both done by
//! `scripts/install-deps`. In the `lambda-watch` nextest group (its name has `e2e`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use domain::{AttemptStatus, CustomerKey, Status};
use serde_json::Value;

/// A `demo serve` in its own process group: SIGTERM on drop, then SIGKILL to the group.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    fn start(ready: &Path) -> Self {
        let log = std::env::temp_dir().join(format!("demo-serve-{}.log", std::process::id()));
        let out = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_demo"));
        command
            .arg("serve")
            .arg("--ready-file")
            .arg(ready)
            .current_dir(workspace())
            // Installed tools of this checkout (the binary finds the workspace from its current dir).
            .envs(tool_env())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        Self {
            child: command.spawn().expect("spawn demo serve"),
            log,
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, signal: &str, target: String) {
        let _ = Command::new("kill")
            .args([format!("-{signal}"), "--".into(), target])
            .stderr(Stdio::null())
            .status();
    }

    /// SIGTERM to the demo alone (it must stop its children itself); its exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        self.signal("TERM", self.child.id().to_string());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "demo serve did not stop within 30 s of SIGTERM:\n{}",
            self.logs()
        );
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal("TERM", self.child.id().to_string());
            std::thread::sleep(Duration::from_secs(3));
        }
        self.signal("KILL", format!("-{}", self.child.id()));
        let _ = self.child.wait();
    }
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_millis(300),
    )
    .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_checkout_page_in_headless_chromium_subscribes_a_signed_in_visitor_through_the_real_sdk_loader_and_refuses_a_bad_card()
 {
    // Arrange: the browser and playwright-core are installed.
    let browser_dir = workspace().join("tools/demo/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is missing: run scripts/install-deps (apt-get install chromium)"
    );
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir()
            && browser_dir
                .join("node_modules/@tosspayments/tosspayments-sdk")
                .is_dir(),
        "playwright-core or @tosspayments/tosspayments-sdk is missing: run scripts/install-deps (npm ci in tools/demo/browser)"
    );
    let artifacts = workspace().join("target/artifacts/browser");
    let ready = std::env::temp_dir().join(format!("demo-serve-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&ready);

    let mut serve = Serve::start(&ready);
    let deadline = Instant::now() + Duration::from_secs(300);
    while !ready.is_file() {
        if let Some(status) = serve.child.try_wait().unwrap() {
            panic!(
                "demo serve exited ({status}) before it was ready:\n{}",
                serve.logs()
            );
        }
        assert!(
            Instant::now() < deadline,
            "demo serve not ready within 300 s:\n{}",
            serve.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let urls: Value = serde_json::from_str(&std::fs::read_to_string(&ready).unwrap()).unwrap();
    let _ = std::fs::remove_file(&ready);
    let url = |key: &str| urls[key].as_str().unwrap().to_owned();

    // Act: the browser run.
    let output = tokio::process::Command::new("node")
        .arg("checkout.test.mjs")
        .current_dir(&browser_dir)
        .env("DEMO_APP_URL", url("app"))
        .env("SANDBOX_URL", url("sandbox"))
        .env("ARTIFACT_DIR", &artifacts)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), output)
        .await
        .expect("the browser run took over 180 s")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser run failed ({}):\n{stdout}\n{stderr}\n--- demo serve ---\n{}",
        output.status,
        serve.logs()
    );
    let result: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|json| serde_json::from_str(json).unwrap())
        .unwrap_or_else(|| panic!("no RESULT line in:\n{stdout}"));

    // Assert: the table.
    let store = store::Store::new(testkit::dynamo::client_for(&url("dynamodb")), url("table"));
    let subscribed = CustomerKey::parse(result["subscribed"].as_str().unwrap()).unwrap();
    let sub = store
        .customer_subscription(&subscribed)
        .await
        .unwrap()
        .expect("the subscribed customer has a subscription in the table");
    assert_eq!((sub.status(), sub.credits()), (Status::Active, 30));
    let ledger = store.ledger(sub.id()).await.unwrap();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0].status(), AttemptStatus::Done);
    assert_eq!(ledger[0].amount().won(), 3900);
    assert_eq!(
        ledger[0].order_id().as_str(),
        result["orderId"].as_str().unwrap()
    );
    let refused = CustomerKey::parse(result["refused"].as_str().unwrap()).unwrap();
    assert!(
        store
            .customer_subscription(&refused)
            .await
            .unwrap()
            .is_none()
    );

    // Assert: the sandbox ledger.
    let state: Value = reqwest::get(format!("{}/__sandbox/state", url("sandbox")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let done: Vec<&Value> = state["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "DONE")
        .collect();
    assert_eq!(done.len(), 1, "{state}");
    assert_eq!(done[0]["totalAmount"], 3900);
    assert_eq!(done[0]["orderId"], result["orderId"]);
    assert_eq!(state["counters"]["chargeRequests"], 1, "{state}");

    for shot in ["01-checkout", "02-card-window", "03-done", "05-failed"] {
        assert!(
            artifacts.join(format!("{shot}.png")).is_file(),
            "{shot}.png"
        );
    }

    // Assert: SIGTERM stops everything the demo started.
    let status = serve.stop();
    assert!(
        status.success(),
        "demo serve exited with {status}:\n{}",
        serve.logs()
    );
    let mut ports = vec![
        port_of(&url("app")),
        port_of(&url("sandbox")),
        port_of(&url("lambda")),
    ];
    if std::env::var(testkit::dynamo::ENDPOINT_ENV).is_err() {
        ports.push(port_of(&url("dynamodb")));
    }
    for port in ports {
        assert!(!listening(port), "port {port} still listens after SIGTERM");
    }
}

/// Where `scripts/install-deps` put DynamoDB Local and cargo-lambda in this checkout, unless set.
fn tool_env() -> Vec<(&'static str, std::path::PathBuf)> {
    let root = workspace();
    [
        ("DYNAMODB_LOCAL_DIR", root.join(".tools/dynamodb-local")),
        ("CARGO_LAMBDA", root.join(".tools/venv/bin/cargo-lambda")),
    ]
    .into_iter()
    .filter(|(key, path)| std::env::var_os(key).is_none() && path.exists())
    .collect()
}

/// This checkout's workspace root: up from the current directory (nextest runs a test in its
/// package's folder). Not `testkit::workspace_root()`, which is fixed when testkit is compiled and
/// names another checkout when several share one target directory.
fn workspace() -> std::path::PathBuf {
    let dir = std::env::current_dir().unwrap();
    dir.ancestors()
        .find(|d| d.join("template.yaml").is_file() && d.join("Cargo.toml").is_file())
        .unwrap_or_else(|| panic!("no workspace above {}", dir.display()))
        .to_path_buf()
}
