//! The sweep's metrics as the function writes them: CloudWatch Embedded Metric Format lines,
//! checked against the format's rules, with the values of a sweep whose outcomes are known.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use serde_json::Value;
use toss_sandbox::{Endpoint, FaultAction, FaultConfig, FaultRule, TestCard};

use crate::harness::World;

/// The units CloudWatch accepts (MetricDatum.Unit).
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// The only dimensions a metric may carry: never a customer, subscription or order.
const DIMENSIONS: &[&str] = &["Service", "Outcome"];

/// One metric value: its dimensions and its values (a number, or the list a histogram sends).
#[derive(Debug, Clone, PartialEq)]
struct Datum {
    dimensions: BTreeMap<String, String>,
    values: Vec<f64>,
    unit: Option<String>,
}

/// Checks one line against the Embedded Metric Format specification and returns its metrics.
/// Panics naming the broken rule.
fn parse_emf(line: &str, namespace: &str) -> Vec<(String, Datum)> {
    assert!(line.len() < 1_000_000, "a document is at most 1 MB");
    let doc: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let root = doc.as_object().expect("the root is an object");
    let aws = root["_aws"].as_object().expect("_aws is an object");
    let timestamp = aws["Timestamp"]
        .as_u64()
        .expect("_aws.Timestamp is an integer");
    let now_ms = Utc::now().timestamp_millis() as u64;
    assert!(
        now_ms.abs_diff(timestamp) < 60_000,
        "Timestamp is epoch milliseconds, now"
    );
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("_aws.CloudWatchMetrics is an array");
    assert!(!directives.is_empty(), "at least one metric directive");
    let mut out = Vec::new();
    for directive in directives {
        assert_eq!(
            directive["Namespace"].as_str(),
            Some(namespace),
            "Namespace"
        );
        let sets = directive["Dimensions"]
            .as_array()
            .expect("Dimensions is an array");
        let metrics = directive["Metrics"]
            .as_array()
            .expect("Metrics is an array");
        assert!(metrics.len() <= 100, "at most 100 metrics per directive");
        for set in sets {
            let set = set.as_array().expect("a dimension set is an array");
            assert!(set.len() <= 30, "at most 30 dimensions per set");
            for key in set {
                let key = key.as_str().expect("a dimension key is a string");
                assert!(
                    DIMENSIONS.contains(&key),
                    "unexpected dimension {key}: {line}"
                );
                assert!(
                    root.get(key).is_some_and(Value::is_string),
                    "dimension {key} is a top-level string member: {line}"
                );
            }
        }
        for metric in metrics {
            let name = metric["Name"].as_str().expect("Metrics[].Name is a string");
            assert!(
                (1..=1024).contains(&name.len()),
                "Name is 1-1024 characters"
            );
            let unit = metric
                .get("Unit")
                .map(|u| u.as_str().expect("Unit is a string"));
            if let Some(unit) = unit {
                assert!(UNITS.contains(&unit), "unknown unit {unit}");
            }
            let values = match root.get(name) {
                Some(Value::Number(n)) => vec![n.as_f64().unwrap()],
                Some(Value::Array(list)) => {
                    assert!(
                        (1..=100).contains(&list.len()),
                        "a metric carries 1 to 100 values"
                    );
                    list.iter()
                        .map(|v| v.as_f64().expect("every value is a number"))
                        .collect()
                }
                other => panic!("metric {name} is not a top-level number or array: {other:?}"),
            };
            let dimensions = sets
                .iter()
                .flat_map(|set| set.as_array().unwrap())
                .map(|k| {
                    let k = k.as_str().unwrap();
                    (k.to_owned(), root[k].as_str().unwrap().to_owned())
                })
                .collect();
            out.push((
                name.to_owned(),
                Datum {
                    dimensions,
                    values,
                    unit: unit.map(str::to_owned),
                },
            ));
        }
    }
    out
}

fn unknown_for(customer: &str) -> FaultConfig {
    FaultConfig {
        rules: vec![FaultRule {
            endpoint: Some(Endpoint::Charge),
            probability: 1.0,
            times: None,
            commit: false,
            customer_key: Some(customer.to_owned()),
            order_id: None,
            action: FaultAction::Error {
                status: Some(500),
                code: "FAILED_INTERNAL_SYSTEM_PROCESSING".into(),
                message: None,
            },
        }],
        ..FaultConfig::default()
    }
}

#[tokio::test]
async fn a_sweep_writes_valid_emf_lines_with_its_charges_by_outcome_krw_unknowns_and_heartbeat() {
    // GIVEN three renewals due: one pays, one is declined, one's outcome is lost (500).
    let w = World::new().await;
    let now = Utc::now();
    let paid = w.subscribe("user_emf_paid", TestCard::Ok, now).await;
    w.subscribe("user_emf_declined", TestCard::DeclineRenewals, now)
        .await;
    w.subscribe("user_emf_unknown", TestCard::Ok, now).await;
    w.sandbox
        .sandbox()
        .set_faults(unknown_for("user_emf_unknown"));
    let as_of = paid.next_charge_at().unwrap() + Duration::hours(9);
    let collector = billing::metrics::install("TossSubscriptions/test", "charge-subscriptions")
        .expect("the only recorder of this test process");

    // WHEN the function records the run and flushes.
    let summary = w.sweep(as_of).await;
    billing::metrics::sweep(&summary, StdDuration::from_millis(1500), true);
    let mut out = Vec::new();
    collector.flush(&mut out).unwrap();

    // THEN every line is valid EMF, and the values are the sweep's.
    let text = String::from_utf8(out).unwrap();
    let data: Vec<(String, Datum)> = text
        .lines()
        .flat_map(|line| parse_emf(line, "TossSubscriptions/test"))
        .collect();
    let find = |name: &str, outcome: Option<&str>| -> Vec<f64> {
        let found: Vec<_> = data
            .iter()
            .filter(|(n, d)| {
                n == name && d.dimensions.get("Outcome").map(String::as_str) == outcome
            })
            .collect();
        assert_eq!(found.len(), 1, "{name} {outcome:?} once in:\n{text}");
        assert_eq!(found[0].1.dimensions["Service"], "charge-subscriptions");
        found[0].1.values.clone()
    };
    assert_eq!(
        (summary.charged, summary.declined, summary.unknown_outcome),
        (1, 1, 1),
        "{summary:?}"
    );
    assert_eq!(find("Charges", Some("charged")), [1.0]);
    assert_eq!(find("Charges", Some("declined")), [1.0]);
    assert_eq!(find("Charges", Some("unknown")), [1.0]);
    assert_eq!(find("ChargedKrw", None), [3900.0]);
    assert_eq!(find("UnknownAttempts", None), [1.0]);
    let age = find("OldestUnknownAttemptAgeSeconds", None);
    assert!(age.len() == 1 && (0.0..60.0).contains(&age[0]), "{age:?}");
    assert_eq!(find("SweepDurationSeconds", None), [1.5]);
    assert_eq!(find("SweepCompleted", None), [1.0]);
    assert!(
        !data
            .iter()
            .any(|(_, d)| d.dimensions.get("Outcome").map(String::as_str) == Some("held")),
        "a zero count (nobody held) is not sent: {text}"
    );
    let units: BTreeMap<_, _> = data
        .iter()
        .map(|(n, d)| (n.as_str(), d.unit.clone()))
        .collect();
    assert_eq!(units["Charges"].as_deref(), Some("Count"));
    assert_eq!(units["SweepDurationSeconds"].as_deref(), Some("Seconds"));
    for customer in ["user_emf_paid", "user_emf_declined", "user_emf_unknown"] {
        assert!(
            !text.contains(customer),
            "no customer in the metrics: {text}"
        );
    }

    // AND a second flush sends nothing again: a warm container never repeats a run's values.
    let mut again = Vec::new();
    collector.flush(&mut again).unwrap();
    assert!(again.is_empty(), "{}", String::from_utf8_lossy(&again));
}
