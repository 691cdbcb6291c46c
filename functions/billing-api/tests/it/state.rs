//! `/billing/success` binds Toss's redirect to the checkout that started it (product §10.2):
//! without the right state nothing reaches Toss, and nothing is written.

use chrono::{Duration, Utc};
use domain::{Checkout, CheckoutState, CustomerKey};
use lambda_http::http::Method;
use toss_sandbox::TestCard;

use crate::{APP_DONE, APP_FAILED, Api};

fn failed(code: &str) -> String {
    format!("{APP_FAILED}?code={code}")
}

fn state_in(path: &str) -> String {
    path.split_once("state=").unwrap().1[..64].to_owned()
}

#[tokio::test]
async fn a_redirect_with_its_own_checkout_subscribes_and_a_reload_lands_on_the_same_result() {
    let api = Api::new().await;
    let (customer_key, success) = api.checkout("user_state_ok").await;
    let auth_key = api
        .sandbox
        .sandbox()
        .mint_auth_key(&customer_key, TestCard::Ok)
        .unwrap();
    let path = format!("{success}&customerKey={customer_key}&authKey={auth_key}");

    let first = api.redirect(&path).await;
    let reload = api.redirect(&path).await;

    assert_eq!((first.as_str(), reload.as_str()), (APP_DONE, APP_DONE));
    let counters = api.sandbox.sandbox().snapshot().counters;
    assert_eq!(counters.charge_requests, 1, "the reload charged nothing");
    let sub = api.subscription("user_state_ok").await;
    assert_eq!(sub.customer_key().as_str(), customer_key);
    assert_eq!(sub.credits(), 30);
}

#[tokio::test]
async fn a_missing_unknown_or_foreign_state_is_refused_before_toss_and_writes_nothing() {
    let api = Api::new().await;
    // The victim checked out; the attacker knows the victim's customer key (it is in the
    // victim's browser) and has an authKey of its own card for it.
    let (victim_key, victim_success) = api.checkout("user_victim").await;
    let (attacker_key, attacker_success) = api.checkout("user_attacker").await;
    let auth_key = api
        .sandbox
        .sandbox()
        .mint_auth_key(&victim_key, TestCard::Ok)
        .unwrap();
    let before = api.dump().await;
    let unknown = "c3".repeat(32);
    let cases = [
        (
            "no state",
            format!("/billing/success?customerKey={victim_key}&authKey={auth_key}"),
            "INVALID_STATE",
        ),
        (
            "a state nobody was given",
            format!("/billing/success?state={unknown}&customerKey={victim_key}&authKey={auth_key}"),
            "INVALID_STATE",
        ),
        (
            "the attacker's own state with the victim's customer key",
            format!("{attacker_success}&customerKey={victim_key}&authKey={auth_key}"),
            "CUSTOMER_MISMATCH",
        ),
        (
            "the victim's state with the attacker's customer key",
            format!("{victim_success}&customerKey={attacker_key}&authKey={auth_key}"),
            "CUSTOMER_MISMATCH",
        ),
    ];

    for (name, path, code) in &cases {
        assert_eq!(api.redirect(path).await, failed(code), "{name}");
    }

    let counters = api.sandbox.sandbox().snapshot().counters;
    assert_eq!(
        (counters.billing_keys_issued, counters.charge_requests),
        (0, 0),
        "Toss was never called"
    );
    assert_eq!(api.dump().await, before, "nothing was written");
    // The victim's checkout is still good for the victim.
    let path = format!("{victim_success}&customerKey={victim_key}&authKey={auth_key}");
    assert_eq!(api.redirect(&path).await, APP_DONE);
}

#[tokio::test]
async fn a_state_spent_on_one_auth_key_refuses_another_and_an_expired_state_refuses_everything() {
    let api = Api::new().await;
    let (key, success) = api.checkout("user_state_spent").await;
    let mint = |card| api.sandbox.sandbox().mint_auth_key(&key, card).unwrap();
    let first = mint(TestCard::Ok);
    assert_eq!(
        api.redirect(&format!("{success}&customerKey={key}&authKey={first}"))
            .await,
        APP_DONE
    );

    let second = mint(TestCard::Check);
    let replayed = api
        .redirect(&format!("{success}&customerKey={key}&authKey={second}"))
        .await;
    assert_eq!(replayed, failed("INVALID_STATE"));

    // A checkout whose 30 minutes are over, stored as the route would have stored it.
    let state = CheckoutState::from_entropy([9; 32]);
    let mut expired = Checkout::start(
        &state,
        "user_state_spent",
        CustomerKey::parse(&key).unwrap(),
        Utc::now() - Duration::minutes(31),
    );
    expired.expires_at = Utc::now() - Duration::minutes(1);
    api.store.create_checkout(&expired).await.unwrap();
    let late = api
        .redirect(&format!(
            "/billing/success?state={}&customerKey={key}&authKey={}",
            state.expose_secret(),
            mint(TestCard::Ok)
        ))
        .await;
    assert_eq!(late, failed("INVALID_STATE"));

    let counters = api.sandbox.sandbox().snapshot().counters;
    assert_eq!(counters.billing_keys_issued, 1, "only the first redirect");
    assert_eq!(counters.charge_requests, 1);
}

#[tokio::test]
async fn two_auth_keys_racing_for_one_state_bind_it_once_and_only_one_reaches_toss() {
    let api = Api::new().await;
    let (key, success) = api.checkout("user_state_race").await;
    let paths: Vec<String> = (0..4)
        .map(|_| {
            let auth = api
                .sandbox
                .sandbox()
                .mint_auth_key(&key, TestCard::Ok)
                .unwrap();
            format!("{success}&customerKey={key}&authKey={auth}")
        })
        .collect();

    let landings = futures::future::join_all(paths.iter().map(|p| api.redirect(p))).await;

    assert_eq!(
        landings.iter().filter(|l| *l == APP_DONE).count(),
        1,
        "{landings:?}"
    );
    assert_eq!(
        landings
            .iter()
            .filter(|l| **l == failed("INVALID_STATE"))
            .count(),
        3,
        "{landings:?}"
    );
    let counters = api.sandbox.sandbox().snapshot().counters;
    assert_eq!(
        (counters.billing_keys_issued, counters.charge_requests),
        (1, 1)
    );
}

#[tokio::test]
async fn the_fail_redirect_keeps_the_state_usable_and_passes_only_the_code_on() {
    let api = Api::new().await;
    let (key, success) = api.checkout("user_state_fail").await;
    let state = state_in(&success);

    let landing = api
        .redirect(&format!(
            "/billing/fail?state={state}&code=PAY_PROCESS_CANCELED&message=%EC%B7%A8%EC%86%8C"
        ))
        .await;

    assert_eq!(landing, failed("PAY_PROCESS_CANCELED"));
    assert!(!landing.contains(&state), "the state is not passed on");
    // The customer closed the card window; trying again with the same checkout works.
    let auth_key = api
        .sandbox
        .sandbox()
        .mint_auth_key(&key, TestCard::Ok)
        .unwrap();
    assert_eq!(
        api.redirect(&format!("{success}&customerKey={key}&authKey={auth_key}"))
            .await,
        APP_DONE
    );
}

#[tokio::test]
async fn a_checkout_started_again_after_subscribing_replaces_the_card_of_the_same_subscription() {
    let api = Api::new().await;
    let first_key = api.subscribe("user_state_again").await;
    let before = api.subscription("user_state_again").await;

    let (landing, second_key) = api
        .subscribe_with("user_state_again", TestCard::Check)
        .await;

    assert_eq!(landing, APP_DONE);
    assert_eq!(first_key, second_key, "one customer key per user");
    let after = api.subscription("user_state_again").await;
    assert_eq!(after.id(), before.id());
    assert_ne!(
        after.billing_key(),
        before.billing_key(),
        "the card was replaced"
    );
    assert_eq!(
        api.sandbox.sandbox().snapshot().counters.charge_requests,
        1,
        "nothing charged for a card change"
    );
    let answer = api
        .call(
            Method::GET,
            "/v1/subscription",
            Some(&api.token("user_state_again")),
        )
        .await;
    assert_eq!(answer.json["status"], "active");
}
