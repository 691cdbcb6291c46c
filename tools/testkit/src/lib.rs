//! Test harness for the workspace's integration and end-to-end tests.
//!
//! - [`dynamo`]: AWS's own DynamoDB Local on loopback, and tables created from `template.yaml`.
//! - [`lambda`]: the real function binaries under `cargo lambda watch` (the Lambda runtime emulator).
//!
//! Nothing here depends on the workspace's other crates: it is their dev-dependency.

pub mod dynamo;
pub mod lambda;

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;

use anyhow::Context;

/// The Cargo workspace root (where `template.yaml`, `events/` and `.tools/` live).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // tools/testkit -> workspace root
    manifest_dir
        .parent()
        .and_then(|tools| tools.parent())
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// Reads `events/<name>` from the workspace as JSON (e.g. `event("billing-api.success.json")`).
pub fn event(name: &str) -> anyhow::Result<serde_json::Value> {
    let path = workspace_root().join("events").join(name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("bind 127.0.0.1:0 to find a free port")?;
    Ok(listener.local_addr()?.port())
}
