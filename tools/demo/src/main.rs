//! The local demo (`scripts/demo`): DynamoDB Local, the Toss sandbox and both functions under
//! `cargo lambda watch`, wired exactly as deployed (configuration only through the environment).
//!
//! - `demo walk` (default): signed-in customers check out through `POST /v1/checkout` and the
//!   sandbox's card window; one goes through the first charge, her credits (consumed, replayed,
//!   run out), three renewals on the test clock (a Jan 31 anchor across February), a declined
//!   renewal, the dunning retries, the cancellation and her payment history; a second cancels at
//!   period end, resumes and cancels again through the API, and the sweep ends it; a third card is
//!   refused at registration. Prints a timeline and exits 0 only if every step went as expected.
//! - `demo serve`: keeps everything running and serves a small checkout page to click through
//!   (a signed-in visitor, the real Toss SDK loader).
//!
//! Every process started here (java, cargo lambda watch and its functions) is stopped on exit,
//! on error and on Ctrl-C / SIGTERM / SIGHUP.
// A command-line tool: the timeline on stdout is its output.
#![allow(clippy::print_stdout)]

mod app;
mod cli;
mod config;
mod fmt;
mod serve;
mod stack;
mod walk;

use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{Args, Mode};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::from_command_line();
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
        Mode::Serve => serve::run(&args).await,
    }
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
