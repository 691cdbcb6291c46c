//! `demo walk`: the scripted timeline. Every step is checked like a test; the first surprise
//! stops the walk with a non-zero exit.
//!
//! Each customer signs in with the local issuer (a session token for `user_demo_<name>`, as
//! Clerk's `getToken()` gives the app), starts a checkout with `POST /v1/checkout`, and opens the
//! sandbox's card window with the customer key and URLs it answered. The customer keys are the
//! backend's random ones, learned from the checkout and kept per customer here. The app's other
//! routes (`/v1/subscription`, `/v1/credits/consume`, cancel, resume, `/v1/payments`) are called
//! as the Saju app would call them, with a fresh token each time.
//!
//! The test clock: the sandbox clock is moved to each moment before acting (Toss's `approvedAt`
//! comes from it, and the first one is the subscription's anchor), and each renewal run is an
//! EventBridge event whose `time` is 09:00 KST (00:00 UTC) of the day, as the daily schedule
//! would send it.
//!
//! This file holds the walk's state and the cast; the modules below it, bottom up:
//! `client` (the app API and the card window), `inspect` (what the table and the sandbox hold),
//! `timeline` (the printed table), `steps` (the shapes scenes are told in) and `scenes`.

mod client;
mod inspect;
mod scenes;
mod steps;
mod timeline;

use std::collections::HashMap;

use anyhow::Context;
use domain::CustomerKey;

use crate::cli::Args;
use crate::stack::Stack;

/// A signed-in user of the app. The customer key Toss knows them by is the backend's, learned
/// from their first checkout ([`Walk::keys`]).
#[derive(Debug, Clone, Copy)]
struct Customer {
    name: &'static str,
    /// The sign-in provider's user id (the token's `sub`).
    user_id: &'static str,
}

const ALICE: Customer = Customer {
    name: "alice",
    user_id: "user_demo_alice",
};
const BOB: Customer = Customer {
    name: "bob",
    user_id: "user_demo_bob",
};
const CAROL: Customer = Customer {
    name: "carol",
    user_id: "user_demo_carol",
};
const DAVE: Customer = Customer {
    name: "dave",
    user_id: "user_demo_dave",
};
const ERIN: Customer = Customer {
    name: "erin",
    user_id: "user_demo_erin",
};

pub(crate) async fn run(args: &Args) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let stack = Stack::start(args).await?;
    let mut walk = Walk {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .context("build the HTTP client")?,
        stack: &stack,
        printed: HashMap::new(),
        keys: HashMap::new(),
    };
    walk.intro();
    walk.script().await?;
    println!(
        "\nEvery step ended as expected ({} s). Everything started for the demo is being stopped.",
        started.elapsed().as_secs()
    );
    Ok(())
}

struct Walk<'a> {
    stack: &'a Stack,
    http: reqwest::Client,
    /// Ledger entries already shown, per customer.
    printed: HashMap<&'static str, usize>,
    /// Each customer's key, as the backend's checkout answered it.
    keys: HashMap<&'static str, CustomerKey>,
}
