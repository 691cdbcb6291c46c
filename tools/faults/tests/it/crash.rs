//! Sweep processes killed with SIGKILL at each step boundary, and several sweep processes at once
//! over the same due set. The process is `sweep-worker`: `Billing::sweep` configured from the same
//! environment as `charge-subscriptions`, built with the `billing/failpoints` crash points that the
//! real function binary never contains.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use toss_sandbox::{Endpoint, FaultConfig, Latency};

use crate::world::{SECRET, World, captured_logs, next_month};

struct Worker {
    child: Child,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

impl Worker {
    fn spawn(w: &World, as_of: DateTime<Utc>, run_id: &str, failpoint: Option<&str>) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sweep-worker"));
        cmd.envs(testkit::dynamo::sdk_env(&w.endpoint))
            .env("TOSS_SECRET_KEY", SECRET)
            .env("TOSS_API_BASE", w.sandbox.base_url())
            .env("TABLE_NAME", &w.table)
            .env("PLAN_AMOUNT", "3900")
            .env("PLAN_CREDITS", "30")
            .env("CHARGE_LEASE_SECONDS", "60")
            .env("TOSS_CHARGE_TIMEOUT_SECONDS", "10")
            .env("CHARGE_CONCURRENCY", "8")
            .env("RUST_LOG", "debug")
            .env("SWEEP_AS_OF", as_of.to_rfc3339())
            .env("SWEEP_RUN_ID", run_id)
            .env_remove("BILLING_FAILPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(point) = failpoint {
            cmd.env("BILLING_FAILPOINT", point);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        for (pipe, buf) in [
            (
                Box::new(child.stderr.take().unwrap())
                    as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                stderr.clone(),
            ),
            (Box::new(child.stdout.take().unwrap()), stdout.clone()),
        ] {
            tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut b = buf.lock().unwrap();
                    b.push_str(&line);
                    b.push('\n');
                }
            });
        }
        Self {
            child,
            stderr,
            stdout,
        }
    }

    fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    async fn wait_for_log(&self, needle: &str) {
        for _ in 0..3000 {
            if self.logs().contains(needle) {
                return;
            }
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
        panic!("the worker never logged {needle:?}:\n{}", self.logs());
    }

    /// SIGKILL: no destructor, no flush, no cooperative shutdown.
    async fn kill_9(&mut self) {
        self.child.start_kill().unwrap();
        let status = self.child.wait().await.unwrap();
        assert!(!status.success(), "{status:?}");
    }

    async fn summary(mut self) -> (billing::Summary, String) {
        let status = self.child.wait().await.unwrap();
        tokio::time::sleep(StdDuration::from_millis(50)).await;
        assert!(status.success(), "{status:?}\n{}", self.logs());
        let out = self.stdout.lock().unwrap().clone();
        let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let summary = billing::Summary {
            as_of: summary["as_of"].as_str().unwrap().to_owned(),
            due: summary["due"].as_u64().unwrap(),
            charged: summary["charged"].as_u64().unwrap(),
            reconciled: summary["reconciled"].as_u64().unwrap(),
            declined: summary["declined"].as_u64().unwrap(),
            retry_scheduled: summary["retry_scheduled"].as_u64().unwrap(),
            canceled: summary["canceled"].as_u64().unwrap(),
            unknown_outcome: summary["unknown_outcome"].as_u64().unwrap(),
            skipped: summary["skipped"].as_u64().unwrap(),
            billing_keys_deleted: summary["billing_keys_deleted"].as_u64().unwrap(),
            held: summary["held"].as_u64().unwrap(),
            errors: summary["errors"].as_u64().unwrap(),
            total_charged_krw: summary["total_charged_krw"].as_u64().unwrap(),
            stopped_early: summary["stopped_early"].as_bool().unwrap(),
            ..Default::default()
        };
        (summary, self.logs())
    }
}

const SUBS: usize = 100;

#[tokio::test]
async fn a_sweep_killed_with_sigkill_at_each_step_boundary_is_repaired_by_the_next_sweep_without_a_double_charge()
 {
    for boundary in ["after_claim", "request_in_flight", "after_toss_answer"] {
        let w = World::new().await;
        let start = Utc::now();
        w.subscribe_many("user_kill", SUBS, start).await;
        let as_of = next_month(start);
        let done_before = w.snapshot().counters.done_charges;

        let mut worker = if boundary == "request_in_flight" {
            // Toss holds every charge for 2 s; the process dies while its requests are open.
            let mut faults = FaultConfig::default();
            faults
                .latency
                .endpoints
                .insert(Endpoint::Charge, Latency::Fixed { ms: 2_000 });
            w.sandbox.sandbox().set_faults(faults);
            let worker = Worker::spawn(&w, as_of, "killed-run", None);
            let requests_before = w.snapshot().counters.charge_requests;
            while w.snapshot().counters.charge_requests < requests_before + 8 {
                tokio::time::sleep(StdDuration::from_millis(5)).await;
            }
            worker
        } else {
            let worker = Worker::spawn(&w, as_of, "killed-run", Some(boundary));
            worker
                .wait_for_log(&format!("FAILPOINT {boundary} reached"))
                .await;
            // Let the other lanes of the run reach the same point too.
            tokio::time::sleep(StdDuration::from_millis(300)).await;
            worker
        };
        worker.kill_9().await;
        let worker_logs = worker.logs();
        tokio::time::sleep(StdDuration::from_millis(2_500)).await;
        w.sandbox.sandbox().set_faults(FaultConfig::default());
        let charged_by_dead = w.snapshot().counters.done_charges - done_before;
        w.check(false).await;

        // During the lease nobody touches the dead run's attempts; after it, they are repaired.
        let during = w.sweep(as_of).await;
        let after = w.sweep(as_of + Duration::minutes(2)).await;
        let settled = w.settle(as_of + Duration::minutes(2)).await;

        let paid = w.check(true).await;
        assert!(paid.values().all(|p| *p == 2), "{boundary}: {paid:?}");
        let charges = w.snapshot().counters.done_charges - done_before;
        assert_eq!(charges, SUBS as u64, "{boundary}: one renewal each");
        assert_eq!(during.reconciled, 0, "{boundary}: leases are respected");
        if boundary == "after_toss_answer" {
            assert!(charged_by_dead > 0, "Toss approved before the kill");
            assert!(
                after.reconciled >= charged_by_dead,
                "found by order id: {after:?}"
            );
        }
        eprintln!(
            "SIGKILL {boundary}: {SUBS} subscriptions; the dead run got {charged_by_dead} charged at Toss and recorded none; next sweeps: {} charged during the lease, {} after it ({} reconciled by order id), {settled} settling; Toss charges {charges}, model {SUBS}",
            during.charged, after.charged, after.reconciled
        );
        w.assert_no_secrets_in(&[&worker_logs, &captured_logs()])
            .await;
    }
}

#[tokio::test]
async fn four_sweep_processes_at_once_over_the_same_due_set_and_the_same_event_twice_charge_each_subscription_once()
 {
    let w = World::new().await;
    let start = Utc::now();
    w.subscribe_many("user_race4", 300, start).await;
    let as_of = next_month(start);

    let workers = [
        Worker::spawn(&w, as_of, "run-a", None),
        Worker::spawn(&w, as_of, "run-b", None),
        Worker::spawn(&w, as_of, "run-c", None),
        // The same scheduled event delivered twice: same time, same request id.
        Worker::spawn(&w, as_of, "run-c", None),
    ];
    let mut summaries = Vec::new();
    let mut logs = Vec::new();
    for worker in workers {
        let (s, l) = worker.summary().await;
        summaries.push(s);
        logs.push(l);
    }
    // The same event delivered once more, after the others finished.
    let (late, late_logs) = Worker::spawn(&w, as_of, "run-c", None).summary().await;
    logs.push(late_logs);

    let charged: u64 = summaries.iter().map(|s| s.charged).sum();
    let errors: Vec<&str> = logs
        .iter()
        .flat_map(|l| l.lines())
        .filter(|l| l.contains("ERROR"))
        .collect();
    assert_eq!(charged, 300, "{summaries:?}");
    assert_eq!(late.charged, 0);
    assert!(
        summaries.iter().all(|s| s.errors == 0),
        "{summaries:?}\n{errors:#?}"
    );
    let paid = w.check(true).await;
    assert!(paid.values().all(|p| *p == 2));
    eprintln!(
        "4 concurrent sweep processes + 1 late duplicate over 300 due: charged {:?} (sum {charged}), late {}, model 300",
        summaries.iter().map(|s| s.charged).collect::<Vec<_>>(),
        late.charged
    );
    let texts: Vec<&str> = logs.iter().map(String::as_str).collect();
    assert!(
        texts.iter().any(|l| l.contains("DEBUG")),
        "logs at debug level were captured"
    );
    w.assert_no_secrets_in(&texts).await;
}

/// Refunds the sweep settles (open ones in the due index) with the process killed with SIGKILL
/// before the cancel is sent and after Toss answered it: the next sweep settles each once.
#[tokio::test]
async fn a_sweep_killed_while_settling_open_refunds_is_repaired_by_the_next_sweep_without_a_double_refund()
 {
    const CUSTOMERS: usize = 4;
    for point in ["before_refund_cancel", "after_refund_answer"] {
        let w = World::new().await;
        let start = Utc::now();
        let customers = w.subscribe_many("user_rk", CUSTOMERS, start).await;
        // Each operator refund's answer is a 5xx: left UNKNOWN, its amount held, due at once.
        w.sandbox.sandbox().set_faults(FaultConfig {
            rules: vec![toss_sandbox::FaultRule {
                endpoint: Some(Endpoint::Cancel),
                probability: 1.0,
                times: Some(CUSTOMERS as u32),
                commit: false,
                customer_key: None,
                order_id: None,
                action: crate::world::error(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
            }],
            ..FaultConfig::default()
        });
        for customer in &customers {
            let sub = w.subscription(customer).await;
            let paid = w.store.ledger(sub.id()).await.unwrap().remove(0);
            let outcome = w
                .billing
                .refund(
                    &billing::RefundRequest {
                        order_id: paid.order_id().clone(),
                        amount: None,
                        reason: "고객 요청".into(),
                        by: domain::RefundBy::Operator {
                            name: "jisoo".into(),
                        },
                        end_subscription: None,
                        take_back_credits: None,
                        request_id: None,
                    },
                    Utc::now(),
                )
                .await
                .unwrap();
            assert!(
                matches!(outcome, billing::RefundOutcome::Unknown { .. }),
                "{outcome:?}"
            );
        }
        w.sandbox.sandbox().set_faults(FaultConfig::default());
        let as_of = Utc::now() + Duration::minutes(1);

        let mut worker = Worker::spawn(&w, as_of, "killed-refunds", Some(point));
        worker
            .wait_for_log(&format!("FAILPOINT {point} reached"))
            .await;
        tokio::time::sleep(StdDuration::from_millis(300)).await;
        worker.kill_9().await;
        let worker_logs = worker.logs();
        let refunded_by_dead = w.snapshot().counters.canceled_amount;
        let next = w.sweep(as_of).await;
        let again = w.sweep(as_of + Duration::minutes(10)).await;

        let snapshot = w.snapshot();
        for customer in &customers {
            let sub = w.subscription(customer).await;
            let paid = w.store.ledger(sub.id()).await.unwrap().remove(0);
            let at_toss = snapshot
                .payment_by_order_id(paid.order_id().as_str())
                .unwrap();
            assert_eq!(
                (at_toss.cancels, at_toss.balance_amount),
                (1, 0),
                "{point}: {customer} refunded once at Toss"
            );
            let refunds = w.store.refunds(sub.id()).await.unwrap();
            assert_eq!(refunds.len(), 1, "{point}: {refunds:#?}");
            assert_eq!(refunds[0].status, domain::RefundStatus::Done, "{point}");
            assert_eq!(paid.refunded(), paid.amount(), "{point}");
            let keys: std::collections::BTreeSet<_> = snapshot
                .idempotency
                .iter()
                .filter(|i| i.endpoint == Endpoint::Cancel)
                .filter(|i| i.idempotency_key.contains(paid.order_id().as_str()))
                .map(|i| i.idempotency_key.clone())
                .collect();
            assert_eq!(keys.len(), 1, "{point}: one key per refund: {keys:?}");
        }
        assert_eq!(
            snapshot.counters.canceled_amount,
            3900 * CUSTOMERS as i64,
            "{point}: never refunded twice"
        );
        if point == "after_refund_answer" {
            assert!(refunded_by_dead > 0, "Toss refunded before the kill");
        } else {
            assert_eq!(refunded_by_dead, 0, "nothing was sent before the kill");
        }
        assert_eq!(next.refunds_open, 0, "{point}: {next:?}");
        assert_eq!(
            (again.refunds_settled, again.refunds_open),
            (0, 0),
            "{point}: nothing left open"
        );
        eprintln!(
            "SIGKILL {point}: {CUSTOMERS} open refunds; the dead sweep got {refunded_by_dead} KRW refunded at Toss and recorded none; the next sweep settled {} ({} refused, {} open); Toss refunded {} KRW in all",
            next.refunds_settled,
            next.refunds_refused,
            next.refunds_open,
            snapshot.counters.canceled_amount
        );
        w.assert_no_secrets_in(&[&worker_logs, &captured_logs()])
            .await;
    }
}
