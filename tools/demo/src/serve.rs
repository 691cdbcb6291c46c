//! `demo serve`: the stack keeps running and a checkout page waits for a click.

use anyhow::Context;

use crate::cli::Args;
use crate::stack;

/// Starts everything, prints where it is (and writes it to `--ready-file`), then serves until
/// the process is told to stop.
pub(crate) async fn run(args: &Args) -> anyhow::Result<()> {
    let stack = stack::Stack::start(args).await?;
    let urls = stack.urls();
    println!();
    println!("  Checkout page   {}/", urls.app);
    println!(
        "  Toss sandbox    {}  (ledger: {}/__sandbox/state)",
        urls.sandbox, urls.sandbox
    );
    println!(
        "  billing-api     {}  (/v1/… with a bearer token; /billing/success, /billing/fail)",
        urls.billing_api
    );
    println!(
        "  sign-in         {}  (the local OIDC issuer; the app mints its users' tokens here)",
        urls.issuer
    );
    println!("  DynamoDB        {}  table {}", urls.dynamodb, urls.table);
    println!("  function logs   {}", urls.function_logs);
    println!();
    println!(
        "Open the checkout page (you are signed in as a new demo user), press the button, pick a test card. Ctrl-C stops everything."
    );
    if let Some(path) = &args.ready_file {
        let json = serde_json::to_vec_pretty(&urls).context("encode the URLs")?;
        // Write then rename, so a reader never sees half a file.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, json).with_context(|| format!("write {}", partial.display()))?;
        std::fs::rename(&partial, path).with_context(|| format!("write {}", path.display()))?;
    }
    stack.serve_forever().await
}
