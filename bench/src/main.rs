//! Load generator and meter of `scripts/bench/vs-victoriametrics.sh`: the
//! same data into heroic and VictoriaMetrics over HTTP, then the same
//! queries (see `queries.rs`), each answer checked against the data.
//!
//! ```text
//! http-compare ingest --target heroic|vm --url URL [--series N --points N --conns N --start MS --pid PID]
//!                     [--protocol json|remote-write] --out FILE
//! http-compare query  --target heroic|vm|prometheus --url URL [--runs N --pid PID --queries raw,sum,… ...] --out FILE
//! http-compare openmetrics --file FILE [--series N --points N --start MS]
//! http-compare report --out FILE
//! ```
//!
//! `prometheus` answers only the PromQL query; `openmetrics` writes the
//! data set for `promtool tsdb create-blocks-from openmetrics`, to feed it.
//!
//! Each phase appends `target<TAB>figure<TAB>value` lines to `--out`; the
//! script adds the on-disk sizes and `report` prints the table.

mod data;
mod queries;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use data::{Shape, STEP_MS};
use queries::{Query, Request};

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
    /// `--queries raw,sum,…`: the queries to run (default: all).
    queries: Option<String>,
    /// `--protocol`: `json` (each server's own JSON write, the default) or
    /// `remote-write` (Prometheus remote-write 1.0 to both).
    protocol: String,
}

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().context("usage: http-compare ingest|query|openmetrics|report [--flag value]…")?;
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
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let points = num("points", 8640)?;
    // Aligned to the day, with the data ending by yesterday's midnight: a
    // query's range ends at the latest now (heroic cuts it there), and the
    // data stays inside VictoriaMetrics' default retention and away from
    // its "recent" caches. One day of data starts two days ago.
    let days = (points * STEP_MS + day - 1) / day;
    let shape = Shape {
        series: num("series", 1000)? as usize,
        points: points as usize,
        start_ms: num("start", (now / day - 1 - days) * day)?,
    };
    let out = match mode.as_str() {
        "openmetrics" => flags.get("file").cloned().context("--file FILE is required")?,
        _ => flags.get("out").cloned().context("--out FILE is required")?,
    };
    Ok(Args {
        mode,
        target: flags.get("target").cloned().unwrap_or_default(),
        url: flags.get("url").cloned().unwrap_or_default().trim_end_matches('/').to_string(),
        shape,
        conns: num("conns", 4)? as usize,
        runs: num("runs", 20)? as usize,
        out,
        pid: flags.get("pid").map(|p| p.parse()).transpose().context("--pid")?,
        queries: flags.get("queries").cloned(),
        protocol: flags.get("protocol").cloned().unwrap_or_else(|| "json".to_string()),
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
    let remote_write = match a.protocol.as_str() {
        "json" => false,
        "remote-write" => true,
        other => bail!("--protocol {other:?}: expected json or remote-write"),
    };
    let build = |i| match (remote_write, a.target == "vm") {
        (true, _) => data::remote_write_body(a.shape, i),
        (false, true) => data::vm_body(a.shape, i),
        (false, false) => data::heroic_body(a.shape, i),
    };
    let bodies: Vec<Vec<u8>> = (0..a.shape.series).map(build).collect();
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let (path, ok, content_type) = match (remote_write, a.target == "vm") {
        (true, _) => ("/api/v1/write", 204, "application/x-protobuf"),
        (false, true) => ("/api/v1/import", 204, "application/json"),
        (false, false) => ("/write", 200, "application/json"),
    };
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
                        let mut r = c.post(&url).header("content-type", content_type);
                        if remote_write {
                            r = r.header("content-encoding", "snappy");
                        }
                        let r = r.body(body.clone()).send()?;
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
    println!("{}: {points} points ({:.0} MB of {}) in {secs:.2} s", a.target, bytes as f64 / 1e6, a.protocol);
    if let (Some(before), Some(after)) = (cpu_before, cpu_ms(a.pid)?) {
        record(&a.out, &a.target, "ingest_cpu_ns_per_point", (after - before) * 1e6 / points)?;
    }
    record(&a.out, &a.target, "ingest_points_per_s", points / secs)
}

/// Runs one query and reads its answer.
/// Sends query `q` and returns its answer's body, once received whole.
fn send_query(c: &reqwest::blocking::Client, a: &Args, q: Query) -> Result<impl AsRef<[u8]>> {
    let request = if a.target == "heroic" { q.heroic(a.shape) } else { q.vm(a.shape) };
    let response = match request {
        Request::Post { path, body } => c
            .post(format!("{}{path}", a.url))
            .header("x-client-id", "bench")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()?,
        Request::Get { path, params } => c.get(format!("{}{path}", a.url)).query(&params).send()?,
    };
    let status = response.status();
    let body = response.bytes()?;
    ensure!(status.is_success(), "{} {}: status {status}: {}", a.target, q.name(), String::from_utf8_lossy(&body));
    Ok(body)
}

/// Sends query `q` and reads its answer.
fn run_query(c: &reqwest::blocking::Client, a: &Args, q: Query) -> Result<queries::Answer> {
    let body = send_query(c, a, q)?;
    let body = body.as_ref();
    // The PromQL query is answered in Prometheus' JSON by all three.
    if a.target != "heroic" || q == Query::PromqlRate {
        q.read_vm(body)
    } else {
        q.read_heroic(&serde_json::from_slice(body)?)
    }
}

/// Each query: one warm-up run whose answer is checked against the data,
/// then `runs` timed runs one after the other, each from sending the
/// request to receiving the whole answer (not parsing it: the client's
/// JSON parsing would weigh the two answer formats, not the servers).
fn query(a: &Args) -> Result<()> {
    let c = client()?;
    let chosen: Vec<Query> = match &a.queries {
        None => queries::ALL.to_vec(),
        Some(names) => names
            .split(',')
            .map(|n| Query::parse(n).with_context(|| format!("unknown query {n:?}")))
            .collect::<Result<_>>()?,
    };
    for q in chosen {
        let first = run_query(&c, a, q)?;
        let want = q.expected(a.shape);
        if q == Query::PromqlRate && a.target == "vm" {
            // VictoriaMetrics' rate is its own (no extrapolation): reported,
            // not required.
            let (worst, unmatched) = queries::deviation(&first, &want);
            println!("vm {}: largest difference from Prometheus' rate {worst:.3e} (relative), {unmatched} points in one answer only", q.name());
            record(&a.out, &a.target, "promql_rate_deviation", worst)?;
        } else {
            queries::check(&a.target, q, &first, &want).context("wrong answer")?;
        }
        let mut times = Vec::with_capacity(a.runs);
        let cpu_before = cpu_ms(a.pid)?;
        for _ in 0..a.runs {
            let t = Instant::now();
            send_query(&c, a, q)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let name = q.name();
        if let (Some(before), Some(after)) = (cpu_before, cpu_ms(a.pid)?) {
            record(&a.out, &a.target, &format!("{name}_cpu_ms"), (after - before) / a.runs as f64)?;
        }
        times.sort_by(f64::total_cmp);
        let pick = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
        record(&a.out, &a.target, &format!("{name}_median_ms"), pick(0.5))?;
        record(&a.out, &a.target, &format!("{name}_p90_ms"), pick(0.9))?;
    }
    Ok(())
}

/// Writes the data set as OpenMetrics text (one family, samples in
/// seconds), series after series.
fn openmetrics(a: &Args) -> Result<()> {
    let file = std::fs::File::create(&a.out).with_context(|| a.out.clone())?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "# TYPE {} gauge", data::METRIC)?;
    let mut lines = String::new();
    for s in 0..a.shape.series {
        lines.clear();
        data::openmetrics_lines(a.shape, s, &mut lines);
        out.write_all(lines.as_bytes())?;
    }
    writeln!(out, "# EOF")?;
    out.flush()?;
    Ok(())
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
    let mut rows: Vec<(String, String, f64, bool)> = vec![
        ("ingest_points_per_s".into(), "HTTP ingest, M points/s".into(), 1e-6, true),
        ("ingest_cpu_ns_per_point".into(), "ingest, server CPU ns/point".into(), 1.0, false),
        ("bytes_per_point_settled".into(), "on disk 30 s after ingest, bytes/point".into(), 1.0, false),
        ("bytes_per_point".into(), "on disk after a flush/restart, bytes/point".into(), 1.0, false),
        ("peak_rss_mb".into(), "peak RSS, MB".into(), 1.0, false),
    ];
    for q in queries::ALL {
        let (n, l) = (q.name(), q.label());
        rows.push((format!("{n}_median_ms"), format!("{l}, median ms"), 1.0, false));
        rows.push((format!("{n}_p90_ms"), format!("{l}, p90 ms"), 1.0, false));
        rows.push((format!("{n}_cpu_ms"), format!("{l}, server CPU ms"), 1.0, false));
    }
    rows.push((
        "promql_rate_deviation".into(),
        "PromQL rate: largest difference from Prometheus' answer (relative)".into(),
        1.0,
        false,
    ));
    // Prometheus answers the PromQL query only: its columns when it ran.
    let with_prometheus = figures.values().any(|m| m.contains_key("prometheus"));
    let (extra_head, extra_rule) =
        if with_prometheus { (" Prometheus | heroic / Prometheus |", "---|---|") } else { ("", "") };
    println!("| figure | heroic | VictoriaMetrics | heroic / VM |{extra_head}");
    println!("|---|---|---|---|{extra_rule}");
    for (name, label, scale, higher_is_better) in rows {
        let get = |t: &str| figures.get(name.as_str()).and_then(|m| m.get(t)).copied();
        if ["heroic", "vm", "prometheus"].iter().all(|t| get(t).is_none()) {
            continue;
        }
        let cell = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{:.3}", v * scale));
        let ratio = |other: &str| match (get("heroic"), get(other)) {
            (Some(h), Some(v)) if v > 0.0 => {
                let better = if (h >= v) == higher_is_better { "better" } else { "worse" };
                format!("{:.2}× ({better})", h / v)
            }
            _ => "–".to_string(),
        };
        let extra = if with_prometheus {
            format!(" {} | {} |", cell(get("prometheus")), ratio("prometheus"))
        } else {
            String::new()
        };
        println!("| {label} | {} | {} | {} |{extra}", cell(get("heroic")), cell(get("vm")), ratio("vm"));
    }
    Ok(())
}

fn main() -> Result<()> {
    let a = parse_args()?;
    if ["ingest", "query"].contains(&a.mode.as_str()) && !["heroic", "vm", "prometheus"].contains(&a.target.as_str()) {
        bail!("--target must be heroic, vm or prometheus");
    }
    match a.mode.as_str() {
        "ingest" => ingest(&a),
        "openmetrics" => openmetrics(&a),
        "query" => query(&a),
        "report" => report(&a),
        other => bail!("unknown mode {other:?}: ingest, query or report"),
    }
}
