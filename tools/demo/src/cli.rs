//! The command line: `demo [walk|serve] [OPTIONS]`.

use std::path::PathBuf;

use anyhow::{Context, bail};

pub(crate) const USAGE: &str =
    "usage: demo [walk|serve] [--dynamodb-endpoint URL] [--port PORT] [--ready-file PATH]

  walk   (default) run the scripted timeline and exit 0 if every step went as expected
  serve  keep everything running and serve a checkout page on 127.0.0.1 until Ctrl-C

  --dynamodb-endpoint URL  use a running DynamoDB-API server instead of starting DynamoDB Local
                           (default: $TEST_DYNAMODB_ENDPOINT if set)
  --port PORT              serve: the checkout page's port (default: any free port)
  --ready-file PATH        serve: write the URLs as JSON to PATH once everything is up";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Walk,
    Serve,
}

#[derive(Debug)]
pub(crate) struct Args {
    pub(crate) mode: Mode,
    pub(crate) dynamodb_endpoint: Option<String>,
    pub(crate) port: u16,
    pub(crate) ready_file: Option<PathBuf>,
}

pub(crate) fn parse_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Args>> {
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
