//! The command line: `demo [walk|serve] [OPTIONS]`.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// The local demo: DynamoDB Local, the Toss sandbox and both functions under cargo lambda watch.
#[derive(Debug, Parser)]
#[command(name = "demo")]
pub(crate) struct Args {
    /// walk: run the scripted timeline and exit 0 if every step went as expected;
    /// serve: keep everything running and serve a checkout page on 127.0.0.1 until Ctrl-C
    #[arg(value_enum, default_value_t = Mode::Walk)]
    pub(crate) mode: Mode,
    /// Use a running DynamoDB-API server instead of starting DynamoDB Local
    /// [default: $TEST_DYNAMODB_ENDPOINT if set]
    #[arg(long, value_name = "URL")]
    pub(crate) dynamodb_endpoint: Option<String>,
    /// serve: the checkout page's port; 0 = any free port
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub(crate) port: u16,
    /// serve: write the URLs as JSON to PATH once everything is up
    #[arg(long, value_name = "PATH")]
    pub(crate) ready_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    Walk,
    Serve,
}

impl Args {
    /// The process's arguments; on an error or `--help`, clap prints and exits (2 or 0).
    pub(crate) fn from_command_line() -> Self {
        Self::parse().with_endpoint_from_env()
    }

    fn with_endpoint_from_env(mut self) -> Self {
        if self.dynamodb_endpoint.is_none() {
            self.dynamodb_endpoint = std::env::var(testkit::dynamo::ENDPOINT_ENV)
                .ok()
                .filter(|s| !s.trim().is_empty());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(list: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("demo").chain(list.iter().copied()))
    }

    #[test]
    fn walk_is_the_default_mode() {
        assert_eq!(args(&[]).unwrap().mode, Mode::Walk);
    }

    #[test]
    fn serve_takes_a_port_and_a_ready_file() {
        let parsed = args(&["serve", "--port", "8080", "--ready-file", "/tmp/r.json"]).unwrap();
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
