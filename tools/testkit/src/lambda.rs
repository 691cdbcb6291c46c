//! The real function binaries under `cargo lambda watch`, the Lambda runtime emulator.
//!
//! Facts this module relies on (cargo-lambda 1.9):
//! - a non-HTTP function is invoked with `POST /2015-03-31/functions/<fn>/invocations`; a handler
//!   error comes back as HTTP 500 with `{"errorType", "errorMessage"}`;
//! - an HTTP (`lambda_http`) function is reached through its function-URL route
//!   `/lambda-url/<fn>/<path>?<query>`: the handler sees `<path>` and the query string;
//! - the functions inherit the emulator's environment; `--env-file` sets more (`--env-var` would split
//!   values at commas);
//! - the server answers HTTP as soon as it listens; each function compiles on its first call.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

use crate::{free_port, workspace_root};

/// Env var naming the `cargo-lambda` executable.
pub const CARGO_LAMBDA_ENV: &str = "CARGO_LAMBDA";

const INSTALL_HINT: &str = "run `scripts/install-deps` from the workspace root (it runs `python3 -m venv \
     .tools/venv && .tools/venv/bin/pip install cargo-lambda`), or set CARGO_LAMBDA to a cargo-lambda executable";

/// Finds `cargo-lambda`: `$CARGO_LAMBDA`, then `<workspace>/.tools/venv/bin/cargo-lambda`, then `PATH`.
pub fn cargo_lambda() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(CARGO_LAMBDA_ENV) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!(
            "CARGO_LAMBDA={} is not a file; {INSTALL_HINT}",
            path.display()
        );
    }
    let local = workspace_root().join(".tools/venv/bin/cargo-lambda");
    if local.is_file() {
        return Ok(local);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("cargo-lambda"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|candidate| candidate.is_file());
    on_path.ok_or_else(|| {
        anyhow!(
            "cargo-lambda not found (looked at $CARGO_LAMBDA, {}, PATH); {INSTALL_HINT}",
            local.display()
        )
    })
}

/// The sweep's configured schedule rule (see [`WatchBuilder::start`]).
pub const SWEEP_RULE_ARN_ENV: &str = "SWEEP_RULE_ARN";

/// The rule ARN of the sample scheduled event, `resources[0]` of
/// `events/charge-subscriptions.scheduled.json`.
pub fn sample_schedule_rule() -> anyhow::Result<String> {
    let event = crate::event("charge-subscriptions.scheduled.json")?;
    event["resources"][0]
        .as_str()
        .map(str::to_owned)
        .context("events/charge-subscriptions.scheduled.json has no resources[0]")
}

/// How to start a [`Watch`].
#[derive(Debug, Clone)]
pub struct WatchBuilder {
    dir: PathBuf,
    env: Vec<(String, String)>,
    /// Variables whose value is the emulator's own base URL followed by a suffix.
    base_url_env: Vec<(String, String)>,
    prebuild: Vec<String>,
    invoke_timeout: Duration,
    ready_timeout: Duration,
}

impl Default for WatchBuilder {
    fn default() -> Self {
        Self {
            dir: workspace_root(),
            env: Vec::new(),
            base_url_env: Vec::new(),
            prebuild: Vec::new(),
            invoke_timeout: Duration::from_secs(300),
            ready_timeout: Duration::from_secs(60),
        }
    }
}

impl WatchBuilder {
    /// Runs the emulator in another Cargo workspace (default: this workspace's root).
    pub fn workspace(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// Sets an environment variable for the functions of this instance.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets several environment variables (e.g. [`crate::dynamo::sdk_env`]).
    pub fn envs<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Sets `key` to this emulator's own base URL followed by `suffix`
    /// (e.g. `API_BASE_URL` = `http://127.0.0.1:<port>/lambda-url/billing-api`): the port is
    /// chosen only when the emulator starts.
    pub fn env_base_url(mut self, key: impl Into<String>, suffix: impl Into<String>) -> Self {
        self.base_url_env.push((key.into(), suffix.into()));
        self
    }

    /// Compiles this function (`cargo build --bin <name>`) before the emulator starts, so a compile
    /// error fails [`WatchBuilder::start`] with cargo's message instead of timing out an invoke.
    pub fn prebuild(mut self, function: impl Into<String>) -> Self {
        self.prebuild.push(function.into());
        self
    }

    /// How long one invoke or HTTP request may take (default 300 s: a first call compiles).
    pub fn invoke_timeout(mut self, timeout: Duration) -> Self {
        self.invoke_timeout = timeout;
        self
    }

    /// Starts `cargo lambda watch` on a free loopback port in the workspace root and waits until it
    /// answers HTTP.
    ///
    /// Unless set, `SWEEP_RULE_ARN` is the rule named by `events/charge-subscriptions.scheduled.json`,
    /// as template.yaml configures the deployed sweep with its own rule: the sample event (and every
    /// test event made from it) then passes the sweep's edge, and any other rule is refused.
    pub async fn start(mut self) -> anyhow::Result<Watch> {
        if !self.env.iter().any(|(key, _)| key == SWEEP_RULE_ARN_ENV) {
            self.env
                .push((SWEEP_RULE_ARN_ENV.to_owned(), sample_schedule_rule()?));
        }
        let cargo_lambda = cargo_lambda()?;
        refuse_metadata_overrides(&self.dir, &self.env)?;
        for function in &self.prebuild {
            prebuild(&self.dir, function).await?;
        }
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port()?;
            let mut watch = Watch::spawn(&cargo_lambda, port, &self)?;
            match watch.wait_ready(self.ready_timeout).await {
                Ok(()) => return Ok(watch),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("cargo lambda watch did not start")))
    }
}

async fn prebuild(dir: &Path, function: &str) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = tokio::process::Command::new(cargo)
        .args(["build", "--quiet", "--bin", function])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("run cargo build --bin {function}"))?;
    if !output.status.success() {
        bail!(
            "cargo build --bin {function} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A running `cargo lambda watch` on `127.0.0.1:<port>`, serving every function binary of the
/// workspace. Its output (the emulator's and the functions' logs) goes to a file readable with
/// [`Watch::logs`]. Dropping it kills the whole process group; a watchdog shell does the same if
/// the test process dies first.
pub struct Watch {
    port: u16,
    child: Child,
    log: PathBuf,
    env_file: PathBuf,
    http: reqwest::Client,
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The env may hold secrets: never print it.
        f.debug_struct("Watch")
            .field("port", &self.port)
            .field("pid", &self.child.id())
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

/// A handler error reported by the emulator (HTTP 500 with `errorType` / `errorMessage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    pub error_type: String,
    pub error_message: String,
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "function error {}: {}",
            self.error_type, self.error_message
        )
    }
}

impl std::error::Error for FunctionError {}

/// The answer of an HTTP function (redirects are not followed).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `Location` header.
    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.body)
            .with_context(|| format!("response body is not JSON: {}", self.body))
    }
}

impl Watch {
    /// A builder: set env vars, functions to compile first, timeouts.
    pub fn builder() -> WatchBuilder {
        WatchBuilder::default()
    }

    /// Starts an emulator whose functions get `env` (in addition to this process's environment).
    pub async fn start<K: Into<String>, V: Into<String>>(
        env: impl IntoIterator<Item = (K, V)>,
    ) -> anyhow::Result<Self> {
        Self::builder().envs(env).start().await
    }

    /// The emulator's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Invokes `function` with `payload` as `cargo lambda invoke` does, returning its JSON result.
    /// A handler error is an `Err` that downcasts to [`FunctionError`].
    pub async fn invoke(&self, function: &str, payload: &Value) -> anyhow::Result<Value> {
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.base_url()
        );
        let response = self
            .http
            .post(&url)
            .json(payload)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .with_context(|| format!("read the answer of {url}"))?;
        if status.is_success() {
            if body.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&body)
                .with_context(|| format!("{function} answered non-JSON: {body}"));
        }
        if let Ok(error) = serde_json::from_str::<Value>(&body)
            && let (Some(error_type), Some(error_message)) = (
                error.get("errorType").and_then(Value::as_str),
                error.get("errorMessage").and_then(Value::as_str),
            )
        {
            return Err(FunctionError {
                error_type: error_type.to_owned(),
                error_message: error_message.to_owned(),
            }
            .into());
        }
        bail!("invoking {function} answered HTTP {status}: {body}")
    }

    /// `GET` on an HTTP function through its function-URL route, `/lambda-url/<function><path_and_query>`
    /// (`path_and_query` starts with `/`). Redirects are not followed.
    pub async fn http_get(
        &self,
        function: &str,
        path_and_query: &str,
    ) -> anyhow::Result<HttpResponse> {
        let separator = if path_and_query.starts_with('/') {
            ""
        } else {
            "/"
        };
        let url = format!(
            "{}/lambda-url/{function}{separator}{path_and_query}",
            self.base_url()
        );
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .text()
            .await
            .with_context(|| format!("read the answer of {url}"))?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    /// Everything the emulator and the functions wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read(&self.log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The file the logs are written to.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    fn spawn(cargo_lambda: &Path, port: u16, builder: &WatchBuilder) -> anyhow::Result<Self> {
        let tag = format!("{}-{port}", std::process::id());
        let dir = std::env::temp_dir();
        let log = dir.join(format!("testkit-lambda-watch-{tag}.log"));
        let env_file = dir.join(format!("testkit-lambda-watch-{tag}.env"));
        let mut env = builder.env.clone();
        env.extend(
            builder
                .base_url_env
                .iter()
                .map(|(key, suffix)| (key.clone(), format!("http://127.0.0.1:{port}{suffix}"))),
        );
        write_env_file(&env_file, &env)?;
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;

        // The watchdog: the shell leads a new process group holding cargo-lambda and every function
        // it runs; when the test process or cargo-lambda is gone it kills the whole group.
        let script = r#"
            parent="$1"; shift
            stop() { trap - TERM INT HUP; kill -TERM 0 2>/dev/null; exit 143; }
            trap stop TERM INT HUP
            "$@" &
            watch=$!
            while kill -0 "$parent" 2>/dev/null && kill -0 "$watch" 2>/dev/null; do sleep 0.5; done
            stop
        "#;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(script)
            .arg("lambda-watch-watchdog")
            .arg(std::process::id().to_string())
            .arg(cargo_lambda)
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
            ])
            .arg("--invoke-port")
            .arg(port.to_string())
            .arg("--env-file")
            .arg(&env_file)
            .current_dir(&builder.dir)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .context("spawn sh to run cargo lambda watch")?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(builder.invoke_timeout)
            .build()
            .context("build the HTTP client")?;
        Ok(Self {
            port,
            child,
            log,
            env_file,
            http,
        })
    }

    async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .context("build the HTTP client")?;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "cargo lambda watch exited with {status} before listening; its output:\n{}",
                    self.logs()
                );
            }
            // Any HTTP answer (the root path answers 404) means the emulator is listening.
            if probe.get(self.base_url()).send().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "cargo lambda watch did not answer on {} within {timeout:?}; its output:\n{}",
                    self.base_url(),
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill_group(&mut self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.kill_group("TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever ignored TERM (or outlived the shell) goes now.
        self.kill_group("KILL");
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.env_file);
    }
}

/// Writes `KEY='value'` lines (dotenv syntax: no `$` expansion; single quotes keep `,` and spaces
/// literal; a value holding `'` is double-quoted with `\\` and `"` escaped).
fn write_env_file(path: &Path, env: &[(String, String)]) -> anyhow::Result<()> {
    let mut text = String::new();
    for (key, value) in env {
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            bail!("invalid environment variable name {key:?}");
        }
        if value.contains('\n') {
            bail!("environment variable {key} has a newline, which the env file cannot carry");
        }
        if value.contains('\'') {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
            text.push_str(&format!("{key}=\"{escaped}\"\n"));
        } else {
            text.push_str(&format!("{key}='{value}'\n"));
        }
    }
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

/// cargo-lambda 1.9 gives `[workspace.metadata.lambda.env]` / `[package.metadata.lambda.env]` the
/// last word over the process environment, `--env-file` and `--env-var`. A test that sets one of
/// those keys would silently run with the manifest's value, so refuse instead.
fn refuse_metadata_overrides(dir: &Path, env: &[(String, String)]) -> anyhow::Result<()> {
    let mut manifests = vec![dir.join("Cargo.toml")];
    for group in std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
    {
        for member in std::fs::read_dir(group.path())
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
        {
            let manifest = member.path().join("Cargo.toml");
            if manifest.is_file() {
                manifests.push(manifest);
            }
        }
    }
    for manifest in manifests {
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let keys = metadata_env_keys(&text);
        if let Some((key, _)) = env.iter().find(|(key, _)| keys.contains(key)) {
            bail!(
                "{key} is set in the lambda env metadata of {}; cargo lambda watch would ignore the test's \
                 value for it. Keep test-controlled variables out of [*.metadata.lambda.env] (use .env for local runs)",
                manifest.display()
            );
        }
    }
    Ok(())
}

/// Keys of `[workspace.metadata.lambda.env]` / `[package.metadata.lambda.env]` (simple `KEY = …` lines).
fn metadata_env_keys(manifest: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            let header = line.trim_matches(|c| c == '[' || c == ']').replace(' ', "");
            inside = header == "workspace.metadata.lambda.env"
                || header == "package.metadata.lambda.env";
            continue;
        }
        if inside && let Some((key, _)) = line.split_once('=') {
            let key = key.trim().trim_matches('"');
            if !key.is_empty() && !key.starts_with('#') {
                keys.push(key.to_owned());
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_env_keys_are_read_from_both_workspace_and_package_tables() {
        let manifest = "[package]\nname = \"x\"\n[workspace.metadata.lambda.env]\nTABLE_NAME = \"t\"\n# RUST_LOG = \"x\"\n[package.metadata.lambda.env]\n\"PLAN_AMOUNT\" = \"1\"\n[dependencies]\nserde = \"1\"\n";

        assert_eq!(metadata_env_keys(manifest), ["TABLE_NAME", "PLAN_AMOUNT"]);
    }

    #[test]
    fn env_file_values_keep_commas_dollars_and_quotes() {
        let path =
            std::env::temp_dir().join(format!("testkit-env-file-test-{}.env", std::process::id()));
        let env = [
            ("A".to_owned(), "1,3,5".to_owned()),
            ("B".to_owned(), "it's \"q\" $HOME".to_owned()),
        ];

        write_env_file(&path, &env).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(text, "A='1,3,5'\nB=\"it's \\\"q\\\" $HOME\"\n");
    }

    #[test]
    fn a_newline_in_a_value_is_refused() {
        let path = std::env::temp_dir().join("testkit-never-written.env");

        let result = write_env_file(&path, &[("A".to_owned(), "x\ny".to_owned())]);

        assert!(result.is_err());
    }
}
