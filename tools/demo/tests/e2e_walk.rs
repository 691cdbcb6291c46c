//! `demo walk` (what `scripts/demo` runs) ends with exit 0 and the full timeline, so the
//! README's first command keeps working. In the `lambda-watch` nextest group (its name has `e2e`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

#[test]
fn e2e_demo_walk_runs_the_whole_timeline_and_exits_0() {
    let output = Command::new(env!("CARGO_BIN_EXE_demo"))
        .arg("walk")
        .current_dir(testkit::workspace_root())
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
        "alice  first charge, month 1",
        "anchor 2027-01-31 (일)",
        "2027-02-28 (일) 09:00 KST  alice  renewal, month 2",
        "canceled at period end, not charged",
        "retry 3 of month 5",
        "19,500원 approved in 5 payments, 4 declines",
        "Every step ended as expected",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
}
