//! Crash points for the fault-injection suite (`tools/faults`), compiled in only with the
//! `failpoints` feature; a production build has none of this.
//!
//! When `BILLING_FAILPOINT` names the point being passed, the process says so on stderr
//! (`FAILPOINT <name> reached`) and parks that task forever, so the test can SIGKILL the
//! process exactly there, with no chance of a cooperative shutdown.

/// Env var naming the failpoint to park at.
pub const ENV: &str = "BILLING_FAILPOINT";

/// Parks forever if `BILLING_FAILPOINT` is `name`; returns at once otherwise.
pub async fn hit(name: &str) {
    if std::env::var(ENV).is_ok_and(|armed| armed == name) {
        eprintln!("FAILPOINT {name} reached");
        std::future::pending::<()>().await;
    }
}
