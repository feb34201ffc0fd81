//! Load generator and meter of `scripts/bench/vs-victoriametrics.sh`: the
//! same data into heroic and VictoriaMetrics over HTTP, then the same query.
//!
//! ```text
//! http-compare ingest --target heroic|vm --url URL [--series N --points N --conns N --start MS --pid PID] --out FILE
//! http-compare query  --target heroic|vm --url URL [--runs N --pid PID ...] --out FILE
//! http-compare report --out FILE
//! ```
//!
//! Each phase appends `target<TAB>figure<TAB>value` lines to `--out`; the
//! script adds the on-disk sizes and `report` prints the table.

mod data;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use data::{Shape, METRIC};

struct Args {
    mode: String,
    target: String,
    url: String,
    shape: Shape,
    conns: usize,
    runs: usize,
    out: String,
    /// The server's process, to report the CPU time it spent.
    pid: Option<u32>,
}

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().context("usage: http-compare ingest|query|report [--flag value]…")?;
    let mut flags = BTreeMap::new();
    while let Some(flag) = it.next() {
        let name = flag.strip_prefix("--").with_context(|| format!("unexpected argument {flag:?}"))?;
        let value = it.next().with_context(|| format!("--{name} needs a value"))?;
        flags.insert(name.to_string(), value);
    }
    let num = |name: &str, default: i64| -> Result<i64> {
        flags.get(name).map_or(Ok(default), |v| v.parse().with_context(|| format!("--{name} {v:?}")))
    };
    let day = 86_400_000;
    // Two days ago, aligned to the day: inside VictoriaMetrics' default
    // retention and its search window, and away from its "recent" caches.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let shape = Shape {
        series: num("series", 1000)? as usize,
        points: num("points", 8640)? as usize,
        start_ms: num("start", (now / day - 2) * day)?,
    };
    Ok(Args {
        mode,
        target: flags.get("target").cloned().unwrap_or_default(),
        url: flags.get("url").cloned().unwrap_or_default().trim_end_matches('/').to_string(),
        shape,
        conns: num("conns", 4)? as usize,
        runs: num("runs", 20)? as usize,
        out: flags.get("out").cloned().context("--out FILE is required")?,
        pid: flags.get("pid").map(|p| p.parse()).transpose().context("--pid")?,
    })
}

fn record(out: &str, target: &str, figure: &str, value: f64) -> Result<()> {
    println!("{target:>7} {figure:<24} {value:.3}");
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(out).with_context(|| out.to_string())?;
    writeln!(f, "{target}\t{figure}\t{value}")?;
    Ok(())
}

/// CPU time (user + system) a process has used so far, in milliseconds:
/// on a shared machine a steadier figure than wall time.
fn cpu_ms(pid: Option<u32>) -> Result<Option<f64>> {
    let Some(pid) = pid else { return Ok(None) };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').context("bad /proc stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).context("no utime")?.parse::<u64>()? + f.get(12).context("no stime")?.parse::<u64>()?;
    // /proc counts in USER_HZ, 100 per second on Linux.
    Ok(Some(ticks as f64 * 10.0))
}

fn client() -> Result<reqwest::blocking::Client> {
    Ok(reqwest::blocking::Client::builder().timeout(Duration::from_secs(300)).pool_max_idle_per_host(1).build()?)
}

/// Sends one request per series over `conns` connections; bodies are built
/// beforehand so that the meter measures the servers, not the generator.
fn ingest(a: &Args) -> Result<()> {
    let build = |i| if a.target == "vm" { data::vm_body(a.shape, i) } else { data::heroic_body(a.shape, i) };
    let bodies: Vec<Vec<u8>> = (0..a.shape.series).map(build).collect();
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let (path, ok) = if a.target == "vm" { ("/api/v1/import", 204) } else { ("/write", 200) };
    let url = format!("{}{path}", a.url);
    let next = AtomicUsize::new(0);
    let cpu_before = cpu_ms(a.pid)?;
    let started = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..a.conns)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let c = client()?;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else { return Ok(()) };
                        let r = c.post(&url).header("content-type", "application/json").body(body.clone()).send()?;
                        let status = r.status().as_u16();
                        ensure!(status == ok, "{url}: status {status}: {}", r.text().unwrap_or_default());
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().expect("worker panicked"))
    })?;
    let secs = started.elapsed().as_secs_f64();
    let points = a.shape.total_points() as f64;
    println!("{}: {points} points ({:.0} MB of JSON) in {secs:.2} s", a.target, bytes as f64 / 1e6);
    if let (Some(before), Some(after)) = (cpu_before, cpu_ms(a.pid)?) {
        record(&a.out, &a.target, "ingest_cpu_ns_per_point", (after - before) * 1e6 / points)?;
    }
    record(&a.out, &a.target, "ingest_points_per_s", points / secs)
}

/// `(bucket end ms, value)` pairs of one query answer.
fn run_query(c: &reqwest::blocking::Client, a: &Args) -> Result<Vec<(i64, f64)>> {
    let (start, end) = (a.shape.start_ms, a.shape.end_ms());
    if a.target == "vm" {
        // sum_over_time(m[1m]) at t covers (t-1m, t], as heroic's bucket t
        // does; nocache=1 so that every run computes the answer afresh.
        let query = format!("sum(sum_over_time({METRIC}[1m]))");
        let url = format!("{}/api/v1/query_range", a.url);
        let params = [
            ("query", query),
            ("start", ((start + 60_000) / 1000).to_string()),
            ("end", (end / 1000).to_string()),
            ("step", "60".to_string()),
            ("nocache", "1".to_string()),
        ];
        let v: serde_json::Value =
            serde_json::from_slice(&c.get(url).query(&params).send()?.error_for_status()?.bytes()?)?;
        let values = v["data"]["result"][0]["values"].as_array().context("no result")?;
        values
            .iter()
            .map(|p| {
                let t = p[0].as_f64().context("bad timestamp")? as i64 * 1000;
                Ok((t, p[1].as_str().context("bad value")?.parse()?))
            })
            .collect()
    } else {
        let body = serde_json::json!({
            "range": {"type": "absolute", "start": start, "end": end},
            "filter": ["key", METRIC],
            "aggregation": {"type": "sum", "sampling": {"unit": "minutes", "value": 1}},
        });
        let r =
            c.post(format!("{}/query/metrics", a.url)).header("x-client-id", "bench").body(body.to_string()).send()?;
        let v: serde_json::Value = serde_json::from_slice(&r.error_for_status()?.bytes()?)?;
        let values = v["result"][0]["values"].as_array().with_context(|| format!("no result: {v}"))?;
        values
            .iter()
            .map(|p| Ok((p[0].as_i64().context("bad timestamp")?, p[1].as_f64().context("bad value")?)))
            .collect()
    }
}

/// Checks an answer against the sums computed from the data itself.
fn check(a: &Args, got: &[(i64, f64)]) -> Result<()> {
    let want = data::expected_sums(a.shape);
    ensure!(got.len() == want.len(), "{}: {} buckets, expected {}", a.target, got.len(), want.len());
    for (i, ((t, v), w)) in got.iter().zip(&want).enumerate() {
        let bucket = a.shape.start_ms + 60_000 * (i as i64 + 1);
        ensure!(*t == bucket, "{}: bucket {i} at {t}, expected {bucket}", a.target);
        let w = *w as f64 / 100.0;
        ensure!((v - w).abs() <= 1e-6 * w.abs().max(1.0), "{}: bucket {i} is {v}, expected {w}", a.target);
    }
    Ok(())
}

fn query(a: &Args) -> Result<()> {
    let c = client()?;
    let first = run_query(&c, a)?;
    check(a, &first).context("wrong answer")?;
    let mut times = Vec::with_capacity(a.runs);
    let cpu_before = cpu_ms(a.pid)?;
    for _ in 0..a.runs {
        let t = Instant::now();
        run_query(&c, a)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    if let (Some(before), Some(after)) = (cpu_before, cpu_ms(a.pid)?) {
        record(&a.out, &a.target, "query_cpu_ms", (after - before) / a.runs as f64)?;
    }
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    record(&a.out, &a.target, "query_median_ms", pick(0.5))?;
    record(&a.out, &a.target, "query_p90_ms", pick(0.9))
}

/// Prints the figures of `--out` side by side.
fn report(a: &Args) -> Result<()> {
    let text = std::fs::read_to_string(&a.out).with_context(|| a.out.clone())?;
    let mut figures: BTreeMap<&str, BTreeMap<&str, f64>> = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split('\t');
        let (Some(target), Some(name), Some(value)) = (f.next(), f.next(), f.next()) else { continue };
        figures.entry(name).or_default().insert(target, value.parse()?);
    }
    let rows = [
        ("ingest_points_per_s", "HTTP ingest, M points/s", 1e-6, true),
        ("ingest_cpu_ns_per_point", "ingest, server CPU ns/point", 1.0, false),
        ("bytes_per_point", "on disk, bytes/point", 1.0, false),
        ("query_median_ms", "sum of all series, median ms", 1.0, false),
        ("query_p90_ms", "sum of all series, p90 ms", 1.0, false),
        ("query_cpu_ms", "sum of all series, server CPU ms", 1.0, false),
    ];
    println!("| figure | heroic | VictoriaMetrics | heroic / VM |");
    println!("|---|---|---|---|");
    for (name, label, scale, higher_is_better) in rows {
        let get = |t: &str| figures.get(name).and_then(|m| m.get(t)).copied();
        let cell = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{:.3}", v * scale));
        let ratio = match (get("heroic"), get("vm")) {
            (Some(h), Some(v)) if v > 0.0 => {
                let better = if (h >= v) == higher_is_better { "better" } else { "worse" };
                format!("{:.2}× ({better})", h / v)
            }
            _ => "–".to_string(),
        };
        println!("| {label} | {} | {} | {ratio} |", cell(get("heroic")), cell(get("vm")));
    }
    Ok(())
}

fn main() -> Result<()> {
    let a = parse_args()?;
    if a.mode != "report" && !["heroic", "vm"].contains(&a.target.as_str()) {
        bail!("--target must be heroic or vm");
    }
    match a.mode.as_str() {
        "ingest" => ingest(&a),
        "query" => query(&a),
        "report" => report(&a),
        other => bail!("unknown mode {other:?}: ingest, query or report"),
    }
}
