//! The local demo (`scripts/demo`): DynamoDB Local, the Toss sandbox and both functions under
//! `cargo lambda watch`, wired exactly as deployed (configuration only through the environment).
//!
//! - `demo walk` (default): one customer through card registration, the first charge, three
//!   renewals on the test clock (a Jan 31 anchor across February), a declined renewal, the
//!   dunning retries and the cancellation; a second customer who cancels at period end; a card
//!   refused at registration. Prints a timeline and exits 0 only if every step went as expected.
//! - `demo serve`: keeps everything running and serves a small checkout page to click through.
//!
//! Every process started here (java, cargo lambda watch and its functions) is stopped on exit,
//! on error and on Ctrl-C / SIGTERM / SIGHUP.
// A command-line tool: the timeline on stdout is its output.
#![allow(clippy::print_stdout)]

mod app;
mod fmt;
mod stack;
mod walk;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str =
    "usage: demo [walk|serve] [--dynamodb-endpoint URL] [--port PORT] [--ready-file PATH]

  walk   (default) run the scripted timeline and exit 0 if every step went as expected
  serve  keep everything running and serve a checkout page on 127.0.0.1 until Ctrl-C

  --dynamodb-endpoint URL  use a running DynamoDB-API server instead of starting DynamoDB Local
                           (default: $TEST_DYNAMODB_ENDPOINT if set)
  --port PORT              serve: the checkout page's port (default: any free port)
  --ready-file PATH        serve: write the URLs as JSON to PATH once everything is up";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Walk,
    Serve,
}

#[derive(Debug)]
pub(crate) struct Args {
    mode: Mode,
    pub(crate) dynamodb_endpoint: Option<String>,
    pub(crate) port: u16,
    pub(crate) ready_file: Option<PathBuf>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Args>> {
    let mut parsed = Args {
        mode: Mode::Walk,
        dynamodb_endpoint: std::env::var(testkit::dynamo::ENDPOINT_ENV)
            .ok()
            .filter(|s| !s.trim().is_empty()),
        port: 0,
        ready_file: None,
    };
    let mut args = args.into_iter();
    let mut mode_seen = false;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .with_context(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match arg.as_str() {
            "walk" | "serve" if !mode_seen => {
                mode_seen = true;
                parsed.mode = if arg == "walk" {
                    Mode::Walk
                } else {
                    Mode::Serve
                };
            }
            "--dynamodb-endpoint" => parsed.dynamodb_endpoint = Some(value(&arg)?),
            "--port" => {
                parsed.port = value(&arg)?
                    .parse()
                    .with_context(|| format!("--port needs a port number\n\n{USAGE}"))?;
            }
            "--ready-file" => parsed.ready_file = Some(PathBuf::from(value(&arg)?)),
            "-h" | "--help" => return Ok(None),
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    Ok(Some(parsed))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("demo: {e:#}");
            return ExitCode::from(2);
        }
    };
    let mode = args.mode;
    stack::step(match mode {
        Mode::Walk => "walk: starting the local stack",
        Mode::Serve => "serve: starting the local stack",
    });
    // Dropping the run future on a signal drops the stack, which stops every child process.
    let outcome = tokio::select! {
        result = run(args) => Outcome::Finished(result),
        name = shutdown_signal() => Outcome::Signal(name),
    };
    let code = match outcome {
        Outcome::Finished(Ok(())) => ExitCode::SUCCESS,
        Outcome::Finished(Err(e)) => {
            eprintln!("\ndemo: FAILED: {e:#}");
            ExitCode::FAILURE
        }
        Outcome::Signal(name) if mode == Mode::Serve => {
            eprintln!("\ndemo: {name}: stopped everything");
            ExitCode::SUCCESS
        }
        Outcome::Signal(name) => {
            eprintln!("\ndemo: interrupted by {name}: stopped everything");
            ExitCode::from(130)
        }
    };
    stack::wait_children_gone().await;
    code
}

enum Outcome {
    Finished(anyhow::Result<()>),
    Signal(&'static str),
}

async fn run(args: Args) -> anyhow::Result<()> {
    match args.mode {
        Mode::Walk => walk::run(&args).await,
        Mode::Serve => serve(&args).await,
    }
}

async fn serve(args: &Args) -> anyhow::Result<()> {
    let stack = stack::Stack::start(args).await?;
    let urls = stack.urls();
    println!();
    println!("  Checkout page   {}/", urls.app);
    println!(
        "  Toss sandbox    {}  (ledger: {}/__sandbox/state)",
        urls.sandbox, urls.sandbox
    );
    println!("  billing-api     {}", urls.success_url);
    println!("  DynamoDB        {}  table {}", urls.dynamodb, urls.table);
    println!("  function logs   {}", urls.function_logs);
    println!();
    println!(
        "Open the checkout page, press the button, pick a test card. Ctrl-C stops everything."
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

async fn shutdown_signal() -> &'static str {
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        // Without signal handlers, fall back to the default behaviour; never resolve here.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(list: &[&str]) -> anyhow::Result<Option<Args>> {
        parse_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn walk_is_the_default_mode() {
        assert_eq!(args(&[]).unwrap().unwrap().mode, Mode::Walk);
    }

    #[test]
    fn serve_takes_a_port_and_a_ready_file() {
        let parsed = args(&["serve", "--port", "8080", "--ready-file", "/tmp/r.json"])
            .unwrap()
            .unwrap();
        assert_eq!(parsed.mode, Mode::Serve);
        assert_eq!(parsed.port, 8080);
        assert_eq!(parsed.ready_file, Some(PathBuf::from("/tmp/r.json")));
    }

    #[test]
    fn unknown_arguments_are_refused() {
        assert!(args(&["walk", "--nope"]).is_err());
        assert!(args(&["--port"]).is_err());
        assert!(args(&["walk", "serve"]).is_err());
    }
}
