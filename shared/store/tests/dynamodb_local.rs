//! The repository's real behaviour against AWS's DynamoDB Local, on a table created from
//! template.yaml's own definition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, Utc};
use domain::{
    AttemptKind, AttemptStatus, BillingKey, ChargeAttempt, CustomerKey, Krw, Lease, PaymentKey,
    Plan, Refund, RefundBy, Subscription, SubscriptionId,
};
use store::{Error, RedirectRecord, Store};

async fn store() -> Store {
    let (client, table) = testkit::dynamo::fresh_table().await.unwrap();
    Store::new(client, table)
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn new_sub(n: u32, now: DateTime<Utc>) -> Subscription {
    Subscription::new(
        SubscriptionId::parse(format!("01JDQ4ZC1V3M5N7P9R2T{n:06}")).unwrap(),
        CustomerKey::parse(format!("user_{n}")).unwrap(),
        BillingKey::parse(format!("bk_{n}_Z_t5vOvQxrj4499PeiJcjen28-V2RyqgY=")).unwrap(),
        None,
        now,
    )
}

fn attempt(
    sub: &Subscription,
    period: u32,
    n: u32,
    owner: &str,
    now: DateTime<Utc>,
) -> ChargeAttempt {
    ChargeAttempt::claim(
        sub.id().clone(),
        sub.customer_key().clone(),
        period,
        n,
        Krw::new(3900),
        AttemptKind::Renewal,
        Lease {
            owner: owner.into(),
            until: now + Duration::minutes(5),
        },
        now,
    )
}

fn redirect(sub: &Subscription, hash: &str, now: DateTime<Utc>) -> RedirectRecord {
    RedirectRecord {
        auth_key_hash: hash.into(),
        customer_key: sub.customer_key().clone(),
        subscription_id: Some(sub.id().clone()),
        order_id: Some((0, 1)),
        failure_code: None,
        created_at: now,
    }
}

async fn started(store: &Store, n: u32, now: DateTime<Utc>) -> (Subscription, ChargeAttempt) {
    let mut sub = new_sub(n, now);
    let first = attempt(&sub, 0, 1, "api", now);
    let record = redirect(&sub, &format!("h{n}"), now);
    store
        .start_subscription(&mut sub, &format!("user_of_{n}"), None, &first, &record)
        .await
        .unwrap();
    (sub, first)
}

#[tokio::test]
async fn starting_a_subscription_writes_it_its_customer_pointer_first_attempt_and_redirect_together()
 {
    let store = store().await;
    let now = t("2026-11-24T10:00:00Z");
    let (sub, first) = started(&store, 1, now).await;

    assert_eq!(sub.version(), 1);
    assert_eq!(
        store
            .customer_subscription(sub.customer_key())
            .await
            .unwrap()
            .unwrap(),
        sub
    );
    assert_eq!(store.attempt(sub.id(), 0, 1).await.unwrap().unwrap(), first);
    assert_eq!(
        store.redirect("h1").await.unwrap().unwrap(),
        redirect(&sub, "h1", now)
    );
}

#[tokio::test]
async fn a_second_live_subscription_for_the_same_customer_is_refused_and_nothing_of_it_is_written()
{
    let store = store().await;
    let now = t("2026-11-24T10:00:00Z");
    let (sub, _) = started(&store, 2, now).await;
    let mut twin = domain::Subscription::restore(domain::SubscriptionRecord {
        customer_key: sub.customer_key().clone(),
        ..new_sub(3, now).to_record()
    });
    let first = attempt(&twin, 0, 1, "api", now);

    let record = redirect(&twin, "h3", now);
    let err = store
        .start_subscription(&mut twin, "user_store_twin", None, &first, &record)
        .await
        .unwrap_err();

    assert!(err.is_conflict(), "{err:?}");
    let Error::TransactionCanceled { reasons } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        reasons[1].as_deref(),
        Some("ConditionalCheckFailed"),
        "the customer pointer's condition failed: {reasons:?}"
    );
    assert!(
        store.subscription(twin.id()).await.unwrap().is_none(),
        "all or nothing"
    );
    assert!(store.redirect("h3").await.unwrap().is_none());
    assert_eq!(twin.version(), 0);
}

#[tokio::test]
async fn claiming_an_attempt_twice_fails_the_second_claim_as_a_conflict() {
    let store = store().await;
    let now = t("2026-11-24T10:00:00Z");
    let (sub, _) = started(&store, 4, now).await;
    let a = attempt(&sub, sub.next_period(), 2, "run-a", now);
    let b = attempt(&sub, sub.next_period(), 2, "run-b", now);

    store.claim_attempt(&a, &sub).await.unwrap();
    let err = store.claim_attempt(&b, &sub).await.unwrap_err();

    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(
        store
            .attempt(sub.id(), sub.next_period(), 2)
            .await
            .unwrap()
            .unwrap()
            .lease()
            .unwrap()
            .owner,
        "run-a"
    );
}

#[tokio::test]
async fn a_charge_is_not_claimed_for_a_subscription_whose_cancel_was_saved_after_it_was_read() {
    let store = store().await;
    let now = t("2026-11-24T10:00:00Z");
    let (read_by_sweep, _) = started(&store, 41, now).await;
    let mut canceled = read_by_sweep.clone();
    canceled.schedule_cancel(now);
    store.save_subscription(&mut canceled).await.unwrap();
    let period = read_by_sweep.next_period();

    let err = store
        .claim_attempt(
            &attempt(&read_by_sweep, period, 2, "sweep", now),
            &read_by_sweep,
        )
        .await
        .unwrap_err();

    assert!(err.is_conflict(), "{err:?}");
    assert!(
        store
            .attempt(read_by_sweep.id(), period, 2)
            .await
            .unwrap()
            .is_none(),
        "nothing claimed"
    );
}

#[tokio::test]
async fn a_change_the_charge_does_not_depend_on_does_not_stop_its_claim() {
    let store = store().await;
    let now = t("2026-11-24T10:00:00Z");
    let (read_by_sweep, _) = started(&store, 42, now).await;
    let mut renamed = read_by_sweep.clone();
    renamed.update_contact(Some(domain::Email::parse("new@example.com").unwrap()), None);
    store.save_subscription(&mut renamed).await.unwrap();
    let period = read_by_sweep.next_period();

    store
        .claim_attempt(
            &attempt(&read_by_sweep, period, 2, "sweep", now),
            &read_by_sweep,
        )
        .await
        .unwrap();

    assert!(
        store
            .attempt(read_by_sweep.id(), period, 2)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_cancel_is_not_saved_once_a_charge_was_claimed_in_the_slot_it_checked() {
    let store = store().await;
    let now = t("2026-11-24T10:00:00Z");
    let (read_by_cancel, _) = started(&store, 43, now).await;
    let period = read_by_cancel.next_period();
    store
        .claim_attempt(
            &attempt(&read_by_cancel, period, 2, "sweep", now),
            &read_by_cancel,
        )
        .await
        .unwrap();
    let mut cancel = read_by_cancel.clone();
    cancel.schedule_cancel(now);

    let err = store
        .save_subscription_unless_claimed(&mut cancel, 2)
        .await
        .unwrap_err();

    assert!(err.is_conflict(), "{err:?}");
    let stored = store
        .subscription(read_by_cancel.id())
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.cancel_at_period_end(), "the cancel was not saved");
    assert_eq!(stored.version(), read_by_cancel.version());
}

#[tokio::test]
async fn a_live_lease_cannot_be_taken_over_and_an_expired_one_can_by_exactly_one_worker() {
    let store = store().await;
    let now = t("2026-11-24T10:00:00Z");
    let (sub, _) = started(&store, 5, now).await;
    store
        .insert_attempt(&attempt(&sub, 1, 1, "dead", now))
        .await
        .unwrap();

    let early = attempt(&sub, 1, 1, "early", now + Duration::minutes(1));
    assert!(matches!(
        store
            .take_over_attempt(&early, now + Duration::minutes(1))
            .await,
        Err(Error::ConditionFailed)
    ));

    let later = now + Duration::minutes(6);
    let (x, y) = (
        attempt(&sub, 1, 1, "x", later),
        attempt(&sub, 1, 1, "y", later),
    );
    let (rx, ry) = tokio::join!(
        store.take_over_attempt(&x, later),
        store.take_over_attempt(&y, later)
    );
    assert_eq!(rx.is_ok() as u8 + ry.is_ok() as u8, 1, "{rx:?} {ry:?}");
}

#[tokio::test]
async fn an_outcome_is_recorded_only_by_the_lease_holder_and_only_on_the_version_it_read() {
    let store = store().await;
    let now = t("2026-11-24T10:00:00Z");
    let (sub, mut first) = started(&store, 6, now).await;
    let plan = Plan::new(Krw::new(3900), "Pro", 30).unwrap();
    first.mark_done(domain::PaymentKey::parse("pay_1").unwrap(), now, now);

    let mut paid = sub.clone();
    paid.apply_success(0, now, &plan);
    let err = store
        .record_outcome(&mut paid.clone(), &first, "someone-else")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::TransactionCanceled { reasons } if reasons[0].as_deref() == Some("ConditionalCheckFailed")),
        "{err:?}"
    );

    let mut stale = domain::Subscription::restore(domain::SubscriptionRecord {
        version: 0,
        ..paid.to_record()
    });
    let err = store
        .record_outcome(&mut stale, &first, "api")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::TransactionCanceled { reasons } if reasons[1].as_deref() == Some("ConditionalCheckFailed")),
        "{err:?}"
    );
    assert_eq!(
        store
            .attempt(sub.id(), 0, 1)
            .await
            .unwrap()
            .unwrap()
            .status(),
        AttemptStatus::Pending,
        "nothing half-applied"
    );

    store
        .record_outcome(&mut paid, &first, "api")
        .await
        .unwrap();
    assert_eq!(
        store
            .attempt(sub.id(), 0, 1)
            .await
            .unwrap()
            .unwrap()
            .status(),
        AttemptStatus::Done
    );
    assert_eq!(store.subscription(sub.id()).await.unwrap().unwrap(), paid);

    let mut again = first.clone();
    again.mark_declined("REJECT_CARD_PAYMENT", "x", now);
    assert!(
        store.save_attempt(&again, "api").await.is_err(),
        "a final attempt never changes"
    );
}

#[tokio::test]
async fn the_due_index_pages_through_every_shard_and_skips_what_is_not_due_or_finished() {
    let store = store().await;
    let now = t("2026-11-24T10:00:00Z");
    let mut due = Vec::new();
    for n in 0..60 {
        let (mut sub, mut first) = started(&store, 100 + n, now).await;
        first.mark_done(
            domain::PaymentKey::parse(format!("pay_{n}")).unwrap(),
            now,
            now,
        );
        sub.apply_success(0, now, &Plan::new(Krw::new(3900), "Pro", 30).unwrap());
        if n % 3 == 0 {
            sub.cancel(domain::CancelReason::PeriodEnd, now);
            sub.billing_key_deleted(now);
        } else {
            due.push(sub.id().clone());
        }
        store.record_outcome(&mut sub, &first, "api").await.unwrap();
    }
    let next_month = now + Duration::days(40);

    let mut seen = Vec::new();
    for shard in store.due_shards() {
        let mut cursor = None;
        loop {
            let page = store.due_page(shard, next_month, cursor, 3).await.unwrap();
            seen.extend(page.ids.into_iter().map(|due| match due.unwrap() {
                store::Due::Subscription(id) => id,
                other => panic!("only subscriptions are due here: {other:?}"),
            }));
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
    }
    let nothing_yet: usize = {
        let mut count = 0;
        for shard in store.due_shards() {
            count += store
                .due_page(shard, now + Duration::days(1), None, 100)
                .await
                .unwrap()
                .ids
                .len();
        }
        count
    };

    seen.sort();
    due.sort();
    assert_eq!(
        seen, due,
        "every due subscription exactly once, no finished one"
    );
    assert_eq!(nothing_yet, 0, "none is due before its anniversary");
}

#[tokio::test]
async fn a_user_keeps_the_first_customer_key_it_was_given_even_when_two_checkouts_race() {
    let store = store().await;
    let now = t("2026-12-02T05:00:00Z");
    let first = CustomerKey::from_entropy([1; 16]);
    let second = CustomerKey::from_entropy([2; 16]);
    assert_eq!(store.user_customer_key("user_race").await.unwrap(), None);

    let (a, b) = tokio::join!(
        store.ensure_user_customer_key("user_race", &first, now),
        store.ensure_user_customer_key("user_race", &second, now),
    );
    let (a, b) = (a.unwrap(), b.unwrap());

    assert_eq!(a, b, "both racers end with the same key");
    assert!(a == first || a == second);
    assert_eq!(store.user_customer_key("user_race").await.unwrap(), Some(a));
    let other = store
        .ensure_user_customer_key("user_other", &second, now)
        .await
        .unwrap();
    assert_eq!(other, second);
}

#[tokio::test]
async fn a_checkout_binds_to_its_first_auth_key_admits_a_reload_and_refuses_another_or_a_late_one()
{
    let store = store().await;
    let now = t("2026-12-02T05:00:00Z");
    let state = domain::CheckoutState::from_entropy([9; 32]);
    let checkout =
        domain::Checkout::start(&state, "user_bind", CustomerKey::from_entropy([3; 16]), now);
    store.create_checkout(&checkout).await.unwrap();
    assert!(matches!(
        store.create_checkout(&checkout).await,
        Err(Error::ConditionFailed)
    ));
    assert_eq!(
        store.checkout(&state.hash()).await.unwrap().as_ref(),
        Some(&checkout)
    );

    let soon = now + Duration::minutes(5);
    store
        .bind_checkout(&state.hash(), "auth_1", soon)
        .await
        .unwrap();
    store
        .bind_checkout(&state.hash(), "auth_1", soon)
        .await
        .unwrap();
    assert!(matches!(
        store.bind_checkout(&state.hash(), "auth_2", soon).await,
        Err(Error::ConditionFailed)
    ));
    assert!(matches!(
        store
            .bind_checkout("0".repeat(64).as_str(), "auth_1", soon)
            .await,
        Err(Error::ConditionFailed)
    ));
    let stored = store.checkout(&state.hash()).await.unwrap().unwrap();
    assert_eq!(stored.auth_key_hash.as_deref(), Some("auth_1"));

    let late_state = domain::CheckoutState::from_entropy([8; 32]);
    let late = domain::Checkout::start(&late_state, "user_bind", checkout.customer_key, now);
    store.create_checkout(&late).await.unwrap();
    assert!(matches!(
        store
            .bind_checkout(&late_state.hash(), "auth_3", now + Duration::minutes(30))
            .await,
        Err(Error::ConditionFailed)
    ));
    assert_eq!(
        store
            .checkout(&late_state.hash())
            .await
            .unwrap()
            .unwrap()
            .auth_key_hash,
        None,
        "a refused bind changes nothing"
    );
}

// ---- billing keys at rest ----------------------------------------------------------------

/// A key service that does in-process what KMS does: wraps each data key under a master key
/// it keeps (AES-256-GCM), and counts its calls.
#[derive(Default)]
struct LocalKms {
    master: std::sync::OnceLock<[u8; 32]>,
    generated: std::sync::atomic::AtomicUsize,
    decrypted: std::sync::atomic::AtomicUsize,
}

impl LocalKms {
    fn cipher(&self) -> aes_gcm::Aes256Gcm {
        use aes_gcm::KeyInit;
        let master = self.master.get_or_init(rand::random);
        aes_gcm::Aes256Gcm::new(master.into())
    }
}

impl store::KeyService for LocalKms {
    fn generate_data_key(&self) -> store::KeyFuture<'_, store::DataKey> {
        Box::pin(async move {
            use aes_gcm::aead::{Aead, AeadCore, OsRng};
            self.generated
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let plaintext: [u8; 32] = rand::random();
            let nonce = aes_gcm::Aes256Gcm::generate_nonce(&mut OsRng);
            let mut encrypted = nonce.to_vec();
            encrypted.extend(self.cipher().encrypt(&nonce, plaintext.as_slice()).unwrap());
            Ok(store::DataKey {
                plaintext,
                encrypted,
            })
        })
    }

    fn decrypt_data_key<'a>(&'a self, encrypted: &'a [u8]) -> store::KeyFuture<'a, [u8; 32]> {
        Box::pin(async move {
            use aes_gcm::aead::Aead;
            self.decrypted
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let (nonce, body) = encrypted.split_at(12);
            let plain = self
                .cipher()
                .decrypt(aes_gcm::Nonce::from_slice(nonce), body)
                .map_err(|_| store::SealError::KeyService("InvalidCiphertextException".into()))?;
            Ok(plain.try_into().unwrap())
        })
    }
}

async fn sealing_store(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    kms: &std::sync::Arc<LocalKms>,
) -> Store {
    let sealer = store::Sealer::new(kms.clone()).await.unwrap();
    Store::new(client.clone(), table).with_sealer(sealer)
}

async fn raw_subscription(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    sub: &Subscription,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    client
        .get_item()
        .table_name(table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("SUB#{}", sub.id())),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("SUB".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
}

#[tokio::test]
async fn a_sealing_store_never_writes_a_billing_key_in_plaintext_and_reads_it_back() {
    let (client, table) = testkit::dynamo::fresh_table().await.unwrap();
    let kms = std::sync::Arc::new(LocalKms::default());
    let store = sealing_store(&client, &table, &kms).await;
    let now = t("2026-11-24T10:00:00Z");
    let (mut sub, _) = started(&store, 51, now).await;
    let old_key = sub.billing_key().cloned().unwrap();
    sub.replace_card(
        BillingKey::parse("bk_51_NEW_t5vOvQxrj4499PeiJcjen28-V2RyqgY=").unwrap(),
        None,
        now,
    );
    store.save_subscription(&mut sub).await.unwrap();

    let raw = raw_subscription(&client, &table, &sub).await;
    let text = format!("{raw:?}");
    assert!(
        !text.contains(old_key.expose_secret()),
        "old key in plaintext"
    );
    assert!(!text.contains("bk_51_NEW"), "new key in plaintext");
    assert!(store::is_sealed(raw["billing_key"].as_s().unwrap()));
    let back = store.subscription(sub.id()).await.unwrap().unwrap();
    assert_eq!(back.billing_key(), sub.billing_key());
    assert_eq!(back.retired_billing_keys(), sub.retired_billing_keys());
    assert_eq!(kms.generated.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(kms.decrypted.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn another_instance_opens_a_sealed_key_with_one_key_service_call_for_all_its_reads() {
    let (client, table) = testkit::dynamo::fresh_table().await.unwrap();
    let kms = std::sync::Arc::new(LocalKms::default());
    let writer = sealing_store(&client, &table, &kms).await;
    let now = t("2026-11-24T10:00:00Z");
    let (a, _) = started(&writer, 52, now).await;
    let (b, _) = started(&writer, 53, now).await;
    let reader = sealing_store(&client, &table, &kms).await;

    for sub in [&a, &b, &a] {
        let back = reader.subscription(sub.id()).await.unwrap().unwrap();
        assert_eq!(back.billing_key(), sub.billing_key());
    }

    assert_eq!(kms.decrypted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_sealed_key_moved_onto_another_subscription_does_not_open() {
    let (client, table) = testkit::dynamo::fresh_table().await.unwrap();
    let kms = std::sync::Arc::new(LocalKms::default());
    let store = sealing_store(&client, &table, &kms).await;
    let now = t("2026-11-24T10:00:00Z");
    let (victim, _) = started(&store, 54, now).await;
    let (attacker, _) = started(&store, 55, now).await;
    let stolen = raw_subscription(&client, &table, &victim).await["billing_key"].clone();
    client
        .update_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("SUB#{}", attacker.id())),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("SUB".into()),
        )
        .update_expression("SET billing_key = :k")
        .expression_attribute_values(":k", stolen)
        .send()
        .await
        .unwrap();

    let err = store.subscription(attacker.id()).await.unwrap_err();

    assert!(matches!(err, Error::Sealed { .. }), "{err:?}");
    assert!(!format!("{err:?} {err}").contains("bk_54"), "{err:?}");
}

#[tokio::test]
async fn a_plaintext_key_from_before_sealing_is_read_and_sealed_at_its_next_write() {
    let (client, table) = testkit::dynamo::fresh_table().await.unwrap();
    let plain = Store::new(client.clone(), table.clone());
    let now = t("2026-11-24T10:00:00Z");
    let (sub, _) = started(&plain, 56, now).await;
    let kms = std::sync::Arc::new(LocalKms::default());
    let sealing = sealing_store(&client, &table, &kms).await;

    let mut read = sealing.subscription(sub.id()).await.unwrap().unwrap();
    assert_eq!(read.billing_key(), sub.billing_key());
    read.schedule_cancel(now);
    sealing.save_subscription(&mut read).await.unwrap();

    let raw = raw_subscription(&client, &table, &sub).await;
    assert!(store::is_sealed(raw["billing_key"].as_s().unwrap()));
    let err = plain.subscription(sub.id()).await.unwrap_err();
    assert!(
        matches!(err, Error::Sealed { .. }),
        "a store without the key service cannot open it: {err:?}"
    );
}

/// A paid first month, as the engine records it.
async fn paid(store: &Store, n: u32, now: DateTime<Utc>) -> (Subscription, ChargeAttempt) {
    let (mut sub, mut first) = started(store, n, now).await;
    first.mark_done(PaymentKey::parse(format!("tpay_{n}")).unwrap(), now, now);
    sub.apply_success(0, now, &Plan::new(Krw::new(3900), "Pro", 30).unwrap());
    store.record_outcome(&mut sub, &first, "api").await.unwrap();
    (sub, first)
}

async fn due_items(store: &Store, as_of: DateTime<Utc>) -> Vec<store::Due> {
    let mut seen = Vec::new();
    for shard in store.due_shards() {
        let page = store.due_page(shard, as_of, None, 100).await.unwrap();
        seen.extend(page.ids.into_iter().map(Result::unwrap));
    }
    seen
}

#[tokio::test]
async fn an_open_refund_is_due_for_the_sweep_after_its_grace_and_leaves_the_index_once_settled() {
    let store = store().await;
    let now = Utc::now();
    let (sub, first) = paid(&store, 71, now).await;
    let mut refund = Refund::claim(
        sub.id().clone(),
        0,
        first.attempt(),
        first.payment_key().cloned().unwrap(),
        1,
        Krw::new(1000),
        "고객 요청",
        RefundBy::Operator {
            name: "jisoo".into(),
        },
        now,
    );
    assert_eq!(
        store
            .claim_refund(&refund, first.amount(), None)
            .await
            .unwrap(),
        store::RefundWrite::Written
    );
    let as_refund = store::Due::Refunds {
        subscription: sub.id().clone(),
        order_id: first.order_id().clone(),
    };

    let during_grace = due_items(&store, now + Duration::minutes(1)).await;
    let after_grace = due_items(&store, now + store::OPEN_REFUND_GRACE).await;
    refund.mark_unknown(now);
    store.settle_refund(&refund, None).await.unwrap();
    let unknown = due_items(&store, now).await;
    refund.mark_done("tx-71".into(), now, now);
    store.settle_refund(&refund, None).await.unwrap();
    let done = due_items(&store, now + Duration::minutes(10)).await;

    assert!(!during_grace.contains(&as_refund), "{during_grace:?}");
    assert!(after_grace.contains(&as_refund), "{after_grace:?}");
    assert!(unknown.contains(&as_refund), "an unknown one at once");
    assert!(!done.contains(&as_refund), "{done:?}");
    assert!(store.cancel_recorded(sub.id(), "tx-71").await.unwrap());
}

#[tokio::test]
async fn an_operator_request_id_claims_one_refund_across_all_payments() {
    let store = store().await;
    let now = Utc::now();
    let (a, first_a) = paid(&store, 72, now).await;
    let (b, first_b) = paid(&store, 73, now).await;
    let refund_of = |sub: &Subscription, attempt: &ChargeAttempt| {
        Refund::claim(
            sub.id().clone(),
            0,
            attempt.attempt(),
            attempt.payment_key().cloned().unwrap(),
            1,
            Krw::new(1000),
            "고객 요청",
            RefundBy::Operator {
                name: "jisoo".into(),
            },
            now,
        )
    };

    let first = store
        .claim_requested_refund(&refund_of(&a, &first_a), first_a.amount(), "ticket-9", "fp")
        .await
        .unwrap();
    let other_payment = store
        .claim_requested_refund(&refund_of(&b, &first_b), first_b.amount(), "ticket-9", "fp")
        .await
        .unwrap();

    assert_eq!(first, store::RefundWrite::Written);
    assert_eq!(other_payment, store::RefundWrite::RequestSeen);
    assert!(
        store.refunds(b.id()).await.unwrap().is_empty(),
        "nothing claimed"
    );
    let seen = store.refund_request("ticket-9").await.unwrap().unwrap();
    assert_eq!((seen.subscription_id, seen.number), (a.id().clone(), 1));
    assert_eq!(
        store
            .attempt(b.id(), 0, first_b.attempt())
            .await
            .unwrap()
            .unwrap()
            .refunded(),
        Krw::new(0),
        "nothing held"
    );
}
