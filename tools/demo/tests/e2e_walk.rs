//! `demo walk` (what `scripts/demo` runs) ends with exit 0 and the full timeline, so the
//! README's first command keeps working: signed-in checkouts, the app API, renewals, dunning. In the `lambda-watch` nextest group (its name has `e2e`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

#[test]
fn e2e_demo_walk_runs_the_whole_timeline_through_checkout_and_the_app_api_and_exits_0() {
    let output = Command::new(env!("CARGO_BIN_EXE_demo"))
        .arg("walk")
        .current_dir(workspace())
        // Installed tools of this checkout (the binary finds the workspace from its current dir).
        .envs(tool_env())
        .stdin(Stdio::null())
        .output()
        .expect("run demo walk");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(
        output.status.success(),
        "demo walk failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for expected in [
        "POST /v1/checkout → customer key cus_",
        "alice  first charge, month 1",
        "alice  GET /v1/subscription",
        "200 consumed 1",
        "200 replayed",
        "422 KEY_REUSED",
        "409 INSUFFICIENT_CREDITS",
        "bob    POST /v1/subscription/resume",
        "409 NO_ACTIVE_SUBSCRIPTION",
        "200 8 payments",
        "anchor 2027-01-31 (일)",
        "2027-02-28 (일) 09:00 KST  alice  renewal, month 2",
        "canceled at period end, not charged",
        "retry 3 of month 5",
        "dave   POST /v1/subscription/cancel withdraw",
        "200 refunded, ended now",
        "erin   console refund → webhook",
        "refunded 3,900원 (ledger = Toss's cancels)",
        "27,300원 approved in 7 payments, 7,800원 refunded, 4 declines",
        "Every step ended as expected",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
    // No session token (a JWT starts `eyJ`), Toss authKey or checkout state is ever printed.
    for secret in ["eyJ", "authKey", "state="] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret:?} appears in the output:\n{stdout}\n{stderr}"
        );
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
