//! Everything the demo runs: DynamoDB Local (or a given DynamoDB-API server) with a table made
//! from template.yaml, the Toss sandbox (in this process), both functions under
//! `cargo lambda watch`, and the checkout app. Dropping the [`Stack`] stops all of it.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use testkit::dynamo::DynamoLocal;
use testkit::lambda::Watch;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use toss_sandbox::{RunningSandbox, SandboxConfig};

use crate::app;
use crate::cli::Args;
use crate::config::{DUNNING_RETRY_DAYS, PLAN_AMOUNT, PLAN_CREDITS, SECRET_KEY, Urls};

/// billing-api's function-URL route under `cargo lambda watch`.
const BILLING_API_PATH: &str = "/lambda-url/billing-api";

/// Ports of servers this process started: after everything is dropped, the exit waits until
/// they are closed, so nothing is left listening when the demo returns.
static CHILD_PORTS: Mutex<Vec<u16>> = Mutex::new(Vec::new());

fn remember_port(port: u16) {
    if let Ok(mut ports) = CHILD_PORTS.lock() {
        ports.push(port);
    }
}

/// Waits (at most 10 s) until no server this process started still listens.
pub(crate) async fn wait_children_gone() {
    let ports = CHILD_PORTS.lock().map(|p| p.clone()).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    for port in ports {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The workspace the demo runs: the nearest folder up from the current directory holding
/// `template.yaml` and `Cargo.toml` (`scripts/demo` runs from the root), else the one this
/// binary was built from. Found at run time, so a binary built in another checkout that shares
/// the target directory still runs this checkout's functions, template and events.
pub(crate) fn workspace_root() -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|dir| {
            dir.ancestors()
                .find(|d| d.join("template.yaml").is_file() && d.join("Cargo.toml").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(testkit::workspace_root)
}

#[derive(Debug)]
pub(crate) struct Stack {
    /// Declared first: dropped first (the functions go before the servers they use).
    pub(crate) watch: Watch,
    app: JoinHandle<()>,
    pub(crate) sandbox: RunningSandbox,
    pub(crate) store: store::Store,
    urls: Urls,
    _dynamo: Option<DynamoLocal>,
    /// The sign-in provider: the walk and the checkout app mint their users' tokens here.
    pub(crate) issuer: auth_issuer::RunningIssuer,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.app.abort();
    }
}

static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Progress on stderr, with the seconds since the start.
pub(crate) fn step(text: &str) {
    let started = STARTED.get_or_init(Instant::now);
    eprintln!("demo [{:>5.1}s] {text}", started.elapsed().as_secs_f64());
}

impl Stack {
    pub(crate) async fn start(args: &Args) -> anyhow::Result<Self> {
        // DynamoDB Local (a JVM) starts while the function binaries compile.
        let dynamo = async {
            match &args.dynamodb_endpoint {
                Some(endpoint) => {
                    step(&format!("using the DynamoDB-API server at {endpoint}"));
                    Ok((None, endpoint.trim_end_matches('/').to_owned()))
                }
                None => {
                    step("starting DynamoDB Local (java, loopback only)");
                    let server = DynamoLocal::start().await?;
                    let endpoint = server.endpoint().to_owned();
                    step(&format!("DynamoDB Local listening at {endpoint}"));
                    if let Some(port) = endpoint
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse::<u16>().ok())
                    {
                        remember_port(port);
                    }
                    Ok::<_, anyhow::Error>((Some(server), endpoint))
                }
            }
        };
        let root = workspace_root();
        let (dynamo, built) = tokio::join!(dynamo, build_functions());
        let (dynamo, endpoint) = dynamo?;
        built?;

        let client = testkit::dynamo::client_for(&endpoint);
        let table = testkit::dynamo::unique_table_name("demo");
        step(&format!("creating table {table} from template.yaml"));
        testkit::dynamo::TableDefinition::from_template(&root.join("template.yaml"))?
            .create(&client, &table)
            .await?;
        let store = store::Store::new(client, table.clone());

        let sandbox = toss_sandbox::spawn(SandboxConfig::default())
            .await
            .context("start the Toss sandbox")?;

        // billing-api trusts this issuer's tokens on its /v1 routes (AUTH_ISSUER).
        let issuer = auth_issuer::spawn(auth_issuer::IssuerConfig::default())
            .await
            .context("start the local sign-in issuer")?;

        let app_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, args.port))
            .await
            .with_context(|| format!("bind the checkout app to 127.0.0.1:{}", args.port))?;
        let app_url = format!("http://{}", app_listener.local_addr()?);

        step("starting both functions under cargo lambda watch (the Lambda runtime emulator)");
        let watch = Watch::builder()
            .workspace(&root)
            .envs(testkit::dynamo::sdk_env(&endpoint))
            .env("TOSS_SECRET_KEY", SECRET_KEY)
            .env("TOSS_API_BASE", sandbox.base_url())
            .env("TABLE_NAME", &table)
            .env("AUTH_ISSUER", issuer.issuer_url())
            // The checkout's success and fail URLs point back at billing-api under the emulator.
            .env_base_url("API_BASE_URL", BILLING_API_PATH)
            .env("APP_SUCCESS_URL", format!("{app_url}/done"))
            .env("APP_FAIL_URL", format!("{app_url}/failed"))
            .env("PLAN_AMOUNT", PLAN_AMOUNT.to_string())
            .env("PLAN_CREDITS", PLAN_CREDITS.to_string())
            .env(
                "DUNNING_RETRY_DAYS",
                DUNNING_RETRY_DAYS.map(|d| d.to_string()).join(","),
            )
            .env("CHARGE_CONCURRENCY", "8")
            .env("TOSS_CHARGE_TIMEOUT_SECONDS", "10")
            .env("AWS_LAMBDA_LOG_LEVEL", "info")
            .invoke_timeout(Duration::from_secs(180))
            .start()
            .await?;
        remember_port(watch.port());

        let lambda = watch.base_url();
        let urls = Urls {
            sandbox: sandbox.base_url(),
            billing_api: format!("{lambda}{BILLING_API_PATH}"),
            issuer: issuer.issuer_url().to_owned(),
            lambda,
            dynamodb: endpoint,
            table,
            function_logs: watch.log_path().display().to_string(),
            app: app_url,
        };
        // Toss's webhooks (console refunds, deleted keys) go to billing-api as in production;
        // a minute of Toss's retry schedule lasts 50 ms here.
        sandbox.sandbox().set_webhook(
            SECRET_KEY,
            toss_sandbox::WebhookEndpoint {
                minute_millis: 50,
                ..toss_sandbox::WebhookEndpoint::new(format!("{}/toss/webhooks", urls.billing_api))
            },
        );
        let router = app::router(app::AppState::new(issuer.issuer().clone(), &urls));
        let app = tokio::spawn(async move {
            if let Err(e) = axum::serve(app_listener, router).await {
                eprintln!("demo: the checkout app stopped: {e}");
            }
        });
        let stack = Self {
            watch,
            app,
            sandbox,
            store,
            urls,
            _dynamo: dynamo,
            issuer,
        };
        stack.warm_up().await?;
        step("ready");
        Ok(stack)
    }

    pub(crate) fn urls(&self) -> Urls {
        self.urls.clone()
    }

    /// The emulator starts each function on its first call: make those calls now, so the
    /// first step of the demo does not wait for it.
    async fn warm_up(&self) -> anyhow::Result<()> {
        step("warming up billing-api and charge-subscriptions");
        let warm = self
            .watch
            .http_get(
                "billing-api",
                "/billing/fail?code=PAY_PROCESS_CANCELED&message=warm-up",
            )
            .await
            .context("call billing-api")?;
        if warm.status != 302 {
            bail!(
                "billing-api did not start: HTTP {} {}\n(function logs: {})",
                warm.status,
                warm.body,
                self.urls.function_logs
            );
        }
        // An as-of time long before anything exists: a sweep that finds nothing due.
        self.sweep(chrono::DateTime::UNIX_EPOCH)
            .await
            .context("call charge-subscriptions")?;
        Ok(())
    }

    /// Invokes `charge-subscriptions` with the sample EventBridge event whose `time` is `as_of`.
    pub(crate) async fn sweep(
        &self,
        as_of: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<serde_json::Value> {
        let path = workspace_root().join("events/charge-subscriptions.scheduled.json");
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let mut event: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
        event["time"] = serde_json::json!(as_of.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        self.watch
            .invoke("charge-subscriptions", &event)
            .await
            .with_context(|| {
                format!(
                    "sweep at {as_of} (function logs: {})",
                    self.urls.function_logs
                )
            })
    }

    /// Keeps serving until the process is told to stop.
    pub(crate) async fn serve_forever(self) -> anyhow::Result<()> {
        std::future::pending::<()>().await;
        drop(self);
        Ok(())
    }
}

/// `cargo build` of both function binaries, so compile errors show here with cargo's message
/// and the emulator's own build is a no-op. Killed if the demo is interrupted meanwhile.
async fn build_functions() -> anyhow::Result<()> {
    step("building billing-api and charge-subscriptions (cargo build)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = tokio::process::Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--bin",
            "billing-api",
            "--bin",
            "charge-subscriptions",
        ])
        .current_dir(workspace_root())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("run cargo build")?;
    if !output.status.success() {
        bail!(
            "cargo build of the functions failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    step("functions built");
    Ok(())
}
