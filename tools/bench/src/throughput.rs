//! `bench run`: the sweep's throughput against its limit C/L, next to the seed's one-at-a-time
//! approach, with DynamoDB requests per renewal, peak memory and an exactly-once check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Utc};
use toss_sandbox::{Endpoint, FaultConfig, Latency, SandboxConfig};

use crate::counting;
use crate::seed::{self, Seeded};
use crate::sweeper::{SweepArgs, SweepReport};

/// Options of a benchmark run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most subscriptions seeded for one setting.
    pub n: usize,
    pub latencies_ms: Vec<u64>,
    pub concurrencies: Vec<usize>,
    /// Each setting seeds about `limit × seconds` subscriptions (at most `n`), so slow settings
    /// finish in about this long.
    pub seconds: f64,
    /// Subscriptions for the memory row (0: no memory row).
    pub memory_n: usize,
    /// Subscriptions another run holds a claim on, for the requests-per-skip row (0: none).
    pub skip_n: usize,
    /// Subscriptions for the chain row (runs cut short by a deadline, continued; 0: none).
    pub chain_n: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            n: 10_000,
            latencies_ms: vec![50, 500],
            concurrencies: vec![8, 32, 128],
            seconds: 15.0,
            memory_n: 0,
            skip_n: 500,
            chain_n: 2_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Warms DynamoDB Local's JVM up; not reported.
    Warmup,
    /// No Toss latency at all: what the table, the sandbox and the CPU allow.
    Ceiling,
    /// The seed's approach: one subscription at a time.
    Seed,
    Ours,
    /// Every due subscription is claimed by another run.
    Skip,
    /// Runs stopped by a deadline and continued until done.
    Chain,
    Memory,
}

#[derive(Debug, Clone)]
struct Spec {
    kind: Kind,
    latency_ms: u64,
    concurrency: usize,
    n: usize,
    /// Stop claiming this long after each run starts (chain row).
    stop_after_ms: Option<u64>,
}

#[derive(Debug, Clone)]
struct Row {
    spec: Spec,
    runs: u32,
    report: SweepReport,
    problems: Vec<String>,
    seed_secs: f64,
}

impl Row {
    fn rate(&self) -> f64 {
        self.report.charged as f64 / (self.report.elapsed_ms / 1000.0).max(1e-9)
    }

    fn limit(&self) -> Option<f64> {
        (self.spec.latency_ms > 0)
            .then(|| self.spec.concurrency as f64 * 1000.0 / self.spec.latency_ms as f64)
    }

    fn requests(&self) -> u64 {
        self.report.requests.values().sum()
    }
}

struct Bench {
    endpoint: String,
    admin: aws_sdk_dynamodb::Client,
    as_of: DateTime<Utc>,
    rows: usize,
}

pub async fn run(options: Options) -> anyhow::Result<bool> {
    let endpoint = testkit::dynamo::endpoint().await?;
    let mut bench = Bench {
        admin: counting::client(&endpoint, None),
        endpoint,
        as_of: Utc::now(),
        rows: 0,
    };
    let max_c = options.concurrencies.iter().copied().max().unwrap_or(32);
    let mut rows = Vec::new();
    // First the ceiling: what the table server, the sandbox and the CPU allow with no Toss wait.
    for spec in [
        Spec {
            kind: Kind::Warmup,
            latency_ms: 0,
            concurrency: max_c,
            n: options.n.min(1_000),
            stop_after_ms: None,
        },
        Spec {
            kind: Kind::Ceiling,
            latency_ms: 0,
            // More requests in flight only queue inside the server: 32 finds its best rate.
            concurrency: max_c.min(32),
            n: options.n.min(3_000),
            stop_after_ms: None,
        },
    ] {
        rows.push(bench.measured(spec).await?);
    }
    let ceiling = rows.last().map_or(f64::INFINITY, Row::rate);
    // Each row seeds what it can charge in about `seconds` at min(C/L, ceiling).
    let per = |c: usize, l: u64| -> usize {
        let limit = (c as f64 * 1000.0 / l.max(1) as f64).min(ceiling * 1.2);
        ((limit * options.seconds).ceil() as usize).clamp(10, options.n.max(10))
    };

    let mut specs = Vec::new();
    for &l in &options.latencies_ms {
        specs.push(Spec {
            kind: Kind::Seed,
            latency_ms: l,
            concurrency: 1,
            n: per(1, l),
            stop_after_ms: None,
        });
        for &c in &options.concurrencies {
            specs.push(Spec {
                kind: Kind::Ours,
                latency_ms: l,
                concurrency: c,
                n: per(c, l),
                stop_after_ms: None,
            });
        }
    }
    let first_l = options.latencies_ms.first().copied().unwrap_or(50);
    if options.skip_n > 0 {
        specs.push(Spec {
            kind: Kind::Skip,
            latency_ms: first_l,
            concurrency: 32,
            n: options.skip_n,
            stop_after_ms: None,
        });
    }
    if options.chain_n > 0 {
        specs.push(Spec {
            kind: Kind::Chain,
            latency_ms: first_l,
            concurrency: 32,
            n: options.chain_n.min(per(32, first_l)),
            stop_after_ms: Some(1_000),
        });
    }
    if options.memory_n > 0 {
        specs.push(Spec {
            kind: Kind::Memory,
            latency_ms: first_l,
            concurrency: max_c,
            n: options.memory_n,
            stop_after_ms: None,
        });
    }

    for spec in specs {
        rows.push(bench.measured(spec).await?);
    }
    let ok = rows.iter().all(|r| r.problems.is_empty());
    rows.retain(|r| r.spec.kind != Kind::Warmup);
    let table = render(&rows, &options);
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, table.as_bytes())?;
    Ok(ok)
}

impl Bench {
    async fn measured(&mut self, spec: Spec) -> anyhow::Result<Row> {
        eprintln!(
            "bench: {:?} L={} ms C={} n={} …",
            spec.kind, spec.latency_ms, spec.concurrency, spec.n
        );
        let row = self.row(spec).await?;
        eprintln!(
            "bench:   {} charged in {:.1} s ({:.0}/s), {} DynamoDB requests, peak RSS {} kB, {} problems",
            row.report.charged,
            row.report.elapsed_ms / 1000.0,
            row.rate(),
            row.requests(),
            row.report.peak_rss_kb,
            row.problems.len()
        );
        Ok(row)
    }

    async fn row(&mut self, spec: Spec) -> anyhow::Result<Row> {
        self.rows += 1;
        let table = testkit::dynamo::unique_table_name("bench");
        testkit::dynamo::create_table_from_template(&self.admin, &table).await?;
        let store = store::Store::new(self.admin.clone(), table.clone());
        let sandbox = toss_sandbox::spawn(SandboxConfig::default()).await?;

        let started = Instant::now();
        let prefix = format!("b{}-", self.rows);
        let preclaimed = spec.kind == Kind::Skip;
        let seeded: Vec<Seeded> = seed::seed(
            &store,
            sandbox.sandbox(),
            &prefix,
            spec.n,
            self.as_of,
            preclaimed,
        )
        .await?;
        let seed_secs = started.elapsed().as_secs_f64();

        if spec.latency_ms > 0 {
            let mut faults = FaultConfig::default();
            faults.latency.endpoints.insert(
                Endpoint::Charge,
                Latency::Fixed {
                    ms: spec.latency_ms,
                },
            );
            sandbox.sandbox().set_faults(faults);
        }

        let args = SweepArgs {
            endpoint: self.endpoint.clone(),
            table: table.clone(),
            toss_base: sandbox.base_url(),
            concurrency: spec.concurrency,
            as_of: self.as_of,
            stop_after_ms: spec.stop_after_ms,
        };
        let mut total: Option<SweepReport> = None;
        let mut runs = 0;
        loop {
            let report = sweep_process(&args).await?;
            runs += 1;
            let stopped = report.stopped_early;
            total = Some(match total {
                None => report,
                Some(t) => merge(t, report),
            });
            if !stopped || runs >= 100 {
                break;
            }
        }
        let report = total.context("no sweep ran")?;
        let problems = seed::verify(&store, sandbox.sandbox(), &seeded, !preclaimed).await?;
        for p in problems.iter().take(5) {
            eprintln!("bench:   PROBLEM {p}");
        }
        sandbox.shutdown().await?;
        // DynamoDB Local keeps tables in memory: drop each setting's table.
        self.admin
            .delete_table()
            .table_name(&table)
            .send()
            .await
            .with_context(|| format!("delete table {table}"))?;
        Ok(Row {
            spec,
            runs,
            report,
            problems,
            seed_secs,
        })
    }
}

fn merge(a: SweepReport, b: SweepReport) -> SweepReport {
    let mut requests: BTreeMap<String, u64> = a.requests;
    for (k, v) in b.requests {
        *requests.entry(k).or_default() += v;
    }
    SweepReport {
        due: a.due + b.due,
        charged: a.charged + b.charged,
        skipped: a.skipped + b.skipped,
        declined: a.declined + b.declined,
        unknown_outcome: a.unknown_outcome + b.unknown_outcome,
        errors: a.errors + b.errors,
        stopped_early: b.stopped_early,
        requests,
        elapsed_ms: a.elapsed_ms + b.elapsed_ms,
        peak_rss_kb: a.peak_rss_kb.max(b.peak_rss_kb),
        cpu_ms: a.cpu_ms + b.cpu_ms,
    }
}

/// Runs one sweep in a child process (this binary, `sweep` mode) and reads its report.
async fn sweep_process(args: &SweepArgs) -> anyhow::Result<SweepReport> {
    let exe = std::env::current_exe().context("find the bench binary")?;
    let output = tokio::process::Command::new(exe)
        .args(args.to_args())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .context("run the sweep process")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        anyhow::bail!("the sweep process failed ({}): {stdout}", output.status);
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("the sweep process printed no report")?;
    serde_json::from_str(line).context("parse the sweep report")
}

fn render(rows: &[Row], options: &Options) -> String {
    let ceiling = rows
        .iter()
        .find(|r| r.spec.kind == Kind::Ceiling)
        .map(Row::rate);
    let seed_rate = |l: u64| {
        rows.iter()
            .find(|r| r.spec.kind == Kind::Seed && r.spec.latency_ms == l)
            .map(Row::rate)
    };
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nSweep benchmark: DynamoDB Local (in-memory, same machine) + Toss sandbox, {cpus} CPUs, {}. \
         L = latency injected on every charge at the sandbox, C = CHARGE_CONCURRENCY (charges in flight at Toss), \
         n = due subscriptions seeded for the row (about min(C/L, ceiling) × {} s, at most {}).\n",
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        options.seconds,
        options.n,
    );
    let _ = writeln!(
        s,
        "| setting | L ms | C | n | runs | sweep s | charges/s | limit C/L | ratio | × seed | DynamoDB req / renewal | req / skipped | sweep CPU ms / renewal | peak RSS MB | exactly once | bounded by |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
    );
    for r in rows {
        let rate = r.rate();
        let limit = r.limit();
        let name = match r.spec.kind {
            Kind::Ceiling => "ceiling (no Toss wait)",
            Kind::Seed => "seed approach (one at a time)",
            Kind::Ours => "sweep",
            Kind::Skip => "all due claimed by another run",
            Kind::Chain => "chain (1 s runs, continued)",
            Kind::Memory => "memory",
            Kind::Warmup => "warm-up",
        };
        let ratio = limit.map_or("–".into(), |l| format!("{:.2}", rate / l));
        let times_seed = match (r.spec.kind, seed_rate(r.spec.latency_ms)) {
            (Kind::Ours | Kind::Memory, Some(b)) if b > 0.0 => format!("{:.1}×", rate / b),
            _ => "–".into(),
        };
        let per_renewal = if r.report.charged > 0 {
            format!("{:.2}", r.requests() as f64 / r.report.charged as f64)
        } else {
            "–".into()
        };
        let per_skip = if r.spec.kind == Kind::Skip && r.report.skipped > 0 {
            format!("{:.2}", r.requests() as f64 / r.report.skipped as f64)
        } else {
            "–".into()
        };
        // Below 0.9 of C/L the only other thing in the loop is the table server on this
        // machine's shared CPU (the sweep's own CPU per renewal is in its column).
        let bound = match (r.spec.kind, limit) {
            (Kind::Ceiling, _) => "DynamoDB Local + shared CPU (no Toss wait)".to_owned(),
            (Kind::Skip, _) => "DynamoDB Local (no charges)".to_owned(),
            (Kind::Seed, _) => "Toss latency + sequential table round trips".to_owned(),
            (_, Some(l)) if rate >= 0.9 * l => "Toss latency (C/L)".to_owned(),
            (_, Some(l)) => match ceiling {
                Some(c) if l >= 0.9 * c => {
                    format!("DynamoDB Local (C/L {l:.0}/s ≥ its ceiling {c:.0}/s)")
                }
                _ => "DynamoDB Local under load (queueing at C in flight)".to_owned(),
            },
            _ => "–".to_owned(),
        };
        let cpu = if r.report.charged > 0 {
            format!("{:.2}", r.report.cpu_ms / r.report.charged as f64)
        } else {
            "–".into()
        };
        let once = if r.problems.is_empty() {
            "yes".to_owned()
        } else {
            format!("NO ({} problems)", r.problems.len())
        };
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {:.1} | {:.0} | {} | {ratio} | {times_seed} | {per_renewal} | {per_skip} | {cpu} | {:.1} | {once} | {bound} |",
            r.spec.latency_ms,
            r.spec.concurrency,
            r.spec.n,
            r.runs,
            r.report.elapsed_ms / 1000.0,
            rate,
            limit.map_or("–".into(), |l| format!("{l:.0}")),
            r.report.peak_rss_kb as f64 / 1024.0,
        );
    }
    let _ = writeln!(s, "\nDynamoDB requests by operation:\n");
    for r in rows {
        let ops: Vec<String> = r
            .report
            .requests
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            s,
            "- {:?} L={} C={} n={} (seeded in {:.1} s): {}",
            r.spec.kind,
            r.spec.latency_ms,
            r.spec.concurrency,
            r.spec.n,
            r.seed_secs,
            ops.join(", ")
        );
    }
    s
}
