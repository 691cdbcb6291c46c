//! Model-based test: random interleavings of subscriptions, sweeps (alone or concurrent) and
//! Toss faults against a reference model of what should have been charged. After every step the
//! table and Toss's record must satisfy the invariants and stay within the model; after every
//! settling step they must equal it exactly.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use toss_sandbox::{FaultConfig, SandboxConfig};

use crate::world::{World, options, rule, toss_faults};

#[derive(Debug, Clone)]
enum Op {
    /// Sweep at the current test clock, optionally a month later, with `runs` concurrent
    /// sweeps and a fault (index into `toss_faults()`) firing with `percent` chance.
    Sweep {
        next_month: bool,
        runs: u8,
        fault: Option<(usize, u8)>,
    },
    /// Faults cleared, sweeps until nothing is left to do; the model must then match exactly.
    Settle,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<bool>(), 1u8..=3, proptest::option::of((0..toss_faults().len(), 10u8..=90)))
            .prop_map(|(next_month, runs, fault)| Op::Sweep { next_month, runs, fault }),
        1 => Just(Op::Settle),
    ]
}

/// The reference model: subscriptions made at month 0 owe one period per month since, plus
/// the first; Toss and the table may lag behind it while outcomes are unknown, never exceed it.
struct Model {
    month: i64,
}

impl Model {
    fn owed(&self) -> u32 {
        u32::try_from(self.month + 1).unwrap()
    }
}

#[test]
fn random_interleavings_of_sweeps_and_faults_agree_with_the_reference_model_after_every_step() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = Config {
        cases: 8,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[42; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = (3usize..=8, proptest::collection::vec(op(), 3..=8));
    let steps = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&strategy, |(n, ops)| {
            rt.block_on(async {
                let w = World::with(SandboxConfig::default().with_seed(n as u64), 5_000).await;
                let start = Utc::now();
                w.subscribe_many("user_model", n, start).await;
                let mut model = Model { month: 0 };
                let mut clock = start;
                let mut last: BTreeMap<String, u32> = w.check(true).await;
                for op in ops.into_iter().chain([Op::Settle]) {
                    steps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    match op {
                        Op::Sweep {
                            next_month,
                            runs,
                            fault,
                        } => {
                            if next_month && model.month < 5 {
                                model.month += 1;
                                clock = clock.max(start + Duration::days(32 * model.month));
                            }
                            let faults = fault.map(|(i, pct)| {
                                let (_, commit, action) = toss_faults().swap_remove(i);
                                rule(commit, f64::from(pct) / 100.0, action)
                            });
                            w.sandbox.sandbox().set_faults(FaultConfig {
                                rules: faults.into_iter().collect(),
                                ..FaultConfig::default()
                            });
                            let opts: Vec<_> = (0..runs).map(|_| options(clock)).collect();
                            let sweeps = opts.iter().map(|o| w.billing.sweep(o));
                            for s in futures::future::join_all(sweeps).await {
                                let s = s.unwrap();
                                prop_assert_eq!(s.declined, 0);
                            }
                            w.sandbox.sandbox().set_faults(FaultConfig::default());
                            let paid = w.check(false).await;
                            for (c, p) in &paid {
                                prop_assert!(
                                    *p <= model.owed(),
                                    "{} paid {} > owed {}",
                                    c,
                                    p,
                                    model.owed()
                                );
                                prop_assert!(*p >= last[c], "{} went backwards", c);
                            }
                            last = paid;
                        }
                        Op::Settle => {
                            for _ in 0..12 {
                                clock += Duration::hours(7);
                                let s = w.sweep(clock).await;
                                if s.charged == 0 && s.unknown_outcome == 0 && s.skipped == 0 {
                                    break;
                                }
                            }
                            let paid = w.check(true).await;
                            for (c, p) in &paid {
                                prop_assert_eq!(*p, model.owed(), "{} after settling", c);
                            }
                            let toss = w.snapshot().counters.done_charges;
                            prop_assert_eq!(toss, (n as u64) * u64::from(model.owed()));
                            last = paid;
                        }
                    }
                }
                w.assert_no_secrets_in(&[&crate::world::captured_logs()])
                    .await;
                Ok(())
            })
        })
        .unwrap();
    eprintln!(
        "model: 8 cases, {} steps, every one agreeing with the model",
        steps.load(std::sync::atomic::Ordering::Relaxed)
    );
}
